/*
 * `signgate log monitor`: one run (see src/cli_log.c for the model).
 *
 * The log is read either through the gateway's JSON API (GET /v1/log/...,
 * src/cli_log.c) or, with --log SOURCE, as C2SP tlog-tiles from the
 * gateway's /log/ prefix, a mirror's URL or a mirror's directory
 * (include/sg_tile_client.h), which needs nothing from the gateway: the
 * key is then the pinned one or --vkey.  Either way the checkpoint is
 * verified with the pinned key, must carry the cosignatures of
 * --witness-quorum of the --witness keys, and must extend the tree the
 * last run saw; then the entries not examined yet are read
 * (src/cli_monitor.c), each checked against the checkpoint, and only when
 * all of that succeeded is the state file replaced.  --prometheus writes
 * its textfile after every run, a failed one included.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_log_int.h"
#include "sg_cli.h"
#include "sg_cli_witness.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_merkle.h"
#include "sg_monitor.h"
#include "sg_note.h"
#include "sg_text.h"
#include "sg_tile_client.h"
#include "sg_util.h"

/* Entries read from tiles a bundle at a time (tlog-tiles: 256). */
#define BUNDLE 256

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
	OPT_LOG,
};

/* The state file's contents, with its key parsed. */
struct monitor_state {
	struct sg_log_vkey key;
	struct sg_monitor_state m;
};

/* --- state file --- */

static int
state_parse(const char *text, size_t len, struct monitor_state *ret)
{
	struct monitor_state s;

	memset(&s, 0, sizeof(s));
	if (sg_monitor_state_parse(text, len, &s.m) != 0)
		return SG_ERR_INVALID;
	if (sg_log_vkey_set(&s.key, s.m.vkey, strlen(s.m.vkey)) != 0) {
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

/* --- options --- */

struct log_args {
	const char *state;
	const char *vkey;
	const char *key;
	const char *prometheus;
	const char *log;              /* --log SOURCE, or NULL */
	int has_from;
	uint64_t from;
	struct sg_monitor_rules rules;
	struct sg_cli_witnesses witnesses;  /* quorum 0: all of them */
};

static int
opt_refuse(const char *opt, const char *why)
{
	fprintf(stderr, "signgate: log monitor: %s: %s\n", opt, why);
	return SG_EXIT_USAGE;
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
			return opt_refuse("--key", "not a key name "
			    "([A-Za-z0-9._-], 1 to 63 bytes)");
		a->key = v;
		return 0;
	case OPT_FROM:
		a->has_from = 1;
		if (sg_parse_u64(v, 0, SG_MERKLE_MAX_SIZE, &a->from) != 0)
			return opt_refuse("--from", "not an entry index");
		return 0;
	case OPT_PATTERN:
		if (a->rules.npatterns == SG_MONITOR_PATTERNS_MAX)
			return opt_refuse("--artifact-pattern", "given too "
			    "many times (at most 16)");
		if (!sg_pattern_valid(v))
			return opt_refuse("--artifact-pattern", "not a "
			    "name pattern (printable ASCII, * and ?)");
		a->rules.patterns[a->rules.npatterns++] = v;
		return 0;
	case OPT_HOURS:
		if (sg_monitor_hours_parse(v, &a->rules.hours) != 0)
			return opt_refuse("--hours", "not HH-HH (UTC, from "
			    "00-23 to 01-24, start != end; 22-06 wraps "
			    "midnight)");
		return 0;
	case OPT_MAX_PER_RUN:
		if (sg_parse_u64(v, 1, UINT32_MAX, &a->rules.max_per_run) != 0)
			return opt_refuse("--max-per-run", "not a number "
			    "from 1");
		return 0;
	case OPT_POLICY_FAIL:
		a->rules.policy_changes_fail = 1;
		return 0;
	case OPT_PROMETHEUS:
		a->prometheus = v;
		return 0;
	case OPT_LOG:
		a->log = v;
		return 0;
	case OPT_WITNESS:
		if (a->witnesses.n == SG_MONITOR_WITNESSES_MAX)
			return opt_refuse("--witness", "given too many "
			    "times (at most 16)");
		switch (sg_cli_witness_add(&a->witnesses, v)) {
		case 0:
			return 0;
		case SG_ERR_CONFLICT:
			return opt_refuse("--witness", "the same key as another "
			    "witness under another name (one key is one "
			    "witness)");
		default:
			return opt_refuse("--witness", "not a witness's "
			    "verifier key (<name>+<key id>+<base64 of 0x04 and "
			    "an Ed25519 key>)");
		}
	case OPT_WITNESS_QUORUM:
		if (sg_parse_u64(v, 1, SG_MONITOR_WITNESSES_MAX,
		    &a->witnesses.quorum) != 0)
			return opt_refuse("--witness-quorum", "not a number "
			    "from 1 to 16");
		return 0;
	}
	return 1;
}

static int
parse_args(int argc, char **argv, struct sg_cli_conf *conf,
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
		{ "log", required_argument, NULL, OPT_LOG },
		{ NULL, 0, NULL, 0 },
	};
	const struct sg_cli_cmdline cl = { "log", own_monitor, NULL,
	    log_option, ret };
	int ex;

	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, ret_help)) != 0)
		return ex;
	if (optind != argc) {
		fprintf(stderr, "signgate: log monitor takes no arguments\n");
		return SG_EXIT_USAGE;
	}
	if (*ret_help)
		return 0;
	if (ret->state == NULL) {
		fprintf(stderr, "signgate: log monitor needs --state FILE\n");
		return SG_EXIT_USAGE;
	}
	if ((ret->rules.npatterns > 0 || ret->rules.hours.set ||
	    ret->rules.max_per_run > 0) && ret->key == NULL) {
		fprintf(stderr, "signgate: log monitor: --artifact-pattern, "
		    "--hours and --max-per-run apply to the signatures of "
		    "--key NAME\n");
		return SG_EXIT_USAGE;
	}
	if (ret->witnesses.quorum > ret->witnesses.n) {
		fprintf(stderr, "signgate: log monitor: --witness-quorum %llu "
		    "needs at least that many --witness keys\n",
		    (unsigned long long)ret->witnesses.quorum);
		return SG_EXIT_USAGE;
	}
	if (ret->witnesses.quorum == 0)
		ret->witnesses.quorum = ret->witnesses.n;
	return 0;
}

/* --- where the log is read --- */

struct source {
	const char *name;             /* for messages */
	struct sg_cli_http *h;        /* the JSON API, or NULL */
	struct sg_tile_client *tc;    /* --log, or NULL */
	struct sg_cli_http_resp note; /* the API's checkpoint */
	struct sg_checkpoint cp;
	struct sg_log_api_src api;
	/* tiles: entries [lo, lo + n) of the last bundle read */
	uint64_t lo;
	size_t n;
	char *ents[BUNDLE];
	size_t lens[BUNDLE];
};

static int
src_open(struct sg_cli_conf *conf, const struct log_args *a,
    struct source *s)
{
	const char *ca;
	int r;

	if (a->log == NULL) {
		s->name = "the gateway";
		return sg_cli_connect(conf, &s->h);
	}
	s->name = a->log;
	ca = conf->cacert != NULL ? conf->cacert : getenv("SIGNGATE_CACERT");
	if ((r = sg_tile_client_open(a->log, ca, (long)conf->timeout,
	    &s->tc)) != 0) {
		fprintf(stderr, "signgate: log monitor: --log %s: %s\n",
		    sg_cli_esc(a->log), sg_strerror(r));
		return SG_EXIT_USAGE;
	}
	return 0;
}

static void
src_drop_bundle(struct source *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->ents[i]);
	s->n = 0;
}

static void
src_close(struct source *s)
{
	src_drop_bundle(s);
	sg_cli_http_resp_clear(&s->note);
	sg_cli_http_free(s->h);
	sg_tile_client_free(s->tc);
}

static int
src_fail(const struct source *s, const char *what)
{
	fprintf(stderr, "signgate: log monitor: %s: %s: %s\n",
	    sg_cli_esc(s->name), what, sg_tile_client_error(s->tc));
	return SG_EXIT_SERVER;
}

/* The checkpoint, verified with k; its note in *ret_note. */
static int
src_checkpoint(struct source *s, const struct sg_log_vkey *k,
    const char **ret_note, size_t *ret_len)
{
	int r, ex;

	if (s->h != NULL) {
		if ((ex = sg_log_api_checkpoint(s->h, k, &s->note,
		    &s->cp)) != 0)
			return ex;
		*ret_note = s->note.body;
		*ret_len = s->note.len;
		return 0;
	}
	if ((r = sg_tile_client_checkpoint(s->tc, k->text)) != 0) {
		if (r == SG_ERR_VERIFY)
			return sg_log_alarm("BAD CHECKPOINT", "%s: %s",
			    sg_cli_esc(s->name), sg_tile_client_error(s->tc));
		return src_fail(s, "checkpoint");
	}
	s->cp = *sg_tile_client_cp(s->tc);
	*ret_note = sg_tile_client_note(s->tc, ret_len);
	return 0;
}

static int
src_consistent(struct source *s, uint64_t old_size,
    const uint8_t old_root[SG_HASH_LEN])
{
	int r;

	if (s->h != NULL)
		return sg_log_api_consistency(s->h, old_size, old_root, &s->cp);
	if ((r = sg_tile_client_consistent(s->tc, old_size, old_root)) != 0) {
		if (r == SG_ERR_VERIFY)
			return sg_log_alarm("FORK", "the log at size %llu is not "
			    "an extension of the log this monitor saw at size "
			    "%llu: %s", (unsigned long long)s->cp.size,
			    (unsigned long long)old_size,
			    sg_tile_client_error(s->tc));
		return src_fail(s, "consistency");
	}
	return 0;
}

static int
keep_entry(void *arg, uint64_t index, const uint8_t *entry, size_t len)
{
	struct source *s = arg;
	char *copy;

	if (index != s->lo + s->n || s->n == BUNDLE ||
	    (copy = malloc(len + 1)) == NULL)
		return SG_ERR_INTERNAL;
	memcpy(copy, entry, len);
	copy[len] = '\0';
	s->ents[s->n] = copy;
	s->lens[s->n++] = len;
	return 0;
}

/* An sg_monitor_get_fn: the API's entry and inclusion proof, or the
 * bundle of entries around index from the tiles, each checked there. */
static int
src_entry(void *ctx, uint64_t index, char **ret, size_t *ret_len)
{
	struct source *s = ctx;
	uint64_t hi;
	size_t len;
	char *copy;
	int r;

	if (s->tc == NULL)
		return sg_log_api_entry(&s->api, index, ret, ret_len);
	if (index >= s->cp.size)
		return src_fail(s, "an entry past the checkpoint");
	if (s->n == 0 || index < s->lo || index >= s->lo + s->n) {
		src_drop_bundle(s);
		s->lo = index - index % BUNDLE;
		hi = s->lo + BUNDLE < s->cp.size ? s->lo + BUNDLE : s->cp.size;
		if ((r = sg_tile_client_entries(s->tc, s->lo, hi, keep_entry,
		    s)) != 0 || s->n != hi - s->lo) {
			src_drop_bundle(s);
			if (r == SG_ERR_VERIFY)
				return sg_log_alarm("BAD ENTRY", "%s: %s",
				    sg_cli_esc(s->name),
				    sg_tile_client_error(s->tc));
			return src_fail(s, "entries");
		}
	}
	len = s->lens[index - s->lo];
	if ((copy = malloc(len + 1)) == NULL)
		return SG_EXIT_LOCAL;
	memcpy(copy, s->ents[index - s->lo], len + 1);
	*ret = copy;
	*ret_len = len;
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
 * on first use (a tiles source serves none: --vkey is needed then).  A
 * given or served key other than the pinned one is an alarm.
 */
static int
monitor_key(struct source *s, const char *state_path,
    const struct monitor_state *old, int have_old,
    const struct sg_log_vkey *given, struct sg_log_vkey *ret)
{
	struct sg_log_vkey served;
	int ex;

	if (s->h != NULL && (ex = sg_log_api_vkey(s->h, &served)) != 0)
		return ex;
	if (have_old)
		*ret = old->key;
	else if (given != NULL)
		*ret = *given;
	else if (s->h != NULL)
		*ret = served;
	else {
		fprintf(stderr, "signgate: log monitor: --log needs --vkey "
		    "on the first run (`signgate log key`, compared out of "
		    "band)\n");
		return SG_EXIT_USAGE;
	}
	if (have_old && given != NULL &&
	    strcmp(given->text, old->key.text) != 0)
		return sg_log_alarm("KEY CHANGED", "--vkey %s is not the key "
		    "pinned in %s (%s)", given->text, state_path,
		    old->key.text);
	if (s->h != NULL && strcmp(served.text, ret->text) != 0)
		return sg_log_alarm("KEY CHANGED", "the server's log key is "
		    "%s, the pinned key is %s", served.text, ret->text);
	return 0;
}

/* The new checkpoint extends the tree this monitor saw last. */
static int
monitor_extends(struct source *s, const struct monitor_state *old)
{
	const struct sg_checkpoint *cp = &s->cp;
	uint8_t empty[SG_HASH_LEN];

	if (cp->size < old->m.size)
		return sg_log_alarm("ROLLBACK", "the log now has %llu entries, "
		    "but this monitor saw %llu", (unsigned long long)cp->size,
		    (unsigned long long)old->m.size);
	if (cp->size == old->m.size) {
		if (memcmp(cp->root, old->m.root, SG_HASH_LEN) != 0)
			return sg_log_alarm("FORK", "two different roots for "
			    "the log at size %llu",
			    (unsigned long long)cp->size);
		return 0;
	}
	if (old->m.size > 0)
		return src_consistent(s, old->m.size, old->m.root);
	/* Every log extends the empty one, whose root is fixed; a state
	 * claiming another root for it was not written by this monitor. */
	sg_sha256("", 0, empty);
	if (memcmp(old->m.root, empty, SG_HASH_LEN) != 0)
		return sg_log_alarm("FORK", "the state file's empty log has a "
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
	const struct sg_cli_witnesses *w = &a->witnesses;
	size_t n;

	*ret_n = 0;
	if (w->n == 0)
		return 0;
	if (sg_cli_witness_check(w, note, len, &n, NULL, 0) != 0)
		return sg_log_alarm("WITNESS QUORUM", "the checkpoint of size "
		    "%llu carries valid cosignatures of %zu of the %zu "
		    "witnesses given; %llu are required",
		    (unsigned long long)cp->size, n, w->n,
		    (unsigned long long)w->quorum);
	*ret_n = n;
	return 0;
}

/* Reads the entries not examined yet, up to the verified checkpoint. */
/*
 * Read from the gateway, the entries come from its own tiles (/log/, an
 * entry bundle of 256 a request) rather than the JSON API (an entry and
 * its proof, two requests each), once the tiles' checkpoint, verified
 * with the same key, extends the one this run verified.  A gateway
 * without tiles, or tiles that cannot be read, leave the JSON API.
 */
static void
src_gateway_tiles(struct source *s, const struct sg_cli_conf *conf,
    const struct sg_log_vkey *k)
{
	struct sg_tile_client *tc = NULL;
	const struct sg_checkpoint *tcp;
	const char *ca;
	char url[2048];
	size_t n;

	if (s->h == NULL || s->tc != NULL || conf->url == NULL)
		return;
	n = strlen(conf->url);
	while (n > 0 && conf->url[n - 1] == '/')
		n--;
	if (n + sizeof("/log") > sizeof(url))
		return;
	snprintf(url, sizeof(url), "%.*s/log", (int)n, conf->url);
	ca = conf->cacert != NULL ? conf->cacert : getenv("SIGNGATE_CACERT");
	if (sg_tile_client_open(url, ca, (long)conf->timeout, &tc) != 0)
		return;
	if (sg_tile_client_checkpoint(tc, k->text) != 0 ||
	    (tcp = sg_tile_client_cp(tc))->size < s->cp.size ||
	    sg_tile_client_consistent(tc, s->cp.size, s->cp.root) != 0) {
		sg_tile_client_free(tc);
		return;
	}
	s->tc = tc;
}

static int
monitor_entries(struct source *s, const struct log_args *a, int have_old,
    struct monitor_state *cur, struct sg_monitor_run *run)
{
	const struct sg_checkpoint *cp = &s->cp;
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
	/* Requests created at or after `from` are read again. */
	while (cur->m.npending > 0 &&
	    cur->m.pending[cur->m.npending - 1].index >= from)
		cur->m.npending--;
	s->api.h = s->h;
	s->api.cp = cp;
	run->key = a->key;
	run->rules = &a->rules;
	run->get = src_entry;
	run->ctx = s;
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
	struct source s;
	struct sg_log_vkey given;
	const char *note = NULL;
	size_t note_len = 0, cosigned = 0;
	int r, ex;

	memset(&s, 0, sizeof(s));
	if (a->vkey != NULL && sg_log_vkey_set(&given, a->vkey,
	    strlen(a->vkey)) != 0) {
		fprintf(stderr, "signgate: --vkey: not a verifier key "
		    "(<name>+<key id>+<base64>)\n");
		return SG_EXIT_USAGE;
	}
	if ((ex = monitor_load(a->state, old, have_old)) != 0 ||
	    (ex = src_open(conf, a, &s)) != 0)
		goto out;
	if ((ex = monitor_key(&s, a->state, old, *have_old,
	    a->vkey != NULL ? &given : NULL, &cur->key)) != 0 ||
	    (ex = src_checkpoint(&s, &cur->key, &note, &note_len)) != 0 ||
	    (ex = monitor_witnesses(a, note, note_len, &s.cp,
	    &cosigned)) != 0)
		goto out;
	if (*have_old && (ex = monitor_extends(&s, old)) != 0)
		goto out;
	/* The new state takes over the old one's list and counts. */
	cur->m = old->m;
	old->m.pending = NULL;
	old->m.npending = 0;
	snprintf(cur->m.vkey, sizeof(cur->m.vkey), "%s", cur->key.text);
	cur->m.version = 2;
	cur->m.size = s.cp.size;
	memcpy(cur->m.root, s.cp.root, SG_HASH_LEN);
	*ret_checked = 1;
	monitor_print(old, cur, *have_old, a->vkey != NULL);
	if (a->witnesses.n > 0)
		printf("witnesses: %zu of %zu cosigned (quorum %llu)\n",
		    cosigned, a->witnesses.n,
		    (unsigned long long)a->witnesses.quorum);
	if (cur->m.next < s.cp.size || a->has_from)
		src_gateway_tiles(&s, conf, &cur->key);
	if ((ex = monitor_entries(&s, a, *have_old, cur, run)) != 0)
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
	src_close(&s);
	return ex;
}

static void
monitor_prometheus(const struct log_args *a, const struct monitor_state *old,
    int have_old, const struct monitor_state *cur,
    const struct sg_monitor_run *run, int checked, int *ex)
{
	struct sg_monitor_metrics mm;
	int done = *ex == SG_EXIT_OK || *ex == SG_MONITOR_EXIT_RULE, r;

	memset(&mm, 0, sizeof(mm));
	mm.now = (int64_t)time(NULL);
	mm.exit_status = *ex;
	mm.last_success = done ? cur->m.success :
	    have_old ? old->m.success : 0;
	mm.log_size = checked ? cur->m.size : old->m.size;
	mm.violations_total = done ? cur->m.violations : old->m.violations;
	mm.run = done ? run : NULL;
	mm.key = a->key;
	if ((r = sg_monitor_prometheus_write(a->prometheus, &mm)) != 0) {
		fprintf(stderr, "signgate: cannot write %s: %s\n",
		    a->prometheus, sg_strerror(r));
		if (*ex == SG_EXIT_OK)
			*ex = SG_EXIT_LOCAL;
	}
}

int
sg_cli_log_monitor(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct monitor_state old, cur;
	struct sg_monitor_run run;
	struct log_args a;
	int have_old = 0, checked = 0, help = 0, ex;

	memset(&a, 0, sizeof(a));
	if ((ex = parse_args(argc, argv, conf, &a, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "log");
		return SG_EXIT_OK;
	}
	memset(&old, 0, sizeof(old));
	memset(&cur, 0, sizeof(cur));
	memset(&run, 0, sizeof(run));
	ex = monitor_run(conf, &a, &old, &have_old, &cur, &run, &checked);
	ex = sg_cli_flush(ex);
	if (a.prometheus != NULL)
		monitor_prometheus(&a, &old, have_old, &cur, &run, checked,
		    &ex);
	sg_monitor_run_clear(&run);
	sg_monitor_state_clear(&old.m);
	sg_monitor_state_clear(&cur.m);
	return ex;
}
