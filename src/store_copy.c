/*
 * Copying a store to another backend (signgated --copy-store): a SQLite
 * state into an empty PostgreSQL database, or back, with the gateway
 * stopped.
 *
 * The source is read in one snapshot (a read transaction), every table
 * but claims (a gateway's passing hold on a request) and the
 * notification outbox (its deliveries) in primary-key
 * order, a page of rows at a time: each page starts after the last key
 * of the one before (keyset paging), so that nothing held in memory
 * grows with the store.  Rows are written in multi-row INSERTs.  The
 * target is written in ONE transaction, begun under the gateways' own
 * write lock, and committed only once the target, read back inside that
 * transaction, has passed the checks below: a copy that fails for any
 * reason, a check included, leaves the target as it was, empty.
 *
 * The checks, on what the target holds:
 *   - each table has as many rows as the source's, and the same ones: the
 *     SHA-256 of each row's values (type, length, bytes), added up modulo
 *     2^256 over the table, so that the order in which each backend sorts
 *     text keys (its collation) does not matter;
 *   - the log: its entries are 0 .. M-1 without a gap; the source's newest
 *     signed checkpoint (its note parsed) commits to N <= M entries and
 *     root R; the RFC 6962 root of the first N entries, recomputed from
 *     the entries' bytes, is R; the stored subtree hashes (log_nodes)
 *     give R for N entries and the recomputed root for M, and there are
 *     exactly as many of them as a tree of M entries has;
 *   - requests.seq goes on after the largest one copied (or after the
 *     source's counter, when larger), so that no number is given twice.
 * The checkpoint's signature is not checked here (the log key is the
 * signer's): the gateway's signer checks the stored tree at the next
 * start, when it is asked to sign it as an extension of the tree it
 * signed last.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sg_config.h"
#include "sg_db.h"
#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_store.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "store_int.h"

/* Rows read per query: a page of requests or approvals is a few MB at
 * most; log entries (up to SG_ENTRY_MAX, 256 KiB from older builds,
 * twice that as PostgreSQL's hex) and policies come fewer at a time, for
 * the same bound. */
#define COPY_PAGE 500
#define COPY_PAGE_LARGE 32
#define COPY_PARAMS 40             /* sg_db binds at most 40 parameters */
#define COPY_MAX_COLS 36
#define COPY_MAX_KEY 2

/* The tables and columns below are those of schema version 8
 * (src/store_schema.c): a new version adds its own here.  Version 8's
 * policy columns and approvals are copied.  Version 6's
 * notification outbox is not copied, as claims are not: it holds
 * deliveries of this store's gateways, not the store's record (stop the
 * gateways once they have delivered: docs/OPERATIONS.md). */
_Static_assert(SG_STORE_SCHEMA_VERSION == 8,
    "src/store_copy.c copies the tables of schema version 8");

enum col_type { COL_INT, COL_TEXT, COL_BLOB };

struct col {
	const char *name;
	enum col_type type;
};

/* A table and its columns, the primary key's first. */
struct table {
	const char *name;
	const struct col *cols;
	size_t ncols;
	size_t nkey;
	int page;
};

#define COLS(v) v, sizeof(v) / sizeof(v[0])
#define NCOLS(v) (sizeof(v) / sizeof(v[0]))

static const struct col requests_cols[] = {
	{ "seq", COL_INT }, { "id", COL_TEXT }, { "key", COL_TEXT },
	{ "digest_alg", COL_TEXT }, { "digest_hex", COL_TEXT },
	{ "format", COL_TEXT }, { "artifact", COL_TEXT },
	{ "requester", COL_TEXT }, { "created_at", COL_INT },
	{ "expires_at", COL_INT }, { "policy_name", COL_TEXT },
	{ "policy_version", COL_INT }, { "policy_sha256", COL_TEXT },
	{ "spki_sha256", COL_TEXT }, { "statement", COL_TEXT },
	{ "state", COL_TEXT }, { "error", COL_TEXT },
	{ "signature", COL_BLOB }, { "cms", COL_BLOB },
	{ "signed_at", COL_INT }, { "log_index", COL_INT },
	{ "timestamp_note", COL_TEXT }, { "idem_key", COL_TEXT },
	{ "idem_body_sha256", COL_TEXT }, { "cancelled_by", COL_TEXT },
	{ "cancel_reason", COL_TEXT }, { "cancelled_at", COL_INT },
	{ "kind", COL_TEXT }, { "count", COL_INT }, { "used", COL_INT },
	{ "approved_index", COL_INT }, { "grant_id", COL_TEXT },
	{ "grant_seq", COL_INT },
};
_Static_assert(NCOLS(requests_cols) <= COPY_MAX_COLS &&
    NCOLS(requests_cols) <= COPY_PARAMS, "the widest table fits");
static const struct col approvals_cols[] = {
	{ "request_id", COL_TEXT }, { "officer", COL_TEXT },
	{ "decision", COL_TEXT }, { "at", COL_INT }, { "envelope", COL_TEXT },
	{ "ord", COL_INT },
};
static const struct col policies_cols[] = {
	{ "sha256", COL_TEXT }, { "text", COL_TEXT },
	{ "first_seen", COL_INT }, { "log_index", COL_INT },
	{ "status", COL_TEXT }, { "previous", COL_TEXT },
	{ "effective_index", COL_INT },
};
static const struct col policy_approvals_cols[] = {
	{ "policy_sha256", COL_TEXT }, { "officer", COL_TEXT },
	{ "at", COL_INT }, { "envelope", COL_TEXT }, { "log_index", COL_INT },
};
static const struct col artifacts_cols[] = {
	{ "release_id", COL_TEXT }, { "position", COL_INT },
	{ "line", COL_TEXT }, { "signature", COL_BLOB }, { "cms", COL_BLOB },
	{ "log_index", COL_INT }, { "signed_at", COL_INT },
};
static const struct col entries_cols[] = {
	{ "idx", COL_INT }, { "data", COL_BLOB },
};
static const struct col nodes_cols[] = {
	{ "level", COL_INT }, { "idx", COL_INT }, { "hash", COL_BLOB },
};
static const struct col checkpoints_cols[] = {
	{ "size", COL_INT }, { "note", COL_TEXT }, { "signed_at", COL_INT },
	{ "cosignatures", COL_TEXT }, { "cosigned", COL_INT },
};
/* Version 7: where each witness's next consistency proof starts. */
static const struct col witness_sizes_cols[] = {
	{ "vkey", COL_TEXT }, { "size", COL_INT }, { "updated_at", COL_INT },
};

/* In the order they are written: a row's foreign keys before it. */
enum { T_REQUESTS, T_APPROVALS, T_POLICIES, T_POLICY_APPROVALS,
    T_ARTIFACTS, T_ENTRIES, T_NODES, T_CHECKPOINTS, T_WITNESS_SIZES,
    NTABLES };
static const struct table tables[NTABLES] = {
	{ "requests", COLS(requests_cols), 1, COPY_PAGE },
	{ "approvals", COLS(approvals_cols), 2, COPY_PAGE },
	{ "policies", COLS(policies_cols), 1, COPY_PAGE_LARGE },
	{ "policy_approvals", COLS(policy_approvals_cols), 2, COPY_PAGE },
	{ "release_artifacts", COLS(artifacts_cols), 2, COPY_PAGE },
	{ "log_entries", COLS(entries_cols), 1, COPY_PAGE_LARGE },
	{ "log_nodes", COLS(nodes_cols), 2, COPY_PAGE },
	{ "log_checkpoints", COLS(checkpoints_cols), 1, COPY_PAGE },
	{ "witness_sizes", COLS(witness_sizes_cols), 1, COPY_PAGE },
};

/* One value read; text and blobs malloc'd (never NULL unless null). */
struct cell {
	int null;
	int64_t i;
	char *p;
	size_t n;
};

struct tally {
	uint64_t count;                /* source: SELECT COUNT(*) */
	uint64_t src_rows, dst_rows;   /* rows read from each side */
	uint8_t src_sum[SG_HASH_LEN], dst_sum[SG_HASH_LEN];
};

struct copy {
	struct sg_db *src, *dst;
	char *src_name, *dst_name;     /* "sqlite:DIR", "postgresql:..." */
	int write;                     /* copying; 0: checking only */
	EVP_MD_CTX *md;
	char *errbuf;
	size_t errlen;
	struct tally t[NTABLES];
	/* The rows waiting for the next INSERT (write). */
	struct cell batch[COPY_PARAMS];
	size_t batch_rows;
	struct sg_db_stmt *ins;        /* the INSERT of a whole batch */
	/* requests.seq */
	int64_t max_seq;
	int64_t src_counter, dst_counter;
	/* The source's newest checkpoint. */
	int have_cp;
	uint64_t cp_size;
	uint8_t cp_root[SG_HASH_LEN];
	/* The target's log, recomputed from its entries. */
	struct sg_merkle_frontier fr;
	uint8_t root_n[SG_HASH_LEN];   /* of the first cp_size entries */
	int have_root_n;
	uint64_t gap;                  /* the first index missing, if any */
	int have_gap;
	uint64_t nodes_made;           /* subtrees of the recomputed tree */
};

static int
fail(struct copy *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct copy *c, int code, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sg_err_set(c->errbuf, c->errlen, code, "%s", msg);
}

/* A database failure, with the server's words. */
static int
db_fail(struct copy *c, struct sg_db *db, int r, const char *what)
{
	const char *side = db == c->src ? c->src_name : c->dst_name;

	if (r >= 0)
		r = SG_ERR_INTERNAL;
	return fail(c, r, "%s: %s: %s", side, what, sg_db_errmsg(db));
}

static void
cell_clear(struct cell *v)
{
	free(v->p);
	memset(v, 0, sizeof(*v));
}

static void
cells_clear(struct cell *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		cell_clear(&v[i]);
}

/* ---- SQL text ---- */

/* "a, b, c" for columns [from, to) of tb, or NULL. */
static char *
col_list(const struct table *tb, size_t from, size_t to)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	for (i = from; i < to; i++)
		fprintf(f, "%s%s", i > from ? ", " : "", tb->cols[i].name);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* SELECT of a page, from the start or (after) from the key ?1, ?2. */
static char *
page_sql(const struct table *tb, int after)
{
	char *cols = col_list(tb, 0, tb->ncols);
	char *keys = col_list(tb, 0, tb->nkey);
	char *sql = NULL;
	int n = -1;

	if (cols != NULL && keys != NULL)
		n = asprintf(&sql, "SELECT %s FROM %s%s%s%s%s ORDER BY %s "
		    "LIMIT %d", cols, tb->name, after ? " WHERE (" : "",
		    after ? keys : "", after ? ") > (" : "",
		    after ? (tb->nkey == 1 ? "?1)" : "?1, ?2)") : "", keys,
		    tb->page);
	free(cols);
	free(keys);
	return n < 0 ? NULL : sql;
}

/* INSERT of rows rows of tb: VALUES (?1, ?2, ...), (...). */
static char *
insert_sql(const struct table *tb, size_t rows)
{
	char *cols = col_list(tb, 0, tb->ncols);
	char *buf = NULL;
	size_t len = 0, r, i, k = 1;
	FILE *f;

	if (cols == NULL || (f = open_memstream(&buf, &len)) == NULL) {
		free(cols);
		return NULL;
	}
	fprintf(f, "INSERT INTO %s (%s) VALUES ", tb->name, cols);
	for (r = 0; r < rows; r++) {
		fprintf(f, "%s(", r > 0 ? ", " : "");
		for (i = 0; i < tb->ncols; i++)
			fprintf(f, "%s?%zu", i > 0 ? ", " : "", k++);
		fputc(')', f);
	}
	free(cols);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- rows ---- */

/* The current row of s into row (tb->ncols cells). */
static int
read_row(struct copy *c, struct sg_db *db, struct sg_db_stmt *s,
    const struct table *tb, struct cell *row)
{
	const char *side = db == c->src ? c->src_name : c->dst_name;
	const void *p;
	size_t i, n;

	for (i = 0; i < tb->ncols; i++) {
		struct cell *v = &row[i];
		memset(v, 0, sizeof(*v));
		if (sg_db_column_null(s, (int)i)) {
			v->null = 1;
			continue;
		}
		if (tb->cols[i].type == COL_INT) {
			v->i = sg_db_column_int64(s, (int)i);
			continue;
		}
		if (tb->cols[i].type == COL_TEXT) {
			p = sg_db_column_text(s, (int)i);
			n = p != NULL ? sg_db_column_bytes(s, (int)i) : 0;
			if (p != NULL && memchr(p, '\0', n) != NULL)
				return fail(c, SG_ERR_INVALID, "%s: %s.%s "
				    "holds a NUL byte, which PostgreSQL's "
				    "text cannot", side, tb->name,
				    tb->cols[i].name);
		} else {
			p = sg_db_column_blob(s, (int)i);
			n = sg_db_column_bytes(s, (int)i);
			/* SQLite gives no pointer for an empty blob;
			 * PostgreSQL always does, unless it cannot decode. */
			if (p == NULL && n == 0 &&
			    sg_db_backend(db) == SG_DB_SQLITE)
				p = "";
		}
		if (p == NULL)
			return fail(c, SG_ERR_IO, "%s: %s.%s cannot be read",
			    side, tb->name, tb->cols[i].name);
		if ((v->p = malloc(n + 1)) == NULL)
			return SG_ERR_NOMEM;
		memcpy(v->p, p, n);
		v->p[n] = '\0';
		v->n = n;
	}
	return 0;
}

static void
put_u64(uint8_t *b, uint64_t x)
{
	int i;

	for (i = 7; i >= 0; i--, x >>= 8)
		b[i] = (uint8_t)x;
}

/* sum += SHA-256(row) mod 2^256, the row written as, for each value,
 * its kind (0 null, 1 integer, 2 text, 3 blob) then 8 bytes of the
 * integer or of the length followed by the bytes. */
static int
add_row_hash(struct copy *c, const struct table *tb, const struct cell *row,
    uint8_t sum[SG_HASH_LEN])
{
	uint8_t h[SG_HASH_LEN], b[9];
	unsigned carry = 0, len = 0;
	size_t i;
	int k, ok;

	ok = EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < tb->ncols; i++) {
		const struct cell *v = &row[i];
		b[0] = v->null ? 0 : tb->cols[i].type == COL_INT ? 1 :
		    tb->cols[i].type == COL_TEXT ? 2 : 3;
		put_u64(b + 1, v->null ? 0 : b[0] == 1 ? (uint64_t)v->i :
		    (uint64_t)v->n);
		ok = EVP_DigestUpdate(c->md, b, sizeof(b)) == 1 &&
		    (b[0] < 2 || EVP_DigestUpdate(c->md, v->p, v->n) == 1);
	}
	if (!ok || EVP_DigestFinal_ex(c->md, h, &len) != 1 ||
	    len != SG_HASH_LEN)
		return fail(c, SG_ERR_CRYPTO, "SHA-256 failed");
	for (k = SG_HASH_LEN - 1; k >= 0; k--) {
		carry += (unsigned)sum[k] + h[k];
		sum[k] = (uint8_t)carry;
		carry >>= 8;
	}
	return 0;
}

/* ---- writing the target ---- */

static void
bind_cell(struct sg_db_stmt *s, int i, enum col_type type,
    const struct cell *v)
{
	if (v->null)
		sg_db_bind_null(s, i);
	else if (type == COL_INT)
		sg_db_bind_int64(s, i, v->i);
	else if (type == COL_TEXT)
		sg_db_bind_text(s, i, v->p);
	else
		sg_db_bind_blob(s, i, v->p, v->n);
}

/* Inserts the rows waiting in the batch. */
static int
flush(struct copy *c, const struct table *tb)
{
	size_t per = COPY_PARAMS / tb->ncols, i;
	struct sg_db_stmt *s;
	char *sql = NULL;
	int r;

	if (c->batch_rows == 0)
		return 0;
	if (c->batch_rows < per || c->ins == NULL) {
		if ((sql = insert_sql(tb, c->batch_rows)) == NULL)
			return SG_ERR_NOMEM;
		r = sg_db_prepare(c->dst, sql, &s);
		free(sql);
		if (r != 0)
			return db_fail(c, c->dst, r, tb->name);
		if (c->batch_rows == per)
			c->ins = s;
	} else {
		s = c->ins;
		sg_db_reset(s);
	}
	for (i = 0; i < c->batch_rows * tb->ncols; i++)
		bind_cell(s, (int)i + 1, tb->cols[i % tb->ncols].type,
		    &c->batch[i]);
	r = sg_db_step(s);
	if (s != c->ins)
		sg_db_finalize(s);
	cells_clear(c->batch, c->batch_rows * tb->ncols);
	c->batch_rows = 0;
	if (r != SG_DB_DONE)
		return db_fail(c, c->dst, r, tb->name);
	return 0;
}

/* A source row joins the batch (its buffers taken). */
static int
copy_row(struct copy *c, const struct table *tb, struct cell *row)
{
	size_t per = COPY_PARAMS / tb->ncols;

	if (tb == &tables[T_REQUESTS] && !row[0].null &&
	    row[0].i > c->max_seq)
		c->max_seq = row[0].i;
	if (!c->write)
		return 0;
	memcpy(&c->batch[c->batch_rows * tb->ncols], row,
	    tb->ncols * sizeof(*row));
	memset(row, 0, tb->ncols * sizeof(*row));
	if (++c->batch_rows < per)
		return 0;
	return flush(c, tb);
}

/* ---- checking the target's log ---- */

static int
count_node(void *arg, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN])
{
	struct copy *c = arg;

	(void)level;
	(void)index;
	(void)hash;
	c->nodes_made++;
	return 0;
}

/* A target row: log entries grow the recomputed tree. */
static int
check_row(struct copy *c, const struct table *tb, struct cell *row)
{
	uint8_t leaf[SG_HASH_LEN];
	int r;

	if (tb != &tables[T_ENTRIES])
		return 0;
	if (row[0].null || row[1].null || row[0].i < 0 ||
	    (uint64_t)row[0].i != c->fr.size) {
		if (!c->have_gap) {
			c->have_gap = 1;
			c->gap = c->fr.size;
		}
		return 0;
	}
	if (c->have_gap)
		return 0;
	sg_merkle_leaf_hash((const uint8_t *)row[1].p, row[1].n, leaf);
	if ((r = sg_merkle_frontier_append(&c->fr, leaf, count_node, c)) != 0)
		return fail(c, r, "%s: the log's tree cannot be recomputed",
		    c->dst_name);
	if (c->have_cp && c->fr.size == c->cp_size) {
		sg_merkle_frontier_root(&c->fr, c->root_n);
		c->have_root_n = 1;
	}
	return 0;
}

typedef int (*row_fn)(struct copy *c, const struct table *tb,
    struct cell *row);

/*
 * Every row of tb in db, in key order, a page at a time: each is hashed
 * into sum, counted, and handed to fn.
 */
static int
scan(struct copy *c, struct sg_db *db, const struct table *tb, row_fn fn,
    uint64_t *ret_rows, uint8_t sum[SG_HASH_LEN])
{
	struct sg_db_stmt *first = NULL, *next = NULL, *s;
	struct cell row[COPY_MAX_COLS], last[COPY_MAX_KEY];
	char *sql1 = NULL, *sql2 = NULL;
	size_t got, i;
	int r, rc;

	memset(row, 0, sizeof(row));
	memset(last, 0, sizeof(last));
	if ((sql1 = page_sql(tb, 0)) == NULL ||
	    (sql2 = page_sql(tb, 1)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((r = sg_db_prepare(db, sql1, &first)) != 0 ||
	    (r = sg_db_prepare(db, sql2, &next)) != 0) {
		r = db_fail(c, db, r, tb->name);
		goto out;
	}
	for (s = first;; s = next) {
		sg_db_reset(s);
		for (i = 0; s == next && i < tb->nkey; i++)
			bind_cell(s, (int)i + 1, tb->cols[i].type, &last[i]);
		got = 0;
		while ((rc = sg_db_step(s)) == SG_DB_ROW) {
			if ((r = read_row(c, db, s, tb, row)) != 0 ||
			    (r = add_row_hash(c, tb, row, sum)) != 0)
				goto out;
			(*ret_rows)++;
			got++;
			/* The next page starts after this key (text or
			 * integers, never NULL: NULL would end the paging). */
			cells_clear(last, tb->nkey);
			for (i = 0; i < tb->nkey; i++) {
				if (row[i].null) {
					r = fail(c, SG_ERR_INVALID, "%s: %s: "
					    "a row whose %s is NULL",
					    db == c->src ? c->src_name :
					    c->dst_name, tb->name,
					    tb->cols[i].name);
					goto out;
				}
				last[i] = row[i];
				last[i].p = NULL;
				if (row[i].p != NULL &&
				    (last[i].p = strdup(row[i].p)) == NULL) {
					r = SG_ERR_NOMEM;
					goto out;
				}
			}
			if ((r = fn(c, tb, row)) != 0)
				goto out;
			cells_clear(row, tb->ncols);
		}
		if (rc != SG_DB_DONE) {
			r = db_fail(c, db, rc, tb->name);
			goto out;
		}
		if (got < (size_t)tb->page)
			break;
	}
	r = 0;
out:
	cells_clear(row, tb->ncols);
	cells_clear(last, tb->nkey);
	sg_db_finalize(first);
	sg_db_finalize(next);
	free(sql1);
	free(sql2);
	return r;
}

/* ---- one integer ---- */

/* The first column of the one row sql returns (SQL NULL: 0); arg, if
 * not NULL, is its ?1.  (The statement is named in a failure.) */
static int
query_int(struct copy *c, struct sg_db *db, const char *sql,
    const int64_t *arg, int64_t *ret)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = sg_db_prepare(db, sql, &s)) != 0)
		return db_fail(c, db, r, sql);
	if (arg != NULL)
		sg_db_bind_int64(s, 1, *arg);
	r = sg_db_step(s);
	if (r == SG_DB_ROW) {
		*ret = sg_db_column_null(s, 0) ? 0 : sg_db_column_int64(s, 0);
		r = 0;
	} else
		r = db_fail(c, db, r == SG_DB_DONE ? SG_ERR_INTERNAL : r, sql);
	sg_db_finalize(s);
	return r;
}

/* The value requests.seq was last given (0: never). */
static int
seq_counter(struct copy *c, struct sg_db *db, int64_t *ret)
{
	return query_int(c, db, sg_db_backend(db) == SG_DB_POSTGRESQL ?
	    "SELECT pg_sequence_last_value(pg_get_serial_sequence("
	    "'requests', 'seq')::regclass)" :
	    "SELECT (SELECT seq FROM sqlite_sequence WHERE name = "
	    "'requests')", NULL, ret);
}

/* The target's counter goes on after v. */
static int
set_seq_counter(struct copy *c, int64_t v)
{
	struct sg_db_stmt *s = NULL;
	const char *sql;
	int64_t got = 0;
	int r;

	if (v <= 0)
		return 0;
	if (sg_db_backend(c->dst) == SG_DB_POSTGRESQL)
		return query_int(c, c->dst, "SELECT setval(pg_get_serial_"
		    "sequence('requests', 'seq'), ?1)", &v, &got);
	/* SQLite raised it to the largest seq inserted already; a larger
	 * source counter (its newest requests gone) wins. */
	if ((r = seq_counter(c, c->dst, &got)) != 0 || got >= v)
		return r;
	if ((r = query_int(c, c->dst, "SELECT COUNT(*) FROM sqlite_sequence "
	    "WHERE name = 'requests'", NULL, &got)) != 0)
		return r;
	sql = got > 0 ?
	    "UPDATE sqlite_sequence SET seq = ?1 WHERE name = 'requests'" :
	    "INSERT INTO sqlite_sequence (name, seq) VALUES ('requests', ?1)";
	if ((r = sg_db_prepare(c->dst, sql, &s)) != 0)
		return db_fail(c, c->dst, r, "sqlite_sequence");
	sg_db_bind_int64(s, 1, v);
	r = sg_db_step(s);
	sg_db_finalize(s);
	return r == SG_DB_DONE ? 0 : db_fail(c, c->dst, r, "sqlite_sequence");
}

/* ---- the source's checkpoint ---- */

static int
read_checkpoint(struct copy *c)
{
	struct sg_db_stmt *s = NULL;
	struct sg_checkpoint cp;
	const char *note;
	size_t len, i, text_len = 0;
	int64_t size;
	int r;

	if ((r = sg_db_prepare(c->src, "SELECT size, note FROM "
	    "log_checkpoints ORDER BY size DESC LIMIT 1", &s)) != 0)
		return db_fail(c, c->src, r, "log_checkpoints");
	if ((r = sg_db_step(s)) != SG_DB_ROW) {
		sg_db_finalize(s);
		return r == SG_DB_DONE ? 0 :
		    db_fail(c, c->src, r, "log_checkpoints");
	}
	size = sg_db_column_int64(s, 0);
	note = sg_db_column_text(s, 1);
	len = note != NULL ? strlen(note) : 0;
	/* The text ends at the last blank line. */
	for (i = len; i >= 2; i--)
		if (note[i - 1] == '\n' && note[i - 2] == '\n') {
			text_len = i - 1;
			break;
		}
	memset(&cp, 0, sizeof(cp));
	if (text_len == 0 || sg_checkpoint_parse(note, text_len, &cp) != 0)
		r = fail(c, SG_ERR_INVALID, "%s: the newest checkpoint (size "
		    "%lld) is not a signed checkpoint note", c->src_name,
		    (long long)size);
	else if (size < 0 || cp.size != (uint64_t)size)
		r = fail(c, SG_ERR_INVALID, "%s: the newest checkpoint is "
		    "stored as size %lld but its note says %llu", c->src_name,
		    (long long)size, (unsigned long long)cp.size);
	else {
		c->have_cp = 1;
		c->cp_size = cp.size;
		memcpy(c->cp_root, cp.root, SG_HASH_LEN);
		r = 0;
	}
	sg_db_finalize(s);
	return r;
}

/* ---- opening ---- */

static int
side_name(const struct sg_store_conf *sc, char **ret)
{
	int n;

	/* Named in messages only once open_side() has checked that a
	 * conninfo holds no password. */
	if (sc->backend == SG_DB_SQLITE)
		n = asprintf(ret, "sqlite:%s", sc->dir != NULL ? sc->dir : "");
	else
		n = asprintf(ret, "postgresql:%s", sc->conninfo != NULL ?
		    sc->conninfo : "");
	if (n < 0) {
		*ret = NULL;
		return SG_ERR_NOMEM;
	}
	return 0;
}

/* Whether the database holds a store at all (a source must). */
static int
has_store(struct copy *c, struct sg_db *db, int *ret)
{
	int64_t n = 0;
	int r;

	r = query_int(c, db, sg_db_backend(db) == SG_DB_POSTGRESQL ?
	    "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = "
	    "current_schema() AND tablename = 'signgate_schema'" :
	    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND "
	    "name = 'requests'", NULL, &n);
	if (r != 0)
		return r;
	*ret = n > 0;
	return 0;
}

/*
 * Opens one side: a source must hold a store; a target (copying) is
 * created if need be.  Both are brought to this build's schema (the
 * source's too: its columns are read by name), and SQLite's log tables.
 */
static int
open_side(struct copy *c, const struct sg_store_conf *sc, int source,
    struct sg_db **ret)
{
	const char *name = source ? c->src_name : c->dst_name;
	struct sg_db_conf dc;
	struct sg_db *db = NULL;
	struct stat st;
	char *path = NULL;
	int have, migrate = source || c->write, r;

	memset(&dc, 0, sizeof(dc));
	dc.backend = sc->backend;
	if (sc->backend == SG_DB_SQLITE) {
		if (sc->dir == NULL || sc->dir[0] == '\0')
			return fail(c, SG_ERR_INVALID, "sqlite: no directory");
		if ((path = sg_path_join(sc->dir, "signgate.db")) == NULL)
			return SG_ERR_NOMEM;
		if (source || !c->write) {
			if (stat(path, &st) != 0) {
				r = fail(c, SG_ERR_NOT_FOUND, "%s: no store "
				    "there (%s: %s)", name, path,
				    strerror(errno));
				goto out;
			}
		} else if (mkdir(sc->dir, 0700) != 0 && errno != EEXIST) {
			r = fail(c, SG_ERR_IO, "%s: cannot create the "
			    "directory: %s", name, strerror(errno));
			goto out;
		}
		dc.path = path;
	} else if (sc->backend == SG_DB_POSTGRESQL) {
		char why[512];
		if (sc->conninfo == NULL)
			return fail(c, SG_ERR_INVALID, "postgresql: no "
			    "conninfo");
		if (sg_conninfo_check(sc->conninfo, why, sizeof(why)) != 0)
			return fail(c, SG_ERR_INVALID, "postgresql: the "
			    "conninfo %s (the password comes from a file)",
			    why);
		dc.conninfo = sc->conninfo;
		dc.password = sc->password;
		dc.application = "signgated-copy";
	} else
		return fail(c, SG_ERR_INVALID, "unknown backend");
	if ((r = sg_db_open(&dc, migrate, &db)) != 0) {
		r = fail(c, r, "%s: cannot open the database: %s", name,
		    db != NULL ? sg_db_errmsg(db) : sg_strerror(r));
		goto out;
	}
	if (source && (r = has_store(c, db, &have)) == 0 && !have)
		r = fail(c, SG_ERR_NOT_FOUND, "%s: holds no signgate store",
		    name);
	if (r != 0)
		goto out;
	if (migrate && (r = store_schema_migrate(db, name)) != 0) {
		r = fail(c, r, "%s: its schema cannot be brought to version "
		    "%d (the line above says why)", name,
		    SG_STORE_SCHEMA_VERSION);
		goto out;
	}
	if (migrate && (r = sg_tlog_tables(db)) != 0) {
		r = db_fail(c, db, r, "the log's tables");
		goto out;
	}
	*ret = db;
	db = NULL;
out:
	sg_db_close(db);
	free(path);
	return r;
}

/* A read snapshot, or (copying into it) the target's write transaction
 * under the lock every gateway's writer takes first. */
static int
begin(struct copy *c, struct sg_db *db, int write)
{
	int pg = sg_db_backend(db) == SG_DB_POSTGRESQL, r;

	if (!write)
		r = sg_db_exec(db, pg ? "BEGIN ISOLATION LEVEL REPEATABLE READ "
		    "READ ONLY" : "BEGIN");
	else if (pg)
		r = sg_db_exec(db, "BEGIN; SELECT id FROM log_head WHERE "
		    "id = 1 FOR UPDATE");
	else
		r = sg_db_exec(db, "BEGIN IMMEDIATE");
	return r != 0 ? db_fail(c, db, r, "BEGIN") : 0;
}

static int
target_empty(struct copy *c)
{
	struct sg_db_stmt *s = NULL;
	char sql[96];
	size_t i;
	int r;

	for (i = 0; i < NTABLES; i++) {
		snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 1",
		    tables[i].name);
		if ((r = sg_db_prepare(c->dst, sql, &s)) != 0)
			return db_fail(c, c->dst, r, tables[i].name);
		r = sg_db_step(s);
		sg_db_finalize(s);
		if (r == SG_DB_ROW)
			return fail(c, SG_ERR_CONFLICT, "%s: the target is not "
			    "empty: table %s holds rows; copy into a new "
			    "database or state directory", c->dst_name,
			    tables[i].name);
		if (r != SG_DB_DONE)
			return db_fail(c, c->dst, r, tables[i].name);
	}
	return 0;
}

/* ---- the steps ---- */

/* Every table of the source, counted, hashed and (copying) written. */
static int
read_source(struct copy *c)
{
	char sql[96];
	int64_t n;
	size_t i;
	int r;

	if ((r = read_checkpoint(c)) != 0 ||
	    (r = seq_counter(c, c->src, &c->src_counter)) != 0)
		return r;
	for (i = 0; i < NTABLES; i++) {
		const struct table *tb = &tables[i];
		struct tally *t = &c->t[i];
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s",
		    tb->name);
		if ((r = query_int(c, c->src, sql, NULL, &n)) != 0)
			return r;
		t->count = (uint64_t)n;
		if ((r = scan(c, c->src, tb, copy_row, &t->src_rows,
		    t->src_sum)) != 0 || (r = flush(c, tb)) != 0)
			return r;
		sg_db_finalize(c->ins);
		c->ins = NULL;
		if (t->src_rows != t->count)
			return fail(c, SG_ERR_IO, "%s: %s: read %llu of its "
			    "%llu rows (a key that cannot be paged?)",
			    c->src_name, tb->name,
			    (unsigned long long)t->src_rows,
			    (unsigned long long)t->count);
	}
	return 0;
}

struct node_get {
	struct copy *c;
	struct sg_db_stmt *s;
};

static int
get_node(void *arg, unsigned level, uint64_t index,
    uint8_t out[SG_HASH_LEN])
{
	struct node_get *g = arg;
	int rc;

	if (g->s == NULL && sg_db_prepare(g->c->dst, "SELECT hash FROM "
	    "log_nodes WHERE level = ?1 AND idx = ?2", &g->s) != 0)
		return SG_ERR_IO;
	sg_db_reset(g->s);
	sg_db_bind_int64(g->s, 1, (int64_t)level);
	sg_db_bind_int64(g->s, 2, (int64_t)index);
	rc = sg_db_step(g->s);
	if (rc != SG_DB_ROW)
		return rc == SG_DB_DONE ? SG_ERR_NOT_FOUND : SG_ERR_IO;
	if (sg_db_column_bytes(g->s, 0) != SG_HASH_LEN ||
	    sg_db_column_blob(g->s, 0) == NULL)
		return SG_ERR_INVALID;
	memcpy(out, sg_db_column_blob(g->s, 0), SG_HASH_LEN);
	return 0;
}

/* The root of the first size entries from the stored subtree hashes. */
static int
stored_root(struct copy *c, uint64_t size, uint8_t out[SG_HASH_LEN])
{
	struct sg_merkle_frontier f;
	struct node_get g = { c, NULL };
	int r;

	r = sg_merkle_frontier_load(&f, size, get_node, &g);
	sg_db_finalize(g.s);
	if (r != 0)
		return fail(c, SG_ERR_VERIFY, "%s: log_nodes lacks subtree "
		    "hashes of the tree of %llu entries (%s)", c->dst_name,
		    (unsigned long long)size, sg_strerror(r));
	sg_merkle_frontier_root(&f, out);
	return 0;
}

static void
hex(const uint8_t h[SG_HASH_LEN], char out[2 * SG_HASH_LEN + 1])
{
	sg_hex_encode(h, SG_HASH_LEN, out);
}

/* The log the target holds, against the source's signed checkpoint. */
static int
check_log(struct copy *c)
{
	uint8_t root_m[SG_HASH_LEN], stored[SG_HASH_LEN];
	char a[2 * SG_HASH_LEN + 1], b[2 * SG_HASH_LEN + 1];
	uint64_t m = c->fr.size;
	int r;

	if (c->have_gap)
		return fail(c, SG_ERR_VERIFY, "%s: the log's entries are not "
		    "0 to %llu without a gap: entry %llu is missing",
		    c->dst_name,
		    (unsigned long long)c->t[T_ENTRIES].dst_rows - 1,
		    (unsigned long long)c->gap);
	if (c->have_cp && m < c->cp_size)
		return fail(c, SG_ERR_VERIFY, "%s: the log holds %llu entries, "
		    "fewer than the %llu of the signed checkpoint", c->dst_name,
		    (unsigned long long)m, (unsigned long long)c->cp_size);
	if (c->have_cp && c->cp_size == 0) {
		memcpy(c->root_n, sg_merkle_empty_root, SG_HASH_LEN);
		c->have_root_n = 1;
	}
	if (c->have_cp && (!c->have_root_n ||
	    memcmp(c->root_n, c->cp_root, SG_HASH_LEN) != 0)) {
		hex(c->root_n, a);
		hex(c->cp_root, b);
		return fail(c, SG_ERR_VERIFY, "%s: THE LOG DOES NOT MATCH THE "
		    "SIGNED CHECKPOINT: the root of its first %llu entries is "
		    "%s, the checkpoint's is %s", c->dst_name,
		    (unsigned long long)c->cp_size, a, b);
	}
	if (c->t[T_NODES].dst_rows != c->nodes_made)
		return fail(c, SG_ERR_VERIFY, "%s: log_nodes holds %llu "
		    "subtree hashes; a tree of %llu entries has %llu",
		    c->dst_name,
		    (unsigned long long)c->t[T_NODES].dst_rows,
		    (unsigned long long)m, (unsigned long long)c->nodes_made);
	if (c->have_cp) {
		if ((r = stored_root(c, c->cp_size, stored)) != 0)
			return r;
		if (memcmp(stored, c->cp_root, SG_HASH_LEN) != 0) {
			hex(stored, a);
			hex(c->cp_root, b);
			return fail(c, SG_ERR_VERIFY, "%s: the stored subtree "
			    "hashes give root %s for %llu entries; the signed "
			    "checkpoint's is %s", c->dst_name, a,
			    (unsigned long long)c->cp_size, b);
		}
	}
	sg_merkle_frontier_root(&c->fr, root_m);
	if ((r = stored_root(c, m, stored)) != 0)
		return r;
	if (memcmp(stored, root_m, SG_HASH_LEN) != 0) {
		hex(stored, a);
		hex(root_m, b);
		return fail(c, SG_ERR_VERIFY, "%s: the stored subtree hashes "
		    "give root %s for all %llu entries; the entries give %s",
		    c->dst_name, a, (unsigned long long)m, b);
	}
	return 0;
}

/* What the target holds, read back, against what was read from the
 * source. */
static int
check_target(struct copy *c)
{
	int64_t want = c->src_counter > c->max_seq ? c->src_counter :
	    c->max_seq;
	size_t i;
	int r;

	sg_merkle_frontier_init(&c->fr);
	for (i = 0; i < NTABLES; i++)
		if ((r = scan(c, c->dst, &tables[i], check_row,
		    &c->t[i].dst_rows, c->t[i].dst_sum)) != 0)
			return r;
	for (i = 0; i < NTABLES; i++)
		if (c->t[i].dst_rows != c->t[i].src_rows)
			return fail(c, SG_ERR_VERIFY, "%s: table %s holds %llu "
			    "rows; the source's %llu", c->dst_name,
			    tables[i].name,
			    (unsigned long long)c->t[i].dst_rows,
			    (unsigned long long)c->t[i].src_rows);
	if ((r = check_log(c)) != 0)
		return r;
	for (i = 0; i < NTABLES; i++)
		if (memcmp(c->t[i].dst_sum, c->t[i].src_sum,
		    SG_HASH_LEN) != 0)
			return fail(c, SG_ERR_VERIFY, "%s: table %s: the rows "
			    "differ from the source's (same number, other "
			    "values)", c->dst_name, tables[i].name);
	if ((r = seq_counter(c, c->dst, &c->dst_counter)) != 0)
		return r;
	if (c->dst_counter < want)
		return fail(c, SG_ERR_VERIFY, "%s: requests.seq would go on "
		    "from %lld, not after %lld", c->dst_name,
		    (long long)c->dst_counter, (long long)want);
	return 0;
}

static void
print_report(struct copy *c, FILE *f)
{
	char root[2 * SG_HASH_LEN + 1];
	size_t i;

	fprintf(f, "%s %s to %s\n", c->write ? "copied" : "compared",
	    c->src_name, c->dst_name);
	for (i = 0; i < NTABLES; i++)
		fprintf(f, "  %-18s %10llu rows\n", tables[i].name,
		    (unsigned long long)c->t[i].dst_rows);
	fprintf(f, "every table's rows are the source's\n");
	fprintf(f, "requests.seq goes on after %lld\n",
	    (long long)c->dst_counter);
	if (!c->have_cp) {
		fprintf(f, "log: %llu entries, no signed checkpoint\n",
		    (unsigned long long)c->fr.size);
		return;
	}
	hex(c->cp_root, root);
	fprintf(f, "log: %llu entries; checkpoint size %llu, root %s\n",
	    (unsigned long long)c->fr.size,
	    (unsigned long long)c->cp_size, root);
	fprintf(f, "the log matches the signed checkpoint of %llu entries\n",
	    (unsigned long long)c->cp_size);
}

/* Run as root, a new SQLite file goes to the owner of its directory,
 * the user of the gateway that will open it. */
static void
give_to_dir_owner(const char *dir)
{
	static const char *const names[] = { "signgate.db",
	    "signgate.db-wal", "signgate.db-shm" };
	struct stat d, st;
	char *p;
	size_t i;

	if (geteuid() != 0 || stat(dir, &d) != 0 || d.st_uid == 0)
		return;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if ((p = sg_path_join(dir, names[i])) == NULL)
			continue;
		if (lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_uid != d.st_uid && lchown(p, d.st_uid, d.st_gid) != 0)
			sg_log_warn("%s: cannot give it to uid %u: %s", p,
			    (unsigned)d.st_uid, strerror(errno));
		free(p);
	}
}

static int
run(const struct sg_store_conf *from, const struct sg_store_conf *to,
    int write, FILE *report, char *errbuf, size_t errlen)
{
	struct copy *c;
	int r, in_src = 0, in_dst = 0;

	if (errlen > 0)
		errbuf[0] = '\0';
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SG_ERR_NOMEM;
	c->write = write;
	c->errbuf = errbuf;
	c->errlen = errlen;
	if ((r = side_name(from, &c->src_name)) != 0 ||
	    (r = side_name(to, &c->dst_name)) != 0)
		goto out;
	if ((c->md = EVP_MD_CTX_new()) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((r = open_side(c, from, 1, &c->src)) != 0 ||
	    (r = open_side(c, to, 0, &c->dst)) != 0)
		goto out;
	if ((r = begin(c, c->src, 0)) != 0)
		goto out;
	in_src = 1;
	if ((r = begin(c, c->dst, write)) != 0)
		goto out;
	in_dst = 1;
	if (write && (r = target_empty(c)) != 0)
		goto out;
	if ((r = read_source(c)) != 0)
		goto out;
	(void)sg_db_exec(c->src, "ROLLBACK");
	in_src = 0;
	if (write && (r = set_seq_counter(c, c->src_counter > c->max_seq ?
	    c->src_counter : c->max_seq)) != 0)
		goto out;
	if ((r = check_target(c)) != 0)
		goto out;
	if ((r = sg_db_exec(c->dst, write ? "COMMIT" : "ROLLBACK")) != 0) {
		r = db_fail(c, c->dst, r, write ? "COMMIT" : "ROLLBACK");
		goto out;
	}
	in_dst = 0;
	if (report != NULL)
		print_report(c, report);
	r = 0;
out:
	if (r != 0 && errlen > 0 && errbuf[0] == '\0')
		sg_err_set(errbuf, errlen, r, "%s", sg_strerror(r));
	cells_clear(c->batch, sizeof(c->batch) / sizeof(c->batch[0]));
	sg_db_finalize(c->ins);
	if (in_src)
		(void)sg_db_exec(c->src, "ROLLBACK");
	if (in_dst)
		(void)sg_db_exec(c->dst, "ROLLBACK");
	sg_db_close(c->src);
	sg_db_close(c->dst);
	if (write && to->backend == SG_DB_SQLITE && to->dir != NULL)
		give_to_dir_owner(to->dir);
	EVP_MD_CTX_free(c->md);
	free(c->src_name);
	free(c->dst_name);
	free(c);
	return r;
}

int
sg_store_copy(const struct sg_store_conf *from,
    const struct sg_store_conf *to, FILE *report, char *errbuf,
    size_t errlen)
{
	return run(from, to, 1, report, errbuf, errlen);
}

int
sg_store_copy_check(const struct sg_store_conf *from,
    const struct sg_store_conf *to, FILE *report, char *errbuf,
    size_t errlen)
{
	return run(from, to, 0, report, errbuf, errlen);
}
