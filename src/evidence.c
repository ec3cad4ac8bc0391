/*
 * Approval evidence (see include/sg_evidence.h): does a statement plus the
 * decision envelopes recorded for it prove that the policy allowed the
 * signature?
 *
 * Design: this is the auditor's half of the approval path, written to be
 * run by people who trust neither the server nor its log.  It therefore
 * re-derives everything from the policy file the statement names and never
 * filters: the log only ever records envelopes the server verified, so an
 * envelope that does not parse, is for another statement, is by someone
 * who may not decide, or does not verify is evidence of tampering and
 * fails the whole check instead of being skipped.  The quorum itself is
 * left to sg_policy_evaluate(), the same code the daemon counts with, so
 * that the two cannot disagree about what "2 of A and 1 of B" means.
 * Likewise one envelope is judged by sg_approval_accept(), which is also
 * what the front runs when an officer posts a decision: the front and the
 * signer process cannot drift apart on what an approval is (they once
 * did: one compared the statement in constant time, the other not).
 *
 * Releases and grants go through the same check: the statement's kind
 * picks the key's terms (sg_policy_key_for_kind(): a grant's are its
 * require-grant terms), for the quorum and for every envelope alike, and
 * the key must allow the kind and its count under the statement's policy.
 * sg_approval_accept() finds the kind in the statement itself, so a caller
 * that hands it the policy's own key record still gets the kind's terms.
 * What one artifact under such a statement must satisfy is
 * sg_artifact_allowed(), one rule for the signer and the verifier.
 *
 * Each failure names its link ("statement:", "policy:", "approval 2:", ...)
 * so that a failed verification says what was broken, not only that
 * something was.  Strings taken from the evidence are escaped before they
 * reach a message.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_policy.h"
#include "sg_util.h"
#include "sg_webauthn.h"

#define ESC_NAME (4 * SG_NAME_SIZE + 1)

static void
esc(const char *s, char out[ESC_NAME])
{
	sg_escape(s, strnlen(s, SG_NAME_SIZE), out, ESC_NAME);
}

/* The policy the statement names must be exactly the one given. */
static int
check_policy(const struct sg_policy *p, const struct sg_statement *st,
    char *errbuf, size_t errlen)
{
	if (strcmp(st->policy_name, sg_policy_name(p)) == 0 &&
	    st->policy_version == sg_policy_version(p) &&
	    strcmp(st->policy_sha256, sg_policy_sha256_hex(p)) == 0)
		return 0;
	return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "policy: the "
	    "signature was approved under policy %s@%llu sha256:%s, not the "
	    "given file (%s@%llu sha256:%s)", st->policy_name,
	    st->policy_version, st->policy_sha256, sg_policy_name(p),
	    (unsigned long long)sg_policy_version(p), sg_policy_sha256_hex(p));
}

static int approval_fault(struct sg_approval_fault *f, const char *field,
    int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
approval_fault(struct sg_approval_fault *f, const char *field, int r,
    const char *fmt, ...)
{
	va_list ap;

	f->field = field;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	return r;
}

/* The kind of a statement, from its first line (the statement is the
 * caller's, checked elsewhere; anything else is a single request's). */
static enum sg_kind
statement_kind(const char *statement, size_t len)
{
	static const char release[] = "signgate release approval v1\n";
	static const char grant[] = "signgate grant approval v1\n";

	if (len >= sizeof(release) - 1 &&
	    memcmp(statement, release, sizeof(release) - 1) == 0)
		return SG_KIND_RELEASE;
	if (len >= sizeof(grant) - 1 &&
	    memcmp(statement, grant, sizeof(grant) - 1) == 0)
		return SG_KIND_GRANT;
	return SG_KIND_REQUEST;
}

/*
 * A release's or a grant's officers are judged by the kind's terms,
 * whichever view of the key the caller holds: k itself when it is in the
 * statement's view, else the kind's copy in *buf.  NULL (f filled in) for
 * a copy made for another kind.
 */
static const struct sg_policy_key *
kind_view(const struct sg_policy_key *k, const char *statement, size_t len,
    struct sg_policy_key *buf, struct sg_approval_fault *f)
{
	enum sg_kind kind = statement_kind(statement, len);

	if (kind == k->view)
		return k;
	if (k->view != SG_KIND_REQUEST) {
		approval_fault(f, "payload", SG_ERR_INVALID, "the key's terms "
		    "are for a %s, the statement is a %s's",
		    sg_kind_str(k->view), sg_kind_str(kind));
		return NULL;
	}
	sg_policy_key_for_kind(k, kind, buf);
	return buf;
}

enum sg_sig_scheme
sg_approval_scheme(enum sg_key_alg alg)
{
	switch (alg) {
	case SG_ALG_ECDSA_P256:
	case SG_ALG_ECDSA_P384:
		return SG_SIG_ECDSA;
	case SG_ALG_RSA:
		return SG_SIG_RSA_PKCS1;
	default:
		return SG_SIG_NONE;
	}
}

/* The envelope member a failed assertion check names (the prefix of
 * sg_webauthn_verify()'s why). */
static const char *
webauthn_field(const char *why)
{
	if (strncmp(why, "clientDataJSON", 14) == 0)
		return "signatures[0].webauthn.client_data_json";
	if (strncmp(why, "authenticatorData", 17) == 0)
		return "signatures[0].webauthn.authenticator_data";
	if (strncmp(why, "credentialId", 12) == 0)
		return "signatures[0].webauthn.credential_id";
	if (strncmp(why, "sig:", 4) == 0)
		return "signatures[0].sig";
	return "signatures[0].webauthn";
}

/* The officer's credential the envelope's assertion names, or NULL (f
 * filled in). */
static const struct sg_webauthn_cred *
envelope_cred(const struct sg_principal *officer,
    const struct sg_envelope *env, const char *name,
    struct sg_approval_fault *f)
{
	const struct sg_webauthn_cred *cred;
	char *id = NULL;

	if ((cred = sg_principal_webauthn(officer, env->webauthn.cred_id,
	    env->webauthn.cred_id_len)) != NULL)
		return cred;
	if (sg_b64url_encode(env->webauthn.cred_id,
	    env->webauthn.cred_id_len > 48 ? 48 : env->webauthn.cred_id_len,
	    &id) != 0)
		id = NULL;
	approval_fault(f, "signatures[0].webauthn.credential_id",
	    SG_ERR_FORBIDDEN, "credential %s%s is not registered for %s in "
	    "the policy", id != NULL ? id : "?",
	    env->webauthn.cred_id_len > 48 ? "..." : "", name);
	free(id);
	return NULL;
}

/* The signature over hash (SHA-256 of the PAE): by the approval key, or
 * an assertion of cred over the challenge hash. */
static int
check_signature(const struct sg_principal *officer,
    const struct sg_webauthn_cred *cred, const struct sg_envelope *env,
    const uint8_t hash[32], const char *name, struct sg_approval_fault *f)
{
	struct sg_webauthn_assertion a;
	char why[400];

	if (cred == NULL) {
		if (sg_verify(officer->approval_key,
		    sg_approval_scheme(sg_pubkey_alg(officer->approval_key)),
		    SG_DIGEST_SHA256, hash, 32, env->sig, env->sig_len) != 0)
			return approval_fault(f, "signatures[0].sig",
			    SG_ERR_VERIFY, "the signature does not verify "
			    "under %s's approval key in the policy", name);
		return 0;
	}
	memset(&a, 0, sizeof(a));
	a.cred_id = env->webauthn.cred_id;
	a.cred_id_len = env->webauthn.cred_id_len;
	a.authdata = env->webauthn.authdata;
	a.authdata_len = env->webauthn.authdata_len;
	a.client_data = env->webauthn.client_data;
	a.client_data_len = env->webauthn.client_data_len;
	a.sig = env->sig;
	a.sig_len = env->sig_len;
	if (sg_webauthn_verify(cred, hash, 32, &a, why, sizeof(why)) != 0)
		return approval_fault(f, webauthn_field(why), SG_ERR_VERIFY,
		    "the security "
		    "key's assertion does not verify under %s's credential: %s",
		    name, why);
	return 0;
}

int
sg_approval_accept(const struct sg_policy *p, const struct sg_policy_key *k,
    const struct sg_policy *now, const char *requester,
    const char *statement, size_t stmt_len, const struct sg_envelope *env,
    const struct sg_principal **ret_officer, int *ret_approve,
    struct sg_approval_fault *f)
{
	static const char keyid[] = "signatures[0].keyid";
	const struct sg_principal *officer;
	const struct sg_webauthn_cred *cred = NULL;
	struct sg_policy_key view;
	uint8_t *pae = NULL, hash[32];
	size_t pae_len = 0, body_stmt_len = 0;
	char name[ESC_NAME];
	int approve = 0, r;

	if (p == NULL || k == NULL || requester == NULL || statement == NULL ||
	    env == NULL || ret_officer == NULL || ret_approve == NULL ||
	    f == NULL)
		return SG_ERR_INVALID;
	memset(f, 0, sizeof(*f));
	if ((k = kind_view(k, statement, stmt_len, &view, f)) == NULL)
		return SG_ERR_INVALID;
	esc(env->keyid, name);
	if (strcmp(env->payload_type, SG_DSSE_TYPE) != 0)
		return approval_fault(f, "payloadType", SG_ERR_VERIFY,
		    "payloadType must be %s", SG_DSSE_TYPE);
	if (sg_body_split(env->payload, env->payload_len, &body_stmt_len,
	    &approve) != 0)
		return approval_fault(f, "payload", SG_ERR_VERIFY, "the "
		    "payload is not a statement followed by one decision line "
		    "(and, after a reject, at most one reason line of 1 to %d "
		    "bytes of text)", SG_REJECT_REASON_MAX);
	if (body_stmt_len != stmt_len ||
	    CRYPTO_memcmp(env->payload, statement, stmt_len) != 0)
		return approval_fault(f, "payload", SG_ERR_VERIFY, "it "
		    "approves another statement, not this request's");
	if ((officer = sg_policy_principal(p, env->keyid)) == NULL)
		return approval_fault(f, keyid, SG_ERR_FORBIDDEN, "keyid %s is "
		    "not a principal of the policy", name);
	if (!(officer->roles & SG_ROLE_OFFICER) ||
	    (officer->approval_key == NULL && officer->nwebauthn == 0))
		return approval_fault(f, keyid, SG_ERR_FORBIDDEN, "%s is not an "
		    "officer", name);
	if (strcmp(officer->name, requester) == 0)
		return approval_fault(f, keyid, SG_ERR_FORBIDDEN, "%s requested "
		    "this signature and may not approve it", name);
	if (!sg_policy_may_approve(p, k, requester, officer->name))
		return approval_fault(f, keyid, SG_ERR_FORBIDDEN, "%s is not an "
		    "approver for key %s", name, k->name);
	if (env->has_webauthn) {
		if ((cred = envelope_cred(officer, env, name, f)) == NULL)
			return SG_ERR_FORBIDDEN;
	} else if (officer->approval_key == NULL)
		return approval_fault(f, "signatures[0]", SG_ERR_FORBIDDEN,
		    "%s has no approval key in the policy, only WebAuthn "
		    "credentials: the signature must carry a \"webauthn\" "
		    "assertion", name);
	/* Eligible under the request's policy is not enough: the policy in
	 * force must allow this officer too (a reload may have revoked it),
	 * with the same approval key or credential. */
	if (now != NULL && now != p && !sg_policy_may_approve_now_cred(p, k,
	    now, requester, officer->name, cred != NULL ? cred->id : NULL,
	    cred != NULL ? cred->id_len : 0))
		return approval_fault(f, keyid, SG_ERR_FORBIDDEN, "%s may no "
		    "longer approve key %s: the policy in force (%s@%llu) does "
		    "not make it an approver with the same %s", name,
		    k->name, sg_policy_name(now),
		    (unsigned long long)sg_policy_version(now),
		    cred != NULL ? "WebAuthn credential" : "approval key");
	if ((r = sg_dsse_pae(env->payload_type, env->payload,
	    env->payload_len, &pae, &pae_len)) != 0)
		return approval_fault(f, "payload", r, "%s", sg_strerror(r));
	sg_sha256(pae, pae_len, hash);
	free(pae);
	if ((r = check_signature(officer, cred, env, hash, name, f)) != 0)
		return r;
	*ret_officer = officer;
	*ret_approve = approve;
	return 0;
}

/*
 * One recorded envelope: it parses, and sg_approval_accept() takes it
 * (under p, and under `now` when given: the policy in force).  Failures
 * read "approval N: <who> ..." when the signer may not decide,
 * "approval N (<who>): ..." when the envelope itself is wrong.
 */
static int
check_envelope(const struct sg_policy *p, const struct sg_policy_key *k,
    const struct sg_policy *now, const struct sg_statement *st,
    const char *statement, size_t stmt_len, const char *json, size_t len,
    size_t num, const struct sg_principal **ret_officer, int *ret_approve,
    char *errbuf, size_t errlen)
{
	struct sg_envelope env;
	struct sg_approval_fault f;
	char why[256], name[ESC_NAME];
	int r;

	memset(&env, 0, sizeof(env));
	if (json == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "approval "
		    "%zu: missing", num);
	}
	if (sg_envelope_parse(json, len, &env, why, sizeof(why)) != 0) {
		sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "approval %zu: not a "
		    "valid envelope: %s", num, why);
		sg_envelope_clear(&env);
		return SG_ERR_VERIFY;
	}
	if ((r = sg_approval_accept(p, k, now, st->requester, statement,
	    stmt_len, &env, ret_officer, ret_approve, &f)) != 0) {
		esc(env.keyid, name);
		if (f.field != NULL && strcmp(f.field,
		    "signatures[0].keyid") == 0)
			sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "approval "
			    "%zu: %s", num, f.why);
		else
			sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "approval "
			    "%zu (%s): %s", num, name, f.why);
		r = SG_ERR_VERIFY;
	}
	sg_envelope_clear(&env);
	return r;
}

/* "1 of 2 security-officers, 1 of 1 release-managers" */
static void
describe_missing(const struct sg_policy_key *k,
    const struct sg_quorum_result *res, char *out, size_t cap)
{
	size_t t, o = 0;
	int n;

	out[0] = '\0';
	for (t = 0; t < res->nterms && t < k->nterms; t++) {
		if (res->missing[t] == 0)
			continue;
		n = snprintf(out + o, cap - o, "%s%u more of %u %s",
		    o > 0 ? ", " : "", res->missing[t], k->terms[t].count,
		    k->terms[t].group);
		if (n < 0 || (size_t)n >= cap - o)
			break;
		o += (size_t)n;
	}
	if (o == 0)
		snprintf(out, cap, "an unsatisfiable rule");
}

int
sg_evidence_check(const struct sg_policy *p, const char *statement,
    size_t stmt_len, const char *const *envelopes, const size_t *lens,
    size_t n, int64_t signed_at, struct sg_statement *ret_stmt,
    char *errbuf, size_t errlen)
{
	return sg_evidence_check_now(p, NULL, statement, stmt_len, envelopes,
	    lens, n, signed_at, ret_stmt, errbuf, errlen);
}

/*
 * A release or a grant: the key allows the kind (allow-releases,
 * allow-grants) and this many artifacts or signatures.
 */
static int
check_kind(const struct sg_policy_key *k, const struct sg_statement *st,
    char *errbuf, size_t errlen)
{
	const char *what, *unit, *kw;
	uint32_t max;

	switch (st->kind) {
	case SG_KIND_REQUEST:
		return 0;
	case SG_KIND_RELEASE:
		max = k->release_max;
		what = "release";
		unit = "artifacts";
		kw = "allow-releases";
		break;
	case SG_KIND_GRANT:
		max = k->grant_max_count;
		what = "grant";
		unit = "signatures";
		kw = "allow-grants";
		break;
	default:
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "statement: "
		    "unknown kind");
	}
	if (max == 0)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "key: key %s "
		    "allows no %ss (no %s)", k->name, what, kw);
	if (st->count > max)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "key: a %s of "
		    "%llu %s, key %s allows at most %u", what,
		    (unsigned long long)st->count, unit, k->name,
		    (unsigned)max);
	return 0;
}

/*
 * The statement itself: it parses, names this policy, a key of it that
 * the requester may request, and had not expired when the signature was
 * made.
 */
static int
check_statement(const struct sg_policy *p, const char *statement,
    size_t stmt_len, int64_t signed_at, struct sg_statement *st,
    const struct sg_policy_key **ret_key, char *errbuf, size_t errlen)
{
	const struct sg_policy_key *k;
	char when[32], until[32];
	int r;

	if (sg_statement_parse(statement, stmt_len, st) != 0) {
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "statement: "
		    "not a valid signgate approval statement");
	}
	if ((r = check_policy(p, st, errbuf, errlen)) != 0)
		return r;
	if ((k = sg_policy_key(p, st->key)) == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "key: %s is "
		    "not a key of policy %s", st->key, sg_policy_name(p));
	}
	if (!sg_policy_may_request(p, k, st->requester)) {
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "requester: "
		    "%s may not request key %s", st->requester, st->key);
	}
	if ((r = check_kind(k, st, errbuf, errlen)) != 0)
		return r;
	if (signed_at >= st->expires) {
		sg_time_rfc3339((time_t)signed_at, when, sizeof(when));
		sg_time_rfc3339((time_t)st->expires, until, sizeof(until));
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "expiry: "
		    "signed at %s, but the request expired at %s", when, until);
	}
	*ret_key = k;
	return 0;
}

/*
 * One decision per envelope, each by a distinct officer; *ret_vetoer is
 * the first officer who rejected, if any.
 */
static int
collect_decisions(const struct sg_policy *p, const struct sg_policy_key *k,
    const struct sg_policy *now, const struct sg_statement *st,
    const char *statement, size_t stmt_len, const char *const *envelopes,
    const size_t *lens, size_t n, struct sg_decision *d,
    const char **ret_vetoer, char *errbuf, size_t errlen)
{
	const struct sg_principal *officer;
	char name[ESC_NAME];
	size_t i, j;
	int approve, r;

	for (i = 0; i < n; i++) {
		officer = NULL;
		approve = 0;
		if ((r = check_envelope(p, k, now, st, statement, stmt_len,
		    envelopes[i], lens[i], i + 1, &officer, &approve, errbuf,
		    errlen)) != 0)
			return r;
		for (j = 0; j < i; j++) {
			if (strcmp(d[j].officer, officer->name) == 0) {
				esc(officer->name, name);
				return sg_err_set(errbuf, errlen, SG_ERR_VERIFY,
				    "approval %zu: %s decided twice (also "
				    "approval %zu)", i + 1, name, j + 1);
			}
		}
		d[i].officer = officer->name;
		d[i].approve = approve;
		if (!approve && *ret_vetoer == NULL)
			*ret_vetoer = officer->name;
	}
	return 0;
}

int
sg_evidence_check_now(const struct sg_policy *p, const struct sg_policy *now,
    const char *statement, size_t stmt_len, const char *const *envelopes,
    const size_t *lens, size_t n, int64_t signed_at,
    struct sg_statement *ret_stmt, char *errbuf, size_t errlen)
{
	struct sg_statement st;
	struct sg_decision d[SG_ENVELOPES_MAX] = { 0 };
	struct sg_quorum_result res;
	struct sg_policy_key view;
	const struct sg_policy_key *k = NULL;
	char name[ESC_NAME], missing[512];
	const char *vetoer = NULL;
	int r;

	sg_err_set(errbuf, errlen, SG_ERR_INVALID, "evidence: invalid "
	    "arguments");
	if (p == NULL || statement == NULL || (n > 0 && (envelopes == NULL ||
	    lens == NULL)))
		return SG_ERR_INVALID;
	if (n > SG_ENVELOPES_MAX) {
		return sg_err_set(errbuf, errlen, SG_ERR_TOO_LARGE,
		    "approvals: more than %d envelopes",
		    SG_ENVELOPES_MAX);
	}
	if ((r = check_statement(p, statement, stmt_len, signed_at, &st, &k,
	    errbuf, errlen)) != 0)
		return r;
	/* The kind's terms decide (a grant's require-grant). */
	sg_policy_key_for_kind(k, st.kind, &view);
	k = &view;
	if ((r = collect_decisions(p, k, now, &st, statement, stmt_len,
	    envelopes, lens, n, d, &vetoer, errbuf, errlen)) != 0)
		return r;

	sg_policy_evaluate(p, k, st.requester, d, n, &res);
	if (res.state == SG_QUORUM_VETOED) {
		esc(vetoer != NULL ? vetoer : "?", name);
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "quorum: "
		    "vetoed: %s rejected and key %s lets one reject stop the "
		    "request", name, k->name);
	}
	if (res.state != SG_QUORUM_MET) {
		describe_missing(k, &res, missing, sizeof(missing));
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "quorum: not "
		    "met for key %s: missing %s", k->name, missing);
	}
	if (ret_stmt != NULL)
		*ret_stmt = st;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	return 0;
}

/* The release rule of sg_artifact_allowed(): the line at position of the
 * manifest the statement names. */
static int
release_member(const struct sg_statement *st, const char *line, size_t len,
    uint64_t position, const uint8_t (*path)[SG_HASH_LEN], size_t npath,
    char *errbuf, size_t errlen)
{
	uint8_t root[SG_HASH_LEN];
	size_t rlen = 0;

	if (npath > SG_MANIFEST_PATH_MAX)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "path: %zu "
		    "hashes, a manifest path has at most %d", npath,
		    SG_MANIFEST_PATH_MAX);
	if (sg_hex_decode(st->manifest_root, strnlen(st->manifest_root,
	    sizeof(st->manifest_root)), root, sizeof(root), &rlen) != 0 ||
	    rlen != sizeof(root))
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "statement: "
		    "the manifest root is not a SHA-256 hash");
	if (position >= st->count)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "position: "
		    "%llu is not in a manifest of %llu artifacts",
		    (unsigned long long)position,
		    (unsigned long long)st->count);
	if (sg_manifest_verify(line, len, position, st->count, root, path,
	    npath) != 0)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "path: the "
		    "line is not at position %llu of the manifest sha256:%s "
		    "(%llu artifacts)", (unsigned long long)position,
		    st->manifest_root, (unsigned long long)st->count);
	return 0;
}

/* The grant rule of sg_artifact_allowed(): within the count, the
 * pattern and the time. */
static int
grant_member(const struct sg_statement *st, const struct sg_artifact_line *a,
    uint64_t position, size_t npath, int64_t at, char *errbuf,
    size_t errlen)
{
	char when[32], until[32];

	if (npath != 0)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "path: a "
		    "grant's signature has no manifest path");
	if (position < 1 || position > st->count)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "position: "
		    "signature %llu of a grant of %llu",
		    (unsigned long long)position,
		    (unsigned long long)st->count);
	if (!sg_pattern_match(st->pattern, a->name))
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "name: %s "
		    "does not match the grant's pattern %s", a->name,
		    st->pattern);
	if (at >= st->expires) {
		sg_time_rfc3339((time_t)at, when, sizeof(when));
		sg_time_rfc3339((time_t)st->expires, until, sizeof(until));
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "expiry: "
		    "signed at %s, but the grant ended at %s", when, until);
	}
	return 0;
}

int
sg_artifact_allowed(const struct sg_statement *st, const char *line,
    size_t len, uint64_t position, const uint8_t (*path)[SG_HASH_LEN],
    size_t npath, int64_t at, struct sg_artifact_line *ret, char *errbuf,
    size_t errlen)
{
	struct sg_artifact_line a;
	enum sg_format f;
	int r;

	sg_err_set(errbuf, errlen, SG_ERR_INVALID, "artifact: invalid "
	    "arguments");
	if (st == NULL || line == NULL || (path == NULL && npath > 0))
		return SG_ERR_INVALID;
	if (st->kind != SG_KIND_RELEASE && st->kind != SG_KIND_GRANT)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "statement: "
		    "not a release or a grant");
	if (sg_artifact_line_parse(line, len, &a) != 0)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "line: not a "
		    "canonical artifact line");
	if (sg_format_parse(st->format, &f) != 0 || a.format != f)
		return sg_err_set(errbuf, errlen, SG_ERR_VERIFY, "format: the "
		    "line's format is %s, the statement's %s",
		    sg_format_str(a.format), st->format);
	if (st->kind == SG_KIND_RELEASE)
		r = release_member(st, line, len, position, path, npath,
		    errbuf, errlen);
	else
		r = grant_member(st, &a, position, npath, at, errbuf, errlen);
	if (r != 0)
		return r;
	if (ret != NULL)
		*ret = a;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	return 0;
}
