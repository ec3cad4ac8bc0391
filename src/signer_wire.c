/*
 * The wire protocol between the front and the signer process: the one
 * table of message types, the signer's gate for incoming records, the
 * front's check of replies, and the encoders both ends build with.
 *
 * The table (wire_types below) gives, for each type, who sends it, its
 * fixed part (a struct of sg_signer_wire.h, header included) and whether
 * the record is exactly that long or that long plus what the fixed part
 * declares:
 *
 *   SIGN        front -> signer  struct sg_wire_sign, then statement_len
 *                                bytes, then nenvelopes envelopes of
 *                                envelope_lens[i] bytes each
 *   CHECKPOINT  front -> signer  struct sg_wire_checkpoint, exactly
 *   PROBE       front -> signer  struct sg_wire_name, exactly
 *   KEYINFO     front -> signer  struct sg_wire_name, exactly
 *   RELOAD      front -> signer  struct sg_wire_text, exactly (len 64)
 *   REPLY       signer -> front  struct sg_wire_reply, then cms_len bytes
 *   SIGN_BATCH  front -> signer  struct sg_wire_sign_batch, then the
 *                                statement and envelopes as for SIGN, then
 *                                for each of nitems items line_len bytes
 *                                and npath hashes
 *   BATCH_REPLY signer -> front  struct sg_wire_batch_reply, then for each
 *                                item sig_len bytes and cms_len bytes
 *   READY       never sent: the signer's first message on a channel, which
 *               says whether it started, is a REPLY
 *
 * Every header carries a tag (sg_signer_wire.h): the front's choice in a
 * request, the request's in its answer.  The signer does not judge it; the
 * front matches answers to requests by it.
 *
 * sg_wire_decode_request() is the only way a record reaches the signer's
 * handlers.  Its checks come in a fixed order, and each refusal has its
 * own text (the forge tool and the tests look for them): the header (size
 * of at least a header and at most SG_WIRE_MAX_MSG, magic, h.len equal to
 * the record's size, the reserved word 0) "malformed message"; a type the
 * signer does not serve "unknown message type N"; then the type's length
 * and fields, with the table's text ("malformed sign message", ...).  For
 * SIGN, after the
 * fixed part, each envelope length must be non-zero and at most
 * SG_ENVELOPE_MAX ("envelope N: bad length"), the statement non-empty
 * ("no statement"), and the record exactly as long as the declared parts
 * ("sign message is N bytes, its lengths say M").  Decoded requests hold
 * copies of the fixed fields, so handlers never read the record through
 * a cast.  SIGN_BATCH is checked the same way ("malformed batch
 * message" for its fixed fields, "item N: bad line length" / "item N: bad
 * path length", "batch message is N bytes, its lengths say M"), and
 * unused envelope and item slots must be zero.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_signer_wire.h"

static const struct sg_wire_type_info wire_types[] = {
	{ SG_WIRE_READY, "READY", SG_WIRE_NONE, SG_WIRE_EXACT,
	    sizeof(struct sg_wire_reply), "malformed message" },
	{ SG_WIRE_SIGN, "SIGN", SG_WIRE_TO_SIGNER, SG_WIRE_DECLARED,
	    sizeof(struct sg_wire_sign), "malformed sign message" },
	{ SG_WIRE_CHECKPOINT, "CHECKPOINT", SG_WIRE_TO_SIGNER, SG_WIRE_EXACT,
	    sizeof(struct sg_wire_checkpoint), "malformed checkpoint message" },
	{ SG_WIRE_PROBE, "PROBE", SG_WIRE_TO_SIGNER, SG_WIRE_EXACT,
	    sizeof(struct sg_wire_name), "malformed probe message" },
	{ SG_WIRE_KEYINFO, "KEYINFO", SG_WIRE_TO_SIGNER, SG_WIRE_EXACT,
	    sizeof(struct sg_wire_name), "malformed keyinfo message" },
	{ SG_WIRE_RELOAD, "RELOAD", SG_WIRE_TO_SIGNER, SG_WIRE_EXACT,
	    sizeof(struct sg_wire_text), "malformed reload message" },
	{ SG_WIRE_REPLY, "REPLY", SG_WIRE_TO_FRONT, SG_WIRE_DECLARED,
	    sizeof(struct sg_wire_reply), "malformed reply" },
	{ SG_WIRE_SIGN_BATCH, "SIGN_BATCH", SG_WIRE_TO_SIGNER,
	    SG_WIRE_DECLARED, sizeof(struct sg_wire_sign_batch),
	    "malformed batch message" },
	{ SG_WIRE_BATCH_REPLY, "BATCH_REPLY", SG_WIRE_TO_FRONT,
	    SG_WIRE_DECLARED, sizeof(struct sg_wire_batch_reply),
	    "malformed batch reply" },
};

/* Both batch messages fit the socket buffer the kernel gives by default
 * (net.core.wmem_default, 212992 bytes, less its 32 bytes of margin). */
_Static_assert(SG_WIRE_MAX_MSG <= 212992 - 4096, "SIGN too large");
_Static_assert(SG_WIRE_MAX_BATCH_REPLY <= 212992 - 4096,
    "BATCH_REPLY too large");

const struct sg_wire_type_info *
sg_wire_type_info(uint32_t type)
{
	size_t i;

	for (i = 0; i < sizeof(wire_types) / sizeof(wire_types[0]); i++)
		if (wire_types[i].type == type)
			return &wire_types[i];
	return NULL;
}

/* A fixed string field: NUL-terminated inside its cap. */
static int
terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* A string that fits a field of cap bytes with its NUL. */
static int
fits(const char *s, size_t cap)
{
	return s != NULL && strnlen(s, cap) < cap;
}

/* ------------------------------------------------------------------ */
/* The signer's side: requests in. */

static int
refuse(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return SG_ERR_INVALID;
}

/* SIGN: the fixed part is there (checked by the caller). */
static int
decode_sign(const uint8_t *buf, size_t len, const char *malformed,
    struct sg_wire_sign_req *ret, char *err, size_t errlen)
{
	struct sg_wire_sign w;
	size_t i, off, want;

	memcpy(&w, buf, sizeof(w));
	if (!terminated(w.key, sizeof(w.key)) ||
	    !terminated(w.format, sizeof(w.format)) ||
	    w.data_len > sizeof(w.data) ||
	    w.nenvelopes > SG_WIRE_MAX_ENVELOPES ||
	    w.statement_len > SG_STATEMENT_MAX)
		return refuse(err, errlen, malformed);
	want = sizeof(w) + w.statement_len;
	for (i = 0; i < w.nenvelopes; i++) {
		if (w.envelope_lens[i] == 0 ||
		    w.envelope_lens[i] > SG_ENVELOPE_MAX) {
			snprintf(err, errlen, "envelope %zu: bad length",
			    i + 1);
			return SG_ERR_INVALID;
		}
		want += w.envelope_lens[i];
	}
	if (w.statement_len == 0)
		return refuse(err, errlen, "no statement");
	if (want != len) {
		snprintf(err, errlen, "sign message is %zu bytes, its lengths "
		    "say %zu", len, want);
		return SG_ERR_INVALID;
	}
	if (sg_format_parse(w.format, &ret->format) != 0)
		return refuse(err, errlen, malformed);
	memcpy(ret->msg.key, w.key, sizeof(ret->msg.key));
	ret->msg.digest_alg = (enum sg_digest_alg)w.digest_alg;
	memcpy(ret->msg.data, w.data, w.data_len);
	ret->msg.data_len = w.data_len;
	ret->statement = (const char *)buf + sizeof(w);
	ret->statement_len = w.statement_len;
	off = sizeof(w) + w.statement_len;
	for (i = 0; i < w.nenvelopes; i++) {
		ret->envelopes[i] = (const char *)buf + off;
		ret->envelope_lens[i] = w.envelope_lens[i];
		off += w.envelope_lens[i];
	}
	ret->nenvelopes = w.nenvelopes;
	return 0;
}

/* Bytes all zero (unused slots). */
static int
zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

/* SIGN_BATCH's items: counts and lengths, and what the record must hold. */
static int
batch_items_len(const struct sg_wire_sign_batch *w, size_t *want, char *err,
    size_t errlen)
{
	const struct sg_wire_batch_item *it;
	size_t i;

	for (i = 0; i < w->nitems; i++) {
		it = &w->items[i];
		if (it->line_len == 0 || it->line_len > SG_ARTIFACT_LINE_MAX) {
			snprintf(err, errlen, "item %zu: bad line length",
			    i + 1);
			return SG_ERR_INVALID;
		}
		if (it->npath > SG_MANIFEST_PATH_MAX) {
			snprintf(err, errlen, "item %zu: bad path length",
			    i + 1);
			return SG_ERR_INVALID;
		}
		*want += it->line_len + (size_t)it->npath * SG_HASH_LEN;
	}
	return 0;
}

/* SIGN_BATCH's fixed part: strings, counts, unused slots, envelopes. */
static int
batch_fixed(const struct sg_wire_sign_batch *w, const char *malformed,
    size_t *want, char *err, size_t errlen)
{
	size_t i;

	if (!terminated(w->key, sizeof(w->key)) ||
	    !terminated(w->format, sizeof(w->format)) ||
	    w->nenvelopes > SG_WIRE_MAX_ENVELOPES ||
	    w->statement_len > SG_STATEMENT_MAX ||
	    w->nitems == 0 || w->nitems > SG_SIGNER_BATCH_MAX ||
	    w->reserved != 0 ||
	    !zero(w->envelope_lens + w->nenvelopes, (SG_WIRE_MAX_ENVELOPES -
	    w->nenvelopes) * sizeof(w->envelope_lens[0])) ||
	    !zero(w->items + w->nitems, (SG_SIGNER_BATCH_MAX - w->nitems) *
	    sizeof(w->items[0])))
		return refuse(err, errlen, malformed);
	*want = sizeof(*w) + w->statement_len;
	for (i = 0; i < w->nenvelopes; i++) {
		if (w->envelope_lens[i] == 0 ||
		    w->envelope_lens[i] > SG_ENVELOPE_MAX) {
			snprintf(err, errlen, "envelope %zu: bad length",
			    i + 1);
			return SG_ERR_INVALID;
		}
		*want += w->envelope_lens[i];
	}
	if (w->statement_len == 0)
		return refuse(err, errlen, "no statement");
	return batch_items_len(w, want, err, errlen);
}

/* SIGN_BATCH: the fixed part is there (checked by the caller). */
static int
decode_batch(const uint8_t *buf, size_t len, const char *malformed,
    struct sg_wire_batch_req *ret, char *err, size_t errlen)
{
	struct sg_wire_sign_batch w;
	size_t i, off, want = 0;
	int r;

	memcpy(&w, buf, sizeof(w));
	if ((r = batch_fixed(&w, malformed, &want, err, errlen)) != 0)
		return r;
	if (want != len) {
		snprintf(err, errlen, "batch message is %zu bytes, its "
		    "lengths say %zu", len, want);
		return SG_ERR_INVALID;
	}
	if (sg_format_parse(w.format, &ret->sign.format) != 0)
		return refuse(err, errlen, malformed);
	memcpy(ret->sign.msg.key, w.key, sizeof(ret->sign.msg.key));
	ret->sign.statement = (const char *)buf + sizeof(w);
	ret->sign.statement_len = w.statement_len;
	off = sizeof(w) + w.statement_len;
	for (i = 0; i < w.nenvelopes; i++) {
		ret->sign.envelopes[i] = (const char *)buf + off;
		ret->sign.envelope_lens[i] = w.envelope_lens[i];
		off += w.envelope_lens[i];
	}
	ret->sign.nenvelopes = w.nenvelopes;
	for (i = 0; i < w.nitems; i++) {
		ret->items[i].position = w.items[i].position;
		ret->items[i].line = (const char *)buf + off;
		ret->items[i].line_len = w.items[i].line_len;
		off += w.items[i].line_len;
		ret->items[i].path = (const uint8_t (*)[SG_HASH_LEN])(buf +
		    off);
		ret->items[i].npath = w.items[i].npath;
		off += (size_t)w.items[i].npath * SG_HASH_LEN;
	}
	ret->nitems = w.nitems;
	return 0;
}

static int
decode_checkpoint(const uint8_t *buf, const char *malformed,
    struct sg_witness_request *ret, char *err, size_t errlen)
{
	uint32_t nproof;

	memcpy(&nproof, buf + offsetof(struct sg_wire_checkpoint, nproof),
	    sizeof(nproof));
	if (nproof > SG_MERKLE_MAX_PROOF)
		return refuse(err, errlen, malformed);
	memcpy(&ret->size, buf + offsetof(struct sg_wire_checkpoint, size),
	    sizeof(ret->size));
	memcpy(ret->root, buf + offsetof(struct sg_wire_checkpoint, root),
	    SG_HASH_LEN);
	memcpy(&ret->old_size, buf + offsetof(struct sg_wire_checkpoint,
	    old_size), sizeof(ret->old_size));
	ret->nproof = nproof;
	memcpy(ret->proof, buf + offsetof(struct sg_wire_checkpoint, proof),
	    (size_t)nproof * SG_HASH_LEN);
	return 0;
}

static int
decode_reload(const uint8_t *buf, const char *malformed,
    char ret[SG_SHA256_HEX_SIZE], char *err, size_t errlen)
{
	const size_t off = offsetof(struct sg_wire_text, text);
	uint32_t n;

	memcpy(&n, buf + offsetof(struct sg_wire_text, len), sizeof(n));
	if (n != SG_SHA256_HEX_LEN)
		return refuse(err, errlen, malformed);
	memcpy(ret, buf + off, SG_SHA256_HEX_LEN);
	ret[SG_SHA256_HEX_LEN] = '\0';
	return 0;
}

static int
decode_name(const uint8_t *buf, const char *malformed,
    char ret[SG_NAME_MAX], char *err, size_t errlen)
{
	const char *name = (const char *)buf +
	    offsetof(struct sg_wire_name, name);

	if (!terminated(name, SG_NAME_MAX))
		return refuse(err, errlen, malformed);
	memcpy(ret, name, SG_NAME_MAX);
	return 0;
}

/* The fields of a record whose header and length rule hold. */
static int
decode_body(const uint8_t *buf, size_t len,
    const struct sg_wire_type_info *ti, struct sg_wire_request *ret,
    char *err, size_t errlen)
{
	switch (ti->type) {
	case SG_WIRE_SIGN:
		return decode_sign(buf, len, ti->malformed, &ret->u.sign, err,
		    errlen);
	case SG_WIRE_SIGN_BATCH:
		return decode_batch(buf, len, ti->malformed, &ret->u.batch,
		    err, errlen);
	case SG_WIRE_CHECKPOINT:
		return decode_checkpoint(buf, ti->malformed,
		    &ret->u.checkpoint, err, errlen);
	case SG_WIRE_RELOAD:
		return decode_reload(buf, ti->malformed, ret->u.reload_sha256,
		    err, errlen);
	case SG_WIRE_PROBE:
	case SG_WIRE_KEYINFO:
		return decode_name(buf, ti->malformed, ret->u.name, err,
		    errlen);
	}
	/* A row sent to the signer without a decoder: a bug here. */
	snprintf(err, errlen, "unknown message type %u", ti->type);
	return SG_ERR_INTERNAL;
}

int
sg_wire_decode_request(const uint8_t *buf, size_t len,
    struct sg_wire_request *ret, char *err, size_t errlen)
{
	const struct sg_wire_type_info *ti;
	struct sg_wire_hdr h;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (len < sizeof(h) || len > SG_WIRE_MAX_MSG)
		return refuse(err, errlen, "malformed message");
	memcpy(&h, buf, sizeof(h));
	if (h.magic != SG_WIRE_MAGIC || h.len != len || h.reserved != 0)
		return refuse(err, errlen, "malformed message");
	if ((ti = sg_wire_type_info(h.type)) == NULL ||
	    ti->dir != SG_WIRE_TO_SIGNER) {
		snprintf(err, errlen, "unknown message type %u", h.type);
		return SG_ERR_INVALID;
	}
	if (ti->shape == SG_WIRE_EXACT ? len != ti->size : len < ti->size)
		return refuse(err, errlen, ti->malformed);
	if ((r = decode_body(buf, len, ti, ret, err, errlen)) != 0) {
		memset(ret, 0, sizeof(*ret));
		return r;
	}
	ret->type = h.type;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The front's side: requests out. */

void
sg_wire_hdr_init(struct sg_wire_hdr *h, uint32_t type, size_t len)
{
	h->magic = SG_WIRE_MAGIC;
	h->type = type;
	h->len = (uint32_t)len;
	h->reserved = 0;
	h->tag = 0;
}

void
sg_wire_set_tag(void *msg, uint64_t tag)
{
	memcpy((uint8_t *)msg + offsetof(struct sg_wire_hdr, tag), &tag,
	    sizeof(tag));
}

uint64_t
sg_wire_tag(const uint8_t *buf, size_t len)
{
	struct sg_wire_hdr h;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	return h.magic == SG_WIRE_MAGIC ? h.tag : 0;
}

uint32_t
sg_wire_type(const uint8_t *buf, size_t len)
{
	struct sg_wire_hdr h;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	return h.magic == SG_WIRE_MAGIC ? h.type : 0;
}

int
sg_wire_encode_sign(const struct sg_sign_msg *msg,
    const struct sg_sign_evidence *ev, uint8_t **ret, size_t *ret_len)
{
	struct sg_wire_sign *w;
	uint8_t *buf;
	size_t total, i, off;

	*ret = NULL;
	*ret_len = 0;
	if (ev == NULL || ev->n > SG_WIRE_MAX_ENVELOPES ||
	    msg->data_len > sizeof(w->data) ||
	    ev->statement_len > SG_STATEMENT_MAX ||
	    !fits(msg->key, sizeof(w->key)) ||
	    !sg_format_valid(ev->format))
		return SG_ERR_INVALID;
	total = sizeof(*w) + ev->statement_len;
	for (i = 0; i < ev->n; i++) {
		if (ev->envelope_lens[i] > SG_WIRE_MAX_MSG)
			return SG_ERR_TOO_LARGE;
		total += ev->envelope_lens[i];
	}
	if (total > SG_WIRE_MAX_MSG)
		return SG_ERR_TOO_LARGE;
	if ((buf = calloc(1, total)) == NULL)
		return SG_ERR_NOMEM;
	w = (struct sg_wire_sign *)buf;
	sg_wire_hdr_init(&w->h, SG_WIRE_SIGN, total);
	memcpy(w->key, msg->key, strlen(msg->key));
	w->digest_alg = (uint32_t)msg->digest_alg;
	w->data_len = (uint32_t)msg->data_len;
	memcpy(w->data, msg->data, msg->data_len);
	memcpy(w->format, sg_format_str(ev->format),
	    strlen(sg_format_str(ev->format)));
	w->statement_len = (uint32_t)ev->statement_len;
	w->nenvelopes = (uint32_t)ev->n;
	if (ev->statement_len > 0)
		memcpy(buf + sizeof(*w), ev->statement, ev->statement_len);
	off = sizeof(*w) + ev->statement_len;
	for (i = 0; i < ev->n; i++) {
		w->envelope_lens[i] = (uint32_t)ev->envelope_lens[i];
		memcpy(buf + off, ev->envelopes[i], ev->envelope_lens[i]);
		off += ev->envelope_lens[i];
	}
	*ret = buf;
	*ret_len = total;
	return 0;
}

/* SIGN_BATCH's size, or 0 when an argument is out of its limit. */
static size_t
batch_size(const char *key, const struct sg_sign_evidence *ev,
    const struct sg_batch_item *items, size_t n)
{
	size_t i, total;

	if (ev == NULL || items == NULL || n == 0 ||
	    n > SG_SIGNER_BATCH_MAX || ev->n > SG_WIRE_MAX_ENVELOPES ||
	    ev->statement_len > SG_STATEMENT_MAX ||
	    !fits(key, SG_NAME_MAX) || !sg_format_valid(ev->format))
		return 0;
	total = sizeof(struct sg_wire_sign_batch) + ev->statement_len;
	for (i = 0; i < ev->n; i++) {
		if (ev->envelope_lens[i] > SG_ENVELOPE_MAX)
			return SIZE_MAX;
		total += ev->envelope_lens[i];
	}
	for (i = 0; i < n; i++) {
		if (items[i].line_len == 0 ||
		    items[i].line_len > SG_ARTIFACT_LINE_MAX ||
		    items[i].npath > SG_MANIFEST_PATH_MAX ||
		    items[i].line == NULL ||
		    (items[i].npath > 0 && items[i].path == NULL))
			return 0;
		total += items[i].line_len + items[i].npath * SG_HASH_LEN;
	}
	return total;
}

int
sg_wire_encode_sign_batch(const char *key,
    const struct sg_sign_evidence *ev, const struct sg_batch_item *items,
    size_t n, uint8_t **ret, size_t *ret_len)
{
	struct sg_wire_sign_batch *w;
	uint8_t *buf;
	size_t total, i, off;

	*ret = NULL;
	*ret_len = 0;
	if ((total = batch_size(key, ev, items, n)) == 0)
		return SG_ERR_INVALID;
	if (total > SG_WIRE_MAX_MSG)
		return SG_ERR_TOO_LARGE;
	if ((buf = calloc(1, total)) == NULL)
		return SG_ERR_NOMEM;
	w = (struct sg_wire_sign_batch *)buf;
	sg_wire_hdr_init(&w->h, SG_WIRE_SIGN_BATCH, total);
	memcpy(w->key, key, strlen(key));
	memcpy(w->format, sg_format_str(ev->format),
	    strlen(sg_format_str(ev->format)));
	w->statement_len = (uint32_t)ev->statement_len;
	w->nenvelopes = (uint32_t)ev->n;
	w->nitems = (uint32_t)n;
	off = sizeof(*w);
	if (ev->statement_len > 0)
		memcpy(buf + off, ev->statement, ev->statement_len);
	off += ev->statement_len;
	for (i = 0; i < ev->n; i++) {
		w->envelope_lens[i] = (uint32_t)ev->envelope_lens[i];
		memcpy(buf + off, ev->envelopes[i], ev->envelope_lens[i]);
		off += ev->envelope_lens[i];
	}
	for (i = 0; i < n; i++) {
		w->items[i].position = items[i].position;
		w->items[i].line_len = (uint32_t)items[i].line_len;
		w->items[i].npath = (uint32_t)items[i].npath;
		memcpy(buf + off, items[i].line, items[i].line_len);
		off += items[i].line_len;
		if (items[i].npath > 0)
			memcpy(buf + off, items[i].path,
			    items[i].npath * SG_HASH_LEN);
		off += items[i].npath * SG_HASH_LEN;
	}
	*ret = buf;
	*ret_len = total;
	return 0;
}

int
sg_wire_encode_checkpoint(struct sg_wire_checkpoint *w,
    const struct sg_witness_request *req)
{
	memset(w, 0, sizeof(*w));
	if (req->nproof > SG_MERKLE_MAX_PROOF)
		return SG_ERR_INVALID;
	sg_wire_hdr_init(&w->h, SG_WIRE_CHECKPOINT, sizeof(*w));
	w->size = req->size;
	memcpy(w->root, req->root, SG_HASH_LEN);
	w->old_size = req->old_size;
	w->nproof = (uint32_t)req->nproof;
	memcpy(w->proof, req->proof, req->nproof * SG_HASH_LEN);
	return 0;
}

int
sg_wire_encode_name(struct sg_wire_name *w, uint32_t type, const char *name)
{
	memset(w, 0, sizeof(*w));
	if ((type != SG_WIRE_PROBE && type != SG_WIRE_KEYINFO) ||
	    !fits(name, sizeof(w->name)))
		return SG_ERR_INVALID;
	sg_wire_hdr_init(&w->h, type, sizeof(*w));
	memcpy(w->name, name, strlen(name));
	return 0;
}

int
sg_wire_encode_reload(struct sg_wire_text *w, const char *sha256_hex)
{
	memset(w, 0, sizeof(*w));
	if (sha256_hex == NULL || strlen(sha256_hex) != SG_SHA256_HEX_LEN)
		return SG_ERR_INVALID;
	sg_wire_hdr_init(&w->h, SG_WIRE_RELOAD, sizeof(*w));
	w->len = SG_SHA256_HEX_LEN;
	memcpy(w->text, sha256_hex, SG_SHA256_HEX_LEN);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Replies. */

int
sg_wire_encode_reply(struct sg_wire_reply *rep, const uint8_t *extra,
    size_t extra_len, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf;
	size_t n = sizeof(*rep) + extra_len;

	*ret = NULL;
	*ret_len = 0;
	if (extra_len > SG_SIGNER_MAX_CMS)
		return SG_ERR_TOO_LARGE;
	sg_wire_hdr_init(&rep->h, SG_WIRE_REPLY, n);
	rep->cms_len = (uint32_t)extra_len;
	if ((buf = malloc(n)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(buf, rep, sizeof(*rep));
	if (extra_len > 0)
		memcpy(buf + sizeof(*rep), extra, extra_len);
	*ret = buf;
	*ret_len = n;
	return 0;
}

static int
token_terminated(const struct sg_token_info *t)
{
	return terminated(t->label, sizeof(t->label)) &&
	    terminated(t->serial, sizeof(t->serial)) &&
	    terminated(t->manufacturer, sizeof(t->manufacturer)) &&
	    terminated(t->model, sizeof(t->model));
}

int
sg_wire_decode_reply(const uint8_t *buf, size_t len,
    struct sg_wire_reply *ret, const uint8_t **ret_extra)
{
	struct sg_wire_reply *rep = ret;

	memset(ret, 0, sizeof(*ret));
	*ret_extra = NULL;
	if (len < sizeof(*rep) || len > SG_WIRE_MAX_REPLY)
		return SG_ERR_INVALID;
	memcpy(rep, buf, sizeof(*rep));
	if (rep->h.magic != SG_WIRE_MAGIC || rep->h.type != SG_WIRE_REPLY ||
	    rep->h.len != len || rep->h.reserved != 0 ||
	    rep->cms_len != len - sizeof(*rep) ||
	    rep->sig_len > sizeof(rep->sig) ||
	    rep->der_len > sizeof(rep->der) ||
	    !terminated(rep->err, sizeof(rep->err)) ||
	    !token_terminated(&rep->token) ||
	    rep->status > 0 || rep->status < SG_ERR_MIN)
		goto bad;
	/* A refusal carries nothing that could be used. */
	if (rep->status != 0 && (rep->sig_len != 0 || rep->cms_len != 0 ||
	    rep->der_len != 0))
		goto bad;
	if (rep->cms_len > 0)
		*ret_extra = buf + sizeof(*rep);
	return 0;
bad:
	memset(ret, 0, sizeof(*ret));
	return SG_ERR_INVALID;
}

/* ------------------------------------------------------------------ */
/* Batch replies. */

/* The bytes items[0..n) add to a BATCH_REPLY; SIZE_MAX when one breaks
 * the rules (an error with bytes, a signature out of its limits). */
static size_t
batch_reply_data(const struct sg_batch_result *res, size_t n)
{
	size_t i, total = 0;

	for (i = 0; i < n; i++) {
		if (res[i].status > 0 || res[i].status < SG_ERR_MIN)
			return SIZE_MAX;
		if (res[i].status != 0) {
			if (res[i].sig_len != 0 || res[i].cms != NULL)
				return SIZE_MAX;
			continue;
		}
		if (res[i].sig_len == 0 || res[i].sig_len > SG_MAX_SIG ||
		    res[i].cms_len > SG_SIGNER_MAX_CMS ||
		    (res[i].cms == NULL) != (res[i].cms_len == 0))
			return SIZE_MAX;
		total += res[i].sig_len + res[i].cms_len;
	}
	return total;
}

int
sg_wire_encode_batch_reply(int status, const char *err,
    const struct sg_batch_result *res, size_t n, uint8_t **ret,
    size_t *ret_len)
{
	struct sg_wire_batch_reply *w;
	uint8_t *buf;
	size_t data, i, off;

	*ret = NULL;
	*ret_len = 0;
	if (status > 0 || status < SG_ERR_MIN || (status == 0 && (n == 0 ||
	    n > SG_SIGNER_BATCH_MAX || res == NULL)))
		return SG_ERR_INVALID;
	if (status != 0)
		n = 0;
	if ((data = batch_reply_data(res, n)) == SIZE_MAX)
		return SG_ERR_INVALID;
	if (data > SG_WIRE_BATCH_DATA_MAX)
		return SG_ERR_TOO_LARGE;
	if ((buf = calloc(1, sizeof(*w) + data)) == NULL)
		return SG_ERR_NOMEM;
	w = (struct sg_wire_batch_reply *)buf;
	sg_wire_hdr_init(&w->h, SG_WIRE_BATCH_REPLY, sizeof(*w) + data);
	w->status = status;
	snprintf(w->err, sizeof(w->err), "%s", err != NULL ? err : "");
	w->nitems = (uint32_t)n;
	off = sizeof(*w);
	for (i = 0; i < n; i++) {
		w->items[i].status = res[i].status;
		if (res[i].status != 0)
			continue;
		w->items[i].sig_len = (uint32_t)res[i].sig_len;
		w->items[i].cms_len = (uint32_t)res[i].cms_len;
		memcpy(buf + off, res[i].sig, res[i].sig_len);
		off += res[i].sig_len;
		if (res[i].cms_len > 0)
			memcpy(buf + off, res[i].cms, res[i].cms_len);
		off += res[i].cms_len;
	}
	*ret = buf;
	*ret_len = sizeof(*w) + data;
	return 0;
}

/* The items of a decoded BATCH_REPLY; their bytes' total, or SIZE_MAX. */
static size_t
batch_reply_items(const struct sg_wire_batch_reply *w)
{
	const struct sg_wire_batch_result *it;
	size_t i, total = 0;

	if (w->status != 0 ? w->nitems != 0 : w->nitems == 0 ||
	    w->nitems > SG_SIGNER_BATCH_MAX)
		return SIZE_MAX;
	if (!zero(w->items + w->nitems, (SG_SIGNER_BATCH_MAX - w->nitems) *
	    sizeof(w->items[0])))
		return SIZE_MAX;
	for (i = 0; i < w->nitems; i++) {
		it = &w->items[i];
		if (it->status > 0 || it->status < SG_ERR_MIN)
			return SIZE_MAX;
		/* A refusal carries nothing that could be used. */
		if (it->status != 0 && (it->sig_len != 0 || it->cms_len != 0))
			return SIZE_MAX;
		if (it->status == 0 && (it->sig_len == 0 ||
		    it->sig_len > SG_MAX_SIG ||
		    it->cms_len > SG_SIGNER_MAX_CMS))
			return SIZE_MAX;
		total += (size_t)it->sig_len + it->cms_len;
	}
	return total;
}

int
sg_wire_decode_batch_reply(const uint8_t *buf, size_t len,
    struct sg_wire_batch_reply *ret, const uint8_t **ret_extra)
{
	size_t data;

	memset(ret, 0, sizeof(*ret));
	*ret_extra = NULL;
	if (len < sizeof(*ret) || len > SG_WIRE_MAX_BATCH_REPLY)
		return SG_ERR_INVALID;
	memcpy(ret, buf, sizeof(*ret));
	if (ret->h.magic != SG_WIRE_MAGIC ||
	    ret->h.type != SG_WIRE_BATCH_REPLY || ret->h.len != len ||
	    ret->h.reserved != 0 ||
	    !terminated(ret->err, sizeof(ret->err)) ||
	    ret->status > 0 || ret->status < SG_ERR_MIN ||
	    (data = batch_reply_items(ret)) == SIZE_MAX ||
	    data > SG_WIRE_BATCH_DATA_MAX || data != len - sizeof(*ret)) {
		memset(ret, 0, sizeof(*ret));
		return SG_ERR_INVALID;
	}
	*ret_extra = buf + sizeof(*ret);
	return 0;
}

void
sg_batch_results_clear(struct sg_batch_result *r, size_t n)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(r[i].cms);
		explicit_bzero(&r[i], sizeof(r[i]));
	}
}
