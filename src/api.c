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
 * 32 lower-case hex digits), {sha} (a policy's SHA-256: 64 of them) and
 * {index} (a log index: the rest of the
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
 * verified client certificate, mapped to a policy principal, or from the
 * officers' console, which has authenticated its officer with a security
 * key and calls sg_api_dispatch_as() (src/console.c).
 *
 * The router touches no socket: sg_api_dispatch() takes a request and
 * fills a response (sg_http.h), so that tests and fuzzers drive it
 * directly.  Its counters (requests by endpoint and status) and rate
 * buckets live in the struct sg_api.
 *
 * This file holds the table, the dispatch and what every row shares
 * (identity, rate limits, bodies, problems); the handlers live by
 * resource in api_requests.c, api_log.c and api_ops.c, which may call
 * back only the problem and rendering helpers of api_int.h.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "api_int.h"
#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_text.h"
#include "sg_util.h"

/* The front refuses larger bodies before they reach the API; the same
 * limit here holds for callers that are not the front. */
#define BODY_MAX SG_HTTP_MAX_BODY

#define RATE_MAX_PRINCIPALS 4096

static handler_fn not_found;

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
	    api_get_healthz, NULL },
	{ M_GET, "/readyz", WHO_LOOPBACK, BODY_NONE, 0, EP_OPS,
	    api_get_readyz, NULL },
	{ M_GET, "/metrics", WHO_LOOPBACK, BODY_NONE, 0, EP_OPS,
	    api_get_metrics, NULL },
	/* The transparency log is public: anyone may read and check it. */
	{ M_GET, "/v1/log/checkpoint", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    api_get_log_checkpoint, NULL },
	{ M_GET, "/v1/log/key", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    api_get_log_key, NULL },
	{ M_GET, "/v1/log/entries/{index}", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    api_get_log_entry, NULL },
	{ M_GET, "/v1/log/proof/inclusion", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    api_get_log_inclusion, NULL },
	{ M_GET, "/v1/log/proof/consistency", WHO_ANYONE, BODY_NONE, 0,
	    EP_LOG, api_get_log_consistency, NULL },
	/* The same log as c2sp.org/tlog-tiles (api_tiles.c). */
	{ M_GET, "/log/*", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    api_get_log_tiles, NULL },
	{ M_GET, "/v1/log/*", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    not_found, NULL },
	/* The policy versions in the log: public; approvals of a pending
	 * version, officers. */
	{ M_GET, "/v1/policies/pending", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    api_get_policy_pending, NULL },
	{ M_GET, "/v1/policies/{sha}", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    api_get_policy, NULL },
	{ M_POST, "/v1/policies/{sha}/approvals", WHO_PRINCIPAL, BODY_JSON,
	    BODY_MAX, EP_APPROVALS, api_post_policy_approval,
	    "method not allowed" },
	{ M_ANY, "/v1/policies/*", WHO_ANYONE, BODY_NONE, 0, EP_LOG,
	    not_found, NULL },
	/* Keys and requests: principals only. */
	{ M_GET, "/v1/keys", WHO_PRINCIPAL, BODY_NONE, 0, EP_KEYS,
	    api_get_keys, NULL },
	{ M_GET, "/v1/requests", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_REQUESTS_LIST, api_list_requests, NULL },
	{ M_POST, "/v1/requests", WHO_PRINCIPAL, BODY_OBJECT, BODY_MAX,
	    EP_REQUESTS_POST, api_post_request, NULL },
	{ M_GET, "/v1/requests/{id}", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_REQUEST, api_get_request, "method not allowed" },
	{ M_GET, "/v1/requests/{id}/signature", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_SIGNATURE, api_get_signature, "method not allowed" },
	{ M_POST, "/v1/requests/{id}/approvals", WHO_PRINCIPAL, BODY_JSON,
	    BODY_MAX, EP_APPROVALS, api_post_approval, "method not allowed" },
	{ M_POST, "/v1/requests/{id}/cancel", WHO_PRINCIPAL, BODY_OBJECT,
	    BODY_MAX, EP_CANCEL, api_post_cancel, "method not allowed" },
	/* Releases and grants. */
	{ M_POST, "/v1/releases", WHO_PRINCIPAL, BODY_OBJECT,
	    SG_HTTP_MAX_RELEASE_BODY, EP_RELEASES, api_post_release, NULL },
	{ M_GET, "/v1/releases/{id}/manifest", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_RELEASES, api_get_manifest, "method not allowed" },
	{ M_GET, "/v1/releases/{id}/artifacts", WHO_PRINCIPAL, BODY_NONE, 0,
	    EP_RELEASES, api_get_artifacts, "method not allowed" },
	{ M_POST, "/v1/grants", WHO_PRINCIPAL, BODY_OBJECT, BODY_MAX,
	    EP_GRANTS, api_post_grant, NULL },
	{ M_POST, "/v1/grants/{id}/revoke", WHO_PRINCIPAL, BODY_OBJECT,
	    BODY_MAX, EP_GRANTS, api_post_revoke, "method not allowed" },
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

const char *
sg_api_status_title(int status)
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

void
api_set_json(struct sg_http_response *resp, int status, json_t *j)
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
void
api_utf8_cut(char *s)
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

static json_t *
problem_doc(int status, const char *field, const char *detail)
{
	json_t *j;

	j = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
	    sg_api_status_title(status), "status", status, "detail", detail);
	if (j != NULL && field != NULL && field[0] != '\0')
		json_object_set_new(j, "field", json_string(field));
	return j;
}

void
api_problem(struct sg_http_response *resp, int status, const char *field,
    const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	api_utf8_cut(detail);
	if (status == 503)
		resp->retry_after = 5;
	api_set_json(resp, status, problem_doc(status, field, detail));
}

/* A service error with its fault, in one place. */
void
api_service_problem(struct sg_http_response *resp, int r,
    const struct sg_fault *f)
{
	int status = sg_err_http_status(r);
	char field[sizeof(f->field)], detail[sizeof(f->detail)];
	json_t *j;

	if (f == NULL || f->detail[0] == '\0') {
		api_problem(resp, status, NULL, "%s", sg_strerror(r));
		return;
	}
	snprintf(field, sizeof(field), "%s", f->field);
	snprintf(detail, sizeof(detail), "%s", f->detail);
	api_utf8_cut(field);
	api_utf8_cut(detail);
	j = problem_doc(status, field, detail);
	/* Stored, though not acknowledged: a retry must not redo it, and
	 * one with the Idempotency-Key returns it. */
	if (j != NULL && f->recorded)
		json_object_set_new(j, "recorded", json_true());
	if (status == 503)
		resp->retry_after = 5;
	api_set_json(resp, status, j);
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

const char *
api_query(const struct call *c, const char *name)
{
	return param(c->req->query, c->req->nquery, name);
}

const char *
api_header(const struct sg_http_request *req, const char *name)
{
	return param(req->headers, req->nheaders, name);
}

static int
is_json(const struct sg_http_request *req)
{
	const char *ct = api_header(req, "Content-Type");
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
			api_utf8_cut(sub);
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
			api_problem(resp, 400, path, "%s: a member name is not "
			    "valid UTF-8", path[0] != '\0' ? path : "body");
		else
			api_problem(resp, 400, path, "%s: is not valid UTF-8",
			    path);
	} else
		api_problem(resp, 400, NULL, "the body is not valid UTF-8 (byte "
		    "%zu)", first);
	json_decref(j);
}

/* The body as a JSON object; Content-Type was checked by the router. */
static json_t *
parse_body(const struct sg_http_request *req, struct sg_http_response *resp)
{
	json_error_t err;
	json_t *j;
	char text[4 * JSON_ERROR_TEXT_LENGTH];
	size_t first;

	if ((first = utf8_prefix(req->body, req->body_len)) != req->body_len) {
		not_utf8_problem(req, resp, first);
		return NULL;
	}
	j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
	if (j == NULL) {
		/* jansson quotes the body near the error, and may cut a
		 * multi-byte character in two: only escaped text goes into
		 * the problem document, which must itself be UTF-8. */
		sg_escape(err.text, strnlen(err.text, sizeof(err.text)), text,
		    sizeof(text));
		api_problem(resp, 400, NULL, "malformed JSON at line %d column "
		    "%d: %s", err.line, err.column, text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		api_problem(resp, 400, NULL, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

/* ---- the router ---------------------------------------------------------- */

/* A * row: a path its part of the tree does not have. */
static void
not_found(struct call *c)
{
	api_problem(c->resp, 404, NULL, "%s", c->missing != NULL ? c->missing :
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
	char sha[SG_SHA256_HEX_SIZE];
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
		} else if (strncmp(pat, "{sha}", 5) == 0) {
			n = strcspn(path, "/");
			v->bad = "no such policy";
			if (n != SG_SHA256_HEX_LEN || !sg_lower_hexn(path, n))
				return MATCH_BAD;
			memcpy(v->sha, path, n);
			v->sha[n] = '\0';
			pat += 5;
			path += n;
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
		memcpy(c->sha, v.sha, sizeof(c->sha));
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

	if (c->req->authenticated || c->as != NULL ||
	    (wait = anon_take(c->a)) == 0)
		return 0;
	api_problem(c->resp, 429, NULL, "requests without a client certificate "
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
		api_problem(c->resp, 403, NULL, "only from loopback");
		return -1;
	}
	if (c->as != NULL)
		pr = sg_policy_principal(sg_service_policy(c->a->svc), c->as);
	else if (req->authenticated)
		pr = sg_policy_principal_by_cert(sg_service_policy(c->a->svc),
		    req->client_cn, req->client_sha256);
	if (pr == NULL && c->as != NULL) {
		api_problem(c->resp, 401, NULL, "'%s' is not a principal of "
		    "the policy in force", c->as);
		return -1;
	}
	if (pr == NULL) {
		if (c->a->plain_http && c->method == M_GET)
			return 0;
		api_problem(c->resp, 401, NULL, req->authenticated ?
		    "the client certificate maps to no principal" :
		    "a client certificate issued by the client CA is "
		    "required");
		return -1;
	}
	if ((wait = rate_take(c->a, pr->name)) > 0) {
		api_problem(c->resp, 429, NULL, "'%s' is over its rate limit of %u "
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
		api_problem(c->resp, 405, NULL, "%s", rt->not_allowed);
	else
		api_problem(c->resp, 405, NULL, "use %s%s%s",
		    allowed & M_GET ? "GET" : "",
		    (allowed & M_GET) && (allowed & M_POST) ? " or " : "",
		    allowed & M_POST ? "POST" : "");
}

/* The body of a row that takes one; 0 to go on. */
static int
take_body(struct call *c, const struct route *rt)
{
	if (c->req->body_len > rt->body_max) {
		api_problem(c->resp, 413, NULL, "the body exceeds the limit of %zu "
		    "bytes", rt->body_max);
		return -1;
	}
	if (!is_json(c->req)) {
		api_problem(c->resp, 415, NULL, "Content-Type must be "
		    "application/json");
		return -1;
	}
	if (rt->body == BODY_OBJECT &&
	    (c->body = parse_body(c->req, c->resp)) == NULL)
		return -1;
	return 0;
}


static void
dispatch(struct sg_api *a, const char *as, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	const struct route *rt;
	struct call c;
	enum endpoint ep;
	unsigned allowed;

	memset(&c, 0, sizeof(c));
	c.a = a;
	c.as = as;
	c.req = req;
	c.resp = resp;
	c.method = method_bit(req->method);
	rt = route_find(&c, &allowed, &ep);
	if (anonymous_over(&c))
		;
	else if (rt == NULL)
		api_problem(resp, 404, NULL, "no such endpoint");
	else if (admit(&c, rt) != 0)
		;
	else if (!(allowed & c.method))
		not_allowed(&c, rt, allowed);
	else if (rt->body == BODY_NONE || take_body(&c, rt) == 0)
		rt->fn(&c);
	json_decref(c.body);
	/* A long-poll is counted once, when it is answered; an answer
	 * given later, by whoever gives it. */
	if (resp->wait_id[0] == '\0' && !resp->later)
		api_count(a, ep, resp->status);
}

void
sg_api_dispatch(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	dispatch(a, NULL, req, resp);
}

void
sg_api_dispatch_as(struct sg_api *a, const char *principal,
    const struct sg_http_request *req, struct sg_http_response *resp)
{
	dispatch(a, principal, req, resp);
}

void
sg_api_handle(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	sg_api_dispatch(ctx, req, resp);
}
