/*
 * Tests for the gateway's side of witnessing (src/witnessing.c), its pure
 * parts: the add-checkpoint body byte for byte, the 409 size parser, the
 * count of distinct configured witnesses with a valid cosignature (the
 * quorum), the merge of the lines two gateways store, and the release
 * decision in both modes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_cosig.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_test.h"
#include "sg_witnessing.h"

#define ORIGIN "signgate.example/log"
#define TEXT ORIGIN "\n7\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAs=\n"
#define OTHER ORIGIN "\n8\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAs=\n"

/* A note with a (made-up) log signature line: only its shape matters. */
static char *
log_note(const char *text)
{
	uint8_t sig[SG_ED25519_SIG];
	char *line = NULL, *note = NULL;

	memset(sig, 0x5a, sizeof(sig));
	if (sg_note_signature_line(ORIGIN, 0x01020304, sig, &line) != 0 ||
	    asprintf(&note, "%s\n%s", text, line) < 0)
		abort();
	free(line);
	return note;
}

static void
test_submission(void)
{
	uint8_t proof[2][SG_HASH_LEN];
	char *body = NULL, *note = log_note(TEXT), *want = NULL;
	size_t len = 0;

	/* From nothing: no proof. */
	CHECK_EQ_INT(sg_witness_submission(0, NULL, 0, note, &body, &len), 0);
	if (asprintf(&want, "old 0\n\n%s", note) < 0)
		abort();
	CHECK_STR(body, want);
	CHECK_EQ_INT(len, strlen(want));
	free(body);
	free(want);

	/* From 3, two hashes, base64 one a line, then a blank line. */
	memset(proof[0], 0x00, SG_HASH_LEN);
	memset(proof[1], 0xff, SG_HASH_LEN);
	CHECK_EQ_INT(sg_witness_submission(3, (const uint8_t (*)[SG_HASH_LEN])
	    proof, 2, note, &body, &len), 0);
	if (asprintf(&want, "old 3\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	    "//////////////////////////////////////////8=\n"
	    "\n%s", note) < 0)
		abort();
	CHECK_STR(body, want);
	CHECK_EQ_INT(len, strlen(want));
	free(body);
	free(want);

	/* No note, or a proof longer than any tree has. */
	body = NULL;
	CHECK_EQ_INT(sg_witness_submission(0, NULL, 0, "", &body, &len),
	    SG_ERR_INVALID);
	CHECK(body == NULL);
	CHECK_EQ_INT(sg_witness_submission(3, (const uint8_t (*)[SG_HASH_LEN])
	    proof, SG_MERKLE_MAX_PROOF + 1, note, &body, &len),
	    SG_ERR_INVALID);
	free(note);
}

static void
test_parse_size(void)
{
	static const char *const bad[] = { "", "\n", "017", "1 7", "17\n\n",
	    "-1", "+1", "0x10", "17 ", " 17", "17\r\n",
	    "99999999999999999999", "9223372036854775808" };
	uint64_t v = 99;
	size_t i;

	CHECK_EQ_INT(sg_witness_parse_size("17\n", 3, &v), 0);
	CHECK_EQ_INT(v, 17);
	CHECK_EQ_INT(sg_witness_parse_size("42", 2, &v), 0);
	CHECK_EQ_INT(v, 42);
	CHECK_EQ_INT(sg_witness_parse_size("0\n", 2, &v), 0);
	CHECK_EQ_INT(v, 0);
	CHECK_EQ_INT(sg_witness_parse_size("9223372036854775807", 19, &v), 0);
	CHECK(v == 9223372036854775807ULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 5;
		if (sg_witness_parse_size(bad[i], strlen(bad[i]), &v) == 0) {
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
			CHECK(0);
		}
	}
	/* An embedded NUL ends nothing early. */
	CHECK(sg_witness_parse_size("1\0002", 3, &v) != 0);
}

struct wkey {
	EVP_PKEY *pkey;
	uint8_t pub[SG_ED25519_PUB];
};

static void
wkey_new(struct wkey *k)
{
	size_t len = sizeof(k->pub);

	if ((k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &len) != 1)
		abort();
}

static void
config_add(struct sg_witnesses_config *c, const char *name,
    const struct wkey *k)
{
	struct sg_witness_config *w = &c->list[c->n++];

	snprintf(w->name, sizeof(w->name), "%s", name);
	memcpy(w->pub, k->pub, sizeof(w->pub));
	w->id = sg_cosig_key_id(name, k->pub);
}

static char *
cosign(const struct wkey *k, const char *name, const char *text)
{
	char *line = NULL;

	if (sg_cosig_sign(k->pkey, name, text, strlen(text), 1700000000,
	    &line) != 0)
		abort();
	return line;
}

static char *
cat(const char *a, const char *b)
{
	char *s = NULL;

	if (asprintf(&s, "%s%s", a, b) < 0)
		abort();
	return s;
}

static void
test_count(void)
{
	struct sg_witnesses_config c;
	struct wkey k1, k2, k3, stranger;
	char *note = log_note(TEXT), *l1, *l2, *l3, *lines, *more, *bad;
	uint8_t which[SG_WITNESSES_MAX];

	memset(&c, 0, sizeof(c));
	wkey_new(&k1);
	wkey_new(&k2);
	wkey_new(&k3);
	wkey_new(&stranger);
	config_add(&c, "w1.example", &k1);
	config_add(&c, "w2.example", &k2);
	config_add(&c, "w3.example", &k3);
	l1 = cosign(&k1, "w1.example", TEXT);
	l2 = cosign(&k2, "w2.example", TEXT);
	l3 = cosign(&k3, "w3.example", OTHER);   /* another checkpoint */

	CHECK_EQ_INT(sg_witness_count(&c, note, "", which), 0);
	CHECK_EQ_INT(sg_witness_count(&c, note, NULL, NULL), 0);
	CHECK_EQ_INT(sg_witness_count(&c, note, l1, which), 1);
	CHECK(which[0] && !which[1] && !which[2]);
	lines = cat(l1, l2);
	CHECK_EQ_INT(sg_witness_count(&c, note, lines, which), 2);
	CHECK(which[0] && which[1] && !which[2]);
	/* The same witness twice is one witness. */
	more = cat(l1, l1);
	CHECK_EQ_INT(sg_witness_count(&c, note, more, which), 1);
	free(more);
	/* A cosignature of another checkpoint does not count. */
	more = cat(lines, l3);
	CHECK_EQ_INT(sg_witness_count(&c, note, more, which), 2);
	CHECK(!which[2]);
	free(more);
	/* Neither does a witness that is not configured, nor a line in a
	 * configured witness's name made with another key. */
	bad = cosign(&stranger, "w9.example", TEXT);
	more = cat(l1, bad);
	CHECK_EQ_INT(sg_witness_count(&c, note, more, NULL), 1);
	free(more);
	free(bad);
	bad = cosign(&stranger, "w3.example", TEXT);
	more = cat(lines, bad);
	CHECK_EQ_INT(sg_witness_count(&c, note, more, which), 2);
	CHECK(!which[2]);
	free(more);
	free(bad);

	free(lines);
	free(l1);
	free(l2);
	free(l3);
	free(note);
	EVP_PKEY_free(k1.pkey);
	EVP_PKEY_free(k2.pkey);
	EVP_PKEY_free(k3.pkey);
	EVP_PKEY_free(stranger.pkey);
}

/* Two gateways submitting one checkpoint: what the first stored stays,
 * the second adds only the witnesses that are missing. */
static void
test_merge(void)
{
	struct sg_witnesses_config c;
	struct wkey k1, k2;
	char *note = log_note(TEXT), *l1, *l1b, *l2, *lines[SG_WITNESSES_MAX];
	char *out = NULL, *want;
	unsigned n = 99;

	memset(&c, 0, sizeof(c));
	memset(lines, 0, sizeof(lines));
	wkey_new(&k1);
	wkey_new(&k2);
	config_add(&c, "w1.example", &k1);
	config_add(&c, "w2.example", &k2);
	l1 = cosign(&k1, "w1.example", TEXT);
	l2 = cosign(&k2, "w2.example", TEXT);
	/* The same witness's cosignature at another time. */
	if (sg_cosig_sign(k1.pkey, "w1.example", TEXT, strlen(TEXT),
	    1700000999, &l1b) != 0)
		abort();

	lines[0] = l1;
	CHECK_EQ_INT(sg_witness_merge(&c, note, "", lines, &out, &n), 0);
	CHECK_STR(out, l1);
	CHECK_EQ_INT(n, 1);
	free(out);
	/* Stored by the other gateway: kept, the new one for w1 dropped. */
	lines[0] = l1b;
	lines[1] = l2;
	CHECK_EQ_INT(sg_witness_merge(&c, note, l1, lines, &out, &n), 0);
	want = cat(l1, l2);
	CHECK_STR(out, want);
	CHECK_EQ_INT(n, 2);
	free(out);
	/* Nothing new: unchanged. */
	lines[0] = lines[1] = NULL;
	CHECK_EQ_INT(sg_witness_merge(&c, note, want, lines, &out, &n), 0);
	CHECK_STR(out, want);
	CHECK_EQ_INT(n, 2);
	free(out);
	free(want);
	free(l1);
	free(l1b);
	free(l2);
	free(note);
	EVP_PKEY_free(k1.pkey);
	EVP_PKEY_free(k2.pkey);
}

static void
test_released(void)
{
	/* Fail-closed: only a checkpoint with the quorum covering it. */
	CHECK(sg_witness_released(SG_WITNESS_FAIL_CLOSED, 5, 5, 0));
	CHECK(sg_witness_released(SG_WITNESS_FAIL_CLOSED, 5, 9, 0));
	CHECK(!sg_witness_released(SG_WITNESS_FAIL_CLOSED, 5, 4, 10));
	CHECK(!sg_witness_released(SG_WITNESS_FAIL_CLOSED, 5, 0, 0));
	/* Best-effort: or once its submission ended, whatever it got. */
	CHECK(sg_witness_released(SG_WITNESS_BEST_EFFORT, 5, 4, 5));
	CHECK(sg_witness_released(SG_WITNESS_BEST_EFFORT, 5, 5, 0));
	CHECK(!sg_witness_released(SG_WITNESS_BEST_EFFORT, 5, 4, 4));
	CHECK(!sg_witness_released(SG_WITNESS_BEST_EFFORT, 5, 0, 0));
}

SG_TEST_MAIN("witnessing",
	T(test_submission),
	T(test_parse_size),
	T(test_count),
	T(test_merge),
	T(test_released),
)
