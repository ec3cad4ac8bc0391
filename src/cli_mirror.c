/*
 * `signgate log mirror DIR`: a static copy of the log that any web server
 * publishes as a c2sp.org/tlog-tiles log (checkpoint, tile/..., nothing
 * else needed), and the check `verify --log SOURCE` makes against such a
 * copy or the gateway's own /log/.
 *
 * The mirror trusts nothing it fetches: the log key is pinned in DIR
 * (given with --vkey, else the gateway's, trusted on first use), the
 * checkpoint must verify with it, every tile and bundle is checked
 * against the checkpoint through the tile reader (sg_tile_client.h), and
 * the new checkpoint must extend the one DIR holds (consistency proved
 * from the tiles), else FORK or ROLLBACK with exit 5 and DIR untouched.
 * Files are written atomically (a temporary file renamed over), the
 * checkpoint last, so a reader of DIR never sees a checkpoint whose tiles
 * are not there.  Full tiles the previous checkpoint covered already are
 * not fetched again; partial tiles of older checkpoints are left for
 * readers still using them.
 *
 * Files in DIR besides the log's: signgate-mirror.vkey (the pinned key).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_tile_client.h"
#include "sg_util.h"

#define VKEY_FILE "signgate-mirror.vkey"
#define VKEY_TEXT_MAX (SG_NOTE_NAME_MAX + 1 + 8 + 1 + 44 + 1)
#define INTERVAL_DEFAULT 60
#define INTERVAL_MAX 86400

enum {
	OPT_FOLLOW = SG_OPT_CMD,
	OPT_INTERVAL,
	OPT_VKEY,
};

struct mirror_args {
	int follow;
	uint64_t interval;
	const char *vkey;
};

static int
mirror_option(void *arg, int opt, const char *v)
{
	struct mirror_args *a = arg;

	switch (opt) {
	case OPT_FOLLOW:
		a->follow = 1;
		return 0;
	case OPT_INTERVAL:
		if (sg_parse_u64(v, 1, INTERVAL_MAX, &a->interval) != 0) {
			fprintf(stderr, "signgate: --interval: seconds from 1 "
			    "to %d\n", INTERVAL_MAX);
			return SG_EXIT_USAGE;
		}
		return 0;
	case OPT_VKEY:
		a->vkey = v;
		return 0;
	}
	return 1;
}

/* A verifier key as one line of text, checked. */
static int
vkey_ok(const char *text)
{
	char name[SG_NOTE_NAME_MAX + 1];
	uint8_t pub[SG_ED25519_PUB];
	uint32_t id;

	return strlen(text) < VKEY_TEXT_MAX &&
	    sg_note_vkey_parse(text, name, &id, pub) == 0;
}

/* mkdir -p of the directories of path (below dir). */
static int
make_parents(const char *path)
{
	char *p, *s;
	int r = 0;

	if ((p = strdup(path)) == NULL)
		return SG_ERR_NOMEM;
	for (s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			r = SG_ERR_IO;
			break;
		}
		*s = '/';
	}
	free(p);
	return r;
}

static int
write_in(const char *dir, const char *name, const void *buf, size_t len)
{
	char *path;
	int r;

	if ((path = sg_path_join(dir, name)) == NULL)
		return SG_ERR_NOMEM;
	if ((r = make_parents(path)) == 0)
		r = sg_write_file(path, buf, len, 0644);
	if (r != 0)
		fprintf(stderr, "signgate: cannot write %s: %s\n", path,
		    sg_strerror(r));
	free(path);
	return r;
}

/* The pinned key: DIR's, else --vkey, else the gateway's (first use). */
static int
mirror_key(struct sg_cli_conf *conf, const char *dir, const char *given,
    char out[VKEY_TEXT_MAX])
{
	struct sg_cli_http *h = NULL;
	struct sg_cli_http_resp resp;
	char *path, *text = NULL;
	size_t len = 0;
	int r, ex = SG_EXIT_OK;

	memset(&resp, 0, sizeof(resp));
	if ((path = sg_path_join(dir, VKEY_FILE)) == NULL)
		return SG_EXIT_LOCAL;
	r = sg_read_file(path, VKEY_TEXT_MAX + 1, &text, &len);
	if (r == 0) {
		while (len > 0 && text[len - 1] == '\n')
			text[--len] = '\0';
		if (strlen(text) != len || !vkey_ok(text)) {
			fprintf(stderr, "signgate: %s: not a verifier key\n",
			    path);
			ex = SG_EXIT_LOCAL;
		} else if (given != NULL && strcmp(given, text) != 0) {
			fprintf(stderr, "signgate: log mirror: KEY CHANGED: "
			    "--vkey %s is not the key pinned in %s (%s)\n",
			    sg_cli_esc(given), path, text);
			ex = SG_EXIT_VERIFY;
		} else
			snprintf(out, VKEY_TEXT_MAX, "%s", text);
		goto out;
	}
	if (r != SG_ERR_NOT_FOUND) {
		fprintf(stderr, "signgate: cannot read %s: %s\n", path,
		    sg_strerror(r));
		ex = SG_EXIT_LOCAL;
		goto out;
	}
	if (given != NULL) {
		if (!vkey_ok(given)) {
			fprintf(stderr, "signgate: --vkey: not a verifier key "
			    "(<name>+<key id>+<base64>)\n");
			ex = SG_EXIT_USAGE;
			goto out;
		}
		snprintf(out, VKEY_TEXT_MAX, "%s", given);
	} else {
		if ((ex = sg_cli_connect(conf, &h)) != 0)
			goto out;
		if ((r = sg_cli_http_request(h, "GET", "/v1/log/key", NULL, 0,
		    NULL, 0, &resp)) != 0 || resp.status != 200) {
			fprintf(stderr, "signgate: GET /v1/log/key: %s\n",
			    r != 0 ? sg_cli_http_error(h) : "not 200");
			ex = SG_EXIT_SERVER;
			goto out;
		}
		while (resp.len > 0 && resp.body[resp.len - 1] == '\n')
			resp.body[--resp.len] = '\0';
		if (strlen(resp.body) != resp.len || !vkey_ok(resp.body)) {
			fprintf(stderr, "signgate: the server's log key is not "
			    "a verifier key\n");
			ex = SG_EXIT_SERVER;
			goto out;
		}
		snprintf(out, VKEY_TEXT_MAX, "%s", resp.body);
	}
	len = strlen(out);
	out[len] = '\n';
	r = write_in(dir, VKEY_FILE, out, len + 1);
	out[len] = '\0';
	if (r != 0)
		ex = SG_EXIT_LOCAL;
out:
	sg_cli_http_resp_clear(&resp);
	sg_cli_http_free(h);
	free(text);
	free(path);
	return ex;
}

/* The tree DIR publishes now: its checkpoint, verified (size 0 if none). */
static int
mirror_held(struct sg_tile_client *local, const char *vkey,
    struct sg_checkpoint *ret)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	memcpy(ret->root, sg_merkle_empty_root, SG_HASH_LEN);
	if ((r = sg_tile_client_checkpoint(local, vkey)) == SG_ERR_NOT_FOUND)
		return SG_EXIT_OK;
	if (r != 0) {
		fprintf(stderr, "signgate: log mirror: the mirror's own "
		    "checkpoint: %s\n", sg_tile_client_error(local));
		return r == SG_ERR_VERIFY ? SG_EXIT_VERIFY : SG_EXIT_LOCAL;
	}
	*ret = *sg_tile_client_cp(local);
	return SG_EXIT_OK;
}

/* One tile: fetched and checked unless the held tree had it in full. */
static int
mirror_tile(struct sg_tile_client *src, const char *dir,
    const struct sg_tile *t, uint64_t held, unsigned *nwritten)
{
	char path[SG_TILE_PATH_SIZE];
	uint8_t *buf = NULL;
	size_t len;
	int r;

	if (t->width == SG_TILE_WIDTH &&
	    sg_tile_width(t->level, t->index, held) == SG_TILE_WIDTH)
		return 0;
	if ((r = sg_tile_path(t, path)) != 0)
		return SG_EXIT_LOCAL;
	if ((r = sg_tile_client_tile(src, t, &buf, &len)) != 0) {
		fprintf(stderr, "signgate: log mirror: %s: %s\n", path,
		    sg_tile_client_error(src));
		return r == SG_ERR_VERIFY ? SG_EXIT_VERIFY : SG_EXIT_SERVER;
	}
	r = write_in(dir, path, buf, len);
	free(buf);
	if (r != 0)
		return SG_EXIT_LOCAL;
	(*nwritten)++;
	return 0;
}

/* Every tile of the checkpoint's tree, then the checkpoint. */
static int
mirror_write(struct sg_tile_client *src, const char *dir, uint64_t held,
    unsigned *nwritten)
{
	const struct sg_checkpoint *cp = sg_tile_client_cp(src);
	struct sg_tile t;
	const char *note;
	size_t len;
	unsigned level;
	int ex;

	for (level = 0; level < SG_TILE_LEVELS; level++) {
		memset(&t, 0, sizeof(t));
		t.level = level;
		for (t.index = 0; (t.width = sg_tile_width(level, t.index,
		    cp->size)) > 0; t.index++)
			if ((ex = mirror_tile(src, dir, &t, held,
			    nwritten)) != 0)
				return ex;
	}
	memset(&t, 0, sizeof(t));
	t.entries = 1;
	for (t.index = 0; (t.width = sg_tile_width(0, t.index,
	    cp->size)) > 0; t.index++)
		if ((ex = mirror_tile(src, dir, &t, held, nwritten)) != 0)
			return ex;
	note = sg_tile_client_note(src, &len);
	return write_in(dir, "checkpoint", note, len) == 0 ? 0 :
	    SG_EXIT_LOCAL;
}

/* One round: the gateway's newest checkpoint into DIR. */
static int
mirror_once(const char *source, const char *cacert, const char *dir,
    const char *vkey)
{
	struct sg_tile_client *src = NULL, *local = NULL;
	struct sg_checkpoint held;
	const struct sg_checkpoint *cp;
	unsigned nwritten = 0;
	char *b64 = NULL;
	int r, ex;

	if ((r = sg_tile_client_open(dir, NULL, 0, &local)) != 0 ||
	    (r = sg_tile_client_open(source, cacert, 0, &src)) != 0) {
		fprintf(stderr, "signgate: log mirror: cannot read %s: %s\n",
		    local == NULL ? dir : source, sg_strerror(r));
		ex = SG_EXIT_LOCAL;
		goto out;
	}
	if ((ex = mirror_held(local, vkey, &held)) != 0)
		goto out;
	if ((r = sg_tile_client_checkpoint(src, vkey)) != 0) {
		fprintf(stderr, "signgate: log mirror: %s\n",
		    sg_tile_client_error(src));
		ex = r == SG_ERR_VERIFY ? SG_EXIT_VERIFY : SG_EXIT_SERVER;
		goto out;
	}
	cp = sg_tile_client_cp(src);
	if ((r = sg_tile_client_consistent(src, held.size, held.root)) != 0) {
		fprintf(stderr, "signgate: log mirror: %s: %s; the mirror "
		    "keeps the tree of %llu entries\n", cp->size < held.size ?
		    "ROLLBACK" : "FORK", sg_tile_client_error(src),
		    (unsigned long long)held.size);
		ex = r == SG_ERR_VERIFY ? SG_EXIT_VERIFY : SG_EXIT_SERVER;
		goto out;
	}
	if (cp->size == held.size) {
		ex = SG_EXIT_OK;
		goto out;
	}
	if ((ex = mirror_write(src, dir, held.size, &nwritten)) != 0)
		goto out;
	b64 = sg_b64_encode(cp->root, SG_HASH_LEN);
	printf("mirror: size %llu root %s (was %llu; %u files written)\n",
	    (unsigned long long)cp->size, b64 != NULL ? b64 : "?",
	    (unsigned long long)held.size, nwritten);
	fflush(stdout);
out:
	free(b64);
	sg_tile_client_free(src);
	sg_tile_client_free(local);
	return ex;
}

int
sg_cli_cmd_mirror(int argc, char **argv, struct sg_cli_conf *conf)
{
	static const struct option own[] = {
		{ "follow", no_argument, NULL, OPT_FOLLOW },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "vkey", required_argument, NULL, OPT_VKEY },
		{ NULL, 0, NULL, 0 },
	};
	struct mirror_args a = { 0, INTERVAL_DEFAULT, NULL };
	const struct sg_cli_cmdline cl = { "log", own, NULL, mirror_option,
	    &a };
	char vkey[VKEY_TEXT_MAX], *source = NULL;
	const char *dir;
	struct timespec ts;
	int ex, help = 0;

	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "log");
		return SG_EXIT_OK;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "signgate: usage: signgate log mirror DIR "
		    "[--follow] [--interval S] [--vkey VKEY]\n");
		return SG_EXIT_USAGE;
	}
	dir = argv[optind];
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "signgate: cannot create %s: %s\n", dir,
		    strerror(errno));
		return SG_EXIT_LOCAL;
	}
	if ((ex = sg_cli_conf_resolve(conf)) != 0)
		return ex;
	if ((ex = mirror_key(conf, dir, a.vkey, vkey)) != 0)
		return ex;
	if (asprintf(&source, "%s%slog", conf->url,
	    conf->url[strlen(conf->url) - 1] == '/' ? "" : "/") < 0)
		return SG_EXIT_LOCAL;
	for (;;) {
		ex = mirror_once(source, conf->cacert, dir, vkey);
		/* A fork, a rollback or a bad signature ends it; a gateway
		 * out of reach is tried again. */
		if (!a.follow || ex == SG_EXIT_VERIFY || ex == SG_EXIT_LOCAL)
			break;
		ts.tv_sec = (time_t)a.interval;
		ts.tv_nsec = 0;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	free(source);
	return sg_cli_flush(ex);
}

/* --- verify --log SOURCE --- */

struct same_entry {
	const uint8_t *want;
	size_t len;
	int differs;
};

static int
same_entry(void *arg, uint64_t index, const uint8_t *entry, size_t len)
{
	struct same_entry *s = arg;

	(void)index;
	if (len == s->len && memcmp(entry, s->want, len) == 0)
		return 0;
	s->differs = 1;
	return SG_ERR_VERIFY;
}

int
sg_cli_check_log_source(const char *source, const char *cacert,
    const char *vkey, const struct sg_checkpoint *cp,
    const struct sg_cli_logged *entries, size_t n)
{
	struct sg_tile_client *c = NULL;
	const struct sg_checkpoint *scp;
	struct same_entry se;
	size_t i;
	int r, ex = SG_EXIT_VERIFY;

	if ((r = sg_tile_client_open(source, cacert, 0, &c)) != 0) {
		fprintf(stderr, "signgate: verify: log source: %s is neither "
		    "an http(s) URL nor a directory\n", sg_cli_esc(source));
		return SG_EXIT_USAGE;
	}
	if ((r = sg_tile_client_checkpoint(c, vkey)) != 0) {
		fprintf(stderr, "signgate: verify: log source: %s\n",
		    sg_tile_client_error(c));
		ex = r == SG_ERR_VERIFY ? SG_EXIT_VERIFY : SG_EXIT_SERVER;
		goto out;
	}
	scp = sg_tile_client_cp(c);
	if (scp->size < cp->size) {
		fprintf(stderr, "signgate: verify: log source: its checkpoint "
		    "(%llu entries) is older than the proof's (%llu): it "
		    "cannot confirm the proof yet\n",
		    (unsigned long long)scp->size,
		    (unsigned long long)cp->size);
		goto out;
	}
	if (sg_tile_client_consistent(c, cp->size, cp->root) != 0) {
		fprintf(stderr, "signgate: verify: log source: %s: the proof's "
		    "checkpoint is not part of the log the source publishes\n",
		    sg_tile_client_error(c));
		goto out;
	}
	for (i = 0; i < n; i++) {
		se.want = entries[i].entry;
		se.len = entries[i].len;
		se.differs = 0;
		r = sg_tile_client_entries(c, entries[i].index,
		    entries[i].index + 1, same_entry, &se);
		if (r != 0) {
			fprintf(stderr, "signgate: verify: log source: entry "
			    "%llu: %s\n", (unsigned long long)entries[i].index,
			    r == SG_ERR_VERIFY && c != NULL &&
			    strcmp(sg_tile_client_error(c), "unknown error") ==
			    0 ? "the source's entry is not the proof's" :
			    sg_tile_client_error(c));
			ex = r == SG_ERR_VERIFY ? SG_EXIT_VERIFY :
			    SG_EXIT_SERVER;
			goto out;
		}
	}
	printf("log source: %s size %llu, consistent with the proof's "
	    "checkpoint, %zu entr%s the same\n", sg_cli_esc(source),
	    (unsigned long long)scp->size, n, n == 1 ? "y" : "ies");
	ex = SG_EXIT_OK;
out:
	sg_tile_client_free(c);
	return ex;
}
