/*
 * What the store's files share (src/store.c, src/store_schema.c,
 * src/store_release.c, src/store_claim.c); not for anyone else: the rest
 * of the daemon sees include/sg_store.h.
 */
#ifndef SG_STORE_INT_H
#define SG_STORE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "sg_db.h"
#include "sg_store.h"

#define STORE_MAX_READERS 32
#define STORE_MAX_BATCH 512
#define STORE_MAX_NOTICES 1024

struct sg_txn {
	struct sg_store *st;
	struct sg_db *db;
	int write;
};

struct store_job {
	sg_store_job_fn fn;
	void *arg;
	int result;
	int kept;                      /* committed, though result says no */
	int done;
	sg_store_done_fn done_fn;      /* asynchronous: told, then freed */
	void *done_arg;
	struct store_job *next;
};

struct sg_store {
	struct sg_db_conf dbconf;      /* how each connection is opened */
	char *where;                   /* the file, or "postgresql" */
	char *path, *conninfo, *password;
	char node[SG_NAME_SIZE];       /* this gateway, in claims */
	int claim_seconds;
	int shared;                    /* other gateways may write too */
	/* The writer: one connection, one thread, batches of jobs. */
	struct sg_txn wtxn;
	pthread_t writer;
	int writer_started;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;          /* work queued, or stopping */
	pthread_cond_t dcond;          /* a batch finished */
	struct store_job *head, *tail;
	int stopping;
	struct sg_store_hooks hooks;
	uint64_t batches, jobs;
	int sync_relaxed;              /* the writer is not on synchronous=FULL */
	/* Readers: a pool of read-only connections. */
	pthread_mutex_t rlock;
	struct sg_db *readers[STORE_MAX_READERS];
	size_t nreaders;
	size_t nopen;
	pthread_cond_t rcond;
	/* PostgreSQL: changes told to and by other gateways, on the
	 * listener thread (store_claim.c). */
	pthread_mutex_t nlock;         /* the queue, the stop flag */
	char notices[STORE_MAX_NOTICES][SG_REQUEST_ID_SIZE];
	char sending[STORE_MAX_NOTICES][SG_REQUEST_ID_SIZE]; /* listener's */
	size_t nnotices;
	uint64_t notices_dropped;
	int wake_fd;                   /* eventfd: queued, or stop; -1 */
	pthread_t listener;
	int listener_started;
	int listener_stop;
	void (*on_change)(void *, const char *);
	void *on_change_arg;
	uint64_t remote_changes;
	/* The change hook (sg_store_set_change_hook), set before writes. */
	sg_store_change_fn change_fn;
	void *change_ctx;
};

/* Brings a new connection's database to SG_STORE_SCHEMA_VERSION
 * (src/store_schema.c); logs why it cannot. */
int store_schema_migrate(struct sg_db *db, const char *where);

/* An SG_ERR_* from the database as it is, logged when it is a failure
 * of the database (SG_ERR_IO, SG_ERR_UNAVAILABLE), not of the data. */
int store_db_err(struct sg_db *db, int r);
int store_prepare(struct sg_txn *t, const char *sql, struct sg_db_stmt **ret);
/* Column values: text into a buffer, text malloc'd (NULL for NULL), a
 * blob malloc'd (NULL, 0 for NULL or empty). */
void store_copy_col(struct sg_db_stmt *s, int col, char *out, size_t cap);
int store_dup_col(struct sg_db_stmt *s, int col, char **ret);
/* A log index: -1 for NULL (no entry). */
int64_t store_index_col(struct sg_db_stmt *s, int col);
int store_blob_col(struct sg_db_stmt *s, int col, uint8_t **ret,
    size_t *ret_len);
/* Steps an UPDATE: 0 if it changed exactly one row, SG_ERR_CONFLICT if
 * none. */
int store_changed_one(struct sg_txn *t, struct sg_db_stmt *s);
/* Steps a statement that returns no row: 0 when it ran to its end. */
int store_step_done(struct sg_txn *t, struct sg_db_stmt *s);
/* Steps a statement for its one row: 0 with the row's columns to read,
 * SG_ERR_NOT_FOUND when there is none. */
int store_step_row(struct sg_txn *t, struct sg_db_stmt *s);
/* Up to max ids from sql, which binds ?1 to now and ?2 to max. */
int store_select_ids(struct sg_txn *t, const char *sql, int64_t now,
    size_t max, char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n);
/* In a write job of a shared store: 0 if this gateway still holds the
 * claim on id (and it is extended), SG_ERR_CONFLICT if not. */
int store_claim_fence(struct sg_txn *t, const char *id);

/* Tells the change hook, if any, of a change just made in t (a write);
 * its error fails the change (src/store_outbox.c). */
int store_changed(struct sg_txn *t, enum sg_store_change_what what,
    const char *id, enum sg_req_state state, const char *officer,
    int approve, const char *reason);

#endif
