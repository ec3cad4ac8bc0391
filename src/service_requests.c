/*
 * Requests: creation (checked against the key's rules, idempotent per
 * requester and Idempotency-Key, signed at once when the key needs no
 * approval), and reading them back.
 *
 * A request that needs no approval is signed first and then inserted,
 * already signed, with its created and signature log entries, in one
 * transaction; the signature is returned only after that commit.  A retry
 * with the same Idempotency-Key looks for the original first, so it never
 * costs a second signature.
 *
 * Locks: create holds plock for reading throughout; get and list take
 * none (the store's snapshot is enough).
 * Calls: keys, sign (svc_sign_request), log, metrics, store, dsse.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_util.h"
#include "service_int.h"

struct create_job {
	struct sg_service *s;
	const struct sg_new_request *nr;
	struct sg_request *q;          /* to insert */
	const struct sg_key_view *kv;
	struct sg_request *out;        /* what was stored, or the original */
	int existing;
	struct sg_fault *f;
};

/* What the key allows a release or a grant. */
static int
check_kind(const struct sg_policy_key *pk, const struct sg_new_request *nr,
    struct sg_fault *f)
{
	size_t nterms;

	sg_policy_key_terms(pk, nr->kind, &nterms);
	if (nterms == 0) {
		svc_fault(f, "key", "key '%s' needs no approval: request each "
		    "signature on its own", pk->name);
		return SG_ERR_FORBIDDEN;
	}
	if (nr->kind == SG_KIND_RELEASE) {
		if (pk->release_max == 0) {
			svc_fault(f, "key", "key '%s' does not allow releases "
			    "(its policy has no allow-releases)", pk->name);
			return SG_ERR_FORBIDDEN;
		}
		if (nr->nlines == 0 || nr->nlines > pk->release_max) {
			svc_fault(f, "artifacts", "a release of key '%s' holds "
			    "1 to %u artifacts, not %zu", pk->name,
			    (unsigned)pk->release_max, nr->nlines);
			return SG_ERR_INVALID;
		}
		return 0;
	}
	if (pk->grant_max_count == 0) {
		svc_fault(f, "key", "key '%s' does not allow grants (its "
		    "policy has no allow-grants)", pk->name);
		return SG_ERR_FORBIDDEN;
	}
	if (nr->count == 0 || nr->count > pk->grant_max_count) {
		svc_fault(f, "count", "a grant of key '%s' allows 1 to %u "
		    "signatures, not %llu", pk->name,
		    (unsigned)pk->grant_max_count,
		    (unsigned long long)nr->count);
		return SG_ERR_INVALID;
	}
	if (nr->lifetime == 0 || nr->lifetime > pk->grant_max_lifetime) {
		svc_fault(f, "lifetime", "a grant of key '%s' lasts 1 to %llu "
		    "seconds, not %llu", pk->name,
		    (unsigned long long)pk->grant_max_lifetime,
		    (unsigned long long)nr->lifetime);
		return SG_ERR_INVALID;
	}
	return 0;
}

/* The scheme a request names, if any, is the key's: a client that expects
 * RSA-PSS never gets PKCS#1 v1.5 (or another key's) signature. */
int
svc_check_scheme(const struct sg_policy_key *pk,
    const struct sg_new_request *nr, struct sg_fault *f)
{
	if (nr->scheme == SG_SIG_NONE ||
	    (nr->alg == pk->alg && nr->scheme == pk->scheme))
		return 0;
	svc_fault(f, "algorithm", "key '%s' signs with %s, not %s", pk->name,
	    sg_scheme_name(pk->alg, pk->scheme),
	    sg_scheme_name(nr->alg, nr->scheme));
	return SG_ERR_INVALID;
}

/* The key's rules for a new request; *ret_kv is its key. */
static int
check_new(struct sg_service *s, const struct sg_new_request *nr,
    const struct sg_key_view **ret_kv, struct sg_fault *f)
{
	const struct sg_key_view *kv;
	const struct sg_policy_key *pk;
	int cms = nr->format == SG_FORMAT_CMS;

	if ((kv = svc_key_locked(s, nr->key)) == NULL) {
		svc_fault(f, "key", "no key named '%s'", nr->key);
		return SG_ERR_NOT_FOUND;
	}
	pk = kv->pk;
	if (!sg_policy_may_request(s->policy, pk, nr->requester)) {
		svc_fault(f, "key", "'%s' may not request signatures with key "
		    "'%s'", nr->requester, pk->name);
		return SG_ERR_FORBIDDEN;
	}
	if (!kv->usable) {
		svc_fault(f, "key", "key '%s' cannot be used: %s", pk->name,
		    kv->reason);
		return SG_ERR_FORBIDDEN;
	}
	if (!sg_format_valid(nr->format)) {
		svc_fault(f, "format", "not a signature format");
		return SG_ERR_INVALID;
	}
	if (!(pk->formats & nr->format)) {
		svc_fault(f, "format", "key '%s' does not allow format '%s'",
		    pk->name, sg_format_str(nr->format));
		return SG_ERR_INVALID;
	}
	if (cms && kv->certificate_pem == NULL) {
		svc_fault(f, "format", "key '%s' has no certificate for CMS",
		    pk->name);
		return SG_ERR_INVALID;
	}
	if (svc_check_scheme(pk, nr, f) != 0)
		return SG_ERR_INVALID;
	if (nr->kind == SG_KIND_REQUEST &&
	    nr->digest_len != sg_digest_len(nr->digest_alg)) {
		svc_fault(f, "digest.value", "wrong length for %s",
		    sg_digest_name(nr->digest_alg));
		return SG_ERR_INVALID;
	}
	*ret_kv = kv;
	return nr->kind == SG_KIND_REQUEST ? 0 : check_kind(pk, nr, f);
}

/* Looks up an idempotent original inside a transaction. */
int
svc_find_original(struct sg_txn *t, const struct sg_new_request *nr,
    struct sg_request **ret, struct sg_fault *f)
{
	char id[SG_REQUEST_ID_SIZE], body_sha[SG_SHA256_HEX_SIZE];
	int r;

	r = sg_store_find_idempotent(t, nr->requester, nr->idem_key, id,
	    body_sha);
	if (r != 0)
		return r;
	if (strcmp(body_sha, nr->body_sha256) != 0) {
		svc_fault(f, "Idempotency-Key", "this Idempotency-Key was used "
		    "with a different request body");
		return SG_ERR_CONFLICT;
	}
	return sg_store_get_request(t, id, ret);
}

/* A retry must not cost a signature: the original, answered once a
 * signed checkpoint covers it, or SG_ERR_NOT_FOUND. */
int
svc_original(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, struct sg_fault *f)
{
	struct sg_request *q = NULL;
	struct sg_txn *t = NULL;
	int r;

	if (sg_store_read_begin(s->store, &t) != 0) {
		svc_fault(f, NULL, "the request store cannot be read");
		return SG_ERR_UNAVAILABLE;
	}
	r = svc_find_original(t, nr, &q, f);
	sg_store_read_end(t);
	if (r == 0 && (r = svc_log_covered(s, q->id, f)) != 0) {
		sg_request_free(q);
		return r;
	}
	if (r == 0)
		*ret = q;
	return r;
}

int
svc_random_id(char out[SG_REQUEST_ID_SIZE])
{
	uint8_t b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return SG_ERR_CRYPTO;
	sg_hex_encode(b, sizeof(b), out);
	return 0;
}

static int
build_statement(const struct sg_key_view *kv, struct sg_request *q,
    const struct sg_new_request *nr, const char *root_hex)
{
	struct sg_statement st;
	size_t len;

	memset(&st, 0, sizeof(st));
	st.kind = q->kind;
	st.count = q->count;
	if (q->kind == SG_KIND_RELEASE)
		snprintf(st.manifest_root, sizeof(st.manifest_root), "%s",
		    root_hex);
	if (q->kind == SG_KIND_GRANT)
		snprintf(st.pattern, sizeof(st.pattern), "%s", nr->pattern);
	snprintf(st.request, sizeof(st.request), "%s", q->id);
	snprintf(st.key, sizeof(st.key), "%s", q->key);
	snprintf(st.spki_sha256, sizeof(st.spki_sha256), "%s",
	    kv->spki_sha256);
	snprintf(st.digest_alg, sizeof(st.digest_alg), "%s", q->digest_alg);
	snprintf(st.digest_hex, sizeof(st.digest_hex), "%s", q->digest_hex);
	snprintf(st.format, sizeof(st.format), "%s",
	    sg_format_str(q->format));
	snprintf(st.requester, sizeof(st.requester), "%s", q->requester);
	snprintf(st.policy_name, sizeof(st.policy_name), "%s", q->policy_name);
	st.policy_version = q->policy_version;
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    q->policy_sha256);
	st.expires = q->expires_at;
	return sg_statement_build(&st, &q->statement, &len);
}

/* The hex root of a release's manifest. */
static int
manifest_root(const struct sg_new_request *nr, char out[SG_SHA256_HEX_SIZE])
{
	struct sg_manifest_tree mt;
	uint8_t root[SG_HASH_LEN];
	size_t *lens;
	size_t i;
	int r;

	if ((lens = calloc(nr->nlines, sizeof(*lens))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < nr->nlines; i++)
		lens[i] = strlen(nr->lines[i]);
	r = sg_manifest_tree_init(&mt, nr->lines, lens, nr->nlines);
	free(lens);
	if (r != 0)
		return r;
	if ((r = sg_manifest_tree_root(&mt, root)) == 0)
		sg_hex_encode(root, sizeof(root), out);
	sg_manifest_tree_free(&mt);
	return r;
}

/* The new request q (pending) with its statement, under the policy in
 * force. */
static int
new_request(struct sg_service *s, const struct sg_key_view *kv,
    const struct sg_new_request *nr, int64_t now, struct sg_request *q,
    struct sg_fault *f)
{
	char root[SG_SHA256_HEX_SIZE] = "";
	int r;

	if ((r = svc_random_id(q->id)) != 0)
		return r;
	q->kind = nr->kind;
	snprintf(q->key, sizeof(q->key), "%s", kv->pk->name);
	if (nr->kind == SG_KIND_REQUEST) {
		snprintf(q->digest_alg, sizeof(q->digest_alg), "%s",
		    sg_digest_name(nr->digest_alg));
		sg_hex_encode(nr->digest, nr->digest_len, q->digest_hex);
	} else if (nr->kind == SG_KIND_RELEASE) {
		q->count = nr->nlines;
		if ((r = manifest_root(nr, root)) != 0) {
			svc_fault(f, "artifacts", "cannot hash the manifest");
			return r;
		}
	} else
		q->count = nr->count;
	q->format = nr->format;
	q->artifact_json = (char *)nr->artifact_json;
	snprintf(q->requester, sizeof(q->requester), "%s", nr->requester);
	q->created_at = now;
	q->expires_at = now + (int64_t)(nr->kind == SG_KIND_GRANT ?
	    nr->lifetime : kv->pk->lifetime);
	snprintf(q->policy_name, sizeof(q->policy_name), "%s",
	    sg_policy_name(s->policy));
	q->policy_version = sg_policy_version(s->policy);
	snprintf(q->policy_sha256, sizeof(q->policy_sha256), "%s",
	    sg_policy_sha256_hex(s->policy));
	snprintf(q->spki_sha256, sizeof(q->spki_sha256), "%s",
	    kv->spki_sha256);
	q->state = SG_REQ_PENDING;
	if ((r = build_statement(kv, q, nr, root)) != 0)
		svc_fault(f, NULL, "cannot build the statement");
	return r;
}

/* q signed (so holds the signature, now q's too), or the reason it
 * was not, why, in f. */
static int
signed_at_once(struct sg_request *q, int64_t now, struct svc_signed *so,
    int r, const char *why, struct sg_fault *f)
{
	if (r != 0) {
		svc_fault(f, NULL, "the request could not be signed: %s",
		    why[0] ? why : sg_strerror(r));
		return SG_ERR_UNAVAILABLE;
	}
	q->state = SG_REQ_SIGNED;
	q->signature = so->reply.sig;
	q->signature_len = so->reply.sig_len;
	q->cms = so->cms;
	q->cms_len = so->cms_len;
	q->timestamp_note = so->timestamp_note;
	q->signed_at = now;
	return 0;
}

/* Nothing to wait for: q is signed now, the signature (in so) released
 * only once it is committed together with its log entry. */
static int
sign_at_once(struct sg_service *s, const struct sg_key_view *kv,
    struct sg_request *q, int64_t now, struct svc_signed *so,
    struct sg_fault *f)
{
	char why[SG_SIGNER_ERR_MAX];
	int r;

	r = svc_sign_request(s, kv, q, NULL, so, why, sizeof(why));
	return signed_at_once(q, now, so, r, why, f);
}

/* Every pending request is work for the officers: capped per requester. */
static int
pending_allowed(struct sg_service *s, struct sg_txn *t, const char *requester,
    struct sg_fault *f)
{
	uint64_t n;
	int r;

	if ((r = sg_store_count_pending(t, requester, &n)) != 0)
		return r;
	if (n < s->cfg->max_pending)
		return 0;
	svc_fault(f, NULL, "'%s' already has %llu pending requests, the most "
	    "allowed", requester, (unsigned long long)n);
	return SG_ERR_RATE_LIMITED;
}

static int
job_create(struct sg_txn *t, void *arg)
{
	struct create_job *cj = arg;
	struct sg_request *q = cj->q;
	struct sg_entry e;
	uint64_t index;
	int r;

	if (cj->nr->idem_key != NULL) {
		r = svc_find_original(t, cj->nr, &cj->out, cj->f);
		if (r == 0) {
			cj->existing = 1;
			return 0;
		}
		if (r != SG_ERR_NOT_FOUND)
			return r;
	}
	if (q->signature == NULL &&
	    (r = pending_allowed(cj->s, t, q->requester, cj->f)) != 0)
		return r;
	if ((r = sg_store_insert_request(t, q, cj->nr->idem_key,
	    cj->nr->body_sha256)) != 0)
		return r;
	if (q->kind == SG_KIND_RELEASE &&
	    (r = sg_store_release_put_lines(t, q->id, cj->nr->lines,
	    cj->nr->nlines)) != 0)
		return r;
	svc_entry_head(&e, SG_ENTRY_CREATED, q->created_at, q->id);
	e.statement = q->statement;
	e.statement_len = strlen(q->statement);
	e.artifact_json = q->artifact_json;
	e.artifact_len = strlen(q->artifact_json);
	if ((r = svc_log_entry(cj->s, t, &e, NULL)) != 0)
		return r;
	if (q->signature != NULL) {
		if ((r = svc_log_signature(cj->s, t, q, NULL, cj->kv,
		    q->signature, q->signature_len, q->cms, q->cms_len,
		    q->signed_at, &index)) != 0)
			return r;
		if ((r = sg_store_set_log_index(t, q->id, index)) != 0)
			return r;
	}
	return sg_store_get_request(t, q->id, &cj->out);
}

/* What the store's answer r (kept: committed all the same) means for the
 * request being created. */
static int
created_result(struct create_job *cj, int r, int kept)
{
	struct sg_fault *f = cj->f;

	if ((r == SG_ERR_CONFLICT || r == SG_ERR_RATE_LIMITED) &&
	    f->detail[0] != '\0')
		return r;
	if (r != 0 && kept) {
		svc_recorded_fault(f, "request", cj->out != NULL ?
		    cj->out->id : cj->q->id,
		    "retry with the same Idempotency-Key");
		return SG_ERR_UNAVAILABLE;
	}
	if (r != 0) {
		svc_fault(f, NULL, "the request could not be stored and "
		    "logged");
		return SG_ERR_UNAVAILABLE;
	}
	return 0;
}

/* Stores q with its log entries; the original instead when a concurrent
 * retry stored it first (cj->existing). */
static int
store_created(struct sg_service *s, struct create_job *cj)
{
	int kept = 0, r;

	r = sg_store_write_kept(s->store, job_create, cj, &kept);
	return created_result(cj, r, kept);
}

/* Counted and said once stored. */
static void
created(struct sg_service *s, const struct create_job *cj)
{
	const struct sg_request *q = cj->q;

	if (cj->existing)
		return;
	svc_stat_add(s, &s->stats.requests_created);
	if (q->signature != NULL)
		svc_count_signature(s, cj->kv);
	sg_log_info("%s %s created by %s for key %s (%s)",
	    sg_kind_str(q->kind), q->id, q->requester, q->key,
	    sg_req_state_str(q->state));
	/* A new request waiting for officers: whoever watches for work
	 * (the console's queue) hears of it, here and on the other
	 * gateways. */
	if (q->state == SG_REQ_PENDING)
		svc_notify(s, q->id);
}

static int
create_locked(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f)
{
	const struct sg_key_view *kv;
	struct sg_request q;
	struct svc_signed *so = NULL;
	struct create_job cj = { .s = s, .nr = nr, .q = &q, .f = f };
	int64_t now = svc_now(s);
	int r;

	memset(&q, 0, sizeof(q));
	*ret_existing = 0;
	if (nr->grant != NULL)
		return svc_grant_create(s, nr, ret, ret_existing, f);
	if ((r = check_new(s, nr, &kv, f)) != 0)
		return r;
	if (nr->idem_key != NULL &&
	    (r = svc_original(s, nr, ret, f)) != SG_ERR_NOT_FOUND) {
		*ret_existing = r == 0;
		return r;
	}
	cj.kv = kv;
	if ((r = new_request(s, kv, nr, now, &q, f)) != 0)
		goto out;
	if (nr->kind == SG_KIND_REQUEST && kv->pk->nterms == 0) {
		if ((so = calloc(1, sizeof(*so))) == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
		if ((r = sign_at_once(s, kv, &q, now, so, f)) != 0)
			goto out;
	}
	if ((r = store_created(s, &cj)) != 0)
		goto out;
	*ret_existing = cj.existing;
	created(s, &cj);
	*ret = cj.out;
	cj.out = NULL;
out:
	if (so != NULL) {
		svc_signed_clear(so);
		free(so);
	}
	free(q.statement);
	sg_request_free(cj.out);
	return r;
}

int
sg_service_create(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = create_locked(s, nr, ret, ret_existing, f);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

/*
 * A request signed at once, without a thread waiting: asked of the
 * signer, then stored, each step started by the end of the one before
 * (service_async.c).  The new request's strings are copied: the caller's
 * are gone once sg_service_create_async() returns.
 */
struct create_op {
	struct sg_service *s;
	struct sg_new_request nr;      /* a copy, with the strings below */
	char *key, *requester, *idem_key, *body_sha256, *artifact_json;
	struct sg_request q;
	struct svc_signed so;
	struct svc_sign_call sc;
	struct create_job cj;
	struct sg_fault f;
	struct svc_step step;
	int64_t now;
	int r, kept;
	sg_service_created_fn done;
	void *done_arg;
};

static void
create_op_free(struct create_op *op)
{
	svc_signed_clear(&op->so);
	free(op->q.statement);
	free(op->key);
	free(op->requester);
	free(op->idem_key);
	free(op->body_sha256);
	free(op->artifact_json);
	free(op);
}

static int
dup_or_null(const char *in, char **out)
{
	*out = NULL;
	return in == NULL || (*out = strdup(in)) != NULL ? 0 : SG_ERR_NOMEM;
}

static struct create_op *
create_op_new(struct sg_service *s, const struct sg_new_request *nr)
{
	struct create_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->s = s;
	op->nr = *nr;
	if (dup_or_null(nr->key, &op->key) != 0 ||
	    dup_or_null(nr->requester, &op->requester) != 0 ||
	    dup_or_null(nr->idem_key, &op->idem_key) != 0 ||
	    dup_or_null(nr->body_sha256, &op->body_sha256) != 0 ||
	    dup_or_null(nr->artifact_json, &op->artifact_json) != 0) {
		create_op_free(op);
		return NULL;
	}
	op->nr.key = op->key;
	op->nr.requester = op->requester;
	op->nr.idem_key = op->idem_key;
	op->nr.body_sha256 = op->body_sha256;
	op->nr.artifact_json = op->artifact_json;
	return op;
}

/* The end, on the executor: told, counted out, freed. */
static void
create_op_end(void *arg)
{
	struct create_op *op = arg;
	struct sg_service *s = op->s;
	struct sg_request *out = NULL;

	if (op->cj.s != NULL)
		op->r = created_result(&op->cj, op->r, op->kept);
	if (op->r == 0) {
		created(s, &op->cj);
		out = op->cj.out;
		op->cj.out = NULL;
	}
	sg_request_free(op->cj.out);
	op->cj.out = NULL;
	svc_async_leave(s);
	op->done(op->done_arg, op->r, out, op->cj.existing, &op->f);
	create_op_free(op);
}

/* The store's answer, on the writer thread: handed on. */
static void
create_op_stored(void *arg, int result, int kept)
{
	struct create_op *op = arg;

	op->r = result;
	op->kept = kept;
	svc_exec(op->s, &op->step, create_op_end, op);
}

/* The signer's answer, on the executor: stored with its log entries. */
static void
create_op_signed(void *arg)
{
	struct create_op *op = arg;
	int r;

	if ((r = signed_at_once(&op->q, op->now, &op->so, op->sc.r,
	    op->sc.err, &op->f)) == 0) {
		op->cj.s = op->s;
		op->cj.nr = &op->nr;
		op->cj.q = &op->q;
		op->cj.kv = op->sc.kv;
		op->cj.f = &op->f;
		if ((r = sg_store_write_async(op->s->store, job_create,
		    &op->cj, create_op_stored, op)) == 0)
			return;
		op->cj.s = NULL;
		svc_fault(&op->f, NULL, "the request could not be stored and "
		    "logged");
		r = SG_ERR_UNAVAILABLE;
	}
	op->r = r;
	create_op_end(op);
}

/* What create_start() says besides a result. */
#define CREATE_UNDER_WAY  1            /* done will be told */
#define CREATE_WAITING    2            /* to be created the waiting way */

/* With plock held: CREATE_UNDER_WAY, CREATE_WAITING, or the result for
 * done (0: *ret is the original of an idempotent retry). */
static int
create_start(struct sg_service *s, const struct sg_new_request *nr,
    sg_service_created_fn done, void *done_arg, struct sg_request **ret,
    int *ret_existing, struct sg_fault *f)
{
	const struct sg_key_view *kv;
	struct create_op *op;
	int r;

	/* Only a request its key signs at once goes without waiting; any
	 * other (an unknown key too) is checked once, the waiting way. */
	if (nr->grant != NULL || nr->kind != SG_KIND_REQUEST ||
	    (kv = svc_key_locked(s, nr->key)) == NULL ||
	    kv->pk->nterms != 0)
		return CREATE_WAITING;
	if ((r = check_new(s, nr, &kv, f)) != 0)
		return r;
	if (nr->idem_key != NULL &&
	    (r = svc_original(s, nr, ret, f)) != SG_ERR_NOT_FOUND) {
		*ret_existing = r == 0;
		return r;
	}
	if ((op = create_op_new(s, nr)) == NULL)
		return SG_ERR_NOMEM;
	op->done = done;
	op->done_arg = done_arg;
	op->now = svc_now(s);
	if ((r = new_request(s, kv, &op->nr, op->now, &op->q, f)) != 0)
		goto fail;
	if ((r = svc_async_enter(s)) == 1) {
		r = CREATE_WAITING;    /* a reload is under way */
		goto fail;
	}
	if (r != 0) {
		svc_fault(f, NULL, "the gateway is stopping");
		goto fail;
	}
	op->sc.s = s;
	op->sc.kv = kv;
	op->sc.q = &op->q;
	op->sc.o = &op->so;
	op->sc.then = create_op_signed;
	op->sc.then_arg = op;
	if ((r = svc_sign_request_async(&op->sc, NULL)) != 0) {
		svc_async_leave(s);
		svc_fault(f, NULL, "the request could not be signed: %s",
		    op->sc.err[0] ? op->sc.err : sg_strerror(r));
		r = SG_ERR_UNAVAILABLE;
		goto fail;
	}
	/* op may be gone already: its answer can come at once. */
	return CREATE_UNDER_WAY;
fail:
	create_op_free(op);
	return r;
}

void
sg_service_create_async(struct sg_service *s, const struct sg_new_request *nr,
    sg_service_created_fn done, void *done_arg)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	int r, existing = 0;

	memset(&f, 0, sizeof(f));
	pthread_rwlock_rdlock(&s->plock);
	r = create_start(s, nr, done, done_arg, &q, &existing, &f);
	if (r == CREATE_UNDER_WAY) {
		pthread_rwlock_unlock(&s->plock);
		return;
	}
	if (r == CREATE_WAITING)
		r = create_locked(s, nr, &q, &existing, &f);
	pthread_rwlock_unlock(&s->plock);
	done(done_arg, r, r == 0 ? q : NULL, existing, &f);
	if (r != 0)
		sg_request_free(q);
}

int
sg_service_get(struct sg_service *s, const char *id, struct sg_request **ret)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_store_get_request(t, id, ret);
	sg_store_read_end(t);
	return r;
}

int
sg_service_list(struct sg_service *s, enum sg_req_state state,
    const char *key, int64_t before_seq, size_t limit,
    struct sg_request ***ret, size_t *ret_n)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = sg_store_list(t, state, key, before_seq, limit, ret, ret_n);
	sg_store_read_end(t);
	return r;
}
