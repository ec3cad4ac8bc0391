/*
 * The request store, on SQLite (one machine) or PostgreSQL (several
 * gateways on one database), through src/db.c.
 *
 * Durability: a COMMIT returns once the change is on disk (SQLite: WAL
 * with synchronous=FULL; PostgreSQL: synchronous_commit on, and with a
 * synchronous standby, on the standby too); the API answers 2xx only
 * after the batch holding the change has committed and the batch_durable
 * hook (the log's signed checkpoint) has succeeded.
 *
 * One batch costs one COMMIT.  What the log does after it (tlog.c) adds
 * the signer's two fsyncs (its record: the file and its directory) and
 * writes the checkpoint row with sg_store_txn_relaxed(), whose COMMIT
 * does not wait for the disk: that row can be recomputed, and the next
 * batch's COMMIT makes it durable with its own.
 *
 * Order: one writer thread per gateway; each batch's transaction first
 * takes the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL:
 * the row lock on log_head), so that the writes of all gateways on one
 * database happen one batch at a time, in one order, and each batch sees
 * everything committed before it.
 *
 * Integrity: state transitions are guarded in SQL (`WHERE state='pending'`)
 * so that a request can leave `pending` once, whatever the callers race.
 * A decision per officer and request is unique by primary key, and a
 * request holds at most SG_ENVELOPES_MAX of them.  States and formats are
 * enums everywhere else (sg_types.h): their strings are written and read
 * here, at the SQL boundary.  The SQL is the dialect both backends share
 * (src/db.c); the schema and its versions are in src/store_schema.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_store.h"
#include "sg_types.h"
#include "sg_util.h"
#include "store_int.h"

int
store_db_err(struct sg_db *db, int r)
{
	if (r >= 0)                    /* a row, or done, where none fits */
		return SG_ERR_INTERNAL;
	if (r == SG_ERR_IO)
		sg_log_error("store: %s", sg_db_errmsg(db));
	else if (r == SG_ERR_UNAVAILABLE)
		sg_log_warn("store: %s", sg_db_errmsg(db));
	return r;
}

/* A new connection to the store's database; the writer's brings the
 * schema to this build's version first. */
static int
open_conn(struct sg_store *st, int write, struct sg_db **ret)
{
	struct sg_db *db = NULL;
	int r;

	if ((r = sg_db_open(&st->dbconf, write, &db)) != 0) {
		sg_log_error("store %s: %s", st->where, db != NULL ?
		    sg_db_errmsg(db) : "cannot open");
		return r;
	}
	/* The schema step logs its own failures. */
	if (write && (r = store_schema_migrate(db, st->where)) != 0) {
		sg_db_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

static void *writer_main(void *arg);

static int
store_start(struct sg_store *st, struct sg_store **ret)
{
	int r;

	if ((r = open_conn(st, 1, &st->wtxn.db)) != 0)
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

static struct sg_store *
store_new(void)
{
	struct sg_store *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	pthread_mutex_init(&st->qlock, NULL);
	pthread_cond_init(&st->qcond, NULL);
	pthread_cond_init(&st->dcond, NULL);
	pthread_mutex_init(&st->rlock, NULL);
	pthread_cond_init(&st->rcond, NULL);
	pthread_mutex_init(&st->nlock, NULL);
	st->wake_fd = -1;
	return st;
}

int
sg_store_open(const char *dir, struct sg_store **ret)
{
	struct sg_store_conf c;

	memset(&c, 0, sizeof(c));
	c.backend = SG_DB_SQLITE;
	c.dir = dir;
	return sg_store_open_conf(&c, ret);
}

int
sg_store_open_conf(const struct sg_store_conf *c, struct sg_store **ret)
{
	struct sg_store *st;

	if ((st = store_new()) == NULL)
		return SG_ERR_NOMEM;
	st->dbconf.backend = c->backend;
	st->claim_seconds = c->claim_seconds > 0 ? c->claim_seconds :
	    SG_STORE_CLAIM_SECONDS;
	snprintf(st->node, sizeof(st->node), "%s",
	    c->node != NULL && c->node[0] != '\0' ? c->node : "local");
	switch (c->backend) {
	case SG_DB_SQLITE:
		if (c->dir == NULL)
			goto invalid;
		if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
			free(st);
			return SG_ERR_IO;
		}
		if ((st->path = sg_path_join(c->dir, "signgate.db")) == NULL ||
		    (st->where = strdup(st->path)) == NULL)
			goto nomem;
		st->dbconf.path = st->path;
		st->shared = c->shared;
		break;
	case SG_DB_POSTGRESQL:
		if (c->conninfo == NULL)
			goto invalid;
		if ((st->conninfo = strdup(c->conninfo)) == NULL ||
		    (c->password != NULL &&
		    (st->password = strdup(c->password)) == NULL) ||
		    (st->where = strdup("postgresql")) == NULL)
			goto nomem;
		st->dbconf.conninfo = st->conninfo;
		st->dbconf.password = st->password;
		st->dbconf.application = "signgated";
		st->shared = 1;
		break;
	default:
		goto invalid;
	}
	return store_start(st, ret);
invalid:
	sg_store_close(st);
	return SG_ERR_INVALID;
nomem:
	sg_store_close(st);
	return SG_ERR_NOMEM;
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
	sg_store_unlisten(st);
	for (i = 0; i < st->nreaders; i++)
		sg_db_close(st->readers[i]);
	sg_db_close(st->wtxn.db);
	pthread_mutex_destroy(&st->qlock);
	pthread_cond_destroy(&st->qcond);
	pthread_cond_destroy(&st->dcond);
	pthread_mutex_destroy(&st->rlock);
	pthread_cond_destroy(&st->rcond);
	pthread_mutex_destroy(&st->nlock);
	free(st->path);
	free(st->conninfo);
	if (st->password != NULL)
		sg_freezero(st->password, strlen(st->password));
	free(st->where);
	free(st);
}

enum sg_db_backend
sg_store_backend(const struct sg_store *st)
{
	return st->dbconf.backend;
}

int
sg_store_shared(const struct sg_store *st)
{
	return st->shared;
}

const char *
sg_store_node(const struct sg_store *st)
{
	return st->node;
}

void
sg_store_set_hooks(struct sg_store *st, const struct sg_store_hooks *h)
{
	pthread_mutex_lock(&st->qlock);
	st->hooks = *h;
	pthread_mutex_unlock(&st->qlock);
}

/* A reader connection goes back to the pool, or is closed if its server
 * went away (the next reader opens a new one). */
static void
reader_put(struct sg_store *st, struct sg_db *db)
{
	pthread_mutex_lock(&st->rlock);
	if (db != NULL && !sg_db_broken(db))
		st->readers[st->nreaders++] = db;
	else {
		sg_db_close(db);
		st->nopen--;
	}
	pthread_cond_signal(&st->rcond);
	pthread_mutex_unlock(&st->rlock);
}

/* A snapshot: on PostgreSQL every statement of the transaction sees the
 * same committed state, as a WAL reader does on SQLite. */
static const char *
read_begin_sql(const struct sg_store *st)
{
	return st->dbconf.backend == SG_DB_POSTGRESQL ?
	    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN";
}

int
sg_store_read_begin(struct sg_store *st, struct sg_txn **ret)
{
	struct sg_txn *t;
	struct sg_db *db = NULL;
	int r;

	pthread_mutex_lock(&st->rlock);
	while (st->nreaders == 0 && st->nopen >= STORE_MAX_READERS)
		pthread_cond_wait(&st->rcond, &st->rlock);
	if (st->nreaders > 0)
		db = st->readers[--st->nreaders];
	else
		st->nopen++;
	pthread_mutex_unlock(&st->rlock);
	if (db == NULL && (r = open_conn(st, 0, &db)) != 0) {
		reader_put(st, NULL);
		return r == SG_ERR_NOMEM ? r : SG_ERR_UNAVAILABLE;
	}
	if ((r = sg_db_exec(db, read_begin_sql(st))) != 0) {
		/* A pooled connection whose server restarted: once more. */
		if (sg_db_broken(db) && sg_db_reconnect(db) == 0)
			r = sg_db_exec(db, read_begin_sql(st));
		if (r != 0) {
			r = store_db_err(db, r);
			reader_put(st, NULL);
			sg_db_close(db);
			return r;
		}
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		sg_db_exec(db, "ROLLBACK");
		reader_put(st, db);
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
	if (t == NULL)
		return;
	sg_db_exec(t->db, "ROLLBACK");
	reader_put(t->st, t->db);
	free(t);
}

static int
exec(struct sg_txn *t, const char *sql)
{
	int rc = sg_db_exec(t->db, sql);

	return rc == 0 ? 0 : store_db_err(t->db, rc);
}

/*
 * Opens the batch's transaction.  SQLite: BEGIN IMMEDIATE takes the
 * database's one write lock.  PostgreSQL: the row lock on the log's head
 * plays that part for every gateway on the database, so that write
 * transactions, and with them the log's indexes, follow one order; a
 * connection lost since the last batch is opened again first.  Then the
 * batch_begin hook (the log catches up with what other gateways added).
 */
static int
batch_begin(struct sg_store *st, const struct sg_store_hooks *h)
{
	struct sg_txn *t = &st->wtxn;
	int r;

	if (st->dbconf.backend == SG_DB_POSTGRESQL) {
		if (sg_db_broken(t->db) && (r = sg_db_reconnect(t->db)) != 0)
			return store_db_err(t->db, r);
		/* A connection the server closed while the writer was idle
		 * (a restart, a failover) is found closed only now: it is
		 * opened again, once, rather than fail the batch. */
		if ((r = sg_db_exec(t->db, "BEGIN")) != 0 &&
		    sg_db_broken(t->db) && sg_db_reconnect(t->db) == 0)
			r = sg_db_exec(t->db, "BEGIN");
		if (r != 0)
			return store_db_err(t->db, r);
		if ((r = exec(t, "SELECT id FROM log_head WHERE id = 1 FOR "
		    "UPDATE")) != 0) {
			sg_db_exec(t->db, "ROLLBACK");
			return r;
		}
	} else {
		/* Never a batch without its fsync (sg_store_txn_relaxed). */
		if (st->sync_relaxed &&
		    (r = exec(t, "PRAGMA synchronous=FULL")) == 0)
			st->sync_relaxed = 0;
		if (st->sync_relaxed)
			return SG_ERR_UNAVAILABLE;
		if ((r = exec(t, "BEGIN IMMEDIATE")) != 0)
			return r;
	}
	if (h->batch_begin != NULL && (r = h->batch_begin(h->ctx, t)) != 0) {
		sg_db_exec(t->db, "ROLLBACK");
		return r;
	}
	return 0;
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
run_batch(struct sg_store *st, struct store_job *batch)
{
	struct sg_txn *t = &st->wtxn;
	struct sg_store_hooks hooks, *h = &hooks;
	struct store_job *j;
	int r, any = 0;

	pthread_mutex_lock(&st->qlock);
	hooks = st->hooks;
	pthread_mutex_unlock(&st->qlock);
	if (batch_begin(st, h) != 0) {
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
	sg_db_exec(t->db, "ROLLBACK");
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
	struct store_job *batch, *waiting, *j, *next;
	size_t n;

	pthread_mutex_lock(&st->qlock);
	for (;;) {
		while (st->head == NULL && !st->stopping)
			pthread_cond_wait(&st->qcond, &st->qlock);
		if (st->head == NULL && st->stopping)
			break;
		/* Take up to STORE_MAX_BATCH queued jobs. */
		batch = st->head;
		for (n = 1, j = batch; j->next != NULL && n < STORE_MAX_BATCH;
		    j = j->next, n++)
			;
		st->head = j->next;
		if (st->head == NULL)
			st->tail = NULL;
		j->next = NULL;
		pthread_mutex_unlock(&st->qlock);

		run_batch(st, batch);

		/* The asynchronous jobs are told first, off the lock; the
		 * waiting ones are woken after (their job may be gone once
		 * done is set). */
		for (waiting = NULL, j = batch; j != NULL; j = next) {
			next = j->next;
			if (j->done_fn != NULL) {
				j->done_fn(j->done_arg, j->result, j->kept);
				free(j);
			} else {
				j->next = waiting;
				waiting = j;
			}
		}
		pthread_mutex_lock(&st->qlock);
		st->batches++;
		st->jobs += n;
		for (j = waiting; j != NULL; j = next) {
			next = j->next;
			j->done = 1;
		}
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
	struct store_job j;

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

int
sg_store_write_async(struct sg_store *st, sg_store_job_fn fn, void *arg,
    sg_store_done_fn done, void *done_arg)
{
	struct store_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return SG_ERR_NOMEM;
	j->fn = fn;
	j->arg = arg;
	j->done_fn = done;
	j->done_arg = done_arg;
	pthread_mutex_lock(&st->qlock);
	if (st->stopping) {
		pthread_mutex_unlock(&st->qlock);
		free(j);
		return SG_ERR_UNAVAILABLE;
	}
	if (st->tail != NULL)
		st->tail->next = j;
	else
		st->head = j;
	st->tail = j;
	pthread_cond_signal(&st->qcond);
	pthread_mutex_unlock(&st->qlock);
	return 0;
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
	if (st->dbconf.backend == SG_DB_POSTGRESQL) {
		/* The same on the server: this COMMIT does not wait for
		 * its WAL to reach the disk, the next one's does. */
		if ((r = exec(t, "BEGIN; SET LOCAL synchronous_commit = "
		    "off")) == 0) {
			if ((r = fn(t, arg)) == 0)
				r = exec(t, "COMMIT");
			if (r != 0)
				sg_db_exec(t->db, "ROLLBACK");
		}
		return r;
	}
	if ((r = exec(t, "PRAGMA synchronous=NORMAL")) != 0)
		return r;
	st->sync_relaxed = 1;
	if ((r = exec(t, "BEGIN IMMEDIATE")) == 0) {
		if ((r = fn(t, arg)) == 0)
			r = exec(t, "COMMIT");
		if (r != 0)
			sg_db_exec(t->db, "ROLLBACK");
	}
	if ((r2 = exec(t, "PRAGMA synchronous=FULL")) == 0)
		st->sync_relaxed = 0;
	return r != 0 ? r : r2;
}

struct sg_db *
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
store_prepare(struct sg_txn *t, const char *sql, struct sg_db_stmt **ret)
{
	int r = sg_db_prepare(t->db, sql, ret);

	return r == 0 ? 0 : store_db_err(t->db, r);
}

void
store_copy_col(struct sg_db_stmt *s, int col, char *out, size_t cap)
{
	const char *v = sg_db_column_text(s, col);

	snprintf(out, cap, "%s", v ? (const char *)v : "");
}

int64_t
store_index_col(struct sg_db_stmt *s, int col)
{
	return sg_db_column_null(s, col) ? -1 : sg_db_column_int64(s, col);
}

int
store_dup_col(struct sg_db_stmt *s, int col, char **ret)
{
	const char *v = sg_db_column_text(s, col);

	*ret = NULL;
	if (v == NULL)
		return 0;
	return (*ret = strdup((const char *)v)) == NULL ? SG_ERR_NOMEM : 0;
}

int
store_blob_col(struct sg_db_stmt *s, int col, uint8_t **ret, size_t *ret_len)
{
	const void *v = sg_db_column_blob(s, col);
	int n = (int)sg_db_column_bytes(s, col);

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
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "SELECT id, idem_body_sha256 FROM requests "
	    "WHERE requester = ?1 AND idem_key = ?2", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, requester);
	sg_db_bind_text(s, 2, idem_key);
	if ((r = store_step_row(t, s)) == 0) {
		store_copy_col(s, 0, ret_id, SG_REQUEST_ID_SIZE);
		store_copy_col(s, 1, ret_body_sha256, SG_SHA256_HEX_SIZE);
	}
	sg_db_finalize(s);
	return r;
}

int
sg_store_insert_request(struct sg_txn *t, const struct sg_request *q,
    const char *idem_key, const char *body_sha256)
{
	struct sg_db_stmt *s = NULL;
	int r;

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
	sg_db_bind_text(s, 1, q->id);
	sg_db_bind_text(s, 2, q->key);
	sg_db_bind_text(s, 3, q->digest_alg);
	sg_db_bind_text(s, 4, q->digest_hex);
	sg_db_bind_text(s, 5, sg_format_str(q->format));
	sg_db_bind_text(s, 6, q->artifact_json);
	sg_db_bind_text(s, 7, q->requester);
	sg_db_bind_int64(s, 8, q->created_at);
	sg_db_bind_int64(s, 9, q->expires_at);
	sg_db_bind_text(s, 10, q->policy_name);
	sg_db_bind_int64(s, 11, (int64_t)q->policy_version);
	sg_db_bind_text(s, 12, q->policy_sha256);
	sg_db_bind_text(s, 13, q->spki_sha256);
	sg_db_bind_text(s, 14, q->statement);
	sg_db_bind_text(s, 15, sg_req_state_str(q->state));
	if (q->error != NULL)
		sg_db_bind_text(s, 16, q->error);
	if (q->signature != NULL)
		sg_db_bind_blob(s, 17, q->signature, q->signature_len);
	if (q->cms != NULL)
		sg_db_bind_blob(s, 18, q->cms, q->cms_len);
	if (q->signed_at != 0)
		sg_db_bind_int64(s, 19, q->signed_at);
	if (idem_key != NULL) {
		sg_db_bind_text(s, 20, idem_key);
		sg_db_bind_text(s, 21, body_sha256);
	}
	if (q->timestamp_note != NULL)
		sg_db_bind_text(s, 22, q->timestamp_note);
	sg_db_bind_text(s, 23, sg_kind_str(q->kind));
	sg_db_bind_int64(s, 24, (int64_t)q->count);
	if (q->grant_id[0] != '\0') {
		sg_db_bind_text(s, 25, q->grant_id);
		sg_db_bind_int64(s, 26, (int64_t)q->grant_seq);
	}
	r = store_step_done(t, s);
	sg_db_finalize(s);
	if (r == 0)
		r = store_changed(t, SG_CHANGE_CREATED, q->id, q->state, NULL,
		    0, NULL);
	if (r == 0 && q->state != SG_REQ_PENDING)
		r = store_changed(t, SG_CHANGE_STATE, q->id, q->state, NULL,
		    0, q->error);
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
	struct sg_db_stmt *s = NULL;
	size_t cap = 0;
	int rc, r;

	if ((r = store_prepare(t, "SELECT officer, decision, at, envelope FROM "
	    "approvals WHERE request_id = ?1 ORDER BY ord", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, q->id);
	while ((rc = sg_db_step(s)) == SG_DB_ROW) {
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
		a->approve = strcmp((const char *)sg_db_column_text(s, 1),
		    "approve") == 0;
		a->at = sg_db_column_int64(s, 2);
		q->napprovals++;
		if ((r = store_dup_col(s, 3, &a->envelope)) != 0)
			goto out;
	}
	r = rc == SG_DB_DONE ? 0 : store_db_err(t->db, rc);
out:
	sg_db_finalize(s);
	return r;
}

/*
 * A request's state and format as the database holds them.  The schema's
 * CHECK constraint keeps the state in the set; the format has none, so a
 * row written by hand (or a bug) is refused here rather than passed on.
 */
static int
row_enums(struct sg_db_stmt *s, struct sg_request *q)
{
	const char *state = (const char *)sg_db_column_text(s, 15);
	const char *format = (const char *)sg_db_column_text(s, 5);
	const char *kind = (const char *)sg_db_column_text(s, 25);

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
row_to_request(struct sg_txn *t, struct sg_db_stmt *s, struct sg_request **ret)
{
	struct sg_request *q;
	int r;

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return SG_ERR_NOMEM;
	q->seq = sg_db_column_int64(s, 0);
	store_copy_col(s, 1, q->id, sizeof(q->id));
	store_copy_col(s, 2, q->key, sizeof(q->key));
	store_copy_col(s, 3, q->digest_alg, sizeof(q->digest_alg));
	store_copy_col(s, 4, q->digest_hex, sizeof(q->digest_hex));
	store_copy_col(s, 7, q->requester, sizeof(q->requester));
	q->created_at = sg_db_column_int64(s, 8);
	q->expires_at = sg_db_column_int64(s, 9);
	store_copy_col(s, 10, q->policy_name, sizeof(q->policy_name));
	q->policy_version = (uint64_t)sg_db_column_int64(s, 11);
	store_copy_col(s, 12, q->policy_sha256, sizeof(q->policy_sha256));
	store_copy_col(s, 13, q->spki_sha256, sizeof(q->spki_sha256));
	q->signed_at = sg_db_column_int64(s, 19);
	q->log_index = store_index_col(s, 20);
	store_copy_col(s, 22, q->cancelled_by, sizeof(q->cancelled_by));
	q->cancelled_at = sg_db_column_int64(s, 24);
	q->count = (uint64_t)sg_db_column_int64(s, 26);
	q->used = (uint64_t)sg_db_column_int64(s, 27);
	q->approved_index = store_index_col(s, 28);
	store_copy_col(s, 29, q->grant_id, sizeof(q->grant_id));
	q->grant_seq = (uint64_t)sg_db_column_int64(s, 30);
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
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "SELECT " REQUEST_COLUMNS " FROM requests "
	    "WHERE id = ?1", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	if ((r = store_step_row(t, s)) == 0)
		r = row_to_request(t, s, ret);
	sg_db_finalize(s);
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
	struct sg_db_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "SELECT COUNT(*), COALESCE(SUM(CASE WHEN "
	    "officer = ?2 THEN 1 ELSE 0 END), 0) FROM approvals WHERE "
	    "request_id = ?1", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_text(s, 2, officer);
	if ((rc = sg_db_step(s)) == SG_DB_ROW) {
		*ret_n = sg_db_column_int64(s, 0);
		*ret_decided = sg_db_column_int64(s, 1) != 0;
		r = 0;
	} else
		r = store_db_err(t->db, rc);
	sg_db_finalize(s);
	return r;
}

int
sg_store_add_approval(struct sg_txn *t, const char *id,
    const char *officer, int approve, int64_t at, const char *envelope)
{
	struct sg_db_stmt *s = NULL;
	int64_t n;
	int decided, r;

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
	sg_db_bind_text(s, 1, id);
	sg_db_bind_text(s, 2, officer);
	sg_db_bind_text(s, 3, approve ? "approve" : "reject");
	sg_db_bind_int64(s, 4, at);
	sg_db_bind_text(s, 5, envelope);
	sg_db_bind_int64(s, 6, n);    /* counted above, in this transaction */
	r = store_step_done(t, s);
	sg_db_finalize(s);
	if (r == 0)
		r = store_changed(t, SG_CHANGE_DECISION, id, SG_REQ_NONE,
		    officer, approve, NULL);
	return r;
}

int
store_step_done(struct sg_txn *t, struct sg_db_stmt *s)
{
	int rc = sg_db_step(s);

	return rc == SG_DB_DONE ? 0 : store_db_err(t->db, rc);
}

int
store_step_row(struct sg_txn *t, struct sg_db_stmt *s)
{
	int rc = sg_db_step(s);

	if (rc == SG_DB_ROW)
		return 0;
	return rc == SG_DB_DONE ? SG_ERR_NOT_FOUND : store_db_err(t->db, rc);
}

int
store_changed_one(struct sg_txn *t, struct sg_db_stmt *s)
{
	int rc = sg_db_step(s);

	if (rc != SG_DB_DONE)
		return store_db_err(t->db, rc);
	return sg_db_changes(s) == 1 ? 0 : SG_ERR_CONFLICT;
}

int
sg_store_finish(struct sg_txn *t, const char *id, enum sg_req_state to,
    const char *error)
{
	struct sg_db_stmt *s = NULL;
	int r;

	/* Signed and cancelled carry more than an error: their own calls. */
	if (to != SG_REQ_REJECTED && to != SG_REQ_EXPIRED &&
	    to != SG_REQ_FAILED)
		return SG_ERR_INVALID;
	if ((r = store_prepare(t, "UPDATE requests SET state = ?2, error = ?3 "
	    "WHERE id = ?1 AND state IN ('pending', 'active')", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_text(s, 2, sg_req_state_str(to));
	if (error != NULL)
		sg_db_bind_text(s, 3, error);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r == 0)
		r = store_changed(t, SG_CHANGE_STATE, id, to, NULL, 0, error);
	return r;
}

/* An object ended by someone, with a reason: sql sets the state and
 * guards the one it may leave. */
static int
end_by(struct sg_txn *t, const char *sql, const char *id, const char *by,
    const char *reason, int64_t at, enum sg_req_state to)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, sql, &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_text(s, 2, by);
	sg_db_bind_text(s, 3, reason);
	sg_db_bind_int64(s, 4, at);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r == 0)
		r = store_changed(t, SG_CHANGE_STATE, id, to, by, 0, reason);
	return r;
}

int
sg_store_cancel(struct sg_txn *t, const char *id, const char *by,
    const char *reason, int64_t at)
{
	return end_by(t, "UPDATE requests SET state = 'cancelled', "
	    "cancelled_by = ?2, cancel_reason = ?3, cancelled_at = ?4 "
	    "WHERE id = ?1 AND state = 'pending'", id, by, reason, at,
	    SG_REQ_CANCELLED);
}

int
sg_store_revoke(struct sg_txn *t, const char *id, const char *by,
    const char *reason, int64_t at)
{
	return end_by(t, "UPDATE requests SET state = 'revoked', "
	    "cancelled_by = ?2, cancel_reason = ?3, cancelled_at = ?4 "
	    "WHERE id = ?1 AND state = 'active' AND kind = 'grant'", id, by,
	    reason, at, SG_REQ_REVOKED);
}

int
sg_store_set_signed(struct sg_txn *t, const char *id, const uint8_t *sig,
    size_t sig_len, const uint8_t *cms, size_t cms_len, int64_t signed_at,
    const char *timestamp_note)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_claim_fence(t, id)) != 0)
		return r;
	if ((r = store_prepare(t, "UPDATE requests SET state = 'signed', "
	    "signature = ?2, cms = ?3, signed_at = ?4, timestamp_note = ?5 "
	    "WHERE id = ?1 AND state = 'pending'", &s)) != 0)
		return r;
	if (timestamp_note != NULL)
		sg_db_bind_text(s, 5, timestamp_note);
	sg_db_bind_text(s, 1, id);
	sg_db_bind_blob(s, 2, sig, sig_len);
	if (cms != NULL)
		sg_db_bind_blob(s, 3, cms, cms_len);
	sg_db_bind_int64(s, 4, signed_at);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	if (r == 0)
		r = store_changed(t, SG_CHANGE_STATE, id, SG_REQ_SIGNED, NULL,
		    0, NULL);
	return r;
}

int
sg_store_list(struct sg_txn *t, enum sg_req_state state, const char *key,
    int64_t before_seq, size_t limit, struct sg_request ***ret,
    size_t *ret_n)
{
	struct sg_request **v = NULL;
	struct sg_db_stmt *s = NULL;
	size_t n = 0;
	int rc = SG_DB_DONE, r;

	if (state != SG_REQ_NONE && !sg_req_state_valid(state))
		return SG_ERR_INVALID;
	if ((v = calloc(limit ? limit : 1, sizeof(*v))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = store_prepare(t, "SELECT " REQUEST_COLUMNS " FROM requests "
	    "WHERE (state = ?1 OR ?1 IS NULL) AND (key = ?2 OR ?2 IS NULL) "
	    "AND (?3 = 0 OR seq < ?3) ORDER BY seq DESC LIMIT ?4", &s)) != 0)
		goto out;
	if (state != SG_REQ_NONE)
		sg_db_bind_text(s, 1, sg_req_state_str(state));
	if (key != NULL)
		sg_db_bind_text(s, 2, key);
	sg_db_bind_int64(s, 3, before_seq);
	sg_db_bind_int64(s, 4, (int64_t)limit);
	while (n < limit && (rc = sg_db_step(s)) == SG_DB_ROW) {
		if ((r = row_to_request(t, s, &v[n])) != 0)
			goto out;
		n++;
	}
	if (n < limit && rc != SG_DB_DONE) {
		r = store_db_err(t->db, rc);
		goto out;
	}
	*ret = v;
	*ret_n = n;
	v = NULL;
	r = 0;
out:
	sg_db_finalize(s);
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
	struct sg_db_stmt *s = NULL;
	size_t n = 0;
	int rc = SG_DB_DONE, r;

	if ((r = store_prepare(t, sql, &s)) != 0)
		return r;
	sg_db_bind_int64(s, 1, now);
	sg_db_bind_int64(s, 2, (int64_t)max);
	while (n < max && (rc = sg_db_step(s)) == SG_DB_ROW)
		store_copy_col(s, 0, ret_ids[n++], SG_REQUEST_ID_SIZE);
	r = (n == max || rc == SG_DB_DONE) ? 0 : store_db_err(t->db, rc);
	sg_db_finalize(s);
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
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "INSERT INTO policies (sha256, text, first_seen) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (sha256) DO NOTHING", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, sha256_hex);
	sg_db_bind_text(s, 2, text);
	sg_db_bind_int64(s, 3, now);
	r = store_step_done(t, s);
	sg_db_finalize(s);
	return r;
}

int
sg_store_get_policy(struct sg_txn *t, const char *sha256_hex, char **ret)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "SELECT text FROM policies WHERE sha256 = ?1",
	    &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, sha256_hex);
	if ((r = store_step_row(t, s)) == 0)
		r = store_dup_col(s, 0, ret);
	sg_db_finalize(s);
	return r;
}

int
sg_store_set_log_index(struct sg_txn *t, const char *id, uint64_t index)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = store_prepare(t, "UPDATE requests SET log_index = ?2 WHERE "
	    "id = ?1", &s)) != 0)
		return r;
	sg_db_bind_text(s, 1, id);
	sg_db_bind_int64(s, 2, (int64_t)index);
	r = store_changed_one(t, s);
	sg_db_finalize(s);
	return r;
}

int
sg_store_count_pending(struct sg_txn *t, const char *requester,
    uint64_t *ret)
{
	struct sg_db_stmt *s = NULL;
	int rc, r;

	if ((r = store_prepare(t, "SELECT COUNT(*) FROM requests WHERE state = "
	    "'pending' AND (requester = ?1 OR ?1 IS NULL)", &s)) != 0)
		return r;
	if (requester != NULL)
		sg_db_bind_text(s, 1, requester);
	rc = sg_db_step(s);
	if (rc == SG_DB_ROW) {
		*ret = (uint64_t)sg_db_column_int64(s, 0);
		r = 0;
	} else
		r = store_db_err(t->db, rc);
	sg_db_finalize(s);
	return r;
}

int
sg_store_pending_after(struct sg_txn *t, int64_t after_seq, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n, int64_t *ret_last_seq)
{
	struct sg_db_stmt *s = NULL;
	size_t n = 0;
	int64_t last = after_seq;
	int rc = SG_DB_DONE, r;

	if ((r = store_prepare(t, "SELECT id, seq FROM requests WHERE state = "
	    "'pending' AND seq > ?1 ORDER BY seq LIMIT ?2", &s)) != 0)
		return r;
	sg_db_bind_int64(s, 1, after_seq);
	sg_db_bind_int64(s, 2, (int64_t)max);
	while (n < max && (rc = sg_db_step(s)) == SG_DB_ROW) {
		store_copy_col(s, 0, ret_ids[n++], SG_REQUEST_ID_SIZE);
		last = sg_db_column_int64(s, 1);
	}
	r = (n == max || rc == SG_DB_DONE) ? 0 : store_db_err(t->db, rc);
	sg_db_finalize(s);
	if (r == 0) {
		*ret_n = n;
		*ret_last_seq = last;
	}
	return r;
}
