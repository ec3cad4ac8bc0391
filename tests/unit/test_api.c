/*
 * Tests for the API's router (src/api.c) without a socket: synthetic
 * requests go through sg_api_dispatch() against the service stand-in of
 * api_stub_service.c, and the tests check both sides: which service
 * operation the router called, with which arguments (or that it called
 * none), and the status, headers and JSON it answered.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_stub_service.h"
#include "sg_api.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_test.h"
#include "sg_tiles.h"
#include "sg_util.h"

#define POLICY_SHA \
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define OTHER_SHA \
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

#define ID "0123456789abcdef0123456789abcdef"
#define HEX64 "000000000000000000000000000000000000000000000000000000000000002a"
#define GOOD_BODY "{\"key\":\"nightly\",\"digest\":{\"algorithm\":\"sha256\"," \
    "\"value\":\"" HEX64 "\"},\"artifact\":{\"name\":\"a\"}}"

static struct sg_service svc;

/* Who sends a request. */
enum who {
	NOBODY,                         /* no client certificate */
	CI,                             /* mapped by CN */
	AUDIT,                          /* mapped by certificate hash */
	STRANGER,                       /* verified, but no principal */
};

struct treq {
	struct sg_http_request r;
	struct sg_http_param query[16];
	struct sg_http_param headers[8];
	char target[1024];
};

/*
 * A request for method and target ("path?a=1&b"): the query is split
 * on '&' and '=' (a name without '=' has no value), as the front hands
 * it over after decoding.
 */
static void
mkreq(struct treq *t, const char *method, const char *target, enum who who)
{
	char *q, *arg, *eq, *save = NULL;

	memset(t, 0, sizeof(*t));
	snprintf(t->target, sizeof(t->target), "%s", target);
	t->r.method = method;
	t->r.path = t->target;
	t->r.query = t->query;
	t->r.headers = t->headers;
	t->r.body = "";
	t->r.loopback = 1;
	if ((q = strchr(t->target, '?')) != NULL) {
		*q++ = '\0';
		for (arg = strtok_r(q, "&", &save); arg != NULL &&
		    t->r.nquery < 16; arg = strtok_r(NULL, "&", &save)) {
			if ((eq = strchr(arg, '=')) != NULL)
				*eq++ = '\0';
			t->query[t->r.nquery].name = arg;
			t->query[t->r.nquery++].value = eq;
		}
	}
	if (who == NOBODY)
		return;
	t->r.authenticated = 1;
	snprintf(t->r.client_cn, sizeof(t->r.client_cn), "%s",
	    who == CI ? "ci" : who == AUDIT ? "audit-host" : "mallory");
	if (who == AUDIT)
		memcpy(t->r.client_sha256, stub_audit_sha256, 32);
}

static void
add_header(struct treq *t, const char *name, const char *value)
{
	t->headers[t->r.nheaders].name = name;
	t->headers[t->r.nheaders++].value = value;
}

static void
json_body(struct treq *t, const char *body, size_t len)
{
	add_header(t, "Content-Type", "application/json");
	t->r.body = body;
	t->r.body_len = len;
}

/* The answer, with its body parsed when it is JSON. */
struct tresp {
	struct sg_http_response r;
	json_t *doc;
};

static int
send_to(struct sg_api *a, struct treq *t, struct tresp *out)
{
	json_decref(out->doc);
	free(out->r.body);
	memset(out, 0, sizeof(*out));
	sg_api_dispatch(a, &t->r, &out->r);
	if (out->r.body != NULL && out->r.content_type != NULL &&
	    strstr(out->r.content_type, "json") != NULL)
		out->doc = json_loadb(out->r.body, out->r.body_len, 0, NULL);
	return out->r.status;
}

static void
tresp_free(struct tresp *out)
{
	json_decref(out->doc);
	free(out->r.body);
	memset(out, 0, sizeof(*out));
}

static const char *
jstr(const struct tresp *out, const char *member)
{
	return json_string_value(json_object_get(out->doc, member));
}

/* A problem document: status, type, detail containing detail_part and,
 * if field is not NULL, that field (""  for none). */
static int
is_problem(const struct tresp *out, int status, const char *field,
    const char *detail_part)
{
	const char *f = jstr(out, "field"), *d = jstr(out, "detail");
	int ok = 1;

	if (out->r.status != status || out->doc == NULL ||
	    strcmp(out->r.content_type, "application/problem+json") != 0 ||
	    json_integer_value(json_object_get(out->doc, "status")) != status)
		ok = 0;
	if (ok && field != NULL && strcmp(field, f != NULL ? f : "") != 0)
		ok = 0;
	if (ok && detail_part != NULL && (d == NULL ||
	    strstr(d, detail_part) == NULL))
		ok = 0;
	if (!ok)
		fprintf(stderr, "  want %d field %s detail ~ '%s', got %d "
		    "%.*s\n", status, field ? field : "-",
		    detail_part ? detail_part : "", out->r.status,
		    (int)out->r.body_len, out->r.body ? out->r.body : "");
	return ok;
}

/* The stub's bundle fails as a signature awaiting witnesses does: a
 * "recorded" fault of the service's, which t's answer must carry. */
static void
expect_unwitnessed(struct sg_api *a, struct treq *t, struct tresp *out)
{
	svc.fault.recorded = 1;
	snprintf(svc.fault.detail, sizeof(svc.fault.detail), "it awaits "
	    "witness cosignatures");
	CHECK_EQ_INT(send_to(a, t, out), 503);
	CHECK(is_problem(out, 503, "", "awaits witness cosignatures"));
	CHECK(json_is_true(json_object_get(out->doc, "recorded")));
}

static struct sg_api *
new_api(int plain_http, unsigned rate, unsigned burst)
{
	struct sg_api *a = NULL;

	CHECK_EQ_INT(sg_api_new(&svc, plain_http, rate, burst, &a), 0);
	if (a != NULL)
		sg_api_set_clock(a, stub_now_ms);
	return a;
}

/* ---- every route reaches its service operation --------------------------- */

static void
test_keys_and_requests(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	json_t *k;

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/keys", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(jstr(&out, "principal"), "ci");
	k = json_object_get(out.doc, "keys");
	CHECK_EQ_INT(json_array_size(k), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(k, 0),
	    "name")), "nightly");
	CHECK_STR(json_string_value(json_object_get(json_array_get(k, 1),
	    "state")), "unavailable");

	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_STR(svc.last, "create");
	CHECK_EQ_INT(svc.calls, 1);
	CHECK_STR(svc.nr_key, "nightly");
	CHECK_STR(svc.nr_requester, "ci");
	CHECK_STR(svc.nr_format, "raw");
	CHECK_STR(svc.nr_artifact, "{\"name\":\"a\"}");
	CHECK_EQ_INT(svc.nr.digest_alg, SG_DIGEST_SHA256);
	CHECK_EQ_INT(svc.nr.digest_len, 32);
	CHECK_EQ_INT(svc.nr.digest[31], 0x2a);
	CHECK_EQ_INT(svc.nr_has_idem, 0);
	CHECK_STR(out.r.location, "/v1/requests/" ID);
	CHECK_STR(out.r.content_type, "application/json");
	CHECK_STR(jstr(&out, "id"), ID);
	CHECK_STR(jstr(&out, "state"), "pending");

	/* An idempotent retry: the original, 200. */
	stub_reset(&svc);
	svc.existing = 1;
	CHECK_EQ_INT(send_to(a, &t, &out), 200);

	stub_reset(&svc);
	svc.nlist = 2;
	mkreq(&t, "GET", "/v1/requests?state=signed&key=release&limit=2"
	    "&cursor=99", AUDIT);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "list");
	CHECK_STR(svc.state_arg, "signed");
	CHECK_STR(svc.key_arg, "release");
	CHECK_EQ_INT(svc.limit, 2);
	CHECK_EQ_INT(svc.before, 99);
	CHECK_EQ_INT(json_array_size(json_object_get(out.doc, "requests")), 2);
	CHECK_STR(jstr(&out, "next_cursor"), "42");

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/requests", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.state_arg, "");
	CHECK_EQ_INT(svc.limit, 50);
	CHECK_EQ_INT(svc.before, 0);
	CHECK(json_is_null(json_object_get(out.doc, "next_cursor")));

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/requests/" ID, CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "get");
	CHECK_STR(svc.id, ID);
	CHECK_STR(jstr(&out, "policy_in_force"), "signgate-test@3");
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_signatures_and_decisions(void)
{
	static const char env[] = "{\"payloadType\":\"x\"}";
	static const char cancel[] = "{\"reason\":\"wrong build\"}";
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	json_t *log;

	stub_reset(&svc);
	svc.state = SG_REQ_SIGNED;
	mkreq(&t, "GET", "/v1/requests/" ID "/signature", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "get");
	CHECK_STR(svc.id, ID);
	CHECK_STR(jstr(&out, "signature"), "c2ln");
	CHECK_STR(jstr(&out, "algorithm"), "ed25519");
	log = json_object_get(out.doc, "log");
	CHECK_EQ_INT(json_integer_value(json_object_get(log, "index")), 7);
	CHECK_STR(json_string_value(json_object_get(log, "proof")),
	    "c2sp.org/tlog-proof@v1\n");
	/* A signed request carries its signature too. */
	mkreq(&t, "GET", "/v1/requests/" ID, CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(json_string_value(json_object_get(json_object_get(out.doc,
	    "signature"), "signature")), "c2ln");
	CHECK_STR(svc.what, "the signature of request " ID);

	/* Its proof cannot be read: 503, never a signature without it. */
	stub_reset(&svc);
	svc.state = SG_REQ_SIGNED;
	svc.bundle_result = SG_ERR_UNAVAILABLE;
	mkreq(&t, "GET", "/v1/requests/" ID "/signature", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 503);
	CHECK(is_problem(&out, 503, "", "log proof cannot be read"));
	CHECK(json_object_get(out.doc, "recorded") == NULL);
	/* ... awaiting witnesses: the service's fault, "recorded". */
	expect_unwitnessed(a, &t, &out);
	CHECK_EQ_INT(out.r.retry_after, 5);
	mkreq(&t, "GET", "/v1/requests/" ID, CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 503);
	CHECK(is_problem(&out, 503, "", "awaits witness cosignatures"));
	CHECK(json_is_true(json_object_get(out.doc, "recorded")));
	CHECK(json_object_get(out.doc, "signature") == NULL);

	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests/" ID "/approvals", AUDIT);
	json_body(&t, env, strlen(env));
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "decide");
	CHECK_STR(svc.id, ID);
	CHECK_STR(svc.principal, "audit");
	CHECK_EQ_INT(svc.text_len, strlen(env));
	CHECK_STR(svc.text, env);

	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests/" ID "/cancel", CI);
	json_body(&t, cancel, strlen(cancel));
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "cancel");
	CHECK_STR(svc.id, ID);
	CHECK_STR(svc.principal, "ci");
	CHECK_STR(svc.text, "wrong build");
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_log_and_ops(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/log/checkpoint", NOBODY);
	t.r.loopback = 0;
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "log_checkpoint");
	CHECK_STR(out.r.content_type, "text/plain; charset=utf-8");
	CHECK(out.r.body_len == 21 &&
	    memcmp(out.r.body, "signgate-test\n8\nAAAA\n", 21) == 0);

	mkreq(&t, "GET", "/v1/log/key", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK(out.r.body_len == 28 &&
	    memcmp(out.r.body, "signgate-test+01234567+AQID\n", 28) == 0);

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/log/entries/5", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "log_entry");
	CHECK_EQ_INT(svc.x, 5);
	CHECK_STR(out.r.content_type, "text/plain; charset=us-ascii");

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/log/proof/inclusion?index=3&size=8", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "log_inclusion");
	CHECK_EQ_INT(svc.x, 3);
	CHECK_EQ_INT(svc.y, 8);
	CHECK_EQ_INT(json_array_size(json_object_get(out.doc, "hashes")), 2);

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/log/proof/consistency?old=2&new=8", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "log_consistency");
	CHECK_EQ_INT(svc.x, 2);
	CHECK_EQ_INT(svc.y, 8);
	CHECK_EQ_INT(json_integer_value(json_object_get(out.doc, "new")), 8);

	/* The same log as tlog-tiles: the checkpoint and a full tile
	 * (the stand-in has only tile/0/000), with their caching. */
	stub_reset(&svc);
	mkreq(&t, "GET", "/log/checkpoint", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "log_checkpoint");
	CHECK_STR(out.r.cache_control, "no-cache");
	CHECK(out.r.body_len == 21 &&
	    memcmp(out.r.body, "signgate-test\n8\nAAAA\n", 21) == 0);
	mkreq(&t, "GET", "/log/tile/0/000", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(out.r.content_type, "application/octet-stream");
	CHECK_STR(out.r.cache_control, "public, max-age=31536000, immutable");
	CHECK(out.r.body_len == SG_TILE_HASHES_MAX &&
	    (uint8_t)out.r.body[SG_TILE_HASHES_MAX - 1] == 0x5a);
	mkreq(&t, "GET", "/log/tile/0/000.p/5", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 404);
	CHECK(is_problem(&out, 404, "", "does not cover this tile"));
	mkreq(&t, "GET", "/log/tile/0/0000", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 404);
	CHECK(is_problem(&out, 404, "", "no such tile"));
	mkreq(&t, "POST", "/log/checkpoint", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 405);

	mkreq(&t, "GET", "/healthz", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(jstr(&out, "status"), "ok");

	stub_reset(&svc);
	mkreq(&t, "GET", "/readyz", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "ready");
	CHECK_STR(jstr(&out, "status"), "ready");
	svc.not_ready = 1;
	CHECK_EQ_INT(send_to(a, &t, &out), 503);
	CHECK_STR(out.r.content_type, "application/json");
	CHECK_STR(jstr(&out, "status"), "degraded");
	CHECK_STR(jstr(&out, "reason"), "key release: the token is not "
	    "present");

	mkreq(&t, "GET", "/metrics", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(out.r.content_type, "text/plain; version=0.0.4");
	tresp_free(&out);
	sg_api_free(a);
}

/* ---- refusals of the router ---------------------------------------------- */

/* A request the router refuses itself: the problem, and no service call
 * that acts (a rate-limit check reads nothing either). */
static void
refused_field(struct sg_api *a, struct treq *t, int status,
    const char *field, const char *detail)
{
	struct tresp out = { 0 };

	stub_reset(&svc);
	send_to(a, t, &out);
	if (!is_problem(&out, status, field, detail))
		fprintf(stderr, "  for %s %s\n", t->r.method, t->r.path);
	CHECK(is_problem(&out, status, field, detail));
	CHECK_EQ_INT(svc.calls, 0);
	tresp_free(&out);
}

/* The same, for a problem that names no field. */
static void
refused(struct sg_api *a, struct treq *t, int status, const char *detail)
{
	refused_field(a, t, status, "", detail);
}

/* The policy versions: public, text with the log index header. */
static void
test_policy_routes(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/policies/" POLICY_SHA, NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(out.r.content_type, "text/plain; charset=utf-8");
	CHECK_STR(out.r.log_index, "3");
	CHECK(out.r.body_len == 22 &&
	    memcmp(out.r.body, "policy stub\nversion 1\n", 22) == 0);
	mkreq(&t, "GET", "/v1/policies/" OTHER_SHA, NOBODY);
	refused(a, &t, 404, "no logged policy");
	mkreq(&t, "GET", "/v1/policies/AAAA", NOBODY);
	refused(a, &t, 404, "no such policy");
	mkreq(&t, "GET", "/v1/policies/pending", NOBODY);
	refused(a, &t, 404, "no policy version is pending");
	mkreq(&t, "POST", "/v1/policies/" POLICY_SHA "/approvals", NOBODY);
	refused(a, &t, 401, "client certificate");

	tresp_free(&out);
	sg_api_free(a);
}

static void
test_wrong_methods(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;

	mkreq(&t, "DELETE", "/v1/keys", CI);
	refused(a, &t, 405, "use GET");
	mkreq(&t, "POST", "/v1/keys", CI);
	refused(a, &t, 405, "use GET");
	mkreq(&t, "PUT", "/v1/requests", CI);
	refused(a, &t, 405, "use GET or POST");
	mkreq(&t, "POST", "/v1/requests/" ID, CI);
	refused(a, &t, 405, "method not allowed");
	mkreq(&t, "DELETE", "/v1/requests/" ID "/signature", CI);
	refused(a, &t, 405, "method not allowed");
	mkreq(&t, "GET", "/v1/requests/" ID "/approvals", CI);
	refused(a, &t, 405, "method not allowed");
	mkreq(&t, "GET", "/v1/requests/" ID "/cancel", CI);
	refused(a, &t, 405, "method not allowed");
	mkreq(&t, "POST", "/v1/log/checkpoint", NOBODY);
	refused(a, &t, 405, "use GET");
	/* Below /v1/log/ the method is checked before the path. */
	mkreq(&t, "POST", "/v1/log/nothing", NOBODY);
	refused(a, &t, 405, "use GET");
	mkreq(&t, "POST", "/v1/log/entries/x", NOBODY);
	refused(a, &t, 405, "use GET");
	mkreq(&t, "POST", "/metrics", NOBODY);
	refused(a, &t, 405, "use GET");
	mkreq(&t, "get", "/v1/keys", CI);
	refused(a, &t, 405, "use GET");
	/* Who may call comes before the method. */
	mkreq(&t, "PUT", "/v1/requests", NOBODY);
	refused(a, &t, 401, "client certificate");
	mkreq(&t, "POST", "/metrics", NOBODY);
	t.r.loopback = 0;
	refused(a, &t, 403, "only from loopback");
	sg_api_free(a);
}

static void
test_unknown_paths(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;

	mkreq(&t, "GET", "/nothing", NOBODY);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/", NOBODY);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "", NOBODY);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/v1/nothing", CI);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "DELETE", "/v1/nothing", CI);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/v1/keys/", CI);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/v1/keysX", CI);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/v1/requests/" ID "/", CI);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/v1/requests/" ID "/approvals/x", CI);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/v1/log/nothing", NOBODY);
	refused(a, &t, 404, "no such endpoint");
	mkreq(&t, "GET", "/v1/log/entries/", NOBODY);
	refused(a, &t, 404, "no such entry");
	mkreq(&t, "GET", "/v1/log/entries/5/6", NOBODY);
	refused(a, &t, 404, "no such entry");
	mkreq(&t, "GET", "/v1/log/entries/-1", NOBODY);
	refused(a, &t, 404, "no such entry");
	mkreq(&t, "GET", "/v1/log/entries/9223372036854775808", NOBODY);
	refused(a, &t, 404, "no such entry");
	/* Below /v1/ but not the log: a principal first. */
	mkreq(&t, "GET", "/v1/nothing", NOBODY);
	refused(a, &t, 401, "client certificate");
	mkreq(&t, "GET", "/v1/log", NOBODY);
	refused(a, &t, 401, "client certificate");
	mkreq(&t, "GET", "/v1/requests/xyz", NOBODY);
	refused(a, &t, 401, "client certificate");
	sg_api_free(a);
}

static void
test_bad_ids(void)
{
	static const char *const bad[] = {
		"xyz",
		"",
		"0123456789ABCDEF0123456789abcdef",     /* upper case */
		"0123456789abcdef0123456789abcde",      /* 31 */
		"0123456789abcdef0123456789abcdef0",    /* 33 */
		"0123456789abcdeg0123456789abcdef",
		"0123456789abcdef 123456789abcdef",
		"../../../../../../../../etc/passwd",
		"0123456789abcdef0123456789abcd%2f",
		"0123456789abcdef0123456789abcd\xc3\xa9",
		"0123456789abcdef0123456789abcde\n",
	};
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	char path[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "/v1/requests/%s", bad[i]);
		mkreq(&t, "GET", path, CI);
		refused(a, &t, 404, "no request with that id");
		snprintf(path, sizeof(path), "/v1/requests/%s/approvals",
		    bad[i]);
		mkreq(&t, "POST", path, CI);
		json_body(&t, "{}", 2);
		refused(a, &t, 404, "no request with that id");
		snprintf(path, sizeof(path), "/v1/requests/%s/cancel", bad[i]);
		mkreq(&t, "DELETE", path, CI);
		refused(a, &t, 404, "no request with that id");
	}
	sg_api_free(a);
}

/* ---- bodies -------------------------------------------------------------- */

/* POSTs body to path as ci: a 400 naming field, with nothing done. */
static void
bad_body(struct sg_api *a, const char *path, const char *body,
    const char *field, const char *detail)
{
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	mkreq(&t, "POST", path, CI);
	json_body(&t, body, strlen(body));
	send_to(a, &t, &out);
	if (!is_problem(&out, 400, field, detail))
		fprintf(stderr, "  for body %s\n", body);
	CHECK(is_problem(&out, 400, field, detail));
	CHECK_EQ_INT(svc.calls, 0);
	tresp_free(&out);
}

#define DIG "\"digest\":{\"algorithm\":\"sha256\",\"value\":\"" HEX64 "\"}"

static void
test_bad_json(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	const char *rq = "/v1/requests", *cn = "/v1/requests/" ID "/cancel";

	bad_body(a, rq, "{\"key\": ", "", "malformed JSON at line 1");
	bad_body(a, rq, "", "", "malformed JSON");
	/* A bad escape before a multi-byte character: jansson's message
	 * quotes the body and cuts the character; the answer is still a
	 * 400 problem document, its detail escaped. */
	bad_body(a, rq, "{\"a\":\"\\u202\xef\xbf\xbf\"}", "",
	    "malformed JSON at line 1");
	bad_body(a, rq, "{\"a\":\"\\u20\xe2\x82\xac\"}", "",
	    "malformed JSON at line 1");
	bad_body(a, rq, "[1,2]", "", "must be a JSON object");
	bad_body(a, rq, "{\"key\":\"nightly\",\"key\":\"release\"," DIG
	    ",\"artifact\":{\"name\":\"a\"}}", "", "duplicate");
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG ",\"artifact\":"
	    "{\"name\":\"a\"},\"extra\":1}", "extra", "extra: unknown field");
	bad_body(a, rq, "{\"key\":\"nightly\",\"digest\":{\"algorithm\":"
	    "\"sha256\",\"value\":\"" HEX64 "\",\"salt\":1},\"artifact\":"
	    "{\"name\":\"a\"}}", "digest.salt", "digest.salt: unknown field");
	bad_body(a, rq, "{" DIG ",\"artifact\":{\"name\":\"a\"}}", "key",
	    "key: must be a key name");
	bad_body(a, rq, "{\"key\":5," DIG ",\"artifact\":{\"name\":\"a\"}}",
	    "key", NULL);
	bad_body(a, rq, "{\"key\":\"nightly\",\"digest\":\"x\","
	    "\"artifact\":{\"name\":\"a\"}}", "digest", "digest: must be an "
	    "object");
	bad_body(a, rq, "{\"key\":\"nightly\",\"digest\":{\"algorithm\":"
	    "\"md5\",\"value\":\"" HEX64 "\"},\"artifact\":{\"name\":\"a\"}}",
	    "digest.algorithm", NULL);
	bad_body(a, rq, "{\"key\":\"nightly\",\"digest\":{\"algorithm\":"
	    "\"sha384\",\"value\":\"" HEX64 "\"},\"artifact\":{\"name\":"
	    "\"a\"}}", "digest.value", "must be 96 hex characters for sha384");
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG ",\"format\":\"pgp\","
	    "\"artifact\":{\"name\":\"a\"}}", "format", NULL);
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG "}", "artifact",
	    "artifact: is required");
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG ",\"artifact\":"
	    "{\"version\":\"1\"}}", "artifact.name", "artifact.name: is "
	    "required");
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG ",\"artifact\":"
	    "{\"name\":\"a\",\"version\":1}}", "artifact.version",
	    "artifact.version: must be a string");
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG ",\"artifact\":"
	    "{\"name\":\"a\\u202eb\"}}", "artifact.name",
	    "U+202E (RIGHT-TO-LEFT OVERRIDE) is not allowed");
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG ",\"artifact\":"
	    "{\"name\":\"caf\xe9\"}}", "artifact.name",
	    "artifact.name: is not valid UTF-8");
	bad_body(a, rq, "{\"key\":\"nightly\"," DIG ",\"artifact\":"
	    "{\"name\":\"a\",\"v\xff\":\"1\"}}", "artifact",
	    "artifact: a member name is not valid UTF-8");
	bad_body(a, rq, "\xff", "", "the body is not valid UTF-8 (byte 0)");
	bad_body(a, cn, "{}", "reason", "reason: is required");
	bad_body(a, cn, "{\"reason\":5}", "reason", NULL);
	bad_body(a, cn, "{\"reason\":\"a\",\"by\":\"b\"}", "by",
	    "by: unknown field");
	bad_body(a, cn, "{\"reason\":\"a\\u0007b\"}", "reason",
	    "reason: U+0007");
	bad_body(a, cn, "{\"reason\":\"a\\u0000b\"}", "", "malformed JSON");
	sg_api_free(a);
}

/*
 * Field names are cut to fit the problem document; a cut inside a UTF-8
 * sequence made the document unrenderable (a 500 without a body).  Every
 * alignment of the cut, for an unknown member and for the path of a
 * string that is not UTF-8.
 */
static void
test_long_field_names(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	char body[2048], *p;
	const char *field;
	int pad, i;

	for (pad = 100; pad < 140; pad++) {
		p = body + sprintf(body, "{\"%.*s", pad, "aaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaa");
		sprintf(p, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91\":1}");
		stub_reset(&svc);
		mkreq(&t, "POST", "/v1/requests", CI);
		json_body(&t, body, strlen(body));
		CHECK_EQ_INT(send_to(a, &t, &out), 400);
		field = jstr(&out, "field");
		CHECK(field != NULL && strncmp(field, "aaaa", 4) == 0);
		CHECK(jstr(&out, "detail") != NULL &&
		    strstr(jstr(&out, "detail"), ": unknown field") != NULL);
		CHECK_EQ_INT(svc.calls, 0);

		/* Nested members around the 256-byte path, the innermost
		 * value not UTF-8. */
		p = body + sprintf(body, "{");
		for (i = 0; i < 20; i++)
			p += sprintf(p, "\"%.*s\xc3\xa9\xe2\x82\xac%d\":{",
			    12 + pad % 16, "bbbbbbbbbbbbbbbbbbbbbbbbbbbb", i);
		p += sprintf(p, "\"x\":\"\xff\"");
		for (i = 0; i < 21; i++)
			*p++ = '}';
		*p = '\0';
		mkreq(&t, "POST", "/v1/requests/" ID "/cancel", CI);
		json_body(&t, body, strlen(body));
		CHECK_EQ_INT(send_to(a, &t, &out), 400);
		field = jstr(&out, "field");
		CHECK(field != NULL && strncmp(field, "bbb", 3) == 0 &&
		    strlen(field) > 240);
		CHECK(jstr(&out, "detail") != NULL &&
		    strstr(jstr(&out, "detail"), ": is not valid UTF-8") !=
		    NULL);
	}
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_content_type(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	static const char *const paths[] = { "/v1/requests",
	    "/v1/requests/" ID "/approvals", "/v1/requests/" ID "/cancel" };
	size_t i;

	for (i = 0; i < 3; i++) {
		mkreq(&t, "POST", paths[i], CI);
		t.r.body = "{}";
		t.r.body_len = 2;
		refused(a, &t, 415, "Content-Type must be application/json");
		add_header(&t, "Content-Type", "text/plain");
		refused(a, &t, 415, "application/json");
		mkreq(&t, "POST", paths[i], CI);
		add_header(&t, "Content-Type", "application/jsonx");
		t.r.body = "{}";
		t.r.body_len = 2;
		refused(a, &t, 415, "application/json");
	}
	/* Header names in any case, parameters after the type. */
	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests", CI);
	add_header(&t, "content-TYPE", "Application/JSON; charset=utf-8");
	t.r.body = GOOD_BODY;
	t.r.body_len = strlen(GOOD_BODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_STR(svc.last, "create");
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_body_limits(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	char *big;
	size_t n = SG_HTTP_MAX_BODY + 1;

	if ((big = malloc(n + 1)) == NULL)
		abort();
	memset(big, ' ', n);
	big[n] = '\0';
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, big, n);
	refused(a, &t, 413, "the body exceeds the limit of 65536 bytes");
	mkreq(&t, "POST", "/v1/requests/" ID "/approvals", CI);
	json_body(&t, big, n);
	refused(a, &t, 413, "65536");
	mkreq(&t, "POST", "/v1/requests/" ID "/cancel", CI);
	json_body(&t, big, n);
	refused(a, &t, 413, "65536");
	/* At the limit it is read (and is no JSON). */
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, big, n - 1);
	refused(a, &t, 400, "malformed JSON");
	/* A route without a body ignores one. */
	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/keys", CI);
	json_body(&t, big, n);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	free(big);
	tresp_free(&out);
	sg_api_free(a);
}

/* ---- principals ---------------------------------------------------------- */

static void
test_principals(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	static const char *const paths[] = { "/v1/keys", "/v1/requests",
	    "/v1/requests/" ID, "/v1/requests/" ID "/signature" };
	size_t i;

	for (i = 0; i < 4; i++) {
		mkreq(&t, "GET", paths[i], NOBODY);
		refused(a, &t, 401, "a client certificate issued by the "
		    "client CA is required");
		mkreq(&t, "GET", paths[i], STRANGER);
		refused(a, &t, 401, "the client certificate maps to no "
		    "principal");
	}
	mkreq(&t, "POST", "/v1/requests", NOBODY);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	refused(a, &t, 401, "client certificate");
	mkreq(&t, "POST", "/v1/requests/" ID "/approvals", STRANGER);
	json_body(&t, "{}", 2);
	refused(a, &t, 401, "maps to no principal");
	/* A principal bound by certificate hash, whatever its CN. */
	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests/" ID "/cancel", AUDIT);
	json_body(&t, "{\"reason\":\"r\"}", 14);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.principal, "audit");
	/* The service forbids: its fault becomes the problem. */
	stub_reset(&svc);
	svc.result = SG_ERR_FORBIDDEN;
	snprintf(svc.fault.detail, sizeof(svc.fault.detail), "'audit' may "
	    "not cancel request %s", ID);
	CHECK_EQ_INT(send_to(a, &t, &out), 403);
	CHECK(is_problem(&out, 403, "", "'audit' may not cancel request"));
	CHECK_STR(jstr(&out, "title"), "Forbidden");
	/* Operations are for loopback only, with or without a principal. */
	for (i = 0; i < 3; i++) {
		mkreq(&t, "GET", i == 0 ? "/healthz" : i == 1 ? "/readyz" :
		    "/metrics", CI);
		t.r.loopback = 0;
		refused(a, &t, 403, "only from loopback");
	}
	/* The log needs nobody. */
	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/log/entries/0", STRANGER);
	t.r.loopback = 0;
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_plain_http(void)
{
	struct sg_api *a = new_api(1, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/keys", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	/* No principal: the answer says so instead of naming one. */
	CHECK(json_is_null(json_object_get(out.doc, "principal")));
	CHECK(json_is_array(json_object_get(out.doc, "keys")));
	mkreq(&t, "GET", "/v1/nothing", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 404);
	mkreq(&t, "POST", "/v1/requests", NOBODY);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	refused(a, &t, 401, "client certificate");
	tresp_free(&out);
	sg_api_free(a);
}

/* ---- service answers become statuses ------------------------------------- */

static void
test_service_errors(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	svc.result = SG_ERR_UNAVAILABLE;
	svc.fault.recorded = 1;
	snprintf(svc.fault.detail, sizeof(svc.fault.detail), "no signed "
	    "checkpoint covers it yet");
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	CHECK_EQ_INT(send_to(a, &t, &out), 503);
	CHECK(is_problem(&out, 503, "", "no signed checkpoint"));
	CHECK(json_is_true(json_object_get(out.doc, "recorded")));
	CHECK_EQ_INT(out.r.retry_after, 5);
	CHECK_STR(out.r.location, "");

	stub_reset(&svc);
	svc.result = SG_ERR_NOT_FOUND;
	snprintf(svc.fault.field, sizeof(svc.fault.field), "key");
	snprintf(svc.fault.detail, sizeof(svc.fault.detail), "key: no key "
	    "'x'");
	CHECK_EQ_INT(send_to(a, &t, &out), 404);
	CHECK(is_problem(&out, 404, "key", "key: no key 'x'"));

	stub_reset(&svc);
	svc.result = SG_ERR_RATE_LIMITED;
	CHECK_EQ_INT(send_to(a, &t, &out), 429);
	CHECK(is_problem(&out, 429, "", "rate limit"));

	stub_reset(&svc);
	svc.result = SG_ERR_VERIFY;
	mkreq(&t, "POST", "/v1/requests/" ID "/approvals", CI);
	json_body(&t, "{}", 2);
	CHECK_EQ_INT(send_to(a, &t, &out), 422);
	CHECK(is_problem(&out, 422, "", NULL));

	stub_reset(&svc);
	svc.result = SG_ERR_CONFLICT;
	mkreq(&t, "POST", "/v1/requests/" ID "/cancel", CI);
	json_body(&t, "{\"reason\":\"r\"}", 14);
	CHECK_EQ_INT(send_to(a, &t, &out), 409);

	stub_reset(&svc);
	svc.result = SG_ERR_NOT_FOUND;
	mkreq(&t, "GET", "/v1/requests/" ID, CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 404);
	CHECK(is_problem(&out, 404, "", "no request with id '" ID "'"));
	svc.result = SG_ERR_IO;
	CHECK_EQ_INT(send_to(a, &t, &out), 503);
	CHECK(is_problem(&out, 503, "", "the request store cannot be read"));
	CHECK_EQ_INT(out.r.retry_after, 5);

	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/requests/" ID "/signature", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 409);
	CHECK(is_problem(&out, 409, "", "request " ID " is pending, not "
	    "signed"));

	stub_reset(&svc);
	svc.result = SG_ERR_IO;
	mkreq(&t, "GET", "/v1/requests", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 503);

	stub_reset(&svc);
	svc.result = SG_ERR_NOT_FOUND;
	mkreq(&t, "GET", "/v1/log/entries/5", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 404);
	CHECK(is_problem(&out, 404, "", "no entry 5 under the latest "
	    "checkpoint"));
	svc.result = SG_ERR_IO;
	CHECK_EQ_INT(send_to(a, &t, &out), 503);

	stub_reset(&svc);
	svc.result = SG_ERR_INVALID;
	mkreq(&t, "GET", "/v1/log/proof/inclusion?index=8&size=8", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 400);
	CHECK(is_problem(&out, 400, "size", "index must be below size"));
	mkreq(&t, "GET", "/v1/log/proof/consistency?old=9&new=8", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 400);
	CHECK(is_problem(&out, 400, "new", "need 0 < old <= new"));
	mkreq(&t, "GET", "/v1/log/checkpoint", NOBODY);
	svc.result = SG_ERR_UNAVAILABLE;
	CHECK_EQ_INT(send_to(a, &t, &out), 503);
	CHECK(is_problem(&out, 503, "", "the log cannot be read"));
	tresp_free(&out);
	sg_api_free(a);
}

/* ---- query strings and headers ------------------------------------------- */

static void
test_query_strings(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	mkreq(&t, "GET", "/v1/requests?state=bogus", CI);
	refused_field(a, &t, 400, "state", "state: must be pending, signed");
	mkreq(&t, "GET", "/v1/requests?state=", CI);
	refused_field(a, &t, 400, "state", "state:");
	/* The whole spelling of a state, nothing near it. */
	mkreq(&t, "GET", "/v1/requests?state=Pending", CI);
	refused_field(a, &t, 400, "state", "state:");
	mkreq(&t, "GET", "/v1/requests?state=pendin", CI);
	refused_field(a, &t, 400, "state", "state:");
	mkreq(&t, "GET", "/v1/requests?state=cancelledx", CI);
	refused_field(a, &t, 400, "state", "state:");
	{
		enum sg_req_state st;
		for (st = SG_REQ_STATE_FIRST; st <= SG_REQ_STATE_LAST; st++) {
			char path[64];
			snprintf(path, sizeof(path), "/v1/requests?state=%s",
			    sg_req_state_str(st));
			stub_reset(&svc);
			mkreq(&t, "GET", path, CI);
			CHECK_EQ_INT(send_to(a, &t, &out), 200);
			CHECK_STR(svc.state_arg, sg_req_state_str(st));
			tresp_free(&out);
		}
	}
	mkreq(&t, "GET", "/v1/requests?key=a/b", CI);
	refused_field(a, &t, 400, "key", "key: must be a key name");
	mkreq(&t, "GET", "/v1/requests?limit=0", CI);
	refused_field(a, &t, 400, "limit", "limit: must be 1 to 200");
	mkreq(&t, "GET", "/v1/requests?limit=201", CI);
	refused_field(a, &t, 400, "limit", "limit:");
	mkreq(&t, "GET", "/v1/requests?limit=1e2", CI);
	refused_field(a, &t, 400, "limit", "limit:");
	mkreq(&t, "GET", "/v1/requests?cursor=0", CI);
	refused_field(a, &t, 400, "cursor", "cursor: not a cursor");
	mkreq(&t, "GET", "/v1/requests?cursor=99999999999999999999999", CI);
	refused_field(a, &t, 400, "cursor", "cursor:");
	mkreq(&t, "GET", "/v1/requests/" ID "?wait=61", CI);
	refused_field(a, &t, 400, "wait", "wait: must be 0 to 60 seconds");
	mkreq(&t, "GET", "/v1/requests/" ID "?wait=-1", CI);
	refused_field(a, &t, 400, "wait", "wait:");
	mkreq(&t, "GET", "/v1/log/proof/inclusion?index=1", NOBODY);
	refused_field(a, &t, 400, "size", "size: must be a whole number "
	    "from 1");
	mkreq(&t, "GET", "/v1/log/proof/inclusion?index=x&size=2", NOBODY);
	refused_field(a, &t, 400, "index", "index: must be a whole number "
	    "from 0");
	mkreq(&t, "GET", "/v1/log/proof/consistency?old=0&new=2", NOBODY);
	refused_field(a, &t, 400, "old", "old: must be a whole number from 1");

	/* Names in any case; the first of a name counts; a name without
	 * a value is no value. */
	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/requests?STATE=failed&state=bogus&Limit=3",
	    CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.state_arg, "failed");
	CHECK_EQ_INT(svc.limit, 3);
	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/requests?state&state=bogus", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.state_arg, "");
	/* Unknown arguments are ignored. */
	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/keys?x=1&&=2", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_long_poll(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	stub_clock_ms = 5000;
	mkreq(&t, "GET", "/v1/requests/" ID "?wait=7", CI);
	send_to(a, &t, &out);
	CHECK_STR(out.r.wait_id, ID);
	CHECK_EQ_INT(out.r.wait_deadline_ms, 12000);
	CHECK(out.r.body == NULL);
	/* Called again once it waited: the answer. */
	t.r.resumed = 1;
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(out.r.wait_id, "");
	/* Nothing to wait for once it is final. */
	t.r.resumed = 0;
	svc.state = SG_REQ_REJECTED;
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(out.r.wait_id, "");
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_idempotency_key(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	uint8_t h[32];
	char hex[SG_SHA256_HEX_SIZE], long_key[200];

	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	add_header(&t, "idempotency-key", "retry-1");
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_EQ_INT(svc.nr_has_idem, 1);
	CHECK_STR(svc.nr_idem, "retry-1");
	sg_sha256(GOOD_BODY, strlen(GOOD_BODY), h);
	sg_hex_encode(h, sizeof(h), hex);
	CHECK_STR(svc.nr_body_sha, hex);

	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	add_header(&t, "Idempotency-Key", "");
	refused_field(a, &t, 400, "Idempotency-Key", "Idempotency-Key: "
	    "must be 1-128 printable");
	t.headers[1].value = "a\tb";
	refused_field(a, &t, 400, "Idempotency-Key", "Idempotency-Key:");
	memset(long_key, 'k', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	t.headers[1].value = long_key;
	refused_field(a, &t, 400, "Idempotency-Key", "Idempotency-Key:");
	long_key[128] = '\0';
	stub_reset(&svc);
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_EQ_INT(strlen(svc.nr_idem), 128);
	tresp_free(&out);
	sg_api_free(a);
}

/* ---- rate limits --------------------------------------------------------- */

static void
test_rate_limits(void)
{
	struct sg_api *a = new_api(0, 1, 2);
	struct treq t, other;
	struct tresp out = { 0 };

	stub_reset(&svc);
	stub_clock_ms = 100000;
	mkreq(&t, "GET", "/v1/keys", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_EQ_INT(send_to(a, &t, &out), 429);
	CHECK(is_problem(&out, 429, "", "'ci' is over its rate limit of 1 "
	    "requests per second"));
	CHECK_EQ_INT(out.r.retry_after, 2);
	/* Another principal has its own bucket; the log is not counted. */
	mkreq(&other, "GET", "/v1/keys", AUDIT);
	CHECK_EQ_INT(send_to(a, &other, &out), 200);
	mkreq(&other, "GET", "/v1/log/checkpoint", CI);
	CHECK_EQ_INT(send_to(a, &other, &out), 200);
	stub_clock_ms += 1000;
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_EQ_INT(send_to(a, &t, &out), 429);

	/* One budget for everyone without a certificate, on every path. */
	sg_api_set_anonymous_rate(a, 1, 1);
	mkreq(&t, "GET", "/v1/log/checkpoint", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	mkreq(&t, "GET", "/nothing", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 429);
	CHECK(is_problem(&out, 429, "", "requests without a client "
	    "certificate are over their rate limit of 1 per second"));
	CHECK_EQ_INT(out.r.retry_after, 2);
	mkreq(&t, "GET", "/v1/log/checkpoint", STRANGER);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	stub_clock_ms += 1000;
	mkreq(&t, "GET", "/v1/log/checkpoint", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	tresp_free(&out);
	sg_api_free(a);
}

/* ---- metrics ------------------------------------------------------------- */

static int
has_line(const struct tresp *out, const char *line)
{
	const char *p = out->r.body, *end = p + out->r.body_len;
	size_t n = strlen(line);

	while (p != NULL && p < end) {
		if ((size_t)(end - p) > n && memcmp(p, line, n) == 0 &&
		    p[n] == '\n')
			return 1;
		if ((p = memchr(p, '\n', (size_t)(end - p))) != NULL)
			p++;
	}
	fprintf(stderr, "  no line '%s'\n", line);
	return 0;
}

#define REQS "signgate_http_requests_total{endpoint=\""

static void
test_metrics(void)
{
	struct sg_api *a = new_api(0, 0, 0), *b = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	send_to(a, &t, &out);
	send_to(a, &t, &out);
	mkreq(&t, "PUT", "/v1/requests", CI);
	send_to(a, &t, &out);
	mkreq(&t, "GET", "/v1/requests/" ID "/zzz", CI);
	send_to(a, &t, &out);
	mkreq(&t, "GET", "/v1/requests/xyz", CI);
	send_to(a, &t, &out);
	mkreq(&t, "GET", "/v1/log/nothing", NOBODY);
	send_to(a, &t, &out);
	mkreq(&t, "POST", "/v1/requests/" ID "/cancel", CI);
	send_to(a, &t, &out);
	mkreq(&t, "GET", "/v1/requests/" ID "?wait=5", CI);
	send_to(a, &t, &out);           /* waits: counted when answered */
	mkreq(&t, "GET", "/healthz", NOBODY);
	t.r.loopback = 0;
	send_to(a, &t, &out);

	mkreq(&t, "GET", "/metrics", NOBODY);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK(has_line(&out, REQS "POST /v1/requests\",status=\"201\"} 2"));
	CHECK(has_line(&out, REQS "POST /v1/requests\",status=\"405\"} 1"));
	CHECK(has_line(&out, REQS "GET /v1/requests/{id}\",status=\"404\"} "
	    "1"));
	CHECK(has_line(&out, REQS "other\",status=\"404\"} 1"));
	CHECK(has_line(&out, REQS "GET /v1/log\",status=\"404\"} 1"));
	CHECK(has_line(&out, REQS "POST /v1/requests/{id}/cancel\","
	    "status=\"415\"} 1"));
	CHECK(has_line(&out, REQS "ops\",status=\"403\"} 1"));
	CHECK(strstr(out.r.body, "GET /v1/requests/{id}\",status=\"200\"") ==
	    NULL);
	CHECK(has_line(&out, "signgate_http_connections_total{outcome="
	    "\"accepted\"} 17"));
	CHECK(has_line(&out, "signgate_signatures_total{key=\"nightly\"} 10"));
	CHECK(has_line(&out, "signgate_signatures_total{key=\"release\"} 11"));
	CHECK(has_line(&out, "signgate_decisions_total{decision=\"approve\"} "
	    "3"));
	CHECK(has_line(&out, "signgate_hsm_sign_seconds_bucket{le=\"0.0005\"} "
	    "0"));
	CHECK(has_line(&out, "signgate_checkpoint_age_seconds -1"));
	/* The first /metrics is counted after it is rendered. */
	CHECK(strstr(out.r.body, "ops\",status=\"200\"") == NULL);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK(has_line(&out, REQS "ops\",status=\"200\"} 1"));

	/* Each instance counts its own requests. */
	CHECK_EQ_INT(send_to(b, &t, &out), 200);
	CHECK(strstr(out.r.body, REQS "POST") == NULL);
	CHECK(strstr(out.r.body, "ops\",status=\"200\"") == NULL);
	tresp_free(&out);
	sg_api_free(a);
	sg_api_free(b);
}

/* ---- releases and grants ------------------------------------------------- */

#define LINE(name) "sha256:" HEX64 " raw " name
#define ITEM(name) "{\"name\":\"" name "\"," DIG "}"
#define RELEASE(items) "{\"key\":\"release\",\"artifacts\":[" items "]}"

static void
test_release_bad_bodies(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	const char *rl = "/v1/releases";

	bad_body(a, rl, "{\"artifacts\":[" ITEM("a") "]}", "key",
	    "key: must be a key name");
	bad_body(a, rl, "{\"key\":\"release\",\"artifacts\":{}}", "artifacts",
	    "must be an array");
	bad_body(a, rl, "{\"key\":\"release\"}", "artifacts",
	    "must be an array");
	bad_body(a, rl, RELEASE(""), "artifacts", "1 to 10000");
	bad_body(a, rl, RELEASE("5"), "artifacts", "artifacts[0]: must be an "
	    "object");
	bad_body(a, rl, RELEASE(ITEM("a") "," ITEM("a b")), "artifacts[1].name",
	    "artifacts[1].name: must be 1 to 255 bytes");
	bad_body(a, rl, RELEASE("{" DIG "}"), "artifacts[0].name",
	    "artifacts[0].name");
	bad_body(a, rl, RELEASE("{\"name\":\"a\",\"version\":\"1 0\"," DIG "}"),
	    "artifacts[0].version", "artifacts[0].version");
	bad_body(a, rl, RELEASE(ITEM("a.bin") "," ITEM("b.bin") ","
	    ITEM("a.bin")), "artifacts[2].name",
	    "artifacts[2].name: 'a.bin' is also artifacts[0]'s");
	bad_body(a, rl, RELEASE("{\"name\":\"a\",\"digest\":{\"algorithm\":"
	    "\"sha256\",\"value\":\"abc\"}}"), "artifacts[0].digest.value",
	    "artifacts[0].digest.value: must be 64 hex characters");
	bad_body(a, rl, RELEASE("{\"name\":\"a\",\"size\":1," DIG "}"),
	    "artifacts[0].size", "unknown field");
	bad_body(a, rl, "{\"key\":\"release\",\"owner\":\"x\",\"artifacts\":["
	    ITEM("a") "]}", "owner", "owner: unknown field");
	bad_body(a, rl, "{\"key\":\"release\",\"format\":\"pgp\","
	    "\"artifacts\":[" ITEM("a") "]}", "format", NULL);
	bad_body(a, rl, "{\"key\":\"release\",\"release\":{\"a b\":\"x\"},"
	    "\"artifacts\":[" ITEM("a") "]}", "release", "release: field names");
	bad_body(a, rl, "{\"key\":\"release\",\"release\":[1],"
	    "\"artifacts\":[" ITEM("a") "]}", "release", "release: must be an "
	    "object");
	sg_api_free(a);
}

/* What a good release body hands to the service: its lines, exactly. */
static void
test_release_created(void)
{
	static const char body[] = "{\"key\":\"release\",\"release\":"
	    "{\"version\":\"1.0\",\"name\":\"app\"},\"artifacts\":["
	    "{\"name\":\"a.bin\",\"version\":\"1.0\"," DIG "},"
	    ITEM("b.bin") "]}";
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	stub_reset(&svc);
	svc.kind = SG_KIND_RELEASE;
	mkreq(&t, "POST", "/v1/releases", CI);
	json_body(&t, body, strlen(body));
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_STR(svc.last, "create");
	CHECK_EQ_INT(svc.nr.kind, SG_KIND_RELEASE);
	CHECK_EQ_INT(svc.nr.nlines, 2);
	CHECK_STR(svc.nr_lines[0], LINE("a.bin 1.0"));
	CHECK_STR(svc.nr_lines[1], LINE("b.bin"));
	CHECK_STR(svc.nr_key, "release");
	CHECK_STR(svc.nr_format, "raw");
	CHECK_STR(svc.nr_requester, "ci");
	CHECK_STR(svc.nr_artifact, "{\"name\":\"app\",\"version\":\"1.0\"}");
	CHECK_STR(jstr(&out, "kind"), "release");
	CHECK_STR(out.r.location, "/v1/requests/" ID);
	/* Without "release": "{}". */
	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/releases", CI);
	json_body(&t, RELEASE(ITEM("c")), strlen(RELEASE(ITEM("c"))));
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_EQ_INT(svc.nr.nlines, 1);
	CHECK_STR(svc.nr_lines[0], LINE("c"));
	CHECK_STR(svc.nr_artifact, "{}");
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_grant_bodies(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	const char *gr = "/v1/grants";
	struct treq t;
	struct tresp out = { 0 };
	static const char good[] = "{\"key\":\"release\",\"count\":5,"
	    "\"lifetime\":3600,\"artifact\":\"app-*.bin\"}";

	bad_body(a, gr, "{\"key\":\"release\",\"count\":0,\"lifetime\":60}",
	    "count", "count: must be a whole number from 1 to 100000");
	bad_body(a, gr, "{\"key\":\"release\",\"count\":100001,"
	    "\"lifetime\":60}", "count", NULL);
	bad_body(a, gr, "{\"key\":\"release\",\"count\":\"5\","
	    "\"lifetime\":60}", "count", NULL);
	bad_body(a, gr, "{\"key\":\"release\",\"count\":5}", "lifetime",
	    "lifetime: must be");
	bad_body(a, gr, "{\"key\":\"release\",\"count\":5,\"lifetime\":60,"
	    "\"artifact\":\"a b\"}", "artifact", "name pattern");
	bad_body(a, gr, "{\"key\":\"release\",\"count\":5,\"lifetime\":60,"
	    "\"artifact\":\"\"}", "artifact", NULL);
	bad_body(a, gr, "{\"key\":\"release\",\"count\":5,\"lifetime\":60,"
	    "\"color\":\"red\"}", "color", "color: unknown field");
	bad_body(a, gr, "{\"count\":5,\"lifetime\":60}", "key", NULL);

	stub_reset(&svc);
	svc.kind = SG_KIND_GRANT;
	mkreq(&t, "POST", gr, CI);
	json_body(&t, good, strlen(good));
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_STR(svc.last, "create");
	CHECK_EQ_INT(svc.nr.kind, SG_KIND_GRANT);
	CHECK_EQ_INT(svc.nr.count, 5);
	CHECK_EQ_INT(svc.nr.lifetime, 3600);
	CHECK_STR(svc.nr_pattern, "app-*.bin");
	CHECK_STR(svc.nr_key, "release");
	CHECK_STR(svc.nr_format, "raw");
	CHECK_STR(svc.nr_artifact, "{}");
	CHECK_STR(jstr(&out, "kind"), "grant");
	/* No pattern: any name. */
	stub_reset(&svc);
	mkreq(&t, "POST", gr, CI);
	json_body(&t, "{\"key\":\"release\",\"count\":1,\"lifetime\":5}", 40);
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_STR(svc.nr_pattern, "*");
	tresp_free(&out);
	sg_api_free(a);
}

/* A request under a grant: the grant's id checked; key optional. */
static void
test_request_under_grant(void)
{
	static const char no_key[] = "{\"grant\":\"" ID "\"," DIG
	    ",\"artifact\":{\"name\":\"app-1.bin\"}}";
	static const char with_key[] = "{\"grant\":\"" ID "\",\"key\":"
	    "\"release\"," DIG ",\"artifact\":{\"name\":\"a\"}}";
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };

	bad_body(a, "/v1/requests", "{\"grant\":\"xyz\"," DIG ",\"artifact\":"
	    "{\"name\":\"a\"}}", "grant", "grant: must be a grant id");
	bad_body(a, "/v1/requests", "{\"grant\":5," DIG ",\"artifact\":"
	    "{\"name\":\"a\"}}", "grant", NULL);
	bad_body(a, "/v1/requests", "{\"grant\":\"" ID "\",\"key\":5," DIG
	    ",\"artifact\":{\"name\":\"a\"}}", "key", NULL);
	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, no_key, strlen(no_key));
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_EQ_INT(svc.nr_has_grant, 1);
	CHECK_STR(svc.nr_grant, ID);
	CHECK_STR(svc.nr_key, "");
	CHECK_EQ_INT(svc.nr.format, 0);
	CHECK_EQ_INT(svc.nr.digest_len, 32);
	CHECK_STR(svc.nr_artifact, "{\"name\":\"app-1.bin\"}");
	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, with_key, strlen(with_key));
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_STR(svc.nr_key, "release");
	CHECK_STR(svc.nr_grant, ID);
	/* Without a grant nothing says one. */
	stub_reset(&svc);
	mkreq(&t, "POST", "/v1/requests", CI);
	json_body(&t, GOOD_BODY, strlen(GOOD_BODY));
	CHECK_EQ_INT(send_to(a, &t, &out), 201);
	CHECK_EQ_INT(svc.nr_has_grant, 0);
	CHECK_EQ_INT(svc.nr.format, SG_FORMAT_RAW);
	tresp_free(&out);
	sg_api_free(a);
}

static void
test_revoke_reason(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	const char *rv = "/v1/grants/" ID "/revoke";
	struct treq t;
	struct tresp out = { 0 };

	bad_body(a, rv, "{}", "reason", "reason: is required");
	bad_body(a, rv, "{\"reason\":5}", "reason", NULL);
	bad_body(a, rv, "{\"reason\":\"a\\u0007b\"}", "reason",
	    "reason: U+0007");
	bad_body(a, rv, "{\"reason\":\"x\",\"by\":\"bob\"}", "by",
	    "by: unknown field");
	mkreq(&t, "POST", "/v1/grants/xyz/revoke", CI);
	json_body(&t, "{\"reason\":\"x\"}", 14);
	refused(a, &t, 404, NULL);
	stub_reset(&svc);
	svc.kind = SG_KIND_GRANT;
	svc.state = SG_REQ_REVOKED;
	mkreq(&t, "POST", rv, CI);
	json_body(&t, "{\"reason\":\"key leaked\"}", 23);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(svc.last, "revoke");
	CHECK_STR(svc.id, ID);
	CHECK_STR(svc.principal, "ci");
	CHECK_STR(svc.text, "key leaked");
	CHECK_STR(jstr(&out, "state"), "revoked");
	/* The service's refusal reaches the client. */
	stub_reset(&svc);
	svc.result = SG_ERR_CONFLICT;
	snprintf(svc.fault.detail, sizeof(svc.fault.detail), "grant %s is "
	    "revoked: only an active grant can be revoked", ID);
	mkreq(&t, "POST", rv, CI);
	json_body(&t, "{\"reason\":\"again\"}", 18);
	CHECK_EQ_INT(send_to(a, &t, &out), 409);
	CHECK(is_problem(&out, 409, NULL, "only an active grant"));
	tresp_free(&out);
	sg_api_free(a);
}

static const char *const stub_lines[] = {
	LINE("a.bin 1.0"),
	LINE("b.bin"),
	LINE("c.bin"),
};

static void
test_manifest(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	static const char want[] = LINE("a.bin 1.0") "\n" LINE("b.bin") "\n"
	    LINE("c.bin") "\n";

	stub_reset(&svc);
	svc.kind = SG_KIND_RELEASE;
	svc.items = stub_lines;
	svc.nitems = 3;
	mkreq(&t, "GET", "/v1/releases/" ID "/manifest", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_STR(out.r.content_type, "text/plain; charset=us-ascii");
	CHECK_EQ_INT(out.r.body_len, strlen(want));
	CHECK(out.r.body != NULL && out.r.body_len == strlen(want) &&
	    memcmp(out.r.body, want, out.r.body_len) == 0);
	CHECK_STR(svc.id, ID);
	/* Not a release: 404. */
	stub_reset(&svc);
	mkreq(&t, "GET", "/v1/releases/" ID "/manifest", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 404);
	CHECK(is_problem(&out, 404, NULL, "not a release"));
	tresp_free(&out);
	sg_api_free(a);
}

static json_t *
artifact_at(const struct tresp *out, size_t i)
{
	return json_array_get(json_object_get(out->doc, "artifacts"), i);
}

static void
test_artifacts(void)
{
	struct sg_api *a = new_api(0, 0, 0);
	struct treq t;
	struct tresp out = { 0 };
	json_t *it, *log;

	stub_reset(&svc);
	svc.kind = SG_KIND_RELEASE;
	svc.items = stub_lines;
	svc.nitems = 3;
	svc.nsigned = 1;
	mkreq(&t, "GET", "/v1/releases/" ID "/artifacts?limit=2", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_EQ_INT(svc.x, 0);
	CHECK_EQ_INT(svc.y, 2);
	CHECK_EQ_INT(json_array_size(json_object_get(out.doc, "artifacts")), 2);
	CHECK_EQ_INT(json_integer_value(json_object_get(out.doc, "next")), 2);
	it = artifact_at(&out, 0);
	CHECK_STR(json_string_value(json_object_get(it, "state")), "signed");
	CHECK_STR(json_string_value(json_object_get(it, "version")), "1.0");
	CHECK_STR(json_string_value(json_object_get(it, "line")),
	    LINE("a.bin 1.0"));
	log = json_object_get(json_object_get(it, "signature"), "log");
	CHECK_EQ_INT(json_integer_value(json_object_get(log, "index")), 100);
	CHECK_EQ_INT(json_integer_value(json_object_get(log,
	    "approved_index")), 3);
	it = artifact_at(&out, 1);
	CHECK_STR(json_string_value(json_object_get(it, "state")), "pending");
	CHECK_STR(json_string_value(json_object_get(it, "name")), "b.bin");
	CHECK(json_object_get(it, "signature") == NULL);
	CHECK(json_object_get(it, "version") == NULL);
	CHECK_STR(svc.what, "the signature of artifact 0");
	/* A signature without its proof: 503, the service's fault if any. */
	svc.bundle_result = SG_ERR_UNAVAILABLE;
	CHECK_EQ_INT(send_to(a, &t, &out), 503);
	CHECK(is_problem(&out, 503, "", "artifact 0 or its log proof cannot "
	    "be read"));
	expect_unwitnessed(a, &t, &out);
	svc.bundle_result = 0;
	/* The last page: next is null. */
	mkreq(&t, "GET", "/v1/releases/" ID "/artifacts?after=2&limit=2", CI);
	CHECK_EQ_INT(send_to(a, &t, &out), 200);
	CHECK_EQ_INT(svc.x, 2);
	CHECK_EQ_INT(json_array_size(json_object_get(out.doc, "artifacts")), 1);
	CHECK(json_is_null(json_object_get(out.doc, "next")));
	mkreq(&t, "GET", "/v1/releases/" ID "/artifacts?limit=1001", CI);
	refused_field(a, &t, 400, "limit", NULL);
	mkreq(&t, "GET", "/v1/releases/" ID "/artifacts?limit=0", CI);
	refused_field(a, &t, 400, "limit", NULL);
	/* The one at fault is named, whichever is given too. */
	mkreq(&t, "GET", "/v1/releases/" ID "/artifacts?after=2&limit=0", CI);
	refused_field(a, &t, 400, "limit", "limit: must be 1 to 1000");
	mkreq(&t, "GET", "/v1/releases/" ID "/artifacts?after=x&limit=5", CI);
	refused_field(a, &t, 400, "after", "after: must be a position");
	tresp_free(&out);
	sg_api_free(a);
}

int
main(void)
{
	static const struct sg_test tests[] = {
		T(test_keys_and_requests),
		T(test_signatures_and_decisions),
		T(test_log_and_ops),
		T(test_policy_routes),
		T(test_wrong_methods),
		T(test_unknown_paths),
		T(test_bad_ids),
		T(test_bad_json),
		T(test_long_field_names),
		T(test_content_type),
		T(test_body_limits),
		T(test_principals),
		T(test_plain_http),
		T(test_service_errors),
		T(test_query_strings),
		T(test_long_poll),
		T(test_idempotency_key),
		T(test_rate_limits),
		T(test_metrics),
		T(test_release_bad_bodies),
		T(test_release_created),
		T(test_grant_bodies),
		T(test_request_under_grant),
		T(test_revoke_reason),
		T(test_manifest),
		T(test_artifacts),
	};
	int r;

	if (stub_init(&svc) != 0)
		return 1;
	r = sg_test_run("api", tests, sizeof(tests) / sizeof(tests[0]));
	stub_free(&svc);
	return r;
}
