/*
 * The transparency log over the store.
 *
 * Tables: log_entries (index → exact entry bytes), log_nodes (every
 * complete subtree hash, level 0 being the leaves), log_checkpoints (size →
 * signed note).  Appends happen in store write jobs on the writer thread;
 * the in-memory frontier follows the store's savepoints through its hooks:
 * a job that fails restores the frontier it started from, a batch that is
 * dropped restores the last committed one.  Before a batch commits, if the
 * log grew, a checkpoint is signed by the HSM and written in the same
 * transaction; if that fails, the batch fails and nothing is acknowledged.
 *
 * Proofs are computed from stored complete-subtree hashes (O(log^2 n)
 * look-ups at worst); memory does not grow with the log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

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
    " signed_at INTEGER NOT NULL DEFAULT 0);";

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
};

struct get_ctx {
	sqlite3 *db;
	sqlite3_stmt *s;
};

static int
get_node(void *arg, unsigned level, uint64_t index, uint8_t out[SG_HASH_LEN])
{
	struct get_ctx *g = arg;
	int rc;

	if (g->s == NULL && sqlite3_prepare_v2(g->db, "SELECT hash FROM "
	    "log_nodes WHERE level = ?1 AND idx = ?2", -1, &g->s,
	    NULL) != SQLITE_OK)
		return SG_ERR_IO;
	sqlite3_reset(g->s);
	sqlite3_bind_int(g->s, 1, (int)level);
	sqlite3_bind_int64(g->s, 2, (sqlite3_int64)index);
	rc = sqlite3_step(g->s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	if (sqlite3_column_bytes(g->s, 0) != SG_HASH_LEN)
		return SG_ERR_INTERNAL;
	memcpy(out, sqlite3_column_blob(g->s, 0), SG_HASH_LEN);
	return 0;
}

static void
get_done(struct get_ctx *g)
{
	sqlite3_finalize(g->s);
	g->s = NULL;
}

static int
emit_node(void *arg, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN])
{
	sqlite3 *db = arg;
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "INSERT INTO log_nodes (level, idx, hash) "
	    "VALUES (?1, ?2, ?3)", -1, &s, NULL) != SQLITE_OK)
		return SG_ERR_IO;
	sqlite3_bind_int(s, 1, (int)level);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)index);
	sqlite3_bind_blob(s, 3, hash, SG_HASH_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : SG_ERR_IO;
}

int
sg_tlog_append(struct sg_tlog *l, struct sg_txn *t, const char *entry,
    size_t len, uint64_t *ret_index)
{
	sqlite3 *db = sg_store_txn_db(t);
	sqlite3_stmt *s = NULL;
	uint8_t leaf[SG_HASH_LEN];
	uint64_t index = l->cur.size;
	int rc, r;

	if (!sg_store_txn_is_write(t) || len == 0 || len > INT32_MAX)
		return SG_ERR_INVALID;
	if (sqlite3_prepare_v2(db, "INSERT INTO log_entries (idx, data) "
	    "VALUES (?1, ?2)", -1, &s, NULL) != SQLITE_OK)
		return SG_ERR_IO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)index);
	sqlite3_bind_blob(s, 2, entry, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return SG_ERR_IO;
	sg_merkle_leaf_hash((const uint8_t *)entry, len, leaf);
	if ((r = sg_merkle_frontier_append(&l->cur, leaf, emit_node, db)) != 0)
		return r;
	*ret_index = index;
	return 0;
}

/* Signs and stores a checkpoint for the current frontier. */
static int
write_checkpoint(struct sg_tlog *l, sqlite3 *db,
    const struct sg_merkle_frontier *f)
{
	struct sg_checkpoint cp;
	sqlite3_stmt *s = NULL;
	uint8_t sig[SG_ED25519_SIG];
	char *text = NULL, *line = NULL, *note = NULL;
	int rc, r;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", l->origin);
	cp.size = f->size;
	sg_merkle_frontier_root(f, cp.root);
	if ((r = sg_checkpoint_format(&cp, &text)) != 0)
		goto out;
	if ((r = l->sign(l->sign_ctx, text, strlen(text), sig)) != 0) {
		sg_log_error("log: the checkpoint could not be signed: %s",
		    sg_strerror(r));
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if ((r = sg_note_signature_line(l->origin, l->key_id, sig,
	    &line)) != 0)
		goto out;
	if (asprintf(&note, "%s\n%s", text, line) < 0) {
		note = NULL;
		r = SG_ERR_NOMEM;
		goto out;
	}
	/* Never trust the HSM blindly: the note must verify. */
	{
		size_t tl;
		if (sg_note_verify(note, strlen(note), l->origin, l->key_id,
		    l->pub, &tl) != 0) {
			sg_log_error("log: the HSM's checkpoint signature does "
			    "not verify with the log key");
			r = SG_ERR_UNAVAILABLE;
			goto out;
		}
	}
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO log_checkpoints "
	    "(size, note, signed_at) VALUES (?1, ?2, ?3)", -1, &s,
	    NULL) != SQLITE_OK) {
		r = SG_ERR_IO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)f->size);
	sqlite3_bind_text(s, 2, note, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(s);
	r = rc == SQLITE_DONE ? 0 : SG_ERR_IO;
out:
	sqlite3_finalize(s);
	free(text);
	free(line);
	free(note);
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

static int
hook_batch_end(void *ctx, struct sg_txn *t)
{
	struct sg_tlog *l = ctx;

	if (l->cur.size == l->committed.size)
		return 0;
	return write_checkpoint(l, sg_store_txn_db(t), &l->cur);
}

static void
hook_batch_committed(void *ctx)
{
	struct sg_tlog *l = ctx;

	l->committed = l->cur;
}

static void
hook_batch_abort(void *ctx)
{
	struct sg_tlog *l = ctx;

	l->cur = l->committed;
}

struct open_job {
	struct sg_tlog *l;
};

/* Creates the tables, loads the frontier, and checkpoints the current
 * size if no checkpoint for it exists (a new log, or an old store). */
static int
job_open(struct sg_txn *t, void *arg)
{
	struct open_job *oj = arg;
	struct sg_tlog *l = oj->l;
	sqlite3 *db = sg_store_txn_db(t);
	struct get_ctx g = { db, NULL };
	sqlite3_stmt *s = NULL;
	uint64_t size = 0;
	int have = 0, r;

	if (sqlite3_exec(db, log_schema, NULL, NULL, NULL) != SQLITE_OK)
		return SG_ERR_IO;
	/* Stores from before checkpoints carried their signing time. */
	if (sqlite3_prepare_v2(db, "SELECT signed_at FROM log_checkpoints "
	    "LIMIT 0", -1, &s, NULL) != SQLITE_OK) {
		if (sqlite3_exec(db, "ALTER TABLE log_checkpoints ADD COLUMN "
		    "signed_at INTEGER NOT NULL DEFAULT 0", NULL, NULL,
		    NULL) != SQLITE_OK)
			return SG_ERR_IO;
	} else
		sqlite3_finalize(s);
	s = NULL;
	if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(idx) + 1, 0) FROM "
	    "log_entries", -1, &s, NULL) != SQLITE_OK)
		return SG_ERR_IO;
	if (sqlite3_step(s) == SQLITE_ROW)
		size = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	r = sg_merkle_frontier_load(&l->cur, size, get_node, &g);
	get_done(&g);
	if (r != 0) {
		sg_log_error("log: the stored tree of %llu entries is "
		    "incomplete", (unsigned long long)size);
		return r;
	}
	l->committed = l->cur;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM log_checkpoints WHERE "
	    "size = ?1", -1, &s, NULL) != SQLITE_OK)
		return SG_ERR_IO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)size);
	have = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	if (!have)
		return write_checkpoint(l, db, &l->cur);
	return 0;
}

int
sg_tlog_open(struct sg_store *st, const char *origin,
    const uint8_t pub[SG_ED25519_PUB], sg_tlog_sign_fn sign, void *sign_ctx,
    struct sg_tlog **ret)
{
	struct sg_tlog *l;
	struct sg_store_hooks h;
	struct open_job oj;
	int r;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return SG_ERR_NOMEM;
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
	/* The open job runs before the hooks exist, so it manages the
	 * frontier itself. */
	oj.l = l;
	if ((r = sg_store_write(st, job_open, &oj)) != 0)
		goto fail;
	memset(&h, 0, sizeof(h));
	h.ctx = l;
	h.job_begin = hook_job_begin;
	h.job_abort = hook_job_abort;
	h.batch_end = hook_batch_end;
	h.batch_committed = hook_batch_committed;
	h.batch_abort = hook_batch_abort;
	sg_store_set_hooks(st, &h);
	*ret = l;
	return 0;
fail:
	sg_tlog_free(l);
	return r;
}

void
sg_tlog_free(struct sg_tlog *l)
{
	if (l == NULL)
		return;
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

int
sg_tlog_checkpoint(struct sg_txn *t, char **ret_note, uint64_t *ret_size)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if (sqlite3_prepare_v2(sg_store_txn_db(t), "SELECT size, note FROM "
	    "log_checkpoints ORDER BY size DESC LIMIT 1", -1, &s,
	    NULL) != SQLITE_OK)
		return SG_ERR_IO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_size = (uint64_t)sqlite3_column_int64(s, 0);
		*ret_note = strdup((const char *)sqlite3_column_text(s, 1));
		r = *ret_note != NULL ? 0 : SG_ERR_NOMEM;
	} else
		r = rc == SQLITE_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	sqlite3_finalize(s);
	return r;
}

int
sg_tlog_entry(struct sg_txn *t, uint64_t index, char **ret, size_t *ret_len)
{
	sqlite3_stmt *s = NULL;
	int rc, n, r;

	if (index > INT64_MAX)
		return SG_ERR_NOT_FOUND;
	if (sqlite3_prepare_v2(sg_store_txn_db(t), "SELECT data FROM "
	    "log_entries WHERE idx = ?1", -1, &s, NULL) != SQLITE_OK)
		return SG_ERR_IO;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)index);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_bytes(s, 0);
		if ((*ret = malloc((size_t)n + 1)) == NULL)
			r = SG_ERR_NOMEM;
		else {
			memcpy(*ret, sqlite3_column_blob(s, 0), (size_t)n);
			(*ret)[n] = '\0';
			*ret_len = (size_t)n;
			r = 0;
		}
	} else
		r = rc == SQLITE_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	sqlite3_finalize(s);
	return r;
}

/* The size of the latest checkpoint: proofs never reach beyond it. */
static int
checkpoint_size(struct sg_txn *t, uint64_t *ret)
{
	char *note = NULL;
	int r;

	if ((r = sg_tlog_checkpoint(t, &note, ret)) == 0)
		free(note);
	return r;
}

int
sg_tlog_inclusion(struct sg_txn *t, uint64_t index, uint64_t size,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	struct get_ctx g = { sg_store_txn_db(t), NULL };
	uint64_t max;
	int r;

	if ((r = checkpoint_size(t, &max)) != 0)
		return r;
	if (size == 0 || size > max || index >= size)
		return SG_ERR_INVALID;
	r = sg_merkle_inclusion_proof(get_node, &g, index, size, out, cap,
	    ret_n);
	get_done(&g);
	return r;
}

int
sg_tlog_consistency(struct sg_txn *t, uint64_t old_size, uint64_t new_size,
    uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	struct get_ctx g = { sg_store_txn_db(t), NULL };
	uint64_t max;
	int r;

	if ((r = checkpoint_size(t, &max)) != 0)
		return r;
	if (old_size == 0 || old_size > new_size || new_size > max)
		return SG_ERR_INVALID;
	r = sg_merkle_consistency_proof(get_node, &g, old_size, new_size, out,
	    cap, ret_n);
	get_done(&g);
	return r;
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
sg_tlog_checkpoint_time(struct sg_txn *t, uint64_t *ret_size,
    int64_t *ret_signed_at)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if (sqlite3_prepare_v2(sg_store_txn_db(t), "SELECT size, signed_at "
	    "FROM log_checkpoints ORDER BY size DESC LIMIT 1", -1, &s,
	    NULL) != SQLITE_OK)
		return SG_ERR_IO;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_size = (uint64_t)sqlite3_column_int64(s, 0);
		*ret_signed_at = sqlite3_column_int64(s, 1);
		r = 0;
	} else
		r = rc == SQLITE_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	sqlite3_finalize(s);
	return r;
}
