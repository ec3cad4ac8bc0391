/*
 * Policy changes that need approval (docs/API.md, "The policy approval
 * statement").  A policy with `policy-change require` terms names the
 * officers who must approve its successor; each signs, as a DSSE envelope
 * like a request's approval, the body
 *
 *     signgate policy approval v1
 *     policy <name>@<version> sha256:<hex of the new policy file>
 *     previous <name>@<version> sha256:<hex of the policy in force>
 *     decision approve
 *
 * The statement (the first three lines) is built here, from both
 * policies, and nowhere else: the gateway, the CLI and a verifier compare
 * what was signed with this one rendering.
 */
#ifndef SG_POLICY_CHANGE_H
#define SG_POLICY_CHANGE_H

#include <stddef.h>

#include "sg_dsse.h"
#include "sg_evidence.h"
#include "sg_policy.h"

#define SG_POLICY_APPROVAL_FIRST "signgate policy approval v1\n"

/* The statement approving `next` in place of `prev` (malloc'd). */
int sg_policy_approval_statement(const struct sg_policy *next,
    const struct sg_policy *prev, char **ret, size_t *ret_len);

/*
 * One officer's approval of `next` under the policy in force `prev`: the
 * envelope carries this statement with "decision approve", its keyid is
 * an officer of a group prev's policy-change terms name, and its
 * signature verifies (sg_approval_accept(), with prev's change terms as
 * the key's and no requester).  SG_ERR_INVALID when prev has no such
 * terms or the envelope rejects; otherwise as sg_approval_accept().
 */
int sg_policy_approval_accept(const struct sg_policy *next,
    const struct sg_policy *prev, const struct sg_envelope *env,
    const struct sg_principal **ret_officer, struct sg_approval_fault *f)
    __attribute__((warn_unused_result));

/*
 * Whether n logged approvals (the officer each policy-decision entry
 * names and its envelope) make `next` the successor of `prev`: each
 * envelope accepted (sg_policy_approval_accept()), signed by the officer
 * its entry names, no officer twice, and together they meet prev's
 * policy-change terms.  The officers, space-separated, in names.
 * SG_ERR_INVALID with the reason in errbuf otherwise.  What a verifier
 * checks offline against the log; the gateway decides one approval at a
 * time.
 */
int sg_policy_approvals_check(const struct sg_policy *next,
    const struct sg_policy *prev, const char *const *officers,
    const char *const *envelopes, const size_t *lens, size_t n,
    char *names, size_t names_len, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

#endif
