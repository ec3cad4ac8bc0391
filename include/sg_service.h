/*
 * The service: signgate's domain operations, below HTTP and JSON.  It owns
 * the policy, the signer, the store and the key table, and enforces the
 * rules: who may request, who may approve, when a request is signed.
 *
 * Every operation that answers success has committed its change to the
 * store first, and the log holds it under a signed checkpoint.  A
 * signature is released (returned, or readable) only then.
 */
#ifndef SG_SERVICE_H
#define SG_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_config.h"
#include "sg_dsse.h"
#include "sg_p11.h"
#include "sg_policy.h"
#include "sg_store.h"
#include "sg_tlog.h"

struct sg_service;

/* What an error is about, for the API's problem documents. */
struct sg_fault {
	char field[64];                /* "" if no single field is at fault */
	char detail[512];
	int recorded;                  /* a 503 whose change was stored all the
	                                  same (no signed checkpoint yet) */
};

struct sg_retired_view {
	const struct sg_retired_key *rk;
	char *certificate_pem;
	char *public_key_pem;
	char spki_sha256[SG_SHA256_HEX_SIZE];
	char reason[256];              /* why it could not be read, or "" */
};

struct sg_key_view {
	const struct sg_policy_key *pk;
	EVP_PKEY *pub;                 /* NULL if the key was not found */
	char spki_sha256[SG_SHA256_HEX_SIZE];
	uint8_t *spki_der;             /* DER SubjectPublicKeyInfo (logged) */
	size_t spki_der_len;
	char *public_key_pem;
	char *certificate_pem;         /* chain as configured, or NULL */
	struct sg_token_info token;
	const struct sg_hsm *hsm;      /* inventory entry, or NULL */
	int usable;
	char reason[256];              /* why not usable */
	struct sg_retired_view retired[SG_POLICY_MAX_RETIRED];
	size_t nretired;
};

int sg_service_open(const struct sg_config *cfg, struct sg_service **ret,
    char *errbuf, size_t errlen);
/* Stops what runs on the service's own threads (housekeeping, releases,
 * the other gateways' notices), which may call the notify function:
 * before whatever that function reaches goes away.  Handlers still work
 * until sg_service_free(). */
void sg_service_quiesce(struct sg_service *s);
void sg_service_free(struct sg_service *s);

/*
 * Re-reads the policy file (SIGHUP).  It is validated first: a file that
 * does not parse, does not raise the version, or changes the set of keys
 * or their HSM locations (which need a restart) is refused with the
 * reason in errbuf, and the running policy stays in force.  Requests made
 * earlier keep being judged by the policy their statement names.
 */
int sg_service_reload(struct sg_service *s, char *errbuf, size_t errlen);

/*
 * The policy versions in the log (docs/API.md, "Policies").  A logged
 * version by SHA-256 (lower-case hex): its text, its policy entry and
 * status ("effective", "pending", "replaced"); SG_ERR_NOT_FOUND when it
 * was never logged or no signed checkpoint covers it yet.
 */
struct sg_policy_version {
	char sha256[SG_SHA256_HEX_SIZE];
	char *text;
	uint64_t log_index;
	char status[16];
};
int sg_service_policy_get(struct sg_service *s, const char *sha256_hex,
    struct sg_policy_version *ret);
void sg_policy_version_clear(struct sg_policy_version *v);

/* The pending version, the statement officers approve, the approvals so
 * far and what the policy in force still asks for. */
struct sg_policy_pending_view {
	char name[SG_NAME_SIZE];
	uint64_t version;
	char sha256[SG_SHA256_HEX_SIZE];
	uint64_t log_index;            /* its policy entry */
	char prev_name[SG_NAME_SIZE];  /* the policy in force */
	uint64_t prev_version;
	char prev_sha256[SG_SHA256_HEX_SIZE];
	char *statement;
	char officers[SG_ENVELOPES_MAX][SG_NAME_SIZE];
	uint64_t approval_index[SG_ENVELOPES_MAX]; /* policy-decision entries */
	size_t napprovals;
	struct sg_term terms[SG_POLICY_MAX_TERMS];
	unsigned missing[SG_POLICY_MAX_TERMS];
	size_t nterms;
	int met;
	int effective;                 /* this approval made it take effect */
	uint64_t effective_index;      /* its policy-effective entry */
};
/* SG_ERR_NOT_FOUND when no version is pending. */
int sg_service_policy_pending(struct sg_service *s,
    struct sg_policy_pending_view *ret);
/*
 * An officer's approval of pending version sha256_hex: a DSSE envelope
 * over the policy approval statement (include/sg_policy_change.h) by an
 * officer the policy in force names in its policy-change terms (and the
 * caller, principal, unless NULL).  Logged as a policy-decision entry;
 * the approval that completes the quorum makes the version take effect
 * in that transaction.  SG_ERR_NOT_FOUND (nothing pending),
 * SG_ERR_CONFLICT (another version is pending, this officer approved
 * already, or it cannot take effect), SG_ERR_FORBIDDEN / SG_ERR_VERIFY /
 * SG_ERR_INVALID (the envelope), with f saying why.
 */
int sg_service_policy_approve(struct sg_service *s, const char *principal,
    const char *sha256_hex, const char *envelope, size_t len,
    struct sg_policy_pending_view *ret, struct sg_fault *f);
void sg_policy_pending_view_clear(struct sg_policy_pending_view *v);

/* Called (from any thread) when a request changes state. */
void sg_service_set_notify(struct sg_service *s,
    void (*fn)(void *arg, const char *id), void *arg);

const struct sg_policy *sg_service_policy(const struct sg_service *s);
size_t sg_service_nkeys(const struct sg_service *s);
const struct sg_key_view *sg_service_key_at(const struct sg_service *s,
    size_t i);
const struct sg_key_view *sg_service_key(const struct sg_service *s,
    const char *name);

struct sg_new_request {
	const char *key;
	enum sg_digest_alg digest_alg;
	uint8_t digest[SG_MAX_DIGEST];
	size_t digest_len;
	enum sg_format format;
	const char *artifact_json;     /* canonical JSON object */
	const char *requester;         /* principal name */
	const char *idem_key;          /* NULL if none */
	const char *body_sha256;       /* hex, with idem_key */
	/*
	 * What is created: a single request (SG_KIND_REQUEST, the zero
	 * value: digest and format above), a release (its artifact lines,
	 * each sg_artifact_line_parse()d and of `format`; no digest) or a
	 * grant (count, lifetime, pattern; no digest).  artifact_json
	 * describes a release ("{}" when nothing is given) and is "{}" for
	 * a grant.
	 */
	enum sg_kind kind;
	const char *const *lines;      /* release */
	size_t nlines;
	uint64_t count;                /* grant: signatures allowed */
	uint64_t lifetime;             /* grant: seconds */
	const char *pattern;           /* grant: artifact names */
	/* A single request made under this grant (signed at once while the
	 * grant holds), or NULL. */
	const char *grant;
	/* The signature scheme the client expects (a policy algorithm
	 * name, "algorithm"), or SG_SIG_NONE when it names none: a key of
	 * another algorithm refuses the request. */
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
};

/* Creates (and when no approval is needed, signs) a request.
 * *ret_existing is set when an idempotent retry returned the original. */
int sg_service_create(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f);
/*
 * The same, without a thread waiting for the signer or the disk when the
 * request is signed at once: done(done_arg, r, q, existing, f) is called
 * exactly once, with the result, the request (0: q is done's to free;
 * otherwise NULL) and the fault, either before this returns (every other
 * kind of request, and errors found at once) or later on another thread.
 * nr is not used after the call returns.
 */
typedef void (*sg_service_created_fn)(void *done_arg, int r,
    struct sg_request *q, int existing, const struct sg_fault *f);
void sg_service_create_async(struct sg_service *s,
    const struct sg_new_request *nr, sg_service_created_fn done,
    void *done_arg);

/* Records an officer's decision from a DSSE envelope posted by `principal`.
 * envelope_json is kept verbatim in the store. */
int sg_service_decide(struct sg_service *s, const char *id,
    const char *principal, const char *envelope_json, size_t len,
    struct sg_request **ret, struct sg_fault *f);
/*
 * The same, without a thread waiting for the commit or the signer:
 * done(done_arg, r, q, f) is called exactly once, with the result, the
 * request as it stands after the decision (0: q is done's to free;
 * otherwise NULL) and the fault, before this returns (errors found at
 * once) or later on another thread.  The arguments are not used after
 * the call returns.
 */
typedef void (*sg_service_decided_fn)(void *done_arg, int r,
    struct sg_request *q, const struct sg_fault *f);
void sg_service_decide_async(struct sg_service *s, const char *id,
    const char *principal, const char *envelope_json, size_t len,
    sg_service_decided_fn done, void *done_arg);

/*
 * Revokes an active grant: allowed to an officer who may approve it (under
 * its policy and the one in force); logged, and no signature is made or
 * released under it from the commit on.  reason as for cancel.
 */
int sg_service_revoke(struct sg_service *s, const char *id,
    const char *principal, const char *reason, struct sg_request **ret,
    struct sg_fault *f);

/* A release's artifacts from position `after`, at most max (see
 * sg_store_release_items). */
int sg_service_release_items(struct sg_service *s, const char *id,
    uint64_t after, size_t max, struct sg_release_item **ret,
    size_t *ret_n);
/* The proof bundle of an artifact signature: its entry's bundle, then the
 * approved entry's, under the same checkpoint (see sg_service_log_bundle
 * for what and f). */
int sg_service_artifact_bundle(struct sg_service *s, uint64_t index,
    uint64_t approved_index, const char *what, char **ret,
    struct sg_fault *f);

int sg_service_get(struct sg_service *s, const char *id,
    struct sg_request **ret);
/* As sg_store_list: state SG_REQ_NONE and key NULL match any. */
int sg_service_list(struct sg_service *s, enum sg_req_state state,
    const char *key, int64_t before_seq, size_t limit,
    struct sg_request ***ret, size_t *ret_n);

/* The quorum state of a request under the policy its statement names,
 * counting only officers the policy in force allows too. */
int sg_service_quorum(struct sg_service *s, const struct sg_request *r,
    struct sg_quorum_result *ret);

/* What a request view shows about its quorum: the terms of the request's
 * own policy (group labels and counts), what is missing, and which
 * recorded decisions count (under the request's policy and the one in
 * force, named in_force as "name@version"). */
struct sg_request_quorum {
	struct sg_quorum_result res;
	struct sg_term terms[SG_POLICY_MAX_TERMS];
	size_t nterms;
	uint8_t counted[SG_ENVELOPES_MAX];
	char in_force[SG_POLICY_NAME_MAX + 24];
};
int sg_service_request_quorum(struct sg_service *s, const struct sg_request *r,
    struct sg_request_quorum *ret);

/*
 * Cancels a pending request: allowed to its requester and to an officer
 * who may approve it (under its policy and the one in force).  reason is
 * required, 1 to SG_CANCEL_REASON_MAX bytes without control characters.
 * SG_ERR_CONFLICT (with the state) when the request is not pending.
 */
#define SG_CANCEL_REASON_MAX 256
int sg_service_cancel(struct sg_service *s, const char *id,
    const char *principal, const char *reason, struct sg_request **ret,
    struct sg_fault *f);

/* A real test signature with every usable key (cached for a few seconds).
 * 0 when ready; otherwise reason says what is wrong. */
int sg_service_ready(struct sg_service *s, char *reason, size_t len);

/* The transparency log, read side.  Everything served is covered by the
 * latest signed checkpoint. */
const char *sg_service_log_vkey(const struct sg_service *s);
int sg_service_log_checkpoint(struct sg_service *s, char **ret_note,
    uint64_t *ret_size);
int sg_service_log_entry(struct sg_service *s, uint64_t index, char **ret,
    size_t *ret_len);
int sg_service_log_inclusion(struct sg_service *s, uint64_t index,
    uint64_t size, uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n);
int sg_service_log_consistency(struct sg_service *s, uint64_t old_size,
    uint64_t new_size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n);
/*
 * The c2sp.org/tlog-proof@v1 bundle for one entry, the signature `what`
 * ("the signature of request <id>").  With fail-closed witnesses, after
 * waiting in vain for a checkpoint with their quorum: SG_ERR_UNAVAILABLE,
 * f (may be NULL) saying that `what` is recorded and awaits them.
 */
int sg_service_log_bundle(struct sg_service *s, uint64_t index,
    const char *what, char **ret, struct sg_fault *f);
/* A c2sp.org/tlog-tiles tile or entry bundle (see sg_tlog_tile). */
int sg_service_log_tile(struct sg_service *s, const struct sg_tile *tile,
    uint8_t **ret, size_t *ret_len, uint64_t *ret_bad);

/* Counters and gauges for /metrics. */
#define SG_HSM_BUCKETS 11
extern const double sg_hsm_bucket_bounds[SG_HSM_BUCKETS]; /* seconds */

struct sg_service_stats {
	uint64_t requests_created;
	uint64_t signatures;
	uint64_t approvals;
	uint64_t rejections;
	uint64_t expired;
	uint64_t hsm_errors;
	/* HSM signing latency: cumulative counts per bucket, then +Inf. */
	uint64_t hsm_bucket[SG_HSM_BUCKETS + 1];
	uint64_t hsm_count;
	double hsm_sum;
	/* Gauges, read at the time of the call. */
	uint64_t pending;
	uint64_t log_size;
	int64_t checkpoint_at;         /* unix seconds, 0 if unknown */
	uint64_t log_uncovered;        /* entries no checkpoint covers yet */
	uint64_t checkpoint_refusals;  /* trees the signer refused to sign */
	uint64_t batches, batched_jobs;
	/* Webhook deliveries: waiting, made, failed tries. */
	uint64_t notify_pending, notify_delivered, notify_failures;
};
/* Signatures made with a key since start (by index, as
 * sg_service_key_at). */
uint64_t sg_service_key_signatures(struct sg_service *s, size_t i);
void sg_service_stats(struct sg_service *s, struct sg_service_stats *ret);
/* Each configured witness's counters (sg_witnessing.h); 0 without. */
struct sg_witness_stats;
size_t sg_service_witness_stats(struct sg_service *s,
    struct sg_witness_stats *out, size_t cap);

#endif
