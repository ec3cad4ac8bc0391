/*
 * RFC 6962 Merkle trees (SHA-256; leaf = H(0x00 || entry), node =
 * H(0x01 || left || right)): hashing, roots, inclusion and consistency
 * proofs and their verification, and the append frontier.
 *
 * Storage-agnostic: proofs are computed from the hashes of *complete*
 * subtrees, fetched through a callback.  The complete subtree (level,
 * index) covers leaves [index << level, (index + 1) << level); level 0 is a
 * leaf hash.  A log that stores every complete subtree hash (about 2n
 * hashes for n leaves) answers any proof with O(log^2 n) look-ups and no
 * memory that grows with the log.
 */
#ifndef SG_MERKLE_H
#define SG_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define SG_HASH_LEN 32
#define SG_MERKLE_MAX_PROOF 64       /* hashes in any proof of a 2^63 tree */
/* Largest tree (and index bound) handled anywhere: 2^63 - 1 leaves. */
#define SG_MERKLE_MAX_SIZE ((uint64_t)INT64_MAX)

/* The root of the empty tree: SHA-256 of no bytes. */
extern const uint8_t sg_merkle_empty_root[SG_HASH_LEN];

void sg_merkle_leaf_hash(const uint8_t *entry, size_t len,
    uint8_t out[SG_HASH_LEN]);
void sg_merkle_node_hash(const uint8_t left[SG_HASH_LEN],
    const uint8_t right[SG_HASH_LEN], uint8_t out[SG_HASH_LEN]);

/* Fetches the hash of the complete subtree (level, index); 0 or SG_ERR_*. */
typedef int (*sg_merkle_get_fn)(void *ctx, unsigned level, uint64_t index,
    uint8_t out[SG_HASH_LEN]);

/* Root of the tree of the first `size` leaves (size 0: SHA-256 of ""). */
int sg_merkle_root(sg_merkle_get_fn get, void *ctx, uint64_t size,
    uint8_t out[SG_HASH_LEN]);

/* RFC 6962 2.1.1 audit path for leaf `index` in the tree of `size`
 * leaves (index < size), leaf's sibling first. */
int sg_merkle_inclusion_proof(sg_merkle_get_fn get, void *ctx,
    uint64_t index, uint64_t size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n);

/* RFC 6962 2.1.2 consistency proof from old_size to new_size
 * (0 < old_size <= new_size). */
int sg_merkle_consistency_proof(sg_merkle_get_fn get, void *ctx,
    uint64_t old_size, uint64_t new_size, uint8_t (*out)[SG_HASH_LEN],
    size_t cap, size_t *ret_n);

/* 0 if the proof shows `leaf` at `index` in the tree (size, root);
 * SG_ERR_VERIFY otherwise (including malformed sizes and lengths). */
int sg_merkle_verify_inclusion(const uint8_t leaf[SG_HASH_LEN],
    uint64_t index, uint64_t size, const uint8_t (*proof)[SG_HASH_LEN],
    size_t n, const uint8_t root[SG_HASH_LEN])
    __attribute__((warn_unused_result));

/* 0 if the proof shows the tree (old_size, old_root) is a prefix of
 * (new_size, new_root); SG_ERR_VERIFY otherwise.  old_size == new_size
 * requires an empty proof and equal roots; old_size 0 is refused. */
int sg_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[SG_HASH_LEN], const uint8_t new_root[SG_HASH_LEN],
    const uint8_t (*proof)[SG_HASH_LEN], size_t n)
    __attribute__((warn_unused_result));

/*
 * The right edge of a tree: the roots of its maximal complete subtrees,
 * one per set bit of `size`, largest (leftmost) first.  Enough to append
 * and to compute the root without any look-up.
 */
struct sg_merkle_frontier {
	uint64_t size;
	size_t n;
	uint8_t hashes[64][SG_HASH_LEN];
};

void sg_merkle_frontier_init(struct sg_merkle_frontier *f);
/* Appends a leaf hash; calls emit for every complete subtree that now
 * exists and did not before: the leaf itself (level 0) and each parent
 * completed by it, bottom-up.  If emit fails, f is left unchanged. */
int sg_merkle_frontier_append(struct sg_merkle_frontier *f,
    const uint8_t leaf[SG_HASH_LEN],
    int (*emit)(void *ctx, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN]), void *ctx);
void sg_merkle_frontier_root(const struct sg_merkle_frontier *f,
    uint8_t out[SG_HASH_LEN]);
/* Rebuilds the frontier of a tree of `size` leaves from stored hashes. */
int sg_merkle_frontier_load(struct sg_merkle_frontier *f, uint64_t size,
    sg_merkle_get_fn get, void *ctx);

#endif
