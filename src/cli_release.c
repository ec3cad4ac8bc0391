/*
 * `signgate release create`: many files, one approval.
 *
 * The files are hashed here (SHA-256) and named by their base names; the
 * artifact lines (sg_manifest.h) and the manifest's tree are computed here
 * too, before anything is sent, so that the answer can be checked: the
 * statement the server wrote, which is what officers will sign, must name
 * the manifest root and count of OUR lines.  A server that would have the
 * officers approve anything else is refused (the release is cancelled, as
 * far as the server lets us, and nothing is ever written for it).
 *
 * Then the command waits for the release to be signed (long-polls, with
 * "signed k of n" on stderr as the count grows), pages through its
 * artifacts and checks each signature exactly as `sign` does (key from
 * /v1/keys, SPKI, algorithm, the signature over THIS file's digest, the
 * CMS), and that the artifact's line is the file's, before it writes
 * FILE.sig (raw) or FILE.p7s (cms) and its proof next to it.
 *
 * The pure pieces (names, lines, the body, the manifest root, the
 * statement and manifest cross-checks) are exported for the tests and for
 * `show --manifest` and `approve`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_text.h"
#include "sg_util.h"

#define WAIT_MAX (7 * 24 * 3600)
#define DEFAULT_WAIT 3600
#define POLL_FAILURES_MAX 10
/* Artifacts per page: each carries two proof bundles. */
#define PAGE_LIMIT 50
#define PAGES_MAX (SG_RELEASE_MAX / PAGE_LIMIT + 2)

enum {
	OPT_KEY = SG_OPT_CMD,
	OPT_FORMAT,
	OPT_NAME,
	OPT_VERSION,
	OPT_WAIT,
	OPT_IDEM,
};

int
sg_cli_release_names(struct sg_cli_release_file *f, size_t n, char *err,
    size_t errlen)
{
	const char *slash;
	size_t i, j;

	if (n == 0 || n > SG_RELEASE_MAX)
		return sg_err_set(err, errlen, SG_ERR_INVALID, "a release "
		    "holds 1 to %d files", SG_RELEASE_MAX);
	for (i = 0; i < n; i++) {
		slash = strrchr(f[i].path, '/');
		f[i].name = slash != NULL ? slash + 1 : f[i].path;
		if (!sg_artifact_word_valid(f[i].name, strlen(f[i].name),
		    SG_ARTIFACT_LINE_NAME_MAX))
			return sg_err_set(err, errlen, SG_ERR_INVALID, "%s: an "
			    "artifact name is 1 to %d printable ASCII "
			    "characters without spaces", sg_cli_esc(f[i].path),
			    SG_ARTIFACT_LINE_NAME_MAX);
	}
	/* Quadratic, but over names only and bounded by SG_RELEASE_MAX;
	 * a sorted copy would lose which two paths clash. */
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (strcmp(f[i].name, f[j].name) == 0)
				return sg_err_set(err, errlen, SG_ERR_INVALID,
				    "%s and %s have the same name %s: names "
				    "in a release are unique",
				    sg_cli_esc(f[i].path),
				    sg_cli_esc(f[j].path),
				    sg_cli_esc(f[i].name));
	return 0;
}

int
sg_cli_release_lines(struct sg_cli_release_file *f, size_t n,
    enum sg_format format, char *err, size_t errlen)
{
	struct sg_artifact_line al;
	size_t i;

	for (i = 0; i < n; i++) {
		memset(&al, 0, sizeof(al));
		al.digest_alg = SG_DIGEST_SHA256;
		memcpy(al.digest, f[i].digest, sizeof(f[i].digest));
		al.digest_len = sizeof(f[i].digest);
		al.format = format;
		snprintf(al.name, sizeof(al.name), "%s", f[i].name);
		if (sg_artifact_line_build(&al, f[i].line, sizeof(f[i].line),
		    &f[i].line_len) != 0)
			return sg_err_set(err, errlen, SG_ERR_INVALID, "%s: "
			    "cannot make its artifact line",
			    sg_cli_esc(f[i].path));
	}
	return 0;
}

int
sg_cli_release_body(const char *key, enum sg_format format,
    const char *name, const char *version,
    const struct sg_cli_release_file *f, size_t n, char **ret)
{
	json_t *body = NULL, *arts, *a;
	char hex[SG_SHA256_HEX_SIZE];
	size_t i;
	int r = SG_ERR_NOMEM;

	*ret = NULL;
	if ((body = json_pack("{s:s, s:s, s:[]}", "key", key, "format",
	    sg_format_str(format), "artifacts")) == NULL)
		goto out;
	if (name != NULL && json_object_set_new(body, "release",
	    version != NULL ? json_pack("{s:s, s:s}", "name", name, "version",
	    version) : json_pack("{s:s}", "name", name)) != 0)
		goto out;
	arts = json_object_get(body, "artifacts");
	for (i = 0; i < n; i++) {
		sg_hex_encode(f[i].digest, sizeof(f[i].digest), hex);
		a = json_pack("{s:s, s:{s:s, s:s}}", "name", f[i].name,
		    "digest", "algorithm", "sha256", "value", hex);
		if (json_array_append_new(arts, a) != 0)
			goto out;
	}
	if ((*ret = json_dumps(body, JSON_COMPACT)) != NULL)
		r = 0;
out:
	json_decref(body);
	return r;
}

int
sg_cli_manifest_root(const char *const *lines, const size_t *lens,
    size_t n, char hex[SG_SHA256_HEX_SIZE])
{
	struct sg_manifest_tree t;
	uint8_t root[SG_HASH_LEN];
	int r;

	memset(&t, 0, sizeof(t));
	if (n == 0 || n > SG_RELEASE_MAX)
		return SG_ERR_INVALID;
	if ((r = sg_manifest_tree_init(&t, lines, lens, n)) != 0)
		return r;
	r = sg_manifest_tree_root(&t, root);
	sg_manifest_tree_free(&t);
	if (r != 0)
		return r;
	sg_hex_encode(root, sizeof(root), hex);
	return 0;
}

int
sg_cli_release_statement_check(const char *stmt, const char *id,
    const char *key, enum sg_format format,
    const char root[SG_SHA256_HEX_SIZE], uint64_t count,
    struct sg_statement *ret, char *err, size_t errlen)
{
	struct sg_statement st;

	memset(&st, 0, sizeof(st));
	if (stmt == NULL || sg_statement_parse(stmt, strlen(stmt), &st) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement "
		    "does not parse");
	if (st.kind != SG_KIND_RELEASE)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement "
		    "is for a %s, not a release", sg_kind_str(st.kind));
	if (strcmp(st.request, id) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement "
		    "is for release %s, not %s", st.request, sg_cli_esc(id));
	if (strcmp(st.key, key) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement "
		    "names key %s, not %s", st.key, key);
	if (strcmp(st.format, sg_format_str(format)) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement "
		    "names format %s, not %s", st.format,
		    sg_format_str(format));
	if (st.count != count || strcmp(st.manifest_root, root) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the statement "
		    "names manifest sha256:%s of %llu artifacts, the files "
		    "here make sha256:%s of %llu", st.manifest_root,
		    (unsigned long long)st.count, root,
		    (unsigned long long)count);
	if (ret != NULL)
		*ret = st;
	return 0;
}

/* Each line of a manifest text: ends in LF, parses, no name twice. */
static int
manifest_split(char *copy, size_t len, char **lines, size_t *lens,
    size_t *ret_n, char *err, size_t errlen)
{
	struct sg_artifact_line al;
	char *p = copy, *end = copy + len, *nl;
	size_t n = 0, i;

	while (p < end) {
		if (n == SG_RELEASE_MAX)
			return sg_err_set(err, errlen, SG_ERR_VERIFY, "the "
			    "manifest has more than %d lines", SG_RELEASE_MAX);
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return sg_err_set(err, errlen, SG_ERR_VERIFY, "the "
			    "manifest's line %zu does not end in LF", n + 1);
		*nl = '\0';
		lines[n] = p;
		lens[n] = (size_t)(nl - p);
		if (sg_artifact_line_parse(p, lens[n], &al) != 0)
			return sg_err_set(err, errlen, SG_ERR_VERIFY, "the "
			    "manifest's line %zu is not an artifact line: %s",
			    n + 1, sg_cli_esc(p));
		n++;
		p = nl + 1;
	}
	if (n == 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the manifest "
		    "is empty");
	/* Names are unique: compare the name fields (third word). */
	for (i = 0; i < n; i++) {
		const char *a = strchr(strchr(lines[i], ' ') + 1, ' ') + 1;
		size_t j, an = strcspn(a, " ");

		for (j = i + 1; j < n; j++) {
			const char *b = strchr(strchr(lines[j], ' ') + 1,
			    ' ') + 1;
			if (strcspn(b, " ") == an && memcmp(a, b, an) == 0)
				return sg_err_set(err, errlen, SG_ERR_VERIFY,
				    "the manifest's lines %zu and %zu have "
				    "the same name", i + 1, j + 1);
		}
	}
	*ret_n = n;
	return 0;
}

int
sg_cli_manifest_check(const char *text, size_t len,
    const struct sg_statement *st, char ***ret_lines, size_t *ret_n,
    char *err, size_t errlen)
{
	char **lines = NULL, *copy = NULL, root[SG_SHA256_HEX_SIZE];
	size_t *lens = NULL, n = 0, i;
	enum sg_format f;
	int r = SG_ERR_NOMEM;

	if (st->kind != SG_KIND_RELEASE ||
	    sg_format_parse(st->format, &f) != 0)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "not a release "
		    "statement");
	if (len > (size_t)SG_RELEASE_MAX * (SG_ARTIFACT_LINE_MAX + 1) ||
	    memchr(text, '\0', len) != NULL)
		return sg_err_set(err, errlen, SG_ERR_VERIFY, "the manifest "
		    "is not text of at most %d lines", SG_RELEASE_MAX);
	/* One block: the pointers, then the text they point into. */
	if ((lines = malloc(SG_RELEASE_MAX * sizeof(*lines) + len + 1)) ==
	    NULL || (lens = calloc(SG_RELEASE_MAX, sizeof(*lens))) == NULL)
		goto out;
	copy = (char *)(lines + SG_RELEASE_MAX);
	memcpy(copy, text, len);
	copy[len] = '\0';
	if ((r = manifest_split(copy, len, lines, lens, &n, err,
	    errlen)) != 0)
		goto out;
	r = SG_ERR_VERIFY;
	for (i = 0; i < n; i++) {
		struct sg_artifact_line al;

		if (sg_artifact_line_parse(lines[i], lens[i], &al) != 0 ||
		    al.format != f) {
			sg_err_set(err, errlen, r, "the manifest's line %zu is "
			    "not in the statement's format %s", i + 1,
			    st->format);
			goto out;
		}
	}
	if (sg_cli_manifest_root((const char *const *)lines, lens, n,
	    root) != 0) {
		sg_err_set(err, errlen, r, "cannot compute the manifest root");
		goto out;
	}
	if (n != st->count || strcmp(root, st->manifest_root) != 0) {
		sg_err_set(err, errlen, r, "the manifest served is sha256:%s "
		    "of %zu artifacts, the statement names sha256:%s of %llu",
		    root, n, st->manifest_root,
		    (unsigned long long)st->count);
		goto out;
	}
	if (ret_lines != NULL) {
		*ret_lines = lines;
		lines = NULL;
	}
	if (ret_n != NULL)
		*ret_n = n;
	r = 0;
out:
	free(lines);
	free(lens);
	return r;
}

/* ---- the command ---- */

struct release_args {
	const char *key;
	const char *name;
	const char *version;
	const char *idem;
	enum sg_format format;
	uint64_t wait;
	int help;
};

static int
release_option(void *arg, int opt, const char *v)
{
	struct release_args *a = arg;

	switch (opt) {
	case OPT_KEY:
		a->key = v;
		return 0;
	case OPT_NAME:
		a->name = v;
		return 0;
	case OPT_VERSION:
		a->version = v;
		return 0;
	case OPT_FORMAT:
		if (sg_format_parse(v, &a->format) == 0)
			return 0;
		fprintf(stderr, "signgate: --format: raw or cms\n");
		return SG_EXIT_USAGE;
	case OPT_WAIT:
		if (sg_parse_u64(v, 0, WAIT_MAX, &a->wait) == 0)
			return 0;
		fprintf(stderr, "signgate: --wait: 0 to %d seconds\n",
		    WAIT_MAX);
		return SG_EXIT_USAGE;
	case OPT_IDEM:
		if (sg_cli_idem_valid(v)) {
			a->idem = v;
			return 0;
		}
		fprintf(stderr, "signgate: --idempotency-key: 1 to %d "
		    "printable ASCII characters, no spaces\n",
		    SG_IDEM_KEY_MAX);
		return SG_EXIT_USAGE;
	}
	return 1;
}

/* --name and --version: the server's rule for artifact values. */
static int
release_label_ok(const char *opt, const char *v)
{
	struct sg_text_fault tf;
	char why[128];

	if (v == NULL)
		return 1;
	if (*v == '\0' || strlen(v) > SG_ARTIFACT_VALUE_MAX) {
		fprintf(stderr, "signgate: %s: 1 to %d bytes\n", opt,
		    SG_ARTIFACT_VALUE_MAX);
		return 0;
	}
	if (sg_text_ok(v, strlen(v), &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		fprintf(stderr, "signgate: %s: %s\n", opt, why);
		return 0;
	}
	return 1;
}

static int
release_parse(int argc, char **argv, struct sg_cli_conf *conf,
    struct release_args *a)
{
	static const struct option own[] = {
		{ "key", required_argument, NULL, OPT_KEY },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "version", required_argument, NULL, OPT_VERSION },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "idempotency-key", required_argument, NULL, OPT_IDEM },
		{ NULL, 0, NULL, 0 },
	};
	const struct sg_cli_cmdline cl = { "release", own, NULL,
	    release_option, a };
	int ex;

	memset(a, 0, sizeof(*a));
	a->format = SG_FORMAT_RAW;
	a->wait = DEFAULT_WAIT;
	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &a->help)) != 0 ||
	    a->help)
		return ex;
	if (a->key == NULL || !sg_name_ok(a->key, SG_NAME_LEN_MAX)) {
		fprintf(stderr, "signgate: release create needs --key NAME\n");
		return SG_EXIT_USAGE;
	}
	if (a->version != NULL && a->name == NULL) {
		fprintf(stderr, "signgate: --version goes with --name\n");
		return SG_EXIT_USAGE;
	}
	if (!release_label_ok("--name", a->name) ||
	    !release_label_ok("--version", a->version))
		return SG_EXIT_USAGE;
	if (argc - optind < 1 || argc - optind > SG_RELEASE_MAX) {
		fprintf(stderr, "signgate: release create needs 1 to %d "
		    "FILEs\n", SG_RELEASE_MAX);
		return SG_EXIT_USAGE;
	}
	return 0;
}

/* What a run works with besides its arguments. */
struct release_job {
	struct sg_cli_release_file *f;
	size_t n;
	char root[SG_SHA256_HEX_SIZE];
	char idem_buf[SG_CLI_IDEM_SIZE];
	const char *idem;
	char *body;
	char id[SG_REQUEST_ID_SIZE];
	uint64_t signed_seen;          /* last "signed k of n" printed */
	char state[SG_REQ_STATE_SIZE + 1];
};

/* Hashes the files, names them, makes the lines, the root and the body:
 * everything before the network.  An exit status. */
static int
release_prepare(const struct release_args *a, char **files,
    struct release_job *j)
{
	const char **lines = NULL;
	size_t *lens = NULL, i, dlen;
	char err[1024];
	int r, ex = SG_EXIT_LOCAL;

	if ((j->f = calloc(j->n, sizeof(*j->f))) == NULL ||
	    (lines = calloc(j->n, sizeof(*lines))) == NULL ||
	    (lens = calloc(j->n, sizeof(*lens))) == NULL)
		goto out;
	for (i = 0; i < j->n; i++)
		j->f[i].path = files[i];
	if (sg_cli_release_names(j->f, j->n, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgate: %s\n", err);
		ex = SG_EXIT_USAGE;
		goto out;
	}
	for (i = 0; i < j->n; i++) {
		if ((r = sg_digest_file(j->f[i].path, SG_DIGEST_SHA256,
		    j->f[i].digest, &dlen)) != 0 || dlen != 32) {
			fprintf(stderr, "signgate: cannot hash %s: %s\n",
			    j->f[i].path, sg_strerror(r));
			goto out;
		}
	}
	if (sg_cli_release_lines(j->f, j->n, a->format, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "signgate: %s\n", err);
		goto out;
	}
	for (i = 0; i < j->n; i++) {
		lines[i] = j->f[i].line;
		lens[i] = j->f[i].line_len;
	}
	if (sg_cli_manifest_root(lines, lens, j->n, j->root) != 0 ||
	    sg_cli_release_body(a->key, a->format, a->name, a->version, j->f,
	    j->n, &j->body) != 0)
		goto out;
	if ((j->idem = a->idem) == NULL) {
		if (sg_cli_idem_random(j->idem_buf) != 0)
			goto out;
		j->idem = j->idem_buf;
	}
	ex = SG_EXIT_OK;
out:
	free(lines);
	free(lens);
	return ex;
}

/* The statement is not what we asked for: say so, and cancel the release
 * so that no officer is asked to approve it. */
static int
release_refuse(struct sg_cli_http *h, const char *id, const char *why)
{
	json_t *ans = NULL;
	char path[128];

	fprintf(stderr, "signgate: refusing release %s: %s\n", sg_cli_esc(id),
	    why);
	if (sg_request_id_ok(id)) {
		snprintf(path, sizeof(path), "/v1/requests/%s/cancel", id);
		if (sg_cli_api(h, "POST", path, "{\"reason\":\"the statement "
		    "does not name the submitted files\"}", NULL, 0, &ans,
		    NULL) == 0)
			fprintf(stderr, "signgate: release %s cancelled\n", id);
		json_decref(ans);
	}
	return SG_EXIT_SERVER;
}

/* Posts the release and checks the answer against what we computed. */
static int
release_submit(struct sg_cli_http *h, const struct release_args *a,
    struct release_job *j, json_t **req)
{
	struct sg_statement st;
	enum sg_kind kind;
	const char *id, *stmt;
	char err[1024];
	int ex;

	if ((ex = sg_cli_post_retry(h, "/v1/releases", j->body, j->idem,
	    req)) != 0)
		return ex;
	id = sg_cli_jstr(*req, "id");
	stmt = sg_cli_jstr(*req, "statement");
	if (!sg_request_id_ok(id))
		return release_refuse(h, "-", "the answer has no valid id");
	if (sg_cli_req_kind(*req, &kind) != 0 || kind != SG_KIND_RELEASE)
		return release_refuse(h, id, "the answer is not a release");
	if (sg_cli_release_statement_check(stmt, id, a->key, a->format,
	    j->root, j->n, &st, err, sizeof(err)) != 0)
		return release_refuse(h, id, err);
	snprintf(j->id, sizeof(j->id), "%s", id);
	printf("release: %s\n", j->id);
	printf("idempotency-key: %s\n", j->idem);
	printf("artifacts: %zu\n", j->n);
	printf("manifest: sha256:%s\n", j->root);
	sg_cli_print_statement(stmt);
	fflush(stdout);
	return SG_EXIT_OK;
}

/* The release's "signed" count, 0 when absent. */
static uint64_t
release_signed(const json_t *req)
{
	json_t *v = json_object_get(json_object_get(req, "release"),
	    "signed");

	return json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) : 0;
}

/* State on stdout when it changes; "signed k of n" on stderr when k
 * grows. */
static void
release_report(const json_t *req, struct release_job *j)
{
	const char *state = sg_cli_jstr(req, "state");
	uint64_t k = release_signed(req);
	char missing[1024];

	if (state == NULL)
		state = "?";
	if (strcmp(state, j->state) != 0) {
		printf("state: %s\n", sg_cli_esc(state));
		snprintf(j->state, sizeof(j->state), "%s", state);
		if (sg_cli_req_state(req) == SG_REQ_PENDING) {
			sg_cli_missing(req, missing, sizeof(missing));
			printf("missing: %s\n", missing);
		}
		fflush(stdout);
	}
	if (k > j->signed_seen) {
		fprintf(stderr, "signed %llu of %zu\n", (unsigned long long)k,
		    j->n);
		j->signed_seen = k;
	}
}

/* 1 while the release may still be signed. */
static int
release_open(const json_t *req)
{
	enum sg_req_state s = sg_cli_req_state(req);

	return s == SG_REQ_PENDING || s == SG_REQ_ACTIVE;
}

/* Long-polls until the release leaves pending and active, or the
 * deadline passes. */
static int
release_wait(struct sg_cli_http *h, struct release_job *j, time_t deadline,
    json_t **req)
{
	char path[160];
	json_t *next;
	int64_t t0;
	time_t left;
	int ex, failures = 0;

	release_report(*req, j);
	while (release_open(*req)) {
		if ((left = deadline - (time_t)(sg_mono_ms() / 1000)) <= 0) {
			fprintf(stderr, "signgate: release %s is still %s; "
			    "giving up waiting\n", j->id, j->state);
			return SG_EXIT_TIMEOUT;
		}
		if (left > SG_CLI_POLL_WAIT)
			left = SG_CLI_POLL_WAIT;
		snprintf(path, sizeof(path), "/v1/requests/%s?wait=%lld",
		    j->id, (long long)left);
		t0 = sg_mono_ms();
		next = NULL;
		ex = sg_cli_api(h, "GET", path, NULL, NULL, (long)left, &next,
		    NULL);
		if (ex == SG_EXIT_SERVER && ++failures <= POLL_FAILURES_MAX) {
			sleep(2);
			continue;
		}
		if (ex != SG_EXIT_OK)
			return ex;
		failures = 0;
		if ((ex = sg_cli_expect_request(next, j->id)) != 0) {
			json_decref(next);
			return ex;
		}
		json_decref(*req);
		*req = next;
		release_report(*req, j);
		/* A poll that returns at once (an active release signing
		 * its artifacts) must not hammer the server. */
		if (release_open(*req) && sg_mono_ms() - t0 < 1000)
			sleep(1);
	}
	return SG_EXIT_OK;
}

/* One listed artifact: it is ours, its signature verifies over our
 * file's digest, and then it is written with its proof. */
static int
release_artifact(const json_t *art, const json_t *key,
    const struct release_args *a, struct release_job *j, uint8_t *done)
{
	const json_t *pos = json_object_get(art, "position");
	const json_t *sigobj = json_object_get(art, "signature");
	const struct sg_cli_release_file *f;
	uint8_t *sig = NULL, *cms = NULL;
	size_t sig_len = 0, cms_len = 0, p;
	char err[1024], *out = NULL;
	int ex = SG_EXIT_VERIFY;

	if (!json_is_integer(pos) || json_integer_value(pos) < 0 ||
	    (uint64_t)json_integer_value(pos) >= j->n) {
		fprintf(stderr, "signgate: the server listed an artifact "
		    "without a valid position\n");
		return SG_EXIT_SERVER;
	}
	p = (size_t)json_integer_value(pos);
	f = &j->f[p];
	if (done[p]) {
		fprintf(stderr, "signgate: the server listed position %zu "
		    "twice\n", p);
		return SG_EXIT_SERVER;
	}
	if (sg_cli_jstr(art, "line") == NULL ||
	    strcmp(sg_cli_jstr(art, "line"), f->line) != 0) {
		fprintf(stderr, "signgate: artifact %zu: the server's line is "
		    "not %s's (%s); nothing written for it\n", p, f->path,
		    sg_cli_esc(sg_cli_jstr(art, "line")));
		return SG_EXIT_VERIFY;
	}
	if (!json_is_object(sigobj)) {
		fprintf(stderr, "signgate: artifact %zu (%s) is not signed\n",
		    p, f->path);
		return SG_EXIT_SERVER;
	}
	if (sg_cli_check_signature(sigobj, key, a->key, a->format,
	    SG_DIGEST_SHA256, f->digest, sizeof(f->digest), &sig, &sig_len,
	    &cms, &cms_len, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgate: %s: %s; nothing written for it\n",
		    f->path, err);
		goto out;
	}
	ex = SG_EXIT_LOCAL;
	if (asprintf(&out, "%s.%s", f->path,
	    a->format == SG_FORMAT_CMS ? "p7s" : "sig") < 0) {
		out = NULL;
		goto out;
	}
	if (a->format == SG_FORMAT_CMS)
		ex = sg_cli_write_out(out, cms, cms_len);
	else
		ex = sg_cli_write_out(out, sig, sig_len);
	if (ex != 0)
		goto out;
	printf("signature: %s\n", out);
	if ((ex = sg_cli_write_proof(sigobj, out)) != 0)
		goto out;
	done[p] = 1;
out:
	free(out);
	free(sig);
	free(cms);
	return ex;
}

/* One page of GET /v1/releases/ID/artifacts; *after becomes its "next",
 * or -1 at the end. */
static int
release_page(struct sg_cli_http *h, const json_t *key,
    const struct release_args *a, struct release_job *j, uint8_t *done,
    long long *after)
{
	json_t *page = NULL, *arr, *art, *next;
	char path[192];
	size_t i;
	int ex;

	if (*after < 0)
		snprintf(path, sizeof(path), "/v1/releases/%s/artifacts?"
		    "limit=%d", j->id, PAGE_LIMIT);
	else
		snprintf(path, sizeof(path), "/v1/releases/%s/artifacts?"
		    "after=%lld&limit=%d", j->id, *after, PAGE_LIMIT);
	if ((ex = sg_cli_api(h, "GET", path, NULL, NULL, 0, &page,
	    NULL)) != 0)
		return ex;
	ex = SG_EXIT_SERVER;
	arr = json_object_get(page, "artifacts");
	next = json_object_get(page, "next");
	if (!json_is_array(arr) || (!json_is_null(next) &&
	    !json_is_integer(next)) || (json_is_integer(next) &&
	    json_integer_value(next) <= *after)) {
		fprintf(stderr, "signgate: %s: malformed page\n", path);
		goto out;
	}
	json_array_foreach(arr, i, art)
		if ((ex = release_artifact(art, key, a, j, done)) != 0)
			goto out;
	*after = json_is_integer(next) ? (long long)json_integer_value(next) :
	    -1;
	ex = SG_EXIT_OK;
out:
	json_decref(page);
	return ex;
}

/* Every artifact of the signed release, checked and written. */
static int
release_fetch(struct sg_cli_http *h, const struct release_args *a,
    struct release_job *j)
{
	json_t *keys = NULL, *key;
	uint8_t *done = NULL;
	long long after = -1;
	size_t pages, i, written = 0;
	int ex;

	if ((ex = sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &keys,
	    NULL)) != 0)
		return ex;
	ex = SG_EXIT_VERIFY;
	if ((key = sg_cli_find_key(keys, a->key)) == NULL) {
		fprintf(stderr, "signgate: key %s is not in /v1/keys: cannot "
		    "check the signatures; nothing written\n", a->key);
		goto out;
	}
	ex = SG_EXIT_LOCAL;
	if ((done = calloc(j->n, 1)) == NULL)
		goto out;
	for (pages = 0; pages < PAGES_MAX; pages++) {
		if ((ex = release_page(h, key, a, j, done, &after)) != 0)
			goto out;
		if (after < 0)
			break;
	}
	for (i = 0; i < j->n; i++)
		written += done[i];
	if (written != j->n) {
		fprintf(stderr, "signgate: the server listed %zu of the %zu "
		    "artifacts\n", written, j->n);
		ex = SG_EXIT_SERVER;
		goto out;
	}
	printf("written: %zu of %zu\n", written, j->n);
	ex = SG_EXIT_OK;
out:
	free(done);
	json_decref(keys);
	return ex;
}

static int
release_outcome(struct sg_cli_http *h, const struct release_args *a,
    struct release_job *j, const json_t *req)
{
	enum sg_req_state s = sg_cli_req_state(req);

	if (s == SG_REQ_SIGNED)
		return release_fetch(h, a, j);
	if (sg_req_state_final(s)) {
		if (sg_cli_jstr(req, "error") != NULL)
			printf("error: %s\n",
			    sg_cli_esc(sg_cli_jstr(req, "error")));
		sg_cli_print_cancelled(req);
		fprintf(stderr, "signgate: release %s was %s; no signatures "
		    "written\n", j->id, sg_req_state_str(s));
		return SG_EXIT_NOT_SIGNED;
	}
	fprintf(stderr, "signgate: release %s is in unknown state %s\n", j->id,
	    sg_cli_esc(sg_cli_jstr(req, "state")));
	return SG_EXIT_SERVER;
}

static int
release_create(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct release_args a;
	struct release_job j;
	struct sg_cli_http *h = NULL;
	json_t *req = NULL;
	int ex;

	memset(&j, 0, sizeof(j));
	if ((ex = release_parse(argc, argv, conf, &a)) != 0)
		return ex;
	if (a.help) {
		sg_cli_usage(stdout, "release");
		return SG_EXIT_OK;
	}
	j.n = (size_t)(argc - optind);
	if ((ex = sg_cli_conf_resolve(conf)) != 0 ||
	    (ex = release_prepare(&a, argv + optind, &j)) != 0 ||
	    (ex = sg_cli_connect(conf, &h)) != 0 ||
	    (ex = release_submit(h, &a, &j, &req)) != 0 ||
	    (ex = release_wait(h, &j, (time_t)(sg_mono_ms() / 1000) +
	    (time_t)a.wait, &req)) != 0)
		goto out;
	ex = release_outcome(h, &a, &j, req);
out:
	ex = sg_cli_flush(ex);
	free(j.f);
	free(j.body);
	json_decref(req);
	sg_cli_http_free(h);
	return ex;
}

int
sg_cli_cmd_release(int argc, char **argv, struct sg_cli_conf *conf)
{
	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		sg_cli_usage(argc < 2 ? stderr : stdout, "release");
		return argc < 2 ? SG_EXIT_USAGE : SG_EXIT_OK;
	}
	if (strcmp(argv[1], "create") != 0) {
		fprintf(stderr, "signgate: release: no such subcommand: %s "
		    "(create)\n", sg_cli_esc(argv[1]));
		return SG_EXIT_USAGE;
	}
	return release_create(argc - 1, argv + 1, conf);
}

int
sg_cli_fetch_manifest(struct sg_cli_http *h, const struct sg_statement *st,
    char ***ret_lines, size_t *ret_n)
{
	char path[128], *text = NULL, err[1024];
	size_t len = 0;
	int ex;

	snprintf(path, sizeof(path), "/v1/releases/%s/manifest",
	    st->request);
	if ((ex = sg_cli_api_text(h, path, &text, &len)) != 0)
		return ex;
	if (sg_cli_manifest_check(text, len, st, ret_lines, ret_n, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "signgate: release %s: %s\n", st->request,
		    err);
		ex = SG_EXIT_LOCAL;
	}
	free(text);
	return ex;
}
