/*
 * The policy language: parser and resolver.
 *
 * Parsing is two passes over a buffer the caller has already read.  The
 * first pass takes one line at a time, checks it (length, NUL, printable
 * ASCII outside comments) before anything is tokenised, splits it on blanks
 * and fills fixed-size records.  The PEM block after `approval-key` is
 * gathered line by line and handed to libcrypto.  The language is
 * order-independent, so names that point at other blocks (group members,
 * requesters, the groups of `require`) are only recorded in the first pass,
 * with the line that named them; the second pass resolves them and blames
 * that line.  sg_policy_parse() stops at the first error: one precise
 * message ("file:line: what") is worth more to the daemon's log than a
 * cascade.  sg_policy_check(), for people writing a policy, reports every
 * error and goes on with the next statement (see recover()).
 *
 * Every count has a fixed limit (the arrays in sg_policy.h and the
 * POLICY_MAX_* constants here and in policy_int.h), so a broken or hostile
 * file costs bounded memory.
 *
 * This file holds the driver: errors, lines and tokens, blocks, the
 * resolver and the public entry points.  The keyword handlers and the
 * table of each block are in policy_kw.c; the queries over the result and
 * the quorum evaluator in policy_eval.c; what they share in policy_int.h.
 *
 * The module is pure: no I/O and no global state.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_policy.h"
#include "sg_text.h"
#include "sg_util.h"

#include "policy_int.h"

#define POLICY_MAX_GROUPS 1024
#define POLICY_MAX_KEYS 1024
#define POLICY_MAX_HSMS 1024
#define POLICY_VERSION_MAX (1ULL << 53)
#define POLICY_LIFETIME_DEFAULT 86400ULL

int
pol_perr(struct parser *st, int line, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->errbuf != NULL && st->errlen > 0 && st->nerrors == 0)
		snprintf(st->errbuf, st->errlen, "%s:%d: %s", st->file, line,
		    msg);
	st->nerrors++;
	if (st->report != NULL)
		st->report(st->report_arg, st->file, line, msg);
	return SG_ERR_INVALID;
}

/* In check mode an error is reported and the caller goes on with the next
 * item; otherwise the first error ends parsing. */
#define GO_ON_OR_RETURN(st, r) do {					\
	if ((st)->report == NULL)					\
		return (r);						\
} while (0)

/* An error in the statement on the current line, prefixed with its block
 * and keyword: "key 'release': require: ...". */
int
pol_serr(struct parser *st, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->blk == BLK_TOP)
		return pol_perr(st, st->lineno, "%s: %s", st->tok[0], msg);
	return pol_perr(st, st->lineno, "%s: %s: %s", st->ctx, st->tok[0], msg);
}

/* Copies a string whose length the caller has already checked against
 * cap; truncates rather than overflows should that ever be wrong. */
void
pol_copy_str(char *dst, const char *src, size_t cap)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * Takes the next line into st->line.  Returns 1, 0 at the end of the
 * buffer, or SG_ERR_INVALID.  Bytes are checked here so that every later
 * step handles printable ASCII only (and messages can quote values).
 */
int
pol_next_line(struct parser *st)
{
	const char *s, *nl;
	size_t n, i, rem;

	if (st->off >= st->len)
		return 0;
	s = st->buf + st->off;
	rem = st->len - st->off;
	nl = memchr(s, '\n', rem);
	n = nl != NULL ? (size_t)(nl - s) : rem;
	st->off += nl != NULL ? n + 1 : n;
	st->lineno++;
	if (n > POLICY_LINE_MAX)
		return pol_perr(st, st->lineno, "line is longer than %d bytes",
		    POLICY_LINE_MAX);
	for (i = 0; i < n && is_blank(s[i]); i++)
		;
	st->is_comment = i < n && s[i] == '#';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0')
			return pol_perr(st, st->lineno,
			    "NUL byte at column %zu",
			    i + 1);
		if (st->is_comment || c == '\t' || (c >= 0x20 && c < 0x7f))
			continue;
		if (c == '\r')
			return pol_perr(st, st->lineno, "carriage return at "
			    "column %zu (line ends must be LF)", i + 1);
		return pol_perr(st, st->lineno, "byte 0x%02x at column %zu "
		    "(only printable ASCII outside comments)", c, i + 1);
	}
	memcpy(st->line, s, n);
	st->line[n] = '\0';
	st->linelen = n;
	return 1;
}

static void
tokenize(struct parser *st)
{
	char *s = st->tokbuf;

	memcpy(st->tokbuf, st->line, st->linelen + 1);
	st->ntok = 0;
	for (;;) {
		while (is_blank(*s))
			s++;
		if (*s == '\0')
			break;
		/* A line holds at most LINE_MAX/2+1 tokens: always fits. */
		st->tok[st->ntok++] = s;
		while (*s != '\0' && !is_blank(*s))
			s++;
		if (*s == '\0')
			break;
		*s++ = '\0';
	}
}

/* The rest of the line after the keyword, blanks trimmed at both ends
 * (inner blanks kept); NUL-terminated in place in st->line. */
const char *
pol_strip_blanks(char *s)
{
	char *e;

	while (is_blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_blank(e[-1]))
		*--e = '\0';
	return s;
}

static const char *
rest_of_line(struct parser *st)
{
	char *s = st->line;

	while (is_blank(*s))
		s++;
	while (*s != '\0' && !is_blank(*s))
		s++;
	return pol_strip_blanks(s);
}

/* The statement takes exactly n values. */
int
pol_want_args(struct parser *st, size_t n)
{
	if (st->ntok < n + 1)
		return pol_serr(st, "missing value");
	if (st->ntok > n + 1)
		return pol_serr(st, "unexpected '%.64s' after the value",
		    st->tok[n + 1]);
	return 0;
}

int
pol_want_some(struct parser *st, size_t max, const char *what)
{
	if (st->ntok < 2)
		return pol_serr(st, "missing value");
	if (st->ntok - 1 > max)
		return pol_serr(st, "more than %zu %s", max, what);
	return 0;
}

/* Copies a single-token value of 1..max chars. */
int
pol_take_token(struct parser *st, char *dst, size_t max, const char *what)
{
	int r;

	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	if (strlen(st->tok[1]) > max)
		return pol_serr(st, "%s '%.64s' is longer than %zu characters",
		    what, st->tok[1], max);
	pol_copy_str(dst, st->tok[1], max + 1);
	return 0;
}

int
pol_take_rest(struct parser *st, char *dst, size_t max)
{
	const char *v = rest_of_line(st);

	if (*v == '\0')
		return pol_serr(st, "missing value");
	if (strlen(v) > max)
		return pol_serr(st, "'%.64s' is longer than %zu characters", v,
		    max);
	pol_copy_str(dst, v, max + 1);
	return 0;
}

int
pol_find_dup(char *const *tok, size_t i)
{
	size_t j;

	for (j = 1; j < i; j++)
		if (strcmp(tok[j], tok[i]) == 0)
			return 1;
	return 0;
}


/* --- blocks --- */

static const char *
block_name(enum block b)
{
	switch (b) {
	case BLK_PRINCIPAL:
		return "principal";
	case BLK_GROUP:
		return "group";
	case BLK_HSM:
		return "hsm";
	case BLK_KEY:
		return "key";
	default:
		return "top level";
	}
}

static int
block_max(enum block b)
{
	switch (b) {
	case BLK_PRINCIPAL:
		return POLICY_MAX_PRINCIPALS;
	case BLK_GROUP:
		return POLICY_MAX_GROUPS;
	case BLK_HSM:
		return POLICY_MAX_HSMS;
	default:
		return POLICY_MAX_KEYS;
	}
}

/* Appends one zeroed element to an entity array, within its limit.  The
 * capacity doubles so that a file of many blocks is not quadratic. */
static int
grow(void **arr, size_t *n, size_t *cap, size_t elsize, size_t max)
{
	size_t ncap;
	void *np;

	if (*n >= max)
		return SG_ERR_TOO_LARGE;
	if (*n == *cap) {
		ncap = *cap == 0 ? 8 : *cap * 2;
		if (ncap > max)
			ncap = max;
		if ((np = reallocarray(*arr, ncap, elsize)) == NULL)
			return SG_ERR_NOMEM;
		*arr = np;
		*cap = ncap;
	}
	memset((char *)*arr + *n * elsize, 0, elsize);
	(*n)++;
	return 0;
}

static const struct keyword *
block_kws(enum block b)
{
	switch (b) {
	case BLK_PRINCIPAL:
		return pol_principal_kws;
	case BLK_GROUP:
		return pol_group_kws;
	case BLK_HSM:
		return pol_hsm_kws;
	default:
		return pol_key_kws;
	}
}

/* The name of a block: an HSM's serial, or a name of the language. */
static int
check_block_name(struct parser *st, enum block b, const char *name)
{
	if (b == BLK_HSM) {
		if (strlen(name) >= sizeof(st->p->hsms[0].pub.serial))
			return pol_serr(st, "serial '%.64s' is longer than %zu "
			    "characters", name,
			    sizeof(st->p->hsms[0].pub.serial) - 1);
	} else if (!sg_name_ok(name, SG_NAME_LEN_MAX))
		return pol_serr(st, "'%.64s' is not a valid name "
		    "([A-Za-z0-9._-], 1 to %d characters)", name,
		    SG_NAME_LEN_MAX);
	return 0;
}

/* The line of the block of kind b that already has this name, or 0. */
static int
defined_at(const struct sg_policy *p, enum block b, const char *name)
{
	const struct group_ent *g;
	ssize_t i;

	switch (b) {
	case BLK_PRINCIPAL:
		i = policy_principal_index(p, name);
		return i < 0 ? 0 : p->principals[i].line;
	case BLK_GROUP:
		g = policy_group_find(p, name);
		return g == NULL ? 0 : g->line;
	case BLK_HSM:
		i = policy_hsm_index(p, name);
		return i < 0 ? 0 : p->hsms[i].line;
	default:
		i = policy_key_index(p, name);
		return i < 0 ? 0 : p->keys[i].line;
	}
}

/* Appends the entity a block of kind b opens on this line. */
static int
new_entity(struct parser *st, enum block b, const char *name)
{
	struct sg_policy *p = st->p;
	int r;

	switch (b) {
	case BLK_PRINCIPAL:
		if ((r = grow((void **)&p->principals, &p->nprincipals,
		    &p->principals_cap, sizeof(*p->principals),
		    POLICY_MAX_PRINCIPALS)) != 0)
			return r;
		pol_copy_str(cur_principal(st)->pub.name, name, SG_NAME_SIZE);
		cur_principal(st)->line = st->lineno;
		return 0;
	case BLK_GROUP:
		if ((r = grow((void **)&p->groups, &p->ngroups,
		    &p->groups_cap, sizeof(*p->groups),
		    POLICY_MAX_GROUPS)) != 0)
			return r;
		pol_copy_str(cur_group(st)->name, name, SG_NAME_SIZE);
		cur_group(st)->line = st->lineno;
		return 0;
	case BLK_HSM:
		if ((r = grow((void **)&p->hsms, &p->nhsms, &p->hsms_cap,
		    sizeof(*p->hsms), POLICY_MAX_HSMS)) != 0)
			return r;
		pol_copy_str(cur_hsm(st)->pub.serial, name,
		    sizeof(cur_hsm(st)->pub.serial));
		cur_hsm(st)->line = st->lineno;
		return 0;
	case BLK_KEY:
		if ((r = grow((void **)&p->keys, &p->nkeys, &p->keys_cap,
		    sizeof(*p->keys), POLICY_MAX_KEYS)) != 0)
			return r;
		pol_copy_str(cur_key(st)->pub.name, name, SG_NAME_SIZE);
		cur_key(st)->line = st->lineno;
		cur_key(st)->pub.lifetime = POLICY_LIFETIME_DEFAULT;
		return 0;
	default:
		return SG_ERR_INTERNAL;
	}
}

static int
open_block(struct parser *st, enum block b)
{
	const char *name;
	int r, prev;

	if (b != BLK_PRINCIPAL && b != BLK_GROUP && b != BLK_HSM &&
	    b != BLK_KEY)
		return SG_ERR_INTERNAL;
	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	name = st->tok[1];
	if ((r = check_block_name(st, b, name)) != 0)
		return r;
	if (st->policy_line == 0)
		return pol_serr(st,
		    "'policy <name>' must come before any block");
	st->kws = block_kws(b);
	if ((prev = defined_at(st->p, b, name)) != 0)
		return pol_serr(st, "'%s' is already defined at line %d", name,
		    prev);
	r = new_entity(st, b, name);
	if (r == SG_ERR_TOO_LARGE)
		return pol_serr(st, "more than %d %s blocks", block_max(b),
		    block_name(b));
	if (r != 0)
		return r;
	st->blk = b;
	st->blk_line = st->lineno;
	snprintf(st->ctx, sizeof(st->ctx), "%s '%s'", block_name(b), name);
	memset(st->kwline, 0, sizeof(st->kwline));
	return 0;
}

/* 1 if the open block has had a statement with this keyword (whether it
 * succeeded or not). */
static int
kw_seen(const struct parser *st, const char *name)
{
	size_t i;

	for (i = 0; st->kws != NULL && st->kws[i].name != NULL && i < KW_MAX;
	    i++)
		if (strcmp(st->kws[i].name, name) == 0)
			return st->kwline[i] != 0;
	return 0;
}

/* Checks what a block must contain; blames the block's opening line. */
static int
close_block(struct parser *st)
{
	int l = st->blk_line;

	switch (st->blk) {
	case BLK_PRINCIPAL: {
		struct principal_ent *e = cur_principal(st);

		if (e->pub.roles == 0)
			return pol_perr(st, l, "%s: missing 'roles'", st->ctx);
		if (e->pub.client_cn[0] == '\0' && !e->pub.has_client_sha256)
			return pol_perr(st, l, "%s: missing 'client-cn' or "
			    "'client-sha256'", st->ctx);
		if ((e->pub.roles & SG_ROLE_OFFICER) &&
		    e->pub.approval_key == NULL && e->pub.nwebauthn == 0)
			return pol_perr(st, l, "%s: an officer needs an "
			    "'approval-key' or a 'webauthn-key'", st->ctx);
		if (!(e->pub.roles & SG_ROLE_OFFICER) &&
		    e->pub.approval_key != NULL)
			return pol_perr(st, e->key_line,
			    "%s: approval-key: only "
			    "officers have an approval key", st->ctx);
		if (!(e->pub.roles & SG_ROLE_OFFICER) &&
		    e->pub.nwebauthn > 0)
			return pol_perr(st, e->wa_line[0],
			    "%s: webauthn-key: only "
			    "officers have WebAuthn credentials", st->ctx);
		break;
	}
	case BLK_GROUP:
		if (cur_group(st)->nmembers == 0)
			return pol_perr(st, l, "%s: missing 'members'",
			    st->ctx);
		break;
	case BLK_HSM:
		if (cur_hsm(st)->pub.site[0] == '\0')
			return pol_perr(st, l, "%s: missing 'site'", st->ctx);
		if (cur_hsm(st)->pub.country[0] == '\0')
			return pol_perr(st, l, "%s: missing 'country'",
			    st->ctx);
		break;
	case BLK_KEY: {
		struct sg_policy_key *k = &cur_key(st)->pub;

		if (k->token[0] == '\0')
			return pol_perr(st, l, "%s: missing 'token' (or 'uri')",
			    st->ctx);
		if (k->object[0] == '\0' && k->id_len == 0)
			return pol_perr(st, l,
			    "%s: missing 'object' or 'id' (or "
			    "'uri')", st->ctx);
		if (k->alg == SG_ALG_NONE)
			return pol_perr(st, l, "%s: missing 'algorithm'",
			    st->ctx);
		if (k->formats == 0)
			return pol_perr(st, l, "%s: missing 'formats'",
			    st->ctx);
		if ((k->formats & SG_FORMAT_CMS) && k->certificate[0] == '\0')
			return pol_perr(st, l, "%s: format cms needs "
			    "'certificate'", st->ctx);
		if (k->ncountries == 0)
			return pol_perr(st, l, "%s: missing 'countries'",
			    st->ctx);
		/* (An allow-grants line that failed was reported itself.) */
		if (k->ngrant_terms > 0 && k->grant_max_count == 0 &&
		    !kw_seen(st, "allow-grants"))
			return pol_perr(st, cur_key(st)->grant_term_line[0],
			    "%s: require-grant: only with 'allow-grants' (the "
			    "key allows no grants)", st->ctx);
		break;
	}
	default:
		return SG_ERR_INTERNAL;
	}
	st->blk = BLK_TOP;
	st->kws = NULL;
	return 0;
}

static int
top_statement(struct parser *st)
{
	const char *k = st->tok[0];
	int r;

	if (strcmp(k, "principal") == 0)
		return open_block(st, BLK_PRINCIPAL);
	if (strcmp(k, "group") == 0)
		return open_block(st, BLK_GROUP);
	if (strcmp(k, "hsm") == 0)
		return open_block(st, BLK_HSM);
	if (strcmp(k, "key") == 0)
		return open_block(st, BLK_KEY);
	if (strcmp(k, "policy") == 0) {
		if (st->policy_line != 0)
			return pol_serr(st, "repeated (first at line %d)",
			    st->policy_line);
		if ((r = pol_want_args(st, 1)) != 0)
			return r;
		if (!sg_name_ok(st->tok[1], SG_NAME_LEN_MAX))
			return pol_serr(st, "'%.64s' is not a valid name",
			    st->tok[1]);
		if (st->p->nprincipals + st->p->ngroups + st->p->nhsms +
		    st->p->nkeys > 0)
			return pol_serr(st, "must come before any block");
		pol_copy_str(st->p->name, st->tok[1], sizeof(st->p->name));
		st->policy_line = st->lineno;
		return 0;
	}
	if (strcmp(k, "version") == 0) {
		if (st->version_line != 0)
			return pol_serr(st, "repeated (first at line %d)",
			    st->version_line);
		if ((r = pol_want_args(st, 1)) != 0)
			return r;
		if (sg_parse_u64(st->tok[1], 1, POLICY_VERSION_MAX,
		    &st->p->version) != 0)
			return pol_serr(st,
			    "'%.64s' is not an integer from 1 to "
			    "2^53", st->tok[1]);
		st->version_line = st->lineno;
		return 0;
	}
	if (strcmp(k, "policy-change") == 0)
		return pol_policy_change(st);
	if (strcmp(k, "end") == 0)
		return pol_perr(st, st->lineno, "'end' without an open block");
	return pol_perr(st, st->lineno, "unknown keyword '%.64s'", k);
}

static int
block_statement(struct parser *st)
{
	const char *k = st->tok[0];
	size_t i;

	if (strcmp(k, "end") == 0) {
		if (st->ntok > 1)
			return pol_serr(st, "unexpected '%.64s'", st->tok[1]);
		return close_block(st);
	}
	for (i = 0; st->kws[i].name != NULL; i++) {
		if (strcmp(st->kws[i].name, k) != 0)
			continue;
		if (!st->kws[i].repeatable && st->kwline[i] != 0)
			return pol_serr(st, "repeated (first at line %d)",
			    st->kwline[i]);
		st->kwline[i] = st->lineno;
		return st->kws[i].fn(st);
	}
	if (strcmp(k, "principal") == 0 || strcmp(k, "group") == 0 ||
	    strcmp(k, "hsm") == 0 || strcmp(k, "key") == 0 ||
	    strcmp(k, "policy") == 0 || strcmp(k, "version") == 0 ||
	    strcmp(k, "policy-change") == 0)
		return pol_perr(st, st->lineno,
		    "%s: '%s' inside a block (missing "
		    "'end' for line %d?)", st->ctx, k, st->blk_line);
	return pol_perr(st, st->lineno, "%s: unknown keyword '%.64s'", st->ctx,
	    k);
}

/* --- resolution of names across blocks --- */

/* The approval key or one of the credential keys of b that is pk, or
 * NULL. */
static const char *
key_used_by(const struct principal_ent *b, EVP_PKEY *pk)
{
	size_t i;

	if (b->pub.approval_key != NULL &&
	    EVP_PKEY_eq(b->pub.approval_key, pk) == 1)
		return "approval key";
	for (i = 0; i < b->pub.nwebauthn; i++)
		if (EVP_PKEY_eq(b->pub.webauthn[i].pub, pk) == 1)
			return "WebAuthn credential key";
	return NULL;
}

/*
 * A credential of a (index k) whose id or key another principal b
 * already has (b before a; within one principal the keyword checks ids).
 */
static int
webauthn_clash(struct parser *st, const struct principal_ent *a, size_t k,
    const struct principal_ent *b)
{
	const struct sg_webauthn_cred *c = &a->pub.webauthn[k];
	const char *what;

	if (sg_principal_webauthn(&b->pub, c->id, c->id_len) != NULL)
		return pol_perr(st, a->wa_line[k], "principal '%s': "
		    "webauthn-key: the credential id is already principal "
		    "'%s''s", a->pub.name, b->pub.name);
	if ((what = key_used_by(b, c->pub)) != NULL)
		return pol_perr(st, a->wa_line[k], "principal '%s': "
		    "webauthn-key: the same key as principal '%s''s %s",
		    a->pub.name, b->pub.name, what);
	return 0;
}

/*
 * WebAuthn credentials are approval keys too: no id nor key may be two
 * principals', and no credential key may be another's approval key.
 */
static int
resolve_webauthn(struct parser *st)
{
	const struct sg_policy *p = st->p;
	const struct principal_ent *a, *b;
	size_t i, j, k;
	int bad = 0, r;

	for (i = 0; i < p->nprincipals; i++) {
		a = &p->principals[i];
		for (j = 0; j < i; j++) {
			b = &p->principals[j];
			for (k = 0; k < a->pub.nwebauthn; k++) {
				if ((r = webauthn_clash(st, a, k, b)) != 0) {
					bad = r;
					GO_ON_OR_RETURN(st, bad);
				}
			}
			/* a's approval key against b's credentials (against
			 * b's approval key: resolve_principals()). */
			for (k = 0; a->pub.approval_key != NULL &&
			    k < b->pub.nwebauthn; k++) {
				if (EVP_PKEY_eq(b->pub.webauthn[k].pub,
				    a->pub.approval_key) != 1)
					continue;
				bad = pol_perr(st, a->key_line,
				    "principal '%s': approval-key: the same "
				    "key as principal '%s''s WebAuthn "
				    "credential key", a->pub.name, b->pub.name);
				GO_ON_OR_RETURN(st, bad);
			}
		}
	}
	return bad;
}

/*
 * Two principals must never share a client binding (a certificate would map
 * to whichever comes first) nor an approval key (one person could then
 * count as two officers).
 */
static int
resolve_principals(struct parser *st)
{
	int bad = 0;
	const struct sg_policy *p = st->p;
	const struct principal_ent *a, *b;
	size_t i, j;

	for (i = 0; i < p->nprincipals; i++) {
		a = &p->principals[i];
		for (j = 0; j < i; j++) {
			b = &p->principals[j];
			if (a->pub.client_cn[0] != '\0' &&
			    strcmp(a->pub.client_cn, b->pub.client_cn) == 0) {
				bad = pol_perr(st, a->cn_line,
				    "principal '%s': "
				    "client-cn: '%.64s' is already used by "
				    "principal '%s'", a->pub.name,
				    a->pub.client_cn, b->pub.name);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (a->pub.has_client_sha256 &&
			    b->pub.has_client_sha256 &&
			    memcmp(a->pub.client_sha256, b->pub.client_sha256,
			    32) == 0) {
				bad = pol_perr(st, a->sha_line,
				    "principal '%s': "
				    "client-sha256: already used by principal "
				    "'%s'", a->pub.name, b->pub.name);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (a->pub.approval_key != NULL &&
			    b->pub.approval_key != NULL &&
			    EVP_PKEY_eq(a->pub.approval_key,
			    b->pub.approval_key) == 1) {
				bad = pol_perr(st, a->key_line,
				    "principal '%s': "
				    "approval-key: the same key as principal "
				    "'%s'", a->pub.name, b->pub.name);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
		}
	}
	return bad;
}

static int
resolve_groups(struct parser *st)
{
	int bad = 0;
	struct sg_policy *p = st->p;
	struct group_ent *g;
	ssize_t pi;
	size_t i, j;

	for (i = 0; i < p->ngroups; i++) {
		g = &p->groups[i];
		for (j = 0; j < g->nmembers; j++) {
			pi = policy_principal_index(p, g->member_names[j]);
			if (pi < 0) {
				bad = pol_perr(st, g->members_line,
				    "group '%s': "
				    "members: principal '%s' is not defined",
				    g->name, g->member_names[j]);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (!(p->principals[pi].pub.roles & SG_ROLE_OFFICER)) {
				bad = pol_perr(st, g->members_line,
				    "group '%s': "
				    "members: principal '%s' is not an "
				    "officer", g->name, g->member_names[j]);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			g->members[j] = (size_t)pi;
		}
	}
	return bad;
}

/* The groups of a key's terms exist and are large enough. */
static int
resolve_terms(struct parser *st, const struct key_ent *e,
    const struct sg_term *terms, size_t n, const int *lines,
    const char *kw)
{
	const struct group_ent *g;
	size_t j;
	int bad = 0;

	for (j = 0; j < n; j++) {
		const struct sg_term *t = &terms[j];

		if ((g = policy_group_find(st->p, t->group)) == NULL) {
			bad = pol_perr(st, lines[j], "key '%s': %s: group '%s' "
			    "is not defined", e->pub.name, kw, t->group);
			GO_ON_OR_RETURN(st, bad);
			continue;
		}
		if (t->count > g->nmembers) {
			bad = pol_perr(st, lines[j], "key '%s': %s: group '%s' "
			    "has %zu members, fewer than %u", e->pub.name, kw,
			    t->group, g->nmembers, t->count);
			GO_ON_OR_RETURN(st, bad);
			continue;
		}
	}
	return bad;
}

static int
resolve_keys(struct parser *st)
{
	int bad = 0, r;
	const struct sg_policy *p = st->p;
	const struct key_ent *e;
	ssize_t pi;
	size_t i, j;

	for (i = 0; i < p->nkeys; i++) {
		e = &p->keys[i];
		for (j = 0; j < e->pub.nrequesters; j++) {
			pi = policy_principal_index(p, e->pub.requesters[j]);
			if (pi < 0) {
				bad = pol_perr(st, e->requesters_line,
				    "key '%s': "
				    "requesters: principal '%s' is not "
				    "defined", e->pub.name,
				    e->pub.requesters[j]);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (!(p->principals[pi].pub.roles &
			    SG_ROLE_REQUESTER)) {
				bad = pol_perr(st, e->requesters_line,
				    "key '%s': "
				    "requesters: principal '%s' does not have "
				    "the requester role", e->pub.name,
				    e->pub.requesters[j]);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
		}
		if ((r = resolve_terms(st, e, e->pub.terms, e->pub.nterms,
		    e->term_line, "require")) != 0) {
			bad = r;
			GO_ON_OR_RETURN(st, bad);
		}
		if ((r = resolve_terms(st, e, e->pub.grant_terms,
		    e->pub.ngrant_terms, e->grant_term_line,
		    "require-grant")) != 0) {
			bad = r;
			GO_ON_OR_RETURN(st, bad);
		}
	}
	return bad;
}

/* The groups of the policy-change terms exist and are large enough. */
static int
resolve_change(struct parser *st)
{
	const struct sg_policy *p = st->p;
	const struct group_ent *g;
	const struct sg_term *t;
	size_t j;
	int bad = 0;

	for (j = 0; j < p->nchange_terms; j++) {
		t = &p->change_terms[j];
		if ((g = policy_group_find(p, t->group)) == NULL) {
			bad = pol_perr(st, p->change_term_line[j],
			    "policy-change require: group '%s' is not defined",
			    t->group);
			GO_ON_OR_RETURN(st, bad);
			continue;
		}
		if (t->count > g->nmembers) {
			bad = pol_perr(st, p->change_term_line[j],
			    "policy-change require: group '%s' has %zu "
			    "members, fewer than %u", t->group, g->nmembers,
			    t->count);
			GO_ON_OR_RETURN(st, bad);
		}
	}
	return bad;
}

/* --- public interface --- */

const struct sg_term *
sg_policy_change_terms(const struct sg_policy *p, size_t *ret_n)
{
	*ret_n = p->nchange_terms;
	return p->change_terms;
}

void
sg_policy_change_key(const struct sg_policy *p, struct sg_policy_key *ret)
{
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->name, sizeof(ret->name), "policy-change");
	memcpy(ret->terms, p->change_terms, sizeof(ret->terms));
	ret->nterms = p->nchange_terms;
	ret->view = SG_KIND_REQUEST;
}

void
sg_policy_free(struct sg_policy *p)
{
	size_t i, j;

	if (p == NULL)
		return;
	for (i = 0; i < p->nprincipals; i++) {
		EVP_PKEY_free(p->principals[i].pub.approval_key);
		for (j = 0; j < p->principals[i].pub.nwebauthn; j++)
			EVP_PKEY_free(p->principals[i].pub.webauthn[j].pub);
		free(p->principals[i].pub.webauthn);
	}
	free(p->principals);
	free(p->groups);
	free(p->keys);
	free(p->hsms);
	free(p);
}

/*
 * One statement that failed, in check mode: go on where the rest of the
 * file still makes sense.  A block whose opening line failed is skipped to
 * its 'end'; a block whose 'end' found it incomplete is closed anyway; any
 * other statement is simply passed over.
 */
static void
recover(struct parser *st, int was_top, int was_end)
{
	if (was_top) {
		const char *k = st->tok[0];

		if (strcmp(k, "principal") == 0 || strcmp(k, "group") == 0 ||
		    strcmp(k, "hsm") == 0 || strcmp(k, "key") == 0)
			st->skip_block = 1;
	} else if (was_end) {
		st->blk = BLK_TOP;
		st->kws = NULL;
	}
}

/* Both passes over st->buf; st->p receives the policy. */
static int
parse(struct parser *st)
{
	struct sg_policy *p = st->p;
	uint8_t digest[32];
	size_t i;
	int r, was_top, was_end;

	if (st->len > SG_POLICY_FILE_MAX) {
		/* Blame the line where the limit is crossed. */
		int line = 1;

		for (i = 0; i < SG_POLICY_FILE_MAX; i++)
			if (st->buf[i] == '\n')
				line++;
		return pol_perr(st, line, "file is larger than %d bytes",
		    SG_POLICY_FILE_MAX);
	}
	sg_sha256(st->buf, st->len, digest);
	sg_hex_encode(digest, sizeof(digest), p->sha256_hex);

	while ((r = pol_next_line(st)) != 0) {
		if (r < 0) {
			/* A line that cannot be read (too long, NUL,
			 * not printable) was reported; go on after it. */
			if (r == SG_ERR_NOMEM || st->report == NULL)
				return r;
			continue;
		}
		if (st->is_comment)
			continue;
		tokenize(st);
		if (st->ntok == 0)
			continue;
		if (st->skip_block) {
			if (strcmp(st->tok[0], "end") == 0)
				st->skip_block = 0;
			continue;
		}
		was_top = st->blk == BLK_TOP;
		was_end = strcmp(st->tok[0], "end") == 0;
		r = was_top ? top_statement(st) : block_statement(st);
		if (r != 0) {
			if (r == SG_ERR_NOMEM || st->report == NULL)
				return r;
			recover(st, was_top, was_end);
		}
	}
	if (st->blk != BLK_TOP || st->skip_block) {
		r = pol_perr(st, st->blk_line, "%s: block is not closed with "
		    "'end'", st->ctx);
		GO_ON_OR_RETURN(st, r);
	}
	if (st->policy_line == 0) {
		r = pol_perr(st, st->lineno > 0 ? st->lineno : 1,
		    "missing 'policy <name>'");
		GO_ON_OR_RETURN(st, r);
	}
	if (st->version_line == 0 && st->policy_line != 0) {
		r = pol_perr(st, st->policy_line, "policy '%s': missing "
		    "'version'", p->name);
		GO_ON_OR_RETURN(st, r);
	}
	/* Names are resolved only in a file whose blocks all parsed: in a
	 * broken one they would only echo the errors above. */
	if (st->nerrors > 0)
		return SG_ERR_INVALID;
	if ((r = resolve_principals(st)) != 0 && st->report == NULL)
		return r;
	if ((r = resolve_webauthn(st)) != 0 && st->report == NULL)
		return r;
	if ((r = resolve_groups(st)) != 0 && st->report == NULL)
		return r;
	if ((r = resolve_keys(st)) != 0 && st->report == NULL)
		return r;
	if ((r = resolve_change(st)) != 0 && st->report == NULL)
		return r;
	return st->nerrors > 0 ? SG_ERR_INVALID : 0;
}

static int
parse_with(const char *filename, const char *buf, size_t len,
    sg_policy_report_fn report, void *arg, struct sg_policy **ret,
    char *errbuf, size_t errlen)
{
	struct parser *st = NULL;
	struct sg_policy *p = NULL;
	int r;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if (buf == NULL && len > 0)
		return SG_ERR_INVALID;
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (p = calloc(1, sizeof(*p))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	st->file = filename != NULL ? filename : "policy";
	st->buf = buf;
	st->len = len;
	st->errbuf = errbuf;
	st->errlen = errlen;
	st->report = report;
	st->report_arg = arg;
	st->p = p;
	if ((r = parse(st)) == 0 && ret != NULL) {
		*ret = p;
		p = NULL;	/* transferred */
	}
out:
	if (r == SG_ERR_NOMEM && errbuf != NULL && errlen > 0)
		snprintf(errbuf, errlen, "%s: out of memory",
		    filename != NULL ? filename : "policy");
	sg_policy_free(p);
	free(st);
	return r;
}

int
sg_policy_parse(const char *filename, const char *buf, size_t len,
    struct sg_policy **ret, char *errbuf, size_t errlen)
{
	if (ret == NULL)
		return SG_ERR_INVALID;
	return parse_with(filename, buf, len, NULL, NULL, ret, errbuf,
	    errlen);
}

int
sg_policy_check(const char *filename, const char *buf, size_t len,
    sg_policy_report_fn report, void *arg, struct sg_policy **ret)
{
	if (report == NULL)
		return SG_ERR_INVALID;
	return parse_with(filename, buf, len, report, arg, ret, NULL, 0);
}
