/*
 * Keys and operations: GET /v1/keys (the keys a principal may ask for,
 * with their policy and HSM), and the loopback-only GET /healthz,
 * /readyz and /metrics.  The counters of requests by endpoint and
 * status that /metrics shows live here too: the router (api.c) counts
 * each answered request with api_count().
 *
 * These handlers read the service (sg_service.h) and the front's
 * connection statistics (sg_http.h), and answer through api.c's problem
 * and rendering helpers (api_int.h).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api_int.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_witnessing.h"

/* What a request is counted under in signgate_http_requests_total. */
static const char *const endpoint_names[EP_COUNT] = {
	"GET /v1/keys", "POST /v1/requests", "GET /v1/requests",
	"GET /v1/requests/{id}", "GET /v1/requests/{id}/signature",
	"POST /v1/requests/{id}/approvals", "POST /v1/requests/{id}/cancel",
	"/v1/releases", "/v1/grants", "GET /v1/log", "ops", "other",
};
static const int statuses[] = { 200, 201, 400, 401, 403, 404, 405, 409,
    413, 415, 422, 429, 500, 503 };
_Static_assert(sizeof(statuses) / sizeof(statuses[0]) == NSTATUS,
    "NSTATUS counts statuses[]");

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

void
api_get_keys(struct call *c)
{
	json_t *keys = json_array(), *k;
	size_t i;

	for (i = 0; i < sg_service_nkeys(c->a->svc); i++) {
		k = key_json(sg_service_policy(c->a->svc),
		    sg_service_key_at(c->a->svc, i));
		if (k == NULL) {
			json_decref(keys);
			api_problem(c->resp, 500, NULL, "cannot render keys");
			return;
		}
		json_array_append_new(keys, k);
	}
	/* The caller's own name (null for a plain-HTTP reader without
	 * one): a client such as the PKCS#11 module shows the keys whose
	 * requesters include it. */
	api_set_json(c->resp, 200, json_pack("{s:s?, s:o}", "principal",
	    c->principal, "keys", keys));
}

void
api_count(struct sg_api *a, enum endpoint ep, int status)
{
	size_t i;

	for (i = 0; i < NSTATUS && statuses[i] != status; i++)
		;
	pthread_mutex_lock(&a->count_lock);
	a->counts[ep][i]++;
	pthread_mutex_unlock(&a->count_lock);
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

/* Webhook deliveries (docs/OPERATIONS.md, "Notifications"). */
static void
notify_gauges(const struct sg_service_stats *st, struct mbuf *m)
{
	mprintf(m, "# HELP signgate_notify_pending Webhook deliveries not "
	    "made yet.\n# TYPE signgate_notify_pending gauge\n"
	    "signgate_notify_pending %llu\n"
	    "# TYPE signgate_notify_delivered_total counter\n"
	    "signgate_notify_delivered_total %llu\n"
	    "# HELP signgate_notify_failures_total Webhook deliveries tried "
	    "and failed (each is tried again).\n"
	    "# TYPE signgate_notify_failures_total counter\n"
	    "signgate_notify_failures_total %llu\n",
	    (unsigned long long)st->notify_pending,
	    (unsigned long long)st->notify_delivered,
	    (unsigned long long)st->notify_failures);
}

/* The witnesses' counters (docs/OPERATIONS.md, "Witnesses"). */
static void
witness_metrics(struct sg_api *a, struct mbuf *m)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{ "signgate_witness_cosignatures_total", "counter",
		  "Checkpoints a witness cosigned." },
		{ "signgate_witness_failures_total", "counter",
		  "Submissions to a witness that brought no cosignature." },
		{ "signgate_witness_rollbacks_total", "counter",
		  "Answers of a witness saying that the log was rolled back "
		  "or forked." },
		{ "signgate_witness_size", "gauge",
		  "The tree size a witness acknowledged last." },
	};
	struct sg_witness_stats ws[SG_WITNESSES_MAX];
	uint64_t v;
	size_t f, i, n;

	if ((n = sg_service_witness_stats(a->svc, ws, SG_WITNESSES_MAX)) == 0)
		return;
	for (f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		mprintf(m, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name,
		    fam[f].help, fam[f].name, fam[f].type);
		for (i = 0; i < n; i++) {
			v = f == 0 ? ws[i].cosignatures : f == 1 ?
			    ws[i].failures : f == 2 ? ws[i].alarms : ws[i].size;
			mprintf(m, "%s{witness=\"%s\"} %llu\n", fam[f].name,
			    ws[i].name, (unsigned long long)v);
		}
	}
}

/* GET /metrics (Prometheus text format) */
void
api_get_metrics(struct call *c)
{
	struct sg_service_stats st;
	struct mbuf m = { NULL, 0, 4096, 0 };

	if ((m.p = malloc(m.cap)) == NULL) {
		api_problem(c->resp, 500, NULL, "out of memory");
		return;
	}
	sg_service_stats(c->a->svc, &st);
	request_metrics(c->a, &m);
	http_metrics(&m);
	service_counters(c->a, &st, &m);
	service_gauges(&st, &m);
	notify_gauges(&st, &m);
	witness_metrics(c->a, &m);
	if (m.err) {
		free(m.p);
		api_problem(c->resp, 500, NULL, "out of memory");
		return;
	}
	c->resp->status = 200;
	c->resp->content_type = "text/plain; version=0.0.4";
	c->resp->body = m.p;
	c->resp->body_len = m.len;
}

/* GET /healthz */
void
api_get_healthz(struct call *c)
{
	api_set_json(c->resp, 200, json_pack("{s:s}", "status", "ok"));
}

/* GET /readyz: a real test signature with every usable key. */
void
api_get_readyz(struct call *c)
{
	char reason[256];

	if (sg_service_ready(c->a->svc, reason, sizeof(reason)) == 0) {
		api_set_json(c->resp, 200, json_pack("{s:s}", "status", "ready"));
		return;
	}
	api_set_json(c->resp, 503, json_pack("{s:s, s:s}", "status", "degraded",
	    "reason", reason));
	c->resp->content_type = "application/json";
}
