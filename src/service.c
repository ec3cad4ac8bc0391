/*
 * signgate's domain operations: create a request, record an officer's
 * decision, sign when the quorum holds, expire what is overdue.
 *
 * Ordering rules (fail closed):
 * - A request that needs no approval is signed first and then inserted,
 *   already signed, in one transaction; the signature is returned only
 *   after that commit.  If the HSM or the store fails, nothing is kept and
 *   the caller gets 503; a retry with the same Idempotency-Key is safe.
 * - A decision is committed on its own; if it completes the quorum the
 *   request is signed and recorded in a second transaction guarded by
 *   `state = 'pending'`, and only one thread at a time may sign a given
 *   request (the claim set below), so a request is signed at most once.
 *   If signing fails the request stays pending and the housekeeping
 *   thread retries it until it expires.
 * - A pending request is judged by the policy its statement names (kept
 *   in the store by SHA-256), never by a later one, with one restriction
 *   from the policy in force: a decision counts only if its officer may
 *   approve under both (sg_policy_evaluate_now), so revoking an officer
 *   takes effect at once.  Only the decisions that count are sent to the
 *   signer and logged with the signature.
 * - A pending request may be cancelled by its requester or by an officer
 *   who may approve it; the transition is guarded like the others, so a
 *   signature made meanwhile is never recorded nor released.  The signer
 *   process cannot tell cancelled from pending (it has no store): the
 *   front only ever asks it for requests pending in the store.
 * - A reload applies every field it accepts in the front and, under the
 *   write lock, in the signer (policy, certificate chains), or refuses.
 * - Nothing is acknowledged before the log holds it under a signed
 *   checkpoint (tlog.c).  The checkpoint is signed after the commit: when
 *   it cannot be, the change stays stored but the caller gets 503 with
 *   "recorded" set; a retry with the Idempotency-Key returns it once a
 *   checkpoint covers it, which the next write, the housekeeping thread
 *   (within a second) or the next start provides.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_evidence.h"
#include "sg_err.h"
#include "sg_service.h"
#include "sg_signer.h"
#include "sg_privdrop.h"
#include "sg_signer_proc.h"
#include "sg_tsa.h"
#include "sg_cms.h"
#include "sg_text.h"
#include "sg_tlog.h"
#include "sg_util.h"

#define MAX_CLAIMS 256
#define SG_POLICY_MAX_KEYS_COUNTED 1024
#define READY_CACHE_SECONDS 5
#define SWEEP_BATCH 64

/* A replaced policy with its key views, kept until shutdown. */
struct retained {
	struct sg_policy *policy;
	char *text;
	struct sg_key_view *keys;
	size_t nkeys;
	struct retained *next;
};

struct sg_service {
	const struct sg_config *cfg;
	struct sg_policy *policy;
	char *policy_text;
	struct sg_signer_client *signer;
	struct sg_store *store;
	struct sg_tlog *log;
	struct sg_key_view *keys;
	size_t nkeys;

	void (*notify)(void *, const char *);
	void *notify_arg;

	/*
	 * The policy and the key views derived from it are replaced as a
	 * whole on reload, under the write lock; every operation that uses
	 * them holds the read lock.  Replaced ones are kept until shutdown,
	 * so pointers handed out earlier stay valid.
	 */
	pthread_rwlock_t plock;
	struct retained *retained;

	pthread_mutex_t lock;          /* claims, stats, ready cache */
	pthread_cond_t unclaimed;      /* a claim was released */
	char claims[MAX_CLAIMS][33];
	size_t nclaims;
	char retry[MAX_CLAIMS][33];    /* quorum met, signing to retry */
	size_t nretry;
	int64_t sweep_after;           /* where the pending scan goes on */
	struct sg_service_stats stats;
	struct sigcount {
		char name[SG_POLICY_NAME_MAX];
		uint64_t n;
	} *sigcounts;                  /* released signatures, by key name */
	size_t nsigcounts;
	time_t ready_at;
	int ready_result;
	char ready_reason[256];

	pthread_t sweeper;
	int sweeper_started;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stopping;
};

static void
fault(struct sg_fault *f, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fault(struct sg_fault *f, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (f == NULL)
		return;
	snprintf(f->field, sizeof(f->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

const double sg_hsm_bucket_bounds[SG_HSM_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
};

static void
stat_add(struct sg_service *s, uint64_t *counter)
{
	pthread_mutex_lock(&s->lock);
	(*counter)++;
	pthread_mutex_unlock(&s->lock);
}

/* A signature was released (committed with its log entry). */
static void
count_signature(struct sg_service *s, const struct sg_key_view *kv)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	s->stats.signatures++;
	for (i = 0; i < s->nsigcounts; i++)
		if (strcmp(s->sigcounts[i].name, kv->pk->name) == 0)
			break;
	if (i == s->nsigcounts && i < SG_POLICY_MAX_KEYS_COUNTED) {
		snprintf(s->sigcounts[i].name, sizeof(s->sigcounts[i].name),
		    "%s", kv->pk->name);
		s->nsigcounts++;
	}
	if (i < s->nsigcounts)
		s->sigcounts[i].n++;
	pthread_mutex_unlock(&s->lock);
}

static void
notify(struct sg_service *s, const char *id)
{
	if (s->notify != NULL)
		s->notify(s->notify_arg, id);
}

/* Checks the inventory and the certificate for one key.  SG_ERR_VERIFY
 * when the certificate is what makes the key unusable. */
static int check_key_with(const struct sg_policy *p,
    struct sg_key_view *kv, const char *policy_dir);

static void
check_key(struct sg_service *s, struct sg_key_view *kv, const char *policy_dir)
{
	(void)check_key_with(s->policy, kv, policy_dir);
}

static int
check_key_with(const struct sg_policy *policy, struct sg_key_view *kv,
    const char *policy_dir)
{
	const struct sg_policy_key *pk = kv->pk;
	const struct sg_hsm *hsm;
	EVP_PKEY *certkey = NULL;
	char *path = NULL;
	size_t len;
	uint8_t spki[32];
	int r;

	kv->usable = 0;
	if (sg_pubkey_spki_sha256(kv->pub, spki) != 0 ||
	    sg_pubkey_to_pem(kv->pub, &kv->public_key_pem) != 0) {
		snprintf(kv->reason, sizeof(kv->reason),
		    "cannot encode the public key");
		return 0;
	}
	sg_hex_encode(spki, sizeof(spki), kv->spki_sha256);
	if (pk->certificate[0] != '\0') {
		if ((path = sg_path_join(policy_dir, pk->certificate)) == NULL)
			return SG_ERR_NOMEM;
		r = sg_read_file(path, 1 << 20, &kv->certificate_pem, &len);
		if (r != 0) {
			snprintf(kv->reason, sizeof(kv->reason),
			    "certificate %s: %s", path, sg_strerror(r));
			free(path);
			return SG_ERR_VERIFY;
		}
		if (sg_pubkey_from_pem(kv->certificate_pem, len,
		    &certkey) != 0 || EVP_PKEY_eq(certkey, kv->pub) != 1) {
			EVP_PKEY_free(certkey);
			snprintf(kv->reason, sizeof(kv->reason),
			    "certificate %s: the certificate's public key is "
			    "not the HSM key's", path);
			free(path);
			return SG_ERR_VERIFY;
		}
		free(path);
		EVP_PKEY_free(certkey);
	}
	/* Where the token stands is shown even when the key may not be
	 * used there; whether it may is the policy's one rule. */
	kv->hsm = sg_policy_hsm(policy, kv->token.serial);
	if (sg_policy_token_allowed(policy, pk, kv->token.label,
	    kv->token.serial, kv->token.manufacturer, kv->token.model, &hsm,
	    kv->reason, sizeof(kv->reason)) != 0)
		return 0;
	kv->usable = 1;
	kv->reason[0] = '\0';
	return 0;
}

static int load_policy(struct sg_service *s, char *errbuf, size_t errlen);
static void *sweeper_main(void *arg);

/* Loads the certificates of a key's retired predecessors, for listing. */
static void
load_retired(struct sg_key_view *kv, const char *policy_dir)
{
	size_t i, len;
	uint8_t spki[32];
	EVP_PKEY *pub;
	char *path;
	int r;

	for (i = 0; i < kv->pk->nretired; i++) {
		struct sg_retired_view *rv = &kv->retired[i];
		rv->rk = &kv->pk->retired[i];
		kv->nretired++;
		if ((path = sg_path_join(policy_dir,
		    rv->rk->certificate)) == NULL)
			continue;
		r = sg_read_file(path, 1 << 20, &rv->certificate_pem, &len);
		pub = NULL;
		if (r == 0 && (r = sg_pubkey_from_pem(rv->certificate_pem, len,
		    &pub)) == 0 && (r = sg_pubkey_spki_sha256(pub, spki)) == 0 &&
		    (r = sg_pubkey_to_pem(pub, &rv->public_key_pem)) == 0)
			sg_hex_encode(spki, sizeof(spki), rv->spki_sha256);
		else {
			snprintf(rv->reason, sizeof(rv->reason), "%s: %s",
			    path, sg_strerror(r));
			sg_log_warn("key '%s': retired certificate %s",
			    kv->pk->name, rv->reason);
		}
		EVP_PKEY_free(pub);
		free(path);
	}
}

static int
sign_checkpoint(void *ctx, const struct sg_witness_request *req,
    struct sg_witness_reply *ret)
{
	return sg_signer_client_checkpoint(ctx, req, ret);
}

/*
 * No policy key may reach the log key, which signs checkpoints: a raw
 * Ed25519 signature over checkpoint text is a checkpoint.  Refused when a
 * key names the log key's token and label, and, once the signer has found
 * the keys, when its public key is the log key's (an ID, a URI or another
 * label for the same key pair).  The signer process checks the HSM
 * objects themselves on its own; this is the front's half.
 */
static int
log_key_clash(const struct sg_config *cfg, const struct sg_policy_key *pk,
    EVP_PKEY *pub, EVP_PKEY *logpub, char *errbuf, size_t errlen)
{
	if (strcmp(pk->token, cfg->log_token) == 0 &&
	    strcmp(pk->object, cfg->log_key) == 0) {
		snprintf(errbuf, errlen, "key '%s': token '%s' object '%s' "
		    "is the transparency log's key (log.key); no policy key "
		    "may use it", pk->name, pk->token, pk->object);
		return SG_ERR_FORBIDDEN;
	}
	if (pub != NULL && logpub != NULL && EVP_PKEY_eq(pub, logpub) == 1) {
		snprintf(errbuf, errlen, "key '%s': its public key is the "
		    "transparency log's key; no policy key may use it",
		    pk->name);
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

struct policy_job {
	const char *sha;
	const char *text;
};

static int
job_put_policy(struct sg_txn *t, void *arg)
{
	struct policy_job *pj = arg;

	return sg_store_put_policy(t, pj->sha, pj->text, (int64_t)time(NULL));
}

int
sg_service_open(const struct sg_config *cfg, struct sg_service **ret,
    char *errbuf, size_t errlen)
{
	struct sg_service *s;
	struct sg_signer_key_spec *specs = NULL;
	struct policy_job pj;
	EVP_PKEY *logpub = NULL;
	enum sg_key_alg logalg;
	uint8_t rawpub[SG_ED25519_PUB];
	size_t rawlen = sizeof(rawpub);
	char *policy_dir = NULL, why[768];
	size_t i;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SG_ERR_NOMEM;
	s->cfg = cfg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->unclaimed, NULL);
	pthread_rwlock_init(&s->plock, NULL);
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_cond_init(&s->stop_cond, NULL);

	if ((r = load_policy(s, errbuf, errlen)) != 0)
		goto fail;

	/* The signer: every policy key, plus the log key. */
	s->nkeys = sg_policy_nkeys(s->policy);
	if ((s->keys = calloc(s->nkeys ? s->nkeys : 1, sizeof(*s->keys))) ==
	    NULL || (s->sigcounts = calloc(SG_POLICY_MAX_KEYS_COUNTED,
	    sizeof(*s->sigcounts))) == NULL ||
	    (specs = calloc(s->nkeys + 1, sizeof(*specs))) == NULL) {
		r = SG_ERR_NOMEM;
		goto fail;
	}
	for (i = 0; i < s->nkeys; i++) {
		const struct sg_policy_key *pk = sg_policy_key_at(s->policy, i);
		if ((r = log_key_clash(cfg, pk, NULL, NULL, errbuf,
		    errlen)) != 0)
			goto fail;
		s->keys[i].pk = pk;
		snprintf(specs[i].name, sizeof(specs[i].name), "%s", pk->name);
		snprintf(specs[i].token, sizeof(specs[i].token), "%s",
		    pk->token);
		snprintf(specs[i].label, sizeof(specs[i].label), "%s",
		    pk->object);
		memcpy(specs[i].id, pk->id, pk->id_len);
		specs[i].id_len = pk->id_len;
		specs[i].scheme = pk->scheme;
	}
	snprintf(specs[i].name, sizeof(specs[i].name), "%s",
	    SG_SIGNER_LOG_KEY);
	snprintf(specs[i].token, sizeof(specs[i].token), "%s", cfg->log_token);
	snprintf(specs[i].label, sizeof(specs[i].label), "%s", cfg->log_key);
	specs[i].scheme = SG_SIG_EDDSA;
	/* The signer runs in its own process (see sg_signer_proc.h): forked
	 * here, or started on its own (signer_socket). */
	if (cfg->signer_socket != NULL)
		r = sg_signer_connect(cfg->signer_socket,
		    sg_policy_sha256_hex(s->policy), specs, s->nkeys + 1,
		    cfg->threads + 4, &s->signer, errbuf, errlen);
	else
		r = sg_signer_spawn(cfg->pkcs11_module, cfg->tokens,
		    cfg->ntokens, specs, s->nkeys + 1, cfg->policy_path,
		    cfg->log_origin, cfg->signer_state_dir, cfg->threads + 4,
		    &s->signer, errbuf, errlen);
	if (r != 0)
		goto fail;
	/* From here on the front is its own unprivileged user, before the
	 * store is opened (sg_privdrop.h). */
	if ((r = sg_privdrop_enter(SG_PRIV_FRONT, errbuf, errlen)) != 0)
		goto fail;
	if (sg_signer_client_key_public(s->signer, SG_SIGNER_LOG_KEY, &logpub,
	    &logalg, NULL) != 0 || logalg != SG_ALG_ED25519 ||
	    EVP_PKEY_get_raw_public_key(logpub, rawpub, &rawlen) != 1 ||
	    rawlen != SG_ED25519_PUB) {
		snprintf(errbuf, errlen, "log key '%s' on token '%s' is not an "
		    "Ed25519 key", cfg->log_key, cfg->log_token);
		r = SG_ERR_INVALID;
		goto fail;
	}

	if ((r = sg_store_open(cfg->state_dir, &s->store)) != 0) {
		snprintf(errbuf, errlen, "%s: cannot open the request store",
		    cfg->state_dir);
		goto fail;
	}
	if ((r = sg_tlog_open(s->store, cfg->log_origin, rawpub,
	    sign_checkpoint, s->signer, &s->log, why, sizeof(why))) != 0) {
		snprintf(errbuf, errlen, "%s: cannot open the transparency "
		    "log: %s", cfg->state_dir, why);
		goto fail;
	}
	pj.sha = sg_policy_sha256_hex(s->policy);
	pj.text = s->policy_text;
	if ((r = sg_store_write(s->store, job_put_policy, &pj)) != 0) {
		snprintf(errbuf, errlen, "%s: the request store cannot be "
		    "written", cfg->state_dir);
		goto fail;
	}

	if ((policy_dir = sg_dirname(cfg->policy_path)) == NULL) {
		r = SG_ERR_NOMEM;
		goto fail;
	}
	for (i = 0; i < s->nkeys; i++) {
		struct sg_key_view *kv = &s->keys[i];
		enum sg_key_alg alg;
		if ((r = sg_signer_client_key_public(s->signer, kv->pk->name,
		    &kv->pub,
		    &alg, &kv->token)) != 0) {
			snprintf(errbuf, errlen, "key '%s': %s", kv->pk->name,
			    sg_strerror(r));
			goto fail;
		}
		if (alg != kv->pk->alg) {
			snprintf(errbuf, errlen, "key '%s': the HSM key is not "
			    "%s", kv->pk->name,
			    sg_scheme_name(kv->pk->alg, kv->pk->scheme));
			r = SG_ERR_INVALID;
			goto fail;
		}
		if ((r = log_key_clash(cfg, kv->pk, kv->pub, logpub, errbuf,
		    errlen)) != 0)
			goto fail;
		check_key(s, kv, policy_dir);
		load_retired(kv, policy_dir);
		if (!kv->usable)
			sg_log_warn("key '%s' will not be used: %s",
			    kv->pk->name, kv->reason);
	}
	if (pthread_create(&s->sweeper, NULL, sweeper_main, s) != 0) {
		snprintf(errbuf, errlen, "cannot start the housekeeping thread");
		r = SG_ERR_INTERNAL;
		goto fail;
	}
	s->sweeper_started = 1;
	free(specs);
	free(policy_dir);
	*ret = s;
	return 0;
fail:
	free(specs);
	free(policy_dir);
	sg_service_free(s);
	return r;
}

static int
load_policy(struct sg_service *s, char *errbuf, size_t errlen)
{
	size_t len;
	int r;

	r = sg_read_file(s->cfg->policy_path, SG_POLICY_MAX_SIZE,
	    &s->policy_text, &len);
	if (r != 0) {
		snprintf(errbuf, errlen, "%s: cannot read: %s",
		    s->cfg->policy_path, sg_strerror(r));
		return r;
	}
	return sg_policy_parse(s->cfg->policy_path, s->policy_text, len,
	    &s->policy, errbuf, errlen);
}

static void
free_keys(struct sg_key_view *keys, size_t n)
{
	size_t i, j;

	for (i = 0; keys != NULL && i < n; i++) {
		free(keys[i].public_key_pem);
		free(keys[i].certificate_pem);
		for (j = 0; j < keys[i].nretired; j++) {
			free(keys[i].retired[j].certificate_pem);
			free(keys[i].retired[j].public_key_pem);
		}
	}
	free(keys);
}

void
sg_service_free(struct sg_service *s)
{
	if (s == NULL)
		return;
	if (s->sweeper_started) {
		pthread_mutex_lock(&s->stop_lock);
		s->stopping = 1;
		pthread_cond_signal(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_lock);
		pthread_join(s->sweeper, NULL);
	}
	free_keys(s->keys, s->nkeys);
	while (s->retained != NULL) {
		struct retained *rt = s->retained;
		s->retained = rt->next;
		free_keys(rt->keys, rt->nkeys);
		sg_policy_free(rt->policy);
		free(rt->text);
		free(rt);
	}
	free(s->sigcounts);
	/* The store's writer may still call the log's hooks until it stops. */
	sg_store_close(s->store);
	sg_tlog_free(s->log);
	sg_signer_client_free(s->signer);
	sg_policy_free(s->policy);
	free(s->policy_text);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->unclaimed);
	pthread_rwlock_destroy(&s->plock);
	pthread_mutex_destroy(&s->stop_lock);
	pthread_cond_destroy(&s->stop_cond);
	free(s);
}

void
sg_service_set_notify(struct sg_service *s,
    void (*fn)(void *arg, const char *id), void *arg)
{
	s->notify = fn;
	s->notify_arg = arg;
}

const struct sg_policy *
sg_service_policy(const struct sg_service *s)
{
	struct sg_service *m = (struct sg_service *)s;
	const struct sg_policy *p;

	pthread_rwlock_rdlock(&m->plock);
	p = s->policy;
	pthread_rwlock_unlock(&m->plock);
	return p;
}

const char *
sg_service_log_vkey(const struct sg_service *s)
{
	return sg_tlog_vkey(s->log);
}

size_t
sg_service_nkeys(const struct sg_service *s)
{
	struct sg_service *m = (struct sg_service *)s;
	size_t n;

	pthread_rwlock_rdlock(&m->plock);
	n = s->nkeys;
	pthread_rwlock_unlock(&m->plock);
	return n;
}

const struct sg_key_view *
sg_service_key_at(const struct sg_service *s, size_t i)
{
	struct sg_service *m = (struct sg_service *)s;
	const struct sg_key_view *kv;

	pthread_rwlock_rdlock(&m->plock);
	kv = i < s->nkeys ? &s->keys[i] : NULL;
	pthread_rwlock_unlock(&m->plock);
	return kv;
}

/* With the read lock held. */
static const struct sg_key_view *
key_locked(const struct sg_service *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].pk->name, name) == 0)
			return &s->keys[i];
	return NULL;
}

const struct sg_key_view *
sg_service_key(const struct sg_service *s, const char *name)
{
	struct sg_service *m = (struct sg_service *)s;
	const struct sg_key_view *kv;

	pthread_rwlock_rdlock(&m->plock);
	kv = key_locked(s, name);
	pthread_rwlock_unlock(&m->plock);
	return kv;
}

static void
hsm_time(struct sg_service *s, int64_t t0)
{
	double secs = (double)(sg_mono_us() - t0) / 1e6;
	size_t b;

	pthread_mutex_lock(&s->lock);
	for (b = 0; b < SG_HSM_BUCKETS; b++)
		if (secs <= sg_hsm_bucket_bounds[b])
			s->stats.hsm_bucket[b]++;
	s->stats.hsm_bucket[SG_HSM_BUCKETS]++;
	s->stats.hsm_count++;
	s->stats.hsm_sum += secs;
	pthread_mutex_unlock(&s->lock);
}

static const struct sg_tsa_config *
tsa_for(const struct sg_service *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->cfg->ntsa; i++)
		if (strcmp(s->cfg->tsa[i].key, key) == 0)
			return &s->cfg->tsa[i];
	return NULL;
}

struct signed_out {
	struct sg_sign_reply reply;
	uint8_t *cms;
	size_t cms_len;
	char *timestamp_note;
	int tsa_failed;                /* a required authority failed */
};

static void
signed_out_clear(struct signed_out *o)
{
	explicit_bzero(&o->reply, sizeof(o->reply));
	free(o->cms);
	free(o->timestamp_note);
	memset(o, 0, sizeof(*o));
}

/* Adds an RFC 3161 timestamp over the CMS signature value when the key
 * has an authority configured.  A failing authority fails the signature
 * when it is required; otherwise the signature goes out without one and
 * says so. */
static int
timestamp(struct sg_service *s, const struct sg_key_view *kv,
    struct signed_out *o, char *err, size_t errlen)
{
	const struct sg_tsa_config *t = tsa_for(s, kv->pk->name);
	uint8_t *token = NULL, *cms = NULL;
	size_t token_len = 0, cms_len = 0;
	char why[256];
	int64_t at = 0;
	int r;

	if (t == NULL || o->cms == NULL)
		return 0;
	r = sg_tsa_timestamp(t->url, o->reply.sig, o->reply.sig_len,
	    t->timeout_ms, &token, &token_len, why, sizeof(why));
	if (r == 0)
		r = sg_cms_add_timestamp(o->cms, o->cms_len, token, token_len,
		    &cms, &cms_len);
	if (r == 0) {
		char when[32];
		sg_tsa_token_time(token, token_len, &at);
		sg_time_rfc3339((time_t)at, when, sizeof(when));
		free(o->cms);
		o->cms = cms;
		o->cms_len = cms_len;
		if (asprintf(&o->timestamp_note, "added %s by %s", when,
		    t->url) < 0)
			o->timestamp_note = NULL;
		free(token);
		return 0;
	}
	free(token);
	if (r != SG_ERR_UNAVAILABLE)
		snprintf(why, sizeof(why), "%s", sg_strerror(r));
	sg_log_warn("key '%s': time-stamping authority %s failed: %s",
	    kv->pk->name, t->url, why);
	if (t->required) {
		snprintf(err, errlen, "the time-stamping authority failed: "
		    "%.200s", why);
		return SG_ERR_UNAVAILABLE;
	}
	if (asprintf(&o->timestamp_note, "skipped: %s", why) < 0)
		o->timestamp_note = NULL;
	return 0;
}

/*
 * Has the signer process sign request q with its key.  The signer checks
 * the evidence sent along (the statement and every recorded envelope)
 * against the policy it loaded itself, and for CMS builds the signed
 * attributes around the approved digest.
 */
static int
sign_request(struct sg_service *s, const struct sg_key_view *kv,
    const struct sg_request *q, const uint8_t *counted, struct signed_out *o,
    char *err, size_t errlen)
{
	struct sg_sign_msg msg;
	struct sg_sign_evidence ev;
	const char *envs[SG_EVIDENCE_MAX_ENVELOPES];
	size_t lens[SG_EVIDENCE_MAX_ENVELOPES], i, n, dlen;
	int64_t t0;
	int r, tsa_failed = 0;

	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	if (!kv->usable) {
		snprintf(err, errlen, "key '%.63s' cannot be used: %.150s",
		    kv->pk->name, kv->reason);
		return SG_ERR_FORBIDDEN;
	}
	if (q->napprovals > SG_EVIDENCE_MAX_ENVELOPES)
		return SG_ERR_TOO_LARGE;
	memset(&msg, 0, sizeof(msg));
	snprintf(msg.key, sizeof(msg.key), "%s", kv->pk->name);
	msg.digest_alg = sg_digest_from_name(q->digest_alg);
	if (sg_hex_decode(q->digest_hex, strlen(q->digest_hex), msg.data,
	    sizeof(msg.data), &dlen) != 0)
		return SG_ERR_INTERNAL;
	msg.data_len = dlen;
	/* Only the decisions that count: the signer refuses evidence that
	 * holds one by an officer the policy in force no longer allows. */
	for (i = 0, n = 0; i < q->napprovals; i++) {
		if (counted == NULL || !counted[i])
			continue;
		envs[n] = q->approvals[i].envelope;
		lens[n] = strlen(q->approvals[i].envelope);
		n++;
	}
	memset(&ev, 0, sizeof(ev));
	ev.statement = q->statement;
	ev.statement_len = strlen(q->statement);
	ev.envelopes = envs;
	ev.envelope_lens = lens;
	ev.n = n;
	ev.format = q->format;
	t0 = sg_mono_us();
	r = sg_signer_client_sign(s->signer, &msg, &ev, &o->reply, &o->cms,
	    &o->cms_len, err, errlen);
	hsm_time(s, t0);
	if (r == 0 && strcmp(q->format, "cms") == 0 && o->cms == NULL)
		r = SG_ERR_INTERNAL;
	if (r == 0 && (r = timestamp(s, kv, o, err, errlen)) != 0)
		tsa_failed = 1;
	if (r != 0) {
		stat_add(s, &s->stats.hsm_errors);
		sg_log_error("request %s: signing with key '%s' failed: %s "
		    "(%s)", q->id, kv->pk->name, sg_strerror(r), err);
		signed_out_clear(o);
		o->tsa_failed = tsa_failed;
	}
	return r;
}

static int
random_id(char out[33])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return SG_ERR_CRYPTO;
	sg_hex_encode(b, sizeof(b), out);
	return 0;
}

static int
build_statement(struct sg_service *s, const struct sg_key_view *kv,
    struct sg_request *q)
{
	struct sg_statement st;
	size_t len;

	memset(&st, 0, sizeof(st));
	snprintf(st.request, sizeof(st.request), "%s", q->id);
	snprintf(st.key, sizeof(st.key), "%s", q->key);
	snprintf(st.spki_sha256, sizeof(st.spki_sha256), "%s",
	    kv->spki_sha256);
	snprintf(st.digest_alg, sizeof(st.digest_alg), "%s", q->digest_alg);
	snprintf(st.digest_hex, sizeof(st.digest_hex), "%s", q->digest_hex);
	snprintf(st.format, sizeof(st.format), "%s", q->format);
	snprintf(st.requester, sizeof(st.requester), "%s", q->requester);
	snprintf(st.policy_name, sizeof(st.policy_name), "%s", q->policy_name);
	st.policy_version = q->policy_version;
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    q->policy_sha256);
	st.expires = q->expires_at;
	return sg_statement_build(&st, &q->statement, &len);
}

/* Appends an entry to the log inside a write job. */
static int
log_entry(struct sg_service *s, struct sg_txn *t, const struct sg_entry *e,
    uint64_t *ret_index)
{
	char *text = NULL;
	size_t len;
	uint64_t index;
	int r;

	if ((r = sg_entry_build(e, &text, &len)) != 0) {
		sg_log_error("log: cannot build a %d entry for request %s: %s",
		    (int)e->type, e->request, sg_strerror(r));
		return SG_ERR_INTERNAL;
	}
	r = sg_tlog_append(s->log, t, text, len, &index);
	free(text);
	if (r == 0 && ret_index != NULL)
		*ret_index = index;
	return r;
}

static void
entry_head(struct sg_entry *e, enum sg_entry_type type, int64_t now,
    const char *id)
{
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->time = now;
	snprintf(e->request, sizeof(e->request), "%s", id);
}

/*
 * The signature entry: self-contained evidence (the statement, every
 * decision envelope, the public key) next to the signature, so that it can
 * be checked offline with nothing but the policy file.
 */
static int
log_signature(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, const uint8_t *counted,
    const struct sg_key_view *kv, const uint8_t *sig, size_t sig_len,
    const uint8_t *cms, size_t cms_len, int64_t now, uint64_t *ret_index)
{
	struct sg_entry e;
	unsigned char *der = NULL;
	const char *alg;
	size_t i, n;
	int len, r;

	if (q->napprovals > SG_ENTRY_MAX_APPROVALS)
		return SG_ERR_TOO_LARGE;
	if ((len = i2d_PUBKEY(kv->pub, &der)) <= 0)
		return SG_ERR_CRYPTO;
	entry_head(&e, SG_ENTRY_SIGNATURE, now, q->id);
	e.statement = q->statement;
	e.statement_len = strlen(q->statement);
	/* The evidence that counted, as the signer checked it. */
	for (i = 0, n = 0; i < q->napprovals; i++) {
		if (counted == NULL || !counted[i])
			continue;
		e.approvals[n] = q->approvals[i].envelope;
		e.approval_lens[n] = strlen(q->approvals[i].envelope);
		n++;
	}
	e.napprovals = n;
	e.public_key = der;
	e.public_key_len = (size_t)len;
	alg = sg_scheme_name(kv->pk->alg, kv->pk->scheme);
	snprintf(e.algorithm, sizeof(e.algorithm), "%s", alg ? alg : "");
	e.signature = (uint8_t *)sig;
	e.signature_len = sig_len;
	if (cms != NULL) {
		e.has_cms = 1;
		sg_sha256(cms, cms_len, e.cms_sha256);
	}
	snprintf(e.hsm_serial, sizeof(e.hsm_serial), "%s", kv->token.serial);
	snprintf(e.hsm_country, sizeof(e.hsm_country), "%s",
	    kv->hsm != NULL ? kv->hsm->country : "");
	r = log_entry(s, t, &e, ret_index);
	OPENSSL_free(der);
	return r;
}

struct create_job {
	struct sg_service *s;
	const struct sg_new_request *nr;
	struct sg_request *q;          /* to insert */
	const struct sg_key_view *kv;
	struct sg_request *out;        /* what was stored, or the original */
	int existing;
	struct sg_fault *f;
};

/* Looks up an idempotent original inside a transaction. */
static int
find_original(struct sg_txn *t, const struct sg_new_request *nr,
    struct sg_request **ret, struct sg_fault *f)
{
	char id[33], body_sha[65];
	int r;

	r = sg_store_find_idempotent(t, nr->requester, nr->idem_key, id,
	    body_sha);
	if (r != 0)
		return r;
	if (strcmp(body_sha, nr->body_sha256) != 0) {
		fault(f, "Idempotency-Key", "this Idempotency-Key was used "
		    "with a different request body");
		return SG_ERR_CONFLICT;
	}
	return sg_store_get_request(t, id, ret);
}

/* Stored results are answered only under a signed checkpoint: if entries
 * wait for one (an earlier one could not be signed), it is signed now. */
static int
log_covered(struct sg_service *s, const char *id, struct sg_fault *f)
{
	if (sg_tlog_sync(s->log) == 0)
		return 0;
	fault(f, NULL, "request %s is stored, but the transparency log has "
	    "not signed a checkpoint covering it yet; retry later", id);
	f->recorded = 1;
	return SG_ERR_UNAVAILABLE;
}

/* A write that was committed, but not under a signed checkpoint. */
static void
recorded_fault(struct sg_fault *f, const char *what, const char *id,
    const char *then)
{
	fault(f, NULL, "%s %s was recorded, but the transparency log has not "
	    "signed a checkpoint covering it yet; %s", what, id, then);
	f->recorded = 1;
}

static int
job_create(struct sg_txn *t, void *arg)
{
	struct create_job *cj = arg;
	struct sg_service *s = cj->s;
	struct sg_request *q = cj->q;
	struct sg_entry e;
	uint64_t index;
	int r;

	if (cj->nr->idem_key != NULL) {
		r = find_original(t, cj->nr, &cj->out, cj->f);
		if (r == 0) {
			cj->existing = 1;
			return 0;
		}
		if (r != SG_ERR_NOT_FOUND)
			return r;
	}
	if (q->signature == NULL) {
		/* Every pending request is work for the officers: cap it. */
		uint64_t n;
		if ((r = sg_store_count_pending(t, q->requester, &n)) != 0)
			return r;
		if (n >= s->cfg->max_pending) {
			fault(cj->f, NULL, "'%s' already has %llu pending "
			    "requests, the most allowed", q->requester,
			    (unsigned long long)n);
			return SG_ERR_RATE_LIMITED;
		}
	}
	if ((r = sg_store_insert_request(t, q, cj->nr->idem_key,
	    cj->nr->body_sha256)) != 0)
		return r;
	entry_head(&e, SG_ENTRY_CREATED, q->created_at, q->id);
	e.statement = q->statement;
	e.statement_len = strlen(q->statement);
	e.artifact_json = q->artifact_json;
	e.artifact_len = strlen(q->artifact_json);
	if ((r = log_entry(s, t, &e, NULL)) != 0)
		return r;
	if (q->signature != NULL) {
		if ((r = log_signature(s, t, q, NULL, cj->kv, q->signature,
		    q->signature_len, q->cms, q->cms_len, q->signed_at,
		    &index)) != 0)
			return r;
		if ((r = sg_store_set_log_index(t, q->id, index)) != 0)
			return r;
	}
	return sg_store_get_request(t, q->id, &cj->out);
}

static int
create_locked(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f)
{
	const struct sg_key_view *kv;
	const struct sg_policy_key *pk;
	struct sg_request q;
	struct signed_out *so = NULL;
	struct create_job cj;
	struct sg_txn *t = NULL;
	int64_t now = (int64_t)time(NULL);
	int r, kept = 0;

	memset(&q, 0, sizeof(q));
	memset(&cj, 0, sizeof(cj));
	*ret_existing = 0;
	if ((kv = key_locked(s, nr->key)) == NULL) {
		fault(f, "key", "no key named '%s'", nr->key);
		return SG_ERR_NOT_FOUND;
	}
	pk = kv->pk;
	if (!sg_policy_may_request(s->policy, pk, nr->requester)) {
		fault(f, "key", "'%s' may not request signatures with key "
		    "'%s'", nr->requester, pk->name);
		return SG_ERR_FORBIDDEN;
	}
	if (!kv->usable) {
		fault(f, "key", "key '%s' cannot be used: %s", pk->name,
		    kv->reason);
		return SG_ERR_FORBIDDEN;
	}
	if (strcmp(nr->format, "cms") == 0 ? !(pk->formats & SG_FORMAT_CMS) :
	    !(pk->formats & SG_FORMAT_RAW)) {
		fault(f, "format", "key '%s' does not allow format '%s'",
		    pk->name, nr->format);
		return SG_ERR_INVALID;
	}
	if (strcmp(nr->format, "cms") == 0 && kv->certificate_pem == NULL) {
		fault(f, "format", "key '%s' has no certificate for CMS",
		    pk->name);
		return SG_ERR_INVALID;
	}
	if (nr->digest_len != sg_digest_len(nr->digest_alg)) {
		fault(f, "digest.value", "wrong length for %s",
		    sg_digest_name(nr->digest_alg));
		return SG_ERR_INVALID;
	}

	/* A retry must not cost a signature: look for the original first. */
	if (nr->idem_key != NULL) {
		if ((r = sg_store_read_begin(s->store, &t)) != 0) {
			fault(f, NULL, "the request store cannot be read");
			return SG_ERR_UNAVAILABLE;
		}
		r = find_original(t, nr, &cj.out, f);
		sg_store_read_end(t);
		if (r == 0 && (r = log_covered(s, cj.out->id, f)) != 0) {
			sg_request_free(cj.out);
			return r;
		}
		if (r == 0) {
			*ret_existing = 1;
			*ret = cj.out;
			return 0;
		}
		if (r != SG_ERR_NOT_FOUND)
			return r;
	}

	if ((r = random_id(q.id)) != 0)
		goto out;
	snprintf(q.key, sizeof(q.key), "%s", pk->name);
	snprintf(q.digest_alg, sizeof(q.digest_alg), "%s",
	    sg_digest_name(nr->digest_alg));
	sg_hex_encode(nr->digest, nr->digest_len, q.digest_hex);
	snprintf(q.format, sizeof(q.format), "%s", nr->format);
	q.artifact_json = (char *)nr->artifact_json;
	snprintf(q.requester, sizeof(q.requester), "%s", nr->requester);
	q.created_at = now;
	q.expires_at = now + (int64_t)pk->lifetime;
	snprintf(q.policy_name, sizeof(q.policy_name), "%s",
	    sg_policy_name(s->policy));
	q.policy_version = sg_policy_version(s->policy);
	snprintf(q.policy_sha256, sizeof(q.policy_sha256), "%s",
	    sg_policy_sha256_hex(s->policy));
	snprintf(q.spki_sha256, sizeof(q.spki_sha256), "%s", kv->spki_sha256);
	if ((r = build_statement(s, kv, &q)) != 0) {
		fault(f, NULL, "cannot build the statement");
		goto out;
	}

	if (pk->nterms == 0) {
		/* Nothing to wait for: sign now; the signature is released
		 * only once it is committed together with its log entry. */
		char why[SG_SIGNER_ERR_MAX];
		if ((so = calloc(1, sizeof(*so))) == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
		if ((r = sign_request(s, kv, &q, NULL, so, why,
		    sizeof(why))) != 0) {
			fault(f, NULL, "the request could not be signed: %s",
			    why[0] ? why : sg_strerror(r));
			r = SG_ERR_UNAVAILABLE;
			goto out;
		}
		snprintf(q.state, sizeof(q.state), "signed");
		q.signature = so->reply.sig;
		q.signature_len = so->reply.sig_len;
		q.cms = so->cms;
		q.cms_len = so->cms_len;
		q.timestamp_note = so->timestamp_note;
		q.signed_at = now;
	} else
		snprintf(q.state, sizeof(q.state), "pending");

	cj.s = s;
	cj.nr = nr;
	cj.q = &q;
	cj.kv = kv;
	cj.f = f;
	r = sg_store_write_kept(s->store, job_create, &cj, &kept);
	if ((r == SG_ERR_CONFLICT || r == SG_ERR_RATE_LIMITED) &&
	    f->detail[0] != '\0')
		goto out;
	if (r != 0 && kept) {
		recorded_fault(f, "request", cj.out != NULL ? cj.out->id :
		    q.id, "retry with the same Idempotency-Key");
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if (r != 0) {
		fault(f, NULL, "the request could not be stored and logged");
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	*ret_existing = cj.existing;
	if (!cj.existing) {
		stat_add(s, &s->stats.requests_created);
		if (pk->nterms == 0)
			count_signature(s, kv);
		sg_log_info("request %s created by %s for key %s (%s)", q.id,
		    q.requester, q.key, q.state);
	}
	*ret = cj.out;
	cj.out = NULL;
	r = 0;
out:
	if (so != NULL) {
		signed_out_clear(so);
		free(so);
	}
	free(q.statement);
	sg_request_free(cj.out);
	return r;
}

int
sg_service_get(struct sg_service *s, const char *id, struct sg_request **ret)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_store_get_request(t, id, ret);
	sg_store_read_end(t);
	return r;
}

int
sg_service_list(struct sg_service *s, const char *state, const char *key,
    int64_t before_seq, size_t limit, struct sg_request ***ret,
    size_t *ret_n)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_store_list(t, state, key, before_seq, limit, ret, ret_n);
	sg_store_read_end(t);
	return r;
}

/* The policy a request was made under (the current one or a stored one).
 * *ret_owned is set when the caller must free it. */
static int
request_policy(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, struct sg_policy **ret, int *ret_owned)
{
	char *text = NULL, err[256];
	int r;

	*ret_owned = 0;
	if (strcmp(q->policy_sha256, sg_policy_sha256_hex(s->policy)) == 0) {
		*ret = s->policy;
		return 0;
	}
	if ((r = sg_store_get_policy(t, q->policy_sha256, &text)) != 0)
		return r;
	r = sg_policy_parse("stored policy", text, strlen(text), ret, err,
	    sizeof(err));
	free(text);
	if (r == 0)
		*ret_owned = 1;
	return r;
}

/*
 * The quorum of request q under its own policy p, counting only decisions
 * whose officer may approve under p *and* under the policy in force (s's,
 * with the read lock held): an officer revoked by a reload stops counting
 * at once, for requests made before it too.  counted[i] (optional, one per
 * recorded decision, at most SG_SERVICE_MAX_DECISIONS) says which did.
 */
static void
evaluate(const struct sg_service *s, const struct sg_policy *p,
    const struct sg_policy_key *pk, const struct sg_request *q,
    struct sg_quorum_result *res, uint8_t *counted)
{
	struct sg_decision d[SG_SERVICE_MAX_DECISIONS];
	size_t i, n = 0;

	for (i = 0; i < q->napprovals && n < SG_SERVICE_MAX_DECISIONS; i++) {
		d[n].officer = q->approvals[i].officer;
		d[n].approve = q->approvals[i].approve;
		n++;
	}
	if (counted != NULL)
		memset(counted, 0, SG_SERVICE_MAX_DECISIONS);
	sg_policy_evaluate_now(p, pk, s->policy, q->requester, d, n, res,
	    counted);
}

static int
quorum_view_in(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, struct sg_request_quorum *ret)
{
	struct sg_policy *p;
	const struct sg_policy_key *pk;
	size_t i;
	int owned, r;

	memset(ret, 0, sizeof(*ret));
	if ((r = request_policy(s, t, q, &p, &owned)) != 0)
		return r;
	if ((pk = sg_policy_key(p, q->key)) == NULL)
		r = SG_ERR_NOT_FOUND;
	else {
		evaluate(s, p, pk, q, &ret->res, ret->counted);
		for (i = 0; i < pk->nterms && i < SG_POLICY_MAX_TERMS; i++)
			ret->terms[i] = pk->terms[i];
		ret->nterms = i;
	}
	snprintf(ret->in_force, sizeof(ret->in_force), "%s@%llu",
	    sg_policy_name(s->policy),
	    (unsigned long long)sg_policy_version(s->policy));
	if (owned)
		sg_policy_free(p);
	return r;
}

static int
quorum_in(struct sg_service *s, struct sg_txn *t, const struct sg_request *q,
    struct sg_quorum_result *ret)
{
	struct sg_request_quorum v;
	int r;

	if ((r = quorum_view_in(s, t, q, &v)) == 0)
		*ret = v.res;
	return r;
}

static int
quorum_view_locked(struct sg_service *s, const struct sg_request *q,
    struct sg_request_quorum *ret)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = quorum_view_in(s, t, q, ret);
	sg_store_read_end(t);
	return r;
}

static int
quorum_locked(struct sg_service *s, const struct sg_request *q,
    struct sg_quorum_result *ret)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = quorum_in(s, t, q, ret);
	sg_store_read_end(t);
	return r;
}

static int
claim(struct sg_service *s, const char *id)
{
	size_t i;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nclaims; i++)
		if (strcmp(s->claims[i], id) == 0)
			goto out;
	if (s->nclaims == MAX_CLAIMS)
		goto out;
	snprintf(s->claims[s->nclaims++], 33, "%s", id);
	r = 1;
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void
unclaim(struct sg_service *s, const char *id)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nclaims; i++) {
		if (strcmp(s->claims[i], id) == 0) {
			memcpy(s->claims[i], s->claims[--s->nclaims], 33);
			break;
		}
	}
	pthread_cond_broadcast(&s->unclaimed);
	pthread_mutex_unlock(&s->lock);
}

/* Remembers a request whose quorum holds but whose signing failed, so the
 * housekeeping thread tries it first however many others are pending. */
static void
retry_later(struct sg_service *s, const char *id)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < s->nretry; i++)
		if (strcmp(s->retry[i], id) == 0)
			break;
	if (i == s->nretry && s->nretry < MAX_CLAIMS)
		snprintf(s->retry[s->nretry++], 33, "%s", id);
	pthread_mutex_unlock(&s->lock);
}

/* Waits (bounded) until nobody is signing request id. */
static void
wait_unclaimed(struct sg_service *s, const char *id, int seconds)
{
	struct timespec until;
	size_t i;
	int busy;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		for (busy = 0, i = 0; i < s->nclaims; i++)
			if (strcmp(s->claims[i], id) == 0)
				busy = 1;
		if (!busy || pthread_cond_timedwait(&s->unclaimed, &s->lock,
		    &until) != 0)
			break;
	}
	pthread_mutex_unlock(&s->lock);
}

struct finish_job {
	struct sg_service *s;
	const char *id;
	const char *state;             /* expired | failed | rejected */
	const char *reason;
};

/* pending → a final state without a signature, with its log entry. */
static int
finish_in(struct sg_service *s, struct sg_txn *t, const char *id,
    const char *state, const char *reason)
{
	struct sg_entry e;
	int r;

	if ((r = sg_store_finish(t, id, state, reason)) != 0)
		return r;
	if (strcmp(state, "expired") == 0) {
		entry_head(&e, SG_ENTRY_EXPIRED, (int64_t)time(NULL), id);
		return log_entry(s, t, &e, NULL);
	}
	if (strcmp(state, "failed") == 0) {
		entry_head(&e, SG_ENTRY_FAILED, (int64_t)time(NULL), id);
		e.reason = (char *)(reason ? reason : "unknown");
		e.reason_len = strlen(e.reason);
		return log_entry(s, t, &e, NULL);
	}
	/* A veto: the decision entry that caused it is already logged. */
	return 0;
}

static int
job_finish(struct sg_txn *t, void *arg)
{
	struct finish_job *fj = arg;

	return finish_in(fj->s, t, fj->id, fj->state, fj->reason);
}

struct signed_job {
	struct sg_service *s;
	const char *id;
	const struct sg_key_view *kv;
	const struct signed_out *o;
};

/* Records a signature: only if the request is still pending, unexpired,
 * and its quorum (re-read inside this transaction) still holds. */
static int
job_signed(struct sg_txn *t, void *arg)
{
	struct signed_job *sj = arg;
	struct sg_request *q = NULL;
	struct sg_request_quorum v;
	int64_t now = (int64_t)time(NULL);
	uint64_t index;
	int r;

	if ((r = sg_store_get_request(t, sj->id, &q)) != 0)
		return r;
	if (strcmp(q->state, "pending") != 0 || now >= q->expires_at) {
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if ((r = quorum_view_in(sj->s, t, q, &v)) != 0)
		goto out;
	if (v.res.state != SG_QUORUM_MET) {
		r = SG_ERR_FORBIDDEN;
		goto out;
	}
	if ((r = sg_store_set_signed(t, sj->id, sj->o->reply.sig,
	    sj->o->reply.sig_len, sj->o->cms, sj->o->cms_len, now,
	    sj->o->timestamp_note)) != 0)
		goto out;
	if ((r = log_signature(sj->s, t, q, v.counted, sj->kv,
	    sj->o->reply.sig,
	    sj->o->reply.sig_len, sj->o->cms, sj->o->cms_len, now,
	    &index)) != 0)
		goto out;
	r = sg_store_set_log_index(t, sj->id, index);
out:
	sg_request_free(q);
	return r;
}

/*
 * Signs a pending request whose quorum holds.  Returns 0 when the request
 * is signed (by us or by someone else meanwhile), or an error; the request
 * then stays pending.
 */
static int
sign_pending(struct sg_service *s, const char *id, int *ret_kept)
{
	struct sg_request *q = NULL;
	struct sg_request_quorum v;
	struct signed_out *so = NULL;
	const struct sg_key_view *kv;
	struct signed_job sj;
	char why[SG_SIGNER_ERR_MAX];
	int r, kept = 0;

	if (ret_kept != NULL)
		*ret_kept = 0;
	if (!claim(s, id))
		return SG_ERR_CONFLICT;
	if ((r = sg_service_get(s, id, &q)) != 0)
		goto out;
	if (strcmp(q->state, "pending") != 0) {
		r = strcmp(q->state, "signed") == 0 ? 0 : SG_ERR_CONFLICT;
		goto out;
	}
	if ((int64_t)time(NULL) >= q->expires_at) {
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if ((r = quorum_view_locked(s, q, &v)) != 0)
		goto out;
	if (v.res.state != SG_QUORUM_MET) {
		r = SG_ERR_FORBIDDEN;
		goto out;
	}
	if ((kv = key_locked(s, q->key)) == NULL ||
	    strcmp(kv->spki_sha256, q->spki_sha256) != 0) {
		/* The key named by the statement is gone (rotated or
		 * removed): never sign with another one. */
		struct finish_job fj = { s, id, "failed", why };
		size_t i;

		snprintf(why, sizeof(why), "key '%s' sha256:%s named in the "
		    "statement is no longer in service", q->key,
		    q->spki_sha256);
		for (i = 0; kv != NULL && i < kv->nretired; i++) {
			char at[32];
			if (strcmp(kv->retired[i].spki_sha256,
			    q->spki_sha256) != 0)
				continue;
			sg_time_rfc3339((time_t)kv->retired[i].rk->retired_at,
			    at, sizeof(at));
			snprintf(why, sizeof(why), "key '%s' was rotated at "
			    "%s; the statement names the retired key "
			    "sha256:%s, which no longer signs", q->key, at,
			    q->spki_sha256);
		}
		if (sg_store_write(s->store, job_finish, &fj) == 0)
			notify(s, id);
		sg_log_warn("request %s failed: %s", id, why);
		r = SG_ERR_NO_KEY;
		goto out;
	}
	if ((so = calloc(1, sizeof(*so))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((r = sign_request(s, kv, q, v.counted, so, why,
	    sizeof(why))) != 0) {
		/* A refusal by the signer is final (the evidence will not
		 * get better), and so is a required time-stamping authority
		 * that failed: the request fails clearly rather than hang.
		 * HSM trouble is retried until the request expires. */
		if (r == SG_ERR_VERIFY || r == SG_ERR_FORBIDDEN ||
		    so->tsa_failed) {
			struct finish_job fj = { s, id, "failed", why };
			if (sg_store_write(s->store, job_finish, &fj) == 0)
				notify(s, id);
		}
		goto out;
	}
	sj.s = s;
	sj.id = id;
	sj.kv = kv;
	sj.o = so;
	if ((r = sg_store_write_kept(s->store, job_signed, &sj, &kept)) != 0) {
		/* Kept: signed and stored; answered once a checkpoint covers
		 * it (the signature's proof is served only then). */
		if (kept && ret_kept != NULL)
			*ret_kept = 1;
		goto out;
	}
	count_signature(s, kv);
	sg_log_info("request %s signed with key %s", id, q->key);
	notify(s, id);
out:
	unclaim(s, id);
	if (so != NULL) {
		signed_out_clear(so);
		free(so);
	}
	sg_request_free(q);
	return r;
}

struct decide_job {
	struct sg_service *s;
	const char *id;
	const char *principal;
	const struct sg_envelope *env;
	const char *envelope_json;
	int approve;                   /* set by job_decide */
	struct sg_fault *f;
	int expired;                   /* the request was found expired */
	int sign_now;
};

static int
job_decide(struct sg_txn *t, void *arg)
{
	struct decide_job *dj = arg;
	struct sg_service *s = dj->s;
	const struct sg_envelope *env = dj->env;
	struct sg_fault *f = dj->f;
	struct sg_request *q = NULL;
	struct sg_policy *p = NULL;
	const struct sg_policy_key *pk;
	const struct sg_principal *officer;
	struct sg_approval_fault af;
	struct sg_quorum_result res;
	struct sg_entry e;
	int64_t now = (int64_t)time(NULL);
	int owned = 0, r;

	if ((r = sg_store_get_request(t, dj->id, &q)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			fault(f, NULL, "no request with id '%s'", dj->id);
		goto out;
	}
	if (strcmp(q->state, "pending") != 0) {
		fault(f, NULL, "request %s is %s, not pending", dj->id,
		    q->state);
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if (now >= q->expires_at) {
		/* Record the expiry (this job then succeeds) and refuse. */
		fault(f, NULL, "request %s has expired", dj->id);
		dj->expired = 1;
		r = finish_in(s, t, dj->id, "expired", NULL);
		goto out;
	}
	if ((r = request_policy(s, t, q, &p, &owned)) != 0) {
		fault(f, NULL, "the policy of request %s is not available",
		    dj->id);
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if ((pk = sg_policy_key(p, q->key)) == NULL) {
		fault(f, NULL, "key '%s' is not in the request's policy",
		    q->key);
		r = SG_ERR_CONFLICT;
		goto out;
	}
	/* The acceptance rule the signer process and verifiers apply too,
	 * under the request's policy and the policy in force (a reload may
	 * have revoked an officer). */
	if ((r = sg_approval_accept(p, pk, s->policy, q->requester,
	    q->statement, strlen(q->statement), env, &officer, &dj->approve,
	    &af)) != 0) {
		fault(f, af.field, "%s", af.why);
		goto out;
	}
	r = sg_store_add_approval(t, dj->id, dj->principal, dj->approve, now,
	    dj->envelope_json);
	if (r == SG_ERR_CONFLICT) {
		fault(f, NULL, "'%s' has already decided on request %s",
		    dj->principal, dj->id);
		goto out;
	}
	if (r != 0)
		goto out;
	entry_head(&e, SG_ENTRY_DECISION, now, dj->id);
	snprintf(e.officer, sizeof(e.officer), "%s", dj->principal);
	e.approve = dj->approve;
	e.envelope = (char *)dj->envelope_json;
	e.envelope_len = strlen(dj->envelope_json);
	if ((r = log_entry(s, t, &e, NULL)) != 0)
		goto out;
	sg_request_free(q);
	q = NULL;
	if ((r = sg_store_get_request(t, dj->id, &q)) != 0)
		goto out;
	evaluate(s, p, pk, q, &res, NULL);
	if (res.state == SG_QUORUM_VETOED)
		r = finish_in(s, t, dj->id, "rejected", NULL);
	else if (res.state == SG_QUORUM_MET)
		dj->sign_now = 1;
out:
	if (owned)
		sg_policy_free(p);
	sg_request_free(q);
	return r;
}

static int
decide_locked(struct sg_service *s, const char *id, const char *principal,
    const char *envelope_json, size_t len, struct sg_request **ret,
    struct sg_fault *f)
{
	struct sg_envelope env;
	struct decide_job dj;
	struct sg_request *q = NULL;
	char err[256];
	int r, kept = 0;

	memset(&env, 0, sizeof(env));
	if ((r = sg_envelope_parse(envelope_json, len, &env, err,
	    sizeof(err))) != 0) {
		/* The parser's messages read "field: reason". */
		const char *colon = strchr(err, ':');
		fault(f, "", "%s", err);
		if (colon != NULL)
			snprintf(f->field, sizeof(f->field), "%.*s",
			    (int)(colon - err), err);
		return SG_ERR_INVALID;
	}
	if (strcmp(env.keyid, principal) != 0) {
		fault(f, "signatures[0].keyid", "'%s' is not the principal of "
		    "this connection ('%s')", env.keyid, principal);
		r = SG_ERR_FORBIDDEN;
		goto out;
	}

	memset(&dj, 0, sizeof(dj));
	dj.s = s;
	dj.id = id;
	dj.principal = principal;
	dj.env = &env;
	dj.envelope_json = envelope_json;
	dj.f = f;
	r = sg_store_write_kept(s->store, job_decide, &dj, &kept);
	if (r != 0 && kept) {
		recorded_fault(f, "the decision on request", id,
		    "do not send it again");
		/* The quorum may hold: the housekeeping thread signs. */
		if (dj.sign_now)
			retry_later(s, id);
		notify(s, id);
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if (r == 0 && dj.expired) {
		stat_add(s, &s->stats.expired);
		notify(s, id);
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if (r != 0) {
		if (r == SG_ERR_UNAVAILABLE || r == SG_ERR_IO) {
			fault(f, NULL, "the decision could not be stored and "
			    "logged");
			r = SG_ERR_UNAVAILABLE;
		}
		goto out;
	}
	stat_add(s, dj.approve ? &s->stats.approvals : &s->stats.rejections);
	sg_log_info("request %s: %s by %s", id, dj.approve ? "approved" :
	    "rejected", principal);
	notify(s, id);
	if (dj.sign_now) {
		r = sign_pending(s, id, &kept);
		if (r != 0 && kept) {
			fault(f, NULL, "the decision was recorded and request "
			    "%s signed, but the transparency log has not "
			    "signed a checkpoint covering the signature yet; "
			    "read the request again shortly", id);
			f->recorded = 1;
			notify(s, id);
			r = SG_ERR_UNAVAILABLE;
			goto out;
		}
		/* The housekeeping thread may be signing it right now: the
		 * officer whose approval completed the quorum should see the
		 * result, so wait for that signer (bounded). */
		if (r == SG_ERR_CONFLICT)
			wait_unclaimed(s, id, 30);
		if (r != 0 && r != SG_ERR_CONFLICT) {
			sg_log_warn("request %s: quorum met but not signed "
			    "yet (%s); will retry", id, sg_strerror(r));
			retry_later(s, id);
		}
	}
	if ((r = sg_service_get(s, id, &q)) != 0)
		goto out;
	*ret = q;
	q = NULL;
	r = 0;
out:
	sg_envelope_clear(&env);
	sg_request_free(q);
	return r;
}

/* A cancel reason: 1 to SG_CANCEL_REASON_MAX bytes of text as officers
 * read it (sg_text.h: it is logged, shown in terminals and stored). */
static int
valid_reason(const char *reason, struct sg_fault *f)
{
	struct sg_text_fault tf;
	size_t n = reason != NULL ? strlen(reason) : 0;
	char why[128];

	if (n == 0 || n > SG_CANCEL_REASON_MAX) {
		fault(f, "reason", "reason: must be 1 to %d bytes",
		    SG_CANCEL_REASON_MAX);
		return 0;
	}
	if (sg_text_ok(reason, n, &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		fault(f, "reason", "reason: %s", why);
		return 0;
	}
	return 1;
}

struct cancel_job {
	struct sg_service *s;
	const char *id;
	const char *principal;
	const char *reason;
	struct sg_fault *f;
	int expired;                   /* the request was found expired */
};

/* Who may cancel: the requester, or an officer who may approve the
 * request under its policy and under the one in force. */
static int
may_cancel(struct sg_service *s, struct sg_txn *t, const struct sg_request *q,
    const char *principal, struct sg_fault *f)
{
	struct sg_policy *p = NULL;
	const struct sg_policy_key *pk;
	int owned = 0, r, ok;

	if (strcmp(principal, q->requester) == 0)
		return 0;
	if ((r = request_policy(s, t, q, &p, &owned)) != 0) {
		fault(f, NULL, "the policy of request %s is not available",
		    q->id);
		return SG_ERR_UNAVAILABLE;
	}
	ok = (pk = sg_policy_key(p, q->key)) != NULL &&
	    sg_policy_may_approve_now(p, pk, s->policy, q->requester,
	    principal);
	if (owned)
		sg_policy_free(p);
	if (ok)
		return 0;
	fault(f, NULL, "'%s' may not cancel request %s: only its requester "
	    "('%s') or an officer who may approve it can", principal, q->id,
	    q->requester);
	return SG_ERR_FORBIDDEN;
}

static int
job_cancel(struct sg_txn *t, void *arg)
{
	struct cancel_job *cj = arg;
	struct sg_service *s = cj->s;
	struct sg_request *q = NULL;
	struct sg_entry e;
	int64_t now = (int64_t)time(NULL);
	char at[32];
	int r;

	if ((r = sg_store_get_request(t, cj->id, &q)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			fault(cj->f, NULL, "no request with id '%s'", cj->id);
		return r;
	}
	if (strcmp(q->state, "cancelled") == 0) {
		sg_time_rfc3339((time_t)q->cancelled_at, at, sizeof(at));
		fault(cj->f, NULL, "request %s is cancelled, not pending "
		    "(cancelled by %s at %s: %.256s)", cj->id, q->cancelled_by,
		    at, q->cancel_reason != NULL ? q->cancel_reason : "");
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if (strcmp(q->state, "pending") != 0) {
		fault(cj->f, NULL, "request %s is %s, not pending", cj->id,
		    q->state);
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if ((r = may_cancel(s, t, q, cj->principal, cj->f)) != 0)
		goto out;
	if (now >= q->expires_at) {
		/* Record the expiry (this job then succeeds) and refuse. */
		fault(cj->f, NULL, "request %s is expired, not pending",
		    cj->id);
		cj->expired = 1;
		r = finish_in(s, t, cj->id, "expired", NULL);
		goto out;
	}
	if ((r = sg_store_cancel(t, cj->id, cj->principal, cj->reason,
	    now)) != 0)
		goto out;
	entry_head(&e, SG_ENTRY_CANCELLED, now, cj->id);
	snprintf(e.by, sizeof(e.by), "%s", cj->principal);
	e.reason = (char *)cj->reason;
	e.reason_len = strlen(cj->reason);
	r = log_entry(s, t, &e, NULL);
out:
	sg_request_free(q);
	return r;
}

static int
cancel_locked(struct sg_service *s, const char *id, const char *principal,
    const char *reason, struct sg_request **ret, struct sg_fault *f)
{
	struct cancel_job cj;
	int r;

	if (!valid_reason(reason, f))
		return SG_ERR_INVALID;
	memset(&cj, 0, sizeof(cj));
	cj.s = s;
	cj.id = id;
	cj.principal = principal;
	cj.reason = reason;
	cj.f = f;
	r = sg_store_write(s->store, job_cancel, &cj);
	if (r == 0 && cj.expired) {
		stat_add(s, &s->stats.expired);
		notify(s, id);
		return SG_ERR_CONFLICT;
	}
	if (r != 0) {
		if (r == SG_ERR_UNAVAILABLE || r == SG_ERR_IO) {
			fault(f, NULL, "the cancellation could not be stored "
			    "and logged");
			r = SG_ERR_UNAVAILABLE;
		}
		return r;
	}
	sg_log_info("request %s cancelled by %s", id, principal);
	/* Long-polls on the request wake up and see the new state. */
	notify(s, id);
	return sg_service_get(s, id, ret);
}

struct expire_job {
	struct sg_service *s;
	char (*ids)[33];
	size_t n;
};

static int
job_expire(struct sg_txn *t, void *arg)
{
	struct expire_job *ej = arg;
	size_t i;
	int r;

	if ((r = sg_store_due_expiry(t, (int64_t)time(NULL), SWEEP_BATCH,
	    ej->ids, &ej->n)) != 0)
		return r;
	for (i = 0; i < ej->n; i++)
		if ((r = finish_in(ej->s, t, ej->ids[i], "expired", NULL)) != 0)
			return r;
	return 0;
}

/* Whether a request whose signing failed is still worth retrying. */
static int
sign_pending_retryable(struct sg_service *s, const char *id)
{
	struct sg_request *q = NULL;
	int yes;

	if (sg_service_get(s, id, &q) != 0)
		return 0;
	yes = strcmp(q->state, "pending") == 0 &&
	    (int64_t)time(NULL) < q->expires_at;
	sg_request_free(q);
	return yes;
}

/* Expires overdue requests and retries signing those whose quorum holds. */
static void
sweep(struct sg_service *s)
{
	char ids[SWEEP_BATCH][33];
	struct expire_job ej = { s, ids, 0 };
	struct sg_tlog_status ls;
	struct sg_txn *t;
	size_t i, n = 0;
	int64_t last = 0;

	/* Entries an earlier checkpoint could not cover (the signer or the
	 * HSM was away): covered now, so their clients' retries succeed.
	 * Not once the signer has refused the log: that needs an operator. */
	sg_tlog_status(s->log, &ls);
	if (ls.uncovered && ls.refusal[0] == '\0' && sg_tlog_sync(s->log) == 0)
		sg_log_info("log: a checkpoint covers the %llu entries again",
		    (unsigned long long)ls.size);

	if (sg_store_write(s->store, job_expire, &ej) == 0) {
		for (i = 0; i < ej.n; i++) {
			stat_add(s, &s->stats.expired);
			sg_log_info("request %s expired", ids[i]);
			notify(s, ids[i]);
		}
	}

	/* First the requests known to wait only for their signature. */
	pthread_mutex_lock(&s->lock);
	n = s->nretry < SWEEP_BATCH ? s->nretry : SWEEP_BATCH;
	memcpy(ids, s->retry[s->nretry - n], n * sizeof(ids[0]));
	s->nretry -= n;
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n; i++)
		if (sign_pending(s, ids[i], NULL) != 0 &&
		    sign_pending_retryable(s, ids[i]))
			retry_later(s, ids[i]);

	/* Then a page of the pending ones, going on from the last sweep's
	 * page so that none is starved by older ones. */
	if (sg_store_read_begin(s->store, &t) != 0)
		return;
	if (sg_store_pending_after(t, s->sweep_after, SWEEP_BATCH, ids, &n,
	    &last) != 0)
		n = 0;
	sg_store_read_end(t);
	s->sweep_after = n < SWEEP_BATCH ? 0 : last;
	for (i = 0; i < n; i++) {
		struct sg_request *q = NULL;
		struct sg_quorum_result res;
		if (sg_service_get(s, ids[i], &q) != 0)
			continue;
		if (quorum_locked(s, q, &res) == 0 &&
		    res.state == SG_QUORUM_MET)
			sign_pending(s, ids[i], NULL);
		sg_request_free(q);
	}
}

static void *
sweeper_main(void *arg)
{
	struct sg_service *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->stop_lock);
	while (!s->stopping) {
		pthread_mutex_unlock(&s->stop_lock);
		pthread_rwlock_rdlock(&s->plock);
		sweep(s);
		pthread_rwlock_unlock(&s->plock);
		pthread_mutex_lock(&s->stop_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!s->stopping)
			pthread_cond_timedwait(&s->stop_cond, &s->stop_lock,
			    &ts);
	}
	pthread_mutex_unlock(&s->stop_lock);
	return NULL;
}

static int
ready_locked(struct sg_service *s, char *reason, size_t len)
{
	time_t now = time(NULL);
	size_t i, usable = 0;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->ready_at != 0 && now - s->ready_at < READY_CACHE_SECONDS) {
		r = s->ready_result;
		snprintf(reason, len, "%s", s->ready_reason);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	pthread_mutex_unlock(&s->lock);

	reason[0] = '\0';
	{
		/* First the log: a refusal is the operator's business now. */
		struct sg_tlog_status ls;
		sg_tlog_status(s->log, &ls);
		if (ls.refusal[0] != '\0') {
			snprintf(reason, len, "the signer refuses to sign the "
			    "log: %s", ls.refusal);
			r = SG_ERR_UNAVAILABLE;
		} else if (ls.uncovered) {
			snprintf(reason, len, "%llu log entries wait for a "
			    "signed checkpoint", (unsigned long long)(ls.size -
			    ls.checkpoint_size));
			r = SG_ERR_UNAVAILABLE;
		}
	}
	for (i = 0; r == 0 && i < s->nkeys; i++) {
		if (!s->keys[i].usable)
			continue;
		usable++;
		if ((r = sg_signer_client_probe(s->signer,
		    s->keys[i].pk->name)) != 0) {
			snprintf(reason, len, "key '%s': test signature "
			    "failed: %s", s->keys[i].pk->name, sg_strerror(r));
			break;
		}
	}
	if (r == 0 && usable == 0 && s->nkeys > 0) {
		snprintf(reason, len, "no key is usable: %s",
		    s->keys[0].reason);
		r = SG_ERR_UNAVAILABLE;
	}
	if (r == 0) {
		struct sg_txn *t = NULL;
		char *note = NULL;
		uint64_t size;
		if (sg_store_read_begin(s->store, &t) != 0 ||
		    sg_tlog_checkpoint(t, &note, &size) != 0) {
			snprintf(reason, len, "the log cannot be read");
			r = SG_ERR_UNAVAILABLE;
		}
		free(note);
		sg_store_read_end(t);
	}
	pthread_mutex_lock(&s->lock);
	s->ready_at = now;
	s->ready_result = r;
	snprintf(s->ready_reason, sizeof(s->ready_reason), "%s", reason);
	pthread_mutex_unlock(&s->lock);
	return r;
}

void
sg_service_stats(struct sg_service *s, struct sg_service_stats *ret)
{
	struct sg_tlog_status ls;
	struct sg_txn *t;
	uint64_t size;
	int64_t at;

	pthread_mutex_lock(&s->lock);
	*ret = s->stats;
	pthread_mutex_unlock(&s->lock);
	sg_tlog_status(s->log, &ls);
	ret->log_uncovered = ls.size > ls.checkpoint_size ? ls.size -
	    ls.checkpoint_size : 0;
	ret->checkpoint_refusals = ls.refusals;
	sg_store_batch_stats(s->store, &ret->batches, &ret->batched_jobs);
	if (sg_store_read_begin(s->store, &t) != 0)
		return;
	if (sg_store_count_pending(t, NULL, &ret->pending) != 0)
		ret->pending = 0;
	if (sg_tlog_checkpoint_time(t, &size, &at) == 0) {
		ret->log_size = size;
		ret->checkpoint_at = at;
	}
	sg_store_read_end(t);
}

uint64_t
sg_service_key_signatures(struct sg_service *s, size_t i)
{
	uint64_t n = 0;
	size_t j;

	pthread_rwlock_rdlock(&s->plock);
	pthread_mutex_lock(&s->lock);
	for (j = 0; i < s->nkeys && j < s->nsigcounts; j++)
		if (strcmp(s->sigcounts[j].name, s->keys[i].pk->name) == 0)
			n = s->sigcounts[j].n;
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_unlock(&s->plock);
	return n;
}

int
sg_service_log_checkpoint(struct sg_service *s, char **ret_note,
    uint64_t *ret_size)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_tlog_checkpoint(t, ret_note, ret_size);
	sg_store_read_end(t);
	return r;
}

int
sg_service_log_entry(struct sg_service *s, uint64_t index, char **ret,
    size_t *ret_len)
{
	struct sg_txn *t;
	char *note = NULL;
	uint64_t size;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	/* Only what a signed checkpoint covers is served. */
	if ((r = sg_tlog_checkpoint(t, &note, &size)) == 0)
		r = index < size ? sg_tlog_entry(t, index, ret, ret_len) :
		    SG_ERR_NOT_FOUND;
	free(note);
	sg_store_read_end(t);
	return r;
}

int
sg_service_log_inclusion(struct sg_service *s, uint64_t index,
    uint64_t size, uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_tlog_inclusion(t, index, size, out, cap, ret_n);
	sg_store_read_end(t);
	return r;
}

int
sg_service_log_consistency(struct sg_service *s, uint64_t old_size,
    uint64_t new_size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_tlog_consistency(t, old_size, new_size, out, cap, ret_n);
	sg_store_read_end(t);
	return r;
}

int
sg_service_log_bundle(struct sg_service *s, uint64_t index, char **ret)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_tlog_proof_bundle(t, index, ret);
	sg_store_read_end(t);
	return r;
}

/* --- the public operations, holding the policy read lock --- */

int
sg_service_create(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = create_locked(s, nr, ret, ret_existing, f);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

int
sg_service_decide(struct sg_service *s, const char *id, const char *principal,
    const char *envelope_json, size_t len, struct sg_request **ret,
    struct sg_fault *f)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = decide_locked(s, id, principal, envelope_json, len, ret, f);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

int
sg_service_quorum(struct sg_service *s, const struct sg_request *q,
    struct sg_quorum_result *ret)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = quorum_locked(s, q, ret);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

int
sg_service_request_quorum(struct sg_service *s, const struct sg_request *q,
    struct sg_request_quorum *ret)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = quorum_view_locked(s, q, ret);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

int
sg_service_cancel(struct sg_service *s, const char *id, const char *principal,
    const char *reason, struct sg_request **ret, struct sg_fault *f)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = cancel_locked(s, id, principal, reason, ret, f);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

int
sg_service_ready(struct sg_service *s, char *reason, size_t len)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = ready_locked(s, reason, len);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

/*
 * What a reload cannot apply: the signer opened every key at start, by its
 * name, token, object, id and scheme.  Says which key and which field,
 * and 0 when nothing of that kind changed.
 */
static int
needs_restart(const struct sg_service *s, const struct sg_policy *np,
    char *errbuf, size_t errlen)
{
	const struct sg_policy_key *a, *b;
	const struct sg_key_view *kv;
	char ha[129], hb[129];
	size_t i;

	for (i = 0; i < s->nkeys; i++) {
		a = s->keys[i].pk;
		if (sg_policy_key(np, a->name) == NULL) {
			snprintf(errbuf, errlen, "key '%s' was removed; removing "
			    "a key needs a restart", a->name);
			return SG_ERR_INVALID;
		}
	}
	for (i = 0; i < sg_policy_nkeys(np); i++) {
		b = sg_policy_key_at(np, i);
		if ((kv = key_locked(s, b->name)) == NULL) {
			snprintf(errbuf, errlen, "key '%s' is new; adding a key "
			    "needs a restart", b->name);
			return SG_ERR_INVALID;
		}
		a = kv->pk;
		if (strcmp(a->token, b->token) != 0) {
			snprintf(errbuf, errlen, "key '%s': token changed "
			    "('%s' to '%s'): an HSM location changed; that needs "
			    "a restart", b->name, a->token, b->token);
			return SG_ERR_INVALID;
		}
		if (strcmp(a->object, b->object) != 0) {
			snprintf(errbuf, errlen, "key '%s': object changed "
			    "('%s' to '%s'): an HSM location changed; that needs "
			    "a restart", b->name, a->object, b->object);
			return SG_ERR_INVALID;
		}
		if (a->id_len != b->id_len ||
		    memcmp(a->id, b->id, a->id_len) != 0) {
			sg_hex_encode(a->id, a->id_len, ha);
			sg_hex_encode(b->id, b->id_len, hb);
			snprintf(errbuf, errlen, "key '%s': id changed ('%s' to "
			    "'%s'): an HSM location changed; that needs a "
			    "restart", b->name, ha, hb);
			return SG_ERR_INVALID;
		}
		if (a->alg != b->alg || a->scheme != b->scheme) {
			snprintf(errbuf, errlen, "key '%s': algorithm changed "
			    "(%s to %s); that needs a restart", b->name,
			    sg_scheme_name(a->alg, a->scheme),
			    sg_scheme_name(b->alg, b->scheme));
			return SG_ERR_INVALID;
		}
	}
	return 0;
}

int
sg_service_reload(struct sg_service *s, char *errbuf, size_t errlen)
{
	struct sg_policy *np = NULL;
	struct sg_key_view *nkeys = NULL;
	struct retained *rt = NULL;
	struct policy_job pj;
	EVP_PKEY *logpub = NULL;
	char *text = NULL, *dir = NULL, why[SG_SIGNER_ERR_MAX + 256];
	size_t len, n = 0, i;
	int r;

	/* Validate first; any failure leaves the running policy alone. */
	if ((r = sg_read_file(s->cfg->policy_path, SG_POLICY_MAX_SIZE, &text,
	    &len)) != 0) {
		snprintf(errbuf, errlen, "%s: cannot read: %s",
		    s->cfg->policy_path, sg_strerror(r));
		return r;
	}
	if ((r = sg_policy_parse(s->cfg->policy_path, text, len, &np, errbuf,
	    errlen)) != 0)
		goto out;
	pthread_rwlock_rdlock(&s->plock);
	if (strcmp(sg_policy_sha256_hex(np), sg_policy_sha256_hex(s->policy))
	    == 0) {
		pthread_rwlock_unlock(&s->plock);
		snprintf(errbuf, errlen, "the policy file has not changed");
		r = SG_ERR_CONFLICT;
		goto out;
	}
	/* Never the log key, whatever else changed. */
	n = sg_policy_nkeys(np);
	if (sg_signer_client_key_public(s->signer, SG_SIGNER_LOG_KEY, &logpub,
	    NULL, NULL) != 0)
		logpub = NULL;
	for (i = 0; i < n; i++) {
		const struct sg_policy_key *k = sg_policy_key_at(np, i);
		EVP_PKEY *pub = NULL;
		if (sg_signer_client_key_public(s->signer, k->name, &pub, NULL,
		    NULL) != 0)
			pub = NULL;
		if ((r = log_key_clash(s->cfg, k, pub, logpub, errbuf,
		    errlen)) != 0) {
			pthread_rwlock_unlock(&s->plock);
			goto out;
		}
	}
	/* The signer found its HSM keys at start: names and locations
	 * cannot change without a restart. */
	n = sg_policy_nkeys(np);
	r = needs_restart(s, np, why, sizeof(why));
	pthread_rwlock_unlock(&s->plock);
	if (r != 0) {
		snprintf(errbuf, errlen, "%s: %s", s->cfg->policy_path, why);
		goto out;
	}
	if (sg_policy_version(np) <= sg_policy_version(s->policy)) {
		snprintf(errbuf, errlen, "%s: version %llu is not above the "
		    "running version %llu", s->cfg->policy_path,
		    (unsigned long long)sg_policy_version(np),
		    (unsigned long long)sg_policy_version(s->policy));
		r = SG_ERR_INVALID;
		goto out;
	}

	/* New key views, from the signer's facts and the new rules. */
	if ((nkeys = calloc(n ? n : 1, sizeof(*nkeys))) == NULL ||
	    (dir = sg_dirname(s->cfg->policy_path)) == NULL ||
	    (rt = calloc(1, sizeof(*rt))) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct sg_key_view *kv = &nkeys[i];
		kv->pk = sg_policy_key_at(np, i);
		if ((r = sg_signer_client_key_public(s->signer, kv->pk->name,
		    &kv->pub, NULL, &kv->token)) != 0) {
			snprintf(errbuf, errlen, "key '%s': %s", kv->pk->name,
			    sg_strerror(r));
			goto out;
		}
		/* A certificate that cannot be used is refused rather than
		 * half applied (the front showing one chain, the signer
		 * embedding another). */
		if (check_key_with(np, kv, dir) != 0) {
			snprintf(errbuf, errlen, "key '%s': %s", kv->pk->name,
			    kv->reason);
			r = SG_ERR_INVALID;
			goto out;
		}
		load_retired(kv, dir);
	}

	pj.sha = sg_policy_sha256_hex(np);
	pj.text = text;
	if ((r = sg_store_write(s->store, job_put_policy, &pj)) != 0) {
		snprintf(errbuf, errlen, "the new policy could not be stored");
		goto out;
	}

	/*
	 * The signer checks evidence against its own copy, re-reads the
	 * certificate chains and must agree on the file.  It switches while
	 * the front holds the write lock, so that no request is counted by
	 * one policy in the front and signed under another.
	 */
	why[0] = '\0';
	pthread_rwlock_wrlock(&s->plock);
	if ((r = sg_signer_client_reload(s->signer, sg_policy_sha256_hex(np),
	    why, sizeof(why))) != 0) {
		pthread_rwlock_unlock(&s->plock);
		snprintf(errbuf, errlen, "the signer process refused it: %s",
		    why[0] != '\0' ? why : sg_strerror(r));
		goto out;
	}
	rt->policy = s->policy;
	rt->text = s->policy_text;
	rt->keys = s->keys;
	rt->nkeys = s->nkeys;
	rt->next = s->retained;
	s->retained = rt;
	s->policy = np;
	s->policy_text = text;
	s->keys = nkeys;
	s->nkeys = n;
	pthread_mutex_lock(&s->lock);
	s->ready_at = 0;
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_unlock(&s->plock);
	for (i = 0; i < n; i++)
		if (!nkeys[i].usable)
			sg_log_warn("key '%s' will not be used: %s",
			    nkeys[i].pk->name, nkeys[i].reason);
	np = NULL;
	text = NULL;
	nkeys = NULL;
	rt = NULL;
	r = 0;
out:
	free_keys(nkeys, n);
	sg_policy_free(np);
	free(text);
	free(dir);
	free(rt);
	return r;
}
