/*
 * One database connection, SQLite or PostgreSQL, behind one small API: the
 * store and the log write their SQL once, in the dialect both servers
 * share (numbered parameters ?1, ?2 ...; ON CONFLICT ... DO; no
 * engine-specific functions), and run it on either.  What differs (the
 * schema's types, migrations, transactions that lock) is asked of
 * sg_db_backend() by the caller.
 *
 * A statement is prepared, bound (parameters from 1), stepped (rows come
 * one at a time; columns from 0) and finalized; sg_db_reset() runs it
 * again with new bindings.  Text and blobs are copied when bound.
 *
 * Statements stay prepared: each connection keeps up to SG_DB_CACHE_MAX
 * of them, found again by their SQL text, so that a statement the store
 * runs at every request is compiled once per connection (SQLite: one
 * sqlite3_stmt; PostgreSQL: a named server-side statement, then one round
 * trip per execution).  sg_db_finalize() gives a cached statement back,
 * reset and without bindings; sg_db_prepare() of SQL whose cached
 * statement is still in use (a nested use) hands out one of its own.
 * What a statement does and how it fails do not depend on the cache.
 *
 * Errors are SG_ERR_*: a constraint (unique, check, foreign key) is
 * SG_ERR_CONFLICT; a lost connection, a server shutting down, a
 * serialization failure, a deadlock or a lock timeout is
 * SG_ERR_UNAVAILABLE (try again later: the caller answers 503); anything
 * else is SG_ERR_IO, with the server's message in the log.  After a
 * failure, sg_db_broken() says whether the connection itself is gone;
 * sg_db_reconnect() then tries once to open it again (on PostgreSQL, a
 * new session: the statements prepared in the old one are forgotten, and
 * prepared again when next run).
 *
 * PostgreSQL: a connection is opened with the conninfo and the password
 * given apart (never in the conninfo, never logged); connect_timeout
 * defaults to 5 s, and each session sets lock_timeout and
 * statement_timeout so that no call waits for ever on a stuck server.
 */
#ifndef SG_DB_H
#define SG_DB_H

#include <stddef.h>
#include <stdint.h>

enum sg_db_backend {
	SG_DB_SQLITE = 1,
	SG_DB_POSTGRESQL = 2,
};

#define SG_DB_DONE 0               /* sg_db_step: no (more) rows */
#define SG_DB_ROW 1                /* sg_db_step: a row is there */
/* Statements kept prepared per connection; beyond, the least recently
 * used one that is not in use is finalized. */
#define SG_DB_CACHE_MAX 128

struct sg_db_conf {
	enum sg_db_backend backend;
	const char *path;              /* SQLite: the database file */
	const char *conninfo;          /* PostgreSQL: libpq conninfo */
	const char *password;          /* PostgreSQL: NULL for none */
	const char *application;       /* PostgreSQL: application_name */
};

struct sg_db;
struct sg_db_stmt;

/* write: SQLite opens read-write and creates the file (WAL,
 * synchronous=FULL); otherwise read-only.  PostgreSQL ignores it. */
int sg_db_open(const struct sg_db_conf *c, int write, struct sg_db **ret);
void sg_db_close(struct sg_db *db);
enum sg_db_backend sg_db_backend(const struct sg_db *db);
const char *sg_db_backend_name(enum sg_db_backend b);

/* One or more statements without parameters or rows. */
int sg_db_exec(struct sg_db *db, const char *sql);
int sg_db_prepare(struct sg_db *db, const char *sql,
    struct sg_db_stmt **ret);
void sg_db_bind_text(struct sg_db_stmt *s, int i, const char *v);
void sg_db_bind_int64(struct sg_db_stmt *s, int i, int64_t v);
void sg_db_bind_blob(struct sg_db_stmt *s, int i, const void *v, size_t n);
void sg_db_bind_null(struct sg_db_stmt *s, int i);
/* SG_DB_ROW, SG_DB_DONE or SG_ERR_*. */
int sg_db_step(struct sg_db_stmt *s);
/* Ready to run again; the bindings are kept until bound anew. */
void sg_db_reset(struct sg_db_stmt *s);
int sg_db_column_null(struct sg_db_stmt *s, int col);
int64_t sg_db_column_int64(struct sg_db_stmt *s, int col);
/* NULL for SQL NULL; valid until the next step, reset or finalize. */
const char *sg_db_column_text(struct sg_db_stmt *s, int col);
const void *sg_db_column_blob(struct sg_db_stmt *s, int col);
size_t sg_db_column_bytes(struct sg_db_stmt *s, int col);
/* Rows the statement's last step inserted, updated or deleted. */
int64_t sg_db_changes(struct sg_db_stmt *s);
void sg_db_finalize(struct sg_db_stmt *s);

/* What the statement cache did on this connection (tests, diagnosis). */
struct sg_db_stats {
	uint64_t prepared;     /* compiled: SQLite prepares, PostgreSQL
				* server-side (named) prepares */
	uint64_t reused;       /* sg_db_prepare() answered from the cache */
	uint64_t uncached;     /* handed out apart: its SQL in use already,
				* or the cache full of statements in use */
	uint64_t evicted;      /* finalized to make room */
};
void sg_db_stats(const struct sg_db *db, struct sg_db_stats *ret);

/* The newest error text (for logs; never holds the password). */
const char *sg_db_errmsg(struct sg_db *db);
int sg_db_broken(struct sg_db *db);
int sg_db_reconnect(struct sg_db *db);

/* The driver's handle, for the SQLite-only steps of the store's schema
 * history and for tests; NULL on the other backend. */
struct sqlite3;
struct sqlite3 *sg_db_sqlite(struct sg_db *db);
/* PostgreSQL: the socket to wait on for notifications, and the next
 * notification's payload on channel (0 and *ret malloc'd; SG_ERR_NOT_FOUND
 * if none is waiting).  SG_ERR_INVALID on SQLite. */
int sg_db_socket(struct sg_db *db);
int sg_db_notification(struct sg_db *db, const char *channel, char **ret);

#endif
