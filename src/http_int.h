/*
 * The front's private declarations, shared by its modules:
 *  - http.c        the connection machinery: libmicrohttpd, its
 *                  notifications, requests and long-polls, start and stop;
 *  - http_conn.c   slots and their per-address counts, deadlines and the
 *                  guard thread (reaping, lingering close);
 *  - http_accept.c admission: the acceptor thread, the limits, displacing
 *                  and parking;
 *  - http_tls.c    TLS material (loading and checking) and the client's
 *                  identity.
 * The design is described atop each of them.  Nothing here is part of the
 * front's interface (sg_http.h).
 */
#ifndef SG_HTTP_INT_H
#define SG_HTTP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "sg_http.h"
#include "sg_limits.h"

#define MAX_WAITERS 4096
#define EVICT_IDLE_MS 1000      /* displaced: handshake done, no request */
#define PARK_MAX_MS 2000        /* a waiting new connection, then refused */
#define LINGER_MS 5000          /* lingering close: time ... */
#define LINGER_MAX_BYTES (16u << 20)    /* ... and bytes read and dropped */
#define DISCARD_MAX_BYTES (16u << 20)   /* an over-long chunked body */
#define GUARD_TICK_MS 100
#define PENDING_CHECK_MS 1000   /* a slot not started yet: still MHD's? */

/* Per-address key: IPv4 (as v4-mapped) or the /64 of an IPv6 address. */
struct addrkey {
	uint8_t b[16];
};

/* Counted connections of one address (a slot in an open-addressing map;
 * entries whose counts fall to zero stay until the map is rebuilt). */
struct addrcount {
	struct addrkey key;
	unsigned total, unauth;
	int used;
};

enum slot_state { SLOT_FREE, SLOT_PENDING, SLOT_LIVE };

struct slot {
	enum slot_state state;
	int mhd_fd;                 /* owned by libmicrohttpd */
	int own_fd;                 /* ours: see the design comment */
	struct addrkey key;
	int64_t accepted_ms;
	int64_t handshake_ms;       /* when the handshake ended, 0 not yet */
	int doomed;                 /* shut down, not counted any more */
	int handshake_done;
	int admitted;               /* verified certificate, or plain HTTP */
	int64_t deadline_ms;        /* admitted: the current phase's, 0 none */
	struct sg_http *h;
	/* Identity cache: only the connection's polling thread touches it. */
	int id_state;               /* 0 none yet, 1 verified, -1 refused */
	unsigned char *der;
	size_t der_len;
	char cn[256];
	uint8_t sha256[32];
};


struct waiter {
	struct MHD_Connection *conn;
	char id[SG_REQUEST_ID_SIZE];
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
	int plain_http;
	int no_client_cert;             /* admitted by the first request */
	const char *const *headers;     /* added to every answer */

	/* Limits, from the configuration. */
	unsigned conn_limit, unauth_limit, per_ip_limit, per_ip_unauth_limit;
	int64_t handshake_ms, first_request_ms, request_ms, idle_ms;
	unsigned idle_s;

	/* Requests answered later (sg_http_later), while suspended; the
	 * list and every handle are guarded by the one later_lock. */
	struct sg_http_later *laters;
	int laters_stopped;            /* none may wait any more */

	/* Long-poll waiters. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct waiter waiters[MAX_WAITERS];
	size_t nwaiters;
	int stopping;
	pthread_t timer;
	int timer_started;

	/* Connections: everything below is guarded by conn_lock. */
	pthread_mutex_t conn_lock;
	struct slot *slots;
	size_t nslots;
	unsigned n_total, n_unauth;     /* counted: live or pending, not doomed */
	struct addrcount *amap;         /* the same per address */
	size_t amap_cap, amap_used;
	int parked_waiting;             /* the acceptor has parked connections */
	int closing;                    /* stopping: no lingering any more */
	int *linger_in;                 /* handed to the guard */
	size_t nlinger_in;

	int listen_fd;
	int accept_wake[2], guard_wake[2];
	int acceptor_stop, guard_stop;
	pthread_t acceptor, guard;
	int acceptor_started, guard_started;
};


/* The front's counters (sg_http_stats); there is one front. */
struct http_counters {
	_Atomic uint64_t verifications, accepted, refused, evicted,
	    reaped_handshake, reaped_first_request, reaped_request, lingered;
	_Atomic unsigned open_unauth, open_auth;
};
extern struct http_counters http_st;

/* http_conn.c: conn_lock held for those named _locked. */
void http_wake(int fd);
void http_drain_pipe(int fd);
size_t http_amap_hash(const struct addrkey *k);
struct addrcount *http_amap_find(struct sg_http *h, const struct addrkey *k,
    int create);
void http_publish_counts_locked(struct sg_http *h);
void http_count_locked(struct sg_http *h, struct slot *s);
void http_doom_locked(struct sg_http *h, struct slot *s);
int http_release_locked(struct sg_http *h, struct slot *s);
void http_set_deadline(struct slot *s, int64_t deadline_ms);
void *http_guard_main(void *arg);

/* http_accept.c */
void *http_acceptor_main(void *arg);

/* http_tls.c */
int http_read_tls_files(struct sg_http *h, const struct sg_http_config *cfg,
    char *errbuf, size_t errlen);
int http_identify(struct MHD_Connection *conn, struct slot *s);

#endif
