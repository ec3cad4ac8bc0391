/*
 * Tests for signed notes, verifier keys, checkpoints and tlog-proofs: the
 * Go sumdb signed-note vector, notes signed here with a fresh Ed25519 key,
 * exact renderings and round trips, one refusal for each kind of
 * malformed input, and mutation loops (every byte set to several values)
 * that must never crash, leak or accept a changed signed note.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_note.h"
#include "sg_test.h"
#include "sg_util.h"

/* From the Go sumdb note tests (c2sp signed-note vector). */
static const char vec_vkey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char vec_text[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
static const char vec_sigline[] =
    "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInN"
    "IuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

#define ROOT_B64 "Rw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAs="
#define ORIGIN "signgate.example/log"

static const uint8_t mutations[] = { 0x00, '\n', ' ', '0', 'A', '=', 0x7f,
    0x80, 0xff };

static char *
cat3(const char *a, const char *b, const char *c, size_t *ret_len)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (s == NULL)
		abort();
	memcpy(s, a, la);
	memcpy(s + la, b, lb);
	memcpy(s + la + lb, c, lc + 1);
	if (ret_len != NULL)
		*ret_len = la + lb + lc;
	return s;
}

static void
test_vector_vkey(void)
{
	char name[SG_NOTE_NAME_MAX + 1], *again = NULL;
	uint8_t pub[SG_ED25519_PUB], h[32], buf[64];
	unsigned int hl = 0;
	uint32_t id = 0;
	size_t nl;

	CHECK_EQ_INT(sg_note_vkey_parse(vec_vkey, name, &id, pub), 0);
	CHECK_STR(name, "PeterNeumann");
	CHECK_EQ_INT(id, 0xc74f20a3u);
	CHECK_EQ_INT(sg_note_key_id(name, pub), 0xc74f20a3u);
	/* The key ID, computed here independently. */
	nl = strlen(name);
	memcpy(buf, name, nl);
	buf[nl] = '\n';
	buf[nl + 1] = 0x01;
	memcpy(buf + nl + 2, pub, SG_ED25519_PUB);
	CHECK(EVP_Digest(buf, nl + 2 + SG_ED25519_PUB, h, &hl, EVP_sha256(),
	    NULL) == 1);
	CHECK_EQ_INT((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
	    (uint32_t)h[2] << 8 | h[3], 0xc74f20a3u);
	CHECK_EQ_INT(sg_note_vkey_format(name, pub, &again), 0);
	CHECK_STR(again, vec_vkey);
	free(again);
}

static void
test_vector_note(void)
{
	char name[SG_NOTE_NAME_MAX + 1];
	uint8_t pub[SG_ED25519_PUB];
	uint32_t id;
	size_t len, tl = 999, i, k;
	char *note;
	int all_fail = 1;

	CHECK_EQ_INT(sg_note_vkey_parse(vec_vkey, name, &id, pub), 0);
	note = cat3(vec_text, "\n", vec_sigline, &len);
	CHECK_EQ_INT(sg_note_verify(note, len, name, id, pub, &tl), 0);
	CHECK_EQ_INT(tl, strlen(vec_text));
	/* Any changed byte, in text, blank line or signature line. */
	for (i = 0; i < len; i++) {
		char orig = note[i];
		for (k = 0; k < sizeof(mutations); k++) {
			if ((char)mutations[k] == orig)
				continue;
			note[i] = (char)mutations[k];
			tl = 999;
			if (sg_note_verify(note, len, name, id, pub, &tl) == 0)
				all_fail = 0;
			if (tl != 999)
				all_fail = 0;
		}
		note[i] ^= 0x01;
		if (sg_note_verify(note, len, name, id, pub, &tl) == 0)
			all_fail = 0;
		note[i] = orig;
	}
	CHECK(all_fail);
	CHECK_EQ_INT(sg_note_verify(note, len, name, id, pub, &tl), 0);
	/* Wrong expectations: another ID or name, another key. */
	CHECK_EQ_INT(sg_note_verify(note, len, name, id ^ 1, pub, &tl),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_note_verify(note, len, "PeterNeuman", id, pub, &tl),
	    SG_ERR_VERIFY);
	pub[3] ^= 0x10;
	CHECK(sg_note_verify(note, len, name, id, pub, &tl) != 0);
	pub[3] ^= 0x10;
	/* Truncated anywhere, in a buffer of exactly that size so that
	 * ASan sees any read past the end. */
	for (i = 0; i < len; i++) {
		char *cut = malloc(i > 0 ? i : 1);

		memcpy(cut, note, i);
		if (sg_note_verify(i > 0 ? cut : "", i, name, id, pub,
		    &tl) == 0)
			all_fail = 0;
		free(cut);
	}
	CHECK(all_fail);
	free(note);
}

static void
test_vkey_refuses(void)
{
	static const char *const bad[] = {
		"",
		"PeterNeumann",
		"PeterNeumann+c74f20a3",
		"PeterNeumann+c74f20a3+",
		"+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a33+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
		"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAAAA",
		/* Key type 0x02 with the same key bytes. */
		"PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	};
	char name[SG_NOTE_NAME_MAX + 1], longkey[600];
	uint8_t pub[SG_ED25519_PUB];
	uint32_t id = 42;
	size_t i;

	memset(pub, 0x5a, sizeof(pub));
	strcpy(name, "unchanged");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = sg_note_vkey_parse(bad[i], name, &id, pub);
		if (r == 0)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(r != 0);
	}
	CHECK_STR(name, "unchanged");
	CHECK_EQ_INT(id, 42);
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	CHECK_EQ_INT(sg_note_vkey_parse(longkey, name, &id, pub),
	    SG_ERR_TOO_LARGE);
	/* Names that cannot be formatted. */
	{
		char *out = NULL;
		char n256[SG_NOTE_NAME_MAX + 2];

		CHECK_EQ_INT(sg_note_vkey_format("", pub, &out), SG_ERR_INVALID);
		CHECK_EQ_INT(sg_note_vkey_format("a b", pub, &out),
		    SG_ERR_INVALID);
		CHECK_EQ_INT(sg_note_vkey_format("a+b", pub, &out),
		    SG_ERR_INVALID);
		CHECK_EQ_INT(sg_note_vkey_format("caf\xc3\xa9", pub, &out),
		    SG_ERR_INVALID);
		memset(n256, 'n', sizeof(n256) - 1);
		n256[sizeof(n256) - 1] = '\0';
		CHECK_EQ_INT(sg_note_vkey_format(n256, pub, &out),
		    SG_ERR_INVALID);
		n256[SG_NOTE_NAME_MAX] = '\0';
		CHECK_EQ_INT(sg_note_vkey_format(n256, pub, &out), 0);
		CHECK(out != NULL && strlen(out) == SG_NOTE_NAME_MAX + 1 + 8 +
		    1 + 44);
		CHECK_EQ_INT(sg_note_vkey_parse(out, name, &id, pub), 0);
		CHECK_STR(name, n256);
		free(out);
	}
}

/* ---- a key of our own ---- */

struct key {
	EVP_PKEY *pkey;
	uint8_t pub[SG_ED25519_PUB];
	char name[64];
	uint32_t id;
};

static void
key_new(struct key *k, const char *name)
{
	size_t pl = SG_ED25519_PUB;

	if ((k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &pl) != 1)
		abort();
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->id = sg_note_key_id(k->name, k->pub);
}

static void
key_free(struct key *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}

/* The signature line of k over text (malloc'd). */
static char *
sign_line(const struct key *k, const char *text, size_t len)
{
	uint8_t sig[SG_ED25519_SIG];
	size_t sl = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char *line = NULL;

	if (ctx == NULL ||
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &sl, (const uint8_t *)text, len) != 1 ||
	    sg_note_signature_line(k->name, k->id, sig, &line) != 0)
		abort();
	EVP_MD_CTX_free(ctx);
	return line;
}

/* text "\n" lines... (each line malloc'd by the caller or static). */
static char *
assemble(const char *text, const char *const *lines, size_t n, size_t *len)
{
	size_t tl = strlen(text), total = tl + 1, i, o;
	char *s;

	for (i = 0; i < n; i++)
		total += strlen(lines[i]);
	if ((s = malloc(total + 1)) == NULL)
		abort();
	memcpy(s, text, tl);
	s[tl] = '\n';
	o = tl + 1;
	for (i = 0; i < n; i++) {
		memcpy(s + o, lines[i], strlen(lines[i]));
		o += strlen(lines[i]);
	}
	s[o] = '\0';
	*len = o;
	return s;
}

static int
verify_lines(const struct key *k, const char *text, const char *const *lines,
    size_t n)
{
	size_t len, tl;
	char *note = assemble(text, lines, n, &len);
	int r = sg_note_verify(note, len, k->name, k->id, k->pub, &tl);

	if (r == 0 && tl != strlen(text))
		r = SG_ERR_INTERNAL;
	free(note);
	return r;
}

static void
test_own_key_notes(void)
{
	static const char text[] = ORIGIN "\n7\n" ROOT_B64 "\n";
	static const char other_text[] = ORIGIN "\n8\n" ROOT_B64 "\n";
	struct key k, w, twin;
	char *mine, *theirs, *wrong, *twin_line, *s, *vk;
	const char *l[20];
	char name[SG_NOTE_NAME_MAX + 1];
	uint8_t pub[SG_ED25519_PUB];
	uint32_t id;
	size_t i, len, tl;

	key_new(&k, ORIGIN);
	key_new(&w, "witness.example/w1");
	key_new(&twin, ORIGIN);             /* same name, another key */
	CHECK_EQ_INT(sg_note_vkey_format(k.name, k.pub, &vk), 0);
	CHECK_EQ_INT(sg_note_vkey_parse(vk, name, &id, pub), 0);
	CHECK_STR(name, k.name);
	CHECK_EQ_INT(id, k.id);
	CHECK(memcmp(pub, k.pub, SG_ED25519_PUB) == 0);
	free(vk);

	mine = sign_line(&k, text, strlen(text));
	theirs = sign_line(&w, text, strlen(text));
	wrong = sign_line(&k, other_text, strlen(other_text));
	twin_line = sign_line(&twin, text, strlen(text));
	CHECK(strncmp(mine, "\xe2\x80\x94 " ORIGIN " ", 4 + strlen(ORIGIN) + 1)
	    == 0);
	CHECK(strlen(mine) == 4 + strlen(ORIGIN) + 1 + 92 + 1);

	l[0] = mine;
	CHECK_EQ_INT(verify_lines(&k, text, l, 1), 0);
	/* Other keys' lines around ours are ignored. */
	l[0] = theirs; l[1] = mine; l[2] = theirs;
	CHECK_EQ_INT(verify_lines(&k, text, l, 3), 0);
	/* A same-named key with another ID is another key. */
	if (twin.id != k.id) {
		l[0] = twin_line; l[1] = mine;
		CHECK_EQ_INT(verify_lines(&k, text, l, 2), 0);
		l[0] = twin_line;
		CHECK_EQ_INT(verify_lines(&k, text, l, 1), SG_ERR_VERIFY);
	}
	/* Only other keys: not verified. */
	l[0] = theirs;
	CHECK_EQ_INT(verify_lines(&k, text, l, 1), SG_ERR_VERIFY);
	/* A bad line from our key fails the note even next to a good one. */
	l[0] = mine; l[1] = wrong;
	CHECK_EQ_INT(verify_lines(&k, text, l, 2), SG_ERR_VERIFY);
	l[0] = wrong; l[1] = mine;
	CHECK_EQ_INT(verify_lines(&k, text, l, 2), SG_ERR_VERIFY);
	/* Sixteen signature lines are fine, seventeen are not. */
	for (i = 0; i < 17; i++)
		l[i] = i == 8 ? mine : theirs;
	CHECK_EQ_INT(verify_lines(&k, text, l, 16), 0);
	CHECK_EQ_INT(verify_lines(&k, text, l, 17), SG_ERR_INVALID);

	/* Malformed signature lines, even from unknown keys. */
	{
		static const char *const badl[] = {
			"- " ORIGIN " AAAAAAA=\n",
			"\xe2\x80\x94" ORIGIN " AAAAAAA=\n",
			"\xe2\x80\x94  " ORIGIN " AAAAAAA=\n",
			"\xe2\x80\x94 other AAAAAAA\n",
			"\xe2\x80\x94 other AAAA\n",          /* 3 bytes */
			"\xe2\x80\x94 other  AAAAAAA=\n",
			"\xe2\x80\x94 other AAAAAAA= \n",
			"\xe2\x80\x94 oth+er AAAAAAA=\n",
			/* Unicode spaces in a name: NBSP, NEL, U+3000. */
			"\xe2\x80\x94 oth\xc2\xa0" "er AAAAAAA=\n",
			"\xe2\x80\x94 oth\xc2\x85" "er AAAAAAA=\n",
			"\xe2\x80\x94 \xe8\xa8\xbc\xe3\x80\x80" "x AAAAAAA=\n",
			"\xe2\x80\x94 \xe2\x80\x83 AAAAAAA=\n",
			"\xe2\x80\x94 other\n",
			"\xe2\x80\x94 other \n",
			"\n",
		};
		for (i = 0; i < sizeof(badl) / sizeof(badl[0]); i++) {
			l[0] = mine;
			l[1] = badl[i];
			if (verify_lines(&k, text, l, 2) != SG_ERR_INVALID) {
				fprintf(stderr, "  accepted line %zu\n", i);
				CHECK(0);
			}
		}
	}
	/* Ill-formed notes. */
	s = assemble(text, (const char *const *)&mine, 1, &len);
	CHECK_EQ_INT(sg_note_verify(s, len - 1, k.name, k.id, k.pub, &tl),
	    SG_ERR_INVALID);             /* no LF after the last line */
	CHECK_EQ_INT(sg_note_verify(s, strlen(text) + 1, k.name, k.id, k.pub,
	    &tl), SG_ERR_INVALID);       /* no signature */
	free(s);
	{
		/* CRLF anywhere; a control character; invalid UTF-8. */
		static const char *const texts[] = {
			ORIGIN "\r\n7\n" ROOT_B64 "\n",
			ORIGIN "\n7\t\n" ROOT_B64 "\n",
			ORIGIN "\xc3\n7\n" ROOT_B64 "\n",
			ORIGIN "\xc0\xaf\n7\n" ROOT_B64 "\n",
			ORIGIN "\xed\xa0\x80\n7\n" ROOT_B64 "\n",
			ORIGIN "\xf4\x90\x80\x80\n7\n" ROOT_B64 "\n",
			ORIGIN "\xe0\x80\xaf\n7\n" ROOT_B64 "\n",
			ORIGIN "\xf0\x80\x80\xaf\n7\n" ROOT_B64 "\n",
			ORIGIN "\xe2\x82\n7\n" ROOT_B64 "\n",
			ORIGIN "\x80\n7\n" ROOT_B64 "\n",
		};
		for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
			char *sl = sign_line(&k, texts[i], strlen(texts[i]));
			l[0] = sl;
			CHECK_EQ_INT(verify_lines(&k, texts[i], l, 1),
			    SG_ERR_INVALID);
			free(sl);
		}
		/* Valid UTF-8 in the text is fine (and a blank line). */
		{
			static const char t[] = "caf\xc3\xa9 \xe2\x82\xac\n\n"
			    "\xf0\x9f\x94\x91 ok\n";
			char *sl = sign_line(&k, t, strlen(t));
			l[0] = sl;
			CHECK_EQ_INT(verify_lines(&k, t, l, 1), 0);
			free(sl);
		}
		s = malloc(SG_NOTE_MAX + 2);
		memset(s, 'a', SG_NOTE_MAX + 1);
		CHECK_EQ_INT(sg_note_verify(s, SG_NOTE_MAX + 1, k.name, k.id,
		    k.pub, &tl), SG_ERR_TOO_LARGE);
		free(s);
	}
	/* Signature lines of our key with the wrong length. */
	{
		char *tr = strdup(mine);
		/* Drop the last base64 group: 66 bytes, not 4 + 64. */
		size_t ml = strlen(tr);
		memmove(tr + ml - 5, tr + ml - 1, 2);
		l[0] = tr;
		CHECK_EQ_INT(verify_lines(&k, text, l, 1), SG_ERR_VERIFY);
		l[0] = mine;
		l[1] = tr;
		CHECK_EQ_INT(verify_lines(&k, text, l, 2), SG_ERR_VERIFY);
		free(tr);
	}
	CHECK_EQ_INT(sg_note_signature_line("bad name", 1, (uint8_t *)name,
	    &s), SG_ERR_INVALID);
	free(mine);
	free(theirs);
	free(wrong);
	free(twin_line);
	key_free(&k);
	key_free(&w);
	key_free(&twin);
}

/* ---- checkpoints ---- */

static void
test_checkpoint_round_trip(void)
{
	struct sg_checkpoint c, d;
	char *s = NULL;
	size_t i;
	static const uint64_t sizes[] = { 0, 1, 10, 1000000,
	    (uint64_t)INT64_MAX };

	memset(&c, 0, sizeof(c));
	strcpy(c.origin, ORIGIN);
	for (i = 0; i < SG_HASH_LEN; i++)
		c.root[i] = (uint8_t)(i * 7);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		c.size = sizes[i];
		CHECK_EQ_INT(sg_checkpoint_format(&c, &s), 0);
		memset(&d, 0x55, sizeof(d));
		CHECK_EQ_INT(sg_checkpoint_parse(s, strlen(s), &d), 0);
		CHECK_STR(d.origin, c.origin);
		CHECK(d.size == c.size);
		CHECK(memcmp(d.root, c.root, SG_HASH_LEN) == 0);
		free(s);
	}
	c.size = 20852163;
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), 0);
	CHECK_STR(s, ORIGIN "\n20852163\n"
	    "AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n");
	free(s);
	/* Spaces inside an origin are allowed (not at its ends). */
	strcpy(c.origin, "my log");
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), 0);
	CHECK_EQ_INT(sg_checkpoint_parse(s, strlen(s), &d), 0);
	CHECK_STR(d.origin, "my log");
	free(s);
	/* Refused by the formatter. */
	s = NULL;
	strcpy(c.origin, "");
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), SG_ERR_INVALID);
	strcpy(c.origin, " lead");
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), SG_ERR_INVALID);
	strcpy(c.origin, "trail ");
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), SG_ERR_INVALID);
	strcpy(c.origin, "two\nlines");
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), SG_ERR_INVALID);
	memset(c.origin, 'o', sizeof(c.origin));   /* unterminated */
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), SG_ERR_INVALID);
	strcpy(c.origin, ORIGIN);
	c.size = (uint64_t)INT64_MAX + 1;
	CHECK_EQ_INT(sg_checkpoint_format(&c, &s), SG_ERR_INVALID);
	CHECK(s == NULL);
}

/* The origin check the formatter and parser apply, on its own. */
static void
test_checkpoint_origin(void)
{
	char longest[SG_NOTE_NAME_MAX + 2];

	CHECK(sg_checkpoint_origin_ok(ORIGIN));
	CHECK(sg_checkpoint_origin_ok("my log"));
	CHECK(!sg_checkpoint_origin_ok(NULL));
	CHECK(!sg_checkpoint_origin_ok(""));
	CHECK(!sg_checkpoint_origin_ok(" lead"));
	CHECK(!sg_checkpoint_origin_ok("trail "));
	CHECK(!sg_checkpoint_origin_ok("two\nlines"));
	CHECK(!sg_checkpoint_origin_ok("tab\there"));
	CHECK(!sg_checkpoint_origin_ok("caf\xc3\xa9"));
	CHECK(!sg_checkpoint_origin_ok("del\x7f"));
	memset(longest, 'o', sizeof(longest));
	longest[SG_NOTE_NAME_MAX] = '\0';
	CHECK(sg_checkpoint_origin_ok(longest));
	longest[SG_NOTE_NAME_MAX] = 'o';
	longest[SG_NOTE_NAME_MAX + 1] = '\0';
	CHECK(!sg_checkpoint_origin_ok(longest));
}

static void
test_checkpoint_refuses(void)
{
	static const char *const bad[] = {
		"",
		ORIGIN "\n",
		ORIGIN "\n5\n",
		ORIGIN "\n5\n" ROOT_B64,                       /* no LF */
		ORIGIN "\n05\n" ROOT_B64 "\n",
		ORIGIN "\n00\n" ROOT_B64 "\n",
		ORIGIN "\n-5\n" ROOT_B64 "\n",
		ORIGIN "\n+5\n" ROOT_B64 "\n",
		ORIGIN "\n 5\n" ROOT_B64 "\n",
		ORIGIN "\n5 \n" ROOT_B64 "\n",
		ORIGIN "\n\n" ROOT_B64 "\n",
		ORIGIN "\n0x5\n" ROOT_B64 "\n",
		ORIGIN "\n9223372036854775808\n" ROOT_B64 "\n",
		ORIGIN "\n18446744073709551616\n" ROOT_B64 "\n",
		ORIGIN "\n5\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAt=\n",
		ORIGIN "\n5\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyA==\n",
		ORIGIN "\n5\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAs\n",
		ORIGIN "\n5\nRw_W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAs=\n",
		ORIGIN "\n5\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAsA\n",
		ORIGIN "\n5\nRw/W2uzvz0bTxO7AkAZIEg7G1NWpHzaEVXKVSVSEyAsAAAA=\n",
		ORIGIN "\n5\n" ROOT_B64 " \n",
		ORIGIN "\r\n5\n" ROOT_B64 "\n",
		ORIGIN "\n5\r\n" ROOT_B64 "\n",
		ORIGIN "\n5\n" ROOT_B64 "\r\n",
		ORIGIN "\n5\n" ROOT_B64 "\nextension\n",
		ORIGIN "\n5\n" ROOT_B64 "\n\n",
		"\n5\n" ROOT_B64 "\n",
		" " ORIGIN "\n5\n" ROOT_B64 "\n",
		ORIGIN " \n5\n" ROOT_B64 "\n",
		ORIGIN "\t\n5\n" ROOT_B64 "\n",
		"caf\xc3\xa9\n5\n" ROOT_B64 "\n",
		/* A whole signed note is not checkpoint text. */
		ORIGIN "\n5\n" ROOT_B64 "\n\n\xe2\x80\x94 x AAAAAAA=\n",
	};
	struct sg_checkpoint c;
	char *big;
	size_t i;

	memset(&c, 0x5a, sizeof(c));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = sg_checkpoint_parse(bad[i], strlen(bad[i]), &c);
		if (r == 0)
			fprintf(stderr, "  accepted #%zu\n", i);
		CHECK(r != 0);
	}
	CHECK(c.size == 0x5a5a5a5a5a5a5a5aULL);
	/* An embedded NUL in the origin. */
	CHECK(sg_checkpoint_parse("a\0b\n5\n" ROOT_B64 "\n",
	    sizeof("a\0b\n5\n" ROOT_B64 "\n") - 1, &c) != 0);
	/* Origins longer than a key name. */
	big = malloc(SG_NOTE_MAX + 100);
	memset(big, 'o', 256);
	memcpy(big + 256, "\n5\n" ROOT_B64 "\n", 3 + 44 + 1);
	CHECK_EQ_INT(sg_checkpoint_parse(big, 256 + 48, &c), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_checkpoint_parse(big + 1, 255 + 48, &c), 0);
	memset(big, 'o', SG_NOTE_MAX + 100);
	CHECK_EQ_INT(sg_checkpoint_parse(big, SG_NOTE_MAX + 1, &c),
	    SG_ERR_TOO_LARGE);
	free(big);
}

/* ---- tlog-proof ---- */

static void
fill_proof(struct sg_tlog_proof *p, size_t nh, int extra, const char *note)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	p->index = 73894;
	for (i = 0; i < nh; i++)
		memset(p->hashes[i], (int)(i + 1), SG_HASH_LEN);
	p->nhashes = nh;
	if (extra) {
		p->extra = (uint8_t *)strdup("extra-data");
		p->extra_len = 10;
	}
	p->note = strdup(note);
	p->note_len = strlen(note);
}

#define PROOF_NOTE ORIGIN "\n109482\n" ROOT_B64 "\n\n"			\
    "\xe2\x80\x94 " ORIGIN " AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"	\
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
static const char proof_note[] = PROOF_NOTE;

static void
test_tlog_proof_round_trip(void)
{
	static const size_t counts[] = { 0, 1, 2, 17, SG_MERKLE_MAX_PROOF };
	struct sg_tlog_proof p, q;
	char *s = NULL, *s2 = NULL;
	size_t i, e;

	for (e = 0; e < 2; e++) {
		for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
			fill_proof(&p, counts[i], (int)e, proof_note);
			CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), 0);
			CHECK_EQ_INT(sg_tlog_proof_parse(s, strlen(s), &q), 0);
			CHECK(q.index == p.index);
			CHECK_EQ_INT(q.nhashes, p.nhashes);
			CHECK(memcmp(q.hashes, p.hashes,
			    p.nhashes * SG_HASH_LEN) == 0);
			CHECK_EQ_INT(q.extra_len, p.extra_len);
			CHECK((q.extra == NULL) == (p.extra == NULL));
			if (p.extra != NULL && q.extra != NULL)
				CHECK(memcmp(q.extra, p.extra, p.extra_len) == 0);
			CHECK_EQ_INT(q.note_len, p.note_len);
			CHECK_STR(q.note, p.note);
			CHECK_EQ_INT(sg_tlog_proof_format(&q, &s2), 0);
			CHECK_STR(s2, s);
			free(s);
			free(s2);
			sg_tlog_proof_clear(&p);
			sg_tlog_proof_clear(&q);
			CHECK(q.note == NULL && q.extra == NULL);
		}
	}
	/* The exact rendering. */
	fill_proof(&p, 2, 1, proof_note);
	p.index = 0;
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), 0);
	CHECK_STR(s, "c2sp.org/tlog-proof@v1\n"
	    "extra ZXh0cmEtZGF0YQ==\n"
	    "index 0\n"
	    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
	    "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n"
	    "\n" PROOF_NOTE);
	free(s);
	sg_tlog_proof_clear(&p);
	/* Refused by the formatter. */
	fill_proof(&p, 0, 0, proof_note);
	p.nhashes = SG_MERKLE_MAX_PROOF + 1;
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), SG_ERR_INVALID);
	p.nhashes = 0;
	p.note_len--;                  /* no final LF */
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), SG_ERR_INVALID);
	p.note_len = 0;
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), SG_ERR_INVALID);
	p.note_len = strlen(p.note);
	p.extra = (uint8_t *)p.note;   /* present but empty */
	p.extra_len = 0;
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), SG_ERR_INVALID);
	p.extra = NULL;
	p.index = (uint64_t)INT64_MAX + 1;
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), SG_ERR_INVALID);
	sg_tlog_proof_clear(&p);
}

#define HASHL "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
#define MAGIC "c2sp.org/tlog-proof@v1\n"
#define NOTE ORIGIN "\n5\n" ROOT_B64 "\n\n\xe2\x80\x94 x AAAAAAA=\n"

static void
test_tlog_proof_refuses(void)
{
	static const char *const bad[] = {
		"",
		MAGIC,
		"c2sp.org/tlog-proof@v2\nindex 1\n\n" NOTE,
		"c2sp.org/tlog-proof@v1 \nindex 1\n\n" NOTE,
		MAGIC "\n" NOTE,
		MAGIC "index 01\n\n" NOTE,
		MAGIC "index -1\n\n" NOTE,
		MAGIC "index 9223372036854775808\n\n" NOTE,
		MAGIC "index \n\n" NOTE,
		MAGIC "index  1\n\n" NOTE,
		MAGIC "Index 1\n\n" NOTE,
		MAGIC "index 1\r\n\n" NOTE,
		MAGIC "index 1\n\r\n" NOTE,
		MAGIC "extra \nindex 1\n\n" NOTE,
		MAGIC "extra Zg\nindex 1\n\n" NOTE,
		MAGIC "extra Zh==\nindex 1\n\n" NOTE,
		MAGIC "extra Zg==\n\n" NOTE,
		MAGIC "index 1\nextra Zg==\n\n" NOTE,
		MAGIC "extra Zg==\nextra Zg==\nindex 1\n\n" NOTE,
		MAGIC "index 1\n" HASHL,                 /* no blank line */
		MAGIC "index 1\n" HASHL NOTE,            /* no blank line */
		MAGIC "index 1\n" HASHL "\n",            /* no note */
		MAGIC "index 1\n\n" ORIGIN "\n5\n",      /* no signature */
		MAGIC "index 1\n\n" ORIGIN "\n5",        /* no LF */
		MAGIC "index 1\n\n" ORIGIN "\n\n",      /* no signature */
		MAGIC "index 1\n\n" NOTE "\n",           /* ends in a blank */
		MAGIC "index 1\n\n\n\xe2\x80\x94 x AAAAAAA=\n", /* no text */
		MAGIC "index 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ==\n\n"
		    NOTE,
		MAGIC "index 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB\n\n"
		    NOTE,
		MAGIC "index 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQF=\n\n"
		    NOTE,
		MAGIC "index 1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= \n\n"
		    NOTE,
		MAGIC "index 1\n index\n\n" NOTE,
	};
	struct sg_tlog_proof p;
	char *s;
	size_t i, o;

	memset(&p, 0, sizeof(p));
	p.index = 4242;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = sg_tlog_proof_parse(bad[i], strlen(bad[i]), &p);
		if (r == 0) {
			fprintf(stderr, "  accepted #%zu\n", i);
			sg_tlog_proof_clear(&p);
		}
		CHECK(r != 0);
	}
	CHECK(p.index == 4242 && p.note == NULL);
	/* 64 hashes parse, 65 do not. */
	s = malloc(4096);
	o = (size_t)sprintf(s, MAGIC "index 3\n");
	for (i = 0; i < 64; i++)
		o += (size_t)sprintf(s + o, HASHL);
	strcpy(s + o, "\n" NOTE);
	CHECK_EQ_INT(sg_tlog_proof_parse(s, strlen(s), &p), 0);
	CHECK_EQ_INT(p.nhashes, 64);
	sg_tlog_proof_clear(&p);
	o += (size_t)sprintf(s + o, HASHL);
	strcpy(s + o, "\n" NOTE);
	CHECK_EQ_INT(sg_tlog_proof_parse(s, strlen(s), &p), SG_ERR_INVALID);
	free(s);
	/* A NUL inside the note. */
	{
		static const char t[] = MAGIC "index 1\n\nab\0c\n";
		CHECK(sg_tlog_proof_parse(t, sizeof(t) - 1, &p) != 0);
	}
	/* Oversize: a note above the note limit, a text above the limit. */
	{
		static const char tail[] = "\n\n\xe2\x80\x94 x AAAAAAA=\n";
		size_t tl = sizeof(tail) - 1;

		s = malloc(3 * SG_NOTE_MAX);
		o = (size_t)sprintf(s, MAGIC "index 1\n\n");
		memset(s + o, 'n', SG_NOTE_MAX + 1 - tl);
		memcpy(s + o + SG_NOTE_MAX + 1 - tl, tail, tl);
		CHECK_EQ_INT(sg_tlog_proof_parse(s, o + SG_NOTE_MAX + 1, &p),
		    SG_ERR_INVALID);
		CHECK_EQ_INT(sg_tlog_proof_parse(s + 1, o - 1 + SG_NOTE_MAX,
		    &p), SG_ERR_INVALID);    /* the magic is cut */
		memmove(s + 1, s, o);        /* one 'n' less */
		CHECK_EQ_INT(sg_tlog_proof_parse(s + 1, o + SG_NOTE_MAX, &p),
		    0);
		CHECK_EQ_INT(p.note_len, SG_NOTE_MAX);
		sg_tlog_proof_clear(&p);
	}
	free(s);
	s = malloc(SG_TLOG_PROOF_MAX + 1);
	memset(s, 'x', SG_TLOG_PROOF_MAX + 1);
	CHECK_EQ_INT(sg_tlog_proof_parse(s, SG_TLOG_PROOF_MAX + 1, &p),
	    SG_ERR_TOO_LARGE);
	free(s);
}

/* The largest proof: a whole log entry as extra data, 64 hashes and a
 * note of the maximum size, written and read back. */
static void
test_tlog_proof_largest(void)
{
	static const char tail[] = "\n\n\xe2\x80\x94 x AAAAAAA=\n";
	struct sg_tlog_proof p, q;
	char *s = NULL, *note;
	size_t tl = sizeof(tail) - 1;

	memset(&p, 0, sizeof(p));
	p.index = (uint64_t)INT64_MAX;
	p.nhashes = SG_MERKLE_MAX_PROOF;
	memset(p.hashes, 0xee, sizeof(p.hashes));
	p.extra_len = SG_TLOG_PROOF_EXTRA_MAX;
	p.extra = malloc(p.extra_len);
	memset(p.extra, 0xfb, p.extra_len);
	note = malloc(SG_NOTE_MAX + 1);
	memset(note, 'n', SG_NOTE_MAX - tl);
	memcpy(note + SG_NOTE_MAX - tl, tail, tl + 1);
	p.note = note;
	p.note_len = SG_NOTE_MAX;
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), 0);
	CHECK(s != NULL && strlen(s) <= SG_TLOG_PROOF_MAX);
	if (s != NULL) {
		CHECK_EQ_INT(sg_tlog_proof_parse(s, strlen(s), &q), 0);
		CHECK_EQ_INT(q.extra_len, p.extra_len);
		CHECK(q.extra != NULL &&
		    memcmp(q.extra, p.extra, p.extra_len) == 0);
		CHECK_EQ_INT(q.nhashes, SG_MERKLE_MAX_PROOF);
		CHECK(q.index == (uint64_t)INT64_MAX);
		CHECK_EQ_INT(q.note_len, SG_NOTE_MAX);
		sg_tlog_proof_clear(&q);
		free(s);
		s = NULL;
	}
	/* One byte more of extra data is refused both ways. */
	free(p.extra);
	p.extra_len = SG_TLOG_PROOF_EXTRA_MAX + 1;
	p.extra = malloc(p.extra_len);
	memset(p.extra, 0xfb, p.extra_len);
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &s), SG_ERR_TOO_LARGE);
	CHECK(s == NULL);
	{
		char *b64 = sg_b64_encode(p.extra, p.extra_len);
		size_t bl = strlen(b64), o;
		char *t = malloc(bl + 200);

		o = (size_t)sprintf(t, MAGIC "extra ");
		memcpy(t + o, b64, bl);
		o += bl;
		o += (size_t)sprintf(t + o, "\nindex 1\n\n" NOTE);
		CHECK_EQ_INT(sg_tlog_proof_parse(t, o, &q), SG_ERR_INVALID);
		/* One byte less parses. */
		free(b64);
		b64 = sg_b64_encode(p.extra, p.extra_len - 1);
		bl = strlen(b64);
		o = (size_t)sprintf(t, MAGIC "extra ");
		memcpy(t + o, b64, bl);
		o += bl;
		o += (size_t)sprintf(t + o, "\nindex 1\n\n" NOTE);
		CHECK_EQ_INT(sg_tlog_proof_parse(t, o, &q), 0);
		CHECK_EQ_INT(q.extra_len, SG_TLOG_PROOF_EXTRA_MAX);
		sg_tlog_proof_clear(&q);
		free(b64);
		free(t);
	}
	sg_tlog_proof_clear(&p);
}

/* ---- mutation loops ---- */

static void
test_mutations(void)
{
	struct sg_tlog_proof p, q;
	struct sg_checkpoint c;
	char *valid = NULL, *again = NULL, *cp = NULL, *buf;
	size_t len, i, k, accepted = 0, bad_round_trips = 0;
	int r;

	fill_proof(&p, 3, 1, NOTE);
	CHECK_EQ_INT(sg_tlog_proof_format(&p, &valid), 0);
	sg_tlog_proof_clear(&p);
	len = strlen(valid);
	buf = malloc(len);
	for (i = 0; i < len; i++) {
		for (k = 0; k < sizeof(mutations); k++) {
			memcpy(buf, valid, len);
			if ((uint8_t)buf[i] == mutations[k])
				continue;
			buf[i] = (char)mutations[k];
			/* Exactly the bytes, no terminator: ASan sees any
			 * read past the end. */
			r = sg_tlog_proof_parse(buf, len, &q);
			if (r != 0)
				continue;
			accepted++;
			if (sg_tlog_proof_format(&q, &again) != 0 ||
			    strlen(again) != len ||
			    memcmp(again, buf, len) != 0)
				bad_round_trips++;
			free(again);
			again = NULL;
			sg_tlog_proof_clear(&q);
		}
	}
	/* Changes inside the note (opaque here) and in digits parse. */
	CHECK(accepted > 0);
	CHECK_EQ_INT(bad_round_trips, 0);
	free(buf);

	memset(&c, 0, sizeof(c));
	strcpy(c.origin, ORIGIN);
	c.size = 1234;
	CHECK_EQ_INT(sg_checkpoint_format(&c, &cp), 0);
	len = strlen(cp);
	buf = malloc(len);
	accepted = bad_round_trips = 0;
	for (i = 0; i < len; i++) {
		for (k = 0; k < sizeof(mutations); k++) {
			struct sg_checkpoint d;
			memcpy(buf, cp, len);
			if ((uint8_t)buf[i] == mutations[k])
				continue;
			buf[i] = (char)mutations[k];
			if (sg_checkpoint_parse(buf, len, &d) != 0)
				continue;
			accepted++;
			if (sg_checkpoint_format(&d, &again) != 0 ||
			    strlen(again) != len ||
			    memcmp(again, buf, len) != 0)
				bad_round_trips++;
			free(again);
			again = NULL;
		}
	}
	CHECK(accepted > 0);
	CHECK_EQ_INT(bad_round_trips, 0);
	free(buf);
	free(cp);
	free(valid);
}

/*
 * A witness whose key name is not ASCII cosigns our checkpoint: its line
 * is from an unknown key and must be skipped (c2sp.org/signed-note), not
 * make the note malformed; a bad line from the known key still fails the
 * note next to it.
 */
static void
test_foreign_names(void)
{
	static const char text[] = ORIGIN "\n7\n" ROOT_B64 "\n";
	static const char *const names[] = {
		"\xc3\xa9",                                   /* é */
		"t\xc3\xa9moin.example/w1",
		"\xe8\xa8\xbc\xe4\xba\xba.example",           /* CJK */
		"\xd7\xa2\xd7\x93.example",                     /* Hebrew */
		"\xe2\x80\xae" "evil",          /* odd, but not a space */
		"w\xf0\x9f\x94\x8f",
	};
	struct key k, w;
	char *mine, *theirs, *wrong, *line;
	const char *l[3], *b64;
	size_t i;

	key_new(&k, ORIGIN);
	key_new(&w, "witness.example/w1");
	mine = sign_line(&k, text, strlen(text));
	theirs = sign_line(&w, text, strlen(text));
	wrong = sign_line(&k, ORIGIN "\n8\n" ROOT_B64 "\n",
	    strlen(ORIGIN "\n8\n" ROOT_B64 "\n"));
	b64 = strrchr(theirs, ' ') + 1;         /* "<base64>\n" */
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (asprintf(&line, "\xe2\x80\x94 %s %s", names[i], b64) < 0)
			abort();
		l[0] = mine;
		l[1] = line;
		if (verify_lines(&k, text, l, 2) != 0)
			fprintf(stderr, "  name %zu made the note fail\n", i);
		CHECK_EQ_INT(verify_lines(&k, text, l, 2), 0);
		l[0] = line;
		l[1] = mine;
		CHECK_EQ_INT(verify_lines(&k, text, l, 2), 0);
		/* Alone it verifies nothing. */
		CHECK_EQ_INT(verify_lines(&k, text, l, 1), SG_ERR_VERIFY);
		/* Our key's bad line still fails the note. */
		l[0] = wrong;
		l[1] = line;
		l[2] = mine;
		CHECK_EQ_INT(verify_lines(&k, text, l, 3), SG_ERR_VERIFY);
		free(line);
	}
	/* A tlog-cosignature line (type 0x04: key ID, timestamp, signature,
	 * 4 + 8 + 64 bytes) by a foreign non-ASCII name: its length is no
	 * business of ours either. */
	if (asprintf(&line, "\xe2\x80\x94 t\xc3\xa9moin %.100s%s\n",
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AA==") < 0)
		abort();
	l[0] = mine;
	l[1] = line;
	CHECK_EQ_INT(verify_lines(&k, text, l, 2), 0);
	free(line);
	free(mine);
	free(theirs);
	free(wrong);
	key_free(&k);
	key_free(&w);
}

SG_TEST_MAIN("note",
    T(test_vector_vkey),
    T(test_vector_note),
    T(test_vkey_refuses),
    T(test_own_key_notes),
    T(test_foreign_names),
    T(test_checkpoint_round_trip),
    T(test_checkpoint_refuses),
    T(test_checkpoint_origin),
    T(test_tlog_proof_round_trip),
    T(test_tlog_proof_refuses),
    T(test_tlog_proof_largest),
    T(test_mutations))
