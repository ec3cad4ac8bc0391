/*
 * The keywords of the policy language's blocks: one handler per keyword,
 * and the table of each block (the parser, policy.c, dispatches through
 * them; the parser state and its helpers are in policy_int.h).
 *
 * A handler runs on one tokenised line of the open block and fills the
 * block's record.  It checks its own values only: what a block must
 * contain is checked when the block closes, and names that point at other
 * blocks are resolved after the whole file is read (both in policy.c).
 * Every error names the block, the keyword and why (pol_serr()).
 */
#include <stdio.h>
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

#define POLICY_CN_MAX (SG_NAME_SIZE * 4 - 1)
#define POLICY_LIFETIME_MIN 5ULL	/* seconds */
#define POLICY_LIFETIME_MAX (30ULL * 86400)
/* Officers sign approvals; larger RSA signatures would not fit SG_MAX_SIG. */
#define POLICY_RSA_MIN_BITS 2048
#define POLICY_RSA_MAX_BITS 8192

/* --- principal --- */

static int
kw_roles(struct parser *st)
{
	struct principal_ent *e = cur_principal(st);
	size_t i;
	int r;

	if ((r = pol_want_some(st, 3, "roles")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		const char *t = st->tok[i];

		if (pol_find_dup(st->tok, i))
			return pol_serr(st, "role '%s' listed twice", t);
		if (strcmp(t, "requester") == 0)
			e->pub.roles |= SG_ROLE_REQUESTER;
		else if (strcmp(t, "officer") == 0)
			e->pub.roles |= SG_ROLE_OFFICER;
		else if (strcmp(t, "auditor") == 0)
			e->pub.roles |= SG_ROLE_AUDITOR;
		else
			return pol_serr(st, "unknown role '%.64s' (requester, "
			    "officer or auditor)", t);
	}
	return 0;
}

static int
kw_client_cn(struct parser *st)
{
	struct principal_ent *e = cur_principal(st);

	e->cn_line = st->lineno;
	return pol_take_rest(st, e->pub.client_cn, POLICY_CN_MAX);
}

static int
kw_client_sha256(struct parser *st)
{
	struct principal_ent *e = cur_principal(st);
	size_t n;
	int r;

	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	if (strlen(st->tok[1]) != SG_SHA256_HEX_LEN ||
	    sg_hex_decode(st->tok[1], SG_SHA256_HEX_LEN, e->pub.client_sha256,
	    sizeof(e->pub.client_sha256), &n) != 0)
		return pol_serr(st, "'%.80s' is not %d hex digits", st->tok[1],
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
		return pol_serr(st,
		    "RSA key of %d bits (officers need %d to %d)",
		    bits, POLICY_RSA_MIN_BITS, POLICY_RSA_MAX_BITS);
	}
	return pol_serr(st, "key type not accepted (officers sign with ECDSA "
	    "P-256/P-384 or RSA >= %d bits)", POLICY_RSA_MIN_BITS);
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

	if ((r = pol_want_args(st, 0)) != 0)
		return r;
	e->key_line = kwl;
	if ((r = pol_next_line(st)) < 0)
		return r;
	l = r == 1 ? pol_strip_blanks(st->line) : "";
	for (i = 0; r == 1 && !st->is_comment && label == NULL &&
	    i < sizeof(labels) / sizeof(labels[0]); i++) {
		snprintf(begin, sizeof(begin), "-----BEGIN %s-----", labels[i]);
		if (strcmp(l, begin) == 0)
			label = labels[i];
	}
	if (label == NULL)
		return pol_perr(st, r == 1 ? st->lineno : kwl,
		    "%s: approval-key: "
		    "expected '-----BEGIN PUBLIC KEY-----' or '-----BEGIN "
		    "CERTIFICATE-----' on the next line", st->ctx);
	snprintf(end, sizeof(end), "-----END %s-----", label);
	for (;;) {
		n = strlen(l);
		if (plen + n + 1 > POLICY_PEM_MAX)
			return pol_perr(st, st->lineno, "%s: approval-key: PEM "
			    "block is larger than %d bytes", st->ctx,
			    POLICY_PEM_MAX);
		memcpy(st->pem + plen, l, n);
		st->pem[plen + n] = '\n';
		plen += n + 1;
		if (strcmp(l, end) == 0)
			break;
		if ((r = pol_next_line(st)) < 0)
			return r;
		if (r == 0)
			return pol_perr(st, kwl, "%s: approval-key: PEM block "
			    "has no '%s' line", st->ctx, end);
		l = pol_strip_blanks(st->line);
		if (st->is_comment || *l == '\0')
			return pol_perr(st, st->lineno,
			    "%s: approval-key: blank "
			    "or comment line inside the PEM block", st->ctx);
		if (strncmp(l, "-----", 5) == 0 && strcmp(l, end) != 0)
			return pol_perr(st, st->lineno, "%s: approval-key: "
			    "expected '%s', found '%.64s'", st->ctx, end, l);
	}
	st->pem[plen] = '\0';
	/* Messages below blame the approval-key line (st->tok still holds
	 * its tokens: only st->line was reused). */
	endl = st->lineno;
	st->lineno = kwl;
	if (sg_pubkey_from_pem(st->pem, plen, &pk) != 0)
		return pol_serr(st, "the %s PEM block does not parse", label);
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

	if ((r = pol_want_some(st, POLICY_MAX_MEMBERS, "members")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (!sg_name_ok(st->tok[i], SG_NAME_LEN_MAX))
			return pol_serr(st, "'%.64s' is not a valid name",
			    st->tok[i]);
		if (pol_find_dup(st->tok, i))
			return pol_serr(st, "principal '%s' listed twice",
			    st->tok[i]);
		pol_copy_str(g->member_names[i - 1], st->tok[i],
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
	return pol_take_rest(st, cur_hsm(st)->pub.manufacturer,
	    sizeof(cur_hsm(st)->pub.manufacturer) - 1);
}

static int
kw_model(struct parser *st)
{
	return pol_take_rest(st, cur_hsm(st)->pub.model,
	    sizeof(cur_hsm(st)->pub.model) - 1);
}

static int
kw_site(struct parser *st)
{
	return pol_take_rest(st, cur_hsm(st)->pub.site,
	    sizeof(cur_hsm(st)->pub.site) - 1);
}

static int
kw_country(struct parser *st)
{
	int r;

	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	if (!sg_country_ok(st->tok[1]))
		return pol_serr(st, "'%.64s' is not a two-letter upper-case "
		    "country code", st->tok[1]);
	pol_copy_str(cur_hsm(st)->pub.country, st->tok[1], 3);
	return 0;
}

/* --- key --- */

enum {
	KKW_TOKEN = 0, KKW_OBJECT, KKW_ID, KKW_URI, KKW_ALGORITHM,
	KKW_FORMATS, KKW_CERTIFICATE, KKW_REQUESTERS, KKW_REQUIRE, KKW_VETO,
	KKW_LIFETIME, KKW_COUNTRIES, KKW_RETIRED, KKW_ALLOW_RELEASES,
	KKW_ALLOW_GRANTS, KKW_REQUIRE_GRANT,
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
			return pol_serr(st, "cannot be combined with 'uri' "
			    "(line %d)", st->kwline[KKW_URI]);
		return 0;
	}
	for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		if (st->kwline[others[i]] != 0)
			return pol_serr(st, "cannot be combined with '%s' "
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
	return pol_take_token(st, cur_key(st)->pub.token,
	    sizeof(cur_key(st)->pub.token) - 1, "token label");
}

static int
kw_object(struct parser *st)
{
	int r;

	if ((r = location_conflict(st, KKW_OBJECT)) != 0)
		return r;
	return pol_take_token(st, cur_key(st)->pub.object,
	    sizeof(cur_key(st)->pub.object) - 1, "object label");
}

static int
kw_id(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	size_t n;
	int r;

	if ((r = location_conflict(st, KKW_ID)) != 0 ||
	    (r = pol_want_args(st, 1)) != 0)
		return r;
	r = sg_hex_decode(st->tok[1], strlen(st->tok[1]), k->id,
	    sizeof(k->id), &n);
	if (r == SG_ERR_BUFFER)
		return pol_serr(st, "'%.64s' is longer than %zu bytes",
		    st->tok[1],
		    sizeof(k->id));
	if (r != 0 || n == 0)
		return pol_serr(st,
		    "'%.64s' is not an even number of hex digits",
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
	    (r = pol_want_args(st, 1)) != 0)
		return r;
	if (sg_p11_uri_parse(st->tok[1], k->token, k->object,
	    sizeof(k->object), k->id, sizeof(k->id), &idlen) != 0) {
		/* Partial outputs must not survive a refused URI. */
		memset(k->token, 0, sizeof(k->token));
		memset(k->object, 0, sizeof(k->object));
		memset(k->id, 0, sizeof(k->id));
		return pol_serr(st, "'%.80s' is not a PKCS#11 URI naming a key",
		    st->tok[1]);
	}
	k->id_len = idlen;
	if (k->token[0] == '\0')
		return pol_serr(st, "'%.80s' has no token= attribute",
		    st->tok[1]);
	if (k->object[0] == '\0' && k->id_len == 0)
		return pol_serr(st, "'%.80s' has neither object= nor id=",
		    st->tok[1]);
	return 0;
}

static int
kw_algorithm(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	int r;

	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	if (sg_scheme_from_name(st->tok[1], &k->alg, &k->scheme) != 0)
		return pol_serr(st, "unknown algorithm '%.64s' (ecdsa-p256, "
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

	if ((r = pol_want_some(st, 2, "formats")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (pol_find_dup(st->tok, i))
			return pol_serr(st, "format '%s' listed twice",
			    st->tok[i]);
		if (sg_format_parse(st->tok[i], &f) != 0)
			return pol_serr(st, "unknown format '%.64s' (%s or %s)",
			    st->tok[i], sg_format_str(SG_FORMAT_RAW),
			    sg_format_str(SG_FORMAT_CMS));
		k->formats |= (unsigned)f;
	}
	return 0;
}

static int
kw_certificate(struct parser *st)
{
	return pol_take_token(st, cur_key(st)->pub.certificate,
	    sizeof(cur_key(st)->pub.certificate) - 1, "path");
}

static int
kw_requesters(struct parser *st)
{
	struct key_ent *e = cur_key(st);
	size_t i;
	int r;

	if ((r = pol_want_some(st, SG_POLICY_MAX_REQUESTERS,
	    "requesters")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (!sg_name_ok(st->tok[i], SG_NAME_LEN_MAX))
			return pol_serr(st, "'%.64s' is not a valid name",
			    st->tok[i]);
		if (pol_find_dup(st->tok, i))
			return pol_serr(st, "principal '%s' listed twice",
			    st->tok[i]);
		pol_copy_str(e->pub.requesters[i - 1], st->tok[i],
		    SG_NAME_SIZE);
	}
	e->pub.nrequesters = st->ntok - 1;
	e->requesters_line = st->lineno;
	return 0;
}

/* `require` and `require-grant`: <group> <count> into terms (n of them,
 * each with its line). */
static int
take_term(struct parser *st, struct sg_term *terms, size_t *nterms,
    int *lines)
{
	struct sg_term *t;
	uint64_t count;
	size_t i;
	int r;

	if (st->ntok == 2)
		return pol_serr(st, "missing count after group '%.64s'",
		    st->tok[1]);
	if ((r = pol_want_args(st, 2)) != 0)
		return r;
	if (!sg_name_ok(st->tok[1], SG_NAME_LEN_MAX))
		return pol_serr(st, "'%.64s' is not a valid group name",
		    st->tok[1]);
	if (sg_parse_u64(st->tok[2], 0, UINT64_MAX, &count) != 0)
		return pol_serr(st, "group '%s': count '%.64s' is not a number",
		    st->tok[1], st->tok[2]);
	if (count == 0)
		return pol_serr(st, "group '%s': count must be at least 1",
		    st->tok[1]);
	/* Counts above the member limit can never be met; the exact bound
	 * (the group's size) is checked once groups are known. */
	if (count > POLICY_MAX_MEMBERS)
		return pol_serr(st, "group '%s': count %llu is larger than any "
		    "group can be (%d)", st->tok[1], (unsigned long long)count,
		    POLICY_MAX_MEMBERS);
	for (i = 0; i < *nterms; i++)
		if (strcmp(terms[i].group, st->tok[1]) == 0)
			return pol_serr(st, "group '%s' is already required at "
			    "line %d", st->tok[1], lines[i]);
	if (*nterms >= SG_POLICY_MAX_TERMS)
		return pol_serr(st, "more than %d %s terms",
		    SG_POLICY_MAX_TERMS, st->tok[0]);
	t = &terms[*nterms];
	pol_copy_str(t->group, st->tok[1], sizeof(t->group));
	t->count = (unsigned)count;
	lines[(*nterms)++] = st->lineno;
	return 0;
}

static int
kw_require(struct parser *st)
{
	struct key_ent *e = cur_key(st);

	return take_term(st, e->pub.terms, &e->pub.nterms, e->term_line);
}

/* Allowed only with allow-grants: checked when the block closes, since
 * the order of a block's statements is free. */
static int
kw_require_grant(struct parser *st)
{
	struct key_ent *e = cur_key(st);

	return take_term(st, e->pub.grant_terms, &e->pub.ngrant_terms,
	    e->grant_term_line);
}

static int
kw_veto(struct parser *st)
{
	int r;

	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	if (strcmp(st->tok[1], "yes") == 0)
		cur_key(st)->pub.veto = 1;
	else if (strcmp(st->tok[1], "no") == 0)
		cur_key(st)->pub.veto = 0;
	else
		return pol_serr(st, "'%.64s' is not yes or no", st->tok[1]);
	return 0;
}

/* A duration as `lifetime` takes it: N, Ns, Nm, Nh or Nd, 5s..30d. */
static int
take_duration(struct parser *st, const char *v, uint64_t *ret)
{
	char num[32];
	size_t n;
	uint64_t mult = 1, val;

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
		return pol_serr(st,
		    "'%.64s' is not a duration (N, Ns, Nm, Nh or "
		    "Nd)", v);
	memcpy(num, v, n);
	num[n] = '\0';
	if (sg_parse_u64(num, 0, UINT64_MAX, &val) != 0)
		return pol_serr(st,
		    "'%.64s' is not a duration (N, Ns, Nm, Nh or "
		    "Nd)", v);
	if (val > POLICY_LIFETIME_MAX / mult || val * mult < POLICY_LIFETIME_MIN)
		return pol_serr(st, "'%.64s' is not between 5s and 30d", v);
	*ret = val * mult;
	return 0;
}

static int
kw_lifetime(struct parser *st)
{
	int r;

	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	return take_duration(st, st->tok[1], &cur_key(st)->pub.lifetime);
}

/* allow-releases <max artifacts> */
static int
kw_allow_releases(struct parser *st)
{
	uint64_t v;
	int r;

	if ((r = pol_want_args(st, 1)) != 0)
		return r;
	if (sg_parse_u64(st->tok[1], 1, SG_RELEASE_MAX, &v) != 0)
		return pol_serr(st, "'%.64s' is not a number of artifacts from "
		    "1 to %d", st->tok[1], SG_RELEASE_MAX);
	cur_key(st)->pub.release_max = (uint32_t)v;
	return 0;
}

/* allow-grants <max count> <max lifetime> */
static int
kw_allow_grants(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	uint64_t count, life;
	int r;

	if (st->ntok == 2)
		return pol_serr(st, "missing lifetime after count '%.64s'",
		    st->tok[1]);
	if ((r = pol_want_args(st, 2)) != 0)
		return r;
	if (sg_parse_u64(st->tok[1], 1, SG_GRANT_MAX, &count) != 0)
		return pol_serr(st, "count '%.64s' is not a number of "
		    "signatures from 1 to %d", st->tok[1], SG_GRANT_MAX);
	if ((r = take_duration(st, st->tok[2], &life)) != 0)
		return r;
	k->grant_max_count = (uint32_t)count;
	k->grant_max_lifetime = life;
	return 0;
}

static int
kw_countries(struct parser *st)
{
	struct sg_policy_key *k = &cur_key(st)->pub;
	size_t i;
	int r;

	if ((r = pol_want_some(st, SG_POLICY_MAX_COUNTRIES, "countries")) != 0)
		return r;
	for (i = 1; i < st->ntok; i++) {
		if (!sg_country_ok(st->tok[i]))
			return pol_serr(st, "'%.64s' is not a two-letter "
			    "upper-case country code", st->tok[i]);
		if (pol_find_dup(st->tok, i))
			return pol_serr(st, "'%s' listed twice", st->tok[i]);
		pol_copy_str(k->countries[i - 1], st->tok[i], 3);
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

	if ((r = pol_want_args(st, 2)) != 0)
		return r;
	if (k->nretired >= SG_POLICY_MAX_RETIRED)
		return pol_serr(st, "more than %d retired keys",
		    SG_POLICY_MAX_RETIRED);
	if (strlen(st->tok[1]) >= sizeof(rk->certificate))
		return pol_serr(st, "path longer than %zu characters",
		    sizeof(rk->certificate) - 1);
	memset(&tm, 0, sizeof(tm));
	end = strptime(st->tok[2], "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0' || (t = timegm(&tm)) == (time_t)-1)
		return pol_serr(st, "'%.64s' is not a UTC time like "
		    "2026-11-29T12:00:00Z", st->tok[2]);
	sg_time_rfc3339(t, back, sizeof(back));
	if (strcmp(back, st->tok[2]) != 0)
		return pol_serr(st, "'%.64s' is not a valid time", st->tok[2]);
	for (i = 0; i < k->nretired; i++)
		if (strcmp(k->retired[i].certificate, st->tok[1]) == 0)
			return pol_serr(st, "'%.64s' is already retired",
			    st->tok[1]);
	rk = &k->retired[k->nretired++];
	pol_copy_str(rk->certificate, st->tok[1], sizeof(rk->certificate));
	rk->retired_at = (int64_t)t;
	return 0;
}

const struct keyword pol_principal_kws[] = {
	{ "roles", kw_roles, 0 },
	{ "client-cn", kw_client_cn, 0 },
	{ "client-sha256", kw_client_sha256, 0 },
	{ "approval-key", kw_approval_key, 0 },
	{ NULL, NULL, 0 },
};

const struct keyword pol_group_kws[] = {
	{ "members", kw_members, 0 },
	{ NULL, NULL, 0 },
};

const struct keyword pol_hsm_kws[] = {
	{ "manufacturer", kw_manufacturer, 0 },
	{ "model", kw_model, 0 },
	{ "site", kw_site, 0 },
	{ "country", kw_country, 0 },
	{ NULL, NULL, 0 },
};

/* Indexed by KKW_*. */
const struct keyword pol_key_kws[] = {
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
	{ "allow-releases", kw_allow_releases, 0 },
	{ "allow-grants", kw_allow_grants, 0 },
	{ "require-grant", kw_require_grant, 1 },
	{ NULL, NULL, 0 },
};
