/*
 * The approval statement, the approval body, DSSE v1 pre-authentication
 * encoding and the DSSE envelope (see include/sg_dsse.h and
 * docs/API.md, "The approval statement and its envelope").
 *
 * Design: the statement has exactly one rendering.  sg_statement_build() is
 * the only place that knows the text layout and it validates every field;
 * sg_statement_parse() merely tokenises the lines (eight, or nine for a
 * grant; the first line says the kind) into a struct and
 * then renders that struct again and demands the result equal the input
 * byte for byte.  Whatever the tokeniser lets through (leading zeros,
 * upper-case hex, odd names, missing or extra bytes) is therefore caught by
 * the one validator, and "parse then build" is the identity on every text
 * that parses.  An officer's signature covers these bytes, so there must be
 * no second way to write the same statement.
 *
 * The envelope parser is strict in the same spirit: jansson with
 * JSON_REJECT_DUPLICATES after a size cap, exactly the members DSSE names,
 * exactly one signature, strict base64.  Errors name the offending member
 * so that the daemon can return them as the problem's "field".
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_text.h"
#include "sg_util.h"
#include "sg_webauthn.h"

/* A grant's statement, the longest, has nine lines. */
#define STATEMENT_LINES_MAX 9

static const char decision_approve[] = "decision approve\n";
static const char decision_reject[] = "decision reject\n";

/* The first line and the id's keyword of each kind's statement, and its
 * number of lines; indexed by enum sg_kind. */
static const struct {
	const char *head;
	const char *id;
	size_t nlines;
} kinds[] = {
	{ "signgate approval v1", "request", 8 },
	{ "signgate release approval v1", "release", 8 },
	{ "signgate grant approval v1", "grant", 9 },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* 0 for a name that is not one of our digests. */
static size_t
digest_hex_len(const char *alg)
{
	return 2 * sg_digest_len(sg_digest_from_name(alg));
}

/* The fields every kind has. */
static int
common_valid(const struct sg_statement *s)
{
	enum sg_format format;

	/* The arrays must be NUL-terminated before strlen() may look. */
	if (memchr(s->request, '\0', sizeof(s->request)) == NULL ||
	    memchr(s->key, '\0', sizeof(s->key)) == NULL ||
	    memchr(s->spki_sha256, '\0', sizeof(s->spki_sha256)) == NULL ||
	    memchr(s->digest_alg, '\0', sizeof(s->digest_alg)) == NULL ||
	    memchr(s->digest_hex, '\0', sizeof(s->digest_hex)) == NULL ||
	    memchr(s->format, '\0', sizeof(s->format)) == NULL ||
	    memchr(s->requester, '\0', sizeof(s->requester)) == NULL ||
	    memchr(s->policy_name, '\0', sizeof(s->policy_name)) == NULL ||
	    memchr(s->policy_sha256, '\0', sizeof(s->policy_sha256)) == NULL ||
	    memchr(s->manifest_root, '\0', sizeof(s->manifest_root)) == NULL ||
	    memchr(s->pattern, '\0', sizeof(s->pattern)) == NULL)
		return 0;
	if (!sg_request_id_ok(s->request) ||
	    !sg_name_ok(s->key, SG_NAME_LEN_MAX) ||
	    !sg_name_ok(s->requester, SG_NAME_LEN_MAX) ||
	    !sg_name_ok(s->policy_name, SG_NAME_LEN_MAX) ||
	    !sg_lower_hex_ok(s->spki_sha256, SG_SHA256_HEX_LEN) ||
	    !sg_lower_hex_ok(s->policy_sha256, SG_SHA256_HEX_LEN))
		return 0;
	if (sg_format_parse(s->format, &format) != 0)
		return 0;
	if (s->expires < 0)
		return 0;
	return 1;
}

/* The fields of s's kind, and the other kinds' fields empty. */
static int
kind_valid(const struct sg_statement *s)
{
	size_t dlen;

	switch (s->kind) {
	case SG_KIND_REQUEST:
		if (s->count != 0 || s->manifest_root[0] != '\0' ||
		    s->pattern[0] != '\0')
			return 0;
		return (dlen = digest_hex_len(s->digest_alg)) != 0 &&
		    sg_lower_hex_ok(s->digest_hex, dlen);
	case SG_KIND_RELEASE:
		if (s->digest_alg[0] != '\0' || s->digest_hex[0] != '\0' ||
		    s->pattern[0] != '\0')
			return 0;
		return s->count >= 1 && s->count <= SG_RELEASE_MAX &&
		    sg_lower_hex_ok(s->manifest_root, SG_SHA256_HEX_LEN);
	case SG_KIND_GRANT:
		if (s->digest_alg[0] != '\0' || s->digest_hex[0] != '\0' ||
		    s->manifest_root[0] != '\0')
			return 0;
		return s->count >= 1 && s->count <= SG_GRANT_MAX &&
		    sg_pattern_valid(s->pattern);
	}
	return 0;
}

static int
statement_valid(const struct sg_statement *s)
{
	return common_valid(s) && kind_valid(s);
}

/* The kind's own lines, between "key" and "format". */
static int
render_kind(const struct sg_statement *s, char *buf, size_t cap)
{
	switch (s->kind) {
	case SG_KIND_REQUEST:
		return snprintf(buf, cap, "artifact %s:%s\n", s->digest_alg,
		    s->digest_hex);
	case SG_KIND_RELEASE:
		return snprintf(buf, cap, "manifest sha256:%s %llu\n",
		    s->manifest_root, (unsigned long long)s->count);
	case SG_KIND_GRANT:
		return snprintf(buf, cap, "count %llu\nartifact %s\n",
		    (unsigned long long)s->count, s->pattern);
	}
	return -1;
}

int
sg_statement_build(const struct sg_statement *s, char **ret, size_t *ret_len)
{
	char *buf = NULL, mid[SG_PATTERN_SIZE + 64];
	int n, r = SG_ERR_INTERNAL;

	if (s == NULL || ret == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	if (!statement_valid(s))
		return SG_ERR_INVALID;
	n = render_kind(s, mid, sizeof(mid));
	if (n < 0 || (size_t)n >= sizeof(mid))
		return SG_ERR_INTERNAL;
	if ((buf = malloc(SG_STATEMENT_MAX + 1)) == NULL)
		return SG_ERR_NOMEM;
	n = snprintf(buf, SG_STATEMENT_MAX + 1,
	    "%s\n"
	    "%s %s\n"
	    "key %s sha256:%s\n"
	    "%s"
	    "format %s\n"
	    "requester %s\n"
	    "policy %s@%llu sha256:%s\n"
	    "expires %lld\n",
	    kinds[s->kind].head, kinds[s->kind].id, s->request, s->key,
	    s->spki_sha256, mid, s->format, s->requester, s->policy_name,
	    s->policy_version, s->policy_sha256, s->expires);
	if (n < 0 || n > SG_STATEMENT_MAX) {
		r = SG_ERR_TOO_LARGE;
		goto out;
	}
	*ret = buf;
	*ret_len = (size_t)n;
	buf = NULL;
	r = 0;
out:
	free(buf);
	return r;
}

/* A cursor over one line of the statement (without its LF). */
struct cursor {
	const char *p;
	const char *end;
};

static int
take_literal(struct cursor *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return SG_ERR_INVALID;
	c->p += n;
	return 0;
}

/*
 * Copies the bytes up to the first `stop` (or the end of the line when stop
 * is '\0') into out.  No validation beyond the size: the rebuild does it.
 */
static int
take_until(struct cursor *c, char stop, char *out, size_t cap)
{
	const char *q = c->p;
	size_t n;

	while (q < c->end && *q != stop)
		q++;
	if (stop != '\0' && q == c->end)
		return SG_ERR_INVALID;
	n = (size_t)(q - c->p);
	if (n == 0 || n >= cap)
		return SG_ERR_INVALID;
	memcpy(out, c->p, n);
	out[n] = '\0';
	c->p = q;
	return 0;
}

/* A decimal number up to the stop (see take_until), in [min, max]. */
static int
take_number(struct cursor *c, char stop, uint64_t min, uint64_t max,
    uint64_t *ret)
{
	char num[24];

	if (take_until(c, stop, num, sizeof(num)) != 0 ||
	    sg_parse_u64(num, min, max, ret) != 0)
		return SG_ERR_INVALID;
	return 0;
}

/* "<word> <value>" as the whole line. */
static int
take_field(struct cursor *c, const char *word, char *out, size_t cap)
{
	if (take_literal(c, word) != 0 || take_literal(c, " ") != 0 ||
	    take_until(c, '\0', out, cap) != 0)
		return SG_ERR_INVALID;
	return 0;
}

/* The kind's own lines (one, or two for a grant). */
static int
parse_kind_lines(struct cursor *l, struct sg_statement *s)
{
	uint64_t v;

	switch (s->kind) {
	case SG_KIND_REQUEST:
		if (take_literal(&l[0], "artifact ") != 0 ||
		    take_until(&l[0], ':', s->digest_alg,
		    sizeof(s->digest_alg)) != 0 ||
		    take_literal(&l[0], ":") != 0 ||
		    take_until(&l[0], '\0', s->digest_hex,
		    sizeof(s->digest_hex)) != 0)
			return SG_ERR_INVALID;
		return 0;
	case SG_KIND_RELEASE:
		if (take_literal(&l[0], "manifest sha256:") != 0 ||
		    take_until(&l[0], ' ', s->manifest_root,
		    sizeof(s->manifest_root)) != 0 ||
		    take_literal(&l[0], " ") != 0 ||
		    take_number(&l[0], '\0', 0, UINT64_MAX, &v) != 0)
			return SG_ERR_INVALID;
		s->count = v;
		return 0;
	case SG_KIND_GRANT:
		if (take_literal(&l[0], "count ") != 0 ||
		    take_number(&l[0], '\0', 0, UINT64_MAX, &v) != 0 ||
		    take_field(&l[1], "artifact", s->pattern,
		    sizeof(s->pattern)) != 0)
			return SG_ERR_INVALID;
		s->count = v;
		return 0;
	}
	return SG_ERR_INVALID;
}

/* Every kind's lines after its own: format, requester, policy, expires. */
static int
parse_tail_lines(struct cursor *l, struct sg_statement *s)
{
	uint64_t v;

	if (take_field(&l[0], "format", s->format, sizeof(s->format)) != 0 ||
	    take_field(&l[1], "requester", s->requester,
	    sizeof(s->requester)) != 0)
		return SG_ERR_INVALID;

	if (take_literal(&l[2], "policy ") != 0 ||
	    take_until(&l[2], '@', s->policy_name,
	    sizeof(s->policy_name)) != 0 ||
	    take_literal(&l[2], "@") != 0 ||
	    take_number(&l[2], ' ', 0, UINT64_MAX, &v) != 0 ||
	    take_literal(&l[2], " sha256:") != 0 ||
	    take_until(&l[2], '\0', s->policy_sha256,
	    sizeof(s->policy_sha256)) != 0)
		return SG_ERR_INVALID;
	s->policy_version = (unsigned long long)v;

	if (take_literal(&l[3], "expires ") != 0 ||
	    take_number(&l[3], '\0', 0, (uint64_t)LLONG_MAX, &v) != 0)
		return SG_ERR_INVALID;
	s->expires = (long long)v;
	return 0;
}

/* The first line says the kind; s->kind is set. */
static int
parse_head(struct cursor *l, size_t n, struct sg_statement *s)
{
	size_t i, hl;

	for (i = 0; i < NKINDS; i++) {
		hl = strlen(kinds[i].head);
		if ((size_t)(l->end - l->p) == hl &&
		    memcmp(l->p, kinds[i].head, hl) == 0 &&
		    n == kinds[i].nlines) {
			s->kind = (enum sg_kind)i;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}

static int
parse_lines(struct cursor *lines, size_t n, struct sg_statement *s)
{
	size_t tail;

	if (parse_head(&lines[0], n, s) != 0)
		return SG_ERR_INVALID;
	if (take_field(&lines[1], kinds[s->kind].id, s->request,
	    sizeof(s->request)) != 0)
		return SG_ERR_INVALID;

	if (take_literal(&lines[2], "key ") != 0 ||
	    take_until(&lines[2], ' ', s->key, sizeof(s->key)) != 0 ||
	    take_literal(&lines[2], " sha256:") != 0 ||
	    take_until(&lines[2], '\0', s->spki_sha256,
	    sizeof(s->spki_sha256)) != 0)
		return SG_ERR_INVALID;

	if (parse_kind_lines(&lines[3], s) != 0)
		return SG_ERR_INVALID;
	/* format, requester, policy, expires: the last four lines. */
	tail = n - 4;
	return parse_tail_lines(&lines[tail], s);
}

int
sg_statement_parse(const char *text, size_t len, struct sg_statement *ret)
{
	struct cursor lines[STATEMENT_LINES_MAX];
	struct sg_statement s;
	const char *p, *end, *nl;
	char *again = NULL;
	size_t again_len = 0, n = 0;
	int r = SG_ERR_INVALID;

	if (text == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (len > SG_STATEMENT_MAX)
		return SG_ERR_TOO_LARGE;
	memset(&s, 0, sizeof(s));
	p = text;
	end = text + len;
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			goto out;          /* last line without LF */
		if (n == STATEMENT_LINES_MAX)
			goto out;          /* an extra line */
		lines[n].p = p;
		lines[n].end = nl;
		n++;
		p = nl + 1;
	}
	if (n == 0)
		goto out;
	if ((r = parse_lines(lines, n, &s)) != 0)
		goto out;
	/* The one validator, and the one rendering, decide. */
	if ((r = sg_statement_build(&s, &again, &again_len)) != 0) {
		r = SG_ERR_INVALID;
		goto out;
	}
	if (again_len != len || memcmp(again, text, len) != 0) {
		r = SG_ERR_INVALID;
		goto out;
	}
	*ret = s;
	r = 0;
out:
	free(again);
	return r;
}

static const char reason_word[] = "reason ";

/* The reason line ("reason <text>\n") that ends body[0..len), if any:
 * its offset, or len when the body ends otherwise. */
static size_t
reason_line_at(const uint8_t *body, size_t len)
{
	size_t i;

	if (len == 0 || body[len - 1] != '\n')
		return len;
	for (i = len - 1; i > 0 && body[i - 1] != '\n'; i--)
		;
	if (len - i < sizeof(reason_word) - 1 ||
	    memcmp(body + i, reason_word, sizeof(reason_word) - 1) != 0)
		return len;
	return i;
}

/* A reason: 1..SG_REJECT_REASON_MAX bytes of text (sg_text_ok: one line,
 * no controls), as a cancel reason. */
static int
reason_ok(const char *s, size_t n)
{
	return n >= 1 && n <= SG_REJECT_REASON_MAX && sg_text_ok(s, n,
	    NULL) == 0;
}

int
sg_body_split_reason(const uint8_t *body, size_t len, size_t *ret_stmt_len,
    int *ret_approve, char *reason, size_t cap)
{
	size_t la = sizeof(decision_approve) - 1;
	size_t lr = sizeof(decision_reject) - 1;
	const char *text;
	size_t at, rlen = 0;

	if (body == NULL || ret_stmt_len == NULL || ret_approve == NULL ||
	    (reason != NULL && cap < SG_REJECT_REASON_MAX + 1))
		return SG_ERR_INVALID;
	if (len > SG_STATEMENT_MAX + lr + sizeof(reason_word) - 1 +
	    SG_REJECT_REASON_MAX + 1)
		return SG_ERR_TOO_LARGE;
	if ((at = reason_line_at(body, len)) < len) {
		/* Only a reject has a reason. */
		text = (const char *)body + at + sizeof(reason_word) - 1;
		rlen = len - at - (sizeof(reason_word) - 1) - 1;
		if (!reason_ok(text, rlen))
			return SG_ERR_INVALID;
		if (at <= lr || memcmp(body + at - lr, decision_reject,
		    lr) != 0 || body[at - lr - 1] != '\n')
			return SG_ERR_INVALID;
		if (at - lr > SG_STATEMENT_MAX)
			return SG_ERR_TOO_LARGE;
		if (reason != NULL) {
			memcpy(reason, text, rlen);
			reason[rlen] = '\0';
		}
		*ret_stmt_len = at - lr;
		*ret_approve = 0;
		return 0;
	}
	if (len > SG_STATEMENT_MAX + la)
		return SG_ERR_TOO_LARGE;
	/* The statement before the decision line must be non-empty and end
	 * its own last line. */
	if (len > la && memcmp(body + len - la, decision_approve, la) == 0 &&
	    body[len - la - 1] == '\n') {
		if (reason != NULL)
			reason[0] = '\0';
		*ret_stmt_len = len - la;
		*ret_approve = 1;
		return 0;
	}
	if (len > lr && memcmp(body + len - lr, decision_reject, lr) == 0 &&
	    body[len - lr - 1] == '\n') {
		/* The reject line is a byte shorter than the approve line
		 * the cap above allows for: check the statement itself. */
		if (len - lr > SG_STATEMENT_MAX)
			return SG_ERR_TOO_LARGE;
		if (reason != NULL)
			reason[0] = '\0';
		*ret_stmt_len = len - lr;
		*ret_approve = 0;
		return 0;
	}
	return SG_ERR_INVALID;
}

int
sg_body_split(const uint8_t *body, size_t len, size_t *ret_stmt_len,
    int *ret_approve)
{
	return sg_body_split_reason(body, len, ret_stmt_len, ret_approve,
	    NULL, 0);
}

int
sg_body_build_reason(const char *statement, size_t len, int approve,
    const char *reason, uint8_t **ret, size_t *ret_len)
{
	const char *line = approve ? decision_approve : decision_reject;
	size_t ll = strlen(line), rl = 0, total;
	uint8_t *buf;

	if (statement == NULL || ret == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	if (approve != 0 && approve != 1)
		return SG_ERR_INVALID;
	if (len > SG_STATEMENT_MAX)
		return SG_ERR_TOO_LARGE;
	if (len == 0 || statement[len - 1] != '\n')
		return SG_ERR_INVALID;
	if (reason != NULL) {
		rl = strlen(reason);
		if (approve || !reason_ok(reason, rl))
			return SG_ERR_INVALID;
	}
	total = len + ll + (reason != NULL ?
	    sizeof(reason_word) - 1 + rl + 1 : 0);
	if ((buf = malloc(total)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(buf, statement, len);
	memcpy(buf + len, line, ll);
	if (reason != NULL) {
		memcpy(buf + len + ll, reason_word, sizeof(reason_word) - 1);
		memcpy(buf + len + ll + sizeof(reason_word) - 1, reason, rl);
		buf[total - 1] = '\n';
	}
	*ret = buf;
	*ret_len = total;
	return 0;
}

int
sg_body_build(const char *statement, size_t len, int approve,
    uint8_t **ret, size_t *ret_len)
{
	return sg_body_build_reason(statement, len, approve, NULL, ret,
	    ret_len);
}

int
sg_dsse_pae(const char *type, const uint8_t *body, size_t len,
    uint8_t **ret, size_t *ret_len)
{
	char head[32], mid[32];
	size_t tlen, hlen, mlen, total;
	uint8_t *buf;
	int n;

	if (type == NULL || ret == NULL || ret_len == NULL ||
	    (body == NULL && len != 0))
		return SG_ERR_INVALID;
	tlen = strlen(type);
	if (len > SG_ENVELOPE_MAX || tlen > SG_ENVELOPE_MAX)
		return SG_ERR_TOO_LARGE;
	/* "DSSEv1" SP len(type) SP type SP len(body) SP body */
	n = snprintf(head, sizeof(head), "DSSEv1 %zu ", tlen);
	if (n < 0 || (size_t)n >= sizeof(head))
		return SG_ERR_INTERNAL;
	hlen = (size_t)n;
	n = snprintf(mid, sizeof(mid), " %zu ", len);
	if (n < 0 || (size_t)n >= sizeof(mid))
		return SG_ERR_INTERNAL;
	mlen = (size_t)n;
	total = hlen + tlen + mlen + len;
	if ((buf = malloc(total)) == NULL)
		return SG_ERR_NOMEM;
	memcpy(buf, head, hlen);
	memcpy(buf + hlen, type, tlen);
	memcpy(buf + hlen + tlen, mid, mlen);
	if (len > 0)
		memcpy(buf + hlen + tlen + mlen, body, len);
	*ret = buf;
	*ret_len = total;
	return 0;
}

/* Printable ASCII, 1..max bytes. */
static int
is_printable(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Refuses members other than the allowed ones (NULL-terminated), naming
 * the first stranger. */
static int
only_members(json_t *obj, const char *const *allowed, const char *where,
    char *errbuf, size_t errlen)
{
	const char *k;
	char esc[64];

	if ((k = sg_json_stranger(obj, allowed)) == NULL)
		return 0;
	sg_escape(k, strlen(k), esc, sizeof(esc));
	return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s%s: unknown field",
	    where, esc);
}

static int
get_b64(json_t *obj, const char *name, const char *field, size_t max,
    uint8_t **ret, size_t *ret_len, char *errbuf, size_t errlen)
{
	json_t *v = json_object_get(obj, name);
	uint8_t *buf = NULL;
	size_t blen = 0;

	if (v == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: missing",
		    field);
	}
	if (!json_is_string(v)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: must be "
		    "a string", field);
	}
	if (sg_b64_decode(json_string_value(v), json_string_length(v),
	    &buf, &blen) != 0) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: must be "
		    "standard base64", field);
	}
	if (blen == 0 || blen > max) {
		free(buf);
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: must be "
		    "1 to %zu bytes", field, max);
	}
	*ret = buf;
	*ret_len = blen;
	return 0;
}

/* base64url without padding (sg_b64url_decode), 1..max bytes. */
static int
get_b64url(json_t *obj, const char *name, const char *field, size_t max,
    uint8_t **ret, size_t *ret_len, char *errbuf, size_t errlen)
{
	json_t *v = json_object_get(obj, name);
	uint8_t *buf = NULL;
	size_t blen = 0, slen;
	int r;

	if (v == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: missing",
		    field);
	}
	if (!json_is_string(v)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: must be "
		    "a string", field);
	}
	slen = json_string_length(v);
	if (slen == 0 || slen > (max + 2) / 3 * 4)
		goto size;
	if ((buf = malloc(max)) == NULL)
		return sg_err_set(errbuf, errlen, SG_ERR_NOMEM, "%s: out of "
		    "memory", field);
	if ((r = sg_b64url_decode(json_string_value(v), slen, buf, max,
	    &blen)) != 0 || blen == 0) {
		free(buf);
		if (r == SG_ERR_BUFFER)
			goto size;
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: must be "
		    "base64url without padding", field);
	}
	*ret = buf;
	*ret_len = blen;
	return 0;
size:
	return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "%s: must be 1 to "
	    "%zu bytes", field, max);
}

/* The assertion: {"credential_id", "authenticator_data",
 * "client_data_json"}, exactly. */
static int
take_webauthn(json_t *sig, struct sg_envelope *e, char *errbuf,
    size_t errlen)
{
	static const char *const wa_members[] = { "credential_id",
	    "authenticator_data", "client_data_json", NULL };
	struct sg_envelope_webauthn *w = &e->webauthn;
	json_t *wa;

	if ((wa = json_object_get(sig, "webauthn")) == NULL)
		return 0;
	if (!json_is_object(wa)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
		    "signatures[0].webauthn: must be an object");
	}
	if (only_members(wa, wa_members, "signatures[0].webauthn.", errbuf,
	    errlen) != 0)
		return SG_ERR_INVALID;
	e->has_webauthn = 1;
	if (get_b64url(wa, "credential_id",
	    "signatures[0].webauthn.credential_id", SG_WEBAUTHN_CRED_ID_MAX,
	    &w->cred_id, &w->cred_id_len, errbuf, errlen) != 0 ||
	    get_b64(wa, "authenticator_data",
	    "signatures[0].webauthn.authenticator_data",
	    SG_WEBAUTHN_AUTHDATA_MAX, &w->authdata, &w->authdata_len, errbuf,
	    errlen) != 0 ||
	    get_b64(wa, "client_data_json",
	    "signatures[0].webauthn.client_data_json",
	    SG_WEBAUTHN_CLIENT_DATA_MAX, &w->client_data, &w->client_data_len,
	    errbuf, errlen) != 0)
		return SG_ERR_INVALID;
	return 0;
}

/* Loads the envelope's JSON: one object without duplicate members. */
static int
envelope_load(const char *json, size_t len, json_t **ret, char *errbuf,
    size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	char esc[160];

	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		sg_escape(jerr.text, strlen(jerr.text), esc, sizeof(esc));
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "not valid "
		    "JSON: %s (line %d)", esc, jerr.line);
	}
	*ret = root;
	if (!json_is_object(root)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "envelope "
		    "must be a JSON object");
	}
	return 0;
}

static int
take_payload_type(json_t *root, struct sg_envelope *e, char *errbuf,
    size_t errlen)
{
	json_t *v;

	if ((v = json_object_get(root, "payloadType")) == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
		    "payloadType: missing");
	}
	if (!json_is_string(v) || !is_printable(json_string_value(v),
	    json_string_length(v), sizeof(e->payload_type) - 1)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "payloadType: "
		    "must be a string of 1 to %zu printable ASCII characters",
		    sizeof(e->payload_type) - 1);
	}
	memcpy(e->payload_type, json_string_value(v), json_string_length(v));
	return 0;
}

/* The one signature: {"keyid": principal name, "sig": base64}. */
static int
take_signature(json_t *root, struct sg_envelope *e, char *errbuf,
    size_t errlen)
{
	static const char *const sig_members[] =
	    { "keyid", "sig", "webauthn", NULL };
	json_t *v, *sigs, *sig;

	if ((sigs = json_object_get(root, "signatures")) == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
		    "signatures: missing");
	}
	if (!json_is_array(sigs) || json_array_size(sigs) != 1) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "signatures: "
		    "must be an array of exactly one signature");
	}
	sig = json_array_get(sigs, 0);
	if (!json_is_object(sig)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
		    "signatures[0]: must be an object");
	}
	if (only_members(sig, sig_members, "signatures[0].", errbuf,
	    errlen) != 0)
		return SG_ERR_INVALID;
	if ((v = json_object_get(sig, "keyid")) == NULL) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
		    "signatures[0].keyid: missing");
	}
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) >= sizeof(e->keyid) ||
	    !sg_name_ok(json_string_value(v), SG_NAME_LEN_MAX)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
		    "signatures[0].keyid: must be a principal name "
		    "([A-Za-z0-9._-], 1 to %zu characters)",
		    sizeof(e->keyid) - 1);
	}
	memcpy(e->keyid, json_string_value(v), json_string_length(v));
	if (get_b64(sig, "sig", "signatures[0].sig", SG_MAX_SIG, &e->sig,
	    &e->sig_len, errbuf, errlen) != 0)
		return SG_ERR_INVALID;
	return take_webauthn(sig, e, errbuf, errlen);
}

int
sg_envelope_parse(const char *json, size_t len, struct sg_envelope *ret,
    char *errbuf, size_t errlen)
{
	static const char *const top_members[] =
	    { "payloadType", "payload", "signatures", NULL };
	struct sg_envelope e;
	json_t *root = NULL;
	int r = SG_ERR_INVALID;

	memset(&e, 0, sizeof(e));
	sg_err_set(errbuf, errlen, SG_ERR_INVALID, "invalid envelope");
	if (json == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (len > SG_ENVELOPE_MAX) {
		return sg_err_set(errbuf, errlen, SG_ERR_TOO_LARGE, "envelope "
		    "larger than %d bytes", SG_ENVELOPE_MAX);
	}
	if (envelope_load(json, len, &root, errbuf, errlen) != 0 ||
	    only_members(root, top_members, "", errbuf, errlen) != 0 ||
	    take_payload_type(root, &e, errbuf, errlen) != 0 ||
	    get_b64(root, "payload", "payload", SG_ENVELOPE_MAX,
	    &e.payload, &e.payload_len, errbuf, errlen) != 0 ||
	    take_signature(root, &e, errbuf, errlen) != 0)
		goto out;

	*ret = e;
	memset(&e, 0, sizeof(e));    /* transferred */
	r = sg_err_set(errbuf, errlen, 0, "ok");
out:
	sg_envelope_clear(&e);
	json_decref(root);
	return r;
}

void
sg_envelope_clear(struct sg_envelope *e)
{
	if (e == NULL)
		return;
	free(e->payload);
	free(e->sig);
	free(e->webauthn.cred_id);
	free(e->webauthn.authdata);
	free(e->webauthn.client_data);
	memset(e, 0, sizeof(*e));
}

int
sg_envelope_build(const char *type, const uint8_t *payload, size_t len,
    const char *keyid, const uint8_t *sig, size_t sig_len, char **ret)
{
	return sg_envelope_build_webauthn(type, payload, len, keyid, sig,
	    sig_len, NULL, ret);
}

/* {"credential_id", "authenticator_data", "client_data_json"}, or NULL. */
static json_t *
webauthn_json(const struct sg_envelope_webauthn *wa)
{
	char *id = NULL, *ad = NULL, *cd = NULL;
	json_t *o = NULL;

	if (wa->cred_id == NULL || wa->authdata == NULL ||
	    wa->client_data == NULL || wa->cred_id_len == 0 ||
	    wa->cred_id_len > SG_WEBAUTHN_CRED_ID_MAX ||
	    wa->authdata_len == 0 ||
	    wa->authdata_len > SG_WEBAUTHN_AUTHDATA_MAX ||
	    wa->client_data_len == 0 ||
	    wa->client_data_len > SG_WEBAUTHN_CLIENT_DATA_MAX)
		return NULL;
	if (sg_b64url_encode(wa->cred_id, wa->cred_id_len, &id) != 0 ||
	    (ad = sg_b64_encode(wa->authdata, wa->authdata_len)) == NULL ||
	    (cd = sg_b64_encode(wa->client_data, wa->client_data_len)) == NULL)
		goto out;
	o = json_pack("{s:s, s:s, s:s}", "credential_id", id,
	    "authenticator_data", ad, "client_data_json", cd);
out:
	free(id);
	free(ad);
	free(cd);
	return o;
}

int
sg_envelope_build_webauthn(const char *type, const uint8_t *payload,
    size_t len, const char *keyid, const uint8_t *sig, size_t sig_len,
    const struct sg_envelope_webauthn *wa, char **ret)
{
	char *p64 = NULL, *s64 = NULL, *out = NULL;
	json_t *root = NULL, *wj = NULL;
	int r = SG_ERR_INVALID;

	if (type == NULL || payload == NULL || keyid == NULL || sig == NULL ||
	    ret == NULL)
		return SG_ERR_INVALID;
	if (!is_printable(type, strlen(type), 127) ||
	    !sg_name_ok(keyid, SG_NAME_LEN_MAX) ||
	    len == 0 || sig_len == 0)
		return SG_ERR_INVALID;
	if (sig_len > SG_MAX_SIG || len > SG_ENVELOPE_MAX)
		return SG_ERR_TOO_LARGE;
	if (wa != NULL && (wj = webauthn_json(wa)) == NULL)
		return SG_ERR_INVALID;
	if ((p64 = sg_b64_encode(payload, len)) == NULL ||
	    (s64 = sg_b64_encode(sig, sig_len)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	root = json_pack("{s:s, s:s, s:[{s:s, s:s, s:o*}]}",
	    "payloadType", type, "payload", p64,
	    "signatures", "keyid", keyid, "sig", s64, "webauthn", wj);
	wj = NULL;                   /* transferred (o* steals it) */
	if (root == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((out = json_dumps(root, JSON_COMPACT)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if (strlen(out) > SG_ENVELOPE_MAX) {
		free(out);
		r = SG_ERR_TOO_LARGE;
		goto out;
	}
	*ret = out;
	r = 0;
out:
	json_decref(wj);
	json_decref(root);
	free(p64);
	free(s64);
	return r;
}

int
sg_envelope_webauthn_id(const char *json, size_t len, uint8_t *out,
    size_t cap, size_t *ret_len)
{
	json_t *root = NULL, *sigs, *wa, *id;
	int r = SG_ERR_INVALID;

	if (json == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	if (len > SG_ENVELOPE_MAX)
		return SG_ERR_TOO_LARGE;
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL)
		return SG_ERR_INVALID;
	if ((sigs = json_object_get(root, "signatures")) == NULL ||
	    !json_is_array(sigs) || json_array_size(sigs) != 1 ||
	    !json_is_object(json_array_get(sigs, 0)))
		goto out;
	if ((wa = json_object_get(json_array_get(sigs, 0),
	    "webauthn")) == NULL) {
		*ret_len = 0;
		r = 0;
		goto out;
	}
	if ((id = json_object_get(wa, "credential_id")) == NULL ||
	    !json_is_string(id))
		goto out;
	r = sg_b64url_decode(json_string_value(id), json_string_length(id),
	    out, cap, ret_len);
	if (r == 0 && *ret_len == 0)
		r = SG_ERR_INVALID;
out:
	json_decref(root);
	return r;
}
