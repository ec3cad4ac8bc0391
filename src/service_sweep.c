/*
 * The housekeeping thread: once a second it has the log sign a checkpoint
 * for entries an earlier one could not cover, expires overdue requests,
 * retries signing the requests known to wait only for their signature,
 * and then looks through a page of the pending ones for a quorum that
 * holds (one met before a crash or a failed signer call), going on from
 * the last page so that none is starved.
 *
 * Locks: the thread holds plock for reading during a sweep (a reload's
 * switch waits for it), stop_lock only around its stop flag and wait.
 * The page position (sweep_after) is the thread's own.
 * Calls: sign (svc_sign_pending), quorum, log, metrics, store, tlog.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sg_err.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "service_int.h"

struct expire_job {
	struct sg_service *s;
	char (*ids)[SG_REQUEST_ID_SIZE];
	size_t n;
};

static int
job_expire(struct sg_txn *t, void *arg)
{
	struct expire_job *ej = arg;
	size_t i;
	int r;

	if ((r = sg_store_due_expiry(t, svc_now(ej->s), SVC_SWEEP_BATCH,
	    ej->ids, &ej->n)) != 0)
		return r;
	for (i = 0; i < ej->n; i++)
		if ((r = svc_finish_in(ej->s, t, ej->ids[i], SG_REQ_EXPIRED,
		    NULL)) != 0)
			return r;
	return 0;
}

static void
expire_due(struct sg_service *s)
{
	char ids[SVC_SWEEP_BATCH][SG_REQUEST_ID_SIZE];
	struct expire_job ej = { s, ids, 0 };
	size_t i;

	if (sg_store_write(s->store, job_expire, &ej) != 0)
		return;
	for (i = 0; i < ej.n; i++) {
		svc_stat_add(s, &s->stats.expired);
		sg_log_info("request %s expired", ids[i]);
		svc_notify(s, ids[i]);
	}
}

/* Whether a request whose signing failed is still worth retrying. */
static int
retryable(struct sg_service *s, const char *id)
{
	struct sg_request *q = NULL;
	int yes;

	if (sg_service_get(s, id, &q) != 0)
		return 0;
	yes = q->state == SG_REQ_PENDING &&
	    svc_now(s) < q->expires_at;
	sg_request_free(q);
	return yes;
}

/* First the requests known to wait only for their signature. */
static void
retry_signing(struct sg_service *s)
{
	char ids[SVC_SWEEP_BATCH][SG_REQUEST_ID_SIZE];
	size_t i, n;

	pthread_mutex_lock(&s->lock);
	n = s->nretry < SVC_SWEEP_BATCH ? s->nretry : SVC_SWEEP_BATCH;
	memcpy(ids, s->retry[s->nretry - n], n * sizeof(ids[0]));
	s->nretry -= n;
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n; i++)
		if (svc_sign_pending(s, ids[i], NULL) != 0 &&
		    retryable(s, ids[i]))
			svc_retry_later(s, ids[i]);
}

/* Then a page of the pending ones, going on from the last sweep's page. */
static void
sign_met(struct sg_service *s)
{
	char ids[SVC_SWEEP_BATCH][SG_REQUEST_ID_SIZE];
	struct sg_request_quorum v;
	struct sg_request *q;
	struct sg_txn *t;
	size_t i, n = 0;
	int64_t last = 0;

	if (sg_store_read_begin(s->store, &t) != 0)
		return;
	if (sg_store_pending_after(t, s->sweep_after, SVC_SWEEP_BATCH, ids,
	    &n, &last) != 0)
		n = 0;
	sg_store_read_end(t);
	s->sweep_after = n < SVC_SWEEP_BATCH ? 0 : last;
	for (i = 0; i < n; i++) {
		q = NULL;
		/* One a caller is signing itself (svc_hold) the claims
		 * below refuse. */
		if (sg_service_get(s, ids[i], &q) != 0)
			continue;
		if (q->grant_id[0] != '\0')
			svc_grant_sign_pending(s, ids[i]);
		else if (q->kind == SG_KIND_REQUEST &&
		    svc_quorum_view_locked(s, q, &v) == 0 &&
		    v.res.state == SG_QUORUM_MET)
			svc_sign_unheld(s, ids[i]);
		sg_request_free(q);
	}
}

/* Expires overdue requests and retries signing those whose quorum holds. */
static void
sweep(struct sg_service *s)
{
	struct sg_tlog_status ls;

	/* Entries an earlier checkpoint could not cover (the signer or the
	 * HSM was away): covered now, so their clients' retries succeed.
	 * Not once the signer has refused the log: that needs an operator. */
	sg_tlog_status(s->log, &ls);
	if (ls.uncovered && ls.refusal[0] == '\0' && sg_tlog_sync(s->log) == 0)
		sg_log_info("log: a checkpoint covers the %llu entries again",
		    (unsigned long long)ls.size);
	expire_due(s);
	retry_signing(s);
	sign_met(s);
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

int
svc_sweeper_start(struct sg_service *s)
{
	if (pthread_create(&s->sweeper, NULL, sweeper_main, s) != 0)
		return SG_ERR_INTERNAL;
	s->sweeper_started = 1;
	return 0;
}

/* Stops the thread, if it was started, and waits for it. */
void
svc_sweeper_stop(struct sg_service *s)
{
	if (!s->sweeper_started)
		return;
	pthread_mutex_lock(&s->stop_lock);
	s->stopping = 1;
	pthread_cond_signal(&s->stop_cond);
	pthread_mutex_unlock(&s->stop_lock);
	pthread_join(s->sweeper, NULL);
	s->sweeper_started = 0;
}
