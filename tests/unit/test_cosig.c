/*
 * Tests for witness cosignatures (c2sp.org/tlog-cosignature v1): the key
 * ID and vkey (type 0x04, refused as a log key and the reverse), the exact
 * signed message and line, and verification: a good cosignature is
 * accepted beside the log's signature and other witnesses' lines, and
 * refused for another key, a changed time, a changed checkpoint, a
 * line too short and a forged line in the witness's name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_cosig.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_test.h"
#include "sg_util.h"

#define W_NAME "witness.example/w1"
#define LOG_ORIGIN "signgate.example/log"
#define TEXT LOG_ORIGIN "\n42\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAs=\n"
#define T0 1700000000ULL

struct key {
	EVP_PKEY *pkey;
	uint8_t pub[SG_ED25519_PUB];
};

static void
key_new(struct key *k)
{
	size_t len = sizeof(k->pub);

	if ((k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &len) != 1 ||
	    len != sizeof(k->pub))
		abort();
}

static void
key_free(struct key *k)
{
	EVP_PKEY_free(k->pkey);
}

static void
sign_raw(struct key *k, const void *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t sl = 64;

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL,
	    k->pkey) != 1 || EVP_DigestSign(ctx, sig, &sl, msg, len) != 1 ||
	    sl != 64)
		abort();
	EVP_MD_CTX_free(ctx);
}

/* A note signed by the log key: TEXT, blank line, the log's line. */
static char *
log_note(struct key *logk)
{
	uint8_t sig[64];
	char *line = NULL, *note;
	size_t n;

	sign_raw(logk, TEXT, strlen(TEXT), sig);
	if (sg_note_signature_line(LOG_ORIGIN, sg_note_key_id(LOG_ORIGIN,
	    logk->pub), sig, &line) != 0)
		abort();
	n = strlen(TEXT) + 1 + strlen(line) + 1;
	if ((note = malloc(n)) == NULL)
		abort();
	snprintf(note, n, "%s\n%s", TEXT, line);
	free(line);
	return note;
}

static char *
append(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;
	char *s = malloc(n);

	if (s == NULL)
		abort();
	snprintf(s, n, "%s%s", a, b);
	return s;
}

static void
test_key_id(void)
{
	uint8_t pub[SG_ED25519_PUB], h[32], buf[256];
	size_t n;
	uint32_t want;

	memset(pub, 0x5a, sizeof(pub));
	/* SHA-256(name || "\n" || 0x04 || pub)[:4], computed by hand here. */
	n = strlen(W_NAME);
	memcpy(buf, W_NAME, n);
	buf[n++] = '\n';
	buf[n++] = 0x04;
	memcpy(buf + n, pub, sizeof(pub));
	n += sizeof(pub);
	sg_sha256(buf, n, h);
	want = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3];
	CHECK_EQ_INT(sg_cosig_key_id(W_NAME, pub), want);
	/* Another type byte, another ID: a log key ID never matches. */
	CHECK(sg_note_key_id(W_NAME, pub) != want);
	CHECK(sg_cosig_key_id("witness.example/w2", pub) != want);
}

static void
test_vkey(void)
{
	struct key k;
	char name[SG_NOTE_NAME_MAX + 1], *vkey = NULL, *logvkey = NULL;
	char bad[512], hex[9];
	uint8_t pub[SG_ED25519_PUB], raw[33];
	uint32_t id = 0;
	char *b64;

	key_new(&k);
	CHECK_EQ_INT(sg_cosig_vkey_format(W_NAME, k.pub, &vkey), 0);
	/* Exact form: name, 8 hex digits, base64 of 0x04 || pub. */
	raw[0] = 0x04;
	memcpy(raw + 1, k.pub, 32);
	b64 = sg_b64_encode(raw, sizeof(raw));
	snprintf(hex, sizeof(hex), "%08x",
	    (unsigned)sg_cosig_key_id(W_NAME, k.pub));
	snprintf(bad, sizeof(bad), "%s+%s+%s", W_NAME, hex, b64);
	CHECK_STR(vkey, bad);
	free(b64);

	CHECK_EQ_INT(sg_cosig_vkey_parse(vkey, name, &id, pub), 0);
	CHECK_STR(name, W_NAME);
	CHECK_EQ_INT(id, sg_cosig_key_id(W_NAME, k.pub));
	CHECK(memcmp(pub, k.pub, 32) == 0);

	/* A log key is not a cosigner key, and the reverse. */
	CHECK_EQ_INT(sg_note_vkey_format(W_NAME, k.pub, &logvkey), 0);
	CHECK_EQ_INT(sg_cosig_vkey_parse(logvkey, name, &id, pub),
	    SG_ERR_MECHANISM);
	CHECK_EQ_INT(sg_note_vkey_parse(vkey, name, &id, pub),
	    SG_ERR_MECHANISM);

	/* Malformed: wrong ID, no ID, upper-case hex, short key, junk. */
	snprintf(bad, sizeof(bad), "%s", vkey);
	bad[strlen(W_NAME) + 1] = bad[strlen(W_NAME) + 1] == '0' ? '1' : '0';
	CHECK_EQ_INT(sg_cosig_vkey_parse(bad, name, &id, pub), SG_ERR_INVALID);
	snprintf(bad, sizeof(bad), "%s+%s", W_NAME,
	    vkey + strlen(W_NAME) + 10);
	CHECK(sg_cosig_vkey_parse(bad, name, &id, pub) != 0);
	snprintf(bad, sizeof(bad), "%s", vkey);
	bad[strlen(bad) - 4] = '\0';
	CHECK(sg_cosig_vkey_parse(bad, name, &id, pub) != 0);
	snprintf(bad, sizeof(bad), "%s ", vkey);
	CHECK(sg_cosig_vkey_parse(bad, name, &id, pub) != 0);
	snprintf(bad, sizeof(bad), "a b+%s", vkey + strlen(W_NAME) + 1);
	CHECK(sg_cosig_vkey_parse(bad, name, &id, pub) != 0);
	CHECK(sg_cosig_vkey_parse("", name, &id, pub) != 0);
	CHECK(sg_cosig_vkey_format("bad name", k.pub, &b64) != 0);
	CHECK(sg_cosig_vkey_format("a+b", k.pub, &b64) != 0);
	free(vkey);
	free(logvkey);
	key_free(&k);
}

static void
test_message(void)
{
	char *m = NULL;
	size_t n = 0;
	static const char want[] = "cosignature/v1\ntime 1679315147\n" TEXT;

	CHECK_EQ_INT(sg_cosig_message(TEXT, strlen(TEXT), 1679315147, &m,
	    &n), 0);
	CHECK_EQ_INT(n, strlen(want));
	CHECK(m != NULL && memcmp(m, want, n) == 0);
	free(m);
	m = NULL;
	CHECK_EQ_INT(sg_cosig_message(TEXT, strlen(TEXT), 0, &m, &n), 0);
	CHECK(m != NULL && strncmp(m, "cosignature/v1\ntime 0\n", 22) == 0);
	free(m);
	/* Text must end in LF; times above 2^63-1 do not exist. */
	CHECK_EQ_INT(sg_cosig_message(TEXT, strlen(TEXT) - 1, 1, &m, &n),
	    SG_ERR_INVALID);
	CHECK_EQ_INT(sg_cosig_message(TEXT, strlen(TEXT),
	    (uint64_t)INT64_MAX + 1, &m, &n), SG_ERR_INVALID);
}

static void
test_line(void)
{
	uint8_t sig[64], *dec = NULL;
	char *line = NULL, *b64;
	size_t dl = 0, i;
	static const char dash[] = "\xe2\x80\x94 ";

	for (i = 0; i < sizeof(sig); i++)
		sig[i] = (uint8_t)i;
	CHECK_EQ_INT(sg_cosig_line(W_NAME, 0x01020304, 0x0000000065f1a2b3ULL,
	    sig, &line), 0);
	if (line == NULL)
		return;
	CHECK(strncmp(line, dash, 4) == 0);
	CHECK(strncmp(line + 4, W_NAME " ", strlen(W_NAME) + 1) == 0);
	CHECK(line[strlen(line) - 1] == '\n');
	b64 = line + 4 + strlen(W_NAME) + 1;
	CHECK_EQ_INT(sg_b64_decode(b64, strlen(b64) - 1, &dec, &dl), 0);
	CHECK_EQ_INT(dl, 76);
	if (dec != NULL && dl == 76) {
		static const uint8_t head[12] = { 1, 2, 3, 4, 0, 0, 0, 0,
		    0x65, 0xf1, 0xa2, 0xb3 };
		CHECK(memcmp(dec, head, 12) == 0);
		CHECK(memcmp(dec + 12, sig, 64) == 0);
	}
	free(dec);
	free(line);
	CHECK(sg_cosig_line("a b", 1, 1, sig, &line) != 0);
	CHECK(sg_cosig_line(W_NAME, 1, (uint64_t)INT64_MAX + 1, sig,
	    &line) != 0);
}

/* Signs the message by hand (not through sg_cosig_sign, so that both are
 * tested): w's signature of TEXT cosigned at time t. */
static void
sign_message(struct key *w, uint64_t t, uint8_t sig[64])
{
	char msg[512];
	int n;

	n = snprintf(msg, sizeof(msg), "cosignature/v1\ntime %llu\n%s",
	    (unsigned long long)t, TEXT);
	sign_raw(w, msg, (size_t)n, sig);
}

/* A cosignature line of TEXT at time t signed by w, under name and key
 * ID id: a forgery when they are not w's. */
static char *
cosign_as(struct key *w, const char *name, uint32_t id, uint64_t t)
{
	uint8_t sig[64];
	char *line = NULL;

	sign_message(w, t, sig);
	if (sg_cosig_line(name, id, t, sig, &line) != 0)
		abort();
	return line;
}

static char *
cosign_by_hand(struct key *w, const char *name, uint64_t t)
{
	return cosign_as(w, name, sg_cosig_key_id(name, w->pub), t);
}

/* sg_cosig_verify of note with line appended (line is freed), for the
 * witness W_NAME with key (id, pub). */
static int
verify_with(const char *note, char *line, uint32_t id, const uint8_t *pub)
{
	char *s = append(note, line);
	uint64_t t = 0;
	int r;

	r = sg_cosig_verify(s, strlen(s), W_NAME, id, pub, &t);
	free(s);
	free(line);
	return r;
}

static void
test_verify(void)
{
	struct key logk, w, other;
	char *note, *line, *line2 = NULL, *cos, *s, *t2;
	uint32_t id;
	uint64_t t = 0;
	size_t text_len = 0;

	key_new(&logk);
	key_new(&w);
	key_new(&other);
	id = sg_cosig_key_id(W_NAME, w.pub);
	note = log_note(&logk);
	line = cosign_by_hand(&w, W_NAME, T0);
	cos = append(note, line);

	/* Good, and the log's signature still verifies beside it. */
	CHECK_EQ_INT(sg_cosig_verify(cos, strlen(cos), W_NAME, id, w.pub, &t),
	    0);
	CHECK_EQ_INT(t, T0);
	CHECK_EQ_INT(sg_note_verify(cos, strlen(cos), LOG_ORIGIN,
	    sg_note_key_id(LOG_ORIGIN, logk.pub), logk.pub, &text_len), 0);
	CHECK_EQ_INT(text_len, strlen(TEXT));

	/* sg_cosig_sign makes the same kind of line. */
	CHECK_EQ_INT(sg_cosig_sign(w.pkey, W_NAME, TEXT, strlen(TEXT), T0 + 5,
	    &line2), 0);
	s = append(note, line2 != NULL ? line2 : "");
	CHECK_EQ_INT(sg_cosig_verify(s, strlen(s), W_NAME, id, w.pub, &t), 0);
	CHECK_EQ_INT(t, T0 + 5);
	/* Two good lines: the latest time. */
	t2 = append(cos, line2 != NULL ? line2 : "");
	CHECK_EQ_INT(sg_cosig_verify(t2, strlen(t2), W_NAME, id, w.pub, &t),
	    0);
	CHECK_EQ_INT(t, T0 + 5);
	free(t2);
	free(s);

	/* No cosignature at all. */
	CHECK_EQ_INT(sg_cosig_verify(note, strlen(note), W_NAME, id, w.pub,
	    &t), SG_ERR_VERIFY);
	/* Another witness's key: its line is ignored, ours is missing. */
	CHECK_EQ_INT(sg_cosig_verify(cos, strlen(cos), W_NAME,
	    sg_cosig_key_id(W_NAME, other.pub), other.pub, &t), SG_ERR_VERIFY);
	/* Another key under our name and ID: a forgery, refused, and still
	 * refused next to a good line. */
	CHECK_EQ_INT(verify_with(note, cosign_as(&other, W_NAME, id, T0), id,
	    w.pub), SG_ERR_VERIFY);
	CHECK_EQ_INT(verify_with(cos, cosign_as(&other, W_NAME, id, T0), id,
	    w.pub), SG_ERR_VERIFY);
	/* A changed time: the signature was over another message. */
	{
		uint8_t sig[64];
		char *fl = NULL;

		sign_message(&w, T0, sig);
		if (sg_cosig_line(W_NAME, id, T0 ^ 1, sig, &fl) != 0)
			abort();
		CHECK_EQ_INT(verify_with(note, fl, id, w.pub), SG_ERR_VERIFY);
	}
	/* A changed checkpoint: another size, same lines. */
	s = strdup(cos);
	s[strlen(LOG_ORIGIN) + 1] = '3';        /* "42" -> "32" */
	CHECK_EQ_INT(sg_cosig_verify(s, strlen(s), W_NAME, id, w.pub, &t),
	    SG_ERR_VERIFY);
	free(s);
	/* A line shorter than id || time || signature: a log-style line
	 * (key ID and signature, no time) in our name and key ID. */
	{
		uint8_t sig[64];
		char *fl = NULL;

		sign_message(&w, T0, sig);
		if (sg_note_signature_line(W_NAME, id, sig, &fl) != 0)
			abort();
		CHECK_EQ_INT(verify_with(note, fl, id, w.pub), SG_ERR_VERIFY);
	}
	/* Cut inside the line's base64: a malformed note. */
	s = strdup(cos);
	s[strlen(s) - 10] = '\n';
	s[strlen(s) - 9] = '\0';
	CHECK_EQ_INT(sg_cosig_verify(s, strlen(s), W_NAME, id, w.pub, &t),
	    SG_ERR_INVALID);
	free(s);
	/* Without a final LF. */
	CHECK_EQ_INT(sg_cosig_verify(cos, strlen(cos) - 1, W_NAME, id, w.pub,
	    &t), SG_ERR_INVALID);

	free(line2);
	free(cos);
	free(line);
	free(note);
	key_free(&logk);
	key_free(&w);
	key_free(&other);
}

struct walk {
	char names[4][64];
	size_t lens[4];
	int by_w[4];            /* by the key (W_NAME, id) */
	size_t n;
	size_t text_len;
	uint32_t id;
};

static int
walk_line(void *ctx, const char *name, size_t nlen, const uint8_t *raw,
    size_t rawlen, size_t text_len)
{
	struct walk *w = ctx;

	if (w->n == 4 || nlen >= sizeof(w->names[0]))
		return SG_ERR_INTERNAL;
	memcpy(w->names[w->n], name, nlen);
	w->names[w->n][nlen] = '\0';
	w->by_w[w->n] = sg_note_sig_by(name, nlen, raw, W_NAME, w->id);
	w->lens[w->n++] = rawlen;
	w->text_len = text_len;
	return 0;
}

static int
stop_at_second(void *ctx, const char *name, size_t nlen, const uint8_t *raw,
    size_t rawlen, size_t text_len)
{
	int *calls = ctx;

	return ++*calls == 2 ? SG_ERR_CONFLICT : 0;
}

/* The signed-note walk both verifiers stand on. */
static void
test_note_walk(void)
{
	struct key logk, w;
	struct walk wk;
	char *note, *line, *cos;
	size_t tl = 0;
	int calls = 0;

	key_new(&logk);
	key_new(&w);
	note = log_note(&logk);
	line = cosign_by_hand(&w, W_NAME, T0);
	cos = append(note, line);
	memset(&wk, 0, sizeof(wk));
	wk.id = sg_cosig_key_id(W_NAME, w.pub);
	CHECK_EQ_INT(sg_note_signatures(cos, strlen(cos), walk_line, &wk, &tl),
	    0);
	CHECK_EQ_INT(wk.n, 2);
	CHECK_STR(wk.names[0], LOG_ORIGIN);
	CHECK_STR(wk.names[1], W_NAME);
	CHECK(!wk.by_w[0]);
	CHECK(wk.by_w[1]);
	CHECK_EQ_INT(wk.lens[0], 4 + 64);
	CHECK_EQ_INT(wk.lens[1], SG_COSIG_RAW_LEN);
	CHECK_EQ_INT(tl, strlen(TEXT));
	CHECK_EQ_INT(wk.text_len, strlen(TEXT));
	/* The name alone is not the key: the key ID must match too. */
	memset(&wk, 0, sizeof(wk));
	wk.id = sg_cosig_key_id(W_NAME, logk.pub);
	CHECK_EQ_INT(sg_note_signatures(cos, strlen(cos), walk_line, &wk, &tl),
	    0);
	CHECK(!wk.by_w[0] && !wk.by_w[1]);
	/* The callback's refusal stops the walk and is returned. */
	CHECK_EQ_INT(sg_note_signatures(cos, strlen(cos), stop_at_second,
	    &calls, &tl), SG_ERR_CONFLICT);
	CHECK_EQ_INT(calls, 2);
	/* No signature lines, no blank line: malformed. */
	CHECK_EQ_INT(sg_note_signatures(TEXT, strlen(TEXT), walk_line, &wk,
	    &tl), SG_ERR_INVALID);
	free(cos);
	free(line);
	free(note);
	key_free(&logk);
	key_free(&w);
}

SG_TEST_MAIN("cosig",
    T(test_key_id),
    T(test_vkey),
    T(test_message),
    T(test_line),
    T(test_verify),
    T(test_note_walk))
