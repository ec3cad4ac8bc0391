/*
 * Tests for the CLI's HTTP layer and the `sign` command against a scripted
 * fake server on loopback (plain HTTP, which the CLI allows to 127.0.0.1
 * only): keep-alive within a command, the response cap, statuses turned
 * into exit statuses, no redirects, timeouts, the Idempotency-Key kept
 * across retries, and `sign` writing a signature only after it verified
 * over the local digest.  Every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "sg_cli.h"
#include "sg_dsse.h"
#include "sg_manifest.h"
#include "sg_err.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define REQ_ID "00112233445566778899aabbccddeeff"
#define GRANT_ID "ffeeddccbbaa99887766554433221100"
#define MAX_SEEN 16

enum mode {
	M_KEYS,          /* GET /v1/keys -> 200 {"keys":[]} */
	M_STATUS,        /* answer every request with fake.status/fake.body */
	M_BIG,           /* 200 with a body larger than the cap */
	M_SILENT,        /* read the request, never answer */
	M_SIGN,          /* a small signgated: see handle_sign() */
	M_APPROVE,       /* the officer's side: see handle_approve() */
	M_RELEASE,       /* releases: see handle_release() */
};

#define REL_MAX 8

struct fake {
	int lfd;
	int port;
	pthread_t th;
	volatile int stop;
	enum mode mode;
	int status;
	const char *body;
	const char *extra_header;
	/* For M_SIGN. */
	int fail_posts;           /* answer the first N POSTs with 503 */
	int refuse_post;          /* answer POST with 400 */
	const char *final_state;  /* "signed", "rejected", ... */
	int polls_pending;        /* GETs that still say pending */
	int sign_other;           /* sign a digest that is not the file's */
	int wrong_digest_echo;    /* answer POST with another digest */
	/* For M_APPROVE. */
	const char *req_state;    /* NULL: pending */
	int tamper_requester;     /* request object disagrees with statement */
	int wrong_spki;           /* statement names another SPKI */
	long long expires;        /* statement expiry (unix seconds) */
	/* For M_RELEASE (and M_APPROVE of a release). */
	int release;              /* M_APPROVE: the request is a release */
	int tamper_root;          /* the statement names another root */
	int tamper_manifest;      /* the manifest served is another */
	int sign_other_pos;       /* sign another digest at pos - 1 */
	int wrong_line_pos;       /* serve another line at pos - 1 */
	int cancelled;            /* POST …/cancel seen */
	int pages;                /* GET …/artifacts seen */
	const char *grant_state;  /* NULL: active */
	int grant_forget;         /* the signed request names no grant */
	char post_body[4096];     /* the POST /v1/requests body */
	size_t nart;
	char lines[REL_MAX][600];
	char rel_root[SG_SHA256_HEX_SIZE];
	EVP_PKEY *key;
	char digest_hex[129];
	char digest_alg[8];
	/* What was seen. */
	pthread_mutex_t mu;
	int connections;
	int requests;
	int posts;
	char idem[MAX_SEEN][160];
	char paths[MAX_SEEN][300];
	char last_ctype[128];
	char last_body[4096];
};

static struct fake fk;

static int
respond(int fd, int status, const char *ctype, const char *body)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: %s"
	    "\r\nContent-Length: %zu\r\n%s\r\n", status, ctype, strlen(body),
	    fk.extra_header != NULL ? fk.extra_header : "");
	if (sg_fx_send_all(fd, head, (size_t)n) != 0)
		return -1;
	return sg_fx_send_all(fd, body, strlen(body));
}

static char *
request_json(const char *state)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s},"
	    " s:[{s:s, s:i, s:i}]}", "id", REQ_ID, "state", state,
	    "key", "nightly", "digest", "algorithm", fk.digest_alg, "value",
	    fk.wrong_digest_echo ? "00" : fk.digest_hex, "format", "raw",
	    "artifact", "name", "a.bin", "required", "group", "officers",
	    "count", 2, "missing", strcmp(state, "pending") == 0 ? 1 : 0);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return s;
}

/* A tiny stand-in for signgated's part of the `sign` flow. */
static int
handle_sign(int fd, const char *method, const char *path, const char *body)
{
	char *out = NULL, spki[SG_SHA256_HEX_SIZE], *pem, *b64;
	uint8_t dg[64], sig[256];
	size_t dlen = 0, sl = sizeof(sig);
	json_t *o;
	int r;

	if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/requests") == 0) {
		json_t *in = json_loads(body, 0, NULL);
		json_t *d = json_object_get(in, "digest");
		snprintf(fk.digest_hex, sizeof(fk.digest_hex), "%s",
		    json_string_value(json_object_get(d, "value")));
		snprintf(fk.digest_alg, sizeof(fk.digest_alg), "%s",
		    json_string_value(json_object_get(d, "algorithm")));
		json_decref(in);
		if (fk.posts <= fk.fail_posts)
			return respond(fd, 503, "application/problem+json",
			    "{\"title\":\"Service Unavailable\",\"status\":503}");
		if (fk.refuse_post)
			return respond(fd, 400, "application/problem+json",
			    "{\"title\":\"Bad Request\",\"status\":400,"
			    "\"detail\":\"no\",\"field\":\"key\"}");
		out = request_json(fk.polls_pending > 0 ? "pending" :
		    fk.final_state);
		r = respond(fd, 201, "application/json", out);
		free(out);
		return r;
	}
	if (strncmp(path, "/v1/requests/" REQ_ID "?wait=", 51) == 0) {
		out = request_json(--fk.polls_pending > 0 ? "pending" :
		    fk.final_state);
		r = respond(fd, 200, "application/json", out);
		free(out);
		return r;
	}
	if (strcmp(path, "/v1/keys") == 0) {
		sg_fx_spki_hex(fk.key, spki);
		pem = sg_fx_pubkey_pem(fk.key);
		o = json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "keys", "name",
		    "nightly", "algorithm", "ecdsa-p256", "public_key_pem", pem,
		    "spki_sha256", spki);
		free(pem);
		out = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		r = respond(fd, 200, "application/json", out);
		free(out);
		return r;
	}
	if (strcmp(path, "/v1/requests/" REQ_ID "/signature") == 0) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(fk.key, NULL);
		sg_hex_decode(fk.digest_hex, strlen(fk.digest_hex), dg,
		    sizeof(dg), &dlen);
		if (fk.sign_other)
			dg[0] ^= 1;
		EVP_PKEY_sign_init(ctx);
		EVP_PKEY_CTX_set_signature_md(ctx, EVP_get_digestbyname(
		    fk.digest_alg));
		EVP_PKEY_sign(ctx, sig, &sl, dg, dlen);
		EVP_PKEY_CTX_free(ctx);
		sg_fx_spki_hex(fk.key, spki);
		b64 = sg_b64_encode(sig, sl);
		o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:s}}",
		    "format", "raw", "algorithm", "ecdsa-p256",
		    "digest_algorithm", fk.digest_alg, "key", "nightly",
		    "spki_sha256", spki, "signature", b64, "log", "index", 3,
		    "proof", "c2sp.org/tlog-proof@v1\nindex 3\n");
		free(b64);
		out = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		r = respond(fd, 200, "application/json", out);
		free(out);
		return r;
	}
	return respond(fd, 404, "application/problem+json",
	    "{\"title\":\"Not Found\",\"status\":404}");
}

/* The release's statement over fk.lines (its root tampered on demand). */
static char *
release_statement(void)
{
	struct sg_manifest_tree t;
	struct sg_statement st;
	const char *lp[REL_MAX];
	size_t lens[REL_MAX], i, len;
	uint8_t root[32];
	char *text = NULL;

	for (i = 0; i < fk.nart; i++) {
		lp[i] = fk.lines[i];
		lens[i] = strlen(fk.lines[i]);
	}
	memset(&t, 0, sizeof(t));
	if (sg_manifest_tree_init(&t, lp, lens, fk.nart) != 0 ||
	    sg_manifest_tree_root(&t, root) != 0)
		abort();
	sg_manifest_tree_free(&t);
	memset(&st, 0, sizeof(st));
	st.kind = SG_KIND_RELEASE;
	snprintf(st.request, sizeof(st.request), REQ_ID);
	snprintf(st.key, sizeof(st.key), "nightly");
	sg_fx_spki_hex(fk.key, st.spki_sha256);
	snprintf(st.format, sizeof(st.format), "raw");
	snprintf(st.requester, sizeof(st.requester), "ci");
	snprintf(st.policy_name, sizeof(st.policy_name), "signgate-dev");
	st.policy_version = 1;
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    SG_FX_STMT_POLICY);
	st.expires = fk.expires;
	st.count = fk.nart;
	if (fk.tamper_root)
		root[0] ^= 1;
	sg_hex_encode(root, 32, st.manifest_root);
	memcpy(fk.rel_root, st.manifest_root, sizeof(fk.rel_root));
	if (sg_statement_build(&st, &text, &len) != 0)
		abort();
	return text;
}

/* The request object of the release. */
static char *
release_json(const char *state)
{
	char *stmt = release_statement(), when[32], *out;
	time_t t = (time_t)fk.expires;
	struct tm tm;
	json_t *o;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:{s:s, s:i, s:s}, s:{s:i, s:s, s:i}, s:[{s:s, s:i, s:i}], "
	    "s:[], s:s}", "id", REQ_ID, "kind", "release", "state", state,
	    "key", "nightly", "format", "raw", "requester", "ci",
	    "created_at", "2026-01-01T00:00:00Z", "expires_at", when,
	    "policy", "name", "signgate-dev", "version", 1, "sha256",
	    SG_FX_STMT_POLICY, "release", "count", (int)fk.nart,
	    "manifest_sha256", fk.rel_root, "signed",
	    strcmp(state, "signed") == 0 ? (int)fk.nart : 0,
	    "required", "group", "officers", "count", 2, "missing", 1,
	    "approvals", "statement", stmt);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(stmt);
	return out;
}

/* POST /v1/releases: the lines of what was posted, the request object. */
static int
release_create(int fd, const char *body)
{
	json_t *in = json_loads(body, 0, NULL), *a;
	char *out;
	size_t i;
	int r;

	fk.nart = 0;
	json_array_foreach(json_object_get(in, "artifacts"), i, a) {
		if (i >= REL_MAX)
			break;
		snprintf(fk.lines[i], sizeof(fk.lines[i]), "sha256:%s %s %s",
		    json_string_value(json_object_get(json_object_get(a,
		    "digest"), "value")),
		    json_string_value(json_object_get(in, "format")),
		    json_string_value(json_object_get(a, "name")));
		fk.nart = i + 1;
	}
	json_decref(in);
	out = release_json("pending");
	r = respond(fd, 201, "application/json", out);
	free(out);
	return r;
}

/* One artifact as GET …/artifacts lists it, signed with fk.key. */
static json_t *
release_artifact_json(size_t pos)
{
	uint8_t dg[32], sig[256];
	size_t dlen = 0, sl = sizeof(sig);
	char spki[SG_SHA256_HEX_SIZE], *b64, line[600];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(fk.key, NULL);
	json_t *o;

	sg_hex_decode(fk.lines[pos] + 7, 64, dg, sizeof(dg), &dlen);
	if (fk.sign_other_pos == (int)pos + 1)
		dg[0] ^= 1;
	EVP_PKEY_sign_init(ctx);
	EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
	EVP_PKEY_sign(ctx, sig, &sl, dg, 32);
	EVP_PKEY_CTX_free(ctx);
	sg_fx_spki_hex(fk.key, spki);
	b64 = sg_b64_encode(sig, sl);
	snprintf(line, sizeof(line), "%s%s", fk.lines[pos],
	    fk.wrong_line_pos == (int)pos + 1 ? "x" : "");
	o = json_pack("{s:i, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:s, "
	    "s:{s:i, s:i, s:s}}}", "position", (int)pos, "line", line,
	    "state", "signed", "signature", "format", "raw", "algorithm",
	    "ecdsa-p256", "digest_algorithm", "sha256", "key", "nightly",
	    "spki_sha256", spki, "signature", b64, "log", "index",
	    10 + (int)pos,
	    "approved_index", 9, "proof", "c2sp.org/tlog-proof@v1\nindex 9\n");
	free(b64);
	return o;
}

/* GET …/artifacts, two a page. */
static int
release_page(int fd, const char *path)
{
	const char *after = strstr(path, "after=");
	size_t start = after != NULL ? (size_t)atoi(after + 6) + 1 : 0, i;
	json_t *o, *arr = json_array();
	char *out;
	int r;

	fk.pages++;
	for (i = start; i < fk.nart && i < start + 2; i++)
		json_array_append_new(arr, release_artifact_json(i));
	o = json_pack("{s:o, s:o}", "artifacts", arr, "next", i < fk.nart ?
	    json_integer((json_int_t)i - 1) : json_null());
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	r = respond(fd, 200, "application/json", out);
	free(out);
	return r;
}

/* The manifest as served (another one on demand). */
static int
release_manifest(int fd)
{
	char text[REL_MAX * 601 + 1] = "";
	size_t i;

	for (i = 0; i < fk.nart; i++) {
		strcat(text, fk.lines[i]);
		if (fk.tamper_manifest && i == 0)
			text[strlen(text) - 1] ^= 1;
		strcat(text, "\n");
	}
	return respond(fd, 200, "text/plain; charset=us-ascii", text);
}

/* The grant as GET /v1/requests/GRANT_ID shows it: 50 signatures of
 * app-*.bin, raw, on nightly. */
static int
grant_show(int fd)
{
	struct sg_statement st;
	char *text = NULL, when[32], *out;
	time_t t = (time_t)fk.expires;
	struct tm tm;
	size_t len;
	json_t *o;
	int r;

	memset(&st, 0, sizeof(st));
	st.kind = SG_KIND_GRANT;
	snprintf(st.request, sizeof(st.request), GRANT_ID);
	snprintf(st.key, sizeof(st.key), "nightly");
	sg_fx_spki_hex(fk.key, st.spki_sha256);
	snprintf(st.format, sizeof(st.format), "raw");
	snprintf(st.requester, sizeof(st.requester), "ci");
	snprintf(st.policy_name, sizeof(st.policy_name), "signgate-dev");
	st.policy_version = 1;
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    SG_FX_STMT_POLICY);
	st.expires = fk.expires;
	st.count = 50;
	snprintf(st.pattern, sizeof(st.pattern), "app-*.bin");
	if (sg_statement_build(&st, &text, &len) != 0)
		abort();
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i, s:s},"
	    " s:{s:i, s:i, s:s, s:s}, s:s}", "id", GRANT_ID, "kind", "grant",
	    "state", fk.grant_state != NULL ? fk.grant_state : "active",
	    "key", "nightly", "format", "raw", "requester", "ci",
	    "expires_at", when, "policy", "name", "signgate-dev", "version", 1,
	    "sha256", SG_FX_STMT_POLICY, "grant", "count", 50, "used", 2,
	    "artifact", "app-*.bin", "until", when, "statement", text);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(text);
	r = respond(fd, 200, "application/json", out);
	free(out);
	return r;
}

/* POST /v1/requests under the grant: signed at once. */
static int
grant_sign(int fd, const char *body)
{
	json_t *in = json_loads(body, 0, NULL), *o;
	json_t *d = json_object_get(in, "digest");
	char *out;
	int r;

	snprintf(fk.post_body, sizeof(fk.post_body), "%s", body);
	snprintf(fk.digest_hex, sizeof(fk.digest_hex), "%s",
	    json_string_value(json_object_get(d, "value")));
	snprintf(fk.digest_alg, sizeof(fk.digest_alg), "%s",
	    json_string_value(json_object_get(d, "algorithm")));
	json_decref(in);
	o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s}}", "id",
	    REQ_ID, "state", "signed", "key", "nightly", "digest", "algorithm",
	    fk.digest_alg, "value", fk.digest_hex, "format", "raw", "artifact",
	    "name", "app-1.bin");
	if (!fk.grant_forget)
		json_object_set_new(o, "grant", json_pack("{s:s, s:i}", "id",
		    GRANT_ID, "sequence", 3));
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	r = respond(fd, 201, "application/json", out);
	free(out);
	return r;
}

/* A tiny stand-in for signgated's part of the release and grant flows. */
static int
handle_release(int fd, const char *method, const char *path,
    const char *body)
{
	char *out;
	int r;

	if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/releases") == 0)
		return release_create(fd, body);
	if (strcmp(path, "/v1/requests/" GRANT_ID) == 0 ||
	    strcmp(path, "/v1/grants") == 0) {
		snprintf(fk.post_body, sizeof(fk.post_body), "%s", body);
		return grant_show(fd);
	}
	if (strcmp(path, "/v1/grants/" GRANT_ID "/revoke") == 0) {
		snprintf(fk.post_body, sizeof(fk.post_body), "%s", body);
		return respond(fd, 200, "application/json",
		    "{\"id\":\"" GRANT_ID "\",\"state\":\"revoked\"}");
	}
	if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/requests") == 0)
		return grant_sign(fd, body);
	if (strcmp(method, "POST") == 0 &&
	    strcmp(path, "/v1/requests/" REQ_ID "/cancel") == 0) {
		fk.cancelled = 1;
		return respond(fd, 200, "application/json",
		    "{\"id\":\"" REQ_ID "\",\"state\":\"cancelled\"}");
	}
	if (strncmp(path, "/v1/requests/" REQ_ID "?wait=", 51) == 0) {
		out = release_json(fk.final_state);
		r = respond(fd, 200, "application/json", out);
		free(out);
		return r;
	}
	if (strncmp(path, "/v1/releases/" REQ_ID "/artifacts?", 56) == 0)
		return release_page(fd, path);
	if (strcmp(path, "/v1/releases/" REQ_ID "/manifest") == 0)
		return release_manifest(fd);
	return handle_sign(fd, method, path, body);
}

static void
fake_statement(char *out, size_t cap)
{
	char spki[SG_SHA256_HEX_SIZE];

	sg_fx_spki_hex(fk.key, spki);
	if (fk.wrong_spki)
		spki[0] = spki[0] == 'a' ? 'b' : 'a';
	snprintf(out, cap, "signgate approval v1\nrequest %s\n"
	    "key nightly sha256:%s\nartifact sha256:%s\nformat raw\n"
	    "requester ci\npolicy signgate-dev@1 sha256:%s\nexpires %lld\n",
	    REQ_ID, spki, SG_FX_STMT_DIGEST, SG_FX_STMT_POLICY, fk.expires);
}

/* The officer's view of a signgated: one request, the keys, approvals. */
static int
handle_approve(int fd, const char *method, const char *path)
{
	char stmt[1024], when[32], *out;
	time_t t = (time_t)fk.expires;
	struct tm tm;
	json_t *o;
	int r;

	if (strcmp(path, "/v1/keys") == 0)
		return handle_sign(fd, method, path, "");
	if (fk.release) {
		if (strcmp(path, "/v1/requests/" REQ_ID) == 0) {
			out = release_json("pending");
			r = respond(fd, 200, "application/json", out);
			free(out);
			return r;
		}
		if (strcmp(path, "/v1/releases/" REQ_ID "/manifest") == 0)
			return release_manifest(fd);
	}
	if (strcmp(path, "/v1/requests/" REQ_ID) != 0 &&
	    strcmp(path, "/v1/requests/" REQ_ID "/approvals") != 0)
		return respond(fd, 404, "application/problem+json",
		    "{\"title\":\"Not Found\",\"status\":404}");
	fake_statement(stmt, sizeof(stmt));
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s}, s:s,"
	    " s:s, s:s, s:{s:s, s:i, s:s}, s:[{s:s, s:i, s:i}], s:[], s:s}",
	    "id", REQ_ID, "state", fk.req_state ? fk.req_state : "pending",
	    "key", "nightly", "digest", "algorithm", "sha256", "value",
	    SG_FX_STMT_DIGEST,
	    "format", "raw", "artifact", "name", "a.bin",
	    "requester", fk.tamper_requester ? "mallory" : "ci",
	    "created_at", "2026-01-01T00:00:00Z", "expires_at", when,
	    "policy", "name", "signgate-dev", "version", 1, "sha256",
	    SG_FX_STMT_POLICY,
	    "required", "group", "officers", "count", 2, "missing", 1,
	    "approvals", "statement", stmt);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	r = respond(fd, 200, "application/json", out);
	free(out);
	return r;
}

static int
serve_big(int fd)
{
	static char chunk[65536];
	char head[256];
	size_t sent = 0, total = SG_CLI_RESPONSE_MAX + 1024 * 1024;
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n", total);
	if (sg_fx_send_all(fd, head, (size_t)n) != 0)
		return -1;
	memset(chunk, ' ', sizeof(chunk));
	while (sent < total && !fk.stop) {
		if (sg_fx_send_all(fd, chunk, sizeof(chunk)) != 0)
			return -1;          /* the client gave up: expected */
		sent += sizeof(chunk);
	}
	return -1;
}

static void
header_value(const char *head, const char *name, char *out, size_t cap)
{
	const char *p = strcasestr(head, name), *e;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += strlen(name);
	e = strstr(p, "\r\n");
	snprintf(out, cap, "%.*s", (int)(e != NULL ? e - p : 0), p);
}

static void
serve_connection(int fd)
{
	static char buf[65536];
	char method[16], path[256];
	size_t head, len;
	int r;

	while (!fk.stop && sg_fx_http_read(fd, buf, sizeof(buf), &head, &len,
	    NULL, 5000) == 1) {
		if (sscanf(buf, "%15s %255s", method, path) != 2)
			return;
		pthread_mutex_lock(&fk.mu);
		if (fk.requests < MAX_SEEN) {
			header_value(buf, "\r\nIdempotency-Key: ",
			    fk.idem[fk.requests], sizeof(fk.idem[0]));
			snprintf(fk.paths[fk.requests], sizeof(fk.paths[0]),
			    "%s %s", method, path);
		}
		fk.requests++;
		if (strcmp(method, "POST") == 0)
			fk.posts++;
		header_value(buf, "\r\nContent-Type: ", fk.last_ctype,
		    sizeof(fk.last_ctype));
		snprintf(fk.last_body, sizeof(fk.last_body), "%.*s",
		    (int)(len - head), buf + head);
		pthread_mutex_unlock(&fk.mu);
		switch (fk.mode) {
		case M_KEYS:
			r = respond(fd, 200, "application/json",
			    "{\"keys\":[]}");
			break;
		case M_STATUS:
			r = respond(fd, fk.status, "application/json",
			    fk.body);
			break;
		case M_BIG:
			r = serve_big(fd);
			break;
		case M_SILENT:
			while (!fk.stop)
				usleep(10000);
			r = -1;
			break;
		case M_APPROVE:
			r = handle_approve(fd, method, path);
			break;
		case M_RELEASE:
			buf[len] = '\0';
			r = handle_release(fd, method, path, buf + head);
			break;
		case M_SIGN:
		default:
			buf[len] = '\0';
			r = handle_sign(fd, method, path, buf + head);
			break;
		}
		if (r != 0)
			return;
	}
}

static void *
server(void *arg)
{
	struct pollfd p;
	int fd;

	while (!fk.stop) {
		p.fd = fk.lfd;
		p.events = POLLIN;
		if (poll(&p, 1, 50) <= 0)
			continue;
		if ((fd = accept(fk.lfd, NULL, NULL)) < 0)
			continue;
		pthread_mutex_lock(&fk.mu);
		fk.connections++;
		pthread_mutex_unlock(&fk.mu);
		serve_connection(fd);
		close(fd);
	}
	return NULL;
}

static void
fake_start(enum mode mode)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	memset(&fk, 0, sizeof(fk));
	pthread_mutex_init(&fk.mu, NULL);
	fk.mode = mode;
	fk.final_state = "signed";
	fk.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fk.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fk.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fk.lfd, 8) != 0 ||
	    getsockname(fk.lfd, (struct sockaddr *)&sa, &sl) != 0) {
		fprintf(stderr, "  cannot listen on loopback\n");
		sg_test_failed_checks++;
		return;
	}
	fk.port = ntohs(sa.sin_port);
	pthread_create(&fk.th, NULL, server, NULL);
}

static void
fake_stop(void)
{
	fk.stop = 1;
	pthread_join(fk.th, NULL);
	close(fk.lfd);
	pthread_mutex_destroy(&fk.mu);
}

static void
conf_for(struct sg_cli_conf *c, char *url, size_t cap)
{
	unsetenv("SIGNGATE_URL");
	unsetenv("SIGNGATE_CERT");
	unsetenv("SIGNGATE_KEY");
	unsetenv("SIGNGATE_CACERT");
	snprintf(url, cap, "http://127.0.0.1:%d", fk.port);
	memset(c, 0, sizeof(*c));
	c->url = url;
	c->timeout = 5;
}

static void
test_keepalive_and_post(void)
{
	struct sg_cli_conf c;
	struct sg_cli_http *h = NULL;
	json_t *j = NULL;
	char url[64];

	fake_start(M_KEYS);
	conf_for(&c, url, sizeof(url));
	CHECK_EQ_INT(sg_cli_connect(&c, &h), 0);
	CHECK_EQ_INT(sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &j, NULL),
	    SG_EXIT_OK);
	CHECK(json_is_array(json_object_get(j, "keys")));
	json_decref(j);
	CHECK_EQ_INT(sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &j, NULL),
	    SG_EXIT_OK);
	json_decref(j);
	CHECK_EQ_INT(sg_cli_api(h, "POST", "/v1/requests", "{\"a\":1}", "idem-7",
	    0, &j, NULL), SG_EXIT_OK);
	json_decref(j);
	/* Three exchanges, one connection. */
	CHECK_EQ_INT(fk.requests, 3);
	CHECK_EQ_INT(fk.connections, 1);
	CHECK_STR(fk.idem[0], "");
	CHECK_STR(fk.idem[2], "idem-7");
	CHECK_STR(fk.paths[2], "POST /v1/requests");
	CHECK_STR(fk.last_ctype, "application/json");
	CHECK_STR(fk.last_body, "{\"a\":1}");
	/* Only GET and POST, only absolute paths. */
	{
		struct sg_cli_http_resp resp;
		CHECK_EQ_INT(sg_cli_http_request(h, "DELETE", "/x", NULL, 0, NULL, 0,
		    &resp), SG_ERR_INVALID);
		CHECK_EQ_INT(sg_cli_http_request(h, "GET", "x", NULL, 0, NULL, 0,
		    &resp), SG_ERR_INVALID);
	}
	sg_cli_http_free(h);
	fake_stop();
}

static int
status_case(int status, const char *body, const char *extra)
{
	struct sg_cli_conf c;
	struct sg_cli_http *h = NULL;
	json_t *j = NULL;
	char url[64];
	int ex;

	fake_start(M_STATUS);
	fk.status = status;
	fk.body = body;
	fk.extra_header = extra;
	conf_for(&c, url, sizeof(url));
	if (sg_cli_connect(&c, &h) != 0) {
		fake_stop();
		return -1;
	}
	ex = sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &j, NULL);
	CHECK(ex == SG_EXIT_OK || j == NULL);
	json_decref(j);
	sg_cli_http_free(h);
	fake_stop();
	return ex;
}

static void
test_statuses(void)
{
	CHECK_EQ_INT(status_case(200, "{\"ok\":true}", NULL), SG_EXIT_OK);
	CHECK_EQ_INT(status_case(404, "{\"title\":\"Not Found\",\"status\":404,"
	    "\"detail\":\"no such \\u001b[31mthing\"}", NULL), SG_EXIT_REFUSED);
	CHECK_EQ_INT(status_case(403, "not json", NULL), SG_EXIT_REFUSED);
	CHECK_EQ_INT(status_case(503, "{\"title\":\"Service Unavailable\"}",
	    NULL), SG_EXIT_SERVER);
	CHECK_EQ_INT(status_case(500, "", NULL), SG_EXIT_SERVER);
	CHECK_EQ_INT(status_case(200, "{\"a\":1,\"a\":2}", NULL),
	    SG_EXIT_SERVER);
	CHECK_EQ_INT(status_case(200, "[1,2]", NULL), SG_EXIT_SERVER);
	CHECK_EQ_INT(status_case(200, "{\"a\":1} trailing", NULL),
	    SG_EXIT_SERVER);
	/* A redirect is not followed. */
	CHECK_EQ_INT(status_case(302, "{}", "Location: /v1/elsewhere\r\n"),
	    SG_EXIT_SERVER);
	CHECK_EQ_INT(fk.requests, 1);
}

static void
test_response_cap(void)
{
	struct sg_cli_conf c;
	struct sg_cli_http *h = NULL;
	struct sg_cli_http_resp resp;
	char url[64];
	int64_t t0;

	fake_start(M_BIG);
	conf_for(&c, url, sizeof(url));
	CHECK_EQ_INT(sg_cli_connect(&c, &h), 0);
	memset(&resp, 0, sizeof(resp));
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sg_cli_http_request(h, "GET", "/v1/keys", NULL, 0, NULL, 0,
	    &resp), SG_ERR_TOO_LARGE);
	CHECK(resp.body == NULL);
	CHECK(strstr(sg_cli_http_error(h), "larger") != NULL);
	CHECK(sg_mono_ms() - t0 < 5000);
	sg_cli_http_free(h);
	fake_stop();
}

static void
test_unreachable_and_timeout(void)
{
	struct sg_cli_conf c;
	struct sg_cli_http *h = NULL;
	struct sg_cli_http_resp resp;
	json_t *j = NULL;
	char url[64];
	int64_t t0;
	int port;

	/* A port nobody listens on any more. */
	fake_start(M_KEYS);
	port = fk.port;
	fake_stop();
	conf_for(&c, url, sizeof(url));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	CHECK_EQ_INT(sg_cli_connect(&c, &h), 0);
	CHECK_EQ_INT(sg_cli_http_request(h, "GET", "/v1/keys", NULL, 0, NULL, 0,
	    &resp), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &j, NULL),
	    SG_EXIT_SERVER);
	sg_cli_http_free(h);
	h = NULL;

	/* A server that never answers: the timeout ends it. */
	fake_start(M_SILENT);
	conf_for(&c, url, sizeof(url));
	c.timeout = 1;
	CHECK_EQ_INT(sg_cli_connect(&c, &h), 0);
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sg_cli_http_request(h, "GET", "/v1/keys", NULL, 0, NULL, 0,
	    &resp), SG_ERR_TIMEOUT);
	CHECK(sg_mono_ms() - t0 < 4000);
	sg_cli_http_free(h);
	fake_stop();
}

static char tmpdir[64];

static char *
make_file(const char *name, const char *content)
{
	if (tmpdir[0] == '\0' &&
	    sg_fx_tmpdir("cli-http", tmpdir, sizeof(tmpdir)) != 0)
		return NULL;
	return sg_fx_file(tmpdir, name, content);
}

static int
run_sign(const char *file, const char *extra1, const char *extra2)
{
	struct sg_cli_conf c;
	char url[64];
	char *argv[12];
	int argc = 0, ex;

	conf_for(&c, url, sizeof(url));
	argv[argc++] = (char *)"sign";
	argv[argc++] = (char *)"--key";
	argv[argc++] = (char *)"nightly";
	if (extra1 != NULL)
		argv[argc++] = (char *)extra1;
	if (extra2 != NULL)
		argv[argc++] = (char *)extra2;
	argv[argc++] = (char *)file;
	argv[argc] = NULL;
	ex = sg_cli_cmd_sign(argc, argv, &c);
	fflush(stdout);
	return ex;
}

static int
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void
remove_outputs(const char *file)
{
	char p[512];

	snprintf(p, sizeof(p), "%s.sig", file);
	unlink(p);
	snprintf(p, sizeof(p), "%s.sig.proof", file);
	unlink(p);
}

static void
test_sign_flow(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *file = make_file("a.bin", "artifact bytes\n"), sig[512], *data;
	char proof[512];
	size_t len = 0;
	uint8_t dg[32];
	EVP_PKEY_CTX *vctx;
	int64_t t0;
	int i;

	CHECK(file != NULL);
	snprintf(sig, sizeof(sig), "%s.sig", file);
	snprintf(proof, sizeof(proof), "%s.sig.proof", file);

	/* Signed at once: verified over the local digest, then written. */
	fake_start(M_SIGN);
	fk.key = key;
	CHECK_EQ_INT(run_sign(file, NULL, NULL), SG_EXIT_OK);
	CHECK_EQ_INT(fk.posts, 1);
	CHECK(exists(sig) && exists(proof));
	if (sg_read_file(sig, 4096, &data, &len) == 0) {
		SHA256((const unsigned char *)"artifact bytes\n", 15, dg);
		vctx = EVP_PKEY_CTX_new(key, NULL);
		CHECK(EVP_PKEY_verify_init(vctx) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(vctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_verify(vctx, (uint8_t *)data, len, dg, 32) == 1);
		EVP_PKEY_CTX_free(vctx);
		free(data);
	} else
		CHECK(!"signature file readable");
	if (sg_read_file(proof, 4096, &data, &len) == 0) {
		CHECK_STR(data, "c2sp.org/tlog-proof@v1\nindex 3\n");
		free(data);
	}
	/* The Idempotency-Key is always sent, random: 32 hex. */
	CHECK_EQ_INT(strlen(fk.idem[0]), 32);
	fake_stop();
	remove_outputs(file);

	/* A signature over something else: exit 5, nothing written. */
	fake_start(M_SIGN);
	fk.key = key;
	fk.sign_other = 1;
	CHECK_EQ_INT(run_sign(file, NULL, NULL), SG_EXIT_VERIFY);
	CHECK(!exists(sig) && !exists(proof));
	fake_stop();

	/* The server answers with a request for another digest. */
	fake_start(M_SIGN);
	fk.key = key;
	fk.wrong_digest_echo = 1;
	CHECK_EQ_INT(run_sign(file, NULL, NULL), SG_EXIT_SERVER);
	CHECK(!exists(sig));
	fake_stop();

	/* 503 twice, then created: the same Idempotency-Key every time. */
	fake_start(M_SIGN);
	fk.key = key;
	fk.fail_posts = 2;
	t0 = sg_mono_ms();
	CHECK_EQ_INT(run_sign(file, "--idempotency-key", "ci-build-42"),
	    SG_EXIT_OK);
	CHECK(sg_mono_ms() - t0 < 10000);
	CHECK_EQ_INT(fk.posts, 3);
	for (i = 0; i < 3; i++)
		CHECK_STR(fk.idem[i], "ci-build-42");
	CHECK(exists(sig));
	fake_stop();
	remove_outputs(file);

	/* A 4xx is final: no retry. */
	fake_start(M_SIGN);
	fk.key = key;
	fk.refuse_post = 1;
	CHECK_EQ_INT(run_sign(file, NULL, NULL), SG_EXIT_REFUSED);
	CHECK_EQ_INT(fk.posts, 1);
	fake_stop();

	/* Pending, long-polled, then rejected: exit 6. */
	fake_start(M_SIGN);
	fk.key = key;
	fk.polls_pending = 2;
	fk.final_state = "rejected";
	CHECK_EQ_INT(run_sign(file, NULL, NULL), SG_EXIT_NOT_SIGNED);
	CHECK(strncmp(fk.paths[1], "GET /v1/requests/" REQ_ID "?wait=", 51) ==
	    0);
	CHECK(!exists(sig));
	fake_stop();

	/* Pending with --no-wait: exit 0 at once, no poll. */
	fake_start(M_SIGN);
	fk.key = key;
	fk.polls_pending = 100;
	CHECK_EQ_INT(run_sign(file, "--no-wait", NULL), SG_EXIT_OK);
	CHECK_EQ_INT(fk.requests, 1);
	fake_stop();

	/* Pending past --wait: exit 7. */
	fake_start(M_SIGN);
	fk.key = key;
	fk.polls_pending = 100;
	t0 = sg_mono_ms();
	CHECK_EQ_INT(run_sign(file, "--wait", "1"), SG_EXIT_TIMEOUT);
	CHECK(sg_mono_ms() - t0 < 5000);
	fake_stop();

	/* A missing file is a local error; nothing is sent. */
	fake_start(M_SIGN);
	fk.key = key;
	CHECK_EQ_INT(run_sign("/nonexistent/file", NULL, NULL), SG_EXIT_LOCAL);
	CHECK_EQ_INT(fk.requests, 0);
	fake_stop();

	unlink(file);
	free(file);
	EVP_PKEY_free(key);
	CHECK_EQ_INT(rmdir(tmpdir), 0);
	tmpdir[0] = '\0';
}

static int
run_release(char **files, size_t n, const char *extra1, const char *extra2)
{
	struct sg_cli_conf c;
	char url[64];
	char *argv[16];
	int argc = 0, ex;
	size_t i;

	conf_for(&c, url, sizeof(url));
	argv[argc++] = (char *)"release";
	argv[argc++] = (char *)"create";
	argv[argc++] = (char *)"--key";
	argv[argc++] = (char *)"nightly";
	if (extra1 != NULL)
		argv[argc++] = (char *)extra1;
	if (extra2 != NULL)
		argv[argc++] = (char *)extra2;
	for (i = 0; i < n; i++)
		argv[argc++] = files[i];
	argv[argc] = NULL;
	ex = sg_cli_cmd_release(argc, argv, &c);
	fflush(stdout);
	return ex;
}

/* FILE.sig verifies over SHA-256 of content with key. */
static int
sig_ok(const char *file, const char *content, EVP_PKEY *key)
{
	char path[512], *data = NULL;
	size_t len = 0;
	uint8_t dg[32];
	EVP_PKEY_CTX *v;
	int ok;

	snprintf(path, sizeof(path), "%s.sig", file);
	if (sg_read_file(path, 4096, &data, &len) != 0)
		return 0;
	SHA256((const unsigned char *)content, strlen(content), dg);
	v = EVP_PKEY_CTX_new(key, NULL);
	ok = EVP_PKEY_verify_init(v) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1 &&
	    EVP_PKEY_verify(v, (uint8_t *)data, len, dg, 32) == 1;
	EVP_PKEY_CTX_free(v);
	free(data);
	return ok;
}

static int
sig_written(const char *file)
{
	char p[512];

	snprintf(p, sizeof(p), "%s.sig", file);
	return exists(p);
}

static void
remove_all(char **files, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		remove_outputs(files[i]);
}

static void
test_release_flow(void)
{
	static const char *const contents[3] = { "one\n", "two\n",
	    "three\n" };
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *files[3], *dup[2], *proof, sub[300];
	size_t i, len = 0;

	files[0] = make_file("app-1.bin", contents[0]);
	files[1] = make_file("app-2.bin", contents[1]);
	files[2] = make_file("app-3.bin", contents[2]);

	/* Signed: every file's signature checked and written, with its
	 * proof; the artifacts paged two at a time. */
	fake_start(M_RELEASE);
	fk.key = key;
	fk.expires = (long long)time(NULL) + 3600;
	CHECK_EQ_INT(run_release(files, 3, "--idempotency-key", "rel-1"),
	    SG_EXIT_OK);
	CHECK_STR(fk.paths[0], "POST /v1/releases");
	CHECK_STR(fk.idem[0], "rel-1");
	CHECK_EQ_INT(fk.nart, 3);
	CHECK(strstr(fk.lines[0], " raw app-1.bin") != NULL);
	CHECK(strstr(fk.lines[2], " raw app-3.bin") != NULL);
	CHECK_EQ_INT(fk.pages, 2);
	CHECK_EQ_INT(fk.cancelled, 0);
	for (i = 0; i < 3; i++)
		CHECK(sig_ok(files[i], contents[i], key));
	snprintf(sub, sizeof(sub), "%s.sig.proof", files[1]);
	if (sg_read_file(sub, 4096, &proof, &len) == 0) {
		CHECK_STR(proof, "c2sp.org/tlog-proof@v1\nindex 9\n");
		free(proof);
	} else
		CHECK(!"proof written");
	fake_stop();
	remove_all(files, 3);

	/* The statement names another manifest: refused, the release
	 * cancelled, nothing written. */
	fake_start(M_RELEASE);
	fk.key = key;
	fk.expires = (long long)time(NULL) + 3600;
	fk.tamper_root = 1;
	CHECK_EQ_INT(run_release(files, 3, NULL, NULL), SG_EXIT_SERVER);
	CHECK_EQ_INT(fk.cancelled, 1);
	CHECK_EQ_INT(fk.pages, 0);
	for (i = 0; i < 3; i++)
		CHECK(!sig_written(files[i]));
	fake_stop();

	/* The second artifact's signature is over something else: exit 5,
	 * nothing written for it. */
	fake_start(M_RELEASE);
	fk.key = key;
	fk.expires = (long long)time(NULL) + 3600;
	fk.sign_other_pos = 2;
	CHECK_EQ_INT(run_release(files, 3, NULL, NULL), SG_EXIT_VERIFY);
	CHECK(!sig_written(files[1]));
	fake_stop();
	remove_all(files, 3);

	/* The server lists another line for the first file. */
	fake_start(M_RELEASE);
	fk.key = key;
	fk.expires = (long long)time(NULL) + 3600;
	fk.wrong_line_pos = 1;
	CHECK_EQ_INT(run_release(files, 3, NULL, NULL), SG_EXIT_VERIFY);
	CHECK(!sig_written(files[0]));
	fake_stop();
	remove_all(files, 3);

	/* Rejected: exit 6, nothing written. */
	fake_start(M_RELEASE);
	fk.key = key;
	fk.expires = (long long)time(NULL) + 3600;
	fk.final_state = "rejected";
	CHECK_EQ_INT(run_release(files, 3, NULL, NULL), SG_EXIT_NOT_SIGNED);
	CHECK(!sig_written(files[0]));
	fake_stop();

	/* Two files of one name: refused before anything is sent. */
	snprintf(sub, sizeof(sub), "%s/d", tmpdir);
	CHECK_EQ_INT(mkdir(sub, 0700), 0);
	dup[0] = files[0];
	dup[1] = sg_fx_file(sub, "app-1.bin", "other\n");
	fake_start(M_RELEASE);
	fk.key = key;
	CHECK_EQ_INT(run_release(dup, 2, NULL, NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(fk.requests, 0);
	fake_stop();
	unlink(dup[1]);
	free(dup[1]);
	CHECK_EQ_INT(rmdir(sub), 0);

	for (i = 0; i < 3; i++) {
		unlink(files[i]);
		free(files[i]);
	}
	EVP_PKEY_free(key);
	CHECK_EQ_INT(rmdir(tmpdir), 0);
	tmpdir[0] = '\0';
}

static int
run_sign_grant(const char *file, const char *extra1, const char *extra2)
{
	struct sg_cli_conf c;
	char url[64];
	char *argv[12];
	int argc = 0, ex;

	conf_for(&c, url, sizeof(url));
	argv[argc++] = (char *)"sign";
	argv[argc++] = (char *)"--grant";
	argv[argc++] = (char *)GRANT_ID;
	if (extra1 != NULL)
		argv[argc++] = (char *)extra1;
	if (extra2 != NULL)
		argv[argc++] = (char *)extra2;
	argv[argc++] = (char *)file;
	argv[argc] = NULL;
	ex = sg_cli_cmd_sign(argc, argv, &c);
	fflush(stdout);
	return ex;
}

static void
test_grant_sign_flow(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *file = make_file("app-1.bin", "one\n");
	json_t *body;

#define GRANT_CASE(setup, e1, e2, want_ex, want_posts) do {		\
	fake_start(M_RELEASE);						\
	fk.key = key;							\
	fk.expires = (long long)time(NULL) + 3600;			\
	setup;								\
	CHECK_EQ_INT(run_sign_grant(file, (e1), (e2)), (want_ex));	\
	CHECK_EQ_INT(fk.posts, (want_posts));				\
	fake_stop();							\
} while (0)

	/* The grant is read first; the key and format are its own. */
	GRANT_CASE((void)0, NULL, NULL, SG_EXIT_OK, 1);
	CHECK_STR(fk.paths[0], "GET /v1/requests/" GRANT_ID);
	CHECK_STR(fk.paths[1], "POST /v1/requests");
	body = json_loads(fk.post_body, 0, NULL);
	CHECK_STR(sg_cli_jstr(body, "grant"), GRANT_ID);
	CHECK_STR(sg_cli_jstr(body, "key"), "nightly");
	CHECK_STR(sg_cli_jstr(body, "format"), "raw");
	json_decref(body);
	CHECK(sig_ok(file, "one\n", key));
	remove_outputs(file);

	/* Refused here, before anything is posted. */
	GRANT_CASE((void)0, "--artifact-name", "other.bin", SG_EXIT_USAGE, 0);
	GRANT_CASE((void)0, "--artifact-name", "app 1.bin", SG_EXIT_USAGE, 0);
	GRANT_CASE((void)0, "--key", "release", SG_EXIT_USAGE, 0);
	GRANT_CASE((void)0, "--format", "cms", SG_EXIT_USAGE, 0);
	GRANT_CASE(fk.grant_state = "revoked", NULL, NULL, SG_EXIT_REFUSED,
	    0);
	GRANT_CASE(fk.grant_state = "pending", NULL, NULL, SG_EXIT_REFUSED,
	    0);
	GRANT_CASE(fk.expires = (long long)time(NULL) - 1, NULL, NULL,
	    SG_EXIT_REFUSED, 0);
	CHECK(!sig_written(file));
	/* The answer is not a signature under this grant. */
	GRANT_CASE(fk.grant_forget = 1, NULL, NULL, SG_EXIT_SERVER, 1);
	CHECK(!sig_written(file));
	/* A signature over something else. */
	GRANT_CASE(fk.sign_other = 1, NULL, NULL, SG_EXIT_VERIFY, 1);
	CHECK(!sig_written(file));
#undef GRANT_CASE

	unlink(file);
	free(file);
	EVP_PKEY_free(key);
	CHECK_EQ_INT(rmdir(tmpdir), 0);
	tmpdir[0] = '\0';
}

static int
run_grant(const char *a1, const char *a2, const char *a3, const char *a4)
{
	const char *in[] = { a1, a2, a3, a4 };
	struct sg_cli_conf c;
	char url[64];
	char *argv[16];
	int argc = 0, ex;
	size_t i;

	conf_for(&c, url, sizeof(url));
	argv[argc++] = (char *)"grant";
	for (i = 0; i < 4 && in[i] != NULL; i++)
		argv[argc++] = (char *)in[i];
	argv[argc] = NULL;
	ex = sg_cli_cmd_grant(argc, argv, &c);
	fflush(stdout);
	return ex;
}

static void
test_grant_request_flow(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	json_t *body;

	/* The statement says what was asked: the grant is printed. */
	fake_start(M_RELEASE);
	fk.key = key;
	fk.expires = (long long)time(NULL) + 3600;
	{
		struct sg_cli_conf c;
		char url[64];
		char *argv[] = { (char *)"grant", (char *)"request",
		    (char *)"--key", (char *)"nightly", (char *)"--count",
		    (char *)"50", (char *)"--for", (char *)"2h",
		    (char *)"--artifact", (char *)"app-*.bin", NULL };

		conf_for(&c, url, sizeof(url));
		CHECK_EQ_INT(sg_cli_cmd_grant(10, argv, &c), SG_EXIT_OK);
		fflush(stdout);
		/* Asked for less time than the statement says: refused. */
		argv[7] = (char *)"30m";
		CHECK_EQ_INT(sg_cli_cmd_grant(10, argv, &c), SG_EXIT_SERVER);
		argv[7] = (char *)"2h";
		argv[5] = (char *)"49";
		CHECK_EQ_INT(sg_cli_cmd_grant(10, argv, &c), SG_EXIT_SERVER);
		argv[5] = (char *)"50";
		argv[9] = (char *)"*";
		CHECK_EQ_INT(sg_cli_cmd_grant(10, argv, &c), SG_EXIT_SERVER);
		/* Refused here: a bad pattern, a bad duration. */
		argv[9] = (char *)"app *";
		CHECK_EQ_INT(sg_cli_cmd_grant(10, argv, &c), SG_EXIT_USAGE);
		argv[9] = (char *)"app-*.bin";
		argv[7] = (char *)"2x";
		CHECK_EQ_INT(sg_cli_cmd_grant(10, argv, &c), SG_EXIT_USAGE);
	}
	CHECK_EQ_INT(fk.posts, 4);
	body = json_loads(fk.post_body, 0, NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(body, "count")), 50);
	CHECK_EQ_INT(json_integer_value(json_object_get(body, "lifetime")),
	    7200);
	CHECK_STR(sg_cli_jstr(body, "artifact"), "*");
	CHECK_STR(sg_cli_jstr(body, "format"), "raw");
	CHECK_STR(sg_cli_jstr(body, "key"), "nightly");
	json_decref(body);
	fk.posts = 0;
	CHECK_EQ_INT(run_grant("revoke", GRANT_ID, "--reason", "done early"),
	    SG_EXIT_OK);
	CHECK_STR(fk.post_body, "{\"reason\":\"done early\"}");
	CHECK_EQ_INT(run_grant("revoke", GRANT_ID, NULL, NULL),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(run_grant("revoke", "nothex", "--reason", "x"),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(fk.posts, 1);
	fake_stop();
	EVP_PKEY_free(key);
}

/* Two artifact lines for the officer's view of a release. */
static void
release_lines(void)
{
	snprintf(fk.lines[0], sizeof(fk.lines[0]), "sha256:%s raw a.bin",
	    SG_FX_STMT_DIGEST);
	snprintf(fk.lines[1], sizeof(fk.lines[1]), "sha256:%s raw b.bin",
	    SG_FX_STMT_SPKI);
}

static int
run_show(const char *extra)
{
	struct sg_cli_conf c;
	char url[64];
	char *argv[] = { (char *)"show", (char *)REQ_ID, (char *)extra, NULL };
	int ex;

	conf_for(&c, url, sizeof(url));
	ex = sg_cli_cmd_show(extra != NULL ? 3 : 2, argv, &c);
	fflush(stdout);
	return ex;
}

/* `show --manifest` prints a release's manifest only when its root and
 * count are the statement's. */
static void
test_show_release(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

#define SHOW_CASE(setup, extra, want_ex) do {				\
	fake_start(M_APPROVE);						\
	fk.key = key;							\
	fk.expires = (long long)time(NULL) + 3600;			\
	fk.release = 1;							\
	fk.nart = 2;							\
	release_lines();						\
	setup;								\
	CHECK_EQ_INT(run_show(extra), (want_ex));			\
	fake_stop();							\
} while (0)

	SHOW_CASE((void)0, NULL, SG_EXIT_OK);
	CHECK_EQ_INT(fk.requests, 1);
	SHOW_CASE((void)0, "--manifest", SG_EXIT_OK);
	CHECK_STR(fk.paths[1], "GET /v1/releases/" REQ_ID "/manifest");
	SHOW_CASE(fk.tamper_manifest = 1, "--manifest", SG_EXIT_LOCAL);
	/* The statement names another root than the manifest's. */
	SHOW_CASE(fk.tamper_root = 1, "--manifest", SG_EXIT_LOCAL);
#undef SHOW_CASE
	EVP_PKEY_free(key);
}

static int
run_approve(const char *cmd, const char *keyfile)
{
	struct sg_cli_conf c;
	char url[64];
	char *argv[] = { (char *)cmd, (char *)REQ_ID, (char *)"--key",
	    (char *)keyfile, (char *)"--as", (char *)"alice", (char *)"--yes",
	    NULL };
	int ex;

	conf_for(&c, url, sizeof(url));
	ex = sg_cli_cmd_approve(7, argv, &c);
	fflush(stdout);
	return ex;
}

/* Checks the posted envelope as the server would (sg_fx_envelope_ok). */
static int
envelope_verifies(const char *json, EVP_PKEY *officer, const char *decision)
{
	char want[1100];

	fake_statement(want, sizeof(want));
	strcat(want, decision);
	return sg_fx_envelope_ok(json, want, officer, "alice");
}

static void
test_approve_flow(void)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *officer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *pem = sg_fx_privkey_pem(officer), *path;

	path = make_file("officer.key", pem);
	chmod(path, 0600);

#define APPROVE_CASE(setup, cmd, want_ex, want_posts) do {		\
	fake_start(M_APPROVE);						\
	fk.key = key;							\
	fk.expires = (long long)time(NULL) + 3600;			\
	setup;								\
	CHECK_EQ_INT(run_approve((cmd), path), (want_ex));		\
	CHECK_EQ_INT(fk.posts, (want_posts));				\
	fake_stop();							\
} while (0)

	/* Approve and reject: the envelope verifies as the server checks it. */
	APPROVE_CASE((void)0, "approve", SG_EXIT_OK, 1);
	CHECK_STR(fk.paths[2], "POST /v1/requests/" REQ_ID "/approvals");
	CHECK(envelope_verifies(fk.last_body, officer, "decision approve\n"));
	CHECK(!envelope_verifies(fk.last_body, officer, "decision reject\n"));
	CHECK(!envelope_verifies(fk.last_body, key, "decision approve\n"));
	APPROVE_CASE((void)0, "reject", SG_EXIT_OK, 1);
	CHECK(envelope_verifies(fk.last_body, officer, "decision reject\n"));

	/* Nothing is posted when a check fails. */
	APPROVE_CASE(fk.req_state = "signed", "approve", SG_EXIT_REFUSED, 0);
	APPROVE_CASE(fk.expires = (long long)time(NULL) - 5, "approve",
	    SG_EXIT_REFUSED, 0);
	APPROVE_CASE(fk.tamper_requester = 1, "approve", SG_EXIT_LOCAL, 0);
	APPROVE_CASE(fk.wrong_spki = 1, "approve", SG_EXIT_LOCAL, 0);
	/* A release is approved only when the manifest served hashes to
	 * the statement's root and count. */
	APPROVE_CASE((fk.release = 1, fk.nart = 2, release_lines()),
	    "approve", SG_EXIT_OK, 1);
	CHECK(strncmp(fk.paths[2], "GET /v1/releases/" REQ_ID "/manifest",
	    50) == 0);
	APPROVE_CASE((fk.release = 1, fk.nart = 2, release_lines(),
	    fk.tamper_manifest = 1), "approve", SG_EXIT_LOCAL, 0);
	APPROVE_CASE((fk.release = 1, fk.nart = 2, release_lines(),
	    fk.tamper_root = 1), "approve", SG_EXIT_LOCAL, 0);
	/* Rejecting does not depend on reading the manifest. */
	APPROVE_CASE((fk.release = 1, fk.nart = 2, release_lines(),
	    fk.tamper_manifest = 1), "reject", SG_EXIT_OK, 1);
	chmod(path, 0640);
	APPROVE_CASE((void)0, "approve", SG_EXIT_LOCAL, 0);
	CHECK_EQ_INT(fk.requests, 0);
#undef APPROVE_CASE

	unlink(path);
	free(path);
	free(pem);
	EVP_PKEY_free(key);
	EVP_PKEY_free(officer);
	CHECK_EQ_INT(rmdir(tmpdir), 0);
}

int
main(void)
{
	static const struct sg_test tests[] = {
		T(test_keepalive_and_post),
		T(test_statuses),
		T(test_response_cap),
		T(test_unreachable_and_timeout),
		T(test_sign_flow),
		T(test_release_flow),
		T(test_grant_sign_flow),
		T(test_grant_request_flow),
		T(test_approve_flow),
		T(test_show_release),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = sg_test_run("cli_http", tests, sizeof(tests) / sizeof(tests[0]));
	curl_global_cleanup();
	return r;
}
