/*
 * The approval evidence behind a signature, checked against a policy: the
 * statement the officers signed and every decision envelope recorded for
 * the request.  Pure (no I/O): the verifier gives it what it read from a
 * log entry and a policy file, and the signer can give it what it is about
 * to sign.
 */
#ifndef SG_EVIDENCE_H
#define SG_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_dsse.h"
#include "sg_policy.h"

#define SG_EVIDENCE_MAX_ENVELOPES 64

/*
 * Checks that `statement` was approved under policy p and that the
 * approval holds at signed_at:
 *
 *  - the statement parses strictly and names this policy (name, version
 *    and the SHA-256 of the exact file);
 *  - its key exists in p and its requester may request that key;
 *  - signed_at is before the statement's expiry;
 *  - every envelope parses, has the approval payload type, carries exactly
 *    this statement plus one decision line, is by a distinct officer of p
 *    who may decide on this request, and its signature over SHA-256(PAE)
 *    verifies under that officer's approval key;
 *  - the decisions meet the key's quorum (not vetoed, nothing missing).
 *
 * Every envelope must pass: evidence holding a bad one is refused, not
 * filtered.  On failure SG_ERR_VERIFY (or SG_ERR_INVALID / SG_ERR_TOO_LARGE
 * for malformed or oversize arguments) and errbuf says "<link>: <why>",
 * the link being statement, policy, key, requester, expiry, approval N
 * (counted from 1) or quorum.  On success the parsed statement is stored
 * in *ret_stmt (which may be NULL).
 */
int sg_evidence_check(const struct sg_policy *p, const char *statement,
    size_t stmt_len, const char *const *envelopes, const size_t *lens,
    size_t n, int64_t signed_at, struct sg_statement *ret_stmt,
    char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/*
 * The same check, and every envelope's officer must also be an approver of
 * the key under `now`, the policy in force when the signature is made
 * (sg_policy_may_approve_now): an officer revoked after the request was
 * made no longer counts.  The signer runs this with the newest policy it
 * has loaded.  now NULL or p: as sg_evidence_check().
 */
int sg_evidence_check_now(const struct sg_policy *p,
    const struct sg_policy *now, const char *statement, size_t stmt_len,
    const char *const *envelopes, const size_t *lens, size_t n,
    int64_t signed_at, struct sg_statement *ret_stmt, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));

#endif
