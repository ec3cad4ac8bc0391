/*
 * The front's client of the signer process: its channels, its reply
 * thread and the calls the front makes (sign, checkpoint, probe, reload,
 * key facts).
 *
 * Run by: the front (src/service_signer.c, src/signgated.c), from any
 * thread, and its own reply thread.  It may call: the wire codec's
 * encoders and decoders, sg_privdrop.h (the uid the signer must run as),
 * and, in the child after fork, sp_child_main() (src/signer_serve.c).
 *
 * sg_signer_spawn() creates `channels` SOCK_SEQPACKET socket pairs, forks
 * the signer and waits (bounded) for its READY; sg_signer_connect()
 * connects `channels` times to a listening signer and checks that the
 * socket is served by the signer's user (SO_PEERCRED), then has it re-read
 * its policy file, which must be the one the front read.  Either then
 * fetches every key's public facts once.
 *
 * Calls.  Every request is a call: the client gives it a tag (a counter,
 * from 1; the signer's READY carries 0), registers it, sends it on the
 * next channel in turn and returns (sg_signer_client_sign_async) or waits
 * on its own condition (every other call: many threads share a channel).
 * The reply thread polls every channel, matches each answer to its call
 * by tag, checks it (sg_wire_decode_reply, or sg_wire_decode_batch_reply
 * for SIGN_BATCH, whose answer must also have as many items as were asked
 * and a CMS exactly for each item signed as CMS) and completes the call,
 * outside the lock.  Each call is completed exactly once: with its answer,
 * with SG_ERR_TIMEOUT when no answer came within REPLY_TIMEOUT_MS (its tag
 * is remembered, and a late answer is dropped), or with
 * SG_ERR_UNAVAILABLE when the signer is gone or the client is freed.  The
 * signer is gone, for good, when a channel closes or fails, when an
 * answer is out of protocol, or when one carries a tag that was never
 * asked for or was answered already.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_privdrop.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_util.h"
#include "sg_witness.h"
#include "signer_proc_int.h"

#define READY_TIMEOUT_MS 60000
#define REPLY_TIMEOUT_MS 120000
#define NBUCKETS 256                   /* outstanding calls, by tag */
#define NEXPIRED 1024                  /* overdue tags remembered */
#define READS_PER_ROUND 16             /* answers read per channel per poll */

struct key_fact {
	char name[SG_NAME_MAX];
	EVP_PKEY *pub;
	enum sg_key_alg alg;
	struct sg_token_info token;
};

/*
 * One request on its way.  take() runs on the reply thread with the
 * answer's record (valid only during the call) and says whether it is in
 * protocol (0) or not (SG_ERR_INVALID); then finish() completes the call,
 * once: r 0 after take() accepted the answer, or why there is none.
 * Neither runs under the client's lock, and the call's memory is not
 * touched after finish() returns.
 */
struct call {
	uint64_t tag;
	unsigned ch;
	int64_t deadline;              /* sg_mono_ms() */
	int (*take)(struct call *, const uint8_t *, size_t);
	void (*finish)(struct call *, int);
	struct call *hnext;            /* its bucket */
	struct call *prev, *next;      /* by deadline: the order sent */
};

struct sg_signer_client {
	pid_t pid;
	int fds[MAX_CHANNELS];
	unsigned n;                    /* channels */
	struct key_fact *facts;
	size_t nfacts;
	uint8_t *rbuf;                 /* the reply thread's */
	int wake[2];                   /* a pipe that wakes the reply thread */
	pthread_t reply_thread;
	int have_thread;

	pthread_mutex_t lock;          /* everything below */
	pthread_cond_t cond;           /* the raw channel handed over */
	int dead;
	int closing;
	uint64_t next_tag;
	unsigned next_ch;
	unsigned nroute;               /* channels calls go to: n, or n - 1
	                                  once the last is raw */
	int raw_wanted, raw_ready;
	unsigned inflight[MAX_CHANNELS];
	struct call *buckets[NBUCKETS];
	struct call *head, *tail;
	uint64_t expired[NEXPIRED];    /* a ring of overdue tags */
	uint64_t expired_floor;        /* the newest tag the ring let go */
	size_t nexpired;
};

static void
wake_reply_thread(struct sg_signer_client *c)
{
	char b = 1;

	if (c->wake[1] >= 0)
		(void)!write(c->wake[1], &b, 1);
}

/* ---- the table of calls (c->lock held) ---- */

static void
call_link(struct sg_signer_client *c, struct call *k)
{
	struct call **b = &c->buckets[k->tag % NBUCKETS];

	k->hnext = *b;
	*b = k;
	k->next = NULL;
	k->prev = c->tail;
	if (c->tail != NULL)
		c->tail->next = k;
	else
		c->head = k;
	c->tail = k;
	c->inflight[k->ch]++;
}

static void
call_unlink(struct sg_signer_client *c, struct call *k)
{
	struct call **b = &c->buckets[k->tag % NBUCKETS];

	while (*b != k)
		b = &(*b)->hnext;
	*b = k->hnext;
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		c->head = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	else
		c->tail = k->prev;
	k->hnext = k->prev = k->next = NULL;
	c->inflight[k->ch]--;
}

static struct call *
call_find(struct sg_signer_client *c, uint64_t tag)
{
	struct call *k;

	for (k = c->buckets[tag % NBUCKETS]; k != NULL; k = k->hnext)
		if (k->tag == tag)
			return k;
	return NULL;
}

static int
tag_expired(const struct sg_signer_client *c, uint64_t tag)
{
	size_t i, n = c->nexpired < NEXPIRED ? c->nexpired : NEXPIRED;

	for (i = 0; i < n; i++)
		if (c->expired[i] == tag)
			return 1;
	return 0;
}

/* Takes every call out of the table, for finish(UNAVAILABLE). */
static struct call *
calls_take_all(struct sg_signer_client *c)
{
	struct call *list = NULL, *k;

	while ((k = c->head) != NULL) {
		call_unlink(c, k);
		k->next = list;
		list = k;
	}
	return list;
}

static void
calls_finish(struct call *list, int r)
{
	struct call *k;

	while ((k = list) != NULL) {
		list = k->next;
		k->finish(k, r);
	}
}

/* The signer is gone (c->lock held): every call fails, and new ones are
 * refused.  Returns the calls to finish. */
static struct call *
mark_gone(struct sg_signer_client *c, const char *why)
{
	if (!c->dead && !c->closing)
		sg_log_error("signer: %s; the signer process is gone; signing "
		    "is unavailable until restart", why);
	c->dead = 1;
	pthread_cond_broadcast(&c->cond);
	return calls_take_all(c);
}

/*
 * Registers k and sends req (len bytes, its tag set here) on the next
 * channel.  0: k will be finished, once, on the reply thread (or on the
 * thread of a later send that finds the signer gone).  Otherwise
 * k will not be: SG_ERR_UNAVAILABLE (the signer is gone), SG_ERR_TIMEOUT
 * (the channel did not take the message within REPLY_TIMEOUT_MS).
 */
static int
call_send(struct sg_signer_client *c, struct call *k, void *req, size_t len)
{
	struct call *gone = NULL;
	uint64_t tag;
	unsigned ch;
	ssize_t w;
	int e;

	pthread_mutex_lock(&c->lock);
	if (c->dead || c->closing || c->nroute == 0) {
		pthread_mutex_unlock(&c->lock);
		return SG_ERR_UNAVAILABLE;
	}
	tag = k->tag = ++c->next_tag;
	ch = k->ch = c->next_ch++ % c->nroute;
	k->deadline = sg_mono_ms() + REPLY_TIMEOUT_MS;
	call_link(c, k);
	if (c->head == k)
		/* The reply thread may be waiting without a deadline. */
		wake_reply_thread(c);
	pthread_mutex_unlock(&c->lock);
	/* From here on k may be finished (and gone) at any moment. */
	sg_wire_set_tag(req, tag);
	do
		w = send(c->fds[ch], req, len, MSG_NOSIGNAL);
	while (w < 0 && errno == EINTR);
	if (w == (ssize_t)len)
		return 0;
	e = errno;
	pthread_mutex_lock(&c->lock);
	if (call_find(c, tag) == NULL) {
		/* Finished meanwhile (overdue, or the signer gone). */
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	call_unlink(c, k);
	if (w < 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
		pthread_mutex_unlock(&c->lock);
		sg_log_error("signer: channel %u took no request within %d ms",
		    ch, REPLY_TIMEOUT_MS);
		return SG_ERR_TIMEOUT;
	}
	gone = mark_gone(c, "a request could not be sent");
	wake_reply_thread(c);
	pthread_mutex_unlock(&c->lock);
	calls_finish(gone, SG_ERR_UNAVAILABLE);
	return SG_ERR_UNAVAILABLE;
}

/* ---- the reply thread ---- */

/* One record from channel ch: its call, or the signer gone.  Returns 0
 * while the signer is still trusted. */
static int
reply_one(struct sg_signer_client *c, unsigned ch, const uint8_t *buf,
    size_t len)
{
	struct call *k, *gone;
	uint64_t tag = sg_wire_tag(buf, len);
	char why[96];

	pthread_mutex_lock(&c->lock);
	if ((k = call_find(c, tag)) != NULL && k->ch == ch) {
		call_unlink(c, k);
		pthread_mutex_unlock(&c->lock);
		if (k->take(k, buf, len) == 0) {
			k->finish(k, 0);
			return 0;
		}
		k->finish(k, SG_ERR_UNAVAILABLE);
		snprintf(why, sizeof(why), "an answer out of protocol on "
		    "channel %u", ch);
		pthread_mutex_lock(&c->lock);
	} else if (k == NULL && tag != 0 && (tag_expired(c, tag) ||
	    tag <= c->expired_floor)) {
		pthread_mutex_unlock(&c->lock);
		sg_log_warn("signer: a late answer on channel %u dropped", ch);
		return 0;
	} else
		snprintf(why, sizeof(why), "an answer for no request of "
		    "channel %u (tag %llu)", ch, (unsigned long long)tag);
	gone = mark_gone(c, why);
	pthread_mutex_unlock(&c->lock);
	calls_finish(gone, SG_ERR_UNAVAILABLE);
	return -1;
}

/* Reads what channel ch holds (revents from poll); -1 once the signer is
 * gone. */
static int
reply_read(struct sg_signer_client *c, unsigned ch, short revents)
{
	struct call *gone;
	ssize_t n;
	int i;

	for (i = 0; i < READS_PER_ROUND; i++) {
		do
			n = recv(c->fds[ch], c->rbuf, SG_WIRE_MAX_FROM_SIGNER + 1,
			    MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    !(revents & (POLLHUP | POLLERR)))
			return 0;
		if (n <= 0)
			break;
		if (reply_one(c, ch, c->rbuf, (size_t)n) != 0)
			return -1;
	}
	if (i == READS_PER_ROUND)
		return 0;
	pthread_mutex_lock(&c->lock);
	gone = mark_gone(c, n == 0 ? "a channel closed" : "a channel failed");
	pthread_mutex_unlock(&c->lock);
	calls_finish(gone, SG_ERR_UNAVAILABLE);
	return -1;
}

/* Overdue calls out of the table (c->lock held), their tags remembered;
 * *ret_wait: ms until the next deadline, or -1 for none. */
static struct call *
calls_overdue(struct sg_signer_client *c, int *ret_wait)
{
	struct call *list = NULL, *k;
	int64_t now = sg_mono_ms();

	while ((k = c->head) != NULL && k->deadline <= now) {
		call_unlink(c, k);
		/* A tag the ring lets go is still known overdue: every tag
		 * up to it was sent and is not waited for any more. */
		if (c->nexpired >= NEXPIRED &&
		    c->expired[c->nexpired % NEXPIRED] > c->expired_floor)
			c->expired_floor = c->expired[c->nexpired % NEXPIRED];
		c->expired[c->nexpired++ % NEXPIRED] = k->tag;
		sg_log_error("signer: no answer within %d ms on channel %u",
		    REPLY_TIMEOUT_MS, k->ch);
		k->next = list;
		list = k;
	}
	*ret_wait = k == NULL ? -1 : (int)(k->deadline - now);
	return list;
}

static void
drain_wake(int fd)
{
	char b[64];

	while (read(fd, b, sizeof(b)) > 0)
		;
}

static void *
reply_main(void *arg)
{
	struct sg_signer_client *c = arg;
	struct pollfd pfd[MAX_CHANNELS + 1];
	struct call *list;
	unsigned i, npoll;
	int wait, pr, dead;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (c->closing) {
			list = calls_take_all(c);
			pthread_mutex_unlock(&c->lock);
			calls_finish(list, SG_ERR_UNAVAILABLE);
			break;
		}
		/* The raw channel is handed over once nothing is due on it. */
		if (c->raw_wanted && !c->raw_ready &&
		    c->inflight[c->n - 1] == 0) {
			c->raw_ready = 1;
			pthread_cond_broadcast(&c->cond);
		}
		dead = c->dead;
		npoll = c->raw_ready ? c->n - 1 : c->n;
		list = calls_overdue(c, &wait);
		pthread_mutex_unlock(&c->lock);
		calls_finish(list, SG_ERR_TIMEOUT);
		for (i = 0; i < npoll && !dead; i++) {
			pfd[i].fd = c->fds[i];
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (dead)
			npoll = 0;
		pfd[npoll].fd = c->wake[0];
		pfd[npoll].events = POLLIN;
		pfd[npoll].revents = 0;
		pr = poll(pfd, npoll + 1, wait);
		if (pr < 0 && errno != EINTR) {
			sg_log_error("signer: poll: %s", strerror(errno));
			pthread_mutex_lock(&c->lock);
			list = mark_gone(c, "the reply thread failed");
			pthread_mutex_unlock(&c->lock);
			calls_finish(list, SG_ERR_UNAVAILABLE);
			poll(NULL, 0, 100);
			continue;
		}
		if (pr <= 0)
			continue;
		if (pfd[npoll].revents != 0)
			drain_wake(c->wake[0]);
		for (i = 0; i < npoll; i++)
			if (pfd[i].revents != 0 &&
			    reply_read(c, i, pfd[i].revents) != 0)
				break;
	}
	return NULL;
}

/* ---- synchronous calls ---- */

struct sync_call {
	struct call k;
	struct sg_signer_client *c;
	pthread_cond_t cond;           /* done, under c->lock */
	int (*check)(const uint8_t *, size_t, void *, int *);
	void *arg;
	int cr;                        /* what check() said of the answer */
	int r;
	int done;
};

static int
sync_take(struct call *k, const uint8_t *buf, size_t len)
{
	struct sync_call *s = (struct sync_call *)k;

	return s->check(buf, len, s->arg, &s->cr) != 0 ? SG_ERR_INVALID : 0;
}

static void
sync_finish(struct call *k, int r)
{
	struct sync_call *s = (struct sync_call *)k;
	struct sg_signer_client *c = s->c;

	pthread_mutex_lock(&c->lock);
	s->r = r;
	s->done = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Sends one request and waits for its answer; check() takes the answer's
 * record (on the reply thread) and says whether it is in protocol: one
 * that is not marks the signer gone.  SG_ERR_UNAVAILABLE then, or
 * SG_ERR_TIMEOUT; otherwise what check returned in *ret_r.
 */
static int
exchange_raw(struct sg_signer_client *c, void *req, size_t len,
    int (*check)(const uint8_t *, size_t, void *, int *), void *arg,
    int *ret_r)
{
	struct sync_call s;
	int r;

	*ret_r = 0;
	memset(&s, 0, sizeof(s));
	s.k.take = sync_take;
	s.k.finish = sync_finish;
	s.c = c;
	s.check = check;
	s.arg = arg;
	pthread_cond_init(&s.cond, NULL);
	if ((r = call_send(c, &s.k, req, len)) == 0) {
		pthread_mutex_lock(&c->lock);
		while (!s.done)
			pthread_cond_wait(&s.cond, &c->lock);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_cond_destroy(&s.cond);
	if (r != 0)
		return r;
	if (s.r != 0)
		return s.r;
	*ret_r = s.cr;
	return 0;
}

struct reply_arg {
	struct sg_wire_reply *rep;
	uint8_t **ret_extra;
	size_t *ret_extra_len;
};

/* A REPLY: its fixed part, and a copy of its CMS when asked. */
static int
check_reply(const uint8_t *buf, size_t n, void *arg, int *ret_r)
{
	struct reply_arg *ra = arg;
	const uint8_t *extra;
	struct sg_wire_reply *rep = ra->rep;

	if (sg_wire_decode_reply(buf, n, rep, &extra) != 0)
		return SG_ERR_INVALID;
	if (ra->ret_extra != NULL) {
		*ra->ret_extra = NULL;
		*ra->ret_extra_len = rep->cms_len;
		if (rep->cms_len > 0 && (*ra->ret_extra =
		    malloc(rep->cms_len)) == NULL)
			*ret_r = SG_ERR_NOMEM;
		else if (rep->cms_len > 0)
			memcpy(*ra->ret_extra, extra, rep->cms_len);
	}
	return 0;
}

/* Sends one request and waits for its REPLY.  The reply's fixed part
 * goes to rep, its CMS (if any) to *ret_extra. */
static int
exchange(struct sg_signer_client *c, void *req, size_t len,
    struct sg_wire_reply *rep, uint8_t **ret_extra, size_t *ret_extra_len)
{
	struct reply_arg ra = { rep, ret_extra, ret_extra_len };
	int r, cr;

	if ((r = exchange_raw(c, req, len, check_reply, &ra, &cr)) != 0)
		return r;
	return cr;
}

/* ---- the client ---- */

static struct sg_signer_client *
client_alloc(void)
{
	struct sg_signer_client *c;
	unsigned i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->pid = -1;
	c->wake[0] = c->wake[1] = -1;
	for (i = 0; i < MAX_CHANNELS; i++)
		c->fds[i] = -1;
	if ((c->rbuf = malloc(SG_WIRE_MAX_FROM_SIGNER + 1)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

/* The reply thread, once the channels are open and the signer READY. */
static int
client_start(struct sg_signer_client *c, char *errbuf, size_t errlen)
{
	struct timeval tv = { REPLY_TIMEOUT_MS / 1000, 0 };
	unsigned i;

	/* A send waits for room at most as long as for an answer. */
	for (i = 0; i < c->n; i++)
		setsockopt(c->fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv,
		    sizeof(tv));
	c->nroute = c->n;
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		c->wake[0] = c->wake[1] = -1;
		snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
		return SG_ERR_IO;
	}
	if (pthread_create(&c->reply_thread, NULL, reply_main, c) != 0) {
		snprintf(errbuf, errlen, "cannot start the signer client's "
		    "reply thread");
		return SG_ERR_INTERNAL;
	}
	c->have_thread = 1;
	return 0;
}

/* The signer's first message on a channel: a REPLY with its status. */
static int
wait_ready(int fd, uint8_t *buf, char *errbuf, size_t errlen)
{
	struct sg_wire_reply rep;
	const uint8_t *extra;
	struct pollfd pfd;
	ssize_t n;
	int pr;

	pfd.fd = fd;
	pfd.events = POLLIN;
	do
		pr = poll(&pfd, 1, READY_TIMEOUT_MS);
	while (pr < 0 && errno == EINTR);
	if (pr != 1 || (n = recv(fd, buf, SG_WIRE_MAX_FROM_SIGNER, 0)) <
	    (ssize_t)sizeof(rep)) {
		snprintf(errbuf, errlen, "the signer process did not start");
		return SG_ERR_UNAVAILABLE;
	}
	if (sg_wire_decode_reply(buf, (size_t)n, &rep, &extra) != 0) {
		snprintf(errbuf, errlen, "the signer process failed to start");
		return SG_ERR_UNAVAILABLE;
	}
	if (rep.status != 0) {
		snprintf(errbuf, errlen, "%s", rep.err[0] ? rep.err :
		    "the signer process failed to start");
		return rep.status;
	}
	return 0;
}

/* Key facts, once. */
static int
client_fetch_facts(struct sg_signer_client *c,
    const struct sg_signer_key_spec *keys, size_t nkeys, char *errbuf,
    size_t errlen)
{
	struct sg_wire_reply rep;
	size_t k;
	int r;

	if ((c->facts = calloc(nkeys ? nkeys : 1, sizeof(*c->facts))) ==
	    NULL)
		return SG_ERR_NOMEM;
	for (k = 0; k < nkeys; k++) {
		struct sg_wire_name w;
		const unsigned char *p;
		struct key_fact *f = &c->facts[c->nfacts];

		if ((r = sg_wire_encode_name(&w, SG_WIRE_KEYINFO,
		    keys[k].name)) != 0 ||
		    (r = exchange(c, &w, sizeof(w), &rep, NULL, NULL)) != 0 ||
		    (r = rep.status) != 0) {
			snprintf(errbuf, errlen, "key '%s': %s", keys[k].name,
			    sg_strerror(r));
			return r;
		}
		p = rep.der;
		if ((f->pub = d2i_PUBKEY(NULL, &p, rep.der_len)) == NULL)
			return SG_ERR_CRYPTO;
		snprintf(f->name, sizeof(f->name), "%s", keys[k].name);
		f->alg = (enum sg_key_alg)rep.alg;
		f->token = rep.token;
		c->nfacts++;
	}
	return 0;
}

int
sg_signer_client_adopt(pid_t pid, const int *fds, unsigned n,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    struct sg_signer_client **ret, char *errbuf, size_t errlen)
{
	struct sg_signer_client *c;
	unsigned i;
	int r;

	if ((c = client_alloc()) == NULL) {
		for (i = 0; i < n; i++)
			close(fds[i]);
		return SG_ERR_NOMEM;
	}
	c->pid = pid;
	for (i = 0; i < n && i < MAX_CHANNELS; i++)
		c->fds[c->n++] = fds[i];
	for (; i < n; i++)
		close(fds[i]);
	if (n == 0 || n > MAX_CHANNELS) {
		sg_signer_client_free(c);
		return SG_ERR_INVALID;
	}
	if ((r = wait_ready(c->fds[0], c->rbuf, errbuf, errlen)) != 0 ||
	    (r = client_start(c, errbuf, errlen)) != 0 ||
	    (r = client_fetch_facts(c, keys, nkeys, errbuf, errlen)) != 0) {
		sg_signer_client_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int
sg_signer_spawn(const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    unsigned channels, unsigned concurrency, struct sg_signer_client **ret,
    char *errbuf, size_t errlen)
{
	int fds[MAX_CHANNELS], child_fds[MAX_CHANNELS], sv[2];
	unsigned i, n = 0;
	pid_t pid;

	if (channels == 0 || channels > MAX_CHANNELS || log_origin == NULL ||
	    state_dir == NULL || concurrency > SG_SIGNER_CONCURRENCY_MAX)
		return SG_ERR_INVALID;
	for (i = 0; i < channels; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) != 0) {
			snprintf(errbuf, errlen, "socketpair: %s",
			    strerror(errno));
			goto fail;
		}
		sp_set_bufs(sv[0]);
		sp_set_bufs(sv[1]);
		fds[i] = sv[0];
		child_fds[i] = sv[1];
		n++;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		snprintf(errbuf, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		for (i = 0; i < channels; i++)
			close(fds[i]);
		sp_child_main(child_fds, channels, concurrency, module_path,
		    tokens, ntokens, keys, nkeys, policy_path, log_origin,
		    state_dir);
		_exit(1);
	}
	for (i = 0; i < channels; i++)
		close(child_fds[i]);
	/* READY, bounded; the facts. */
	return sg_signer_client_adopt(pid, fds, channels, keys, nkeys, ret,
	    errbuf, errlen);
fail:
	for (i = 0; i < n; i++) {
		close(fds[i]);
		close(child_fds[i]);
	}
	return SG_ERR_INTERNAL;
}

/* One channel to a listening signer, which must run as its own user. */
static int
connect_channel(struct sg_signer_client *c, const char *path,
    const struct sockaddr_un *sun, uid_t want, char *errbuf, size_t errlen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd, r;

	memset(&cr, 0, sizeof(cr));
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(errbuf, errlen, "socket: %s", strerror(errno));
		return SG_ERR_IO;
	}
	sp_set_bufs(fd);
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) != 0) {
		snprintf(errbuf, errlen, "signer_socket %s: %s (is the signer "
		    "running?)", path, strerror(errno));
		close(fd);
		return SG_ERR_UNAVAILABLE;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
	    len != sizeof(cr) || cr.uid != want) {
		snprintf(errbuf, errlen, "signer_socket %s: served by uid %u, "
		    "not by the signer's user (uid %u)", path,
		    (unsigned)cr.uid, (unsigned)want);
		close(fd);
		return SG_ERR_FORBIDDEN;
	}
	c->fds[c->n++] = fd;            /* closed with the client */
	if ((r = wait_ready(fd, c->rbuf, errbuf, errlen)) != 0) {
		if (r == SG_ERR_UNAVAILABLE)
			snprintf(errbuf, errlen, "signer_socket %s: the signer "
			    "closed the connection (does it take uid %u for "
			    "the front's?)", path, (unsigned)getuid());
		return r;
	}
	return 0;
}

int
sg_signer_connect(const char *socket_path, const char *policy_sha256_hex,
    const struct sg_signer_key_spec *keys, size_t nkeys, unsigned channels,
    struct sg_signer_client **ret, char *errbuf, size_t errlen)
{
	struct sg_signer_client *c;
	struct sockaddr_un sun;
	char e[SG_SIGNER_ERR_MAX];
	uid_t want = sg_privdrop_peer_uid(SG_PRIV_SIGNER);
	unsigned i;
	int r;

	e[0] = '\0';
	if (channels == 0 || channels > MAX_CHANNELS)
		return SG_ERR_INVALID;
	if (strlen(socket_path) >= sizeof(sun.sun_path)) {
		snprintf(errbuf, errlen, "signer_socket: longer than %zu bytes",
		    sizeof(sun.sun_path) - 1);
		return SG_ERR_INVALID;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, socket_path, strlen(socket_path));
	if ((c = client_alloc()) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < channels; i++)
		if ((r = connect_channel(c, socket_path, &sun, want, errbuf,
		    errlen)) != 0)
			goto fail;
	if ((r = client_start(c, errbuf, errlen)) != 0)
		goto fail;
	/* The signer may have read an older policy file than this front:
	 * it reads the file again and must find what the front read. */
	if (policy_sha256_hex != NULL &&
	    (r = sg_signer_client_reload(c, policy_sha256_hex, e,
	    sizeof(e))) != 0) {
		snprintf(errbuf, errlen, "the signer at %s does not hold the "
		    "front's policy: %s", socket_path, e[0] ? e :
		    sg_strerror(r));
		goto fail;
	}
	if ((r = client_fetch_facts(c, keys, nkeys, errbuf, errlen)) != 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	sg_signer_client_free(c);
	return r;
}

void
sg_signer_client_free(struct sg_signer_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->have_thread) {
		/* Every call still due fails, on the reply thread. */
		pthread_mutex_lock(&c->lock);
		c->closing = 1;
		wake_reply_thread(c);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->reply_thread, NULL);
	}
	for (i = 0; i < MAX_CHANNELS; i++)
		if (c->fds[i] >= 0)
			close(c->fds[i]);
	if (c->pid > 0) {
		int status, tries;
		/* Closing the channels ends the child; give it a moment. */
		for (tries = 0; tries < 50; tries++) {
			if (waitpid(c->pid, &status, WNOHANG) == c->pid)
				break;
			usleep(20000);
		}
		if (tries == 50) {
			kill(c->pid, SIGKILL);
			waitpid(c->pid, &status, 0);
		}
	}
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	for (i = 0; i < c->nfacts; i++)
		EVP_PKEY_free(c->facts[i].pub);
	free(c->facts);
	free(c->rbuf);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

int
sg_signer_client_fd(struct sg_signer_client *c)
{
	int fd = -1;

	pthread_mutex_lock(&c->lock);
	if (c->n < 2 || !c->have_thread) {
		pthread_mutex_unlock(&c->lock);
		return -1;
	}
	if (!c->raw_wanted) {
		/* No new call goes there; the reply thread lets go of it
		 * once the answers due on it are in. */
		c->raw_wanted = 1;
		c->nroute = c->n - 1;
		wake_reply_thread(c);
	}
	while (!c->raw_ready && !c->dead)
		pthread_cond_wait(&c->cond, &c->lock);
	if (c->raw_ready)
		fd = c->fds[c->n - 1];
	pthread_mutex_unlock(&c->lock);
	return fd;
}

int
sg_signer_client_key_public(struct sg_signer_client *c, const char *name,
    EVP_PKEY **ret_pub, enum sg_key_alg *ret_alg,
    struct sg_token_info *ret_token)
{
	size_t i;

	for (i = 0; i < c->nfacts; i++) {
		if (strcmp(c->facts[i].name, name) != 0)
			continue;
		if (ret_pub != NULL)
			*ret_pub = c->facts[i].pub;
		if (ret_alg != NULL)
			*ret_alg = c->facts[i].alg;
		if (ret_token != NULL)
			*ret_token = c->facts[i].token;
		return 0;
	}
	return SG_ERR_NOT_FOUND;
}

int
sg_signer_client_sign(struct sg_signer_client *c,
    const struct sg_sign_msg *msg, const struct sg_sign_evidence *ev,
    struct sg_sign_reply *reply, uint8_t **ret_cms, size_t *ret_cms_len,
    char *errbuf, size_t errlen)
{
	struct sg_wire_reply rep;
	uint8_t *buf, *extra = NULL;
	size_t len, extra_len = 0;
	int r;

	memset(&rep, 0, sizeof(rep));
	memset(reply, 0, sizeof(*reply));
	if ((r = sg_wire_encode_sign(msg, ev, &buf, &len)) != 0) {
		snprintf(errbuf, errlen, "the request does not fit a signer "
		    "message: %s", sg_strerror(r));
		return reply->status = r;
	}
	r = exchange(c, buf, len, &rep, &extra, &extra_len);
	free(buf);
	if (r == 0)
		r = rep.status;
	if (r != 0) {
		snprintf(errbuf, errlen, "%s", r == SG_ERR_UNAVAILABLE &&
		    rep.err[0] == '\0' ? "the signer process is unavailable" :
		    rep.err);
		free(extra);
		explicit_bzero(&rep, sizeof(rep));
		return reply->status = r;
	}
	memcpy(reply->sig, rep.sig, rep.sig_len);
	reply->sig_len = rep.sig_len;
	explicit_bzero(&rep, sizeof(rep));
	if (ret_cms != NULL) {
		*ret_cms = extra;
		*ret_cms_len = extra_len;
	} else
		free(extra);
	return 0;
}

/* ---- signing without waiting ---- */

struct async_call {
	struct call k;
	sg_signer_sign_done done;
	void *arg;
	int status;                    /* the signer's */
	struct sg_sign_reply reply;
	uint8_t *cms;
	size_t cms_len;
	char err[SG_SIGNER_ERR_MAX];
};

/* The answer to an asynchronous SIGN: a REPLY, copied out. */
static int
async_take(struct call *k, const uint8_t *buf, size_t len)
{
	struct async_call *a = (struct async_call *)k;
	struct sg_wire_reply *rep;
	const uint8_t *extra;
	int r = 0;

	if ((rep = malloc(sizeof(*rep))) == NULL) {
		/* In protocol or not, this answer cannot be read. */
		a->status = SG_ERR_NOMEM;
		return 0;
	}
	if (sg_wire_decode_reply(buf, len, rep, &extra) != 0)
		r = SG_ERR_INVALID;
	else {
		a->status = rep->status;
		snprintf(a->err, sizeof(a->err), "%s", rep->err);
		memcpy(a->reply.sig, rep->sig, rep->sig_len);
		a->reply.sig_len = rep->sig_len;
		if (rep->cms_len > 0 && rep->status == 0 &&
		    (a->cms = malloc(rep->cms_len)) == NULL)
			a->status = SG_ERR_NOMEM;
		else if (rep->cms_len > 0 && rep->status == 0) {
			memcpy(a->cms, extra, rep->cms_len);
			a->cms_len = rep->cms_len;
		}
	}
	explicit_bzero(rep, sizeof(*rep));
	free(rep);
	return r;
}

static void
async_finish(struct call *k, int r)
{
	struct async_call *a = (struct async_call *)k;

	if (r == 0)
		r = a->status;
	if (r != 0) {
		explicit_bzero(&a->reply, sizeof(a->reply));
		free(a->cms);
		a->cms = NULL;
		a->cms_len = 0;
		if (a->err[0] == '\0' && r == SG_ERR_UNAVAILABLE)
			snprintf(a->err, sizeof(a->err), "the signer process "
			    "is unavailable");
		else if (a->err[0] == '\0' && r == SG_ERR_TIMEOUT)
			snprintf(a->err, sizeof(a->err), "no answer from the "
			    "signer process within %d s",
			    REPLY_TIMEOUT_MS / 1000);
	}
	a->reply.status = r;
	a->done(a->arg, r, &a->reply, a->cms, a->cms_len, a->err);
	explicit_bzero(a, sizeof(*a));
	free(a);
}

int
sg_signer_client_sign_async(struct sg_signer_client *c,
    const struct sg_sign_msg *msg, const struct sg_sign_evidence *ev,
    sg_signer_sign_done done, void *arg)
{
	struct async_call *a;
	uint8_t *buf;
	size_t len;
	int r;

	if (done == NULL)
		return SG_ERR_INVALID;
	if ((r = sg_wire_encode_sign(msg, ev, &buf, &len)) != 0)
		return r;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		free(buf);
		return SG_ERR_NOMEM;
	}
	a->k.take = async_take;
	a->k.finish = async_finish;
	a->done = done;
	a->arg = arg;
	/* Once sent, a is the reply thread's. */
	if ((r = call_send(c, &a->k, buf, len)) != 0)
		free(a);
	free(buf);
	return r;
}

int
sg_signer_client_checkpoint(struct sg_signer_client *c,
    const struct sg_witness_request *req, struct sg_witness_reply *ret)
{
	struct sg_wire_checkpoint *w;
	struct sg_wire_reply rep;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (req->nproof > SG_MERKLE_MAX_PROOF)
		return SG_ERR_INVALID;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = sg_wire_encode_checkpoint(w, req)) != 0) {
		free(w);
		return r;
	}
	r = exchange(c, w, sizeof(*w), &rep, NULL, NULL);
	free(w);
	if (r != 0) {
		snprintf(ret->err, sizeof(ret->err), "the signer process is "
		    "unavailable");
		return r;
	}
	ret->rec.present = rep.log_recorded != 0;
	ret->rec.size = rep.log_size;
	memcpy(ret->rec.root, rep.log_root, SG_HASH_LEN);
	snprintf(ret->err, sizeof(ret->err), "%s", rep.err);
	if (rep.status != 0)
		return rep.status;
	if (rep.sig_len != SG_ED25519_SIG)
		return SG_ERR_HSM;
	memcpy(ret->sig, rep.sig, SG_ED25519_SIG);
	return 0;
}

int
sg_signer_client_probe(struct sg_signer_client *c, const char *key)
{
	struct sg_wire_name w;
	struct sg_wire_reply rep;
	int r;

	if ((r = sg_wire_encode_name(&w, SG_WIRE_PROBE, key)) != 0 ||
	    (r = exchange(c, &w, sizeof(w), &rep, NULL, NULL)) != 0)
		return r;
	return rep.status;
}

int
sg_signer_client_reload(struct sg_signer_client *c,
    const char *expect_sha256_hex, char *errbuf, size_t errlen)
{
	struct sg_wire_text w;
	struct sg_wire_reply rep;
	int r;

	if ((r = sg_wire_encode_reload(&w, expect_sha256_hex)) != 0 ||
	    (r = exchange(c, &w, sizeof(w), &rep, NULL, NULL)) != 0)
		return r;
	if (rep.status != 0)
		snprintf(errbuf, errlen, "%s", rep.err);
	return rep.status;
}

struct batch_arg {
	size_t n;                      /* items asked */
	enum sg_format format;
	struct sg_batch_result *res;
	char *errbuf;
	size_t errlen;
};

/* A BATCH_REPLY for this batch: items copied out into ba->res. */
static int
check_batch_reply(const uint8_t *buf, size_t len, void *arg, int *ret_r)
{
	struct batch_arg *ba = arg;
	struct sg_wire_batch_reply w;
	const uint8_t *extra;
	size_t i, off = 0;

	if (sg_wire_decode_batch_reply(buf, len, &w, &extra) != 0 ||
	    (w.status == 0 && w.nitems != ba->n))
		return SG_ERR_INVALID;
	for (i = 0; i < w.nitems; i++)
		if (w.items[i].status == 0 &&
		    (w.items[i].cms_len != 0) != (ba->format == SG_FORMAT_CMS))
			return SG_ERR_INVALID;
	snprintf(ba->errbuf, ba->errlen, "%s", w.err);
	if ((*ret_r = w.status) != 0)
		return 0;
	for (i = 0; i < w.nitems && *ret_r == 0; i++) {
		struct sg_batch_result *r = &ba->res[i];
		r->status = w.items[i].status;
		r->sig_len = w.items[i].sig_len;
		memcpy(r->sig, extra + off, r->sig_len);
		off += r->sig_len;
		r->cms_len = w.items[i].cms_len;
		if (r->cms_len > 0 && (r->cms = malloc(r->cms_len)) == NULL)
			*ret_r = SG_ERR_NOMEM;
		else if (r->cms_len > 0)
			memcpy(r->cms, extra + off, r->cms_len);
		off += w.items[i].cms_len;
	}
	explicit_bzero(&w, sizeof(w));
	return 0;
}

int
sg_signer_client_sign_batch(struct sg_signer_client *c, const char *key,
    const struct sg_sign_evidence *ev, const struct sg_batch_item *items,
    size_t n, struct sg_batch_result *res, char *errbuf, size_t errlen)
{
	struct batch_arg ba = { n, ev != NULL ? ev->format : SG_FORMAT_RAW,
	    res, errbuf, errlen };
	uint8_t *buf;
	size_t len;
	int r, br = 0;

	if (errlen > 0)
		errbuf[0] = '\0';
	if (res != NULL && n <= SG_SIGNER_BATCH_MAX)
		memset(res, 0, n * sizeof(*res));
	if (res == NULL || (r = sg_wire_encode_sign_batch(key, ev, items, n,
	    &buf, &len)) != 0) {
		r = res == NULL ? SG_ERR_INVALID : r;
		snprintf(errbuf, errlen, "the batch does not fit a signer "
		    "message: %s", sg_strerror(r));
		return r;
	}
	r = exchange_raw(c, buf, len, check_batch_reply, &ba, &br);
	free(buf);
	if (r == 0)
		r = br;
	if (r != 0) {
		sg_batch_results_clear(res, n);
		if (errlen > 0 && errbuf[0] == '\0')
			snprintf(errbuf, errlen, "%s", r == SG_ERR_UNAVAILABLE ?
			    "the signer process is unavailable" :
			    sg_strerror(r));
	}
	return r;
}
