/*
 * The signer's record of the log it signs, and the rule every new
 * checkpoint must pass: it extends the last one signed (an RFC 6962
 * consistency proof, checked by the signer).  The log key thereby never
 * signs two trees of one size (a fork) nor a smaller tree after a larger
 * one (a rollback), whatever the front asks.
 *
 * Also the shape of the checkpoint exchange between the front and the
 * signer: the front sends a tree (size, root) with a consistency proof
 * from the signer's recorded size, never text; the signer formats the
 * checkpoint itself from its own origin.
 */
#ifndef SG_WITNESS_H
#define SG_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include "sg_merkle.h"

/* The last tree the signer agreed to sign. */
struct sg_witness_record {
	int present;                   /* 0: nothing signed yet */
	uint64_t size;
	uint8_t root[SG_HASH_LEN];
};

/* What the front asks to have signed. */
struct sg_witness_request {
	uint64_t size;
	uint8_t root[SG_HASH_LEN];
	uint64_t old_size;             /* where the proof starts */
	uint8_t proof[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	size_t nproof;
};

/* What the signer answers: the signature over its own checkpoint text
 * (when it signed), and its record after the request in any case. */
struct sg_witness_reply {
	uint8_t sig[64];
	struct sg_witness_record rec;
	char err[256];
};

/*
 * Pure: whether the tree (size, root), with a consistency proof from
 * old_size, may be signed after rec.  0 if so; SG_ERR_VERIFY for a
 * rollback or a fork (err says which); SG_ERR_CONFLICT when the tree is
 * larger but the proof does not start at the recorded size (the front
 * should ask again from there); SG_ERR_INVALID for what is malformed.
 * Without a record, any tree is accepted (trust on first use).
 */
int sg_witness_check(const struct sg_witness_record *rec,
    const struct sg_witness_request *req, char *err, size_t errlen)
    __attribute__((warn_unused_result));

struct sg_witness;

/*
 * The record kept in dir (created 0700 if missing; refused if group or
 * others may write it) for the log named origin.  Fails if the record
 * there cannot be read, is malformed, or names another origin.
 */
int sg_witness_open(const char *dir, const char *origin,
    struct sg_witness **ret, char *err, size_t errlen);
void sg_witness_free(struct sg_witness *w);

/* The record as it is on disk now. */
int sg_witness_get(struct sg_witness *w, struct sg_witness_record *ret,
    char *err, size_t errlen);

/*
 * Checks the request against the record on disk (re-read under an
 * exclusive lock, so that several threads and processes never extend it
 * twice) and, when it may be signed, makes (size, root) the record,
 * durably, before returning 0.  *ret_rec is the record afterwards, also
 * on failure when it could be read (ret_rec->present 0 otherwise).
 * Errors as sg_witness_check, or SG_ERR_IO.  Thread-safe.
 */
int sg_witness_advance(struct sg_witness *w,
    const struct sg_witness_request *req, struct sg_witness_record *ret_rec,
    char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
