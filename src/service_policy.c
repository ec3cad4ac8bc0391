/*
 * The policy versions in the log: every version the gateway loads is a
 * `policy` entry with its whole text (include/sg_entry.h), written in the
 * transaction that makes it the policy in force, and under a signed
 * checkpoint before the front counts any request by it.
 *
 * - At start, the policy read is logged unless it is already the one in
 *   force (the effective version logged last).  When the policy in force
 *   asks for approval of its successor (policy-change require), a start
 *   with another file is refused: a restart is not a way around the
 *   approval.
 * - On reload (SIGHUP), a new version takes effect at once and is logged
 *   effective, unless the running policy has policy-change terms: then
 *   it is logged pending and the running one stays in force.  A reload
 *   while one is pending replaces it (its approvals no longer count).
 * - Each officer's approval of the pending version (the statement of
 *   include/sg_policy_change.h, in a DSSE envelope) is a policy-decision
 *   entry; the one that completes the quorum makes the version take
 *   effect in the same transaction, with a policy-effective entry naming
 *   the approvals that counted.  The signer process reads the policy
 *   file itself: the file must still hold the pending version then.
 *
 * Locks: pclock around every change (the caller's, for reload); plock as
 * service_reload.c takes it.  Store write jobs here touch neither.
 * Calls: reload (apply, validate), log, store, policy, evidence.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_policy_change.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "service_int.h"

/* A policy entry for p (its text), logged with status `pending` or
 * effective, previous the policy in force ("" for none), and kept in the
 * store with its index. */
static int
log_policy(struct sg_service *s, struct sg_txn *t, const struct sg_policy *p,
    const char *text, const char *previous, int pending, int64_t now)
{
	struct sg_entry e;
	uint64_t index;
	int r;

	svc_entry_head(&e, SG_ENTRY_POLICY, now, "");
	memcpy(e.request, sg_policy_sha256_hex(p), SG_REQUEST_ID_LEN);
	e.request[SG_REQUEST_ID_LEN] = '\0';
	snprintf(e.policy_name, sizeof(e.policy_name), "%s",
	    sg_policy_name(p));
	e.policy_version = sg_policy_version(p);
	snprintf(e.policy_sha256, sizeof(e.policy_sha256), "%s",
	    sg_policy_sha256_hex(p));
	if (previous != NULL && previous[0] != '\0') {
		e.has_previous = 1;
		snprintf(e.previous_sha256, sizeof(e.previous_sha256), "%s",
		    previous);
	}
	e.pending = pending;
	e.text = (char *)text;
	e.text_len = strlen(text);
	if ((r = svc_log_entry(s, t, &e, &index)) != 0)
		return r;
	return sg_store_policy_logged(t, sg_policy_sha256_hex(p), text, now,
	    index, pending ? "pending" : "effective", previous);
}

/* The pending version, if any, no longer waits: a newer one took its
 * place. */
static int
replace_pending(struct sg_txn *t, const char *except)
{
	struct sg_store_policy pend;
	int r;

	if ((r = sg_store_policy_pending(t, &pend)) == SG_ERR_NOT_FOUND)
		return 0;
	if (r == 0 && strcmp(pend.sha256, except) != 0) {
		sg_log_info("policy sha256:%s is no longer pending: replaced "
		    "by sha256:%s", pend.sha256, except);
		r = sg_store_policy_set_status(t, pend.sha256, "replaced",
		    -1);
	}
	sg_store_policy_clear(&pend);
	return r;
}

/* --- start --- */

struct start_job {
	struct sg_service *s;
	char why[768];
};

static int
job_log_start(struct sg_txn *t, void *arg)
{
	struct start_job *j = arg;
	struct sg_service *s = j->s;
	const char *sha = sg_policy_sha256_hex(s->policy);
	struct sg_store_policy in;
	struct sg_policy *old = NULL;
	char err[512];
	size_t nterms = 0;
	int r;

	r = sg_store_policy_in_force(t, &in);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		return r;
	if (r == 0 && strcmp(in.sha256, sha) == 0) {
		sg_store_policy_clear(&in);
		return 0;
	}
	if (r == 0 && sg_policy_parse("policy in force", in.text,
	    strlen(in.text), &old, err, sizeof(err)) == 0)
		sg_policy_change_terms(old, &nterms);
	if (nterms > 0) {
		snprintf(j->why, sizeof(j->why), "%s is %s@%llu (sha256:%s), "
		    "but the policy in force is %s@%llu (sha256:%s), which "
		    "asks for approval of its successor: start with the policy "
		    "in force (GET /v1/policies/%s on another gateway, or the "
		    "log), then reload the new version to have it approved",
		    s->cfg->policy_path, sg_policy_name(s->policy),
		    (unsigned long long)sg_policy_version(s->policy), sha,
		    sg_policy_name(old),
		    (unsigned long long)sg_policy_version(old), in.sha256,
		    in.sha256);
		r = SG_ERR_FORBIDDEN;
	} else {
		r = log_policy(s, t, s->policy, s->policy_text,
		    r == 0 ? in.sha256 : "", 0, svc_now(s));
		if (r == 0)
			r = replace_pending(t, sha);
	}
	sg_policy_free(old);
	sg_store_policy_clear(&in);
	return r;
}

int
svc_policy_log_start(struct sg_service *s, char *errbuf, size_t errlen)
{
	struct start_job j;
	int r;

	memset(&j, 0, sizeof(j));
	j.s = s;
	if ((r = sg_store_write(s->store, job_log_start, &j)) != 0) {
		if (j.why[0] != '\0')
			snprintf(errbuf, errlen, "%s", j.why);
		else
			snprintf(errbuf, errlen, "%s: the policy cannot be "
			    "logged: %s", s->cfg->policy_path,
			    sg_strerror(r));
		return r;
	}
	if ((r = sg_tlog_sync(s->log)) != 0) {
		snprintf(errbuf, errlen, "%s: the policy's log entry is not "
		    "under a signed checkpoint: %s", s->cfg->policy_path,
		    sg_strerror(r));
		return r;
	}
	return 0;
}

/* --- reload --- */

struct reload_job {
	const struct sg_policy *np;
	const char *text;
	const char *previous;
	int pending;
	int already;                   /* pending: the same version was */
	struct sg_service *s;
};

static int
job_log_reload(struct sg_txn *t, void *arg)
{
	struct reload_job *j = arg;
	const char *sha = sg_policy_sha256_hex(j->np);
	struct sg_store_policy have;
	int r;

	r = j->pending ? sg_store_policy_pending(t, &have) :
	    sg_store_policy_in_force(t, &have);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		return r;
	/* Logged by an earlier attempt whose checkpoint failed, or the
	 * version pending already: not twice. */
	j->already = r == 0 && strcmp(have.sha256, sha) == 0;
	sg_store_policy_clear(&have);
	if (j->already)
		return 0;
	if ((r = replace_pending(t, sha)) != 0)
		return r;
	return log_policy(j->s, t, j->np, j->text, j->previous, j->pending,
	    svc_now(j->s));
}

/* Inside the switch (service_reload.c): logged, then covered. */
static int
logged_reload(struct sg_service *s, void *arg)
{
	int r;

	if ((r = sg_store_write(s->store, job_log_reload, arg)) != 0)
		return r;
	return sg_tlog_sync(s->log);
}

int
svc_policy_reload(struct sg_service *s, struct sg_policy **np, char **text,
    char *errbuf, size_t errlen)
{
	char prev[SG_SHA256_HEX_SIZE];
	struct reload_job j;
	size_t nterms = 0;
	int r;

	snprintf(prev, sizeof(prev), "%s", sg_policy_sha256_hex(s->policy));
	memset(&j, 0, sizeof(j));
	j.np = *np;
	j.text = *text;
	j.previous = prev;
	j.s = s;
	sg_policy_change_terms(s->policy, &nterms);
	if (nterms == 0)
		return svc_policy_apply(s, np, text, logged_reload, &j, errbuf,
		    errlen);
	if ((r = svc_policy_validate(s, *np, errbuf, errlen)) != 0)
		return r;
	j.pending = 1;
	if ((r = sg_store_write(s->store, job_log_reload, &j)) != 0) {
		snprintf(errbuf, errlen, "the new version could not be logged "
		    "pending: %s", sg_strerror(r));
		return r;
	}
	if ((r = sg_tlog_sync(s->log)) != 0) {
		snprintf(errbuf, errlen, "the new version is logged pending, "
		    "but not under a signed checkpoint yet: %s",
		    sg_strerror(r));
		return r;
	}
	sg_log_info("policy %s@%llu (sha256:%s) is %spending: policy %s@%llu "
	    "stays in force until officers approve the change (signgate "
	    "approve --policy %s)", sg_policy_name(*np),
	    (unsigned long long)sg_policy_version(*np),
	    sg_policy_sha256_hex(*np), j.already ? "still " : "",
	    sg_policy_name(s->policy),
	    (unsigned long long)sg_policy_version(s->policy),
	    sg_policy_sha256_hex(*np));
	return 0;
}

/* --- the pending version and its approvals --- */

void
sg_policy_pending_view_clear(struct sg_policy_pending_view *v)
{
	if (v == NULL)
		return;
	free(v->statement);
	memset(v, 0, sizeof(*v));
}

void
sg_policy_version_clear(struct sg_policy_version *v)
{
	if (v == NULL)
		return;
	free(v->text);
	memset(v, 0, sizeof(*v));
}

/* What a read finds: the pending version (parsed) and its approvals. */
struct pending_read {
	struct sg_store_policy pend;
	struct sg_store_policy_approval ap[SG_ENVELOPES_MAX];
	size_t nap;
};

static void
pending_read_clear(struct pending_read *pr)
{
	sg_store_policy_clear(&pr->pend);
	sg_store_policy_approvals_free(pr->ap, pr->nap);
	pr->nap = 0;
}

static int
read_pending(struct sg_service *s, struct pending_read *pr)
{
	struct sg_txn *t;
	int r;

	memset(pr, 0, sizeof(*pr));
	if (sg_store_read_begin(s->store, &t) != 0)
		return SG_ERR_UNAVAILABLE;
	if ((r = sg_store_policy_pending(t, &pr->pend)) == 0)
		r = sg_store_policy_approvals(t, pr->pend.sha256, pr->ap,
		    SG_ENVELOPES_MAX, &pr->nap);
	sg_store_read_end(t);
	if (r != 0)
		pending_read_clear(pr);
	return r;
}

/* The decisions recorded (all approvals), d[i].officer pointing into
 * ap. */
static void
decisions_of(const struct sg_store_policy_approval *ap, size_t n,
    struct sg_decision *d)
{
	size_t i;

	memset(d, 0, n * sizeof(*d));
	for (i = 0; i < n; i++) {
		d[i].officer = ap[i].officer;
		d[i].approve = 1;
	}
}

/* The view of pending np under the policy in force (plock held), with
 * its decisions d (n of them). */
static int
fill_view(struct sg_service *s, const struct sg_policy *np,
    const struct sg_store_policy *pend, const struct sg_decision *d,
    const uint64_t *indices, size_t n, struct sg_policy_pending_view *v)
{
	struct sg_policy_key ck;
	struct sg_quorum_result res;
	size_t i, len = 0;
	int r;

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", sg_policy_name(np));
	v->version = sg_policy_version(np);
	snprintf(v->sha256, sizeof(v->sha256), "%s", pend->sha256);
	v->log_index = (uint64_t)pend->log_index;
	snprintf(v->prev_name, sizeof(v->prev_name), "%s",
	    sg_policy_name(s->policy));
	v->prev_version = sg_policy_version(s->policy);
	snprintf(v->prev_sha256, sizeof(v->prev_sha256), "%s",
	    sg_policy_sha256_hex(s->policy));
	if ((r = sg_policy_approval_statement(np, s->policy, &v->statement,
	    &len)) != 0)
		return r;
	for (i = 0; i < n && i < SG_ENVELOPES_MAX; i++) {
		snprintf(v->officers[i], sizeof(v->officers[i]), "%s",
		    d[i].officer);
		v->approval_index[i] = indices[i];
	}
	v->napprovals = i;
	sg_policy_change_key(s->policy, &ck);
	sg_policy_evaluate(s->policy, &ck, "", d, n, &res);
	memcpy(v->terms, ck.terms, sizeof(v->terms));
	v->nterms = ck.nterms;
	memcpy(v->missing, res.missing, sizeof(v->missing));
	v->met = res.state == SG_QUORUM_MET;
	return 0;
}

static int
parse_pending(const struct sg_store_policy *pend, struct sg_policy **ret)
{
	char err[512];

	if (sg_policy_parse("pending policy", pend->text, strlen(pend->text),
	    ret, err, sizeof(err)) != 0) {
		sg_log_error("policy sha256:%s is pending but no longer "
		    "parses: %s", pend->sha256, err);
		return SG_ERR_INTERNAL;
	}
	return 0;
}

int
sg_service_policy_pending(struct sg_service *s,
    struct sg_policy_pending_view *ret)
{
	struct pending_read pr;
	struct sg_decision d[SG_ENVELOPES_MAX];
	uint64_t idx[SG_ENVELOPES_MAX];
	struct sg_policy *np = NULL;
	size_t i;
	int r;

	if ((r = read_pending(s, &pr)) != 0)
		return r;
	if ((r = parse_pending(&pr.pend, &np)) == 0) {
		decisions_of(pr.ap, pr.nap, d);
		for (i = 0; i < pr.nap; i++)
			idx[i] = pr.ap[i].log_index;
		pthread_rwlock_rdlock(&s->plock);
		r = fill_view(s, np, &pr.pend, d, idx, pr.nap, ret);
		pthread_rwlock_unlock(&s->plock);
	}
	sg_policy_free(np);
	pending_read_clear(&pr);
	return r;
}

int
sg_service_policy_get(struct sg_service *s, const char *sha256_hex,
    struct sg_policy_version *ret)
{
	struct sg_store_policy sp;
	struct sg_txn *t;
	uint64_t size = 0;
	char *note = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	memset(&sp, 0, sizeof(sp));
	if (sg_store_read_begin(s->store, &t) != 0)
		return SG_ERR_UNAVAILABLE;
	if ((r = sg_store_policy_get(t, sha256_hex, &sp)) == 0 &&
	    (r = sg_tlog_checkpoint(t, &note, &size)) == 0 &&
	    (uint64_t)sp.log_index >= size)
		r = SG_ERR_NOT_FOUND;  /* no signed checkpoint covers it yet */
	sg_store_read_end(t);
	free(note);
	if (r != 0) {
		sg_store_policy_clear(&sp);
		return r;
	}
	snprintf(ret->sha256, sizeof(ret->sha256), "%s", sp.sha256);
	snprintf(ret->status, sizeof(ret->status), "%s", sp.status);
	ret->log_index = (uint64_t)sp.log_index;
	ret->text = sp.text;
	return 0;
}

/* The approval in a write job: its decision entry and row, and when the
 * quorum holds, the effective entry and the status. */
struct approve_job {
	struct sg_service *s;
	const char *sha;
	const struct sg_policy *np;
	const char *officer;
	const char *envelope;
	size_t envelope_len;
	/* The approvals before this one that count, by log index (in log
	 * order, all before this one's). */
	const uint64_t *counted;
	size_t ncounted;
	int effective;
	uint64_t index;                /* this approval's entry */
	uint64_t effective_index;
};

static int
job_approve(struct sg_txn *t, void *arg)
{
	struct approve_job *j = arg;
	struct sg_entry e;
	int64_t now = svc_now(j->s);
	size_t i;
	int r;

	svc_entry_head(&e, SG_ENTRY_POLICY_DECISION, now, "");
	memcpy(e.request, j->sha, SG_REQUEST_ID_LEN);
	e.request[SG_REQUEST_ID_LEN] = '\0';
	snprintf(e.officer, sizeof(e.officer), "%s", j->officer);
	e.envelope = (char *)j->envelope;
	e.envelope_len = j->envelope_len;
	if ((r = svc_log_entry(j->s, t, &e, &j->index)) != 0 ||
	    (r = sg_store_policy_approval_add(t, j->sha, j->officer, now,
	    j->envelope, j->index)) != 0)
		return r;
	if (!j->effective)
		return 0;
	if (j->ncounted + 1 > SG_QUORUM_MAX)
		return SG_ERR_TOO_LARGE;
	svc_entry_head(&e, SG_ENTRY_POLICY_EFFECTIVE, now, "");
	memcpy(e.request, j->sha, SG_REQUEST_ID_LEN);
	e.request[SG_REQUEST_ID_LEN] = '\0';
	snprintf(e.policy_name, sizeof(e.policy_name), "%s",
	    sg_policy_name(j->np));
	e.policy_version = sg_policy_version(j->np);
	snprintf(e.policy_sha256, sizeof(e.policy_sha256), "%s", j->sha);
	for (i = 0; i < j->ncounted; i++)
		e.approval_entries[i] = j->counted[i];
	e.approval_entries[i++] = j->index;
	e.napproval_entries = i;
	if ((r = svc_log_entry(j->s, t, &e, &j->effective_index)) != 0)
		return r;
	return sg_store_policy_set_status(t, j->sha, "effective",
	    (int64_t)j->effective_index);
}

/* The quorum holds: inside the switch, after the signer took it. */
static int
logged_approval(struct sg_service *s, void *arg)
{
	int r;

	if ((r = sg_store_write(s->store, job_approve, arg)) != 0)
		return r;
	if (sg_tlog_sync(s->log) != 0)
		sg_log_warn("policy sha256:%s took effect, but no signed "
		    "checkpoint covers its entries yet",
		    ((struct approve_job *)arg)->sha);
	return 0;
}

/* Checks one posted envelope against the pending np and the policy in
 * force (plock held): the officer it names in *ret_officer. */
static int
check_envelope(struct sg_service *s, const struct sg_policy *np,
    const char *principal, const char *json, size_t len,
    char ret_officer[SG_NAME_SIZE], struct sg_fault *f)
{
	const struct sg_principal *officer = NULL;
	struct sg_approval_fault af;
	struct sg_envelope env;
	char err[256];
	int r;

	memset(&env, 0, sizeof(env));
	if (len > SG_ENVELOPE_MAX) {
		svc_fault(f, NULL, "the envelope is larger than %d bytes",
		    SG_ENVELOPE_MAX);
		return SG_ERR_TOO_LARGE;
	}
	if (sg_envelope_parse(json, len, &env, err, sizeof(err)) != 0) {
		svc_fault(f, NULL, "%s", err);
		return SG_ERR_INVALID;
	}
	r = sg_policy_approval_accept(np, s->policy, &env, &officer, &af);
	sg_envelope_clear(&env);
	if (r != 0) {
		svc_fault(f, af.field, "%s", af.why);
		return r;
	}
	if (principal != NULL && strcmp(principal, officer->name) != 0) {
		svc_fault(f, "signatures[0].keyid", "the envelope is %s's, the "
		    "caller is %s", officer->name, principal);
		return SG_ERR_FORBIDDEN;
	}
	snprintf(ret_officer, SG_NAME_SIZE, "%s", officer->name);
	return 0;
}

/* With pclock held. */
static int
approve_locked(struct sg_service *s, const char *principal, const char *sha,
    const char *json, size_t len, struct sg_policy_pending_view *ret,
    struct sg_fault *f)
{
	struct pending_read pr;
	struct sg_decision d[SG_ENVELOPES_MAX + 1];
	uint64_t idx[SG_ENVELOPES_MAX + 1], counted_idx[SG_ENVELOPES_MAX];
	uint8_t counted[SG_ENVELOPES_MAX + 1];
	struct sg_policy_key ck;
	struct sg_quorum_result res;
	struct approve_job j;
	struct sg_policy *np = NULL;
	char officer[SG_NAME_SIZE], errbuf[1024], *text = NULL;
	size_t i, n, nc = 0;
	int r;

	if ((r = read_pending(s, &pr)) == SG_ERR_NOT_FOUND) {
		svc_fault(f, NULL, "no policy version is pending");
		return r;
	}
	if (r != 0)
		return r;
	if (strcmp(pr.pend.sha256, sha) != 0) {
		svc_fault(f, NULL, "policy sha256:%s is not the pending "
		    "version (sha256:%s is)", sha, pr.pend.sha256);
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if ((r = parse_pending(&pr.pend, &np)) != 0)
		goto out;
	pthread_rwlock_rdlock(&s->plock);
	r = check_envelope(s, np, principal, json, len, officer, f);
	pthread_rwlock_unlock(&s->plock);
	if (r != 0)
		goto out;
	n = pr.nap;
	for (i = 0; i < n; i++) {
		if (strcmp(pr.ap[i].officer, officer) == 0) {
			svc_fault(f, NULL, "%s has approved policy sha256:%s "
			    "already", officer, sha);
			r = SG_ERR_CONFLICT;
			goto out;
		}
		idx[i] = pr.ap[i].log_index;
	}
	if (n == SG_ENVELOPES_MAX) {
		svc_fault(f, NULL, "policy sha256:%s has %d approvals already",
		    sha, SG_ENVELOPES_MAX);
		r = SG_ERR_CONFLICT;
		goto out;
	}
	decisions_of(pr.ap, n, d);
	d[n].officer = officer;
	d[n].approve = 1;
	/* The policy in force decides; pclock keeps it in force. */
	sg_policy_change_key(s->policy, &ck);
	sg_policy_evaluate_now(s->policy, &ck, NULL, "", d, n + 1, &res,
	    counted);
	memset(&j, 0, sizeof(j));
	j.s = s;
	j.sha = sha;
	j.np = np;
	j.officer = officer;
	j.envelope = json;
	j.envelope_len = len;
	for (i = 0; i < n; i++)
		if (counted[i])
			counted_idx[nc++] = idx[i];
	j.counted = counted_idx;
	j.ncounted = nc;
	j.effective = res.state == SG_QUORUM_MET;
	if (!j.effective) {
		if ((r = sg_store_write(s->store, job_approve, &j)) != 0)
			goto out;
		if (sg_tlog_sync(s->log) != 0) {
			svc_recorded_fault(f, "the approval of policy", sha,
			    "retry later");
			r = SG_ERR_UNAVAILABLE;
			goto out;
		}
	} else {
		if ((text = strdup(pr.pend.text)) == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
		if ((r = svc_policy_apply(s, &np, &text, logged_approval, &j,
		    errbuf, sizeof(errbuf))) != 0) {
			svc_fault(f, NULL, "the approval completes the quorum, "
			    "but policy sha256:%s cannot take effect: %s (the "
			    "policy file must still hold it); nothing was "
			    "recorded", sha, errbuf);
			if (r != SG_ERR_NOMEM && r != SG_ERR_UNAVAILABLE)
				r = SG_ERR_CONFLICT;
			goto out;
		}
		sg_log_info("policy sha256:%s took effect, approved by %zu "
		    "officers (log entry %llu)", sha, nc + 1,
		    (unsigned long long)j.effective_index);
	}
	idx[n] = j.index;
	pthread_rwlock_rdlock(&s->plock);
	/* After the switch the view is of the policy before it. */
	if (j.effective) {
		memset(ret, 0, sizeof(*ret));
		snprintf(ret->sha256, sizeof(ret->sha256), "%s", sha);
		snprintf(ret->name, sizeof(ret->name), "%s",
		    sg_policy_name(s->policy));
		ret->version = sg_policy_version(s->policy);
		ret->log_index = (uint64_t)pr.pend.log_index;
		for (i = 0; i <= n; i++) {
			snprintf(ret->officers[i], sizeof(ret->officers[i]),
			    "%s", d[i].officer);
			ret->approval_index[i] = idx[i];
		}
		ret->napprovals = n + 1;
		ret->met = 1;
		ret->effective = 1;
		ret->effective_index = j.effective_index;
	} else
		r = fill_view(s, np, &pr.pend, d, idx, n + 1, ret);
	pthread_rwlock_unlock(&s->plock);
out:
	free(text);
	sg_policy_free(np);
	pending_read_clear(&pr);
	return r;
}

int
sg_service_policy_approve(struct sg_service *s, const char *principal,
    const char *sha256_hex, const char *envelope, size_t len,
    struct sg_policy_pending_view *ret, struct sg_fault *f)
{
	int r;

	memset(ret, 0, sizeof(*ret));
	pthread_mutex_lock(&s->pclock);
	r = approve_locked(s, principal, sha256_hex, envelope, len, ret, f);
	pthread_mutex_unlock(&s->pclock);
	return r;
}

/* --- the policy entry in a signature's proof --- */

/* Appends the bundle of entry idx (under the snapshot's checkpoint). */
static int
bundle_append(struct sg_txn *t, uint64_t idx, char **text)
{
	char *b = NULL, *both = NULL;
	int r;

	if ((r = sg_tlog_proof_bundle(t, idx, &b)) != 0)
		return r;
	if (asprintf(&both, "%s%s", *text, b) < 0)
		r = SG_ERR_NOMEM;
	else {
		free(*text);
		*text = both;
	}
	free(b);
	return r;
}

/* The entry at idx, parsed. */
static int
entry_at(struct sg_txn *t, uint64_t idx, struct sg_entry *e)
{
	char *raw = NULL;
	size_t len = 0;
	int r;

	memset(e, 0, sizeof(*e));
	if ((r = sg_tlog_entry(t, idx, &raw, &len)) != 0)
		return r;
	r = sg_entry_parse(raw, len, e);
	free(raw);
	return r;
}

/*
 * What makes a policy logged pending the one in force, for a verifier:
 * the bundles of its policy-effective entry, of each policy-decision
 * entry that lists, and of the previous policy's entry (whose
 * policy-change terms the decisions meet).
 */
static int
approval_bundles_add(struct sg_txn *t, const struct sg_entry *pe,
    const struct sg_store_policy *sp, uint64_t before, char **text)
{
	struct sg_store_policy prev;
	struct sg_entry eff;
	uint64_t eidx;
	size_t i;
	int r;

	memset(&prev, 0, sizeof(prev));
	memset(&eff, 0, sizeof(eff));
	/* Its policy-effective entry, if it took effect before entry
	 * `before`. */
	if (sp->effective_index < 0 ||
	    (uint64_t)sp->effective_index >= before) {
		/* The verifier refuses such a proof. */
		sg_log_error("policy sha256:%s was logged pending and no "
		    "policy-effective entry follows it before entry %llu",
		    pe->policy_sha256, (unsigned long long)before);
		return 0;
	}
	eidx = (uint64_t)sp->effective_index;
	if ((r = entry_at(t, eidx, &eff)) != 0 ||
	    (r = bundle_append(t, eidx, text)) != 0)
		goto out;
	for (i = 0; i < eff.napproval_entries; i++)
		if ((r = bundle_append(t, eff.approval_entries[i], text)) != 0)
			goto out;
	if (!pe->has_previous)
		goto out;
	if ((r = sg_store_policy_get(t, pe->previous_sha256, &prev)) != 0 ||
	    prev.log_index < 0) {
		sg_log_error("policy sha256:%s: its predecessor sha256:%s has "
		    "no log entry", pe->policy_sha256, pe->previous_sha256);
		r = r == SG_ERR_NOT_FOUND || r == 0 ? 0 : r;
		goto out;
	}
	r = bundle_append(t, (uint64_t)prev.log_index, text);
out:
	sg_entry_clear(&eff);
	sg_store_policy_clear(&prev);
	return r;
}

int
svc_policy_bundle_add(struct sg_txn *t, uint64_t index, char **text)
{
	struct sg_store_policy sp;
	struct sg_statement st;
	struct sg_entry e, pe;
	char *raw = NULL;
	size_t len = 0;
	int r;

	memset(&e, 0, sizeof(e));
	memset(&pe, 0, sizeof(pe));
	memset(&sp, 0, sizeof(sp));
	if ((r = sg_tlog_entry(t, index, &raw, &len)) != 0)
		return r;
	/* An entry without a statement names no policy: nothing to add. */
	if (sg_entry_parse(raw, len, &e) != 0 || e.statement == NULL ||
	    sg_statement_parse(e.statement, e.statement_len, &st) != 0)
		goto out;
	/* A policy never logged, or logged only after this entry (a
	 * signature made before the gateway logged its policies): the proof
	 * is as it was, verified with --policy. */
	if ((r = sg_store_policy_get(t, st.policy_sha256, &sp)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			r = 0;
		goto out;
	}
	if (sp.log_index < 0 || (uint64_t)sp.log_index >= index)
		goto out;
	if ((r = bundle_append(t, (uint64_t)sp.log_index, text)) != 0)
		goto out;
	/* Logged pending: how it came into force follows. */
	if ((r = entry_at(t, (uint64_t)sp.log_index, &pe)) != 0)
		goto out;
	if (pe.type == SG_ENTRY_POLICY && pe.pending)
		r = approval_bundles_add(t, &pe, &sp, index, text);
out:
	free(raw);
	sg_entry_clear(&e);
	sg_entry_clear(&pe);
	sg_store_policy_clear(&sp);
	return r;
}
