/*
 * Releases: once a release's quorum holds (its approved entry is logged
 * and it is active, service_decide.c), every artifact of its manifest is
 * signed here, on a thread of its own, and the release ends signed.
 *
 * The artifacts go to the signer in batches (sg_service_signer's
 * sign_batch): one statement, the envelopes that count and up to
 * SG_SIGNER_BATCH_MAX artifact lines with their inclusion paths in the
 * manifest, so that the signer checks the evidence once per batch and
 * records the batch's signatures with one commit.  Each batch's
 * signatures are then recorded with their artifact-signature entries in
 * one write job (one commit, one checkpoint), guarded by the release
 * still being active: a signature is released only once it is logged.
 * Several batches are in flight (REL_WORKERS threads, each on its own
 * signer channel): while some are signed, others are recorded, so that
 * neither the HSM nor the disk waits for the other.
 *
 * Failures: a refusal by the signer (the evidence, the key, an artifact
 * it will not sign) fails the release, with a failed entry; the HSM or
 * the signer being away leaves it active, and the next pass (woken by a
 * decision, or once a second) goes on from the artifacts not yet signed.
 * Time-stamps are not added to release signatures.
 *
 * Locks: a pass holds plock for reading; the claim set keeps one pass per
 * release; rel_lock guards the wake flag.
 * Calls: the signer interface, store, quorum, log, keys, manifest.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_util.h"
#include "service_int.h"

#define REL_PASS_MAX 16                /* releases looked at per pass */
#define REL_WORKERS 4                  /* batches in flight */
/* An artifact in a pass: to sign, in a batch, or signed (or given up). */
enum { REL_UNSIGNED, REL_IN_BATCH, REL_SIGNED };

/* The evidence of release or grant o: its statement and the envelopes
 * that count under its policy (kind's terms) and the one in force. */
int
svc_object_evidence(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *o, struct sg_sign_evidence *ev,
    const char **envs, size_t *lens)
{
	struct sg_request_quorum v;
	int r;

	if (o->napprovals > SG_ENVELOPES_MAX)
		return SG_ERR_TOO_LARGE;
	if ((r = svc_quorum_view_in(s, t, o, &v)) != 0)
		return r;
	if (v.res.state != SG_QUORUM_MET)
		return SG_ERR_FORBIDDEN;
	svc_evidence_of(o, v.counted, ev, envs, lens);
	return 0;
}

/* One pass over one release: what it holds while it is signed. */
struct rel_run {
	struct sg_service *s;
	struct sg_request *o;
	const struct sg_key_view *kv;
	struct sg_sign_evidence ev;
	const char *envs[SG_ENVELOPES_MAX];
	size_t lens[SG_ENVELOPES_MAX];
	struct sg_release_item *items; /* every artifact, by position */
	size_t nitems;
	uint8_t *mark;                 /* per position: REL_UNSIGNED, ... */
	struct sg_manifest_tree tree;
	uint64_t signed_now;
	pthread_mutex_t lock;          /* next, failed, why */
	size_t next;                   /* the next position to look at */
	int failed;                    /* refused for good: stop */
	int stop;                      /* the signer is away: stop */
	char why[SG_SIGNER_ERR_MAX + 64];
};

/* A batch being signed and recorded. */
struct rel_batch {
	struct rel_run *rr;
	struct sg_batch_item in[SG_SIGNER_BATCH_MAX];
	uint8_t paths[SG_SIGNER_BATCH_MAX][SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	struct sg_batch_result res[SG_SIGNER_BATCH_MAX];
	size_t n;
};

/* Reads release id (active) with its artifacts and evidence into rr. */
static int
run_load(struct sg_service *s, const char *id, struct rel_run *rr)
{
	const char **lines = NULL;
	size_t *lens = NULL, i;
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	if ((r = sg_store_get_request(t, id, &rr->o)) != 0)
		goto out;
	if (rr->o->kind != SG_KIND_RELEASE || rr->o->state != SG_REQ_ACTIVE) {
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if ((r = svc_object_evidence(s, t, rr->o, &rr->ev, rr->envs,
	    rr->lens)) != 0 ||
	    (r = sg_store_release_items(t, id, 0, rr->o->count, 0,
	    &rr->items, &rr->nitems)) != 0)
		goto out;
	if (rr->nitems != rr->o->count) {
		r = SG_ERR_IO;
		goto out;
	}
	lines = calloc(rr->nitems, sizeof(*lines));
	lens = calloc(rr->nitems, sizeof(*lens));
	rr->mark = calloc(rr->nitems, 1);
	if (lines == NULL || lens == NULL || rr->mark == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < rr->nitems; i++) {
		lines[i] = rr->items[i].line;
		lens[i] = strlen(lines[i]);
		rr->mark[i] = rr->items[i].signature != NULL ? REL_SIGNED :
		    REL_UNSIGNED;
	}
	r = sg_manifest_tree_init(&rr->tree, lines, lens, rr->nitems);
out:
	free(lines);
	free(lens);
	sg_store_read_end(t);
	return r;
}

static void
run_clear(struct rel_run *rr)
{
	sg_manifest_tree_free(&rr->tree);
	sg_release_items_free(rr->items, rr->nitems);
	free(rr->mark);
	sg_request_free(rr->o);
}

/* Stops the run for good: the release fails, saying why. */
static void
run_fail(struct rel_run *rr, const char *what, const char *detail)
{
	pthread_mutex_lock(&rr->lock);
	if (!rr->failed)
		snprintf(rr->why, sizeof(rr->why), "%s%s", what, detail);
	rr->failed = 1;
	pthread_mutex_unlock(&rr->lock);
}

/* The next unsigned artifacts, at most SG_SIGNER_BATCH_MAX (limit), with
 * their inclusion paths; 0 items when there are none or the run stops. */
static int
batch_take(struct rel_run *rr, struct rel_batch *b, size_t limit)
{
	struct sg_release_item *it;
	size_t npath;
	int r = 0;

	b->n = 0;
	pthread_mutex_lock(&rr->lock);
	while (!rr->failed && !rr->stop && rr->next < rr->nitems &&
	    b->n < limit) {
		if (rr->mark[rr->next] != REL_UNSIGNED) {
			rr->next++;
			continue;
		}
		rr->mark[rr->next] = REL_IN_BATCH;
		it = &rr->items[rr->next++];
		if ((r = sg_manifest_tree_path(&rr->tree, it->position,
		    b->paths[b->n], SG_MANIFEST_PATH_MAX, &npath)) != 0)
			break;
		b->in[b->n].position = it->position;
		b->in[b->n].line = it->line;
		b->in[b->n].line_len = strlen(it->line);
		b->in[b->n].path = (const uint8_t (*)[SG_HASH_LEN])
		    b->paths[b->n];
		b->in[b->n].npath = npath;
		b->n++;
	}
	pthread_mutex_unlock(&rr->lock);
	return r;
}

/* Puts the items from `from` on back for a later batch (the signer's
 * reply was full). */
static void
batch_return(struct rel_run *rr, const struct rel_batch *b, size_t from)
{
	size_t i;

	pthread_mutex_lock(&rr->lock);
	for (i = from; i < b->n; i++) {
		rr->mark[b->in[i].position] = REL_UNSIGNED;
		if (b->in[i].position < rr->next)
			rr->next = b->in[i].position;
	}
	pthread_mutex_unlock(&rr->lock);
}

struct rel_record_job {
	struct rel_run *rr;
	struct rel_batch *b;
	size_t nok;
};

/* Records the batch's signatures with their entries, while the release
 * is still active. */
static int
job_rel_record(struct sg_txn *t, void *arg)
{
	struct rel_record_job *jj = arg;
	struct rel_run *rr = jj->rr;
	struct rel_batch *b = jj->b;
	struct sg_request *now = NULL;
	struct svc_artifact a;
	int64_t at = svc_now(rr->s);
	uint64_t index;
	size_t i;
	int r;

	if ((r = sg_store_get_request(t, rr->o->id, &now)) != 0)
		return r;
	r = now->state == SG_REQ_ACTIVE ? 0 : SG_ERR_CONFLICT;
	sg_request_free(now);
	for (i = 0; i < b->n && r == 0; i++) {
		if (b->res[i].status != 0)
			continue;
		memset(&a, 0, sizeof(a));
		a.position = b->in[i].position;
		a.line = b->in[i].line;
		a.path = b->in[i].path;
		a.npath = b->in[i].npath;
		a.sig = b->res[i].sig;
		a.sig_len = b->res[i].sig_len;
		a.cms = b->res[i].cms;
		a.cms_len = b->res[i].cms_len;
		if ((r = svc_log_artifact(rr->s, t, rr->o, rr->kv, &a, at,
		    &index)) == 0)
			r = sg_store_release_item_signed(t, rr->o->id,
			    a.position, a.sig, a.sig_len, a.cms, a.cms_len,
			    index, at);
		jj->nok += r == 0;
	}
	return r;
}

/* Signs one batch and records what was signed. */
static void
batch_run(struct rel_run *rr, struct rel_batch *b)
{
	struct sg_service *s = rr->s;
	struct rel_record_job jj = { rr, b, 0 };
	char why[SG_SIGNER_ERR_MAX];
	size_t i;
	int r;

	memset(b->res, 0, sizeof(b->res));
	why[0] = '\0';
	r = s->signer.sign_batch(s->signer.ctx, rr->o->key, &rr->ev, b->in,
	    b->n, b->res, why, sizeof(why));
	if (r == SG_ERR_VERIFY || r == SG_ERR_FORBIDDEN) {
		run_fail(rr, "the signer refused the release: ", why[0] ?
		    why : sg_strerror(r));
		return;
	}
	if (r != 0) {
		sg_log_warn("release %s: signing paused (%s); will go on",
		    rr->o->id, why[0] ? why : sg_strerror(r));
		pthread_mutex_lock(&rr->lock);
		rr->stop = 1;
		pthread_mutex_unlock(&rr->lock);
		return;
	}
	for (i = 0; i < b->n; i++) {
		if (b->res[i].status == SG_ERR_BUFFER) {
			batch_return(rr, b, i);
			break;
		}
		if (b->res[i].status != 0) {
			snprintf(why, sizeof(why), "artifact %llu: %s",
			    (unsigned long long)b->in[i].position,
			    sg_strerror(b->res[i].status));
			run_fail(rr, "the signer refused ", why);
		}
	}
	r = sg_store_write(s->store, job_rel_record, &jj);
	if (r != 0) {
		pthread_mutex_lock(&rr->lock);
		rr->stop = 1;
		pthread_mutex_unlock(&rr->lock);
	}
	pthread_mutex_lock(&rr->lock);
	rr->signed_now += r == 0 ? jj.nok : 0;
	pthread_mutex_unlock(&rr->lock);
}

static void *
rel_worker(void *arg)
{
	struct rel_run *rr = arg;
	struct rel_batch *b;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		run_fail(rr, "out of memory", "");
		return NULL;
	}
	b->rr = rr;
	for (;;) {
		if (batch_take(rr, b, SG_SIGNER_BATCH_MAX) != 0) {
			run_fail(rr, "cannot compute an inclusion path", "");
			break;
		}
		if (b->n == 0)
			break;
		batch_run(rr, b);
		sg_batch_results_clear(b->res, b->n);
	}
	free(b);
	return NULL;
}

struct rel_done_job {
	struct sg_service *s;
	const char *id;
};

static int
job_rel_done(struct sg_txn *t, void *arg)
{
	struct rel_done_job *dj = arg;

	return sg_store_release_done(t, dj->id, svc_now(dj->s));
}

/* REL_WORKERS batches in flight: while some are signed (each on a
 * channel of its own, so the signer uses every CPU), others are
 * recorded. */
static void
run_sign(struct rel_run *rr)
{
	pthread_t th[REL_WORKERS - 1];
	size_t i, n = 0;

	for (i = 0; i < REL_WORKERS - 1; i++)
		if (pthread_create(&th[n], NULL, rel_worker, rr) == 0)
			n++;
	rel_worker(rr);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

/* Ends the pass over one release: failed, signed, or left for later. */
static void
run_finish(struct sg_service *s, struct rel_run *rr)
{
	struct rel_done_job dj = { s, rr->o->id };
	const char *id = rr->o->id;

	if (rr->failed) {
		sg_log_warn("release %s failed: %s", id, rr->why);
		svc_fail_request(s, id, rr->why);
		return;
	}
	if (rr->signed_now > 0) {
		pthread_mutex_lock(&s->lock);
		s->stats.signatures += rr->signed_now;
		pthread_mutex_unlock(&s->lock);
		svc_notify(s, id);
	}
	if (rr->stop)
		return;
	if (sg_store_write(s->store, job_rel_done, &dj) == 0) {
		sg_log_info("release %s signed: %llu artifacts", id,
		    (unsigned long long)rr->o->count);
		svc_notify(s, id);
	}
}

/* One pass over release id; plock held. */
static void
release_pass(struct sg_service *s, const char *id)
{
	struct rel_run *rr;
	char why[SG_SIGNER_ERR_MAX];
	int r;

	if (!svc_claim(s, id))
		return;
	if (!svc_claim_db(s, id))
		goto out;
	if ((rr = calloc(1, sizeof(*rr))) == NULL)
		goto out;
	rr->s = s;
	pthread_mutex_init(&rr->lock, NULL);
	if ((r = run_load(s, id, rr)) != 0) {
		if (r == SG_ERR_FORBIDDEN)
			svc_fail_request(s, id, "its quorum no longer holds "
			    "under the policy in force");
		goto done;
	}
	if (s->signer.sign_batch == NULL) {
		sg_log_warn("release %s: this signer cannot sign releases", id);
		goto done;
	}
	if ((rr->kv = svc_statement_key(s, rr->o, why, sizeof(why))) == NULL) {
		svc_fail_request(s, id, why);
		goto done;
	}
	run_sign(rr);
	run_finish(s, rr);
done:
	run_clear(rr);
	pthread_mutex_destroy(&rr->lock);
	free(rr);
out:
	svc_unclaim(s, id);
}

static void
releases_pass(struct sg_service *s)
{
	char ids[REL_PASS_MAX][SG_REQUEST_ID_SIZE];
	struct sg_txn *t;
	size_t i, n = 0;

	if (sg_store_read_begin(s->store, &t) != 0)
		return;
	if (sg_store_active_releases(t, REL_PASS_MAX, ids, &n) != 0)
		n = 0;
	sg_store_read_end(t);
	for (i = 0; i < n; i++)
		release_pass(s, ids[i]);
}

static void *
releases_main(void *arg)
{
	struct sg_service *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->rel_lock);
	while (!s->rel_stopping) {
		s->rel_wake = 0;
		pthread_mutex_unlock(&s->rel_lock);
		pthread_rwlock_rdlock(&s->plock);
		releases_pass(s);
		pthread_rwlock_unlock(&s->plock);
		pthread_mutex_lock(&s->rel_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!s->rel_stopping && !s->rel_wake)
			pthread_cond_timedwait(&s->rel_cond, &s->rel_lock,
			    &ts);
	}
	pthread_mutex_unlock(&s->rel_lock);
	return NULL;
}

int
svc_releases_start(struct sg_service *s)
{
	if (pthread_create(&s->rel_thread, NULL, releases_main, s) != 0)
		return SG_ERR_INTERNAL;
	s->rel_started = 1;
	return 0;
}

void
svc_releases_stop(struct sg_service *s)
{
	if (!s->rel_started)
		return;
	pthread_mutex_lock(&s->rel_lock);
	s->rel_stopping = 1;
	pthread_cond_broadcast(&s->rel_cond);
	pthread_mutex_unlock(&s->rel_lock);
	pthread_join(s->rel_thread, NULL);
	s->rel_started = 0;
}

void
svc_releases_wake(struct sg_service *s)
{
	pthread_mutex_lock(&s->rel_lock);
	s->rel_wake = 1;
	pthread_cond_broadcast(&s->rel_cond);
	pthread_mutex_unlock(&s->rel_lock);
}

int
sg_service_release_items(struct sg_service *s, const char *id,
    uint64_t after, size_t max, struct sg_release_item **ret, size_t *ret_n)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_store_release_items(t, id, after, max, 0, ret, ret_n);
	sg_store_read_end(t);
	return r;
}
