/*
 * The service's shared state and the functions its files share; not for
 * anyone else (the API sees include/sg_service.h only).
 *
 * Files, by job, and what each may call (arrows point to callees):
 *
 *   service.c           open, close, notification, clock, faults
 *   service_signer.c    the signer process behind sg_service_signer
 *   service_keys.c      key views and their accessors
 *   service_log.c       log entries written, the log read side
 *   service_quorum.c    a request's policy and quorum
 *   service_sign.c      signing: claims, the signer call, time-stamps
 *   service_requests.c  create, get, list      -> sign, log, keys
 *   service_decide.c    decide, cancel         -> sign, quorum, log
 *   service_sweep.c     housekeeping thread    -> sign, quorum, log
 *   service_release.c   the release thread     -> quorum, log, keys, store
 *   service_grant.c     signing under a grant  -> release, log, keys, store
 *   service_reload.c    policy reload          -> keys, policy
 *   service_policy.c    policy versions in the log, approvals of a
 *                       pending one                -> reload, log, store
 *   service_metrics.c   statistics, readiness
 *
 * Locks, always taken in this order:
 *   pclock (mutex)   policy changes (reload, policy approvals);
 *   plock (rwlock)   the policy and key views: read-held by every
 *                    operation, write-held only by reload's switch;
 *   lock (mutex)     claims, the retry list, statistics, ready cache;
 *                    never held across a store write or a signer call;
 *   stop_lock        the housekeeping thread's stop flag;
 *   rel_lock         the release thread's wake and stop flags.
 * A store write job runs on the store's writer thread: it must not take
 * plock or call the signer (the caller holds plock for it).
 */
#ifndef SG_SERVICE_INT_H
#define SG_SERVICE_INT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "sg_entry.h"
#include "sg_limits.h"
#include "sg_service.h"
#include "sg_service_signer.h"
#include "sg_signer_proc.h"

#define SVC_MAX_CLAIMS 256
#define SVC_MAX_KEYS_COUNTED 1024
#define SVC_READY_CACHE_SECONDS 5
#define SVC_SWEEP_BATCH 64

/* A replaced policy with its key views, kept until shutdown. */
struct svc_retained {
	struct sg_policy *policy;
	char *text;
	struct sg_key_view *keys;
	size_t nkeys;
	struct svc_retained *next;
};

struct svc_sigcount {
	char name[SG_POLICY_NAME_MAX];
	uint64_t n;
};

struct sg_service {
	const struct sg_config *cfg;
	struct sg_policy *policy;
	char *policy_text;
	struct sg_service_signer signer;
	struct sg_store *store;
	struct sg_tlog *log;
	struct sg_witnessing *witnessing; /* NULL without witnesses */
	struct sg_notify *notifier;    /* NULL without webhooks */
	struct sg_key_view *keys;
	size_t nkeys;
	int64_t (*now)(void *ctx);
	void *now_ctx;

	void (*notify)(void *, const char *);
	void *notify_arg;

	/*
	 * The policy and the key views derived from it are replaced as a
	 * whole on reload, under the write lock; every operation that uses
	 * them holds the read lock.  Replaced ones are kept until shutdown,
	 * so pointers handed out earlier stay valid.
	 */
	pthread_rwlock_t plock;
	struct svc_retained *retained;
	/* One policy change at a time: a reload, or an approval of a
	 * pending version (service_policy.c); taken before plock. */
	pthread_mutex_t pclock;

	pthread_mutex_t lock;          /* claims, stats, ready cache */
	pthread_cond_t unclaimed;      /* a claim was released */
	char claims[SVC_MAX_CLAIMS][SG_REQUEST_ID_SIZE];
	int claims_db[SVC_MAX_CLAIMS]; /* also claimed in a shared store */
	size_t nclaims;
	/* ids a caller's thread will sign itself (svc_hold): one entry a
	 * holder, so the same id may stand more than once */
	char holds[SVC_MAX_CLAIMS][SG_REQUEST_ID_SIZE];
	size_t nholds;
	/* quorum met, signing to retry */
	char retry[SVC_MAX_CLAIMS][SG_REQUEST_ID_SIZE];
	size_t nretry;
	int64_t sweep_after;           /* where the pending scan goes on */
	struct sg_service_stats stats;
	struct svc_sigcount *sigcounts; /* released signatures, by key */
	size_t nsigcounts;
	time_t ready_at;
	int ready_result;
	char ready_reason[256];

	pthread_t sweeper;
	int sweeper_started;
	/* The release thread (service_release.c). */
	pthread_t rel_thread;
	int rel_started;
	pthread_mutex_t rel_lock;
	pthread_cond_t rel_cond;
	int rel_stopping, rel_wake;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stopping;
	/* Operations in flight without a thread (service_async.c). */
	pthread_mutex_t alock;
	pthread_cond_t acond;          /* a step queued, or stop */
	pthread_cond_t aidle;          /* none in flight */
	struct svc_step *ahead, *atail;
	pthread_t *athreads;
	unsigned nathreads;
	unsigned ainflight;
	int aclosing, astop, apaused;
};

/* A step of an operation in flight, queued for the executor; embedded in
 * the operation. */
struct svc_step {
	void (*fn)(void *);
	void *arg;
	struct svc_step *next;
};

/* service.c */
void svc_fault(struct sg_fault *f, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void svc_recorded_fault(struct sg_fault *f, const char *what, const char *id,
    const char *then);
void svc_notify(struct sg_service *s, const char *id);
int64_t svc_now(const struct sg_service *s);
int svc_policy_read(const char *path, char **ret_text,
    struct sg_policy **ret, char *errbuf, size_t errlen);
int svc_policy_store(struct sg_service *s, const struct sg_policy *p,
    const char *text);

/* An asynchronous signature (service_sign.c). */
struct svc_sign_call {
	struct sg_service *s;
	const struct sg_key_view *kv;
	const struct sg_request *q;
	struct svc_signed *o;          /* the answer */
	void (*then)(void *);
	void *then_arg;
	int r;                         /* the answer's result */
	char err[SG_SIGNER_ERR_MAX];   /* and why, when it failed */
	/* Inside. */
	int64_t t0;
	struct sg_sign_msg msg;
	struct sg_sign_evidence ev;
	const char *envs[SG_ENVELOPES_MAX];
	size_t lens[SG_ENVELOPES_MAX];
	struct svc_step step;
};
int svc_sign_request_async(struct svc_sign_call *sc, const uint8_t *counted);
int svc_sign_pending_async(struct sg_service *s, const char *id,
    void (*then)(void *, int, int), void *arg, int *ret_kept);

/* service_async.c */
int svc_async_start(struct sg_service *s);
void svc_async_stop(struct sg_service *s);
void svc_exec(struct sg_service *s, struct svc_step *st, void (*fn)(void *),
    void *arg);
int svc_async_enter(struct sg_service *s);
void svc_async_leave(struct sg_service *s);
void svc_async_pause(struct sg_service *s);
void svc_async_unpause(struct sg_service *s);

/* service_signer.c */
int svc_signer_start(const struct sg_config *cfg, const struct sg_policy *p,
    struct sg_service_signer *ret, char *errbuf, size_t errlen);

/* service_keys.c; with plock held where the key table is read. */
int svc_log_key_clash(const struct sg_config *cfg,
    const struct sg_policy_key *pk, EVP_PKEY *pub, EVP_PKEY *logpub,
    char *errbuf, size_t errlen);
int svc_key_view_fill(struct sg_service *s, const struct sg_policy *p,
    struct sg_key_view *kv, const char *dir, EVP_PKEY *logpub, int strict,
    char *errbuf, size_t errlen);
void svc_keys_free(struct sg_key_view *keys, size_t n);
const struct sg_key_view *svc_key_locked(const struct sg_service *s,
    const char *name);

/* service_log.c: inside a write job. */
void svc_entry_head(struct sg_entry *e, enum sg_entry_type type, int64_t now,
    const char *id);
int svc_log_entry(struct sg_service *s, struct sg_txn *t,
    const struct sg_entry *e, uint64_t *ret_index);
int svc_log_signature(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, const uint8_t *counted,
    const struct sg_key_view *kv, const uint8_t *sig, size_t sig_len,
    const uint8_t *cms, size_t cms_len, int64_t now, uint64_t *ret_index);
/* One artifact signed under a release or a grant. */
struct svc_artifact {
	uint64_t position;             /* release: from 0; grant: from 1 */
	const char *line;              /* the artifact line, no LF */
	const uint8_t (*path)[SG_HASH_LEN]; /* release: in the manifest */
	size_t npath;
	const uint8_t *sig;
	size_t sig_len;
	const uint8_t *cms;
	size_t cms_len;
};
int svc_log_approved(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, const uint8_t *counted, int64_t now);
int svc_log_artifact(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *o, const struct sg_key_view *kv,
    const struct svc_artifact *a, int64_t now, uint64_t *ret_index);
int svc_finish_in(struct sg_service *s, struct sg_txn *t, const char *id,
    enum sg_req_state state, const char *reason);
int svc_log_covered(struct sg_service *s, const char *id,
    struct sg_fault *f);

/* service_quorum.c; with plock held. */
int svc_request_policy(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, struct sg_policy **ret, int *ret_owned);
void svc_evaluate(const struct sg_service *s, const struct sg_policy *p,
    const struct sg_policy_key *pk, const struct sg_request *q,
    struct sg_quorum_result *res, uint8_t *counted);
/* Of the decisions counted[] marks for request q (svc_evaluate), the
 * approvals that make its quorum, in kept[]: a smallest set that still
 * meets it, so at most the sum of the key's counts (SG_QUORUM_MAX).
 * SG_ERR_CONFLICT when the counted decisions do not meet it. */
int svc_quorum_minimal(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, const uint8_t *counted,
    uint8_t kept[SG_ENVELOPES_MAX]);
int svc_quorum_view_in(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, struct sg_request_quorum *ret);
int svc_quorum_view_locked(struct sg_service *s, const struct sg_request *q,
    struct sg_request_quorum *ret);

/* service_sign.c; with plock held. */
struct svc_signed {
	struct sg_sign_reply reply;
	uint8_t *cms;
	size_t cms_len;
	char *timestamp_note;
	int tsa_failed;                /* a required authority failed */
};
void svc_signed_clear(struct svc_signed *o);
/* What the signer is given as q's evidence: its statement and the
 * envelopes counted[i] says count (envs and lens hold SG_ENVELOPES_MAX),
 * in the format of q. */
void svc_evidence_of(const struct sg_request *q, const uint8_t *counted,
    struct sg_sign_evidence *ev, const char **envs, size_t *lens);
int svc_sign_request(struct sg_service *s, const struct sg_key_view *kv,
    const struct sg_request *q, const uint8_t *counted, struct svc_signed *o,
    char *err, size_t errlen);
int svc_sign_pending(struct sg_service *s, const char *id, int *ret_kept);
/* The same for the housekeeping sweep: SG_ERR_CONFLICT too while a
 * caller holds the id (svc_hold). */
int svc_sign_unheld(struct sg_service *s, const char *id);
/* One thread signs an object at a time: 1 if this one may now. */
int svc_claim(struct sg_service *s, const char *id);
/* The same, and 0 while a caller holds the id (svc_hold). */
int svc_claim_unheld(struct sg_service *s, const char *id);
void svc_unclaim(struct sg_service *s, const char *id);
/* After svc_claim: on a store other gateways share, the database's claim
 * too (sg_store_claim); 0 if another gateway holds it.  1 at once on a
 * store of its own. */
int svc_claim_db(struct sg_service *s, const char *id);
/*
 * A caller about to write what may let it sign request id (a decision
 * that may complete the quorum, a request taken under a grant) holds the
 * id from before that write until its own signing attempt has ended, so
 * that the housekeeping sweep, which signs what nobody is signing, does
 * not take the request from under it (the caller would then answer with
 * the request unsigned): the sweep claims with svc_claim_unheld, which
 * checks the holds under the claims' lock, so a sweep that read the
 * request after the holder's write also sees the hold.  svc_hold returns
 * 1 when held (0 when the set is
 * full: the sweep may then compete, as without a hold); only a 1 is
 * undone with svc_unhold.  Several callers may hold the same id.
 */
int svc_hold(struct sg_service *s, const char *id);
void svc_unhold(struct sg_service *s, const char *id);
/* The key view of the key q's statement names (by SPKI digest), or NULL
 * with why (rotated, gone). */
const struct sg_key_view *svc_statement_key(struct sg_service *s,
    const struct sg_request *q, char *why, size_t whylen);
/* pending or active → failed, with its log entry. */
void svc_fail_request(struct sg_service *s, const char *id, const char *why);
void svc_retry_later(struct sg_service *s, const char *id);
void svc_wait_unclaimed(struct sg_service *s, const char *id, int seconds);

/* service_requests.c */
int svc_find_original(struct sg_txn *t, const struct sg_new_request *nr,
    struct sg_request **ret, struct sg_fault *f);
int svc_original(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, struct sg_fault *f);
int svc_random_id(char out[SG_REQUEST_ID_SIZE]);
/* 0, or SG_ERR_INVALID with the fault when nr names another scheme than
 * the key's. */
int svc_check_scheme(const struct sg_policy_key *pk,
    const struct sg_new_request *nr, struct sg_fault *f);

/* service_grant.c; with plock held. */
int svc_grant_create(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f);
int svc_grant_sign_pending(struct sg_service *s, const char *id);

/* service_release.c */
int svc_releases_start(struct sg_service *s);
void svc_releases_stop(struct sg_service *s);
void svc_releases_wake(struct sg_service *s);
/* The evidence a release or grant was approved with: its statement and
 * the envelopes that count (under its policy and the one in force), in
 * *ev (pointing into o) ; plock held. */
int svc_object_evidence(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *o, struct sg_sign_evidence *ev,
    const char **envs, size_t *lens);

/* service_reload.c; with pclock held. */
int svc_policy_apply(struct sg_service *s, struct sg_policy **np,
    char **text, int (*logged)(struct sg_service *, void *), void *arg,
    char *errbuf, size_t errlen);
int svc_policy_validate(struct sg_service *s, const struct sg_policy *np,
    char *errbuf, size_t errlen);

/* service_policy.c */
/* At start: the policy read is logged unless it is the one in force;
 * refused when the policy in force asks for approval of its successor. */
int svc_policy_log_start(struct sg_service *s, char *errbuf, size_t errlen);
/* SIGHUP, with pclock held: np in force (logged), or logged pending.
 * Takes over *np and *text when it keeps them. */
int svc_policy_reload(struct sg_service *s, struct sg_policy **np,
    char **text, char *errbuf, size_t errlen);
/* The statement of the policy entry at index names (a signature's or an
 * approved entry's): the bundle of that policy's own entry, appended to
 * *text under the same checkpoint; nothing when it was not logged before
 * that entry.  When that policy was logged pending, then the bundles of
 * its policy-effective entry, of each policy-decision entry that lists
 * and of the previous policy's entry. */
int svc_policy_bundle_add(struct sg_txn *t, uint64_t index, char **text);

/* service_sweep.c */
int svc_sweeper_start(struct sg_service *s);
void svc_sweeper_stop(struct sg_service *s);

/* service_metrics.c */
void svc_stat_add(struct sg_service *s, uint64_t *counter);
void svc_count_signature(struct sg_service *s, const struct sg_key_view *kv);
void svc_hsm_time(struct sg_service *s, int64_t t0);

/* service_notify.c: webhooks told of every change (src/notify.c). */
int svc_notify_open(struct sg_service *s, char *errbuf, size_t errlen);
int svc_notify_start(struct sg_service *s);
void svc_notify_stop(struct sg_service *s);

#endif
