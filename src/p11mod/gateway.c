/*
 * The module's calls to the gateway, over the CLI's HTTP client
 * (src/cli_http.c: mutual TLS, no redirects, a response size cap).
 *
 * One signature is one job: a handle of its own (nothing is shared
 * between threads, nothing survives into a forked child), a POST with a
 * random Idempotency-Key that a retry after a transport error or a 5xx
 * reuses (so a retry never costs a second signature), then long-polls
 * (GET ?wait=, what is left of the timeout and at most 60 s each, at
 * least a second apart) until the request is no longer pending or the
 * configured timeout has passed.  Every transfer is bounded by the time
 * left; the only overshoot is the final cancel, bounded by
 * connect_timeout: a request still pending when the module gives up (the
 * timeout, or the gateway lost while waiting) is cancelled, so that no
 * signature is made later for a caller that gave up.  The signature is
 * checked before it is returned: it belongs to the key and digest asked
 * for and verifies under the key's public key.
 *
 * CK_RV as the caller will see it: CKR_FUNCTION_REJECTED for what the
 * gateway or its officers decided (a refusal of the request, a veto, an
 * expiry, a cancellation, the timeout), CKR_DEVICE_ERROR when the gateway
 * cannot be reached or fails (transport, 408, 429 and 5xx that persist,
 * any other error while polling, an answer that does not check out).
 * Each failure is explained with p11m_msg(), with the gateway's problem
 * detail when there is one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_text.h"
#include "sg_types.h"
#include "sg_util.h"
#include "p11mod_int.h"

#define POST_ATTEMPTS 3
#define POLL_FAILURES_MAX 3
#define POLL_WAIT_MAX 60
#define POLL_INTERVAL_MIN_MS 1000
#define IDEM_BYTES 16
#define DETAIL_SIZE 1024

void
p11m_job_clear(struct p11m_job *j)
{
	if (j == NULL)
		return;
	p11m_conf_clear(&j->conf);
	p11m_sign_env_clear(&j->env);
	EVP_PKEY_free(j->pub);
	explicit_bzero(j, sizeof(*j));
}

static CK_RV
http_open(const struct p11m_conf *c, struct sg_cli_http **ret)
{
	struct sg_cli_conf cc;
	int r;

	memset(&cc, 0, sizeof(cc));
	cc.url = c->url;
	cc.cert = c->cert;
	cc.key = c->key;
	cc.cacert = c->cacert;
	cc.timeout = c->connect_timeout;
	if ((r = sg_cli_http_new(&cc, ret)) != 0) {
		p11m_msg("cannot set up the HTTP client: %s", sg_strerror(r));
		return r == SG_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
	}
	return CKR_OK;
}

/* "403 Forbidden: detail (field key)" from a response, for messages. */
static void
describe(const struct sg_cli_http_resp *resp, char *out, size_t cap)
{
	struct sg_problem p;

	if (sg_problem_parse(resp->body, resp->len, &p) != 0) {
		snprintf(out, cap, "HTTP %ld", resp->status);
		return;
	}
	snprintf(out, cap, "HTTP %ld %s%s%s%s%s%s", resp->status,
	    p.title[0] ? p.title : "error", p.detail[0] ? ": " : "",
	    p.detail, p.field[0] ? " (field " : "", p.field,
	    p.field[0] ? ")" : "");
}

static int
server_error(long status)
{
	return status < 200 || status > 499 || (status > 299 && status < 400);
}

/* Worth asking again: the gateway is busy, overloaded or failing. */
static int
transient(long status)
{
	return server_error(status) || status == 408 || status == 429;
}

CK_RV
p11m_gw_keys(const struct p11m_conf *c, char **ret_body, size_t *ret_len)
{
	struct sg_cli_http *h = NULL;
	struct sg_cli_http_resp resp;
	char what[DETAIL_SIZE];
	CK_RV rv;
	int r;

	memset(&resp, 0, sizeof(resp));
	if ((rv = http_open(c, &h)) != CKR_OK)
		return rv;
	rv = CKR_DEVICE_ERROR;
	if ((r = sg_cli_http_request(h, "GET", "/v1/keys", NULL, 0, NULL, 0,
	    &resp)) != 0) {
		p11m_msg("cannot reach the gateway at %s: %s", c->url,
		    sg_cli_http_error(h));
		goto out;
	}
	if (resp.status != 200) {
		describe(&resp, what, sizeof(what));
		p11m_msg("GET /v1/keys from %s: %s", c->url, what);
		goto out;
	}
	*ret_body = resp.body;
	*ret_len = resp.len;
	resp.body = NULL;       /* transferred */
	rv = CKR_OK;
out:
	sg_cli_http_resp_clear(&resp);
	sg_cli_http_free(h);
	return rv;
}

/* ---- one signature ---- */

struct run {
	const struct p11m_job *job;
	struct sg_cli_http *h;
	int64_t deadline_ms;         /* monotonic */
	char id[SG_REQUEST_ID_SIZE];
	json_t *req;                 /* the request object last seen */
	struct sg_cli_http_resp resp;    /* its raw answer */
};

static int64_t
remaining_ms(const struct run *r)
{
	return r->deadline_ms - sg_mono_ms();
}

/*
 * One exchange, bounded by the time left to the deadline (at most
 * cap_ms): 0, or SG_ERR_TIMEOUT at once when no time is left, with
 * `what` saying why.
 */
static int
exchange(struct run *r, const char *method, const char *path,
    const char *body, const char *idem, int64_t cap_ms,
    struct sg_cli_http_resp *resp, char *what, size_t wcap)
{
	int64_t left = remaining_ms(r);
	int rc;

	if (left > cap_ms)
		left = cap_ms;
	if (left <= 0) {
		snprintf(what, wcap, "no answer within the timeout of %llu s",
		    (unsigned long long)r->job->conf.timeout);
		return SG_ERR_TIMEOUT;
	}
	rc = sg_cli_http_request_ms(r->h, method, path, body,
	    body != NULL ? strlen(body) : 0, idem, (long)left, resp);
	if (rc != 0)
		snprintf(what, wcap, "%s", sg_cli_http_error(r->h));
	return rc;
}

static int64_t
connect_ms(const struct run *r)
{
	return (int64_t)r->job->conf.connect_timeout * 1000;
}

/* Waits ms, or less when the deadline is nearer. */
static void
backoff(const struct run *r, int64_t ms)
{
	struct timespec ts;
	int64_t left = remaining_ms(r);

	if (ms > left)
		ms = left;
	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static char *
request_body(const struct p11m_job *j)
{
	char hex[SG_DIGEST_HEX_SIZE];
	json_t *o, *d, *a;
	char *s = NULL;

	sg_hex_encode(j->digest, j->dlen, hex);
	o = json_object();
	d = json_object();
	a = json_object();
	if (o == NULL || d == NULL || a == NULL)
		goto out;
	if (json_object_set_new(d, "algorithm",
	    json_string(sg_digest_name(j->dalg))) != 0 ||
	    json_object_set_new(d, "value", json_string(hex)) != 0 ||
	    json_object_set_new(a, "name", json_string(j->env.artifact)) != 0 ||
	    json_object_set_new(a, "tool", json_string(j->env.tool)) != 0 ||
	    json_object_set_new(a, "mechanism",
	    json_string(j->mechanism)) != 0)
		goto out;
	if (json_object_set_new(o, "key", json_string(j->key)) != 0 ||
	    json_object_set_new(o, "algorithm",
	    json_string(j->algorithm)) != 0 ||
	    json_object_set(o, "digest", d) != 0 ||
	    json_object_set_new(o, "format", json_string("raw")) != 0 ||
	    json_object_set(o, "artifact", a) != 0)
		goto out;
	if (j->env.grant[0] != '\0' && json_object_set_new(o, "grant",
	    json_string(j->env.grant)) != 0)
		goto out;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(o);
	json_decref(d);
	json_decref(a);
	return s;
}

/* Takes a 2xx answer as the request object; CKR_DEVICE_ERROR when it is
 * not one (or not the request we know). */
static CK_RV
take_request(struct run *r, struct sg_cli_http_resp *resp)
{
	const char *id;
	json_t *req;

	req = json_loadb(resp->body, resp->len, JSON_REJECT_DUPLICATES, NULL);
	id = sg_cli_jstr(req, "id");
	if (!json_is_object(req) || id == NULL || !sg_request_id_ok(id) ||
	    (r->id[0] != '\0' && strcmp(id, r->id) != 0) ||
	    sg_cli_req_state(req) == SG_REQ_NONE) {
		json_decref(req);
		p11m_msg("the gateway at %s answered with something that is "
		    "not the request", r->job->conf.url);
		return CKR_DEVICE_ERROR;
	}
	snprintf(r->id, sizeof(r->id), "%s", id);
	json_decref(r->req);
	r->req = req;
	sg_cli_http_resp_clear(&r->resp);
	r->resp = *resp;
	memset(resp, 0, sizeof(*resp));     /* transferred */
	return CKR_OK;
}

static CK_RV
create(struct run *r)
{
	const struct p11m_job *j = r->job;
	struct sg_cli_http_resp resp;
	unsigned char rnd[IDEM_BYTES];
	char idem[2 * IDEM_BYTES + 1], what[DETAIL_SIZE];
	char *body = NULL;
	int attempt, rc;
	CK_RV rv = CKR_DEVICE_ERROR;

	memset(&resp, 0, sizeof(resp));
	what[0] = '\0';
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return CKR_GENERAL_ERROR;
	sg_hex_encode(rnd, sizeof(rnd), idem);
	if ((body = request_body(j)) == NULL)
		return CKR_HOST_MEMORY;
	for (attempt = 1; attempt <= POST_ATTEMPTS; attempt++) {
		if (attempt > 1) {
			if (remaining_ms(r) <= 0)
				break;
			backoff(r, 250L << (2 * (attempt - 2)));
		}
		sg_cli_http_resp_clear(&resp);
		rc = exchange(r, "POST", "/v1/requests", body, idem,
		    connect_ms(r) + POLL_WAIT_MAX * 1000, &resp, what,
		    sizeof(what));
		if (rc != 0)
			continue;
		if (transient(resp.status)) {
			describe(&resp, what, sizeof(what));
			continue;
		}
		break;
	}
	if (attempt > POST_ATTEMPTS || resp.status == 0 ||
	    transient(resp.status)) {
		p11m_msg("key '%s': cannot get a signature from the gateway at "
		    "%s: %s", j->key, j->conf.url, what);
		goto out;
	}
	if (resp.status != 200 && resp.status != 201) {
		describe(&resp, what, sizeof(what));
		p11m_msg("key '%s': the gateway refused the request: %s",
		    j->key, what);
		rv = CKR_FUNCTION_REJECTED;
		goto out;
	}
	rv = take_request(r, &resp);
out:
	sg_cli_http_resp_clear(&resp);
	free(body);
	return rv;
}

/*
 * GET the request, waiting while it is pending up to what is left of the
 * timeout (at most POLL_WAIT_MAX s).  Transport errors, 408, 429 and 5xx
 * are retried within the deadline; CKR_DEVICE_ERROR when they persist or
 * the gateway answers anything else than the request.
 */
static CK_RV
poll_once(struct run *r, char *what, size_t wcap)
{
	struct sg_cli_http_resp resp;
	char path[64 + SG_REQUEST_ID_SIZE];
	int64_t left;
	long wait;
	int failures = 0, rc;
	CK_RV rv = CKR_DEVICE_ERROR;

	memset(&resp, 0, sizeof(resp));
	for (;;) {
		left = remaining_ms(r) / 1000;
		wait = left < 0 ? 0 : left > POLL_WAIT_MAX ? POLL_WAIT_MAX :
		    (long)left;
		snprintf(path, sizeof(path), "/v1/requests/%s?wait=%ld", r->id,
		    wait);
		sg_cli_http_resp_clear(&resp);
		rc = exchange(r, "GET", path, NULL, NULL, connect_ms(r) +
		    wait * 1000, &resp, what, wcap);
		if (rc == 0 && !transient(resp.status))
			break;
		if (rc == 0)
			describe(&resp, what, wcap);
		if (++failures >= POLL_FAILURES_MAX || remaining_ms(r) <= 0) {
			p11m_msg("request %s: lost the gateway at %s while "
			    "waiting: %s", r->id, r->job->conf.url, what);
			goto out;
		}
		backoff(r, 500L * failures);
	}
	if (resp.status != 200) {
		describe(&resp, what, wcap);
		p11m_msg("request %s: the gateway at %s answered %s", r->id,
		    r->job->conf.url, what);
		goto out;
	}
	rv = take_request(r, &resp);
	if (rv != CKR_OK)
		snprintf(what, wcap, "an answer that is not the request");
out:
	sg_cli_http_resp_clear(&resp);
	return rv;
}

/*
 * The caller gives up on a pending request (`said` in messages, `why` in
 * the cancellation's reason): cancel it, best effort within
 * connect_timeout, so that nothing is signed later.  A request that
 * stopped being pending meanwhile is read once more, and a signature
 * that arrived in that moment is still taken (CKR_OK); otherwise rv is
 * returned.
 */
static CK_RV
cancel(struct run *r, const char *said, const char *why, CK_RV rv)
{
	struct sg_cli_http_resp resp;
	char path[64 + SG_REQUEST_ID_SIZE], what[DETAIL_SIZE];
	char *body = NULL;
	int64_t bound = connect_ms(r) > 0 ? connect_ms(r) : 1000;
	json_t *o;

	memset(&resp, 0, sizeof(resp));
	snprintf(path, sizeof(path), "/v1/requests/%s/cancel", r->id);
	if ((o = json_object()) == NULL)
		return rv;
	if (json_object_set_new(o, "reason", json_string(why)) != 0) {
		json_decref(o);
		return rv;
	}
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (body == NULL)
		return rv;
	if (sg_cli_http_request_ms(r->h, "POST", path, body, strlen(body),
	    NULL, (long)bound, &resp) != 0) {
		p11m_msg("request %s: %s, and it could not be cancelled: %s",
		    r->id, said, sg_cli_http_error(r->h));
		goto out;
	}
	if (resp.status == 200) {
		p11m_msg("request %s for key '%s': %s: cancelled", r->id,
		    r->job->key, said);
		goto out;
	}
	if (resp.status == 409) {
		snprintf(path, sizeof(path), "/v1/requests/%s?wait=0", r->id);
		sg_cli_http_resp_clear(&resp);
		if (sg_cli_http_request_ms(r->h, "GET", path, NULL, 0, NULL,
		    (long)bound, &resp) == 0 && resp.status == 200 &&
		    take_request(r, &resp) == CKR_OK &&
		    sg_cli_req_state(r->req) == SG_REQ_SIGNED) {
			rv = CKR_OK;
			goto out;
		}
		if (resp.status == 0)
			snprintf(what, sizeof(what), "%s",
			    sg_cli_http_error(r->h));
		else
			describe(&resp, what, sizeof(what));
	} else
		describe(&resp, what, sizeof(what));
	p11m_msg("request %s: %s; cancelling it failed: %s", r->id, said,
	    what);
out:
	sg_cli_http_resp_clear(&resp);
	free(body);
	return rv;
}

/* Why a request that is no longer pending was not signed. */
static void
explain_end(const struct run *r, enum sg_req_state st)
{
	const json_t *apps, *a, *c;
	const char *err, *by = NULL;
	size_t i;

	switch (st) {
	case SG_REQ_REJECTED:
		apps = json_object_get(r->req, "approvals");
		if (json_is_array(apps)) {
			json_array_foreach(apps, i, a) {
				const char *d = sg_cli_jstr(a, "decision");
				if (d != NULL && strcmp(d, "reject") == 0)
					by = sg_cli_jstr(a, "officer");
			}
		}
		p11m_msg("request %s for key '%s' was rejected%s%s", r->id,
		    r->job->key, by != NULL ? " by " : "",
		    by != NULL ? by : "");
		break;
	case SG_REQ_CANCELLED:
		c = json_object_get(r->req, "cancelled");
		p11m_msg("request %s for key '%s' was cancelled by %s: %s",
		    r->id, r->job->key,
		    sg_cli_jstr(c, "by") ? sg_cli_jstr(c, "by") : "?",
		    sg_cli_jstr(c, "reason") ? sg_cli_jstr(c, "reason") : "");
		break;
	case SG_REQ_FAILED:
		err = sg_cli_jstr(r->req, "error");
		p11m_msg("request %s for key '%s' failed at the gateway: %s",
		    r->id, r->job->key, err != NULL ? err : "no reason given");
		break;
	default:
		p11m_msg("request %s for key '%s' is %s, not signed", r->id,
		    r->job->key, sg_req_state_str(st));
		break;
	}
}

/* Tells the person running the tool what the officers are asked for:
 * the request id and who is still missing. */
static void
say_waiting(const struct run *r)
{
	const json_t *req = json_object_get(r->req, "required"), *t;
	char who[512];
	size_t i, n = 0;
	int w;

	who[0] = '\0';
	json_array_foreach(req, i, t) {
		const char *g = sg_cli_jstr(t, "group");
		json_int_t m = json_integer_value(json_object_get(t, "missing"));

		if (g == NULL || m <= 0)
			continue;
		w = snprintf(who + n, sizeof(who) - n, "%s%lld of %s",
		    n > 0 ? ", " : "", (long long)m, g);
		if (w < 0 || (size_t)w >= sizeof(who) - n)
			break;
		n += (size_t)w;
	}
	p11m_msg("request %s for key '%s' waits for approval%s%s%s; waiting "
	    "up to %llu s", r->id, r->job->key, n > 0 ? " (" : "", who,
	    n > 0 ? ")" : "", (unsigned long long)r->job->conf.timeout);
}

/*
 * Until the request is signed (CKR_OK) or ended otherwise.  A request
 * still pending when this gives up, for whatever reason, is cancelled.
 */
static CK_RV
wait_signed(struct run *r)
{
	enum sg_req_state st;
	char what[DETAIL_SIZE], why[DETAIL_SIZE + 128], said[128];
	int64_t left, t0, took;
	CK_RV rv;

	if (sg_cli_req_state(r->req) == SG_REQ_PENDING)
		say_waiting(r);
	for (;;) {
		st = sg_cli_req_state(r->req);
		if (st == SG_REQ_SIGNED)
			return CKR_OK;
		if (st != SG_REQ_PENDING) {
			explain_end(r, st);
			return CKR_FUNCTION_REJECTED;
		}
		/* ?wait= counts whole seconds: the last fraction of the
		 * timeout is slept, then a signature that arrived meanwhile
		 * is still taken by cancel(). */
		if ((left = remaining_ms(r)) < 1000) {
			backoff(r, left);
			snprintf(said, sizeof(said), "not approved within %llu s",
			    (unsigned long long)r->job->conf.timeout);
			snprintf(why, sizeof(why), "%s; the PKCS#11 caller gave "
			    "up", said);
			return cancel(r, said, why, CKR_FUNCTION_REJECTED);
		}
		t0 = sg_mono_ms();
		what[0] = '\0';
		if ((rv = poll_once(r, what, sizeof(what))) != CKR_OK) {
			snprintf(why, sizeof(why), "the PKCS#11 module lost the "
			    "gateway while waiting: %s", what);
			return cancel(r, "the gateway was lost while waiting",
			    why, rv);
		}
		/* A gateway that answers "pending" long before the wait
		 * asked for is not asked again at once. */
		took = sg_mono_ms() - t0;
		if (sg_cli_req_state(r->req) == SG_REQ_PENDING &&
		    took < POLL_INTERVAL_MIN_MS)
			backoff(r, POLL_INTERVAL_MIN_MS - took);
	}
}

static CK_RV
write_evidence(const struct run *r, const uint8_t *sig, size_t siglen,
    const char *proof)
{
	const char *dir = r->job->env.evidence_dir;
	static const char *const ext[] = { "json", "proof", "sig" };
	const void *data[3];
	size_t len[3], i;
	char *path = NULL;

	data[0] = r->resp.body;
	len[0] = r->resp.len;
	data[1] = proof;
	len[1] = strlen(proof);
	data[2] = sig;
	len[2] = siglen;
	for (i = 0; i < 3; i++) {
		if (asprintf(&path, "%s/%s.%s", dir, r->id, ext[i]) < 0)
			return CKR_HOST_MEMORY;
		if (sg_write_file(path, data[i], len[i], 0644) != 0) {
			p11m_msg("request %s: cannot write the evidence file "
			    "%s: %s", r->id, path, strerror(errno));
			free(path);
			return CKR_FUNCTION_FAILED;
		}
		free(path);
	}
	return CKR_OK;
}

/* The signed request's signature: the one asked for, and valid. */
static CK_RV
take_signature(struct run *r, uint8_t *out, size_t cap, size_t *ret_len)
{
	const struct p11m_job *j = r->job;
	const json_t *so, *dg, *log;
	const char *b64, *proof = NULL;
	char hex[SG_DIGEST_HEX_SIZE];
	uint8_t *sig = NULL;
	size_t siglen = 0;
	CK_RV rv = CKR_DEVICE_ERROR;

	sg_hex_encode(j->digest, j->dlen, hex);
	so = json_object_get(r->req, "signature");
	dg = json_object_get(r->req, "digest");
	b64 = sg_cli_jstr(so, "signature");
	if (!json_is_object(so) || b64 == NULL ||
	    sg_b64_decode(b64, strlen(b64), &sig, &siglen) != 0) {
		p11m_msg("request %s: the gateway's answer has no signature",
		    r->id);
		goto out;
	}
	if (!sg_cli_jstr(so, "format") ||
	    strcmp(sg_cli_jstr(so, "format"), "raw") != 0 ||
	    !sg_cli_jstr(so, "key") || strcmp(sg_cli_jstr(so, "key"),
	    j->key) != 0 || !sg_cli_jstr(so, "algorithm") ||
	    strcmp(sg_cli_jstr(so, "algorithm"), j->algorithm) != 0 ||
	    !sg_cli_jstr(dg, "algorithm") || strcmp(sg_cli_jstr(dg,
	    "algorithm"), sg_digest_name(j->dalg)) != 0 ||
	    !sg_cli_jstr(dg, "value") || strcmp(sg_cli_jstr(dg, "value"),
	    hex) != 0) {
		p11m_msg("request %s: the gateway signed something else than "
		    "asked (key, algorithm, format or digest differ)", r->id);
		goto out;
	}
	if (sg_verify(j->pub, j->scheme, j->dalg, j->digest, j->dlen, sig,
	    siglen) != 0) {
		p11m_msg("request %s: the signature from the gateway does not "
		    "verify under key '%s'", r->id, j->key);
		goto out;
	}
	if (j->scheme == SG_SIG_ECDSA) {
		if (p11m_ecdsa_der_to_raw(sig, siglen, j->field_len, out, cap,
		    ret_len) != 0) {
			p11m_msg("request %s: the ECDSA signature is not "
			    "strict DER for the key's curve", r->id);
			goto out;
		}
	} else {
		if (siglen != j->sig_len || siglen > cap) {
			p11m_msg("request %s: the RSA signature has %zu bytes, "
			    "not %zu", r->id, siglen, j->sig_len);
			goto out;
		}
		memcpy(out, sig, siglen);
		*ret_len = siglen;
	}
	if (j->env.evidence_dir != NULL) {
		log = json_object_get(so, "log");
		if ((proof = sg_cli_jstr(log, "proof")) == NULL) {
			p11m_msg("request %s: the signature has no log proof "
			    "for the evidence directory", r->id);
			goto out;
		}
		if ((rv = write_evidence(r, sig, siglen, proof)) != CKR_OK)
			goto out;
	}
	rv = CKR_OK;
out:
	free(sig);
	return rv;
}

CK_RV
p11m_gw_sign(const struct p11m_job *job, uint8_t *out, size_t cap,
    size_t *ret_len)
{
	struct run r;
	CK_RV rv;

	memset(&r, 0, sizeof(r));
	r.job = job;
	r.deadline_ms = sg_mono_ms() + (int64_t)job->conf.timeout * 1000;
	if ((rv = http_open(&job->conf, &r.h)) != CKR_OK)
		return rv;
	if ((rv = create(&r)) != CKR_OK ||
	    (rv = wait_signed(&r)) != CKR_OK ||
	    (rv = take_signature(&r, out, cap, ret_len)) != CKR_OK)
		goto out;
out:
	json_decref(r.req);
	sg_cli_http_resp_clear(&r.resp);
	sg_cli_http_free(r.h);
	return rv;
}
