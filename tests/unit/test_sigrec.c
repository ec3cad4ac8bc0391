/*
 * Tests for the signer's record of signatures (src/sigrec.c): the
 * directory and file it creates and the ones it refuses, one signature
 * per request and format bound to one statement, exact bytes back after
 * a reopen, claims that make a second thread wait, and many threads;
 * for releases and grants, derived record ids, a batch's records in one
 * call with a result each, and claims taken all at once or not at all.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "sg_err.h"
#include "sg_sigrec.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define NTHREADS 8
#define PER_THREAD 25

static char tmpdir[64];
static char dir[128];

static void
mkentry(struct sg_sigrec_entry *e, const char *request,
    enum sg_format format, char shachar)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->request, sizeof(e->request), "%s", request);
	e->format = format;
	memset(e->statement_sha256, shachar, 64);
	snprintf(e->key, sizeof(e->key), "release");
	snprintf(e->digest_alg, sizeof(e->digest_alg), "sha256");
	memset(e->digest_hex, 'a', 64);
	e->sig_len = 70;
	if (RAND_bytes(e->sig, (int)e->sig_len) != 1)
		abort();
	e->signed_at = (int64_t)time(NULL);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static void
test_setup(void)
{
	CHECK(sg_fx_tmpdir("sigrec", tmpdir, sizeof(tmpdir)) == 0);
	snprintf(dir, sizeof(dir), "%s/hsm", tmpdir);
}

static void
test_open_creates(void)
{
	struct sg_sigrec *rec = NULL;
	struct sg_sigrec_entry e;
	char path[256], err[512] = "untouched";

	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_EQ_INT(mode_of(dir), 0700);
	snprintf(path, sizeof(path), "%s/%s", dir, SG_SIGREC_FILE);
	CHECK_EQ_INT(mode_of(path), 0600);
	mkentry(&e, "0123456789abcdef0123456789abcdef", SG_FORMAT_RAW, '1');
	CHECK_EQ_INT(sg_sigrec_put(rec, &e, "statement", 9), 0);
	/* SQLite's journal files take the database's mode. */
	snprintf(path, sizeof(path), "%s/%s-wal", dir, SG_SIGREC_FILE);
	CHECK_EQ_INT(mode_of(path), 0600);
	sg_sigrec_close(rec);
	CHECK_EQ_INT(sg_sigrec_open("", &rec, err, sizeof(err)),
	    SG_ERR_INVALID);
}

static void
test_open_refused(void)
{
	struct sg_sigrec *rec = NULL;
	char path[256], other[256], err[512];

	/* A directory others may enter. */
	CHECK_EQ_INT(chmod(dir, 0750), 0);
	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(rec == NULL);
	CHECK(strstr(err, dir) != NULL && strstr(err, "0700") != NULL &&
	    strstr(err, "0750") != NULL);
	CHECK_EQ_INT(chmod(dir, 0700), 0);

	/* A database file others may read. */
	snprintf(path, sizeof(path), "%s/%s", dir, SG_SIGREC_FILE);
	CHECK_EQ_INT(chmod(path, 0644), 0);
	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(strstr(err, SG_SIGREC_FILE) != NULL &&
	    strstr(err, "0600") != NULL);
	CHECK_EQ_INT(chmod(path, 0600), 0);

	/* Somebody else's directory (only root can make one here). */
	if (geteuid() == 0) {
		CHECK_EQ_INT(chown(dir, 65534, 65534), 0);
		CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)),
		    SG_ERR_PERMISSIONS);
		CHECK(strstr(err, "uid 65534") != NULL);
		CHECK_EQ_INT(chown(dir, 0, 0), 0);
	}

	/* A symbolic link in place of the directory. */
	snprintf(other, sizeof(other), "%s/link", tmpdir);
	CHECK_EQ_INT(symlink(dir, other), 0);
	CHECK_EQ_INT(sg_sigrec_open(other, &rec, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(strstr(err, "not a directory") != NULL);
	unlink(other);

	/* A file in place of the directory. */
	snprintf(other, sizeof(other), "%s/file", tmpdir);
	CHECK_EQ_INT(sg_write_file(other, "x", 1, 0600), 0);
	CHECK(sg_sigrec_open(other, &rec, err, sizeof(err)) != 0);
	CHECK(rec == NULL);
	unlink(other);

	/* And it opens again once all is right. */
	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	sg_sigrec_close(rec);
}

static void
test_once(void)
{
	static const char req[] = "00112233445566778899aabbccddeeff";
	struct sg_sigrec *rec = NULL;
	struct sg_sigrec_entry e, cms, got, other;
	char sha1[SG_SHA256_HEX_SIZE], sha2[SG_SHA256_HEX_SIZE], err[512];
	uint8_t der[600];
	size_t i;

	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	if (rec == NULL)
		return;
	mkentry(&e, req, SG_FORMAT_RAW, '1');
	memcpy(sha1, e.statement_sha256, 65);
	memset(sha2, '2', 64);
	sha2[64] = '\0';

	CHECK_EQ_INT(sg_sigrec_get(rec, req, SG_FORMAT_RAW, sha1, &got),
	    SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_sigrec_put(rec, &e, "the statement", 13), 0);
	/* The same bytes back. */
	CHECK_EQ_INT(sg_sigrec_get(rec, req, SG_FORMAT_RAW, sha1, &got), 0);
	CHECK_EQ_INT(got.sig_len, e.sig_len);
	CHECK(memcmp(got.sig, e.sig, e.sig_len) == 0);
	CHECK(got.cms == NULL && got.cms_len == 0);
	CHECK_STR(got.key, "release");
	CHECK_STR(got.digest_hex, e.digest_hex);
	CHECK_EQ_INT(got.signed_at, e.signed_at);
	sg_sigrec_entry_clear(&got);
	/* Never a second record for the same request and format. */
	mkentry(&other, req, SG_FORMAT_RAW, '1');
	CHECK_EQ_INT(sg_sigrec_put(rec, &other, "the statement", 13),
	    SG_ERR_CONFLICT);
	/* A request id is bound to its statement, in any format. */
	CHECK_EQ_INT(sg_sigrec_get(rec, req, SG_FORMAT_RAW, sha2, &got),
	    SG_ERR_CONFLICT);
	CHECK_STR(got.statement_sha256, sha1);
	sg_sigrec_entry_clear(&got);
	CHECK_EQ_INT(sg_sigrec_get(rec, req, SG_FORMAT_CMS, sha2, &got),
	    SG_ERR_CONFLICT);
	sg_sigrec_entry_clear(&got);
	mkentry(&other, req, SG_FORMAT_CMS, '2');
	other.cms = der;
	other.cms_len = sizeof(der);
	CHECK_EQ_INT(sg_sigrec_put(rec, &other, "another", 7),
	    SG_ERR_CONFLICT);
	/* Another format of the same statement is simply not recorded. */
	CHECK_EQ_INT(sg_sigrec_get(rec, req, SG_FORMAT_CMS, sha1, &got),
	    SG_ERR_NOT_FOUND);

	/* CMS: the DER comes back byte for byte. */
	for (i = 0; i < sizeof(der); i++)
		der[i] = (uint8_t)(i * 7);
	mkentry(&cms, "ffeeddccbbaa99887766554433221100", SG_FORMAT_CMS, '3');
	cms.cms = der;
	cms.cms_len = sizeof(der);
	CHECK_EQ_INT(sg_sigrec_put(rec, &cms, "cms statement", 13), 0);
	/* Malformed entries are refused before any write. */
	cms.cms_len = 0;
	CHECK_EQ_INT(sg_sigrec_put(rec, &cms, "x", 1), SG_ERR_INVALID);
	cms.cms_len = sizeof(der);
	e.sig_len = 0;
	CHECK_EQ_INT(sg_sigrec_put(rec, &e, "x", 1), SG_ERR_INVALID);
	e.sig_len = 70;
	sg_sigrec_close(rec);

	/* After a reopen (a restart), everything is still there. */
	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	if (rec == NULL)
		return;
	CHECK_EQ_INT(sg_sigrec_get(rec, req, SG_FORMAT_RAW, sha1, &got), 0);
	CHECK(got.sig_len == e.sig_len && memcmp(got.sig, e.sig,
	    e.sig_len) == 0);
	sg_sigrec_entry_clear(&got);
	CHECK_EQ_INT(sg_sigrec_get(rec, cms.request, SG_FORMAT_CMS,
	    cms.statement_sha256, &got), 0);
	CHECK(got.cms != NULL && got.cms_len == sizeof(der) &&
	    memcmp(got.cms, der, sizeof(der)) == 0);
	CHECK(got.sig_len == cms.sig_len && memcmp(got.sig, cms.sig,
	    cms.sig_len) == 0);
	sg_sigrec_entry_clear(&got);
	sg_sigrec_close(rec);
}

struct claimer {
	struct sg_sigrec *rec;
	volatile int got;
	int r;
};

static void *
claim_main(void *arg)
{
	struct claimer *cl = arg;

	cl->r = sg_sigrec_claim(cl->rec, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	cl->got = 1;
	if (cl->r == 0)
		sg_sigrec_release(cl->rec, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	return NULL;
}

static void
test_claims(void)
{
	struct sg_sigrec *rec = NULL;
	struct claimer cl;
	pthread_t th;
	char err[512];
	int i;

	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	if (rec == NULL)
		return;
	CHECK_EQ_INT(sg_sigrec_claim(rec, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
	    0);
	/* Another request is not held up. */
	CHECK_EQ_INT(sg_sigrec_claim(rec, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
	    0);
	sg_sigrec_release(rec, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	memset(&cl, 0, sizeof(cl));
	cl.rec = rec;
	CHECK_EQ_INT(pthread_create(&th, NULL, claim_main, &cl), 0);
	/* The second claim of the same request waits... */
	usleep(200000);
	CHECK_EQ_INT(cl.got, 0);
	/* ...until the first is released. */
	sg_sigrec_release(rec, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	for (i = 0; i < 500 && !cl.got; i++)
		usleep(10000);
	pthread_join(th, NULL);
	CHECK_EQ_INT(cl.got, 1);
	CHECK_EQ_INT(cl.r, 0);
	sg_sigrec_close(rec);
}

struct worker {
	struct sg_sigrec *rec;
	int idx;
	int failures;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct sg_sigrec_entry e, got;
	char req[SG_REQUEST_ID_SIZE];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(req, sizeof(req), "%016x%016x", w->idx + 1, i + 1);
		mkentry(&e, req, SG_FORMAT_RAW, 'c');
		if (sg_sigrec_claim(w->rec, req) != 0) {
			w->failures++;
			continue;
		}
		if (sg_sigrec_get(w->rec, req, SG_FORMAT_RAW,
		    e.statement_sha256, &got) != SG_ERR_NOT_FOUND ||
		    sg_sigrec_put(w->rec, &e, req, 32) != 0)
			w->failures++;
		sg_sigrec_entry_clear(&got);
		sg_sigrec_release(w->rec, req);
		if (sg_sigrec_get(w->rec, req, SG_FORMAT_RAW,
		    e.statement_sha256, &got) != 0 ||
		    got.sig_len != e.sig_len ||
		    memcmp(got.sig, e.sig, e.sig_len) != 0)
			w->failures++;
		sg_sigrec_entry_clear(&got);
	}
	return NULL;
}

static void
test_threads(void)
{
	struct sg_sigrec *rec = NULL;
	struct worker w[NTHREADS];
	char err[512];
	int i, failures = 0;

	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	if (rec == NULL)
		return;
	for (i = 0; i < NTHREADS; i++) {
		w[i].rec = rec;
		w[i].idx = i;
	}
	CHECK_EQ_INT(sg_fx_threads(NTHREADS, worker_main, w, sizeof(w[0]),
	    offsetof(struct worker, failures), &failures), NTHREADS);
	CHECK_EQ_INT(failures, 0);
	sg_sigrec_close(rec);
}

/* A row whose format is not one (written by hand) is refused when read,
 * never taken for some format. */
static void
test_bad_format_refused(void)
{
	static const char req[] = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
	struct sg_sigrec *rec = NULL;
	struct sg_sigrec_entry e, got;
	char path[256], err[512];
	sqlite3 *db = NULL;

	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	if (rec == NULL)
		return;
	mkentry(&e, req, SG_FORMAT_RAW, '7');
	CHECK_EQ_INT(sg_sigrec_put(rec, &e, "a statement", 11), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, SG_SIGREC_FILE);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	/* Past the schema's CHECK, as a hand-made or damaged file may be. */
	CHECK(sqlite3_exec(db, "PRAGMA ignore_check_constraints = ON; "
	    "UPDATE signatures SET format = 'pem' WHERE "
	    "request = '0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f'", NULL, NULL,
	    NULL) == SQLITE_OK);
	sqlite3_close(db);
	memset(&got, 0, sizeof(got));
	CHECK_EQ_INT(sg_sigrec_get(rec, req, SG_FORMAT_RAW,
	    e.statement_sha256, &got), SG_ERR_IO);
	sg_sigrec_entry_clear(&got);
	/* An entry whose format is not one is not recorded either. */
	mkentry(&e, "1f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f", (enum sg_format)0, '8');
	CHECK_EQ_INT(sg_sigrec_put(rec, &e, "a statement", 11),
	    SG_ERR_INVALID);
	sg_sigrec_close(rec);
}

static void
test_teardown(void)
{
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

/* Artifacts of releases and grants: derived record ids, a batch's records
 * in one call, each with its own result. */
static void
test_put_many(void)
{
	static const char id[] = "00112233445566778899aabbccddeeff";
	struct sg_sigrec *rec = NULL;
	struct sg_sigrec_entry es[4], got;
	char a[SG_REQUEST_ID_SIZE], b[SG_REQUEST_ID_SIZE], c[SG_REQUEST_ID_SIZE];
	char hex[65], text[128], err[512];
	uint8_t h[32];
	int results[4], i;

	memset(es, 0, sizeof(es));
	sg_sigrec_item_id("grant", id, 1, a);
	sg_sigrec_item_id("grant", id, 2, b);
	sg_sigrec_item_id("release", id, 1, c);
	snprintf(text, sizeof(text), "signgate-item grant %s 1", id);
	sg_sha256(text, strlen(text), h);
	sg_hex_encode(h, sizeof(h), hex);
	CHECK_EQ_INT(strlen(a), SG_REQUEST_ID_LEN);
	CHECK(strncmp(a, hex, SG_REQUEST_ID_LEN) == 0);
	CHECK(strcmp(a, b) != 0 && strcmp(a, c) != 0 && strcmp(b, c) != 0);

	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	if (rec == NULL)
		return;
	mkentry(&es[0], a, SG_FORMAT_RAW, '7');
	mkentry(&es[1], b, SG_FORMAT_RAW, '7');
	CHECK_EQ_INT(sg_sigrec_put_many(rec, es, 2, "grant stmt", 10,
	    results), 0);
	CHECK(results[0] == 0 && results[1] == 0);
	CHECK_EQ_INT(sg_sigrec_get(rec, b, SG_FORMAT_RAW, es[1].statement_sha256,
	    &got), 0);
	CHECK(got.sig_len == es[1].sig_len &&
	    memcmp(got.sig, es[1].sig, got.sig_len) == 0);
	sg_sigrec_entry_clear(&got);
	/* One taken slot in a batch: refused alone, the others recorded. */
	mkentry(&es[0], c, SG_FORMAT_RAW, '7');
	mkentry(&es[1], a, SG_FORMAT_RAW, '7');
	mkentry(&es[2], b, SG_FORMAT_CMS, '8');
	CHECK_EQ_INT(sg_sigrec_put_many(rec, es, 3, "grant stmt", 10,
	    results), 0);
	CHECK_EQ_INT(results[0], 0);
	CHECK_EQ_INT(results[1], SG_ERR_CONFLICT);
	CHECK_EQ_INT(results[2], SG_ERR_CONFLICT);
	CHECK_EQ_INT(sg_sigrec_get(rec, c, SG_FORMAT_RAW, es[0].statement_sha256,
	    &got), 0);
	sg_sigrec_entry_clear(&got);
	/* A malformed entry: nothing of the batch is recorded. */
	sg_sigrec_item_id("grant", id, 3, a);
	sg_sigrec_item_id("grant", id, 4, b);
	mkentry(&es[0], a, SG_FORMAT_RAW, '7');
	mkentry(&es[1], b, SG_FORMAT_RAW, '7');
	es[1].sig_len = 0;
	CHECK_EQ_INT(sg_sigrec_put_many(rec, es, 2, "grant stmt", 10,
	    results), SG_ERR_INVALID);
	CHECK(results[0] == SG_ERR_INVALID && results[1] == SG_ERR_INVALID);
	CHECK_EQ_INT(sg_sigrec_get(rec, a, SG_FORMAT_RAW, es[0].statement_sha256,
	    &got), SG_ERR_NOT_FOUND);
	for (i = 0; i < 4; i++)
		sg_sigrec_entry_clear(&es[i]);
	sg_sigrec_close(rec);
}

struct many_arg {
	struct sg_sigrec *rec;
	const char *const *ids;
	int done;
};

static void *
claim_many_main(void *arg)
{
	struct many_arg *ma = arg;

	if (sg_sigrec_claim_many(ma->rec, ma->ids, 2) == 0) {
		__atomic_store_n(&ma->done, 1, __ATOMIC_SEQ_CST);
		sg_sigrec_release_many(ma->rec, ma->ids, 2);
	}
	return NULL;
}

/* A batch claims all its ids or none: while it waits for one, it holds
 * no other. */
static void
test_claim_many(void)
{
	static const char *const ab[] = { "aaaa", "bbbb" };
	static const char *const bc[] = { "bbbb", "cccc" };
	static const char *const c1[] = { "cccc" };
	struct sg_sigrec *rec = NULL;
	struct many_arg ma;
	pthread_t t;
	char err[512];

	CHECK_EQ_INT(sg_sigrec_open(dir, &rec, err, sizeof(err)), 0);
	if (rec == NULL)
		return;
	CHECK_EQ_INT(sg_sigrec_claim_many(rec, ab, 2), 0);
	ma.rec = rec;
	ma.ids = bc;
	ma.done = 0;
	CHECK_EQ_INT(pthread_create(&t, NULL, claim_many_main, &ma), 0);
	usleep(200 * 1000);
	CHECK_EQ_INT(__atomic_load_n(&ma.done, __ATOMIC_SEQ_CST), 0);
	/* cccc is free: the waiting batch holds nothing. */
	CHECK_EQ_INT(sg_sigrec_claim_many(rec, c1, 1), 0);
	sg_sigrec_release_many(rec, c1, 1);
	sg_sigrec_release_many(rec, ab, 2);
	pthread_join(t, NULL);
	CHECK_EQ_INT(ma.done, 1);
	sg_sigrec_close(rec);
}

SG_TEST_MAIN("sigrec",
    T(test_setup),
    T(test_open_creates),
    T(test_open_refused),
    T(test_once),
    T(test_claims),
    T(test_threads),
    T(test_bad_format_refused),
    T(test_put_many),
    T(test_claim_many),
    T(test_teardown))
