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
 * State file (text, LF line ends, exactly these lines):
 *
 *     signgate-log-monitor v1
 *     key <verifier key>
 *     size <decimal>
 *     root <base64 of the 32-byte root hash>
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_util.h"

#define VKEY_MAX_LEN (SG_NOTE_NAME_MAX + 1 + 8 + 1 + 44)
#define STATE_MAX 4096
#define STATE_MAGIC "signgate-log-monitor v1"
#define PROOF_JSON_MAX (64 * 1024)

enum {
	OPT_STATE = SG_OPT_CMD,
	OPT_VKEY,
};

struct vkey {
	char text[VKEY_MAX_LEN + 1];
	char name[SG_NOTE_NAME_MAX + 1];
	uint32_t id;
	uint8_t pub[SG_ED25519_PUB];
};

struct monitor_state {
	struct vkey key;
	uint64_t size;
	uint8_t root[SG_HASH_LEN];
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
	int ex;

	memset(&resp, 0, sizeof(resp));
	if (sg_cli_http_request(h, "GET", path, NULL, 0, NULL, 0, &resp) != 0) {
		fprintf(stderr, "signgate: GET %s: %s\n", path,
		    sg_cli_http_error(h));
		ex = SG_EXIT_SERVER;
		goto out;
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
state_line(const char **p, const char *end, const char *name,
    const char **ret, size_t *ret_len)
{
	const char *nl;
	size_t n = strlen(name);

	if ((nl = memchr(*p, '\n', (size_t)(end - *p))) == NULL ||
	    (size_t)(nl - *p) <= n || memcmp(*p, name, n) != 0 ||
	    (*p)[n] != ' ')
		return SG_ERR_INVALID;
	*ret = *p + n + 1;
	*ret_len = (size_t)(nl - *ret);
	*p = nl + 1;
	return 0;
}

static int
state_parse(const char *text, size_t len, struct monitor_state *ret)
{
	struct monitor_state s;
	const char *p = text, *end = text + len, *v;
	char num[24];
	uint8_t *root = NULL;
	size_t n, rlen = 0;
	int r = SG_ERR_INVALID;

	memset(&s, 0, sizeof(s));
	n = strlen(STATE_MAGIC);
	if (len < n + 1 || memcmp(p, STATE_MAGIC "\n", n + 1) != 0)
		goto out;
	p += n + 1;
	if (state_line(&p, end, "key", &v, &n) != 0 ||
	    vkey_set(&s.key, v, n) != 0)
		goto out;
	if (state_line(&p, end, "size", &v, &n) != 0 || n >= sizeof(num))
		goto out;
	memcpy(num, v, n);
	num[n] = '\0';
	if (sg_parse_u64(num, 0, (uint64_t)INT64_MAX, &s.size) != 0)
		goto out;
	if (state_line(&p, end, "root", &v, &n) != 0 ||
	    sg_b64_decode(v, n, &root, &rlen) != 0 || rlen != SG_HASH_LEN)
		goto out;
	memcpy(s.root, root, SG_HASH_LEN);
	if (p != end)
		goto out;
	*ret = s;
	r = 0;
out:
	free(root);
	return r;
}

static int
state_write(const char *path, const struct monitor_state *s)
{
	char *root = NULL, *text = NULL;
	int n, r = SG_ERR_NOMEM;

	if ((root = sg_b64_encode(s->root, SG_HASH_LEN)) == NULL)
		goto out;
	if ((n = asprintf(&text, "%s\nkey %s\nsize %llu\nroot %s\n",
	    STATE_MAGIC, s->key.text, (unsigned long long)s->size,
	    root)) < 0) {
		text = NULL;
		goto out;
	}
	r = sg_write_file(path, text, (size_t)n, 0644);
out:
	free(text);
	free(root);
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
 * Fetches and verifies the proof that (old_size, old_root) is a prefix of
 * (cp->size, cp->root).  A proof that does not verify is a FORK: the
 * server signed two trees that cannot both be views of one log.
 */
static int
check_consistency(struct sg_cli_http *h, const struct monitor_state *old,
    const struct sg_checkpoint *cp)
{
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	struct sg_cli_http_resp resp;
	json_t *root = NULL, *arr, *hv;
	uint8_t *dec = NULL;
	uint64_t o = 0, nw = 0;
	size_t i, n = 0, dlen = 0;
	char path[128];
	int ex;

	memset(&resp, 0, sizeof(resp));
	snprintf(path, sizeof(path), "/v1/log/proof/consistency?old=%llu&"
	    "new=%llu", (unsigned long long)old->size,
	    (unsigned long long)cp->size);
	if ((ex = get_text(h, path, PROOF_JSON_MAX, &resp)) != 0)
		goto out;
	ex = SG_EXIT_SERVER;
	root = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, NULL);
	arr = json_object_get(root, "hashes");
	if (!json_is_object(root) || json_u64(root, "old", &o) != 0 ||
	    json_u64(root, "new", &nw) != 0 || !json_is_array(arr) ||
	    json_array_size(arr) > SG_MERKLE_MAX_PROOF) {
		fprintf(stderr, "signgate: GET %s: malformed proof\n", path);
		goto out;
	}
	if (o != old->size || nw != cp->size) {
		fprintf(stderr, "signgate: GET %s: the proof is for %llu to "
		    "%llu\n", path, (unsigned long long)o,
		    (unsigned long long)nw);
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
	if (sg_merkle_verify_consistency(old->size, cp->size, old->root,
	    cp->root, (const uint8_t (*)[SG_HASH_LEN])hashes, n) != 0) {
		ex = alarm_msg("FORK", "the log at size %llu is not an "
		    "extension of the log this monitor saw at size %llu",
		    (unsigned long long)cp->size,
		    (unsigned long long)old->size);
		goto out;
	}
	ex = 0;
out:
	free(dec);
	json_decref(root);
	sg_cli_http_resp_clear(&resp);
	return ex;
}

/* --- commands --- */

struct log_args {
	const char *state;
	const char *vkey;
};

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
		{ NULL, 0, NULL, 0 },
	};
	const struct sg_cli_cmdline cl = { "log",
	    monitor ? own_monitor : NULL, NULL, log_option, ret };
	int ex;

	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, ret_help)) != 0)
		return ex;
	if (optind != argc) {
		fprintf(stderr, "signgate: log %s takes no arguments\n",
		    argv[0]);
		return SG_EXIT_USAGE;
	}
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
	if ((r = sg_read_file(path, STATE_MAX, &text, &len)) != 0) {
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

	if (cp->size < old->size)
		return alarm_msg("ROLLBACK", "the log now has %llu entries, "
		    "but this monitor saw %llu", (unsigned long long)cp->size,
		    (unsigned long long)old->size);
	if (cp->size == old->size) {
		if (memcmp(cp->root, old->root, SG_HASH_LEN) != 0)
			return alarm_msg("FORK", "two different roots for the "
			    "log at size %llu", (unsigned long long)cp->size);
		return 0;
	}
	if (old->size > 0)
		return check_consistency(h, old, cp);
	/* Every log extends the empty one, whose root is fixed; a state
	 * claiming another root for it was not written by this monitor. */
	sg_sha256("", 0, empty);
	if (memcmp(old->root, empty, SG_HASH_LEN) != 0)
		return alarm_msg("FORK", "the state file's empty log has a "
		    "non-empty root");
	return 0;
}

static void
monitor_print(const struct monitor_state *old, const struct monitor_state *cur,
    int have_old, int given)
{
	char *b64 = sg_b64_encode(cur->root, SG_HASH_LEN);

	printf("key: %s%s\n", cur->key.text, have_old ? "" : given ?
	    " (given)" : " (trusted on first use)");
	if (have_old)
		printf("previous: %llu\n", (unsigned long long)old->size);
	printf("size: %llu\n", (unsigned long long)cur->size);
	printf("root: %s\n", b64 != NULL ? b64 : "?");
	printf("consistent: %s\n", have_old ? "yes" : "first checkpoint");
	free(b64);
}

static int
cmd_monitor(struct sg_cli_http *h, const char *state_path, const char *vkey_arg)
{
	struct monitor_state old, cur;
	struct sg_checkpoint cp;
	struct vkey given;
	int have_old = 0, r, ex;

	memset(&old, 0, sizeof(old));
	memset(&cur, 0, sizeof(cur));
	if (vkey_arg != NULL && vkey_set(&given, vkey_arg,
	    strlen(vkey_arg)) != 0) {
		fprintf(stderr, "signgate: --vkey: not a verifier key "
		    "(<name>+<key id>+<base64>)\n");
		return SG_EXIT_USAGE;
	}
	if ((ex = monitor_load(state_path, &old, &have_old)) != 0 ||
	    (ex = monitor_key(h, state_path, &old, have_old,
	    vkey_arg != NULL ? &given : NULL, &cur.key)) != 0 ||
	    (ex = fetch_checkpoint(h, &cur.key, NULL, &cp)) != 0)
		return ex;
	cur.size = cp.size;
	memcpy(cur.root, cp.root, SG_HASH_LEN);
	if (have_old && (ex = monitor_extends(h, &old, &cp)) != 0)
		return ex;
	if ((r = state_write(state_path, &cur)) != 0) {
		fprintf(stderr, "signgate: cannot write %s: %s\n", state_path,
		    sg_strerror(r));
		return SG_EXIT_LOCAL;
	}
	monitor_print(&old, &cur, have_old, vkey_arg != NULL);
	return SG_EXIT_OK;
}

int
sg_cli_cmd_log(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct log_args la = { NULL, NULL };
	struct sg_cli_http *h = NULL;
	const char *sub;
	int ex, help = 0, monitor;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		sg_cli_usage(argc < 2 ? stderr : stdout, "log");
		return argc < 2 ? SG_EXIT_USAGE : SG_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "mirror") == 0)
		return sg_cli_cmd_mirror(argc - 1, argv + 1, conf);
	if (strcmp(sub, "key") != 0 && strcmp(sub, "checkpoint") != 0 &&
	    strcmp(sub, "monitor") != 0) {
		fprintf(stderr, "signgate: log: no such subcommand: %s (key, "
		    "checkpoint, monitor or mirror)\n", sg_cli_esc(sub));
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
	if ((ex = sg_cli_connect(conf, &h)) != 0)
		return ex;
	if (strcmp(sub, "key") == 0)
		ex = cmd_key(h);
	else if (strcmp(sub, "checkpoint") == 0)
		ex = cmd_checkpoint(h);
	else
		ex = cmd_monitor(h, la.state, la.vkey);
	ex = sg_cli_flush(ex);
	sg_cli_http_free(h);
	return ex;
}
