/*
 * libmicrohttpd front end.
 *
 * Threads.  libmicrohttpd runs its own thread pool (epoll), one polling
 * thread per worker, but it has no listening socket of its own
 * (MHD_USE_NO_LISTEN_SOCKET): an acceptor thread here accepts every
 * connection, applies the admission rules below, and hands the socket over
 * with MHD_add_connection().  A guard thread enforces deadlines and drains
 * closed sockets (lingering close).  A timer thread resumes long-polls.
 * Handlers must not block for long; waiting for a state change suspends the
 * connection (MHD_ALLOW_SUSPEND_RESUME) and the timer resumes it when
 * notified or when its deadline passes; work finished on another thread
 * (a signature, a commit) resumes its connection with the answer
 * (sg_http_later).  Every suspended connection is resumed before the
 * daemon stops.
 *
 * Slots.  Each accepted connection has a slot in a fixed table guarded by
 * conn_lock.  A slot holds our own duplicate of the socket (own_fd), made
 * before the original (mhd_fd) goes to libmicrohttpd.  That duplicate is
 * what makes the design safe under every interleaving:
 *  - The guard thread and the acceptor only ever act on own_fd, and only
 *    with conn_lock held; own_fd is closed only by us, with conn_lock held
 *    or after the slot left the table.  So shutdown(2) of a connection
 *    whose deadline passed can never hit a reused descriptor number, even
 *    if libmicrohttpd closed mhd_fd a moment ago: the socket stays open
 *    until we close own_fd.  shutdown() acts on the socket, so
 *    libmicrohttpd's polling thread sees end-of-file on mhd_fd and closes
 *    the connection itself through its normal path.
 *  - libmicrohttpd closes mhd_fd without closing the socket (we still hold
 *    it), so closing never sends a reset while a client is still sending.
 *    The closed notification hands own_fd to the guard thread, which sends
 *    FIN, reads and discards what the client still sends (at most
 *    LINGER_MAX_BYTES for at most LINGER_MS, less if the peer closes),
 *    then closes: the classic lingering close.  That is how a client whose
 *    body is over the limit always reads its 413 instead of a reset.
 *  - libmicrohttpd 0.9.75 (daemon.c, MHD_cleanup_connections and
 *    new_connection_process_) calls the closed notification before it
 *    removes mhd_fd from its epoll set and closes it, and calls the started
 *    notification before its first I/O.  The started notification finds
 *    its slot by mhd_fd among slots still pending; mhd_fd is open then, so
 *    the match is unique once the acceptor drops any stale pending slot
 *    whose number accept() hands out again (that number was closed, so its
 *    connection is gone).  A pending slot libmicrohttpd dropped without a
 *    notification (it can, when it runs out of memory) is found by the
 *    guard: fstat() of mhd_fd no longer names own_fd's socket.
 *
 * Without client certificates.  A front started with no_client_cert (the
 * officers' console, which authenticates with a session of its own)
 * asks for no certificate; its connections are admitted by their first
 * request, as in plain HTTP, and may send a body.  Until then they are
 * held to the same caps and deadlines as any unauthenticated peer.
 *
 * Modules.  This file drives libmicrohttpd: the connection notifications,
 * requests and long-polls, start and stop.  http_conn.c keeps the slots,
 * their counts and deadlines and runs the guard; http_accept.c runs the
 * acceptor (admission, parking); http_tls.c loads the TLS material and
 * verifies clients.  Their shared declarations are in http_int.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "sg_err.h"
#include "sg_util.h"
#include "http_int.h"

struct reqctx {
	struct slot *slot;
	struct sg_http_later *later;   /* answered later, or NULL */
	char *body;
	size_t len;
	size_t discarded;
	int too_large;
	size_t body_max;               /* SG_HTTP_MAX_BODY, or larger */
	int resumed;
	int authenticated;
	int64_t wait_deadline_ms;
};

struct http_counters http_st;

/*
 * A request answered later.  Two references: the connection's (dropped
 * when the request completes) and the answerer's (dropped by its
 * answer).  Everything here, and every front's list of suspended ones,
 * is guarded by later_lock: one lock for all, so that an answer that
 * comes after its front stopped touches nothing of the front.
 */
struct sg_http_later {
	struct sg_http *h;
	struct MHD_Connection *conn;
	struct sg_http_later *prev, *next;   /* h->laters, while suspended */
	int suspended;
	int answered;
	int refs;
	struct sg_http_response resp;
};

/* What sg_http_later() finds behind req->front. */
struct front_ref {
	struct sg_http *h;
	struct MHD_Connection *conn;
	struct reqctx *rc;
};

static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;

static void
later_unref_locked(struct sg_http_later *l)
{
	if (--l->refs > 0)
		return;
	free(l->resp.body);
	free(l);
}

struct sg_http_later *
sg_http_later(const struct sg_http_request *req)
{
	struct front_ref *fr = req->front;
	struct sg_http_later *l;

	if (fr == NULL || fr->rc->later != NULL ||
	    (l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	l->h = fr->h;
	l->conn = fr->conn;
	l->refs = 2;
	fr->rc->later = l;
	return l;
}

static void
later_unlink_locked(struct sg_http_later *l)
{
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		l->h->laters = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	l->suspended = 0;
}

void
sg_http_answer(struct sg_http_later *l, struct sg_http_response *resp)
{
	pthread_mutex_lock(&later_lock);
	if (l->answered) {
		/* The front answered for it when it stopped. */
		free(resp->body);
	} else {
		l->resp = *resp;
		l->answered = 1;
		if (l->suspended) {
			later_unlink_locked(l);
			MHD_resume_connection(l->conn);
		}
	}
	resp->body = NULL;
	later_unref_locked(l);
	pthread_mutex_unlock(&later_lock);
}

void
sg_http_stats(struct sg_http_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->client_verifications = atomic_load(&http_st.verifications);
	st->accepted = atomic_load(&http_st.accepted);
	st->refused = atomic_load(&http_st.refused);
	st->evicted = atomic_load(&http_st.evicted);
	st->reaped_handshake = atomic_load(&http_st.reaped_handshake);
	st->reaped_first_request = atomic_load(&http_st.reaped_first_request);
	st->reaped_request = atomic_load(&http_st.reaped_request);
	st->lingered = atomic_load(&http_st.lingered);
	st->open_unauthenticated = atomic_load(&http_st.open_unauth);
	st->open_authenticated = atomic_load(&http_st.open_auth);
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

/* ---- libmicrohttpd notifications ---------------------------------------- */

static struct slot *
conn_slot(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

/* The client's Finished message arrived: the handshake is done. */
static int
handshake_hook(gnutls_session_t sess, unsigned int htype, unsigned when,
    unsigned int incoming, const gnutls_datum_t *msg)
{
	struct MHD_Connection *conn = gnutls_session_get_ptr(sess);
	struct slot *s;

	if (!incoming || conn == NULL || (s = conn_slot(conn)) == NULL)
		return 0;
	pthread_mutex_lock(&s->h->conn_lock);
	s->handshake_done = 1;
	s->handshake_ms = sg_mono_ms();
	pthread_mutex_unlock(&s->h->conn_lock);
	return 0;
}

static void
notify_cb(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct sg_http *h = cls;
	const union MHD_ConnectionInfo *ci;
	struct slot *s = NULL;
	size_t i;
	int fd, linger;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		fd = ci != NULL ? ci->connect_fd : -1;
		pthread_mutex_lock(&h->conn_lock);
		for (i = 0; fd >= 0 && i < h->nslots; i++)
			if (h->slots[i].state == SLOT_PENDING &&
			    h->slots[i].mhd_fd == fd) {
				s = &h->slots[i];
				s->state = SLOT_LIVE;
				s->handshake_done = h->plain_http;
				s->handshake_ms = sg_mono_ms();
				break;
			}
		*socket_context = s;
		pthread_mutex_unlock(&h->conn_lock);
		if (s == NULL) {
			/* Not ours (cannot happen): libmicrohttpd holds fd
			 * open during this call, so this is safe. */
			if (fd >= 0)
				(void)shutdown(fd, SHUT_RDWR);
			return;
		}
		if (!h->plain_http && (ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_GNUTLS_SESSION)) != NULL &&
		    ci->tls_session != NULL)
			gnutls_handshake_set_hook_function(ci->tls_session,
			    GNUTLS_HANDSHAKE_FINISHED, GNUTLS_HOOK_POST,
			    handshake_hook);
		return;
	}

	/* Closed: libmicrohttpd closes mhd_fd after this returns. */
	if ((s = *socket_context) == NULL)
		return;
	*socket_context = NULL;
	pthread_mutex_lock(&h->conn_lock);
	linger = !s->doomed && !h->closing && h->nlinger_in < h->nslots;
	fd = http_release_locked(h, s);
	if (linger)
		h->linger_in[h->nlinger_in++] = fd;
	pthread_mutex_unlock(&h->conn_lock);
	if (linger) {
		atomic_fetch_add(&http_st.lingered, 1);
		http_wake(h->guard_wake[1]);
	} else
		close(fd);
}

/* First request with a certificate (or any, in plain HTTP): the
 * connection leaves the unauthenticated budget. */
static void
admit(struct MHD_Connection *conn, struct slot *s)
{
	struct sg_http *h = s->h;

	pthread_mutex_lock(&h->conn_lock);
	if (!s->admitted) {
		if (!s->doomed) {
			struct addrcount *a = http_amap_find(h, &s->key, 0);
			if (a != NULL)
				a->unauth--;
			h->n_unauth--;
			http_publish_counts_locked(h);
		}
		s->admitted = 1;
		if (h->parked_waiting)
			http_wake(h->accept_wake[1]);
	}
	pthread_mutex_unlock(&h->conn_lock);
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    h->idle_s);
}

/* ---- requests ----------------------------------------------------------- */

static enum MHD_Result
send_response(struct MHD_Connection *conn, struct sg_http_response *resp,
    int close_after)
{
	const struct slot *s;
	struct MHD_Response *r;
	enum MHD_Result ret;
	char ra[32];
	size_t i;

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
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
	    resp->cache_control != NULL ? resp->cache_control : "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (close_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (resp->retry_after > 0) {
		snprintf(ra, sizeof(ra), "%u", resp->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (resp->location[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION,
		    resp->location);
	if (resp->set_cookie[0] != '\0')
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE,
		    resp->set_cookie);
	if (resp->log_index[0] != '\0')
		MHD_add_response_header(r, "Signgate-Log-Index",
		    resp->log_index);
	s = conn_slot(conn);
	for (i = 0; s != NULL && s->h->headers != NULL &&
	    s->h->headers[i] != NULL && s->h->headers[i + 1] != NULL; i += 2)
		MHD_add_response_header(r, s->h->headers[i],
		    s->h->headers[i + 1]);
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
simple_error(struct MHD_Connection *conn, int status, const char *title,
    const char *detail, int close_after)
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
	return send_response(conn, &resp, close_after);
}

/* The 413's detail, naming the limit that applied. */
static const char *
too_large_detail(const struct reqctx *rc, char *buf, size_t len)
{
	snprintf(buf, len, "the body exceeds the limit of %zu bytes",
	    rc->body_max);
	return buf;
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
	int64_t now = sg_mono_ms();
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

/* The first call of a request: headers only. */
static enum MHD_Result
request_start(struct sg_http *h, struct MHD_Connection *conn,
    struct slot *s, const char *url, const char *method, void **con_cls)
{
	struct reqctx *rc;
	const char *cl, *te;
	char detail[80];
	uint64_t n = 0;

	if ((rc = calloc(1, sizeof(*rc))) == NULL)
		return MHD_NO;
	*con_cls = rc;
	rc->slot = s;
	rc->authenticated = h->plain_http || h->no_client_cert ? 0 :
	    http_identify(conn, s);
	if ((rc->authenticated || h->plain_http || h->no_client_cert) &&
	    !s->admitted)
		admit(conn, s);
	rc->body_max = SG_HTTP_MAX_BODY;
	if ((rc->authenticated || h->plain_http) &&
	    strcmp(method, "POST") == 0 &&
	    strcmp(url, SG_HTTP_LARGE_BODY_PATH) == 0)
		rc->body_max = SG_HTTP_MAX_RELEASE_BODY;
	if (s->admitted)
		http_set_deadline(s, sg_mono_ms() + h->request_ms);

	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (cl != NULL && (sg_parse_u64(cl, 0, UINT64_MAX, &n) != 0 ||
	    n > rc->body_max)) {
		/* Answered now; the body is drained by the lingering
		 * close, so the client reads this instead of a reset. */
		rc->too_large = 1;
		return simple_error(conn, 413, "Payload Too Large",
		    too_large_detail(rc, detail, sizeof(detail)),
		    !s->admitted);
	}
	if (!rc->authenticated && !h->no_client_cert && (n > 0 || te != NULL))
		return simple_error(conn, 401, "Unauthorized",
		    "a client certificate issued by the client CA is "
		    "required", !s->admitted);
	return MHD_YES;
}

struct param_list {
	struct sg_http_param *v;
	size_t n, cap;
};

static enum MHD_Result
params_add(void *cls, enum MHD_ValueKind kind, const char *name,
    const char *value)
{
	struct param_list *p = cls;

	(void)kind;
	if (p->n < p->cap) {
		p->v[p->n].name = name;
		p->v[p->n].value = value;
		p->n++;
	}
	return MHD_YES;
}

/* The request's values of one kind (query arguments or headers), in the
 * order received, pointing into libmicrohttpd's memory for the request.
 * NULL when out of memory. */
static struct sg_http_param *
params_of(struct MHD_Connection *conn, enum MHD_ValueKind kind,
    size_t *ret_n)
{
	struct param_list p;
	int n = MHD_get_connection_values(conn, kind, NULL, NULL);

	p.cap = n > 0 ? (size_t)n : 0;
	p.n = 0;
	if ((p.v = calloc(p.cap + 1, sizeof(*p.v))) == NULL)
		return NULL;
	MHD_get_connection_values(conn, kind, params_add, &p);
	*ret_n = p.n;
	return p.v;
}

/* Appends one piece of the body; a chunked body over the limit is read
 * and dropped up to a bound (the request deadline bounds the time), then
 * answered. */
static enum MHD_Result
body_add(struct reqctx *rc, const char *data, size_t n)
{
	char *nb;

	if (rc->too_large || rc->len + n > rc->body_max) {
		rc->too_large = 1;
		rc->discarded += n;
		return rc->discarded > DISCARD_MAX_BYTES ? MHD_NO : MHD_YES;
	}
	if ((nb = realloc(rc->body, rc->len + n + 1)) == NULL)
		return MHD_NO;
	rc->body = nb;
	memcpy(rc->body + rc->len, data, n);
	rc->len += n;
	rc->body[rc->len] = '\0';
	return MHD_YES;
}

/* Fills req for the handler; the query and headers arrays (in *query
 * and *headers) are the caller's to free.  -1 when out of memory. */
static int
request_fill(struct MHD_Connection *conn, struct reqctx *rc,
    struct sg_http_request *req, struct sg_http_param **query,
    struct sg_http_param **headers)
{
	struct slot *s = rc->slot;

	if ((*query = params_of(conn, MHD_GET_ARGUMENT_KIND,
	    &req->nquery)) == NULL ||
	    (*headers = params_of(conn, MHD_HEADER_KIND,
	    &req->nheaders)) == NULL)
		return -1;
	req->query = *query;
	req->headers = *headers;
	req->body = rc->body != NULL ? rc->body : "";
	req->body_len = rc->len;
	req->loopback = is_loopback(conn);
	req->resumed = rc->resumed;
	req->wait_deadline_ms = rc->wait_deadline_ms;
	if (rc->authenticated) {
		req->authenticated = 1;
		snprintf(req->client_cn, sizeof(req->client_cn), "%s", s->cn);
		memcpy(req->client_sha256, s->sha256,
		    sizeof(req->client_sha256));
	}
	return 0;
}

/* The front answers for l: 503, the gateway is stopping (the work's own
 * answer, when it comes, is dropped).  With later_lock held. */
static void
later_stopping_locked(struct sg_http_later *l)
{
	char *body;

	memset(&l->resp, 0, sizeof(l->resp));
	l->resp.status = 503;
	l->resp.retry_after = 5;
	l->resp.content_type = "application/problem+json";
	if ((body = strdup("{\"type\":\"about:blank\",\"title\":"
	    "\"Service Unavailable\",\"status\":503,\"detail\":"
	    "\"the gateway is stopping\"}")) != NULL) {
		l->resp.body = body;
		l->resp.body_len = strlen(body);
	}
	l->answered = 1;
}

/* Sends the answer given to rc's later handle. */
static enum MHD_Result
later_send(struct MHD_Connection *conn, struct reqctx *rc)
{
	struct sg_http_response resp;

	pthread_mutex_lock(&later_lock);
	resp = rc->later->resp;
	rc->later->resp.body = NULL;
	pthread_mutex_unlock(&later_lock);
	return send_response(conn, &resp, !rc->slot->admitted);
}

/* The handler will answer later: suspend the connection until it does
 * (under later_lock, so that the answer cannot resume it first), or
 * answer now if it already has. */
static enum MHD_Result
later_wait(struct sg_http *h, struct MHD_Connection *conn, struct reqctx *rc,
    struct sg_http_response *resp)
{
	struct sg_http_later *l = rc->later;

	free(resp->body);
	pthread_mutex_lock(&later_lock);
	if (!l->answered && h->laters_stopped)
		later_stopping_locked(l);
	if (!l->answered) {
		l->suspended = 1;
		l->next = h->laters;
		if (h->laters != NULL)
			h->laters->prev = l;
		h->laters = l;
		MHD_suspend_connection(conn);
		pthread_mutex_unlock(&later_lock);
		return MHD_YES;
	}
	pthread_mutex_unlock(&later_lock);
	return later_send(conn, rc);
}

/* Stopping: every request still waiting for its answer gets a 503, and
 * none may wait from now on. */
static void
later_stop(struct sg_http *h)
{
	struct sg_http_later *l;

	pthread_mutex_lock(&later_lock);
	h->laters_stopped = 1;
	while ((l = h->laters) != NULL) {
		later_unlink_locked(l);
		later_stopping_locked(l);
		MHD_resume_connection(l->conn);
	}
	pthread_mutex_unlock(&later_lock);
}

/*
 * Calls the handler and answers, or suspends the connection when the
 * handler asks to long-poll (once only, as the resumed request must be
 * answered) or will answer later.
 */
static enum MHD_Result
request_answer(struct sg_http *h, struct MHD_Connection *conn,
    struct reqctx *rc, struct sg_http_request *req)
{
	struct sg_http_response resp;
	struct slot *s = rc->slot;
	enum MHD_Result ret;

	memset(&resp, 0, sizeof(resp));
	h->handler(h->ctx, req, &resp);
	if (resp.later && rc->later != NULL)
		return later_wait(h, conn, rc, &resp);
	if (resp.later) {
		free(resp.body);
		return simple_error(conn, 500, "Internal Server Error",
		    "no answer", !s->admitted);
	}
	if (resp.wait_id[0] != '\0' && !rc->resumed) {
		free(resp.body);
		rc->resumed = 1;
		rc->wait_deadline_ms = resp.wait_deadline_ms;
		if (add_waiter(h, conn, resp.wait_id,
		    resp.wait_deadline_ms) == 0)
			return MHD_YES;
		/* No room to wait: answer now with the current state. */
		memset(&resp, 0, sizeof(resp));
		req->resumed = 1;
		req->wait_deadline_ms = 0;
		h->handler(h->ctx, req, &resp);
	}
	if (resp.wait_id[0] != '\0') {
		/* Already waited once: the handler must answer. */
		free(resp.body);
		return simple_error(conn, 500, "Internal Server Error",
		    "wait not honoured", !s->admitted);
	}
	ret = send_response(conn, &resp, !s->admitted);
	free(resp.body);
	return ret;
}

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct sg_http *h = cls;
	struct reqctx *rc = *con_cls;
	struct sg_http_request req;
	struct sg_http_param *query = NULL, *headers = NULL;
	struct front_ref fr;
	struct slot *s;
	enum MHD_Result ret = MHD_NO;
	char detail[80];
	size_t n;

	if (rc == NULL) {
		if ((s = conn_slot(conn)) == NULL)
			return MHD_NO;
		return request_start(h, conn, s, url, method, con_cls);
	}
	s = rc->slot;
	if (rc->later != NULL)
		return later_send(conn, rc);
	if ((n = *upload_data_size) > 0) {
		*upload_data_size = 0;
		return body_add(rc, upload_data, n);
	}
	/* The whole request is in: no request deadline while it is handled,
	 * waits or is answered. */
	if (s->admitted)
		http_set_deadline(s, 0);
	if (rc->too_large)
		return simple_error(conn, 413, "Payload Too Large",
		    too_large_detail(rc, detail, sizeof(detail)),
		    !s->admitted);

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	fr.h = h;
	fr.conn = conn;
	fr.rc = rc;
	req.front = &fr;
	if (request_fill(conn, rc, &req, &query, &headers) == 0)
		ret = request_answer(h, conn, rc, &req);
	free(query);
	free(headers);
	return ret;
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct sg_http *h = cls;
	struct reqctx *rc = *con_cls;

	if (rc == NULL)
		return;
	/* Keep-alive: the next request within the idle time plus the
	 * request time (libmicrohttpd's inactivity timeout closes idle
	 * connections sooner; this bounds one that trickles). */
	if (rc->slot != NULL && rc->slot->admitted)
		http_set_deadline(rc->slot, sg_mono_ms() + h->idle_ms +
		    h->request_ms);
	if (rc->later != NULL) {
		pthread_mutex_lock(&later_lock);
		later_unref_locked(rc->later);
		pthread_mutex_unlock(&later_lock);
	}
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

/* ---- start and stop ----------------------------------------------------- */

static int
open_listener(struct sg_http *h, const struct sg_http_config *cfg,
    char *errbuf, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd, one = 1;

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
		return SG_ERR_INVALID;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6,
	    IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (struct sockaddr *)&ss, sslen) != 0 ||
	    listen(fd, SOMAXCONN) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(errbuf, errlen, "cannot listen on %s port %u: %s",
		    cfg->address, cfg->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return SG_ERR_IO;
	}
	h->listen_fd = fd;
	h->port = ntohs(ss.ss_family == AF_INET ?
	    ((struct sockaddr_in *)&ss)->sin_port :
	    ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static void
set_limits(struct sg_http *h, const struct sg_http_config *cfg)
{
	h->plain_http = cfg->plain_http;
	h->no_client_cert = cfg->no_client_cert;
	h->headers = cfg->headers;
	h->conn_limit = cfg->connection_limit;
	h->per_ip_limit = cfg->per_ip_connection_limit;
	h->unauth_limit = cfg->unauth_connection_limit > 0 ?
	    cfg->unauth_connection_limit : cfg->connection_limit;
	h->per_ip_unauth_limit = cfg->per_ip_unauth_limit;
	h->handshake_ms = (int64_t)cfg->handshake_timeout * 1000;
	h->first_request_ms = (int64_t)cfg->first_request_timeout * 1000;
	h->request_ms = (int64_t)cfg->request_timeout * 1000;
	h->idle_s = cfg->connection_timeout;
	h->idle_ms = (int64_t)cfg->connection_timeout * 1000;
	/* Room for the counted connections plus those shut down and not
	 * yet closed by libmicrohttpd. */
	h->nslots = (size_t)cfg->connection_limit * 2 + 64;
}

static int
make_pipe(int p[2])
{
	return pipe2(p, O_NONBLOCK | O_CLOEXEC);
}

/* A front with its tables, not started yet; sg_http_stop() frees it. */
static int
http_new(const struct sg_http_config *cfg, sg_http_handler handler,
    void *ctx, struct sg_http **ret, char *errbuf, size_t errlen)
{
	struct sg_http *h;
	size_t i;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return SG_ERR_NOMEM;
	*ret = h;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	pthread_mutex_init(&h->conn_lock, NULL);
	h->handler = handler;
	h->ctx = ctx;
	h->listen_fd = -1;
	h->accept_wake[0] = h->accept_wake[1] = -1;
	h->guard_wake[0] = h->guard_wake[1] = -1;
	set_limits(h, cfg);
	for (h->amap_cap = 16; h->amap_cap < h->nslots * 4; h->amap_cap *= 2)
		;
	if ((h->slots = calloc(h->nslots, sizeof(*h->slots))) == NULL ||
	    (h->amap = calloc(h->amap_cap, sizeof(*h->amap))) == NULL ||
	    (h->linger_in = calloc(h->nslots, sizeof(int))) == NULL) {
		snprintf(errbuf, errlen, "out of memory");
		return SG_ERR_NOMEM;
	}
	for (i = 0; i < h->nslots; i++)
		h->slots[i].own_fd = h->slots[i].mhd_fd = -1;
	if (make_pipe(h->accept_wake) != 0 || make_pipe(h->guard_wake) != 0) {
		snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
		return SG_ERR_IO;
	}
	return 0;
}

/*
 * Starts libmicrohttpd.  Its own limits never bind: the acceptor's do.
 * Its default inactivity timeout is only a backstop, a second after the
 * first request's deadline (which the guard enforces, and counts);
 * authenticated connections get connection_timeout.
 */
static int
start_mhd(struct sg_http *h, const struct sg_http_config *cfg,
    char *errbuf, size_t errlen)
{
	unsigned int flags;
	enum MHD_OPTION tls;
	int r;

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	if (!cfg->plain_http) {
		flags |= MHD_USE_TLS;
		if ((r = http_read_tls_files(h, cfg, errbuf, errlen)) != 0)
			return r;
	}
	/* In plain HTTP the TLS options are not passed: the option list
	 * ends where they would start. */
	tls = cfg->plain_http ? MHD_OPTION_END : MHD_OPTION_HTTPS_MEM_CERT;
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, h,
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->first_request_timeout + 1,
	    MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)(h->nslots * (cfg->threads + 1)),
	    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_cb, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	    tls, h->cert_pem,
	    MHD_OPTION_HTTPS_MEM_KEY, h->key_pem,
	    MHD_OPTION_HTTPS_PRIORITIES,
	    "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"
	    "%SERVER_PRECEDENCE",
	    /* Without a client CA no certificate is asked for: the list
	     * ends here. */
	    h->ca_pem != NULL ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END,
	    h->ca_pem,
	    MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(errbuf, errlen, "cannot start the HTTP server on %s "
		    "port %u (bad TLS certificate/key?)", cfg->address,
		    cfg->port);
		return SG_ERR_IO;
	}
	return 0;
}

/* Starts the timer, the guard and the acceptor, in that order. */
static int
start_threads(struct sg_http *h, char *errbuf, size_t errlen)
{
	if (pthread_create(&h->timer, NULL, timer_main, h) != 0) {
		snprintf(errbuf, errlen, "cannot start the timer thread");
		return SG_ERR_INTERNAL;
	}
	h->timer_started = 1;
	if (pthread_create(&h->guard, NULL, http_guard_main, h) != 0) {
		snprintf(errbuf, errlen, "cannot start the guard thread");
		return SG_ERR_INTERNAL;
	}
	h->guard_started = 1;
	if (pthread_create(&h->acceptor, NULL, http_acceptor_main, h) != 0) {
		snprintf(errbuf, errlen, "cannot start the acceptor thread");
		return SG_ERR_INTERNAL;
	}
	h->acceptor_started = 1;
	return 0;
}

int
sg_http_start(const struct sg_http_config *cfg, sg_http_handler handler,
    void *ctx, struct sg_http **ret, char *errbuf, size_t errlen)
{
	struct sg_http *h = NULL;
	int r;

	if ((r = http_new(cfg, handler, ctx, &h, errbuf, errlen)) != 0 ||
	    (r = open_listener(h, cfg, errbuf, errlen)) != 0 ||
	    (r = start_mhd(h, cfg, errbuf, errlen)) != 0 ||
	    (r = start_threads(h, errbuf, errlen)) != 0) {
		sg_http_stop(h);
		return r;
	}
	*ret = h;
	return 0;
}

uint16_t
sg_http_port(const struct sg_http *h)
{
	return h->port;
}

void
sg_http_stop(struct sg_http *h)
{
	size_t i;

	if (h == NULL)
		return;
	/* No new connections. */
	if (h->acceptor_started) {
		pthread_mutex_lock(&h->conn_lock);
		h->acceptor_stop = 1;
		pthread_mutex_unlock(&h->conn_lock);
		http_wake(h->accept_wake[1]);
		pthread_join(h->acceptor, NULL);
	}
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	/* Long-polls answered. */
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	resume_locked(h, NULL, 1);
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	later_stop(h);
	if (h->timer_started)
		pthread_join(h->timer, NULL);
	/* Every connection closed, without lingering. */
	pthread_mutex_lock(&h->conn_lock);
	h->closing = 1;
	pthread_mutex_unlock(&h->conn_lock);
	if (h->mhd != NULL)
		MHD_stop_daemon(h->mhd);
	if (h->guard_started) {
		pthread_mutex_lock(&h->conn_lock);
		h->guard_stop = 1;
		pthread_mutex_unlock(&h->conn_lock);
		http_wake(h->guard_wake[1]);
		pthread_join(h->guard, NULL);
	}
	/* Slots libmicrohttpd never started (it closed their mhd_fd). */
	for (i = 0; h->slots != NULL && i < h->nslots; i++)
		if (h->slots[i].state != SLOT_FREE) {
			int fd = http_release_locked(h, &h->slots[i]);
			if (fd >= 0)
				close(fd);
		}
	for (i = 0; h->linger_in != NULL && i < h->nlinger_in; i++)
		close(h->linger_in[i]);
	for (i = 0; i < 2; i++) {
		if (h->accept_wake[i] >= 0)
			close(h->accept_wake[i]);
		if (h->guard_wake[i] >= 0)
			close(h->guard_wake[i]);
	}
	free(h->slots);
	free(h->amap);
	free(h->linger_in);
	free(h->cert_pem);
	sg_freezero(h->key_pem, h->key_len);
	free(h->ca_pem);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->conn_lock);
	free(h);
}

