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
#include "sg_webauthn.h"

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
 * A key statement (`approval-key`, `webauthn-key`) is followed by one PEM
 * block with one of `labels`.  It is rebuilt in st->pem with leading blanks
 * stripped, so that it can be indented like the rest of the block.  kwl is
 * the statement's line; *ret_label the block's label.
 */
static int
read_pem_block(struct parser *st, const char *kw, const char *const *labels,
    size_t nlabels, int kwl, const char **ret_label, size_t *ret_len)
{
	const char *label = NULL, *l;
	char begin[64], end[64];
	size_t i, plen = 0, n;
	int r;

	if ((r = pol_next_line(st)) < 0)
		return r;
	l = r == 1 ? pol_strip_blanks(st->line) : "";
	for (i = 0; r == 1 && !st->is_comment && label == NULL && i < nlabels;
	    i++) {
		snprintf(begin, sizeof(begin), "-----BEGIN %s-----", labels[i]);
		if (strcmp(l, begin) == 0)
			label = labels[i];
	}
	if (label == NULL)
		return pol_perr(st, r == 1 ? st->lineno : kwl,
		    "%s: %s: expected '-----BEGIN %s-----'%s on the next line",
		    st->ctx, kw, labels[0], nlabels > 1 ? " or '-----BEGIN "
		    "CERTIFICATE-----'" : "");
	snprintf(end, sizeof(end), "-----END %s-----", label);
	for (;;) {
		n = strlen(l);
		if (plen + n + 1 > POLICY_PEM_MAX)
			return pol_perr(st, st->lineno, "%s: %s: PEM "
			    "block is larger than %d bytes", st->ctx, kw,
			    POLICY_PEM_MAX);
		memcpy(st->pem + plen, l, n);
		st->pem[plen + n] = '\n';
		plen += n + 1;
		if (strcmp(l, end) == 0)
			break;
		if ((r = pol_next_line(st)) < 0)
			return r;
		if (r == 0)
			return pol_perr(st, kwl, "%s: %s: PEM block "
			    "has no '%s' line", st->ctx, kw, end);
		l = pol_strip_blanks(st->line);
		if (st->is_comment || *l == '\0')
			return pol_perr(st, st->lineno, "%s: %s: blank "
			    "or comment line inside the PEM block", st->ctx,
			    kw);
		if (strncmp(l, "-----", 5) == 0 && strcmp(l, end) != 0)
			return pol_perr(st, st->lineno, "%s: %s: expected "
			    "'%s', found '%.64s'", st->ctx, kw, end, l);
	}
	st->pem[plen] = '\0';
	*ret_label = label;
	*ret_len = plen;
	return 0;
}

/*
 * `approval-key` is followed by one PEM block, PUBLIC KEY or CERTIFICATE,
 * parsed here: a key that does not load must stop the policy, not fail
 * later at the first approval.
 */
static int
kw_approval_key(struct parser *st)
{
	static const char *const labels[] = { "PUBLIC KEY", "CERTIFICATE" };
	struct principal_ent *e = cur_principal(st);
	const char *label = NULL;
	size_t plen = 0;
	int r, endl, kwl = st->lineno;
	EVP_PKEY *pk = NULL;

	if ((r = pol_want_args(st, 0)) != 0)
		return r;
	e->key_line = kwl;
	if ((r = read_pem_block(st, "approval-key", labels, 2, kwl, &label,
	    &plen)) != 0)
		return r;
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

/* A DNS label: 1..63 of [a-z0-9-], not starting or ending with '-'. */
static int
dns_label_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

/*
 * A lower-case DNS name of at most 253 characters, as an RP ID is: labels
 * separated by dots, and not an IP address (a last label of digits only
 * would make one).
 */
static int
rp_id_ok(const char *s, size_t n)
{
	size_t i, start = 0, digits = 1;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (s[i] < '0' || s[i] > '9')
				digits = 0;
			continue;
		}
		if (!dns_label_ok(s + start, i - start))
			return 0;
		if (i == n && digits)
			return 0;
		start = i + 1;
		digits = 1;
	}
	return 1;
}

/*
 * "https://" host [":" port], nothing after: the origin a browser reports
 * (which never writes the default port 443), whose host is the RP ID or
 * a name under it.
 */
static int
origin_ok(struct parser *st, const char *origin, const char *rp_id)
{
	static const char scheme[] = "https://";
	const char *host = origin + sizeof(scheme) - 1, *colon;
	size_t hl, rl = strlen(rp_id);
	uint64_t port;

	if (strncmp(origin, scheme, sizeof(scheme) - 1) != 0)
		return pol_serr(st, "origin '%.80s' must be https://<host>"
		    "[:<port>]", origin);
	colon = strchr(host, ':');
	hl = colon != NULL ? (size_t)(colon - host) : strlen(host);
	if (!rp_id_ok(host, hl))
		return pol_serr(st, "origin '%.80s': the host must be a "
		    "lower-case DNS name, with no path", origin);
	if (colon != NULL && (colon[1] == '0' ||
	    sg_parse_u64(colon + 1, 1, 65535, &port) != 0 || port == 443))
		return pol_serr(st, "origin '%.80s': the port must be 1 to "
		    "65535 without leading zeros, and not 443 (browsers do not "
		    "write it)", origin);
	if (!(hl == rl && memcmp(host, rp_id, rl) == 0) &&
	    !(hl > rl + 1 && host[hl - rl - 1] == '.' &&
	    memcmp(host + hl - rl, rp_id, rl) == 0))
		return pol_serr(st, "origin '%.80s': its host must be the "
		    "rp-id '%s' or a name under it", origin, rp_id);
	return 0;
}

/* ES256 takes a P-256 key, RS256 an RSA key of 2048 to 8192 bits. */
static int
check_webauthn_key(struct parser *st, EVP_PKEY *pk)
{
	int bits;

	if (sg_pubkey_alg(pk) == SG_ALG_ECDSA_P256)
		return 0;
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		bits = EVP_PKEY_get_bits(pk);
		if (bits >= POLICY_RSA_MIN_BITS && bits <= POLICY_RSA_MAX_BITS)
			return 0;
		return pol_serr(st, "RSA key of %d bits (RS256 needs %d to %d)",
		    bits, POLICY_RSA_MIN_BITS, POLICY_RSA_MAX_BITS);
	}
	return pol_serr(st, "key type not accepted (ES256: an EC P-256 key; "
	    "RS256: an RSA key of %d bits or more)", POLICY_RSA_MIN_BITS);
}

/* The statement's words: <id> rp-id <rp-id> origin <origin>
 * [user-verification], into c (the key aside). */
static int
webauthn_words(struct parser *st, struct sg_webauthn_cred *c)
{
	const char *id = st->tok[1];

	if (st->ntok != 6 && st->ntok != 7)
		return pol_serr(st, "expected '<credential id> rp-id <rp-id> "
		    "origin <origin> [user-verification]'");
	if (strcmp(st->tok[2], "rp-id") != 0 ||
	    strcmp(st->tok[4], "origin") != 0 ||
	    (st->ntok == 7 && strcmp(st->tok[6], "user-verification") != 0))
		return pol_serr(st, "expected '<credential id> rp-id <rp-id> "
		    "origin <origin> [user-verification]'");
	if (sg_b64url_decode(id, strlen(id), c->id, sizeof(c->id),
	    &c->id_len) != 0 || c->id_len == 0)
		return pol_serr(st, "credential id '%.80s' is not 1 to %d "
		    "bytes of base64url without padding", id,
		    SG_WEBAUTHN_CRED_ID_MAX);
	if (!rp_id_ok(st->tok[3], strlen(st->tok[3])))
		return pol_serr(st, "rp-id '%.80s' is not a lower-case DNS "
		    "name (letters, digits, hyphens and dots, at most 253 "
		    "characters, not an IP address)", st->tok[3]);
	pol_copy_str(c->rp_id, st->tok[3], sizeof(c->rp_id));
	if (strlen(st->tok[5]) >= sizeof(c->origin))
		return pol_serr(st, "origin is longer than %zu characters",
		    sizeof(c->origin) - 1);
	if (origin_ok(st, st->tok[5], c->rp_id) != 0)
		return SG_ERR_INVALID;
	pol_copy_str(c->origin, st->tok[5], sizeof(c->origin));
	c->require_uv = st->ntok == 7;
	return 0;
}

/* The credential of the statement on the current line and its PEM block
 * (in st->pem): c filled in, its key loaded, or an error. */
static int
webauthn_cred(struct parser *st, const struct principal_ent *e,
    struct sg_webauthn_cred *c, const char *label, size_t plen)
{
	EVP_PKEY *pk = NULL;
	size_t i;
	int r;

	if ((r = webauthn_words(st, c)) != 0)
		return r;
	if (e->pub.nwebauthn >= SG_POLICY_MAX_WEBAUTHN)
		return pol_serr(st, "more than %d credentials",
		    SG_POLICY_MAX_WEBAUTHN);
	for (i = 0; i < e->pub.nwebauthn; i++)
		if (e->pub.webauthn[i].id_len == c->id_len &&
		    memcmp(e->pub.webauthn[i].id, c->id, c->id_len) == 0)
			return pol_serr(st, "credential '%.80s' is listed "
			    "twice (also line %d)", st->tok[1], e->wa_line[i]);
	if (sg_pubkey_from_pem(st->pem, plen, &pk) != 0)
		return pol_serr(st, "the %s PEM block does not parse", label);
	if ((r = check_webauthn_key(st, pk)) != 0) {
		EVP_PKEY_free(pk);
		return r;
	}
	c->pub = pk;
	return 0;
}

/*
 * `webauthn-key <credential id> rp-id <rp-id> origin <origin>
 * [user-verification]`, followed by one PEM PUBLIC KEY block: a security
 * key's credential an officer approves with (docs/API.md, "Approvals made
 * with a security key").
 */
static int
kw_webauthn_key(struct parser *st)
{
	static const char *const labels[] = { "PUBLIC KEY" };
	struct principal_ent *e = cur_principal(st);
	struct sg_webauthn_cred c;
	const char *label = NULL;
	size_t plen = 0;
	int r, endl, kwl = st->lineno;

	memset(&c, 0, sizeof(c));
	/* The PEM block first, so that a bad statement does not leave its
	 * block to be read as statements.  It reuses st->line, not st->tok:
	 * messages below blame the webauthn-key line with its words. */
	if ((r = read_pem_block(st, "webauthn-key", labels, 1, kwl, &label,
	    &plen)) != 0)
		return r;
	endl = st->lineno;
	st->lineno = kwl;
	r = webauthn_cred(st, e, &c, label, plen);
	st->lineno = endl;
	if (r != 0)
		return r;
	if (e->pub.webauthn == NULL && (e->pub.webauthn = calloc(
	    SG_POLICY_MAX_WEBAUTHN, sizeof(*e->pub.webauthn))) == NULL) {
		EVP_PKEY_free(c.pub);
		return pol_perr(st, kwl, "out of memory");
	}
	e->wa_line[e->pub.nwebauthn] = kwl;
	e->pub.webauthn[e->pub.nwebauthn++] = c;
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
	uint64_t count, sum;
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
	/* A signature's log entry carries the approvals that made its
	 * quorum, and an entry's size is bounded (sg_entry.h). */
	for (i = 0, sum = count; i < *nterms; i++)
		sum += terms[i].count;
	if (sum > SG_QUORUM_MAX)
		return pol_serr(st, "the counts of %s sum to %llu, more than "
		    "the %d approvals one signature's log entry can carry",
		    st->tok[0], (unsigned long long)sum, SG_QUORUM_MAX);
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

/* Top level: `policy-change require <group> <count>`, repeatable: the
 * officers who must approve this policy's successor. */
int
pol_policy_change(struct parser *st)
{
	static char name[] = "policy-change require";
	struct sg_policy *p = st->p;
	char *kw = st->tok[0];
	int r;

	if (st->ntok < 2 || strcmp(st->tok[1], "require") != 0)
		return pol_serr(st, "expected 'policy-change require <group> "
		    "<count>'");
	/* take_term reads tok[1] and tok[2]: drop "require". */
	memmove(&st->tok[1], &st->tok[2], (st->ntok - 2) * sizeof(st->tok[0]));
	st->ntok--;
	st->tok[0] = name;
	r = take_term(st, p->change_terms, &p->nchange_terms,
	    p->change_term_line);
	st->tok[0] = kw;
	return r;
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
	{ "webauthn-key", kw_webauthn_key, 1 },
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
