/*
 * The approval statement and its DSSE v1 envelope, as docs/API.md defines
 * them ("The approval statement and its envelope").
 *
 * A statement is ASCII text, every line ending in LF, in this order:
 *
 *     signgate approval v1
 *     request <id>
 *     key <name> sha256:<hex SPKI digest>
 *     artifact <digest algorithm>:<hex digest>
 *     format <raw|cms>
 *     requester <principal>
 *     policy <name>@<version> sha256:<hex of the policy file>
 *     expires <unix seconds>
 *
 * A release's statement (eight lines) and a grant's (nine) have their
 * own first lines and fields (docs/API.md, "Releases and grants"):
 *
 *     signgate release approval v1     signgate grant approval v1
 *     release <id>                     grant <id>
 *     key <name> sha256:<hex>          key <name> sha256:<hex>
 *     manifest sha256:<root> <count>   count <N>
 *     format <raw|cms>                 artifact <pattern>
 *     requester <principal>            format <raw|cms>
 *     policy ... (as above)            requester <principal>
 *     expires <unix seconds>           policy ... (as above)
 *                                      expires <unix seconds>
 *
 * The body an officer signs is the statement followed by one line
 * "decision approve\n" or "decision reject\n", and after a reject
 * optionally one line "reason <text>\n" (text as sg_text_ok() allows, 1 to
 * SG_REJECT_REASON_MAX bytes); the signature is over
 * PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body.
 */
#ifndef SG_DSSE_H
#define SG_DSSE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_limits.h"
#include "sg_types.h"

#define SG_DSSE_TYPE "application/vnd.signgate.approval.v1+text"
#define SG_STATEMENT_MAX 2048
/* A decision envelope as posted (a real one is 1 to 2.5 KiB, WebAuthn
 * with an RSA-4096 key included); bounds the log entries that carry
 * envelopes (sg_entry.h). */
#define SG_ENVELOPE_MAX 4096
#define SG_REJECT_REASON_MAX 256   /* bytes, as a cancel reason */

struct sg_statement {
	enum sg_kind kind;         /* SG_KIND_REQUEST when zeroed */
	char request[SG_REQUEST_ID_SIZE]; /* the id, whatever the kind */
	char key[SG_NAME_SIZE];
	char spki_sha256[SG_SHA256_HEX_SIZE]; /* lower-case hex */
	char digest_alg[8];        /* "sha256" | "sha384" | "sha512" */
	char digest_hex[SG_DIGEST_HEX_SIZE]; /* lower-case hex */
	char format[SG_FORMAT_SIZE]; /* sg_format_str() */
	char requester[SG_NAME_SIZE];
	char policy_name[SG_NAME_SIZE];
	unsigned long long policy_version;
	char policy_sha256[SG_SHA256_HEX_SIZE];
	long long expires;         /* unix seconds */
	/* release: the manifest; grant: the signatures allowed */
	uint64_t count;
	char manifest_root[SG_SHA256_HEX_SIZE]; /* release: lower-case hex */
	char pattern[SG_PATTERN_SIZE];          /* grant: artifact names */
};

/* Renders the statement text (malloc'd, NUL-terminated) of s->kind.  Every
 * field is validated (names [A-Za-z0-9._-], lower-case hex of the right
 * length; a request's digest, a release's manifest root and count
 * (1..SG_RELEASE_MAX), a grant's count (1..SG_GRANT_MAX) and pattern
 * (sg_pattern_valid)); the fields another kind has must be empty. */
int sg_statement_build(const struct sg_statement *s, char **ret,
    size_t *ret_len);
/* Parses a statement of any kind strictly (the first line says which):
 * exact line order, no extra bytes, the rendering of the parsed fields
 * must equal the input byte for byte. */
int sg_statement_parse(const char *text, size_t len, struct sg_statement *ret);

/* Splits an approval body into statement length and decision.
 * ret_approve: 1 approve, 0 reject.  The statement is body[0..*ret_stmt_len). */
int sg_body_split(const uint8_t *body, size_t len, size_t *ret_stmt_len,
    int *ret_approve);
/* The same, and a reject's reason: copied NUL-terminated into reason
 * (cap at least SG_REJECT_REASON_MAX + 1, or reason NULL when not wanted);
 * "" when the body has none.  A reason line that breaks the rules (empty,
 * too long, not text, after an approve) makes the body invalid. */
int sg_body_split_reason(const uint8_t *body, size_t len,
    size_t *ret_stmt_len, int *ret_approve, char *reason, size_t cap);
/* statement + "decision approve\n" / "decision reject\n", malloc'd. */
int sg_body_build(const char *statement, size_t len, int approve,
    uint8_t **ret, size_t *ret_len);
/* The same with a reject's reason line (reason NULL: none; an approve
 * takes none). */
int sg_body_build_reason(const char *statement, size_t len, int approve,
    const char *reason, uint8_t **ret, size_t *ret_len);

/* PAE(type, body), malloc'd. */
int sg_dsse_pae(const char *type, const uint8_t *body, size_t len,
    uint8_t **ret, size_t *ret_len);

/* A WebAuthn assertion carried by the signature (docs/API.md,
 * "Approvals made with a security key"), decoded. */
struct sg_envelope_webauthn {
	uint8_t *cred_id;           /* "credential_id", base64url */
	size_t cred_id_len;         /* 1..SG_WEBAUTHN_CRED_ID_MAX */
	uint8_t *authdata;          /* "authenticator_data", base64 */
	size_t authdata_len;        /* 1..SG_WEBAUTHN_AUTHDATA_MAX */
	uint8_t *client_data;       /* "client_data_json", base64 */
	size_t client_data_len;     /* 1..SG_WEBAUTHN_CLIENT_DATA_MAX */
};

struct sg_envelope {
	char payload_type[128];
	uint8_t *payload;
	size_t payload_len;
	char keyid[SG_NAME_SIZE];
	uint8_t *sig;
	size_t sig_len;
	int has_webauthn;           /* sig is the assertion's signature */
	struct sg_envelope_webauthn webauthn;
};

/*
 * Parses a DSSE envelope JSON strictly: an object with exactly
 * "payloadType", "payload" (base64), "signatures" (an array of exactly one
 * object with exactly "keyid" and "sig" (base64), and optionally
 * "webauthn": an object of exactly "credential_id" (base64url without
 * padding), "authenticator_data" and "client_data_json" (base64), each
 * within its limit in sg_webauthn.h); duplicate keys, unknown fields,
 * wrong types and oversize input are refused.  On failure the name of the
 * offending field and why are written to errbuf.
 */
int sg_envelope_parse(const char *json, size_t len, struct sg_envelope *ret,
    char *errbuf, size_t errlen);
void sg_envelope_clear(struct sg_envelope *e);
/* Builds the envelope JSON (malloc'd, NUL-terminated). */
int sg_envelope_build(const char *type, const uint8_t *payload, size_t len,
    const char *keyid, const uint8_t *sig, size_t sig_len, char **ret);
/* The same with a "webauthn" member (wa NULL: none), sig being the
 * assertion's signature. */
int sg_envelope_build_webauthn(const char *type, const uint8_t *payload,
    size_t len, const char *keyid, const uint8_t *sig, size_t sig_len,
    const struct sg_envelope_webauthn *wa, char **ret);
/*
 * The credential id of a stored envelope's assertion, cheaply (for
 * counting decisions already verified): 0 with *ret_len 0 when the
 * envelope has no "webauthn", or with the decoded id in out; an error
 * when the JSON does not have the envelope's shape.
 */
int sg_envelope_webauthn_id(const char *json, size_t len, uint8_t *out,
    size_t cap, size_t *ret_len);

#endif
