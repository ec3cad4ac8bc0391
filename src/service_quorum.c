/*
 * A request's quorum: the policy a request was made under (the one in
 * force, or the stored one its statement names by SHA-256), and which of
 * its recorded decisions count.  A decision counts only if its officer
 * may approve under the request's policy *and* under the policy in force,
 * so that revoking an officer takes effect at once, for requests made
 * before the reload too.
 *
 * Locks: every function expects plock held for reading (the policy in
 * force); the public ones take it.
 * Calls: policy, store (reads).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_util.h"
#include "service_int.h"

/* The policy a request was made under (the current one or a stored one).
 * *ret_owned is set when the caller must free it. */
int
svc_request_policy(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, struct sg_policy **ret, int *ret_owned)
{
	char *text = NULL, err[256];
	int r;

	*ret_owned = 0;
	if (strcmp(q->policy_sha256, sg_policy_sha256_hex(s->policy)) == 0) {
		*ret = s->policy;
		return 0;
	}
	if ((r = sg_store_get_policy(t, q->policy_sha256, &text)) != 0)
		return r;
	r = sg_policy_parse("stored policy", text, strlen(text), ret, err,
	    sizeof(err));
	free(text);
	if (r == 0)
		*ret_owned = 1;
	return r;
}

/*
 * The credential id of each decision signed with a security key: the
 * policy in force must still hold that credential for it to count
 * (sg_policy_may_approve_now_cred()).  Read from the stored envelope,
 * which was verified when it was posted.  0, or -1 (none may count).
 */
static int
decision_creds(const struct sg_request *q, struct sg_decision *d,
    uint8_t (**ret_ids)[SG_WEBAUTHN_CRED_ID_MAX])
{
	uint8_t (*ids)[SG_WEBAUTHN_CRED_ID_MAX] = NULL;
	const char *json;
	size_t i, len;

	*ret_ids = NULL;
	for (i = 0; i < q->napprovals; i++) {
		json = q->approvals[i].envelope;
		if (json == NULL)
			continue;
		if (ids == NULL && (ids = malloc(q->napprovals *
		    sizeof(*ids))) == NULL)
			return -1;
		if (sg_envelope_webauthn_id(json, strlen(json), ids[i],
		    sizeof(ids[i]), &len) != 0) {
			sg_log_error("request %s: the envelope of decision %zu "
			    "no longer parses: no decision counts", q->id,
			    i + 1);
			free(ids);
			return -1;
		}
		if (len > 0) {
			d[i].cred_id = ids[i];
			d[i].cred_id_len = len;
		}
	}
	*ret_ids = ids;
	return 0;
}

/*
 * The quorum of request q under its own policy p, counting only decisions
 * whose officer may approve under p and under the policy in force (with
 * the same approval key, or the same credential for a decision signed
 * with a security key).
 * counted[i] (optional, one per recorded decision, SG_ENVELOPES_MAX of
 * them) says which did.  The store refuses a decision past
 * SG_ENVELOPES_MAX; a request that holds more all the same (written by
 * hand) is never judged by some of them: none counts, so it is neither
 * signed nor vetoed, and the log says why.
 */
void
svc_evaluate(const struct sg_service *s, const struct sg_policy *p,
    const struct sg_policy_key *pk, const struct sg_request *q,
    struct sg_quorum_result *res, uint8_t *counted)
{
	struct sg_decision d[SG_ENVELOPES_MAX];
	uint8_t (*ids)[SG_WEBAUTHN_CRED_ID_MAX] = NULL;
	size_t i, n = 0;

	memset(d, 0, sizeof(d));
	if (q->napprovals > SG_ENVELOPES_MAX)
		sg_log_error("request %s holds %zu decisions, more than the "
		    "%d one request can: none of them counts", q->id,
		    q->napprovals, SG_ENVELOPES_MAX);
	else if (decision_creds(q, d, &ids) == 0) {
		for (i = 0; i < q->napprovals; i++) {
			d[n].officer = q->approvals[i].officer;
			d[n].approve = q->approvals[i].approve;
			n++;
		}
	}
	if (counted != NULL)
		memset(counted, 0, SG_ENVELOPES_MAX);
	sg_policy_evaluate_now(p, pk, s->policy, q->requester, d, n, res,
	    counted);
	free(ids);
}

/* Whether the approvals marked in on[] meet k's quorum under p. */
static int
meets(const struct sg_policy *p, const struct sg_policy_key *k,
    const struct sg_request *q, const uint8_t *on)
{
	struct sg_decision d[SG_ENVELOPES_MAX];
	struct sg_quorum_result res;
	size_t i, n = 0;

	memset(d, 0, sizeof(d));
	for (i = 0; i < q->napprovals && i < SG_ENVELOPES_MAX; i++)
		if (on[i]) {
			d[n].officer = q->approvals[i].officer;
			d[n].approve = 1;
			n++;
		}
	sg_policy_evaluate(p, k, q->requester, d, n, &res);
	return res.state == SG_QUORUM_MET;
}

int
svc_quorum_minimal(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, const uint8_t *counted,
    uint8_t kept[SG_ENVELOPES_MAX])
{
	struct sg_policy *p;
	const struct sg_policy_key *pk;
	struct sg_policy_key kview;
	size_t i;
	int owned, r;

	memset(kept, 0, SG_ENVELOPES_MAX);
	for (i = 0; i < q->napprovals && i < SG_ENVELOPES_MAX; i++)
		kept[i] = counted != NULL && counted[i] &&
		    q->approvals[i].approve;
	if ((r = svc_request_policy(s, t, q, &p, &owned)) != 0)
		return r;
	if ((pk = sg_policy_key(p, q->key)) == NULL) {
		r = SG_ERR_NOT_FOUND;
		goto out;
	}
	sg_policy_key_for_kind(pk, q->kind, &kview);
	if (!meets(p, &kview, q, kept)) {
		r = SG_ERR_CONFLICT;
		goto out;
	}
	/* One at a time: an approval the quorum holds without goes.  What
	 * is left is minimal, every officer filling one term's slot. */
	for (i = 0; i < q->napprovals && i < SG_ENVELOPES_MAX; i++) {
		if (!kept[i])
			continue;
		kept[i] = 0;
		if (!meets(p, &kview, q, kept))
			kept[i] = 1;
	}
	r = 0;
out:
	if (owned)
		sg_policy_free(p);
	return r;
}

int
svc_quorum_view_in(struct sg_service *s, struct sg_txn *t,
    const struct sg_request *q, struct sg_request_quorum *ret)
{
	struct sg_policy *p;
	const struct sg_policy_key *pk;
	struct sg_policy_key kview;
	size_t i;
	int owned, r;

	memset(ret, 0, sizeof(*ret));
	if ((r = svc_request_policy(s, t, q, &p, &owned)) != 0)
		return r;
	if ((pk = sg_policy_key(p, q->key)) == NULL)
		r = SG_ERR_NOT_FOUND;
	else {
		sg_policy_key_for_kind(pk, q->kind, &kview);
		pk = &kview;
		svc_evaluate(s, p, pk, q, &ret->res, ret->counted);
		for (i = 0; i < pk->nterms && i < SG_POLICY_MAX_TERMS; i++)
			ret->terms[i] = pk->terms[i];
		ret->nterms = i;
	}
	snprintf(ret->in_force, sizeof(ret->in_force), "%s@%llu",
	    sg_policy_name(s->policy),
	    (unsigned long long)sg_policy_version(s->policy));
	if (owned)
		sg_policy_free(p);
	return r;
}

int
svc_quorum_view_locked(struct sg_service *s, const struct sg_request *q,
    struct sg_request_quorum *ret)
{
	struct sg_txn *t;
	int r;

	if ((r = sg_store_read_begin(s->store, &t)) != 0)
		return SG_ERR_UNAVAILABLE;
	r = svc_quorum_view_in(s, t, q, ret);
	sg_store_read_end(t);
	return r;
}

int
sg_service_request_quorum(struct sg_service *s, const struct sg_request *q,
    struct sg_request_quorum *ret)
{
	int r;

	pthread_rwlock_rdlock(&s->plock);
	r = svc_quorum_view_locked(s, q, ret);
	pthread_rwlock_unlock(&s->plock);
	return r;
}

int
sg_service_quorum(struct sg_service *s, const struct sg_request *q,
    struct sg_quorum_result *ret)
{
	struct sg_request_quorum v;
	int r;

	if ((r = sg_service_request_quorum(s, q, &v)) == 0)
		*ret = v.res;
	return r;
}
