/*
 * `signgate log monitor`: reading the entries (include/sg_monitor.h).
 *
 * Every run reads the entries its last run did not examine, up to the
 * checkpoint src/cli_log_monitor.c verified, whatever --key says: the
 * list of pending requests and the policy changes need every entry.  For
 * each signature by the monitored key it prints one line,
 *
 *   signature: index N time T key K request|release|grant ID requester R
 *       approvers A,B hsm SERIAL CC artifact ALG:HEX[ name NAME]
 *
 * (one line; the name last, as it may hold spaces, escaped as
 * sg_text_escape() does), and for every policy entry
 *
 *   policy: NAME@VERSION sha256:HEX pending|effective index N
 *
 * with " approval by OFFICER" after a policy decision.  Policy entries are
 * read from their text (type, `policy` and `status` lines), not through
 * src/entry.c, so that this file needs nothing of their grammar but those
 * lines.  Rules are checked as the lines are printed; a violation goes to
 * standard error with the entry's index and the reason.
 *
 * An entry that does not parse is an error (exit 4): the state file is
 * not written, and the run fails until the monitor is upgraded or the log
 * explained, rather than skipping what it cannot read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_monitor.h"
#include "sg_text.h"
#include "sg_util.h"

/* A request's created entry is forgotten once entries a day past its
 * expiry are read: its signature cannot come any more. */
#define PENDING_GRACE (24 * 3600)
#define APPROVERS_SIZE (SG_ENVELOPES_MAX * SG_NAME_SIZE)
#define NAME_ESC_SIZE (4 * SG_ARTIFACT_VALUE_MAX + 1)
/* The first line of the statement a policy-decision's envelope signs. */
#define POLICY_APPROVAL_FIRST "signgate policy approval v1\n"

/* --- rules --- */

static int
two_digits(const char *s, unsigned *ret)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return SG_ERR_INVALID;
	*ret = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
	return 0;
}

int
sg_monitor_hours_parse(const char *s, struct sg_monitor_hours *ret)
{
	struct sg_monitor_hours h;

	memset(&h, 0, sizeof(h));
	if (strlen(s) != 5 || s[2] != '-' || two_digits(s, &h.start) != 0 ||
	    two_digits(s + 3, &h.end) != 0 || h.start > 23 || h.end > 24 ||
	    h.end == 0 || h.start == h.end)
		return SG_ERR_INVALID;
	h.set = 1;
	*ret = h;
	return 0;
}

int
sg_monitor_hours_contain(const struct sg_monitor_hours *h, int64_t t)
{
	unsigned hour;

	if (!h->set)
		return 1;
	if (t < 0)
		return 0;
	hour = (unsigned)((t % 86400) / 3600);
	if (h->start < h->end)
		return hour >= h->start && hour < h->end;
	return hour >= h->start || hour < h->end;
}

unsigned
sg_monitor_check(const struct sg_monitor_rules *r, const char *name,
    int64_t t)
{
	unsigned bad = 0;
	size_t i;

	if (r->npatterns > 0) {
		bad |= SG_MONITOR_BAD_NAME;
		for (i = 0; name != NULL && i < r->npatterns; i++)
			if (sg_pattern_match(r->patterns[i], name)) {
				bad &= ~SG_MONITOR_BAD_NAME;
				break;
			}
	}
	if (!sg_monitor_hours_contain(&r->hours, t))
		bad |= SG_MONITOR_BAD_HOURS;
	return bad;
}

/* --- pending requests --- */

static struct sg_monitor_pending *
pending_find(struct sg_monitor_state *st, const char *request)
{
	size_t i;

	for (i = 0; i < st->npending; i++)
		if (strcmp(st->pending[i].request, request) == 0)
			return &st->pending[i];
	return NULL;
}

static void
pending_remove_at(struct sg_monitor_state *st, size_t i)
{
	memmove(&st->pending[i], &st->pending[i + 1],
	    (st->npending - i - 1) * sizeof(st->pending[0]));
	st->npending--;
}

static void
pending_remove(struct sg_monitor_state *st, const char *request)
{
	struct sg_monitor_pending *pd;

	if ((pd = pending_find(st, request)) != NULL)
		pending_remove_at(st, (size_t)(pd - st->pending));
}

/* Entries are read in index order, so appending keeps the list sorted;
 * when full, the oldest request is forgotten (its signature will be
 * reported without the artifact's name). */
static int
pending_add(struct sg_monitor_state *st, const char *request, uint64_t index,
    int64_t expires)
{
	struct sg_monitor_pending *pd;

	pending_remove(st, request);
	if (st->pending == NULL && (st->pending = calloc(SG_MONITOR_PENDING_MAX,
	    sizeof(*st->pending))) == NULL)
		return SG_ERR_NOMEM;
	if (st->npending == SG_MONITOR_PENDING_MAX) {
		fprintf(stderr, "signgate: log monitor: more than %d pending "
		    "requests; forgetting request %s (entry %llu)\n",
		    SG_MONITOR_PENDING_MAX, st->pending[0].request,
		    (unsigned long long)st->pending[0].index);
		pending_remove_at(st, 0);
	}
	if (st->npending > 0 && st->pending[st->npending - 1].index >= index)
		return SG_ERR_INVALID;
	pd = &st->pending[st->npending++];
	memset(pd, 0, sizeof(*pd));
	memcpy(pd->request, request, SG_REQUEST_ID_SIZE);
	pd->index = index;
	pd->expires = expires;
	return 0;
}

static void
pending_prune(struct sg_monitor_state *st, int64_t now)
{
	size_t i = 0;

	while (i < st->npending) {
		if (st->pending[i].expires < now - PENDING_GRACE)
			pending_remove_at(st, i);
		else
			i++;
	}
}

/* --- reading entries --- */

static int
bad_entry(uint64_t index, const char *why)
{
	fprintf(stderr, "signgate: log monitor: entry %llu: %s\n",
	    (unsigned long long)index, why);
	return SG_EXIT_SERVER;
}

static int
count_key(struct sg_monitor_run *run, const char *key)
{
	struct sg_monitor_count *c;
	size_t i;

	for (i = 0; i < run->ncounts; i++)
		if (strcmp(run->counts[i].key, key) == 0) {
			run->counts[i].n++;
			return 0;
		}
	if ((c = realloc(run->counts, (run->ncounts + 1) *
	    sizeof(*c))) == NULL)
		return SG_ERR_NOMEM;
	run->counts = c;
	memset(&c[run->ncounts], 0, sizeof(*c));
	snprintf(c[run->ncounts].key, sizeof(c->key), "%s", key);
	c[run->ncounts].n = 1;
	run->ncounts++;
	return 0;
}

/* The officers whose approvals an entry carries, "a,b,c" ("-" if none). */
static int
approvers(const struct sg_entry *e, char *out, size_t cap)
{
	struct sg_envelope env;
	char err[128];
	size_t i, len = 0;
	int n;

	snprintf(out, cap, "-");
	for (i = 0; i < e->napprovals; i++) {
		if (sg_envelope_parse(e->approvals[i], e->approval_lens[i], &env,
		    err, sizeof(err)) != 0)
			return SG_ERR_INVALID;
		n = snprintf(out + len, cap - len, "%s%s", i > 0 ? "," : "",
		    env.keyid);
		sg_envelope_clear(&env);
		if (n < 0 || (size_t)n >= cap - len)
			return SG_ERR_INVALID;
		len += (size_t)n;
	}
	return 0;
}

static int
get_parsed(struct sg_monitor_run *run, uint64_t index, struct sg_entry *ret)
{
	char *text = NULL;
	size_t len = 0;
	int ex;

	if ((ex = run->get(run->ctx, index, &text, &len)) != 0)
		return ex;
	if (sg_entry_parse(text, len, ret) != 0)
		ex = bad_entry(index, "not a log entry this monitor can read");
	free(text);
	return ex;
}

/* The artifact's name from a request's created entry (its JSON "name");
 * "" when the entry is not known or has none. */
static int
created_name(struct sg_monitor_run *run, struct sg_monitor_state *st,
    const char *request, char *out, size_t cap)
{
	struct sg_monitor_pending *pd;
	struct sg_entry e;
	json_t *root = NULL, *v;
	int ex;

	out[0] = '\0';
	if ((pd = pending_find(st, request)) == NULL)
		return 0;
	memset(&e, 0, sizeof(e));
	if ((ex = get_parsed(run, pd->index, &e)) != 0)
		return ex;
	if (e.type != SG_ENTRY_CREATED || strcmp(e.request, request) != 0) {
		ex = bad_entry(pd->index, "not the created entry of its "
		    "request");
		goto out;
	}
	root = json_loadb(e.artifact_json, e.artifact_len,
	    JSON_REJECT_DUPLICATES, NULL);
	v = json_object_get(root, "name");
	if (json_is_string(v) && json_string_length(v) < cap &&
	    memchr(json_string_value(v), '\0', json_string_length(v)) == NULL)
		snprintf(out, cap, "%s", json_string_value(v));
	ex = 0;
out:
	json_decref(root);
	sg_entry_clear(&e);
	return ex;
}

struct finding {
	uint64_t index;
	int64_t time;
	const struct sg_statement *st;
	const char *approvers;
	const char *serial;
	const char *country;
	char digest[16 + SG_DIGEST_HEX_SIZE];
	const char *name;             /* "" when not known */
};

/* A finding for the signature logged at index: entry e, its statement st,
 * approved by who; the digest and the name are the caller's to fill. */
static void
finding_init(struct finding *f, uint64_t index, const struct sg_entry *e,
    const struct sg_statement *st, const char *who)
{
	memset(f, 0, sizeof(*f));
	f->index = index;
	f->time = e->time;
	f->st = st;
	f->approvers = who;
	f->serial = e->hsm_serial;
	f->country = e->hsm_country;
}

static void violation(struct sg_monitor_run *, uint64_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
violation(struct sg_monitor_run *run, uint64_t index, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "signgate: log monitor: VIOLATION: entry %llu: ",
	    (unsigned long long)index);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	run->violations++;
}

static int
report(struct sg_monitor_run *run, const struct finding *f)
{
	const struct sg_monitor_rules *r = run->rules;
	char when[32], name[NAME_ESC_SIZE], hours[8];
	unsigned bad;

	if (run->signatures == 0)
		run->first_sig = f->index;
	run->last_sig = f->index;
	run->signatures++;
	sg_time_rfc3339((time_t)f->time, when, sizeof(when));
	sg_text_escape(f->name, strlen(f->name), name, sizeof(name));
	fprintf(run->out, "signature: index %llu time %s key %s %s %s "
	    "requester %s approvers %s hsm %s %s artifact %s%s%s\n",
	    (unsigned long long)f->index, when, f->st->key,
	    sg_kind_str(f->st->kind), f->st->request, f->st->requester,
	    f->approvers, f->serial, f->country, f->digest,
	    f->name[0] != '\0' ? " name " : "", name);
	bad = sg_monitor_check(r, f->name[0] != '\0' ? f->name : NULL,
	    f->time);
	if ((bad & SG_MONITOR_BAD_NAME) && f->name[0] == '\0')
		violation(run, f->index, "the artifact's name is not "
		    "known (its request was created before the entries this "
		    "monitor read), so --artifact-pattern cannot pass");
	else if (bad & SG_MONITOR_BAD_NAME)
		violation(run, f->index, "artifact name %s matches no "
		    "--artifact-pattern", name);
	if (bad & SG_MONITOR_BAD_HOURS) {
		snprintf(hours, sizeof(hours), "%02u-%02u", r->hours.start,
		    r->hours.end);
		violation(run, f->index, "signed at %s, outside --hours %s "
		    "(UTC)", when, hours);
	}
	return 0;
}

static int
on_signature(struct sg_monitor_run *run, struct sg_monitor_state *st,
    uint64_t index, const struct sg_entry *e)
{
	struct sg_statement s;
	struct finding f;
	char who[APPROVERS_SIZE], name[SG_ARTIFACT_VALUE_MAX + 1];
	int ex;

	if (sg_statement_parse(e->statement, e->statement_len, &s) != 0 ||
	    s.kind != SG_KIND_REQUEST || strcmp(s.request, e->request) != 0)
		return bad_entry(index, "the signature's statement does not "
		    "parse or names another request");
	if (count_key(run, s.key) != 0)
		return SG_EXIT_LOCAL;
	if (run->key != NULL && strcmp(s.key, run->key) == 0) {
		if (approvers(e, who, sizeof(who)) != 0)
			return bad_entry(index, "an approval envelope does "
			    "not parse");
		if ((ex = created_name(run, st, e->request, name,
		    sizeof(name))) != 0)
			return ex;
		finding_init(&f, index, e, &s, who);
		snprintf(f.digest, sizeof(f.digest), "%s:%s", s.digest_alg,
		    s.digest_hex);
		f.name = name;
		report(run, &f);
	}
	pending_remove(st, e->request);
	return 0;
}

/* The approved entry an artifact-signature points at (kept for the next
 * artifact of the same release). */
static int
approved_entry(struct sg_monitor_run *run, uint64_t at, uint64_t index,
    struct sg_entry *ret)
{
	char *text = NULL;
	size_t len = 0;
	int ex;

	if (index >= at)
		return bad_entry(at, "points at an approved entry that is not "
		    "older");
	if (run->approved == NULL || run->approved_index != index) {
		if ((ex = run->get(run->ctx, index, &text, &len)) != 0)
			return ex;
		free(run->approved);
		run->approved = text;
		run->approved_len = len;
		run->approved_index = index;
	}
	if (sg_entry_parse(run->approved, run->approved_len, ret) != 0 ||
	    ret->type != SG_ENTRY_APPROVED)
		return bad_entry(index, "not an approved entry, which "
		    "an artifact-signature points at");
	return 0;
}

static int
on_artifact_signature(struct sg_monitor_run *run, uint64_t index,
    const struct sg_entry *e)
{
	struct sg_artifact_line line;
	struct sg_statement s;
	struct sg_entry ap;
	struct finding f;
	char who[APPROVERS_SIZE];
	int ex;

	memset(&ap, 0, sizeof(ap));
	if ((ex = approved_entry(run, index, e->approved_index, &ap)) != 0)
		goto out;
	if (sg_statement_parse(ap.statement, ap.statement_len, &s) != 0 ||
	    s.kind == SG_KIND_REQUEST || strcmp(s.request, e->request) != 0 ||
	    sg_artifact_line_parse(e->line, e->line_len, &line) != 0) {
		ex = bad_entry(index, "its approved entry's statement does not "
		    "parse or names another request, or its artifact line is "
		    "malformed");
		goto out;
	}
	ex = SG_EXIT_LOCAL;
	if (count_key(run, s.key) != 0)
		goto out;
	ex = 0;
	if (run->key == NULL || strcmp(s.key, run->key) != 0)
		goto out;
	if (approvers(&ap, who, sizeof(who)) != 0) {
		ex = bad_entry(e->approved_index, "an approval envelope does "
		    "not parse");
		goto out;
	}
	finding_init(&f, index, e, &s, who);
	/* The line's first word is "<algorithm>:<hex>". */
	snprintf(f.digest, sizeof(f.digest), "%.*s",
	    (int)strcspn(e->line, " "), e->line);
	f.name = line.name;
	report(run, &f);
out:
	sg_entry_clear(&ap);
	return ex;
}

/* --- policy entries, read from their text --- */

/* The value of line `name` (NUL-terminated in out); SG_ERR_NOT_FOUND. */
static int
raw_field(const char *text, size_t len, const char *name, char *out,
    size_t cap)
{
	const char *p = text, *end = text + len, *nl;
	size_t n = strlen(name), vlen;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return SG_ERR_INVALID;
		if ((size_t)(nl - p) > n && memcmp(p, name, n) == 0 &&
		    p[n] == ' ') {
			vlen = (size_t)(nl - p) - n - 1;
			if (vlen == 0 || vlen >= cap)
				return SG_ERR_INVALID;
			memcpy(out, p + n + 1, vlen);
			out[vlen] = '\0';
			return 0;
		}
	}
	return SG_ERR_NOT_FOUND;
}

/* "<name>@<version> sha256:<64 hex>", as a policy line carries it. */
static int
policy_id_ok(const char *s)
{
	const char *at = strchr(s, '@'), *sp = strchr(s, ' ');

	if (at == NULL || sp == NULL || at > sp ||
	    !sg_name_okn(s, (size_t)(at - s), SG_NAME_LEN_MAX) ||
	    sp == at + 1 || strspn(at + 1, "0123456789") !=
	    (size_t)(sp - at - 1) || strncmp(sp + 1, "sha256:", 7) != 0 ||
	    !sg_lower_hex_ok(sp + 8, SG_SHA256_HEX_LEN))
		return 0;
	return 1;
}

/* The policy a decision's envelope approves: its statement's `policy`
 * line. */
static int
decision_policy(const char *text, size_t len, char *out, size_t cap)
{
	struct sg_envelope env;
	char b64[SG_ENVELOPE_MAX * 2], err[128];
	uint8_t *json = NULL;
	size_t jlen = 0;
	int r = SG_ERR_INVALID;

	memset(&env, 0, sizeof(env));
	if (raw_field(text, len, "envelope", b64, sizeof(b64)) != 0 ||
	    sg_b64_decode(b64, strlen(b64), &json, &jlen) != 0 ||
	    sg_envelope_parse((const char *)json, jlen, &env, err,
	    sizeof(err)) != 0 ||
	    memchr(env.payload, '\0', env.payload_len) != NULL ||
	    env.payload_len < strlen(POLICY_APPROVAL_FIRST) ||
	    memcmp(env.payload, POLICY_APPROVAL_FIRST,
	    strlen(POLICY_APPROVAL_FIRST)) != 0)
		goto out;
	r = raw_field((const char *)env.payload, env.payload_len, "policy", out,
	    cap);
out:
	sg_envelope_clear(&env);
	free(json);
	return r;
}

static int
on_policy(struct sg_monitor_run *run, uint64_t index, const char *type,
    const char *text, size_t len)
{
	char id[SG_NAME_SIZE + 24 + 8 + SG_SHA256_HEX_SIZE];
	char status[16], officer[SG_NAME_SIZE];
	int r;

	officer[0] = '\0';
	if (strcmp(type, "policy") == 0) {
		r = raw_field(text, len, "policy", id, sizeof(id));
		if (r == 0)
			r = raw_field(text, len, "status", status,
			    sizeof(status));
		if (r == 0 && strcmp(status, "pending") != 0 &&
		    strcmp(status, "effective") != 0)
			r = SG_ERR_INVALID;
	} else if (strcmp(type, "policy-effective") == 0) {
		r = raw_field(text, len, "policy", id, sizeof(id));
		snprintf(status, sizeof(status), "effective");
	} else {
		r = raw_field(text, len, "officer", officer, sizeof(officer));
		if (r == 0 && !sg_name_ok(officer, SG_NAME_LEN_MAX))
			r = SG_ERR_INVALID;
		if (r == 0)
			r = decision_policy(text, len, id, sizeof(id));
		snprintf(status, sizeof(status), "pending");
	}
	if (r != 0 || !policy_id_ok(id))
		return bad_entry(index, "a policy entry without a well-formed "
		    "policy line");
	run->policy_changes++;
	fprintf(run->out, "policy: %s %s index %llu%s%s\n", id, status,
	    (unsigned long long)index, officer[0] != '\0' ?
	    " approval by " : "", officer);
	if (run->rules->policy_changes_fail)
		violation(run, index, "policy change %s "
		    "(--policy-changes-fail)", id);
	return 0;
}

/* --- the walk --- */

static int
scan_entry(struct sg_monitor_run *run, struct sg_monitor_state *st,
    uint64_t index, const char *text, size_t len)
{
	struct sg_statement s;
	struct sg_entry e;
	char type[32];
	int ex = 0;

	memset(&e, 0, sizeof(e));
	if (raw_field(text, len, "type", type, sizeof(type)) != 0)
		return bad_entry(index, "no type line");
	if (strcmp(type, "policy") == 0 ||
	    strcmp(type, "policy-decision") == 0 ||
	    strcmp(type, "policy-effective") == 0)
		return on_policy(run, index, type, text, len);
	if (sg_entry_parse(text, len, &e) != 0)
		return bad_entry(index, "not a log entry this monitor can "
		    "read");
	switch (e.type) {
	case SG_ENTRY_CREATED:
		if (sg_statement_parse(e.statement, e.statement_len, &s) != 0) {
			ex = bad_entry(index, "the statement does not parse");
			break;
		}
		if (s.kind == SG_KIND_REQUEST && pending_add(st, e.request,
		    index, s.expires) != 0)
			ex = SG_EXIT_LOCAL;
		break;
	case SG_ENTRY_SIGNATURE:
		ex = on_signature(run, st, index, &e);
		break;
	case SG_ENTRY_ARTIFACT_SIGNATURE:
		ex = on_artifact_signature(run, index, &e);
		break;
	case SG_ENTRY_EXPIRED:
	case SG_ENTRY_FAILED:
	case SG_ENTRY_CANCELLED:
		pending_remove(st, e.request);
		break;
	default:
		break;
	}
	pending_prune(st, e.time);
	sg_entry_clear(&e);
	return ex;
}

int
sg_monitor_scan(struct sg_monitor_run *run, struct sg_monitor_state *st,
    uint64_t from, uint64_t to)
{
	const struct sg_monitor_rules *r = run->rules;
	char *text = NULL, msg[160];
	uint64_t i;
	size_t len = 0;
	int ex;

	for (i = from; i < to; i++) {
		if ((ex = run->get(run->ctx, i, &text, &len)) != 0)
			return ex;
		ex = scan_entry(run, st, i, text, len);
		free(text);
		text = NULL;
		if (ex != 0)
			return ex;
		run->entries++;
	}
	if (r->max_per_run > 0 && run->signatures > r->max_per_run) {
		snprintf(msg, sizeof(msg), "%llu signatures by key %s in one "
		    "run (entries %llu to %llu), more than --max-per-run %llu",
		    (unsigned long long)run->signatures, run->key,
		    (unsigned long long)run->first_sig,
		    (unsigned long long)run->last_sig,
		    (unsigned long long)r->max_per_run);
		violation(run, run->last_sig, "%s", msg);
	}
	return 0;
}

void
sg_monitor_run_clear(struct sg_monitor_run *run)
{
	free(run->counts);
	free(run->approved);
	run->counts = NULL;
	run->approved = NULL;
	run->ncounts = 0;
}
