/*
 * A reader of a log published as c2sp.org/tlog-tiles: the gateway's
 * /log/ prefix, a mirror behind any static web server, or a mirror's
 * directory.  Nothing it hands out is trusted before it is checked: the
 * checkpoint's signature with the log's verifier key, every tile against
 * the checkpoint's root, every entry against its leaf hash.
 *
 * How a tile is checked: the partial tiles at the right edge of the tree
 * hash up to the tree's complete subtrees of that edge, whose fold must
 * give the checkpoint's root; a full tile hashes up to one hash of the
 * tile above it, itself checked the same way, up to a partial one.  So a
 * tile costs at most one fetch per level (eight), all of them cached.
 */
#ifndef SG_TILE_CLIENT_H
#define SG_TILE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_tiles.h"

struct sg_tile_client;

/*
 * source: "https://host[:port]/prefix" (verified against cafile, or the
 * system's CAs when cafile is NULL), "http://..." or a directory.  The
 * prefix is where "checkpoint" and "tile/" are: the gateway's is /log.
 * timeout: seconds for one fetch (0: 30).
 */
int sg_tile_client_open(const char *source, const char *cafile,
    long timeout, struct sg_tile_client **ret);
void sg_tile_client_free(struct sg_tile_client *c);
/* Why the last call failed (never NULL). */
const char *sg_tile_client_error(const struct sg_tile_client *c);

/*
 * Fetches the checkpoint and verifies its signature with vkey (a signed
 * note verifier key) and its origin (the key's name); everything after
 * is checked against it.  SG_ERR_VERIFY for a bad signature or origin.
 * Calling it again moves to the source's newest checkpoint.
 */
int sg_tile_client_checkpoint(struct sg_tile_client *c, const char *vkey);
/* The checkpoint verified last, and its signed note verbatim (with any
 * cosignatures), valid until the next sg_tile_client_checkpoint. */
const struct sg_checkpoint *sg_tile_client_cp(const struct sg_tile_client *c);
const char *sg_tile_client_note(const struct sg_tile_client *c,
    size_t *ret_len);

/* Whether the tree (old_size, old_root) is a prefix of the checkpoint's:
 * 0, or SG_ERR_VERIFY (with the reason) when it is not. */
int sg_tile_client_consistent(struct sg_tile_client *c, uint64_t old_size,
    const uint8_t old_root[SG_HASH_LEN]);

/* Entries [a, b) of the checkpoint's tree, each checked, in order:
 * fn's non-zero return stops the walk and is returned. */
typedef int (*sg_tile_entry_fn)(void *arg, uint64_t index,
    const uint8_t *entry, size_t len);
int sg_tile_client_entries(struct sg_tile_client *c, uint64_t a, uint64_t b,
    sg_tile_entry_fn fn, void *arg);

/* One tile of the checkpoint's tree (a hash tile or an entry bundle, its
 * width as the tree has it), checked, its bytes as published in *ret
 * (malloc'd).  SG_ERR_NOT_FOUND when the tree has no such tile. */
int sg_tile_client_tile(struct sg_tile_client *c, const struct sg_tile *t,
    uint8_t **ret, size_t *ret_len);

#endif
