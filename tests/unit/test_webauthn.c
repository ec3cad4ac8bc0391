/*
 * sg_webauthn_verify() and base64url against a software authenticator
 * (sg_fixture.c) that builds the authenticator data and the client data
 * JSON as a browser does and signs them with an OpenSSL key, for ES256
 * and RS256: every check of the header, each made to fail on its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_webauthn.h"

#include "sg_fixture.h"
#include "sg_test.h"

#define RP "signgate.example"
#define ORIGIN "https://signgate.example"

static const uint8_t cred_id[] = {
	0x9a, 0x01, 0xfe, 0x33, 0x47, 0x10, 0x00, 0xc2, 0x5e, 0x77, 0x18,
	0x6b, 0xd4, 0x2a, 0x91, 0x0f,
};

struct ctx {
	EVP_PKEY *key;
	struct sg_webauthn_cred cred;
	uint8_t challenge[32];
	struct sg_fx_wa_opts o;
	struct sg_fx_wa_assertion fa;
	struct sg_webauthn_assertion a;
	char why[256];
};

static EVP_PKEY *es256, *rs256;

static EVP_PKEY *
key_of(int rsa)
{
	if (rsa) {
		if (rs256 == NULL)
			rs256 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
			    (size_t)2048);
		return rs256;
	}
	if (es256 == NULL)
		es256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	return es256;
}

static void
point(struct ctx *c)
{
	c->a.cred_id = cred_id;
	c->a.cred_id_len = sizeof(cred_id);
	c->a.authdata = c->fa.authdata;
	c->a.authdata_len = c->fa.authdata_len;
	c->a.client_data = (const uint8_t *)c->fa.client_data;
	c->a.client_data_len = c->fa.client_data_len;
	c->a.sig = c->fa.sig;
	c->a.sig_len = c->fa.sig_len;
}

/* A credential of key (public half only, as the policy holds it) and an
 * assertion with opts o (or the defaults: UP, no crossOrigin). */
static int
setup(struct ctx *c, int rsa, const struct sg_fx_wa_opts *o)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->key = key_of(rsa);
	memcpy(c->cred.id, cred_id, sizeof(cred_id));
	c->cred.id_len = sizeof(cred_id);
	snprintf(c->cred.rp_id, sizeof(c->cred.rp_id), "%s", RP);
	snprintf(c->cred.origin, sizeof(c->cred.origin), "%s", ORIGIN);
	c->cred.pub = sg_fx_public_only(c->key);
	for (i = 0; i < sizeof(c->challenge); i++)
		c->challenge[i] = (uint8_t)(i * 37 + 11);
	if (o != NULL)
		c->o = *o;
	else {
		c->o.rp_id = RP;
		c->o.origin = ORIGIN;
		c->o.flags = SG_WEBAUTHN_FLAG_UP;
	}
	if (c->cred.pub == NULL || sg_fx_wa_sign(c->key, &c->o, c->challenge,
	    sizeof(c->challenge), &c->fa) != 0)
		return -1;
	point(c);
	return 0;
}

static void
teardown(struct ctx *c)
{
	EVP_PKEY_free(c->cred.pub);
	sg_fx_wa_free(&c->fa);
}

static int
verify(struct ctx *c)
{
	return sg_webauthn_verify(&c->cred, c->challenge, sizeof(c->challenge),
	    &c->a, c->why, sizeof(c->why));
}

/* Refused, and why begins with prefix. */
static int
refused(struct ctx *c, const char *prefix)
{
	int r = verify(c);

	if (r != SG_ERR_VERIFY ||
	    strncmp(c->why, prefix, strlen(prefix)) != 0) {
		fprintf(stderr, "  expected '%s...', got %d '%s'\n", prefix, r,
		    c->why);
		return 0;
	}
	return 1;
}

static struct sg_fx_wa_opts
opts(const char *type, const char *rp, const char *origin, uint8_t flags,
    int cross, const char *extra)
{
	struct sg_fx_wa_opts o;

	o.rp_id = rp;
	o.origin = origin;
	o.type = type;
	o.flags = flags;
	o.cross_origin = cross;
	o.extra = extra;
	return o;
}

static void
run_valid(int rsa)
{
	struct ctx c;
	struct sg_fx_wa_opts o;

	CHECK(setup(&c, rsa, NULL) == 0);
	CHECK_EQ_INT(verify(&c), 0);
	CHECK_STR(c.why, "");
	teardown(&c);

	/* crossOrigin false, unknown members (tokenBinding), UV set. */
	o = opts(NULL, RP, ORIGIN, SG_WEBAUTHN_FLAG_UP | SG_WEBAUTHN_FLAG_UV,
	    1, ",\"tokenBinding\":{\"status\":\"supported\"},\"other_keys_"
	    "can_be_added_here\":\"do not compare clientDataJSON against a "
	    "template\"");
	CHECK(setup(&c, rsa, &o) == 0);
	c.cred.require_uv = 1;
	CHECK_EQ_INT(verify(&c), 0);
	teardown(&c);
}

static void
test_valid_es256(void)
{
	run_valid(0);
}

static void
test_valid_rs256(void)
{
	run_valid(1);
}

static void
run_client_data(int rsa)
{
	struct ctx c;
	struct sg_fx_wa_opts o;

	o = opts("webauthn.create", RP, ORIGIN, SG_WEBAUTHN_FLAG_UP, 0, NULL);
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "clientDataJSON.type:"));
	teardown(&c);

	o = opts(NULL, RP, "https://evil.example", SG_WEBAUTHN_FLAG_UP, 0,
	    NULL);
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "clientDataJSON.origin:"));
	teardown(&c);

	/* The origin must match exactly: no trailing slash, no port. */
	o = opts(NULL, RP, ORIGIN "/", SG_WEBAUTHN_FLAG_UP, 0, NULL);
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "clientDataJSON.origin:"));
	teardown(&c);
	o = opts(NULL, RP, ORIGIN ":443", SG_WEBAUTHN_FLAG_UP, 0, NULL);
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "clientDataJSON.origin:"));
	teardown(&c);

	o = opts(NULL, RP, ORIGIN, SG_WEBAUTHN_FLAG_UP, 2, NULL);
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "clientDataJSON.crossOrigin:"));
	teardown(&c);

	/* crossOrigin of another type than false. */
	o = opts(NULL, RP, ORIGIN, SG_WEBAUTHN_FLAG_UP, 0,
	    ",\"crossOrigin\":0");
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "clientDataJSON.crossOrigin:"));
	teardown(&c);

	/* A duplicate member: the second origin would be the one a lax
	 * parser keeps. */
	o = opts(NULL, RP, ORIGIN, SG_WEBAUTHN_FLAG_UP, 0,
	    ",\"origin\":\"" ORIGIN "\"");
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "clientDataJSON: not valid JSON"));
	teardown(&c);
}

static void
test_client_data_es256(void)
{
	run_client_data(0);
}

static void
test_client_data_rs256(void)
{
	run_client_data(1);
}

/* Client data that is signed, but not a JSON object of strings. */
static void
test_client_data_shapes(void)
{
	static const char *const bad[] = {
		"not json",
		"[\"webauthn.get\"]",
		"\"webauthn.get\"",
		"{\"type\":1,\"challenge\":\"x\",\"origin\":\"" ORIGIN "\"}",
		"{\"challenge\":\"x\",\"origin\":\"" ORIGIN "\"}",
		"{\"type\":\"webauthn.get\",\"origin\":\"" ORIGIN "\"}",
		"{\"type\":\"webauthn.get\",\"challenge\":\"x\"} trailing",
	};
	static const char *const why[] = {
		"clientDataJSON: not valid JSON",
		"clientDataJSON: must be a JSON object",
		"clientDataJSON: not valid JSON",
		"clientDataJSON.type: must be a string",
		"clientDataJSON.type: missing",
		"clientDataJSON.challenge: missing",
		"clientDataJSON: not valid JSON",
	};
	struct ctx c;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(setup(&c, 0, NULL) == 0);
		free(c.fa.client_data);
		c.fa.client_data = strdup(bad[i]);
		c.fa.client_data_len = strlen(bad[i]);
		CHECK(sg_fx_wa_resign(c.key, &c.fa) == 0);
		point(&c);
		CHECK(refused(&c, why[i]));
		teardown(&c);
	}
}

static void
run_challenge(int rsa)
{
	struct ctx c;
	size_t bit;

	/* Any one bit of the challenge. */
	for (bit = 0; bit < 8 * 32; bit += 29) {
		CHECK(setup(&c, rsa, NULL) == 0);
		c.challenge[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECK(refused(&c, "clientDataJSON.challenge:"));
		teardown(&c);
	}
	/* A shorter challenge (a prefix) is another challenge. */
	CHECK(setup(&c, rsa, NULL) == 0);
	CHECK_EQ_INT(sg_webauthn_verify(&c.cred, c.challenge, 31, &c.a, c.why,
	    sizeof(c.why)), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_webauthn_verify(&c.cred, c.challenge, 0, &c.a, c.why,
	    sizeof(c.why)), SG_ERR_VERIFY);
	teardown(&c);
}

static void
test_challenge(void)
{
	run_challenge(0);
	run_challenge(1);
}

static void
run_authdata(int rsa)
{
	struct ctx c;
	struct sg_fx_wa_opts o;

	o = opts(NULL, "other.example", ORIGIN, SG_WEBAUTHN_FLAG_UP, 0, NULL);
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "authenticatorData.rpIdHash:"));
	teardown(&c);

	o = opts(NULL, RP, ORIGIN, SG_WEBAUTHN_FLAG_UV, 0, NULL);
	CHECK(setup(&c, rsa, &o) == 0);
	CHECK(refused(&c, "authenticatorData.flags: the user was not present"));
	teardown(&c);

	/* UV required and not given; the same assertion without the
	 * requirement passes. */
	CHECK(setup(&c, rsa, NULL) == 0);
	c.cred.require_uv = 1;
	CHECK(refused(&c, "authenticatorData.flags: the user was not "
	    "verified"));
	c.cred.require_uv = 0;
	CHECK_EQ_INT(verify(&c), 0);
	teardown(&c);

	/* Too short, even if signed. */
	CHECK(setup(&c, rsa, NULL) == 0);
	c.fa.authdata_len = 36;
	CHECK(sg_fx_wa_resign(c.key, &c.fa) == 0);
	point(&c);
	CHECK(refused(&c, "authenticatorData: shorter"));
	teardown(&c);
}

static void
test_authdata_es256(void)
{
	run_authdata(0);
}

static void
test_authdata_rs256(void)
{
	run_authdata(1);
}

/* Every byte of the client data and of the authenticator data is
 * covered: changed after signing, the assertion is refused. */
static void
run_tamper(int rsa)
{
	struct ctx c;
	size_t i;
	int bad = 0;

	CHECK(setup(&c, rsa, NULL) == 0);
	for (i = 0; i < c.fa.client_data_len; i++) {
		c.fa.client_data[i] ^= 0x01;
		if (verify(&c) != SG_ERR_VERIFY)
			bad++;
		c.fa.client_data[i] ^= 0x01;
	}
	CHECK_EQ_INT(bad, 0);
	for (i = 0; i < c.fa.authdata_len; i++) {
		c.fa.authdata[i] ^= 0x80;
		if (verify(&c) != SG_ERR_VERIFY)
			bad++;
		c.fa.authdata[i] ^= 0x80;
	}
	CHECK_EQ_INT(bad, 0);
	/* A byte after the rpIdHash and flags: only the signature sees it. */
	c.fa.authdata[35] ^= 0x10;
	CHECK(refused(&c, "sig:"));
	c.fa.authdata[35] ^= 0x10;
	/* A change inside the origin that keeps it equal to another valid
	 * spelling is impossible: the only survivor is the original. */
	CHECK_EQ_INT(verify(&c), 0);
	/* The signature itself. */
	c.fa.sig[c.fa.sig_len / 2] ^= 0x04;
	CHECK(refused(&c, "sig:"));
	c.fa.sig[c.fa.sig_len / 2] ^= 0x04;
	CHECK_EQ_INT(verify(&c), 0);
	teardown(&c);
}

static void
test_tamper(void)
{
	run_tamper(0);
	run_tamper(1);
}

/* A signature by another key, and a key of the other algorithm. */
static void
test_bad_signature(void)
{
	struct ctx c;
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	CHECK(setup(&c, 0, NULL) == 0);
	CHECK(sg_fx_wa_resign(other, &c.fa) == 0);
	point(&c);
	CHECK(refused(&c, "sig: the assertion's signature does not verify"));
	/* An RS256 signature for an ES256 credential. */
	CHECK(sg_fx_wa_resign(key_of(1), &c.fa) == 0);
	point(&c);
	CHECK(refused(&c, "sig:"));
	teardown(&c);

	/* A P-384 credential is not ES256. */
	CHECK(setup(&c, 0, NULL) == 0);
	EVP_PKEY_free(c.cred.pub);
	c.cred.pub = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	CHECK(sg_fx_wa_resign(c.cred.pub, &c.fa) == 0);
	point(&c);
	CHECK(refused(&c, "sig: the credential's key is neither"));
	teardown(&c);
	EVP_PKEY_free(other);
}

static void
test_credential_id(void)
{
	struct ctx c;
	uint8_t other[sizeof(cred_id)];

	CHECK(setup(&c, 0, NULL) == 0);
	memcpy(other, cred_id, sizeof(other));
	other[3] ^= 0x40;
	c.a.cred_id = other;
	CHECK(refused(&c, "credentialId:"));
	c.a.cred_id = cred_id;
	c.a.cred_id_len = sizeof(cred_id) - 1;
	CHECK(refused(&c, "credentialId:"));
	c.a.cred_id = NULL;
	c.a.cred_id_len = 0;
	CHECK(refused(&c, "credentialId:"));
	teardown(&c);
}

static void
test_oversize(void)
{
	struct ctx c;
	struct sg_fx_wa_opts o;
	char *pad;
	size_t n = SG_WEBAUTHN_CLIENT_DATA_MAX;
	uint8_t *big;

	/* Client data past the limit, correctly signed. */
	if ((pad = malloc(n + 32)) == NULL) {
		CHECK(0);
		return;
	}
	memcpy(pad, ",\"p\":\"", 6);
	memset(pad + 6, 'a', n);
	memcpy(pad + 6 + n, "\"", 2);
	o = opts(NULL, RP, ORIGIN, SG_WEBAUTHN_FLAG_UP, 0, pad);
	CHECK(setup(&c, 0, &o) == 0);
	CHECK(c.fa.client_data_len > SG_WEBAUTHN_CLIENT_DATA_MAX);
	CHECK(refused(&c, "clientDataJSON: larger than"));
	teardown(&c);
	free(pad);

	/* Authenticator data past the limit (extensions), signed. */
	CHECK(setup(&c, 0, NULL) == 0);
	if ((big = calloc(1, SG_WEBAUTHN_AUTHDATA_MAX + 1)) != NULL) {
		memcpy(big, c.fa.authdata, c.fa.authdata_len);
		c.a.authdata = big;
		c.a.authdata_len = SG_WEBAUTHN_AUTHDATA_MAX + 1;
		CHECK(refused(&c, "authenticatorData: larger than"));
		free(big);
	} else
		CHECK(0);
	teardown(&c);

	/* A signature past SG_MAX_SIG. */
	CHECK(setup(&c, 0, NULL) == 0);
	c.a.sig_len = SG_MAX_SIG + 1;
	if ((big = calloc(1, c.a.sig_len)) != NULL) {
		c.a.sig = big;
		CHECK(refused(&c, "sig: must be"));
		free(big);
	} else
		CHECK(0);
	teardown(&c);
}

static void
test_b64url(void)
{
	uint8_t in[64], out[64];
	char *s = NULL, *fx;
	size_t len, n;
	int bad = 0;

	for (len = 0; len < sizeof(in); len++) {
		for (n = 0; n < len; n++)
			in[n] = (uint8_t)(0xfb + n * 7);
		if (sg_b64url_encode(in, len, &s) != 0) {
			bad++;
			continue;
		}
		/* The same text as an independent encoder writes. */
		fx = sg_fx_b64url(in, len);
		if (fx == NULL || strcmp(fx, s) != 0 ||
		    strchr(s, '=') != NULL || strchr(s, '+') != NULL ||
		    strchr(s, '/') != NULL)
			bad++;
		if (sg_b64url_decode(s, strlen(s), out, sizeof(out), &n) != 0 ||
		    n != len || memcmp(in, out, len) != 0)
			bad++;
		free(fx);
		free(s);
		s = NULL;
	}
	CHECK_EQ_INT(bad, 0);

	CHECK_EQ_INT(sg_b64url_encode((const uint8_t *)"\xfb\xff", 2, &s), 0);
	CHECK_STR(s, "-_8");
	free(s);
	CHECK_EQ_INT(sg_b64url_decode("-_8", 3, out, sizeof(out), &n), 0);
	CHECK(n == 2 && out[0] == 0xfb && out[1] == 0xff);
	/* Padding, the standard alphabet, spaces, NUL: refused. */
	CHECK_EQ_INT(sg_b64url_decode("-_8=", 4, out, sizeof(out), &n),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_b64url_decode("+/8", 3, out, sizeof(out), &n),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_b64url_decode("-_ 8", 4, out, sizeof(out), &n),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_b64url_decode("-_\0" "8", 4, out, sizeof(out), &n),
	    SG_ERR_INVALID);
	/* Non-canonical trailing bits ("-_9" has a low bit set). */
	CHECK_EQ_INT(sg_b64url_decode("-_9", 3, out, sizeof(out), &n),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_b64url_decode("QR", 2, out, sizeof(out), &n),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_b64url_decode("QQ", 2, out, sizeof(out), &n), 0);
	CHECK(n == 1 && out[0] == 'A');
	/* A length that leaves one character over. */
	CHECK_EQ_INT(sg_b64url_decode("QUFBQ", 5, out, sizeof(out), &n),
	    SG_ERR_INVALID);
	/* Capacity. */
	CHECK_EQ_INT(sg_b64url_decode("QUFB", 4, out, 2, &n), SG_ERR_BUFFER);
	CHECK_EQ_INT(sg_b64url_decode("QUFB", 4, out, 3, &n), 0);
	CHECK_EQ_INT(sg_b64url_decode("", 0, out, 0, &n), 0);
	CHECK_EQ_INT(n, 0);
}

static void
test_cleanup(void)
{
	EVP_PKEY_free(es256);
	EVP_PKEY_free(rs256);
	es256 = rs256 = NULL;
}

SG_TEST_MAIN("webauthn",
    T(test_valid_es256),
    T(test_valid_rs256),
    T(test_client_data_es256),
    T(test_client_data_rs256),
    T(test_client_data_shapes),
    T(test_challenge),
    T(test_authdata_es256),
    T(test_authdata_rs256),
    T(test_tamper),
    T(test_bad_signature),
    T(test_credential_id),
    T(test_oversize),
    T(test_b64url),
    T(test_cleanup))
