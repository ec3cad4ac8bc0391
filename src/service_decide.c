/*
 * Decisions and cancellations on pending requests.
 *
 * A decision is an officer's DSSE envelope over the request's statement.
 * It is accepted by the rule the signer process and verifiers apply too
 * (sg_approval_accept: the envelope verifies under the officer's key, the
 * officer may decide on this request under its policy and the one in
 * force) and committed on its own with its log entry.  A veto ends the
 * request in the same transaction; a quorum has it signed right after
 * (service_sign.c), by this thread or, if that fails, the housekeeping
 * thread.
 *
 * A pending request may be cancelled by its requester or by an officer
 * who may approve it, with a reason; the transition is guarded like the
 * others, so a signature made meanwhile is never recorded nor released.
 * Both find an overdue request expired, record that and refuse.
 *
 * Locks: the public functions hold plock for reading throughout; the
 * write jobs take no lock.
 * Calls: quorum, sign, log, metrics, store, evidence, dsse, text.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_text.h"
#include "sg_util.h"
#include "service_int.h"

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
	int activated;                 /* a release's or grant's quorum */
	enum sg_kind kind;
};

/* The pending request id for a decision or cancellation (*ret).  An
 * overdue one is recorded as expired (and *expired set, *ret NULL): the
 * job then succeeds, and its caller refuses. */
static int
pending_request(struct sg_service *s, struct sg_txn *t, const char *id,
    struct sg_request **ret, int *expired, struct sg_fault *f)
{
	struct sg_request *q = NULL;
	int r;

	*ret = NULL;
	if ((r = sg_store_get_request(t, id, &q)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			svc_fault(f, NULL, "no request with id '%s'", id);
		return r;
	}
	if (q->state != SG_REQ_PENDING) {
		svc_fault(f, NULL, "request %s is %s, not pending", id,
		    sg_req_state_str(q->state));
		r = SG_ERR_CONFLICT;
	} else if (svc_now(s) >= q->expires_at) {
		svc_fault(f, NULL, "request %s has expired", id);
		*expired = 1;
		r = svc_finish_in(s, t, id, SG_REQ_EXPIRED, NULL);
	} else {
		*ret = q;
		q = NULL;
	}
	sg_request_free(q);
	return r;
}

/* Stores the accepted decision with its log entry. */
static int
record_decision(struct sg_txn *t, struct decide_job *dj, int64_t now)
{
	struct sg_entry e;
	int r;

	r = sg_store_add_approval(t, dj->id, dj->principal, dj->approve, now,
	    dj->envelope_json);
	if (r == SG_ERR_CONFLICT)
		svc_fault(dj->f, NULL, "'%s' has already decided on request %s",
		    dj->principal, dj->id);
	else if (r == SG_ERR_TOO_LARGE)
		svc_fault(dj->f, NULL, "request %s holds %d decisions, the "
		    "most one request can (its signature's evidence and log "
		    "entry carry no more); this one is refused", dj->id,
		    SG_ENVELOPES_MAX);
	if (r != 0)
		return r;
	svc_entry_head(&e, SG_ENTRY_DECISION, now, dj->id);
	snprintf(e.officer, sizeof(e.officer), "%s", dj->principal);
	e.approve = dj->approve;
	e.envelope = (char *)dj->envelope_json;
	e.envelope_len = strlen(dj->envelope_json);
	return svc_log_entry(dj->s, t, &e, NULL);
}

static int
job_decide(struct sg_txn *t, void *arg)
{
	struct decide_job *dj = arg;
	struct sg_service *s = dj->s;
	struct sg_fault *f = dj->f;
	struct sg_request *q = NULL;
	struct sg_policy *p = NULL;
	const struct sg_policy_key *pk;
	struct sg_policy_key kview;
	const struct sg_principal *officer;
	struct sg_approval_fault af;
	struct sg_quorum_result res;
	uint8_t counted[SG_ENVELOPES_MAX];
	int64_t now = svc_now(s);
	int owned = 0, r;

	if ((r = pending_request(s, t, dj->id, &q, &dj->expired, f)) != 0 ||
	    q == NULL)
		goto out;
	if ((r = svc_request_policy(s, t, q, &p, &owned)) != 0) {
		svc_fault(f, NULL, "the policy of request %s is not available",
		    dj->id);
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if ((pk = sg_policy_key(p, q->key)) == NULL) {
		svc_fault(f, NULL, "key '%s' is not in the request's policy",
		    q->key);
		r = SG_ERR_CONFLICT;
		goto out;
	}
	/* A release or grant is decided by the terms of its kind. */
	sg_policy_key_for_kind(pk, q->kind, &kview);
	pk = &kview;
	dj->kind = q->kind;
	/* The acceptance rule the signer process and verifiers apply too,
	 * under the request's policy and the policy in force (a reload may
	 * have revoked an officer). */
	if ((r = sg_approval_accept(p, pk, s->policy, q->requester,
	    q->statement, strlen(q->statement), dj->env, &officer,
	    &dj->approve, &af)) != 0) {
		svc_fault(f, af.field, "%s", af.why);
		goto out;
	}
	if ((r = record_decision(t, dj, now)) != 0)
		goto out;
	sg_request_free(q);
	q = NULL;
	if ((r = sg_store_get_request(t, dj->id, &q)) != 0)
		goto out;
	svc_evaluate(s, p, pk, q, &res, counted);
	if (res.state == SG_QUORUM_VETOED)
		r = svc_finish_in(s, t, dj->id, SG_REQ_REJECTED, NULL);
	else if (res.state == SG_QUORUM_MET && q->kind != SG_KIND_REQUEST) {
		/* Approved: logged with its evidence, in this transaction. */
		r = svc_log_approved(s, t, q, counted, now);
		dj->activated = r == 0;
	} else if (res.state == SG_QUORUM_MET)
		dj->sign_now = 1;
out:
	if (owned)
		sg_policy_free(p);
	sg_request_free(q);
	return r;
}

/*
 * The fault for the envelope parser's message err.  Most read "field:
 * reason", with one of the envelope's fields; "<member>: unknown field"
 * names a member the envelope may not have (its name escaped, so it may
 * hold ": " itself: the reason is taken from the end).  Any other message
 * ("not valid JSON: ...", "envelope must be a JSON object") is about the
 * envelope as a whole and names no field, whatever colons it holds.
 */
static void
envelope_fault(struct sg_fault *f, const char *err)
{
	static const char *const fields[] = { "payloadType", "payload",
	    "signatures", "signatures[0]", "signatures[0].keyid",
	    "signatures[0].sig", "signatures[0].webauthn",
	    "signatures[0].webauthn.credential_id",
	    "signatures[0].webauthn.authenticator_data",
	    "signatures[0].webauthn.client_data_json" };
	static const char unknown[] = ": unknown field";
	size_t n = strlen(err), k = sizeof(unknown) - 1, i;
	const char *sep;

	svc_fault(f, NULL, "%s", err);
	if (f == NULL)
		return;
	if (n > k && strcmp(err + n - k, unknown) == 0) {
		snprintf(f->field, sizeof(f->field), "%.*s", (int)(n - k), err);
		return;
	}
	if ((sep = strstr(err, ": ")) == NULL)
		return;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strlen(fields[i]) == (size_t)(sep - err) &&
		    strncmp(err, fields[i], sep - err) == 0) {
			snprintf(f->field, sizeof(f->field), "%s", fields[i]);
			return;
		}
	}
}

/* Parses the posted envelope, which must be by the connection's own
 * principal. */
static int
parse_envelope(const char *json, size_t len, const char *principal,
    struct sg_envelope *env, struct sg_fault *f)
{
	char err[256];

	if (sg_envelope_parse(json, len, env, err, sizeof(err)) != 0) {
		envelope_fault(f, err);
		return SG_ERR_INVALID;
	}
	if (strcmp(env->keyid, principal) != 0) {
		svc_fault(f, "signatures[0].keyid", "'%s' is not the principal "
		    "of this connection ('%s')", env->keyid, principal);
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

/* What the caller hears of the decision's write (r, kept). */
static int
decision_written(struct sg_service *s, const struct decide_job *dj, int r,
    int kept)
{
	if (r != 0 && kept) {
		svc_recorded_fault(dj->f, "the decision on request", dj->id,
		    "do not send it again");
		/* The quorum may hold: the housekeeping thread signs. */
		if (dj->sign_now)
			svc_retry_later(s, dj->id);
		svc_notify(s, dj->id);
		return SG_ERR_UNAVAILABLE;
	}
	if (r == 0 && dj->expired) {
		svc_stat_add(s, &s->stats.expired);
		svc_notify(s, dj->id);
		return SG_ERR_CONFLICT;
	}
	if (r == SG_ERR_UNAVAILABLE || r == SG_ERR_IO) {
		svc_fault(dj->f, NULL, "the decision could not be stored and "
		    "logged");
		return SG_ERR_UNAVAILABLE;
	}
	return r;
}

/* What the signing that followed the decision (r, kept) means for its
 * caller.  may_wait: a thread of the caller's own, which may wait for
 * another signer of the request. */
static int
signed_after(struct sg_service *s, const char *id, int r, int kept,
    int may_wait, struct sg_fault *f)
{
	if (r != 0 && kept) {
		svc_fault(f, NULL, "the decision was recorded and request %s "
		    "signed, but the transparency log has not signed a "
		    "checkpoint covering the signature yet; read the request "
		    "again shortly", id);
		f->recorded = 1;
		svc_notify(s, id);
		return SG_ERR_UNAVAILABLE;
	}
	/* The housekeeping thread (or another decision) may be signing it
	 * right now: the officer whose approval completed the quorum should
	 * see the result, so a thread of its own waits for that signer
	 * (bounded).  The executor's threads never wait: they are the ones
	 * that finish that signer's work; the answer then shows the request
	 * as it stands, and a long poll sees it signed. */
	if (r == SG_ERR_CONFLICT && may_wait)
		svc_wait_unclaimed(s, id, 30);
	if (r != 0 && r != SG_ERR_CONFLICT) {
		sg_log_warn("request %s: quorum met but not signed yet (%s); "
		    "will retry", id, sg_strerror(r));
		svc_retry_later(s, id);
	}
	return 0;
}

/* The decision completed the quorum: sign now, or leave it to the
 * housekeeping thread. */
static int
sign_decided(struct sg_service *s, const char *id, struct sg_fault *f)
{
	int kept = 0, r;

	r = svc_sign_pending(s, id, &kept);
	return signed_after(s, id, r, kept, 1, f);
}

/* Said and counted once the decision is stored. */
static void
decided(struct sg_service *s, const struct decide_job *dj)
{
	svc_stat_add(s, dj->approve ? &s->stats.approvals :
	    &s->stats.rejections);
	sg_log_info("request %s: %s by %s", dj->id, dj->approve ?
	    "approved" : "rejected", dj->principal);
	svc_notify(s, dj->id);
	if (dj->activated && dj->kind == SG_KIND_RELEASE)
		svc_releases_wake(s);
}

static int
decide_locked(struct sg_service *s, const char *id, const char *principal,
    const char *envelope_json, size_t len, struct sg_request **ret,
    struct sg_fault *f)
{
	struct sg_envelope env;
	struct decide_job dj;
	int r, kept = 0, held = 0;

	memset(&env, 0, sizeof(env));
	if ((r = parse_envelope(envelope_json, len, principal, &env, f)) != 0)
		goto out;
	held = svc_hold(s, id);
	memset(&dj, 0, sizeof(dj));
	dj.s = s;
	dj.id = id;
	dj.principal = principal;
	dj.env = &env;
	dj.envelope_json = envelope_json;
	dj.f = f;
	r = sg_store_write_kept(s->store, job_decide, &dj, &kept);
	if ((r = decision_written(s, &dj, r, kept)) != 0)
		goto out;
	decided(s, &dj);
	if (dj.sign_now && (r = sign_decided(s, id, f)) != 0)
		goto out;
	r = sg_service_get(s, id, ret);
out:
	if (held)
		svc_unhold(s, id);
	sg_envelope_clear(&env);
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

/*
 * A decision without a thread waiting: stored, then (when it completed
 * the quorum) signed and recorded, each step started by the end of the
 * one before (service_async.c).  The envelope is parsed and the body
 * copied on the caller's thread.
 */
struct decide_op {
	struct sg_service *s;
	char id[SG_REQUEST_ID_SIZE];
	char *principal, *envelope_json;
	struct sg_envelope env;
	struct decide_job dj;
	struct sg_fault f;
	struct svc_step step;
	int r, kept;
	int held;                      /* svc_hold on id */
	sg_service_decided_fn done;
	void *done_arg;
};

static void
decide_op_end(struct decide_op *op)
{
	struct sg_service *s = op->s;
	struct sg_request *q = NULL;

	if (op->held)
		svc_unhold(s, op->id);
	if (op->r == 0)
		op->r = sg_service_get(s, op->id, &q);
	svc_async_leave(s);
	op->done(op->done_arg, op->r, q, &op->f);
	sg_envelope_clear(&op->env);
	free(op->principal);
	free(op->envelope_json);
	free(op);
}

/* The signing's end, on the executor. */
static void
decide_op_signed(void *arg, int r, int kept)
{
	struct decide_op *op = arg;

	op->r = signed_after(op->s, op->id, r, kept, 0, &op->f);
	decide_op_end(op);
}

/* The decision's commit, on the executor. */
static void
decide_op_written(void *arg)
{
	struct decide_op *op = arg;
	struct sg_service *s = op->s;
	int r, kept = 0;

	if ((op->r = decision_written(s, &op->dj, op->r, op->kept)) != 0) {
		decide_op_end(op);
		return;
	}
	decided(s, &op->dj);
	if (!op->dj.sign_now) {
		decide_op_end(op);
		return;
	}
	if ((r = svc_sign_pending_async(s, op->id, decide_op_signed, op,
	    &kept)) == 1)
		return;
	decide_op_signed(op, r, kept);
}

/* On the writer thread: handed on. */
static void
decide_op_stored(void *arg, int result, int kept)
{
	struct decide_op *op = arg;

	op->r = result;
	op->kept = kept;
	svc_exec(op->s, &op->step, decide_op_written, op);
}

void
sg_service_decide_async(struct sg_service *s, const char *id,
    const char *principal, const char *envelope_json, size_t len,
    sg_service_decided_fn done, void *done_arg)
{
	struct sg_request *q = NULL;
	struct decide_op *op;
	struct sg_fault f;
	int r;

	memset(&f, 0, sizeof(f));
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		done(done_arg, SG_ERR_NOMEM, NULL, &f);
		return;
	}
	if ((r = parse_envelope(envelope_json, len, principal, &op->env,
	    &op->f)) != 0)
		goto now;
	if (strlen(id) >= sizeof(op->id) ||
	    (op->principal = strdup(principal)) == NULL ||
	    (op->envelope_json = strndup(envelope_json, len)) == NULL) {
		r = SG_ERR_NOMEM;
		goto now;
	}
	snprintf(op->id, sizeof(op->id), "%s", id);
	op->s = s;
	op->done = done;
	op->done_arg = done_arg;
	op->dj.s = s;
	op->dj.id = op->id;
	op->dj.principal = op->principal;
	op->dj.env = &op->env;
	op->dj.envelope_json = op->envelope_json;
	op->dj.f = &op->f;
	pthread_rwlock_rdlock(&s->plock);
	if ((r = svc_async_enter(s)) == 0) {
		op->held = svc_hold(s, op->id);
		if ((r = sg_store_write_async(s->store, job_decide, &op->dj,
		    decide_op_stored, op)) == 0) {
			/* op may be gone already. */
			pthread_rwlock_unlock(&s->plock);
			return;
		}
		if (op->held)
			svc_unhold(s, op->id);
		svc_async_leave(s);
		svc_fault(&op->f, NULL, "the decision could not be stored and "
		    "logged");
		r = SG_ERR_UNAVAILABLE;
	} else if (r == 1) {
		/* A reload is under way: the waiting way. */
		r = decide_locked(s, id, principal, envelope_json, len, &q,
		    &op->f);
	} else
		svc_fault(&op->f, NULL, "the gateway is stopping");
	pthread_rwlock_unlock(&s->plock);
now:
	done(done_arg, r, r == 0 ? q : NULL, &op->f);
	if (r != 0)
		sg_request_free(q);
	sg_envelope_clear(&op->env);
	free(op->principal);
	free(op->envelope_json);
	free(op);
}

/* --- cancellation --- */

/* A cancel reason: 1 to SG_CANCEL_REASON_MAX bytes of text as officers
 * read it (sg_text.h: it is logged, shown in terminals and stored). */
static int
valid_reason(const char *reason, struct sg_fault *f)
{
	struct sg_text_fault tf;
	size_t n = reason != NULL ? strlen(reason) : 0;
	char why[128];

	if (n == 0 || n > SG_CANCEL_REASON_MAX) {
		svc_fault(f, "reason", "reason: must be 1 to %d bytes",
		    SG_CANCEL_REASON_MAX);
		return 0;
	}
	if (sg_text_ok(reason, n, &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		svc_fault(f, "reason", "reason: %s", why);
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
	int revoke;                    /* an active grant, not a pending
	                                  object */
};

/* Who may cancel: the requester, or an officer who may approve the
 * request under its policy and under the one in force. */
static int
may_cancel(struct sg_service *s, struct sg_txn *t, const struct sg_request *q,
    const char *principal, struct sg_fault *f)
{
	struct sg_policy *p = NULL;
	const struct sg_policy_key *pk;
	struct sg_policy_key kview;
	int owned = 0, ok;

	if (strcmp(principal, q->requester) == 0)
		return 0;
	if (svc_request_policy(s, t, q, &p, &owned) != 0) {
		svc_fault(f, NULL, "the policy of request %s is not available",
		    q->id);
		return SG_ERR_UNAVAILABLE;
	}
	if ((pk = sg_policy_key(p, q->key)) != NULL) {
		sg_policy_key_for_kind(pk, q->kind, &kview);
		pk = &kview;
	}
	ok = pk != NULL && sg_policy_may_approve_now_any(p, pk, s->policy,
	    q->requester, principal);
	if (owned)
		sg_policy_free(p);
	if (ok)
		return 0;
	svc_fault(f, NULL, "'%s' may not cancel or revoke %s %s: only its "
	    "requester ('%s') or an officer who may approve it can",
	    principal, sg_kind_str(q->kind), q->id, q->requester);
	return SG_ERR_FORBIDDEN;
}

/* A request that is not pending, said as such; cancelled ones with who,
 * when and why. */
static int
not_pending(const struct sg_request *q, struct sg_fault *f)
{
	char at[32];

	if (q->state == SG_REQ_CANCELLED) {
		sg_time_rfc3339((time_t)q->cancelled_at, at, sizeof(at));
		svc_fault(f, NULL, "request %s is cancelled, not pending "
		    "(cancelled by %s at %s: %.256s)", q->id, q->cancelled_by,
		    at, q->cancel_reason != NULL ? q->cancel_reason : "");
	} else
		svc_fault(f, NULL, "request %s is %s, not pending", q->id,
		    sg_req_state_str(q->state));
	return SG_ERR_CONFLICT;
}

static int
job_cancel(struct sg_txn *t, void *arg)
{
	struct cancel_job *cj = arg;
	struct sg_service *s = cj->s;
	struct sg_request *q = NULL;
	struct sg_entry e;
	int64_t now = svc_now(s);
	int r;

	if ((r = sg_store_get_request(t, cj->id, &q)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			svc_fault(cj->f, NULL, "no request with id '%s'",
			    cj->id);
		return r;
	}
	if (cj->revoke && (q->kind != SG_KIND_GRANT ||
	    q->state != SG_REQ_ACTIVE)) {
		svc_fault(cj->f, NULL, "%s %s is %s: only an active grant can "
		    "be revoked", sg_kind_str(q->kind), q->id,
		    sg_req_state_str(q->state));
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if (!cj->revoke && q->state != SG_REQ_PENDING) {
		r = not_pending(q, cj->f);
		goto out;
	}
	if ((r = may_cancel(s, t, q, cj->principal, cj->f)) != 0)
		goto out;
	if (now >= q->expires_at) {
		/* Record the expiry (this job then succeeds) and refuse. */
		svc_fault(cj->f, NULL, "request %s is expired, not pending",
		    cj->id);
		cj->expired = 1;
		r = svc_finish_in(s, t, cj->id, SG_REQ_EXPIRED, NULL);
		goto out;
	}
	if ((r = (cj->revoke ? sg_store_revoke : sg_store_cancel)(t, cj->id,
	    cj->principal, cj->reason, now)) != 0)
		goto out;
	svc_entry_head(&e, cj->revoke ? SG_ENTRY_REVOKED : SG_ENTRY_CANCELLED,
	    now, cj->id);
	snprintf(e.by, sizeof(e.by), "%s", cj->principal);
	e.reason = (char *)cj->reason;
	e.reason_len = strlen(cj->reason);
	r = svc_log_entry(s, t, &e, NULL);
out:
	sg_request_free(q);
	return r;
}

static int
cancel_locked(struct sg_service *s, const char *id, const char *principal,
    const char *reason, int revoke, struct sg_request **ret,
    struct sg_fault *f)
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
	cj.revoke = revoke;
	r = sg_store_write(s->store, job_cancel, &cj);
	if (r == 0 && cj.expired) {
		svc_stat_add(s, &s->stats.expired);
		svc_notify(s, id);
		return SG_ERR_CONFLICT;
	}
	if (r != 0) {
		if (r == SG_ERR_UNAVAILABLE || r == SG_ERR_IO) {
			svc_fault(f, NULL, "the cancellation could not be "
			    "stored and logged");
			r = SG_ERR_UNAVAILABLE;
		}
		return r;
	}
	sg_log_info("%s %s by %s", id, revoke ? "revoked" : "cancelled",
	    principal);
	/* Long-polls on the request wake up and see the new state. */
	svc_notify(s, id);
	return sg_service_get(s, id, ret);
}

int
sg_service_cancel(struct sg_service *s, const char *id, const char *principal,
    const char *reason, struct sg_request **ret, struct sg_fault *f)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = cancel_locked(s, id, principal, reason, 0, ret, f);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

int
sg_service_revoke(struct sg_service *s, const char *id, const char *principal,
    const char *reason, struct sg_request **ret, struct sg_fault *f)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = cancel_locked(s, id, principal, reason, 1, ret, f);
	pthread_rwlock_unlock(&s->plock);
	return r;
}
