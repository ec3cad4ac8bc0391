/*
 * The PostgreSQL driver of src/db.c, over libpq.
 *
 * Statements are written with SQLite's numbered parameters (?1, ?2 ...)
 * and run here after ?n becomes $n (outside quoted text).  Integers travel
 * as int8, text as text, blobs as bytea in binary, NULL untyped (the
 * server infers its type); results come back as text, a bytea column
 * decoded from its hex form.
 *
 * A statement of the connection's cache (src/db.c) is prepared on the
 * server under a name of this session ("sg_<n>", PQprepare) at its first
 * run, then run by name (PQexecPrepared): one round trip, no parsing or
 * planning again.  The server fixes a prepared statement's parameter
 * types, so the statement keeps one name per list of types it ran with
 * (a parameter bound NULL once and text the next time has two), up to
 * SG_DB_PG_SHAPES; another list runs unnamed (PQexecParams) as an
 * uncached statement always does, with the same result and errors.  A
 * name belongs to one session: a new one (sg_db_reconnect: PQreset, or a
 * new connection) makes every name given before unknown here, and each
 * statement is prepared again when next run; no old name is ever sent to
 * a new session.  A named statement the server no longer knows (26000)
 * or whose result type changed under it with the schema (0A000, "cached
 * plan must not change result type") is forgotten, and run once more,
 * prepared again, when the failure left no transaction to abort.
 * Statements that leave the cache are deallocated on the server when the
 * connection is next outside a transaction.
 * A statement's whole result is fetched by its first step: the store's
 * queries are bounded (LIMIT) or return one row.
 *
 * The session waits at most 10 s for a lock and 60 s for a statement, and
 * a transaction left idle for a minute is ended by the server, so that a
 * gateway stuck in the middle of one cannot hold the log's lock for ever.
 * The password is handed to libpq apart from the conninfo and wiped from
 * memory when the connection closes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_util.h"
#include "db_int.h"

#define CONN(db) ((PGconn *)(db)->drv)
#define RES(s) ((PGresult *)(s)->drv)

/* The type oids of the parameters we send (pg_type.h). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25

static const char session_sql[] =
    "SET lock_timeout = '10s';"
    "SET statement_timeout = '60s';"
    "SET idle_in_transaction_session_timeout = '60s';"
    "SET client_min_messages = warning;"
    /* What the columns are read as, whatever the server's, database's
     * or role's defaults: bytea in hex (pg_column_blob), text in UTF-8. */
    "SET bytea_output = 'hex';"
    "SET client_encoding = 'UTF8';";

static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* An SQLSTATE (and the connection's state) as an SG_ERR_*. */
static int
pg_err(struct sg_db *db, const PGresult *res)
{
	const char *state = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";

	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(CONN(db));
	sg_db_set_err(db, "%s", msg != NULL && msg[0] ? msg : "no answer");
	if (CONN(db) == NULL || PQstatus(CONN(db)) == CONNECTION_BAD)
		return SG_ERR_UNAVAILABLE;
	if (state == NULL)
		return SG_ERR_UNAVAILABLE;     /* no answer from the server */
	if (strncmp(state, "23", 2) == 0)
		return SG_ERR_CONFLICT;
	if (strncmp(state, "08", 2) == 0 ||   /* connection exception */
	    strncmp(state, "57", 2) == 0 ||   /* shutdown, cancel, timeout */
	    strncmp(state, "40", 2) == 0 ||   /* serialization, deadlock */
	    strncmp(state, "53", 2) == 0 ||   /* out of connections */
	    strcmp(state, "55P03") == 0)      /* lock not available */
		return SG_ERR_UNAVAILABLE;
	return SG_ERR_IO;
}

static int
setup_session(struct sg_db *db)
{
	PGresult *res;
	int r = 0;

	PQsetNoticeProcessor(CONN(db), quiet, NULL);
	res = PQexec(CONN(db), session_sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = pg_err(db, res);
	PQclear(res);
	return r;
}

/* A new session: no name prepared before is known in it. */
static void
new_session(struct sg_db *db)
{
	db->session++;
	db->nstale = 0;
}

static int
pg_connect(struct sg_db *db)
{
	const char *keys[5], *vals[5];
	int n = 0;

	new_session(db);
	/* Before dbname: the conninfo may set its own connect_timeout. */
	keys[n] = "connect_timeout";
	vals[n++] = "5";
	keys[n] = "dbname";
	vals[n++] = db->conninfo;
	if (db->application != NULL) {
		keys[n] = "application_name";
		vals[n++] = db->application;
	}
	if (db->password != NULL) {
		keys[n] = "password";
		vals[n++] = db->password;
	}
	keys[n] = NULL;
	vals[n] = NULL;
	db->drv = PQconnectdbParams(keys, vals, 1);
	if (db->drv == NULL) {
		sg_db_set_err(db, "out of memory");
		return SG_ERR_NOMEM;
	}
	if (PQstatus(CONN(db)) != CONNECTION_OK) {
		sg_db_set_err(db, "%s", PQerrorMessage(CONN(db)));
		return SG_ERR_UNAVAILABLE;
	}
	return setup_session(db);
}

static int
pg_open(const struct sg_db_conf *c, int write, struct sg_db *db)
{
	(void)write;
	if (c->conninfo == NULL)
		return SG_ERR_INVALID;
	if ((db->conninfo = strdup(c->conninfo)) == NULL ||
	    (c->password != NULL &&
	    (db->password = strdup(c->password)) == NULL) ||
	    (c->application != NULL &&
	    (db->application = strdup(c->application)) == NULL))
		return SG_ERR_NOMEM;
	return pg_connect(db);
}

static void
pg_close(struct sg_db *db)
{
	PQfinish(CONN(db));
	db->drv = NULL;
	if (db->password != NULL) {
		sg_freezero(db->password, strlen(db->password));
		db->password = NULL;
	}
	free(db->conninfo);
	free(db->application);
	db->conninfo = db->application = NULL;
}

static int
pg_exec(struct sg_db *db, const char *sql)
{
	PGresult *res;
	ExecStatusType st;
	int r = 0;

	if (CONN(db) == NULL)
		return SG_ERR_UNAVAILABLE;
	res = PQexec(CONN(db), sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		r = pg_err(db, res);
	else if (strcmp(sql, "COMMIT") == 0 &&
	    strcmp(PQcmdStatus(res), "COMMIT") != 0) {
		/* A transaction that an error had aborted: the server
		 * answers COMMIT with ROLLBACK, and no error. */
		sg_db_set_err(db, "the transaction had failed: COMMIT "
		    "answered %s, nothing was kept", PQcmdStatus(res));
		r = SG_ERR_IO;
	}
	PQclear(res);
	return r;
}

/* ?n becomes $n, outside quoted strings and identifiers. */
static int
pg_prepare(struct sg_db *db, const char *sql, struct sg_db_stmt *s,
    int keep)
{
	size_t n = strlen(sql), i, o = 0;
	char quote = 0;

	(void)keep;                /* named on the server at its first run */
	if ((s->sql = malloc(n + 1)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		char c = sql[i];
		if (quote != 0) {
			if (c == quote)
				quote = 0;
		} else if (c == '\'' || c == '"')
			quote = c;
		else if (c == '?' && i + 1 < n && sql[i + 1] >= '1' &&
		    sql[i + 1] <= '9') {
			int k = (int)strtol(sql + i + 1, NULL, 10);
			if (k > SG_DB_MAX_PARAMS) {
				sg_db_set_err(db, "parameter ?%d: at most %d",
				    k, SG_DB_MAX_PARAMS);
				return SG_ERR_INTERNAL;
			}
			if (k > s->nsql)
				s->nsql = k;
			c = '$';
		}
		else if (c == '?') {
			sg_db_set_err(db, "a parameter without a number");
			return SG_ERR_INTERNAL;
		}
		s->sql[o++] = c;
	}
	s->sql[o] = '\0';
	return 0;
}

static void
drop_result(struct sg_db_stmt *s)
{
	int i;

	PQclear(RES(s));
	s->drv = NULL;
	for (i = 0; i < s->nblob; i++)
		free(s->blob[i]);
	s->nblob = 0;
	s->row = -1;
	s->ran = 0;
}

static void
pg_bind(struct sg_db_stmt *s, int i)
{
	(void)i;
	if (s->ran)
		drop_result(s);
}

/* The bound values as libpq takes them. */
struct pg_params {
	const char *vals[SG_DB_MAX_PARAMS];
	Oid types[SG_DB_MAX_PARAMS];
	int lens[SG_DB_MAX_PARAMS], fmts[SG_DB_MAX_PARAMS];
	char ints[SG_DB_MAX_PARAMS][24];
	int n;
};

static void
pg_params(struct sg_db_stmt *s, struct pg_params *p)
{
	int i;

	/* As on SQLite, a parameter never bound is NULL. */
	if (s->nparams < s->nsql)
		s->nparams = s->nsql;
	p->n = s->nparams;
	for (i = 0; i < p->n; i++) {
		const struct sg_db_value *v = &s->v[i + 1];
		p->lens[i] = 0;
		p->fmts[i] = 0;
		switch (v->type) {
		case SG_DB_V_NULL:
			p->types[i] = 0;
			p->vals[i] = NULL;
			break;
		case SG_DB_V_INT:
			p->types[i] = OID_INT8;
			snprintf(p->ints[i], sizeof(p->ints[i]), "%" PRId64,
			    v->i);
			p->vals[i] = p->ints[i];
			break;
		case SG_DB_V_TEXT:
			p->types[i] = OID_TEXT;
			p->vals[i] = v->p;
			break;
		case SG_DB_V_BLOB:
			p->types[i] = OID_BYTEA;
			p->vals[i] = v->p;
			p->lens[i] = (int)v->n;
			p->fmts[i] = 1;
			break;
		}
	}
}

static void
shape_name(const struct sg_db_pg_shape *sh, char *out, size_t cap)
{
	snprintf(out, cap, "sg_%" PRIu64, sh->name);
}

/* A name of this session to deallocate when the connection is next
 * outside a transaction (a DEALLOCATE inside one that failed would abort
 * it).  Beyond the bound it stays on the server until the session ends. */
static void
stale_add(struct sg_db *db, const struct sg_db_pg_shape *sh)
{
	if (sh->name != 0 && sh->session == db->session &&
	    db->nstale < SG_DB_PG_STALE_MAX)
		db->stale[db->nstale++] = sh->name;
}

static void
stale_flush(struct sg_db *db)
{
	struct sg_db_pg_shape sh;
	char name[32], sql[48];
	int i;

	if (db->nstale == 0 ||
	    PQtransactionStatus(CONN(db)) != PQTRANS_IDLE)
		return;
	for (i = 0; i < db->nstale; i++) {
		sh.name = db->stale[i];
		shape_name(&sh, name, sizeof(name));
		snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
		PQclear(PQexec(CONN(db), sql));
	}
	db->nstale = 0;
}

/* The cached statement's server-side statement for these parameter
 * types, or a place for it (name 0, or of an older session: to prepare);
 * NULL when it has SG_DB_PG_SHAPES others already. */
static struct sg_db_pg_shape *
shape_find(struct sg_db_stmt *s, const struct pg_params *p)
{
	struct sg_db_pg_shape *sh, *place = NULL;
	int i, k;

	for (i = 0; i < s->nshape; i++) {
		sh = &s->shape[i];
		if (sh->name == 0 || sh->session != s->db->session) {
			if (place == NULL)
				place = sh;
			continue;
		}
		if (sh->n != p->n)
			continue;
		for (k = 0; k < p->n && sh->types[k] == p->types[k]; k++)
			;
		if (k == p->n)
			return sh;
	}
	if (place == NULL && s->nshape < SG_DB_PG_SHAPES)
		place = &s->shape[s->nshape++];
	return place;
}

/* Prepares sh on the server; on failure, the server's answer is the
 * statement's result (its error, as a run would have had). */
static int
shape_prepare(struct sg_db_stmt *s, struct sg_db_pg_shape *sh,
    const struct pg_params *p)
{
	struct sg_db *db = s->db;
	char name[32];
	int k;

	stale_flush(db);
	memset(sh, 0, sizeof(*sh));
	sh->name = ++db->names;
	shape_name(sh, name, sizeof(name));
	s->drv = PQprepare(CONN(db), name, s->sql, p->n, p->types);
	if (PQresultStatus(RES(s)) != PGRES_COMMAND_OK) {
		sh->name = 0;
		return pg_err(db, RES(s));
	}
	PQclear(RES(s));
	s->drv = NULL;
	db->stats.prepared++;
	sh->session = db->session;
	sh->n = p->n;
	for (k = 0; k < p->n; k++)
		sh->types[k] = p->types[k];
	return 0;
}

/* After a failed run by name: 1 if the name is of no more use (the
 * server forgot it, or its result type changed with the schema). */
static int
shape_lost(struct sg_db_stmt *s, struct sg_db_pg_shape *sh)
{
	const char *state = PQresultErrorField(RES(s), PG_DIAG_SQLSTATE);

	if (state == NULL)
		return 0;
	if (strcmp(state, "0A000") == 0)
		stale_add(s->db, sh);
	else if (strcmp(state, "26000") != 0)
		return 0;
	sh->name = 0;
	return 1;
}

static int
run_named(struct sg_db_stmt *s, struct sg_db_pg_shape *sh,
    const struct pg_params *p)
{
	char name[32];
	ExecStatusType st;
	int r, again;

	for (again = 1;; again = 0) {
		if ((sh->name == 0 || sh->session != s->db->session) &&
		    (r = shape_prepare(s, sh, p)) != 0)
			return r;
		shape_name(sh, name, sizeof(name));
		s->drv = PQexecPrepared(CONN(s->db), name, p->n, p->vals,
		    p->lens, p->fmts, 0);
		st = PQresultStatus(RES(s));
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
			return 0;
		if (!shape_lost(s, sh) || !again ||
		    PQtransactionStatus(CONN(s->db)) != PQTRANS_IDLE)
			return pg_err(s->db, RES(s));
		PQclear(RES(s));
		s->drv = NULL;
	}
}

static int
pg_run(struct sg_db_stmt *s)
{
	struct pg_params p;
	struct sg_db_pg_shape *sh = NULL;
	ExecStatusType st;

	if (CONN(s->db) == NULL)
		return SG_ERR_UNAVAILABLE;
	pg_params(s, &p);
	s->ran = 1;
	s->row = -1;
	if (s->cached && (sh = shape_find(s, &p)) != NULL)
		return run_named(s, sh, &p);
	s->drv = PQexecParams(CONN(s->db), s->sql, p.n, p.types, p.vals,
	    p.lens, p.fmts, 0);
	st = PQresultStatus(RES(s));
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return 0;
	return pg_err(s->db, RES(s));
}

static int
pg_step(struct sg_db_stmt *s)
{
	int i, r;

	if (!s->ran && (r = pg_run(s)) != 0)
		return r;
	if (PQresultStatus(RES(s)) != PGRES_TUPLES_OK)
		return PQresultStatus(RES(s)) == PGRES_COMMAND_OK ?
		    SG_DB_DONE : SG_ERR_IO;
	for (i = 0; i < s->nblob; i++)
		free(s->blob[i]);
	s->nblob = 0;
	if (s->row + 1 >= PQntuples(RES(s))) {
		s->row = PQntuples(RES(s));
		return SG_DB_DONE;
	}
	s->row++;
	return SG_DB_ROW;
}

static void
pg_reset(struct sg_db_stmt *s)
{
	drop_result(s);
}

static int
have_cell(struct sg_db_stmt *s, int col)
{
	return s->drv != NULL && s->row >= 0 && s->row < PQntuples(RES(s)) &&
	    col >= 0 && col < PQnfields(RES(s));
}

static int
pg_column_null(struct sg_db_stmt *s, int col)
{
	return !have_cell(s, col) || PQgetisnull(RES(s), s->row, col);
}

static int64_t
pg_column_int64(struct sg_db_stmt *s, int col)
{
	const char *v;

	if (pg_column_null(s, col))
		return 0;
	v = PQgetvalue(RES(s), s->row, col);
	/* Booleans come as t/f; numbers as decimal text. */
	if (v[0] == 't' && v[1] == '\0')
		return 1;
	return strtoll(v, NULL, 10);
}

static const char *
pg_column_text(struct sg_db_stmt *s, int col)
{
	if (pg_column_null(s, col))
		return NULL;
	return PQgetvalue(RES(s), s->row, col);
}

static const void *
pg_column_blob(struct sg_db_stmt *s, int col, size_t *ret_len)
{
	const char *v;
	uint8_t *out;
	size_t n, len;
	int k;

	*ret_len = 0;
	if (pg_column_null(s, col))
		return NULL;
	v = PQgetvalue(RES(s), s->row, col);
	n = (size_t)PQgetlength(RES(s), s->row, col);
	if (PQftype(RES(s), col) != OID_BYTEA) {
		*ret_len = n;
		return v;
	}
	for (k = 0; k < s->nblob; k++)
		if (s->blob_col[k] == col) {
			*ret_len = s->blob_len[k];
			return s->blob[k];
		}
	/* bytea_output = hex: "\x" and two digits a byte. */
	if (n < 2 || v[0] != '\\' || v[1] != 'x' ||
	    s->nblob == (int)(sizeof(s->blob) / sizeof(s->blob[0])))
		return NULL;
	if ((out = malloc(n / 2 > 0 ? n / 2 : 1)) == NULL)
		return NULL;
	if (sg_hex_decode(v + 2, n - 2, out, n / 2, &len) != 0) {
		free(out);
		return NULL;
	}
	s->blob[s->nblob] = out;
	s->blob_len[s->nblob] = len;
	s->blob_col[s->nblob++] = col;
	*ret_len = len;
	return out;
}

static int64_t
pg_changes(struct sg_db_stmt *s)
{
	const char *n;

	if (s->drv == NULL)
		return 0;
	n = PQcmdTuples(RES(s));
	return n != NULL && n[0] != '\0' ? strtoll(n, NULL, 10) : 0;
}

static void
pg_release(struct sg_db_stmt *s)
{
	drop_result(s);
}

/* A statement leaving the cache takes its server-side ones along. */
static void
pg_finalize(struct sg_db_stmt *s)
{
	int i;

	drop_result(s);
	for (i = 0; i < s->nshape; i++)
		stale_add(s->db, &s->shape[i]);
	s->nshape = 0;
}

static int
pg_broken(struct sg_db *db)
{
	return CONN(db) == NULL || PQstatus(CONN(db)) != CONNECTION_OK;
}

static int
pg_reconnect(struct sg_db *db)
{
	if (CONN(db) == NULL)
		return pg_connect(db);
	new_session(db);
	PQreset(CONN(db));
	if (PQstatus(CONN(db)) != CONNECTION_OK) {
		sg_db_set_err(db, "%s", PQerrorMessage(CONN(db)));
		return SG_ERR_UNAVAILABLE;
	}
	return setup_session(db);
}

int
sg_db_socket(struct sg_db *db)
{
	if (db->backend != SG_DB_POSTGRESQL || CONN(db) == NULL)
		return SG_ERR_INVALID;
	return PQsocket(CONN(db));
}

int
sg_db_notification(struct sg_db *db, const char *channel, char **ret)
{
	PGnotify *n;
	int r = SG_ERR_NOT_FOUND;

	if (db->backend != SG_DB_POSTGRESQL || CONN(db) == NULL)
		return SG_ERR_INVALID;
	if (PQconsumeInput(CONN(db)) == 0) {
		sg_db_set_err(db, "%s", PQerrorMessage(CONN(db)));
		return SG_ERR_UNAVAILABLE;
	}
	while (r == SG_ERR_NOT_FOUND && (n = PQnotifies(CONN(db))) != NULL) {
		if (strcmp(n->relname, channel) == 0)
			r = (*ret = strdup(n->extra)) != NULL ? 0 :
			    SG_ERR_NOMEM;
		PQfreemem(n);
	}
	return r;
}

const struct sg_db_ops sg_db_pg_ops = {
	.open = pg_open,
	.close = pg_close,
	.exec = pg_exec,
	.prepare = pg_prepare,
	.bind = pg_bind,
	.step = pg_step,
	.reset = pg_reset,
	.column_null = pg_column_null,
	.column_int64 = pg_column_int64,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
	.changes = pg_changes,
	.release = pg_release,
	.finalize = pg_finalize,
	.broken = pg_broken,
	.reconnect = pg_reconnect,
};
