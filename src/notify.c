/*
 * Notifications: events into the outbox, and their delivery to webhooks.
 *
 * Writers never wait for a receiver: the store's change hook (the
 * service's, src/service_notify.c) renders the event and calls
 * sg_notify_queue(), which inserts one outbox row per webhook inside the
 * change's own transaction.  One thread per gateway then works through
 * the outbox: every half second, while fewer than NOTIFY_BATCH deliveries
 * are in flight, it looks whether rows of its webhooks are due and claims
 * as many as there is room for with a lease (a write job of their own,
 * src/store_outbox.c); the POSTs run side by side on one libcurl multi
 * handle, and each is recorded as soon as it ends (a write job for those
 * that ended together), so that a slow receiver holds up only its own: a
 * 2xx is delivered; anything else, a timeout (connect 5 s, total 10 s)
 * or a refused connection is tried again after sg_notify_backoff().
 *
 * Each POST carries Signgate-Event-Id, Signgate-Timestamp (unix seconds)
 * and Signgate-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." +
 * body)> over the exact bytes sent, the Slack body included.
 *
 * Stopping: the thread polls its abort flag at least every 100 ms, in the
 * wait and inside curl's loop, so a dead receiver never holds a shutdown.
 * Rows it had claimed keep their lease; the next start on this gateway
 * gives them up (sg_store_outbox_release), another gateway waits for
 * the lease to run out.
 *
 * Secrets: each webhook's key is read once from its file at open, kept
 * in memory for the HMAC only, wiped at free; never logged.
 *
 * Locks: n->lock guards the stop flag, its condition and the counters.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_notify.h"
#include "sg_types.h"
#include "sg_util.h"

/* Deliveries claimed and tried at once. */
#define NOTIFY_BATCH 32
/* A claim outlives the longest try (10 s) with room to record it. */
#define NOTIFY_LEASE_SECONDS 60
#define NOTIFY_POLL_MS 500
#define NOTIFY_PRUNE_SECONDS 600
/* What is read of a receiver's answer (it is not used). */
#define NOTIFY_ANSWER_MAX 4096
#define NOTIFY_SECRET_MAX 4096
#define NOTIFY_SLACK_MAX 1500

/* ---- the pure part ---- */

int
sg_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg,
    size_t len, uint8_t out[SG_HMAC_SHA256_LEN])
{
	unsigned int outlen = 0;

	if (keylen > INT32_MAX)
		return SG_ERR_INVALID;
	if (HMAC(EVP_sha256(), key, (int)keylen, msg, len, out,
	    &outlen) == NULL || outlen != SG_HMAC_SHA256_LEN)
		return SG_ERR_CRYPTO;
	return 0;
}

int
sg_notify_signature(const uint8_t *secret, size_t secret_len,
    int64_t timestamp, const char *body, size_t body_len,
    char out[SG_NOTIFY_SIG_SIZE])
{
	uint8_t mac[SG_HMAC_SHA256_LEN];
	char *msg = NULL;
	int n, r;

	out[0] = '\0';
	if (body_len > SIZE_MAX - 32 || (msg = malloc(body_len + 32)) == NULL)
		return SG_ERR_NOMEM;
	n = snprintf(msg, 32, "%lld.", (long long)timestamp);
	memcpy(msg + n, body, body_len);
	r = sg_hmac_sha256(secret, secret_len, (const uint8_t *)msg,
	    (size_t)n + body_len, mac);
	free(msg);
	if (r != 0)
		return r;
	memcpy(out, "v1=", 3);
	sg_hex_encode(mac, sizeof(mac), out + 3);
	return 0;
}

unsigned
sg_notify_backoff(unsigned attempt, unsigned max_seconds, uint32_t rnd)
{
	unsigned d = 1, half;

	if (max_seconds == 0)
		max_seconds = 1;
	while (attempt > 1 && d < max_seconds) {
		d *= 2;
		attempt--;
	}
	if (d > max_seconds)
		d = max_seconds;
	/* Jitter: d less up to half of it, so that gateways and webhooks
	 * that failed together do not all come back at once. */
	half = d / 2;
	if (half > 0)
		d -= rnd % (half + 1);
	return d > 0 ? d : 1;
}

int
sg_notify_wants(const struct sg_webhook_config *w, const char *type)
{
	const char *dot = strchr(type, '.');
	size_t i, kl;

	if (w->nevents == 0)
		return 1;
	if (dot == NULL)
		return 0;
	kl = (size_t)(dot - type);
	for (i = 0; i < w->nevents; i++) {
		const char *f = w->events[i], *fdot = strchr(f, '.');

		if (strcmp(f, "*") == 0 || strcmp(f, type) == 0)
			return 1;
		if (fdot == NULL)
			continue;
		/* "kind.*" and "*.what" */
		if (strcmp(fdot + 1, "*") == 0 && (size_t)(fdot - f) == kl &&
		    strncmp(f, type, kl) == 0)
			return 1;
		if (fdot - f == 1 && f[0] == '*' && strcmp(fdot, dot) == 0)
			return 1;
	}
	return 0;
}

int
sg_notify_event_id(char out[SG_OUTBOX_ID_SIZE])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return SG_ERR_CRYPTO;
	sg_hex_encode(b, sizeof(b), out);
	return 0;
}

int
sg_notify_event_type(enum sg_kind k, const struct sg_store_change *c,
    char out[SG_OUTBOX_TYPE_SIZE])
{
	const char *what;

	switch (c->what) {
	case SG_CHANGE_CREATED:
		what = "created";
		break;
	case SG_CHANGE_DECISION:
		what = "approval";
		break;
	case SG_CHANGE_STATE:
		if (!sg_req_state_valid(c->state) ||
		    c->state == SG_REQ_PENDING)
			return SG_ERR_INVALID;
		what = sg_req_state_str(c->state);
		break;
	default:
		return SG_ERR_INVALID;
	}
	if ((size_t)snprintf(out, SG_OUTBOX_TYPE_SIZE, "%s.%s", sg_kind_str(k),
	    what) >= SG_OUTBOX_TYPE_SIZE)
		return SG_ERR_INVALID;
	return 0;
}

static void
set_time(json_t *j, const char *name, int64_t t)
{
	char buf[32];

	sg_time_rfc3339((time_t)t, buf, sizeof(buf));
	json_object_set_new(j, name, json_string(buf));
}

/* What a release or grant (or a request under a grant) adds. */
static void
object_kind_json(json_t *o, const struct sg_request *q)
{
	struct sg_statement st;
	json_t *meta;

	if (q->grant_id[0] != '\0')
		json_object_set_new(o, "grant", json_pack("{s:s, s:I}", "id",
		    q->grant_id, "sequence", (json_int_t)q->grant_seq));
	if (q->kind == SG_KIND_REQUEST)
		return;
	memset(&st, 0, sizeof(st));
	if (q->statement != NULL)
		(void)sg_statement_parse(q->statement, strlen(q->statement),
		    &st);
	json_object_set_new(o, "count", json_integer((json_int_t)q->count));
	if (q->kind == SG_KIND_RELEASE) {
		meta = q->artifact_json != NULL ?
		    json_loads(q->artifact_json, 0, NULL) : NULL;
		json_object_set_new(o, "release", meta != NULL ? meta :
		    json_object());
		json_object_set_new(o, "signed",
		    json_integer((json_int_t)q->signed_count));
		return;
	}
	json_object_set_new(o, "used", json_integer((json_int_t)q->used));
	json_object_set_new(o, "artifact", json_string(st.pattern));
}

static json_t *
object_json(const struct sg_notify_event *ev)
{
	const struct sg_request *q = ev->object;
	json_t *o, *artifact, *missing;
	size_t i;

	o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", q->id, "state",
	    sg_req_state_str(q->state), "key", q->key, "requester",
	    q->requester, "format", sg_format_str(q->format));
	if (o == NULL)
		return NULL;
	set_time(o, "created_at", q->created_at);
	set_time(o, "expires_at", q->expires_at);
	if (q->kind == SG_KIND_REQUEST) {
		json_object_set_new(o, "digest", json_pack("{s:s, s:s}",
		    "algorithm", q->digest_alg, "value", q->digest_hex));
		artifact = q->artifact_json != NULL ?
		    json_loads(q->artifact_json, 0, NULL) : NULL;
		json_object_set_new(o, "artifact", artifact != NULL ?
		    artifact : json_object());
	}
	object_kind_json(o, q);
	json_object_set_new(o, "approvals",
	    json_integer((json_int_t)q->napprovals));
	missing = json_array();
	for (i = 0; i < ev->nterms; i++)
		json_array_append_new(missing, json_pack("{s:s, s:i, s:i}",
		    "group", ev->terms[i].group, "count",
		    (int)ev->terms[i].count, "missing",
		    (int)ev->terms[i].missing));
	json_object_set_new(o, "missing", missing);
	return o;
}

int
sg_notify_event_json(const struct sg_notify_event *ev, char **ret)
{
	json_t *j = NULL, *o;
	int r = SG_ERR_NOMEM;

	*ret = NULL;
	if (ev->object == NULL)
		return SG_ERR_INVALID;
	if ((j = json_pack("{s:s, s:s}", "id", ev->id, "type",
	    ev->type)) == NULL)
		goto out;
	set_time(j, "at", ev->at);
	if ((o = object_json(ev)) == NULL)
		goto out;
	json_object_set_new(j, sg_kind_str(ev->object->kind), o);
	if (ev->officer != NULL)
		json_object_set_new(j, "officer", json_string(ev->officer));
	if (ev->decision >= 0)
		json_object_set_new(j, "decision", json_string(ev->decision ?
		    "approve" : "reject"));
	if (ev->reason != NULL)
		json_object_set_new(j, "reason", json_string(ev->reason));
	json_object_set_new(j, "gateway", json_string(ev->gateway != NULL ?
	    ev->gateway : ""));
	if ((*ret = json_dumps(j, JSON_COMPACT)) != NULL)
		r = 0;
out:
	json_decref(j);
	return r;
}

/* Appends s to b (cap bytes), escaped as Slack wants (&, <, >). */
static void
slack_put(char *b, size_t cap, const char *s)
{
	size_t n = strlen(b);
	const char *e;

	for (; *s != '\0' && n + 6 < cap; s++) {
		e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" :
		    *s == '>' ? "&gt;" : NULL;
		if (e != NULL) {
			memcpy(b + n, e, strlen(e));
			n += strlen(e);
		} else
			b[n++] = *s;
	}
	b[n] = '\0';
}

static const char *
jstr(json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s != NULL ? s : "";
}

/* "needs 2 of security-officers, 1 of release-managers" */
static void
slack_missing(char *b, size_t cap, json_t *missing, const char *lead)
{
	json_t *m;
	size_t i;
	char num[24];

	if (json_array_size(missing) == 0)
		return;
	slack_put(b, cap, lead);
	json_array_foreach(missing, i, m) {
		snprintf(num, sizeof(num), "%s%lld of ", i ? ", " : "",
		    (long long)json_integer_value(json_object_get(m,
		    "missing")));
		slack_put(b, cap, num);
		slack_put(b, cap, jstr(m, "group"));
	}
}

int
sg_notify_slack_body(const char *event_json, char **ret)
{
	static const char *const kinds[] = { "request", "release", "grant" };
	char b[NOTIFY_SLACK_MAX], what[64];
	const char *type, *verb, *kind = NULL;
	json_t *ev, *o = NULL, *art, *out;
	size_t i;
	int r = SG_ERR_INVALID;

	*ret = NULL;
	if ((ev = json_loads(event_json, 0, NULL)) == NULL)
		return SG_ERR_INVALID;
	type = jstr(ev, "type");
	for (i = 0; i < 3 && o == NULL; i++)
		if ((o = json_object_get(ev, kinds[i])) != NULL)
			kind = kinds[i];
	if (o == NULL || (verb = strchr(type, '.')) == NULL)
		goto out;
	verb++;
	b[0] = '\0';
	slack_put(b, sizeof(b), "signgate: ");
	slack_put(b, sizeof(b), kind);
	slack_put(b, sizeof(b), " ");
	slack_put(b, sizeof(b), jstr(o, "id"));
	slack_put(b, sizeof(b), " (key ");
	slack_put(b, sizeof(b), jstr(o, "key"));
	art = json_object_get(o, strcmp(kind, "release") == 0 ? "release" :
	    "artifact");
	if (json_is_string(art)) {              /* a grant's pattern */
		slack_put(b, sizeof(b), ", ");
		slack_put(b, sizeof(b), json_string_value(art));
	} else if (json_is_object(art) &&
	    json_object_get(art, "name") != NULL) {
		slack_put(b, sizeof(b), ", ");
		slack_put(b, sizeof(b), jstr(art, "name"));
		if (json_object_get(art, "version") != NULL) {
			slack_put(b, sizeof(b), " ");
			slack_put(b, sizeof(b), jstr(art, "version"));
		}
	}
	slack_put(b, sizeof(b), ", by ");
	slack_put(b, sizeof(b), jstr(o, "requester"));
	slack_put(b, sizeof(b), "): ");
	if (strcmp(verb, "created") == 0) {
		slack_put(b, sizeof(b), "created");
		slack_missing(b, sizeof(b), json_object_get(o, "missing"),
		    ", waits for approval: needs ");
	} else if (strcmp(verb, "approval") == 0) {
		snprintf(what, sizeof(what), "%s by ",
		    strcmp(jstr(ev, "decision"), "approve") == 0 ?
		    "approved" : "rejected");
		slack_put(b, sizeof(b), what);
		slack_put(b, sizeof(b), jstr(ev, "officer"));
		slack_missing(b, sizeof(b), json_object_get(o, "missing"),
		    "; still needs ");
	} else {
		slack_put(b, sizeof(b), verb);
		if (json_object_get(ev, "officer") != NULL) {
			slack_put(b, sizeof(b), " by ");
			slack_put(b, sizeof(b), jstr(ev, "officer"));
		}
		if (json_object_get(ev, "reason") != NULL) {
			slack_put(b, sizeof(b), ": ");
			slack_put(b, sizeof(b), jstr(ev, "reason"));
		}
	}
	if ((out = json_pack("{s:s}", "text", b)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	*ret = json_dumps(out, JSON_COMPACT);
	json_decref(out);
	r = *ret != NULL ? 0 : SG_ERR_NOMEM;
out:
	json_decref(ev);
	return r;
}

/* ---- the delivery thread ---- */

struct webhook {
	const struct sg_webhook_config *c;
	uint8_t *secret;
	size_t secret_len;
};

struct sg_notify {
	const struct sg_notify_config *c;
	struct sg_store *st;
	char gateway[SG_NAME_SIZE];
	struct webhook hooks[SG_NOTIFY_MAX_WEBHOOKS];
	const char *names[SG_NOTIFY_MAX_WEBHOOKS];
	size_t nhooks;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	uint64_t pending, delivered, failures;
};

int
sg_notify_open(const struct sg_notify_config *c, struct sg_store *st,
    const char *gateway, struct sg_notify **ret, char *errbuf, size_t errlen)
{
	struct sg_notify *n;
	char *secret;
	size_t i, len;
	int r;

	*ret = NULL;
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return SG_ERR_NOMEM;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	n->c = c;
	n->st = st;
	snprintf(n->gateway, sizeof(n->gateway), "%s", gateway);
	for (i = 0; i < c->nwebhooks; i++) {
		const struct sg_webhook_config *w = &c->webhooks[i];

		if ((r = sg_read_secret_file_max(w->secret_file,
		    NOTIFY_SECRET_MAX, &secret, &len)) != 0) {
			snprintf(errbuf, errlen, "notify.webhooks[%zu] (%s): "
			    "secret_file %s cannot be read: %s", i, w->name,
			    w->secret_file, sg_strerror(r));
			goto fail;
		}
		/* As sg_read_secret_file: a trailing line end is not part
		 * of the key. */
		while (len > 0 && (secret[len - 1] == '\n' ||
		    secret[len - 1] == '\r'))
			secret[--len] = '\0';
		n->hooks[i].c = w;
		n->hooks[i].secret = (uint8_t *)secret;
		n->hooks[i].secret_len = len;
		n->names[i] = w->name;
		n->nhooks++;
		if (len < 16) {
			snprintf(errbuf, errlen, "notify.webhooks[%zu] (%s): "
			    "secret_file %s holds fewer than 16 bytes", i,
			    w->name, w->secret_file);
			r = SG_ERR_INVALID;
			goto fail;
		}
	}
	*ret = n;
	return 0;
fail:
	sg_notify_free(n);
	return r;
}

int
sg_notify_queue(struct sg_notify *n, struct sg_txn *t,
    const struct sg_notify_event *ev, const char *body)
{
	size_t i;
	int r;

	for (i = 0; i < n->nhooks; i++) {
		if (!sg_notify_wants(n->hooks[i].c, ev->type))
			continue;
		if ((r = sg_store_outbox_put(t, ev->id, n->hooks[i].c->name,
		    ev->type, ev->object->id, body, ev->at)) != 0)
			return r;
	}
	return 0;
}

void
sg_notify_stats(struct sg_notify *n, uint64_t *ret_pending,
    uint64_t *ret_delivered, uint64_t *ret_failures)
{
	uint64_t pending = 0, due;

	*ret_pending = *ret_delivered = *ret_failures = 0;
	if (n == NULL)
		return;
	/* Read now: the thread's last look may be half a second old. */
	if (sg_store_outbox_pending(n->st, n->names, n->nhooks,
	    (int64_t)time(NULL), &pending, &due) != 0)
		pending = UINT64_MAX;
	pthread_mutex_lock(&n->lock);
	*ret_pending = pending != UINT64_MAX ? pending : n->pending;
	*ret_delivered = n->delivered;
	*ret_failures = n->failures;
	pthread_mutex_unlock(&n->lock);
}

static int
stopping(struct sg_notify *n)
{
	int s;

	pthread_mutex_lock(&n->lock);
	s = n->stop;
	pthread_mutex_unlock(&n->lock);
	return s;
}

/* Waits ms, or less if asked to stop; 1 if stopping. */
static int
nap(struct sg_notify *n, int ms)
{
	struct timespec ts;
	int s;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&n->lock);
	if (!n->stop)
		pthread_cond_timedwait(&n->cond, &n->lock, &ts);
	s = n->stop;
	pthread_mutex_unlock(&n->lock);
	return s;
}

static const struct webhook *
hook_named(struct sg_notify *n, const char *name)
{
	size_t i;

	for (i = 0; i < n->nhooks; i++)
		if (strcmp(n->hooks[i].c->name, name) == 0)
			return &n->hooks[i];
	return NULL;
}

/* One POST in flight; it owns its row. */
struct delivery {
	struct sg_outbox_row row;
	CURL *curl;
	struct curl_slist *headers;
	char *body;
	size_t answer;                 /* bytes of the answer read */
	int done, ok;
	char why[160];
};

static size_t
discard(char *p, size_t size, size_t nmemb, void *arg)
{
	struct delivery *d = arg;

	(void)p;
	d->answer += size * nmemb;
	if (d->answer > NOTIFY_ANSWER_MAX)
		return 0;              /* enough: the status is known */
	return size * nmemb;
}

static int
delivery_setup(struct sg_notify *n, struct delivery *d, int64_t now)
{
	const struct webhook *h = hook_named(n, d->row.webhook);
	char sig[SG_NOTIFY_SIG_SIZE], lines[5][160];
	struct curl_slist *nh;
	size_t i;

	if (h == NULL)
		return SG_ERR_NOT_FOUND;
	if (h->c->format == SG_WEBHOOK_SLACK) {
		if (sg_notify_slack_body(d->row.body, &d->body) != 0)
			return SG_ERR_INVALID;
	} else if ((d->body = strdup(d->row.body)) == NULL)
		return SG_ERR_NOMEM;
	if (sg_notify_signature(h->secret, h->secret_len, now, d->body,
	    strlen(d->body), sig) != 0)
		return SG_ERR_CRYPTO;
	snprintf(lines[0], sizeof(lines[0]), "Content-Type: application/json");
	snprintf(lines[1], sizeof(lines[1]), "Signgate-Event-Id: %s",
	    d->row.event_id);
	snprintf(lines[2], sizeof(lines[2]), "Signgate-Timestamp: %lld",
	    (long long)now);
	snprintf(lines[3], sizeof(lines[3]), "Signgate-Signature: %s", sig);
	/* No "Expect: 100-continue" round trip. */
	snprintf(lines[4], sizeof(lines[4]), "Expect:");
	for (i = 0; i < 5; i++) {
		if ((nh = curl_slist_append(d->headers, lines[i])) == NULL)
			return SG_ERR_NOMEM;
		d->headers = nh;
	}
	if ((d->curl = curl_easy_init()) == NULL)
		return SG_ERR_NOMEM;
#define SET(opt, val)							\
	if (curl_easy_setopt(d->curl, (opt), (val)) != CURLE_OK)	\
		return SG_ERR_INTERNAL
	SET(CURLOPT_URL, h->c->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)SG_NOTIFY_CONNECT_MS);
	SET(CURLOPT_TIMEOUT_MS, (long)SG_NOTIFY_TOTAL_MS);
	SET(CURLOPT_HTTPHEADER, d->headers);
	SET(CURLOPT_POSTFIELDS, d->body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(d->body));
	SET(CURLOPT_WRITEFUNCTION, discard);
	SET(CURLOPT_WRITEDATA, d);
	SET(CURLOPT_PRIVATE, d);
	if (h->c->ca_file != NULL)
		SET(CURLOPT_CAINFO, h->c->ca_file);
#undef SET
	return 0;
}

static void
delivery_free(CURLM *m, struct delivery *d)
{
	if (d == NULL)
		return;
	if (d->curl != NULL) {
		curl_multi_remove_handle(m, d->curl);
		curl_easy_cleanup(d->curl);
	}
	curl_slist_free_all(d->headers);
	free(d->body);
	free(d->row.body);
	free(d);
}

static void
delivery_finish(struct delivery *d, CURLcode cr)
{
	long status = 0;

	d->done = 1;
	if (cr != CURLE_OK && !(cr == CURLE_WRITE_ERROR &&
	    d->answer > NOTIFY_ANSWER_MAX)) {
		snprintf(d->why, sizeof(d->why), "%s", curl_easy_strerror(cr));
		return;
	}
	curl_easy_getinfo(d->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status >= 200 && status <= 299) {
		d->ok = 1;
		return;
	}
	snprintf(d->why, sizeof(d->why), "HTTP status %ld", status);
}

/* The deliveries in flight, NOTIFY_BATCH at most, on one multi handle. */
struct flight {
	CURLM *m;
	struct delivery *d[NOTIFY_BATCH];
	size_t n;
};

/* Claims due rows, as many as there is room for, and starts them. */
static void
take_off(struct sg_notify *n, struct flight *f, int64_t now)
{
	struct sg_outbox_row *rows = NULL;
	struct delivery *d;
	size_t nrows = 0, i;

	if (sg_store_outbox_claim(n->st, n->names, n->nhooks, now,
	    NOTIFY_LEASE_SECONDS, NOTIFY_BATCH - f->n, &rows, &nrows) != 0)
		return;
	for (i = 0; i < nrows; i++) {
		if ((d = calloc(1, sizeof(*d))) == NULL)
			break;         /* its lease runs out */
		d->row = rows[i];
		rows[i].body = NULL;   /* d's now */
		f->d[f->n++] = d;
		if (delivery_setup(n, d, now) != 0) {
			d->done = 1;
			snprintf(d->why, sizeof(d->why), "cannot be sent "
			    "(no such webhook here, or no memory)");
		} else if (curl_multi_add_handle(f->m, d->curl) != CURLM_OK) {
			d->done = 1;
			snprintf(d->why, sizeof(d->why), "cannot be sent");
		}
	}
	sg_outbox_rows_free(rows, nrows);
}

/* Records the deliveries that are done (one write job) and lets them
 * go. */
static void
land(struct sg_notify *n, struct flight *f)
{
	int64_t seqs[NOTIFY_BATCH], next_at[NOTIFY_BATCH], now;
	const char *why[NOTIFY_BATCH];
	int ok[NOTIFY_BATCH];
	uint64_t good = 0, bad = 0;
	size_t i, k = 0, kept = 0;
	uint32_t rnd;

	now = (int64_t)time(NULL);
	for (i = 0; i < f->n; i++) {
		struct delivery *d = f->d[i];

		if (!d->done)
			continue;
		seqs[k] = d->row.seq;
		ok[k] = d->ok;
		why[k] = d->ok ? NULL : d->why;
		if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
			rnd = 0;
		next_at[k] = now + (int64_t)sg_notify_backoff(
		    (unsigned)d->row.attempts + 1, n->c->retry_max_seconds,
		    rnd);
		if (d->ok)
			good++;
		else {
			bad++;
			sg_log_warn("notify: webhook %s: event %s (%s) not "
			    "delivered (try %lld): %s; next try in %lld s",
			    d->row.webhook, d->row.event_id, d->row.type,
			    (long long)d->row.attempts + 1, d->why,
			    (long long)(next_at[k] - now));
		}
		k++;
	}
	if (k == 0)
		return;
	if (sg_store_outbox_done(n->st, seqs, ok, next_at, why, k, now) != 0)
		sg_log_warn("notify: the outcome of %zu deliveries cannot be "
		    "recorded; they will be tried again", k);
	pthread_mutex_lock(&n->lock);
	n->delivered += good;
	n->failures += bad;
	pthread_mutex_unlock(&n->lock);
	for (i = 0; i < f->n; i++) {
		if (f->d[i]->done)
			delivery_free(f->m, f->d[i]);
		else
			f->d[kept++] = f->d[i];
	}
	f->n = kept;
}

/* Moves the transfers on and marks those that ended. */
static void
fly(struct flight *f)
{
	struct delivery *d;
	CURLMsg *msg;
	int running = 0, left;

	if (curl_multi_perform(f->m, &running) != CURLM_OK)
		return;
	while ((msg = curl_multi_info_read(f->m, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		d = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&d);
		if (d != NULL)
			delivery_finish(d, msg->data.result);
	}
}

static void
prune(struct sg_notify *n, int64_t now)
{
	uint64_t dropped = 0;

	if (sg_store_outbox_prune(n->st, now - SG_NOTIFY_KEEP_DELIVERED,
	    now - SG_NOTIFY_KEEP_UNDELIVERED, &dropped) != 0)
		return;
	if (dropped > 0)
		sg_log_warn("notify: %llu events not delivered in %d days "
		    "were dropped", (unsigned long long)dropped,
		    SG_NOTIFY_KEEP_UNDELIVERED / 86400);
}

/*
 * The loop: every NOTIFY_POLL_MS, if there is room, due rows are claimed
 * and started; transfers move on in steps of at most 100 ms, each one
 * recorded as soon as it ends, so that a slow receiver holds up only its
 * own deliveries.
 */
static void *
notify_main(void *arg)
{
	struct sg_notify *n = arg;
	struct flight f;
	uint64_t pending, due;
	int64_t now, pruned = 0, looked = 0, ms;
	size_t i;

	memset(&f, 0, sizeof(f));
	if ((f.m = curl_multi_init()) == NULL) {
		sg_log_error("notify: cannot start libcurl: no webhook will be "
		    "told anything");
		return NULL;
	}
	if (sg_store_outbox_release(n->st) != 0)
		sg_log_warn("notify: the leases of a previous start cannot "
		    "be given up; they run out by themselves");
	while (!stopping(n)) {
		now = (int64_t)time(NULL);
		ms = sg_mono_ms();
		if (now - pruned >= NOTIFY_PRUNE_SECONDS) {
			prune(n, now);
			pruned = now;
		}
		if (f.n < NOTIFY_BATCH && ms - looked >= NOTIFY_POLL_MS) {
			looked = ms;
			if (sg_store_outbox_pending(n->st, n->names, n->nhooks,
			    now, &pending, &due) == 0) {
				pthread_mutex_lock(&n->lock);
				n->pending = pending;
				pthread_mutex_unlock(&n->lock);
				if (due > 0)
					take_off(n, &f, now);
			}
		}
		if (f.n == 0) {
			if (nap(n, NOTIFY_POLL_MS))
				break;
			continue;
		}
		fly(&f);
		land(n, &f);
		if (f.n > 0)
			curl_multi_poll(f.m, NULL, 0, 100, NULL);
	}
	/* Stopping: what is in flight is abandoned, its leases kept. */
	for (i = 0; i < f.n; i++)
		delivery_free(f.m, f.d[i]);
	curl_multi_cleanup(f.m);
	return NULL;
}

int
sg_notify_start(struct sg_notify *n)
{
	if (n == NULL || n->nhooks == 0)
		return 0;
	if (pthread_create(&n->thread, NULL, notify_main, n) != 0)
		return SG_ERR_INTERNAL;
	n->started = 1;
	return 0;
}

void
sg_notify_stop(struct sg_notify *n)
{
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = 1;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	if (n->started) {
		pthread_join(n->thread, NULL);
		n->started = 0;
	}
}

void
sg_notify_free(struct sg_notify *n)
{
	size_t i;

	if (n == NULL)
		return;
	sg_notify_stop(n);
	for (i = 0; i < n->nhooks; i++)
		sg_freezero(n->hooks[i].secret, n->hooks[i].secret_len);
	pthread_mutex_destroy(&n->lock);
	pthread_cond_destroy(&n->cond);
	free(n);
}
