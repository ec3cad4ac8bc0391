/*
 * The messages between the front and the signer process (sg_signer_proc.h),
 * defined once for both ends: the front builds requests with the encoders
 * below and checks each reply with sg_wire_decode_reply(); the signer
 * checks each request with sg_wire_decode_request() before any handler
 * sees it, and builds its replies with sg_wire_encode_reply().
 *
 * One message per SOCK_SEQPACKET record, host byte order (both ends are
 * the same binary), every message a fixed struct that starts with a
 * header; SIGN, SIGN_BATCH, REPLY and BATCH_REPLY are followed by
 * variable parts whose lengths the fixed part declares.  Every header
 * carries a tag: the front picks one per request, and the signer's answer
 * carries the request's, so that many requests may be outstanding on one
 * channel and their answers come back in any order.  A request is
 * accepted only when the record's size
 * is exactly what the table in signer_wire.c says for its type, every
 * fixed string is NUL-terminated inside its field, and every count and
 * declared length is within its limit.  Nothing else reaches a handler.
 */
#ifndef SG_SIGNER_WIRE_H
#define SG_SIGNER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_dsse.h"
#include "sg_signer.h"
#include "sg_signer_proc.h"
#include "sg_types.h"
#include "sg_witness.h"

/* The protocol's version too: "SGS1" had no tag. */
#define SG_WIRE_MAGIC 0x53475332u      /* "SGS2" */
/* The decisions one SIGN message carries: all a request can hold. */
#define SG_WIRE_MAX_ENVELOPES SG_ENVELOPES_MAX

enum sg_wire_type {
	SG_WIRE_READY = 1,             /* reserved: see the table */
	SG_WIRE_SIGN,
	SG_WIRE_CHECKPOINT,
	SG_WIRE_PROBE,
	SG_WIRE_KEYINFO,
	SG_WIRE_RELOAD,
	SG_WIRE_REPLY,
	SG_WIRE_SIGN_BATCH,            /* releases and grants */
	SG_WIRE_BATCH_REPLY,
};

struct sg_wire_hdr {
	uint32_t magic;
	uint32_t type;
	uint32_t len;                  /* whole message, header included */
	uint32_t reserved;             /* 0 */
	uint64_t tag;                  /* a request's: the front's choice;
	                                  an answer's: its request's (0 for
	                                  the start-up REPLY, and for an
	                                  answer to a record without one) */
};

struct sg_wire_sign {
	struct sg_wire_hdr h;
	char key[SG_NAME_MAX];
	uint32_t digest_alg;
	uint32_t data_len;
	uint8_t data[SG_MAX_DIGEST];
	char format[SG_FORMAT_SIZE];   /* sg_format_str(), NUL-padded */
	uint32_t statement_len;
	uint32_t nenvelopes;
	uint32_t envelope_lens[SG_WIRE_MAX_ENVELOPES];
	/* then statement_len bytes, then each envelope's bytes */
};

struct sg_wire_checkpoint {            /* CHECKPOINT: a tree, never text */
	struct sg_wire_hdr h;
	uint64_t size;
	uint8_t root[SG_HASH_LEN];
	uint64_t old_size;             /* where the proof starts */
	uint32_t nproof;
	uint8_t proof[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
};

struct sg_wire_text {                  /* RELOAD */
	struct sg_wire_hdr h;
	uint32_t len;
	char text[SG_SIGNER_CHECKPOINT_MAX];
};

struct sg_wire_name {                  /* PROBE, KEYINFO */
	struct sg_wire_hdr h;
	char name[SG_NAME_MAX];
};

struct sg_wire_reply {
	struct sg_wire_hdr h;
	int32_t status;
	char err[SG_SIGNER_ERR_MAX];
	uint32_t sig_len;
	uint8_t sig[SG_MAX_SIG];
	uint32_t alg;                  /* KEYINFO */
	struct sg_token_info token;    /* KEYINFO */
	uint32_t der_len;              /* KEYINFO: public key DER */
	uint8_t der[1024];
	uint32_t log_recorded;         /* CHECKPOINT: the signer's record */
	uint64_t log_size;
	uint8_t log_root[SG_HASH_LEN];
	uint32_t cms_len;              /* then cms_len bytes (SIGN, cms) */
};

/* One item of a SIGN_BATCH: its line and path follow the evidence. */
struct sg_wire_batch_item {
	uint64_t position;
	uint32_t line_len;             /* 1..SG_ARTIFACT_LINE_MAX */
	uint32_t npath;                /* 0..SG_MANIFEST_PATH_MAX hashes */
};

struct sg_wire_sign_batch {            /* SIGN_BATCH */
	struct sg_wire_hdr h;
	char key[SG_NAME_MAX];
	char format[SG_FORMAT_SIZE];   /* sg_format_str(), NUL-padded */
	uint32_t statement_len;
	uint32_t nenvelopes;
	uint32_t envelope_lens[SG_WIRE_MAX_ENVELOPES]; /* unused: 0 */
	uint32_t nitems;               /* 1..SG_SIGNER_BATCH_MAX */
	uint32_t reserved;             /* 0 */
	struct sg_wire_batch_item items[SG_SIGNER_BATCH_MAX]; /* unused: 0 */
	/* then the statement, each envelope, then for each item its line
	 * bytes and its npath hashes of SG_HASH_LEN bytes */
};

struct sg_wire_batch_result {
	int32_t status;                /* 0, SG_ERR_BUFFER or a refusal */
	uint32_t sig_len;              /* 1..SG_MAX_SIG when status is 0 */
	uint32_t cms_len;              /* cms: the DER SignedData */
};

struct sg_wire_batch_reply {           /* BATCH_REPLY */
	struct sg_wire_hdr h;
	int32_t status;                /* the whole batch */
	char err[SG_SIGNER_ERR_MAX];   /* why (the first refused item's why
	                                  when status is 0) */
	uint32_t nitems;               /* status 0: as many as asked; else 0 */
	struct sg_wire_batch_result items[SG_SIGNER_BATCH_MAX]; /* unused: 0 */
	/* then for each item its sig_len bytes, then its cms_len bytes */
};

/* The largest request the signer reads, and the largest reply. */
#define SG_WIRE_MAX_MSG (sizeof(struct sg_wire_sign) + SG_SIGNER_MAX_EVIDENCE)
#define SG_WIRE_MAX_REPLY (sizeof(struct sg_wire_reply) + SG_SIGNER_MAX_CMS)
/* A BATCH_REPLY's signatures and CMS together: the signer stops filling
 * it there (the items left get SG_ERR_BUFFER).  The whole reply stays
 * under the kernel's default socket buffer, as SIGN does. */
#define SG_WIRE_BATCH_DATA_MAX \
	(SG_SIGNER_MAX_CMS + SG_SIGNER_BATCH_MAX * SG_MAX_SIG)
#define SG_WIRE_MAX_BATCH_REPLY \
	(sizeof(struct sg_wire_batch_reply) + SG_WIRE_BATCH_DATA_MAX)
/* What the front's receive buffer must hold: either reply. */
#define SG_WIRE_MAX_FROM_SIGNER \
	(SG_WIRE_MAX_BATCH_REPLY > SG_WIRE_MAX_REPLY ? \
	SG_WIRE_MAX_BATCH_REPLY : SG_WIRE_MAX_REPLY)

/* The table: one row per type. */
enum sg_wire_shape {
	SG_WIRE_EXACT,                 /* exactly `size` bytes */
	SG_WIRE_DECLARED,              /* `size`, then what it declares */
};

enum sg_wire_dir {
	SG_WIRE_NONE,                  /* never sent */
	SG_WIRE_TO_SIGNER,
	SG_WIRE_TO_FRONT,
};

struct sg_wire_type_info {
	uint32_t type;
	const char *name;
	enum sg_wire_dir dir;
	enum sg_wire_shape shape;
	size_t size;                   /* the fixed part, header included */
	const char *malformed;         /* the reason for a bad length/field */
};

/* The row for a type, or NULL for a type not in the table. */
const struct sg_wire_type_info *sg_wire_type_info(uint32_t type);

/*
 * A request as the signer's handlers see it, decoded from one record.
 * Fixed fields are copied out (strings NUL-terminated); the statement and
 * the envelopes point into the record, which must outlive this.
 */
struct sg_wire_sign_req {
	struct sg_sign_msg msg;        /* key, digest_alg, data, data_len */
	enum sg_format format;         /* parsed: one format */
	const char *statement;
	size_t statement_len;
	const char *envelopes[SG_WIRE_MAX_ENVELOPES];
	size_t envelope_lens[SG_WIRE_MAX_ENVELOPES];
	size_t nenvelopes;
};

/*
 * SIGN_BATCH decoded: the evidence as a SIGN carries it (sign.msg holds
 * only the key: no digest), the items' lines and paths pointing into the
 * record.
 */
struct sg_wire_batch_req {
	struct sg_wire_sign_req sign;
	struct sg_batch_item items[SG_SIGNER_BATCH_MAX];
	size_t nitems;
};

struct sg_wire_request {
	uint32_t type;
	union {
		struct sg_wire_sign_req sign;          /* SIGN */
		struct sg_wire_batch_req batch;        /* SIGN_BATCH */
		struct sg_witness_request checkpoint;  /* CHECKPOINT */
		char reload_sha256[SG_SHA256_HEX_SIZE]; /* RELOAD, hex */
		char name[SG_NAME_MAX];                /* PROBE, KEYINFO */
	} u;
};

/*
 * The signer's one gate for incoming records: magic, header length equal
 * to the record's, the reserved word 0 (any tag is accepted: the answer
 * carries it back), a type the signer serves, the exact total length for
 * that type (for SIGN, the fixed part plus statement_len plus each
 * envelope's length, each non-zero and within its limit), NUL-terminated
 * fixed strings and counts within bounds.  0 with *ret filled, or
 * SG_ERR_INVALID with the reason in err (the reply's text).
 */
int sg_wire_decode_request(const uint8_t *buf, size_t len,
    struct sg_wire_request *ret, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Encoders for the front (and for tests that start from a valid message).
 * SG_ERR_INVALID for what the signer would refuse anyway (a name or format
 * that does not fit its field, a count or length over its limit),
 * SG_ERR_TOO_LARGE for a SIGN over SG_WIRE_MAX_MSG.
 */
void sg_wire_hdr_init(struct sg_wire_hdr *h, uint32_t type, size_t len);
/*
 * The tag of an encoded message (msg at least a header long): the
 * encoders leave it 0, and the sender sets it before sending.
 */
void sg_wire_set_tag(void *msg, uint64_t tag);
/* A record's tag and type, as its header says; 0 for both when the record
 * is shorter than a header or its magic is not this protocol's. */
uint64_t sg_wire_tag(const uint8_t *buf, size_t len);
uint32_t sg_wire_type(const uint8_t *buf, size_t len);
/* SIGN: *ret is malloc'd, *ret_len bytes. */
int sg_wire_encode_sign(const struct sg_sign_msg *msg,
    const struct sg_sign_evidence *ev, uint8_t **ret, size_t *ret_len);
int sg_wire_encode_checkpoint(struct sg_wire_checkpoint *w,
    const struct sg_witness_request *req);
/* PROBE or KEYINFO. */
int sg_wire_encode_name(struct sg_wire_name *w, uint32_t type,
    const char *name);
/* SIGN_BATCH: items[0..n) under key and the release or grant evidence
 * ev; *ret is malloc'd.  SG_ERR_INVALID for a count, line or path out of
 * its limit, SG_ERR_TOO_LARGE past SG_WIRE_MAX_MSG (send fewer items). */
int sg_wire_encode_sign_batch(const char *key,
    const struct sg_sign_evidence *ev, const struct sg_batch_item *items,
    size_t n, uint8_t **ret, size_t *ret_len);
/* RELOAD: the SHA-256 the front expects, 64 hex characters. */
int sg_wire_encode_reload(struct sg_wire_text *w, const char *sha256_hex);

/*
 * The signer's replies: rep's header and cms_len are set here, and extra
 * (extra_len bytes, the CMS) follows it.  *ret is malloc'd.
 */
int sg_wire_encode_reply(struct sg_wire_reply *rep, const uint8_t *extra,
    size_t extra_len, uint8_t **ret, size_t *ret_len);

/*
 * The front's check of a record from the signer: a REPLY whose header,
 * size and cms_len agree, whose reserved word is 0, whose lengths fit their fields, whose strings
 * are terminated, whose status is 0 or an SG_ERR_* code, and which carries
 * no signature, CMS or public key when the status is an error.  0 with
 * the fixed part in *ret and *ret_extra pointing at the CMS inside buf;
 * SG_ERR_INVALID otherwise (a signer that answers so is not trusted).
 */
int sg_wire_decode_reply(const uint8_t *buf, size_t len,
    struct sg_wire_reply *ret, const uint8_t **ret_extra)
    __attribute__((warn_unused_result));

/*
 * The signer's answer to a SIGN_BATCH: status and err for the whole
 * batch; when status is 0, res[0..n) item by item (a signature and, for
 * CMS, its DER only for an item whose status is 0).  SG_ERR_INVALID for
 * a refusal that carries signatures or an item out of its limits,
 * SG_ERR_TOO_LARGE past SG_WIRE_BATCH_DATA_MAX.  *ret is malloc'd.
 */
int sg_wire_encode_batch_reply(int status, const char *err,
    const struct sg_batch_result *res, size_t n, uint8_t **ret,
    size_t *ret_len);
/*
 * The front's check of a BATCH_REPLY: header (reserved 0), size equal to
 * the fixed
 * part plus every item's declared lengths, err terminated, statuses 0 or
 * SG_ERR_* codes, a whole-batch refusal with no item, each item's
 * signature 1..SG_MAX_SIG bytes and CMS at most SG_SIGNER_MAX_CMS only
 * when its status is 0, unused slots zero.  0 with the fixed part in *ret
 * and *ret_extra at the items' bytes inside buf; SG_ERR_INVALID otherwise.
 */
int sg_wire_decode_batch_reply(const uint8_t *buf, size_t len,
    struct sg_wire_batch_reply *ret, const uint8_t **ret_extra)
    __attribute__((warn_unused_result));

#endif
