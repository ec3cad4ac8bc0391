/*
 * The officers' console without a socket: the page and its headers, the
 * rules every request passes (session, Origin, Content-Type), sign-in
 * with a software security key (tests/unit/sg_fixture.c), sessions and
 * challenges under a clock the test moves, the cancel's nonce.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "sg_console.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_webauthn.h"

#include "sg_fixture.h"
#include "sg_test.h"

#define RP "localhost"
#define ORIGIN "https://localhost:8444"
#define OFFICER "dave"
#define REQ_ID "0123456789abcdef0123456789abcdef"

static const uint8_t cred_id[] = { 0x51, 0x07, 0xaa, 0x19, 0x02, 0x7e,
	0xd0, 0x33, 0x91, 0x4c, 0x10, 0x22 };

static int64_t clock_ms = 1000000;
static EVP_PKEY *key;                   /* the security key's private half */
static struct sg_webauthn_cred cred;    /* as the policy holds it */

static int64_t
test_clock(void)
{
	return clock_ms;
}

static const struct sg_webauthn_cred *
one(void *arg, const char *officer, const uint8_t *id, size_t len)
{
	(void)arg;
	if (strcmp(officer, OFFICER) != 0 || len != cred.id_len ||
	    memcmp(id, cred.id, len) != 0)
		return NULL;
	return &cred;
}

static void
all(void *arg, const char *officer, const struct sg_webauthn_cred **ret,
    size_t max, size_t *ret_n)
{
	(void)arg;
	*ret_n = 0;
	if (strcmp(officer, OFFICER) == 0 && max > 0)
		ret[(*ret_n)++] = &cred;
}

static struct sg_console *
console(void)
{
	struct sg_console_conf conf;
	struct sg_console *c = NULL;

	if (key == NULL) {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		memcpy(cred.id, cred_id, sizeof(cred_id));
		cred.id_len = sizeof(cred_id);
		snprintf(cred.rp_id, sizeof(cred.rp_id), "%s", RP);
		snprintf(cred.origin, sizeof(cred.origin), "%s", ORIGIN);
		cred.pub = sg_fx_public_only(key);
	}
	memset(&conf, 0, sizeof(conf));
	conf.rp_id = RP;
	conf.origin = ORIGIN;
	if (sg_console_new(&conf, &c) != 0)
		return NULL;
	sg_console_set_clock(c, test_clock);
	sg_console_set_creds(c, one, all, NULL);
	return c;
}

/* ---- driving the handler ------------------------------------------------- */

struct call {
	const char *method, *path, *body;
	const char *origin;             /* NULL: none */
	const char *content_type;       /* NULL: none */
	const char *cookie;             /* NULL: none */
	const char *query;              /* "name=value" or NULL */
	struct sg_http_response resp;
	json_t *j;
};

static int
run(struct sg_console *c, struct call *k)
{
	struct sg_http_param h[3], q[2];
	struct sg_http_request req;
	char qn[64], *eq;
	size_t nh = 0;

	memset(&req, 0, sizeof(req));
	free(k->resp.body);
	memset(&k->resp, 0, sizeof(k->resp));
	if (k->origin != NULL)
		h[nh++] = (struct sg_http_param){ "Origin", k->origin };
	if (k->content_type != NULL)
		h[nh++] = (struct sg_http_param){ "Content-Type",
		    k->content_type };
	if (k->cookie != NULL)
		h[nh++] = (struct sg_http_param){ "Cookie", k->cookie };
	if (k->query != NULL) {
		snprintf(qn, sizeof(qn), "%s", k->query);
		eq = strchr(qn, '=');
		*eq = '\0';
		q[0] = (struct sg_http_param){ qn, eq + 1 };
		req.query = q;
		req.nquery = 1;
	}
	req.method = k->method;
	req.path = k->path;
	req.headers = h;
	req.nheaders = nh;
	req.body = k->body != NULL ? k->body : "";
	req.body_len = strlen(req.body);
	sg_console_handle(c, &req, &k->resp);
	json_decref(k->j);
	k->j = k->resp.body != NULL ? json_loadb(k->resp.body,
	    k->resp.body_len, 0, NULL) : NULL;
	return k->resp.status;
}

static void
done(struct call *k)
{
	free(k->resp.body);
	k->resp.body = NULL;
	json_decref(k->j);
	k->j = NULL;
}

/* A POST as the page makes it. */
static int
post(struct sg_console *c, struct call *k, const char *path,
    const char *body, const char *cookie)
{
	k->method = "POST";
	k->path = path;
	k->body = body;
	k->origin = ORIGIN;
	k->content_type = "application/json";
	k->cookie = cookie;
	k->query = NULL;
	return run(c, k);
}

static int
get(struct sg_console *c, struct call *k, const char *path,
    const char *cookie)
{
	k->method = "GET";
	k->path = path;
	k->body = NULL;
	k->origin = NULL;
	k->content_type = NULL;
	k->cookie = cookie;
	k->query = NULL;
	return run(c, k);
}

/* The assertion members for a body, over challenge, made as opts say
 * (NULL: a good one). */
static char *
assertion_json(const uint8_t *challenge, size_t clen,
    const struct sg_fx_wa_opts *o, const uint8_t *id, size_t id_len)
{
	struct sg_fx_wa_opts def = { RP, ORIGIN, NULL, SG_WEBAUTHN_FLAG_UP |
	    SG_WEBAUTHN_FLAG_UV, 0, NULL };
	struct sg_fx_wa_assertion a;
	char *cid, *ad, *cd, *sig, *s = NULL;

	memset(&a, 0, sizeof(a));
	if (sg_fx_wa_sign(key, o != NULL ? o : &def, challenge, clen, &a) != 0)
		return NULL;
	cid = sg_fx_b64url(id != NULL ? id : cred_id, id != NULL ? id_len :
	    sizeof(cred_id));
	ad = sg_fx_b64url(a.authdata, a.authdata_len);
	cd = sg_fx_b64url((const uint8_t *)a.client_data, a.client_data_len);
	sig = sg_fx_b64url(a.sig, a.sig_len);
	if (cid != NULL && ad != NULL && cd != NULL && sig != NULL &&
	    asprintf(&s, "\"credential_id\":\"%s\",\"authenticator_data\":"
	    "\"%s\",\"client_data_json\":\"%s\",\"signature\":\"%s\"", cid, ad,
	    cd, sig) < 0)
		s = NULL;
	free(cid);
	free(ad);
	free(cd);
	free(sig);
	sg_fx_wa_free(&a);
	return s;
}

/* A sign-in challenge, decoded into ch; its text into text. */
static int
begin(struct sg_console *c, uint8_t ch[32], char text[64])
{
	struct call k = { 0 };
	const char *s;
	size_t n = 0;
	int ok;

	ok = post(c, &k, "/api/signin/begin", "{\"officer\":\"" OFFICER "\"}",
	    NULL) == 200 && (s = json_string_value(json_object_get(k.j,
	    "challenge"))) != NULL && strlen(s) < 64 &&
	    sg_b64url_decode(s, strlen(s), ch, 32, &n) == 0 && n == 32;
	if (ok)
		snprintf(text, 64, "%s", s);
	done(&k);
	return ok ? 0 : -1;
}

/* Signs in as OFFICER: the status, and the cookie ("NAME=TOKEN") when
 * 200. */
static int
sign_in(struct sg_console *c, const struct sg_fx_wa_opts *o, char *cookie,
    size_t cookie_len, struct sg_http_response *ret)
{
	uint8_t ch[32];
	char text[64], *a, *body = NULL, *semi;
	struct call k = { 0 };
	int status = -1;

	if (begin(c, ch, text) != 0 ||
	    (a = assertion_json(ch, sizeof(ch), o, NULL, 0)) == NULL)
		return -1;
	if (asprintf(&body, "{\"officer\":\"" OFFICER "\",\"challenge\":"
	    "\"%s\",%s}", text, a) >= 0)
		status = post(c, &k, "/api/signin", body, NULL);
	if (status == 200 && cookie != NULL) {
		snprintf(cookie, cookie_len, "%s", k.resp.set_cookie);
		if ((semi = strchr(cookie, ';')) != NULL)
			*semi = '\0';
	}
	if (ret != NULL)
		*ret = k.resp, k.resp.body = NULL;
	free(a);
	free(body);
	done(&k);
	return status;
}

/* ---- the tests ----------------------------------------------------------- */

static const struct sg_console_asset *
asset(const char *path)
{
	size_t i;

	for (i = 0; i < sg_console_nassets; i++)
		if (strcmp(sg_console_assets[i].path, path) == 0)
			return &sg_console_assets[i];
	return NULL;
}

static void
test_assets(void)
{
	const struct sg_console_asset *html = asset("/"), *js, *css;
	struct sg_console *c = console();
	struct call k = { 0 };

	js = asset("/console.js");
	css = asset("/console.css");
	CHECK(html != NULL && js != NULL && css != NULL);
	if (html == NULL || js == NULL || css == NULL)
		goto out;
	CHECK_STR(html->content_type, "text/html; charset=utf-8");
	CHECK_STR(js->content_type, "text/javascript; charset=utf-8");
	CHECK_STR(css->content_type, "text/css; charset=utf-8");
	CHECK(strlen((const char *)html->data) == html->len);
	CHECK(strstr((const char *)html->data, "<script src=\"/console.js\"") !=
	    NULL);
	CHECK(strstr((const char *)js->data, "navigator.credentials.get") !=
	    NULL);
	/* Nothing inline, nothing from elsewhere. */
	CHECK(strstr((const char *)html->data, "<script>") == NULL);
	CHECK(strstr((const char *)html->data, "<style") == NULL);
	CHECK(strstr((const char *)html->data, "style=") == NULL);
	CHECK(strstr((const char *)html->data, "http://") == NULL);
	CHECK(strstr((const char *)html->data, "https://") == NULL);
	CHECK(strstr((const char *)js->data, "http://") == NULL);
	CHECK(strstr((const char *)css->data, "url(") == NULL);
	/* Served byte for byte, / and /index.html alike. */
	CHECK_EQ_INT(get(c, &k, "/", NULL), 200);
	CHECK_STR(k.resp.content_type, "text/html; charset=utf-8");
	CHECK(k.resp.body_len == html->len &&
	    memcmp(k.resp.body, html->data, html->len) == 0);
	done(&k);
	CHECK_EQ_INT(get(c, &k, "/index.html", NULL), 200);
	done(&k);
	CHECK_EQ_INT(get(c, &k, "/console.js", NULL), 200);
	CHECK(k.resp.body_len == js->len);
	done(&k);
	CHECK_EQ_INT(get(c, &k, "/nothing.js", NULL), 404);
	done(&k);
	CHECK_EQ_INT(get(c, &k, "/api/requests/" REQ_ID "x", NULL), 404);
	done(&k);
	k.method = "DELETE";
	k.path = "/";
	CHECK_EQ_INT(run(c, &k), 405);
	done(&k);
out:
	sg_console_free(c);
}

static const char *
header(const char *name)
{
	size_t i;

	for (i = 0; sg_console_headers[i] != NULL; i += 2)
		if (strcmp(sg_console_headers[i], name) == 0)
			return sg_console_headers[i + 1];
	return NULL;
}

static void
test_headers(void)
{
	size_t i;

	CHECK_STR(header("Content-Security-Policy"), "default-src 'none'; "
	    "script-src 'self'; style-src 'self'; img-src 'self'; "
	    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
	    "frame-ancestors 'none'");
	CHECK_STR(header("Referrer-Policy"), "no-referrer");
	CHECK_STR(header("X-Frame-Options"), "DENY");
	/* nosniff and no-store: the front adds them to every answer of
	 * every front (http.c); 73-console.sh reads them on the wire. */
	CHECK(header("X-Content-Type-Options") == NULL);
	CHECK(header("Cache-Control") == NULL);
	CHECK(header("Set-Cookie") == NULL);
	/* Pairs, each value present. */
	for (i = 0; sg_console_headers[i] != NULL; i += 2)
		CHECK(sg_console_headers[i + 1] != NULL);
}

/* Every route that needs a session refuses without one (and with a
 * forged cookie). */
static void
test_no_session(void)
{
	static const char *const gets[] = { "/api/session", "/api/queue",
	    "/api/requests/" REQ_ID };
	static const char *const posts[] = { "/api/signout",
	    "/api/requests/" REQ_ID "/approvals",
	    "/api/requests/" REQ_ID "/cancel/begin",
	    "/api/requests/" REQ_ID "/cancel" };
	static const char forged[] = SG_CONSOLE_COOKIE "="
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct sg_console *c = console();
	struct call k = { 0 };
	size_t i;

	for (i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
		CHECK_EQ_INT(get(c, &k, gets[i], NULL), 401);
		CHECK_EQ_INT(get(c, &k, gets[i], forged), 401);
		CHECK_EQ_INT(get(c, &k, gets[i], "other=1"), 401);
	}
	for (i = 0; i < sizeof(posts) / sizeof(posts[0]); i++) {
		CHECK_EQ_INT(post(c, &k, posts[i], "{}", NULL), 401);
		CHECK_EQ_INT(post(c, &k, posts[i], "{}", forged), 401);
	}
	done(&k);
	sg_console_free(c);
}

/* A change needs the configured Origin and application/json. */
static void
test_origin_content_type(void)
{
	struct sg_console *c = console();
	struct call k = { 0 };
	const char *body = "{\"officer\":\"" OFFICER "\"}";

	k.method = "POST";
	k.path = "/api/signin/begin";
	k.body = body;
	k.content_type = "application/json";
	k.origin = NULL;
	CHECK_EQ_INT(run(c, &k), 403);
	k.origin = "https://evil.example";
	CHECK_EQ_INT(run(c, &k), 403);
	k.origin = "https://localhost:8445";
	CHECK_EQ_INT(run(c, &k), 403);
	k.origin = "null";
	CHECK_EQ_INT(run(c, &k), 403);
	k.origin = ORIGIN;
	k.content_type = "text/plain";
	CHECK_EQ_INT(run(c, &k), 415);
	k.content_type = NULL;
	CHECK_EQ_INT(run(c, &k), 415);
	k.content_type = "application/x-www-form-urlencoded";
	CHECK_EQ_INT(run(c, &k), 415);
	k.content_type = "application/json; charset=utf-8";
	CHECK_EQ_INT(run(c, &k), 200);
	k.body = "{\"officer\":\"a\",\"officer\":\"b\"}";
	CHECK_EQ_INT(run(c, &k), 400);
	k.body = "[]";
	CHECK_EQ_INT(run(c, &k), 400);
	k.body = "{\"officer\":\"" OFFICER "\",\"x\":1}";
	CHECK_EQ_INT(run(c, &k), 400);
	done(&k);
	sg_console_free(c);
}

static void
test_sign_in(void)
{
	struct sg_console *c = console();
	struct sg_http_response r;
	struct call k = { 0 };
	char cookie[256], hdr[300];

	memset(&r, 0, sizeof(r));
	CHECK_EQ_INT(sign_in(c, NULL, cookie, sizeof(cookie), &r), 200);
	/* The cookie's attributes. */
	CHECK(strncmp(r.set_cookie, "__Host-", 7) == 0);
	CHECK(strstr(r.set_cookie, "; Secure") != NULL);
	CHECK(strstr(r.set_cookie, "; HttpOnly") != NULL);
	CHECK(strstr(r.set_cookie, "; SameSite=Strict") != NULL);
	CHECK(strstr(r.set_cookie, "; Path=/") != NULL);
	CHECK(strstr(r.set_cookie, "Domain") == NULL);
	/* 256 bits: 43 base64url characters. */
	CHECK_EQ_INT((int)strlen(cookie), (int)strlen(SG_CONSOLE_COOKIE) + 1 +
	    43);
	free(r.body);
	snprintf(hdr, sizeof(hdr), "theme=dark; %s; x=y", cookie);
	CHECK_EQ_INT(get(c, &k, "/api/session", hdr), 200);
	CHECK_STR(json_string_value(json_object_get(k.j, "officer")), OFFICER);
	CHECK_EQ_INT((int)json_array_size(json_object_get(k.j,
	    "credentials")), 1);
	/* Sign-out ends it, and clears the cookie. */
	CHECK_EQ_INT(post(c, &k, "/api/signout", "{}", cookie), 200);
	CHECK(strstr(k.resp.set_cookie, "Max-Age=0") != NULL);
	CHECK_EQ_INT(get(c, &k, "/api/session", cookie), 401);
	done(&k);
	sg_console_free(c);
}

/* Assertions that must not open a session. */
static void
test_sign_in_refused(void)
{
	struct sg_fx_wa_opts o = { RP, ORIGIN, NULL, SG_WEBAUTHN_FLAG_UP |
	    SG_WEBAUTHN_FLAG_UV, 0, NULL };
	static const uint8_t other[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct sg_console *c = console();
	struct call k = { 0 };
	uint8_t ch[32];
	char text[64], *a = NULL, *body = NULL;

	o.origin = "https://localhost:9999";
	CHECK_EQ_INT(sign_in(c, &o, NULL, 0, NULL), 401);
	o.origin = ORIGIN;
	o.rp_id = "example.com";
	CHECK_EQ_INT(sign_in(c, &o, NULL, 0, NULL), 401);
	o.rp_id = RP;
	o.type = "webauthn.create";
	CHECK_EQ_INT(sign_in(c, &o, NULL, 0, NULL), 401);
	o.type = NULL;
	CHECK_EQ_INT(sign_in(c, &o, NULL, 0, NULL), 200);

	/* A credential the policy does not register for the officer. */
	CHECK(begin(c, ch, text) == 0);
	a = assertion_json(ch, sizeof(ch), NULL, other, sizeof(other));
	CHECK(a != NULL && asprintf(&body, "{\"officer\":\"" OFFICER "\","
	    "\"challenge\":\"%s\",%s}", text, a) > 0);
	CHECK_EQ_INT(post(c, &k, "/api/signin", body, NULL), 401);
	free(a);
	free(body);

	/* Another officer with this officer's key. */
	CHECK(begin(c, ch, text) == 0);
	a = assertion_json(ch, sizeof(ch), NULL, NULL, 0);
	CHECK(a != NULL && asprintf(&body, "{\"officer\":\"alice\","
	    "\"challenge\":\"%s\",%s}", text, a) > 0);
	CHECK_EQ_INT(post(c, &k, "/api/signin", body, NULL), 401);
	CHECK(k.resp.set_cookie[0] == '\0');
	free(a);
	free(body);
	done(&k);
	sg_console_free(c);
}

/* A challenge is taken at its first use, right or wrong, and expires. */
static void
test_challenge_single_use(void)
{
	struct sg_console *c = console();
	struct call k = { 0 };
	uint8_t ch[32], other[32];
	char text[64], *a, *bad, *body = NULL;

	CHECK(begin(c, ch, text) == 0);
	a = assertion_json(ch, sizeof(ch), NULL, NULL, 0);
	CHECK(a != NULL && asprintf(&body, "{\"officer\":\"" OFFICER "\","
	    "\"challenge\":\"%s\",%s}", text, a) > 0);
	CHECK_EQ_INT(post(c, &k, "/api/signin", body, NULL), 200);
	CHECK_EQ_INT(post(c, &k, "/api/signin", body, NULL), 401);
	free(body);
	free(a);

	/* A wrong assertion spends the challenge too. */
	CHECK(begin(c, ch, text) == 0);
	memset(other, 7, sizeof(other));
	bad = assertion_json(other, sizeof(other), NULL, NULL, 0);
	a = assertion_json(ch, sizeof(ch), NULL, NULL, 0);
	CHECK(asprintf(&body, "{\"officer\":\"" OFFICER "\",\"challenge\":"
	    "\"%s\",%s}", text, bad) > 0);
	CHECK_EQ_INT(post(c, &k, "/api/signin", body, NULL), 401);
	free(body);
	CHECK(asprintf(&body, "{\"officer\":\"" OFFICER "\",\"challenge\":"
	    "\"%s\",%s}", text, a) > 0);
	CHECK_EQ_INT(post(c, &k, "/api/signin", body, NULL), 401);
	free(body);
	free(bad);
	free(a);

	/* Two minutes. */
	CHECK(begin(c, ch, text) == 0);
	a = assertion_json(ch, sizeof(ch), NULL, NULL, 0);
	CHECK(asprintf(&body, "{\"officer\":\"" OFFICER "\",\"challenge\":"
	    "\"%s\",%s}", text, a) > 0);
	clock_ms += SG_CONSOLE_CHALLENGE_MS;
	CHECK_EQ_INT(post(c, &k, "/api/signin", body, NULL), 401);
	free(body);
	free(a);
	done(&k);
	sg_console_free(c);
}

static void
test_session_expiry(void)
{
	struct sg_console *c = console();
	struct call k = { 0 };
	char cookie[256];
	int64_t start;
	int i;

	/* Idle: 30 minutes without a request. */
	CHECK_EQ_INT(sign_in(c, NULL, cookie, sizeof(cookie), NULL), 200);
	clock_ms += SG_CONSOLE_IDLE_MS - 1000;
	CHECK_EQ_INT(get(c, &k, "/api/session", cookie), 200);
	clock_ms += SG_CONSOLE_IDLE_MS - 1000;
	CHECK_EQ_INT(get(c, &k, "/api/session", cookie), 200);
	clock_ms += SG_CONSOLE_IDLE_MS;
	CHECK_EQ_INT(get(c, &k, "/api/session", cookie), 401);

	/* Absolute: 8 hours, however busy. */
	CHECK_EQ_INT(sign_in(c, NULL, cookie, sizeof(cookie), NULL), 200);
	start = clock_ms;
	for (i = 0; clock_ms + 20 * 60 * 1000 - start <
	    SG_CONSOLE_ABSOLUTE_MS; i++) {
		clock_ms += 20 * 60 * 1000;
		CHECK_EQ_INT(get(c, &k, "/api/session", cookie), 200);
	}
	CHECK(i >= 20);
	clock_ms = start + SG_CONSOLE_ABSOLUTE_MS;
	CHECK_EQ_INT(get(c, &k, "/api/session", cookie), 401);
	done(&k);
	sg_console_free(c);
}

/* The approval route takes one signature by the signed-in officer, made
 * with a security key; anything else never reaches the API. */
static void
test_approval_envelope(void)
{
	struct sg_console *c = console();
	struct call k = { 0 };
	char cookie[256];
	const char *path = "/api/requests/" REQ_ID "/approvals";

	CHECK_EQ_INT(sign_in(c, NULL, cookie, sizeof(cookie), NULL), 200);
	CHECK_EQ_INT(post(c, &k, path, "{\"signatures\":[]}", cookie), 400);
	CHECK_EQ_INT(post(c, &k, path, "{\"signatures\":[{\"keyid\":\"alice\","
	    "\"sig\":\"AA==\",\"webauthn\":{}}]}", cookie), 403);
	CHECK_EQ_INT(post(c, &k, path, "{\"signatures\":[{\"keyid\":\""
	    OFFICER "\",\"sig\":\"AA==\"}]}", cookie), 403);
	CHECK_EQ_INT(post(c, &k, path, "{\"signatures\":[{\"keyid\":\""
	    OFFICER "\",\"sig\":\"AA==\",\"webauthn\":{}},{\"keyid\":\""
	    OFFICER "\",\"sig\":\"AA==\",\"webauthn\":{}}]}", cookie), 400);
	/* Well formed: handed on (no API behind this console: 503). */
	CHECK_EQ_INT(post(c, &k, path, "{\"signatures\":[{\"keyid\":\""
	    OFFICER "\",\"sig\":\"AA==\",\"webauthn\":{}}]}", cookie), 503);
	done(&k);
	sg_console_free(c);
}

/*
 * A cancel's body: a fresh nonce of this session (begin_path), the cancel
 * text with `signed_reason`, an assertion over its SHA-256, and
 * `sent_reason` in the body.  NULL if any step failed.
 */
static char *
cancel_body(struct sg_console *c, struct call *k, const char *begin_path,
    const char *cookie, const char *signed_reason, const char *sent_reason)
{
	char nonce[65], *text = NULL, *a = NULL, *body = NULL;
	uint8_t digest[32];

	CHECK_EQ_INT(post(c, k, begin_path, "{}", cookie), 200);
	snprintf(nonce, sizeof(nonce), "%s", json_string_value(
	    json_object_get(k->j, "nonce")) ? json_string_value(
	    json_object_get(k->j, "nonce")) : "");
	CHECK_EQ_INT((int)strlen(nonce), 64);
	if (asprintf(&text, "signgate console cancel v1\nrequest %s\n"
	    "officer %s\nreason %s\nnonce %s\n", REQ_ID, OFFICER,
	    signed_reason, nonce) < 0) {
		CHECK(!"asprintf");
		return NULL;
	}
	sg_sha256(text, strlen(text), digest);
	free(text);
	if ((a = assertion_json(digest, sizeof(digest), NULL, NULL, 0)) ==
	    NULL || asprintf(&body, "{\"reason\":\"%s\",\"nonce\":\"%s\","
	    "%s}", sent_reason, nonce, a) < 0)
		body = NULL;
	free(a);
	CHECK(body != NULL);
	return body;
}

/* The cancel: a nonce of this session for this request, once, and an
 * assertion over the SHA-256 of the cancel text. */
static void
test_cancel_nonce(void)
{
	struct sg_console *c = console();
	struct call k = { 0 };
	char cookie[256], cookie2[256], *body;
	const char *path = "/api/requests/" REQ_ID "/cancel";
	const char *begin_path = "/api/requests/" REQ_ID "/cancel/begin";

	CHECK_EQ_INT(sign_in(c, NULL, cookie, sizeof(cookie), NULL), 200);
	CHECK_EQ_INT(sign_in(c, NULL, cookie2, sizeof(cookie2), NULL), 200);
	body = cancel_body(c, &k, begin_path, cookie, "wrong build",
	    "wrong build");
	/* Another session cannot use it (and that spends it). */
	CHECK_EQ_INT(post(c, &k, path, body, cookie2), 403);
	CHECK_EQ_INT(post(c, &k, path, body, cookie), 403);
	free(body);

	/* A fresh nonce; the assertion over another reason is refused. */
	body = cancel_body(c, &k, begin_path, cookie, "wrong build",
	    "other reason");
	CHECK_EQ_INT(post(c, &k, path, body, cookie), 403);
	free(body);

	/* A fresh nonce and the right text: verified, then handed to the
	 * service (none behind this console: 503); the nonce is spent. */
	body = cancel_body(c, &k, begin_path, cookie, "wrong build",
	    "wrong build");
	CHECK_EQ_INT(post(c, &k, path, body, cookie), 503);
	CHECK_EQ_INT(post(c, &k, path, body, cookie), 403);
	/* A reason of two lines could forge the text's next line. */
	CHECK_EQ_INT(post(c, &k, path, "{\"reason\":\"a\\nnonce 00\"}",
	    cookie), 400);
	free(body);
	done(&k);
	sg_console_free(c);
}

/* The anonymous budget: the page and the sign-in share it. */
static void
test_anonymous_rate(void)
{
	struct sg_console_conf conf;
	struct sg_console *c = NULL;
	struct call k = { 0 };
	int i, limited = 0;

	memset(&conf, 0, sizeof(conf));
	conf.rp_id = RP;
	conf.origin = ORIGIN;
	conf.anon_per_second = 1;
	conf.anon_burst = 3;
	CHECK_EQ_INT(sg_console_new(&conf, &c), 0);
	if (c == NULL)
		return;
	sg_console_set_clock(c, test_clock);
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(get(c, &k, "/", NULL), 200);
	limited = get(c, &k, "/console.js", NULL) == 429;
	CHECK(limited);
	CHECK(k.resp.retry_after >= 1);
	clock_ms += 1000;
	CHECK_EQ_INT(get(c, &k, "/", NULL), 200);
	done(&k);
	sg_console_free(c);
}

static void
test_cleanup(void)
{
	EVP_PKEY_free(cred.pub);
	EVP_PKEY_free(key);
	key = NULL;
}

SG_TEST_MAIN("console",
    T(test_assets),
    T(test_headers),
    T(test_no_session),
    T(test_origin_content_type),
    T(test_sign_in),
    T(test_sign_in_refused),
    T(test_challenge_single_use),
    T(test_session_expiry),
    T(test_approval_envelope),
    T(test_cancel_nonce),
    T(test_anonymous_rate),
    T(test_cleanup))
