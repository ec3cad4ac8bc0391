/*
 * Named sizes shared by more than one module.  A buffer that holds one of
 * these values is declared with the name (plus one for a terminating NUL
 * where it holds a string), never with a bare number.
 */
#ifndef SG_LIMITS_H
#define SG_LIMITS_H

/* PKCS#11: CK_TOKEN_INFO.label is 32 bytes, space-padded. */
#define SG_TOKEN_LABEL_MAX 32
/* The longest RFC 7512 URI we parse. */
#define SG_P11_URI_MAX 4096

/* ---- the PKCS#11 layer (src/p11.c, include/sg_p11.h) ---- */
/* PKCS#11: CK_TOKEN_INFO.serialNumber is 16 bytes, space-padded. */
#define SG_TOKEN_SERIAL_MAX 16
/* PKCS#11: CK_TOKEN_INFO.manufacturerID is 32 bytes, space-padded. */
#define SG_TOKEN_MANUFACTURER_MAX 32
/* PKCS#11: CK_TOKEN_INFO.model is 16 bytes, space-padded. */
#define SG_TOKEN_MODEL_MAX 16
/* Bytes of a P-256 field element: a coordinate, or r or s of a signature. */
#define SG_EC_P256_FIELD_LEN 32
/* Bytes of a P-384 field element. */
#define SG_EC_P384_FIELD_LEN 48
/* Bytes of a P-521 field element, the largest curve's. */
#define SG_EC_P521_FIELD_LEN 66
/* A raw ECDSA signature r||s on the largest curve (P-521). */
#define SG_ECDSA_RAW_MAX (2 * SG_EC_P521_FIELD_LEN)

#endif
