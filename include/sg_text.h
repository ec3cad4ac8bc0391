/*
 * Text rules that every process applies the same way: the front, the
 * signer process, the evidence checker and the CLI all call these, so that
 * no two copies can drift.  Pure functions, no locale: bytes are compared
 * as numbers, never through <ctype.h>, so setlocale() cannot change what
 * is accepted.
 *
 * Names (principals, keys, groups, sites, artifact field names, ...):
 *     1..max bytes of A-Z a-z 0-9 . _ -
 *
 * Free text shown to people (artifact name, version and other artifact
 * values): well-formed UTF-8 (no overlong forms, surrogates, code points
 * above U+10FFFF or noncharacters) without code points of general
 * category Cc (C0, DEL, C1), Cf (format: bidirectional controls, zero
 * width characters, tags, ...; Unicode 15) or Zl/Zp (U+2028, U+2029).
 * What a reader sees is then what the bytes say: no reordering, no hidden
 * characters, no line breaks.
 */
#ifndef SG_TEXT_H
#define SG_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "sg_limits.h"             /* SG_NAME_LEN_MAX, SG_REQUEST_ID_LEN */

/* The name grammar: 1..max bytes of [A-Za-z0-9._-], NUL-terminated. */
int sg_name_ok(const char *s, size_t max);
/* The same over a length (no NUL needed; a NUL byte is refused). */
int sg_name_okn(const char *s, size_t n, size_t max);
/* The n bytes at s are lower-case hex digits (no NUL needed). */
int sg_lower_hexn(const char *s, size_t n);
/* Exactly n lower-case hex digits, NUL-terminated (reads at most n + 1
 * bytes); a NULL s is refused. */
int sg_lower_hex_ok(const char *s, size_t n);
/* A request id: exactly 32 lower-case hex digits. */
int sg_request_id_ok(const char *s);
/* An ISO 3166-1 alpha-2 country code: two upper-case ASCII letters. */
int sg_country_ok(const char *s);

/*
 * Decodes one UTF-8 sequence at s (n > 0 bytes available).  Returns its
 * length (1..4) and the code point, or 0 if the bytes there are not
 * well-formed UTF-8 (a stray continuation byte, a truncated sequence, an
 * overlong form, a surrogate, or a value above U+10FFFF).
 */
size_t sg_utf8_decode(const uint8_t *s, size_t n, uint32_t *ret_cp);

/* 1 for U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF. */
int sg_unicode_noncharacter(uint32_t cp);
/* 1 for the White_Space property (what C2SP signed notes call spaces). */
int sg_unicode_space(uint32_t cp);
/* 1 if cp may appear in free text (see above). */
int sg_text_cp_allowed(uint32_t cp);
/* The Unicode name (or a description such as "a tag character") of a
 * refused code point; "" if none is known. */
const char *sg_text_cp_name(uint32_t cp);

struct sg_text_fault {
	size_t offset;          /* byte offset of the refused sequence */
	uint32_t cp;            /* the code point, if not invalid */
	int invalid;            /* 1: not well-formed UTF-8 at offset */
	int noncharacter;       /* 1: cp is a noncharacter */
};

/*
 * Checks free text of len bytes.  0 if it follows the rule; otherwise
 * SG_ERR_INVALID and, if f is not NULL, where and what the first refused
 * sequence is.  A NUL byte is a control character (refused).
 */
int sg_text_ok(const char *s, size_t len, struct sg_text_fault *f);

/* "U+202E (RIGHT-TO-LEFT OVERRIDE) is not allowed",
 * "is not valid UTF-8 (byte 3)", ...: for "FIELD: <this>" messages. */
void sg_text_fault_describe(const struct sg_text_fault *f, char *out,
    size_t cap);

/*
 * For display: allowed text is copied as it is; a refused ASCII control,
 * a backslash and a byte that is not UTF-8 become \x and two hex digits,
 * any other refused code point \u and four hex digits (or \U and eight),
 * so the output is always allowed text and never ambiguous.  At most 4
 * output bytes per input byte; truncates at a character boundary; out is
 * NUL-terminated.
 */
void sg_text_escape(const char *s, size_t len, char *out, size_t cap);

#endif
