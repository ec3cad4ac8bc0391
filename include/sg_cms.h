/*
 * Detached CMS SignedData (RFC 5652) built from a digest alone: the
 * artifact never reaches the gateway.  Signed attributes: contentType
 * (id-data), messageDigest (the artifact digest), signingTime.  The
 * signature over the DER of the signed attributes is made by a callback
 * (the HSM through the signer), so no private key is ever in this process.
 * ECDSA, RSA PKCS#1 v1.5 and RSA-PSS (with its RSASSA-PSS-params algorithm
 * identifier: same hash for MGF1, salt length = hash length, trailer 1).
 */
#ifndef SG_CMS_H
#define SG_CMS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ts.h>

#include "sg_crypto.h"

#define SG_CMS_MAX (1024 * 1024)

/* Signs `digest` (of digest_alg) with the scheme; writes the signature. */
typedef int (*sg_cms_sign_fn)(void *ctx, enum sg_digest_alg digest_alg,
    const uint8_t *digest, size_t len, uint8_t *sig, size_t cap,
    size_t *ret_len);

/*
 * Builds the CMS.  chain_pem holds the signer's certificate first, then
 * any intermediates/CA (all are included in the SignedData).  pub must be
 * the leaf certificate's public key (checked).  Returns DER, malloc'd.
 */
int sg_cms_build(const char *chain_pem, size_t chain_len, EVP_PKEY *pub,
    enum sg_sig_scheme scheme, enum sg_digest_alg digest_alg,
    const uint8_t *digest, size_t digest_len, time_t signing_time,
    sg_cms_sign_fn sign, void *sign_ctx, uint8_t **ret_der, size_t *ret_len);

/* The signature value of the (single) SignerInfo, malloc'd. */
int sg_cms_signature_value(const uint8_t *der, size_t len, uint8_t **ret,
    size_t *ret_len);

/* Adds an RFC 3161 TimeStampToken (DER ContentInfo) as the unsigned
 * attribute id-aa-timeStampToken of the SignerInfo; returns new DER. */
int sg_cms_add_timestamp(const uint8_t *der, size_t len,
    const uint8_t *token, size_t token_len, uint8_t **ret, size_t *ret_len);

/* The TSTInfo of a TimeStampToken: one DER ContentInfo with nothing after
 * it (the caller frees it); NULL when the bytes are not one. */
TS_TST_INFO *sg_cms_token_info(const uint8_t *token, size_t len);

/* The id-aa-timeStampToken of the SignerInfo (DER), malloc'd;
 * SG_ERR_NOT_FOUND when there is none. */
int sg_cms_get_timestamp(const uint8_t *der, size_t len, uint8_t **ret,
    size_t *ret_len);

/* Verifies a detached CMS against a digest and trusted CA PEM (for tests
 * and the CLI): signature, messageDigest == digest, chain to the CA. */
int sg_cms_verify_digest(const uint8_t *der, size_t len,
    enum sg_digest_alg digest_alg, const uint8_t *digest, size_t digest_len,
    const char *ca_pem, size_t ca_len) __attribute__((warn_unused_result));

#endif
