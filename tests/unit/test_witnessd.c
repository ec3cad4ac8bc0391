/*
 * Tests for the witness (signgate-witness): the add-checkpoint parser (a
 * good body, one refusal per kind of malformed body, the size bound), the
 * decision (a table of record, request and expected status covering
 * first contact, extension, 409 on an old size that is not ours, 422 on a
 * proof that fails, forks at the same and at a larger size, rollbacks, an
 * unknown log, bad signatures), the whole request against a state
 * directory (the cosignature verifies with the witness's vkey, the record
 * survives a reopen and refuses a rollback, concurrent extensions of one
 * log are serialised), and the configuration's and key's refusals.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sg_cosig.h"
#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_note.h"
#include "sg_test.h"
#include "sg_util.h"
#include "sg_witness.h"
#include "sg_witnessd.h"
#include "witness_fixture.h"

#define ORIGIN "log.example/test"

static struct wf_log tlog;             /* the log */
static struct wf_log forked;           /* same key, leaves differ from 3 */
static struct wf_log stranger;         /* another key, same origin */
static struct sg_wd_log cfg_log;       /* the witness's view of tlog */

static void
setup(void)
{
	static int done;
	EVP_PKEY *k, *k2;

	if (done)
		return;
	done = 1;
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    (k2 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    wf_log_init(&tlog, k, ORIGIN) != 0 ||
	    wf_log_init(&forked, k, ORIGIN) != 0 ||
	    wf_log_init(&stranger, k2, ORIGIN) != 0)
		abort();
	forked.fork_at = 3;
	memset(&cfg_log, 0, sizeof(cfg_log));
	snprintf(cfg_log.origin, sizeof(cfg_log.origin), "%s", ORIGIN);
	snprintf(cfg_log.key_name, sizeof(cfg_log.key_name), "%s", ORIGIN);
	cfg_log.key_id = tlog.id;
	memcpy(cfg_log.pub, tlog.pub, sizeof(cfg_log.pub));
}

static struct sg_witness_record
record_of(struct wf_log *l, uint64_t size)
{
	struct sg_witness_record r;

	memset(&r, 0, sizeof(r));
	r.present = 1;
	r.size = size;
	if (sg_merkle_root(wf_subtree, l, size, r.root) != 0)
		abort();
	return r;
}

/* ---- the parser ---- */

static void
test_parse_good(void)
{
	struct sg_wd_request q;
	char err[256], *body;

	setup();
	body = wf_body(&tlog, 5, 13);
	CHECK(body != NULL);
	CHECK_EQ_INT(sg_wd_parse(body, strlen(body), &q, err, sizeof(err)),
	    0);
	CHECK_EQ_INT(q.old_size, 5);
	CHECK_EQ_INT(q.cp.size, 13);
	CHECK(q.nproof > 0);
	CHECK_STR(q.cp.origin, ORIGIN);
	CHECK(q.note == strstr(body, ORIGIN "\n13\n"));
	CHECK_EQ_INT(q.note_len, strlen(q.note));
	CHECK(q.text_len < q.note_len && q.note[q.text_len] == '\n');
	free(body);

	body = wf_body(&tlog, 0, 4);
	CHECK_EQ_INT(sg_wd_parse(body, strlen(body), &q, err, sizeof(err)),
	    0);
	CHECK_EQ_INT(q.old_size, 0);
	CHECK_EQ_INT(q.nproof, 0);
	free(body);
}

static void
test_parse_malformed(void)
{
	static const struct {
		const char *from, *to;  /* a change of the good body */
	} cases[] = {
		{ "old 5\n", "" },                   /* no old line */
		{ "old 5\n", "old 05\n" },           /* leading zero */
		{ "old 5\n", "old +5\n" },
		{ "old 5\n", "old -5\n" },
		{ "old 5\n", "old 5 \n" },
		{ "old 5\n", "old  5\n" },
		{ "old 5\n", "Old 5\n" },
		{ "old 5\n", "old 5\r\n" },
		{ "old 5\n", "old 9223372036854775808\n" },
		{ "old 5\n", "old 5\nAAAA\n" },      /* short proof line */
		{ "old 5\n", "old 5\n!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" },
		{ "old 5\n", "old 5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n" },
		{ "\n\n" ORIGIN, "\n" ORIGIN },      /* no blank line */
		{ "\n13\n", "\n13\next\n" },         /* extension line */
		{ "\n13\n", "\n013\n" },
		{ "\n\xe2\x80\x94 ", "\n" },         /* no signature line */
	};
	struct sg_wd_request q;
	char err[256], *good, *b;
	size_t i;

	setup();
	good = wf_body(&tlog, 5, 13);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		b = sg_fx_replace1(strdup(good), cases[i].from, cases[i].to);
		CHECK(b != NULL && strcmp(b, good) != 0);
		if (b == NULL)
			continue;
		err[0] = '\0';
		if (sg_wd_parse(b, strlen(b), &q, err, sizeof(err)) !=
		    SG_ERR_INVALID) {
			fprintf(stderr, "  case %zu accepted\n", i);
			CHECK(0);
		}
		CHECK(err[0] != '\0');
		free(b);
	}
	/* Empty, truncated, without the final LF. */
	CHECK_EQ_INT(sg_wd_parse("", 0, &q, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wd_parse(good, strlen(good) - 1, &q, err,
	    sizeof(err)), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wd_parse(good, 20, &q, err, sizeof(err)),
	    SG_ERR_INVALID);
	/* A NUL inside. */
	b = strdup(good);
	b[strlen(b) - 5] = '\0';
	CHECK_EQ_INT(sg_wd_parse(b, strlen(good), &q, err, sizeof(err)),
	    SG_ERR_INVALID);
	free(b);
	free(good);
}

static void
test_parse_limits(void)
{
	struct sg_wd_request q;
	char err[256], *good, *b, *p;
	size_t n, i, len;

	setup();
	good = wf_body(&tlog, 0, 9);
	/* 63 proof lines parse (the decision refuses them later), 64 do
	 * not. */
	for (n = 63; n <= 64; n++) {
		len = strlen(good) + n * 45 + 1;
		b = malloc(len);
		p = b + snprintf(b, len, "old 1\n");
		for (i = 0; i < n; i++)
			p += snprintf(p, len - (size_t)(p - b), "%s\n",
			    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
		snprintf(p, len - (size_t)(p - b), "%s", strstr(good, "\n\n") +
		    1);
		CHECK_EQ_INT(sg_wd_parse(b, strlen(b), &q, err, sizeof(err)),
		    n == 63 ? 0 : SG_ERR_INVALID);
		if (n == 63)
			CHECK_EQ_INT(q.nproof, 63);
		free(b);
	}
	/* Oversized: refused on its length, before a byte is read. */
	len = SG_WD_BODY_MAX + 1;
	b = malloc(len);
	memset(b, 'A', len);
	CHECK_EQ_INT(sg_wd_parse(b, len, &q, err, sizeof(err)),
	    SG_ERR_TOO_LARGE);
	free(b);
	free(good);
}

/* ---- the decision ---- */

struct dcase {
	const char *name;
	struct wf_log *signer;     /* whose tree and key sign the note */
	int rec_size;              /* -1: no record */
	uint64_t old, size;
	int tamper;                /* 1: flip a proof bit; 2: add a proof
				    * line; 3: flip a signature bit;
				    * 4: unknown log */
	int want;
};

static void
test_decide_table(void)
{
	static struct dcase cases[] = {
		{ "first contact", &tlog, -1, 0, 5, 0, 200 },
		{ "first contact, old not 0", &tlog, -1, 3, 5, 0, 409 },
		{ "first contact, empty tree", &tlog, -1, 0, 0, 0, 200 },
		{ "from the empty tree", &tlog, 0, 0, 4, 0, 200 },
		{ "extension", &tlog, 5, 5, 13, 0, 200 },
		{ "extension by one", &tlog, 5, 5, 6, 0, 200 },
		{ "same checkpoint again", &tlog, 5, 5, 5, 0, 200 },
		{ "old 0, but cosigned before", &tlog, 5, 0, 13, 0, 409 },
		{ "old below ours", &tlog, 5, 4, 13, 0, 409 },
		{ "old above ours", &tlog, 5, 6, 13, 0, 409 },
		{ "bad proof", &tlog, 5, 5, 13, 1, 422 },
		{ "fork at a larger size", &forked, 5, 5, 13, 0, 422 },
		{ "fork at the same size", &forked, 5, 5, 5, 0, 409 },
		{ "proof between equal sizes", &tlog, 5, 5, 5, 2, 422 },
		{ "proof from size 0", &tlog, -1, 0, 5, 2, 400 },
		{ "rollback from our size", &tlog, 5, 5, 3, 0, 400 },
		{ "rollback from its size", &tlog, 5, 3, 3, 0, 409 },
		{ "rollback, old above, not ours", &tlog, 5, 4, 3, 0, 409 },
		{ "unknown log", &tlog, 5, 5, 13, 4, 404 },
		{ "another key", &stranger, 5, 5, 13, 0, 403 },
		{ "bad signature", &tlog, 5, 5, 13, 3, 403 },
	};
	struct sg_witness_record rec;
	struct sg_wd_request q;
	char err[256], *body;
	size_t i;
	int got;

	setup();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dcase *c = &cases[i];

		if (c->rec_size < 0)
			memset(&rec, 0, sizeof(rec));
		else
			rec = record_of(&tlog, (uint64_t)c->rec_size);
		body = wf_body(c->signer, c->old, c->size);
		if (body == NULL ||
		    sg_wd_parse(body, strlen(body), &q, err, sizeof(err)) != 0) {
			fprintf(stderr, "  %s: cannot make the body\n",
			    c->name);
			CHECK(0);
			free(body);
			continue;
		}
		if (c->tamper == 1 && q.nproof > 0)
			q.proof[q.nproof - 1][7] ^= 0x10;
		if (c->tamper == 2)
			memcpy(q.proof[q.nproof++], rec.root, SG_HASH_LEN);
		if (c->tamper == 3) {
			/* The last base64 character before the final LF. */
			char *s = body + strlen(body) - 4;
			*s = *s == 'A' ? 'B' : 'A';
		}
		err[0] = '\0';
		got = sg_wd_decide(c->tamper == 4 ? NULL : &cfg_log, &rec, &q,
		    err, sizeof(err));
		if (got != c->want) {
			fprintf(stderr, "  %s: %d, expected %d (%s)\n", c->name,
			    got, c->want, err);
			CHECK(0);
		}
		CHECK(err[0] != '\0');
		free(body);
	}
}

static void
test_decide_messages(void)
{
	struct sg_witness_record rec;
	struct sg_wd_request q;
	char err[256], *body;

	setup();
	rec = record_of(&tlog, 5);
	body = wf_body(&forked, 5, 5);
	CHECK_EQ_INT(sg_wd_parse(body, strlen(body), &q, err, sizeof(err)),
	    0);
	CHECK_EQ_INT(sg_wd_decide(&cfg_log, &rec, &q, err, sizeof(err)), 409);
	CHECK(strstr(err, "fork") != NULL);
	free(body);
	body = wf_body(&tlog, 5, 3);
	CHECK_EQ_INT(sg_wd_parse(body, strlen(body), &q, err, sizeof(err)),
	    0);
	CHECK_EQ_INT(sg_wd_decide(&cfg_log, &rec, &q, err, sizeof(err)), 400);
	CHECK(strstr(err, "rollback") != NULL);
	free(body);
}

/* ---- the whole request, against a state directory ---- */

struct wd_env {
	char dir[256];
	char state[300];
	struct sg_wd_config cfg;
	EVP_PKEY *wkey;
	uint8_t wpub[32];
	uint32_t wid;
};

#define W_NAME "witness.example/w1"

static struct sg_wd *
env_open(struct wd_env *e)
{
	struct sg_wd *w = NULL;
	struct sg_wd_key *k = NULL;
	char err[512];

	if (sg_wd_key_from_pkey(e->wkey, &k) != 0)
		return NULL;
	if (sg_wd_open(&e->cfg, k, &w, err, sizeof(err)) != 0) {
		fprintf(stderr, "  open: %s\n", err);
		return NULL;
	}
	return w;
}

static int
env_init(struct wd_env *e)
{
	size_t len = 32;

	memset(e, 0, sizeof(*e));
	setup();
	if (sg_fx_tmpdir("witnessd", e->dir, sizeof(e->dir)) != 0)
		return -1;
	snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
	e->cfg.name = (char *)W_NAME;
	e->cfg.state_dir = e->state;
	e->cfg.logs[0] = cfg_log;
	e->cfg.nlogs = 1;
	if ((e->wkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(e->wkey, e->wpub, &len) != 1)
		return -1;
	e->wid = sg_cosig_key_id(W_NAME, e->wpub);
	return 0;
}

static void
env_done(struct wd_env *e)
{
	EVP_PKEY_free(e->wkey);
	sg_fx_rm_tree(e->dir);
}

/* Posts the body old -> size of l; the status, and the body in *ret. */
static int
post(struct sg_wd *w, struct wf_log *l, uint64_t old, uint64_t size,
    char **ret)
{
	const char *type = NULL;
	char *body = wf_body(l, old, size), *resp = NULL;
	int status;

	if (body == NULL)
		abort();
	status = sg_wd_handle(w, body, strlen(body), 1700000000 + size, &resp,
	    &type);
	free(body);
	if (ret != NULL)
		*ret = resp;
	else
		free(resp);
	return status;
}

static void
test_handle_cosigns(void)
{
	struct wd_env e;
	struct sg_wd *w;
	char *resp = NULL, *note, *full;
	uint64_t t = 0;
	size_t n;

	if (env_init(&e) != 0 || (w = env_open(&e)) == NULL) {
		CHECK(0);
		return;
	}
	CHECK_EQ_INT(post(w, &tlog, 0, 5, &resp), 200);
	/* The answer is one cosignature line, which verifies with the
	 * witness's key over the checkpoint, at the time given. */
	note = wf_note(&tlog, 5);
	n = strlen(note) + (resp != NULL ? strlen(resp) : 0) + 1;
	full = malloc(n);
	snprintf(full, n, "%s%s", note, resp != NULL ? resp : "");
	CHECK_EQ_INT(sg_cosig_verify(full, strlen(full), W_NAME, e.wid, e.wpub,
	    &t), 0);
	CHECK_EQ_INT(t, 1700000005);
	CHECK(resp != NULL && strchr(resp, '\n') == resp + strlen(resp) - 1);
	free(full);
	free(resp);
	resp = NULL;
	/* Not over another checkpoint. */
	free(note);
	note = wf_note(&tlog, 6);
	CHECK_EQ_INT(post(w, &tlog, 5, 6, &resp), 200);
	n = strlen(note) + strlen(resp) + 1;
	full = malloc(n);
	snprintf(full, n, "%s%s", note, resp);
	CHECK_EQ_INT(sg_cosig_verify(full, strlen(full), W_NAME, e.wid, e.wpub,
	    &t), 0);
	full = sg_fx_replace1(full, "\n6\n", "\n7\n");
	CHECK_EQ_INT(sg_cosig_verify(full, strlen(full), W_NAME, e.wid, e.wpub,
	    &t), SG_ERR_VERIFY);
	free(full);
	free(note);
	free(resp);
	/* 409 answers the recorded size. */
	CHECK_EQ_INT(post(w, &tlog, 0, 9, &resp), 409);
	CHECK_STR(resp, "6\n");
	free(resp);
	sg_wd_stop(w);
	env_done(&e);
}

static void
test_handle_remembers(void)
{
	struct wd_env e;
	struct sg_wd *w;
	struct stat sb;
	char *resp = NULL, path[400];

	if (env_init(&e) != 0 || (w = env_open(&e)) == NULL) {
		CHECK(0);
		return;
	}
	CHECK_EQ_INT(post(w, &tlog, 0, 8, NULL), 200);
	sg_wd_stop(w);
	/* Reopened: the record is what was cosigned last. */
	w = env_open(&e);
	CHECK(w != NULL);
	if (w == NULL) {
		env_done(&e);
		return;
	}
	CHECK_EQ_INT(post(w, &tlog, 0, 5, &resp), 409);
	CHECK_STR(resp, "8\n");
	free(resp);
	CHECK_EQ_INT(post(w, &tlog, 8, 5, NULL), 400);
	CHECK_EQ_INT(post(w, &forked, 8, 8, NULL), 409);
	/* The fork's evidence: both signed checkpoints of size 8. */
	{
		uint8_t h[32];
		char hex[65], *buf = NULL, *ours = wf_note(&tlog, 8),
		    *theirs = wf_note(&forked, 8);
		size_t len = 0;

		sg_sha256(ORIGIN, strlen(ORIGIN), h);
		sg_hex_encode(h, 16, hex);
		snprintf(path, sizeof(path), "%s/log-%s/fork-8", e.state, hex);
		CHECK_EQ_INT(sg_read_file(path, 1 << 20, &buf, &len), 0);
		CHECK(buf != NULL && strstr(buf, ours) != NULL &&
		    strstr(buf, theirs) != NULL);
		free(buf);
		buf = NULL;
		snprintf(path, sizeof(path), "%s/log-%s/note", e.state, hex);
		CHECK_EQ_INT(sg_read_file(path, 1 << 20, &buf, &len), 0);
		CHECK_STR(buf, ours);
		free(buf);
		free(ours);
		free(theirs);
	}
	CHECK_EQ_INT(post(w, &forked, 8, 11, NULL), 422);
	CHECK_EQ_INT(post(w, &tlog, 8, 8, NULL), 200);
	CHECK_EQ_INT(post(w, &tlog, 8, 11, NULL), 200);
	sg_wd_stop(w);
	/* A state directory others may write is refused. */
	CHECK(stat(e.state, &sb) == 0 && (sb.st_mode & 077) == 0);
	chmod(e.state, 0777);
	w = NULL;
	{
		struct sg_wd_key *k = NULL;
		CHECK_EQ_INT(sg_wd_key_from_pkey(e.wkey, &k), 0);
		CHECK(sg_wd_open(&e.cfg, k, &w, path, sizeof(path)) ==
		    SG_ERR_PERMISSIONS);
	}
	CHECK(strstr(path, "others may write") != NULL);
	chmod(e.state, 0700);
	env_done(&e);
}

struct racer {
	struct sg_wd *w;
	uint64_t size;
	int status;
	int failures;
};

static void *
race(void *arg)
{
	struct racer *r = arg;

	r->status = post(r->w, &tlog, 4, r->size, NULL);
	return NULL;
}

static void
test_handle_serialised(void)
{
	struct racer r[6];
	struct wd_env e;
	struct sg_wd *w;
	char *resp = NULL;
	int i, ok = 0, conflict = 0, fails = 0;
	uint64_t best = 0;

	if (env_init(&e) != 0 || (w = env_open(&e)) == NULL) {
		CHECK(0);
		return;
	}
	CHECK_EQ_INT(post(w, &tlog, 0, 4, NULL), 200);
	/* Six extensions from 4, at once: one wins, the others find the
	 * record moved and get 409, never a second 200 from 4. */
	for (i = 0; i < 6; i++) {
		r[i].w = w;
		r[i].size = 5 + (uint64_t)i;
	}
	CHECK_EQ_INT(sg_fx_threads(6, race, r, sizeof(r[0]),
	    offsetof(struct racer, failures), &fails), 6);
	for (i = 0; i < 6; i++) {
		if (r[i].status == 200) {
			ok++;
			best = r[i].size;
		} else if (r[i].status == 409)
			conflict++;
	}
	CHECK_EQ_INT(ok, 1);
	CHECK_EQ_INT(conflict, 5);
	CHECK_EQ_INT(post(w, &tlog, 0, 20, &resp), 409);
	if (resp != NULL) {
		char want[32];
		snprintf(want, sizeof(want), "%llu\n",
		    (unsigned long long)best);
		CHECK_STR(resp, want);
	}
	free(resp);
	sg_wd_stop(w);
	env_done(&e);
}

/* ---- configuration and key ---- */

/* s with every from replaced by to (s is freed). */
static char *
subst(char *s, const char *from, const char *to)
{
	while (strstr(s, from) != NULL)
		s = sg_fx_replace1(s, from, to);
	return s;
}

static void
test_config(void)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
		{ "[]", "(top level)" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"VKEY\"}],\"extra\":1}",
		    "unknown field 'extra'" },
		{ "{\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "name: is required" },
		{ "{\"name\":\"a b\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "name: must be" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[]}", "logs: must be a non-empty array" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"x+1+y\"}]}", "logs[0].vkey" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"VKEY\"},{\"vkey\":\"VKEY\"}]}",
		    "logs[1].origin: the origin" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"VKEY\",\"origin\":\"log \"}]}",
		    "logs[0].origin: not a checkpoint origin" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"listen\":{\"address\":\"0.0.0.0\"},"
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "tls: is required" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"listen\":{\"address\":\"localhost\"},"
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "listen.address" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"listen\":{\"port\":70000},"
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "listen.port" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"threads\":0,\"logs\":[{\"vkey\":\"VKEY\"}]}", "threads" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"COSIG\"}]}", "not an Ed25519 log key" },
		{ "{\"name\":\"w\",\"name\":\"v\"}", "duplicate" },
		{ "{\"name\":\"w\",\"state_dir\":\"s\","
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "key_file: is required" },
		{ "{\"name\":\"w\",\"key_file\":\"k\",\"state_dir\":\"s\","
		    "\"pkcs11\":{\"module\":\"/m.so\",\"token\":\"t\","
		    "\"key\":\"k\",\"pin_file\":\"p\"},"
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "pkcs11: cannot be used" },
		{ "{\"name\":\"w\",\"state_dir\":\"s\","
		    "\"pkcs11\":{\"module\":\"/m.so\",\"token\":\"t\","
		    "\"key\":\"k\"},"
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "pkcs11.pin_file: is required" },
		{ "{\"name\":\"w\",\"state_dir\":\"s\","
		    "\"pkcs11\":{\"module\":\"/m.so\",\"token\":\"t\","
		    "\"key\":\"k\",\"pin_file\":\"p\",\"slot\":1},"
		    "\"logs\":[{\"vkey\":\"VKEY\"}]}", "pkcs11: unknown field 'slot'" },
	};
	char dir[256], err[1024], *vkey = NULL, *cosig = NULL, *json, *path;
	struct sg_wd_config *cfg = NULL;
	size_t i;

	setup();
	if (sg_fx_tmpdir("witnessd-cfg", dir, sizeof(dir)) != 0)
		abort();
	if (sg_note_vkey_format(ORIGIN, tlog.pub, &vkey) != 0 ||
	    sg_cosig_vkey_format(ORIGIN, tlog.pub, &cosig) != 0)
		abort();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json = subst(subst(strdup(bad[i].json), "VKEY", vkey),
		    "COSIG", cosig);
		path = sg_fx_file(dir, "w.json", json);
		err[0] = '\0';
		if (sg_wd_config_load(path, &cfg, err, sizeof(err)) == 0 ||
		    strstr(err, bad[i].want) == NULL) {
			fprintf(stderr, "  case %zu: \"%s\"\n", i, err);
			CHECK(0);
		}
		free(path);
		free(json);
	}
	/* A good one, with the defaults. */
	json = sg_fx_replace1(strdup("{\"name\":\"witness.example/w1\","
	    "\"key_file\":\"k.pem\",\"state_dir\":\"s\","
	    "\"logs\":[{\"vkey\":\"VKEY\"}]}"), "VKEY", vkey);
	path = sg_fx_file(dir, "w.json", json);
	CHECK_EQ_INT(sg_wd_config_load(path, &cfg, err, sizeof(err)), 0);
	if (cfg != NULL) {
		CHECK_STR(cfg->listen_address, "127.0.0.1");
		CHECK_EQ_INT(cfg->port, 7380);
		CHECK_EQ_INT(cfg->plain_http, 1);
		CHECK_EQ_INT(cfg->threads, 2);
		CHECK_EQ_INT(cfg->nlogs, 1);
		CHECK_STR(cfg->logs[0].origin, ORIGIN);
		CHECK_EQ_INT(cfg->logs[0].key_id, tlog.id);
		CHECK(strncmp(cfg->key_file, dir, strlen(dir)) == 0);
	}
	sg_wd_config_free(cfg);
	free(path);
	free(json);
	free(vkey);
	free(cosig);
	sg_fx_rm_tree(dir);
}

static void
test_key_file(void)
{
	char dir[256], path[300], err[512];
	EVP_PKEY *k = NULL, *p256;

	setup();
	if (sg_fx_tmpdir("witnessd-key", dir, sizeof(dir)) != 0)
		abort();
	snprintf(path, sizeof(path), "%s/k.pem", dir);
	CHECK_EQ_INT(sg_fx_write_key(path, tlog.key), 0);
	CHECK_EQ_INT(sg_wd_load_key(path, &k, err, sizeof(err)), 0);
	CHECK(k != NULL && EVP_PKEY_eq(k, tlog.key) == 1);
	EVP_PKEY_free(k);
	k = NULL;
	chmod(path, 0640);
	CHECK_EQ_INT(sg_wd_load_key(path, &k, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(strstr(err, "0600") != NULL);
	/* Not Ed25519. */
	unlink(path);
	p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK_EQ_INT(sg_fx_write_key(path, p256), 0);
	CHECK_EQ_INT(sg_wd_load_key(path, &k, err, sizeof(err)),
	    SG_ERR_MECHANISM);
	EVP_PKEY_free(p256);
	unlink(path);
	CHECK(sg_wd_load_key(path, &k, err, sizeof(err)) != 0);
	sg_fx_rm_tree(dir);
}

SG_TEST_MAIN("witnessd",
    T(test_parse_good),
    T(test_parse_malformed),
    T(test_parse_limits),
    T(test_decide_table),
    T(test_decide_messages),
    T(test_handle_cosigns),
    T(test_handle_remembers),
    T(test_handle_serialised),
    T(test_config),
    T(test_key_file))
