/*
 * Release manifests and grant patterns (docs/API.md, "Releases and
 * grants"): the canonical artifact line, the manifest's Merkle tree (the
 * log's RFC 6962 hashing, src/merkle.c, over the lines' bytes), an
 * artifact's membership proof, and the name patterns a grant allows.
 * Pure: buffers in, answers out.
 *
 * An artifact line, ASCII, without its LF:
 *
 *     <digest algorithm>:<lower-case hex digest> <format> <name>[ <version>]
 *
 * name 1..SG_ARTIFACT_LINE_NAME_MAX bytes and version
 * 1..SG_ARTIFACT_LINE_VERSION_MAX bytes, each byte 0x21..0x7e (printable
 * ASCII, no space).  One rendering: a line parses only if building it
 * again gives the same bytes.
 */
#ifndef SG_MANIFEST_H
#define SG_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "sg_crypto.h"
#include "sg_limits.h"
#include "sg_merkle.h"
#include "sg_types.h"

struct sg_artifact_line {
	enum sg_digest_alg digest_alg;
	uint8_t digest[SG_MAX_DIGEST];
	size_t digest_len;
	enum sg_format format;
	char name[SG_ARTIFACT_LINE_NAME_MAX + 1];
	char version[SG_ARTIFACT_LINE_VERSION_MAX + 1]; /* "" if none */
};

/* 1 if every byte of s[0..len) is 0x21..0x7e and 1 <= len <= max. */
int sg_artifact_word_valid(const char *s, size_t len, size_t max);

/* Renders the line (no LF) into buf (cap bytes, NUL-terminated);
 * SG_ERR_INVALID for a field out of its rule. */
int sg_artifact_line_build(const struct sg_artifact_line *a, char *buf,
    size_t cap, size_t *ret_len) __attribute__((warn_unused_result));
/* Strict parse of one line (no LF); SG_ERR_INVALID otherwise. */
int sg_artifact_line_parse(const char *line, size_t len,
    struct sg_artifact_line *ret) __attribute__((warn_unused_result));

/* The manifest tree's leaf for a line: SHA-256(0x00 || line). */
void sg_manifest_leaf(const char *line, size_t len, uint8_t out[SG_HASH_LEN]);

/*
 * A manifest's tree in memory: the leaves' hashes, from which its root
 * and any artifact's inclusion path are computed.  n <= SG_RELEASE_MAX.
 */
struct sg_manifest_tree {
	uint8_t (*leaves)[SG_HASH_LEN];
	size_t n;
};
/* leaves is malloc'd here from the n lines (1 <= n <= SG_RELEASE_MAX,
 * else SG_ERR_INVALID); free with sg_manifest_tree_free(). */
int sg_manifest_tree_init(struct sg_manifest_tree *t,
    const char *const *lines, const size_t *lens, size_t n)
    __attribute__((warn_unused_result));
void sg_manifest_tree_free(struct sg_manifest_tree *t);
int sg_manifest_tree_root(const struct sg_manifest_tree *t,
    uint8_t out[SG_HASH_LEN]) __attribute__((warn_unused_result));
/* The inclusion path of the line at position (< n, else SG_ERR_INVALID),
 * sibling first, into out[0..cap) (SG_ERR_BUFFER if it does not fit; at
 * most SG_MANIFEST_PATH_MAX hashes).  Root and path cost O(n) hashes. */
int sg_manifest_tree_path(const struct sg_manifest_tree *t, size_t position,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
    __attribute__((warn_unused_result));

/* 0 if line is at position of the manifest (root, count) by path;
 * SG_ERR_VERIFY otherwise. */
int sg_manifest_verify(const char *line, size_t len, uint64_t position,
    uint64_t count, const uint8_t root[SG_HASH_LEN],
    const uint8_t (*path)[SG_HASH_LEN], size_t npath)
    __attribute__((warn_unused_result));

/*
 * Grant patterns: 1..SG_PATTERN_MAX bytes of 0x21..0x7e; '*' matches any
 * sequence of bytes (none included, '/' included), '?' exactly one byte,
 * every other byte itself.  No escapes, no brackets.
 */
int sg_pattern_valid(const char *pattern);
/* 1 if name (NUL-terminated) matches pattern, 0 otherwise. */
int sg_pattern_match(const char *pattern, const char *name);

#endif
