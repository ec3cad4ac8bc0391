/*
 * loadgen: HTTPS load against a signgated on loopback, for make bench.
 *
 *   loadgen sign      -u URL -D DEVDIR [-c CONNS] [-s SECONDS] [-n COUNT]
 *                     [-r RATE] [-k KEY] [-v VERIFY_EVERY] [-a START_MS]
 *   loadgen lifecycle -u URL -D DEVDIR [-c CONNS] [-s SECONDS] [-n COUNT]
 *                     [-k KEY] [-o OFFICER,...] [-v VERIFY_EVERY]
 *                     [-a START_MS]
 *
 * sign: CONNS threads, each with one libcurl easy handle (so one TLS
 * connection, kept alive, with ci's client certificate), POST
 * /v1/requests for KEY (default nightly), format raw, each with a digest
 * no other request in the run has.  Every answer must be 201 with state
 * "signed"; anything else is an error counted by its status.  Without -r
 * the threads send back to back (closed loop: the throughput run).  With
 * -r the requests follow a fixed schedule of RATE per second shared by
 * all threads, and a request's latency runs from its scheduled time, not
 * from when a thread got round to sending it, so a server that falls
 * behind shows it in the tail instead of slowing the generator down.
 *
 * lifecycle: each thread creates a request for KEY (default release) as
 * ci, then every officer in turn (default alice, bob, dave) approves it
 * over the officer's own connection and client certificate: the DSSE
 * envelope is built here, with the officer's key file
 * (DEVDIR/officers/<name>.key) and the same statement, PAE and envelope
 * code the CLI uses.  A lifecycle counts when the last approval answers
 * 200 with state "signed", or answers "pending" (the daemon's
 * housekeeping thread claimed the signing first) and a long poll on the
 * request then shows it signed; those are reported as "late".
 *
 * Proof that the work is real: every VERIFY_EVERY-th signed answer of
 * each thread (default 100; 1 checks all) is parsed in full, its digest
 * compared with the one sent, its log proof required, and its signature
 * verified with sg_verify against DEVDIR/codesign/<key>.pub.pem -- a file
 * made when the key was generated, not the gateway's own word.
 *
 * Before the clock starts, every connection is opened (TLS handshake) by
 * one GET /v1/keys; connections opened during the run are counted and
 * reported, and should be 0.  With -a the clock starts at START_MS
 * (milliseconds since the epoch, within a minute of now), not as soon as
 * the connections are up, so that load generators started together
 * against several gateways measure the same interval; if the connections
 * are not up by then, it starts when they are, and how late it started
 * is reported (start_late_ms).
 *
 * Output: a human summary and one line "RESULT key=value ..." for scripts,
 * latencies in microseconds; "created" counts the 201 answers (in sign
 * mode, the requests the gateway says it stored, whatever their checks
 * found).  Exit 0 when there was no error.
 * Bounded: loopback URLs only, at most 256 connections, 600 seconds,
 * 10 million requests; -s and -n both given stop at whichever comes first.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_util.h"

#define MAX_CONNS       256
#define MAX_SECONDS     600
#define MAX_REQUESTS    10000000ULL
#define MAX_RATE        1000000ULL
#define MAX_OFFICERS    8
#define MAX_SAMPLES     (8u * 1000 * 1000) /* latencies kept, all threads */
#define HTTP_TIMEOUT_S  30L
#define NSTATUS         600             /* 0: transport error */
#define LATE_WAIT_S     10              /* long-poll for a late signature */
#define MAX_START_OFF_MS (60 * 1000LL)  /* -a at most this far from now */

enum mode { MODE_SIGN, MODE_LIFECYCLE };

enum fault {
	F_STATE,        /* right status, wrong state or unreadable body */
	F_VERIFY,       /* signature, digest or proof check failed */
	F_CLIENT,       /* could not build the request (envelope, id) */
	F_MAX
};
static const char *const fault_names[F_MAX] = { "state", "verify", "client" };

struct opts {
	enum mode mode;
	const char *url;
	const char *dev;
	const char *key;
	char officers[MAX_OFFICERS][64];
	size_t nofficers;
	uint64_t conns, seconds, count, rate, verify_every;
	int64_t start_ms;               /* -a: the clock starts then (0: now) */
};

/* One libcurl handle: one kept-alive connection as one principal. */
struct conn {
	CURL *h;
	struct curl_slist *hdrs;
	struct sg_fx_body body;
	char principal[64];
	char errbuf[CURL_ERROR_SIZE];
};

struct worker {
	pthread_t tid;
	unsigned idx;
	const struct opts *o;
	EVP_PKEY *pub;                  /* the key's public half (shared) */
	struct conn requester;
	struct conn officer[MAX_OFFICERS];
	EVP_PKEY *officer_key[MAX_OFFICERS];
	uint64_t seq;                   /* this thread's digests */
	uint64_t ok, verified, new_conns;
	uint64_t late;                  /* lifecycles signed after a wait */
	uint64_t status[NSTATUS];
	uint64_t faults[F_MAX];
	uint32_t *lat;                  /* microseconds, capped at UINT32_MAX */
	size_t nlat, caplat;
	int64_t last_done_us;
};

/* Shared run state. */
static atomic_int go;
static atomic_int stop;
static atomic_size_t ready;              /* threads whose connections are up */
static atomic_uint_fast64_t issued;     /* requests handed out */
static int64_t t_start_us, t_end_us;    /* set before go, read after */
static char run_nonce[33];

static int
is_loopback_url(const char *u)
{
	static const char *const ok[] = { "https://127.", "https://localhost:",
	    "https://localhost/", "https://[::1]", NULL };
	size_t i;

	for (i = 0; ok[i] != NULL; i++)
		if (strncmp(u, ok[i], strlen(ok[i])) == 0)
			return 1;
	return 0;
}

static int
conn_open(struct conn *c, const struct opts *o, const char *principal)
{
	char path[1024];

	memset(c, 0, sizeof(*c));
	snprintf(c->principal, sizeof(c->principal), "%s", principal);
	if ((c->h = curl_easy_init()) == NULL)
		return SG_ERR_NOMEM;
	c->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	/* An empty Expect: keeps curl from waiting for 100-continue. */
	if (c->hdrs != NULL)
		c->hdrs = curl_slist_append(c->hdrs, "Expect:");
	if (c->hdrs == NULL)
		return SG_ERR_NOMEM;
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
	curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c->h, CURLOPT_MAXCONNECTS, 1L);
	curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION,
	    sg_fx_body_write);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->body);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, c->hdrs);
	snprintf(path, sizeof(path), "%s/tls/ca.pem", o->dev);
	curl_easy_setopt(c->h, CURLOPT_CAINFO, path);
	snprintf(path, sizeof(path), "%s/tls/%s.pem", o->dev, principal);
	curl_easy_setopt(c->h, CURLOPT_SSLCERT, path);
	snprintf(path, sizeof(path), "%s/tls/%s.key", o->dev, principal);
	curl_easy_setopt(c->h, CURLOPT_SSLKEY, path);
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->h != NULL)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->hdrs);
	free(c->body.p);
	memset(c, 0, sizeof(*c));
}

/*
 * One exchange.  body NULL is a GET.  Returns the HTTP status, or 0 when
 * the transfer itself failed; the answer is in c->body.  *new_conns counts
 * connections the transfer had to open.
 */
static long
conn_call(struct conn *c, const struct opts *o, const char *path,
    const char *body, size_t body_len, uint64_t *new_conns)
{
	char url[512];
	long status = 0, nc = 0;

	c->body.len = 0;
	if (c->body.p != NULL)
		c->body.p[0] = '\0';
	snprintf(url, sizeof(url), "%s%s", o->url, path);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	if (body != NULL) {
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)body_len);
	} else
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	if (curl_easy_perform(c->h) != CURLE_OK)
		return 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c->h, CURLINFO_NUM_CONNECTS, &nc);
	if (new_conns != NULL && nc > 0)
		*new_conns += (uint64_t)nc;
	return status > 0 && status < NSTATUS ? status : 0;
}

static void
record(struct worker *w, int64_t us)
{
	uint32_t *p;
	size_t cap;

	if (us < 0)
		us = 0;
	if (w->nlat == w->caplat) {
		if (w->caplat >= MAX_SAMPLES / w->o->conns)
			return;
		cap = w->caplat == 0 ? 4096 : w->caplat * 2;
		if ((p = reallocarray(w->lat, cap, sizeof(*p))) == NULL)
			return;
		w->lat = p;
		w->caplat = cap;
	}
	w->lat[w->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void
next_digest(struct worker *w, uint8_t digest[32], char hex[65])
{
	char seed[128];

	snprintf(seed, sizeof(seed), "loadgen %s %u %" PRIu64, run_nonce,
	    w->idx, w->seq++);
	sg_sha256(seed, strlen(seed), digest);
	sg_hex_encode(digest, 32, hex);
}

static int
has_state(const struct sg_fx_body *b, const char *state)
{
	char want[64];

	/* The server renders compact JSON; "state" is only a top-level key
	 * of a request object. */
	snprintf(want, sizeof(want), "\"state\":\"%s\"", state);
	return b->p != NULL && strstr(b->p, want) != NULL;
}

/*
 * The full check of a signed answer: state, the digest we sent, a log
 * proof, and the signature against the key's public half.
 */
static int
check_signed(struct worker *w, const struct sg_fx_body *b, const uint8_t digest[32],
    const char *digest_hex)
{
	json_t *j = NULL, *sig, *log;
	const char *s, *v;
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int r = SG_ERR_VERIFY;

	if ((j = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL)
		goto out;
	if ((s = json_string_value(json_object_get(j, "state"))) == NULL ||
	    strcmp(s, "signed") != 0)
		goto out;
	v = json_string_value(json_object_get(json_object_get(j, "digest"),
	    "value"));
	if (v == NULL || strcmp(v, digest_hex) != 0)
		goto out;
	sig = json_object_get(j, "signature");
	log = json_object_get(sig, "log");
	if (!json_is_integer(json_object_get(log, "index")) ||
	    json_string_value(json_object_get(log, "proof")) == NULL)
		goto out;
	if ((s = json_string_value(json_object_get(sig, "signature"))) == NULL ||
	    sg_b64_decode(s, strlen(s), &raw, &rawlen) != 0)
		goto out;
	if (sg_verify(w->pub, SG_SIG_ECDSA, SG_DIGEST_SHA256, digest, 32,
	    raw, rawlen) != 0)
		goto out;
	w->verified++;
	r = 0;
 out:
	free(raw);
	json_decref(j);
	return r;
}

/* The first few unexpected answers are shown, for diagnosis. */
static atomic_int shown;

static void
show(const char *what, long status, const struct sg_fx_body *b)
{
	if (atomic_fetch_add(&shown, 1) >= 5)
		return;
	fprintf(stderr, "loadgen: %s: status %ld: %.400s\n", what, status,
	    b->p != NULL ? b->p : "");
}

/* Counts an answer; returns 0 when it was the expected status. */
static int
tally(struct worker *w, const struct conn *c, long status, long want)
{
	w->status[status >= 0 && status < NSTATUS ? status : 0]++;
	if (status == want)
		return 0;
	if (status == 0) {
		if (atomic_fetch_add(&shown, 1) < 5)
			fprintf(stderr, "loadgen: %s: %s\n", c->principal,
			    c->errbuf);
	} else
		show(c->principal, status, &c->body);
	return -1;
}

static int
sign_once(struct worker *w, int64_t sched_us)
{
	const struct opts *o = w->o;
	char body[512], hex[65];
	uint8_t digest[32];
	int64_t t0;
	long st;
	int n;

	next_digest(w, digest, hex);
	n = snprintf(body, sizeof(body), "{\"key\":\"%s\",\"digest\":"
	    "{\"algorithm\":\"sha256\",\"value\":\"%s\"},\"format\":\"raw\","
	    "\"artifact\":{\"name\":\"bench.bin\",\"version\":\"%u.%" PRIu64
	    "\"}}", o->key, hex, w->idx, w->seq);
	t0 = sched_us > 0 ? sched_us : sg_mono_us();
	st = conn_call(&w->requester, o, "/v1/requests", body, (size_t)n,
	    &w->new_conns);
	w->last_done_us = sg_mono_us();
	if (tally(w, &w->requester, st, 201) != 0)
		return -1;
	if (!has_state(&w->requester.body, "signed")) {
		show("not signed", st, &w->requester.body);
		w->faults[F_STATE]++;
		return -1;
	}
	if (w->ok % o->verify_every == 0 &&
	    check_signed(w, &w->requester.body, digest, hex) != 0) {
		w->faults[F_VERIFY]++;
		return -1;
	}
	record(w, w->last_done_us - t0);
	w->ok++;
	return 0;
}

/* The officer's DSSE approval of a statement, as JSON (malloc'd). */
static int
build_approval(EVP_PKEY *key, const char *officer, const char *stmt,
    size_t stmt_len, char **ret)
{
	uint8_t *body = NULL, *pae = NULL, sig[256];
	size_t body_len = 0, pae_len = 0, sig_len = sizeof(sig);
	EVP_MD_CTX *md = NULL;
	int r = SG_ERR_CRYPTO;

	if ((r = sg_body_build(stmt, stmt_len, 1, &body, &body_len)) != 0 ||
	    (r = sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae,
	    &pae_len)) != 0)
		goto out;
	r = SG_ERR_CRYPTO;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, pae, pae_len) != 1)
		goto out;
	r = sg_envelope_build(SG_DSSE_TYPE, body, body_len, officer, sig,
	    sig_len, ret);
 out:
	EVP_MD_CTX_free(md);
	free(pae);
	free(body);
	return r;
}

static int
lifecycle_once(struct worker *w)
{
	const struct opts *o = w->o;
	char body[512], hex[65], path[128], wpath[128];
	char id[SG_REQUEST_ID_LEN + 1], *stmt = NULL, *env = NULL;
	const char *s;
	json_t *j = NULL;
	uint8_t digest[32];
	size_t i, stmt_len = 0;
	int64_t t0;
	long st;
	int n, r = -1;

	next_digest(w, digest, hex);
	n = snprintf(body, sizeof(body), "{\"key\":\"%s\",\"digest\":"
	    "{\"algorithm\":\"sha256\",\"value\":\"%s\"},\"format\":\"raw\","
	    "\"artifact\":{\"name\":\"bench.bin\",\"version\":\"%u.%" PRIu64
	    "\"}}", o->key, hex, w->idx, w->seq);
	t0 = sg_mono_us();
	st = conn_call(&w->requester, o, "/v1/requests", body, (size_t)n,
	    &w->new_conns);
	if (tally(w, &w->requester, st, 201) != 0)
		goto out;
	/* The id and the statement are needed: parse this answer in full. */
	if ((j = json_loadb(w->requester.body.p, w->requester.body.len, 0,
	    NULL)) == NULL ||
	    (s = json_string_value(json_object_get(j, "state"))) == NULL ||
	    strcmp(s, "pending") != 0) {
		show("not pending", st, &w->requester.body);
		w->faults[F_STATE]++;
		goto out;
	}
	s = json_string_value(json_object_get(j, "id"));
	if (s == NULL || strlen(s) != SG_REQUEST_ID_LEN ||
	    strspn(s, "0123456789abcdef") != SG_REQUEST_ID_LEN ||
	    (s = json_string_value(json_object_get(j, "statement"))) == NULL) {
		w->faults[F_CLIENT]++;
		goto out;
	}
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j,
	    "id")));
	stmt_len = strlen(s);
	if ((stmt = strdup(s)) == NULL) {
		w->faults[F_CLIENT]++;
		goto out;
	}
	snprintf(path, sizeof(path), "/v1/requests/%s/approvals", id);
	for (i = 0; i < o->nofficers; i++) {
		if (build_approval(w->officer_key[i], o->officers[i], stmt,
		    stmt_len, &env) != 0) {
			w->faults[F_CLIENT]++;
			goto out;
		}
		st = conn_call(&w->officer[i], o, path, env, strlen(env),
		    &w->new_conns);
		free(env);
		env = NULL;
		if (tally(w, &w->officer[i], st, 200) != 0)
			goto out;
		if (i + 1 == o->nofficers &&
		    has_state(&w->officer[i].body, "pending")) {
			/*
			 * The quorum is met, but the daemon's housekeeping
			 * thread may have claimed the signing first; the
			 * approval then answers "pending" and a client
			 * waits for the change, as the CLI does.
			 */
			snprintf(wpath, sizeof(wpath), "/v1/requests/%s"
			    "?wait=%d", id, LATE_WAIT_S);
			st = conn_call(&w->officer[i], o, wpath, NULL, 0,
			    &w->new_conns);
			if (tally(w, &w->officer[i], st, 200) != 0)
				goto out;
			if (has_state(&w->officer[i].body, "signed"))
				w->late++;
		}
		if (!has_state(&w->officer[i].body, i + 1 < o->nofficers ?
		    "pending" : "signed")) {
			show(o->officers[i], st, &w->officer[i].body);
			w->faults[F_STATE]++;
			goto out;
		}
	}
	w->last_done_us = sg_mono_us();
	if (w->ok % o->verify_every == 0 &&
	    check_signed(w, &w->officer[o->nofficers - 1].body, digest,
	    hex) != 0) {
		w->faults[F_VERIFY]++;
		goto out;
	}
	record(w, w->last_done_us - t0);
	w->ok++;
	r = 0;
 out:
	if (r != 0)
		w->last_done_us = sg_mono_us();
	json_decref(j);
	free(stmt);
	return r;
}

static EVP_PKEY *
load_private_key(const char *path)
{
	EVP_PKEY *k = NULL;
	char *pem = NULL;
	size_t len = 0;
	BIO *b = NULL;

	if (sg_read_secret_file_max(path, 64 * 1024, &pem, &len) != 0)
		return NULL;
	if ((b = BIO_new_mem_buf(pem, (int)len)) != NULL)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	sg_freezero(pem, len);
	return k;
}

static int
worker_setup(struct worker *w)
{
	const struct opts *o = w->o;
	char path[1024];
	size_t i;

	if (conn_open(&w->requester, o, "ci") != 0 ||
	    conn_call(&w->requester, o, "/v1/keys", NULL, 0, NULL) != 200) {
		fprintf(stderr, "loadgen: ci: GET /v1/keys failed: %s\n",
		    w->requester.errbuf);
		return -1;
	}
	for (i = 0; o->mode == MODE_LIFECYCLE && i < o->nofficers; i++) {
		snprintf(path, sizeof(path), "%s/officers/%s.key", o->dev,
		    o->officers[i]);
		if ((w->officer_key[i] = load_private_key(path)) == NULL) {
			fprintf(stderr, "loadgen: cannot load %s\n", path);
			return -1;
		}
		if (conn_open(&w->officer[i], o, o->officers[i]) != 0 ||
		    conn_call(&w->officer[i], o, "/v1/keys", NULL, 0,
		    NULL) != 200) {
			fprintf(stderr, "loadgen: %s: GET /v1/keys failed: "
			    "%s\n", o->officers[i], w->officer[i].errbuf);
			return -1;
		}
	}
	return 0;
}

static void *
run_worker(void *arg)
{
	struct worker *w = arg;
	const struct opts *o = w->o;
	struct timespec ts;
	uint64_t k;
	int64_t sched;

	if (worker_setup(w) != 0) {
		atomic_store(&stop, 1);
		return NULL;
	}
	atomic_fetch_add(&ready, 1);
	while (!atomic_load(&go) && !atomic_load(&stop))
		usleep(200);
	while (!atomic_load(&stop)) {
		k = atomic_fetch_add(&issued, 1);
		if (k >= o->count)
			break;
		sched = 0;
		if (o->rate > 0) {
			sched = t_start_us + (int64_t)(k * 1000000 / o->rate);
			if (sched >= t_end_us)
				break;
			ts.tv_sec = sched / 1000000;
			ts.tv_nsec = (sched % 1000000) * 1000;
			/* sg_mono_us is CLOCK_MONOTONIC too. */
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
			    &ts, NULL) == EINTR)
				;
		} else if (sg_mono_us() >= t_end_us)
			break;
		if (o->mode == MODE_SIGN)
			sign_once(w, sched);
		else
			lifecycle_once(w);
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t
pct(const uint32_t *v, size_t n, unsigned p)
{
	size_t i;

	if (n == 0)
		return 0;
	/* Nearest rank. */
	i = (n * p + 99) / 100;
	return v[i == 0 ? 0 : i - 1];
}

static EVP_PKEY *
load_public_key(const char *path)
{
	EVP_PKEY *k = NULL;
	char *pem = NULL;
	size_t len = 0;

	if (sg_read_file(path, 64 * 1024, &pem, &len) != 0 ||
	    sg_pubkey_from_pem(pem, len, &k) != 0)
		k = NULL;
	free(pem);
	return k;
}

/* The wall clock in milliseconds since the epoch. */
static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits until the wall clock reaches start_ms (-a); returns how many
 * milliseconds late that was, 0 when the caller was early.
 */
static int64_t
wait_start(int64_t start_ms)
{
	struct timespec ts;
	int64_t now = wall_ms();

	if (now >= start_ms)
		return now - start_ms;
	ts.tv_sec = start_ms / 1000;
	ts.tv_nsec = (start_ms % 1000) * 1000000;
	while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen sign|lifecycle -u URL -D DEVDIR [-c conns] "
	    "[-s seconds] [-n count]\n"
	    "               [-r rate] [-k key] [-o officer,...] "
	    "[-v verify_every] [-a start_ms]\n");
	exit(2);
}

static void
parse_officers(struct opts *o, const char *list)
{
	const char *p = list, *comma;
	size_t n;

	o->nofficers = 0;
	while (*p != '\0') {
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n >= sizeof(o->officers[0]) ||
		    o->nofficers == MAX_OFFICERS)
			usage();
		memcpy(o->officers[o->nofficers], p, n);
		o->officers[o->nofficers][n] = '\0';
		o->nofficers++;
		p += n + (comma != NULL);
	}
	if (o->nofficers == 0)
		usage();
}

int
main(int argc, char **argv)
{
	static struct worker w[MAX_CONNS];
	struct opts o;
	uint64_t status[NSTATUS], faults[F_MAX];
	uint64_t ok = 0, verified = 0, new_conns = 0, errors = 0, attempts = 0;
	uint64_t created;
	uint64_t late = 0, start_ms;
	int64_t start_late_ms = 0;
	uint32_t *lat = NULL;
	size_t nlat = 0, i, s, started = 0;
	char path[1024], errs[1024];
	uint8_t nonce[16];
	int64_t t_last = 0, limit;
	struct rusage ru;
	double secs, rate, cpu = 0;
	int ch, rc = 1;
	size_t off;

	memset(&o, 0, sizeof(o));
	o.conns = 8;
	o.seconds = 10;
	o.count = MAX_REQUESTS;
	o.verify_every = 100;
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "sign") == 0)
		o.mode = MODE_SIGN;
	else if (strcmp(argv[1], "lifecycle") == 0)
		o.mode = MODE_LIFECYCLE;
	else
		usage();
	o.key = o.mode == MODE_SIGN ? "nightly" : "release";
	parse_officers(&o, "alice,bob,dave");
	optind = 2;
	while ((ch = getopt(argc, argv, "u:D:c:s:n:r:k:o:v:a:")) != -1) {
		switch (ch) {
		case 'u': o.url = optarg; break;
		case 'D': o.dev = optarg; break;
		case 'k': o.key = optarg; break;
		case 'o': parse_officers(&o, optarg); break;
		case 'c':
			if (sg_parse_u64(optarg, 1, MAX_CONNS, &o.conns) != 0)
				usage();
			break;
		case 's':
			if (sg_parse_u64(optarg, 1, MAX_SECONDS,
			    &o.seconds) != 0)
				usage();
			break;
		case 'n':
			if (sg_parse_u64(optarg, 1, MAX_REQUESTS,
			    &o.count) != 0)
				usage();
			break;
		case 'r':
			if (sg_parse_u64(optarg, 1, MAX_RATE, &o.rate) != 0)
				usage();
			break;
		case 'v':
			if (sg_parse_u64(optarg, 1, MAX_REQUESTS,
			    &o.verify_every) != 0)
				usage();
			break;
		case 'a':
			if (sg_parse_u64(optarg, 1, INT64_MAX,
			    &start_ms) != 0)
				usage();
			o.start_ms = (int64_t)start_ms;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o.url == NULL || o.dev == NULL)
		usage();
	if (!is_loopback_url(o.url)) {
		fprintf(stderr, "loadgen: loopback https URLs only\n");
		return 2;
	}
	if (o.rate > 0 && o.mode != MODE_SIGN) {
		fprintf(stderr, "loadgen: -r is for the sign mode\n");
		return 2;
	}
	if (o.start_ms > 0 && (o.start_ms > wall_ms() + MAX_START_OFF_MS ||
	    o.start_ms < wall_ms() - MAX_START_OFF_MS)) {
		fprintf(stderr, "loadgen: -a: more than %lld s from now\n",
		    MAX_START_OFF_MS / 1000);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	json_object_seed(0);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return 1;
	sg_hex_encode(nonce, sizeof(nonce), run_nonce);
	snprintf(path, sizeof(path), "%s/codesign/%s.pub.pem", o.dev, o.key);
	if ((w[0].pub = load_public_key(path)) == NULL) {
		fprintf(stderr, "loadgen: cannot load %s\n", path);
		goto out;
	}

	atomic_store(&go, 0);
	atomic_store(&stop, 0);
	atomic_store(&issued, 0);
	atomic_store(&ready, 0);
	for (i = 0; i < o.conns; i++) {
		w[i].idx = (unsigned)i;
		w[i].o = &o;
		w[i].pub = w[0].pub;
		if (pthread_create(&w[i].tid, NULL, run_worker, &w[i]) != 0) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			atomic_store(&stop, 1);
			break;
		}
		started++;
	}
	/* Connections are opened before the clock starts; a thread that
	 * cannot connect stops the run. */
	limit = sg_mono_us() + 60 * 1000000LL;
	while (atomic_load(&ready) < started && !atomic_load(&stop) &&
	    sg_mono_us() < limit)
		usleep(1000);
	if (atomic_load(&ready) < started)
		atomic_store(&stop, 1);
	else if (o.start_ms > 0)
		start_late_ms = wait_start(o.start_ms);
	t_start_us = sg_mono_us();
	t_end_us = t_start_us + (int64_t)o.seconds * 1000000;
	atomic_store(&go, 1);
	for (i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	if (started != o.conns || atomic_load(&ready) < started) {
		fprintf(stderr, "loadgen: not every connection could be set up\n");
		goto out;
	}

	memset(status, 0, sizeof(status));
	memset(faults, 0, sizeof(faults));
	for (i = 0; i < started; i++) {
		ok += w[i].ok;
		verified += w[i].verified;
		new_conns += w[i].new_conns;
		late += w[i].late;
		for (s = 0; s < NSTATUS; s++)
			status[s] += w[i].status[s];
		for (s = 0; s < F_MAX; s++)
			faults[s] += w[i].faults[s];
		nlat += w[i].nlat;
		if (w[i].last_done_us > t_last)
			t_last = w[i].last_done_us;
	}
	if ((lat = calloc(nlat > 0 ? nlat : 1, sizeof(*lat))) == NULL)
		goto out;
	for (i = 0, nlat = 0; i < started; i++) {
		if (w[i].nlat == 0)
			continue;
		memcpy(lat + nlat, w[i].lat, w[i].nlat * sizeof(*lat));
		nlat += w[i].nlat;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u32);

	/* Errors: every status but the expected one, then body faults. */
	off = 0;
	errs[0] = '\0';
	for (s = 0; s < NSTATUS; s++) {
		attempts += status[s];
		if (status[s] == 0 || s == 201 ||
		    (s == 200 && o.mode == MODE_LIFECYCLE))
			continue;
		errors += status[s];
		if (s == 0)
			off += (size_t)snprintf(errs + off, sizeof(errs) - off,
			    "%stransport:%" PRIu64, off ? "," : "", status[s]);
		else
			off += (size_t)snprintf(errs + off, sizeof(errs) - off,
			    "%shttp%zu:%" PRIu64, off ? "," : "", s, status[s]);
		if (off >= sizeof(errs))
			off = sizeof(errs) - 1;
	}
	for (s = 0; s < F_MAX; s++) {
		if (faults[s] == 0)
			continue;
		errors += faults[s];
		off += (size_t)snprintf(errs + off, sizeof(errs) - off,
		    "%s%s:%" PRIu64, off ? "," : "", fault_names[s], faults[s]);
		if (off >= sizeof(errs))
			off = sizeof(errs) - 1;
	}
	created = status[201];
	secs = t_last > t_start_us ? (t_last - t_start_us) / 1e6 : 0;
	rate = secs > 0 ? ok / secs : 0;
	printf("loadgen %s: %s key %s, %" PRIu64 " connections%s, "
	    "%.2f s\n", o.mode == MODE_SIGN ? "sign" : "lifecycle", o.url,
	    o.key, o.conns, o.rate > 0 ? " at a fixed rate" : "", secs);
	if (o.rate > 0)
		printf("  offered %" PRIu64 "/s (latency from each request's "
		    "scheduled time)\n", o.rate);
	if (o.start_ms > 0)
		printf("  clock started at the agreed time%s (%" PRId64
		    " ms late)\n", start_late_ms > 0 ? " or after" : "",
		    start_late_ms);
	printf("  %s: %" PRIu64 " completed, %.1f/s; HTTP exchanges %" PRIu64
	    "; errors %" PRIu64 " (%s)\n", o.mode == MODE_SIGN ?
	    "signatures" : "lifecycles", ok, rate, attempts, errors,
	    errors ? errs : "none");
	if (o.mode == MODE_LIFECYCLE)
		printf("  last approval answered pending (quorum met, signed "
		    "by the housekeeping thread; waited): %" PRIu64 "\n",
		    late);
	printf("  latency us: p50 %u  p90 %u  p99 %u  max %u  (%zu samples)\n",
	    pct(lat, nlat, 50), pct(lat, nlat, 90), pct(lat, nlat, 99),
	    nlat ? lat[nlat - 1] : 0, nlat);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
		    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	printf("  verified against %s.pub.pem: %" PRIu64 "; connections "
	    "opened during the run: %" PRIu64 "; loadgen CPU %.2f s\n",
	    o.key, verified, new_conns, cpu);
	printf("RESULT mode=%s conns=%" PRIu64 " offered=%" PRIu64
	    " seconds=%.3f completed=%" PRIu64 " exchanges=%" PRIu64
	    " errors=%" PRIu64 " rate=%.1f p50_us=%u p90_us=%u p99_us=%u"
	    " max_us=%u verified=%" PRIu64 " new_conns=%" PRIu64
	    " client_cpu_s=%.2f late=%" PRIu64 " created=%" PRIu64
	    " start_late_ms=%" PRId64 " error_detail=%s\n",
	    o.mode == MODE_SIGN ? "sign" : "lifecycle", o.conns, o.rate, secs,
	    ok, attempts, errors, rate, pct(lat, nlat, 50), pct(lat, nlat, 90),
	    pct(lat, nlat, 99), nlat ? lat[nlat - 1] : 0, verified, new_conns,
	    cpu, late, created, start_late_ms, errors ? errs : "none");
	rc = errors == 0 && ok > 0 && verified > 0 ? 0 : 1;
 out:
	for (i = 0; i < started; i++) {
		conn_close(&w[i].requester);
		for (s = 0; s < MAX_OFFICERS; s++) {
			conn_close(&w[i].officer[s]);
			EVP_PKEY_free(w[i].officer_key[s]);
		}
		free(w[i].lat);
	}
	EVP_PKEY_free(w[0].pub);
	free(lat);
	curl_global_cleanup();
	return rc;
}
