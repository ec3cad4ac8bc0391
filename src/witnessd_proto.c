/*
 * The witness's protocol, pure (see include/sg_witnessd.h): the
 * add-checkpoint body and the decision on it, following
 * c2sp.org/tlog-witness.
 *
 * The body is parsed as strictly as the log's own formats (sg_note.h):
 * "old <decimal>" without leading zeroes, proof lines that are the
 * canonical base64 of exactly one hash, at most 63 of them, a blank line,
 * then a signed note whose text is exactly origin, size and root.  A
 * checkpoint with extension lines is refused as malformed: no log this
 * witness serves writes them.
 *
 * The decision applies the spec's checks in its order, each with its
 * status:
 *   404  the origin is not a configured log;
 *   403  no signature line by the log's key verifies (lines by other keys,
 *        the cosignatures of other witnesses, are ignored; a line in the
 *        log's name and key ID that does not verify is a forgery and
 *        refuses the note);
 *   400  old size above the checkpoint's size, or a proof from size 0;
 *   409  old size is not the size last cosigned (0 if none), with that
 *        size in the answer: the log asks again from there.  When the old
 *        size is both above the checkpoint's and not ours, 409 wins, as it
 *        tells the log what it needs;
 *   409  same size as recorded but another root: a fork;
 *   422  the consistency proof from the recorded tree does not verify (a
 *        fork of a larger size), or a proof was sent between equal sizes.
 * A rollback (a checkpoint smaller than the one cosigned) can pass none of
 * these: its old size is either not ours (409) or above its size (400).
 * A checkpoint of the recorded size and root is cosigned again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_note.h"
#include "sg_util.h"
#include "sg_witnessd.h"

static const char old_pfx[] = "old ";

/* A decimal with no sign, no leading zero (except "0"), at most 2^63-1. */
static int
parse_size(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19 || (n > 1 && s[0] == '0'))
		return SG_ERR_INVALID;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SG_ERR_INVALID;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > SG_MERKLE_MAX_SIZE)
		return SG_ERR_INVALID;
	*ret = v;
	return 0;
}

static int
parse_hash(const char *s, size_t n, uint8_t out[SG_HASH_LEN])
{
	uint8_t *dec = NULL;
	size_t dlen = 0;

	if (n != 44 || sg_b64_decode(s, n, &dec, &dlen) != 0)
		return SG_ERR_INVALID;
	if (dlen != SG_HASH_LEN) {
		free(dec);
		return SG_ERR_INVALID;
	}
	memcpy(out, dec, SG_HASH_LEN);
	free(dec);
	return 0;
}

static int
any_line(void *ctx, const char *name, size_t nlen, const uint8_t *raw,
    size_t rawlen, size_t text_len)
{
	return 0;
}

int
sg_wd_parse(const char *body, size_t len, struct sg_wd_request *ret,
    char *err, size_t errlen)
{
	struct sg_wd_request *q = NULL;
	const char *p, *end, *nl;
	size_t n;
	int r = SG_ERR_INVALID;

	if (body == NULL || ret == NULL)
		return sg_err_set(err, errlen, SG_ERR_INVALID, "no body");
	if (len > SG_WD_BODY_MAX)
		return sg_err_set(err, errlen, SG_ERR_TOO_LARGE, "the body "
		    "is larger than %d bytes", SG_WD_BODY_MAX);
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return SG_ERR_NOMEM;
	p = body;
	end = body + len;
	if ((nl = memchr(p, '\n', len)) == NULL ||
	    (n = (size_t)(nl - p)) < sizeof(old_pfx) - 1 ||
	    memcmp(p, old_pfx, sizeof(old_pfx) - 1) != 0 ||
	    parse_size(p + sizeof(old_pfx) - 1, n - (sizeof(old_pfx) - 1),
	    &q->old_size) != 0) {
		sg_err_set(err, errlen, r, "the first line must be \"old "
		    "<size>\" (a decimal without leading zeroes)");
		goto out;
	}
	for (p = nl + 1;; p = nl + 1) {
		if (p >= end || (nl = memchr(p, '\n',
		    (size_t)(end - p))) == NULL) {
			sg_err_set(err, errlen, r, "no blank line before the "
			    "checkpoint");
			goto out;
		}
		if (nl == p)
			break;
		if (q->nproof == SG_WD_PROOF_MAX) {
			sg_err_set(err, errlen, r, "more than %d consistency "
			    "proof lines", SG_WD_PROOF_MAX);
			goto out;
		}
		if (parse_hash(p, (size_t)(nl - p), q->proof[q->nproof]) != 0) {
			sg_err_set(err, errlen, r, "consistency proof line "
			    "%zu is not the base64 of a 32-byte hash",
			    q->nproof + 1);
			goto out;
		}
		q->nproof++;
	}
	q->note = nl + 1;
	q->note_len = (size_t)(end - q->note);
	if (sg_note_signatures(q->note, q->note_len, any_line, NULL,
	    &q->text_len) != 0) {
		sg_err_set(err, errlen, r, "the checkpoint is not a signed "
		    "note (text, a blank line, signature lines)");
		goto out;
	}
	if (sg_checkpoint_parse(q->note, q->text_len, &q->cp) != 0) {
		sg_err_set(err, errlen, r, "the checkpoint text is not an "
		    "origin, a size and a root hash (extension lines are not "
		    "accepted)");
		goto out;
	}
	*ret = *q;
	r = 0;
out:
	free(q);
	return r;
}

int
sg_wd_decide(const struct sg_wd_log *log,
    const struct sg_witness_record *rec, const struct sg_wd_request *req,
    char *err, size_t errlen)
{
	unsigned long long size, old, have;
	size_t text_len = 0;
	int r;

	if (req == NULL || rec == NULL) {
		sg_err_set(err, errlen, SG_ERR_INVALID, "no request");
		return 400;
	}
	size = (unsigned long long)req->cp.size;
	old = (unsigned long long)req->old_size;
	have = rec->present ? (unsigned long long)rec->size : 0;
	if (log == NULL) {
		sg_err_set(err, errlen, SG_ERR_NOT_FOUND, "unknown log");
		return 404;
	}
	if (strcmp(log->origin, req->cp.origin) != 0) {
		sg_err_set(err, errlen, SG_ERR_INTERNAL, "the log's origin "
		    "is not the checkpoint's");
		return 404;
	}
	if ((r = sg_note_verify(req->note, req->note_len, log->key_name,
	    log->key_id, log->pub, &text_len)) != 0 ||
	    text_len != req->text_len) {
		sg_err_set(err, errlen, SG_ERR_VERIFY, "no valid signature "
		    "by the log's key");
		return 403;
	}
	if (old != have) {
		sg_err_set(err, errlen, SG_ERR_CONFLICT, "old size %llu is "
		    "not %llu, the size last cosigned%s", old, have,
		    size < have ? " (and the checkpoint is smaller)" :
		    "");
		return 409;
	}
	if (req->old_size > req->cp.size) {
		sg_err_set(err, errlen, SG_ERR_INVALID, "rollback: old size "
		    "%llu is above the checkpoint's size %llu", old, size);
		return 400;
	}
	if (req->old_size == 0 && req->nproof != 0) {
		sg_err_set(err, errlen, SG_ERR_INVALID, "a consistency proof "
		    "from size 0 must be empty");
		return 400;
	}
	if (req->cp.size == 0 && memcmp(req->cp.root, sg_merkle_empty_root,
	    SG_HASH_LEN) != 0) {
		sg_err_set(err, errlen, SG_ERR_VERIFY, "the root of a tree of "
		    "0 entries must be the empty root");
		return 422;
	}
	if (req->cp.size == req->old_size) {
		if (rec->present && memcmp(req->cp.root, rec->root,
		    SG_HASH_LEN) != 0) {
			sg_err_set(err, errlen, SG_ERR_CONFLICT, "fork: another "
			    "root for the tree of %llu entries that was "
			    "cosigned", size);
			return 409;
		}
		if (req->nproof != 0) {
			sg_err_set(err, errlen, SG_ERR_VERIFY, "a consistency "
			    "proof between equal sizes is empty");
			return 422;
		}
		if (rec->present)
			sg_err_set(err, errlen, 0, "the tree of %llu entries "
			    "cosigned again", size);
		else
			sg_err_set(err, errlen, 0, "first tree of %llu entries",
			    size);
		return 200;
	}
	if (req->old_size == 0) {
		/* Every tree extends the empty one (and a never cosigned
		 * log is taken as it is). */
		sg_err_set(err, errlen, 0, "%s tree of %llu entries",
		    rec->present ? "from the empty tree to a" : "first", size);
		return 200;
	}
	r = sg_merkle_verify_consistency(rec->size, req->cp.size, rec->root,
	    req->cp.root, (const uint8_t (*)[SG_HASH_LEN])req->proof,
	    req->nproof);
	if (r != 0) {
		sg_err_set(err, errlen, SG_ERR_VERIFY, "not consistent: the "
		    "proof from %llu to %llu entries does not verify (a fork, "
		    "or a wrong proof)", have, size);
		return 422;
	}
	sg_err_set(err, errlen, 0, "extends %llu to %llu entries", have, size);
	return 200;
}
