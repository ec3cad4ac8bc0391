/*
 * Statistics for /metrics (counters kept as operations happen, gauges read
 * from the store and the log when asked) and readiness for /readyz: the
 * log is not refused nor behind, and every usable key makes a real test
 * signature.  The answer is cached for a few seconds, so that probes do
 * not load the HSM.
 *
 * Locks: lock around the counters and the ready cache (never across a
 * signer call); readiness and per-key counts hold plock for reading.
 * Calls: the signer interface (probe), store, tlog.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_err.h"
#include "sg_notify.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "sg_witnessing.h"
#include "service_int.h"

const double sg_hsm_bucket_bounds[SG_HSM_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
};

void
svc_stat_add(struct sg_service *s, uint64_t *counter)
{
	pthread_mutex_lock(&s->lock);
	(*counter)++;
	pthread_mutex_unlock(&s->lock);
}

/* A signature was released (committed with its log entry). */
void
svc_count_signature(struct sg_service *s, const struct sg_key_view *kv)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	s->stats.signatures++;
	for (i = 0; i < s->nsigcounts; i++)
		if (strcmp(s->sigcounts[i].name, kv->pk->name) == 0)
			break;
	if (i == s->nsigcounts && i < SVC_MAX_KEYS_COUNTED) {
		snprintf(s->sigcounts[i].name, sizeof(s->sigcounts[i].name),
		    "%s", kv->pk->name);
		s->nsigcounts++;
	}
	if (i < s->nsigcounts)
		s->sigcounts[i].n++;
	pthread_mutex_unlock(&s->lock);
}

/* A signer call that started at t0 (sg_mono_us) has returned. */
void
svc_hsm_time(struct sg_service *s, int64_t t0)
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
	sg_notify_stats(s->notifier, &ret->notify_pending,
	    &ret->notify_delivered, &ret->notify_failures);
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

size_t
sg_service_witness_stats(struct sg_service *s, struct sg_witness_stats *out,
    size_t cap)
{
	if (s->witnessing == NULL)
		return 0;
	return sg_witnessing_stats(s->witnessing, out, cap);
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

/* First the log: a refusal is the operator's business now, and entries
 * waiting for a checkpoint are answered with 503. */
static int
log_ready(struct sg_service *s, char *reason, size_t len)
{
	struct sg_tlog_status ls;

	sg_tlog_status(s->log, &ls);
	if (ls.refusal[0] != '\0') {
		snprintf(reason, len, "the signer refuses to sign the log: %s",
		    ls.refusal);
		return SG_ERR_UNAVAILABLE;
	}
	if (ls.uncovered) {
		snprintf(reason, len, "%llu log entries wait for a signed "
		    "checkpoint", (unsigned long long)(ls.size -
		    ls.checkpoint_size));
		return SG_ERR_UNAVAILABLE;
	}
	/* A witness saw another log than the one in the store. */
	if (s->witnessing != NULL &&
	    sg_witnessing_alarm(s->witnessing, reason, len) != 0)
		return SG_ERR_UNAVAILABLE;
	return 0;
}

/* A test signature with every usable key; at least one must be. */
static int
keys_ready(struct sg_service *s, char *reason, size_t len)
{
	size_t i, usable = 0;
	int r;

	for (i = 0; i < s->nkeys; i++) {
		if (!s->keys[i].usable)
			continue;
		usable++;
		if ((r = s->signer.probe(s->signer.ctx,
		    s->keys[i].pk->name)) != 0) {
			snprintf(reason, len, "key '%s': test signature "
			    "failed: %s", s->keys[i].pk->name, sg_strerror(r));
			return r;
		}
	}
	if (usable == 0 && s->nkeys > 0) {
		snprintf(reason, len, "no key is usable: %s",
		    s->keys[0].reason);
		return SG_ERR_UNAVAILABLE;
	}
	return 0;
}

/* Last, that the log's checkpoint can be read. */
static int
store_ready(struct sg_service *s, char *reason, size_t len)
{
	struct sg_txn *t = NULL;
	char *note = NULL;
	uint64_t size;
	int r = 0;

	if (sg_store_read_begin(s->store, &t) != 0 ||
	    (r = sg_tlog_checkpoint(t, &note, &size)) != 0) {
		if (r == SG_ERR_NOT_FOUND && s->witnessing != NULL)
			snprintf(reason, len, "no checkpoint carries the "
			    "cosignatures of %u witnesses yet",
			    sg_witnessing_quorum(s->witnessing));
		else
			snprintf(reason, len, "the log cannot be read");
		r = SG_ERR_UNAVAILABLE;
	}
	free(note);
	sg_store_read_end(t);
	return r;
}

static int
ready_locked(struct sg_service *s, char *reason, size_t len)
{
	time_t now = time(NULL);
	int r;

	pthread_mutex_lock(&s->lock);
	if (s->ready_at != 0 && now - s->ready_at < SVC_READY_CACHE_SECONDS) {
		r = s->ready_result;
		snprintf(reason, len, "%s", s->ready_reason);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	pthread_mutex_unlock(&s->lock);

	reason[0] = '\0';
	if ((r = log_ready(s, reason, len)) == 0 &&
	    (r = keys_ready(s, reason, len)) == 0)
		r = store_ready(s, reason, len);
	pthread_mutex_lock(&s->lock);
	s->ready_at = now;
	s->ready_result = r;
	snprintf(s->ready_reason, sizeof(s->ready_reason), "%s", reason);
	pthread_mutex_unlock(&s->lock);
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
