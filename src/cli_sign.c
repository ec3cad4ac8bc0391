/*
 * `signgate sign`: the conveyor's command.
 *
 * The file is hashed here and only the digest travels.  The request is
 * POSTed with an Idempotency-Key (random unless given), so that retrying
 * after a lost connection or a 5xx returns the original request instead of
 * creating a second one; the same key also lets a later run resume a
 * request that was left pending.  While approvals are missing the command
 * long-polls the request, bounded by --wait.
 *
 * Nothing is written until the returned signature has been checked by
 * sg_cli_check_signature(): right key, right SPKI, right algorithm, and a
 * valid signature over the LOCAL digest (and a matching CMS for cms).  A
 * server that signs the wrong thing, or a wrong key, yields exit 5 and no
 * file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_manifest.h"
#include "sg_text.h"
#include "sg_util.h"

#define POST_RETRIES 3
#define POLL_FAILURES_MAX 10
#define WAIT_MAX (7 * 24 * 3600)
#define DEFAULT_WAIT 3600

enum {
	OPT_KEY = SG_OPT_CMD,
	OPT_DIGEST,
	OPT_FORMAT,
	OPT_OUT,
	OPT_NAME,
	OPT_VERSION,
	OPT_META,
	OPT_IDEM,
	OPT_WAIT,
	OPT_NO_WAIT,
	OPT_GRANT,
};

int
sg_cli_idem_valid(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > SG_IDEM_KEY_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* --meta K=V, up to SG_ARTIFACT_FIELDS_MAX of them. */
static int
add_meta(struct sg_cli_sign_args *a, const char *kv)
{
	if (a->nmeta == SG_ARTIFACT_FIELDS_MAX) {
		fprintf(stderr, "signgate: at most %d artifact fields\n",
		    SG_ARTIFACT_FIELDS_MAX);
		return SG_EXIT_USAGE;
	}
	if (strchr(kv, '=') == NULL) {
		fprintf(stderr, "signgate: --meta: K=V\n");
		return SG_EXIT_USAGE;
	}
	a->meta[a->nmeta++] = kv;
	return 0;
}

/* The options whose value must be checked. */
static int
sign_checked_option(struct sg_cli_sign_args *a, int opt, const char *v)
{
	switch (opt) {
	case OPT_DIGEST:
		if ((a->digest = sg_digest_from_name(v)) != SG_DIGEST_NONE)
			return 0;
		fprintf(stderr, "signgate: --digest: sha256, sha384 or "
		    "sha512\n");
		return SG_EXIT_USAGE;
	case OPT_FORMAT:
		a->format_given = 1;
		if (sg_format_parse(v, &a->format) == 0)
			return 0;
		fprintf(stderr, "signgate: --format: raw or cms\n");
		return SG_EXIT_USAGE;
	case OPT_IDEM:
		if (!sg_cli_idem_valid(v)) {
			fprintf(stderr, "signgate: --idempotency-key: 1 to %d "
			    "printable ASCII characters, no spaces\n",
			    SG_IDEM_KEY_MAX);
			return SG_EXIT_USAGE;
		}
		a->idempotency_key = v;
		return 0;
	case OPT_WAIT:
		if (sg_parse_u64(v, 0, WAIT_MAX, &a->wait) == 0)
			return 0;
		fprintf(stderr, "signgate: --wait: 0 to %d seconds\n",
		    WAIT_MAX);
		return SG_EXIT_USAGE;
	case OPT_META:
		return add_meta(a, v);
	}
	return 1;
}

static int
sign_option(void *arg, int opt, const char *v)
{
	struct sg_cli_sign_args *a = arg;

	switch (opt) {
	case OPT_KEY:
		a->key = v;
		return 0;
	case OPT_OUT:
		a->out = v;
		return 0;
	case OPT_NAME:
		a->artifact_name = v;
		return 0;
	case OPT_VERSION:
		a->artifact_version = v;
		return 0;
	case OPT_NO_WAIT:
		a->no_wait = 1;
		return 0;
	case OPT_GRANT:
		if (!sg_request_id_ok(v)) {
			fprintf(stderr, "signgate: --grant: a grant ID (%d "
			    "lower-case hex characters)\n", SG_REQUEST_ID_LEN);
			return SG_EXIT_USAGE;
		}
		a->grant = v;
		return 0;
	}
	return sign_checked_option(a, opt, v);
}

int
sg_cli_sign_parse(int argc, char **argv, struct sg_cli_conf *conf,
    struct sg_cli_sign_args *ret)
{
	static const struct option own[] = {
		{ "key", required_argument, NULL, OPT_KEY },
		{ "digest", required_argument, NULL, OPT_DIGEST },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "out", required_argument, NULL, OPT_OUT },
		{ "artifact-name", required_argument, NULL, OPT_NAME },
		{ "artifact-version", required_argument, NULL, OPT_VERSION },
		{ "meta", required_argument, NULL, OPT_META },
		{ "idempotency-key", required_argument, NULL, OPT_IDEM },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{ "grant", required_argument, NULL, OPT_GRANT },
		{ NULL, 0, NULL, 0 },
	};
	struct sg_cli_sign_args a;
	const struct sg_cli_cmdline cl = { "sign", own, NULL, sign_option,
	    &a };
	int ex;

	memset(&a, 0, sizeof(a));
	a.digest = SG_DIGEST_SHA256;
	a.format = SG_FORMAT_RAW;
	a.wait = DEFAULT_WAIT;
	if ((ex = sg_cli_getopt(argc, argv, &cl, conf, &a.help)) != 0)
		return ex;
	if (!a.help) {
		/* Under a grant the key is the grant's. */
		if ((a.key == NULL && a.grant == NULL) || (a.key != NULL &&
		    !sg_name_ok(a.key, SG_NAME_LEN_MAX))) {
			fprintf(stderr, "signgate: sign needs --key NAME (or "
			    "--grant ID)\n");
			return SG_EXIT_USAGE;
		}
		if (argc - optind != 1) {
			fprintf(stderr, "signgate: sign needs exactly one "
			    "FILE\n");
			return SG_EXIT_USAGE;
		}
		a.file = argv[optind];
	}
	*ret = a;
	return 0;
}

static int
add_field(json_t *obj, const char *k, size_t klen, const char *v,
    char *err, size_t errlen)
{
	char name[SG_ARTIFACT_NAME_MAX + 1], why[128];
	struct sg_text_fault tf;
	json_t *s;

	if (klen == 0 || klen > SG_ARTIFACT_NAME_MAX) {
		snprintf(err, errlen, "artifact field names are 1 to %d "
		    "characters", SG_ARTIFACT_NAME_MAX);
		return SG_ERR_INVALID;
	}
	memcpy(name, k, klen);
	name[klen] = '\0';
	if (!sg_name_ok(name, SG_ARTIFACT_NAME_MAX)) {
		snprintf(err, errlen, "artifact field name %s: only "
		    "[A-Za-z0-9._-]", sg_cli_esc(name));
		return SG_ERR_INVALID;
	}
	if (json_object_get(obj, name) != NULL) {
		snprintf(err, errlen, "artifact field %s given twice", name);
		return SG_ERR_INVALID;
	}
	if (json_object_size(obj) >= SG_ARTIFACT_FIELDS_MAX) {
		snprintf(err, errlen, "at most %d artifact fields",
		    SG_ARTIFACT_FIELDS_MAX);
		return SG_ERR_INVALID;
	}
	/* The server's rule for text officers read (sg_text.h), early. */
	if (*v == '\0' || strlen(v) > SG_ARTIFACT_VALUE_MAX) {
		snprintf(err, errlen, "artifact field %s: 1 to %d bytes",
		    name, SG_ARTIFACT_VALUE_MAX);
		return SG_ERR_INVALID;
	}
	if (sg_text_ok(v, strlen(v), &tf) != 0) {
		sg_text_fault_describe(&tf, why, sizeof(why));
		snprintf(err, errlen, "artifact field %s: %s", name, why);
		return SG_ERR_INVALID;
	}
	if ((s = json_string(v)) == NULL)
		return SG_ERR_NOMEM;
	if (json_object_set_new(obj, name, s) != 0)
		return SG_ERR_NOMEM;
	return 0;
}

int
sg_cli_sign_artifact(const struct sg_cli_sign_args *a, json_t **ret,
    char *err, size_t errlen)
{
	const char *name = a->artifact_name, *slash, *eq;
	json_t *obj;
	size_t i;
	int r;

	if (name == NULL) {
		slash = a->file != NULL ? strrchr(a->file, '/') : NULL;
		name = slash != NULL ? slash + 1 : a->file;
	}
	if (name == NULL || *name == '\0') {
		snprintf(err, errlen, "no artifact name: give "
		    "--artifact-name");
		return SG_ERR_INVALID;
	}
	if ((obj = json_object()) == NULL)
		return SG_ERR_NOMEM;
	if ((r = add_field(obj, "name", 4, name, err, errlen)) != 0)
		goto out;
	if (a->artifact_version != NULL && (r = add_field(obj, "version", 7,
	    a->artifact_version, err, errlen)) != 0)
		goto out;
	for (i = 0; i < a->nmeta; i++) {
		if ((eq = strchr(a->meta[i], '=')) == NULL) {
			r = SG_ERR_INVALID;
			snprintf(err, errlen, "--meta: K=V");
			goto out;
		}
		if ((r = add_field(obj, a->meta[i],
		    (size_t)(eq - a->meta[i]), eq + 1, err, errlen)) != 0)
			goto out;
	}
	*ret = obj;
	obj = NULL;
	r = 0;
out:
	json_decref(obj);
	return r;
}

/* Whole seconds of the monotonic clock, for the --wait deadline. */
static time_t
mono_s(void)
{
	return (time_t)(sg_mono_ms() / 1000);
}

/* The request the server answered with must be the one we asked for. */
static int
same_request(const json_t *req, const struct sg_cli_sign_args *a,
    const char *digest_hex)
{
	const json_t *d = json_object_get(req, "digest");
	const char *v;

	enum sg_format f;

	if (a->grant != NULL && !(json_is_object(json_object_get(req,
	    "grant")) && (v = sg_cli_jstr(json_object_get(req, "grant"),
	    "id")) != NULL && strcmp(v, a->grant) == 0))
		return 0;
	return sg_request_id_ok(sg_cli_jstr(req, "id")) &&
	    (v = sg_cli_jstr(req, "key")) != NULL && strcmp(v, a->key) == 0 &&
	    sg_format_parse(sg_cli_jstr(req, "format"), &f) == 0 &&
	    f == a->format &&
	    (v = sg_cli_jstr(d, "algorithm")) != NULL &&
	    strcmp(v, sg_digest_name(a->digest)) == 0 &&
	    (v = sg_cli_jstr(d, "value")) != NULL &&
	    strcmp(v, digest_hex) == 0;
}

/* What the user was told last: a line is printed only when it changes. */
struct progress {
	char state[32];
	char missing[1024];
};

static void
report(const json_t *req, struct progress *seen)
{
	const char *state = sg_cli_jstr(req, "state");
	char missing[sizeof(seen->missing)];

	if (state == NULL)
		state = "?";
	if (strcmp(state, seen->state) != 0) {
		printf("state: %s\n", sg_cli_esc(state));
		snprintf(seen->state, sizeof(seen->state), "%s", state);
		seen->missing[0] = '\0';
	}
	if (sg_cli_req_state(req) == SG_REQ_PENDING) {
		sg_cli_missing(req, missing, sizeof(missing));
		if (strcmp(missing, seen->missing) != 0) {
			printf("missing: %s\n", missing);
			snprintf(seen->missing, sizeof(seen->missing), "%s",
			    missing);
		}
	}
	fflush(stdout);
}

int
sg_cli_post_retry(struct sg_cli_http *h, const char *path, const char *body,
    const char *idem, json_t **ret)
{
	int attempt, ex = SG_EXIT_SERVER;

	for (attempt = 0; attempt <= POST_RETRIES; attempt++) {
		if (attempt > 0) {
			fprintf(stderr, "signgate: retrying in %d s with the "
			    "same Idempotency-Key\n", 1 << (attempt - 1));
			sleep(1u << (attempt - 1));
		}
		ex = sg_cli_api(h, "POST", path, body, idem, 0, ret, NULL);
		if (ex != SG_EXIT_SERVER)
			break;
	}
	return ex;
}

/* Long-polls until the request leaves pending or the deadline passes. */
static int
wait_request(struct sg_cli_http *h, const char *id, time_t deadline,
    json_t **req, struct progress *seen)
{
	char path[128];
	json_t *next;
	time_t left, t0;
	int ex, failures = 0;

	for (;;) {
		if (sg_cli_req_state(*req) != SG_REQ_PENDING)
			return SG_EXIT_OK;
		if ((left = deadline - mono_s()) <= 0) {
			fprintf(stderr, "signgate: request %s is still pending; "
			    "giving up waiting\n", id);
			return SG_EXIT_TIMEOUT;
		}
		if (left > SG_CLI_POLL_WAIT)
			left = SG_CLI_POLL_WAIT;
		snprintf(path, sizeof(path), "/v1/requests/%s?wait=%lld", id,
		    (long long)left);
		t0 = mono_s();
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
		if ((ex = sg_cli_expect_request(next, id)) != 0) {
			json_decref(next);
			return ex;
		}
		json_decref(*req);
		*req = next;
		report(*req, seen);
		/* A server that does not hold the poll must not be hammered;
		 * a finished request needs no more polling. */
		if (sg_cli_req_state(*req) == SG_REQ_PENDING &&
		    mono_s() - t0 < 1)
			sleep(1);
	}
}

int
sg_cli_write_out(const char *path, const void *buf, size_t len)
{
	int r;

	if ((r = sg_write_file(path, buf, len, 0644)) != 0) {
		fprintf(stderr, "signgate: cannot write %s: %s\n", path,
		    sg_strerror(r));
		return SG_EXIT_LOCAL;
	}
	return 0;
}

int
sg_cli_idem_random(char out[SG_CLI_IDEM_SIZE])
{
	uint8_t rnd[(SG_CLI_IDEM_SIZE - 1) / 2];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return SG_ERR_CRYPTO;
	sg_hex_encode(rnd, sizeof(rnd), out);
	return 0;
}

/* What a run works with besides its arguments. */
struct sign_job {
	uint8_t digest[SG_MAX_DIGEST];      /* of the LOCAL file */
	size_t dlen;
	char hex[2 * SG_MAX_DIGEST + 1];
	char idem_buf[SG_CLI_IDEM_SIZE];
	const char *idem;                   /* the Idempotency-Key */
	char *out;                          /* the signature file */
	char *body;                         /* the request, JSON */
	char id[SG_REQUEST_ID_SIZE];
	char grant_key[SG_NAME_SIZE];       /* --grant: the grant's key */
};

int
sg_cli_write_proof(const json_t *sigobj, const char *out)
{
	const char *proof = sg_cli_jstr(json_object_get(sigobj, "log"),
	    "proof");
	char *path;
	int ex;

	if (proof == NULL)
		return SG_EXIT_OK;
	if (asprintf(&path, "%s.proof", out) < 0)
		return SG_EXIT_LOCAL;
	if ((ex = sg_cli_write_out(path, proof, strlen(proof))) == 0)
		printf("proof: %s\n", path);
	free(path);
	return ex;
}

/* Fetches, checks and writes the signature of a signed request. */
static int
fetch_signature(struct sg_cli_http *h, const struct sg_cli_sign_args *a,
    const struct sign_job *j)
{
	json_t *keys = NULL, *sigobj = NULL, *key;
	uint8_t *sig = NULL, *cms = NULL;
	size_t sig_len = 0, cms_len = 0;
	char path[128], err[1024];
	int ex;

	if ((ex = sg_cli_api(h, "GET", "/v1/keys", NULL, NULL, 0, &keys,
	    NULL)) != 0)
		goto out;
	snprintf(path, sizeof(path), "/v1/requests/%s/signature", j->id);
	if ((ex = sg_cli_api(h, "GET", path, NULL, NULL, 0, &sigobj,
	    NULL)) != 0)
		goto out;
	ex = SG_EXIT_VERIFY;
	if ((key = sg_cli_find_key(keys, a->key)) == NULL) {
		fprintf(stderr, "signgate: key %s is not in /v1/keys: cannot "
		    "check the signature; nothing written\n", a->key);
		goto out;
	}
	if (sg_cli_check_signature(sigobj, key, a->key, a->format, a->digest,
	    j->digest, j->dlen, &sig, &sig_len, &cms, &cms_len, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "signgate: %s; nothing written\n", err);
		goto out;
	}
	printf("verified: %s %s:%s key %s spki sha256:%s\n",
	    sg_cli_esc(sg_cli_jstr(sigobj, "algorithm")),
	    sg_digest_name(a->digest), j->hex, a->key,
	    sg_cli_esc(sg_cli_jstr(sigobj, "spki_sha256")));
	if (a->format == SG_FORMAT_CMS)
		ex = sg_cli_write_out(j->out, cms, cms_len);
	else
		ex = sg_cli_write_out(j->out, sig, sig_len);
	if (ex != 0)
		goto out;
	printf("signature: %s\n", j->out);
	ex = sg_cli_write_proof(sigobj, j->out);
out:
	free(sig);
	free(cms);
	json_decref(keys);
	json_decref(sigobj);
	return ex;
}

/*
 * Everything local before the request goes out: the file's digest, the
 * output path, the Idempotency-Key and the request body.  An exit status.
 */
static int
sign_prepare(const struct sg_cli_sign_args *a, json_t *artifact,
    struct sign_job *j)
{
	json_t *body;
	int r;

	if ((r = sg_digest_file(a->file, a->digest, j->digest,
	    &j->dlen)) != 0) {
		fprintf(stderr, "signgate: cannot hash %s: %s\n", a->file,
		    sg_strerror(r));
		return SG_EXIT_LOCAL;
	}
	sg_hex_encode(j->digest, j->dlen, j->hex);
	if (a->out != NULL)
		j->out = strdup(a->out);
	else if (asprintf(&j->out, "%s.%s", a->file,
	    a->format == SG_FORMAT_CMS ? "p7s" : "sig") < 0)
		j->out = NULL;
	if (j->out == NULL)
		return SG_EXIT_LOCAL;
	if ((j->idem = a->idempotency_key) == NULL) {
		if (sg_cli_idem_random(j->idem_buf) != 0)
			return SG_EXIT_LOCAL;
		j->idem = j->idem_buf;
	}
	body = json_pack("{s:s, s:{s:s, s:s}, s:s, s:O}", "key", a->key,
	    "digest", "algorithm", sg_digest_name(a->digest), "value", j->hex,
	    "format", sg_format_str(a->format), "artifact", artifact);
	if (body != NULL && a->grant != NULL &&
	    json_object_set_new(body, "grant", json_string(a->grant)) != 0) {
		json_decref(body);
		body = NULL;
	}
	if (body != NULL)
		j->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return j->body != NULL ? SG_EXIT_OK : SG_EXIT_LOCAL;
}

/* Posts the request and, unless --no-wait, follows it until it leaves
 * pending; *req is the latest view of it. */
static int
sign_submit(struct sg_cli_http *h, const struct sg_cli_sign_args *a,
    struct sign_job *j, json_t **req)
{
	struct progress seen;
	int ex;

	memset(&seen, 0, sizeof(seen));
	if ((ex = sg_cli_post_retry(h, "/v1/requests", j->body, j->idem,
	    req)) != 0)
		return ex;
	if (!same_request(*req, a, j->hex)) {
		fprintf(stderr, "signgate: the server answered with a request "
		    "for something else\n");
		return SG_EXIT_SERVER;
	}
	snprintf(j->id, sizeof(j->id), "%s", sg_cli_jstr(*req, "id"));
	printf("request: %s\n", j->id);
	if (a->grant != NULL) {
		json_t *seq = json_object_get(json_object_get(*req, "grant"),
		    "sequence");
		printf("grant: %s signature %lld\n", a->grant,
		    json_is_integer(seq) ? (long long)json_integer_value(seq) :
		    -1LL);
	}
	printf("idempotency-key: %s\n", j->idem);
	report(*req, &seen);
	if (a->no_wait)
		return SG_EXIT_OK;
	return wait_request(h, j->id, mono_s() + (time_t)a->wait, req, &seen);
}

/* What became of the request: the signature, or why there is none. */
static int
sign_outcome(struct sg_cli_http *h, const struct sg_cli_sign_args *a,
    const struct sign_job *j, const json_t *req)
{
	enum sg_req_state state = sg_cli_req_state(req);

	if (state == SG_REQ_PENDING)
		return SG_EXIT_OK;             /* --no-wait */
	if (state == SG_REQ_SIGNED)
		return fetch_signature(h, a, j);
	if (sg_req_state_final(state)) {
		if (sg_cli_jstr(req, "error") != NULL)
			printf("error: %s\n",
			    sg_cli_esc(sg_cli_jstr(req, "error")));
		sg_cli_print_cancelled(req);
		fprintf(stderr, "signgate: request %s was %s; no signature\n",
		    j->id, sg_req_state_str(state));
		return SG_EXIT_NOT_SIGNED;
	}
	fprintf(stderr, "signgate: request %s is in unknown state %s\n", j->id,
	    sg_cli_esc(sg_cli_jstr(req, "state")));
	return SG_EXIT_SERVER;
}

/* The grant's statement decides what --grant may ask: its key, its
 * format, names matching its pattern, before its end.  An exit status. */
static int
grant_fit(const struct sg_statement *st, struct sg_cli_sign_args *a,
    const json_t *artifact)
{
	const char *name = sg_cli_jstr(artifact, "name");
	enum sg_format f;

	if (a->key != NULL && strcmp(a->key, st->key) != 0) {
		fprintf(stderr, "signgate: grant %s is for key %s, not %s\n",
		    a->grant, st->key, a->key);
		return SG_EXIT_USAGE;
	}
	if (sg_format_parse(st->format, &f) != 0 ||
	    (a->format_given && f != a->format)) {
		fprintf(stderr, "signgate: grant %s is for format %s\n",
		    a->grant, st->format);
		return SG_EXIT_USAGE;
	}
	a->format = f;
	if (name == NULL || !sg_artifact_word_valid(name, strlen(name),
	    SG_ARTIFACT_LINE_NAME_MAX) || !sg_pattern_match(st->pattern,
	    name)) {
		fprintf(stderr, "signgate: artifact name %s does not match "
		    "grant %s's pattern %s (printable ASCII, no spaces)\n",
		    sg_cli_esc(name), a->grant, sg_cli_esc(st->pattern));
		return SG_EXIT_USAGE;
	}
	if ((long long)time(NULL) >= st->expires) {
		fprintf(stderr, "signgate: grant %s has ended\n", a->grant);
		return SG_EXIT_REFUSED;
	}
	return SG_EXIT_OK;
}

/* Reads the grant and fits the request to it (a->key, a->format). */
static int
sign_grant(struct sg_cli_http *h, struct sg_cli_sign_args *a,
    const json_t *artifact, struct sign_job *j)
{
	struct sg_statement st;
	json_t *g = NULL;
	char path[128], err[2048];
	int ex;

	snprintf(path, sizeof(path), "/v1/requests/%s", a->grant);
	if ((ex = sg_cli_api(h, "GET", path, NULL, NULL, 0, &g, NULL)) != 0)
		return ex;
	if ((ex = sg_cli_expect_request(g, a->grant)) != 0)
		goto out;
	ex = SG_EXIT_SERVER;
	if (sg_cli_kind_statement(g, &st, err, sizeof(err)) != 0) {
		sg_cli_print_errors(err);
		fprintf(stderr, "signgate: grant %s: its statement disagrees "
		    "with it\n", a->grant);
		goto out;
	}
	if (st.kind != SG_KIND_GRANT) {
		fprintf(stderr, "signgate: %s is a %s, not a grant\n",
		    a->grant, sg_kind_str(st.kind));
		ex = SG_EXIT_USAGE;
		goto out;
	}
	if (sg_cli_req_state(g) != SG_REQ_ACTIVE) {
		fprintf(stderr, "signgate: grant %s is %s, not active\n",
		    a->grant, sg_cli_esc(sg_cli_jstr(g, "state")));
		ex = SG_EXIT_REFUSED;
		goto out;
	}
	if ((ex = grant_fit(&st, a, artifact)) != 0)
		goto out;
	snprintf(j->grant_key, sizeof(j->grant_key), "%s", st.key);
	a->key = j->grant_key;
out:
	json_decref(g);
	return ex;
}

int
sg_cli_cmd_sign(int argc, char **argv, struct sg_cli_conf *conf)
{
	struct sg_cli_sign_args a;
	struct sign_job j;
	struct sg_cli_http *h = NULL;
	json_t *artifact = NULL, *req = NULL;
	char err[512];
	int ex;

	memset(&j, 0, sizeof(j));
	if ((ex = sg_cli_sign_parse(argc, argv, conf, &a)) != 0)
		return ex;
	if (a.help) {
		sg_cli_usage(stdout, "sign");
		return SG_EXIT_OK;
	}
	if (sg_cli_sign_artifact(&a, &artifact, err, sizeof(err)) != 0) {
		fprintf(stderr, "signgate: %s\n", err);
		return SG_EXIT_USAGE;
	}
	if ((ex = sg_cli_conf_resolve(conf)) != 0 ||
	    (ex = sg_cli_connect(conf, &h)) != 0 ||
	    (a.grant != NULL && (ex = sign_grant(h, &a, artifact, &j)) != 0) ||
	    (ex = sign_prepare(&a, artifact, &j)) != 0 ||
	    (ex = sign_submit(h, &a, &j, &req)) != 0)
		goto out;
	ex = sign_outcome(h, &a, &j, req);
out:
	ex = sg_cli_flush(ex);
	free(j.body);
	free(j.out);
	json_decref(artifact);
	json_decref(req);
	sg_cli_http_free(h);
	return ex;
}
