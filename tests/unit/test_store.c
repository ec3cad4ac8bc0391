/*
 * Tests for the request store: every field of a request survives a round
 * trip; state changes leave `pending` once; lists are newest first with
 * filters and paging; and the writer's group commit keeps its promises:
 * concurrent writers share batches, a failing job is undone alone inside
 * its batch, a failing batch_end hook drops the whole batch and tells every
 * job so, a failing batch_durable hook (after the commit) keeps the batch
 * but acknowledges none of it, its relaxed writes leave the writer on
 * synchronous=FULL, and what was committed survives a reopen.  Releases
 * and grants: artifacts signed once, activation from pending only, a
 * release done only when complete, and a grant's numbers 1..N each once,
 * under racing writers and across a reopen.
 *
 * To put several jobs into one batch on purpose, a "blocker" job holds the
 * writer until the other jobs are queued behind it; every wait is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sg_err.h"
#include "sg_store.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

static char tmpdir[64];

/* ---- helpers ---- */

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Polls until *flag reaches want; 0 on time-out. */
static int
wait_for(atomic_int *flag, int want, long timeout_ms)
{
	long waited;

	for (waited = 0; waited < timeout_ms; waited++) {
		if (atomic_load(flag) >= want)
			return 1;
		sleep_ms(1);
	}
	return atomic_load(flag) >= want;
}

/*
 * The backend the tests below run on: SQLite in tmpdir, or, in the second
 * round, PostgreSQL (a database of its own per store name, on the server
 * the suite started: SG_TEST_PG).
 */
static int on_pg;

/* A store name's database on the run's server, made the first time
 * (a reopen finds it again), and its password. */
static int
pg_db(const char *name, char *conninfo, size_t cap, char **ret_pw)
{
	static struct {
		char name[32], conninfo[512], passfile[256];
	} made[64];
	static size_t nmade;
	char prefix[40];
	size_t i, len;

	*ret_pw = NULL;
	for (i = 0; i < nmade && strcmp(made[i].name, name) != 0; i++)
		;
	if (i == nmade) {
		if (nmade == sizeof(made) / sizeof(made[0]))
			return -1;
		snprintf(prefix, sizeof(prefix), "st_%s", name);
		for (len = 0; prefix[len] != '\0'; len++)
			if (prefix[len] == '-')
				prefix[len] = '_';
		if (sg_fx_pg_new_db(prefix, made[i].conninfo,
		    sizeof(made[i].conninfo), made[i].passfile,
		    sizeof(made[i].passfile)) != 1)
			return -1;
		snprintf(made[i].name, sizeof(made[i].name), "%s", name);
		nmade++;
	}
	snprintf(conninfo, cap, "%s", made[i].conninfo);
	return sg_read_secret_file(made[i].passfile, ret_pw, &len) == 0 ?
	    0 : -1;
}

static int
open_named(const char *name, const char *node, int claim_seconds,
    struct sg_store **ret)
{
	struct sg_store_conf c;
	char dir[128], conninfo[512], *password = NULL;
	int r;

	memset(&c, 0, sizeof(c));
	c.node = node;
	c.claim_seconds = claim_seconds;
	if (!on_pg) {
		snprintf(dir, sizeof(dir), "%s/%s", tmpdir, name);
		c.backend = SG_DB_SQLITE;
		c.dir = dir;
		c.shared = node != NULL;
		return sg_store_open_conf(&c, ret);
	}
	if (pg_db(name, conninfo, sizeof(conninfo), &password) != 0)
		return SG_ERR_IO;
	c.backend = SG_DB_POSTGRESQL;
	c.conninfo = conninfo;
	c.password = password;
	r = sg_store_open_conf(&c, ret);
	if (password != NULL)
		sg_freezero(password, strlen(password));
	return r;
}

static struct sg_store *
open_store(const char *name)
{
	struct sg_store *st = NULL;

	if (open_named(name, NULL, 0, &st) != 0) {
		fprintf(stderr, "  cannot open store %s\n", name);
		return NULL;
	}
	return st;
}

/* A request with every field set, with its own storage. */
struct req {
	struct sg_request q;
	char artifact[128];
	char statement[512];
	char error[64];
	uint8_t sig[72];
	uint8_t cms[300];
};

static void
fill(struct req *b, unsigned n, const char *key, int64_t created,
    int64_t expires)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	snprintf(b->q.id, sizeof(b->q.id), "%016x%016x", n, 0x5167u);
	snprintf(b->q.key, sizeof(b->q.key), "%s", key);
	snprintf(b->q.digest_alg, sizeof(b->q.digest_alg), "sha256");
	for (i = 0; i < 64; i++)
		b->q.digest_hex[i] = "0123456789abcdef"[(n + i) % 16];
	b->q.format = SG_FORMAT_RAW;
	snprintf(b->artifact, sizeof(b->artifact),
	    "{\"name\":\"app-%u\",\"version\":\"1.%u\"}", n, n);
	b->q.artifact_json = b->artifact;
	snprintf(b->q.requester, sizeof(b->q.requester), "ci");
	b->q.created_at = created;
	b->q.expires_at = expires;
	snprintf(b->q.policy_name, sizeof(b->q.policy_name), "signgate-dev");
	b->q.policy_version = 3;
	memset(b->q.policy_sha256, 'c', 64);
	memset(b->q.spki_sha256, 'a', 64);
	snprintf(b->statement, sizeof(b->statement),
	    "signgate approval v1\nrequest %s\nkey %s sha256:%s\n",
	    b->q.id, key, b->q.spki_sha256);
	b->q.statement = b->statement;
	b->q.state = SG_REQ_PENDING;
	b->q.log_index = -1;
}

/* Every field but seq and approvals; prints what differs. */
static int
same_request(const struct sg_request *a, const struct sg_request *b)
{
	int ok = 1;

#define SAME_STR(f) do { if (strcmp(a->f, b->f) != 0) { \
	fprintf(stderr, "  %s: \"%s\" != \"%s\"\n", #f, a->f, b->f); \
	ok = 0; } } while (0)
#define SAME_OPT_STR(f) do { if ((a->f == NULL) != (b->f == NULL) || \
	(a->f != NULL && strcmp(a->f, b->f) != 0)) { \
	fprintf(stderr, "  %s differs\n", #f); ok = 0; } } while (0)
#define SAME_INT(f) do { if (a->f != b->f) { \
	fprintf(stderr, "  %s: %lld != %lld\n", #f, (long long)a->f, \
	(long long)b->f); ok = 0; } } while (0)
#define SAME_BLOB(f, l) do { if (a->l != b->l || (a->l > 0 && \
	(a->f == NULL || b->f == NULL || memcmp(a->f, b->f, a->l) != 0))) { \
	fprintf(stderr, "  %s differs (%zu, %zu bytes)\n", #f, a->l, b->l); \
	ok = 0; } } while (0)
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
	if (a->policy_version != b->policy_version)
		ok = 0;
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
#undef SAME_STR
#undef SAME_OPT_STR
#undef SAME_INT
#undef SAME_BLOB
	return ok;
}

/* ---- jobs ---- */

struct ins {
	const struct sg_request *q;
	const char *idem, *body;
	int fail_with;          /* returned after a successful insert */
	int batch;              /* the batch it ran in (batch_no) */
};

static atomic_int batch_no;     /* batches finished, per the hooks */

static int
job_insert(struct sg_txn *t, void *arg)
{
	struct ins *a = arg;
	int r;

	a->batch = atomic_load(&batch_no);
	if ((r = sg_store_insert_request(t, a->q, a->idem, a->body)) != 0)
		return r;
	return a->fail_with;
}

static int
insert(struct sg_store *st, const struct sg_request *q, const char *idem,
    const char *body)
{
	struct ins a = { q, idem, body, 0, 0 };

	return sg_store_write(st, job_insert, &a);
}

struct op {
	const char *id, *officer, *envelope, *error;
	enum sg_req_state state;
	int approve;
	int64_t at;
	const uint8_t *sig, *cms;
	size_t sig_len, cms_len;
	const char *note;
	uint64_t index;
	const char *sha, *text;
};

static int
job_approve(struct sg_txn *t, void *arg)
{
	struct op *o = arg;

	return sg_store_add_approval(t, o->id, o->officer, o->approve, o->at,
	    o->envelope);
}

static int
job_finish(struct sg_txn *t, void *arg)
{
	struct op *o = arg;

	return sg_store_finish(t, o->id, o->state, o->error);
}

static int
job_signed(struct sg_txn *t, void *arg)
{
	struct op *o = arg;

	return sg_store_set_signed(t, o->id, o->sig, o->sig_len, o->cms,
	    o->cms_len, o->at, o->note);
}

static int
job_log_index(struct sg_txn *t, void *arg)
{
	struct op *o = arg;

	return sg_store_set_log_index(t, o->id, o->index);
}

static int
job_put_policy(struct sg_txn *t, void *arg)
{
	struct op *o = arg;

	return sg_store_put_policy(t, o->sha, o->text, o->at);
}

static int
approve(struct sg_store *st, const char *id, const char *officer, int yes,
    int64_t at, const char *env)
{
	struct op o = { .id = id, .officer = officer, .approve = yes,
	    .at = at, .envelope = env };

	return sg_store_write(st, job_approve, &o);
}

static int
finish(struct sg_store *st, const char *id, enum sg_req_state state,
    const char *error)
{
	struct op o = { .id = id, .state = state, .error = error };

	return sg_store_write(st, job_finish, &o);
}

/* As the service does: a shared store's claim before a signature. */
static void
claim(struct sg_store *st, const char *id)
{
	int got = 0;

	if (sg_store_shared(st)) {
		CHECK_EQ_INT(sg_store_claim(st, id, &got), 0);
		CHECK_EQ_INT(got, 1);
	}
}

static int
set_signed_note(struct sg_store *st, const char *id, const uint8_t *sig,
    size_t sig_len, const uint8_t *cms, size_t cms_len, int64_t at,
    const char *note)
{
	struct op o = { .id = id, .sig = sig, .sig_len = sig_len, .cms = cms,
	    .cms_len = cms_len, .at = at, .note = note };

	claim(st, id);
	return sg_store_write(st, job_signed, &o);
}

/* Without a claim first: the fence's tests. */
static int
set_signed_raw(struct sg_store *st, const char *id, const uint8_t *sig,
    size_t sig_len, const uint8_t *cms, size_t cms_len, int64_t at)
{
	struct op o = { .id = id, .sig = sig, .sig_len = sig_len, .cms = cms,
	    .cms_len = cms_len, .at = at };

	return sg_store_write(st, job_signed, &o);
}

static int
set_signed(struct sg_store *st, const char *id, const uint8_t *sig,
    size_t sig_len, const uint8_t *cms, size_t cms_len, int64_t at)
{
	claim(st, id);
	return set_signed_raw(st, id, sig, sig_len, cms, cms_len, at);
}

/* Loads a request through a read transaction. */
static int
get(struct sg_store *st, const char *id, struct sg_request **ret)
{
	struct sg_txn *t = NULL;
	int r;

	if ((r = sg_store_read_begin(st, &t)) != 0)
		return r;
	r = sg_store_get_request(t, id, ret);
	sg_store_read_end(t);
	return r;
}

static int
exists(struct sg_store *st, const char *id)
{
	struct sg_request *q = NULL;
	int r = get(st, id, &q);

	sg_request_free(q);
	return r == 0;
}

static int
list(struct sg_store *st, enum sg_req_state state, const char *key,
    int64_t before, size_t limit, struct sg_request ***ret, size_t *ret_n)
{
	struct sg_txn *t = NULL;
	int r;

	if ((r = sg_store_read_begin(st, &t)) != 0)
		return r;
	r = sg_store_list(t, state, key, before, limit, ret, ret_n);
	sg_store_read_end(t);
	return r;
}

/* ---- tests ---- */

static void
test_open_creates(void)
{
	struct sg_store *st = NULL, *sentinel = (struct sg_store *)&st;
	char dir[128], db[160];
	struct stat sb;

	snprintf(dir, sizeof(dir), "%s/open", tmpdir);
	CHECK_EQ_INT(sg_store_open(dir, &st), 0);
	CHECK(st != NULL);
	CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    (sb.st_mode & 077) == 0);
	snprintf(db, sizeof(db), "%s/signgate.db", dir);
	CHECK(stat(db, &sb) == 0 && S_ISREG(sb.st_mode));
	sg_store_close(st);
	sg_store_close(NULL);

	/* An existing directory is fine; a missing parent is not. */
	st = NULL;
	CHECK_EQ_INT(sg_store_open(dir, &st), 0);
	sg_store_close(st);
	snprintf(dir, sizeof(dir), "%s/no/such", tmpdir);
	st = sentinel;
	CHECK(sg_store_open(dir, &st) < 0);
	CHECK(st == sentinel);
}

struct rw_check {
	const char *id;
	int is_write, found;
};

static int
job_read_own_write(struct sg_txn *t, void *arg)
{
	struct rw_check *c = arg;
	struct sg_request *q = NULL;

	c->is_write = sg_store_txn_is_write(t);
	c->found = sg_store_get_request(t, c->id, &q) == 0;
	sg_request_free(q);
	return 0;
}

static void
test_round_trip(void)
{
	struct sg_store *st = open_store("rt");
	struct sg_request *got = NULL, *sentinel = (struct sg_request *)&got;
	struct req a, b, c;
	struct rw_check rc;
	struct sg_txn *t;
	size_t i;

	CHECK(st != NULL);
	if (st == NULL)
		return;

	/* A pending request with fields at their maximum sizes. */
	fill(&a, 1, "release", 1764417600, 1764421200);
	memset(a.q.key, 'k', sizeof(a.q.key) - 1);
	memset(a.q.requester, 'r', sizeof(a.q.requester) - 1);
	memset(a.q.policy_name, 'p', sizeof(a.q.policy_name) - 1);
	snprintf(a.q.digest_alg, sizeof(a.q.digest_alg), "sha512");
	for (i = 0; i < 128; i++)
		a.q.digest_hex[i] = "0123456789abcdef"[i % 16];
	a.q.policy_version = (UINT64_C(1) << 63) + 5;
	snprintf(a.artifact, sizeof(a.artifact),
	    "{\"name\":\"caf\xc3\xa9\",\"notes\":\"a\\nb\"}");
	CHECK_EQ_INT(insert(st, &a.q, NULL, NULL), 0);

	/* A signed one with binary signature and CMS (NUL bytes inside). */
	fill(&b, 2, "firmware", 100, 200);
	b.q.format = SG_FORMAT_CMS;
	b.q.state = SG_REQ_SIGNED;
	for (i = 0; i < sizeof(b.sig); i++)
		b.sig[i] = (uint8_t)(i * 13);
	for (i = 0; i < sizeof(b.cms); i++)
		b.cms[i] = (uint8_t)(255 - i);
	b.sig[0] = 0;
	b.q.signature = b.sig;
	b.q.signature_len = sizeof(b.sig);
	b.q.cms = b.cms;
	b.q.cms_len = sizeof(b.cms);
	b.q.signed_at = 150;
	b.q.timestamp_note = (char *)"added 2025-11-29T12:00:00Z";
	CHECK_EQ_INT(insert(st, &b.q, NULL, NULL), 0);

	/* A failed one with an error. */
	fill(&c, 3, "nightly", -5, 0);
	c.q.state = SG_REQ_FAILED;
	snprintf(c.error, sizeof(c.error), "HSM: CKR_DEVICE_ERROR");
	c.q.error = c.error;
	CHECK_EQ_INT(insert(st, &c.q, NULL, NULL), 0);

	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	CHECK(got != NULL && same_request(got, &a.q));
	CHECK(got != NULL && got->seq > 0 && got->napprovals == 0 &&
	    got->approvals == NULL);
	{
		int64_t seq_a = got ? got->seq : 0;
		sg_request_free(got);
		got = NULL;
		CHECK_EQ_INT(get(st, b.q.id, &got), 0);
		CHECK(got != NULL && same_request(got, &b.q));
		CHECK(got != NULL && got->seq > seq_a);
		sg_request_free(got);
	}
	got = NULL;
	CHECK_EQ_INT(get(st, c.q.id, &got), 0);
	CHECK(got != NULL && same_request(got, &c.q));
	sg_request_free(got);

	/* Unknown id. */
	got = sentinel;
	CHECK_EQ_INT(get(st, "ffffffffffffffffffffffffffffffff", &got),
	    SG_ERR_NOT_FOUND);
	CHECK(got == sentinel);

	/* The same id twice: refused, the first kept. */
	fill(&c, 1, "other", 1, 2);
	CHECK_EQ_INT(insert(st, &c.q, NULL, NULL), SG_ERR_CONFLICT);
	got = NULL;
	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	CHECK(got != NULL && same_request(got, &a.q));
	sg_request_free(got);

	/* A job sees its own writes; a reader knows it is one. */
	rc.id = a.q.id;
	rc.is_write = rc.found = -1;
	CHECK_EQ_INT(sg_store_write(st, job_read_own_write, &rc), 0);
	CHECK_EQ_INT(rc.is_write, 1);
	CHECK_EQ_INT(rc.found, 1);
	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_txn_is_write(t), 0);
	CHECK(sg_store_txn_db(t) != NULL);
	sg_store_read_end(t);
	sg_store_read_end(NULL);

	sg_store_close(st);
}

static void
test_idempotency(void)
{
	struct sg_store *st = open_store("idem");
	char id[SG_REQUEST_ID_SIZE] = "untouched";
	char body[SG_SHA256_HEX_SIZE] = "untouched";
	struct req a, b, c, d;
	struct sg_txn *t;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&a, 10, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &a.q, "key-1", "b1b1"), 0);

	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_find_idempotent(t, "ci", "key-1", id, body), 0);
	CHECK_STR(id, a.q.id);
	CHECK_STR(body, "b1b1");
	strcpy(id, "untouched");
	strcpy(body, "untouched");
	CHECK_EQ_INT(sg_store_find_idempotent(t, "alice", "key-1", id, body),
	    SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_store_find_idempotent(t, "ci", "key-2", id, body),
	    SG_ERR_NOT_FOUND);
	CHECK_STR(id, "untouched");
	CHECK_STR(body, "untouched");
	sg_store_read_end(t);

	/* Same requester and key again: refused. */
	fill(&b, 11, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &b.q, "key-1", "b2b2"), SG_ERR_CONFLICT);
	CHECK(!exists(st, b.q.id));
	/* Another requester may use the same key. */
	snprintf(b.q.requester, sizeof(b.q.requester), "ci2");
	CHECK_EQ_INT(insert(st, &b.q, "key-1", "b3b3"), 0);
	/* Requests without a key never collide. */
	fill(&c, 12, "release", 1, 2);
	fill(&d, 13, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &c.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &d.q, NULL, NULL), 0);

	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_find_idempotent(t, "ci2", "key-1", id, body),
	    0);
	CHECK_STR(id, b.q.id);
	CHECK_STR(body, "b3b3");
	CHECK_EQ_INT(sg_store_find_idempotent(t, "ci", "key-1", id, body), 0);
	CHECK_STR(id, a.q.id);
	sg_store_read_end(t);
	sg_store_close(st);
}

static void
test_approvals(void)
{
	struct sg_store *st = open_store("appr");
	struct sg_request *got = NULL;
	struct req a, b;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&a, 20, "release", 1, 2);
	fill(&b, 21, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &a.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &b.q, NULL, NULL), 0);

	CHECK_EQ_INT(approve(st, a.q.id, "carol", 1, 300, "{\"c\":1}"), 0);
	CHECK_EQ_INT(approve(st, a.q.id, "alice", 0, 100, "{\"a\":1}"), 0);
	/* The same officer twice, whatever the decision. */
	CHECK_EQ_INT(approve(st, a.q.id, "alice", 0, 101, "{\"a\":2}"),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(approve(st, a.q.id, "alice", 1, 102, "{\"a\":3}"),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(approve(st, a.q.id, "bob", 1, 200, "{\"b\":1}"), 0);
	/* Decisions are per request. */
	CHECK_EQ_INT(approve(st, b.q.id, "alice", 1, 400, "{\"a\":4}"), 0);
	/* An unknown request cannot be approved. */
	CHECK(approve(st, "00000000000000000000000000000000", "dave", 1, 1,
	    "{}") < 0);

	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	CHECK(got != NULL && got->napprovals == 3);
	if (got != NULL && got->napprovals == 3) {
		/* In the order recorded, not by name or time. */
		CHECK_STR(got->approvals[0].officer, "carol");
		CHECK_EQ_INT(got->approvals[0].approve, 1);
		CHECK_EQ_INT(got->approvals[0].at, 300);
		CHECK_STR(got->approvals[0].envelope, "{\"c\":1}");
		CHECK_STR(got->approvals[1].officer, "alice");
		CHECK_EQ_INT(got->approvals[1].approve, 0);
		CHECK_EQ_INT(got->approvals[1].at, 100);
		CHECK_STR(got->approvals[1].envelope, "{\"a\":1}");
		CHECK_STR(got->approvals[2].officer, "bob");
		CHECK_EQ_INT(got->approvals[2].approve, 1);
		CHECK_STR(got->approvals[2].envelope, "{\"b\":1}");
	}
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(get(st, b.q.id, &got), 0);
	CHECK(got != NULL && got->napprovals == 1 &&
	    strcmp(got->approvals[0].officer, "alice") == 0 &&
	    got->approvals[0].approve == 1);
	sg_request_free(got);
	sg_store_close(st);
}

static void
test_transitions(void)
{
	struct sg_store *st = open_store("trans");
	static const uint8_t sig[] = { 0x30, 0x00, 0x02, 0xff, 0x00 };
	static const uint8_t cms[] = { 0x30, 0x82, 0x00, 0x01, 0x00, 0x7f };
	struct sg_request *got = NULL;
	struct req r1, r2, r3, r4, r5;
	struct op o;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&r1, 30, "release", 1, 2);
	fill(&r2, 31, "release", 1, 2);
	fill(&r3, 32, "release", 1, 2);
	fill(&r4, 33, "release", 1, 2);
	fill(&r5, 34, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &r1.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &r2.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &r3.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &r4.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &r5.q, NULL, NULL), 0);

	/* pending → rejected, once. */
	CHECK_EQ_INT(finish(st, r1.q.id, SG_REQ_REJECTED, NULL), 0);
	CHECK_EQ_INT(finish(st, r1.q.id, SG_REQ_REJECTED, NULL),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(finish(st, r1.q.id, SG_REQ_EXPIRED, NULL),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(set_signed(st, r1.q.id, sig, sizeof(sig), NULL, 0, 5),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(get(st, r1.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_REJECTED &&
	    got->error == NULL && got->signature == NULL &&
	    got->signed_at == 0);
	sg_request_free(got);

	/* pending → signed, once; the first signature stays. */
	CHECK_EQ_INT(set_signed_note(st, r2.q.id, sig, sizeof(sig), cms,
	    sizeof(cms), 1700000000, "skipped: no time-stamping authority"),
	    0);
	CHECK_EQ_INT(set_signed(st, r2.q.id, cms, sizeof(cms), NULL, 0, 7),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(finish(st, r2.q.id, SG_REQ_FAILED, "late"),
	    SG_ERR_CONFLICT);
	got = NULL;
	CHECK_EQ_INT(get(st, r2.q.id, &got), 0);
	CHECK(got != NULL);
	if (got != NULL) {
		CHECK_EQ_INT(got->state, SG_REQ_SIGNED);
		CHECK(got->signature_len == sizeof(sig) &&
		    memcmp(got->signature, sig, sizeof(sig)) == 0);
		CHECK(got->cms_len == sizeof(cms) &&
		    memcmp(got->cms, cms, sizeof(cms)) == 0);
		CHECK_EQ_INT(got->signed_at, 1700000000);
		CHECK_STR(got->timestamp_note,
		    "skipped: no time-stamping authority");
		CHECK(got->error == NULL);
		CHECK_EQ_INT(got->log_index, -1);
	}
	sg_request_free(got);

	/* Signed without CMS. */
	CHECK_EQ_INT(set_signed(st, r5.q.id, sig, sizeof(sig), NULL, 0, 9), 0);
	got = NULL;
	CHECK_EQ_INT(get(st, r5.q.id, &got), 0);
	CHECK(got != NULL && got->cms == NULL && got->cms_len == 0 &&
	    got->signature_len == sizeof(sig) && got->timestamp_note == NULL);
	sg_request_free(got);

	/* pending → failed with its error; pending → expired. */
	CHECK_EQ_INT(finish(st, r3.q.id, SG_REQ_FAILED, "HSM unavailable"), 0);
	CHECK_EQ_INT(finish(st, r4.q.id, SG_REQ_EXPIRED, NULL), 0);
	CHECK_EQ_INT(set_signed(st, r4.q.id, sig, sizeof(sig), NULL, 0, 5),
	    SG_ERR_CONFLICT);
	got = NULL;
	CHECK_EQ_INT(get(st, r3.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_FAILED &&
	    got->error != NULL && strcmp(got->error, "HSM unavailable") == 0);
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(get(st, r4.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_EXPIRED);
	sg_request_free(got);

	/* A state outside the schema's set is refused. */
	fill(&r1, 35, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &r1.q, NULL, NULL), 0);
	CHECK(finish(st, r1.q.id, (enum sg_req_state)(SG_REQ_STATE_LAST + 1),
	    NULL) < 0);
	got = NULL;
	CHECK_EQ_INT(get(st, r1.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_PENDING);
	sg_request_free(got);

	/* The log index of the signature. */
	memset(&o, 0, sizeof(o));
	o.id = r2.q.id;
	o.index = (UINT64_C(1) << 40) + 3;
	CHECK_EQ_INT(sg_store_write(st, job_log_index, &o), 0);
	got = NULL;
	CHECK_EQ_INT(get(st, r2.q.id, &got), 0);
	CHECK(got != NULL && got->log_index == (int64_t)o.index);
	sg_request_free(got);
	o.id = "00000000000000000000000000000000";
	CHECK(sg_store_write(st, job_log_index, &o) < 0);
	sg_store_close(st);
}

static void
test_list(void)
{
	struct sg_store *st = open_store("list");
	struct sg_request **v = NULL, **page = NULL;
	char ids[12][SG_REQUEST_ID_SIZE];
	struct req r;
	size_t i, n = 0, pn = 0, total;
	int64_t before;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	for (i = 0; i < 12; i++) {
		fill(&r, 100 + (unsigned)i, i % 2 ? "nightly" : "release",
		    (int64_t)i, 1000);
		snprintf(ids[i], sizeof(ids[i]), "%s", r.q.id);
		CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
	}
	for (i = 0; i < 12; i += 3)   /* 0, 3, 6, 9 */
		CHECK_EQ_INT(finish(st, ids[i], SG_REQ_REJECTED, NULL), 0);
	CHECK_EQ_INT(approve(st, ids[11], "alice", 1, 5, "{}"), 0);

	/* All, newest first, with approvals. */
	CHECK_EQ_INT(list(st, SG_REQ_NONE, NULL, 0, 100, &v, &n), 0);
	CHECK_EQ_INT(n, 12);
	for (i = 0; i < n && i < 12; i++) {
		CHECK_STR(v[i]->id, ids[11 - i]);
		if (i > 0)
			CHECK(v[i]->seq < v[i - 1]->seq);
	}
	CHECK(n > 0 && v[0]->napprovals == 1);
	sg_request_list_free(v, n);

	/* By state. */
	v = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_PENDING, NULL, 0, 100, &v, &n), 0);
	CHECK_EQ_INT(n, 8);
	for (i = 0; i < n; i++)
		CHECK_EQ_INT(v[i]->state, SG_REQ_PENDING);
	CHECK(n > 1 && strcmp(v[0]->id, ids[11]) == 0 &&
	    strcmp(v[1]->id, ids[10]) == 0);
	sg_request_list_free(v, n);
	v = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_SIGNED, NULL, 0, 100, &v, &n), 0);
	CHECK_EQ_INT(n, 0);
	sg_request_list_free(v, n);

	/* By key, and by both. */
	v = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_NONE, "nightly", 0, 100, &v, &n), 0);
	CHECK_EQ_INT(n, 6);
	for (i = 0; i < n; i++)
		CHECK_STR(v[i]->key, "nightly");
	sg_request_list_free(v, n);
	v = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_REJECTED, "release", 0, 100, &v, &n), 0);
	CHECK_EQ_INT(n, 2);   /* 0 and 6 */
	CHECK(n == 2 && strcmp(v[0]->id, ids[6]) == 0 &&
	    strcmp(v[1]->id, ids[0]) == 0);
	sg_request_list_free(v, n);
	v = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_NONE, "unknown", 0, 100, &v, &n), 0);
	CHECK_EQ_INT(n, 0);
	sg_request_list_free(v, n);

	/* Limit 0 and 1. */
	v = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_NONE, NULL, 0, 0, &v, &n), 0);
	CHECK_EQ_INT(n, 0);
	sg_request_list_free(v, n);
	v = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_NONE, NULL, 0, 1, &v, &n), 0);
	CHECK(n == 1 && strcmp(v[0]->id, ids[11]) == 0);
	sg_request_list_free(v, n);

	/* Paging with before_seq: 5 + 5 + 2 + 0, in order, no overlap. */
	total = 0;
	before = 0;
	for (i = 0; i < 5; i++) {
		size_t k;
		page = NULL;
		CHECK_EQ_INT(list(st, SG_REQ_NONE, NULL, before, 5, &page,
		    &pn), 0);
		for (k = 0; k < pn && total + k < 12; k++)
			CHECK_STR(page[k]->id, ids[11 - (total + k)]);
		total += pn;
		if (pn > 0)
			before = page[pn - 1]->seq;
		sg_request_list_free(page, pn);
		if (pn == 0)
			break;
		CHECK_EQ_INT(pn, total <= 10 ? 5 : 2);
	}
	CHECK_EQ_INT(total, 12);
	CHECK_EQ_INT(i, 3);

	/* Paging with a filter. */
	page = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_PENDING, "nightly", 0, 2, &page, &pn), 0);
	CHECK(pn == 2 && strcmp(page[0]->id, ids[11]) == 0 &&
	    strcmp(page[1]->id, ids[7]) == 0);   /* 9 is rejected */
	before = pn == 2 ? page[1]->seq : 0;
	sg_request_list_free(page, pn);
	page = NULL;
	CHECK_EQ_INT(list(st, SG_REQ_PENDING, "nightly", before, 10, &page,
	    &pn), 0);
	CHECK(pn == 2 && strcmp(page[0]->id, ids[5]) == 0 &&
	    strcmp(page[1]->id, ids[1]) == 0);
	sg_request_list_free(page, pn);
	sg_store_close(st);
}

static void
test_expiry_and_pending(void)
{
	struct sg_store *st = open_store("exp");
	static const int64_t exp[] = { 300, 100, 400, 200, 50 };
	char ids[5][SG_REQUEST_ID_SIZE], got[8][SG_REQUEST_ID_SIZE];
	struct sg_txn *t;
	struct req r;
	size_t i, n;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	for (i = 0; i < 5; i++) {
		fill(&r, 200 + (unsigned)i, "release", 0, exp[i]);
		snprintf(ids[i], sizeof(ids[i]), "%s", r.q.id);
		CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
	}
	/* The one due earliest is no longer pending. */
	CHECK_EQ_INT(finish(st, ids[4], SG_REQ_REJECTED, NULL), 0);

	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	n = 99;
	CHECK_EQ_INT(sg_store_due_expiry(t, 99, 8, got, &n), 0);
	CHECK_EQ_INT(n, 0);
	/* expires_at <= now, in creation order. */
	CHECK_EQ_INT(sg_store_due_expiry(t, 250, 8, got, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK(n == 2 && strcmp(got[0], ids[1]) == 0 &&
	    strcmp(got[1], ids[3]) == 0);
	CHECK_EQ_INT(sg_store_due_expiry(t, 400, 8, got, &n), 0);
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(sg_store_due_expiry(t, 1000, 2, got, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK(n == 2 && strcmp(got[0], ids[0]) == 0 &&
	    strcmp(got[1], ids[1]) == 0);

	/* Pending ids, oldest first. */
	CHECK_EQ_INT(sg_store_pending_ids(t, 8, got, &n), 0);
	CHECK_EQ_INT(n, 4);
	for (i = 0; i < n && i < 4; i++)
		CHECK_STR(got[i], ids[i]);
	CHECK_EQ_INT(sg_store_pending_ids(t, 1, got, &n), 0);
	CHECK(n == 1 && strcmp(got[0], ids[0]) == 0);
	sg_store_read_end(t);
	sg_store_close(st);
}

static void
test_policy(void)
{
	struct sg_store *st = open_store("pol");
	char *text = NULL, *sentinel = (char *)"sentinel";
	struct sg_txn *t;
	struct op o;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	memset(&o, 0, sizeof(o));
	o.sha = "aaaa000000000000000000000000000000000000000000000000000000000001";
	o.text = "version 1\nkey release { }\n";
	o.at = 1000;
	CHECK_EQ_INT(sg_store_write(st, job_put_policy, &o), 0);
	/* The same digest again keeps the first text. */
	o.text = "something else";
	CHECK_EQ_INT(sg_store_write(st, job_put_policy, &o), 0);

	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_get_policy(t, o.sha, &text), 0);
	CHECK_STR(text, "version 1\nkey release { }\n");
	free(text);
	text = sentinel;
	CHECK_EQ_INT(sg_store_get_policy(t, "bbbb", &text), SG_ERR_NOT_FOUND);
	CHECK(text == sentinel);
	sg_store_read_end(t);
	sg_store_close(st);
}

/* A logged policy: a version logged pending keeps the policy-effective
 * entry that put it in force, until it is logged again. */
struct plog_op {
	const char *sha, *status;
	int64_t index;
};

static int
job_policy_logged(struct sg_txn *t, void *arg)
{
	struct plog_op *o = arg;

	return sg_store_policy_logged(t, o->sha, "version 2\n", 1000,
	    (uint64_t)o->index, o->status, "");
}

static int
job_policy_set_status(struct sg_txn *t, void *arg)
{
	struct plog_op *o = arg;

	return sg_store_policy_set_status(t, o->sha, o->status, o->index);
}

static int
job_policy_approve(struct sg_txn *t, void *arg)
{
	struct plog_op *o = arg;

	return sg_store_policy_approval_add(t, o->sha, "alice", 1000, "{}",
	    (uint64_t)o->index);
}

static size_t
policy_approvals(struct sg_store *st, const char *sha)
{
	struct sg_store_policy_approval ap[4];
	struct sg_txn *t;
	size_t n = 99;

	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_policy_approvals(t, sha, ap, 4, &n), 0);
	sg_store_policy_approvals_free(ap, n);
	sg_store_read_end(t);
	return n;
}

static void
check_logged(struct sg_store *st, const char *sha, int64_t log_index,
    const char *status, int64_t effective_index)
{
	struct sg_store_policy sp;
	struct sg_txn *t;

	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_policy_get(t, sha, &sp), 0);
	CHECK_EQ_INT(sp.log_index, log_index);
	CHECK_STR(sp.status, status);
	CHECK_EQ_INT(sp.effective_index, effective_index);
	sg_store_policy_clear(&sp);
	sg_store_read_end(t);
}

static void
test_policy_effective_index(void)
{
	struct sg_store *st = open_store("poleff");
	struct plog_op o = { "aaaa000000000000000000000000000000000000000000000"
	    "000000000000002", "effective", 9 };

	CHECK(st != NULL);
	if (st == NULL)
		return;
	/* Never logged: nothing takes effect. */
	CHECK_EQ_INT(sg_store_write(st, job_policy_set_status, &o),
	    SG_ERR_CONFLICT);
	o.status = "pending";
	o.index = 5;
	CHECK_EQ_INT(sg_store_write(st, job_policy_logged, &o), 0);
	check_logged(st, o.sha, 5, "pending", -1);
	o.status = "effective";
	o.index = 8;
	CHECK_EQ_INT(sg_store_write(st, job_policy_set_status, &o), 0);
	check_logged(st, o.sha, 5, "effective", 8);
	/* Logged again: the entry of the earlier logging no longer counts. */
	o.status = "pending";
	o.index = 12;
	CHECK_EQ_INT(sg_store_write(st, job_policy_logged, &o), 0);
	check_logged(st, o.sha, 12, "pending", -1);
	/* An approval of this round... */
	o.index = 13;
	CHECK_EQ_INT(sg_store_write(st, job_policy_approve, &o), 0);
	CHECK_EQ_INT(policy_approvals(st, o.sha), 1);
	CHECK_EQ_INT(sg_store_write(st, job_policy_approve, &o),
	    SG_ERR_CONFLICT);
	o.status = "replaced";
	o.index = -1;
	CHECK_EQ_INT(sg_store_write(st, job_policy_set_status, &o), 0);
	check_logged(st, o.sha, 12, "replaced", -1);
	CHECK_EQ_INT(policy_approvals(st, o.sha), 1);
	/* ...is not one of the next: logged pending again, it starts with
	 * none, and the same officer may approve it again. */
	o.status = "pending";
	o.index = 14;
	CHECK_EQ_INT(sg_store_write(st, job_policy_logged, &o), 0);
	check_logged(st, o.sha, 14, "pending", -1);
	CHECK_EQ_INT(policy_approvals(st, o.sha), 0);
	o.index = 15;
	CHECK_EQ_INT(sg_store_write(st, job_policy_approve, &o), 0);
	CHECK_EQ_INT(policy_approvals(st, o.sha), 1);
	o.status = "effective";
	o.index = 16;
	CHECK_EQ_INT(sg_store_write(st, job_policy_logged, &o), 0);
	check_logged(st, o.sha, 16, "effective", -1);
	sg_store_close(st);
}

static void
test_read_snapshot(void)
{
	struct sg_store *st = open_store("snap");
	struct sg_request *got = NULL;
	struct sg_txn *t1, *t2;
	struct req a, b;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&a, 300, "release", 1, 2);
	fill(&b, 301, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &a.q, NULL, NULL), 0);

	/* A reader keeps its snapshot while the writer commits. */
	CHECK_EQ_INT(sg_store_read_begin(st, &t1), 0);
	CHECK_EQ_INT(sg_store_get_request(t1, a.q.id, &got), 0);
	sg_request_free(got);
	CHECK_EQ_INT(insert(st, &b.q, NULL, NULL), 0);
	CHECK_EQ_INT(finish(st, a.q.id, SG_REQ_REJECTED, NULL), 0);
	got = NULL;
	CHECK_EQ_INT(sg_store_get_request(t1, b.q.id, &got), SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_store_get_request(t1, a.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_PENDING);
	sg_request_free(got);
	/* A new reader sees the commit. */
	CHECK_EQ_INT(sg_store_read_begin(st, &t2), 0);
	got = NULL;
	CHECK_EQ_INT(sg_store_get_request(t2, b.q.id, &got), 0);
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(sg_store_get_request(t2, a.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_REJECTED);
	sg_request_free(got);
	sg_store_read_end(t2);
	sg_store_read_end(t1);
	sg_store_close(st);
}

/* ---- the writer: hooks and batches ---- */

struct hook_counts {
	atomic_int job_begin, job_abort, batch_end, committed, aborted;
	atomic_int fail_batch;      /* batch_end fails in this batch (+1) */
	atomic_int policy_writes;   /* batch_end records a row per batch */
};

static struct hook_counts hc;

static void hk_job_begin(void *ctx) { (void)ctx; atomic_fetch_add(&hc.job_begin, 1); }
static void hk_job_abort(void *ctx) { (void)ctx; atomic_fetch_add(&hc.job_abort, 1); }

static int
hk_batch_end(void *ctx, struct sg_txn *t)
{
	int fail = atomic_load(&hc.fail_batch);
	char sha[SG_SHA256_HEX_SIZE];

	(void)ctx;
	atomic_fetch_add(&hc.batch_end, 1);
	/* Like the log's checkpoint: a write that belongs to the batch. */
	snprintf(sha, sizeof(sha), "%064d", atomic_load(&batch_no));
	if (atomic_load(&hc.policy_writes) &&
	    sg_store_put_policy(t, sha, "batch", 0) != 0)
		return SG_ERR_IO;
	if (fail > 0 && atomic_load(&batch_no) == fail - 1)
		return SG_ERR_IO;
	return 0;
}

static void
hk_committed(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&hc.committed, 1);
	atomic_fetch_add(&batch_no, 1);
}

static void
hk_aborted(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&hc.aborted, 1);
	atomic_fetch_add(&batch_no, 1);
}

static void
install_hooks(struct sg_store *st)
{
	struct sg_store_hooks h = {
		.ctx = NULL,
		.job_begin = hk_job_begin,
		.job_abort = hk_job_abort,
		.batch_end = hk_batch_end,
		.batch_committed = hk_committed,
		.batch_abort = hk_aborted,
	};

	memset(&hc, 0, sizeof(hc));
	atomic_store(&batch_no, 0);
	sg_store_set_hooks(st, &h);
}

#define GC_THREADS 8
#define GC_PER_THREAD 200
#define GC_MAX (GC_THREADS * GC_PER_THREAD + 10)

struct gc_arg {
	struct sg_store *st;
	unsigned thread;
	int failures;
};

static void *
gc_thread(void *p)
{
	struct gc_arg *a = p;
	struct req r;
	unsigned i;

	for (i = 0; i < GC_PER_THREAD; i++) {
		fill(&r, a->thread * 10000 + i, i % 2 ? "release" : "nightly",
		    (int64_t)i, 1000);
		if (insert(a->st, &r.q, NULL, NULL) != 0)
			a->failures++;
	}
	return NULL;
}

static void
test_group_commit(void)
{
	struct sg_store *st = open_store("gc");
	struct gc_arg args[GC_THREADS];
	pthread_t th[GC_THREADS];
	uint64_t batches0, jobs0, batches, jobs;
	size_t n = 0, k, missing = 0, bad = 0;
	char (*ids)[SG_REQUEST_ID_SIZE] = NULL;
	unsigned char *seen = NULL;
	long last[GC_THREADS + 1];
	struct sg_txn *txn;
	unsigned t;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	install_hooks(st);
	for (t = 0; t <= GC_THREADS; t++)
		last[t] = -1;
	sg_store_batch_stats(st, &batches0, &jobs0);
	CHECK_EQ_INT(batches0, 0);
	CHECK_EQ_INT(jobs0, 0);
	for (t = 0; t < GC_THREADS; t++) {
		args[t].st = st;
		args[t].thread = t + 1;
		args[t].failures = 0;
		CHECK(pthread_create(&th[t], NULL, gc_thread, &args[t]) == 0);
	}
	for (t = 0; t < GC_THREADS; t++) {
		pthread_join(th[t], NULL);
		CHECK_EQ_INT(args[t].failures, 0);
	}
	sg_store_batch_stats(st, &batches, &jobs);
	CHECK_EQ_INT(jobs, GC_THREADS * GC_PER_THREAD);
	CHECK(batches > 0 && batches < jobs);
	fprintf(stderr, "  group commit: %" PRIu64 " jobs in %" PRIu64
	    " batches\n", jobs, batches);
	/* The hooks saw every job and every batch. */
	CHECK_EQ_INT(atomic_load(&hc.job_begin), jobs);
	CHECK_EQ_INT(atomic_load(&hc.job_abort), 0);
	CHECK_EQ_INT(atomic_load(&hc.committed), batches);
	CHECK_EQ_INT(atomic_load(&hc.batch_end), batches);
	CHECK_EQ_INT(atomic_load(&hc.aborted), 0);

	/* Every request is there, once, and each thread's requests in the
	 * order that thread wrote them (pending ids are oldest first). */
	if ((ids = calloc(GC_MAX, sizeof(*ids))) == NULL ||
	    (seen = calloc(GC_THREADS * GC_PER_THREAD, 1)) == NULL) {
		CHECK(!"calloc");
		goto out;
	}
	CHECK_EQ_INT(sg_store_read_begin(st, &txn), 0);
	CHECK_EQ_INT(sg_store_pending_ids(txn, GC_MAX, ids, &n), 0);
	sg_store_read_end(txn);
	CHECK_EQ_INT(n, GC_THREADS * GC_PER_THREAD);
	for (k = 0; k < n; k++) {
		unsigned long long num;
		char head[17];
		/* The first 16 hex digits are the number fill() was given. */
		snprintf(head, sizeof(head), "%.16s", ids[k]);
		num = strtoull(head, NULL, 16);
		t = (unsigned)(num / 10000);
		if (t < 1 || t > GC_THREADS || num % 10000 >= GC_PER_THREAD ||
		    seen[(t - 1) * GC_PER_THREAD + num % 10000]++ != 0 ||
		    (long)(num % 10000) <= last[t]) {
			bad++;
			continue;
		}
		last[t] = (long)(num % 10000);
	}
	for (k = 0; k < GC_THREADS * GC_PER_THREAD; k++)
		if (!seen[k])
			missing++;
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(missing, 0);
out:
	free(ids);
	free(seen);
	sg_store_close(st);
}

/* Holds the writer until released, so that later jobs queue up. */
struct blocker {
	atomic_int running, release;
	int batch;
	const struct sg_request *q;
};

static int
job_blocker(struct sg_txn *t, void *arg)
{
	struct blocker *b = arg;
	int r;

	b->batch = atomic_load(&batch_no);
	if ((r = sg_store_insert_request(t, b->q, NULL, NULL)) != 0)
		return r;
	atomic_store(&b->running, 1);
	if (!wait_for(&b->release, 1, 10000))
		fprintf(stderr, "  blocker: not released in time\n");
	return 0;
}

struct writer_arg {
	struct sg_store *st;
	sg_store_job_fn fn;
	void *arg;
	atomic_int *started;
	int result;
};

static void *
writer_thread(void *p)
{
	struct writer_arg *w = p;

	atomic_fetch_add(w->started, 1);
	w->result = sg_store_write(w->st, w->fn, w->arg);
	return NULL;
}

#define NWORKERS 6

/*
 * Runs a blocker job, queues NWORKERS inserts behind it and releases it.
 * Returns 0 when the workers all ran in one batch after the blocker's.
 */
static int
run_blocked_batch(struct sg_store *st, struct req *blk, struct req *rq,
    struct ins *ins, struct writer_arg *wa, int fail_index, int *ret_blk)
{
	struct blocker b;
	struct writer_arg bw;
	pthread_t bt, wt[NWORKERS];
	atomic_int started;
	int i, ok = 1;

	memset(&b, 0, sizeof(b));
	b.q = &blk->q;
	atomic_init(&started, 0);
	bw.st = st;
	bw.fn = job_blocker;
	bw.arg = &b;
	bw.started = &started;
	bw.result = -999;
	if (pthread_create(&bt, NULL, writer_thread, &bw) != 0)
		return -1;
	if (!wait_for(&b.running, 1, 10000)) {
		fprintf(stderr, "  blocker did not run\n");
		ok = 0;
	}
	for (i = 0; i < NWORKERS; i++) {
		memset(&ins[i], 0, sizeof(ins[i]));
		ins[i].q = &rq[i].q;
		ins[i].fail_with = i == fail_index ? SG_ERR_INVALID : 0;
		ins[i].batch = -1;
		wa[i].st = st;
		wa[i].fn = job_insert;
		wa[i].arg = &ins[i];
		wa[i].started = &started;
		wa[i].result = -999;
		if (pthread_create(&wt[i], NULL, writer_thread, &wa[i]) != 0) {
			atomic_store(&b.release, 1);
			pthread_join(bt, NULL);
			while (--i >= 0)
				pthread_join(wt[i], NULL);
			return -1;
		}
	}
	/* Every worker has called sg_store_write; give them time to queue. */
	if (!wait_for(&started, 1 + NWORKERS, 10000))
		ok = 0;
	sleep_ms(200);
	atomic_store(&b.release, 1);
	pthread_join(bt, NULL);
	for (i = 0; i < NWORKERS; i++)
		pthread_join(wt[i], NULL);
	*ret_blk = bw.result;
	for (i = 0; i < NWORKERS; i++)
		if (ins[i].batch != ins[0].batch || ins[i].batch <= b.batch)
			ok = 0;
	if (!ok)
		fprintf(stderr, "  the workers did not share one batch\n");
	return ok ? 0 : -1;
}

static void
test_job_error_rolled_back_alone(void)
{
	struct sg_store *st = open_store("jobfail");
	struct req blk, rq[NWORKERS];
	struct ins ins[NWORKERS];
	struct writer_arg wa[NWORKERS];
	int i, blk_r = -999, aborts0;
	const int bad = 3;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	install_hooks(st);
	fill(&blk, 400, "release", 1, 2);
	for (i = 0; i < NWORKERS; i++)
		fill(&rq[i], 401 + (unsigned)i, "release", 1, 2);
	aborts0 = atomic_load(&hc.aborted);

	CHECK_EQ_INT(run_blocked_batch(st, &blk, rq, ins, wa, bad, &blk_r), 0);
	CHECK_EQ_INT(blk_r, 0);
	for (i = 0; i < NWORKERS; i++) {
		if (i == bad) {
			CHECK_EQ_INT(wa[i].result, SG_ERR_INVALID);
			CHECK(!exists(st, rq[i].q.id));
		} else {
			CHECK_EQ_INT(wa[i].result, 0);
			CHECK(exists(st, rq[i].q.id));
		}
	}
	CHECK(exists(st, blk.q.id));
	CHECK_EQ_INT(atomic_load(&hc.job_abort), 1);
	CHECK_EQ_INT(atomic_load(&hc.aborted), aborts0);
	CHECK_EQ_INT(atomic_load(&hc.job_begin), 1 + NWORKERS);

	/* The failed insert can be retried: nothing of it was left. */
	CHECK_EQ_INT(insert(st, &rq[bad].q, NULL, NULL), 0);
	CHECK(exists(st, rq[bad].q.id));
	sg_store_close(st);
}

/* Inserts, then meets an SQL error it does not report (a job must never
 * do so, but one that does must not be acknowledged for what was lost). */
static int
job_insert_swallow_error(struct sg_txn *t, void *arg)
{
	const struct sg_request *q = arg;
	int r;

	if ((r = sg_store_insert_request(t, q, NULL, NULL)) != 0)
		return r;
	(void)sg_db_exec(sg_store_txn_db(t), "SELECT no_such_column FROM "
	    "requests");
	return 0;
}

/*
 * A write is acknowledged only if it is kept.  SQLite undoes the failed
 * statement alone and commits the rest; PostgreSQL aborts the whole
 * transaction and answers its COMMIT with ROLLBACK, without an error:
 * the batch must then fail, not report the lost insert as stored.
 */
static void
test_swallowed_error_not_acknowledged(void)
{
	struct sg_store *st = open_store("swallowed");
	struct req a, b;
	int r;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&a, 480, "release", 1, 2);
	fill(&b, 481, "release", 1, 2);
	r = sg_store_write(st, job_insert_swallow_error, &a.q);
	CHECK(r != 0 || exists(st, a.q.id));
	if (on_pg) {
		CHECK_EQ_INT(r, SG_ERR_UNAVAILABLE);
		CHECK(!exists(st, a.q.id));
	}
	/* The writer goes on. */
	CHECK_EQ_INT(insert(st, &b.q, NULL, NULL), 0);
	CHECK(exists(st, b.q.id));
	sg_store_close(st);
}

struct two_step {
	const struct sg_request *q;
};

/* Inserts and approves, then fails: neither must remain. */
static int
job_insert_approve_fail(struct sg_txn *t, void *arg)
{
	struct two_step *a = arg;
	int r;

	if ((r = sg_store_insert_request(t, a->q, "idem-x", "body")) != 0 ||
	    (r = sg_store_add_approval(t, a->q->id, "alice", 1, 1, "{}")) != 0)
		return r;
	return SG_ERR_FORBIDDEN;
}

static void
test_job_error_undoes_all_its_writes(void)
{
	struct sg_store *st = open_store("jobfail2");
	char id[SG_REQUEST_ID_SIZE], body[SG_SHA256_HEX_SIZE];
	struct two_step a;
	struct sg_txn *t;
	struct req r;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	install_hooks(st);
	fill(&r, 450, "release", 1, 2);
	a.q = &r.q;
	CHECK_EQ_INT(sg_store_write(st, job_insert_approve_fail, &a),
	    SG_ERR_FORBIDDEN);
	CHECK(!exists(st, r.q.id));
	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_find_idempotent(t, "ci", "idem-x", id, body),
	    SG_ERR_NOT_FOUND);
	sg_store_read_end(t);
	CHECK_EQ_INT(atomic_load(&hc.job_abort), 1);
	/* The same id and idempotency key are free again. */
	CHECK_EQ_INT(insert(st, &r.q, "idem-x", "body"), 0);
	CHECK_EQ_INT(approve(st, r.q.id, "alice", 1, 1, "{}"), 0);
	sg_store_close(st);
}

static void
test_batch_end_failure(void)
{
	struct sg_store *st = open_store("batchfail");
	struct req blk, rq[NWORKERS], after;
	struct ins ins[NWORKERS];
	struct writer_arg wa[NWORKERS];
	char sha[SG_SHA256_HEX_SIZE], *text = NULL;
	struct sg_txn *t;
	int i, blk_r = -999, committed0;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	install_hooks(st);
	atomic_store(&hc.policy_writes, 1);
	fill(&blk, 500, "release", 1, 2);
	for (i = 0; i < NWORKERS; i++)
		fill(&rq[i], 501 + (unsigned)i, "release", 1, 2);
	/* The blocker runs in batch 0; batch 1 (the workers) fails. */
	atomic_store(&hc.fail_batch, 1 + 1);

	CHECK_EQ_INT(run_blocked_batch(st, &blk, rq, ins, wa, -1, &blk_r), 0);
	CHECK_EQ_INT(blk_r, 0);
	CHECK(exists(st, blk.q.id));
	for (i = 0; i < NWORKERS; i++) {
		CHECK_EQ_INT(wa[i].result, SG_ERR_UNAVAILABLE);
		CHECK(!exists(st, rq[i].q.id));
	}
	CHECK_EQ_INT(atomic_load(&hc.aborted), 1);
	CHECK_EQ_INT(atomic_load(&hc.committed), 1);
	CHECK_EQ_INT(atomic_load(&hc.job_abort), 0);

	/* The hook's own write went with the batch: batch 0 has its row,
	 * batch 1 has none. */
	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	snprintf(sha, sizeof(sha), "%064d", 0);
	CHECK_EQ_INT(sg_store_get_policy(t, sha, &text), 0);
	free(text);
	text = NULL;
	snprintf(sha, sizeof(sha), "%064d", 1);
	CHECK_EQ_INT(sg_store_get_policy(t, sha, &text), SG_ERR_NOT_FOUND);
	sg_store_read_end(t);

	/* The store goes on: the next batch commits. */
	committed0 = atomic_load(&hc.committed);
	fill(&after, 550, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &after.q, NULL, NULL), 0);
	CHECK(exists(st, after.q.id));
	CHECK_EQ_INT(atomic_load(&hc.committed), committed0 + 1);
	/* And the dropped requests can be written again. */
	CHECK_EQ_INT(insert(st, &rq[0].q, NULL, NULL), 0);
	CHECK(exists(st, rq[0].q.id));
	sg_store_close(st);
}

static int
job_fail(struct sg_txn *t, void *arg)
{
	(void)t;
	(void)arg;
	return SG_ERR_CONFLICT;
}

/* ---- after the commit: batch_durable, kept results, relaxed writes ---- */

static struct {
	atomic_int committed, durable, order_bad;
	atomic_int fail;            /* batch_durable fails */
	atomic_int relaxed_fail;    /* its relaxed job fails */
	atomic_int relaxed_r;
} dh;

static void
dh_committed(void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&dh.committed, 1);
}

static int
job_relaxed_row(struct sg_txn *t, void *arg)
{
	char sha[SG_SHA256_HEX_SIZE];
	int r;

	(void)arg;
	snprintf(sha, sizeof(sha), "d%063d", atomic_load(&dh.durable));
	if ((r = sg_store_put_policy(t, sha, "durable", 0)) != 0)
		return r;
	return atomic_load(&dh.relaxed_fail) ? SG_ERR_IO : 0;
}

static int
dh_durable(void *ctx, struct sg_txn *t)
{
	(void)ctx;
	/* Always after the batch's commit. */
	if (atomic_load(&dh.committed) != atomic_load(&dh.durable) + 1)
		atomic_fetch_add(&dh.order_bad, 1);
	atomic_fetch_add(&dh.durable, 1);
	atomic_store(&dh.relaxed_r, sg_store_txn_relaxed(t, job_relaxed_row,
	    NULL));
	return atomic_load(&dh.fail) ? SG_ERR_UNAVAILABLE : 0;
}

static int
job_synchronous(struct sg_txn *t, void *arg)
{
	sqlite3_stmt *s = NULL;
	int *ret = arg;

	if (sqlite3_prepare_v2(sg_db_sqlite(sg_store_txn_db(t)), "PRAGMA synchronous", -1,
	    &s, NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		return SG_ERR_IO;
	}
	*ret = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return 0;
}

static int
has_policy(struct sg_store *st, int n)
{
	struct sg_txn *t;
	char sha[SG_SHA256_HEX_SIZE], *text = NULL;
	int r;

	if (sg_store_read_begin(st, &t) != 0)
		return -1;
	snprintf(sha, sizeof(sha), "d%063d", n);
	r = sg_store_get_policy(t, sha, &text);
	free(text);
	sg_store_read_end(t);
	return r == 0;
}

static void
test_batch_durable(void)
{
	struct sg_store *st = open_store("durable");
	struct sg_store_hooks h = {
		.ctx = NULL,
		.batch_committed = dh_committed,
		.batch_durable = dh_durable,
	};
	struct req a, b, c;
	struct ins ia;
	int kept = -1, sync = -1;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	memset(&dh, 0, sizeof(dh));
	sg_store_set_hooks(st, &h);
	/* Succeeds: acknowledged; the relaxed write is there. */
	fill(&a, 700, "release", 1, 2);
	memset(&ia, 0, sizeof(ia));
	ia.q = &a.q;
	CHECK_EQ_INT(sg_store_write_kept(st, job_insert, &ia, &kept), 0);
	CHECK_EQ_INT(kept, 0);
	CHECK(exists(st, a.q.id));
	CHECK_EQ_INT(atomic_load(&dh.relaxed_r), 0);
	CHECK_EQ_INT(has_policy(st, 1), 1);
	/* The next batch is back on synchronous=FULL (2). */
	CHECK_EQ_INT(sg_store_write(st, job_synchronous, &sync), 0);
	CHECK_EQ_INT(sync, 2);
	/* Fails after the commit: kept, not acknowledged. */
	atomic_store(&dh.fail, 1);
	fill(&b, 701, "release", 1, 2);
	ia.q = &b.q;
	CHECK_EQ_INT(sg_store_write_kept(st, job_insert, &ia, &kept),
	    SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(kept, 1);
	CHECK(exists(st, b.q.id));
	/* A job that failed on its own is not kept. */
	fill(&c, 702, "release", 1, 2);
	ia.q = &c.q;
	ia.fail_with = SG_ERR_CONFLICT;
	kept = -1;
	CHECK_EQ_INT(sg_store_write_kept(st, job_insert, &ia, &kept),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(kept, 0);
	CHECK(!exists(st, c.q.id));
	/* A relaxed job that fails is rolled back alone. */
	atomic_store(&dh.fail, 0);
	atomic_store(&dh.relaxed_fail, 1);
	ia.fail_with = 0;
	CHECK_EQ_INT(sg_store_write_kept(st, job_insert, &ia, &kept), 0);
	CHECK(exists(st, c.q.id));
	CHECK_EQ_INT(atomic_load(&dh.relaxed_r), SG_ERR_IO);
	CHECK_EQ_INT(has_policy(st, atomic_load(&dh.durable)), 0);
	CHECK_EQ_INT(has_policy(st, atomic_load(&dh.durable) - 1), 1);
	CHECK_EQ_INT(sg_store_write(st, job_synchronous, &sync), 0);
	CHECK_EQ_INT(sync, 2);
	CHECK_EQ_INT(atomic_load(&dh.order_bad), 0);
	/* Not from a job: only on the writer, between batches. */
	{
		struct sg_txn *t = NULL;
		CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
		CHECK_EQ_INT(sg_store_txn_relaxed(t, job_relaxed_row, NULL),
		    SG_ERR_INVALID);
		sg_store_read_end(t);
	}
	sg_store_close(st);
}

static void
test_batch_of_failures_only(void)
{
	struct sg_store *st = open_store("allfail");

	CHECK(st != NULL);
	if (st == NULL)
		return;
	install_hooks(st);
	/* A batch whose only job failed: the job keeps its own error and
	 * the store goes on. */
	CHECK_EQ_INT(sg_store_write(st, job_fail, NULL), SG_ERR_CONFLICT);
	CHECK_EQ_INT(atomic_load(&hc.job_abort), 1);
	CHECK_EQ_INT(sg_store_write(st, job_fail, NULL), SG_ERR_CONFLICT);
	CHECK_EQ_INT(atomic_load(&hc.job_abort), 2);
	CHECK_EQ_INT(atomic_load(&hc.aborted), 0);
	{
		struct req r;
		fill(&r, 700, "release", 1, 2);
		CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
		CHECK(exists(st, r.q.id));
	}
	sg_store_close(st);
}

static void
test_reopen(void)
{
	static const uint8_t sig[] = { 1, 2, 0, 3 };
	struct sg_store *st = open_store("reopen");
	struct sg_request *got = NULL;
	struct req a, b;
	struct op o;
	int64_t seq_a = 0;
	struct sg_txn *t;
	char *text = NULL;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&a, 600, "release", 10, 20);
	CHECK_EQ_INT(insert(st, &a.q, "k", "b"), 0);
	CHECK_EQ_INT(approve(st, a.q.id, "bob", 1, 11, "{\"e\":1}"), 0);
	CHECK_EQ_INT(set_signed(st, a.q.id, sig, sizeof(sig), NULL, 0, 12), 0);
	memset(&o, 0, sizeof(o));
	o.id = a.q.id;
	o.index = 77;
	CHECK_EQ_INT(sg_store_write(st, job_log_index, &o), 0);
	o.sha = "cccc";
	o.text = "policy text";
	o.at = 5;
	CHECK_EQ_INT(sg_store_write(st, job_put_policy, &o), 0);
	sg_store_close(st);

	st = open_store("reopen");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	CHECK(got != NULL);
	if (got != NULL) {
		a.q.signature = (uint8_t *)sig;
		a.q.signature_len = sizeof(sig);
		a.q.signed_at = 12;
		a.q.log_index = 77;
		a.q.state = SG_REQ_SIGNED;
		CHECK(same_request(got, &a.q));
		CHECK(got->napprovals == 1 &&
		    strcmp(got->approvals[0].officer, "bob") == 0 &&
		    strcmp(got->approvals[0].envelope, "{\"e\":1}") == 0);
		seq_a = got->seq;
	}
	sg_request_free(got);
	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	CHECK_EQ_INT(sg_store_get_policy(t, "cccc", &text), 0);
	CHECK_STR(text, "policy text");
	free(text);
	{
		char id[SG_REQUEST_ID_SIZE], body[SG_SHA256_HEX_SIZE];
		CHECK_EQ_INT(sg_store_find_idempotent(t, "ci", "k", id, body),
		    0);
		CHECK_STR(id, a.q.id);
	}
	sg_store_read_end(t);
	/* Creation order goes on after a reopen. */
	fill(&b, 601, "release", 10, 20);
	CHECK_EQ_INT(insert(st, &b.q, NULL, NULL), 0);
	got = NULL;
	CHECK_EQ_INT(get(st, b.q.id, &got), 0);
	CHECK(got != NULL && got->seq > seq_a);
	sg_request_free(got);
	/* The state guard holds across a reopen too. */
	CHECK_EQ_INT(set_signed(st, a.q.id, sig, sizeof(sig), NULL, 0, 13),
	    SG_ERR_CONFLICT);
	sg_store_close(st);
}

/* ---- setup ---- */

static void
test_setup(void)
{
	if (sg_fx_tmpdir("store", tmpdir, sizeof(tmpdir)) != 0)
		exit(2);
}

/* A PostgreSQL database at version 5 (as the builds before the outbox
 * made it) is brought to the current version at open, its rows kept. */
static int
job_back_to_v5(struct sg_txn *t, void *arg)
{
	(void)arg;
	return sg_db_exec(sg_store_txn_db(t), "DROP TABLE notify_outbox; "
	    "DROP TABLE policy_approvals; ALTER TABLE policies DROP COLUMN "
	    "log_index, DROP COLUMN status, DROP COLUMN previous, DROP COLUMN "
	    "effective_index; DROP TABLE witness_sizes; ALTER TABLE "
	    "log_checkpoints DROP COLUMN cosignatures, DROP COLUMN cosigned; "
	    "DELETE FROM signgate_schema WHERE version >= 6");
}

static int
job_schema_version(struct sg_txn *t, void *arg)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = sg_db_prepare(sg_store_txn_db(t), "SELECT MAX(version) FROM "
	    "signgate_schema", &s)) != 0)
		return r;
	if ((r = sg_db_step(s)) == SG_DB_ROW) {
		*(int64_t *)arg = sg_db_column_int64(s, 0);
		r = 0;
	}
	sg_db_finalize(s);
	return r;
}

static void
test_pg_upgrade_v5(void)
{
	static const char *const hooks[] = { "ops" };
	struct sg_store *st = NULL;
	struct req r;
	uint64_t pending = 1, due = 1;
	int64_t v = 0;

	CHECK_EQ_INT(open_named("pgv5", NULL, 0, &st), 0);
	if (st == NULL)
		return;
	fill(&r, 990, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
	CHECK_EQ_INT(sg_store_write(st, job_back_to_v5, NULL), 0);
	CHECK_EQ_INT(sg_store_write(st, job_schema_version, &v), 0);
	CHECK_EQ_INT(v, 5);
	CHECK(sg_store_outbox_pending(st, hooks, 1, 0, &pending, &due) != 0);
	sg_store_close(st);
	st = NULL;
	CHECK_EQ_INT(open_named("pgv5", NULL, 0, &st), 0);
	if (st == NULL)
		return;
	CHECK_EQ_INT(sg_store_write(st, job_schema_version, &v), 0);
	CHECK_EQ_INT(v, SG_STORE_SCHEMA_VERSION);
	CHECK(exists(st, r.q.id));
	CHECK_EQ_INT(sg_store_outbox_pending(st, hooks, 1, 0, &pending, &due),
	    0);
	CHECK_EQ_INT(pending, 0);
	sg_store_close(st);
}

static void
test_teardown(void)
{
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

struct cancel_op {
	const char *id, *by, *reason;
	int64_t at;
};

static int
job_cancel(struct sg_txn *t, void *arg)
{
	struct cancel_op *o = arg;

	return sg_store_cancel(t, o->id, o->by, o->reason, o->at);
}

static int
cancel(struct sg_store *st, const char *id, const char *by,
    const char *reason, int64_t at)
{
	struct cancel_op o = { id, by, reason, at };

	return sg_store_write(st, job_cancel, &o);
}

/* pending -> cancelled once, with who, why and when; nothing after. */
static void
test_cancel(void)
{
	struct sg_store *st = open_store("cancel");
	struct sg_request *got = NULL, **v = NULL;
	struct req a, b;
	size_t n = 0;

	if (st == NULL) {
		CHECK(0);
		return;
	}
	fill(&a, 1, "release", 1000, 2000);
	fill(&b, 2, "release", 1001, 2001);
	CHECK_EQ_INT(insert(st, &a.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &b.q, NULL, NULL), 0);
	CHECK_EQ_INT(approve(st, a.q.id, "alice", 1, 1100, "{}"), 0);
	CHECK_EQ_INT(cancel(st, a.q.id, "ci", "wrong build", 1200), 0);
	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->state, SG_REQ_CANCELLED);
		CHECK_STR(got->cancelled_by, "ci");
		CHECK_STR(got->cancel_reason ? got->cancel_reason : "",
		    "wrong build");
		CHECK_EQ_INT(got->cancelled_at, 1200);
		CHECK_EQ_INT(got->napprovals, 1);
	}
	sg_request_free(got);
	got = NULL;
	/* Once: a second cancel, an expiry, a signature all conflict. */
	CHECK_EQ_INT(cancel(st, a.q.id, "alice", "again", 1300),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(finish(st, a.q.id, SG_REQ_EXPIRED, NULL), SG_ERR_CONFLICT);
	CHECK_EQ_INT(set_signed(st, a.q.id, a.sig, 8, NULL, 0, 1300),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	if (got != NULL)
		CHECK_STR(got->cancelled_by, "ci");
	sg_request_free(got);
	got = NULL;
	/* A finished request cannot be cancelled; unknown ids neither. */
	CHECK_EQ_INT(finish(st, b.q.id, SG_REQ_EXPIRED, NULL), 0);
	CHECK_EQ_INT(cancel(st, b.q.id, "ci", "late", 1300), SG_ERR_CONFLICT);
	CHECK_EQ_INT(cancel(st, "ffffffffffffffffffffffffffffffff", "ci",
	    "none", 1300), SG_ERR_CONFLICT);
	CHECK_EQ_INT(get(st, b.q.id, &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->state, SG_REQ_EXPIRED);
		CHECK_STR(got->cancelled_by, "");
		CHECK(got->cancel_reason == NULL);
	}
	sg_request_free(got);
	CHECK_EQ_INT(list(st, SG_REQ_CANCELLED, NULL, 0, 10, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1)
		CHECK_STR(v[0]->id, a.q.id);
	sg_request_list_free(v, n);
	sg_store_close(st);
}

/*
 * A store written before requests could be cancelled (no 'cancelled' in
 * the state CHECK, no cancel columns) is upgraded when opened: its rows,
 * approvals and sequence survive and its requests can be cancelled.
 */
static void
test_upgrade_old_store(void)
{
	static const char old_schema[] =
	    "CREATE TABLE requests ("
	    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	    " id TEXT NOT NULL UNIQUE, key TEXT NOT NULL,"
	    " digest_alg TEXT NOT NULL, digest_hex TEXT NOT NULL,"
	    " format TEXT NOT NULL, artifact TEXT NOT NULL,"
	    " requester TEXT NOT NULL, created_at INTEGER NOT NULL,"
	    " expires_at INTEGER NOT NULL, policy_name TEXT NOT NULL,"
	    " policy_version INTEGER NOT NULL, policy_sha256 TEXT NOT NULL,"
	    " spki_sha256 TEXT NOT NULL, statement TEXT NOT NULL,"
	    " state TEXT NOT NULL CHECK (state IN"
	    "  ('pending','signed','rejected','expired','failed')),"
	    " error TEXT, signature BLOB, cms BLOB, signed_at INTEGER,"
	    " log_index INTEGER, timestamp_note TEXT,"
	    " idem_key TEXT, idem_body_sha256 TEXT,"
	    " UNIQUE (requester, idem_key));"
	    "CREATE TABLE approvals ("
	    " request_id TEXT NOT NULL REFERENCES requests(id),"
	    " officer TEXT NOT NULL,"
	    " decision TEXT NOT NULL CHECK (decision IN ('approve','reject')),"
	    " at INTEGER NOT NULL, envelope TEXT NOT NULL,"
	    " ord INTEGER NOT NULL, PRIMARY KEY (request_id, officer));"
	    "INSERT INTO requests (seq, id, key, digest_alg, digest_hex, format,"
	    " artifact, requester, created_at, expires_at, policy_name,"
	    " policy_version, policy_sha256, spki_sha256, statement, state)"
	    " VALUES (41, '0000000000000007000000000000abcd', 'release',"
	    " 'sha256', 'ab', 'raw', '{}', 'ci', 1, 9999999999, 'p', 1,"
	    " 'cc', 'aa', 'st', 'pending');"
	    "INSERT INTO approvals VALUES ('0000000000000007000000000000abcd',"
	    " 'alice', 'approve', 2, '{}', 0);";
	struct sg_store *st = NULL;
	struct sg_request *got = NULL;
	struct req a;
	sqlite3 *db = NULL;
	char dir[128], path[160];

	snprintf(dir, sizeof(dir), "%s/upgrade", tmpdir);
	snprintf(path, sizeof(path), "%s/signgate.db", dir);
	CHECK(mkdir(dir, 0700) == 0);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, old_schema, NULL, NULL, NULL),
	    SQLITE_OK);
	/* The old constraint indeed refuses the new state. */
	CHECK(sqlite3_exec(db, "UPDATE requests SET state = 'cancelled'",
	    NULL, NULL, NULL) != SQLITE_OK);
	sqlite3_close(db);

	CHECK_EQ_INT(sg_store_open(dir, &st), 0);
	if (st == NULL)
		return;
	CHECK_EQ_INT(get(st, "0000000000000007000000000000abcd", &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->seq, 41);
		CHECK_EQ_INT(got->state, SG_REQ_PENDING);
		CHECK_EQ_INT(got->napprovals, 1);
	}
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(cancel(st, "0000000000000007000000000000abcd", "alice",
	    "revoked build", 3), 0);
	/* New rows go on after the old sequence. */
	fill(&a, 9, "release", 10, 20);
	CHECK_EQ_INT(insert(st, &a.q, NULL, NULL), 0);
	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	if (got != NULL)
		CHECK(got->seq > 41);
	sg_request_free(got);
	got = NULL;
	sg_store_close(st);
	/* Opened again: already current, nothing to do, data intact. */
	st = NULL;
	CHECK_EQ_INT(sg_store_open(dir, &st), 0);
	if (st == NULL)
		return;
	CHECK_EQ_INT(get(st, "0000000000000007000000000000abcd", &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->state, SG_REQ_CANCELLED);
		CHECK_STR(got->cancelled_by, "alice");
		CHECK_EQ_INT(got->napprovals, 1);
	}
	sg_request_free(got);
	sg_store_close(st);
}

/* ---- schema versions ---- */

/* PRAGMA user_version of dir/signgate.db, or -1. */
static int64_t
db_version(const char *dir)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	char path[192];
	int64_t v = -1;

	snprintf(path, sizeof(path), "%s/signgate.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	    SQLITE_OK && sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s,
	    NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* Runs sql on dir/signgate.db (created, with dir, when missing); says
 * why it failed unless quiet. */
static int
db_run(const char *dir, const char *sql, int quiet)
{
	sqlite3 *db = NULL;
	char path[192];
	int rc;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/signgate.db", dir);
	if ((rc = sqlite3_open(path, &db)) == SQLITE_OK)
		rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK && !quiet)
		fprintf(stderr, "  %s: %s\n", dir, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
db_exec(const char *dir, const char *sql)
{
	return db_run(dir, sql, 0);
}

/* The first layout's tables, as the first release created them. */
#define LAYOUT_FIRST							\
    "CREATE TABLE requests ("						\
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"				\
    " id TEXT NOT NULL UNIQUE, key TEXT NOT NULL,"			\
    " digest_alg TEXT NOT NULL, digest_hex TEXT NOT NULL,"		\
    " format TEXT NOT NULL, artifact TEXT NOT NULL,"			\
    " requester TEXT NOT NULL, created_at INTEGER NOT NULL,"		\
    " expires_at INTEGER NOT NULL, policy_name TEXT NOT NULL,"		\
    " policy_version INTEGER NOT NULL, policy_sha256 TEXT NOT NULL,"	\
    " spki_sha256 TEXT NOT NULL, statement TEXT NOT NULL,"		\
    " state TEXT NOT NULL CHECK (state IN"				\
    "  ('pending','signed','rejected','expired','failed')),"		\
    " error TEXT, signature BLOB, cms BLOB, signed_at INTEGER,"		\
    " idem_key TEXT, idem_body_sha256 TEXT,"				\
    " UNIQUE (requester, idem_key));"					\
    "CREATE INDEX requests_state ON requests(state, seq);"		\
    "CREATE INDEX requests_key ON requests(key, seq);"			\
    "CREATE TABLE approvals ("						\
    " request_id TEXT NOT NULL REFERENCES requests(id),"		\
    " officer TEXT NOT NULL,"						\
    " decision TEXT NOT NULL CHECK (decision IN ('approve','reject')),"	\
    " at INTEGER NOT NULL, envelope TEXT NOT NULL,"			\
    " ord INTEGER NOT NULL, PRIMARY KEY (request_id, officer));"	\
    "CREATE TABLE policies (sha256 TEXT PRIMARY KEY, text TEXT NOT NULL,"\
    " first_seen INTEGER NOT NULL);"

/* The layout of the build before versions: 'cancelled' and its columns. */
#define LAYOUT_CANCELLED						\
    "CREATE TABLE requests ("						\
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"				\
    " id TEXT NOT NULL UNIQUE, key TEXT NOT NULL,"			\
    " digest_alg TEXT NOT NULL, digest_hex TEXT NOT NULL,"		\
    " format TEXT NOT NULL, artifact TEXT NOT NULL,"			\
    " requester TEXT NOT NULL, created_at INTEGER NOT NULL,"		\
    " expires_at INTEGER NOT NULL, policy_name TEXT NOT NULL,"		\
    " policy_version INTEGER NOT NULL, policy_sha256 TEXT NOT NULL,"	\
    " spki_sha256 TEXT NOT NULL, statement TEXT NOT NULL,"		\
    " state TEXT NOT NULL CHECK (state IN"				\
    "  ('pending','signed','rejected','expired','failed','cancelled')),"\
    " error TEXT, signature BLOB, cms BLOB, signed_at INTEGER,"		\
    " log_index INTEGER, timestamp_note TEXT,"				\
    " idem_key TEXT, idem_body_sha256 TEXT,"				\
    " cancelled_by TEXT, cancel_reason TEXT, cancelled_at INTEGER,"	\
    " UNIQUE (requester, idem_key));"					\
    "CREATE INDEX requests_state ON requests(state, seq);"		\
    "CREATE INDEX requests_key ON requests(key, seq);"			\
    "CREATE TABLE approvals ("						\
    " request_id TEXT NOT NULL REFERENCES requests(id),"		\
    " officer TEXT NOT NULL,"						\
    " decision TEXT NOT NULL CHECK (decision IN ('approve','reject')),"	\
    " at INTEGER NOT NULL, envelope TEXT NOT NULL,"			\
    " ord INTEGER NOT NULL, PRIMARY KEY (request_id, officer));"	\
    "CREATE TABLE policies (sha256 TEXT PRIMARY KEY, text TEXT NOT NULL,"\
    " first_seen INTEGER NOT NULL);"

#define OLD_ID "0000000000000007000000000000abcd"
#define OLD_SHA "cccc000000000000000000000000000000" \
    "000000000000000000000000000007"

/* Rows every layout can hold: a pending request with a decision, a
 * rejected one, and the policy they were made under. */
#define OLD_ROWS							\
    "INSERT INTO requests (seq, id, key, digest_alg, digest_hex, format,"\
    " artifact, requester, created_at, expires_at, policy_name,"	\
    " policy_version, policy_sha256, spki_sha256, statement, state,"	\
    " idem_key, idem_body_sha256)"					\
    " VALUES (41, '" OLD_ID "', 'release', 'sha256', 'ab', 'cms',"	\
    " '{\"name\":\"a\"}', 'ci', 1, 9999999999, 'p', 1, '" OLD_SHA "',"	\
    " 'aa', 'st', 'pending', 'k1', 'bb');"				\
    "INSERT INTO requests (seq, id, key, digest_alg, digest_hex, format,"\
    " artifact, requester, created_at, expires_at, policy_name,"	\
    " policy_version, policy_sha256, spki_sha256, statement, state,"	\
    " error)"								\
    " VALUES (42, '0000000000000008000000000000abcd', 'nightly',"	\
    " 'sha256', 'cd', 'raw', '{}', 'ci', 2, 9999999999, 'p', 1,"	\
    " '" OLD_SHA "', 'aa', 'st', 'rejected', 'vetoed');"		\
    "INSERT INTO approvals VALUES ('" OLD_ID "', 'alice', 'approve', 2,"\
    " '{}', 0);"							\
    "INSERT INTO policies VALUES ('" OLD_SHA "', 'policy p', 1);"

static int
job_get_policy(struct sg_txn *t, void *arg)
{
	struct op *o = arg;
	char *text = NULL;
	int r;

	if ((r = sg_store_get_policy(t, o->sha, &text)) == 0 &&
	    strcmp(text, o->text) != 0)
		r = SG_ERR_VERIFY;
	free(text);
	return r;
}

/* What an upgraded store must still hold, and what it must now allow. */
static void
check_upgraded(const char *dir, const char *layout)
{
	struct sg_store *st = NULL;
	struct sg_request *got = NULL;
	struct op o;
	struct req a;
	size_t before = (size_t)sg_test_failed_checks;

	CHECK_EQ_INT(sg_store_open(dir, &st), 0);
	if (st == NULL)
		return;
	CHECK_EQ_INT(db_version(dir), SG_STORE_SCHEMA_VERSION);
	CHECK_EQ_INT(get(st, OLD_ID, &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->seq, 41);
		CHECK_EQ_INT(got->state, SG_REQ_PENDING);
		CHECK_EQ_INT(got->kind, SG_KIND_REQUEST);
		CHECK_EQ_INT(got->count, 0);
		CHECK_EQ_INT(got->approved_index, -1);
		CHECK_STR(got->grant_id, "");
		CHECK_EQ_INT(got->format, SG_FORMAT_CMS);
		CHECK_STR(got->artifact_json, "{\"name\":\"a\"}");
		CHECK_STR(got->policy_sha256, OLD_SHA);
		CHECK_EQ_INT(got->log_index, -1);
		CHECK(got->timestamp_note == NULL);
		CHECK_EQ_INT(got->napprovals, 1);
		if (got->napprovals == 1)
			CHECK_STR(got->approvals[0].officer, "alice");
	}
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(get(st, "0000000000000008000000000000abcd", &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_REJECTED &&
	    got->error != NULL && strcmp(got->error, "vetoed") == 0);
	sg_request_free(got);
	got = NULL;
	memset(&o, 0, sizeof(o));
	o.sha = OLD_SHA;
	o.text = "policy p";
	CHECK_EQ_INT(sg_store_write(st, job_get_policy, &o), 0);
	/* The idempotency key still finds its request. */
	{
		struct sg_txn *t = NULL;
		char id[SG_REQUEST_ID_SIZE] = "", body[SG_SHA256_HEX_SIZE] = "";

		CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
		if (t != NULL) {
			CHECK_EQ_INT(sg_store_find_idempotent(t, "ci", "k1",
			    id, body), 0);
			CHECK_STR(id, OLD_ID);
			sg_store_read_end(t);
		}
	}
	/* What the later versions added works on the old rows. */
	memset(&o, 0, sizeof(o));
	o.id = OLD_ID;
	o.index = 12;
	CHECK_EQ_INT(sg_store_write(st, job_log_index, &o), 0);
	CHECK_EQ_INT(cancel(st, OLD_ID, "alice", "revoked build", 3), 0);
	fill(&a, 9, "release", 10, 20);
	CHECK_EQ_INT(insert(st, &a.q, NULL, NULL), 0);
	CHECK_EQ_INT(get(st, a.q.id, &got), 0);
	CHECK(got != NULL && got->seq > 42);
	sg_request_free(got);
	got = NULL;
	sg_store_close(st);
	/* Opened again: current, nothing to do, everything kept. */
	st = NULL;
	CHECK_EQ_INT(sg_store_open(dir, &st), 0);
	if (st == NULL)
		return;
	CHECK_EQ_INT(db_version(dir), SG_STORE_SCHEMA_VERSION);
	CHECK_EQ_INT(get(st, OLD_ID, &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->state, SG_REQ_CANCELLED);
		CHECK_STR(got->cancelled_by, "alice");
		CHECK_EQ_INT(got->log_index, 12);
		CHECK_EQ_INT(got->napprovals, 1);
	}
	sg_request_free(got);
	sg_store_close(st);
	if ((size_t)sg_test_failed_checks != before)
		fprintf(stderr, "  (layout: %s)\n", layout);
}

/*
 * Every older database reaches the current version and keeps its data:
 * the layouts from before versions were recorded (all at version 0) and
 * databases stopped at each version since.
 */
static void
test_upgrade_every_version(void)
{
	static const struct {
		const char *name, *sql;
	} layouts[] = {
		{ "v0, first layout", LAYOUT_FIRST OLD_ROWS },
		{ "v0, with log_index", LAYOUT_FIRST
		    "ALTER TABLE requests ADD COLUMN log_index INTEGER;"
		    OLD_ROWS },
		{ "v0, with timestamp_note", LAYOUT_FIRST
		    "ALTER TABLE requests ADD COLUMN log_index INTEGER;"
		    "ALTER TABLE requests ADD COLUMN timestamp_note TEXT;"
		    OLD_ROWS },
		{ "v0, with cancelled", LAYOUT_CANCELLED OLD_ROWS },
		{ "v1", LAYOUT_FIRST OLD_ROWS "PRAGMA user_version = 1;" },
		{ "v2", LAYOUT_FIRST
		    "ALTER TABLE requests ADD COLUMN log_index INTEGER;"
		    "ALTER TABLE requests ADD COLUMN timestamp_note TEXT;"
		    OLD_ROWS "PRAGMA user_version = 2;" },
		{ "v3", LAYOUT_CANCELLED OLD_ROWS "PRAGMA user_version = 3;" },
	};
	char dir[128];
	size_t i;

	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/layout%zu", tmpdir, i);
		CHECK_EQ_INT(db_exec(dir, layouts[i].sql), 0);
		check_upgraded(dir, layouts[i].name);
	}
}

/* A new store is created at the current version, and its state column
 * takes every state there is. */
static void
test_schema_fresh(void)
{
	struct sg_store *st = open_store("fresh");
	struct sg_request *got = NULL;
	enum sg_req_state s;
	struct req r;
	char dir[128];
	unsigned n = 0;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	snprintf(dir, sizeof(dir), "%s/fresh", tmpdir);
	CHECK_EQ_INT(db_version(dir), SG_STORE_SCHEMA_VERSION);
	for (s = SG_REQ_STATE_FIRST; s <= SG_REQ_STATE_LAST; s++, n++) {
		fill(&r, 700 + n, "release", 1, 2);
		r.q.state = s;
		CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
		got = NULL;
		CHECK_EQ_INT(get(st, r.q.id, &got), 0);
		CHECK(got != NULL && got->state == s);
		sg_request_free(got);
	}
	sg_store_close(st);
}

/* A database from a newer build is refused, said so, and left as it was. */
static void
test_schema_newer_refused(void)
{
	struct sg_store *st = NULL, *sentinel = (struct sg_store *)&st;
	char dir[128], logpath[160], log[1024], sql[128];
	struct req r;
	FILE *f;
	ssize_t n;
	int fd, saved;

	st = open_store("newer");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&r, 800, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
	sg_store_close(st);
	snprintf(dir, sizeof(dir), "%s/newer", tmpdir);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    SG_STORE_SCHEMA_VERSION + 1);
	CHECK_EQ_INT(db_exec(dir, sql), 0);

	/* The refusal goes to the log (stderr): catch it. */
	snprintf(logpath, sizeof(logpath), "%s/newer.log", tmpdir);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(saved >= 0 && fd >= 0);
	if (saved < 0 || fd < 0)
		return;
	dup2(fd, STDERR_FILENO);
	close(fd);
	st = sentinel;
	CHECK_EQ_INT(sg_store_open(dir, &st), SG_ERR_CONFLICT);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	CHECK(st == sentinel);
	memset(log, 0, sizeof(log));
	if ((f = fopen(logpath, "r")) != NULL) {
		n = (ssize_t)fread(log, 1, sizeof(log) - 1, f);
		fclose(f);
		CHECK(n > 0);
	}
	snprintf(sql, sizeof(sql), "schema is version %d, newer than this "
	    "build's (%d): refusing to open it", SG_STORE_SCHEMA_VERSION + 1,
	    SG_STORE_SCHEMA_VERSION);
	CHECK(strstr(log, sql) != NULL);
	/* Untouched: still the newer version, the row still there. */
	CHECK_EQ_INT(db_version(dir), SG_STORE_SCHEMA_VERSION + 1);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
	    SG_STORE_SCHEMA_VERSION);
	CHECK_EQ_INT(db_exec(dir, sql), 0);
	st = NULL;
	CHECK_EQ_INT(sg_store_open(dir, &st), 0);
	CHECK(st != NULL && exists(st, r.q.id));
	sg_store_close(st);
}

/*
 * A step that fails leaves the database at the version before it, with
 * nothing of the step applied, and a later open goes on from there.
 */
static void
test_schema_step_atomic(void)
{
	struct sg_store *st = NULL;
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/atomic", tmpdir);
	/* Version 2, with a table in the way of step 3's rebuild. */
	CHECK_EQ_INT(db_exec(dir, LAYOUT_FIRST
	    "ALTER TABLE requests ADD COLUMN log_index INTEGER;"
	    "ALTER TABLE requests ADD COLUMN timestamp_note TEXT;"
	    OLD_ROWS "PRAGMA user_version = 2;"
	    "CREATE TABLE requests_rebuilt (x);"), 0);
	CHECK(sg_store_open(dir, &st) < 0);
	CHECK(st == NULL);
	CHECK_EQ_INT(db_version(dir), 2);
	/* Step 3's added columns were rolled back with it. */
	CHECK_EQ_INT(db_run(dir, "SELECT cancelled_by FROM requests", 1), -1);
	CHECK_EQ_INT(db_exec(dir, "DROP TABLE requests_rebuilt"), 0);
	check_upgraded(dir, "v2 after a failed step");
}

/*
 * A request holds at most SG_ENVELOPES_MAX decisions, the most its
 * signature's evidence and log entry carry: one more is refused when it
 * is posted, not dropped from the count later.
 */
static void
test_decision_limit(void)
{
	struct sg_store *st = open_store("decisions");
	struct sg_request *got = NULL;
	struct req r, other;
	char officer[32];
	int i;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&r, 900, "release", 1, 9999999999);
	fill(&other, 901, "release", 1, 9999999999);
	CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &other.q, NULL, NULL), 0);
	for (i = 0; i < SG_ENVELOPES_MAX; i++) {
		snprintf(officer, sizeof(officer), "officer%d", i);
		CHECK_EQ_INT(approve(st, r.q.id, officer, 1, i, "{}"), 0);
	}
	CHECK_EQ_INT(approve(st, r.q.id, "one-more", 1, 99, "{}"),
	    SG_ERR_TOO_LARGE);
	/* Deciding twice is still the conflict it always was. */
	CHECK_EQ_INT(approve(st, r.q.id, "officer3", 0, 99, "{}"),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(get(st, r.q.id, &got), 0);
	CHECK(got != NULL && got->napprovals == SG_ENVELOPES_MAX);
	if (got != NULL && got->napprovals == SG_ENVELOPES_MAX)
		CHECK_STR(got->approvals[SG_ENVELOPES_MAX - 1].officer,
		    "officer63");
	sg_request_free(got);
	/* The limit is per request. */
	CHECK_EQ_INT(approve(st, other.q.id, "one-more", 1, 99, "{}"), 0);
	sg_store_close(st);
}

/* States and formats are checked at the boundary, both ways. */
static void
test_states_and_formats_checked(void)
{
	struct sg_store *st = open_store("enums");
	struct sg_request **v = NULL, *got = NULL;
	struct req r;
	size_t n = 0;
	char dir[128];

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&r, 950, "release", 1, 2);
	r.q.state = (enum sg_req_state)(SG_REQ_STATE_LAST + 1);
	CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), SG_ERR_INVALID);
	fill(&r, 950, "release", 1, 2);
	r.q.format = (enum sg_format)0;
	CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), SG_ERR_INVALID);
	CHECK(!exists(st, r.q.id));
	fill(&r, 950, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &r.q, NULL, NULL), 0);
	/* finish() is for rejected, expired and failed only. */
	CHECK_EQ_INT(finish(st, r.q.id, SG_REQ_SIGNED, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(finish(st, r.q.id, SG_REQ_CANCELLED, NULL),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(finish(st, r.q.id, SG_REQ_PENDING, NULL), SG_ERR_INVALID);
	CHECK_EQ_INT(list(st, (enum sg_req_state)(SG_REQ_STATE_LAST + 1),
	    NULL, 0, 10, &v, &n), SG_ERR_INVALID);
	CHECK_EQ_INT(list(st, SG_REQ_PENDING, NULL, 0, 10, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	sg_request_list_free(v, n);
	sg_store_close(st);
	/* A row with a format that is not one is refused on the way out. */
	snprintf(dir, sizeof(dir), "%s/enums", tmpdir);
	CHECK_EQ_INT(db_exec(dir, "UPDATE requests SET format = 'pem'"), 0);
	st = open_store("enums");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK_EQ_INT(list(st, SG_REQ_NONE, NULL, 0, 10, &v, &n), SG_ERR_IO);
	sg_store_close(st);
	/* So is a state that is not one (written past the schema's CHECK):
	 * never read as some default. */
	CHECK_EQ_INT(db_exec(dir, "UPDATE requests SET format = 'raw'"), 0);
	CHECK_EQ_INT(db_exec(dir, "PRAGMA ignore_check_constraints = ON; "
	    "UPDATE requests SET state = 'approved'"), 0);
	st = open_store("enums");
	CHECK(st != NULL);
	if (st == NULL)
		return;
	CHECK_EQ_INT(get(st, r.q.id, &got), SG_ERR_IO);
	CHECK(got == NULL);
	CHECK_EQ_INT(list(st, SG_REQ_NONE, NULL, 0, 10, &v, &n), SG_ERR_IO);
	sg_store_close(st);
}

/* ---- releases and grants ---- */

/* A pending release (count lines) or grant (count signatures). */
static void
fill_kind(struct req *b, unsigned n, enum sg_kind kind, uint64_t count,
    int64_t expires)
{
	fill(b, n, "release", 1000, expires);
	b->q.kind = kind;
	b->q.count = count;
	b->q.digest_alg[0] = b->q.digest_hex[0] = '\0';
}

struct rel_op {
	const char *id;
	const char *const *lines;
	size_t n;
	uint64_t position, index, seq;
	int64_t at;
	const char *by, *reason;
};

static int
job_put_lines(struct sg_txn *t, void *arg)
{
	struct rel_op *o = arg;

	return sg_store_release_put_lines(t, o->id, o->lines, o->n);
}

static int
job_item_signed(struct sg_txn *t, void *arg)
{
	static const uint8_t sig[] = { 0x30, 0x02, 0x01, 0x07 };
	struct rel_op *o = arg;

	return sg_store_release_item_signed(t, o->id, o->position, sig,
	    sizeof(sig), NULL, 0, o->index, o->at);
}

static int
job_activate(struct sg_txn *t, void *arg)
{
	struct rel_op *o = arg;

	return sg_store_activate(t, o->id, o->index);
}

static int
job_release_done(struct sg_txn *t, void *arg)
{
	struct rel_op *o = arg;

	return sg_store_release_done(t, o->id, o->at);
}

static int
job_take(struct sg_txn *t, void *arg)
{
	struct rel_op *o = arg;

	return sg_store_grant_take(t, o->id, o->at, &o->seq);
}

static int
job_revoke(struct sg_txn *t, void *arg)
{
	struct rel_op *o = arg;

	return sg_store_revoke(t, o->id, o->by, o->reason, o->at);
}

static int
rel_write(struct sg_store *st, sg_store_job_fn fn, const char *id,
    uint64_t position, uint64_t index, int64_t at)
{
	struct rel_op o = { .id = id, .position = position, .index = index,
	    .at = at };

	if (fn == job_item_signed)
		claim(st, id);
	return sg_store_write(st, fn, &o);
}

/* Takes the grant's next number at `now`; *seq gets it. */
static int
take(struct sg_store *st, const char *id, int64_t now, uint64_t *seq)
{
	struct rel_op o = { .id = id, .at = now };
	int r;

	*seq = 0;
	if ((r = sg_store_write(st, job_take, &o)) == 0)
		*seq = o.seq;
	return r;
}

static int
items(struct sg_store *st, const char *id, uint64_t after, size_t max,
    int unsigned_only, struct sg_release_item **ret, size_t *ret_n)
{
	struct sg_txn *t = NULL;
	int r;

	*ret = NULL;
	*ret_n = 0;
	if ((r = sg_store_read_begin(st, &t)) != 0)
		return r;
	r = sg_store_release_items(t, id, after, max, unsigned_only, ret,
	    ret_n);
	sg_store_read_end(t);
	return r;
}

/* The positions of items as "0,2,4". */
static const char *
positions(const struct sg_release_item *v, size_t n)
{
	static char buf[128];
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < n && len < sizeof(buf) - 24; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%llu",
		    i > 0 ? "," : "", (unsigned long long)v[i].position);
	return buf;
}

static const char *const rel_lines[] = {
	"sha256:" "00000000000000000000000000000000"
	    "00000000000000000000000000000001 raw a.bin",
	"sha256:" "00000000000000000000000000000000"
	    "00000000000000000000000000000002 raw b.bin 1.0",
	"sha256:" "00000000000000000000000000000000"
	    "00000000000000000000000000000003 raw c.bin",
	"sha256:" "00000000000000000000000000000000"
	    "00000000000000000000000000000004 raw d.bin",
	"sha256:" "00000000000000000000000000000000"
	    "00000000000000000000000000000005 raw e.bin",
};
#define NREL_LINES (sizeof(rel_lines) / sizeof(rel_lines[0]))

/* A pending release with rel_lines, stored in st. */
static int
put_release(struct sg_store *st, struct req *b, unsigned n)
{
	struct rel_op o;
	int r;

	fill_kind(b, n, SG_KIND_RELEASE, NREL_LINES, 5000);
	if ((r = insert(st, &b->q, NULL, NULL)) != 0)
		return r;
	memset(&o, 0, sizeof(o));
	o.id = b->q.id;
	o.lines = rel_lines;
	o.n = NREL_LINES;
	return sg_store_write(st, job_put_lines, &o);
}

/* Lines come back in position order, paged by after/limit; a signature
 * is recorded once and unsigned_only skips the signed ones. */
static void
test_release_lines(void)
{
	struct sg_store *st = open_store("rel-lines");
	struct sg_release_item *v = NULL;
	struct sg_request *got = NULL;
	struct req b;
	size_t n = 0;

	if (st == NULL || put_release(st, &b, 700) != 0) {
		CHECK(0);
		sg_store_close(st);
		return;
	}
	CHECK_EQ_INT(items(st, b.q.id, 0, 10, 0, &v, &n), 0);
	CHECK_EQ_INT(n, NREL_LINES);
	CHECK_STR(positions(v, n), "0,1,2,3,4");
	if (n == NREL_LINES) {
		CHECK_STR(v[1].line, rel_lines[1]);
		CHECK_STR(v[4].line, rel_lines[4]);
		CHECK(v[2].signature == NULL && v[2].log_index == -1);
	}
	sg_release_items_free(v, n);
	CHECK_EQ_INT(items(st, b.q.id, 2, 2, 0, &v, &n), 0);
	CHECK_STR(positions(v, n), "2,3");
	sg_release_items_free(v, n);
	CHECK_EQ_INT(items(st, b.q.id, 4, 100, 0, &v, &n), 0);
	CHECK_STR(positions(v, n), "4");
	sg_release_items_free(v, n);
	CHECK_EQ_INT(items(st, b.q.id, 5, 100, 0, &v, &n), 0);
	CHECK_EQ_INT(n, 0);
	sg_release_items_free(v, n);
	/* Signed once: the second signature of a position conflicts. */
	CHECK_EQ_INT(rel_write(st, job_item_signed, b.q.id, 1, 31, 1200), 0);
	CHECK_EQ_INT(rel_write(st, job_item_signed, b.q.id, 3, 33, 1201), 0);
	CHECK_EQ_INT(rel_write(st, job_item_signed, b.q.id, 1, 99, 1300),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(rel_write(st, job_item_signed, b.q.id, 9, 99, 1300),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(items(st, b.q.id, 0, 10, 1, &v, &n), 0);
	CHECK_STR(positions(v, n), "0,2,4");
	sg_release_items_free(v, n);
	CHECK_EQ_INT(items(st, b.q.id, 1, 1, 0, &v, &n), 0);
	if (n == 1) {
		CHECK_EQ_INT(v[0].log_index, 31);
		CHECK_EQ_INT(v[0].signed_at, 1200);
		CHECK(v[0].signature_len == 4 && v[0].signature[3] == 7);
	}
	CHECK_EQ_INT(n, 1);
	sg_release_items_free(v, n);
	CHECK_EQ_INT(get(st, b.q.id, &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->kind, SG_KIND_RELEASE);
		CHECK_EQ_INT(got->count, NREL_LINES);
		CHECK_EQ_INT(got->signed_count, 2);
	}
	sg_request_free(got);
	sg_store_close(st);
}

/* Activation: once, from pending, for releases and grants only. */
static void
test_activate(void)
{
	struct sg_store *st = open_store("activate");
	struct sg_request *got = NULL;
	struct req q, g, done;

	if (st == NULL) {
		CHECK(0);
		return;
	}
	fill(&q, 710, "release", 1000, 5000);
	fill_kind(&g, 711, SG_KIND_GRANT, 3, 5000);
	fill_kind(&done, 712, SG_KIND_GRANT, 3, 5000);
	CHECK_EQ_INT(insert(st, &q.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &g.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(st, &done.q, NULL, NULL), 0);
	CHECK_EQ_INT(rel_write(st, job_activate, q.q.id, 0, 4, 0),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(finish(st, done.q.id, SG_REQ_REJECTED, NULL), 0);
	CHECK_EQ_INT(rel_write(st, job_activate, done.q.id, 0, 4, 0),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(rel_write(st, job_activate, g.q.id, 0, 17, 0), 0);
	CHECK_EQ_INT(rel_write(st, job_activate, g.q.id, 0, 18, 0),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(get(st, g.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_ACTIVE &&
	    got->approved_index == 17 && got->used == 0);
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(get(st, q.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_PENDING &&
	    got->approved_index == -1 && got->kind == SG_KIND_REQUEST);
	sg_request_free(got);
	sg_store_close(st);
}

/* Ids of active releases (at most 8). */
static size_t
active_releases(struct sg_store *st, char (*ids)[SG_REQUEST_ID_SIZE])
{
	struct sg_txn *t = NULL;
	size_t n = 0;

	if (sg_store_read_begin(st, &t) != 0)
		return (size_t)-1;
	if (sg_store_active_releases(t, 8, ids, &n) != 0)
		n = (size_t)-1;
	sg_store_read_end(t);
	return n;
}

/* A release ends signed only from active and only once every artifact
 * is signed; only active releases are listed, oldest first. */
static void
test_release_done(void)
{
	struct sg_store *st = open_store("rel-done");
	char ids[8][SG_REQUEST_ID_SIZE];
	struct sg_request *got = NULL;
	struct req a, b, g;
	size_t i;

	if (st == NULL || put_release(st, &a, 720) != 0 ||
	    put_release(st, &b, 721) != 0) {
		CHECK(0);
		sg_store_close(st);
		return;
	}
	fill_kind(&g, 722, SG_KIND_GRANT, 2, 5000);
	CHECK_EQ_INT(insert(st, &g.q, NULL, NULL), 0);
	CHECK_EQ_INT(rel_write(st, job_activate, g.q.id, 0, 1, 0), 0);
	CHECK_EQ_INT(active_releases(st, ids), 0);
	/* b: every artifact signed, but still pending. */
	for (i = 0; i < NREL_LINES; i++)
		CHECK_EQ_INT(rel_write(st, job_item_signed, b.q.id, i, 40 + i,
		    1100), 0);
	CHECK_EQ_INT(rel_write(st, job_release_done, b.q.id, 0, 0, 1200),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(rel_write(st, job_activate, b.q.id, 0, 2, 0), 0);
	CHECK_EQ_INT(rel_write(st, job_activate, a.q.id, 0, 3, 0), 0);
	CHECK_EQ_INT(active_releases(st, ids), 2);
	CHECK_STR(ids[0], a.q.id);
	CHECK_STR(ids[1], b.q.id);
	/* a: active, one artifact short. */
	for (i = 0; i + 1 < NREL_LINES; i++)
		CHECK_EQ_INT(rel_write(st, job_item_signed, a.q.id, i, 50 + i,
		    1100), 0);
	CHECK_EQ_INT(rel_write(st, job_release_done, a.q.id, 0, 0, 1200),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(rel_write(st, job_release_done, b.q.id, 0, 0, 1201), 0);
	CHECK_EQ_INT(rel_write(st, job_release_done, b.q.id, 0, 0, 1202),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(active_releases(st, ids), 1);
	CHECK_STR(ids[0], a.q.id);
	CHECK_EQ_INT(get(st, b.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_SIGNED &&
	    got->signed_at == 1201 && got->signed_count == NREL_LINES);
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(rel_write(st, job_item_signed, a.q.id, 4, 54, 1300), 0);
	CHECK_EQ_INT(rel_write(st, job_release_done, a.q.id, 0, 0, 1301), 0);
	CHECK_EQ_INT(active_releases(st, ids), 0);
	/* A grant is never "done". */
	CHECK_EQ_INT(rel_write(st, job_release_done, g.q.id, 0, 0, 1302),
	    SG_ERR_CONFLICT);
	sg_store_close(st);
}

/* An active grant of count at expires, in st; its id in b. */
static int
put_grant(struct sg_store *st, struct req *b, unsigned n, uint64_t count,
    int64_t expires, int activate)
{
	int r;

	fill_kind(b, n, SG_KIND_GRANT, count, expires);
	if ((r = insert(st, &b->q, NULL, NULL)) != 0 || !activate)
		return r;
	return rel_write(st, job_activate, b->q.id, 0, 9, 0);
}

/* Numbers 1..N, then none; not while pending, nor at or after the end;
 * the count survives a reopen. */
static void
test_grant_take(void)
{
	struct sg_store *st = open_store("take");
	struct sg_request *got = NULL;
	struct req g, p, e;
	uint64_t seq, i;

	if (st == NULL || put_grant(st, &g, 730, 3, 5000, 1) != 0 ||
	    put_grant(st, &p, 731, 3, 5000, 0) != 0 ||
	    put_grant(st, &e, 732, 3, 2000, 1) != 0) {
		CHECK(0);
		sg_store_close(st);
		return;
	}
	for (i = 1; i <= 2; i++) {
		CHECK_EQ_INT(take(st, g.q.id, 1500, &seq), 0);
		CHECK_EQ_INT(seq, i);
	}
	CHECK_EQ_INT(take(st, p.q.id, 1500, &seq), SG_ERR_CONFLICT);
	CHECK_EQ_INT(take(st, e.q.id, 2000, &seq), SG_ERR_CONFLICT);
	CHECK_EQ_INT(take(st, e.q.id, 2500, &seq), SG_ERR_CONFLICT);
	CHECK_EQ_INT(take(st, e.q.id, 1999, &seq), 0);
	CHECK_EQ_INT(seq, 1);
	CHECK_EQ_INT(take(st, "ffffffffffffffffffffffffffffffff", 1500, &seq),
	    SG_ERR_CONFLICT);
	sg_store_close(st);
	/* Reopened: the third number, then none. */
	if ((st = open_store("take")) == NULL) {
		CHECK(0);
		return;
	}
	CHECK_EQ_INT(take(st, g.q.id, 1500, &seq), 0);
	CHECK_EQ_INT(seq, 3);
	CHECK_EQ_INT(take(st, g.q.id, 1500, &seq), SG_ERR_CONFLICT);
	CHECK_EQ_INT(seq, 0);
	CHECK_EQ_INT(get(st, g.q.id, &got), 0);
	CHECK(got != NULL && got->used == 3 && got->count == 3 &&
	    got->state == SG_REQ_ACTIVE);
	sg_request_free(got);
	sg_store_close(st);
}

#define TAKERS 8
#define TAKE_COUNT 40

struct taker {
	pthread_t th;
	struct sg_store *st;
	const char *id;
	uint64_t got[TAKE_COUNT + 1];
	size_t n;
	int other;                     /* results other than 0, CONFLICT */
};

/* Takes numbers until the grant refuses, a few tries past it. */
static void *
taker_main(void *p)
{
	struct taker *tk = p;
	uint64_t seq;
	int r, refusals = 0;

	while (refusals < 3) {
		r = take(tk->st, tk->id, 1500, &seq);
		if (r == SG_ERR_CONFLICT)
			refusals++;
		else if (r != 0)
			tk->other++;
		else if (tk->n <= TAKE_COUNT)
			tk->got[tk->n++] = seq;
	}
	return NULL;
}

/* However many writers race for a grant, each number 1..N is taken
 * exactly once and N + 1 never. */
static void
test_grant_take_concurrent(void)
{
	struct sg_store *st = open_store("take-race");
	static struct taker tk[TAKERS];
	unsigned seen[TAKE_COUNT + 2];
	struct sg_request *got = NULL;
	struct req g;
	size_t i, k, total = 0;

	if (st == NULL || put_grant(st, &g, 740, TAKE_COUNT, 5000, 1) != 0) {
		CHECK(0);
		sg_store_close(st);
		return;
	}
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < TAKERS; i++) {
		memset(&tk[i], 0, sizeof(tk[i]));
		tk[i].st = st;
		tk[i].id = g.q.id;
		CHECK_EQ_INT(pthread_create(&tk[i].th, NULL, taker_main,
		    &tk[i]), 0);
	}
	for (i = 0; i < TAKERS; i++) {
		pthread_join(tk[i].th, NULL);
		CHECK_EQ_INT(tk[i].other, 0);
		for (k = 0; k < tk[i].n; k++, total++) {
			CHECK(tk[i].got[k] >= 1 && tk[i].got[k] <= TAKE_COUNT);
			if (tk[i].got[k] <= TAKE_COUNT + 1)
				seen[tk[i].got[k]]++;
		}
	}
	CHECK_EQ_INT(total, TAKE_COUNT);
	for (i = 1; i <= TAKE_COUNT; i++)
		CHECK_EQ_INT(seen[i], 1);
	CHECK_EQ_INT(get(st, g.q.id, &got), 0);
	CHECK(got != NULL && got->used == TAKE_COUNT);
	sg_request_free(got);
	sg_store_close(st);
}

/* Revocation: an active grant only, once; nothing is taken after it. */
static void
test_revoke(void)
{
	struct sg_store *st = open_store("revoke");
	struct sg_request *got = NULL;
	struct rel_op o;
	struct req g, p, rel;
	uint64_t seq;

	if (st == NULL || put_grant(st, &g, 750, 5, 5000, 1) != 0 ||
	    put_grant(st, &p, 751, 5, 5000, 0) != 0 ||
	    put_release(st, &rel, 752) != 0) {
		CHECK(0);
		sg_store_close(st);
		return;
	}
	CHECK_EQ_INT(rel_write(st, job_activate, rel.q.id, 0, 3, 0), 0);
	memset(&o, 0, sizeof(o));
	o.by = "alice";
	o.reason = "key compromised";
	o.at = 1600;
	o.id = p.q.id;
	CHECK_EQ_INT(sg_store_write(st, job_revoke, &o), SG_ERR_CONFLICT);
	o.id = rel.q.id;
	CHECK_EQ_INT(sg_store_write(st, job_revoke, &o), SG_ERR_CONFLICT);
	CHECK_EQ_INT(take(st, g.q.id, 1500, &seq), 0);
	o.id = g.q.id;
	CHECK_EQ_INT(sg_store_write(st, job_revoke, &o), 0);
	o.by = "bob";
	CHECK_EQ_INT(sg_store_write(st, job_revoke, &o), SG_ERR_CONFLICT);
	CHECK_EQ_INT(take(st, g.q.id, 1500, &seq), SG_ERR_CONFLICT);
	CHECK_EQ_INT(get(st, g.q.id, &got), 0);
	if (got != NULL) {
		CHECK_EQ_INT(got->state, SG_REQ_REVOKED);
		CHECK_STR(got->cancelled_by, "alice");
		CHECK_STR(got->cancel_reason ? got->cancel_reason : "",
		    "key compromised");
		CHECK_EQ_INT(got->cancelled_at, 1600);
		CHECK_EQ_INT(got->used, 1);
	}
	sg_request_free(got);
	got = NULL;
	CHECK_EQ_INT(get(st, p.q.id, &got), 0);
	CHECK(got != NULL && got->state == SG_REQ_PENDING);
	sg_request_free(got);
	sg_store_close(st);
}

/* Due for expiry: pending objects and active grants past their end, not
 * active releases (those are failed by their own thread). */
static void
test_due_expiry_kinds(void)
{
	struct sg_store *st = open_store("due-kinds");
	char got[8][SG_REQUEST_ID_SIZE];
	struct sg_txn *t = NULL;
	struct req g, rel, pg;
	size_t n = 0;

	if (st == NULL || put_grant(st, &g, 760, 5, 3000, 1) != 0 ||
	    put_release(st, &rel, 761) != 0 ||
	    put_grant(st, &pg, 762, 5, 3500, 0) != 0) {
		CHECK(0);
		sg_store_close(st);
		return;
	}
	CHECK_EQ_INT(rel_write(st, job_activate, rel.q.id, 0, 3, 0), 0);
	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	if (t == NULL) {
		sg_store_close(st);
		return;
	}
	CHECK_EQ_INT(sg_store_due_expiry(t, 2999, 8, got, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(sg_store_due_expiry(t, 3000, 8, got, &n), 0);
	CHECK(n == 1 && strcmp(got[0], g.q.id) == 0);
	/* The release expires at 5000 too: never listed while active. */
	CHECK_EQ_INT(sg_store_due_expiry(t, 9000, 8, got, &n), 0);
	CHECK_EQ_INT(n, 2);
	CHECK(n == 2 && strcmp(got[0], g.q.id) == 0 &&
	    strcmp(got[1], pg.q.id) == 0);
	sg_store_read_end(t);
	/* An expired grant (active -> expired) is listed no more. */
	CHECK_EQ_INT(finish(st, g.q.id, SG_REQ_EXPIRED, NULL), 0);
	CHECK_EQ_INT(sg_store_read_begin(st, &t), 0);
	if (t != NULL) {
		CHECK_EQ_INT(sg_store_due_expiry(t, 9000, 8, got, &n), 0);
		CHECK(n == 1 && strcmp(got[0], pg.q.id) == 0);
		sg_store_read_end(t);
	}
	sg_store_close(st);
}

/* ---- gateways sharing one database ---- */

/*
 * Claims: one gateway at a time; its own claim extended; a signature
 * recorded only by the gateway that holds the claim (the fence); a claim
 * run out taken over, after which the first gateway records nothing.  On
 * SQLite the two stores share one file (claims as if shared), on
 * PostgreSQL one database.
 */
static void
test_claims(void)
{
	static const uint8_t sig[] = { 9, 8, 7 };
	struct sg_store *a = NULL, *b = NULL;
	struct req r1, r2;
	time_t t0;
	int got = -1;

	/* Claims that outlast the checks of a holder, however busy the
	 * machine; the ones that run out are the second pair's, below. */
	CHECK_EQ_INT(open_named("claims", "gw-a", 60, &a), 0);
	CHECK_EQ_INT(open_named("claims", "gw-b", 60, &b), 0);
	if (a == NULL || b == NULL)
		goto out;
	CHECK(sg_store_shared(a) && sg_store_shared(b));
	CHECK_STR(sg_store_node(a), "gw-a");
	fill(&r1, 900, "release", 1, 2);
	fill(&r2, 901, "release", 1, 2);
	r1.q.state = r2.q.state = SG_REQ_PENDING;
	CHECK_EQ_INT(insert(a, &r1.q, NULL, NULL), 0);
	CHECK_EQ_INT(insert(b, &r2.q, NULL, NULL), 0);

	/* One holder; its own claim again is an extension. */
	CHECK_EQ_INT(sg_store_claim(a, r1.q.id, &got), 0);
	CHECK_EQ_INT(got, 1);
	CHECK_EQ_INT(sg_store_claim(b, r1.q.id, &got), 0);
	CHECK_EQ_INT(got, 0);
	CHECK_EQ_INT(sg_store_claim(a, r1.q.id, &got), 0);
	CHECK_EQ_INT(got, 1);
	/* The fence: b may not record a signature a is making. */
	CHECK_EQ_INT(set_signed_raw(b, r1.q.id, sig, sizeof(sig), NULL, 0, 5),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(set_signed_raw(a, r1.q.id, sig, sizeof(sig), NULL, 0, 5),
	    0);
	/* Nor anyone without a claim. */
	CHECK_EQ_INT(set_signed_raw(a, r2.q.id, sig, sizeof(sig), NULL, 0, 5),
	    SG_ERR_CONFLICT);
	sg_store_close(a);
	sg_store_close(b);
	a = b = NULL;

	/* Claims of one second: a claims r2 and goes quiet; once its claim
	 * has run out, b takes it over, and a's late signature is
	 * refused. */
	CHECK_EQ_INT(open_named("claims", "gw-a", 1, &a), 0);
	CHECK_EQ_INT(open_named("claims", "gw-b", 1, &b), 0);
	if (a == NULL || b == NULL)
		goto out;
	CHECK_EQ_INT(sg_store_claim(a, r2.q.id, &got), 0);
	CHECK_EQ_INT(got, 1);
	t0 = time(NULL);
	while (time(NULL) <= t0 + 1)
		sleep_ms(50);
	CHECK_EQ_INT(sg_store_claim(b, r2.q.id, &got), 0);
	CHECK_EQ_INT(got, 1);
	CHECK_EQ_INT(set_signed_raw(a, r2.q.id, sig, sizeof(sig), NULL, 0, 6),
	    SG_ERR_CONFLICT);
	CHECK_EQ_INT(set_signed_raw(b, r2.q.id, sig, sizeof(sig), NULL, 0, 6), 0);
	/* Released, a claim is free at once. */
	sg_store_unclaim(b, r2.q.id);
	CHECK_EQ_INT(sg_store_claim(a, r2.q.id, &got), 0);
	CHECK_EQ_INT(got, 1);
out:
	sg_store_close(a);
	sg_store_close(b);
}

/* ---- the notification outbox (src/store_outbox.c) ---- */

struct outbox_rec {
	int calls;
	int fail;                  /* the hook's answer */
};

static int
outbox_hook(void *ctx, struct sg_txn *t, const struct sg_store_change *c)
{
	struct outbox_rec *rec = ctx;
	char id[SG_OUTBOX_ID_SIZE], body[128];

	rec->calls++;
	if (rec->fail)
		return rec->fail;
	snprintf(id, sizeof(id), "%032x", rec->calls);
	snprintf(body, sizeof(body), "{\"what\":%d,\"id\":\"%s\"}",
	    (int)c->what, c->id);
	return sg_store_outbox_put(t, id, "ops", c->what == SG_CHANGE_CREATED ?
	    "request.created" : "request.approval", c->id, body,
	    (int64_t)time(NULL));
}

static int
outbox_count(struct sg_store *st, uint64_t *ret_due)
{
	static const char *const hooks[] = { "ops" };
	uint64_t pending = 0, due = 0;

	if (sg_store_outbox_pending(st, hooks, 1, (int64_t)time(NULL),
	    &pending, &due) != 0)
		return -1;
	if (ret_due != NULL)
		*ret_due = due;
	return (int)pending;
}

/* Events commit and roll back with their change; two gateways never hold
 * one delivery at once; outcomes and pruning. */
static void
test_outbox(void)
{
	static const char *const hooks[] = { "ops" };
	struct sg_store *a = NULL, *b = NULL;
	struct sg_outbox_row *ra = NULL, *rb = NULL, *rc = NULL;
	struct outbox_rec rec = { 0, 0 };
	struct req r1, r2, r3;
	struct ins bad;
	size_t na = 0, nb = 0, nc = 0;
	uint64_t due = 0, dropped = 0;
	int64_t now, seq, next_at;
	int ok;

	CHECK_EQ_INT(open_named("outbox", "gw-a", 60, &a), 0);
	CHECK_EQ_INT(open_named("outbox", "gw-b", 60, &b), 0);
	if (a == NULL || b == NULL)
		goto out;
	sg_store_set_change_hook(a, outbox_hook, &rec);
	fill(&r1, 950, "release", 1, 2);
	fill(&r2, 951, "release", 1, 2);
	fill(&r3, 952, "release", 1, 2);
	r1.q.state = r2.q.state = r3.q.state = SG_REQ_PENDING;

	/* With its change. */
	CHECK_EQ_INT(insert(a, &r1.q, NULL, NULL), 0);
	CHECK_EQ_INT(outbox_count(a, &due), 1);
	CHECK_EQ_INT(due, 1);
	/* A job that fails after the change: neither stays. */
	memset(&bad, 0, sizeof(bad));
	bad.q = &r2.q;
	bad.fail_with = SG_ERR_CONFLICT;
	CHECK_EQ_INT(sg_store_write(a, job_insert, &bad), SG_ERR_CONFLICT);
	CHECK(!exists(a, r2.q.id));
	CHECK_EQ_INT(outbox_count(a, NULL), 1);
	/* A hook that fails fails the change. */
	rec.fail = SG_ERR_IO;
	CHECK(insert(a, &r2.q, NULL, NULL) != 0);
	CHECK(!exists(a, r2.q.id));
	rec.fail = 0;
	CHECK_EQ_INT(approve(a, r1.q.id, "alice", 1, 3, "{}"), 0);
	CHECK_EQ_INT(outbox_count(b, NULL), 2);

	/* Two gateways claim: each gets its own rows, none twice. */
	now = (int64_t)time(NULL);
	CHECK_EQ_INT(sg_store_outbox_claim(a, hooks, 1, now, 60, 1, &ra, &na),
	    0);
	CHECK_EQ_INT(sg_store_outbox_claim(b, hooks, 1, now, 60, 10, &rb,
	    &nb), 0);
	CHECK_EQ_INT(na, 1);
	CHECK_EQ_INT(nb, 1);
	if (na != 1 || nb != 1)
		goto out;
	CHECK(ra[0].seq != rb[0].seq);
	CHECK(strcmp(ra[0].event_id, rb[0].event_id) != 0);
	CHECK(strstr(ra[0].body, r1.q.id) != NULL);
	CHECK_STR(ra[0].webhook, "ops");
	CHECK_EQ_INT(ra[0].attempts, 0);
	CHECK_EQ_INT(sg_store_outbox_claim(a, hooks, 1, now, 60, 10, &rc,
	    &nc), 0);
	CHECK_EQ_INT(nc, 0);
	CHECK_EQ_INT(outbox_count(a, &due), 2);
	CHECK_EQ_INT(due, 0);

	/* a delivered its row; b failed and retries in 100 s. */
	ok = 1;
	CHECK_EQ_INT(sg_store_outbox_done(a, &ra[0].seq, &ok, &now, NULL, 1,
	    now), 0);
	ok = 0;
	next_at = now + 100;
	CHECK_EQ_INT(sg_store_outbox_done(b, &rb[0].seq, &ok, &next_at, NULL,
	    1, now), 0);
	CHECK_EQ_INT(outbox_count(a, &due), 1);
	CHECK_EQ_INT(due, 0);
	/* A failure reported by a gateway that no longer holds the row
	 * changes nothing. */
	seq = rb[0].seq;
	next_at = now;
	CHECK_EQ_INT(sg_store_outbox_done(a, &seq, &ok, &next_at, NULL, 1,
	    now), 0);
	CHECK_EQ_INT(outbox_count(a, &due), 1);
	CHECK_EQ_INT(due, 0);

	/* A lease given up (a restart) is free at once for the other. */
	CHECK_EQ_INT(insert(a, &r3.q, NULL, NULL), 0);
	sg_outbox_rows_free(ra, na);
	ra = NULL;
	CHECK_EQ_INT(sg_store_outbox_claim(a, hooks, 1, now, 60, 10, &ra,
	    &na), 0);
	CHECK_EQ_INT(na, 1);
	sg_outbox_rows_free(rc, nc);
	rc = NULL;
	CHECK_EQ_INT(sg_store_outbox_claim(b, hooks, 1, now, 60, 10, &rc,
	    &nc), 0);
	CHECK_EQ_INT(nc, 0);
	CHECK_EQ_INT(sg_store_outbox_release(a), 0);
	CHECK_EQ_INT(sg_store_outbox_claim(b, hooks, 1, now, 60, 10, &rc,
	    &nc), 0);
	CHECK_EQ_INT(nc, 1);
	if (na == 1 && nc == 1)
		CHECK_EQ_INT(rc[0].seq, ra[0].seq);

	/* Pruning: delivered rows first, undelivered ones at their age. */
	CHECK_EQ_INT(sg_store_outbox_prune(a, now + 1, 0, &dropped), 0);
	CHECK_EQ_INT(dropped, 0);
	CHECK_EQ_INT(outbox_count(a, NULL), 2);
	CHECK_EQ_INT(sg_store_outbox_prune(a, now + 1, now + 100, &dropped),
	    0);
	CHECK_EQ_INT(dropped, 2);
	CHECK_EQ_INT(outbox_count(a, NULL), 0);
out:
	sg_outbox_rows_free(ra, na);
	sg_outbox_rows_free(rb, nb);
	sg_outbox_rows_free(rc, nc);
	sg_store_close(a);
	sg_store_close(b);
}

struct order {
	struct sg_store *other;        /* its writer is to wait for ours */
	struct req x, y;
	atomic_int started, released;
	int64_t seen;                  /* rows the second job saw */
	int r;
};

static int
count_rows(struct sg_db *db, const char *sql, int64_t *ret)
{
	struct sg_db_stmt *s = NULL;
	int r;

	if ((r = sg_db_prepare(db, sql, &s)) != 0)
		return r;
	r = sg_db_step(s) == SG_DB_ROW ? 0 : SG_ERR_IO;
	*ret = sg_db_column_int64(s, 0);
	sg_db_finalize(s);
	return r;
}

/* Holds gateway a's batch (and so the database's write lock) until b's
 * writer is seen waiting for it, then inserts x. */
static int
job_hold_then_insert(struct sg_txn *t, void *arg)
{
	struct order *o = arg;
	struct sg_txn *rt = NULL;
	int64_t waiting = 0;
	int i;

	atomic_store(&o->started, 1);
	for (i = 0; i < 10000 && waiting == 0; i++) {
		if (sg_store_read_begin(o->other, &rt) != 0)
			break;
		(void)count_rows(sg_store_txn_db(rt), "SELECT COUNT(*) FROM "
		    "pg_locks WHERE NOT granted", &waiting);
		sg_store_read_end(rt);
		if (waiting == 0)
			sleep_ms(1);
	}
	CHECK(waiting > 0);
	return sg_store_insert_request(t, &o->x.q, NULL, NULL);
}

static int
job_count_then_insert(struct sg_txn *t, void *arg)
{
	struct order *o = arg;
	int r;

	if ((r = count_rows(sg_store_txn_db(t), "SELECT COUNT(*) FROM "
	    "requests", &o->seen)) != 0)
		return r;
	return sg_store_insert_request(t, &o->y.q, NULL, NULL);
}

/* Starts once a's batch holds the lock (its job has begun). */
static void *
second_writer(void *arg)
{
	struct order *o = arg;

	if (!wait_for(&o->started, 1, 30000)) {
		o->r = SG_ERR_TIMEOUT;
		return NULL;
	}
	o->r = sg_store_write(o->other, job_count_then_insert, o);
	return NULL;
}

/* What a listener heard: each distinct id with how often (an id announced
 * again while the first notice is on its way is heard again; a slow
 * machine must not fill the record with repeats). */
struct heard {
	pthread_mutex_t lock;
	char ids[8][SG_REQUEST_ID_SIZE];
	int times[8];
	int n;
	int other;                     /* ids beyond the first 8 */
};

static void
on_heard(void *arg, const char *id)
{
	struct heard *h = arg;
	int i;

	pthread_mutex_lock(&h->lock);
	for (i = 0; i < h->n && strcmp(h->ids[i], id) != 0; i++)
		;
	if (i < h->n)
		h->times[i]++;
	else if (h->n < 8) {
		snprintf(h->ids[h->n], SG_REQUEST_ID_SIZE, "%s", id);
		h->times[h->n++] = 1;
	} else
		h->other++;
	pthread_mutex_unlock(&h->lock);
}

static int
heard_count(struct heard *h, const char *id)
{
	int i, n = 0;

	pthread_mutex_lock(&h->lock);
	for (i = 0; i < h->n; i++)
		if (strcmp(h->ids[i], id) == 0)
			n = h->times[i];
	pthread_mutex_unlock(&h->lock);
	return n;
}

/*
 * PostgreSQL only: two gateways' writers take turns (a batch of one
 * begins after the other's has committed, and sees all of it), and a
 * change announced by one reaches the other's listener, not its own.
 */
static void
test_pg_shared(void)
{
	struct sg_store *a = NULL, *b = NULL;
	struct order o;
	struct heard ha, hb;
	pthread_t th;
	int i, started = 0;

	memset(&o, 0, sizeof(o));
	memset(&ha, 0, sizeof(ha));
	memset(&hb, 0, sizeof(hb));
	pthread_mutex_init(&ha.lock, NULL);
	pthread_mutex_init(&hb.lock, NULL);
	CHECK_EQ_INT(open_named("shared", "gw-a", 0, &a), 0);
	CHECK_EQ_INT(open_named("shared", "gw-b", 0, &b), 0);
	if (a == NULL || b == NULL)
		goto out;
	CHECK(sg_store_backend(a) == SG_DB_POSTGRESQL);
	fill(&o.x, 910, "release", 1, 2);
	fill(&o.y, 911, "release", 1, 2);
	o.other = b;
	o.seen = -1;
	/* b's batch starts while a's holds the lock: it waits, and then
	 * counts x, committed before it (without the lock it would count
	 * nothing: READ COMMITTED, x not committed yet). */
	if (pthread_create(&th, NULL, second_writer, &o) == 0)
		started = 1;
	CHECK(started);
	if (!started)
		goto out;
	CHECK_EQ_INT(sg_store_write(a, job_hold_then_insert, &o), 0);
	pthread_join(th, NULL);
	/* b's batch began while a's held the lock: it ran after a's commit
	 * and saw x. */
	CHECK_EQ_INT(o.r, 0);
	CHECK_EQ_INT(o.seen, 1);
	CHECK(exists(a, o.x.q.id) && exists(a, o.y.q.id));

	CHECK_EQ_INT(sg_store_listen(a, on_heard, &ha), 0);
	CHECK_EQ_INT(sg_store_listen(b, on_heard, &hb), 0);
	/* The listeners start on their own threads: announce until heard
	 * (bounded), then check who heard what. */
	for (i = 0; i < 200 && heard_count(&hb, o.x.q.id) == 0; i++) {
		sg_store_announce(a, o.x.q.id);
		sleep_ms(50);
	}
	CHECK(heard_count(&hb, o.x.q.id) > 0);
	for (i = 0; i < 200 && heard_count(&ha, o.y.q.id) == 0; i++) {
		sg_store_announce(b, o.y.q.id);
		sleep_ms(50);
	}
	CHECK(heard_count(&ha, o.y.q.id) > 0);
	/* Nobody hears itself. */
	CHECK_EQ_INT(heard_count(&ha, o.x.q.id), 0);
	CHECK_EQ_INT(heard_count(&hb, o.y.q.id), 0);
out:
	sg_store_close(a);
	sg_store_close(b);
	pthread_mutex_destroy(&ha.lock);
	pthread_mutex_destroy(&hb.lock);
}

/* Ends every other session of the store's database (as a server restart,
 * a failover or an idle-connection reaper would), through one of its
 * readers; waits until they are gone. */
static int
drop_other_sessions(struct sg_store *st)
{
	struct sg_txn *t = NULL;
	int64_t left = -1, gone = 0;
	int i;

	if (sg_store_read_begin(st, &t) != 0)
		return -1;
	(void)count_rows(sg_store_txn_db(t), "SELECT COUNT(pg_terminate_backend("
	    "pid)) FROM pg_stat_activity WHERE datname = current_database() "
	    "AND pid <> pg_backend_pid()", &gone);
	sg_store_read_end(t);
	for (i = 0; i < 5000 && left != 0; i++) {
		if (sg_store_read_begin(st, &t) != 0)
			return -1;
		if (count_rows(sg_store_txn_db(t), "SELECT COUNT(*) FROM "
		    "pg_stat_activity WHERE datname = current_database() AND "
		    "pid <> pg_backend_pid()", &left) != 0)
			left = -1;
		sg_store_read_end(t);
		if (left != 0)
			sleep_ms(2);
	}
	return gone > 0 && left == 0 ? 0 : -1;
}

/*
 * PostgreSQL only: the writer's connection was closed by the server while
 * the gateway was idle.  The next write opens it again and succeeds:
 * nobody is answered 503 for a connection that could be reopened.
 */
static void
test_pg_writer_reconnects(void)
{
	struct sg_store *st = open_store("reconnect");
	struct req a, b;

	CHECK(st != NULL);
	if (st == NULL)
		return;
	fill(&a, 920, "release", 1, 2);
	fill(&b, 921, "release", 1, 2);
	CHECK_EQ_INT(insert(st, &a.q, NULL, NULL), 0);
	CHECK_EQ_INT(drop_other_sessions(st), 0);
	CHECK_EQ_INT(insert(st, &b.q, NULL, NULL), 0);
	CHECK(exists(st, b.q.id));
	sg_store_close(st);
}

/*
 * PostgreSQL only: the announcing connection was closed by the server
 * since the last notice.  The next notice still reaches the other
 * gateway: a lost one would leave its long-polls asleep to their deadline.
 */
static void
test_pg_announcer_reconnects(void)
{
	struct sg_store *a = NULL, *b = NULL;
	struct sg_txn *t = NULL;
	struct heard ha, hb;
	struct req x, y;
	int64_t n = -1;
	int i;

	memset(&ha, 0, sizeof(ha));
	memset(&hb, 0, sizeof(hb));
	pthread_mutex_init(&ha.lock, NULL);
	pthread_mutex_init(&hb.lock, NULL);
	fill(&x, 930, "release", 1, 2);
	fill(&y, 931, "release", 1, 2);
	CHECK_EQ_INT(open_named("announce", "gw-a", 0, &a), 0);
	CHECK_EQ_INT(open_named("announce", "gw-b", 0, &b), 0);
	if (a == NULL || b == NULL)
		goto out;
	/* a tells its changes on its listener's connection. */
	CHECK_EQ_INT(sg_store_listen(a, on_heard, &ha), 0);
	CHECK_EQ_INT(sg_store_listen(b, on_heard, &hb), 0);
	/* b listens once it hears a (bounded). */
	for (i = 0; i < 200 && heard_count(&hb, x.q.id) == 0; i++) {
		sg_store_announce(a, x.q.id);
		sleep_ms(50);
	}
	CHECK(heard_count(&hb, x.q.id) > 0);
	/* The server ends a's announcing session, and it is gone. */
	for (i = 0; i < 5000 && n != 0; i++) {
		if (sg_store_read_begin(a, &t) != 0)
			break;
		if (i == 0)
			(void)count_rows(sg_store_txn_db(t), "SELECT COUNT("
			    "pg_terminate_backend(pid)) FROM pg_stat_activity "
			    "WHERE datname = current_database() AND query LIKE "
			    "'SELECT pg_notify%' AND pid <> pg_backend_pid()",
			    &n);
		if (count_rows(sg_store_txn_db(t), "SELECT COUNT(*) FROM "
		    "pg_stat_activity WHERE datname = current_database() AND "
		    "query LIKE 'SELECT pg_notify%' AND pid <> "
		    "pg_backend_pid()", &n) != 0)
			n = -1;
		sg_store_read_end(t);
		if (n != 0)
			sleep_ms(2);
	}
	CHECK_EQ_INT(n, 0);
	/* One notice, heard. */
	sg_store_announce(a, y.q.id);
	for (i = 0; i < 2000 && heard_count(&hb, y.q.id) == 0; i++)
		sleep_ms(5);
	CHECK_EQ_INT(heard_count(&hb, y.q.id), 1);
out:
	sg_store_close(a);
	sg_store_close(b);
	pthread_mutex_destroy(&ha.lock);
	pthread_mutex_destroy(&hb.lock);
}

/* Writes queued without waiting: each told once, on the writer's thread,
 * after its batch. */
#define NASYNC 40

struct async_rec {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls[NASYNC + 4];
	int result[NASYNC + 4];
	int ndone;
};

struct async_arg {
	struct async_rec *rec;
	int i;
};

static void
on_async_done(void *arg, int result, int kept)
{
	struct async_arg *a = arg;
	struct async_rec *rec = a->rec;

	(void)kept;
	pthread_mutex_lock(&rec->lock);
	rec->calls[a->i]++;
	rec->result[a->i] = result;
	rec->ndone++;
	pthread_cond_broadcast(&rec->cond);
	pthread_mutex_unlock(&rec->lock);
}

/* Until want are done, at most 30 s. */
static int
async_wait(struct async_rec *rec, int want)
{
	struct timespec until;
	int n;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&rec->lock);
	while (rec->ndone < want && pthread_cond_timedwait(&rec->cond,
	    &rec->lock, &until) == 0)
		;
	n = rec->ndone;
	pthread_mutex_unlock(&rec->lock);
	return n;
}

/*
 * NASYNC inserts queued behind a job that holds the writer: every one is
 * told exactly once with its own result (one fails and is undone alone),
 * all in one batch after the holder's; the rows are there but the failed
 * one's.  Then three more queued and the store closed at once: closing
 * runs them and tells them before it returns.
 */
static void
test_write_async(void)
{
	struct sg_store *st = open_store("async");
	struct async_rec rec;
	struct async_arg args[NASYNC + 4];
	struct req *rq = calloc(NASYNC + 4, sizeof(*rq));
	struct ins ins[NASYNC + 3];
	struct blocker b;
	int i, once = 1, own = 1, same = 1;

	memset(&rec, 0, sizeof(rec));
	memset(&b, 0, sizeof(b));
	memset(ins, 0, sizeof(ins));
	pthread_mutex_init(&rec.lock, NULL);
	pthread_cond_init(&rec.cond, NULL);
	CHECK(st != NULL && rq != NULL);
	if (st == NULL || rq == NULL)
		goto out;
	install_hooks(st);
	for (i = 0; i < NASYNC + 4; i++) {
		args[i].rec = &rec;
		args[i].i = i;
		fill(&rq[i], 9100 + (unsigned)i, "nightly", i, 1000);
	}
	b.q = &rq[NASYNC + 3].q;
	CHECK_EQ_INT(sg_store_write_async(st, job_blocker, &b, on_async_done,
	    &args[NASYNC + 3]), 0);
	CHECK(wait_for(&b.running, 1, 10000));
	for (i = 0; i < NASYNC; i++) {
		ins[i].q = &rq[i].q;
		ins[i].fail_with = i == 7 ? SG_ERR_CONFLICT : 0;
		CHECK_EQ_INT(sg_store_write_async(st, job_insert, &ins[i],
		    on_async_done, &args[i]), 0);
	}
	atomic_store(&b.release, 1);
	CHECK_EQ_INT(async_wait(&rec, NASYNC + 1), NASYNC + 1);
	pthread_mutex_lock(&rec.lock);
	for (i = 0; i < NASYNC; i++) {
		once &= rec.calls[i] == 1;
		own &= rec.result[i] == (i == 7 ? SG_ERR_CONFLICT : 0);
		same &= ins[i].batch == ins[0].batch;
	}
	CHECK_EQ_INT(rec.calls[NASYNC + 3], 1);
	CHECK_EQ_INT(rec.result[NASYNC + 3], 0);
	pthread_mutex_unlock(&rec.lock);
	CHECK(once);
	CHECK(own);
	CHECK(same);
	CHECK(ins[0].batch > b.batch);
	for (i = 0; i < NASYNC; i++)
		if (exists(st, rq[i].q.id) != (i != 7))
			break;
	CHECK_EQ_INT(i, NASYNC);
	CHECK(exists(st, rq[NASYNC + 3].q.id));

	for (i = NASYNC; i < NASYNC + 3; i++) {
		ins[i].q = &rq[i].q;
		CHECK_EQ_INT(sg_store_write_async(st, job_insert, &ins[i],
		    on_async_done, &args[i]), 0);
	}
	sg_store_close(st);
	st = NULL;
	pthread_mutex_lock(&rec.lock);
	CHECK_EQ_INT(rec.ndone, NASYNC + 4);
	for (i = NASYNC; i < NASYNC + 3; i++)
		CHECK_EQ_INT(rec.calls[i] * 100 + rec.result[i], 100);
	pthread_mutex_unlock(&rec.lock);
out:
	sg_store_close(st);
	free(rq);
	pthread_mutex_destroy(&rec.lock);
	pthread_cond_destroy(&rec.cond);
}

/* Both backends: the store's meaning does not depend on its database. */
#define BOTH_BACKENDS \
    T(test_round_trip), \
    T(test_idempotency), \
    T(test_approvals), \
    T(test_transitions), \
    T(test_cancel), \
    T(test_decision_limit), \
    T(test_list), \
    T(test_expiry_and_pending), \
    T(test_policy), \
    T(test_policy_effective_index), \
    T(test_read_snapshot), \
    T(test_group_commit), \
    T(test_write_async), \
    T(test_job_error_rolled_back_alone), \
    T(test_job_error_undoes_all_its_writes), \
    T(test_swallowed_error_not_acknowledged), \
    T(test_batch_of_failures_only), \
    T(test_reopen), \
    T(test_release_lines), \
    T(test_activate), \
    T(test_release_done), \
    T(test_grant_take), \
    T(test_grant_take_concurrent), \
    T(test_revoke), \
    T(test_due_expiry_kinds), \
    T(test_claims), \
    T(test_outbox)

static void
test_on_postgresql(void)
{
	on_pg = 1;
}

int
main(void)
{
	static const struct sg_test tests[] = {
		T(test_setup),
		T(test_open_creates),
		T(test_upgrade_old_store),
		T(test_upgrade_every_version),
		T(test_schema_fresh),
		T(test_schema_newer_refused),
		T(test_schema_step_atomic),
		T(test_states_and_formats_checked),
		T(test_batch_end_failure),
		T(test_batch_durable),
		BOTH_BACKENDS,
		T(test_on_postgresql),
		BOTH_BACKENDS,
		T(test_pg_shared),
		T(test_pg_upgrade_v5),
		T(test_pg_writer_reconnects),
		T(test_pg_announcer_reconnects),
		T(test_teardown),
	};
	size_t n = sizeof(tests) / sizeof(tests[0]), first_pg;

	for (first_pg = 0; tests[first_pg].fn != test_on_postgresql;
	    first_pg++)
		;
	if (getenv("SG_TEST_PG") == NULL) {
		/* Said, never counted as passed. */
		struct sg_test run[sizeof(tests) / sizeof(tests[0])];

		/* Said, never counted as passed. */
		printf("# SG_TEST_PG is not set: the store's tests on "
		    "PostgreSQL do not run\n");
		memcpy(run, tests, first_pg * sizeof(run[0]));
		run[first_pg] = tests[n - 1];
		return sg_test_run("store", run, first_pg + 1);
	}
	return sg_test_run("store", tests, n);
}
