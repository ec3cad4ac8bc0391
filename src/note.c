/*
 * Signed notes, checkpoints and offline proofs (see include/sg_note.h).
 *
 * Design: these texts travel to auditors and are checked by other
 * implementations, so every parser accepts only the one rendering our
 * formatters produce: canonical base64 (sg_b64_decode is strict), decimals
 * without leading zeros, LF line ends, no extension lines and no trailing
 * bytes.  Parsers work on pointer and length, never rely on a NUL, refuse
 * input above a fixed size before looking at it, and set their outputs only
 * on success.
 *
 * Signed-note verification follows c2sp.org/signed-note: the whole note is
 * UTF-8 without control characters other than LF, the text is everything up
 * to the last blank line, every signature line must be well formed (a
 * key name is any UTF-8 without spaces or '+', so that a witness named in
 * another script is not a malformed line), lines from other keys are
 * skipped, and a line from the expected key (name and ID both match) must
 * verify; one that does not fails the whole note, as a
 * forged line next to a good one is an attack, not noise.  Only Ed25519
 * (signature type 0x01) exists here.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_entry.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_text.h"
#include "sg_util.h"

#define SIG_TYPE_ED25519 0x01
#define MAX_SIG_LINES 16
#define KEY_ID_HEX 8
#define B64_HASH_LEN 44                 /* base64 of 32 bytes */
#define VKEY_B64_LEN 44                 /* base64 of 0x01 || 32 bytes */
#define VKEY_MAX (SG_NOTE_NAME_MAX + 1 + KEY_ID_HEX + 1 + VKEY_B64_LEN)
#define UINT_MAX_CANON ((uint64_t)INT64_MAX)

/* The log serves every entry in a proof's extra line. */
_Static_assert(SG_TLOG_PROOF_EXTRA_MAX >= SG_ENTRY_MAX,
    "a log entry must fit in a proof");
_Static_assert(SG_TLOG_PROOF_MAX >= 23 + 6 + (SG_TLOG_PROOF_EXTRA_MAX + 2) /
    3 * 4 + 1 + 6 + 20 + 1 + SG_MERKLE_MAX_PROOF * 45 + 1 + SG_NOTE_MAX,
    "the largest proof must be readable");

static const char em_dash_sp[] = "\xe2\x80\x94 ";
static const char proof_magic[] = "c2sp.org/tlog-proof@v1\n";

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* Key names: printable ASCII without space or '+', 1..255 bytes. */
static int
name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SG_NOTE_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '+')
			return 0;
	return 1;
}

static int
cstr_name_ok(const char *s)
{
	return s != NULL && name_ok(s, strnlen(s, SG_NOTE_NAME_MAX + 1));
}

/*
 * The key name of a signature line, which may be another party's (a
 * witness cosigning our checkpoint): as c2sp.org/signed-note has it,
 * non-empty UTF-8 without Unicode spaces or '+'.  Our own names are the
 * narrower name_ok(); a line whose name is foreign but well formed is
 * skipped, never a reason to refuse the note.
 */
static int
sig_name_ok(const char *s, size_t n)
{
	size_t i = 0, k;
	uint32_t cp;

	if (n == 0)
		return 0;
	while (i < n) {
		if ((k = sg_utf8_decode((const uint8_t *)s + i, n - i,
		    &cp)) == 0 || cp == '+' || sg_unicode_space(cp))
			return 0;
		i += k;
	}
	return 1;
}

/*
 * A decimal in [0, max] with no sign, no leading zero (except "0") and no
 * other byte.  Works on a length, unlike sg_parse_u64.
 */
static int
parse_decimal(const char *s, size_t n, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return SG_ERR_INVALID;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SG_ERR_INVALID;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return SG_ERR_INVALID;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* Strict base64 of exactly want bytes. */
static int
b64_exact(const char *s, size_t n, uint8_t *out, size_t want)
{
	uint8_t *dec = NULL;
	size_t dlen = 0;
	int r;

	if (n != (want + 2) / 3 * 4)
		return SG_ERR_INVALID;
	if ((r = sg_b64_decode(s, n, &dec, &dlen)) != 0)
		return r;
	if (dlen != want) {
		free(dec);
		return SG_ERR_INVALID;
	}
	memcpy(out, dec, want);
	free(dec);
	return 0;
}

uint32_t
sg_note_key_id_typed(const char *name, uint8_t type,
    const uint8_t pub[SG_ED25519_PUB])
{
	const uint8_t sep[2] = { '\n', type };
	uint8_t h[32];
	unsigned int olen = 0;
	EVP_MD_CTX *ctx;

	if (name == NULL || pub == NULL)
		return 0;
	/* No error channel: abort rather than hand out a key ID that would
	 * silently match nothing (only an allocation can fail here). */
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, name, strlen(name)) != 1 ||
	    EVP_DigestUpdate(ctx, sep, sizeof(sep)) != 1 ||
	    EVP_DigestUpdate(ctx, pub, SG_ED25519_PUB) != 1 ||
	    EVP_DigestFinal_ex(ctx, h, &olen) != 1 || olen != sizeof(h))
		abort();
	EVP_MD_CTX_free(ctx);
	return get_be32(h);
}

uint32_t
sg_note_key_id(const char *name, const uint8_t pub[SG_ED25519_PUB])
{
	return sg_note_key_id_typed(name, SIG_TYPE_ED25519, pub);
}

/*
 * A malloc'd rendering of fmt that must fit in cap bytes with its NUL:
 * SG_ERR_INTERNAL when it does not (the caller's bound is wrong).
 */
static int __attribute__((format(printf, 3, 4)))
render(char **ret, size_t cap, const char *fmt, ...)
{
	va_list ap;
	char *buf;
	int n;

	if ((buf = malloc(cap)) == NULL)
		return SG_ERR_NOMEM;
	va_start(ap, fmt);
	n = vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap) {
		free(buf);
		return SG_ERR_INTERNAL;
	}
	*ret = buf;
	return 0;
}

int
sg_note_vkey_format_typed(const char *name, uint8_t type,
    const uint8_t pub[SG_ED25519_PUB], char **ret)
{
	uint8_t raw[1 + SG_ED25519_PUB];
	char *b64;
	int r;

	if (pub == NULL || ret == NULL || !cstr_name_ok(name))
		return SG_ERR_INVALID;
	raw[0] = type;
	memcpy(raw + 1, pub, SG_ED25519_PUB);
	if ((b64 = sg_b64_encode(raw, sizeof(raw))) == NULL)
		return SG_ERR_NOMEM;
	r = render(ret, VKEY_MAX + 1, "%s+%08x+%s", name,
	    (unsigned)sg_note_key_id_typed(name, type, pub), b64);
	free(b64);
	return r;
}

int
sg_note_vkey_format(const char *name, const uint8_t pub[SG_ED25519_PUB],
    char **ret)
{
	return sg_note_vkey_format_typed(name, SIG_TYPE_ED25519, pub, ret);
}

int
sg_note_vkey_parse_typed(const char *vkey, uint8_t type,
    char ret_name[SG_NOTE_NAME_MAX + 1], uint32_t *ret_id,
    uint8_t ret_pub[SG_ED25519_PUB])
{
	uint8_t raw[1 + SG_ED25519_PUB];
	char name[SG_NOTE_NAME_MAX + 1];
	const char *p1, *p2;
	size_t len, nlen, i;
	uint32_t id = 0;

	if (vkey == NULL || ret_name == NULL || ret_id == NULL ||
	    ret_pub == NULL)
		return SG_ERR_INVALID;
	if ((len = strnlen(vkey, VKEY_MAX + 1)) > VKEY_MAX)
		return SG_ERR_TOO_LARGE;
	/* Names have no '+', so the first two split the three fields. */
	if ((p1 = memchr(vkey, '+', len)) == NULL)
		return SG_ERR_INVALID;
	nlen = (size_t)(p1 - vkey);
	if (!name_ok(vkey, nlen))
		return SG_ERR_INVALID;
	p1++;
	if ((size_t)(vkey + len - p1) < KEY_ID_HEX + 1 ||
	    p1[KEY_ID_HEX] != '+')
		return SG_ERR_INVALID;
	for (i = 0; i < KEY_ID_HEX; i++) {
		char c = p1[i];
		int v;

		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return SG_ERR_INVALID;
		id = id << 4 | (uint32_t)v;
	}
	p2 = p1 + KEY_ID_HEX + 1;
	if (b64_exact(p2, (size_t)(vkey + len - p2), raw, sizeof(raw)) != 0)
		return SG_ERR_INVALID;
	if (raw[0] != type)
		return SG_ERR_MECHANISM;
	memcpy(name, vkey, nlen);
	name[nlen] = '\0';
	/* The ID is redundant; one that does not match is a typo or a
	 * different key, never something to trust. */
	if (sg_note_key_id_typed(name, type, raw + 1) != id)
		return SG_ERR_INVALID;
	memcpy(ret_name, name, nlen + 1);
	*ret_id = id;
	memcpy(ret_pub, raw + 1, SG_ED25519_PUB);
	return 0;
}

int
sg_note_vkey_parse(const char *vkey, char ret_name[SG_NOTE_NAME_MAX + 1],
    uint32_t *ret_id, uint8_t ret_pub[SG_ED25519_PUB])
{
	return sg_note_vkey_parse_typed(vkey, SIG_TYPE_ED25519, ret_name,
	    ret_id, ret_pub);
}

int
sg_note_signature_line_raw(const char *name, const uint8_t *raw,
    size_t rawlen, char **ret)
{
	char *b64;
	int r;

	if (raw == NULL || rawlen < 5 || rawlen > SG_NOTE_SIG_RAW_MAX ||
	    ret == NULL || !cstr_name_ok(name))
		return SG_ERR_INVALID;
	if ((b64 = sg_b64_encode(raw, rawlen)) == NULL)
		return SG_ERR_NOMEM;
	r = render(ret, sizeof(em_dash_sp) + strlen(name) + 1 + strlen(b64) + 2,
	    "%s%s %s\n", em_dash_sp, name, b64);
	free(b64);
	return r;
}

int
sg_note_signature_line(const char *name, uint32_t id,
    const uint8_t sig[SG_ED25519_SIG], char **ret)
{
	uint8_t raw[4 + SG_ED25519_SIG];

	if (sig == NULL)
		return SG_ERR_INVALID;
	raw[0] = (uint8_t)(id >> 24);
	raw[1] = (uint8_t)(id >> 16);
	raw[2] = (uint8_t)(id >> 8);
	raw[3] = (uint8_t)id;
	memcpy(raw + 4, sig, SG_ED25519_SIG);
	return sg_note_signature_line_raw(name, raw, sizeof(raw), ret);
}

/*
 * Well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF) with no control character other than LF.
 */
static int
note_chars_ok(const uint8_t *s, size_t n)
{
	size_t i = 0, k;
	uint32_t cp;

	while (i < n) {
		if ((k = sg_utf8_decode(s + i, n - i, &cp)) == 0 ||
		    (cp < 0x20 && cp != '\n'))
			return 0;
		i += k;
	}
	return 1;
}

static int
ed25519_verify(const uint8_t pub[SG_ED25519_PUB], const uint8_t *msg,
    size_t len, const uint8_t sig[SG_ED25519_SIG])
{
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *ctx = NULL;
	int r = SG_ERR_CRYPTO;

	if ((pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
	    SG_ED25519_PUB)) == NULL) {
		/* Not a point on the curve: no signature can verify. */
		r = SG_ERR_VERIFY;
		goto out;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1)
		goto out;
	r = EVP_DigestVerify(ctx, sig, SG_ED25519_SIG, msg, len) == 1 ?
	    0 : SG_ERR_VERIFY;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return r;
}

int
sg_note_signatures(const char *note, size_t len, sg_note_sig_fn fn,
    void *ctx, size_t *ret_text_len)
{
	const char *p, *end, *nl, *sp, *sigs = NULL;
	uint8_t *dec = NULL;
	size_t text_len = 0, nlen, dlen = 0, nsig = 0, i;
	int r = SG_ERR_INVALID;

	if (note == NULL || fn == NULL || ret_text_len == NULL)
		return SG_ERR_INVALID;
	if (len > SG_NOTE_MAX)
		return SG_ERR_TOO_LARGE;
	if (!note_chars_ok((const uint8_t *)note, len))
		return SG_ERR_INVALID;
	/* The text ends at the last blank line. */
	for (i = len; i >= 2; i--) {
		if (note[i - 1] == '\n' && note[i - 2] == '\n') {
			text_len = i - 1;
			sigs = note + i;
			break;
		}
	}
	if (sigs == NULL)
		return SG_ERR_INVALID;
	end = note + len;
	if (sigs == end || end[-1] != '\n')
		return SG_ERR_INVALID;
	for (p = sigs; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (++nsig > MAX_SIG_LINES)
			goto out;
		if ((size_t)(nl - p) < sizeof(em_dash_sp) - 1 ||
		    memcmp(p, em_dash_sp, sizeof(em_dash_sp) - 1) != 0)
			goto out;
		p += sizeof(em_dash_sp) - 1;
		if ((sp = memchr(p, ' ', (size_t)(nl - p))) == NULL)
			goto out;
		nlen = (size_t)(sp - p);
		if (!sig_name_ok(p, nlen))
			goto out;
		free(dec);
		dec = NULL;
		if (sg_b64_decode(sp + 1, (size_t)(nl - sp - 1), &dec,
		    &dlen) != 0 || dlen < 5)
			goto out;
		if ((r = fn(ctx, p, nlen, dec, dlen, text_len)) != 0)
			goto out;
		r = SG_ERR_INVALID;
	}
	*ret_text_len = text_len;
	r = 0;
out:
	free(dec);
	return r;
}

int
sg_note_sig_by(const char *name, size_t nlen, const uint8_t *raw,
    const char *key_name, uint32_t id)
{
	return nlen == strlen(key_name) && memcmp(name, key_name, nlen) == 0 &&
	    get_be32(raw) == id;
}

struct note_verify_ctx {
	const char *note;
	const char *name;
	uint32_t id;
	const uint8_t *pub;
	int verified;
};

static int
note_verify_line(void *arg, const char *name, size_t nlen,
    const uint8_t *raw, size_t rawlen, size_t text_len)
{
	struct note_verify_ctx *c = arg;
	int r;

	if (!sg_note_sig_by(name, nlen, raw, c->name, c->id))
		return 0;
	if (rawlen != 4 + SG_ED25519_SIG)
		return SG_ERR_VERIFY;
	if ((r = ed25519_verify(c->pub, (const uint8_t *)c->note, text_len,
	    raw + 4)) != 0)
		return r;
	c->verified = 1;
	return 0;
}

int
sg_note_verify(const char *note, size_t len, const char *name, uint32_t id,
    const uint8_t pub[SG_ED25519_PUB], size_t *ret_text_len)
{
	struct note_verify_ctx c;
	size_t text_len = 0;
	int r;

	if (note == NULL || pub == NULL || ret_text_len == NULL ||
	    !cstr_name_ok(name))
		return SG_ERR_INVALID;
	memset(&c, 0, sizeof(c));
	c.note = note;
	c.name = name;
	c.id = id;
	c.pub = pub;
	if ((r = sg_note_signatures(note, len, note_verify_line, &c,
	    &text_len)) != 0)
		return r;
	if (!c.verified)
		return SG_ERR_VERIFY;
	*ret_text_len = text_len;
	return 0;
}

static int
origin_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > SG_NOTE_NAME_MAX || s[0] == ' ' || s[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

int
sg_checkpoint_origin_ok(const char *origin)
{
	return origin != NULL &&
	    origin_ok(origin, strnlen(origin, SG_NOTE_NAME_MAX + 1));
}

int
sg_checkpoint_format(const struct sg_checkpoint *c, char **ret)
{
	char *b64 = NULL;
	size_t olen;
	int r;

	if (c == NULL || ret == NULL)
		return SG_ERR_INVALID;
	olen = strnlen(c->origin, sizeof(c->origin));
	if (olen == sizeof(c->origin) || !origin_ok(c->origin, olen) ||
	    c->size > UINT_MAX_CANON)
		return SG_ERR_INVALID;
	if ((b64 = sg_b64_encode(c->root, SG_HASH_LEN)) == NULL)
		return SG_ERR_NOMEM;
	r = render(ret, olen + 1 + 20 + 1 + B64_HASH_LEN + 2, "%s\n%llu\n%s\n",
	    c->origin, (unsigned long long)c->size, b64);
	free(b64);
	return r;
}

/* The next LF-terminated line of [*p, end) without its LF. */
static int
next_line(const char **p, const char *end, const char **ret_line,
    size_t *ret_len)
{
	const char *nl;

	if (*p >= end || (nl = memchr(*p, '\n', (size_t)(end - *p))) == NULL)
		return SG_ERR_INVALID;
	*ret_line = *p;
	*ret_len = (size_t)(nl - *p);
	*p = nl + 1;
	return 0;
}

int
sg_checkpoint_parse(const char *text, size_t len, struct sg_checkpoint *ret)
{
	struct sg_checkpoint c;
	const char *p, *end, *line;
	size_t n;

	if (text == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (len > SG_NOTE_MAX)
		return SG_ERR_TOO_LARGE;
	memset(&c, 0, sizeof(c));
	p = text;
	end = text + len;
	if (next_line(&p, end, &line, &n) != 0 || !origin_ok(line, n))
		return SG_ERR_INVALID;
	memcpy(c.origin, line, n);
	c.origin[n] = '\0';
	if (next_line(&p, end, &line, &n) != 0 ||
	    parse_decimal(line, n, UINT_MAX_CANON, &c.size) != 0)
		return SG_ERR_INVALID;
	if (next_line(&p, end, &line, &n) != 0 ||
	    b64_exact(line, n, c.root, SG_HASH_LEN) != 0)
		return SG_ERR_INVALID;
	/* We never write extension lines, so any is a foreign checkpoint. */
	if (p != end)
		return SG_ERR_INVALID;
	*ret = c;
	return 0;
}

void
sg_tlog_proof_clear(struct sg_tlog_proof *p)
{
	if (p == NULL)
		return;
	free(p->extra);
	free(p->note);
	memset(p, 0, sizeof(*p));
}

/*
 * The embedded note has the shape of a signed note (text, blank line,
 * signature lines, final LF) and no NUL.  Whether it verifies is for
 * sg_note_verify(); this only keeps junk out of a proof bundle.
 */
static int
proof_note_ok(const char *note, size_t len)
{
	const char *blank;

	if (note == NULL || len < 4 || len > SG_NOTE_MAX ||
	    note[len - 1] != '\n' || note[len - 2] == '\n' ||
	    memchr(note, '\0', len) != NULL)
		return 0;
	blank = memmem(note, len, "\n\n", 2);
	return blank != NULL && blank > note && blank + 2 < note + len;
}

int
sg_tlog_proof_format(const struct sg_tlog_proof *p, char **ret)
{
	char *extra = NULL, *buf = NULL, *hb, *o;
	size_t cap, i, elen = 0;
	int n, r = SG_ERR_INTERNAL;

	if (p == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (p->nhashes > SG_MERKLE_MAX_PROOF || p->index > UINT_MAX_CANON ||
	    !proof_note_ok(p->note, p->note_len))
		return SG_ERR_INVALID;
	if (p->extra != NULL) {
		/* "extra " with nothing after it would be ambiguous. */
		if (p->extra_len == 0)
			return SG_ERR_INVALID;
		if (p->extra_len > SG_TLOG_PROOF_EXTRA_MAX)
			return SG_ERR_TOO_LARGE;
		if ((extra = sg_b64_encode(p->extra, p->extra_len)) == NULL)
			return SG_ERR_NOMEM;
		elen = strlen(extra);
	}
	/* Bounded by the checks above to a few hundred KiB. */
	cap = sizeof(proof_magic) + (extra != NULL ? 6 + elen + 1 : 0) +
	    6 + 20 + 1 + p->nhashes * (B64_HASH_LEN + 1) + 1 + p->note_len + 1;
	if ((buf = malloc(cap)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	n = snprintf(buf, cap, "%s%s%s%sindex %llu\n", proof_magic,
	    extra != NULL ? "extra " : "", extra != NULL ? extra : "",
	    extra != NULL ? "\n" : "", (unsigned long long)p->index);
	if (n < 0 || (size_t)n >= cap)
		goto out;
	o = buf + n;
	for (i = 0; i < p->nhashes; i++) {
		if ((hb = sg_b64_encode(p->hashes[i], SG_HASH_LEN)) == NULL) {
			r = SG_ERR_NOMEM;
			goto out;
		}
		memcpy(o, hb, B64_HASH_LEN);
		o[B64_HASH_LEN] = '\n';
		o += B64_HASH_LEN + 1;
		free(hb);
	}
	*o++ = '\n';
	memcpy(o, p->note, p->note_len);
	o[p->note_len] = '\0';
	/* The parser's limit, so that whatever we write can be read back. */
	if ((size_t)(o - buf) + p->note_len > SG_TLOG_PROOF_MAX) {
		r = SG_ERR_TOO_LARGE;
		goto out;
	}
	*ret = buf;
	buf = NULL;
	r = 0;
out:
	free(extra);
	free(buf);
	return r;
}

int
sg_tlog_proof_parse(const char *text, size_t len, struct sg_tlog_proof *ret)
{
	static const char extra_pfx[] = "extra ", index_pfx[] = "index ";
	struct sg_tlog_proof t;
	const char *p, *end, *line;
	size_t n, ml = sizeof(proof_magic) - 1;
	int r = SG_ERR_INVALID;

	if (text == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (len > SG_TLOG_PROOF_MAX)
		return SG_ERR_TOO_LARGE;
	memset(&t, 0, sizeof(t));
	if (len < ml || memcmp(text, proof_magic, ml) != 0)
		goto out;
	p = text + ml;
	end = text + len;
	if ((r = next_line(&p, end, &line, &n)) != 0)
		goto out;
	r = SG_ERR_INVALID;
	if (n >= sizeof(extra_pfx) - 1 &&
	    memcmp(line, extra_pfx, sizeof(extra_pfx) - 1) == 0) {
		line += sizeof(extra_pfx) - 1;
		n -= sizeof(extra_pfx) - 1;
		if (n == 0 ||
		    sg_b64_decode(line, n, &t.extra, &t.extra_len) != 0 ||
		    t.extra_len > SG_TLOG_PROOF_EXTRA_MAX)
			goto out;
		if (next_line(&p, end, &line, &n) != 0)
			goto out;
	}
	if (n < sizeof(index_pfx) - 1 ||
	    memcmp(line, index_pfx, sizeof(index_pfx) - 1) != 0 ||
	    parse_decimal(line + sizeof(index_pfx) - 1,
	    n - (sizeof(index_pfx) - 1), UINT_MAX_CANON, &t.index) != 0)
		goto out;
	for (;;) {
		if (next_line(&p, end, &line, &n) != 0)
			goto out;
		if (n == 0)
			break;
		if (t.nhashes == SG_MERKLE_MAX_PROOF)
			goto out;
		if (b64_exact(line, n, t.hashes[t.nhashes], SG_HASH_LEN) != 0)
			goto out;
		t.nhashes++;
	}
	n = (size_t)(end - p);
	if (!proof_note_ok(p, n))
		goto out;
	if ((t.note = malloc(n + 1)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	memcpy(t.note, p, n);
	t.note[n] = '\0';
	t.note_len = n;
	*ret = t;
	memset(&t, 0, sizeof(t));      /* transferred */
	r = 0;
out:
	sg_tlog_proof_clear(&t);
	return r;
}
