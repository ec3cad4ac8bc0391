/*
 * Tests for the CLI's pure helpers: option tables and the precedence of
 * options over the environment, URL rules, `sign` argument parsing and
 * the artifact object, problem details, exit statuses, the "missing"
 * summary, escaping of server strings, and the option loop and request
 * helpers every command shares.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sg_cli.h"
#include "sg_err.h"
#include "sg_test.h"
#include "sg_util.h"

static void
clear_env(void)
{
	unsetenv("SIGNGATE_URL");
	unsetenv("SIGNGATE_CERT");
	unsetenv("SIGNGATE_KEY");
	unsetenv("SIGNGATE_CACERT");
}

static const struct option *
find_opt(const struct option *o, const char *name)
{
	for (; o->name != NULL; o++)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

static void
test_options_merge(void)
{
	static const struct option own[] = {
		{ "key", required_argument, NULL, SG_OPT_CMD },
		{ "json", no_argument, NULL, SG_OPT_CMD + 1 },
		{ NULL, 0, NULL, 0 },
	};
	struct option out[SG_CLI_MAX_OPTIONS], small[4];
	const struct option *o;
	size_t n = 0;

	CHECK_EQ_INT(sg_cli_options(own, out, SG_CLI_MAX_OPTIONS), 0);
	for (o = out; o->name != NULL; o++)
		n++;
	/* 2 own + 7 global - 1 shadowed ("key"). */
	CHECK_EQ_INT(n, 8);
	CHECK((o = find_opt(out, "key")) != NULL && o->val == SG_OPT_CMD);
	CHECK((o = find_opt(out, "url")) != NULL && o->val == SG_OPT_URL);
	CHECK((o = find_opt(out, "cacert")) != NULL && o->val == SG_OPT_CACERT);
	CHECK(find_opt(out, "help") != NULL);

	CHECK_EQ_INT(sg_cli_options(NULL, out, SG_CLI_MAX_OPTIONS), 0);
	CHECK((o = find_opt(out, "key")) != NULL && o->val == SG_OPT_KEY);
	CHECK_EQ_INT(sg_cli_options(own, small, 4), SG_ERR_BUFFER);
}

static void
test_global_option_values(void)
{
	struct sg_cli_conf c;

	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(sg_cli_global_option(&c, SG_OPT_TIMEOUT, "45"), 0);
	CHECK_EQ_INT(c.timeout, 45);
	CHECK_EQ_INT(sg_cli_global_option(&c, SG_OPT_TIMEOUT, "0"),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(sg_cli_global_option(&c, SG_OPT_TIMEOUT, "-1"),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(sg_cli_global_option(&c, SG_OPT_TIMEOUT, "3601"),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(sg_cli_global_option(&c, SG_OPT_TIMEOUT, "1e3"),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(c.timeout, 45);
	CHECK_EQ_INT(sg_cli_global_option(&c, SG_OPT_URL, "https://x"), 0);
	CHECK_STR(c.url, "https://x");
	CHECK_EQ_INT(sg_cli_global_option(&c, '?', NULL), 1);
	CHECK_EQ_INT(sg_cli_global_option(&c, SG_OPT_CMD, "x"), 1);
}

static void
test_env_precedence(void)
{
	struct sg_cli_conf c;

	clear_env();
	setenv("SIGNGATE_URL", "https://env.example:1", 1);
	setenv("SIGNGATE_CERT", "/env/cert.pem", 1);
	setenv("SIGNGATE_KEY", "/env/key.pem", 1);
	setenv("SIGNGATE_CACERT", "/env/ca.pem", 1);

	/* Only the environment. */
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(sg_cli_conf_resolve(&c), 0);
	CHECK_STR(c.url, "https://env.example:1");
	CHECK_STR(c.cert, "/env/cert.pem");
	CHECK_STR(c.key, "/env/key.pem");
	CHECK_STR(c.cacert, "/env/ca.pem");
	CHECK_EQ_INT(c.timeout, SG_CLI_DEFAULT_TIMEOUT);

	/* Options win, one by one; the rest still comes from the env. */
	memset(&c, 0, sizeof(c));
	c.url = "https://opt.example";
	c.key = "/opt/key.pem";
	c.timeout = 7;
	CHECK_EQ_INT(sg_cli_conf_resolve(&c), 0);
	CHECK_STR(c.url, "https://opt.example");
	CHECK_STR(c.cert, "/env/cert.pem");
	CHECK_STR(c.key, "/opt/key.pem");
	CHECK_STR(c.cacert, "/env/ca.pem");
	CHECK_EQ_INT(c.timeout, 7);

	/* An empty variable counts as unset. */
	setenv("SIGNGATE_CACERT", "", 1);
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(sg_cli_conf_resolve(&c), 0);
	CHECK(c.cacert == NULL);

	/* Resolving twice changes nothing. */
	CHECK_EQ_INT(sg_cli_conf_resolve(&c), 0);
	CHECK_STR(c.url, "https://env.example:1");

	/* A key without a certificate is a usage error. */
	unsetenv("SIGNGATE_CERT");
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(sg_cli_conf_resolve(&c), SG_EXIT_USAGE);
	clear_env();

	/* No URL at all. */
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(sg_cli_conf_resolve(&c), SG_EXIT_USAGE);
}

static int
url_ok(const char *url)
{
	struct sg_cli_conf c;

	memset(&c, 0, sizeof(c));
	c.url = url;
	return sg_cli_conf_resolve(&c) == 0;
}

static void
test_url_rules(void)
{
	clear_env();
	CHECK(url_ok("https://127.0.0.1:8443"));
	CHECK(url_ok("https://signgate.example.org/"));
	CHECK(url_ok("http://127.0.0.1:8080"));
	CHECK(url_ok("http://localhost"));
	CHECK(url_ok("http://[::1]:80/"));
	CHECK(!url_ok("http://example.org"));
	CHECK(!url_ok("http://127.0.0.1.evil.example"));
	CHECK(!url_ok("http://localhost.evil.example:80"));
	CHECK(!url_ok("ftp://127.0.0.1"));
	CHECK(!url_ok("https://"));
	CHECK(!url_ok("https:///x"));
	CHECK(!url_ok("https://a b"));
	CHECK(!url_ok("https://a\nb"));
	CHECK(!url_ok("127.0.0.1:8443"));
	/* What precedes '@' is a user name, not the host. */
	CHECK(!url_ok("http://localhost:@192.0.2.1:80"));
	CHECK(!url_ok("http://127.0.0.1@192.0.2.1"));
	CHECK(!url_ok("http://localhost:80@192.0.2.1/"));
	CHECK(!url_ok("http://[::1]:x@192.0.2.1/"));
	CHECK(!url_ok("https://user:pw@signgate.example.org"));
	CHECK(!url_ok("http://localhost/?@192.0.2.1"));
	CHECK(!url_ok("http://localhost#@192.0.2.1"));
	CHECK(!url_ok("http://127.0.0.2"));
	CHECK(!url_ok("http:/localhost"));
	CHECK(url_ok("HTTP://127.0.0.1:8080/"));
	CHECK(url_ok("https://signgate.example.org:8443/base"));
	CHECK(url_ok("http://[::1]"));
}

/* getopt needs writable argv. */
static int
parse_sign(struct sg_cli_conf *c, struct sg_cli_sign_args *a, ...)
{
	char *argv[32];
	const char *s;
	va_list ap;
	int argc = 0;

	va_start(ap, a);
	argv[argc++] = (char *)"sign";
	while ((s = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)s;
	va_end(ap);
	argv[argc] = NULL;
	memset(c, 0, sizeof(*c));
	opterr = 0;
	return sg_cli_sign_parse(argc, argv, c, a);
}

static void
test_sign_parse(void)
{
	struct sg_cli_conf c;
	struct sg_cli_sign_args a;

	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "nightly", "f.bin", NULL), 0);
	CHECK_STR(a.key, "nightly");
	CHECK_STR(a.file, "f.bin");
	CHECK_EQ_INT(a.format, SG_FORMAT_RAW);
	CHECK_EQ_INT(a.digest, SG_DIGEST_SHA256);
	CHECK_EQ_INT(a.wait, 3600);
	CHECK_EQ_INT(a.no_wait, 0);
	CHECK(a.out == NULL && a.idempotency_key == NULL && a.nmeta == 0);
	/* --key after `sign` is the signing key, never the TLS key. */
	CHECK(c.key == NULL);

	CHECK_EQ_INT(parse_sign(&c, &a, "f.bin", "--key", "release",
	    "--digest", "sha512", "--format", "cms", "--out", "o.p7s",
	    "--artifact-name", "app", "--artifact-version", "1.2",
	    "--meta", "build=77", "--meta", "git=abc=d", "--idempotency-key",
	    "k-1", "--wait", "0", "--no-wait", "--url", "https://u",
	    "--timeout", "9", "--cert", "c.pem", NULL), 0);
	CHECK_STR(a.key, "release");
	CHECK_STR(a.file, "f.bin");
	CHECK_EQ_INT(a.digest, SG_DIGEST_SHA512);
	CHECK_EQ_INT(a.format, SG_FORMAT_CMS);
	CHECK_STR(a.out, "o.p7s");
	CHECK_STR(a.artifact_name, "app");
	CHECK_STR(a.artifact_version, "1.2");
	CHECK_EQ_INT(a.nmeta, 2);
	CHECK_STR(a.meta[1], "git=abc=d");
	CHECK_STR(a.idempotency_key, "k-1");
	CHECK_EQ_INT(a.wait, 0);
	CHECK_EQ_INT(a.no_wait, 1);
	CHECK_STR(c.url, "https://u");
	CHECK_STR(c.cert, "c.pem");
	CHECK_EQ_INT(c.timeout, 9);

	CHECK_EQ_INT(parse_sign(&c, &a, "--help", NULL), 0);
	CHECK_EQ_INT(a.help, 1);

	CHECK_EQ_INT(parse_sign(&c, &a, "f.bin", NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "a", "b", NULL),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k/x", "a", NULL),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--digest", "md5", "a",
	    NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--format", "pem", "a",
	    NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--meta", "novalue",
	    "a", NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--wait", "-5", "a",
	    NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--wait", "604801", "a",
	    NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--idempotency-key",
	    "has space", "a", NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--idempotency-key", "",
	    "a", NULL), SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--bogus", "a", NULL),
	    SG_EXIT_USAGE);
	CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k", "--timeout", "0", "a",
	    NULL), SG_EXIT_USAGE);
	{
		char idem[SG_IDEM_KEY_MAX + 2];
		memset(idem, 'x', sizeof(idem) - 1);
		idem[sizeof(idem) - 1] = '\0';
		CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k",
		    "--idempotency-key", idem, "a", NULL), SG_EXIT_USAGE);
		idem[SG_IDEM_KEY_MAX] = '\0';
		CHECK_EQ_INT(parse_sign(&c, &a, "--key", "k",
		    "--idempotency-key", idem, "a", NULL), 0);
	}
}

struct opt_seen {
	const char *alpha;
	int yes;
	int calls;
};

/* --alpha V is taken, --bad is a bad value, -y a short option. */
static int
record_option(void *arg, int opt, const char *optarg)
{
	struct opt_seen *seen = arg;

	seen->calls++;
	switch (opt) {
	case SG_OPT_CMD:
		seen->alpha = optarg;
		return 0;
	case SG_OPT_CMD + 1:
		return SG_EXIT_USAGE;
	case 'y':
		seen->yes = 1;
		return 0;
	}
	return 1;
}

static int
run_getopt(const struct sg_cli_cmdline *cl, struct sg_cli_conf *c,
    int *help, char **argv)
{
	int argc = 0;

	while (argv[argc] != NULL)
		argc++;
	memset(c, 0, sizeof(*c));
	opterr = 0;
	return sg_cli_getopt(argc, argv, cl, c, help);
}

static void
test_getopt(void)
{
	static const struct option own[] = {
		{ "alpha", required_argument, NULL, SG_OPT_CMD },
		{ "bad", no_argument, NULL, SG_OPT_CMD + 1 },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option json_only[] = {
		{ "json", no_argument, NULL, SG_OPT_CMD },
		{ NULL, 0, NULL, 0 },
	};
	struct opt_seen seen;
	struct sg_cli_cmdline cl = { "test", own, "hvy", record_option,
	    &seen };
	struct sg_cli_conf c;
	int help, json = 0;
	char *a1[] = { "test", "--alpha", "A", "-y", "--url", "https://x",
	    "op1", NULL };
	char *a2[] = { "test", "--help", NULL };
	char *a3[] = { "test", "-h", "op", NULL };
	char *a4[] = { "test", "--bad", NULL };
	char *a5[] = { "test", "--nope", NULL };
	char *a6[] = { "test", "--timeout", "0", NULL };
	char *a7[] = { "test", "-y", NULL };
	char *a8[] = { "test", "--json", "-v", NULL };
	char *a9[] = { "test", "--alpha", "B", NULL };

	memset(&seen, 0, sizeof(seen));
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a1), SG_EXIT_OK);
	CHECK_STR(seen.alpha, "A");
	CHECK_EQ_INT(seen.yes, 1);
	CHECK_EQ_INT(help, 0);
	CHECK_STR(c.url, "https://x");
	CHECK(optind == 6 && strcmp(a1[optind], "op1") == 0);

	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a2), SG_EXIT_OK);
	CHECK_EQ_INT(help, 1);
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a3), SG_EXIT_OK);
	CHECK_EQ_INT(help, 1);
	/* An own option's error status comes back as it is. */
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a4), SG_EXIT_USAGE);
	/* Unknown options and bad global values are usage errors. */
	memset(&seen, 0, sizeof(seen));
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a5), SG_EXIT_USAGE);
	CHECK_EQ_INT(seen.calls, 1);
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a6), SG_EXIT_USAGE);

	/* Defaults: "hv" only, no own options. */
	cl.shortopts = NULL;
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a7), SG_EXIT_USAGE);
	cl.own = NULL;
	cl.fn = NULL;
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a9), SG_EXIT_USAGE);

	cl.own = json_only;
	cl.fn = sg_cli_opt_json;
	cl.arg = &json;
	CHECK_EQ_INT(run_getopt(&cl, &c, &help, a8), SG_EXIT_OK);
	CHECK_EQ_INT(json, 1);
	CHECK_EQ_INT(c.verbose, 1);
	sg_log_set_verbose(0);
}

static void
test_request_helpers(void)
{
	static const char id[] = "0123456789abcdef0123456789abcdef";
	char *one[] = { "show", (char *)id, NULL };
	char *bad[] = { "show", "0123456789ABCDEF0123456789ABCDEF", NULL };
	char *two[] = { "show", (char *)id, (char *)id, NULL };
	json_t *req;

	optind = 1;
	CHECK(sg_cli_id_operand(2, one, "show", "") == one[1]);
	optind = 1;
	CHECK(sg_cli_id_operand(2, bad, "show", "") == NULL);
	optind = 1;
	CHECK(sg_cli_id_operand(3, two, "show", "") == NULL);
	optind = 1;
	CHECK(sg_cli_id_operand(1, one, "show", "") == NULL);

	req = json_pack("{s:s, s:s}", "id", id, "state", "pending");
	CHECK_EQ_INT(sg_cli_req_state(req), SG_REQ_PENDING);
	CHECK_EQ_INT(sg_cli_expect_request(req, id), SG_EXIT_OK);
	CHECK_EQ_INT(sg_cli_expect_request(req,
	    "ffffffffffffffffffffffffffffffff"), SG_EXIT_SERVER);
	json_object_set_new(req, "state", json_string("signed"));
	CHECK_EQ_INT(sg_cli_req_state(req), SG_REQ_SIGNED);
	json_object_set_new(req, "state", json_string("bogus"));
	CHECK_EQ_INT(sg_cli_req_state(req), SG_REQ_NONE);
	json_object_set_new(req, "state", json_integer(1));
	CHECK_EQ_INT(sg_cli_req_state(req), SG_REQ_NONE);
	/* An ID that is not one never matches, not even itself. */
	json_object_set_new(req, "id", json_string("../x"));
	CHECK_EQ_INT(sg_cli_expect_request(req, "../x"), SG_EXIT_SERVER);
	json_object_del(req, "id");
	CHECK_EQ_INT(sg_cli_expect_request(req, id), SG_EXIT_SERVER);
	json_decref(req);
	CHECK_EQ_INT(sg_cli_req_state(NULL), SG_REQ_NONE);
}

/* What sg_cli_print_errors(lines) writes to stderr. */
static void
errors_of(const char *lines, char *out, size_t cap)
{
	FILE *f = tmpfile();
	size_t n = 0;
	int saved;

	out[0] = '\0';
	if (f == NULL)
		return;
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(f), STDERR_FILENO);
	sg_cli_print_errors(lines);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void
test_print_errors(void)
{
	char buf[512];

	errors_of("statement says key a, request says b\nno statement", buf,
	    sizeof(buf));
	CHECK_STR(buf, "signgate: error: statement says key a, request says "
	    "b\nsigngate: error: no statement\n");
	errors_of("one\n", buf, sizeof(buf));
	CHECK_STR(buf, "signgate: error: one\n");
	errors_of("a\n\nb", buf, sizeof(buf));
	CHECK_STR(buf, "signgate: error: a\nsigngate: error: \n"
	    "signgate: error: b\n");
	errors_of("", buf, sizeof(buf));
	CHECK_STR(buf, "");
	errors_of(NULL, buf, sizeof(buf));
	CHECK_STR(buf, "");
}

static int
artifact(struct sg_cli_sign_args *a, json_t **out, char *err, size_t len)
{
	*out = NULL;
	return sg_cli_sign_artifact(a, out, err, len);
}

static void
test_sign_artifact(void)
{
	struct sg_cli_sign_args a;
	char err[256], big[2 + SG_ARTIFACT_VALUE_MAX + 2];
	json_t *o = NULL;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.file = "/tmp/dir/app.tar.gz";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), 0);
	CHECK_STR(sg_cli_jstr(o, "name"), "app.tar.gz");
	CHECK_EQ_INT(json_object_size(o), 1);
	json_decref(o);

	a.artifact_name = "App";
	a.artifact_version = "1.2.3";
	a.meta[0] = "build=77";
	a.meta[1] = "url=https://x/?a=b";
	a.nmeta = 2;
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), 0);
	CHECK_STR(sg_cli_jstr(o, "name"), "App");
	CHECK_STR(sg_cli_jstr(o, "version"), "1.2.3");
	CHECK_STR(sg_cli_jstr(o, "build"), "77");
	CHECK_STR(sg_cli_jstr(o, "url"), "https://x/?a=b");
	json_decref(o);

	/* Duplicates, including name/version given twice. */
	a.meta[1] = "build=78";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
	CHECK(strstr(err, "twice") != NULL);
	CHECK(o == NULL);
	a.meta[1] = "version=9";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
	/* Bad names and values. */
	a.nmeta = 1;
	a.meta[0] = "bad name=1";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
	a.meta[0] = "=1";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
	a.meta[0] = "k=line\nbreak";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
	a.meta[0] = "k=\xff\xfe";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
	a.meta[0] = "k=caf\xc3\xa9";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), 0);
	json_decref(o);
	big[0] = 'k';
	big[1] = '=';
	memset(big + 2, 'v', SG_ARTIFACT_VALUE_MAX + 1);
	big[2 + SG_ARTIFACT_VALUE_MAX + 1] = '\0';   /* 1025 bytes of value */
	a.meta[0] = big;
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
	big[2 + SG_ARTIFACT_VALUE_MAX] = '\0';       /* 1024 */
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), 0);
	json_decref(o);

	/* At most 32 fields: name + version + 30 more. */
	{
		static char fields[SG_ARTIFACT_FIELDS_MAX][16];
		for (i = 0; i < SG_ARTIFACT_FIELDS_MAX; i++) {
			snprintf(fields[i], sizeof(fields[i]), "f%zu=v", i);
			a.meta[i] = fields[i];
		}
		a.nmeta = SG_ARTIFACT_FIELDS_MAX - 2;
		CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), 0);
		CHECK_EQ_INT(json_object_size(o), SG_ARTIFACT_FIELDS_MAX);
		json_decref(o);
		a.nmeta = SG_ARTIFACT_FIELDS_MAX - 1;
		CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)),
		    SG_ERR_INVALID);
	}

	/* A file name ending in '/' has no base name. */
	memset(&a, 0, sizeof(a));
	a.file = "dir/";
	CHECK_EQ_INT(artifact(&a, &o, err, sizeof(err)), SG_ERR_INVALID);
}

static void
test_problem_parse(void)
{
	static const char full[] = "{\"type\":\"about:blank\",\"title\":"
	    "\"Bad Request\",\"status\":400,\"detail\":\"digest.value: must "
	    "be 64 hex characters\",\"field\":\"digest.value\"}";
	struct sg_problem p;

	CHECK_EQ_INT(sg_problem_parse(full, strlen(full), &p), 0);
	CHECK_EQ_INT(p.status, 400);
	CHECK_STR(p.title, "Bad Request");
	CHECK_STR(p.detail, "digest.value: must be 64 hex characters");
	CHECK_STR(p.field, "digest.value");

	CHECK_EQ_INT(sg_problem_parse("{\"status\":\"x\"}", 14, &p), 0);
	CHECK_EQ_INT(p.status, 0);
	CHECK_STR(p.title, "");
	CHECK_STR(p.field, "");

	memset(&p, 0x5a, sizeof(p));
	CHECK_EQ_INT(sg_problem_parse("<html>", 6, &p), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_problem_parse("[1]", 3, &p), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_problem_parse("{\"title\":\"a\",\"title\":\"b\"}", 25,
	    &p), SG_ERR_INVALID);
	CHECK((unsigned char)p.title[0] == 0x5a);
}

static void
test_status_exit(void)
{
	CHECK_EQ_INT(sg_cli_status_exit(200), SG_EXIT_OK);
	CHECK_EQ_INT(sg_cli_status_exit(201), SG_EXIT_OK);
	CHECK_EQ_INT(sg_cli_status_exit(400), SG_EXIT_REFUSED);
	CHECK_EQ_INT(sg_cli_status_exit(401), SG_EXIT_REFUSED);
	CHECK_EQ_INT(sg_cli_status_exit(409), SG_EXIT_REFUSED);
	CHECK_EQ_INT(sg_cli_status_exit(429), SG_EXIT_REFUSED);
	CHECK_EQ_INT(sg_cli_status_exit(500), SG_EXIT_SERVER);
	CHECK_EQ_INT(sg_cli_status_exit(503), SG_EXIT_SERVER);
	CHECK_EQ_INT(sg_cli_status_exit(302), SG_EXIT_SERVER);
	CHECK_EQ_INT(sg_cli_status_exit(101), SG_EXIT_SERVER);
	CHECK_EQ_INT(sg_cli_status_exit(0), SG_EXIT_SERVER);
}

static void
test_missing(void)
{
	json_t *req;
	char out[256];

	req = json_loads("{\"required\":[{\"group\":\"security-officers\","
	    "\"count\":2,\"missing\":1},{\"group\":\"release-managers\","
	    "\"count\":1,\"missing\":0},{\"group\":\"x\\u001b[2J\","
	    "\"count\":3,\"missing\":3}]}", 0, NULL);
	CHECK(req != NULL);
	sg_cli_missing(req, out, sizeof(out));
	CHECK_STR(out, "1 of 2 security-officers, 3 of 3 x\\x1b[2J");
	json_decref(req);

	req = json_loads("{\"required\":[]}", 0, NULL);
	sg_cli_missing(req, out, sizeof(out));
	CHECK_STR(out, "none");
	json_decref(req);
	sg_cli_missing(NULL, out, sizeof(out));
	CHECK_STR(out, "none");

	/* Truncation never overruns. */
	req = json_loads("{\"required\":[{\"group\":\"abcdefghij\","
	    "\"count\":2,\"missing\":1}]}", 0, NULL);
	sg_cli_missing(req, out, 8);
	CHECK(strlen(out) < 8);
	json_decref(req);
}

static void
test_escape_and_names(void)
{
	json_t *o;

	CHECK_STR(sg_cli_esc("plain"), "plain");
	CHECK_STR(sg_cli_esc("a\x1b]0;x\x07"), "a\\x1b]0;x\\x07");
	CHECK_STR(sg_cli_esc(NULL), "-");
	o = json_pack("{s:s, s:i}", "s", "v", "i", 1);
	CHECK_STR(sg_cli_jstr(o, "s"), "v");
	CHECK(sg_cli_jstr(o, "i") == NULL);
	CHECK(sg_cli_jstr(o, "absent") == NULL);
	CHECK(sg_cli_jstr(NULL, "s") == NULL);
	json_decref(o);


	/* Artifact text: allowed characters as they are, the rest visible. */
	CHECK_STR(sg_cli_text("\xc3\x9c" "berpr\xc3\xbc" "fung.exe"),
	    "\xc3\x9c" "berpr\xc3\xbc" "fung.exe");
	CHECK_STR(sg_cli_text("gpj.\xe2\x80\xae" "exe"), "gpj.\\u202eexe");
	CHECK_STR(sg_cli_text("a\xc2\x85" "b\x1b[2J"), "a\\u0085b\\x1b[2J");
	CHECK_STR(sg_cli_text("a\\b\xff"), "a\\x5cb\\xff");
	CHECK_STR(sg_cli_text(NULL), "-");
}

static void
test_usage_texts(void)
{
	FILE *f = tmpfile();
	char buf[16384];
	size_t n;

	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK_EQ_INT(sg_cli_usage(f, NULL), 0);
	CHECK_EQ_INT(sg_cli_usage(f, "sign"), 0);
	CHECK_EQ_INT(sg_cli_usage(f, "reject"), 0);
	CHECK_EQ_INT(sg_cli_usage(f, "verify"), 0);
	CHECK_EQ_INT(sg_cli_usage(f, "log"), 0);
	CHECK_EQ_INT(sg_cli_usage(f, "frobnicate"), -1);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	/* Every exit status is documented in the overview. */
	CHECK(strstr(buf, "  7  timed out") != NULL);
	CHECK(strstr(buf, "  3  the server refused") != NULL);
	CHECK(strstr(buf, "<out>.proof") != NULL);
	fclose(f);
}

SG_TEST_MAIN("cli_common",
    T(test_options_merge),
    T(test_global_option_values),
    T(test_env_precedence),
    T(test_url_rules),
    T(test_sign_parse),
    T(test_getopt),
    T(test_request_helpers),
    T(test_print_errors),
    T(test_sign_artifact),
    T(test_problem_parse),
    T(test_status_exit),
    T(test_missing),
    T(test_escape_and_names),
    T(test_usage_texts))
