/*
 * Tests for the wire protocol between the front and the signer
 * (src/signer_wire.c): the table, the signer's decoder for every request
 * type (the exact length accepted, one byte short or long refused, lengths
 * that disagree with the record, unterminated strings, counts over their
 * bounds, unknown types, a bad magic), the encoders round-tripping through
 * the decoder, and the front's check of replies.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_signer_wire.h"
#include "sg_test.h"

static const uint32_t request_types[] = {
	SG_WIRE_SIGN, SG_WIRE_CHECKPOINT, SG_WIRE_PROBE, SG_WIRE_KEYINFO,
	SG_WIRE_RELOAD,
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

	for (t = SG_WIRE_READY; t <= SG_WIRE_REPLY; t++) {
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
	CHECK(sg_wire_type_info(SG_WIRE_REPLY + 1) == NULL);
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
	struct sg_wire_name wn;
	uint8_t *big;
	uint32_t types[] = { 0, SG_WIRE_READY, SG_WIRE_REPLY, 8, 99,
	    0xffffffffu };
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
	wn.h.magic = SG_WIRE_MAGIC;
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

SG_TEST_MAIN("signer_wire",
    T(test_table),
    T(test_exact_lengths),
    T(test_sign_lengths),
    T(test_unterminated),
    T(test_header),
    T(test_small_fields),
    T(test_round_trip),
    T(test_encode_refusals),
    T(test_replies))
