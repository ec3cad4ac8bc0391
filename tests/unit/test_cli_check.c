/*
 * Tests for the CLI's local checks and the officer's signature: returned
 * signatures are accepted only for the right key, SPKI, algorithm, format
 * and LOCAL digest; CMS only with the right signer and messageDigest; a
 * statement only when it agrees with the request; and an approval made
 * from a key file verifies the way docs/API.md says a server checks it
 * (SHA-256 over the PAE of statement + decision, recomputed here by hand).
 * Keys, certificates and CMS objects are made here with OpenSSL directly so
 * that the code under test is not checked against itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_cms.h"
#include "sg_test.h"
#include "sg_fixture.h"

static EVP_PKEY *p256, *p256b, *rsa, *ed;

static void
keys_init(void)
{
	if (p256 != NULL)
		return;
	p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p256b = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

static json_t *
key_obj(const char *name, const char *alg, EVP_PKEY *k)
{
	char *pem = sg_fx_pubkey_pem(k), spki[SG_SHA256_HEX_SIZE];
	json_t *o;

	sg_fx_spki_hex(k, spki);
	o = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "algorithm", alg,
	    "public_key_pem", pem, "spki_sha256", spki);
	free(pem);
	return o;
}

/* Signs a digest the way an HSM would, with plain OpenSSL. */
static size_t
sign_digest(EVP_PKEY *k, const char *scheme, const EVP_MD *md,
    const uint8_t *dg, size_t dlen, uint8_t *sig, size_t cap)
{
	EVP_PKEY_CTX *ctx;
	EVP_MD_CTX *mctx;
	size_t len = cap;

	if (strcmp(scheme, "ed25519") == 0) {
		mctx = EVP_MD_CTX_new();
		if (EVP_DigestSignInit(mctx, NULL, NULL, NULL, k) != 1 ||
		    EVP_DigestSign(mctx, sig, &len, dg, dlen) != 1)
			len = 0;
		EVP_MD_CTX_free(mctx);
		return len;
	}
	ctx = EVP_PKEY_CTX_new(k, NULL);
	if (EVP_PKEY_sign_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
		len = 0;
	if (len && strcmp(scheme, "rsa-pkcs1") == 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
		len = 0;
	if (len && strcmp(scheme, "rsa-pss") == 0 &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		len = 0;
	if (len && EVP_PKEY_sign(ctx, sig, &len, dg, dlen) != 1)
		len = 0;
	EVP_PKEY_CTX_free(ctx);
	return len;
}

static json_t *
sig_obj(const char *key, const char *alg, const char *dalg, EVP_PKEY *k,
    const uint8_t *sig, size_t sig_len, const char *format)
{
	char spki[SG_SHA256_HEX_SIZE], *b64 = sg_b64_encode(sig, sig_len);
	json_t *o;

	sg_fx_spki_hex(k, spki);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "format", format,
	    "algorithm", alg, "digest_algorithm", dalg, "key", key,
	    "spki_sha256", spki, "signature", b64);
	free(b64);
	return o;
}

static int
check(json_t *so, json_t *ko, const char *key, const char *format,
    enum sg_digest_alg dalg, const uint8_t *dg, size_t dlen)
{
	uint8_t *sig = NULL, *cms = NULL;
	size_t sl = 0, cl = 0;
	enum sg_format f;
	char err[512];
	int r;

	if (sg_format_parse(format, &f) != 0)
		return -100;
	r = sg_cli_check_signature(so, ko, key, f, dalg, dg, dlen, &sig,
	    &sl, &cms, &cl, err, sizeof(err));
	if (r != 0 && getenv("SG_TEST_VERBOSE") != NULL)
		fprintf(stderr, "    (%s)\n", err);
	free(sig);
	free(cms);
	return r;
}

static void
test_key_public(void)
{
	json_t *doc, *k;
	EVP_PKEY *pub = NULL;
	char spki[SG_SHA256_HEX_SIZE], want[SG_SHA256_HEX_SIZE], err[256];

	keys_init();
	doc = json_pack("{s:[o, o]}", "keys", key_obj("release", "ecdsa-p256",
	    p256), key_obj("firmware", "rsa-pkcs1", rsa));
	CHECK(sg_cli_find_key(doc, "firmware") != NULL);
	CHECK(sg_cli_find_key(doc, "nope") == NULL);
	CHECK(sg_cli_find_key(NULL, "release") == NULL);
	k = sg_cli_find_key(doc, "release");
	CHECK_EQ_INT(sg_cli_key_public(k, &pub, spki, err, sizeof(err)), 0);
	sg_fx_spki_hex(p256, want);
	CHECK_STR(spki, want);
	CHECK(pub != NULL && EVP_PKEY_eq(pub, p256) == 1);
	EVP_PKEY_free(pub);
	pub = NULL;

	/* A claimed digest that is not the key's. */
	json_object_set_new(k, "spki_sha256", json_string(
	    "0000000000000000000000000000000000000000000000000000000000000000"));
	CHECK_EQ_INT(sg_cli_key_public(k, &pub, spki, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(pub == NULL);
	json_object_set_new(k, "spki_sha256", json_string(want));
	json_object_set_new(k, "public_key_pem", json_string("garbage"));
	CHECK_EQ_INT(sg_cli_key_public(k, &pub, spki, err, sizeof(err)),
	    SG_ERR_VERIFY);
	json_object_del(k, "public_key_pem");
	CHECK_EQ_INT(sg_cli_key_public(k, &pub, spki, err, sizeof(err)),
	    SG_ERR_VERIFY);
	json_decref(doc);
}

static void
one_scheme(const char *alg, EVP_PKEY *k, enum sg_digest_alg dalg)
{
	uint8_t data[] = "the artifact", dg[64], other[64], sig[1024];
	const EVP_MD *md = sg_digest_md(dalg);
	size_t dlen = (size_t)EVP_MD_get_size(md), sl;
	const char *dname = sg_digest_name(dalg);
	json_t *ko = key_obj("k1", alg, k), *so;

	EVP_Digest(data, sizeof(data), dg, NULL, md, NULL);
	memcpy(other, dg, dlen);
	other[0] ^= 1;
	sl = sign_digest(k, alg, md, dg, dlen, sig, sizeof(sig));
	CHECK(sl > 0);
	so = sig_obj("k1", alg, dname, k, sig, sl, "raw");
	CHECK_EQ_INT(check(so, ko, "k1", "raw", dalg, dg, dlen), 0);
	/* The LOCAL digest decides: another file does not verify. */
	CHECK_EQ_INT(check(so, ko, "k1", "raw", dalg, other, dlen),
	    SG_ERR_VERIFY);
	/* Asked for another key or format. */
	CHECK_EQ_INT(check(so, ko, "k2", "raw", dalg, dg, dlen), SG_ERR_VERIFY);
	CHECK_EQ_INT(check(so, ko, "k1", "cms", dalg, dg, dlen), SG_ERR_VERIFY);
	json_decref(so);

	/* A flipped signature byte. */
	sig[sl / 2] ^= 0x40;
	so = sig_obj("k1", alg, dname, k, sig, sl, "raw");
	CHECK_EQ_INT(check(so, ko, "k1", "raw", dalg, dg, dlen), SG_ERR_VERIFY);
	json_decref(so);
	json_decref(ko);
}

static void
test_signature_schemes(void)
{
	keys_init();
	one_scheme("ecdsa-p256", p256, SG_DIGEST_SHA256);
	one_scheme("ecdsa-p256", p256, SG_DIGEST_SHA384);
	one_scheme("rsa-pkcs1", rsa, SG_DIGEST_SHA256);
	one_scheme("rsa-pkcs1", rsa, SG_DIGEST_SHA512);
	one_scheme("rsa-pss", rsa, SG_DIGEST_SHA384);
	one_scheme("ed25519", ed, SG_DIGEST_SHA256);
}

static void
test_signature_mismatches(void)
{
	uint8_t dg[32], sig[256];
	size_t sl;
	json_t *ko, *so;
	char spki[SG_SHA256_HEX_SIZE];

	keys_init();
	memset(dg, 7, sizeof(dg));
	sl = sign_digest(p256, "ecdsa-p256", EVP_sha256(), dg, 32, sig,
	    sizeof(sig));
	ko = key_obj("k1", "ecdsa-p256", p256);
	so = sig_obj("k1", "ecdsa-p256", "sha256", p256, sig, sl, "raw");
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32), 0);

	/* Digest algorithm differs from what was asked. */
	json_object_set_new(so, "digest_algorithm", json_string("sha384"));
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	json_object_set_new(so, "digest_algorithm", json_string("sha256"));
	/* Algorithm differs from the key's. */
	json_object_set_new(so, "algorithm", json_string("ecdsa-p384"));
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	json_object_set_new(so, "algorithm", json_string("ecdsa-p256"));
	/* SPKI of another key. */
	sg_fx_spki_hex(p256b, spki);
	json_object_set_new(so, "spki_sha256", json_string(spki));
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	sg_fx_spki_hex(p256, spki);
	json_object_set_new(so, "spki_sha256", json_string(spki));
	/* Bad base64, and a raw signature that carries cms. */
	json_object_set_new(so, "signature", json_string("MEUC!"));
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	json_decref(so);
	so = sig_obj("k1", "ecdsa-p256", "sha256", p256, sig, sl, "raw");
	json_object_set_new(so, "cms", json_string("AAAA"));
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	json_decref(so);
	/* The key object published another key than the one that signed. */
	json_decref(ko);
	ko = key_obj("k1", "ecdsa-p256", p256b);
	so = sig_obj("k1", "ecdsa-p256", "sha256", p256b, sig, sl, "raw");
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	json_decref(so);
	/* An RSA key under an ECDSA algorithm name. */
	json_decref(ko);
	ko = key_obj("k1", "ecdsa-p256", rsa);
	so = sig_obj("k1", "ecdsa-p256", "sha256", rsa, sig, sl, "raw");
	CHECK_EQ_INT(check(so, ko, "k1", "raw", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	json_decref(so);
	json_decref(ko);
	/* Wrong digest length. */
	CHECK(sg_cli_check_signature(NULL, NULL, "k1", SG_FORMAT_RAW,
	    SG_DIGEST_SHA256, dg, 31, NULL, NULL, NULL, NULL, NULL, 0) != 0);
}

static X509 *
self_signed(EVP_PKEY *k, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	if (cn != NULL)
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
		    (const unsigned char *)cn, -1, -1, 0);
	else
		X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
		    (const unsigned char *)"no cn", -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_NAME_free(n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	return x;
}

static size_t
make_cms(EVP_PKEY *k, X509 *cert, const char *data, int flags, uint8_t **der)
{
	BIO *in = BIO_new_mem_buf(data, (int)strlen(data));
	CMS_ContentInfo *cms = CMS_sign(cert, k, NULL, in, flags);
	int n;

	*der = NULL;
	n = cms != NULL ? i2d_CMS_ContentInfo(cms, der) : 0;
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return n > 0 ? (size_t)n : 0;
}

static void
test_cms(void)
{
	const char *data = "artifact bytes";
	uint8_t dg[32], dg384[48], *der = NULL, *longer;
	X509 *cert;
	EVP_PKEY *pub;
	size_t n;
	char err[256];

	keys_init();
	cert = self_signed(p256, "signgate test");
	SHA256((const unsigned char *)data, strlen(data), dg);
	n = make_cms(p256, cert, data, CMS_DETACHED | CMS_BINARY, &der);
	CHECK(n > 0);
	pub = X509_get_pubkey(cert);
	CHECK_EQ_INT(sg_cli_check_cms(der, n, pub, SG_DIGEST_SHA256, dg, 32,
	    err, sizeof(err)), 0);
	/* Another artifact's digest. */
	dg[5] ^= 1;
	CHECK_EQ_INT(sg_cli_check_cms(der, n, pub, SG_DIGEST_SHA256, dg, 32,
	    err, sizeof(err)), SG_ERR_VERIFY);
	CHECK(strstr(err, "messageDigest") != NULL);
	dg[5] ^= 1;
	/* Another key than the signer's. */
	CHECK_EQ_INT(sg_cli_check_cms(der, n, p256b, SG_DIGEST_SHA256, dg, 32,
	    err, sizeof(err)), SG_ERR_VERIFY);
	/* Another digest algorithm than the signer used. */
	memset(dg384, 0, sizeof(dg384));
	CHECK_EQ_INT(sg_cli_check_cms(der, n, pub, SG_DIGEST_SHA384, dg384,
	    48, err, sizeof(err)), SG_ERR_VERIFY);
	/* A tampered signature, trailing bytes, garbage. */
	der[n - 3] ^= 0x01;
	CHECK_EQ_INT(sg_cli_check_cms(der, n, pub, SG_DIGEST_SHA256, dg, 32,
	    err, sizeof(err)), SG_ERR_VERIFY);
	der[n - 3] ^= 0x01;
	longer = malloc(n + 1);
	memcpy(longer, der, n);
	longer[n] = 0;
	CHECK_EQ_INT(sg_cli_check_cms(longer, n + 1, pub, SG_DIGEST_SHA256, dg,
	    32, err, sizeof(err)), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_cli_check_cms(longer, 10, pub, SG_DIGEST_SHA256, dg,
	    32, err, sizeof(err)), SG_ERR_VERIFY);
	free(longer);
	OPENSSL_free(der);
	/* Not detached: the content travels inside; refused. */
	n = make_cms(p256, cert, data, CMS_BINARY, &der);
	CHECK(n > 0);
	CHECK_EQ_INT(sg_cli_check_cms(der, n, pub, SG_DIGEST_SHA256, dg, 32,
	    err, sizeof(err)), SG_ERR_VERIFY);
	OPENSSL_free(der);
	/* Without the certificate inside, the signer cannot be matched. */
	n = make_cms(p256, cert, data, CMS_DETACHED | CMS_BINARY | CMS_NOCERTS,
	    &der);
	CHECK(n > 0);
	CHECK_EQ_INT(sg_cli_check_cms(der, n, pub, SG_DIGEST_SHA256, dg, 32,
	    err, sizeof(err)), SG_ERR_VERIFY);
	OPENSSL_free(der);
	EVP_PKEY_free(pub);
	X509_free(cert);
}

static void
test_signature_with_cms(void)
{
	const char *data = "artifact bytes";
	uint8_t dg[32], sig[256], *der = NULL, *got_sig = NULL, *got_cms = NULL;
	size_t n, sl, gsl = 0, gcl = 0;
	X509 *cert;
	json_t *ko, *so;
	char *b64, err[256];

	keys_init();
	SHA256((const unsigned char *)data, strlen(data), dg);
	cert = self_signed(p256, "signgate test");
	n = make_cms(p256, cert, data, CMS_DETACHED | CMS_BINARY, &der);
	/* For cms, "signature" is the CMS's own signature value (over its
	 * signed attributes), not a raw signature over the digest. */
	{
		uint8_t *sv = NULL;
		size_t svl = 0;
		CHECK(sg_cms_signature_value(der, n, &sv, &svl) == 0);
		CHECK(svl > 0 && svl <= sizeof(sig));
		memcpy(sig, sv, svl);
		sl = svl;
		free(sv);
	}
	ko = key_obj("k1", "ecdsa-p256", p256);
	so = sig_obj("k1", "ecdsa-p256", "sha256", p256, sig, sl, "cms");
	/* cms format without the cms member. */
	CHECK_EQ_INT(check(so, ko, "k1", "cms", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	b64 = sg_b64_encode(der, n);
	json_object_set_new(so, "cms", json_string(b64));
	free(b64);
	CHECK_EQ_INT(sg_cli_check_signature(so, ko, "k1", SG_FORMAT_CMS,
	    SG_DIGEST_SHA256, dg, 32, &got_sig, &gsl, &got_cms, &gcl, err,
	    sizeof(err)), 0);
	CHECK(gsl == sl && memcmp(got_sig, sig, sl) == 0);
	CHECK(gcl == n && memcmp(got_cms, der, n) == 0);
	free(got_sig);
	free(got_cms);
	/* A raw signature over the digest next to the CMS is refused: the
	 * reported signature must be the CMS's. */
	{
		json_t *so2;
		sl = sign_digest(p256, "ecdsa-p256", EVP_sha256(), dg, 32, sig,
		    sizeof(sig));
		so2 = sig_obj("k1", "ecdsa-p256", "sha256", p256, sig, sl,
		    "cms");
		b64 = sg_b64_encode(der, n);
		json_object_set_new(so2, "cms", json_string(b64));
		free(b64);
		CHECK_EQ_INT(check(so2, ko, "k1", "cms", SG_DIGEST_SHA256, dg,
		    32), SG_ERR_VERIFY);
		json_decref(so2);
	}
	OPENSSL_free(der);
	/* A CMS by another key. */
	X509_free(cert);
	cert = self_signed(p256b, "other");
	n = make_cms(p256b, cert, data, CMS_DETACHED | CMS_BINARY, &der);
	b64 = sg_b64_encode(der, n);
	json_object_set_new(so, "cms", json_string(b64));
	free(b64);
	CHECK_EQ_INT(check(so, ko, "k1", "cms", SG_DIGEST_SHA256, dg, 32),
	    SG_ERR_VERIFY);
	OPENSSL_free(der);
	X509_free(cert);
	json_decref(so);
	json_decref(ko);
}

static const char statement[] = SG_FX_STATEMENT;

static json_t *
request(void)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s,"
	    " s:{s:s, s:i, s:s}, s:s}",
	    "id", SG_FX_STMT_ID, "state", "pending", "key", "release",
	    "digest", "algorithm", "sha256", "value", SG_FX_STMT_DIGEST,
	    "format", "raw", "requester", "ci",
	    "created_at", "2025-11-28T12:00:00Z",
	    "expires_at", "2025-11-29T12:00:00Z",
	    "policy", "name", "signgate-dev", "version", 1, "sha256",
	    SG_FX_STMT_POLICY,
	    "statement", statement);
}

/* Changes one member (path "a" or "a.b") and expects a disagreement that
 * mentions `what`. */
static void
disagree(const char *path, json_t *value, const char *what, int line)
{
	json_t *req = request(), *obj = req;
	struct sg_statement st;
	char err[1024], name[32];
	const char *dot = strchr(path, '.');

	if (dot != NULL) {
		snprintf(name, sizeof(name), "%.*s", (int)(dot - path), path);
		obj = json_object_get(req, name);
		path = dot + 1;
	}
	if (value != NULL)
		json_object_set_new(obj, path, value);
	else
		json_object_del(obj, path);
	memset(&st, 0x5a, sizeof(st));
	if (sg_cli_request_statement(req, &st, err, sizeof(err)) !=
	    SG_ERR_VERIFY || strstr(err, what) == NULL ||
	    (unsigned char)st.key[0] != 0x5a) {
		fprintf(stderr, "  line %d: %s not reported (%s)\n", line, what,
		    err);
		sg_test_failed_checks++;
	}
	json_decref(req);
}

static void
test_request_statement(void)
{
	struct sg_statement st;
	json_t *req = request();
	char err[1024];

	CHECK_EQ_INT(sg_cli_request_statement(req, &st, err, sizeof(err)), 0);
	CHECK_STR(st.key, "release");
	CHECK_STR(st.spki_sha256, SG_FX_STMT_SPKI);
	json_decref(req);

	disagree("id", json_string("ffffffffffffffffffffffffffffffff"),
	    "says request", __LINE__);
	disagree("key", json_string("firmware"), "says key", __LINE__);
	disagree("digest.algorithm", json_string("sha384"), "digest algorithm",
	    __LINE__);
	disagree("digest.value", json_string("bb" "00"), "says digest",
	    __LINE__);
	disagree("format", json_string("cms"), "format", __LINE__);
	disagree("requester", json_string("mallory"), "requester", __LINE__);
	disagree("policy.name", json_string("other"), "says policy", __LINE__);
	disagree("policy.version", json_integer(2), "policy version", __LINE__);
	disagree("policy.version", json_string("1"), "policy version",
	    __LINE__);
	disagree("policy.sha256", json_string(SG_FX_STMT_DIGEST),
	    "policy sha256", __LINE__);
	disagree("expires_at", json_string("2099-01-01T00:00:00Z"), "expiry",
	    __LINE__);
	disagree("key", NULL, "says key", __LINE__);
	disagree("statement", json_string("signgate approval v1\n"),
	    "does not parse", __LINE__);
	disagree("statement", NULL, "no statement", __LINE__);

	/* Several disagreements are all listed. */
	req = request();
	json_object_set_new(req, "key", json_string("firmware"));
	json_object_set_new(req, "requester", json_string("mallory"));
	CHECK_EQ_INT(sg_cli_request_statement(req, &st, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strstr(err, "key") != NULL && strstr(err, "requester") != NULL &&
	    strchr(err, '\n') != NULL);
	json_decref(req);
}

static char tmpdir[64];

static char *
write_tmp(const char *name, const char *content, mode_t mode)
{
	char *path;

	if (tmpdir[0] == '\0' &&
	    sg_fx_tmpdir("cli-check", tmpdir, sizeof(tmpdir)) != 0)
		return NULL;
	if ((path = sg_fx_file(tmpdir, name, content)) != NULL)
		chmod(path, mode);
	return path;
}

/* Verifies an envelope as the server would (sg_fx_envelope_ok). */
static int
server_accepts(const char *json, EVP_PKEY *officer, const char *decision)
{
	char want[4096];

	snprintf(want, sizeof(want), "%sdecision %s\n", statement, decision);
	return sg_fx_envelope_ok(json, want, officer, NULL);
}

static void
one_officer_key(EVP_PKEY *k, int approve)
{
	struct sg_cli_signer *s = NULL;
	char *pem = sg_fx_privkey_pem(k), *path, *json = NULL, err[256];
	json_t *root;

	path = write_tmp("officer.key", pem, 0600);
	CHECK(path != NULL);
	CHECK_EQ_INT(sg_cli_signer_file(path, &s, err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_cli_approval_envelope(s, statement, strlen(statement),
	    approve, "alice", &json, err, sizeof(err)), 0);
	CHECK(json != NULL && server_accepts(json, k,
	    approve ? "approve" : "reject"));
	CHECK(json != NULL && !server_accepts(json, k,
	    approve ? "reject" : "approve"));
	CHECK(json != NULL && !server_accepts(json, p256b,
	    approve ? "approve" : "reject"));
	root = json != NULL ? json_loads(json, 0, NULL) : NULL;
	CHECK_STR(sg_cli_jstr(json_array_get(json_object_get(root,
	    "signatures"), 0), "keyid"), "alice");
	json_decref(root);
	free(json);
	json = NULL;
	/* The statement must end in LF; a bad keyid is refused. */
	CHECK(sg_cli_approval_envelope(s, "x", 1, 1, "alice", &json, err,
	    sizeof(err)) != 0);
	CHECK(sg_cli_approval_envelope(s, statement, strlen(statement), 1,
	    "a b", &json, err, sizeof(err)) != 0);
	CHECK(json == NULL);
	sg_cli_signer_free(s);
	unlink(path);
	free(path);
	free(pem);
}

static void
test_officer_file_key(void)
{
	struct sg_cli_signer *s = NULL;
	char *pem, *path, err[256];

	keys_init();
	one_officer_key(p256, 1);
	one_officer_key(p256, 0);
	one_officer_key(rsa, 1);

	/* Readable by others: refused before it is even parsed. */
	pem = sg_fx_privkey_pem(p256);
	path = write_tmp("open.key", pem, 0644);
	CHECK_EQ_INT(sg_cli_signer_file(path, &s, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(strstr(err, "chmod 600") != NULL);
	CHECK(s == NULL);
	unlink(path);
	free(path);
	free(pem);
	/* Ed25519 is not an approval key type. */
	pem = sg_fx_privkey_pem(ed);
	path = write_tmp("ed.key", pem, 0600);
	CHECK_EQ_INT(sg_cli_signer_file(path, &s, err, sizeof(err)),
	    SG_ERR_MECHANISM);
	unlink(path);
	free(path);
	free(pem);
	/* Not a key; absent. */
	path = write_tmp("junk.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n"
	    "-----END PRIVATE KEY-----\n", 0600);
	CHECK_EQ_INT(sg_cli_signer_file(path, &s, err, sizeof(err)),
	    SG_ERR_INVALID);
	unlink(path);
	free(path);
	CHECK_EQ_INT(sg_cli_signer_file("/nonexistent/k.pem", &s, err,
	    sizeof(err)), SG_ERR_NOT_FOUND);
	CHECK(s == NULL);
	sg_cli_signer_free(NULL);
}

static void
test_certificates(void)
{
	X509 *x;
	BIO *b;
	char *pem, *data, *path, cn[64], subject[256], nb[32], na[32];
	long n;

	keys_init();
	x = self_signed(p256, "alice");
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	pem = strndup(data, (size_t)n);
	BIO_free(b);
	X509_free(x);

	CHECK_EQ_INT(sg_cli_cert_summary(pem, strlen(pem), subject,
	    sizeof(subject), nb, na), 0);
	CHECK_STR(subject, "CN=alice");
	CHECK(strlen(nb) == 20 && nb[10] == 'T' && nb[19] == 'Z');
	CHECK(strcmp(nb, na) < 0);
	CHECK_EQ_INT(sg_cli_cert_summary("junk", 4, subject, sizeof(subject),
	    nb, na), SG_ERR_INVALID);

	path = write_tmp("alice.pem", pem, 0644);
	CHECK_EQ_INT(sg_cli_cert_cn(path, cn, sizeof(cn)), 0);
	CHECK_STR(cn, "alice");
	CHECK_EQ_INT(sg_cli_cert_cn(path, cn, 5), SG_ERR_INVALID);
	unlink(path);
	free(path);
	free(pem);

	/* A CN that is not a principal name, and no CN at all. */
	x = self_signed(p256, "Alice Smith");
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	path = write_tmp("smith.pem", (pem = strndup(data, (size_t)n)), 0644);
	CHECK_EQ_INT(sg_cli_cert_cn(path, cn, sizeof(cn)), SG_ERR_INVALID);
	unlink(path);
	free(path);
	free(pem);
	BIO_free(b);
	X509_free(x);
	x = self_signed(p256, NULL);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &data);
	path = write_tmp("nocn.pem", (pem = strndup(data, (size_t)n)), 0644);
	CHECK_EQ_INT(sg_cli_cert_cn(path, cn, sizeof(cn)), SG_ERR_INVALID);
	unlink(path);
	free(path);
	free(pem);
	BIO_free(b);
	X509_free(x);
}

static void
test_cleanup(void)
{
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p256b);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
	p256 = p256b = rsa = ed = NULL;
	if (tmpdir[0] != '\0')
		CHECK_EQ_INT(rmdir(tmpdir), 0);
}

SG_TEST_MAIN("cli_check",
    T(test_key_public),
    T(test_signature_schemes),
    T(test_signature_mismatches),
    T(test_cms),
    T(test_signature_with_cms),
    T(test_request_statement),
    T(test_officer_file_key),
    T(test_certificates),
    T(test_cleanup))
