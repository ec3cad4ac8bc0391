/*
 * C2SP formats of the transparency log: signed notes with Ed25519 keys
 * (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and
 * offline proofs (c2sp.org/tlog-proof@v1).  Parsers are strict: exact
 * line structure, canonical base64 and decimal, bounded sizes.
 */
#ifndef SG_NOTE_H
#define SG_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_merkle.h"

#define SG_NOTE_MAX (64 * 1024)
#define SG_NOTE_NAME_MAX 255
#define SG_ED25519_PUB 32
#define SG_ED25519_SIG 64

/* Key ID: the first four bytes (big-endian) of
 * SHA-256(name || "\n" || 0x01 || public key). */
uint32_t sg_note_key_id(const char *name, const uint8_t pub[SG_ED25519_PUB]);

/* Verifier key "<name>+<8 hex key id>+<base64(0x01 || public key)>". */
int sg_note_vkey_format(const char *name, const uint8_t pub[SG_ED25519_PUB],
    char **ret);
int sg_note_vkey_parse(const char *vkey, char ret_name[SG_NOTE_NAME_MAX + 1],
    uint32_t *ret_id, uint8_t ret_pub[SG_ED25519_PUB]);

/*
 * The same for other signature types over a 32-byte Ed25519 key (the
 * cosignatures of c2sp.org/tlog-cosignature use 0x04): the type byte
 * enters the key ID and the vkey; a vkey of another type is refused with
 * SG_ERR_MECHANISM.
 */
uint32_t sg_note_key_id_typed(const char *name, uint8_t type,
    const uint8_t pub[SG_ED25519_PUB]);
int sg_note_vkey_format_typed(const char *name, uint8_t type,
    const uint8_t pub[SG_ED25519_PUB], char **ret);
int sg_note_vkey_parse_typed(const char *vkey, uint8_t type,
    char ret_name[SG_NOTE_NAME_MAX + 1], uint32_t *ret_id,
    uint8_t ret_pub[SG_ED25519_PUB]);

/* One signature line: U+2014 SP name SP base64(key id || signature) LF. */
int sg_note_signature_line(const char *name, uint32_t id,
    const uint8_t sig[SG_ED25519_SIG], char **ret);
/* The same with any signature bytes (key ID first): 5..SG_NOTE_SIG_RAW_MAX. */
#define SG_NOTE_SIG_RAW_MAX 256
int sg_note_signature_line_raw(const char *name, const uint8_t *raw,
    size_t rawlen, char **ret);

/*
 * Splits a signed note as sg_note_verify() does and calls fn for each
 * signature line, in order, with its key name (not NUL-terminated), its
 * decoded bytes (key ID first, at least 5) and the length of the text (with
 * its LF).  A malformed note or line is SG_ERR_INVALID; a non-zero return
 * of fn stops the walk and is returned.  *ret_text_len is set on success.
 */
typedef int (*sg_note_sig_fn)(void *ctx, const char *name, size_t nlen,
    const uint8_t *raw, size_t rawlen, size_t text_len);
int sg_note_signatures(const char *note, size_t len, sg_note_sig_fn fn,
    void *ctx, size_t *ret_text_len) __attribute__((warn_unused_result));
/* Whether a line fn is given (name, nlen, raw) is by the key (key_name,
 * id): the same name and the key ID in raw's first four bytes. */
int sg_note_sig_by(const char *name, size_t nlen, const uint8_t *raw,
    const char *key_name, uint32_t id);

/*
 * Verifies a signed note (text, a blank line, signature lines): the text
 * must end in LF, every signature line must be well formed, and a line by
 * this (name, id) must verify with pub over the text.  Lines by other keys
 * are ignored, whatever their name (any UTF-8 without spaces or '+') and
 * signature length.  *ret_text_len is the length of the text (with its
 * LF).
 */
int sg_note_verify(const char *note, size_t len, const char *name,
    uint32_t id, const uint8_t pub[SG_ED25519_PUB], size_t *ret_text_len)
    __attribute__((warn_unused_result));

struct sg_checkpoint {
	char origin[SG_NOTE_NAME_MAX + 1];
	uint64_t size;
	uint8_t root[SG_HASH_LEN];
};

/* Whether origin can be a checkpoint's first line: 1 to SG_NOTE_NAME_MAX
 * bytes of printable ASCII, no space at either end. */
int sg_checkpoint_origin_ok(const char *origin);

/* "<origin>\n<size>\n<base64 root>\n", malloc'd. */
int sg_checkpoint_format(const struct sg_checkpoint *c, char **ret);
/* Parses checkpoint text (no signatures); extension lines are refused. */
int sg_checkpoint_parse(const char *text, size_t len,
    struct sg_checkpoint *ret);

/* A proof's extra data carries one whole log entry (SG_ENTRY_MAX), and a
 * proof text is never longer than SG_TLOG_PROOF_MAX (its base64, 64 hash
 * lines and a note of SG_NOTE_MAX fit). */
#define SG_TLOG_PROOF_EXTRA_MAX (256 * 1024)
#define SG_TLOG_PROOF_MAX (512 * 1024)

struct sg_tlog_proof {
	uint8_t *extra;                /* NULL if absent */
	size_t extra_len;
	uint64_t index;
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	size_t nhashes;
	char *note;                    /* the signed checkpoint, verbatim */
	size_t note_len;
};

int sg_tlog_proof_format(const struct sg_tlog_proof *p, char **ret);
int sg_tlog_proof_parse(const char *text, size_t len,
    struct sg_tlog_proof *ret);
void sg_tlog_proof_clear(struct sg_tlog_proof *p);

#endif
