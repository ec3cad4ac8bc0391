/*
 * Witness cosignatures (c2sp.org/tlog-cosignature, cosignature/v1 with
 * Ed25519): a witness's statement that, at a given time, the checkpoint it
 * signs is the largest consistent tree it has seen of that log.  A
 * cosignature is a signed-note signature line appended to the log's signed
 * checkpoint, whose bytes are the key ID, an 8-byte big-endian time and
 * the Ed25519 signature of the message "cosignature/v1\ntime <t>\n"
 * followed by the checkpoint text.  Verifier keys have signature type
 * 0x04, so that a cosigner key can never pass for a log key.
 */
#ifndef SG_COSIG_H
#define SG_COSIG_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sg_note.h"

#define SG_COSIG_TYPE 0x04
/* key ID, time, signature */
#define SG_COSIG_RAW_LEN (4 + 8 + SG_ED25519_SIG)
/* The spec's bound: a time never exceeds 2^63 - 1. */
#define SG_COSIG_TIME_MAX ((uint64_t)INT64_MAX)

/* SHA-256(name || "\n" || 0x04 || pub), first 4 bytes big-endian. */
uint32_t sg_cosig_key_id(const char *name, const uint8_t pub[SG_ED25519_PUB]);

/* "<name>+<8 hex id>+<base64(0x04 || pub)>", malloc'd. */
int sg_cosig_vkey_format(const char *name, const uint8_t pub[SG_ED25519_PUB],
    char **ret);
/* Parses a cosigner vkey; a log key (type 0x01) or any other type is
 * SG_ERR_MECHANISM, a malformed one or a wrong key ID SG_ERR_INVALID. */
int sg_cosig_vkey_parse(const char *vkey, char ret_name[SG_NOTE_NAME_MAX + 1],
    uint32_t *ret_id, uint8_t ret_pub[SG_ED25519_PUB]);

/* The signed message: "cosignature/v1\ntime <t>\n" || text, where text is
 * the checkpoint text (its lines with their LF, no signatures).  malloc'd;
 * *ret_len is its length (it has a NUL after it too). */
int sg_cosig_message(const char *text, size_t len, uint64_t t, char **ret,
    size_t *ret_len);

/* "— <name> <base64(id || 8-byte BE time || 64-byte sig)>\n", malloc'd. */
int sg_cosig_line(const char *name, uint32_t id, uint64_t t,
    const uint8_t sig[SG_ED25519_SIG], char **ret);

/*
 * Cosigns checkpoint text at time t with an Ed25519 private key: the
 * cosignature line of the witness named name (its key ID from the key's
 * public half), malloc'd.  SG_ERR_MECHANISM if key is not Ed25519.
 */
int sg_cosig_sign(EVP_PKEY *key, const char *name,
    const char *text, size_t len, uint64_t t, char **ret);

/*
 * Whether the signed note carries a valid cosignature by this witness
 * (name and key ID match) over its text: 0 if so, with its time in *ret_t
 * (the latest, if it has several lines, all of which must verify);
 * SG_ERR_VERIFY if it has none or one that does not verify;
 * SG_ERR_INVALID for a malformed note.  Other lines (the log's signature,
 * other witnesses) are ignored.
 */
int sg_cosig_verify(const char *note, size_t len, const char *name,
    uint32_t id, const uint8_t pub[SG_ED25519_PUB], uint64_t *ret_t)
    __attribute__((warn_unused_result));

#endif
