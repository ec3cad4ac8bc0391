/*
 * Tests for the daemon's configuration loader.  A configuration shaped like
 * the development one (var/dev/signgated.json) is written into a temporary
 * directory with the files it names; edits of it check that relative paths
 * are resolved against the file's directory and that every kind of mistake
 * is refused with an error naming the file and the field.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sg_config.h"
#include "sg_cosig.h"
#include "sg_err.h"
#include "sg_test.h"
#include "sg_fixture.h"
#include "sg_util.h"

static char tmpdir[64];
static char cfgpath[128];

static const char base[] =
    "{\n"
    "  \"listen\": {\"address\": \"127.0.0.1\", \"port\": 8443},\n"
    "  \"tls\": {\n"
    "    \"certificate\": \"tls/server.pem\",\n"
    "    \"private_key\": \"tls/server.key\",\n"
    "    \"client_ca\": \"tls/ca.pem\"\n"
    "  },\n"
    "  \"pkcs11\": {\n"
    "    \"module\": \"/usr/lib/softhsm/libsofthsm2.so\",\n"
    "    \"tokens\": [\n"
    "      {\"label\": \"signgate-dev\", \"pin_file\": "
    "\"pins/signgate-dev.pin\"}\n"
    "    ]\n"
    "  },\n"
    "  \"policy\": \"policy.conf\",\n"
    "  \"state_dir\": \"state\",\n"
    "  \"threads\": 4,\n"
    "  \"log\": {\"origin\": \"signgate.dev/log\", \"token\": "
    "\"signgate-dev\", \"key\": \"log\"}\n"
    "}\n";

static int
write_text(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		return -1;
	if (fwrite(text, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

/* Loads text as the configuration file; errbuf gets the error. */
static int
load_text(const char *text, struct sg_config **ret, char *errbuf,
    size_t errlen)
{
	if (write_text(cfgpath, text, strlen(text)) != 0) {
		fprintf(stderr, "  cannot write %s\n", cfgpath);
		return -100;
	}
	errbuf[0] = '\0';
	return sg_config_load(cfgpath, ret, errbuf, errlen);
}

/* base with the first `from` replaced by `to`, in a static buffer. */
static const char *
edited(const char *from, const char *to)
{
	static char buf[65536];
	const char *at = strstr(base, from);

	if (at == NULL) {
		fprintf(stderr, "  test bug: '%s' not in base\n", from);
		sg_test_failed_checks++;
		return base;
	}
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - base), base, to,
	    at + strlen(from));
	return buf;
}

/*
 * The text must be refused with SG_ERR_INVALID, the output left alone, and
 * an error that starts with the file and names the field and a reason.
 */
static int
refused_at(int line, const char *text, const char *field, const char *reason)
{
	struct sg_config *cfg = (struct sg_config *)&cfg;
	char err[1024], prefix[256];
	int r, ok;

	r = load_text(text, &cfg, err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "%s", cfgpath);
	ok = r == SG_ERR_INVALID && cfg == (struct sg_config *)&cfg &&
	    strncmp(err, prefix, strlen(prefix)) == 0 &&
	    strstr(err, field) != NULL &&
	    (reason == NULL || strstr(err, reason) != NULL);
	if (!ok) {
		fprintf(stderr, "  line %d: r=%d err=\"%s\"; wanted field "
		    "\"%s\"%s%s\n", line, r, err, field,
		    reason ? " reason " : "", reason ? reason : "");
		if (r == 0 && cfg != (struct sg_config *)&cfg)
			sg_config_free(cfg);
	}
	return ok;
}
#define REFUSED(text, field) CHECK(refused_at(__LINE__, text, field, NULL))
#define REFUSED_WHY(text, field, why) \
	CHECK(refused_at(__LINE__, text, field, why))

static struct sg_config *
loads_at(int line, const char *text)
{
	struct sg_config *cfg = NULL;
	char err[1024];
	int r;

	r = load_text(text, &cfg, err, sizeof(err));
	if (r != 0 || cfg == NULL) {
		fprintf(stderr, "  line %d: load failed (%d): %s\n", line, r,
		    err);
		return NULL;
	}
	return cfg;
}
#define LOADS(text) loads_at(__LINE__, text)

static char *
in_tmp(const char *rel)
{
	static char buf[8][PATH_MAX];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, rel);
	return p;
}

static void
test_valid(void)
{
	struct sg_config *cfg = LOADS(base);

	CHECK(cfg != NULL);
	if (cfg == NULL)
		return;
	CHECK_STR(cfg->path, cfgpath);
	CHECK_STR(cfg->listen_address, "127.0.0.1");
	CHECK_EQ_INT(cfg->port, 8443);
	CHECK_EQ_INT(cfg->plain_http, 0);
	CHECK_STR(cfg->tls_certificate, in_tmp("tls/server.pem"));
	CHECK_STR(cfg->tls_private_key, in_tmp("tls/server.key"));
	CHECK_STR(cfg->tls_client_ca, in_tmp("tls/ca.pem"));
	/* Absolute paths are kept as they are. */
	CHECK_STR(cfg->pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so");
	CHECK_EQ_INT(cfg->pkcs11_concurrency, 16);
	CHECK_EQ_INT(cfg->ntokens, 1);
	CHECK_STR(cfg->tokens[0].label, "signgate-dev");
	CHECK_STR(cfg->tokens[0].pin_file, in_tmp("pins/signgate-dev.pin"));
	CHECK_STR(cfg->policy_path, in_tmp("policy.conf"));
	CHECK_STR(cfg->state_dir, in_tmp("state"));
	CHECK_STR(cfg->signer_state_dir, in_tmp("state-hsm"));
	CHECK_STR(cfg->front_user, "signgate");
	CHECK_STR(cfg->signer_user, "signgate-hsm");
	CHECK_EQ_INT(cfg->threads, 4);
	/* Defaults (their values are the daemon's choice; they must lie
	 * in the ranges a configuration may set). */
	CHECK(cfg->connection_limit >= 1 && cfg->connection_limit <= 100000);
	CHECK(cfg->per_ip_connection_limit <= 100000);
	CHECK(cfg->connection_timeout >= 1 && cfg->connection_timeout <= 3600);
	CHECK_STR(cfg->log_origin, "signgate.dev/log");
	CHECK_STR(cfg->log_token, "signgate-dev");
	CHECK_STR(cfg->log_key, "log");
	/* The PIN file it names is readable as a secret. */
	{
		char *pin = NULL;
		size_t len = 0;
		CHECK_EQ_INT(sg_read_secret_file(cfg->tokens[0].pin_file,
		    &pin, &len), 0);
		CHECK_STR(pin, "1234");
		sg_freezero(pin, len);
	}
	sg_config_free(cfg);
	sg_config_free(NULL);
}

static void
test_all_fields_and_bounds(void)
{
	struct sg_config *cfg;
	const char *text;

	text = edited("\"threads\": 4,", "\"threads\": 64, "
	    "\"connection_limit\": 100000, \"per_ip_connection_limit\": 7, "
	    "\"connection_timeout\": 3600, \"plain_http\": false,");
	cfg = LOADS(text);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_EQ_INT(cfg->threads, 64);
		CHECK_EQ_INT(cfg->connection_limit, 100000);
		CHECK_EQ_INT(cfg->per_ip_connection_limit, 7);
		CHECK_EQ_INT(cfg->connection_timeout, 3600);
		CHECK_EQ_INT(cfg->plain_http, 0);
		sg_config_free(cfg);
	}
	text = edited("\"threads\": 4,", "\"threads\": 1, "
	    "\"connection_limit\": 1, \"per_ip_connection_limit\": 0, "
	    "\"connection_timeout\": 1,");
	cfg = LOADS(text);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_EQ_INT(cfg->threads, 1);
		CHECK_EQ_INT(cfg->connection_limit, 1);
		CHECK_EQ_INT(cfg->connection_timeout, 1);
		sg_config_free(cfg);
	}
	/* Optional threads: default 4. */
	cfg = LOADS(edited("\"threads\": 4,", ""));
	CHECK(cfg != NULL && cfg->threads == 4);
	sg_config_free(cfg);

	REFUSED(edited("\"module\":", "\"concurrency\": 0, \"module\":"),
	    "pkcs11.concurrency");
	REFUSED(edited("\"module\":", "\"concurrency\": 257, \"module\":"),
	    "pkcs11.concurrency");
	REFUSED(edited("\"threads\": 4", "\"threads\": 0"), "threads");
	REFUSED(edited("\"threads\": 4", "\"threads\": 65"), "threads");
	REFUSED(edited("\"threads\": 4", "\"threads\": -1"), "threads");
	REFUSED(edited("\"threads\": 4", "\"connection_limit\": 0"),
	    "connection_limit");
	REFUSED(edited("\"threads\": 4", "\"connection_limit\": 100001"),
	    "connection_limit");
	REFUSED(edited("\"threads\": 4", "\"per_ip_connection_limit\": -1"),
	    "per_ip_connection_limit");
	REFUSED(edited("\"threads\": 4", "\"connection_timeout\": 0"),
	    "connection_timeout");
	REFUSED(edited("\"threads\": 4", "\"connection_timeout\": 3601"),
	    "connection_timeout");
}

/* Limits on peers without a certificate, deadlines, anonymous budget. */
static void
test_peer_limits(void)
{
	struct sg_config *cfg;

	cfg = LOADS(edited("\"threads\": 4,", "\"threads\": 4,"));
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_EQ_INT(cfg->unauth_connection_limit, 256);
		CHECK_EQ_INT(cfg->per_ip_unauth_limit, 32);
		CHECK_EQ_INT(cfg->handshake_timeout, 3);
		CHECK_EQ_INT(cfg->first_request_timeout, 5);
		CHECK_EQ_INT(cfg->request_timeout, 10);
		CHECK_EQ_INT(cfg->anon_rate_per_second, 100);
		CHECK_EQ_INT(cfg->anon_rate_burst, 200);
		sg_config_free(cfg);
	}
	cfg = LOADS(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"unauthenticated_connection_limit\": 10, "
	    "\"per_ip_unauthenticated_limit\": 0, \"handshake_timeout\": 60, "
	    "\"first_request_timeout\": 60, \"request_timeout\": 3600, "
	    "\"anonymous_rate_limit\": {\"per_second\": 0, \"burst\": 1},"));
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_EQ_INT(cfg->unauth_connection_limit, 10);
		CHECK_EQ_INT(cfg->per_ip_unauth_limit, 0);
		CHECK_EQ_INT(cfg->handshake_timeout, 60);
		CHECK_EQ_INT(cfg->first_request_timeout, 60);
		CHECK_EQ_INT(cfg->request_timeout, 3600);
		CHECK_EQ_INT(cfg->anon_rate_per_second, 0);
		CHECK_EQ_INT(cfg->anon_rate_burst, 1);
		sg_config_free(cfg);
	}
	/* A small connection_limit lowers the default cap with it. */
	cfg = LOADS(edited("\"threads\": 4,", "\"connection_limit\": 20,"));
	CHECK(cfg != NULL && cfg->unauth_connection_limit == 20);
	sg_config_free(cfg);

	REFUSED(edited("\"threads\": 4", "\"unauthenticated_connection_limit\": 0"),
	    "unauthenticated_connection_limit");
	REFUSED_WHY(edited("\"threads\": 4", "\"connection_limit\": 20, "
	    "\"unauthenticated_connection_limit\": 21"),
	    "unauthenticated_connection_limit", "connection_limit");
	REFUSED(edited("\"threads\": 4", "\"per_ip_unauthenticated_limit\": -1"),
	    "per_ip_unauthenticated_limit");
	REFUSED(edited("\"threads\": 4", "\"handshake_timeout\": 0"),
	    "handshake_timeout");
	REFUSED(edited("\"threads\": 4", "\"handshake_timeout\": 61"),
	    "handshake_timeout");
	REFUSED(edited("\"threads\": 4", "\"first_request_timeout\": 301"),
	    "first_request_timeout");
	REFUSED_WHY(edited("\"threads\": 4", "\"handshake_timeout\": 6, "
	    "\"first_request_timeout\": 5"), "first_request_timeout",
	    "handshake_timeout");
	REFUSED(edited("\"threads\": 4", "\"request_timeout\": 0"),
	    "request_timeout");
	REFUSED(edited("\"threads\": 4", "\"request_timeout\": \"10\""),
	    "request_timeout");
	REFUSED(edited("\"threads\": 4", "\"anonymous_rate_limit\": 5"),
	    "anonymous_rate_limit");
	REFUSED(edited("\"threads\": 4", "\"anonymous_rate_limit\": "
	    "{\"per_second\": 1, \"bust\": 2}"), "anonymous_rate_limit");
	REFUSED(edited("\"threads\": 4", "\"anonymous_rate_limit\": "
	    "{\"per_second\": 1, \"burst\": 0}"), "anonymous_rate_limit.burst");
	REFUSED(edited("\"threads\": 4", "\"handshake_timeot\": 3"), "(top)");
}

static void
test_port(void)
{
	struct sg_config *cfg;

	cfg = LOADS(edited("\"port\": 8443", "\"port\": 1"));
	CHECK(cfg != NULL && cfg->port == 1);
	sg_config_free(cfg);
	cfg = LOADS(edited("\"port\": 8443", "\"port\": 65535"));
	CHECK(cfg != NULL && cfg->port == 65535);
	sg_config_free(cfg);
	cfg = LOADS(edited(", \"port\": 8443", ""));
	CHECK(cfg != NULL && cfg->port == 8443);
	sg_config_free(cfg);

	REFUSED(edited("\"port\": 8443", "\"port\": 0"), "listen.port");
	REFUSED(edited("\"port\": 8443", "\"port\": 65536"), "listen.port");
	REFUSED(edited("\"port\": 8443", "\"port\": -443"), "listen.port");
	REFUSED(edited("\"port\": 8443", "\"port\": 4294975739"),
	    "listen.port");
	REFUSED(edited("\"port\": 8443", "\"port\": \"8443\""), "listen.port");
	REFUSED(edited("\"port\": 8443", "\"port\": 8443.0"), "listen.port");
	REFUSED(edited("\"port\": 8443", "\"port\": true"), "listen.port");
	REFUSED(edited("\"port\": 8443", "\"port\": null"), "listen.port");
}

static void
test_address(void)
{
	struct sg_config *cfg;

	cfg = LOADS(edited("127.0.0.1", "::1"));
	CHECK(cfg != NULL && strcmp(cfg->listen_address, "::1") == 0);
	sg_config_free(cfg);
	cfg = LOADS(edited("127.0.0.1", "0.0.0.0"));
	CHECK(cfg != NULL && strcmp(cfg->listen_address, "0.0.0.0") == 0);
	sg_config_free(cfg);

	REFUSED(edited("127.0.0.1", "localhost"), "listen.address");
	REFUSED(edited("127.0.0.1", "127.0.0.1 "), "listen.address");
	REFUSED(edited("127.0.0.1", "127.1"), "listen.address");
	REFUSED(edited("127.0.0.1", "[::1]"), "listen.address");
	REFUSED(edited("127.0.0.1", "256.0.0.1"), "listen.address");
	REFUSED(edited("\"127.0.0.1\"", "\"\""), "listen.address");
	REFUSED(edited("\"127.0.0.1\"", "2130706433"), "listen.address");
	REFUSED(edited("\"address\": \"127.0.0.1\", ", ""), "listen.address");
}

static void
test_unknown_fields(void)
{
	REFUSED_WHY(edited("\"threads\": 4,", "\"threads\": 4, \"thread\": 4,"),
	    "(top)", "'thread'");
	REFUSED_WHY(edited("\"port\": 8443", "\"port\": 8443, \"prot\": 1"),
	    "listen", "'prot'");
	REFUSED_WHY(edited("\"client_ca\": \"tls/ca.pem\"",
	    "\"client_ca\": \"tls/ca.pem\", \"ciphers\": \"ALL\""),
	    "tls", "'ciphers'");
	REFUSED_WHY(edited("\"module\":", "\"modul\": \"x\", \"module\":"),
	    "pkcs11", "'modul'");
	REFUSED_WHY(edited("\"label\": \"signgate-dev\",",
	    "\"label\": \"signgate-dev\", \"pin\": \"1234\","),
	    "pkcs11.tokens[0]", "'pin'");
	REFUSED_WHY(edited("\"key\": \"log\"", "\"key\": \"log\", \"kid\": 1"),
	    "log", "'kid'");
}

static void
test_duplicate_keys(void)
{
	char want[256];

	snprintf(want, sizeof(want), "%s:16:", cfgpath);
	REFUSED_WHY(edited("\"threads\": 4,", "\"threads\": 4, \"threads\": 5,"),
	    want, "\"threads\"");
	snprintf(want, sizeof(want), "%s:2:", cfgpath);
	REFUSED_WHY(edited("\"port\": 8443", "\"port\": 8443, \"port\": 8443"),
	    want, "\"port\"");
	snprintf(want, sizeof(want), "%s:17:", cfgpath);
	REFUSED_WHY(edited("\"key\": \"log\"", "\"key\": \"log\", \"key\": "
	    "\"log2\""), want, "\"key\"");
}

static void
test_wrong_types(void)
{
	char at[256];

	REFUSED("[]\n", "(top)");
	/* Not an object or array: refused by the parser, with the line. */
	snprintf(at, sizeof(at), "%s:1:", cfgpath);
	REFUSED("\"x\"\n", at);
	REFUSED(edited("{\"address\": \"127.0.0.1\", \"port\": 8443}",
	    "[\"127.0.0.1\", 8443]"), "listen");
	REFUSED(edited("\"address\": \"127.0.0.1\"", "\"address\": 127"),
	    "listen.address");
	REFUSED(edited("\"tls/server.pem\"", "[\"tls/server.pem\"]"),
	    "tls.certificate");
	REFUSED(edited("\"tls/server.key\"", "\"\""), "tls.private_key");
	REFUSED(edited("\"tls/ca.pem\"", "null"), "tls.client_ca");
	REFUSED(edited("\"/usr/lib/softhsm/libsofthsm2.so\"", "1"),
	    "pkcs11.module");
	REFUSED(edited("\"label\": \"signgate-dev\"", "\"label\": 5"),
	    "pkcs11.tokens[0].label");
	REFUSED(edited("\"pins/signgate-dev.pin\"", "true"),
	    "pkcs11.tokens[0]");
	REFUSED(edited("\"policy.conf\"", "1"), "policy");
	REFUSED(edited("\"state\"", "\"\""), "state_dir");
	REFUSED(edited("\"threads\": 4", "\"threads\": \"4\""), "threads");
	REFUSED(edited("\"threads\": 4", "\"threads\": 4.5"), "threads");
	REFUSED(edited("\"threads\": 4", "\"plain_http\": \"yes\""),
	    "plain_http");
	REFUSED(edited("\"threads\": 4", "\"plain_http\": 1"), "plain_http");
	REFUSED(edited("\"origin\": \"signgate.dev/log\"", "\"origin\": 1"),
	    "log.origin");
	REFUSED(edited("\"key\": \"log\"", "\"key\": {}"), "log.key");
	/* A string with an embedded NUL: refused by the parser. */
	snprintf(at, sizeof(at), "%s:11:", cfgpath);
	REFUSED(edited("\"label\": \"signgate-dev\"",
	    "\"label\": \"signgate\\u0000dev\""), at);
	snprintf(at, sizeof(at), "%s:14:", cfgpath);
	REFUSED(edited("\"policy.conf\"", "\"policy\\u0000.conf\""), at);
}

static void
test_required(void)
{
	REFUSED(edited("\"listen\": {\"address\": \"127.0.0.1\", "
	    "\"port\": 8443},", ""), "listen");
	REFUSED(edited("\"policy\": \"policy.conf\",", ""), "policy");
	REFUSED(edited("\"state_dir\": \"state\",", ""), "state_dir");
	REFUSED(edited("\"module\": \"/usr/lib/softhsm/libsofthsm2.so\",",
	    ""), "pkcs11.module");
	REFUSED(edited("\"certificate\": \"tls/server.pem\",", ""),
	    "tls.certificate");
	REFUSED(edited("\"tls\": {", "\"tlsx\": {"), "(top)");
}

static void
test_plain_http(void)
{
	struct sg_config *cfg;
	char text[4096];
	const char *e;

	/* Without TLS, on 127.0.0.1 only. */
	e = edited("\"tls\": {\n"
	    "    \"certificate\": \"tls/server.pem\",\n"
	    "    \"private_key\": \"tls/server.key\",\n"
	    "    \"client_ca\": \"tls/ca.pem\"\n"
	    "  },\n", "\"plain_http\": true,\n");
	snprintf(text, sizeof(text), "%s", e);
	cfg = LOADS(text);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_EQ_INT(cfg->plain_http, 1);
		CHECK(cfg->tls_certificate == NULL);
		CHECK(cfg->tls_private_key == NULL);
		CHECK(cfg->tls_client_ca == NULL);
		sg_config_free(cfg);
	}
	{
		char t2[4096];
		char *at = strstr(text, "127.0.0.1");
		CHECK(at != NULL);
		if (at == NULL)
			return;
		snprintf(t2, sizeof(t2), "%.*s0.0.0.0%s", (int)(at - text),
		    text, at + 9);
		REFUSED_WHY(t2, "plain_http", "127.0.0.1");
		snprintf(t2, sizeof(t2), "%.*s::1%s", (int)(at - text), text,
		    at + 9);
		REFUSED(t2, "plain_http");
		snprintf(t2, sizeof(t2), "%.*s192.0.2.1%s", (int)(at - text),
		    text, at + 9);
		REFUSED(t2, "plain_http");
	}
	/* plain_http with a tls section is a contradiction. */
	REFUSED(edited("\"threads\": 4", "\"plain_http\": true"), "tls");
	/* TLS is required otherwise. */
	e = edited("\"tls\": {\n"
	    "    \"certificate\": \"tls/server.pem\",\n"
	    "    \"private_key\": \"tls/server.key\",\n"
	    "    \"client_ca\": \"tls/ca.pem\"\n"
	    "  },\n", "\"plain_http\": false,\n");
	REFUSED(e, "tls");
}

static void
test_tokens(void)
{
	struct sg_config *cfg;
	char list[8192], text[16384], one[128], label[64];
	const char *e;
	size_t i, n;

	REFUSED(edited("[\n      {\"label\": \"signgate-dev\", \"pin_file\": "
	    "\"pins/signgate-dev.pin\"}\n    ]", "[]"), "pkcs11.tokens");
	REFUSED(edited("[\n      {\"label\": \"signgate-dev\", \"pin_file\": "
	    "\"pins/signgate-dev.pin\"}\n    ]", "{}"), "pkcs11.tokens");
	REFUSED(edited("\"tokens\": [", "\"tokenz\": ["), "pkcs11");
	REFUSED(edited("[\n      {\"label\": \"signgate-dev\"",
	    "[\"signgate-dev\", {\"label\": \"signgate-dev\""),
	    "pkcs11.tokens[0]");

	/* SG_CONFIG_MAX_TOKENS is accepted, one more is not. */
	for (n = SG_CONFIG_MAX_TOKENS; n <= SG_CONFIG_MAX_TOKENS + 1; n++) {
		list[0] = '\0';
		for (i = 0; i < n; i++) {
			if (i == 0)
				snprintf(one, sizeof(one), "{\"label\": "
				    "\"signgate-dev\", \"pin_file\": "
				    "\"pins/0.pin\"}");
			else
				snprintf(one, sizeof(one), ", {\"label\": "
				    "\"t%zu\", \"pin_file\": \"pins/%zu.pin\"}",
				    i, i);
			strncat(list, one, sizeof(list) - strlen(list) - 1);
		}
		snprintf(text, sizeof(text), "%s", edited("{\"label\": "
		    "\"signgate-dev\", \"pin_file\": "
		    "\"pins/signgate-dev.pin\"}", list));
		if (n == SG_CONFIG_MAX_TOKENS) {
			cfg = LOADS(text);
			CHECK(cfg != NULL);
			if (cfg != NULL) {
				CHECK_EQ_INT(cfg->ntokens, n);
				CHECK_STR(cfg->tokens[n - 1].label, "t15");
				CHECK_STR(cfg->tokens[n - 1].pin_file,
				    in_tmp("pins/15.pin"));
				sg_config_free(cfg);
			}
		} else
			REFUSED(text, "pkcs11.tokens");
	}

	/* An error in the second token names it. */
	REFUSED(edited("\"pin_file\": \"pins/signgate-dev.pin\"}",
	    "\"pin_file\": \"pins/signgate-dev.pin\"}, {\"label\": \"b\"}"),
	    "pkcs11.tokens[1]");

	/* Label length: 32 bytes fit, 33 do not. */
	memset(label, 'L', 32);
	label[32] = '\0';
	snprintf(one, sizeof(one), "\"label\": \"%s\"", label);
	snprintf(text, sizeof(text), "%s", edited("\"label\": "
	    "\"signgate-dev\"", one));
	{
		/* log.token must follow the label. */
		char t2[16384];
		char *at = strstr(text, "\"token\": \"signgate-dev\"");
		CHECK(at != NULL);
		if (at != NULL) {
			snprintf(t2, sizeof(t2), "%.*s\"token\": \"%s\"%s",
			    (int)(at - text), text, label, at + 23);
			cfg = LOADS(t2);
			CHECK(cfg != NULL && strcmp(cfg->tokens[0].label,
			    label) == 0 && strcmp(cfg->log_token, label) == 0);
			sg_config_free(cfg);
		}
	}
	snprintf(one, sizeof(one), "\"label\": \"%sL\"", label);
	REFUSED(edited("\"label\": \"signgate-dev\"", one),
	    "pkcs11.tokens[0].label");
	REFUSED(edited("\"label\": \"signgate-dev\", ", ""),
	    "pkcs11.tokens[0].label");

	/* Neither or both PIN sources. */
	e = edited(", \"pin_file\": \"pins/signgate-dev.pin\"", "");
	REFUSED_WHY(e, "pkcs11.tokens[0]", "pin_file");
	e = edited("\"pin_file\": \"pins/signgate-dev.pin\"",
	    "\"pin_file\": \"pins/signgate-dev.pin\", \"pin_credential\": "
	    "\"signgate-dev.pin\"");
	setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x", 1);
	REFUSED_WHY(e, "pkcs11.tokens[0]", "pin_credential");
	unsetenv("CREDENTIALS_DIRECTORY");
	REFUSED(e, "pkcs11.tokens[0]");
}

static void
test_pin_credential(void)
{
	struct sg_config *cfg;
	const char *e;

	e = edited("\"pin_file\": \"pins/signgate-dev.pin\"",
	    "\"pin_credential\": \"signgate-dev.pin\"");
	unsetenv("CREDENTIALS_DIRECTORY");
	REFUSED_WHY(e, "pkcs11.tokens[0]", "CREDENTIALS_DIRECTORY");

	setenv("CREDENTIALS_DIRECTORY", "/run/credentials/signgated.service",
	    1);
	cfg = LOADS(e);
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->tokens[0].pin_file,
		    "/run/credentials/signgated.service/signgate-dev.pin");
		sg_config_free(cfg);
	}
	/* A name, never a path. */
	REFUSED_WHY(edited("\"pin_file\": \"pins/signgate-dev.pin\"",
	    "\"pin_credential\": \"../signgate-dev.pin\""),
	    "pkcs11.tokens[0]", "pin_credential");
	REFUSED(edited("\"pin_file\": \"pins/signgate-dev.pin\"",
	    "\"pin_credential\": \"/etc/shadow\""), "pkcs11.tokens[0]");
	REFUSED(edited("\"pin_file\": \"pins/signgate-dev.pin\"",
	    "\"pin_credential\": \"a/b\""), "pkcs11.tokens[0]");
	REFUSED(edited("\"pin_file\": \"pins/signgate-dev.pin\"",
	    "\"pin_credential\": \"\""), "pkcs11.tokens[0]");
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void
test_log(void)
{
	struct sg_config *cfg;
	char origin[300], one[400];

	REFUSED(edited(",\n  \"log\": {\"origin\": \"signgate.dev/log\", "
	    "\"token\": \"signgate-dev\", \"key\": \"log\"}", ""), "log");
	REFUSED(edited("{\"origin\": \"signgate.dev/log\", \"token\": "
	    "\"signgate-dev\", \"key\": \"log\"}", "\"signgate.dev/log\""),
	    "log");
	REFUSED_WHY(edited("\"token\": \"signgate-dev\"", "\"token\": \"other\""),
	    "log.token", "other");
	REFUSED(edited("\"token\": \"signgate-dev\", ", ""), "log.token");
	REFUSED(edited(", \"key\": \"log\"", ""), "log.key");
	REFUSED(edited("\"origin\": \"signgate.dev/log\", ", ""),
	    "log.origin");
	REFUSED(edited("signgate.dev/log", "signgate.dev log"), "log.origin");
	REFUSED(edited("signgate.dev/log", "signgate.dev+log"), "log.origin");
	REFUSED(edited("signgate.dev/log", "signgate.dev\\tlog"),
	    "log.origin");
	REFUSED(edited("signgate.dev/log", "signgate.dev/l\\u00f6g"),
	    "log.origin");
	REFUSED(edited("signgate.dev/log", "signgate.dev/log\\u007f"),
	    "log.origin");
	REFUSED(edited("signgate.dev/log", ""), "log.origin");

	/* 255 bytes fit, 256 do not. */
	memset(origin, 'o', 255);
	origin[255] = '\0';
	snprintf(one, sizeof(one), "\"origin\": \"%s\"", origin);
	cfg = LOADS(edited("\"origin\": \"signgate.dev/log\"", one));
	CHECK(cfg != NULL && strlen(cfg->log_origin) == 255);
	sg_config_free(cfg);
	snprintf(one, sizeof(one), "\"origin\": \"%so\"", origin);
	REFUSED(edited("\"origin\": \"signgate.dev/log\"", one),
	    "log.origin");

	/* log.key: 63 bytes fit, 64 do not. */
	memset(origin, 'k', 63);
	origin[63] = '\0';
	snprintf(one, sizeof(one), "\"key\": \"%s\"", origin);
	cfg = LOADS(edited("\"key\": \"log\"", one));
	CHECK(cfg != NULL && strcmp(cfg->log_key, origin) == 0);
	sg_config_free(cfg);
	snprintf(one, sizeof(one), "\"key\": \"%sk\"", origin);
	REFUSED(edited("\"key\": \"log\"", one), "log.key");

	/* Printable ASCII punctuation other than '+' is fine. */
	cfg = LOADS(edited("signgate.dev/log", "example.com/log-1_a~b"));
	CHECK(cfg != NULL && strcmp(cfg->log_origin,
	    "example.com/log-1_a~b") == 0);
	sg_config_free(cfg);
}

static void
test_malformed_json(void)
{
	struct sg_config *cfg = NULL;
	char err[1024], want[256];
	int r;

	/* A stray comma on line 16. */
	r = load_text(edited("\"threads\": 4,", "\"threads\": 4,,"), &cfg,
	    err, sizeof(err));
	CHECK_EQ_INT(r, SG_ERR_INVALID);
	CHECK(cfg == NULL);
	snprintf(want, sizeof(want), "%s:16:", cfgpath);
	CHECK(strncmp(err, want, strlen(want)) == 0);
	if (strncmp(err, want, strlen(want)) != 0)
		fprintf(stderr, "  err \"%s\", wanted prefix \"%s\"\n", err,
		    want);

	/* Unterminated object: an error at the end. */
	r = load_text("{\n\"listen\": {\n", &cfg, err, sizeof(err));
	CHECK_EQ_INT(r, SG_ERR_INVALID);
	CHECK(strncmp(err, cfgpath, strlen(cfgpath)) == 0);
	/* Trailing data after the object. */
	{
		char text[4096];
		snprintf(text, sizeof(text), "%s{}\n", base);
		r = load_text(text, &cfg, err, sizeof(err));
		CHECK_EQ_INT(r, SG_ERR_INVALID);
		snprintf(want, sizeof(want), "%s:19:", cfgpath);
		CHECK(strncmp(err, want, strlen(want)) == 0);
	}
	/* Empty file. */
	r = load_text("", &cfg, err, sizeof(err));
	CHECK_EQ_INT(r, SG_ERR_INVALID);
	CHECK(strncmp(err, cfgpath, strlen(cfgpath)) == 0);
	CHECK(cfg == NULL);

	/* A small error buffer is filled and terminated, not overrun. */
	{
		char small[24];
		memset(small, 'X', sizeof(small));
		r = load_text("[]", &cfg, small, 16);
		CHECK_EQ_INT(r, SG_ERR_INVALID);
		CHECK_EQ_INT(strlen(small), 15);
		CHECK_EQ_INT(small[16], 'X');
	}
}

static void
test_file_errors(void)
{
	struct sg_config *cfg = NULL;
	char err[1024], missing[PATH_MAX], big[128];
	size_t n = 300 * 1024;
	char *text;
	int r;

	/* Too large, even though it is valid JSON (spaces before it). */
	if ((text = malloc(n + sizeof(base))) == NULL) {
		CHECK(!"malloc");
		return;
	}
	memset(text, ' ', n);
	memcpy(text + n, base, sizeof(base));
	r = load_text(text, &cfg, err, sizeof(err));
	CHECK_EQ_INT(r, SG_ERR_TOO_LARGE);
	CHECK(cfg == NULL);
	CHECK(strncmp(err, cfgpath, strlen(cfgpath)) == 0);
	/* The same text below the cap loads. */
	cfg = LOADS(text + n - 1000);
	CHECK(cfg != NULL);
	sg_config_free(cfg);
	free(text);

	/* Missing. */
	snprintf(missing, sizeof(missing), "%s/nope.json", tmpdir);
	cfg = NULL;
	err[0] = '\0';
	r = sg_config_load(missing, &cfg, err, sizeof(err));
	CHECK_EQ_INT(r, SG_ERR_NOT_FOUND);
	CHECK(cfg == NULL);
	CHECK(strncmp(err, missing, strlen(missing)) == 0);

	/* A directory. */
	snprintf(big, sizeof(big), "%s/tls", tmpdir);
	err[0] = '\0';
	r = sg_config_load(big, &cfg, err, sizeof(err));
	CHECK(r < 0);
	CHECK(cfg == NULL);
	CHECK(strncmp(err, big, strlen(big)) == 0);
}

static void
test_relative_config_path(void)
{
	struct sg_config *cfg = NULL;
	char cwd[PATH_MAX], sub[PATH_MAX], err[1024];
	int r;

	if (getcwd(cwd, sizeof(cwd)) == NULL) {
		CHECK(!"getcwd");
		return;
	}
	snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
	CHECK(mkdir(sub, 0700) == 0);
	snprintf(sub, sizeof(sub), "%s/sub/signgated.json", tmpdir);
	CHECK(write_text(sub, base, strlen(base)) == 0);
	CHECK(chdir(tmpdir) == 0);

	r = sg_config_load("sub/signgated.json", &cfg, err, sizeof(err));
	CHECK_EQ_INT(r, 0);
	if (r == 0) {
		CHECK_STR(cfg->tls_certificate, "sub/tls/server.pem");
		CHECK_STR(cfg->tokens[0].pin_file,
		    "sub/pins/signgate-dev.pin");
		CHECK_STR(cfg->state_dir, "sub/state");
		CHECK_STR(cfg->pkcs11_module,
		    "/usr/lib/softhsm/libsofthsm2.so");
		sg_config_free(cfg);
	}
	cfg = NULL;
	r = sg_config_load("signgated.json", &cfg, err, sizeof(err));
	CHECK_EQ_INT(r, 0);
	if (r == 0) {
		/* Still relative to the file's own directory. */
		CHECK(strcmp(cfg->policy_path, "policy.conf") == 0 ||
		    strcmp(cfg->policy_path, "./policy.conf") == 0);
		sg_config_free(cfg);
	}
	CHECK(chdir(cwd) == 0);
}

static void
test_dev_config_if_present(void)
{
	struct sg_config *cfg = NULL;
	char err[1024];
	int r;

	/* The real development configuration, when `make devenv` has run. */
	if (access("var/dev/signgated.json", R_OK) != 0)
		return;
	r = sg_config_load("var/dev/signgated.json", &cfg, err, sizeof(err));
	CHECK_EQ_INT(r, 0);
	if (r != 0) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_STR(cfg->tls_client_ca, "var/dev/tls/ca.pem");
	CHECK(cfg->ntokens >= 1);
	sg_config_free(cfg);
}

/*
 * The loader's table of numeric settings is what docs/OPERATIONS.md
 * promises: each setting has exactly one row "| `name` | default |
 * range | ... |" there, whose default is the table's and whose range
 * reads "min–max" (with the unit, for seconds and milliseconds).  Run
 * from the source tree, as make test does.
 */
static void
test_numbers_match_operations_md(void)
{
	const struct sg_config_number *n;
	char *doc = NULL, row[128], range[64], cell[64];
	const char *at, *next, *cells;
	size_t len = 0, i, count, nn;
	unsigned long def;
	int r;

	r = sg_read_file("docs/OPERATIONS.md", 1024 * 1024, &doc, &len);
	CHECK_EQ_INT(r, 0);
	if (r != 0) {
		fprintf(stderr, "  docs/OPERATIONS.md not found: run the test "
		    "from the source tree\n");
		return;
	}
	n = sg_config_numbers(&nn);
	CHECK(nn >= 16);
	for (i = 0; i < nn; i++) {
		snprintf(row, sizeof(row), "\n| `%s` | ", n[i].name);
		count = 0;
		for (at = strstr(doc, row); at != NULL;
		    at = strstr(at + 1, row))
			count++;
		if (count != 1)
			fprintf(stderr, "  %s: %zu rows\n", n[i].name, count);
		CHECK_EQ_INT(count, 1);
		if ((at = strstr(doc, row)) == NULL)
			continue;
		cells = at + strlen(row);
		/* The default: the cell's leading number. */
		def = strtoul(cells, NULL, 10);
		if (def != n[i].def)
			fprintf(stderr, "  %s: the document says %lu, the "
			    "loader %u\n", n[i].name, def, n[i].def);
		CHECK_EQ_INT(def, n[i].def);
		/* The range: the next cell. */
		if ((next = strstr(cells, " | ")) == NULL)
			continue;
		next += 3;
		snprintf(cell, sizeof(cell), "%.*s",
		    (int)strcspn(next, "|\n"), next);
		if (strcmp(n[i].unit, "s") == 0 ||
		    strcmp(n[i].unit, "ms") == 0)
			snprintf(range, sizeof(range), "%u\u2013%u %s",
			    n[i].min, n[i].max, n[i].unit);
		else
			snprintf(range, sizeof(range), "%u\u2013%u", n[i].min,
			    n[i].max);
		if (strncmp(cell, range, strlen(range)) != 0)
			fprintf(stderr, "  %s: the document says '%s', the "
			    "loader '%s'\n", n[i].name, cell, range);
		CHECK(strncmp(cell, range, strlen(range)) == 0);
	}
	free(doc);
}

/* Every numeric setting takes its default when absent, and its bounds
 * but not one past them, as the table says. */
static void
test_numbers_table_drives_loader(void)
{
	const struct sg_config_number *n;
	struct sg_config *cfg = NULL;
	char err[512], text[1024];
	size_t i, nn;
	unsigned v;

	n = sg_config_numbers(&nn);
	CHECK_EQ_INT(load_text(base, &cfg, err, sizeof(err)), 0);
	for (i = 0; cfg != NULL && i < nn; i++) {
		if (strchr(n[i].name, '[') != NULL ||
		    strcmp(n[i].name, "listen.port") == 0)
			continue;
		v = n[i].type == SG_CONFIG_U16 ?
		    *(uint16_t *)(void *)((char *)cfg + n[i].offset) :
		    *(unsigned *)(void *)((char *)cfg + n[i].offset);
		if (n[i].def_at_most == NULL)
			CHECK_EQ_INT(v, n[i].def);
	}
	sg_config_free(cfg);
	/* One past the top of each top-level range is refused by name. */
	for (i = 0; i < nn; i++) {
		char want[256];

		if (strchr(n[i].name, '.') != NULL ||
		    strchr(n[i].name, '[') != NULL)
			continue;
		if (strcmp(n[i].name, "threads") == 0)
			snprintf(text, sizeof(text), "\"threads\": %u",
			    n[i].max + 1);
		else
			snprintf(text, sizeof(text), "\"threads\": 4, "
			    "\"%s\": %u", n[i].name, n[i].max + 1);
		cfg = NULL;
		err[0] = '\0';
		CHECK_EQ_INT(load_text(edited("\"threads\": 4", text), &cfg,
		    err, sizeof(err)), SG_ERR_INVALID);
		snprintf(want, sizeof(want), ": %s: must be an integer from "
		    "%u to %u", n[i].name, n[i].min, n[i].max);
		if (strstr(err, want) == NULL)
			fprintf(stderr, "  %s: %s\n", n[i].name, err);
		CHECK(strstr(err, want) != NULL);
		sg_config_free(cfg);
	}
}

static void
test_users(void)
{
	struct sg_config *cfg;

	cfg = LOADS(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"users\": {\"front\": \"gw\", \"signer\": \"gw-hsm\"}, "
	    "\"signer_state_dir\": \"/var/lib/gw-hsm\","));
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->front_user, "gw");
		CHECK_STR(cfg->signer_user, "gw-hsm");
		CHECK_STR(cfg->signer_state_dir, "/var/lib/gw-hsm");
		sg_config_free(cfg);
	}
	REFUSED(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"users\": {\"front\": \"gw\", \"signer\": \"gw\"},"),
	    "users");
	REFUSED(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"users\": {\"front\": \"a b\"},"), "users.front");
	REFUSED(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"users\": {\"signer\": \"-x\"},"), "users.signer");
	REFUSED(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"users\": {\"root\": \"x\"},"), "users");
	/* The front owns state_dir: the signer's records never live there. */
	REFUSED(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"signer_state_dir\": \"state/hsm\","), "signer_state_dir");
	REFUSED(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"signer_state_dir\": \"state\","), "signer_state_dir");
	cfg = LOADS(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"signer_state_dir\": \"statehsm\","));
	CHECK(cfg != NULL);
	sg_config_free(cfg);
}

/* signer_socket: the signer in its own process, reached over a socket. */
static void
test_signer_socket(void)
{
	struct sg_config *cfg;
	char longpath[200];
	const char *e;

	cfg = LOADS(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"signer_socket\": \"run/signer.sock\","));
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_STR(cfg->signer_socket, in_tmp("run/signer.sock"));
		sg_config_free(cfg);
	}
	cfg = LOADS(edited("\"threads\": 4,", "\"threads\": 4,"));
	CHECK(cfg != NULL && cfg->signer_socket == NULL);
	sg_config_free(cfg);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[108] = '\0';
	{
		char field[300];
		snprintf(field, sizeof(field), "\"threads\": 4, "
		    "\"signer_socket\": \"%s\",", longpath);
		REFUSED_WHY(edited("\"threads\": 4,", field), "signer_socket",
		    "107");
	}
	REFUSED(edited("\"threads\": 4,", "\"threads\": 4, "
	    "\"signer_socket\": 7,"), "signer_socket");

	/* The front of a separate signer has no credentials: a
	 * pin_credential is left for the signer (an empty pin_file); the
	 * signer's own start refuses that (signgated --signer). */
	unsetenv("CREDENTIALS_DIRECTORY");
	e = edited("\"pin_file\": \"pins/signgate-dev.pin\"",
	    "\"pin_credential\": \"signgate-dev.pin\"");
	REFUSED_WHY(e, "pkcs11.tokens[0]", "CREDENTIALS_DIRECTORY");
	{
		char *t = strdup(e), buf[4096];
		const char *at = t != NULL ? strstr(t, "\"threads\": 4,") : NULL;
		CHECK(at != NULL);
		if (at != NULL) {
			snprintf(buf, sizeof(buf), "%.*s\"signer_socket\": "
			    "\"/run/signgate-hsm/signer.sock\", %s",
			    (int)(at - t), t, at);
			cfg = LOADS(buf);
			CHECK(cfg != NULL);
			if (cfg != NULL) {
				CHECK_STR(cfg->tokens[0].pin_file, "");
				sg_config_free(cfg);
			}
			setenv("CREDENTIALS_DIRECTORY",
			    "/run/credentials/signgated-signer.service", 1);
			cfg = LOADS(buf);
			CHECK(cfg != NULL);
			if (cfg != NULL) {
				CHECK_STR(cfg->tokens[0].pin_file,
				    "/run/credentials/signgated-signer.service/"
				    "signgate-dev.pin");
				sg_config_free(cfg);
			}
			unsetenv("CREDENTIALS_DIRECTORY");
		}
		free(t);
	}
}

static void
test_setup(void)
{
	if (sg_fx_tmpdir("config", tmpdir, sizeof(tmpdir)) != 0)
		exit(2);
	snprintf(cfgpath, sizeof(cfgpath), "%s/signgated.json", tmpdir);
	unsetenv("CREDENTIALS_DIRECTORY");
	/* The files the configuration names, as in var/dev. */
	CHECK(mkdir(in_tmp("tls"), 0700) == 0);
	CHECK(mkdir(in_tmp("pins"), 0700) == 0);
	CHECK(mkdir(in_tmp("state"), 0700) == 0);
	CHECK(sg_write_file(in_tmp("tls/server.pem"), "cert\n", 5, 0644) == 0);
	CHECK(sg_write_file(in_tmp("tls/server.key"), "key\n", 4, 0600) == 0);
	CHECK(sg_write_file(in_tmp("tls/ca.pem"), "ca\n", 3, 0644) == 0);
	CHECK(sg_write_file(in_tmp("pins/signgate-dev.pin"), "1234\n", 5,
	    0600) == 0);
	CHECK(sg_write_file(in_tmp("policy.conf"), "\n", 1, 0644) == 0);
}

/* store.conninfo holds no secret: the password comes from a file of its
 * own, and whatever else libpq would read as one is refused too; a
 * refusal never repeats the value. */
static void
test_conninfo_secrets(void)
{
	static const char *const refused[] = {
		"host=/run/pg dbname=signgate password=hunter2",
		"host=/run/pg passfile=/etc/pgpass dbname=signgate",
		"host=db.example sslmode=verify-full sslkey=/k.pem "
		    "sslpassword=hunter2",
		"postgresql://signgate:hunter2@db.example/signgate",
	};
	char err[512];
	size_t i;

	CHECK_EQ_INT(sg_conninfo_check("host=/run/pg dbname=signgate "
	    "user=signgate", err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_conninfo_check("postgresql://signgate@db.example/"
	    "signgate?sslmode=verify-full", err, sizeof(err)), 0);
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(sg_conninfo_check(refused[i], err, sizeof(err)),
		    SG_ERR_FORBIDDEN);
		CHECK(strstr(err, "must not hold") != NULL);
		CHECK(strstr(err, "hunter2") == NULL);
	}
	CHECK_EQ_INT(sg_conninfo_check("host='unterminated", err,
	    sizeof(err)), SG_ERR_INVALID);
}

/* "notify": webhooks, each refused by the field at fault. */
#define NOTIFY_AT "\"threads\": 4,"
static const char *
with_notify(const char *notify)
{
	static char text[2048];

	snprintf(text, sizeof(text), "\"threads\": 4, \"notify\": %s,",
	    notify);
	return edited(NOTIFY_AT, text);
}

static void
test_notify(void)
{
	struct sg_config *cfg;

	cfg = LOADS(base);
	CHECK(cfg != NULL && cfg->notify.nwebhooks == 0);
	sg_config_free(cfg);
	cfg = LOADS(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"https://hooks.example/x\", \"secret_file\": "
	    "\"ops.hmac\", \"events\": [\"request.*\", \"release.signed\"]}, "
	    "{\"name\": \"chat\", \"url\": \"http://127.0.0.1:9/\", "
	    "\"secret_file\": \"/etc/c.hmac\", \"format\": \"slack\", "
	    "\"ca_file\": \"ca.pem\"}], \"retry_max_seconds\": 2}"));
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_EQ_INT(cfg->notify.nwebhooks, 2);
		CHECK_STR(cfg->notify.webhooks[0].name, "ops");
		CHECK_EQ_INT(cfg->notify.webhooks[0].format, SG_WEBHOOK_JSON);
		CHECK_STR(cfg->notify.webhooks[0].secret_file,
		    in_tmp("ops.hmac"));
		CHECK_EQ_INT(cfg->notify.webhooks[0].nevents, 2);
		CHECK_STR(cfg->notify.webhooks[0].events[1], "release.signed");
		CHECK(cfg->notify.webhooks[0].ca_file == NULL);
		CHECK_EQ_INT(cfg->notify.webhooks[1].format, SG_WEBHOOK_SLACK);
		CHECK_STR(cfg->notify.webhooks[1].secret_file, "/etc/c.hmac");
		CHECK_STR(cfg->notify.webhooks[1].ca_file, in_tmp("ca.pem"));
		CHECK_EQ_INT(cfg->notify.webhooks[1].nevents, 0);
		CHECK_EQ_INT(cfg->notify.retry_max_seconds, 2);
	}
	sg_config_free(cfg);

	REFUSED_WHY(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"ftp://h/x\", \"secret_file\": \"s\"}]}"),
	    "notify.webhooks[0]", "http:// or https://");
	REFUSED_WHY(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"https://h/a b\", \"secret_file\": \"s\"}]}"),
	    "notify.webhooks[0]", "url holds a space or a control character");
	REFUSED_WHY(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"https://h/x\", \"secret_file\": \"s\", \"format\": "
	    "\"xml\"}]}"), "notify.webhooks[0]", "format");
	REFUSED_WHY(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"https://h/x\", \"secret_file\": \"s\", \"secret\": "
	    "\"x\"}]}"), "notify.webhooks[0]", "unknown field 'secret'");
	REFUSED_WHY(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"https://h/x\"}]}"), "notify.webhooks[0]",
	    "is required");
	REFUSED_WHY(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"https://h/x\", \"secret_file\": \"s\"}, {\"name\": "
	    "\"ops\", \"url\": \"https://h/y\", \"secret_file\": \"s\"}]}"),
	    "notify.webhooks[1]", "twice");
	REFUSED_WHY(with_notify("{\"webhooks\": [{\"name\": \"ops\", "
	    "\"url\": \"https://h/x\", \"secret_file\": \"s\", \"events\": "
	    "[\"request created\"]}]}"), "notify.webhooks[0].events[0]",
	    "event type");
	REFUSED(with_notify("{\"webhooks\": []}"), "notify.webhooks");
	REFUSED_WHY(with_notify("{\"webhooks\": [], \"hooks\": 1}"),
	    "notify", "unknown field 'hooks'");
	REFUSED(with_notify("{\"webhooks\": [{\"name\": \"ops\", \"url\": "
	    "\"https://h/x\", \"secret_file\": \"s\"}], "
	    "\"retry_max_seconds\": 0}"), "notify.retry_max_seconds");
}

/* "witnesses": the list, the quorum within it, the mode, each field
 * refused by name. */
static const char *
with_witnesses(const char *w)
{
	static char text[4096];

	snprintf(text, sizeof(text), "\"threads\": 4, \"witnesses\": %s,", w);
	return edited(NOTIFY_AT, text);
}

static void
test_witnesses(void)
{
	struct sg_config *cfg;
	uint8_t pub1[32], pub2[32];
	char *v1 = NULL, *v2 = NULL, *v3 = NULL, *logkey = NULL;
	char text[2048], two[1800];
	size_t i;

	for (i = 0; i < 32; i++) {
		pub1[i] = (uint8_t)(i + 1);
		pub2[i] = (uint8_t)(i + 101);
	}
	if (sg_cosig_vkey_format("w1.example", pub1, &v1) != 0 ||
	    sg_cosig_vkey_format("w2.example", pub2, &v2) != 0 ||
	    sg_cosig_vkey_format("w3.example", pub1, &v3) != 0 ||
	    sg_note_vkey_format("w1.example", pub1, &logkey) != 0)
		abort();
	cfg = LOADS(base);
	CHECK(cfg != NULL && cfg->witnesses.n == 0);
	sg_config_free(cfg);

	snprintf(two, sizeof(two), "[{\"name\": \"w1.example\", \"url\": "
	    "\"http://127.0.0.1:9001\", \"vkey\": \"%s\"}, {\"name\": "
	    "\"w2.example\", \"url\": \"https://w2.example/\", \"vkey\": "
	    "\"%s\", \"ca_file\": \"w2.pem\"}]", v1, v2);
	snprintf(text, sizeof(text), "{\"quorum\": 2, \"list\": %s}", two);
	cfg = LOADS(with_witnesses(text));
	CHECK(cfg != NULL);
	if (cfg != NULL) {
		CHECK_EQ_INT(cfg->witnesses.n, 2);
		CHECK_EQ_INT(cfg->witnesses.quorum, 2);
		CHECK_EQ_INT(cfg->witnesses.mode, SG_WITNESS_FAIL_CLOSED);
		CHECK_EQ_INT(cfg->witnesses.timeout_ms, 5000);
		CHECK_STR(cfg->witnesses.list[0].name, "w1.example");
		CHECK(memcmp(cfg->witnesses.list[0].pub, pub1, 32) == 0);
		CHECK_EQ_INT(cfg->witnesses.list[0].id,
		    sg_cosig_key_id("w1.example", pub1));
		CHECK(cfg->witnesses.list[0].ca_file == NULL);
		CHECK_STR(cfg->witnesses.list[1].ca_file, in_tmp("w2.pem"));
	}
	sg_config_free(cfg);
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"mode\": "
	    "\"best-effort\", \"timeout_ms\": 250, \"list\": %s}", two);
	cfg = LOADS(with_witnesses(text));
	CHECK(cfg != NULL && cfg->witnesses.mode == SG_WITNESS_BEST_EFFORT &&
	    cfg->witnesses.timeout_ms == 250 && cfg->witnesses.quorum == 1);
	sg_config_free(cfg);

	snprintf(text, sizeof(text), "{\"list\": %s}", two);
	REFUSED_WHY(with_witnesses(text), "witnesses.quorum", "is required");
	snprintf(text, sizeof(text), "{\"quorum\": 3, \"list\": %s}", two);
	REFUSED_WHY(with_witnesses(text), "witnesses.quorum", "from 1 to 2");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"mode\": \"maybe\", "
	    "\"list\": %s}", two);
	REFUSED(with_witnesses(text), "witnesses.mode");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"timeout_ms\": 10, "
	    "\"list\": %s}", two);
	REFUSED(with_witnesses(text), "witnesses.timeout_ms");
	REFUSED(with_witnesses("{\"quorum\": 1, \"list\": []}"),
	    "witnesses.list");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"list\": "
	    "[{\"name\": \"w1.example\", \"url\": \"http://h\", "
	    "\"vkey\": \"%s\"}]}", logkey);
	REFUSED_WHY(with_witnesses(text), "witnesses.list[0].vkey",
	    "witness verifier key");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"list\": "
	    "[{\"name\": \"w9.example\", \"url\": \"http://h\", "
	    "\"vkey\": \"%s\"}]}", v1);
	REFUSED_WHY(with_witnesses(text), "witnesses.list[0].name",
	    "not the name in the vkey");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"list\": "
	    "[{\"name\": \"w1.example\", \"url\": \"ftp://h\", "
	    "\"vkey\": \"%s\"}]}", v1);
	REFUSED(with_witnesses(text), "witnesses.list[0].url");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"list\": "
	    "[{\"name\": \"w1.example\", \"url\": \"http://h/a\\tb\", "
	    "\"vkey\": \"%s\"}]}", v1);
	REFUSED_WHY(with_witnesses(text), "witnesses.list[0].url",
	    "without spaces");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"list\": "
	    "[{\"name\": \"w1.example\", \"url\": \"http://h\", "
	    "\"vkey\": \"%s\"}, {\"name\": \"w3.example\", \"url\": "
	    "\"http://i\", \"vkey\": \"%s\"}]}", v1, v3);
	REFUSED_WHY(with_witnesses(text), "witnesses.list[1]",
	    "also the key of");
	snprintf(text, sizeof(text), "{\"quorum\": 1, \"list\": "
	    "[{\"name\": \"w1.example\", \"url\": \"http://h\", "
	    "\"vkey\": \"%s\", \"key\": 1}]}", v1);
	REFUSED_WHY(with_witnesses(text), "witnesses.list[0]",
	    "unknown field 'key'");
	free(v1);
	free(v2);
	free(v3);
	free(logkey);
}

/* The officers' console: absent by default; listen, rp_id and origin
 * checked. */
static void
test_console(void)
{
	static const char *const at = "  \"threads\": 4,\n";
	struct sg_config *cfg;
	char text[4096];

	if ((cfg = LOADS(base)) != NULL) {
		CHECK_EQ_INT(cfg->console.enabled, 0);
		sg_config_free(cfg);
	}
	snprintf(text, sizeof(text), "%s", edited(at, "  \"threads\": 4,\n"
	    "  \"console\": {\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:8444\"},\n"));
	if ((cfg = LOADS(text)) != NULL) {
		CHECK_EQ_INT(cfg->console.enabled, 1);
		CHECK_STR(cfg->console.listen_address, "127.0.0.1");
		CHECK_EQ_INT(cfg->console.port, 8444);
		CHECK_STR(cfg->console.rp_id, "localhost");
		CHECK_STR(cfg->console.origin, "https://localhost:8444");
		sg_config_free(cfg);
	}
	snprintf(text, sizeof(text), "%s", edited(at, "  \"threads\": 4,\n"
	    "  \"console\": {\"listen\": \"[::1]:443\", \"rp_id\": "
	    "\"example.com\", \"origin\": \"https://sign.example.com\"},\n"));
	if ((cfg = LOADS(text)) != NULL) {
		CHECK_STR(cfg->console.listen_address, "::1");
		CHECK_EQ_INT(cfg->console.port, 443);
		sg_config_free(cfg);
	}
#define CONSOLE(body) edited(at, "  \"threads\": 4,\n  \"console\": " \
	body ",\n")
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"localhost\"}"), "console.origin");
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:8444\", "
	    "\"x\": 1}"), "console");
	REFUSED(CONSOLE("{\"listen\": \"localhost:8444\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:8444\"}"),
	    "console.listen");
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:8444\"}"),
	    "console.listen");
	REFUSED(CONSOLE("{\"listen\": \"::1:8444\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:8444\"}"),
	    "console.listen");
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"Local_Host\", \"origin\": \"https://localhost:8444\"}"),
	    "console.rp_id");
	/* The origin: https, the RP ID or below it, nothing after. */
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"http://localhost:8444\"}"),
	    "console.origin");
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"example.com\", \"origin\": \"https://badexample.com\"}"),
	    "console.origin");
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:8444/\"}"),
	    "console.origin");
	REFUSED(CONSOLE("{\"listen\": \"127.0.0.1:8444\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:08444\"}"),
	    "console.origin");
	REFUSED(CONSOLE("[]"), "console");
	REFUSED_WHY(CONSOLE("{\"listen\": \"127.0.0.1:8443\", \"rp_id\": "
	    "\"localhost\", \"origin\": \"https://localhost:8443\"}"),
	    "console.listen", "of its own");
#undef CONSOLE
}

static void
test_teardown(void)
{
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

SG_TEST_MAIN("config",
    T(test_setup),
    T(test_valid),
    T(test_users),
    T(test_signer_socket),
    T(test_all_fields_and_bounds),
    T(test_peer_limits),
    T(test_port),
    T(test_address),
    T(test_unknown_fields),
    T(test_duplicate_keys),
    T(test_wrong_types),
    T(test_required),
    T(test_plain_http),
    T(test_tokens),
    T(test_pin_credential),
    T(test_log),
    T(test_malformed_json),
    T(test_file_errors),
    T(test_relative_config_path),
    T(test_dev_config_if_present),
    T(test_numbers_match_operations_md),
    T(test_numbers_table_drives_loader),
    T(test_conninfo_secrets),
    T(test_console),
    T(test_notify),
    T(test_witnesses),
    T(test_teardown))
