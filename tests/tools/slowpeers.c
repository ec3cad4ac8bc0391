/*
 * slowpeers: slow or anonymous TLS peers on loopback, for the tests of
 * the front's deadlines and limits.
 *
 *   slowpeers -p PORT -m MODE [-a FIRST_ADDR] [-n ADDRS] [-c PER_ADDR]
 *             [-t SECONDS] [-i DRIP_MS] [-r RECONNECT_MS]
 *             [-C CERT -K KEY] [-A CAFILE]
 *
 * Opens PER_ADDR connections from each of ADDRS consecutive loopback
 * source addresses starting at FIRST_ADDR (default 127.0.0.2) to
 * 127.0.0.1:PORT and keeps them busy for SECONDS, one poll loop, no
 * threads; the first connections are spread over a second.  A connection
 * the server closes is opened again after RECONNECT_MS (so the pressure
 * lasts the whole run).  MODE:
 *
 *   hello    trickles a TLS record header, one byte per DRIP_MS, and then
 *            zeros: a handshake that never ends
 *   idle     completes the TLS handshake, then sends nothing
 *   headers  completes the handshake, then trickles request headers that
 *            never end, one byte per DRIP_MS
 *   body     completes the handshake, sends a POST's headers announcing
 *            60000 bytes, then trickles the body, one byte per DRIP_MS
 *   logread  completes the handshake, asks GET /v1/log/checkpoint, reads
 *            the answer until the server closes, and starts again
 *
 * With -C/-K the handshake presents that client certificate.  Prints one
 * line:
 *
 *   opened N closed N open N max_held_ms N max_lag_ms N s200 N s429 N
 *   sother N
 *
 * where closed counts connections the server closed, open those still
 * open at the end, max_held_ms the longest time a connection stayed open
 * (until the server closed it, or until the end for those still open),
 * max_lag_ms the longest pass of this loop (how late a close may have
 * been seen, on a busy machine), and sNNN the answers' statuses (logread;
 * sother: closed before any status).  The run ends early when every
 * connection is closed and none is due to open again before the end.
 * Loopback only; bounded in addresses (64), connections (4096) and time
 * (120 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sg_util.h"

#define MAX_ADDRS 64
#define MAX_CONNS 4096
#define MAX_SECONDS 120

enum mode { M_HELLO, M_IDLE, M_HEADERS, M_BODY, M_LOGREAD };
enum phase { P_WAIT, P_CONNECTING, P_HANDSHAKE, P_ACTIVE };

struct peer {
	enum phase phase;
	int fd;
	SSL *ssl;
	struct sockaddr_in from;
	int64_t opened_ms;      /* connect() done */
	int64_t next_ms;        /* next drip, or reconnect */
	size_t sent;
	char resp[64];
	size_t resp_len;
};

static enum mode mode;
static SSL_CTX *ctx;
static struct sockaddr_in to;
static int64_t drip_ms = 500, reconnect_ms = 1000;
static uint64_t opened, closed, s200, s429, sother;
static int64_t max_held, max_lag;
/* Work per pass, so that a pass stays short and the times measured stay
 * true: at most this many connects and handshake steps. */
#define PASS_BUDGET 48
static int budget;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
held(struct peer *p, int64_t now)
{
	if (p->opened_ms > 0 && now - p->opened_ms > max_held)
		max_held = now - p->opened_ms;
}

static void
drop(struct peer *p, int64_t now, int by_server)
{
	if (p->phase != P_CONNECTING && by_server) {
		closed++;
		held(p, now);
	}
	if (mode == M_LOGREAD && p->resp_len >= 12) {
		if (strncmp(p->resp + 9, "200", 3) == 0)
			s200++;
		else if (strncmp(p->resp + 9, "429", 3) == 0)
			s429++;
		else
			sother++;
	} else if (mode == M_LOGREAD && p->phase == P_ACTIVE)
		sother++;
	if (p->ssl != NULL)
		SSL_free(p->ssl);
	p->ssl = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->phase = P_WAIT;
	p->opened_ms = 0;
	p->next_ms = now + (mode == M_LOGREAD ? 0 : reconnect_ms);
}

static void
start(struct peer *p, int64_t now)
{
	p->sent = 0;
	p->resp_len = 0;
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&p->from,
	    sizeof(p->from)) != 0 || (connect(p->fd, (struct sockaddr *)&to,
	    sizeof(to)) != 0 && errno != EINPROGRESS)) {
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
		p->next_ms = now + reconnect_ms;
		return;
	}
	p->phase = P_CONNECTING;
}

/* Every connection closed, none to open again before the end (with -r
 * longer than the run): nothing is left to measure. */
static int
all_done(const struct peer *peers, size_t n, int64_t end)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (peers[i].phase != P_WAIT || peers[i].next_ms < end)
			return 0;
	return 1;
}

/* What the active phase sends: one byte at a time, or all (logread). */
static void
send_more(struct peer *p, int64_t now)
{
	static const unsigned char hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00 };
	static const char hdr[] = "GET /v1/keys HTTP/1.1\r\nHost: x\r\nX-Pad: ";
	static const char post[] = "POST /v1/requests HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n";
	static const char logq[] = "GET /v1/log/checkpoint HTTP/1.1\r\n"
	    "Host: x\r\n\r\n";
	unsigned char c = 'a';
	int n;

	if (mode == M_IDLE || now < p->next_ms)
		return;
	if (mode == M_LOGREAD) {
		if (p->sent == 0 && SSL_write(p->ssl, logq,
		    (int)strlen(logq)) > 0)
			p->sent = 1;
		return;
	}
	if (mode == M_BODY && p->sent == 0) {
		if (SSL_write(p->ssl, post, (int)strlen(post)) <= 0) {
			drop(p, now, 1);
			return;
		}
		p->sent = 1;
		p->next_ms = now + drip_ms;
		return;
	}
	if (mode == M_HELLO) {
		c = p->sent < sizeof(hello) ? hello[p->sent] : 0;
		n = (int)write(p->fd, &c, 1);
	} else {
		if (mode == M_HEADERS && p->sent < strlen(hdr))
			c = (unsigned char)hdr[p->sent];
		n = SSL_write(p->ssl, &c, 1);
	}
	if (n != 1) {
		drop(p, now, 1);
		return;
	}
	p->sent++;
	p->next_ms = now + drip_ms;
}

/* Readable: the server answered or closed. */
static void
readable(struct peer *p, int64_t now)
{
	char buf[4096];
	int n;

	if (mode == M_HELLO) {
		n = (int)read(p->fd, buf, sizeof(buf));
		if (n <= 0 && !(n < 0 && errno == EAGAIN))
			drop(p, now, 1);
		return;
	}
	for (;;) {
		n = SSL_read(p->ssl, buf, sizeof(buf));
		if (n > 0) {
			size_t k = (size_t)n;
			if (k > sizeof(p->resp) - p->resp_len)
				k = sizeof(p->resp) - p->resp_len;
			memcpy(p->resp + p->resp_len, buf, k);
			p->resp_len += k;
			continue;
		}
		if (SSL_get_error(p->ssl, n) == SSL_ERROR_WANT_READ)
			return;
		ERR_clear_error();
		drop(p, now, 1);
		return;
	}
}

static void
step(struct peer *p, short revents, int64_t now)
{
	int err = 0, r;
	socklen_t len = sizeof(err);

	switch (p->phase) {
	case P_WAIT:
		if (now >= p->next_ms && budget > 0) {
			budget--;
			start(p, now);
		}
		return;
	case P_CONNECTING:
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return;
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
		    err != 0) {
			drop(p, now, 0);
			return;
		}
		opened++;
		p->opened_ms = now;
		p->next_ms = now;
		if (mode == M_HELLO) {
			p->phase = P_ACTIVE;
			return;
		}
		if (budget <= 0) {
			/* Connected: start the handshake in a later pass. */
			p->phase = P_HANDSHAKE;
			p->ssl = SSL_new(ctx);
			if (p->ssl == NULL || SSL_set_fd(p->ssl, p->fd) != 1) {
				drop(p, now, 0);
				return;
			}
			SSL_set_connect_state(p->ssl);
			return;
		}
		if ((p->ssl = SSL_new(ctx)) == NULL ||
		    SSL_set_fd(p->ssl, p->fd) != 1) {
			drop(p, now, 0);
			return;
		}
		SSL_set_connect_state(p->ssl);
		p->phase = P_HANDSHAKE;
		/* FALLTHROUGH */
	case P_HANDSHAKE:
		if (budget <= 0)
			return;         /* still ready in the next pass */
		budget--;
		r = SSL_do_handshake(p->ssl);
		if (r == 1) {
			p->phase = P_ACTIVE;
			break;
		}
		r = SSL_get_error(p->ssl, r);
		if (r != SSL_ERROR_WANT_READ && r != SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			drop(p, now, 1);
		}
		return;
	case P_ACTIVE:
		break;
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		readable(p, now);
		if (p->phase != P_ACTIVE)
			return;
	}
	send_more(p, now);
}

static void
usage(void)
{
	fprintf(stderr, "usage: slowpeers -p PORT -m hello|idle|headers|body|"
	    "logread [-a FIRST_ADDR] [-n ADDRS] [-c PER_ADDR] [-t SECONDS] "
	    "[-i DRIP_MS] [-r RECONNECT_MS] [-C CERT -K KEY] [-A CAFILE]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *first = "127.0.0.2", *cert = NULL, *key = NULL;
	const char *cafile = NULL;
	uint64_t port = 0, naddr = 1, per = 1, seconds = 5, v;
	struct peer *peers;
	struct pollfd *pfd;
	struct in_addr a0;
	struct rlimit rl;
	size_t n, i;
	int64_t end, now, top;
	size_t first_peer = 0, last;
	int ch;

	while ((ch = getopt(argc, argv, "p:m:a:n:c:t:i:r:C:K:A:")) != -1) {
		switch (ch) {
		case 'p':
			if (sg_parse_u64(optarg, 1, 65535, &port) != 0)
				usage();
			break;
		case 'm':
			if (strcmp(optarg, "hello") == 0)
				mode = M_HELLO;
			else if (strcmp(optarg, "idle") == 0)
				mode = M_IDLE;
			else if (strcmp(optarg, "headers") == 0)
				mode = M_HEADERS;
			else if (strcmp(optarg, "body") == 0)
				mode = M_BODY;
			else if (strcmp(optarg, "logread") == 0)
				mode = M_LOGREAD;
			else
				usage();
			break;
		case 'a':
			first = optarg;
			break;
		case 'n':
			if (sg_parse_u64(optarg, 1, MAX_ADDRS, &naddr) != 0)
				usage();
			break;
		case 'c':
			if (sg_parse_u64(optarg, 1, MAX_CONNS, &per) != 0)
				usage();
			break;
		case 't':
			if (sg_parse_u64(optarg, 1, MAX_SECONDS, &seconds) != 0)
				usage();
			break;
		case 'i':
			if (sg_parse_u64(optarg, 1, 60000, &v) != 0)
				usage();
			drip_ms = (int64_t)v;
			break;
		case 'r':
			if (sg_parse_u64(optarg, 0, 60000, &v) != 0)
				usage();
			reconnect_ms = (int64_t)v;
			break;
		case 'C':
			cert = optarg;
			break;
		case 'K':
			key = optarg;
			break;
		case 'A':
			cafile = optarg;
			break;
		default:
			usage();
		}
	}
	if (port == 0 || optind != argc || naddr * per > MAX_CONNS ||
	    (cert == NULL) != (key == NULL))
		usage();
	if (inet_pton(AF_INET, first, &a0) != 1 ||
	    (ntohl(a0.s_addr) >> 24) != 127 ||
	    ((ntohl(a0.s_addr) & 0xffffff) + naddr) > 0xffffff) {
		fprintf(stderr, "slowpeers: loopback addresses only\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons((uint16_t)port);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return 1;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (cafile != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1)
			return 1;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (cert != NULL && (SSL_CTX_use_certificate_chain_file(ctx,
	    cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key,
	    SSL_FILETYPE_PEM) != 1)) {
		fprintf(stderr, "slowpeers: cannot load %s / %s\n", cert, key);
		return 1;
	}

	n = (size_t)(naddr * per);
	peers = calloc(n, sizeof(*peers));
	pfd = calloc(n, sizeof(*pfd));
	if (peers == NULL || pfd == NULL)
		return 1;
	now = now_ms();
	for (i = 0; i < n; i++) {
		peers[i].fd = -1;
		peers[i].phase = P_WAIT;
		peers[i].next_ms = now + (int64_t)(i * 1000 / n); /* spread */
		peers[i].from.sin_family = AF_INET;
		peers[i].from.sin_addr.s_addr = htonl(ntohl(a0.s_addr) +
		    (uint32_t)(i / per));
	}
	end = now + (int64_t)seconds * 1000;
	for (top = now;;) {
		if ((now = now_ms()) >= end)
			break;
		if (now - top > max_lag)
			max_lag = now - top;
		top = now;
		for (i = 0; i < n; i++) {
			struct peer *p = &peers[i];
			pfd[i].fd = p->fd;
			pfd[i].events = 0;
			pfd[i].revents = 0;
			if (p->phase == P_CONNECTING)
				pfd[i].events = POLLOUT;
			else if (p->phase == P_HANDSHAKE)
				pfd[i].events = POLLIN | POLLOUT;
			else if (p->phase == P_ACTIVE)
				pfd[i].events = POLLIN;
		}
		(void)poll(pfd, n, mode == M_LOGREAD ? 5 : 20);
		now = now_ms();
		budget = PASS_BUDGET;
		for (i = 0, last = first_peer; i < n; i++) {
			/* The next pass starts after the last peer that had
			 * work done, so that none waits for ever. */
			size_t k = (i + first_peer) % n;
			int before = budget;
			step(&peers[k], pfd[k].revents, now);
			if (budget != before)
				last = k;
		}
		if (budget <= 0)
			first_peer = (last + 1) % n;
		if (all_done(peers, n, end))
			break;
	}
	now = now_ms();
	{
		uint64_t open = 0;
		for (i = 0; i < n; i++)
			if (peers[i].phase == P_ACTIVE ||
			    peers[i].phase == P_HANDSHAKE) {
				open++;
				held(&peers[i], now);
			}
		printf("opened %llu closed %llu open %llu max_held_ms %lld "
		    "max_lag_ms %lld s200 %llu s429 %llu sother %llu\n",
		    (unsigned long long)opened, (unsigned long long)closed,
		    (unsigned long long)open, (long long)max_held,
		    (long long)max_lag,
		    (unsigned long long)s200, (unsigned long long)s429,
		    (unsigned long long)sother);
	}
	for (i = 0; i < n; i++)
		if (peers[i].fd >= 0) {
			SSL_free(peers[i].ssl);
			close(peers[i].fd);
		}
	free(peers);
	free(pfd);
	SSL_CTX_free(ctx);
	return 0;
}
