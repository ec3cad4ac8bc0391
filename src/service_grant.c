/*
 * Signatures under a grant: a request that names an active grant is signed
 * at once, with the grant's statement and approvals as its evidence.
 *
 * The count is exact: the sequence number is taken first, in a write job
 * of its own (sg_store_grant_take: one guarded UPDATE, so 1..N each once,
 * under any concurrency and across restarts), together with the request
 * row that holds it; only then is the signer asked, for that sequence
 * number (the signer refuses a number above N and signs a number once).
 * The signature is then recorded with its artifact-signature entry in a
 * second job, guarded by the request still pending and the grant still
 * active and unexpired: a revocation or the grant's end wins over a
 * signature in flight, which is then neither stored nor released (the
 * request fails, with a failed entry).  A front that dies between the two
 * leaves a pending request with its number; the housekeeping thread signs
 * it (svc_grant_sign_pending) while the grant holds.
 *
 * Locks: plock held for reading by the callers; claims as in
 * service_sign.c.
 * Calls: the signer interface, store, release (evidence), log, keys,
 * manifest.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_util.h"
#include "service_int.h"

/* Why grant g gives no more signatures now, or 0 if it does. */
static int
grant_closed(const struct sg_service *s, const struct sg_request *g,
    struct sg_fault *f)
{
	if (g->state == SG_REQ_PENDING) {
		svc_fault(f, "grant", "grant %s is not approved yet", g->id);
		return SG_ERR_FORBIDDEN;
	}
	if (g->state == SG_REQ_REVOKED) {
		svc_fault(f, "grant", "grant %s was revoked by %s: %.200s",
		    g->id, g->cancelled_by, g->cancel_reason != NULL ?
		    g->cancel_reason : "");
		return SG_ERR_FORBIDDEN;
	}
	if (g->state != SG_REQ_ACTIVE || svc_now(s) >= g->expires_at) {
		svc_fault(f, "grant", "grant %s is %s", g->id,
		    g->state == SG_REQ_ACTIVE ? "expired" :
		    sg_req_state_str(g->state));
		return SG_ERR_FORBIDDEN;
	}
	if (g->used >= g->count) {
		svc_fault(f, "grant", "grant %s is used up (%llu of %llu "
		    "signatures)", g->id, (unsigned long long)g->used,
		    (unsigned long long)g->count);
		return SG_ERR_CONFLICT;
	}
	return 0;
}

/* The request nr may be made under grant g: same requester, key and
 * format, a name the pattern allows. */
static int
grant_fits(const struct sg_request *g, const struct sg_new_request *nr,
    const struct sg_artifact_line *al, struct sg_fault *f)
{
	struct sg_statement st;

	if (g->kind != SG_KIND_GRANT) {
		svc_fault(f, "grant", "%s is a %s, not a grant", g->id,
		    sg_kind_str(g->kind));
		return SG_ERR_INVALID;
	}
	if (strcmp(g->requester, nr->requester) != 0) {
		svc_fault(f, "grant", "grant %s is for '%s', not '%s'", g->id,
		    g->requester, nr->requester);
		return SG_ERR_FORBIDDEN;
	}
	if (nr->key != NULL && nr->key[0] != '\0' &&
	    strcmp(nr->key, g->key) != 0) {
		svc_fault(f, "key", "grant %s is for key '%s'", g->id, g->key);
		return SG_ERR_FORBIDDEN;
	}
	if (al->format != g->format) {
		svc_fault(f, "format", "grant %s is for format '%s'", g->id,
		    sg_format_str(g->format));
		return SG_ERR_FORBIDDEN;
	}
	if (sg_statement_parse(g->statement, strlen(g->statement), &st) != 0)
		return SG_ERR_IO;
	if (!sg_pattern_match(st.pattern, al->name)) {
		svc_fault(f, "artifact.name", "'%s' does not match the grant's "
		    "pattern '%s'", al->name, st.pattern);
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

struct take_job {
	struct sg_service *s;
	const struct sg_new_request *nr;
	const struct sg_request *g;
	struct sg_request *q;          /* to insert */
	struct sg_request *out;        /* the original of a retry */
	struct sg_fault *f;
};

/* Takes the grant's next number and stores the request holding it. */
static int
job_take(struct sg_txn *t, void *arg)
{
	struct take_job *tj = arg;
	struct sg_request *g = NULL;
	int r;

	if (tj->nr->idem_key != NULL) {
		r = svc_find_original(t, tj->nr, &tj->out, tj->f);
		if (r != SG_ERR_NOT_FOUND)
			return r;
	}
	r = sg_store_grant_take(t, tj->g->id, svc_now(tj->s),
	    &tj->q->grant_seq);
	if (r == SG_ERR_CONFLICT) {
		/* Say why, as it is now. */
		if (sg_store_get_request(t, tj->g->id, &g) == 0)
			r = grant_closed(tj->s, g, tj->f);
		sg_request_free(g);
		return r != 0 ? r : SG_ERR_CONFLICT;
	}
	if (r != 0)
		return r;
	return sg_store_insert_request(t, tj->q, tj->nr->idem_key,
	    tj->nr->body_sha256);
}

/* The request row for a signature under grant g, artifact al. */
static int
grant_request(const struct sg_request *g, const struct sg_new_request *nr,
    const struct sg_artifact_line *al, int64_t now, struct sg_request *q)
{
	int r;

	memset(q, 0, sizeof(*q));
	if ((r = svc_random_id(q->id)) != 0)
		return r;
	q->kind = SG_KIND_REQUEST;
	snprintf(q->key, sizeof(q->key), "%s", g->key);
	snprintf(q->digest_alg, sizeof(q->digest_alg), "%s",
	    sg_digest_name(al->digest_alg));
	sg_hex_encode(al->digest, al->digest_len, q->digest_hex);
	q->format = al->format;
	q->artifact_json = (char *)nr->artifact_json;
	snprintf(q->requester, sizeof(q->requester), "%s", nr->requester);
	q->created_at = now;
	q->expires_at = g->expires_at;
	snprintf(q->policy_name, sizeof(q->policy_name), "%s",
	    g->policy_name);
	q->policy_version = g->policy_version;
	snprintf(q->policy_sha256, sizeof(q->policy_sha256), "%s",
	    g->policy_sha256);
	snprintf(q->spki_sha256, sizeof(q->spki_sha256), "%s",
	    g->spki_sha256);
	q->statement = g->statement;
	q->state = SG_REQ_PENDING;
	snprintf(q->grant_id, sizeof(q->grant_id), "%s", g->id);
	return 0;
}

struct grant_signed_job {
	struct sg_service *s;
	const char *id;                /* the request */
	const struct sg_key_view *kv;
	const struct sg_batch_result *res;
	const char *line;
	const char *refused;           /* fail the request with this */
};

/* Records the signature, or the refusal, while the grant holds. */
static int
job_grant_signed(struct sg_txn *t, void *arg)
{
	struct grant_signed_job *gj = arg;
	struct sg_request *q = NULL, *g = NULL;
	struct svc_artifact a;
	struct sg_fault f;
	int64_t now = svc_now(gj->s);
	uint64_t index;
	int r;

	if ((r = sg_store_get_request(t, gj->id, &q)) != 0)
		return r;
	if (q->state != SG_REQ_PENDING) {
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if ((r = sg_store_get_request(t, q->grant_id, &g)) != 0)
		goto out;
	memset(&f, 0, sizeof(f));
	if (gj->refused == NULL && g->state == SG_REQ_ACTIVE &&
	    now < g->expires_at) {
		memset(&a, 0, sizeof(a));
		a.position = q->grant_seq;
		a.line = gj->line;
		a.sig = gj->res->sig;
		a.sig_len = gj->res->sig_len;
		a.cms = gj->res->cms;
		a.cms_len = gj->res->cms_len;
		if ((r = sg_store_set_signed(t, q->id, a.sig, a.sig_len, a.cms,
		    a.cms_len, now, NULL)) == 0 &&
		    (r = svc_log_artifact(gj->s, t, g, gj->kv, &a, now,
		    &index)) == 0)
			r = sg_store_set_log_index(t, q->id, index);
		goto out;
	}
	if (gj->refused == NULL)
		grant_closed(gj->s, g, &f);
	r = svc_finish_in(gj->s, t, q->id, SG_REQ_FAILED, gj->refused != NULL ?
	    gj->refused : f.detail);
out:
	sg_request_free(g);
	sg_request_free(q);
	return r;
}

/* The artifact line of request q: its digest, format and name. */
static int
request_line(const struct sg_request *q, const char *name, char *line,
    size_t cap)
{
	struct sg_artifact_line al;
	size_t n;

	memset(&al, 0, sizeof(al));
	al.digest_alg = sg_digest_from_name(q->digest_alg);
	al.format = q->format;
	snprintf(al.name, sizeof(al.name), "%s", name);
	if (sg_hex_decode(q->digest_hex, strlen(q->digest_hex), al.digest,
	    sizeof(al.digest), &al.digest_len) != 0)
		return SG_ERR_IO;
	return sg_artifact_line_build(&al, line, cap, &n);
}

/* The grant and its evidence for request q. */
static int
grant_evidence(struct sg_service *s, const struct sg_request *q,
    struct sg_request **ret_g, struct sg_sign_evidence *ev, const char **envs,
    size_t *lens)
{
	struct sg_txn *t;
	int r;

	if (sg_store_read_begin(s->store, &t) != 0)
		return SG_ERR_UNAVAILABLE;
	if ((r = sg_store_get_request(t, q->grant_id, ret_g)) == 0)
		r = svc_object_evidence(s, t, *ret_g, ev, envs, lens);
	sg_store_read_end(t);
	return r;
}

/* The artifact name of a request (its artifact object's `name`). */
static int
artifact_name(const struct sg_request *q, char *out, size_t cap)
{
	json_t *o, *v;
	int r = SG_ERR_INVALID;

	if ((o = json_loads(q->artifact_json, 0, NULL)) == NULL)
		return SG_ERR_IO;
	if ((v = json_object_get(o, "name")) != NULL && json_is_string(v) &&
	    (size_t)snprintf(out, cap, "%s", json_string_value(v)) < cap)
		r = 0;
	json_decref(o);
	return r;
}

/*
 * Signs reserved request id (pending, with its grant's number) and records
 * the outcome.  0 once signed and logged; SG_ERR_FORBIDDEN when refused
 * for good (the request failed); another error leaves it pending.
 */
static int
grant_sign_reserved(struct sg_service *s, const char *id, const char *name,
    struct sg_fault *f)
{
	struct sg_request *q = NULL, *g = NULL;
	const struct sg_key_view *kv;
	struct sg_sign_evidence ev;
	const char *envs[SG_ENVELOPES_MAX];
	size_t lens[SG_ENVELOPES_MAX];
	struct sg_batch_item item;
	struct sg_batch_result res;
	struct grant_signed_job gj = { .s = s, .id = id };
	char line[SG_ARTIFACT_LINE_MAX + 1], why[SG_SIGNER_ERR_MAX];
	int r, kept = 0;

	memset(&res, 0, sizeof(res));
	why[0] = '\0';
	if ((r = sg_service_get(s, id, &q)) != 0 ||
	    (r = request_line(q, name, line, sizeof(line))) != 0)
		goto out;
	if ((r = grant_evidence(s, q, &g, &ev, envs, lens)) != 0) {
		gj.refused = "the grant's quorum no longer holds";
		goto record;
	}
	if ((kv = svc_statement_key(s, g, why, sizeof(why))) == NULL) {
		gj.refused = why;
		goto record;
	}
	gj.kv = kv;
	memset(&item, 0, sizeof(item));
	item.position = q->grant_seq;
	item.line = line;
	item.line_len = strlen(line);
	r = s->signer.sign_batch == NULL ? SG_ERR_UNAVAILABLE :
	    s->signer.sign_batch(s->signer.ctx, g->key, &ev, &item, 1, &res,
	    why, sizeof(why));
	if (r == 0 && res.status != 0) {
		r = res.status;
		snprintf(why, sizeof(why), "%s", sg_strerror(r));
	}
	if (r == SG_ERR_VERIFY || r == SG_ERR_FORBIDDEN ||
	    r == SG_ERR_CONFLICT)
		gj.refused = why;
	else if (r != 0) {
		svc_fault(f, NULL, "the request could not be signed: %s",
		    why[0] ? why : sg_strerror(r));
		goto out;
	}
record:
	gj.res = &res;
	gj.line = line;
	r = sg_store_write_kept(s->store, job_grant_signed, &gj, &kept);
	if (r == 0 && gj.refused != NULL) {
		svc_fault(f, NULL, "the request was refused: %s", gj.refused);
		r = SG_ERR_FORBIDDEN;
	} else if (r == 0)
		svc_count_signature(s, gj.kv);
	else if (kept)
		svc_recorded_fault(f, "request", id, "read it again shortly");
out:
	svc_notify(s, id);
	sg_batch_results_clear(&res, 1);
	sg_request_free(g);
	sg_request_free(q);
	return r;
}

int
svc_grant_sign_pending(struct sg_service *s, const char *id)
{
	struct sg_request *q = NULL;
	struct sg_fault f;
	char name[SG_ARTIFACT_LINE_NAME_MAX + 1];
	int r;

	/* The sweep's: not one a caller is signing itself (svc_hold). */
	if (!svc_claim_unheld(s, id))
		return SG_ERR_CONFLICT;
	if (!svc_claim_db(s, id)) {
		svc_unclaim(s, id);
		return SG_ERR_CONFLICT;
	}
	memset(&f, 0, sizeof(f));
	if ((r = sg_service_get(s, id, &q)) == 0 &&
	    q->state == SG_REQ_PENDING && q->grant_id[0] != '\0' &&
	    (r = artifact_name(q, name, sizeof(name))) == 0)
		r = grant_sign_reserved(s, id, name, &f);
	svc_unclaim(s, id);
	sg_request_free(q);
	return r;
}

/* The artifact line of nr under grant g: nr's digest, its format (the
 * grant's when none is given) and its artifact's name. */
static int
grant_line(const struct sg_new_request *nr, const struct sg_request *g,
    struct sg_artifact_line *al, char *line, size_t cap, struct sg_fault *f)
{
	struct sg_request tmp;
	size_t n;

	memset(al, 0, sizeof(*al));
	memset(&tmp, 0, sizeof(tmp));
	tmp.artifact_json = (char *)nr->artifact_json;
	if (artifact_name(&tmp, al->name, sizeof(al->name)) != 0 ||
	    !sg_artifact_word_valid(al->name, strlen(al->name),
	    SG_ARTIFACT_LINE_NAME_MAX)) {
		svc_fault(f, "artifact.name", "under a grant, the artifact's "
		    "name is 1 to %d bytes of printable ASCII without spaces",
		    SG_ARTIFACT_LINE_NAME_MAX);
		return SG_ERR_INVALID;
	}
	al->digest_alg = nr->digest_alg;
	memcpy(al->digest, nr->digest, nr->digest_len);
	al->digest_len = nr->digest_len;
	al->format = sg_format_valid(nr->format) ? nr->format : g->format;
	if (sg_artifact_line_build(al, line, cap, &n) != 0) {
		svc_fault(f, "digest", "the digest does not make an artifact "
		    "line");
		return SG_ERR_INVALID;
	}
	return 0;
}

/* The policy in force still lets requester use key, and the key can be
 * used (a reload may have changed either since the grant was approved). */
static int
key_in_force(struct sg_service *s, const char *key, const char *requester,
    struct sg_fault *f)
{
	const struct sg_key_view *kv = svc_key_locked(s, key);

	if (kv == NULL || !sg_policy_may_request(s->policy, kv->pk,
	    requester)) {
		svc_fault(f, "key", "'%s' may no longer request signatures "
		    "with key '%s'", requester, key);
		return SG_ERR_FORBIDDEN;
	}
	if (!kv->usable) {
		svc_fault(f, "key", "key '%s' cannot be used: %s", key,
		    kv->reason);
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

/* Reads grant id and checks that nr fits it now; *al and line: the
 * artifact line to sign. */
static int
grant_check(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_artifact_line *al, char *line, size_t cap,
    struct sg_request **ret_g, struct sg_fault *f)
{
	int r;

	if ((r = sg_service_get(s, nr->grant, ret_g)) == SG_ERR_NOT_FOUND) {
		svc_fault(f, "grant", "no grant with id '%s'", nr->grant);
		return r;
	}
	if (r != 0)
		return SG_ERR_UNAVAILABLE;
	if ((r = grant_line(nr, *ret_g, al, line, cap, f)) != 0 ||
	    (r = grant_fits(*ret_g, nr, al, f)) != 0 ||
	    (r = grant_closed(s, *ret_g, f)) != 0)
		return r;
	if ((r = key_in_force(s, (*ret_g)->key, nr->requester, f)) != 0)
		return r;
	return svc_check_scheme(svc_key_locked(s, (*ret_g)->key)->pk, nr, f);
}

int
svc_grant_create(struct sg_service *s, const struct sg_new_request *nr,
    struct sg_request **ret, int *ret_existing, struct sg_fault *f)
{
	struct sg_artifact_line al;
	struct sg_request *g = NULL, q;
	struct take_job tj = { .s = s, .nr = nr, .q = &q, .f = f };
	char line[SG_ARTIFACT_LINE_MAX + 1];
	int r, held = 0;

	*ret_existing = 0;
	if ((r = grant_check(s, nr, &al, line, sizeof(line), &g, f)) != 0)
		goto out;
	if (nr->idem_key != NULL &&
	    (r = svc_original(s, nr, ret, f)) != SG_ERR_NOT_FOUND) {
		*ret_existing = r == 0;
		goto out;
	}
	if ((r = grant_request(g, nr, &al, svc_now(s), &q)) != 0)
		goto out;
	tj.g = g;
	/* Signed below by this thread, not by the sweep meanwhile. */
	held = svc_hold(s, q.id);
	if ((r = sg_store_write(s->store, job_take, &tj)) != 0) {
		if (r == SG_ERR_UNAVAILABLE || r == SG_ERR_IO)
			svc_fault(f, NULL, "the request could not be stored");
		goto out;
	}
	if (tj.out != NULL) {
		*ret_existing = 1;
		*ret = tj.out;
		goto out;
	}
	svc_stat_add(s, &s->stats.requests_created);
	if (svc_claim(s, q.id)) {
		/* A new request: no other gateway has heard of it yet. */
		r = svc_claim_db(s, q.id) ?
		    grant_sign_reserved(s, q.id, al.name, f) : 0;
		svc_unclaim(s, q.id);
		if (r != 0 && r != SG_ERR_FORBIDDEN)
			goto out;
	}
	if (held)
		svc_unhold(s, q.id);
	held = 0;
	if ((r = svc_log_covered(s, q.id, f)) == 0)
		r = sg_service_get(s, q.id, ret);
	if (r == 0 && (*ret)->state == SG_REQ_FAILED) {
		svc_fault(f, NULL, "grant %s: %s", g->id, (*ret)->error ?
		    (*ret)->error : "refused");
		sg_request_free(*ret);
		*ret = NULL;
		r = SG_ERR_FORBIDDEN;
	}
out:
	if (held)
		svc_unhold(s, q.id);
	sg_request_free(g);
	return r;
}
