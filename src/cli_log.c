/*
 * `signgate log key|checkpoint|monitor`: the auditor's view of the
 * transparency log.
 *
 * `key` and `checkpoint` fetch and print; what they print is checked to be
 * a well-formed verifier key or signed note first, so that a hostile
 * server cannot write terminal escapes through them.
 *
 * `monitor` is meant to run from cron.  It remembers, in a small state
 * file, the verifier key it trusts and the last checkpoint it accepted
 * (size and root).  Each run fetches the current checkpoint, verifies its
 * signature with the remembered key, and asks for a consistency proof
 * from the remembered tree to the new one.  The key is trusted on first
 * use (or given with --vkey) and then pinned: a server that starts
 * advertising another key is a failure, never a silent re-pin.  A smaller
 * tree (ROLLBACK), a different root at the same size or a proof that does
 * not verify (FORK) fail with exit 5 and leave the state file untouched,
 * so the evidence of the earlier view survives for the next run and for
 * people.  The state file is replaced atomically only after every check
 * passed.
 *
 * Each run then reads the entries it has not examined yet, up to the
 * verified checkpoint, each proved included under it, and reports the
 * signatures of --key and every policy change (src/cli_monitor.c).  The
 * state file (include/sg_monitor.h; version 1, which knew no entries, is
 * read and upgraded) remembers where it stopped.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_merkle.h"
#include "sg_monitor.h"
#include "sg_note.h"
#include "sg_text.h"
#include "sg_util.h"

#define VKEY_MAX_LEN SG_MONITOR_VKEY_MAX
#define PROOF_JSON_MAX (64 * 1024)
/* A server over its rate limit is asked again this often, a second
 * apart (a first run with --from 0 reads the whole log). */
#define RATE_RETRIES 30

enum {
	OPT_STATE = SG_OPT_CMD,
	OPT_VKEY,
	OPT_KEY,
	OPT_FROM,
	OPT_PATTERN,
	OPT_HOURS,
	OPT_MAX_PER_RUN,
	OPT_POLICY_FAIL,
	OPT_PROMETHEUS,
	OPT_WITNESS,
	OPT_WITNESS_QUORUM,
};

struct vkey {
	char text[VKEY_MAX_LEN + 1];
	char name[SG_NOTE_NAME_MAX + 1];
	uint32_t id;
	uint8_t pub[SG_ED25519_PUB];
};

/* The state file's contents, with its key parsed. */
struct monitor_state {
	struct vkey key;
	struct sg_monitor_state m;
};

static int alarm_msg(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* FORK, ROLLBACK and KEY CHANGED are meant to be noticed in a cron mail. */
static int
alarm_msg(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "signgate: log monitor: %s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nsigngate: log monitor: %s DETECTED; the state file "
	    "was not changed\n", what);
	return SG_EXIT_VERIFY;
}

static int
vkey_set(struct vkey *k, const char *s, size_t len)
{
	struct vkey t;

	memset(&t, 0, sizeof(t));
	if (len == 0 || len > VKEY_MAX_LEN || memchr(s, '\0', len) != NULL)
		return SG_ERR_INVALID;
	memcpy(t.text, s, len);
	t.text[len] = '\0';
	if (sg_note_vkey_parse(t.text, t.name, &t.id, t.pub) != 0)
		return SG_ERR_INVALID;
	*k = t;
	return 0;
}

/*
 * GET of a text resource.  The body (NUL-terminated) is handed over in
 * *ret; failures are reported and turned into an exit status.
 */
static int
get_text(struct sg_cli_http *h, const char *path, size_t max,
    struct sg_cli_http_resp *ret)
{
	struct sg_cli_http_resp resp;
	struct sg_problem p;
	int ex, tries;

	memset(&resp, 0, sizeof(resp));
	for (tries = 0;; tries++) {
		if (sg_cli_http_request(h, "GET", path, NULL, 0, NULL, 0,
		    &resp) != 0) {
			fprintf(stderr, "signgate: GET %s: %s\n", path,
			    sg_cli_http_error(h));
			ex = SG_EXIT_SERVER;
			goto out;
		}
		if (resp.status != 429 || tries == RATE_RETRIES)
			break;
		sg_cli_http_resp_clear(&resp);
		sleep(1);
	}
	if ((ex = sg_cli_status_exit(resp.status)) != SG_EXIT_OK) {
		if (sg_problem_parse(resp.body, resp.len, &p) == 0 &&
		    p.detail[0] != '\0')
			fprintf(stderr, "signgate: GET %s: HTTP %ld: %s\n",
			    path, resp.status, sg_cli_esc(p.detail));
		else
			fprintf(stderr, "signgate: GET %s: HTTP %ld\n", path,
			    resp.status);
		goto out;
	}
	if (resp.len > max || memchr(resp.body, '\0', resp.len) != NULL) {
		fprintf(stderr, "signgate: GET %s: malformed response\n",
		    path);
		ex = SG_EXIT_SERVER;
		goto out;
	}
	*ret = resp;
	memset(&resp, 0, sizeof(resp));       /* transferred */
	ex = SG_EXIT_OK;
out:
	sg_cli_http_resp_clear(&resp);
	return ex;
}

static int
fetch_vkey(struct sg_cli_http *h, struct vkey *ret)
{
	struct sg_cli_http_resp resp;
	size_t len;
	int ex;

	memset(&resp, 0, sizeof(resp));
	if ((ex = get_text(h, "/v1/log/key", VKEY_MAX_LEN + 1, &resp)) != 0)
		return ex;
	len = resp.len;
	if (len > 0 && resp.body[len - 1] == '\n')
		len--;
	if (vkey_set(ret, resp.body, len) != 0) {
		fprintf(stderr, "signgate: GET /v1/log/key: not a verifier "
		    "key\n");
		ex = SG_EXIT_SERVER;
	}
	sg_cli_http_resp_clear(&resp);
	return ex;
}

/* The note's text must be a checkpoint and its signature lines well
 * formed; the caller decides whether a signature must verify. */
static int
fetch_checkpoint(struct sg_cli_http *h, const struct vkey *k,
    struct sg_cli_http_resp *ret_note, struct sg_checkpoint *ret_cp)
{
	struct sg_cli_http_resp resp;
	struct sg_checkpoint cp;
	size_t i, text_len = 0;
	int ex;

	memset(&resp, 0, sizeof(resp));
	if ((ex = get_text(h, "/v1/log/checkpoint", SG_NOTE_MAX,
	    &resp)) != 0)
		return ex;
	if (k != NULL) {
		if (sg_note_verify(resp.body, resp.len, k->name, k->id, k->pub,
		    &text_len) != 0) {
			ex = alarm_msg("BAD CHECKPOINT", "the checkpoint's "
			    "signature does not verify with the pinned key "
			    "%s", k->text);
			goto out;
		}
	} else {
		/* Without a key: the text ends at the last blank line. */
		for (i = resp.len; i >= 2; i--)
			if (resp.body[i - 1] == '\n' && resp.body[i - 2] == '\n')
				break;
		text_len = i >= 2 ? i - 1 : 0;
	}
	if (text_len == 0 ||
	    sg_checkpoint_parse(resp.body, text_len, &cp) != 0) {
		fprintf(stderr, "signgate: GET /v1/log/checkpoint: not a "
		    "checkpoint\n");
		ex = SG_EXIT_SERVER;
		goto out;
	}
	if (k != NULL && strcmp(cp.origin, k->name) != 0) {
		ex = alarm_msg("BAD CHECKPOINT", "origin %s is not the pinned "
		    "key's name %s", sg_cli_esc(cp.origin), k->name);
		goto out;
	}
	*ret_cp = cp;
	if (ret_note != NULL) {
		*ret_note = resp;
		memset(&resp, 0, sizeof(resp));   /* transferred */
	}
	ex = 0;
out:
	sg_cli_http_resp_clear(&resp);
	return ex;
}

/* Signed notes are UTF-8; only the em dash of signature lines is expected
 * outside printable ASCII, and anything else is escaped on output. */
static void
print_note(const char *s, size_t len)
{
	static const char em_dash[] = "\xe2\x80\x94";
	char esc[16];
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n' || (c >= 0x20 && c < 0x7f)) {
			putchar(c);
		} else if (len - i >= 3 && memcmp(s + i, em_dash, 3) == 0) {
			fputs(em_dash, stdout);
			i += 2;
		} else {
			sg_escape(s + i, 1, esc, sizeof(esc));
			fputs(esc, stdout);
		}
	}
}

/* --- state file --- */

static int
state_parse(const char *text, size_t len, struct monitor_state *ret)
{
	struct monitor_state s;

	memset(&s, 0, sizeof(s));
	if (sg_monitor_state_parse(text, len, &s.m) != 0)
		return SG_ERR_INVALID;
	if (vkey_set(&s.key, s.m.vkey, strlen(s.m.vkey)) != 0) {
		sg_monitor_state_clear(&s.m);
		return SG_ERR_INVALID;
	}
	*ret = s;
	return 0;
}

static int
state_write(const char *path, const struct monitor_state *s)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	if ((r = sg_monitor_state_format(&s->m, &text, &len)) != 0)
		return r;
	r = sg_write_file(path, text, len, 0644);
	free(text);
	return r;
}

/* --- consistency --- */

static int
json_u64(const json_t *obj, const char *name, uint64_t *ret)
{
	json_t *v = json_object_get(obj, name);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return SG_ERR_INVALID;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

/*
 * GETs a proof, {"<n1>": v1, "<n2>": v2, "hashes": [base64, ...]}, and
 * checks that it is for (v1, v2); its hashes in hashes[0..*ret_n).
 */
static int
fetch_proof(struct sg_cli_http *h, const char *path, const char *n1,
    uint64_t v1, const char *n2, uint64_t v2,
    uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN], size_t *ret_n)
{
	struct sg_cli_http_resp resp;
	json_t *root = NULL, *arr, *hv;
	uint8_t *dec = NULL;
	uint64_t a = 0, b = 0;
	size_t i, n = 0, dlen = 0;
	int ex;

	memset(&resp, 0, sizeof(resp));
	if ((ex = get_text(h, path, PROOF_JSON_MAX, &resp)) != 0)
		goto out;
	ex = SG_EXIT_SERVER;
	root = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL);
	arr = json_object_get(root, "hashes");
	if (!json_is_object(root) || json_u64(root, n1, &a) != 0 ||
	    json_u64(root, n2, &b) != 0 || !json_is_array(arr) ||
	    json_array_size(arr) > SG_MERKLE_MAX_PROOF) {
		fprintf(stderr, "signgate: GET %s: malformed proof\n", path);
		goto out;
	}
	if (a != v1 || b != v2) {
		fprintf(stderr, "signgate: GET %s: the proof is for %s %llu, "
		    "%s %llu\n", path, n1, (unsigned long long)a, n2,
		    (unsigned long long)b);
		goto out;
	}
	json_array_foreach(arr, i, hv) {
		free(dec);
		dec = NULL;
		if (!json_is_string(hv) || sg_b64_decode(json_string_value(hv),
		    json_string_length(hv), &dec, &dlen) != 0 ||
		    dlen != SG_HASH_LEN) {
			fprintf(stderr, "signgate: GET %s: malformed proof "
			    "hash\n", path);
			goto out;
		}
		memcpy(hashes[n++], dec, SG_HASH_LEN);
	}
	*ret_n = n;
	ex = 0;
out:
	free(dec);
	json_decref(root);
	sg_cli_http_resp_clear(&resp);
	return ex;
}

/*
 * Fetches and verifies the proof that (old_size, old_root) is a prefix of
 * (cp->size, cp->root).  A proof that does not verify is a FORK: the
 * server signed two trees that cannot both be views of one log.
 */
static int
check_consistency(struct sg_cli_http *h, const struct monitor_state *old,
    const struct sg_checkpoint *cp)
{
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	size_t n = 0;
	char path[128];
	int ex;

	snprintf(path, sizeof(path), "/v1/log/proof/consistency?old=%llu&"
	    "new=%llu", (unsigned long long)old->m.size,
	    (unsigned long long)cp->size);
	if ((ex = fetch_proof(h, path, "old", old->m.size, "new", cp->size,
	    hashes, &n)) != 0)
		return ex;
	if (sg_merkle_verify_consistency(old->m.size, cp->size, old->m.root,
	    cp->root, (const uint8_t (*)[SG_HASH_LEN])hashes, n) != 0)
		return alarm_msg("FORK", "the log at size %llu is not an "
		    "extension of the log this monitor saw at size %llu",
		    (unsigned long long)cp->size,
		    (unsigned long long)old->m.size);
	return 0;
}

/* --- entries --- */

struct entry_src {
	struct sg_cli_http *h;
	const struct sg_checkpoint *cp;
};

/*
 * An sg_monitor_get_fn over the JSON API: the entry's bytes, and its
 * inclusion proof under the verified checkpoint.  An entry the proof does
 * not place there is an alarm: the server serves what it did not sign.
 */
static int
get_entry(void *ctx, uint64_t index, char **ret, size_t *ret_len)
{
	const struct entry_src *src = ctx;
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN], leaf[SG_HASH_LEN];
	struct sg_cli_http_resp resp;
	size_t n = 0;
	char path[128];
	int ex;

	memset(&resp, 0, sizeof(resp));
	snprintf(path, sizeof(path), "/v1/log/entries/%llu",
	    (unsigned long long)index);
	if ((ex = get_text(src->h, path, SG_ENTRY_MAX, &resp)) != 0)
		return ex;
	snprintf(path, sizeof(path), "/v1/log/proof/inclusion?index=%llu&"
	    "size=%llu", (unsigned long long)index,
	    (unsigned long long)src->cp->size);
	if ((ex = fetch_proof(src->h, path, "index", index, "size",
	    src->cp->size, hashes, &n)) != 0)
		goto out;
	sg_merkle_leaf_hash((const uint8_t *)resp.body, resp.len, leaf);
	if (sg_merkle_verify_inclusion(leaf, index, src->cp->size,
	    (const uint8_t (*)[SG_HASH_LEN])hashes, n, src->cp->root) != 0) {
		ex = alarm_msg("BAD ENTRY", "entry %llu as served is not the "
		    "leaf the checkpoint of size %llu holds",
		    (unsigned long long)index,
		    (unsigned long long)src->cp->size);
		goto out;
	}
	*ret = resp.body;
	*ret_len = resp.len;
	memset(&resp, 0, sizeof(resp));       /* transferred */
	ex = 0;
out:
	sg_cli_http_resp_clear(&resp);
	return ex;
}

/* --- commands --- */

struct log_args {
	const char *state;
	const char *vkey;
	const char *key;
	const char *prometheus;
	int has_from;
	uint64_t from;
	struct sg_monitor_rules rules;
	struct sg_monitor_witness witnesses[SG_MONITOR_WITNESSES_MAX];
	size_t nwitnesses;
	uint64_t quorum;              /* 0: all the witnesses given */
	int bad;                      /* an option's value was refused */
};

static int
opt_refuse(struct log_args *a, const char *opt, const char *why)
{
	fprintf(stderr, "signgate: log monitor: %s: %s\n", opt, why);
	a->bad = 1;
	return 0;
}

static int
log_option(void *arg, int opt, const char *v)
{
	struct log_args *a = arg;

	switch (opt) {
	case OPT_STATE:
		a->state = v;
		return 0;
	case OPT_VKEY:
		a->vkey = v;
		return 0;
	case OPT_KEY:
		if (!sg_name_ok(v, SG_NAME_LEN_MAX))
			return opt_refuse(a, "--key", "not a key name "
			    "([A-Za-z0-9._-], 1 to 63 bytes)");
		a->key = v;
		return 0;
	case OPT_FROM:
		a->has_from = 1;
		if (sg_parse_u64(v, 0, SG_MERKLE_MAX_SIZE, &a->from) != 0)
			return opt_refuse(a, "--from", "not an entry index");
		return 0;
	case OPT_PATTERN:
		if (a->rules.npatterns == SG_MONITOR_PATTERNS_MAX)
			return opt_refuse(a, "--artifact-pattern", "given too "
			    "many times (at most 16)");
		if (!sg_pattern_valid(v))
			return opt_refuse(a, "--artifact-pattern", "not a "
			    "name pattern (printable ASCII, * and ?)");
		a->rules.patterns[a->rules.npatterns++] = v;
		return 0;
	case OPT_HOURS:
		if (sg_monitor_hours_parse(v, &a->rules.hours) != 0)
			return opt_refuse(a, "--hours", "not HH-HH (UTC, from "
			    "00-23 to 01-24, start != end; 22-06 wraps "
			    "midnight)");
		return 0;
	case OPT_MAX_PER_RUN:
		if (sg_parse_u64(v, 1, UINT32_MAX, &a->rules.max_per_run) != 0)
			return opt_refuse(a, "--max-per-run", "not a number "
			    "from 1");
		return 0;
	case OPT_POLICY_FAIL:
		a->rules.policy_changes_fail = 1;
		return 0;
	case OPT_PROMETHEUS:
		a->prometheus = v;
		return 0;
	case OPT_WITNESS:
		if (a->nwitnesses == SG_MONITOR_WITNESSES_MAX)
			return opt_refuse(a, "--witness", "given too many "
			    "times (at most 16)");
		if (sg_monitor_witness_parse(v,
		    &a->witnesses[a->nwitnesses]) != 0)
			return opt_refuse(a, "--witness", "not a witness's "
			    "verifier key (<name>+<key id>+<base64 of 0x04 and "
			    "an Ed25519 key>)");
		a->nwitnesses++;
		return 0;
	case OPT_WITNESS_QUORUM:
		if (sg_parse_u64(v, 1, SG_MONITOR_WITNESSES_MAX,
		    &a->quorum) != 0)
			return opt_refuse(a, "--witness-quorum", "not a number "
			    "from 1 to 16");
		return 0;
	}
	return 1;
}

static int
parse_args(int argc, char **argv, struct sg_cli_conf *conf, int monitor,
    struct log_args *ret, int *ret_help)
{
	static const struct option own_monitor[] = {
		{ "state", required_argument, NULL, OPT_STATE },
		{ "vkey", required_argument, NULL, OPT_VKEY },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "artifact-pattern", required_argument, NULL, OPT_PATTERN },
		{ "hours", required_argument, NULL, OPT_HOURS },
		{ "max-per-run", required_argument, NULL, OPT_MAX_PER_RUN },
		{ "policy-changes-fail", no_argument, NULL, OPT_POLICY_FAIL },
		{ "prometheus", required_argument, NULL, OPT_PROMETHEUS },
		{ "witness", required_argument, NULL, OPT_WITNESS },
		{ "witness-quorum", required_argument, NULL,
		    OPT_WITNESS_QUORUM },
		{ NULL, 0, NULL, 0 },
	};
	const struct sg_cli_cmdline cl = { "log",
	    monitor ? own_monitor : NULL, NULL, log_option, ret };
	int ex;

	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, ret_help)) != 0)
		return ex;
	if (ret->bad)
		return SG_EXIT_USAGE;
	if (optind != argc) {
		fprintf(stderr, "signgate: log %s takes no arguments\n",
		    argv[0]);
		return SG_EXIT_USAGE;
	}
	if ((ret->rules.npatterns > 0 || ret->rules.hours.set ||
	    ret->rules.max_per_run > 0) && ret->key == NULL) {
		fprintf(stderr, "signgate: log monitor: --artifact-pattern, "
		    "--hours and --max-per-run apply to the signatures of "
		    "--key NAME\n");
		return SG_EXIT_USAGE;
	}
	if (ret->quorum > ret->nwitnesses) {
		fprintf(stderr, "signgate: log monitor: --witness-quorum %llu "
		    "needs at least that many --witness keys\n",
		    (unsigned long long)ret->quorum);
		return SG_EXIT_USAGE;
	}
	if (ret->quorum == 0)
		ret->quorum = ret->nwitnesses;
	return 0;
}

static int
cmd_key(struct sg_cli_http *h)
{
	struct vkey k;
	int ex;

	if ((ex = fetch_vkey(h, &k)) != 0)
		return ex;
	printf("%s\n", k.text);
	return 0;
}

static int
cmd_checkpoint(struct sg_cli_http *h)
{
	struct sg_cli_http_resp note;
	struct sg_checkpoint cp;
	int ex;

	memset(&note, 0, sizeof(note));
	if ((ex = fetch_checkpoint(h, NULL, &note, &cp)) != 0)
		return ex;
	print_note(note.body, note.len);
	sg_cli_http_resp_clear(&note);
	return 0;
}

/* The state file, if there is one yet (*have_old); an exit status. */
static int
monitor_load(const char *path, struct monitor_state *old, int *have_old)
{
	char *text = NULL;
	size_t len = 0;
	int r;

	*have_old = 0;
	if ((r = sg_read_file(path, SG_MONITOR_STATE_MAX, &text, &len)) != 0) {
		if (r == SG_ERR_NOT_FOUND)
			return SG_EXIT_OK;
		fprintf(stderr, "signgate: cannot read %s: %s\n", path,
		    sg_strerror(r));
		return SG_EXIT_LOCAL;
	}
	r = state_parse(text, len, old);
	free(text);
	if (r != 0) {
		fprintf(stderr, "signgate: %s: not a log monitor state file; "
		    "refusing to overwrite it\n", path);
		return SG_EXIT_LOCAL;
	}
	*have_old = 1;
	return SG_EXIT_OK;
}

/*
 * The key to trust: pinned in the state, else given, else the served one
 * on first use.  A given or served key other than the pinned one is an
 * alarm.
 */
static int
monitor_key(struct sg_cli_http *h, const char *state_path,
    const struct monitor_state *old, int have_old, const struct vkey *given,
    struct vkey *ret)
{
	struct vkey served;
	int ex;

	if ((ex = fetch_vkey(h, &served)) != 0)
		return ex;
	if (have_old)
		*ret = old->key;
	else if (given != NULL)
		*ret = *given;
	else
		*ret = served;
	if (have_old && given != NULL &&
	    strcmp(given->text, old->key.text) != 0)
		return alarm_msg("KEY CHANGED", "--vkey %s is not the key "
		    "pinned in %s (%s)", given->text, state_path,
		    old->key.text);
	if (strcmp(served.text, ret->text) != 0)
		return alarm_msg("KEY CHANGED", "the server's log key is %s, "
		    "the pinned key is %s", served.text, ret->text);
	return 0;
}

/* The new checkpoint extends the tree this monitor saw last. */
static int
monitor_extends(struct sg_cli_http *h, const struct monitor_state *old,
    const struct sg_checkpoint *cp)
{
	uint8_t empty[SG_HASH_LEN];

	if (cp->size < old->m.size)
		return alarm_msg("ROLLBACK", "the log now has %llu entries, "
		    "but this monitor saw %llu", (unsigned long long)cp->size,
		    (unsigned long long)old->m.size);
	if (cp->size == old->m.size) {
		if (memcmp(cp->root, old->m.root, SG_HASH_LEN) != 0)
			return alarm_msg("FORK", "two different roots for the "
			    "log at size %llu", (unsigned long long)cp->size);
		return 0;
	}
	if (old->m.size > 0)
		return check_consistency(h, old, cp);
	/* Every log extends the empty one, whose root is fixed; a state
	 * claiming another root for it was not written by this monitor. */
	sg_sha256("", 0, empty);
	if (memcmp(old->m.root, empty, SG_HASH_LEN) != 0)
		return alarm_msg("FORK", "the state file's empty log has a "
		    "non-empty root");
	return 0;
}

static void
monitor_print(const struct monitor_state *old, const struct monitor_state *cur,
    int have_old, int given)
{
	char *b64 = sg_b64_encode(cur->m.root, SG_HASH_LEN);

	printf("key: %s%s\n", cur->key.text, have_old ? "" : given ?
	    " (given)" : " (trusted on first use)");
	if (have_old)
		printf("previous: %llu\n", (unsigned long long)old->m.size);
	printf("size: %llu\n", (unsigned long long)cur->m.size);
	printf("root: %s\n", b64 != NULL ? b64 : "?");
	printf("consistent: %s\n", have_old ? "yes" : "first checkpoint");
	free(b64);
}

/* The checkpoint carries valid cosignatures of --witness-quorum of the
 * --witness keys; else an alarm: the log may show this tree to this
 * monitor only. */
static int
monitor_witnesses(const struct log_args *a, const char *note, size_t len,
    const struct sg_checkpoint *cp, size_t *ret_n)
{
	size_t n;

	*ret_n = 0;
	if (a->nwitnesses == 0)
		return 0;
	n = sg_monitor_cosigned(note, len, a->witnesses, a->nwitnesses, NULL,
	    NULL);
	if (n < a->quorum)
		return alarm_msg("WITNESS QUORUM", "the checkpoint of size "
		    "%llu carries valid cosignatures of %zu of the %zu "
		    "witnesses given; %llu are required",
		    (unsigned long long)cp->size, n, a->nwitnesses,
		    (unsigned long long)a->quorum);
	*ret_n = n;
	return 0;
}

/* Reads the entries not examined yet, up to the verified checkpoint. */
static int
monitor_entries(struct sg_cli_http *h, const struct log_args *a,
    const struct sg_checkpoint *cp, int have_old, struct monitor_state *cur,
    struct sg_monitor_run *run)
{
	struct entry_src src = { h, cp };
	uint64_t from;
	int ex;

	/* A first run starts at the end, unless told where; a v1 state
	 * starts where it stopped. */
	from = have_old ? cur->m.next : cp->size;
	if (a->has_from)
		from = a->from;
	if (from > cp->size) {
		fprintf(stderr, "signgate: log monitor: %s %llu: the log has "
		    "%llu entries\n", a->has_from ? "--from" :
		    "the state's next entry", (unsigned long long)from,
		    (unsigned long long)cp->size);
		return a->has_from ? SG_EXIT_USAGE : SG_EXIT_LOCAL;
	}
	run->key = a->key;
	run->rules = &a->rules;
	run->get = get_entry;
	run->ctx = &src;
	run->out = stdout;
	if ((ex = sg_monitor_scan(run, &cur->m, from, cp->size)) != 0)
		return ex;
	cur->m.next = cp->size;
	cur->m.violations += run->violations;
	if (from == cp->size)
		printf("read: no new entries\n");
	else
		printf("read: entries %llu to %llu\n",
		    (unsigned long long)from,
		    (unsigned long long)cp->size - 1);
	if (a->key != NULL)
		printf("signatures: %llu by key %s\n",
		    (unsigned long long)run->signatures, a->key);
	printf("policy changes: %llu\n",
	    (unsigned long long)run->policy_changes);
	printf("violations: %llu\n", (unsigned long long)run->violations);
	return 0;
}

/* Everything but the Prometheus file; *ret_checked once the checkpoint
 * verified and extends the old one. */
static int
monitor_run(struct sg_cli_conf *conf, const struct log_args *a,
    struct monitor_state *old, int *have_old, struct monitor_state *cur,
    struct sg_monitor_run *run, int *ret_checked)
{
	struct sg_cli_http_resp note;
	struct sg_cli_http *h = NULL;
	struct sg_checkpoint cp;
	struct vkey given;
	size_t cosigned = 0;
	int r, ex;

	memset(&note, 0, sizeof(note));

	if (a->vkey != NULL && vkey_set(&given, a->vkey,
	    strlen(a->vkey)) != 0) {
		fprintf(stderr, "signgate: --vkey: not a verifier key "
		    "(<name>+<key id>+<base64>)\n");
		return SG_EXIT_USAGE;
	}
	if ((ex = monitor_load(a->state, old, have_old)) != 0 ||
	    (ex = sg_cli_connect(conf, &h)) != 0)
		goto out;
	if ((ex = monitor_key(h, a->state, old, *have_old,
	    a->vkey != NULL ? &given : NULL, &cur->key)) != 0 ||
	    (ex = fetch_checkpoint(h, &cur->key, &note, &cp)) != 0)
		goto out;
	if ((ex = monitor_witnesses(a, note.body, note.len, &cp,
	    &cosigned)) != 0)
		goto out;
	if (*have_old && (ex = monitor_extends(h, old, &cp)) != 0)
		goto out;
	/* The new state takes over the old one's list and counts. */
	cur->m = old->m;
	old->m.pending = NULL;
	old->m.npending = 0;
	snprintf(cur->m.vkey, sizeof(cur->m.vkey), "%s", cur->key.text);
	cur->m.version = 2;
	cur->m.size = cp.size;
	memcpy(cur->m.root, cp.root, SG_HASH_LEN);
	*ret_checked = 1;
	monitor_print(old, cur, *have_old, a->vkey != NULL);
	if (a->nwitnesses > 0)
		printf("witnesses: %zu of %zu cosigned (quorum %llu)\n",
		    cosigned, a->nwitnesses, (unsigned long long)a->quorum);
	if ((ex = monitor_entries(h, a, &cp, *have_old, cur, run)) != 0)
		goto out;
	cur->m.success = (int64_t)time(NULL);
	if ((r = state_write(a->state, cur)) != 0) {
		fprintf(stderr, "signgate: cannot write %s: %s\n", a->state,
		    sg_strerror(r));
		ex = SG_EXIT_LOCAL;
		goto out;
	}
	if (*have_old && old->m.version == 1)
		printf("state: upgraded from version 1\n");
	ex = run->violations > 0 ? SG_MONITOR_EXIT_RULE : SG_EXIT_OK;
out:
	sg_cli_http_resp_clear(&note);
	sg_cli_http_free(h);
	return ex;
}

static int
cmd_monitor(struct sg_cli_conf *conf, const struct log_args *a)
{
	struct monitor_state old, cur;
	struct sg_monitor_metrics mm;
	struct sg_monitor_run run;
	int have_old = 0, checked = 0, done, r, ex;

	memset(&old, 0, sizeof(old));
	memset(&cur, 0, sizeof(cur));
	memset(&run, 0, sizeof(run));
	ex = monitor_run(conf, a, &old, &have_old, &cur, &run, &checked);
	ex = sg_cli_flush(ex);
	if (a->prometheus != NULL) {
		done = ex == SG_EXIT_OK || ex == SG_MONITOR_EXIT_RULE;
		memset(&mm, 0, sizeof(mm));
		mm.now = (int64_t)time(NULL);
		mm.exit_status = ex;
		mm.last_success = done ? cur.m.success :
		    have_old ? old.m.success : 0;
		mm.log_size = checked ? cur.m.size : old.m.size;
		mm.violations_total = done ? cur.m.violations :
		    old.m.violations;
		mm.run = done ? &run : NULL;
		mm.key = a->key;
		if ((r = sg_monitor_prometheus_write(a->prometheus,
		    &mm)) != 0) {
			fprintf(stderr, "signgate: cannot write %s: %s\n",
			    a->prometheus, sg_strerror(r));
			if (ex == SG_EXIT_OK)
				ex = SG_EXIT_LOCAL;
		}
	}
	sg_monitor_run_clear(&run);
	sg_monitor_state_clear(&old.m);
	sg_monitor_state_clear(&cur.m);
	return ex;
}

int
sg_cli_cmd_log(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct log_args la;
	struct sg_cli_http *h = NULL;
	const char *sub;
	int ex, help = 0, monitor;

	memset(&la, 0, sizeof(la));
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		sg_cli_usage(argc < 2 ? stderr : stdout, "log");
		return argc < 2 ? SG_EXIT_USAGE : SG_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "key") != 0 && strcmp(sub, "checkpoint") != 0 &&
	    strcmp(sub, "monitor") != 0) {
		fprintf(stderr, "signgate: log: no such subcommand: %s (key, "
		    "checkpoint or monitor)\n", sg_cli_esc(sub));
		return SG_EXIT_USAGE;
	}
	monitor = strcmp(sub, "monitor") == 0;
	if ((ex = parse_args(argc - 1, argv + 1, conf, monitor, &la,
	    &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "log");
		return SG_EXIT_OK;
	}
	if (monitor && la.state == NULL) {
		fprintf(stderr, "signgate: log monitor needs --state FILE\n");
		return SG_EXIT_USAGE;
	}
	if (monitor)
		return cmd_monitor(conf, &la);
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		return ex;
	if (strcmp(sub, "key") == 0)
		ex = cmd_key(h);
	else
		ex = cmd_checkpoint(h);
	ex = sg_cli_flush(ex);
	sg_cli_http_free(h);
	return ex;
}
