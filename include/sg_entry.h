/*
 * Transparency log entries: small line-oriented ASCII records, one field
 * per line ("name value"), in a fixed order per type, ending in LF.
 * Embedded documents (statement, artifact JSON, DSSE envelopes, keys,
 * signatures) are base64 so that every record has the same simple
 * grammar.  The exact bytes are what the Merkle leaf hashes.
 *
 *   signgate-log-entry v1
 *   type created | decision | signature | expired | failed | cancelled |
 *        approved | artifact-signature | revoked
 *   time <unix seconds>
 *   request <32 hex>
 *   ... type-specific lines, in this order:
 *   created:   statement <b64>       artifact <b64 JSON>
 *   decision:  officer <name>        decision approve|reject
 *              envelope <b64 DSSE envelope JSON>
 *   signature: statement <b64>       approval <b64 envelope> (0 to
 *                                    SG_QUORUM_MAX: those that made the
 *                                    quorum)
 *              public-key <b64 DER SubjectPublicKeyInfo>
 *              algorithm <ecdsa-p256|ecdsa-p384|rsa-pkcs1|rsa-pss|ed25519>
 *              signature <b64>       [cms-sha256 <hex>]
 *              hsm <token serial> <country>
 *   expired:   (nothing more)
 *   failed:    reason <b64 text>
 *   cancelled: by <principal name>   reason <b64 text>
 *   approved:  statement <b64>       approval <b64 envelope> (1 to
 *                                    SG_QUORUM_MAX)
 *   artifact-signature:
 *              approved <index of the approved entry>
 *              position <n>          line <b64 artifact line>
 *              path <b64 hash> (zero or more)
 *              public-key <b64 DER>  algorithm <alg>
 *              signature <b64>       [cms-sha256 <hex>]
 *              hsm <token serial> <country>
 *   revoked:   by <principal name>   reason <b64 text>
 *   policy:    policy <name>@<version> sha256:<hex>
 *              previous sha256:<hex> | previous none
 *              status effective | status pending
 *              text <b64 policy file>
 *   policy-decision:
 *              officer <name>        envelope <b64 DSSE envelope JSON>
 *   policy-effective:
 *              policy <name>@<version> sha256:<hex>
 *              approval-entry <index> (1 to SG_QUORUM_MAX)
 *
 * A policy entry records a policy version the gateway loaded, with its
 * whole file (request: the first 32 hex digits of its SHA-256); previous
 * is the policy in force when it was logged.  A version whose predecessor
 * asks for approval of changes (policy-change) is logged pending; each
 * officer's approval of it is a policy-decision entry (request: the
 * pending policy's), and the policy-effective entry names the approvals
 * that made the quorum when it takes effect.
 *
 * approved is written for a release or a grant in the transaction of the
 * decision that completed its quorum; artifact-signature for each
 * signature made under one (request is the release's or grant's id;
 * position the artifact's in the manifest, from 0, or the signature's
 * sequence number in the grant, from 1; path the artifact line's
 * inclusion path in the manifest, for a release only).
 *
 * A signature entry is self-contained: with it, its inclusion proof, a
 * signed checkpoint and the policy file, anyone can check offline that the
 * signature was made with the key the statement names, after a quorum of
 * officers approved that exact statement under that exact policy.
 */
#ifndef SG_ENTRY_H
#define SG_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "sg_limits.h"
#include "sg_merkle.h"

/* The longest entry: an entry bundle of c2sp.org/tlog-tiles prefixes
 * each entry with its length in 16 bits.  sg_tlog_append refuses longer
 * ones; entry.c proves that no entry built from fields within their
 * limits is longer (the limits it uses: SG_STATEMENT_MAX,
 * SG_ARTIFACT_JSON_MAX, SG_ENVELOPE_MAX, SG_QUORUM_MAX approvals,
 * SG_ENTRY_SPKI_MAX, SG_MAX_SIG, SG_ENTRY_REASON_MAX, SG_POLICY_FILE_MAX
 * for a policy's text). */
#define SG_ENTRY_MAX 65535
/* A logged public key (DER SubjectPublicKeyInfo; RSA-8192's is 1062
 * bytes) and a logged reason (failed, cancelled, revoked). */
#define SG_ENTRY_SPKI_MAX 2048
#define SG_ENTRY_REASON_MAX 1024
/* An older name of SG_ENVELOPES_MAX (sg_limits.h), until no file uses
 * it. */
#define SG_ENTRY_MAX_APPROVALS SG_ENVELOPES_MAX

enum sg_entry_type {
	SG_ENTRY_CREATED = 1,
	SG_ENTRY_DECISION,
	SG_ENTRY_SIGNATURE,
	SG_ENTRY_EXPIRED,
	SG_ENTRY_FAILED,
	SG_ENTRY_CANCELLED,
	SG_ENTRY_APPROVED,
	SG_ENTRY_ARTIFACT_SIGNATURE,
	SG_ENTRY_REVOKED,
	SG_ENTRY_POLICY,
	SG_ENTRY_POLICY_DECISION,
	SG_ENTRY_POLICY_EFFECTIVE,
};

struct sg_entry {
	enum sg_entry_type type;
	int64_t time;
	char request[SG_REQUEST_ID_SIZE];
	/* created, signature, approved */
	char *statement;
	size_t statement_len;
	/* created */
	char *artifact_json;
	size_t artifact_len;
	/* decision */
	char officer[SG_NAME_SIZE];
	int approve;
	char *envelope;                /* decision: the posted envelope */
	size_t envelope_len;
	/* signature, approved */
	char *approvals[SG_ENVELOPES_MAX];
	size_t approval_lens[SG_ENVELOPES_MAX];
	size_t napprovals;
	uint8_t *public_key;           /* DER SPKI */
	size_t public_key_len;
	char algorithm[16];
	uint8_t *signature;
	size_t signature_len;
	int has_cms;
	uint8_t cms_sha256[32];
	char hsm_serial[SG_TOKEN_SERIAL_MAX + 1];
	char hsm_country[3];
	/* artifact-signature (and its public-key .. hsm as in signature) */
	uint64_t approved_index;
	uint64_t position;
	char *line;                    /* the artifact line, no LF */
	size_t line_len;
	uint8_t path[SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	size_t npath;
	/* failed, cancelled, revoked */
	char *reason;
	size_t reason_len;
	/* cancelled, revoked: who (the requester or an officer) */
	char by[SG_NAME_SIZE];
	/* policy, policy-effective: the policy's name, version, SHA-256 */
	char policy_name[SG_NAME_SIZE];
	uint64_t policy_version;        /* 1..2^53 */
	char policy_sha256[SG_SHA256_HEX_SIZE]; /* lower-case hex */
	/* policy (policy-decision uses officer and envelope) */
	int has_previous;
	char previous_sha256[SG_SHA256_HEX_SIZE];
	int pending;                    /* status pending, else effective */
	char *text;                     /* the policy file */
	size_t text_len;
	/* policy-effective: the policy-decision entries that counted */
	uint64_t approval_entries[SG_ENVELOPES_MAX];
	size_t napproval_entries;
};

/* Renders an entry (malloc'd).  Fields are validated as the parser would;
 * SG_ERR_TOO_LARGE for an entry beyond what this build writes (the
 * bounds of "What one entry may hold"), which older builds could write
 * and the parser still reads. */
int sg_entry_build(const struct sg_entry *e, char **ret, size_t *ret_len);
/* Strict parse: exact order, no unknown or repeated lines, canonical
 * base64 and decimal, LF only, and build(parse(x)) == x. */
int sg_entry_parse(const char *text, size_t len, struct sg_entry *ret);
/* Frees what build's caller or parse allocated inside e; zeroes e. */
void sg_entry_clear(struct sg_entry *e);

#endif
