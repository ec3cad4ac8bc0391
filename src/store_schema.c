/*
 * The store's schema, on each backend, and how a database is brought to
 * the version this build writes (SG_STORE_SCHEMA_VERSION).
 *
 * SQLite keeps its history: the steps below, from the first layout on,
 * each in a transaction of its own.  PostgreSQL was added at version 5:
 * one step creates every table of that version, the log's included, and
 * each later version is a step of its own on both backends (6: the
 * notification outbox; 7: witness cosignatures; 8: the policy versions
 * in the log).  Two gateways that start together on one PostgreSQL
 * database take an advisory lock first, so only one of them creates the
 * schema.
 *
 * The schemas mean the same on both backends: the same tables, columns,
 * keys and checks.  PostgreSQL's types are BIGINT where SQLite has
 * INTEGER, BYTEA for BLOB, an identity column for AUTOINCREMENT; the
 * log's head is a one-row table whose row lock orders every write
 * transaction of every gateway (src/store.c).
 */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "sg_db.h"
#include "sg_err.h"
#include "sg_store.h"
#include "sg_util.h"
#include "store_int.h"

static int
lite_fail(sqlite3 *db, int rc)
{
	if (rc == SQLITE_CONSTRAINT)
		return SG_ERR_CONFLICT;
	if (rc == SQLITE_NOMEM)
		return SG_ERR_NOMEM;
	sg_log_error("store: %s", sqlite3_errmsg(db));
	return SG_ERR_IO;
}

/*
 * Schema versions.  PRAGMA user_version is the version a database is at;
 * steps[v] takes a database from version v to v + 1, in a transaction of
 * its own that also records v + 1, so that a crash leaves a database at
 * one version, never between two.  Opening walks the steps from the
 * database's version to STORE_SCHEMA_VERSION; a new database walks them
 * all, so that there is one way to the current schema, not two.
 *
 * A step is never edited once released (a database may already be past
 * it): a change of schema is a new step at the end.  Databases from
 * before versions were recorded are at version 0 whatever their layout
 * (the first one, or with log_index, or with timestamp_note as well); the
 * steps up to 3 therefore look at what is there before they add it.  A
 * version above STORE_SCHEMA_VERSION was written by a newer build, which
 * may have changed anything: it is refused, never guessed at.
 */
#define STORE_SCHEMA_VERSION 8

_Static_assert(STORE_SCHEMA_VERSION == SG_STORE_SCHEMA_VERSION,
    "one schema version");

/* Version 1: the first layout. */
static const char schema_v1[] =
    "CREATE TABLE IF NOT EXISTS requests ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest_hex TEXT NOT NULL,"
    " format TEXT NOT NULL,"
    " artifact TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " policy_name TEXT NOT NULL,"
    " policy_version INTEGER NOT NULL,"
    " policy_sha256 TEXT NOT NULL,"
    " spki_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','signed','rejected','expired','failed')),"
    " error TEXT,"
    " signature BLOB,"
    " cms BLOB,"
    " signed_at INTEGER,"
    " idem_key TEXT,"
    " idem_body_sha256 TEXT,"
    " UNIQUE (requester, idem_key));"
    "CREATE INDEX IF NOT EXISTS requests_state ON requests(state, seq);"
    "CREATE INDEX IF NOT EXISTS requests_key ON requests(key, seq);"
    "CREATE TABLE IF NOT EXISTS approvals ("
    " request_id TEXT NOT NULL REFERENCES requests(id),"
    " officer TEXT NOT NULL,"
    " decision TEXT NOT NULL CHECK (decision IN ('approve','reject')),"
    " at INTEGER NOT NULL,"
    " envelope TEXT NOT NULL,"
    " ord INTEGER NOT NULL,"
    " PRIMARY KEY (request_id, officer));"
    "CREATE TABLE IF NOT EXISTS policies ("
    " sha256 TEXT PRIMARY KEY,"
    " text TEXT NOT NULL,"
    " first_seen INTEGER NOT NULL);";

/* Version 3: the requests table with state 'cancelled', rebuilt under
 * this definition (SQLite cannot alter a CHECK constraint), every column
 * copied by name. */
#define V3_COLUMNS "seq, id, key, digest_alg, digest_hex, format, "	\
    "artifact, requester, created_at, expires_at, policy_name, "	\
    "policy_version, policy_sha256, spki_sha256, statement, state, error, " \
    "signature, cms, signed_at, log_index, timestamp_note, idem_key, "	\
    "idem_body_sha256, cancelled_by, cancel_reason, cancelled_at"
static const char rebuild_v3[] =
    "CREATE TABLE requests_rebuilt ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest_hex TEXT NOT NULL,"
    " format TEXT NOT NULL,"
    " artifact TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " policy_name TEXT NOT NULL,"
    " policy_version INTEGER NOT NULL,"
    " policy_sha256 TEXT NOT NULL,"
    " spki_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','signed','rejected','expired','failed','cancelled')),"
    " error TEXT,"
    " signature BLOB,"
    " cms BLOB,"
    " signed_at INTEGER,"
    " log_index INTEGER,"
    " timestamp_note TEXT,"
    " idem_key TEXT,"
    " idem_body_sha256 TEXT,"
    " cancelled_by TEXT,"
    " cancel_reason TEXT,"
    " cancelled_at INTEGER,"
    " UNIQUE (requester, idem_key));"
    "INSERT INTO requests_rebuilt (" V3_COLUMNS ") "
    "SELECT " V3_COLUMNS " FROM requests;"
    "DROP TABLE requests;"
    "ALTER TABLE requests_rebuilt RENAME TO requests;"
    "CREATE INDEX requests_state ON requests(state, seq);"
    "CREATE INDEX requests_key ON requests(key, seq);";

/* Version 4: releases and grants.  The requests table gains the kind and
 * the columns of releases and grants, and states 'active' and 'revoked'
 * (rebuilt, as for version 3); a release's artifacts get a table. */
static const char rebuild_v4[] =
    "CREATE TABLE requests_rebuilt ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest_hex TEXT NOT NULL,"
    " format TEXT NOT NULL,"
    " artifact TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " policy_name TEXT NOT NULL,"
    " policy_version INTEGER NOT NULL,"
    " policy_sha256 TEXT NOT NULL,"
    " spki_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','signed','rejected','expired','failed','cancelled',"
    "   'active','revoked')),"
    " error TEXT,"
    " signature BLOB,"
    " cms BLOB,"
    " signed_at INTEGER,"
    " log_index INTEGER,"
    " timestamp_note TEXT,"
    " idem_key TEXT,"
    " idem_body_sha256 TEXT,"
    " cancelled_by TEXT,"
    " cancel_reason TEXT,"
    " cancelled_at INTEGER,"
    " kind TEXT NOT NULL DEFAULT 'request' CHECK (kind IN"
    "  ('request','release','grant')),"
    " count INTEGER NOT NULL DEFAULT 0,"
    " used INTEGER NOT NULL DEFAULT 0,"
    " approved_index INTEGER,"
    " grant_id TEXT,"
    " grant_seq INTEGER,"
    " CHECK (kind <> 'grant' OR used <= count),"
    " UNIQUE (requester, idem_key),"
    " UNIQUE (grant_id, grant_seq));"
    "INSERT INTO requests_rebuilt (" V3_COLUMNS ") "
    "SELECT " V3_COLUMNS " FROM requests;"
    "DROP TABLE requests;"
    "ALTER TABLE requests_rebuilt RENAME TO requests;"
    "CREATE INDEX requests_state ON requests(state, seq);"
    "CREATE INDEX requests_key ON requests(key, seq);";
static const char release_artifacts_v4[] =
    "CREATE TABLE IF NOT EXISTS release_artifacts ("
    " release_id TEXT NOT NULL REFERENCES requests(id),"
    " position INTEGER NOT NULL,"
    " line TEXT NOT NULL,"
    " signature BLOB,"
    " cms BLOB,"
    " log_index INTEGER,"
    " signed_at INTEGER,"
    " PRIMARY KEY (release_id, position));";

/* One integer from a statement that returns one (a PRAGMA, a count). */
static int
query_int(sqlite3 *db, const char *sql, int64_t *ret)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL)) != SQLITE_OK)
		return lite_fail(db, rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : lite_fail(db, rc);
}

/* 1 if table has the column, 0 if not. */
static int
has_column(sqlite3 *db, const char *table, const char *column,
    int *ret)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) "
	    "WHERE name = ?2", -1, &s, NULL)) != SQLITE_OK)
		return lite_fail(db, rc);
	sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, column, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return lite_fail(db, rc);
	*ret = rc == SQLITE_ROW;
	return 0;
}

/* ALTER TABLE ... ADD COLUMN, unless a database from before versions
 * has it already. */
static int
add_column(sqlite3 *db, const char *table, const char *column,
    const char *type)
{
	char sql[160];
	int have, r, rc;

	if ((r = has_column(db, table, column, &have)) != 0 || have)
		return r;
	snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", table,
	    column, type);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : lite_fail(db, rc);
}

static int
step_v1(sqlite3 *db)
{
	int rc = sqlite3_exec(db, schema_v1, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : lite_fail(db, rc);
}

/* Version 2: the signature's log entry and its time-stamp outcome. */
static int
step_v2(sqlite3 *db)
{
	int r;

	if ((r = add_column(db, "requests", "log_index", "INTEGER")) != 0 ||
	    (r = add_column(db, "requests", "timestamp_note", "TEXT")) != 0)
		return r;
	return 0;
}

/* Version 3: cancelled requests, with who, why and when. */
static int
step_v3(sqlite3 *db)
{
	int64_t current;
	int r, rc;

	if ((r = add_column(db, "requests", "cancelled_by", "TEXT")) != 0 ||
	    (r = add_column(db, "requests", "cancel_reason", "TEXT")) != 0 ||
	    (r = add_column(db, "requests", "cancelled_at", "INTEGER")) != 0)
		return r;
	if ((r = query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'requests' AND "
	    "sql LIKE '%''cancelled''%'", &current)) != 0)
		return r;
	if (current)
		return 0;
	rc = sqlite3_exec(db, rebuild_v3, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : lite_fail(db, rc);
}

/* Version 4: releases and grants.  Like the steps before it, it looks
 * at what is there first: a database whose version was reset (restored
 * by hand, say) may hold the layout already. */
static int
step_v4(sqlite3 *db)
{
	int have, r, rc;

	if ((r = has_column(db, "requests", "kind", &have)) != 0)
		return r;
	if (!have && (rc = sqlite3_exec(db, rebuild_v4, NULL, NULL,
	    NULL)) != SQLITE_OK)
		return lite_fail(db, rc);
	rc = sqlite3_exec(db, release_artifacts_v4, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : lite_fail(db, rc);
}

/* Version 5: claims, which gateway signs what (see store_claim.c). */
static const char claims_v5[] =
    "CREATE TABLE IF NOT EXISTS claims ("
    " object_id TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " until INTEGER NOT NULL);";

static int
step_v5(sqlite3 *db)
{
	int rc = sqlite3_exec(db, claims_v5, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : lite_fail(db, rc);
}

/* Version 6: the notification outbox (src/store_outbox.c): one row per
 * event and webhook, written with the change it reports. */
#define OUTBOX_V6(INT, SERIAL)						\
    "CREATE TABLE IF NOT EXISTS notify_outbox ("			\
    " seq " SERIAL ","							\
    " event_id TEXT NOT NULL,"						\
    " webhook TEXT NOT NULL,"						\
    " type TEXT NOT NULL,"						\
    " object_id TEXT NOT NULL,"						\
    " body TEXT NOT NULL,"						\
    " created_at " INT " NOT NULL,"					\
    " attempts " INT " NOT NULL DEFAULT 0,"				\
    " next_at " INT " NOT NULL,"					\
    " owner TEXT,"							\
    " until " INT " NOT NULL DEFAULT 0,"				\
    " delivered_at " INT ","						\
    " last_error TEXT,"							\
    " UNIQUE (event_id, webhook));"					\
    "CREATE INDEX IF NOT EXISTS notify_outbox_due ON "			\
    "notify_outbox(webhook, delivered_at, next_at);"

static const char outbox_v6[] =
    OUTBOX_V6("INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT");

static int
step_v6(sqlite3 *db)
{
	int rc = sqlite3_exec(db, outbox_v6, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : lite_fail(db, rc);
}

/* Version 7: witnesses (src/witnessing.c).  A checkpoint keeps the
 * cosignature lines the witnesses returned apart from the log's signed
 * note (served appended to it), and how many distinct configured
 * witnesses they are; each witness's size is the tree it last
 * acknowledged, where the next consistency proof it is sent starts. */
#define WITNESSES_V7(INT)						\
    "CREATE TABLE IF NOT EXISTS witness_sizes ("			\
    " vkey TEXT PRIMARY KEY,"						\
    " size " INT " NOT NULL,"						\
    " updated_at " INT " NOT NULL);"

static const char witnesses_v7[] =
    /* SQLite's log tables are made by the log (sg_tlog_tables), after
     * the steps: a new database has none yet. */
    "CREATE TABLE IF NOT EXISTS log_checkpoints ("
    " size INTEGER PRIMARY KEY,"
    " note TEXT NOT NULL,"
    " signed_at INTEGER NOT NULL DEFAULT 0);"
    WITNESSES_V7("INTEGER");
/* Version 8: the policy versions in the log (src/store_policy.c): each
 * policy's log entry, status and predecessor, and the policy-effective
 * entry of one logged pending; the approvals of a pending one. */
#define POLICY_APPROVALS_V8(INT)					\
    "CREATE TABLE IF NOT EXISTS policy_approvals ("			\
    " policy_sha256 TEXT NOT NULL REFERENCES policies(sha256),"	\
    " officer TEXT NOT NULL,"						\
    " at " INT " NOT NULL,"						\
    " envelope TEXT NOT NULL,"						\
    " log_index " INT " NOT NULL,"					\
    " PRIMARY KEY (policy_sha256, officer));"
#define POLICY_STATUS_V8						\
    "CHECK (status IN ('effective','pending','replaced'))"

static const char policy_approvals_v8[] = POLICY_APPROVALS_V8("INTEGER");

static int
step_v7(sqlite3 *db)
{
	int r, rc = sqlite3_exec(db, witnesses_v7, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return lite_fail(db, rc);
	if ((r = add_column(db, "log_checkpoints", "signed_at",
	    "INTEGER NOT NULL DEFAULT 0")) != 0 ||
	    (r = add_column(db, "log_checkpoints", "cosignatures",
	    "TEXT NOT NULL DEFAULT ''")) != 0 ||
	    (r = add_column(db, "log_checkpoints", "cosigned",
	    "INTEGER NOT NULL DEFAULT 0")) != 0)
		return r;
	return 0;
}

static int
step_v8(sqlite3 *db)
{
	int r, rc;

	if ((r = add_column(db, "policies", "log_index", "INTEGER")) != 0 ||
	    (r = add_column(db, "policies", "status", "TEXT "
	    POLICY_STATUS_V8)) != 0 ||
	    (r = add_column(db, "policies", "previous", "TEXT")) != 0 ||
	    (r = add_column(db, "policies", "effective_index",
	    "INTEGER")) != 0)
		return r;
	rc = sqlite3_exec(db, policy_approvals_v8, NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : lite_fail(db, rc);
}

static const struct {
	int (*apply)(sqlite3 *db);
	const char *what;
} steps[STORE_SCHEMA_VERSION] = {
	{ step_v1, "requests, approvals and policies" },
	{ step_v2, "log index and time-stamp note" },
	{ step_v3, "cancelled requests" },
	{ step_v4, "releases and grants" },
	{ step_v5, "claims shared by gateways" },
	{ step_v6, "notification outbox" },
	{ step_v7, "witness cosignatures" },
	{ step_v8, "policy versions in the log" },
};

/*
 * Runs one step if the database (read inside the transaction, so that
 * two processes cannot both run it) still needs it; *ret_version is the
 * version found.  Foreign keys are off (SQLite's procedure for rebuilding
 * a table), so they are checked before the COMMIT.
 */
static int
migrate_one(sqlite3 *db, const char *path, int64_t *ret_version)
{
	int64_t v, bad = 0;
	char sql[64];
	int r, rc;

	if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL)) != SQLITE_OK)
		return lite_fail(db, rc);
	if ((r = query_int(db, "PRAGMA user_version", &v)) != 0)
		goto fail;
	*ret_version = v;
	if (v < 0 || v > STORE_SCHEMA_VERSION) {
		sg_log_error("store %s: its schema is version %lld, newer than "
		    "this build's (%d): refusing to open it; run the signgated "
		    "that wrote it, or a newer one", path, (long long)v,
		    STORE_SCHEMA_VERSION);
		r = SG_ERR_CONFLICT;
		goto fail;
	}
	if (v == STORE_SCHEMA_VERSION) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	if ((r = steps[v].apply(db)) != 0 ||
	    (r = query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check",
	    &bad)) != 0) {
		sg_log_error("store %s: cannot bring the schema from version "
		    "%lld to %lld (%s): %s", path, (long long)v,
		    (long long)v + 1, steps[v].what, sg_strerror(r));
		goto fail;
	}
	if (bad != 0) {
		sg_log_error("store %s: %lld rows break a foreign key after "
		    "step %lld", path, (long long)bad, (long long)v + 1);
		r = SG_ERR_IO;
		goto fail;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld",
	    (long long)v + 1);
	if ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
		r = lite_fail(db, rc);
		goto fail;
	}
	return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* Brings the database to STORE_SCHEMA_VERSION, one step at a time. */
static int
lite_migrate(sqlite3 *db, const char *path)
{
	int64_t v = -1, prev = -1, tables = 0;
	int r, rc;

	if ((r = query_int(db, "SELECT COUNT(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name = 'requests'", &tables)) != 0)
		return r;
	if ((rc = sqlite3_exec(db, "PRAGMA foreign_keys=OFF", NULL, NULL,
	    NULL)) != SQLITE_OK)
		return lite_fail(db, rc);
	for (;;) {
		if ((r = migrate_one(db, path, &v)) != 0)
			break;
		if (v == STORE_SCHEMA_VERSION)
			break;
		if (v == prev) {        /* cannot happen: no progress */
			r = SG_ERR_INTERNAL;
			break;
		}
		if (tables)
			sg_log_info("store %s: schema version %lld to %lld: %s",
			    path, (long long)v, (long long)v + 1,
			    steps[v].what);
		prev = v;
	}
	if ((rc = sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL,
	    NULL)) != SQLITE_OK && r == 0)
		r = lite_fail(db, rc);
	return r;
}

/* The whole schema at version 5, on PostgreSQL. */
static const char pg_schema_v5[] =
    "CREATE TABLE requests ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " key TEXT NOT NULL,"
    " digest_alg TEXT NOT NULL,"
    " digest_hex TEXT NOT NULL,"
    " format TEXT NOT NULL,"
    " artifact TEXT NOT NULL,"
    " requester TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " policy_name TEXT NOT NULL,"
    " policy_version BIGINT NOT NULL,"
    " policy_sha256 TEXT NOT NULL,"
    " spki_sha256 TEXT NOT NULL,"
    " statement TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN"
    "  ('pending','signed','rejected','expired','failed','cancelled',"
    "   'active','revoked')),"
    " error TEXT,"
    " signature BYTEA,"
    " cms BYTEA,"
    " signed_at BIGINT,"
    " log_index BIGINT,"
    " timestamp_note TEXT,"
    " idem_key TEXT,"
    " idem_body_sha256 TEXT,"
    " cancelled_by TEXT,"
    " cancel_reason TEXT,"
    " cancelled_at BIGINT,"
    " kind TEXT NOT NULL DEFAULT 'request' CHECK (kind IN"
    "  ('request','release','grant')),"
    " count BIGINT NOT NULL DEFAULT 0,"
    " used BIGINT NOT NULL DEFAULT 0,"
    " approved_index BIGINT,"
    " grant_id TEXT,"
    " grant_seq BIGINT,"
    " CHECK (kind <> 'grant' OR used <= count),"
    " UNIQUE (requester, idem_key),"
    " UNIQUE (grant_id, grant_seq));"
    "CREATE INDEX requests_state ON requests(state, seq);"
    "CREATE INDEX requests_key ON requests(key, seq);"
    "CREATE TABLE approvals ("
    " request_id TEXT NOT NULL REFERENCES requests(id),"
    " officer TEXT NOT NULL,"
    " decision TEXT NOT NULL CHECK (decision IN ('approve','reject')),"
    " at BIGINT NOT NULL,"
    " envelope TEXT NOT NULL,"
    " ord BIGINT NOT NULL,"
    " PRIMARY KEY (request_id, officer));"
    "CREATE TABLE policies ("
    " sha256 TEXT PRIMARY KEY,"
    " text TEXT NOT NULL,"
    " first_seen BIGINT NOT NULL);"
    "CREATE TABLE release_artifacts ("
    " release_id TEXT NOT NULL REFERENCES requests(id),"
    " position BIGINT NOT NULL,"
    " line TEXT NOT NULL,"
    " signature BYTEA,"
    " cms BYTEA,"
    " log_index BIGINT,"
    " signed_at BIGINT,"
    " PRIMARY KEY (release_id, position));"
    "CREATE TABLE claims ("
    " object_id TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " until BIGINT NOT NULL);"
    "CREATE TABLE log_head ("
    " id INTEGER PRIMARY KEY CHECK (id = 1));"
    "INSERT INTO log_head (id) VALUES (1);"
    "CREATE TABLE log_entries ("
    " idx BIGINT PRIMARY KEY,"
    " data BYTEA NOT NULL);"
    "CREATE TABLE log_nodes ("
    " level INTEGER NOT NULL,"
    " idx BIGINT NOT NULL,"
    " hash BYTEA NOT NULL,"
    " PRIMARY KEY (level, idx));"
    "CREATE TABLE log_checkpoints ("
    " size BIGINT PRIMARY KEY,"
    " note TEXT NOT NULL,"
    " signed_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE TABLE signgate_schema (version BIGINT NOT NULL);"
    "INSERT INTO signgate_schema (version) VALUES (5);";

/* PostgreSQL's steps after version 5, as SQLite's: steps_pg[v - 5] takes
 * a database from v to v + 1, and records v + 1. */
static const char pg_outbox_v6[] =
    OUTBOX_V6("BIGINT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
    "INSERT INTO signgate_schema (version) VALUES (6);";

static const char pg_witnesses_v7[] =
    "ALTER TABLE log_checkpoints ADD COLUMN cosignatures TEXT NOT NULL "
    "DEFAULT '';"
    "ALTER TABLE log_checkpoints ADD COLUMN cosigned BIGINT NOT NULL "
    "DEFAULT 0;"
    WITNESSES_V7("BIGINT")
    "INSERT INTO signgate_schema (version) VALUES (7);";

static const char pg_policies_v8[] =
    "ALTER TABLE policies ADD COLUMN log_index BIGINT;"
    "ALTER TABLE policies ADD COLUMN status TEXT " POLICY_STATUS_V8 ";"
    "ALTER TABLE policies ADD COLUMN previous TEXT;"
    "ALTER TABLE policies ADD COLUMN effective_index BIGINT;"
    POLICY_APPROVALS_V8("BIGINT")
    "INSERT INTO signgate_schema (version) VALUES (8);";

static const struct {
	const char *sql;
	const char *what;
} steps_pg[STORE_SCHEMA_VERSION - 5] = {
	{ pg_outbox_v6, "notification outbox" },
	{ pg_witnesses_v7, "witness cosignatures" },
	{ pg_policies_v8, "policy versions in the log" },
};

/* "SG" "SC": the advisory lock two starting gateways share. */
#define PG_SCHEMA_LOCK "1397179203"

static int
pg_one_int(struct sg_db *db, const char *sql, int64_t *ret)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = sg_db_prepare(db, sql, &s)) != 0)
		return r;
	r = sg_db_step(s);
	if (r == SG_DB_ROW) {
		*ret = sg_db_column_int64(s, 0);
		r = 0;
	} else if (r == SG_DB_DONE)
		r = SG_ERR_NOT_FOUND;
	sg_db_finalize(s);
	return r;
}

/* Under the advisory lock: the steps from version v (5 or more) on;
 * each said in the log when the database held rows before (announce). */
static int
pg_upgrade(struct sg_db *db, const char *where, int64_t v, int announce)
{
	int r;

	for (; v >= 5 && v < STORE_SCHEMA_VERSION; v++) {
		if ((r = sg_db_exec(db, steps_pg[v - 5].sql)) != 0) {
			sg_log_error("store %s: cannot bring the schema from "
			    "version %lld to %lld (%s)", where, (long long)v,
			    (long long)v + 1, steps_pg[v - 5].what);
			return r;
		}
		if (announce)
			sg_log_info("store %s: schema version %lld to %lld: %s",
			    where, (long long)v, (long long)v + 1,
			    steps_pg[v - 5].what);
	}
	return 0;
}

/*
 * One transaction under the advisory lock: a new database is created at
 * version 5 and walks the steps after it, as an existing one does, so
 * that there is one way to the current schema.  A crash leaves the
 * database as it was (PostgreSQL's DDL is transactional).
 */
static int
pg_migrate(struct sg_db *db, const char *where)
{
	int64_t have = 0, v = 0;
	int r;

	if ((r = sg_db_exec(db, "BEGIN; SELECT pg_advisory_xact_lock("
	    PG_SCHEMA_LOCK ")")) != 0)
		goto fail;
	if ((r = pg_one_int(db, "SELECT COUNT(*) FROM pg_catalog.pg_tables "
	    "WHERE schemaname = current_schema() AND tablename = "
	    "'signgate_schema'", &have)) != 0)
		goto fail;
	if (!have) {
		if ((r = pg_one_int(db, "SELECT COUNT(*) FROM "
		    "pg_catalog.pg_tables WHERE schemaname = current_schema() "
		    "AND tablename IN ('requests', 'log_entries')",
		    &have)) != 0)
			goto fail;
		if (have) {
			sg_log_error("store %s: the database holds signgate's "
			    "tables but no schema version: refusing it", where);
			r = SG_ERR_CONFLICT;
			goto rollback;
		}
		if ((r = sg_db_exec(db, pg_schema_v5)) != 0 ||
		    (r = pg_upgrade(db, where, 5, 0)) != 0)
			goto fail;
		sg_log_info("store %s: schema version %d created", where,
		    STORE_SCHEMA_VERSION);
	} else {
		if ((r = pg_one_int(db, "SELECT MAX(version) FROM "
		    "signgate_schema", &v)) != 0)
			goto fail;
		if (v < 5 || v > STORE_SCHEMA_VERSION) {
			sg_log_error("store %s: its schema is version %lld, this "
			    "build writes %d: refusing to open it%s", where,
			    (long long)v, STORE_SCHEMA_VERSION,
			    v > STORE_SCHEMA_VERSION ? "; run the signgated that "
			    "wrote it, or a newer one" : "");
			r = SG_ERR_CONFLICT;
			goto rollback;
		}
		if ((r = pg_upgrade(db, where, v, 1)) != 0)
			goto fail;
	}
	if ((r = sg_db_exec(db, "COMMIT")) != 0)
		goto fail;
	return 0;
fail:
	sg_log_error("store %s: the schema cannot be read or created: %s",
	    where, sg_db_errmsg(db));
rollback:
	sg_db_exec(db, "ROLLBACK");
	return r;
}

int
store_schema_migrate(struct sg_db *db, const char *where)
{
	if (sg_db_backend(db) == SG_DB_POSTGRESQL)
		return pg_migrate(db, where);
	return lite_migrate(sg_db_sqlite(db), where);
}
