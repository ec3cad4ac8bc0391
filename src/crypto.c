/*
 * OpenSSL helpers: digests, public keys and signature verification.
 *
 * Verification is strict about the pairing of key type and scheme: an RSA
 * key never verifies an "ecdsa" signature and so on, and digests must have
 * exactly the length of their algorithm.  PSS is checked with the salt
 * length fixed to the digest length (what the signer produces), not
 * "auto", so that a signature made with other parameters is refused.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_util.h"

_Static_assert(SG_DIGEST_HEX_SIZE == 2 * SG_MAX_DIGEST + 1,
    "a digest's hex fits SG_DIGEST_HEX_SIZE");

size_t
sg_digest_len(enum sg_digest_alg a)
{
	switch (a) {
	case SG_DIGEST_SHA256: return 32;
	case SG_DIGEST_SHA384: return 48;
	case SG_DIGEST_SHA512: return 64;
	default: return 0;
	}
}

const char *
sg_digest_name(enum sg_digest_alg a)
{
	switch (a) {
	case SG_DIGEST_SHA256: return "sha256";
	case SG_DIGEST_SHA384: return "sha384";
	case SG_DIGEST_SHA512: return "sha512";
	default: return "none";
	}
}

enum sg_digest_alg
sg_digest_from_name(const char *name)
{
	if (name == NULL)
		return SG_DIGEST_NONE;
	if (strcmp(name, "sha256") == 0)
		return SG_DIGEST_SHA256;
	if (strcmp(name, "sha384") == 0)
		return SG_DIGEST_SHA384;
	if (strcmp(name, "sha512") == 0)
		return SG_DIGEST_SHA512;
	return SG_DIGEST_NONE;
}

const EVP_MD *
sg_digest_md(enum sg_digest_alg a)
{
	switch (a) {
	case SG_DIGEST_SHA256: return EVP_sha256();
	case SG_DIGEST_SHA384: return EVP_sha384();
	case SG_DIGEST_SHA512: return EVP_sha512();
	default: return NULL;
	}
}

static const struct {
	const char *name;
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
} schemes[] = {
	{ "ecdsa-p256", SG_ALG_ECDSA_P256, SG_SIG_ECDSA },
	{ "ecdsa-p384", SG_ALG_ECDSA_P384, SG_SIG_ECDSA },
	{ "rsa-pkcs1", SG_ALG_RSA, SG_SIG_RSA_PKCS1 },
	{ "rsa-pss", SG_ALG_RSA, SG_SIG_RSA_PSS },
	{ "ed25519", SG_ALG_ED25519, SG_SIG_EDDSA },
};

const char *
sg_scheme_name(enum sg_key_alg alg, enum sg_sig_scheme s)
{
	size_t i;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (schemes[i].alg == alg && schemes[i].scheme == s)
			return schemes[i].name;
	return NULL;
}

int
sg_scheme_from_name(const char *name, enum sg_key_alg *ret_alg,
    enum sg_sig_scheme *ret_scheme)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(schemes) / sizeof(schemes[0]);
	    i++) {
		if (strcmp(schemes[i].name, name) == 0) {
			*ret_alg = schemes[i].alg;
			*ret_scheme = schemes[i].scheme;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}

enum sg_key_alg
sg_pubkey_alg(EVP_PKEY *pub)
{
	char group[64];
	size_t glen = 0;

	if (pub == NULL)
		return SG_ALG_NONE;
	switch (EVP_PKEY_get_base_id(pub)) {
	case EVP_PKEY_RSA:
		return EVP_PKEY_get_bits(pub) >= 2048 ? SG_ALG_RSA :
		    SG_ALG_NONE;
	case EVP_PKEY_ED25519:
		return SG_ALG_ED25519;
	case EVP_PKEY_EC:
		if (!EVP_PKEY_get_utf8_string_param(pub,
		    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen))
			return SG_ALG_NONE;
		if (strcmp(group, "prime256v1") == 0 ||
		    strcmp(group, "P-256") == 0)
			return SG_ALG_ECDSA_P256;
		if (strcmp(group, "secp384r1") == 0 ||
		    strcmp(group, "P-384") == 0)
			return SG_ALG_ECDSA_P384;
		return SG_ALG_NONE;
	}
	return SG_ALG_NONE;
}

void
sg_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int olen = 32;

	if (!EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL))
		memset(out, 0, 32);  /* unreachable with the default provider */
}

int
sg_digest_file(const char *path, enum sg_digest_alg a, uint8_t *out,
    size_t *ret_len)
{
	const EVP_MD *md = sg_digest_md(a);
	EVP_MD_CTX *ctx = NULL;
	unsigned char buf[65536];
	unsigned int olen = 0;
	FILE *f = NULL;
	size_t n;
	int r = SG_ERR_INTERNAL;

	if (md == NULL)
		return SG_ERR_INVALID;
	if ((f = fopen(path, "rbe")) == NULL)
		return SG_ERR_IO;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    !EVP_DigestInit_ex(ctx, md, NULL)) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		if (!EVP_DigestUpdate(ctx, buf, n)) {
			r = SG_ERR_CRYPTO;
			goto out;
		}
	}
	if (ferror(f)) {
		r = SG_ERR_IO;
		goto out;
	}
	if (!EVP_DigestFinal_ex(ctx, out, &olen)) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	*ret_len = olen;
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	fclose(f);
	return r;
}

int
sg_pubkey_from_pem(const char *pem, size_t len, EVP_PKEY **ret)
{
	BIO *bio = NULL;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	int r = SG_ERR_INVALID;

	if (len > INT32_MAX)
		return SG_ERR_TOO_LARGE;
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		return SG_ERR_NOMEM;
	if (memmem(pem, len, "-----BEGIN CERTIFICATE-----", 27) != NULL) {
		if ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
			goto out;
		if ((pk = X509_get_pubkey(x)) == NULL)
			goto out;
	} else if ((pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL)
		goto out;
	*ret = pk;
	pk = NULL;
	r = 0;
out:
	EVP_PKEY_free(pk);
	X509_free(x);
	BIO_free(bio);
	return r;
}

int
sg_pubkey_to_pem(EVP_PKEY *pub, char **ret)
{
	BIO *bio;
	BUF_MEM *mem = NULL;
	char *s;
	int r = SG_ERR_CRYPTO;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return SG_ERR_NOMEM;
	if (!PEM_write_bio_PUBKEY(bio, pub))
		goto out;
	BIO_get_mem_ptr(bio, &mem);
	if ((s = strndup(mem->data, mem->length)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	*ret = s;
	r = 0;
out:
	BIO_free(bio);
	return r;
}

int
sg_pubkey_spki_sha256(EVP_PKEY *pub, uint8_t out[32])
{
	unsigned char *der = NULL;
	int len;

	if ((len = i2d_PUBKEY(pub, &der)) <= 0)
		return SG_ERR_CRYPTO;
	sg_sha256(der, (size_t)len, out);
	OPENSSL_free(der);
	return 0;
}

/* The one table of which key type makes which signature scheme. */
int
sg_scheme_fits(enum sg_key_alg alg, enum sg_sig_scheme scheme)
{
	switch (scheme) {
	case SG_SIG_ECDSA:
		return alg == SG_ALG_ECDSA_P256 || alg == SG_ALG_ECDSA_P384;
	case SG_SIG_RSA_PKCS1:
	case SG_SIG_RSA_PSS:
		return alg == SG_ALG_RSA;
	case SG_SIG_EDDSA:
		return alg == SG_ALG_ED25519;
	default:
		return 0;
	}
}

int
sg_verify(EVP_PKEY *pub, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    const uint8_t *sig, size_t sig_len)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	const EVP_MD *md;
	int r = SG_ERR_VERIFY;

	if (pub == NULL || sig == NULL || sig_len == 0 ||
	    !sg_scheme_fits(sg_pubkey_alg(pub), scheme))
		return SG_ERR_VERIFY;
	if (scheme == SG_SIG_EDDSA) {
		if ((mctx = EVP_MD_CTX_new()) == NULL)
			return SG_ERR_NOMEM;
		if (EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pub) == 1 &&
		    EVP_DigestVerify(mctx, sig, sig_len, data, data_len) == 1)
			r = 0;
		EVP_MD_CTX_free(mctx);
		return r;
	}
	if ((md = sg_digest_md(digest_alg)) == NULL ||
	    data_len != sg_digest_len(digest_alg))
		return SG_ERR_VERIFY;
	if ((pctx = EVP_PKEY_CTX_new(pub, NULL)) == NULL)
		return SG_ERR_NOMEM;
	if (EVP_PKEY_verify_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, md) != 1)
		goto out;
	if (scheme == SG_SIG_RSA_PKCS1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
		goto out;
	if (scheme == SG_SIG_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
	    (int)sg_digest_len(digest_alg)) != 1))
		goto out;
	if (EVP_PKEY_verify(pctx, sig, sig_len, data, data_len) == 1)
		r = 0;
out:
	EVP_PKEY_CTX_free(pctx);
	return r;
}

int
sg_ecdsa_raw_to_der(const uint8_t *raw, size_t len, uint8_t *out,
    size_t cap, size_t *ret_len)
{
	ECDSA_SIG *s = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *p = out;
	int n, r = SG_ERR_CRYPTO;

	if (len == 0 || len % 2 != 0 || len > 2 * 66)
		return SG_ERR_INVALID;
	if ((s = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(raw, (int)(len / 2), NULL)) == NULL ||
	    (bs = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL)) == NULL)
		goto out;
	if (!ECDSA_SIG_set0(s, br, bs))
		goto out;
	br = bs = NULL;  /* transferred */
	if ((n = i2d_ECDSA_SIG(s, NULL)) <= 0)
		goto out;
	if ((size_t)n > cap) {
		r = SG_ERR_BUFFER;
		goto out;
	}
	if (i2d_ECDSA_SIG(s, &p) != n)
		goto out;
	*ret_len = (size_t)n;
	r = 0;
out:
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(s);
	return r;
}
