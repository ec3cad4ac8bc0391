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
 * This file holds the JSON API's side of both (GET /v1/log/...); the
 * monitor's run is src/cli_log_monitor.c, its reading of entries
 * src/cli_monitor.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli_log_int.h"
#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_util.h"

#define PROOF_JSON_MAX (64 * 1024)
/* A server over its rate limit is asked again this often, a second
 * apart (a first run with --from 0 reads the whole log). */
#define RATE_RETRIES 30

/* FORK, ROLLBACK and KEY CHANGED are meant to be noticed in a cron mail. */
int
sg_log_alarm(const char *what, const char *fmt, ...)
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

int
sg_log_vkey_set(struct sg_log_vkey *k, const char *s, size_t len)
{
	struct sg_log_vkey t;

	memset(&t, 0, sizeof(t));
	if (len == 0 || len > SG_MONITOR_VKEY_MAX || memchr(s, '\0', len) != NULL)
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

int
sg_log_api_vkey(struct sg_cli_http *h, struct sg_log_vkey *ret)
{
	struct sg_cli_http_resp resp;
	size_t len;
	int ex;

	memset(&resp, 0, sizeof(resp));
	if ((ex = get_text(h, "/v1/log/key", SG_MONITOR_VKEY_MAX + 1, &resp)) != 0)
		return ex;
	len = resp.len;
	if (len > 0 && resp.body[len - 1] == '\n')
		len--;
	if (sg_log_vkey_set(ret, resp.body, len) != 0) {
		fprintf(stderr, "signgate: GET /v1/log/key: not a verifier "
		    "key\n");
		ex = SG_EXIT_SERVER;
	}
	sg_cli_http_resp_clear(&resp);
	return ex;
}

/* The note's text must be a checkpoint and its signature lines well
 * formed; the caller decides whether a signature must verify. */
int
sg_log_api_checkpoint(struct sg_cli_http *h, const struct sg_log_vkey *k,
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
			ex = sg_log_alarm("BAD CHECKPOINT", "the checkpoint's "
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
		ex = sg_log_alarm("BAD CHECKPOINT", "origin %s is not the pinned "
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
int
sg_log_api_consistency(struct sg_cli_http *h, uint64_t old_size,
    const uint8_t old_root[SG_HASH_LEN], const struct sg_checkpoint *cp)
{
	uint8_t hashes[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	size_t n = 0;
	char path[128];
	int ex;

	snprintf(path, sizeof(path), "/v1/log/proof/consistency?old=%llu&"
	    "new=%llu", (unsigned long long)old_size,
	    (unsigned long long)cp->size);
	if ((ex = fetch_proof(h, path, "old", old_size, "new", cp->size,
	    hashes, &n)) != 0)
		return ex;
	if (sg_merkle_verify_consistency(old_size, cp->size, old_root,
	    cp->root, (const uint8_t (*)[SG_HASH_LEN])hashes, n) != 0)
		return sg_log_alarm("FORK", "the log at size %llu is not an "
		    "extension of the log this monitor saw at size %llu",
		    (unsigned long long)cp->size,
		    (unsigned long long)old_size);
	return 0;
}

/* --- entries --- */

/*
 * An sg_monitor_get_fn over the JSON API: the entry's bytes, and its
 * inclusion proof under the verified checkpoint.  An entry the proof does
 * not place there is an alarm: the server serves what it did not sign.
 */
int
sg_log_api_entry(void *ctx, uint64_t index, char **ret, size_t *ret_len)
{
	const struct sg_log_api_src *src = ctx;
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
		ex = sg_log_alarm("BAD ENTRY", "entry %llu as served is not the "
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

static int
cmd_key(struct sg_cli_http *h)
{
	struct sg_log_vkey k;
	int ex;

	if ((ex = sg_log_api_vkey(h, &k)) != 0)
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
	if ((ex = sg_log_api_checkpoint(h, NULL, &note, &cp)) != 0)
		return ex;
	print_note(note.body, note.len);
	sg_cli_http_resp_clear(&note);
	return 0;
}

static int
parse_args(int argc, char **argv, struct sg_cli_conf *conf, int *ret_help)
{
	const struct sg_cli_cmdline cl = { "log", NULL, NULL, NULL, NULL };
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

int
sg_cli_cmd_log(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct sg_cli_http *h = NULL;
	const char *sub;
	int ex, help = 0;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		sg_cli_usage(argc < 2 ? stderr : stdout, "log");
		return argc < 2 ? SG_EXIT_USAGE : SG_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "monitor") == 0)
		return sg_cli_log_monitor(argc - 1, argv + 1, conf);
	if (strcmp(sub, "mirror") == 0)
		return sg_cli_cmd_mirror(argc - 1, argv + 1, conf);
	if (strcmp(sub, "key") != 0 && strcmp(sub, "checkpoint") != 0) {
		fprintf(stderr, "signgate: log: no such subcommand: %s (key, "
		    "checkpoint, monitor or mirror)\n", sg_cli_esc(sub));
		return SG_EXIT_USAGE;
	}
	if ((ex = parse_args(argc - 1, argv + 1, conf, &help)) != 0)
		return ex;
	if (help) {
		sg_cli_usage(stdout, "log");
		return SG_EXIT_OK;
	}
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
