/*
 * The signer's checks: what the signer process does with each request
 * record, whoever sent it.  This is the security core a reviewer reads:
 * the front is not trusted, and nothing is signed unless every check here
 * holds.
 *
 * Run by: the signer process's workers (src/signer_serve.c), many records
 * at once, through sg_signer_child_serve_msg(); the fuzz harness and the
 * tests call the same function over keys held in memory
 * (sg_signer_child.h).  It may call: the wire codec
 * (sg_signer_wire.h), the signer's policy and keys (src/signer_policy.c,
 * through src/signer_proc_int.h), the core's operations, the evidence
 * and CMS modules, and the records (sg_sigrec.h, sg_witness.h).  It
 * opens no socket, forks nothing and changes no user.
 *
 * Messages: one reply per request, carrying the request's tag; the
 * signer's channel threads hand requests to a pool of workers
 * (src/signer_serve.c), so requests from any channel are answered in
 * parallel and in any order, except CHECKPOINT, one at a time.  Their
 * formats and their table live in src/signer_wire.c (sg_signer_wire.h):
 * SIGN, CHECKPOINT, PROBE, KEYINFO and RELOAD go to the signer, REPLY
 * comes back (the first REPLY on a channel is the signer's READY).
 * SIGN_BATCH (a release's or grant's artifacts) is answered with a
 * BATCH_REPLY by src/signer_batch.c, which reuses the checks here; SIGN
 * refuses a release's or grant's statement (those approve artifacts item
 * by item, never a bare digest).  The
 * table fixes each type's exact length (for SIGN, the fixed part plus the
 * declared statement and envelope lengths); sg_wire_decode_request() is
 * the one gate every record passes before a handler runs, and anything it
 * refuses is answered with SG_ERR_INVALID and its reason, the connection
 * staying usable.  The front builds requests with the same module's
 * encoders and checks every reply with sg_wire_decode_reply(); a reply
 * out of protocol marks the signer gone.
 *
 * A request goes: decode, then (SIGN) the key, the evidence, the
 * statement's binding to this request, the policy's rules, and at most
 * one signature (below).  sg_signer_child_serve_msg() does all of it for
 * one record and returns the reply; the channel threads only move records.
 * The keys are reached through a core of operations (sg_signer_child.h):
 * the PKCS#11 signer in the daemon, keys in memory in the fuzz harness.
 *
 * What the signer checks before signing a request (the front is not
 * trusted): the statement parses, names a policy the signer itself has
 * loaded, this key (by name and SPKI digest), this digest and this format;
 * every envelope verifies under the policy's officer keys and is by an
 * officer who may still approve under the newest policy loaded (so a
 * revoked officer never counts, whatever the front sends); the quorum
 * holds; the statement has not expired; formats and the HSM inventory
 * allow it under both policies.  The probe signs a fixed digest and returns
 * no signature.
 *
 * One signature per request and format (src/sigrec.c): once the evidence
 * holds, the signer looks the statement's request id up in its own record.
 * Recorded for this statement: the recorded bytes are returned, without
 * an HSM call.  Recorded for another statement: refused.  Not recorded:
 * it signs, verifies, commits the record to disk, and only then replies.
 *
 * Checkpoints: the front sends a tree (size, root) and a consistency proof
 * from the tree the signer signed last, never text.  The signer checks the
 * proof against its own record (sg_witness: a fork or a rollback is
 * refused), records the new tree durably, and only then formats the
 * checkpoint text from the origin it was started with and signs it.  Every
 * reply to a CHECKPOINT carries the record, so the front learns where its
 * next proof must start.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_evidence.h"
#include "sg_policy.h"
#include "sg_signer_child.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_sigrec.h"
#include "sg_util.h"
#include "sg_witness.h"
#include "signer_proc_int.h"

#define PROBE_TEXT "signgate readiness probe"

struct cms_ctx {
	struct sg_signer_child *c;
	const char *key;
};

/* The CMS signs the digest of its signed attributes, which the signer
 * built itself around the approved artifact digest. */
static int
cms_sign_cb(void *arg, enum sg_digest_alg alg, const uint8_t *digest,
    size_t len, uint8_t *sig, size_t cap, size_t *ret_len)
{
	struct cms_ctx *cc = arg;
	struct sg_sign_msg m;
	struct sg_sign_reply *rep;
	int r;

	if (len > sizeof(m.data))
		return SG_ERR_INVALID;
	if ((rep = calloc(1, sizeof(*rep))) == NULL)
		return SG_ERR_NOMEM;
	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "%s", cc->key);
	m.digest_alg = alg;
	memcpy(m.data, digest, len);
	m.data_len = len;
	cc->c->ops->sign(cc->c->core, &m, rep);
	r = rep->status;
	if (r == 0 && rep->sig_len <= cap) {
		memcpy(sig, rep->sig, rep->sig_len);
		*ret_len = rep->sig_len;
	} else if (r == 0)
		r = SG_ERR_BUFFER;
	explicit_bzero(rep, sizeof(*rep));
	free(rep);
	return r;
}

/*
 * The evidence, under the policy the statement names (one this process
 * read itself), and every approval also under the newest policy: an
 * officer revoked by a reload no longer counts, whatever the front sends.
 */
int
sp_check_evidence(struct sg_signer_child *c, struct sign_job *j, char *err,
    size_t errlen)
{
	const struct sg_wire_sign_req *req = j->req;
	size_t i;
	int r = SG_ERR_VERIFY;

	if (sg_statement_parse(req->statement, req->statement_len,
	    &j->st) != 0) {
		snprintf(err, errlen, "statement: not a valid signgate "
		    "approval statement");
		return SG_ERR_VERIFY;
	}
	pthread_mutex_lock(&c->lock);
	j->now = c->policies[0];
	for (i = 0; j->p == NULL && i < c->npolicies; i++)
		if (strcmp(sg_policy_sha256_hex(c->policies[i]),
		    j->st.policy_sha256) == 0)
			j->p = c->policies[i];
	if (j->p != NULL)
		r = sg_evidence_check_now(j->p, j->now, req->statement,
		    req->statement_len, req->envelopes, req->envelope_lens,
		    req->nenvelopes, (int64_t)time(NULL), &j->st, err, errlen);
	else
		snprintf(err, errlen, "policy: the statement names policy "
		    "%.63s@%llu sha256:%.64s, which this signer has not "
		    "loaded", j->st.policy_name,
		    (unsigned long long)j->st.policy_version,
		    j->st.policy_sha256);
	j->pk = j->p != NULL ? sg_policy_key(j->p, req->msg.key) : NULL;
	j->nk = sg_policy_key(j->now, req->msg.key);
	if (r == 0 && j->ck->chain_pem != NULL &&
	    (j->chain = malloc(j->ck->chain_len)) != NULL) {
		memcpy(j->chain, j->ck->chain_pem, j->ck->chain_len);
		j->chain_len = j->ck->chain_len;
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

int
sp_check_key(const struct sign_job *j, char *err, size_t errlen)
{
	const char *key = j->req->msg.key;
	enum sg_format format;

	if (j->nk == NULL) {
		snprintf(err, errlen, "key '%s' is not in the policy in force",
		    key);
		return SG_ERR_VERIFY;
	}
	if (j->pk == NULL || strcmp(j->st.key, key) != 0) {
		snprintf(err, errlen, "the statement is for key '%s', not "
		    "'%s'", j->st.key, key);
		return SG_ERR_VERIFY;
	}
	if (strcmp(j->st.spki_sha256, j->ck->spki_hex) != 0) {
		snprintf(err, errlen, "the statement names key sha256:%s; "
		    "'%s' is sha256:%s", j->st.spki_sha256, key,
		    j->ck->spki_hex);
		return SG_ERR_VERIFY;
	}
	if (sg_format_parse(j->st.format, &format) != 0 ||
	    format != j->req->format) {
		snprintf(err, errlen, "the format is not the one the statement "
		    "names");
		return SG_ERR_VERIFY;
	}
	return 0;
}

/* The request is the one the statement describes: a single request's,
 * key (by name and SPKI digest), digest and format; and the key is still
 * in force. */
static int
check_binding(const struct sign_job *j, char *err, size_t errlen)
{
	const struct sg_sign_msg *m = &j->req->msg;
	char hex[SG_DIGEST_HEX_SIZE];
	int r;

	if (j->st.kind != SG_KIND_REQUEST) {
		/* A release or grant is signed item by item (SIGN_BATCH). */
		snprintf(err, errlen, "statement: a %s statement does not "
		    "approve a single signature", sg_kind_str(j->st.kind));
		return SG_ERR_VERIFY;
	}
	if ((r = sp_check_key(j, err, errlen)) != 0)
		return r;
	sg_hex_encode(m->data, m->data_len, hex);
	if (sg_digest_from_name(j->st.digest_alg) != m->digest_alg ||
	    strcmp(j->st.digest_hex, hex) != 0) {
		snprintf(err, errlen, "the digest is not the one the statement "
		    "names");
		return SG_ERR_VERIFY;
	}
	return 0;
}

/* Policy p's rules for key pk: the format, and the HSM inventory and
 * countries for the key's token. */
static int
where_allowed(struct sg_signer_child *c, const struct sg_policy *p,
    const struct sg_policy_key *pk, const char *key, enum sg_format format,
    char *err, size_t errlen)
{
	struct sg_token_info ti;
	char why[SG_SIGNER_ERR_MAX - 64];

	if (!(pk->formats & format)) {
		snprintf(err, errlen, "key '%s' does not allow format %s "
		    "under policy %s@%llu", key, sg_format_str(format),
		    sg_policy_name(p),
		    (unsigned long long)sg_policy_version(p));
		return SG_ERR_FORBIDDEN;
	}
	if (sp_key_public(c, key, NULL, NULL, &ti) != 0) {
		snprintf(err, errlen, "no token information for key '%s'",
		    key);
		return SG_ERR_FORBIDDEN;
	}
	/* The inventory rule the front applies too (sg_policy.h). */
	if (sg_policy_token_allowed(p, pk, ti.label, ti.serial,
	    ti.manufacturer, ti.model, NULL, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s under policy %s@%llu", why,
		    sg_policy_name(p),
		    (unsigned long long)sg_policy_version(p));
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

/* The rules on formats and where the HSM stands hold here too, whatever
 * the front decided: under the request's policy and the one in force. */
int
sp_check_rules(struct sg_signer_child *c, const struct sign_job *j, char *err,
    size_t errlen)
{
	const char *key = j->req->msg.key;
	enum sg_format format = j->req->format;
	int r;

	if ((r = where_allowed(c, j->p, j->pk, key, format, err,
	    errlen)) != 0)
		return r;
	return where_allowed(c, j->now, j->nk, key, format, err, errlen);
}

/* The approved digest m as CMS: out->sig is the signature inside. */
static int
sign_cms(struct sg_signer_child *c, const struct sign_job *j,
    const struct sg_sign_msg *m, struct sg_batch_result *out, char *err,
    size_t errlen)
{
	struct cms_ctx cc = { c, m->key };
	uint8_t *cms = NULL, *sv = NULL;
	size_t cms_len = 0, svlen = 0;
	EVP_PKEY *pub = NULL;
	enum sg_key_alg alg;
	int r;

	if (j->chain == NULL) {
		snprintf(err, errlen, "key '%s' has no certificate for CMS",
		    m->key);
		return SG_ERR_INVALID;
	}
	if ((r = sp_key_public(c, m->key, &pub, &alg, NULL)) != 0 ||
	    (r = sg_cms_build(j->chain, j->chain_len, pub, j->pk->scheme,
	    m->digest_alg, m->data, m->data_len, time(NULL), cms_sign_cb,
	    &cc, &cms, &cms_len)) != 0) {
		snprintf(err, errlen, "CMS: %s", sg_strerror(r));
		free(cms);
		return r;
	}
	if (cms_len > SG_SIGNER_MAX_CMS)
		r = SG_ERR_TOO_LARGE;
	else if ((r = sg_cms_signature_value(cms, cms_len, &sv,
	    &svlen)) == 0 && svlen > sizeof(out->sig))
		r = SG_ERR_BUFFER;
	if (r != 0) {
		free(sv);
		free(cms);
		return r;
	}
	memcpy(out->sig, sv, svlen);
	out->sig_len = svlen;
	free(sv);
	out->cms = cms;
	out->cms_len = cms_len;
	return 0;
}

int
sp_sign_taken(const struct sg_sign_reply *sr, struct sg_batch_result *out,
    char *err, size_t errlen)
{
	int r;

	if ((r = sr->status) != 0)
		snprintf(err, errlen, "HSM: %s", sg_strerror(r));
	else if (sr->sig_len == 0 || sr->sig_len > sizeof(out->sig))
		r = SG_ERR_HSM;
	else {
		memcpy(out->sig, sr->sig, sr->sig_len);
		out->sig_len = sr->sig_len;
	}
	return r;
}

int
sp_sign_digest(struct sg_signer_child *c, const struct sign_job *j,
    const struct sg_sign_msg *msg, enum sg_format format,
    struct sg_batch_result *out, char *err, size_t errlen)
{
	struct sg_sign_msg m;
	struct sg_sign_reply *sr;
	int r;

	if (format == SG_FORMAT_CMS)
		return sign_cms(c, j, msg, out, err, errlen);
	if ((sr = calloc(1, sizeof(*sr))) == NULL)
		return SG_ERR_NOMEM;
	m = *msg;
	if (j->pk->scheme == SG_SIG_EDDSA)
		m.digest_alg = SG_DIGEST_NONE;
	c->ops->sign(c->core, &m, sr);
	r = sp_sign_taken(sr, out, err, errlen);
	explicit_bzero(sr, sizeof(*sr));
	free(sr);
	return r;
}

/* Signs the approved digest (as CMS when asked): the reply's signature,
 * and *ret_cms for CMS. */
static int
sign_fresh(struct sg_signer_child *c, const struct sign_job *j,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	struct sg_batch_result *out;
	int r;

	if ((out = calloc(1, sizeof(*out))) == NULL)
		return SG_ERR_NOMEM;
	r = sp_sign_digest(c, j, &j->req->msg, j->req->format, out, rep->err,
	    sizeof(rep->err));
	if (r == 0) {
		memcpy(rep->sig, out->sig, out->sig_len);
		rep->sig_len = (uint32_t)out->sig_len;
		*ret_cms = out->cms;
		*ret_cms_len = out->cms_len;
		out->cms = NULL;
	}
	sg_batch_results_clear(out, 1);
	free(out);
	return r;
}

/*
 * The recorded answer to a request signed before: checked against what
 * is asked now (the statement already matched, and it binds the key, the
 * digest and the format) and against the key, so that a damaged record
 * never goes out.
 */
int
sp_record_ok(struct sg_signer_child *c, const struct sign_job *j,
    const struct sg_sigrec_entry *re, const struct sg_sign_msg *m,
    enum sg_format format)
{
	char hex[SG_DIGEST_HEX_SIZE];
	EVP_PKEY *pub = NULL;
	uint8_t *sv = NULL;
	size_t svlen = 0;
	int ok;

	sg_hex_encode(m->data, m->data_len, hex);
	ok = strcmp(re->key, m->key) == 0 &&
	    strcmp(re->digest_alg, sg_digest_name(m->digest_alg)) == 0 &&
	    strcmp(re->digest_hex, hex) == 0 && re->format == format &&
	    re->sig_len > 0 && re->sig_len <= SG_MAX_SIG &&
	    sp_key_public(c, m->key, &pub, NULL, NULL) == 0;
	if (ok && format == SG_FORMAT_CMS)
		ok = re->cms != NULL && re->cms_len <= SG_SIGNER_MAX_CMS &&
		    sg_cms_signature_value(re->cms, re->cms_len, &sv,
		    &svlen) == 0 && svlen == re->sig_len &&
		    memcmp(sv, re->sig, svlen) == 0;
	else if (ok)
		ok = re->cms == NULL && sg_verify(pub, j->pk->scheme,
		    j->pk->scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE :
		    m->digest_alg, m->data, m->data_len, re->sig,
		    re->sig_len) == 0;
	free(sv);
	return ok;
}

static int
replay(struct sg_signer_child *c, const struct sign_job *j,
    struct sg_sigrec_entry *re, struct sg_wire_reply *rep,
    uint8_t **ret_cms, size_t *ret_cms_len)
{
	char when[32];
	int ok;

	/* The statement already matched, and it binds the digest. */
	ok = strcmp(re->digest_alg, j->st.digest_alg) == 0 &&
	    strcmp(re->digest_hex, j->st.digest_hex) == 0 &&
	    sp_record_ok(c, j, re, &j->req->msg, j->req->format);
	if (!ok) {
		sg_log_error("signer: request %s: the recorded %s signature "
		    "does not match the request or the key; refused",
		    re->request, sg_format_str(re->format));
		snprintf(rep->err, sizeof(rep->err), "the signature recorded "
		    "for request %s does not check", re->request);
		return SG_ERR_INTERNAL;
	}
	rep->err[0] = '\0';
	memcpy(rep->sig, re->sig, re->sig_len);
	rep->sig_len = (uint32_t)re->sig_len;
	*ret_cms = re->cms;
	*ret_cms_len = re->cms_len;
	re->cms = NULL;
	re->cms_len = 0;
	sg_time_rfc3339((time_t)re->signed_at, when, sizeof(when));
	sg_log_info("signer: request %s: the %s signature made at %s "
	    "returned again (no new signature)", re->request,
	    sg_format_str(re->format),
	    when);
	return 0;
}

/* Signs a request the record does not hold, and releases the signature
 * only once it is recorded on disk. */
static int
sign_and_record(struct sg_signer_child *c, const struct sign_job *j,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	const struct sg_wire_sign_req *req = j->req;
	struct sg_sigrec_entry re;
	int r;

	if ((r = sign_fresh(c, j, rep, ret_cms, ret_cms_len)) != 0)
		return r;
	memset(&re, 0, sizeof(re));
	snprintf(re.request, sizeof(re.request), "%s", j->st.request);
	re.format = req->format;
	snprintf(re.statement_sha256, sizeof(re.statement_sha256), "%s",
	    j->ssha_hex);
	snprintf(re.key, sizeof(re.key), "%s", req->msg.key);
	snprintf(re.digest_alg, sizeof(re.digest_alg), "%s",
	    j->st.digest_alg);
	snprintf(re.digest_hex, sizeof(re.digest_hex), "%s",
	    j->st.digest_hex);
	memcpy(re.sig, rep->sig, rep->sig_len);
	re.sig_len = rep->sig_len;
	re.cms = *ret_cms;
	re.cms_len = *ret_cms_len;
	re.signed_at = (int64_t)time(NULL);
	r = sg_sigrec_put(c->rec, &re, req->statement, req->statement_len);
	re.cms = NULL;                 /* still the caller's */
	if (r != 0) {
		/* Never released unless recorded. */
		explicit_bzero(rep->sig, sizeof(rep->sig));
		rep->sig_len = 0;
		free(*ret_cms);
		*ret_cms = NULL;
		*ret_cms_len = 0;
		snprintf(rep->err, sizeof(rep->err), "the signature could not "
		    "be recorded, so it was not released");
	}
	/* Recorded meanwhile by another process on the same record: the
	 * recorded one is the answer. */
	if (r == SG_ERR_CONFLICT && sg_sigrec_get(c->rec, j->st.request,
	    req->format, j->ssha_hex, &re) == 0)
		r = replay(c, j, &re, rep, ret_cms, ret_cms_len);
	else if (r != 0)
		r = SG_ERR_UNAVAILABLE;
	sg_sigrec_entry_clear(&re);
	return r;
}

/*
 * At most one signature per request and format: the record decides
 * between returning what was signed before, refusing a second statement
 * for the same request id, and signing.
 */
static int
sign_once(struct sg_signer_child *c, struct sign_job *j,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	const struct sg_wire_sign_req *req = j->req;
	struct sg_sigrec_entry re;
	uint8_t ssha[32];
	int r;

	memset(&re, 0, sizeof(re));
	if ((r = sg_sigrec_claim(c->rec, j->st.request)) != 0) {
		snprintf(rep->err, sizeof(rep->err), "request %s is being "
		    "signed on another channel", j->st.request);
		return r == SG_ERR_TIMEOUT ? SG_ERR_UNAVAILABLE : r;
	}
	sg_sha256(req->statement, req->statement_len, ssha);
	sg_hex_encode(ssha, sizeof(ssha), j->ssha_hex);
	r = sg_sigrec_get(c->rec, j->st.request, req->format, j->ssha_hex,
	    &re);
	if (r == 0)
		r = replay(c, j, &re, rep, ret_cms, ret_cms_len);
	else if (r == SG_ERR_CONFLICT) {
		sg_log_warn("signer: request %s was signed for statement "
		    "sha256:%s; another statement for it refused",
		    j->st.request, re.statement_sha256);
		snprintf(rep->err, sizeof(rep->err), "request %s was signed "
		    "for another statement (sha256:%.16s...): a request is "
		    "signed once", j->st.request, re.statement_sha256);
		r = SG_ERR_FORBIDDEN;
	} else if (r != SG_ERR_NOT_FOUND) {
		snprintf(rep->err, sizeof(rep->err), "the signature record "
		    "cannot be read");
		r = SG_ERR_UNAVAILABLE;
	} else
		r = sign_and_record(c, j, rep, ret_cms, ret_cms_len);
	sg_sigrec_entry_clear(&re);
	sg_sigrec_release(c->rec, j->st.request);
	return r;
}

/*
 * SIGN, decoded: the key, the evidence, the statement's binding to this
 * request, the policy's rules, then at most one signature.  Any refusal
 * leaves no signature and no CMS in the reply.
 */
static void
handle_sign(struct sg_signer_child *c, const struct sg_wire_sign_req *req,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	struct sign_job j;
	int r;

	memset(&j, 0, sizeof(j));
	j.req = req;
	if ((j.ck = sp_child_key(c, req->msg.key)) == NULL) {
		snprintf(rep->err, sizeof(rep->err), "no key '%s'",
		    req->msg.key);
		r = SG_ERR_NOT_FOUND;
	} else if ((r = sp_check_evidence(c, &j, rep->err,
	    sizeof(rep->err))) == 0 &&
	    (r = check_binding(&j, rep->err, sizeof(rep->err))) == 0 &&
	    (r = sp_check_rules(c, &j, rep->err, sizeof(rep->err))) == 0)
		r = sign_once(c, &j, rep, ret_cms, ret_cms_len);
	if (r != 0) {
		explicit_bzero(rep->sig, sizeof(rep->sig));
		rep->sig_len = 0;
		free(*ret_cms);
		*ret_cms = NULL;
		*ret_cms_len = 0;
	}
	rep->status = r;
	free(j.chain);
}

static void
handle_checkpoint(struct sg_signer_child *c,
    const struct sg_witness_request *req, struct sg_wire_reply *rep)
{
	struct sg_witness_record rec;
	int r;

	/* Recorded before anything is signed; refused if not an extension. */
	r = sg_witness_advance(c->witness, req, &rec, rep->err,
	    sizeof(rep->err));
	rep->log_recorded = rec.present != 0;
	rep->log_size = rec.size;
	memcpy(rep->log_root, rec.root, SG_HASH_LEN);
	if (r == SG_ERR_VERIFY)
		sg_log_error("signer: checkpoint refused: %s", rep->err);
	if (r == 0 && (r = c->ops->sign_checkpoint(c->core, c->log_origin,
	    req->size, req->root, rep->sig)) != 0)
		snprintf(rep->err, sizeof(rep->err), "HSM: %s",
		    sg_strerror(r));
	else if (r == 0)
		rep->sig_len = SG_ED25519_SIG;
	rep->status = r;
}

/* A test signature over a fixed digest; no signature goes back. */
static void
handle_probe(struct sg_signer_child *c, const char *name,
    struct sg_wire_reply *rep)
{
	struct sg_sign_msg m;
	struct sg_sign_reply *sr;
	EVP_PKEY *pub;
	enum sg_key_alg alg;

	if (name[0] == '@') {
		rep->status = SG_ERR_NOT_FOUND;
		return;
	}
	if ((sr = calloc(1, sizeof(*sr))) == NULL) {
		rep->status = SG_ERR_NOMEM;
		return;
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "%s", name);
	m.digest_alg = SG_DIGEST_SHA256;
	sg_sha256(PROBE_TEXT, sizeof(PROBE_TEXT) - 1, m.data);
	m.data_len = 32;
	if (sp_key_public(c, name, &pub, &alg, NULL) == 0 &&
	    alg == SG_ALG_ED25519)
		m.digest_alg = SG_DIGEST_NONE;
	c->ops->sign(c->core, &m, sr);
	rep->status = sr->status;
	explicit_bzero(sr, sizeof(*sr));
	free(sr);
}

/* A key's public facts: its algorithm, its token, its public key. */
static void
handle_keyinfo(struct sg_signer_child *c, const char *name,
    struct sg_wire_reply *rep)
{
	EVP_PKEY *pub = NULL;
	enum sg_key_alg alg;
	unsigned char *der = NULL;
	int len, r;

	r = sp_key_public(c, name, &pub, &alg, &rep->token);
	if (r == 0 && ((len = i2d_PUBKEY(pub, &der)) <= 0 ||
	    (size_t)len > sizeof(rep->der)))
		r = SG_ERR_CRYPTO;
	else if (r == 0) {
		memcpy(rep->der, der, (size_t)len);
		rep->der_len = (uint32_t)len;
		rep->alg = (uint32_t)alg;
	}
	OPENSSL_free(der);
	if (r != 0)
		memset(&rep->token, 0, sizeof(rep->token));
	rep->status = r;
}

static void
dispatch(struct sg_signer_child *c, const struct sg_wire_request *req,
    struct sg_wire_reply *rep, uint8_t **ret_cms, size_t *ret_cms_len)
{
	switch (req->type) {
	case SG_WIRE_SIGN:
		handle_sign(c, &req->u.sign, rep, ret_cms, ret_cms_len);
		break;
	case SG_WIRE_CHECKPOINT:
		handle_checkpoint(c, &req->u.checkpoint, rep);
		break;
	case SG_WIRE_RELOAD:
		rep->status = sp_load_policy(c, req->u.reload_sha256,
		    rep->err, sizeof(rep->err));
		break;
	case SG_WIRE_PROBE:
		handle_probe(c, req->u.name, rep);
		break;
	case SG_WIRE_KEYINFO:
		handle_keyinfo(c, req->u.name, rep);
		break;
	default:
		/* sg_wire_decode_request lets no other type through. */
		rep->status = SG_ERR_INTERNAL;
		break;
	}
}

/* One record answered: a REPLY, or a BATCH_REPLY for a SIGN_BATCH. */
static int
serve_one(struct sg_signer_child *c, const uint8_t *msg, size_t len,
    uint8_t **ret, size_t *ret_len)
{
	struct sg_wire_request *req;
	struct sg_wire_reply *rep;
	uint8_t *cms = NULL;
	size_t cms_len = 0;
	int r = SG_ERR_NOMEM;

	if (sp_is_batch(msg, len))
		return sp_serve_batch(c, msg, len, ret, ret_len);
	rep = calloc(1, sizeof(*rep));
	req = calloc(1, sizeof(*req));
	if (rep == NULL || req == NULL)
		goto out;
	rep->status = sg_wire_decode_request(msg, len, req, rep->err,
	    sizeof(rep->err));
	if (rep->status == 0)
		dispatch(c, req, rep, &cms, &cms_len);
	r = sg_wire_encode_reply(rep, cms, cms_len, ret, ret_len);
out:
	if (rep != NULL)
		explicit_bzero(rep, sizeof(*rep));
	free(rep);
	free(req);
	free(cms);
	return r;
}

int
sg_signer_child_serve_msg(struct sg_signer_child *c, const uint8_t *msg,
    size_t len, uint8_t **ret, size_t *ret_len)
{
	int r;

	*ret = NULL;
	*ret_len = 0;
	/* The answer carries the request's tag, whatever it said. */
	if ((r = serve_one(c, msg, len, ret, ret_len)) == 0)
		sg_wire_set_tag(*ret, sg_wire_tag(msg, len));
	return r;
}
