/*
 * What the database drivers share (src/db.c, src/db_sqlite.c, src/db_pg.c);
 * the rest of the daemon sees include/sg_db.h.
 */
#ifndef SG_DB_INT_H
#define SG_DB_INT_H

#include "sg_db.h"

struct sg_db_ops {
	int (*open)(const struct sg_db_conf *c, int write, struct sg_db *db);
	void (*close)(struct sg_db *db);
	int (*exec)(struct sg_db *db, const char *sql);
	/* keep: the statement goes into the connection's cache. */
	int (*prepare)(struct sg_db *db, const char *sql,
	    struct sg_db_stmt *s, int keep);
	void (*bind)(struct sg_db_stmt *s, int i);
	int (*step)(struct sg_db_stmt *s);
	void (*reset)(struct sg_db_stmt *s);
	int (*column_null)(struct sg_db_stmt *s, int col);
	int64_t (*column_int64)(struct sg_db_stmt *s, int col);
	const char *(*column_text)(struct sg_db_stmt *s, int col);
	const void *(*column_blob)(struct sg_db_stmt *s, int col,
	    size_t *ret_len);
	int64_t (*changes)(struct sg_db_stmt *s);
	/* A cached statement back in the cache: no result, no bindings. */
	void (*release)(struct sg_db_stmt *s);
	void (*finalize)(struct sg_db_stmt *s);
	int (*broken)(struct sg_db *db);
	int (*reconnect)(struct sg_db *db);
};

extern const struct sg_db_ops sg_db_sqlite_ops;
extern const struct sg_db_ops sg_db_pg_ops;

#define SG_DB_MAX_PARAMS 40

/* PostgreSQL: a server-side statement is prepared with the types of its
 * parameters (NULL is untyped), so a cached statement keeps one per list
 * of types it ran with, up to this many; another list runs unnamed. */
#define SG_DB_PG_SHAPES 4
/* PostgreSQL: names of statements no longer cached, deallocated on the
 * server when the connection is next outside a transaction.  Beyond
 * this many, they stay there until the session ends. */
#define SG_DB_PG_STALE_MAX 32

/* PostgreSQL: one server-side statement of a cached one. */
struct sg_db_pg_shape {
	uint64_t name;                 /* "sg_<name>"; 0: unused */
	uint64_t session;              /* the session it was prepared in */
	int n;                         /* parameters sent */
	uint32_t types[SG_DB_MAX_PARAMS];
};

/* A bound value, kept by the statement (copied when bound). */
struct sg_db_value {
	enum { SG_DB_V_NULL, SG_DB_V_INT, SG_DB_V_TEXT, SG_DB_V_BLOB } type;
	int64_t i;
	char *p;                       /* text (NUL-ended) or blob */
	size_t n;
};

struct sg_db {
	const struct sg_db_ops *ops;
	enum sg_db_backend backend;
	char err[512];
	void *drv;                     /* sqlite3 *, PGconn * */
	struct sg_db_conf conf;        /* PostgreSQL: kept to reconnect */
	char *conninfo, *password, *application;
	int nonblocking_notify;
	/* The statement cache (src/db.c); its statements belong to it. */
	struct sg_db_stmt *cache[SG_DB_CACHE_MAX];
	int ncache;
	uint64_t tick;                 /* the cache's clock, for LRU */
	struct sg_db_stats stats;
	/* PostgreSQL: the session (one more at every connect or reset: a
	 * statement prepared in an older one is gone with it), the last
	 * statement name given, and names to deallocate. */
	uint64_t session;
	uint64_t names;
	uint64_t stale[SG_DB_PG_STALE_MAX];
	int nstale;
};

struct sg_db_stmt {
	struct sg_db *db;
	void *drv;                     /* sqlite3_stmt *, PGresult * */
	char *sql;                     /* PostgreSQL: with $n parameters */
	struct sg_db_value v[SG_DB_MAX_PARAMS + 1];  /* from 1 */
	int nparams;                   /* highest bound */
	int nsql;                      /* PostgreSQL: highest $n in sql */
	int row;                       /* PostgreSQL: the current row */
	int ran;                       /* PostgreSQL: executed since reset */
	uint8_t *blob[8];              /* PostgreSQL: decoded bytea columns */
	size_t blob_len[8];
	int blob_col[8];
	int nblob;
	/* Cached statements (src/db.c): the SQL as given is the key. */
	char *key;
	uint32_t hash;
	int cached;                    /* in db->cache, finalized by it */
	int busy;                      /* handed out, not yet given back */
	uint64_t used;                 /* db->tick when last handed out */
	struct sg_db_pg_shape shape[SG_DB_PG_SHAPES];
	int nshape;
};

/* Records the error text for sg_db_errmsg() and the log. */
void sg_db_set_err(struct sg_db *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
