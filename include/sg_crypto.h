/*
 * Algorithms and OpenSSL helpers shared by the daemon and the CLI: digest
 * names and sizes, public keys (PEM, SPKI digest), and signature
 * verification for every scheme signgate produces or accepts.
 */
#ifndef SG_CRYPTO_H
#define SG_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

enum sg_key_alg {
	SG_ALG_NONE = 0,
	SG_ALG_ECDSA_P256,
	SG_ALG_ECDSA_P384,
	SG_ALG_RSA,       /* any modulus size >= 2048 */
	SG_ALG_ED25519,
};

enum sg_sig_scheme {
	SG_SIG_NONE = 0,
	SG_SIG_ECDSA,         /* over the digest; DER (SEQUENCE r, s) */
	SG_SIG_RSA_PKCS1,     /* PKCS#1 v1.5 over DigestInfo(digest) */
	SG_SIG_RSA_PSS,       /* PSS, MGF1 with the same hash, salt = hash len */
	SG_SIG_EDDSA,         /* pure Ed25519 over the given bytes */
};

enum sg_digest_alg {
	SG_DIGEST_NONE = 0,
	SG_DIGEST_SHA256,
	SG_DIGEST_SHA384,
	SG_DIGEST_SHA512,
};

#define SG_MAX_DIGEST 64
#define SG_MAX_SIG 1024   /* enough for RSA-8192 and DER ECDSA P-521 */

size_t sg_digest_len(enum sg_digest_alg a);               /* 0 for NONE */
const char *sg_digest_name(enum sg_digest_alg a);         /* "sha256" */
enum sg_digest_alg sg_digest_from_name(const char *name); /* NONE if unknown */
const EVP_MD *sg_digest_md(enum sg_digest_alg a);

/* Policy algorithm names: "ecdsa-p256", "ecdsa-p384", "rsa-pkcs1",
 * "rsa-pss", "ed25519". */
const char *sg_scheme_name(enum sg_key_alg alg, enum sg_sig_scheme s);
int sg_scheme_from_name(const char *name, enum sg_key_alg *ret_alg,
    enum sg_sig_scheme *ret_scheme);
/* The algorithm of a public key (NONE for unsupported types/curves). */
enum sg_key_alg sg_pubkey_alg(EVP_PKEY *pub);
/* 1 if a key of this algorithm can make signatures of this scheme (ECDSA:
 * P-256/P-384; RSA PKCS#1 and PSS: RSA; EdDSA: Ed25519), 0 otherwise.
 * Every layer (policy keys, signer, PKCS#11, CMS, verification) asks
 * this one function. */
int sg_scheme_fits(enum sg_key_alg alg, enum sg_sig_scheme scheme);

/* SHA-256 of a buffer. */
void sg_sha256(const void *data, size_t len, uint8_t out[32]);
/* Hashes a whole file with the algorithm. */
int sg_digest_file(const char *path, enum sg_digest_alg a,
    uint8_t *out, size_t *ret_len);

/* Loads a public key from a PEM "PUBLIC KEY" or the first "CERTIFICATE". */
int sg_pubkey_from_pem(const char *pem, size_t len, EVP_PKEY **ret);
/* SubjectPublicKeyInfo PEM, malloc'd NUL-terminated. */
int sg_pubkey_to_pem(EVP_PKEY *pub, char **ret);
/* SHA-256 of the DER SubjectPublicKeyInfo. */
int sg_pubkey_spki_sha256(EVP_PKEY *pub, uint8_t out[32]);

/*
 * Verifies sig over data.  For ECDSA, RSA PKCS#1 and PSS, data is a digest
 * of digest_alg (length checked); for EdDSA, data is the message and
 * digest_alg is ignored.  Returns 0 only if the signature verifies and the
 * key's type fits the scheme; SG_ERR_VERIFY otherwise.
 */
int sg_verify(EVP_PKEY *pub, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    const uint8_t *sig, size_t sig_len) __attribute__((warn_unused_result));

/* Converts a raw r||s ECDSA signature (2*n bytes) to DER. */
int sg_ecdsa_raw_to_der(const uint8_t *raw, size_t len, uint8_t *out,
    size_t cap, size_t *ret_len);

#endif
