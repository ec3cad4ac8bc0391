/*
 * The front's acceptor thread: admission, parking and refusal.
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
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sg_err.h"
#include "sg_util.h"
#include "http_int.h"

struct parked {
	int fd;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct addrkey key;
	int64_t since_ms;           /* accepted */
	unsigned share;             /* its address's unauthenticated, now */
};


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

/* ---- admission (conn_lock held) ----------------------------------------- */

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
	struct addrcount *a = http_amap_find(h, key, 0);
	unsigned a_total = a != NULL ? a->total : 0;
	unsigned a_unauth = a != NULL ? a->unauth : 0;
	struct slot *v;

	if ((h->per_ip_limit > 0 && a_total >= h->per_ip_limit) ||
	    (h->per_ip_unauth_limit > 0 &&
	    a_unauth >= h->per_ip_unauth_limit)) {
		if ((v = victim_locked(h, key, now)) == NULL)
			return PARK_ADDR;
		http_doom_locked(h, v);
		atomic_fetch_add(&http_st.evicted, 1);
	}
	if (h->n_total >= h->conn_limit || h->n_unauth >= h->unauth_limit) {
		if ((v = victim_locked(h, NULL, now)) == NULL)
			return PARK_ALL;
		http_doom_locked(h, v);
		atomic_fetch_add(&http_st.evicted, 1);
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
	atomic_fetch_add(&http_st.refused, 1);
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
			stale = http_release_locked(h, &h->slots[i]);
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
	http_count_locked(h, s);        /* before it is in use: see rebuild */
	s->state = SLOT_PENDING;
	s->mhd_fd = fd;
	s->own_fd = own;
	s->accepted_ms = pk->since_ms;  /* time parked counts */
	s->h = h;
	pthread_mutex_unlock(&h->conn_lock);
	atomic_fetch_add(&http_st.accepted, 1);

	/* The polling thread may start the connection before this returns:
	 * the slot is ready.  On failure libmicrohttpd closed fd, and no
	 * notification will come for it. */
	if (MHD_add_connection(h->mhd, fd, (struct sockaddr *)&pk->ss,
	    pk->sslen) != MHD_YES) {
		pthread_mutex_lock(&h->conn_lock);
		own = http_release_locked(h, s);
		pthread_mutex_unlock(&h->conn_lock);
		close(own);
		atomic_fetch_add(&http_st.refused, 1);
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
		a = http_amap_find(h, &pk[i].key, 0);
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
		for (j = http_amap_hash(&pk[i].key) & (wcap - 1);; j = (j + 1) &
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

/* The acceptor's waiting room: connections parked until they can count. */
struct waitroom {
	struct parked *pk;
	size_t npk, cap;
	struct wcount *wc;              /* make_room()'s scratch */
	size_t wcap;
	struct addrkey *full;           /* addresses found full this pass */
	unsigned per_addr;              /* most waiting of one address */
};

static void
waitroom_init(struct sg_http *h, struct waitroom *w)
{
	memset(w, 0, sizeof(*w));
	w->cap = h->unauth_limit;
	w->per_addr = h->per_ip_unauth_limit > 0 ?
	    h->per_ip_unauth_limit : h->unauth_limit;
	for (w->wcap = 16; w->wcap < w->cap * 2; w->wcap *= 2)
		;
	w->pk = calloc(w->cap, sizeof(*w->pk));
	w->wc = calloc(w->wcap, sizeof(*w->wc));
	w->full = calloc(w->cap, sizeof(*w->full));
	if (w->pk == NULL || w->wc == NULL || w->full == NULL)
		w->cap = 0;     /* then whoever must wait is refused */
}

static void
waitroom_free(struct waitroom *w)
{
	size_t i;

	for (i = 0; i < w->npk; i++)
		close(w->pk[i].fd);
	free(w->pk);
	free(w->wc);
	free(w->full);
}

/*
 * Waits for a connection to accept, a wake-up, or (when connections are
 * parked, or after running out of descriptors) a short tick.  1 when the
 * acceptor must stop.
 */
static int
acceptor_wait(struct sg_http *h, const struct waitroom *w, int backoff)
{
	struct pollfd pfd[2];
	int timeout = w->npk > 0 ? 50 : -1;

	pfd[0].fd = h->accept_wake[0];
	pfd[0].events = POLLIN;
	pfd[1].fd = backoff ? -1 : h->listen_fd;
	pfd[1].events = POLLIN;
	if (backoff)
		timeout = 100;
	(void)poll(pfd, 2, timeout);
	http_drain_pipe(h->accept_wake[0]);
	pthread_mutex_lock(&h->conn_lock);
	if (h->acceptor_stop) {
		pthread_mutex_unlock(&h->conn_lock);
		return 1;
	}
	h->parked_waiting = 0;
	pthread_mutex_unlock(&h->conn_lock);
	return 0;
}

/*
 * Tries the waiting again, fairest first.  Once the global caps are full
 * (and nobody can be displaced) the rest keep waiting, except those whose
 * time is up.
 */
static void
retry_parked(struct sg_http *h, struct waitroom *w)
{
	struct parked *pk = w->pk;
	enum admit a;
	size_t i, j, nfull = 0;
	int all_full = 0;

	order_parked(h, pk, w->npk);
	for (i = j = 0; i < w->npk; i++) {
		if (sg_mono_ms() - pk[i].since_ms < PARK_MAX_MS &&
		    (all_full || key_in(w->full, nfull, &pk[i].key))) {
			pk[j++] = pk[i];
			continue;
		}
		a = place(h, &pk[i], 1);
		if (a == PARK_ALL)
			all_full = 1;
		else if (a == PARK_ADDR)
			w->full[nfull++] = pk[i].key;
		if (a != ADMIT)
			pk[j++] = pk[i];
	}
	w->npk = j;
}

/* Parks np, which could not count yet.  The waiting room is bounded per
 * address and in all; when full, the address waiting most gives up a
 * place. */
static void
park(struct waitroom *w, const struct parked *np)
{
	size_t i, same;

	for (i = same = 0; i < w->npk; i++)
		if (memcmp(&w->pk[i].key, &np->key, sizeof(np->key)) == 0)
			same++;
	if (same >= w->per_addr || (w->npk == w->cap &&
	    !make_room(w->pk, &w->npk, same, w->wc, w->wcap))) {
		refuse(np->fd);
		return;
	}
	w->pk[w->npk++] = *np;
}

/* Accepts every connection waiting in the backlog.  1 when out of
 * descriptors or memory: the caller backs off a moment. */
static int
accept_all(struct sg_http *h, struct waitroom *w)
{
	struct parked np;

	for (;;) {
		np.sslen = sizeof(np.ss);
		np.fd = accept4(h->listen_fd, (struct sockaddr *)&np.ss,
		    &np.sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (np.fd < 0)
			return errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM;
		addr_key(&np.ss, &np.key);
		np.since_ms = sg_mono_ms();
		if (place(h, &np, 0) != ADMIT)
			park(w, &np);
	}
}

void *
http_acceptor_main(void *arg)
{
	struct sg_http *h = arg;
	struct waitroom w;
	int backoff = 0;

	waitroom_init(h, &w);
	while (!acceptor_wait(h, &w, backoff)) {
		retry_parked(h, &w);
		backoff = accept_all(h, &w);
	}
	waitroom_free(&w);
	return NULL;
}
