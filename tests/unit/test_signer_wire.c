/*
 * Tests for the wire protocol between the front and the signer
 * (src/signer_wire.c): the table, the signer's decoder for every request
 * type (the exact length accepted, one byte short or long refused, lengths
 * that disagree with the record, unterminated strings, counts over their
 * bounds, unknown types, a bad magic), the encoders round-tripping through
 * the decoder, and the front's check of replies; the same for SIGN_BATCH
 * and BATCH_REPLY.  Then the signer's side of a batch, served in memory
 * (sg_signer_child.h, keys held here): a release's items in and out of
 * its manifest, a grant's count, pattern and end (a front asking for N+1
 * signatures under a grant of N, or a second digest for one slot), the
 * quorum, the kinds not crossing between SIGN and SIGN_BATCH, CMS, and
 * channels racing for the same positions (each signed once).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "sg_cms.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_policy.h"
#include "sg_signer_child.h"
#include "sg_signer_proc.h"
#include "sg_signer_wire.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

static const uint32_t request_types[] = {
	SG_WIRE_SIGN, SG_WIRE_CHECKPOINT, SG_WIRE_PROBE, SG_WIRE_KEYINFO,
	SG_WIRE_RELOAD, SG_WIRE_SIGN_BATCH,
};
#define NREQUEST_TYPES (sizeof(request_types) / sizeof(request_types[0]))

#define SHA_HEX \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const char statement[] = "a statement: any bytes here";
static const char *const envelopes[] = { "{\"env\":1}", "{\"envelope\":2}",
	"{\"e\":3}" };
static const size_t envelope_lens[] = { 9, 14, 7 };

/* A valid SIGN as the front builds it, with n envelopes. */
static uint8_t *
sign_msg(size_t n, size_t *ret_len)
{
	struct sg_sign_msg m;
	struct sg_sign_evidence ev;
	uint8_t *buf = NULL;
	size_t i;

	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "release");
	m.digest_alg = SG_DIGEST_SHA256;
	for (i = 0; i < 32; i++)
		m.data[i] = (uint8_t)i;
	m.data_len = 32;
	memset(&ev, 0, sizeof(ev));
	ev.statement = statement;
	ev.statement_len = strlen(statement);
	ev.envelopes = envelopes;
	ev.envelope_lens = envelope_lens;
	ev.n = n;
	ev.format = SG_FORMAT_CMS;
	if (sg_wire_encode_sign(&m, &ev, &buf, ret_len) != 0)
		abort();
	return buf;
}

static struct sg_witness_request *
ckpt_req(size_t nproof)
{
	struct sg_witness_request *req;
	size_t i;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		abort();
	req->size = 1000;
	req->old_size = 999;
	memset(req->root, 0xab, sizeof(req->root));
	for (i = 0; i < nproof; i++)
		memset(req->proof[i], (int)i + 1, SG_HASH_LEN);
	req->nproof = nproof;
	return req;
}

/* Three artifact lines (any bytes here: the wire does not parse them). */
static const char *const batch_lines[] = {
	"sha256:00 raw a.bin", "sha256:11 raw b.bin 1.0", "x",
};
static uint8_t batch_path[SG_MANIFEST_PATH_MAX][SG_HASH_LEN];

/* Item i of a test batch: positions 5, 6, 7; paths of 0, 3 and the
 * most hashes. */
static void
batch_items(struct sg_batch_item *items, size_t n)
{
	static const size_t npath[] = { 0, 3, SG_MANIFEST_PATH_MAX };
	size_t i;

	for (i = 0; i < SG_MANIFEST_PATH_MAX; i++)
		memset(batch_path[i], (int)(0x40 + i), SG_HASH_LEN);
	memset(items, 0, n * sizeof(*items));
	for (i = 0; i < n; i++) {
		items[i].position = 5 + i;
		items[i].line = batch_lines[i % 3];
		items[i].line_len = strlen(batch_lines[i % 3]);
		items[i].path = (const uint8_t (*)[SG_HASH_LEN])batch_path;
		items[i].npath = npath[i % 3];
	}
}

/* A valid SIGN_BATCH with n items and 3 envelopes. */
static uint8_t *
batch_msg(size_t n, size_t *ret_len)
{
	struct sg_batch_item items[SG_SIGNER_BATCH_MAX];
	struct sg_sign_evidence ev;
	uint8_t *buf = NULL;

	batch_items(items, n);
	memset(&ev, 0, sizeof(ev));
	ev.statement = statement;
	ev.statement_len = strlen(statement);
	ev.envelopes = envelopes;
	ev.envelope_lens = envelope_lens;
	ev.n = 3;
	ev.format = SG_FORMAT_RAW;
	if (sg_wire_encode_sign_batch("release", &ev, items, n, &buf,
	    ret_len) != 0)
		abort();
	return buf;
}

/* A valid message of each request type, malloc'd. */
static uint8_t *
valid_msg(uint32_t type, size_t *ret_len)
{
	struct sg_witness_request *req;
	uint8_t *buf;
	int r = SG_ERR_INTERNAL;

	switch (type) {
	case SG_WIRE_SIGN:
		return sign_msg(3, ret_len);
	case SG_WIRE_SIGN_BATCH:
		return batch_msg(3, ret_len);
	case SG_WIRE_CHECKPOINT:
		*ret_len = sizeof(struct sg_wire_checkpoint);
		req = ckpt_req(5);
		if ((buf = malloc(*ret_len)) != NULL)
			r = sg_wire_encode_checkpoint(
			    (struct sg_wire_checkpoint *)buf, req);
		free(req);
		break;
	case SG_WIRE_PROBE:
	case SG_WIRE_KEYINFO:
		*ret_len = sizeof(struct sg_wire_name);
		if ((buf = malloc(*ret_len)) != NULL)
			r = sg_wire_encode_name((struct sg_wire_name *)buf,
			    type, "nightly");
		break;
	case SG_WIRE_RELOAD:
		*ret_len = sizeof(struct sg_wire_text);
		if ((buf = malloc(*ret_len)) != NULL)
			r = sg_wire_encode_reload((struct sg_wire_text *)buf,
			    SHA_HEX);
		break;
	default:
		abort();
	}
	if (buf == NULL || r != 0)
		abort();
	return buf;
}

/* The record's first len bytes, with room up to cap, zero-filled; the
 * header's len set to hlen. */
static uint8_t *
resized(const uint8_t *msg, size_t msg_len, size_t len, size_t hlen)
{
	uint8_t *buf;
	uint32_t h = (uint32_t)hlen;

	if ((buf = calloc(1, len + 1)) == NULL)
		abort();
	memcpy(buf, msg, msg_len < len ? msg_len : len);
	if (len >= sizeof(struct sg_wire_hdr))
		memcpy(buf + offsetof(struct sg_wire_hdr, len), &h, sizeof(h));
	return buf;
}

/* Decodes and expects a refusal whose reason contains word. */
static int
refused(const uint8_t *buf, size_t len, const char *word)
{
	struct sg_wire_request *req = calloc(1, sizeof(*req));
	char err[SG_SIGNER_ERR_MAX];
	int r, ok;

	if (req == NULL)
		abort();
	err[0] = '\0';
	r = sg_wire_decode_request(buf, len, req, err, sizeof(err));
	ok = r == SG_ERR_INVALID && (word == NULL || strstr(err, word) !=
	    NULL) && req->type == 0;
	if (!ok)
		fprintf(stderr, "  decode: %d (%s), want refusal with '%s'\n",
		    r, err, word != NULL ? word : "");
	free(req);
	return ok;
}

static int
accepted(const uint8_t *buf, size_t len, struct sg_wire_request *req)
{
	char err[SG_SIGNER_ERR_MAX];
	int r;

	err[0] = '\0';
	r = sg_wire_decode_request(buf, len, req, err, sizeof(err));
	if (r != 0)
		fprintf(stderr, "  decode: %d (%s), want accepted\n", r, err);
	return r == 0;
}

static void
test_table(void)
{
	const struct sg_wire_type_info *ti;
	uint32_t t;
	size_t i, to_signer = 0;

	for (t = SG_WIRE_READY; t <= SG_WIRE_BATCH_REPLY; t++) {
		ti = sg_wire_type_info(t);
		CHECK(ti != NULL && ti->type == t && ti->name != NULL &&
		    ti->malformed != NULL && ti->size >=
		    sizeof(struct sg_wire_hdr));
		if (ti != NULL && ti->dir == SG_WIRE_TO_SIGNER)
			to_signer++;
	}
	CHECK_EQ_INT(to_signer, NREQUEST_TYPES);
	for (i = 0; i < NREQUEST_TYPES; i++) {
		ti = sg_wire_type_info(request_types[i]);
		CHECK(ti != NULL && ti->dir == SG_WIRE_TO_SIGNER);
	}
	CHECK(sg_wire_type_info(0) == NULL);
	CHECK(sg_wire_type_info(SG_WIRE_BATCH_REPLY + 1) == NULL);
	CHECK(sg_wire_type_info(SG_WIRE_BATCH_REPLY)->dir == SG_WIRE_TO_FRONT);
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_SIGN_BATCH)->size,
	    sizeof(struct sg_wire_sign_batch));
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_SIGN_BATCH)->shape,
	    SG_WIRE_DECLARED);
	/* Both batch messages fit the kernel's default socket buffer. */
	CHECK(SG_WIRE_MAX_BATCH_REPLY <= 212992 - 32);
	CHECK(SG_WIRE_MAX_MSG <= 212992 - 32);
	CHECK(sg_wire_type_info(SG_WIRE_READY)->dir == SG_WIRE_NONE);
	CHECK(sg_wire_type_info(SG_WIRE_REPLY)->dir == SG_WIRE_TO_FRONT);
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_SIGN)->size,
	    sizeof(struct sg_wire_sign));
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_SIGN)->shape,
	    SG_WIRE_DECLARED);
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_CHECKPOINT)->size,
	    sizeof(struct sg_wire_checkpoint));
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_PROBE)->size,
	    sizeof(struct sg_wire_name));
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_KEYINFO)->size,
	    sizeof(struct sg_wire_name));
	CHECK_EQ_INT(sg_wire_type_info(SG_WIRE_RELOAD)->size,
	    sizeof(struct sg_wire_text));
}

/* Every request type: its exact length is accepted; one byte short or
 * long is refused, whether the header agrees with the record or not. */
static void
test_exact_lengths(void)
{
	struct sg_wire_request *req = calloc(1, sizeof(*req));
	const struct sg_wire_type_info *ti;
	uint8_t *msg, *b;
	size_t i, len;
	int d;

	if (req == NULL)
		abort();
	for (i = 0; i < NREQUEST_TYPES; i++) {
		ti = sg_wire_type_info(request_types[i]);
		msg = valid_msg(request_types[i], &len);
		CHECK(accepted(msg, len, req));
		CHECK_EQ_INT(req->type, request_types[i]);
		for (d = -1; d <= 1; d += 2) {
			size_t n = len + (size_t)d;
			/* The header says n: the type's length rule. */
			b = resized(msg, len, n, n);
			CHECK(refused(b, n, ti->shape == SG_WIRE_EXACT ?
			    ti->malformed : "its lengths say"));
			free(b);
			/* The header says len, the record is n. */
			b = resized(msg, len, n, len);
			CHECK(refused(b, n, "malformed message"));
			free(b);
		}
		free(msg);
	}
	free(req);
}

/* One field of SIGN message msg (len bytes, w its fixed part) changed:
 * refused with word; then restored. */
#define MUTATED(stmt_, word) do {					\
	struct sg_wire_sign saved_ = *w;				\
	stmt_;								\
	CHECK(refused(msg, len, word));					\
	*w = saved_;							\
} while (0)

/* SIGN: the fixed part short, and declared lengths that disagree. */
static void
test_sign_lengths(void)
{
	struct sg_wire_sign *w;
	uint8_t *msg, *b;
	size_t len, n;

	msg = sign_msg(3, &len);
	w = (struct sg_wire_sign *)msg;
	/* Shorter than the fixed part, the header agreeing. */
	n = sizeof(*w) - 1;
	b = resized(msg, len, n, n);
	CHECK(refused(b, n, "malformed sign message"));
	free(b);
	n = sizeof(struct sg_wire_hdr);
	b = resized(msg, len, n, n);
	CHECK(refused(b, n, "malformed sign message"));
	free(b);

	MUTATED(w->statement_len += 1, "its lengths say");
	MUTATED(w->statement_len -= 1, "its lengths say");
	MUTATED(w->envelope_lens[2] += 1, "its lengths say");
	MUTATED(w->envelope_lens[0] -= 1, "its lengths say");
	MUTATED(w->nenvelopes = 2, "its lengths say");
	MUTATED(w->nenvelopes = 4; w->envelope_lens[3] = 1, "its lengths say");
	MUTATED(w->envelope_lens[1] = 0, "envelope 2: bad length");
	MUTATED(w->envelope_lens[1] = SG_ENVELOPE_MAX + 1,
	    "envelope 2: bad length");
	MUTATED(w->envelope_lens[1] = 0xffffffffu, "envelope 2: bad length");
	MUTATED(w->nenvelopes = 4, "envelope 4: bad length");
	MUTATED(w->statement_len = 0; w->envelope_lens[0] +=
	    (uint32_t)strlen(statement), "no statement");
	MUTATED(w->statement_len = SG_STATEMENT_MAX + 1,
	    "malformed sign message");
	MUTATED(w->statement_len = 0xffffffffu, "malformed sign message");
	MUTATED(w->nenvelopes = SG_WIRE_MAX_ENVELOPES + 1,
	    "malformed sign message");
	MUTATED(w->nenvelopes = 0xffffffffu, "malformed sign message");
	MUTATED(w->data_len = SG_MAX_DIGEST + 1, "malformed sign message");
	/* Boundaries moved inside the same total: the wire cannot tell;
	 * the evidence check refuses such envelopes. */
	{
		struct sg_wire_request *req = calloc(1, sizeof(*req));
		struct sg_wire_sign saved = *w;
		if (req == NULL)
			abort();
		w->envelope_lens[0] -= 1;
		w->envelope_lens[1] += 1;
		CHECK(accepted(msg, len, req));
		CHECK_EQ_INT(req->u.sign.envelope_lens[0], envelope_lens[0] - 1);
		*w = saved;
		free(req);
	}
	free(msg);

	/* No envelopes at all, and the largest count. */
	{
		struct sg_wire_request *req = calloc(1, sizeof(*req));
		if (req == NULL)
			abort();
		msg = sign_msg(0, &len);
		CHECK_EQ_INT(len, sizeof(*w) + strlen(statement));
		CHECK(accepted(msg, len, req) && req->u.sign.nenvelopes == 0);
		free(msg);
		free(req);
	}
}

/* Fixed strings must end inside their fields. */
static void
test_unterminated(void)
{
	struct sg_wire_sign *w;
	struct sg_wire_name wn;
	uint8_t *msg;
	size_t len;

	msg = sign_msg(1, &len);
	w = (struct sg_wire_sign *)msg;
	MUTATED(memset(w->key, 'k', sizeof(w->key)), "malformed sign message");
	MUTATED(memcpy(w->format, "rawx", 4), "malformed sign message");
	/* Terminated, but not a format. */
	MUTATED(memcpy(w->format, "pem", 4), "malformed sign message");
	MUTATED(memset(w->format, 0, sizeof(w->format)),
	    "malformed sign message");
	/* The last byte of the field is a NUL: accepted. */
	{
		struct sg_wire_request *req = calloc(1, sizeof(*req));
		struct sg_wire_sign saved = *w;
		if (req == NULL)
			abort();
		memset(w->key, 'k', sizeof(w->key) - 1);
		w->key[sizeof(w->key) - 1] = '\0';
		CHECK(accepted(msg, len, req));
		CHECK_EQ_INT(strlen(req->u.sign.msg.key), sizeof(w->key) - 1);
		*w = saved;
		free(req);
	}
	free(msg);
	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_PROBE, "x"), 0);
	memset(wn.name, 'n', sizeof(wn.name));
	CHECK(refused((uint8_t *)&wn, sizeof(wn), "malformed probe message"));
	wn.h.type = SG_WIRE_KEYINFO;
	CHECK(refused((uint8_t *)&wn, sizeof(wn), "malformed keyinfo message"));
}

static void
test_header(void)
{
	struct sg_wire_request *req;
	struct sg_wire_name wn;
	uint8_t *big;
	uint32_t types[] = { 0, SG_WIRE_READY, SG_WIRE_REPLY,
	    SG_WIRE_BATCH_REPLY, SG_WIRE_BATCH_REPLY + 1, 99, 0xffffffffu };
	char want[64];
	size_t i;

	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_KEYINFO, "nightly"), 0);
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		wn.h.type = types[i];
		snprintf(want, sizeof(want), "unknown message type %u",
		    types[i]);
		CHECK(refused((uint8_t *)&wn, sizeof(wn), want));
	}
	wn.h.type = SG_WIRE_KEYINFO;
	wn.h.magic = SG_WIRE_MAGIC + 1;
	CHECK(refused((uint8_t *)&wn, sizeof(wn), "malformed message"));
	/* The untagged protocol's ("SGS1"): its header was 12 bytes. */
	wn.h.magic = 0x53475331u;
	CHECK(refused((uint8_t *)&wn, sizeof(wn), "malformed message"));
	wn.h.magic = SG_WIRE_MAGIC;
	/* The tag is the front's to choose; the reserved word must be 0. */
	if ((req = calloc(1, sizeof(*req))) == NULL)
		abort();
	wn.h.tag = UINT64_MAX;
	CHECK(accepted((uint8_t *)&wn, sizeof(wn), req));
	CHECK_EQ_INT(sg_wire_tag((uint8_t *)&wn, sizeof(wn)) == UINT64_MAX,
	    1);
	wn.h.tag = 0;
	CHECK(accepted((uint8_t *)&wn, sizeof(wn), req));
	free(req);
	wn.h.reserved = 1;
	CHECK(refused((uint8_t *)&wn, sizeof(wn), "malformed message"));
	wn.h.reserved = 0x80000000u;
	CHECK(refused((uint8_t *)&wn, sizeof(wn), "malformed message"));
	wn.h.reserved = 0;
	wn.h.len = 0;
	CHECK(refused((uint8_t *)&wn, sizeof(wn), "malformed message"));
	wn.h.len = sizeof(wn);
	CHECK(refused((uint8_t *)&wn, 0, "malformed message"));
	CHECK(refused((uint8_t *)&wn, sizeof(wn.h) - 1, "malformed message"));
	/* A header alone, agreeing with itself: too short for the type. */
	wn.h.len = sizeof(wn.h);
	CHECK(refused((uint8_t *)&wn, sizeof(wn.h), "malformed keyinfo"));
	/* Over the largest message, the header agreeing. */
	if ((big = calloc(1, SG_WIRE_MAX_MSG + 1)) == NULL)
		abort();
	sg_wire_hdr_init((struct sg_wire_hdr *)big, SG_WIRE_SIGN,
	    SG_WIRE_MAX_MSG + 1);
	CHECK(refused(big, SG_WIRE_MAX_MSG + 1, "malformed message"));
	/* Exactly the largest size, with declared lengths that disagree. */
	sg_wire_hdr_init((struct sg_wire_hdr *)big, SG_WIRE_SIGN,
	    SG_WIRE_MAX_MSG);
	((struct sg_wire_sign *)big)->statement_len = 100;
	CHECK(refused(big, SG_WIRE_MAX_MSG, "its lengths say"));
	free(big);
}

static void
test_small_fields(void)
{
	struct sg_wire_checkpoint *w = calloc(1, sizeof(*w));
	struct sg_witness_request *req = ckpt_req(SG_MERKLE_MAX_PROOF);
	struct sg_wire_request *got = calloc(1, sizeof(*got));
	struct sg_wire_text wt;

	if (w == NULL || got == NULL)
		abort();
	CHECK_EQ_INT(sg_wire_encode_checkpoint(w, req), 0);
	CHECK(accepted((uint8_t *)w, sizeof(*w), got));
	CHECK_EQ_INT(got->u.checkpoint.nproof, SG_MERKLE_MAX_PROOF);
	w->nproof = SG_MERKLE_MAX_PROOF + 1;
	CHECK(refused((uint8_t *)w, sizeof(*w), "malformed checkpoint"));
	w->nproof = 0xffffffffu;
	CHECK(refused((uint8_t *)w, sizeof(*w), "malformed checkpoint"));

	CHECK_EQ_INT(sg_wire_encode_reload(&wt, SHA_HEX), 0);
	wt.len = 63;
	CHECK(refused((uint8_t *)&wt, sizeof(wt), "malformed reload"));
	wt.len = 65;
	CHECK(refused((uint8_t *)&wt, sizeof(wt), "malformed reload"));
	free(w);
	free(req);
	free(got);
}

/* What the front encodes is what the signer decodes. */
static void
test_round_trip(void)
{
	struct sg_wire_request *got = calloc(1, sizeof(*got));
	struct sg_wire_checkpoint *w = calloc(1, sizeof(*w));
	struct sg_witness_request *req = ckpt_req(7);
	struct sg_wire_name wn;
	struct sg_wire_text wt;
	uint8_t *msg;
	size_t len, i;

	if (got == NULL || w == NULL)
		abort();
	msg = sign_msg(3, &len);
	CHECK_EQ_INT(len, sizeof(struct sg_wire_sign) + strlen(statement) +
	    9 + 14 + 7);
	CHECK(accepted(msg, len, got));
	CHECK_STR(got->u.sign.msg.key, "release");
	CHECK_EQ_INT(got->u.sign.format, SG_FORMAT_CMS);
	CHECK_EQ_INT(got->u.sign.msg.digest_alg, SG_DIGEST_SHA256);
	CHECK_EQ_INT(got->u.sign.msg.data_len, 32);
	CHECK(got->u.sign.msg.data[31] == 31);
	CHECK(got->u.sign.statement_len == strlen(statement) &&
	    memcmp(got->u.sign.statement, statement, strlen(statement)) == 0);
	CHECK_EQ_INT(got->u.sign.nenvelopes, 3);
	for (i = 0; i < 3; i++)
		CHECK(got->u.sign.envelope_lens[i] == envelope_lens[i] &&
		    memcmp(got->u.sign.envelopes[i], envelopes[i],
		    envelope_lens[i]) == 0);
	free(msg);

	CHECK_EQ_INT(sg_wire_encode_checkpoint(w, req), 0);
	CHECK(accepted((uint8_t *)w, sizeof(*w), got));
	CHECK(got->u.checkpoint.size == 1000 &&
	    got->u.checkpoint.old_size == 999 &&
	    got->u.checkpoint.nproof == 7 &&
	    memcmp(got->u.checkpoint.root, req->root, SG_HASH_LEN) == 0 &&
	    memcmp(got->u.checkpoint.proof, req->proof, 7 * SG_HASH_LEN) == 0);

	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_PROBE, "firmware"), 0);
	CHECK(accepted((uint8_t *)&wn, sizeof(wn), got));
	CHECK_EQ_INT(got->type, SG_WIRE_PROBE);
	CHECK_STR(got->u.name, "firmware");
	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_KEYINFO, "@log"), 0);
	CHECK(accepted((uint8_t *)&wn, sizeof(wn), got));
	CHECK_EQ_INT(got->type, SG_WIRE_KEYINFO);
	CHECK_STR(got->u.name, "@log");

	CHECK_EQ_INT(sg_wire_encode_reload(&wt, SHA_HEX), 0);
	CHECK(accepted((uint8_t *)&wt, sizeof(wt), got));
	CHECK_EQ_INT(got->type, SG_WIRE_RELOAD);
	CHECK_STR(got->u.reload_sha256, SHA_HEX);
	free(w);
	free(req);
	free(got);
}

/* The encoders refuse what they cannot say faithfully. */
static void
test_encode_refusals(void)
{
	struct sg_sign_msg m;
	struct sg_sign_evidence ev;
	struct sg_witness_request *req = ckpt_req(0);
	struct sg_wire_checkpoint *w = calloc(1, sizeof(*w));
	struct sg_wire_name wn;
	struct sg_wire_text wt;
	const char *many[SG_WIRE_MAX_ENVELOPES + 1];
	size_t lens[SG_WIRE_MAX_ENVELOPES + 1], len, i;
	char longname[SG_NAME_MAX + 1];
	uint8_t *buf = NULL;

	if (w == NULL)
		abort();
	for (i = 0; i <= SG_WIRE_MAX_ENVELOPES; i++) {
		many[i] = "{}";
		lens[i] = 2;
	}
	memset(longname, 'a', SG_NAME_MAX);
	longname[SG_NAME_MAX] = '\0';
	memset(&m, 0, sizeof(m));
	snprintf(m.key, sizeof(m.key), "k");
	m.data_len = 32;
	memset(&ev, 0, sizeof(ev));
	ev.statement = statement;
	ev.statement_len = strlen(statement);
	ev.envelopes = many;
	ev.envelope_lens = lens;
	ev.format = SG_FORMAT_RAW;
	ev.n = SG_WIRE_MAX_ENVELOPES;
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len), 0);
	free(buf);
	ev.n = SG_WIRE_MAX_ENVELOPES + 1;
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len),
	    SG_ERR_INVALID);
	CHECK(buf == NULL);
	ev.n = 1;
	ev.format = (enum sg_format)0;
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len),
	    SG_ERR_INVALID);
	ev.format = (enum sg_format)(SG_FORMAT_RAW | SG_FORMAT_CMS);
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len),
	    SG_ERR_INVALID);
	ev.format = SG_FORMAT_RAW;
	m.data_len = SG_MAX_DIGEST + 1;
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len),
	    SG_ERR_INVALID);
	m.data_len = 32;
	ev.statement_len = SG_STATEMENT_MAX + 1;
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len),
	    SG_ERR_INVALID);
	ev.statement_len = strlen(statement);
	memset(m.key, 'k', sizeof(m.key));
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len),
	    SG_ERR_INVALID);
	snprintf(m.key, sizeof(m.key), "k");
	lens[0] = SG_WIRE_MAX_MSG;
	CHECK_EQ_INT(sg_wire_encode_sign(&m, &ev, &buf, &len),
	    SG_ERR_TOO_LARGE);
	CHECK_EQ_INT(sg_wire_encode_sign(&m, NULL, &buf, &len),
	    SG_ERR_INVALID);

	req->nproof = SG_MERKLE_MAX_PROOF + 1;
	CHECK_EQ_INT(sg_wire_encode_checkpoint(w, req), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_PROBE, longname),
	    SG_ERR_INVALID);
	longname[SG_NAME_MAX - 1] = '\0';
	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_PROBE, longname), 0);
	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_SIGN, "k"),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wire_encode_reload(&wt, "abc"), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wire_encode_reload(&wt, SHA_HEX "0"), SG_ERR_INVALID);
	free(req);
	free(w);
}

/* A reply as the signer sends it, with extra bytes of CMS. */
static uint8_t *
reply_msg(int status, size_t sig_len, size_t extra_len, size_t *ret_len)
{
	struct sg_wire_reply *rep = calloc(1, sizeof(*rep));
	uint8_t *extra = calloc(1, extra_len + 1), *buf = NULL;

	if (rep == NULL || extra == NULL)
		abort();
	rep->status = status;
	snprintf(rep->err, sizeof(rep->err), "%s", status ? "refused" : "");
	rep->sig_len = (uint32_t)sig_len;
	memset(rep->sig, 0x5a, sig_len);
	memset(extra, 0x33, extra_len);
	if (sg_wire_encode_reply(rep, extra, extra_len, &buf, ret_len) != 0)
		abort();
	free(rep);
	free(extra);
	return buf;
}

static int
reply_ok(const uint8_t *buf, size_t len)
{
	struct sg_wire_reply rep;
	const uint8_t *extra;

	return sg_wire_decode_reply(buf, len, &rep, &extra) == 0;
}

static void
test_replies(void)
{
	struct sg_wire_reply rep, *w;
	const uint8_t *extra;
	uint8_t *buf, *b;
	size_t len;

	buf = reply_msg(0, 70, 100, &len);
	CHECK_EQ_INT(len, sizeof(rep) + 100);
	CHECK_EQ_INT(sg_wire_decode_reply(buf, len, &rep, &extra), 0);
	CHECK(rep.status == 0 && rep.sig_len == 70 && rep.cms_len == 100 &&
	    rep.sig[69] == 0x5a && extra == buf + sizeof(rep) &&
	    extra[99] == 0x33);
	w = (struct sg_wire_reply *)buf;
	CHECK(!reply_ok(buf, len - 1));
	b = resized(buf, len, len + 1, len + 1);
	CHECK(!reply_ok(b, len + 1));
	free(b);
	b = resized(buf, len, len - 1, len - 1);
	CHECK(!reply_ok(b, len - 1));
	free(b);
#define BROKEN(stmt_) do {						\
	struct sg_wire_reply saved_ = *w;				\
	stmt_;								\
	CHECK(!reply_ok(buf, len));					\
	*w = saved_;							\
} while (0)
	BROKEN(w->h.magic ^= 1);
	BROKEN(w->h.reserved = 1);
	BROKEN(w->h.type = SG_WIRE_READY);
	BROKEN(w->h.type = SG_WIRE_SIGN);
	BROKEN(w->cms_len += 1);
	BROKEN(w->sig_len = SG_MAX_SIG + 1);
	BROKEN(w->der_len = sizeof(w->der) + 1);
	BROKEN(memset(w->err, 'e', sizeof(w->err)));
	BROKEN(memset(w->token.serial, '1', sizeof(w->token.serial)));
	BROKEN(w->status = 1);
	BROKEN(w->status = SG_ERR_MIN - 1);
	/* A refusal that carries a signature, CMS or a public key. */
	BROKEN(w->status = SG_ERR_FORBIDDEN);
	BROKEN(w->status = SG_ERR_FORBIDDEN; w->sig_len = 0);
	CHECK(reply_ok(buf, len));
	free(buf);

	/* Refusals as the signer sends them; a fixed part alone. */
	buf = reply_msg(SG_ERR_VERIFY, 0, 0, &len);
	CHECK_EQ_INT(sg_wire_decode_reply(buf, len, &rep, &extra), 0);
	CHECK(rep.status == SG_ERR_VERIFY && extra == NULL &&
	    strcmp(rep.err, "refused") == 0);
	w = (struct sg_wire_reply *)buf;
	BROKEN(w->der_len = 1);
	BROKEN(w->sig_len = 1);
	free(buf);
#undef BROKEN
	CHECK(!reply_ok((const uint8_t *)"", 0));
	/* The encoder refuses a CMS over the limit. */
	{
		struct sg_wire_reply *r = calloc(1, sizeof(*r));
		if (r == NULL)
			abort();
		buf = NULL;
		CHECK_EQ_INT(sg_wire_encode_reply(r, NULL,
		    SG_SIGNER_MAX_CMS + 1, &buf, &len), SG_ERR_TOO_LARGE);
		CHECK(buf == NULL);
		free(r);
	}
}

/* ------------------------------------------------------------------ */
/* SIGN_BATCH and BATCH_REPLY. */

static void
test_batch_round_trip(void)
{
	struct sg_wire_request *got = calloc(1, sizeof(*got));
	struct sg_batch_item items[SG_SIGNER_BATCH_MAX];
	const struct sg_wire_batch_req *b;
	uint8_t *msg;
	size_t len, i, want;

	if (got == NULL)
		abort();
	batch_items(items, SG_SIGNER_BATCH_MAX);
	msg = batch_msg(SG_SIGNER_BATCH_MAX, &len);
	want = sizeof(struct sg_wire_sign_batch) + strlen(statement) + 30;
	for (i = 0; i < SG_SIGNER_BATCH_MAX; i++)
		want += items[i].line_len + items[i].npath * SG_HASH_LEN;
	CHECK_EQ_INT(len, want);
	CHECK(accepted(msg, len, got));
	CHECK_EQ_INT(got->type, SG_WIRE_SIGN_BATCH);
	b = &got->u.batch;
	CHECK_STR(b->sign.msg.key, "release");
	CHECK_EQ_INT(b->sign.msg.data_len, 0);
	CHECK_EQ_INT(b->sign.format, SG_FORMAT_RAW);
	CHECK(b->sign.statement_len == strlen(statement) &&
	    memcmp(b->sign.statement, statement, strlen(statement)) == 0);
	CHECK_EQ_INT(b->sign.nenvelopes, 3);
	for (i = 0; i < 3; i++)
		CHECK(b->sign.envelope_lens[i] == envelope_lens[i] &&
		    memcmp(b->sign.envelopes[i], envelopes[i],
		    envelope_lens[i]) == 0);
	CHECK_EQ_INT(b->nitems, SG_SIGNER_BATCH_MAX);
	for (i = 0; i < b->nitems; i++) {
		CHECK(b->items[i].position == items[i].position &&
		    b->items[i].line_len == items[i].line_len &&
		    memcmp(b->items[i].line, items[i].line,
		    items[i].line_len) == 0 &&
		    b->items[i].npath == items[i].npath &&
		    (items[i].npath == 0 || memcmp(b->items[i].path,
		    items[i].path, items[i].npath * SG_HASH_LEN) == 0));
	}
	free(msg);
	free(got);
}

/* One field of SIGN_BATCH message msg (len bytes, w its fixed part)
 * changed: refused with word; then restored. */
#define MUTATED_B(stmt_, word) do {					\
	struct sg_wire_sign_batch saved_ = *w;				\
	stmt_;								\
	CHECK(refused(msg, len, word));					\
	*w = saved_;							\
} while (0)

static void
test_batch_lengths(void)
{
	struct sg_wire_sign_batch *w;
	uint8_t *msg, *b;
	size_t len, n;

	msg = batch_msg(3, &len);
	w = (struct sg_wire_sign_batch *)msg;
	n = sizeof(*w) - 1;
	b = resized(msg, len, n, n);
	CHECK(refused(b, n, "malformed batch message"));
	free(b);
	MUTATED_B(w->statement_len += 1, "its lengths say");
	MUTATED_B(w->statement_len = 0; w->envelope_lens[0] +=
	    (uint32_t)strlen(statement), "no statement");
	MUTATED_B(w->envelope_lens[2] += 1, "its lengths say");
	MUTATED_B(w->envelope_lens[1] = 0, "envelope 2: bad length");
	MUTATED_B(w->nenvelopes = 2, "malformed batch message");
	MUTATED_B(w->nenvelopes = SG_WIRE_MAX_ENVELOPES + 1,
	    "malformed batch message");
	MUTATED_B(w->envelope_lens[10] = 1, "malformed batch message");
	MUTATED_B(w->nitems = 0, "malformed batch message");
	MUTATED_B(w->nitems = SG_SIGNER_BATCH_MAX + 1,
	    "malformed batch message");
	MUTATED_B(w->nitems = 0xffffffffu, "malformed batch message");
	/* Fewer items than filled in: an unused slot that is not zero. */
	MUTATED_B(w->nitems = 2, "malformed batch message");
	MUTATED_B(w->nitems = 4, "item 4: bad line length");
	MUTATED_B(w->items[9].position = 1, "malformed batch message");
	MUTATED_B(w->items[0].line_len = 0, "item 1: bad line length");
	MUTATED_B(w->items[1].line_len = SG_ARTIFACT_LINE_MAX + 1,
	    "item 2: bad line length");
	MUTATED_B(w->items[1].line_len = 0xffffffffu,
	    "item 2: bad line length");
	MUTATED_B(w->items[0].line_len += 1, "its lengths say");
	MUTATED_B(w->items[2].npath = SG_MANIFEST_PATH_MAX + 1,
	    "item 3: bad path length");
	MUTATED_B(w->items[2].npath = 0xffffffffu, "item 3: bad path length");
	MUTATED_B(w->items[1].npath -= 1, "its lengths say");
	MUTATED_B(w->reserved = 1, "malformed batch message");
	MUTATED_B(memset(w->key, 'k', sizeof(w->key)),
	    "malformed batch message");
	MUTATED_B(memcpy(w->format, "rawx", 4), "malformed batch message");
	MUTATED_B(memcpy(w->format, "pem", 4), "malformed batch message");
	MUTATED_B(w->statement_len = SG_STATEMENT_MAX + 1,
	    "malformed batch message");
	/* Line boundaries moved inside the same total: the wire cannot
	 * tell; the signer's item rule refuses such lines. */
	{
		struct sg_wire_request *req = calloc(1, sizeof(*req));
		struct sg_wire_sign_batch saved = *w;
		if (req == NULL)
			abort();
		w->items[0].line_len += 1;
		w->items[1].line_len -= 1;
		CHECK(accepted(msg, len, req));
		*w = saved;
		CHECK(accepted(msg, len, req));
		free(req);
	}
	free(msg);
}

static void
test_batch_encode_refusals(void)
{
	struct sg_batch_item items[SG_SIGNER_BATCH_MAX + 1];
	struct sg_sign_evidence ev;
	const char *big[4];
	size_t lens[4], len, i;
	uint8_t *buf = NULL;
	char *env;

	batch_items(items, SG_SIGNER_BATCH_MAX);
	items[SG_SIGNER_BATCH_MAX] = items[0];
	memset(&ev, 0, sizeof(ev));
	ev.statement = statement;
	ev.statement_len = strlen(statement);
	ev.format = SG_FORMAT_CMS;
#define ENC() sg_wire_encode_sign_batch("k", &ev, items, 3, &buf, &len)
	CHECK_EQ_INT(ENC(), 0);
	free(buf);
	buf = NULL;
	CHECK_EQ_INT(sg_wire_encode_sign_batch("k", &ev, items, 0, &buf,
	    &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wire_encode_sign_batch("k", &ev, items,
	    SG_SIGNER_BATCH_MAX + 1, &buf, &len), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wire_encode_sign_batch("k", NULL, items, 1, &buf,
	    &len), SG_ERR_INVALID);
	items[1].line_len = 0;
	CHECK_EQ_INT(ENC(), SG_ERR_INVALID);
	items[1].line_len = SG_ARTIFACT_LINE_MAX + 1;
	CHECK_EQ_INT(ENC(), SG_ERR_INVALID);
	items[1].line_len = strlen(items[1].line);
	items[1].npath = SG_MANIFEST_PATH_MAX + 1;
	CHECK_EQ_INT(ENC(), SG_ERR_INVALID);
	items[1].npath = 3;
	ev.format = (enum sg_format)0;
	CHECK_EQ_INT(ENC(), SG_ERR_INVALID);
	ev.format = SG_FORMAT_RAW;
	CHECK(buf == NULL);
	/* Past SG_WIRE_MAX_MSG: too large (the front sends fewer items). */
	if ((env = malloc(SG_ENVELOPE_MAX)) == NULL)
		abort();
	memset(env, 'e', SG_ENVELOPE_MAX);
	for (i = 0; i < 4; i++) {
		big[i] = env;
		lens[i] = SG_ENVELOPE_MAX;
	}
	ev.envelopes = big;
	ev.envelope_lens = lens;
	ev.n = 4;
	CHECK_EQ_INT(ENC(), 0);
	free(buf);
	buf = NULL;
	/* Envelopes of the largest size, enough to pass the evidence
	 * limit. */
#define MANY (SG_SIGNER_MAX_EVIDENCE / SG_ENVELOPE_MAX + 1)
	_Static_assert(MANY <= SG_WIRE_MAX_ENVELOPES, "too many envelopes");
	ev.n = MANY;
	{
		const char *many[MANY];
		size_t ml[MANY];
		for (i = 0; i < MANY; i++) {
			many[i] = env;
			ml[i] = SG_ENVELOPE_MAX;
		}
		ev.envelopes = many;
		ev.envelope_lens = ml;
		CHECK_EQ_INT(ENC(), SG_ERR_TOO_LARGE);
		CHECK(buf == NULL);
	}
#undef MANY
#undef ENC
	free(env);
}

/* A batch reply of n results: item i signed (sig of 70 + i bytes, a CMS
 * of 100 bytes when cms) unless i is in refuse. */
static uint8_t *
batch_reply(int status, size_t n, int cms, size_t refuse, size_t *ret_len)
{
	struct sg_batch_result *res = calloc(SG_SIGNER_BATCH_MAX,
	    sizeof(*res));
	uint8_t *buf = NULL;
	size_t i;

	if (res == NULL)
		abort();
	for (i = 0; i < n; i++) {
		if (i == refuse) {
			res[i].status = SG_ERR_CONFLICT;
			continue;
		}
		res[i].sig_len = 70 + i;
		memset(res[i].sig, (int)i, res[i].sig_len);
		if (cms) {
			res[i].cms = malloc(100);
			res[i].cms_len = 100;
			if (res[i].cms == NULL)
				abort();
			memset(res[i].cms, 0xc0 + (int)i, 100);
		}
	}
	if (sg_wire_encode_batch_reply(status, status ? "refused" : "item 2",
	    res, n, &buf, ret_len) != 0)
		abort();
	sg_batch_results_clear(res, SG_SIGNER_BATCH_MAX);
	free(res);
	return buf;
}

static int
batch_reply_ok(const uint8_t *buf, size_t len)
{
	struct sg_wire_batch_reply rep;
	const uint8_t *extra;

	return sg_wire_decode_batch_reply(buf, len, &rep, &extra) == 0;
}

static void
test_batch_replies(void)
{
	struct sg_wire_batch_reply rep, *w;
	struct sg_batch_result *res;
	const uint8_t *extra;
	uint8_t *buf, *b;
	size_t len;

	buf = batch_reply(0, 3, 1, 1, &len);
	CHECK_EQ_INT(len, sizeof(rep) + 70 + 100 + 72 + 100);
	CHECK_EQ_INT(sg_wire_decode_batch_reply(buf, len, &rep, &extra), 0);
	CHECK(rep.status == 0 && rep.nitems == 3 &&
	    rep.items[0].sig_len == 70 && rep.items[0].cms_len == 100 &&
	    rep.items[1].status == SG_ERR_CONFLICT &&
	    rep.items[1].sig_len == 0 && rep.items[2].sig_len == 72 &&
	    extra == buf + sizeof(rep) && extra[0] == 0 &&
	    extra[70] == 0xc0 && extra[170] == 2 && extra[242] == 0xc2);
	CHECK_STR(rep.err, "item 2");
	w = (struct sg_wire_batch_reply *)buf;
	CHECK(!batch_reply_ok(buf, len - 1));
	b = resized(buf, len, len + 1, len + 1);
	CHECK(!batch_reply_ok(b, len + 1));
	free(b);
#define BROKEN(stmt_) do {						\
	struct sg_wire_batch_reply saved_ = *w;				\
	stmt_;								\
	CHECK(!batch_reply_ok(buf, len));				\
	*w = saved_;							\
} while (0)
	BROKEN(w->h.magic ^= 1);
	BROKEN(w->h.reserved = 1);
	BROKEN(w->h.type = SG_WIRE_REPLY);
	BROKEN(w->nitems = 0);
	BROKEN(w->nitems = 2);
	BROKEN(w->nitems = SG_SIGNER_BATCH_MAX + 1);
	BROKEN(w->items[5].status = SG_ERR_BUFFER);
	BROKEN(w->items[0].sig_len += 1);
	BROKEN(w->items[0].cms_len -= 1);
	BROKEN(w->items[0].sig_len = 0; w->items[0].cms_len += 70);
	BROKEN(w->items[0].sig_len = SG_MAX_SIG + 1;
	    w->items[0].cms_len -= SG_MAX_SIG + 1 - 70);
	BROKEN(w->items[0].status = 1);
	BROKEN(w->items[0].status = SG_ERR_MIN - 1);
	/* A refused item that carries a signature or a CMS. */
	BROKEN(w->items[0].status = SG_ERR_CONFLICT);
	BROKEN(w->items[1].sig_len = 1; w->items[0].sig_len -= 1);
	BROKEN(w->items[1].cms_len = 1; w->items[0].cms_len -= 1);
	/* A refusal of the whole batch that carries items. */
	BROKEN(w->status = SG_ERR_VERIFY);
	BROKEN(w->status = 1);
	BROKEN(memset(w->err, 'e', sizeof(w->err)));
	CHECK(batch_reply_ok(buf, len));
	free(buf);

	/* The whole batch refused: the fixed part alone. */
	buf = batch_reply(SG_ERR_VERIFY, 3, 0, 9, &len);
	CHECK_EQ_INT(len, sizeof(rep));
	CHECK_EQ_INT(sg_wire_decode_batch_reply(buf, len, &rep, &extra), 0);
	CHECK(rep.status == SG_ERR_VERIFY && rep.nitems == 0);
	CHECK_STR(rep.err, "refused");
	w = (struct sg_wire_batch_reply *)buf;
	BROKEN(w->nitems = 1);
	BROKEN(w->items[0].status = SG_ERR_VERIFY);
	free(buf);
#undef BROKEN
	CHECK(!batch_reply_ok((const uint8_t *)"", 0));

	/* The encoder: a refused item with bytes, an empty signature, and
	 * more bytes than the cap. */
	if ((res = calloc(SG_SIGNER_BATCH_MAX, sizeof(*res))) == NULL)
		abort();
	buf = NULL;
	res[0].status = SG_ERR_VERIFY;
	res[0].sig_len = 1;
	CHECK_EQ_INT(sg_wire_encode_batch_reply(0, "", res, 1, &buf, &len),
	    SG_ERR_INVALID);
	res[0].status = 0;
	res[0].sig_len = 0;
	CHECK_EQ_INT(sg_wire_encode_batch_reply(0, "", res, 1, &buf, &len),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_wire_encode_batch_reply(0, "", res, 0, &buf, &len),
	    SG_ERR_INVALID);
	{
		size_t i;
		for (i = 0; i < SG_SIGNER_BATCH_MAX; i++) {
			res[i].sig_len = SG_MAX_SIG;
			res[i].cms_len = SG_SIGNER_MAX_CMS / 32;
			if ((res[i].cms = calloc(1, res[i].cms_len)) == NULL)
				abort();
		}
	}
	CHECK_EQ_INT(sg_wire_encode_batch_reply(0, "", res,
	    SG_SIGNER_BATCH_MAX, &buf, &len), SG_ERR_TOO_LARGE);
	CHECK(buf == NULL);
	CHECK_EQ_INT(sg_wire_encode_batch_reply(0, "", res, 32, &buf, &len),
	    0);
	CHECK(buf != NULL && len <= SG_WIRE_MAX_BATCH_REPLY &&
	    batch_reply_ok(buf, len));
	free(buf);
	sg_batch_results_clear(res, SG_SIGNER_BATCH_MAX);
	free(res);
}

/* ------------------------------------------------------------------ */
/* The signer's side of a batch, served in memory (sg_signer_child.h):
 * the real decoder, evidence, item rule and record over keys held here. */

#define TOKEN "wire-token"
#define SERIAL "0123456789abcdef"

struct mem_key {
	const char *name;
	EVP_PKEY *pkey;
	enum sg_key_alg alg;
	enum sg_sig_scheme scheme;
};

static struct mem_key mem_keys[] = {
	{ "release", NULL, SG_ALG_ECDSA_P256, SG_SIG_ECDSA },
	{ "nightly", NULL, SG_ALG_ECDSA_P256, SG_SIG_ECDSA },
	{ SG_SIGNER_LOG_KEY, NULL, SG_ALG_ED25519, SG_SIG_EDDSA },
};
#define NMEM_KEYS (sizeof(mem_keys) / sizeof(mem_keys[0]))

static EVP_PKEY *officer_keys[2];
static char *release_cert;             /* PEM: the CMS trust anchor */
static struct sg_signer_child *child;
static struct sg_policy *policy;
static char child_dir[256];
static int mem_signs;                  /* the core's signatures */
static int mem_many_calls;             /* the core's sign_many calls */
static int mem_fail_at = -1;           /* the core fails from this sign on */

static struct mem_key *
mem_key(const char *name)
{
	size_t i;

	for (i = 0; i < NMEM_KEYS; i++)
		if (strcmp(mem_keys[i].name, name) == 0)
			return &mem_keys[i];
	return NULL;
}

static void
mem_sign(void *core, const struct sg_sign_msg *msg,
    struct sg_sign_reply *reply)
{
	struct mem_key *k;
	EVP_PKEY_CTX *pc = NULL;
	size_t len = sizeof(reply->sig);

	(void)core;
	memset(reply, 0, sizeof(*reply));
	/* From the mem_fail_at-th signature on, the "HSM" fails. */
	if (mem_fail_at >= 0 &&
	    __atomic_load_n(&mem_signs, __ATOMIC_SEQ_CST) >= mem_fail_at) {
		reply->status = SG_ERR_HSM;
		return;
	}
	if ((k = mem_key(msg->key)) == NULL || k->scheme != SG_SIG_ECDSA ||
	    msg->data_len != sg_digest_len(msg->digest_alg) ||
	    msg->data_len == 0) {
		reply->status = SG_ERR_INVALID;
		return;
	}
	if ((pc = EVP_PKEY_CTX_new(k->pkey, NULL)) == NULL ||
	    EVP_PKEY_sign_init(pc) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pc,
	    sg_digest_md(msg->digest_alg)) != 1 ||
	    EVP_PKEY_sign(pc, reply->sig, &len, msg->data,
	    msg->data_len) != 1)
		reply->status = SG_ERR_CRYPTO;
	else {
		reply->sig_len = len;
		__atomic_add_fetch(&mem_signs, 1, __ATOMIC_SEQ_CST);
	}
	EVP_PKEY_CTX_free(pc);
}

static int
mem_key_public(void *core, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	struct mem_key *k;

	(void)core;
	if ((k = mem_key(name)) == NULL)
		return SG_ERR_NOT_FOUND;
	if (ret_pub != NULL)
		*ret_pub = k->pkey;
	if (ret_alg != NULL)
		*ret_alg = k->alg;
	if (ret_token != NULL) {
		memset(ret_token, 0, sizeof(*ret_token));
		snprintf(ret_token->label, sizeof(ret_token->label), TOKEN);
		snprintf(ret_token->serial, sizeof(ret_token->serial), SERIAL);
		snprintf(ret_token->manufacturer,
		    sizeof(ret_token->manufacturer), "Wire project");
		snprintf(ret_token->model, sizeof(ret_token->model), "Wire v1");
	}
	return 0;
}

static int
mem_sign_checkpoint(void *core, const char *origin, uint64_t size,
    const uint8_t root[SG_HASH_LEN], uint8_t sig[SG_ED25519_SIG])
{
	(void)core;
	(void)origin;
	(void)size;
	(void)root;
	(void)sig;
	return SG_ERR_HSM;
}

static int
mem_spec_reserved(void *core, const struct sg_signer_key_spec *ks,
    char *errbuf, size_t errlen)
{
	(void)core;
	(void)ks;
	(void)errbuf;
	(void)errlen;
	return 0;
}

/* sg_signer_sign_many's meaning over mem_sign: in order, the first
 * failure ends it. */
static void
mem_sign_many(void *core, const struct sg_sign_msg *msgs, size_t n,
    struct sg_sign_reply *replies)
{
	size_t i;

	__atomic_add_fetch(&mem_many_calls, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < n; i++) {
		memset(&replies[i], 0, sizeof(replies[i]));
		replies[i].status = SG_ERR_BUFFER;
	}
	for (i = 0; i < n; i++) {
		mem_sign(core, &msgs[i], &replies[i]);
		if (replies[i].status != 0)
			return;
	}
}

/* Not const: the batch tests run with and without sign_many (the child
 * keeps a pointer to this table). */
static struct sg_signer_ops mem_ops = {
	mem_sign, mem_key_public, mem_sign_checkpoint, mem_spec_reserved,
	mem_sign_many
};

/* A PEM block indented for the policy file. */
static void
indent_pem(char *out, size_t cap, const char *pem)
{
	size_t o = 0;

	out[0] = '\0';
	while (*pem != '\0' && o + 8 < cap) {
		if (o == 0 || out[o - 1] == '\n') {
			memcpy(out + o, "    ", 4);
			o += 4;
		}
		out[o++] = *pem++;
	}
	out[o] = '\0';
}

/* release: both officers, releases of up to 256, grants of up to 3;
 * nightly: no approval needed, neither releases nor grants. */
static char *
child_policy(void)
{
	char *a = sg_fx_pubkey_pem(officer_keys[0]);
	char *b = sg_fx_pubkey_pem(officer_keys[1]);
	char ia[1024], ib[1024], *text;

	if (a == NULL || b == NULL || (text = malloc(8192)) == NULL)
		abort();
	indent_pem(ia, sizeof(ia), a);
	indent_pem(ib, sizeof(ib), b);
	snprintf(text, 8192,
	    "policy signgate-wire\nversion 1\n\n"
	    "principal ci\n    roles requester\n    client-cn ci\nend\n\n"
	    "principal alice\n    roles officer\n    client-cn alice\n"
	    "    approval-key\n%send\n\n"
	    "principal bob\n    roles officer\n    client-cn bob\n"
	    "    approval-key\n%send\n\n"
	    "group officers\n    members alice bob\nend\n\n"
	    "hsm " SERIAL "\n    manufacturer Wire project\n"
	    "    model Wire v1\n    site Zurich\n    country CH\nend\n\n"
	    "key release\n    token " TOKEN "\n    object release\n"
	    "    algorithm ecdsa-p256\n    formats raw cms\n"
	    "    certificate release.pem\n    requesters ci\n"
	    "    require officers 2\n    veto yes\n    lifetime 24h\n"
	    "    countries CH\n    allow-releases 256\n"
	    "    allow-grants 3 24h\nend\n\n"
	    "key nightly\n    token " TOKEN "\n    object nightly\n"
	    "    algorithm ecdsa-p256\n    formats raw\n    requesters ci\n"
	    "    veto no\n    lifetime 1h\n    countries CH\nend\n", ia, ib);
	free(a);
	free(b);
	return text;
}

static int
child_setup(void)
{
	struct sg_signer_key_spec *specs = NULL;
	char path[512], state[512], err[512], *text;
	size_t i, nspecs;
	static int tried;

	if (child != NULL || tried)
		return child != NULL ? 0 : -1;
	tried = 1;
	for (i = 0; i < NMEM_KEYS; i++)
		mem_keys[i].pkey = mem_keys[i].alg == SG_ALG_ED25519 ?
		    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
		    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	officer_keys[0] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	officer_keys[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (sg_fx_tmpdir("signer-wire", child_dir, sizeof(child_dir)) != 0 ||
	    (release_cert = sg_fx_self_signed_pem(mem_keys[0].pkey,
	    "release")) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/release.pem", child_dir);
	if (sg_fx_write_bytes(path, release_cert, strlen(release_cert)) != 0)
		return -1;
	text = child_policy();
	snprintf(path, sizeof(path), "%s/policy.conf", child_dir);
	err[0] = '\0';
	if (sg_fx_write_bytes(path, text, strlen(text)) != 0 ||
	    sg_policy_parse(path, text, strlen(text), &policy, err,
	    sizeof(err)) != 0 ||
	    sg_signer_key_specs(policy, TOKEN, "log", &specs,
	    &nspecs) != 0) {
		fprintf(stderr, "  policy: %s\n", err);
		free(text);
		return -1;
	}
	free(text);
	snprintf(state, sizeof(state), "%s/state", child_dir);
	i = (size_t)sg_signer_child_new(&mem_ops, NULL, specs, nspecs, path,
	    "wire.example/log", state, &child, err, sizeof(err));
	free(specs);
	if (i != 0)
		fprintf(stderr, "  child: %s\n", err);
	return i != 0 ? -1 : 0;
}

static void
child_teardown(void)
{
	size_t i;

	sg_signer_child_free(child);
	child = NULL;
	sg_policy_free(policy);
	policy = NULL;
	for (i = 0; i < NMEM_KEYS; i++)
		EVP_PKEY_free(mem_keys[i].pkey);
	EVP_PKEY_free(officer_keys[0]);
	EVP_PKEY_free(officer_keys[1]);
	free(release_cert);
	sg_fx_rm_tree(child_dir);
}

/* An approval of stmt by officer i (0 alice, 1 bob). */
static char *
approval(const char *stmt, size_t len, int i)
{
	static const char *const names[] = { "alice", "bob" };
	uint8_t *body = NULL, *pae = NULL, sig[256];
	size_t blen = 0, pae_len = 0, slen = sizeof(sig);
	EVP_MD_CTX *md;
	char *json = NULL;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    sg_body_build(stmt, len, 1, &body, &blen) != 0 ||
	    sg_dsse_pae(SG_DSSE_TYPE, body, blen, &pae, &pae_len) != 0 ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
	    officer_keys[i]) != 1 ||
	    EVP_DigestSign(md, sig, &slen, pae, pae_len) != 1 ||
	    sg_envelope_build(SG_DSSE_TYPE, body, blen, names[i], sig, slen,
	    &json) != 0)
		abort();
	EVP_MD_CTX_free(md);
	free(body);
	free(pae);
	return json;
}

/* A release's manifest: n artifacts a0.bin ... of digests SHA-256("a<i>"),
 * in format fmt. */
struct manifest {
	char lines[8][SG_ARTIFACT_LINE_MAX + 1];
	size_t lens[8];
	uint8_t digests[8][32];
	size_t n;
	struct sg_manifest_tree tree;
	char root_hex[SG_SHA256_HEX_SIZE];
};

static void
artifact_line(const char *name, const uint8_t digest[32],
    enum sg_format fmt, char *out, size_t *ret_len)
{
	struct sg_artifact_line a;

	memset(&a, 0, sizeof(a));
	a.digest_alg = SG_DIGEST_SHA256;
	memcpy(a.digest, digest, 32);
	a.digest_len = 32;
	a.format = fmt;
	snprintf(a.name, sizeof(a.name), "%s", name);
	if (sg_artifact_line_build(&a, out, SG_ARTIFACT_LINE_MAX + 1,
	    ret_len) != 0)
		abort();
}

static void
manifest_make(struct manifest *m, size_t n, enum sg_format fmt)
{
	const char *lines[8];
	uint8_t root[SG_HASH_LEN];
	char name[32];
	size_t i;

	memset(m, 0, sizeof(*m));
	m->n = n;
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "a%zu", i);
		sg_sha256(name, strlen(name), m->digests[i]);
		snprintf(name, sizeof(name), "a%zu.bin", i);
		artifact_line(name, m->digests[i], fmt, m->lines[i],
		    &m->lens[i]);
		lines[i] = m->lines[i];
	}
	if (sg_manifest_tree_init(&m->tree, lines, m->lens, n) != 0 ||
	    sg_manifest_tree_root(&m->tree, root) != 0)
		abort();
	sg_hex_encode(root, SG_HASH_LEN, m->root_hex);
}

/* A statement of kind for key "release", expiring at expires. */
static char *
kind_statement(enum sg_kind kind, const char *id, const char *key,
    uint64_t count, const char *root_hex, const char *pattern,
    enum sg_format fmt, long long expires, size_t *ret_len)
{
	struct sg_statement st;
	uint8_t spki[32];
	char *text = NULL;

	memset(&st, 0, sizeof(st));
	st.kind = kind;
	snprintf(st.request, sizeof(st.request), "%s", id);
	snprintf(st.key, sizeof(st.key), "%s", key);
	if (sg_pubkey_spki_sha256(mem_key(key)->pkey, spki) != 0)
		abort();
	sg_hex_encode(spki, sizeof(spki), st.spki_sha256);
	if (kind == SG_KIND_REQUEST) {
		snprintf(st.digest_alg, sizeof(st.digest_alg), "sha256");
		snprintf(st.digest_hex, sizeof(st.digest_hex), "%s", SHA_HEX);
	}
	st.count = count;
	if (root_hex != NULL)
		snprintf(st.manifest_root, sizeof(st.manifest_root), "%s",
		    root_hex);
	if (pattern != NULL)
		snprintf(st.pattern, sizeof(st.pattern), "%s", pattern);
	snprintf(st.format, sizeof(st.format), "%s", sg_format_str(fmt));
	snprintf(st.requester, sizeof(st.requester), "ci");
	snprintf(st.policy_name, sizeof(st.policy_name), "%s",
	    sg_policy_name(policy));
	st.policy_version = sg_policy_version(policy);
	snprintf(st.policy_sha256, sizeof(st.policy_sha256), "%s",
	    sg_policy_sha256_hex(policy));
	st.expires = expires;
	if (sg_statement_build(&st, &text, ret_len) != 0)
		abort();
	return text;
}

/* What the signer answered a batch: the whole status, each item's. */
struct answer {
	int status;
	char err[SG_SIGNER_ERR_MAX];
	size_t n;
	struct sg_batch_result res[SG_SIGNER_BATCH_MAX];
};

/* Sends a batch of items under stmt with approvals by the officers in
 * who (bit 0 alice, bit 1 bob), key and format as given, and decodes the
 * answer (which the front's check must accept). */
static void
send_batch(const char *key, const char *stmt, size_t slen, int who,
    enum sg_format fmt, const struct sg_batch_item *items, size_t n,
    struct answer *ans)
{
	struct sg_sign_evidence ev;
	struct sg_wire_batch_reply rep;
	const uint8_t *extra;
	const char *envs[2];
	char *json[2] = { NULL, NULL };
	size_t lens[2], k = 0, i, off = 0, mlen, olen;
	uint8_t *msg = NULL, *out = NULL;

	for (i = 0; i < 2; i++)
		if (who & (1 << i)) {
			json[k] = approval(stmt, slen, (int)i);
			envs[k] = json[k];
			lens[k] = strlen(json[k]);
			k++;
		}
	memset(&ev, 0, sizeof(ev));
	ev.statement = stmt;
	ev.statement_len = slen;
	ev.envelopes = envs;
	ev.envelope_lens = lens;
	ev.n = k;
	ev.format = fmt;
	memset(ans, 0, sizeof(*ans));
	ans->status = SG_ERR_INTERNAL;
	if (sg_wire_encode_sign_batch(key, &ev, items, n, &msg, &mlen) != 0 ||
	    sg_signer_child_serve_msg(child, msg, mlen, &out, &olen) != 0 ||
	    sg_wire_decode_batch_reply(out, olen, &rep, &extra) != 0) {
		fprintf(stderr, "  the batch was not answered in protocol\n");
		goto out;
	}
	ans->status = rep.status;
	snprintf(ans->err, sizeof(ans->err), "%s", rep.err);
	ans->n = rep.nitems;
	for (i = 0; i < rep.nitems; i++) {
		ans->res[i].status = rep.items[i].status;
		ans->res[i].sig_len = rep.items[i].sig_len;
		memcpy(ans->res[i].sig, extra + off, rep.items[i].sig_len);
		off += rep.items[i].sig_len;
		ans->res[i].cms_len = rep.items[i].cms_len;
		if (rep.items[i].cms_len > 0) {
			if ((ans->res[i].cms = malloc(rep.items[i].cms_len)) ==
			    NULL)
				abort();
			memcpy(ans->res[i].cms, extra + off,
			    rep.items[i].cms_len);
		}
		off += rep.items[i].cms_len;
	}
out:
	free(msg);
	free(out);
	free(json[0]);
	free(json[1]);
}

/* The answer's item i is a signature by "release" over digest. */
static int
signed_ok(const struct answer *a, size_t i, const uint8_t digest[32])
{
	return i < a->n && a->res[i].status == 0 &&
	    sg_verify(mem_key("release")->pkey, SG_SIG_ECDSA,
	    SG_DIGEST_SHA256, digest, 32, a->res[i].sig,
	    a->res[i].sig_len) == 0;
}

/* Release item k of manifest m at position pos (its own path unless
 * path_of says whose). */
static void
release_item(struct manifest *m, size_t k, uint64_t pos, size_t path_of,
    uint8_t (*path)[SG_HASH_LEN], struct sg_batch_item *it)
{
	size_t np = 0;

	if (sg_manifest_tree_path(&m->tree, path_of, path,
	    SG_MANIFEST_PATH_MAX, &np) != 0)
		abort();
	memset(it, 0, sizeof(*it));
	it->position = pos;
	it->line = m->lines[k];
	it->line_len = m->lens[k];
	it->path = (const uint8_t (*)[SG_HASH_LEN])path;
	it->npath = np;
}

#define RELEASE_ID "10000000000000000000000000000001"
#define GRANT_ID "20000000000000000000000000000002"

static void
test_batch_release(void)
{
	static uint8_t paths[8][SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	struct sg_batch_item items[8];
	struct manifest m;
	struct answer *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char *stmt, flipped[SG_ARTIFACT_LINE_MAX + 1];
	size_t slen, i;
	int before;

	CHECK(a != NULL && b != NULL && child_setup() == 0);
	if (a == NULL || b == NULL || child == NULL)
		goto out;
	manifest_make(&m, 5, SG_FORMAT_RAW);
	stmt = kind_statement(SG_KIND_RELEASE, RELEASE_ID, "release", 5,
	    m.root_hex, NULL, SG_FORMAT_RAW, (long long)time(NULL) + 3600,
	    &slen);
	/* Quorum short (alice alone): the whole batch refused, no item. */
	for (i = 0; i < 3; i++)
		release_item(&m, i, i, i, paths[i], &items[i]);
	before = mem_signs;
	send_batch("release", stmt, slen, 1, SG_FORMAT_RAW, items, 3, a);
	CHECK_EQ_INT(a->status, SG_ERR_VERIFY);
	CHECK_EQ_INT(a->n, 0);
	CHECK_EQ_INT(mem_signs, before);
	/* Signed by both: each item verifies over its own digest. */
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 3, a);
	CHECK_EQ_INT(a->status, 0);
	CHECK_EQ_INT(a->n, 3);
	for (i = 0; i < 3; i++)
		CHECK(signed_ok(a, i, m.digests[i]));
	CHECK_EQ_INT(mem_signs, before + 3);
	/* Sent again: the same bytes, without the HSM. */
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 3, b);
	CHECK_EQ_INT(b->status, 0);
	for (i = 0; i < 3; i++)
		CHECK(b->res[i].status == 0 && b->res[i].sig_len ==
		    a->res[i].sig_len && memcmp(b->res[i].sig, a->res[i].sig,
		    a->res[i].sig_len) == 0);
	CHECK_EQ_INT(mem_signs, before + 3);
	/* Items not in the manifest beside a good one: the line of 3 with
	 * the path of 4, then 4 itself, which signs; then a flipped byte
	 * and the line of 3 at position 4 (with its own path). */
	release_item(&m, 3, 3, 4, paths[3], &items[0]);
	release_item(&m, 4, 4, 4, paths[4], &items[1]);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 2, a);
	CHECK_EQ_INT(a->status, 0);
	CHECK_EQ_INT(a->n, 2);
	CHECK_EQ_INT(a->res[0].status, SG_ERR_VERIFY);
	CHECK(a->res[0].sig_len == 0);
	CHECK(signed_ok(a, 1, m.digests[4]));
	CHECK(strstr(a->err, "item 1 (position 3)") != NULL);
	memcpy(flipped, m.lines[3], m.lens[3] + 1);
	flipped[7] ^= 1;
	release_item(&m, 3, 3, 3, paths[5], &items[0]);
	items[0].line = flipped;
	release_item(&m, 3, 4, 3, paths[6], &items[1]);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 2, a);
	CHECK_EQ_INT(a->status, 0);
	CHECK_EQ_INT(a->res[0].status, SG_ERR_VERIFY);
	CHECK_EQ_INT(a->res[1].status, SG_ERR_VERIFY);
	CHECK(a->res[0].sig_len == 0 && a->res[1].sig_len == 0);
	/* Position 3 is still free: it signs now. */
	release_item(&m, 3, 3, 3, paths[3], &items[0]);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 1, a);
	CHECK(a->status == 0 && signed_ok(a, 0, m.digests[3]));
	/* The same position twice in one batch: the second refused. */
	items[1] = items[0];
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 2, a);
	CHECK(a->status == 0 && signed_ok(a, 0, m.digests[3]));
	CHECK_EQ_INT(a->res[1].status, SG_ERR_INVALID);
	/* Another key than the statement's, another format: refused. */
	send_batch("nightly", stmt, slen, 3, SG_FORMAT_RAW, items, 1, a);
	CHECK_EQ_INT(a->status, SG_ERR_VERIFY);
	send_batch("release", stmt, slen, 3, SG_FORMAT_CMS, items, 1, a);
	CHECK_EQ_INT(a->status, SG_ERR_VERIFY);
	free(stmt);
	sg_manifest_tree_free(&m.tree);
out:
	if (a != NULL)
		sg_batch_results_clear(a->res, SG_SIGNER_BATCH_MAX);
	if (b != NULL)
		sg_batch_results_clear(b->res, SG_SIGNER_BATCH_MAX);
	free(a);
	free(b);
}

/* A grant item: position pos, artifact name with digest SHA-256(tag). */
static void
grant_item(uint64_t pos, const char *name, const char *tag,
    char line[SG_ARTIFACT_LINE_MAX + 1], uint8_t digest[32],
    struct sg_batch_item *it)
{
	size_t len;

	sg_sha256(tag, strlen(tag), digest);
	artifact_line(name, digest, SG_FORMAT_RAW, line, &len);
	memset(it, 0, sizeof(*it));
	it->position = pos;
	it->line = line;
	it->line_len = len;
}

/*
 * The attack on a grant of N = 3: a compromised front asks for more
 * signatures than the officers allowed, by a position past N, by reusing
 * a position for another digest, by a name outside the pattern.
 */
static void
test_batch_grant(void)
{
	static char lines[8][SG_ARTIFACT_LINE_MAX + 1];
	static uint8_t digests[8][32];
	struct sg_batch_item items[8];
	struct answer *a = calloc(1, sizeof(*a));
	char *stmt;
	size_t slen, i;
	int before;

	CHECK(a != NULL && child_setup() == 0);
	if (a == NULL || child == NULL)
		goto out;
	stmt = kind_statement(SG_KIND_GRANT, GRANT_ID, "release", 3, NULL,
	    "fw-*.bin", SG_FORMAT_RAW, (long long)time(NULL) + 3600, &slen);
	grant_item(1, "fw-1.bin", "g1", lines[0], digests[0], &items[0]);
	grant_item(2, "fw-2.bin", "g2", lines[1], digests[1], &items[1]);
	grant_item(0, "fw-0.bin", "g0", lines[2], digests[2], &items[2]);
	grant_item(4, "fw-4.bin", "g4", lines[3], digests[3], &items[3]);
	grant_item(3, "other.bin", "g3", lines[4], digests[4], &items[4]);
	before = mem_signs;
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 5, a);
	CHECK_EQ_INT(a->status, 0);
	CHECK_EQ_INT(a->n, 5);
	CHECK(signed_ok(a, 0, digests[0]) && signed_ok(a, 1, digests[1]));
	CHECK_EQ_INT(a->res[2].status, SG_ERR_VERIFY);  /* position 0 */
	CHECK_EQ_INT(a->res[3].status, SG_ERR_VERIFY);  /* past N */
	CHECK_EQ_INT(a->res[4].status, SG_ERR_VERIFY);  /* the pattern */
	CHECK_EQ_INT(mem_signs, before + 2);
	/* Slots 1 and 2 again with other digests: refused; 3 signs. */
	grant_item(1, "fw-1.bin", "other 1", lines[5], digests[5], &items[0]);
	grant_item(2, "fw-9.bin", "other 2", lines[6], digests[6], &items[1]);
	grant_item(3, "fw-3.bin", "g3", lines[7], digests[7], &items[2]);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 3, a);
	CHECK_EQ_INT(a->status, 0);
	CHECK_EQ_INT(a->res[0].status, SG_ERR_CONFLICT);
	CHECK_EQ_INT(a->res[1].status, SG_ERR_CONFLICT);
	CHECK(a->res[0].sig_len == 0 && a->res[1].sig_len == 0);
	CHECK(signed_ok(a, 2, digests[7]));
	/* Every slot used: no fourth signature, however asked. */
	for (i = 0; i < 3; i++)
		grant_item(i + 1, "fw-x.bin", "fourth", lines[i], digests[i],
		    &items[i]);
	grant_item(4, "fw-x.bin", "fourth", lines[3], digests[3], &items[3]);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 4, a);
	CHECK_EQ_INT(a->status, 0);
	for (i = 0; i < 4; i++)
		CHECK(a->res[i].status != 0 && a->res[i].sig_len == 0);
	CHECK_EQ_INT(mem_signs, before + 3);
	free(stmt);
	/* A grant past its end: refused as a whole. */
	stmt = kind_statement(SG_KIND_GRANT, "20000000000000000000000000000003",
	    "release", 3, NULL, "*", SG_FORMAT_RAW,
	    (long long)time(NULL) - 1, &slen);
	grant_item(1, "fw-1.bin", "late", lines[0], digests[0], &items[0]);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 1, a);
	CHECK(a->status != 0 && a->n == 0);
	free(stmt);
	/* A grant of more than the key allows (3): refused as a whole. */
	stmt = kind_statement(SG_KIND_GRANT, "20000000000000000000000000000004",
	    "release", 4, NULL, "*", SG_FORMAT_RAW,
	    (long long)time(NULL) + 3600, &slen);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 1, a);
	CHECK(a->status != 0 && a->n == 0);
	free(stmt);
	CHECK_EQ_INT(mem_signs, before + 3);
out:
	if (a != NULL)
		sg_batch_results_clear(a->res, SG_SIGNER_BATCH_MAX);
	free(a);
}

/* The kinds do not cross: a single request's statement in a batch, and a
 * release's statement in a SIGN, are refused. */
static void
test_batch_kinds(void)
{
	static uint8_t path[SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	struct sg_batch_item it;
	struct manifest m;
	struct answer *a = calloc(1, sizeof(*a));
	struct sg_sign_msg sm;
	struct sg_sign_evidence ev;
	struct sg_wire_reply rep;
	const uint8_t *extra;
	const char *envs[2];
	char *stmt, *json[2];
	size_t slen, lens[2], mlen, olen, i;
	uint8_t *msg = NULL, *out = NULL;

	CHECK(a != NULL && child_setup() == 0);
	if (a == NULL || child == NULL)
		goto out;
	manifest_make(&m, 2, SG_FORMAT_RAW);
	release_item(&m, 0, 0, 0, path, &it);
	stmt = kind_statement(SG_KIND_REQUEST, "30000000000000000000000000000003",
	    "release", 0, NULL, NULL, SG_FORMAT_RAW,
	    (long long)time(NULL) + 3600, &slen);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, &it, 1, a);
	CHECK_EQ_INT(a->status, SG_ERR_VERIFY);
	free(stmt);
	/* A release statement with a quorum, sent as SIGN for the empty
	 * digest or any other: refused. */
	stmt = kind_statement(SG_KIND_RELEASE, "30000000000000000000000000000004",
	    "release", 2, m.root_hex, NULL, SG_FORMAT_RAW,
	    (long long)time(NULL) + 3600, &slen);
	for (i = 0; i < 2; i++) {
		json[i] = approval(stmt, slen, (int)i);
		envs[i] = json[i];
		lens[i] = strlen(json[i]);
	}
	memset(&ev, 0, sizeof(ev));
	ev.statement = stmt;
	ev.statement_len = slen;
	ev.envelopes = envs;
	ev.envelope_lens = lens;
	ev.n = 2;
	ev.format = SG_FORMAT_RAW;
	for (i = 0; i < 2; i++) {
		memset(&sm, 0, sizeof(sm));
		snprintf(sm.key, sizeof(sm.key), "release");
		sm.digest_alg = i == 0 ? SG_DIGEST_NONE : SG_DIGEST_SHA256;
		memcpy(sm.data, m.digests[0], 32);
		sm.data_len = i == 0 ? 0 : 32;
		CHECK(sg_wire_encode_sign(&sm, &ev, &msg, &mlen) == 0 &&
		    sg_signer_child_serve_msg(child, msg, mlen, &out,
		    &olen) == 0 &&
		    sg_wire_decode_reply(out, olen, &rep, &extra) == 0 &&
		    rep.status == SG_ERR_VERIFY && rep.sig_len == 0);
		free(msg);
		free(out);
		msg = out = NULL;
	}
	free(json[0]);
	free(json[1]);
	free(stmt);
	sg_manifest_tree_free(&m.tree);
	/* A malformed batch is answered with a BATCH_REPLY refusal. */
	{
		struct sg_wire_batch_reply br;
		uint8_t *bm = batch_msg(3, &mlen);
		CHECK(sg_signer_child_serve_msg(child, bm, mlen - 1, &out,
		    &olen) == 0 &&
		    sg_wire_decode_batch_reply(out, olen, &br, &extra) == 0 &&
		    br.status == SG_ERR_INVALID && br.nitems == 0);
		free(out);
		free(bm);
	}
out:
	free(a);
}

/* CMS: each item's SignedData is over its own digest, built by the
 * signer, and the reply's signature is the one inside. */
static void
test_batch_cms(void)
{
	static uint8_t paths[3][SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	struct sg_batch_item items[3];
	struct manifest m;
	struct answer *a = calloc(1, sizeof(*a));
	uint8_t *sv = NULL;
	size_t slen, svlen = 0, i;
	char *stmt;

	CHECK(a != NULL && child_setup() == 0);
	if (a == NULL || child == NULL)
		goto out;
	manifest_make(&m, 3, SG_FORMAT_CMS);
	stmt = kind_statement(SG_KIND_RELEASE, "40000000000000000000000000000004",
	    "release", 3, m.root_hex, NULL, SG_FORMAT_CMS,
	    (long long)time(NULL) + 3600, &slen);
	for (i = 0; i < 3; i++)
		release_item(&m, i, i, i, paths[i], &items[i]);
	send_batch("release", stmt, slen, 3, SG_FORMAT_CMS, items, 3, a);
	CHECK_EQ_INT(a->status, 0);
	CHECK_EQ_INT(a->n, 3);
	for (i = 0; i < a->n; i++) {
		CHECK(a->res[i].status == 0 && a->res[i].cms != NULL);
		if (a->res[i].cms == NULL)
			continue;
		CHECK(sg_cms_verify_digest(a->res[i].cms, a->res[i].cms_len,
		    SG_DIGEST_SHA256, m.digests[i], 32, release_cert,
		    strlen(release_cert)) == 0);
		CHECK(sg_cms_signature_value(a->res[i].cms, a->res[i].cms_len,
		    &sv, &svlen) == 0 && svlen == a->res[i].sig_len &&
		    memcmp(sv, a->res[i].sig, svlen) == 0);
		free(sv);
		sv = NULL;
	}
	/* The wrong digest's CMS does not verify: the check can fail. */
	if (a->res[0].cms != NULL)
		CHECK(sg_cms_verify_digest(a->res[0].cms, a->res[0].cms_len,
		    SG_DIGEST_SHA256, m.digests[1], 32, release_cert,
		    strlen(release_cert)) != 0);
	free(stmt);
	sg_manifest_tree_free(&m.tree);
out:
	if (a != NULL)
		sg_batch_results_clear(a->res, SG_SIGNER_BATCH_MAX);
	free(a);
}

/* Several channels at once on one release of 256, every position asked
 * by every channel (each starting elsewhere): each position is signed
 * once, and every channel gets the same bytes for it. */
#define RACE_N 256
#define RACE_THREADS 4

struct race {
	const char *stmt;
	size_t slen;
	size_t t;
	int failures;
	uint8_t sigs[RACE_N][SG_MAX_SIG];
	size_t lens[RACE_N];
};

static char race_lines[RACE_N][SG_ARTIFACT_LINE_MAX + 1];
static size_t race_lens[RACE_N];
static uint8_t race_digests[RACE_N][32];
static uint8_t race_paths[RACE_N][SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
static size_t race_npaths[RACE_N];

static void *
race_main(void *arg)
{
	struct race *ra = arg;
	struct sg_batch_item items[SG_SIGNER_BATCH_MAX];
	struct answer *a = calloc(1, sizeof(*a));
	size_t c, k, pos, chunk;

	if (a == NULL)
		abort();
	for (c = 0; c < RACE_N / SG_SIGNER_BATCH_MAX; c++) {
		chunk = (c + ra->t) % (RACE_N / SG_SIGNER_BATCH_MAX);
		for (k = 0; k < SG_SIGNER_BATCH_MAX; k++) {
			pos = chunk * SG_SIGNER_BATCH_MAX + k;
			memset(&items[k], 0, sizeof(items[k]));
			items[k].position = pos;
			items[k].line = race_lines[pos];
			items[k].line_len = race_lens[pos];
			items[k].path = (const uint8_t (*)[SG_HASH_LEN])
			    race_paths[pos];
			items[k].npath = race_npaths[pos];
		}
		send_batch("release", ra->stmt, ra->slen, 3, SG_FORMAT_RAW,
		    items, SG_SIGNER_BATCH_MAX, a);
		for (k = 0; k < SG_SIGNER_BATCH_MAX; k++) {
			pos = chunk * SG_SIGNER_BATCH_MAX + k;
			if (a->status != 0 || !signed_ok(a, k,
			    race_digests[pos])) {
				ra->failures++;
				continue;
			}
			memcpy(ra->sigs[pos], a->res[k].sig, a->res[k].sig_len);
			ra->lens[pos] = a->res[k].sig_len;
		}
		sg_batch_results_clear(a->res, SG_SIGNER_BATCH_MAX);
	}
	free(a);
	return NULL;
}

static void
test_batch_race(void)
{
	struct race *ra = calloc(RACE_THREADS, sizeof(*ra));
	struct sg_manifest_tree t;
	const char *lp[RACE_N];
	uint8_t root[SG_HASH_LEN];
	char name[32], root_hex[SG_SHA256_HEX_SIZE], *stmt;
	size_t i, k, slen;
	int before, failures = 0, same = 1;

	CHECK(ra != NULL && child_setup() == 0);
	if (ra == NULL || child == NULL) {
		free(ra);
		return;
	}
	for (i = 0; i < RACE_N; i++) {
		snprintf(name, sizeof(name), "r%zu", i);
		sg_sha256(name, strlen(name), race_digests[i]);
		snprintf(name, sizeof(name), "r%zu.bin", i);
		artifact_line(name, race_digests[i], SG_FORMAT_RAW,
		    race_lines[i], &race_lens[i]);
		lp[i] = race_lines[i];
	}
	if (sg_manifest_tree_init(&t, lp, race_lens, RACE_N) != 0 ||
	    sg_manifest_tree_root(&t, root) != 0)
		abort();
	for (i = 0; i < RACE_N; i++)
		if (sg_manifest_tree_path(&t, i, race_paths[i],
		    SG_MANIFEST_PATH_MAX, &race_npaths[i]) != 0)
			abort();
	sg_manifest_tree_free(&t);
	sg_hex_encode(root, SG_HASH_LEN, root_hex);
	stmt = kind_statement(SG_KIND_RELEASE, "60000000000000000000000000000006",
	    "release", RACE_N, root_hex, NULL, SG_FORMAT_RAW,
	    (long long)time(NULL) + 3600, &slen);
	for (i = 0; i < RACE_THREADS; i++) {
		ra[i].stmt = stmt;
		ra[i].slen = slen;
		ra[i].t = i;
	}
	before = mem_signs;
	CHECK_EQ_INT(sg_fx_threads(RACE_THREADS, race_main, ra, sizeof(*ra),
	    offsetof(struct race, failures), &failures), RACE_THREADS);
	CHECK_EQ_INT(failures, 0);
	CHECK_EQ_INT(mem_signs - before, RACE_N);
	for (i = 0; i < RACE_N; i++)
		for (k = 1; k < RACE_THREADS; k++)
			if (ra[k].lens[i] != ra[0].lens[i] || memcmp(ra[k].sigs[i],
			    ra[0].sigs[i], ra[0].lens[i]) != 0)
				same = 0;
	CHECK(same);
	free(stmt);
	free(ra);
}

/*
 * An HSM failure in the middle of a batch, with the core's sign_many and
 * with one sign per item (sign_many NULL): the same answer either way,
 * the items before it signed, it refused, the rest not attempted; sent
 * again once the HSM works, the signed ones come from the record and the
 * rest are signed.
 */
static void
batch_hsm_failure(const char *id, int many)
{
	static uint8_t paths[8][SG_MANIFEST_PATH_MAX][SG_HASH_LEN];
	struct sg_batch_item items[8];
	struct manifest m;
	struct answer *a = calloc(1, sizeof(*a));
	char *stmt;
	size_t slen, i;
	int before, calls;

	CHECK(a != NULL && child_setup() == 0);
	if (a == NULL || child == NULL) {
		free(a);
		return;
	}
	mem_ops.sign_many = many ? mem_sign_many : NULL;
	manifest_make(&m, 6, SG_FORMAT_RAW);
	stmt = kind_statement(SG_KIND_RELEASE, id, "release", 6, m.root_hex,
	    NULL, SG_FORMAT_RAW, (long long)time(NULL) + 3600, &slen);
	for (i = 0; i < 6; i++)
		release_item(&m, i, i, i, paths[i], &items[i]);
	before = mem_signs;
	calls = mem_many_calls;
	mem_fail_at = before + 3;
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 6, a);
	mem_fail_at = -1;
	CHECK_EQ_INT(a->status, 0);
	CHECK_EQ_INT(a->n, 6);
	for (i = 0; i < 3; i++)
		CHECK(signed_ok(a, i, m.digests[i]));
	CHECK_EQ_INT(a->res[3].status, SG_ERR_HSM);
	CHECK(strstr(a->err, "item 4 (position 3)") != NULL);
	for (i = 3; i < 6; i++)
		CHECK_EQ_INT(a->res[i].sig_len, 0);
	CHECK_EQ_INT(a->res[4].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(a->res[5].status, SG_ERR_BUFFER);
	CHECK_EQ_INT(mem_signs, before + 3);
	CHECK_EQ_INT(mem_many_calls, calls + (many ? 1 : 0));
	/* The HSM is back. */
	sg_batch_results_clear(a->res, SG_SIGNER_BATCH_MAX);
	send_batch("release", stmt, slen, 3, SG_FORMAT_RAW, items, 6, a);
	CHECK_EQ_INT(a->status, 0);
	for (i = 0; i < 6; i++)
		CHECK(signed_ok(a, i, m.digests[i]));
	CHECK_EQ_INT(mem_signs, before + 6);
	mem_ops.sign_many = mem_sign_many;
	free(stmt);
	sg_manifest_tree_free(&m.tree);
	sg_batch_results_clear(a->res, SG_SIGNER_BATCH_MAX);
	free(a);
}

static void
test_batch_hsm_failure(void)
{
	batch_hsm_failure("70000000000000000000000000000007", 1);
	batch_hsm_failure("80000000000000000000000000000008", 0);
}

static void
test_batch_teardown(void)
{
	child_teardown();
	CHECK(child == NULL);
}

/* Every answer carries its request's tag, a refusal's included; a record
 * too short for a header is answered with tag 0. */
static void
test_serve_tags(void)
{
	struct sg_wire_name wn;
	struct sg_wire_reply rep;
	struct sg_wire_batch_reply *brep;
	const uint8_t *extra;
	uint8_t *out = NULL, *msg;
	size_t olen = 0, mlen;

	CHECK(child_setup() == 0);
	if (child == NULL)
		return;
	CHECK_EQ_INT(sg_wire_encode_name(&wn, SG_WIRE_KEYINFO, "nightly"), 0);
	sg_wire_set_tag(&wn, 0x0123456789abcdefULL);
	CHECK(sg_signer_child_serve_msg(child, (uint8_t *)&wn, sizeof(wn),
	    &out, &olen) == 0);
	CHECK(out != NULL && sg_wire_decode_reply(out, olen, &rep,
	    &extra) == 0 && rep.status == 0 && rep.der_len > 0);
	CHECK(sg_wire_tag(out, olen) == 0x0123456789abcdefULL);
	free(out);
	/* Refused (the reserved word), still with its tag. */
	wn.h.reserved = 7;
	sg_wire_set_tag(&wn, 42);
	CHECK(sg_signer_child_serve_msg(child, (uint8_t *)&wn, sizeof(wn),
	    &out, &olen) == 0);
	CHECK(out != NULL && sg_wire_decode_reply(out, olen, &rep,
	    &extra) == 0 && rep.status == SG_ERR_INVALID &&
	    strcmp(rep.err, "malformed message") == 0);
	CHECK(sg_wire_tag(out, olen) == 42);
	free(out);
	/* Shorter than a header: no tag to echo. */
	CHECK(sg_signer_child_serve_msg(child, (uint8_t *)&wn, 11, &out,
	    &olen) == 0);
	CHECK(out != NULL && sg_wire_decode_reply(out, olen, &rep,
	    &extra) == 0 && rep.status == SG_ERR_INVALID);
	CHECK(sg_wire_tag(out, olen) == 0);
	free(out);
	/* A SIGN_BATCH's answer, a BATCH_REPLY (here a refusal: the
	 * statement is no statement), carries its tag too. */
	msg = batch_msg(2, &mlen);
	sg_wire_set_tag(msg, 9);
	CHECK(sg_signer_child_serve_msg(child, msg, mlen, &out, &olen) == 0);
	brep = calloc(1, sizeof(*brep));
	CHECK(brep != NULL && out != NULL && sg_wire_decode_batch_reply(out,
	    olen, brep, &extra) == 0 && brep->status != 0);
	CHECK(sg_wire_tag(out, olen) == 9);
	free(brep);
	free(out);
	free(msg);
}

SG_TEST_MAIN("signer_wire",
    T(test_table),
    T(test_exact_lengths),
    T(test_sign_lengths),
    T(test_unterminated),
    T(test_header),
    T(test_small_fields),
    T(test_round_trip),
    T(test_encode_refusals),
    T(test_replies),
    T(test_batch_round_trip),
    T(test_batch_lengths),
    T(test_batch_encode_refusals),
    T(test_batch_replies),
    T(test_batch_release),
    T(test_batch_grant),
    T(test_batch_kinds),
    T(test_batch_cms),
    T(test_batch_race),
    T(test_batch_hsm_failure),
    T(test_serve_tags),
    T(test_batch_teardown))
