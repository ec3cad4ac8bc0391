/*
 * The service and the transparency log: the entries its state changes
 * write (inside the store write job that makes the change, so the entry
 * and the change commit together), and the log's read side, which serves
 * only what a signed checkpoint covers.
 *
 * Locks: none; write-side functions run inside a write job (the caller
 * holds plock), read-side ones open a read snapshot of their own.
 * Calls: entry, tlog, store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "sg_witnessing.h"
#include "service_int.h"

/* Appends an entry to the log inside a write job. */
int
svc_log_entry(struct sg_service *s, struct sg_txn *t, const struct sg_entry *e,
    uint64_t *ret_index)
{
	char *text = NULL;
	size_t len;
	uint64_t index;
	int r;

	if ((r = sg_entry_build(e, &text, &len)) != 0) {
		sg_log_error("log: cannot build a %d entry for request %s: %s",
		    (int)e->type, e->request, sg_strerror(r));
		return SG_ERR_INTERNAL;
	}
	r = sg_tlog_append(s->log, t, text, len, &index);
	free(text);
	if (r == 0 && ret_index != NULL)
		*ret_index = index;
	return r;
}

void
svc_entry_head(struct sg_entry *e, enum sg_entry_type type, int64_t now,
    const char *id)
{
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->time = now;
	snprintf(e->request, sizeof(e->request), "%s", id);
}

/* The entry's key lines (public-key, algorithm, hsm) of key view kv. */
static int
entry_key(struct sg_entry *e, const struct sg_key_view *kv)
{
	const char *alg;

	if (kv->spki_der == NULL)
		return SG_ERR_CRYPTO;
	e->public_key = kv->spki_der;
	e->public_key_len = kv->spki_der_len;
	alg = sg_scheme_name(kv->pk->alg, kv->pk->scheme);
	snprintf(e->algorithm, sizeof(e->algorithm), "%s", alg ? alg : "");
	snprintf(e->hsm_serial, sizeof(e->hsm_serial), "%s", kv->token.serial);
	snprintf(e->hsm_country, sizeof(e->hsm_country), "%s",
	    kv->hsm != NULL ? kv->hsm->country : "");
	return 0;
}

/*
 * The envelopes that made q's quorum, of those that counted (counted[i]),
 * as an entry's approvals: a smallest set that meets it, so never more
 * than SG_QUORUM_MAX (the policy's counts sum to no more), and the entry
 * stays within SG_ENTRY_MAX.  Fails closed: no entry, no state change.
 */
static int
entry_approvals(struct sg_service *s, struct sg_txn *t, struct sg_entry *e,
    const struct sg_request *q, const uint8_t *counted)
{
	uint8_t kept[SG_ENVELOPES_MAX];
	size_t i, n;
	int r;

	if ((r = svc_quorum_minimal(s, t, q, counted, kept)) != 0) {
		sg_log_error("log: request %s: the decisions that counted do "
		    "not make its quorum: %s", q->id, sg_strerror(r));
		return SG_ERR_INTERNAL;
	}
	for (i = 0, n = 0; i < q->napprovals && i < SG_ENVELOPES_MAX; i++) {
		if (!kept[i])
			continue;
		if (n == SG_QUORUM_MAX) {
			sg_log_error("log: request %s: more than %d approvals "
			    "make its quorum", q->id, SG_QUORUM_MAX);
			return SG_ERR_TOO_LARGE;
		}
		e->approvals[n] = q->approvals[i].envelope;
		e->approval_lens[n] = strlen(q->approvals[i].envelope);
		n++;
	}
	e->napprovals = n;
	return 0;
}

/*
 * The signature entry: self-contained evidence (the statement, every
 * decision envelope that counted, the public key) next to the signature,
 * so that it can be checked offline with nothing but the policy file.
 */
int
svc_log_signature(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, const uint8_t *counted,
    const struct sg_key_view *kv, const uint8_t *sig, size_t sig_len,
    const uint8_t *cms, size_t cms_len, int64_t now, uint64_t *ret_index)
{
	struct sg_entry e;
	int r;

	if (q->napprovals > SG_ENTRY_MAX_APPROVALS)
		return SG_ERR_TOO_LARGE;
	svc_entry_head(&e, SG_ENTRY_SIGNATURE, now, q->id);
	if ((r = entry_key(&e, kv)) != 0)
		return r;
	e.statement = q->statement;
	e.statement_len = strlen(q->statement);
	/* The evidence that made the quorum, of what the signer checked. */
	if ((r = entry_approvals(s, t, &e, q, counted)) != 0)
		return r;
	e.signature = (uint8_t *)sig;
	e.signature_len = sig_len;
	if (cms != NULL) {
		e.has_cms = 1;
		sg_sha256(cms, cms_len, e.cms_sha256);
	}
	return svc_log_entry(s, t, &e, ret_index);
}

/* A release's or grant's quorum holds: its approved entry (the statement
 * and the decisions that counted), and the object becomes active. */
int
svc_log_approved(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, const uint8_t *counted, int64_t now)
{
	struct sg_entry e;
	uint64_t index;
	int r;

	svc_entry_head(&e, SG_ENTRY_APPROVED, now, q->id);
	e.statement = q->statement;
	e.statement_len = strlen(q->statement);
	if ((r = entry_approvals(s, t, &e, q, counted)) != 0)
		return r;
	if ((r = svc_log_entry(s, t, &e, &index)) != 0)
		return r;
	return sg_store_activate(t, q->id, index);
}

/* One signature made under a release or a grant (object o). */
int
svc_log_artifact(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *o, const struct sg_key_view *kv,
    const struct svc_artifact *a, int64_t now, uint64_t *ret_index)
{
	struct sg_entry e;
	int r;

	if (o->approved_index < 0 || a->npath > SG_MANIFEST_PATH_MAX)
		return SG_ERR_INVALID;
	svc_entry_head(&e, SG_ENTRY_ARTIFACT_SIGNATURE, now, o->id);
	if ((r = entry_key(&e, kv)) != 0)
		return r;
	e.approved_index = (uint64_t)o->approved_index;
	e.position = a->position;
	e.line = (char *)a->line;
	e.line_len = strlen(a->line);
	if (a->npath > 0)              /* a grant's signature has no path */
		memcpy(e.path, a->path, a->npath * SG_HASH_LEN);
	e.npath = a->npath;
	e.signature = (uint8_t *)a->sig;
	e.signature_len = a->sig_len;
	if (a->cms != NULL) {
		e.has_cms = 1;
		sg_sha256(a->cms, a->cms_len, e.cms_sha256);
	}
	return svc_log_entry(s, t, &e, ret_index);
}

/* pending → a final state without a signature (expired, failed,
 * rejected), with its log entry. */
int
svc_finish_in(struct sg_service *s, struct sg_txn *t, const char *id,
    enum sg_req_state state, const char *reason)
{
	struct sg_entry e;
	int r;

	if ((r = sg_store_finish(t, id, state, reason)) != 0)
		return r;
	if (state == SG_REQ_EXPIRED) {
		svc_entry_head(&e, SG_ENTRY_EXPIRED, svc_now(s), id);
		return svc_log_entry(s, t, &e, NULL);
	}
	if (state == SG_REQ_FAILED) {
		svc_entry_head(&e, SG_ENTRY_FAILED, svc_now(s), id);
		e.reason = (char *)(reason ? reason : "unknown");
		e.reason_len = strlen(e.reason);
		/* A failure's reason is ours, of any length: the entry keeps
		 * its start, cut between two characters. */
		if (e.reason_len > SG_ENTRY_REASON_MAX) {
			e.reason_len = SG_ENTRY_REASON_MAX;
			while (e.reason_len > 0 &&
			    ((uint8_t)e.reason[e.reason_len] & 0xc0) == 0x80)
				e.reason_len--;
		}
		return svc_log_entry(s, t, &e, NULL);
	}
	/* A veto: the decision entry that caused it is already logged. */
	return 0;
}

/* Stored results are answered only under a signed checkpoint: if entries
 * wait for one (an earlier one could not be signed), it is signed now. */
int
svc_log_covered(struct sg_service *s, const char *id, struct sg_fault *f)
{
	if (sg_tlog_sync(s->log) == 0)
		return 0;
	svc_fault(f, NULL, "request %s is stored, but the transparency log "
	    "has not signed a checkpoint covering it yet; retry later", id);
	f->recorded = 1;
	return SG_ERR_UNAVAILABLE;
}

/* --- the read side: one query, in a read snapshot of its own --- */

enum log_query_kind {
	LOG_CHECKPOINT,
	LOG_ENTRY,
	LOG_INCLUSION,
	LOG_CONSISTENCY,
	LOG_BUNDLE,
	LOG_ARTIFACT_BUNDLE,
	LOG_TILE,
};

struct log_query {
	enum log_query_kind kind;
	uint64_t a, b;                 /* index and size, or old and new */
	char **text;                   /* checkpoint note, entry, bundle */
	size_t *len;
	uint64_t *size;
	uint8_t (*hashes)[SG_HASH_LEN];
	size_t cap;
	size_t *n;
	const struct sg_tile *tile;
	uint64_t *bad;
};

/* Two bundles in one snapshot, so under the same newest checkpoint: the
 * artifact signature's, then its approved entry's. */
static int
artifact_bundle(struct sg_txn *t, uint64_t index, uint64_t approved,
    char **ret)
{
	char *a = NULL, *b = NULL;
	int r;

	if ((r = sg_tlog_proof_bundle(t, index, &a)) == 0 &&
	    (r = sg_tlog_proof_bundle(t, approved, &b)) == 0 &&
	    asprintf(ret, "%s%s", a, b) < 0)
		r = SG_ERR_NOMEM;
	free(a);
	free(b);
	return r;
}

static int
log_query_in(struct sg_txn *t, const struct log_query *lq)
{
	uint64_t size;
	int r;

	switch (lq->kind) {
	case LOG_CHECKPOINT:
		return sg_tlog_checkpoint(t, lq->text, lq->size);
	case LOG_ENTRY:
		/* Only what a signed checkpoint covers is served. */
		if ((r = sg_tlog_checkpoint_size(t, &size)) == 0)
			r = lq->a < size ? sg_tlog_entry(t, lq->a, lq->text,
			    lq->len) : SG_ERR_NOT_FOUND;
		return r;
	case LOG_INCLUSION:
		return sg_tlog_inclusion(t, lq->a, lq->b, lq->hashes, lq->cap,
		    lq->n);
	case LOG_CONSISTENCY:
		return sg_tlog_consistency(t, lq->a, lq->b, lq->hashes,
		    lq->cap, lq->n);
	/* A signature's proof ends with its policy's entry's bundle. */
	case LOG_BUNDLE:
		if ((r = sg_tlog_proof_bundle(t, lq->a, lq->text)) == 0 &&
		    (r = svc_policy_bundle_add(t, lq->a, lq->text)) != 0) {
			free(*lq->text);
			*lq->text = NULL;
		}
		return r;
	case LOG_ARTIFACT_BUNDLE:
		if ((r = artifact_bundle(t, lq->a, lq->b, lq->text)) == 0 &&
		    (r = svc_policy_bundle_add(t, lq->b, lq->text)) != 0) {
			free(*lq->text);
			*lq->text = NULL;
		}
		return r;
	case LOG_TILE:
		return sg_tlog_tile(t, lq->tile, (uint8_t **)lq->text, lq->len,
		    lq->bad);
	}
	return SG_ERR_INTERNAL;
}

static int
log_query(struct sg_service *s, const struct log_query *lq)
{
	struct sg_txn *t;
	int r;

	if (sg_store_read_begin(s->store, &t) != 0)
		return SG_ERR_UNAVAILABLE;
	r = log_query_in(t, lq);
	sg_store_read_end(t);
	return r;
}

const char *
sg_service_log_vkey(const struct sg_service *s)
{
	return sg_tlog_vkey(s->log);
}

int
sg_service_log_checkpoint(struct sg_service *s, char **ret_note,
    uint64_t *ret_size)
{
	struct log_query lq = { .kind = LOG_CHECKPOINT, .text = ret_note,
	    .size = ret_size };

	return log_query(s, &lq);
}

int
sg_service_log_entry(struct sg_service *s, uint64_t index, char **ret,
    size_t *ret_len)
{
	struct log_query lq = { .kind = LOG_ENTRY, .a = index, .text = ret,
	    .len = ret_len };

	return log_query(s, &lq);
}

int
sg_service_log_inclusion(struct sg_service *s, uint64_t index,
    uint64_t size, uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	struct log_query lq = { .kind = LOG_INCLUSION, .a = index, .b = size,
	    .hashes = out, .cap = cap, .n = ret_n };

	return log_query(s, &lq);
}

int
sg_service_log_consistency(struct sg_service *s, uint64_t old_size,
    uint64_t new_size, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n)
{
	struct log_query lq = { .kind = LOG_CONSISTENCY, .a = old_size,
	    .b = new_size, .hashes = out, .cap = cap, .n = ret_n };

	return log_query(s, &lq);
}

/* Fail-closed, no checkpoint with the witnesses' quorum covers the
 * signature `what` yet: it is stored all the same, and a retry gets it. */
static int
unwitnessed(struct sg_service *s, const char *what, struct sg_fault *f)
{
	svc_fault(f, NULL, "%s was recorded and its log entry is stored, but "
	    "it awaits witness cosignatures: no checkpoint covering it "
	    "carries the cosignatures of %u witnesses yet; retry with the "
	    "same Idempotency-Key (or read it again) later", what,
	    sg_witnessing_quorum(s->witnessing));
	if (f != NULL)
		f->recorded = 1;
	return SG_ERR_UNAVAILABLE;
}

/*
 * A bundle, under a checkpoint that covers `last`.  Signed by another
 * gateway on the database whose checkpoint is not stored yet: this one
 * covers it rather than answer 503.
 *
 * With witnesses, a proof is answered only once the release condition
 * holds for it (sg_witness_released: fail-closed, a checkpoint covering
 * it carries the quorum, and only such checkpoints are served;
 * best-effort, its submission ended, and the bundle is read again for
 * the cosignatures it got), waiting a bounded time.  Fail-closed,
 * SG_ERR_UNAVAILABLE with a "recorded" fault when it does not hold
 * then: the entry stays in the log, the caller answers 503 and a retry
 * finds it.
 */
static int
bundle(struct sg_service *s, const struct log_query *lq, uint64_t last,
    const char *what, struct sg_fault *f)
{
	int r, closed;

	if ((r = log_query(s, lq)) == SG_ERR_NOT_FOUND &&
	    sg_tlog_cover(s->log, last) == 0)
		r = log_query(s, lq);
	if (s->witnessing == NULL || (r != 0 && r != SG_ERR_NOT_FOUND))
		return r;
	closed = sg_witnessing_fail_closed(s->witnessing);
	if (r == 0 && closed)
		return 0;
	if (r == 0) {
		free(*lq->text);
		*lq->text = NULL;
	}
	if (sg_witnessing_wait(s->witnessing, last + 1) != 0 && closed)
		return unwitnessed(s, what, f);
	r = log_query(s, lq);
	return r == SG_ERR_NOT_FOUND && closed ? unwitnessed(s, what, f) : r;
}

int
sg_service_artifact_bundle(struct sg_service *s, uint64_t index,
    uint64_t approved_index, const char *what, char **ret,
    struct sg_fault *f)
{
	struct log_query lq = { .kind = LOG_ARTIFACT_BUNDLE, .a = index,
	    .b = approved_index, .text = ret };

	return bundle(s, &lq, index > approved_index ? index : approved_index,
	    what, f);
}

/* The c2sp.org/tlog-proof@v1 bundle for one entry. */
int
sg_service_log_bundle(struct sg_service *s, uint64_t index, const char *what,
    char **ret, struct sg_fault *f)
{
	struct log_query lq = { .kind = LOG_BUNDLE, .a = index, .text = ret };

	return bundle(s, &lq, index, what, f);
}

/* A c2sp.org/tlog-tiles tile under the newest checkpoint. */
int
sg_service_log_tile(struct sg_service *s, const struct sg_tile *tile,
    uint8_t **ret, size_t *ret_len, uint64_t *ret_bad)
{
	struct log_query lq = { .kind = LOG_TILE, .tile = tile,
	    .text = (char **)ret, .len = ret_len, .bad = ret_bad };

	return log_query(s, &lq);
}
