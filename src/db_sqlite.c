/*
 * The SQLite driver of src/db.c: a thin layer over sqlite3_*.  A writing
 * connection is in WAL mode with synchronous=FULL (a COMMIT returns once
 * the WAL is on disk); every connection waits up to 10 s for a lock and
 * does not trust the schema's SQL functions.
 *
 * A statement kept in the connection's cache (src/db.c) is prepared with
 * SQLITE_PREPARE_PERSISTENT and given back reset, its bindings cleared
 * before db.c frees the values they point to.  A schema changed since it
 * was prepared (by a migration, or another connection) is no concern:
 * statements of sqlite3_prepare_v3 are compiled again by the step that
 * finds the schema changed.
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "sg_db.h"
#include "sg_err.h"
#include "db_int.h"

#define DB(db) ((sqlite3 *)(db)->drv)
#define ST(s) ((sqlite3_stmt *)(s)->drv)

static int
lite_err(struct sg_db *db, int rc)
{
	sg_db_set_err(db, "%s", db->drv != NULL ? sqlite3_errmsg(DB(db)) :
	    sqlite3_errstr(rc));
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return SG_ERR_CONFLICT;
	case SQLITE_NOMEM:
		return SG_ERR_NOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SG_ERR_UNAVAILABLE;
	default:
		return SG_ERR_IO;
	}
}

static int
lite_open(const struct sg_db_conf *c, int write, struct sg_db *db)
{
	sqlite3 *h = NULL;
	int rc;

	rc = sqlite3_open_v2(c->path, &h, (write ? SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX,
	    NULL);
	db->drv = h;
	if (rc != SQLITE_OK)
		return lite_err(db, rc);
	sqlite3_busy_timeout(h, 10000);
	rc = sqlite3_exec(h, write ?
	    "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=FULL;"
	    "PRAGMA trusted_schema=OFF;"
	    "PRAGMA foreign_keys=ON;" :
	    "PRAGMA trusted_schema=OFF;", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : lite_err(db, rc);
}

static void
lite_close(struct sg_db *db)
{
	sqlite3_close_v2(DB(db));
	db->drv = NULL;
}

static int
lite_exec(struct sg_db *db, const char *sql)
{
	int rc = sqlite3_exec(DB(db), sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : lite_err(db, rc);
}

static int
lite_prepare(struct sg_db *db, const char *sql, struct sg_db_stmt *s,
    int keep)
{
	sqlite3_stmt *h = NULL;
	int rc = sqlite3_prepare_v3(DB(db), sql, -1,
	    keep ? SQLITE_PREPARE_PERSISTENT : 0, &h, NULL);

	s->drv = h;
	if (rc != SQLITE_OK)
		return lite_err(db, rc);
	db->stats.prepared++;
	return 0;
}

static void
lite_bind(struct sg_db_stmt *s, int i)
{
	const struct sg_db_value *v = &s->v[i];

	switch (v->type) {
	case SG_DB_V_NULL:
		sqlite3_bind_null(ST(s), i);
		break;
	case SG_DB_V_INT:
		sqlite3_bind_int64(ST(s), i, v->i);
		break;
	case SG_DB_V_TEXT:
		sqlite3_bind_text(ST(s), i, v->p, (int)v->n, SQLITE_STATIC);
		break;
	case SG_DB_V_BLOB:
		sqlite3_bind_blob(ST(s), i, v->p, (int)v->n, SQLITE_STATIC);
		break;
	}
}

static int
lite_step(struct sg_db_stmt *s)
{
	int rc = sqlite3_step(ST(s));

	if (rc == SQLITE_ROW)
		return SG_DB_ROW;
	if (rc == SQLITE_DONE)
		return SG_DB_DONE;
	return lite_err(s->db, rc);
}

static void
lite_reset(struct sg_db_stmt *s)
{
	sqlite3_reset(ST(s));
}

static int
lite_column_null(struct sg_db_stmt *s, int col)
{
	return sqlite3_column_type(ST(s), col) == SQLITE_NULL;
}

static int64_t
lite_column_int64(struct sg_db_stmt *s, int col)
{
	return sqlite3_column_int64(ST(s), col);
}

static const char *
lite_column_text(struct sg_db_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(ST(s), col);
}

static const void *
lite_column_blob(struct sg_db_stmt *s, int col, size_t *ret_len)
{
	const void *p = sqlite3_column_blob(ST(s), col);
	int n = sqlite3_column_bytes(ST(s), col);

	*ret_len = n > 0 ? (size_t)n : 0;
	return p;
}

static int64_t
lite_changes(struct sg_db_stmt *s)
{
	return sqlite3_changes(DB(s->db));
}

/* The outcome of a failed step was returned by that step already. */
static void
lite_release(struct sg_db_stmt *s)
{
	(void)sqlite3_reset(ST(s));
	(void)sqlite3_clear_bindings(ST(s));
}

static void
lite_finalize(struct sg_db_stmt *s)
{
	sqlite3_finalize(ST(s));
	s->drv = NULL;
}

/* A file does not go away as a server does. */
static int
lite_broken(struct sg_db *db)
{
	(void)db;
	return 0;
}

static int
lite_reconnect(struct sg_db *db)
{
	(void)db;
	return 0;
}

const struct sg_db_ops sg_db_sqlite_ops = {
	.open = lite_open,
	.close = lite_close,
	.exec = lite_exec,
	.prepare = lite_prepare,
	.bind = lite_bind,
	.step = lite_step,
	.reset = lite_reset,
	.column_null = lite_column_null,
	.column_int64 = lite_column_int64,
	.column_text = lite_column_text,
	.column_blob = lite_column_blob,
	.changes = lite_changes,
	.release = lite_release,
	.finalize = lite_finalize,
	.broken = lite_broken,
	.reconnect = lite_reconnect,
};
