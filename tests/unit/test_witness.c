/*
 * Tests for the signer's checkpoint record (src/witness.c): the rule every
 * new checkpoint must pass, over the RFC 6962 test tree (the published
 * leaves, roots and consistency proofs of transparency-dev/merkle) and
 * over every (recorded size, requested size) pair of a 24-leaf tree with
 * its forks; and the record on disk: created 0700/0600, the checkpoint
 * text itself, re-read by every request (two handles, as two processes,
 * never both extend it; racing threads neither), refused when it is of
 * another origin, malformed, or in a directory others may write.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_test.h"
#include "sg_fixture.h"
#include "sg_util.h"
#include "sg_witness.h"

#define H SG_HASH_LEN
#define ORIGIN "witness.test/log"
#define MAXN 24

static char tmpdir[64];

/* ---- trees: every complete subtree hash in memory ---- */

struct tree {
	uint8_t h[6][MAXN][H];
	uint64_t count[6];
};

static int
t_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[H])
{
	struct tree *t = ctx;

	if (level >= 6 || index >= MAXN || index != t->count[level])
		return SG_ERR_INTERNAL;
	memcpy(t->h[level][index], hash, H);
	t->count[level]++;
	return 0;
}

static int
t_get(void *ctx, unsigned level, uint64_t index, uint8_t out[H])
{
	struct tree *t = ctx;

	if (level >= 6 || index >= t->count[level])
		return SG_ERR_NOT_FOUND;
	memcpy(out, t->h[level][index], H);
	return 0;
}

/* MAXN leaves; the first `shared` are "base i", the others "name i". */
static void
t_make(struct tree *t, size_t shared, const char *name)
{
	struct sg_merkle_frontier f;
	uint8_t leaf[H];
	char text[80];
	size_t i;

	memset(t, 0, sizeof(*t));
	sg_merkle_frontier_init(&f);
	for (i = 0; i < MAXN; i++) {
		snprintf(text, sizeof(text), "%s %zu", i < shared ? "base" :
		    name, i);
		sg_merkle_leaf_hash((const uint8_t *)text, strlen(text), leaf);
		if (sg_merkle_frontier_append(&f, leaf, t_emit, t) != 0)
			abort();
	}
}

/* MAXN leaves: base's first `shared`, then "name i". */
static void
t_fork(struct tree *t, const struct tree *base, size_t shared,
    const char *name)
{
	struct sg_merkle_frontier f;
	uint8_t leaf[H];
	char text[80];
	size_t i;

	memset(t, 0, sizeof(*t));
	sg_merkle_frontier_init(&f);
	for (i = 0; i < MAXN; i++) {
		if (i < shared)
			memcpy(leaf, base->h[0][i], H);
		else {
			snprintf(text, sizeof(text), "%s %zu", name, i);
			sg_merkle_leaf_hash((const uint8_t *)text,
			    strlen(text), leaf);
		}
		if (sg_merkle_frontier_append(&f, leaf, t_emit, t) != 0)
			abort();
	}
}

static void
t_root(struct tree *t, uint64_t n, uint8_t out[H])
{
	if (sg_merkle_root(t_get, t, n, out) != 0)
		abort();
}

/* A request for t at size n, with t's proof from `from`. */
static void
t_req(struct tree *t, uint64_t n, uint64_t from,
    struct sg_witness_request *req)
{
	memset(req, 0, sizeof(*req));
	req->size = n;
	req->old_size = from;
	t_root(t, n, req->root);
	if (from > 0 && from < n && sg_merkle_consistency_proof(t_get, t,
	    from, n, req->proof, SG_MERKLE_MAX_PROOF, &req->nproof) != 0)
		abort();
}

static void
t_rec(struct tree *t, uint64_t n, struct sg_witness_record *rec)
{
	memset(rec, 0, sizeof(*rec));
	rec->present = 1;
	rec->size = n;
	t_root(t, n, rec->root);
}

/* ---- the rule, over the RFC 6962 test tree ---- */

/* The RFC 6962 vectors (sg_fixture.h) have one proof of a tree to itself,
 * which is no new checkpoint: the rule is not asked about it. */

static void
test_rule_rfc6962_vectors(void)
{
	struct sg_witness_record rec;
	struct sg_witness_request req;
	const struct sg_fx_cons_vec *vc;
	uint8_t roots[9][H];
	char err[256];
	size_t i, k, bit;

	for (i = 1; i <= 8; i++)
		sg_fx_hexdec(sg_fx_rfc6962_roots[i], roots[i], H);
	for (i = 0; i < SG_FX_RFC6962_NCONS; i++) {
		vc = &sg_fx_rfc6962_cons[i];
		if (vc->m == vc->n)
			continue;
		memset(&rec, 0, sizeof(rec));
		rec.present = 1;
		rec.size = vc->m;
		memcpy(rec.root, roots[vc->m], H);
		memset(&req, 0, sizeof(req));
		req.size = vc->n;
		req.old_size = vc->m;
		memcpy(req.root, roots[vc->n], H);
		req.nproof = vc->np;
		for (k = 0; k < req.nproof; k++)
			sg_fx_hexdec(vc->proof[k], req.proof[k], H);
		/* The published proof extends the published tree. */
		CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)), 0);
		/* Any bit of it flipped: a fork. */
		for (k = 0; k < req.nproof; k++)
			for (bit = 0; bit < 8 * H; bit += 37) {
				req.proof[k][bit / 8] ^= (uint8_t)(1 << bit % 8);
				CHECK_EQ_INT(sg_witness_check(&rec, &req, err,
				    sizeof(err)), SG_ERR_VERIFY);
				req.proof[k][bit / 8] ^= (uint8_t)(1 << bit % 8);
			}
		/* The record's root one bit off: a fork too. */
		rec.root[5] ^= 4;
		CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
		    SG_ERR_VERIFY);
		CHECK(strstr(err, "fork") != NULL);
		rec.root[5] ^= 4;
		/* Claimed from another size: ask again from the record's. */
		req.old_size = vc->m + 1;
		CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
		    SG_ERR_CONFLICT);
	}
}

/* The generator agrees with the published proofs (so the front's proofs
 * are the ones the signer checks). */
static void
test_rule_front_proofs_are_published_ones(void)
{
	struct tree t;
	struct sg_merkle_frontier f;
	const struct sg_fx_cons_vec *vc;
	uint8_t leaf[H], p[SG_MERKLE_MAX_PROOF][H], want[H];
	size_t i, k, n;

	memset(&t, 0, sizeof(t));
	sg_merkle_frontier_init(&f);
	for (i = 0; i < 8; i++) {
		sg_fx_rfc6962_leaf_hash(i, leaf);
		CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaf, t_emit, &t), 0);
	}
	for (i = 0; i < SG_FX_RFC6962_NCONS; i++) {
		vc = &sg_fx_rfc6962_cons[i];
		if (vc->m == vc->n)
			continue;
		CHECK_EQ_INT(sg_merkle_consistency_proof(t_get, &t, vc->m,
		    vc->n, p, SG_MERKLE_MAX_PROOF, &n), 0);
		CHECK_EQ_INT(n, vc->np);
		for (k = 0; k < n && k < 3; k++) {
			sg_fx_hexdec(vc->proof[k], want, H);
			CHECK(memcmp(p[k], want, H) == 0);
		}
	}
}

/* Every pair (recorded m, requested n) of a tree, and of its forks. */
static void
test_rule_all_sizes(void)
{
	static struct tree a, fork;
	struct sg_witness_record rec;
	struct sg_witness_request req;
	char err[256];
	uint64_t m, n, split;
	int bad = 0;

	t_make(&a, MAXN, "base");
	for (m = 0; m <= MAXN; m++) {
		t_rec(&a, m, &rec);
		for (n = 0; n <= MAXN; n++) {
			int want;
			/* The same tree, proof from the record's size. */
			t_req(&a, n, m, &req);
			want = n < m ? SG_ERR_VERIFY : 0;
			if (sg_witness_check(&rec, &req, err, sizeof(err)) !=
			    want)
				bad++;
			/* Forks: a tree sharing only the first `split`. */
			for (split = 0; split < n && n > 0; split++) {
				if (split < m && n >= m) {
					t_make(&fork, split, "fork");
					t_req(&fork, n, m, &req);
					if (sg_witness_check(&rec, &req, err,
					    sizeof(err)) != SG_ERR_VERIFY)
						bad++;
				}
			}
		}
	}
	CHECK_EQ_INT(bad, 0);
}

static void
test_rule_cases(void)
{
	static struct tree a;
	struct sg_witness_record rec, none;
	struct sg_witness_request req;
	char err[256];

	t_make(&a, MAXN, "base");
	memset(&none, 0, sizeof(none));
	/* Trust on first use: any tree, without a proof. */
	t_req(&a, 13, 0, &req);
	CHECK_EQ_INT(sg_witness_check(&none, &req, err, sizeof(err)), 0);
	t_req(&a, 0, 0, &req);
	CHECK_EQ_INT(sg_witness_check(&none, &req, err, sizeof(err)), 0);
	t_req(&a, 13, 5, &req);
	CHECK_EQ_INT(sg_witness_check(&none, &req, err, sizeof(err)),
	    SG_ERR_CONFLICT);
	/* The empty tree has one root. */
	t_req(&a, 0, 0, &req);
	req.root[0] ^= 1;
	CHECK_EQ_INT(sg_witness_check(&none, &req, err, sizeof(err)),
	    SG_ERR_VERIFY);
	/* From the empty tree, any tree follows, without a proof. */
	t_rec(&a, 0, &rec);
	t_req(&a, 9, 0, &req);
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)), 0);
	t_req(&a, 9, 0, &req);
	req.old_size = 3;
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
	    SG_ERR_CONFLICT);
	/* Rollback, fork at the same size, re-sign, proofs. */
	t_rec(&a, 10, &rec);
	t_req(&a, 9, 0, &req);
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strstr(err, "rollback") != NULL);
	t_req(&a, 10, 0, &req);
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)), 0);
	req.root[31] ^= 0x80;
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(strstr(err, "fork") != NULL);
	t_req(&a, 10, 0, &req);
	req.nproof = 1;
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
	    SG_ERR_INVALID);
	t_req(&a, 12, 10, &req);
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)), 0);
	req.nproof = 0;
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
	    SG_ERR_VERIFY);
	/* Malformed. */
	t_req(&a, 12, 10, &req);
	req.nproof = SG_MERKLE_MAX_PROOF + 1;
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
	    SG_ERR_INVALID);
	t_req(&a, 12, 10, &req);
	req.size = (uint64_t)INT64_MAX + 1;
	CHECK_EQ_INT(sg_witness_check(&rec, &req, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_witness_check(NULL, &req, err, sizeof(err)),
	    SG_ERR_INVALID);
}

/* ---- the record on disk ---- */

static char *
read_text(const char *path)
{
	char *s = NULL;
	size_t len;

	return sg_read_file(path, 4096, &s, &len) == 0 ? s : NULL;
}

static void
checkpoint_text(const char *origin, uint64_t size, const uint8_t root[H],
    char **ret)
{
	struct sg_checkpoint cp;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
	cp.size = size;
	memcpy(cp.root, root, H);
	if (sg_checkpoint_format(&cp, ret) != 0)
		abort();
}

static void
test_record_files(void)
{
	static struct tree a;
	struct sg_witness *w = NULL, *w2 = NULL;
	struct sg_witness_record rec;
	struct sg_witness_request req;
	struct stat sb, sb2;
	char dir[128], path[160], err[256], *text, *want;

	t_make(&a, MAXN, "base");
	snprintf(dir, sizeof(dir), "%s/files", tmpdir);
	snprintf(path, sizeof(path), "%s/checkpoint", dir);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)), 0);
	if (w == NULL)
		return;
	CHECK(stat(dir, &sb) == 0 && (sb.st_mode & 07777) == 0700);
	CHECK(stat(path, &sb) != 0);
	CHECK_EQ_INT(sg_witness_get(w, &rec, err, sizeof(err)), 0);
	CHECK(!rec.present);
	/* First use. */
	t_req(&a, 7, 0, &req);
	CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err, sizeof(err)), 0);
	CHECK(rec.present && rec.size == 7 &&
	    memcmp(rec.root, req.root, H) == 0);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0600);
	checkpoint_text(ORIGIN, 7, req.root, &want);
	text = read_text(path);
	CHECK(text != NULL && strcmp(text, want) == 0);
	free(text);
	free(want);
	/* The same tree again: nothing is written. */
	t_req(&a, 7, 0, &req);
	CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err, sizeof(err)), 0);
	CHECK(stat(path, &sb2) == 0 && sb2.st_ino == sb.st_ino &&
	    sb2.st_mtim.tv_nsec == sb.st_mtim.tv_nsec &&
	    sb2.st_mtim.tv_sec == sb.st_mtim.tv_sec);
	/* A refused request leaves the record and tells it. */
	t_req(&a, 6, 0, &req);
	CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err, sizeof(err)),
	    SG_ERR_VERIFY);
	CHECK(rec.present && rec.size == 7);
	/* A second handle (another process) sees what the first wrote,
	 * and the first sees the second's. */
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w2, err, sizeof(err)), 0);
	if (w2 != NULL) {
		t_req(&a, 9, 7, &req);
		CHECK_EQ_INT(sg_witness_advance(w2, &req, &rec, err,
		    sizeof(err)), 0);
		t_req(&a, 9, 7, &req);
		CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err,
		    sizeof(err)), SG_ERR_INVALID);  /* no proof for it now */
		t_req(&a, 9, 0, &req);
		CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err,
		    sizeof(err)), 0);  /* the same tree: fine */
		t_req(&a, 11, 7, &req);
		CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err,
		    sizeof(err)), SG_ERR_CONFLICT);
		CHECK(rec.present && rec.size == 9);
		t_req(&a, 11, 9, &req);
		CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err,
		    sizeof(err)), 0);
		CHECK_EQ_INT(sg_witness_get(w2, &rec, err, sizeof(err)), 0);
		CHECK(rec.present && rec.size == 11);
		sg_witness_free(w2);
	}
	/* A leftover temporary file changes nothing. */
	snprintf(path, sizeof(path), "%s/checkpoint.tmp", dir);
	CHECK_EQ_INT(sg_write_file(path, "junk\n", 5, 0600), 0);
	t_req(&a, 12, 11, &req);
	CHECK_EQ_INT(sg_witness_advance(w, &req, &rec, err, sizeof(err)), 0);
	CHECK(stat(path, &sb) != 0 && errno == ENOENT);
	sg_witness_free(w);
	/* Reopened: the record is there. */
	w = NULL;
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)), 0);
	if (w != NULL) {
		CHECK_EQ_INT(sg_witness_get(w, &rec, err, sizeof(err)), 0);
		CHECK(rec.present && rec.size == 12);
		sg_witness_free(w);
	}
}

static void
test_record_refused(void)
{
	struct sg_witness *w = NULL;
	char dir[128], path[160], err[256];
	uint8_t root[H];
	char *text;

	/* Another origin's record. */
	snprintf(dir, sizeof(dir), "%s/origin", tmpdir);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)), 0);
	sg_witness_free(w);
	w = NULL;
	memset(root, 7, sizeof(root));
	checkpoint_text("other.test/log", 3, root, &text);
	snprintf(path, sizeof(path), "%s/checkpoint", dir);
	CHECK_EQ_INT(sg_write_file(path, text, strlen(text), 0600), 0);
	free(text);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(w == NULL && strstr(err, "other.test/log") != NULL);
	CHECK_EQ_INT(sg_witness_open(dir, "other.test/log", &w, err,
	    sizeof(err)), 0);
	sg_witness_free(w);
	w = NULL;
	/* Malformed records. */
	CHECK_EQ_INT(sg_write_file(path, "witness.test/log\n3\nnot base64\n",
	    30, 0600), 0);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(strstr(err, "not a checkpoint record") != NULL);
	CHECK_EQ_INT(sg_write_file(path, "", 0, 0600), 0);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)),
	    SG_ERR_INVALID);
	/* A directory others may write. */
	snprintf(dir, sizeof(dir), "%s/open", tmpdir);
	CHECK(mkdir(dir, 0700) == 0 && chmod(dir, 0770) == 0);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(chmod(dir, 0755) == 0);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)), 0);
	sg_witness_free(w);
	w = NULL;
	/* No parent directory; a file in the way; no origin. */
	snprintf(dir, sizeof(dir), "%s/no/such", tmpdir);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)),
	    SG_ERR_IO);
	snprintf(dir, sizeof(dir), "%s/file", tmpdir);
	CHECK_EQ_INT(sg_write_file(dir, "x", 1, 0600), 0);
	CHECK(sg_witness_open(dir, ORIGIN, &w, err, sizeof(err)) != 0);
	CHECK_EQ_INT(sg_witness_open(tmpdir, "", &w, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(w == NULL);
}

/* Threads racing to extend one record with forking trees: each round,
 * exactly one extension is recorded and every other one refused. */
#define RACERS 4
#define ROUNDS 6

struct racer {
	struct sg_witness *w;
	struct tree *t;
	uint64_t from, to;
	int r;
	pthread_barrier_t *go;
};

static void *
racer_main(void *arg)
{
	struct racer *ra = arg;
	struct sg_witness_request req;
	struct sg_witness_record rec;
	char err[256];

	t_req(ra->t, ra->to, ra->from, &req);
	pthread_barrier_wait(ra->go);
	ra->r = sg_witness_advance(ra->w, &req, &rec, err, sizeof(err));
	return NULL;
}

static void
test_record_races(void)
{
	static struct tree trees[RACERS];
	struct sg_witness *w[2] = { NULL, NULL };
	struct sg_witness_request req;
	struct sg_witness_record rec;
	struct racer ra[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t go;
	char dir[128], err[256], name[32];
	uint64_t size = 2;
	int round, i, won, bad = 0;

	snprintf(dir, sizeof(dir), "%s/race", tmpdir);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w[0], err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &w[1], err, sizeof(err)), 0);
	if (w[0] == NULL || w[1] == NULL)
		goto out;
	t_make(&trees[0], MAXN, "base");
	t_req(&trees[0], size, 0, &req);
	CHECK_EQ_INT(sg_witness_advance(w[0], &req, &rec, err, sizeof(err)),
	    0);
	for (round = 0; round < ROUNDS; round++) {
		/* Every racer's tree shares the recorded prefix (the winner
		 * of the last round, trees[0]) and then forks. */
		for (i = 1; i < RACERS; i++) {
			snprintf(name, sizeof(name), "r%d.%d", round, i);
			t_fork(&trees[i], &trees[0], size, name);
		}
		pthread_barrier_init(&go, NULL, RACERS);
		for (i = 0; i < RACERS; i++) {
			ra[i].w = w[i % 2];
			ra[i].t = &trees[i];
			ra[i].from = size;
			ra[i].to = size + 3;
			ra[i].go = &go;
			if (pthread_create(&th[i], NULL, racer_main,
			    &ra[i]) != 0)
				abort();
		}
		for (i = 0; i < RACERS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&go);
		for (won = -1, i = 0; i < RACERS; i++) {
			if (ra[i].r == 0) {
				if (won >= 0)
					bad++;
				won = i;
			} else if (ra[i].r != SG_ERR_VERIFY)
				bad++;
		}
		if (won < 0) {
			bad++;
			break;
		}
		CHECK_EQ_INT(sg_witness_get(w[1], &rec, err, sizeof(err)), 0);
		t_root(&trees[won], size + 3, req.root);
		if (!rec.present || rec.size != size + 3 ||
		    memcmp(rec.root, req.root, H) != 0)
			bad++;
		if (won != 0)
			memcpy(&trees[0], &trees[won], sizeof(trees[0]));
		size += 3;
	}
	CHECK_EQ_INT(bad, 0);
out:
	sg_witness_free(w[0]);
	sg_witness_free(w[1]);
}

static void
test_setup(void)
{
	if (sg_fx_tmpdir("witness", tmpdir, sizeof(tmpdir)) != 0)
		exit(2);
}

static void
test_teardown(void)
{
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("witness",
    T(test_setup),
    T(test_rule_rfc6962_vectors),
    T(test_rule_front_proofs_are_published_ones),
    T(test_rule_all_sizes),
    T(test_rule_cases),
    T(test_record_files),
    T(test_record_refused),
    T(test_record_races),
    T(test_teardown))
