/*
 * The console's JSON endpoints (docs/CONSOLE.md, "The JSON API").
 *
 * Sign-in: POST /api/signin/begin hands out a single-use challenge, the
 * page has the security key sign it (navigator.credentials.get), POST
 * /api/signin checks the assertion with sg_webauthn_verify() against the
 * credentials the policy in force registers for that officer, and opens
 * a session.
 *
 * Reading goes through the API as the signed-in officer
 * (sg_api_dispatch_as): the same rendering, rules and rate limits as the
 * API's own callers.  A page polls with ?wait=SECONDS&since=TAG: TAG is
 * a digest of what it last got; the answer waits (the connection is
 * suspended, no thread) until a request changes or the time passes.
 * Changes reach it through the service's notification, which also
 * carries the other gateways' changes on a shared store.
 *
 * Decisions.  An approval or a rejection is the DSSE envelope the page
 * built and had the security key sign; the console checks only that it
 * is one signature, by the signed-in officer, made with a security key
 * (a "webauthn" member), and hands it to the API's POST
 * /v1/requests/{id}/approvals, whose service checks everything else as
 * for any approval.  A cancel carries an assertion over the SHA-256 of
 *   "signgate console cancel v1\nrequest ID\nofficer NAME\n"
 *   "reason TEXT\nnonce HEX\n"
 * with a single-use nonce bound to the session and the request, checked
 * here before the service cancels with the officer as the one who did.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "console_int.h"
#include "sg_api.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_policy.h"
#include "sg_service.h"
#include "sg_store.h"
#include "sg_text.h"
#include "sg_util.h"

#define WAIT_MAX_S 60
#define QUEUE_MAX 200
#define TAG_HEX 32                      /* a tag: 128 bits of SHA-256 */
#define SIG_MAX 1024                    /* an assertion's signature */

static const char cancel_text_fmt[] =
    "signgate console cancel v1\nrequest %s\nofficer %s\nreason %s\n"
    "nonce %s\n";

/* ---- small helpers --------------------------------------------------------- */

static json_t *
b64url_json(const uint8_t *b, size_t len)
{
	char *s = NULL;
	json_t *j;

	if (sg_b64url_encode(b, len, &s) != 0)
		return NULL;
	j = json_string(s);
	free(s);
	return j;
}

/* A base64url member of the body into out; 0, or answered (400). */
static int
body_b64url(struct console_call *cc, const char *name, uint8_t *out,
    size_t cap, size_t *ret_len)
{
	json_t *v = json_object_get(cc->body, name);

	if (!json_is_string(v) || sg_b64url_decode(json_string_value(v),
	    json_string_length(v), out, cap, ret_len) != 0) {
		console_problem(cc->resp, 400, "%s: must be base64url (no "
		    "padding) of at most %zu bytes", name, cap);
		return -1;
	}
	return 0;
}

static int
only_fields(struct console_call *cc, const char *const *allowed)
{
	const char *k;

	if ((k = sg_json_stranger(cc->body, allowed)) != NULL) {
		console_problem(cc->resp, 400, "unknown field '%s'", k);
		return -1;
	}
	return 0;
}

/* The assertion members of a body, decoded into a (buffers given). */
struct assertion_buf {
	uint8_t cred[SG_WEBAUTHN_CRED_ID_MAX];
	uint8_t authdata[SG_WEBAUTHN_AUTHDATA_MAX];
	uint8_t client[SG_WEBAUTHN_CLIENT_DATA_MAX];
	uint8_t sig[SIG_MAX];
	struct sg_webauthn_assertion a;
};

static int
body_assertion(struct console_call *cc, struct assertion_buf *b)
{
	memset(&b->a, 0, sizeof(b->a));
	if (body_b64url(cc, "credential_id", b->cred, sizeof(b->cred),
	    &b->a.cred_id_len) != 0 ||
	    body_b64url(cc, "authenticator_data", b->authdata,
	    sizeof(b->authdata), &b->a.authdata_len) != 0 ||
	    body_b64url(cc, "client_data_json", b->client, sizeof(b->client),
	    &b->a.client_data_len) != 0 ||
	    body_b64url(cc, "signature", b->sig, sizeof(b->sig),
	    &b->a.sig_len) != 0)
		return -1;
	b->a.cred_id = b->cred;
	b->a.authdata = b->authdata;
	b->a.client_data = b->client;
	b->a.sig = b->sig;
	return 0;
}

/* Checks the assertion of officer over challenge; 0, or answered with
 * status. */
static int
check_assertion(struct console_call *cc, const char *officer,
    const struct assertion_buf *b, const uint8_t *challenge, size_t clen,
    int status)
{
	const struct sg_webauthn_cred *cred;
	char why[256], esc[512];

	cred = cc->c->cred_one(cc->c->cred_arg, officer, b->a.cred_id,
	    b->a.cred_id_len);
	if (cred == NULL) {
		console_problem(cc->resp, status, "credential_id: not a security "
		    "key the policy in force registers for officer '%s'",
		    officer);
		return -1;
	}
	why[0] = '\0';
	if (sg_webauthn_verify(cred, challenge, clen, &b->a, why,
	    sizeof(why)) != 0) {
		sg_escape(why, strlen(why), esc, sizeof(esc));
		sg_log_info("console: assertion of '%s' refused: %s", officer,
		    esc);
		console_problem(cc->resp, status, "the assertion does not "
		    "verify: %s", why);
		return -1;
	}
	return 0;
}

/* The officer named in the body ("officer"), known to the policy with a
 * credential; copied to out. */
static int
body_officer(struct console_call *cc, char out[CONSOLE_OFFICER_SIZE])
{
	json_t *v = json_object_get(cc->body, "officer");

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) >= CONSOLE_OFFICER_SIZE ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		console_problem(cc->resp, 400, "officer: is required, a "
		    "principal's name");
		return -1;
	}
	snprintf(out, CONSOLE_OFFICER_SIZE, "%s", json_string_value(v));
	return 0;
}

/* ---- going through the API ------------------------------------------------ */

/*
 * Dispatches a request to the API as the signed-in officer; front: may it
 * answer later (a decision), else it answers at once.  The answer is in
 * resp.
 */
static void
api_as(struct console_call *cc, const char *method, const char *path,
    const char *body, int front, struct sg_http_response *resp)
{
	static const struct sg_http_param json_ct[] = {
		{ "Content-Type", "application/json" },
	};
	struct sg_http_request r = *cc->req;

	r.method = method;
	r.path = path;
	r.query = NULL;
	r.nquery = 0;
	r.headers = json_ct;
	r.nheaders = 1;
	r.body = body != NULL ? body : "";
	r.body_len = strlen(r.body);
	r.authenticated = 0;
	r.client_cn[0] = '\0';
	r.resumed = 0;
	if (!front)
		r.front = NULL;
	if (cc->c->api == NULL) {
		console_problem(resp, 503, "no API behind this console");
		return;
	}
	sg_api_dispatch_as(cc->c->api, cc->officer, &r, resp);
}

/* GET path through the API, parsed; NULL with the API's answer copied
 * into cc->resp when it is not a 200. */
static json_t *
api_get(struct console_call *cc, const char *path)
{
	struct sg_http_response r;
	json_t *j = NULL;

	memset(&r, 0, sizeof(r));
	api_as(cc, "GET", path, NULL, 0, &r);
	if (r.status == 200 && r.body != NULL)
		j = json_loadb(r.body, r.body_len, 0, NULL);
	if (j == NULL) {
		free(cc->resp->body);
		*cc->resp = r;
		return NULL;
	}
	free(r.body);
	return j;
}

/* ---- long-polls ------------------------------------------------------------ */

/* A digest of what a page shows, so that it can ask to wait for a
 * change. */
static void
tag_of(json_t *j, char tag[TAG_HEX + 1])
{
	uint8_t h[32];
	char hex[65];
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	sg_sha256(s != NULL ? s : "", s != NULL ? strlen(s) : 0, h);
	free(s);
	sg_hex_encode(h, sizeof(h), hex);
	memcpy(tag, hex, TAG_HEX);
	tag[TAG_HEX] = '\0';
}

/*
 * Answers j (with its tag), or, when the page asked to wait
 * (?wait=SECONDS&since=TAG) and TAG is what it would get, waits on
 * wait_id instead.  j is taken.
 */
static void
answer_or_wait(struct console_call *cc, json_t *j, const char *wait_id)
{
	const char *wait = console_query(cc->req, "wait");
	const char *since = console_query(cc->req, "since");
	char tag[TAG_HEX + 1];
	uint64_t secs = 0;

	tag_of(j, tag);
	if (wait != NULL && sg_parse_u64(wait, 0, WAIT_MAX_S, &secs) != 0) {
		json_decref(j);
		console_problem(cc->resp, 400, "wait: must be 0 to %d seconds",
		    WAIT_MAX_S);
		return;
	}
	if (!cc->req->resumed && secs > 0 && since != NULL &&
	    strcmp(since, tag) == 0) {
		json_decref(j);
		snprintf(cc->resp->wait_id, sizeof(cc->resp->wait_id), "%s",
		    wait_id);
		cc->resp->wait_deadline_ms = sg_mono_ms() +
		    (int64_t)secs * 1000;
		return;
	}
	json_object_set_new(j, "tag", json_string(tag));
	console_json(cc->resp, 200, j);
}

/* ---- the endpoints ------------------------------------------------------- */

void
console_get_config(struct console_call *cc)
{
	console_json(cc->resp, 200, json_pack("{s:s, s:s}", "rp_id",
	    cc->c->rp_id, "origin", cc->c->origin));
}

/* The ids of officer's credentials, base64url. */
static json_t *
cred_ids(struct console_call *cc, const char *officer)
{
	const struct sg_webauthn_cred *v[CONSOLE_MAX_CREDS];
	json_t *a = json_array();
	size_t i, n = 0;

	cc->c->cred_all(cc->c->cred_arg, officer, v,
	    CONSOLE_MAX_CREDS, &n);
	for (i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, b64url_json(v[i]->id, v[i]->id_len));
	return a;
}

/* POST /api/signin/begin {"officer": NAME}. */
void
console_signin_begin(struct console_call *cc)
{
	static const char *const fields[] = { "officer", NULL };
	uint8_t ch[CONSOLE_CHALLENGE_LEN];
	char officer[CONSOLE_OFFICER_SIZE];

	if (only_fields(cc, fields) != 0 || body_officer(cc, officer) != 0)
		return;
	if (console_challenge_new(cc->c, PURPOSE_SIGNIN, NULL, NULL, ch) != 0) {
		console_problem(cc->resp, 500, "no random challenge");
		return;
	}
	console_json(cc->resp, 200, json_pack("{s:o, s:I, s:s, s:o}",
	    "challenge", b64url_json(ch, sizeof(ch)), "timeout_ms",
	    (json_int_t)SG_CONSOLE_CHALLENGE_MS, "rp_id", cc->c->rp_id,
	    "allow", cred_ids(cc, officer)));
}

/* POST /api/signin {"officer", "challenge", and the assertion}. */
void
console_signin(struct console_call *cc)
{
	static const char *const fields[] = { "officer", "challenge",
	    "credential_id", "authenticator_data", "client_data_json",
	    "signature", NULL };
	struct assertion_buf b;
	uint8_t ch[CONSOLE_CHALLENGE_LEN + 1];
	char officer[CONSOLE_OFFICER_SIZE];
	size_t chlen = 0;

	if (only_fields(cc, fields) != 0 || body_officer(cc, officer) != 0 ||
	    body_b64url(cc, "challenge", ch, sizeof(ch), &chlen) != 0 ||
	    body_assertion(cc, &b) != 0)
		return;
	/* Taken now, whatever follows: one try per challenge. */
	if (console_challenge_take(cc->c, PURPOSE_SIGNIN, NULL, NULL, ch,
	    chlen) != 0) {
		console_problem(cc->resp, 401, "challenge: unknown, used or "
		    "expired: start again");
		return;
	}
	if (check_assertion(cc, officer, &b, ch, chlen, 401) != 0)
		return;
	if (console_session_new(cc->c, officer, cc->resp->set_cookie,
	    sizeof(cc->resp->set_cookie)) != 0) {
		console_problem(cc->resp, 500, "cannot open a session");
		return;
	}
	sg_log_info("console: officer '%s' signed in", officer);
	console_json(cc->resp, 200, json_pack("{s:s}", "officer", officer));
}

void
console_signout(struct console_call *cc)
{
	console_session_end(cc->c, cc->session);
	snprintf(cc->resp->set_cookie, sizeof(cc->resp->set_cookie),
	    "%s=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
	    SG_CONSOLE_COOKIE);
	console_json(cc->resp, 200, json_pack("{s:b}", "signed_out", 1));
}

void
console_get_session(struct console_call *cc)
{
	console_json(cc->resp, 200, json_pack("{s:s, s:o, s:s, s:s}",
	    "officer", cc->officer, "credentials",
	    cred_ids(cc, cc->officer), "rp_id", cc->c->rp_id, "origin",
	    cc->c->origin));
}

/* Whether officer already decided q. */
static int
decided(const struct sg_request *q, const char *officer)
{
	size_t i;

	for (i = 0; i < q->napprovals; i++)
		if (strcmp(q->approvals[i].officer, officer) == 0)
			return 1;
	return 0;
}

/* Whether officer may decide q under the policy in force. */
static int
may_decide(struct sg_console *c, const struct sg_request *q,
    const char *officer)
{
	const struct sg_policy *p = sg_service_policy(c->svc);
	const struct sg_policy_key *pk = sg_policy_key(p, q->key);
	struct sg_policy_key k;

	if (pk == NULL)
		return 0;
	sg_policy_key_for_kind(pk, q->kind, &k);
	return sg_policy_may_approve(p, &k, q->requester, officer);
}

static json_t *
missing_json(struct sg_console *c, const struct sg_request *q)
{
	struct sg_request_quorum v;
	json_t *a = json_array();
	size_t i;

	if (sg_service_request_quorum(c->svc, q, &v) != 0)
		return a;
	for (i = 0; i < v.res.nterms && i < v.nterms; i++)
		json_array_append_new(a, json_pack("{s:s, s:i, s:i}", "group",
		    v.terms[i].group, "count", (int)v.terms[i].count,
		    "missing", (int)v.res.missing[i]));
	return a;
}

/* One row of the queue. */
static json_t *
queue_item(struct sg_console *c, const struct sg_request *q)
{
	json_t *art = json_loads(q->artifact_json, 0, NULL), *name;
	char created[32];
	json_t *j;

	name = art != NULL ? json_object_get(art, "name") : NULL;
	sg_time_rfc3339((time_t)q->created_at, created, sizeof(created));
	j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:o}", "id", q->id,
	    "kind", sg_kind_str(q->kind), "key", q->key, "requester",
	    q->requester, "created_at", created, "artifact",
	    json_is_string(name) ? json_string_value(name) : NULL,
	    "missing", missing_json(c, q));
	json_decref(art);
	return j;
}

/* GET /api/queue[?wait=S&since=TAG]: what this officer may still
 * decide. */
void
console_get_queue(struct console_call *cc)
{
	struct sg_request **v = NULL;
	json_t *items;
	size_t i, n = 0;

	if (cc->c->svc == NULL || sg_service_list(cc->c->svc, SG_REQ_PENDING,
	    NULL, 0, QUEUE_MAX, &v, &n) != 0) {
		console_problem(cc->resp, 503, "the requests cannot be read");
		return;
	}
	items = json_array();
	for (i = 0; i < n; i++)
		if (!decided(v[i], cc->officer) &&
		    may_decide(cc->c, v[i], cc->officer))
			json_array_append_new(items, queue_item(cc->c, v[i]));
	for (i = 0; i < n; i++)
		sg_request_free(v[i]);
	free(v);
	answer_or_wait(cc, json_pack("{s:s, s:o}", "officer", cc->officer,
	    "items", items), "queue");
}

/* The key object of GET /v1/keys named name, or null. */
static json_t *
key_object(struct console_call *cc, const char *name)
{
	json_t *keys = api_get(cc, "/v1/keys"), *k, *found = NULL;
	size_t i;

	if (keys == NULL)
		return json_null();
	json_array_foreach(json_object_get(keys, "keys"), i, k) {
		if (json_is_string(json_object_get(k, "name")) &&
		    strcmp(json_string_value(json_object_get(k, "name")),
		    name) == 0) {
			found = json_incref(k);
			break;
		}
	}
	json_decref(keys);
	return found != NULL ? found : json_null();
}

/* GET /api/requests/{id}[?wait=S&since=TAG]: the request object of the
 * API, its key object, and what this officer may do. */
void
console_get_request(struct console_call *cc)
{
	struct sg_request *q = NULL;
	char path[64];
	json_t *rq, *j;
	int may = 0, done = 0;

	snprintf(path, sizeof(path), "/v1/requests/%s", cc->id);
	if ((rq = api_get(cc, path)) == NULL)
		return;
	if (cc->c->svc != NULL && sg_service_get(cc->c->svc, cc->id, &q) == 0) {
		may = may_decide(cc->c, q, cc->officer);
		done = decided(q, cc->officer);
	}
	sg_request_free(q);
	j = json_pack("{s:o, s:o, s:s, s:b, s:b}", "request", rq, "key",
	    key_object(cc, json_string_value(json_object_get(rq, "key")) ?
	    json_string_value(json_object_get(rq, "key")) : ""),
	    "officer", cc->officer, "may_decide", may, "decided", done);
	/* The page's own reply must not carry the API's; only j. */
	free(cc->resp->body);
	memset(cc->resp, 0, sizeof(*cc->resp));
	answer_or_wait(cc, j, cc->id);
}

/*
 * POST /api/requests/{id}/approvals: a DSSE envelope of one signature by
 * the signed-in officer, made with a security key; the API and its
 * service check the rest.
 */
void
console_post_approval(struct console_call *cc)
{
	json_t *sigs = json_object_get(cc->body, "signatures"), *s0, *kid;
	char path[64];

	s0 = json_array_get(sigs, 0);
	kid = json_object_get(s0, "keyid");
	if (!json_is_array(sigs) || json_array_size(sigs) != 1 ||
	    !json_is_string(kid)) {
		console_problem(cc->resp, 400, "signatures: must hold one "
		    "signature with a keyid");
		return;
	}
	if (strcmp(json_string_value(kid), cc->officer) != 0) {
		console_problem(cc->resp, 403, "signatures[0].keyid: must be "
		    "the signed-in officer '%s'", cc->officer);
		return;
	}
	if (!json_is_object(json_object_get(s0, "webauthn"))) {
		console_problem(cc->resp, 403, "signatures[0].webauthn: the "
		    "console takes decisions made with a security key only");
		return;
	}
	snprintf(path, sizeof(path), "/v1/requests/%s/approvals", cc->id);
	sg_log_info("console: officer '%s' decides on %s", cc->officer,
	    cc->id);
	api_as(cc, "POST", path, cc->req->body, 1, cc->resp);
}

/* POST /api/requests/{id}/cancel/begin {}: a nonce for one cancel. */
void
console_cancel_begin(struct console_call *cc)
{
	static const char *const fields[] = { NULL };
	uint8_t nonce[CONSOLE_CHALLENGE_LEN];
	char hex[2 * CONSOLE_CHALLENGE_LEN + 1];

	if (only_fields(cc, fields) != 0)
		return;
	if (console_challenge_new(cc->c, PURPOSE_CANCEL, cc->session, cc->id,
	    nonce) != 0) {
		console_problem(cc->resp, 500, "no random nonce");
		return;
	}
	sg_hex_encode(nonce, sizeof(nonce), hex);
	console_json(cc->resp, 200, json_pack("{s:s, s:s, s:s, s:I}",
	    "nonce", hex, "request", cc->id, "officer", cc->officer,
	    "timeout_ms", (json_int_t)SG_CONSOLE_CHALLENGE_MS));
}

/* The cancel's reason: text officers read, one line. */
static const char *
body_reason(struct console_call *cc)
{
	json_t *v = json_object_get(cc->body, "reason");
	struct sg_text_fault tf;
	char why[128];

	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > SG_CANCEL_REASON_MAX) {
		console_problem(cc->resp, 400, "reason: is required, a string "
		    "of 1 to %d bytes", SG_CANCEL_REASON_MAX);
		return NULL;
	}
	if (sg_text_ok(json_string_value(v), json_string_length(v),
	    &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		console_problem(cc->resp, 400, "reason: %s", why);
		return NULL;
	}
	if (strchr(json_string_value(v), '\n') != NULL) {
		console_problem(cc->resp, 400, "reason: one line");
		return NULL;
	}
	return json_string_value(v);
}

/* POST /api/requests/{id}/cancel {"reason", "nonce", and the assertion
 * over SHA-256 of the cancel text}. */
void
console_post_cancel(struct console_call *cc)
{
	static const char *const fields[] = { "reason", "nonce",
	    "credential_id", "authenticator_data", "client_data_json",
	    "signature", NULL };
	struct assertion_buf b;
	uint8_t nonce[CONSOLE_CHALLENGE_LEN], digest[32];
	const char *reason;
	json_t *nv = json_object_get(cc->body, "nonce"), *body;
	char *text = NULL, *api_body = NULL, path[64];
	size_t nlen = 0;

	if (only_fields(cc, fields) != 0 ||
	    (reason = body_reason(cc)) == NULL ||
	    body_assertion(cc, &b) != 0)
		return;
	if (!json_is_string(nv) || sg_hex_decode(json_string_value(nv),
	    json_string_length(nv), nonce, sizeof(nonce), &nlen) != 0 ||
	    nlen != sizeof(nonce)) {
		console_problem(cc->resp, 400, "nonce: must be the %d hex "
		    "digits /cancel/begin gave", 2 * CONSOLE_CHALLENGE_LEN);
		return;
	}
	if (console_challenge_take(cc->c, PURPOSE_CANCEL, cc->session, cc->id,
	    nonce, nlen) != 0) {
		console_problem(cc->resp, 403, "nonce: unknown, used, expired "
		    "or not this session's for this request");
		return;
	}
	if (asprintf(&text, cancel_text_fmt, cc->id, cc->officer, reason,
	    json_string_value(nv)) < 0) {
		console_problem(cc->resp, 500, "out of memory");
		return;
	}
	sg_sha256(text, strlen(text), digest);
	free(text);
	if (check_assertion(cc, cc->officer, &b, digest, sizeof(digest),
	    403) != 0)
		return;
	body = json_pack("{s:s}", "reason", reason);
	api_body = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (api_body == NULL) {
		console_problem(cc->resp, 500, "out of memory");
		return;
	}
	snprintf(path, sizeof(path), "/v1/requests/%s/cancel", cc->id);
	sg_log_info("console: officer '%s' cancels %s", cc->officer, cc->id);
	api_as(cc, "POST", path, api_body, 0, cc->resp);
	free(api_body);
}
