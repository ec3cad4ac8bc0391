/*
 * Tests for the policy module: a full valid policy and every accessor,
 * each rejection with its exact "file:line:" prefix, the quorum evaluator
 * (exhaustively over the dev rules, and against a brute-force search over
 * random group layouts), and a mutation loop that must never crash or leak.
 *
 * Officers' approval keys are generated here with OpenSSL and written into
 * the policy text as PEM, so the tests need no files.  Templates use
 * "@KEY:<name>@" for an `approval-key` statement with that key's PEM.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_policy.h"
#include "sg_util.h"
#include "sg_webauthn.h"
#include "sg_test.h"
#include "sg_fixture.h"

/* A decision signed with the approval key. */
#define D(officer, approve) { (officer), (approve), NULL, 0 }

#define FILENAME "t.policy"

/* --- test keys --- */

struct test_key {
	const char *name;
	EVP_PKEY *pkey;
	char *pem;
};

static struct test_key keys[] = {
	{ "alice", NULL, NULL },
	{ "bob", NULL, NULL },
	{ "carol", NULL, NULL },	/* as a CERTIFICATE */
	{ "dave", NULL, NULL },
	{ "erin", NULL, NULL },
	{ "p384", NULL, NULL },
	{ "rsa2048", NULL, NULL },
	{ "rsa1024", NULL, NULL },
	{ "ed25519", NULL, NULL },
	{ "o0", NULL, NULL },
	{ "o1", NULL, NULL },
	{ "o2", NULL, NULL },
	{ "o3", NULL, NULL },
	{ "o4", NULL, NULL },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void
make_keys(void)
{
	size_t i;

	if (keys[0].pkey != NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		struct test_key *k = &keys[i];

		if (strcmp(k->name, "p384") == 0)
			k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		else if (strcmp(k->name, "rsa2048") == 0)
			k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
			    (size_t)2048);
		else if (strcmp(k->name, "rsa1024") == 0)
			k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
			    (size_t)1024);
		else if (strcmp(k->name, "ed25519") == 0)
			k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		else
			k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		if (k->pkey == NULL)
			abort();
		if (strcmp(k->name, "carol") == 0)
			k->pem = sg_fx_self_signed_pem(k->pkey, "carol");
		else
			k->pem = sg_fx_pubkey_pem(k->pkey);
		if (k->pem == NULL)
			abort();
	}
}

static struct test_key *
find_key(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strlen(keys[i].name) == len &&
		    strncmp(keys[i].name, name, len) == 0)
			return &keys[i];
	abort();
}

/* --- text building --- */

struct sb {
	char *s;
	size_t len, cap;
};

static void
sb_addn(struct sb *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		if ((b->s = realloc(b->s, b->cap)) == NULL)
			abort();
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_add(struct sb *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void sb_printf(struct sb *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sb *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort();
	sb_addn(b, tmp, (size_t)n);
}

/* The first "@KEY:" or "@PEM:" marker in p, or NULL. */
static const char *
next_marker(const char *p)
{
	const char *k = strstr(p, "@KEY:"), *m = strstr(p, "@PEM:");

	if (k == NULL || (m != NULL && m < k))
		return m;
	return k;
}

/* Expands "@KEY:name@" into an approval-key statement and an indented PEM
 * block, "@PEM:name@" into the block alone (for a webauthn-key). */
static char *
expand(const char *tmpl)
{
	struct sb b = { NULL, 0, 0 };
	const char *p = tmpl, *m, *e, *l, *nl;

	make_keys();
	sb_add(&b, "");
	while ((m = next_marker(p)) != NULL) {
		sb_addn(&b, p, (size_t)(m - p));
		if ((e = strchr(m + 5, '@')) == NULL)
			abort();
		if (m[1] == 'K')
			sb_add(&b, "approval-key\n");
		for (l = find_key(m + 5, (size_t)(e - m - 5))->pem; *l != '\0';
		    l = nl + 1) {
			nl = strchr(l, '\n');
			sb_add(&b, "        ");
			sb_addn(&b, l, (size_t)(nl - l + 1));
		}
		p = e + 1;
		if (*p == '\n')
			p++;
	}
	sb_add(&b, p);
	return b.s;
}

static int
line_of(const char *text, const char *anchor)
{
	const char *a = strstr(text, anchor), *p;
	int line = 1;

	if (a == NULL)
		return -1;
	for (p = text; p < a; p++)
		if (*p == '\n')
			line++;
	return line;
}

/* The dev policy's shape. */
static const char dev_tmpl[] =
    "# The development policy, as tests know it.  Umlauts are fine in\n"
    "# comments: Z\xc3\xbcrich.\n"
    "policy signgate-dev\n"
    "version 7\n"
    "\n"
    "principal ci\n"
    "\troles requester\n"
    "\tclient-cn ci\n"
    "end\n"
    "principal alice\n"
    "    roles officer\n"
    "    client-cn alice\n"
    "    @KEY:alice@\n"
    "end\n"
    "principal bob\n"
    "    roles officer\n"
    "    client-cn Bob Example  \n"
    "    @KEY:bob@\n"
    "end\n"
    "principal carol\n"
    "    roles officer\n"
    "    client-sha256 "
    "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n"
    "    client-cn carol\n"
    "    @KEY:carol@\n"
    "end\n"
    "principal dave\n"
    "    roles requester officer\n"
    "    client-cn dave\n"
    "    @KEY:p384@\n"
    "end\n"
    "principal audit\n"
    "    roles auditor\n"
    "    client-sha256 "
    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"
    "end\n"
    "principal erin\n"
    "    roles officer\n"
    "    client-cn erin\n"
    "    @KEY:rsa2048@\n"
    "end\n"
    "\n"
    "# Groups may name principals defined further down, and vice versa.\n"
    "group security-officers\n"
    "    members alice bob carol\n"
    "end\n"
    "group release-managers\n"
    "    members dave\n"
    "end\n"
    "\n"
    "hsm 4c6d3b1f0a2e7c91\n"
    "    manufacturer SoftHSM project\n"
    "    model SoftHSM v2\n"
    "    site Zurich\n"
    "    country CH\n"
    "end\n"
    "hsm X1\n"
    "    country DE\n"
    "    site Frankfurt am Main\n"
    "end\n"
    "\n"
    "key release\n"
    "    token signgate-dev\n"
    "    object release\n"
    "    algorithm ecdsa-p256\n"
    "    formats raw cms\n"
    "    certificate /var/dev/codesign/release.chain.pem\n"
    "    requesters ci dave\n"
    "    require security-officers 2\n"
    "    require release-managers 1\n"
    "    veto no\n"
    "    lifetime 24h\n"
    "    countries CH\n"
    "end\n"
    "key firmware\n"
    "    countries CH LI\n"
    "    require security-officers 2\n"
    "    veto yes\n"
    "    algorithm rsa-pkcs1\n"
    "    formats cms raw\n"
    "    certificate fw.pem\n"
    "    requesters ci\n"
    "    lifetime 90m\n"
    "    token signgate-dev\n"
    "    id 0A0b\n"
    "end\n"
    "key nightly\n"
    "    uri pkcs11:token=signgate-dev;object=night%20ly;id=%01%02\n"
    "    algorithm ed25519\n"
    "    formats raw\n"
    "    requesters ci\n"
    "    countries CH\n"
    "end\n"
    "key pss\n"
    "    token signgate-dev\n"
    "    object firmware\n"
    "    id 01\n"
    "    algorithm rsa-pss\n"
    "    formats raw\n"
    "    lifetime 3600\n"
    "    countries CH\n"
    "end\n";

static struct sg_policy *
parse_ok(const char *text)
{
	struct sg_policy *p = NULL;
	char err[1024];
	int r;

	r = sg_policy_parse(FILENAME, text, strlen(text), &p, err, sizeof(err));
	if (r != 0) {
		fprintf(stderr, "  unexpected parse error: %s\n", err);
		CHECK_EQ_INT(r, 0);
		return NULL;
	}
	CHECK(p != NULL);
	return p;
}

static struct sg_policy *
dev_policy(void)
{
	char *text = expand(dev_tmpl);
	struct sg_policy *p = parse_ok(text);

	free(text);
	return p;
}

/* --- valid policy and accessors --- */

static void
test_valid_policy(void)
{
	char *text = expand(dev_tmpl);
	struct sg_policy *p = parse_ok(text);
	const struct sg_principal *pr;
	const struct sg_policy_key *k;
	const struct sg_hsm *h;
	uint8_t d[32], sha[32];
	char hex[SG_SHA256_HEX_SIZE];
	size_t n;

	if (p == NULL) {
		free(text);
		return;
	}
	CHECK_STR(sg_policy_name(p), "signgate-dev");
	CHECK_EQ_INT(sg_policy_version(p), 7);
	sg_sha256(text, strlen(text), d);
	sg_hex_encode(d, 32, hex);
	CHECK_STR(sg_policy_sha256_hex(p), hex);
	CHECK_EQ_INT(strlen(sg_policy_sha256_hex(p)), 64);

	pr = sg_policy_principal(p, "ci");
	CHECK(pr != NULL && pr->roles == SG_ROLE_REQUESTER);
	CHECK(pr != NULL && pr->approval_key == NULL);
	CHECK(pr != NULL && !pr->has_client_sha256);
	pr = sg_policy_principal(p, "bob");
	CHECK(pr != NULL && strcmp(pr->client_cn, "Bob Example") == 0);
	CHECK(pr != NULL && pr->roles == SG_ROLE_OFFICER);
	CHECK(pr != NULL && EVP_PKEY_eq(pr->approval_key,
	    find_key("bob", 3)->pkey) == 1);
	pr = sg_policy_principal(p, "carol");
	CHECK(pr != NULL && pr->has_client_sha256);
	CHECK(pr != NULL && pr->client_sha256[0] == 0x00 &&
	    pr->client_sha256[10] == 0xaa && pr->client_sha256[31] == 0xff);
	/* From a CERTIFICATE block. */
	CHECK(pr != NULL && EVP_PKEY_eq(pr->approval_key,
	    find_key("carol", 5)->pkey) == 1);
	pr = sg_policy_principal(p, "dave");
	CHECK(pr != NULL &&
	    pr->roles == (SG_ROLE_REQUESTER | SG_ROLE_OFFICER));
	CHECK(pr != NULL && sg_pubkey_alg(pr->approval_key) ==
	    SG_ALG_ECDSA_P384);
	pr = sg_policy_principal(p, "erin");
	CHECK(pr != NULL && sg_pubkey_alg(pr->approval_key) == SG_ALG_RSA);
	pr = sg_policy_principal(p, "audit");
	CHECK(pr != NULL && pr->roles == SG_ROLE_AUDITOR &&
	    pr->client_cn[0] == '\0');
	CHECK(sg_policy_principal(p, "mallory") == NULL);
	CHECK(sg_policy_principal(p, NULL) == NULL);

	/* Certificate mapping: fingerprint first, then CN. */
	memset(sha, 0x5a, sizeof(sha));
	pr = sg_policy_principal_by_cert(p, "alice", sha);
	CHECK(pr != NULL && strcmp(pr->name, "alice") == 0);
	pr = sg_policy_principal_by_cert(p, "Bob Example", NULL);
	CHECK(pr != NULL && strcmp(pr->name, "bob") == 0);
	CHECK(sg_policy_principal_by_cert(p, "Bob", sha) == NULL);
	CHECK(sg_policy_principal_by_cert(p, "ALICE", sha) == NULL);
	CHECK(sg_policy_principal_by_cert(p, "", sha) == NULL);
	n = 0;
	CHECK(sg_hex_decode("ffeeddccbbaa99887766554433221100"
	    "ffeeddccbbaa99887766554433221100", 64, sha, 32, &n) == 0);
	pr = sg_policy_principal_by_cert(p, "alice", sha);
	CHECK(pr != NULL && strcmp(pr->name, "audit") == 0);
	/* carol has both bindings: either one finds her, and the
	 * fingerprint wins over another principal's CN. */
	memset(sha, 0x5a, sizeof(sha));
	pr = sg_policy_principal_by_cert(p, "carol", sha);
	CHECK(pr != NULL && strcmp(pr->name, "carol") == 0);
	CHECK(sg_policy_principal_by_cert(p, "carol ", sha) == NULL);
	CHECK(sg_hex_decode("00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff", 64, sha, 32, &n) == 0);
	pr = sg_policy_principal_by_cert(p, "someone", sha);
	CHECK(pr != NULL && strcmp(pr->name, "carol") == 0);

	CHECK_EQ_INT(sg_policy_nkeys(p), 4);
	k = sg_policy_key_at(p, 0);
	CHECK(k != NULL && k == sg_policy_key(p, "release"));
	CHECK(sg_policy_key_at(p, 4) == NULL);
	CHECK(sg_policy_key(p, "nope") == NULL);
	if (k != NULL) {
		CHECK_STR(k->token, "signgate-dev");
		CHECK_STR(k->object, "release");
		CHECK_EQ_INT(k->id_len, 0);
		CHECK_EQ_INT(k->alg, SG_ALG_ECDSA_P256);
		CHECK_EQ_INT(k->scheme, SG_SIG_ECDSA);
		CHECK_EQ_INT(k->formats, SG_FORMAT_RAW | SG_FORMAT_CMS);
		CHECK_STR(k->certificate, "/var/dev/codesign/release.chain.pem");
		CHECK_EQ_INT(k->nrequesters, 2);
		CHECK_STR(k->requesters[0], "ci");
		CHECK_STR(k->requesters[1], "dave");
		CHECK_EQ_INT(k->nterms, 2);
		CHECK_STR(k->terms[0].group, "security-officers");
		CHECK_EQ_INT(k->terms[0].count, 2);
		CHECK_STR(k->terms[1].group, "release-managers");
		CHECK_EQ_INT(k->terms[1].count, 1);
		CHECK_EQ_INT(k->veto, 0);
		CHECK_EQ_INT(k->lifetime, 86400);
		CHECK_EQ_INT(k->ncountries, 1);
		CHECK_STR(k->countries[0], "CH");
		CHECK(sg_policy_may_request(p, k, "ci"));
		CHECK(sg_policy_may_request(p, k, "dave"));
		CHECK(!sg_policy_may_request(p, k, "alice"));
		CHECK(!sg_policy_may_request(p, k, "mallory"));
		CHECK(sg_policy_country_allowed(k, "CH"));
		CHECK(!sg_policy_country_allowed(k, "DE"));
		CHECK(!sg_policy_country_allowed(k, "ch"));
		CHECK(sg_policy_may_approve(p, k, "ci", "alice"));
		CHECK(sg_policy_may_approve(p, k, "ci", "dave"));
		CHECK(!sg_policy_may_approve(p, k, "dave", "dave"));
		CHECK(!sg_policy_may_approve(p, k, "alice", "alice"));
		CHECK(!sg_policy_may_approve(p, k, "ci", "erin"));
		CHECK(!sg_policy_may_approve(p, k, "ci", "audit"));
		CHECK(!sg_policy_may_approve(p, k, "ci", "ci"));
		CHECK(!sg_policy_may_approve(p, k, "ci", "mallory"));
	}
	k = sg_policy_key(p, "firmware");
	CHECK(k != NULL && k == sg_policy_key_at(p, 1));
	if (k != NULL) {
		CHECK_STR(k->object, "");
		CHECK_EQ_INT(k->id_len, 2);
		CHECK(k->id[0] == 0x0a && k->id[1] == 0x0b);
		CHECK_EQ_INT(k->alg, SG_ALG_RSA);
		CHECK_EQ_INT(k->scheme, SG_SIG_RSA_PKCS1);
		CHECK_EQ_INT(k->veto, 1);
		CHECK_EQ_INT(k->lifetime, 90 * 60);
		CHECK_EQ_INT(k->ncountries, 2);
		CHECK(sg_policy_country_allowed(k, "LI"));
		CHECK(!sg_policy_may_request(p, k, "dave"));
		CHECK(!sg_policy_may_approve(p, k, "ci", "dave"));
		CHECK(sg_policy_may_approve(p, k, "ci", "carol"));
	}
	k = sg_policy_key(p, "nightly");
	if (k != NULL) {
		CHECK_STR(k->token, "signgate-dev");
		CHECK_STR(k->object, "night ly");
		CHECK_EQ_INT(k->id_len, 2);
		CHECK(k->id[0] == 0x01 && k->id[1] == 0x02);
		CHECK_EQ_INT(k->alg, SG_ALG_ED25519);
		CHECK_EQ_INT(k->scheme, SG_SIG_EDDSA);
		CHECK_EQ_INT(k->formats, SG_FORMAT_RAW);
		CHECK_STR(k->certificate, "");
		CHECK_EQ_INT(k->nterms, 0);
		CHECK_EQ_INT(k->lifetime, 86400);
		CHECK(!sg_policy_may_approve(p, k, "ci", "alice"));
	} else
		CHECK(k != NULL);
	k = sg_policy_key(p, "pss");
	if (k != NULL) {
		CHECK_STR(k->object, "firmware");
		CHECK_EQ_INT(k->id_len, 1);
		CHECK_EQ_INT(k->scheme, SG_SIG_RSA_PSS);
		CHECK_EQ_INT(k->lifetime, 3600);
		CHECK_EQ_INT(k->nrequesters, 0);
		CHECK(!sg_policy_may_request(p, k, "ci"));
	} else
		CHECK(k != NULL);

	CHECK_EQ_INT(sg_policy_nhsms(p), 2);
	h = sg_policy_hsm(p, "4c6d3b1f0a2e7c91");
	CHECK(h != NULL && h == sg_policy_hsm_at(p, 0));
	if (h != NULL) {
		CHECK_STR(h->manufacturer, "SoftHSM project");
		CHECK_STR(h->model, "SoftHSM v2");
		CHECK_STR(h->site, "Zurich");
		CHECK_STR(h->country, "CH");
	}
	h = sg_policy_hsm_at(p, 1);
	CHECK(h != NULL && strcmp(h->serial, "X1") == 0);
	CHECK(h != NULL && strcmp(h->site, "Frankfurt am Main") == 0);
	CHECK(h != NULL && h->manufacturer[0] == '\0' && h->model[0] == '\0');
	CHECK(sg_policy_hsm_at(p, 2) == NULL);
	CHECK(sg_policy_hsm(p, "nope") == NULL);

	sg_policy_free(p);
	sg_policy_free(NULL);
	free(text);
}

static void
test_minimal_and_edges(void)
{
	struct sg_policy *p;
	char *text;

	/* No blocks at all, no trailing newline. */
	p = parse_ok("policy a\nversion 9007199254740992");
	CHECK(p != NULL && sg_policy_version(p) == 9007199254740992ULL);
	CHECK(p != NULL && sg_policy_nkeys(p) == 0 && sg_policy_nhsms(p) == 0);
	sg_policy_free(p);
	/* SHA-256 of the exact bytes: a comment changes it. */
	{
		struct sg_policy *q;

		p = parse_ok("policy a\nversion 1\n");
		q = parse_ok("policy a\nversion 1\n# x\n");
		CHECK(p != NULL && q != NULL &&
		    strcmp(sg_policy_sha256_hex(p),
		    sg_policy_sha256_hex(q)) != 0);
		CHECK_STR(p != NULL ? sg_policy_sha256_hex(p) : NULL,
		    "ed05b3655d2b9c32ec340bacd5de5d812ed61e029f8fa2bcd457c838"
		    "13b97baa");
		sg_policy_free(p);
		sg_policy_free(q);
	}
	/* Lifetime bounds and units, RSA/P-384 officers, a line of exactly
	 * 4096 bytes. */
	{
		struct sb b = { NULL, 0, 0 };
		size_t i;

		sb_add(&b, "policy a\nversion 1\n#");
		for (i = 1; i < 4096; i++)
			sb_add(&b, "x");
		sb_add(&b, "\nprincipal o\n roles officer\n client-cn o\n"
		    " @KEY:rsa2048@\nend\ngroup g\n members o\nend\n"
		    "key k1\n token t\n object o\n algorithm ecdsa-p384\n"
		    " formats raw\n countries CH\n lifetime 60s\n"
		    " require g 1\nend\n"
		    "key k2\n token t\n object o\n algorithm ecdsa-p256\n"
		    " formats raw\n countries CH\n lifetime 30d\nend\n"
		    "key k3\n token 12345678901234567890123456789012\n id ff\n"
		    " algorithm ecdsa-p256\n formats raw\n countries CH\n"
		    " lifetime 1m\nend\n");
		text = expand(b.s);
		p = parse_ok(text);
		if (p != NULL) {
			CHECK_EQ_INT(sg_policy_key(p, "k1")->lifetime, 60);
			CHECK_EQ_INT(sg_policy_key(p, "k2")->lifetime,
			    30 * 86400);
			CHECK_EQ_INT(sg_policy_key(p, "k3")->lifetime, 60);
			CHECK_EQ_INT(sg_policy_key(p, "k1")->alg,
			    SG_ALG_ECDSA_P384);
		}
		sg_policy_free(p);
		free(text);
		free(b.s);
	}
}

/* --- rejections --- */

/* The minimal valid policy the rejection cases start from. */
static const char base[] =
    "policy t\n"
    "version 1\n"
    "principal ci\n"
    "    roles requester\n"
    "    client-cn ci\n"
    "end\n";

static const char key_body[] =
    "    token tok\n"
    "    object obj\n"
    "    algorithm ecdsa-p256\n"
    "    formats raw\n"
    "    requesters ci\n"
    "    countries CH\n";

/*
 * Parses base + extra (after expansion) and expects a refusal whose
 * message starts with "t.policy:N: ", N being the line of the first
 * occurrence of `anchor` in the full text, and contains `needle`.
 */
static void
reject_at(const char *extra, const char *anchor, const char *needle,
    int use_base, int line)
{
	struct sb b = { NULL, 0, 0 };
	struct sg_policy *p = NULL;
	char err[1024], prefix[64], *text;
	int r, want;

	sb_add(&b, use_base ? base : "");
	sb_add(&b, extra);
	text = expand(b.s);
	want = anchor != NULL ? line_of(text, anchor) : line;
	r = sg_policy_parse(FILENAME, text, strlen(text), &p, err,
	    sizeof(err));
	snprintf(prefix, sizeof(prefix), FILENAME ":%d: ", want);
	if (r != SG_ERR_INVALID || p != NULL ||
	    strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err, needle) == NULL) {
		fprintf(stderr, "  case: expected \"%s...%s\", got r=%d "
		    "\"%s\"\n", prefix, needle, r, r == 0 ? "" : err);
		CHECK(r == SG_ERR_INVALID && p == NULL);
		CHECK(strncmp(err, prefix, strlen(prefix)) == 0);
		CHECK(strstr(err, needle) != NULL);
	}
	sg_policy_free(p);
	free(text);
	free(b.s);
}

#define REJECT(extra, anchor, needle) \
	reject_at(extra, anchor, needle, 1, 0)
#define REJECT_RAW(text, line, needle) \
	reject_at(text, NULL, needle, 0, line)

static char *
key_with(const char *name, const char *extra_lines)
{
	struct sb b = { NULL, 0, 0 };

	sb_printf(&b, "key %s\n", name);
	sb_add(&b, key_body);
	sb_add(&b, extra_lines);
	sb_add(&b, "end\n");
	return b.s;
}

/* A key block whose body lines matching `drop` (a prefix) are left out. */
static char *
key_without(const char *drop, const char *extra_lines)
{
	struct sb b = { NULL, 0, 0 };
	const char *l, *nl;

	sb_add(&b, "key k\n");
	for (l = key_body; *l != '\0'; l = nl + 1) {
		nl = strchr(l, '\n');
		if (strncmp(l + 4, drop, strlen(drop)) != 0)
			sb_addn(&b, l, (size_t)(nl - l + 1));
	}
	sb_add(&b, extra_lines);
	sb_add(&b, "end\n");
	return b.s;
}

static void
reject_key(const char *extra_lines, const char *anchor, const char *needle)
{
	char *k = key_with("k", extra_lines);

	REJECT(k, anchor, needle);
	free(k);
}

static const char officers[] =
    "principal alice\n"
    "    roles officer\n"
    "    client-cn alice\n"
    "    @KEY:alice@\n"
    "end\n"
    "principal bob\n"
    "    roles officer\n"
    "    client-cn bob\n"
    "    @KEY:bob@\n"
    "end\n"
    "group so\n"
    "    members alice bob\n"
    "end\n";

/* REJECT with the officers (alice, bob, group so) before extra. */
static void
reject_with_officers(const char *extra, const char *anchor,
    const char *needle)
{
	struct sb b = { NULL, 0, 0 };

	sb_add(&b, officers);
	sb_add(&b, extra);
	REJECT(b.s, anchor, needle);
	free(b.s);
}

static void
test_reject_structure(void)
{
	struct sb b = { NULL, 0, 0 };
	size_t i;

	REJECT_RAW("", 1, "missing 'policy <name>'");
	REJECT_RAW("# only\n# comments\n", 2, "missing 'policy <name>'");
	REJECT_RAW("version 1\n", 1, "missing 'policy <name>'");
	REJECT_RAW("policy t\n\n", 1, "policy 't': missing 'version'");
	REJECT_RAW("principal ci\n roles requester\n client-cn ci\nend\n"
	    "policy t\nversion 1\n", 1, "must come before any block");
	REJECT("policy u\n", "policy u", "policy: repeated (first at line 1)");
	REJECT("version 2\n", "version 2", "version: repeated");
	REJECT_RAW("policy t\nversion 0\n", 2, "version: '0' is not an "
	    "integer from 1 to 2^53");
	REJECT_RAW("policy t\nversion 9007199254740993\n", 2, "version:");
	REJECT_RAW("policy t\nversion 1x\n", 2, "'1x' is not an integer");
	REJECT_RAW("policy t\nversion -1\n", 2, "'-1' is not an integer");
	REJECT_RAW("policy t\nversion +1\n", 2, "'+1' is not an integer");
	REJECT_RAW("policy t\nversion 1 2\n", 2, "version: unexpected '2'");
	REJECT_RAW("policy t\nversion\n", 2, "version: missing value");
	REJECT_RAW("policy t u\nversion 1\n", 1, "policy: unexpected 'u'");
	REJECT_RAW("policy t!\nversion 1\n", 1, "'t!' is not a valid name");
	REJECT_RAW("Policy t\nversion 1\n", 1, "unknown keyword 'Policy'");
	REJECT("frobnicate 3\n", "frobnicate", "unknown keyword 'frobnicate'");
	REJECT_RAW("policy t\nversion 1\nend\n", 3, "'end' without an open "
	    "block");

	/* Blocks: names, duplicates, closing. */
	REJECT("principal al!ce\n", "principal al!ce",
	    "principal: 'al!ce' is not a valid name");
	REJECT("principal "
	    "a234567890123456789012345678901234567890123456789012345678901234"
	    "\n", "principal a2", "is not a valid name");
	REJECT("principal\n", "principal\n", "principal: missing value");
	REJECT("principal ci\n roles requester\n client-cn ci2\nend\n",
	    "principal ci\n roles",
	    "principal: 'ci' is already defined at line 3");
	REJECT("group g\n", "group g", "group 'g': block is not closed");
	REJECT("key k\n token t\n", "key k", "key 'k': block is not closed");
	REJECT("principal x\n roles requester\n client-cn x\n"
	    "key k\nend\n", "key k", "principal 'x': 'key' inside a block "
	    "(missing 'end' for line 7?)");
	REJECT("principal x\n roles requester\n client-cn x\n end now\n",
	    "end now", "principal 'x': end: unexpected 'now'");
	REJECT("principal x\n colour red\nend\n", "colour",
	    "principal 'x': unknown keyword 'colour'");
	REJECT("hsm 12345678901234567\n", "hsm 1",
	    "serial '12345678901234567' is longer than 16");

	/* Bytes and sizes. */
	REJECT_RAW("policy t\r\nversion 1\n", 1, "carriage return");
	REJECT("hsm s\n site Z\xc3\xbcrich\n country CH\nend\n", "site Z",
	    "byte 0xc3 at column 8");
	REJECT("hsm s\n site Zurich\x01\n country CH\nend\n", "site Z",
	    "byte 0x01");
	sb_add(&b, "# ");
	for (i = 0; i < 4095; i++)
		sb_add(&b, "y");
	sb_add(&b, "\n");
	REJECT(b.s, "# yy", "line is longer than 4096 bytes");
	free(b.s);

	/* Over the size limit: the message names the line where the limit
	 * is crossed (every line here is 1024 bytes with its LF). */
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "policy t\nversion 1\n");
	while (b.len <= SG_POLICY_MAX_SIZE) {
		sb_add(&b, "#");
		for (i = 0; i < 1022; i++)
			sb_add(&b, "z");
		sb_add(&b, "\n");
	}
	{
		struct sg_policy *p = NULL;
		char err[256], want[64];
		/* "policy t\nversion 1\n" is 19 bytes. */
		int line = 3 + (SG_POLICY_MAX_SIZE - 19) / 1024;
		int r = sg_policy_parse("big.policy", b.s, b.len, &p, err,
		    sizeof(err));

		snprintf(want, sizeof(want), "big.policy:%d: file is larger",
		    line);
		CHECK_EQ_INT(r, SG_ERR_INVALID);
		CHECK(p == NULL);
		CHECK(strncmp(err, want, strlen(want)) == 0);
		/* One byte less and it parses. */
		b.len = SG_POLICY_MAX_SIZE;
		while (b.s[b.len - 1] != '\n')
			b.len--;
		r = sg_policy_parse("big.policy", b.s, b.len, &p, err,
		    sizeof(err));
		CHECK_EQ_INT(r, 0);
		sg_policy_free(p);
	}
	free(b.s);

	/* Block count limits: the 1024 principals a policy may hold no
	 * longer fit in SG_POLICY_FILE_MAX bytes; as many as fit parse. */
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "policy t\nversion 1\n");
	for (i = 0; b.len < SG_POLICY_FILE_MAX - 64; i++)
		sb_printf(&b, "principal p%zu\n roles requester\n"
		    " client-cn p%zu\nend\n", i, i);
	{
		struct sg_policy *p = parse_ok(b.s);
		char name[32];

		snprintf(name, sizeof(name), "p%zu", i - 1);
		CHECK(i > 800 && i < 1024);
		CHECK(p != NULL && sg_policy_principal(p, name) != NULL);
		sg_policy_free(p);
	}
	free(b.s);

	/* NUL in a comment and inside a statement, passed with the true
	 * length. */
	{
		static const char cnul[] = "policy t\n# a \0 here\nversion 1\n";
		struct sg_policy *p = NULL;
		char err[256];
		int r = sg_policy_parse(FILENAME, cnul, sizeof(cnul) - 1, &p,
		    err, sizeof(err));

		CHECK_EQ_INT(r, SG_ERR_INVALID);
		CHECK_STR(err, FILENAME ":2: NUL byte at column 5");
	}
	{
		static const char nul[] = "policy t\nversion 1\0\n";
		struct sg_policy *p = NULL;
		char err[256];
		int r = sg_policy_parse(FILENAME, nul, sizeof(nul) - 1, &p,
		    err, sizeof(err));

		CHECK_EQ_INT(r, SG_ERR_INVALID);
		CHECK(strncmp(err, FILENAME ":2: NUL byte at column 10",
		    strlen(FILENAME ":2: NUL byte at column 10")) == 0);
	}
}

static void
test_reject_principals(void)
{
	REJECT("principal x\n client-cn x\nend\n", "principal x",
	    "principal 'x': missing 'roles'");
	REJECT("principal x\n roles requester\nend\n", "principal x",
	    "principal 'x': missing 'client-cn' or 'client-sha256'");
	REJECT("principal x\n roles\nend\n", " roles\n",
	    "principal 'x': roles: missing value");
	REJECT("principal x\n roles admin\nend\n", "roles admin",
	    "roles: unknown role 'admin'");
	REJECT("principal x\n roles auditor auditor\nend\n", "roles aud",
	    "roles: role 'auditor' listed twice");
	REJECT("principal x\n roles requester\n roles auditor\n"
	    " client-cn x\nend\n", "roles auditor",
	    "principal 'x': roles: repeated (first at line 8)");
	REJECT("principal x\n roles requester\n client-cn x\n"
	    " client-cn y\nend\n", "client-cn y", "client-cn: repeated");
	REJECT("principal x\n roles requester\n client-cn\nend\n",
	    "client-cn\n", "client-cn: missing value");
	REJECT("principal x\n roles requester\n client-sha256 abc\nend\n",
	    "client-sha256", "client-sha256: 'abc' is not 64 hex digits");
	REJECT("principal x\n roles requester\n client-sha256 "
	    "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    "\nend\n", "client-sha256", "is not 64 hex digits");
	/* Base is six lines: principal x opens at line 7. */
	reject_at("principal x\n roles requester\n client-cn ci\nend\n",
	    NULL, "principal 'x': client-cn: 'ci' is already used by "
	    "principal 'ci'", 1, 9);
	reject_at("principal x\n roles requester\n client-sha256 "
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "\nend\nprincipal y\n roles requester\n client-sha256 "
	    "0000000000000000000000000000000000000000000000000000000000000000"
	    "\nend\n", NULL,
	    "principal 'y': client-sha256: already used by principal 'x'",
	    1, 13);

	/* Approval keys. */
	REJECT("principal o\n roles officer\n client-cn o\nend\n",
	    "principal o", "principal 'o': an officer needs an "
	    "'approval-key'");
	REJECT("principal o\n roles auditor\n client-cn o\n @KEY:alice@\n"
	    "end\n", "approval-key", "principal 'o': approval-key: only "
	    "officers");
	REJECT("principal o\n roles officer\n client-cn o\n @KEY:ed25519@\n"
	    "end\n", "approval-key", "approval-key: key type not accepted");
	REJECT("principal o\n roles officer\n client-cn o\n @KEY:rsa1024@\n"
	    "end\n", "approval-key", "approval-key: RSA key of 1024 bits");
	REJECT("principal o\n roles officer\n client-cn o\n approval-key x\n"
	    "end\n", "approval-key", "approval-key: unexpected 'x'");
	reject_at("principal o\n roles officer\n client-cn o\n approval-key\n"
	    "end\n", NULL, "principal 'o': approval-key: expected "
	    "'-----BEGIN PUBLIC KEY-----'", 1, 11);
	REJECT("principal o\n roles officer\n client-cn o\n approval-key\n",
	    "approval-key", "expected '-----BEGIN PUBLIC KEY-----'");
	REJECT("principal o\n roles officer\n client-cn o\n approval-key\n"
	    " -----BEGIN PRIVATE KEY-----\n AAAA\n -----END PRIVATE KEY-----\n"
	    "end\n", "-----BEGIN", "approval-key: expected");
	REJECT("principal o\n roles officer\n client-cn o\n approval-key\n"
	    " -----BEGIN PUBLIC KEY-----\n AAAAAAAA\n",
	    "approval-key", "PEM block has no '-----END PUBLIC KEY-----' line");
	REJECT("principal o\n roles officer\n client-cn o\n approval-key\n"
	    " -----BEGIN PUBLIC KEY-----\n AAAAAAAA\n"
	    " -----END CERTIFICATE-----\nend\n",
	    "-----END", "expected '-----END PUBLIC KEY-----'");
	reject_at("principal o\n roles officer\n client-cn o\n approval-key\n"
	    " -----BEGIN PUBLIC KEY-----\n AAAA\n\n AAAA\n"
	    " -----END PUBLIC KEY-----\nend\n", NULL,
	    "blank or comment line inside the PEM block", 1, 13);
	REJECT("principal o\n roles officer\n client-cn o\n approval-key\n"
	    " -----BEGIN PUBLIC KEY-----\n AAAA\n# note\n AAAA\n"
	    " -----END PUBLIC KEY-----\nend\n",
	    "# note", "blank or comment line inside the PEM block");
	REJECT("principal o\n roles officer\n client-cn o\n approval-key\n"
	    " -----BEGIN PUBLIC KEY-----\n AAAAAAAAAAAAAAAA\n"
	    " -----END PUBLIC KEY-----\nend\n",
	    "approval-key", "approval-key: the PUBLIC KEY PEM block does not "
	    "parse");
	REJECT("principal o\n roles officer\n client-cn o\n approval-key\n"
	    " -----BEGIN CERTIFICATE-----\n AAAAAAAAAAAAAAAA\n"
	    " -----END CERTIFICATE-----\nend\n",
	    "approval-key", "the CERTIFICATE PEM block does not parse");
	{
		/* The second approval-key line is the one blamed. */
		char *t = expand("policy t\nversion 1\nprincipal o\n"
		    " roles officer\n client-cn o\n @KEY:alice@\nend\n"
		    "principal p\n roles officer\n client-cn p\n"
		    " @KEY:alice@\nend\n");
		const char *second = strstr(strstr(t, "principal p"),
		    "approval-key");
		struct sg_policy *p = NULL;
		char err[512], want[160];

		snprintf(want, sizeof(want), FILENAME ":%d: principal 'p': "
		    "approval-key: the same key as principal 'o'",
		    line_of(t, "principal p") + 3);
		CHECK(second != NULL);
		CHECK_EQ_INT(sg_policy_parse(FILENAME, t, strlen(t), &p, err,
		    sizeof(err)), SG_ERR_INVALID);
		CHECK_STR(err, want);
		free(t);
	}
	/* A PEM block over 16 KiB. */
	{
		struct sb b = { NULL, 0, 0 };
		int i;

		sb_add(&b, "principal o\n roles officer\n client-cn o\n"
		    " approval-key\n -----BEGIN PUBLIC KEY-----\n");
		for (i = 0; i < 300; i++)
			sb_add(&b, " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
			    "AAAAAAAAAAAAAAAA\n");
		sb_add(&b, " -----END PUBLIC KEY-----\nend\n");
		/* approval-key is line 10, BEGIN line 11; the rebuilt block
		 * holds 27 bytes for BEGIN and 65 per data line. */
		reject_at(b.s, NULL, "PEM block is larger than 16384 bytes", 1,
		    11 + ((16384 - 27) / 65 + 1));
		free(b.s);
	}
}

static void
test_reject_groups_hsms(void)
{
	struct sb b = { NULL, 0, 0 };
	int i;

	REJECT("group g\nend\n", "group g", "group 'g': missing 'members'");
	REJECT("group g\n members\nend\n", "members", "members: missing "
	    "value");
	REJECT("group g\n members ci\nend\n", "members ci",
	    "group 'g': members: principal 'ci' is not an officer");
	REJECT("group g\n members nobody\nend\n", "members nobody",
	    "group 'g': members: principal 'nobody' is not defined");
	reject_with_officers("group g\n members alice bob alice\nend\n",
	    "members alice bob alice", "members: principal 'alice' listed "
	    "twice");
	reject_with_officers("group so\n members alice\nend\n",
	    "group so\n members alice\n", "group: 'so' is already defined");
	sb_add(&b, "group g\n members");
	for (i = 0; i < 65; i++)
		sb_printf(&b, " m%d", i);
	sb_add(&b, "\nend\n");
	REJECT(b.s, " members m0", "members: more than 64 members");
	free(b.s);

	REJECT("hsm s1\n country CH\nend\n", "hsm s1", "hsm 's1': missing "
	    "'site'");
	REJECT("hsm s1\n site Zurich\nend\n", "hsm s1", "hsm 's1': missing "
	    "'country'");
	REJECT("hsm s1\n site Zurich\n country ch\nend\n", "country ch",
	    "country: 'ch' is not a two-letter upper-case country code");
	REJECT("hsm s1\n site Zurich\n country CHE\nend\n", "country CHE",
	    "'CHE' is not a two-letter");
	REJECT("hsm s1\n site Zurich\n country CH DE\nend\n", "country CH",
	    "country: unexpected 'DE'");
	REJECT("hsm s1\n site Zurich\n site Basel\n country CH\nend\n",
	    "site Basel", "hsm 's1': site: repeated (first at line 8)");
	REJECT("hsm s1\n site\n country CH\nend\n", "site\n",
	    "site: missing value");
	REJECT("hsm s1\n site Zurich\n model 12345678901234567\n"
	    " country CH\nend\n", "model", "model: '12345678901234567' is "
	    "longer than 16");
	REJECT("hsm s1\n site Zurich\n country CH\nend\n"
	    "hsm s1\n site Basel\n country CH\nend\n", "hsm s1\n site Basel",
	    "hsm: 's1' is already defined at line 7");
}

static void
test_reject_keys(void)
{
	struct sb b = { NULL, 0, 0 };
	char *k;
	int i;

	/* Missing required fields blame the key line. */
	k = key_without("token", "");
	REJECT(k, "key k", "key 'k': missing 'token' (or 'uri')");
	free(k);
	k = key_without("object", "");
	REJECT(k, "key k", "key 'k': missing 'object' or 'id'");
	free(k);
	k = key_without("algorithm", "");
	REJECT(k, "key k", "key 'k': missing 'algorithm'");
	free(k);
	k = key_without("formats", "");
	REJECT(k, "key k", "key 'k': missing 'formats'");
	free(k);
	k = key_without("countries", "");
	REJECT(k, "key k", "key 'k': missing 'countries'");
	free(k);
	k = key_without("formats", "    formats raw cms\n");
	REJECT(k, "key k", "key 'k': format cms needs 'certificate'");
	free(k);
	/* Requesters are optional. */
	k = key_without("requesters", "");
	{
		struct sb t = { NULL, 0, 0 };
		struct sg_policy *p;
		char *x;

		sb_add(&t, base);
		sb_add(&t, k);
		x = expand(t.s);
		p = parse_ok(x);
		sg_policy_free(p);
		free(x);
		free(t.s);
	}
	free(k);

	k = key_with("k", "");
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, k);
	sb_add(&b, k);
	reject_at(b.s, NULL, "key: 'k' is already defined at line 7", 1, 15);
	free(b.s);
	free(k);

	reject_key("    token other\n", "token other",
	    "key 'k': token: repeated (first at line 8)");
	reject_key("    veto yes no\n", "veto", "veto: unexpected 'no'");
	reject_key("    veto maybe\n", "veto", "veto: 'maybe' is not yes or "
	    "no");
	reject_key("    colour red\n", "colour", "key 'k': unknown keyword "
	    "'colour'");
	reject_key("    algorithm rsa\n", "algorithm rsa",
	    "algorithm: repeated");
	k = key_without("algorithm", "    algorithm rsa\n");
	REJECT(k, "algorithm rsa", "key 'k': algorithm: unknown algorithm "
	    "'rsa'");
	free(k);
	k = key_without("formats", "    formats raw pdf\n");
	REJECT(k, "formats raw pdf", "formats: unknown format 'pdf'");
	free(k);
	k = key_without("formats", "    formats raw raw\n");
	REJECT(k, "formats raw raw", "formats: format 'raw' listed twice");
	free(k);
	k = key_without("token", "    token 123456789012345678901234567890123\n");
	REJECT(k, "token 1", "token: token label "
	    "'123456789012345678901234567890123' is longer than 32");
	free(k);
	k = key_without("object", "    object "
	    "a234567890123456789012345678901234567890123456789012345678901234"
	    "\n");
	REJECT(k, "object a2", "object: object label");
	free(k);
	k = key_without("object", "    id 0a1\n");
	REJECT(k, "id 0a1", "id: '0a1' is not an even number of hex digits");
	free(k);
	k = key_without("object", "    id xy\n");
	REJECT(k, "id xy", "id: 'xy' is not");
	free(k);
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "    id ");
	for (i = 0; i < 65; i++)
		sb_add(&b, "ab");
	sb_add(&b, "\n");
	k = key_without("object", b.s);
	REJECT(k, "id abab", "is longer than 64 bytes");
	free(k);
	free(b.s);

	/* uri is an alternative to token/object/id, in either order. */
	reject_key("    uri pkcs11:token=a;object=b\n", "uri",
	    "key 'k': uri: cannot be combined with 'token' (line 8)");
	k = key_without("token", "    uri pkcs11:token=a;object=b\n");
	REJECT(k, "uri", "uri: cannot be combined with 'object'");
	free(k);
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "key k\n    uri pkcs11:token=a;object=b\n");
	sb_add(&b, key_body);
	sb_add(&b, "end\n");
	REJECT(b.s, "    token tok", "key 'k': token: cannot be combined "
	    "with 'uri' (line 8)");
	free(b.s);
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "key k\n    uri pkcs11:token=a;object=b\n    id 01\n");
	sb_add(&b, "end\n");
	REJECT(b.s, "    id 01", "key 'k': id: cannot be combined with 'uri'");
	free(b.s);
	{
		static const char body[] =
		    "    algorithm ecdsa-p256\n    formats raw\n"
		    "    countries CH\n";

		b.s = NULL;
		b.len = b.cap = 0;
		sb_printf(&b, "key k\n    uri notauri\n%send\n", body);
		REJECT(b.s, "uri", "key 'k': uri: 'notauri' is not a PKCS#11 "
		    "URI");
		free(b.s);
		b.s = NULL;
		b.len = b.cap = 0;
		sb_printf(&b, "key k\n    uri pkcs11:object=x\n%send\n", body);
		REJECT(b.s, "uri", "uri: 'pkcs11:object=x' has no token= "
		    "attribute");
		free(b.s);
		b.s = NULL;
		b.len = b.cap = 0;
		sb_printf(&b, "key k\n    uri pkcs11:token=x\n%send\n", body);
		REJECT(b.s, "uri", "has neither object= nor id=");
		free(b.s);
		b.s = NULL;
		b.len = b.cap = 0;
		sb_printf(&b, "key k\n    uri pkcs11:token=x;object=y;"
		    "pin-value=1234\n%send\n", body);
		REJECT(b.s, "uri", "uri: 'pkcs11:token=x;object=y;pin-value=1234'"
		    " is not a PKCS#11 URI");
		free(b.s);
	}

	/* Lifetime. */
	reject_key("    lifetime 4s\n", "lifetime", "lifetime: '4s' is not "
	    "between 5s and 30d");
	reject_key("    lifetime 4\n", "lifetime", "'4' is not between");
	reject_key("    lifetime 31d\n", "lifetime", "'31d' is not between");
	reject_key("    lifetime 721h\n", "lifetime", "'721h' is not between");
	reject_key("    lifetime 99999999999999999999999d\n", "lifetime",
	    "is not a duration");
	reject_key("    lifetime 10x\n", "lifetime", "'10x' is not a duration");
	reject_key("    lifetime h\n", "lifetime", "'h' is not a duration");
	reject_key("    lifetime 1h30m\n", "lifetime", "is not a duration");
	reject_key("    lifetime -1h\n", "lifetime", "is not a duration");

	/* Countries. */
	k = key_without("countries", "    countries CH de\n");
	REJECT(k, "countries", "countries: 'de' is not a two-letter");
	free(k);
	k = key_without("countries", "    countries CH CH\n");
	REJECT(k, "countries", "countries: 'CH' listed twice");
	free(k);
	k = key_without("countries", "    countries\n");
	REJECT(k, "countries", "countries: missing value");
	free(k);
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "    countries");
	for (i = 0; i < 17; i++)
		sb_printf(&b, " A%c", 'A' + i);
	sb_add(&b, "\n");
	k = key_without("countries", b.s);
	REJECT(k, "countries", "countries: more than 16 countries");
	free(k);
	free(b.s);

	/* Requesters. */
	k = key_without("requesters", "    requesters ci ci\n");
	REJECT(k, "requesters", "requesters: principal 'ci' listed twice");
	free(k);
	k = key_without("requesters", "    requesters nobody\n");
	REJECT(k, "requesters", "key 'k': requesters: principal 'nobody' is "
	    "not defined");
	free(k);
	k = key_without("requesters", "    requesters ci alice\n");
	reject_with_officers(k, "requesters", "requesters: principal 'alice' "
	    "does not have the requester role");
	free(k);
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "    requesters");
	for (i = 0; i < 65; i++)
		sb_printf(&b, " r%d", i);
	sb_add(&b, "\n");
	k = key_without("requesters", b.s);
	REJECT(k, "requesters", "requesters: more than 64 requesters");
	free(k);
	free(b.s);
}

/* Builds "base + officers + key k with these require lines" and expects
 * the refusal at `anchor`. */
static void
reject_require(const char *reqs, const char *anchor, const char *needle)
{
	char *k = key_with("k", reqs);

	reject_with_officers(k, anchor, needle);
	free(k);
}

static void
test_reject_require(void)
{
	struct sb b = { NULL, 0, 0 };
	int i;

	reject_require("    require secops 1\n", "require secops",
	    "key 'k': require: group 'secops' is not defined");
	reject_require("    require so 3\n", "require so",
	    "key 'k': require: group 'so' has 2 members, fewer than 3");
	reject_require("    require so 0\n", "require so",
	    "require: group 'so': count must be at least 1");
	reject_require("    require so x\n", "require so",
	    "require: group 'so': count 'x' is not a number");
	reject_require("    require so 1x\n", "require so",
	    "count '1x' is not a number");
	reject_require("    require so 65\n", "require so",
	    "count 65 is larger than any group can be");
	reject_require("    require so\n", "require so",
	    "require: missing count after group 'so'");
	reject_require("    require so 1 2\n", "require so",
	    "require: unexpected '2'");
	{
		char *k = key_with("k", "    require so 1\n    require so 2\n");
		char needle[128], *text;

		b.s = NULL;
		b.len = b.cap = 0;
		sb_add(&b, base);
		sb_add(&b, officers);
		sb_add(&b, k);
		text = expand(b.s);
		snprintf(needle, sizeof(needle), "require: group 'so' is "
		    "already required at line %d", line_of(text,
		    "require so 1"));
		reject_require("    require so 1\n    require so 2\n",
		    "require so 2", needle);
		free(text);
		free(k);
		free(b.s);
		b.s = NULL;
		b.len = b.cap = 0;
	}
	/* Counts summing past SG_QUORUM_MAX: refused at the term that
	 * passes it (which comes before SG_POLICY_MAX_TERMS terms can). */
	for (i = 0; i < 17; i++)
		sb_printf(&b, "    require g%d 1\n", i);
	reject_require(b.s, "require g8 ", "require: the counts of require "
	    "sum to 9, more than the 8 approvals one signature's log entry "
	    "can carry");
	free(b.s);
	/* The first undefined group of several is named at its own line. */
	reject_require("    require so 1\n    require rm 1\n", "require rm",
	    "group 'rm' is not defined");
}

/* policy-change require: parsed, resolved, evaluated as a key's terms. */
static void
test_policy_change(void)
{
	struct sb b = { NULL, 0, 0 };
	struct sg_policy *p;
	struct sg_policy_key ck;
	struct sg_quorum_result res;
	struct sg_decision d[2] = { { "alice", 1, NULL, 0 },
	    { "bob", 1, NULL, 0 } };
	const struct sg_term *t;
	char *text;
	size_t n = 99;

	sb_add(&b, base);
	sb_add(&b, "policy-change require so 2\n");
	sb_add(&b, officers);
	text = expand(b.s);
	if ((p = parse_ok(text)) != NULL) {
		t = sg_policy_change_terms(p, &n);
		CHECK_EQ_INT(n, 1);
		CHECK(strcmp(t[0].group, "so") == 0 && t[0].count == 2);
		sg_policy_change_key(p, &ck);
		CHECK(strcmp(ck.name, "policy-change") == 0 && ck.nterms == 1);
		sg_policy_evaluate(p, &ck, "", d, 1, &res);
		CHECK_EQ_INT(res.state, SG_QUORUM_PENDING);
		CHECK_EQ_INT(res.missing[0], 1);
		sg_policy_evaluate(p, &ck, "", d, 2, &res);
		CHECK_EQ_INT(res.state, SG_QUORUM_MET);
		/* The same officer twice counts once. */
		d[1].officer = "alice";
		sg_policy_evaluate(p, &ck, "", d, 2, &res);
		CHECK_EQ_INT(res.state, SG_QUORUM_PENDING);
		CHECK(sg_policy_may_approve(p, &ck, "", "bob"));
		CHECK(!sg_policy_may_approve(p, &ck, "", "ci"));
	}
	sg_policy_free(p);
	free(text);
	free(b.s);
	/* Without the keyword: no terms. */
	text = expand(base);
	if ((p = parse_ok(text)) != NULL) {
		sg_policy_change_terms(p, &n);
		CHECK_EQ_INT(n, 0);
	}
	sg_policy_free(p);
	free(text);

	REJECT("policy-change require nobody 1\n", "policy-change",
	    "policy-change require: group 'nobody' is not defined");
	reject_with_officers("policy-change require so 3\n", "policy-change",
	    "policy-change require: group 'so' has 2 members, fewer than 3");
	reject_with_officers("policy-change require so 1\npolicy-change "
	    "require so 2\n", "policy-change require so 2", "group 'so' is "
	    "already required at line");
	REJECT("policy-change so 1\n", "policy-change", "policy-change: "
	    "expected 'policy-change require <group> <count>'");
	REJECT("policy-change require so 0\n", "policy-change",
	    "count must be at least 1");
	REJECT("key k\n    policy-change require so 1\nend\n",
	    "policy-change", "'policy-change' inside a block");
}

/* --- evaluation --- */

static void
eval(const struct sg_policy *p, const char *key, const char *requester,
    const struct sg_decision *d, size_t nd, struct sg_quorum_result *r)
{
	const struct sg_policy_key *k = sg_policy_key(p, key);

	CHECK(k != NULL);
	sg_policy_evaluate(p, k, requester, d, nd, r);
}

static void
test_eval_dev_exhaustive(void)
{
	static const char *officers4[] = { "alice", "bob", "carol", "dave" };
	struct sg_policy *p = dev_policy();
	struct sg_decision d[4] = { 0 };
	struct sg_quorum_result r;
	unsigned mask, so, rm, i, order;
	size_t nd;

	if (p == NULL)
		return;
	for (mask = 0; mask < 16; mask++) {
		/* Both in listed order and reversed. */
		for (order = 0; order < 2; order++) {
			nd = 0;
			so = rm = 0;
			for (i = 0; i < 4; i++) {
				unsigned j = order ? 3 - i : i;

				if (!(mask & (1u << j)))
					continue;
				d[nd].officer = officers4[j];
				d[nd].approve = 1;
				nd++;
				if (j < 3)
					so++;
				else
					rm++;
			}
			eval(p, "release", "ci", d, nd, &r);
			CHECK_EQ_INT(r.nterms, 2);
			CHECK_EQ_INT(r.missing[0], so >= 2 ? 0 : 2 - so);
			CHECK_EQ_INT(r.missing[1], rm >= 1 ? 0 : 1);
			CHECK_EQ_INT(r.state, so >= 2 && rm >= 1 ?
			    SG_QUORUM_MET : SG_QUORUM_PENDING);
			/* firmware: 2 security officers, dave does not count. */
			eval(p, "firmware", "ci", d, nd, &r);
			CHECK_EQ_INT(r.nterms, 1);
			CHECK_EQ_INT(r.missing[0], so >= 2 ? 0 : 2 - so);
			CHECK_EQ_INT(r.state, so >= 2 ? SG_QUORUM_MET :
			    SG_QUORUM_PENDING);
			/* nightly: no terms, met whatever happens. */
			eval(p, "nightly", "ci", d, nd, &r);
			CHECK_EQ_INT(r.state, SG_QUORUM_MET);
			CHECK_EQ_INT(r.nterms, 0);
		}
	}
	sg_policy_free(p);
}

static void
test_eval_rules(void)
{
	struct sg_policy *p = dev_policy();
	struct sg_quorum_result r;

	if (p == NULL)
		return;
	/* Zero terms: met at once, even with no decisions at all. */
	eval(p, "nightly", "ci", NULL, 0, &r);
	CHECK_EQ_INT(r.state, SG_QUORUM_MET);
	eval(p, "release", "ci", NULL, 0, &r);
	CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
	CHECK_EQ_INT(r.missing[0], 2);
	CHECK_EQ_INT(r.missing[1], 1);
	{
		/* dave requests release: his own approval is ignored. */
		struct sg_decision d[] = {
			D("alice", 1), D("bob", 1), D("dave", 1),
		};
		eval(p, "release", "dave", d, 3, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
		CHECK_EQ_INT(r.missing[0], 0);
		CHECK_EQ_INT(r.missing[1], 1);
		eval(p, "release", "ci", d, 3, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_MET);
		/* Requester self-approval is ignored whatever its roles. */
		eval(p, "release", "alice", d, 3, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
		CHECK_EQ_INT(r.missing[0], 1);
	}
	{
		/* Auditor, requester role only, unknown names, NULL names,
		 * and an officer outside the key's groups: none count. */
		struct sg_decision d[] = {
			D("audit", 1), D("ci", 1), D("mallory", 1),
			D(NULL, 1), D("erin", 1), D("alice", 1),
			D("dave", 1),
		};
		eval(p, "release", "ci", d, 7, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
		CHECK_EQ_INT(r.missing[0], 1);
		CHECK_EQ_INT(r.missing[1], 0);
	}
	{
		/* Duplicates count once, and only the first decision. */
		struct sg_decision d[] = {
			D("alice", 1), D("alice", 1), D("dave", 1),
			D("alice", 1),
		};
		eval(p, "release", "ci", d, 4, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
		CHECK_EQ_INT(r.missing[0], 1);
	}
	{
		/* Veto: one counted reject ends firmware requests... */
		struct sg_decision d[] = {
			D("alice", 1), D("bob", 0), D("carol", 1),
		};
		eval(p, "firmware", "ci", d, 3, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_VETOED);
		/* ...while on release (no veto) a reject just does not
		 * count: alice+carol+dave meet it. */
		{
			struct sg_decision e[] = {
				D("alice", 1), D("bob", 0), D("carol", 1),
				D("dave", 1), D("bob", 1),
			};
			eval(p, "release", "ci", e, 5, &r);
			CHECK_EQ_INT(r.state, SG_QUORUM_MET);
			/* bob's later approve does not replace his reject. */
			eval(p, "release", "ci", e + 1, 4, &r);
			CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
			CHECK_EQ_INT(r.missing[0], 1);
		}
	}
	{
		/* Rejects that do not count cannot veto: by the requester,
		 * a non-officer, an officer outside the key's groups, an
		 * unknown name, or an officer's later change of mind. */
		struct sg_decision d[] = {
			D("ci", 0), D("audit", 0), D("dave", 0),
			D("erin", 0), D("nobody", 0), D("alice", 1),
			D("alice", 0), D("bob", 1),
		};
		eval(p, "firmware", "ci", d, 8, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_MET);
		/* carol requesting: her own reject does not count. */
		{
			struct sg_decision e[] = {
				D("carol", 0), D("alice", 1),
			};
			eval(p, "firmware", "carol", e, 2, &r);
			CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
			CHECK_EQ_INT(r.missing[0], 1);
			eval(p, "firmware", "ci", e, 2, &r);
			CHECK_EQ_INT(r.state, SG_QUORUM_VETOED);
		}
	}
	sg_policy_free(p);
}

/* carol sits in both groups: "2 SO + 1 RM" still needs three people. */
static void
test_eval_overlap(void)
{
	char *text = expand(
	    "policy o\nversion 1\n"
	    "principal ci\n roles requester\n client-cn ci\nend\n"
	    "principal alice\n roles officer\n client-cn alice\n @KEY:alice@\nend\n"
	    "principal bob\n roles officer\n client-cn bob\n @KEY:bob@\nend\n"
	    "principal carol\n roles officer\n client-cn carol\n @KEY:carol@\nend\n"
	    "principal dave\n roles officer\n client-cn dave\n @KEY:dave@\nend\n"
	    "group so\n members alice bob carol\nend\n"
	    "group rm\n members carol dave\nend\n"
	    "key k\n token t\n object o\n algorithm ecdsa-p256\n formats raw\n"
	    " requesters ci\n require so 2\n require rm 1\n countries CH\n"
	    "end\n"
	    "key both\n token t\n object o\n algorithm ecdsa-p256\n"
	    " formats raw\n requesters ci\n require rm 2\n require so 1\n"
	    " countries CH\nend\n");
	struct sg_policy *p = parse_ok(text);
	struct sg_quorum_result r;

	free(text);
	if (p == NULL)
		return;
	{
		struct sg_decision d[] = { D("carol", 1) };
		eval(p, "k", "ci", d, 1, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
		/* One person, three slots: two remain, whichever term she
		 * fills. */
		CHECK_EQ_INT(r.missing[0] + r.missing[1], 2);
	}
	{
		struct sg_decision d[] = { D("alice", 1), D("carol", 1) };
		eval(p, "k", "ci", d, 2, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
		CHECK_EQ_INT(r.missing[0] + r.missing[1], 1);
	}
	{
		/* carol first: a greedy pass would put her into so and leave
		 * rm empty; the matching moves her to rm. */
		struct sg_decision d[] = {
			D("carol", 1), D("alice", 1), D("bob", 1),
		};
		eval(p, "k", "ci", d, 3, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_MET);
		CHECK_EQ_INT(r.missing[0], 0);
		CHECK_EQ_INT(r.missing[1], 0);
	}
	{
		struct sg_decision d[] = {
			D("carol", 1), D("alice", 1), D("dave", 1),
		};
		eval(p, "k", "ci", d, 3, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_MET);
		/* "both": rm 2 (carol, dave) + so 1 (alice). */
		eval(p, "both", "ci", d, 3, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_MET);
	}
	{
		struct sg_decision d[] = { D("carol", 1), D("dave", 1) };
		eval(p, "both", "ci", d, 2, &r);
		CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
		CHECK_EQ_INT(r.missing[0], 0);
		CHECK_EQ_INT(r.missing[1], 1);
		CHECK(sg_policy_may_approve(p, sg_policy_key(p, "both"), "ci",
		    "bob"));
	}
	sg_policy_free(p);
}

/* A small deterministic PRNG so that failures reproduce. */
static uint32_t
rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

#define BF_OFFICERS 5
#define BF_GROUPS 3

/* The most slots any assignment of approvers (each to one term it may
 * fill, or none) can fill: tries all (nterms+1)^n assignments. */
static unsigned
brute_force(unsigned approvers, unsigned member[BF_GROUPS],
    const unsigned *term_group, const unsigned *cap, unsigned nterms)
{
	unsigned best = 0, total, fill[BF_GROUPS], a, t, code, ncodes = 1, c;

	for (a = 0; a < BF_OFFICERS; a++)
		ncodes *= nterms + 1;
	for (code = 0; code < ncodes; code++) {
		int ok = 1;

		memset(fill, 0, sizeof(fill));
		for (c = code, a = 0; a < BF_OFFICERS; a++, c /= nterms + 1) {
			t = c % (nterms + 1);
			if (t == nterms)
				continue;	/* not assigned */
			if (!(approvers & (1u << a)) ||
			    !(member[term_group[t]] & (1u << a))) {
				ok = 0;
				break;
			}
			fill[t]++;
		}
		if (!ok)
			continue;
		for (total = 0, t = 0; t < nterms; t++)
			total += fill[t] < cap[t] ? fill[t] : cap[t];
		if (total > best)
			best = total;
	}
	return best;
}

static void
test_eval_brute_force(void)
{
	static const char *names[BF_OFFICERS] = { "o0", "o1", "o2", "o3", "o4" };
	uint32_t seed = 0x9e3779b9;
	int round;

	for (round = 0; round < 150; round++) {
		struct sb b = { NULL, 0, 0 };
		unsigned member[BF_GROUPS], term_group[BF_GROUPS];
		unsigned cap[BF_GROUPS], nterms = 0, g, o, t, mask, capsum = 0;
		struct sg_policy *p;
		char *text;

		sb_add(&b, "policy bf\nversion 1\n");
		for (o = 0; o < BF_OFFICERS; o++)
			sb_printf(&b, "principal %s\n roles officer\n "
			    "client-cn %s\n @KEY:%s@\nend\n", names[o],
			    names[o], names[o]);
		for (g = 0; g < BF_GROUPS; g++) {
			do
				member[g] = rnd(&seed) & 31;
			while (member[g] == 0);
			sb_printf(&b, "group g%u\n members", g);
			for (o = 0; o < BF_OFFICERS; o++)
				if (member[g] & (1u << o))
					sb_printf(&b, " %s", names[o]);
			sb_add(&b, "\nend\n");
		}
		sb_add(&b, "key k\n token t\n object o\n algorithm ed25519\n"
		    " formats raw\n countries CH\n");
		for (g = 0; g < BF_GROUPS; g++) {
			if (rnd(&seed) % 3 == 0)
				continue;
			term_group[nterms] = g;
			cap[nterms] = 1 + rnd(&seed) %
			    (unsigned)__builtin_popcount(member[g]);
			/* The policy refuses counts summing past it. */
			if (capsum + cap[nterms] > SG_QUORUM_MAX)
				continue;
			capsum += cap[nterms];
			sb_printf(&b, " require g%u %u\n", g, cap[nterms]);
			nterms++;
		}
		sb_add(&b, "end\n");
		text = expand(b.s);
		p = parse_ok(text);
		free(text);
		free(b.s);
		if (p == NULL)
			return;
		for (mask = 0; mask < 32; mask++) {
			struct sg_decision d[BF_OFFICERS] = { 0 };
			struct sg_quorum_result r;
			unsigned best, want = 0, got = 0, nd = 0;

			for (o = 0; o < BF_OFFICERS; o++)
				if (mask & (1u << o)) {
					d[nd].officer = names[o];
					d[nd].approve = 1;
					nd++;
				}
			sg_policy_evaluate(p, sg_policy_key(p, "k"), "ci", d,
			    nd, &r);
			best = brute_force(mask, member, term_group, cap,
			    nterms);
			for (t = 0; t < nterms; t++) {
				want += cap[t];
				got += r.missing[t];
				CHECK(r.missing[t] <= cap[t]);
			}
			CHECK_EQ_INT(r.nterms, nterms);
			CHECK_EQ_INT(got, want - best);
			CHECK_EQ_INT(r.state, best == want ? SG_QUORUM_MET :
			    SG_QUORUM_PENDING);
		}
		sg_policy_free(p);
	}
}

/* --- robustness --- */

static const char fuzz_tmpl[] =
    "policy f\n"
    "version 3\n"
    "principal ci\n"
    " roles requester\n"
    " client-cn ci\n"
    "end\n"
    "principal alice\n"
    " roles officer\n"
    " client-sha256 "
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
    " @KEY:alice@\n"
    "end\n"
    "group so\n"
    " members alice\n"
    "end\n"
    "hsm 1234\n"
    " site Zurich\n"
    " country CH\n"
    "end\n"
    "key k\n"
    " uri pkcs11:token=t;id=%01\n"
    " algorithm ecdsa-p256\n"
    " formats raw cms\n"
    " certificate c.pem\n"
    " requesters ci\n"
    " require so 1\n"
    " veto yes\n"
    " lifetime 2d\n"
    " countries CH DE\n"
    "end\n";

static void
test_mutations(void)
{
	static const char values[] = { '\0', '\n', ' ', '#', 'z', '1',
	    (char)0x80 };
	char *text = expand(fuzz_tmpl);
	size_t len = strlen(text), i, v, ok = 0, bad = 0;
	char *buf = malloc(len);
	struct sg_policy *p;
	char err[512];
	int r;

	CHECK(buf != NULL);
	if (buf == NULL) {
		free(text);
		return;
	}
	p = parse_ok(text);
	sg_policy_free(p);
	for (i = 0; i < len; i++) {
		for (v = 0; v < sizeof(values); v++) {
			memcpy(buf, text, len);
			if (buf[i] == values[v])
				continue;
			buf[i] = values[v];
			p = NULL;
			err[0] = 'X';
			r = sg_policy_parse("f.policy", buf, len, &p, err,
			    sizeof(err));
			if (r == 0) {
				ok++;
				CHECK(p != NULL);
				sg_policy_free(p);
			} else {
				bad++;
				CHECK_EQ_INT(r, SG_ERR_INVALID);
				CHECK(p == NULL);
				CHECK(strncmp(err, "f.policy:", 9) == 0);
			}
		}
	}
	/* Every truncation too. */
	for (i = 0; i < len; i++) {
		p = NULL;
		r = sg_policy_parse("f.policy", text, i, &p, err, sizeof(err));
		if (r == 0)
			sg_policy_free(p);
		else
			CHECK(strncmp(err, "f.policy:", 9) == 0);
	}
	/* Both outcomes must occur, or the loop tested nothing. */
	CHECK(ok > 0);
	CHECK(bad > 0);
	printf("# mutations: %zu parsed, %zu refused\n", ok, bad);
	free(buf);
	free(text);
}

static void
test_error_buffer(void)
{
	struct sg_policy *p = NULL;
	char small[8];

	/* A tiny or absent error buffer is fine. */
	CHECK_EQ_INT(sg_policy_parse("x", "nope\n", 5, &p, small,
	    sizeof(small)), SG_ERR_INVALID);
	CHECK_STR(small, "x:1: un");
	CHECK_EQ_INT(sg_policy_parse("x", "nope\n", 5, &p, NULL, 0),
	    SG_ERR_INVALID);
	CHECK(p == NULL);
	CHECK_EQ_INT(sg_policy_parse("x", "policy a\nversion 1\n", 19, NULL,
	    NULL, 0), SG_ERR_INVALID);
}

/*
 * A reload revokes carol (auditor, in no group) or gives alice another
 * approval key: under the request's policy alone their decisions count,
 * with the policy in force next to it they do not, not even as a veto.
 */
static void
test_eval_revoked(void)
{
	struct sg_policy *p = dev_policy(), *revoked, *rekeyed;
	struct sg_decision d[4] = { 0 };
	struct sg_quorum_result r;
	const struct sg_policy_key *rel, *fw;
	uint8_t counted[4];
	char *t, *x;

	if (p == NULL)
		return;
	t = strdup(dev_tmpl);
	t = sg_fx_replace1(t, "version 7", "version 8");
	t = sg_fx_replace1(t, "    roles officer\n    client-sha256 ",
	    "    roles auditor\n    client-sha256 ");
	t = sg_fx_replace1(t, "    client-cn carol\n    @KEY:carol@\n",
	    "    client-cn carol\n");
	t = sg_fx_replace1(t, "members alice bob carol", "members alice bob");
	x = expand(t);
	revoked = parse_ok(x);
	free(x);
	free(t);
	t = sg_fx_replace1(strdup(dev_tmpl), "version 7", "version 8");
	t = sg_fx_replace1(t, "    client-cn alice\n    @KEY:alice@\n",
	    "    client-cn alice\n    @KEY:o0@\n");
	x = expand(t);
	rekeyed = parse_ok(x);
	free(x);
	free(t);
	if (revoked == NULL || rekeyed == NULL)
		goto out;
	rel = sg_policy_key(p, "release");
	fw = sg_policy_key(p, "firmware");

	CHECK(sg_policy_may_approve_now(p, rel, NULL, "ci", "carol"));
	CHECK(sg_policy_may_approve_now(p, rel, p, "ci", "carol"));
	CHECK(!sg_policy_may_approve_now(p, rel, revoked, "ci", "carol"));
	CHECK(sg_policy_may_approve_now(p, rel, revoked, "ci", "alice"));
	CHECK(sg_policy_may_approve_now(p, rel, revoked, "ci", "dave"));
	CHECK(!sg_policy_may_approve_now(p, rel, revoked, "dave", "dave"));
	CHECK(!sg_policy_may_approve_now(p, rel, rekeyed, "ci", "alice"));
	CHECK(sg_policy_may_approve_now(p, rel, rekeyed, "ci", "carol"));
	/* Eligible now but not under the request's policy: no. */
	CHECK(!sg_policy_may_approve_now(revoked, sg_policy_key(revoked,
	    "release"), p, "ci", "carol"));

	/* alice + carol + dave: met under v7 alone, one short with v8. */
	d[0].officer = "alice"; d[0].approve = 1;
	d[1].officer = "carol"; d[1].approve = 1;
	d[2].officer = "dave"; d[2].approve = 1;
	sg_policy_evaluate_now(p, rel, NULL, "ci", d, 3, &r, counted);
	CHECK_EQ_INT(r.state, SG_QUORUM_MET);
	CHECK(counted[0] && counted[1] && counted[2]);
	sg_policy_evaluate_now(p, rel, revoked, "ci", d, 3, &r, counted);
	CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
	CHECK_EQ_INT(r.nterms, 2);
	CHECK_EQ_INT(r.missing[0], 1);
	CHECK_EQ_INT(r.missing[1], 0);
	CHECK(counted[0] && !counted[1] && counted[2]);
	/* bob completes it without her. */
	d[3].officer = "bob"; d[3].approve = 1;
	sg_policy_evaluate_now(p, rel, revoked, "ci", d, 4, &r, NULL);
	CHECK_EQ_INT(r.state, SG_QUORUM_MET);
	/* alice rekeyed: her decision under the old key stops counting. */
	sg_policy_evaluate_now(p, rel, rekeyed, "ci", d, 4, &r, counted);
	CHECK_EQ_INT(r.state, SG_QUORUM_MET);          /* carol, bob, dave */
	CHECK(!counted[0] && counted[1] && counted[3]);
	sg_policy_evaluate_now(p, rel, rekeyed, "ci", d, 3, &r, NULL);
	CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);

	/* A revoked officer's reject no longer vetoes (firmware: veto). */
	d[0].officer = "carol"; d[0].approve = 0;
	d[1].officer = "alice"; d[1].approve = 1;
	d[2].officer = "bob"; d[2].approve = 1;
	sg_policy_evaluate_now(p, fw, NULL, "ci", d, 3, &r, NULL);
	CHECK_EQ_INT(r.state, SG_QUORUM_VETOED);
	sg_policy_evaluate_now(p, fw, revoked, "ci", d, 3, &r, NULL);
	CHECK_EQ_INT(r.state, SG_QUORUM_MET);
out:
	sg_policy_free(revoked);
	sg_policy_free(rekeyed);
	sg_policy_free(p);
}

/* --- releases and grants --- */

/* The dev policy with releases and grants on key release: a grant needs
 * one release manager only. */
static char *
kinds_tmpl(void)
{
	char *t = strdup(dev_tmpl);

	if (t == NULL)
		abort();
	return sg_fx_replace1(t, "    veto no\n", "    veto no\n"
	    "    allow-releases 500\n"
	    "    allow-grants 1000 7d\n"
	    "    require-grant release-managers 1\n");
}

static struct sg_policy *
kinds_policy(const char *from1, const char *to1, const char *from2,
    const char *to2)
{
	struct sg_policy *p;
	char *t = kinds_tmpl(), *x;

	if (from1 != NULL)
		t = sg_fx_replace1(t, from1, to1);
	if (from2 != NULL)
		t = sg_fx_replace1(t, from2, to2);
	x = expand(t);
	p = parse_ok(x);
	free(x);
	free(t);
	return p;
}

static void
test_kind_keywords(void)
{
	struct sg_policy *p = kinds_policy(NULL, NULL, NULL, NULL);
	const struct sg_policy_key *rel, *fw;
	const struct sg_term *t;
	struct sg_policy_key v, w;
	size_t n = 99;

	if (p == NULL)
		return;
	rel = sg_policy_key(p, "release");
	fw = sg_policy_key(p, "firmware");
	CHECK_EQ_INT(rel->release_max, 500);
	CHECK_EQ_INT(rel->grant_max_count, 1000);
	CHECK_EQ_INT(rel->grant_max_lifetime, 7 * 86400);
	CHECK_EQ_INT(rel->ngrant_terms, 1);
	CHECK_STR(rel->grant_terms[0].group, "release-managers");
	CHECK_EQ_INT(rel->grant_terms[0].count, 1);
	CHECK_EQ_INT(rel->view, SG_KIND_REQUEST);
	/* Absent keywords: neither releases nor grants. */
	CHECK_EQ_INT(fw->release_max, 0);
	CHECK_EQ_INT(fw->grant_max_count, 0);
	CHECK_EQ_INT(fw->grant_max_lifetime, 0);
	CHECK_EQ_INT(fw->ngrant_terms, 0);

	/* The terms of each kind. */
	t = sg_policy_key_terms(rel, SG_KIND_REQUEST, &n);
	CHECK(t == rel->terms && n == 2);
	t = sg_policy_key_terms(rel, SG_KIND_RELEASE, &n);
	CHECK(t == rel->terms && n == 2);
	t = sg_policy_key_terms(rel, SG_KIND_GRANT, &n);
	CHECK(t == rel->grant_terms && n == 1);
	/* No require-grant: a grant is decided by the require terms. */
	t = sg_policy_key_terms(fw, SG_KIND_GRANT, &n);
	CHECK(t == fw->terms && n == 1);

	/* The copy for a kind. */
	sg_policy_key_for_kind(rel, SG_KIND_GRANT, &v);
	CHECK_EQ_INT(v.view, SG_KIND_GRANT);
	CHECK_EQ_INT(v.nterms, 1);
	CHECK_STR(v.terms[0].group, "release-managers");
	CHECK_STR(v.name, "release");
	CHECK_EQ_INT(v.veto, rel->veto);
	CHECK_EQ_INT(v.nrequesters, rel->nrequesters);
	CHECK_EQ_INT(v.grant_max_count, 1000);
	/* In the same view again (even in place): unchanged. */
	sg_policy_key_for_kind(&v, SG_KIND_GRANT, &w);
	CHECK(memcmp(&v, &w, sizeof(v)) == 0);
	sg_policy_key_for_kind(&w, SG_KIND_GRANT, &w);
	CHECK(memcmp(&v, &w, sizeof(v)) == 0);
	sg_policy_key_for_kind(rel, SG_KIND_RELEASE, &v);
	CHECK_EQ_INT(v.view, SG_KIND_RELEASE);
	CHECK_EQ_INT(v.nterms, 2);
	CHECK(memcmp(v.terms, rel->terms, sizeof(v.terms)) == 0);
	sg_policy_key_for_kind(rel, SG_KIND_REQUEST, &v);
	CHECK(memcmp(&v, rel, sizeof(v)) == 0);
	sg_policy_free(p);
}

/* A grant's quorum: one release manager suffices, the requester never
 * counts, a non-member never counts; a request still needs 2 + 1. */
static void
test_kind_quorum(void)
{
	struct sg_policy *p = kinds_policy(NULL, NULL, NULL, NULL);
	const struct sg_policy_key *rel;
	struct sg_policy_key g;
	struct sg_decision d[2] = { 0 };
	struct sg_quorum_result r;

	if (p == NULL)
		return;
	rel = sg_policy_key(p, "release");
	sg_policy_key_for_kind(rel, SG_KIND_GRANT, &g);
	d[0].officer = "dave";
	d[0].approve = 1;
	sg_policy_evaluate(p, &g, "ci", d, 1, &r);
	CHECK_EQ_INT(r.state, SG_QUORUM_MET);
	CHECK_EQ_INT(r.nterms, 1);
	sg_policy_evaluate(p, rel, "ci", d, 1, &r);
	CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
	/* Self-approval of a grant: dave requests, dave approves. */
	sg_policy_evaluate(p, &g, "dave", d, 1, &r);
	CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
	CHECK(!sg_policy_may_approve(p, &g, "dave", "dave"));
	/* alice sits in no group of the grant's terms. */
	d[0].officer = "alice";
	sg_policy_evaluate(p, &g, "ci", d, 1, &r);
	CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
	CHECK(!sg_policy_may_approve(p, &g, "ci", "alice"));
	CHECK(sg_policy_may_approve(p, rel, "ci", "alice"));
	sg_policy_free(p);
}

/*
 * The rule for a request made under an earlier policy, in the grant's
 * view: in `now` dave has left release-managers (carol took his place)
 * and joined security-officers.  For a request he may still approve (he
 * is an approver of the key under both); for a grant he may not (he is
 * no longer in the grant's terms), whatever the request terms say.
 */
static void
test_kind_may_approve_now(void)
{
	struct sg_policy *p = kinds_policy(NULL, NULL, NULL, NULL);
	struct sg_policy *now = kinds_policy("members alice bob carol",
	    "members alice bob carol dave", "members dave", "members carol");
	const struct sg_policy_key *rel;
	struct sg_policy_key g;
	struct sg_decision d[1] = { 0 };
	struct sg_quorum_result r;
	uint8_t counted[1];

	if (p == NULL || now == NULL)
		goto out;
	rel = sg_policy_key(p, "release");
	sg_policy_key_for_kind(rel, SG_KIND_GRANT, &g);
	CHECK(sg_policy_may_approve_now(p, rel, now, "ci", "dave"));
	CHECK(sg_policy_may_approve_now(p, &g, NULL, "ci", "dave"));
	CHECK(sg_policy_may_approve_now(p, &g, p, "ci", "dave"));
	CHECK(!sg_policy_may_approve_now(p, &g, now, "ci", "dave"));
	/* carol is in the grant's terms now, not under the grant's policy. */
	CHECK(!sg_policy_may_approve_now(p, &g, now, "ci", "carol"));
	d[0].officer = "dave";
	d[0].approve = 1;
	sg_policy_evaluate_now(p, &g, NULL, "ci", d, 1, &r, counted);
	CHECK_EQ_INT(r.state, SG_QUORUM_MET);
	CHECK(counted[0]);
	sg_policy_evaluate_now(p, &g, now, "ci", d, 1, &r, counted);
	CHECK_EQ_INT(r.state, SG_QUORUM_PENDING);
	CHECK(!counted[0]);
out:
	sg_policy_free(p);
	sg_policy_free(now);
}

static void
test_reject_kind_keywords(void)
{
	struct sb b = { NULL, 0, 0 };
	char *k, needle[160], *text;
	int i;

	reject_key("    allow-releases 0\n", "allow-releases",
	    "key 'k': allow-releases: '0' is not a number of artifacts from "
	    "1 to 10000");
	reject_key("    allow-releases 10001\n", "allow-releases",
	    "allow-releases: '10001' is not a number of artifacts");
	reject_key("    allow-releases 1x\n", "allow-releases",
	    "allow-releases: '1x' is not a number");
	reject_key("    allow-releases -1\n", "allow-releases",
	    "allow-releases: '-1' is not a number");
	reject_key("    allow-releases\n", "allow-releases",
	    "allow-releases: missing value");
	reject_key("    allow-releases 5 6\n", "allow-releases",
	    "allow-releases: unexpected '6'");
	reject_key("    allow-releases 5\n    allow-releases 6\n",
	    "allow-releases 6", "allow-releases: repeated (first at line");
	reject_key("    allow-grants 0 1h\n", "allow-grants",
	    "key 'k': allow-grants: count '0' is not a number of signatures "
	    "from 1 to 100000");
	reject_key("    allow-grants 100001 1h\n", "allow-grants",
	    "count '100001' is not a number of signatures");
	reject_key("    allow-grants 10\n", "allow-grants",
	    "allow-grants: missing lifetime after count '10'");
	reject_key("    allow-grants\n", "allow-grants",
	    "allow-grants: missing value");
	reject_key("    allow-grants 10 4s\n", "allow-grants",
	    "allow-grants: '4s' is not between 5s and 30d");
	reject_key("    allow-grants 10 31d\n", "allow-grants",
	    "allow-grants: '31d' is not between 5s and 30d");
	reject_key("    allow-grants 10 1w\n", "allow-grants",
	    "allow-grants: '1w' is not a duration");
	reject_key("    allow-grants 10 1h 2\n", "allow-grants",
	    "allow-grants: unexpected '2'");
	reject_key("    allow-grants 10 1h\n    allow-grants 10 2h\n",
	    "allow-grants 10 2h", "allow-grants: repeated (first at line");
	/* require-grant: the rules of require, and only with allow-grants
	 * (in any order within the block). */
	reject_require("    require-grant so 1\n", "require-grant",
	    "key 'k': require-grant: only with 'allow-grants'");
	reject_require("    allow-grants 5 1h\n    require-grant secops 1\n",
	    "require-grant secops",
	    "key 'k': require-grant: group 'secops' is not defined");
	reject_require("    require-grant so 3\n    allow-grants 5 1h\n",
	    "require-grant so",
	    "key 'k': require-grant: group 'so' has 2 members, fewer than 3");
	reject_require("    allow-grants 5 1h\n    require-grant so 0\n",
	    "require-grant so", "require-grant: group 'so': count must be at "
	    "least 1");
	reject_require("    allow-grants 5 1h\n    require-grant so\n",
	    "require-grant so", "require-grant: missing count after group "
	    "'so'");
	reject_require("    allow-grants 5 1h\n    require-grant so 1 2\n",
	    "require-grant so", "require-grant: unexpected '2'");
	k = key_with("k", "    allow-grants 5 1h\n    require-grant so 1\n"
	    "    require-grant so 2\n");
	sb_add(&b, base);
	sb_add(&b, officers);
	sb_add(&b, k);
	text = expand(b.s);
	snprintf(needle, sizeof(needle), "require-grant: group 'so' is "
	    "already required at line %d", line_of(text, "require-grant so 1"));
	reject_require("    allow-grants 5 1h\n    require-grant so 1\n"
	    "    require-grant so 2\n", "require-grant so 2", needle);
	free(text);
	free(k);
	free(b.s);
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, "    allow-grants 5 1h\n");
	for (i = 0; i < 17; i++)
		sb_printf(&b, "    require-grant g%d 1\n", i);
	reject_require(b.s, "require-grant g8 ", "require-grant: the counts of "
	    "require-grant sum to 9, more than the 8");
	free(b.s);
	/* The same group in require and require-grant is fine. */
	b.s = NULL;
	b.len = b.cap = 0;
	sb_add(&b, base);
	sb_add(&b, officers);
	k = key_with("k", "    require so 2\n    allow-grants 5 5s\n"
	    "    require-grant so 1\n    allow-releases 10000\n");
	sb_add(&b, k);
	text = expand(b.s);
	{
		struct sg_policy *p = parse_ok(text);
		const struct sg_policy_key *kk;

		if (p != NULL && (kk = sg_policy_key(p, "k")) != NULL) {
			CHECK_EQ_INT(kk->release_max, 10000);
			CHECK_EQ_INT(kk->grant_max_count, 5);
			CHECK_EQ_INT(kk->grant_max_lifetime, 5);
			CHECK_EQ_INT(kk->nterms, 1);
			CHECK_EQ_INT(kk->ngrant_terms, 1);
		}
		sg_policy_free(p);
	}
	free(text);
	free(k);
	free(b.s);
}

/* --- WebAuthn credentials (webauthn-key) --- */

#define WA(id, rest, key) \
	" webauthn-key " id " rp-id signgate.example origin " rest "\n" \
	" @PEM:" key "@\n"

static void
test_webauthn_keys(void)
{
	static const char text[] =
	    "policy t\nversion 1\n"
	    "principal gina\n    roles officer\n    client-cn gina\n"
	    "    webauthn-key Z2luYQ rp-id signgate.example origin "
	    "https://signgate.example\n"
	    "    @PEM:o1@\n"
	    "    webauthn-key Z2luYTI rp-id signgate.example origin "
	    "https://console.signgate.example:8443 user-verification\n"
	    "    @PEM:rsa2048@\n"
	    "end\n"
	    "principal bob\n    roles officer\n    client-cn bob\n"
	    "    @KEY:bob@\n"
	    "    webauthn-key Ym9i rp-id localhost origin "
	    "https://localhost:8443\n"
	    "    @PEM:o2@\n"
	    "end\n"
	    "group g\n    members gina bob\nend\n";
	char *t = expand(text);
	struct sg_policy *p = parse_ok(t);
	const struct sg_principal *g, *b;
	const struct sg_webauthn_cred *c;

	free(t);
	if (p == NULL)
		return;
	g = sg_policy_principal(p, "gina");
	b = sg_policy_principal(p, "bob");
	CHECK(g != NULL && g->approval_key == NULL && g->nwebauthn == 2);
	CHECK(b != NULL && b->approval_key != NULL && b->nwebauthn == 1);
	if (g == NULL || b == NULL || g->nwebauthn != 2 || b->nwebauthn != 1)
		goto out;
	c = sg_principal_webauthn(g, (const uint8_t *)"gina", 4);
	CHECK(c == &g->webauthn[0]);
	CHECK(c != NULL && strcmp(c->rp_id, "signgate.example") == 0 &&
	    strcmp(c->origin, "https://signgate.example") == 0 &&
	    !c->require_uv && EVP_PKEY_eq(c->pub, find_key("o1", 2)->pkey));
	c = sg_principal_webauthn(g, (const uint8_t *)"gina2", 5);
	CHECK(c != NULL && c->require_uv && strcmp(c->origin,
	    "https://console.signgate.example:8443") == 0 &&
	    sg_pubkey_alg(c->pub) == SG_ALG_RSA);
	CHECK(sg_principal_webauthn(g, (const uint8_t *)"gin", 3) == NULL);
	CHECK(sg_principal_webauthn(g, (const uint8_t *)"bob", 3) == NULL);
	CHECK(sg_principal_webauthn(b, (const uint8_t *)"bob", 3) != NULL);
out:
	sg_policy_free(p);
}

static void
test_reject_webauthn_keys(void)
{
	const char *o = "principal o\n roles officer\n client-cn o\n";
	char buf[2048];

#define RW(stmt, key, needle) do {					\
	snprintf(buf, sizeof(buf), "%s webauthn-key " stmt "\n @PEM:"	\
	    key "@\nend\n", o);						\
	REJECT(buf, "webauthn-key", needle);				\
} while (0)
	RW("Zw rp-id signgate.example origin https://signgate.example",
	    "ed25519", "principal 'o': webauthn-key: key type not accepted");
	RW("Zw rp-id signgate.example origin https://signgate.example",
	    "p384", "webauthn-key: key type not accepted (ES256");
	RW("Zw rp-id signgate.example origin https://signgate.example",
	    "rsa1024", "webauthn-key: RSA key of 1024 bits");
	RW("Zw rp-id signgate.example", "o1", "webauthn-key: expected "
	    "'<credential id> rp-id <rp-id> origin <origin> "
	    "[user-verification]'");
	RW("Zw rp-id signgate.example origin https://signgate.example uv",
	    "o1", "webauthn-key: expected");
	RW("Zw rpid signgate.example origin https://signgate.example",
	    "o1", "webauthn-key: expected");
	RW("Zw== rp-id signgate.example origin https://signgate.example",
	    "o1", "credential id 'Zw==' is not 1 to 1023 bytes of base64url");
	RW("Z+8 rp-id signgate.example origin https://signgate.example",
	    "o1", "is not 1 to 1023 bytes of base64url");
	RW("Zw rp-id SignGate.example origin https://signgate.example",
	    "o1", "rp-id 'SignGate.example' is not a lower-case DNS name");
	RW("Zw rp-id 10.0.0.1 origin https://10.0.0.1", "o1",
	    "rp-id '10.0.0.1' is not a lower-case DNS name");
	RW("Zw rp-id -x.example origin https://x.example", "o1",
	    "is not a lower-case DNS name");
	RW("Zw rp-id x..example origin https://x.example", "o1",
	    "is not a lower-case DNS name");
	RW("Zw rp-id x.example. origin https://x.example", "o1",
	    "is not a lower-case DNS name");
	RW("Zw rp-id signgate.example origin http://signgate.example", "o1",
	    "origin 'http://signgate.example' must be https://<host>");
	RW("Zw rp-id signgate.example origin https://signgate.example/",
	    "o1", "the host must be a lower-case DNS name, with no path");
	RW("Zw rp-id signgate.example origin https://signgate.example:443",
	    "o1", "not 443");
	RW("Zw rp-id signgate.example origin https://signgate.example:0",
	    "o1", "the port must be 1 to 65535");
	RW("Zw rp-id signgate.example origin https://signgate.example:080",
	    "o1", "the port must be 1 to 65535");
	RW("Zw rp-id signgate.example origin https://signgate.example:65536",
	    "o1", "the port must be 1 to 65535");
	RW("Zw rp-id signgate.example origin https://evilsigngate.example",
	    "o1", "its host must be the rp-id 'signgate.example' or a name "
	    "under it");
	RW("Zw rp-id signgate.example origin https://example", "o1",
	    "its host must be the rp-id");
#undef RW
	/* Not an officer; a missing PEM block; a certificate. */
	REJECT("principal o\n roles auditor\n client-cn o\n"
	    WA("Zw", "https://signgate.example", "o1") "end\n",
	    "webauthn-key", "principal 'o': webauthn-key: only officers");
	/* Base is six lines: the block's end is line 11. */
	reject_at("principal o\n roles officer\n client-cn o\n"
	    " webauthn-key Zw rp-id signgate.example origin "
	    "https://signgate.example\nend\n", NULL,
	    "webauthn-key: expected '-----BEGIN PUBLIC KEY-----' on the next",
	    1, 11);
	REJECT("principal o\n roles officer\n client-cn o\n"
	    WA("Zw", "https://signgate.example", "carol") "end\n",
	    "-----BEGIN CERT", "webauthn-key: expected '-----BEGIN PUBLIC "
	    "KEY-----' on the next line");
	/* The same id twice, in one principal and across two. */
	REJECT("principal o\n roles officer\n client-cn o\n"
	    WA("Zw", "https://signgate.example", "o1")
	    WA("Zw", "https://a.signgate.example", "o2") "end\n",
	    "origin https://a.signgate.example",
	    "webauthn-key: credential 'Zw' is listed twice (also line 10)");
	REJECT("principal o\n roles officer\n client-cn o\n"
	    WA("Zw", "https://signgate.example", "o1") "end\n"
	    "principal p\n roles officer\n client-cn p\n"
	    WA("Zw", "https://a.signgate.example", "o2") "end\n",
	    "origin https://a.signgate.example",
	    "principal 'p': webauthn-key: the credential id is already "
	    "principal 'o''s");
	/* One key, two principals: as credentials, or as a credential and
	 * an approval key (either order). */
	REJECT("principal o\n roles officer\n client-cn o\n"
	    WA("Zw", "https://signgate.example", "o1") "end\n"
	    "principal p\n roles officer\n client-cn p\n"
	    WA("YQ", "https://signgate.example", "o1") "end\n",
	    "webauthn-key YQ", "principal 'p': webauthn-key: the same key as "
	    "principal 'o''s WebAuthn credential key");
	REJECT("principal o\n roles officer\n client-cn o\n @KEY:o1@\nend\n"
	    "principal p\n roles officer\n client-cn p\n"
	    WA("YQ", "https://signgate.example", "o1") "end\n",
	    "webauthn-key YQ", "principal 'p': webauthn-key: the same key as "
	    "principal 'o''s approval key");
	REJECT("principal o\n roles officer\n client-cn o\n"
	    WA("YQ", "https://signgate.example", "o1") "end\n"
	    "principal p\n roles officer\n client-cn p\n @KEY:o1@\nend\n",
	    "approval-key\n", "principal 'p': approval-key: the same key as "
	    "principal 'o''s WebAuthn credential key");
	/* At most eight. */
	snprintf(buf, sizeof(buf), "%s%s%s%s%s%s%s%s%s%send\n", o,
	    WA("AQ", "https://signgate.example", "o0"),
	    WA("Ag", "https://signgate.example", "o0"),
	    WA("Aw", "https://signgate.example", "o0"),
	    WA("BA", "https://signgate.example", "o0"),
	    WA("BQ", "https://signgate.example", "o0"),
	    WA("Bg", "https://signgate.example", "o0"),
	    WA("Bw", "https://signgate.example", "o0"),
	    WA("CA", "https://signgate.example", "o0"),
	    WA("CQ", "https://signgate.example", "o0"));
	REJECT(buf, "webauthn-key CQ", "webauthn-key: more than 8 "
	    "credentials");
}

static void
free_keys(void)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		EVP_PKEY_free(keys[i].pkey);
		free(keys[i].pem);
		keys[i].pkey = NULL;
		keys[i].pem = NULL;
	}
}

/*
 * The inventory rule (sg_policy_token_allowed / sg_policy_hsm_allowed),
 * the one the front, the signer process and the verifier all call: every
 * way a token can be refused, and the two ways a make may be left open.
 */
#define TI(t) (t).label, (t).serial, (t).manufacturer, (t).model

static void
test_inventory_rule(void)
{
	char *text = expand(dev_tmpl);
	struct sg_policy *p = parse_ok(text);
	const struct sg_policy_key *release, *firmware;
	const struct sg_hsm *h;
	struct {
		char label[SG_TOKEN_LABEL_SIZE];
		char serial[SG_TOKEN_SERIAL_MAX + 1];
		char manufacturer[SG_TOKEN_MANUFACTURER_MAX + 1];
		char model[SG_TOKEN_MODEL_MAX + 1];
	} ti;
	char why[256];

	if (p == NULL) {
		free(text);
		return;
	}
	release = sg_policy_key(p, "release");
	firmware = sg_policy_key(p, "firmware");
	memset(&ti, 0, sizeof(ti));
	snprintf(ti.label, sizeof(ti.label), "signgate-dev");
	snprintf(ti.serial, sizeof(ti.serial), "4c6d3b1f0a2e7c91");
	snprintf(ti.manufacturer, sizeof(ti.manufacturer), "SoftHSM project");
	snprintf(ti.model, sizeof(ti.model), "SoftHSM v2");

	/* In the inventory, the make it names, a country the key allows. */
	h = NULL;
	CHECK_EQ_INT(sg_policy_token_allowed(p, release, TI(ti), &h, why,
	    sizeof(why)), 0);
	CHECK(h != NULL && strcmp(h->site, "Zurich") == 0);
	CHECK_EQ_INT(sg_policy_token_allowed(p, release, TI(ti), NULL, why,
	    sizeof(why)), 0);

	/* Another model, another manufacturer (a token that only claims the
	 * serial), one byte off. */
	snprintf(ti.model, sizeof(ti.model), "SoftHSM v3");
	CHECK_EQ_INT(sg_policy_token_allowed(p, release, TI(ti), NULL, why,
	    sizeof(why)), SG_ERR_FORBIDDEN);
	CHECK_STR(why, "token serial 4c6d3b1f0a2e7c91 reports manufacturer "
	    "'SoftHSM project' model 'SoftHSM v3', the inventory says "
	    "'SoftHSM project' 'SoftHSM v2'");
	snprintf(ti.model, sizeof(ti.model), "SoftHSM v2");
	snprintf(ti.manufacturer, sizeof(ti.manufacturer), "SoftHSM projecT");
	CHECK_EQ_INT(sg_policy_token_allowed(p, release, TI(ti), NULL, why,
	    sizeof(why)), SG_ERR_FORBIDDEN);
	snprintf(ti.manufacturer, sizeof(ti.manufacturer), "SoftHSM project");

	/* Not in the inventory, or a serial one character off. */
	snprintf(ti.serial, sizeof(ti.serial), "4c6d3b1f0a2e7c90");
	h = NULL;
	CHECK_EQ_INT(sg_policy_token_allowed(p, release, TI(ti), &h, why,
	    sizeof(why)), SG_ERR_FORBIDDEN);
	CHECK(h == NULL);
	CHECK_STR(why, "token 'signgate-dev' (serial 4c6d3b1f0a2e7c90) is not "
	    "in the HSM inventory");

	/* X1 names no make (any is fine) but stands in DE, which neither
	 * key allows. */
	snprintf(ti.serial, sizeof(ti.serial), "X1");
	snprintf(ti.manufacturer, sizeof(ti.manufacturer), "Other");
	snprintf(ti.model, sizeof(ti.model), "Other");
	CHECK_EQ_INT(sg_policy_token_allowed(p, release, TI(ti), NULL, why,
	    sizeof(why)), SG_ERR_FORBIDDEN);
	CHECK_STR(why, "token serial X1 stands in DE (Frankfurt am Main); "
	    "key 'release' is not allowed there");
	CHECK_EQ_INT(sg_policy_token_allowed(p, firmware, TI(ti), NULL, why,
	    sizeof(why)), SG_ERR_FORBIDDEN);

	/* A logged serial: inventory and country, no make. */
	h = NULL;
	CHECK_EQ_INT(sg_policy_hsm_allowed(p, release, "4c6d3b1f0a2e7c91", &h,
	    why, sizeof(why)), 0);
	CHECK(h != NULL && strcmp(h->country, "CH") == 0);
	CHECK_EQ_INT(sg_policy_hsm_allowed(p, release, "X1", NULL, why,
	    sizeof(why)), SG_ERR_FORBIDDEN);
	CHECK_EQ_INT(sg_policy_hsm_allowed(p, release, "nope", NULL, why,
	    sizeof(why)), SG_ERR_FORBIDDEN);
	CHECK_STR(why, "token serial nope is not in the HSM inventory");

	/* Arguments. */
	CHECK_EQ_INT(sg_policy_token_allowed(p, NULL, TI(ti), NULL, why,
	    sizeof(why)), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_policy_token_allowed(p, release, ti.label, NULL,
	    ti.manufacturer, ti.model, NULL, why, sizeof(why)),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_policy_hsm_allowed(p, release, NULL, NULL, why,
	    sizeof(why)), SG_ERR_INVALID);
	sg_policy_free(p);
	free(text);
}

SG_TEST_MAIN("policy",
    T(test_policy_change),
    T(test_kind_keywords),
    T(test_kind_quorum),
    T(test_kind_may_approve_now),
    T(test_webauthn_keys),
    T(test_reject_webauthn_keys),
    T(test_reject_kind_keywords),
    T(test_valid_policy),
    T(test_inventory_rule),
    T(test_minimal_and_edges),
    T(test_reject_structure),
    T(test_reject_principals),
    T(test_reject_groups_hsms),
    T(test_reject_keys),
    T(test_reject_require),
    T(test_eval_dev_exhaustive),
    T(test_eval_rules),
    T(test_eval_overlap),
    T(test_eval_brute_force),
    T(test_eval_revoked),
    T(test_mutations),
    T(test_error_buffer),
    T(free_keys))
