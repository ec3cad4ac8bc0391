/*
 * Tests for sg_evidence_check(): a policy with officers' keys generated
 * here (inline PEM), statements built with sg_statement_build(), and DSSE
 * envelopes signed in-process exactly as `openssl dgst -sha256 -sign`
 * would.  Each case changes one element of otherwise good evidence and
 * expects a refusal that names the broken link; a mutation loop flips
 * every byte of the statement and of each envelope.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_policy.h"
#include "sg_util.h"
#include "sg_webauthn.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define EXPIRES 2000000000LL
#define SIGNED_AT (EXPIRES - 3600)

struct officer_key {
	const char *name;
	const char *type;          /* "P-256", "P-384", "RSA" */
	EVP_PKEY *pkey;
	char *pem;
};

static struct officer_key okeys[] = {
	{ "alice", "P-256", NULL, NULL },
	{ "bob", "P-256", NULL, NULL },
	{ "carol", "P-256", NULL, NULL },
	{ "dave", "P-384", NULL, NULL },
	{ "erin", "RSA", NULL, NULL },
	{ "frank", "P-256", NULL, NULL },
	{ "mallory", "P-256", NULL, NULL },   /* in no policy */
};
#define NOKEYS (sizeof(okeys) / sizeof(okeys[0]))

static EVP_PKEY *
okey(const char *name)
{
	size_t i;

	for (i = 0; i < NOKEYS; i++)
		if (strcmp(okeys[i].name, name) == 0)
			return okeys[i].pkey;
	abort();
}

static const char *
opem(const char *name)
{
	size_t i;

	for (i = 0; i < NOKEYS; i++)
		if (strcmp(okeys[i].name, name) == 0)
			return okeys[i].pem;
	abort();
}

static void
make_keys(void)
{
	size_t i;

	if (okeys[0].pkey != NULL)
		return;
	for (i = 0; i < NOKEYS; i++) {
		struct officer_key *k = &okeys[i];

		if (strcmp(k->type, "RSA") == 0)
			k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
			    (size_t)2048);
		else
			k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", k->type);
		if (k->pkey == NULL ||
		    (k->pem = sg_fx_pubkey_pem(k->pkey)) == NULL)
			abort();
	}
}

/* --- policy text --- */

struct text {
	char *s;
	size_t len;
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (t->s = realloc(t->s, t->len + (size_t)n + 1)) == NULL)
		abort();
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void
officer(struct text *t, const char *name, const char *roles)
{
	text_add(t, "principal %s\n    roles %s\n    client-cn %s\n"
	    "    approval-key\n%send\n", name, roles, name, opem(name));
}

/* The policy every test uses; `comment` changes its bytes only, `version`
 * its version. */
static char *
policy_text(const char *comment, unsigned version)
{
	struct text t = { NULL, 0 };

	make_keys();
	text_add(&t, "# %s\npolicy evidence-test\nversion %u\n\n", comment,
	    version);
	text_add(&t, "principal ci\n    roles requester\n    client-cn ci\n"
	    "end\n");
	text_add(&t, "principal audit\n    roles auditor\n    client-cn audit\n"
	    "end\n");
	officer(&t, "alice", "officer");
	officer(&t, "bob", "officer");
	officer(&t, "carol", "officer");
	officer(&t, "dave", "requester officer");
	officer(&t, "erin", "officer");
	officer(&t, "frank", "officer");
	text_add(&t,
	    "group security-officers\n    members alice bob carol erin\nend\n"
	    "group release-managers\n    members dave\nend\n"
	    "group bystanders\n    members frank\nend\n"
	    "hsm 0011223344556677\n    site Zurich\n    country CH\nend\n"
	    "key release\n    token t\n    object release\n"
	    "    algorithm ecdsa-p256\n    formats raw\n"
	    "    requesters ci dave\n"
	    "    require security-officers 2\n"
	    "    require release-managers 1\n"
	    "    veto no\n    lifetime 24h\n    countries CH\nend\n"
	    "key firmware\n    token t\n    object firmware\n"
	    "    algorithm rsa-pkcs1\n    formats raw\n    requesters ci\n"
	    "    require security-officers 2\n"
	    "    veto yes\n    lifetime 24h\n    countries CH\nend\n"
	    "key nightly\n    token t\n    object nightly\n"
	    "    algorithm ecdsa-p256\n    formats raw\n    requesters ci\n"
	    "    veto no\n    lifetime 1h\n    countries CH\nend\n"
	    "key orphan\n    token t\n    object orphan\n"
	    "    algorithm ecdsa-p256\n    formats raw\n"
	    "    require security-officers 1\n"
	    "    veto no\n    lifetime 1h\n    countries CH\nend\n"
	    "key batch\n    token t\n    object batch\n"
	    "    algorithm ecdsa-p256\n    formats raw\n"
	    "    requesters ci dave\n"
	    "    require security-officers 2\n"
	    "    allow-releases 100\n"
	    "    allow-grants 50 7d\n"
	    "    require-grant release-managers 1\n"
	    "    veto yes\n    countries CH\nend\n");
	return t.s;
}

static struct sg_policy *
make_policy(const char *comment, unsigned version)
{
	struct sg_policy *p = NULL;
	char *text = policy_text(comment, version), err[512];

	if (sg_policy_parse("evidence.policy", text, strlen(text), &p, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "policy: %s\n", err);
		abort();
	}
	free(text);
	return p;
}

/* --- statements and envelopes --- */

static char *
statement_for(const struct sg_policy *p, const char *request,
    const char *key, const char *requester, const char *digest_hex)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len;

	memset(&s, 0, sizeof(s));
	snprintf(s.request, sizeof(s.request), "%s", request);
	snprintf(s.key, sizeof(s.key), "%s", key);
	memset(s.spki_sha256, 'c', 64);
	snprintf(s.digest_alg, sizeof(s.digest_alg), "sha256");
	snprintf(s.digest_hex, sizeof(s.digest_hex), "%s", digest_hex);
	snprintf(s.format, sizeof(s.format), "raw");
	snprintf(s.requester, sizeof(s.requester), "%s", requester);
	snprintf(s.policy_name, sizeof(s.policy_name), "%s",
	    sg_policy_name(p));
	s.policy_version = sg_policy_version(p);
	snprintf(s.policy_sha256, sizeof(s.policy_sha256), "%s",
	    sg_policy_sha256_hex(p));
	s.expires = EXPIRES;
	if (sg_statement_build(&s, &text, &len) != 0)
		abort();
	return text;
}

#define REQ1 "0123456789abcdef0123456789abcdef"
#define REQ2 "fedcba9876543210fedcba9876543210"
#define DIG1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* An envelope over statement + decision, signed with signer's key under
 * the name keyid. */
static char *
envelope_as(const char *statement, const char *type, const char *signer,
    const char *keyid, int approve)
{
	uint8_t *body = NULL, *pae = NULL, sig[1024];
	size_t body_len, pae_len, sig_len = sizeof(sig);
	EVP_MD_CTX *ctx;
	char *json = NULL;

	if (sg_body_build(statement, strlen(statement), approve, &body,
	    &body_len) != 0 || sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae,
	    &pae_len) != 0 || (ctx = EVP_MD_CTX_new()) == NULL)
		abort();
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
	    okey(signer)) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, pae, pae_len) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	if (sg_envelope_build(type, body, body_len, keyid, sig, sig_len,
	    &json) != 0)
		abort();
	free(body);
	free(pae);
	return json;
}

static char *
envelope(const char *statement, const char *officer_name, int approve)
{
	return envelope_as(statement, SG_DSSE_TYPE, officer_name,
	    officer_name, approve);
}

/* Runs the check; want NULL means success is expected, otherwise a
 * refusal whose message starts with want. */
static void
expect(const struct sg_policy *p, const char *statement, char **envs,
    size_t n, int64_t signed_at, const char *want, int line)
{
	const char *e[SG_ENVELOPES_MAX + 1];
	size_t lens[SG_ENVELOPES_MAX + 1], i;
	struct sg_statement st;
	char err[1024];
	int r;

	for (i = 0; i < n; i++) {
		e[i] = envs[i];
		lens[i] = strlen(envs[i]);
	}
	memset(&st, 0, sizeof(st));
	memset(err, 'x', sizeof(err));
	err[sizeof(err) - 1] = '\0';
	r = sg_evidence_check(p, statement, strlen(statement), e, lens, n,
	    signed_at, &st, err, sizeof(err));
	if (want == NULL) {
		if (r != 0)
			fprintf(stderr, "  line %d: refused: %s\n", line, err);
		CHECK_EQ_INT(r, 0);
		CHECK_STR(st.request, r == 0 ? REQ1 : "");
		return;
	}
	if (r == 0 || strncmp(err, want, strlen(want)) != 0)
		fprintf(stderr, "  line %d: r=%d err=\"%s\", want \"%s...\"\n",
		    line, r, err, want);
	CHECK(r != 0);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	CHECK_STR(st.request, "");      /* untouched on failure */
}
#define EXPECT(p, s, e, n, t, w) expect(p, s, e, n, t, w, __LINE__)

static void
free_all(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
}

/* --- tests --- */

static void
test_quorum_met(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *e[4];

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "dave", 1);
	e[2] = envelope(s, "erin", 1);       /* RSA approval key */
	EXPECT(p, s, e, 3, SIGNED_AT, NULL);
	/* Order does not matter; a reject next to a quorum (no veto) is
	 * recorded evidence, not a defect. */
	e[3] = envelope(s, "bob", 0);
	EXPECT(p, s, e, 4, SIGNED_AT, NULL);
	free_all(e, 4);
	free(s);

	/* No approval needed, none given. */
	s = statement_for(p, REQ1, "nightly", "ci", DIG1);
	EXPECT(p, s, NULL, 0, SIGNED_AT, NULL);
	free(s);
	sg_policy_free(p);
}

static void
test_missing(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *e[3];
	struct sg_statement st;
	char err[256];

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "bob", 1);
	e[2] = envelope(s, "dave", 1);
	EXPECT(p, s, e, 2, SIGNED_AT,
	    "quorum: not met for key release: missing 1 more of 1 "
	    "release-managers");
	EXPECT(p, s, e + 1, 2, SIGNED_AT,
	    "quorum: not met for key release: missing 1 more of 2 "
	    "security-officers");
	EXPECT(p, s, e, 0, SIGNED_AT,
	    "quorum: not met for key release: missing 2 more of 2 "
	    "security-officers, 1 more of 1 release-managers");
	/* A reject instead of an approval, without veto: still pending. */
	free(e[1]);
	e[1] = envelope(s, "bob", 0);
	EXPECT(p, s, e, 3, SIGNED_AT, "quorum: not met");
	free_all(e, 3);

	/* Too many envelopes to be real evidence. */
	{
		const char *many[SG_ENVELOPES_MAX + 1];
		size_t lens[SG_ENVELOPES_MAX + 1], i;

		for (i = 0; i <= SG_ENVELOPES_MAX; i++) {
			many[i] = "{}";
			lens[i] = 2;
		}
		CHECK_EQ_INT(sg_evidence_check(p, s, strlen(s), many, lens,
		    SG_ENVELOPES_MAX + 1, SIGNED_AT, &st, err,
		    sizeof(err)), SG_ERR_TOO_LARGE);
	}
	CHECK(strncmp(err, "approvals:", 10) == 0);
	CHECK_EQ_INT(sg_evidence_check(NULL, s, strlen(s), NULL, NULL, 0,
	    SIGNED_AT, &st, err, sizeof(err)), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_evidence_check(p, s, strlen(s), NULL, NULL, 1,
	    SIGNED_AT, &st, err, sizeof(err)), SG_ERR_INVALID);
	free(s);
	sg_policy_free(p);
}

static void
test_extra_and_wrong(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *sd = statement_for(p, REQ1, "release", "dave", DIG1);
	char *sn = statement_for(p, REQ1, "nightly", "ci", DIG1);
	char *e[4], *x;

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "bob", 1);
	e[2] = envelope(s, "dave", 1);

	/* The same officer twice, even with two valid signatures. */
	e[3] = envelope(s, "alice", 1);
	EXPECT(p, s, e, 4, SIGNED_AT, "approval 4: alice decided twice");
	free(e[3]);

	/* An officer outside the key's groups. */
	e[3] = envelope(s, "frank", 1);
	EXPECT(p, s, e, 4, SIGNED_AT,
	    "approval 4: frank is not an approver for key release");
	free(e[3]);

	/* An auditor, the requester, a stranger. */
	e[3] = envelope_as(s, SG_DSSE_TYPE, "alice", "audit", 1);
	EXPECT(p, s, e, 4, SIGNED_AT, "approval 4: audit is not an officer");
	free(e[3]);
	e[3] = envelope_as(s, SG_DSSE_TYPE, "alice", "ci", 1);
	EXPECT(p, s, e, 4, SIGNED_AT, "approval 4: ci is not an officer");
	free(e[3]);
	e[3] = envelope(s, "mallory", 1);
	EXPECT(p, s, e, 4, SIGNED_AT,
	    "approval 4: keyid mallory is not a principal of the policy");
	free(e[3]);

	/* dave requested: his own approval is refused, whoever else
	 * approved. */
	x = envelope(sd, "dave", 1);
	e[3] = envelope(sd, "alice", 1);
	{
		char *v[3] = { e[3], x, NULL };
		v[2] = envelope(sd, "bob", 1);
		EXPECT(p, sd, v, 3, SIGNED_AT,
		    "approval 2: dave requested this signature");
		free(v[2]);
	}
	free(x);
	free(e[3]);

	/* An approval where none is needed: nobody may approve nightly. */
	x = envelope(sn, "alice", 1);
	EXPECT(p, sn, &x, 1, SIGNED_AT,
	    "approval 1: alice is not an approver for key nightly");
	free(x);

	/* Signed by bob under alice's name. */
	free(e[0]);
	e[0] = envelope_as(s, SG_DSSE_TYPE, "bob", "alice", 1);
	EXPECT(p, s, e, 3, SIGNED_AT,
	    "approval 1 (alice): the signature does not verify");
	free(e[0]);

	/* Another payload type, correctly signed over its PAE?  The PAE is
	 * over SG_DSSE_TYPE; the type itself is refused first. */
	e[0] = envelope_as(s, "application/json", "alice", "alice", 1);
	EXPECT(p, s, e, 3, SIGNED_AT, "approval 1 (alice): payloadType");
	free(e[0]);

	/* Not JSON at all; an envelope with an extra member. */
	e[0] = strdup("{\"payloadType\":");
	EXPECT(p, s, e, 3, SIGNED_AT, "approval 1: not a valid envelope");
	free(e[0]);
	x = envelope(s, "alice", 1);
	if (asprintf(&e[0], "{\"x\":1,%s", x + 1) < 0)
		abort();
	free(x);
	EXPECT(p, s, e, 3, SIGNED_AT, "approval 1: not a valid envelope");
	free(e[0]);

	free(e[1]);
	free(e[2]);
	free(s);
	free(sd);
	free(sn);
	sg_policy_free(p);
}

static void
test_vetoed(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "firmware", "ci", DIG1);
	char *e[3];

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "carol", 1);
	EXPECT(p, s, e, 2, SIGNED_AT, NULL);
	e[2] = envelope(s, "bob", 0);
	EXPECT(p, s, e, 3, SIGNED_AT, "quorum: vetoed: bob rejected");
	free_all(e, 3);
	free(s);
	sg_policy_free(p);
}

static void
test_expired(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *e[3];

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "bob", 1);
	e[2] = envelope(s, "dave", 1);
	EXPECT(p, s, e, 3, EXPIRES - 1, NULL);
	EXPECT(p, s, e, 3, EXPIRES, "expiry: signed at 2033-05-18T03:33:20Z, "
	    "but the request expired at 2033-05-18T03:33:20Z");
	EXPECT(p, s, e, 3, EXPIRES + 86400, "expiry:");
	free_all(e, 3);
	free(s);
	sg_policy_free(p);
}

static void
test_wrong_policy(void)
{
	struct sg_policy *p = make_policy("a", 1);
	struct sg_policy *other = make_policy("b", 1);   /* other bytes */
	struct sg_policy *v2 = make_policy("a", 2);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *so = statement_for(p, REQ1, "orphan", "ci", DIG1);
	char *sx = statement_for(p, REQ1, "release", "audit", DIG1);
	char *e[3], want[512];

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "bob", 1);
	e[2] = envelope(s, "dave", 1);
	EXPECT(p, s, e, 3, SIGNED_AT, NULL);
	snprintf(want, sizeof(want), "policy: the signature was approved "
	    "under policy evidence-test@1 sha256:%s, not the given file",
	    sg_policy_sha256_hex(p));
	EXPECT(other, s, e, 3, SIGNED_AT, want);
	EXPECT(v2, s, e, 3, SIGNED_AT, want);
	/* A key nobody may request, a requester who is not one. */
	EXPECT(p, so, NULL, 0, SIGNED_AT, "requester: ci may not request key "
	    "orphan");
	EXPECT(p, sx, NULL, 0, SIGNED_AT, "requester: audit may not request");
	free_all(e, 3);
	free(s);
	free(so);
	free(sx);

	/* A key the policy does not have. */
	{
		struct sg_statement st;
		char *t = NULL;
		size_t len;

		so = statement_for(p, REQ1, "release", "ci", DIG1);
		CHECK_EQ_INT(sg_statement_parse(so, strlen(so), &st), 0);
		snprintf(st.key, sizeof(st.key), "retired");
		CHECK_EQ_INT(sg_statement_build(&st, &t, &len), 0);
		EXPECT(p, t, NULL, 0, SIGNED_AT, "key: retired is not a key of "
		    "policy evidence-test");
		free(t);
		free(so);
	}
	sg_policy_free(p);
	sg_policy_free(other);
	sg_policy_free(v2);
}

static void
test_tampered_statement(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *s2 = statement_for(p, REQ2, "release", "ci", DIG1);
	char *e[3], *t, *a;

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "bob", 1);
	e[2] = envelope(s, "dave", 1);

	/* One digest character changed: still a valid statement, but not
	 * the one the officers signed. */
	t = strdup(s);
	a = strstr(t, "artifact sha256:");
	a[strlen("artifact sha256:")] = 'b';
	EXPECT(p, t, e, 3, SIGNED_AT,
	    "approval 1 (alice): it approves another statement");
	/* A change that breaks the statement's grammar. */
	a[strlen("artifact sha256:")] = 'B';
	EXPECT(p, t, e, 3, SIGNED_AT, "statement: not a valid");
	free(t);
	EXPECT(p, "", e, 3, SIGNED_AT, "statement:");

	/* bob's approval of another request, valid in itself. */
	free(e[1]);
	e[1] = envelope(s2, "bob", 1);
	EXPECT(p, s2, e + 1, 1, SIGNED_AT, "quorum: not met");
	EXPECT(p, s, e, 3, SIGNED_AT,
	    "approval 2 (bob): it approves another statement");
	free_all(e, 3);
	free(s);
	free(s2);
	sg_policy_free(p);
}

/* Every single-byte change of good evidence is refused, and none crashes
 * (run under ASan too). */
static void
test_mutations(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *e[3], err[1024];
	const char *v[3];
	size_t lens[3], i, k, accepted = 0, tried = 0;
	size_t slen = strlen(s);

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "carol", 1);
	e[2] = envelope(s, "dave", 1);
	for (k = 0; k < 3; k++) {
		v[k] = e[k];
		lens[k] = strlen(e[k]);
	}
	CHECK_EQ_INT(sg_evidence_check(p, s, slen, v, lens, 3, SIGNED_AT,
	    NULL, err, sizeof(err)), 0);
	for (i = 0; i < slen; i++) {
		s[i] ^= 0x01;
		tried++;
		if (sg_evidence_check(p, s, slen, v, lens, 3, SIGNED_AT, NULL,
		    err, sizeof(err)) == 0)
			accepted++;
		s[i] ^= 0x01;
	}
	for (k = 0; k < 3; k++) {
		for (i = 0; i < lens[k]; i++) {
			e[k][i] ^= 0x01;
			tried++;
			if (sg_evidence_check(p, s, slen, v, lens, 3,
			    SIGNED_AT, NULL, err, sizeof(err)) == 0) {
				fprintf(stderr, "  accepted: envelope %zu "
				    "byte %zu\n", k, i);
				accepted++;
			}
			e[k][i] ^= 0x01;
		}
		/* Truncated by one byte. */
		lens[k]--;
		CHECK(sg_evidence_check(p, s, slen, v, lens, 3, SIGNED_AT,
		    NULL, err, sizeof(err)) != 0);
		lens[k]++;
	}
	CHECK(tried > 1000);
	CHECK_EQ_INT(accepted, 0);
	CHECK_EQ_INT(sg_evidence_check(p, s, slen, v, lens, 3, SIGNED_AT,
	    NULL, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	free_all(e, 3);
	free(s);
	sg_policy_free(p);
}

static void
test_error_buffer(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char small[8];

	memset(small, 'x', sizeof(small));
	CHECK(sg_evidence_check(p, s, strlen(s), NULL, NULL, 0, SIGNED_AT,
	    NULL, small, sizeof(small)) != 0);
	CHECK_EQ_INT(strlen(small), sizeof(small) - 1);
	CHECK(sg_evidence_check(p, s, strlen(s), NULL, NULL, 0, SIGNED_AT,
	    NULL, NULL, 0) != 0);
	free(s);
	sg_policy_free(p);
}

static struct sg_policy *
parse_text(char *text)
{
	struct sg_policy *p = NULL;
	char err[512];

	if (sg_policy_parse("evidence.policy", text, strlen(text), &p, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "policy: %s\n", err);
		abort();
	}
	free(text);
	return p;
}

/* Version 2 of the test policy: carol is an auditor in no group (when
 * revoke), or alice has another approval key (when rekey). */
static struct sg_policy *
policy_v2(int revoke, int rekey)
{
	char *t = policy_text("a", 2), *block;

	if (revoke) {
		if (asprintf(&block, "principal carol\n    roles officer\n"
		    "    client-cn carol\n    approval-key\n%send\n",
		    opem("carol")) < 0)
			abort();
		t = sg_fx_replace1(t, block,
		    "principal carol\n    roles auditor\n"
		    "    client-cn carol\nend\n");
		free(block);
		t = sg_fx_replace1(t, "members alice bob carol erin",
		    "members alice bob erin");
	}
	if (rekey)
		t = sg_fx_replace1(t, opem("alice"), opem("mallory"));
	return parse_text(t);
}

/* The same check with the policy in force next to the request's. */
static int
check_now(const struct sg_policy *p, const struct sg_policy *now,
    const char *s, char **envs, size_t n, char *err, size_t errlen)
{
	const char *e[8];
	size_t lens[8], i;

	for (i = 0; i < n && i < 8; i++) {
		e[i] = envs[i];
		lens[i] = strlen(envs[i]);
	}
	return sg_evidence_check_now(p, now, s, strlen(s), e, lens, n,
	    SIGNED_AT, NULL, err, errlen);
}

/*
 * An officer revoked by a later policy no longer counts: evidence under
 * the request's policy that holds an approval by her is refused when the
 * policy in force no longer makes her an approver, or gave her another
 * approval key; the same evidence without her, still a quorum, passes.
 */
static void
test_revoked_officer(void)
{
	struct sg_policy *p = make_policy("a", 1);
	struct sg_policy *revoked = policy_v2(1, 0);
	struct sg_policy *rekeyed = policy_v2(0, 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *e[4], *carol, err[1024];

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "carol", 1);
	e[2] = envelope(s, "dave", 1);
	e[3] = envelope(s, "bob", 1);
	/* Under the request's policy alone, and when it is still in force. */
	CHECK_EQ_INT(check_now(p, NULL, s, e, 3, err, sizeof(err)), 0);
	CHECK_EQ_INT(check_now(p, p, s, e, 3, err, sizeof(err)), 0);
	/* The rule, in the policy module. */
	CHECK(sg_policy_may_approve_now(p, sg_policy_key(p, "release"), p,
	    "ci", "carol"));
	CHECK(!sg_policy_may_approve_now(p, sg_policy_key(p, "release"),
	    revoked, "ci", "carol"));
	CHECK(sg_policy_may_approve_now(p, sg_policy_key(p, "release"),
	    revoked, "ci", "alice"));
	CHECK(!sg_policy_may_approve_now(p, sg_policy_key(p, "release"),
	    rekeyed, "ci", "alice"));
	CHECK(sg_policy_may_approve_now(p, sg_policy_key(p, "release"),
	    rekeyed, "ci", "carol"));
	/* carol revoked: her envelope breaks the evidence. */
	CHECK_EQ_INT(check_now(p, revoked, s, e, 3, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strncmp(err, "approval 2: carol may no longer approve key "
	    "release: the policy in force (evidence-test@2)", 60) == 0);
	/* Without her, alice + bob + dave still make the quorum. */
	carol = e[1];
	e[1] = e[3];
	CHECK_EQ_INT(check_now(p, revoked, s, e, 3, err, sizeof(err)), 0);
	/* alice's approval key replaced: her old envelope no longer counts. */
	CHECK_EQ_INT(check_now(p, rekeyed, s, e, 3, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strncmp(err, "approval 1: alice may no longer approve", 39) ==
	    0);
	e[1] = NULL;
	free_all(e, 4);
	free(carol);
	free(s);
	sg_policy_free(p);
	sg_policy_free(revoked);
	sg_policy_free(rekeyed);
}

/* --- releases and grants --- */

#define ROOT1 "1111111111111111111111111111111111111111111111111111111111111111"

/* A release's (pattern NULL) or a grant's statement. */
static char *
kind_statement(const struct sg_policy *p, const char *key,
    const char *requester, uint64_t count, const char *root,
    const char *pattern)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len;

	memset(&s, 0, sizeof(s));
	s.kind = pattern == NULL ? SG_KIND_RELEASE : SG_KIND_GRANT;
	snprintf(s.request, sizeof(s.request), "%s", REQ1);
	snprintf(s.key, sizeof(s.key), "%s", key);
	memset(s.spki_sha256, 'c', 64);
	snprintf(s.format, sizeof(s.format), "raw");
	snprintf(s.requester, sizeof(s.requester), "%s", requester);
	snprintf(s.policy_name, sizeof(s.policy_name), "%s",
	    sg_policy_name(p));
	s.policy_version = sg_policy_version(p);
	snprintf(s.policy_sha256, sizeof(s.policy_sha256), "%s",
	    sg_policy_sha256_hex(p));
	s.expires = EXPIRES;
	s.count = count;
	if (pattern == NULL)
		snprintf(s.manifest_root, sizeof(s.manifest_root), "%s", root);
	else
		snprintf(s.pattern, sizeof(s.pattern), "%s", pattern);
	if (sg_statement_build(&s, &text, &len) != 0)
		abort();
	return text;
}

/*
 * A release is decided by the key's require terms; the key must allow
 * releases of this many artifacts.
 */
static void
test_release_evidence(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = kind_statement(p, "batch", "ci", 3, ROOT1, NULL);
	char *s101 = kind_statement(p, "batch", "ci", 101, ROOT1, NULL);
	char *srel = kind_statement(p, "release", "ci", 3, ROOT1, NULL);
	char *e[3], *e101[2], *erel[3];
	const char *ee[2];
	size_t lens[2];
	struct sg_statement st;
	char err[512];

	e[0] = envelope(s, "alice", 1);
	e[1] = envelope(s, "bob", 1);
	e[2] = envelope(s, "dave", 1);
	EXPECT(p, s, e, 2, SIGNED_AT, NULL);
	/* dave is in no require group of batch. */
	EXPECT(p, s, e + 1, 2, SIGNED_AT, "approval 2: dave is not an "
	    "approver for key batch");
	EXPECT(p, s, e, 1, SIGNED_AT, "quorum: not met for key batch: "
	    "missing 1 more of 2 security-officers");
	EXPECT(p, s, e, 2, EXPIRES, "expiry:");
	/* The parsed statement comes back with its kind. */
	ee[0] = e[0];
	ee[1] = e[1];
	lens[0] = strlen(e[0]);
	lens[1] = strlen(e[1]);
	CHECK_EQ_INT(sg_evidence_check(p, s, strlen(s), ee, lens, 2,
	    SIGNED_AT, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.kind, SG_KIND_RELEASE);
	CHECK_EQ_INT(st.count, 3);
	CHECK_STR(st.manifest_root, ROOT1);
	/* More artifacts than the key allows. */
	e101[0] = envelope(s101, "alice", 1);
	e101[1] = envelope(s101, "bob", 1);
	EXPECT(p, s101, e101, 2, SIGNED_AT, "key: a release of 101 "
	    "artifacts, key batch allows at most 100");
	/* A key without allow-releases, whatever the quorum. */
	erel[0] = envelope(srel, "alice", 1);
	erel[1] = envelope(srel, "bob", 1);
	erel[2] = envelope(srel, "dave", 1);
	EXPECT(p, srel, erel, 3, SIGNED_AT, "key: key release allows no "
	    "releases");
	free_all(e, 3);
	free_all(e101, 2);
	free_all(erel, 3);
	free(s);
	free(s101);
	free(srel);
	sg_policy_free(p);
}

/*
 * A grant is decided by require-grant (one release manager), not by the
 * require terms; its requester never approves it; the key must allow
 * grants of this count.
 */
static void
test_grant_evidence(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = kind_statement(p, "batch", "ci", 50, NULL, "dist/*");
	char *s51 = kind_statement(p, "batch", "ci", 51, NULL, "dist/*");
	char *sd = kind_statement(p, "batch", "dave", 5, NULL, "*");
	char *srel = kind_statement(p, "release", "ci", 5, NULL, "*");
	char *e[3], *x[3];

	e[0] = envelope(s, "dave", 1);
	e[1] = envelope(s, "alice", 1);
	e[2] = envelope(s, "bob", 1);
	EXPECT(p, s, e, 1, SIGNED_AT, NULL);
	/* The request terms' officers may not decide a grant. */
	EXPECT(p, s, e + 1, 2, SIGNED_AT, "approval 1: alice is not an "
	    "approver for key batch");
	EXPECT(p, s, e, 2, SIGNED_AT, "approval 2: alice is not an approver");
	EXPECT(p, s, NULL, 0, SIGNED_AT, "quorum: not met for key batch: "
	    "missing 1 more of 1 release-managers");
	/* At its end a grant signs no more. */
	EXPECT(p, s, e, 1, EXPIRES, "expiry:");
	EXPECT(p, s, e, 1, EXPIRES - 1, NULL);
	free_all(e, 3);
	/* Over the key's maximum. */
	x[0] = envelope(s51, "dave", 1);
	EXPECT(p, s51, x, 1, SIGNED_AT, "key: a grant of 51 signatures, key "
	    "batch allows at most 50");
	free(x[0]);
	/* Self-approval: dave asked for the grant. */
	x[0] = envelope(sd, "dave", 1);
	EXPECT(p, sd, x, 1, SIGNED_AT, "approval 1: dave requested this "
	    "signature and may not approve it");
	free(x[0]);
	/* A key without allow-grants. */
	x[0] = envelope(srel, "alice", 1);
	x[1] = envelope(srel, "bob", 1);
	x[2] = envelope(srel, "dave", 1);
	EXPECT(p, srel, x, 3, SIGNED_AT, "key: key release allows no grants");
	free_all(x, 3);
	/* Veto: a reject by a counted officer stops the grant. */
	e[0] = envelope(s, "dave", 0);
	EXPECT(p, s, e, 1, SIGNED_AT, "quorum: vetoed: dave rejected");
	free(e[0]);
	free(s);
	free(s51);
	free(sd);
	free(srel);
	sg_policy_free(p);
}

/*
 * sg_approval_accept() judges an officer by the kind's terms whichever
 * view of the key the caller gives (the policy's own record or the
 * grant's copy), and refuses a copy of another kind's view.
 */
static void
test_grant_accept(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = kind_statement(p, "batch", "ci", 5, NULL, "*");
	char *r = kind_statement(p, "batch", "ci", 5, ROOT1, NULL);
	char *ed = envelope(s, "dave", 1), *ea = envelope(s, "alice", 1);
	char *rd = envelope(r, "dave", 1), *ra = envelope(r, "alice", 1);
	const struct sg_policy_key *k = sg_policy_key(p, "batch");
	struct sg_policy_key gv, rv;
	struct {
		const struct sg_policy_key *k;
		const char *stmt, *json;
		int want;
	} c[] = {
		{ NULL, NULL, NULL, 0 },
		{ NULL, NULL, NULL, SG_ERR_FORBIDDEN },
		{ NULL, NULL, NULL, 0 },
		{ NULL, NULL, NULL, SG_ERR_FORBIDDEN },
		{ NULL, NULL, NULL, SG_ERR_INVALID },
		{ NULL, NULL, NULL, SG_ERR_FORBIDDEN },
		{ NULL, NULL, NULL, 0 },
	};
	size_t i;

	sg_policy_key_for_kind(k, SG_KIND_GRANT, &gv);
	sg_policy_key_for_kind(k, SG_KIND_RELEASE, &rv);
	c[0].k = k; c[0].stmt = s; c[0].json = ed;     /* dave: grant */
	c[1].k = k; c[1].stmt = s; c[1].json = ea;     /* alice: not */
	c[2].k = &gv; c[2].stmt = s; c[2].json = ed;
	c[3].k = &gv; c[3].stmt = s; c[3].json = ea;
	c[4].k = &rv; c[4].stmt = s; c[4].json = ed;   /* wrong view */
	c[5].k = k; c[5].stmt = r; c[5].json = rd;     /* release: require */
	c[6].k = &rv; c[6].stmt = r; c[6].json = ra;
	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct sg_envelope env;
		struct sg_approval_fault f;
		const struct sg_principal *o = NULL;
		char err[256];
		int a = -1, got;

		memset(&env, 0, sizeof(env));
		if (sg_envelope_parse(c[i].json, strlen(c[i].json), &env, err,
		    sizeof(err)) != 0)
			abort();
		got = sg_approval_accept(p, c[i].k, NULL, "ci", c[i].stmt,
		    strlen(c[i].stmt), &env, &o, &a, &f);
		if (got != c[i].want)
			fprintf(stderr, "  case %zu: %d (%s)\n", i, got,
			    got != 0 ? f.why : "");
		CHECK_EQ_INT(got, c[i].want);
		if (got == 0)
			CHECK_EQ_INT(a, 1);
		sg_envelope_clear(&env);
	}
	free(s);
	free(r);
	free(ed);
	free(ea);
	free(rd);
	free(ra);
	sg_policy_free(p);
}

/*
 * The grant's approver revoked by a reload in the grant's own terms: in
 * the policy in force dave has left release-managers (carol took his
 * place) and joined security-officers, so he is still an approver of the
 * key for requests, but no longer for grants.
 */
static void
test_grant_now(void)
{
	struct sg_policy *p = make_policy("a", 1), *now;
	char *t = policy_text("a", 2);
	char *s, *e[1], err[1024];

	t = sg_fx_replace1(t, "members alice bob carol erin",
	    "members alice bob carol erin dave");
	t = sg_fx_replace1(t, "group release-managers\n    members dave\n",
	    "group release-managers\n    members carol\n");
	now = parse_text(t);
	s = kind_statement(p, "batch", "ci", 5, NULL, "*");
	e[0] = envelope(s, "dave", 1);
	CHECK_EQ_INT(check_now(p, NULL, s, e, 1, err, sizeof(err)), 0);
	CHECK_EQ_INT(check_now(p, now, s, e, 1, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strncmp(err, "approval 1: dave may no longer approve key batch",
	    48) == 0);
	free(e[0]);
	free(s);
	sg_policy_free(p);
	sg_policy_free(now);
}

/* Every one-bit change of a release's or a grant's statement breaks its
 * evidence, and so does every one-bit change of its envelopes. */
static void
test_kind_mutations(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *st[2], *e[2][2], err[512];
	const char *v[2];
	size_t lens[2], i, k, m, n[2] = { 2, 1 }, tried = 0, accepted = 0;

	st[0] = kind_statement(p, "batch", "ci", 7, ROOT1, NULL);
	st[1] = kind_statement(p, "batch", "ci", 7, NULL, "dist/*");
	e[0][0] = envelope(st[0], "alice", 1);
	e[0][1] = envelope(st[0], "bob", 1);
	e[1][0] = envelope(st[1], "dave", 1);
	e[1][1] = NULL;
	for (m = 0; m < 2; m++) {
		size_t slen = strlen(st[m]);

		for (k = 0; k < n[m]; k++) {
			v[k] = e[m][k];
			lens[k] = strlen(e[m][k]);
		}
		CHECK_EQ_INT(sg_evidence_check(p, st[m], slen, v, lens, n[m],
		    SIGNED_AT, NULL, err, sizeof(err)), 0);
		for (i = 0; i < slen; i++) {
			st[m][i] ^= 0x01;
			tried++;
			if (sg_evidence_check(p, st[m], slen, v, lens, n[m],
			    SIGNED_AT, NULL, err, sizeof(err)) == 0)
				accepted++;
			st[m][i] ^= 0x01;
		}
		for (k = 0; k < n[m]; k++) {
			for (i = 0; i < lens[k]; i++) {
				e[m][k][i] ^= 0x01;
				tried++;
				if (sg_evidence_check(p, st[m], slen, v, lens,
				    n[m], SIGNED_AT, NULL, err,
				    sizeof(err)) == 0)
					accepted++;
				e[m][k][i] ^= 0x01;
			}
		}
	}
	CHECK(tried > 1000);
	CHECK_EQ_INT(accepted, 0);
	free(e[0][0]);
	free(e[0][1]);
	free(e[1][0]);
	free(st[0]);
	free(st[1]);
	sg_policy_free(p);
}

/* sg_artifact_allowed() for a release: every line at its position, and
 * nothing else. */
static void
test_artifact_release(void)
{
	enum { N = 5 };
	struct sg_manifest_tree tree;
	struct sg_statement st;
	struct sg_artifact_line a;
	char lines[N][128], *lp[N], rhex[SG_SHA256_HEX_SIZE], err[256];
	char cms[128];
	size_t lens[N], i, np = 0, np0 = 0;
	uint8_t root[SG_HASH_LEN], path[SG_MANIFEST_PATH_MAX + 1][SG_HASH_LEN];
	uint8_t path0[SG_MANIFEST_PATH_MAX][SG_HASH_LEN];

	for (i = 0; i < N; i++) {
		lens[i] = (size_t)snprintf(lines[i], sizeof(lines[i]),
		    "sha256:%064zx raw app-%zu.bin 1.0", i + 1, i);
		lp[i] = lines[i];
	}
	if (sg_manifest_tree_init(&tree, (const char *const *)lp, lens,
	    N) != 0 || sg_manifest_tree_root(&tree, root) != 0)
		abort();
	sg_hex_encode(root, SG_HASH_LEN, rhex);
	memset(&st, 0, sizeof(st));
	st.kind = SG_KIND_RELEASE;
	st.count = N;
	strcpy(st.manifest_root, rhex);
	strcpy(st.format, "raw");
	st.expires = EXPIRES;
	if (sg_manifest_tree_path(&tree, 0, path0, SG_MANIFEST_PATH_MAX,
	    &np0) != 0)
		abort();
	for (i = 0; i < N; i++) {
		memset(&a, 0, sizeof(a));
		CHECK_EQ_INT(sg_manifest_tree_path(&tree, i, path,
		    SG_MANIFEST_PATH_MAX, &np), 0);
		CHECK_EQ_INT(sg_artifact_allowed(&st, lines[i], lens[i], i,
		    (const uint8_t (*)[SG_HASH_LEN])path, np, SIGNED_AT, &a,
		    err, sizeof(err)), 0);
		CHECK_EQ_INT(a.format, SG_FORMAT_RAW);
		CHECK(strncmp(a.name, "app-", 4) == 0);
		/* A release's time is the evidence's business. */
		CHECK_EQ_INT(sg_artifact_allowed(&st, lines[i], lens[i], i,
		    (const uint8_t (*)[SG_HASH_LEN])path, np, EXPIRES + 9, NULL,
		    err, sizeof(err)), 0);
		/* Another line at this position, or this one elsewhere. */
		CHECK_EQ_INT(sg_artifact_allowed(&st, lines[(i + 1) % N],
		    lens[(i + 1) % N], i, (const uint8_t (*)[SG_HASH_LEN])path,
		    np, SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
		CHECK(strncmp(err, "path: ", 6) == 0);
		CHECK_EQ_INT(sg_artifact_allowed(&st, lines[i], lens[i],
		    (i + 1) % N, (const uint8_t (*)[SG_HASH_LEN])path, np,
		    SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
		/* A flipped byte in the path. */
		path[np - 1][3] ^= 0x10;
		CHECK_EQ_INT(sg_artifact_allowed(&st, lines[i], lens[i], i,
		    (const uint8_t (*)[SG_HASH_LEN])path, np, SIGNED_AT, NULL,
		    err, sizeof(err)), SG_ERR_VERIFY);
	}
	/* Position N (past the end), a path too long, another root. */
	CHECK_EQ_INT(sg_artifact_allowed(&st, lines[0], lens[0], N,
	    (const uint8_t (*)[SG_HASH_LEN])path0, np0, SIGNED_AT, NULL, err,
	    sizeof(err)), SG_ERR_VERIFY);
	CHECK(strstr(err, "position: 5 is not in a manifest of 5 ") == err);
	CHECK_EQ_INT(sg_artifact_allowed(&st, lines[0], lens[0], 0,
	    (const uint8_t (*)[SG_HASH_LEN])path, SG_MANIFEST_PATH_MAX + 1,
	    SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	st.manifest_root[0] = st.manifest_root[0] == '0' ? '1' : '0';
	CHECK_EQ_INT(sg_artifact_allowed(&st, lines[0], lens[0], 0,
	    (const uint8_t (*)[SG_HASH_LEN])path0, np0, SIGNED_AT, NULL, err,
	    sizeof(err)), SG_ERR_VERIFY);
	strcpy(st.manifest_root, rhex);
	CHECK_EQ_INT(sg_artifact_allowed(&st, lines[0], lens[0], 0,
	    (const uint8_t (*)[SG_HASH_LEN])path0, np0, SIGNED_AT, NULL, err,
	    sizeof(err)), 0);
	/* The line's format must be the statement's. */
	strcpy(st.format, "cms");
	CHECK_EQ_INT(sg_artifact_allowed(&st, lines[0], lens[0], 0,
	    (const uint8_t (*)[SG_HASH_LEN])path0, np0, SIGNED_AT, NULL, err,
	    sizeof(err)), SG_ERR_VERIFY);
	CHECK(strncmp(err, "format: ", 8) == 0);
	strcpy(st.format, "raw");
	/* A line that is not canonical (upper-case hex). */
	snprintf(cms, sizeof(cms), "sha256:%064X raw app-0.bin 1.0", 10u);
	CHECK_EQ_INT(sg_artifact_allowed(&st, cms, strlen(cms), 0,
	    (const uint8_t (*)[SG_HASH_LEN])path0, np0, SIGNED_AT, NULL, err,
	    sizeof(err)), SG_ERR_VERIFY);
	CHECK(strncmp(err, "line: ", 6) == 0);
	/* A request's statement is no release. */
	st.kind = SG_KIND_REQUEST;
	CHECK_EQ_INT(sg_artifact_allowed(&st, lines[0], lens[0], 0,
	    (const uint8_t (*)[SG_HASH_LEN])path0, np0, SIGNED_AT, NULL, err,
	    sizeof(err)), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_artifact_allowed(NULL, lines[0], lens[0], 0, NULL, 0,
	    SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_INVALID);
	sg_manifest_tree_free(&tree);
}

/* sg_artifact_allowed() for a grant: the bounds of the count, the
 * pattern, the end of the grant, no path. */
static void
test_artifact_grant(void)
{
	static const char good[] = "sha256:"
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    " raw dist/app.tgz";
	static const char other[] = "sha256:"
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    " raw src/app.tgz";
	static const char cms[] = "sha256:"
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    " cms dist/app.tgz";
	struct sg_statement st;
	struct sg_artifact_line a;
	uint8_t path[1][SG_HASH_LEN];
	char err[256];
	uint64_t pos;

	memset(&st, 0, sizeof(st));
	memset(path, 0, sizeof(path));
	st.kind = SG_KIND_GRANT;
	st.count = 3;
	strcpy(st.pattern, "dist/*");
	strcpy(st.format, "raw");
	st.expires = EXPIRES;
	for (pos = 1; pos <= 3; pos++)
		CHECK_EQ_INT(sg_artifact_allowed(&st, good, strlen(good), pos,
		    NULL, 0, EXPIRES - 1, &a, err, sizeof(err)), 0);
	CHECK_STR(a.name, "dist/app.tgz");
	/* Position 0 and N + 1. */
	CHECK_EQ_INT(sg_artifact_allowed(&st, good, strlen(good), 0, NULL, 0,
	    SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	CHECK(strncmp(err, "position: signature 0 of a grant of 3", 37) == 0);
	CHECK_EQ_INT(sg_artifact_allowed(&st, good, strlen(good), 4, NULL, 0,
	    SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_artifact_allowed(&st, good, strlen(good), UINT64_MAX,
	    NULL, 0, SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	/* A name outside the pattern. */
	CHECK_EQ_INT(sg_artifact_allowed(&st, other, strlen(other), 1, NULL, 0,
	    SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	CHECK(strncmp(err, "name: src/app.tgz does not match", 32) == 0);
	/* At and after the end. */
	CHECK_EQ_INT(sg_artifact_allowed(&st, good, strlen(good), 1, NULL, 0,
	    EXPIRES, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	CHECK(strncmp(err, "expiry: ", 8) == 0);
	CHECK_EQ_INT(sg_artifact_allowed(&st, good, strlen(good), 1, NULL, 0,
	    EXPIRES + 1000, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	/* A path, the wrong format. */
	CHECK_EQ_INT(sg_artifact_allowed(&st, good, strlen(good), 1,
	    (const uint8_t (*)[SG_HASH_LEN])path, 1, SIGNED_AT, NULL, err,
	    sizeof(err)), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_artifact_allowed(&st, cms, strlen(cms), 1, NULL, 0,
	    SIGNED_AT, NULL, err, sizeof(err)), SG_ERR_VERIFY);
	/* '*' alone allows every name. */
	strcpy(st.pattern, "*");
	CHECK_EQ_INT(sg_artifact_allowed(&st, other, strlen(other), 3, NULL, 0,
	    SIGNED_AT, NULL, err, sizeof(err)), 0);
}

/* --- approvals made with a security key --- */

#define WA_RP "signgate.example"
#define WA_ORIGIN "https://console.signgate.example"
#define GINA_ID "Z2luYS1jcmVkLTE"         /* "gina-cred-1" */
#define BOB_ID "Ym9iLWNyZWQtMQ"           /* "bob-cred-1" */

static EVP_PKEY *gina_key, *bob_wa_key;

/*
 * The evidence policy with WebAuthn credentials: gina, an officer of
 * security-officers with only a credential (ES256), and bob with his
 * approval key and a credential (RS256).  `uv` adds user-verification
 * to gina's; `origin` replaces hers; `drop_bob` leaves bob's out.
 */
static struct sg_policy *
wa_policy(unsigned version, int uv, const char *origin, int drop_bob)
{
	char *t, *gpem, *bpem, *gina, *bobwa;
	char head[64];
	int n;

	make_keys();
	if (gina_key == NULL) {
		gina_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		bob_wa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	}
	gpem = sg_fx_pubkey_pem(gina_key);
	bpem = sg_fx_pubkey_pem(bob_wa_key);
	if (gpem == NULL || bpem == NULL)
		abort();
	n = asprintf(&gina, "principal gina\n    roles officer\n"
	    "    client-cn gina\n    webauthn-key " GINA_ID " rp-id " WA_RP
	    " origin %s%s\n%send\nprincipal erin\n",
	    origin != NULL ? origin : WA_ORIGIN, uv ? " user-verification" :
	    "", gpem);
	if (n < 0)
		abort();
	n = asprintf(&bobwa, "    client-cn bob\n    webauthn-key " BOB_ID
	    " rp-id " WA_RP " origin " WA_ORIGIN "\n%s", bpem);
	if (n < 0)
		abort();
	t = policy_text("wa", 1);
	snprintf(head, sizeof(head), "version %u\n", version);
	t = sg_fx_replace1(t, "version 1\n", head);
	t = sg_fx_replace1(t, "principal erin\n", gina);
	if (!drop_bob)
		t = sg_fx_replace1(t, "    client-cn bob\n", bobwa);
	t = sg_fx_replace1(t, "members alice bob carol erin",
	    "members alice bob carol erin gina");
	free(gpem);
	free(bpem);
	free(gina);
	free(bobwa);
	return parse_text(t);
}

struct wa_opts {
	const char *origin;        /* NULL: WA_ORIGIN */
	uint8_t flags;             /* 0: UP */
	const char *cred_id;       /* NULL: the signer's own */
	int tamper;                /* flip a client data byte after signing */
	const char *reason;        /* a reject's reason line */
};

/* An envelope by officer keyid (gina or bob) made with a security key. */
static char *
wa_envelope(const char *statement, const char *keyid, int approve,
    const struct wa_opts *o)
{
	struct sg_fx_wa_opts fo;
	struct sg_fx_wa_assertion a;
	struct sg_envelope_webauthn w;
	EVP_PKEY *key = strcmp(keyid, "gina") == 0 ? gina_key : bob_wa_key;
	const char *id64 = o->cred_id != NULL ? o->cred_id :
	    strcmp(keyid, "gina") == 0 ? GINA_ID : BOB_ID;
	uint8_t *body = NULL, *pae = NULL, hash[32], id[64];
	size_t body_len, pae_len, id_len;
	char *json = NULL;

	if (sg_body_build_reason(statement, strlen(statement), approve,
	    o->reason, &body, &body_len) != 0 ||
	    sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae, &pae_len) != 0)
		abort();
	sg_sha256(pae, pae_len, hash);
	memset(&fo, 0, sizeof(fo));
	fo.rp_id = WA_RP;
	fo.origin = o->origin != NULL ? o->origin : WA_ORIGIN;
	fo.flags = o->flags != 0 ? o->flags : 0x01;
	if (sg_fx_wa_sign(key, &fo, hash, sizeof(hash), &a) != 0)
		abort();
	if (o->tamper)
		a.client_data[a.client_data_len - 3] ^= 0x01;
	if (sg_b64url_decode(id64, strlen(id64), id, sizeof(id),
	    &id_len) != 0)
		abort();
	w.cred_id = id;
	w.cred_id_len = id_len;
	w.authdata = a.authdata;
	w.authdata_len = a.authdata_len;
	w.client_data = (uint8_t *)a.client_data;
	w.client_data_len = a.client_data_len;
	if (sg_envelope_build_webauthn(SG_DSSE_TYPE, body, body_len, keyid,
	    a.sig, a.sig_len, &w, &json) != 0)
		abort();
	sg_fx_wa_free(&a);
	free(body);
	free(pae);
	return json;
}

/* sg_approval_accept() on one envelope: its result, field and why. */
static int
wa_accept(const struct sg_policy *p, const struct sg_policy *now,
    const char *s, const char *json, struct sg_approval_fault *f)
{
	const struct sg_principal *who = NULL;
	struct sg_envelope env;
	char err[256];
	int approve = -1, r;

	memset(&env, 0, sizeof(env));
	memset(f, 0, sizeof(*f));
	if (sg_envelope_parse(json, strlen(json), &env, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "  envelope: %s\n", err);
		return -100;
	}
	r = sg_approval_accept(p, sg_policy_key(p, "release"), now, "ci", s,
	    strlen(s), &env, &who, &approve, f);
	sg_envelope_clear(&env);
	return r;
}

static void
test_webauthn_quorum(void)
{
	struct sg_policy *p = wa_policy(1, 0, NULL, 0);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	struct wa_opts o;
	char *e[4];

	memset(&o, 0, sizeof(o));
	/* gina (credential only), bob (with his credential), dave (key). */
	e[0] = wa_envelope(s, "gina", 1, &o);
	e[1] = wa_envelope(s, "bob", 1, &o);
	e[2] = envelope(s, "dave", 1);
	EXPECT(p, s, e, 3, SIGNED_AT, NULL);
	/* bob may still sign with his approval key. */
	free(e[1]);
	e[1] = envelope(s, "bob", 1);
	EXPECT(p, s, e, 3, SIGNED_AT, NULL);
	/* A reject with a signed reason is evidence like any decision. */
	o.reason = "the build log shows an unreviewed patch";
	e[3] = wa_envelope(s, "bob", 0, &o);
	free(e[1]);
	e[1] = envelope(s, "alice", 1);
	EXPECT(p, s, e, 4, SIGNED_AT, NULL);
	free_all(e, 4);

	/* Each broken link named. */
	memset(&o, 0, sizeof(o));
	e[0] = envelope(s, "alice", 1);
	e[2] = envelope(s, "dave", 1);
	o.tamper = 1;
	e[1] = wa_envelope(s, "gina", 1, &o);
	EXPECT(p, s, e, 3, SIGNED_AT, "approval 2 (gina): the security key's "
	    "assertion does not verify under gina's credential: ");
	free(e[1]);
	memset(&o, 0, sizeof(o));
	o.origin = "https://evil.example";
	e[1] = wa_envelope(s, "gina", 1, &o);
	EXPECT(p, s, e, 3, SIGNED_AT, "approval 2 (gina): the security key's "
	    "assertion does not verify under gina's credential: "
	    "clientDataJSON.origin: ");
	free(e[1]);
	memset(&o, 0, sizeof(o));
	o.cred_id = BOB_ID;
	e[1] = wa_envelope(s, "gina", 1, &o);
	EXPECT(p, s, e, 3, SIGNED_AT, "approval 2 (gina): credential " BOB_ID
	    " is not registered for gina in the policy");
	free(e[1]);
	/* gina has no approval key: a plain signature cannot be hers. */
	e[1] = envelope_as(s, SG_DSSE_TYPE, "alice", "gina", 1);
	EXPECT(p, s, e, 3, SIGNED_AT, "approval 2 (gina): gina has no "
	    "approval key in the policy");
	free_all(e, 3);
	free(s);
	sg_policy_free(p);
}

static void
test_webauthn_accept(void)
{
	struct sg_policy *p = wa_policy(1, 0, NULL, 0);
	struct sg_policy *uv = wa_policy(1, 1, NULL, 0);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *su = statement_for(uv, REQ1, "release", "ci", DIG1);
	struct sg_approval_fault f;
	struct wa_opts o;
	char *e;

	memset(&o, 0, sizeof(o));
	e = wa_envelope(s, "gina", 1, &o);
	CHECK_EQ_INT(wa_accept(p, NULL, s, e, &f), 0);
	free(e);

	o.tamper = 1;
	e = wa_envelope(s, "gina", 1, &o);
	CHECK_EQ_INT(wa_accept(p, NULL, s, e, &f), SG_ERR_VERIFY);
	CHECK_STR(f.field, "signatures[0].webauthn.client_data_json");
	free(e);

	memset(&o, 0, sizeof(o));
	o.flags = 0x04;                 /* UV without UP */
	e = wa_envelope(s, "gina", 1, &o);
	CHECK_EQ_INT(wa_accept(p, NULL, s, e, &f), SG_ERR_VERIFY);
	CHECK_STR(f.field, "signatures[0].webauthn.authenticator_data");
	CHECK(strstr(f.why, "UP not set") != NULL);
	free(e);

	memset(&o, 0, sizeof(o));
	o.cred_id = "bm90LXJlZ2lzdGVyZWQ";
	e = wa_envelope(s, "gina", 1, &o);
	CHECK_EQ_INT(wa_accept(p, NULL, s, e, &f), SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "signatures[0].webauthn.credential_id");
	CHECK(strstr(f.why, "bm90LXJlZ2lzdGVyZWQ is not registered for "
	    "gina") != NULL);
	free(e);

	/* An assertion over another statement's challenge. */
	memset(&o, 0, sizeof(o));
	e = wa_envelope(su, "gina", 1, &o);
	CHECK_EQ_INT(wa_accept(p, NULL, s, e, &f), SG_ERR_VERIFY);
	CHECK_STR(f.field, "payload");
	free(e);

	/* UV required: without it refused, with it accepted. */
	e = wa_envelope(su, "gina", 1, &o);
	CHECK_EQ_INT(wa_accept(uv, NULL, su, e, &f), SG_ERR_VERIFY);
	CHECK_STR(f.field, "signatures[0].webauthn.authenticator_data");
	CHECK(strstr(f.why, "UV not set") != NULL);
	free(e);
	o.flags = 0x05;
	e = wa_envelope(su, "gina", 1, &o);
	CHECK_EQ_INT(wa_accept(uv, NULL, su, e, &f), 0);
	free(e);

	free(s);
	free(su);
	sg_policy_free(p);
	sg_policy_free(uv);
}

/*
 * The policy in force must still hold the credential a decision was
 * made with, with the same key, RP ID and origin; a decision made with
 * the approval key keeps its own rule.
 */
static void
test_webauthn_now(void)
{
	struct sg_policy *p = wa_policy(1, 0, NULL, 0);
	struct sg_policy *same = wa_policy(2, 0, NULL, 0);
	struct sg_policy *moved = wa_policy(2, 0,
	    "https://new.signgate.example", 0);
	struct sg_policy *uv = wa_policy(2, 1, NULL, 0);
	struct sg_policy *nobob = wa_policy(2, 0, NULL, 1);
	const struct sg_policy_key *rel;
	const struct sg_principal *gina, *bob;
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *e[3], err[1024];
	struct sg_approval_fault f;
	struct wa_opts o;
	const uint8_t *gid, *bid;
	size_t gl, bl;

	if (p == NULL || same == NULL || moved == NULL || uv == NULL ||
	    nobob == NULL) {
		CHECK(0);
		goto out;
	}
	rel = sg_policy_key(p, "release");
	gina = sg_policy_principal(p, "gina");
	bob = sg_policy_principal(p, "bob");
	CHECK(gina != NULL && gina->nwebauthn == 1 &&
	    gina->approval_key == NULL);
	CHECK(bob != NULL && bob->nwebauthn == 1 && bob->approval_key != NULL);
	gid = gina->webauthn[0].id;
	gl = gina->webauthn[0].id_len;
	bid = bob->webauthn[0].id;
	bl = bob->webauthn[0].id_len;
	CHECK(sg_principal_webauthn(gina, gid, gl) == &gina->webauthn[0]);
	CHECK(sg_principal_webauthn(gina, bid, bl) == NULL);

	CHECK(sg_policy_may_approve_now_cred(p, rel, same, "ci", "gina", gid,
	    gl));
	CHECK(!sg_policy_may_approve_now_cred(p, rel, moved, "ci", "gina",
	    gid, gl));
	/* Stricter now (UV required): the decision was checked without. */
	CHECK(!sg_policy_may_approve_now_cred(p, rel, uv, "ci", "gina", gid,
	    gl));
	CHECK(sg_policy_may_approve_now_cred(uv, sg_policy_key(uv,
	    "release"), same, "ci", "gina", gid, gl));
	/* gina has no approval key: no key decision of hers counts. */
	CHECK(!sg_policy_may_approve_now(p, rel, same, "ci", "gina"));
	CHECK(sg_policy_may_approve_now_any(p, rel, same, "ci", "gina"));
	CHECK(!sg_policy_may_approve_now_any(p, rel, moved, "ci", "gina"));
	/* bob's credential dropped: his key decisions still count. */
	CHECK(!sg_policy_may_approve_now_cred(p, rel, nobob, "ci", "bob", bid,
	    bl));
	CHECK(sg_policy_may_approve_now(p, rel, nobob, "ci", "bob"));

	memset(&o, 0, sizeof(o));
	e[0] = wa_envelope(s, "gina", 1, &o);
	e[1] = wa_envelope(s, "bob", 1, &o);
	e[2] = envelope(s, "dave", 1);
	CHECK_EQ_INT(check_now(p, same, s, e, 3, err, sizeof(err)), 0);
	CHECK_EQ_INT(check_now(p, moved, s, e, 3, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strncmp(err, "approval 1: gina may no longer approve key "
	    "release: the policy in force (evidence-test@2) does not make it "
	    "an approver with the same WebAuthn credential", 124) == 0);
	CHECK_EQ_INT(check_now(p, nobob, s, e + 1, 2, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strncmp(err, "approval 1: bob may no longer approve", 37) == 0);
	CHECK_EQ_INT(wa_accept(p, nobob, s, e[1], &f), SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "signatures[0].keyid");
	free(e[1]);
	e[1] = envelope(s, "bob", 1);
	CHECK_EQ_INT(wa_accept(p, nobob, s, e[1], &f), 0);
	free_all(e, 3);
out:
	free(s);
	sg_policy_free(p);
	sg_policy_free(same);
	sg_policy_free(moved);
	sg_policy_free(uv);
	sg_policy_free(nobob);
	EVP_PKEY_free(gina_key);
	EVP_PKEY_free(bob_wa_key);
	gina_key = bob_wa_key = NULL;
}

static void
test_cleanup(void)
{
	size_t i;

	for (i = 0; i < NOKEYS; i++) {
		EVP_PKEY_free(okeys[i].pkey);
		free(okeys[i].pem);
		okeys[i].pkey = NULL;
		okeys[i].pem = NULL;
	}
}

/*
 * sg_approval_accept() directly, as the front calls it for a posted
 * decision: each refusal with its field and error class, and a statement
 * that differs from the request's in one byte, at every kind of position
 * (first, second, inside each line, the last before the final LF) or in
 * its length.
 */
static const struct sg_principal *acc_officer;
static int acc_approve;

static int
accept_json(const struct sg_policy *p, const char *key, const char *requester,
    const char *statement, const char *json, struct sg_approval_fault *f)
{
	struct sg_envelope env;
	char err[256];
	int r;

	memset(&env, 0, sizeof(env));
	acc_officer = NULL;
	acc_approve = -1;
	if (sg_envelope_parse(json, strlen(json), &env, err, sizeof(err)) != 0)
		abort();
	r = sg_approval_accept(p, sg_policy_key(p, key), NULL, requester,
	    statement, strlen(statement), &env, &acc_officer, &acc_approve, f);
	sg_envelope_clear(&env);
	return r;
}

static void
accept_expect(const struct sg_policy *p, const char *statement,
    const char *json, int want, const char *field, int line)
{
	struct sg_approval_fault f;
	int r = accept_json(p, "release", "ci", statement, json, &f);
	int field_ok = field == NULL || (f.field != NULL &&
	    strcmp(f.field, field) == 0);

	if (r != want || !field_ok)
		fprintf(stderr, "  line %d: r=%d field=%s why=%s\n", line, r,
		    r != 0 && f.field != NULL ? f.field : "-",
		    r != 0 ? f.why : "");
	CHECK_EQ_INT(r, want);
	CHECK(field_ok);
}
#define ACCEPT(s, e, r, fld) accept_expect(p, (s), (e), (r), (fld), __LINE__)

static void
test_approval_accept(void)
{
	struct sg_policy *p = make_policy("a", 1);
	char *s = statement_for(p, REQ1, "release", "ci", DIG1);
	char *sd = statement_for(p, REQ1, "release", "dave", DIG1);
	char *e, *changed;
	size_t len = strlen(s), i, tried = 0, positions[16], np = 0;
	const char *nl;

	/* Good, both decisions; the officer is the policy's. */
	e = envelope(s, "alice", 1);
	ACCEPT(s, e, 0, NULL);
	CHECK(acc_officer != NULL && strcmp(acc_officer->name, "alice") == 0);
	CHECK_EQ_INT(acc_approve, 1);
	free(e);
	e = envelope(s, "erin", 0);             /* RSA: PKCS#1 v1.5 */
	ACCEPT(s, e, 0, NULL);
	CHECK_EQ_INT(acc_approve, 0);
	free(e);
	e = envelope(s, "dave", 1);             /* P-384 */
	ACCEPT(s, e, 0, NULL);
	free(e);

	/* Who may decide: forbidden, naming keyid. */
	e = envelope(s, "mallory", 1);
	ACCEPT(s, e, SG_ERR_FORBIDDEN, "signatures[0].keyid");
	free(e);
	e = envelope_as(s, SG_DSSE_TYPE, "alice", "audit", 1);
	ACCEPT(s, e, SG_ERR_FORBIDDEN, "signatures[0].keyid");
	free(e);
	e = envelope(sd, "dave", 1);
	{
		struct sg_approval_fault f;
		CHECK_EQ_INT(accept_json(p, "release", "dave", sd, e, &f),
		    SG_ERR_FORBIDDEN);
		CHECK_STR(f.why, "dave requested this signature and may not "
		    "approve it");
	}
	free(e);
	e = envelope(s, "frank", 1);
	ACCEPT(s, e, SG_ERR_FORBIDDEN, "signatures[0].keyid");
	free(e);

	/* What was signed: refused as not verifying. */
	e = envelope_as(s, "application/json", "alice", "alice", 1);
	ACCEPT(s, e, SG_ERR_VERIFY, "payloadType");
	free(e);
	e = envelope_as(s, SG_DSSE_TYPE, "bob", "alice", 1);
	ACCEPT(s, e, SG_ERR_VERIFY, "signatures[0].sig");
	free(e);

	/*
	 * The request's statement against an envelope, properly signed by
	 * alice, over a statement one byte off: at the first and second
	 * byte, near the end of every line, just before the final LF, and
	 * the statement one byte shorter or longer.
	 */
	positions[np++] = 0;
	positions[np++] = 1;
	for (nl = s; (nl = strchr(nl, '\n')) != NULL && np < 14; nl++)
		positions[np++] = (size_t)(nl - s) > 6 ?
		    (size_t)(nl - s) - 3 : 2;
	positions[np++] = len - 2;              /* before the final LF */
	for (i = 0; i < np; i++) {
		if ((changed = strdup(s)) == NULL)
			abort();
		changed[positions[i]] ^= 0x01;
		e = envelope(changed, "alice", 1);
		ACCEPT(s, e, SG_ERR_VERIFY, "payload");
		/* The same envelope is fine for the statement it names. */
		ACCEPT(changed, e, 0, NULL);
		free(e);
		free(changed);
		tried++;
	}
	CHECK(tried >= 10);
	if ((changed = strdup(s)) == NULL)
		abort();
	memmove(changed + len - 2, changed + len - 1, 2); /* one shorter */
	e = envelope(changed, "alice", 1);
	ACCEPT(s, e, SG_ERR_VERIFY, "payload");
	free(e);
	free(changed);
	if (asprintf(&changed, "%sx\n", s) < 0)  /* longer */
		abort();
	e = envelope(changed, "alice", 1);
	ACCEPT(s, e, SG_ERR_VERIFY, "payload");
	free(e);
	free(changed);

	/* Arguments. */
	{
		struct sg_approval_fault f;
		const struct sg_principal *o;
		int a;
		CHECK_EQ_INT(sg_approval_accept(p, NULL, NULL, "ci", s, len,
		    NULL, &o, &a, &f), SG_ERR_INVALID);
	}
	free(s);
	free(sd);
	sg_policy_free(p);
}

static void
test_approval_scheme(void)
{
	CHECK_EQ_INT(sg_approval_scheme(SG_ALG_ECDSA_P256), SG_SIG_ECDSA);
	CHECK_EQ_INT(sg_approval_scheme(SG_ALG_ECDSA_P384), SG_SIG_ECDSA);
	CHECK_EQ_INT(sg_approval_scheme(SG_ALG_RSA), SG_SIG_RSA_PKCS1);
	CHECK_EQ_INT(sg_approval_scheme(SG_ALG_ED25519), SG_SIG_NONE);
	CHECK_EQ_INT(sg_approval_scheme(SG_ALG_NONE), SG_SIG_NONE);
}

SG_TEST_MAIN("evidence",
	T(test_quorum_met),
	T(test_missing),
	T(test_extra_and_wrong),
	T(test_approval_accept),
	T(test_approval_scheme),
	T(test_vetoed),
	T(test_expired),
	T(test_wrong_policy),
	T(test_revoked_officer),
	T(test_tampered_statement),
	T(test_mutations),
	T(test_error_buffer),
	T(test_release_evidence),
	T(test_grant_evidence),
	T(test_grant_accept),
	T(test_grant_now),
	T(test_kind_mutations),
	T(test_artifact_release),
	T(test_artifact_grant),
	T(test_webauthn_quorum),
	T(test_webauthn_accept),
	T(test_webauthn_now),
	T(test_cleanup))
