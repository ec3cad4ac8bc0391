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
 * notified or when its deadline passes.  Every suspended connection is
 * resumed before the daemon stops.
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
 * Admission.  A connection is unauthenticated until its first request
 * shows a verified client certificate.  The acceptor keeps, globally and
 * per address (IPv4, or IPv6 /64), a cap on all connections
 * (connection_limit, per_ip_connection_limit) and on unauthenticated ones
 * (unauthenticated_connection_limit, per_ip_unauthenticated_limit), in
 * counters kept under conn_lock (per address in a small open-addressing
 * map).  A new connection over a cap makes room by closing an
 * unauthenticated connection of that scope: the oldest whose handshake
 * ended EVICT_IDLE_MS ago without a request (a real client asks at once),
 * else the oldest still in its handshake after two thirds of its handshake
 * deadline (a real handshake on a loaded machine takes less).  If there
 * is none, the new one waits (parked in the acceptor, no TLS work done, at
 * most PARK_MAX_MS), addresses with the fewest unauthenticated connections
 * first, and is refused only after that; when the waiting room is full,
 * the address with the most waiting gives up a place.  So a flood of slow
 * peers without a certificate cannot lock anyone out: it only ever
 * displaces itself, even on the address of a real client, and a burst of
 * real clients waits a moment instead of failing.  (A flood of new
 * connections faster than a real handshake can still crowd one address;
 * that is a rate to limit in front of the daemon.)
 *
 * Deadlines (enforced by the guard, whatever the peer sends): the TLS
 * handshake within handshake_timeout of the accept, the first request's
 * headers within first_request_timeout; a connection that has not shown a
 * certificate by then is closed, and one that reads without a certificate
 * (the public log) is answered once and closed within the same deadline.
 * Once authenticated, each request's headers-to-end-of-body must take at
 * most request_timeout, and keep-alive idle time is libmicrohttpd's
 * per-connection inactivity timeout (connection_timeout).
 *
 * Identity.  libmicrohttpd (with HTTPS_MEM_TRUST) requests a client
 * certificate but completes the handshake without one.  The first request
 * of a connection verifies the peer's chain against the client CA with the
 * TLS-client key purpose (gnutls_certificate_verify_peers) and caches the
 * result, subject CN and SHA-256 in the slot, with a copy of the
 * certificate.  Later requests on that connection compare the peer's
 * certificate with the copy (a memcmp) and verify again only if it
 * differs.  There is no TLS session resumption (libmicrohttpd sets up
 * neither a session cache nor tickets), and renegotiation closes the
 * connection (GNUTLS_E_REHANDSHAKE is a hard error there); verification
 * is per connection in any case, so a resumed session could not bypass it.
 * A request without a verified certificate is passed to the handler as
 * unauthenticated; the API refuses it (401) except for the public
 * endpoints.  One that carries a body is refused here at once (401), as no
 * public endpoint takes one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

struct parked {
	int fd;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct addrkey key;
	int64_t since_ms;           /* accepted */
	unsigned share;             /* its address's unauthenticated, now */
};

struct lingering {
	int fd;
	int64_t until_ms;
	size_t bytes;
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

	/* Limits, from the configuration. */
	unsigned conn_limit, unauth_limit, per_ip_limit, per_ip_unauth_limit;
	int64_t handshake_ms, first_request_ms, request_ms, idle_ms;
	unsigned idle_s;

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

struct reqctx {
	struct slot *slot;
	char *body;
	size_t len;
	size_t discarded;
	int too_large;
	int resumed;
	int authenticated;
	int64_t wait_deadline_ms;
};

static _Atomic uint64_t st_verifications, st_accepted, st_refused,
    st_evicted, st_reaped_handshake, st_reaped_first_request,
    st_reaped_request, st_lingered;
static _Atomic unsigned st_open_unauth, st_open_auth;

void
sg_http_stats(struct sg_http_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->client_verifications = atomic_load(&st_verifications);
	st->accepted = atomic_load(&st_accepted);
	st->refused = atomic_load(&st_refused);
	st->evicted = atomic_load(&st_evicted);
	st->reaped_handshake = atomic_load(&st_reaped_handshake);
	st->reaped_first_request = atomic_load(&st_reaped_first_request);
	st->reaped_request = atomic_load(&st_reaped_request);
	st->lingered = atomic_load(&st_lingered);
	st->open_unauthenticated = atomic_load(&st_open_unauth);
	st->open_authenticated = atomic_load(&st_open_auth);
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

static void
addr_key(const struct sockaddr_storage *ss, struct addrkey *k)
{
	memset(k, 0, sizeof(*k));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		k->b[10] = k->b[11] = 0xff;
		memcpy(&k->b[12], &in->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			memcpy(k->b, &in6->sin6_addr, 16);
		else
			memcpy(k->b, &in6->sin6_addr, 8);
	}
}

static void
wake(int fd)
{
	ssize_t r;

	r = write(fd, "x", 1);
	(void)r;        /* a full pipe already wakes the reader */
}

static void
drain_pipe(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* ---- slots (conn_lock held) ------------------------------------------- */

static size_t
amap_hash(const struct addrkey *k)
{
	uint64_t x = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < sizeof(k->b); i++)
		x = (x ^ k->b[i]) * 1099511628211ULL;
	return (size_t)x;
}

static struct addrcount *
amap_find(struct sg_http *h, const struct addrkey *k, int create)
{
	size_t i = amap_hash(k) & (h->amap_cap - 1);

	for (;; i = (i + 1) & (h->amap_cap - 1)) {
		struct addrcount *a = &h->amap[i];
		if (!a->used) {
			if (!create)
				return NULL;
			a->used = 1;
			a->key = *k;
			h->amap_used++;
			return a;
		}
		if (memcmp(&a->key, k, sizeof(*k)) == 0)
			return a;
	}
}

/* Drops the entries counting nothing.  At most nslots addresses are
 * counted and the map has four times that room, so it never fills. */
static void
amap_rebuild(struct sg_http *h)
{
	struct addrcount *a;
	size_t i;

	memset(h->amap, 0, h->amap_cap * sizeof(*h->amap));
	h->amap_used = 0;
	for (i = 0; i < h->nslots; i++) {
		struct slot *s = &h->slots[i];
		if (s->state == SLOT_FREE || s->doomed)
			continue;
		a = amap_find(h, &s->key, 1);
		a->total++;
		if (!s->admitted)
			a->unauth++;
	}
}

static struct addrcount *
amap_add(struct sg_http *h, const struct addrkey *k)
{
	if (amap_find(h, k, 0) == NULL && h->amap_used + 1 > h->amap_cap / 2)
		amap_rebuild(h);
	return amap_find(h, k, 1);
}

static void
publish_counts_locked(struct sg_http *h)
{
	atomic_store(&st_open_unauth, h->n_unauth);
	atomic_store(&st_open_auth, h->n_total - h->n_unauth);
}

/* The slot starts counting against the limits, unauthenticated. */
static void
count_locked(struct sg_http *h, struct slot *s)
{
	struct addrcount *a = amap_add(h, &s->key);

	a->total++;
	a->unauth++;
	h->n_total++;
	h->n_unauth++;
	publish_counts_locked(h);
}

/* The slot stops counting against the limits. */
static void
uncount_locked(struct sg_http *h, struct slot *s)
{
	struct addrcount *a;

	if (s->doomed)
		return;
	a = amap_find(h, &s->key, 0);
	h->n_total--;
	if (a != NULL)
		a->total--;
	if (!s->admitted) {
		h->n_unauth--;
		if (a != NULL)
			a->unauth--;
	}
	publish_counts_locked(h);
}

/* Shuts the socket down; libmicrohttpd closes the connection when it sees
 * that, and the closed notification frees the slot. */
static void
doom_locked(struct sg_http *h, struct slot *s)
{
	if (s->doomed)
		return;
	uncount_locked(h, s);
	s->doomed = 1;
	(void)shutdown(s->own_fd, SHUT_RDWR);
	if (h->parked_waiting)
		wake(h->accept_wake[1]);
}

/* Frees the slot; returns its own_fd for the caller to close or linger. */
static int
release_locked(struct sg_http *h, struct slot *s)
{
	int fd = s->own_fd;

	uncount_locked(h, s);
	free(s->der);
	memset(s, 0, sizeof(*s));
	s->state = SLOT_FREE;
	s->own_fd = s->mhd_fd = -1;
	if (h->parked_waiting)
		wake(h->accept_wake[1]);
	return fd;
}

static int64_t
slot_deadline(const struct sg_http *h, const struct slot *s)
{
	if (!s->admitted)
		return s->accepted_ms + (s->handshake_done ?
		    h->first_request_ms : h->handshake_ms);
	return s->deadline_ms;
}

static void
set_deadline(struct slot *s, int64_t deadline_ms)
{
	struct sg_http *h = s->h;

	pthread_mutex_lock(&h->conn_lock);
	s->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&h->conn_lock);
}

/*
 * The unauthenticated connection to displace (of key, or of anyone when
 * key is NULL): first one whose handshake ended at least EVICT_IDLE_MS
 * ago without a request (a real client asks at once), oldest first; else
 * the oldest still in its handshake for two thirds of the handshake
 * deadline.  A younger one is never displaced.
 */
static struct slot *
victim_locked(struct sg_http *h, const struct addrkey *key, int64_t now)
{
	struct slot *s, *idle = NULL, *slow = NULL;
	size_t i;

	for (i = 0; i < h->nslots; i++) {
		s = &h->slots[i];
		if (s->state == SLOT_FREE || s->doomed || s->admitted ||
		    (key != NULL && memcmp(&s->key, key, sizeof(*key)) != 0))
			continue;
		if (s->handshake_done) {
			if (now - s->handshake_ms >= EVICT_IDLE_MS &&
			    (idle == NULL || s->accepted_ms < idle->accepted_ms))
				idle = s;
		} else if (now - s->accepted_ms >= h->handshake_ms * 2 / 3 &&
		    (slow == NULL || s->accepted_ms < slow->accepted_ms))
			slow = s;
	}
	return idle != NULL ? idle : slow;
}

enum admit { ADMIT, PARK_ADDR, PARK_ALL, REFUSE };

/* May a new connection from key count now?  Displaces one if needed. */
static enum admit
admit_locked(struct sg_http *h, const struct addrkey *key, int64_t now)
{
	struct addrcount *a = amap_find(h, key, 0);
	unsigned a_total = a != NULL ? a->total : 0;
	unsigned a_unauth = a != NULL ? a->unauth : 0;
	struct slot *v;

	if ((h->per_ip_limit > 0 && a_total >= h->per_ip_limit) ||
	    (h->per_ip_unauth_limit > 0 &&
	    a_unauth >= h->per_ip_unauth_limit)) {
		if ((v = victim_locked(h, key, now)) == NULL)
			return PARK_ADDR;
		doom_locked(h, v);
		atomic_fetch_add(&st_evicted, 1);
	}
	if (h->n_total >= h->conn_limit || h->n_unauth >= h->unauth_limit) {
		if ((v = victim_locked(h, NULL, now)) == NULL)
			return PARK_ALL;
		doom_locked(h, v);
		atomic_fetch_add(&st_evicted, 1);
	}
	return ADMIT;
}

static struct slot *
free_slot_locked(struct sg_http *h)
{
	size_t i;

	for (i = 0; i < h->nslots; i++)
		if (h->slots[i].state == SLOT_FREE)
			return &h->slots[i];
	return NULL;
}

/* ---- acceptor ------------------------------------------------------------ */

static void
refuse(int fd)
{
	close(fd);
	atomic_fetch_add(&st_refused, 1);
}

/*
 * Admits, parks or refuses one accepted socket.  Returns PARK_ADDR or
 * PARK_ALL (which cap is full) if the caller must keep it waiting, else
 * ADMIT (admitted or refused: the socket is no longer the caller's).
 */
static enum admit
place(struct sg_http *h, struct parked *pk, int parked)
{
	struct slot *s;
	enum admit a;
	int own = -1, stale, fd = pk->fd;
	size_t i;
	int64_t now = sg_mono_ms();

	pthread_mutex_lock(&h->conn_lock);
	/* accept() handed out fd, so a pending slot with that number was
	 * closed by libmicrohttpd without a notification. */
	for (i = 0; !parked && i < h->nslots; i++)
		if (h->slots[i].state == SLOT_PENDING &&
		    h->slots[i].mhd_fd == fd) {
			stale = release_locked(h, &h->slots[i]);
			if (stale >= 0)
				close(stale);
		}
	if ((s = free_slot_locked(h)) == NULL)
		a = REFUSE;
	else
		a = admit_locked(h, &pk->key, now);
	if ((a == PARK_ADDR || a == PARK_ALL) &&
	    (!parked || now - pk->since_ms < PARK_MAX_MS)) {
		h->parked_waiting = 1;
		pthread_mutex_unlock(&h->conn_lock);
		return a;
	}
	if (a == ADMIT && (own = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		a = REFUSE;
	if (a != ADMIT) {
		pthread_mutex_unlock(&h->conn_lock);
		refuse(fd);
		return ADMIT;
	}
	s->key = pk->key;
	count_locked(h, s);             /* before it is in use: see rebuild */
	s->state = SLOT_PENDING;
	s->mhd_fd = fd;
	s->own_fd = own;
	s->accepted_ms = pk->since_ms;  /* time parked counts */
	s->h = h;
	pthread_mutex_unlock(&h->conn_lock);
	atomic_fetch_add(&st_accepted, 1);

	/* The polling thread may start the connection before this returns:
	 * the slot is ready.  On failure libmicrohttpd closed fd, and no
	 * notification will come for it. */
	if (MHD_add_connection(h->mhd, fd, (struct sockaddr *)&pk->ss,
	    pk->sslen) != MHD_YES) {
		pthread_mutex_lock(&h->conn_lock);
		own = release_locked(h, s);
		pthread_mutex_unlock(&h->conn_lock);
		close(own);
		atomic_fetch_add(&st_refused, 1);
	}
	return ADMIT;
}

/* Parked connections of addresses with fewer unauthenticated connections
 * go first, then the oldest: a flood from some addresses cannot queue
 * ahead of everyone else. */
static void
order_parked(struct sg_http *h, struct parked *pk, size_t n)
{
	struct addrcount *a;
	struct parked t;
	size_t i, j;

	pthread_mutex_lock(&h->conn_lock);
	for (i = 0; i < n; i++) {
		a = amap_find(h, &pk[i].key, 0);
		pk[i].share = a != NULL ? a->unauth : 0;
	}
	pthread_mutex_unlock(&h->conn_lock);
	for (i = 1; i < n; i++) {
		t = pk[i];
		for (j = i; j > 0 && (pk[j - 1].share > t.share ||
		    (pk[j - 1].share == t.share &&
		    pk[j - 1].since_ms > t.since_ms)); j--)
			pk[j] = pk[j - 1];
		pk[j] = t;
	}
}

static int
key_in(const struct addrkey *keys, size_t n, const struct addrkey *k)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (memcmp(&keys[i], k, sizeof(*k)) == 0)
			return 1;
	return 0;
}

/* Per-address counts of the waiting room, for make_room(). */
struct wcount {
	struct addrkey key;
	size_t n, newest;
	int used;
};

/*
 * The waiting room is full: refuses the newest waiting connection of the
 * address with the most waiting, if that is more than `mine` + 1 (the
 * newcomer's address), so that no set of addresses keeps others out.
 * wc has room for wcap (a power of two, at least twice npk) entries.
 */
static int
make_room(struct parked *pk, size_t *npk, size_t mine, struct wcount *wc,
    size_t wcap)
{
	struct wcount *w, *most = NULL;
	size_t i, j;

	memset(wc, 0, wcap * sizeof(*wc));
	for (i = 0; i < *npk; i++) {
		for (j = amap_hash(&pk[i].key) & (wcap - 1);; j = (j + 1) &
		    (wcap - 1))
			if (!wc[j].used || memcmp(&wc[j].key, &pk[i].key,
			    sizeof(pk[i].key)) == 0)
				break;
		w = &wc[j];
		if (!w->used) {
			w->used = 1;
			w->key = pk[i].key;
			w->newest = i;
		}
		w->n++;
		if (pk[i].since_ms >= pk[w->newest].since_ms)
			w->newest = i;
		if (most == NULL || w->n > most->n)
			most = w;
	}
	if (most == NULL || most->n <= mine + 1)
		return 0;
	i = most->newest;
	refuse(pk[i].fd);
	pk[i] = pk[--*npk];
	return 1;
}

static void *
acceptor_main(void *arg)
{
	struct sg_http *h = arg;
	struct parked *pk, np;
	struct wcount *wc;
	struct addrkey *full;           /* addresses found full this pass */
	size_t npk = 0, cap = h->unauth_limit, wcap, i, j, same, nfull;
	unsigned per_addr = h->per_ip_unauth_limit > 0 ?
	    h->per_ip_unauth_limit : h->unauth_limit;
	enum admit a;
	int backoff = 0, all_full;

	for (wcap = 16; wcap < cap * 2; wcap *= 2)
		;
	pk = calloc(cap, sizeof(*pk));
	wc = calloc(wcap, sizeof(*wc));
	full = calloc(cap, sizeof(*full));
	if (pk == NULL || wc == NULL || full == NULL)
		cap = 0;
	for (;;) {
		struct pollfd pfd[2];
		int timeout = npk > 0 ? 50 : -1;

		pfd[0].fd = h->accept_wake[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = backoff ? -1 : h->listen_fd;
		pfd[1].events = POLLIN;
		if (backoff)
			timeout = 100;
		backoff = 0;
		(void)poll(pfd, 2, timeout);
		drain_pipe(h->accept_wake[0]);
		pthread_mutex_lock(&h->conn_lock);
		if (h->acceptor_stop) {
			pthread_mutex_unlock(&h->conn_lock);
			break;
		}
		h->parked_waiting = 0;
		pthread_mutex_unlock(&h->conn_lock);

		/* The waiting, fairest first.  Once the global caps are full
		 * (and nobody can be displaced) the rest keep waiting,
		 * except those whose time is up. */
		order_parked(h, pk, npk);
		all_full = 0;
		nfull = 0;
		for (i = j = 0; i < npk; i++) {
			if (sg_mono_ms() - pk[i].since_ms < PARK_MAX_MS &&
			    (all_full || key_in(full, nfull, &pk[i].key))) {
				pk[j++] = pk[i];
				continue;
			}
			a = place(h, &pk[i], 1);
			if (a == PARK_ALL)
				all_full = 1;
			else if (a == PARK_ADDR)
				full[nfull++] = pk[i].key;
			if (a != ADMIT)
				pk[j++] = pk[i];
		}
		npk = j;

		for (;;) {
			np.sslen = sizeof(np.ss);
			np.fd = accept4(h->listen_fd, (struct sockaddr *)&np.ss,
			    &np.sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (np.fd < 0) {
				if (errno == EMFILE || errno == ENFILE ||
				    errno == ENOBUFS || errno == ENOMEM)
					backoff = 1;
				break;
			}
			addr_key(&np.ss, &np.key);
			np.since_ms = sg_mono_ms();
			if (place(h, &np, 0) == ADMIT)
				continue;
			/* Waiting room, bounded per address and in all; when
			 * full, the address waiting most gives up a place. */
			for (i = same = 0; i < npk; i++)
				if (memcmp(&pk[i].key, &np.key,
				    sizeof(np.key)) == 0)
					same++;
			if (same >= per_addr || (npk == cap &&
			    !make_room(pk, &npk, same, wc, wcap))) {
				refuse(np.fd);
				continue;
			}
			pk[npk++] = np;
		}
	}
	for (i = 0; i < npk; i++)
		close(pk[i].fd);
	free(pk);
	free(wc);
	free(full);
	return NULL;
}

/* ---- guard: deadlines and lingering close ------------------------------- */

/* Is mhd_fd still libmicrohttpd's descriptor for own_fd's socket? */
static int
same_socket(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void
reap_locked(struct sg_http *h, int64_t now)
{
	struct slot *s;
	int64_t d;
	size_t i;

	for (i = 0; i < h->nslots; i++) {
		s = &h->slots[i];
		if (s->state == SLOT_FREE)
			continue;
		if (s->state == SLOT_PENDING &&
		    now - s->accepted_ms >= PENDING_CHECK_MS &&
		    !same_socket(s->mhd_fd, s->own_fd)) {
			close(release_locked(h, s));
			continue;
		}
		if (s->doomed || (d = slot_deadline(h, s)) == 0 || now < d)
			continue;
		if (!s->admitted && !s->handshake_done)
			atomic_fetch_add(&st_reaped_handshake, 1);
		else if (!s->admitted)
			atomic_fetch_add(&st_reaped_first_request, 1);
		else
			atomic_fetch_add(&st_reaped_request, 1);
		doom_locked(h, s);
	}
}

/* Reads and drops what the peer still sends; 1 when done with fd. */
static int
linger_read(struct lingering *l)
{
	char buf[16384];
	ssize_t n;

	for (;;) {
		n = read(l->fd, buf, sizeof(buf));
		if (n > 0) {
			l->bytes += (size_t)n;
			if (l->bytes >= LINGER_MAX_BYTES)
				return 1;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return 1;       /* end of file or an error */
	}
}

static void *
guard_main(void *arg)
{
	struct sg_http *h = arg;
	struct lingering *lg;
	struct pollfd *pfd;
	size_t nlg = 0, cap = h->nslots, i, j;

	lg = calloc(cap, sizeof(*lg));
	pfd = calloc(cap + 1, sizeof(*pfd));
	if (lg == NULL || pfd == NULL)
		cap = 0;
	for (;;) {
		int64_t now = sg_mono_ms();
		int stop;

		pthread_mutex_lock(&h->conn_lock);
		stop = h->guard_stop;
		for (i = 0; i < h->nlinger_in; i++) {
			int fd = h->linger_in[i];
			if (nlg == cap || stop) {
				close(fd);
				continue;
			}
			(void)shutdown(fd, SHUT_WR);
			lg[nlg].fd = fd;
			lg[nlg].until_ms = now + LINGER_MS;
			lg[nlg].bytes = 0;
			nlg++;
		}
		h->nlinger_in = 0;
		if (!stop)
			reap_locked(h, now);
		pthread_mutex_unlock(&h->conn_lock);
		if (stop)
			break;

		for (i = j = 0; i < nlg; i++) {
			if (linger_read(&lg[i]) || now >= lg[i].until_ms) {
				close(lg[i].fd);
				continue;
			}
			lg[j++] = lg[i];
		}
		nlg = j;
		pfd[0].fd = h->guard_wake[0];
		pfd[0].events = POLLIN;
		for (i = 0; i < nlg; i++) {
			pfd[i + 1].fd = lg[i].fd;
			pfd[i + 1].events = POLLIN;
		}
		(void)poll(pfd, nlg + 1, GUARD_TICK_MS);
		drain_pipe(h->guard_wake[0]);
	}
	for (i = 0; i < nlg; i++)
		close(lg[i].fd);
	free(lg);
	free(pfd);
	return NULL;
}

/* ---- libmicrohttpd notifications --------------------------------------- */

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
	fd = release_locked(h, s);
	if (linger)
		h->linger_in[h->nlinger_in++] = fd;
	pthread_mutex_unlock(&h->conn_lock);
	if (linger) {
		atomic_fetch_add(&st_lingered, 1);
		wake(h->guard_wake[1]);
	} else
		close(fd);
}

/* ---- identity ------------------------------------------------------------- */

/* Verifies the peer's certificate into the slot's cache. */
static void
verify_peer(gnutls_session_t sess, const gnutls_datum_t *cert,
    struct slot *s)
{
	gnutls_typed_vdata_st purpose;
	gnutls_x509_crt_t crt = NULL;
	unsigned int status = 0;
	char cn[256], extra[8], esc[512];
	size_t cnlen = sizeof(cn), elen = sizeof(extra);

	atomic_fetch_add(&st_verifications, 1);
	free(s->der);
	s->der = NULL;
	s->der_len = 0;
	s->id_state = -1;
	s->cn[0] = '\0';
	memset(s->sha256, 0, sizeof(s->sha256));
	if ((s->der = malloc(cert->size)) == NULL)
		return;
	memcpy(s->der, cert->data, cert->size);
	s->der_len = cert->size;

	memset(&purpose, 0, sizeof(purpose));
	purpose.type = GNUTLS_DT_KEY_PURPOSE_OID;
	purpose.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT;
	if (gnutls_certificate_verify_peers(sess, &purpose, 1, &status) < 0 ||
	    status != 0) {
		sg_log_debug("http: client certificate refused (status 0x%x)",
		    status);
		return;
	}
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, cert, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	/* Exactly one CN, so that "CN=alice,CN=bob" maps to no one. */
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    0, cn, &cnlen) < 0 || strlen(cn) != cnlen ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1,
	    0, extra, &elen) != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		cn[0] = '\0';
	snprintf(s->cn, sizeof(s->cn), "%s", cn);
	sg_sha256(cert->data, cert->size, s->sha256);
	s->id_state = 1;
	sg_escape(s->cn, strlen(s->cn), esc, sizeof(esc));
	sg_log_debug("http: client certificate verified (CN \"%s\")", esc);
out:
	gnutls_x509_crt_deinit(crt);
}

/*
 * 1 if the connection's peer has a verified client certificate.  Verifies
 * only when the certificate differs from the one already checked on this
 * connection (normally: on its first request only).
 */
static int
identify(struct MHD_Connection *conn, struct slot *s)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *certs;
	gnutls_session_t sess;
	unsigned int ncerts = 0;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || (sess = ci->tls_session) == NULL)
		return 0;
	certs = gnutls_certificate_get_peers(sess, &ncerts);
	if (certs == NULL || ncerts == 0)
		return 0;
	if (s->der == NULL || s->der_len != certs[0].size ||
	    memcmp(s->der, certs[0].data, s->der_len) != 0)
		verify_peer(sess, &certs[0], s);
	return s->id_state == 1;
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
			struct addrcount *a = amap_find(h, &s->key, 0);
			if (a != NULL)
				a->unauth--;
			h->n_unauth--;
			publish_counts_locked(h);
		}
		s->admitted = 1;
		if (h->parked_waiting)
			wake(h->accept_wake[1]);
	}
	pthread_mutex_unlock(&h->conn_lock);
	MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    h->idle_s);
}

/* ---- requests ------------------------------------------------------------- */

static enum MHD_Result
send_response(struct MHD_Connection *conn, struct sg_http_response *resp,
    int close_after)
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
	if (close_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
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

#define TOO_LARGE_DETAIL "the body exceeds the limit of 65536 bytes"

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
    struct slot *s, void **con_cls)
{
	struct reqctx *rc;
	const char *cl, *te;
	uint64_t n = 0;

	if ((rc = calloc(1, sizeof(*rc))) == NULL)
		return MHD_NO;
	*con_cls = rc;
	rc->slot = s;
	rc->authenticated = h->plain_http ? 0 : identify(conn, s);
	if ((rc->authenticated || h->plain_http) && !s->admitted)
		admit(conn, s);
	if (s->admitted)
		set_deadline(s, sg_mono_ms() + h->request_ms);

	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (cl != NULL && (sg_parse_u64(cl, 0, UINT64_MAX, &n) != 0 ||
	    n > SG_HTTP_MAX_BODY)) {
		/* Answered now; the body is drained by the lingering
		 * close, so the client reads this instead of a reset. */
		rc->too_large = 1;
		return simple_error(conn, 413, "Payload Too Large",
		    TOO_LARGE_DETAIL, !s->admitted);
	}
	if (!rc->authenticated && (n > 0 || te != NULL))
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

static enum MHD_Result
access_cb(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct sg_http *h = cls;
	struct reqctx *rc = *con_cls;
	struct sg_http_request req;
	struct sg_http_response resp;
	struct sg_http_param *query = NULL, *headers = NULL;
	struct slot *s;
	enum MHD_Result ret = MHD_NO;

	if (rc == NULL) {
		if ((s = conn_slot(conn)) == NULL)
			return MHD_NO;
		return request_start(h, conn, s, con_cls);
	}
	s = rc->slot;
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rc->too_large || rc->len + n > SG_HTTP_MAX_BODY) {
			/* A chunked body over the limit: read and dropped up
			 * to a bound (the request deadline bounds the time),
			 * then answered. */
			rc->too_large = 1;
			rc->discarded += n;
			return rc->discarded > DISCARD_MAX_BYTES ? MHD_NO :
			    MHD_YES;
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
	/* The whole request is in: no request deadline while it is handled,
	 * waits or is answered. */
	if (s->admitted)
		set_deadline(s, 0);
	if (rc->too_large)
		return simple_error(conn, 413, "Payload Too Large",
		    TOO_LARGE_DETAIL, !s->admitted);

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = method;
	req.path = url;
	if ((query = params_of(conn, MHD_GET_ARGUMENT_KIND,
	    &req.nquery)) == NULL ||
	    (headers = params_of(conn, MHD_HEADER_KIND,
	    &req.nheaders)) == NULL)
		goto out;
	req.query = query;
	req.headers = headers;
	req.body = rc->body != NULL ? rc->body : "";
	req.body_len = rc->len;
	req.loopback = is_loopback(conn);
	req.resumed = rc->resumed;
	req.wait_deadline_ms = rc->wait_deadline_ms;
	if (rc->authenticated) {
		req.authenticated = 1;
		snprintf(req.client_cn, sizeof(req.client_cn), "%s", s->cn);
		memcpy(req.client_sha256, s->sha256, sizeof(req.client_sha256));
	}

	h->handler(h->ctx, &req, &resp);

	if (resp.wait_id[0] != '\0' && !rc->resumed) {
		free(resp.body);
		rc->resumed = 1;
		rc->wait_deadline_ms = resp.wait_deadline_ms;
		if (add_waiter(h, conn, resp.wait_id,
		    resp.wait_deadline_ms) == 0) {
			ret = MHD_YES;
			goto out;
		}
		/* No room to wait: answer now with the current state. */
		memset(&resp, 0, sizeof(resp));
		req.resumed = 1;
		req.wait_deadline_ms = 0;
		h->handler(h->ctx, &req, &resp);
	}
	if (resp.wait_id[0] != '\0') {
		/* Already waited once: the handler must answer. */
		free(resp.body);
		ret = simple_error(conn, 500, "Internal Server Error",
		    "wait not honoured", !s->admitted);
		goto out;
	}
	ret = send_response(conn, &resp, !s->admitted);
	free(resp.body);
out:
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
		set_deadline(rc->slot, sg_mono_ms() + h->idle_ms +
		    h->request_ms);
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

/* ---- start and stop ------------------------------------------------------ */

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

static int
read_tls_files(struct sg_http *h, const struct sg_http_config *cfg,
    char *errbuf, size_t errlen)
{
	size_t len;
	int r;

	if ((r = sg_read_file(cfg->cert_file, SG_PEM_FILE_MAX, &h->cert_pem,
	    &len)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", cfg->cert_file,
		    sg_strerror(r));
		return r;
	}
	if ((r = sg_read_file(cfg->key_file, SG_PEM_FILE_MAX, &h->key_pem,
	    &h->key_len)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", cfg->key_file,
		    sg_strerror(r));
		return r;
	}
	if ((r = sg_read_file(cfg->client_ca_file, SG_PEM_FILE_MAX, &h->ca_pem,
	    &len)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", cfg->client_ca_file,
		    sg_strerror(r));
		return r;
	}
	return 0;
}

/* Reads one TLS file for sg_http_check_tls(); a problem is reported. */
static int
check_read(const char *what, const char *path, char **ret, size_t *ret_len,
    sg_http_report_fn report, void *arg)
{
	char msg[1024];
	int r, e;

	errno = 0;
	if ((r = sg_read_file(path, SG_PEM_FILE_MAX, ret, ret_len)) == 0)
		return 0;
	e = errno;
	snprintf(msg, sizeof(msg), "%s %s: %s", what, path,
	    r == SG_ERR_IO && e != 0 ? strerror(e) : sg_strerror(r));
	report(arg, msg);
	return r;
}

unsigned
sg_http_check_tls(const struct sg_http_config *cfg, sg_http_report_fn report,
    void *arg)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t cd, kd, ad;
	char *cert = NULL, *key = NULL, *ca = NULL, msg[1024];
	size_t cert_len = 0, key_len = 0, ca_len = 0;
	unsigned n = 0;
	int r;

	n += check_read("certificate", cfg->cert_file, &cert, &cert_len,
	    report, arg) != 0;
	n += check_read("private key", cfg->key_file, &key, &key_len, report,
	    arg) != 0;
	n += check_read("client CA", cfg->client_ca_file, &ca, &ca_len,
	    report, arg) != 0;
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		report(arg, "out of memory");
		n++;
		goto out;
	}
	/* What libmicrohttpd does with HTTPS_MEM_CERT, _KEY and _TRUST;
	 * GnuTLS refuses a key that is not the certificate's. */
	if (cert != NULL && key != NULL) {
		cd.data = (unsigned char *)cert;
		cd.size = (unsigned)cert_len;
		kd.data = (unsigned char *)key;
		kd.size = (unsigned)key_len;
		if ((r = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd,
		    GNUTLS_X509_FMT_PEM)) < 0) {
			snprintf(msg, sizeof(msg), "certificate %s with private "
			    "key %s: %s", cfg->cert_file, cfg->key_file,
			    gnutls_strerror(r));
			report(arg, msg);
			n++;
		}
	}
	if (ca != NULL) {
		ad.data = (unsigned char *)ca;
		ad.size = (unsigned)ca_len;
		if ((r = gnutls_certificate_set_x509_trust_mem(cred, &ad,
		    GNUTLS_X509_FMT_PEM)) <= 0) {
			snprintf(msg, sizeof(msg), "client CA %s: %s",
			    cfg->client_ca_file, r < 0 ? gnutls_strerror(r) :
			    "no certificate in it");
			report(arg, msg);
			n++;
		}
	}
out:
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	free(cert);
	sg_freezero(key, key_len);
	free(ca);
	return n;
}

static void
set_limits(struct sg_http *h, const struct sg_http_config *cfg)
{
	h->plain_http = cfg->plain_http;
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

int
sg_http_start(const struct sg_http_config *cfg, sg_http_handler handler,
    void *ctx, struct sg_http **ret, char *errbuf, size_t errlen)
{
	struct sg_http *h;
	unsigned int flags;
	size_t i;
	int r;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return SG_ERR_NOMEM;
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
		r = SG_ERR_NOMEM;
		snprintf(errbuf, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < h->nslots; i++)
		h->slots[i].own_fd = h->slots[i].mhd_fd = -1;
	if (make_pipe(h->accept_wake) != 0 || make_pipe(h->guard_wake) != 0) {
		snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
		r = SG_ERR_IO;
		goto fail;
	}
	if ((r = open_listener(h, cfg, errbuf, errlen)) != 0)
		goto fail;

	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
	    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	if (!cfg->plain_http) {
		flags |= MHD_USE_TLS;
		if ((r = read_tls_files(h, cfg, errbuf, errlen)) != 0)
			goto fail;
	}

	/* libmicrohttpd's own limits never bind: the acceptor's do.  Its
	 * default inactivity timeout is only a backstop, a second after the
	 * first request's deadline (which the guard enforces, and counts);
	 * authenticated connections get connection_timeout. */
	if (!cfg->plain_http)
		h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, h,
		    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
		    MHD_OPTION_CONNECTION_TIMEOUT, cfg->first_request_timeout + 1,
		    MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)(h->nslots * (cfg->threads + 1)),
		    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
		    MHD_OPTION_NOTIFY_CONNECTION, notify_cb, h,
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
		    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
		    MHD_OPTION_CONNECTION_TIMEOUT, cfg->first_request_timeout + 1,
		    MHD_OPTION_CONNECTION_LIMIT,
		    (unsigned)(h->nslots * (cfg->threads + 1)),
		    MHD_OPTION_NOTIFY_COMPLETED, completed_cb, h,
		    MHD_OPTION_NOTIFY_CONNECTION, notify_cb, h,
		    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		    MHD_OPTION_END);
	if (h->mhd == NULL) {
		snprintf(errbuf, errlen, "cannot start the HTTP server on %s "
		    "port %u (bad TLS certificate/key?)", cfg->address,
		    cfg->port);
		r = SG_ERR_IO;
		goto fail;
	}
	if (pthread_create(&h->timer, NULL, timer_main, h) != 0) {
		snprintf(errbuf, errlen, "cannot start the timer thread");
		r = SG_ERR_INTERNAL;
		goto fail;
	}
	h->timer_started = 1;
	if (pthread_create(&h->guard, NULL, guard_main, h) != 0) {
		snprintf(errbuf, errlen, "cannot start the guard thread");
		r = SG_ERR_INTERNAL;
		goto fail;
	}
	h->guard_started = 1;
	if (pthread_create(&h->acceptor, NULL, acceptor_main, h) != 0) {
		snprintf(errbuf, errlen, "cannot start the acceptor thread");
		r = SG_ERR_INTERNAL;
		goto fail;
	}
	h->acceptor_started = 1;
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
	size_t i;

	if (h == NULL)
		return;
	/* No new connections. */
	if (h->acceptor_started) {
		pthread_mutex_lock(&h->conn_lock);
		h->acceptor_stop = 1;
		pthread_mutex_unlock(&h->conn_lock);
		wake(h->accept_wake[1]);
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
		wake(h->guard_wake[1]);
		pthread_join(h->guard, NULL);
	}
	/* Slots libmicrohttpd never started (it closed their mhd_fd). */
	for (i = 0; h->slots != NULL && i < h->nslots; i++)
		if (h->slots[i].state != SLOT_FREE) {
			int fd = release_locked(h, &h->slots[i]);
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

/* Transitional, for callers not yet on sg_mono_ms(): to be removed with
 * its declaration in sg_http.h. */
int64_t
sg_now_ms(void)
{
	return sg_mono_ms();
}
