/*
 * Text rules (see include/sg_text.h): the name grammar and free text
 * shown to people.
 *
 * Design: one implementation for every process.  Before this module the
 * name grammar existed five times (one through isalnum(), which widens
 * with the locale) and free text was "no byte below 0x20", which let
 * bidirectional overrides and C1 controls through to the officers who
 * approve what they read.  The code point tables below are Unicode 15.0:
 * general category Cf in full (170 code points), Cc, and Zl/Zp.  Nothing
 * here allocates, reads a locale or keeps state.
 */
#include <stdio.h>
#include <string.h>

#include "sg_err.h"
#include "sg_text.h"

struct cp_range {
	uint32_t lo, hi;
};

/* General category Cf, Unicode 15.0. */
static const struct cp_range format_chars[] = {
	{ 0x00ad, 0x00ad }, { 0x0600, 0x0605 }, { 0x061c, 0x061c },
	{ 0x06dd, 0x06dd }, { 0x070f, 0x070f }, { 0x0890, 0x0891 },
	{ 0x08e2, 0x08e2 }, { 0x180e, 0x180e }, { 0x200b, 0x200f },
	{ 0x202a, 0x202e }, { 0x2060, 0x2064 }, { 0x2066, 0x206f },
	{ 0xfeff, 0xfeff }, { 0xfff9, 0xfffb }, { 0x110bd, 0x110bd },
	{ 0x110cd, 0x110cd }, { 0x13430, 0x1343f }, { 0x1bca0, 0x1bca3 },
	{ 0x1d173, 0x1d17a }, { 0xe0001, 0xe0001 }, { 0xe0020, 0xe007f },
};

/* The White_Space property. */
static const struct cp_range spaces[] = {
	{ 0x0009, 0x000d }, { 0x0020, 0x0020 }, { 0x0085, 0x0085 },
	{ 0x00a0, 0x00a0 }, { 0x1680, 0x1680 }, { 0x2000, 0x200a },
	{ 0x2028, 0x2029 }, { 0x202f, 0x202f }, { 0x205f, 0x205f },
	{ 0x3000, 0x3000 },
};

/* Names of the refused code points a reader is most likely to meet. */
static const struct {
	uint32_t cp;
	const char *name;
} names[] = {
	{ 0x0000, "NULL" },
	{ 0x0009, "CHARACTER TABULATION" },
	{ 0x000a, "LINE FEED" },
	{ 0x000d, "CARRIAGE RETURN" },
	{ 0x001b, "ESCAPE" },
	{ 0x007f, "DELETE" },
	{ 0x0085, "NEXT LINE" },
	{ 0x009b, "CONTROL SEQUENCE INTRODUCER" },
	{ 0x00ad, "SOFT HYPHEN" },
	{ 0x061c, "ARABIC LETTER MARK" },
	{ 0x180e, "MONGOLIAN VOWEL SEPARATOR" },
	{ 0x200b, "ZERO WIDTH SPACE" },
	{ 0x200c, "ZERO WIDTH NON-JOINER" },
	{ 0x200d, "ZERO WIDTH JOINER" },
	{ 0x200e, "LEFT-TO-RIGHT MARK" },
	{ 0x200f, "RIGHT-TO-LEFT MARK" },
	{ 0x2028, "LINE SEPARATOR" },
	{ 0x2029, "PARAGRAPH SEPARATOR" },
	{ 0x202a, "LEFT-TO-RIGHT EMBEDDING" },
	{ 0x202b, "RIGHT-TO-LEFT EMBEDDING" },
	{ 0x202c, "POP DIRECTIONAL FORMATTING" },
	{ 0x202d, "LEFT-TO-RIGHT OVERRIDE" },
	{ 0x202e, "RIGHT-TO-LEFT OVERRIDE" },
	{ 0x2060, "WORD JOINER" },
	{ 0x2061, "FUNCTION APPLICATION" },
	{ 0x2062, "INVISIBLE TIMES" },
	{ 0x2063, "INVISIBLE SEPARATOR" },
	{ 0x2064, "INVISIBLE PLUS" },
	{ 0x2066, "LEFT-TO-RIGHT ISOLATE" },
	{ 0x2067, "RIGHT-TO-LEFT ISOLATE" },
	{ 0x2068, "FIRST STRONG ISOLATE" },
	{ 0x2069, "POP DIRECTIONAL ISOLATE" },
	{ 0xfeff, "ZERO WIDTH NO-BREAK SPACE" },
	{ 0xfff9, "INTERLINEAR ANNOTATION ANCHOR" },
	{ 0xfffa, "INTERLINEAR ANNOTATION SEPARATOR" },
	{ 0xfffb, "INTERLINEAR ANNOTATION TERMINATOR" },
	{ 0xe0001, "LANGUAGE TAG" },
	{ 0xe007f, "CANCEL TAG" },
};

static int
in_ranges(uint32_t cp, const struct cp_range *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (cp >= r[i].lo && cp <= r[i].hi)
			return 1;
	return 0;
}

static int
name_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

int
sg_name_okn(const char *s, size_t n, size_t max)
{
	size_t i;

	if (s == NULL || n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (!name_byte((unsigned char)s[i]))
			return 0;
	return 1;
}

int
sg_name_ok(const char *s, size_t max)
{
	/* strnlen: a string longer than max is refused without reading it
	 * all, and never read past max + 1 bytes. */
	return s != NULL && sg_name_okn(s, strnlen(s, max + 1), max);
}

int
sg_lower_hexn(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

int
sg_lower_hex_ok(const char *s, size_t n)
{
	/* strnlen: never reads past n + 1 bytes. */
	return s != NULL && strnlen(s, n + 1) == n && sg_lower_hexn(s, n);
}

int
sg_request_id_ok(const char *s)
{
	return sg_lower_hex_ok(s, SG_REQUEST_ID_LEN);
}

int
sg_country_ok(const char *s)
{
	return s != NULL && s[0] >= 'A' && s[0] <= 'Z' &&
	    s[1] >= 'A' && s[1] <= 'Z' && s[2] == '\0';
}

size_t
sg_utf8_decode(const uint8_t *s, size_t n, uint32_t *ret_cp)
{
	size_t need, k;
	uint32_t cp, min;
	uint8_t c;

	if (s == NULL || n == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*ret_cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
		cp = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		cp = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		cp = c & 0x07;
		min = 0x10000;
	} else
		return 0;               /* continuation, C0/C1, F5..FF */
	if (n - 1 < need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*ret_cp = cp;
	return need + 1;
}

int
sg_unicode_noncharacter(uint32_t cp)
{
	return (cp >= 0xfdd0 && cp <= 0xfdef) ||
	    (cp <= 0x10ffff && (cp & 0xfffe) == 0xfffe);
}

int
sg_unicode_space(uint32_t cp)
{
	return in_ranges(cp, spaces, sizeof(spaces) / sizeof(spaces[0]));
}

static int
is_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

static int
is_format(uint32_t cp)
{
	return in_ranges(cp, format_chars,
	    sizeof(format_chars) / sizeof(format_chars[0]));
}

int
sg_text_cp_allowed(uint32_t cp)
{
	return cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) &&
	    !is_control(cp) && !is_format(cp) && cp != 0x2028 &&
	    cp != 0x2029 && !sg_unicode_noncharacter(cp);
}

const char *
sg_text_cp_name(uint32_t cp)
{
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].cp == cp)
			return names[i].name;
	if (cp >= 0xe0020 && cp <= 0xe007e)
		return "a tag character";
	if (is_control(cp))
		return "a control character";
	if (is_format(cp))
		return "a format character";
	return "";
}

int
sg_text_ok(const char *s, size_t len, struct sg_text_fault *f)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, k;
	uint32_t cp = 0;

	if (s == NULL && len > 0)
		return SG_ERR_INVALID;
	while (i < len) {
		if ((k = sg_utf8_decode(p + i, len - i, &cp)) == 0 ||
		    !sg_text_cp_allowed(cp)) {
			if (f != NULL) {
				memset(f, 0, sizeof(*f));
				f->offset = i;
				f->invalid = k == 0;
				f->cp = k == 0 ? 0 : cp;
				f->noncharacter = k != 0 &&
				    sg_unicode_noncharacter(cp);
			}
			return SG_ERR_INVALID;
		}
		i += k;
	}
	return 0;
}

void
sg_text_fault_describe(const struct sg_text_fault *f, char *out, size_t cap)
{
	const char *name;

	if (out == NULL || cap == 0)
		return;
	if (f == NULL)
		snprintf(out, cap, "is not allowed text");
	else if (f->invalid)
		snprintf(out, cap, "is not valid UTF-8 (byte %zu)", f->offset);
	else if (f->noncharacter)
		snprintf(out, cap, "is not valid UTF-8: U+%04X is a "
		    "noncharacter (byte %zu)", (unsigned)f->cp, f->offset);
	else if ((name = sg_text_cp_name(f->cp))[0] != '\0')
		snprintf(out, cap, "U+%04X (%s) is not allowed (byte %zu)",
		    (unsigned)f->cp, name, f->offset);
	else
		snprintf(out, cap, "U+%04X is not allowed (byte %zu)",
		    (unsigned)f->cp, f->offset);
}

void
sg_text_escape(const char *s, size_t len, char *out, size_t cap)
{
	const uint8_t *p = (const uint8_t *)s;
	char tmp[12];
	size_t i = 0, o = 0, k, t;
	uint32_t cp = 0;

	if (out == NULL || cap == 0)
		return;
	while (s != NULL && i < len) {
		k = sg_utf8_decode(p + i, len - i, &cp);
		if (k == 0) {
			snprintf(tmp, sizeof(tmp), "\\x%02x", p[i]);
			k = 1;
		} else if (cp == '\\' || (cp < 0x80 && !sg_text_cp_allowed(cp)))
			snprintf(tmp, sizeof(tmp), "\\x%02x", (unsigned)cp);
		else if (!sg_text_cp_allowed(cp))
			snprintf(tmp, sizeof(tmp), cp > 0xffff ? "\\U%08x" :
			    "\\u%04x", (unsigned)cp);
		else {
			memcpy(tmp, p + i, k);
			tmp[k] = '\0';
		}
		t = strlen(tmp);
		if (o + t >= cap)
			break;
		memcpy(out + o, tmp, t);
		o += t;
		i += k;
	}
	out[o] = '\0';
}
