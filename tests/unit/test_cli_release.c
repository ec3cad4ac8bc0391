/*
 * Tests for the CLI's pure pieces of releases and grants: naming the
 * files (duplicates refused before anything is sent), the POST
 * /v1/releases body, the manifest root (recomputed here by hand with
 * SHA-256, not with the code under test), the cross-check that refuses a
 * statement naming another manifest, the manifest check of `show
 * --manifest` and `approve`, the statement-against-request check of every
 * kind, the splitter of two-bundle proofs and --for durations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "sg_cli.h"
#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_err.h"
#include "sg_note.h"
#include "sg_util.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define RID "00112233445566778899aabbccddeeff"
#define GID "ffeeddccbbaa99887766554433221100"
#define EXPIRES 1900000000LL

/* RFC 6962 by hand: leaf = H(0 || line), node = H(1 || l || r). */
static void
leaf(const char *line, uint8_t out[32])
{
	size_t n = strlen(line);
	uint8_t *b = malloc(n + 1);

	if (b == NULL)
		abort();
	b[0] = 0;
	memcpy(b + 1, line, n);
	SHA256(b, n + 1, out);
	free(b);
}

static void
node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
	uint8_t b[65];

	b[0] = 1;
	memcpy(b + 1, l, 32);
	memcpy(b + 33, r, 32);
	SHA256(b, sizeof(b), out);
}

/* Three files in one directory, and two of the same name elsewhere. */
static struct sg_cli_release_file *
files3(void)
{
	static const char *const paths[] = { "out/app-1.bin", "app-2.bin",
	    "/tmp/x/app-3.bin" };
	struct sg_cli_release_file *f = calloc(3, sizeof(*f));
	size_t i;

	for (i = 0; i < 3; i++) {
		f[i].path = paths[i];
		memset(f[i].digest, (int)(0x11 * (i + 1)), 32);
	}
	return f;
}

static void
test_names(void)
{
	struct sg_cli_release_file *f = files3();
	char err[512];

	CHECK_EQ_INT(sg_cli_release_names(f, 3, err, sizeof(err)), 0);
	CHECK_STR(f[0].name, "app-1.bin");
	CHECK_STR(f[1].name, "app-2.bin");
	CHECK_STR(f[2].name, "app-3.bin");

	/* Two paths, one base name: refused, naming both. */
	f[2].path = "dist/app-1.bin";
	err[0] = '\0';
	CHECK(sg_cli_release_names(f, 3, err, sizeof(err)) != 0);
	CHECK(strstr(err, "out/app-1.bin") != NULL);
	CHECK(strstr(err, "dist/app-1.bin") != NULL);

	/* The line's name rule: no spaces, no empty name, ASCII only. */
	f[2].path = "dist/app 3.bin";
	CHECK(sg_cli_release_names(f, 3, err, sizeof(err)) != 0);
	CHECK(strstr(err, "dist/app 3.bin") != NULL);
	f[2].path = "dist/";
	CHECK(sg_cli_release_names(f, 3, err, sizeof(err)) != 0);
	f[2].path = "dist/caf\xc3\xa9";
	CHECK(sg_cli_release_names(f, 3, err, sizeof(err)) != 0);
	CHECK(sg_cli_release_names(f, 0, err, sizeof(err)) != 0);
	free(f);
}

static void
test_lines_and_root(void)
{
	struct sg_cli_release_file *f = files3();
	const char *lines[3];
	size_t lens[3], i;
	uint8_t l[3][32], n01[32], root[32];
	char err[512], hex[SG_SHA256_HEX_SIZE], want[SG_SHA256_HEX_SIZE];
	char expect[128], dhex[65];

	CHECK_EQ_INT(sg_cli_release_names(f, 3, err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_cli_release_lines(f, 3, SG_FORMAT_RAW, err,
	    sizeof(err)), 0);
	for (i = 0; i < 3; i++) {
		sg_hex_encode(f[i].digest, 32, dhex);
		snprintf(expect, sizeof(expect), "sha256:%s raw app-%zu.bin",
		    dhex, i + 1);
		CHECK_STR(f[i].line, expect);
		CHECK_EQ_INT(f[i].line_len, strlen(expect));
		lines[i] = f[i].line;
		lens[i] = f[i].line_len;
		leaf(f[i].line, l[i]);
	}
	/* Three leaves: root = H(1 || H(1 || l0 || l1) || l2). */
	node(l[0], l[1], n01);
	node(n01, l[2], root);
	sg_hex_encode(root, 32, want);
	CHECK_EQ_INT(sg_cli_manifest_root(lines, lens, 3, hex), 0);
	CHECK_STR(hex, want);
	/* Order matters. */
	lines[0] = f[1].line;
	lines[1] = f[0].line;
	lens[0] = f[1].line_len;
	lens[1] = f[0].line_len;
	CHECK_EQ_INT(sg_cli_manifest_root(lines, lens, 3, hex), 0);
	CHECK(strcmp(hex, want) != 0);
	/* One line: its leaf. */
	CHECK_EQ_INT(sg_cli_manifest_root(lines, lens, 1, hex), 0);
	sg_hex_encode(l[1], 32, want);
	CHECK_STR(hex, want);
	CHECK(sg_cli_manifest_root(lines, lens, 0, hex) != 0);

	CHECK_EQ_INT(sg_cli_release_lines(f, 3, SG_FORMAT_CMS, err,
	    sizeof(err)), 0);
	CHECK(strstr(f[0].line, " cms app-1.bin") != NULL);
	free(f);
}

static void
test_body(void)
{
	struct sg_cli_release_file *f = files3();
	json_t *b, *arts, *a;
	char err[512], *body = NULL, dhex[65];
	size_t i;

	CHECK_EQ_INT(sg_cli_release_names(f, 3, err, sizeof(err)), 0);
	CHECK_EQ_INT(sg_cli_release_body("release", SG_FORMAT_CMS, "suite",
	    "1.4.2", f, 3, &body), 0);
	b = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_is_object(b));
	CHECK_EQ_INT(json_object_size(b), 4);
	CHECK_STR(sg_cli_jstr(b, "key"), "release");
	CHECK_STR(sg_cli_jstr(b, "format"), "cms");
	CHECK_STR(sg_cli_jstr(json_object_get(b, "release"), "name"),
	    "suite");
	CHECK_STR(sg_cli_jstr(json_object_get(b, "release"), "version"),
	    "1.4.2");
	arts = json_object_get(b, "artifacts");
	CHECK_EQ_INT(json_array_size(arts), 3);
	json_array_foreach(arts, i, a) {
		char name[32];

		snprintf(name, sizeof(name), "app-%zu.bin", i + 1);
		sg_hex_encode(f[i].digest, 32, dhex);
		CHECK_EQ_INT(json_object_size(a), 2);   /* no version */
		CHECK_STR(sg_cli_jstr(a, "name"), name);
		CHECK_STR(sg_cli_jstr(json_object_get(a, "digest"),
		    "algorithm"), "sha256");
		CHECK_STR(sg_cli_jstr(json_object_get(a, "digest"), "value"),
		    dhex);
	}
	json_decref(b);
	free(body);

	/* No --name: no release member at all. */
	CHECK_EQ_INT(sg_cli_release_body("k", SG_FORMAT_RAW, NULL, NULL, f, 1,
	    &body), 0);
	b = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	CHECK(json_object_get(b, "release") == NULL);
	CHECK_STR(sg_cli_jstr(b, "format"), "raw");
	CHECK_EQ_INT(json_array_size(json_object_get(b, "artifacts")), 1);
	json_decref(b);
	free(body);
	free(f);
}

/* A release statement for (root, count), built by the shared builder. */
static char *
release_stmt(const char *id, const char *key, const char *format,
    const char *root, uint64_t count)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len;

	memset(&s, 0, sizeof(s));
	s.kind = SG_KIND_RELEASE;
	snprintf(s.request, sizeof(s.request), "%s", id);
	snprintf(s.key, sizeof(s.key), "%s", key);
	snprintf(s.spki_sha256, sizeof(s.spki_sha256), "%s", SG_FX_STMT_SPKI);
	snprintf(s.format, sizeof(s.format), "%s", format);
	snprintf(s.requester, sizeof(s.requester), "ci");
	snprintf(s.policy_name, sizeof(s.policy_name), "p");
	s.policy_version = 3;
	snprintf(s.policy_sha256, sizeof(s.policy_sha256), "%s",
	    SG_FX_STMT_POLICY);
	s.expires = EXPIRES;
	s.count = count;
	snprintf(s.manifest_root, sizeof(s.manifest_root), "%s", root);
	if (sg_statement_build(&s, &text, &len) != 0)
		return NULL;
	return text;
}

static char *
grant_stmt(const char *id, uint64_t count, const char *pattern)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len;

	memset(&s, 0, sizeof(s));
	s.kind = SG_KIND_GRANT;
	snprintf(s.request, sizeof(s.request), "%s", id);
	snprintf(s.key, sizeof(s.key), "release");
	snprintf(s.spki_sha256, sizeof(s.spki_sha256), "%s", SG_FX_STMT_SPKI);
	snprintf(s.format, sizeof(s.format), "raw");
	snprintf(s.requester, sizeof(s.requester), "ci");
	snprintf(s.policy_name, sizeof(s.policy_name), "p");
	s.policy_version = 3;
	snprintf(s.policy_sha256, sizeof(s.policy_sha256), "%s",
	    SG_FX_STMT_POLICY);
	s.expires = EXPIRES;
	s.count = count;
	snprintf(s.pattern, sizeof(s.pattern), "%s", pattern);
	if (sg_statement_build(&s, &text, &len) != 0)
		return NULL;
	return text;
}

/* The three files' lines, their root, and the manifest text. */
struct manifest3 {
	struct sg_cli_release_file *f;
	char root[SG_SHA256_HEX_SIZE];
	char text[3 * (SG_ARTIFACT_LINE_MAX + 1) + 1];
};

static void
manifest3(struct manifest3 *m)
{
	const char *lines[3];
	size_t lens[3], i;
	char err[256];

	m->f = files3();
	m->text[0] = '\0';
	if (sg_cli_release_names(m->f, 3, err, sizeof(err)) != 0 ||
	    sg_cli_release_lines(m->f, 3, SG_FORMAT_RAW, err,
	    sizeof(err)) != 0)
		abort();
	for (i = 0; i < 3; i++) {
		lines[i] = m->f[i].line;
		lens[i] = m->f[i].line_len;
		strcat(m->text, m->f[i].line);
		strcat(m->text, "\n");
	}
	if (sg_cli_manifest_root(lines, lens, 3, m->root) != 0)
		abort();
}

/* The server's statement must name OUR manifest: any other root, count,
 * key, format, id or kind is refused. */
static void
test_statement_cross_check(void)
{
	struct manifest3 m;
	struct sg_statement st;
	char err[512], other[SG_SHA256_HEX_SIZE], *s;

	manifest3(&m);
	s = release_stmt(RID, "release", "raw", m.root, 3);
	CHECK(s != NULL);
	memset(&st, 0, sizeof(st));
	CHECK_EQ_INT(sg_cli_release_statement_check(s, RID, "release",
	    SG_FORMAT_RAW, m.root, 3, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.kind, SG_KIND_RELEASE);
	CHECK_EQ_INT(st.count, 3);
	/* What we computed differs from what the statement names. */
	memcpy(other, m.root, sizeof(other));
	other[10] = other[10] == '0' ? '1' : '0';
	err[0] = '\0';
	CHECK(sg_cli_release_statement_check(s, RID, "release",
	    SG_FORMAT_RAW, other, 3, &st, err, sizeof(err)) != 0);
	CHECK(strstr(err, "manifest") != NULL);
	CHECK(strstr(err, m.root) != NULL);
	CHECK(sg_cli_release_statement_check(s, RID, "release",
	    SG_FORMAT_RAW, m.root, 4, &st, err, sizeof(err)) != 0);
	CHECK(sg_cli_release_statement_check(s, RID, "other", SG_FORMAT_RAW,
	    m.root, 3, &st, err, sizeof(err)) != 0);
	CHECK(sg_cli_release_statement_check(s, RID, "release",
	    SG_FORMAT_CMS, m.root, 3, &st, err, sizeof(err)) != 0);
	CHECK(sg_cli_release_statement_check(s, GID, "release",
	    SG_FORMAT_RAW, m.root, 3, &st, err, sizeof(err)) != 0);
	free(s);
	/* The server answers with the statement of another manifest. */
	s = release_stmt(RID, "release", "raw", other, 3);
	CHECK(sg_cli_release_statement_check(s, RID, "release",
	    SG_FORMAT_RAW, m.root, 3, &st, err, sizeof(err)) != 0);
	free(s);
	/* A grant's or a request's statement, or none. */
	s = grant_stmt(RID, 3, "*");
	CHECK(sg_cli_release_statement_check(s, RID, "release",
	    SG_FORMAT_RAW, m.root, 3, &st, err, sizeof(err)) != 0);
	free(s);
	CHECK(sg_cli_release_statement_check(SG_FX_STATEMENT,
	    SG_FX_STMT_ID, "release", SG_FORMAT_RAW, m.root, 3, &st, err,
	    sizeof(err)) != 0);
	CHECK(sg_cli_release_statement_check(NULL, RID, "release",
	    SG_FORMAT_RAW, m.root, 3, &st, err, sizeof(err)) != 0);
	free(m.f);
}

/* `show --manifest` and `approve`: the manifest served must hash to the
 * statement's root and count. */
static void
test_manifest_check(void)
{
	struct manifest3 m;
	struct sg_statement st;
	char err[512], **lines = NULL, *s, *t;
	size_t n = 0, len, i;

	manifest3(&m);
	s = release_stmt(RID, "release", "raw", m.root, 3);
	memset(&st, 0, sizeof(st));
	CHECK_EQ_INT(sg_statement_parse(s, strlen(s), &st), 0);
	len = strlen(m.text);
	CHECK_EQ_INT(sg_cli_manifest_check(m.text, len, &st, &lines, &n, err,
	    sizeof(err)), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3)
		for (i = 0; i < 3; i++)
			CHECK_STR(lines[i], m.f[i].line);
	free(lines);

	/* Every single changed byte of the manifest is refused. */
	t = strdup(m.text);
	for (i = 0; i < len; i++) {
		t[i] ^= 0x01;
		CHECK(sg_cli_manifest_check(t, len, &st, NULL, NULL, err,
		    sizeof(err)) != 0);
		t[i] ^= 0x01;
	}
	/* Truncated (no last LF, a line less), an extra line, lines
	 * swapped. */
	CHECK(sg_cli_manifest_check(t, len - 1, &st, NULL, NULL, err,
	    sizeof(err)) != 0);
	CHECK(sg_cli_manifest_check(t, strlen(m.f[0].line) + 1 +
	    strlen(m.f[1].line) + 1, &st, NULL, NULL, err, sizeof(err)) != 0);
	CHECK(strstr(err, "statement names") != NULL);
	free(t);
	if (asprintf(&t, "%s%s\n", m.text, m.f[0].line) < 0)
		abort();
	CHECK(sg_cli_manifest_check(t, strlen(t), &st, NULL, NULL, err,
	    sizeof(err)) != 0);
	CHECK(strstr(err, "same name") != NULL);
	free(t);
	if (asprintf(&t, "%s\n%s\n%s\n", m.f[1].line, m.f[0].line,
	    m.f[2].line) < 0)
		abort();
	CHECK(sg_cli_manifest_check(t, strlen(t), &st, NULL, NULL, err,
	    sizeof(err)) != 0);
	free(t);
	CHECK(sg_cli_manifest_check("", 0, &st, NULL, NULL, err,
	    sizeof(err)) != 0);
	/* A NUL inside. */
	t = strdup(m.text);
	t[5] = '\0';
	CHECK(sg_cli_manifest_check(t, len, &st, NULL, NULL, err,
	    sizeof(err)) != 0);
	free(t);
	free(s);
	/* The statement is of another format than the lines. */
	s = release_stmt(RID, "release", "cms", m.root, 3);
	CHECK_EQ_INT(sg_statement_parse(s, strlen(s), &st), 0);
	CHECK(sg_cli_manifest_check(m.text, len, &st, NULL, NULL, err,
	    sizeof(err)) != 0);
	free(s);
	free(m.f);
}

/* A request object as the server shows a release or a grant. */
static json_t *
kind_req(const char *kind, const char *id, const char *stmt)
{
	char until[32];

	sg_time_rfc3339((time_t)EXPIRES, until, sizeof(until));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:i, s:s}, "
	    "s:s, s:s}", "id", id, "kind", kind, "state", "pending", "key",
	    "release", "format", "raw", "requester", "ci", "policy", "name",
	    "p", "version", 3, "sha256", SG_FX_STMT_POLICY, "statement", stmt,
	    "expires_at", until);
}

static void
test_kind_statement(void)
{
	struct manifest3 m;
	struct sg_statement st;
	json_t *req;
	char err[1024], until[32], *s;

	manifest3(&m);
	sg_time_rfc3339((time_t)EXPIRES, until, sizeof(until));
	s = release_stmt(RID, "release", "raw", m.root, 3);
	req = kind_req("release", RID, s);
	json_object_set_new(req, "release", json_pack("{s:i, s:s, s:i}",
	    "count", 3, "manifest_sha256", m.root, "signed", 0));
	CHECK_EQ_INT(sg_cli_request_statement(req, &st, err, sizeof(err)), 0);
	CHECK_EQ_INT(st.kind, SG_KIND_RELEASE);
	/* The object shown disagrees with the statement signed. */
	json_object_set_new(json_object_get(req, "release"), "count",
	    json_integer(4));
	CHECK(sg_cli_request_statement(req, &st, err, sizeof(err)) != 0);
	CHECK(strstr(err, "count") != NULL);
	json_object_set_new(json_object_get(req, "release"), "count",
	    json_integer(3));
	json_object_set_new(json_object_get(req, "release"),
	    "manifest_sha256", json_string(SG_FX_STMT_SPKI));
	CHECK(sg_cli_request_statement(req, &st, err, sizeof(err)) != 0);
	CHECK(strstr(err, "manifest") != NULL);
	/* A release statement behind an object that says request. */
	json_object_set_new(req, "kind", json_string("request"));
	CHECK(sg_cli_request_statement(req, &st, err, sizeof(err)) != 0);
	json_object_del(req, "kind");
	CHECK(sg_cli_request_statement(req, &st, err, sizeof(err)) != 0);
	json_decref(req);
	free(s);

	s = grant_stmt(GID, 50, "app-*.bin");
	req = kind_req("grant", GID, s);
	json_object_set_new(req, "grant", json_pack("{s:i, s:i, s:s, s:s}",
	    "count", 50, "used", 2, "artifact", "app-*.bin", "until", until));
	CHECK_EQ_INT(sg_cli_request_statement(req, &st, err, sizeof(err)), 0);
	CHECK_STR(st.pattern, "app-*.bin");
	json_object_set_new(json_object_get(req, "grant"), "artifact",
	    json_string("*"));
	CHECK(sg_cli_request_statement(req, &st, err, sizeof(err)) != 0);
	CHECK(strstr(err, "pattern") != NULL);
	json_object_set_new(json_object_get(req, "grant"), "artifact",
	    json_string("app-*.bin"));
	json_object_set_new(json_object_get(req, "grant"), "until",
	    json_string("2030-01-01T00:00:00Z"));
	CHECK(sg_cli_request_statement(req, &st, err, sizeof(err)) != 0);
	json_object_set_new(req, "kind", json_string("release"));
	CHECK(sg_cli_request_statement(req, &st, err, sizeof(err)) != 0);
	json_decref(req);
	free(s);
	free(m.f);
}

/* A bundle with an arbitrary (unsigned) note: the splitter does not
 * verify, it only cuts. */
static char *
bundle(uint64_t index, const char *extra, const char *origin)
{
	struct sg_tlog_proof p;
	char note[256], *out = NULL;

	memset(&p, 0, sizeof(p));
	snprintf(note, sizeof(note), "%s\n5\n"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"
	    "\xe2\x80\x94 %s AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", origin, origin);
	p.note = note;
	p.note_len = strlen(note);
	p.index = index;
	p.nhashes = 2;
	memset(p.hashes[0], 1, 32);
	memset(p.hashes[1], 2, 32);
	p.extra = (uint8_t *)(uintptr_t)extra;
	p.extra_len = strlen(extra);
	if (sg_tlog_proof_format(&p, &out) != 0)
		abort();
	return out;
}

static void
test_split(void)
{
	char *a = bundle(3, "entry one", "log.example"), *b;
	char *both;
	size_t la = strlen(a), first = 0, i;

	b = bundle(1, "entry two", "log.example");
	if (asprintf(&both, "%s%s", a, b) < 0)
		abort();
	CHECK_EQ_INT(sg_cli_proof_split(a, la, &first), 0);
	CHECK_EQ_INT(first, la);
	CHECK_EQ_INT(sg_cli_proof_split(both, strlen(both), &first), 0);
	CHECK_EQ_INT(first, la);
	/* An origin that reads like the magic line does not fool it. */
	free(a);
	a = bundle(3, "x", "c2sp.org/tlog-proof@v1");
	CHECK_EQ_INT(sg_cli_proof_split(a, strlen(a), &first), 0);
	CHECK_EQ_INT(first, strlen(a));
	/* Truncated inside the first bundle: refused wherever it is cut
	 * (before its signature line ends, the rest is no bundle). */
	for (i = 0; i + 1 < la; i++) {
		size_t f2 = 0;
		int r = sg_cli_proof_split(both, i, &f2);

		CHECK(r != 0 || f2 == i);
	}
	/* Garbage after the first bundle, or a second one cut in its
	 * magic line. */
	free(b);
	if (asprintf(&b, "%sjunk\n", a) < 0)
		abort();
	CHECK(sg_cli_proof_split(b, strlen(b), &first) != 0);
	CHECK(sg_cli_proof_split(both, la + 5, &first) != 0);
	CHECK(sg_cli_proof_split("", 0, &first) != 0);
	CHECK(sg_cli_proof_split("c2sp.org/tlog-proof@v1\n", 23,
	    &first) != 0);
	free(a);
	free(b);
	free(both);
}

static void
test_duration(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "45s", 45 }, { "30m", 1800 }, { "2h", 7200 },
		{ "7d", 604800 }, { "90", 90 }, { "1d", 86400 },
	};
	static const char *const bad[] = { "", "h", "0s", "-1h", "1x",
	    "1.5h", "99999999999d", "2hh", " 2h", "2 h", "0" };
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 0;
		CHECK_EQ_INT(sg_cli_duration(good[i].s, &v), 0);
		CHECK_EQ_INT(v, good[i].v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(sg_cli_duration(bad[i], &v) != 0);
}

SG_TEST_MAIN("cli_release",
    T(test_names),
    T(test_lines_and_root),
    T(test_body),
    T(test_statement_cross_check),
    T(test_manifest_check),
    T(test_kind_statement),
    T(test_split),
    T(test_duration))
