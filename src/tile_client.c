/*
 * The tile reader (see include/sg_tile_client.h).
 *
 * Fetching: one libcurl easy handle per client (keep-alive), with the
 * settings of the CLI's client: TLS 1.2 or newer, peer and host verified,
 * no redirects, https and http only, each response capped at the size
 * its kind can have.  A directory is read with the same caps.  A partial
 * tile the source no longer has (the log grew and the source kept only
 * the full tile) is read as the prefix of the full one, as the
 * specification allows.  A 429 (the gateway's budget for anonymous
 * readers) is waited out as its Retry-After says, a bounded number of
 * times, so that a mirror of a large log gets there at the pace allowed.
 *
 * Checking: tiles are cached per checkpoint, each marked once checked
 * (sg_tile_client.h says how); a new checkpoint empties the cache, so
 * that nothing checked against one tree is taken for part of another,
 * and so does a full one (CACHE_MAX tiles) between two calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "sg_curl.h"
#include "sg_err.h"
#include "sg_tile_client.h"
#include "sg_util.h"

#define NBUCKETS 1024
/* Tiles kept at most (8 KiB each): past it the cache starts over at the
 * next call, so that reading a large log takes bounded memory. */
#define CACHE_MAX 4096
#define DEFAULT_TIMEOUT 30L
/* A source that answers 429 (the gateway's anonymous budget) is asked
 * again after its Retry-After, this many times, waiting at most so long
 * each time. */
#define BUSY_TRIES 20
#define BUSY_WAIT_MAX 10

struct cached {
	unsigned level;
	uint64_t index;
	unsigned width;
	int checked;
	uint8_t *hashes;               /* width * SG_HASH_LEN */
	struct cached *next;
};

struct sg_tile_client {
	char *base;                    /* URL or directory, no trailing '/' */
	int is_dir;
	CURL *curl;
	long timeout;
	char curl_err[CURL_ERROR_SIZE];
	char err[1024];
	/* The response being received. */
	uint8_t *buf;
	size_t len, cap, max;
	int too_large;
	/* The checkpoint and its key. */
	char name[SG_NOTE_NAME_MAX + 1];
	uint32_t id;
	uint8_t pub[SG_ED25519_PUB];
	int have_cp;
	struct sg_checkpoint cp;
	char *note;
	size_t note_len;
	int edge_checked;
	struct cached *buckets[NBUCKETS];
	size_t ncached;
};

static int
fail(struct sg_tile_client *c, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct sg_tile_client *c, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return r;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sg_tile_client *c = arg;
	size_t n = size * nmemb, ncap;
	uint8_t *nb;

	if (size != 0 && n / size != nmemb)
		return 0;
	if (n > c->max - c->len) {
		c->too_large = 1;
		return 0;
	}
	if (c->len + n > c->cap) {
		ncap = c->cap == 0 ? 16384 : c->cap;
		while (ncap < c->len + n)
			ncap *= 2;
		if ((nb = realloc(c->buf, ncap)) == NULL)
			return 0;
		c->buf = nb;
		c->cap = ncap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	return n;
}

static void
cache_clear(struct sg_tile_client *c)
{
	struct cached *t, *next;
	size_t i;

	for (i = 0; i < NBUCKETS; i++) {
		for (t = c->buckets[i]; t != NULL; t = next) {
			next = t->next;
			free(t->hashes);
			free(t);
		}
		c->buckets[i] = NULL;
	}
	c->ncached = 0;
	c->edge_checked = 0;
}

/* Between two tiles, when no cached tile is in use: a full cache starts
 * over (what it held is fetched and checked again if needed). */
static void
cache_trim(struct sg_tile_client *c)
{
	if (c->ncached >= CACHE_MAX)
		cache_clear(c);
}

void
sg_tile_client_free(struct sg_tile_client *c)
{
	if (c == NULL)
		return;
	cache_clear(c);
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->buf);
	free(c->note);
	free(c);
}

const char *
sg_tile_client_error(const struct sg_tile_client *c)
{
	return c->err[0] != '\0' ? c->err : "unknown error";
}

static int
open_curl(struct sg_tile_client *c, const char *cafile)
{
	int r;

	if ((r = sg_curl_new(cafile, c->timeout, c->curl_err, on_body, c,
	    &c->curl)) != 0)
		return r;
	if (curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->timeout) !=
	    CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L) != CURLE_OK)
		return SG_ERR_INTERNAL;
	return 0;
}

int
sg_tile_client_open(const char *source, const char *cafile, long timeout,
    struct sg_tile_client **ret)
{
	struct sg_tile_client *c;
	struct stat sb;
	size_t n;
	int r;

	if (source == NULL || source[0] == '\0' || timeout < 0)
		return SG_ERR_INVALID;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SG_ERR_NOMEM;
	c->timeout = timeout > 0 ? timeout : DEFAULT_TIMEOUT;
	if ((c->base = strdup(source)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	n = strlen(c->base);
	while (n > 1 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (strncmp(source, "https://", 8) == 0 ||
	    strncmp(source, "http://", 7) == 0)
		r = open_curl(c, cafile);
	else if (stat(source, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		c->is_dir = 1;
		r = 0;
	} else
		r = SG_ERR_INVALID;
	if (r != 0)
		goto out;
	*ret = c;
	c = NULL;
out:
	sg_tile_client_free(c);
	return r;
}

/* One file of the source, at most max bytes, in c->buf / c->len. */
static int
fetch(struct sg_tile_client *c, const char *path, size_t max)
{
	char *url = NULL, *data = NULL;
	long status = 0;
	curl_off_t after;
	struct timespec ts;
	CURLcode cr;
	int r, tries;

	c->len = 0;
	c->too_large = 0;
	c->max = max;
	c->curl_err[0] = '\0';
	if (c->is_dir) {
		if ((url = sg_path_join(c->base, path)) == NULL)
			return SG_ERR_NOMEM;
		r = sg_read_file(url, max, &data, &c->len);
		if (r == 0) {
			free(c->buf);
			c->buf = (uint8_t *)data;
			c->cap = c->len;
		} else if (r == SG_ERR_TOO_LARGE)
			fail(c, r, "%s: larger than %zu bytes", url, max);
		else if (r != SG_ERR_NOT_FOUND)
			fail(c, r, "%s: %s", url, sg_strerror(r));
		else
			fail(c, r, "%s: no such file", url);
		free(url);
		return r;
	}
	if (asprintf(&url, "%s/%s", c->base, path) < 0)
		return SG_ERR_NOMEM;
	if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK) {
		r = fail(c, SG_ERR_INTERNAL, "%s: cannot be set", url);
		goto out;
	}
	for (tries = 0;; tries++) {
		c->len = 0;
		c->too_large = 0;
		cr = curl_easy_perform(c->curl);
		status = 0;
		if (cr == CURLE_OK)
			curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE,
			    &status);
		if (status != 429 || tries + 1 == BUSY_TRIES)
			break;
		/* Over the source's budget for readers: wait as told. */
		if (curl_easy_getinfo(c->curl, CURLINFO_RETRY_AFTER,
		    &after) != CURLE_OK || after < 1)
			after = 1;
		ts.tv_sec = after < BUSY_WAIT_MAX ? (time_t)after :
		    BUSY_WAIT_MAX;
		ts.tv_nsec = 0;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	if (cr != CURLE_OK) {
		if (c->too_large)
			r = fail(c, SG_ERR_TOO_LARGE, "GET %s: larger than %zu "
			    "bytes", url, max);
		else
			r = fail(c, cr == CURLE_OPERATION_TIMEDOUT ?
			    SG_ERR_TIMEOUT : SG_ERR_UNAVAILABLE, "GET %s: %s%s%s",
			    url, curl_easy_strerror(cr),
			    c->curl_err[0] ? ": " : "", c->curl_err);
		goto out;
	}
	if (status == 404 || status == 410)
		r = fail(c, SG_ERR_NOT_FOUND, "GET %s: HTTP %ld", url, status);
	else if (status != 200)
		r = fail(c, SG_ERR_UNAVAILABLE, "GET %s: HTTP %ld", url,
		    status);
	else
		r = 0;
out:
	free(url);
	return r;
}

const struct sg_checkpoint *
sg_tile_client_cp(const struct sg_tile_client *c)
{
	return c->have_cp ? &c->cp : NULL;
}

const char *
sg_tile_client_note(const struct sg_tile_client *c, size_t *ret_len)
{
	if (ret_len != NULL)
		*ret_len = c->have_cp ? c->note_len : 0;
	return c->have_cp ? c->note : NULL;
}

int
sg_tile_client_checkpoint(struct sg_tile_client *c, const char *vkey)
{
	struct sg_checkpoint cp;
	char *note;
	size_t tl;
	int r;

	char safe[2 * SG_NOTE_NAME_MAX];

	c->err[0] = '\0';
	if (sg_note_vkey_parse(vkey, c->name, &c->id, c->pub) != 0) {
		sg_escape(vkey, strlen(vkey), safe, sizeof(safe));
		return fail(c, SG_ERR_INVALID, "not a verifier key: %s", safe);
	}
	if ((r = fetch(c, "checkpoint", SG_NOTE_MAX)) != 0)
		return r;
	if (sg_note_verify((const char *)c->buf, c->len, c->name, c->id,
	    c->pub, &tl) != 0)
		return fail(c, SG_ERR_VERIFY, "the checkpoint is not signed "
		    "by %s", c->name);
	if (sg_checkpoint_parse((const char *)c->buf, tl, &cp) != 0)
		return fail(c, SG_ERR_VERIFY, "the signed checkpoint is "
		    "malformed");
	if (strcmp(cp.origin, c->name) != 0) {
		sg_escape(cp.origin, strlen(cp.origin), safe, sizeof(safe));
		return fail(c, SG_ERR_VERIFY, "the checkpoint is of log "
		    "\"%s\", not of \"%s\"", safe, c->name);
	}
	if ((note = malloc(c->len + 1)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(note, c->buf, c->len);
	note[c->len] = '\0';
	free(c->note);
	c->note = note;
	c->note_len = c->len;
	/* Another tree: nothing checked against the last one holds. */
	if (!c->have_cp || c->cp.size != cp.size ||
	    memcmp(c->cp.root, cp.root, SG_HASH_LEN) != 0)
		cache_clear(c);
	c->cp = cp;
	c->have_cp = 1;
	return 0;
}

/* ---- tiles ---------------------------------------------------------- */

static struct cached **
bucket(struct sg_tile_client *c, unsigned level, uint64_t index)
{
	return &c->buckets[(index * 8 + level) % NBUCKETS];
}

/* Hash tile (level, index) of the checkpoint's tree, fetched if need be
 * (not checked yet: see check_tile). */
static int
load(struct sg_tile_client *c, unsigned level, uint64_t index,
    struct cached **ret)
{
	struct sg_tile t;
	struct cached *e, **b = bucket(c, level, index);
	char path[SG_TILE_PATH_SIZE];
	size_t want;
	int r;

	for (e = *b; e != NULL; e = e->next)
		if (e->level == level && e->index == index) {
			*ret = e;
			return 0;
		}
	memset(&t, 0, sizeof(t));
	t.level = level;
	t.index = index;
	if ((t.width = sg_tile_width(level, index, c->cp.size)) == 0)
		return fail(c, SG_ERR_NOT_FOUND, "a tree of %llu entries has "
		    "no tile %u/%llu", (unsigned long long)c->cp.size, level,
		    (unsigned long long)index);
	want = (size_t)t.width * SG_HASH_LEN;
	if ((r = sg_tile_path(&t, path)) != 0)
		return r;
	r = fetch(c, path, want);
	if (r == SG_ERR_NOT_FOUND && t.width < SG_TILE_WIDTH) {
		/* The log grew since: the full tile starts the same way. */
		t.width = SG_TILE_WIDTH;
		if ((r = sg_tile_path(&t, path)) != 0)
			return r;
		if ((r = fetch(c, path, SG_TILE_HASHES_MAX)) == 0 &&
		    c->len == SG_TILE_HASHES_MAX)
			c->len = want;
		t.width = (unsigned)(want / SG_HASH_LEN);
	}
	if (r != 0)
		return r;
	if (c->len != want)
		return fail(c, SG_ERR_VERIFY, "tile %s: %zu bytes, not %zu",
		    path, c->len, want);
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return SG_ERR_NOMEM;
	if ((e->hashes = malloc(want)) == NULL) {
		free(e);
		return SG_ERR_NOMEM;
	}
	memcpy(e->hashes, c->buf, want);
	e->level = level;
	e->index = index;
	e->width = t.width;
	e->next = *b;
	*b = e;
	c->ncached++;
	*ret = e;
	return 0;
}

/* The merkle module's look-up: complete subtree (level, index) from the
 * tiles, unchecked (a root or a proof made of them is what is checked). */
static int
get_node(void *arg, unsigned level, uint64_t index, uint8_t out[SG_HASH_LEN])
{
	struct sg_tile_client *c = arg;
	struct cached *e;
	unsigned h = level % SG_TILE_HEIGHT;
	uint64_t first;
	int r;

	if (level >= SG_TILE_LEVELS * SG_TILE_HEIGHT ||
	    index > (SG_MERKLE_MAX_SIZE >> level))
		return SG_ERR_INVALID;
	first = index << h;
	if ((r = load(c, level / SG_TILE_HEIGHT, first / SG_TILE_WIDTH,
	    &e)) != 0)
		return r;
	return sg_tile_subtree(e->hashes, e->width, h,
	    (unsigned)(first % SG_TILE_WIDTH), out);
}

/* The partial tiles of the right edge give the checkpoint's root. */
static int
check_edge(struct sg_tile_client *c)
{
	uint8_t root[SG_HASH_LEN];
	struct cached *e;
	size_t i;
	int r;

	if (c->edge_checked)
		return 0;
	if ((r = sg_merkle_root(get_node, c, c->cp.size, root)) != 0)
		return r;
	if (memcmp(root, c->cp.root, SG_HASH_LEN) != 0)
		return fail(c, SG_ERR_VERIFY, "the tiles of the right edge do "
		    "not give the checkpoint's root: the source's tiles are "
		    "not those of its checkpoint");
	for (i = 0; i < NBUCKETS; i++)
		for (e = c->buckets[i]; e != NULL; e = e->next)
			if (e->width < SG_TILE_WIDTH)
				e->checked = 1;
	c->edge_checked = 1;
	return 0;
}

/* Checks a tile against the checkpoint (sg_tile_client.h says how). */
static int
check_tile(struct sg_tile_client *c, struct cached *e)
{
	struct cached *up;
	uint8_t node[SG_HASH_LEN];
	int r;

	if (e->checked)
		return 0;
	if (e->width < SG_TILE_WIDTH) {
		if ((r = check_edge(c)) != 0)
			return r;
		return e->checked ? 0 : fail(c, SG_ERR_INTERNAL, "tile %u/%llu "
		    "is not on the right edge", e->level,
		    (unsigned long long)e->index);
	}
	if ((r = sg_tile_subtree(e->hashes, e->width, SG_TILE_HEIGHT, 0,
	    node)) != 0)
		return r;
	if ((r = load(c, e->level + 1, e->index / SG_TILE_WIDTH, &up)) != 0 ||
	    (r = check_tile(c, up)) != 0)
		return r;
	if (memcmp(up->hashes + (e->index % SG_TILE_WIDTH) * SG_HASH_LEN,
	    node, SG_HASH_LEN) != 0)
		return fail(c, SG_ERR_VERIFY, "tile %u/%llu does not hash to "
		    "its node in the tile above: the source's tiles are not "
		    "those of its checkpoint", e->level,
		    (unsigned long long)e->index);
	e->checked = 1;
	return 0;
}

static int
need_cp(struct sg_tile_client *c)
{
	c->err[0] = '\0';
	cache_trim(c);
	return c->have_cp ? 0 : fail(c, SG_ERR_INVALID, "no checkpoint yet");
}

int
sg_tile_client_consistent(struct sg_tile_client *c, uint64_t old_size,
    const uint8_t old_root[SG_HASH_LEN])
{
	uint8_t proof[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	size_t n;
	int r;

	if ((r = need_cp(c)) != 0)
		return r;
	if (old_size > c->cp.size)
		return fail(c, SG_ERR_VERIFY, "the source's tree has %llu "
		    "entries, fewer than the %llu of the tree held: a "
		    "rollback", (unsigned long long)c->cp.size,
		    (unsigned long long)old_size);
	if (old_size == 0)
		r = memcmp(old_root, sg_merkle_empty_root, SG_HASH_LEN) == 0 ?
		    0 : SG_ERR_VERIFY;
	else if (old_size == c->cp.size)
		r = memcmp(old_root, c->cp.root, SG_HASH_LEN) == 0 ? 0 :
		    SG_ERR_VERIFY;
	else {
		if ((r = sg_merkle_consistency_proof(get_node, c, old_size,
		    c->cp.size, proof, SG_MERKLE_MAX_PROOF, &n)) != 0)
			return c->err[0] ? r : fail(c, r, "no consistency "
			    "proof from the tiles: %s", sg_strerror(r));
		r = sg_merkle_verify_consistency(old_size, c->cp.size,
		    old_root, c->cp.root, (const uint8_t (*)[SG_HASH_LEN])proof,
		    n);
	}
	if (r != 0)
		return fail(c, SG_ERR_VERIFY, "the source's tree of %llu "
		    "entries does not extend the tree of %llu entries held: "
		    "a fork", (unsigned long long)c->cp.size,
		    (unsigned long long)old_size);
	return 0;
}

/*
 * Entry bundle `index` of width `width`, checked entry by entry against
 * the checked level-0 tile; the entries in a fresh bundle of exactly
 * that width (*ret) and their offsets.
 */
static int
load_bundle(struct sg_tile_client *c, uint64_t index, unsigned width,
    uint8_t **ret, size_t *ret_len)
{
	struct sg_tile t;
	struct cached *e;
	char path[SG_TILE_PATH_SIZE];
	uint8_t leaf[SG_HASH_LEN], *out = NULL;
	const uint8_t *ent;
	size_t pos = 0, elen, olen = 0;
	unsigned i;
	int r;

	if ((r = load(c, 0, index, &e)) != 0 || (r = check_tile(c, e)) != 0)
		return r;
	memset(&t, 0, sizeof(t));
	t.entries = 1;
	t.index = index;
	t.width = width;
	if ((r = sg_tile_path(&t, path)) != 0)
		return r;
	r = fetch(c, path, (size_t)width * (2 + SG_TILE_ENTRY_MAX));
	if (r == SG_ERR_NOT_FOUND && width < SG_TILE_WIDTH) {
		t.width = SG_TILE_WIDTH;
		if ((r = sg_tile_path(&t, path)) == 0)
			r = fetch(c, path, SG_TILE_BUNDLE_MAX);
	}
	if (r != 0)
		return r;
	if ((out = malloc(c->len > 0 ? c->len : 1)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < width; i++) {
		if ((r = sg_tile_bundle_next(c->buf, c->len, &pos, &ent,
		    &elen)) != 1) {
			r = fail(c, SG_ERR_VERIFY, "bundle %s: %s after %u "
			    "entries", path, r == 0 ? "ends" : "truncated", i);
			goto out;
		}
		sg_merkle_leaf_hash(ent, elen, leaf);
		if (memcmp(leaf, e->hashes + (size_t)i * SG_HASH_LEN,
		    SG_HASH_LEN) != 0) {
			r = fail(c, SG_ERR_VERIFY, "entry %llu of bundle %s is "
			    "not the entry the tree holds",
			    (unsigned long long)(index * SG_TILE_WIDTH + i),
			    path);
			goto out;
		}
		if ((r = sg_tile_bundle_add(out, c->len, &olen, ent,
		    elen)) != 0)
			goto out;
	}
	/* A bundle of the very width asked for has nothing after. */
	if (t.width == width && pos != c->len) {
		r = fail(c, SG_ERR_VERIFY, "bundle %s: bytes after its %u "
		    "entries", path, width);
		goto out;
	}
	*ret = out;
	*ret_len = olen;
	out = NULL;
	r = 0;
out:
	free(out);
	return r;
}

int
sg_tile_client_entries(struct sg_tile_client *c, uint64_t a, uint64_t b,
    sg_tile_entry_fn fn, void *arg)
{
	uint8_t *bundle = NULL;
	const uint8_t *ent;
	size_t blen, pos, elen;
	uint64_t n, i;
	unsigned width;
	int r;

	if ((r = need_cp(c)) != 0)
		return r;
	if (a > b || b > c->cp.size)
		return fail(c, SG_ERR_INVALID, "entries [%llu, %llu) are not "
		    "all in the tree of %llu", (unsigned long long)a,
		    (unsigned long long)b, (unsigned long long)c->cp.size);
	for (n = a / SG_TILE_WIDTH; a < b; n++) {
		cache_trim(c);
		width = sg_tile_width(0, n, c->cp.size);
		if ((r = load_bundle(c, n, width, &bundle, &blen)) != 0)
			return r;
		pos = 0;
		for (i = n * SG_TILE_WIDTH; sg_tile_bundle_next(bundle, blen,
		    &pos, &ent, &elen) == 1 && i < b; i++) {
			if (i < a)
				continue;
			if ((r = fn(arg, i, ent, elen)) != 0) {
				free(bundle);
				return r;
			}
		}
		free(bundle);
		bundle = NULL;
		a = (n + 1) * SG_TILE_WIDTH;
	}
	return 0;
}

int
sg_tile_client_tile(struct sg_tile_client *c, const struct sg_tile *t,
    uint8_t **ret, size_t *ret_len)
{
	struct cached *e;
	uint8_t *out;
	size_t len;
	int r;

	if ((r = need_cp(c)) != 0)
		return r;
	if (t->width == 0 || t->width != sg_tile_width(t->level, t->index,
	    c->cp.size))
		return fail(c, SG_ERR_NOT_FOUND, "the checkpoint's tree has no "
		    "such tile");
	if (t->entries)
		return load_bundle(c, t->index, t->width, ret, ret_len);
	if ((r = load(c, t->level, t->index, &e)) != 0 ||
	    (r = check_tile(c, e)) != 0)
		return r;
	len = (size_t)e->width * SG_HASH_LEN;
	if ((out = malloc(len)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(out, e->hashes, len);
	*ret = out;
	*ret_len = len;
	return 0;
}
