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

#define TIMEOUT_MS 5000u

static char tmpdir[] = "/tmp/sg-test-tsa.XXXXXX";
static int have_tmpdir;
static char server_bin[PATH_MAX + 32];
static char ca_path[600], cert_path[600], key_path[600];
static EVP_PKEY *ca_key, *tsa_key;
static X509 *ca_cert, *tsa_cert;

struct server {
	pid_t pid;
	int port;
};

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL) {
		fprintf(stderr, "cannot make extension %d\n", nid);
		exit(2);
	}
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
}

static X509 *
make_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
    int is_ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	static long serial = 1;

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 30);
	X509_set_pubkey(x, pub);
	add_ext(x, issuer != NULL ? issuer : x, NID_subject_key_identifier,
	    "hash");
	if (is_ca) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, x, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, x, NID_key_usage, "critical,digitalSignature");
		add_ext(x, x, NID_ext_key_usage, "critical,timeStamping");
	}
	if (!X509_sign(x, issuer_key, EVP_sha256())) {
		fprintf(stderr, "cannot sign %s\n", cn);
		exit(2);
	}
	X509_NAME_free(name);
	return x;
}

static int
write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

static void
write_pem_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || !PEM_write_X509(f, x) || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(2);
	}
}

static void
write_pem_key(const char *path, EVP_PKEY *k)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (f == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL,
	    NULL) || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(2);
	}
}

static void
setup(void)
{
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	have_tmpdir = 1;
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	tsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_cert = make_cert("test TSA CA", ca_key, NULL, ca_key, 1);
	tsa_cert = make_cert("test TSA", tsa_key, ca_cert, ca_key, 0);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	snprintf(cert_path, sizeof(cert_path), "%s/tsa.pem", tmpdir);
	snprintf(key_path, sizeof(key_path), "%s/tsa.key", tmpdir);
	write_pem_cert(ca_path, ca_cert);
	write_pem_cert(cert_path, tsa_cert);
	write_pem_key(key_path, tsa_key);

	/* <build>/tests/test_tsa -> <build>/tools/tsa_server */
	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0) {
		perror("readlink");
		exit(2);
	}
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';
	snprintf(server_bin, sizeof(server_bin), "%s/../tools/tsa_server",
	    exe);
	if (access(server_bin, X_OK) != 0) {
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

	snprintf(tok_path, sizeof(tok_path), "%s/token.der", tmpdir);
	snprintf(data_path, sizeof(data_path), "%s/data.bin", tmpdir);
	if (write_bytes(tok_path, tok, tok_len) != 0 ||
	    write_bytes(data_path, data, len) != 0)
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

static uint8_t *sign_request(const uint8_t *req, size_t len,
    size_t *ret_len);

static int
send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

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
		if (f->sign_and_corrupt &&
		    (made = sign_request(req, req_len, &made_len)) != NULL)
			made[made_len - 5] ^= 0x01;
		n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\n"
		    "Content-Type: %s\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n", f->status, f->ctype,
		    made != NULL ? made_len : f->body_len);
		if (send_all(fd, head, (size_t)n) == 0)
			(void)send_all(fd, made != NULL ? made : f->body,
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

/* What our TSA answers to a DER request. */
static uint8_t *
sign_request(const uint8_t *req, size_t len, size_t *ret_len)
{
	TS_RESP_CTX *ctx = TS_RESP_CTX_new();
	ASN1_OBJECT *policy = OBJ_txt2obj("1.2.3.4.1", 1);
	BIO *bio = BIO_new_mem_buf(req, (int)len);
	TS_RESP *resp = NULL;
	unsigned char *der = NULL;
	uint8_t *out = NULL;
	int n = 0;

	TS_RESP_CTX_set_signer_cert(ctx, tsa_cert);
	TS_RESP_CTX_set_signer_key(ctx, tsa_key);
	TS_RESP_CTX_set_def_policy(ctx, policy);
	TS_RESP_CTX_add_md(ctx, EVP_sha256());
	if ((resp = TS_RESP_create_response(ctx, bio)) != NULL &&
	    (n = i2d_TS_RESP(resp, &der)) > 0 &&
	    (out = malloc((size_t)n)) != NULL) {
		memcpy(out, der, (size_t)n);
		*ret_len = (size_t)n;
	}
	OPENSSL_free(der);
	TS_RESP_free(resp);
	BIO_free(bio);
	ASN1_OBJECT_free(policy);
	TS_RESP_CTX_free(ctx);
	return out;
}

/* A genuine TimeStampResp, signed by our TSA, for a request over `data`
 * with `nonce` (0: none). */
static uint8_t *
genuine_response(const char *data, long nonce, size_t *ret_len)
{
	TS_REQ *req = TS_REQ_new();
	TS_MSG_IMPRINT *imp = TS_MSG_IMPRINT_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_INTEGER *n = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	uint8_t h[32], *out = NULL;
	int len;

	sg_sha256(data, strlen(data), h);
	X509_ALGOR_set_md(alg, EVP_sha256());
	TS_MSG_IMPRINT_set_algo(imp, alg);
	TS_MSG_IMPRINT_set_msg(imp, h, sizeof(h));
	TS_REQ_set_version(req, 1);
	TS_REQ_set_msg_imprint(req, imp);
	TS_REQ_set_cert_req(req, 1);
	if (nonce != 0) {
		ASN1_INTEGER_set(n, nonce);
		TS_REQ_set_nonce(req, n);
	}
	if ((len = i2d_TS_REQ(req, &der)) > 0)
		out = sign_request(der, (size_t)len, ret_len);
	OPENSSL_free(der);
	ASN1_INTEGER_free(n);
	X509_ALGOR_free(alg);
	TS_MSG_IMPRINT_free(imp);
	TS_REQ_free(req);
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

static void
cleanup(void)
{
	char cmd[300];

	if (have_tmpdir) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	X509_free(ca_cert);
	X509_free(tsa_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(tsa_key);
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
	cleanup();
	return rc;
}
