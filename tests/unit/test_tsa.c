/*
 * Tests for the RFC 3161 client against build/tools/tsa_server (found next
 * to this binary, ../tools/tsa_server) and against a scripted fake that
 * answers with prepared bytes.  The TSA's CA and certificate are made
 * in-process, so nothing here depends on var/dev.  Tokens are checked by
 * an independent reader too:
 *
 *   openssl ts -verify -token_in -in TOKEN -data FILE -CAfile ca.pem
 *
 * Failures covered: unreachable port, rejection, a server slower than the
 * timeout, HTTP errors, wrong content type, oversize and malformed
 * responses, and a response for another imprint or nonce.  Loopback only;
 * every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_tsa.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define TIMEOUT_MS 5000u

static char server_bin[PATH_MAX + 32];
static char ca_path[600], cert_path[600], key_path[600];
static struct sg_fx_pki pki;   /* its root CA issued the TSA certificate */

struct server {
	pid_t pid;
	int port;
};

static void
setup(void)
{
	if (sg_fx_pki_make(&pki, "tsa") != 0)
		exit(2);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", pki.dir);
	snprintf(cert_path, sizeof(cert_path), "%s/tsa.pem", pki.dir);
	snprintf(key_path, sizeof(key_path), "%s/tsa.key", pki.dir);
	if (sg_fx_write_cert(ca_path, pki.root) != 0 ||
	    sg_fx_write_cert(cert_path, pki.tsa) != 0 ||
	    sg_fx_write_key(key_path, pki.tsa_key) != 0) {
		fprintf(stderr, "cannot write the TSA's files in %s\n",
		    pki.dir);
		exit(2);
	}
	if (sg_fx_build_file("tools/tsa_server", X_OK, server_bin,
	    sizeof(server_bin)) != 0) {
		fprintf(stderr, "%s not found: run make unit\n", server_bin);
		exit(2);
	}
}

/* Starts tsa_server with extra arguments (NULL-terminated); waits at most
 * 10 s for its "listening on" line. */
static int
server_start(struct server *s, const char *a1, const char *a2,
    const char *a3, const char *a4)
{
	const char *argv[12];
	char line[128];
	size_t used = 0;
	int pfd[2], i = 0, st;
	int64_t deadline;
	struct pollfd p;
	ssize_t n;
	char *colon;

	memset(s, 0, sizeof(*s));
	argv[i++] = server_bin;
	argv[i++] = "--cert";
	argv[i++] = cert_path;
	argv[i++] = "--key";
	argv[i++] = key_path;
	argv[i++] = "--port";
	argv[i++] = "0";
	if (a1 != NULL) argv[i++] = a1;
	if (a2 != NULL) argv[i++] = a2;
	if (a3 != NULL) argv[i++] = a3;
	if (a4 != NULL) argv[i++] = a4;
	argv[i] = NULL;
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	if ((s->pid = fork()) < 0)
		return -1;
	if (s->pid == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		execv(server_bin, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	deadline = sg_mono_ms() + 10000;
	while (used < sizeof(line) - 1 && memchr(line, '\n', used) == NULL) {
		p.fd = pfd[0];
		p.events = POLLIN;
		if (sg_mono_ms() >= deadline ||
		    poll(&p, 1, (int)(deadline - sg_mono_ms()) + 1) <= 0)
			break;
		if ((n = read(pfd[0], line + used, sizeof(line) - 1 - used))
		    <= 0)
			break;
		used += (size_t)n;
	}
	close(pfd[0]);
	line[used] = '\0';
	if (strncmp(line, "listening on 127.0.0.1:", 23) != 0 ||
	    (colon = strrchr(line, ':')) == NULL ||
	    (s->port = atoi(colon + 1)) <= 0) {
		fprintf(stderr, "tsa_server did not start: \"%s\"\n", line);
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &st, 0);
		s->pid = 0;
		return -1;
	}
	return 0;
}

static void
server_stop(struct server *s)
{
	int64_t deadline;
	int st;

	if (s->pid <= 0)
		return;
	kill(s->pid, SIGTERM);
	deadline = sg_mono_ms() + 5000;
	while (sg_mono_ms() < deadline) {
		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			s->pid = 0;
			return;
		}
		usleep(10000);
	}
	fprintf(stderr, "tsa_server did not stop; killing it\n");
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &st, 0);
	s->pid = 0;
}

static void
url_of(char *out, size_t cap, int port)
{
	snprintf(out, cap, "http://127.0.0.1:%d/", port);
}

/* The TSTInfo of a token (caller frees), or NULL. */
static TS_TST_INFO *
tst_of(const uint8_t *tok, size_t len)
{
	const unsigned char *p = tok;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
	TS_TST_INFO *tst = NULL;

	if (p7 != NULL && p == tok + len)
		tst = PKCS7_to_TS_TST_INFO(p7);
	PKCS7_free(p7);
	return tst;
}

static int
openssl_ts_verify(const uint8_t *tok, size_t tok_len, const void *data,
    size_t len)
{
	char tok_path[600], data_path[600], cmd[2200];
	int st;

	snprintf(tok_path, sizeof(tok_path), "%s/token.der", pki.dir);
	snprintf(data_path, sizeof(data_path), "%s/data.bin", pki.dir);
	if (sg_fx_write_bytes(tok_path, tok, tok_len) != 0 ||
	    sg_fx_write_bytes(data_path, data, len) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "openssl ts -verify -token_in -in '%s' "
	    "-data '%s' -CAfile '%s' >/dev/null 2>&1", tok_path, data_path,
	    ca_path);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_granted(void)
{
	static const char data[] = "a CMS signature value, say";
	struct server s;
	char url[64], err[512] = "";
	uint8_t *tok = NULL, h[32];
	size_t len = 0;
	TS_TST_INFO *tst = NULL;
	TS_MSG_IMPRINT *imp;
	const ASN1_OBJECT *obj = NULL;
	ASN1_OCTET_STRING *msg;
	int64_t t = 0;
	time_t now = time(NULL);

	if (server_start(&s, NULL, NULL, NULL, NULL) != 0) {
		CHECK(0);
		return;
	}
	url_of(url, sizeof(url), s.port);
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)data,
	    sizeof(data) - 1, TIMEOUT_MS, &tok, &len, err, sizeof(err)), 0);
	if (tok == NULL) {
		fprintf(stderr, "  %s\n", err);
		goto out;
	}
	/* The imprint is SHA-256 of exactly our data. */
	sg_sha256(data, sizeof(data) - 1, h);
	tst = tst_of(tok, len);
	CHECK(tst != NULL);
	if (tst == NULL)
		goto out;
	imp = TS_TST_INFO_get_msg_imprint(tst);
	X509_ALGOR_get0(&obj, NULL, NULL, TS_MSG_IMPRINT_get_algo(imp));
	CHECK_EQ_INT(OBJ_obj2nid(obj), NID_sha256);
	msg = TS_MSG_IMPRINT_get_msg(imp);
	CHECK(ASN1_STRING_length(msg) == 32 &&
	    memcmp(ASN1_STRING_get0_data(msg), h, 32) == 0);
	CHECK(TS_TST_INFO_get_nonce(tst) != NULL);
	CHECK_EQ_INT(TS_TST_INFO_get_version(tst), 1);
	/* Time within the test's minute. */
	CHECK_EQ_INT(sg_tsa_token_time(tok, len, &t), 0);
	CHECK(t >= (int64_t)now - 60 && t <= (int64_t)now + 60);
	/* An independent verifier agrees, and only for our data. */
	CHECK_EQ_INT(openssl_ts_verify(tok, len, data, sizeof(data) - 1), 0);
	CHECK(openssl_ts_verify(tok, len, "other", 5) != 0);
out:
	TS_TST_INFO_free(tst);
	free(tok);
	server_stop(&s);
}

/* Each request has its own nonce; the server counts serials. */
static void
test_two_tokens(void)
{
	struct server s;
	char url[64], err[512] = "";
	uint8_t *t1 = NULL, *t2 = NULL;
	size_t l1 = 0, l2 = 0;
	TS_TST_INFO *a = NULL, *b = NULL;

	if (server_start(&s, NULL, NULL, NULL, NULL) != 0) {
		CHECK(0);
		return;
	}
	url_of(url, sizeof(url), s.port);
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)"x", 1,
	    TIMEOUT_MS, &t1, &l1, err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)"x", 1,
	    TIMEOUT_MS, &t2, &l2, err, sizeof(err)), 0);
	if (t1 == NULL || t2 == NULL ||
	    (a = tst_of(t1, l1)) == NULL || (b = tst_of(t2, l2)) == NULL) {
		CHECK(0);
		goto out;
	}
	CHECK(ASN1_INTEGER_cmp(TS_TST_INFO_get_nonce(a),
	    TS_TST_INFO_get_nonce(b)) != 0);
	CHECK_EQ_INT(ASN1_INTEGER_get(TS_TST_INFO_get_serial(a)), 1);
	CHECK_EQ_INT(ASN1_INTEGER_get(TS_TST_INFO_get_serial(b)), 2);
out:
	TS_TST_INFO_free(a);
	TS_TST_INFO_free(b);
	free(t1);
	free(t2);
	server_stop(&s);
}

static void
test_rejected(void)
{
	struct server s;
	char url[64], err[512] = "";
	uint8_t *tok = NULL;
	size_t len = 0;

	if (server_start(&s, "--status", "reject", NULL, NULL) != 0) {
		CHECK(0);
		return;
	}
	url_of(url, sizeof(url), s.port);
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)"x", 1,
	    TIMEOUT_MS, &tok, &len, err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(tok == NULL);
	CHECK(strstr(err, "status rejection") != NULL);
	CHECK(strstr(err, "unacceptedPolicy") != NULL);
	CHECK(strstr(err, url) != NULL);
	server_stop(&s);
}

/* A port that was free a moment ago: nothing listens there. */
static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void
test_unreachable(void)
{
	char url[128], err[512] = "";
	uint8_t *tok = NULL;
	size_t len = 0;
	int port = free_port();

	CHECK(port > 0);
	snprintf(url, sizeof(url), "http://alice:s3cret@127.0.0.1:%d/tsa",
	    port);
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)"x", 1,
	    TIMEOUT_MS, &tok, &len, err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(tok == NULL);
	CHECK(strstr(err, "cannot connect") != NULL);
	CHECK(strstr(err, "refused") != NULL);
	/* The URL is named, its password is not. */
	CHECK(strstr(err, "127.0.0.1") != NULL);
	CHECK(strstr(err, "s3cret") == NULL);
}

static void
test_slow(void)
{
	struct server s;
	char url[64], err[512] = "";
	uint8_t *tok = NULL;
	size_t len = 0;
	int64_t t0, took;

	if (server_start(&s, "--delay-ms", "3000", NULL, NULL) != 0) {
		CHECK(0);
		return;
	}
	url_of(url, sizeof(url), s.port);
	t0 = sg_mono_ms();
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)"x", 1, 300,
	    &tok, &len, err, sizeof(err)), SG_ERR_UNAVAILABLE);
	took = sg_mono_ms() - t0;
	CHECK(tok == NULL);
	CHECK(strstr(err, "no answer within 300 ms") != NULL);
	CHECK(took >= 250 && took < 2000);
	server_stop(&s);
}

static void
test_fail_after(void)
{
	struct server s;
	char url[64], err[512] = "";
	uint8_t *tok = NULL, *tok2 = NULL;
	size_t len = 0, len2 = 0;

	if (server_start(&s, "--fail-after", "1", NULL, NULL) != 0) {
		CHECK(0);
		return;
	}
	url_of(url, sizeof(url), s.port);
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)"x", 1,
	    TIMEOUT_MS, &tok, &len, err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_tsa_timestamp(url, (const uint8_t *)"x", 1,
	    TIMEOUT_MS, &tok2, &len2, err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "HTTP status 503") != NULL);
	CHECK(tok2 == NULL);
	free(tok);
	server_stop(&s);
}

/* --- a fake authority that answers with prepared bytes ------------------ */

struct fake {
	int lfd;
	int port;
	pthread_t th;
	volatile int stop;
	int status;
	const char *ctype;
	const uint8_t *body;
	size_t body_len;
	/* When set, answers with a response signed over the actual request,
	 * with one byte of its signature flipped. */
	int sign_and_corrupt;
};

/* Reads one request (headers and Content-Length bytes), 5 s at most;
 * copies the body out. */
static void
read_request(int fd, uint8_t *body, size_t cap, size_t *ret_len)
{
	char buf[8192], *end, *cl;
	size_t used = 0, want = 0;
	int64_t deadline = sg_mono_ms() + 5000;
	struct pollfd p;
	ssize_t n;

	for (;;) {
		p.fd = fd;
		p.events = POLLIN;
		if (sg_mono_ms() >= deadline || poll(&p, 1, 100) < 0)
			return;
		if (p.revents == 0)
			continue;
		if ((n = recv(fd, buf + used, sizeof(buf) - 1 - used, 0)) <= 0)
			return;
		used += (size_t)n;
		buf[used] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) == NULL) {
			if (used >= sizeof(buf) - 1)
				return;
			continue;
		}
		if (want == 0 && (cl = strcasestr(buf, "Content-Length:")) !=
		    NULL)
			want = (size_t)strtoul(cl + 15, NULL, 10);
		if (used - (size_t)(end + 4 - buf) >= want ||
		    used >= sizeof(buf) - 1) {
			*ret_len = used - (size_t)(end + 4 - buf);
			if (*ret_len > cap)
				*ret_len = cap;
			memcpy(body, end + 4, *ret_len);
			return;
		}
	}
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p;
	char head[256];
	uint8_t req[8192], *made;
	size_t req_len, made_len;
	int fd, n;

	while (!f->stop) {
		p.fd = f->lfd;
		p.events = POLLIN;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		req_len = 0;
		read_request(fd, req, sizeof(req), &req_len);
		made = NULL;
		made_len = 0;
		if (f->sign_and_corrupt && (made = sg_fx_ts_respond(pki.tsa,
		    pki.tsa_key, req, req_len, &made_len)) != NULL)
			made[made_len - 5] ^= 0x01;
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n"
		    "Content-Type: %s\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n", f->status, f->ctype,
		    made != NULL ? made_len : f->body_len);
		if (sg_fx_send_all(fd, head, (size_t)n) == 0)
			(void)sg_fx_send_all(fd, made != NULL ? made : f->body,
			    made != NULL ? made_len : f->body_len);
		free(made);
		close(fd);
	}
	return NULL;
}

static int
fake_start(struct fake *f, int status, const char *ctype, const uint8_t *body,
    size_t len, int sign_and_corrupt)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->sign_and_corrupt = sign_and_corrupt;
	f->status = status;
	f->ctype = ctype;
	f->body = body;
	f->body_len = len;
	if ((f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(f->lfd, 8) != 0 ||
	    getsockname(f->lfd, (struct sockaddr *)&sa, &sl) != 0) {
		close(f->lfd);
		return -1;
	}
	f->port = ntohs(sa.sin_port);
	if (pthread_create(&f->th, NULL, fake_main, f) != 0) {
		close(f->lfd);
		return -1;
	}
	return 0;
}

static void
fake_stop(struct fake *f)
{
	f->stop = 1;
	pthread_join(f->th, NULL);
	close(f->lfd);
}

/* What sg_tsa_timestamp says about a fake answer. */
static int
against_fake(int status, const char *ctype, const uint8_t *body, size_t len,
    const char *data, char *err, size_t errlen)
{
	struct fake f;
	char url[64];
	uint8_t *tok = NULL;
	size_t tok_len = 0;
	int r;

	err[0] = '\0';
	if (fake_start(&f, status, ctype, body, len, body == NULL) != 0)
		return 1;
	url_of(url, sizeof(url), f.port);
	r = sg_tsa_timestamp(url, (const uint8_t *)data, strlen(data),
	    TIMEOUT_MS, &tok, &tok_len, err, errlen);
	fake_stop(&f);
	if (tok != NULL && r != 0)
		r = 2;                     /* output set on failure */
	free(tok);
	return r;
}

/* A genuine TimeStampResp, signed by our TSA, for a request over `data`
 * with `nonce` (0: none). */
static uint8_t *
genuine_response(const char *data, long nonce, size_t *ret_len)
{
	uint8_t *req, *out = NULL;
	size_t len = 0;

	if ((req = sg_fx_ts_request(data, strlen(data), nonce, &len)) != NULL)
		out = sg_fx_ts_respond(pki.tsa, pki.tsa_key, req, len, ret_len);
	free(req);
	return out;
}

static void
test_wrong_answers(void)
{
	static const char ts[] = "application/timestamp-reply";
	uint8_t *other = NULL, *replay = NULL, *no_nonce = NULL, *big = NULL;
	size_t other_len = 0, replay_len = 0, no_nonce_len = 0;
	char err[512];

	other = genuine_response("other data", 42, &other_len);
	replay = genuine_response("our data", 42, &replay_len);
	no_nonce = genuine_response("our data", 0, &no_nonce_len);
	CHECK(other != NULL && replay != NULL && no_nonce != NULL);
	if (other == NULL || replay == NULL || no_nonce == NULL)
		goto out;

	/* A token for someone else's data. */
	CHECK_EQ_INT(against_fake(200, ts, other, other_len, "our data", err,
	    sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "imprint mismatch") != NULL);
	/* Our data, but not our nonce: a replayed answer. */
	CHECK_EQ_INT(against_fake(200, ts, replay, replay_len, "our data",
	    err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "nonce mismatch") != NULL);
	CHECK_EQ_INT(against_fake(200, ts, no_nonce, no_nonce_len, "our data",
	    err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "nonce not returned") != NULL);
	/* Our imprint and nonce, but the token's signature is damaged (its
	 * last bytes are the signature value). */
	CHECK_EQ_INT(against_fake(200, ts, NULL, 0, "our data", err,
	    sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "signature does not verify") != NULL);
	/* Not a TimeStampResp; an error page; an HTTP error. */
	CHECK_EQ_INT(against_fake(200, ts, (const uint8_t *)"\x30\x03\x02\x01",
	    4, "our data", err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "malformed") != NULL);
	CHECK_EQ_INT(against_fake(200, "text/html", (const uint8_t *)"<html>",
	    6, "our data", err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "unexpected content type text/html") != NULL);
	CHECK_EQ_INT(against_fake(500, ts, (const uint8_t *)"", 0, "our data",
	    err, sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "HTTP status 500") != NULL);
	/* More than 64 KiB. */
	big = calloc(1, 70000);
	CHECK_EQ_INT(against_fake(200, ts, big, 70000, "our data", err,
	    sizeof(err)), SG_ERR_UNAVAILABLE);
	CHECK(strstr(err, "larger than 65536") != NULL);
out:
	free(big);
	free(other);
	free(replay);
	free(no_nonce);
}

static void
test_arguments(void)
{
	char err[256];
	uint8_t *tok = NULL;
	size_t len = 0;
	int64_t t;

	CHECK_EQ_INT(sg_tsa_timestamp("ftp://127.0.0.1/", (const uint8_t *)"x",
	    1, TIMEOUT_MS, &tok, &len, err, sizeof(err)), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_tsa_timestamp("127.0.0.1:80", (const uint8_t *)"x",
	    1, TIMEOUT_MS, &tok, &len, err, sizeof(err)), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_tsa_timestamp(NULL, (const uint8_t *)"x", 1,
	    TIMEOUT_MS, &tok, &len, err, sizeof(err)), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_tsa_timestamp("http://127.0.0.1:1/",
	    (const uint8_t *)"x", 1, 0, &tok, &len, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(tok == NULL);
	CHECK_EQ_INT(sg_tsa_token_time((const uint8_t *)"\x30\x00", 2, &t),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_tsa_token_time(NULL, 0, &t), SG_ERR_INVALID);
}

static const struct sg_test tests[] = {
	T(test_granted),
	T(test_two_tokens),
	T(test_rejected),
	T(test_unreachable),
	T(test_slow),
	T(test_fail_after),
	T(test_wrong_answers),
	T(test_arguments),
};

int
main(void)
{
	int rc;

	signal(SIGPIPE, SIG_IGN);
	setup();
	rc = sg_test_run("tsa", tests, sizeof(tests) / sizeof(tests[0]));
	sg_fx_pki_free(&pki);
	return rc;
}
