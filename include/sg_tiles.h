/*
 * c2sp.org/tlog-tiles: the tree as static tiles, shared by the gateway
 * that serves them and the clients that read them (pure: no I/O).
 *
 * A hash tile (L, N) holds the hashes of the tree nodes at level 8L with
 * indices [256N, 256N + W), 32 bytes each; a full tile has W = 256, the
 * right edge of a tree may end in a partial one (W in 1..255).  An entry
 * bundle N holds entries [256N, 256N + W), each prefixed by its length as
 * a big-endian 16-bit number, so no entry may be longer than 65535 bytes.
 * Paths are "tile/<L>/<N>[.p/<W>]" and "tile/entries/<N>[.p/<W>]", <N> in
 * zero-padded groups of three digits, all but the last prefixed by 'x'.
 */
#ifndef SG_TILES_H
#define SG_TILES_H

#include <stddef.h>
#include <stdint.h>

#include "sg_merkle.h"

#define SG_TILE_HEIGHT 8
#define SG_TILE_WIDTH 256
/* The longest entry a bundle holds (its length prefix is 16 bits). */
#define SG_TILE_ENTRY_MAX 65535
/* A full hash tile, and a full entry bundle at worst. */
#define SG_TILE_HASHES_MAX (SG_TILE_WIDTH * SG_HASH_LEN)
#define SG_TILE_BUNDLE_MAX (SG_TILE_WIDTH * (2 + SG_TILE_ENTRY_MAX))
/* Hash tile levels that can exist in a tree below 2^63 leaves. */
#define SG_TILE_LEVELS 8
/* The longest path sg_tile_path writes, NUL included. */
#define SG_TILE_PATH_SIZE 96

struct sg_tile {
	int entries;                   /* an entry bundle, else hash tile */
	unsigned level;                /* 0 for an entry bundle */
	uint64_t index;
	unsigned width;                /* 1..SG_TILE_WIDTH */
};

/* The tile's path ("tile/..."), without a leading '/'. */
int sg_tile_path(const struct sg_tile *t, char out[SG_TILE_PATH_SIZE]);
/* Parses a path in its one canonical spelling (what sg_tile_path
 * writes); SG_ERR_INVALID for anything else. */
int sg_tile_path_parse(const char *path, struct sg_tile *ret);

/* The width of tile `index` at `level` in a tree of `size` leaves:
 * SG_TILE_WIDTH when full, 0 when the tree has no node in it. */
unsigned sg_tile_width(unsigned level, uint64_t index, uint64_t size);
/* Whether the tree of `size` leaves covers t (every element exists). */
int sg_tile_covered(const struct sg_tile *t, uint64_t size);

/* The hash of the subtree of height h (0..8) over the tile's elements
 * [off, off + 2^h): off a multiple of 2^h, the range within width. */
int sg_tile_subtree(const uint8_t *hashes, unsigned width, unsigned h,
    unsigned off, uint8_t out[SG_HASH_LEN]);

/* An entry bundle: appends one entry; walks it one entry at a time
 * (*pos starts at 0; 1 while there is one, 0 at the end, SG_ERR_INVALID
 * for a truncated bundle). */
int sg_tile_bundle_add(uint8_t *buf, size_t cap, size_t *len,
    const void *entry, size_t elen);
int sg_tile_bundle_next(const uint8_t *buf, size_t len, size_t *pos,
    const uint8_t **ret_entry, size_t *ret_len);

#endif
