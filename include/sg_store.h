/*
 * The durable request store, on SQLite (WAL, synchronous=FULL) or on a
 * PostgreSQL database that several gateways share: a 2xx answer is given
 * only after the transaction holding the change has committed.
 *
 * Reads use a pool of connections (snapshots that do not block the
 * writer); writes go through one writer thread that commits queued jobs
 * together, one batch at a time across every gateway on the database.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "sg_db.h"
#include "sg_limits.h"
#include "sg_types.h"

/* The schema version this build writes (SQLite: PRAGMA user_version;
 * PostgreSQL: the signgate_schema table); see src/store_schema.c for how
 * a database is brought to it. */
#define SG_STORE_SCHEMA_VERSION 8
/* How long a gateway's claim on a request lasts unless renewed. */
#define SG_STORE_CLAIM_SECONDS 60

struct sg_store;
struct sg_txn;                     /* an open transaction */

struct sg_approval {
	char officer[SG_NAME_SIZE];
	int approve;                   /* 1 approve, 0 reject */
	int64_t at;                    /* unix seconds */
	char *envelope;                /* the DSSE envelope JSON as posted */
};

struct sg_request {
	int64_t seq;                   /* creation order */
	char id[SG_REQUEST_ID_SIZE];
	char key[SG_NAME_SIZE];
	char digest_alg[8];
	char digest_hex[SG_DIGEST_HEX_SIZE];
	enum sg_format format;
	char *artifact_json;           /* canonical JSON object */
	char requester[SG_NAME_SIZE];
	int64_t created_at, expires_at;
	char policy_name[SG_NAME_SIZE];
	uint64_t policy_version;
	char policy_sha256[SG_SHA256_HEX_SIZE];
	char spki_sha256[SG_SHA256_HEX_SIZE];
	char *statement;
	enum sg_req_state state;
	char *error;                   /* NULL unless failed */
	uint8_t *signature;
	size_t signature_len;
	uint8_t *cms;
	size_t cms_len;
	int64_t signed_at;
	int64_t log_index;             /* the signature's log entry, or -1 */
	char *timestamp_note;          /* "added <time>" / "skipped: why" */
	char cancelled_by[SG_NAME_SIZE]; /* cancelled: by whom */
	char *cancel_reason;           /* cancelled: why, else NULL */
	int64_t cancelled_at;
	struct sg_approval *approvals; /* in the order recorded */
	size_t napprovals;
	/* Releases and grants. */
	enum sg_kind kind;
	uint64_t count;                /* release: artifacts; grant: N */
	uint64_t used;                 /* grant: signatures taken;
	                                  release: artifacts signed */
	uint64_t signed_count;         /* release: artifacts signed (used) */
	int64_t approved_index;        /* the approved entry, or -1 */
	/* A request made under a grant: its id and sequence number. */
	char grant_id[SG_REQUEST_ID_SIZE]; /* "" if none */
	uint64_t grant_seq;
};

/* One artifact of a release, at its position in the manifest. */
struct sg_release_item {
	uint64_t position;
	char *line;                    /* the artifact line, no LF */
	uint8_t *signature;            /* NULL until signed */
	size_t signature_len;
	uint8_t *cms;
	size_t cms_len;
	int64_t log_index;             /* its artifact-signature entry, or -1 */
	int64_t signed_at;
};
void sg_release_items_free(struct sg_release_item *v, size_t n);

struct sg_store_conf {
	enum sg_db_backend backend;
	const char *dir;               /* SQLite: dir/signgate.db */
	const char *conninfo;          /* PostgreSQL: libpq conninfo */
	const char *password;          /* PostgreSQL: NULL if none */
	const char *node;              /* this gateway's name in claims */
	int claim_seconds;             /* 0: SG_STORE_CLAIM_SECONDS */
	int shared;                    /* SQLite: claim as if shared (tests) */
};

/* Opens (creating when missing) the database and brings its schema to
 * SG_STORE_SCHEMA_VERSION.  SG_ERR_CONFLICT (and a log line saying so) if
 * the database is at a newer version than this build knows. */
int sg_store_open_conf(const struct sg_store_conf *c, struct sg_store **ret);
/* SQLite in dir. */
int sg_store_open(const char *dir, struct sg_store **ret);

/*
 * Copies the store `from` names into the empty store `to` names, on the
 * same backend or the other one (src/store_copy.c), with no gateway
 * running on either: every table but the claims, in one transaction on
 * the target that is committed only once the target, read back, holds
 * the source's rows and a log whose first N entries have the root of the
 * source's newest signed checkpoint (of N entries).  SG_ERR_NOT_FOUND if
 * the source holds no store; SG_ERR_CONFLICT if the target holds any row
 * of the tables copied (requests, approvals, policies, release artifacts,
 * log entries, nodes or checkpoints); SG_ERR_VERIFY if a check fails;
 * then the target is left as it was.  A short report goes to `report`
 * (may be NULL) once committed; errbuf says why it failed.  A PostgreSQL
 * conninfo must not hold the password (password in the conf).
 */
int sg_store_copy(const struct sg_store_conf *from,
    const struct sg_store_conf *to, FILE *report, char *errbuf,
    size_t errlen);
/* The same checks, of a copy made before, without writing either
 * side. */
int sg_store_copy_check(const struct sg_store_conf *from,
    const struct sg_store_conf *to, FILE *report, char *errbuf,
    size_t errlen);
void sg_store_close(struct sg_store *st);
enum sg_db_backend sg_store_backend(const struct sg_store *st);
/* Whether other gateways may write the same database (PostgreSQL). */
int sg_store_shared(const struct sg_store *st);
const char *sg_store_node(const struct sg_store *st);

/* A read-only snapshot, from a pool of reader connections. */
int sg_store_read_begin(struct sg_store *st, struct sg_txn **ret);
void sg_store_read_end(struct sg_txn *t);

/*
 * Writes.  A job runs on the single writer thread inside a transaction
 * shared with the other jobs queued meanwhile (group commit: one fsync per
 * batch).  sg_store_write() returns once the batch has committed, with the
 * job's own result; if the batch could not commit it returns
 * SG_ERR_UNAVAILABLE and nothing the job did is kept.  A job must not
 * block (no HSM calls, no nested sg_store_write).
 */
typedef int (*sg_store_job_fn)(struct sg_txn *t, void *arg);
int sg_store_write(struct sg_store *st, sg_store_job_fn fn, void *arg)
    __attribute__((warn_unused_result));
/* The same; when it returns SG_ERR_UNAVAILABLE, *ret_kept tells whether
 * the job's changes were committed all the same (the batch committed,
 * the batch_durable hook failed): not to be acknowledged, but there. */
int sg_store_write_kept(struct sg_store *st, sg_store_job_fn fn, void *arg,
    int *ret_kept) __attribute__((warn_unused_result));
/*
 * The same without waiting: queues the job and returns.  When it returns
 * 0, done(done_arg, result, kept) is called exactly once, on the writer
 * thread, once the job's batch has committed and the batch_durable hook
 * has run (or the batch failed): it must not block and must not write;
 * it hands its work on.  fn and arg must stay valid until then.  An error
 * return (the store is closing, out of memory) means done will not be
 * called.
 */
typedef void (*sg_store_done_fn)(void *done_arg, int result, int kept);
int sg_store_write_async(struct sg_store *st, sg_store_job_fn fn, void *arg,
    sg_store_done_fn done, void *done_arg)
    __attribute__((warn_unused_result));

/* Observers of the writer, called on the writer thread: when a batch's
 * transaction has begun (its lock held), around each job
 * (so in-memory state can follow savepoint rollbacks), and before the
 * batch commits (may fail it), after it commits, or when it is dropped.
 * batch_durable runs after batch_committed, outside any transaction; if
 * it fails, the batch stays committed but its jobs are not acknowledged
 * (sg_store_write_kept). */
struct sg_store_hooks {
	void *ctx;
	int (*batch_begin)(void *ctx, struct sg_txn *t);  /* may fail it */
	void (*job_begin)(void *ctx);
	void (*job_abort)(void *ctx);
	int (*batch_end)(void *ctx, struct sg_txn *t);
	void (*batch_committed)(void *ctx);
	void (*batch_abort)(void *ctx);
	int (*batch_durable)(void *ctx, struct sg_txn *t);
};
/* From batch_durable only: runs fn in a transaction of its own that does
 * not wait for the disk, for data that can be recomputed if a crash loses
 * it; the next batch's COMMIT makes it durable. */
int sg_store_txn_relaxed(struct sg_txn *t, sg_store_job_fn fn, void *arg)
    __attribute__((warn_unused_result));
void sg_store_set_hooks(struct sg_store *st, const struct sg_store_hooks *h);
void sg_store_batch_stats(struct sg_store *st, uint64_t *ret_batches,
    uint64_t *ret_jobs);

/* For modules that keep their own tables in the store (the log). */
struct sg_db *sg_store_txn_db(struct sg_txn *t);
int sg_store_txn_is_write(const struct sg_txn *t);

/* The functions below are called inside a read or write transaction. */

/* Finds the request a requester created with this idempotency key. */
int sg_store_find_idempotent(struct sg_txn *t, const char *requester,
    const char *idem_key, char ret_id[SG_REQUEST_ID_SIZE],
    char ret_body_sha256[SG_SHA256_HEX_SIZE]);
/* Inserts a new request (seq and approvals are ignored); SG_ERR_INVALID
 * if its state or format is not one. */
int sg_store_insert_request(struct sg_txn *t, const struct sg_request *r,
    const char *idem_key, const char *body_sha256);
/* Loads a request with its approvals; SG_ERR_NOT_FOUND if unknown,
 * SG_ERR_IO (and a log line naming the value) if the row's state or format
 * is not one: such a row is refused, never read as a default. */
int sg_store_get_request(struct sg_txn *t, const char *id,
    struct sg_request **ret);
void sg_request_free(struct sg_request *r);

/* Records one officer's decision; SG_ERR_CONFLICT if this officer has
 * already decided on this request, SG_ERR_TOO_LARGE if the request holds
 * SG_ENVELOPES_MAX decisions already (the most its signature's evidence
 * and log entry can carry). */
int sg_store_add_approval(struct sg_txn *t, const char *id,
    const char *officer, int approve, int64_t at, const char *envelope);

/* pending or active → to (SG_REQ_REJECTED, _EXPIRED or _FAILED;
 * SG_ERR_INVALID for another); SG_ERR_CONFLICT if the request is neither
 * pending nor active. */
int sg_store_finish(struct sg_txn *t, const char *id, enum sg_req_state to,
    const char *error);
/* pending → cancelled, with who, why and when; SG_ERR_CONFLICT if the
 * request is no longer pending. */
int sg_store_cancel(struct sg_txn *t, const char *id, const char *by,
    const char *reason, int64_t at);
/* pending → signed with the signature; SG_ERR_CONFLICT if not pending. */
int sg_store_set_signed(struct sg_txn *t, const char *id,
    const uint8_t *sig, size_t sig_len, const uint8_t *cms, size_t cms_len,
    int64_t signed_at, const char *timestamp_note);

/* How many requests of this requester (NULL: of anyone) are pending. */
int sg_store_count_pending(struct sg_txn *t, const char *requester,
    uint64_t *ret);

/* Records the index of the signature's log entry. */
int sg_store_set_log_index(struct sg_txn *t, const char *id, uint64_t index);

/* Newest first.  state SG_REQ_NONE and key NULL match any; before_seq 0 =
 * from the newest.  SG_ERR_INVALID for a state that is not one. */
int sg_store_list(struct sg_txn *t, enum sg_req_state state, const char *key,
    int64_t before_seq, size_t limit, struct sg_request ***ret,
    size_t *ret_n);
void sg_request_list_free(struct sg_request **v, size_t n);

/* Ids of pending requests and active grants whose expiry has passed at
 * `now` (at most max). */
int sg_store_due_expiry(struct sg_txn *t, int64_t now, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n);
/* Pending requests created after after_seq, oldest first (at most max);
 * *ret_last_seq is the seq of the last one returned, for the next page. */
int sg_store_pending_after(struct sg_txn *t, int64_t after_seq, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n, int64_t *ret_last_seq);
/* Ids of pending requests, oldest first (at most max). */
int sg_store_pending_ids(struct sg_txn *t, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n);

/* ---- gateways sharing one database (src/store_claim.c) ---- */

/*
 * A claim says which gateway works on a request, release or grant
 * request: taken before the signer is asked, held for claim_seconds and
 * extended by each guarded write that records a signature for it
 * (sg_store_set_signed, sg_store_release_item_signed), which refuse to
 * record for a gateway that no longer holds it.  A gateway that dies
 * leaves its claims to expire; another then takes them over.  On a store
 * that is not shared there is one gateway: *ret_got is 1 and nothing is
 * written.
 */
int sg_store_claim(struct sg_store *st, const char *id, int *ret_got);
void sg_store_unclaim(struct sg_store *st, const char *id);

/* Tells the other gateways that id changed (PostgreSQL NOTIFY, after the
 * change has committed); nothing on a store that is not shared. */
void sg_store_announce(struct sg_store *st, const char *id);
/* Calls fn(arg, id) on a thread of the store's for each change another
 * gateway announces, until sg_store_close().  0 on a store that is not
 * shared (nothing will come). */
int sg_store_listen(struct sg_store *st, void (*fn)(void *, const char *),
    void *arg);
/* Stops the listener (no more calls of fn); also done by close. */
void sg_store_unlisten(struct sg_store *st);

/* ---- releases and grants (src/store_release.c) ---- */

/* Stores a release's artifact lines at positions 0..n-1. */
int sg_store_release_put_lines(struct sg_txn *t, const char *id,
    const char *const *lines, size_t n);
/* Artifacts of a release from position `after` (inclusive), at most max,
 * in position order; unsigned_only: only those without a signature. */
int sg_store_release_items(struct sg_txn *t, const char *id,
    uint64_t after, size_t max, int unsigned_only,
    struct sg_release_item **ret, size_t *ret_n);
/* Records an artifact's signature and its log entry, and counts it in
 * the release's `used`; SG_ERR_CONFLICT if it is signed already. */
int sg_store_release_item_signed(struct sg_txn *t, const char *id,
    uint64_t position, const uint8_t *sig, size_t sig_len,
    const uint8_t *cms, size_t cms_len, uint64_t log_index, int64_t at);
/* pending → active, with the approved entry's index. */
int sg_store_activate(struct sg_txn *t, const char *id,
    uint64_t approved_index);
/* A release: active → signed, once every artifact is signed
 * (SG_ERR_CONFLICT otherwise). */
int sg_store_release_done(struct sg_txn *t, const char *id, int64_t at);
/* Ids of active releases, oldest first (at most max). */
int sg_store_active_releases(struct sg_txn *t, size_t max,
    char (*ret_ids)[SG_REQUEST_ID_SIZE], size_t *ret_n);
/* Takes the next sequence number of an active grant that is unexpired at
 * `now` and not used up: *ret_seq = used + 1, and used grows by one.
 * SG_ERR_CONFLICT otherwise. */
int sg_store_grant_take(struct sg_txn *t, const char *grant_id, int64_t now,
    uint64_t *ret_seq);
/* active → revoked, with who, why and when (src/store.c, beside cancel). */
int sg_store_revoke(struct sg_txn *t, const char *id, const char *by,
    const char *reason, int64_t at);

/* Keeps every policy text a request was made under, by its SHA-256, so
 * that a pending request is judged by the policy its statement names. */
int sg_store_put_policy(struct sg_txn *t, const char *sha256_hex,
    const char *text, int64_t now);
int sg_store_get_policy(struct sg_txn *t, const char *sha256_hex,
    char **ret);

/*
 * The policy versions in the log (src/store_policy.c).  status is
 * "effective", "pending" or "replaced"; previous the SHA-256 of the
 * policy in force when it was logged ("" for none); effective_index the
 * policy-effective entry of a version logged pending that took effect.
 */
struct sg_store_policy {
	char sha256[SG_SHA256_HEX_SIZE];
	char *text;
	int64_t log_index;              /* its policy entry; -1: none */
	char status[16];                /* "" for a policy never logged */
	char previous[SG_SHA256_HEX_SIZE];
	int64_t first_seen;
	int64_t effective_index;        /* -1: none */
};
/* Keeps the text (as sg_store_put_policy) with its log entry. */
int sg_store_policy_logged(struct sg_txn *t, const char *sha256_hex,
    const char *text, int64_t now, uint64_t index, const char *status,
    const char *previous);
/* A pending version replaced, or taken effect with its policy-effective
 * entry (effective_index, -1 for none). */
int sg_store_policy_set_status(struct sg_txn *t, const char *sha256_hex,
    const char *status, int64_t effective_index);
/* The policy in force (the effective one logged last), the pending one,
 * or a logged one by SHA-256; SG_ERR_NOT_FOUND when there is none. */
int sg_store_policy_in_force(struct sg_txn *t, struct sg_store_policy *ret);
int sg_store_policy_pending(struct sg_txn *t, struct sg_store_policy *ret);
int sg_store_policy_get(struct sg_txn *t, const char *sha256_hex,
    struct sg_store_policy *ret);
void sg_store_policy_clear(struct sg_store_policy *p);

/* An officer's approval of a pending policy, with its log entry. */
struct sg_store_policy_approval {
	char officer[SG_NAME_SIZE];
	char *envelope;
	uint64_t log_index;
	int64_t at;
};
/* SG_ERR_CONFLICT when this officer has approved it already. */
int sg_store_policy_approval_add(struct sg_txn *t, const char *sha256_hex,
    const char *officer, int64_t at, const char *envelope, uint64_t index);
/* Up to cap approvals, in log order. */
int sg_store_policy_approvals(struct sg_txn *t, const char *sha256_hex,
    struct sg_store_policy_approval *ret, size_t cap, size_t *ret_n);
void sg_store_policy_approvals_free(struct sg_store_policy_approval *a,
    size_t n);

/* ---- changes and the notification outbox (src/store_outbox.c) ---- */

/*
 * Every change of a request, release or grant the store records calls
 * the change hook, inside the same write transaction, after the change:
 * created (the row inserted; a row inserted in a final state is told
 * twice, created then its state), a decision recorded, or a new state.
 * The hook writes what it must (the outbox) with the change; an error
 * from it fails the change, so that no change commits without it.  Set
 * once, before the first write.
 */
enum sg_store_change_what {
	SG_CHANGE_CREATED = 1,
	SG_CHANGE_DECISION,            /* officer, approve */
	SG_CHANGE_STATE,               /* state; by for cancelled, revoked */
};
struct sg_store_change {
	enum sg_store_change_what what;
	const char *id;
	enum sg_req_state state;       /* SG_CHANGE_STATE: the new one */
	const char *officer;           /* the decision's, or who ended it */
	int approve;                   /* SG_CHANGE_DECISION: 1 or 0 */
	const char *reason;            /* cancelled, revoked, failed, rejected */
};
typedef int (*sg_store_change_fn)(void *ctx, struct sg_txn *t,
    const struct sg_store_change *c);
void sg_store_set_change_hook(struct sg_store *st, sg_store_change_fn fn,
    void *ctx);

/* The longest event type ("release.cancelled") and event id. */
#define SG_OUTBOX_TYPE_SIZE 32
#define SG_OUTBOX_ID_SIZE 33           /* 128 bits in hex, and the NUL */

/* One delivery: an event for one webhook. */
struct sg_outbox_row {
	int64_t seq;
	char event_id[SG_OUTBOX_ID_SIZE];
	char webhook[SG_NAME_SIZE];
	char type[SG_OUTBOX_TYPE_SIZE];
	char *body;                    /* the event's JSON */
	int64_t attempts;              /* deliveries tried before this one */
};
void sg_outbox_rows_free(struct sg_outbox_row *v, size_t n);

/* Inside a write job: queues the event for one webhook, due at once. */
int sg_store_outbox_put(struct sg_txn *t, const char *event_id,
    const char *webhook, const char *type, const char *object_id,
    const char *body, int64_t now);

/*
 * Claims up to max undelivered rows of these webhooks that are due at
 * `now` and not claimed by a live lease (own write job): each is leased
 * to this gateway until now + lease_seconds, so that another gateway on
 * the database does not deliver it meanwhile.  A gateway that dies
 * leaves its leases to run out.
 */
int sg_store_outbox_claim(struct sg_store *st, const char *const *webhooks,
    size_t nwebhooks, int64_t now, int lease_seconds, size_t max,
    struct sg_outbox_row **ret, size_t *ret_n);
/* The outcome of claimed deliveries (one write job): delivered[i] set,
 * the row is delivered at `now`; else it is retried at next_at[i], with
 * why (may be NULL) kept in last_error, if this gateway still holds it. */
int sg_store_outbox_done(struct sg_store *st, const int64_t *seqs,
    const int *delivered, const int64_t *next_at, const char *const *why,
    size_t n, int64_t now);
/* Gives up this gateway's leases (at start: a previous life's). */
int sg_store_outbox_release(struct sg_store *st);
/* Deletes rows delivered before delivered_before and rows never
 * delivered created before undelivered_before; *ret_dropped counts the
 * latter. */
int sg_store_outbox_prune(struct sg_store *st, int64_t delivered_before,
    int64_t undelivered_before, uint64_t *ret_dropped);
/* Rows of these webhooks not delivered yet (a read), and of them those
 * due at `now` and not leased. */
int sg_store_outbox_pending(struct sg_store *st, const char *const *webhooks,
    size_t nwebhooks, int64_t now, uint64_t *ret_pending, uint64_t *ret_due);

#endif
