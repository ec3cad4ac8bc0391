/*
 * Queries over a parsed policy and the quorum evaluator (the parser is
 * policy.c; the records are in policy_int.h).
 *
 * Evaluation matches approving officers to the slots of the key's terms
 * (term i has count_i slots) with augmenting paths (Kuhn's algorithm, with
 * a term's slots visited together).  This is what makes "one officer fills
 * one term" exact when officers sit in several groups: greedy assignment
 * can strand a slot that a different assignment would fill.  The state
 * lives on the stack and the recursion depth is bounded by the number of
 * terms, so evaluation cannot fail.
 *
 * A key is evaluated through a copy in the view of what is decided
 * (sg_policy_key_for_kind()): the copy's terms are the kind's, and its
 * `view` says which, so that sg_policy_may_approve_now() asks the policy in
 * force in the same view.
 *
 * Pure: no I/O and no global state.
 */
#include <sys/types.h>

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_policy.h"
#include "sg_util.h"

#include "policy_int.h"

/* --- look-ups --- */

ssize_t
policy_principal_index(const struct sg_policy *p, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < p->nprincipals; i++)
		if (strcmp(p->principals[i].pub.name, name) == 0)
			return (ssize_t)i;
	return -1;
}

ssize_t
policy_key_index(const struct sg_policy *p, const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < p->nkeys; i++)
		if (strcmp(p->keys[i].pub.name, name) == 0)
			return (ssize_t)i;
	return -1;
}

ssize_t
policy_hsm_index(const struct sg_policy *p, const char *serial)
{
	size_t i;

	for (i = 0; serial != NULL && i < p->nhsms; i++)
		if (strcmp(p->hsms[i].pub.serial, serial) == 0)
			return (ssize_t)i;
	return -1;
}

const struct group_ent *
policy_group_find(const struct sg_policy *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->ngroups; i++)
		if (strcmp(p->groups[i].name, name) == 0)
			return &p->groups[i];
	return NULL;
}

int
policy_group_has(const struct group_ent *g, size_t principal)
{
	size_t i;

	for (i = 0; i < g->nmembers; i++)
		if (g->members[i] == principal)
			return 1;
	return 0;
}

/* --- queries --- */

const char *
sg_policy_name(const struct sg_policy *p)
{
	return p->name;
}

uint64_t
sg_policy_version(const struct sg_policy *p)
{
	return p->version;
}

const char *
sg_policy_sha256_hex(const struct sg_policy *p)
{
	return p->sha256_hex;
}

const struct sg_principal *
sg_policy_principal(const struct sg_policy *p, const char *name)
{
	ssize_t i = policy_principal_index(p, name);

	return i < 0 ? NULL : &p->principals[i].pub;
}

const struct sg_webauthn_cred *
sg_principal_webauthn(const struct sg_principal *principal, const uint8_t *id,
    size_t len)
{
	size_t i;

	if (principal == NULL || id == NULL || len == 0)
		return NULL;
	for (i = 0; i < principal->nwebauthn; i++)
		if (principal->webauthn[i].id_len == len &&
		    memcmp(principal->webauthn[i].id, id, len) == 0)
			return &principal->webauthn[i];
	return NULL;
}

/*
 * Both bindings identify a principal on their own: the fingerprint names one
 * certificate, the CN any certificate the client CA issues with it (so it
 * survives renewal).  The fingerprint is tried first so that a pinned
 * certificate always maps to its principal whatever CN it carries; a
 * principal that must be bound to one certificate only is given no
 * client-cn.  Client CNs and fingerprints are unique in a policy, so each
 * pass finds at most one principal.
 */
const struct sg_principal *
sg_policy_principal_by_cert(const struct sg_policy *p, const char *subject_cn,
    const uint8_t cert_sha256[32])
{
	const struct sg_principal *pr;
	size_t i;

	for (i = 0; cert_sha256 != NULL && i < p->nprincipals; i++) {
		pr = &p->principals[i].pub;
		if (pr->has_client_sha256 &&
		    sg_memeq_ct(pr->client_sha256, cert_sha256, 32) == 0)
			return pr;
	}
	if (subject_cn == NULL || *subject_cn == '\0')
		return NULL;
	for (i = 0; i < p->nprincipals; i++) {
		pr = &p->principals[i].pub;
		if (pr->client_cn[0] != '\0' &&
		    strcmp(pr->client_cn, subject_cn) == 0)
			return pr;
	}
	return NULL;
}

size_t
sg_policy_nkeys(const struct sg_policy *p)
{
	return p->nkeys;
}

const struct sg_policy_key *
sg_policy_key_at(const struct sg_policy *p, size_t i)
{
	return i < p->nkeys ? &p->keys[i].pub : NULL;
}

const struct sg_policy_key *
sg_policy_key(const struct sg_policy *p, const char *name)
{
	ssize_t i = policy_key_index(p, name);

	return i < 0 ? NULL : &p->keys[i].pub;
}

size_t
sg_policy_nhsms(const struct sg_policy *p)
{
	return p->nhsms;
}

const struct sg_hsm *
sg_policy_hsm_at(const struct sg_policy *p, size_t i)
{
	return i < p->nhsms ? &p->hsms[i].pub : NULL;
}

const struct sg_hsm *
sg_policy_hsm(const struct sg_policy *p, const char *serial)
{
	ssize_t i = policy_hsm_index(p, serial);

	return i < 0 ? NULL : &p->hsms[i].pub;
}

int
sg_policy_may_request(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *principal)
{
	const struct sg_principal *pr = sg_policy_principal(p, principal);
	size_t i;

	if (pr == NULL || k == NULL || !(pr->roles & SG_ROLE_REQUESTER))
		return 0;
	for (i = 0; i < k->nrequesters && i < SG_POLICY_MAX_REQUESTERS; i++)
		if (strcmp(k->requesters[i], principal) == 0)
			return 1;
	return 0;
}

int
sg_policy_country_allowed(const struct sg_policy_key *k, const char *country)
{
	size_t i;

	for (i = 0; k != NULL && country != NULL && i < k->ncountries &&
	    i < SG_POLICY_MAX_COUNTRIES; i++)
		if (strcmp(k->countries[i], country) == 0)
			return 1;
	return 0;
}

/* The country rule of an inventory entry, in the words of every caller. */
static int
country_rule(const struct sg_policy_key *k, const struct sg_hsm *hsm,
    char *why, size_t len)
{
	if (sg_policy_country_allowed(k, hsm->country))
		return 0;
	snprintf(why, len, "token serial %s stands in %s (%s); key '%s' is "
	    "not allowed there", hsm->serial, hsm->country, hsm->site,
	    k->name);
	return SG_ERR_FORBIDDEN;
}

int
sg_policy_hsm_allowed(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *serial,
    const struct sg_hsm **ret_hsm, char *why, size_t len)
{
	const struct sg_hsm *hsm;
	int r;

	if (p == NULL || k == NULL || serial == NULL)
		return SG_ERR_INVALID;
	if ((hsm = sg_policy_hsm(p, serial)) == NULL) {
		snprintf(why, len, "token serial %s is not in the HSM "
		    "inventory", serial);
		return SG_ERR_FORBIDDEN;
	}
	if ((r = country_rule(k, hsm, why, len)) != 0)
		return r;
	if (ret_hsm != NULL)
		*ret_hsm = hsm;
	return 0;
}

int
sg_policy_token_allowed(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *label, const char *serial,
    const char *manufacturer, const char *model,
    const struct sg_hsm **ret_hsm, char *why, size_t len)
{
	const struct sg_hsm *hsm;
	int r;

	if (p == NULL || k == NULL || label == NULL || serial == NULL ||
	    manufacturer == NULL || model == NULL)
		return SG_ERR_INVALID;
	if ((hsm = sg_policy_hsm(p, serial)) == NULL) {
		snprintf(why, len, "token '%s' (serial %s) is not in the HSM "
		    "inventory", label, serial);
		return SG_ERR_FORBIDDEN;
	}
	if ((hsm->manufacturer[0] != '\0' &&
	    strcmp(hsm->manufacturer, manufacturer) != 0) ||
	    (hsm->model[0] != '\0' && strcmp(hsm->model, model) != 0)) {
		snprintf(why, len, "token serial %s reports manufacturer '%s' "
		    "model '%s', the inventory says '%s' '%s'", serial,
		    manufacturer, model, hsm->manufacturer, hsm->model);
		return SG_ERR_FORBIDDEN;
	}
	if ((r = country_rule(k, hsm, why, len)) != 0)
		return r;
	if (ret_hsm != NULL)
		*ret_hsm = hsm;
	return 0;
}

/* --- a key's view for a kind (releases and grants) --- */

const struct sg_term *
sg_policy_key_terms(const struct sg_policy_key *k, enum sg_kind kind,
    size_t *ret_n)
{
	if (kind == SG_KIND_GRANT && k->ngrant_terms > 0) {
		*ret_n = k->ngrant_terms < SG_POLICY_MAX_TERMS ?
		    k->ngrant_terms : SG_POLICY_MAX_TERMS;
		return k->grant_terms;
	}
	*ret_n = k->nterms < SG_POLICY_MAX_TERMS ? k->nterms :
	    SG_POLICY_MAX_TERMS;
	return k->terms;
}

void
sg_policy_key_for_kind(const struct sg_policy_key *k, enum sg_kind kind,
    struct sg_policy_key *ret)
{
	struct sg_term terms[SG_POLICY_MAX_TERMS];
	const struct sg_term *t;
	size_t n;

	/* Through a copy of the terms: ret may be k. */
	t = sg_policy_key_terms(k, kind, &n);
	memcpy(terms, t, n * sizeof(*t));
	if (ret != k)
		*ret = *k;
	memset(ret->terms, 0, sizeof(ret->terms));
	memcpy(ret->terms, terms, n * sizeof(terms[0]));
	ret->nterms = n;
	ret->view = kind;
}

/* The groups of k's terms, looked up by name so that a copy of a key works
 * as well as the policy's own record.  NULL for an unknown group. */
static size_t
term_groups(const struct sg_policy *p, const struct sg_policy_key *k,
    const struct group_ent *g[SG_POLICY_MAX_TERMS])
{
	size_t i, n = k->nterms < SG_POLICY_MAX_TERMS ? k->nterms :
	    SG_POLICY_MAX_TERMS;

	for (i = 0; i < n; i++)
		g[i] = policy_group_find(p, k->terms[i].group);
	return n;
}

static int
in_term_group(const struct group_ent *const *g, size_t nterms, size_t pi)
{
	size_t t;

	for (t = 0; t < nterms; t++)
		if (g[t] != NULL && policy_group_has(g[t], pi))
			return 1;
	return 0;
}

/* A counted officer: exists, has the officer role, is not the requester,
 * and sits in one of the key's groups.  Returns the principal index. */
static ssize_t
eligible_officer(const struct sg_policy *p, const struct group_ent *const *g,
    size_t nterms, const char *requester, const char *officer)
{
	ssize_t pi;

	if (officer == NULL || (pi = policy_principal_index(p, officer)) < 0)
		return -1;
	if (!(p->principals[pi].pub.roles & SG_ROLE_OFFICER))
		return -1;
	if (requester != NULL && strcmp(requester, officer) == 0)
		return -1;
	if (!in_term_group(g, nterms, (size_t)pi))
		return -1;
	return pi;
}

int
sg_policy_may_approve(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *requester, const char *officer)
{
	const struct group_ent *g[SG_POLICY_MAX_TERMS];
	size_t n;

	if (p == NULL || k == NULL)
		return 0;
	n = term_groups(p, k, g);
	return eligible_officer(p, g, n, requester, officer) >= 0;
}

/* The officer's approval means under p is still its means under now:
 * the same approval key, or the same credential (see the header). */
static int
same_means(const struct sg_principal *a, const struct sg_principal *b,
    const uint8_t *cred_id, size_t cred_id_len)
{
	const struct sg_webauthn_cred *ca, *cb;

	if (cred_id == NULL)
		return a->approval_key != NULL && b->approval_key != NULL &&
		    EVP_PKEY_eq(a->approval_key, b->approval_key) == 1;
	if ((ca = sg_principal_webauthn(a, cred_id, cred_id_len)) == NULL ||
	    (cb = sg_principal_webauthn(b, cred_id, cred_id_len)) == NULL)
		return 0;
	if (strcmp(ca->rp_id, cb->rp_id) != 0 ||
	    strcmp(ca->origin, cb->origin) != 0 ||
	    (cb->require_uv && !ca->require_uv))
		return 0;
	return EVP_PKEY_eq(ca->pub, cb->pub) == 1;
}

/*
 * Eligible under the request's policy p (for its key k) and also under the
 * policy in force `now`: there the key of the same name must exist, the
 * principal must be one of its approvers, and its approval key must be the
 * same one (an envelope is verified under p's key; a key replaced since
 * must not go on counting), or for a decision made with a security key,
 * its credential (same_means()).  An officer revoked by a reload stops
 * counting at once, for requests made before the reload too.
 */
int
sg_policy_may_approve_now_cred(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const char *officer, const uint8_t *cred_id,
    size_t cred_id_len)
{
	const struct sg_policy_key *nk;
	const struct sg_principal *a, *b;
	struct sg_policy_key view;

	if (!sg_policy_may_approve(p, k, requester, officer))
		return 0;
	if (now == NULL || now == p)
		return 1;
	if ((nk = sg_policy_key(now, k->name)) == NULL)
		return 0;
	/* A copy for a kind is judged by the same kind's terms in now. */
	if (k->view != SG_KIND_REQUEST) {
		sg_policy_key_for_kind(nk, k->view, &view);
		nk = &view;
	}
	if (!sg_policy_may_approve(now, nk, requester, officer))
		return 0;
	a = sg_policy_principal(p, officer);
	b = sg_policy_principal(now, officer);
	if (a == NULL || b == NULL)
		return 0;
	return same_means(a, b, cred_id, cred_id_len);
}

int
sg_policy_may_approve_now(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const char *officer)
{
	return sg_policy_may_approve_now_cred(p, k, now, requester, officer,
	    NULL, 0);
}

int
sg_policy_may_approve_now_any(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const char *officer)
{
	const struct sg_principal *a;
	size_t i;

	if (sg_policy_may_approve_now(p, k, now, requester, officer))
		return 1;
	if ((a = sg_policy_principal(p, officer)) == NULL)
		return 0;
	for (i = 0; i < a->nwebauthn; i++)
		if (sg_policy_may_approve_now_cred(p, k, now, requester,
		    officer, a->webauthn[i].id, a->webauthn[i].id_len))
			return 1;
	return 0;
}

void
sg_policy_evaluate_now(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const struct sg_decision *d, size_t nd,
    struct sg_quorum_result *ret, uint8_t *ret_counted)
{
	struct sg_decision kept[POLICY_MAX_PRINCIPALS];
	size_t i, n = 0;

	for (i = 0; d != NULL && i < nd; i++) {
		int ok = sg_policy_may_approve_now_cred(p, k, now, requester,
		    d[i].officer, d[i].cred_id, d[i].cred_id_len);
		if (ret_counted != NULL)
			ret_counted[i] = (uint8_t)ok;
		if (ok && n < POLICY_MAX_PRINCIPALS)
			kept[n++] = d[i];
	}
	sg_policy_evaluate(p, k, requester, kept, n, ret);
}

struct matching {
	const struct group_ent *g[SG_POLICY_MAX_TERMS];
	unsigned cap[SG_POLICY_MAX_TERMS];
	unsigned fill[SG_POLICY_MAX_TERMS];
	int visited[SG_POLICY_MAX_TERMS];
	size_t nterms;
	size_t officer[POLICY_MAX_PRINCIPALS];	/* principal indices */
	int term[POLICY_MAX_PRINCIPALS];	/* -1: not assigned */
	size_t n;
};

/*
 * Finds room for officer a: a free slot in one of its terms, or a slot
 * whose holder can move to another term.  Each term is visited once per
 * search, so the depth is at most nterms.
 */
static int
augment(struct matching *m, size_t a)
{
	size_t t, b;

	for (t = 0; t < m->nterms; t++) {
		if (m->visited[t] || m->g[t] == NULL ||
		    !policy_group_has(m->g[t], m->officer[a]))
			continue;
		m->visited[t] = 1;
		if (m->fill[t] < m->cap[t]) {
			m->term[a] = (int)t;
			m->fill[t]++;
			return 1;
		}
		for (b = 0; b < m->n; b++) {
			/* b leaves t for another term and a takes its slot:
			 * fill[t] is unchanged. */
			if (m->term[b] == (int)t && augment(m, b)) {
				m->term[a] = (int)t;
				return 1;
			}
		}
	}
	return 0;
}

void
sg_policy_evaluate(const struct sg_policy *p, const struct sg_policy_key *k,
    const char *requester, const struct sg_decision *d, size_t nd,
    struct sg_quorum_result *ret)
{
	struct matching m;
	uint8_t seen[POLICY_MAX_PRINCIPALS];
	size_t i, t;
	ssize_t pi;
	int vetoed = 0, met = 1;

	memset(ret, 0, sizeof(*ret));
	ret->state = SG_QUORUM_PENDING;
	if (p == NULL || k == NULL)
		return;
	memset(&m, 0, sizeof(m));
	memset(seen, 0, sizeof(seen));
	m.nterms = term_groups(p, k, m.g);
	for (t = 0; t < m.nterms; t++)
		m.cap[t] = k->terms[t].count;

	for (i = 0; d != NULL && i < nd; i++) {
		pi = eligible_officer(p, m.g, m.nterms, requester,
		    d[i].officer);
		/* Only an officer's first decision counts. */
		if (pi < 0 || seen[pi])
			continue;
		seen[pi] = 1;
		if (!d[i].approve) {
			if (k->veto)
				vetoed = 1;
			continue;
		}
		m.officer[m.n] = (size_t)pi;
		m.term[m.n] = -1;
		m.n++;
	}
	for (i = 0; i < m.n; i++) {
		memset(m.visited, 0, sizeof(m.visited));
		(void)augment(&m, i);
	}

	ret->nterms = m.nterms;
	for (t = 0; t < m.nterms; t++) {
		ret->missing[t] = m.cap[t] - m.fill[t];
		if (ret->missing[t] != 0)
			met = 0;
	}
	if (m.nterms == 0)
		ret->state = SG_QUORUM_MET;
	else if (vetoed)
		ret->state = SG_QUORUM_VETOED;
	else
		ret->state = met ? SG_QUORUM_MET : SG_QUORUM_PENDING;
}
