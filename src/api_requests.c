/*
 * The request handlers of the API: POST /v1/requests (create), GET
 * /v1/requests (list), GET /v1/requests/{id} (with its long-poll),
 * GET /v1/requests/{id}/signature, POST /v1/requests/{id}/approvals and
 * POST /v1/requests/{id}/cancel.  Here each request body is checked
 * member by member (type, size, syntax, unknown members refused, the
 * field named in the problem), and a request is rendered as the API
 * shows it, with its signature and log proof once signed.
 *
 * The router (api.c) has already admitted the caller, parsed the body
 * of the rows that take an object and checked the path's {id}.  These
 * handlers call the service (sg_service.h) and answer through api.c's
 * problem and rendering helpers (api_int.h); nothing else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_int.h"
#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_text.h"
#include "sg_util.h"

#define LIST_DEFAULT 50
#define LIST_MAX 200
#define WAIT_MAX 60

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

/* What a release or a grant adds to the object (kind, and its own
 * member), and what a request made under a grant does. */
static void
kind_json(json_t *j, const struct sg_request *q)
{
	struct sg_statement st;
	char until[32];

	json_object_set_new(j, "kind", json_string(sg_kind_str(q->kind)));
	if (q->grant_id[0] != '\0')
		json_object_set_new(j, "grant", json_pack("{s:s, s:I}", "id",
		    q->grant_id, "sequence", (json_int_t)q->grant_seq));
	if (q->kind == SG_KIND_REQUEST)
		return;
	json_object_del(j, "digest");
	if (sg_statement_parse(q->statement, strlen(q->statement), &st) != 0)
		return;
	if (q->kind == SG_KIND_RELEASE) {
		json_object_set_new(j, "release", json_pack("{s:I, s:s, s:I}",
		    "count", (json_int_t)q->count, "manifest_sha256",
		    st.manifest_root, "signed", (json_int_t)q->signed_count));
		return;
	}
	sg_time_rfc3339((time_t)q->expires_at, until, sizeof(until));
	json_object_set_new(j, "grant", json_pack("{s:I, s:I, s:s, s:s}",
	    "count", (json_int_t)q->count, "used", (json_int_t)q->used,
	    "artifact", st.pattern, "until", until));
}

/* The reason a reject's envelope signs, if any, onto o (the envelope
 * was verified when it was posted: one that no longer reads adds
 * nothing). */
static void
add_reject_reason(json_t *o, const struct sg_approval *ap)
{
	struct sg_envelope env;
	char reason[SG_REJECT_REASON_MAX + 1], err[128];
	size_t stmt_len;
	int approve;

	if (o == NULL || ap->approve || ap->envelope == NULL)
		return;
	memset(&env, 0, sizeof(env));
	if (sg_envelope_parse(ap->envelope, strlen(ap->envelope), &env, err,
	    sizeof(err)) == 0 && sg_body_split_reason(env.payload,
	    env.payload_len, &stmt_len, &approve, reason,
	    sizeof(reason)) == 0 && reason[0] != '\0')
		json_object_set_new(o, "reason", json_string(reason));
	sg_envelope_clear(&env);
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
	json_t *j, *approvals, *required, *artifact, *d;
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
		d = json_pack("{s:s, s:s, s:s, s:b}", "officer",
		    q->approvals[i].officer, "decision",
		    q->approvals[i].approve ? "approve" : "reject", "at", at,
		    "counts", have_quorum && i < SG_ENVELOPES_MAX &&
		    v.counted[i]);
		add_reject_reason(d, &q->approvals[i]);
		json_array_append_new(approvals, d);
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
	kind_json(j, q);
	if (q->error != NULL)
		json_object_set_new(j, "error", json_string(q->error));
	if (q->state == SG_REQ_CANCELLED || q->state == SG_REQ_REVOKED) {
		sg_time_rfc3339((time_t)q->cancelled_at, at, sizeof(at));
		json_object_set_new(j, q->state == SG_REQ_REVOKED ? "revoked" :
		    "cancelled", json_pack("{s:s, s:s, s:s}",
		    "by", q->cancelled_by, "at", at, "reason",
		    q->cancel_reason != NULL ? q->cancel_reason : ""));
	}
	return j;
}

/* A signature made under a grant: its proof is two bundles (the
 * signature's entry, the grant's approved entry). */
static json_t *
grant_signature_json(struct sg_api *a, const struct sg_request *q,
    const char *what, struct sg_fault *f)
{
	struct sg_request *g = NULL;
	json_t *j = NULL;

	if (sg_service_get(a->svc, q->grant_id, &g) == 0)
		j = api_artifact_signature_json(a, g, q->digest_alg, q->format,
		    q->log_index, q->signature, q->signature_len, q->cms,
		    q->cms_len, what, f);
	sg_request_free(g);
	return j;
}

/* NULL when it cannot be rendered with its proof; f then says why when
 * the service told. */
static json_t *
signature_json(struct sg_api *a, const struct sg_request *q,
    struct sg_fault *f)
{
	const struct sg_key_view *kv = sg_service_key(a->svc, q->key);
	const char *alg = kv != NULL ? sg_scheme_name(kv->pk->alg,
	    kv->pk->scheme) : NULL;
	char what[64 + SG_REQUEST_ID_SIZE];
	char *sig;
	json_t *j;

	snprintf(what, sizeof(what), "the signature of request %s", q->id);
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
	if (j != NULL && q->log_index >= 0 && q->grant_id[0] != '\0') {
		json_decref(j);
		return grant_signature_json(a, q, what, f);
	}
	if (j != NULL && q->log_index >= 0) {
		char *proof = NULL;
		if (sg_service_log_bundle(a->svc, (uint64_t)q->log_index,
		    what, &proof, f) != 0) {
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

/* 503: a signature is stored but its proof cannot be answered; the
 * service's fault, when it gave one ("recorded": it awaits witness
 * cosignatures). */
static void
signature_problem(struct sg_http_response *resp, const struct sg_fault *f)
{
	if (f->detail[0] != '\0')
		api_service_problem(resp, SG_ERR_UNAVAILABLE, f);
	else
		api_problem(resp, 503, NULL, "the signature's log proof cannot "
		    "be read, or no signed checkpoint covers it yet");
}

void
api_respond_request(struct sg_api *a, struct sg_http_response *resp, int status,
    const struct sg_request *q)
{
	json_t *j = request_json(a, q);

	if (j != NULL && q->state == SG_REQ_SIGNED &&
	    q->signature != NULL) {
		struct sg_fault f;
		json_t *sig;
		memset(&f, 0, sizeof(f));
		if ((sig = signature_json(a, q, &f)) == NULL) {
			json_decref(j);
			signature_problem(resp, &f);
			return;
		}
		json_object_set_new(j, "signature", sig);
	}
	if (j == NULL) {
		api_problem(resp, 500, NULL, "cannot render the request");
		return;
	}
	api_set_json(resp, status, j);
}

/* Refuses members of obj that are not in allowed; names the first. */
int
api_only_fields(struct sg_http_response *resp, json_t *obj, const char *prefix,
    const char *const *allowed)
{
	const char *k;
	char field[128];

	if ((k = sg_json_stranger(obj, allowed)) == NULL)
		return 0;
	snprintf(field, sizeof(field), "%s%s", prefix, k);
	api_utf8_cut(field);
	api_problem(resp, 400, field, "%s: unknown field", field);
	return -1;
}

int
api_parse_artifact(struct sg_http_response *resp, json_t *art,
    const char *what, int name_required, char **ret)
{
	struct sg_text_fault tf;
	const char *k;
	json_t *v;
	char field[128], why[128];

	if (!json_is_object(art)) {
		api_problem(resp, 400, what, "%s: must be an object of strings",
		    what);
		return -1;
	}
	if (json_object_size(art) > SG_ARTIFACT_FIELDS_MAX) {
		api_problem(resp, 400, what, "%s: at most %d fields", what,
		    SG_ARTIFACT_FIELDS_MAX);
		return -1;
	}
	json_object_foreach(art, k, v) {
		snprintf(field, sizeof(field), "%s.%.64s", what, k);
		if (!sg_name_ok(k, SG_ARTIFACT_NAME_MAX)) {
			api_problem(resp, 400, what, "%s: field names are 1-%d "
			    "characters of A-Z a-z 0-9 . _ -", what,
			    SG_ARTIFACT_NAME_MAX);
			return -1;
		}
		if (!json_is_string(v)) {
			api_problem(resp, 400, field, "%s: must be a string",
			    field);
			return -1;
		}
		if (json_string_length(v) == 0 ||
		    json_string_length(v) > SG_ARTIFACT_VALUE_MAX) {
			api_problem(resp, 400, field, "%s: must be 1-%d bytes of "
			    "printable text", field, SG_ARTIFACT_VALUE_MAX);
			return -1;
		}
		/* Officers read these values before they approve. */
		if (sg_text_ok(json_string_value(v), json_string_length(v),
		    &tf) != 0) {
			sg_text_fault_describe(&tf, why, sizeof(why));
			api_problem(resp, 400, field, "%s: %s", field, why);
			return -1;
		}
	}
	if (name_required && json_object_get(art, "name") == NULL) {
		api_problem(resp, 400, "artifact.name", "artifact.name: is "
		    "required");
		return -1;
	}
	if ((*ret = json_dumps(art, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		api_problem(resp, 500, NULL, "out of memory");
		return -1;
	}
	/* It is logged whole, and a log entry's size is bounded. */
	if (strlen(*ret) > SG_ARTIFACT_JSON_MAX) {
		api_problem(resp, 400, what, "%s: %zu bytes as JSON, more than "
		    "%d", what, strlen(*ret), SG_ARTIFACT_JSON_MAX);
		free(*ret);
		*ret = NULL;
		return -1;
	}
	return 0;
}

/* "digest": {"algorithm": ..., "value": hex} into nr; prefix ("" or
 * "artifacts[7].") goes before the field names in problems. */
int
api_parse_digest(struct sg_http_response *resp, json_t *digest,
    const char *prefix, struct sg_new_request *nr)
{
	static const char *const dig[] = { "algorithm", "value", NULL };
	char field[64];
	json_t *v;

	snprintf(field, sizeof(field), "%sdigest", prefix);
	if (!json_is_object(digest)) {
		api_problem(resp, 400, field, "%s: must be an object with "
		    "algorithm and value", field);
		return -1;
	}
	snprintf(field, sizeof(field), "%sdigest.", prefix);
	if (api_only_fields(resp, digest, field, dig) != 0)
		return -1;
	snprintf(field, sizeof(field), "%sdigest.algorithm", prefix);
	v = json_object_get(digest, "algorithm");
	if (!json_is_string(v) || (nr->digest_alg =
	    sg_digest_from_name(json_string_value(v))) == SG_DIGEST_NONE) {
		api_problem(resp, 400, field, "%s: must be sha256, sha384 or "
		    "sha512", field);
		return -1;
	}
	snprintf(field, sizeof(field), "%sdigest.value", prefix);
	v = json_object_get(digest, "value");
	if (!json_is_string(v) ||
	    json_string_length(v) != 2 * sg_digest_len(nr->digest_alg) ||
	    sg_hex_decode(json_string_value(v), json_string_length(v),
	    nr->digest, sizeof(nr->digest), &nr->digest_len) != 0) {
		api_problem(resp, 400, field, "%s: must be %zu hex characters "
		    "for %s", field, 2 * sg_digest_len(nr->digest_alg),
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
	    "artifact", "grant", "algorithm", NULL };
	json_t *v;

	if (api_only_fields(resp, body, "", top) != 0)
		return -1;
	if ((v = json_object_get(body, "grant")) != NULL) {
		if (!json_is_string(v) || !sg_request_id_ok(json_string_value(v))) {
			api_problem(resp, 400, "grant", "grant: must be a grant "
			    "id (32 lower-case hex digits)");
			return -1;
		}
		nr->grant = json_string_value(v);
	}
	v = json_object_get(body, "key");
	if ((v != NULL || nr->grant == NULL) && (!json_is_string(v) ||
	    !sg_name_ok(json_string_value(v), SG_NAME_LEN_MAX))) {
		api_problem(resp, 400, "key", "key: must be a key name");
		return -1;
	}
	nr->key = v != NULL ? json_string_value(v) : NULL;
	if (api_parse_digest(resp, json_object_get(body, "digest"), "",
	    nr) != 0)
		return -1;
	/* Under a grant, no format means the grant's. */
	nr->format = nr->grant != NULL ? 0 : SG_FORMAT_RAW;
	if ((v = json_object_get(body, "format")) != NULL &&
	    (!json_is_string(v) ||
	    sg_format_parse(json_string_value(v), &nr->format) != 0)) {
		api_problem(resp, 400, "format", "format: must be raw or cms");
		return -1;
	}
	if ((v = json_object_get(body, "algorithm")) != NULL &&
	    (!json_is_string(v) || sg_scheme_from_name(json_string_value(v),
	    &nr->alg, &nr->scheme) != 0)) {
		api_problem(resp, 400, "algorithm", "algorithm: must be "
		    "ecdsa-p256, ecdsa-p384, rsa-pkcs1, rsa-pss or ed25519");
		return -1;
	}
	if ((v = json_object_get(body, "artifact")) == NULL) {
		api_problem(resp, 400, "artifact", "artifact: is required");
		return -1;
	}
	if (api_parse_artifact(resp, v, "artifact", 1, ret_artifact) != 0)
		return -1;
	nr->artifact_json = *ret_artifact;
	return 0;
}

/* The Idempotency-Key header, if any, with the SHA-256 of the body it
 * stands for (a retry must send the same body). */
int
api_parse_idempotency(const struct sg_http_request *req,
    struct sg_http_response *resp, struct sg_new_request *nr,
    char body_sha[SG_SHA256_HEX_SIZE])
{
	const char *s = api_header(req, "Idempotency-Key");
	uint8_t h[32];

	if (s == NULL)
		return 0;
	if (strlen(s) == 0 || strlen(s) > SG_IDEM_KEY_MAX ||
	    !printable(s, strlen(s))) {
		api_problem(resp, 400, "Idempotency-Key", "Idempotency-Key: "
		    "must be 1-%d printable characters", SG_IDEM_KEY_MAX);
		return -1;
	}
	nr->idem_key = s;
	sg_sha256(req->body, req->body_len, h);
	sg_hex_encode(h, sizeof(h), body_sha);
	nr->body_sha256 = body_sha;
	return 0;
}

/* The answer to POST /v1/requests. */
static void
created_response(struct sg_api *a, struct sg_http_response *resp, int r,
    const struct sg_request *q, int existing, const struct sg_fault *f)
{
	if (r != 0) {
		api_service_problem(resp, r, f);
		return;
	}
	snprintf(resp->location, sizeof(resp->location), "/v1/requests/%s",
	    q->id);
	api_respond_request(a, resp, existing ? 200 : 201, q);
}

/*
 * A call answered later: what the service's answer needs, from whatever
 * thread it comes.  NULL when the request did not come through the front
 * (the call is then answered at once); otherwise the call's response is
 * marked to come later.
 */
struct api_later {
	struct sg_api *a;
	struct sg_http_later *later;
	enum endpoint ep;
};

static struct api_later *
api_later_new(struct call *c, enum endpoint ep)
{
	struct api_later *al;

	if ((al = calloc(1, sizeof(*al))) == NULL)
		return NULL;
	if ((al->later = sg_http_later(c->req)) == NULL) {
		free(al);
		return NULL;
	}
	al->a = c->a;
	al->ep = ep;
	c->resp->later = 1;
	return al;
}

/* Answered, counted, freed. */
static void
api_later_answer(struct api_later *al, struct sg_http_response *resp)
{
	api_count(al->a, al->ep, resp->status);
	sg_http_answer(al->later, resp);
	free(al);
}

static void
created_later(void *arg, int r, struct sg_request *q, int existing,
    const struct sg_fault *f)
{
	struct api_later *al = arg;
	struct sg_http_response resp;

	memset(&resp, 0, sizeof(resp));
	created_response(al->a, &resp, r, q, existing, f);
	sg_request_free(q);
	api_later_answer(al, &resp);
}

/* The answer to an approval. */
static void
decided_response(struct sg_api *a, struct sg_http_response *resp, int r,
    const struct sg_request *q, const struct sg_fault *f)
{
	if (r != 0)
		api_service_problem(resp, r, f);
	else
		api_respond_request(a, resp, 200, q);
}

static void
decided_later(void *arg, int r, struct sg_request *q,
    const struct sg_fault *f)
{
	struct api_later *al = arg;
	struct sg_http_response resp;

	memset(&resp, 0, sizeof(resp));
	decided_response(al->a, &resp, r, q, f);
	sg_request_free(q);
	api_later_answer(al, &resp);
}

/* POST /v1/requests: answered once the request is stored (and, when it
 * needs no approval, signed and logged), without holding this thread
 * meanwhile when it came through the front. */
void
api_post_request(struct call *c)
{
	struct sg_new_request nr;
	struct sg_request *q = NULL;
	struct sg_fault f;
	struct api_later *al;
	char *artifact = NULL, body_sha[SG_SHA256_HEX_SIZE];
	int r, existing = 0;

	memset(&nr, 0, sizeof(nr));
	memset(&f, 0, sizeof(f));
	if (parse_new_request(c->resp, c->body, &nr, &artifact) != 0 ||
	    api_parse_idempotency(c->req, c->resp, &nr, body_sha) != 0)
		goto out;
	nr.requester = c->principal;
	if ((al = api_later_new(c, EP_REQUESTS_POST)) != NULL) {
		sg_service_create_async(c->a->svc, &nr, created_later, al);
		goto out;
	}
	r = sg_service_create(c->a->svc, &nr, &q, &existing, &f);
	created_response(c->a, c->resp, r, q, existing, &f);
out:
	sg_request_free(q);
	free(artifact);
}

/* GET /v1/requests?state=&key=&limit=&cursor= */
void
api_list_requests(struct call *c)
{
	const char *state = api_query(c, "state");
	const char *key = api_query(c, "key");
	const char *limit_s = api_query(c, "limit");
	const char *cursor = api_query(c, "cursor");
	struct sg_http_response *resp = c->resp;
	struct sg_request **v = NULL;
	uint64_t limit = LIST_DEFAULT, before = 0;
	enum sg_req_state want = SG_REQ_NONE;
	size_t i, n = 0;
	json_t *arr, *j;

	if (state != NULL && sg_req_state_parse(state, &want) != 0) {
		api_problem(resp, 400, "state", "state: must be pending, signed, "
		    "rejected, expired, failed, cancelled, active or revoked");
		return;
	}
	if (key != NULL && !sg_name_ok(key, SG_NAME_LEN_MAX)) {
		api_problem(resp, 400, "key", "key: must be a key name");
		return;
	}
	if (limit_s != NULL &&
	    sg_parse_u64(limit_s, 1, LIST_MAX, &limit) != 0) {
		api_problem(resp, 400, "limit", "limit: must be 1 to %d", LIST_MAX);
		return;
	}
	if (cursor != NULL &&
	    sg_parse_u64(cursor, 1, INT64_MAX, &before) != 0) {
		api_problem(resp, 400, "cursor", "cursor: not a cursor from this "
		    "server");
		return;
	}
	if (sg_service_list(c->a->svc, want, key, (int64_t)before, limit, &v,
	    &n) != 0) {
		api_problem(resp, 503, NULL, "the request store cannot be read");
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
	api_set_json(resp, 200, j);
}

/* The request of the path's {id}, or NULL with the problem answered. */
struct sg_request *
api_fetch_request(struct call *c)
{
	struct sg_request *q = NULL;
	int r;

	if ((r = sg_service_get(c->a->svc, c->id, &q)) == 0)
		return q;
	if (r == SG_ERR_NOT_FOUND)
		api_problem(c->resp, 404, NULL, "no request with id '%s'", c->id);
	else
		api_problem(c->resp, 503, NULL, "the request store cannot be "
		    "read");
	return NULL;
}

/* GET /v1/requests/{id}?wait=N: a pending request is answered when it
 * changes or after N seconds (the front suspends the connection). */
void
api_get_request(struct call *c)
{
	const char *wait_s = api_query(c, "wait");
	struct sg_request *q;
	uint64_t wait = 0;

	if (wait_s != NULL && sg_parse_u64(wait_s, 0, WAIT_MAX, &wait) != 0) {
		api_problem(c->resp, 400, "wait", "wait: must be 0 to %d seconds",
		    WAIT_MAX);
		return;
	}
	if ((q = api_fetch_request(c)) == NULL)
		return;
	if (wait > 0 && !c->req->resumed && (q->state == SG_REQ_PENDING ||
	    (q->state == SG_REQ_ACTIVE && q->kind == SG_KIND_RELEASE))) {
		snprintf(c->resp->wait_id, sizeof(c->resp->wait_id), "%s",
		    c->id);
		c->resp->wait_deadline_ms = c->a->now_ms() +
		    (int64_t)wait * 1000;
		sg_request_free(q);
		return;
	}
	api_respond_request(c->a, c->resp, 200, q);
	sg_request_free(q);
}

/* GET /v1/requests/{id}/signature */
void
api_get_signature(struct call *c)
{
	struct sg_request *q;
	struct sg_fault f;
	json_t *j;

	if ((q = api_fetch_request(c)) == NULL)
		return;
	if (q->state != SG_REQ_SIGNED || q->signature == NULL) {
		api_problem(c->resp, 409, NULL, "request %s is %s, not signed",
		    c->id, sg_req_state_str(q->state));
		sg_request_free(q);
		return;
	}
	memset(&f, 0, sizeof(f));
	if ((j = signature_json(c->a, q, &f)) == NULL)
		signature_problem(c->resp, &f);
	else
		api_set_json(c->resp, 200, j);
	sg_request_free(q);
}

/* POST /v1/requests/{id}/approvals: the service reads the envelope. */
void
api_post_approval(struct call *c)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	struct api_later *al;
	int r;

	if ((al = api_later_new(c, EP_APPROVALS)) != NULL) {
		sg_service_decide_async(c->a->svc, c->id, c->principal,
		    c->req->body, c->req->body_len, decided_later, al);
		return;
	}
	memset(&f, 0, sizeof(f));
	r = sg_service_decide(c->a->svc, c->id, c->principal, c->req->body,
	    c->req->body_len, &q, &f);
	decided_response(c->a, c->resp, r, q, &f);
	sg_request_free(q);
}

static const char *
api_parse_reason(struct call *c)
{
	static const char *const top[] = { "reason", NULL };
	struct sg_text_fault tf;
	json_t *v;
	char why[128];

	if (api_only_fields(c->resp, c->body, "", top) != 0)
		return NULL;
	v = json_object_get(c->body, "reason");
	if (!json_is_string(v)) {
		api_problem(c->resp, 400, "reason", "reason: is required, a string "
		    "of 1 to %d bytes", SG_CANCEL_REASON_MAX);
		return NULL;
	}
	/* Officers read it: the text rule, over every byte (a NUL too). */
	if (sg_text_ok(json_string_value(v), json_string_length(v),
	    &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		api_problem(c->resp, 400, "reason", "reason: %s", why);
		return NULL;
	}
	return json_string_value(v);
}

void
api_with_reason(struct call *c, api_reason_fn *fn)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	const char *reason;
	int r;

	memset(&f, 0, sizeof(f));
	if ((reason = api_parse_reason(c)) == NULL)
		return;
	if ((r = fn(c->a->svc, c->id, c->principal, reason, &q, &f)) != 0) {
		api_service_problem(c->resp, r, &f);
		return;
	}
	api_respond_request(c->a, c->resp, 200, q);
	sg_request_free(q);
}

/* POST /v1/requests/{id}/cancel {"reason": "..."}: by the requester or
 * an officer who may approve the request, while it is pending. */
void
api_post_cancel(struct call *c)
{
	api_with_reason(c, sg_service_cancel);
}
