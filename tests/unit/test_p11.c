/*
 * Tests for the PKCS#11 layer against a throwaway SoftHSM token built by
 * p11_fixture.sh in a scratch directory (sg_fixture.h).  Signatures are
 * checked with OpenSSL directly (not through sg_verify), both against the
 * public key the layer built and against the one pkcs11-tool exported, so
 * that a wrongly built EVP_PKEY is caught.  The RFC 7512 parser is tested
 * without a token.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_p11.h"
#include "sg_p11_uri.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define MODULE SG_FX_SOFTHSM_MODULE
#define LABEL "sg-test-p11"
#define NTHREADS 8
#define PER_THREAD 200

SG_FX_SOFTHSM_SANITIZER_DEFAULTS

static char tmpdir[PATH_MAX];
static int have_token;
static struct sg_p11 *g_p11;
static struct sg_p11_token *g_tok;

/* ---- helpers ---- */

static int
read_pin(const char *name, char **pin, size_t *len)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return sg_read_secret_file(path, pin, len);
}

static size_t
dlen_of(enum sg_digest_alg a)
{
	return a == SG_DIGEST_SHA256 ? 32 : a == SG_DIGEST_SHA384 ? 48 :
	    a == SG_DIGEST_SHA512 ? 64 : 0;
}

static struct sg_p11_key *
key(const char *label)
{
	struct sg_p11_key *k = NULL;
	int r;

	if (g_tok == NULL)
		return NULL;
	r = sg_p11_find_key(g_tok, label, NULL, 0, &k);
	if (r != 0)
		fprintf(stderr, "  find %s: %s\n", label, sg_strerror(r));
	return r == 0 ? k : NULL;
}

/* ---- RFC 7512 ---- */

static int
parse(const char *uri, char tok[33], char *obj, size_t objcap, uint8_t *id,
    size_t idcap, size_t *idlen)
{
	return sg_p11_uri_parse(uri, tok, obj, objcap, id, idcap, idlen);
}

static void
test_uri_basic(void)
{
	char tok[33], obj[64];
	uint8_t id[16];
	size_t idlen = 99;

	CHECK_EQ_INT(parse("pkcs11:token=officer-cards;object=alice", tok, obj,
	    sizeof(obj), id, sizeof(id), &idlen), 0);
	CHECK_STR(tok, "officer-cards");
	CHECK_STR(obj, "alice");
	CHECK_EQ_INT(idlen, 0);

	CHECK_EQ_INT(parse("pkcs11:id=%01%Ab%ff;object=a%20b;token=g_tok%3bx",
	    tok, obj, sizeof(obj), id, sizeof(id), &idlen), 0);
	CHECK_STR(tok, "g_tok;x");
	CHECK_STR(obj, "a b");
	CHECK_EQ_INT(idlen, 3);
	CHECK(id[0] == 0x01 && id[1] == 0xab && id[2] == 0xff);

	/* Literal characters in an id are its bytes; %00 is a byte too. */
	CHECK_EQ_INT(parse("pkcs11:id=A%42%00", tok, obj, sizeof(obj), id,
	    sizeof(id), &idlen), 0);
	CHECK_EQ_INT(idlen, 3);
	CHECK(memcmp(id, "AB\0", 3) == 0);
	CHECK_STR(tok, "");
	CHECK_STR(obj, "");

	/* The empty URI and an empty query are valid; so is the scheme in
	 * capitals, and reserved characters allowed by the RFC. */
	CHECK_EQ_INT(parse("pkcs11:", tok, obj, sizeof(obj), id, sizeof(id),
	    &idlen), 0);
	CHECK_EQ_INT(parse("PKCS11:object=x?", tok, obj, sizeof(obj), id,
	    sizeof(id), &idlen), 0);
	CHECK_STR(obj, "x");
	CHECK_EQ_INT(parse("pkcs11:object=a:b@c!$'()*+,=&~", tok, obj,
	    sizeof(obj), id, sizeof(id), &idlen), 0);
	CHECK_STR(obj, "a:b@c!$'()*+,=&~");
}

static void
test_uri_ignored_attributes(void)
{
	char tok[33], obj[64];
	uint8_t id[16];
	size_t idlen;

	/* What p11tool and pkcs11-tool print for a key. */
	CHECK_EQ_INT(parse("pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20"
	    "project;serial=7c1b2a3d4e5f6a7b;token=signgate-dev;id=%01;"
	    "object=release;type=private", tok, obj, sizeof(obj), id,
	    sizeof(id), &idlen), 0);
	CHECK_STR(tok, "signgate-dev");
	CHECK_STR(obj, "release");
	CHECK_EQ_INT(idlen, 1);
	CHECK_EQ_INT(id[0], 1);

	CHECK_EQ_INT(parse("pkcs11:library-manufacturer=x;library-description=y;"
	    "library-version=2.6;slot-description=s;slot-manufacturer=m;"
	    "slot-id=0;object=k?pin-source=file:/etc/pin&module-path=/usr/lib/"
	    "x.so&module-name=x", tok, obj, sizeof(obj), id, sizeof(id),
	    &idlen), 0);
	CHECK_STR(obj, "k");
	/* A query may hold '/', '?' and '|'. */
	CHECK_EQ_INT(parse("pkcs11:object=k?pin-source=|/bin/get?pin", tok,
	    obj, sizeof(obj), id, sizeof(id), &idlen), 0);
}

static void
test_uri_refused(void)
{
	static const char *const bad[] = {
		NULL,
		"",
		"pkcs11",
		"pkcs12:token=x",
		" pkcs11:token=x",
		"pkcs11:token=x;token=y",          /* repeated */
		"pkcs11:type=private;type=cert",   /* repeated, even ignored */
		"pkcs11:token=x;",                 /* empty attribute */
		"pkcs11:;token=x",
		"pkcs11:token",                    /* no '=' */
		"pkcs11:Token=x",                  /* names are case-sensitive */
		"pkcs11:x-vendor=1",               /* unknown: matches nothing */
		"pkcs11:foo=bar",
		"pkcs11:object=a b",               /* space must be encoded */
		"pkcs11:object=a/b",               /* '/' only in the query */
		"pkcs11:object=a#b",
		"pkcs11:object=a\"b",
		"pkcs11:object=%4",                /* short escape */
		"pkcs11:object=%",
		"pkcs11:object=%zz",
		"pkcs11:object=a%00b",             /* NUL in a label */
		"pkcs11:token=a%00",
		"pkcs11:token=123456789012345678901234567890123", /* > 32 */
		"pkcs11:object=x?pin-value=1234",  /* never a PIN in a URI */
		"pkcs11:object=x?pin-source=a&pin-source=b",
		"pkcs11:object=x?token=y",         /* path attribute in query */
		"pkcs11:pin-source=x",             /* query attribute in path */
		"pkcs11:object=x?foo&",
	};
	char tok[33], obj[64];
	uint8_t id[16];
	size_t i, idlen;
	int r;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(tok, 'X', sizeof(tok));
		memset(obj, 'X', sizeof(obj));
		memset(id, 0xee, sizeof(id));
		idlen = 77;
		r = parse(bad[i], tok, obj, sizeof(obj), id, sizeof(id),
		    &idlen);
		if (r == 0)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK_EQ_INT(r, SG_ERR_INVALID);
		/* Nothing half-parsed survives a refusal. */
		CHECK(tok[0] == '\0' && tok[32] == '\0' && obj[0] == '\0' &&
		    obj[63] == '\0' && id[0] == 0 && id[15] == 0 &&
		    idlen == 0);
	}
}

static void
test_uri_sizes(void)
{
	char tok[33], obj[8], *big;
	uint8_t id[2];
	size_t idlen;

	/* 32 bytes of token label fit, as CK_TOKEN_INFO allows. */
	CHECK_EQ_INT(parse("pkcs11:token=12345678901234567890123456789012",
	    tok, obj, sizeof(obj), id, sizeof(id), &idlen), 0);
	CHECK_EQ_INT(strlen(tok), 32);
	/* object_cap counts the NUL. */
	CHECK_EQ_INT(parse("pkcs11:object=1234567", tok, obj, sizeof(obj), id,
	    sizeof(id), &idlen), 0);
	CHECK_STR(obj, "1234567");
	CHECK_EQ_INT(parse("pkcs11:object=12345678", tok, obj, sizeof(obj), id,
	    sizeof(id), &idlen), SG_ERR_BUFFER);
	CHECK_STR(obj, "");
	CHECK_EQ_INT(parse("pkcs11:id=%01%02%03", tok, obj, sizeof(obj), id,
	    sizeof(id), &idlen), SG_ERR_BUFFER);
	CHECK_EQ_INT(idlen, 0);
	/* Callers that do not want objects or ids. */
	CHECK_EQ_INT(parse("pkcs11:token=t", tok, NULL, 0, NULL, 0, &idlen),
	    0);
	CHECK_STR(tok, "t");
	CHECK_EQ_INT(parse("pkcs11:object=o", tok, NULL, 0, NULL, 0, &idlen),
	    SG_ERR_BUFFER);
	CHECK_EQ_INT(parse("pkcs11:token=t", NULL, obj, sizeof(obj), id,
	    sizeof(id), &idlen), SG_ERR_INVALID);

	if ((big = malloc(8192)) == NULL) {
		CHECK(0);
		return;
	}
	memcpy(big, "pkcs11:object=", 14);
	memset(big + 14, 'a', 8192 - 15);
	big[8191] = '\0';
	CHECK_EQ_INT(parse(big, tok, obj, sizeof(obj), id, sizeof(id),
	    &idlen), SG_ERR_TOO_LARGE);
	free(big);
}

static void
test_rv_names(void)
{
	CHECK_STR(sg_p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
	CHECK_STR(sg_p11_rv_name(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED");
	CHECK_STR(sg_p11_rv_name(0x7fffffffUL), "CKR_(other)");
}

/* ---- with a token ---- */

static void
test_setup(void)
{
	struct sg_p11 *p = NULL;
	char *pin = NULL;
	size_t pin_len = 0;
	struct sg_p11_token *t = NULL;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (sg_fx_tmpdir("p11", tmpdir, sizeof(tmpdir)) != 0 ||
	    sg_fx_p11_token(tmpdir, LABEL) != 0) {
		CHECK(!"the SoftHSM fixture could not be built");
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	fprintf(stderr, "  fixture built in %.2f s\n",
	    (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);

	CHECK_EQ_INT(sg_p11_load("libsofthsm2.so", &p), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_load("/nonexistent/module.so", &p),
	    SG_ERR_UNAVAILABLE);

	/* A wrong PIN first, in its own module instance. */
	CHECK_EQ_INT(sg_p11_load(MODULE, &p), 0);
	CHECK_EQ_INT(read_pin("wrong.pin", &pin, &pin_len), 0);
	CHECK_EQ_INT(sg_p11_open_token(p, LABEL, pin, pin_len, &t),
	    SG_ERR_PIN);
	CHECK_STR(sg_p11_rv_name(sg_p11_last_rv()), "CKR_PIN_INCORRECT");
	sg_freezero(pin, pin_len);
	pin = NULL;
	sg_p11_free(p);
	p = NULL;

	CHECK_EQ_INT(sg_p11_load(MODULE, &g_p11), 0);
	if (g_p11 == NULL)
		return;
	/* A second initialisation of the same module is refused. */
	CHECK_EQ_INT(sg_p11_load(MODULE, &p), SG_ERR_CONFLICT);
	CHECK(p == NULL);
	CHECK_EQ_INT(read_pin("user.pin", &pin, &pin_len), 0);
	CHECK_EQ_INT(sg_p11_open_token(g_p11, "no-such-token", pin, pin_len, &t),
	    SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_p11_open_token(g_p11,
	    "123456789012345678901234567890123", pin, pin_len, &t),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_open_token(g_p11, LABEL, pin, pin_len, &g_tok), 0);
	CHECK_EQ_INT(sg_p11_open_token(g_p11, LABEL, pin, pin_len, &t),
	    SG_ERR_CONFLICT);
	sg_freezero(pin, pin_len);
	have_token = g_tok != NULL;
}

static void
test_token_info(void)
{
	struct sg_token_info ti;
	size_t n;

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	memset(&ti, 'X', sizeof(ti));
	sg_p11_token_info(g_tok, &ti);
	CHECK_STR(ti.label, LABEL);
	CHECK_STR(ti.manufacturer, "SoftHSM project");
	CHECK_STR(ti.model, "SoftHSM v2");
	n = strlen(ti.serial);
	CHECK(n > 0 && n <= 16 && ti.serial[n - 1] != ' ');
}

static void
test_find_keys(void)
{
	static const struct {
		const char *label;
		enum sg_key_alg alg;
	} want[] = {
		{ "p256", SG_ALG_ECDSA_P256 },
		{ "p384", SG_ALG_ECDSA_P384 },
		{ "rsa2048", SG_ALG_RSA },
		{ "rsa3072", SG_ALG_RSA },
		{ "ed25519", SG_ALG_ED25519 },
		{ "certonly", SG_ALG_ECDSA_P256 },
	};
	static const uint8_t id01[] = { 0x01 }, id02[] = { 0x02 },
	    id07[] = { 0x07 }, id99[] = { 0x99 };
	struct sg_p11_key *k, *k2;
	EVP_PKEY *ex;
	size_t i;

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		k = key(want[i].label);
		CHECK(k != NULL);
		if (k == NULL)
			continue;
		CHECK_EQ_INT(sg_p11_key_alg(k), want[i].alg);
		ex = sg_fx_p11_exported(tmpdir, want[i].label);
		CHECK(ex != NULL);
		/* The layer's key is the one pkcs11-tool sees. */
		CHECK_EQ_INT(EVP_PKEY_eq(sg_p11_key_public(k), ex), 1);
		EVP_PKEY_free(ex);
	}

	/* By id alone, and by label and id together. */
	k = NULL;
	CHECK_EQ_INT(sg_p11_find_key(g_tok, NULL, id01, 1, &k), 0);
	k2 = key("p256");
	CHECK(k != NULL && k2 != NULL &&
	    EVP_PKEY_eq(sg_p11_key_public(k), sg_p11_key_public(k2)) == 1);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "p256", id01, 1, &k), 0);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "p256", id02, 1, &k), SG_ERR_NO_KEY);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, NULL, id99, 1, &k), SG_ERR_NO_KEY);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "no-such-key", NULL, 0, &k),
	    SG_ERR_NO_KEY);
	CHECK_STR(sg_p11_rv_name(sg_p11_last_rv()), "CKR_OK");
	/* Two private keys share the label "dup": ambiguous unless the id
	 * tells them apart. */
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "dup", NULL, 0, &k), SG_ERR_INVALID);
	k = NULL;
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "dup", id07, 1, &k), 0);
	CHECK(k != NULL && sg_p11_key_alg(k) == SG_ALG_ECDSA_P256);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, NULL, NULL, 0, &k), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_find_key(g_tok, "", NULL, 0, &k), SG_ERR_NO_KEY);
}

struct case_ {
	const char *label;
	enum sg_sig_scheme scheme;
};

static const struct case_ cases[] = {
	{ "p256", SG_SIG_ECDSA },
	{ "p384", SG_SIG_ECDSA },
	{ "certonly", SG_SIG_ECDSA },
	{ "rsa2048", SG_SIG_RSA_PKCS1 },
	{ "rsa2048", SG_SIG_RSA_PSS },
	{ "rsa3072", SG_SIG_RSA_PKCS1 },
	{ "rsa3072", SG_SIG_RSA_PSS },
	{ "ed25519", SG_SIG_EDDSA },
};

static void
test_sign_matrix(void)
{
	static const enum sg_digest_alg digests[] = {
		SG_DIGEST_SHA256, SG_DIGEST_SHA384, SG_DIGEST_SHA512,
	};
	uint8_t data[200], sig[SG_MAX_SIG];
	size_t c, d, len, siglen;
	struct sg_p11_key *k;
	EVP_PKEY *pub, *ex;
	enum sg_digest_alg da;
	int saltlen;

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		if ((k = key(cases[c].label)) == NULL) {
			CHECK(0);
			continue;
		}
		pub = sg_p11_key_public(k);
		ex = sg_fx_p11_exported(tmpdir, cases[c].label);
		for (d = 0; d < 3; d++) {
			if (cases[c].scheme == SG_SIG_EDDSA) {
				/* EdDSA signs the message itself. */
				da = SG_DIGEST_NONE;
				len = 1 + 90 * d;
			} else {
				da = digests[d];
				len = dlen_of(da);
			}
			CHECK_EQ_INT(RAND_bytes(data, (int)len), 1);
			siglen = 0;
			CHECK_EQ_INT(sg_p11_sign(k, cases[c].scheme, da, data,
			    len, sig, sizeof(sig), &siglen), 0);
			saltlen = (int)dlen_of(da);
			if (!sg_fx_verify(pub, cases[c].scheme, da, data, len,
			    sig, siglen, saltlen) ||
			    !sg_fx_verify(ex, cases[c].scheme, da, data, len,
			    sig, siglen, saltlen)) {
				fprintf(stderr, "  %s scheme %d digest %d: does "
				    "not verify\n", cases[c].label,
				    cases[c].scheme, da);
				CHECK(0);
			}
			/* The check above can fail. */
			data[0] ^= 1;
			CHECK(!sg_fx_verify(pub, cases[c].scheme, da, data, len,
			    sig, siglen, saltlen));
			/* And sg_verify agrees with OpenSSL. */
			data[0] ^= 1;
			CHECK_EQ_INT(sg_verify(pub, cases[c].scheme, da, data,
			    len, sig, siglen), 0);
		}
		EVP_PKEY_free(ex);
	}
}

/* One batch of n (deadline: the layer's, then none) for case c: every
 * signature verifies with the layer's and the exported public key; RSA
 * PKCS#1 v1.5 (deterministic) gives the bytes a single sg_p11_sign
 * gives. */
static void
many_case(size_t c, size_t n)
{
	static struct sg_p11_item it[SG_P11_MANY_MAX];
	static uint8_t data[SG_P11_MANY_MAX][32];
	static uint8_t sig[SG_P11_MANY_MAX][SG_MAX_SIG];
	uint8_t one[SG_MAX_SIG];
	enum sg_sig_scheme scheme = cases[c].scheme;
	enum sg_digest_alg da = scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE :
	    SG_DIGEST_SHA256;
	struct sg_p11_key *k = key(cases[c].label);
	EVP_PKEY *ex = sg_fx_p11_exported(tmpdir, cases[c].label);
	size_t i, onelen;
	int bad = 0;

	CHECK(k != NULL && ex != NULL);
	if (k == NULL || ex == NULL) {
		EVP_PKEY_free(ex);
		return;
	}
	CHECK_EQ_INT(RAND_bytes(&data[0][0], (int)sizeof(data)), 1);
	memset(it, 0, sizeof(it));
	for (i = 0; i < n; i++) {
		it[i].data = data[i];
		it[i].data_len = sizeof(data[i]);
		it[i].sig = sig[i];
		it[i].cap = sizeof(sig[i]);
		it[i].status = 1;
	}
	CHECK_EQ_INT(sg_p11_sign_many(k, scheme, da, it, n), 0);
	for (i = 0; i < n; i++) {
		if (it[i].status != 0 ||
		    !sg_fx_verify(sg_p11_key_public(k), scheme, da, data[i],
		    32, sig[i], it[i].sig_len, 32) ||
		    !sg_fx_verify(ex, scheme, da, data[i], 32, sig[i],
		    it[i].sig_len, 32))
			bad++;
		if (scheme != SG_SIG_RSA_PKCS1 || (i != 0 && i != n - 1))
			continue;
		CHECK_EQ_INT(sg_p11_sign(k, scheme, da, data[i], 32, one,
		    sizeof(one), &onelen), 0);
		CHECK(onelen == it[i].sig_len &&
		    memcmp(one, sig[i], onelen) == 0);
	}
	if (bad)
		fprintf(stderr, "  %s scheme %d, %zu items: %d bad\n",
		    cases[c].label, scheme, n, bad);
	CHECK_EQ_INT(bad, 0);
	/* The check can fail. */
	data[n - 1][0] ^= 1;
	CHECK(!sg_fx_verify(ex, scheme, da, data[n - 1], 32, sig[n - 1],
	    it[n - 1].sig_len, 32));
	EVP_PKEY_free(ex);
}

/* sg_p11_sign_many: every key and scheme, 1, 3 and 64 items, on a worker
 * and on the caller's thread. */
static void
test_sign_many(void)
{
	static const size_t ns[] = { 1, 3, SG_P11_MANY_MAX };
	unsigned int deadline;
	size_t c, n, pass;

	if (!have_token) {
		CHECK(!"no token");
		return;
	}
	deadline = sg_p11_deadline(g_p11);
	CHECK(deadline > 0);
	for (pass = 0; pass < 2; pass++) {
		CHECK_EQ_INT(sg_p11_set_deadline(g_p11, pass ? 0 : deadline),
		    0);
		for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
			for (n = 0; n < 3; n++)
				many_case(c, ns[n]);
	}
	CHECK_EQ_INT(sg_p11_set_deadline(g_p11, deadline), 0);
}

/* A batch refused as a whole, or at a bad item: the items before it are
 * signed, the bad one says why, the rest are not attempted. */
static void
test_sign_many_errors(void)
{
	struct sg_p11_item it[SG_P11_MANY_MAX + 1];
	uint8_t data[5][64], sig[5][SG_MAX_SIG];
	struct sg_p11_key *k = key("p256"), *ed = key("ed25519");
	size_t i;

	if (k == NULL || ed == NULL) {
		CHECK(!"no keys");
		return;
	}
	memset(it, 0, sizeof(it));
	CHECK_EQ_INT(sg_p11_sign_many(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, it,
	    0), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_sign_many(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, it,
	    SG_P11_MANY_MAX + 1), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_sign_many(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, NULL,
	    1), SG_ERR_INVALID);
	CHECK_EQ_INT(RAND_bytes(&data[0][0], (int)sizeof(data)), 1);
	for (i = 0; i < 5; i++) {
		it[i].data = data[i];
		it[i].data_len = 32;
		it[i].sig = sig[i];
		it[i].cap = sizeof(sig[i]);
	}
	CHECK_EQ_INT(sg_p11_sign_many(NULL, SG_SIG_ECDSA, SG_DIGEST_SHA256,
	    it, 5), SG_ERR_INVALID);
	CHECK_EQ_INT(it[0].status, SG_ERR_INVALID);
	/* The wrong scheme for the key: nothing signed. */
	CHECK_EQ_INT(sg_p11_sign_many(k, SG_SIG_RSA_PSS, SG_DIGEST_SHA256, it,
	    5), SG_ERR_MECHANISM);
	CHECK_EQ_INT(it[0].status, SG_ERR_MECHANISM);
	CHECK_EQ_INT(it[4].status, SG_ERR_BUFFER);
	/* Item 2 is not a SHA-256 digest. */
	it[2].data_len = 48;
	CHECK_EQ_INT(sg_p11_sign_many(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, it,
	    5), SG_ERR_INVALID);
	for (i = 0; i < 2; i++) {
		CHECK_EQ_INT(it[i].status, 0);
		CHECK(sg_fx_verify(sg_p11_key_public(k), SG_SIG_ECDSA,
		    SG_DIGEST_SHA256, data[i], 32, sig[i], it[i].sig_len, 0));
	}
	CHECK_EQ_INT(it[2].status, SG_ERR_INVALID);
	CHECK_EQ_INT(it[3].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(it[4].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(it[4].sig_len, 0);
	/* Item 1's buffer is too small for its DER signature. */
	it[2].data_len = 32;
	it[1].cap = 8;
	CHECK_EQ_INT(sg_p11_sign_many(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, it,
	    5), SG_ERR_BUFFER);
	CHECK_EQ_INT(it[0].status, 0);
	CHECK_EQ_INT(it[1].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(it[1].sig_len, 0);
	it[1].cap = sizeof(sig[1]);
	/* EdDSA: messages of at most SG_MAX_DIGEST bytes in a batch. */
	it[1].data_len = SG_MAX_DIGEST + 1;
	CHECK_EQ_INT(sg_p11_sign_many(ed, SG_SIG_EDDSA, SG_DIGEST_NONE, it,
	    2), SG_ERR_TOO_LARGE);
	CHECK_EQ_INT(it[0].status, 0);
	CHECK(sg_fx_verify(sg_p11_key_public(ed), SG_SIG_EDDSA, SG_DIGEST_NONE,
	    data[0], 32, sig[0], it[0].sig_len, 0));
	CHECK_EQ_INT(it[1].status, SG_ERR_TOO_LARGE);
}

static void
test_pss_salt(void)
{
	uint8_t dg[48], sig[SG_MAX_SIG];
	struct sg_p11_key *k = key("rsa2048");
	EVP_PKEY *pub;
	size_t siglen = 0;

	if (k == NULL) {
		CHECK(0);
		return;
	}
	pub = sg_p11_key_public(k);
	CHECK_EQ_INT(RAND_bytes(dg, sizeof(dg)), 1);
	CHECK_EQ_INT(sg_p11_sign(k, SG_SIG_RSA_PSS, SG_DIGEST_SHA384, dg,
	    sizeof(dg), sig, sizeof(sig), &siglen), 0);
	CHECK_EQ_INT(siglen, 256);
	CHECK(sg_fx_verify(pub, SG_SIG_RSA_PSS, SG_DIGEST_SHA384, dg, 48, sig,
	    siglen, 48));
	CHECK(sg_fx_verify(pub, SG_SIG_RSA_PSS, SG_DIGEST_SHA384, dg, 48, sig,
	    siglen, RSA_PSS_SALTLEN_AUTO));
	/* An explicit, different salt length must not verify. */
	CHECK(!sg_fx_verify(pub, SG_SIG_RSA_PSS, SG_DIGEST_SHA384, dg, 48, sig,
	    siglen, 32));
	CHECK(!sg_fx_verify(pub, SG_SIG_RSA_PSS, SG_DIGEST_SHA384, dg, 48, sig,
	    siglen, 0));
}

static void
test_sign_errors(void)
{
	uint8_t dg[64] = { 0 }, sig[SG_MAX_SIG];
	struct sg_p11_key *ec = key("p256"), *rsa = key("rsa2048"),
	    *ed = key("ed25519");
	size_t siglen = 0;

	if (ec == NULL || rsa == NULL || ed == NULL) {
		CHECK(0);
		return;
	}
	/* Digest length must match the digest algorithm. */
	CHECK_EQ_INT(sg_p11_sign(ec, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg, 31,
	    sig, sizeof(sig), &siglen), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_sign(ec, SG_SIG_ECDSA, SG_DIGEST_SHA384, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_sign(rsa, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA512, dg,
	    48, sig, sizeof(sig), &siglen), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_sign(rsa, SG_SIG_RSA_PSS, SG_DIGEST_NONE, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_p11_sign(ed, SG_SIG_EDDSA, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_INVALID);
	/* The scheme must fit the key. */
	CHECK_EQ_INT(sg_p11_sign(rsa, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_MECHANISM);
	CHECK_EQ_INT(sg_p11_sign(ec, SG_SIG_RSA_PSS, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_MECHANISM);
	CHECK_EQ_INT(sg_p11_sign(ec, SG_SIG_EDDSA, SG_DIGEST_NONE, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_MECHANISM);
	CHECK_EQ_INT(sg_p11_sign(ed, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_MECHANISM);
	CHECK_EQ_INT(sg_p11_sign(ec, SG_SIG_NONE, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), SG_ERR_MECHANISM);
	/* Too small an output buffer. */
	CHECK_EQ_INT(sg_p11_sign(rsa, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA256, dg,
	    32, sig, 255, &siglen), SG_ERR_BUFFER);
	CHECK_EQ_INT(sg_p11_sign(ec, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg, 32,
	    sig, 40, &siglen), SG_ERR_BUFFER);
	CHECK_EQ_INT(siglen, 0);
	/* Nothing was left behind in the sessions: signing still works. */
	CHECK_EQ_INT(sg_p11_sign(ec, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), 0);
	CHECK(siglen >= 8 && siglen <= 72);
	/* An empty EdDSA message is a message. */
	CHECK_EQ_INT(sg_p11_sign(ed, SG_SIG_EDDSA, SG_DIGEST_NONE, NULL, 0,
	    sig, sizeof(sig), &siglen), 0);
	CHECK(sg_fx_verify(sg_p11_key_public(ed), SG_SIG_EDDSA, SG_DIGEST_NONE,
	    (const uint8_t *)"", 0, sig, siglen, 0));
}

static void
test_always_authenticate(void)
{
	uint8_t dg[32], sig[SG_MAX_SIG];
	struct sg_p11_key *k = key("always");
	size_t siglen = 0;
	int i;

	if (k == NULL) {
		CHECK(0);
		return;
	}
	/* Each signature needs its own context-specific login. */
	for (i = 0; i < 3; i++) {
		CHECK_EQ_INT(RAND_bytes(dg, sizeof(dg)), 1);
		CHECK_EQ_INT(sg_p11_sign(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg,
		    32, sig, sizeof(sig), &siglen), 0);
		CHECK(sg_fx_verify(sg_p11_key_public(k), SG_SIG_ECDSA,
		    SG_DIGEST_SHA256, dg, 32, sig, siglen, 0));
	}
}

/* Uses the module behind the layer's back, as a token reset would. */
static int
session_state(CK_FUNCTION_LIST *f, CK_SLOT_ID slot, CK_STATE *ret)
{
	CK_SESSION_HANDLE s;
	CK_SESSION_INFO si;
	int ok;

	memset(&si, 0, sizeof(si));
	if (f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) !=
	    CKR_OK)
		return -1;
	ok = f->C_GetSessionInfo(s, &si) == CKR_OK;
	*ret = si.state;
	f->C_CloseSession(s);
	return ok ? 0 : -1;
}

static void
test_recovery_after_reset(void)
{
	CK_FUNCTION_LIST *f = NULL;
	CK_SLOT_ID slot = 0;
	CK_STATE st = 0;
	uint8_t dg[32], sig[SG_MAX_SIG];
	struct sg_p11_key *k = key("p256"), *r = key("rsa2048");
	size_t siglen = 0;
	void *dl;
	int found = 0;

	if (k == NULL || r == NULL) {
		CHECK(0);
		return;
	}
	/* Warm the pool so that it holds several idle sessions. */
	CHECK_EQ_INT(RAND_bytes(dg, sizeof(dg)), 1);
	CHECK_EQ_INT(sg_p11_sign(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), 0);
	if ((dl = dlopen(MODULE, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		CHECK(0);
		return;
	}
	found = sg_fx_p11_slot(dl, LABEL, &f, &slot) == 0;
	CHECK(found);
	if (!found)
		goto out;
	CHECK(session_state(f, slot, &st) == 0 &&
	    st == CKS_RO_USER_FUNCTIONS);
	/* Every session of ours dies, and the login with them. */
	CHECK(f->C_CloseAllSessions(slot) == CKR_OK);
	CHECK(session_state(f, slot, &st) == 0 &&
	    st == CKS_RO_PUBLIC_SESSION);

	CHECK_EQ_INT(RAND_bytes(dg, sizeof(dg)), 1);
	CHECK_EQ_INT(sg_p11_sign(k, SG_SIG_ECDSA, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), 0);
	CHECK(sg_fx_verify(sg_p11_key_public(k), SG_SIG_ECDSA,
	    SG_DIGEST_SHA256, dg, 32, sig, siglen, 0));
	/* It got there by recovering: the last failure it saw is kept. */
	fprintf(stderr, "  recovered from %s\n",
	    sg_p11_rv_name(sg_p11_last_rv()));
	CHECK(sg_p11_last_rv() != CKR_OK);
	/* The layer logged in again. */
	CHECK(session_state(f, slot, &st) == 0 &&
	    st == CKS_RO_USER_FUNCTIONS);
	CHECK_EQ_INT(sg_p11_sign(r, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA256, dg, 32,
	    sig, sizeof(sig), &siglen), 0);
	CHECK(sg_fx_verify(sg_p11_key_public(r), SG_SIG_RSA_PKCS1,
	    SG_DIGEST_SHA256, dg, 32, sig, siglen, 0));
out:
	dlclose(dl);
}

struct worker {
	struct sg_p11_key *keys[4];
	unsigned seed;
	int failures;
};

static void *
worker_main(void *arg)
{
	static const struct {
		int key;
		enum sg_sig_scheme scheme;
	} plan[] = {
		{ 0, SG_SIG_ECDSA }, { 1, SG_SIG_ECDSA },
		{ 2, SG_SIG_RSA_PKCS1 }, { 3, SG_SIG_EDDSA },
		{ 0, SG_SIG_ECDSA }, { 2, SG_SIG_RSA_PSS },
		{ 3, SG_SIG_EDDSA }, { 0, SG_SIG_ECDSA },
	};
	struct worker *w = arg;
	uint8_t data[64], sig[SG_MAX_SIG];
	size_t i, len, siglen;
	enum sg_digest_alg da;
	int p;

	for (i = 0; i < PER_THREAD; i++) {
		p = (int)((i + w->seed) % (sizeof(plan) / sizeof(plan[0])));
		if (plan[p].scheme == SG_SIG_EDDSA) {
			da = SG_DIGEST_NONE;
			len = 1 + i % 64;
		} else {
			da = (enum sg_digest_alg)(SG_DIGEST_SHA256 + i % 3);
			len = dlen_of(da);
		}
		if (RAND_bytes(data, (int)len) != 1 ||
		    sg_p11_sign(w->keys[plan[p].key], plan[p].scheme, da, data,
		    len, sig, sizeof(sig), &siglen) != 0 ||
		    !sg_fx_verify(sg_p11_key_public(w->keys[plan[p].key]),
		    plan[p].scheme, da, data, len, sig, siglen,
		    (int)dlen_of(da)))
			w->failures++;
	}
	return NULL;
}

static void
test_threads(void)
{
	struct worker w[NTHREADS];
	struct sg_p11_key *keys[4] = {
		key("p256"), key("p384"), key("rsa2048"), key("ed25519"),
	};
	struct timespec a, b;
	double sec;
	int i, failures = 0;

	if (keys[0] == NULL || keys[1] == NULL || keys[2] == NULL ||
	    keys[3] == NULL) {
		CHECK(0);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < NTHREADS; i++) {
		memcpy(w[i].keys, keys, sizeof(keys));
		w[i].seed = (unsigned)i;
	}
	CHECK_EQ_INT(sg_fx_threads(NTHREADS, worker_main, w, sizeof(w[0]),
	    offsetof(struct worker, failures), &failures), NTHREADS);
	clock_gettime(CLOCK_MONOTONIC, &b);
	sec = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	fprintf(stderr, "  %d threads x %d mixed signatures, each verified: "
	    "%.2f s (%.0f/s)\n", NTHREADS, PER_THREAD, sec,
	    NTHREADS * PER_THREAD / sec);
	CHECK_EQ_INT(failures, 0);
}

/* Single-thread C_Sign rates, for the record (never asserted). */
static void
test_measure(void)
{
	static const struct case_ m[] = {
		{ "p256", SG_SIG_ECDSA },
		{ "rsa2048", SG_SIG_RSA_PKCS1 },
		{ "rsa3072", SG_SIG_RSA_PKCS1 },
		{ "ed25519", SG_SIG_EDDSA },
	};
	uint8_t dg[32] = { 1 }, sig[SG_MAX_SIG];
	struct timespec a, b;
	struct sg_p11_key *k;
	size_t c, siglen;
	int i, n = 50, fails = 0;
	double sec;

	for (c = 0; c < sizeof(m) / sizeof(m[0]); c++) {
		if ((k = key(m[c].label)) == NULL) {
			CHECK(0);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (i = 0; i < n; i++)
			if (sg_p11_sign(k, m[c].scheme, m[c].scheme ==
			    SG_SIG_EDDSA ? SG_DIGEST_NONE : SG_DIGEST_SHA256,
			    dg, 32, sig, sizeof(sig), &siglen) != 0)
				fails++;
		clock_gettime(CLOCK_MONOTONIC, &b);
		sec = (double)(b.tv_sec - a.tv_sec) +
		    (b.tv_nsec - a.tv_nsec) / 1e9;
		fprintf(stderr, "  %s: %.0f signatures/s on one thread\n",
		    m[c].label, n / sec);
	}
	CHECK_EQ_INT(fails, 0);
}

static void
test_teardown(void)
{
	sg_p11_free(g_p11);
	g_p11 = NULL;
	g_tok = NULL;
	have_token = 0;
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("p11",
    T(test_uri_basic),
    T(test_uri_ignored_attributes),
    T(test_uri_refused),
    T(test_uri_sizes),
    T(test_rv_names),
    T(test_setup),
    T(test_token_info),
    T(test_find_keys),
    T(test_sign_matrix),
    T(test_sign_many),
    T(test_sign_many_errors),
    T(test_pss_salt),
    T(test_sign_errors),
    T(test_always_authenticate),
    T(test_recovery_after_reset),
    T(test_threads),
    T(test_measure),
    T(test_teardown))
