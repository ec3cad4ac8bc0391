/*
 * Tests for copying a store to another backend (src/store_copy.c): a
 * SQLite store holding requests of every kind and state, approvals,
 * policies, release artifacts and a log signed by an in-process signer
 * (its record kept by sg_witness, as the real signer keeps it) is copied
 * to SQLite, and over PostgreSQL back to SQLite; every row comes back as
 * it was, the log under the same checkpoint, the signer accepts the copy
 * as its own tree and requests.seq goes on where the source left it.  A
 * target that holds rows is refused and left as it was; a copy whose log
 * does not give the signed checkpoint's root fails and leaves its target
 * empty; a copy changed afterwards is caught by the check, naming what
 * differs.  The PostgreSQL parts need the suite's server (SG_TEST_PG):
 * without it they are skipped, never counted as passed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_store.h"
#include "sg_test.h"
#include "sg_fixture.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "sg_witness.h"

#define ORIGIN "copy.test/log"

static char tmpdir[64];

/* ---- the signer, in process ---- */

static struct sg_witness *wit;
static EVP_PKEY *logkey;
static uint8_t logpub[SG_ED25519_PUB];

static int
fake_sign(void *ctx, const struct sg_witness_request *req,
    struct sg_witness_reply *ret)
{
	struct sg_checkpoint cp;
	EVP_MD_CTX *m;
	size_t siglen = SG_ED25519_SIG;
	char *text = NULL;
	int r, ok;

	(void)ctx;
	memset(ret, 0, sizeof(*ret));
	if ((r = sg_witness_advance(wit, req, &ret->rec, ret->err,
	    sizeof(ret->err))) != 0)
		return r;
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", ORIGIN);
	cp.size = req->size;
	memcpy(cp.root, req->root, SG_HASH_LEN);
	if (sg_checkpoint_format(&cp, &text) != 0)
		return SG_ERR_INTERNAL;
	m = EVP_MD_CTX_new();
	ok = m != NULL && EVP_DigestSignInit(m, NULL, NULL, NULL,
	    logkey) == 1 && EVP_DigestSign(m, ret->sig, &siglen,
	    (const uint8_t *)text, strlen(text)) == 1;
	EVP_MD_CTX_free(m);
	free(text);
	return ok ? 0 : SG_ERR_CRYPTO;
}

/* ---- stores ---- */

static void
conf_sqlite(struct sg_store_conf *c, const char *dir)
{
	memset(c, 0, sizeof(*c));
	c->backend = SG_DB_SQLITE;
	c->dir = dir;
}

/* A PostgreSQL database of the suite's server (0: none, skip). */
struct pgdb {
	char conninfo[512];
	char passfile[512];
	char *password;
	size_t plen;
};

static int
pg_new(const char *prefix, struct pgdb *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	r = sg_fx_pg_new_db(prefix, p->conninfo, sizeof(p->conninfo),
	    p->passfile, sizeof(p->passfile));
	if (r == 1 && sg_read_secret_file(p->passfile, &p->password,
	    &p->plen) != 0)
		r = -1;
	return r;
}

static void
pg_free(struct pgdb *p)
{
	sg_freezero(p->password, p->plen);
	memset(p, 0, sizeof(*p));
}

static void
conf_pg(struct sg_store_conf *c, const struct pgdb *p)
{
	memset(c, 0, sizeof(*c));
	c->backend = SG_DB_POSTGRESQL;
	c->conninfo = p->conninfo;
	c->password = p->password;
}

static struct sg_store *
open_conf(const struct sg_store_conf *c)
{
	struct sg_store *st = NULL;

	if (sg_store_open_conf(c, &st) != 0) {
		fprintf(stderr, "  cannot open the store\n");
		return NULL;
	}
	return st;
}

/* One SQL statement on a database, outside the store (a change the
 * store would never make). */
static int
raw_sqlite(const char *dir, const char *sql)
{
	char path[256];
	sqlite3 *db = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/signgate.db", dir);
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		fprintf(stderr, "  %s: %s\n", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
raw_pg(const struct pgdb *p, const char *sql)
{
	const char *keys[] = { "dbname", "password", NULL };
	const char *vals[] = { p->conninfo, p->password, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *res = PQexec(c, sql);
	int ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "  %s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	PQfinish(c);
	return ok ? 0 : -1;
}

/* ---- the source: every kind of row ---- */

/*
 * Sizes past the copy's pages (500 rows; 32 of log entries and policies),
 * so that every table is read in more than one page and each kind of key
 * (an integer, text, text and integer, two integers, two texts) is paged
 * on: 307 log entries (and 2 * 307 - 5 subtree hashes), 600 release
 * artifacts, 40 policies, 3 + 9 * 60 approvals.  307 is odd: its last
 * leaf is on the tree's right edge.
 */
#define NREQ 9
#define NLINES 600
#define NPOLICIES 40
#define NAPPROVALS (3 + NREQ * 60)
#define LOG_EXTRA 301                  /* entries beyond the requests' */
#define LOG_SIZE (6 + LOG_EXTRA)

static char lines_buf[NLINES][96];
static const char *lines[NLINES];

static void
make_lines(void)
{
	unsigned i;

	for (i = 0; i < NLINES; i++) {
		snprintf(lines_buf[i], sizeof(lines_buf[i]), "sha256:%064x %s "
		    "f%u.bin%s", i + 1, i % 3 ? "raw" : "cms", i,
		    i % 5 ? "" : " 1.0");
		lines[i] = lines_buf[i];
	}
}

/* Bytes a text column could not carry: NUL, 0xff, a lone 0x80. */
static const uint8_t sig_bytes[] = { 0x30, 0x45, 0x00, 0xff, 0x80, 0x00,
    0x7f, 0x01 };
static const uint8_t cms_bytes[] = { 0x30, 0x82, 0x00, 0x00, 0x06, 0x09,
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0x00 };

struct src {
	char id[NREQ][SG_REQUEST_ID_SIZE];
	uint64_t log_size;             /* entries under the checkpoint */
};
static struct src src;

static void
fill(struct sg_request *q, char *artifact, size_t acap, char *stmt,
    size_t scap, unsigned n, enum sg_kind kind)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->id, sizeof(q->id), "%016x%016x", 0xc0b1u + n, n * 7919u);
	snprintf(q->key, sizeof(q->key), kind == SG_KIND_REQUEST ?
	    "firmware" : "release");
	if (kind == SG_KIND_REQUEST) {
		snprintf(q->digest_alg, sizeof(q->digest_alg), "sha256");
		memset(q->digest_hex, "0123456789abcdef"[n % 16], 64);
	}
	q->format = n % 2 ? SG_FORMAT_CMS : SG_FORMAT_RAW;
	snprintf(artifact, acap, "{\"name\":\"app-%u\",\"note\":"
	    "\"caf\xc3\xa9 \xe2\x9c\x93\"}", n);
	q->artifact_json = artifact;
	snprintf(q->requester, sizeof(q->requester), "ci");
	q->created_at = 1000 + n;
	q->expires_at = 900000 + n;
	snprintf(q->policy_name, sizeof(q->policy_name), "signgate-dev");
	q->policy_version = 3 + n;
	memset(q->policy_sha256, 'c', 64);
	memset(q->spki_sha256, 'a', 64);
	snprintf(stmt, scap, "signgate approval v1\nrequest %s\nkey %s\n",
	    q->id, q->key);
	q->statement = stmt;
	q->state = SG_REQ_PENDING;
	q->log_index = -1;
	q->approved_index = -1;
	q->kind = kind;
	q->count = kind == SG_KIND_RELEASE ? NLINES : kind == SG_KIND_GRANT ?
	    3 : 0;
}

struct pop {
	struct sg_tlog *l;
	int step;
};

static int
append(struct pop *p, struct sg_txn *t, unsigned tag, uint64_t *ret)
{
	char entry[64];
	int n;

	/* Entries with a NUL and high bytes inside. */
	n = snprintf(entry, sizeof(entry), "entry %u\n", tag);
	entry[n++] = '\0';
	entry[n++] = (char)0xfe;
	entry[n++] = (char)(tag & 0xff);
	return sg_tlog_append(p->l, t, entry, (size_t)n, ret);
}

static int
job_populate(struct sg_txn *t, void *arg)
{
	struct pop *p = arg;
	struct sg_request q;
	char art[160], stmt[256];
	uint64_t idx = 0, seq;
	unsigned i;
	int r = 0;

	switch (p->step) {
	case 0:
		/* Every request; 0 pending with approvals, 1 signed (raw
		 * and CMS), 2 cancelled, 3 rejected, 4 failed, 5 a release
		 * (4 lines, 2 signed), 6 a grant with 2 taken, 7 a request
		 * under that grant, signed, 8 a revoked grant. */
		for (i = 0; i < NREQ && r == 0; i++) {
			fill(&q, art, sizeof(art), stmt, sizeof(stmt), i,
			    i == 5 ? SG_KIND_RELEASE : i == 6 || i == 8 ?
			    SG_KIND_GRANT : SG_KIND_REQUEST);
			if (i == 7) {
				memcpy(q.grant_id, src.id[6],
				    sizeof(q.grant_id));
				q.grant_seq = 1;
			}
			memcpy(src.id[i], q.id, sizeof(src.id[i]));
			r = sg_store_insert_request(t, &q, i == 1 ? "idem-1" :
			    NULL, i == 1 ? "b0d1" : NULL);
		}
		if (r == 0)
			r = sg_store_put_policy(t, "cd34",
			    "policy \xc3\xa9two\n", 20);
		for (i = 1; i < NPOLICIES && r == 0; i++) {
			char sha[16], text[32];
			snprintf(sha, sizeof(sha), "p%03u", i);
			snprintf(text, sizeof(text), "policy %u\n", i);
			r = sg_store_put_policy(t, sha, text, 10 + i);
		}
		return r;
	case 1:
		if ((r = sg_store_add_approval(t, src.id[0], "alice", 1, 1100,
		    "{\"payloadType\":\"a\"}")) != 0 ||
		    (r = sg_store_add_approval(t, src.id[0], "bob", 0, 1101,
		    "{\"payloadType\":\"b\"}")) != 0 ||
		    (r = sg_store_add_approval(t, src.id[1], "carol", 1, 1102,
		    "{\"payloadType\":\"c\"}")) != 0)
			return r;
		for (i = 0; i < NREQ * 60 && r == 0; i++) {
			char officer[16];
			snprintf(officer, sizeof(officer), "o%02u", i % 60);
			r = sg_store_add_approval(t, src.id[i / 60], officer,
			    (int)(i % 2), 1500 + i, "{}");
		}
		if (r != 0)
			return r;
		if ((r = sg_store_set_signed(t, src.id[1], sig_bytes,
		    sizeof(sig_bytes), cms_bytes, sizeof(cms_bytes), 1200,
		    "added 2026-01-01T00:00:00Z")) != 0 ||
		    (r = append(p, t, 1, &idx)) != 0 ||
		    (r = sg_store_set_log_index(t, src.id[1], idx)) != 0)
			return r;
		if ((r = sg_store_cancel(t, src.id[2], "ci",
		    "not needed \xe2\x80\x94 sorry", 1300)) != 0 ||
		    (r = sg_store_finish(t, src.id[3], SG_REQ_REJECTED,
		    NULL)) != 0 ||
		    (r = sg_store_finish(t, src.id[4], SG_REQ_FAILED,
		    "the HSM said no")) != 0)
			return r;
		return 0;
	case 2:
		/* The release: approved, two of its artifacts signed. */
		if ((r = sg_store_release_put_lines(t, src.id[5], lines,
		    NLINES)) != 0 || (r = append(p, t, 2, &idx)) != 0 ||
		    (r = sg_store_activate(t, src.id[5], idx)) != 0 ||
		    (r = append(p, t, 3, &idx)) != 0 ||
		    (r = sg_store_release_item_signed(t, src.id[5], 0,
		    sig_bytes, sizeof(sig_bytes), NULL, 0, idx, 1400)) != 0 ||
		    (r = append(p, t, 4, &idx)) != 0 ||
		    (r = sg_store_release_item_signed(t, src.id[5], 2,
		    sig_bytes, 3, cms_bytes, sizeof(cms_bytes), idx,
		    1401)) != 0)
			return r;
		/* The grants: one used twice, one revoked. */
		if ((r = append(p, t, 5, &idx)) != 0 ||
		    (r = sg_store_activate(t, src.id[6], idx)) != 0 ||
		    (r = sg_store_grant_take(t, src.id[6], 2000, &seq)) != 0 ||
		    (r = sg_store_grant_take(t, src.id[6], 2001, &seq)) != 0 ||
		    (r = sg_store_activate(t, src.id[8], idx)) != 0 ||
		    (r = sg_store_revoke(t, src.id[8], "alice", "done",
		    2100)) != 0)
			return r;
		if ((r = sg_store_set_signed(t, src.id[7], sig_bytes, 5, NULL,
		    0, 2002, NULL)) != 0 || (r = append(p, t, 6, &idx)) != 0)
			return r;
		return sg_store_set_log_index(t, src.id[7], idx);
	default:
		/* More entries, a few batches, so that the tree has levels
		 * and several checkpoints were stored. */
		for (i = 0; i < LOG_EXTRA / 3 + (p->step == 3 ?
		    LOG_EXTRA % 3 : 0) && r == 0; i++)
			r = append(p, t, 100 * (unsigned)p->step + i, &idx);
		return r;
	}
}

/* The source in tmpdir/src, its signer's record in tmpdir/src-hsm. */
static int
make_source(void)
{
	char dir[128], hsm[128], err[256];
	struct sg_store *st = NULL;
	struct sg_tlog *l = NULL;
	struct sg_tlog_status ls;
	struct pop p;
	size_t len = SG_ED25519_PUB;
	int step, r;

	make_lines();
	snprintf(dir, sizeof(dir), "%s/src", tmpdir);
	snprintf(hsm, sizeof(hsm), "%s/src-hsm", tmpdir);
	if ((logkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(logkey, logpub, &len) != 1 ||
	    sg_witness_open(hsm, ORIGIN, &wit, err, sizeof(err)) != 0) {
		fprintf(stderr, "  the signer: %s\n", err);
		return -1;
	}
	if ((r = sg_store_open(dir, &st)) != 0 ||
	    (r = sg_tlog_open(st, ORIGIN, logpub, fake_sign, NULL, &l, err,
	    sizeof(err))) != 0) {
		fprintf(stderr, "  the source's log: %s\n", err);
		sg_store_close(st);
		return -1;
	}
	p.l = l;
	for (step = 0; step < 6 && r == 0; step++) {
		p.step = step;
		r = sg_store_write(st, job_populate, &p);
	}
	sg_tlog_status(l, &ls);
	src.log_size = ls.checkpoint_size;
	sg_store_close(st);
	sg_tlog_free(l);
	if (r != 0 || ls.size != ls.checkpoint_size || ls.size != LOG_SIZE) {
		fprintf(stderr, "  populating the source: %s (log %llu, "
		    "checkpoint %llu)\n", sg_strerror(r),
		    (unsigned long long)ls.size,
		    (unsigned long long)ls.checkpoint_size);
		return -1;
	}
	/* Its counter past its largest seq, as after requests were lost
	 * (or removed by hand): the copy must not hand those out again. */
	return raw_sqlite(dir, "UPDATE sqlite_sequence SET seq = seq + 40 "
	    "WHERE name = 'requests'");
}

/* ---- comparing two stores ---- */

static int
same_request(const struct sg_request *a, const struct sg_request *b)
{
	int ok = 1;
	size_t i;

#define SAME_STR(f) do { if (strcmp(a->f, b->f) != 0) { \
	fprintf(stderr, "  %s %s: \"%s\" != \"%s\"\n", a->id, #f, a->f, \
	b->f); ok = 0; } } while (0)
#define SAME_OPT_STR(f) do { if ((a->f == NULL) != (b->f == NULL) || \
	(a->f != NULL && strcmp(a->f, b->f) != 0)) { \
	fprintf(stderr, "  %s %s differs\n", a->id, #f); ok = 0; } } while (0)
#define SAME_INT(f) do { if (a->f != b->f) { \
	fprintf(stderr, "  %s %s: %lld != %lld\n", a->id, #f, \
	(long long)a->f, (long long)b->f); ok = 0; } } while (0)
#define SAME_BLOB(f, l) do { if (a->l != b->l || (a->f == NULL) != \
	(b->f == NULL) || (a->l > 0 && memcmp(a->f, b->f, a->l) != 0)) { \
	fprintf(stderr, "  %s %s differs (%zu, %zu bytes)\n", a->id, #f, \
	a->l, b->l); ok = 0; } } while (0)
	SAME_INT(seq);
	SAME_STR(id);
	SAME_STR(key);
	SAME_STR(digest_alg);
	SAME_STR(digest_hex);
	SAME_INT(format);
	SAME_OPT_STR(artifact_json);
	SAME_STR(requester);
	SAME_INT(created_at);
	SAME_INT(expires_at);
	SAME_STR(policy_name);
	SAME_INT(policy_version);
	SAME_STR(policy_sha256);
	SAME_STR(spki_sha256);
	SAME_OPT_STR(statement);
	SAME_INT(state);
	SAME_OPT_STR(error);
	SAME_BLOB(signature, signature_len);
	SAME_BLOB(cms, cms_len);
	SAME_INT(signed_at);
	SAME_INT(log_index);
	SAME_OPT_STR(timestamp_note);
	SAME_STR(cancelled_by);
	SAME_OPT_STR(cancel_reason);
	SAME_INT(cancelled_at);
	SAME_INT(kind);
	SAME_INT(count);
	SAME_INT(used);
	SAME_INT(signed_count);
	SAME_INT(approved_index);
	SAME_STR(grant_id);
	SAME_INT(grant_seq);
	SAME_INT(napprovals);
	for (i = 0; ok && i < a->napprovals; i++) {
		SAME_STR(approvals[i].officer);
		SAME_INT(approvals[i].approve);
		SAME_INT(approvals[i].at);
		SAME_OPT_STR(approvals[i].envelope);
	}
#undef SAME_STR
#undef SAME_OPT_STR
#undef SAME_INT
#undef SAME_BLOB
	return ok;
}

static int
same_items(struct sg_txn *ta, struct sg_txn *tb, const char *id)
{
	struct sg_release_item *a = NULL, *b = NULL;
	size_t na = 0, nb = 0, i;
	int ok;

	ok = sg_store_release_items(ta, id, 0, NLINES + 1, 0, &a, &na) == 0 &&
	    sg_store_release_items(tb, id, 0, NLINES + 1, 0, &b, &nb) == 0 &&
	    na == NLINES && nb == na;
	for (i = 0; ok && i < na; i++)
		ok = a[i].position == b[i].position &&
		    strcmp(a[i].line, b[i].line) == 0 &&
		    a[i].signature_len == b[i].signature_len &&
		    (a[i].signature == NULL) == (b[i].signature == NULL) &&
		    (a[i].signature_len == 0 || memcmp(a[i].signature,
		    b[i].signature, a[i].signature_len) == 0) &&
		    a[i].cms_len == b[i].cms_len &&
		    (a[i].cms == NULL) == (b[i].cms == NULL) &&
		    (a[i].cms_len == 0 || memcmp(a[i].cms, b[i].cms,
		    a[i].cms_len) == 0) &&
		    a[i].log_index == b[i].log_index &&
		    a[i].signed_at == b[i].signed_at;
	if (!ok)
		fprintf(stderr, "  release %s: the artifacts differ\n", id);
	sg_release_items_free(a, na);
	sg_release_items_free(b, nb);
	return ok;
}

static int
same_log(struct sg_txn *ta, struct sg_txn *tb)
{
	char *na = NULL, *nb = NULL, *ea = NULL, *eb = NULL;
	uint64_t sa = 0, sb = 0, i;
	size_t la = 0, lb = 0;
	int ok;

	ok = sg_tlog_checkpoint(ta, &na, &sa) == 0 &&
	    sg_tlog_checkpoint(tb, &nb, &sb) == 0 && sa == sb &&
	    sa == src.log_size && strcmp(na, nb) == 0;
	for (i = 0; ok && i < sa; i++) {
		ok = sg_tlog_entry(ta, i, &ea, &la) == 0 &&
		    sg_tlog_entry(tb, i, &eb, &lb) == 0 && la == lb &&
		    memcmp(ea, eb, la) == 0;
		free(ea);
		free(eb);
		ea = eb = NULL;
	}
	if (!ok)
		fprintf(stderr, "  the logs differ (checkpoints of %llu and "
		    "%llu entries)\n", (unsigned long long)sa,
		    (unsigned long long)sb);
	free(na);
	free(nb);
	return ok;
}

/* Every request, release artifact, policy and log entry of a is b's. */
static int
same_store(struct sg_store *a, struct sg_store *b)
{
	struct sg_txn *ta = NULL, *tb = NULL;
	struct sg_request **la = NULL, **lb = NULL, *qa, *qb;
	char *pa = NULL, *pb = NULL;
	size_t na = 0, nb = 0, i;
	int ok;

	if (a == NULL || b == NULL || sg_store_read_begin(a, &ta) != 0 ||
	    sg_store_read_begin(b, &tb) != 0) {
		sg_store_read_end(ta);
		return 0;
	}
	ok = sg_store_list(ta, SG_REQ_NONE, NULL, 0, 100, &la, &na) == 0 &&
	    sg_store_list(tb, SG_REQ_NONE, NULL, 0, 100, &lb, &nb) == 0 &&
	    na == NREQ && nb == na;
	for (i = 0; ok && i < na; i++) {
		qa = qb = NULL;
		ok = sg_store_get_request(ta, la[i]->id, &qa) == 0 &&
		    sg_store_get_request(tb, la[i]->id, &qb) == 0 &&
		    same_request(qa, qb);
		sg_request_free(qa);
		sg_request_free(qb);
	}
	ok = ok && same_items(ta, tb, src.id[5]) && same_log(ta, tb);
	ok = ok && sg_store_get_policy(ta, "cd34", &pa) == 0 &&
	    sg_store_get_policy(tb, "cd34", &pb) == 0 && strcmp(pa, pb) == 0;
	free(pa);
	free(pb);
	sg_request_list_free(la, na);
	sg_request_list_free(lb, nb);
	sg_store_read_end(ta);
	sg_store_read_end(tb);
	return ok;
}

/* ---- copying ---- */

static char report[4096];
static char err[1024];

static int
copy(int check_only, const struct sg_store_conf *from,
    const struct sg_store_conf *to)
{
	FILE *f = fmemopen(report, sizeof(report), "w");
	int r;

	report[0] = err[0] = '\0';
	if (f == NULL)
		return SG_ERR_IO;
	r = check_only ? sg_store_copy_check(from, to, f, err, sizeof(err)) :
	    sg_store_copy(from, to, f, err, sizeof(err));
	fclose(f);
	if (r != 0)
		fprintf(stderr, "  (%s: %s)\n", check_only ? "check" : "copy",
		    err);
	return r;
}

/* The report says the log matches the source's checkpoint. */
static int
report_matches(void)
{
	char want[96];

	snprintf(want, sizeof(want), "the log matches the signed checkpoint "
	    "of %llu entries\n", (unsigned long long)src.log_size);
	return strstr(report, want) != NULL &&
	    strstr(report, "  log_entries") != NULL;
}

static int
job_insert(struct sg_txn *t, void *arg)
{
	return sg_store_insert_request(t, arg, NULL, NULL);
}

/* The seq a request inserted now into the store of conf gets. */
static int64_t
next_seq(const struct sg_store_conf *conf, unsigned n)
{
	struct sg_store *st = open_conf(conf);
	struct sg_request q, *got = NULL;
	struct sg_txn *t = NULL;
	char art[160], stmt[256];
	int64_t seq = -1;

	fill(&q, art, sizeof(art), stmt, sizeof(stmt), n, SG_KIND_REQUEST);
	if (st != NULL && sg_store_write(st, job_insert, &q) == 0 &&
	    sg_store_read_begin(st, &t) == 0) {
		if (sg_store_get_request(t, q.id, &got) == 0)
			seq = got->seq;
		sg_store_read_end(t);
	}
	sg_request_free(got);
	sg_store_close(st);
	return seq;
}

/* The source's requests are seq 1 to NREQ, its counter 40 further. */
#define NEXT_SEQ (NREQ + 40 + 1)

static int
same_stores(const struct sg_store_conf *a, const struct sg_store_conf *b)
{
	struct sg_store *sa = open_conf(a), *sb = open_conf(b);
	int ok = same_store(sa, sb);

	sg_store_close(sa);
	sg_store_close(sb);
	return ok;
}

/* The report's line for a table. */
static int
report_rows(const char *table, unsigned long long n)
{
	char want[96];

	snprintf(want, sizeof(want), "  %-18s %10llu rows\n", table, n);
	return strstr(report, want) != NULL;
}

static void
dir_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

/* ---- tests ---- */

static void
test_setup(void)
{
	if (sg_fx_tmpdir("copy", tmpdir, sizeof(tmpdir)) != 0)
		exit(2);
	CHECK_EQ_INT(make_source(), 0);
	CHECK_EQ_INT(src.log_size, LOG_SIZE);
}

/* SQLite to SQLite: every row, the log, the counter; a second copy into
 * the same target is refused and changes nothing; the signer takes the
 * copy's tree for the one it signed. */
static void
test_sqlite_to_sqlite(void)
{
	struct sg_store_conf from, to;
	struct sg_store *st = NULL;
	struct sg_tlog *l = NULL;
	char sdir[128], tdir[128], e[256];

	dir_of(sdir, sizeof(sdir), "src");
	dir_of(tdir, sizeof(tdir), "lite1");
	conf_sqlite(&from, sdir);
	conf_sqlite(&to, tdir);
	CHECK_EQ_INT(copy(0, &from, &to), 0);
	CHECK(report_matches());
	CHECK(report_rows("requests", NREQ));
	CHECK(report_rows("approvals", NAPPROVALS));
	CHECK(report_rows("policies", NPOLICIES));
	CHECK(report_rows("log_nodes", 2 * LOG_SIZE - 5));
	CHECK(report_rows("release_artifacts", NLINES));
	CHECK(report_rows("log_entries", src.log_size));
	CHECK(strstr(report, "requests.seq goes on after 49\n") != NULL);
	CHECK(same_stores(&from, &to));

	/* Again into the copy: refused, naming the first table with rows. */
	CHECK_EQ_INT(copy(0, &from, &to), SG_ERR_CONFLICT);
	CHECK(strstr(err, "table requests holds rows") != NULL);
	CHECK(report[0] == '\0');
	CHECK_EQ_INT(copy(1, &from, &to), 0);
	CHECK(report_matches());

	/* Numbers go on after the source's counter, not its largest seq. */
	CHECK_EQ_INT(next_seq(&to, 100), NEXT_SEQ);

	/* The signer signs the copy's tree as the one it signed last. */
	CHECK_EQ_INT(sg_store_open(tdir, &st), 0);
	e[0] = '\0';
	if (st != NULL) {
		CHECK_EQ_INT(sg_tlog_open(st, ORIGIN, logpub, fake_sign, NULL,
		    &l, e, sizeof(e)), 0);
		if (e[0] != '\0')
			fprintf(stderr, "  %s\n", e);
	}
	sg_store_close(st);
	sg_tlog_free(l);
}

/* SQLite to PostgreSQL and back to SQLite: the same rows on each, the
 * log under the same checkpoint, the identity sequence set. */
static void
test_through_postgresql(void)
{
	struct sg_store_conf from, pg, back;
	struct pgdb db;
	char sdir[128], bdir[128];
	int r;

	if ((r = pg_new("copy", &db)) == 0) {
		SKIP("no PostgreSQL server (SG_TEST_PG)");
		return;
	}
	CHECK_EQ_INT(r, 1);
	if (r != 1)
		return;
	dir_of(sdir, sizeof(sdir), "src");
	dir_of(bdir, sizeof(bdir), "back");
	conf_sqlite(&from, sdir);
	conf_pg(&pg, &db);
	conf_sqlite(&back, bdir);
	CHECK_EQ_INT(copy(0, &from, &pg), 0);
	CHECK(report_matches());
	CHECK(report_rows("requests", NREQ));
	CHECK(report_rows("log_checkpoints", 6));
	CHECK_EQ_INT(copy(0, &pg, &back), 0);
	CHECK(report_matches());
	CHECK(report_rows("release_artifacts", NLINES));
	CHECK(same_stores(&from, &pg));
	CHECK(same_stores(&from, &back));

	CHECK_EQ_INT(copy(0, &from, &pg), SG_ERR_CONFLICT);
	CHECK(strstr(err, "table requests holds rows") != NULL);
	CHECK_EQ_INT(copy(1, &from, &pg), 0);
	CHECK_EQ_INT(copy(1, &pg, &back), 0);

	CHECK_EQ_INT(next_seq(&pg, 101), NEXT_SEQ);
	CHECK_EQ_INT(next_seq(&back, 102), NEXT_SEQ);
	pg_free(&db);
}

/* A source whose log does not give its checkpoint's root: the copy fails
 * and its target stays empty (a good copy goes in afterwards).  A copy
 * changed afterwards: each kind of difference is named. */
static void
test_mismatch_sqlite(void)
{
	struct sg_store_conf from, bad, to, to2;
	char sdir[128], bdir[128], tdir[128], t2dir[128];

	dir_of(sdir, sizeof(sdir), "src");
	dir_of(bdir, sizeof(bdir), "bad-src");
	dir_of(tdir, sizeof(tdir), "lite3");
	dir_of(t2dir, sizeof(t2dir), "lite4");
	conf_sqlite(&from, sdir);
	conf_sqlite(&bad, bdir);
	conf_sqlite(&to, tdir);
	conf_sqlite(&to2, t2dir);

	CHECK_EQ_INT(copy(0, &from, &bad), 0);
	CHECK_EQ_INT(raw_sqlite(bdir, "UPDATE log_entries SET data = "
	    "X'00' || data WHERE idx = 3"), 0);
	CHECK_EQ_INT(copy(0, &bad, &to), SG_ERR_VERIFY);
	CHECK(strstr(err, "THE LOG DOES NOT MATCH THE SIGNED CHECKPOINT") !=
	    NULL);
	CHECK(report[0] == '\0');
	CHECK_EQ_INT(copy(0, &from, &to), 0);

	/* An entry changed in the copy. */
	CHECK_EQ_INT(raw_sqlite(tdir, "UPDATE log_entries SET data = "
	    "X'01' || data WHERE idx = 5"), 0);
	CHECK_EQ_INT(copy(1, &from, &to), SG_ERR_VERIFY);
	CHECK(strstr(err, "THE LOG DOES NOT MATCH THE SIGNED CHECKPOINT") !=
	    NULL);
	/* A stored subtree hash on the right edge of the checkpoint's
	 * tree: its last leaf. */
	CHECK_EQ_INT(copy(0, &from, &to2), 0);
	CHECK_EQ_INT(raw_sqlite(t2dir, "UPDATE log_nodes SET hash = "
	    "zeroblob(32) WHERE level = 0 AND idx = (SELECT MAX(idx) FROM "
	    "log_entries)"), 0);
	CHECK_EQ_INT(copy(1, &from, &to2), SG_ERR_VERIFY);
	CHECK(strstr(err, "stored subtree hashes give root") != NULL);
	/* An approval's envelope: the log is fine, the rows are not. */
	dir_of(t2dir, sizeof(t2dir), "lite5");
	CHECK_EQ_INT(copy(0, &from, &to2), 0);
	CHECK_EQ_INT(raw_sqlite(t2dir, "UPDATE approvals SET envelope = "
	    "'{}' WHERE officer = 'bob'"), 0);
	CHECK_EQ_INT(copy(1, &from, &to2), SG_ERR_VERIFY);
	CHECK(strstr(err, "table approvals: the rows differ") != NULL);
	/* An entry moved away: as many rows, one index missing. */
	CHECK_EQ_INT(raw_sqlite(tdir, "UPDATE log_entries SET idx = 100000 "
	    "WHERE idx = 7"), 0);
	CHECK_EQ_INT(copy(1, &from, &to), SG_ERR_VERIFY);
	CHECK(strstr(err, "entry 7 is missing") != NULL);
	/* A source with one subtree hash too many. */
	dir_of(bdir, sizeof(bdir), "bad-src2");
	dir_of(t2dir, sizeof(t2dir), "lite7");
	CHECK_EQ_INT(copy(0, &from, &bad), 0);
	CHECK_EQ_INT(raw_sqlite(bdir, "INSERT INTO log_nodes (level, idx, "
	    "hash) VALUES (20, 0, zeroblob(32))"), 0);
	CHECK_EQ_INT(copy(0, &bad, &to2), SG_ERR_VERIFY);
	CHECK(strstr(err, "log_nodes holds 610 subtree hashes; a tree of 307 "
	    "entries has 609") != NULL);
	/* A request fewer. */
	CHECK_EQ_INT(raw_sqlite(tdir, "DELETE FROM requests WHERE seq = 4"),
	    0);
	CHECK_EQ_INT(copy(1, &from, &to), SG_ERR_VERIFY);
	CHECK(strstr(err, "table requests holds 8 rows; the source's 9") !=
	    NULL);
}

/* The same on PostgreSQL: a bad source leaves the database empty; an
 * entry changed there is caught. */
static void
test_mismatch_postgresql(void)
{
	struct sg_store_conf from, bad, pg;
	struct pgdb db;
	char sdir[128], bdir[128];
	int r;

	if ((r = pg_new("copybad", &db)) == 0) {
		SKIP("no PostgreSQL server (SG_TEST_PG)");
		return;
	}
	CHECK_EQ_INT(r, 1);
	if (r != 1)
		return;
	dir_of(sdir, sizeof(sdir), "src");
	dir_of(bdir, sizeof(bdir), "bad-src");
	conf_sqlite(&from, sdir);
	conf_sqlite(&bad, bdir);
	conf_pg(&pg, &db);
	CHECK_EQ_INT(copy(0, &bad, &pg), SG_ERR_VERIFY);
	CHECK(strstr(err, "THE LOG DOES NOT MATCH THE SIGNED CHECKPOINT") !=
	    NULL);
	CHECK_EQ_INT(copy(0, &from, &pg), 0);
	CHECK(report_matches());
	CHECK_EQ_INT(raw_pg(&db, "UPDATE log_entries SET data = "
	    "'\\x00'::bytea || data WHERE idx = 11"), 0);
	CHECK_EQ_INT(copy(1, &from, &pg), SG_ERR_VERIFY);
	CHECK(strstr(err, "THE LOG DOES NOT MATCH THE SIGNED CHECKPOINT") !=
	    NULL);
	pg_free(&db);
}

/* What is refused before anything is read. */
static void
test_refusals(void)
{
	struct sg_store_conf from, to;
	char sdir[128], none[128], tdir[128];

	dir_of(sdir, sizeof(sdir), "src");
	dir_of(none, sizeof(none), "nothing-here");
	dir_of(tdir, sizeof(tdir), "lite6");
	conf_sqlite(&from, none);
	conf_sqlite(&to, tdir);
	CHECK_EQ_INT(copy(0, &from, &to), SG_ERR_NOT_FOUND);
	CHECK(strstr(err, "no store there") != NULL);
	/* A key SQLite let through as NULL (policies.sha256 is not
	 * NOT NULL there) cannot be paged on, nor stored in PostgreSQL. */
	conf_sqlite(&from, sdir);
	dir_of(none, sizeof(none), "bad-src3");
	conf_sqlite(&to, none);
	CHECK_EQ_INT(copy(0, &from, &to), 0);
	CHECK_EQ_INT(raw_sqlite(none, "INSERT INTO policies (sha256, text, "
	    "first_seen) VALUES (NULL, 'x', 1)"), 0);
	dir_of(tdir, sizeof(tdir), "lite8");
	conf_sqlite(&from, none);
	conf_sqlite(&to, tdir);
	CHECK_EQ_INT(copy(0, &from, &to), SG_ERR_INVALID);
	CHECK(strstr(err, "policies: a row whose sha256 is NULL") != NULL);
	conf_sqlite(&from, sdir);
	memset(&to, 0, sizeof(to));
	to.backend = SG_DB_POSTGRESQL;
	to.conninfo = "host=/nonexistent dbname=x password=secret";
	CHECK_EQ_INT(copy(0, &from, &to), SG_ERR_INVALID);
	CHECK(strstr(err, "must not hold a password") != NULL);
	CHECK(strstr(err, "secret") == NULL);
}

static void
test_teardown(void)
{
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
	sg_witness_free(wit);
	EVP_PKEY_free(logkey);
}

SG_TEST_MAIN("store_copy",
    T(test_setup),
    T(test_sqlite_to_sqlite),
    T(test_through_postgresql),
    T(test_mismatch_sqlite),
    T(test_mismatch_postgresql),
    T(test_refusals),
    T(test_teardown))
