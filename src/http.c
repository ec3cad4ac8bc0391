/*
 * libmicrohttpd front end.
 *
 * Threads: libmicrohttpd's internal thread pool (epoll), one polling thread
 * per worker.  Handlers must not block for long; waiting for a state change
 * suspends the connection (MHD_ALLOW_SUSPEND_RESUME) and a small timer
 * thread resumes it when notified or when its deadline passes.  Every
 * suspended connection is resumed before the daemon stops.
 *
 * Identity: libmicrohttpd (with HTTPS_MEM_TRUST) requests a client
 * certificate but completes the handshake without one, so on every request
 * we call gnutls_certificate_verify_peers() against the client CA with the
 * TLS-client key purpose, and take the subject CN and the SHA-256 of the
 * certificate from the verified peer.  A request without that is passed to
 * the handler as unauthenticated; the API refuses it (401).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_http.h"
#include "sg_util.h"

#define MAX_WAITERS 4096

struct waiter {
	struct MHD_Connection *conn;
	char id[33];
	int64_t deadline_ms;
	int notified;
};

struct sg_http {
	struct MHD_Daemon *mhd;
	sg_http_handler handler;
	void *ctx;
	char *cert_pem, *key_pem, *ca_pem;
	size_t key_len;
	uint16_t port;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct waiter waiters[MAX_WAITERS];
	size_t nwaiters;
	int stopping;
	pthread_t timer;
	int timer_started;
};

struct reqctx {
	char *body;
	size_t len;
	int too_large;
	int suspended;
	int resumed;
	int64_t wait_deadline_ms;
};

int64_t
sg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
sg_http_query(const struct sg_http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

static int
is_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    in6->sin6_addr.s6_addr[12] == 127);
	}
	return 0;
}

/* Fills the identity fields of req from a verified client certificate. */
static void
authenticate(struct MHD_Connection *conn, struct sg_http_request *req)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t sess;
	gnutls_typed_vdata_st purpose;
	const gnutls_datum_t *certs;
	gnutls_x509_crt_t crt = NULL;
	unsigned int status = 0, ncerts = 0;
	char cn[256], extra[8];
	size_t cnlen = sizeof(cn), elen = sizeof(extra);

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || (sess = ci->tls_session) == NULL)
		return;
	memset(&purpose, 0, sizeof(purpose));
	purpose.type = GNUTLS_DT_KEY_PURPOSE_OID;
	purpose.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT;
	if (gnutls_certificate_verify_peers(sess, &purpose, 1, &status) < 0 ||
	    status != 0)
		return;
	certs = gnutls_certificate_get_peers(sess, &ncerts);
	if (certs == NULL || ncerts == 0)
		return;
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) < 0)
		goto out;
	/* Exactly one CN, so that "CN=alice,CN=bob" maps to no one. */
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    0, cn, &cnlen) < 0 || strlen(cn) != cnlen ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1,
	    0, extra, &elen) != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		cn[0] = '\0';
	snprintf(req->client_cn, sizeof(req->client_cn), "%s", cn);
	sg_sha256(certs[0].data, certs[0].size, req->client_sha256);
	req->authenticated = 1;
out:
	gnutls_x509_crt_deinit(crt);
}

static enum MHD_Result
send_response(struct MHD_Connection *conn, struct sg_http_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char ra[32];

	r = MHD_create_response_from_buffer(resp->body_len,
	    resp->body != NULL ? resp->body : (char *)"",
	    resp->body != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		free(resp->body);
		return MHD_NO;
	}
	resp->body = NULL;  /* transferred */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    resp->content_type ? resp->content_type : "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (resp->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%u", resp->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (resp->location[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION,
		    resp->location);
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
simple_error(struct MHD_Connection *conn, int status, const char *title,
    const char *detail)
{
	struct sg_http_response resp;
	char *body;

	memset(&resp, 0, sizeof(resp));
	if (asprintf(&body, "{\"type\":\"about:blank\",\"title\":\"%s\","
	    "\"status\":%d,\"detail\":\"%s\"}", title, status, detail) < 0)
		return MHD_NO;
	resp.status = status;
	resp.content_type = "application/problem+json";
	resp.body = body;
	resp.body_len = strlen(body);
	return send_response(conn, &resp);
}

static int
add_waiter(struct sg_http *h, struct MHD_Connection *conn, const char *id,
    int64_t deadline)
{
	struct waiter *w;

	pthread_mutex_lock(&h->lock);
	if (h->stopping || h->nwaiters >= MAX_WAITERS) {
		pthread_mutex_unlock(&h->lock);
		return SG_ERR_RATE_LIMITED;
	}
	w = &h->waiters[h->nwaiters++];
	w->conn = conn;
	snprintf(w->id, sizeof(w->id), "%s", id);
	w->deadline_ms = deadline;
	w->notified = 0;
	/* Suspend under the lock so the timer cannot resume it first. */
	MHD_suspend_connection(conn);
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* Resumes and removes waiters matching id (NULL: due ones, or all when
 * stopping).  Called with h->lock held. */
static void
resume_locked(struct sg_http *h, const char *id, int all)
{
	int64_t now = sg_now_ms();
	size_t i = 0;

	while (i < h->nwaiters) {
		struct waiter *w = &h->waiters[i];
		if (all || (id != NULL && strcmp(w->id, id) == 0) ||
		    (id == NULL && w->deadline_ms <= now)) {
			MHD_resume_connection(w->conn);
			h->waiters[i] = h->waiters[--h->nwaiters];
			continue;
		}
		i++;
	}
}

void
sg_http_notify(struct sg_http *h, const char *id)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	resume_locked(h, id, 0);
	pthread_mutex_unlock(&h->lock);
}

static void *
timer_main(void *arg)
{
	struct sg_http *h = arg;
	struct timespec ts;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		resume_locked(h, NULL, 0);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->cond, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct sg_http *h = cls;
	struct reqctx *rc = *con_cls;
	struct sg_http_request req;
	struct sg_http_response resp;
	enum MHD_Result ret;

	if (rc == NULL) {
		const char *cl;
		uint64_t n;

		if ((rc = calloc(1, sizeof(*rc))) == NULL)
			return MHD_NO;
		*con_cls = rc;
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && (sg_parse_u64(cl, 0, UINT64_MAX, &n) != 0 ||
		    n > SG_HTTP_MAX_BODY)) {
			rc->too_large = 1;
			return simple_error(conn, 413, "Payload Too Large",
			    "the body exceeds 65536 bytes");
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rc->too_large || rc->len + n > SG_HTTP_MAX_BODY) {
			rc->too_large = 1;
			return MHD_YES;
		}
		char *nb = realloc(rc->body, rc->len + n + 1);
		if (nb == NULL)
			return MHD_NO;
		rc->body = nb;
		memcpy(rc->body + rc->len, upload_data, n);
		rc->len += n;
		rc->body[rc->len] = '\0';
		return MHD_YES;
	}
	if (rc->too_large)
		return simple_error(conn, 413, "Payload Too Large",
		    "the body exceeds 65536 bytes");

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = method;
	req.path = url;
	req.conn = conn;
	req.idempotency_key = MHD_lookup_connection_value(conn,
	    MHD_HEADER_KIND, "Idempotency-Key");
	req.content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	req.body = rc->body != NULL ? rc->body : "";
	req.body_len = rc->len;
	req.loopback = is_loopback(conn);
	req.resumed = rc->resumed;
	req.wait_deadline_ms = rc->wait_deadline_ms;
	authenticate(conn, &req);

	h->handler(h->ctx, &req, &resp);

	if (resp.wait_id[0] != '\0' && !rc->resumed) {
		free(resp.body);
		rc->resumed = 1;
		rc->wait_deadline_ms = resp.wait_deadline_ms;
		if (add_waiter(h, conn, resp.wait_id,
		    resp.wait_deadline_ms) == 0)
			return MHD_YES;
		/* No room to wait: answer now with the current state. */
		memset(&resp, 0, sizeof(resp));
		req.resumed = 1;
		req.wait_deadline_ms = 0;
		h->handler(h->ctx, &req, &resp);
	}
	if (resp.wait_id[0] != '\0') {
		/* Already waited once: the handler must answer. */
		free(resp.body);
		return simple_error(conn, 500, "Internal Server Error",
		    "wait not honoured");
	}
	ret = send_response(conn, &resp);
	free(resp.body);
	return ret;
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct reqctx *rc = *con_cls;

	if (rc == NULL)
		return;
	free(rc->body);
	free(rc);
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512], esc[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	sg_escape(line, n, esc, sizeof(esc));
	sg_log_debug("http: %s", esc);
}

int
sg_http_start(const struct sg_http_config *cfg, sg_http_handler handler,
    void *ctx, struct sg_http **ret, char *errbuf, size_t errlen)
{
	struct sg_http *h;
	struct sockaddr_storage ss;
	socklen_t sslen;
	unsigned int flags;
	const union MHD_DaemonInfo *di;
	size_t len;
	int r;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return SG_ERR_NOMEM;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	h->handler = handler;
	h->ctx = ctx;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, cfg->address,
	    &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(cfg->port);
		sslen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, cfg->address,
	    &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(cfg->port);
		sslen = sizeof(struct sockaddr_in6);
	} else {
		snprintf(errbuf, errlen, "listen address '%s' is not numeric",
		    cfg->address);
		r = SG_ERR_INVALID;
		goto fail;
	}
	(void)sslen;

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (!cfg->plain_http) {
		flags |= MHD_USE_TLS;
		if ((r = sg_read_file(cfg->cert_file, 1 << 20, &h->cert_pem,
		    &len)) != 0) {
			snprintf(errbuf, errlen, "%s: %s", cfg->cert_file,
			    sg_strerror(r));
			goto fail;
		}
		if ((r = sg_read_file(cfg->key_file, 1 << 20, &h->key_pem,
		    &h->key_len)) != 0) {
			snprintf(errbuf, errlen, "%s: %s", cfg->key_file,
			    sg_strerror(r));
			goto fail;
		}
		if ((r = sg_read_file(cfg->client_ca_file, 1 << 20,
		    &h->ca_pem, &len)) != 0) {
			snprintf(errbuf, errlen, "%s: %s", cfg->client_ca_file,
			    sg_strerror(r));
			goto fail;
		}
	}

	if (!cfg->plain_http)
		h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, h,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
		    MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout,
		    MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    cfg->per_ip_connection_limit,
		    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		    MHD_OPTION_HTTPS_MEM_CERT, h->cert_pem,
		    MHD_OPTION_HTTPS_MEM_KEY, h->key_pem,
		    MHD_OPTION_HTTPS_MEM_TRUST, h->ca_pem,
		    MHD_OPTION_HTTPS_PRIORITIES,
		    "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
		    "%SERVER_PRECEDENCE",
		    MHD_OPTION_END);
	else
		h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, h,
		    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
		    MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout,
		    MHD_OPTION_CONNECTION_LIMIT, cfg->connection_limit,
		    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		    cfg->per_ip_connection_limit,
		    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		    MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(errbuf, errlen, "cannot listen on %s port %u "
		    "(address in use, or bad TLS certificate/key)",
		    cfg->address, cfg->port);
		r = SG_ERR_IO;
		goto fail;
	}
	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di != NULL ? di->port : cfg->port;
	if (pthread_create(&h->timer, NULL, timer_main, h) != 0) {
		snprintf(errbuf, errlen, "cannot start the timer thread");
		r = SG_ERR_INTERNAL;
		goto fail;
	}
	h->timer_started = 1;
	*ret = h;
	return 0;
fail:
	sg_http_stop(h);
	return r;
}

uint16_t
sg_http_port(const struct sg_http *h)
{
	return h->port;
}

void
sg_http_stop(struct sg_http *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	resume_locked(h, NULL, 1);
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->timer_started)
		pthread_join(h->timer, NULL);
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd);
	free(h->cert_pem);
	sg_freezero(h->key_pem, h->key_len);
	free(h->ca_pem);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h);
}
