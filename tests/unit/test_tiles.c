/*
 * Tiles (sg_tiles.h) and the tile reader (sg_tile_client.h): paths in
 * their one spelling, widths, bundles; then a log of 66000 entries
 * written out here as tiles (levels 0 to 2, full and partial) with a
 * signed checkpoint, read back through the reader from the directory:
 * every entry, consistency with older trees, and a changed byte in a
 * tile or a bundle, a wrong key, a forged root each refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_note.h"
#include "sg_test.h"
#include "sg_tile_client.h"
#include "sg_tiles.h"
#include "sg_util.h"

static void
path_is(unsigned level, uint64_t index, unsigned width, int entries,
    const char *want)
{
	struct sg_tile t = { entries, level, index, width }, back;
	char p[SG_TILE_PATH_SIZE];

	CHECK_EQ_INT(sg_tile_path(&t, p), 0);
	CHECK_STR(p, want);
	memset(&back, 0x55, sizeof(back));
	CHECK_EQ_INT(sg_tile_path_parse(p, &back), 0);
	CHECK(back.entries == entries && back.level == level &&
	    back.index == index && back.width == width);
}

static void
test_paths(void)
{
	static const char *const bad[] = {
		"", "tile", "tile/", "tile/0", "tile/0/", "tile/0/1",
		"tile/0/01", "tile/0/0000", "tile/0/x000/001",
		"tile/0/x001", "tile/0/x001/", "tile/0/001/002",
		"tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/007",
		"tile/0/000.p/", "tile/0/000.p", "tile/0/000/", "tile/00/000",
		"tile/64/000", "tile/-1/000", "tile/0/000 ", "/tile/0/000",
		"tile/entries/", "tile/entries/x000/000",
		"tile/entries/000.p/300", "tile/entry/000", "tile/0/X001/000",
		"tile/0/x001/x002/x003/x004/x005/x006/x007/000",
		"tile/0/x009/x223/x372/x036/x854/x775/808", /* past 2^63/256 */
		"tile/1/000\n", "checkpoint",
	};
	struct sg_tile t;
	size_t i;
	uint64_t n;

	path_is(0, 0, 256, 0, "tile/0/000");
	path_is(0, 1234067, 256, 0, "tile/0/x001/x234/067");
	path_is(3, 1000, 7, 0, "tile/3/x001/000.p/7");
	path_is(1, 999, 255, 0, "tile/1/999.p/255");
	path_is(0, 5, 1, 1, "tile/entries/005.p/1");
	path_is(0, 1000000, 256, 1, "tile/entries/x001/x000/000");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&t, 0, sizeof(t));
		if (sg_tile_path_parse(bad[i], &t) != SG_ERR_INVALID) {
			fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
			CHECK(0);
		}
	}
	/* Every index back through its path, over many magnitudes. */
	for (n = 1; n < ((uint64_t)1 << 55); n = n * 7 + 3) {
		struct sg_tile u = { (int)(n % 2), 0, n, (unsigned)(n % 256) + 1 };
		struct sg_tile back;
		char p[SG_TILE_PATH_SIZE];

		if (!u.entries)
			u.level = (unsigned)(n % 8);
		CHECK_EQ_INT(sg_tile_path(&u, p), 0);
		CHECK_EQ_INT(sg_tile_path_parse(p, &back), 0);
		/* Field by field: the struct's padding is not the parser's. */
		CHECK(u.entries == back.entries && u.level == back.level &&
		    u.index == back.index && u.width == back.width);
	}
	t.entries = 1;
	t.level = 1;
	t.index = 0;
	t.width = 256;
	CHECK_EQ_INT(sg_tile_path(&t, (char[SG_TILE_PATH_SIZE]){ 0 }),
	    SG_ERR_INVALID);
}

static void
test_widths(void)
{
	struct sg_tile t = { 0, 0, 0, 256 };

	CHECK_EQ_INT(sg_tile_width(0, 0, 0), 0);
	CHECK_EQ_INT(sg_tile_width(0, 0, 1), 1);
	CHECK_EQ_INT(sg_tile_width(0, 0, 256), 256);
	CHECK_EQ_INT(sg_tile_width(0, 1, 256), 0);
	CHECK_EQ_INT(sg_tile_width(1, 0, 255), 0);
	CHECK_EQ_INT(sg_tile_width(1, 0, 256), 1);
	CHECK_EQ_INT(sg_tile_width(0, 3, 1000), 232);
	CHECK_EQ_INT(sg_tile_width(1, 0, 1000), 3);
	CHECK_EQ_INT(sg_tile_width(1, 0, 65535), 255);
	CHECK_EQ_INT(sg_tile_width(1, 0, 65536), 256);
	CHECK_EQ_INT(sg_tile_width(2, 0, 65536), 1);
	CHECK_EQ_INT(sg_tile_width(2, 1, 65536), 0);
	CHECK_EQ_INT(sg_tile_width(7, 0, SG_MERKLE_MAX_SIZE), 127);
	CHECK_EQ_INT(sg_tile_width(8, 0, SG_MERKLE_MAX_SIZE), 0);
	CHECK(sg_tile_covered(&t, 256));
	CHECK(!sg_tile_covered(&t, 255));
	t.width = 255;
	CHECK(sg_tile_covered(&t, 255));
	CHECK(sg_tile_covered(&t, 100000));     /* an older partial tile */
	t.width = 0;
	CHECK(!sg_tile_covered(&t, 100000));
}

static void
test_bundles(void)
{
	uint8_t buf[2 + 300 + 2 + 0 + 2 + SG_TILE_ENTRY_MAX], big[300];
	const uint8_t *e;
	size_t len = 0, pos = 0, elen;
	uint8_t *huge;

	memset(big, 'b', sizeof(big));
	CHECK_EQ_INT(sg_tile_bundle_add(buf, sizeof(buf), &len, big, 300), 0);
	CHECK(buf[0] == 1 && buf[1] == 44);     /* 300, big-endian */
	CHECK_EQ_INT(sg_tile_bundle_add(buf, sizeof(buf), &len, "", 0), 0);
	if ((huge = malloc(SG_TILE_ENTRY_MAX + 1)) == NULL)
		abort();
	memset(huge, 'h', SG_TILE_ENTRY_MAX + 1);
	CHECK_EQ_INT(sg_tile_bundle_add(buf, sizeof(buf), &len, huge,
	    SG_TILE_ENTRY_MAX + 1), SG_ERR_TOO_LARGE);
	CHECK_EQ_INT(sg_tile_bundle_add(buf, sizeof(buf), &len, huge,
	    SG_TILE_ENTRY_MAX), 0);
	CHECK_EQ_INT(sg_tile_bundle_add(buf, sizeof(buf), &len, "x", 1),
	    SG_ERR_BUFFER);
	CHECK(buf[304] == 0xff && buf[305] == 0xff);
	CHECK_EQ_INT(sg_tile_bundle_next(buf, len, &pos, &e, &elen), 1);
	CHECK(elen == 300 && e == buf + 2);
	CHECK_EQ_INT(sg_tile_bundle_next(buf, len, &pos, &e, &elen), 1);
	CHECK(elen == 0);
	CHECK_EQ_INT(sg_tile_bundle_next(buf, len, &pos, &e, &elen), 1);
	CHECK(elen == SG_TILE_ENTRY_MAX);
	CHECK_EQ_INT(sg_tile_bundle_next(buf, len, &pos, &e, &elen), 0);
	/* Truncated: in a length, and in an entry. */
	pos = 0;
	CHECK_EQ_INT(sg_tile_bundle_next(buf, 1, &pos, &e, &elen),
	    SG_ERR_INVALID);
	pos = 0;
	CHECK_EQ_INT(sg_tile_bundle_next(buf, 301, &pos, &e, &elen),
	    SG_ERR_INVALID);
	free(huge);
}

/* ---- a log written out as tiles ---------------------------------- */

#define N 66000
#define ORIGIN "tiles.test/log"

struct tree {
	uint8_t *nodes[SG_TILE_LEVELS * SG_TILE_HEIGHT]; /* by level */
	uint64_t count[SG_TILE_LEVELS * SG_TILE_HEIGHT];
};

static int
keep_node(void *arg, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN])
{
	struct tree *tr = arg;

	if (level >= SG_TILE_LEVELS * SG_TILE_HEIGHT ||
	    index != tr->count[level])
		return SG_ERR_INTERNAL;
	if (tr->nodes[level] == NULL &&
	    (tr->nodes[level] = malloc((size_t)(N >> level) * SG_HASH_LEN +
	    SG_HASH_LEN)) == NULL)
		abort();
	memcpy(tr->nodes[level] + index * SG_HASH_LEN, hash, SG_HASH_LEN);
	tr->count[level]++;
	return 0;
}

static void
entry_text(uint64_t i, char *buf, size_t cap, size_t *len)
{
	/* Lengths from 1 byte to a few hundred. */
	int n = snprintf(buf, cap, "entry %llu %.*s", (unsigned long long)i,
	    (int)(i * 31 % 400), "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop"
	    "qrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyza"
	    "bcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"
	    "mnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvw"
	    "xyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh"
	    "ijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrs"
	    "tuvwxyzabcdefghijklmnopqrstuvwxyz");
	*len = (size_t)n;
}

static void
put_file(const char *dir, const char *rel, const void *buf, size_t len)
{
	char *path = sg_path_join(dir, rel), *s;

	if (path == NULL)
		abort();
	for (s = strchr(path + strlen(dir) + 1, '/'); s != NULL;
	    s = strchr(s + 1, '/')) {
		*s = '\0';
		mkdir(path, 0700);
		*s = '/';
	}
	/* No fsync: hundreds of files, and nothing here must survive a
	 * crash. */
	{
		FILE *f = fopen(path, "wb");
		CHECK(f != NULL && fwrite(buf, 1, len, f) == len &&
		    fclose(f) == 0);
	}
	free(path);
}

struct log {
	char dir[256];
	char *vkey;
	uint8_t roots[6][SG_HASH_LEN];
	uint64_t sizes[6];
	EVP_PKEY *key;
};

/* The tiles of the tree of `size` leaves of tr (with its entries). */
static void
write_tiles(const char *dir, const struct tree *tr, uint64_t size)
{
	char path[SG_TILE_PATH_SIZE], text[600];
	struct sg_tile t;
	uint8_t *bundle;
	size_t blen, elen;
	uint64_t i;
	unsigned level;

	if ((bundle = malloc(SG_TILE_BUNDLE_MAX)) == NULL)
		abort();
	for (level = 0; level < SG_TILE_LEVELS; level++) {
		memset(&t, 0, sizeof(t));
		t.level = level;
		for (t.index = 0; (t.width = sg_tile_width(level, t.index,
		    size)) > 0; t.index++) {
			sg_tile_path(&t, path);
			put_file(dir, path, tr->nodes[level * SG_TILE_HEIGHT] +
			    t.index * SG_TILE_HASHES_MAX,
			    (size_t)t.width * SG_HASH_LEN);
		}
	}
	memset(&t, 0, sizeof(t));
	t.entries = 1;
	for (t.index = 0; (t.width = sg_tile_width(0, t.index, size)) > 0;
	    t.index++) {
		blen = 0;
		for (i = 0; i < t.width; i++) {
			entry_text(t.index * SG_TILE_WIDTH + i, text,
			    sizeof(text), &elen);
			sg_tile_bundle_add(bundle, SG_TILE_BUNDLE_MAX, &blen,
			    text, elen);
		}
		sg_tile_path(&t, path);
		put_file(dir, path, bundle, blen);
	}
	free(bundle);
}

static void
write_checkpoint(struct log *lg, uint64_t size, const uint8_t root[32],
    const char *origin)
{
	struct sg_checkpoint cp;
	uint8_t sig[SG_ED25519_SIG], pub[SG_ED25519_PUB];
	size_t siglen = sizeof(sig), publen = sizeof(pub);
	char *text = NULL, *line = NULL, *note = NULL;
	EVP_MD_CTX *m = EVP_MD_CTX_new();

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
	cp.size = size;
	memcpy(cp.root, root, SG_HASH_LEN);
	if (m == NULL || sg_checkpoint_format(&cp, &text) != 0 ||
	    EVP_DigestSignInit(m, NULL, NULL, NULL, lg->key) != 1 ||
	    EVP_DigestSign(m, sig, &siglen, (uint8_t *)text,
	    strlen(text)) != 1 ||
	    EVP_PKEY_get_raw_public_key(lg->key, pub, &publen) != 1 ||
	    sg_note_signature_line(origin, sg_note_key_id(origin, pub), sig,
	    &line) != 0 || asprintf(&note, "%s\n%s", text, line) < 0)
		abort();
	put_file(lg->dir, "checkpoint", note, strlen(note));
	EVP_MD_CTX_free(m);
	free(text);
	free(line);
	free(note);
}

static void
make_log(struct log *lg, struct tree *tr)
{
	struct sg_merkle_frontier f;
	uint8_t leaf[SG_HASH_LEN], pub[SG_ED25519_PUB];
	static const uint64_t at[6] = { 1, 255, 256, 257, 65536, N };
	size_t publen = sizeof(pub), k = 0, elen;
	char text[600];
	uint64_t i;

	memset(tr, 0, sizeof(*tr));
	sg_merkle_frontier_init(&f);
	for (i = 0; i < N; i++) {
		entry_text(i, text, sizeof(text), &elen);
		sg_merkle_leaf_hash((uint8_t *)text, elen, leaf);
		if (sg_merkle_frontier_append(&f, leaf, keep_node, tr) != 0)
			abort();
		if (k < 6 && i + 1 == at[k]) {
			lg->sizes[k] = i + 1;
			sg_merkle_frontier_root(&f, lg->roots[k]);
			k++;
		}
	}
	if (sg_fx_tmpdir("tiles", lg->dir, sizeof(lg->dir)) != 0 ||
	    (lg->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(lg->key, pub, &publen) != 1 ||
	    sg_note_vkey_format(ORIGIN, pub, &lg->vkey) != 0)
		abort();
	write_tiles(lg->dir, tr, N);
	write_checkpoint(lg, N, lg->roots[5], ORIGIN);
}

static void
free_log(struct log *lg, struct tree *tr)
{
	size_t i;

	for (i = 0; i < SG_TILE_LEVELS * SG_TILE_HEIGHT; i++)
		free(tr->nodes[i]);
	CHECK_EQ_INT(sg_fx_rm_tree(lg->dir), 0);
	EVP_PKEY_free(lg->key);
	free(lg->vkey);
}

struct seen {
	uint64_t next;
	int bad;
};

static int
see_entry(void *arg, uint64_t index, const uint8_t *e, size_t len)
{
	struct seen *s = arg;
	char want[600];
	size_t wl;

	entry_text(index, want, sizeof(want), &wl);
	if (index != s->next || len != wl || memcmp(e, want, len) != 0)
		s->bad++;
	s->next = index + 1;
	return 0;
}

/* Opens the directory and verifies its checkpoint with vkey. */
static struct sg_tile_client *
reader(const struct log *lg, const char *vkey, int want)
{
	struct sg_tile_client *c = NULL;

	CHECK_EQ_INT(sg_tile_client_open(lg->dir, NULL, 0, &c), 0);
	if (c == NULL)
		return NULL;
	CHECK_EQ_INT(sg_tile_client_checkpoint(c, vkey), want);
	return c;
}

static void
flip(const char *dir, const char *rel, size_t at)
{
	char *path = sg_path_join(dir, rel), *buf = NULL;
	size_t len = 0;

	if (path == NULL || sg_read_file(path, SG_TILE_BUNDLE_MAX, &buf,
	    &len) != 0 || at >= len)
		abort();
	buf[at] ^= 1;
	put_file(dir, rel, buf, len);
	free(buf);
	free(path);
}

static void
test_client(void)
{
	struct log lg;
	struct tree *tr = calloc(1, sizeof(*tr));
	struct sg_tile_client *c;
	struct seen s = { 0, 0 };
	struct sg_tile t = { 0, 1, 0, 1 };
	uint8_t wrong[SG_HASH_LEN], *buf = NULL;
	size_t k, len = 0;

	if (tr == NULL)
		abort();
	memset(&lg, 0, sizeof(lg));
	make_log(&lg, tr);

	/* Every entry, checked. */
	if ((c = reader(&lg, lg.vkey, 0)) == NULL)
		goto out;
	CHECK(sg_tile_client_cp(c)->size == N);
	CHECK_EQ_INT(sg_tile_client_entries(c, 0, N, see_entry, &s), 0);
	CHECK(s.next == N && s.bad == 0);
	s.next = 65530;
	CHECK_EQ_INT(sg_tile_client_entries(c, 65530, 65540, see_entry, &s),
	    0);
	CHECK(s.next == 65540 && s.bad == 0);
	CHECK_EQ_INT(sg_tile_client_entries(c, 0, N + 1, see_entry, &s),
	    SG_ERR_INVALID);
	/* Older trees: consistent; a wrong root: a fork. */
	for (k = 0; k < 6; k++)
		CHECK_EQ_INT(sg_tile_client_consistent(c, lg.sizes[k],
		    lg.roots[k]), 0);
	CHECK_EQ_INT(sg_tile_client_consistent(c, 0, sg_merkle_empty_root),
	    0);
	memcpy(wrong, lg.roots[3], SG_HASH_LEN);
	wrong[0] ^= 1;
	CHECK_EQ_INT(sg_tile_client_consistent(c, 257, wrong),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_tile_client_consistent(c, N + 1, wrong),
	    SG_ERR_VERIFY);
	/* A tile as the tree has it; one it does not have. */
	t.index = 1;
	t.width = (N >> 8) % 256;
	CHECK_EQ_INT(sg_tile_client_tile(c, &t, &buf, &len), 0);
	CHECK(len == t.width * SG_HASH_LEN && buf != NULL &&
	    memcmp(buf, tr->nodes[8] + SG_TILE_HASHES_MAX, len) == 0);
	free(buf);
	buf = NULL;
	t.width = 256;
	CHECK_EQ_INT(sg_tile_client_tile(c, &t, &buf, &len),
	    SG_ERR_NOT_FOUND);
	sg_tile_client_free(c);

	/* Another key; another origin under the same key. */
	{
		char *other = NULL;
		uint8_t pub[SG_ED25519_PUB] = { 1 };

		if (sg_note_vkey_format(ORIGIN, pub, &other) != 0)
			abort();
		sg_tile_client_free(reader(&lg, other, SG_ERR_VERIFY));
		free(other);
	}

	/* A changed byte in a full level-0 tile, in a bundle, in the
	 * level-1 partial tile: each refused where it is read. */
	flip(lg.dir, "tile/0/000", 40);
	if ((c = reader(&lg, lg.vkey, 0)) != NULL) {
		CHECK_EQ_INT(sg_tile_client_entries(c, 0, 1, see_entry, &s),
		    SG_ERR_VERIFY);
		CHECK(strstr(sg_tile_client_error(c), "tile 0/0") != NULL);
		s.next = 300;
		CHECK_EQ_INT(sg_tile_client_entries(c, 300, 301, see_entry,
		    &s), 0);
		sg_tile_client_free(c);
	}
	flip(lg.dir, "tile/0/000", 40);
	flip(lg.dir, "tile/entries/001", 100);
	if ((c = reader(&lg, lg.vkey, 0)) != NULL) {
		CHECK_EQ_INT(sg_tile_client_entries(c, 256, 257, see_entry,
		    &s), SG_ERR_VERIFY);
		sg_tile_client_free(c);
	}
	flip(lg.dir, "tile/entries/001", 100);
	{
		char p[SG_TILE_PATH_SIZE];
		struct sg_tile u = { 0, 1, 1, (N >> 8) % 256 };

		sg_tile_path(&u, p);
		flip(lg.dir, p, 0);
		if ((c = reader(&lg, lg.vkey, 0)) != NULL) {
			s.next = 65536;
			CHECK_EQ_INT(sg_tile_client_entries(c, 65536, 65537,
			    see_entry, &s), SG_ERR_VERIFY);
			CHECK(strstr(sg_tile_client_error(c), "root") !=
			    NULL);
			sg_tile_client_free(c);
		}
		flip(lg.dir, p, 0);
	}

	/* A signed checkpoint whose root the tiles do not give. */
	write_checkpoint(&lg, N, wrong, ORIGIN);
	if ((c = reader(&lg, lg.vkey, 0)) != NULL) {
		CHECK_EQ_INT(sg_tile_client_entries(c, 0, 1, see_entry, &s),
		    SG_ERR_VERIFY);
		sg_tile_client_free(c);
	}
	/* A partial tile gone (the log grew): the full one's start. */
	write_checkpoint(&lg, 257, lg.roots[3], ORIGIN);
	if ((c = reader(&lg, lg.vkey, 0)) != NULL) {
		s.next = 256;
		CHECK_EQ_INT(sg_tile_client_entries(c, 256, 257, see_entry,
		    &s), 0);
		CHECK(s.next == 257 && s.bad == 0);
		sg_tile_client_free(c);
	}
out:
	free_log(&lg, tr);
	free(tr);
}

SG_TEST_MAIN("tiles",
    T(test_paths),
    T(test_widths),
    T(test_bundles),
    T(test_client))
