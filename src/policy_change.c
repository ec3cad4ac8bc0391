/*
 * The policy approval statement and the rule for one officer's approval
 * of a policy change (see include/sg_policy_change.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_policy_change.h"

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
