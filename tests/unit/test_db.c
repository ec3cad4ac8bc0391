/*
 * Tests for the statement cache of the database layer (src/db.c and its
 * drivers), on SQLite and, with the suite's server (SG_TEST_PG), on
 * PostgreSQL: a statement is compiled once per connection and handed out
 * again (the same statement, the prepare counter unchanged), without the
 * bindings of its last use; a nested use of the same SQL gets one of its
 * own; a statement whose run failed, or that was left between two rows,
 * is reset when given back; a parameter bound NULL once and text the next
 * time is what it is each time; a schema changed under a cached statement
 * is seen; a full cache gives up its least recently used statement (and
 * PostgreSQL its server-side one).  PostgreSQL: a session ended by the
 * server and opened again knows none of the old names, and none is sent
 * to it (a run inside a transaction, where a missing name could not be
 * retried, succeeds).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

static char tmpdir[64];
static int on_pg;
static char pg_conninfo[512];
static char *pg_password;
static size_t pg_password_len;

static const char INS[] = "INSERT INTO t (k, v) VALUES (?1, ?2)";
static const char SEL[] = "SELECT k, v FROM t WHERE k >= ?1 ORDER BY k";

/* A connection to an empty database of its own (SQLite: a new file;
 * PostgreSQL: a new database); NULL when there is no server (skipped). */
static struct sg_db *
open_db(const char *name)
{
	struct sg_db_conf c;
	struct sg_db *db = NULL;
	char path[160], passfile[256];
	int r;

	memset(&c, 0, sizeof(c));
	if (!on_pg) {
		snprintf(path, sizeof(path), "%s/%s.db", tmpdir, name);
		c.backend = SG_DB_SQLITE;
		c.path = path;
	} else {
		sg_freezero(pg_password, pg_password_len);
		pg_password = NULL;
		if ((r = sg_fx_pg_new_db(name, pg_conninfo,
		    sizeof(pg_conninfo), passfile, sizeof(passfile))) == 0) {
			SKIP("no PostgreSQL server (SG_TEST_PG)");
			return NULL;
		}
		if (r != 1 || sg_read_secret_file(passfile, &pg_password,
		    &pg_password_len) != 0) {
			CHECK(!"a database on the test server");
			return NULL;
		}
		c.backend = SG_DB_POSTGRESQL;
		c.conninfo = pg_conninfo;
		c.password = pg_password;
	}
	CHECK_EQ_INT(sg_db_open(&c, 1, &db), 0);
	if (db != NULL)
		CHECK_EQ_INT(sg_db_exec(db, "CREATE TABLE t (k BIGINT PRIMARY "
		    "KEY, v TEXT)"), 0);
	return db;
}

/* Another connection to the PostgreSQL database open_db() made last. */
static struct sg_db *
open_pg_again(void)
{
	struct sg_db_conf c;
	struct sg_db *db = NULL;

	memset(&c, 0, sizeof(c));
	c.backend = SG_DB_POSTGRESQL;
	c.conninfo = pg_conninfo;
	c.password = pg_password;
	CHECK_EQ_INT(sg_db_open(&c, 1, &db), 0);
	return db;
}

/* The first column of the one row of sql (with ?1 = arg when arg >= 0),
 * or -1. */
static int64_t
scalar(struct sg_db *db, const char *sql, int64_t arg)
{
	struct sg_db_stmt *s = NULL;
	int64_t v = -1;

	if (sg_db_prepare(db, sql, &s) != 0)
		return -1;
	if (arg >= 0)
		sg_db_bind_int64(s, 1, arg);
	if (sg_db_step(s) == SG_DB_ROW)
		v = sg_db_column_int64(s, 0);
	sg_db_finalize(s);
	return v;
}

/* Runs INS for (k, v) (v NULL: left unbound); *ret_s gets the statement
 * handed out (compared, never used after). */
static int
insert(struct sg_db *db, int64_t k, const char *v, struct sg_db_stmt **ret_s)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = sg_db_prepare(db, INS, &s)) != 0)
		return r;
	if (ret_s != NULL)
		*ret_s = s;
	sg_db_bind_int64(s, 1, k);
	if (v != NULL)
		sg_db_bind_text(s, 2, v);
	r = sg_db_step(s);
	sg_db_finalize(s);
	return r;
}

static struct sg_db_stats
stats(struct sg_db *db)
{
	struct sg_db_stats st;

	sg_db_stats(db, &st);
	return st;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- the tests ---- */

static void
test_reused(void)
{
	struct sg_db *db = open_db("db_reused");
	struct sg_db_stmt *s[4] = { NULL };
	struct sg_db_stats a, b;
	int i;

	if (db == NULL)
		return;
	a = stats(db);
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(insert(db, i + 1, "x", &s[i]), SG_DB_DONE);
	b = stats(db);
	CHECK(s[0] != NULL && s[0] == s[1] && s[1] == s[2]);
	CHECK_EQ_INT(b.prepared - a.prepared, 1);
	CHECK_EQ_INT(b.reused - a.reused, 2);
	CHECK_EQ_INT(b.uncached - a.uncached, 0);
	/* Handed out again without its last bindings: ?2 is NULL. */
	CHECK_EQ_INT(insert(db, 4, NULL, &s[3]), SG_DB_DONE);
	CHECK(s[3] == s[0]);
	CHECK_EQ_INT(scalar(db, "SELECT COUNT(*) FROM t WHERE k = ?1 AND v IS "
	    "NULL", 4), 1);
	CHECK_EQ_INT(scalar(db, "SELECT COUNT(*) FROM t WHERE v = 'x'", -1),
	    3);
	sg_db_close(db);
}

static void
test_nested(void)
{
	struct sg_db *db = open_db("db_nested");
	struct sg_db_stmt *outer = NULL, *inner = NULL, *again = NULL;
	struct sg_db_stats a, b;
	int64_t k, n;
	int rows = 0, r;

	if (db == NULL)
		return;
	for (k = 1; k <= 3; k++)
		CHECK_EQ_INT(insert(db, k, "v", NULL), SG_DB_DONE);
	a = stats(db);
	CHECK_EQ_INT(sg_db_prepare(db, SEL, &outer), 0);
	if (outer == NULL)
		goto out;
	sg_db_bind_int64(outer, 1, 1);
	while ((r = sg_db_step(outer)) == SG_DB_ROW) {
		k = sg_db_column_int64(outer, 0);
		CHECK_EQ_INT(k, ++rows);
		/* The same SQL while the outer statement is between rows. */
		CHECK_EQ_INT(sg_db_prepare(db, SEL, &inner), 0);
		if (inner == NULL)
			break;
		CHECK(inner != outer);
		sg_db_bind_int64(inner, 1, k);
		for (n = 0; sg_db_step(inner) == SG_DB_ROW; n++)
			CHECK_EQ_INT(sg_db_column_int64(inner, 0), k + n);
		CHECK_EQ_INT(n, 4 - k);
		sg_db_finalize(inner);
	}
	CHECK_EQ_INT(r, SG_DB_DONE);
	CHECK_EQ_INT(rows, 3);
	sg_db_finalize(outer);
	b = stats(db);
	CHECK_EQ_INT(b.uncached - a.uncached, 3);
	/* Given back, the cached one is handed out again, and runs. */
	CHECK_EQ_INT(sg_db_prepare(db, SEL, &again), 0);
	CHECK(again == outer);
	if (again != NULL) {
		sg_db_bind_int64(again, 1, 3);
		CHECK_EQ_INT(sg_db_step(again), SG_DB_ROW);
		CHECK_EQ_INT(sg_db_column_int64(again, 0), 3);
		CHECK_EQ_INT(sg_db_step(again), SG_DB_DONE);
		sg_db_finalize(again);
	}
	CHECK_EQ_INT(stats(db).reused - b.reused, 1);
out:
	sg_db_close(db);
}

static void
test_failure_then_reuse(void)
{
	struct sg_db *db = open_db("db_failure");
	struct sg_db_stmt *s1 = NULL, *s2 = NULL, *s = NULL;

	if (db == NULL)
		return;
	CHECK_EQ_INT(insert(db, 1, "a", &s1), SG_DB_DONE);
	CHECK_EQ_INT(insert(db, 1, "b", &s2), SG_ERR_CONFLICT);
	CHECK(s1 == s2);
	CHECK_EQ_INT(insert(db, 2, "c", &s2), SG_DB_DONE);
	CHECK(s1 == s2);
	/* A failure inside a transaction, rolled back. */
	CHECK_EQ_INT(sg_db_exec(db, "BEGIN"), 0);
	CHECK_EQ_INT(insert(db, 2, "d", NULL), SG_ERR_CONFLICT);
	CHECK_EQ_INT(sg_db_exec(db, "ROLLBACK"), 0);
	CHECK_EQ_INT(insert(db, 3, "e", NULL), SG_DB_DONE);
	CHECK_EQ_INT(scalar(db, "SELECT COUNT(*) FROM t", -1), 3);
	/* Given back between two rows: reset, so that nothing holds the
	 * table (SQLite refuses to drop a table a statement is reading). */
	CHECK_EQ_INT(sg_db_prepare(db, SEL, &s), 0);
	if (s != NULL) {
		sg_db_bind_int64(s, 1, 1);
		CHECK_EQ_INT(sg_db_step(s), SG_DB_ROW);
		sg_db_finalize(s);
	}
	CHECK_EQ_INT(sg_db_exec(db, "DROP TABLE t"), 0);
	sg_db_close(db);
}

/* The value of v for k: "" for NULL. */
static void
value_of(struct sg_db *db, int64_t k, char *out, size_t cap)
{
	struct sg_db_stmt *s = NULL;
	const char *v;

	snprintf(out, cap, "?");
	if (sg_db_prepare(db, "SELECT v FROM t WHERE k = ?1", &s) != 0)
		return;
	sg_db_bind_int64(s, 1, k);
	if (sg_db_step(s) == SG_DB_ROW) {
		v = sg_db_column_text(s, 0);
		snprintf(out, cap, "%s", v != NULL ? v : "");
	}
	sg_db_finalize(s);
}

static void
test_param_types(void)
{
	static const char *const vals[] = { NULL, "a", NULL, "b" };
	struct sg_db *db = open_db("db_types");
	struct sg_db_stmt *s = NULL;
	struct sg_db_stats a, b;
	char got[16];
	size_t i;

	if (db == NULL)
		return;
	CHECK_EQ_INT(insert(db, 1, "start", NULL), SG_DB_DONE);
	value_of(db, 1, got, sizeof(got));    /* cached before counting */
	a = stats(db);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		CHECK_EQ_INT(sg_db_prepare(db, "UPDATE t SET v = ?2 WHERE "
		    "k = ?1", &s), 0);
		if (s == NULL)
			break;
		sg_db_bind_int64(s, 1, 1);
		if (vals[i] != NULL)
			sg_db_bind_text(s, 2, vals[i]);
		CHECK_EQ_INT(sg_db_step(s), SG_DB_DONE);
		CHECK_EQ_INT(sg_db_changes(s), 1);
		sg_db_finalize(s);
		value_of(db, 1, got, sizeof(got));
		CHECK_STR(got, vals[i] != NULL ? vals[i] : "");
	}
	b = stats(db);
	/* PostgreSQL: one server-side statement for (int8, NULL), one for
	 * (int8, text); SQLite: one statement. */
	CHECK_EQ_INT(b.prepared - a.prepared, on_pg ? 2 : 1);
	sg_db_close(db);
}

/* The column v of row 1 as text, through the cached SELECT; its status. */
static int
read_v(struct sg_db *db, struct sg_db_stmt **ret_s, char *out, size_t cap)
{
	struct sg_db_stmt *s = NULL;
	const char *v;
	int r;

	out[0] = '\0';
	if ((r = sg_db_prepare(db, "SELECT v FROM t WHERE k = ?1", &s)) != 0)
		return r;
	*ret_s = s;
	sg_db_bind_int64(s, 1, 1);
	if ((r = sg_db_step(s)) == SG_DB_ROW &&
	    (v = sg_db_column_text(s, 0)) != NULL)
		snprintf(out, cap, "%s", v);
	sg_db_finalize(s);
	return r;
}

static void
test_schema_change(void)
{
	struct sg_db *db = open_db("db_schema");
	struct sg_db_stmt *s1 = NULL, *s2 = NULL;
	struct sg_db_stats a;
	char got[32];

	if (db == NULL)
		return;
	CHECK_EQ_INT(insert(db, 1, "one", NULL), SG_DB_DONE);
	CHECK_EQ_INT(read_v(db, &s1, got, sizeof(got)), SG_DB_ROW);
	CHECK_STR(got, "one");
	/* The table again, its columns moved and v now a number. */
	CHECK_EQ_INT(sg_db_exec(db, "DROP TABLE t; CREATE TABLE t (w TEXT, "
	    "k BIGINT PRIMARY KEY, v BIGINT); INSERT INTO t (w, k, v) "
	    "VALUES ('w', 1, 7)"), 0);
	a = stats(db);
	CHECK_EQ_INT(read_v(db, &s2, got, sizeof(got)), SG_DB_ROW);
	CHECK(s1 == s2);
	CHECK_STR(got, "7");
	/* SQLite compiles it again inside the step; PostgreSQL's server
	 * refuses the old statement (its result type changed), and it is
	 * prepared again and run once more. */
	CHECK_EQ_INT(stats(db).prepared - a.prepared, on_pg ? 1 : 0);
	/* Changed again, then read inside a transaction: PostgreSQL's
	 * refusal there aborts the transaction, and cannot be run again in
	 * it; after the rollback, the statement works. */
	CHECK_EQ_INT(sg_db_exec(db, "DROP TABLE t; CREATE TABLE t (k BIGINT "
	    "PRIMARY KEY, v TEXT); INSERT INTO t (k, v) VALUES (1, 'eins')"),
	    0);
	CHECK_EQ_INT(sg_db_exec(db, "BEGIN"), 0);
	CHECK_EQ_INT(read_v(db, &s2, got, sizeof(got)),
	    on_pg ? SG_ERR_IO : SG_DB_ROW);
	CHECK_EQ_INT(sg_db_exec(db, "ROLLBACK"), 0);
	CHECK_EQ_INT(read_v(db, &s2, got, sizeof(got)), SG_DB_ROW);
	CHECK(s1 == s2);
	CHECK_STR(got, "eins");
	sg_db_close(db);
}

/* Runs "SELECT <i> + ?1" with ?1 = 1; 1 if it answers i + 1. */
static int
run_numbered(struct sg_db *db, int i)
{
	struct sg_db_stmt *s = NULL;
	char sql[48];
	int ok;

	/* One buffer for every text: the cache keys by content. */
	snprintf(sql, sizeof(sql), "SELECT %d + ?1", i);
	if (sg_db_prepare(db, sql, &s) != 0)
		return 0;
	sg_db_bind_int64(s, 1, 1);
	ok = sg_db_step(s) == SG_DB_ROW && sg_db_column_int64(s, 0) == i + 1;
	sg_db_finalize(s);
	return ok;
}

static void
test_eviction(void)
{
	struct sg_db *db = open_db("db_evict");
	struct sg_db_stats a, b;
	int i, ok = 1;

	if (db == NULL)
		return;
	a = stats(db);
	/* 0 first, then enough to fill the cache, then 0 again: it is the
	 * most recently used when the 10 more come. */
	for (i = 0; i < SG_DB_CACHE_MAX; i++)
		ok &= run_numbered(db, i);
	ok &= run_numbered(db, 0);
	for (i = SG_DB_CACHE_MAX; i < SG_DB_CACHE_MAX + 10; i++)
		ok &= run_numbered(db, i);
	b = stats(db);
	CHECK(ok);
	CHECK_EQ_INT(b.prepared - a.prepared, SG_DB_CACHE_MAX + 10);
	CHECK_EQ_INT(b.evicted - a.evicted, 10);
	CHECK_EQ_INT(b.reused - a.reused, 1);
	/* 0 stayed; 1, the least recently used, went first. */
	CHECK(run_numbered(db, 0));
	CHECK_EQ_INT(stats(db).prepared, b.prepared);
	CHECK(run_numbered(db, 1));
	CHECK_EQ_INT(stats(db).prepared, b.prepared + 1);
	/* PostgreSQL: the evicted statements were deallocated on the
	 * server; one per cached statement is left (this one included). */
	if (on_pg)
		CHECK_EQ_INT(scalar(db, "SELECT COUNT(*) FROM "
		    "pg_prepared_statements", -1), SG_DB_CACHE_MAX);
	sg_db_close(db);
}

static void
test_pg_reconnect_forgets(void)
{
	struct sg_db *db = open_db("db_reconnect"), *other = NULL;
	struct sg_db_stmt *s1 = NULL, *s2 = NULL;
	struct sg_db_stats a;
	int64_t pid, n = -1;
	int i;

	if (db == NULL)
		return;
	CHECK_EQ_INT(insert(db, 1, "a", &s1), SG_DB_DONE);
	CHECK_EQ_INT(insert(db, 2, "b", NULL), SG_DB_DONE);
	pid = scalar(db, "SELECT pg_backend_pid()", -1);
	CHECK(pid > 0);
	if ((other = open_pg_again()) == NULL)
		goto out;
	/* The server ends db's session, and it is gone (bounded wait). */
	CHECK_EQ_INT(scalar(other, "SELECT COUNT(pg_terminate_backend("
	    "CAST(?1 AS INTEGER)))", pid), 1);
	for (i = 0; i < 2000 && n != 0; i++) {
		n = scalar(other, "SELECT COUNT(*) FROM pg_stat_activity "
		    "WHERE pid = ?1", pid);
		if (n != 0)
			sleep_ms(5);
	}
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(insert(db, 3, "c", NULL), SG_ERR_UNAVAILABLE);
	CHECK(sg_db_broken(db));
	CHECK_EQ_INT(sg_db_reconnect(db), 0);
	a = stats(db);
	/* Inside a transaction: an old name sent to the new session would
	 * fail it, and could not be tried again there. */
	CHECK_EQ_INT(sg_db_exec(db, "BEGIN"), 0);
	CHECK_EQ_INT(insert(db, 3, "c", &s2), SG_DB_DONE);
	CHECK_EQ_INT(sg_db_exec(db, "COMMIT"), 0);
	CHECK(s1 == s2);
	CHECK_EQ_INT(stats(db).prepared - a.prepared, 1);
	CHECK_EQ_INT(scalar(other, "SELECT COUNT(*) FROM t", -1), 3);
	/* The new session holds the insert and this count, nothing else. */
	CHECK_EQ_INT(scalar(db, "SELECT COUNT(*) FROM pg_prepared_statements",
	    -1), 2);
out:
	sg_db_close(other);
	sg_db_close(db);
}

static void
test_on_postgresql(void)
{
	on_pg = 1;
}

static void
test_setup(void)
{
	if (sg_fx_tmpdir("db", tmpdir, sizeof(tmpdir)) != 0)
		exit(2);
}

static void
test_teardown(void)
{
	sg_freezero(pg_password, pg_password_len);
	pg_password = NULL;
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("db",
    T(test_setup),
    T(test_reused),
    T(test_nested),
    T(test_failure_then_reuse),
    T(test_param_types),
    T(test_schema_change),
    T(test_eviction),
    T(test_on_postgresql),
    T(test_reused),
    T(test_nested),
    T(test_failure_then_reuse),
    T(test_param_types),
    T(test_schema_change),
    T(test_eviction),
    T(test_pg_reconnect_forgets),
    T(test_teardown))
