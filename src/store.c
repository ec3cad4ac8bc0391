/*
 * SQLite request store.
 *
 * Durability: WAL journal with synchronous=FULL, so COMMIT returns only after
 * the WAL is on disk; the API answers 2xx only after the batch holding the
 * change has committed and the batch_durable hook (the log's signed
 * checkpoint) has succeeded.
 *
 * One batch costs one fsync of the WAL (its COMMIT).  What the log does
 * after it (tlog.c) adds the signer's two (its record: the file and its
 * directory) and writes the checkpoint row with sg_store_txn_relaxed(),
 * without an fsync of its own: that row can be recomputed, and the next
 * batch's COMMIT makes it durable with its own.
 * Integrity: state transitions are guarded in SQL (`WHERE state='pending'`)
 * so that a request can leave `pending` once, whatever the callers race.
 * A decision per officer and request is unique by primary key, and a
 * request holds at most SG_ENVELOPES_MAX of them.  States and formats are
 * enums everywhere else (sg_types.h): their strings are written and read
 * here, at the SQL boundary.
 * Schema: versioned by PRAGMA user_version, upgraded step by step (below).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_store.h"
#include "sg_types.h"
#include "sg_util.h"
#include "store_int.h"

#define MAX_READERS 32
#define MAX_BATCH 512


struct job {
	sg_store_job_fn fn;
	void *arg;
	int result;
	int kept;                      /* committed, though result says no */
	int done;
	struct job *next;
};

struct sg_store {
	char *path;
	/* The writer: one connection, one thread, batches of jobs. */
	struct sg_txn wtxn;
	pthread_t writer;
	int writer_started;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;          /* work queued, or stopping */
	pthread_cond_t dcond;          /* a batch finished */
	struct job *head, *tail;
	int stopping;
	struct sg_store_hooks hooks;
	uint64_t batches, jobs;
	int sync_relaxed;              /* the writer is not on synchronous=FULL */
	/* Readers: a pool of read-only connections. */
	pthread_mutex_t rlock;
	sqlite3 *readers[MAX_READERS];
	size_t nreaders;
	size_t nopen;
	pthread_cond_t rcond;
	struct sg_txn rtxns[MAX_READERS];
};

/*
 * Schema versions.  PRAGMA user_version is the version a database is at;
 * steps[v] takes a database from version v to v + 1, in a transaction of
 * its own that also records v + 1, so that a crash leaves a database at
 * one version, never between two.  Opening walks the steps from the
 * database's version to STORE_SCHEMA_VERSION; a new database walks them
 * all, so that there is one way to the current schema, not two.
 *
 * A step is never edited once released (a database may already be past
 * it): a change of schema is a new step at the end.  Databases from
 * before versions were recorded are at version 0 whatever their layout
 * (the first one, or with log_index, or with timestamp_note as well); the
 * steps up to 3 therefore look at what is there before they add it.  A
 * version above STORE_SCHEMA_VERSION was written by a newer build, which
 * may have changed anything: it is refused, never guessed at.
 */
#define STORE_SCHEMA_VERSION 4

_Static_assert(STORE_SCHEMA_VERSION == SG_STORE_SCHEMA_VERSION,
    "one schema version");

/* Version 1: the first layout. */
static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS requests ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest_hex TEXT NOT NULL,"
    " format TEXT NOT NULL,"
    " artifact TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " policy_name TEXT NOT NULL,"
    " policy_version INTEGER NOT NULL,"
    " policy_sha256 TEXT NOT NULL,"
    " spki_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','signed','rejected','expired','failed')),"
    " error TEXT,"
    " signature BLOB,"
    " cms BLOB,"
    " signed_at INTEGER,"
    " idem_key TEXT,"
    " idem_body_sha256 TEXT,"
    " UNIQUE (requester, idem_key));"
    "CREATE INDEX IF NOT EXISTS requests_state ON requests(state, seq);"
    "CREATE INDEX IF NOT EXISTS requests_key ON requests(key, seq);"
    "CREATE TABLE IF NOT EXISTS approvals ("
    " request_id TEXT NOT NULL REFERENCES requests(id),"
    " officer TEXT NOT NULL,"
    " decision TEXT NOT NULL CHECK (decision IN ('approve','reject')),"
    " at INTEGER NOT NULL,"
    " envelope TEXT NOT NULL,"
    " ord INTEGER NOT NULL,"
    " PRIMARY KEY (request_id, officer));"
    "CREATE TABLE IF NOT EXISTS policies ("
    " sha256 TEXT PRIMARY KEY,"
    " text TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL);";

/* Version 3: the requests table with state 'cancelled', rebuilt under
 * this definition (SQLite cannot alter a CHECK constraint), every column
 * copied by name. */
#define V3_COLUMNS "seq, id, key, digest_alg, digest_hex, format, "	\
    "artifact, requester, created_at, expires_at, policy_name, "	\
    "policy_version, policy_sha256, spki_sha256, statement, state, error, " \
    "signature, cms, signed_at, log_index, timestamp_note, idem_key, "	\
    "idem_body_sha256, cancelled_by, cancel_reason, cancelled_at"
static const char rebuild_v3[] =
    "CREATE TABLE requests_rebuilt ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest_hex TEXT NOT NULL,"
    " format TEXT NOT NULL,"
    " artifact TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " policy_name TEXT NOT NULL,"
    " policy_version INTEGER NOT NULL,"
    " policy_sha256 TEXT NOT NULL,"
    " spki_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','signed','rejected','expired','failed','cancelled')),"
    " error TEXT,"
    " signature BLOB,"
    " cms BLOB,"
    " signed_at INTEGER,"
    " log_index INTEGER,"
    " timestamp_note TEXT,"
    " idem_key TEXT,"
    " idem_body_sha256 TEXT,"
    " cancelled_by TEXT,"
    " cancel_reason TEXT,"
    " cancelled_at INTEGER,"
    " UNIQUE (requester, idem_key));"
    "INSERT INTO requests_rebuilt (" V3_COLUMNS ") "
    "SELECT " V3_COLUMNS " FROM requests;"
    "DROP TABLE requests;"
    "ALTER TABLE requests_rebuilt RENAME TO requests;"
    "CREATE INDEX requests_state ON requests(state, seq);"
    "CREATE INDEX requests_key ON requests(key, seq);";

/* Version 4: releases and grants.  The requests table gains the kind and
 * the columns of releases and grants, and states 'active' and 'revoked'
 * (rebuilt, as for version 3); a release's artifacts get a table. */
static const char rebuild_v4[] =
    "CREATE TABLE requests_rebuilt ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest_hex TEXT NOT NULL,"
    " format TEXT NOT NULL,"
    " artifact TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " policy_name TEXT NOT NULL,"
    " policy_version INTEGER NOT NULL,"
    " policy_sha256 TEXT NOT NULL,"
    " spki_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','signed','rejected','expired','failed','cancelled',"
    "   'active','revoked')),"
    " error TEXT,"
    " signature BLOB,"
    " cms BLOB,"
    " signed_at INTEGER,"
    " log_index INTEGER,"
    " timestamp_note TEXT,"
    " idem_key TEXT,"
    " idem_body_sha256 TEXT,"
    " cancelled_by TEXT,"
    " cancel_reason TEXT,"
    " cancelled_at INTEGER,"
    " kind TEXT NOT NULL DEFAULT 'request' CHECK (kind IN"
    "  ('request','release','grant')),"
    " count INTEGER NOT NULL DEFAULT 0,"
    " used INTEGER NOT NULL DEFAULT 0,"
    " approved_index INTEGER,"
    " grant_id TEXT,"
    " grant_seq INTEGER,"
    " CHECK (kind <> 'grant' OR used <= count),"
    " UNIQUE (requester, idem_key),"
    " UNIQUE (grant_id, grant_seq));"
    "INSERT INTO requests_rebuilt (" V3_COLUMNS ") "
    "SELECT " V3_COLUMNS " FROM requests;"
    "DROP TABLE requests;"
    "ALTER TABLE requests_rebuilt RENAME TO requests;"
    "CREATE INDEX requests_state ON requests(state, seq);"
    "CREATE INDEX requests_key ON requests(key, seq);";
static const char release_artifacts_v4[] =
    "CREATE TABLE IF NOT EXISTS release_artifacts ("
    " release_id TEXT NOT NULL REFERENCES requests(id),"
    " position INTEGER NOT NULL,"
    " line TEXT NOT NULL,"
    " signature BLOB,"
    " cms BLOB,"
    " log_index INTEGER,"
    " signed_at INTEGER,"
    " PRIMARY KEY (release_id, position));";

int
store_db_err(sqlite3 *db, int rc)
{
	if (rc == SQLITE_CONSTRAINT)
		return SG_ERR_CONFLICT;
	if (rc == SQLITE_NOMEM)
		return SG_ERR_NOMEM;
	sg_log_error("store: %s", sqlite3_errmsg(db));
	return SG_ERR_IO;
}

/* One integer from a statement that returns one (a PRAGMA, a count). */
static int
query_int(sqlite3 *db, const char *sql, int64_t *ret)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL)) != SQLITE_OK)
		return store_db_err(db, rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : store_db_err(db, rc);
}

/* 1 if table has the column, 0 if not. */
static int
has_column(sqlite3 *db, const char *table, const char *column,
    int *ret)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) "
	    "WHERE name = ?2", -1, &s, NULL)) != SQLITE_OK)
		return store_db_err(db, rc);
	sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_db_err(db, rc);
	*ret = rc == SQLITE_ROW;
	return 0;
}

/* ALTER TABLE ... ADD COLUMN, unless a database from before versions
 * has it already. */
static int
add_column(sqlite3 *db, const char *table, const char *column,
    const char *type)
{
	char sql[160];
	int have, r, rc;

	if ((r = has_column(db, table, column, &have)) != 0 || have)
		return r;
	snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", table,
	    column, type);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : store_db_err(db, rc);
}

static int
step_v1(sqlite3 *db)
{
	int rc = sqlite3_exec(db, schema_v1, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_db_err(db, rc);
}

/* Version 2: the signature's log entry and its time-stamp outcome. */
static int
step_v2(sqlite3 *db)
{
	int r;

	if ((r = add_column(db, "requests", "log_index", "INTEGER")) != 0 ||
	    (r = add_column(db, "requests", "timestamp_note", "TEXT")) != 0)
		return r;
	return 0;
}

/* Version 3: cancelled requests, with who, why and when. */
static int
step_v3(sqlite3 *db)
{
	int64_t current;
	int r, rc;

	if ((r = add_column(db, "requests", "cancelled_by", "TEXT")) != 0 ||
	    (r = add_column(db, "requests", "cancel_reason", "TEXT")) != 0 ||
	    (r = add_column(db, "requests", "cancelled_at", "INTEGER")) != 0)
		return r;
	if ((r = query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'requests' AND "
	    "sql LIKE '%''cancelled''%'", &current)) != 0)
		return r;
	if (current)
		return 0;
	rc = sqlite3_exec(db, rebuild_v3, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : store_db_err(db, rc);
}

/* Version 4: releases and grants.  Like the steps before it, it looks
 * at what is there first: a database whose version was reset (restored
 * by hand, say) may hold the layout already. */
static int
step_v4(sqlite3 *db)
{
	int have, r, rc;

	if ((r = has_column(db, "requests", "kind", &have)) != 0)
		return r;
	if (!have && (rc = sqlite3_exec(db, rebuild_v4, NULL, NULL,
	    NULL)) != SQLITE_OK)
		return store_db_err(db, rc);
	rc = sqlite3_exec(db, release_artifacts_v4, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : store_db_err(db, rc);
}

static const struct {
	int (*apply)(sqlite3 *db);
	const char *what;
} steps[STORE_SCHEMA_VERSION] = {
	{ step_v1, "requests, approvals and policies" },
	{ step_v2, "log index and time-stamp note" },
	{ step_v3, "cancelled requests" },
	{ step_v4, "releases and grants" },
};

/*
 * Runs one step if the database (read inside the transaction, so that
 * two processes cannot both run it) still needs it; *ret_version is the
 * version found.  Foreign keys are off (SQLite's procedure for rebuilding
 * a table), so they are checked before the COMMIT.
 */
static int
migrate_one(sqlite3 *db, const char *path, int64_t *ret_version)
{
	int64_t v, bad = 0;
	char sql[64];
	int r, rc;

	if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL)) != SQLITE_OK)
		return store_db_err(db, rc);
	if ((r = query_int(db, "PRAGMA user_version", &v)) != 0)
		goto fail;
	*ret_version = v;
	if (v < 0 || v > STORE_SCHEMA_VERSION) {
		sg_log_error("store %s: its schema is version %lld, newer than "
		    "this build's (%d): refusing to open it; run the signgated "
		    "that wrote it, or a newer one", path, (long long)v,
		    STORE_SCHEMA_VERSION);
		r = SG_ERR_CONFLICT;
		goto fail;
	}
	if (v == STORE_SCHEMA_VERSION) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	if ((r = steps[v].apply(db)) != 0 ||
	    (r = query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check",
	    &bad)) != 0) {
		sg_log_error("store %s: cannot bring the schema from version "
		    "%lld to %lld (%s): %s", path, (long long)v,
		    (long long)v + 1, steps[v].what, sg_strerror(r));
		goto fail;
	}
	if (bad != 0) {
		sg_log_error("store %s: %lld rows break a foreign key after "
		    "step %lld", path, (long long)bad, (long long)v + 1);
		r = SG_ERR_IO;
		goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld",
	    (long long)v + 1);
	if ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
		r = store_db_err(db, rc);
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* Brings the database to STORE_SCHEMA_VERSION, one step at a time. */
static int
migrate(sqlite3 *db, const char *path)
{
	int64_t v = -1, prev = -1, tables = 0;
	int r, rc;

	if ((r = query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'requests'", &tables)) != 0)
		return r;
	if ((rc = sqlite3_exec(db, "PRAGMA foreign_keys=OFF", NULL, NULL,
	    NULL)) != SQLITE_OK)
		return store_db_err(db, rc);
	for (;;) {
		if ((r = migrate_one(db, path, &v)) != 0)
			break;
		if (v == STORE_SCHEMA_VERSION)
			break;
		if (v == prev) {        /* cannot happen: no progress */
			r = SG_ERR_INTERNAL;
			break;
		}
		if (tables)
			sg_log_info("store %s: schema version %lld to %lld: %s",
			    path, (long long)v, (long long)v + 1,
			    steps[v].what);
		prev = v;
	}
	if ((rc = sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL,
	    NULL)) != SQLITE_OK && r == 0)
		r = store_db_err(db, rc);
	return r;
}

static int
open_conn(const char *path, int write, sqlite3 **ret)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	int r = SG_ERR_IO, rc;

	rc = sqlite3_open_v2(path, &db, (write ? SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX,
	    NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 10000);
	rc = sqlite3_exec(db, write ?
	    "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=FULL;"
	    "PRAGMA trusted_schema=OFF;" :
	    "PRAGMA trusted_schema=OFF;", NULL, NULL, &err);
	if (rc != SQLITE_OK)
		goto fail;
	/* migrate() logs its own failures and ends with foreign keys on. */
	if (write && (r = migrate(db, path)) != 0) {
		sqlite3_close_v2(db);
		return r;
	}
	*ret = db;
	return 0;
fail:
	sg_log_error("store %s: %s", path, err ? err : db ?
	    sqlite3_errmsg(db) : "cannot open");
	sqlite3_free(err);
	sqlite3_close_v2(db);
	return r;
}

static void *writer_main(void *arg);

int
sg_store_open(const char *dir, struct sg_store **ret)
{
	struct sg_store *st;
	int r;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return SG_ERR_IO;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return SG_ERR_NOMEM;
	pthread_mutex_init(&st->qlock, NULL);
	pthread_cond_init(&st->qcond, NULL);
	pthread_cond_init(&st->dcond, NULL);
	pthread_mutex_init(&st->rlock, NULL);
	pthread_cond_init(&st->rcond, NULL);
	if ((st->path = sg_path_join(dir, "signgate.db")) == NULL) {
		r = SG_ERR_NOMEM;
		goto fail;
	}
	if ((r = open_conn(st->path, 1, &st->wtxn.db)) != 0)
		goto fail;
	st->wtxn.st = st;
	st->wtxn.write = 1;
	if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
		r = SG_ERR_INTERNAL;
		goto fail;
	}
	st->writer_started = 1;
	*ret = st;
	return 0;
fail:
	sg_store_close(st);
	return r;
}

void
sg_store_close(struct sg_store *st)
{
	size_t i;

	if (st == NULL)
		return;
	if (st->writer_started) {
		pthread_mutex_lock(&st->qlock);
		st->stopping = 1;
		pthread_cond_broadcast(&st->qcond);
		pthread_mutex_unlock(&st->qlock);
		pthread_join(st->writer, NULL);
	}
	for (i = 0; i < st->nreaders; i++)
		sqlite3_close_v2(st->readers[i]);
	sqlite3_close_v2(st->wtxn.db);
	pthread_mutex_destroy(&st->qlock);
	pthread_cond_destroy(&st->qcond);
	pthread_cond_destroy(&st->dcond);
	pthread_mutex_destroy(&st->rlock);
	pthread_cond_destroy(&st->rcond);
	free(st->path);
	free(st);
}

void
sg_store_set_hooks(struct sg_store *st, const struct sg_store_hooks *h)
{
	pthread_mutex_lock(&st->qlock);
	st->hooks = *h;
	pthread_mutex_unlock(&st->qlock);
}

int
sg_store_read_begin(struct sg_store *st, struct sg_txn **ret)
{
	struct sg_txn *t;
	sqlite3 *db = NULL;
	int r, rc;

	pthread_mutex_lock(&st->rlock);
	while (st->nreaders == 0 && st->nopen >= MAX_READERS)
		pthread_cond_wait(&st->rcond, &st->rlock);
	if (st->nreaders > 0)
		db = st->readers[--st->nreaders];
	else
		st->nopen++;
	pthread_mutex_unlock(&st->rlock);
	if (db == NULL && (r = open_conn(st->path, 0, &db)) != 0) {
		pthread_mutex_lock(&st->rlock);
		st->nopen--;
		pthread_cond_signal(&st->rcond);
		pthread_mutex_unlock(&st->rlock);
		return r;
	}
	if ((rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK) {
		r = store_db_err(db, rc);
		sqlite3_close_v2(db);
		pthread_mutex_lock(&st->rlock);
		st->nopen--;
		pthread_cond_signal(&st->rcond);
		pthread_mutex_unlock(&st->rlock);
		return r;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		pthread_mutex_lock(&st->rlock);
		st->readers[st->nreaders++] = db;
		pthread_cond_signal(&st->rcond);
		pthread_mutex_unlock(&st->rlock);
		return SG_ERR_NOMEM;
	}
	t->st = st;
	t->db = db;
	*ret = t;
	return 0;
}

void
sg_store_read_end(struct sg_txn *t)
{
	struct sg_store *st;

	if (t == NULL)
		return;
	st = t->st;
	sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_lock(&st->rlock);
	st->readers[st->nreaders++] = t->db;
	pthread_cond_signal(&st->rcond);
	pthread_mutex_unlock(&st->rlock);
	free(t);
}

static int
exec(struct sg_txn *t, const char *sql)
{
	int rc = sqlite3_exec(t->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_db_err(t->db, rc);
}

/*
 * Runs one batch: every job in its own savepoint (a failing job is undone
 * alone), then the batch_end hook, then one COMMIT, so that one fsync
 * covers the whole batch.  If the batch cannot commit, every job that had
 * succeeded is told so: nothing it did is kept.  After the COMMIT, the
 * batch_durable hook (the log's checkpoint); if it fails, the jobs' changes
 * stay, but no job that succeeded is acknowledged (SG_ERR_UNAVAILABLE,
 * kept).
 */
static void
run_batch(struct sg_store *st, struct job *batch)
{
	struct sg_txn *t = &st->wtxn;
	struct sg_store_hooks hooks, *h = &hooks;
	struct job *j;
	int r, any = 0;

	pthread_mutex_lock(&st->qlock);
	hooks = st->hooks;
	pthread_mutex_unlock(&st->qlock);
	/* Never a batch without its fsync (see sg_store_txn_relaxed). */
	if (st->sync_relaxed && (r = exec(t, "PRAGMA synchronous=FULL")) == 0)
		st->sync_relaxed = 0;
	if (st->sync_relaxed || (r = exec(t, "BEGIN IMMEDIATE")) != 0) {
		for (j = batch; j != NULL; j = j->next)
			j->result = SG_ERR_UNAVAILABLE;
		return;
	}
	for (j = batch; j != NULL; j = j->next) {
		if (h->job_begin != NULL)
			h->job_begin(h->ctx);
		if ((r = exec(t, "SAVEPOINT job")) != 0) {
			j->result = r;
			continue;
		}
		j->result = j->fn(t, j->arg);
		if (j->result != 0) {
			exec(t, "ROLLBACK TO job");
			if (h->job_abort != NULL)
				h->job_abort(h->ctx);
		} else
			any = 1;
		exec(t, "RELEASE job");
	}
	r = 0;
	if (any && h->batch_end != NULL)
		r = h->batch_end(h->ctx, t);
	if (r == 0 && (r = exec(t, "COMMIT")) == 0) {
		if (h->batch_committed != NULL)
			h->batch_committed(h->ctx);
		if (h->batch_durable != NULL &&
		    h->batch_durable(h->ctx, t) != 0) {
			for (j = batch; j != NULL; j = j->next)
				if (j->result == 0) {
					j->result = SG_ERR_UNAVAILABLE;
					j->kept = 1;
				}
		}
		return;
	}
	sg_log_error("store: a batch of writes could not be committed (%s); "
	    "nothing in it was acknowledged", sg_strerror(r));
	sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
	if (h->batch_abort != NULL)
		h->batch_abort(h->ctx);
	for (j = batch; j != NULL; j = j->next)
		if (j->result == 0)
			j->result = SG_ERR_UNAVAILABLE;
}

static void *
writer_main(void *arg)
{
	struct sg_store *st = arg;
	struct job *batch, *j;
	size_t n;

	pthread_mutex_lock(&st->qlock);
	for (;;) {
		while (st->head == NULL && !st->stopping)
			pthread_cond_wait(&st->qcond, &st->qlock);
		if (st->head == NULL && st->stopping)
			break;
		/* Take up to MAX_BATCH queued jobs. */
		batch = st->head;
		for (n = 1, j = batch; j->next != NULL && n < MAX_BATCH;
		    j = j->next, n++)
			;
		st->head = j->next;
		if (st->head == NULL)
			st->tail = NULL;
		j->next = NULL;
		pthread_mutex_unlock(&st->qlock);

		run_batch(st, batch);

		pthread_mutex_lock(&st->qlock);
		st->batches++;
		st->jobs += n;
		for (j = batch; j != NULL; j = j->next)
			j->done = 1;
		pthread_cond_broadcast(&st->dcond);
	}
	pthread_mutex_unlock(&st->qlock);
	return NULL;
}

int
sg_store_write(struct sg_store *st, sg_store_job_fn fn, void *arg)
{
	return sg_store_write_kept(st, fn, arg, NULL);
}

int
sg_store_write_kept(struct sg_store *st, sg_store_job_fn fn, void *arg,
    int *ret_kept)
{
	struct job j;

	memset(&j, 0, sizeof(j));
	j.fn = fn;
	j.arg = arg;
	pthread_mutex_lock(&st->qlock);
	if (st->stopping) {
		pthread_mutex_unlock(&st->qlock);
		return SG_ERR_UNAVAILABLE;
	}
	if (st->tail != NULL)
		st->tail->next = &j;
	else
		st->head = &j;
	st->tail = &j;
	pthread_cond_signal(&st->qcond);
	while (!j.done)
		pthread_cond_wait(&st->dcond, &st->qlock);
	pthread_mutex_unlock(&st->qlock);
	if (ret_kept != NULL)
		*ret_kept = j.kept;
	return j.result;
}

/*
 * A transaction of its own on the writer's connection, from the
 * batch_durable hook, whose COMMIT does not wait for the disk
 * (synchronous=NORMAL).  SQLite keeps a WAL database consistent at that
 * setting; a crash or power loss may only lose this last transaction.
 * The next batch's COMMIT (synchronous=FULL again) fsyncs the WAL, and
 * with it this transaction's frames, which precede its own.
 */
int
sg_store_txn_relaxed(struct sg_txn *t, sg_store_job_fn fn, void *arg)
{
	struct sg_store *st = t->st;
	int r, r2;

	if (!t->write || st == NULL)
		return SG_ERR_INVALID;
	if ((r = exec(t, "PRAGMA synchronous=NORMAL")) != 0)
		return r;
	st->sync_relaxed = 1;
	if ((r = exec(t, "BEGIN IMMEDIATE")) == 0) {
		if ((r = fn(t, arg)) == 0)
			r = exec(t, "COMMIT");
		if (r != 0)
			sqlite3_exec(t->db, "ROLLBACK", NULL, NULL, NULL);
	}
	if ((r2 = exec(t, "PRAGMA synchronous=FULL")) == 0)
		st->sync_relaxed = 0;
	return r != 0 ? r : r2;
}

sqlite3 *
sg_store_txn_db(struct sg_txn *t)
{
	return t->db;
}

int
sg_store_txn_is_write(const struct sg_txn *t)
{
	return t->write;
}

void
sg_store_batch_stats(struct sg_store *st, uint64_t *ret_batches,
    uint64_t *ret_jobs)
{
	pthread_mutex_lock(&st->qlock);
	*ret_batches = st->batches;
	*ret_jobs = st->jobs;
	pthread_mutex_unlock(&st->qlock);
}

int
store_prepare(struct sg_txn *t, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v2(t->db, sql, -1, ret, NULL);

	return rc == SQLITE_OK ? 0 : store_db_err(t->db, rc);
}

void
store_copy_col(sqlite3_stmt *s, int col, char *out, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(s, col);

	snprintf(out, cap, "%s", v ? (const char *)v : "");
}

int
store_dup_col(sqlite3_stmt *s, int col, char **ret)
{
	const unsigned char *v = sqlite3_column_text(s, col);

	*ret = NULL;
	if (v == NULL)
		return 0;
	return (*ret = strdup((const char *)v)) == NULL ? SG_ERR_NOMEM : 0;
}

int
store_blob_col(sqlite3_stmt *s, int col, uint8_t **ret, size_t *ret_len)
{
	const void *v = sqlite3_column_blob(s, col);
	int n = sqlite3_column_bytes(s, col);

	*ret = NULL;
	*ret_len = 0;
	if (v == NULL || n <= 0)
		return 0;
	if ((*ret = malloc((size_t)n)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(*ret, v, (size_t)n);
	*ret_len = (size_t)n;
	return 0;
}

int
sg_store_find_idempotent(struct sg_txn *t, const char *requester,
    const char *idem_key, char ret_id[SG_REQUEST_ID_SIZE],
    char ret_body_sha256[SG_SHA256_HEX_SIZE])
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "SELECT id, idem_body_sha256 FROM requests "
	    "WHERE requester = ?1 AND idem_key = ?2", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, requester, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, idem_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		store_copy_col(s, 0, ret_id, SG_REQUEST_ID_SIZE);
		store_copy_col(s, 1, ret_body_sha256, SG_SHA256_HEX_SIZE);
		r = 0;
	} else if (rc == SQLITE_DONE)
		r = SG_ERR_NOT_FOUND;
	else
		r = store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_insert_request(struct sg_txn *t, const struct sg_request *q,
    const char *idem_key, const char *body_sha256)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if (!sg_req_state_valid(q->state) || !sg_format_valid(q->format))
		return SG_ERR_INVALID;
	if ((r = store_prepare(t, "INSERT INTO requests (id, key, digest_alg, "
	    "digest_hex, format, artifact, requester, created_at, expires_at, "
	    "policy_name, policy_version, policy_sha256, spki_sha256, "
	    "statement, state, error, signature, cms, signed_at, idem_key, "
	    "idem_body_sha256, timestamp_note, kind, count, grant_id, "
	    "grant_seq) VALUES (?1, ?2, ?3, ?4, ?5, "
	    "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
	    "?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
	    &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, q->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, q->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, q->digest_alg, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, q->digest_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, sg_format_str(q->format), -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, q->artifact_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, q->requester, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 8, q->created_at);
	sqlite3_bind_int64(s, 9, q->expires_at);
	sqlite3_bind_text(s, 10, q->policy_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 11, (sqlite3_int64)q->policy_version);
	sqlite3_bind_text(s, 12, q->policy_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 13, q->spki_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 14, q->statement, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 15, sg_req_state_str(q->state), -1,
	    SQLITE_STATIC);
	if (q->error != NULL)
		sqlite3_bind_text(s, 16, q->error, -1, SQLITE_STATIC);
	if (q->signature != NULL)
		sqlite3_bind_blob(s, 17, q->signature, (int)q->signature_len,
		    SQLITE_STATIC);
	if (q->cms != NULL)
		sqlite3_bind_blob(s, 18, q->cms, (int)q->cms_len,
		    SQLITE_STATIC);
	if (q->signed_at != 0)
		sqlite3_bind_int64(s, 19, q->signed_at);
	if (idem_key != NULL) {
		sqlite3_bind_text(s, 20, idem_key, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 21, body_sha256, -1, SQLITE_STATIC);
	}
	if (q->timestamp_note != NULL)
		sqlite3_bind_text(s, 22, q->timestamp_note, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 23, sg_kind_str(q->kind), -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 24, (sqlite3_int64)q->count);
	if (q->grant_id[0] != '\0') {
		sqlite3_bind_text(s, 25, q->grant_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 26, (sqlite3_int64)q->grant_seq);
	}
	rc = sqlite3_step(s);
	r = rc == SQLITE_DONE ? 0 : store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

#define REQUEST_COLUMNS "seq, id, key, digest_alg, digest_hex, format, " \
    "artifact, requester, created_at, expires_at, policy_name, " \
    "policy_version, policy_sha256, spki_sha256, statement, state, error, " \
    "signature, cms, signed_at, log_index, timestamp_note, cancelled_by, " \
    "cancel_reason, cancelled_at, kind, count, used, approved_index, " \
    "grant_id, grant_seq"

static int
load_approvals(struct sg_txn *t, struct sg_request *q)
{
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int rc, r;

	if ((r = store_prepare(t, "SELECT officer, decision, at, envelope FROM "
	    "approvals WHERE request_id = ?1 ORDER BY ord", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, q->id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct sg_approval *a;
		if (q->napprovals == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			a = reallocarray(q->approvals, ncap, sizeof(*a));
			if (a == NULL) {
				r = SG_ERR_NOMEM;
				goto out;
			}
			q->approvals = a;
			cap = ncap;
		}
		a = &q->approvals[q->napprovals];
		memset(a, 0, sizeof(*a));
		store_copy_col(s, 0, a->officer, sizeof(a->officer));
		a->approve = strcmp((const char *)sqlite3_column_text(s, 1),
		    "approve") == 0;
		a->at = sqlite3_column_int64(s, 2);
		q->napprovals++;
		if ((r = store_dup_col(s, 3, &a->envelope)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : store_db_err(t->db, rc);
out:
	sqlite3_finalize(s);
	return r;
}

/*
 * A request's state and format as the database holds them.  The schema's
 * CHECK constraint keeps the state in the set; the format has none, so a
 * row written by hand (or a bug) is refused here rather than passed on.
 */
static int
row_enums(sqlite3_stmt *s, struct sg_request *q)
{
	const char *state = (const char *)sqlite3_column_text(s, 15);
	const char *format = (const char *)sqlite3_column_text(s, 5);
	const char *kind = (const char *)sqlite3_column_text(s, 25);

	if (sg_req_state_parse(state, &q->state) != 0) {
		sg_log_error("store: request %s has state '%s', which is not "
		    "a request state; refusing the row", q->id,
		    state ? state : "");
		return SG_ERR_IO;
	}
	if (sg_format_parse(format, &q->format) != 0) {
		sg_log_error("store: request %s has format '%s', which is not "
		    "a signature format; refusing the row", q->id,
		    format ? format : "");
		return SG_ERR_IO;
	}
	if (sg_kind_parse(kind, &q->kind) != 0) {
		sg_log_error("store: request %s has kind '%s', which is not "
		    "one; refusing the row", q->id, kind ? kind : "");
		return SG_ERR_IO;
	}
	return 0;
}

static int
row_to_request(struct sg_txn *t, sqlite3_stmt *s, struct sg_request **ret)
{
	struct sg_request *q;
	int r;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return SG_ERR_NOMEM;
	q->seq = sqlite3_column_int64(s, 0);
	store_copy_col(s, 1, q->id, sizeof(q->id));
	store_copy_col(s, 2, q->key, sizeof(q->key));
	store_copy_col(s, 3, q->digest_alg, sizeof(q->digest_alg));
	store_copy_col(s, 4, q->digest_hex, sizeof(q->digest_hex));
	store_copy_col(s, 7, q->requester, sizeof(q->requester));
	q->created_at = sqlite3_column_int64(s, 8);
	q->expires_at = sqlite3_column_int64(s, 9);
	store_copy_col(s, 10, q->policy_name, sizeof(q->policy_name));
	q->policy_version = (uint64_t)sqlite3_column_int64(s, 11);
	store_copy_col(s, 12, q->policy_sha256, sizeof(q->policy_sha256));
	store_copy_col(s, 13, q->spki_sha256, sizeof(q->spki_sha256));
	q->signed_at = sqlite3_column_int64(s, 19);
	q->log_index = sqlite3_column_type(s, 20) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(s, 20);
	store_copy_col(s, 22, q->cancelled_by, sizeof(q->cancelled_by));
	q->cancelled_at = sqlite3_column_int64(s, 24);
	q->count = (uint64_t)sqlite3_column_int64(s, 26);
	q->used = (uint64_t)sqlite3_column_int64(s, 27);
	q->approved_index = sqlite3_column_type(s, 28) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(s, 28);
	store_copy_col(s, 29, q->grant_id, sizeof(q->grant_id));
	q->grant_seq = (uint64_t)sqlite3_column_int64(s, 30);
	if ((r = row_enums(s, q)) != 0 ||
	    (r = store_dup_col(s, 6, &q->artifact_json)) != 0 ||
	    (r = store_dup_col(s, 14, &q->statement)) != 0 ||
	    (r = store_dup_col(s, 16, &q->error)) != 0 ||
	    (r = store_dup_col(s, 21, &q->timestamp_note)) != 0 ||
	    (r = store_dup_col(s, 23, &q->cancel_reason)) != 0 ||
	    (r = store_blob_col(s, 17, &q->signature, &q->signature_len)) != 0 ||
	    (r = store_blob_col(s, 18, &q->cms, &q->cms_len)) != 0 ||
	    (r = load_approvals(t, q)) != 0) {
		sg_request_free(q);
		return r;
	}
	/* A release's `used` counts its artifacts signed. */
	q->signed_count = q->kind == SG_KIND_RELEASE ? q->used : 0;
	*ret = q;
	return 0;
}

int
sg_store_get_request(struct sg_txn *t, const char *id,
    struct sg_request **ret)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "SELECT " REQUEST_COLUMNS " FROM requests "
	    "WHERE id = ?1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = row_to_request(t, s, ret);
	else if (rc == SQLITE_DONE)
		r = SG_ERR_NOT_FOUND;
	else
		r = store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

void
sg_request_free(struct sg_request *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->napprovals; i++)
		free(q->approvals[i].envelope);
	free(q->approvals);
	free(q->artifact_json);
	free(q->statement);
	free(q->error);
	free(q->signature);
	free(q->cms);
	free(q->timestamp_note);
	free(q->cancel_reason);
	free(q);
}

/* How many decisions the request holds, and whether officer's is one. */
static int
count_approvals(struct sg_txn *t, const char *id, const char *officer,
    int64_t *ret_n, int *ret_decided)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "SELECT COUNT(*), COALESCE(SUM(officer = ?2), 0) "
	    "FROM approvals WHERE request_id = ?1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, officer, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*ret_n = sqlite3_column_int64(s, 0);
		*ret_decided = sqlite3_column_int64(s, 1) != 0;
		r = 0;
	} else
		r = store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_add_approval(struct sg_txn *t, const char *id,
    const char *officer, int approve, int64_t at, const char *envelope)
{
	sqlite3_stmt *s = NULL;
	int64_t n;
	int decided, rc, r;

	/*
	 * Every decision recorded goes into the signature's evidence and log
	 * entry, which hold at most SG_ENVELOPES_MAX: one more is refused
	 * here, where it arrives, rather than left out of the count later.
	 */
	if ((r = count_approvals(t, id, officer, &n, &decided)) != 0)
		return r;
	if (decided)
		return SG_ERR_CONFLICT;
	if (n >= SG_ENVELOPES_MAX) {
		sg_log_error("store: request %s already holds %lld decisions, "
		    "the most one request can: the decision by %s is refused",
		    id, (long long)n, officer);
		return SG_ERR_TOO_LARGE;
	}
	if ((r = store_prepare(t, "INSERT INTO approvals (request_id, officer, "
	    "decision, at, envelope, ord) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	    &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, officer, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, approve ? "approve" : "reject", -1,
	    SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, at);
	sqlite3_bind_text(s, 5, envelope, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, n);    /* counted above, in this transaction */
	rc = sqlite3_step(s);
	r = rc == SQLITE_DONE ? 0 : store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

int
store_changed_one(struct sg_txn *t, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE)
		return store_db_err(t->db, rc);
	return sqlite3_changes(t->db) == 1 ? 0 : SG_ERR_CONFLICT;
}

int
sg_store_finish(struct sg_txn *t, const char *id, enum sg_req_state to,
    const char *error)
{
	sqlite3_stmt *s = NULL;
	int r;

	/* Signed and cancelled carry more than an error: their own calls. */
	if (to != SG_REQ_REJECTED && to != SG_REQ_EXPIRED &&
	    to != SG_REQ_FAILED)
		return SG_ERR_INVALID;
	if ((r = store_prepare(t, "UPDATE requests SET state = ?2, error = ?3 "
	    "WHERE id = ?1 AND state IN ('pending', 'active')", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sg_req_state_str(to), -1, SQLITE_STATIC);
	if (error != NULL)
		sqlite3_bind_text(s, 3, error, -1, SQLITE_STATIC);
	r = store_changed_one(t, s);
	sqlite3_finalize(s);
	return r;
}

/* An object ended by someone, with a reason: sql sets the state and
 * guards the one it may leave. */
static int
end_by(struct sg_txn *t, const char *sql, const char *id, const char *by,
    const char *reason, int64_t at)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, sql, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, by, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, at);
	r = store_changed_one(t, s);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_cancel(struct sg_txn *t, const char *id, const char *by,
    const char *reason, int64_t at)
{
	return end_by(t, "UPDATE requests SET state = 'cancelled', "
	    "cancelled_by = ?2, cancel_reason = ?3, cancelled_at = ?4 "
	    "WHERE id = ?1 AND state = 'pending'", id, by, reason, at);
}

int
sg_store_revoke(struct sg_txn *t, const char *id, const char *by,
    const char *reason, int64_t at)
{
	return end_by(t, "UPDATE requests SET state = 'revoked', "
	    "cancelled_by = ?2, cancel_reason = ?3, cancelled_at = ?4 "
	    "WHERE id = ?1 AND state = 'active' AND kind = 'grant'", id, by,
	    reason, at);
}

int
sg_store_set_signed(struct sg_txn *t, const char *id, const uint8_t *sig,
    size_t sig_len, const uint8_t *cms, size_t cms_len, int64_t signed_at,
    const char *timestamp_note)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "UPDATE requests SET state = 'signed', "
	    "signature = ?2, cms = ?3, signed_at = ?4, timestamp_note = ?5 "
	    "WHERE id = ?1 AND state = 'pending'", &s)) != 0)
		return r;
	if (timestamp_note != NULL)
		sqlite3_bind_text(s, 5, timestamp_note, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, sig, (int)sig_len, SQLITE_STATIC);
	if (cms != NULL)
		sqlite3_bind_blob(s, 3, cms, (int)cms_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, signed_at);
	r = store_changed_one(t, s);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_list(struct sg_txn *t, enum sg_req_state state, const char *key,
    int64_t before_seq, size_t limit, struct sg_request ***ret,
    size_t *ret_n)
{
	struct sg_request **v = NULL;
	sqlite3_stmt *s = NULL;
	size_t n = 0;
	int rc = SQLITE_DONE, r;

	if (state != SG_REQ_NONE && !sg_req_state_valid(state))
		return SG_ERR_INVALID;
	if ((v = calloc(limit ? limit : 1, sizeof(*v))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = store_prepare(t, "SELECT " REQUEST_COLUMNS " FROM requests "
	    "WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR key = ?2) "
	    "AND (?3 = 0 OR seq < ?3) ORDER BY seq DESC LIMIT ?4", &s)) != 0)
		goto out;
	if (state != SG_REQ_NONE)
		sqlite3_bind_text(s, 1, sg_req_state_str(state), -1,
		    SQLITE_STATIC);
	if (key != NULL)
		sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, before_seq);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)limit);
	while (n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = row_to_request(t, s, &v[n])) != 0)
			goto out;
		n++;
	}
	if (n < limit && rc != SQLITE_DONE) {
		r = store_db_err(t->db, rc);
		goto out;
	}
	*ret = v;
	*ret_n = n;
	v = NULL;
	r = 0;
out:
	sqlite3_finalize(s);
	if (v != NULL)
		sg_request_list_free(v, n);
	return r;
}

void
sg_request_list_free(struct sg_request **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		sg_request_free(v[i]);
	free(v);
}

int
store_select_ids(struct sg_txn *t, const char *sql, int64_t now, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n)
{
	sqlite3_stmt *s = NULL;
	size_t n = 0;
	int rc = SQLITE_DONE, r;

	if ((r = store_prepare(t, sql, &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, now);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW)
		store_copy_col(s, 0, ret_ids[n++], SG_REQUEST_ID_SIZE);
	r = (n == max || rc == SQLITE_DONE) ? 0 : store_db_err(t->db, rc);
	sqlite3_finalize(s);
	if (r == 0)
		*ret_n = n;
	return r;
}

int
sg_store_due_expiry(struct sg_txn *t, int64_t now, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n)
{
	return store_select_ids(t, "SELECT id FROM requests WHERE (state = "
	    "'pending' OR (state = 'active' AND kind = 'grant')) AND "
	    "expires_at <= ?1 ORDER BY seq LIMIT ?2", now, max,
	    ret_ids, ret_n);
}

int
sg_store_pending_ids(struct sg_txn *t, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n)
{
	return store_select_ids(t, "SELECT id FROM requests WHERE state = "
	    "'pending' AND ?1 = ?1 ORDER BY seq LIMIT ?2", 0, max, ret_ids,
	    ret_n);
}

int
sg_store_put_policy(struct sg_txn *t, const char *sha256_hex,
    const char *text, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "INSERT OR IGNORE INTO policies (sha256, text, "
	    "first_seen) VALUES (?1, ?2, ?3)", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, sha256_hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now);
	rc = sqlite3_step(s);
	r = rc == SQLITE_DONE ? 0 : store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_get_policy(struct sg_txn *t, const char *sha256_hex, char **ret)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "SELECT text FROM policies WHERE sha256 = ?1",
	    &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, sha256_hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = store_dup_col(s, 0, ret);
	else if (rc == SQLITE_DONE)
		r = SG_ERR_NOT_FOUND;
	else
		r = store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_set_log_index(struct sg_txn *t, const char *id, uint64_t index)
{
	sqlite3_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "UPDATE requests SET log_index = ?2 WHERE "
	    "id = ?1", &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)index);
	r = store_changed_one(t, s);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_count_pending(struct sg_txn *t, const char *requester,
    uint64_t *ret)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "SELECT COUNT(*) FROM requests WHERE state = "
	    "'pending' AND (?1 IS NULL OR requester = ?1)", &s)) != 0)
		return r;
	if (requester != NULL)
		sqlite3_bind_text(s, 1, requester, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret = (uint64_t)sqlite3_column_int64(s, 0);
		r = 0;
	} else
		r = store_db_err(t->db, rc);
	sqlite3_finalize(s);
	return r;
}

int
sg_store_pending_after(struct sg_txn *t, int64_t after_seq, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n, int64_t *ret_last_seq)
{
	sqlite3_stmt *s = NULL;
	size_t n = 0;
	int64_t last = after_seq;
	int rc = SQLITE_DONE, r;

	if ((r = store_prepare(t, "SELECT id, seq FROM requests WHERE state = "
	    "'pending' AND seq > ?1 ORDER BY seq LIMIT ?2", &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, after_seq);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		store_copy_col(s, 0, ret_ids[n++], SG_REQUEST_ID_SIZE);
		last = sqlite3_column_int64(s, 1);
	}
	r = (n == max || rc == SQLITE_DONE) ? 0 : store_db_err(t->db, rc);
	sqlite3_finalize(s);
	if (r == 0) {
		*ret_n = n;
		*ret_last_seq = last;
	}
	return r;
}
