/*
 * The values a request's state and a signature's format can take, as
 * enumerations, each with its one spelling.  The strings exist only where
 * the values cross a boundary as text (SQL columns, JSON members, the
 * statement, command-line options): there they are turned into the enum
 * with the _parse function and back with the _str one, so that no module
 * compares or spells them by hand.
 */
#ifndef SG_TYPES_H
#define SG_TYPES_H

/*
 * A signing request's life: pending until the quorum is met (signed), a
 * veto (rejected), its expiry (expired), a signing failure (failed) or a
 * cancellation (cancelled).  A release or a grant whose quorum holds is
 * active (a release while its artifacts are signed, a grant until its
 * end, or until revoked).  Every state but pending and active is final.
 */
enum sg_req_state {
	SG_REQ_NONE = 0,               /* not a state: zeroed or unparsed */
	SG_REQ_PENDING,
	SG_REQ_SIGNED,
	SG_REQ_REJECTED,
	SG_REQ_EXPIRED,
	SG_REQ_FAILED,
	SG_REQ_CANCELLED,
	SG_REQ_ACTIVE,                 /* release or grant: approved */
	SG_REQ_REVOKED,                /* grant: revoked by an officer */
};
#define SG_REQ_STATE_FIRST SG_REQ_PENDING
#define SG_REQ_STATE_LAST SG_REQ_REVOKED
/* The longest spelling of a state ("cancelled"), as a C string. */
#define SG_REQ_STATE_SIZE 10

/*
 * A signature's format: the raw signature value, or a detached CMS
 * SignedData.  The values are distinct bits, so that the formats a key
 * allows are a mask of them (struct sg_policy_key.formats).
 */
enum sg_format {
	SG_FORMAT_RAW = 1 << 0,
	SG_FORMAT_CMS = 1 << 1,
};
/* The longest spelling of a format, as a C string. */
#define SG_FORMAT_SIZE 4

/*
 * What officers approve: one signing request (one digest), a release (a
 * manifest of artifacts, all signed once the quorum holds) or a grant (up
 * to N signatures for one requester and key until a time).  The zero
 * value is the single request, so that zeroed structures stay what they
 * were before releases and grants existed.
 */
enum sg_kind {
	SG_KIND_REQUEST = 0,
	SG_KIND_RELEASE,
	SG_KIND_GRANT,
};
/* The longest spelling of a kind ("request", "release"), as a C string. */
#define SG_KIND_SIZE 8

/* "request", "release", "grant"; "?" for a value that is not a kind. */
const char *sg_kind_str(enum sg_kind k);
/* The kind spelled s; SG_ERR_INVALID (and *ret untouched) otherwise. */
int sg_kind_parse(const char *s, enum sg_kind *ret);

/* "pending", "signed", ...; "?" for a value that is not a state. */
const char *sg_req_state_str(enum sg_req_state s);
/* The state spelled s; SG_ERR_INVALID (and *ret untouched) otherwise. */
int sg_req_state_parse(const char *s, enum sg_req_state *ret);
/* 1 for every state but pending and active (and SG_REQ_NONE). */
int sg_req_state_final(enum sg_req_state s);
/* 1 for a state (SG_REQ_PENDING..SG_REQ_STATE_LAST), 0 otherwise. */
int sg_req_state_valid(enum sg_req_state s);

/* "raw" or "cms"; "?" for a value that is not one format. */
const char *sg_format_str(enum sg_format f);
/* The format spelled s; SG_ERR_INVALID (and *ret untouched) otherwise. */
int sg_format_parse(const char *s, enum sg_format *ret);
/* 1 for exactly one format (not a mask of several), 0 otherwise. */
int sg_format_valid(enum sg_format f);

#endif
