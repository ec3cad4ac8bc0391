/*
 * The transparency log: entries appended inside store write jobs (so an
 * entry lands in the same transaction as the state change it records), a
 * Merkle tree kept as complete-subtree hashes in the store, and a signed
 * checkpoint for each batch, asked of the signer once the batch has
 * committed.  A batch whose checkpoint cannot be signed or stored stays
 * committed, but none of its jobs is acknowledged: nothing is answered
 * that is not in the log under a signed checkpoint (see src/tlog.c).
 */
#ifndef SG_TLOG_H
#define SG_TLOG_H

#include <stddef.h>
#include <stdint.h>

#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_store.h"
#include "sg_tiles.h"
#include "sg_witness.h"

#define SG_TLOG_REASON_MAX 512

struct sg_tlog;

/* Has the signer sign the checkpoint of the tree req names (the signer
 * formats the text; see sg_signer_client_checkpoint for the answers). */
typedef int (*sg_tlog_sign_fn)(void *ctx,
    const struct sg_witness_request *req, struct sg_witness_reply *ret);

/* Opens the log stored in st, registers the store hooks, and has the
 * signer sign the stored tree (which checks that the store and the
 * signer's record agree).  errbuf says why it failed: SG_ERR_VERIFY when
 * the signer refuses the stored tree as a fork or a rollback. */
int sg_tlog_open(struct sg_store *st, const char *origin,
    const uint8_t pub[SG_ED25519_PUB], sg_tlog_sign_fn sign, void *sign_ctx,
    struct sg_tlog **ret, char *errbuf, size_t errlen);
/* SQLite: creates the log's tables in db, or brings those of an older
 * store to this build's layout (sg_tlog_open does it; so does copying a
 * store); nothing on PostgreSQL, whose schema holds them. */
int sg_tlog_tables(struct sg_db *db);

/* The store's writer calls the log's hooks: close the store first. */
void sg_tlog_free(struct sg_tlog *l);

/* The verifier key "<origin>+<key id>+<base64>" (owned by l). */
const char *sg_tlog_vkey(const struct sg_tlog *l);
const char *sg_tlog_origin(const struct sg_tlog *l);

/* Inside a write job: appends an entry; *ret_index is its position.
 * SG_ERR_UNAVAILABLE once the signer has refused the log. */
int sg_tlog_append(struct sg_tlog *l, struct sg_txn *t, const char *entry,
    size_t len, uint64_t *ret_index);

/* Outside the writer: returns 0 once a signed checkpoint covers every
 * entry committed before the call, signing one if needed (an earlier one
 * could not be signed, or one is being signed right now). */
int sg_tlog_sync(struct sg_tlog *l);
/* Outside the writer, for an entry a read found committed but under no
 * stored checkpoint (another gateway on the database appended it and has
 * not stored its checkpoint yet, or died first; or this gateway's own
 * batch is between its commit and its checkpoint): one batch, after any
 * running one, catches up with the stored tree and has a checkpoint
 * signed that covers it when none does; 0 then.  SG_ERR_VERIFY once the
 * signer has refused the log. */
int sg_tlog_cover(struct sg_tlog *l, uint64_t index);

struct sg_tlog_status {
	uint64_t size;                 /* entries committed */
	uint64_t checkpoint_size;      /* entries under the newest checkpoint */
	int uncovered;                 /* entries wait for a checkpoint that
	                                  could not be signed */
	uint64_t refusals;             /* trees the signer refused */
	char refusal[SG_TLOG_REASON_MAX]; /* why, once refused; else "" */
};
/* Thread-safe. */
void sg_tlog_status(struct sg_tlog *l, struct sg_tlog_status *ret);

/* Inside any transaction. */
int sg_tlog_checkpoint(struct sg_txn *t, char **ret_note, uint64_t *ret_size);
/* The size of the latest checkpoint, without its note. */
int sg_tlog_checkpoint_size(struct sg_txn *t, uint64_t *ret_size);
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
/*
 * Inside any transaction: tile t (c2sp.org/tlog-tiles, sg_tiles.h) as
 * the newest checkpoint covers it, malloc'd in *ret.  SG_ERR_NOT_FOUND
 * when that checkpoint does not cover it; SG_ERR_TOO_LARGE when an entry
 * of the bundle is longer than a bundle can hold (stored by an older
 * build), its index in *ret_bad; never a truncated bundle.
 */
int sg_tlog_tile(struct sg_txn *t, const struct sg_tile *tile, uint8_t **ret,
    size_t *ret_len, uint64_t *ret_bad);
/* A c2sp.org/tlog-proof@v1 for entry `index` under the latest checkpoint,
 * with the entry itself as the proof's extra data. */
int sg_tlog_proof_bundle(struct sg_txn *t, uint64_t index, char **ret);

/*
 * Witnesses (src/witnessing.c).  "The latest checkpoint" above, and so
 * everything served, is the newest one whose cosignatures come from at
 * least `quorum` distinct configured witnesses (0: the newest), with
 * those cosignature lines appended to the log's note.  on_checkpoint
 * (may be NULL) is called on the store's writer thread after each
 * checkpoint is stored: it must only wake somebody up.
 */
void sg_tlog_set_witnessing(struct sg_tlog *l, unsigned quorum,
    void (*on_checkpoint)(void *ctx), void *ctx);
/* The newest stored checkpoint, served or not: the log's note alone and
 * the cosignature lines stored for it ("" for none). */
int sg_tlog_latest(struct sg_txn *t, uint64_t *ret_size, char **ret_note,
    char **ret_cosigs);
/* The size of the newest checkpoint with at least `quorum` cosignatures. */
int sg_tlog_quorum_size(struct sg_txn *t, unsigned quorum,
    uint64_t *ret_size);
/* A consistency proof up to the newest stored checkpoint, served or not. */
int sg_tlog_consistency_latest(struct sg_txn *t, uint64_t old_size,
    uint64_t new_size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n);
/* The cosignature lines stored for the checkpoint of `size` entries. */
int sg_tlog_cosignatures(struct sg_txn *t, uint64_t size, char **ret_cosigs);
/* Inside a write job: replaces them, with the number of distinct
 * configured witnesses they come from. */
int sg_tlog_set_cosignatures(struct sg_txn *t, uint64_t size,
    const char *lines, unsigned cosigned);

#endif
