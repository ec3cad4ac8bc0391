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
	int (*prepare)(struct sg_db *db, const char *sql,
	    struct sg_db_stmt *s);
	void (*bind)(struct sg_db_stmt *s, int i);
	int (*step)(struct sg_db_stmt *s);
	void (*reset)(struct sg_db_stmt *s);
	int (*column_null)(struct sg_db_stmt *s, int col);
	int64_t (*column_int64)(struct sg_db_stmt *s, int col);
	const char *(*column_text)(struct sg_db_stmt *s, int col);
	const void *(*column_blob)(struct sg_db_stmt *s, int col,
	    size_t *ret_len);
	int64_t (*changes)(struct sg_db_stmt *s);
	void (*finalize)(struct sg_db_stmt *s);
	int (*broken)(struct sg_db *db);
	int (*reconnect)(struct sg_db *db);
};

extern const struct sg_db_ops sg_db_sqlite_ops;
extern const struct sg_db_ops sg_db_pg_ops;

#define SG_DB_MAX_PARAMS 40

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
};

/* Records the error text for sg_db_errmsg() and the log. */
void sg_db_set_err(struct sg_db *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
