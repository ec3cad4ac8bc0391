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

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_limits.h"
#include "sg_manifest.h"
#include "sg_policy.h"

/* An older name of SG_ENVELOPES_MAX (sg_limits.h), until no file uses
 * it. */
#define SG_EVIDENCE_MAX_ENVELOPES SG_ENVELOPES_MAX

/* Why one approval envelope was not accepted. */
struct sg_approval_fault {
	const char *field;      /* the envelope member at fault: payloadType,
	                         * payload, signatures[0].keyid,
	                         * signatures[0].sig or a member of
	                         * signatures[0].webauthn */
	char why[512];          /* a sentence; names in it are policy names */
};

/*
 * The rule for accepting one parsed approval envelope, the same for the
 * front (when an officer posts it) and for the evidence check below (in
 * the signer process before signing, and in the offline verifier):
 *
 *  - payloadType is SG_DSSE_TYPE;
 *  - the payload is a statement followed by exactly one decision line,
 *    and that statement is byte for byte `statement` (compared in
 *    constant time: the caller's statement is the request's, the
 *    envelope's is attacker-chosen);
 *  - keyid names an officer of p (with an approval key or WebAuthn
 *    credentials), who is not the
 *    requester and may approve on key k in the terms of the statement's
 *    kind (the first line says which; k may be the policy's own record
 *    or a sg_policy_key_for_kind() copy of that kind, a copy of another
 *    kind is refused with SG_ERR_INVALID), and, when now is
 *    neither NULL nor p, still may under now, the policy in force, with
 *    the same approval key or credential
 *    (sg_policy_may_approve_now_cred);
 *  - without a "webauthn" member: the signature over
 *    SHA-256(PAE(payloadType, payload)) verifies under that officer's
 *    approval key, with sg_approval_scheme();
 *  - with one: its credential id is one of the officer's credentials
 *    (else SG_ERR_FORBIDDEN, field signatures[0].webauthn.credential_id)
 *    and sg_webauthn_verify() accepts the assertion with the challenge
 *    SHA-256(PAE(payloadType, payload)) (else SG_ERR_VERIFY, the field
 *    of the failing part).
 *
 * Returns 0 with the officer and the decision (1 approve, 0 reject), or
 * SG_ERR_VERIFY (the envelope is not for this statement, or its signature
 * does not verify), SG_ERR_FORBIDDEN (its signer may not decide on this
 * request) or another error, with f filled in.
 */
int sg_approval_accept(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const char *statement, size_t stmt_len,
    const struct sg_envelope *env, const struct sg_principal **ret_officer,
    int *ret_approve, struct sg_approval_fault *f)
    __attribute__((warn_unused_result));

/* The scheme an officer's approval key of this algorithm signs with:
 * ECDSA for P-256/P-384, RSA PKCS#1 v1.5 for RSA, SG_SIG_NONE for any
 * other (no approval key).  The CLI signs and the front and the evidence
 * check verify with this one answer. */
enum sg_sig_scheme sg_approval_scheme(enum sg_key_alg alg);

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
 * Releases and grants: sg_evidence_check() and _now() accept a statement
 * of any kind.  For a release or a grant they also check that the key
 * allows the kind under p (allow-releases / allow-grants) and that its
 * count is within the key's maximum, and they count the decisions against
 * the kind's terms (sg_policy_key_terms()).
 *
 * sg_artifact_allowed() is the rule one artifact signed under a release or
 * grant statement obeys, the same for the signer (before it signs) and
 * the offline verifier: the line parses (sg_artifact_line_parse) and has
 * the statement's format; for a release, npath <= SG_MANIFEST_PATH_MAX
 * and the line is at `position` of the manifest (root, count) by `path`;
 * for a grant, 1 <= position <= count, the name matches the pattern, `at`
 * is before the statement's expiry and npath is 0.  0 with the parsed line
 * in *ret, or SG_ERR_VERIFY with errbuf saying why.
 */
int sg_artifact_allowed(const struct sg_statement *st, const char *line,
    size_t len, uint64_t position, const uint8_t (*path)[SG_HASH_LEN],
    size_t npath, int64_t at, struct sg_artifact_line *ret, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));

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
