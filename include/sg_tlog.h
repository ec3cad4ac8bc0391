/*
 * The transparency log: entries appended inside store write jobs (so an
 * entry lands in the same transaction as the state change it records), a
 * Merkle tree kept as complete-subtree hashes in the store, and a signed
 * checkpoint written before each batch commits.  A batch whose checkpoint
 * cannot be signed or written is not committed at all: nothing is
 * acknowledged that is not in the log under a signed checkpoint.
 */
#ifndef SG_TLOG_H
#define SG_TLOG_H

#include <stddef.h>
#include <stdint.h>

#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_store.h"

struct sg_tlog;

/* Signs checkpoint text with the log key (pure Ed25519). */
typedef int (*sg_tlog_sign_fn)(void *ctx, const char *text, size_t len,
    uint8_t sig[SG_ED25519_SIG]);

/* Opens the log stored in st, registers the store hooks, and makes sure a
 * checkpoint for the current size exists. */
int sg_tlog_open(struct sg_store *st, const char *origin,
    const uint8_t pub[SG_ED25519_PUB], sg_tlog_sign_fn sign, void *sign_ctx,
    struct sg_tlog **ret);
/* The store's writer calls the log's hooks: close the store first. */
void sg_tlog_free(struct sg_tlog *l);

/* The verifier key "<origin>+<key id>+<base64>" (owned by l). */
const char *sg_tlog_vkey(const struct sg_tlog *l);
const char *sg_tlog_origin(const struct sg_tlog *l);

/* Inside a write job: appends an entry; *ret_index is its position. */
int sg_tlog_append(struct sg_tlog *l, struct sg_txn *t, const char *entry,
    size_t len, uint64_t *ret_index);

/* Inside any transaction. */
int sg_tlog_checkpoint(struct sg_txn *t, char **ret_note, uint64_t *ret_size);
/* Size and signing time of the latest checkpoint. */
int sg_tlog_checkpoint_time(struct sg_txn *t, uint64_t *ret_size,
    int64_t *ret_signed_at);
int sg_tlog_entry(struct sg_txn *t, uint64_t index, char **ret,
    size_t *ret_len);
int sg_tlog_inclusion(struct sg_txn *t, uint64_t index, uint64_t size,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n);
int sg_tlog_consistency(struct sg_txn *t, uint64_t old_size,
    uint64_t new_size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n);
/* A c2sp.org/tlog-proof@v1 for entry `index` under the latest checkpoint,
 * with the entry itself as the proof's extra data. */
int sg_tlog_proof_bundle(struct sg_txn *t, uint64_t index, char **ret);

#endif
