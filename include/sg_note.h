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

/* One signature line: U+2014 SP name SP base64(key id || signature) LF. */
int sg_note_signature_line(const char *name, uint32_t id,
    const uint8_t sig[SG_ED25519_SIG], char **ret);

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
