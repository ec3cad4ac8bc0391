/*
 * crashload: load, a ledger of what the daemon acknowledged, and the
 * checks that nothing acknowledged was lost, for the crash and I/O fault
 * tests.
 *
 *   crashload load DIR CYCLE SECONDS    concurrent clients until the daemon
 *                                       stops answering (it is killed) or
 *                                       SECONDS pass; prints "ready" at the
 *                                       first answer
 *   crashload drain DIR SECONDS         no new requests: finish every open
 *                                       one (retries, missing approvals)
 *                                       and fetch every signature
 *   crashload flow DIR TAG MONITOR      one client through the whole flow
 *                                       (nightly; release, three approvals,
 *                                       signed), with the checkpoint after
 *                                       each step, and `log monitor` (its
 *                                       state file MONITOR) at the end
 *   crashload verify DIR [FROM [final]] checks the ledger against the daemon
 *
 * Environment: SIGNGATE_URL (the daemon), SG_DEV (the development
 * environment: client certificates and the officers' key files), SIGNGATE
 * (the CLI, for `log monitor` in flow mode).
 *
 * The ledger DIR/journal is append-only text, one event a line, written
 * before a call (its intent) and after each answer, so that it survives
 * any number of runs and tells the next run what to retry:
 *
 *   U <idem> <key> <digest>               a create is sent
 *   C <idem> <status> <id> <state> <statement b64> <signature b64 | ->
 *   D <officer> <id>                      a decision is sent
 *   A <officer> <id> <status> <state> <signature b64 | ->  (200 or 409)
 *   S <id> <signature b64>                GET .../signature answered 200
 *   K <size> <root b64>                   a checkpoint that was served
 *   F <create|decide|get> <what> <status> a 503, another status, or no
 *                                         answer at all (status 0); 2 is
 *                                         a 503 with "recorded": the change
 *                                         was stored, but no signed
 *                                         checkpoint covered it yet
 *
 * A request is created with an Idempotency-Key; the body follows from the
 * key (digest = SHA-256 of it), so a create that got no answer is sent
 * again, identical, by the next run.  A decision without a 200 or 409 is
 * sent again too.  A replay (create 200, decision 409 "already decided")
 * is only right when an earlier attempt got no answer or a 503 that says
 * "recorded": after nothing but plain 503s it means a refused call was
 * kept.
 *
 * verify: every request acknowledged (2xx) exists with its id and its
 * statement; an Idempotency-Key names one request only; every acknowledged
 * approval is recorded; a request has at most one signature across every
 * answer, and the daemon still serves that one; no answer other than 2xx,
 * 409 for a replayed decision, 503 or none at all.  FROM (a byte offset
 * into the journal) limits the look-ups to requests named from there on.
 * With "final": every release with three acknowledged approvals is signed,
 * and every checkpoint ever served is consistent with the current one.
 *
 * Bounded: at most MAX_REQS requests and MAX_SECONDS per run.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_fixture.h"
#include "sg_merkle.h"
#include "sg_util.h"

#define MAX_REQS 20000
#define MAX_IDEMS 30000
#define MAX_CPS 20000
#define HASH_SLOTS 65536          /* a power of two, > 2 * MAX_REQS */
#define MAX_SECONDS 600
#define MAX_OPEN_RELEASES 6
#define NOFFICERS 3
#define MAX_REPORT 10
#define VERIFY_THREADS 4
#define ST_RECORDED 2             /* journal: a 503 that says "recorded" */

extern char **environ;

static const char *const officers[NOFFICERS] = { "alice", "bob", "dave" };

/* ------------------------------------------------------------------ */
/* HTTP */

struct client {
	CURL *h;
	char *body;
	size_t len;
	size_t cap;
	long status;
};

static const char *base_url;
static const char *dev;

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
	struct client *c = arg;
	size_t add = size * n;
	char *nb;

	if (c->len + add + 1 > c->cap) {
		size_t ncap = c->cap ? c->cap : 4096;
		while (ncap < c->len + add + 1)
			ncap *= 2;
		if (ncap > 4u * 1024 * 1024 || (nb = realloc(c->body,
		    ncap)) == NULL)
			return 0;
		c->body = nb;
		c->cap = ncap;
	}
	memcpy(c->body + c->len, p, add);
	c->len += add;
	c->body[c->len] = '\0';
	return add;
}

static int
client_init(struct client *c, const char *principal)
{
	char cert[4096], key[4096], ca[4096];

	memset(c, 0, sizeof(*c));
	if ((c->h = curl_easy_init()) == NULL)
		return -1;
	snprintf(ca, sizeof(ca), "%s/tls/ca.pem", dev);
	curl_easy_setopt(c->h, CURLOPT_CAINFO, ca);
	if (principal != NULL) {
		snprintf(cert, sizeof(cert), "%s/tls/%s.pem", dev, principal);
		snprintf(key, sizeof(key), "%s/tls/%s.key", dev, principal);
		curl_easy_setopt(c->h, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(c->h, CURLOPT_SSLKEY, key);
	}
	curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->h, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
	return 0;
}

static void
client_free(struct client *c)
{
	if (c->h != NULL)
		curl_easy_cleanup(c->h);
	free(c->body);
	memset(c, 0, sizeof(*c));
}

/* One call; returns the HTTP status, or 0 when no answer came. */
static long
http(struct client *c, const char *method, const char *path,
    const char *body, const char *idem)
{
	struct curl_slist *hdrs = NULL;
	char url[1024], h[256];
	CURLcode rc;

	c->len = 0;
	if (c->body != NULL)
		c->body[0] = '\0';
	c->status = 0;
	snprintf(url, sizeof(url), "%s%s", base_url, path);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	if (body != NULL) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		if (idem != NULL) {
			snprintf(h, sizeof(h), "Idempotency-Key: %s", idem);
			hdrs = curl_slist_append(hdrs, h);
		}
		curl_easy_setopt(c->h, CURLOPT_POST, 1L);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
	} else
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(c->h);
	curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK)
		return 0;
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &c->status);
	if (c->body == NULL) {
		/* An empty body: callers may still read it as a string. */
		if ((c->body = calloc(1, 1)) == NULL)
			return 0;
		c->cap = 1;
	}
	return c->status;
}

static json_t *
client_json(struct client *c)
{
	return c->body != NULL ? json_loads(c->body, 0, NULL) : NULL;
}

/* ------------------------------------------------------------------ */
/* The journal */

static int jfd = -1;
static pthread_mutex_t jlock = PTHREAD_MUTEX_INITIALIZER;

static void __attribute__((format(printf, 1, 2)))
jlog(const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	pthread_mutex_lock(&jlock);
	if (write(jfd, line, (size_t)n) != n || write(jfd, "\n", 1) != 1) {
		fprintf(stderr, "crashload: cannot write the journal\n");
		exit(2);
	}
	pthread_mutex_unlock(&jlock);
	free(line);
}

/* ------------------------------------------------------------------ */
/* What the journal knows */

struct attempts {
	unsigned n;               /* attempts made */
	unsigned noanswer;        /* of which got no answer */
	unsigned n503;            /* of which got 503 */
	int done;                 /* a definitive answer came */
	int busy;                 /* a thread is on it now */
};

struct intent {
	char idem[64];
	char key[16];
	struct attempts a;
	int id;                   /* index into reqs, -1 until known */
};

struct req {
	char id[33];
	char key[16];
	char *statement;
	char *sig;                /* the signature every answer must show */
	struct attempts dec[NOFFICERS];
	int approved[NOFFICERS];  /* acknowledged: 200, or 409 after a lost answer */
	int sig_fetched;
	int check;                /* named at or after FROM */
};

struct cp {
	uint64_t size;
	char root[64];
};

static pthread_mutex_t slock = PTHREAD_MUTEX_INITIALIZER;
static struct intent *intents;
static size_t nintents;
static struct req *reqs;
static size_t nreqs;
static struct cp *cps;
static size_t ncps;

/* Problems found while reading the journal or checking. */
struct report {
	const char *name;
	unsigned count;
	unsigned bad;
	char lines[MAX_REPORT][512];
};

static void __attribute__((format(printf, 2, 3)))
bad(struct report *r, const char *fmt, ...)
{
	va_list ap;

	if (r->bad < MAX_REPORT) {
		va_start(ap, fmt);
		vsnprintf(r->lines[r->bad], sizeof(r->lines[0]), fmt, ap);
		va_end(ap);
	}
	r->bad++;
}

static struct report rep_exist = { .name = "acknowledged requests exist with their "
    "id and statement" };
static struct report rep_idem = { .name = "each Idempotency-Key names one request" };
static struct report rep_appr = { .name = "acknowledged approvals are recorded" };
static struct report rep_sig = { .name = "acknowledged signatures are unchanged, one "
    "per request" };
static struct report rep_status = { .name = "answers were 2xx, 503 or none; a replay "
    "only after a lost answer" };
static struct report rep_final = { .name = "every release with three acknowledged "
    "approvals is signed" };
static struct report rep_cp = { .name = "every checkpoint served is consistent with "
    "the current one" };

static int
officer_index(const char *name)
{
	int i;

	for (i = 0; i < NOFFICERS; i++)
		if (strcmp(officers[i], name) == 0)
			return i;
	return -1;
}

/* Open addressing over indices + 1 (0: empty); never more than half full. */
static int req_index[HASH_SLOTS], intent_index[HASH_SLOTS];

static size_t
slot_of(const char *s)
{
	size_t h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h & (HASH_SLOTS - 1);
}

static int
find_req(const char *id)
{
	size_t h;

	for (h = slot_of(id); req_index[h] != 0; h = (h + 1) & (HASH_SLOTS - 1))
		if (strcmp(reqs[req_index[h] - 1].id, id) == 0)
			return req_index[h] - 1;
	return -1;
}

static int
add_req(const char *id, const char *key)
{
	size_t h;
	int i;

	if ((i = find_req(id)) >= 0)
		return i;
	if (nreqs >= MAX_REQS)
		return -1;
	memset(&reqs[nreqs], 0, sizeof(reqs[0]));
	snprintf(reqs[nreqs].id, sizeof(reqs[0].id), "%s", id);
	snprintf(reqs[nreqs].key, sizeof(reqs[0].key), "%s", key);
	for (h = slot_of(id); req_index[h] != 0; h = (h + 1) & (HASH_SLOTS - 1))
		;
	req_index[h] = (int)nreqs + 1;
	return (int)nreqs++;
}

static int
find_intent(const char *idem)
{
	size_t h;

	for (h = slot_of(idem); intent_index[h] != 0;
	    h = (h + 1) & (HASH_SLOTS - 1))
		if (strcmp(intents[intent_index[h] - 1].idem, idem) == 0)
			return intent_index[h] - 1;
	return -1;
}

static int
add_intent(const char *idem, const char *key)
{
	size_t h;
	int i;

	if ((i = find_intent(idem)) >= 0)
		return i;
	if (nintents >= MAX_IDEMS)
		return -1;
	memset(&intents[nintents], 0, sizeof(intents[0]));
	snprintf(intents[nintents].idem, sizeof(intents[0].idem), "%s", idem);
	snprintf(intents[nintents].key, sizeof(intents[0].key), "%s", key);
	intents[nintents].id = -1;
	for (h = slot_of(idem); intent_index[h] != 0;
	    h = (h + 1) & (HASH_SLOTS - 1))
		;
	intent_index[h] = (int)nintents + 1;
	return (int)nintents++;
}

/* Notes a signature seen for request i in an answer. */
static void
saw_signature(int i, const char *sig, const char *where)
{
	struct req *q = &reqs[i];

	if (sig == NULL || strcmp(sig, "-") == 0)
		return;
	if (q->sig == NULL)
		q->sig = strdup(sig);
	else if (strcmp(q->sig, sig) != 0)
		bad(&rep_sig, "request %s was answered with two signatures "
		    "(%s)", q->id, where);
}

/* A replay answer (create 200, decision 409) is right only if an earlier
 * attempt got no answer. */
static void
saw_replay(const struct attempts *a, const char *what)
{
	if (a->noanswer == 0)
		bad(&rep_status, "%s: a replay answer after %u attempt(s), "
		    "%u refused with 503 and none lost: a refused call was "
		    "kept", what, a->n, a->n503);
}

static char *
field(char **p)
{
	char *s = *p, *e;

	if (s == NULL || *s == '\0')
		return NULL;
	if ((e = strchr(s, ' ')) != NULL) {
		*e = '\0';
		*p = e + 1;
	} else
		*p = s + strlen(s);
	return s;
}

/* Reads the journal; lines from byte `from` on mark what they name. */
static int
load_journal(const char *path, long long from)
{
	FILE *f;
	char *line = NULL, *p, *t, *a[7];
	size_t cap = 0;
	ssize_t n;
	long long off = 0;
	int i, k, mark, nf;

	intents = calloc(MAX_IDEMS, sizeof(*intents));
	reqs = calloc(MAX_REQS, sizeof(*reqs));
	cps = calloc(MAX_CPS, sizeof(*cps));
	if (intents == NULL || reqs == NULL || cps == NULL)
		return -1;
	if ((f = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((n = getline(&line, &cap, f)) > 0) {
		mark = off >= from;
		off += n;
		if (line[n - 1] != '\n')
			break;          /* a torn last line: never written whole */
		line[n - 1] = '\0';
		p = line;
		t = field(&p);
		for (nf = 0; nf < 7 && (a[nf] = field(&p)) != NULL; nf++)
			;
		if (t == NULL)
			continue;
		if (strcmp(t, "U") == 0 && nf == 3) {
			if ((i = add_intent(a[0], a[1])) < 0)
				return -1;
			intents[i].a.n++;
		} else if (strcmp(t, "C") == 0 && nf == 6) {
			i = find_intent(a[0]);
			if (i < 0)
				continue;
			if (strcmp(a[1], "200") == 0)
				saw_replay(&intents[i].a, a[0]);
			if ((k = add_req(a[2], intents[i].key)) < 0)
				return -1;
			if (intents[i].id >= 0 && intents[i].id != k)
				bad(&rep_idem, "Idempotency-Key %s answered "
				    "with requests %s and %s", a[0],
				    reqs[intents[i].id].id, a[2]);
			intents[i].id = k;
			intents[i].a.done = 1;
			if (reqs[k].statement == NULL)
				reqs[k].statement = strdup(a[4]);
			else if (strcmp(reqs[k].statement, a[4]) != 0)
				bad(&rep_exist, "request %s was answered with "
				    "two statements", a[2]);
			saw_signature(k, a[5], "create");
			reqs[k].check |= mark;
		} else if (strcmp(t, "D") == 0 && nf == 2) {
			if ((i = find_req(a[1])) < 0 ||
			    (k = officer_index(a[0])) < 0)
				continue;
			reqs[i].dec[k].n++;
		} else if (strcmp(t, "A") == 0 && nf == 5) {
			if ((i = find_req(a[1])) < 0 ||
			    (k = officer_index(a[0])) < 0)
				continue;
			if (strcmp(a[2], "409") == 0) {
				char what[128];
				snprintf(what, sizeof(what), "%s on %s", a[0],
				    a[1]);
				saw_replay(&reqs[i].dec[k], what);
			}
			reqs[i].dec[k].done = 1;
			reqs[i].approved[k] = 1;
			saw_signature(i, a[4], "decision");
			reqs[i].check |= mark;
		} else if (strcmp(t, "S") == 0 && nf == 2) {
			if ((i = find_req(a[0])) < 0)
				continue;
			reqs[i].sig_fetched = 1;
			saw_signature(i, a[1], "signature");
			reqs[i].check |= mark;
		} else if (strcmp(t, "K") == 0 && nf == 2) {
			if (ncps < MAX_CPS) {
				cps[ncps].size = strtoull(a[0], NULL, 10);
				snprintf(cps[ncps].root, sizeof(cps[0].root),
				    "%s", a[1]);
				ncps++;
			}
		} else if (strcmp(t, "F") == 0 && nf == 3) {
			long st = strtol(a[2], NULL, 10);
			struct attempts *at = NULL;
			if (strcmp(a[0], "create") == 0 &&
			    (i = find_intent(a[1])) >= 0)
				at = &intents[i].a;
			else if (strcmp(a[0], "decide") == 0) {
				char *slash = strchr(a[1], '/');
				if (slash != NULL) {
					*slash = '\0';
					if ((k = officer_index(a[1])) >= 0 &&
					    (i = find_req(slash + 1)) >= 0)
						at = &reqs[i].dec[k];
					*slash = '/';
				}
			}
			if ((st == 0 || st == ST_RECORDED) && at != NULL)
				at->noanswer++;
			else if (st == 503 && at != NULL)
				at->n503++;
			else if (st != 0 && st != 503 && st != ST_RECORDED) {
				rep_status.count++;
				bad(&rep_status, "%s %s answered %ld", a[0],
				    a[1], st);
			}
		}
	}
	free(line);
	fclose(f);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests and decisions */

static void
digest_of(const char *idem, char hex[65])
{
	uint8_t h[32];
	char buf[128];

	snprintf(buf, sizeof(buf), "crashload %s", idem);
	sg_sha256(buf, strlen(buf), h);
	sg_hex_encode(h, sizeof(h), hex);
}

/* The body of a create follows from its key, so a retry is identical. */
static char *
create_body(const char *key, const char *idem)
{
	char hex[65], *s = NULL;

	digest_of(idem, hex);
	if (asprintf(&s, "{\"key\":\"%s\",\"digest\":{\"algorithm\":"
	    "\"sha256\",\"value\":\"%s\"},\"format\":\"raw\",\"artifact\":"
	    "{\"name\":\"crash.bin\",\"version\":\"%s\"}}", key, hex,
	    idem) < 0)
		return NULL;
	return s;
}

static const char *
jstr(json_t *j, const char *a, const char *b)
{
	json_t *v = json_object_get(j, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* b64 of a string, for one journal field. */
static char *
b64s(const char *s)
{
	return sg_b64_encode((const uint8_t *)s, strlen(s));
}

/* A 503 whose change was stored all the same ("recorded": true). */
static int
recorded_503(struct client *c, long st)
{
	json_t *j, *v;
	int yes;

	if (st != 503 || (j = client_json(c)) == NULL)
		return 0;
	v = json_object_get(j, "recorded");
	yes = json_is_true(v);
	json_decref(j);
	return yes;
}

/*
 * POSTs a create.  Returns the status (0: no answer); on a 2xx the request
 * is in the journal and *ret_req (if given) is its index.
 */
static long
do_create(struct client *c, int ii, int *ret_req)
{
	struct intent *in = &intents[ii];
	char *body, *stmt = NULL, hex[65];
	const char *id, *state, *st_text, *sig;
	json_t *j = NULL;
	long st;
	int k;

	if ((body = create_body(in->key, in->idem)) == NULL)
		return -1;
	digest_of(in->idem, hex);
	jlog("U %s %s %s", in->idem, in->key, hex);
	st = http(c, "POST", "/v1/requests", body, in->idem);
	free(body);
	pthread_mutex_lock(&slock);
	in->a.n++;
	pthread_mutex_unlock(&slock);
	if (st < 200 || st > 299) {
		int kept = recorded_503(c, st);
		jlog("F create %s %ld", in->idem, kept ? ST_RECORDED : st);
		pthread_mutex_lock(&slock);
		if (st == 0 || kept)
			in->a.noanswer++;
		else if (st == 503)
			in->a.n503++;
		else
			in->a.done = 1;    /* never right; verify says so */
		pthread_mutex_unlock(&slock);
		return st;
	}
	j = client_json(c);
	id = jstr(j, "id", NULL);
	state = jstr(j, "state", NULL);
	st_text = jstr(j, "statement", NULL);
	sig = jstr(j, "signature", "signature");
	if (id == NULL || state == NULL || st_text == NULL ||
	    (stmt = b64s(st_text)) == NULL) {
		jlog("F create %s 1", in->idem);
		json_decref(j);
		return st;
	}
	jlog("C %s %ld %s %s %s %s", in->idem, st, id, state, stmt,
	    sig ? sig : "-");
	pthread_mutex_lock(&slock);
	if (st == 200)
		saw_replay(&in->a, in->idem);
	in->a.done = 1;
	k = add_req(id, in->key);
	if (k >= 0) {
		in->id = k;
		if (reqs[k].statement == NULL)
			reqs[k].statement = strdup(stmt);
		saw_signature(k, sig, "create");
	}
	pthread_mutex_unlock(&slock);
	if (ret_req != NULL)
		*ret_req = k;
	free(stmt);
	json_decref(j);
	return st;
}

static EVP_PKEY *
officer_key(const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/officers/%s.key", dev, name);
	return sg_fx_read_key(path);
}

/* The DSSE envelope approving a statement (given in base64). */
static char *
approval(EVP_PKEY *key, const char *officer, const char *stmt_b64)
{
	uint8_t *stmt = NULL, *body = NULL, *pae = NULL, sig[512];
	size_t stmt_len, body_len, pae_len, sig_len = sizeof(sig);
	EVP_MD_CTX *md = NULL;
	char *env = NULL;

	if (sg_b64_decode(stmt_b64, strlen(stmt_b64), &stmt, &stmt_len) != 0 ||
	    sg_body_build((const char *)stmt, stmt_len, 1, &body,
	    &body_len) != 0 ||
	    sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae, &pae_len) != 0)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, pae, pae_len) != 1)
		goto out;
	if (sg_envelope_build(SG_DSSE_TYPE, body, body_len, officer, sig,
	    sig_len, &env) != 0)
		env = NULL;
out:
	EVP_MD_CTX_free(md);
	free(stmt);
	free(body);
	free(pae);
	return env;
}

/* POSTs officer o's approval of request i; returns the status (0: no
 * answer). */
static long
do_decide(struct client *c, EVP_PKEY *key, int o, int i)
{
	struct req *q = &reqs[i];
	struct attempts *at = &q->dec[o];
	char path[128], what[128], *env;
	const char *state, *sig;
	json_t *j;
	long st;
	int kept;

	if ((env = approval(key, officers[o], q->statement)) == NULL)
		return -1;
	snprintf(path, sizeof(path), "/v1/requests/%s/approvals", q->id);
	snprintf(what, sizeof(what), "%s on %s", officers[o], q->id);
	jlog("D %s %s", officers[o], q->id);
	st = http(c, "POST", path, env, NULL);
	free(env);
	pthread_mutex_lock(&slock);
	at->n++;
	pthread_mutex_unlock(&slock);
	if (st == 200 || st == 409) {
		j = st == 200 ? client_json(c) : NULL;
		state = st == 200 ? jstr(j, "state", NULL) : NULL;
		sig = st == 200 ? jstr(j, "signature", "signature") : NULL;
		jlog("A %s %s %ld %s %s", officers[o], q->id, st,
		    state ? state : "conflict", sig ? sig : "-");
		pthread_mutex_lock(&slock);
		if (st == 409)
			saw_replay(at, what);
		at->done = 1;
		q->approved[o] = 1;
		saw_signature(i, sig, "decision");
		pthread_mutex_unlock(&slock);
		json_decref(j);
		return st;
	}
	kept = recorded_503(c, st);
	jlog("F decide %s/%s %ld", officers[o], q->id, kept ? ST_RECORDED :
	    st);
	pthread_mutex_lock(&slock);
	if (st == 0 || kept)
		at->noanswer++;
	else if (st == 503)
		at->n503++;
	else
		at->done = 1;
	pthread_mutex_unlock(&slock);
	return st;
}

/* GET /v1/log/checkpoint into the journal. */
static long
do_checkpoint(struct client *c, uint64_t *ret_size)
{
	char *nl, *l2, *l3, *e3;
	long st;

	if ((st = http(c, "GET", "/v1/log/checkpoint", NULL, NULL)) != 200)
		return st;
	if (c->body == NULL || (nl = strchr(c->body, '\n')) == NULL)
		return st;
	l2 = nl + 1;
	if ((nl = strchr(l2, '\n')) == NULL)
		return st;
	*nl = '\0';
	l3 = nl + 1;
	if ((e3 = strchr(l3, '\n')) == NULL)
		return st;
	*e3 = '\0';
	jlog("K %s %s", l2, l3);
	if (ret_size != NULL)
		*ret_size = strtoull(l2, NULL, 10);
	return st;
}

/* GET the signature of request i; 200 goes into the journal. */
static long
do_get_signature(struct client *c, int i)
{
	char path[128];
	const char *sig;
	json_t *j;
	long st;

	snprintf(path, sizeof(path), "/v1/requests/%s/signature", reqs[i].id);
	if ((st = http(c, "GET", path, NULL, NULL)) != 200)
		return st;
	j = client_json(c);
	if ((sig = jstr(j, "signature", NULL)) != NULL) {
		jlog("S %s %s", reqs[i].id, sig);
		pthread_mutex_lock(&slock);
		reqs[i].sig_fetched = 1;
		saw_signature(i, sig, "signature");
		pthread_mutex_unlock(&slock);
	}
	json_decref(j);
	return st;
}

/* ------------------------------------------------------------------ */
/* load and drain */

static volatile int stop;
static int draining;
static int64_t deadline_us;
static unsigned cycle;
static unsigned counters[4];        /* creates, decisions, lost, other */

static int
time_left(void)
{
	return !stop && sg_mono_us() < deadline_us;
}

static void
nap(long ms)
{
	struct timespec ts = { 0, ms * 1000000L };

	nanosleep(&ts, NULL);
}

static int
open_releases(void)
{
	size_t i;
	int n = 0, o, open;

	for (i = 0; i < nreqs; i++) {
		if (strcmp(reqs[i].key, "release") != 0)
			continue;
		for (open = 0, o = 0; o < NOFFICERS; o++)
			if (!reqs[i].dec[o].done)
				open = 1;
		n += open;
	}
	for (i = 0; i < nintents; i++)
		if (strcmp(intents[i].key, "release") == 0 &&
		    !intents[i].a.done)
			n++;
	return n;
}

static void
count(int what)
{
	static int said;

	__atomic_add_fetch(&counters[what], 1, __ATOMIC_RELAXED);
	/* The first answer: the caller may start its clock now. */
	if (what != 2 && !__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED)) {
		printf("ready\n");
		fflush(stdout);
	}
}

struct creator_arg {
	const char *key;
	char prefix;
};

static void *
creator_main(void *arg)
{
	struct creator_arg *ca = arg;
	struct client c;
	unsigned seq = 0;
	size_t i;
	long st;
	int ii;

	if (client_init(&c, "ci") != 0)
		return NULL;
	while (time_left()) {
		char idem[64];
		ii = -1;
		pthread_mutex_lock(&slock);
		/* Unanswered ones first, the same body again. */
		for (i = 0; i < nintents; i++) {
			if (strcmp(intents[i].key, ca->key) == 0 &&
			    !intents[i].a.done && !intents[i].a.busy) {
				ii = (int)i;
				break;
			}
		}
		if (ii < 0 && !draining && (ca->prefix != 'r' ||
		    open_releases() < MAX_OPEN_RELEASES)) {
			snprintf(idem, sizeof(idem), "%c%u-%u", ca->prefix,
			    cycle, ++seq);
			ii = add_intent(idem, ca->key);
		}
		if (ii >= 0)
			intents[ii].a.busy = 1;
		pthread_mutex_unlock(&slock);
		if (ii < 0) {
			if (draining)
				break;
			nap(3);
			continue;
		}
		st = do_create(&c, ii, NULL);
		pthread_mutex_lock(&slock);
		intents[ii].a.busy = 0;
		pthread_mutex_unlock(&slock);
		count(st >= 200 && st <= 299 ? 0 : st == 0 ? 2 : 3);
		if (st == 0) {
			stop = 1;       /* the daemon is gone: all stop */
			break;
		}
		if (st == 503)
			nap(20);
	}
	client_free(&c);
	return NULL;
}

static void *
officer_main(void *arg)
{
	int o = (int)(intptr_t)arg;
	struct client c;
	EVP_PKEY *key;
	size_t i, n, cand[64];
	long st;
	int pick;

	if ((key = officer_key(officers[o])) == NULL) {
		fprintf(stderr, "crashload: cannot read %s's key\n",
		    officers[o]);
		return NULL;
	}
	if (client_init(&c, officers[o]) != 0) {
		EVP_PKEY_free(key);
		return NULL;
	}
	while (time_left()) {
		pick = -1;
		pthread_mutex_lock(&slock);
		for (n = 0, i = 0; i < nreqs && n < 64; i++)
			if (strcmp(reqs[i].key, "release") == 0 &&
			    reqs[i].statement != NULL &&
			    !reqs[i].dec[o].done && !reqs[i].dec[o].busy)
				cand[n++] = i;
		if (n > 0) {
			pick = (int)cand[(size_t)rand() % n];
			reqs[pick].dec[o].busy = 1;
		}
		pthread_mutex_unlock(&slock);
		if (pick < 0) {
			if (draining && open_releases() == 0)
				break;
			nap(3);
			continue;
		}
		st = do_decide(&c, key, o, pick);
		pthread_mutex_lock(&slock);
		reqs[pick].dec[o].busy = 0;
		pthread_mutex_unlock(&slock);
		count(st == 200 || st == 409 ? 1 : st == 0 ? 2 : 3);
		if (st == 0) {
			stop = 1;
			break;
		}
		if (st == 503)
			nap(20);
	}
	client_free(&c);
	EVP_PKEY_free(key);
	return NULL;
}

/* Fetches checkpoints, and the signature of every fully approved release. */
static void *
reader_main(void *arg)
{
	struct client c;
	size_t i;
	long st;
	int pick, o, all, left;

	(void)arg;
	if (client_init(&c, "audit") != 0)
		return NULL;
	while (time_left()) {
		if (do_checkpoint(&c, NULL) == 0) {
			stop = 1;
			break;
		}
		pick = -1;
		left = 0;
		pthread_mutex_lock(&slock);
		for (i = 0; i < nreqs; i++) {
			if (strcmp(reqs[i].key, "release") != 0 ||
			    reqs[i].sig_fetched)
				continue;
			for (all = 1, o = 0; o < NOFFICERS; o++)
				if (!reqs[i].approved[o])
					all = 0;
			if (!all)
				continue;
			left++;
			if (pick < 0)
				pick = (int)i;
		}
		pthread_mutex_unlock(&slock);
		if (pick >= 0) {
			if ((st = do_get_signature(&c, pick)) == 0) {
				stop = 1;
				break;
			}
			if (st != 200)
				nap(20);   /* the sweeper signs it soon */
		} else if (draining && open_releases() == 0)
			break;
		else
			nap(5);
	}
	client_free(&c);
	return NULL;
}

static int
run_load(const char *dir, unsigned seconds)
{
	static struct creator_arg nightly = { "nightly", 'n' };
	static struct creator_arg release = { "release", 'r' };
	pthread_t th[6];
	size_t nth = 0, i;
	int o;
	int left = 0;

	(void)dir;
	srand((unsigned)(getpid() ^ (unsigned)sg_mono_us()));
	deadline_us = sg_mono_us() + (int64_t)seconds * 1000000;
	if (pthread_create(&th[nth++], NULL, creator_main, &nightly) != 0 ||
	    pthread_create(&th[nth++], NULL, creator_main, &release) != 0 ||
	    pthread_create(&th[nth++], NULL, reader_main, NULL) != 0)
		return 2;
	for (o = 0; o < NOFFICERS; o++)
		if (pthread_create(&th[nth++], NULL, officer_main,
		    (void *)(intptr_t)o) != 0)
			return 2;
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	printf("answered: %u creates, %u decisions; %u calls lost, %u other\n",
	    counters[0], counters[1], counters[2], counters[3]);
	if (!draining)
		return 0;
	/* Drained: nothing may be left open. */
	for (i = 0; i < nintents; i++)
		if (!intents[i].a.done)
			left++;
	left += open_releases();
	for (i = 0; i < nreqs; i++) {
		int all = strcmp(reqs[i].key, "release") == 0;
		for (o = 0; all && o < NOFFICERS; o++)
			all = reqs[i].approved[o];
		if (all && !reqs[i].sig_fetched)
			left++;
	}
	if (left > 0) {
		printf("drain: %d requests still open\n", left);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* verify */

static size_t vnext;
static unsigned v_checked, v_approvals, v_sigs;

static void
verify_one(struct client *c, int i)
{
	struct req *q = &reqs[i];
	char path[128], *stmt = NULL;
	const char *text, *state, *sig;
	json_t *j = NULL, *apps, *a;
	size_t k;
	long st;
	int o, found, all;

	snprintf(path, sizeof(path), "/v1/requests/%s", q->id);
	if ((st = http(c, "GET", path, NULL, NULL)) != 200) {
		pthread_mutex_lock(&slock);
		bad(&rep_exist, "GET %s: %ld", path, st);
		pthread_mutex_unlock(&slock);
		return;
	}
	j = client_json(c);
	text = jstr(j, "statement", NULL);
	state = jstr(j, "state", NULL);
	pthread_mutex_lock(&slock);
	v_checked++;
	if (text == NULL || (stmt = b64s(text)) == NULL ||
	    q->statement == NULL || strcmp(stmt, q->statement) != 0)
		bad(&rep_exist, "request %s: the statement changed", q->id);
	apps = json_object_get(j, "approvals");
	for (all = 1, o = 0; o < NOFFICERS; o++) {
		if (!q->approved[o]) {
			all = 0;
			continue;
		}
		v_approvals++;
		found = 0;
		json_array_foreach(apps, k, a)
			if (jstr(a, "officer", NULL) != NULL &&
			    strcmp(jstr(a, "officer", NULL), officers[o]) == 0)
				found = 1;
		if (!found)
			bad(&rep_appr, "request %s: %s's acknowledged approval "
			    "is missing", q->id, officers[o]);
	}
	if (q->sig != NULL && (state == NULL || strcmp(state, "signed") != 0))
		bad(&rep_sig, "request %s was answered signed and is now %s",
		    q->id, state ? state : "(none)");
	if (strcmp(q->key, "release") == 0 && all && (state == NULL ||
	    strcmp(state, "signed") != 0))
		bad(&rep_final, "request %s has three approvals and is %s",
		    q->id, state ? state : "(none)");
	pthread_mutex_unlock(&slock);
	free(stmt);
	json_decref(j);
	if (q->sig == NULL)
		return;
	snprintf(path, sizeof(path), "/v1/requests/%s/signature", q->id);
	st = http(c, "GET", path, NULL, NULL);
	j = st == 200 ? client_json(c) : NULL;
	sig = jstr(j, "signature", NULL);
	pthread_mutex_lock(&slock);
	v_sigs++;
	if (st != 200 || sig == NULL || strcmp(sig, q->sig) != 0)
		bad(&rep_sig, "request %s: the signature served (%ld) is not "
		    "the one acknowledged", q->id, st);
	pthread_mutex_unlock(&slock);
	json_decref(j);
}

static void *
verify_main(void *arg)
{
	struct client c;
	size_t i;

	(void)arg;
	if (client_init(&c, "audit") != 0)
		return NULL;
	for (;;) {
		i = __atomic_fetch_add(&vnext, 1, __ATOMIC_RELAXED);
		if (i >= nreqs)
			break;
		if (reqs[i].check)
			verify_one(&c, (int)i);
	}
	client_free(&c);
	return NULL;
}

static int
b64_hash(const char *s, uint8_t out[SG_HASH_LEN])
{
	uint8_t *d = NULL;
	size_t n = 0;

	if (sg_b64_decode(s, strlen(s), &d, &n) != 0)
		return -1;
	if (n != SG_HASH_LEN) {
		free(d);
		return -1;
	}
	memcpy(out, d, SG_HASH_LEN);
	free(d);
	return 0;
}

/* Every distinct checkpoint the load saw against the one served now. */
static void
verify_checkpoints(void)
{
	struct client c;
	uint8_t old_root[SG_HASH_LEN], new_root[SG_HASH_LEN];
	uint8_t proof[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	uint64_t size = 0;
	char path[128], root[64];
	json_t *j, *h;
	size_t i, k, n;
	long st;

	if (client_init(&c, "audit") != 0)
		return;
	if (do_checkpoint(&c, &size) != 200 || c.body == NULL) {
		bad(&rep_cp, "the current checkpoint cannot be read");
		goto out;
	}
	/* do_checkpoint cut the body at the end of line 3. */
	snprintf(root, sizeof(root), "%s", c.body + strlen(c.body) + 1);
	if (b64_hash(root, new_root) != 0) {
		bad(&rep_cp, "the current checkpoint's root is malformed");
		goto out;
	}
	for (i = 0; i < ncps; i++) {
		for (k = 0; k < i; k++)
			if (cps[k].size == cps[i].size &&
			    strcmp(cps[k].root, cps[i].root) == 0)
				break;
		if (k < i)
			continue;       /* seen already */
		rep_cp.count++;
		if (b64_hash(cps[i].root, old_root) != 0) {
			bad(&rep_cp, "checkpoint %llu: malformed root",
			    (unsigned long long)cps[i].size);
			continue;
		}
		if (cps[i].size > size) {
			bad(&rep_cp, "a checkpoint of %llu entries was served; "
			    "the log now has %llu (rollback)",
			    (unsigned long long)cps[i].size,
			    (unsigned long long)size);
			continue;
		}
		if (cps[i].size == 0)
			continue;
		snprintf(path, sizeof(path), "/v1/log/proof/consistency?"
		    "old=%llu&new=%llu", (unsigned long long)cps[i].size,
		    (unsigned long long)size);
		if ((st = http(&c, "GET", path, NULL, NULL)) != 200) {
			bad(&rep_cp, "%s: %ld", path, st);
			continue;
		}
		j = client_json(&c);
		h = json_object_get(j, "hashes");
		n = json_array_size(h);
		for (k = 0; k < n && k < SG_MERKLE_MAX_PROOF; k++) {
			const char *s = json_string_value(json_array_get(h, k));
			if (s == NULL || b64_hash(s, proof[k]) != 0)
				break;
		}
		if (k != n || sg_merkle_verify_consistency(cps[i].size, size,
		    old_root, new_root, (const uint8_t (*)[SG_HASH_LEN])proof,
		    n) != 0)
			bad(&rep_cp, "the checkpoint of %llu entries served "
			    "earlier is not a prefix of the log of %llu (fork)",
			    (unsigned long long)cps[i].size,
			    (unsigned long long)size);
		json_decref(j);
	}
out:
	client_free(&c);
}

static int
print_report(const struct report *r, const char *extra)
{
	unsigned i;

	if (r->bad == 0) {
		printf("ok - %s%s\n", r->name, extra);
		return 0;
	}
	printf("not ok - %s%s: %u problem(s)\n", r->name, extra, r->bad);
	for (i = 0; i < r->bad && i < MAX_REPORT; i++)
		printf("    %s\n", r->lines[i]);
	return 1;
}

static int
run_verify(int final)
{
	pthread_t th[VERIFY_THREADS];
	char extra[128];
	size_t i;
	int fails = 0, n = 0;

	/* A connection per thread: one is enough for a short ledger. */
	for (i = 0; i < VERIFY_THREADS && i <= nreqs / 64; i++)
		if (pthread_create(&th[n], NULL, verify_main, NULL) == 0)
			n++;
	for (i = 0; i < (size_t)n; i++)
		pthread_join(th[i], NULL);
	if (final)
		verify_checkpoints();
	snprintf(extra, sizeof(extra), " (%u)", v_checked);
	fails += print_report(&rep_exist, extra);
	fails += print_report(&rep_idem, "");
	snprintf(extra, sizeof(extra), " (%u)", v_approvals);
	fails += print_report(&rep_appr, extra);
	snprintf(extra, sizeof(extra), " (%u)", v_sigs);
	fails += print_report(&rep_sig, extra);
	fails += print_report(&rep_status, "");
	if (final) {
		fails += print_report(&rep_final, "");
		snprintf(extra, sizeof(extra), " (%u)", rep_cp.count);
		fails += print_report(&rep_cp, extra);
	}
	return fails ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* flow */

static char monitor_state[4096];
static char flow_dir[4096];
static unsigned flow_errors;
static char statuses[1024];

static void __attribute__((format(printf, 1, 2)))
flow_err(const char *fmt, ...)
{
	va_list ap;

	printf("error: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	flow_errors++;
}

static void
note_status(long st, struct client *c)
{
	size_t n = strlen(statuses);

	snprintf(statuses + n, sizeof(statuses) - n, "%s%ld", n ? " " : "",
	    st);
	if (st == 503 && c->body != NULL && strstr(c->body, "\"signature\""))
		flow_err("a 503 carried a signature");
	if (st != 503 && (st < 200 || st > 299))
		flow_err("an answer %ld: %.300s", st, c->body ? c->body : "");
}

/* `signgate log monitor`: the log only grew since the last step. */
static void
monitor(const char *after)
{
	const char *cli = getenv("SIGNGATE");
	char *argv[] = { (char *)"signgate", (char *)"log", (char *)"monitor",
	    (char *)"--state", monitor_state, NULL };
	char out[sizeof(flow_dir) + 32], *text = NULL;
	posix_spawn_file_actions_t fa;
	size_t len;
	pid_t pid;
	int status = 0;

	if (cli == NULL) {
		flow_err("SIGNGATE is not set");
		return;
	}
	snprintf(out, sizeof(out), "%s/monitor.out", flow_dir);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT |
	    O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (posix_spawn(&pid, cli, &fa, NULL, argv, environ) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		flow_err("cannot run %s", cli);
		return;
	}
	posix_spawn_file_actions_destroy(&fa);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		if (sg_read_file(out, 65536, &text, &len) != 0)
			text = NULL;
		flow_err("log monitor after %s: %s", after,
		    text ? text : "(no output)");
		free(text);
	}
}

/* After a 503 on a create: a request with that digest exists if and only
 * if the 503 said "recorded". */
static void
absent_request(struct client *c, const char *key, const char *idem,
    int recorded)
{
	char path[128], hex[65];
	json_t *j, *r;
	size_t k;
	long st;
	int found = 0;

	digest_of(idem, hex);
	snprintf(path, sizeof(path), "/v1/requests?key=%s&limit=100", key);
	if ((st = http(c, "GET", path, NULL, NULL)) != 200) {
		flow_err("GET %s: %ld", path, st);
		return;
	}
	j = client_json(c);
	json_array_foreach(json_object_get(j, "requests"), k, r) {
		const char *v = jstr(r, "digest", "value");
		if (v != NULL && strcmp(v, hex) == 0) {
			found++;
			if (!recorded)
				flow_err("create %s answered 503 but request "
				    "%s exists", key, jstr(r, "id", NULL));
		}
	}
	if (recorded && found != 1)
		flow_err("create %s answered 503 \"recorded\" but %d "
		    "requests exist", key, found);
	json_decref(j);
}

/* The checkpoint after a step, for verify to check against the final log
 * (cheaper than a monitor run after each step, and as strict). */
static void
flow_checkpoint(struct client *c)
{
	long st;

	if ((st = do_checkpoint(c, NULL)) != 200)
		flow_err("GET /v1/log/checkpoint: %ld", st);
}

static int
flow_create(struct client *ci, struct client *audit, const char *key,
    const char *idem)
{
	long st;
	int ii, k = -1;

	ii = add_intent(idem, key);
	st = do_create(ci, ii, &k);
	note_status(st, ci);
	if (st == 503) {
		int kept = recorded_503(ci, st);
		absent_request(audit, key, idem, kept);
		/* Recorded: the retry has a checkpoint signed that covers
		 * it, and returns it. */
		st = do_create(ci, ii, &k);
		note_status(st, ci);
		if (st != (kept ? 200 : 201))
			flow_err("create %s: the retry after a 503%s answered "
			    "%ld, not %d", key, kept ? " (recorded)" : "", st,
			    kept ? 200 : 201);
	}
	return st >= 200 && st <= 299 ? k : -1;
}

static int
flow_decide(struct client *c, struct client *audit, EVP_PKEY *key, int o,
    int i)
{
	char path[128];
	json_t *j, *a;
	size_t k;
	long st;

	st = do_decide(c, key, o, i);
	note_status(st, c);
	if (st == 503 && recorded_503(c, st)) {
		/* Stored: sending it again is answered "already decided". */
		st = do_decide(c, key, o, i);
		note_status(st, c);
		if (st != 409)
			flow_err("%s's approval: the retry after a recorded 503 "
			    "answered %ld, not 409", officers[o], st);
		return st == 409 ? 0 : -1;
	}
	if (st == 503) {
		snprintf(path, sizeof(path), "/v1/requests/%s", reqs[i].id);
		if (http(audit, "GET", path, NULL, NULL) == 200) {
			j = client_json(audit);
			json_array_foreach(json_object_get(j, "approvals"),
			    k, a) {
				const char *who = jstr(a, "officer", NULL);
				if (who != NULL && strcmp(who, officers[o]) == 0)
					flow_err("%s's approval answered 503 "
					    "but was recorded", officers[o]);
			}
			json_decref(j);
		} else
			flow_err("GET %s failed", path);
		st = do_decide(c, key, o, i);
		note_status(st, c);
		if (st != 200)
			flow_err("%s's approval: the retry after a 503 "
			    "answered %ld", officers[o], st);
	}
	return st == 200 ? 0 : -1;
}

static int
run_flow(const char *tag)
{
	struct client ci, audit, off[NOFFICERS];
	EVP_PKEY *keys[NOFFICERS] = { NULL };
	char idem[64], path[160];
	const char *state = NULL;
	json_t *j = NULL;
	int64_t until;
	long st;
	int o, n, r;

	if (client_init(&ci, "ci") != 0 || client_init(&audit, "audit") != 0)
		return 2;
	for (o = 0; o < NOFFICERS; o++)
		if (client_init(&off[o], officers[o]) != 0 ||
		    (keys[o] = officer_key(officers[o])) == NULL)
			return 2;

	snprintf(idem, sizeof(idem), "nightly-%s", tag);
	if ((n = flow_create(&ci, &audit, "nightly", idem)) < 0)
		goto done;
	if (reqs[n].sig == NULL)
		flow_err("the nightly answer carries no signature");
	flow_checkpoint(&audit);
	snprintf(idem, sizeof(idem), "release-%s", tag);
	if ((r = flow_create(&ci, &audit, "release", idem)) < 0)
		goto done;
	flow_checkpoint(&audit);
	for (o = 0; o < NOFFICERS; o++) {
		if (flow_decide(&off[o], &audit, keys[o], o, r) != 0)
			goto done;
		flow_checkpoint(&audit);
	}
	/* Signed by the last approval, or (its write having failed) by the
	 * housekeeping thread a second or two later. */
	snprintf(path, sizeof(path), "/v1/requests/%s?wait=2", reqs[r].id);
	until = sg_mono_us() + 10 * 1000000;
	do {
		st = http(&audit, "GET", path, NULL, NULL);
		note_status(st, &audit);
		json_decref(j);
		j = client_json(&audit);
		state = jstr(j, "state", NULL);
		/* 503: signed, but no checkpoint covers it yet; the
		 * housekeeping thread signs one within a second. */
		if (st == 503)
			sleep(1);
	} while (((st == 200 && state != NULL && strcmp(state, "pending") ==
	    0) || st == 503) && sg_mono_us() < until);
	if (state == NULL || strcmp(state, "signed") != 0) {
		flow_err("the release is %s, not signed", state ? state :
		    "(unknown)");
		goto done;
	}
	st = do_get_signature(&audit, r);
	note_status(st, &audit);
	monitor("the release signature");
done:
	json_decref(j);
	printf("statuses: %s\n", statuses);
	client_free(&ci);
	client_free(&audit);
	for (o = 0; o < NOFFICERS; o++) {
		client_free(&off[o]);
		EVP_PKEY_free(keys[o]);
	}
	return flow_errors ? 1 : 0;
}

/* ------------------------------------------------------------------ */

static void
usage(void)
{
	fprintf(stderr, "usage: crashload load DIR CYCLE SECONDS\n"
	    "       crashload drain DIR SECONDS\n"
	    "       crashload flow DIR TAG MONITOR_STATE\n"
	    "       crashload verify DIR [FROM [final]]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	char path[4096];
	uint64_t v, from = 0;
	int r;

	if (argc < 3)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if ((base_url = getenv("SIGNGATE_URL")) == NULL ||
	    (dev = getenv("SG_DEV")) == NULL) {
		fprintf(stderr, "crashload: SIGNGATE_URL and SG_DEV must be "
		    "set\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/journal", argv[2]);
	if (strcmp(argv[1], "verify") == 0 && argc >= 4 &&
	    sg_parse_u64(argv[3], 0, INT64_MAX, &from) != 0)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return 2;
	if (load_journal(path, (long long)from) != 0) {
		fprintf(stderr, "crashload: cannot read %s\n", path);
		return 2;
	}
	if ((jfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600)) < 0) {
		fprintf(stderr, "crashload: cannot open %s\n", path);
		return 2;
	}
	snprintf(flow_dir, sizeof(flow_dir), "%s", argv[2]);
	if (strcmp(argv[1], "load") == 0 && argc == 5 &&
	    sg_parse_u64(argv[3], 0, UINT32_MAX, &v) == 0) {
		cycle = (unsigned)v;
		if (sg_parse_u64(argv[4], 1, MAX_SECONDS, &v) != 0)
			usage();
		r = run_load(argv[2], (unsigned)v);
	} else if (strcmp(argv[1], "drain") == 0 && argc == 4 &&
	    sg_parse_u64(argv[3], 1, MAX_SECONDS, &v) == 0) {
		draining = 1;
		r = run_load(argv[2], (unsigned)v);
	} else if (strcmp(argv[1], "flow") == 0 && argc == 5) {
		snprintf(monitor_state, sizeof(monitor_state), "%s", argv[4]);
		r = run_flow(argv[3]);
	} else if (strcmp(argv[1], "verify") == 0 && argc <= 5) {
		r = run_verify(argc == 5 && strcmp(argv[4], "final") == 0);
	} else
		usage();
	close(jfd);
	curl_global_cleanup();
	return r;
}
