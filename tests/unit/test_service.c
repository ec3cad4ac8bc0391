/*
 * Tests for the service's rules (src/service*.c) over a real store and log
 * in a temporary directory, with a signer made here and given to
 * sg_service_open_with_signer(): in-memory OpenSSL keys for the policy's
 * keys and the log key, the log record the signer process keeps
 * (sg_witness), and switches that make it fail as an absent HSM would,
 * hang, or refuse (for releases and grants too: its sign_batch signs each
 * artifact line's digest).  Officers' envelopes are signed here the way
 * `signgate approve` signs them, with keys whose public halves the policy
 * written here holds.  A test clock moves requests past their expiry; the disk
 * under the store is taken away by failing its writes, as
 * tests/preload/iofault.c does for the daemon, here linked into the test
 * itself.
 *
 * Waits are for a condition, bounded, and look again at every call into
 * the signer and every state-change notification (and every 50 ms); no
 * test sleeps and assumes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_note.h"
#include "sg_policy_change.h"
#include "sg_service.h"
#include "sg_service_signer.h"
#include "sg_test.h"
#include "sg_util.h"
#include "sg_witness.h"

#define ORIGIN "service.test/log"
#define SERIAL "0011223344556677"
#define WAIT_SECONDS 20
/* What key "release" allows: releases and grants (2h at most). */
#define RELEASE_MAX 100
#define GRANT_MAX 50
#define GRANT_LIFETIME_MAX 7200
#define STR_(x) #x
#define STR(x) STR_(x)

static char tmpdir[128];

/* --- the disk: fails under the state directory while disk_fails --- */

static atomic_int disk_fails;
static char disk_match[256];

static int
disk_gone(int fd)
{
	char link[64], path[512];
	ssize_t n;

	if (!atomic_load(&disk_fails) || disk_match[0] == '\0')
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, path, sizeof(path) - 1)) < 0)
		return 0;
	path[n] = '\0';
	if (strstr(path, disk_match) == NULL)
		return 0;
	errno = EIO;
	return 1;
}

#define NEXT(name) \
	static __typeof__(name) *next_##name; \
	if (next_##name == NULL) \
		next_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t
write(int fd, const void *buf, size_t n)
{
	NEXT(write);
	return disk_gone(fd) ? -1 : next_write(fd, buf, n);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	NEXT(pwrite64);
	return disk_gone(fd) ? -1 : next_pwrite64(fd, buf, n, off);
}

int
fdatasync(int fd)
{
	NEXT(fdatasync);
	return disk_gone(fd) ? -1 : next_fdatasync(fd);
}

/* --- the clock the service reads --- */

static _Atomic int64_t clock_offset;

static int64_t
test_now(void *ctx)
{
	(void)ctx;
	return (int64_t)time(NULL) + atomic_load(&clock_offset);
}

/* --- keys --- */

struct tkey {
	const char *name;
	const char *type;              /* "P-256", "ED25519" */
	EVP_PKEY *pkey;
	EVP_PKEY *pub;                 /* public half only */
	char *pem;
};

/* Officers' approval keys; mallory is in no policy. */
static struct tkey officers[] = {
	{ "alice", "P-256", NULL, NULL, NULL },
	{ "bob", "P-256", NULL, NULL, NULL },
	{ "carol", "P-256", NULL, NULL, NULL },
	{ "erin", "P-256", NULL, NULL, NULL },
	{ "mallory", "P-256", NULL, NULL, NULL },
};
/* The HSM's keys, by policy key name; "@log" signs checkpoints. */
static struct tkey hsm[] = {
	{ "release", "P-256", NULL, NULL, NULL },
	{ "firmware", "P-256", NULL, NULL, NULL },
	{ "nightly", "P-256", NULL, NULL, NULL },
	{ "@log", "ED25519", NULL, NULL, NULL },
};
#define NOFFICERS (sizeof(officers) / sizeof(officers[0]))
#define NHSM (sizeof(hsm) / sizeof(hsm[0]))

static void
make_key(struct tkey *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	BIO *b;
	char *data;
	long n;
	int len;

	if (strcmp(k->type, "ED25519") == 0)
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	else
		k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", k->type);
	if (k->pkey == NULL || (len = i2d_PUBKEY(k->pkey, &der)) <= 0)
		abort();
	p = der;
	if ((k->pub = d2i_PUBKEY(NULL, &p, len)) == NULL)
		abort();
	OPENSSL_free(der);
	if ((b = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PUBKEY(b, k->pkey))
		abort();
	n = BIO_get_mem_data(b, &data);
	if (n <= 0 || (k->pem = malloc((size_t)n + 1)) == NULL)
		abort();
	memcpy(k->pem, data, (size_t)n);
	k->pem[n] = '\0';
	BIO_free(b);
}

static struct tkey *
find_key(struct tkey *v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

static void
make_keys(void)
{
	size_t i;

	for (i = 0; i < NOFFICERS; i++)
		make_key(&officers[i]);
	for (i = 0; i < NHSM; i++)
		make_key(&hsm[i]);
}

/* --- the policy --- */

struct text {
	char *s;
	size_t len;
};

static void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (t->s = realloc(t->s, t->len + (size_t)n + 1)) == NULL)
		abort();
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

struct policy_opts {
	unsigned version;
	const char *release_object;    /* NULL: "release" */
	int revoke_alice;              /* alice leaves security-officers */
	int change;                    /* policy-change: two officers */
};

static void
key_block(struct text *t, const char *name, const char *object,
    const char *require, const char *veto)
{
	text_add(&t[0], "key %s\n    token t\n    object %s\n"
	    "    algorithm ecdsa-p256\n    formats raw\n    requesters ci\n"
	    "%s    veto %s\n    lifetime 1h\n    countries CH\nend\n", name,
	    object, require, veto);
}

static char *
policy_text(const struct policy_opts *o)
{
	struct text t = { NULL, 0 };
	size_t i;

	text_add(&t, "policy service-test\nversion %u\n\n", o->version);
	if (o->change)
		text_add(&t, "policy-change require security-officers 2\n");
	text_add(&t, "principal ci\n    roles requester\n    client-cn ci\n"
	    "end\n");
	for (i = 0; i < NOFFICERS; i++) {
		if (strcmp(officers[i].name, "mallory") == 0)
			continue;
		text_add(&t, "principal %s\n    roles officer\n"
		    "    client-cn %s\n    approval-key\n%send\n",
		    officers[i].name, officers[i].name, officers[i].pem);
	}
	text_add(&t, "group security-officers\n    members %s\nend\n",
	    o->revoke_alice ? "bob carol" : "alice bob carol");
	text_add(&t, "group bystanders\n    members erin%s\nend\n",
	    o->revoke_alice ? " alice" : "");
	text_add(&t, "hsm %s\n    site Zurich\n    country CH\nend\n", SERIAL);
	text_add(&t, "principal audit\n    roles auditor\n"
	    "    client-cn audit\nend\n");
	key_block(&t, "release", o->release_object != NULL ?
	    o->release_object : "release", "    require security-officers 2\n"
	    "    allow-releases " STR(RELEASE_MAX) "\n"
	    "    allow-grants " STR(GRANT_MAX) " 2h\n"
	    "    require-grant security-officers 1\n", "no");
	key_block(&t, "firmware", "firmware",
	    "    require security-officers 1\n", "yes");
	key_block(&t, "nightly", "nightly", "", "no");
	return t.s;
}

static char policy_path[192], state_dir[192];

static int
write_policy(const struct policy_opts *o)
{
	char *text = policy_text(o);
	int r;

	r = sg_write_file(policy_path, text, strlen(text), 0644);
	free(text);
	return r;
}

/* --- the signer --- */

struct fake_req {
	char id[SG_REQUEST_ID_SIZE];
	int calls;                     /* asked to sign */
	int signs;                     /* signed */
	size_t nenv;                   /* envelopes sent, last time */
	char officers[128];            /* their keyids, comma-separated */
};

static struct fake {
	pthread_mutex_t mu;
	pthread_cond_t cv;             /* gen moved */
	unsigned gen;                  /* any call, any notification */
	struct sg_witness *w;
	int fail_sign;                 /* calls to fail (HSM away); -1: all */
	int refuse_sign;
	int hang;                      /* sign calls wait while set */
	int hanging;
	int fail_checkpoint;           /* before the record, as if away */
	int refuse_checkpoint;         /* as a fork: the log stops */
	int checkpoint_calls, probes, reloads;
	char reload_sha[SG_SHA256_HEX_SIZE];
	struct fake_req req[32];
	size_t nreq;
} fk = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* With fk.mu held. */
static void
bump(void)
{
	fk.gen++;
	pthread_cond_broadcast(&fk.cv);
}

/* With fk.mu held. */
static struct fake_req *
fake_req(const char *id)
{
	size_t i;

	for (i = 0; i < fk.nreq; i++)
		if (strcmp(fk.req[i].id, id) == 0)
			return &fk.req[i];
	if (fk.nreq == sizeof(fk.req) / sizeof(fk.req[0]))
		abort();
	snprintf(fk.req[fk.nreq].id, sizeof(fk.req[0].id), "%s", id);
	return &fk.req[fk.nreq++];
}

static void
note_evidence(struct fake_req *rq, const struct sg_sign_evidence *ev)
{
	struct sg_envelope env;
	char err[128];
	size_t i;

	rq->nenv = ev->n;
	rq->officers[0] = '\0';
	for (i = 0; i < ev->n; i++) {
		memset(&env, 0, sizeof(env));
		if (sg_envelope_parse(ev->envelopes[i], ev->envelope_lens[i],
		    &env, err, sizeof(err)) != 0)
			continue;
		snprintf(rq->officers + strlen(rq->officers),
		    sizeof(rq->officers) - strlen(rq->officers), "%s%s",
		    i > 0 ? "," : "", env.keyid);
		sg_envelope_clear(&env);
	}
}

/* Waits while fk.hang is set (at most WAIT_SECONDS); fk.mu held. */
static int
hang_here(void)
{
	struct timespec until;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_SECONDS;
	fk.hanging++;
	bump();
	while (fk.hang && r == 0)
		r = pthread_cond_timedwait(&fk.cv, &fk.mu, &until);
	fk.hanging--;
	return fk.hang ? SG_ERR_TIMEOUT : 0;
}

/* The trouble the switches ask for, or 0; fk.mu held. */
static int
sign_trouble(char *errbuf, size_t errlen)
{
	if (fk.hang && hang_here() != 0) {
		snprintf(errbuf, errlen, "the HSM did not answer in time");
		return SG_ERR_TIMEOUT;
	}
	if (fk.fail_sign != 0) {
		if (fk.fail_sign > 0)
			fk.fail_sign--;
		snprintf(errbuf, errlen, "the HSM does not answer");
		return SG_ERR_HSM;
	}
	if (fk.refuse_sign) {
		snprintf(errbuf, errlen, "the evidence does not hold");
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

static int
fake_sign(void *ctx, const struct sg_sign_msg *msg,
    const struct sg_sign_evidence *ev, struct sg_sign_reply *reply,
    uint8_t **ret_cms, size_t *ret_cms_len, char *errbuf, size_t errlen)
{
	struct tkey *k = find_key(hsm, NHSM, msg->key);
	struct sg_statement st;
	struct fake_req *rq;
	EVP_PKEY_CTX *pc = NULL;
	size_t len = sizeof(reply->sig);
	int r;

	(void)ctx;
	memset(reply, 0, sizeof(*reply));
	*ret_cms = NULL;
	*ret_cms_len = 0;
	if (k == NULL || k->name[0] == '@' || sg_statement_parse(ev->statement,
	    ev->statement_len, &st) != 0) {
		snprintf(errbuf, errlen, "no such request or key");
		return SG_ERR_INVALID;
	}
	pthread_mutex_lock(&fk.mu);
	rq = fake_req(st.request);
	rq->calls++;
	note_evidence(rq, ev);
	bump();
	r = sign_trouble(errbuf, errlen);
	pthread_mutex_unlock(&fk.mu);
	if (r != 0)
		return r;
	if ((pc = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL ||
	    EVP_PKEY_sign_init(pc) != 1 || EVP_PKEY_CTX_set_signature_md(pc,
	    sg_digest_md(msg->digest_alg)) != 1 || EVP_PKEY_sign(pc,
	    reply->sig, &len, msg->data, msg->data_len) != 1)
		r = SG_ERR_CRYPTO;
	EVP_PKEY_CTX_free(pc);
	if (r != 0)
		return r;
	reply->sig_len = len;
	pthread_mutex_lock(&fk.mu);
	fake_req(st.request)->signs++;
	bump();
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

/* Signs one item's digest (from its line) with key k. */
static int
sign_item(struct tkey *k, const struct sg_batch_item *it,
    struct sg_batch_result *res)
{
	struct sg_artifact_line al;
	EVP_PKEY_CTX *pc = NULL;
	size_t len = sizeof(res->sig);
	int r = 0;

	if (sg_artifact_line_parse(it->line, it->line_len, &al) != 0)
		return SG_ERR_INVALID;
	if ((pc = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL ||
	    EVP_PKEY_sign_init(pc) != 1 || EVP_PKEY_CTX_set_signature_md(pc,
	    sg_digest_md(al.digest_alg)) != 1 || EVP_PKEY_sign(pc, res->sig,
	    &len, al.digest, al.digest_len) != 1)
		r = SG_ERR_CRYPTO;
	EVP_PKEY_CTX_free(pc);
	if (r == 0)
		res->sig_len = len;
	return r;
}

/* The signer's batch call: the switches as for fake_sign, then each
 * item's digest signed with the in-memory key. */
static int
fake_sign_batch(void *ctx, const char *key, const struct sg_sign_evidence *ev,
    const struct sg_batch_item *items, size_t n, struct sg_batch_result *res,
    char *errbuf, size_t errlen)
{
	struct tkey *k = find_key(hsm, NHSM, key);
	struct sg_statement st;
	size_t i;
	int r;

	(void)ctx;
	if (k == NULL || k->name[0] == '@' || sg_statement_parse(ev->statement,
	    ev->statement_len, &st) != 0 || st.kind == SG_KIND_REQUEST) {
		snprintf(errbuf, errlen, "no such release, grant or key");
		return SG_ERR_INVALID;
	}
	pthread_mutex_lock(&fk.mu);
	fake_req(st.request)->calls++;
	note_evidence(fake_req(st.request), ev);
	bump();
	r = sign_trouble(errbuf, errlen);
	pthread_mutex_unlock(&fk.mu);
	if (r != 0)
		return r == SG_ERR_HSM ? SG_ERR_UNAVAILABLE : r;
	for (i = 0; i < n; i++)
		res[i].status = sign_item(k, &items[i], &res[i]);
	pthread_mutex_lock(&fk.mu);
	for (i = 0; i < n; i++)
		fake_req(st.request)->signs += res[i].status == 0;
	bump();
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

static int
sign_checkpoint_text(const struct sg_witness_request *req, uint8_t sig[64])
{
	struct sg_checkpoint cp;
	EVP_MD_CTX *m;
	size_t siglen = SG_ED25519_SIG;
	char *text = NULL;
	int ok;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", ORIGIN);
	cp.size = req->size;
	memcpy(cp.root, req->root, SG_HASH_LEN);
	if (sg_checkpoint_format(&cp, &text) != 0)
		return SG_ERR_INTERNAL;
	m = EVP_MD_CTX_new();
	ok = m != NULL && EVP_DigestSignInit(m, NULL, NULL, NULL,
	    find_key(hsm, NHSM, "@log")->pkey) == 1 && EVP_DigestSign(m, sig,
	    &siglen, (const uint8_t *)text, strlen(text)) == 1;
	EVP_MD_CTX_free(m);
	free(text);
	return ok ? 0 : SG_ERR_CRYPTO;
}

static int
fake_checkpoint(void *ctx, const struct sg_witness_request *req,
    struct sg_witness_reply *ret)
{
	int fail, refuse;

	(void)ctx;
	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&fk.mu);
	fk.checkpoint_calls++;
	fail = fk.fail_checkpoint;
	refuse = fk.refuse_checkpoint;
	bump();
	pthread_mutex_unlock(&fk.mu);
	if (fail) {
		snprintf(ret->err, sizeof(ret->err), "the signer is away");
		return SG_ERR_UNAVAILABLE;
	}
	if (refuse) {
		if (sg_witness_get(fk.w, &ret->rec, ret->err,
		    sizeof(ret->err)) != 0)
			return SG_ERR_IO;
		snprintf(ret->err, sizeof(ret->err), "a fork of the log");
		return SG_ERR_VERIFY;
	}
	if (sg_witness_advance(fk.w, req, &ret->rec, ret->err,
	    sizeof(ret->err)) != 0)
		return SG_ERR_VERIFY;
	return sign_checkpoint_text(req, ret->sig);
}

static int
fake_probe(void *ctx, const char *key)
{
	(void)ctx;
	pthread_mutex_lock(&fk.mu);
	fk.probes++;
	bump();
	pthread_mutex_unlock(&fk.mu);
	return find_key(hsm, NHSM, key) != NULL ? 0 : SG_ERR_NO_KEY;
}

static int
fake_key_public(void *ctx, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	struct tkey *k = find_key(hsm, NHSM, name);

	(void)ctx;
	if (k == NULL)
		return SG_ERR_NO_KEY;
	*ret_pub = k->pub;
	if (ret_alg != NULL)
		*ret_alg = sg_pubkey_alg(k->pub);
	if (ret_token != NULL) {
		memset(ret_token, 0, sizeof(*ret_token));
		snprintf(ret_token->label, sizeof(ret_token->label), "t");
		snprintf(ret_token->serial, sizeof(ret_token->serial), SERIAL);
		snprintf(ret_token->manufacturer,
		    sizeof(ret_token->manufacturer), "SoftHSM project");
		snprintf(ret_token->model, sizeof(ret_token->model),
		    "SoftHSM v2");
	}
	return 0;
}

static int
fake_reload(void *ctx, const char *expect_sha256_hex, char *errbuf,
    size_t errlen)
{
	(void)ctx;
	(void)errbuf;
	(void)errlen;
	pthread_mutex_lock(&fk.mu);
	fk.reloads++;
	snprintf(fk.reload_sha, sizeof(fk.reload_sha), "%s",
	    expect_sha256_hex);
	bump();
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

static void
fake_free(void *ctx)
{
	(void)ctx;
	sg_witness_free(fk.w);
	fk.w = NULL;
}

static void
fake_reset(const char *name)
{
	char dir[256], err[256];

	pthread_mutex_lock(&fk.mu);
	fk.fail_sign = fk.refuse_sign = fk.hang = fk.hanging = 0;
	fk.fail_checkpoint = fk.refuse_checkpoint = 0;
	fk.checkpoint_calls = fk.probes = fk.reloads = 0;
	fk.reload_sha[0] = '\0';
	fk.nreq = 0;
	memset(fk.req, 0, sizeof(fk.req));
	pthread_mutex_unlock(&fk.mu);
	snprintf(dir, sizeof(dir), "%s/%s-hsm", tmpdir, name);
	if (sg_witness_open(dir, ORIGIN, &fk.w, err, sizeof(err)) != 0) {
		fprintf(stderr, "  witness: %s\n", err);
		abort();
	}
}

/* Sets one of the fake's switches. */
static void
fake_set(int *sw, int v)
{
	pthread_mutex_lock(&fk.mu);
	*sw = v;
	bump();
	pthread_mutex_unlock(&fk.mu);
}

/* How often request id was signed (signs) or asked for (calls). */
static int
fake_count(const char *id, int signs)
{
	int n = 0;
	size_t i;

	pthread_mutex_lock(&fk.mu);
	for (i = 0; i < fk.nreq; i++)
		if (strcmp(fk.req[i].id, id) == 0)
			n = signs ? fk.req[i].signs : fk.req[i].calls;
	pthread_mutex_unlock(&fk.mu);
	return n;
}

static void
on_change(void *arg, const char *id)
{
	(void)arg;
	(void)id;
	pthread_mutex_lock(&fk.mu);
	bump();
	pthread_mutex_unlock(&fk.mu);
}

/*
 * Waits until cond(arg) holds, at most WAIT_SECONDS.  It looks again at
 * every signer call and every notification, and every 50 ms besides:
 * some changes land just after their last event (a checkpoint is stored
 * after the signer signed it).  Returns whether it holds.
 */
static int
wait_until(int (*cond)(void *), void *arg)
{
	struct timespec tick;
	unsigned gen;
	int64_t deadline = sg_mono_us() + WAIT_SECONDS * 1000000LL;

	for (;;) {
		pthread_mutex_lock(&fk.mu);
		gen = fk.gen;
		pthread_mutex_unlock(&fk.mu);
		if (cond(arg))
			return 1;
		if (sg_mono_us() >= deadline)
			return 0;
		clock_gettime(CLOCK_REALTIME, &tick);
		tick.tv_nsec += 50 * 1000000L;
		if (tick.tv_nsec >= 1000000000L) {
			tick.tv_sec++;
			tick.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&fk.mu);
		while (fk.gen == gen && pthread_cond_timedwait(&fk.cv, &fk.mu,
		    &tick) == 0)
			;
		pthread_mutex_unlock(&fk.mu);
	}
}

/* --- a service over a fresh state directory --- */

static struct sg_config cfg;

static struct sg_service *
open_service(const char *name, const struct policy_opts *o)
{
	struct sg_service_parts parts;
	struct sg_service *s = NULL;
	char err[512];

	snprintf(policy_path, sizeof(policy_path), "%s/%s.policy", tmpdir,
	    name);
	snprintf(state_dir, sizeof(state_dir), "%s/%s-state", tmpdir, name);
	snprintf(disk_match, sizeof(disk_match), "%s/", state_dir);
	atomic_store(&clock_offset, 0);
	if (write_policy(o) != 0)
		abort();
	memset(&cfg, 0, sizeof(cfg));
	cfg.policy_path = policy_path;
	cfg.state_dir = state_dir;
	cfg.log_origin = (char *)ORIGIN;
	snprintf(cfg.log_token, sizeof(cfg.log_token), "t");
	snprintf(cfg.log_key, sizeof(cfg.log_key), "log");
	cfg.threads = 1;
	cfg.max_pending = 4;
	fake_reset(name);
	memset(&parts, 0, sizeof(parts));
	parts.signer.sign = fake_sign;
	parts.signer.sign_batch = fake_sign_batch;
	parts.signer.checkpoint = fake_checkpoint;
	parts.signer.probe = fake_probe;
	parts.signer.key_public = fake_key_public;
	parts.signer.reload = fake_reload;
	parts.signer.free = fake_free;
	parts.now = test_now;
	if (sg_service_open_with_signer(&cfg, &parts, &s, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "  open: %s\n", err);
		CHECK(!"the service opens");
		return NULL;
	}
	sg_service_set_notify(s, on_change, NULL);
	return s;
}

static const struct policy_opts v1 = { 1, NULL, 0, 0 };

/* A raw SHA-256 request with key on a digest of `fill` bytes. */
static int
create(struct sg_service *s, const char *key, const char *requester,
    uint8_t fill, const char *idem, const char *body_sha,
    struct sg_request **ret, int *existing, struct sg_fault *f)
{
	struct sg_new_request nr;
	int dummy;

	memset(&nr, 0, sizeof(nr));
	memset(f, 0, sizeof(*f));
	nr.key = key;
	nr.digest_alg = SG_DIGEST_SHA256;
	memset(nr.digest, fill, 32);
	nr.digest_len = 32;
	nr.format = SG_FORMAT_RAW;
	nr.artifact_json = "{}";
	nr.requester = requester;
	nr.idem_key = idem;
	nr.body_sha256 = body_sha;
	*ret = NULL;
	return sg_service_create(s, &nr, ret, existing ? existing : &dummy, f);
}

/* A pending request (NULL on failure, checked). */
static struct sg_request *
pending(struct sg_service *s, const char *key, uint8_t fill)
{
	struct sg_request *q = NULL;
	struct sg_fault f;

	CHECK_EQ_INT(create(s, key, "ci", fill, NULL, NULL, &q, NULL, &f), 0);
	if (q != NULL)
		CHECK_EQ_INT(q->state, SG_REQ_PENDING);
	return q;
}

/* An envelope over statement + decision, signed with signer's key under
 * the name keyid. */
static char *
envelope_as(const char *statement, const char *signer, const char *keyid,
    int approve)
{
	uint8_t *body = NULL, *pae = NULL, sig[1024];
	size_t body_len, pae_len, sig_len = sizeof(sig);
	EVP_MD_CTX *ctx;
	char *json = NULL;

	if (sg_body_build(statement, strlen(statement), approve, &body,
	    &body_len) != 0 || sg_dsse_pae(SG_DSSE_TYPE, body, body_len, &pae,
	    &pae_len) != 0 || (ctx = EVP_MD_CTX_new()) == NULL)
		abort();
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
	    find_key(officers, NOFFICERS, signer)->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, pae, pae_len) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	if (sg_envelope_build(SG_DSSE_TYPE, body, body_len, keyid, sig,
	    sig_len, &json) != 0)
		abort();
	free(body);
	free(pae);
	return json;
}

/* officer posts an envelope signed with signer's key under its own name.
 * *ret (if given) receives the request after the decision. */
static int
decide_as(struct sg_service *s, const struct sg_request *q,
    const char *officer, const char *signer, int approve,
    struct sg_request **ret, struct sg_fault *f)
{
	struct sg_request *out = NULL;
	char *env = envelope_as(q->statement, signer, officer, approve);
	int r;

	memset(f, 0, sizeof(*f));
	r = sg_service_decide(s, q->id, officer, env, strlen(env), &out, f);
	free(env);
	if (ret != NULL)
		*ret = out;
	else
		sg_request_free(out);
	return r;
}

static int
decide(struct sg_service *s, const struct sg_request *q, const char *officer,
    int approve, struct sg_request **ret)
{
	struct sg_fault f;

	return decide_as(s, q, officer, officer, approve, ret, &f);
}

/* The stored request id (NULL if it cannot be read). */
static struct sg_request *
get(struct sg_service *s, const char *id)
{
	struct sg_request *q = NULL;

	if (sg_service_get(s, id, &q) != 0)
		return NULL;
	return q;
}

static int
state_is(struct sg_service *s, const char *id, enum sg_req_state state)
{
	struct sg_request *q = get(s, id);
	int yes = q != NULL && q->state == state;

	sg_request_free(q);
	return yes;
}

/* Signature entries for request id in the log a signed checkpoint covers;
 * *ret_napprovals gets the last one's number of approvals. */
static int
log_signatures(struct sg_service *s, const char *id, size_t *ret_napprovals)
{
	struct sg_entry e;
	char *note = NULL, *text;
	uint64_t size = 0, i;
	size_t len;
	int n = 0;

	if (sg_service_log_checkpoint(s, &note, &size) != 0)
		return -1;
	free(note);
	for (i = 0; i < size; i++) {
		text = NULL;
		if (sg_service_log_entry(s, i, &text, &len) != 0)
			return -1;
		memset(&e, 0, sizeof(e));
		if (sg_entry_parse(text, len, &e) == 0 &&
		    e.type == SG_ENTRY_SIGNATURE &&
		    strcmp(e.request, id) == 0) {
			n++;
			if (ret_napprovals != NULL)
				*ret_napprovals = e.napprovals;
		}
		sg_entry_clear(&e);
		free(text);
	}
	return n;
}

/* Whether q's signature verifies under the HSM key it names. */
static int
signature_verifies(const struct sg_request *q)
{
	uint8_t digest[32];
	size_t len;

	if (q->signature == NULL || sg_hex_decode(q->digest_hex,
	    strlen(q->digest_hex), digest, sizeof(digest), &len) != 0)
		return 0;
	return sg_verify(find_key(hsm, NHSM, q->key)->pub, SG_SIG_ECDSA,
	    SG_DIGEST_SHA256, digest, len, q->signature,
	    q->signature_len) == 0;
}

/* Whether a signature is served for q: under a signed checkpoint, with
 * its proof (what the API requires before it shows one). */
static int
released(struct sg_service *s, const struct sg_request *q)
{
	char *bundle = NULL;
	int r;

	if (q == NULL || q->signature == NULL || q->log_index < 0)
		return 0;
	r = sg_service_log_bundle(s, (uint64_t)q->log_index, q->id, &bundle,
	    NULL);
	free(bundle);
	return r == 0;
}

static size_t
count_in_state(struct sg_service *s, enum sg_req_state state,
    const char *key)
{
	struct sg_request **v = NULL;
	size_t n = 0;

	if (sg_service_list(s, state, key, 0, 100, &v, &n) != 0)
		return (size_t)-1;
	sg_request_list_free(v, n);
	return n;
}

/* ------------------------------------------------------------------ */

static void
test_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sg-service-test.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		abort();
	make_keys();
}

/* Validation errors name the field; nothing is signed for them. */
static void
test_create_validation(void)
{
	struct sg_service *s = open_service("validation", &v1);
	struct sg_request *q = NULL;
	struct sg_new_request nr;
	struct sg_fault f;
	int existing;

	if (s == NULL)
		return;
	CHECK_EQ_INT(create(s, "nosuch", "ci", 1, NULL, NULL, &q, NULL, &f),
	    SG_ERR_NOT_FOUND);
	CHECK_STR(f.field, "key");
	CHECK_EQ_INT(create(s, "release", "alice", 1, NULL, NULL, &q, NULL,
	    &f), SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "key");
	CHECK(strstr(f.detail, "'alice' may not request") != NULL);

	memset(&nr, 0, sizeof(nr));
	memset(&f, 0, sizeof(f));
	nr.key = "nightly";
	nr.digest_alg = SG_DIGEST_SHA256;
	nr.digest_len = 20;
	nr.format = SG_FORMAT_RAW;
	nr.artifact_json = "{}";
	nr.requester = "ci";
	CHECK_EQ_INT(sg_service_create(s, &nr, &q, &existing, &f),
	    SG_ERR_INVALID);
	CHECK_STR(f.field, "digest.value");
	nr.digest_len = 32;
	nr.format = SG_FORMAT_CMS;
	memset(&f, 0, sizeof(f));
	CHECK_EQ_INT(sg_service_create(s, &nr, &q, &existing, &f),
	    SG_ERR_INVALID);
	CHECK_STR(f.field, "format");
	CHECK(q == NULL);
	CHECK_EQ_INT(fk.nreq, 0);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_NONE, NULL), 0);
	sg_service_free(s);
}

/* A retry with the Idempotency-Key returns the original, signed once; the
 * same key with another body is a conflict that names the header. */
static void
test_create_idempotent(void)
{
	struct sg_service *s = open_service("idem", &v1);
	struct sg_request *a = NULL, *b = NULL, *c = NULL;
	struct sg_fault f;
	int existing = -1;

	if (s == NULL)
		return;
	CHECK_EQ_INT(create(s, "nightly", "ci", 7, "k1", "b1", &a, &existing,
	    &f), 0);
	CHECK_EQ_INT(existing, 0);
	if (a == NULL)
		goto out;
	CHECK_EQ_INT(a->state, SG_REQ_SIGNED);
	CHECK(signature_verifies(a));
	CHECK(released(s, a));
	CHECK_EQ_INT(create(s, "nightly", "ci", 7, "k1", "b1", &b, &existing,
	    &f), 0);
	CHECK_EQ_INT(existing, 1);
	CHECK(b != NULL && strcmp(b->id, a->id) == 0);
	CHECK_EQ_INT(fake_count(a->id, 0), 1);
	CHECK_EQ_INT(create(s, "nightly", "ci", 8, "k1", "b2", &c, &existing,
	    &f), SG_ERR_CONFLICT);
	CHECK_STR(f.field, "Idempotency-Key");
	CHECK(c == NULL);
	CHECK_EQ_INT(log_signatures(s, a->id, NULL), 1);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_NONE, NULL), 1);
out:
	sg_request_free(a);
	sg_request_free(b);
	sg_service_free(s);
}

/* Pending requests are capped per requester. */
static void
test_create_pending_cap(void)
{
	struct sg_service *s = open_service("cap", &v1);
	struct sg_request *q;
	struct sg_fault f;
	unsigned i;

	if (s == NULL)
		return;
	for (i = 0; i < cfg.max_pending; i++)
		sg_request_free(pending(s, "release", (uint8_t)i));
	q = NULL;
	CHECK_EQ_INT(create(s, "release", "ci", 99, NULL, NULL, &q, NULL, &f),
	    SG_ERR_RATE_LIMITED);
	CHECK(strstr(f.detail, "pending") != NULL);
	CHECK(q == NULL);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_PENDING, NULL), cfg.max_pending);
	sg_service_free(s);
}

/* carol posts json as her decision on q: refused as invalid, the fault
 * naming field and saying detail. */
static int
bad_envelope(struct sg_service *s, const struct sg_request *q,
    const char *json, const char *field, const char *detail)
{
	struct sg_request *after = NULL;
	struct sg_fault f;
	int r;

	memset(&f, 0, sizeof(f));
	r = sg_service_decide(s, q->id, "carol", json, strlen(json), &after,
	    &f);
	sg_request_free(after);
	if (r == SG_ERR_INVALID && strcmp(f.field, field) == 0 &&
	    strcmp(f.detail, detail) == 0)
		return 1;
	fprintf(stderr, "  %s: %s, field '%s', detail '%s'\n", json,
	    sg_strerror(r), f.field, f.detail);
	return 0;
}

/* An envelope that does not verify, or by someone else than the poster,
 * or by an officer who may not decide, never counts. */
static void
test_decide_refusals(void)
{
	struct sg_service *s = open_service("refusals", &v1);
	struct sg_request *q, *after = NULL;
	struct sg_fault f;
	char *env;

	if (s == NULL || (q = pending(s, "release", 1)) == NULL)
		goto out;
	/* alice's name, mallory's key: the signature does not verify. */
	CHECK_EQ_INT(decide_as(s, q, "alice", "mallory", 1, NULL, &f),
	    SG_ERR_VERIFY);
	CHECK_STR(f.field, "signatures[0].sig");
	CHECK_EQ_INT(decide_as(s, q, "bob", "mallory", 1, NULL, &f),
	    SG_ERR_VERIFY);
	/* erin is an officer, but not one of this key's approvers. */
	CHECK_EQ_INT(decide_as(s, q, "erin", "erin", 1, NULL, &f),
	    SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "signatures[0].keyid");
	/* bob's envelope posted by carol. */
	env = envelope_as(q->statement, "bob", "bob", 1);
	memset(&f, 0, sizeof(f));
	CHECK_EQ_INT(sg_service_decide(s, q->id, "carol", env, strlen(env),
	    &after, &f), SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "signatures[0].keyid");
	free(env);
	CHECK_EQ_INT(sg_service_decide(s, q->id, "carol", "{", 1, &after, &f),
	    SG_ERR_INVALID);
	/* Not JSON: about the envelope as a whole, so no field, and the
	 * parser's words, colons and all, in the detail. */
	CHECK_STR(f.field, "");
	CHECK(strncmp(f.detail, "not valid JSON: ", 16) == 0);
	CHECK(bad_envelope(s, q, "{\"payloadType\":\"x\"}", "payload",
	    "payload: missing"));
	CHECK(bad_envelope(s, q, "{\"payloadType\":\"x\",\"payload\":\"AA==\","
	    "\"signatures\":[{\"sig\":\"AA==\"}]}", "signatures[0].keyid",
	    "signatures[0].keyid: missing"));
	CHECK(bad_envelope(s, q, "[]", "", "envelope must be a JSON object"));
	/* An unknown member whose name holds ": " is named whole. */
	CHECK(bad_envelope(s, q, "{\"payload: x\":1}", "payload: x",
	    "payload: x: unknown field"));
	CHECK(bad_envelope(s, q, "{\"payloadType\":\"x\",\"payload\":\"AA==\","
	    "\"signatures\":[{\"keyid:\":1}]}", "signatures[0].keyid:",
	    "signatures[0].keyid:: unknown field"));
	if ((after = get(s, q->id)) != NULL) {
		CHECK_EQ_INT(after->state, SG_REQ_PENDING);
		CHECK_EQ_INT(after->napprovals, 0);
	}
	sg_request_free(after);
	/* One good approval is one, not a quorum with the bad ones. */
	CHECK_EQ_INT(decide(s, q, "alice", 1, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_PENDING &&
	    after->napprovals == 1);
	CHECK_EQ_INT(fake_count(q->id, 0), 0);
	sg_request_free(after);
	sg_request_free(q);
out:
	sg_service_free(s);
}

/* The quorum signs exactly once, with the decisions that count as
 * evidence, and the request is closed to later decisions. */
static void
test_decide_quorum_signs_once(void)
{
	struct sg_service *s = open_service("quorum", &v1);
	struct sg_request *q, *after = NULL;
	struct sg_fault f;
	size_t napprovals = 0;

	if (s == NULL || (q = pending(s, "release", 2)) == NULL)
		goto out;
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	CHECK_EQ_INT(decide_as(s, q, "alice", "alice", 1, NULL, &f),
	    SG_ERR_CONFLICT);
	CHECK(strstr(f.detail, "already decided") != NULL);
	CHECK_EQ_INT(fake_count(q->id, 0), 0);
	CHECK_EQ_INT(decide(s, q, "bob", 1, &after), 0);
	if (after != NULL) {
		CHECK_EQ_INT(after->state, SG_REQ_SIGNED);
		CHECK(signature_verifies(after));
		CHECK(released(s, after));
	}
	CHECK_EQ_INT(decide_as(s, q, "carol", "carol", 1, NULL, &f),
	    SG_ERR_CONFLICT);
	CHECK(strstr(f.detail, "signed, not pending") != NULL);
	CHECK_EQ_INT(log_signatures(s, q->id, &napprovals), 1);
	CHECK_EQ_INT(napprovals, 2);
	sg_request_free(after);
	sg_service_free(s);
	s = NULL;
	/* After the housekeeping thread has stopped: still once. */
	CHECK_EQ_INT(fake_count(q->id, 0), 1);
	CHECK_EQ_INT(fk.req[0].nenv, 2);
	CHECK_STR(fk.req[0].officers, "alice,bob");
	sg_request_free(q);
out:
	sg_service_free(s);
}

/* A veto ends the request at once, unsigned. */
static void
test_decide_rejection(void)
{
	struct sg_service *s = open_service("reject", &v1);
	struct sg_request *q, *after = NULL;

	if (s == NULL || (q = pending(s, "firmware", 3)) == NULL)
		goto out;
	CHECK_EQ_INT(decide(s, q, "alice", 0, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_REJECTED &&
	    after->signature == NULL);
	CHECK_EQ_INT(decide(s, q, "bob", 1, NULL), SG_ERR_CONFLICT);
	sg_request_free(after);
	sg_service_free(s);
	s = NULL;
	CHECK_EQ_INT(fake_count(q->id, 0), 0);
	sg_request_free(q);
out:
	sg_service_free(s);
}

struct waitfor {
	struct sg_service *s;
	const char *id;
	enum sg_req_state state;
	int n;
};

static int
cond_state(void *arg)
{
	struct waitfor *w = arg;

	return state_is(w->s, w->id, w->state);
}

static int
cond_calls(void *arg)
{
	struct waitfor *w = arg;

	return fake_count(w->id, 0) >= w->n;
}

static int
cond_released(void *arg)
{
	struct waitfor *w = arg;
	struct sg_request *q = get(w->s, w->id);
	int yes = released(w->s, q);

	sg_request_free(q);
	return yes;
}

static int
cond_hanging(void *arg)
{
	int yes;

	(void)arg;
	pthread_mutex_lock(&fk.mu);
	yes = fk.hanging > 0;
	pthread_mutex_unlock(&fk.mu);
	return yes;
}

/* A signer failure leaves the request pending; the housekeeping thread
 * signs it once the HSM is back, and only once. */
static void
test_retry_after_signer_failure(void)
{
	struct sg_service *s = open_service("retry", &v1);
	struct sg_request *q, *after = NULL;
	struct waitfor w;

	if (s == NULL || (q = pending(s, "release", 6)) == NULL)
		goto out;
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	fake_set(&fk.fail_sign, -1);
	CHECK_EQ_INT(decide(s, q, "bob", 1, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_PENDING &&
	    after->signature == NULL);
	sg_request_free(after);
	/* Retried while the HSM is away, and still pending. */
	w = (struct waitfor){ s, q->id, SG_REQ_NONE, fake_count(q->id, 0) + 1 };
	CHECK(wait_until(cond_calls, &w));
	CHECK(state_is(s, q->id, SG_REQ_PENDING));
	fake_set(&fk.fail_sign, 0);
	w = (struct waitfor){ s, q->id, SG_REQ_NONE, 0 };
	CHECK(wait_until(cond_released, &w));
	if ((after = get(s, q->id)) != NULL) {
		CHECK_EQ_INT(after->state, SG_REQ_SIGNED);
		CHECK(signature_verifies(after));
	}
	sg_request_free(after);
	CHECK_EQ_INT(log_signatures(s, q->id, NULL), 1);
	sg_service_free(s);
	s = NULL;
	CHECK_EQ_INT(fake_count(q->id, 1), 1);
	sg_request_free(q);
out:
	sg_service_free(s);
}

/* A refusal by the signer is final: the request fails, with the reason,
 * and is not asked again. */
static void
test_signer_refusal_fails(void)
{
	struct sg_service *s = open_service("refused", &v1);
	struct sg_request *q, *after = NULL;

	if (s == NULL || (q = pending(s, "release", 7)) == NULL)
		goto out;
	fake_set(&fk.refuse_sign, 1);
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	CHECK_EQ_INT(decide(s, q, "bob", 1, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_FAILED &&
	    after->error != NULL &&
	    strstr(after->error, "evidence does not hold") != NULL);
	sg_request_free(after);
	sg_service_free(s);
	s = NULL;
	CHECK_EQ_INT(fake_count(q->id, 0), 1);
	sg_request_free(q);
out:
	sg_service_free(s);
}

static void
test_cancel(void)
{
	struct sg_service *s = open_service("cancel", &v1);
	struct sg_request *q1 = NULL, *q2 = NULL, *out = NULL;
	struct sg_fault f;

	if (s == NULL || (q1 = pending(s, "release", 8)) == NULL ||
	    (q2 = pending(s, "release", 9)) == NULL)
		goto out;
	memset(&f, 0, sizeof(f));
	CHECK_EQ_INT(sg_service_cancel(s, q1->id, "ci", "", &out, &f),
	    SG_ERR_INVALID);
	CHECK_STR(f.field, "reason");
	memset(&f, 0, sizeof(f));
	CHECK_EQ_INT(sg_service_cancel(s, q1->id, "ci", "bad\033[2J", &out,
	    &f), SG_ERR_INVALID);
	CHECK_STR(f.field, "reason");
	CHECK_EQ_INT(sg_service_cancel(s, q1->id, "erin", "no", &out, &f),
	    SG_ERR_FORBIDDEN);
	CHECK(strstr(f.detail, "only its requester") != NULL);
	CHECK_EQ_INT(sg_service_cancel(s, q1->id, "mallory", "no", &out, &f),
	    SG_ERR_FORBIDDEN);
	CHECK(state_is(s, q1->id, SG_REQ_PENDING));
	CHECK_EQ_INT(sg_service_cancel(s, q1->id, "ci", "wrong build", &out,
	    &f), 0);
	if (out != NULL) {
		CHECK_EQ_INT(out->state, SG_REQ_CANCELLED);
		CHECK_STR(out->cancelled_by, "ci");
		CHECK_STR(out->cancel_reason, "wrong build");
	}
	sg_request_free(out);
	out = NULL;
	memset(&f, 0, sizeof(f));
	CHECK_EQ_INT(sg_service_cancel(s, q1->id, "ci", "again", &out, &f),
	    SG_ERR_CONFLICT);
	CHECK(strstr(f.detail, "cancelled by ci") != NULL);
	CHECK_EQ_INT(decide(s, q1, "alice", 1, NULL), SG_ERR_CONFLICT);
	/* An officer who may approve it may cancel it too. */
	CHECK_EQ_INT(sg_service_cancel(s, q2->id, "bob", "not this one", &out,
	    &f), 0);
	CHECK(out != NULL && strcmp(out->cancelled_by, "bob") == 0);
	CHECK_EQ_INT(fk.nreq, 0);
out:
	sg_request_free(out);
	sg_request_free(q1);
	sg_request_free(q2);
	sg_service_free(s);
}

struct decider {
	struct sg_service *s;
	const struct sg_request *q;
	const char *officer;
	int r;
	struct sg_request *after;
};

static void *
decide_main(void *arg)
{
	struct decider *d = arg;

	d->r = decide(d->s, d->q, d->officer, 1, &d->after);
	return NULL;
}

/* The quorum's signature is under way (the signer hangs) when `during`
 * happens; then the signer answers.  d->r and d->after tell the end. */
static int
while_signing(struct sg_service *s, const struct sg_request *q,
    struct decider *d, void (*during)(struct sg_service *,
    const struct sg_request *))
{
	pthread_t th;

	*d = (struct decider){ s, q, "bob", -1, NULL };
	fake_set(&fk.hang, 1);
	if (pthread_create(&th, NULL, decide_main, d) != 0)
		return -1;
	CHECK(wait_until(cond_hanging, NULL));
	during(s, q);
	fake_set(&fk.hang, 0);
	pthread_join(th, NULL);
	return 0;
}

static void
cancel_now(struct sg_service *s, const struct sg_request *q)
{
	struct sg_request *out = NULL;
	struct sg_fault f;

	CHECK_EQ_INT(sg_service_cancel(s, q->id, "ci", "stop", &out, &f), 0);
	CHECK(out != NULL && out->state == SG_REQ_CANCELLED);
	sg_request_free(out);
}

static void
clock_past_expiry(struct sg_service *s, const struct sg_request *q)
{
	(void)s;
	atomic_store(&clock_offset, q->expires_at - q->created_at);
}

/* Past its expiry a request can neither be approved nor signed, not even
 * when its quorum was met before: a signature under way when it expires
 * is not recorded. */
static void
test_expiry(void)
{
	struct sg_service *s = open_service("expiry", &v1);
	struct sg_request *a, *b;
	struct sg_fault f;
	struct decider d;
	struct waitfor w;

	if (s == NULL || (a = pending(s, "release", 4)) == NULL)
		goto out;
	if ((b = pending(s, "release", 5)) == NULL) {
		sg_request_free(a);
		goto out;
	}
	CHECK_EQ_INT(decide(s, a, "alice", 1, NULL), 0);
	CHECK_EQ_INT(decide(s, b, "alice", 1, NULL), 0);
	CHECK_EQ_INT(while_signing(s, b, &d, clock_past_expiry), 0);
	CHECK_EQ_INT(d.r, 0);
	CHECK(d.after != NULL && d.after->state != SG_REQ_SIGNED &&
	    d.after->signature == NULL);
	sg_request_free(d.after);
	CHECK_EQ_INT(fake_count(b->id, 1), 1);
	CHECK_EQ_INT(decide_as(s, a, "bob", "bob", 1, NULL, &f),
	    SG_ERR_CONFLICT);
	CHECK(strstr(f.detail, "expired") != NULL);
	CHECK(state_is(s, a->id, SG_REQ_EXPIRED));
	w = (struct waitfor){ s, b->id, SG_REQ_EXPIRED, 0 };
	CHECK(wait_until(cond_state, &w));
	CHECK_EQ_INT(decide(s, b, "carol", 1, NULL), SG_ERR_CONFLICT);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_SIGNED, NULL), 0);
	CHECK_EQ_INT(log_signatures(s, b->id, NULL), 0);
	CHECK_EQ_INT(fake_count(a->id, 0), 0);
	CHECK_EQ_INT(fake_count(b->id, 0), 1);
	sg_request_free(a);
	sg_request_free(b);
out:
	sg_service_free(s);
}

/* A signature made while the request was cancelled is never recorded
 * nor released. */
static void
test_cancel_while_signing(void)
{
	struct sg_service *s = open_service("cancel-race", &v1);
	struct sg_request *q;
	struct decider d;

	if (s == NULL || (q = pending(s, "release", 10)) == NULL)
		goto out;
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	CHECK_EQ_INT(while_signing(s, q, &d, cancel_now), 0);
	CHECK_EQ_INT(d.r, 0);
	CHECK(d.after != NULL && d.after->state == SG_REQ_CANCELLED &&
	    d.after->signature == NULL);
	sg_request_free(d.after);
	CHECK_EQ_INT(fake_count(q->id, 1), 1);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_SIGNED, NULL), 0);
	CHECK_EQ_INT(log_signatures(s, q->id, NULL), 0);
	sg_request_free(q);
out:
	sg_service_free(s);
}

/* A new version applies at once (a revoked officer stops counting, for
 * requests made before too); an unchanged file, a version not raised and
 * a key moved on the HSM are refused with the reason. */
static void
test_reload(void)
{
	struct sg_service *s = open_service("reload", &v1);
	const struct policy_opts v2 = { 2, NULL, 1, 0 }, v2b = { 2, NULL, 0, 0 },
	    v3 = { 3, "moved", 1, 0 };
	struct sg_request *q, *p2 = NULL, *after = NULL;
	struct sg_request_quorum v;
	struct sg_fault f;
	char err[512];
	size_t napprovals = 0;

	if (s == NULL || (q = pending(s, "release", 11)) == NULL)
		goto out;
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	CHECK_EQ_INT(write_policy(&v2), 0);
	CHECK_EQ_INT(sg_service_reload(s, err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_policy_version(sg_service_policy(s)), 2);
	CHECK_EQ_INT(fk.reloads, 1);
	CHECK_STR(fk.reload_sha, sg_policy_sha256_hex(sg_service_policy(s)));
	CHECK_EQ_INT(sg_service_reload(s, err, sizeof(err)), SG_ERR_CONFLICT);
	CHECK(strstr(err, "has not changed") != NULL);
	CHECK_EQ_INT(write_policy(&v2b), 0);
	CHECK_EQ_INT(sg_service_reload(s, err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "version 2 is not above") != NULL);
	CHECK_EQ_INT(write_policy(&v3), 0);
	CHECK_EQ_INT(sg_service_reload(s, err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "key 'release': object changed ('release' to "
	    "'moved')") != NULL && strstr(err, "restart") != NULL);
	CHECK_EQ_INT(sg_policy_version(sg_service_policy(s)), 2);
	CHECK_EQ_INT(fk.reloads, 1);

	/* alice's approval, made under version 1, no longer counts. */
	CHECK_EQ_INT(decide(s, q, "bob", 1, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_PENDING);
	if (after != NULL &&
	    sg_service_request_quorum(s, after, &v) == 0) {
		CHECK_EQ_INT(v.counted[0], 0);
		CHECK_EQ_INT(v.counted[1], 1);
		CHECK_STR(v.in_force, "service-test@2");
	}
	sg_request_free(after);
	CHECK_EQ_INT(decide(s, q, "carol", 1, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_SIGNED);
	sg_request_free(after);
	CHECK_EQ_INT(log_signatures(s, q->id, &napprovals), 1);
	CHECK_EQ_INT(napprovals, 2);
	CHECK_STR(fk.req[0].officers, "bob,carol");
	/* Nor may she approve anything new. */
	if ((p2 = pending(s, "release", 12)) != NULL)
		CHECK_EQ_INT(decide_as(s, p2, "alice", "alice", 1, NULL, &f),
		    SG_ERR_FORBIDDEN);
	sg_request_free(p2);
	sg_request_free(q);
out:
	sg_service_free(s);
}

/* The log entry at index, parsed (0 when it is of that type). */
static int
log_entry_of(struct sg_service *s, uint64_t index, enum sg_entry_type type,
    struct sg_entry *e)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	memset(e, 0, sizeof(*e));
	if ((r = sg_service_log_entry(s, index, &text, &len)) == 0)
		r = sg_entry_parse(text, len, e);
	free(text);
	if (r == 0 && e->type != type) {
		sg_entry_clear(e);
		r = SG_ERR_INVALID;
	}
	return r;
}

/* A signature under a version logged pending: its proof carries, after
 * the policy entry's bundle, the policy-effective entry's, the two
 * approvals' and the previous version's, all under one checkpoint. */
static void
check_pending_proof(struct sg_service *s)
{
	static const char magic[] = "c2sp.org/tlog-proof@v1\n";
	static const char *const types[] = { "signature", "policy",
	    "policy-effective", "policy-decision", "policy-decision",
	    "policy" };
	struct sg_request *q = NULL;
	struct sg_tlog_proof pr;
	struct sg_entry e;
	struct sg_fault f;
	char *bundle = NULL, *p, *next;
	size_t i = 0, first;

	memset(&f, 0, sizeof(f));
	CHECK_EQ_INT(create(s, "nightly", "ci", 31, "pc-proof", "b", &q, NULL,
	    &f), 0);
	if (q == NULL || q->log_index < 0 || sg_service_log_bundle(s,
	    (uint64_t)q->log_index, q->id, &bundle, NULL) != 0) {
		CHECK(!"a signature and its proof");
		goto out;
	}
	for (p = bundle; *p != '\0'; p = next, i++) {
		if (sg_cli_proof_split(p, strlen(p), &first) != 0 ||
		    i == sizeof(types) / sizeof(types[0])) {
			CHECK(!"six bundles");
			break;
		}
		next = p + first;
		memset(&pr, 0, sizeof(pr));
		memset(&e, 0, sizeof(e));
		if (sg_tlog_proof_parse(p, first, &pr) != 0 ||
		    sg_entry_parse((const char *)pr.extra, pr.extra_len,
		    &e) != 0)
			CHECK(!"a bundle with an entry");
		else if (strstr((const char *)pr.extra, types[i]) == NULL ||
		    (i == 1 && !e.pending) || (i == 5 && e.pending))
			CHECK(!"the bundles in order");
		sg_entry_clear(&e);
		sg_tlog_proof_clear(&pr);
	}
	CHECK_EQ_INT(i, 6);
	CHECK(strncmp(bundle, magic, sizeof(magic) - 1) == 0);
out:
	free(bundle);
	sg_request_free(q);
}

/* The offline check of a policy change's logged approvals: each by the
 * officer its entry names, over the statement for exactly this pair of
 * versions, no officer twice, meeting the previous version's terms. */
static void
test_policy_approvals_check(void)
{
	const struct policy_opts o1 = { 1, NULL, 0, 1 }, o2 = { 2, NULL, 0, 0 };
	struct sg_policy *p1 = NULL, *p2 = NULL;
	char *t1 = policy_text(&o1), *t2 = policy_text(&o2), *stmt = NULL;
	char *other = NULL, *env[4] = { NULL, NULL, NULL, NULL };
	const char *names[3], *envs[3];
	char err[1024], got[256];
	size_t lens[3], len = 0, olen = 0, i;

	if (sg_policy_parse("v1", t1, strlen(t1), &p1, err, sizeof(err)) != 0 ||
	    sg_policy_parse("v2", t2, strlen(t2), &p2, err, sizeof(err)) != 0 ||
	    sg_policy_approval_statement(p2, p1, &stmt, &len) != 0 ||
	    sg_policy_approval_statement(p1, p2, &other, &olen) != 0) {
		CHECK(!"two policies and the statement");
		goto out;
	}
	env[0] = envelope_as(stmt, "alice", "alice", 1);
	env[1] = envelope_as(stmt, "bob", "bob", 1);
	env[2] = envelope_as(stmt, "bob", "carol", 1);
	env[3] = envelope_as(other, "carol", "carol", 1);
	for (i = 0; i < 3; i++)
		lens[i] = 0;
#define APPROVALS(a, b, c, d, n) do {					\
	names[0] = (a); envs[0] = env[b]; lens[0] = strlen(env[b]);	\
	names[1] = (c); envs[1] = env[d]; lens[1] = strlen(env[d]);	\
	err[0] = got[0] = '\0';					\
} while (0)
	APPROVALS("alice", 0, "bob", 1, 2);
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens, 2,
	    got, sizeof(got), err, sizeof(err)), 0);
	CHECK_STR(got, "alice bob");
	/* One is not the quorum of two. */
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens, 1,
	    got, sizeof(got), err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "policy-change terms") != NULL);
	/* Nor is one officer twice. */
	APPROVALS("alice", 0, "alice", 0, 2);
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens, 2,
	    got, sizeof(got), err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "alice approved twice") != NULL);
	/* The entry names another officer than the envelope's. */
	APPROVALS("alice", 0, "carol", 1, 2);
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens, 2,
	    got, sizeof(got), err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "the entry names carol, the envelope is bob's") !=
	    NULL);
	/* carol's name, bob's key. */
	APPROVALS("alice", 0, "carol", 2, 2);
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens, 2,
	    got, sizeof(got), err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "approval 2 (carol)") != NULL);
	/* An approval of another change (v1 in place of v2). */
	APPROVALS("alice", 0, "carol", 3, 2);
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens, 2,
	    got, sizeof(got), err, sizeof(err)), SG_ERR_INVALID);
	/* Under a previous version without policy-change terms nothing is
	 * an approval. */
	APPROVALS("alice", 0, "bob", 1, 2);
	CHECK_EQ_INT(sg_policy_approvals_check(p1, p2, names, envs, lens, 2,
	    got, sizeof(got), err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "asks for no approval") != NULL);
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens, 0,
	    got, sizeof(got), err, sizeof(err)), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_policy_approvals_check(p2, p1, names, envs, lens,
	    SG_QUORUM_MAX + 1, got, sizeof(got), err, sizeof(err)),
	    SG_ERR_INVALID);
#undef APPROVALS
out:
	for (i = 0; i < 4; i++)
		free(env[i]);
	free(stmt);
	free(other);
	free(t1);
	free(t2);
	sg_policy_free(p1);
	sg_policy_free(p2);
}

/* Under policy-change terms a new version is logged pending and the old
 * one stays in force until two officers approve it; a forged approval and
 * a second one by the same officer are refused and not counted; the last
 * approval puts it in force with a policy-effective entry. */
static void
test_policy_change(void)
{
	const struct policy_opts p1 = { 1, NULL, 0, 1 }, p2 = { 2, NULL, 1, 1 };
	struct sg_service *s = open_service("pchange", &p1);
	struct sg_policy_pending_view v;
	struct sg_policy_version pv;
	struct sg_entry e;
	struct sg_fault f;
	char err[512], sha1[SG_SHA256_HEX_SIZE], sha2[SG_SHA256_HEX_SIZE];
	char *env;
	int reloads;

	memset(&v, 0, sizeof(v));
	if (s == NULL)
		goto out;
	snprintf(sha1, sizeof(sha1), "%s",
	    sg_policy_sha256_hex(sg_service_policy(s)));
	CHECK_EQ_INT(sg_service_policy_get(s, sha1, &pv), 0);
	CHECK_STR(pv.status, "effective");
	if (log_entry_of(s, pv.log_index, SG_ENTRY_POLICY, &e) == 0) {
		CHECK(!e.pending && !e.has_previous && e.policy_version == 1);
		sg_entry_clear(&e);
	} else
		CHECK(!"the policy entry");
	sg_policy_version_clear(&pv);
	CHECK_EQ_INT(sg_service_policy_pending(s, &v), SG_ERR_NOT_FOUND);

	reloads = fk.reloads;
	CHECK_EQ_INT(write_policy(&p2), 0);
	CHECK_EQ_INT(sg_service_reload(s, err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_policy_version(sg_service_policy(s)), 1);
	CHECK_EQ_INT(fk.reloads, reloads);
	if (sg_service_policy_pending(s, &v) != 0) {
		CHECK(!"a pending version");
		goto out;
	}
	snprintf(sha2, sizeof(sha2), "%s", v.sha256);
	CHECK(v.version == 2 && v.napprovals == 0 && v.nterms == 1 &&
	    v.missing[0] == 2 && strcmp(v.prev_sha256, sha1) == 0);
	if (log_entry_of(s, v.log_index, SG_ENTRY_POLICY, &e) == 0) {
		CHECK(e.pending && e.has_previous &&
		    strcmp(e.previous_sha256, sha1) == 0);
		sg_entry_clear(&e);
	} else
		CHECK(!"the pending policy's entry");

	/* carol's name with bob's key; then alice. */
	env = envelope_as(v.statement, "bob", "carol", 1);
	memset(&f, 0, sizeof(f));
	sg_policy_pending_view_clear(&v);
	CHECK_EQ_INT(sg_service_policy_approve(s, "carol", sha2, env,
	    strlen(env), &v, &f), SG_ERR_VERIFY);
	free(env);
	if (sg_service_policy_pending(s, &v) != 0)
		goto out;
	env = envelope_as(v.statement, "alice", "alice", 1);
	sg_policy_pending_view_clear(&v);
	CHECK_EQ_INT(sg_service_policy_approve(s, "alice", sha2, env,
	    strlen(env), &v, &f), 0);
	CHECK(!v.effective && v.napprovals == 1 && v.missing[0] == 1);
	CHECK_EQ_INT(sg_policy_version(sg_service_policy(s)), 1);
	sg_policy_pending_view_clear(&v);
	CHECK_EQ_INT(sg_service_policy_approve(s, "alice", sha2, env,
	    strlen(env), &v, &f), SG_ERR_CONFLICT);
	CHECK(strstr(f.detail, "already") != NULL);
	free(env);

	if (sg_service_policy_pending(s, &v) != 0)
		goto out;
	env = envelope_as(v.statement, "bob", "bob", 1);
	sg_policy_pending_view_clear(&v);
	CHECK_EQ_INT(sg_service_policy_approve(s, "bob", sha2, env,
	    strlen(env), &v, &f), 0);
	free(env);
	CHECK(v.effective && v.napprovals == 2);
	CHECK_EQ_INT(sg_policy_version(sg_service_policy(s)), 2);
	CHECK_EQ_INT(fk.reloads, reloads + 1);
	if (log_entry_of(s, v.effective_index, SG_ENTRY_POLICY_EFFECTIVE,
	    &e) == 0) {
		CHECK(e.napproval_entries == 2 &&
		    e.approval_entries[0] == v.approval_index[0] &&
		    e.approval_entries[1] == v.approval_index[1] &&
		    strcmp(e.policy_sha256, sha2) == 0);
		sg_entry_clear(&e);
	} else
		CHECK(!"the policy-effective entry");
	sg_policy_pending_view_clear(&v);
	CHECK_EQ_INT(sg_service_policy_pending(s, &v), SG_ERR_NOT_FOUND);
	CHECK_EQ_INT(sg_service_policy_get(s, sha2, &pv), 0);
	CHECK_STR(pv.status, "effective");
	sg_policy_version_clear(&pv);
	check_pending_proof(s);
out:
	sg_policy_pending_view_clear(&v);
	sg_service_free(s);
}

/* --- when the log or the store cannot be written --- */

/* The checkpoint cannot be signed: a signature made at once is stored
 * but neither acknowledged nor served; a retry with the same
 * Idempotency-Key returns it once a checkpoint covers it, signed once. */
static void
test_checkpoint_fails_create(void)
{
	struct sg_service *s = open_service("ckpt-create", &v1);
	struct sg_request *q = NULL, **v = NULL;
	struct sg_fault f;
	size_t n = 0;
	int existing = -1;

	if (s == NULL)
		return;
	fake_set(&fk.fail_checkpoint, 1);
	CHECK_EQ_INT(create(s, "nightly", "ci", 13, "k", "b", &q, NULL, &f),
	    SG_ERR_UNAVAILABLE);
	CHECK(q == NULL);
	CHECK_EQ_INT(f.recorded, 1);
	CHECK_EQ_INT(sg_service_list(s, SG_REQ_SIGNED, "nightly", 0, 10, &v,
	    &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1)
		CHECK(!released(s, v[0]));
	CHECK_EQ_INT(create(s, "nightly", "ci", 13, "k", "b", &q, NULL, &f),
	    SG_ERR_UNAVAILABLE);
	CHECK(q == NULL);
	fake_set(&fk.fail_checkpoint, 0);
	CHECK_EQ_INT(create(s, "nightly", "ci", 13, "k", "b", &q, &existing,
	    &f), 0);
	CHECK_EQ_INT(existing, 1);
	if (q != NULL && n == 1) {
		CHECK_STR(q->id, v[0]->id);
		CHECK(released(s, q));
		CHECK_EQ_INT(fake_count(q->id, 0), 1);
	}
	sg_request_free(q);
	sg_request_list_free(v, n);
	sg_service_free(s);
}

/* The checkpoint cannot be signed when the quorum completes: the decision
 * is stored but not acknowledged; the housekeeping thread signs, and the
 * signature is served only once a checkpoint covers it. */
static void
test_checkpoint_fails_decide(void)
{
	struct sg_service *s = open_service("ckpt-decide", &v1);
	struct sg_request *q, *after = NULL;
	struct sg_fault f;
	struct waitfor w;

	if (s == NULL || (q = pending(s, "release", 14)) == NULL)
		goto out;
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	fake_set(&fk.fail_checkpoint, 1);
	CHECK_EQ_INT(decide_as(s, q, "bob", "bob", 1, &after, &f),
	    SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(f.recorded, 1);
	CHECK(after == NULL);
	w = (struct waitfor){ s, q->id, SG_REQ_SIGNED, 0 };
	CHECK(wait_until(cond_state, &w));
	if ((after = get(s, q->id)) != NULL) {
		CHECK(signature_verifies(after));
		CHECK(!released(s, after));
	}
	sg_request_free(after);
	fake_set(&fk.fail_checkpoint, 0);
	CHECK(wait_until(cond_released, &w));
	CHECK_EQ_INT(log_signatures(s, q->id, NULL), 1);
	sg_service_free(s);
	s = NULL;
	CHECK_EQ_INT(fake_count(q->id, 0), 1);
	sg_request_free(q);
out:
	sg_service_free(s);
}

/* The signer refuses the log from now on: one more write is stored but
 * not acknowledged, and the ones after it cannot be logged, so nothing is
 * stored for them. */
static void
refuse_log(struct sg_service *s, const struct sg_request *q)
{
	struct sg_request *other = NULL;
	struct sg_fault f;
	char why[256];

	(void)q;
	fake_set(&fk.refuse_checkpoint, 1);
	CHECK_EQ_INT(create(s, "release", "ci", 15, NULL, NULL, &other, NULL,
	    &f), SG_ERR_UNAVAILABLE);
	CHECK_EQ_INT(f.recorded, 1);
	CHECK(other == NULL);
	CHECK_EQ_INT(sg_service_ready(s, why, sizeof(why)),
	    SG_ERR_UNAVAILABLE);
	CHECK(strstr(why, "refuses to sign the log") != NULL);
}

/* When the log cannot be written, nothing is acknowledged as signed and
 * no signature is released: not a signature made at once, not the
 * quorum's signature that was under way. */
static void
test_log_refused(void)
{
	struct sg_service *s = open_service("log-refused", &v1);
	struct sg_request *q, *other = NULL, *after = NULL;
	struct sg_fault f;
	struct decider d;

	if (s == NULL || (q = pending(s, "release", 16)) == NULL)
		goto out;
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	CHECK_EQ_INT(while_signing(s, q, &d, refuse_log), 0);
	CHECK_EQ_INT(d.r, 0);
	CHECK(d.after != NULL && d.after->state == SG_REQ_PENDING &&
	    d.after->signature == NULL);
	sg_request_free(d.after);
	CHECK(fake_count(q->id, 1) >= 1);
	CHECK_EQ_INT(create(s, "nightly", "ci", 17, NULL, NULL, &other, NULL,
	    &f), SG_ERR_UNAVAILABLE);
	CHECK(other == NULL);
	CHECK_EQ_INT(f.recorded, 0);
	CHECK(strstr(f.detail, "could not be stored and logged") != NULL);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_NONE, "nightly"), 0);
	CHECK_EQ_INT(decide_as(s, q, "carol", "carol", 1, NULL, &f),
	    SG_ERR_UNAVAILABLE);
	if ((after = get(s, q->id)) != NULL) {
		CHECK_EQ_INT(after->state, SG_REQ_PENDING);
		CHECK(after->signature == NULL && after->napprovals == 2);
	}
	sg_request_free(after);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_SIGNED, NULL), 0);
	sg_request_free(q);
out:
	sg_service_free(s);
}

static void
disk_away(struct sg_service *s, const struct sg_request *q)
{
	(void)s;
	(void)q;
	atomic_store(&disk_fails, 1);
}

/* The disk under the store fails: no request is stored, no decision
 * counts, a signature under way is not recorded; all of it works again
 * once the disk is back, and the quorum's signature is recorded once. */
static void
test_disk_fails(void)
{
	struct sg_service *s = open_service("disk", &v1);
	struct sg_request *q, *other = NULL, *after = NULL;
	struct sg_fault f;
	struct decider d;
	struct waitfor w;

	if (s == NULL || (q = pending(s, "release", 18)) == NULL)
		goto out;
	atomic_store(&disk_fails, 1);
	CHECK_EQ_INT(create(s, "nightly", "ci", 19, NULL, NULL, &other, NULL,
	    &f), SG_ERR_UNAVAILABLE);
	CHECK(other == NULL && f.recorded == 0);
	CHECK_EQ_INT(decide_as(s, q, "alice", "alice", 1, NULL, &f),
	    SG_ERR_UNAVAILABLE);
	atomic_store(&disk_fails, 0);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_NONE, "nightly"), 0);
	if ((after = get(s, q->id)) != NULL)
		CHECK_EQ_INT(after->napprovals, 0);
	sg_request_free(after);

	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	CHECK_EQ_INT(while_signing(s, q, &d, disk_away), 0);
	CHECK_EQ_INT(d.r, 0);
	CHECK(d.after != NULL && d.after->state == SG_REQ_PENDING &&
	    d.after->signature == NULL);
	sg_request_free(d.after);
	atomic_store(&disk_fails, 0);
	w = (struct waitfor){ s, q->id, SG_REQ_NONE, 0 };
	CHECK(wait_until(cond_released, &w));
	CHECK_EQ_INT(log_signatures(s, q->id, NULL), 1);
	sg_request_free(q);
out:
	atomic_store(&disk_fails, 0);
	sg_service_free(s);
}

/* ---- releases ---- */

#define NREL 5

/* The line of artifact i of a test release: a SHA-256 of i + 1 bytes. */
static void
release_line(size_t i, char *line, size_t cap)
{
	struct sg_artifact_line al;
	size_t n;

	memset(&al, 0, sizeof(al));
	al.digest_alg = SG_DIGEST_SHA256;
	memset(al.digest, (int)i + 1, 32);
	al.digest_len = 32;
	al.format = SG_FORMAT_RAW;
	snprintf(al.name, sizeof(al.name), "art-%zu.bin", i);
	snprintf(al.version, sizeof(al.version), "1.%zu", i);
	if (sg_artifact_line_build(&al, line, cap, &n) != 0)
		abort();
}

/* A pending release of NREL artifacts on key "release" (NULL on failure,
 * checked). */
static struct sg_request *
new_release(struct sg_service *s)
{
	static char buf[NREL][SG_ARTIFACT_LINE_MAX + 1];
	const char *lines[NREL];
	struct sg_new_request nr;
	struct sg_request *q = NULL;
	struct sg_fault f;
	size_t i;
	int existing = 0;

	for (i = 0; i < NREL; i++) {
		release_line(i, buf[i], sizeof(buf[i]));
		lines[i] = buf[i];
	}
	memset(&nr, 0, sizeof(nr));
	memset(&f, 0, sizeof(f));
	nr.kind = SG_KIND_RELEASE;
	nr.key = "release";
	nr.format = SG_FORMAT_RAW;
	nr.artifact_json = "{\"name\":\"app\"}";
	nr.requester = "ci";
	nr.lines = lines;
	nr.nlines = NREL;
	CHECK_EQ_INT(sg_service_create(s, &nr, &q, &existing, &f), 0);
	if (q == NULL)
		fprintf(stderr, "  release: %s: %s\n", f.field, f.detail);
	return q;
}

/* The type of log entry index, and its request and position. */
static int
entry_at(struct sg_service *s, int64_t index, struct sg_entry *e)
{
	char *text = NULL;
	size_t len;
	int r;

	memset(e, 0, sizeof(*e));
	if (index < 0 || sg_service_log_entry(s, (uint64_t)index, &text,
	    &len) != 0)
		return -1;
	r = sg_entry_parse(text, len, e);
	free(text);
	return r;
}

static int
is_entry(struct sg_service *s, int64_t index, int type, const char *id,
    uint64_t position)
{
	struct sg_entry e;
	int yes;

	if (entry_at(s, index, &e) != 0)
		return 0;
	yes = (int)e.type == type && strcmp(e.request, id) == 0 &&
	    (type != SG_ENTRY_ARTIFACT_SIGNATURE || e.position == position);
	sg_entry_clear(&e);
	return yes;
}

/* Whether artifact it's signature verifies over its line's digest. */
static int
item_verifies(const struct sg_release_item *it)
{
	struct sg_artifact_line al;

	if (it->signature == NULL || sg_artifact_line_parse(it->line,
	    strlen(it->line), &al) != 0)
		return 0;
	return sg_verify(find_key(hsm, NHSM, "release")->pub, SG_SIG_ECDSA,
	    al.digest_alg, al.digest, al.digest_len, it->signature,
	    it->signature_len) == 0;
}

/* Every artifact of release q signed, verifying, with its entry. */
static void
check_release_signed(struct sg_service *s, const struct sg_request *q)
{
	struct sg_release_item *v = NULL;
	char line[SG_ARTIFACT_LINE_MAX + 1];
	size_t i, n = 0;

	CHECK_EQ_INT(sg_service_release_items(s, q->id, 0, 100, &v, &n), 0);
	CHECK_EQ_INT(n, NREL);
	for (i = 0; i < n; i++) {
		release_line(i, line, sizeof(line));
		CHECK_EQ_INT(v[i].position, i);
		CHECK_STR(v[i].line, line);
		CHECK(item_verifies(&v[i]));
		CHECK(v[i].log_index >= 0);
		CHECK(is_entry(s, v[i].log_index, SG_ENTRY_ARTIFACT_SIGNATURE,
		    q->id, i));
	}
	sg_release_items_free(v, n);
	CHECK_EQ_INT(fake_count(q->id, 1), NREL);
}

/* A release is created pending with its statement; two approvals make
 * it active with an approved entry; every artifact is then signed, each
 * with its artifact-signature entry, and it ends signed. */
static void
test_release_signed(void)
{
	struct sg_service *s = open_service("release", &v1);
	struct sg_request *q = NULL, *after = NULL;
	struct waitfor w;
	char want[64];

	if (s == NULL || (q = new_release(s)) == NULL)
		goto out;
	CHECK_EQ_INT(q->kind, SG_KIND_RELEASE);
	CHECK_EQ_INT(q->count, NREL);
	CHECK_EQ_INT(q->state, SG_REQ_PENDING);
	CHECK(strncmp(q->statement, "signgate release approval v1\nrelease ",
	    37) == 0);
	snprintf(want, sizeof(want), " %d\nformat raw\n", NREL);
	CHECK(strstr(q->statement, want) != NULL);
	CHECK_EQ_INT(decide(s, q, "alice", 1, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_PENDING);
	sg_request_free(after);
	after = NULL;
	CHECK_EQ_INT(fake_count(q->id, 0), 0);
	CHECK_EQ_INT(decide(s, q, "bob", 1, &after), 0);
	CHECK(after != NULL && (after->state == SG_REQ_ACTIVE ||
	    after->state == SG_REQ_SIGNED));
	if (after != NULL)
		CHECK(is_entry(s, after->approved_index, SG_ENTRY_APPROVED,
		    q->id, 0));
	sg_request_free(after);
	after = NULL;
	w = (struct waitfor){ s, q->id, SG_REQ_SIGNED, 0 };
	CHECK(wait_until(cond_state, &w));
	after = get(s, q->id);
	CHECK(after != NULL && after->signed_count == NREL);
	check_release_signed(s, q);
out:
	sg_request_free(after);
	sg_request_free(q);
	sg_service_free(s);
}

/* Approves release q (alice, bob). */
static void
approve_release(struct sg_service *s, const struct sg_request *q)
{
	CHECK_EQ_INT(decide(s, q, "alice", 1, NULL), 0);
	CHECK_EQ_INT(decide(s, q, "bob", 1, NULL), 0);
}

/* A signer that refuses the release fails it, with nothing signed. */
static void
test_release_refused(void)
{
	struct sg_service *s = open_service("release-refused", &v1);
	struct sg_request *q = NULL, *after = NULL;
	struct waitfor w;

	if (s == NULL || (q = new_release(s)) == NULL)
		goto out;
	fake_set(&fk.refuse_sign, 1);
	approve_release(s, q);
	w = (struct waitfor){ s, q->id, SG_REQ_FAILED, 0 };
	CHECK(wait_until(cond_state, &w));
	after = get(s, q->id);
	CHECK(after != NULL && after->signed_count == 0 &&
	    after->error != NULL && strstr(after->error, "refused") != NULL);
	CHECK_EQ_INT(fake_count(q->id, 1), 0);
out:
	sg_request_free(after);
	sg_request_free(q);
	sg_service_free(s);
}

/* A signer that is away leaves the release active; once it is back the
 * release is signed, each artifact once. */
static void
test_release_signer_away(void)
{
	struct sg_service *s = open_service("release-away", &v1);
	struct sg_request *q = NULL, *after = NULL;
	struct waitfor w;

	if (s == NULL || (q = new_release(s)) == NULL)
		goto out;
	fake_set(&fk.fail_sign, -1);
	approve_release(s, q);
	w = (struct waitfor){ s, q->id, SG_REQ_NONE, 2 };
	CHECK(wait_until(cond_calls, &w));
	after = get(s, q->id);
	CHECK(after != NULL && after->state == SG_REQ_ACTIVE &&
	    after->signed_count == 0);
	sg_request_free(after);
	fake_set(&fk.fail_sign, 0);
	w = (struct waitfor){ s, q->id, SG_REQ_SIGNED, 0 };
	CHECK(wait_until(cond_state, &w));
	after = get(s, q->id);
	CHECK(after != NULL && after->signed_count == NREL);
	check_release_signed(s, q);
out:
	sg_request_free(after);
	sg_request_free(q);
	sg_service_free(s);
}

/* Creates a release of n artifacts on key (first n test lines). */
static int
release_n(struct sg_service *s, const char *key, size_t n,
    struct sg_fault *f)
{
	static char buf[RELEASE_MAX + 1][SG_ARTIFACT_LINE_MAX + 1];
	const char *lines[RELEASE_MAX + 1];
	struct sg_new_request nr;
	struct sg_request *q = NULL;
	size_t i;
	int existing = 0, r;

	for (i = 0; i < n && i <= RELEASE_MAX; i++) {
		release_line(i, buf[i], sizeof(buf[i]));
		lines[i] = buf[i];
	}
	memset(&nr, 0, sizeof(nr));
	memset(f, 0, sizeof(*f));
	nr.kind = SG_KIND_RELEASE;
	nr.key = key;
	nr.format = SG_FORMAT_RAW;
	nr.artifact_json = "{}";
	nr.requester = "ci";
	nr.lines = lines;
	nr.nlines = n;
	r = sg_service_create(s, &nr, &q, &existing, f);
	CHECK(r == 0 || q == NULL);
	sg_request_free(q);
	return r;
}

/* A release holds 1 to the key's allow-releases artifacts, on a key that
 * allows releases and needs approvals. */
static void
test_release_limits(void)
{
	struct sg_service *s = open_service("release-limits", &v1);
	struct sg_fault f;

	if (s == NULL)
		return;
	CHECK_EQ_INT(release_n(s, "release", RELEASE_MAX + 1, &f),
	    SG_ERR_INVALID);
	CHECK_STR(f.field, "artifacts");
	CHECK_EQ_INT(release_n(s, "release", 0, &f), SG_ERR_INVALID);
	CHECK_STR(f.field, "artifacts");
	CHECK_EQ_INT(release_n(s, "firmware", 2, &f), SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "key");
	CHECK(strstr(f.detail, "allow-releases") != NULL);
	CHECK_EQ_INT(release_n(s, "nightly", 2, &f), SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "key");
	CHECK_EQ_INT(count_in_state(s, SG_REQ_NONE, NULL), 0);
	CHECK_EQ_INT(release_n(s, "release", RELEASE_MAX, &f), 0);
	CHECK_EQ_INT(count_in_state(s, SG_REQ_PENDING, NULL), 1);
	sg_service_free(s);
}

/* ---- grants ---- */

/* Asks for a grant on key (count, lifetime, pattern) as requester. */
static int
grant_create(struct sg_service *s, const char *key, uint64_t count,
    uint64_t lifetime, const char *pattern, struct sg_request **ret,
    struct sg_fault *f)
{
	struct sg_new_request nr;
	int existing = 0;

	memset(&nr, 0, sizeof(nr));
	memset(f, 0, sizeof(*f));
	nr.kind = SG_KIND_GRANT;
	nr.key = key;
	nr.format = SG_FORMAT_RAW;
	nr.artifact_json = "{}";
	nr.requester = "ci";
	nr.count = count;
	nr.lifetime = lifetime;
	nr.pattern = pattern;
	*ret = NULL;
	return sg_service_create(s, &nr, ret, &existing, f);
}

/* An approved (active) grant on key "release" (NULL on failure). */
static struct sg_request *
active_grant(struct sg_service *s, uint64_t count, uint64_t lifetime,
    const char *pattern)
{
	struct sg_request *g = NULL, *after = NULL;
	struct sg_fault f;

	CHECK_EQ_INT(grant_create(s, "release", count, lifetime, pattern, &g,
	    &f), 0);
	if (g == NULL)
		return NULL;
	CHECK_EQ_INT(g->kind, SG_KIND_GRANT);
	CHECK_EQ_INT(decide(s, g, "alice", 1, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_ACTIVE &&
	    is_entry(s, after->approved_index, SG_ENTRY_APPROVED, g->id, 0));
	sg_request_free(after);
	return g;
}

/* A request under grant gid for artifact name, digest of `fill` bytes. */
static int
grant_sign(struct sg_service *s, const char *gid, const char *name,
    uint8_t fill, struct sg_request **ret, struct sg_fault *f)
{
	struct sg_new_request nr;
	char art[128];
	int existing = 0;

	snprintf(art, sizeof(art), "{\"name\":\"%s\"}", name);
	memset(&nr, 0, sizeof(nr));
	memset(f, 0, sizeof(*f));
	nr.digest_alg = SG_DIGEST_SHA256;
	memset(nr.digest, fill, 32);
	nr.digest_len = 32;
	nr.artifact_json = art;
	nr.requester = "ci";
	nr.grant = gid;
	*ret = NULL;
	return sg_service_create(s, &nr, ret, &existing, f);
}

/* Creation limits: count and lifetime within the key's, grants allowed
 * on the key at all. */
static void
test_grant_limits(void)
{
	struct sg_service *s = open_service("grant-limits", &v1);
	struct sg_request *g = NULL;
	struct sg_fault f;

	if (s == NULL)
		return;
	CHECK_EQ_INT(grant_create(s, "release", GRANT_MAX + 1, 600, "*", &g,
	    &f), SG_ERR_INVALID);
	CHECK_STR(f.field, "count");
	CHECK(g == NULL);
	CHECK_EQ_INT(grant_create(s, "release", 0, 600, "*", &g, &f),
	    SG_ERR_INVALID);
	CHECK_STR(f.field, "count");
	CHECK_EQ_INT(grant_create(s, "release", 5, GRANT_LIFETIME_MAX + 1,
	    "*", &g, &f), SG_ERR_INVALID);
	CHECK_STR(f.field, "lifetime");
	CHECK_EQ_INT(grant_create(s, "firmware", 5, 600, "*", &g, &f),
	    SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "key");
	CHECK(strstr(f.detail, "allow-grants") != NULL);
	CHECK_EQ_INT(grant_create(s, "nightly", 5, 600, "*", &g, &f),
	    SG_ERR_FORBIDDEN);
	CHECK_STR(f.field, "key");
	CHECK_EQ_INT(count_in_state(s, SG_REQ_NONE, NULL), 0);
	/* At the limits: created. */
	CHECK_EQ_INT(grant_create(s, "release", GRANT_MAX, GRANT_LIFETIME_MAX,
	    "*", &g, &f), 0);
	CHECK(g != NULL && g->count == GRANT_MAX && g->state ==
	    SG_REQ_PENDING && g->expires_at - g->created_at ==
	    GRANT_LIFETIME_MAX);
	sg_request_free(g);
	sg_service_free(s);
}

/* Under a pending grant nothing is signed; under an active one each
 * request is signed at once with numbers 1..N, and N + 1 is refused. */
static void
test_grant_count(void)
{
	struct sg_service *s = open_service("grant-count", &v1);
	struct sg_request *g = NULL, *p = NULL, *q = NULL;
	struct sg_fault f;
	uint8_t i;

	if (s == NULL)
		return;
	CHECK_EQ_INT(grant_create(s, "release", 3, 3600, "app-*", &p, &f), 0);
	if (p != NULL) {
		CHECK_EQ_INT(grant_sign(s, p->id, "app-1", 1, &q, &f),
		    SG_ERR_FORBIDDEN);
		CHECK_STR(f.field, "grant");
		CHECK(strstr(f.detail, "not approved") != NULL);
		CHECK(q == NULL);
		CHECK_EQ_INT(fake_count(p->id, 1), 0);
	}
	if ((g = active_grant(s, 3, 3600, "app-*")) == NULL)
		goto out;
	for (i = 1; i <= 3; i++) {
		CHECK_EQ_INT(grant_sign(s, g->id, "app-x", i, &q, &f), 0);
		CHECK(q != NULL && q->state == SG_REQ_SIGNED &&
		    q->grant_seq == i && strcmp(q->grant_id, g->id) == 0 &&
		    signature_verifies(q) && is_entry(s, q->log_index,
		    SG_ENTRY_ARTIFACT_SIGNATURE, g->id, i));
		sg_request_free(q);
	}
	CHECK_EQ_INT(grant_sign(s, g->id, "app-x", 4, &q, &f),
	    SG_ERR_CONFLICT);
	CHECK(q == NULL && strstr(f.detail, "used up") != NULL);
	CHECK_EQ_INT(fake_count(g->id, 1), 3);
	sg_request_free(g);
	g = get(s, p != NULL ? p->id : "");
	CHECK(g != NULL && g->used == 0);
out:
	sg_request_free(g);
	sg_request_free(p);
	sg_service_free(s);
}

#define RACERS 8
#define RACE_COUNT 20

struct racer {
	pthread_t th;
	struct sg_service *s;
	const char *gid;
	unsigned n;
	uint64_t seqs[RACE_COUNT + 1];
	int other;                     /* answers other than 0, CONFLICT */
};

static void *
racer_main(void *p)
{
	struct racer *rc = p;
	struct sg_request *q;
	struct sg_fault f;
	int r;

	for (;;) {
		r = grant_sign(rc->s, rc->gid, "app-race", (uint8_t)rc->n, &q,
		    &f);
		if (r == SG_ERR_CONFLICT)
			break;
		if (r != 0 || q == NULL || q->state != SG_REQ_SIGNED) {
			rc->other++;
			sg_request_free(q);
			break;
		}
		if (rc->n <= RACE_COUNT)
			rc->seqs[rc->n++] = q->grant_seq;
		sg_request_free(q);
	}
	return NULL;
}

/* Eight threads racing for a grant of 20 get exactly 20 signatures, each
 * number once. */
static void
test_grant_race(void)
{
	struct sg_service *s = open_service("grant-race", &v1);
	static struct racer rc[RACERS];
	struct sg_request *g = NULL;
	unsigned seen[RACE_COUNT + 2], total = 0;
	size_t i, k;

	if (s == NULL || (g = active_grant(s, RACE_COUNT, 3600, "*")) == NULL)
		goto out;
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < RACERS; i++) {
		memset(&rc[i], 0, sizeof(rc[i]));
		rc[i].s = s;
		rc[i].gid = g->id;
		CHECK_EQ_INT(pthread_create(&rc[i].th, NULL, racer_main,
		    &rc[i]), 0);
	}
	for (i = 0; i < RACERS; i++) {
		pthread_join(rc[i].th, NULL);
		CHECK_EQ_INT(rc[i].other, 0);
		for (k = 0; k < rc[i].n; k++, total++)
			if (rc[i].seqs[k] >= 1 && rc[i].seqs[k] <= RACE_COUNT)
				seen[rc[i].seqs[k]]++;
	}
	CHECK_EQ_INT(total, RACE_COUNT);
	for (i = 1; i <= RACE_COUNT; i++)
		CHECK_EQ_INT(seen[i], 1);
	CHECK_EQ_INT(fake_count(g->id, 1), RACE_COUNT);
out:
	sg_request_free(g);
	sg_service_free(s);
}

/* Revocation: by an officer or the requester, at once; not by an
 * auditor; not twice. */
static void
test_grant_revoke(void)
{
	struct sg_service *s = open_service("grant-revoke", &v1);
	struct sg_request *g = NULL, *h = NULL, *q = NULL;
	struct sg_fault f;

	if (s == NULL || (g = active_grant(s, 5, 3600, "*")) == NULL ||
	    (h = active_grant(s, 5, 3600, "*")) == NULL)
		goto out;
	CHECK_EQ_INT(grant_sign(s, g->id, "a", 1, &q, &f), 0);
	sg_request_free(q);
	q = NULL;
	memset(&f, 0, sizeof(f));
	CHECK_EQ_INT(sg_service_revoke(s, g->id, "bob", "", &q, &f),
	    SG_ERR_INVALID);
	CHECK_STR(f.field, "reason");
	CHECK_EQ_INT(sg_service_revoke(s, g->id, "audit", "no", &q, &f),
	    SG_ERR_FORBIDDEN);
	CHECK(q == NULL);
	CHECK_EQ_INT(sg_service_revoke(s, g->id, "bob", "key leaked", &q, &f),
	    0);
	CHECK(q != NULL && q->state == SG_REQ_REVOKED &&
	    strcmp(q->cancelled_by, "bob") == 0);
	sg_request_free(q);
	q = NULL;
	CHECK_EQ_INT(grant_sign(s, g->id, "a", 2, &q, &f), SG_ERR_FORBIDDEN);
	CHECK(q == NULL && strcmp(f.field, "grant") == 0 &&
	    strstr(f.detail, "revoked") != NULL);
	CHECK_EQ_INT(sg_service_revoke(s, g->id, "alice", "again", &q, &f),
	    SG_ERR_CONFLICT);
	CHECK(q == NULL);
	CHECK_EQ_INT(fake_count(g->id, 1), 1);
	/* The requester may revoke its own grant. */
	CHECK_EQ_INT(sg_service_revoke(s, h->id, "ci", "done early", &q, &f),
	    0);
	CHECK(q != NULL && q->state == SG_REQ_REVOKED);
	sg_request_free(q);
	q = NULL;
	CHECK_EQ_INT(grant_sign(s, h->id, "a", 3, &q, &f), SG_ERR_FORBIDDEN);
out:
	sg_request_free(q);
	sg_request_free(g);
	sg_request_free(h);
	sg_service_free(s);
}

/* A grant past its end signs nothing; a name outside its pattern is
 * refused. */
static void
test_grant_end_and_pattern(void)
{
	struct sg_service *s = open_service("grant-end", &v1);
	struct sg_request *g = NULL, *q = NULL;
	struct sg_fault f;

	if (s == NULL || (g = active_grant(s, 5, 600, "app-?.bin")) == NULL)
		goto out;
	CHECK_EQ_INT(grant_sign(s, g->id, "app-10.bin", 1, &q, &f),
	    SG_ERR_FORBIDDEN);
	CHECK(q == NULL);
	CHECK_STR(f.field, "artifact.name");
	CHECK_EQ_INT(grant_sign(s, g->id, "other.bin", 1, &q, &f),
	    SG_ERR_FORBIDDEN);
	CHECK_EQ_INT(grant_sign(s, g->id, "app-1.bin", 1, &q, &f), 0);
	CHECK(q != NULL && q->grant_seq == 1);
	sg_request_free(q);
	q = NULL;
	atomic_store(&clock_offset, 600);
	CHECK_EQ_INT(grant_sign(s, g->id, "app-2.bin", 2, &q, &f),
	    SG_ERR_FORBIDDEN);
	CHECK(q == NULL);
	CHECK_STR(f.field, "grant");
	CHECK_EQ_INT(fake_count(g->id, 1), 1);
out:
	sg_request_free(g);
	sg_service_free(s);
}

/* The answers of the calls that do not wait, as they come. */
struct later {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, r, existing;
	pthread_t thread;              /* where the answer came from */
	struct sg_request *q;
	char detail[512];             /* struct sg_fault's */
};

static void
later_init(struct later *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
}

static void
later_told(struct later *l, int r, struct sg_request *q, int existing,
    const struct sg_fault *f)
{
	pthread_mutex_lock(&l->lock);
	l->calls++;
	l->r = r;
	l->q = q;
	l->existing = existing;
	l->thread = pthread_self();
	snprintf(l->detail, sizeof(l->detail), "%s", f->detail);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

static void
on_created(void *arg, int r, struct sg_request *q, int existing,
    const struct sg_fault *f)
{
	later_told(arg, r, q, existing, f);
}

static void
on_decided(void *arg, int r, struct sg_request *q, const struct sg_fault *f)
{
	later_told(arg, r, q, 0, f);
}

/* Once told (at most 30 s): its result; the request is *ret's. */
static int
later_wait(struct later *l, struct sg_request **ret)
{
	struct timespec until;
	int r;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&l->lock);
	while (l->calls == 0 && pthread_cond_timedwait(&l->cond, &l->lock,
	    &until) == 0)
		;
	r = l->calls == 1 ? l->r : SG_ERR_TIMEOUT;
	*ret = l->q;
	l->q = NULL;
	pthread_mutex_unlock(&l->lock);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	return r;
}

/*
 * The calls that do not wait: a request signed at once is told signed,
 * from another thread, its signature released; an idempotent retry gets
 * its original; decisions are told, the one that completes the quorum
 * with the request signed; a decision refused at once is told before the
 * call returns.  Each told exactly once.
 */
static void
test_async(void)
{
	struct sg_service *s = open_service("async", &v1);
	struct sg_new_request nr;
	struct sg_request *q = NULL, *again = NULL, *p = NULL, *after = NULL;
	struct later l;
	char *env;

	if (s == NULL)
		goto out;
	memset(&nr, 0, sizeof(nr));
	nr.key = "nightly";
	nr.digest_alg = SG_DIGEST_SHA256;
	memset(nr.digest, 0x5a, 32);
	nr.digest_len = 32;
	nr.format = SG_FORMAT_RAW;
	nr.artifact_json = "{}";
	nr.requester = "ci";
	nr.idem_key = "async-1";
	nr.body_sha256 = "b1";
	later_init(&l);
	sg_service_create_async(s, &nr, on_created, &l);
	CHECK_EQ_INT(later_wait(&l, &q), 0);
	CHECK(!pthread_equal(l.thread, pthread_self()));
	CHECK(q != NULL && q->state == SG_REQ_SIGNED);
	if (q != NULL) {
		CHECK(signature_verifies(q));
		CHECK(released(s, q));
	}
	later_init(&l);
	sg_service_create_async(s, &nr, on_created, &l);
	CHECK_EQ_INT(later_wait(&l, &again), 0);
	CHECK_EQ_INT(l.existing, 1);
	CHECK(again != NULL && q != NULL && strcmp(again->id, q->id) == 0);

	if ((p = pending(s, "release", 0x5b)) == NULL)
		goto out;
	env = envelope_as(p->statement, "alice", "alice", 1);
	later_init(&l);
	sg_service_decide_async(s, p->id, "bob", env, strlen(env),
	    on_decided, &l);
	/* Refused at once: told before the call returned. */
	CHECK_EQ_INT(l.calls, 1);
	CHECK(strstr(l.detail, "is not the principal") != NULL);
	CHECK_EQ_INT(later_wait(&l, &after), SG_ERR_FORBIDDEN);
	CHECK(after == NULL);
	later_init(&l);
	sg_service_decide_async(s, p->id, "alice", env, strlen(env),
	    on_decided, &l);
	free(env);
	CHECK_EQ_INT(later_wait(&l, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_PENDING);
	sg_request_free(after);
	after = NULL;
	env = envelope_as(p->statement, "bob", "bob", 1);
	later_init(&l);
	sg_service_decide_async(s, p->id, "bob", env, strlen(env),
	    on_decided, &l);
	free(env);
	CHECK_EQ_INT(later_wait(&l, &after), 0);
	CHECK(after != NULL && after->state == SG_REQ_SIGNED);
	if (after != NULL) {
		CHECK(signature_verifies(after));
		CHECK(released(s, after));
	}
out:
	sg_request_free(q);
	sg_request_free(again);
	sg_request_free(p);
	sg_request_free(after);
	sg_service_free(s);
}

static void
test_teardown(void)
{
	char cmd[256];
	size_t i;

	for (i = 0; i < NOFFICERS; i++) {
		EVP_PKEY_free(officers[i].pkey);
		EVP_PKEY_free(officers[i].pub);
		free(officers[i].pem);
	}
	for (i = 0; i < NHSM; i++) {
		EVP_PKEY_free(hsm[i].pkey);
		EVP_PKEY_free(hsm[i].pub);
		free(hsm[i].pem);
	}
	if (tmpdir[0] != '\0' && strchr(tmpdir, '\'') == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		CHECK(system(cmd) == 0);
	}
}

/* Adds n decisions on request id by officers that are not in the policy
 * ("x0", "x1", ...) straight into the service's database. */
static int
add_foreign_decisions(const char *id, int n)
{
	sqlite3 *db = NULL;
	char path[256], *sql;
	int i, r = -1;

	snprintf(path, sizeof(path), "%s/signgate.db", state_dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		goto out;
	sqlite3_busy_timeout(db, 5000);
	for (i = 0; i < n; i++) {
		sql = sqlite3_mprintf("INSERT INTO approvals (request_id, "
		    "officer, decision, at, envelope, ord) VALUES (%Q, 'x%d', "
		    "'approve', 1, '{}', %d)", id, i, i);
		if (sql == NULL || sqlite3_exec(db, sql, NULL, NULL,
		    NULL) != SQLITE_OK) {
			sqlite3_free(sql);
			goto out;
		}
		sqlite3_free(sql);
	}
	r = 0;
out:
	sqlite3_close(db);
	return r;
}

/* A request holds at most SG_ENVELOPES_MAX decisions (all its signature's
 * evidence and log entry can carry): one more, even a good one, is
 * refused with the limit named, and nothing is cut off or left out of a
 * count. */
static void
test_decision_limit(void)
{
	struct sg_service *s = open_service("decision-limit", &v1);
	struct sg_request *q = NULL, *after = NULL;
	struct sg_fault f;
	char want[32];

	if (s == NULL || (q = pending(s, "release", 1)) == NULL)
		goto out;
	CHECK_EQ_INT(add_foreign_decisions(q->id, SG_ENVELOPES_MAX), 0);
	CHECK_EQ_INT(decide_as(s, q, "alice", "alice", 1, &after, &f),
	    SG_ERR_TOO_LARGE);
	CHECK(after == NULL);
	snprintf(want, sizeof(want), "holds %d decisions", SG_ENVELOPES_MAX);
	CHECK(strstr(f.detail, want) != NULL);
	CHECK(strstr(f.detail, q->id) != NULL);
	if ((after = get(s, q->id)) != NULL) {
		CHECK_EQ_INT(after->state, SG_REQ_PENDING);
		CHECK_EQ_INT(after->napprovals, SG_ENVELOPES_MAX);
	}
	sg_request_free(after);
	after = NULL;
	/* One fewer, and the same decision is taken. */
	sg_request_free(q);
	if ((q = pending(s, "release", 2)) == NULL)
		goto out;
	CHECK_EQ_INT(add_foreign_decisions(q->id, SG_ENVELOPES_MAX - 1), 0);
	CHECK_EQ_INT(decide_as(s, q, "alice", "alice", 1, &after, &f), 0);
	CHECK(after != NULL && after->napprovals == SG_ENVELOPES_MAX);
	sg_request_free(after);
out:
	sg_request_free(q);
	sg_service_free(s);
}

SG_TEST_MAIN("service",
    T(test_setup),
    T(test_create_validation),
    T(test_create_idempotent),
    T(test_create_pending_cap),
    T(test_decide_refusals),
    T(test_decision_limit),
    T(test_decide_quorum_signs_once),
    T(test_decide_rejection),
    T(test_expiry),
    T(test_retry_after_signer_failure),
    T(test_signer_refusal_fails),
    T(test_cancel),
    T(test_cancel_while_signing),
    T(test_reload),
    T(test_policy_change),
    T(test_policy_approvals_check),
    T(test_checkpoint_fails_create),
    T(test_checkpoint_fails_decide),
    T(test_log_refused),
    T(test_disk_fails),
    T(test_release_signed),
    T(test_release_refused),
    T(test_release_signer_away),
    T(test_release_limits),
    T(test_grant_limits),
    T(test_grant_count),
    T(test_grant_race),
    T(test_grant_revoke),
    T(test_grant_end_and_pattern),
    T(test_async),
    T(test_teardown))
