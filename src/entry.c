/*
 * Transparency log entries (see include/sg_entry.h for the grammar).
 *
 * Design: as for the approval statement, there is exactly one rendering.
 * sg_entry_build() is the only code that knows the layout and the only
 * validator of field values.  sg_entry_parse() just walks the lines in the
 * order the type prescribes, decodes what it finds into a struct, renders
 * that struct again and demands the result equal the input byte for byte.
 * Whatever the walk lets through (leading zeros, upper-case hex,
 * non-canonical base64, a stray space) fails that comparison, so
 * build(parse(x)) == x holds for every accepted x by construction, and a
 * leaf hash commits to one meaning only.
 *
 * Two sets of limits.  What this build writes (sg_entry_build) holds
 * every field to its named limit, which bounds every entry by
 * SG_ENTRY_MAX, the longest an entry bundle of c2sp.org/tlog-tiles can
 * carry: the _Static_assert below adds up each type's worst case.  What
 * it reads (sg_entry_parse) is what older builds could write too (up to
 * ENTRY_READ_MAX bytes, SG_ENVELOPES_MAX envelopes of any length), so
 * that proofs and logs made before the bound still verify.
 *
 * Embedded documents are opaque here: the statement, envelopes and keys
 * are checked by their own modules.  They must be non-empty, and the text
 * ones may not hold a NUL, so that no reader that treats them as C strings
 * sees less than the log recorded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_text.h"
#include "sg_tiles.h"
#include "sg_util.h"

#define HEADER "signgate-log-entry v1"
#define TIME_MAX ((int64_t)1 << 62)
/* The longest entry older builds could write: the most a reader takes. */
#define ENTRY_READ_MAX (256 * 1024)
/* A field whose base64 alone would pass that. */
#define FIELD_MAX (ENTRY_READ_MAX / 4 * 3)

/*
 * The worst case of each type this build writes, from the limits of its
 * fields: base64 of n bytes is B64(n) characters, each line has its name,
 * a space and a LF, and the head ("signgate-log-entry v1", type, time,
 * request) at most HEAD_MAX.  A `policy` entry (a policy version's text)
 * is counted too: its text is the whole file.
 */
#define B64(n) (4 * (((size_t)(n) + 2) / 3))
#define LINE(name, n) (sizeof(name) + 1 + (size_t)(n))
#define HEAD_MAX (LINE("signgate-log-entry", 2) + \
	LINE("type", 18) + LINE("time", 19) + LINE("request", 32))
#define SIGNED_MAX (LINE("public-key", B64(SG_ENTRY_SPKI_MAX)) + \
	LINE("algorithm", 15) + LINE("signature", B64(SG_MAX_SIG)) + \
	LINE("cms-sha256", 64) + LINE("hsm", SG_TOKEN_SERIAL_MAX + 3))
#define APPROVALS_MAX (SG_QUORUM_MAX * \
	LINE("approval", B64(SG_ENVELOPE_MAX)))
#define STATEMENT_LINE LINE("statement", B64(SG_STATEMENT_MAX))
#define CREATED_MAX (HEAD_MAX + STATEMENT_LINE + \
	LINE("artifact", B64(SG_ARTIFACT_JSON_MAX)))
#define DECISION_MAX (HEAD_MAX + LINE("officer", SG_NAME_LEN_MAX) + \
	LINE("decision", 7) + LINE("envelope", B64(SG_ENVELOPE_MAX)))
#define SIGNATURE_MAX (HEAD_MAX + STATEMENT_LINE + APPROVALS_MAX + \
	SIGNED_MAX)
#define APPROVED_MAX (HEAD_MAX + STATEMENT_LINE + APPROVALS_MAX)
#define ARTIFACT_SIG_MAX (HEAD_MAX + LINE("approved", 19) + \
	LINE("position", 19) + LINE("line", B64(SG_ARTIFACT_LINE_MAX)) + \
	SG_MANIFEST_PATH_MAX * LINE("path", B64(SG_HASH_LEN)) + SIGNED_MAX)
#define REASON_MAX (HEAD_MAX + LINE("by", SG_NAME_LEN_MAX) + \
	LINE("reason", B64(SG_ENTRY_REASON_MAX)))
/* policy <name>@<version> sha256:<hex>, previous, status, text. */
#define POLICY_MAX (HEAD_MAX + LINE("policy", SG_NAME_LEN_MAX + 21 + 7 + \
	SG_SHA256_HEX_LEN) + LINE("previous", 7 + SG_SHA256_HEX_LEN) + \
	LINE("status", 9) + LINE("text", B64(SG_POLICY_FILE_MAX)))
/* policy-decision: one officer's envelope; policy-effective: the policy
 * line and at most SG_QUORUM_MAX approval-entry lines (the change terms'
 * counts sum to no more). */
#define POLICY_DECISION_MAX (HEAD_MAX + LINE("officer", SG_NAME_LEN_MAX) + \
	LINE("envelope", B64(SG_ENVELOPE_MAX)))
#define POLICY_EFFECTIVE_MAX (HEAD_MAX + LINE("policy", SG_NAME_LEN_MAX + \
	21 + 7 + SG_SHA256_HEX_LEN) + SG_QUORUM_MAX * \
	LINE("approval-entry", 19))

_Static_assert(CREATED_MAX <= SG_ENTRY_MAX, "a created entry may not fit");
_Static_assert(DECISION_MAX <= SG_ENTRY_MAX, "a decision entry may not fit");
_Static_assert(SIGNATURE_MAX <= SG_ENTRY_MAX,
    "a signature entry may not fit");
_Static_assert(APPROVED_MAX <= SG_ENTRY_MAX, "an approved entry may not fit");
_Static_assert(ARTIFACT_SIG_MAX <= SG_ENTRY_MAX,
    "an artifact-signature entry may not fit");
_Static_assert(REASON_MAX <= SG_ENTRY_MAX,
    "a failed, cancelled or revoked entry may not fit");
_Static_assert(POLICY_MAX <= SG_ENTRY_MAX, "a policy entry may not fit");
_Static_assert(POLICY_DECISION_MAX <= SG_ENTRY_MAX,
    "a policy-decision entry may not fit");
_Static_assert(POLICY_EFFECTIVE_MAX <= SG_ENTRY_MAX,
    "a policy-effective entry may not fit");
_Static_assert(SG_QUORUM_MAX <= SG_ENVELOPES_MAX, "quorum above envelopes");
_Static_assert(SG_ENTRY_MAX == SG_TILE_ENTRY_MAX,
    "an entry bundle's length prefix is the entry limit");
_Static_assert(SG_REJECT_REASON_MAX <= SG_ENTRY_REASON_MAX,
    "a reason officers give is longer than an entry takes");

static const char *const type_names[] = {
	NULL, "created", "decision", "signature", "expired", "failed",
	"cancelled", "approved", "artifact-signature", "revoked", "policy",
	"policy-decision", "policy-effective",
};
#define TYPE_LAST SG_ENTRY_POLICY_EFFECTIVE
/* A policy's version (as the policy language allows it). */
#define POLICY_VERSION_MAX ((uint64_t)1 << 53)
/* An artifact-signature's position: a release's from 0, a grant's from 1. */
#define POSITION_MAX (SG_RELEASE_MAX > SG_GRANT_MAX ? SG_RELEASE_MAX : \
	SG_GRANT_MAX)

static const char *const algorithms[] = {
	"ecdsa-p256", "ecdsa-p384", "rsa-pkcs1", "rsa-pss", "ed25519",
};

/* An output buffer that refuses to grow past max. */
struct out {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	int err;
};

static void
put(struct out *o, const void *p, size_t n)
{
	size_t ncap;
	char *nb;

	if (o->err != 0)
		return;
	if (n > o->max - o->len) {
		o->err = SG_ERR_TOO_LARGE;
		return;
	}
	if (o->len + n > o->cap) {
		ncap = o->cap == 0 ? 1024 : o->cap;
		while (ncap < o->len + n)
			ncap *= 2;
		if (ncap > o->max)
			ncap = o->max;
		if ((nb = realloc(o->buf, ncap)) == NULL) {
			o->err = SG_ERR_NOMEM;
			return;
		}
		o->buf = nb;
		o->cap = ncap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* "key value\n" */
static void
put_line(struct out *o, const char *key, const char *value)
{
	put_str(o, key);
	put(o, " ", 1);
	put_str(o, value);
	put(o, "\n", 1);
}

static void
put_b64_line(struct out *o, const char *key, const void *data, size_t len)
{
	char *b64;

	if (o->err != 0)
		return;
	if (len > FIELD_MAX) {
		o->err = SG_ERR_TOO_LARGE;
		return;
	}
	if ((b64 = sg_b64_encode(data, len)) == NULL) {
		o->err = SG_ERR_NOMEM;
		return;
	}
	put_line(o, key, b64);
	free(b64);
}

/* The array holds a NUL-terminated string. */
static int
terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static int
is_serial(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > SG_TOKEN_SERIAL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

static int
is_algorithm(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
		if (strcmp(s, algorithms[i]) == 0)
			return 1;
	return 0;
}

static int
blob_ok(const void *p, size_t len)
{
	return p != NULL && len > 0 && len <= FIELD_MAX;
}

static int
text_ok(const char *p, size_t len)
{
	return blob_ok(p, len) && memchr(p, '\0', len) == NULL;
}

/* The approvals of a signature (0..max) or an approved entry (1..max). */
static int
approvals_valid(const struct sg_entry *e, size_t min)
{
	size_t i;

	if (e->napprovals < min || e->napprovals > SG_ENVELOPES_MAX)
		return 0;
	for (i = 0; i < e->napprovals; i++)
		if (!text_ok(e->approvals[i], e->approval_lens[i]))
			return 0;
	return 1;
}

/* public-key .. hsm, shared by signature and artifact-signature. */
static int
signed_valid(const struct sg_entry *e)
{
	return blob_ok(e->public_key, e->public_key_len) &&
	    terminated(e->algorithm, sizeof(e->algorithm)) &&
	    is_algorithm(e->algorithm) &&
	    blob_ok(e->signature, e->signature_len) &&
	    (e->has_cms == 0 || e->has_cms == 1) &&
	    terminated(e->hsm_serial, sizeof(e->hsm_serial)) &&
	    is_serial(e->hsm_serial) &&
	    terminated(e->hsm_country, sizeof(e->hsm_country)) &&
	    sg_country_ok(e->hsm_country);
}

/* An artifact-signature's own fields: the line is a canonical artifact
 * line, the path at most a release's longest. */
static int
artifact_valid(const struct sg_entry *e)
{
	struct sg_artifact_line a;

	if (e->approved_index > SG_MERKLE_MAX_SIZE ||
	    e->position > POSITION_MAX || e->npath > SG_MANIFEST_PATH_MAX)
		return 0;
	if (!text_ok(e->line, e->line_len) ||
	    sg_artifact_line_parse(e->line, e->line_len, &a) != 0)
		return 0;
	return signed_valid(e);
}

static int
is_sha256_hex(const char *s, size_t cap)
{
	return terminated(s, cap) && sg_lower_hex_ok(s, SG_SHA256_HEX_LEN);
}

/* "<name>@<version> sha256:<hex>", whose SHA-256 the request id begins. */
static int
policy_id_valid(const struct sg_entry *e)
{
	return terminated(e->policy_name, sizeof(e->policy_name)) &&
	    sg_name_ok(e->policy_name, SG_NAME_LEN_MAX) &&
	    e->policy_version >= 1 && e->policy_version <= POLICY_VERSION_MAX &&
	    is_sha256_hex(e->policy_sha256, sizeof(e->policy_sha256)) &&
	    memcmp(e->request, e->policy_sha256, SG_REQUEST_ID_LEN) == 0;
}

static int
policy_valid(const struct sg_entry *e)
{
	return policy_id_valid(e) &&
	    (e->has_previous == 0 || e->has_previous == 1) &&
	    (!e->has_previous || is_sha256_hex(e->previous_sha256,
	    sizeof(e->previous_sha256))) &&
	    (e->pending == 0 || e->pending == 1) &&
	    text_ok(e->text, e->text_len);
}

/* One to SG_QUORUM_MAX approvals (no build wrote more: the approvals
 * that count are at most the change terms' counts), each an earlier
 * entry, in increasing order. */
static int
effective_valid(const struct sg_entry *e)
{
	size_t i;

	if (!policy_id_valid(e) || e->napproval_entries < 1 ||
	    e->napproval_entries > SG_QUORUM_MAX)
		return 0;
	for (i = 0; i < e->napproval_entries; i++)
		if (e->approval_entries[i] > SG_MERKLE_MAX_SIZE ||
		    (i > 0 && e->approval_entries[i] <=
		    e->approval_entries[i - 1]))
			return 0;
	return 1;
}

static int
entry_valid(const struct sg_entry *e)
{
	if (e->type < SG_ENTRY_CREATED || e->type > TYPE_LAST)
		return 0;
	if (e->time < 0 || e->time > TIME_MAX)
		return 0;
	if (!terminated(e->request, sizeof(e->request)) ||
	    !sg_request_id_ok(e->request))
		return 0;
	switch (e->type) {
	case SG_ENTRY_CREATED:
		return text_ok(e->statement, e->statement_len) &&
		    text_ok(e->artifact_json, e->artifact_len);
	case SG_ENTRY_DECISION:
		return terminated(e->officer, sizeof(e->officer)) &&
		    sg_name_ok(e->officer, SG_NAME_LEN_MAX) &&
		    (e->approve == 0 || e->approve == 1) &&
		    text_ok(e->envelope, e->envelope_len);
	case SG_ENTRY_SIGNATURE:
		return text_ok(e->statement, e->statement_len) &&
		    approvals_valid(e, 0) && signed_valid(e);
	case SG_ENTRY_EXPIRED:
		return 1;
	case SG_ENTRY_FAILED:
		return text_ok(e->reason, e->reason_len);
	case SG_ENTRY_CANCELLED:
	case SG_ENTRY_REVOKED:
		return terminated(e->by, sizeof(e->by)) &&
		    sg_name_ok(e->by, SG_NAME_LEN_MAX) &&
		    text_ok(e->reason, e->reason_len);
	case SG_ENTRY_APPROVED:
		return text_ok(e->statement, e->statement_len) &&
		    approvals_valid(e, 1);
	case SG_ENTRY_ARTIFACT_SIGNATURE:
		return artifact_valid(e);
	case SG_ENTRY_POLICY:
		return policy_valid(e);
	case SG_ENTRY_POLICY_DECISION:
		return terminated(e->officer, sizeof(e->officer)) &&
		    sg_name_ok(e->officer, SG_NAME_LEN_MAX) &&
		    text_ok(e->envelope, e->envelope_len);
	case SG_ENTRY_POLICY_EFFECTIVE:
		return effective_valid(e);
	}
	return 0;
}

/* What this build writes: every field within its limit (the worst cases
 * above), however old the entries the parser takes. */
static int
entry_bounded(const struct sg_entry *e)
{
	size_t i;

	if (e->statement_len > SG_STATEMENT_MAX ||
	    e->artifact_len > SG_ARTIFACT_JSON_MAX ||
	    e->envelope_len > SG_ENVELOPE_MAX ||
	    e->napprovals > SG_QUORUM_MAX ||
	    e->public_key_len > SG_ENTRY_SPKI_MAX ||
	    e->signature_len > SG_MAX_SIG ||
	    e->reason_len > SG_ENTRY_REASON_MAX ||
	    e->line_len > SG_ARTIFACT_LINE_MAX ||
	    e->text_len > SG_POLICY_FILE_MAX)
		return 0;
	for (i = 0; i < e->napprovals; i++)
		if (e->approval_lens[i] > SG_ENVELOPE_MAX)
			return 0;
	return 1;
}

static void
put_u64_line(struct out *o, const char *key, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	put_line(o, key, num);
}

static void
put_approvals(struct out *o, const struct sg_entry *e)
{
	size_t i;

	for (i = 0; i < e->napprovals; i++)
		put_b64_line(o, "approval", e->approvals[i],
		    e->approval_lens[i]);
}

/* public-key .. hsm, shared by signature and artifact-signature. */
static void
put_signed(struct out *o, const struct sg_entry *e)
{
	char hex[SG_SHA256_HEX_LEN + 1];

	put_b64_line(o, "public-key", e->public_key, e->public_key_len);
	put_line(o, "algorithm", e->algorithm);
	put_b64_line(o, "signature", e->signature, e->signature_len);
	if (e->has_cms) {
		sg_hex_encode(e->cms_sha256, sizeof(e->cms_sha256), hex);
		put_line(o, "cms-sha256", hex);
	}
	put_str(o, "hsm ");
	put_str(o, e->hsm_serial);
	put(o, " ", 1);
	put_str(o, e->hsm_country);
	put(o, "\n", 1);
}

static void
put_artifact(struct out *o, const struct sg_entry *e)
{
	size_t i;

	put_u64_line(o, "approved", e->approved_index);
	put_u64_line(o, "position", e->position);
	put_b64_line(o, "line", e->line, e->line_len);
	for (i = 0; i < e->npath; i++)
		put_b64_line(o, "path", e->path[i], SG_HASH_LEN);
	put_signed(o, e);
}

/* "policy <name>@<version> sha256:<hex>" */
static void
put_policy_id(struct out *o, const struct sg_entry *e)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu",
	    (unsigned long long)e->policy_version);
	put_str(o, "policy ");
	put_str(o, e->policy_name);
	put(o, "@", 1);
	put_str(o, num);
	put_str(o, " sha256:");
	put_str(o, e->policy_sha256);
	put(o, "\n", 1);
}

static void
put_policy(struct out *o, const struct sg_entry *e)
{
	put_policy_id(o, e);
	if (e->has_previous) {
		put_str(o, "previous sha256:");
		put_str(o, e->previous_sha256);
		put(o, "\n", 1);
	} else
		put_line(o, "previous", "none");
	put_line(o, "status", e->pending ? "pending" : "effective");
	put_b64_line(o, "text", e->text, e->text_len);
}

static void
put_effective(struct out *o, const struct sg_entry *e)
{
	size_t i;

	put_policy_id(o, e);
	for (i = 0; i < e->napproval_entries; i++)
		put_u64_line(o, "approval-entry", e->approval_entries[i]);
}

/* The one rendering; max: the longest entry it may give. */
static int
render(const struct sg_entry *e, size_t max, char **ret, size_t *ret_len)
{
	struct out o;
	char num[24];
	int r;

	if (!entry_valid(e))
		return SG_ERR_INVALID;
	memset(&o, 0, sizeof(o));
	o.max = max;
	put_str(&o, HEADER "\n");
	put_line(&o, "type", type_names[e->type]);
	snprintf(num, sizeof(num), "%lld", (long long)e->time);
	put_line(&o, "time", num);
	put_line(&o, "request", e->request);
	switch (e->type) {
	case SG_ENTRY_CREATED:
		put_b64_line(&o, "statement", e->statement, e->statement_len);
		put_b64_line(&o, "artifact", e->artifact_json, e->artifact_len);
		break;
	case SG_ENTRY_DECISION:
		put_line(&o, "officer", e->officer);
		put_line(&o, "decision", e->approve ? "approve" : "reject");
		put_b64_line(&o, "envelope", e->envelope, e->envelope_len);
		break;
	case SG_ENTRY_SIGNATURE:
		put_b64_line(&o, "statement", e->statement, e->statement_len);
		put_approvals(&o, e);
		put_signed(&o, e);
		break;
	case SG_ENTRY_APPROVED:
		put_b64_line(&o, "statement", e->statement, e->statement_len);
		put_approvals(&o, e);
		break;
	case SG_ENTRY_ARTIFACT_SIGNATURE:
		put_artifact(&o, e);
		break;
	case SG_ENTRY_EXPIRED:
		break;
	case SG_ENTRY_FAILED:
		put_b64_line(&o, "reason", e->reason, e->reason_len);
		break;
	case SG_ENTRY_CANCELLED:
	case SG_ENTRY_REVOKED:
		put_line(&o, "by", e->by);
		put_b64_line(&o, "reason", e->reason, e->reason_len);
		break;
	case SG_ENTRY_POLICY:
		put_policy(&o, e);
		break;
	case SG_ENTRY_POLICY_DECISION:
		put_line(&o, "officer", e->officer);
		put_b64_line(&o, "envelope", e->envelope, e->envelope_len);
		break;
	case SG_ENTRY_POLICY_EFFECTIVE:
		put_effective(&o, e);
		break;
	}
	if ((r = o.err) != 0) {
		free(o.buf);
		return r;
	}
	*ret = o.buf;
	*ret_len = o.len;
	return 0;
}

int
sg_entry_build(const struct sg_entry *e, char **ret, size_t *ret_len)
{
	if (e == NULL || ret == NULL || ret_len == NULL)
		return SG_ERR_INVALID;
	if (!entry_valid(e))
		return SG_ERR_INVALID;
	if (!entry_bounded(e))
		return SG_ERR_TOO_LARGE;
	return render(e, SG_ENTRY_MAX, ret, ret_len);
}

/* A walk over the LF-terminated lines of the input. */
struct cursor {
	const char *p;
	const char *end;
};

/* The value of the next line if it is "key value"; the line is consumed
 * only on a match, so optional and repeated lines can be probed. */
static int
take(struct cursor *c, const char *key, const char **ret_val,
    size_t *ret_len)
{
	size_t kl = strlen(key);
	const char *nl;

	if (c->p >= c->end ||
	    (nl = memchr(c->p, '\n', (size_t)(c->end - c->p))) == NULL)
		return SG_ERR_INVALID;
	if ((size_t)(nl - c->p) < kl + 1 || memcmp(c->p, key, kl) != 0 ||
	    c->p[kl] != ' ')
		return SG_ERR_INVALID;
	*ret_val = c->p + kl + 1;
	*ret_len = (size_t)(nl - *ret_val);
	c->p = nl + 1;
	return 0;
}

static int
next_is(const struct cursor *c, const char *key)
{
	size_t kl = strlen(key);

	return (size_t)(c->end - c->p) > kl && memcmp(c->p, key, kl) == 0 &&
	    c->p[kl] == ' ';
}

static int
copy_str(const char *v, size_t n, char *out, size_t cap)
{
	if (n == 0 || n >= cap || memchr(v, '\0', n) != NULL)
		return SG_ERR_INVALID;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* Decodes base64 into a fresh NUL-terminated buffer. */
static int
take_b64(struct cursor *c, const char *key, char **ret, size_t *ret_len)
{
	const char *v;
	uint8_t *dec = NULL;
	char *buf;
	size_t n, dlen = 0;
	int r;

	if ((r = take(c, key, &v, &n)) != 0)
		return r;
	if ((r = sg_b64_decode(v, n, &dec, &dlen)) != 0)
		return r;
	if ((buf = malloc(dlen + 1)) == NULL) {
		free(dec);
		return SG_ERR_NOMEM;
	}
	memcpy(buf, dec, dlen);
	buf[dlen] = '\0';
	free(dec);
	*ret = buf;
	*ret_len = dlen;
	return 0;
}

static int
parse_type(const char *v, size_t n, enum sg_entry_type *ret)
{
	int t;

	for (t = SG_ENTRY_CREATED; t <= TYPE_LAST; t++) {
		if (strlen(type_names[t]) == n &&
		    memcmp(type_names[t], v, n) == 0) {
			*ret = (enum sg_entry_type)t;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}

static int
parse_time(const char *v, size_t n, int64_t *ret)
{
	char num[24];
	uint64_t t;

	if (copy_str(v, n, num, sizeof(num)) != 0 ||
	    sg_parse_u64(num, 0, (uint64_t)TIME_MAX, &t) != 0)
		return SG_ERR_INVALID;
	*ret = (int64_t)t;
	return 0;
}

static int
parse_u64(const char *v, size_t n, uint64_t max, uint64_t *ret)
{
	char num[24];

	if (copy_str(v, n, num, sizeof(num)) != 0 ||
	    sg_parse_u64(num, 0, max, ret) != 0)
		return SG_ERR_INVALID;
	return 0;
}

/* statement, then the approval lines (as many as there are). */
static int
parse_approval_lines(struct cursor *c, struct sg_entry *e)
{
	char *tmp = NULL;
	size_t tlen = 0;
	int r;

	if ((r = take_b64(c, "statement", &e->statement,
	    &e->statement_len)) != 0)
		return r;
	while (next_is(c, "approval")) {
		if (e->napprovals == SG_ENVELOPES_MAX)
			return SG_ERR_INVALID;
		if ((r = take_b64(c, "approval", &tmp, &tlen)) != 0)
			return r;
		e->approvals[e->napprovals] = tmp;
		e->approval_lens[e->napprovals] = tlen;
		e->napprovals++;
	}
	return 0;
}

/* public-key .. hsm, shared by signature and artifact-signature. */
static int
parse_signed_lines(struct cursor *c, struct sg_entry *e)
{
	const char *v, *sp;
	char *tmp = NULL;
	uint8_t cms[32];
	size_t n, tlen = 0, dlen = 0;
	int r;

	if ((r = take_b64(c, "public-key", &tmp, &tlen)) != 0)
		return r;
	e->public_key = (uint8_t *)tmp;
	e->public_key_len = tlen;
	if (take(c, "algorithm", &v, &n) != 0 ||
	    copy_str(v, n, e->algorithm, sizeof(e->algorithm)) != 0)
		return SG_ERR_INVALID;
	if ((r = take_b64(c, "signature", &tmp, &tlen)) != 0)
		return r;
	e->signature = (uint8_t *)tmp;
	e->signature_len = tlen;
	if (take(c, "cms-sha256", &v, &n) == 0) {
		if (n != SG_SHA256_HEX_LEN ||
		    sg_hex_decode(v, n, cms, sizeof(cms), &dlen) != 0 ||
		    dlen != sizeof(cms))
			return SG_ERR_INVALID;
		memcpy(e->cms_sha256, cms, sizeof(cms));
		e->has_cms = 1;
	}
	if (take(c, "hsm", &v, &n) != 0 ||
	    (sp = memchr(v, ' ', n)) == NULL ||
	    copy_str(v, (size_t)(sp - v), e->hsm_serial,
	    sizeof(e->hsm_serial)) != 0 ||
	    copy_str(sp + 1, n - (size_t)(sp - v) - 1, e->hsm_country,
	    sizeof(e->hsm_country)) != 0)
		return SG_ERR_INVALID;
	return 0;
}

static int
parse_artifact_lines(struct cursor *c, struct sg_entry *e)
{
	const char *v;
	char *tmp = NULL;
	size_t n, tlen = 0;
	int r;

	if (take(c, "approved", &v, &n) != 0 ||
	    parse_u64(v, n, SG_MERKLE_MAX_SIZE, &e->approved_index) != 0 ||
	    take(c, "position", &v, &n) != 0 ||
	    parse_u64(v, n, POSITION_MAX, &e->position) != 0)
		return SG_ERR_INVALID;
	if ((r = take_b64(c, "line", &e->line, &e->line_len)) != 0)
		return r;
	while (next_is(c, "path")) {
		if (e->npath == SG_MANIFEST_PATH_MAX)
			return SG_ERR_INVALID;
		if ((r = take_b64(c, "path", &tmp, &tlen)) != 0)
			return r;
		if (tlen != SG_HASH_LEN) {
			free(tmp);
			return SG_ERR_INVALID;
		}
		memcpy(e->path[e->npath++], tmp, SG_HASH_LEN);
		free(tmp);
	}
	return parse_signed_lines(c, e);
}

/* "sha256:<64 hex>" into out; the rendering checks the digits. */
static int
parse_sha(const char *v, size_t n, char *out, size_t cap)
{
	if (n != 7 + SG_SHA256_HEX_LEN || memcmp(v, "sha256:", 7) != 0)
		return SG_ERR_INVALID;
	return copy_str(v + 7, n - 7, out, cap);
}

/* The policy line: "<name>@<version> sha256:<hex>". */
static int
parse_policy_id(struct cursor *c, struct sg_entry *e)
{
	const char *v, *at, *sp;
	size_t n;

	if (take(c, "policy", &v, &n) != 0 ||
	    (sp = memchr(v, ' ', n)) == NULL ||
	    (at = memchr(v, '@', (size_t)(sp - v))) == NULL ||
	    copy_str(v, (size_t)(at - v), e->policy_name,
	    sizeof(e->policy_name)) != 0 ||
	    parse_u64(at + 1, (size_t)(sp - at - 1), POLICY_VERSION_MAX,
	    &e->policy_version) != 0 ||
	    parse_sha(sp + 1, n - (size_t)(sp + 1 - v), e->policy_sha256,
	    sizeof(e->policy_sha256)) != 0)
		return SG_ERR_INVALID;
	return 0;
}

static int
parse_policy_lines(struct cursor *c, struct sg_entry *e)
{
	const char *v;
	size_t n;

	if (parse_policy_id(c, e) != 0 || take(c, "previous", &v, &n) != 0)
		return SG_ERR_INVALID;
	if (!(n == 4 && memcmp(v, "none", 4) == 0)) {
		if (parse_sha(v, n, e->previous_sha256,
		    sizeof(e->previous_sha256)) != 0)
			return SG_ERR_INVALID;
		e->has_previous = 1;
	}
	if (take(c, "status", &v, &n) != 0)
		return SG_ERR_INVALID;
	if (n == 7 && memcmp(v, "pending", 7) == 0)
		e->pending = 1;
	else if (!(n == 9 && memcmp(v, "effective", 9) == 0))
		return SG_ERR_INVALID;
	return take_b64(c, "text", &e->text, &e->text_len);
}

static int
parse_effective_lines(struct cursor *c, struct sg_entry *e)
{
	const char *v;
	size_t n;

	if (parse_policy_id(c, e) != 0)
		return SG_ERR_INVALID;
	while (next_is(c, "approval-entry")) {
		if (e->napproval_entries == SG_QUORUM_MAX ||
		    take(c, "approval-entry", &v, &n) != 0 ||
		    parse_u64(v, n, SG_MERKLE_MAX_SIZE,
		    &e->approval_entries[e->napproval_entries]) != 0)
			return SG_ERR_INVALID;
		e->napproval_entries++;
	}
	return 0;
}

static int
parse_lines(struct cursor *c, struct sg_entry *e)
{
	const char *v;
	char *tmp = NULL;
	size_t n;
	int r;

	if ((size_t)(c->end - c->p) < sizeof(HEADER) ||
	    memcmp(c->p, HEADER "\n", sizeof(HEADER)) != 0)
		return SG_ERR_INVALID;
	c->p += sizeof(HEADER);
	if (take(c, "type", &v, &n) != 0 || parse_type(v, n, &e->type) != 0)
		return SG_ERR_INVALID;
	if (take(c, "time", &v, &n) != 0 || parse_time(v, n, &e->time) != 0)
		return SG_ERR_INVALID;
	if (take(c, "request", &v, &n) != 0 || n != SG_REQUEST_ID_LEN ||
	    copy_str(v, n, e->request, sizeof(e->request)) != 0)
		return SG_ERR_INVALID;
	switch (e->type) {
	case SG_ENTRY_CREATED:
		if ((r = take_b64(c, "statement", &e->statement,
		    &e->statement_len)) != 0 ||
		    (r = take_b64(c, "artifact", &e->artifact_json,
		    &e->artifact_len)) != 0)
			return r;
		break;
	case SG_ENTRY_DECISION:
		if (take(c, "officer", &v, &n) != 0 ||
		    copy_str(v, n, e->officer, sizeof(e->officer)) != 0)
			return SG_ERR_INVALID;
		if (take(c, "decision", &v, &n) != 0)
			return SG_ERR_INVALID;
		if (n == 7 && memcmp(v, "approve", 7) == 0)
			e->approve = 1;
		else if (!(n == 6 && memcmp(v, "reject", 6) == 0))
			return SG_ERR_INVALID;
		if ((r = take_b64(c, "envelope", &e->envelope,
		    &e->envelope_len)) != 0)
			return r;
		break;
	case SG_ENTRY_SIGNATURE:
		if ((r = parse_approval_lines(c, e)) != 0 ||
		    (r = parse_signed_lines(c, e)) != 0)
			return r;
		break;
	case SG_ENTRY_APPROVED:
		if ((r = parse_approval_lines(c, e)) != 0)
			return r;
		break;
	case SG_ENTRY_ARTIFACT_SIGNATURE:
		if ((r = parse_artifact_lines(c, e)) != 0)
			return r;
		break;
	case SG_ENTRY_EXPIRED:
		break;
	case SG_ENTRY_FAILED:
		if ((r = take_b64(c, "reason", &tmp, &n)) != 0)
			return r;
		e->reason = tmp;
		e->reason_len = n;
		break;
	case SG_ENTRY_CANCELLED:
	case SG_ENTRY_REVOKED:
		if (take(c, "by", &v, &n) != 0 ||
		    copy_str(v, n, e->by, sizeof(e->by)) != 0)
			return SG_ERR_INVALID;
		if ((r = take_b64(c, "reason", &tmp, &n)) != 0)
			return r;
		e->reason = tmp;
		e->reason_len = n;
		break;
	case SG_ENTRY_POLICY:
		if ((r = parse_policy_lines(c, e)) != 0)
			return r;
		break;
	case SG_ENTRY_POLICY_DECISION:
		if (take(c, "officer", &v, &n) != 0 ||
		    copy_str(v, n, e->officer, sizeof(e->officer)) != 0)
			return SG_ERR_INVALID;
		if ((r = take_b64(c, "envelope", &e->envelope,
		    &e->envelope_len)) != 0)
			return r;
		break;
	case SG_ENTRY_POLICY_EFFECTIVE:
		if ((r = parse_effective_lines(c, e)) != 0)
			return r;
		break;
	}
	/* Unknown, repeated, misplaced lines and trailing bytes end here. */
	return c->p == c->end ? 0 : SG_ERR_INVALID;
}

int
sg_entry_parse(const char *text, size_t len, struct sg_entry *ret)
{
	struct sg_entry e;
	struct cursor c;
	char *again = NULL;
	size_t again_len = 0;
	int r;

	if (text == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (len > ENTRY_READ_MAX)
		return SG_ERR_TOO_LARGE;
	memset(&e, 0, sizeof(e));
	c.p = text;
	c.end = text + len;
	if ((r = parse_lines(&c, &e)) != 0) {
		if (r != SG_ERR_NOMEM)
			r = SG_ERR_INVALID;
		goto out;
	}
	/* The one validator and the one rendering decide (with the limits
	 * of every build that wrote entries). */
	if ((r = render(&e, ENTRY_READ_MAX, &again, &again_len)) != 0) {
		if (r != SG_ERR_NOMEM)
			r = SG_ERR_INVALID;
		goto out;
	}
	if (again_len != len || memcmp(again, text, len) != 0) {
		r = SG_ERR_INVALID;
		goto out;
	}
	*ret = e;
	memset(&e, 0, sizeof(e));       /* transferred */
	r = 0;
out:
	free(again);
	sg_entry_clear(&e);
	return r;
}

void
sg_entry_clear(struct sg_entry *e)
{
	size_t i, n;

	if (e == NULL)
		return;
	free(e->statement);
	free(e->artifact_json);
	free(e->envelope);
	n = e->napprovals < SG_ENVELOPES_MAX ?
	    e->napprovals : SG_ENVELOPES_MAX;
	for (i = 0; i < n; i++)
		free(e->approvals[i]);
	free(e->public_key);
	free(e->signature);
	free(e->reason);
	free(e->line);
	free(e->text);
	memset(e, 0, sizeof(*e));
}
