/*
 * Tests for the log's write path (src/tlog.c) over a real store and an
 * in-process signer made of the signer's own record (sg_witness) and an
 * Ed25519 key: a checkpoint is asked for only once the entries it covers
 * are committed (the signer looks into the database through its own
 * connection), one per batch; a checkpoint that cannot be signed leaves
 * the batch committed but unacknowledged ("kept"), and the next attempt
 * covers it; a stale idea of the signer's record costs one more round; a
 * refusal (a fork of the record) stops the log, appends included, and
 * keeps the daemon from opening it; so does a rollback.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_store.h"
#include "sg_test.h"
#include "sg_fixture.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "sg_witness.h"

#define ORIGIN "tlog.test/log"

static char tmpdir[64];

/* The signer, in process. */
struct fake {
	struct sg_witness *w;
	EVP_PKEY *key;
	uint8_t pub[SG_ED25519_PUB];
	char db[160];
	atomic_int down;               /* fail before the record */
	atomic_int hsm_fails;          /* fail after the record */
	atomic_int calls;
	atomic_int conflicts;
	atomic_int uncommitted;        /* asked for entries not committed */
};

static uint64_t
committed_entries(const char *db)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *s = NULL;
	uint64_t n = UINT64_MAX;

	if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(c, "SELECT COALESCE(MAX(idx) + 1, 0) FROM "
	    "log_entries", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(c);
	return n;
}

static int
fake_sign(void *ctx, const struct sg_witness_request *req,
    struct sg_witness_reply *ret)
{
	struct fake *f = ctx;
	struct sg_checkpoint cp;
	EVP_MD_CTX *m;
	size_t siglen = SG_ED25519_SIG;
	char *text = NULL;
	int r, ok;

	memset(ret, 0, sizeof(*ret));
	atomic_fetch_add(&f->calls, 1);
	/* Entries first, then their checkpoint: never the other way. */
	if (committed_entries(f->db) != req->size)
		atomic_fetch_add(&f->uncommitted, 1);
	if (atomic_load(&f->down)) {
		snprintf(ret->err, sizeof(ret->err), "the signer is down");
		return SG_ERR_UNAVAILABLE;
	}
	r = sg_witness_advance(f->w, req, &ret->rec, ret->err,
	    sizeof(ret->err));
	if (r == SG_ERR_CONFLICT)
		atomic_fetch_add(&f->conflicts, 1);
	if (r != 0)
		return r;
	if (atomic_load(&f->hsm_fails))
		return SG_ERR_HSM;
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", ORIGIN);
	cp.size = req->size;
	memcpy(cp.root, req->root, SG_HASH_LEN);
	if (sg_checkpoint_format(&cp, &text) != 0)
		return SG_ERR_INTERNAL;
	m = EVP_MD_CTX_new();
	ok = m != NULL && EVP_DigestSignInit(m, NULL, NULL, NULL,
	    f->key) == 1 && EVP_DigestSign(m, ret->sig, &siglen,
	    (const uint8_t *)text, strlen(text)) == 1;
	EVP_MD_CTX_free(m);
	free(text);
	return ok ? 0 : SG_ERR_CRYPTO;
}

static struct fake fk;

static void
fake_init(const char *name)
{
	char err[256], dir[128];
	size_t len = SG_ED25519_PUB;

	memset(&fk, 0, sizeof(fk));
	snprintf(dir, sizeof(dir), "%s/%s-hsm", tmpdir, name);
	snprintf(fk.db, sizeof(fk.db), "%s/%s/signgate.db", tmpdir, name);
	if ((fk.key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(fk.key, fk.pub, &len) != 1 ||
	    sg_witness_open(dir, ORIGIN, &fk.w, err, sizeof(err)) != 0) {
		fprintf(stderr, "  fake signer: %s\n", err);
		abort();
	}
}

static void
fake_free(void)
{
	sg_witness_free(fk.w);
	EVP_PKEY_free(fk.key);
	memset(&fk, 0, sizeof(fk));
}

struct log {
	struct sg_store *st;
	struct sg_tlog *l;
};

static int
log_open(const char *name, struct log *lg, char *err, size_t errlen)
{
	char dir[128];
	int r;

	memset(lg, 0, sizeof(*lg));
	snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
	if ((r = sg_store_open(dir, &lg->st)) != 0)
		return r;
	err[0] = '\0';
	if ((r = sg_tlog_open(lg->st, ORIGIN, fk.pub, fake_sign, &fk, &lg->l,
	    err, errlen)) != 0) {
		sg_store_close(lg->st);
		lg->st = NULL;
	}
	return r;
}

static void
log_close(struct log *lg)
{
	sg_store_close(lg->st);
	sg_tlog_free(lg->l);
	memset(lg, 0, sizeof(*lg));
}

struct append {
	struct sg_tlog *l;
	unsigned n;
	unsigned tag;
	int fail;                      /* the job fails after appending */
};

static int
job_append(struct sg_txn *t, void *arg)
{
	struct append *a = arg;
	char entry[64];
	uint64_t idx;
	unsigned i;
	int r;

	for (i = 0; i < a->n; i++) {
		snprintf(entry, sizeof(entry), "entry %u.%u\n", a->tag, i);
		if ((r = sg_tlog_append(a->l, t, entry, strlen(entry),
		    &idx)) != 0)
			return r;
	}
	return a->fail ? SG_ERR_CONFLICT : 0;
}

static int
append(struct log *lg, unsigned n, unsigned tag, int *kept)
{
	struct append a = { lg->l, n, tag, 0 };
	int k = 0, r;

	r = sg_store_write_kept(lg->st, job_append, &a, &k);
	if (kept != NULL)
		*kept = k;
	return r;
}

/* The newest stored checkpoint: verifies with the key; its size. */
static uint64_t
checkpoint(struct log *lg, uint8_t root[SG_HASH_LEN])
{
	struct sg_checkpoint cp;
	struct sg_txn *t = NULL;
	char *note = NULL;
	uint64_t size = UINT64_MAX;
	size_t tl;

	if (sg_store_read_begin(lg->st, &t) != 0)
		return UINT64_MAX;
	if (sg_tlog_checkpoint(t, &note, &size) == 0 &&
	    sg_note_verify(note, strlen(note), ORIGIN, sg_note_key_id(ORIGIN,
	    fk.pub), fk.pub, &tl) == 0 && sg_checkpoint_parse(note, tl,
	    &cp) == 0 && cp.size == size) {
		if (root != NULL)
			memcpy(root, cp.root, SG_HASH_LEN);
	} else
		size = UINT64_MAX - 1;
	free(note);
	sg_store_read_end(t);
	return size;
}

static uint64_t
entries(struct log *lg)
{
	(void)lg;
	return committed_entries(fk.db);
}

static int
copy_file(const char *from, const char *to)
{
	char *buf = NULL;
	size_t len;
	int r;

	if ((r = sg_read_file(from, 64u << 20, &buf, &len)) != 0)
		return r;
	r = sg_write_file(to, buf, len, 0600);
	free(buf);
	return r;
}

static void
test_open_new(void)
{
	struct log lg;
	struct sg_witness_record rec;
	char err[256];

	fake_init("new");
	CHECK_EQ_INT(log_open("new", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(atomic_load(&fk.calls), 1);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 0);
	CHECK_EQ_INT(sg_witness_get(fk.w, &rec, err, sizeof(err)), 0);
	CHECK(rec.present && rec.size == 0);
	log_close(&lg);
out:
	fake_free();
}

/* Concurrent writers: one checkpoint per batch, each for committed
 * entries, and the last covers everything. */
#define WRITERS 6
#define WRITES 40

struct writer {
	struct log *lg;
	unsigned id;
	int failures;
};

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned i;

	for (i = 0; i < WRITES; i++)
		if (append(w->lg, 1 + i % 3, w->id * 1000 + i, NULL) != 0)
			w->failures++;
	return NULL;
}

static void
test_one_checkpoint_per_batch(void)
{
	struct log lg;
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	uint64_t b0, j0, b1, j1, size, n;
	uint8_t root[SG_HASH_LEN], p[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	uint8_t leaf[SG_HASH_LEN];
	struct sg_txn *t = NULL;
	char err[256], *e = NULL;
	size_t len, np;
	int calls0, i;

	fake_init("batch");
	CHECK_EQ_INT(log_open("batch", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	calls0 = atomic_load(&fk.calls);
	sg_store_batch_stats(lg.st, &b0, &j0);
	for (i = 0; i < WRITERS; i++) {
		w[i].lg = &lg;
		w[i].id = (unsigned)i + 1;
		w[i].failures = 0;
		CHECK(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
	}
	for (i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ_INT(w[i].failures, 0);
	}
	sg_store_batch_stats(lg.st, &b1, &j1);
	CHECK_EQ_INT(j1 - j0, WRITERS * WRITES);
	/* Every batch grew the log: exactly one checkpoint each. */
	CHECK_EQ_INT(atomic_load(&fk.calls) - calls0, b1 - b0);
	CHECK(b1 - b0 < j1 - j0 || b1 - b0 == WRITERS * WRITES);
	fprintf(stderr, "  %llu jobs in %llu batches, %d checkpoints\n",
	    (unsigned long long)(j1 - j0), (unsigned long long)(b1 - b0),
	    atomic_load(&fk.calls) - calls0);
	CHECK_EQ_INT(atomic_load(&fk.uncommitted), 0);
	CHECK_EQ_INT(atomic_load(&fk.conflicts), 0);
	size = checkpoint(&lg, root);
	CHECK_EQ_INT(size, entries(&lg));
	CHECK_EQ_INT(size, WRITERS * (WRITES / 3 * 6 + (WRITES % 3 >= 1) +
	    (WRITES % 3 >= 2) * 2));
	/* Proofs under it verify. */
	CHECK_EQ_INT(sg_store_read_begin(lg.st, &t), 0);
	for (n = 0; t != NULL && n < size; n += 17) {
		CHECK_EQ_INT(sg_tlog_entry(t, n, &e, &len), 0);
		sg_merkle_leaf_hash((const uint8_t *)e, len, leaf);
		free(e);
		e = NULL;
		CHECK_EQ_INT(sg_tlog_inclusion(t, n, size, p,
		    SG_MERKLE_MAX_PROOF, &np), 0);
		CHECK_EQ_INT(sg_merkle_verify_inclusion(leaf, n, size,
		    (const uint8_t (*)[SG_HASH_LEN])p, np, root), 0);
	}
	sg_store_read_end(t);
	log_close(&lg);
out:
	fake_free();
}

static void
test_unsigned_batch_is_kept(void)
{
	struct log lg;
	struct sg_tlog_status ls;
	struct sg_witness_record rec;
	uint8_t root[SG_HASH_LEN];
	char err[256];
	uint64_t size0, n1;
	int kept = -1;

	fake_init("kept");
	CHECK_EQ_INT(log_open("kept", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(append(&lg, 3, 1, &kept), 0);
	CHECK_EQ_INT(kept, 0);
	size0 = checkpoint(&lg, NULL);
	CHECK_EQ_INT(size0, 3);

	/* The signer is down: committed, not acknowledged. */
	atomic_store(&fk.down, 1);
	CHECK_EQ_INT(append(&lg, 2, 2, &kept), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(kept, 1);
	n1 = entries(&lg);
	CHECK_EQ_INT(n1, 5);
	CHECK_EQ_INT(checkpoint(&lg, NULL), size0);
	sg_tlog_status(lg.l, &ls);
	CHECK(ls.uncovered && ls.size == 5 && ls.checkpoint_size == 3 &&
	    ls.refusal[0] == '\0');
	/* A job that fails is not kept, whatever the checkpoint. */
	{
		struct append a = { lg.l, 1, 3, 1 };
		kept = -1;
		CHECK_EQ_INT(sg_store_write_kept(lg.st, job_append, &a, &kept),
		    SG_ERR_CONFLICT);
		CHECK_EQ_INT(kept, 0);
	}
	CHECK_EQ_INT(entries(&lg), 5);
	CHECK_EQ_INT(sg_tlog_sync(lg.l), SG_ERR_UNAVAILABLE);
	/* Back: the next sync covers everything. */
	atomic_store(&fk.down, 0);
	CHECK_EQ_INT(sg_tlog_sync(lg.l), 0);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 5);
	sg_tlog_status(lg.l, &ls);
	CHECK(!ls.uncovered);
	CHECK_EQ_INT(sg_tlog_sync(lg.l), 0);

	/* The HSM fails after the record advanced: the same tree is signed
	 * at the next attempt, by the next batch this time. */
	atomic_store(&fk.hsm_fails, 1);
	CHECK_EQ_INT(append(&lg, 1, 4, &kept), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(kept, 1);
	CHECK_EQ_INT(sg_witness_get(fk.w, &rec, err, sizeof(err)), 0);
	CHECK(rec.present && rec.size == 6);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 5);
	atomic_store(&fk.hsm_fails, 0);
	CHECK_EQ_INT(append(&lg, 1, 5, &kept), 0);
	CHECK_EQ_INT(checkpoint(&lg, root), 7);
	CHECK_EQ_INT(entries(&lg), 7);
	CHECK_EQ_INT(atomic_load(&fk.uncommitted), 0);
	log_close(&lg);

	/* Uncovered at the close: signed at the next open, after one
	 * round to learn where the record is. */
	atomic_store(&fk.down, 1);
	CHECK_EQ_INT(log_open("kept", &lg, err, sizeof(err)),
	    SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "no checkpoint could be signed") != NULL);
	atomic_store(&fk.down, 0);
	CHECK_EQ_INT(log_open("kept", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(append(&lg, 4, 6, NULL), 0);
	atomic_store(&fk.down, 1);
	CHECK_EQ_INT(append(&lg, 4, 7, &kept), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(kept, 1);
	log_close(&lg);
	atomic_store(&fk.down, 0);
	atomic_store(&fk.conflicts, 0);
	CHECK_EQ_INT(log_open("kept", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(atomic_load(&fk.conflicts), 1);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 15);
	log_close(&lg);
out:
	fake_free();
}

/* The record replaced by a fork of the log: the log stops. */
static void
test_refusal_stops_the_log(void)
{
	struct log lg;
	struct sg_tlog_status ls;
	struct sg_checkpoint cp;
	char err[512], path[160], *text = NULL, *good = NULL;
	size_t len;
	int calls, kept = -1;

	fake_init("fork");
	CHECK_EQ_INT(log_open("fork", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(append(&lg, 4, 1, NULL), 0);
	snprintf(path, sizeof(path), "%s/fork-hsm/checkpoint", tmpdir);
	CHECK_EQ_INT(sg_read_file(path, 4096, &good, &len), 0);
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", ORIGIN);
	cp.size = 4;
	memset(cp.root, 0x42, SG_HASH_LEN);
	CHECK_EQ_INT(sg_checkpoint_format(&cp, &text), 0);
	CHECK_EQ_INT(sg_write_file(path, text, strlen(text), 0600), 0);
	free(text);

	CHECK_EQ_INT(append(&lg, 1, 2, &kept), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(kept, 1);
	sg_tlog_status(lg.l, &ls);
	CHECK_EQ_INT(ls.refusals, 1);
	CHECK(strstr(ls.refusal, "fork") != NULL);
	calls = atomic_load(&fk.calls);
	/* Nothing more is appended, and the signer is not asked again. */
	CHECK_EQ_INT(append(&lg, 1, 3, &kept), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(kept, 0);
	CHECK_EQ_INT(entries(&lg), 5);
	CHECK_EQ_INT(sg_tlog_sync(lg.l), SG_ERR_VERIFY);
	CHECK_EQ_INT(atomic_load(&fk.calls), calls);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 4);
	log_close(&lg);

	/* Nor is it opened again. */
	CHECK_EQ_INT(log_open("fork", &lg, err, sizeof(err)), SG_ERR_VERIFY);
	CHECK(strstr(err, "the signer refuses the log in the store: fork") !=
	    NULL);
	/* The genuine record back: it opens, and covers the kept entry. */
	if (good != NULL)
		CHECK_EQ_INT(sg_write_file(path, good, len, 0600), 0);
	CHECK_EQ_INT(log_open("fork", &lg, err, sizeof(err)), 0);
	if (lg.l != NULL) {
		CHECK_EQ_INT(checkpoint(&lg, NULL), 5);
		CHECK_EQ_INT(append(&lg, 1, 4, NULL), 0);
		CHECK_EQ_INT(checkpoint(&lg, NULL), 6);
		log_close(&lg);
	}
out:
	free(good);
	fake_free();
}

/* A store older than the record (a restored backup): refused. */
static void
test_rollback_refused(void)
{
	struct log lg;
	char err[512], db[160], backup[160], wal[170];

	fake_init("old");
	snprintf(db, sizeof(db), "%s/old/signgate.db", tmpdir);
	snprintf(backup, sizeof(backup), "%s/old.backup", tmpdir);
	CHECK_EQ_INT(log_open("old", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(append(&lg, 3, 1, NULL), 0);
	log_close(&lg);
	/* Closed: the whole store is in the database file. */
	CHECK_EQ_INT(copy_file(db, backup), 0);
	CHECK_EQ_INT(log_open("old", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(append(&lg, 2, 2, NULL), 0);
	log_close(&lg);
	CHECK_EQ_INT(copy_file(backup, db), 0);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", db);
	unlink(wal);
	CHECK_EQ_INT(log_open("old", &lg, err, sizeof(err)), SG_ERR_VERIFY);
	CHECK(strstr(err, "rollback") != NULL);
	if (lg.l != NULL)
		log_close(&lg);
out:
	fake_free();
}

/* ---- two gateways on one PostgreSQL database ---- */

static int
pg_log_open(const char *conninfo, const char *password, const char *node,
    struct fake *f, struct log *lg, char *err, size_t errlen)
{
	struct sg_store_conf c;
	int r;

	memset(lg, 0, sizeof(*lg));
	memset(&c, 0, sizeof(c));
	c.backend = SG_DB_POSTGRESQL;
	c.conninfo = conninfo;
	c.password = password;
	c.node = node;
	if ((r = sg_store_open_conf(&c, &lg->st)) != 0)
		return r;
	err[0] = '\0';
	if ((r = sg_tlog_open(lg->st, ORIGIN, f->pub, fake_sign, f, &lg->l,
	    err, errlen)) != 0) {
		sg_store_close(lg->st);
		lg->st = NULL;
	}
	return r;
}

/* The proof bundle of entry index, as gateway lg serves it. */
static int
bundle(struct log *lg, uint64_t index)
{
	struct sg_txn *t = NULL;
	char *b = NULL;
	int r;

	if ((r = sg_store_read_begin(lg->st, &t)) != 0)
		return r;
	r = sg_tlog_proof_bundle(t, index, &b);
	sg_store_read_end(t);
	free(b);
	return r;
}

/*
 * Gateway b commits an entry and cannot store its checkpoint (its signer
 * is away, or b dies right after the commit).  Gateway a reads the entry
 * committed (a request signed by b, say) under no checkpoint: it must not
 * wait for b, nor only for its own housekeeping; sg_tlog_cover has a's
 * writer catch up and its signer sign a checkpoint over b's entry.  Then
 * b goes on on top of that tree: one sequence, proofs served by both.
 */
static void
test_other_gateway_entry_covered(void)
{
	struct fake fb;
	struct log a, b;
	char conninfo[512], passfile[256], err[256], dir[128];
	char *password = NULL;
	size_t plen = 0;
	int kept = 0, r;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&fb, 0, sizeof(fb));
	if ((r = sg_fx_pg_new_db("tlog_two", conninfo, sizeof(conninfo),
	    passfile, sizeof(passfile))) != 1) {
		CHECK(r == 0);
		SKIP("no PostgreSQL server (SG_TEST_PG)");
		return;
	}
	CHECK_EQ_INT(sg_read_secret_file(passfile, &password, &plen), 0);
	/* Two signers (records of their own) of one log key. */
	fake_init("gw-a");
	snprintf(dir, sizeof(dir), "%s/gw-b-hsm", tmpdir);
	memcpy(fb.pub, fk.pub, sizeof(fb.pub));
	fb.key = fk.key;
	EVP_PKEY_up_ref(fb.key);
	CHECK_EQ_INT(sg_witness_open(dir, ORIGIN, &fb.w, err, sizeof(err)),
	    0);
	CHECK_EQ_INT(pg_log_open(conninfo, password, "gw-a", &fk, &a, err,
	    sizeof(err)), 0);
	CHECK_EQ_INT(pg_log_open(conninfo, password, "gw-b", &fb, &b, err,
	    sizeof(err)), 0);
	if (a.l == NULL || b.l == NULL || fb.w == NULL)
		goto out;

	atomic_store(&fb.down, 1);
	CHECK_EQ_INT(append(&b, 1, 1, &kept), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(kept, 1);
	CHECK_EQ_INT(bundle(&a, 0), SG_ERR_NOT_FOUND);
	/* a's own idea of its log is covered: syncing changes nothing. */
	CHECK_EQ_INT(sg_tlog_sync(a.l), 0);
	CHECK_EQ_INT(bundle(&a, 0), SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_tlog_cover(a.l, 0), 0);
	CHECK_EQ_INT(bundle(&a, 0), 0);
	CHECK_EQ_INT(bundle(&b, 0), 0);
	/* Covered now: asking again changes nothing and still succeeds. */
	CHECK_EQ_INT(sg_tlog_cover(a.l, 0), 0);
	CHECK_EQ_INT(bundle(&a, 0), 0);

	/* b's signer is back: b appends after that tree, a serves it. */
	atomic_store(&fb.down, 0);
	CHECK_EQ_INT(append(&b, 2, 2, NULL), 0);
	CHECK_EQ_INT(bundle(&a, 2), 0);
	CHECK_EQ_INT(append(&a, 1, 3, NULL), 0);
	CHECK_EQ_INT(bundle(&b, 3), 0);
out:
	log_close(&a);
	log_close(&b);
	sg_witness_free(fb.w);
	EVP_PKEY_free(fb.key);
	fake_free();
	sg_freezero(password, plen);
}

/* Witnesses (src/witnessing.c): with a quorum, only a checkpoint with
 * that many cosignatures is served, with their lines; the newest one,
 * its consistency proofs and the stored lines stay reachable for the
 * submitter, which is told of each new checkpoint. */
static void
on_checkpoint(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

struct cosigs {
	uint64_t size;
	const char *lines;
	unsigned n;
};

static int
job_cosign(struct sg_txn *t, void *arg)
{
	struct cosigs *c = arg;

	return sg_tlog_set_cosignatures(t, c->size, c->lines, c->n);
}

#define COSIG_LINE "\xe2\x80\x94 w.example AAAAAQIDBAUGBwgJ\n"

static void
test_served_quorum(void)
{
	struct log lg;
	struct sg_txn *t = NULL;
	struct cosigs c = { 3, COSIG_LINE, 1 };
	uint8_t proof[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	atomic_int told = 0;
	char err[256], *note = NULL, *lines = NULL;
	uint64_t size = 0;
	size_t n = 0, len;

	fake_init("quorum");
	CHECK_EQ_INT(log_open("quorum", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(append(&lg, 3, 1, NULL), 0);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 3);
	sg_tlog_set_witnessing(lg.l, 1, on_checkpoint, &told);
	CHECK_EQ_INT(append(&lg, 2, 2, NULL), 0);
	CHECK_EQ_INT(atomic_load(&told), 1);

	/* Nothing cosigned yet: nothing served, the newest reachable. */
	CHECK_EQ_INT(sg_store_read_begin(lg.st, &t), 0);
	CHECK_EQ_INT(sg_tlog_checkpoint(t, &note, &size), SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_tlog_checkpoint_size(t, &size), SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_tlog_latest(t, &size, &note, &lines), 0);
	CHECK_EQ_INT(size, 5);
	CHECK_STR(lines, "");
	free(note);
	free(lines);
	note = lines = NULL;
	CHECK_EQ_INT(sg_tlog_consistency(t, 3, 5, proof, SG_MERKLE_MAX_PROOF,
	    &n), SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_tlog_consistency_latest(t, 3, 5, proof,
	    SG_MERKLE_MAX_PROOF, &n), 0);
	CHECK(n > 0);
	sg_store_read_end(t);

	/* The checkpoint of 3 gets its cosignature: served, lines last. */
	CHECK_EQ_INT(sg_store_write(lg.st, job_cosign, &c), 0);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 3);
	CHECK_EQ_INT(sg_store_read_begin(lg.st, &t), 0);
	CHECK_EQ_INT(sg_tlog_checkpoint(t, &note, &size), 0);
	len = note != NULL ? strlen(note) : 0;
	CHECK(len > strlen(COSIG_LINE) &&
	    strcmp(note + len - strlen(COSIG_LINE), COSIG_LINE) == 0);
	free(note);
	note = NULL;
	size = 0;
	CHECK_EQ_INT(sg_tlog_checkpoint_size(t, &size), 0);
	CHECK_EQ_INT(size, 3);
	CHECK_EQ_INT(sg_tlog_cosignatures(t, 3, &lines), 0);
	CHECK_STR(lines, COSIG_LINE);
	free(lines);
	lines = NULL;
	CHECK_EQ_INT(sg_tlog_quorum_size(t, 1, &size), 0);
	CHECK_EQ_INT(size, 3);
	CHECK_EQ_INT(sg_tlog_quorum_size(t, 2, &size), SG_ERR_NOT_FOUND);
	/* Entries and proofs only up to the served checkpoint. */
	CHECK_EQ_INT(sg_tlog_inclusion(t, 3, 5, proof, SG_MERKLE_MAX_PROOF,
	    &n), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_tlog_inclusion(t, 1, 3, proof, SG_MERKLE_MAX_PROOF,
	    &n), 0);
	sg_store_read_end(t);

	/* Without witnesses again: the newest. */
	sg_tlog_set_witnessing(lg.l, 0, NULL, NULL);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 5);
	log_close(&lg);
out:
	fake_free();
}

static int
job_big(struct sg_txn *t, void *arg)
{
	struct log *lg = arg;
	char *big = malloc(SG_TILE_ENTRY_MAX + 1);
	uint64_t idx;
	int r;

	if (big == NULL)
		abort();
	memset(big, 'b', SG_TILE_ENTRY_MAX + 1);
	r = sg_tlog_append(lg->l, t, big, SG_TILE_ENTRY_MAX + 1, &idx);
	free(big);
	return r;
}

/* The tile (entries, level, index, width) as sg_tlog_tile serves it. */
static int
tile(struct log *lg, int entries, unsigned level, uint64_t index,
    unsigned width, uint8_t **ret, size_t *ret_len, uint64_t *bad)
{
	struct sg_tile t = { entries, level, index, width };
	struct sg_txn *tx = NULL;
	int r;

	*ret = NULL;
	if (sg_store_read_begin(lg->st, &tx) != 0)
		return SG_ERR_IO;
	r = sg_tlog_tile(tx, &t, ret, ret_len, bad);
	sg_store_read_end(tx);
	return r;
}

/* Tiles from the stored tree: what the checkpoint covers and nothing
 * more; bundles of the exact entries; an entry too long for a bundle
 * (as an older build could store) named, never cut. */
static void
test_tiles(void)
{
	struct log lg;
	char err[256], want[32];
	uint8_t *buf = NULL, leaf[SG_HASH_LEN], node[SG_HASH_LEN];
	const uint8_t *e;
	size_t len = 0, pos, elen;
	uint64_t bad = 0;
	unsigned i;
	sqlite3 *c = NULL;

	fake_init("tiles");
	CHECK_EQ_INT(log_open("tiles", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(append(&lg, 300, 7, NULL), 0);
	/* Longer than a bundle carries: the job fails, nothing appended. */
	CHECK_EQ_INT(sg_store_write(lg.st, job_big, &lg), SG_ERR_TOO_LARGE);
	CHECK_EQ_INT(checkpoint(&lg, NULL), 300);
	CHECK_EQ_INT(entries(&lg), 300);

	CHECK_EQ_INT(tile(&lg, 0, 0, 0, 256, &buf, &len, &bad), 0);
	CHECK(len == SG_TILE_HASHES_MAX);
	for (i = 0; buf != NULL && i < 256; i += 85) {
		snprintf(want, sizeof(want), "entry 7.%u\n", i);
		sg_merkle_leaf_hash((uint8_t *)want, strlen(want), leaf);
		CHECK(memcmp(buf + i * SG_HASH_LEN, leaf, SG_HASH_LEN) == 0);
	}
	if (buf != NULL)
		CHECK_EQ_INT(sg_tile_subtree(buf, 256, 8, 0, node), 0);
	free(buf);
	CHECK_EQ_INT(tile(&lg, 0, 1, 0, 1, &buf, &len, &bad), 0);
	CHECK(len == SG_HASH_LEN && buf != NULL &&
	    memcmp(buf, node, SG_HASH_LEN) == 0);
	free(buf);
	CHECK_EQ_INT(tile(&lg, 0, 0, 1, 44, &buf, &len, &bad), 0);
	free(buf);
	CHECK_EQ_INT(tile(&lg, 0, 0, 1, 10, &buf, &len, &bad), 0);
	CHECK(len == 10 * SG_HASH_LEN);
	free(buf);
	CHECK_EQ_INT(tile(&lg, 0, 0, 1, 45, &buf, &len, &bad),
	    SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(tile(&lg, 0, 0, 1, 256, &buf, &len, &bad),
	    SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(tile(&lg, 0, 1, 0, 2, &buf, &len, &bad),
	    SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(tile(&lg, 1, 0, 1, 44, &buf, &len, &bad), 0);
	for (pos = 0, i = 0; buf != NULL && sg_tile_bundle_next(buf, len,
	    &pos, &e, &elen) == 1; i++) {
		snprintf(want, sizeof(want), "entry 7.%u\n", 256 + i);
		CHECK(elen == strlen(want) && memcmp(e, want, elen) == 0);
	}
	CHECK_EQ_INT(i, 44);
	CHECK(pos == len);
	free(buf);

	/* Entry 5 as an older build could have stored it. */
	log_close(&lg);
	CHECK(sqlite3_open(fk.db, &c) == SQLITE_OK &&
	    sqlite3_exec(c, "UPDATE log_entries SET data = zeroblob(70000) "
	    "WHERE idx = 5", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(c);
	CHECK_EQ_INT(log_open("tiles", &lg, err, sizeof(err)), 0);
	if (lg.l == NULL)
		goto out;
	CHECK_EQ_INT(tile(&lg, 1, 0, 0, 256, &buf, &len, &bad),
	    SG_ERR_TOO_LARGE);
	CHECK(buf == NULL && bad == 5);
	CHECK_EQ_INT(tile(&lg, 1, 0, 1, 44, &buf, &len, &bad), 0);
	free(buf);
	log_close(&lg);
out:
	fake_free();
}

static void
test_setup(void)
{
	if (sg_fx_tmpdir("tlog", tmpdir, sizeof(tmpdir)) != 0)
		exit(2);
}

static void
test_teardown(void)
{
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("tlog",
    T(test_setup),
    T(test_open_new),
    T(test_one_checkpoint_per_batch),
    T(test_unsigned_batch_is_kept),
    T(test_refusal_stops_the_log),
    T(test_rollback_refused),
    T(test_other_gateway_entry_covered),
    T(test_served_quorum),
    T(test_tiles),
    T(test_teardown))
