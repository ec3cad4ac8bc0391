/*
 * tsa_server: a small RFC 3161 time-stamping authority for tests.
 *
 *   tsa_server --cert TSA.pem --key TSA.key [--port N] [--fail-after N]
 *       [--status granted|reject] [--delay-ms N]
 *
 * Listens on 127.0.0.1 only (port 0 picks a free one), prints
 * "listening on 127.0.0.1:PORT" on stdout once it accepts connections, and
 * answers POSTs of application/timestamp-query with a TimeStampResp made by
 * OpenSSL's TS_RESP_create_response: policy 1.2.3.4.1, SHA-256/384/512
 * imprints, serial numbers counting from 1, accuracy 1 s, the TSA
 * certificate included when asked for (and any further certificates of the
 * --cert file: put the CA after the TSA certificate to ship a chain).
 *
 * Failure modes for tests:
 *   --status reject   every answer is a rejection (unacceptedPolicy);
 *   --fail-after N    after N granted answers, HTTP 503;
 *   --delay-ms N      waits N ms (at most 60 s) before each answer.
 *
 * One thread per connection (libmicrohttpd), so a delayed answer holds up
 * no other client.  Bounded: exits after 10 minutes, or at SIGTERM/SIGINT.
 * The key file must be private (mode 0600), like every key signgate reads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509.h>

#include "sg_err.h"
#include "sg_util.h"

#define REQUEST_MAX (64 * 1024)
#define LIFETIME_S 600
#define DELAY_MAX_MS 60000
#define POLICY_OID "1.2.3.4.1"
#define MAX_CERTS 8

struct upload {
	uint8_t buf[REQUEST_MAX];
	size_t len;
	int too_large;
};

static struct {
	X509 *cert;
	STACK_OF(X509) *extra;     /* further certificates of --cert */
	EVP_PKEY *key;
	ASN1_OBJECT *policy;
	int reject;
	uint64_t fail_after;       /* 0: never */
	uint64_t delay_ms;
	pthread_mutex_t mu;
	uint64_t serial;
	uint64_t granted;
	_Atomic int stopping;
} tsa = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void
usage(void)
{
	fprintf(stderr, "usage: tsa_server --cert TSA.pem --key TSA.key "
	    "[--port N] [--fail-after N]\n"
	    "                  [--status granted|reject] [--delay-ms N]\n");
	exit(2);
}

static ASN1_INTEGER *
serial_cb(TS_RESP_CTX *ctx, void *arg)
{
	ASN1_INTEGER *s;
	uint64_t n;

	if (tsa.reject) {
		/* A NULL serial with a status set: OpenSSL then answers with
		 * that status instead of a token. */
		TS_RESP_CTX_set_status_info(ctx, TS_STATUS_REJECTION,
		    "test TSA refuses every request");
		TS_RESP_CTX_add_failure_info(ctx, TS_INFO_UNACCEPTED_POLICY);
		return NULL;
	}
	pthread_mutex_lock(&tsa.mu);
	n = ++tsa.serial;
	pthread_mutex_unlock(&tsa.mu);
	if ((s = ASN1_INTEGER_new()) == NULL)
		return NULL;
	if (!ASN1_INTEGER_set_uint64(s, n)) {
		ASN1_INTEGER_free(s);
		return NULL;
	}
	return s;
}

/* A DER TimeStampResp for the request, or NULL. */
static unsigned char *
make_response(const uint8_t *req, size_t len, int *ret_len)
{
	TS_RESP_CTX *ctx = NULL;
	TS_RESP *resp = NULL;
	BIO *bio = NULL;
	unsigned char *der = NULL;
	int n = 0;

	if ((ctx = TS_RESP_CTX_new()) == NULL ||
	    (bio = BIO_new_mem_buf(req, (int)len)) == NULL)
		goto out;
	if (!TS_RESP_CTX_set_signer_cert(ctx, tsa.cert) ||
	    !TS_RESP_CTX_set_signer_key(ctx, tsa.key) ||
	    !TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256()) ||
	    !TS_RESP_CTX_set_def_policy(ctx, tsa.policy) ||
	    !TS_RESP_CTX_add_md(ctx, EVP_sha256()) ||
	    !TS_RESP_CTX_add_md(ctx, EVP_sha384()) ||
	    !TS_RESP_CTX_add_md(ctx, EVP_sha512()) ||
	    !TS_RESP_CTX_set_accuracy(ctx, 1, 0, 0))
		goto out;
	if (sk_X509_num(tsa.extra) > 0 &&
	    !TS_RESP_CTX_set_certs(ctx, tsa.extra))
		goto out;
	TS_RESP_CTX_set_serial_cb(ctx, serial_cb, NULL);
	if ((resp = TS_RESP_create_response(ctx, bio)) == NULL)
		goto out;
	if ((n = i2d_TS_RESP(resp, &der)) <= 0) {
		der = NULL;
		goto out;
	}
	*ret_len = n;
out:
	if (der == NULL)
		ERR_print_errors_fp(stderr);
	ERR_clear_error();
	TS_RESP_free(resp);
	BIO_free(bio);
	TS_RESP_CTX_free(ctx);
	return der;
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *ctype,
    void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if ((r = MHD_create_response_from_buffer(len, body, mode)) == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
	return reply(c, status, "text/plain", (void *)text, strlen(text),
	    MHD_RESPMEM_PERSISTENT);
}

/* Sleeps in short steps, so that SIGTERM is not held up by a delay. */
static void
delay(uint64_t ms)
{
	struct timespec step = { 0, 10 * 1000 * 1000 };
	uint64_t waited = 0;

	while (waited < ms && !tsa.stopping) {
		nanosleep(&step, NULL);
		waited += 10;
	}
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct upload *up = *con_cls;
	const char *ctype, *clen;
	unsigned char *der;
	uint64_t cl;
	int n = 0, refuse;

	if (up == NULL) {
		/* First call: headers only. */
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "POST only\n");
		ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_TYPE);
		if (ctype == NULL || strncasecmp(ctype,
		    "application/timestamp-query", 27) != 0)
			return reply_text(c,
			    MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			    "application/timestamp-query only\n");
		clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (clen != NULL && (sg_parse_u64(clen, 0, REQUEST_MAX,
		    &cl) != 0))
			return reply_text(c, MHD_HTTP_CONTENT_TOO_LARGE,
			    "request too large\n");
		if ((up = calloc(1, sizeof(*up))) == NULL)
			return MHD_NO;
		*con_cls = up;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (*upload_data_size > sizeof(up->buf) - up->len)
			up->too_large = 1;
		else {
			memcpy(up->buf + up->len, upload_data,
			    *upload_data_size);
			up->len += *upload_data_size;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (up->too_large)
		return reply_text(c, MHD_HTTP_CONTENT_TOO_LARGE,
		    "request too large\n");
	if (tsa.delay_ms > 0)
		delay(tsa.delay_ms);
	pthread_mutex_lock(&tsa.mu);
	refuse = tsa.fail_after > 0 && tsa.granted >= tsa.fail_after;
	pthread_mutex_unlock(&tsa.mu);
	if (refuse)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "out of service\n");
	if ((der = make_response(up->buf, up->len, &n)) == NULL)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "cannot make a response\n");
	if (!tsa.reject) {
		pthread_mutex_lock(&tsa.mu);
		tsa.granted++;
		pthread_mutex_unlock(&tsa.mu);
	}
	/* MHD frees the copy it makes; ours goes back to OpenSSL. */
	if (reply(c, MHD_HTTP_OK, "application/timestamp-reply", der,
	    (size_t)n, MHD_RESPMEM_MUST_COPY) != MHD_YES) {
		OPENSSL_free(der);
		return MHD_NO;
	}
	OPENSSL_free(der);
	return MHD_YES;
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	free(*con_cls);
	*con_cls = NULL;
}

static void
load_cert(const char *path)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *bio;
	X509 *x;

	if (sg_read_file(path, 1024 * 1024, &pem, &len) != 0) {
		fprintf(stderr, "tsa_server: cannot read %s\n", path);
		exit(1);
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (tsa.extra = sk_X509_new_null()) == NULL)
		exit(1);
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (tsa.cert == NULL)
			tsa.cert = x;
		else if (sk_X509_num(tsa.extra) >= MAX_CERTS ||
		    !sk_X509_push(tsa.extra, x)) {
			fprintf(stderr, "tsa_server: too many certificates "
			    "in %s\n", path);
			exit(1);
		}
	}
	ERR_clear_error();
	BIO_free(bio);
	free(pem);
	if (tsa.cert == NULL) {
		fprintf(stderr, "tsa_server: no certificate in %s\n", path);
		exit(1);
	}
}

static void
load_key(const char *path)
{
	char *pem = NULL;
	size_t len = 0;
	BIO *bio;
	int r;

	if ((r = sg_read_secret_file_max(path, 64 * 1024, &pem, &len)) != 0) {
		fprintf(stderr, "tsa_server: %s: %s\n", path, sg_strerror(r));
		exit(1);
	}
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL)
		exit(1);
	tsa.key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	sg_freezero(pem, len);
	if (tsa.key == NULL) {
		fprintf(stderr, "tsa_server: no private key in %s\n", path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL;
	uint64_t port = 0;
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	struct timespec wait = { 1, 0 };
	sigset_t set;
	time_t deadline;
	int i, sig;

	for (i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] :
		    NULL;

		if (val == NULL)
			usage();
		i++;
		if (strcmp(opt, "--cert") == 0)
			cert = val;
		else if (strcmp(opt, "--key") == 0)
			key = val;
		else if (strcmp(opt, "--port") == 0) {
			if (sg_parse_u64(val, 0, 65535, &port) != 0)
				usage();
		} else if (strcmp(opt, "--fail-after") == 0) {
			if (sg_parse_u64(val, 1, UINT32_MAX,
			    &tsa.fail_after) != 0)
				usage();
		} else if (strcmp(opt, "--delay-ms") == 0) {
			if (sg_parse_u64(val, 0, DELAY_MAX_MS,
			    &tsa.delay_ms) != 0)
				usage();
		} else if (strcmp(opt, "--status") == 0) {
			if (strcmp(val, "reject") == 0)
				tsa.reject = 1;
			else if (strcmp(val, "granted") != 0)
				usage();
		} else
			usage();
	}
	if (cert == NULL || key == NULL)
		usage();
	load_cert(cert);
	load_key(key);
	if (X509_check_private_key(tsa.cert, tsa.key) != 1) {
		fprintf(stderr, "tsa_server: the key is not the certificate's\n");
		return 1;
	}
	if ((tsa.policy = OBJ_txt2obj(POLICY_OID, 1)) == NULL)
		return 1;

	/* Blocked here, so MHD's threads inherit the mask and the signals
	 * are only ever taken by sigtimedwait below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
	    (uint16_t)port, NULL, NULL, handle, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "tsa_server: cannot listen on 127.0.0.1:%u\n",
		    (unsigned)port);
		return 1;
	}
	if ((info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)) ==
	    NULL) {
		MHD_stop_daemon(d);
		return 1;
	}
	printf("listening on 127.0.0.1:%u\n", (unsigned)info->port);
	fflush(stdout);

	deadline = time(NULL) + LIFETIME_S;
	while (time(NULL) < deadline) {
		sig = sigtimedwait(&set, NULL, &wait);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig < 0 && errno != EAGAIN && errno != EINTR)
			break;
	}
	tsa.stopping = 1;
	MHD_stop_daemon(d);
	X509_free(tsa.cert);
	sk_X509_pop_free(tsa.extra, X509_free);
	EVP_PKEY_free(tsa.key);
	ASN1_OBJECT_free(tsa.policy);
	return 0;
}
