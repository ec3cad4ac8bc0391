/*
 * The database API's front: bindings are kept here (copied), every call
 * goes to the driver of the connection's backend (src/db_sqlite.c,
 * src/db_pg.c).  Nothing here knows SQL.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_util.h"
#include "db_int.h"

void
sg_db_set_err(struct sg_db *db, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(db->err, sizeof(db->err), fmt, ap);
	va_end(ap);
	/* Server messages end with a newline: one log line each. */
	n = strlen(db->err);
	while (n > 0 && (db->err[n - 1] == '\n' || db->err[n - 1] == ' '))
		db->err[--n] = '\0';
}

const char *
sg_db_backend_name(enum sg_db_backend b)
{
	switch (b) {
	case SG_DB_SQLITE:
		return "sqlite";
	case SG_DB_POSTGRESQL:
		return "postgresql";
	}
	return "?";
}

int
sg_db_open(const struct sg_db_conf *c, int write, struct sg_db **ret)
{
	struct sg_db *db;
	int r;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return SG_ERR_NOMEM;
	db->backend = c->backend;
	switch (c->backend) {
	case SG_DB_SQLITE:
		db->ops = &sg_db_sqlite_ops;
		break;
	case SG_DB_POSTGRESQL:
		db->ops = &sg_db_pg_ops;
		break;
	default:
		free(db);
		return SG_ERR_INVALID;
	}
	if ((r = db->ops->open(c, write, db)) != 0) {
		sg_log_error("%s: %s", c->backend == SG_DB_SQLITE ? c->path :
		    "postgresql", sg_db_errmsg(db));
		db->ops->close(db);
		free(db);
		return r;
	}
	*ret = db;
	return 0;
}

void
sg_db_close(struct sg_db *db)
{
	if (db == NULL)
		return;
	db->ops->close(db);
	free(db);
}

enum sg_db_backend
sg_db_backend(const struct sg_db *db)
{
	return db->backend;
}

int
sg_db_exec(struct sg_db *db, const char *sql)
{
	return db->ops->exec(db, sql);
}

int
sg_db_prepare(struct sg_db *db, const char *sql, struct sg_db_stmt **ret)
{
	struct sg_db_stmt *s;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SG_ERR_NOMEM;
	s->db = db;
	if ((r = db->ops->prepare(db, sql, s)) != 0) {
		sg_db_finalize(s);
		return r;
	}
	*ret = s;
	return 0;
}

static struct sg_db_value *
slot(struct sg_db_stmt *s, int i)
{
	struct sg_db_value *v;

	if (i < 1 || i > SG_DB_MAX_PARAMS)
		return NULL;       /* a bug: the statement then fails */
	v = &s->v[i];
	free(v->p);
	memset(v, 0, sizeof(*v));
	if (i > s->nparams)
		s->nparams = i;
	return v;
}

void
sg_db_bind_null(struct sg_db_stmt *s, int i)
{
	if (slot(s, i) != NULL)
		s->db->ops->bind(s, i);
}

void
sg_db_bind_int64(struct sg_db_stmt *s, int i, int64_t x)
{
	struct sg_db_value *v = slot(s, i);

	if (v == NULL)
		return;
	v->type = SG_DB_V_INT;
	v->i = x;
	s->db->ops->bind(s, i);
}

/* Text and blobs are copied: the caller's buffer may go first. */
static void
bind_bytes(struct sg_db_stmt *s, int i, const void *p, size_t n, int text)
{
	struct sg_db_value *v = slot(s, i);

	if (v == NULL)
		return;
	if (p == NULL) {
		s->db->ops->bind(s, i);
		return;
	}
	if ((v->p = malloc(n + 1)) == NULL) {
		v->type = SG_DB_V_NULL;   /* fails on NOT NULL, never wrong */
		s->db->ops->bind(s, i);
		return;
	}
	memcpy(v->p, p, n);
	v->p[n] = '\0';
	v->n = n;
	v->type = text ? SG_DB_V_TEXT : SG_DB_V_BLOB;
	s->db->ops->bind(s, i);
}

void
sg_db_bind_text(struct sg_db_stmt *s, int i, const char *v)
{
	bind_bytes(s, i, v, v != NULL ? strlen(v) : 0, 1);
}

void
sg_db_bind_blob(struct sg_db_stmt *s, int i, const void *v, size_t n)
{
	/* As SQLite does: a NULL pointer is SQL NULL. */
	bind_bytes(s, i, v, n, 0);
}

int
sg_db_step(struct sg_db_stmt *s)
{
	return s->db->ops->step(s);
}

void
sg_db_reset(struct sg_db_stmt *s)
{
	s->db->ops->reset(s);
}

int
sg_db_column_null(struct sg_db_stmt *s, int col)
{
	return s->db->ops->column_null(s, col);
}

int64_t
sg_db_column_int64(struct sg_db_stmt *s, int col)
{
	return s->db->ops->column_int64(s, col);
}

const char *
sg_db_column_text(struct sg_db_stmt *s, int col)
{
	return s->db->ops->column_text(s, col);
}

const void *
sg_db_column_blob(struct sg_db_stmt *s, int col)
{
	size_t n;

	return s->db->ops->column_blob(s, col, &n);
}

size_t
sg_db_column_bytes(struct sg_db_stmt *s, int col)
{
	size_t n = 0;

	(void)s->db->ops->column_blob(s, col, &n);
	return n;
}

int64_t
sg_db_changes(struct sg_db_stmt *s)
{
	return s->db->ops->changes(s);
}

void
sg_db_finalize(struct sg_db_stmt *s)
{
	int i;

	if (s == NULL)
		return;
	s->db->ops->finalize(s);
	for (i = 0; i <= SG_DB_MAX_PARAMS; i++)
		free(s->v[i].p);
	free(s->sql);
	free(s);
}

const char *
sg_db_errmsg(struct sg_db *db)
{
	return db->err[0] != '\0' ? db->err : "no error";
}

int
sg_db_broken(struct sg_db *db)
{
	return db->ops->broken(db);
}

int
sg_db_reconnect(struct sg_db *db)
{
	return db->ops->reconnect(db);
}

struct sqlite3 *
sg_db_sqlite(struct sg_db *db)
{
	return db->backend == SG_DB_SQLITE ? db->drv : NULL;
}
