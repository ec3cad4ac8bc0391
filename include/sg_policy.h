/*
 * The policy: who may request which key, who approves, how many, and where
 * each key's HSM must stand.  This module is pure: it parses a buffer and
 * answers questions; it does no I/O.  The language is documented in
 * policy/README.md.
 *
 * The policy file is self-contained (officers' approval keys are inline PEM
 * blocks) so that its SHA-256, which goes into every statement and log entry,
 * pins everything an auditor needs to re-check a quorum offline.
 */
#ifndef SG_POLICY_H
#define SG_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sg_crypto.h"
#include "sg_limits.h"
#include "sg_types.h"
#include "sg_webauthn.h"

/* Older names of SG_NAME_SIZE and SG_POLICY_FILE_MAX (sg_limits.h), until
 * no file uses them. */
#define SG_POLICY_NAME_MAX SG_NAME_SIZE
#define SG_POLICY_MAX_SIZE SG_POLICY_FILE_MAX

enum {
	SG_ROLE_REQUESTER = 1 << 0,
	SG_ROLE_OFFICER = 1 << 1,
	SG_ROLE_AUDITOR = 1 << 2,
};

struct sg_policy;

struct sg_principal {
	char name[SG_NAME_SIZE];
	unsigned roles;                 /* SG_ROLE_* bits */
	char client_cn[SG_NAME_SIZE * 4]; /* "" if bound by fingerprint only */
	uint8_t client_sha256[32];      /* SHA-256 of the certificate DER */
	int has_client_sha256;
	EVP_PKEY *approval_key;         /* officers only; NULL otherwise */
	/* WebAuthn credentials (webauthn-key), officers only: an officer
	 * has an approval key, credentials, or both. */
	struct sg_webauthn_cred *webauthn;
	size_t nwebauthn;               /* 0..SG_POLICY_MAX_WEBAUTHN */
};

#define SG_POLICY_MAX_WEBAUTHN 8        /* credentials per principal */

struct sg_term {
	char group[SG_NAME_SIZE];
	unsigned count;
};

#define SG_POLICY_MAX_TERMS 16
#define SG_POLICY_MAX_COUNTRIES 16
#define SG_POLICY_MAX_REQUESTERS 64
#define SG_POLICY_MAX_RETIRED 8

/* A key this name used before a rotation: listed so that old signatures
 * can still be checked, never used to sign. */
struct sg_retired_key {
	char certificate[512];          /* its certificate (chain) PEM path */
	int64_t retired_at;             /* unix seconds */
};

struct sg_policy_key {
	char name[SG_NAME_SIZE];
	char token[SG_TOKEN_LABEL_SIZE];
	char object[SG_NAME_SIZE];      /* CKA_LABEL, or "" */
	uint8_t id[SG_P11_ID_MAX];      /* CKA_ID, if id_len > 0 */
	size_t id_len;
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
	unsigned formats;               /* enum sg_format bits */
	char certificate[512];          /* chain PEM path as written, or "" */
	char requesters[SG_POLICY_MAX_REQUESTERS][SG_NAME_SIZE];
	size_t nrequesters;
	struct sg_term terms[SG_POLICY_MAX_TERMS];
	size_t nterms;                  /* 0: no approval needed */
	int veto;                       /* one reject vetoes */
	uint64_t lifetime;              /* seconds */
	char countries[SG_POLICY_MAX_COUNTRIES][3];
	size_t ncountries;
	struct sg_retired_key retired[SG_POLICY_MAX_RETIRED];
	size_t nretired;
	/* Releases and grants: 0 = not allowed (no allow-releases /
	 * allow-grants line). */
	uint32_t release_max;           /* artifacts in one release */
	uint32_t grant_max_count;       /* signatures in one grant */
	uint64_t grant_max_lifetime;    /* seconds */
	struct sg_term grant_terms[SG_POLICY_MAX_TERMS]; /* require-grant */
	size_t ngrant_terms;
	/* The kind whose terms `terms` holds: SG_KIND_REQUEST (0) for the
	 * policy's own record, the kind of a sg_policy_key_for_kind() copy
	 * otherwise (so that the policy in force is asked in the same view,
	 * sg_policy_may_approve_now()). */
	enum sg_kind view;
};

struct sg_hsm {
	char serial[SG_TOKEN_SERIAL_MAX + 1];
	char manufacturer[SG_TOKEN_MANUFACTURER_MAX + 1]; /* "" = any */
	char model[SG_TOKEN_MODEL_MAX + 1];             /* "" = any */
	char site[SG_NAME_SIZE];
	char country[3];
};

/*
 * The terms that decide an approvable object of this kind on key k: a
 * grant's are the require-grant terms when the key has any, every other
 * object's (and a grant's otherwise) the require terms.  *ret_n is their
 * number (0: no approval needed).
 */
const struct sg_term *sg_policy_key_terms(const struct sg_policy_key *k,
    enum sg_kind kind, size_t *ret_n);
/*
 * k as it decides objects of this kind: a copy whose terms are
 * sg_policy_key_terms(k, kind) and whose view is kind; the quorum
 * evaluator and the approval rules take the copy.  k is a policy's own
 * key, or a copy already in this view (a grant's copy no longer holds
 * the key's require terms).  ret may be k.
 */
void sg_policy_key_for_kind(const struct sg_policy_key *k, enum sg_kind kind,
    struct sg_policy_key *ret);

/* Parses a policy.  On failure *errbuf holds "file:line: reason" and
 * SG_ERR_INVALID is returned.  `filename` is only used in messages. */
int sg_policy_parse(const char *filename, const char *buf, size_t len,
    struct sg_policy **ret, char *errbuf, size_t errlen);
void sg_policy_free(struct sg_policy *p);

/*
 * Checks a policy for a person who is writing one: every problem is passed
 * to report (file, line, message) instead of stopping at the first.  After
 * a statement that fails, parsing goes on with the next one (a block whose
 * opening line fails is skipped to its 'end'); names that point at other
 * blocks are resolved only once every block has parsed, since in a broken
 * file those errors would only echo the others.  Returns 0 (and the policy
 * in *ret, if ret is not NULL) when there was no problem.
 */
typedef void (*sg_policy_report_fn)(void *arg, const char *file, int line,
    const char *msg);
int sg_policy_check(const char *filename, const char *buf, size_t len,
    sg_policy_report_fn report, void *arg, struct sg_policy **ret);

const char *sg_policy_name(const struct sg_policy *p);
uint64_t sg_policy_version(const struct sg_policy *p);
/* Lower-case hex SHA-256 of the exact bytes parsed (64 chars + NUL). */
const char *sg_policy_sha256_hex(const struct sg_policy *p);

/*
 * The policy-change terms: who must approve this policy's successor
 * (`policy-change require <group> <count>`); *ret_n 0 when a new version
 * takes effect on reload without approval.  sg_policy_change_key() gives
 * them as the terms of a key named "policy-change" with no requesters,
 * for sg_policy_evaluate() and sg_approval_accept() (requester "").
 */
const struct sg_term *sg_policy_change_terms(const struct sg_policy *p,
    size_t *ret_n);
void sg_policy_change_key(const struct sg_policy *p,
    struct sg_policy_key *ret);

const struct sg_principal *sg_policy_principal(const struct sg_policy *p,
    const char *name);
/* The principal's WebAuthn credential with this id (the decoded bytes),
 * or NULL. */
const struct sg_webauthn_cred *sg_principal_webauthn(
    const struct sg_principal *principal, const uint8_t *id, size_t len);
/* Maps a verified client certificate to a principal: by SHA-256 of the
 * certificate DER first, then by subject CN. NULL if none. */
const struct sg_principal *sg_policy_principal_by_cert(
    const struct sg_policy *p, const char *subject_cn,
    const uint8_t cert_sha256[32]);

size_t sg_policy_nkeys(const struct sg_policy *p);
const struct sg_policy_key *sg_policy_key_at(const struct sg_policy *p,
    size_t i);
const struct sg_policy_key *sg_policy_key(const struct sg_policy *p,
    const char *name);

size_t sg_policy_nhsms(const struct sg_policy *p);
const struct sg_hsm *sg_policy_hsm_at(const struct sg_policy *p, size_t i);
const struct sg_hsm *sg_policy_hsm(const struct sg_policy *p,
    const char *serial);

/* 1 if the named principal exists, has the requester role and is listed
 * for the key. */
int sg_policy_may_request(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *principal);

/* 1 if the key may be used on a token in this country. */
int sg_policy_country_allowed(const struct sg_policy_key *k,
    const char *country);

/*
 * The inventory rule, one implementation for the front (which keys it
 * offers), the signer process (before every signature) and the offline
 * verifier: the token (as PKCS#11 describes it: label, used in messages
 * only, serial, manufacturer, model) is in the HSM inventory (by serial),
 * reports the
 * manufacturer and model the inventory names (when it names them), and
 * stands in a country key k allows.  0 (and *ret_hsm, if not NULL) or
 * SG_ERR_FORBIDDEN with why saying which part failed.
 * sg_policy_hsm_allowed() is the same for a logged serial, where no token
 * is there to report its make.
 */
int sg_policy_token_allowed(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *label, const char *serial,
    const char *manufacturer, const char *model,
    const struct sg_hsm **ret_hsm, char *why, size_t len);
int sg_policy_hsm_allowed(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *serial,
    const struct sg_hsm **ret_hsm, char *why, size_t len);

struct sg_decision {
	const char *officer;            /* principal name */
	int approve;                    /* 1 approve, 0 reject */
	/* The WebAuthn credential the decision was signed with (its id),
	 * or NULL for the approval key. */
	const uint8_t *cred_id;
	size_t cred_id_len;
};

enum sg_quorum {
	SG_QUORUM_PENDING = 0,
	SG_QUORUM_MET,
	SG_QUORUM_VETOED,
};

struct sg_quorum_result {
	enum sg_quorum state;
	/* For each term of the key: how many more distinct officers are
	 * still needed (0 when the term holds) in the best assignment. */
	unsigned missing[SG_POLICY_MAX_TERMS];
	size_t nterms;
};

/*
 * Evaluates the decisions recorded for a request of `requester` on key k.
 * The always-rules hold whatever the file says: a decision by the
 * requester, by a principal without the officer role, or by an unknown
 * name does not count; an officer counts once (a later duplicate is
 * ignored), and one officer fills at most one term (terms are matched to
 * distinct officers, so "2 of A and 1 of B" always needs three people).
 * With k->veto, one counted reject gives SG_QUORUM_VETOED.
 */
void sg_policy_evaluate(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *requester,
    const struct sg_decision *d, size_t nd, struct sg_quorum_result *ret);

/* 1 if this principal may approve requests of `requester` on key k:
 * an officer, not the requester, member of a group named in k's terms. */
int sg_policy_may_approve(const struct sg_policy *p,
    const struct sg_policy_key *k, const char *requester,
    const char *officer);

/*
 * The rule for a request made under an earlier policy: a decision counts
 * only if its principal may approve under the request's policy p (key k)
 * *and* under the policy in force `now` (the key of the same name, taken
 * in k's view (sg_policy_key_for_kind()), the same approval key).  now NULL
 * or equal to p: p alone decides.
 */
int sg_policy_may_approve_now(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const char *officer);
/*
 * The same for a decision signed with the officer's WebAuthn credential
 * cred_id (the decoded id): under `now` the officer must still have that
 * credential, with the same public key, RP ID and origin (and, if it
 * now requires user verification, it required it under p too: the
 * assertion was checked under p's terms), instead of the same approval
 * key.  cred_id NULL: sg_policy_may_approve_now().
 */
int sg_policy_may_approve_now_cred(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const char *officer, const uint8_t *cred_id,
    size_t cred_id_len);
/* 1 if the officer may approve under p and now with any of its means
 * (its approval key or one of its credentials, each as above): who may
 * act on a request in other ways (cancel it) without signing. */
int sg_policy_may_approve_now_any(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const char *officer);

/* sg_policy_evaluate() over the decisions that pass
 * sg_policy_may_approve_now_cred() (with each decision's cred_id);
 * ret_counted (nd entries, or NULL) says
 * which ones did.  A decision that fails it does not count at all, not
 * even as a veto. */
void sg_policy_evaluate_now(const struct sg_policy *p,
    const struct sg_policy_key *k, const struct sg_policy *now,
    const char *requester, const struct sg_decision *d, size_t nd,
    struct sg_quorum_result *ret, uint8_t *ret_counted);

#endif
