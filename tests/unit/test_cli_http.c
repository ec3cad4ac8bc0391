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
#include "sg_err.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define REQ_ID "00112233445566778899aabbccddeeff"
#define MAX_SEEN 16

enum mode {
	M_KEYS,          /* GET /v1/keys -> 200 {"keys":[]} */
	M_STATUS,        /* answer every request with fake.status/fake.body */
	M_BIG,           /* 200 with a body larger than the cap */
	M_SILENT,        /* read the request, never answer */
	M_SIGN,          /* a small signgated: see handle_sign() */
	M_APPROVE,       /* the officer's side: see handle_approve() */
};

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

/* Reads one request (headers and Content-Length body); 0 on EOF. */
static int
read_request(int fd, char *buf, size_t cap, size_t *ret_head,
    size_t *ret_len)
{
	size_t len = 0, need = 0;
	char *end, *cl;
	struct pollfd p;

	for (;;) {
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
			size_t head = (size_t)(end - buf) + 4;
			cl = strcasestr(buf, "\r\nContent-Length: ");
			need = head + (cl != NULL && cl < end ?
			    (size_t)strtoul(cl + 18, NULL, 10) : 0);
			if (len >= need) {
				*ret_head = head;
				*ret_len = need;
				return 1;
			}
		}
		if (len + 1 >= cap)
			return -1;
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, 5000) <= 0)
			return -1;
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return len == 0 ? 0 : -1;
		len += (size_t)n;
	}
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

	while (!fk.stop && read_request(fd, buf, sizeof(buf), &head, &len) ==
	    1) {
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
		T(test_approve_flow),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = sg_test_run("cli_http", tests, sizeof(tests) / sizeof(tests[0]));
	curl_global_cleanup();
	return r;
}
