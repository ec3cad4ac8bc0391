/*
 * The front's client of the signer process: its channels and the calls
 * the front makes (sign, checkpoint, probe, reload, key facts).
 *
 * Run by: the front (src/service_signer.c, src/signgated.c), from any
 * thread: a call takes a free channel, sends one request, waits a bounded
 * time for the reply and gives the channel back.  It may call: the wire
 * codec's encoders and sg_wire_decode_reply(), sg_privdrop.h (the uid the
 * signer must run as), and, in the child after fork, sp_child_main()
 * (src/signer_serve.c).
 *
 * sg_signer_spawn() creates `channels` SOCK_SEQPACKET socket pairs, forks
 * the signer and waits (bounded) for its READY; sg_signer_connect()
 * connects `channels` times to a listening signer and checks that the
 * socket is served by the signer's user (SO_PEERCRED), then has it re-read
 * its policy file, which must be the one the front read.  Either then
 * fetches every key's public facts once.
 *
 * The front builds requests with the wire module's encoders and checks
 * every reply with sg_wire_decode_reply() (sg_wire_decode_batch_reply()
 * for SIGN_BATCH, whose answer must also have as many items as were asked,
 * and a CMS exactly for each item signed as CMS); a reply out of protocol
 * marks the signer gone.  A reply overdue retires its channel (a late answer
 * would be read as the next request's).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

struct key_fact {
	char name[SG_NAME_MAX];
	EVP_PKEY *pub;
	enum sg_key_alg alg;
	struct sg_token_info token;
};

struct sg_signer_client {
	pid_t pid;
	int fds[MAX_CHANNELS];
	int busy[MAX_CHANNELS];
	unsigned n;
	int dead;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct key_fact *facts;
	size_t nfacts;
	uint8_t *rbuf[MAX_CHANNELS];
};

static int
take_channel(struct sg_signer_client *c)
{
	unsigned i;
	int ch = -1;

	pthread_mutex_lock(&c->lock);
	while (!c->dead) {
		for (i = 0; i < c->n; i++)
			if (!c->busy[i]) {
				c->busy[i] = 1;
				ch = (int)i;
				break;
			}
		if (ch >= 0)
			break;
		pthread_cond_wait(&c->cond, &c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return ch;
}

static void
give_channel(struct sg_signer_client *c, int ch, int broken)
{
	pthread_mutex_lock(&c->lock);
	c->busy[ch] = 0;
	if (broken) {
		c->dead = 1;
		sg_log_error("signer: the signer process is gone; signing is "
		    "unavailable until restart");
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* A channel whose answer is overdue is never used again. */
static void
retire_channel(struct sg_signer_client *c, int ch)
{
	unsigned i, live = 0;

	pthread_mutex_lock(&c->lock);
	shutdown(c->fds[ch], SHUT_RDWR);
	/* Stays busy for ever, so nobody takes it. */
	for (i = 0; i < c->n; i++)
		if (!c->busy[i])
			live++;
	if (live == 0 && c->n > 0)
		sg_log_warn("signer: every channel is busy or retired");
	sg_log_error("signer: no answer within %d ms; channel %d retired",
	    REPLY_TIMEOUT_MS, ch);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Sends one request and waits for its reply on a free channel; check()
 * takes the reply record while the channel is still held (it is in the
 * channel's buffer) and says whether it is in protocol: a reply that is
 * not marks the signer gone.  SG_ERR_UNAVAILABLE then; otherwise what
 * check returned in *ret_r.
 */
static int
exchange_raw(struct sg_signer_client *c, const void *req, size_t len,
    int (*check)(const uint8_t *, size_t, void *, int *), void *arg,
    int *ret_r)
{
	ssize_t n;
	int ch;

	*ret_r = 0;
	if ((ch = take_channel(c)) < 0)
		return SG_ERR_UNAVAILABLE;
	if (send(c->fds[ch], req, len, MSG_NOSIGNAL) != (ssize_t)len) {
		give_channel(c, ch, 1);
		return SG_ERR_UNAVAILABLE;
	}
	/* The signer answers within the HSM's own deadlines; past this, the
	 * channel is retired (a late answer would be read as the next one's)
	 * and the caller gets an error. */
	{
		struct pollfd pfd = { c->fds[ch], POLLIN, 0 };
		int pr;
		do
			pr = poll(&pfd, 1, REPLY_TIMEOUT_MS);
		while (pr < 0 && errno == EINTR);
		if (pr == 0) {
			retire_channel(c, ch);
			return SG_ERR_TIMEOUT;
		}
	}
	do
		n = recv(c->fds[ch], c->rbuf[ch], SG_WIRE_MAX_FROM_SIGNER, 0);
	while (n < 0 && errno == EINTR);
	/* A signer that answers out of protocol is not used again. */
	if (n < 0 || check(c->rbuf[ch], (size_t)n, arg, ret_r) != 0) {
		give_channel(c, ch, 1);
		return SG_ERR_UNAVAILABLE;
	}
	give_channel(c, ch, 0);
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
exchange(struct sg_signer_client *c, const void *req, size_t len,
    struct sg_wire_reply *rep, uint8_t **ret_extra, size_t *ret_extra_len)
{
	struct reply_arg ra = { rep, ret_extra, ret_extra_len };
	int r, cr;

	if ((r = exchange_raw(c, req, len, check_reply, &ra, &cr)) != 0)
		return r;
	return cr;
}

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
	for (i = 0; i < MAX_CHANNELS; i++)
		c->fds[i] = -1;
	return c;
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
sg_signer_spawn(const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    unsigned channels, struct sg_signer_client **ret, char *errbuf,
    size_t errlen)
{
	struct sg_signer_client *c;
	int child_fds[MAX_CHANNELS], sv[2];
	unsigned i;
	int r = SG_ERR_INTERNAL;

	if (channels == 0 || channels > MAX_CHANNELS || log_origin == NULL ||
	    state_dir == NULL)
		return SG_ERR_INVALID;
	if ((c = client_alloc()) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < MAX_CHANNELS; i++)
		child_fds[i] = -1;
	for (i = 0; i < channels; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) != 0) {
			snprintf(errbuf, errlen, "socketpair: %s",
			    strerror(errno));
			goto fail;
		}
		sp_set_bufs(sv[0]);
		sp_set_bufs(sv[1]);
		c->fds[i] = sv[0];
		child_fds[i] = sv[1];
		if ((c->rbuf[i] = malloc(SG_WIRE_MAX_FROM_SIGNER)) == NULL) {
			r = SG_ERR_NOMEM;
			goto fail;
		}
		c->n++;
	}
	fflush(NULL);
	if ((c->pid = fork()) < 0) {
		snprintf(errbuf, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (c->pid == 0) {
		for (i = 0; i < channels; i++)
			close(c->fds[i]);
		sp_child_main(child_fds, channels, module_path, tokens, ntokens,
		    keys, nkeys, policy_path, log_origin, state_dir);
		_exit(1);
	}
	for (i = 0; i < channels; i++) {
		close(child_fds[i]);
		child_fds[i] = -1;
	}

	/* Wait for READY, bounded. */
	if ((r = wait_ready(c->fds[0], c->rbuf[0], errbuf, errlen)) != 0 ||
	    (r = client_fetch_facts(c, keys, nkeys, errbuf, errlen)) != 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	for (i = 0; i < MAX_CHANNELS; i++)
		if (child_fds[i] >= 0)
			close(child_fds[i]);
	sg_signer_client_free(c);
	return r;
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
	c->fds[c->n] = fd;
	if ((c->rbuf[c->n] = malloc(SG_WIRE_MAX_FROM_SIGNER)) == NULL)
		return SG_ERR_NOMEM;    /* fd closed with the client */
	if ((r = wait_ready(fd, c->rbuf[c->n], errbuf, errlen)) != 0) {
		if (r == SG_ERR_UNAVAILABLE)
			snprintf(errbuf, errlen, "signer_socket %s: the signer "
			    "closed the connection (does it take uid %u for "
			    "the front's?)", path, (unsigned)getuid());
		return r;
	}
	c->n++;
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
	for (i = 0; i < MAX_CHANNELS; i++) {
		if (c->fds[i] >= 0)
			close(c->fds[i]);
		free(c->rbuf[i]);
	}
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
	for (i = 0; i < c->nfacts; i++)
		EVP_PKEY_free(c->facts[i].pub);
	free(c->facts);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

int
sg_signer_client_fd(struct sg_signer_client *c)
{
	return c->fds[0];
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
