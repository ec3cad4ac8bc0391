/*
 * The database API's front: bindings are kept here (copied), every call
 * goes to the driver of the connection's backend (src/db_sqlite.c,
 * src/db_pg.c).  Nothing here knows SQL.
 *
 * The statement cache.  Each connection keeps up to SG_DB_CACHE_MAX
 * prepared statements, keyed by their SQL text: by content (a hash, then
 * strcmp), not by pointer, because some SQL is built in a buffer that
 * holds another statement at the next call (store_copy.c), and a pointer
 * key would hand out a statement for the wrong text.  The cost, one pass
 * over a few hundred bytes, is nothing next to a prepare.  A cached
 * statement is handed out to one user at a time (busy); asked for again
 * while busy (a helper run inside a loop over the same SQL), a statement
 * of its own is prepared and finalized as before.  Given back, the driver
 * resets it and drops its result (release) and the bindings are freed, so
 * the next user finds it as sg_db_prepare() would make it; a statement
 * whose last step failed is reset the same way.  When the cache is full,
 * the least recently used statement that is not in use is finalized; if
 * all are in use, the new one is not cached.  Statements live as long as
 * their connection: sg_db_close() finalizes them.  What survives a new
 * PostgreSQL session is the driver's business (db_pg.c forgets its
 * server-side names).
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

static void stmt_destroy(struct sg_db_stmt *s);

void
sg_db_close(struct sg_db *db)
{
	int i;

	if (db == NULL)
		return;
	for (i = 0; i < db->ncache; i++)
		stmt_destroy(db->cache[i]);
	db->ncache = 0;
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

/* FNV-1a: the cache compares texts only when their hashes agree. */
static uint32_t
sql_hash(const char *sql)
{
	uint32_t h = 2166136261u;

	for (; *sql != '\0'; sql++)
		h = (h ^ (unsigned char)*sql) * 16777619u;
	return h;
}

/* Where a new statement goes: a free place, or the place of the least
 * recently used statement not in use; -1 if every one is in use. */
static int
cache_place(const struct sg_db *db)
{
	int i, lru = -1;

	if (db->ncache < SG_DB_CACHE_MAX)
		return db->ncache;
	for (i = 0; i < db->ncache; i++)
		if (!db->cache[i]->busy && (lru < 0 ||
		    db->cache[i]->used < db->cache[lru]->used))
			lru = i;
	return lru;
}

/* Puts s, prepared to be kept, at place i of the cache. */
static void
cache_put(struct sg_db *db, int i, struct sg_db_stmt *s)
{
	if (i < db->ncache) {
		stmt_destroy(db->cache[i]);
		db->stats.evicted++;
	} else
		db->ncache++;
	db->cache[i] = s;
	s->cached = 1;
	s->busy = 1;
	s->used = ++db->tick;
}

int
sg_db_prepare(struct sg_db *db, const char *sql, struct sg_db_stmt **ret)
{
	struct sg_db_stmt *s;
	uint32_t h = sql_hash(sql);
	int i, place = -1, r;

	for (i = 0; i < db->ncache; i++) {
		s = db->cache[i];
		if (s->hash != h || strcmp(s->key, sql) != 0)
			continue;
		if (s->busy)
			break;             /* nested: one of its own */
		s->busy = 1;
		s->used = ++db->tick;
		db->stats.reused++;
		*ret = s;
		return 0;
	}
	if (i == db->ncache)
		place = cache_place(db);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SG_ERR_NOMEM;
	s->db = db;
	s->hash = h;
	if (place >= 0 && (s->key = strdup(sql)) == NULL)
		place = -1;        /* works uncached all the same */
	if ((r = db->ops->prepare(db, sql, s, place >= 0)) != 0) {
		stmt_destroy(s);
		return r;
	}
	if (place >= 0)
		cache_put(db, place, s);
	else
		db->stats.uncached++;
	*ret = s;
	return 0;
}

void
sg_db_stats(const struct sg_db *db, struct sg_db_stats *ret)
{
	*ret = db->stats;
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

static void
clear_values(struct sg_db_stmt *s)
{
	int i;

	for (i = 0; i <= SG_DB_MAX_PARAMS; i++)
		free(s->v[i].p);
	memset(s->v, 0, sizeof(s->v));
	s->nparams = 0;
}

static void
stmt_destroy(struct sg_db_stmt *s)
{
	s->db->ops->finalize(s);
	clear_values(s);
	free(s->sql);
	free(s->key);
	free(s);
}

/* A cached statement goes back to the cache, as a new one would be: the
 * driver lets go of the bindings before they are freed. */
void
sg_db_finalize(struct sg_db_stmt *s)
{
	if (s == NULL)
		return;
	if (!s->cached) {
		stmt_destroy(s);
		return;
	}
	s->db->ops->release(s);
	clear_values(s);
	s->busy = 0;
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
