/*
 * The signer's record of what it signed (see sg_sigrec.h).
 *
 * Why: ECDSA and RSA-PSS signatures are randomised, so without a record a
 * caller holding the public evidence of a signed request (statement and
 * approvals, all in the transparency log) could ask for any number of
 * fresh signatures over the approved digest, none of them logged.  With
 * the record, the signer makes at most one signature per request and
 * format and hands the same bytes to every later caller, which is also
 * what lets a front that crashed between signing and logging finish.
 *
 * Durability: WAL journal, synchronous=FULL: a COMMIT returns only once
 * the WAL is on disk, and the signer answers only after that.  A crash
 * between the HSM call and the commit loses a signature that never left
 * the process; the next request signs afresh.
 *
 * Where: the signer's own state directory (configured apart from the
 * front's, which the front could rearrange), mode 0700, the database
 * mode 0600 (SQLite gives its -wal and -shm files the database's mode).
 * Nothing is ever deleted: the table is also an audit trail of every
 * signature the HSM made for a request, to be compared with the log.
 *
 * Concurrency: look-ups use a reader connection under `rd_lock`; records
 * are written by one writer thread on its own connection, which commits
 * every record queued meanwhile in one transaction (group commit: one
 * fsync for all the channels signing at that moment, each record under
 * its own savepoint so that one refusal does not undo the others).
 * `claims` holds the request ids being signed, so that two channels asked
 * for the same request one after the other sign once; a batch claims all
 * its record ids at once or waits (never some of them: two batches that
 * overlap cannot hold each other's).  A batch's records are queued
 * together, so that the writer commits them in one transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sg_err.h"
#include "sg_sigrec.h"
#include "sg_util.h"

/* Every channel's batch at once (64 channels of 64 items). */
#define MAX_CLAIMS 4096

/* A record waiting for the writer. */
struct put_job {
	const struct sg_sigrec_entry *e;
	const char *statement;
	size_t statement_len;
	int result;
	int done;
	struct put_job *next;
};

struct sg_sigrec {
	char *path;
	sqlite3 *db;                   /* the writer's */
	sqlite3 *rdb;                  /* look-ups, under rd_lock */
	pthread_mutex_t rd_lock;
	pthread_t writer;
	int writer_started;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;          /* a record queued, or stopping */
	pthread_cond_t dcond;          /* a batch was committed */
	struct put_job *head, *tail;
	int stopping;
	pthread_mutex_t claim_lock;
	pthread_cond_t claim_cond;     /* a claim was released */
	char claims[MAX_CLAIMS][SG_REQUEST_ID_SIZE];
	size_t nclaims;
	/* Prepared once per connection: a batch looks up and inserts
	 * many rows. */
	sqlite3_stmt *rd_lookup;       /* on rdb, under rd_lock */
	sqlite3_stmt *wr_lookup;       /* on db, the writer's */
	sqlite3_stmt *wr_insert;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS signatures ("
    " request TEXT NOT NULL,"
    " format TEXT NOT NULL CHECK (format IN ('raw','cms')),"
    " statement_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest TEXT NOT NULL,"
    " signature BLOB NOT NULL,"
    " cms BLOB,"
    " signed_at INTEGER NOT NULL,"
    " PRIMARY KEY (request, format));";

/* The directory: created 0700 when missing; else ours and closed. */
static int
open_dir(const char *dir, char *errbuf, size_t errlen)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		return sg_err_set(errbuf, errlen, SG_ERR_IO, "signer state "
		    "directory %s: cannot create it: %s", dir, strerror(errno));
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		int not_dir = errno == ELOOP || errno == ENOTDIR;
		return sg_err_set(errbuf, errlen, not_dir ? SG_ERR_PERMISSIONS :
		    SG_ERR_IO, "signer state directory %s: %s", dir, not_dir ?
		    "not a directory (a symbolic link or a file)" :
		    strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		return sg_err_set(errbuf, errlen, SG_ERR_IO, "signer state "
		    "directory %s: %s", dir, strerror(errno));
	}
	close(fd);
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		return sg_err_set(errbuf, errlen, SG_ERR_PERMISSIONS, "signer "
		    "state directory %s must be owned by us (uid %u) with mode "
		    "0700; it is uid %u, mode %04o", dir, (unsigned)geteuid(),
		    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	}
	return 0;
}

/* The database file: created 0600 before SQLite opens it (SQLite would
 * create it 0644 less the umask), else checked like the directory. */
static int
open_file(const char *path, char *errbuf, size_t errlen)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600)) < 0) {
		return sg_err_set(errbuf, errlen,
		    errno == ELOOP ? SG_ERR_PERMISSIONS : SG_ERR_IO, "%s: %s",
		    path, errno == ELOOP ? "a symbolic link" : strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		close(fd);
		return sg_err_set(errbuf, errlen, SG_ERR_IO, "%s: %s", path,
		    strerror(errno));
	}
	close(fd);
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		return sg_err_set(errbuf, errlen, SG_ERR_PERMISSIONS, "%s must "
		    "be a file owned by us (uid %u) with mode 0600; it is uid "
		    "%u, mode %04o", path, (unsigned)geteuid(),
		    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	}
	return 0;
}

static void *writer_main(void *arg);

int
sg_sigrec_open(const char *dir, struct sg_sigrec **ret, char *errbuf,
    size_t errlen)
{
	struct sg_sigrec *rec;
	pthread_condattr_t ca;
	char *err = NULL;
	int r;

	sg_err_set(errbuf, errlen, 0, "%s", "");
	if (dir == NULL || dir[0] == '\0' || ret == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "no signer "
		    "state directory");
	}
	if ((r = open_dir(dir, errbuf, errlen)) != 0)
		return r;
	if ((rec = calloc(1, sizeof(*rec))) == NULL)
		return SG_ERR_NOMEM;
	pthread_mutex_init(&rec->rd_lock, NULL);
	pthread_mutex_init(&rec->qlock, NULL);
	pthread_cond_init(&rec->qcond, NULL);
	pthread_cond_init(&rec->dcond, NULL);
	pthread_mutex_init(&rec->claim_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rec->claim_cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((rec->path = sg_path_join(dir, SG_SIGREC_FILE)) == NULL) {
		r = SG_ERR_NOMEM;
		goto fail;
	}
	if ((r = open_file(rec->path, errbuf, errlen)) != 0)
		goto fail;
	if (sqlite3_open_v2(rec->path, &rec->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto db_fail;
	sqlite3_busy_timeout(rec->db, 10000);
	if (sqlite3_exec(rec->db,
	    "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=FULL;"
	    "PRAGMA trusted_schema=OFF;", NULL, NULL, &err) != SQLITE_OK ||
	    sqlite3_exec(rec->db, schema, NULL, NULL, &err) != SQLITE_OK)
		goto db_fail;
	if (sqlite3_open_v2(rec->path, &rec->rdb, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		r = sg_err_set(errbuf, errlen, SG_ERR_IO, "%s: %s", rec->path,
		    rec->rdb != NULL ? sqlite3_errmsg(rec->rdb) :
		    "cannot open");
		goto fail;
	}
	sqlite3_busy_timeout(rec->rdb, 10000);
	if (pthread_create(&rec->writer, NULL, writer_main, rec) != 0) {
		r = sg_err_set(errbuf, errlen, SG_ERR_INTERNAL, "cannot start "
		    "the record's writer");
		goto fail;
	}
	rec->writer_started = 1;
	*ret = rec;
	return 0;
db_fail:
	r = sg_err_set(errbuf, errlen, SG_ERR_IO, "%s: %s", rec->path,
	    err != NULL ? err : rec->db != NULL ? sqlite3_errmsg(rec->db) :
	    "cannot open");
	sqlite3_free(err);
fail:
	sg_sigrec_close(rec);
	return r;
}

void
sg_sigrec_close(struct sg_sigrec *rec)
{
	if (rec == NULL)
		return;
	if (rec->writer_started) {
		pthread_mutex_lock(&rec->qlock);
		rec->stopping = 1;
		pthread_cond_broadcast(&rec->qcond);
		pthread_mutex_unlock(&rec->qlock);
		pthread_join(rec->writer, NULL);
	}
	sqlite3_finalize(rec->rd_lookup);
	sqlite3_finalize(rec->wr_lookup);
	sqlite3_finalize(rec->wr_insert);
	sqlite3_close_v2(rec->rdb);
	sqlite3_close_v2(rec->db);
	pthread_mutex_destroy(&rec->rd_lock);
	pthread_mutex_destroy(&rec->qlock);
	pthread_cond_destroy(&rec->qcond);
	pthread_cond_destroy(&rec->dcond);
	pthread_mutex_destroy(&rec->claim_lock);
	pthread_cond_destroy(&rec->claim_cond);
	free(rec->path);
	free(rec);
}

static int
held(const struct sg_sigrec *rec, const char *request)
{
	size_t i;

	for (i = 0; i < rec->nclaims; i++)
		if (strcmp(rec->claims[i], request) == 0)
			return 1;
	return 0;
}

int
sg_sigrec_claim(struct sg_sigrec *rec, const char *request)
{
	struct timespec until;
	int r = 0;

	if (strnlen(request, sizeof(rec->claims[0])) >=
	    sizeof(rec->claims[0]))
		return SG_ERR_INVALID;
	sg_mono_deadline(&until, SG_SIGREC_CLAIM_WAIT_MS);
	pthread_mutex_lock(&rec->claim_lock);
	while (held(rec, request)) {
		if (pthread_cond_timedwait(&rec->claim_cond, &rec->claim_lock,
		    &until) == ETIMEDOUT && held(rec, request)) {
			r = SG_ERR_TIMEOUT;
			goto out;
		}
	}
	if (rec->nclaims == MAX_CLAIMS) {
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	snprintf(rec->claims[rec->nclaims++], sizeof(rec->claims[0]), "%s",
	    request);
out:
	pthread_mutex_unlock(&rec->claim_lock);
	return r;
}

void
sg_sigrec_release(struct sg_sigrec *rec, const char *request)
{
	size_t i;

	pthread_mutex_lock(&rec->claim_lock);
	for (i = 0; i < rec->nclaims; i++) {
		if (strcmp(rec->claims[i], request) == 0) {
			memcpy(rec->claims[i], rec->claims[--rec->nclaims],
			    sizeof(rec->claims[0]));
			break;
		}
	}
	pthread_cond_broadcast(&rec->claim_cond);
	pthread_mutex_unlock(&rec->claim_lock);
}

static int
none_held(const struct sg_sigrec *rec, const char *const *ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (held(rec, ids[i]))
			return 0;
	return rec->nclaims + n <= MAX_CLAIMS;
}

int
sg_sigrec_claim_many(struct sg_sigrec *rec, const char *const *ids,
    size_t n)
{
	struct timespec until;
	size_t i;
	int r = 0;

	if (n > MAX_CLAIMS)
		return SG_ERR_INVALID;
	for (i = 0; i < n; i++)
		if (strnlen(ids[i], sizeof(rec->claims[0])) >=
		    sizeof(rec->claims[0]))
			return SG_ERR_INVALID;
	sg_mono_deadline(&until, SG_SIGREC_CLAIM_WAIT_MS);
	pthread_mutex_lock(&rec->claim_lock);
	while (!none_held(rec, ids, n)) {
		if (pthread_cond_timedwait(&rec->claim_cond, &rec->claim_lock,
		    &until) == ETIMEDOUT && !none_held(rec, ids, n)) {
			r = SG_ERR_TIMEOUT;
			goto out;
		}
	}
	for (i = 0; i < n; i++)
		snprintf(rec->claims[rec->nclaims++], sizeof(rec->claims[0]),
		    "%s", ids[i]);
out:
	pthread_mutex_unlock(&rec->claim_lock);
	return r;
}

void
sg_sigrec_release_many(struct sg_sigrec *rec, const char *const *ids,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		sg_sigrec_release(rec, ids[i]);
}

void
sg_sigrec_item_id(const char *kind, const char *id, uint64_t position,
    char out[SG_REQUEST_ID_SIZE])
{
	char text[128], hex[SG_SHA256_HEX_SIZE];
	uint8_t h[32];
	int n;

	n = snprintf(text, sizeof(text), "signgate-item %s %s %llu", kind, id,
	    (unsigned long long)position);
	sg_sha256(text, n > 0 && (size_t)n < sizeof(text) ? (size_t)n : 0, h);
	sg_hex_encode(h, sizeof(h), hex);
	memcpy(out, hex, SG_REQUEST_ID_LEN);
	out[SG_REQUEST_ID_LEN] = '\0';
}

static int
db_err(struct sg_sigrec *rec, sqlite3 *db, const char *what)
{
	sg_log_error("signer: %s: %s: %s", rec->path, what,
	    sqlite3_errmsg(db));
	return SG_ERR_IO;
}

static void
copy_text(sqlite3_stmt *s, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}

/* Fills e from a row (format, statement_sha256, key, digest_alg, digest,
 * signature, cms, signed_at). */
static int
row_entry(sqlite3_stmt *s, const char *request, struct sg_sigrec_entry *e)
{
	const void *b;
	int n;

	memset(e, 0, sizeof(*e));
	snprintf(e->request, sizeof(e->request), "%s", request);
	if (sg_format_parse((const char *)sqlite3_column_text(s, 0),
	    &e->format) != 0) {
		sg_log_error("signer: the signature record for request %s has "
		    "a format that is not one; refused", request);
		return SG_ERR_IO;
	}
	copy_text(s, 1, e->statement_sha256, sizeof(e->statement_sha256));
	copy_text(s, 2, e->key, sizeof(e->key));
	copy_text(s, 3, e->digest_alg, sizeof(e->digest_alg));
	copy_text(s, 4, e->digest_hex, sizeof(e->digest_hex));
	b = sqlite3_column_blob(s, 5);
	n = sqlite3_column_bytes(s, 5);
	if (b == NULL || n <= 0 || (size_t)n > sizeof(e->sig))
		return SG_ERR_IO;
	memcpy(e->sig, b, (size_t)n);
	e->sig_len = (size_t)n;
	if (sqlite3_column_type(s, 6) != SQLITE_NULL) {
		b = sqlite3_column_blob(s, 6);
		n = sqlite3_column_bytes(s, 6);
		if (b == NULL || n <= 0)
			return SG_ERR_IO;
		if ((e->cms = malloc((size_t)n)) == NULL)
			return SG_ERR_NOMEM;
		memcpy(e->cms, b, (size_t)n);
		e->cms_len = (size_t)n;
	}
	e->signed_at = sqlite3_column_int64(s, 7);
	return 0;
}

/* The statement sql on db, prepared at its first use and kept in *slot
 * (reset after each use); NULL on failure. */
static sqlite3_stmt *
prepared(sqlite3 *db, sqlite3_stmt **slot, const char *sql)
{
	if (*slot == NULL && sqlite3_prepare_v2(db, sql, -1, slot,
	    NULL) != SQLITE_OK) {
		sqlite3_finalize(*slot);
		*slot = NULL;
	}
	return *slot;
}

/* The look-up, on connection db (which the caller holds). */
static int
lookup(struct sg_sigrec *rec, sqlite3 *db, const char *request,
    enum sg_format format, const char *statement_sha256,
    struct sg_sigrec_entry *ret)
{
	static const char sql[] = "SELECT format, statement_sha256, key, "
	    "digest_alg, digest, signature, cms, signed_at FROM signatures "
	    "WHERE request = ?1 ORDER BY format";
	sqlite3_stmt *s = NULL;
	struct sg_sigrec_entry e;
	int rc, r = SG_ERR_NOT_FOUND, found = 0;

	memset(ret, 0, sizeof(*ret));
	if ((s = prepared(db, db == rec->rdb ? &rec->rd_lookup :
	    &rec->wr_lookup, sql)) == NULL)
		return db_err(rec, db, "look-up");
	sqlite3_bind_text(s, 1, request, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((r = row_entry(s, request, &e)) != 0) {
			sg_sigrec_entry_clear(&e);
			break;
		}
		if (strcmp(e.statement_sha256, statement_sha256) != 0) {
			/* A request id is bound to one statement. */
			sg_sigrec_entry_clear(ret);
			*ret = e;
			r = SG_ERR_CONFLICT;
			break;
		}
		if (e.format == format && !found) {
			*ret = e;
			found = 1;
		} else
			sg_sigrec_entry_clear(&e);
		r = found ? 0 : SG_ERR_NOT_FOUND;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = db_err(rec, db, "look-up");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (r != 0 && r != SG_ERR_CONFLICT)
		sg_sigrec_entry_clear(ret);
	return r;
}

int
sg_sigrec_get(struct sg_sigrec *rec, const char *request,
    enum sg_format format, const char *statement_sha256,
    struct sg_sigrec_entry *ret)
{
	int r;

	pthread_mutex_lock(&rec->rd_lock);
	r = lookup(rec, rec->rdb, request, format, statement_sha256, ret);
	pthread_mutex_unlock(&rec->rd_lock);
	return r;
}

static int
insert(struct sg_sigrec *rec, const struct sg_sigrec_entry *e,
    const char *statement, size_t statement_len)
{
	static const char sql[] = "INSERT INTO signatures (request, format, "
	    "statement_sha256, statement, key, digest_alg, digest, signature, "
	    "cms, signed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	sqlite3_stmt *s = NULL;
	int rc;

	if ((s = prepared(rec->db, &rec->wr_insert, sql)) == NULL)
		return db_err(rec, rec->db, "insert");
	sqlite3_bind_text(s, 1, e->request, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, sg_format_str(e->format), -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(s, 3, e->statement_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, statement, (int)statement_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, e->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, e->digest_alg, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 7, e->digest_hex, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 8, e->sig, (int)e->sig_len, SQLITE_STATIC);
	if (e->cms != NULL)
		sqlite3_bind_blob(s, 9, e->cms, (int)e->cms_len,
		    SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 9);
	sqlite3_bind_int64(s, 10, e->signed_at);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_CONSTRAINT)
		return SG_ERR_CONFLICT;
	return rc == SQLITE_DONE ? 0 : db_err(rec, rec->db, "insert");
}

/* One record inside the batch's transaction, under its own savepoint. */
static int
put_one(struct sg_sigrec *rec, const struct put_job *j)
{
	struct sg_sigrec_entry old;
	int r;

	if (sqlite3_exec(rec->db, "SAVEPOINT rec", NULL, NULL,
	    NULL) != SQLITE_OK)
		return db_err(rec, rec->db, "savepoint");
	r = lookup(rec, rec->db, j->e->request, j->e->format,
	    j->e->statement_sha256, &old);
	sg_sigrec_entry_clear(&old);
	if (r == 0 || r == SG_ERR_CONFLICT)
		r = SG_ERR_CONFLICT;
	else if (r == SG_ERR_NOT_FOUND)
		r = insert(rec, j->e, j->statement, j->statement_len);
	if (r != 0)
		(void)sqlite3_exec(rec->db, "ROLLBACK TO rec", NULL, NULL,
		    NULL);
	if (sqlite3_exec(rec->db, "RELEASE rec", NULL, NULL,
	    NULL) != SQLITE_OK && r == 0)
		r = db_err(rec, rec->db, "release");
	return r;
}

/* Commits a batch: each job's result is its own, unless the commit
 * fails, which fails every one. */
static void
run_batch(struct sg_sigrec *rec, struct put_job *jobs)
{
	struct put_job *j;

	if (sqlite3_exec(rec->db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL) != SQLITE_OK) {
		db_err(rec, rec->db, "begin");
		for (j = jobs; j != NULL; j = j->next)
			j->result = SG_ERR_IO;
		return;
	}
	for (j = jobs; j != NULL; j = j->next)
		j->result = put_one(rec, j);
	if (sqlite3_exec(rec->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_err(rec, rec->db, "commit");
		for (j = jobs; j != NULL; j = j->next)
			if (j->result == 0)
				j->result = SG_ERR_IO;
	}
	if (!sqlite3_get_autocommit(rec->db))
		(void)sqlite3_exec(rec->db, "ROLLBACK", NULL, NULL, NULL);
}

static void *
writer_main(void *arg)
{
	struct sg_sigrec *rec = arg;
	struct put_job *jobs, *j, *next;

	pthread_mutex_lock(&rec->qlock);
	for (;;) {
		while (rec->head == NULL && !rec->stopping)
			pthread_cond_wait(&rec->qcond, &rec->qlock);
		if (rec->head == NULL)
			break;
		jobs = rec->head;
		rec->head = rec->tail = NULL;
		pthread_mutex_unlock(&rec->qlock);
		run_batch(rec, jobs);
		pthread_mutex_lock(&rec->qlock);
		for (j = jobs; j != NULL; j = next) {
			next = j->next;
			j->done = 1;
		}
		pthread_cond_broadcast(&rec->dcond);
	}
	pthread_mutex_unlock(&rec->qlock);
	return NULL;
}

static int
entry_valid(const struct sg_sigrec_entry *e, size_t statement_len)
{
	return e->sig_len > 0 && e->sig_len <= sizeof(e->sig) &&
	    statement_len <= INT32_MAX && e->cms_len <= INT32_MAX &&
	    (e->cms == NULL) == (e->cms_len == 0) &&
	    sg_format_valid(e->format);
}

int
sg_sigrec_put_many(struct sg_sigrec *rec,
    const struct sg_sigrec_entry *es, size_t n, const char *statement,
    size_t statement_len, int *results)
{
	struct put_job *jobs;
	size_t i, done;
	int r = 0;

	for (i = 0; i < n; i++)
		if (!entry_valid(&es[i], statement_len))
			r = SG_ERR_INVALID;
	if (r == 0 && n > 0 && (jobs = calloc(n, sizeof(*jobs))) == NULL)
		r = SG_ERR_NOMEM;
	if (r != 0 || n == 0) {
		for (i = 0; i < n; i++)
			results[i] = r;
		return r;
	}
	for (i = 0; i < n; i++) {
		jobs[i].e = &es[i];
		jobs[i].statement = statement;
		jobs[i].statement_len = statement_len;
		jobs[i].next = i + 1 < n ? &jobs[i + 1] : NULL;
	}
	pthread_mutex_lock(&rec->qlock);
	if (rec->stopping)
		r = SG_ERR_UNAVAILABLE;
	else {
		/* All queued at once: the writer takes them together. */
		if (rec->tail != NULL)
			rec->tail->next = &jobs[0];
		else
			rec->head = &jobs[0];
		rec->tail = &jobs[n - 1];
		pthread_cond_signal(&rec->qcond);
		do {
			for (done = 0; done < n && jobs[done].done; done++)
				;
			if (done < n)
				pthread_cond_wait(&rec->dcond, &rec->qlock);
		} while (done < n);
	}
	pthread_mutex_unlock(&rec->qlock);
	for (i = 0; i < n; i++)
		results[i] = r != 0 ? r : jobs[i].result;
	free(jobs);
	return r;
}

int
sg_sigrec_put(struct sg_sigrec *rec, const struct sg_sigrec_entry *e,
    const char *statement, size_t statement_len)
{
	int r, result;

	r = sg_sigrec_put_many(rec, e, 1, statement, statement_len, &result);
	return r != 0 ? r : result;
}

void
sg_sigrec_entry_clear(struct sg_sigrec_entry *e)
{
	if (e == NULL)
		return;
	free(e->cms);
	explicit_bzero(e, sizeof(*e));
}
