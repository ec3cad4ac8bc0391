/*
 * Tests for the OpenSSL helpers.  Keys are generated in-process and every
 * signature is made with OpenSSL directly, independently of the code under
 * test, so that sg_verify() is checked against the library rather than
 * against itself: each scheme and digest verifies, and every way a
 * signature can be wrong (a flipped bit, a digest of the wrong length or
 * algorithm, another key, a key of the wrong type, other PSS parameters)
 * is refused.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_test.h"
#include "sg_fixture.h"

static EVP_PKEY *p256, *p256b, *p384, *p521, *rsa2048, *rsa2048b, *rsa1024;
static EVP_PKEY *ed25519, *ed25519b;

static const enum sg_digest_alg digests[] = {
	SG_DIGEST_SHA256, SG_DIGEST_SHA384, SG_DIGEST_SHA512,
};
#define NDIGESTS (sizeof(digests) / sizeof(digests[0]))

static const char message[] = "signgate test artifact";

static void
digest_of(enum sg_digest_alg a, const void *data, size_t len, uint8_t *out,
    size_t *ret_len)
{
	unsigned int n = 0;

	if (!EVP_Digest(data, len, out, &n, sg_digest_md(a), NULL))
		n = 0;
	*ret_len = n;
}

/*
 * Signs a digest with OpenSSL.  pss_salt is the PSS salt length (or -1 for
 * PKCS#1 v1.5 when the key is RSA); mgf1 NULL means the same hash.
 */
static size_t
sign_digest(EVP_PKEY *key, enum sg_sig_scheme scheme, enum sg_digest_alg a,
    const uint8_t *dig, size_t dlen, int pss_salt, const EVP_MD *mgf1,
    uint8_t *sig, size_t cap)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
	size_t slen = cap;
	int ok;

	ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, sg_digest_md(a)) == 1;
	if (ok && scheme == SG_SIG_RSA_PKCS1)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
	if (ok && scheme == SG_SIG_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx,
		    RSA_PKCS1_PSS_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx,
		    mgf1 ? mgf1 : sg_digest_md(a)) == 1 &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, pss_salt) == 1;
	if (ok)
		ok = EVP_PKEY_sign(ctx, sig, &slen, dig, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		fprintf(stderr, "  test bug: OpenSSL could not sign\n");
		return 0;
	}
	return slen;
}

static size_t
sign_ed25519(EVP_PKEY *key, const void *msg, size_t len, uint8_t *sig,
    size_t cap)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t slen = cap;
	int ok;

	ok = ctx != NULL &&
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &slen, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? slen : 0;
}

/* ---- names ---- */

static void
test_digest_names(void)
{
	size_t i;

	for (i = 0; i < NDIGESTS; i++) {
		enum sg_digest_alg a = digests[i];
		CHECK_EQ_INT(sg_digest_from_name(sg_digest_name(a)), a);
		CHECK(sg_digest_md(a) != NULL);
		CHECK_EQ_INT(EVP_MD_get_size(sg_digest_md(a)),
		    sg_digest_len(a));
	}
	CHECK_STR(sg_digest_name(SG_DIGEST_SHA256), "sha256");
	CHECK_STR(sg_digest_name(SG_DIGEST_SHA384), "sha384");
	CHECK_STR(sg_digest_name(SG_DIGEST_SHA512), "sha512");
	CHECK_EQ_INT(sg_digest_len(SG_DIGEST_SHA256), 32);
	CHECK_EQ_INT(sg_digest_len(SG_DIGEST_SHA384), 48);
	CHECK_EQ_INT(sg_digest_len(SG_DIGEST_SHA512), 64);
	CHECK_EQ_INT(sg_digest_len(SG_DIGEST_NONE), 0);
	CHECK(sg_digest_md(SG_DIGEST_NONE) == NULL);
	CHECK(sg_digest_name(SG_DIGEST_NONE) != NULL);
	CHECK_EQ_INT(sg_digest_from_name(NULL), SG_DIGEST_NONE);
	CHECK_EQ_INT(sg_digest_from_name(""), SG_DIGEST_NONE);
	CHECK_EQ_INT(sg_digest_from_name("SHA256"), SG_DIGEST_NONE);
	CHECK_EQ_INT(sg_digest_from_name("sha-256"), SG_DIGEST_NONE);
	CHECK_EQ_INT(sg_digest_from_name("sha1"), SG_DIGEST_NONE);
	CHECK_EQ_INT(sg_digest_from_name("sha256 "), SG_DIGEST_NONE);
	CHECK_EQ_INT(sg_digest_from_name("none"), SG_DIGEST_NONE);
}

static void
test_scheme_names(void)
{
	static const struct {
		const char *name;
		enum sg_key_alg alg;
		enum sg_sig_scheme scheme;
	} all[] = {
		{ "ecdsa-p256", SG_ALG_ECDSA_P256, SG_SIG_ECDSA },
		{ "ecdsa-p384", SG_ALG_ECDSA_P384, SG_SIG_ECDSA },
		{ "rsa-pkcs1", SG_ALG_RSA, SG_SIG_RSA_PKCS1 },
		{ "rsa-pss", SG_ALG_RSA, SG_SIG_RSA_PSS },
		{ "ed25519", SG_ALG_ED25519, SG_SIG_EDDSA },
	};
	static const char *const unknown[] = { "", "ecdsa", "ECDSA-P256",
	    "ecdsa-p521", "rsa", "rsa-pss ", "ed448", "eddsa", "rsa_pss" };
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		alg = SG_ALG_NONE;
		scheme = SG_SIG_NONE;
		CHECK_EQ_INT(sg_scheme_from_name(all[i].name, &alg, &scheme),
		    0);
		CHECK_EQ_INT(alg, all[i].alg);
		CHECK_EQ_INT(scheme, all[i].scheme);
		CHECK_STR(sg_scheme_name(all[i].alg, all[i].scheme),
		    all[i].name);
	}
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		alg = (enum sg_key_alg)99;
		scheme = (enum sg_sig_scheme)99;
		CHECK_EQ_INT(sg_scheme_from_name(unknown[i], &alg, &scheme),
		    SG_ERR_INVALID);
		CHECK_EQ_INT(alg, 99);
		CHECK_EQ_INT(scheme, 99);
	}
	CHECK_EQ_INT(sg_scheme_from_name(NULL, &alg, &scheme),
	    SG_ERR_INVALID);
	/* Pairs that are not a scheme. */
	CHECK(sg_scheme_name(SG_ALG_RSA, SG_SIG_ECDSA) == NULL);
	CHECK(sg_scheme_name(SG_ALG_ECDSA_P256, SG_SIG_RSA_PSS) == NULL);
	CHECK(sg_scheme_name(SG_ALG_ED25519, SG_SIG_ECDSA) == NULL);
	CHECK(sg_scheme_name(SG_ALG_NONE, SG_SIG_NONE) == NULL);
}

/* ---- keys ---- */

static void
test_pubkey_alg(void)
{
	CHECK_EQ_INT(sg_pubkey_alg(p256), SG_ALG_ECDSA_P256);
	CHECK_EQ_INT(sg_pubkey_alg(p384), SG_ALG_ECDSA_P384);
	CHECK_EQ_INT(sg_pubkey_alg(p521), SG_ALG_NONE);
	CHECK_EQ_INT(sg_pubkey_alg(rsa2048), SG_ALG_RSA);
	CHECK_EQ_INT(sg_pubkey_alg(rsa1024), SG_ALG_NONE);
	CHECK_EQ_INT(sg_pubkey_alg(ed25519), SG_ALG_ED25519);
	CHECK_EQ_INT(sg_pubkey_alg(NULL), SG_ALG_NONE);
}

static void
test_pubkey_from_pem(void)
{
	EVP_PKEY *keys[] = { p256, p384, rsa2048, ed25519 };
	EVP_PKEY *got, *sentinel = (EVP_PKEY *)&keys;
	char *pem, *back, buf[8192];
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		pem = sg_fx_pubkey_pem(keys[i]);
		CHECK(pem != NULL);
		if (pem == NULL)
			continue;
		got = NULL;
		CHECK_EQ_INT(sg_pubkey_from_pem(pem, strlen(pem), &got), 0);
		CHECK(got != NULL && EVP_PKEY_eq(got, keys[i]) == 1);
		/* And back to the same PEM. */
		back = NULL;
		CHECK_EQ_INT(sg_pubkey_to_pem(got, &back), 0);
		CHECK_STR(back, pem);
		free(back);
		EVP_PKEY_free(got);
		/* Length is honoured: a truncated PEM fails. */
		got = sentinel;
		CHECK(sg_pubkey_from_pem(pem, strlen(pem) / 2, &got) != 0);
		CHECK(got == sentinel);
		free(pem);
	}

	/* A self-signed certificate gives its public key. */
	pem = sg_fx_self_signed_pem(p256, "signgate test");
	CHECK(pem != NULL);
	if (pem != NULL) {
		got = NULL;
		CHECK_EQ_INT(sg_pubkey_from_pem(pem, strlen(pem), &got), 0);
		CHECK(got != NULL && EVP_PKEY_eq(got, p256) == 1);
		CHECK_EQ_INT(sg_pubkey_alg(got), SG_ALG_ECDSA_P256);
		EVP_PKEY_free(got);
		free(pem);
	}
	pem = sg_fx_self_signed_pem(rsa2048, "signgate test");
	CHECK(pem != NULL);
	if (pem != NULL) {
		got = NULL;
		CHECK_EQ_INT(sg_pubkey_from_pem(pem, strlen(pem), &got), 0);
		CHECK(got != NULL && EVP_PKEY_eq(got, rsa2048) == 1);
		EVP_PKEY_free(got);
		/* A certificate with a broken body. */
		snprintf(buf, sizeof(buf), "%s", pem);
		buf[40] = buf[40] == 'A' ? 'B' : 'A';
		buf[41] = '!';
		got = sentinel;
		CHECK(sg_pubkey_from_pem(buf, strlen(buf), &got) != 0);
		CHECK(got == sentinel);
		free(pem);
	}

	/* Garbage and other PEM types. */
	got = sentinel;
	CHECK(sg_pubkey_from_pem("hello", 5, &got) != 0);
	CHECK(sg_pubkey_from_pem("", 0, &got) != 0);
	{
		static const char bad_key[] = "-----BEGIN PUBLIC KEY-----\n"
		    "AAAA\n-----END PUBLIC KEY-----\n";
		static const char bad_cert[] = "-----BEGIN CERTIFICATE-----\n"
		    "AAAA\n-----END CERTIFICATE-----\n";
		CHECK(sg_pubkey_from_pem(bad_key, strlen(bad_key), &got) != 0);
		CHECK(sg_pubkey_from_pem(bad_cert, strlen(bad_cert), &got) !=
		    0);
	}
	CHECK(got == sentinel);
	{
		/* A private key is not a public key. */
		BIO *b = BIO_new(BIO_s_mem());
		BUF_MEM *m = NULL;
		if (b != NULL && PEM_write_bio_PrivateKey(b, p256, NULL, NULL,
		    0, NULL, NULL) == 1) {
			BIO_get_mem_ptr(b, &m);
			CHECK(sg_pubkey_from_pem(m->data, m->length, &got) !=
			    0);
			CHECK(got == sentinel);
		} else
			CHECK(!"cannot write a private key PEM");
		BIO_free(b);
	}
}

static void
test_spki_sha256(void)
{
	EVP_PKEY *keys[] = { p256, p384, rsa2048, ed25519 };
	uint8_t out[32], want[32];
	unsigned char *der;
	unsigned int wlen;
	size_t i;
	int n;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		der = NULL;
		n = i2d_PUBKEY(keys[i], &der);
		CHECK(n > 0);
		wlen = 0;
		CHECK(EVP_Digest(der, (size_t)n, want, &wlen, EVP_sha256(),
		    NULL) == 1);
		OPENSSL_free(der);
		memset(out, 0, sizeof(out));
		CHECK_EQ_INT(sg_pubkey_spki_sha256(keys[i], out), 0);
		CHECK(memcmp(out, want, 32) == 0);
	}
	/* Private and public halves have the same SPKI digest. */
	{
		EVP_PKEY *pub = sg_fx_public_only(p256);
		uint8_t a[32], b[32];
		CHECK(pub != NULL);
		CHECK_EQ_INT(sg_pubkey_spki_sha256(p256, a), 0);
		CHECK_EQ_INT(sg_pubkey_spki_sha256(pub, b), 0);
		CHECK(memcmp(a, b, 32) == 0);
		CHECK_EQ_INT(sg_pubkey_spki_sha256(p256b, b), 0);
		CHECK(memcmp(a, b, 32) != 0);
		EVP_PKEY_free(pub);
	}
}

static void
test_sha256(void)
{
	static const uint8_t abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	uint8_t out[32];

	sg_sha256("abc", 3, out);
	CHECK(memcmp(out, abc, 32) == 0);
}

static void
test_digest_file(void)
{
	char dir[64], path[96];
	uint8_t out[SG_MAX_DIGEST], want[SG_MAX_DIGEST];
	unsigned char *data;
	size_t i, n, wlen, len;
	FILE *f;

	if (sg_fx_tmpdir("crypto", dir, sizeof(dir)) != 0) {
		CHECK(!"mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/artifact", dir);
	/* Larger than one read buffer, not a multiple of it. */
	n = 200001;
	if ((data = malloc(n)) == NULL) {
		CHECK(!"malloc");
		(void)sg_fx_rm_tree(dir);
		return;
	}
	for (i = 0; i < n; i++)
		data[i] = (unsigned char)(i * 31 + (i >> 8));
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f != NULL) {
		CHECK(fwrite(data, 1, n, f) == n);
		fclose(f);
	}
	for (i = 0; i < NDIGESTS; i++) {
		digest_of(digests[i], data, n, want, &wlen);
		len = 0;
		memset(out, 0, sizeof(out));
		CHECK_EQ_INT(sg_digest_file(path, digests[i], out, &len), 0);
		CHECK_EQ_INT(len, sg_digest_len(digests[i]));
		CHECK(memcmp(out, want, wlen) == 0);
	}
	/* A known vector. */
	f = fopen(path, "wb");
	if (f != NULL) {
		fputs("abc", f);
		fclose(f);
	}
	len = 0;
	CHECK_EQ_INT(sg_digest_file(path, SG_DIGEST_SHA256, out, &len), 0);
	CHECK_EQ_INT(len, 32);
	CHECK(out[0] == 0xba && out[1] == 0x78 && out[31] == 0xad);
	/* An empty file. */
	f = fopen(path, "wb");
	if (f != NULL)
		fclose(f);
	digest_of(SG_DIGEST_SHA512, "", 0, want, &wlen);
	CHECK_EQ_INT(sg_digest_file(path, SG_DIGEST_SHA512, out, &len), 0);
	CHECK_EQ_INT(len, 64);
	CHECK(memcmp(out, want, 64) == 0);

	len = 77;
	CHECK(sg_digest_file(path, SG_DIGEST_NONE, out, &len) != 0);
	unlink(path);
	CHECK(sg_digest_file(path, SG_DIGEST_SHA256, out, &len) != 0);
	CHECK_EQ_INT(len, 77);
	free(data);
	(void)sg_fx_rm_tree(dir);
}

/* ---- verification ---- */

static void
check_digest_scheme(EVP_PKEY *key, EVP_PKEY *other, enum sg_sig_scheme scheme,
    const char *what)
{
	uint8_t dig[SG_MAX_DIGEST + 1], sig[SG_MAX_SIG];
	size_t i, dlen, slen;
	EVP_PKEY *pub = sg_fx_public_only(key);

	CHECK(pub != NULL);
	for (i = 0; i < NDIGESTS; i++) {
		enum sg_digest_alg a = digests[i], b;
		int salt = scheme == SG_SIG_RSA_PSS ?
		    (int)sg_digest_len(a) : 0;
		int before = sg_test_failed_checks;

		digest_of(a, message, sizeof(message) - 1, dig, &dlen);
		slen = sign_digest(key, scheme, a, dig, dlen, salt, NULL, sig,
		    sizeof(sig));
		CHECK(slen > 0);

		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, sig, slen),
		    0);
		/* A flipped bit in the signature, then in the digest. */
		sig[slen / 2] ^= 0x04;
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, sig, slen),
		    SG_ERR_VERIFY);
		sig[slen / 2] ^= 0x04;
		dig[0] ^= 0x80;
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, sig, slen),
		    SG_ERR_VERIFY);
		dig[0] ^= 0x80;
		sig[slen - 1] ^= 0x01;
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, sig, slen),
		    SG_ERR_VERIFY);
		sig[slen - 1] ^= 0x01;
		/* Truncated signature, empty signature. */
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, sig,
		    slen - 1), SG_ERR_VERIFY);
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, sig, 0),
		    SG_ERR_VERIFY);
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, NULL, slen),
		    SG_ERR_VERIFY);
		/* Digest one byte short and one byte long. */
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen - 1, sig,
		    slen), SG_ERR_VERIFY);
		dig[dlen] = 0;
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen + 1, sig,
		    slen), SG_ERR_VERIFY);
		/*
		 * Another digest algorithm claimed for the same bytes.  For
		 * RSA also the right bytes cut to that algorithm's length
		 * (ECDSA by design signs only the leftmost bits of a digest, so
		 * there a cut digest is not expected to fail).
		 */
		for (b = SG_DIGEST_SHA256; b <= SG_DIGEST_SHA512; b++) {
			if (b == a)
				continue;
			CHECK_EQ_INT(sg_verify(pub, scheme, b, dig, dlen, sig,
			    slen), SG_ERR_VERIFY);
			if (scheme != SG_SIG_ECDSA && sg_digest_len(b) < dlen)
				CHECK_EQ_INT(sg_verify(pub, scheme, b, dig,
				    sg_digest_len(b), sig, slen),
				    SG_ERR_VERIFY);
		}
		CHECK_EQ_INT(sg_verify(pub, scheme, SG_DIGEST_NONE, dig, dlen,
		    sig, slen), SG_ERR_VERIFY);
		/* Another key of the same type. */
		CHECK_EQ_INT(sg_verify(other, scheme, a, dig, dlen, sig, slen),
		    SG_ERR_VERIFY);
		/* The right key under a scheme that does not fit it. */
		CHECK_EQ_INT(sg_verify(pub, SG_SIG_NONE, a, dig, dlen, sig,
		    slen), SG_ERR_VERIFY);
		CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, a, dig, dlen, sig,
		    slen), SG_ERR_VERIFY);
		if (scheme == SG_SIG_ECDSA) {
			CHECK_EQ_INT(sg_verify(pub, SG_SIG_RSA_PKCS1, a, dig,
			    dlen, sig, slen), SG_ERR_VERIFY);
			CHECK_EQ_INT(sg_verify(pub, SG_SIG_RSA_PSS, a, dig,
			    dlen, sig, slen), SG_ERR_VERIFY);
		} else {
			CHECK_EQ_INT(sg_verify(pub, SG_SIG_ECDSA, a, dig, dlen,
			    sig, slen), SG_ERR_VERIFY);
			/* PKCS#1 v1.5 is not PSS and the other way round. */
			CHECK_EQ_INT(sg_verify(pub, scheme == SG_SIG_RSA_PSS ?
			    SG_SIG_RSA_PKCS1 : SG_SIG_RSA_PSS, a, dig, dlen,
			    sig, slen), SG_ERR_VERIFY);
		}
		CHECK_EQ_INT(sg_verify(NULL, scheme, a, dig, dlen, sig, slen),
		    SG_ERR_VERIFY);
		/* Unchanged inputs still verify (nothing above mutated). */
		CHECK_EQ_INT(sg_verify(pub, scheme, a, dig, dlen, sig, slen),
		    0);
		if (sg_test_failed_checks != before)
			fprintf(stderr, "  (%s, %s)\n", what,
			    sg_digest_name(a));
	}
	EVP_PKEY_free(pub);
}

static void
test_verify_ecdsa_p256(void)
{
	check_digest_scheme(p256, p256b, SG_SIG_ECDSA, "ecdsa-p256");
}

static void
test_verify_ecdsa_p384(void)
{
	check_digest_scheme(p384, p256, SG_SIG_ECDSA, "ecdsa-p384");
}

static void
test_verify_rsa_pkcs1(void)
{
	check_digest_scheme(rsa2048, rsa2048b, SG_SIG_RSA_PKCS1, "rsa-pkcs1");
}

static void
test_verify_rsa_pss(void)
{
	check_digest_scheme(rsa2048, rsa2048b, SG_SIG_RSA_PSS, "rsa-pss");
}

static void
test_verify_rsa_pkcs1_digestinfo(void)
{
	uint8_t dig[SG_MAX_DIGEST], sig[SG_MAX_SIG];
	size_t dlen, slen;

	/* PKCS#1 v1.5 binds the hash OID: a SHA-512 signature over a digest
	 * is refused when claimed as SHA-384 over the first 48 bytes. */
	digest_of(SG_DIGEST_SHA512, message, sizeof(message) - 1, dig, &dlen);
	slen = sign_digest(rsa2048, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA512, dig,
	    dlen, 0, NULL, sig, sizeof(sig));
	CHECK(slen == 256);
	CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA384,
	    dig, 48, sig, slen), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA512,
	    dig, 64, sig, slen), 0);
}

static void
test_verify_pss_parameters(void)
{
	uint8_t dig[SG_MAX_DIGEST], sig[SG_MAX_SIG];
	size_t i, dlen, slen;

	for (i = 0; i < NDIGESTS; i++) {
		enum sg_digest_alg a = digests[i];
		digest_of(a, message, sizeof(message) - 1, dig, &dlen);

		/* Salt length 0: valid PSS, but not what the signer makes. */
		slen = sign_digest(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen, 0,
		    NULL, sig, sizeof(sig));
		CHECK(slen > 0);
		CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen,
		    sig, slen), SG_ERR_VERIFY);
		/* Maximum salt length. */
		slen = sign_digest(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen,
		    RSA_PSS_SALTLEN_MAX, NULL, sig, sizeof(sig));
		CHECK(slen > 0);
		CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen,
		    sig, slen), SG_ERR_VERIFY);
		/* MGF1 with another hash. */
		slen = sign_digest(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen,
		    (int)dlen, EVP_sha1(), sig, sizeof(sig));
		CHECK(slen > 0);
		CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen,
		    sig, slen), SG_ERR_VERIFY);
		/* The salt length set through the "digest" constant is the
		 * same as an explicit digest length. */
		slen = sign_digest(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen,
		    RSA_PSS_SALTLEN_DIGEST, NULL, sig, sizeof(sig));
		CHECK(slen > 0);
		CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_RSA_PSS, a, dig, dlen,
		    sig, slen), 0);
	}
}

static void
test_verify_weak_or_unsupported_keys(void)
{
	uint8_t dig[SG_MAX_DIGEST], sig[SG_MAX_SIG];
	size_t dlen, slen;

	/* Signatures that OpenSSL itself accepts, from keys signgate does
	 * not support: RSA-1024 and P-521. */
	digest_of(SG_DIGEST_SHA256, message, sizeof(message) - 1, dig, &dlen);
	slen = sign_digest(rsa1024, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA256, dig,
	    dlen, 0, NULL, sig, sizeof(sig));
	CHECK(slen == 128);
	CHECK_EQ_INT(sg_verify(rsa1024, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA256,
	    dig, dlen, sig, slen), SG_ERR_VERIFY);
	slen = sign_digest(rsa1024, SG_SIG_RSA_PSS, SG_DIGEST_SHA256, dig,
	    dlen, (int)dlen, NULL, sig, sizeof(sig));
	CHECK(slen == 128);
	CHECK_EQ_INT(sg_verify(rsa1024, SG_SIG_RSA_PSS, SG_DIGEST_SHA256,
	    dig, dlen, sig, slen), SG_ERR_VERIFY);

	digest_of(SG_DIGEST_SHA512, message, sizeof(message) - 1, dig, &dlen);
	slen = sign_digest(p521, SG_SIG_ECDSA, SG_DIGEST_SHA512, dig, dlen, 0,
	    NULL, sig, sizeof(sig));
	CHECK(slen > 0);
	CHECK_EQ_INT(sg_verify(p521, SG_SIG_ECDSA, SG_DIGEST_SHA512, dig,
	    dlen, sig, slen), SG_ERR_VERIFY);
}

static void
test_verify_eddsa(void)
{
	uint8_t sig[128], msg[sizeof(message)];
	EVP_PKEY *pub = sg_fx_public_only(ed25519);
	uint8_t dig[32];
	size_t slen, dlen;

	CHECK(pub != NULL);
	memcpy(msg, message, sizeof(msg));
	slen = sign_ed25519(ed25519, msg, sizeof(msg), sig, sizeof(sig));
	CHECK_EQ_INT(slen, 64);
	/* The digest algorithm is ignored for EdDSA. */
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen), 0);
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, SG_DIGEST_SHA512, msg,
	    sizeof(msg), sig, slen), 0);
	sig[10] ^= 0x01;
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen), SG_ERR_VERIFY);
	sig[10] ^= 0x01;
	msg[0] ^= 0x01;
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen), SG_ERR_VERIFY);
	msg[0] ^= 0x01;
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg) - 1, sig, slen), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen - 1), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_verify(ed25519b, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen), SG_ERR_VERIFY);
	/* Wrong scheme for the key, and wrong key type for the scheme. */
	digest_of(SG_DIGEST_SHA256, msg, sizeof(msg), dig, &dlen);
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_ECDSA, SG_DIGEST_SHA256, dig,
	    dlen, sig, slen), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_verify(p256, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen), SG_ERR_VERIFY);
	/* Still good. */
	CHECK_EQ_INT(sg_verify(pub, SG_SIG_EDDSA, SG_DIGEST_NONE, msg,
	    sizeof(msg), sig, slen), 0);
	EVP_PKEY_free(pub);
}

static void
test_verify_cross_type(void)
{
	uint8_t dig[SG_MAX_DIGEST], sig[SG_MAX_SIG];
	size_t dlen, slen;

	digest_of(SG_DIGEST_SHA256, message, sizeof(message) - 1, dig, &dlen);
	/* An RSA signature under an ECDSA scheme with an RSA key, an ECDSA
	 * signature under RSA schemes with an EC key. */
	slen = sign_digest(rsa2048, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA256, dig,
	    dlen, 0, NULL, sig, sizeof(sig));
	CHECK_EQ_INT(sg_verify(rsa2048, SG_SIG_ECDSA, SG_DIGEST_SHA256, dig,
	    dlen, sig, slen), SG_ERR_VERIFY);
	slen = sign_digest(p256, SG_SIG_ECDSA, SG_DIGEST_SHA256, dig, dlen, 0,
	    NULL, sig, sizeof(sig));
	CHECK_EQ_INT(sg_verify(p256, SG_SIG_RSA_PKCS1, SG_DIGEST_SHA256, dig,
	    dlen, sig, slen), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_verify(p256, SG_SIG_RSA_PSS, SG_DIGEST_SHA256, dig,
	    dlen, sig, slen), SG_ERR_VERIFY);
	/* A P-256 signature does not verify with the P-384 key. */
	CHECK_EQ_INT(sg_verify(p384, SG_SIG_ECDSA, SG_DIGEST_SHA256, dig,
	    dlen, sig, slen), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_verify(p256, SG_SIG_ECDSA, SG_DIGEST_SHA256, dig,
	    dlen, sig, slen), 0);
}

/* ---- ECDSA encodings ---- */

static int
raw_of(const uint8_t *der, size_t len, size_t n, uint8_t *raw)
{
	const unsigned char *p = der;
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	const BIGNUM *r, *ss;
	int ok;

	if (s == NULL)
		return 0;
	ECDSA_SIG_get0(s, &r, &ss);
	ok = BN_bn2binpad(r, raw, (int)n) == (int)n &&
	    BN_bn2binpad(ss, raw + n, (int)n) == (int)n;
	ECDSA_SIG_free(s);
	return ok;
}

static void
test_ecdsa_raw_to_der(void)
{
	struct { EVP_PKEY *k; size_t n; enum sg_digest_alg a; } c[] = {
		{ p256, 32, SG_DIGEST_SHA256 },
		{ p384, 48, SG_DIGEST_SHA384 },
		{ p521, 66, SG_DIGEST_SHA512 },
	};
	uint8_t dig[SG_MAX_DIGEST], sig[SG_MAX_SIG], raw[132], der[200];
	size_t i, k, dlen, slen, len;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		/* Several signatures, so that r and s with the high bit set
		 * (a leading zero in DER) and without both occur. */
		for (k = 0; k < 8; k++) {
			digest_of(c[i].a, &k, sizeof(k), dig, &dlen);
			slen = sign_digest(c[i].k, SG_SIG_ECDSA, c[i].a, dig,
			    dlen, 0, NULL, sig, sizeof(sig));
			CHECK(slen > 0);
			CHECK(raw_of(sig, slen, c[i].n, raw));
			len = 0;
			CHECK_EQ_INT(sg_ecdsa_raw_to_der(raw, 2 * c[i].n, der,
			    sizeof(der), &len), 0);
			CHECK_EQ_INT(len, slen);
			CHECK(memcmp(der, sig, slen) == 0);
			if (c[i].k != p521)
				CHECK_EQ_INT(sg_verify(c[i].k, SG_SIG_ECDSA,
				    c[i].a, dig, dlen, der, len), 0);
		}
	}

	/* Leading zero bytes in r are dropped, a high bit gets a 0x00. */
	{
		uint8_t r2[64];
		ECDSA_SIG *s = ECDSA_SIG_new();
		BIGNUM *br, *bs;
		unsigned char *p = NULL;
		int n;

		memset(r2, 0, 32);
		r2[31] = 0x01;
		memset(r2 + 32, 0xff, 32);
		br = BN_bin2bn(r2, 32, NULL);
		bs = BN_bin2bn(r2 + 32, 32, NULL);
		CHECK(s != NULL && br != NULL && bs != NULL &&
		    ECDSA_SIG_set0(s, br, bs) == 1);
		n = i2d_ECDSA_SIG(s, &p);
		CHECK(n == 2 + 3 + 2 + 33);
		len = 0;
		CHECK_EQ_INT(sg_ecdsa_raw_to_der(r2, 64, der, sizeof(der),
		    &len), 0);
		CHECK_EQ_INT(len, n);
		CHECK(p != NULL && memcmp(der, p, (size_t)n) == 0);
		/* Exactly the needed room, then one byte less. */
		CHECK_EQ_INT(sg_ecdsa_raw_to_der(r2, 64, der, (size_t)n,
		    &len), 0);
		len = 99;
		CHECK_EQ_INT(sg_ecdsa_raw_to_der(r2, 64, der, (size_t)n - 1,
		    &len), SG_ERR_BUFFER);
		CHECK_EQ_INT(len, 99);
		OPENSSL_free(p);
		ECDSA_SIG_free(s);
	}

	/* Bad lengths. */
	len = 99;
	memset(raw, 1, sizeof(raw));
	CHECK_EQ_INT(sg_ecdsa_raw_to_der(raw, 0, der, sizeof(der), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_ecdsa_raw_to_der(raw, 63, der, sizeof(der), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_ecdsa_raw_to_der(raw, 134, der, sizeof(der), &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(len, 99);
}

static EVP_PKEY *
keygen_ec(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

static void
test_setup(void)
{
	p256 = keygen_ec("P-256");
	p256b = keygen_ec("P-256");
	p384 = keygen_ec("P-384");
	p521 = keygen_ec("P-521");
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa2048b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	ed25519b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	CHECK(p256 && p256b && p384 && p521 && rsa2048 && rsa2048b &&
	    rsa1024 && ed25519 && ed25519b);
	if (!(p256 && p256b && p384 && p521 && rsa2048 && rsa2048b &&
	    rsa1024 && ed25519 && ed25519b)) {
		fprintf(stderr, "  cannot generate keys\n");
		exit(1);
	}
}

static void
test_teardown(void)
{
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p256b);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p521);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa2048b);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(ed25519);
	EVP_PKEY_free(ed25519b);
}

/*
 * Which key type makes which scheme: the one table every layer asks
 * (sg_scheme_fits).  The full matrix, written out here, plus the policy
 * names (each names a pair that fits) and sg_verify() refusing every pair
 * that does not fit, whatever the signature.
 */
static void
test_scheme_table(void)
{
	static const enum sg_key_alg algs[] = {
		SG_ALG_NONE, SG_ALG_ECDSA_P256, SG_ALG_ECDSA_P384, SG_ALG_RSA,
		SG_ALG_ED25519,
	};
	static const enum sg_sig_scheme schemes[] = {
		SG_SIG_NONE, SG_SIG_ECDSA, SG_SIG_RSA_PKCS1, SG_SIG_RSA_PSS,
		SG_SIG_EDDSA,
	};
	/* rows: algs; columns: schemes */
	static const int want[5][5] = {
		{ 0, 0, 0, 0, 0 },      /* none */
		{ 0, 1, 0, 0, 0 },      /* P-256 */
		{ 0, 1, 0, 0, 0 },      /* P-384 */
		{ 0, 0, 1, 1, 0 },      /* RSA */
		{ 0, 0, 0, 0, 1 },      /* Ed25519 */
	};
	static const char *const names[] = {
		"ecdsa-p256", "ecdsa-p384", "rsa-pkcs1", "rsa-pss", "ed25519",
	};
	EVP_PKEY *keys[5];
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
	uint8_t d[32], junk[64];
	size_t i, j;

	for (i = 0; i < 5; i++)
		for (j = 0; j < 5; j++) {
			if (sg_scheme_fits(algs[i], schemes[j]) != want[i][j])
				fprintf(stderr, "  alg %zu scheme %zu\n", i, j);
			CHECK_EQ_INT(sg_scheme_fits(algs[i], schemes[j]),
			    want[i][j]);
		}
	CHECK(!sg_scheme_fits((enum sg_key_alg)99, SG_SIG_ECDSA));
	CHECK(!sg_scheme_fits(SG_ALG_RSA, (enum sg_sig_scheme)99));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECK_EQ_INT(sg_scheme_from_name(names[i], &alg, &scheme), 0);
		CHECK(sg_scheme_fits(alg, scheme));
	}

	/* sg_verify() asks the same table: a pair that does not fit is
	 * refused before any signature is looked at. */
	keys[0] = p521;
	keys[1] = p256;
	keys[2] = p384;
	keys[3] = rsa2048;
	keys[4] = ed25519;
	memset(d, 1, sizeof(d));
	memset(junk, 2, sizeof(junk));
	for (i = 0; i < 5; i++)
		for (j = 0; j < 5; j++)
			if (!want[i][j])
				CHECK_EQ_INT(sg_verify(keys[i], schemes[j],
				    SG_DIGEST_SHA256, d, sizeof(d), junk,
				    sizeof(junk)), SG_ERR_VERIFY);
}

SG_TEST_MAIN("crypto",
    T(test_setup),
    T(test_digest_names),
    T(test_scheme_names),
    T(test_scheme_table),
    T(test_pubkey_alg),
    T(test_pubkey_from_pem),
    T(test_spki_sha256),
    T(test_sha256),
    T(test_digest_file),
    T(test_verify_ecdsa_p256),
    T(test_verify_ecdsa_p384),
    T(test_verify_rsa_pkcs1),
    T(test_verify_rsa_pss),
    T(test_verify_rsa_pkcs1_digestinfo),
    T(test_verify_pss_parameters),
    T(test_verify_weak_or_unsupported_keys),
    T(test_verify_eddsa),
    T(test_verify_cross_type),
    T(test_ecdsa_raw_to_der),
    T(test_teardown))
