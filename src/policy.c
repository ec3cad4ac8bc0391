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
 * MAX_* constants below), so a broken or hostile file costs bounded memory.
 *
 * The queries over the result and the quorum evaluator are in
 * policy_eval.c; the records both files share are in policy_int.h.
 *
 * The module is pure: no I/O and no global state.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_p11_uri.h"
#include "sg_policy.h"
#include "sg_text.h"
#include "sg_util.h"

#include "policy_int.h"

#define POLICY_LINE_MAX 4096
#define POLICY_MAX_TOKENS (POLICY_LINE_MAX / 2 + 1)
#define POLICY_PEM_MAX (16 * 1024)
#define POLICY_MAX_GROUPS 1024
#define POLICY_MAX_KEYS 1024
#define POLICY_MAX_HSMS 1024
#define POLICY_CN_MAX (SG_NAME_SIZE * 4 - 1)
#define POLICY_VERSION_MAX (1ULL << 53)
#define POLICY_LIFETIME_MIN 5ULL	/* seconds */
#define POLICY_LIFETIME_MAX (30ULL * 86400)
#define POLICY_LIFETIME_DEFAULT 86400ULL
/* Officers sign approvals; larger RSA signatures would not fit SG_MAX_SIG. */
#define POLICY_RSA_MIN_BITS 2048
#define POLICY_RSA_MAX_BITS 8192

enum block {
	BLK_TOP = 0,
	BLK_PRINCIPAL,
	BLK_GROUP,
	BLK_HSM,
	BLK_KEY,
};

struct parser;
typedef int (*kw_fn)(struct parser *);

struct keyword {
	const char *name;
	kw_fn fn;
	int repeatable;
};

#define KW_MAX 16

struct parser {
	const char *file;
	const char *buf;
	size_t len;
	size_t off;
	int lineno;
	int is_comment;
	char *errbuf;
	size_t errlen;
	/* Check mode (sg_policy_check): every error is reported here and
	 * parsing goes on; errbuf keeps the first. */
	sg_policy_report_fn report;
	void *report_arg;
	unsigned nerrors;
	int skip_block;				/* skipping to 'end' */
	struct sg_policy *p;

	enum block blk;
	int blk_line;
	char ctx[SG_NAME_SIZE + 32];	/* "key 'release'" */
	const struct keyword *kws;		/* the current block's table */
	int kwline[KW_MAX];			/* where each keyword was seen */
	int policy_line;
	int version_line;

	char line[POLICY_LINE_MAX + 1];
	size_t linelen;
	char tokbuf[POLICY_LINE_MAX + 1];
	char *tok[POLICY_MAX_TOKENS];
	size_t ntok;
	char pem[POLICY_PEM_MAX + 1];
};

static int perr(struct parser *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static int serr(struct parser *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static int
perr(struct parser *st, int line, const char *fmt, ...)
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
static int
serr(struct parser *st, const char *fmt, ...)
{
	char msg[640];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (st->blk == BLK_TOP)
		return perr(st, st->lineno, "%s: %s", st->tok[0], msg);
	return perr(st, st->lineno, "%s: %s: %s", st->ctx, st->tok[0], msg);
}

/* Copies a string whose length the caller has already checked against
 * cap; truncates rather than overflows should that ever be wrong. */
static void
copy_str(char *dst, const char *src, size_t cap)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/*
 * Takes the next line into st->line.  Returns 1, 0 at the end of the
 * buffer, or SG_ERR_INVALID.  Bytes are checked here so that every later
 * step handles printable ASCII only (and messages can quote values).
 */
static int
next_line(struct parser *st)
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
		return perr(st, st->lineno, "line is longer than %d bytes",
		    POLICY_LINE_MAX);
	for (i = 0; i < n && is_blank(s[i]); i++)
		;
	st->is_comment = i < n && s[i] == '#';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0')
			return perr(st, st->lineno, "NUL byte at column %zu",
			    i + 1);
		if (st->is_comment || c == '\t' || (c >= 0x20 && c < 0x7f))
			continue;
		if (c == '\r')
			return perr(st, st->lineno, "carriage return at "
			    "column %zu (line ends must be LF)", i + 1);
		return perr(st, st->lineno, "byte 0x%02x at column %zu "
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
static const char *
rest_of_line(struct parser *st)
{
	char *s = st->line, *e;

	while (is_blank(*s))
		s++;
	while (*s != '\0' && !is_blank(*s))
		s++;
	while (is_blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_blank(e[-1]))
		*--e = '\0';
	return s;
}

/* The statement takes exactly n values. */
static int
want_args(struct parser *st, size_t n)
{
	if (st->ntok < n + 1)
		return serr(st, "missing value");
	if (st->ntok > n + 1)
		return serr(st, "unexpected '%.64s' after the value",
		    st->tok[n + 1]);
	return 0;
}

static int
want_some(struct parser *st, size_t max, const char *what)
{
	if (st->ntok < 2)
		return serr(st, "missing value");
	if (st->ntok - 1 > max)
		return serr(st, "more than %zu %s", max, what);
	return 0;
}

/* Copies a single-token value of 1..max chars. */
static int
take_token(struct parser *st, char *dst, size_t max, const char *what)
{
	int r;

	if ((r = want_args(st, 1)) != 0)
		return r;
	if (strlen(st->tok[1]) > max)
		return serr(st, "%s '%.64s' is longer than %zu characters",
		    what, st->tok[1], max);
	copy_str(dst, st->tok[1], max + 1);
	return 0;
}

static int
take_rest(struct parser *st, char *dst, size_t max)
{
	const char *v = rest_of_line(st);

	if (*v == '\0')
		return serr(st, "missing value");
	if (strlen(v) > max)
		return serr(st, "'%.64s' is longer than %zu characters", v,
		    max);
	copy_str(dst, v, max + 1);
	return 0;
}

static int
find_dup(char *const *tok, size_t i)
{
	size_t j;

	for (j = 1; j < i; j++)
		if (strcmp(tok[j], tok[i]) == 0)
			return 1;
	return 0;
}

static struct principal_ent *
cur_principal(struct parser *st)
{
	return &st->p->principals[st->p->nprincipals - 1];
}

static struct group_ent *
cur_group(struct parser *st)
{
	return &st->p->groups[st->p->ngroups - 1];
}

static struct hsm_ent *
cur_hsm(struct parser *st)
{
	return &st->p->hsms[st->p->nhsms - 1];
}

static struct key_ent *
cur_key(struct parser *st)
{
	return &st->p->keys[st->p->nkeys - 1];
}

/* --- principal --- */

static int
kw_roles(struct parser *st)
{
	struct principal_ent *e = cur_principal(st);
	size_t i;
	int r;

	if ((r = want_some(st, 3, "roles")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		const char *t = st->tok[i];

		if (find_dup(st->tok, i))
			return serr(st, "role '%s' listed twice", t);
		if (strcmp(t, "requester") == 0)
			e->pub.roles |= SG_ROLE_REQUESTER;
		else if (strcmp(t, "officer") == 0)
			e->pub.roles |= SG_ROLE_OFFICER;
		else if (strcmp(t, "auditor") == 0)
			e->pub.roles |= SG_ROLE_AUDITOR;
		else
			return serr(st, "unknown role '%.64s' (requester, "
			    "officer or auditor)", t);
	}
	return 0;
}

static int
kw_client_cn(struct parser *st)
{
	struct principal_ent *e = cur_principal(st);

	e->cn_line = st->lineno;
	return take_rest(st, e->pub.client_cn, POLICY_CN_MAX);
}

static int
kw_client_sha256(struct parser *st)
{
	struct principal_ent *e = cur_principal(st);
	size_t n;
	int r;

	if ((r = want_args(st, 1)) != 0)
		return r;
	if (strlen(st->tok[1]) != SG_SHA256_HEX_LEN ||
	    sg_hex_decode(st->tok[1], SG_SHA256_HEX_LEN, e->pub.client_sha256,
	    sizeof(e->pub.client_sha256), &n) != 0)
		return serr(st, "'%.80s' is not %d hex digits", st->tok[1],
		    SG_SHA256_HEX_LEN);
	e->pub.has_client_sha256 = 1;
	e->sha_line = st->lineno;
	return 0;
}

static int
check_approval_key(struct parser *st, EVP_PKEY *pk)
{
	enum sg_key_alg alg = sg_pubkey_alg(pk);
	int bits;

	if (alg == SG_ALG_ECDSA_P256 || alg == SG_ALG_ECDSA_P384)
		return 0;
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits >= POLICY_RSA_MIN_BITS && bits <= POLICY_RSA_MAX_BITS)
			return 0;
		return serr(st, "RSA key of %d bits (officers need %d to %d)",
		    bits, POLICY_RSA_MIN_BITS, POLICY_RSA_MAX_BITS);
	}
	return serr(st, "key type not accepted (officers sign with ECDSA "
	    "P-256/P-384 or RSA >= %d bits)", POLICY_RSA_MIN_BITS);
}

static const char *
strip_blanks(char *s)
{
	char *e;

	while (is_blank(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_blank(e[-1]))
		*--e = '\0';
	return s;
}

/*
 * `approval-key` is followed by one PEM block, PUBLIC KEY or CERTIFICATE.
 * It is rebuilt with leading blanks stripped, so that it can be indented
 * like the rest of the block, and parsed here: a key that does not load
 * must stop the policy, not fail later at the first approval.
 */
static int
kw_approval_key(struct parser *st)
{
	static const char *labels[] = { "PUBLIC KEY", "CERTIFICATE" };
	struct principal_ent *e = cur_principal(st);
	const char *label = NULL, *l;
	char begin[64], end[64];
	size_t i, plen = 0, n;
	int r, endl, kwl = st->lineno;
	EVP_PKEY *pk = NULL;

	if ((r = want_args(st, 0)) != 0)
		return r;
	e->key_line = kwl;
	if ((r = next_line(st)) < 0)
		return r;
	l = r == 1 ? strip_blanks(st->line) : "";
	for (i = 0; r == 1 && !st->is_comment && label == NULL &&
	    i < sizeof(labels) / sizeof(labels[0]); i++) {
		snprintf(begin, sizeof(begin), "-----BEGIN %s-----", labels[i]);
		if (strcmp(l, begin) == 0)
			label = labels[i];
	}
	if (label == NULL)
		return perr(st, r == 1 ? st->lineno : kwl, "%s: approval-key: "
		    "expected '-----BEGIN PUBLIC KEY-----' or '-----BEGIN "
		    "CERTIFICATE-----' on the next line", st->ctx);
	snprintf(end, sizeof(end), "-----END %s-----", label);
	for (;;) {
		n = strlen(l);
		if (plen + n + 1 > POLICY_PEM_MAX)
			return perr(st, st->lineno, "%s: approval-key: PEM "
			    "block is larger than %d bytes", st->ctx,
			    POLICY_PEM_MAX);
		memcpy(st->pem + plen, l, n);
		st->pem[plen + n] = '\n';
		plen += n + 1;
		if (strcmp(l, end) == 0)
			break;
		if ((r = next_line(st)) < 0)
			return r;
		if (r == 0)
			return perr(st, kwl, "%s: approval-key: PEM block "
			    "has no '%s' line", st->ctx, end);
		l = strip_blanks(st->line);
		if (st->is_comment || *l == '\0')
			return perr(st, st->lineno, "%s: approval-key: blank "
			    "or comment line inside the PEM block", st->ctx);
		if (strncmp(l, "-----", 5) == 0 && strcmp(l, end) != 0)
			return perr(st, st->lineno, "%s: approval-key: "
			    "expected '%s', found '%.64s'", st->ctx, end, l);
	}
	st->pem[plen] = '\0';
	/* Messages below blame the approval-key line (st->tok still holds
	 * its tokens: only st->line was reused). */
	endl = st->lineno;
	st->lineno = kwl;
	if (sg_pubkey_from_pem(st->pem, plen, &pk) != 0)
		return serr(st, "the %s PEM block does not parse", label);
	if ((r = check_approval_key(st, pk)) != 0) {
		EVP_PKEY_free(pk);
		return r;
	}
	st->lineno = endl;
	e->pub.approval_key = pk;
	return 0;
}

/* --- group --- */

static int
kw_members(struct parser *st)
{
	struct group_ent *g = cur_group(st);
	size_t i;
	int r;

	if ((r = want_some(st, POLICY_MAX_MEMBERS, "members")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (!sg_name_ok(st->tok[i], SG_NAME_LEN_MAX))
			return serr(st, "'%.64s' is not a valid name",
			    st->tok[i]);
		if (find_dup(st->tok, i))
			return serr(st, "principal '%s' listed twice",
			    st->tok[i]);
		copy_str(g->member_names[i - 1], st->tok[i],
		    SG_NAME_SIZE);
	}
	g->nmembers = st->ntok - 1;
	g->members_line = st->lineno;
	return 0;
}

/* --- hsm --- */

static int
kw_manufacturer(struct parser *st)
{
	return take_rest(st, cur_hsm(st)->pub.manufacturer,
	    sizeof(cur_hsm(st)->pub.manufacturer) - 1);
}

static int
kw_model(struct parser *st)
{
	return take_rest(st, cur_hsm(st)->pub.model,
	    sizeof(cur_hsm(st)->pub.model) - 1);
}

static int
kw_site(struct parser *st)
{
	return take_rest(st, cur_hsm(st)->pub.site,
	    sizeof(cur_hsm(st)->pub.site) - 1);
}

static int
kw_country(struct parser *st)
{
	int r;

	if ((r = want_args(st, 1)) != 0)
		return r;
	if (!sg_country_ok(st->tok[1]))
		return serr(st, "'%.64s' is not a two-letter upper-case "
		    "country code", st->tok[1]);
	copy_str(cur_hsm(st)->pub.country, st->tok[1], 3);
	return 0;
}

/* --- key --- */

enum {
	KKW_TOKEN = 0, KKW_OBJECT, KKW_ID, KKW_URI, KKW_ALGORITHM,
	KKW_FORMATS, KKW_CERTIFICATE, KKW_REQUESTERS, KKW_REQUIRE, KKW_VETO,
	KKW_LIFETIME, KKW_COUNTRIES, KKW_RETIRED,
};

/* `uri` replaces token/object/id as a whole: mixing them would leave two
 * answers to "which object is this key". */
static int
location_conflict(struct parser *st, int self)
{
	static const int others[] = { KKW_TOKEN, KKW_OBJECT, KKW_ID };
	size_t i;

	if (self != KKW_URI) {
		if (st->kwline[KKW_URI] != 0)
			return serr(st, "cannot be combined with 'uri' "
			    "(line %d)", st->kwline[KKW_URI]);
		return 0;
	}
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (st->kwline[others[i]] != 0)
			return serr(st, "cannot be combined with '%s' "
			    "(line %d)", st->kws[others[i]].name,
			    st->kwline[others[i]]);
	return 0;
}

static int
kw_token(struct parser *st)
{
	int r;

	if ((r = location_conflict(st, KKW_TOKEN)) != 0)
		return r;
	return take_token(st, cur_key(st)->pub.token,
	    sizeof(cur_key(st)->pub.token) - 1, "token label");
}

static int
kw_object(struct parser *st)
{
	int r;

	if ((r = location_conflict(st, KKW_OBJECT)) != 0)
		return r;
	return take_token(st, cur_key(st)->pub.object,
	    sizeof(cur_key(st)->pub.object) - 1, "object label");
}

static int
kw_id(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	size_t n;
	int r;

	if ((r = location_conflict(st, KKW_ID)) != 0 ||
	    (r = want_args(st, 1)) != 0)
		return r;
	r = sg_hex_decode(st->tok[1], strlen(st->tok[1]), k->id,
	    sizeof(k->id), &n);
	if (r == SG_ERR_BUFFER)
		return serr(st, "'%.64s' is longer than %zu bytes", st->tok[1],
		    sizeof(k->id));
	if (r != 0 || n == 0)
		return serr(st, "'%.64s' is not an even number of hex digits",
		    st->tok[1]);
	k->id_len = n;
	return 0;
}

static int
kw_uri(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	size_t idlen = 0;
	int r;

	if ((r = location_conflict(st, KKW_URI)) != 0 ||
	    (r = want_args(st, 1)) != 0)
		return r;
	if (sg_p11_uri_parse(st->tok[1], k->token, k->object,
	    sizeof(k->object), k->id, sizeof(k->id), &idlen) != 0) {
		/* Partial outputs must not survive a refused URI. */
		memset(k->token, 0, sizeof(k->token));
		memset(k->object, 0, sizeof(k->object));
		memset(k->id, 0, sizeof(k->id));
		return serr(st, "'%.80s' is not a PKCS#11 URI naming a key",
		    st->tok[1]);
	}
	k->id_len = idlen;
	if (k->token[0] == '\0')
		return serr(st, "'%.80s' has no token= attribute", st->tok[1]);
	if (k->object[0] == '\0' && k->id_len == 0)
		return serr(st, "'%.80s' has neither object= nor id=",
		    st->tok[1]);
	return 0;
}

static int
kw_algorithm(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	int r;

	if ((r = want_args(st, 1)) != 0)
		return r;
	if (sg_scheme_from_name(st->tok[1], &k->alg, &k->scheme) != 0)
		return serr(st, "unknown algorithm '%.64s' (ecdsa-p256, "
		    "ecdsa-p384, rsa-pkcs1, rsa-pss or ed25519)", st->tok[1]);
	return 0;
}

static int
kw_formats(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	enum sg_format f;
	size_t i;
	int r;

	if ((r = want_some(st, 2, "formats")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (find_dup(st->tok, i))
			return serr(st, "format '%s' listed twice", st->tok[i]);
		if (sg_format_parse(st->tok[i], &f) != 0)
			return serr(st, "unknown format '%.64s' (%s or %s)",
			    st->tok[i], sg_format_str(SG_FORMAT_RAW),
			    sg_format_str(SG_FORMAT_CMS));
		k->formats |= (unsigned)f;
	}
	return 0;
}

static int
kw_certificate(struct parser *st)
{
	return take_token(st, cur_key(st)->pub.certificate,
	    sizeof(cur_key(st)->pub.certificate) - 1, "path");
}

static int
kw_requesters(struct parser *st)
{
	struct key_ent *e = cur_key(st);
	size_t i;
	int r;

	if ((r = want_some(st, SG_POLICY_MAX_REQUESTERS, "requesters")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (!sg_name_ok(st->tok[i], SG_NAME_LEN_MAX))
			return serr(st, "'%.64s' is not a valid name",
			    st->tok[i]);
		if (find_dup(st->tok, i))
			return serr(st, "principal '%s' listed twice",
			    st->tok[i]);
		copy_str(e->pub.requesters[i - 1], st->tok[i],
		    SG_NAME_SIZE);
	}
	e->pub.nrequesters = st->ntok - 1;
	e->requesters_line = st->lineno;
	return 0;
}

static int
kw_require(struct parser *st)
{
	struct key_ent *e = cur_key(st);
	struct sg_term *t;
	uint64_t count;
	size_t i;
	int r;

	if (st->ntok == 2)
		return serr(st, "missing count after group '%.64s'",
		    st->tok[1]);
	if ((r = want_args(st, 2)) != 0)
		return r;
	if (!sg_name_ok(st->tok[1], SG_NAME_LEN_MAX))
		return serr(st, "'%.64s' is not a valid group name",
		    st->tok[1]);
	if (sg_parse_u64(st->tok[2], 0, UINT64_MAX, &count) != 0)
		return serr(st, "group '%s': count '%.64s' is not a number",
		    st->tok[1], st->tok[2]);
	if (count == 0)
		return serr(st, "group '%s': count must be at least 1",
		    st->tok[1]);
	/* Counts above the member limit can never be met; the exact bound
	 * (the group's size) is checked once groups are known. */
	if (count > POLICY_MAX_MEMBERS)
		return serr(st, "group '%s': count %llu is larger than any "
		    "group can be (%d)", st->tok[1], (unsigned long long)count,
		    POLICY_MAX_MEMBERS);
	for (i = 0; i < e->pub.nterms; i++)
		if (strcmp(e->pub.terms[i].group, st->tok[1]) == 0)
			return serr(st, "group '%s' is already required at "
			    "line %d", st->tok[1], e->term_line[i]);
	if (e->pub.nterms >= SG_POLICY_MAX_TERMS)
		return serr(st, "more than %d require terms",
		    SG_POLICY_MAX_TERMS);
	t = &e->pub.terms[e->pub.nterms];
	copy_str(t->group, st->tok[1], sizeof(t->group));
	t->count = (unsigned)count;
	e->term_line[e->pub.nterms++] = st->lineno;
	return 0;
}

static int
kw_veto(struct parser *st)
{
	int r;

	if ((r = want_args(st, 1)) != 0)
		return r;
	if (strcmp(st->tok[1], "yes") == 0)
		cur_key(st)->pub.veto = 1;
	else if (strcmp(st->tok[1], "no") == 0)
		cur_key(st)->pub.veto = 0;
	else
		return serr(st, "'%.64s' is not yes or no", st->tok[1]);
	return 0;
}

static int
kw_lifetime(struct parser *st)
{
	char num[32];
	const char *v;
	size_t n;
	uint64_t mult = 1, val;
	int r;

	if ((r = want_args(st, 1)) != 0)
		return r;
	v = st->tok[1];
	n = strlen(v);
	if (n > 0) {
		switch (v[n - 1]) {
		case 's':
			n--;
			break;
		case 'm':
			mult = 60;
			n--;
			break;
		case 'h':
			mult = 3600;
			n--;
			break;
		case 'd':
			mult = 86400;
			n--;
			break;
		}
	}
	if (n == 0 || n >= sizeof(num))
		return serr(st, "'%.64s' is not a duration (N, Ns, Nm, Nh or "
		    "Nd)", v);
	memcpy(num, v, n);
	num[n] = '\0';
	if (sg_parse_u64(num, 0, UINT64_MAX, &val) != 0)
		return serr(st, "'%.64s' is not a duration (N, Ns, Nm, Nh or "
		    "Nd)", v);
	if (val > POLICY_LIFETIME_MAX / mult || val * mult < POLICY_LIFETIME_MIN)
		return serr(st, "'%.64s' is not between 5s and 30d", v);
	cur_key(st)->pub.lifetime = val * mult;
	return 0;
}

static int
kw_countries(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	size_t i;
	int r;

	if ((r = want_some(st, SG_POLICY_MAX_COUNTRIES, "countries")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (!sg_country_ok(st->tok[i]))
			return serr(st, "'%.64s' is not a two-letter "
			    "upper-case country code", st->tok[i]);
		if (find_dup(st->tok, i))
			return serr(st, "'%s' listed twice", st->tok[i]);
		copy_str(k->countries[i - 1], st->tok[i], 3);
	}
	k->ncountries = st->ntok - 1;
	return 0;
}

/* retired <certificate path> <YYYY-MM-DDTHH:MM:SSZ> */
static int
kw_retired(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	struct sg_retired_key *rk;
	struct tm tm;
	char back[32];
	const char *end;
	time_t t;
	size_t i;
	int r;

	if ((r = want_args(st, 2)) != 0)
		return r;
	if (k->nretired >= SG_POLICY_MAX_RETIRED)
		return serr(st, "more than %d retired keys",
		    SG_POLICY_MAX_RETIRED);
	if (strlen(st->tok[1]) >= sizeof(rk->certificate))
		return serr(st, "path longer than %zu characters",
		    sizeof(rk->certificate) - 1);
	memset(&tm, 0, sizeof(tm));
	end = strptime(st->tok[2], "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0' || (t = timegm(&tm)) == (time_t)-1)
		return serr(st, "'%.64s' is not a UTC time like "
		    "2026-11-29T12:00:00Z", st->tok[2]);
	sg_time_rfc3339(t, back, sizeof(back));
	if (strcmp(back, st->tok[2]) != 0)
		return serr(st, "'%.64s' is not a valid time", st->tok[2]);
	for (i = 0; i < k->nretired; i++)
		if (strcmp(k->retired[i].certificate, st->tok[1]) == 0)
			return serr(st, "'%.64s' is already retired",
			    st->tok[1]);
	rk = &k->retired[k->nretired++];
	copy_str(rk->certificate, st->tok[1], sizeof(rk->certificate));
	rk->retired_at = (int64_t)t;
	return 0;
}

static const struct keyword principal_kws[] = {
	{ "roles", kw_roles, 0 },
	{ "client-cn", kw_client_cn, 0 },
	{ "client-sha256", kw_client_sha256, 0 },
	{ "approval-key", kw_approval_key, 0 },
	{ NULL, NULL, 0 },
};

static const struct keyword group_kws[] = {
	{ "members", kw_members, 0 },
	{ NULL, NULL, 0 },
};

static const struct keyword hsm_kws[] = {
	{ "manufacturer", kw_manufacturer, 0 },
	{ "model", kw_model, 0 },
	{ "site", kw_site, 0 },
	{ "country", kw_country, 0 },
	{ NULL, NULL, 0 },
};

/* Indexed by KKW_*. */
static const struct keyword key_kws[] = {
	{ "token", kw_token, 0 },
	{ "object", kw_object, 0 },
	{ "id", kw_id, 0 },
	{ "uri", kw_uri, 0 },
	{ "algorithm", kw_algorithm, 0 },
	{ "formats", kw_formats, 0 },
	{ "certificate", kw_certificate, 0 },
	{ "requesters", kw_requesters, 0 },
	{ "require", kw_require, 1 },
	{ "veto", kw_veto, 0 },
	{ "lifetime", kw_lifetime, 0 },
	{ "countries", kw_countries, 0 },
	{ "retired", kw_retired, 1 },
	{ NULL, NULL, 0 },
};

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
		return principal_kws;
	case BLK_GROUP:
		return group_kws;
	case BLK_HSM:
		return hsm_kws;
	default:
		return key_kws;
	}
}

/* The name of a block: an HSM's serial, or a name of the language. */
static int
check_block_name(struct parser *st, enum block b, const char *name)
{
	if (b == BLK_HSM) {
		if (strlen(name) >= sizeof(st->p->hsms[0].pub.serial))
			return serr(st, "serial '%.64s' is longer than %zu "
			    "characters", name,
			    sizeof(st->p->hsms[0].pub.serial) - 1);
	} else if (!sg_name_ok(name, SG_NAME_LEN_MAX))
		return serr(st, "'%.64s' is not a valid name "
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
		copy_str(cur_principal(st)->pub.name, name, SG_NAME_SIZE);
		cur_principal(st)->line = st->lineno;
		return 0;
	case BLK_GROUP:
		if ((r = grow((void **)&p->groups, &p->ngroups,
		    &p->groups_cap, sizeof(*p->groups),
		    POLICY_MAX_GROUPS)) != 0)
			return r;
		copy_str(cur_group(st)->name, name, SG_NAME_SIZE);
		cur_group(st)->line = st->lineno;
		return 0;
	case BLK_HSM:
		if ((r = grow((void **)&p->hsms, &p->nhsms, &p->hsms_cap,
		    sizeof(*p->hsms), POLICY_MAX_HSMS)) != 0)
			return r;
		copy_str(cur_hsm(st)->pub.serial, name,
		    sizeof(cur_hsm(st)->pub.serial));
		cur_hsm(st)->line = st->lineno;
		return 0;
	case BLK_KEY:
		if ((r = grow((void **)&p->keys, &p->nkeys, &p->keys_cap,
		    sizeof(*p->keys), POLICY_MAX_KEYS)) != 0)
			return r;
		copy_str(cur_key(st)->pub.name, name, SG_NAME_SIZE);
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
	if ((r = want_args(st, 1)) != 0)
		return r;
	name = st->tok[1];
	if ((r = check_block_name(st, b, name)) != 0)
		return r;
	if (st->policy_line == 0)
		return serr(st, "'policy <name>' must come before any block");
	st->kws = block_kws(b);
	if ((prev = defined_at(st->p, b, name)) != 0)
		return serr(st, "'%s' is already defined at line %d", name,
		    prev);
	r = new_entity(st, b, name);
	if (r == SG_ERR_TOO_LARGE)
		return serr(st, "more than %d %s blocks", block_max(b),
		    block_name(b));
	if (r != 0)
		return r;
	st->blk = b;
	st->blk_line = st->lineno;
	snprintf(st->ctx, sizeof(st->ctx), "%s '%s'", block_name(b), name);
	memset(st->kwline, 0, sizeof(st->kwline));
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
			return perr(st, l, "%s: missing 'roles'", st->ctx);
		if (e->pub.client_cn[0] == '\0' && !e->pub.has_client_sha256)
			return perr(st, l, "%s: missing 'client-cn' or "
			    "'client-sha256'", st->ctx);
		if ((e->pub.roles & SG_ROLE_OFFICER) &&
		    e->pub.approval_key == NULL)
			return perr(st, l, "%s: an officer needs an "
			    "'approval-key'", st->ctx);
		if (!(e->pub.roles & SG_ROLE_OFFICER) &&
		    e->pub.approval_key != NULL)
			return perr(st, e->key_line, "%s: approval-key: only "
			    "officers have an approval key", st->ctx);
		break;
	}
	case BLK_GROUP:
		if (cur_group(st)->nmembers == 0)
			return perr(st, l, "%s: missing 'members'", st->ctx);
		break;
	case BLK_HSM:
		if (cur_hsm(st)->pub.site[0] == '\0')
			return perr(st, l, "%s: missing 'site'", st->ctx);
		if (cur_hsm(st)->pub.country[0] == '\0')
			return perr(st, l, "%s: missing 'country'", st->ctx);
		break;
	case BLK_KEY: {
		struct sg_policy_key *k = &cur_key(st)->pub;

		if (k->token[0] == '\0')
			return perr(st, l, "%s: missing 'token' (or 'uri')",
			    st->ctx);
		if (k->object[0] == '\0' && k->id_len == 0)
			return perr(st, l, "%s: missing 'object' or 'id' (or "
			    "'uri')", st->ctx);
		if (k->alg == SG_ALG_NONE)
			return perr(st, l, "%s: missing 'algorithm'", st->ctx);
		if (k->formats == 0)
			return perr(st, l, "%s: missing 'formats'", st->ctx);
		if ((k->formats & SG_FORMAT_CMS) && k->certificate[0] == '\0')
			return perr(st, l, "%s: format cms needs "
			    "'certificate'", st->ctx);
		if (k->ncountries == 0)
			return perr(st, l, "%s: missing 'countries'", st->ctx);
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
			return serr(st, "repeated (first at line %d)",
			    st->policy_line);
		if ((r = want_args(st, 1)) != 0)
			return r;
		if (!sg_name_ok(st->tok[1], SG_NAME_LEN_MAX))
			return serr(st, "'%.64s' is not a valid name",
			    st->tok[1]);
		if (st->p->nprincipals + st->p->ngroups + st->p->nhsms +
		    st->p->nkeys > 0)
			return serr(st, "must come before any block");
		copy_str(st->p->name, st->tok[1], sizeof(st->p->name));
		st->policy_line = st->lineno;
		return 0;
	}
	if (strcmp(k, "version") == 0) {
		if (st->version_line != 0)
			return serr(st, "repeated (first at line %d)",
			    st->version_line);
		if ((r = want_args(st, 1)) != 0)
			return r;
		if (sg_parse_u64(st->tok[1], 1, POLICY_VERSION_MAX,
		    &st->p->version) != 0)
			return serr(st, "'%.64s' is not an integer from 1 to "
			    "2^53", st->tok[1]);
		st->version_line = st->lineno;
		return 0;
	}
	if (strcmp(k, "end") == 0)
		return perr(st, st->lineno, "'end' without an open block");
	return perr(st, st->lineno, "unknown keyword '%.64s'", k);
}

static int
block_statement(struct parser *st)
{
	const char *k = st->tok[0];
	size_t i;

	if (strcmp(k, "end") == 0) {
		if (st->ntok > 1)
			return serr(st, "unexpected '%.64s'", st->tok[1]);
		return close_block(st);
	}
	for (i = 0; st->kws[i].name != NULL; i++) {
		if (strcmp(st->kws[i].name, k) != 0)
			continue;
		if (!st->kws[i].repeatable && st->kwline[i] != 0)
			return serr(st, "repeated (first at line %d)",
			    st->kwline[i]);
		st->kwline[i] = st->lineno;
		return st->kws[i].fn(st);
	}
	if (strcmp(k, "principal") == 0 || strcmp(k, "group") == 0 ||
	    strcmp(k, "hsm") == 0 || strcmp(k, "key") == 0 ||
	    strcmp(k, "policy") == 0 || strcmp(k, "version") == 0)
		return perr(st, st->lineno, "%s: '%s' inside a block (missing "
		    "'end' for line %d?)", st->ctx, k, st->blk_line);
	return perr(st, st->lineno, "%s: unknown keyword '%.64s'", st->ctx, k);
}

/* --- resolution of names across blocks --- */

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
				bad = perr(st, a->cn_line, "principal '%s': "
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
				bad = perr(st, a->sha_line, "principal '%s': "
				    "client-sha256: already used by principal "
				    "'%s'", a->pub.name, b->pub.name);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (a->pub.approval_key != NULL &&
			    b->pub.approval_key != NULL &&
			    EVP_PKEY_eq(a->pub.approval_key,
			    b->pub.approval_key) == 1) {
				bad = perr(st, a->key_line, "principal '%s': "
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
				bad = perr(st, g->members_line, "group '%s': "
				    "members: principal '%s' is not defined",
				    g->name, g->member_names[j]);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (!(p->principals[pi].pub.roles & SG_ROLE_OFFICER)) {
				bad = perr(st, g->members_line, "group '%s': "
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

static int
resolve_keys(struct parser *st)
{
	int bad = 0;
	const struct sg_policy *p = st->p;
	const struct key_ent *e;
	const struct group_ent *g;
	ssize_t pi;
	size_t i, j;

	for (i = 0; i < p->nkeys; i++) {
		e = &p->keys[i];
		for (j = 0; j < e->pub.nrequesters; j++) {
			pi = policy_principal_index(p, e->pub.requesters[j]);
			if (pi < 0) {
				bad = perr(st, e->requesters_line, "key '%s': "
				    "requesters: principal '%s' is not "
				    "defined", e->pub.name,
				    e->pub.requesters[j]);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (!(p->principals[pi].pub.roles &
			    SG_ROLE_REQUESTER)) {
				bad = perr(st, e->requesters_line, "key '%s': "
				    "requesters: principal '%s' does not have "
				    "the requester role", e->pub.name,
				    e->pub.requesters[j]);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
		}
		for (j = 0; j < e->pub.nterms; j++) {
			const struct sg_term *t = &e->pub.terms[j];

			if ((g = policy_group_find(p, t->group)) == NULL) {
				bad = perr(st, e->term_line[j], "key '%s': "
				    "require: group '%s' is not defined",
				    e->pub.name, t->group);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
			if (t->count > g->nmembers) {
				bad = perr(st, e->term_line[j], "key '%s': "
				    "require: group '%s' has %zu members, "
				    "fewer than %u", e->pub.name, t->group,
				    g->nmembers, t->count);
				GO_ON_OR_RETURN(st, bad);
				continue;
			}
		}
	}
	return bad;
}

/* --- public interface --- */

void
sg_policy_free(struct sg_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nprincipals; i++)
		EVP_PKEY_free(p->principals[i].pub.approval_key);
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
		return perr(st, line, "file is larger than %d bytes",
		    SG_POLICY_FILE_MAX);
	}
	sg_sha256(st->buf, st->len, digest);
	sg_hex_encode(digest, sizeof(digest), p->sha256_hex);

	while ((r = next_line(st)) != 0) {
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
		r = perr(st, st->blk_line, "%s: block is not closed with "
		    "'end'", st->ctx);
		GO_ON_OR_RETURN(st, r);
	}
	if (st->policy_line == 0) {
		r = perr(st, st->lineno > 0 ? st->lineno : 1,
		    "missing 'policy <name>'");
		GO_ON_OR_RETURN(st, r);
	}
	if (st->version_line == 0 && st->policy_line != 0) {
		r = perr(st, st->policy_line, "policy '%s': missing "
		    "'version'", p->name);
		GO_ON_OR_RETURN(st, r);
	}
	/* Names are resolved only in a file whose blocks all parsed: in a
	 * broken one they would only echo the errors above. */
	if (st->nerrors > 0)
		return SG_ERR_INVALID;
	if ((r = resolve_principals(st)) != 0 && st->report == NULL)
		return r;
	if ((r = resolve_groups(st)) != 0 && st->report == NULL)
		return r;
	if ((r = resolve_keys(st)) != 0 && st->report == NULL)
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
