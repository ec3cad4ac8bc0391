/*
 * The policy approval statement and the rule for one officer's approval
 * of a policy change (see include/sg_policy_change.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_policy_change.h"

/* The first term still missing officers (0 when all hold). */
static unsigned
first_missing(const struct sg_quorum_result *res, size_t nterms)
{
	size_t i;

	for (i = 0; i < nterms && i < SG_POLICY_MAX_TERMS; i++)
		if (res->missing[i] > 0)
			return res->missing[i];
	return 0;
}

int
sg_policy_approval_statement(const struct sg_policy *next,
    const struct sg_policy *prev, char **ret, size_t *ret_len)
{
	char *s = NULL;
	int n;

	if (next == NULL || prev == NULL || ret == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	n = asprintf(&s, SG_POLICY_APPROVAL_FIRST
	    "policy %s@%llu sha256:%s\n"
	    "previous %s@%llu sha256:%s\n",
	    sg_policy_name(next), (unsigned long long)sg_policy_version(next),
	    sg_policy_sha256_hex(next), sg_policy_name(prev),
	    (unsigned long long)sg_policy_version(prev),
	    sg_policy_sha256_hex(prev));
	if (n < 0)
		return SG_ERR_NOMEM;
	*ret = s;
	*ret_len = (size_t)n;
	return 0;
}

int
sg_policy_approval_accept(const struct sg_policy *next,
    const struct sg_policy *prev, const struct sg_envelope *env,
    const struct sg_principal **ret_officer, struct sg_approval_fault *f)
{
	struct sg_policy_key ck;
	char *stmt = NULL;
	size_t len = 0;
	int approve = 0, r;

	memset(f, 0, sizeof(*f));
	sg_policy_change_key(prev, &ck);
	if (ck.nterms == 0) {
		f->field = "";
		snprintf(f->why, sizeof(f->why), "the policy in force (%s@%llu) "
		    "asks for no approval of its successor",
		    sg_policy_name(prev),
		    (unsigned long long)sg_policy_version(prev));
		return SG_ERR_INVALID;
	}
	if ((r = sg_policy_approval_statement(next, prev, &stmt, &len)) != 0)
		return r;
	r = sg_approval_accept(prev, &ck, NULL, "", stmt, len, env,
	    ret_officer, &approve, f);
	free(stmt);
	if (r == 0 && !approve) {
		f->field = "payload";
		snprintf(f->why, sizeof(f->why), "a policy change is approved "
		    "or left pending: its decision line must be 'decision "
		    "approve'");
		return SG_ERR_INVALID;
	}
	return r;
}

/* Approval i of the logged ones: accepted, by the officer its entry
 * names, who has not approved already (d[0..i) hold the earlier ones). */
static int
approval_one(const struct sg_policy *next, const struct sg_policy *prev,
    const char *officer, const char *json, size_t len,
    const struct sg_decision *d, size_t i, char *errbuf, size_t errlen)
{
	const struct sg_principal *who = NULL;
	struct sg_approval_fault af;
	struct sg_envelope env;
	char err[256];
	size_t k;
	int r;

	memset(&env, 0, sizeof(env));
	if (json == NULL || officer == NULL ||
	    sg_envelope_parse(json, len, &env, err, sizeof(err)) != 0) {
		snprintf(errbuf, errlen, "approval %zu (%s): the envelope does "
		    "not parse", i + 1, officer != NULL ? officer : "?");
		return SG_ERR_INVALID;
	}
	r = sg_policy_approval_accept(next, prev, &env, &who, &af);
	sg_envelope_clear(&env);
	if (r == SG_ERR_NOMEM)
		return r;
	if (r != 0) {
		snprintf(errbuf, errlen, "approval %zu (%s): %s%s%s", i + 1,
		    officer, af.field != NULL && af.field[0] != '\0' ?
		    af.field : "", af.field != NULL && af.field[0] != '\0' ?
		    ": " : "", af.why);
		return SG_ERR_INVALID;
	}
	if (strcmp(who->name, officer) != 0) {
		snprintf(errbuf, errlen, "approval %zu: the entry names %s, the "
		    "envelope is %s's", i + 1, officer, who->name);
		return SG_ERR_INVALID;
	}
	for (k = 0; k < i; k++)
		if (strcmp(d[k].officer, officer) == 0) {
			snprintf(errbuf, errlen, "%s approved twice: an officer "
			    "counts once", officer);
			return SG_ERR_INVALID;
		}
	return 0;
}

int
sg_policy_approvals_check(const struct sg_policy *next,
    const struct sg_policy *prev, const char *const *officers,
    const char *const *envelopes, const size_t *lens, size_t n,
    char *names, size_t names_len, char *errbuf, size_t errlen)
{
	struct sg_decision d[SG_QUORUM_MAX];
	struct sg_policy_key ck;
	struct sg_quorum_result res;
	size_t i, o = 0, len;
	int r;

	if (next == NULL || prev == NULL || names == NULL || names_len == 0)
		return SG_ERR_INVALID;
	names[0] = '\0';
	if (n == 0 || n > SG_QUORUM_MAX) {
		snprintf(errbuf, errlen, "%zu approvals: from 1 to %d count",
		    n, SG_QUORUM_MAX);
		return SG_ERR_INVALID;
	}
	memset(d, 0, sizeof(d));
	for (i = 0; i < n; i++) {
		if ((r = approval_one(next, prev, officers[i], envelopes[i],
		    lens[i], d, i, errbuf, errlen)) != 0)
			return r;
		d[i].officer = officers[i];
		d[i].approve = 1;
		len = strlen(officers[i]);
		if (o + len + 2 <= names_len) {
			if (o > 0)
				names[o++] = ' ';
			memcpy(names + o, officers[i], len + 1);
			o += len;
		}
	}
	sg_policy_change_key(prev, &ck);
	sg_policy_evaluate(prev, &ck, "", d, n, &res);
	if (res.state != SG_QUORUM_MET) {
		snprintf(errbuf, errlen, "the approvals of %s do not meet the "
		    "policy-change terms of %s@%llu (%zu term%s, %u more "
		    "approval%s needed for the first unmet)", names,
		    sg_policy_name(prev),
		    (unsigned long long)sg_policy_version(prev), ck.nterms,
		    ck.nterms == 1 ? "" : "s", first_missing(&res, ck.nterms),
		    first_missing(&res, ck.nterms) == 1 ? "" : "s");
		return SG_ERR_INVALID;
	}
	return 0;
}
