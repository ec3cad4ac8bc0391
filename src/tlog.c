/*
 * The transparency log over the store.
 *
 * Tables: log_entries (index -> exact entry bytes), log_nodes (every
 * complete subtree hash, level 0 being the leaves), log_checkpoints (size ->
 * signed note).  Appends happen in store write jobs on the writer thread;
 * the in-memory frontier follows the store's savepoints through its hooks:
 * a job that fails restores the frontier it started from, a batch that is
 * dropped restores the last committed one.
 *
 * Checkpoints come after the commit, never before.  The signer keeps the
 * last tree it signed and signs only extensions of it (sg_witness.h), so a
 * tree it has signed must never be lost: if the front signed (N, A) and
 * then failed to commit, its tree would stay at N - 1 and any later tree of
 * N entries would have another root, a fork the signer refuses for ever.
 * So, per batch (the store's batch_durable hook, one checkpoint per batch
 * whatever the number of jobs):
 *
 *   1. the batch commits: entries, tree nodes, request states (one fsync);
 *   2. the signer is asked to sign the committed tree (size, root), with a
 *      consistency proof from the tree it recorded last, computed here
 *      from the stored nodes; it formats the checkpoint text itself from
 *      its own origin, records the tree (its two fsyncs), and signs;
 *   3. the note is verified once with the log key and stored in a
 *      transaction of its own without an fsync (sg_store_txn_relaxed): a
 *      lost row is harmless, the same tree is signed again the same way;
 *   4. only then does sg_store_write return, and the clients are answered.
 *
 * Three fsyncs per batch that grows the log (one when it does not).
 *
 * If step 2 or 3 fails, the batch stays committed but none of its jobs is
 * acknowledged (the clients get 503 as before, and a retry with the
 * Idempotency-Key finds what was stored); the next batch, sg_tlog_sync()
 * from the housekeeping thread, or the next start signs a checkpoint that
 * covers it.  Proofs and entries are served only up to the newest
 * checkpoint, so nothing uncovered is ever handed out.  If the signer
 * refuses the tree (a fork or a rollback of what it signed: a restored
 * backup, a damaged store, a front that is not honest) the log stops: the
 * refusal is logged as an error, counted, reported by sg_tlog_status()
 * (and so /readyz and /metrics), and no entry is appended any more until
 * an operator acts (docs/OPERATIONS.md).
 *
 * At open the signer is asked to sign the stored tree even when a
 * checkpoint covers it: that checks, before anything is served, that the
 * store and the signer's record agree.  With no record yet (a new
 * signer state directory) the signer takes the tree as it is: trust on
 * first use.
 *
 * Proofs are computed from stored complete-subtree hashes (O(log^2 n)
 * look-ups at worst); memory does not grow with the log.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_db.h"

#include "sg_err.h"
#include "sg_tlog.h"
#include "sg_util.h"

static const char log_schema[] =
    "CREATE TABLE IF NOT EXISTS log_entries ("
    " idx INTEGER PRIMARY KEY,"
    " data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS log_nodes ("
    " level INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL,"
    " PRIMARY KEY (level, idx)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS log_checkpoints ("
    " size INTEGER PRIMARY KEY,"
    " note TEXT NOT NULL,"
    " signed_at INTEGER NOT NULL DEFAULT 0,"
    " cosignatures TEXT NOT NULL DEFAULT '',"
    " cosigned INTEGER NOT NULL DEFAULT 0);";

struct sg_tlog {
	struct sg_store *st;
	char *origin;
	char *vkey;
	uint32_t key_id;
	uint8_t pub[SG_ED25519_PUB];
	sg_tlog_sign_fn sign;
	void *sign_ctx;
	/* Owned by the writer thread (hooks and jobs run there). */
	struct sg_merkle_frontier cur, job_start, committed;
	struct sg_witness_record rec;  /* the signer's record, as last told */
	/* Shared with other threads. */
	pthread_mutex_t lock;
	uint64_t size;                 /* entries committed */
	uint64_t cp_size;              /* entries under the newest checkpoint */
	int have_cp;
	int force;                     /* sign even if a checkpoint covers it */
	int failing;                   /* the last checkpoint was not signed */
	uint64_t refusals;
	char refusal[SG_TLOG_REASON_MAX]; /* "" unless the signer refused */
	/* Told of each checkpoint stored (the witnesses' submitter). */
	void (*on_checkpoint)(void *ctx);
	void *on_checkpoint_ctx;
};

/*
 * The cosignatures a checkpoint needs before it is served (proofs,
 * entries, /v1/log/checkpoint): 0 without witnesses.  Readers take only a
 * transaction, not the log, so the setting is the process's: one gateway
 * serves one log.
 */
static _Atomic unsigned served_quorum;

struct get_ctx {
	struct sg_db *db;
	struct sg_db_stmt *s;
};

static int
get_node(void *arg, unsigned level, uint64_t index, uint8_t out[SG_HASH_LEN])
{
	struct get_ctx *g = arg;
	int rc;

	if (g->s == NULL && sg_db_prepare(g->db, "SELECT hash FROM "
	    "log_nodes WHERE level = ?1 AND idx = ?2", &g->s) != 0)
		return SG_ERR_IO;
	sg_db_reset(g->s);
	sg_db_bind_int64(g->s, 1, (int)level);
	sg_db_bind_int64(g->s, 2, (int64_t)index);
	rc = sg_db_step(g->s);
	if (rc != SG_DB_ROW)
		return rc == SG_DB_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	if ((int)sg_db_column_bytes(g->s, 0) != SG_HASH_LEN)
		return SG_ERR_INTERNAL;
	memcpy(out, sg_db_column_blob(g->s, 0), SG_HASH_LEN);
	return 0;
}

static void
get_done(struct get_ctx *g)
{
	sg_db_finalize(g->s);
	g->s = NULL;
}

static int
emit_node(void *arg, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN])
{
	struct sg_db *db = arg;
	struct sg_db_stmt *s = NULL;
	int rc;

	if (sg_db_prepare(db, "INSERT INTO log_nodes (level, idx, hash) "
	    "VALUES (?1, ?2, ?3)", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int)level);
	sg_db_bind_int64(s, 2, (int64_t)index);
	sg_db_bind_blob(s, 3, hash, SG_HASH_LEN);
	rc = sg_db_step(s);
	sg_db_finalize(s);
	return rc == SG_DB_DONE ? 0 : SG_ERR_IO;
}

/* Whether the signer has refused this log: then nothing is appended. */
static int
refused(struct sg_tlog *l)
{
	int r;

	pthread_mutex_lock(&l->lock);
	r = l->refusal[0] != '\0';
	pthread_mutex_unlock(&l->lock);
	return r;
}

int
sg_tlog_append(struct sg_tlog *l, struct sg_txn *t, const char *entry,
    size_t len, uint64_t *ret_index)
{
	struct sg_db *db = sg_store_txn_db(t);
	struct sg_db_stmt *s = NULL;
	uint8_t leaf[SG_HASH_LEN];
	uint64_t index = l->cur.size;
	int rc, r;

	if (!sg_store_txn_is_write(t) || len == 0)
		return SG_ERR_INVALID;
	/* An entry bundle could not carry it: fail the job, append nothing. */
	if (len > SG_TILE_ENTRY_MAX) {
		sg_log_error("log: refusing an entry of %zu bytes, longer than "
		    "the %d an entry bundle carries", len, SG_TILE_ENTRY_MAX);
		return SG_ERR_TOO_LARGE;
	}
	if (refused(l))
		return SG_ERR_UNAVAILABLE;
	if (sg_db_prepare(db, "INSERT INTO log_entries (idx, data) "
	    "VALUES (?1, ?2)", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)index);
	sg_db_bind_blob(s, 2, entry, len);
	rc = sg_db_step(s);
	sg_db_finalize(s);
	if (rc != SG_DB_DONE)
		return SG_ERR_IO;
	sg_merkle_leaf_hash((const uint8_t *)entry, len, leaf);
	if ((r = sg_merkle_frontier_append(&l->cur, leaf, emit_node, db)) != 0)
		return r;
	*ret_index = index;
	return 0;
}

/* The request for the committed tree, with a consistency proof from the
 * signer's record when the tree is larger. */
static int
build_request(struct sg_tlog *l, struct sg_db *db, struct sg_witness_request *req)
{
	struct get_ctx g = { db, NULL };
	int r;

	memset(req, 0, sizeof(*req));
	req->size = l->committed.size;
	sg_merkle_frontier_root(&l->committed, req->root);
	if (!l->rec.present)
		return 0;
	req->old_size = l->rec.size;
	if (l->rec.size == 0 || l->rec.size >= req->size)
		return 0;
	r = sg_merkle_consistency_proof(get_node, &g, l->rec.size, req->size,
	    req->proof, SG_MERKLE_MAX_PROOF, &req->nproof);
	get_done(&g);
	return r;
}

/* The signed note for the committed tree, verified with the log key:
 * never trust the HSM, nor the signer process, blindly. */
static int
make_note(struct sg_tlog *l, const struct sg_witness_request *req,
    const uint8_t sig[SG_ED25519_SIG], char **ret)
{
	struct sg_checkpoint cp;
	char *text = NULL, *line = NULL, *note = NULL;
	size_t tl;
	int r;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", l->origin);
	cp.size = req->size;
	memcpy(cp.root, req->root, SG_HASH_LEN);
	if ((r = sg_checkpoint_format(&cp, &text)) != 0 ||
	    (r = sg_note_signature_line(l->origin, l->key_id, sig,
	    &line)) != 0)
		goto out;
	if (asprintf(&note, "%s\n%s", text, line) < 0) {
		note = NULL;
		r = SG_ERR_NOMEM;
		goto out;
	}
	if (sg_note_verify(note, strlen(note), l->origin, l->key_id, l->pub,
	    &tl) != 0) {
		sg_log_error("log: the signer's checkpoint signature does not "
		    "verify with the log key");
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	*ret = note;
	note = NULL;
out:
	free(text);
	free(line);
	free(note);
	return r;
}

struct store_cp {
	const char *note;
	uint64_t size;
};

static int
job_store_checkpoint(struct sg_txn *t, void *arg)
{
	struct store_cp *sc = arg;
	struct sg_db_stmt *s = NULL;
	int rc;

	if (sg_db_prepare(sg_store_txn_db(t), "INSERT INTO log_checkpoints "
	    "(size, note, signed_at) VALUES (?1, ?2, ?3) ON CONFLICT (size) "
	    "DO UPDATE SET note = excluded.note, signed_at = "
	    "excluded.signed_at", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)sc->size);
	sg_db_bind_text(s, 2, sc->note);
	sg_db_bind_int64(s, 3, (int64_t)time(NULL));
	rc = sg_db_step(s);
	sg_db_finalize(s);
	return rc == SG_DB_DONE ? 0 : SG_ERR_IO;
}

/* The signer refused the tree: the log stops until an operator acts. */
static void
record_refusal(struct sg_tlog *l, const struct sg_witness_request *req,
    const struct sg_witness_reply *rep)
{
	char why[sizeof(rep->err) * 4];

	sg_escape(rep->err, strnlen(rep->err, sizeof(rep->err)), why,
	    sizeof(why));
	sg_log_error("log: THE SIGNER REFUSES TO SIGN THE LOG: %s (the store "
	    "holds %llu entries; the signer signed %llu last).  Nothing more "
	    "is appended or acknowledged until an operator acts: see "
	    "\"The signer's checkpoint record\" in OPERATIONS.md", why,
	    (unsigned long long)req->size,
	    (unsigned long long)rep->rec.size);
	pthread_mutex_lock(&l->lock);
	l->refusals++;
	snprintf(l->refusal, sizeof(l->refusal), "%.*s",
	    (int)sizeof(l->refusal) - 1, why);
	pthread_mutex_unlock(&l->lock);
}

/* Signs and stores a checkpoint for the committed tree (writer thread,
 * after the COMMIT). */
static int
checkpoint(struct sg_tlog *l, struct sg_txn *t)
{
	struct sg_witness_request *req;
	struct sg_witness_reply rep;
	struct store_cp sc;
	char *note = NULL;
	int attempt, r;

	if ((req = malloc(sizeof(*req))) == NULL)
		return SG_ERR_NOMEM;
	memset(&rep, 0, sizeof(rep));
	/* A stale idea of the signer's record costs one more round. */
	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = build_request(l, sg_store_txn_db(t), req)) != 0) {
			sg_log_error("log: no consistency proof from %llu to "
			    "%llu entries: %s",
			    (unsigned long long)l->rec.size,
			    (unsigned long long)l->committed.size,
			    sg_strerror(r));
			r = SG_ERR_UNAVAILABLE;
			goto out;
		}
		r = l->sign(l->sign_ctx, req, &rep);
		/* Whenever the signer answered, it told its record. */
		if (r == SG_ERR_CONFLICT || rep.rec.present)
			l->rec = rep.rec;
		if (r != SG_ERR_CONFLICT)
			break;
	}
	if (r == SG_ERR_VERIFY) {
		record_refusal(l, req, &rep);
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if (r != 0) {
		char why[sizeof(rep.err) * 4];
		sg_escape(rep.err, strnlen(rep.err, sizeof(rep.err)), why,
		    sizeof(why));
		sg_log_error("log: the checkpoint for %llu entries could not "
		    "be signed: %s%s%s", (unsigned long long)req->size,
		    sg_strerror(r), why[0] ? ": " : "", why);
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = make_note(l, req, rep.sig, &note)) != 0)
		goto out;
	sc.note = note;
	sc.size = req->size;
	/* Once more on failure: the signature is in hand. */
	if ((r = sg_store_txn_relaxed(t, job_store_checkpoint, &sc)) != 0 &&
	    (r = sg_store_txn_relaxed(t, job_store_checkpoint, &sc)) != 0) {
		sg_log_error("log: the signed checkpoint for %llu entries "
		    "could not be stored: %s", (unsigned long long)req->size,
		    sg_strerror(r));
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	pthread_mutex_lock(&l->lock);
	l->cp_size = req->size;
	l->have_cp = 1;
	l->force = 0;
	/* Under the lock, so that it is never called once unset. */
	if (l->on_checkpoint != NULL)
		l->on_checkpoint(l->on_checkpoint_ctx);
	pthread_mutex_unlock(&l->lock);
out:
	pthread_mutex_lock(&l->lock);
	l->failing = r != 0;
	pthread_mutex_unlock(&l->lock);
	free(note);
	free(req);
	return r;
}

static void
hook_job_begin(void *ctx)
{
	struct sg_tlog *l = ctx;

	l->job_start = l->cur;
}

static void
hook_job_abort(void *ctx)
{
	struct sg_tlog *l = ctx;

	l->cur = l->job_start;
}

static void
hook_batch_committed(void *ctx)
{
	struct sg_tlog *l = ctx;

	l->committed = l->cur;
	pthread_mutex_lock(&l->lock);
	l->size = l->committed.size;
	pthread_mutex_unlock(&l->lock);
}

static void
hook_batch_abort(void *ctx)
{
	struct sg_tlog *l = ctx;

	l->cur = l->committed;
}

/* After the commit: a checkpoint for what is not covered yet. */
static int
hook_batch_durable(void *ctx, struct sg_txn *t)
{
	struct sg_tlog *l = ctx;
	int need, stop;

	pthread_mutex_lock(&l->lock);
	need = l->force || !l->have_cp || l->cp_size != l->committed.size;
	stop = l->refusal[0] != '\0';
	pthread_mutex_unlock(&l->lock);
	/* Refused once, refused for good: asking again changes nothing. */
	if (stop && need)
		return SG_ERR_UNAVAILABLE;
	return need ? checkpoint(l, t) : 0;
}

/* The number of entries in the store, as this transaction sees it. */
static int
stored_size(struct sg_db *db, uint64_t *ret)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if (sg_db_prepare(db, "SELECT COALESCE(MAX(idx) + 1, 0) FROM "
	    "log_entries", &s) != 0)
		return SG_ERR_IO;
	r = sg_db_step(s);
	if (r == SG_DB_ROW) {
		*ret = (uint64_t)sg_db_column_int64(s, 0);
		r = 0;
	} else
		r = r < 0 ? r : SG_ERR_IO;
	sg_db_finalize(s);
	return r;
}

/*
 * Brings the in-memory frontier to the stored tree, when it is not there:
 * at open, and at the start of each batch after another gateway on the
 * same database appended entries (the batch holds the database's write
 * lock, so nobody appends meanwhile).  The frontier is read from the
 * stored complete subtrees, O(log n) look-ups.
 */
static int
catch_up(struct sg_tlog *l, struct sg_txn *t)
{
	struct get_ctx g = { sg_store_txn_db(t), NULL };
	uint64_t size = 0;
	int r;

	if ((r = stored_size(g.db, &size)) != 0)
		return r;
	if (size == l->committed.size && size == l->cur.size)
		return 0;
	if (size < l->committed.size) {
		sg_log_error("log: the store holds %llu entries, fewer than the "
		    "%llu committed: refusing to go on",
		    (unsigned long long)size,
		    (unsigned long long)l->committed.size);
		return SG_ERR_IO;
	}
	r = sg_merkle_frontier_load(&l->cur, size, get_node, &g);
	get_done(&g);
	if (r != 0) {
		sg_log_error("log: the stored tree of %llu entries is "
		    "incomplete", (unsigned long long)size);
		return r;
	}
	l->committed = l->cur;
	pthread_mutex_lock(&l->lock);
	l->size = size;
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static int
hook_batch_begin(void *ctx, struct sg_txn *t)
{
	struct sg_tlog *l = ctx;

	/* Alone on its database, this writer appended every entry: there
	 * is nothing to catch up with, and no query to spend on it. */
	if (!sg_store_shared(l->st))
		return 0;
	return catch_up(l, t);
}

/* PostgreSQL's schema holds the log's tables from the start
 * (src/store_schema.c); SQLite's gets them here, as it always has. */
int
sg_tlog_tables(struct sg_db *db)
{
	struct sg_db_stmt *s = NULL;

	if (sg_db_backend(db) != SG_DB_SQLITE)
		return 0;
	if (sg_db_exec(db, log_schema) != 0)
		return SG_ERR_IO;
	/* Stores from before checkpoints carried their signing time. */
	if (sg_db_prepare(db, "SELECT signed_at FROM log_checkpoints LIMIT 0",
	    &s) != 0)
		return sg_db_exec(db, "ALTER TABLE log_checkpoints ADD COLUMN "
		    "signed_at INTEGER NOT NULL DEFAULT 0") != 0 ? SG_ERR_IO : 0;
	sg_db_finalize(s);
	return 0;
}

/* Creates the tables and loads the frontier and the newest checkpoint's
 * size; the hooks do not exist yet, so it sets the frontier itself. */
static int
job_open(struct sg_txn *t, void *arg)
{
	struct sg_tlog *l = arg;
	struct sg_db *db = sg_store_txn_db(t);
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = sg_tlog_tables(db)) != 0)
		return r;
	if ((r = catch_up(l, t)) != 0)
		return r;
	if (sg_db_prepare(db, "SELECT MAX(size) FROM log_checkpoints", &s) != 0)
		return SG_ERR_IO;
	if (sg_db_step(s) == SG_DB_ROW &&
	    !sg_db_column_null(s, 0)) {
		l->cp_size = (uint64_t)sg_db_column_int64(s, 0);
		l->have_cp = 1;
	}
	sg_db_finalize(s);
	return 0;
}

static int
job_nothing(struct sg_txn *t, void *arg)
{
	(void)t;
	(void)arg;
	return 0;
}

int
sg_tlog_open(struct sg_store *st, const char *origin,
    const uint8_t pub[SG_ED25519_PUB], sg_tlog_sign_fn sign, void *sign_ctx,
    struct sg_tlog **ret, char *errbuf, size_t errlen)
{
	struct sg_tlog *l;
	struct sg_store_hooks h;
	int r, hooked = 0;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return SG_ERR_NOMEM;
	pthread_mutex_init(&l->lock, NULL);
	l->st = st;
	memcpy(l->pub, pub, SG_ED25519_PUB);
	l->sign = sign;
	l->sign_ctx = sign_ctx;
	l->key_id = sg_note_key_id(origin, pub);
	sg_merkle_frontier_init(&l->cur);
	if ((l->origin = strdup(origin)) == NULL ||
	    (r = sg_note_vkey_format(origin, pub, &l->vkey)) != 0) {
		r = SG_ERR_NOMEM;
		goto fail;
	}
	if ((r = sg_store_write(st, job_open, l)) != 0) {
		snprintf(errbuf, errlen, "the log's tables cannot be read: %s",
		    sg_strerror(r));
		goto fail;
	}
	memset(&h, 0, sizeof(h));
	h.ctx = l;
	h.batch_begin = hook_batch_begin;
	h.job_begin = hook_job_begin;
	h.job_abort = hook_job_abort;
	h.batch_committed = hook_batch_committed;
	h.batch_abort = hook_batch_abort;
	h.batch_durable = hook_batch_durable;
	sg_store_set_hooks(st, &h);
	hooked = 1;
	/* The signer confirms the stored tree before anything is served. */
	pthread_mutex_lock(&l->lock);
	l->force = 1;
	pthread_mutex_unlock(&l->lock);
	if ((r = sg_store_write(st, job_nothing, NULL)) != 0) {
		struct sg_tlog_status ls;
		sg_tlog_status(l, &ls);
		if (ls.refusal[0] != '\0') {
			snprintf(errbuf, errlen, "the signer refuses the log "
			    "in the store: %s", ls.refusal);
			r = SG_ERR_VERIFY;
		} else {
			snprintf(errbuf, errlen, "no checkpoint could be "
			    "signed for the %llu entries in the store",
			    (unsigned long long)ls.size);
			r = SG_ERR_UNAVAILABLE;
		}
		goto fail;
	}
	*ret = l;
	return 0;
fail:
	if (hooked) {
		memset(&h, 0, sizeof(h));
		sg_store_set_hooks(st, &h);
	}
	sg_tlog_free(l);
	return r;
}

int
sg_tlog_sync(struct sg_tlog *l)
{
	int need, stop;

	pthread_mutex_lock(&l->lock);
	need = !l->have_cp || l->cp_size != l->size;
	stop = l->refusal[0] != '\0';
	pthread_mutex_unlock(&l->lock);
	if (stop)
		return SG_ERR_VERIFY;
	return need ? sg_store_write(l->st, job_nothing, NULL) : 0;
}

int
sg_tlog_cover(struct sg_tlog *l, uint64_t index)
{
	int stop;

	(void)index;
	pthread_mutex_lock(&l->lock);
	stop = l->refusal[0] != '\0';
	pthread_mutex_unlock(&l->lock);
	if (stop)
		return SG_ERR_VERIFY;
	/* The writer runs one batch at a time: this one starts after any
	 * batch whose checkpoint is still being signed.  Its begin hook
	 * loads the stored tree; its end signs a checkpoint for it unless
	 * one covers it already. */
	return sg_store_write(l->st, job_nothing, NULL);
}

void
sg_tlog_status(struct sg_tlog *l, struct sg_tlog_status *ret)
{
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&l->lock);
	ret->size = l->size;
	ret->checkpoint_size = l->have_cp ? l->cp_size : 0;
	ret->uncovered = l->failing && (!l->have_cp || l->cp_size != l->size);
	ret->refusals = l->refusals;
	snprintf(ret->refusal, sizeof(ret->refusal), "%s", l->refusal);
	pthread_mutex_unlock(&l->lock);
}

void
sg_tlog_free(struct sg_tlog *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l->origin);
	free(l->vkey);
	free(l);
}

const char *
sg_tlog_vkey(const struct sg_tlog *l)
{
	return l->vkey;
}

const char *
sg_tlog_origin(const struct sg_tlog *l)
{
	return l->origin;
}

void
sg_tlog_set_witnessing(struct sg_tlog *l, unsigned quorum,
    void (*on_checkpoint)(void *ctx), void *ctx)
{
	served_quorum = quorum;
	pthread_mutex_lock(&l->lock);
	l->on_checkpoint = on_checkpoint;
	l->on_checkpoint_ctx = ctx;
	pthread_mutex_unlock(&l->lock);
}

/* The newest checkpoint with at least `quorum` cosignatures: its size,
 * the log's note and, apart, the cosignature lines. */
static int
checkpoint_row(struct sg_txn *t, unsigned quorum, uint64_t *ret_size,
    char **ret_note, char **ret_cosigs)
{
	struct sg_db_stmt *s = NULL;
	const char *cosigs;
	int rc, r;

	*ret_note = NULL;
	if (ret_cosigs != NULL)
		*ret_cosigs = NULL;
	if (sg_db_prepare(sg_store_txn_db(t), "SELECT size, note, "
	    "cosignatures FROM log_checkpoints WHERE cosigned >= ?1 "
	    "ORDER BY size DESC LIMIT 1", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)quorum);
	rc = sg_db_step(s);
	if (rc == SG_DB_ROW) {
		*ret_size = (uint64_t)sg_db_column_int64(s, 0);
		cosigs = (const char *)sg_db_column_text(s, 2);
		*ret_note = strdup((const char *)sg_db_column_text(s, 1));
		r = *ret_note != NULL ? 0 : SG_ERR_NOMEM;
		if (r == 0 && ret_cosigs != NULL &&
		    (*ret_cosigs = strdup(cosigs != NULL ? cosigs : "")) ==
		    NULL)
			r = SG_ERR_NOMEM;
	} else
		r = rc == SG_DB_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	sg_db_finalize(s);
	if (r != 0) {
		free(*ret_note);
		*ret_note = NULL;
		if (ret_cosigs != NULL) {
			free(*ret_cosigs);
			*ret_cosigs = NULL;
		}
	}
	return r;
}

int
sg_tlog_checkpoint(struct sg_txn *t, char **ret_note, uint64_t *ret_size)
{
	char *note = NULL, *cosigs = NULL;
	uint64_t size;
	int r;

	if ((r = checkpoint_row(t, served_quorum, &size, &note,
	    &cosigs)) != 0)
		return r;
	/* The cosigned note: the witnesses' lines after the log's. */
	if (cosigs[0] != '\0') {
		char *both = NULL;
		if (asprintf(&both, "%s%s", note, cosigs) < 0)
			r = SG_ERR_NOMEM;
		else {
			free(note);
			note = both;
		}
	}
	free(cosigs);
	if (r != 0) {
		free(note);
		return r;
	}
	*ret_note = note;
	*ret_size = size;
	return 0;
}

/* The size (and signing time, when ret_signed_at is not NULL) of the
 * newest checkpoint with at least `quorum` cosignatures, without reading
 * its note: all a proof, a tile or the quorum needs. */
static int
newest_size(struct sg_txn *t, unsigned quorum, uint64_t *ret_size,
    int64_t *ret_signed_at)
{
	struct sg_db_stmt *s = NULL;
	int rc, r;

	if (sg_db_prepare(sg_store_txn_db(t), "SELECT size, signed_at "
	    "FROM log_checkpoints WHERE cosigned >= ?1 ORDER BY size DESC "
	    "LIMIT 1", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)quorum);
	rc = sg_db_step(s);
	if (rc == SG_DB_ROW) {
		*ret_size = (uint64_t)sg_db_column_int64(s, 0);
		if (ret_signed_at != NULL)
			*ret_signed_at = sg_db_column_int64(s, 1);
		r = 0;
	} else
		r = rc == SG_DB_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	sg_db_finalize(s);
	return r;
}

int
sg_tlog_quorum_size(struct sg_txn *t, unsigned quorum, uint64_t *ret_size)
{
	return newest_size(t, quorum, ret_size, NULL);
}

int
sg_tlog_latest(struct sg_txn *t, uint64_t *ret_size, char **ret_note,
    char **ret_cosigs)
{
	return checkpoint_row(t, 0, ret_size, ret_note, ret_cosigs);
}

int
sg_tlog_cosignatures(struct sg_txn *t, uint64_t size, char **ret_cosigs)
{
	struct sg_db_stmt *s = NULL;
	const char *c;
	int rc, r;

	*ret_cosigs = NULL;
	if (size > INT64_MAX)
		return SG_ERR_NOT_FOUND;
	if (sg_db_prepare(sg_store_txn_db(t), "SELECT cosignatures FROM "
	    "log_checkpoints WHERE size = ?1", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)size);
	rc = sg_db_step(s);
	if (rc == SG_DB_ROW) {
		c = (const char *)sg_db_column_text(s, 0);
		*ret_cosigs = strdup(c != NULL ? c : "");
		r = *ret_cosigs != NULL ? 0 : SG_ERR_NOMEM;
	} else
		r = rc == SG_DB_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	sg_db_finalize(s);
	return r;
}

int
sg_tlog_set_cosignatures(struct sg_txn *t, uint64_t size, const char *lines,
    unsigned cosigned)
{
	struct sg_db_stmt *s = NULL;
	int rc;

	if (!sg_store_txn_is_write(t) || size > INT64_MAX)
		return SG_ERR_INVALID;
	if (sg_db_prepare(sg_store_txn_db(t), "UPDATE log_checkpoints SET "
	    "cosignatures = ?1, cosigned = ?2 WHERE size = ?3", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_text(s, 1, lines);
	sg_db_bind_int64(s, 2, (int64_t)cosigned);
	sg_db_bind_int64(s, 3, (int64_t)size);
	rc = sg_db_step(s);
	sg_db_finalize(s);
	return rc == SG_DB_DONE ? 0 : SG_ERR_IO;
}

int
sg_tlog_entry(struct sg_txn *t, uint64_t index, char **ret, size_t *ret_len)
{
	struct sg_db_stmt *s = NULL;
	int rc, n, r;

	if (index > INT64_MAX)
		return SG_ERR_NOT_FOUND;
	if (sg_db_prepare(sg_store_txn_db(t), "SELECT data FROM "
	    "log_entries WHERE idx = ?1", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)index);
	rc = sg_db_step(s);
	if (rc == SG_DB_ROW) {
		n = (int)sg_db_column_bytes(s, 0);
		if ((*ret = malloc((size_t)n + 1)) == NULL)
			r = SG_ERR_NOMEM;
		else {
			memcpy(*ret, sg_db_column_blob(s, 0), (size_t)n);
			(*ret)[n] = '\0';
			*ret_len = (size_t)n;
			r = 0;
		}
	} else
		r = rc == SG_DB_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	sg_db_finalize(s);
	return r;
}

/*
 * An inclusion proof for leaf `a` (consistency: a consistency proof from
 * size `a`) in the tree of `size` leaves, no larger than the latest
 * checkpoint.
 */
static int
tree_proof(struct sg_txn *t, int consistency, uint64_t a, uint64_t size,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	struct get_ctx g = { sg_store_txn_db(t), NULL };
	uint64_t max;
	int r;

	/* consistency > 1: up to the newest checkpoint, served or not (what
	 * the witnesses are sent). */
	if ((r = newest_size(t, consistency > 1 ? 0 : served_quorum, &max,
	    NULL)) != 0)
		return r;
	if (size == 0 || size > max)
		return SG_ERR_INVALID;
	if (consistency ? a == 0 || a > size : a >= size)
		return SG_ERR_INVALID;
	if (consistency)
		r = sg_merkle_consistency_proof(get_node, &g, a, size, out,
		    cap, ret_n);
	else
		r = sg_merkle_inclusion_proof(get_node, &g, a, size, out, cap,
		    ret_n);
	get_done(&g);
	return r;
}

int
sg_tlog_inclusion(struct sg_txn *t, uint64_t index, uint64_t size,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	return tree_proof(t, 0, index, size, out, cap, ret_n);
}

int
sg_tlog_consistency(struct sg_txn *t, uint64_t old_size, uint64_t new_size,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	return tree_proof(t, 1, old_size, new_size, out, cap, ret_n);
}

/* The hashes of a hash tile: one row per node, none missing. */
static int
tile_hashes(struct sg_db *db, const struct sg_tile *tile, uint8_t *out)
{
	struct sg_db_stmt *s = NULL;
	uint64_t first = tile->index * SG_TILE_WIDTH, want = first;
	int rc, r = SG_ERR_INTERNAL;

	if (sg_db_prepare(db, "SELECT idx, hash FROM log_nodes WHERE "
	    "level = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)(tile->level * SG_TILE_HEIGHT));
	sg_db_bind_int64(s, 2, (int64_t)first);
	sg_db_bind_int64(s, 3, (int64_t)(first + tile->width));
	while ((rc = sg_db_step(s)) == SG_DB_ROW) {
		if ((uint64_t)sg_db_column_int64(s, 0) != want ||
		    sg_db_column_bytes(s, 1) != SG_HASH_LEN)
			goto out;
		memcpy(out + (want - first) * SG_HASH_LEN,
		    sg_db_column_blob(s, 1), SG_HASH_LEN);
		want++;
	}
	if (rc != SG_DB_DONE)
		r = SG_ERR_IO;
	else if (want == first + tile->width)
		r = 0;
out:
	if (r == SG_ERR_INTERNAL)
		sg_log_error("log: the stored tree lacks node %llu at level "
		    "%u", (unsigned long long)want, tile->level * SG_TILE_HEIGHT);
	sg_db_finalize(s);
	return r;
}

/* The entries of a bundle, each with its 16-bit length. */
static int
tile_entries(struct sg_db *db, const struct sg_tile *tile, uint8_t *out,
    size_t cap, size_t *ret_len, uint64_t *ret_bad)
{
	struct sg_db_stmt *s = NULL;
	uint64_t first = tile->index * SG_TILE_WIDTH, want = first;
	size_t len = 0;
	int rc, r = SG_ERR_INTERNAL;

	if (sg_db_prepare(db, "SELECT idx, data FROM log_entries WHERE "
	    "idx >= ?1 AND idx < ?2 ORDER BY idx", &s) != 0)
		return SG_ERR_IO;
	sg_db_bind_int64(s, 1, (int64_t)first);
	sg_db_bind_int64(s, 2, (int64_t)(first + tile->width));
	while ((rc = sg_db_step(s)) == SG_DB_ROW) {
		if ((uint64_t)sg_db_column_int64(s, 0) != want)
			goto out;
		r = sg_tile_bundle_add(out, cap, &len, sg_db_column_blob(s, 1),
		    (size_t)sg_db_column_bytes(s, 1));
		if (r == SG_ERR_TOO_LARGE) {
			*ret_bad = want;
			goto out;
		}
		if (r != 0)
			goto out;
		r = SG_ERR_INTERNAL;
		want++;
	}
	if (rc != SG_DB_DONE)
		r = SG_ERR_IO;
	else if (want == first + tile->width) {
		*ret_len = len;
		r = 0;
	}
out:
	if (r == SG_ERR_INTERNAL)
		sg_log_error("log: the store lacks entry %llu",
		    (unsigned long long)want);
	sg_db_finalize(s);
	return r;
}

int
sg_tlog_tile(struct sg_txn *t, const struct sg_tile *tile, uint8_t **ret,
    size_t *ret_len, uint64_t *ret_bad)
{
	uint8_t *buf;
	size_t cap, len = 0;
	uint64_t size;
	int r;

	if ((r = sg_tlog_checkpoint_size(t, &size)) != 0)
		return r;
	if (!sg_tile_covered(tile, size))
		return SG_ERR_NOT_FOUND;
	cap = tile->entries ? (size_t)tile->width * (2 + SG_TILE_ENTRY_MAX) :
	    (size_t)tile->width * SG_HASH_LEN;
	if ((buf = malloc(cap)) == NULL)
		return SG_ERR_NOMEM;
	if (tile->entries)
		r = tile_entries(sg_store_txn_db(t), tile, buf, cap, &len,
		    ret_bad);
	else if ((r = tile_hashes(sg_store_txn_db(t), tile, buf)) == 0)
		len = cap;
	if (r != 0) {
		free(buf);
		return r;
	}
	/* A bundle's worst case is reserved, rarely touched: give it back. */
	if (tile->entries && len > 0 && len < cap) {
		uint8_t *nb = realloc(buf, len);
		if (nb != NULL)
			buf = nb;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

int
sg_tlog_consistency_latest(struct sg_txn *t, uint64_t old_size,
    uint64_t new_size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n)
{
	return tree_proof(t, 2, old_size, new_size, out, cap, ret_n);
}

int
sg_tlog_proof_bundle(struct sg_txn *t, uint64_t index, char **ret)
{
	struct sg_tlog_proof p;
	char *entry = NULL;
	size_t len;
	uint64_t size;
	int r;

	memset(&p, 0, sizeof(p));
	if ((r = sg_tlog_checkpoint(t, &p.note, &size)) != 0)
		return r;
	p.note_len = strlen(p.note);
	if (index >= size) {
		r = SG_ERR_NOT_FOUND;
		goto out;
	}
	if ((r = sg_tlog_entry(t, index, &entry, &len)) != 0)
		goto out;
	p.extra = (uint8_t *)entry;
	p.extra_len = len;
	p.index = index;
	if ((r = sg_tlog_inclusion(t, index, size, p.hashes,
	    SG_MERKLE_MAX_PROOF, &p.nhashes)) != 0)
		goto out;
	r = sg_tlog_proof_format(&p, ret);
out:
	free(p.note);
	free(entry);
	return r;
}

int
sg_tlog_checkpoint_size(struct sg_txn *t, uint64_t *ret_size)
{
	return newest_size(t, served_quorum, ret_size, NULL);
}

int
sg_tlog_checkpoint_time(struct sg_txn *t, uint64_t *ret_size,
    int64_t *ret_signed_at)
{
	return newest_size(t, served_quorum, ret_size, ret_signed_at);
}
