/*
 * Tile paths, widths and hashes (see include/sg_tiles.h).
 *
 * Paths are parsed strictly: exactly the spelling sg_tile_path writes
 * (no leading zeros, no empty or extra groups, widths 1..255), so that
 * one tile has one path and a cache keyed by path never holds two copies.
 */
#include <stdio.h>
#include <string.h>

#include "sg_err.h"
#include "sg_tiles.h"

int
sg_tile_path(const struct sg_tile *t, char out[SG_TILE_PATH_SIZE])
{
	char groups[32], tmp[8];
	uint64_t n = t->index, div = 1;
	size_t len;
	int w;

	if (t->width == 0 || t->width > SG_TILE_WIDTH || t->level > 63 ||
	    (t->entries && t->level != 0))
		return SG_ERR_INVALID;
	while (n / div >= 1000)
		div *= 1000;
	groups[0] = '\0';
	for (len = 0; div > 0; div /= 1000) {
		snprintf(tmp, sizeof(tmp), "%s%03u", div > 1 ? "x" : "",
		    (unsigned)(n / div % 1000));
		len += (size_t)snprintf(groups + len, sizeof(groups) - len,
		    "%s%s", len > 0 ? "/" : "", tmp);
	}
	if (t->entries)
		w = snprintf(out, SG_TILE_PATH_SIZE, "tile/entries/%s", groups);
	else
		w = snprintf(out, SG_TILE_PATH_SIZE, "tile/%u/%s", t->level,
		    groups);
	if (w > 0 && t->width < SG_TILE_WIDTH)
		w += snprintf(out + w, SG_TILE_PATH_SIZE - (size_t)w, ".p/%u",
		    t->width);
	return w > 0 && w < SG_TILE_PATH_SIZE ? 0 : SG_ERR_INTERNAL;
}

/* A decimal number of 1..maxdigits digits without a leading zero, up to
 * the next '/' or '.' or the end. */
static int
parse_dec(const char **sp, unsigned maxdigits, uint64_t max, uint64_t *ret)
{
	const char *s = *sp;
	uint64_t v = 0;
	unsigned n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		if (n == maxdigits)
			return SG_ERR_INVALID;
		v = v * 10 + (uint64_t)(s[n] - '0');
		n++;
	}
	if (n == 0 || (n > 1 && s[0] == '0') || v > max)
		return SG_ERR_INVALID;
	*sp = s + n;
	*ret = v;
	return 0;
}

/* The index groups: "x001/x234/067". */
static int
parse_index(const char **sp, uint64_t *ret)
{
	const char *s = *sp;
	uint64_t v = 0;
	unsigned i, ngroups = 0;
	int last;

	do {
		last = *s != 'x';
		if (!last)
			s++;
		for (i = 0; i < 3; i++)
			if (s[i] < '0' || s[i] > '9')
				return SG_ERR_INVALID;
		/* A first group of zeros would be a second spelling. */
		if (ngroups == 0 && !last && memcmp(s, "000", 3) == 0)
			return SG_ERR_INVALID;
		if (++ngroups > 7 || v > (UINT64_MAX - 999) / 1000)
			return SG_ERR_INVALID;
		v = v * 1000 + (uint64_t)((s[0] - '0') * 100 +
		    (s[1] - '0') * 10 + (s[2] - '0'));
		s += 3;
		if (!last) {
			if (*s != '/')
				return SG_ERR_INVALID;
			s++;
		}
	} while (!last);
	/* No tree below 2^63 leaves has a tile past this. */
	if (v > (SG_MERKLE_MAX_SIZE >> SG_TILE_HEIGHT))
		return SG_ERR_INVALID;
	*sp = s;
	*ret = v;
	return 0;
}

int
sg_tile_path_parse(const char *path, struct sg_tile *ret)
{
	struct sg_tile t;
	uint64_t v;
	const char *s = path;

	memset(&t, 0, sizeof(t));
	if (strncmp(s, "tile/", 5) != 0)
		return SG_ERR_INVALID;
	s += 5;
	if (strncmp(s, "entries/", 8) == 0) {
		t.entries = 1;
		s += 8;
	} else {
		if (parse_dec(&s, 2, 63, &v) != 0 || *s++ != '/')
			return SG_ERR_INVALID;
		t.level = (unsigned)v;
	}
	if (parse_index(&s, &t.index) != 0)
		return SG_ERR_INVALID;
	t.width = SG_TILE_WIDTH;
	if (strncmp(s, ".p/", 3) == 0) {
		s += 3;
		if (parse_dec(&s, 3, SG_TILE_WIDTH - 1, &v) != 0)
			return SG_ERR_INVALID;
		t.width = (unsigned)v;
	}
	if (*s != '\0')
		return SG_ERR_INVALID;
	*ret = t;
	return 0;
}

unsigned
sg_tile_width(unsigned level, uint64_t index, uint64_t size)
{
	uint64_t nodes, first;

	if (level >= SG_TILE_LEVELS)
		return 0;
	nodes = size >> (SG_TILE_HEIGHT * level);
	if (index > (nodes >> SG_TILE_HEIGHT))
		return 0;
	first = index << SG_TILE_HEIGHT;
	if (nodes - first >= SG_TILE_WIDTH)
		return SG_TILE_WIDTH;
	return (unsigned)(nodes - first);
}

int
sg_tile_covered(const struct sg_tile *t, uint64_t size)
{
	return t->width > 0 && t->width <= sg_tile_width(t->level, t->index,
	    size);
}

int
sg_tile_subtree(const uint8_t *hashes, unsigned width, unsigned h,
    unsigned off, uint8_t out[SG_HASH_LEN])
{
	uint8_t level[SG_TILE_WIDTH][SG_HASH_LEN];
	unsigned n, i, k;

	if (h > SG_TILE_HEIGHT || width > SG_TILE_WIDTH ||
	    off % (1u << h) != 0 || off + (1u << h) > width)
		return SG_ERR_INVALID;
	n = 1u << h;
	memcpy(level, hashes + (size_t)off * SG_HASH_LEN,
	    (size_t)n * SG_HASH_LEN);
	for (k = 0; k < h; k++) {
		n /= 2;
		for (i = 0; i < n; i++)
			sg_merkle_node_hash(level[2 * i], level[2 * i + 1],
			    level[i]);
	}
	memcpy(out, level[0], SG_HASH_LEN);
	return 0;
}

int
sg_tile_bundle_add(uint8_t *buf, size_t cap, size_t *len, const void *entry,
    size_t elen)
{
	if (elen > SG_TILE_ENTRY_MAX)
		return SG_ERR_TOO_LARGE;
	if (cap < *len || cap - *len < 2 + elen)
		return SG_ERR_BUFFER;
	buf[*len] = (uint8_t)(elen >> 8);
	buf[*len + 1] = (uint8_t)elen;
	memcpy(buf + *len + 2, entry, elen);
	*len += 2 + elen;
	return 0;
}

int
sg_tile_bundle_next(const uint8_t *buf, size_t len, size_t *pos,
    const uint8_t **ret_entry, size_t *ret_len)
{
	size_t p = *pos, n;

	if (p == len)
		return 0;
	if (p > len || len - p < 2)
		return SG_ERR_INVALID;
	n = (size_t)buf[p] << 8 | buf[p + 1];
	if (len - p - 2 < n)
		return SG_ERR_INVALID;
	*ret_entry = buf + p + 2;
	*ret_len = n;
	*pos = p + 2 + n;
	return 1;
}
