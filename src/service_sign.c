/*
 * Signing: has the signer sign a request whose quorum holds (or that needs
 * none), adds a time-stamp where the key has an authority, and records
 * the signature in the store and the log in one transaction guarded by
 * the request still being pending, unexpired and approved.
 *
 * Only one thread at a time may sign a given request: it claims the id
 * first (the claim set).  A request whose signing failed for a reason
 * that may pass (the HSM) goes on the retry list for the housekeeping
 * thread; a refusal by the signer, a required time-stamping authority
 * that failed or a key gone from service fail the request for good.
 *
 * Locks: expects plock held for reading; takes lock for the claim set and
 * the retry list, never across a signer call or a store write.
 * Calls: the signer interface, store, quorum, log, metrics, tsa, cms.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_tsa.h"
#include "sg_util.h"
#include "service_int.h"

void
svc_signed_clear(struct svc_signed *o)
{
	explicit_bzero(&o->reply, sizeof(o->reply));
	free(o->cms);
	free(o->timestamp_note);
	memset(o, 0, sizeof(*o));
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

/* Adds an RFC 3161 timestamp over the CMS signature value when the key
 * has an authority configured.  A failing authority fails the signature
 * when it is required; otherwise the signature goes out without one and
 * says so. */
static int
timestamp(struct sg_service *s, const struct sg_key_view *kv,
    struct svc_signed *o, char *err, size_t errlen)
{
	const struct sg_tsa_config *t = tsa_for(s, kv->pk->name);
	uint8_t *token = NULL, *cms = NULL;
	size_t token_len = 0, cms_len = 0;
	char why[256], when[32];
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

void
svc_evidence_of(const struct sg_request *q, const uint8_t *counted,
    struct sg_sign_evidence *ev, const char **envs, size_t *lens)
{
	size_t i, n;

	for (i = 0, n = 0; i < q->napprovals && i < SG_ENVELOPES_MAX; i++) {
		if (counted == NULL || !counted[i])
			continue;
		envs[n] = q->approvals[i].envelope;
		lens[n] = strlen(q->approvals[i].envelope);
		n++;
	}
	memset(ev, 0, sizeof(*ev));
	ev->statement = q->statement;
	ev->statement_len = strlen(q->statement);
	ev->envelopes = envs;
	ev->envelope_lens = lens;
	ev->n = n;
	ev->format = q->format;
}

/* What the signer is asked: the digest, and the statement with only the
 * decisions that count (it refuses evidence that holds one by an officer
 * the policy in force no longer allows).  envs and lens hold
 * SG_ENVELOPES_MAX. */
static int
sign_message(const struct sg_key_view *kv, const struct sg_request *q,
    const uint8_t *counted, struct sg_sign_msg *msg,
    struct sg_sign_evidence *ev, const char **envs, size_t *lens)
{
	size_t dlen;

	if (q->napprovals > SG_ENVELOPES_MAX)
		return SG_ERR_TOO_LARGE;
	memset(msg, 0, sizeof(*msg));
	snprintf(msg->key, sizeof(msg->key), "%s", kv->pk->name);
	msg->digest_alg = sg_digest_from_name(q->digest_alg);
	if (sg_hex_decode(q->digest_hex, strlen(q->digest_hex), msg->data,
	    sizeof(msg->data), &dlen) != 0)
		return SG_ERR_INTERNAL;
	msg->data_len = dlen;
	svc_evidence_of(q, counted, ev, envs, lens);
	return 0;
}

/* What follows the signer's answer r: the CMS it must hold, the
 * time-stamp, and on failure the count, the log line and o cleared. */
static int
sign_finish(struct sg_service *s, const struct sg_key_view *kv,
    const struct sg_request *q, int r, int64_t t0, struct svc_signed *o,
    char *err, size_t errlen)
{
	int tsa_failed = 0;

	svc_hsm_time(s, t0);
	if (r == 0 && q->format == SG_FORMAT_CMS && o->cms == NULL)
		r = SG_ERR_INTERNAL;
	if (r == 0 && (r = timestamp(s, kv, o, err, errlen)) != 0)
		tsa_failed = 1;
	if (r != 0) {
		svc_stat_add(s, &s->stats.hsm_errors);
		sg_log_error("request %s: signing with key '%s' failed: %s "
		    "(%s)", q->id, kv->pk->name, sg_strerror(r), err);
		svc_signed_clear(o);
		o->tsa_failed = tsa_failed;
	}
	return r;
}

static int
sign_start(const struct sg_key_view *kv, const struct sg_request *q,
    const uint8_t *counted, struct svc_signed *o, struct sg_sign_msg *msg,
    struct sg_sign_evidence *ev, const char **envs, size_t *lens,
    char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	err[0] = '\0';
	if (!kv->usable) {
		snprintf(err, errlen, "key '%.63s' cannot be used: %.150s",
		    kv->pk->name, kv->reason);
		return SG_ERR_FORBIDDEN;
	}
	return sign_message(kv, q, counted, msg, ev, envs, lens);
}

/*
 * Has the signer sign request q with its key.  The signer checks the
 * evidence sent along against the policy it loaded itself, and for CMS
 * builds the signed attributes around the approved digest.
 */
int
svc_sign_request(struct sg_service *s, const struct sg_key_view *kv,
    const struct sg_request *q, const uint8_t *counted, struct svc_signed *o,
    char *err, size_t errlen)
{
	struct sg_sign_msg msg;
	struct sg_sign_evidence ev;
	const char *envs[SG_ENVELOPES_MAX];
	size_t lens[SG_ENVELOPES_MAX];
	int64_t t0;
	int r;

	if ((r = sign_start(kv, q, counted, o, &msg, &ev, envs, lens, err,
	    errlen)) != 0)
		return r;
	t0 = sg_mono_us();
	r = s->signer.sign(s->signer.ctx, &msg, &ev, &o->reply, &o->cms,
	    &o->cms_len, err, errlen);
	return sign_finish(s, kv, q, r, t0, o, err, errlen);
}

/* The end of an asynchronous signature, on the executor. */
static void
sign_call_finish(void *arg)
{
	struct svc_sign_call *sc = arg;

	sc->r = sign_finish(sc->s, sc->kv, sc->q, sc->r, sc->t0, sc->o,
	    sc->err, sizeof(sc->err));
	explicit_bzero(&sc->msg, sizeof(sc->msg));
	sc->then(sc->then_arg);
}

/* The signer's answer, on its reply thread: kept, and handed on. */
static void
sign_call_reply(void *arg, int r, const struct sg_sign_reply *reply,
    uint8_t *cms, size_t cms_len, const char *err)
{
	struct svc_sign_call *sc = arg;

	sc->r = r;
	if (r == 0) {
		sc->o->reply = *reply;
		sc->o->cms = cms;
		sc->o->cms_len = cms_len;
	} else {
		free(cms);
		snprintf(sc->err, sizeof(sc->err), "%s", err != NULL &&
		    err[0] != '\0' ? err : sg_strerror(r));
	}
	svc_exec(sc->s, &sc->step, sign_call_finish, sc);
}

/* A signer without the asynchronous call: signed on the executor. */
static void
sign_call_sync(void *arg)
{
	struct svc_sign_call *sc = arg;

	sc->r = sc->s->signer.sign(sc->s->signer.ctx, &sc->msg, &sc->ev,
	    &sc->o->reply, &sc->o->cms, &sc->o->cms_len, sc->err,
	    sizeof(sc->err));
	sign_call_finish(sc);
}

/*
 * svc_sign_request() without waiting: asks the signer and returns.  Once
 * the answer is in (sc->r, sc->o, sc->err), sc->then(sc->then_arg) runs
 * on the executor.  sc's s, kv, q, o, then and then_arg are the caller's
 * and must stay valid until then; q's statement and approvals too.  An
 * error return (sc->err says why) means then will not run.
 */
int
svc_sign_request_async(struct svc_sign_call *sc, const uint8_t *counted)
{
	int r;

	if ((r = sign_start(sc->kv, sc->q, counted, sc->o, &sc->msg, &sc->ev,
	    sc->envs, sc->lens, sc->err, sizeof(sc->err))) != 0)
		return r;
	sc->t0 = sg_mono_us();
	if (sc->s->signer.sign_async == NULL) {
		svc_exec(sc->s, &sc->step, sign_call_sync, sc);
		return 0;
	}
	if ((r = sc->s->signer.sign_async(sc->s->signer.ctx, &sc->msg,
	    &sc->ev, sign_call_reply, sc)) != 0) {
		snprintf(sc->err, sizeof(sc->err), "the signer process is "
		    "unavailable");
		explicit_bzero(&sc->msg, sizeof(sc->msg));
	}
	return r;
}

/* --- claims: one signer per request at a time --- */

/* Where id stands in a list of n ids (under lock), or n. */
static size_t
id_at(char (*ids)[SG_REQUEST_ID_SIZE], size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			break;
	return i;
}

/* Removes entry i of a list of *n ids (under lock): the last takes its
 * place. */
static void
id_drop(char (*ids)[SG_REQUEST_ID_SIZE], size_t *n, size_t i)
{
	(*n)--;
	memcpy(ids[i], ids[*n], SG_REQUEST_ID_SIZE);
}

/* unheld: refused too while a caller holds the id (svc_hold), under the
 * same lock, so that a sweep which read the request after the holder's
 * write also sees the hold. */
static int
claim(struct sg_service *s, const char *id, int unheld)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (id_at(s->claims, s->nclaims, id) == s->nclaims &&
	    (!unheld || id_at(s->holds, s->nholds, id) == s->nholds) &&
	    s->nclaims < SVC_MAX_CLAIMS) {
		s->claims_db[s->nclaims] = 0;
		snprintf(s->claims[s->nclaims++], SG_REQUEST_ID_SIZE, "%s", id);
		r = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

int
svc_claim(struct sg_service *s, const char *id)
{
	return claim(s, id, 0);
}

int
svc_claim_unheld(struct sg_service *s, const char *id)
{
	return claim(s, id, 1);
}

int
svc_claim_db(struct sg_service *s, const char *id)
{
	size_t i;
	int got = 0;

	if (!sg_store_shared(s->store))
		return 1;
	if (sg_store_claim(s->store, id, &got) != 0 || !got)
		return 0;
	pthread_mutex_lock(&s->lock);
	if ((i = id_at(s->claims, s->nclaims, id)) < s->nclaims)
		s->claims_db[i] = 1;
	pthread_mutex_unlock(&s->lock);
	return 1;
}

void
svc_unclaim(struct sg_service *s, const char *id)
{
	size_t i;
	int db = 0;

	pthread_mutex_lock(&s->lock);
	if ((i = id_at(s->claims, s->nclaims, id)) < s->nclaims) {
		db = s->claims_db[i];
		s->claims_db[i] = s->claims_db[s->nclaims - 1];
		id_drop(s->claims, &s->nclaims, i);
	}
	pthread_cond_broadcast(&s->unclaimed);
	pthread_mutex_unlock(&s->lock);
	if (db)
		sg_store_unclaim(s->store, id);
}

int
svc_hold(struct sg_service *s, const char *id)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (s->nholds < SVC_MAX_CLAIMS) {
		snprintf(s->holds[s->nholds++], SG_REQUEST_ID_SIZE, "%s", id);
		r = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void
svc_unhold(struct sg_service *s, const char *id)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	if ((i = id_at(s->holds, s->nholds, id)) < s->nholds)
		id_drop(s->holds, &s->nholds, i);
	pthread_mutex_unlock(&s->lock);
}

/* Remembers a request whose quorum holds but whose signing failed, so the
 * housekeeping thread tries it first however many others are pending. */
void
svc_retry_later(struct sg_service *s, const char *id)
{
	pthread_mutex_lock(&s->lock);
	if (id_at(s->retry, s->nretry, id) == s->nretry &&
	    s->nretry < SVC_MAX_CLAIMS)
		snprintf(s->retry[s->nretry++], SG_REQUEST_ID_SIZE, "%s", id);
	pthread_mutex_unlock(&s->lock);
}

/* Waits (bounded) until nobody is signing request id. */
void
svc_wait_unclaimed(struct sg_service *s, const char *id, int seconds)
{
	struct timespec until;
	int busy;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += seconds;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		busy = id_at(s->claims, s->nclaims, id) < s->nclaims;
		if (!busy || pthread_cond_timedwait(&s->unclaimed, &s->lock,
		    &until) != 0)
			break;
	}
	pthread_mutex_unlock(&s->lock);
}

/* --- recording a signature --- */

struct finish_job {
	struct sg_service *s;
	const char *id;
	enum sg_req_state state;
	const char *reason;
};

static int
job_finish(struct sg_txn *t, void *arg)
{
	struct finish_job *fj = arg;

	return svc_finish_in(fj->s, t, fj->id, fj->state, fj->reason);
}

/* pending → failed for good, with the reason logged. */
void
svc_fail_request(struct sg_service *s, const char *id, const char *why)
{
	struct finish_job fj = { s, id, SG_REQ_FAILED, why };

	if (sg_store_write(s->store, job_finish, &fj) == 0)
		svc_notify(s, id);
}

struct signed_job {
	struct sg_service *s;
	const char *id;
	const struct sg_key_view *kv;
	const struct svc_signed *o;
};

/* Records a signature: only if the request is still pending, unexpired,
 * and its quorum (re-read inside this transaction) still holds. */
static int
job_signed(struct sg_txn *t, void *arg)
{
	struct signed_job *sj = arg;
	const struct svc_signed *o = sj->o;
	struct sg_request *q = NULL;
	struct sg_request_quorum v;
	int64_t now = svc_now(sj->s);
	uint64_t index;
	int r;

	if ((r = sg_store_get_request(t, sj->id, &q)) != 0)
		return r;
	if (q->state != SG_REQ_PENDING || now >= q->expires_at) {
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if ((r = svc_quorum_view_in(sj->s, t, q, &v)) != 0)
		goto out;
	if (v.res.state != SG_QUORUM_MET) {
		r = SG_ERR_FORBIDDEN;
		goto out;
	}
	if ((r = sg_store_set_signed(t, sj->id, o->reply.sig,
	    o->reply.sig_len, o->cms, o->cms_len, now,
	    o->timestamp_note)) != 0)
		goto out;
	if ((r = svc_log_signature(sj->s, t, q, v.counted, sj->kv,
	    o->reply.sig, o->reply.sig_len, o->cms, o->cms_len, now,
	    &index)) != 0)
		goto out;
	r = sg_store_set_log_index(t, sj->id, index);
out:
	sg_request_free(q);
	return r;
}

/* The key the statement names, or NULL when it is no longer in service
 * (rotated or removed: never sign with another one); why says which. */
const struct sg_key_view *
svc_statement_key(struct sg_service *s, const struct sg_request *q, char *why,
    size_t whylen)
{
	const struct sg_key_view *kv = svc_key_locked(s, q->key);
	char at[32];
	size_t i;

	if (kv != NULL && strcmp(kv->spki_sha256, q->spki_sha256) == 0)
		return kv;
	snprintf(why, whylen, "key '%s' sha256:%s named in the statement is "
	    "no longer in service", q->key, q->spki_sha256);
	for (i = 0; kv != NULL && i < kv->nretired; i++) {
		if (strcmp(kv->retired[i].spki_sha256, q->spki_sha256) != 0)
			continue;
		sg_time_rfc3339((time_t)kv->retired[i].rk->retired_at, at,
		    sizeof(at));
		snprintf(why, whylen, "key '%s' was rotated at %s; the "
		    "statement names the retired key sha256:%s, which no "
		    "longer signs", q->key, at, q->spki_sha256);
	}
	return NULL;
}

/* Whether request q is to be signed now: pending, unexpired, its quorum
 * met (*v then says which decisions count).  If not, *ret is the answer:
 * 0 when it is signed already. */
static int
to_sign(struct sg_service *s, const struct sg_request *q,
    struct sg_request_quorum *v, int *ret)
{
	*ret = q->state == SG_REQ_SIGNED ? 0 : SG_ERR_CONFLICT;
	if (q->state != SG_REQ_PENDING || svc_now(s) >= q->expires_at)
		return 0;
	/* Releases, grants and what is signed under a grant have paths of
	 * their own (service_release.c, service_grant.c). */
	if (q->kind != SG_KIND_REQUEST || q->grant_id[0] != '\0') {
		*ret = SG_ERR_INVALID;
		return 0;
	}
	if ((*ret = svc_quorum_view_locked(s, q, v)) != 0)
		return 0;
	if (v->res.state != SG_QUORUM_MET) {
		*ret = SG_ERR_FORBIDDEN;
		return 0;
	}
	return 1;
}

/* Signs q with kv and records it, the claim on q held. */
static int
sign_and_record(struct sg_service *s, const struct sg_request *q,
    const struct sg_key_view *kv, const uint8_t *counted, int *ret_kept)
{
	struct svc_signed *so;
	struct signed_job sj;
	char why[SG_SIGNER_ERR_MAX];
	int r, kept = 0;

	if ((so = calloc(1, sizeof(*so))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = svc_sign_request(s, kv, q, counted, so, why,
	    sizeof(why))) != 0) {
		/* A refusal by the signer is final (the evidence will not
		 * get better), and so is a required time-stamping authority
		 * that failed: the request fails clearly rather than hang.
		 * HSM trouble is retried until the request expires. */
		if (r == SG_ERR_VERIFY || r == SG_ERR_FORBIDDEN ||
		    so->tsa_failed)
			svc_fail_request(s, q->id, why);
		goto out;
	}
	sj.s = s;
	sj.id = q->id;
	sj.kv = kv;
	sj.o = so;
	/* Kept: signed and stored; answered once a checkpoint covers it
	 * (the signature's proof is served only then). */
	if ((r = sg_store_write_kept(s->store, job_signed, &sj, &kept)) != 0) {
		if (kept && ret_kept != NULL)
			*ret_kept = 1;
		goto out;
	}
	svc_count_signature(s, kv);
	sg_log_info("request %s signed with key %s", q->id, q->key);
	svc_notify(s, q->id);
out:
	svc_signed_clear(so);
	free(so);
	return r;
}

/*
 * svc_sign_pending() without a thread waiting for the signer or the
 * commit, for a step on the executor (the caller has entered, so no
 * reload runs meanwhile).  Returns 1 when under way: then(arg, r, kept)
 * follows on the executor, r and kept as svc_sign_pending() gives them.
 * Otherwise the result, with *ret_kept; a store shared with other
 * gateways, whose claim is a write of its own, is signed the waiting way
 * (then too: 1 is never returned).  The rare paths wait where they are:
 * a request failed for good is recorded with a write of its own.
 */
struct sign_op {
	struct sg_service *s;
	char id[SG_REQUEST_ID_SIZE];
	struct sg_request *q;
	struct sg_request_quorum v;
	struct svc_signed so;
	struct svc_sign_call sc;
	struct signed_job sj;
	struct svc_step step;
	int r, kept;
	void (*then)(void *, int, int);
	void *arg;
};

static void
sign_op_end(struct sign_op *op)
{
	void (*then)(void *, int, int) = op->then;
	void *arg = op->arg;
	int r = op->r, kept = op->kept;

	svc_unclaim(op->s, op->id);
	svc_signed_clear(&op->so);
	sg_request_free(op->q);
	free(op);
	then(arg, r, kept);
}

static void
sign_op_recorded(void *arg)
{
	struct sign_op *op = arg;

	if (op->r == 0) {
		svc_count_signature(op->s, op->sc.kv);
		sg_log_info("request %s signed with key %s", op->id,
		    op->q->key);
		svc_notify(op->s, op->id);
	}
	sign_op_end(op);
}

static void
sign_op_stored(void *arg, int result, int kept)
{
	struct sign_op *op = arg;

	op->r = result;
	op->kept = kept;
	svc_exec(op->s, &op->step, sign_op_recorded, op);
}

static void
sign_op_signed(void *arg)
{
	struct sign_op *op = arg;

	if ((op->r = op->sc.r) != 0) {
		if (op->r == SG_ERR_VERIFY || op->r == SG_ERR_FORBIDDEN ||
		    op->so.tsa_failed)
			svc_fail_request(op->s, op->id, op->sc.err);
		sign_op_end(op);
		return;
	}
	op->sj.s = op->s;
	op->sj.id = op->id;
	op->sj.kv = op->sc.kv;
	op->sj.o = &op->so;
	if ((op->r = sg_store_write_async(op->s->store, job_signed, &op->sj,
	    sign_op_stored, op)) != 0)
		sign_op_end(op);
}

int
svc_sign_pending_async(struct sg_service *s, const char *id,
    void (*then)(void *, int, int), void *arg, int *ret_kept)
{
	struct sign_op *op;
	const struct sg_key_view *kv;
	char why[SG_SIGNER_ERR_MAX];
	int r;

	*ret_kept = 0;
	if (sg_store_shared(s->store))
		return svc_sign_pending(s, id, ret_kept);
	if (!svc_claim(s, id))
		return SG_ERR_CONFLICT;
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		svc_unclaim(s, id);
		return SG_ERR_NOMEM;
	}
	op->s = s;
	snprintf(op->id, sizeof(op->id), "%s", id);
	op->then = then;
	op->arg = arg;
	pthread_rwlock_rdlock(&s->plock);
	if ((r = sg_service_get(s, id, &op->q)) != 0 ||
	    !to_sign(s, op->q, &op->v, &r))
		goto fail;
	if ((kv = svc_statement_key(s, op->q, why, sizeof(why))) == NULL) {
		pthread_rwlock_unlock(&s->plock);
		svc_fail_request(s, id, why);
		sg_log_warn("request %s failed: %s", id, why);
		r = SG_ERR_NO_KEY;
		goto out;
	}
	op->sc.s = s;
	op->sc.kv = kv;
	op->sc.q = op->q;
	op->sc.o = &op->so;
	op->sc.then = sign_op_signed;
	op->sc.then_arg = op;
	if ((r = svc_sign_request_async(&op->sc, op->v.counted)) != 0) {
		sg_log_error("request %s: signing with key '%s' failed: %s "
		    "(%s)", id, kv->pk->name, sg_strerror(r), op->sc.err);
		pthread_rwlock_unlock(&s->plock);
		/* As the waiting way: a key that cannot sign fails it. */
		if (r == SG_ERR_VERIFY || r == SG_ERR_FORBIDDEN)
			svc_fail_request(s, id, op->sc.err);
		goto out;
	}
	pthread_rwlock_unlock(&s->plock);
	return 1;
fail:
	pthread_rwlock_unlock(&s->plock);
out:
	svc_unclaim(s, id);
	sg_request_free(op->q);
	free(op);
	return r;
}

/*
 * Signs a pending request whose quorum holds.  Returns 0 when the request
 * is signed (by us or by someone else meanwhile), or an error; the request
 * then stays pending.
 */
static int
sign_pending(struct sg_service *s, const char *id, int *ret_kept, int unheld)
{
	struct sg_request *q = NULL;
	struct sg_request_quorum v;
	const struct sg_key_view *kv;
	char why[SG_SIGNER_ERR_MAX];
	int r;

	if (ret_kept != NULL)
		*ret_kept = 0;
	if (!claim(s, id, unheld))
		return SG_ERR_CONFLICT;
	if ((r = sg_service_get(s, id, &q)) != 0 || !to_sign(s, q, &v, &r))
		goto out;
	/* Shared with other gateways: their claim first, then the request
	 * as it is once this gateway holds it. */
	if (sg_store_shared(s->store)) {
		if (!svc_claim_db(s, id)) {
			r = SG_ERR_CONFLICT;
			goto out;
		}
		sg_request_free(q);
		q = NULL;
		if ((r = sg_service_get(s, id, &q)) != 0 ||
		    !to_sign(s, q, &v, &r))
			goto out;
	}
	if ((kv = svc_statement_key(s, q, why, sizeof(why))) == NULL) {
		svc_fail_request(s, id, why);
		sg_log_warn("request %s failed: %s", id, why);
		r = SG_ERR_NO_KEY;
		goto out;
	}
	r = sign_and_record(s, q, kv, v.counted, ret_kept);
out:
	svc_unclaim(s, id);
	sg_request_free(q);
	return r;
}

int
svc_sign_pending(struct sg_service *s, const char *id, int *ret_kept)
{
	return sign_pending(s, id, ret_kept, 0);
}

int
svc_sign_unheld(struct sg_service *s, const char *id)
{
	return sign_pending(s, id, NULL, 1);
}
