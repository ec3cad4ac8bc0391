/*
 * The front's connection slots (see http.c for what a slot holds and why
 * it keeps its own duplicate of the socket).  Each slot counts, until it
 * is doomed or freed, against the global caps and those of its address
 * (IPv4, or IPv6 /64), in counters kept under conn_lock, per address in a
 * small open-addressing map; the acceptor (http_accept.c) admits by them.
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
 * The guard thread enforces those deadlines: it shuts a late connection's
 * socket down (doom), and libmicrohttpd then closes the connection through
 * its normal path.  It also drains closed sockets: the closed notification
 * hands own_fd over, and the guard sends FIN, reads and discards what the
 * client still sends (at most LINGER_MAX_BYTES for at most LINGER_MS, less
 * if the peer closes), then closes -- the classic lingering close, so that
 * a client whose body is over the limit reads its 413 instead of a reset.
 * It also frees a pending slot libmicrohttpd dropped without a
 * notification: fstat() of mhd_fd no longer names own_fd's socket.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_err.h"
#include "sg_util.h"
#include "http_int.h"

struct lingering {
	int fd;
	int64_t until_ms;
	size_t bytes;
};

void
http_wake(int fd)
{
	ssize_t r;

	r = write(fd, "x", 1);
	(void)r;        /* a full pipe already wakes the reader */
}

void
http_drain_pipe(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}


/* ---- slots (conn_lock held) ------------------------------------------- */

size_t
http_amap_hash(const struct addrkey *k)
{
	uint64_t x = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < sizeof(k->b); i++)
		x = (x ^ k->b[i]) * 1099511628211ULL;
	return (size_t)x;
}

struct addrcount *
http_amap_find(struct sg_http *h, const struct addrkey *k, int create)
{
	size_t i = http_amap_hash(k) & (h->amap_cap - 1);

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
		a = http_amap_find(h, &s->key, 1);
		a->total++;
		if (!s->admitted)
			a->unauth++;
	}
}

static struct addrcount *
amap_add(struct sg_http *h, const struct addrkey *k)
{
	if (http_amap_find(h, k, 0) == NULL &&
	    h->amap_used + 1 > h->amap_cap / 2)
		amap_rebuild(h);
	return http_amap_find(h, k, 1);
}

void
http_publish_counts_locked(struct sg_http *h)
{
	atomic_store(&http_st.open_unauth, h->n_unauth);
	atomic_store(&http_st.open_auth, h->n_total - h->n_unauth);
}

/* The slot starts counting against the limits, unauthenticated. */
void
http_count_locked(struct sg_http *h, struct slot *s)
{
	struct addrcount *a = amap_add(h, &s->key);

	a->total++;
	a->unauth++;
	h->n_total++;
	h->n_unauth++;
	http_publish_counts_locked(h);
}

/* The slot stops counting against the limits. */
static void
uncount_locked(struct sg_http *h, struct slot *s)
{
	struct addrcount *a;

	if (s->doomed)
		return;
	a = http_amap_find(h, &s->key, 0);
	h->n_total--;
	if (a != NULL)
		a->total--;
	if (!s->admitted) {
		h->n_unauth--;
		if (a != NULL)
			a->unauth--;
	}
	http_publish_counts_locked(h);
}

/* Shuts the socket down; libmicrohttpd closes the connection when it sees
 * that, and the closed notification frees the slot. */
void
http_doom_locked(struct sg_http *h, struct slot *s)
{
	if (s->doomed)
		return;
	uncount_locked(h, s);
	s->doomed = 1;
	(void)shutdown(s->own_fd, SHUT_RDWR);
	if (h->parked_waiting)
		http_wake(h->accept_wake[1]);
}

/* Frees the slot; returns its own_fd for the caller to close or linger. */
int
http_release_locked(struct sg_http *h, struct slot *s)
{
	int fd = s->own_fd;

	uncount_locked(h, s);
	free(s->der);
	memset(s, 0, sizeof(*s));
	s->state = SLOT_FREE;
	s->own_fd = s->mhd_fd = -1;
	if (h->parked_waiting)
		http_wake(h->accept_wake[1]);
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

void
http_set_deadline(struct slot *s, int64_t deadline_ms)
{
	struct sg_http *h = s->h;

	pthread_mutex_lock(&h->conn_lock);
	s->deadline_ms = deadline_ms;
	pthread_mutex_unlock(&h->conn_lock);
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
			close(http_release_locked(h, s));
			continue;
		}
		if (s->doomed || (d = slot_deadline(h, s)) == 0 || now < d)
			continue;
		if (!s->admitted && !s->handshake_done)
			atomic_fetch_add(&http_st.reaped_handshake, 1);
		else if (!s->admitted)
			atomic_fetch_add(&http_st.reaped_first_request, 1);
		else
			atomic_fetch_add(&http_st.reaped_request, 1);
		http_doom_locked(h, s);
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

void *
http_guard_main(void *arg)
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
		http_drain_pipe(h->guard_wake[0]);
	}
	for (i = 0; i < nlg; i++)
		close(lg[i].fd);
	free(lg);
	free(pfd);
	return NULL;
}

