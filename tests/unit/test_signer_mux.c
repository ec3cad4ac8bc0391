/*
 * Tests for many requests at once on the signer's channels: the front's
 * client (src/signer_client.c: tags, the reply thread, the synchronous
 * calls over it) against a signer process forked here, which serves its
 * channels with the real workers (sg_signer_child_serve, src/signer_serve.c)
 * and the real checks (src/signer_proc.c) over keys held in memory.
 *
 * 64 signatures asked for at once over two channels all come back, each
 * once and to its caller, though the signer answers them out of order (it
 * holds the first until all the others are signed) with fewer workers than
 * requests (its queue fills and the channels wait); a synchronous call
 * shares the channels meanwhile.  A signer killed with requests
 * outstanding fails each of them once with SG_ERR_UNAVAILABLE, and so does
 * freeing a client with requests outstanding, before the free returns.  A
 * signer that answers with a tag never asked for is gone.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_policy.h"
#include "sg_signer_child.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define TOKEN "mux-token"
#define SERIAL "0123456789abcdef"
#define NSIGN 64
/* The first request's signature waits until this many others are made
 * (the probe's included): it is answered well after most of them. */
#define HELD_UNTIL (NSIGN - 1)
#define WAIT_MS 60000                  /* the longest any test waits */

/* Digests' first byte: how the signer's core treats them. */
#define MARK_FIRST 0xaa                /* held until HELD_UNTIL are signed */
#define MARK_HANG 0xbb                 /* never answered */

struct mem_key {
	const char *name;
	EVP_PKEY *pkey;
	enum sg_key_alg alg;
};

static struct mem_key mem_keys[] = {
	{ "nightly", NULL, SG_ALG_ECDSA_P256 },
	{ SG_SIGNER_LOG_KEY, NULL, SG_ALG_ED25519 },
};
#define NMEM_KEYS (sizeof(mem_keys) / sizeof(mem_keys[0]))

static EVP_PKEY *officer_key;
static struct sg_policy *policy;
static char dir[256], policy_path[512];
static struct sg_signer_key_spec *specs;
static size_t nspecs;
static long long expires;              /* every statement's: asked again,
                                          a request's is the same */

/* ------------------------------------------------------------------ */
/* The signer's core, in the forked signer. */

static pthread_mutex_t core_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t core_cond = PTHREAD_COND_INITIALIZER;
static int core_signed;

static struct mem_key *
mem_key(const char *name)
{
	size_t i;

	for (i = 0; i < NMEM_KEYS; i++)
		if (strcmp(mem_keys[i].name, name) == 0)
			return &mem_keys[i];
	return NULL;
}

/* Waits (bounded) until `want` signatures are made; want < 0: until the
 * bound. */
static void
core_wait(int want)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&core_lock);
	while (want < 0 || core_signed < want)
		if (pthread_cond_timedwait(&core_cond, &core_lock,
		    &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&core_lock);
}

static void
mem_sign(void *core, const struct sg_sign_msg *msg,
    struct sg_sign_reply *reply)
{
	struct mem_key *k;
	EVP_PKEY_CTX *pc = NULL;
	size_t len = sizeof(reply->sig);

	(void)core;
	memset(reply, 0, sizeof(*reply));
	if (msg->data_len > 0 && msg->data[0] == MARK_HANG)
		core_wait(-1);
	if (msg->data_len > 0 && msg->data[0] == MARK_FIRST)
		core_wait(HELD_UNTIL);
	if ((k = mem_key(msg->key)) == NULL || k->alg != SG_ALG_ECDSA_P256 ||
	    msg->data_len != sg_digest_len(msg->digest_alg) ||
	    (pc = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL ||
	    EVP_PKEY_sign_init(pc) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pc,
	    sg_digest_md(msg->digest_alg)) != 1 ||
	    EVP_PKEY_sign(pc, reply->sig, &len, msg->data,
	    msg->data_len) != 1)
		reply->status = SG_ERR_CRYPTO;
	else
		reply->sig_len = len;
	EVP_PKEY_CTX_free(pc);
	pthread_mutex_lock(&core_lock);
	core_signed++;
	pthread_cond_broadcast(&core_cond);
	pthread_mutex_unlock(&core_lock);
}

static int
mem_key_public(void *core, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	struct mem_key *k;

	(void)core;
	if ((k = mem_key(name)) == NULL)
		return SG_ERR_NOT_FOUND;
	if (ret_pub != NULL)
		*ret_pub = k->pkey;
	if (ret_alg != NULL)
		*ret_alg = k->alg;
	if (ret_token != NULL) {
		memset(ret_token, 0, sizeof(*ret_token));
		snprintf(ret_token->label, sizeof(ret_token->label), TOKEN);
		snprintf(ret_token->serial, sizeof(ret_token->serial), SERIAL);
		snprintf(ret_token->manufacturer,
		    sizeof(ret_token->manufacturer), "Mux project");
		snprintf(ret_token->model, sizeof(ret_token->model), "Mux v1");
	}
	return 0;
}

static int
mem_sign_checkpoint(void *core, const char *origin, uint64_t size,
    const uint8_t root[SG_HASH_LEN], uint8_t sig[SG_ED25519_SIG])
{
	(void)core;
	(void)origin;
	(void)size;
	(void)root;
	(void)sig;
	return SG_ERR_HSM;
}

static int
mem_spec_reserved(void *core, const struct sg_signer_key_spec *ks,
    char *errbuf, size_t errlen)
{
	(void)core;
	(void)ks;
	(void)errbuf;
	(void)errlen;
	return 0;
}

static const struct sg_signer_ops mem_ops = {
	mem_sign, mem_key_public, mem_sign_checkpoint, mem_spec_reserved,
	NULL
};

/* ------------------------------------------------------------------ */
/* Set-up: the keys, the policy, a signer forked over them. */

static void
indent_pem(char *out, size_t cap, const char *pem)
{
	size_t o = 0;

	out[0] = '\0';
	while (*pem != '\0' && o + 8 < cap) {
		if (o == 0 || out[o - 1] == '\n') {
			memcpy(out + o, "    ", 4);
			o += 4;
		}
		out[o++] = *pem++;
	}
	out[o] = '\0';
}

static void
test_setup(void)
{
	char *pem, ipem[1024], text[4096], err[512];
	size_t i;

	for (i = 0; i < NMEM_KEYS; i++)
		mem_keys[i].pkey = mem_keys[i].alg == SG_ALG_ED25519 ?
		    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
		    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	officer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	CHECK(officer_key != NULL && mem_keys[0].pkey != NULL &&
	    mem_keys[1].pkey != NULL);
	CHECK(sg_fx_tmpdir("signer-mux", dir, sizeof(dir)) == 0);
	expires = (long long)time(NULL) + 3000;
	if ((pem = sg_fx_pubkey_pem(officer_key)) == NULL)
		abort();
	indent_pem(ipem, sizeof(ipem), pem);
	free(pem);
	snprintf(text, sizeof(text),
	    "policy signgate-mux\nversion 1\n\n"
	    "principal ci\n    roles requester\n    client-cn ci\nend\n\n"
	    "principal alice\n    roles officer\n    client-cn alice\n"
	    "    approval-key\n%send\n\n"
	    "group officers\n    members alice\nend\n\n"
	    "hsm " SERIAL "\n    manufacturer Mux project\n"
	    "    model Mux v1\n    site Zurich\n    country CH\nend\n\n"
	    "key nightly\n    token " TOKEN "\n    object nightly\n"
	    "    algorithm ecdsa-p256\n    formats raw\n    requesters ci\n"
	    "    veto no\n    lifetime 1h\n    countries CH\nend\n", ipem);
	snprintf(policy_path, sizeof(policy_path), "%s/policy.conf", dir);
	err[0] = '\0';
	CHECK(sg_fx_write_bytes(policy_path, text, strlen(text)) == 0);
	CHECK(sg_policy_parse(policy_path, text, strlen(text), &policy, err,
	    sizeof(err)) == 0);
	if (policy == NULL)
		fprintf(stderr, "  policy: %s\n", err);
	else
		CHECK(sg_signer_key_specs(policy, TOKEN, "log", &specs,
		    &nspecs) == 0);
}

static void
test_teardown(void)
{
	size_t i;

	free(specs);
	sg_policy_free(policy);
	for (i = 0; i < NMEM_KEYS; i++)
		EVP_PKEY_free(mem_keys[i].pkey);
	EVP_PKEY_free(officer_key);
	CHECK(sg_fx_rm_tree(dir) == 0);
}

/* The forked signer: the real child context and workers over mem_ops. */
static void
signer_main(const int *fds, unsigned n, unsigned concurrency,
    const char *name)
{
	struct sg_signer_child *c;
	char state[512], err[512];

	snprintf(state, sizeof(state), "%s/%s", dir, name);
	if (sg_signer_child_new(&mem_ops, NULL, specs, nspecs, policy_path,
	    "mux.example/log", state, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "  signer: %s\n", err);
		_exit(1);
	}
	if (sg_signer_child_serve(c, fds, n, concurrency) != 0)
		_exit(1);
	sg_signer_child_free(c);
	_exit(0);
}

/* A signer forked with n channels and its client; *ret_pid its pid. */
static struct sg_signer_client *
signer_start(unsigned n, unsigned concurrency, const char *name,
    pid_t *ret_pid)
{
	struct sg_signer_client *client = NULL;
	int fds[8], child_fds[8], sv[2];
	char err[512];
	unsigned i;
	pid_t pid;

	for (i = 0; i < n; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
		    sv) != 0)
			abort();
		fds[i] = sv[0];
		child_fds[i] = sv[1];
	}
	fflush(NULL);
	if ((pid = fork()) < 0)
		abort();
	if (pid == 0) {
		for (i = 0; i < n; i++)
			close(fds[i]);
		signer_main(child_fds, n, concurrency, name);
	}
	for (i = 0; i < n; i++)
		close(child_fds[i]);
	err[0] = '\0';
	if (sg_signer_client_adopt(pid, fds, n, specs, nspecs, &client, err,
	    sizeof(err)) != 0)
		fprintf(stderr, "  client: %s\n", err);
	*ret_pid = pid;
	return client;
}

/* ------------------------------------------------------------------ */
/* Asking: statements, digests, the answers as done() sees them. */

struct answer {
	int calls;                     /* done() calls: must end at 1 */
	int r;
	int order;                     /* 0 for the first answer done */
	uint8_t sig[SG_MAX_SIG];
	size_t sig_len;
	int cms;                       /* a CMS came with it */
};

static pthread_mutex_t ans_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ans_cond = PTHREAD_COND_INITIALIZER;
static struct answer answers[NSIGN];
static int nanswered;

static void
answers_reset(void)
{
	pthread_mutex_lock(&ans_lock);
	memset(answers, 0, sizeof(answers));
	nanswered = 0;
	pthread_mutex_unlock(&ans_lock);
}

static void
sign_done(void *arg, int r, const struct sg_sign_reply *reply, uint8_t *cms,
    size_t cms_len, const char *err)
{
	struct answer *a = arg;

	(void)cms_len;
	(void)err;
	pthread_mutex_lock(&ans_lock);
	a->calls++;
	a->r = r;
	a->order = nanswered++;
	a->cms = cms != NULL;
	if (r == 0 && reply->sig_len <= sizeof(a->sig)) {
		memcpy(a->sig, reply->sig, reply->sig_len);
		a->sig_len = reply->sig_len;
	}
	pthread_cond_broadcast(&ans_cond);
	pthread_mutex_unlock(&ans_lock);
	free(cms);
}

/* Waits (bounded) for n answers; 0 when they came. */
static int
answers_wait(int n)
{
	struct timespec until;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&ans_lock);
	while (nanswered < n && r == 0)
		r = pthread_cond_timedwait(&ans_cond, &ans_lock, &until);
	r = nanswered >= n ? 0 : -1;
	pthread_mutex_unlock(&ans_lock);
	return r;
}

/* Request i's digest: SHA-256("mux <i>"), its first byte set to mark. */
static void
digest_of(int i, int mark, uint8_t out[32])
{
	char text[32];

	snprintf(text, sizeof(text), "mux %d", i);
	sg_sha256(text, strlen(text), out);
	out[0] = (uint8_t)mark;
}

/* A SIGN for request i under key nightly (no approval needed). */
static int
sign_async(struct sg_signer_client *c, int i, int mark, struct answer *a)
{
	struct sg_statement st;
	struct sg_sign_evidence ev;
	struct sg_sign_msg m;
	uint8_t spki[32];
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(&st, 0, sizeof(st));
	memset(&m, 0, sizeof(m));
	st.kind = SG_KIND_REQUEST;
	snprintf(st.request, sizeof(st.request), "%032x", 0x1000 + i);
	snprintf(st.key, sizeof(st.key), "nightly");
	if (sg_pubkey_spki_sha256(mem_keys[0].pkey, spki) != 0)
		abort();
	sg_hex_encode(spki, sizeof(spki), st.spki_sha256);
	digest_of(i, mark, m.data);
	m.data_len = 32;
	m.digest_alg = SG_DIGEST_SHA256;
	snprintf(m.key, sizeof(m.key), "nightly");
	snprintf(st.digest_alg, sizeof(st.digest_alg), "sha256");
	sg_hex_encode(m.data, 32, st.digest_hex);
	snprintf(st.format, sizeof(st.format), "raw");
	snprintf(st.requester, sizeof(st.requester), "ci");
	snprintf(st.policy_name, sizeof(st.policy_name), "%s",
	    sg_policy_name(policy));
	st.policy_version = sg_policy_version(policy);
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    sg_policy_sha256_hex(policy));
	st.expires = expires;
	if (sg_statement_build(&st, &text, &len) != 0)
		abort();
	memset(&ev, 0, sizeof(ev));
	ev.statement = text;
	ev.statement_len = len;
	ev.format = SG_FORMAT_RAW;
	r = sg_signer_client_sign_async(c, &m, &ev, sign_done, a);
	free(text);
	return r;
}

/* ------------------------------------------------------------------ */

static void
test_many(void)
{
	struct sg_signer_client *c;
	uint8_t digest[32];
	pid_t pid;
	int i, sent = 0, later = 0;

	if (policy == NULL)
		return;
	/* Two channels, four workers: a queue of eight, then the channels
	 * wait. */
	answers_reset();
	CHECK((c = signer_start(2, 4, "many", &pid)) != NULL);
	if (c == NULL)
		return;
	for (i = 0; i < NSIGN; i++)
		if (sign_async(c, i, i == 0 ? MARK_FIRST : 0,
		    &answers[i]) == 0)
			sent++;
	CHECK_EQ_INT(sent, NSIGN);
	/* A synchronous call shares the channels meanwhile. */
	CHECK_EQ_INT(sg_signer_client_probe(c, "nightly"), 0);
	CHECK(answers_wait(NSIGN) == 0);
	pthread_mutex_lock(&ans_lock);
	for (i = 0; i < NSIGN; i++) {
		struct answer *a = &answers[i];

		CHECK_EQ_INT(a->calls, 1);
		CHECK_EQ_INT(a->r, 0);
		CHECK(!a->cms);
		digest_of(i, i == 0 ? MARK_FIRST : 0, digest);
		/* Each answer is its own request's: its signature verifies
		 * over its digest, and no other. */
		CHECK(sg_verify(mem_keys[0].pkey, SG_SIG_ECDSA,
		    SG_DIGEST_SHA256, digest, 32, a->sig, a->sig_len) == 0);
		if (i > 0)
			CHECK(sg_verify(mem_keys[0].pkey, SG_SIG_ECDSA,
			    SG_DIGEST_SHA256, digest, 32, answers[i - 1].sig,
			    answers[i - 1].sig_len) != 0);
		if (i > 0 && a->order < answers[0].order)
			later++;
	}
	/* The first was answered after most of the others: three workers
	 * answer while it waits, and at most the queue's eight and the
	 * workers' four are still on their way. */
	CHECK(answers[0].order >= NSIGN / 2);
	CHECK_EQ_INT(later, answers[0].order);
	pthread_mutex_unlock(&ans_lock);
	/* Asked again, each request's signature comes from the record:
	 * the same bytes (the tags are new, the answers still match). */
	answers_reset();
	for (i = 0; i < 8; i++)
		CHECK_EQ_INT(sign_async(c, i, i == 0 ? MARK_FIRST : 0,
		    &answers[i]), 0);
	CHECK(answers_wait(8) == 0);
	for (i = 0; i < 8; i++) {
		digest_of(i, i == 0 ? MARK_FIRST : 0, digest);
		CHECK_EQ_INT(answers[i].calls, 1);
		CHECK(answers[i].r == 0 && sg_verify(mem_keys[0].pkey,
		    SG_SIG_ECDSA, SG_DIGEST_SHA256, digest, 32,
		    answers[i].sig, answers[i].sig_len) == 0);
	}
	sg_signer_client_free(c);
	/* Nothing more after the free. */
	pthread_mutex_lock(&ans_lock);
	CHECK_EQ_INT(nanswered, 8);
	pthread_mutex_unlock(&ans_lock);
}

static void
test_killed(void)
{
	struct sg_signer_client *c;
	pid_t pid;
	int i, status;

	if (policy == NULL)
		return;
	answers_reset();
	CHECK((c = signer_start(2, 4, "killed", &pid)) != NULL);
	if (c == NULL)
		return;
	for (i = 0; i < 12; i++)
		CHECK_EQ_INT(sign_async(c, 100 + i, MARK_HANG, &answers[i]),
		    0);
	/* The signer dies with all twelve outstanding (four in its
	 * workers, the rest queued or in the channels). */
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(answers_wait(12) == 0);
	pthread_mutex_lock(&ans_lock);
	for (i = 0; i < 12; i++) {
		CHECK_EQ_INT(answers[i].calls, 1);
		CHECK_EQ_INT(answers[i].r, SG_ERR_UNAVAILABLE);
	}
	pthread_mutex_unlock(&ans_lock);
	/* Gone for good: refused at once, done not called. */
	CHECK_EQ_INT(sign_async(c, 200, 0, &answers[12]),
	    SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(sg_signer_client_probe(c, "nightly"),
	    SG_ERR_UNAVAILABLE);
	sg_signer_client_free(c);
	pthread_mutex_lock(&ans_lock);
	CHECK_EQ_INT(nanswered, 12);
	CHECK_EQ_INT(answers[12].calls, 0);
	pthread_mutex_unlock(&ans_lock);
	/* Reaped by the free. */
	CHECK(waitpid(pid, &status, WNOHANG) < 0 && errno == ECHILD);
}

static void
test_free_outstanding(void)
{
	struct sg_signer_client *c;
	pid_t pid;
	int i;

	if (policy == NULL)
		return;
	answers_reset();
	CHECK((c = signer_start(1, 2, "free", &pid)) != NULL);
	if (c == NULL)
		return;
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(sign_async(c, 300 + i, MARK_HANG, &answers[i]),
		    0);
	sg_signer_client_free(c);
	/* Every one answered before the free returned. */
	pthread_mutex_lock(&ans_lock);
	CHECK_EQ_INT(nanswered, 5);
	for (i = 0; i < 5; i++) {
		CHECK_EQ_INT(answers[i].calls, 1);
		CHECK_EQ_INT(answers[i].r, SG_ERR_UNAVAILABLE);
	}
	pthread_mutex_unlock(&ans_lock);
}

/* A signer out of protocol: READY, then it answers a PROBE with a tag
 * the front never used, and nothing else. */
static void
rogue_main(int fd)
{
	struct sg_wire_reply rep;
	uint8_t buf[4096], *out;
	size_t n;
	ssize_t got;

	memset(&rep, 0, sizeof(rep));
	if (sg_wire_encode_reply(&rep, NULL, 0, &out, &n) != 0 ||
	    send(fd, out, n, MSG_NOSIGNAL) != (ssize_t)n)
		_exit(1);
	free(out);
	while ((got = recv(fd, buf, sizeof(buf), 0)) > 0) {
		if (sg_wire_type(buf, (size_t)got) != SG_WIRE_PROBE)
			continue;
		memset(&rep, 0, sizeof(rep));
		if (sg_wire_encode_reply(&rep, NULL, 0, &out, &n) != 0)
			_exit(1);
		sg_wire_set_tag(out, sg_wire_tag(buf, (size_t)got) + 1000);
		send(fd, out, n, MSG_NOSIGNAL);
		free(out);
	}
	_exit(0);
}

static void
test_unknown_tag(void)
{
	struct sg_signer_client *c = NULL;
	char err[256];
	int sv[2];
	pid_t pid;

	if (policy == NULL)
		return;
	answers_reset();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	fflush(NULL);
	if ((pid = fork()) < 0)
		abort();
	if (pid == 0) {
		close(sv[0]);
		rogue_main(sv[1]);
	}
	close(sv[1]);
	/* No key facts: the rogue answers only PROBE. */
	CHECK(sg_signer_client_adopt(pid, &sv[0], 1, NULL, 0, &c, err,
	    sizeof(err)) == 0);
	if (c == NULL)
		return;
	/* One outstanding (never answered), then the answer with a stray
	 * tag: both fail, and the signer is gone. */
	CHECK_EQ_INT(sign_async(c, 400, 0, &answers[0]), 0);
	CHECK_EQ_INT(sg_signer_client_probe(c, "nightly"),
	    SG_ERR_UNAVAILABLE);
	CHECK(answers_wait(1) == 0);
	CHECK_EQ_INT(answers[0].calls, 1);
	CHECK_EQ_INT(answers[0].r, SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(sign_async(c, 401, 0, &answers[1]), SG_ERR_UNAVAILABLE);
	sg_signer_client_free(c);
	CHECK_EQ_INT(answers[0].calls, 1);
	CHECK_EQ_INT(answers[1].calls, 0);
}

SG_TEST_MAIN("signer_mux",
    T(test_setup),
    T(test_many),
    T(test_killed),
    T(test_free_outstanding),
    T(test_unknown_tag),
    T(test_teardown))
