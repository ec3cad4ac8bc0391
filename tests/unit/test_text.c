/*
 * Tests for the shared text rules (sg_text.h): the name grammar at its
 * edges and under other locales, request ids and country codes, UTF-8
 * decoding (overlong forms, surrogates, truncation, values past U+10FFFF),
 * and the free-text rule for every code point of Cf (Unicode 15), Cc, Zl
 * and Zp, noncharacters, with the messages that name the code point, and
 * the display escape.
 */
#include <ctype.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_text.h"
#include "sg_test.h"

/* UTF-8 of a code point (no checks: the tests also encode bad ones). */
static size_t
enc(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* "a" + cp + "b": the text rule's verdict. */
static int
text_with(uint32_t cp)
{
	char buf[8];
	size_t n = 0;

	buf[n++] = 'a';
	n += enc(cp, buf + n);
	buf[n++] = 'b';
	return sg_text_ok(buf, n, NULL);
}

/* The name grammar over every single byte and a few strings; the same
 * answers are expected whatever the locale. */
static void
name_answers(char out[256 + 8])
{
	static const char *const strs[] = {
		"release", "firmware-pss", "a.b_c-D9", "", "a b", "a/b",
		"\xc3\x84rger", "x\xe2\x80\xae",
	};
	char s[2] = { 0, 0 };
	int c;
	size_t i;

	for (c = 1; c < 256; c++) {
		s[0] = (char)c;
		out[c] = sg_name_ok(s, 63) ? '1' : '0';
	}
	out[0] = '-';
	for (i = 0; i < 8; i++)
		out[256 + i] = sg_name_ok(strs[i], 63) ? '1' : '0';
}

static void
test_name_grammar(void)
{
	char s64[65], s63[64];
	char ans[256 + 8];
	int c;

	/* Exactly [A-Za-z0-9._-]. */
	name_answers(ans);
	for (c = 1; c < 256; c++) {
		int want = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
		if ((ans[c] == '1') != want)
			fprintf(stderr, "  byte 0x%02x: %c\n", c, ans[c]);
		CHECK((ans[c] == '1') == want);
	}
	CHECK(memcmp(ans + 256, "11100000", 8) == 0);

	/* Lengths: 1..max. */
	memset(s63, 'a', 63);
	s63[63] = '\0';
	memset(s64, 'a', 64);
	s64[64] = '\0';
	CHECK(sg_name_ok(s63, 63));
	CHECK(!sg_name_ok(s64, 63));
	CHECK(sg_name_ok(s64, 64));
	CHECK(!sg_name_ok("", 63));
	CHECK(!sg_name_ok(NULL, 63));
	CHECK(!sg_name_ok("abcd", 3));
	CHECK(sg_name_ok("abc", 3));
	CHECK(sg_name_ok(".", 63));
	CHECK(sg_name_ok("-", 63));

	/* Over a length: an embedded NUL is not a name byte. */
	CHECK(sg_name_okn("ab", 2, 63));
	CHECK(!sg_name_okn("a\0b", 3, 63));
	CHECK(!sg_name_okn("ab", 0, 63));
}

/*
 * The grammar must not move with the locale.  Each locale this machine
 * has is tried (through the environment, as a program calling
 * setlocale(LC_ALL, "") would get it), and every answer compared with the
 * C locale's.  In a Latin-1 locale isalnum(0xc4) is true, which is how a
 * grammar built on <ctype.h> used to accept more bytes there.
 */
static void
test_name_grammar_locales(void)
{
	static const char *const locales[] = {
		"tr_TR.UTF-8", "tr_TR.ISO-8859-9", "de_DE.ISO-8859-1",
		"de_DE.UTF-8", "C.UTF-8", "C.utf8", "en_US.UTF-8",
	};
	char c_ans[256 + 8], ans[256 + 8];
	size_t i, tried = 0;
	const char *got;

	setlocale(LC_ALL, "C");
	name_answers(c_ans);
	for (i = 0; i < sizeof(locales) / sizeof(locales[0]); i++) {
		setenv("LC_ALL", locales[i], 1);
		setenv("LANG", locales[i], 1);
		if ((got = setlocale(LC_ALL, "")) == NULL ||
		    strcmp(got, "C") == 0)
			continue;
		tried++;
		name_answers(ans);
		if (memcmp(ans + 1, c_ans + 1, sizeof(ans) - 1) != 0)
			fprintf(stderr, "  the grammar changed under %s\n",
			    locales[i]);
		CHECK(memcmp(ans + 1, c_ans + 1, sizeof(ans) - 1) == 0);
		/* The rest of the rules too. */
		CHECK(!sg_name_ok("I\xc4\xb1", 63));
		CHECK(sg_request_id_ok("0123456789abcdef0123456789abcdef"));
		CHECK(!sg_request_id_ok("0123456789ABCDEF0123456789abcdef"));
		CHECK(!sg_country_ok("ch"));
		CHECK(text_with(0x202e) != 0);
		printf("# name grammar unchanged under %s%s\n", got,
		    isalnum(0xc4) ? " (where isalnum(0xc4) is true)" : "");
	}
	setlocale(LC_ALL, "C");
	unsetenv("LC_ALL");
	unsetenv("LANG");
	printf("# %zu non-C locale(s) available and tried\n", tried);
	/* C.UTF-8 is part of Debian's libc: at least that one runs. */
	CHECK(tried >= 1);
}

static void
test_request_id_and_country(void)
{
	CHECK(sg_request_id_ok("0123456789abcdef0123456789abcdef"));
	CHECK(!sg_request_id_ok("0123456789ABCDEF0123456789abcdef"));
	CHECK(!sg_request_id_ok("0123456789abcdef0123456789abcde"));
	CHECK(!sg_request_id_ok("0123456789abcdef0123456789abcdef0"));
	CHECK(!sg_request_id_ok("0123456789abcdef0123456789abcdeg"));
	CHECK(!sg_request_id_ok("../../v1/keys"));
	CHECK(!sg_request_id_ok(NULL));
	/* The hex check under it: exactly n digits, a to f lower case. */
	CHECK(sg_lower_hex_ok("09af", 4));
	CHECK(!sg_lower_hex_ok("09aF", 4));
	CHECK(!sg_lower_hex_ok("09af", 3));
	CHECK(!sg_lower_hex_ok("09a", 4));
	CHECK(!sg_lower_hex_ok("09ag", 4));
	CHECK(!sg_lower_hex_ok(NULL, 4));
	CHECK(sg_lower_hex_ok("", 0));
	CHECK(sg_lower_hexn("09afZZ", 4));
	CHECK(!sg_lower_hexn("09A", 3));
	CHECK(!sg_lower_hexn("0\0" "a", 3));

	CHECK(sg_country_ok("CH"));
	CHECK(!sg_country_ok("ch"));
	CHECK(!sg_country_ok("C"));
	CHECK(!sg_country_ok("CHE"));
	CHECK(!sg_country_ok("C1"));
	CHECK(!sg_country_ok(""));
	CHECK(!sg_country_ok(NULL));
}

static void
test_utf8_decode(void)
{
	uint32_t cp = 0;

	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"A", 1, &cp), 1);
	CHECK_EQ_INT(cp, 'A');
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xc3\xa9", 2, &cp), 2);
	CHECK_EQ_INT(cp, 0xe9);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xe2\x80\xae", 3,
	    &cp), 3);
	CHECK_EQ_INT(cp, 0x202e);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xf0\x9f\x98\x80", 4,
	    &cp), 4);
	CHECK_EQ_INT(cp, 0x1f600);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xf4\x8f\xbf\xbf", 4,
	    &cp), 4);
	CHECK_EQ_INT(cp, 0x10ffff);

	/* Overlong forms of '/', of U+0000, of U+07FF, of U+FFFF. */
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xc0\xaf", 2, &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xc1\xbf", 2, &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xe0\x80\xaf", 3,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xe0\x9f\xbf", 3,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xf0\x80\x80\xaf", 4,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xf0\x8f\xbf\xbf", 4,
	    &cp), 0);
	/* Surrogates. */
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xed\xa0\x80", 3,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xed\xbf\xbf", 3,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xed\x9f\xbf", 3,
	    &cp), 3);
	/* Past U+10FFFF, and bytes that never start a sequence. */
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xf4\x90\x80\x80", 4,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xf5\x80\x80\x80", 4,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xff", 1, &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\x80", 1, &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xbf", 1, &cp), 0);
	/* Truncated, and a sequence broken by an ASCII byte. */
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xe2\x80", 2, &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xe2\x80\xae", 2,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"\xe2" "a\xae", 3,
	    &cp), 0);
	CHECK_EQ_INT(sg_utf8_decode((const uint8_t *)"", 0, &cp), 0);
}

/* General category Cf of Unicode 15.0, written out independently of the
 * table in src/text.c. */
static const uint32_t cf15[][2] = {
	{ 0x00ad, 0x00ad }, { 0x0600, 0x0605 }, { 0x061c, 0x061c },
	{ 0x06dd, 0x06dd }, { 0x070f, 0x070f }, { 0x0890, 0x0891 },
	{ 0x08e2, 0x08e2 }, { 0x180e, 0x180e }, { 0x200b, 0x200f },
	{ 0x202a, 0x202e }, { 0x2060, 0x2064 }, { 0x2066, 0x206f },
	{ 0xfeff, 0xfeff }, { 0xfff9, 0xfffb }, { 0x110bd, 0x110bd },
	{ 0x110cd, 0x110cd }, { 0x13430, 0x1343f }, { 0x1bca0, 0x1bca3 },
	{ 0x1d173, 0x1d17a }, { 0xe0001, 0xe0001 }, { 0xe0020, 0xe007f },
};

static int
in_cf15(uint32_t cp)
{
	size_t i;

	for (i = 0; i < sizeof(cf15) / sizeof(cf15[0]); i++)
		if (cp >= cf15[i][0] && cp <= cf15[i][1])
			return 1;
	return 0;
}

static void
test_text_refuses(void)
{
	uint32_t cp;
	size_t i, n = 0, refused = 0;

	/* Every Cf code point (170 of them), each refused. */
	for (i = 0; i < sizeof(cf15) / sizeof(cf15[0]); i++)
		for (cp = cf15[i][0]; cp <= cf15[i][1]; cp++) {
			n++;
			if (text_with(cp) != 0)
				refused++;
			else
				fprintf(stderr, "  U+%04X accepted\n",
				    (unsigned)cp);
		}
	CHECK_EQ_INT(n, 170);
	CHECK_EQ_INT(refused, n);

	/* Cc: C0, DEL, C1 (U+0085 among them); Zl, Zp. */
	for (cp = 0; cp < 0x20; cp++)
		CHECK(text_with(cp) != 0);
	for (cp = 0x7f; cp <= 0x9f; cp++)
		CHECK(text_with(cp) != 0);
	CHECK(text_with(0x2028) != 0);
	CHECK(text_with(0x2029) != 0);

	/* Noncharacters: U+FDD0..U+FDEF and the last two of every plane. */
	for (cp = 0xfdd0; cp <= 0xfdef; cp++)
		CHECK(text_with(cp) != 0);
	for (cp = 0; cp <= 0x10; cp++) {
		CHECK(text_with(cp << 16 | 0xfffe) != 0);
		CHECK(text_with(cp << 16 | 0xffff) != 0);
	}

	/* The neighbours of every refused range are accepted: the table has
	 * no off-by-one at either end. */
	for (i = 0; i < sizeof(cf15) / sizeof(cf15[0]); i++) {
		uint32_t lo = cf15[i][0] - 1, hi = cf15[i][1] + 1;
		if (!in_cf15(lo) && lo != 0x9f && lo != 0x2029 &&
		    !(lo >= 0xfdd0 && lo <= 0xfdef) &&
		    (lo & 0xfffe) != 0xfffe)
			CHECK(text_with(lo) == 0);
		if (!in_cf15(hi) && hi != 0x2028 && (hi & 0xfffe) != 0xfffe)
			CHECK(text_with(hi) == 0);
	}
	CHECK(text_with(0x7e) == 0);
	CHECK(text_with(0xa0) == 0);    /* NO-BREAK SPACE is Zs */
	CHECK(text_with(0x2027) == 0);
	CHECK(text_with(0x2029) != 0);  /* just before U+202A: Zp */
	CHECK(text_with(0x202f) == 0);
	CHECK(text_with(0xfdcf) == 0);
	CHECK(text_with(0xfdf0) == 0);
	CHECK(text_with(0xfffd) == 0);
	CHECK(text_with(0x10fffd) == 0);
}

static void
test_text_accepts(void)
{
	static const char *const ok[] = {
		"a", "release-1.2.3.tar.gz", "\xc3\x9c" "berpr\xc3\xbc" "fung.exe",
		"\xe7\xad\xbe\xe5\x90\x8d\xe7\xbd\x91\xe5\x85\xb3.bin",
		"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",      /* Hebrew letters */
		"\xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\xa9",
		"\xf0\x9f\x94\x8f lock", "a b\\c \"q\" <>&",
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (sg_text_ok(ok[i], strlen(ok[i]), NULL) != 0)
			fprintf(stderr, "  refused: %s\n", ok[i]);
		CHECK_EQ_INT(sg_text_ok(ok[i], strlen(ok[i]), NULL), 0);
	}
	CHECK_EQ_INT(sg_text_ok("", 0, NULL), 0);
	/* A NUL inside is a control character. */
	CHECK(sg_text_ok("a\0b", 3, NULL) != 0);
}

static void
test_text_fault_messages(void)
{
	struct sg_text_fault f;
	char msg[128];

	CHECK(sg_text_ok("gpj.\xe2\x80\xae" "exe", 10, &f) != 0);
	CHECK_EQ_INT(f.offset, 4);
	CHECK_EQ_INT(f.cp, 0x202e);
	CHECK_EQ_INT(f.invalid, 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "U+202E (RIGHT-TO-LEFT OVERRIDE) is not allowed "
	    "(byte 4)");

	CHECK(sg_text_ok("x\xc2\x85", 3, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "U+0085 (NEXT LINE) is not allowed (byte 1)");

	CHECK(sg_text_ok("\xef\xbb\xbfx", 4, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "U+FEFF (ZERO WIDTH NO-BREAK SPACE) is not allowed "
	    "(byte 0)");

	CHECK(sg_text_ok("x\xf3\xa0\x81\x81", 5, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "U+E0041 (a tag character) is not allowed (byte 1)");

	CHECK(sg_text_ok("ab\xc0\xaf", 4, &f) != 0);
	CHECK_EQ_INT(f.invalid, 1);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "is not valid UTF-8 (byte 2)");

	CHECK(sg_text_ok("\xed\xa0\x80", 3, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "is not valid UTF-8 (byte 0)");

	CHECK(sg_text_ok("a\xef\xbf\xbe", 4, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "is not valid UTF-8: U+FFFE is a noncharacter "
	    "(byte 1)");

	CHECK(sg_text_ok("a\x1b", 2, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "U+001B (ESCAPE) is not allowed (byte 1)");

	CHECK(sg_text_ok("\xc2\x90", 2, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "U+0090 (a control character) is not allowed "
	    "(byte 0)");

	CHECK(sg_text_ok("\xe0\xa3\xa2", 3, &f) != 0);
	sg_text_fault_describe(&f, msg, sizeof(msg));
	CHECK_STR(msg, "U+08E2 (a format character) is not allowed (byte 0)");
}

static void
test_text_escape(void)
{
	char out[64];

	sg_text_escape("\xc3\x9c" "ber", 5, out, sizeof(out));
	CHECK_STR(out, "\xc3\x9c" "ber");
	sg_text_escape("gpj.\xe2\x80\xae" "exe", 10, out, sizeof(out));
	CHECK_STR(out, "gpj.\\u202eexe");
	sg_text_escape("a\x1b[2J\x7f", 6, out, sizeof(out));
	CHECK_STR(out, "a\\x1b[2J\\x7f");
	sg_text_escape("\\u202e", 6, out, sizeof(out));
	CHECK_STR(out, "\\x5cu202e");
	sg_text_escape("\xc0\xaf", 2, out, sizeof(out));
	CHECK_STR(out, "\\xc0\\xaf");
	sg_text_escape("\xf3\xa0\x81\x81", 4, out, sizeof(out));
	CHECK_STR(out, "\\U000e0041");
	sg_text_escape("a\0b", 3, out, sizeof(out));
	CHECK_STR(out, "a\\x00b");
	/* What comes out is always allowed text. */
	sg_text_escape("\xe2\x80\xae\xc2\x85\xe2\x80\xa8\xff", 9, out,
	    sizeof(out));
	CHECK_EQ_INT(sg_text_ok(out, strlen(out), NULL), 0);
	/* Truncation never splits a character or an escape. */
	sg_text_escape("\xc3\x9c\xc3\x9c", 4, out, 4);
	CHECK_STR(out, "\xc3\x9c");
	sg_text_escape("a\xe2\x80\xae", 4, out, 6);
	CHECK_STR(out, "a");
	sg_text_escape("abc", 3, out, 1);
	CHECK_STR(out, "");
}

static void
test_unicode_space(void)
{
	static const uint32_t sp[] = {
		0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680,
		0x2000, 0x2005, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f,
		0x3000,
	};
	size_t i;

	for (i = 0; i < sizeof(sp) / sizeof(sp[0]); i++)
		CHECK(sg_unicode_space(sp[i]));
	CHECK(!sg_unicode_space('a'));
	CHECK(!sg_unicode_space('+'));
	CHECK(!sg_unicode_space(0x200b));      /* ZWSP is Cf, not a space */
	CHECK(!sg_unicode_space(0xe9));
	CHECK(!sg_unicode_space(0x1f));
}

SG_TEST_MAIN("text",
    T(test_name_grammar),
    T(test_name_grammar_locales),
    T(test_request_id_and_country),
    T(test_utf8_decode),
    T(test_text_refuses),
    T(test_text_accepts),
    T(test_text_fault_messages),
    T(test_text_escape),
    T(test_unicode_space))
