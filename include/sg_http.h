/*
 * The network front: libmicrohttpd over GnuTLS with mandatory client
 * certificates.  libmicrohttpd only *asks* for a client certificate, so this
 * module verifies the peer's chain (and the clientAuth purpose) once per
 * connection, again only if the peer's certificate changes, and hands the
 * handler nothing but verified identity facts.
 *
 * It accepts connections itself: peers that have not shown a certificate
 * yet are capped globally and per address and live only a few seconds
 * (handshake and first-request deadlines); they may make one request (the
 * public log), then the connection closes.  See the design comment in
 * http.c.  A second front may run without client certificates
 * (no_client_cert: the officers' console), under the same limits.
 *
 * Bodies are collected up to SG_HTTP_MAX_BODY (SG_HTTP_MAX_RELEASE_BODY for
 * an authenticated POST to SG_HTTP_LARGE_BODY_PATH); larger ones get 413 without
 * reaching the handler (and the client reads it: closes linger).  A handler
 * may ask to wait (long-poll): the connection is suspended, not a thread,
 * and is resumed by sg_http_notify() or when its deadline passes; the
 * handler is then called again with `resumed` set.
 */
#ifndef SG_HTTP_H
#define SG_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "sg_limits.h"

#define SG_HTTP_MAX_BODY (64 * 1024)
/* The one path whose POST body may be larger (a release's manifest of up
 * to SG_RELEASE_MAX artifacts), from an authenticated peer only. */
#define SG_HTTP_LARGE_BODY_PATH "/v1/releases"
#define SG_HTTP_MAX_RELEASE_BODY (4 * 1024 * 1024)

struct sg_http;

/* A query argument or a header, as received (percent-decoded). */
struct sg_http_param {
	const char *name;
	const char *value;             /* NULL: a query name without '=' */
};

/* A request as the handler sees it: no socket, nothing to look up
 * elsewhere, so that the API can be driven without one (tests, fuzzing).
 * Everything it points to lives until the handler returns. */
struct sg_http_request {
	const char *method;
	const char *path;              /* decoded, without the query */
	const struct sg_http_param *query;   /* in the order received */
	size_t nquery;
	const struct sg_http_param *headers; /* in the order received */
	size_t nheaders;
	const char *body;              /* NUL-terminated copy */
	size_t body_len;
	int authenticated;             /* a verified client certificate */
	char client_cn[256];           /* its subject CN ("" if none) */
	uint8_t client_sha256[32];     /* SHA-256 of its DER */
	int loopback;                  /* the peer is 127.0.0.0/8 or ::1 */
	int resumed;                   /* called again after a wait */
	int64_t wait_deadline_ms;      /* set on resume: the deadline asked */
	void *front;                   /* the front's; NULL without one */
};

struct sg_http_response {
	int status;
	const char *content_type;      /* static string */
	char *body;                    /* malloc'd; freed by the front */
	size_t body_len;
	unsigned retry_after;          /* seconds, 0 = no header */
	char location[128];            /* "" = no header */
	char log_index[24];            /* Signgate-Log-Index; "" = none */
	/* To long-poll: set wait_id and wait_deadline_ms instead of a body. */
	char wait_id[SG_REQUEST_ID_SIZE];
	int64_t wait_deadline_ms;      /* CLOCK_MONOTONIC milliseconds */
	/* To answer later: set after sg_http_later() instead of a body. */
	int later;
	/* A Set-Cookie header, or "" (a front without client certificates:
	 * the console's session). */
	char set_cookie[192];
	/* Cache-Control (static string); NULL: "no-store". */
	const char *cache_control;
};

typedef void (*sg_http_handler)(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp);

struct sg_http_config {
	const char *address;
	uint16_t port;
	int plain_http;
	const char *cert_file, *key_file, *client_ca_file;
	unsigned threads;
	unsigned connection_limit;
	unsigned per_ip_connection_limit;     /* 0: none */
	unsigned connection_timeout;          /* keep-alive idle, seconds */
	/* Connections without a verified client certificate (yet). */
	unsigned unauth_connection_limit;     /* 0: connection_limit */
	unsigned per_ip_unauth_limit;         /* 0: none */
	unsigned handshake_timeout;           /* seconds from accept */
	unsigned first_request_timeout;       /* seconds from accept */
	unsigned request_timeout;             /* headers to end of body */
	/*
	 * A front that asks for no client certificate (client_ca_file NULL,
	 * TLS required): every connection starts unauthenticated, under the
	 * same caps and deadlines, and is admitted by its first request
	 * (the handler authenticates by other means, the console's session
	 * cookie); its requests may carry a body.
	 */
	int no_client_cert;
	/* Headers added to every answer, the front's own errors included:
	 * name, value, ..., NULL.  NULL: none. */
	const char *const *headers;
};

/* Counters of the front, for /metrics. */
struct sg_http_stats {
	uint64_t client_verifications;  /* certificate chains verified */
	uint64_t accepted;
	uint64_t refused;               /* at the limits, or no resources */
	uint64_t evicted;               /* unauthenticated, to make room */
	uint64_t reaped_handshake;      /* closed at a deadline: */
	uint64_t reaped_first_request;
	uint64_t reaped_request;
	uint64_t lingered;              /* closes that drained the peer */
	unsigned open_unauthenticated;
	unsigned open_authenticated;
};

int sg_http_start(const struct sg_http_config *cfg, sg_http_handler handler,
    void *ctx, struct sg_http **ret, char *errbuf, size_t errlen);
/* Resumes every waiting connection, then stops.  NULL is fine. */
void sg_http_stop(struct sg_http *h);
/* The port actually bound (useful with port 0). */
uint16_t sg_http_port(const struct sg_http *h);
/* Wakes the connections waiting on this request id. */
void sg_http_notify(struct sg_http *h, const char *id);
/*
 * Answering later.  A handler that starts work another thread finishes
 * (the signer's answer, a commit) takes a handle with sg_http_later() and
 * returns with resp->later set and no body; the connection then holds no
 * thread until the work calls sg_http_answer() with the response, exactly
 * once, from any thread (the body is taken over).  The answer may come
 * before the handler has returned.  sg_http_later() returns NULL when the
 * request did not come through the front (a test driving the API
 * directly): the handler then answers at once.  An answer that comes
 * after the front stopped (it answered 503 meanwhile) is dropped.  How
 * many requests wait so is bounded by the connections.
 */
struct sg_http_later;
struct sg_http_later *sg_http_later(const struct sg_http_request *req);
void sg_http_answer(struct sg_http_later *l, struct sg_http_response *resp);

/*
 * Loads the TLS material of cfg as sg_http_start() does, without
 * listening: the certificate and the private key must load together (the
 * key is the certificate's), the client CA must hold a certificate.  Each
 * problem goes to report, naming the file; returns how many there were.
 */
typedef void (*sg_http_report_fn)(void *arg, const char *msg);
unsigned sg_http_check_tls(const struct sg_http_config *cfg,
    sg_http_report_fn report, void *arg);

/* The process's front counters (every front's, summed: the API's and the
 * console's). */
void sg_http_stats(struct sg_http_stats *st);

#endif
