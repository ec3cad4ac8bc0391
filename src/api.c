/*
 * HTTP API: one routing table, JSON in and out, identity to principal,
 * and the one place where errors become HTTP statuses and problem
 * documents.  Domain rules live in the service, not here.
 *
 * Routing.  Every endpoint is one row of routes[] (below the handlers'
 * prototypes): its methods, its path pattern, who may call it, the body
 * it takes, the endpoint it is counted under in /metrics, and its
 * handler.  A request is matched once (route_find) and the row found
 * decides everything, in this order:
 *   1. a request without a verified client certificate takes a token
 *      from their one shared budget (429), whatever it asks for;
 *   2. a path no row covers is 404;
 *   3. who may call: loopback peers only (403), anyone (the public log),
 *      or a principal: the certificate must map to one (401; in plain
 *      HTTP development mode a GET needs none), which then takes a token
 *      from its own bucket (429);
 *   4. the method: rows of one path are adjacent, and a method none of
 *      them takes is 405;
 *   5. the body, for rows that take one: its size (413), its type (415)
 *      and, for most, its parse into a JSON object (400);
 *   6. the handler, with the path's parameters checked and parsed.
 * Patterns are literal but for {id} (a request id: one path segment of
 * 32 lower-case hex digits) and {index} (a log index: the rest of the
 * path, a decimal number), and a final * (any path below).  A * row
 * comes after the rows it covers and answers 404 for a path in its part
 * of the tree once that part's checks have passed: below /v1/log/ the
 * log's (anyone, GET only), elsewhere below /v1/ a principal's.  A path
 * whose parameter is not valid matches no row; its * row names what was
 * wrong ("no request with that id").
 *
 * Input discipline: bodies are JSON objects parsed with duplicate keys
 * refused; every member is checked for type, size and syntax, unknown
 * members are refused, and each error names the field (RFC 9457 problem
 * documents with an extra "field" member).  Identity comes only from the
 * verified client certificate, mapped to a policy principal.
 *
 * The router touches no socket: sg_api_dispatch() takes a request and
 * fills a response (sg_http.h), so that tests and fuzzers drive it
 * directly.  Its counters (requests by endpoint and status) and rate
 * buckets live in the struct sg_api.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "sg_api.h"
#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_text.h"
#include "sg_util.h"

#define LIST_DEFAULT 50
#define LIST_MAX 200
#define WAIT_MAX 60
/* The front refuses larger bodies before they reach the API; the same
 * limit here holds for callers that are not the front. */
#define BODY_MAX SG_HTTP_MAX_BODY

#define RATE_MAX_PRINCIPALS 4096

/* What a request is counted under in signgate_http_requests_total. */
enum endpoint {
	EP_KEYS, EP_REQUESTS_POST, EP_REQUESTS_LIST, EP_REQUEST, EP_SIGNATURE,
	EP_APPROVALS, EP_CANCEL, EP_LOG, EP_OPS, EP_OTHER, EP_COUNT
};
static const char *const endpoint_names[EP_COUNT] = {
	"GET /v1/keys", "POST /v1/requests", "GET /v1/requests",
	"GET /v1/requests/{id}", "GET /v1/requests/{id}/signature",
	"POST /v1/requests/{id}/approvals", "POST /v1/requests/{id}/cancel",
	"GET /v1/log", "ops", "other",
};
static const int statuses[] = { 200, 201, 400, 401, 403, 404, 405, 409,
    413, 415, 422, 429, 500, 503 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

/* A token bucket per principal. */
struct bucket {
	char name[SG_POLICY_NAME_MAX];
	double tokens;
	int64_t last_ms;
};

struct sg_api {
	struct sg_service *svc;
	int plain_http;
	unsigned rate_per_second;
	unsigned rate_burst;
	pthread_mutex_t rate_lock;
	struct bucket *buckets;
	size_t nbuckets;
	unsigned anon_per_second;
	unsigned anon_burst;
	struct bucket anon;             /* requests without a certificate */
	pthread_mutex_t count_lock;
	uint64_t counts[EP_COUNT][NSTATUS + 1];  /* the last: other statuses */
	int64_t (*now_ms)(void);        /* monotonic; sg_mono_ms */
};

/* One request on its way through the router to its handler. */
struct call {
	struct sg_api *a;
	const struct sg_http_request *req;
	struct sg_http_response *resp;
	unsigned method;                /* M_* */
	const char *principal;          /* policy principal, NULL if none */
	char id[SG_REQUEST_ID_SIZE];    /* {id} */
	uint64_t index;                 /* {index} */
	const char *missing;            /* * rows: what the 404 says */
	json_t *body;                   /* BODY_OBJECT rows: the parsed body */
};

typedef void handler_fn(struct call *);

static handler_fn get_healthz, get_readyz, get_metrics;
static handler_fn get_log_checkpoint, get_log_key, get_log_entry;
static handler_fn get_log_inclusion, get_log_consistency;
static handler_fn get_keys, list_requests, post_request, get_request;
static handler_fn get_signature, post_approval, post_cancel, not_found;

enum who {
	WHO_ANYONE,                     /* no certificate needed */
	WHO_LOOPBACK,                   /* loopback peers only */
	WHO_PRINCIPAL,                  /* a principal, rate-limited */
};

enum body {
	BODY_NONE,                      /* a body is ignored */
	BODY_JSON,                      /* application/json, as sent */
	BODY_OBJECT,                    /* application/json: an object */
};

#define M_GET 0x1u
#define M_POST 0x2u
#define M_OTHER 0x4u                    /* any other method */
#define M_ANY (M_GET | M_POST | M_OTHER)

struct route {
	unsigned methods;
	const char *pattern;
	enum who who;
	enum body body;
	size_t body_max;
	enum endpoint ep;
	handler_fn *fn;
	const char *not_allowed;        /* 405 detail; NULL: "use <methods>" */
};

static const struct route routes[] = {
	/* Operations: health, readiness, metrics. */
	{ M_GET, "/healthz", WHO_LOOPBACK, BODY_NONE, 0, EP_OPS,
	    get_healthz, NULL },
	{ M_GET, "/readyz", WHO_LOOPBACK, BODY_NONE, 0, EP_OPS,
	    get_readyz, NULL },
	{ M_GET, "/metrics", WHO_LOOPBACK, BODY_NONE, 0, EP_OPS,
	    get_metrics, NULL },
	/* The transparency log is public: anyone may read and check it. */
	{ M_GET, "/v1/log/checkpoint", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    get_log_checkpoint, NULL },
	{ M_GET, "/v1/log/key", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    get_log_key, NULL },
	{ M_GET, "/v1/log/entries/{index}", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    get_log_entry, NULL },
	{ M_GET, "/v1/log/proof/inclusion", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    get_log_inclusion, NULL },
	{ M_GET, "/v1/log/proof/consistency", WHO_ANYONE, BODY_NONE, 0,
	    EP_LOG, get_log_consistency, NULL },
	{ M_GET, "/v1/log/*", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    not_found, NULL },
	/* Keys and requests: principals only. */
	{ M_GET, "/v1/keys", WHO_PRINCIPAL, BODY_NONE, 0, EP_KEYS,
	    get_keys, NULL },
	{ M_GET, "/v1/requests", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_REQUESTS_LIST, list_requests, NULL },
	{ M_POST, "/v1/requests", WHO_PRINCIPAL, BODY_OBJECT, BODY_MAX,
	    EP_REQUESTS_POST, post_request, NULL },
	{ M_GET, "/v1/requests/{id}", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_REQUEST, get_request, "method not allowed" },
	{ M_GET, "/v1/requests/{id}/signature", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_SIGNATURE, get_signature, "method not allowed" },
	{ M_POST, "/v1/requests/{id}/approvals", WHO_PRINCIPAL, BODY_JSON,
	    BODY_MAX, EP_APPROVALS, post_approval, "method not allowed" },
	{ M_POST, "/v1/requests/{id}/cancel", WHO_PRINCIPAL, BODY_OBJECT,
	    BODY_MAX, EP_CANCEL, post_cancel, "method not allowed" },
	{ M_ANY, "/v1/*", WHO_PRINCIPAL, BODY_NONE, 0, EP_OTHER,
	    not_found, NULL },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

int
sg_api_new(struct sg_service *svc, int plain_http, unsigned rate_per_second,
    unsigned rate_burst, struct sg_api **ret)
{
	struct sg_api *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return SG_ERR_NOMEM;
	if ((a->buckets = calloc(RATE_MAX_PRINCIPALS,
	    sizeof(*a->buckets))) == NULL) {
		free(a);
		return SG_ERR_NOMEM;
	}
	a->svc = svc;
	a->plain_http = plain_http;
	a->rate_per_second = rate_per_second;
	a->rate_burst = rate_burst;
	a->now_ms = sg_mono_ms;
	pthread_mutex_init(&a->rate_lock, NULL);
	pthread_mutex_init(&a->count_lock, NULL);
	*ret = a;
	return 0;
}

void
sg_api_set_clock(struct sg_api *a, int64_t (*now_ms)(void))
{
	a->now_ms = now_ms != NULL ? now_ms : sg_mono_ms;
}

void
sg_api_set_anonymous_rate(struct sg_api *a, unsigned per_second,
    unsigned burst)
{
	pthread_mutex_lock(&a->rate_lock);
	a->anon_per_second = per_second;
	a->anon_burst = burst;
	a->anon.tokens = burst;
	a->anon.last_ms = a->now_ms();
	pthread_mutex_unlock(&a->rate_lock);
}

void
sg_api_free(struct sg_api *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->rate_lock);
	pthread_mutex_destroy(&a->count_lock);
	free(a->buckets);
	free(a);
}

/* Refills b and takes one token; 0 when allowed, else the seconds to
 * wait.  rate_lock held. */
static unsigned
bucket_take(struct bucket *b, unsigned per_second, unsigned burst,
    int64_t now)
{
	b->tokens += (double)(now - b->last_ms) * per_second / 1000.0;
	if (b->tokens > burst)
		b->tokens = burst;
	b->last_ms = now;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return 0;
	}
	return (unsigned)((1.0 - b->tokens) / per_second) + 1;
}

/* Takes one token from the principal's bucket; 0 when allowed, else the
 * seconds to wait. */
static unsigned
rate_take(struct sg_api *a, const char *principal)
{
	struct bucket *b = NULL;
	int64_t now = a->now_ms();
	unsigned wait = 0;
	size_t i;

	if (a->rate_per_second == 0)
		return 0;
	pthread_mutex_lock(&a->rate_lock);
	for (i = 0; i < a->nbuckets; i++)
		if (strcmp(a->buckets[i].name, principal) == 0)
			b = &a->buckets[i];
	if (b == NULL && a->nbuckets < RATE_MAX_PRINCIPALS) {
		b = &a->buckets[a->nbuckets++];
		snprintf(b->name, sizeof(b->name), "%s", principal);
		b->tokens = a->rate_burst;
		b->last_ms = now;
	}
	if (b != NULL)
		wait = bucket_take(b, a->rate_per_second, a->rate_burst, now);
	pthread_mutex_unlock(&a->rate_lock);
	return wait;
}

/* The same for the one budget of requests without a certificate. */
static unsigned
anon_take(struct sg_api *a)
{
	unsigned wait;

	if (a->anon_per_second == 0)
		return 0;
	pthread_mutex_lock(&a->rate_lock);
	wait = bucket_take(&a->anon, a->anon_per_second, a->anon_burst,
	    a->now_ms());
	pthread_mutex_unlock(&a->rate_lock);
	return wait;
}

static const char *
status_title(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static void
set_json(struct sg_http_response *resp, int status, json_t *j)
{
	resp->status = status;
	resp->content_type = status >= 400 ? "application/problem+json" :
	    "application/json";
	resp->body = json_dumps(j, JSON_COMPACT);
	resp->body_len = resp->body != NULL ? strlen(resp->body) : 0;
	if (resp->body == NULL)
		resp->status = 500;
	json_decref(j);
}

/*
 * Cuts s before a UTF-8 sequence left incomplete at its end, as when a
 * well-formed string is cut short to fit a buffer: jansson refuses to
 * render a string that is not UTF-8, and the answer would be a 500
 * without a body instead of the problem.
 */
static void
utf8_cut(char *s)
{
	size_t n = strlen(s), i = n, need;
	unsigned char c;

	while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)s[i - 1];
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

static void
problem(struct sg_http_response *resp, int status, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static json_t *
problem_doc(int status, const char *field, const char *detail)
{
	json_t *j;

	j = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
	    status_title(status), "status", status, "detail", detail);
	if (j != NULL && field != NULL && field[0] != '\0')
		json_object_set_new(j, "field", json_string(field));
	return j;
}

static void
problem(struct sg_http_response *resp, int status, const char *field,
    const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	utf8_cut(detail);
	if (status == 503)
		resp->retry_after = 5;
	set_json(resp, status, problem_doc(status, field, detail));
}

/* A service error with its fault, in one place. */
static void
service_problem(struct sg_http_response *resp, int r,
    const struct sg_fault *f)
{
	int status = sg_err_http_status(r);
	char field[sizeof(f->field)], detail[sizeof(f->detail)];
	json_t *j;

	if (f == NULL || f->detail[0] == '\0') {
		problem(resp, status, NULL, "%s", sg_strerror(r));
		return;
	}
	snprintf(field, sizeof(field), "%s", f->field);
	snprintf(detail, sizeof(detail), "%s", f->detail);
	utf8_cut(field);
	utf8_cut(detail);
	j = problem_doc(status, field, detail);
	/* Stored, though not acknowledged: a retry must not redo it, and
	 * one with the Idempotency-Key returns it. */
	if (j != NULL && f->recorded)
		json_object_set_new(j, "recorded", json_true());
	if (status == 503)
		resp->retry_after = 5;
	set_json(resp, status, j);
}

/* A header value (Idempotency-Key): no C0 control byte, no DEL.  Text
 * that officers read follows sg_text_ok() instead. */
static int
printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}


/* The first value of a query argument or header named name (any case,
 * as libmicrohttpd looks them up), or NULL. */
static const char *
param(const struct sg_http_param *v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i].name != NULL && strcasecmp(v[i].name, name) == 0)
			return v[i].value;
	return NULL;
}

static const char *
query(const struct call *c, const char *name)
{
	return param(c->req->query, c->req->nquery, name);
}

static const char *
header(const struct sg_http_request *req, const char *name)
{
	return param(req->headers, req->nheaders, name);
}

/*
 * A request as the API shows it.  Everything about its quorum comes from
 * the request's own policy (the terms' groups and counts), with what is
 * missing and which decisions count under that policy and the one in
 * force (an officer revoked since no longer counts).
 */
static json_t *
request_json(struct sg_api *a, const struct sg_request *q)
{
	struct sg_request_quorum v;
	int have_quorum;
	char created[32], expires[32], at[32];
	json_t *j, *approvals, *required, *artifact;
	size_t i;

	sg_time_rfc3339((time_t)q->created_at, created, sizeof(created));
	sg_time_rfc3339((time_t)q->expires_at, expires, sizeof(expires));
	artifact = json_loads(q->artifact_json, 0, NULL);
	j = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:o, s:s, s:s, s:s,"
	    " s:{s:s, s:I, s:s}, s:s}",
	    "id", q->id, "state", sg_req_state_str(q->state),
	    "key", q->key,
	    "digest", "algorithm", q->digest_alg, "value", q->digest_hex,
	    "format", sg_format_str(q->format),
	    "artifact", artifact != NULL ? artifact : json_object(),
	    "requester", q->requester, "created_at", created,
	    "expires_at", expires,
	    "policy", "name", q->policy_name, "version",
	    (json_int_t)q->policy_version, "sha256", q->policy_sha256,
	    "statement", q->statement);
	if (j == NULL)
		return NULL;
	have_quorum = sg_service_request_quorum(a->svc, q, &v) == 0;
	approvals = json_array();
	for (i = 0; i < q->napprovals; i++) {
		sg_time_rfc3339((time_t)q->approvals[i].at, at, sizeof(at));
		json_array_append_new(approvals, json_pack("{s:s, s:s, s:s, "
		    "s:b}", "officer", q->approvals[i].officer, "decision",
		    q->approvals[i].approve ? "approve" : "reject", "at", at,
		    "counts", have_quorum && i < SG_ENVELOPES_MAX &&
		    v.counted[i]));
	}
	json_object_set_new(j, "approvals", approvals);
	required = json_array();
	if (have_quorum) {
		for (i = 0; i < v.res.nterms && i < v.nterms; i++)
			json_array_append_new(required, json_pack(
			    "{s:s, s:i, s:i}", "group", v.terms[i].group,
			    "count", (int)v.terms[i].count, "missing",
			    q->state == SG_REQ_PENDING ?
			    (int)v.res.missing[i] : 0));
		json_object_set_new(j, "policy_in_force",
		    json_string(v.in_force));
	}
	json_object_set_new(j, "required", required);
	if (q->error != NULL)
		json_object_set_new(j, "error", json_string(q->error));
	if (q->state == SG_REQ_CANCELLED) {
		sg_time_rfc3339((time_t)q->cancelled_at, at, sizeof(at));
		json_object_set_new(j, "cancelled", json_pack("{s:s, s:s, s:s}",
		    "by", q->cancelled_by, "at", at, "reason",
		    q->cancel_reason != NULL ? q->cancel_reason : ""));
	}
	return j;
}

static json_t *
signature_json(struct sg_api *a, const struct sg_request *q)
{
	const struct sg_key_view *kv = sg_service_key(a->svc, q->key);
	const char *alg = kv != NULL ? sg_scheme_name(kv->pk->alg,
	    kv->pk->scheme) : NULL;
	char *sig;
	json_t *j;

	if ((sig = sg_b64_encode(q->signature, q->signature_len)) == NULL)
		return NULL;
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "format",
	    sg_format_str(q->format), "algorithm",
	    alg != NULL ? alg : "unknown", "digest_algorithm",
	    q->digest_alg, "key", q->key, "spki_sha256", q->spki_sha256,
	    "signature", sig);
	free(sig);
	if (j != NULL && q->cms != NULL) {
		char *cms = sg_b64_encode(q->cms, q->cms_len);
		if (cms != NULL)
			json_object_set_new(j, "cms", json_string(cms));
		free(cms);
	}
	if (j != NULL && q->timestamp_note != NULL) {
		int added = strncmp(q->timestamp_note, "added", 5) == 0;
		json_t *ts = json_pack("{s:s, s:s}", "status", added ?
		    "added" : "skipped", "detail", q->timestamp_note);
		uint8_t *tok = NULL;
		size_t toklen = 0;
		if (ts != NULL && added && q->cms != NULL &&
		    sg_cms_get_timestamp(q->cms, q->cms_len, &tok,
		    &toklen) == 0) {
			char *b = sg_b64_encode(tok, toklen);
			if (b != NULL)
				json_object_set_new(ts, "token",
				    json_string(b));
			free(b);
		}
		free(tok);
		json_object_set_new(j, "timestamp", ts);
	}
	if (j != NULL && q->log_index >= 0) {
		char *proof = NULL;
		if (sg_service_log_bundle(a->svc, (uint64_t)q->log_index,
		    &proof) != 0) {
			/* Never hand out a signature without its proof. */
			json_decref(j);
			return NULL;
		}
		json_object_set_new(j, "log", json_pack("{s:I, s:s}",
		    "index", (json_int_t)q->log_index, "proof", proof));
		free(proof);
	}
	return j;
}

static void
respond_request(struct sg_api *a, struct sg_http_response *resp, int status,
    const struct sg_request *q)
{
	json_t *j = request_json(a, q);

	if (j != NULL && q->state == SG_REQ_SIGNED &&
	    q->signature != NULL) {
		json_t *sig = signature_json(a, q);
		if (sig == NULL) {
			json_decref(j);
			problem(resp, 503, NULL, "the signature's log proof "
			    "cannot be read, or no signed checkpoint covers it "
			    "yet");
			return;
		}
		json_object_set_new(j, "signature", sig);
	}
	if (j == NULL) {
		problem(resp, 500, NULL, "cannot render the request");
		return;
	}
	set_json(resp, status, j);
}

static json_t *
key_json(const struct sg_policy *p, const struct sg_key_view *kv)
{
	const struct sg_policy_key *pk = kv->pk;
	json_t *j, *formats, *requesters, *require, *countries, *hsm;
	size_t i;

	formats = json_array();
	if (pk->formats & SG_FORMAT_RAW)
		json_array_append_new(formats,
		    json_string(sg_format_str(SG_FORMAT_RAW)));
	if (pk->formats & SG_FORMAT_CMS)
		json_array_append_new(formats,
		    json_string(sg_format_str(SG_FORMAT_CMS)));
	requesters = json_array();
	for (i = 0; i < pk->nrequesters; i++)
		json_array_append_new(requesters,
		    json_string(pk->requesters[i]));
	require = json_array();
	for (i = 0; i < pk->nterms; i++)
		json_array_append_new(require, json_pack("{s:s, s:i}",
		    "group", pk->terms[i].group, "count",
		    (int)pk->terms[i].count));
	countries = json_array();
	for (i = 0; i < pk->ncountries; i++)
		json_array_append_new(countries,
		    json_string(pk->countries[i]));
	hsm = json_pack("{s:s, s:s, s:s, s:s}", "token", kv->token.label,
	    "serial", kv->token.serial, "manufacturer", kv->token.manufacturer,
	    "model", kv->token.model);
	if (hsm != NULL && kv->hsm != NULL) {
		json_object_set_new(hsm, "site", json_string(kv->hsm->site));
		json_object_set_new(hsm, "country",
		    json_string(kv->hsm->country));
	}
	j = json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:s,"
	    " s:{s:o, s:o, s:b, s:I, s:o}}",
	    "name", pk->name, "algorithm",
	    sg_scheme_name(pk->alg, pk->scheme), "formats", formats,
	    "public_key_pem", kv->public_key_pem ? kv->public_key_pem : "",
	    "spki_sha256", kv->spki_sha256, "hsm", hsm,
	    "state", kv->usable ? "active" : "unavailable",
	    "policy", "requesters", requesters, "require", require,
	    "veto", pk->veto, "lifetime", (json_int_t)pk->lifetime,
	    "countries", countries);
	if (j == NULL)
		return NULL;
	if (kv->certificate_pem != NULL)
		json_object_set_new(j, "certificate_pem",
		    json_string(kv->certificate_pem));
	if (kv->nretired > 0) {
		json_t *ret = json_array();
		for (i = 0; i < kv->nretired; i++) {
			const struct sg_retired_view *rv = &kv->retired[i];
			char at[32];
			json_t *o;
			sg_time_rfc3339((time_t)rv->rk->retired_at, at,
			    sizeof(at));
			o = json_pack("{s:s, s:s}", "state", "retired",
			    "retired_at", at);
			if (rv->reason[0] != '\0')
				json_object_set_new(o, "reason",
				    json_string(rv->reason));
			else {
				json_object_set_new(o, "spki_sha256",
				    json_string(rv->spki_sha256));
				json_object_set_new(o, "public_key_pem",
				    json_string(rv->public_key_pem));
				json_object_set_new(o, "certificate_pem",
				    json_string(rv->certificate_pem));
			}
			json_array_append_new(ret, o);
		}
		json_object_set_new(j, "retired", ret);
	}
	if (!kv->usable)
		json_object_set_new(j, "reason", json_string(kv->reason));
	(void)p;
	return j;
}

static void
get_keys(struct call *c)
{
	json_t *keys = json_array(), *k;
	size_t i;

	for (i = 0; i < sg_service_nkeys(c->a->svc); i++) {
		k = key_json(sg_service_policy(c->a->svc),
		    sg_service_key_at(c->a->svc, i));
		if (k == NULL) {
			json_decref(keys);
			problem(c->resp, 500, NULL, "cannot render keys");
			return;
		}
		json_array_append_new(keys, k);
	}
	set_json(c->resp, 200, json_pack("{s:o}", "keys", keys));
}

static int
is_json(const struct sg_http_request *req)
{
	const char *ct = header(req, "Content-Type");
	size_t n = strlen("application/json");

	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* The U+FFFF that stands in for a byte that is not UTF-8 (below). */
static const char utf8_marker[] = "\xef\xbf\xbf";

/* Offset of the first byte that does not start well-formed UTF-8, or len. */
static size_t
utf8_prefix(const char *s, size_t len)
{
	size_t i = 0, k;
	uint32_t cp;

	while (i < len &&
	    (k = sg_utf8_decode((const uint8_t *)s + i, len - i, &cp)) > 0)
		i += k;
	return i;
}

/* Writes into path the field (a.b, a[0]) of the first string in j that
 * holds the marker, or of the object one of whose member names holds it
 * (*in_name then set).  1 if found. */
static int
find_marker(const json_t *j, const char *prefix, char *path, size_t cap,
    int *in_name)
{
	const char *k;
	json_t *v;
	size_t i;
	char sub[256];

	if (json_is_string(j)) {
		if (memmem(json_string_value(j), json_string_length(j),
		    utf8_marker, 3) == NULL)
			return 0;
		snprintf(path, cap, "%s", prefix);
		return 1;
	}
	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v) {
			snprintf(sub, sizeof(sub), "%s%s%s", prefix,
			    prefix[0] != '\0' ? "." : "", k);
			utf8_cut(sub);
			if (strstr(k, utf8_marker) != NULL) {
				snprintf(path, cap, "%s", prefix);
				*in_name = 1;
				return 1;
			}
			if (find_marker(v, sub, path, cap, in_name))
				return 1;
		}
	}
	if (json_is_array(j)) {
		json_array_foreach(j, i, v) {
			snprintf(sub, sizeof(sub), "%s[%zu]", prefix, i);
			if (find_marker(v, sub, path, cap, in_name))
				return 1;
		}
	}
	return 0;
}

/*
 * A body that is not UTF-8: jansson would only say at which byte.  So that
 * the problem names the field, a copy has each byte that does not start a
 * well-formed sequence replaced by U+FFFF and is parsed instead, and the
 * first string holding one is named.  The body itself is always refused.
 */
static void
not_utf8_problem(const struct sg_http_request *req,
    struct sg_http_response *resp, size_t first)
{
	json_t *j = NULL;
	char *copy, path[256];
	size_t i = 0, o = 0, k;
	uint32_t cp;
	int in_name = 0;

	if ((copy = malloc(3 * req->body_len + 1)) != NULL) {
		while (i < req->body_len) {
			k = sg_utf8_decode((const uint8_t *)req->body + i,
			    req->body_len - i, &cp);
			if (k == 0) {
				memcpy(copy + o, utf8_marker, 3);
				o += 3;
				i++;
			} else {
				memcpy(copy + o, req->body + i, k);
				o += k;
				i += k;
			}
		}
		j = json_loadb(copy, o, JSON_REJECT_DUPLICATES, NULL);
		free(copy);
	}
	if (j != NULL && find_marker(j, "", path, sizeof(path), &in_name)) {
		if (in_name)
			problem(resp, 400, path, "%s: a member name is not "
			    "valid UTF-8", path[0] != '\0' ? path : "body");
		else
			problem(resp, 400, path, "%s: is not valid UTF-8",
			    path);
	} else
		problem(resp, 400, NULL, "the body is not valid UTF-8 (byte "
		    "%zu)", first);
	json_decref(j);
}

/* The body as a JSON object; Content-Type was checked by the router. */
static json_t *
parse_body(const struct sg_http_request *req, struct sg_http_response *resp)
{
	json_error_t err;
	json_t *j;
	size_t first;

	if ((first = utf8_prefix(req->body, req->body_len)) != req->body_len) {
		not_utf8_problem(req, resp, first);
		return NULL;
	}
	j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL) {
		problem(resp, 400, NULL, "malformed JSON at line %d column "
		    "%d: %s", err.line, err.column, err.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		problem(resp, 400, NULL, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* Refuses members of obj that are not in allowed; names the first. */
static int
only_fields(struct sg_http_response *resp, json_t *obj, const char *prefix,
    const char *const *allowed)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(obj, k, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			char field[128];
			snprintf(field, sizeof(field), "%s%s", prefix, k);
			utf8_cut(field);
			problem(resp, 400, field, "%s: unknown field", field);
			return -1;
		}
	}
	return 0;
}

static int
parse_artifact(struct sg_http_response *resp, json_t *art, char **ret)
{
	struct sg_text_fault tf;
	const char *k;
	json_t *v;
	char field[128], why[128];

	if (!json_is_object(art)) {
		problem(resp, 400, "artifact", "artifact: must be an object "
		    "of strings");
		return -1;
	}
	if (json_object_size(art) > SG_ARTIFACT_FIELDS_MAX) {
		problem(resp, 400, "artifact", "artifact: at most %d fields",
		    SG_ARTIFACT_FIELDS_MAX);
		return -1;
	}
	json_object_foreach(art, k, v) {
		snprintf(field, sizeof(field), "artifact.%.64s", k);
		if (!sg_name_ok(k, SG_ARTIFACT_NAME_MAX)) {
			problem(resp, 400, "artifact", "artifact: field names "
			    "are 1-%d characters of A-Z a-z 0-9 . _ -",
			    SG_ARTIFACT_NAME_MAX);
			return -1;
		}
		if (!json_is_string(v)) {
			problem(resp, 400, field, "%s: must be a string",
			    field);
			return -1;
		}
		if (json_string_length(v) == 0 ||
		    json_string_length(v) > SG_ARTIFACT_VALUE_MAX) {
			problem(resp, 400, field, "%s: must be 1-%d bytes of "
			    "printable text", field, SG_ARTIFACT_VALUE_MAX);
			return -1;
		}
		/* Officers read these values before they approve. */
		if (sg_text_ok(json_string_value(v), json_string_length(v),
		    &tf) != 0) {
			sg_text_fault_describe(&tf, why, sizeof(why));
			problem(resp, 400, field, "%s: %s", field, why);
			return -1;
		}
	}
	if (json_object_get(art, "name") == NULL) {
		problem(resp, 400, "artifact.name", "artifact.name: is "
		    "required");
		return -1;
	}
	*ret = json_dumps(art, JSON_COMPACT | JSON_SORT_KEYS);
	return *ret != NULL ? 0 : -1;
}

/* "digest": {"algorithm": ..., "value": hex} into nr. */
static int
parse_digest(struct sg_http_response *resp, json_t *digest,
    struct sg_new_request *nr)
{
	static const char *const dig[] = { "algorithm", "value", NULL };
	json_t *v;

	if (!json_is_object(digest)) {
		problem(resp, 400, "digest", "digest: must be an object with "
		    "algorithm and value");
		return -1;
	}
	if (only_fields(resp, digest, "digest.", dig) != 0)
		return -1;
	v = json_object_get(digest, "algorithm");
	if (!json_is_string(v) || (nr->digest_alg =
	    sg_digest_from_name(json_string_value(v))) == SG_DIGEST_NONE) {
		problem(resp, 400, "digest.algorithm", "digest.algorithm: "
		    "must be sha256, sha384 or sha512");
		return -1;
	}
	v = json_object_get(digest, "value");
	if (!json_is_string(v) ||
	    json_string_length(v) != 2 * sg_digest_len(nr->digest_alg) ||
	    sg_hex_decode(json_string_value(v), json_string_length(v),
	    nr->digest, sizeof(nr->digest), &nr->digest_len) != 0) {
		problem(resp, 400, "digest.value", "digest.value: must be %zu "
		    "hex characters for %s", 2 * sg_digest_len(nr->digest_alg),
		    sg_digest_name(nr->digest_alg));
		return -1;
	}
	return 0;
}

/* A POST /v1/requests body into nr, whose strings point into body;
 * *ret_artifact is the canonical artifact JSON, for the caller to free. */
static int
parse_new_request(struct sg_http_response *resp, json_t *body,
    struct sg_new_request *nr, char **ret_artifact)
{
	static const char *const top[] = { "key", "digest", "format",
	    "artifact", NULL };
	json_t *v;

	if (only_fields(resp, body, "", top) != 0)
		return -1;
	v = json_object_get(body, "key");
	if (!json_is_string(v) ||
	    !sg_name_ok(json_string_value(v), SG_NAME_LEN_MAX)) {
		problem(resp, 400, "key", "key: must be a key name");
		return -1;
	}
	nr->key = json_string_value(v);
	if (parse_digest(resp, json_object_get(body, "digest"), nr) != 0)
		return -1;
	nr->format = SG_FORMAT_RAW;
	if ((v = json_object_get(body, "format")) != NULL &&
	    (!json_is_string(v) ||
	    sg_format_parse(json_string_value(v), &nr->format) != 0)) {
		problem(resp, 400, "format", "format: must be raw or cms");
		return -1;
	}
	if ((v = json_object_get(body, "artifact")) == NULL) {
		problem(resp, 400, "artifact", "artifact: is required");
		return -1;
	}
	if (parse_artifact(resp, v, ret_artifact) != 0)
		return -1;
	nr->artifact_json = *ret_artifact;
	return 0;
}

/* The Idempotency-Key header, if any, with the SHA-256 of the body it
 * stands for (a retry must send the same body). */
static int
parse_idempotency(const struct sg_http_request *req,
    struct sg_http_response *resp, struct sg_new_request *nr,
    char body_sha[SG_SHA256_HEX_SIZE])
{
	const char *s = header(req, "Idempotency-Key");
	uint8_t h[32];

	if (s == NULL)
		return 0;
	if (strlen(s) == 0 || strlen(s) > SG_IDEM_KEY_MAX ||
	    !printable(s, strlen(s))) {
		problem(resp, 400, "Idempotency-Key", "Idempotency-Key: "
		    "must be 1-%d printable characters", SG_IDEM_KEY_MAX);
		return -1;
	}
	nr->idem_key = s;
	sg_sha256(req->body, req->body_len, h);
	sg_hex_encode(h, sizeof(h), body_sha);
	nr->body_sha256 = body_sha;
	return 0;
}

/* POST /v1/requests */
static void
post_request(struct call *c)
{
	struct sg_new_request nr;
	struct sg_request *q = NULL;
	struct sg_fault f;
	char *artifact = NULL, body_sha[SG_SHA256_HEX_SIZE];
	int r, existing = 0;

	memset(&nr, 0, sizeof(nr));
	memset(&f, 0, sizeof(f));
	if (parse_new_request(c->resp, c->body, &nr, &artifact) != 0 ||
	    parse_idempotency(c->req, c->resp, &nr, body_sha) != 0)
		goto out;
	nr.requester = c->principal;
	r = sg_service_create(c->a->svc, &nr, &q, &existing, &f);
	if (r != 0) {
		service_problem(c->resp, r, &f);
		goto out;
	}
	snprintf(c->resp->location, sizeof(c->resp->location),
	    "/v1/requests/%s", q->id);
	respond_request(c->a, c->resp, existing ? 200 : 201, q);
out:
	sg_request_free(q);
	free(artifact);
}

/* GET /v1/requests?state=&key=&limit=&cursor= */
static void
list_requests(struct call *c)
{
	const char *state = query(c, "state");
	const char *key = query(c, "key");
	const char *limit_s = query(c, "limit");
	const char *cursor = query(c, "cursor");
	struct sg_http_response *resp = c->resp;
	struct sg_request **v = NULL;
	uint64_t limit = LIST_DEFAULT, before = 0;
	enum sg_req_state want = SG_REQ_NONE;
	size_t i, n = 0;
	json_t *arr, *j;

	if (state != NULL && sg_req_state_parse(state, &want) != 0) {
		problem(resp, 400, "state", "state: must be pending, signed, "
		    "rejected, expired, failed or cancelled");
		return;
	}
	if (key != NULL && !sg_name_ok(key, SG_NAME_LEN_MAX)) {
		problem(resp, 400, "key", "key: must be a key name");
		return;
	}
	if (limit_s != NULL &&
	    sg_parse_u64(limit_s, 1, LIST_MAX, &limit) != 0) {
		problem(resp, 400, "limit", "limit: must be 1 to %d", LIST_MAX);
		return;
	}
	if (cursor != NULL &&
	    sg_parse_u64(cursor, 1, INT64_MAX, &before) != 0) {
		problem(resp, 400, "cursor", "cursor: not a cursor from this "
		    "server");
		return;
	}
	if (sg_service_list(c->a->svc, want, key, (int64_t)before, limit, &v,
	    &n) != 0) {
		problem(resp, 503, NULL, "the request store cannot be read");
		return;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		if ((j = request_json(c->a, v[i])) != NULL)
			json_array_append_new(arr, j);
	}
	j = json_pack("{s:o}", "requests", arr);
	if (n == limit && n > 0) {
		char cur[32];
		snprintf(cur, sizeof(cur), "%lld", (long long)v[n - 1]->seq);
		json_object_set_new(j, "next_cursor", json_string(cur));
	} else
		json_object_set_new(j, "next_cursor", json_null());
	sg_request_list_free(v, n);
	set_json(resp, 200, j);
}

/* The request of the path's {id}, or NULL with the problem answered. */
static struct sg_request *
fetch_request(struct call *c)
{
	struct sg_request *q = NULL;
	int r;

	if ((r = sg_service_get(c->a->svc, c->id, &q)) == 0)
		return q;
	if (r == SG_ERR_NOT_FOUND)
		problem(c->resp, 404, NULL, "no request with id '%s'", c->id);
	else
		problem(c->resp, 503, NULL, "the request store cannot be "
		    "read");
	return NULL;
}

/* GET /v1/requests/{id}?wait=N: a pending request is answered when it
 * changes or after N seconds (the front suspends the connection). */
static void
get_request(struct call *c)
{
	const char *wait_s = query(c, "wait");
	struct sg_request *q;
	uint64_t wait = 0;

	if (wait_s != NULL && sg_parse_u64(wait_s, 0, WAIT_MAX, &wait) != 0) {
		problem(c->resp, 400, "wait", "wait: must be 0 to %d seconds",
		    WAIT_MAX);
		return;
	}
	if ((q = fetch_request(c)) == NULL)
		return;
	if (wait > 0 && !c->req->resumed && q->state == SG_REQ_PENDING) {
		snprintf(c->resp->wait_id, sizeof(c->resp->wait_id), "%s",
		    c->id);
		c->resp->wait_deadline_ms = c->a->now_ms() +
		    (int64_t)wait * 1000;
		sg_request_free(q);
		return;
	}
	respond_request(c->a, c->resp, 200, q);
	sg_request_free(q);
}

/* GET /v1/requests/{id}/signature */
static void
get_signature(struct call *c)
{
	struct sg_request *q;
	json_t *j;

	if ((q = fetch_request(c)) == NULL)
		return;
	if (q->state != SG_REQ_SIGNED || q->signature == NULL) {
		problem(c->resp, 409, NULL, "request %s is %s, not signed",
		    c->id, sg_req_state_str(q->state));
		sg_request_free(q);
		return;
	}
	if ((j = signature_json(c->a, q)) == NULL)
		problem(c->resp, 503, NULL, "the signature's log proof cannot "
		    "be read");
	else
		set_json(c->resp, 200, j);
	sg_request_free(q);
}

/* POST /v1/requests/{id}/approvals: the service reads the envelope. */
static void
post_approval(struct call *c)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	int r;

	memset(&f, 0, sizeof(f));
	r = sg_service_decide(c->a->svc, c->id, c->principal, c->req->body,
	    c->req->body_len, &q, &f);
	if (r != 0) {
		service_problem(c->resp, r, &f);
		return;
	}
	respond_request(c->a, c->resp, 200, q);
	sg_request_free(q);
}

/* POST /v1/requests/{id}/cancel {"reason": "..."}: by the requester or
 * an officer who may approve the request, while it is pending. */
static void
post_cancel(struct call *c)
{
	static const char *const top[] = { "reason", NULL };
	struct sg_text_fault tf;
	struct sg_request *q = NULL;
	struct sg_fault f;
	json_t *v;
	char why[128];
	int r;

	memset(&f, 0, sizeof(f));
	if (only_fields(c->resp, c->body, "", top) != 0)
		return;
	v = json_object_get(c->body, "reason");
	if (!json_is_string(v)) {
		problem(c->resp, 400, "reason", "reason: is required, a string "
		    "of 1 to %d bytes", SG_CANCEL_REASON_MAX);
		return;
	}
	/* Officers read it: the text rule, over every byte (a NUL too). */
	if (sg_text_ok(json_string_value(v), json_string_length(v),
	    &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		problem(c->resp, 400, "reason", "reason: %s", why);
		return;
	}
	r = sg_service_cancel(c->a->svc, c->id, c->principal,
	    json_string_value(v), &q, &f);
	if (r != 0) {
		service_problem(c->resp, r, &f);
		return;
	}
	respond_request(c->a, c->resp, 200, q);
	sg_request_free(q);
}

struct mbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void
mprintf(struct mbuf *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mprintf(struct mbuf *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (m->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(m->p + m->len, m->cap - m->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			m->err = 1;
			return;
		}
		if ((size_t)n < m->cap - m->len) {
			m->len += (size_t)n;
			return;
		}
		char *np = realloc(m->p, m->cap * 2 + (size_t)n);
		if (np == NULL) {
			m->err = 1;
			return;
		}
		m->p = np;
		m->cap = m->cap * 2 + (size_t)n;
	}
}

/* The front's connection counters. */
static void
http_metrics(struct mbuf *m)
{
	struct sg_http_stats hs;

	sg_http_stats(&hs);
	mprintf(m, "# HELP signgate_tls_client_verifications_total Client "
	    "certificate chains verified (once per connection).\n"
	    "# TYPE signgate_tls_client_verifications_total counter\n"
	    "signgate_tls_client_verifications_total %llu\n"
	    "# TYPE signgate_http_connections_total counter\n"
	    "signgate_http_connections_total{outcome=\"accepted\"} %llu\n"
	    "signgate_http_connections_total{outcome=\"refused\"} %llu\n"
	    "signgate_http_connections_total{outcome=\"evicted\"} %llu\n"
	    "# HELP signgate_http_deadline_closes_total Connections closed at "
	    "a deadline.\n"
	    "# TYPE signgate_http_deadline_closes_total counter\n"
	    "signgate_http_deadline_closes_total{deadline=\"handshake\"} "
	    "%llu\n"
	    "signgate_http_deadline_closes_total{deadline=\"first_request\"} "
	    "%llu\n"
	    "signgate_http_deadline_closes_total{deadline=\"request\"} %llu\n"
	    "# TYPE signgate_http_lingering_closes_total counter\n"
	    "signgate_http_lingering_closes_total %llu\n"
	    "# TYPE signgate_http_connections_open gauge\n"
	    "signgate_http_connections_open{state=\"unauthenticated\"} %u\n"
	    "signgate_http_connections_open{state=\"authenticated\"} %u\n",
	    (unsigned long long)hs.client_verifications,
	    (unsigned long long)hs.accepted, (unsigned long long)hs.refused,
	    (unsigned long long)hs.evicted,
	    (unsigned long long)hs.reaped_handshake,
	    (unsigned long long)hs.reaped_first_request,
	    (unsigned long long)hs.reaped_request,
	    (unsigned long long)hs.lingered, hs.open_unauthenticated,
	    hs.open_authenticated);
}

/* Requests by endpoint and status, from the API's own counters. */
static void
request_metrics(struct sg_api *a, struct mbuf *m)
{
	size_t i, j;
	char code[8];

	mprintf(m, "# HELP signgate_http_requests_total HTTP requests by "
	    "endpoint and status.\n"
	    "# TYPE signgate_http_requests_total counter\n");
	pthread_mutex_lock(&a->count_lock);
	for (i = 0; i < EP_COUNT; i++)
		for (j = 0; j <= NSTATUS; j++) {
			if (a->counts[i][j] == 0)
				continue;
			if (j < NSTATUS)
				snprintf(code, sizeof(code), "%d", statuses[j]);
			else
				snprintf(code, sizeof(code), "other");
			mprintf(m, "signgate_http_requests_total{"
			    "endpoint=\"%s\",status=\"%s\"} %llu\n",
			    endpoint_names[i], code,
			    (unsigned long long)a->counts[i][j]);
		}
	pthread_mutex_unlock(&a->count_lock);
}

/* The service's counters and its HSM latency histogram. */
static void
service_counters(struct sg_api *a, const struct sg_service_stats *st,
    struct mbuf *m)
{
	size_t i;

	mprintf(m, "# HELP signgate_signatures_total Signatures released, "
	    "by key.\n# TYPE signgate_signatures_total counter\n");
	for (i = 0; i < sg_service_nkeys(a->svc); i++)
		mprintf(m, "signgate_signatures_total{key=\"%s\"} %llu\n",
		    sg_service_key_at(a->svc, i)->pk->name,
		    (unsigned long long)sg_service_key_signatures(a->svc, i));
	mprintf(m, "# TYPE signgate_requests_created_total counter\n"
	    "signgate_requests_created_total %llu\n"
	    "# TYPE signgate_decisions_total counter\n"
	    "signgate_decisions_total{decision=\"approve\"} %llu\n"
	    "signgate_decisions_total{decision=\"reject\"} %llu\n"
	    "# TYPE signgate_requests_expired_total counter\n"
	    "signgate_requests_expired_total %llu\n"
	    "# TYPE signgate_hsm_errors_total counter\n"
	    "signgate_hsm_errors_total %llu\n",
	    (unsigned long long)st->requests_created,
	    (unsigned long long)st->approvals,
	    (unsigned long long)st->rejections,
	    (unsigned long long)st->expired,
	    (unsigned long long)st->hsm_errors);
	mprintf(m, "# HELP signgate_hsm_sign_seconds Time of one signing "
	    "call to the HSM.\n# TYPE signgate_hsm_sign_seconds histogram\n");
	for (i = 0; i < SG_HSM_BUCKETS; i++)
		mprintf(m, "signgate_hsm_sign_seconds_bucket{le=\"%g\"} "
		    "%llu\n", sg_hsm_bucket_bounds[i],
		    (unsigned long long)st->hsm_bucket[i]);
	mprintf(m, "signgate_hsm_sign_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "signgate_hsm_sign_seconds_sum %.6f\n"
	    "signgate_hsm_sign_seconds_count %llu\n",
	    (unsigned long long)st->hsm_bucket[SG_HSM_BUCKETS], st->hsm_sum,
	    (unsigned long long)st->hsm_count);
}

static void
service_gauges(const struct sg_service_stats *st, struct mbuf *m)
{
	mprintf(m, "# TYPE signgate_pending_requests gauge\n"
	    "signgate_pending_requests %llu\n"
	    "# TYPE signgate_log_size gauge\n"
	    "signgate_log_size %llu\n"
	    "# HELP signgate_checkpoint_age_seconds Age of the latest signed "
	    "checkpoint.\n# TYPE signgate_checkpoint_age_seconds gauge\n"
	    "signgate_checkpoint_age_seconds %lld\n"
	    "# HELP signgate_log_uncovered_entries Log entries committed but "
	    "not yet under a signed checkpoint.\n"
	    "# TYPE signgate_log_uncovered_entries gauge\n"
	    "signgate_log_uncovered_entries %llu\n"
	    "# HELP signgate_checkpoint_refusals_total Trees the signer "
	    "refused to sign as a fork or a rollback of the log it signed.\n"
	    "# TYPE signgate_checkpoint_refusals_total counter\n"
	    "signgate_checkpoint_refusals_total %llu\n"
	    "# TYPE signgate_store_batches_total counter\n"
	    "signgate_store_batches_total %llu\n"
	    "# TYPE signgate_store_jobs_total counter\n"
	    "signgate_store_jobs_total %llu\n",
	    (unsigned long long)st->pending, (unsigned long long)st->log_size,
	    st->checkpoint_at > 0 ?
	    (long long)(time(NULL) - st->checkpoint_at) : -1LL,
	    (unsigned long long)st->log_uncovered,
	    (unsigned long long)st->checkpoint_refusals,
	    (unsigned long long)st->batches,
	    (unsigned long long)st->batched_jobs);
}

/* GET /metrics (Prometheus text format) */
static void
get_metrics(struct call *c)
{
	struct sg_service_stats st;
	struct mbuf m = { NULL, 0, 4096, 0 };

	if ((m.p = malloc(m.cap)) == NULL) {
		problem(c->resp, 500, NULL, "out of memory");
		return;
	}
	sg_service_stats(c->a->svc, &st);
	request_metrics(c->a, &m);
	http_metrics(&m);
	service_counters(c->a, &st, &m);
	service_gauges(&st, &m);
	if (m.err) {
		free(m.p);
		problem(c->resp, 500, NULL, "out of memory");
		return;
	}
	c->resp->status = 200;
	c->resp->content_type = "text/plain; version=0.0.4";
	c->resp->body = m.p;
	c->resp->body_len = m.len;
}

/* GET /healthz */
static void
get_healthz(struct call *c)
{
	set_json(c->resp, 200, json_pack("{s:s}", "status", "ok"));
}

/* GET /readyz: a real test signature with every usable key. */
static void
get_readyz(struct call *c)
{
	char reason[256];

	if (sg_service_ready(c->a->svc, reason, sizeof(reason)) == 0) {
		set_json(c->resp, 200, json_pack("{s:s}", "status", "ready"));
		return;
	}
	set_json(c->resp, 503, json_pack("{s:s, s:s}", "status", "degraded",
	    "reason", reason));
	c->resp->content_type = "application/json";
}

static void
set_text(struct sg_http_response *resp, int status, const char *type,
    char *body, size_t len)
{
	resp->status = status;
	resp->content_type = type;
	resp->body = body;
	resp->body_len = len;
}

static int
query_u64(struct call *c, const char *name, uint64_t min, uint64_t *ret)
{
	const char *v = query(c, name);

	if (v == NULL || sg_parse_u64(v, min, INT64_MAX, ret) != 0) {
		problem(c->resp, 400, name, "%s: must be a whole number from "
		    "%llu", name, (unsigned long long)min);
		return -1;
	}
	return 0;
}

static json_t *
hashes_json(uint8_t (*h)[SG_HASH_LEN], size_t n)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; i < n; i++) {
		char *b = sg_b64_encode(h[i], SG_HASH_LEN);
		json_array_append_new(arr, json_string(b ? b : ""));
		free(b);
	}
	return arr;
}

/* GET /v1/log/checkpoint */
static void
get_log_checkpoint(struct call *c)
{
	char *text = NULL;
	uint64_t size;

	if (sg_service_log_checkpoint(c->a->svc, &text, &size) != 0)
		problem(c->resp, 503, NULL, "the log cannot be read");
	else
		set_text(c->resp, 200, "text/plain; charset=utf-8", text,
		    strlen(text));
}

/* GET /v1/log/key */
static void
get_log_key(struct call *c)
{
	char *text = NULL;

	if (asprintf(&text, "%s\n", sg_service_log_vkey(c->a->svc)) < 0)
		problem(c->resp, 500, NULL, "out of memory");
	else
		set_text(c->resp, 200, "text/plain; charset=utf-8", text,
		    strlen(text));
}

/* GET /v1/log/entries/{index} */
static void
get_log_entry(struct call *c)
{
	char *text = NULL;
	size_t len;
	int r;

	r = sg_service_log_entry(c->a->svc, c->index, &text, &len);
	if (r == SG_ERR_NOT_FOUND)
		problem(c->resp, 404, NULL, "no entry %llu under the latest "
		    "checkpoint", (unsigned long long)c->index);
	else if (r != 0)
		problem(c->resp, 503, NULL, "the log cannot be read");
	else
		set_text(c->resp, 200, "text/plain; charset=us-ascii", text,
		    len);
}

/* A log proof between two query numbers, a and b: hashes as JSON. */
struct proof_route {
	const char *a, *b;             /* the query arguments */
	uint64_t a_min;                /* b's minimum is 1 */
	int (*fn)(struct sg_service *, uint64_t, uint64_t,
	    uint8_t (*)[SG_HASH_LEN], size_t, size_t *);
	const char *why;               /* the 400's detail, about b */
};

static void
get_log_proof(struct call *c, const struct proof_route *pr)
{
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	uint64_t x, y;
	size_t n;
	int r;

	if (query_u64(c, pr->a, pr->a_min, &x) != 0 ||
	    query_u64(c, pr->b, 1, &y) != 0)
		return;
	r = pr->fn(c->a->svc, x, y, hashes, SG_MERKLE_MAX_PROOF, &n);
	if (r == SG_ERR_INVALID)
		problem(c->resp, 400, pr->b, "%s", pr->why);
	else if (r != 0)
		problem(c->resp, 503, NULL, "the log cannot be read");
	else
		set_json(c->resp, 200, json_pack("{s:I, s:I, s:o}", pr->a,
		    (json_int_t)x, pr->b, (json_int_t)y, "hashes",
		    hashes_json(hashes, n)));
}

/* GET /v1/log/proof/inclusion?index=&size= */
static void
get_log_inclusion(struct call *c)
{
	static const struct proof_route pr = { "index", "size", 0,
	    sg_service_log_inclusion, "index must be below size, and size "
	    "at most the latest checkpoint's" };

	get_log_proof(c, &pr);
}

/* GET /v1/log/proof/consistency?old=&new= */
static void
get_log_consistency(struct call *c)
{
	static const struct proof_route pr = { "old", "new", 1,
	    sg_service_log_consistency, "need 0 < old <= new <= the latest "
	    "checkpoint's size" };

	get_log_proof(c, &pr);
}

/* ---- the router ---------------------------------------------------------- */

/* A * row: a path its part of the tree does not have. */
static void
not_found(struct call *c)
{
	problem(c->resp, 404, NULL, "%s", c->missing != NULL ? c->missing :
	    "no such endpoint");
}

static unsigned
method_bit(const char *method)
{
	if (strcmp(method, "GET") == 0)
		return M_GET;
	if (strcmp(method, "POST") == 0)
		return M_POST;
	return M_OTHER;
}

/* What a pattern's parameters took from a path. */
struct args {
	char id[SG_REQUEST_ID_SIZE];
	uint64_t index;
	const char *bad;                /* why a parameter is not valid */
};

enum match {
	MATCH_NO,
	MATCH_YES,
	MATCH_BAD,                      /* the shape, with a bad parameter */
	MATCH_BELOW,                    /* a path below the pattern's {id} */
};

static enum match
match(const char *pat, const char *path, struct args *v)
{
	size_t n;

	while (*pat != '\0') {
		if (strcmp(pat, "*") == 0)
			return MATCH_YES;
		if (strncmp(pat, "{id}", 4) == 0) {
			n = strcspn(path, "/");
			v->bad = "no request with that id";
			if (n != sizeof(v->id) - 1)
				return MATCH_BAD;
			memcpy(v->id, path, n);
			v->id[n] = '\0';
			if (!sg_request_id_ok(v->id))
				return MATCH_BAD;
			pat += 4;
			path += n;
			if (*pat == '\0' && *path == '/')
				return MATCH_BELOW;
		} else if (strncmp(pat, "{index}", 7) == 0) {
			/* The rest of the path, so that any tail is "no such
			 * entry"; {index} ends its pattern. */
			v->bad = "no such entry";
			if (sg_parse_u64(path, 0, INT64_MAX, &v->index) != 0)
				return MATCH_BAD;
			pat += 7;
			path += strlen(path);
		} else if (*pat++ != *path++)
			return MATCH_NO;
	}
	return *path == '\0' ? MATCH_YES : MATCH_NO;
}

/* Rows i.. share a pattern: the one that takes the method, else row i
 * (a 405, after the checks of who may call). */
static const struct route *
pick_method(size_t i, unsigned method, unsigned *ret_allowed,
    enum endpoint *ret_ep)
{
	const struct route *rt = NULL;
	size_t j;

	for (j = i; j < NROUTES &&
	    strcmp(routes[j].pattern, routes[i].pattern) == 0; j++) {
		*ret_allowed |= routes[j].methods;
		if (rt == NULL && (routes[j].methods & method) != 0)
			rt = &routes[j];
	}
	/* A method none of them takes counts under the path's last row
	 * (POST /v1/requests for any method but GET). */
	*ret_ep = rt != NULL ? rt->ep : routes[j - 1].ep;
	return rt != NULL ? rt : &routes[i];
}

/*
 * The row for the request's path and method, with the path's parameters
 * stored in c; *ret_allowed has the methods the path's rows take (if not
 * c->method: 405), *ret_ep what the request is counted under.  NULL for
 * a path no row covers.
 */
static const struct route *
route_find(struct call *c, unsigned *ret_allowed, enum endpoint *ret_ep)
{
	const struct route *rt;
	enum endpoint below = EP_COUNT;
	enum match m;
	struct args v;
	size_t i;

	*ret_allowed = 0;
	*ret_ep = EP_OTHER;
	for (i = 0; i < NROUTES; i++) {
		memset(&v, 0, sizeof(v));
		m = match(routes[i].pattern, c->req->path, &v);
		if (m == MATCH_BAD && c->missing == NULL)
			c->missing = v.bad;
		else if (m == MATCH_BELOW)
			below = routes[i].ep;
		if (m != MATCH_YES)
			continue;
		rt = pick_method(i, c->method, ret_allowed, ret_ep);
		memcpy(c->id, v.id, sizeof(c->id));
		c->index = v.index;
		/* A path below a request counts under the request. */
		if (rt->fn == not_found && below != EP_COUNT)
			*ret_ep = below;
		return rt;
	}
	return NULL;
}

/* Without a certificate: one budget of their own, so that readers of the
 * public log can never crowd out the principals.  1 when over it. */
static int
anonymous_over(struct call *c)
{
	unsigned wait;

	if (c->req->authenticated || (wait = anon_take(c->a)) == 0)
		return 0;
	problem(c->resp, 429, NULL, "requests without a client certificate "
	    "are over their rate limit of %u per second",
	    c->a->anon_per_second);
	c->resp->retry_after = wait;
	return 1;
}

/* Who may call the row; 0 to go on, else the problem is answered.  Sets
 * c->principal. */
static int
admit(struct call *c, const struct route *rt)
{
	const struct sg_http_request *req = c->req;
	const struct sg_principal *pr = NULL;
	unsigned wait;

	if (rt->who == WHO_ANYONE)
		return 0;
	if (rt->who == WHO_LOOPBACK) {
		if (req->loopback)
			return 0;
		problem(c->resp, 403, NULL, "only from loopback");
		return -1;
	}
	if (req->authenticated)
		pr = sg_policy_principal_by_cert(sg_service_policy(c->a->svc),
		    req->client_cn, req->client_sha256);
	if (pr == NULL) {
		if (c->a->plain_http && c->method == M_GET)
			return 0;
		problem(c->resp, 401, NULL, req->authenticated ?
		    "the client certificate maps to no principal" :
		    "a client certificate issued by the client CA is "
		    "required");
		return -1;
	}
	if ((wait = rate_take(c->a, pr->name)) > 0) {
		problem(c->resp, 429, NULL, "'%s' is over its rate limit of %u "
		    "requests per second", pr->name, c->a->rate_per_second);
		c->resp->retry_after = wait;
		return -1;
	}
	c->principal = pr->name;
	return 0;
}

static void
not_allowed(struct call *c, const struct route *rt, unsigned allowed)
{
	if (rt->not_allowed != NULL)
		problem(c->resp, 405, NULL, "%s", rt->not_allowed);
	else
		problem(c->resp, 405, NULL, "use %s%s%s",
		    allowed & M_GET ? "GET" : "",
		    (allowed & M_GET) && (allowed & M_POST) ? " or " : "",
		    allowed & M_POST ? "POST" : "");
}

/* The body of a row that takes one; 0 to go on. */
static int
take_body(struct call *c, const struct route *rt)
{
	if (c->req->body_len > rt->body_max) {
		problem(c->resp, 413, NULL, "the body exceeds the limit of %zu "
		    "bytes", rt->body_max);
		return -1;
	}
	if (!is_json(c->req)) {
		problem(c->resp, 415, NULL, "Content-Type must be "
		    "application/json");
		return -1;
	}
	if (rt->body == BODY_OBJECT &&
	    (c->body = parse_body(c->req, c->resp)) == NULL)
		return -1;
	return 0;
}

static void
count(struct sg_api *a, enum endpoint ep, int status)
{
	size_t i;

	for (i = 0; i < NSTATUS && statuses[i] != status; i++)
		;
	pthread_mutex_lock(&a->count_lock);
	a->counts[ep][i]++;
	pthread_mutex_unlock(&a->count_lock);
}

void
sg_api_dispatch(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	const struct route *rt;
	struct call c;
	enum endpoint ep;
	unsigned allowed;

	memset(&c, 0, sizeof(c));
	c.a = a;
	c.req = req;
	c.resp = resp;
	c.method = method_bit(req->method);
	rt = route_find(&c, &allowed, &ep);
	if (anonymous_over(&c))
		;
	else if (rt == NULL)
		problem(resp, 404, NULL, "no such endpoint");
	else if (admit(&c, rt) != 0)
		;
	else if (!(allowed & c.method))
		not_allowed(&c, rt, allowed);
	else if (rt->body == BODY_NONE || take_body(&c, rt) == 0)
		rt->fn(&c);
	json_decref(c.body);
	/* A long-poll is counted once, when it is answered. */
	if (resp->wait_id[0] == '\0')
		count(a, ep, resp->status);
}

void
sg_api_handle(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	sg_api_dispatch(ctx, req, resp);
}
