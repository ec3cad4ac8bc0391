/*
 * signgate's domain operations: create a request, record an officer's
 * decision, sign when the quorum holds, cancel, expire what is overdue,
 * reload the policy, serve the log.  This file only opens and closes the
 * service and holds the helpers every part shares (faults, notification,
 * the clock, reading a policy); the operations live in service_*.c, one
 * job each (see service_int.h for the map, the locks and who may call
 * whom).
 *
 * Ordering rules (fail closed):
 * - A request that needs no approval is signed first and then inserted,
 *   already signed, in one transaction; the signature is returned only
 *   after that commit.  If the HSM or the store fails, nothing is kept and
 *   the caller gets 503; a retry with the same Idempotency-Key is safe.
 * - A decision is committed on its own; if it completes the quorum the
 *   request is signed and recorded in a second transaction guarded by
 *   `state = 'pending'`, and only one thread at a time may sign a given
 *   request (the claim set, service_sign.c), so a request is signed at
 *   most once.  If the HSM or the signer cannot be reached the request
 *   stays pending and the housekeeping thread retries it until it
 *   expires; a refusal by the signer, a required time-stamp that failed,
 *   or a key no longer in service ends it as failed (service_sign.c).
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
 *
 * Locks: open and free run alone; set_notify before any operation.
 * Calls: the signer interface (service_signer.c or a test's), store, tlog,
 * privdrop, and the key views (service_keys.c).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_notify.h"
#include "sg_privdrop.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "sg_witnessing.h"
#include "service_int.h"

void
svc_fault(struct sg_fault *f, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (f == NULL)
		return;
	snprintf(f->field, sizeof(f->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
	va_end(ap);
}

/* A write that was committed, but not under a signed checkpoint. */
void
svc_recorded_fault(struct sg_fault *f, const char *what, const char *id,
    const char *then)
{
	svc_fault(f, NULL, "%s %s was recorded, but the transparency log has "
	    "not signed a checkpoint covering it yet; %s", what, id, then);
	f->recorded = 1;
}

void
svc_notify(struct sg_service *s, const char *id)
{
	if (s->notify != NULL)
		s->notify(s->notify_arg, id);
	sg_store_announce(s->store, id);
}

/* Another gateway changed id: wake this one's long-polls on it. */
static void
remote_change(void *arg, const char *id)
{
	struct sg_service *s = arg;

	s->notify(s->notify_arg, id);
}

int64_t
svc_now(const struct sg_service *s)
{
	return s->now != NULL ? s->now(s->now_ctx) : (int64_t)time(NULL);
}

int
svc_policy_read(const char *path, char **ret_text, struct sg_policy **ret,
    char *errbuf, size_t errlen)
{
	size_t len;
	int r;

	if ((r = sg_read_file(path, SG_POLICY_MAX_SIZE, ret_text,
	    &len)) != 0) {
		snprintf(errbuf, errlen, "%s: cannot read: %s", path,
		    sg_strerror(r));
		return r;
	}
	return sg_policy_parse(path, *ret_text, len, ret, errbuf, errlen);
}

struct policy_job {
	const char *sha;
	const char *text;
	int64_t now;
};

static int
job_put_policy(struct sg_txn *t, void *arg)
{
	struct policy_job *pj = arg;

	return sg_store_put_policy(t, pj->sha, pj->text, pj->now);
}

/* Keeps policy p's text in the store, so that requests made under it are
 * judged by it later. */
int
svc_policy_store(struct sg_service *s, const struct sg_policy *p,
    const char *text)
{
	struct policy_job pj;

	pj.sha = sg_policy_sha256_hex(p);
	pj.text = text;
	pj.now = svc_now(s);
	return sg_store_write(s->store, job_put_policy, &pj);
}

/* The service without its signer: the policy read, the names of its keys
 * checked against the log key's. */
static int
service_new(const struct sg_config *cfg, struct sg_service **ret,
    char *errbuf, size_t errlen)
{
	struct sg_service *s;
	size_t i;
	int r;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return SG_ERR_NOMEM;
	s->cfg = cfg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->unclaimed, NULL);
	pthread_rwlock_init(&s->plock, NULL);
	pthread_mutex_init(&s->pclock, NULL);
	pthread_mutex_init(&s->alock, NULL);
	pthread_cond_init(&s->acond, NULL);
	pthread_cond_init(&s->aidle, NULL);
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_cond_init(&s->stop_cond, NULL);
	pthread_mutex_init(&s->rel_lock, NULL);
	pthread_cond_init(&s->rel_cond, NULL);
	*ret = s;
	if ((r = svc_policy_read(cfg->policy_path, &s->policy_text,
	    &s->policy, errbuf, errlen)) != 0)
		return r;
	s->nkeys = sg_policy_nkeys(s->policy);
	if ((s->keys = calloc(s->nkeys ? s->nkeys : 1, sizeof(*s->keys))) ==
	    NULL || (s->sigcounts = calloc(SVC_MAX_KEYS_COUNTED,
	    sizeof(*s->sigcounts))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < s->nkeys; i++) {
		s->keys[i].pk = sg_policy_key_at(s->policy, i);
		if ((r = svc_log_key_clash(cfg, s->keys[i].pk, NULL, NULL,
		    errbuf, errlen)) != 0)
			return r;
	}
	return 0;
}

/* The log key as the signer found it: Ed25519, raw public key in rawpub.
 * *ret_pub stays the signer's. */
static int
log_key(struct sg_service *s, EVP_PKEY **ret_pub,
    uint8_t rawpub[SG_ED25519_PUB], char *errbuf, size_t errlen)
{
	enum sg_key_alg alg;
	size_t rawlen = SG_ED25519_PUB;

	if (s->signer.key_public(s->signer.ctx, SG_SIGNER_LOG_KEY, ret_pub,
	    &alg, NULL) != 0 || alg != SG_ALG_ED25519 ||
	    EVP_PKEY_get_raw_public_key(*ret_pub, rawpub, &rawlen) != 1 ||
	    rawlen != SG_ED25519_PUB) {
		snprintf(errbuf, errlen, "log key '%s' on token '%s' is not an "
		    "Ed25519 key", s->cfg->log_key, s->cfg->log_token);
		return SG_ERR_INVALID;
	}
	return 0;
}

/* The store the configuration names; a PostgreSQL password is read from
 * its file here, handed to the store and wiped. */
static int
store_open(const struct sg_config *cfg, struct sg_store **ret,
    char *errbuf, size_t errlen)
{
	struct sg_store_conf sc;
	char *password = NULL;
	size_t plen = 0;
	int r;

	memset(&sc, 0, sizeof(sc));
	sc.backend = cfg->store.backend != 0 ? cfg->store.backend :
	    SG_DB_SQLITE;
	sc.dir = cfg->state_dir;
	sc.conninfo = cfg->store.conninfo;
	sc.node = cfg->store.node;
	sc.claim_seconds = (int)cfg->store.claim_seconds;
	if (cfg->store.password_file != NULL &&
	    (r = sg_read_secret_file(cfg->store.password_file, &password,
	    &plen)) != 0) {
		snprintf(errbuf, errlen, "%s: store.password_file cannot be "
		    "read: %s", cfg->store.password_file, sg_strerror(r));
		return r;
	}
	sc.password = password;
	r = sg_store_open_conf(&sc, ret);
	sg_freezero(password, plen);
	if (r != 0)
		snprintf(errbuf, errlen, "%s: cannot open the request store "
		    "(%s)", sc.backend == SG_DB_POSTGRESQL ? "postgresql" :
		    cfg->state_dir, sg_strerror(r));
	return r;
}

/* The store and the log over it, the policy kept there. */
static int
open_store(struct sg_service *s, const uint8_t rawpub[SG_ED25519_PUB],
    char *errbuf, size_t errlen)
{
	const struct sg_config *cfg = s->cfg;
	char why[768];
	int r;

	if ((r = store_open(cfg, &s->store, errbuf, errlen)) != 0)
		return r;
	if ((r = sg_tlog_open(s->store, cfg->log_origin, rawpub,
	    s->signer.checkpoint, s->signer.ctx, &s->log, why,
	    sizeof(why))) != 0) {
		snprintf(errbuf, errlen, "%s: cannot open the transparency "
		    "log: %s", cfg->state_dir, why);
		return r;
	}
	/* The witnesses are told of every checkpoint from here on; with
	 * fail-closed, only what carries their quorum is served. */
	if (cfg->witnesses.n > 0) {
		if ((r = sg_witnessing_open(&cfg->witnesses, s->store, s->log,
		    &s->witnessing, errbuf, errlen)) != 0)
			return r;
		sg_tlog_set_witnessing(s->log, cfg->witnesses.mode ==
		    SG_WITNESS_FAIL_CLOSED ? cfg->witnesses.quorum : 0,
		    sg_witnessing_kick, s->witnessing);
	}
	if ((r = svc_policy_store(s, s->policy, s->policy_text)) != 0) {
		snprintf(errbuf, errlen, "%s: the request store cannot be "
		    "written", cfg->state_dir);
		return r;
	}
	/* Nothing is accepted under a policy the log does not hold. */
	return svc_policy_log_start(s, errbuf, errlen);
}

/* Everything after the signer: store, log, key views, housekeeping. */
static int
service_start(struct sg_service *s, char *errbuf, size_t errlen)
{
	EVP_PKEY *logpub = NULL;
	uint8_t rawpub[SG_ED25519_PUB];
	char *policy_dir = NULL;
	size_t i;
	int r;

	if ((r = log_key(s, &logpub, rawpub, errbuf, errlen)) != 0 ||
	    (r = open_store(s, rawpub, errbuf, errlen)) != 0 ||
	    (r = svc_notify_open(s, errbuf, errlen)) != 0)
		return r;
	if ((policy_dir = sg_dirname(s->cfg->policy_path)) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < s->nkeys; i++) {
		struct sg_key_view *kv = &s->keys[i];
		if ((r = svc_key_view_fill(s, s->policy, kv, policy_dir,
		    logpub, 0, errbuf, errlen)) != 0)
			goto out;
		if (!kv->usable)
			sg_log_warn("key '%s' will not be used: %s",
			    kv->pk->name, kv->reason);
	}
	if ((r = svc_async_start(s)) != 0)
		snprintf(errbuf, errlen, "cannot start the executor threads");
	else if ((r = svc_sweeper_start(s)) != 0)
		snprintf(errbuf, errlen, "cannot start the housekeeping "
		    "thread");
	else if ((r = svc_releases_start(s)) != 0)
		snprintf(errbuf, errlen, "cannot start the release thread");
	else if ((r = svc_notify_start(s)) != 0)
		snprintf(errbuf, errlen, "cannot start the notification "
		    "thread");
out:
	free(policy_dir);
	return r;
}

int
sg_service_open(const struct sg_config *cfg, struct sg_service **ret,
    char *errbuf, size_t errlen)
{
	struct sg_service *s = NULL;
	int r;

	if ((r = service_new(cfg, &s, errbuf, errlen)) != 0)
		goto fail;
	/* The signer runs in its own process (see sg_signer_proc.h). */
	if ((r = svc_signer_start(cfg, s->policy, &s->signer, errbuf,
	    errlen)) != 0)
		goto fail;
	/* From here on the front is its own unprivileged user, before the
	 * store is opened (sg_privdrop.h). */
	if ((r = sg_privdrop_enter(SG_PRIV_FRONT, errbuf, errlen)) != 0 ||
	    (r = service_start(s, errbuf, errlen)) != 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	sg_service_free(s);
	return r;
}

int
sg_service_open_with_signer(const struct sg_config *cfg,
    const struct sg_service_parts *parts, struct sg_service **ret,
    char *errbuf, size_t errlen)
{
	struct sg_service *s = NULL;
	int r;

	r = service_new(cfg, &s, errbuf, errlen);
	if (s != NULL) {
		s->signer = parts->signer;
		s->now = parts->now;
		s->now_ctx = parts->now_ctx;
	} else if (parts->signer.free != NULL)
		parts->signer.free(parts->signer.ctx);
	if (r != 0 || (r = service_start(s, errbuf, errlen)) != 0) {
		sg_service_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void
sg_service_quiesce(struct sg_service *s)
{
	if (s == NULL)
		return;
	svc_async_stop(s);
	svc_releases_stop(s);
	svc_sweeper_stop(s);
	svc_notify_stop(s);
	sg_store_unlisten(s->store);
}

void
sg_service_free(struct sg_service *s)
{
	if (s == NULL)
		return;
	sg_service_quiesce(s);
	svc_keys_free(s->keys, s->nkeys);
	while (s->retained != NULL) {
		struct svc_retained *rt = s->retained;
		s->retained = rt->next;
		svc_keys_free(rt->keys, rt->nkeys);
		sg_policy_free(rt->policy);
		free(rt->text);
		free(rt);
	}
	free(s->sigcounts);
	/* Before the store: the witnesses' thread writes to it. */
	if (s->witnessing != NULL) {
		sg_tlog_set_witnessing(s->log, 0, NULL, NULL);
		sg_witnessing_free(s->witnessing);
	}
	/* The store's writer may still call the log's hooks until it stops. */
	sg_store_close(s->store);
	/* After the store: its writer calls the change hook until then. */
	sg_notify_free(s->notifier);
	sg_tlog_free(s->log);
	if (s->signer.free != NULL)
		s->signer.free(s->signer.ctx);
	sg_policy_free(s->policy);
	free(s->policy_text);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->unclaimed);
	pthread_rwlock_destroy(&s->plock);
	pthread_mutex_destroy(&s->pclock);
	pthread_mutex_destroy(&s->stop_lock);
	pthread_cond_destroy(&s->stop_cond);
	pthread_mutex_destroy(&s->rel_lock);
	pthread_cond_destroy(&s->rel_cond);
	pthread_mutex_destroy(&s->alock);
	pthread_cond_destroy(&s->acond);
	pthread_cond_destroy(&s->aidle);
	free(s);
}

void
sg_service_set_notify(struct sg_service *s,
    void (*fn)(void *arg, const char *id), void *arg)
{
	s->notify = fn;
	s->notify_arg = arg;
	/* Gateways sharing the database wake each other's long-polls. */
	if (fn != NULL && sg_store_listen(s->store, remote_change, s) != 0)
		sg_log_warn("the other gateways' changes will not wake this "
		    "one's long-polls (no listener thread)");
}
