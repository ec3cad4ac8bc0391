/*
 * Named sizes shared by more than one module.  A buffer that holds one of
 * these values is declared with the name, never with a bare number.
 *
 * Two spellings, one rule: NAME_LEN or NAME_MAX counts the characters of
 * a string (no NUL); NAME_SIZE is the buffer that holds it, NUL included.
 * A fixed-size binary value has only a _MAX (its bytes).
 */
#ifndef SG_LIMITS_H
#define SG_LIMITS_H

/* PKCS#11: CK_TOKEN_INFO.label is 32 bytes, space-padded. */
#define SG_TOKEN_LABEL_MAX 32
/* A token label as a C string. */
#define SG_TOKEN_LABEL_SIZE (SG_TOKEN_LABEL_MAX + 1)
/* CK_TOKEN_INFO.manufacturerID: 32 bytes; serialNumber and model: 16;
 * all space-padded. */
#define SG_TOKEN_MANUFACTURER_MAX 32
#define SG_TOKEN_SERIAL_MAX 16
#define SG_TOKEN_MODEL_MAX 16
/* The longest RFC 7512 URI we parse. */
#define SG_P11_URI_MAX 4096
/* The longest CKA_ID a policy or a key spec may name, in bytes. */
#define SG_P11_ID_MAX 64

/* A name (principal, key, group, policy, site, CKA_LABEL, officer). */
#define SG_NAME_LEN_MAX 63
/* A name as a C string. */
#define SG_NAME_SIZE (SG_NAME_LEN_MAX + 1)

/* A request id: 128 random bits as lower-case hex. */
#define SG_REQUEST_ID_LEN 32
/* A request id as a C string. */
#define SG_REQUEST_ID_SIZE (SG_REQUEST_ID_LEN + 1)

/* The longest digest signed (SHA-512, SG_MAX_DIGEST bytes) as lower-case
 * hex, as a C string. */
#define SG_DIGEST_HEX_SIZE (2 * 64 + 1)

/* A SHA-256 digest as lower-case hex (SPKI, policy, statement, body). */
#define SG_SHA256_HEX_LEN 64
/* A SHA-256 hex string as a C string. */
#define SG_SHA256_HEX_SIZE (SG_SHA256_HEX_LEN + 1)

/* The most decision envelopes one request can hold, and so the most a
 * signature's evidence and its log entry carry. */
#define SG_ENVELOPES_MAX 64

/* An artifact object (the request's "artifact" and `sign --meta`): at
 * most this many members, names of 1..SG_ARTIFACT_NAME_MAX bytes, values
 * of at most SG_ARTIFACT_VALUE_MAX bytes. */
#define SG_ARTIFACT_FIELDS_MAX 32
#define SG_ARTIFACT_NAME_MAX 64
#define SG_ARTIFACT_VALUE_MAX 1024
/* Releases and grants (include/sg_manifest.h): an artifact line (no
 * LF), its name and version, a grant's name pattern, the most artifacts
 * in a release and signatures in a grant. */
#define SG_ARTIFACT_LINE_MAX 512
#define SG_ARTIFACT_LINE_NAME_MAX 255
#define SG_ARTIFACT_LINE_VERSION_MAX 64
#define SG_PATTERN_MAX 255
#define SG_PATTERN_SIZE (SG_PATTERN_MAX + 1)
#define SG_RELEASE_MAX 10000
#define SG_GRANT_MAX 100000
/* The longest inclusion path in a manifest of SG_RELEASE_MAX lines. */
#define SG_MANIFEST_PATH_MAX 14
/* An Idempotency-Key header value. */
#define SG_IDEM_KEY_MAX 128

/* A PEM file the programs read whole: a certificate (chain), a CA
 * bundle, a TLS private key. */
#define SG_PEM_FILE_MAX (1024 * 1024)
/* A policy file: its text must fit one log entry (sg_entry.h). */
#define SG_POLICY_FILE_MAX 45000
/* The approvals that count for one signature: the sum of a key's
 * `require` counts, and that of its `require-grant` counts, is at most
 * this, so that a signature's or an approved log entry holds at most
 * this many envelopes (sg_entry.h). */
#define SG_QUORUM_MAX 8
/* An artifact object as the canonical JSON stored and logged. */
#define SG_ARTIFACT_JSON_MAX 16384

/* ---- the signer process (include/sg_signer_proc.h) ---- */
/* Requests one signer process answers at once (its workers), by default
 * and at most; the PKCS#11 layer keeps enough sessions per token for
 * them (src/p11_int.h). */
#define SG_SIGNER_CONCURRENCY_DEFAULT 16
#define SG_SIGNER_CONCURRENCY_MAX 256

/* ---- the PKCS#11 layer (src/p11.c, include/sg_p11.h) ---- */
/* (The token's label, manufacturer, serial and model: at the top.) */
/* Bytes of a P-256 field element: a coordinate, or r or s of a signature. */
#define SG_EC_P256_FIELD_LEN 32
/* Bytes of a P-384 field element. */
#define SG_EC_P384_FIELD_LEN 48
/* Bytes of a P-521 field element, the largest curve's. */
#define SG_EC_P521_FIELD_LEN 66
/* A raw ECDSA signature r||s on the largest curve (P-521). */
#define SG_ECDSA_RAW_MAX (2 * SG_EC_P521_FIELD_LEN)

#endif
