/*
 * The signer process's life: how it starts, becomes its own user, opens
 * its core and serves its channels.
 *
 * Run by: the child that sg_signer_spawn() forks (src/signer_client.c),
 * through sp_child_main(); or by `signgated --signer`, through
 * sg_signer_listen().  It may call: sg_privdrop.h, the PKCS#11 signer
 * (sg_signer.h) as the child's core, the signer's policy and keys
 * (src/signer_policy.c) and sg_signer_child_serve_msg()
 * (src/signer_proc.c).  It decides nothing about a request: the channel
 * threads and the workers only move records.
 *
 * Process: sg_signer_spawn() creates `channels` SOCK_SEQPACKET socket pairs
 * and forks.  The child first becomes the signer's user (sg_privdrop.h:
 * when started as root, before it touches the module or a PIN), makes
 * itself non-dumpable (its memory holds PINs and sessions), opens the
 * signer core (module, tokens, keys) and its own copy of the policy,
 * reports READY on the first channel, and then reads each channel on its
 * own thread.  A channel carries many requests at once, each tagged by the
 * front (sg_signer_wire.h): its thread queues each request for a pool of
 * `concurrency` workers, which answer in any order, each answer carrying
 * its request's tag (see "The workers" below).  It exits when the front
 * closes the channels (or dies: the kernel closes them), once every answer
 * due is sent.
 *
 * Or the signer runs on its own (`signgated --signer`, its own systemd
 * unit): sg_signer_listen() does the same set-up, with the keys taken from
 * its own policy, then listens on a SOCK_SEQPACKET socket and serves each
 * accepted connection as a channel, with the same code.  The socket file
 * is open to all (mode 0666): access is decided by the peer's uid as the
 * kernel reports it (SO_PEERCRED), which must be the front's user; any
 * other peer is closed unanswered.  The front, sg_signer_connect(), checks
 * likewise that the socket is served by the signer's user.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sg_err.h"
#include "sg_privdrop.h"
#include "sg_signer_child.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_sigrec.h"
#include "sg_util.h"
#include "sg_witness.h"
#include "signer_proc_int.h"

/* Connections a listening signer serves at once: a restarted front's
 * channels may overlap briefly with its predecessor's. */
#define MAX_CONNECTIONS (2 * MAX_CHANNELS)

/* The PKCS#11 signer as the child's core. */
static void
hsm_sign(void *core, const struct sg_sign_msg *msg,
    struct sg_sign_reply *reply)
{
	sg_signer_sign(core, msg, reply);
}

static int
hsm_key_public(void *core, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	return sg_signer_key_public(core, name, ret_pub, ret_alg, ret_token);
}

static int
hsm_sign_checkpoint(void *core, const char *origin, uint64_t size,
    const uint8_t root[SG_HASH_LEN], uint8_t sig[SG_ED25519_SIG])
{
	return sg_signer_sign_checkpoint(core, origin, size, root, sig);
}

static int
hsm_spec_reserved(void *core, const struct sg_signer_key_spec *ks,
    char *errbuf, size_t errlen)
{
	return sg_signer_spec_reserved(core, ks, errbuf, errlen);
}

static void
hsm_sign_many(void *core, const struct sg_sign_msg *msgs, size_t n,
    struct sg_sign_reply *replies)
{
	sg_signer_sign_many(core, msgs, n, replies);
}

static const struct sg_signer_ops hsm_ops = {
	hsm_sign, hsm_key_public, hsm_sign_checkpoint, hsm_spec_reserved,
	hsm_sign_many
};

/* Sends a reply that carries no CMS: READY. */
static int
reply_send(int fd, struct sg_wire_reply *rep)
{
	uint8_t *buf;
	size_t n;
	ssize_t w;
	int r;

	if ((r = sg_wire_encode_reply(rep, NULL, 0, &buf, &n)) != 0)
		return r;
	w = send(fd, buf, n, MSG_NOSIGNAL);
	free(buf);
	return w == (ssize_t)n ? 0 : SG_ERR_IO;
}

/*
 * The workers: channel threads read requests and queue them; workers
 * answer them (sg_signer_child_serve_msg) and send each answer on its
 * channel, under the channel's send lock.  The queue holds at most
 * QUEUE_FACTOR * concurrency requests (queued or being answered); past
 * that a channel thread waits before it queues, and so stops reading
 * (the front's sends then wait in the socket): nothing is dropped.
 * CHECKPOINT is answered on its channel thread, one at a time across
 * channels (checkpoint_lock), in the order the channel brought them.
 */
#define QUEUE_FACTOR 2
/* Seconds a front may leave an answer unread before its channel is
 * closed (the front gives up on a request after 120). */
#define ANSWER_SEND_SEC 60

struct serve_job {
	struct serve_chan *ch;
	struct serve_job *next;
	size_t len;
	uint8_t msg[];                 /* the request record */
};

struct serve_pool {
	struct sg_signer_child *c;
	pthread_mutex_t lock;          /* the queue, every channel's pending */
	pthread_cond_t work;           /* a job queued, or stop */
	pthread_cond_t room;           /* a place freed, or a channel idle */
	struct serve_job *head, *tail;
	unsigned queued;               /* queued or being answered */
	unsigned max_queued;
	int stop;
	pthread_t *th;
	unsigned nth;
	pthread_mutex_t checkpoint_lock;
};

struct serve_chan {
	struct serve_pool *pool;
	int fd;
	pthread_mutex_t send_lock;
	unsigned pending;              /* its jobs queued or being answered */
};

/* One request answered and the answer sent on its channel.  A request
 * that cannot be answered for want of memory gets no answer (the front's
 * wait is bounded). */
static void
answer(struct serve_chan *ch, const uint8_t *msg, size_t len)
{
	uint8_t *out;
	size_t out_len;

	if (sg_signer_child_serve_msg(ch->pool->c, msg, len, &out,
	    &out_len) != 0)
		return;
	pthread_mutex_lock(&ch->send_lock);
	/* A front that reads no answer for ANSWER_SEND_SEC is stuck: its
	 * channel is closed, so that the workers, which every channel
	 * shares, are not held by it. */
	if (send(ch->fd, out, out_len, MSG_NOSIGNAL) != (ssize_t)out_len) {
		sg_log_error("signer: an answer could not be sent; the "
		    "channel is closed");
		shutdown(ch->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&ch->send_lock);
	free(out);
}

static void *
worker_main(void *arg)
{
	struct serve_pool *pool = arg;
	struct serve_job *j;
	struct serve_chan *ch;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->head == NULL && !pool->stop)
			pthread_cond_wait(&pool->work, &pool->lock);
		if ((j = pool->head) == NULL)
			break;
		if ((pool->head = j->next) == NULL)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->lock);
		ch = j->ch;
		answer(ch, j->msg, j->len);
		explicit_bzero(j->msg, j->len);
		free(j);
		pthread_mutex_lock(&pool->lock);
		pool->queued--;
		ch->pending--;
		/* Channel threads wait for room, or for their channel to have
		 * nothing pending (ch is not touched after this). */
		pthread_cond_broadcast(&pool->room);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static int
pool_start(struct serve_pool *pool, struct sg_signer_child *c,
    unsigned concurrency)
{
	unsigned i;

	memset(pool, 0, sizeof(*pool));
	if (concurrency == 0)
		concurrency = SG_SIGNER_CONCURRENCY_DEFAULT;
	if (concurrency > SG_SIGNER_CONCURRENCY_MAX)
		return SG_ERR_INVALID;
	/* The HSM's sessions, enough for every worker at once. */
	if (c->ops == &hsm_ops)
		sg_signer_set_concurrency(c->core, concurrency);
	pool->c = c;
	pool->max_queued = QUEUE_FACTOR * concurrency;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_mutex_init(&pool->checkpoint_lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->room, NULL);
	if ((pool->th = calloc(concurrency, sizeof(*pool->th))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < concurrency; i++) {
		if (pthread_create(&pool->th[i], NULL, worker_main,
		    pool) != 0)
			return SG_ERR_INTERNAL;
		pool->nth++;
	}
	return 0;
}

/* Ends the workers once the queue is empty. */
static void
pool_stop(struct serve_pool *pool)
{
	unsigned i;

	pthread_mutex_lock(&pool->lock);
	pool->stop = 1;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < pool->nth; i++)
		pthread_join(pool->th[i], NULL);
	free(pool->th);
	pool->th = NULL;
	pool->nth = 0;
}

/* Queues a request (a copy of msg), after waiting for room. */
static void
enqueue(struct serve_chan *ch, const uint8_t *msg, size_t len)
{
	struct serve_pool *pool = ch->pool;
	struct serve_job *j;

	if ((j = malloc(sizeof(*j) + len)) == NULL) {
		/* Answered here, slowly, rather than dropped. */
		answer(ch, msg, len);
		return;
	}
	j->ch = ch;
	j->next = NULL;
	j->len = len;
	memcpy(j->msg, msg, len);
	pthread_mutex_lock(&pool->lock);
	while (pool->queued >= pool->max_queued)
		pthread_cond_wait(&pool->room, &pool->lock);
	pool->queued++;
	ch->pending++;
	if (pool->tail != NULL)
		pool->tail->next = j;
	else
		pool->head = j;
	pool->tail = j;
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

/* One channel: reads requests until the front goes, then waits for the
 * answers still due on it. */
static void
serve_channel(struct serve_chan *ch)
{
	struct serve_pool *pool = ch->pool;
	uint8_t *buf;
	ssize_t n;

	if ((buf = malloc(SG_WIRE_MAX_MSG + 1)) == NULL) {
		/* The front sees the channel end. */
		shutdown(ch->fd, SHUT_RDWR);
		return;
	}
	for (;;) {
		n = recv(ch->fd, buf, SG_WIRE_MAX_MSG + 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0) {
			/* An empty message, or the front has gone. */
			struct pollfd hp = { ch->fd, POLLRDHUP, 0 };
			if (poll(&hp, 1, 0) != 0 &&
			    (hp.revents & (POLLHUP | POLLRDHUP)))
				break;
		}
		if (sg_wire_type(buf, (size_t)n) == SG_WIRE_CHECKPOINT) {
			/* In order, one at a time: never reordered. */
			pthread_mutex_lock(&pool->checkpoint_lock);
			answer(ch, buf, (size_t)n);
			pthread_mutex_unlock(&pool->checkpoint_lock);
		} else
			enqueue(ch, buf, (size_t)n);
	}
	pthread_mutex_lock(&pool->lock);
	while (ch->pending > 0)
		pthread_cond_wait(&pool->room, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	explicit_bzero(buf, SG_WIRE_MAX_MSG + 1);
	free(buf);
}

static void
chan_init(struct serve_chan *ch, struct serve_pool *pool, int fd)
{
	struct timeval tv = { ANSWER_SEND_SEC, 0 };

	memset(ch, 0, sizeof(*ch));
	ch->pool = pool;
	ch->fd = fd;
	pthread_mutex_init(&ch->send_lock, NULL);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		sg_log_warn("signer: no send deadline on a channel: %s",
		    strerror(errno));
}

static void *
chan_main(void *arg)
{
	serve_channel(arg);
	return NULL;
}

/* The channels of a forked signer, until the front closes them all. */
static int
serve_fds(struct sg_signer_child *c, const int *fds, unsigned n,
    unsigned concurrency)
{
	struct serve_pool pool;
	struct serve_chan *chans;
	pthread_t *th;
	unsigned i, started = 0;
	int r;

	th = calloc(n, sizeof(*th));
	chans = calloc(n, sizeof(*chans));
	if (th == NULL || chans == NULL) {
		free(th);
		free(chans);
		return SG_ERR_NOMEM;
	}
	if ((r = pool_start(&pool, c, concurrency)) == 0)
		for (i = 0; i < n; i++) {
			chan_init(&chans[i], &pool, fds[i]);
			if (pthread_create(&th[i], NULL, chan_main,
			    &chans[i]) != 0) {
				r = SG_ERR_INTERNAL;
				break;
			}
			started++;
		}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pool_stop(&pool);
	free(th);
	free(chans);
	return r;
}

int
sg_signer_child_serve(struct sg_signer_child *c, const int *fds,
    unsigned n, unsigned concurrency)
{
	struct sg_wire_reply rep;

	if (n == 0 || concurrency > SG_SIGNER_CONCURRENCY_MAX)
		return SG_ERR_INVALID;
	memset(&rep, 0, sizeof(rep));
	if (reply_send(fds[0], &rep) != 0)
		return SG_ERR_IO;
	return serve_fds(c, fds, n, concurrency);
}

/*
 * What every signer does before it serves, once it runs as the signer's
 * user: nobody may read its memory, it reads the policy itself, opens its
 * records in state_dir (so they belong to the signer's user), then opens
 * the module, the tokens and the keys (those its own policy names, plus the
 * log key, when keys is NULL).
 */
static int
child_setup(struct sg_signer_child *c, const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    const char *log_token, const char *log_key, char *err, size_t errlen)
{
	struct sg_signer_key_spec *own = NULL;
	struct sg_signer *core = NULL;
	int r;

	/* Nobody may read this process's memory (PINs, sessions). */
	prctl(PR_SET_DUMPABLE, 0);
	if ((r = sp_child_init(c, policy_path, log_origin, state_dir, err,
	    errlen)) != 0)
		return r;
	if (keys == NULL) {
		if ((r = sg_signer_key_specs(c->policies[0], log_token,
		    log_key, &own, &nkeys)) != 0)
			return r;
		keys = own;
	}
	r = sg_signer_open(module_path, tokens, ntokens, keys, nkeys, &core,
	    err, errlen);
	c->ops = &hsm_ops;
	c->core = core;
	if (r == 0)
		r = sp_open_keys(c, keys, nkeys, err, errlen);
	free(own);
	return r;
}

void
sp_child_main(int *fds, unsigned n, unsigned concurrency,
    const char *module_path, const struct sg_signer_token_spec *tokens,
    size_t ntokens, const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir)
{
	struct sg_signer_child c;
	struct sg_wire_reply rep;
	int r;

	memset(&rep, 0, sizeof(rep));
	/* The signer's own user first: before the policy, the module or a
	 * PIN is touched. */
	r = sg_privdrop_enter(SG_PRIV_SIGNER, rep.err, sizeof(rep.err));
	/* After the drop, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (r == 0)
		r = child_setup(&c, module_path, tokens, ntokens, keys, nkeys,
		    policy_path, log_origin, state_dir, NULL, NULL, rep.err,
		    sizeof(rep.err));
	/* READY is the first reply on the first channel. */
	rep.status = r;
	reply_send(fds[0], &rep);
	if (r != 0)
		_exit(1);
	if (serve_fds(&c, fds, n, concurrency) != 0)
		_exit(1);
	sg_signer_free(c.core);
	sg_sigrec_close(c.rec);
	sg_witness_free(c.witness);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* The signer on its own: a listening socket instead of socket pairs. */

struct listener {
	struct sg_signer_child c;
	struct serve_pool pool;        /* every connection's */
	int fd;
	uid_t front_uid;
	pthread_mutex_t lock;
	unsigned active;
};

struct conn_arg {
	struct serve_chan ch;
	struct listener *l;
};

void
sp_set_bufs(int fd)
{
	int bufsz = (int)SG_WIRE_MAX_MSG * 2;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
}

static void *
serve_connection(void *arg)
{
	struct conn_arg *ca = arg;

	serve_channel(&ca->ch);
	close(ca->ch.fd);
	pthread_mutex_destroy(&ca->ch.send_lock);
	pthread_mutex_lock(&ca->l->lock);
	ca->l->active--;
	pthread_mutex_unlock(&ca->l->lock);
	free(ca);
	return NULL;
}

/* One accepted connection: the front's user, or nobody. */
static void
accept_one(struct listener *l, int fd)
{
	struct sg_wire_reply rep;
	struct conn_arg *ca;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	pthread_attr_t attr;
	pthread_t th;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	    len != sizeof(cr)) {
		sg_log_warn("signer: a connection without peer credentials: "
		    "closed");
		close(fd);
		return;
	}
	if (cr.uid != l->front_uid) {
		sg_log_warn("signer: refused a connection from uid %u (pid "
		    "%ld): only the front's user (uid %u) may connect",
		    (unsigned)cr.uid, (long)cr.pid, (unsigned)l->front_uid);
		close(fd);
		return;
	}
	pthread_mutex_lock(&l->lock);
	if (l->active >= MAX_CONNECTIONS) {
		pthread_mutex_unlock(&l->lock);
		sg_log_warn("signer: %d connections already: one more closed",
		    MAX_CONNECTIONS);
		close(fd);
		return;
	}
	l->active++;
	pthread_mutex_unlock(&l->lock);
	sp_set_bufs(fd);
	memset(&rep, 0, sizeof(rep));
	if ((ca = calloc(1, sizeof(*ca))) == NULL ||
	    reply_send(fd, &rep) != 0)
		goto fail;
	chan_init(&ca->ch, &l->pool, fd);
	ca->l = l;
	if (pthread_attr_init(&attr) != 0)
		goto fail;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, serve_connection, ca) != 0) {
		pthread_attr_destroy(&attr);
		goto fail;
	}
	pthread_attr_destroy(&attr);
	return;
fail:
	free(ca);
	close(fd);
	pthread_mutex_lock(&l->lock);
	l->active--;
	pthread_mutex_unlock(&l->lock);
}

static void *
accept_main(void *arg)
{
	struct listener *l = arg;
	int fd;

	for (;;) {
		if ((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			accept_one(l, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EBADF || errno == EINVAL || errno == ENOTSOCK)
			break;
		/* Out of descriptors or memory: let some go first. */
		sg_log_error("signer: accept: %s", strerror(errno));
		poll(NULL, 0, 100);
	}
	return NULL;
}

/* Binds the listening socket, replacing a stale socket file but never a
 * live signer's. */
static int
listen_socket(const char *path, int *ret_fd, char *errbuf, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd, probe;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(errbuf, errlen, "signer_socket: %s exists and "
			    "is not a socket", path);
			return SG_ERR_INVALID;
		}
		if ((probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC,
		    0)) >= 0 && connect(probe, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0) {
			close(probe);
			snprintf(errbuf, errlen, "signer_socket: another "
			    "signer is listening on %s", path);
			return SG_ERR_CONFLICT;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) != 0 && errno != ENOENT) {
			snprintf(errbuf, errlen, "signer_socket: cannot remove "
			    "the stale %s: %s", path, strerror(errno));
			return SG_ERR_IO;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    /* Anyone may connect; the peer's uid decides (accept_one). */
	    chmod(path, 0666) != 0 ||
	    listen(fd, MAX_CONNECTIONS) != 0) {
		snprintf(errbuf, errlen, "signer_socket: %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return SG_ERR_IO;
	}
	*ret_fd = fd;
	return 0;
}

int
sg_signer_listen(const char *socket_path, const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const char *policy_path, const char *log_origin, const char *state_dir,
    const char *log_token, const char *log_key, unsigned concurrency,
    char *errbuf, size_t errlen)
{
	struct sockaddr_un sun;
	struct listener *l;
	pthread_t th;
	int r;

	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "signer_socket: longer than %zu bytes",
		    sizeof(sun.sun_path) - 1);
		return SG_ERR_INVALID;
	}
	/* The signer's own user first, as in the forked signer. */
	if ((r = sg_privdrop_enter(SG_PRIV_SIGNER, errbuf, errlen)) != 0)
		return r;
	/* Lives as long as the process. */
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return SG_ERR_NOMEM;
	l->fd = -1;
	l->front_uid = sg_privdrop_peer_uid(SG_PRIV_FRONT);
	pthread_mutex_init(&l->lock, NULL);
	if ((r = child_setup(&l->c, module_path, tokens, ntokens, NULL, 0,
	    policy_path, log_origin, state_dir, log_token, log_key, errbuf,
	    errlen)) != 0)
		return r;
	if ((r = pool_start(&l->pool, &l->c, concurrency)) != 0) {
		snprintf(errbuf, errlen, "cannot start the signer's workers: "
		    "%s", sg_strerror(r));
		return r;
	}
	if ((r = listen_socket(socket_path, &l->fd, errbuf, errlen)) != 0)
		return r;
	if (pthread_create(&th, NULL, accept_main, l) != 0) {
		snprintf(errbuf, errlen, "cannot start the signer's accept "
		    "thread");
		return SG_ERR_INTERNAL;
	}
	pthread_detach(th);
	sg_log_info("signer: listening on %s for uid %u", socket_path,
	    (unsigned)l->front_uid);
	return 0;
}
