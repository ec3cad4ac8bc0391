/*
 * PKCS#11 signing: mechanisms, worker threads and deadlines, and recovery.
 *
 * Recovery (sg_p11_sign).  After CKR_SESSION_HANDLE_INVALID,
 * CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, CKR_DEVICE_ERROR,
 * CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED, CKR_USER_NOT_LOGGED_IN,
 * a stale key handle, or CKR_OPERATION_ACTIVE, the call closes its session
 * and every idle one (they died with the token, or soon will), opens a new
 * session (finding the slot again by label and serial if it moved), logs in
 * with the PIN kept for that purpose in a locked, non-dumpable, wipe-on-fork
 * page, finds every key of the token again by label/id (a token reset or a
 * logout changes object handles), and retries the operation once.  The
 * re-open itself is tried twice, except after a refused PIN: retrying a
 * wrong PIN would lock the token.  One token recovers one call at a time
 * (recover_lock); calls that failed meanwhile on the old generation only
 * take a new session.  If the retry fails too, the call returns
 * SG_ERR_UNAVAILABLE and the token is marked broken: the next call recovers
 * first, before it signs, so no restart is ever needed.  A call that starts
 * on a broken token and still cannot recover escalates once to
 * re-initialising the whole module (C_Finalize + C_Initialize): SoftHSM, for
 * one, never sees a token again that vanished under it until then.  That
 * needs every other call out of the module: each call passes a gate (a
 * counter under a mutex) and the re-initialisation shuts it, waits a
 * bounded time for the calls inside to leave, and gives up otherwise; it
 * happens at most once per P11_REINIT_MIN_SEC and never while a call is
 * stuck inside the module.  Failures and recoveries are logged as warnings,
 * at most one a second per token (a failing token fails every call), with
 * a count of those held back.
 *
 * Deadlines.  A wedged device can make any PKCS#11 call block forever, and
 * nothing can interrupt a thread inside a module.  So each sg_p11_sign
 * (its recovery included) runs on a worker thread from a small pool, and
 * the caller waits on a condition variable until the deadline (5 s unless
 * SG_P11_DEADLINE_MS or sg_p11_set_deadline say otherwise) and then returns
 * SG_ERR_TIMEOUT.  The trade-off: a timed-out worker is abandoned, not
 * killed.  It keeps its thread, its session and its place inside the gate
 * until the module returns, if ever; then it closes that session (never
 * reused: its state is unknown) and goes back to the pool.  The input is
 * copied to the worker so that an abandoned call never reads the caller's
 * memory.  At most P11_MAX_STUCK calls may be stuck at once; beyond that
 * calls fail at once with SG_ERR_UNAVAILABLE instead of piling up threads,
 * and while any is stuck the module cannot be re-initialised.  A timeout
 * marks the token broken, so the next call starts with a fresh session.
 * The hand-over costs two thread wake-ups per signature; deadline 0 signs
 * on the caller's thread without any bound, and so does a key that needs
 * a login on a PIN pad before each signature (a person is typing).
 *
 * Batches (sg_p11_sign_many).  A release's artifacts come to the signer
 * in batches of up to 64 digests for one key; paying the hand-over per
 * signature was a fifth of the signer's time.  So a batch is ONE job: its
 * worker runs the C_Sign calls one after another on one session, each
 * with the recovery and single retry of a single call, and stops at the
 * first failure.  Its deadline is the per-call one for the first
 * signature plus at most P11_MANY_ITEM_MS (or the per-call deadline, if
 * smaller) for each further one, never above P11_DEADLINE_MAX_MS: a hung
 * batch of 64 is given up after 5 s + 63 * 250 ms by default.  Its inputs
 * and results live in a heap block of its own (struct p11_many): the
 * caller copies its digests in and the signatures out, and when the batch
 * is abandoned the block becomes the worker's, which frees it when the
 * module returns; so an abandoned batch never touches the caller's
 * memory, counts as one stuck call, and marks the token broken like any
 * timeout.  A batch stays inside the gate for all its signatures, so a
 * module re-initialisation waits for it (or gives up after
 * P11_REINIT_WAIT_MS, as for any slow call).
 * Start-up work (loading, opening tokens, finding keys) runs on the
 * caller's thread.  sg_p11_free
 * waits up to P11_FREE_WAIT_SEC for stuck calls; if one never returns, the
 * last worker to leave finalises the module and frees everything.
 *
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_p11.h"
#include "sg_util.h"
#include "p11_int.h"

/* DER DigestInfo prefixes for PKCS#1 v1.5 (RFC 8017, section 9.2). */
static const uint8_t DIGESTINFO_SHA256[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};
static const uint8_t DIGESTINFO_SHA384[] = {
	0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30,
};
static const uint8_t DIGESTINFO_SHA512[] = {
	0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40,
};
#define DIGESTINFO_PREFIX_LEN sizeof(DIGESTINFO_SHA256)
/* A whole DigestInfo: the prefix and the longest digest. */
#define P11_DIGESTINFO_MAX (DIGESTINFO_PREFIX_LEN + SG_MAX_DIGEST)
_Static_assert(P11_DIGESTINFO_MAX <= P11_JOB_IN_MAX,
    "a worker's input buffer holds a DigestInfo");

/*
 * A batch (sg_p11_sign_many): its inputs as the module takes them and its
 * results, in heap memory of its own.  The caller owns it until a worker
 * is abandoned with it; from then on that worker does, and frees it when
 * the module returns.
 */
struct p11_many {
	size_t n;
	size_t in_len[SG_P11_MANY_MAX];
	uint8_t in[SG_P11_MANY_MAX][P11_DIGESTINFO_MAX];
	CK_ULONG out_len[SG_P11_MANY_MAX];
	uint8_t out[SG_P11_MANY_MAX][SG_MAX_SIG];
	int r[SG_P11_MANY_MAX];
};

static void
many_free(struct p11_many *m)
{
	if (m == NULL)
		return;
	explicit_bzero(m, sizeof(*m));
	free(m);
}

/* ---- recovery ---- */

#define P11_NEED_REINIT 1	/* internal: token_recover asks for it */

static int
job_abandoned(const struct p11_job *j)
{
	return j->abandoned != NULL && atomic_load(j->abandoned);
}

/*
 * Finds every key of the token again: handles change when a token is
 * reset, and a logout invalidates private-object handles.  A module error
 * on any key fails the whole re-open (it is tried again, and no key is
 * left with a stale handle by a passing fault); another key that is simply
 * gone keeps its old handle and fails on its own use.
 */
static int
refind_keys(struct sg_p11_token *t, struct sg_p11_key *want,
    CK_SESSION_HANDLE s, CK_RV *ret_rv)
{
	struct sg_p11_key *k, *head;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r;

	*ret_rv = CKR_OK;
	pthread_mutex_lock(&t->lock);
	head = t->keys;
	pthread_mutex_unlock(&t->lock);
	/* Keys are only ever prepended: the list from head is stable. */
	for (k = head; k != NULL; k = k->next) {
		h = CK_INVALID_HANDLE;
		if ((r = p11_find_private(k, s, &h, &rv)) == 0) {
			atomic_store(&k->handle, h);
			continue;
		}
		if (k == want || rv != CKR_OK) {
			*ret_rv = rv;
			return r;
		}
		p11_token_warn(t, "a key (%.*s) was not found again: %s",
		    (int)(k->by_label ? k->label_len : 0),
		    (const char *)k->label, sg_strerror(r));
	}
	return 0;
}

/*
 * One re-open: closes every idle session, opens a new one (finding the
 * slot again if the token moved), logs in, finds the keys again.  On
 * failure *ret_rv is the module's answer, if it gave one.
 */
static int
token_reopen(struct sg_p11_token *t, struct sg_p11_key *k,
    struct p11_sess *s, CK_RV *ret_rv)
{
	CK_RV rv = CKR_OK;
	int r;

	*ret_rv = CKR_OK;
	p11_session_purge_idle(t);
	if ((r = p11_session_get(t, s, &rv)) != 0) {
		if (rv == CKR_OK || !p11_rv_recoverable(rv) ||
		    p11_token_find_slot(t) != 0 ||
		    (r = p11_session_get(t, s, &rv)) != 0) {
			*ret_rv = rv;
			return r == SG_ERR_TIMEOUT ? r : SG_ERR_UNAVAILABLE;
		}
	}
	if (t->login && (rv = p11_token_login(t, s->h, CKU_USER)) != CKR_OK) {
		r = p11_rv_pin_refused(rv) ? SG_ERR_PIN : SG_ERR_UNAVAILABLE;
		goto fail;
	}
	if ((r = refind_keys(t, k, s->h, &rv)) != 0) {
		p11_token_warn(t, "the key was not found again: %s (%s)",
		    sg_strerror(r), sg_p11_rv_name(rv));
		r = SG_ERR_UNAVAILABLE;
		goto fail;
	}
	return 0;
fail:
	p11_session_drop(t, *s);
	s->h = CK_INVALID_HANDLE;
	*ret_rv = rv;
	return r;
}

static int
reinit_allowed(struct sg_p11 *p)
{
	long long last = atomic_load(&p->reinit_ms);

	return last == 0 || sg_mono_ms() - last >= P11_REINIT_MIN_SEC * 1000LL;
}

/*
 * Drops *s, then brings the token back: a new session, a login, the keys
 * found again.  seen_gen is the generation of the session that failed
 * (0: none); if another call recovered since, a new session is enough.
 * Returns P11_NEED_REINIT when may_reinit is set and re-opening failed in
 * a way a re-initialised module might cure.
 */
static int
token_recover(struct sg_p11_token *t, struct sg_p11_key *k,
    const struct p11_job *j, struct p11_sess *s, unsigned long seen_gen,
    int may_reinit)
{
	CK_RV rv = CKR_OK;
	int r = SG_ERR_UNAVAILABLE, tries;

	if (s->h != CK_INVALID_HANDLE) {
		p11_session_drop(t, *s);
		s->h = CK_INVALID_HANDLE;
	}
	pthread_mutex_lock(&t->recover_lock);
	if (job_abandoned(j)) {
		r = SG_ERR_TIMEOUT;
		goto out;
	}
	if (seen_gen != 0 && seen_gen != p11_token_gen(t) &&
	    !atomic_load(&t->broken) && p11_session_get(t, s, &rv) == 0) {
		r = 0;
		goto out;
	}
	for (tries = 0; tries < 2; tries++) {
		if (tries > 0 && job_abandoned(j)) {
			r = SG_ERR_TIMEOUT;
			break;
		}
		if ((r = token_reopen(t, k, s, &rv)) == 0) {
			if (atomic_exchange(&t->broken, 0))
				sg_log_info("token %s: recovered",
				    t->info.label);
			goto out;
		}
		p11_token_warn(t, "re-opening failed: %s (%s)", sg_strerror(r),
		    sg_p11_rv_name(rv));
		if (r == SG_ERR_PIN || r == SG_ERR_TIMEOUT)
			break;
		if (may_reinit && reinit_allowed(t->p11)) {
			r = P11_NEED_REINIT;
			goto out;
		}
	}
	atomic_store(&t->broken, 1);
out:
	pthread_mutex_unlock(&t->recover_lock);
	return r;
}

/*
 * Finalises and initialises the module again; the caller holds no lock.
 * Every token starts a new generation with an empty pool (their sessions
 * died with the module) and is marked broken, so that its next call logs
 * in and finds its keys again.
 */
static int
module_reinit(struct sg_p11 *p, const struct p11_job *j)
{
	struct sg_p11_token *t;
	struct timespec until;
	CK_C_INITIALIZE_ARGS args;
	size_t stuck;
	CK_RV rv;
	int r;

	pthread_mutex_lock(&p->wlock);
	stuck = p->nstuck;
	pthread_mutex_unlock(&p->wlock);
	if (stuck > 0) {
		/* Finalising under a call still inside the module would pull
		 * its session out from under it. */
		sg_log_warn("PKCS#11 module: not re-initialised: %zu calls "
		    "still inside it", stuck);
		return SG_ERR_UNAVAILABLE;
	}
	sg_mono_deadline(&until, P11_REINIT_WAIT_MS);
	if (j->deadline.tv_sec != 0 && p11_ts_before(&j->deadline, &until))
		until = j->deadline;
	if ((r = p11_gate_shut(p, &until)) == SG_ERR_CONFLICT)
		return 0;	/* another call just did it */
	if (r != 0) {
		sg_log_warn("PKCS#11 module: not re-initialised: calls did "
		    "not leave it in time");
		return SG_ERR_UNAVAILABLE;
	}
	if (!reinit_allowed(p)) {
		p11_gate_open(p);
		return 0;
	}
	sg_log_warn("PKCS#11 module: finalising and initialising it again");
	if (p->initialized)
		(void)p->f->C_Finalize(NULL);
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = p11_note_rv(p->f->C_Initialize(&args));
	p->initialized = rv == CKR_OK;
	atomic_store(&p->reinit_ms, sg_mono_ms());
	for (t = p->tokens; t != NULL; t = t->next) {
		pthread_mutex_lock(&t->lock);
		t->nopen -= t->nidle;
		t->nidle = 0;
		t->gen++;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		atomic_store(&t->broken, 1);
		if (rv == CKR_OK && p11_token_find_slot(t) != 0)
			sg_log_warn("token %s (serial %s) is not there after "
			    "re-initialising the module", t->info.label,
			    t->info.serial);
	}
	p11_gate_open(p);
	if (rv != CKR_OK) {
		sg_log_warn("PKCS#11 module: C_Initialize: %s",
		    sg_p11_rv_name(rv));
		return SG_ERR_UNAVAILABLE;
	}
	return 0;
}

/* token_recover, escalating to module_reinit when it asks; the caller is
 * inside the gate, and is inside it again on return. */
static int
recover(struct sg_p11_token *t, struct sg_p11_key *k,
    const struct p11_job *j, struct p11_sess *s, unsigned long seen_gen,
    int may_reinit)
{
	struct sg_p11 *p = t->p11;
	int r;

	r = token_recover(t, k, j, s, seen_gen, may_reinit);
	if (r != P11_NEED_REINIT)
		return r;
	p11_gate_leave(p);
	r = module_reinit(p, j);
	p11_gate_enter(p);
	if (r != 0) {
		atomic_store(&t->broken, 1);
		return r;
	}
	return token_recover(t, k, j, s, 0, 0);
}

/* ---- signing ---- */

/* One C_SignInit + C_Sign. */
static CK_RV
sign_once(struct sg_p11_key *k, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
    const uint8_t *in, size_t in_len, uint8_t *out, CK_ULONG *io_len)
{
	CK_FUNCTION_LIST *f = k->token->p11->f;
	CK_RV rv;

	rv = f->C_SignInit(s, mech, (CK_OBJECT_HANDLE)atomic_load(&k->handle));
	if (rv != CKR_OK)
		return p11_note_rv(rv);
	if (k->always_auth &&
	    (rv = p11_token_login(k->token, s, CKU_CONTEXT_SPECIFIC)) != CKR_OK)
		return rv;
	return p11_note_rv(f->C_Sign(s, (CK_BYTE *)in, in_len, out, io_len));
}

/*
 * A session for a signing call (the gate entered): a call that starts on
 * a broken token (or cannot get a session) recovers first, which does not
 * use up its retry.
 */
static int
job_begin(struct p11_job *j, struct p11_sess *s)
{
	struct sg_p11_key *k = j->k;
	struct sg_p11_token *t = k->token;
	CK_RV rv = CKR_GENERAL_ERROR;
	int r;

	if (atomic_load(&t->broken)) {
		p11_token_warn(t, "recovering before signing");
		return recover(t, k, j, s, 0, 1);
	}
	if ((r = p11_session_get(t, s, &rv)) != 0 && p11_rv_recoverable(rv)) {
		p11_token_warn(t, "%s, opening a new session",
		    sg_p11_rv_name(rv));
		r = recover(t, k, j, s, 0, 0);
	}
	return r;
}

/*
 * One signature of in into out (j->out_cap bytes) on *s, which a recovery
 * replaces: the operation is retried at most once, after a recovery.
 */
static int
job_sign(struct p11_job *j, struct p11_sess *s, const uint8_t *in,
    size_t in_len, uint8_t *out, CK_ULONG *out_len)
{
	struct sg_p11_key *k = j->k;
	struct sg_p11_token *t = k->token;
	CK_RV rv;
	int r, recovered = 0;

	for (;;) {
		if (job_abandoned(j))
			return SG_ERR_TIMEOUT;
		*out_len = j->out_cap;
		rv = sign_once(k, s->h, &j->mech, in, in_len, out, out_len);
		if (rv == CKR_OK)
			break;
		if (!p11_rv_recoverable(rv))
			return p11_rv_to_err(rv);
		if (recovered) {
			p11_token_warn(t, "%s again after recovering",
			    sg_p11_rv_name(rv));
			atomic_store(&t->broken, 1);
			return SG_ERR_UNAVAILABLE;
		}
		recovered = 1;
		p11_token_warn(t, "%s, opening a new session and logging in "
		    "again", sg_p11_rv_name(rv));
		if ((r = recover(t, k, j, s, s->gen, 0)) != 0)
			return r;
	}
	return *out_len == k->sig_len ? 0 : SG_ERR_HSM;
}

/* A batch's items one after another on one session, each with the
 * recovery of a single call; the first failure ends it. */
static int
job_sign_many(struct p11_job *j, struct p11_sess *s)
{
	struct p11_many *m = j->many;
	size_t i;
	int r;

	for (i = 0; i < m->n; i++) {
		r = job_sign(j, s, m->in[i], m->in_len[i], m->out[i],
		    &m->out_len[i]);
		m->r[i] = r;
		if (r != 0)
			return r;
	}
	return 0;
}

/*
 * The whole signing call (one signature, or a batch), recovery included;
 * runs on a worker (or on the caller's thread without a deadline).
 */
static void
job_run(struct p11_job *j)
{
	struct sg_p11_token *t = j->k->token;
	struct sg_p11 *p = t->p11;
	struct p11_sess s = { CK_INVALID_HANDLE, 0 };
	size_t i;
	int r;

	p11_tl_last_rv = CKR_OK;
	if (j->many != NULL)
		for (i = 0; i < j->many->n; i++)
			j->many->r[i] = SG_ERR_BUFFER;	/* not attempted */
	p11_gate_enter(p);
	if ((r = job_begin(j, &s)) != 0) {
		if (j->many != NULL)
			j->many->r[0] = r;
	} else if (j->many != NULL)
		r = job_sign_many(j, &s);
	else
		r = job_sign(j, &s, j->in, j->in_len, j->out, &j->out_len);
	if (s.h != CK_INVALID_HANDLE) {
		/* An abandoned call's session is in an unknown state. */
		if (r == 0 && !job_abandoned(j))
			p11_session_put(t, s);
		else
			p11_session_drop(t, s);
	}
	p11_gate_leave(p);
	j->r = r;
	j->last_rv = p11_tl_last_rv;
}

static void
worker_to_idle(struct sg_p11 *p, struct p11_worker *w)
{
	explicit_bzero(w->in, P11_JOB_IN_MAX);
	explicit_bzero(&w->job, sizeof(w->job));
	w->state = W_IDLE;
	w->next_idle = p->idle;
	p->idle = w;
	pthread_cond_broadcast(&p->wcond);
}

static void *
worker_main(void *arg)
{
	struct p11_worker *w = arg;
	struct sg_p11 *p = w->p;
	int last;

	pthread_mutex_lock(&p->wlock);
	for (;;) {
		while (w->state != W_ASSIGNED && !p->closing)
			pthread_cond_wait(&w->cond, &p->wlock);
		if (w->state != W_ASSIGNED)
			break;
		pthread_mutex_unlock(&p->wlock);
		job_run(&w->job);
		pthread_mutex_lock(&p->wlock);
		if (atomic_load(&w->abandoned)) {
			/* Its caller gave up long ago; the worker is free. */
			atomic_store(&w->abandoned, 0);
			p->nstuck--;
			many_free(w->job.many);
			w->job.many = NULL;
			sg_log_warn("a PKCS#11 call returned after its deadline "
			    "(%zu still stuck)", p->nstuck);
			worker_to_idle(p, w);
		} else {
			w->state = W_DONE;
			pthread_cond_broadcast(&w->cond);
		}
	}
	p->nworkers--;
	pthread_cond_broadcast(&p->wcond);
	last = p->orphaned && p->nworkers == 0;
	pthread_mutex_unlock(&p->wlock);
	if (last)
		p11_destroy(p);
	return NULL;
}

/*
 * A new worker thread, not on the idle list.  Called with p->wlock held
 * and a place reserved in p->nworkers; drops the lock while the thread
 * starts, so that callers arriving together start theirs together.
 */
static int
worker_new(struct sg_p11 *p, struct p11_worker **ret)
{
	struct p11_worker *w;
	pthread_attr_t attr;
	pthread_t th;
	int e = ENOMEM;

	pthread_mutex_unlock(&p->wlock);
	if ((w = calloc(1, sizeof(*w))) != NULL &&
	    (w->in = malloc(P11_JOB_IN_MAX)) != NULL &&
	    p11_cond_init_mono(&w->cond) == 0) {
		w->p = p;
		w->state = W_IDLE;
		atomic_init(&w->abandoned, 0);
		e = EAGAIN;
		if (pthread_attr_init(&attr) == 0) {
			(void)pthread_attr_setdetachstate(&attr,
			    PTHREAD_CREATE_DETACHED);
			e = pthread_create(&th, &attr, worker_main, w);
			pthread_attr_destroy(&attr);
		}
		if (e != 0)
			pthread_cond_destroy(&w->cond);
	}
	pthread_mutex_lock(&p->wlock);
	if (e != 0) {
		p->nworkers--;
		pthread_cond_broadcast(&p->wcond);
		sg_log_warn("cannot start a PKCS#11 worker thread: %s",
		    strerror(e));
		if (w != NULL)
			free(w->in);
		free(w);
		return SG_ERR_UNAVAILABLE;
	}
	w->next = p->workers;
	p->workers = w;
	*ret = w;
	return 0;
}

/*
 * Runs j on a worker and waits for it until the deadline.  On
 * SG_ERR_TIMEOUT the worker is left to finish alone; its outputs are never
 * read, and j's are untouched, except that a batch handed over belongs to
 * the worker from then on (j->many is set to NULL).
 */
static int
job_submit(struct sg_p11 *p, struct p11_job *j, unsigned int ms)
{
	struct p11_worker *w = NULL;
	struct timespec deadline;
	int e, r;

	sg_mono_deadline(&deadline, ms);
	if (j->in_len > P11_JOB_IN_MAX)
		return SG_ERR_TOO_LARGE;
	pthread_mutex_lock(&p->wlock);
	if (p->nstuck >= P11_MAX_STUCK) {
		pthread_mutex_unlock(&p->wlock);
		return SG_ERR_UNAVAILABLE;
	}
	while ((w = p->idle) == NULL) {
		if (p->nworkers < P11_MAX_WORKERS) {
			p->nworkers++;
			if ((r = worker_new(p, &w)) != 0) {
				pthread_mutex_unlock(&p->wlock);
				return r;
			}
			break;
		}
		e = pthread_cond_timedwait(&p->wcond, &p->wlock, &deadline);
		if (e == ETIMEDOUT && p->idle == NULL) {
			pthread_mutex_unlock(&p->wlock);
			return SG_ERR_TIMEOUT;
		}
	}
	if (w == p->idle)
		p->idle = w->next_idle;
	w->next_idle = NULL;
	/* The worker gets its own copy: an abandoned call must never read
	 * the caller's memory. */
	w->job = *j;
	if (j->in_len > 0)
		memcpy(w->in, j->in, j->in_len);
	w->job.in = w->in;
	if (j->mech.pParameter == &j->pss)
		w->job.mech.pParameter = &w->job.pss;
	w->job.deadline = deadline;
	w->job.abandoned = &w->abandoned;
	w->state = W_ASSIGNED;
	pthread_cond_broadcast(&w->cond);
	while (w->state != W_DONE) {
		e = pthread_cond_timedwait(&w->cond, &p->wlock, &deadline);
		if (e == ETIMEDOUT && w->state != W_DONE) {
			atomic_store(&w->abandoned, 1);
			p->nstuck++;
			j->many = NULL;	/* the worker's now */
			pthread_mutex_unlock(&p->wlock);
			return SG_ERR_TIMEOUT;
		}
	}
	j->r = w->job.r;
	j->last_rv = w->job.last_rv;
	j->out_len = w->job.out_len;
	if (j->r == 0)
		memcpy(j->out, w->job.out, w->job.out_len);
	worker_to_idle(p, w);
	pthread_mutex_unlock(&p->wlock);
	return 0;
}

/* sg_p11_sign's arguments, as far as they can be judged without the
 * token. */
static int
sign_args_check(const struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    const uint8_t *sig, size_t cap, const size_t *ret_sig_len)
{
	size_t dlen;

	if (k == NULL || sig == NULL || ret_sig_len == NULL ||
	    (data == NULL && data_len != 0))
		return SG_ERR_INVALID;
	if (!sg_scheme_fits(k->alg, scheme))
		return SG_ERR_MECHANISM;
	if (scheme == SG_SIG_EDDSA) {
		if (digest_alg != SG_DIGEST_NONE)
			return SG_ERR_INVALID;
		if (data_len > P11_MAX_MESSAGE)
			return SG_ERR_TOO_LARGE;
	} else {
		dlen = sg_digest_len(digest_alg);
		if (dlen == 0 || dlen > SG_MAX_DIGEST || data_len != dlen)
			return SG_ERR_INVALID;
	}
	if (scheme != SG_SIG_ECDSA && cap < k->sig_len)
		return SG_ERR_BUFFER;
	return 0;
}

/* CKM_RSA_PKCS signs a DER DigestInfo: j's digest behind its prefix, in
 * `in` (P11_DIGESTINFO_MAX bytes). */
static int
job_rsa_pkcs1(struct p11_job *j, enum sg_digest_alg digest_alg, uint8_t *in)
{
	const uint8_t *prefix;

	switch (digest_alg) {
	case SG_DIGEST_SHA256:
		prefix = DIGESTINFO_SHA256;
		break;
	case SG_DIGEST_SHA384:
		prefix = DIGESTINFO_SHA384;
		break;
	case SG_DIGEST_SHA512:
		prefix = DIGESTINFO_SHA512;
		break;
	default:
		return SG_ERR_INVALID;
	}
	memcpy(in, prefix, DIGESTINFO_PREFIX_LEN);
	memcpy(in + DIGESTINFO_PREFIX_LEN, j->in, j->in_len);
	j->in = in;
	j->in_len += DIGESTINFO_PREFIX_LEN;
	j->mech.mechanism = CKM_RSA_PKCS;
	return 0;
}

/* CKM_RSA_PKCS_PSS over j's digest: MGF1 with the same hash, and a salt
 * as long as the digest. */
static int
job_rsa_pss(struct p11_job *j, enum sg_digest_alg digest_alg)
{
	switch (digest_alg) {
	case SG_DIGEST_SHA256:
		j->pss.hashAlg = CKM_SHA256;
		j->pss.mgf = CKG_MGF1_SHA256;
		break;
	case SG_DIGEST_SHA384:
		j->pss.hashAlg = CKM_SHA384;
		j->pss.mgf = CKG_MGF1_SHA384;
		break;
	case SG_DIGEST_SHA512:
		j->pss.hashAlg = CKM_SHA512;
		j->pss.mgf = CKG_MGF1_SHA512;
		break;
	default:
		return SG_ERR_INVALID;
	}
	j->pss.sLen = j->in_len;
	j->mech.mechanism = CKM_RSA_PKCS_PSS;
	j->mech.pParameter = &j->pss;
	j->mech.ulParameterLen = sizeof(j->pss);
	return 0;
}

/* The signing job for data with k: mechanism, its parameters, the input
 * (built in `in`, P11_DIGESTINFO_MAX bytes, where it is not data). */
static int
job_prepare(struct p11_job *j, struct sg_p11_key *k,
    enum sg_sig_scheme scheme, enum sg_digest_alg digest_alg,
    const uint8_t *data, size_t data_len, uint8_t *in)
{
	int r = 0;

	memset(j, 0, sizeof(*j));
	j->k = k;
	j->in = data;
	j->in_len = data_len;
	switch (scheme) {
	case SG_SIG_ECDSA:
		j->mech.mechanism = CKM_ECDSA;
		break;
	case SG_SIG_RSA_PKCS1:
		r = job_rsa_pkcs1(j, digest_alg, in);
		break;
	case SG_SIG_RSA_PSS:
		r = job_rsa_pss(j, digest_alg);
		break;
	case SG_SIG_EDDSA:
		j->mech.mechanism = CKM_EDDSA;
		break;
	default:
		r = SG_ERR_MECHANISM;
		break;
	}
	if (r != 0)
		return r;
	if (j->in == NULL)
		j->in = in;	/* an empty EdDSA message; modules want a pointer */
	/* ECDSA comes back as r||s, and becomes DER in sig_output. */
	j->out_cap = scheme == SG_SIG_ECDSA ? SG_ECDSA_RAW_MAX :
	    sizeof(j->out);
	return 0;
}

/*
 * Runs j on a worker, bounded by the deadline; on this thread when there
 * is none, or when the key wants a login on a PIN pad before each
 * signature: that waits for a person, and no deadline fits.
 */
static int
job_dispatch(struct sg_p11_token *t, struct p11_job *j)
{
	unsigned int ms = atomic_load(&t->p11->deadline_ms);
	unsigned long long total;
	int r;

	if (ms == 0 || (j->k->always_auth && !t->has_pin)) {
		job_run(j);
		return 0;
	}
	if (j->many != NULL && j->many->n > 1) {
		/* A batch: the deadline for its first signature, and at most
		 * P11_MANY_ITEM_MS more for each further one. */
		total = ms + (unsigned long long)(j->many->n - 1) *
		    (ms < P11_MANY_ITEM_MS ? ms : P11_MANY_ITEM_MS);
		ms = total > P11_DEADLINE_MAX_MS ? P11_DEADLINE_MAX_MS :
		    (unsigned int)total;
	}
	if ((r = job_submit(t->p11, j, ms)) == SG_ERR_TIMEOUT) {
		/* The next call starts on a fresh session. */
		atomic_store(&t->broken, 1);
		p11_token_warn(t, "no answer within %u ms", ms);
	}
	return r;
}

/* A signature the module gave (out, out_len bytes), into sig (cap
 * bytes): DER for ECDSA, as the module gave it for the others. */
static int
sig_output(enum sg_sig_scheme scheme, const uint8_t *out, size_t out_len,
    uint8_t *sig, size_t cap, size_t *ret_sig_len)
{
	if (scheme == SG_SIG_ECDSA)
		return sg_ecdsa_raw_to_der(out, out_len, sig, cap,
		    ret_sig_len);
	if (out_len > cap)
		return SG_ERR_BUFFER;
	memcpy(sig, out, out_len);
	*ret_sig_len = out_len;
	return 0;
}

int
sg_p11_sign(struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    uint8_t *sig, size_t cap, size_t *ret_sig_len)
{
	struct p11_job job;
	uint8_t in[P11_DIGESTINFO_MAX];
	int r;

	p11_tl_last_rv = CKR_OK;
	if ((r = sign_args_check(k, scheme, digest_alg, data, data_len, sig,
	    cap, ret_sig_len)) != 0)
		return r;
	if ((r = job_prepare(&job, k, scheme, digest_alg, data, data_len,
	    in)) != 0 ||
	    (r = job_dispatch(k->token, &job)) != 0)
		goto out;
	p11_tl_last_rv = job.last_rv;
	if ((r = job.r) == 0)
		r = sig_output(scheme, job.out, job.out_len, sig, cap,
		    ret_sig_len);
out:
	explicit_bzero(in, sizeof(in));
	explicit_bzero(&job, sizeof(job));
	return r;
}

/* Item i's input, as the module takes it, into m (the mechanism is the
 * same for every item: *j is item 0's job). */
static int
many_input(struct p11_many *m, size_t i, struct sg_p11_key *k,
    enum sg_sig_scheme scheme, enum sg_digest_alg digest_alg,
    const struct sg_p11_item *it)
{
	struct p11_job tmp;
	uint8_t in[P11_DIGESTINFO_MAX];
	int r;

	if (it->data_len > SG_MAX_DIGEST)
		return SG_ERR_TOO_LARGE;
	if ((r = sign_args_check(k, scheme, digest_alg, it->data,
	    it->data_len, it->sig, it->cap, &it->sig_len)) == 0 &&
	    (r = job_prepare(&tmp, k, scheme, digest_alg, it->data,
	    it->data_len, in)) == 0) {
		if (tmp.in_len > sizeof(m->in[i]))
			r = SG_ERR_TOO_LARGE;
		else {
			memcpy(m->in[i], tmp.in, tmp.in_len);
			m->in_len[i] = tmp.in_len;
		}
	}
	explicit_bzero(&tmp, sizeof(tmp));
	explicit_bzero(in, sizeof(in));
	return r;
}

/* The items' results from a batch that ran: in order, up to the first
 * failure; the items after it were not attempted. */
static int
many_output(const struct p11_many *m, enum sg_sig_scheme scheme,
    struct sg_p11_item *items)
{
	size_t i;
	int r = 0;

	for (i = 0; i < m->n && r == 0; i++) {
		if ((r = m->r[i]) == 0)
			r = sig_output(scheme, m->out[i], m->out_len[i],
			    items[i].sig, items[i].cap, &items[i].sig_len);
		items[i].status = r;
	}
	return r;
}

static void
items_status(struct sg_p11_item *items, size_t from, size_t n, int r)
{
	for (; from < n; from++) {
		items[from].status = r;
		items[from].sig_len = 0;
	}
}

int
sg_p11_sign_many(struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, struct sg_p11_item *items, size_t n)
{
	struct p11_job job;
	struct p11_many *m;
	uint8_t in[P11_DIGESTINFO_MAX];
	size_t i;
	int r = 0, bad = 0;

	p11_tl_last_rv = CKR_OK;
	if (items == NULL || n == 0 || n > SG_P11_MANY_MAX)
		return SG_ERR_INVALID;
	items_status(items, 0, n, SG_ERR_BUFFER);
	if (k == NULL || (m = calloc(1, sizeof(*m))) == NULL) {
		r = k == NULL ? SG_ERR_INVALID : SG_ERR_NOMEM;
		items_status(items, 0, n, r);
		return r;
	}
	/* An item the layer refuses ends the batch before it. */
	for (i = 0; i < n && r == 0; i++)
		r = many_input(m, i, k, scheme, digest_alg, &items[i]);
	if (r != 0) {
		items[i - 1].status = r;
		bad = 1;
		if ((m->n = i - 1) == 0)
			goto out;
	} else
		m->n = n;
	if ((r = job_prepare(&job, k, scheme, digest_alg, items[0].data,
	    items[0].data_len, in)) != 0) {
		items[0].status = r;
		goto out;
	}
	job.many = m;
	if ((r = job_dispatch(k->token, &job)) != 0) {
		if (job.many == NULL)
			m = NULL;	/* an abandoned worker frees it */
		items[0].status = r;
		goto out;
	}
	p11_tl_last_rv = job.last_rv;
	if ((r = many_output(m, scheme, items)) == 0 && bad)
		r = items[m->n].status;
out:
	explicit_bzero(in, sizeof(in));
	explicit_bzero(&job, sizeof(job));
	many_free(m);
	return r;
}
