/*
 * HTTP API handlers.
 *
 * Input discipline: bodies are JSON objects parsed with duplicate keys
 * refused; every member is checked for type, size and syntax, unknown
 * members are refused, and each error names the field (RFC 9457 problem
 * documents with an extra "field" member).  Identity comes only from the
 * verified client certificate, mapped to a policy principal.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_api.h"
#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_text.h"
#include "sg_util.h"

#define ARTIFACT_MAX_FIELDS 32
#define ARTIFACT_NAME_MAX 64
#define ARTIFACT_VALUE_MAX 1024
#define IDEM_KEY_MAX 128
#define LIST_DEFAULT 50
#define LIST_MAX 200
#define WAIT_MAX 60

#define RATE_MAX_PRINCIPALS 4096

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
};

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
	pthread_mutex_init(&a->rate_lock, NULL);
	*ret = a;
	return 0;
}

void
sg_api_set_anonymous_rate(struct sg_api *a, unsigned per_second,
    unsigned burst)
{
	pthread_mutex_lock(&a->rate_lock);
	a->anon_per_second = per_second;
	a->anon_burst = burst;
	a->anon.tokens = burst;
	a->anon.last_ms = sg_now_ms();
	pthread_mutex_unlock(&a->rate_lock);
}

void
sg_api_free(struct sg_api *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->rate_lock);
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
	int64_t now = sg_now_ms();
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
	    sg_now_ms());
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

	json_t *j;

	if (f == NULL || f->detail[0] == '\0') {
		problem(resp, status, NULL, "%s", sg_strerror(r));
		return;
	}
	j = problem_doc(status, f->field, f->detail);
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
	    "id", q->id, "state", q->state, "key", q->key,
	    "digest", "algorithm", q->digest_alg, "value", q->digest_hex,
	    "format", q->format,
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
		    "counts", have_quorum && i < SG_SERVICE_MAX_DECISIONS &&
		    v.counted[i]));
	}
	json_object_set_new(j, "approvals", approvals);
	required = json_array();
	if (have_quorum) {
		for (i = 0; i < v.res.nterms && i < v.nterms; i++)
			json_array_append_new(required, json_pack(
			    "{s:s, s:i, s:i}", "group", v.terms[i].group,
			    "count", (int)v.terms[i].count, "missing",
			    strcmp(q->state, "pending") == 0 ?
			    (int)v.res.missing[i] : 0));
		json_object_set_new(j, "policy_in_force",
		    json_string(v.in_force));
	}
	json_object_set_new(j, "required", required);
	if (q->error != NULL)
		json_object_set_new(j, "error", json_string(q->error));
	if (strcmp(q->state, "cancelled") == 0) {
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
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "format", q->format,
	    "algorithm", alg != NULL ? alg : "unknown", "digest_algorithm",
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

	if (j != NULL && strcmp(q->state, "signed") == 0 &&
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
		json_array_append_new(formats, json_string("raw"));
	if (pk->formats & SG_FORMAT_CMS)
		json_array_append_new(formats, json_string("cms"));
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
get_keys(struct sg_api *a, struct sg_http_response *resp)
{
	json_t *keys = json_array(), *k;
	size_t i;

	for (i = 0; i < sg_service_nkeys(a->svc); i++) {
		k = key_json(sg_service_policy(a->svc),
		    sg_service_key_at(a->svc, i));
		if (k == NULL) {
			json_decref(keys);
			problem(resp, 500, NULL, "cannot render keys");
			return;
		}
		json_array_append_new(keys, k);
	}
	set_json(resp, 200, json_pack("{s:o}", "keys", keys));
}

static int
is_json(const struct sg_http_request *req)
{
	const char *ct = req->content_type;
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

static json_t *
parse_body(const struct sg_http_request *req, struct sg_http_response *resp)
{
	json_error_t err;
	json_t *j;
	size_t first;

	if (!is_json(req)) {
		problem(resp, 415, NULL, "Content-Type must be "
		    "application/json");
		return NULL;
	}
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
	if (json_object_size(art) > ARTIFACT_MAX_FIELDS) {
		problem(resp, 400, "artifact", "artifact: at most %d fields",
		    ARTIFACT_MAX_FIELDS);
		return -1;
	}
	json_object_foreach(art, k, v) {
		snprintf(field, sizeof(field), "artifact.%.64s", k);
		if (!sg_name_ok(k, ARTIFACT_NAME_MAX)) {
			problem(resp, 400, "artifact", "artifact: field names "
			    "are 1-%d characters of A-Z a-z 0-9 . _ -",
			    ARTIFACT_NAME_MAX);
			return -1;
		}
		if (!json_is_string(v)) {
			problem(resp, 400, field, "%s: must be a string", field);
			return -1;
		}
		if (json_string_length(v) == 0 ||
		    json_string_length(v) > ARTIFACT_VALUE_MAX) {
			problem(resp, 400, field, "%s: must be 1-%d bytes of "
			    "printable text", field, ARTIFACT_VALUE_MAX);
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

static void
post_request(struct sg_api *a, const struct sg_http_request *req,
    const char *principal, struct sg_http_response *resp)
{
	static const char *const top[] = { "key", "digest", "format",
	    "artifact", NULL };
	static const char *const dig[] = { "algorithm", "value", NULL };
	struct sg_new_request nr;
	struct sg_request *q = NULL;
	struct sg_fault f;
	json_t *body, *v, *digest;
	char *artifact = NULL, body_sha[65];
	uint8_t h[32];
	const char *s;
	int r, existing = 0;

	memset(&nr, 0, sizeof(nr));
	memset(&f, 0, sizeof(f));
	if ((body = parse_body(req, resp)) == NULL)
		return;
	if (only_fields(resp, body, "", top) != 0)
		goto out;

	v = json_object_get(body, "key");
	if (!json_is_string(v) || !sg_name_ok(json_string_value(v), 63)) {
		problem(resp, 400, "key", "key: must be a key name");
		goto out;
	}
	nr.key = json_string_value(v);

	digest = json_object_get(body, "digest");
	if (!json_is_object(digest)) {
		problem(resp, 400, "digest", "digest: must be an object with "
		    "algorithm and value");
		goto out;
	}
	if (only_fields(resp, digest, "digest.", dig) != 0)
		goto out;
	v = json_object_get(digest, "algorithm");
	if (!json_is_string(v) || (nr.digest_alg =
	    sg_digest_from_name(json_string_value(v))) == SG_DIGEST_NONE) {
		problem(resp, 400, "digest.algorithm", "digest.algorithm: "
		    "must be sha256, sha384 or sha512");
		goto out;
	}
	v = json_object_get(digest, "value");
	if (!json_is_string(v) ||
	    json_string_length(v) != 2 * sg_digest_len(nr.digest_alg) ||
	    sg_hex_decode(json_string_value(v), json_string_length(v),
	    nr.digest, sizeof(nr.digest), &nr.digest_len) != 0) {
		problem(resp, 400, "digest.value", "digest.value: must be %zu "
		    "hex characters for %s", 2 * sg_digest_len(nr.digest_alg),
		    sg_digest_name(nr.digest_alg));
		goto out;
	}

	nr.format = "raw";
	if ((v = json_object_get(body, "format")) != NULL) {
		if (!json_is_string(v) ||
		    (strcmp(json_string_value(v), "raw") != 0 &&
		    strcmp(json_string_value(v), "cms") != 0)) {
			problem(resp, 400, "format", "format: must be raw or "
			    "cms");
			goto out;
		}
		nr.format = json_string_value(v);
	}
	if ((v = json_object_get(body, "artifact")) == NULL) {
		problem(resp, 400, "artifact", "artifact: is required");
		goto out;
	}
	if (parse_artifact(resp, v, &artifact) != 0)
		goto out;
	nr.artifact_json = artifact;
	nr.requester = principal;

	if ((s = req->idempotency_key) != NULL) {
		if (strlen(s) == 0 || strlen(s) > IDEM_KEY_MAX ||
		    !printable(s, strlen(s))) {
			problem(resp, 400, "Idempotency-Key", "Idempotency-Key: "
			    "must be 1-%d printable characters", IDEM_KEY_MAX);
			goto out;
		}
		nr.idem_key = s;
		sg_sha256(req->body, req->body_len, h);
		sg_hex_encode(h, sizeof(h), body_sha);
		nr.body_sha256 = body_sha;
	}

	r = sg_service_create(a->svc, &nr, &q, &existing, &f);
	if (r != 0) {
		service_problem(resp, r, &f);
		goto out;
	}
	snprintf(resp->location, sizeof(resp->location), "/v1/requests/%s",
	    q->id);
	respond_request(a, resp, existing ? 200 : 201, q);
out:
	sg_request_free(q);
	free(artifact);
	json_decref(body);
}

static void
list_requests(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	const char *state = sg_http_query(req, "state");
	const char *key = sg_http_query(req, "key");
	const char *limit_s = sg_http_query(req, "limit");
	const char *cursor = sg_http_query(req, "cursor");
	struct sg_request **v = NULL;
	uint64_t limit = LIST_DEFAULT, before = 0;
	size_t i, n = 0;
	json_t *arr, *j;

	if (state != NULL && strcmp(state, "pending") != 0 &&
	    strcmp(state, "signed") != 0 && strcmp(state, "rejected") != 0 &&
	    strcmp(state, "expired") != 0 && strcmp(state, "failed") != 0 &&
	    strcmp(state, "cancelled") != 0) {
		problem(resp, 400, "state", "state: must be pending, signed, "
		    "rejected, expired, failed or cancelled");
		return;
	}
	if (key != NULL && !sg_name_ok(key, 63)) {
		problem(resp, 400, "key", "key: must be a key name");
		return;
	}
	if (limit_s != NULL && sg_parse_u64(limit_s, 1, LIST_MAX, &limit) != 0) {
		problem(resp, 400, "limit", "limit: must be 1 to %d", LIST_MAX);
		return;
	}
	if (cursor != NULL && sg_parse_u64(cursor, 1, INT64_MAX, &before) != 0) {
		problem(resp, 400, "cursor", "cursor: not a cursor from this "
		    "server");
		return;
	}
	if (sg_service_list(a->svc, state, key, (int64_t)before, limit, &v,
	    &n) != 0) {
		problem(resp, 503, NULL, "the request store cannot be read");
		return;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		if ((j = request_json(a, v[i])) != NULL)
			json_array_append_new(arr, j);
	}
	j = json_pack("{s:o}", "requests", arr);
	if (n == limit && n > 0) {
		char c[32];
		snprintf(c, sizeof(c), "%lld", (long long)v[n - 1]->seq);
		json_object_set_new(j, "next_cursor", json_string(c));
	} else
		json_object_set_new(j, "next_cursor", json_null());
	sg_request_list_free(v, n);
	set_json(resp, 200, j);
}

static void
get_request(struct sg_api *a, const struct sg_http_request *req,
    const char *id, struct sg_http_response *resp)
{
	const char *wait_s = sg_http_query(req, "wait");
	struct sg_request *q = NULL;
	uint64_t wait = 0;
	int r;

	if (wait_s != NULL && sg_parse_u64(wait_s, 0, WAIT_MAX, &wait) != 0) {
		problem(resp, 400, "wait", "wait: must be 0 to %d seconds",
		    WAIT_MAX);
		return;
	}
	if ((r = sg_service_get(a->svc, id, &q)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			problem(resp, 404, NULL, "no request with id '%s'", id);
		else
			problem(resp, 503, NULL, "the request store cannot be "
			    "read");
		return;
	}
	if (wait > 0 && !req->resumed && strcmp(q->state, "pending") == 0) {
		snprintf(resp->wait_id, sizeof(resp->wait_id), "%s", id);
		resp->wait_deadline_ms = sg_now_ms() + (int64_t)wait * 1000;
		sg_request_free(q);
		return;
	}
	respond_request(a, resp, 200, q);
	sg_request_free(q);
}

static void
get_signature(struct sg_api *a, const char *id, struct sg_http_response *resp)
{
	struct sg_request *q = NULL;
	json_t *j;
	int r;

	if ((r = sg_service_get(a->svc, id, &q)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			problem(resp, 404, NULL, "no request with id '%s'", id);
		else
			problem(resp, 503, NULL, "the request store cannot be "
			    "read");
		return;
	}
	if (strcmp(q->state, "signed") != 0 || q->signature == NULL) {
		problem(resp, 409, NULL, "request %s is %s, not signed", id,
		    q->state);
		sg_request_free(q);
		return;
	}
	if ((j = signature_json(a, q)) == NULL)
		problem(resp, 503, NULL, "the signature's log proof cannot be "
		    "read");
	else
		set_json(resp, 200, j);
	sg_request_free(q);
}

static void
post_approval(struct sg_api *a, const struct sg_http_request *req,
    const char *id, const char *principal, struct sg_http_response *resp)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	int r;

	memset(&f, 0, sizeof(f));
	if (!is_json(req)) {
		problem(resp, 415, NULL, "Content-Type must be "
		    "application/json");
		return;
	}
	r = sg_service_decide(a->svc, id, principal, req->body, req->body_len,
	    &q, &f);
	if (r != 0) {
		service_problem(resp, r, &f);
		return;
	}
	respond_request(a, resp, 200, q);
	sg_request_free(q);
}

/* POST /v1/requests/{id}/cancel {"reason": "..."}: by the requester or
 * an officer who may approve the request, while it is pending. */
static void
post_cancel(struct sg_api *a, const struct sg_http_request *req,
    const char *id, const char *principal, struct sg_http_response *resp)
{
	static const char *const top[] = { "reason", NULL };
	struct sg_text_fault tf;
	struct sg_request *q = NULL;
	struct sg_fault f;
	json_t *body, *v;
	char why[128];
	int r;

	memset(&f, 0, sizeof(f));
	if ((body = parse_body(req, resp)) == NULL)
		return;
	if (only_fields(resp, body, "", top) != 0)
		goto out;
	v = json_object_get(body, "reason");
	if (!json_is_string(v)) {
		problem(resp, 400, "reason", "reason: is required, a string of "
		    "1 to %d bytes", SG_CANCEL_REASON_MAX);
		goto out;
	}
	/* Officers read it: the text rule, over every byte (a NUL too). */
	if (sg_text_ok(json_string_value(v), json_string_length(v),
	    &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		problem(resp, 400, "reason", "reason: %s", why);
		goto out;
	}
	r = sg_service_cancel(a->svc, id, principal, json_string_value(v), &q,
	    &f);
	if (r != 0) {
		service_problem(resp, r, &f);
		goto out;
	}
	respond_request(a, resp, 200, q);
out:
	sg_request_free(q);
	json_decref(body);
}

/* Requests by endpoint and status, counted in sg_api_handle. */
enum route {
	RT_KEYS, RT_REQUESTS_POST, RT_REQUESTS_LIST, RT_REQUEST, RT_SIGNATURE,
	RT_APPROVALS, RT_CANCEL, RT_LOG, RT_OPS, RT_OTHER, RT_COUNT
};
static const char *const route_names[RT_COUNT] = {
	"GET /v1/keys", "POST /v1/requests", "GET /v1/requests",
	"GET /v1/requests/{id}", "GET /v1/requests/{id}/signature",
	"POST /v1/requests/{id}/approvals", "POST /v1/requests/{id}/cancel",
	"GET /v1/log", "ops", "other",
};
static const int statuses[] = { 200, 201, 400, 401, 403, 404, 405, 409,
    413, 415, 422, 429, 500, 503 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))
static uint64_t route_counts[RT_COUNT][NSTATUS + 1];
static pthread_mutex_t route_lock = PTHREAD_MUTEX_INITIALIZER;

static void
count_route(enum route rt, int status)
{
	size_t i;

	for (i = 0; i < NSTATUS && statuses[i] != status; i++)
		;
	pthread_mutex_lock(&route_lock);
	route_counts[rt][i]++;
	pthread_mutex_unlock(&route_lock);
}

struct mbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void
mprintf(struct mbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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

static void
get_metrics(struct sg_api *a, struct sg_http_response *resp)
{
	struct sg_service_stats st;
	struct mbuf m = { NULL, 0, 4096, 0 };
	size_t i, j;

	if ((m.p = malloc(m.cap)) == NULL) {
		problem(resp, 500, NULL, "out of memory");
		return;
	}
	sg_service_stats(a->svc, &st);
	mprintf(&m, "# HELP signgate_http_requests_total HTTP requests by "
	    "endpoint and status.\n"
	    "# TYPE signgate_http_requests_total counter\n");
	pthread_mutex_lock(&route_lock);
	for (i = 0; i < RT_COUNT; i++)
		for (j = 0; j <= NSTATUS; j++)
			if (route_counts[i][j] > 0) {
				char code[8];
				if (j < NSTATUS)
					snprintf(code, sizeof(code), "%d",
					    statuses[j]);
				else
					snprintf(code, sizeof(code), "other");
				mprintf(&m, "signgate_http_requests_total{"
				    "endpoint=\"%s\",status=\"%s\"} %llu\n",
				    route_names[i], code,
				    (unsigned long long)route_counts[i][j]);
			}
	pthread_mutex_unlock(&route_lock);
	http_metrics(&m);
	mprintf(&m, "# HELP signgate_signatures_total Signatures released, "
	    "by key.\n# TYPE signgate_signatures_total counter\n");
	for (i = 0; i < sg_service_nkeys(a->svc); i++)
		mprintf(&m, "signgate_signatures_total{key=\"%s\"} %llu\n",
		    sg_service_key_at(a->svc, i)->pk->name,
		    (unsigned long long)sg_service_key_signatures(a->svc, i));
	mprintf(&m, "# TYPE signgate_requests_created_total counter\n"
	    "signgate_requests_created_total %llu\n"
	    "# TYPE signgate_decisions_total counter\n"
	    "signgate_decisions_total{decision=\"approve\"} %llu\n"
	    "signgate_decisions_total{decision=\"reject\"} %llu\n"
	    "# TYPE signgate_requests_expired_total counter\n"
	    "signgate_requests_expired_total %llu\n"
	    "# TYPE signgate_hsm_errors_total counter\n"
	    "signgate_hsm_errors_total %llu\n",
	    (unsigned long long)st.requests_created,
	    (unsigned long long)st.approvals,
	    (unsigned long long)st.rejections,
	    (unsigned long long)st.expired,
	    (unsigned long long)st.hsm_errors);
	mprintf(&m, "# HELP signgate_hsm_sign_seconds Time of one signing "
	    "call to the HSM.\n# TYPE signgate_hsm_sign_seconds histogram\n");
	for (i = 0; i < SG_HSM_BUCKETS; i++)
		mprintf(&m, "signgate_hsm_sign_seconds_bucket{le=\"%g\"} "
		    "%llu\n", sg_hsm_bucket_bounds[i],
		    (unsigned long long)st.hsm_bucket[i]);
	mprintf(&m, "signgate_hsm_sign_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "signgate_hsm_sign_seconds_sum %.6f\n"
	    "signgate_hsm_sign_seconds_count %llu\n",
	    (unsigned long long)st.hsm_bucket[SG_HSM_BUCKETS], st.hsm_sum,
	    (unsigned long long)st.hsm_count);
	mprintf(&m, "# TYPE signgate_pending_requests gauge\n"
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
	    "# HELP signgate_checkpoint_refusals_total Trees the signer refused "
	    "to sign as a fork or a rollback of the log it signed.\n"
	    "# TYPE signgate_checkpoint_refusals_total counter\n"
	    "signgate_checkpoint_refusals_total %llu\n"
	    "# TYPE signgate_store_batches_total counter\n"
	    "signgate_store_batches_total %llu\n"
	    "# TYPE signgate_store_jobs_total counter\n"
	    "signgate_store_jobs_total %llu\n",
	    (unsigned long long)st.pending, (unsigned long long)st.log_size,
	    st.checkpoint_at > 0 ? (long long)(time(NULL) - st.checkpoint_at) :
	    -1LL, (unsigned long long)st.log_uncovered,
	    (unsigned long long)st.checkpoint_refusals,
	    (unsigned long long)st.batches,
	    (unsigned long long)st.batched_jobs);
	if (m.err) {
		free(m.p);
		problem(resp, 500, NULL, "out of memory");
		return;
	}
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4";
	resp->body = m.p;
	resp->body_len = m.len;
}

static void
ops_endpoint(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	char reason[256];

	if (!req->loopback) {
		problem(resp, 403, NULL, "only from loopback");
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		problem(resp, 405, NULL, "use GET");
		return;
	}
	if (strcmp(req->path, "/healthz") == 0)
		set_json(resp, 200, json_pack("{s:s}", "status", "ok"));
	else if (strcmp(req->path, "/readyz") == 0) {
		if (sg_service_ready(a->svc, reason, sizeof(reason)) == 0)
			set_json(resp, 200, json_pack("{s:s}", "status",
			    "ready"));
		else {
			set_json(resp, 503, json_pack("{s:s, s:s}", "status",
			    "degraded", "reason", reason));
			resp->content_type = "application/json";
		}
	} else
		get_metrics(a, resp);
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
query_u64(const struct sg_http_request *req, struct sg_http_response *resp,
    const char *name, uint64_t min, uint64_t *ret)
{
	const char *v = sg_http_query(req, name);

	if (v == NULL || sg_parse_u64(v, min, INT64_MAX, ret) != 0) {
		problem(resp, 400, name, "%s: must be a whole number from "
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

static void
log_endpoint(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	const char *path = req->path;
	uint64_t x, y, size;
	size_t n, len;
	char *text = NULL;
	int r;

	if (strcmp(req->method, "GET") != 0) {
		problem(resp, 405, NULL, "use GET");
		return;
	}
	if (strcmp(path, "/v1/log/checkpoint") == 0) {
		if ((r = sg_service_log_checkpoint(a->svc, &text, &size)) != 0)
			problem(resp, 503, NULL, "the log cannot be read");
		else
			set_text(resp, 200, "text/plain; charset=utf-8", text,
			    strlen(text));
	} else if (strcmp(path, "/v1/log/key") == 0) {
		if (asprintf(&text, "%s\n", sg_service_log_vkey(a->svc)) < 0)
			problem(resp, 500, NULL, "out of memory");
		else
			set_text(resp, 200, "text/plain; charset=utf-8", text,
			    strlen(text));
	} else if (strncmp(path, "/v1/log/entries/", 16) == 0) {
		if (sg_parse_u64(path + 16, 0, INT64_MAX, &x) != 0) {
			problem(resp, 404, NULL, "no such entry");
			return;
		}
		r = sg_service_log_entry(a->svc, x, &text, &len);
		if (r == SG_ERR_NOT_FOUND)
			problem(resp, 404, NULL, "no entry %llu under the "
			    "latest checkpoint", (unsigned long long)x);
		else if (r != 0)
			problem(resp, 503, NULL, "the log cannot be read");
		else
			set_text(resp, 200, "text/plain; charset=us-ascii",
			    text, len);
	} else if (strcmp(path, "/v1/log/proof/inclusion") == 0) {
		if (query_u64(req, resp, "index", 0, &x) != 0 ||
		    query_u64(req, resp, "size", 1, &y) != 0)
			return;
		r = sg_service_log_inclusion(a->svc, x, y, hashes,
		    SG_MERKLE_MAX_PROOF, &n);
		if (r == SG_ERR_INVALID)
			problem(resp, 400, "size", "index must be below size, "
			    "and size at most the latest checkpoint's");
		else if (r != 0)
			problem(resp, 503, NULL, "the log cannot be read");
		else
			set_json(resp, 200, json_pack("{s:I, s:I, s:o}",
			    "index", (json_int_t)x, "size", (json_int_t)y,
			    "hashes", hashes_json(hashes, n)));
	} else if (strcmp(path, "/v1/log/proof/consistency") == 0) {
		if (query_u64(req, resp, "old", 1, &x) != 0 ||
		    query_u64(req, resp, "new", 1, &y) != 0)
			return;
		r = sg_service_log_consistency(a->svc, x, y, hashes,
		    SG_MERKLE_MAX_PROOF, &n);
		if (r == SG_ERR_INVALID)
			problem(resp, 400, "new", "need 0 < old <= new <= the "
			    "latest checkpoint's size");
		else if (r != 0)
			problem(resp, 503, NULL, "the log cannot be read");
		else
			set_json(resp, 200, json_pack("{s:I, s:I, s:o}",
			    "old", (json_int_t)x, "new", (json_int_t)y,
			    "hashes", hashes_json(hashes, n)));
	} else
		problem(resp, 404, NULL, "no such endpoint");
}

/* Splits "/v1/requests/<id>[/<tail>]"; 0 if the path has that shape. */
static int
request_path(const char *path, char id[33], const char **tail)
{
	const char *p = path + strlen("/v1/requests/");
	const char *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);

	if (n != 32)
		return -1;
	memcpy(id, p, 32);
	id[32] = '\0';
	if (!sg_request_id_ok(id))
		return -1;
	*tail = slash ? slash : "";
	return 0;
}

static enum route
route_of(const struct sg_http_request *req)
{
	const char *p = req->path, *tail;
	int get = strcmp(req->method, "GET") == 0;
	char id[33];

	if (strcmp(p, "/v1/keys") == 0)
		return RT_KEYS;
	if (strcmp(p, "/v1/requests") == 0)
		return get ? RT_REQUESTS_LIST : RT_REQUESTS_POST;
	if (strncmp(p, "/v1/requests/", 13) == 0 &&
	    request_path(p, id, &tail) == 0) {
		if (strcmp(tail, "/signature") == 0)
			return RT_SIGNATURE;
		if (strcmp(tail, "/approvals") == 0)
			return RT_APPROVALS;
		if (strcmp(tail, "/cancel") == 0)
			return RT_CANCEL;
		return RT_REQUEST;
	}
	if (strncmp(p, "/v1/log/", 8) == 0)
		return RT_LOG;
	if (strcmp(p, "/healthz") == 0 || strcmp(p, "/readyz") == 0 ||
	    strcmp(p, "/metrics") == 0)
		return RT_OPS;
	return RT_OTHER;
}

static void handle(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp);

void
sg_api_handle(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	handle(ctx, req, resp);
	if (resp->wait_id[0] == '\0')
		count_route(route_of(req), resp->status);
}

static void
handle(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp)
{
	const struct sg_principal *pr = NULL;
	const char *m = req->method, *path = req->path, *tail;
	int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
	char id[33];
	unsigned wait;

	/* Without a certificate: a budget of its own, so that readers of the
	 * public log can never crowd out the principals. */
	if (!req->authenticated && (wait = anon_take(a)) > 0) {
		problem(resp, 429, NULL, "requests without a client "
		    "certificate are over their rate limit of %u per second",
		    a->anon_per_second);
		resp->retry_after = wait;
		return;
	}
	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
	    strcmp(path, "/metrics") == 0) {
		ops_endpoint(a, req, resp);
		return;
	}
	if (strncmp(path, "/v1/", 4) != 0) {
		problem(resp, 404, NULL, "no such endpoint");
		return;
	}
	/* The log is public: anyone may read and check it. */
	if (strncmp(path, "/v1/log/", 8) == 0) {
		log_endpoint(a, req, resp);
		return;
	}
	if (req->authenticated)
		pr = sg_policy_principal_by_cert(sg_service_policy(a->svc),
		    req->client_cn, req->client_sha256);
	if (pr == NULL && !(a->plain_http && get)) {
		problem(resp, 401, NULL, req->authenticated ?
		    "the client certificate maps to no principal" :
		    "a client certificate issued by the client CA is "
		    "required");
		return;
	}

	if (pr != NULL) {
		wait = rate_take(a, pr->name);
		if (wait > 0) {
			problem(resp, 429, NULL, "'%s' is over its rate limit "
			    "of %u requests per second", pr->name,
			    a->rate_per_second);
			resp->retry_after = wait;
			return;
		}
	}

	if (strcmp(path, "/v1/keys") == 0) {
		if (!get)
			problem(resp, 405, NULL, "use GET");
		else
			get_keys(a, resp);
	} else if (strcmp(path, "/v1/requests") == 0) {
		if (post)
			post_request(a, req, pr->name, resp);
		else if (get)
			list_requests(a, req, resp);
		else
			problem(resp, 405, NULL, "use GET or POST");
	} else if (strncmp(path, "/v1/requests/", 13) == 0 &&
	    request_path(path, id, &tail) == 0) {
		if (tail[0] == '\0' && get)
			get_request(a, req, id, resp);
		else if (strcmp(tail, "/signature") == 0 && get)
			get_signature(a, id, resp);
		else if (strcmp(tail, "/approvals") == 0 && post)
			post_approval(a, req, id, pr->name, resp);
		else if (strcmp(tail, "/cancel") == 0 && post)
			post_cancel(a, req, id, pr->name, resp);
		else if (tail[0] == '\0' || strcmp(tail, "/signature") == 0 ||
		    strcmp(tail, "/approvals") == 0 ||
		    strcmp(tail, "/cancel") == 0)
			problem(resp, 405, NULL, "method not allowed");
		else
			problem(resp, 404, NULL, "no such endpoint");
	} else if (strncmp(path, "/v1/requests/", 13) == 0)
		problem(resp, 404, NULL, "no request with that id");
	else
		problem(resp, 404, NULL, "no such endpoint");
}
