/*
 * The durable request store (SQLite, WAL, synchronous=FULL): a 2xx answer is
 * given only after the transaction holding the change has committed.
 *
 * One connection, one lock: every call is made between sg_store_begin() and
 * sg_store_commit()/sg_store_rollback(), which hold the store's mutex, so a
 * caller sees a consistent snapshot and its writes land together.
 */
#ifndef SG_STORE_H
#define SG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct sg_store;

struct sg_approval {
	char officer[64];
	int approve;                   /* 1 approve, 0 reject */
	int64_t at;                    /* unix seconds */
	char *envelope;                /* the DSSE envelope JSON as posted */
};

struct sg_request {
	int64_t seq;                   /* creation order */
	char id[33];
	char key[64];
	char digest_alg[8];
	char digest_hex[129];
	char format[4];
	char *artifact_json;           /* canonical JSON object */
	char requester[64];
	int64_t created_at, expires_at;
	char policy_name[64];
	uint64_t policy_version;
	char policy_sha256[65];
	char spki_sha256[65];
	char *statement;
	char state[12];                /* pending signed rejected expired failed */
	char *error;                   /* NULL unless failed */
	uint8_t *signature;
	size_t signature_len;
	uint8_t *cms;
	size_t cms_len;
	int64_t signed_at;
	struct sg_approval *approvals; /* in the order recorded */
	size_t napprovals;
};

int sg_store_open(const char *dir, struct sg_store **ret);
void sg_store_close(struct sg_store *st);

/* write != 0: BEGIN IMMEDIATE (takes the write lock now). */
int sg_store_begin(struct sg_store *st, int write);
/* SG_ERR_IO if the commit failed; the transaction is then rolled back. */
int sg_store_commit(struct sg_store *st) __attribute__((warn_unused_result));
void sg_store_rollback(struct sg_store *st);

/* Finds the request a requester created with this idempotency key. */
int sg_store_find_idempotent(struct sg_store *st, const char *requester,
    const char *idem_key, char ret_id[33], char ret_body_sha256[65]);
/* Inserts a new request (seq and approvals are ignored). */
int sg_store_insert_request(struct sg_store *st, const struct sg_request *r,
    const char *idem_key, const char *body_sha256);
/* Loads a request with its approvals; SG_ERR_NOT_FOUND if unknown. */
int sg_store_get_request(struct sg_store *st, const char *id,
    struct sg_request **ret);
void sg_request_free(struct sg_request *r);

/* Records one officer's decision; SG_ERR_CONFLICT if this officer has
 * already decided on this request. */
int sg_store_add_approval(struct sg_store *st, const char *id,
    const char *officer, int approve, int64_t at, const char *envelope);

/* pending → to_state ("rejected", "expired", "failed"); SG_ERR_CONFLICT if
 * the request is no longer pending. */
int sg_store_finish(struct sg_store *st, const char *id, const char *to_state,
    const char *error);
/* pending → signed with the signature; SG_ERR_CONFLICT if not pending. */
int sg_store_set_signed(struct sg_store *st, const char *id,
    const uint8_t *sig, size_t sig_len, const uint8_t *cms, size_t cms_len,
    int64_t signed_at);

/* Newest first.  state/key may be NULL; before_seq 0 = from the newest. */
int sg_store_list(struct sg_store *st, const char *state, const char *key,
    int64_t before_seq, size_t limit, struct sg_request ***ret,
    size_t *ret_n);
void sg_request_list_free(struct sg_request **v, size_t n);

/* Ids of pending requests whose expiry has passed at `now` (at most max). */
int sg_store_due_expiry(struct sg_store *st, int64_t now, size_t max,
    char (*ret_ids)[33], size_t *ret_n);
/* Ids of pending requests, oldest first (at most max). */
int sg_store_pending_ids(struct sg_store *st, size_t max,
    char (*ret_ids)[33], size_t *ret_n);

/* Keeps every policy text a request was made under, by its SHA-256, so
 * that a pending request is judged by the policy its statement names. */
int sg_store_put_policy(struct sg_store *st, const char *sha256_hex,
    const char *text, int64_t now);
int sg_store_get_policy(struct sg_store *st, const char *sha256_hex,
    char **ret);

#endif
