/*
 * Release manifests and grant patterns (see include/sg_manifest.h and
 * docs/API.md, "Releases and grants").
 *
 * Design: an artifact line has one rendering, as the statement and the
 * log entries do.  sg_artifact_line_build() is the only code that knows
 * the layout and the only validator; sg_artifact_line_parse() splits the
 * line at its separators, decodes the digest, renders the result again
 * and demands the same bytes.  Upper-case hex, a doubled or trailing
 * space, an empty version and every other second spelling fail that
 * comparison, so a manifest root commits to one list of meanings.
 *
 * The manifest tree is the log's: RFC 6962 over the lines' bytes, with
 * the leaf and node hashes of src/merkle.c, so that an artifact's
 * membership is checked by sg_merkle_verify_inclusion() like any log
 * entry's.  The in-memory tree keeps the leaf hashes and, computed once,
 * every complete subtree's hash above them (about 2n hashes); the root
 * and each path are then read from them by src/merkle.c as for the log
 * (O(log^2 n) look-ups), so that signing a release of n artifacts costs
 * O(n log^2 n), not O(n^2).
 *
 * Patterns are matched iteratively, with one remembered '*' (the classic
 * wildcard algorithm): a later '*' supersedes an earlier one, since what
 * the earlier one could still absorb the later can too, so no choice is
 * ever revisited twice and the cost is at most len(pattern) * len(name)
 * steps, never exponential.
 *
 * Pure: no I/O, no global state.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_merkle.h"
#include "sg_util.h"

int
sg_artifact_word_valid(const char *s, size_t len, size_t max)
{
	size_t i;

	if (s == NULL || len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

static int
line_valid(const struct sg_artifact_line *a)
{
	size_t vlen;

	if (sg_digest_len(a->digest_alg) == 0 ||
	    a->digest_len != sg_digest_len(a->digest_alg))
		return 0;
	if (a->format != SG_FORMAT_RAW && a->format != SG_FORMAT_CMS)
		return 0;
	if (memchr(a->name, '\0', sizeof(a->name)) == NULL ||
	    memchr(a->version, '\0', sizeof(a->version)) == NULL)
		return 0;
	if (!sg_artifact_word_valid(a->name, strlen(a->name),
	    SG_ARTIFACT_LINE_NAME_MAX))
		return 0;
	vlen = strlen(a->version);
	if (vlen > 0 && !sg_artifact_word_valid(a->version, vlen,
	    SG_ARTIFACT_LINE_VERSION_MAX))
		return 0;
	return 1;
}

int
sg_artifact_line_build(const struct sg_artifact_line *a, char *buf,
    size_t cap, size_t *ret_len)
{
	char hex[2 * SG_MAX_DIGEST + 1];
	int n;

	if (a == NULL || buf == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	if (!line_valid(a))
		return SG_ERR_INVALID;
	sg_hex_encode(a->digest, a->digest_len, hex);
	n = snprintf(buf, cap, "%s:%s %s %s%s%s",
	    sg_digest_name(a->digest_alg), hex, sg_format_str(a->format),
	    a->name, a->version[0] != '\0' ? " " : "", a->version);
	if (n < 0)
		return SG_ERR_INTERNAL;
	if ((size_t)n >= cap)
		return SG_ERR_BUFFER;
	if ((size_t)n > SG_ARTIFACT_LINE_MAX)
		return SG_ERR_INVALID;        /* cannot happen: fields bound it */
	*ret_len = (size_t)n;
	return 0;
}

/* The bytes from *p up to the first stop (or the end), as a C string of
 * at most cap - 1 bytes; *p is left on the stop. */
static int
field(const char **p, const char *end, char stop, char *out, size_t cap)
{
	const char *q = *p;
	size_t n;

	while (q < end && *q != stop)
		q++;
	n = (size_t)(q - *p);
	if (n == 0 || n >= cap)
		return SG_ERR_INVALID;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = q;
	return 0;
}

static int
line_fields(const char *line, size_t len, struct sg_artifact_line *a)
{
	const char *p = line, *end = line + len;
	char alg[8], hex[2 * SG_MAX_DIGEST + 1], fmt[SG_FORMAT_SIZE];
	enum sg_format f;

	if (field(&p, end, ':', alg, sizeof(alg)) != 0 || p == end)
		return SG_ERR_INVALID;
	p++;
	if (field(&p, end, ' ', hex, sizeof(hex)) != 0 || p == end)
		return SG_ERR_INVALID;
	p++;
	if (field(&p, end, ' ', fmt, sizeof(fmt)) != 0 || p == end)
		return SG_ERR_INVALID;
	p++;
	if (field(&p, end, ' ', a->name, sizeof(a->name)) != 0)
		return SG_ERR_INVALID;
	if (p < end) {
		p++;
		/* The rest, spaces included: the rebuild refuses them. */
		if (field(&p, end, '\n', a->version,
		    sizeof(a->version)) != 0 || p != end)
			return SG_ERR_INVALID;
	}
	if ((a->digest_alg = sg_digest_from_name(alg)) == SG_DIGEST_NONE ||
	    strlen(hex) != 2 * sg_digest_len(a->digest_alg) ||
	    sg_hex_decode(hex, strlen(hex), a->digest, sizeof(a->digest),
	    &a->digest_len) != 0)
		return SG_ERR_INVALID;
	if (sg_format_parse(fmt, &f) != 0)
		return SG_ERR_INVALID;
	a->format = f;
	return 0;
}

int
sg_artifact_line_parse(const char *line, size_t len,
    struct sg_artifact_line *ret)
{
	struct sg_artifact_line a;
	char again[SG_ARTIFACT_LINE_MAX + 1];
	size_t again_len = 0;

	if (line == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (len == 0 || len > SG_ARTIFACT_LINE_MAX ||
	    memchr(line, '\0', len) != NULL)
		return SG_ERR_INVALID;
	memset(&a, 0, sizeof(a));
	if (line_fields(line, len, &a) != 0)
		return SG_ERR_INVALID;
	/* The one validator, and the one rendering, decide. */
	if (sg_artifact_line_build(&a, again, sizeof(again), &again_len) != 0 ||
	    again_len != len || memcmp(again, line, len) != 0)
		return SG_ERR_INVALID;
	*ret = a;
	return 0;
}

void
sg_manifest_leaf(const char *line, size_t len, uint8_t out[SG_HASH_LEN])
{
	sg_merkle_leaf_hash((const uint8_t *)line, len, out);
}

/* Every complete subtree's hash above the leaves, level by level. */
static int
tree_levels(struct sg_manifest_tree *t)
{
	size_t total = 0, w, i, l;
	const uint8_t (*below)[SG_HASH_LEN];

	for (l = 1, w = t->n / 2; w > 0 && l <= SG_MANIFEST_PATH_MAX + 1;
	    l++, w /= 2) {
		t->off[l] = total;
		total += w;
	}
	t->nlevels = (unsigned)(l - 1);
	if (total == 0)
		return 0;
	if ((t->nodes = calloc(total, sizeof(*t->nodes))) == NULL)
		return SG_ERR_NOMEM;
	for (l = 1; l <= t->nlevels; l++) {
		below = l == 1 ? (const uint8_t (*)[SG_HASH_LEN])t->leaves :
		    (const uint8_t (*)[SG_HASH_LEN])t->nodes + t->off[l - 1];
		w = t->n >> l;
		for (i = 0; i < w; i++)
			sg_merkle_node_hash(below[2 * i], below[2 * i + 1],
			    t->nodes[t->off[l] + i]);
	}
	return 0;
}

int
sg_manifest_tree_init(struct sg_manifest_tree *t, const char *const *lines,
    const size_t *lens, size_t n)
{
	size_t i;
	int r;

	if (t == NULL || lines == NULL || lens == NULL)
		return SG_ERR_INVALID;
	memset(t, 0, sizeof(*t));
	if (n == 0 || n > SG_RELEASE_MAX)
		return SG_ERR_INVALID;
	if ((t->leaves = calloc(n, sizeof(*t->leaves))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		if (lines[i] == NULL) {
			sg_manifest_tree_free(t);
			return SG_ERR_INVALID;
		}
		sg_manifest_leaf(lines[i], lens[i], t->leaves[i]);
	}
	t->n = n;
	if ((r = tree_levels(t)) != 0)
		sg_manifest_tree_free(t);
	return r;
}

void
sg_manifest_tree_free(struct sg_manifest_tree *t)
{
	if (t == NULL)
		return;
	free(t->leaves);
	free(t->nodes);
	memset(t, 0, sizeof(*t));
}

/* The complete subtree (level, index) for src/merkle.c's proofs. */
static int
tree_get(void *ctx, unsigned level, uint64_t index, uint8_t out[SG_HASH_LEN])
{
	const struct sg_manifest_tree *t = ctx;

	if (level > t->nlevels || ((index + 1) << level) > t->n)
		return SG_ERR_INTERNAL;
	memcpy(out, level == 0 ? t->leaves[index] :
	    t->nodes[t->off[level] + index], SG_HASH_LEN);
	return 0;
}

static int
tree_ok(const struct sg_manifest_tree *t)
{
	return t != NULL && t->leaves != NULL && t->n > 0 &&
	    t->n <= SG_RELEASE_MAX && (t->n < 2 || t->nodes != NULL);
}

int
sg_manifest_tree_root(const struct sg_manifest_tree *t,
    uint8_t out[SG_HASH_LEN])
{
	if (!tree_ok(t) || out == NULL)
		return SG_ERR_INVALID;
	return sg_merkle_root(tree_get, (void *)t, t->n, out);
}

int
sg_manifest_tree_path(const struct sg_manifest_tree *t, size_t position,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	size_t len = 0;
	int r;

	if (!tree_ok(t) || ret_n == NULL || (out == NULL && cap > 0))
		return SG_ERR_INVALID;
	if (position >= t->n)
		return SG_ERR_INVALID;
	if ((r = sg_merkle_inclusion_proof(tree_get, (void *)t, position,
	    t->n, out, cap, &len)) != 0)
		return r == SG_ERR_TOO_LARGE ? SG_ERR_BUFFER : r;
	*ret_n = len;
	return 0;
}

int
sg_manifest_verify(const char *line, size_t len, uint64_t position,
    uint64_t count, const uint8_t root[SG_HASH_LEN],
    const uint8_t (*path)[SG_HASH_LEN], size_t npath)
{
	uint8_t leaf[SG_HASH_LEN];

	if (line == NULL || root == NULL || (path == NULL && npath > 0))
		return SG_ERR_VERIFY;
	if (count == 0 || count > SG_RELEASE_MAX || position >= count ||
	    npath > SG_MANIFEST_PATH_MAX)
		return SG_ERR_VERIFY;
	sg_manifest_leaf(line, len, leaf);
	if (sg_merkle_verify_inclusion(leaf, position, count, path, npath,
	    root) != 0)
		return SG_ERR_VERIFY;
	return 0;
}

int
sg_pattern_valid(const char *pattern)
{
	if (pattern == NULL)
		return 0;
	return sg_artifact_word_valid(pattern,
	    strnlen(pattern, SG_PATTERN_MAX + 1), SG_PATTERN_MAX);
}

int
sg_pattern_match(const char *pattern, const char *name)
{
	size_t p = 0, n = 0, plen, nlen, star = 0, mark = 0;
	int have_star = 0;

	if (!sg_pattern_valid(pattern) || name == NULL)
		return 0;
	plen = strlen(pattern);
	nlen = strlen(name);
	while (n < nlen) {
		if (p < plen && pattern[p] == '*') {
			/* Try the star as empty first; remember where. */
			have_star = 1;
			star = p++;
			mark = n;
		} else if (p < plen && (pattern[p] == '?' ||
		    pattern[p] == name[n])) {
			p++;
			n++;
		} else if (have_star) {
			/* The last star absorbs one byte more. */
			p = star + 1;
			n = ++mark;
		} else
			return 0;
	}
	while (p < plen && pattern[p] == '*')
		p++;
	return p == plen;
}
