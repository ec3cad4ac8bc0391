/*
 * The log monitor's pure parts (include/sg_monitor.h): --hours windows
 * (wrapping midnight included), artifact patterns, the state file (v1
 * read and upgraded, v2 round trip, refusals), the witness set the
 * checkpoint is held to (include/sg_cli_witness.h), and the walk over
 * entries: which signatures are reported for a key, the artifact's name
 * from a created entry read in an earlier walk, rule violations, policy
 * entries read from their text, and the Prometheus textfile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sg_cli_witness.h"
#include "sg_cosig.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_monitor.h"
#include "sg_note.h"
#include "sg_test.h"
#include "sg_util.h"

#define HOUR 3600
/* 2026-12-05T00:00:00Z */
#define DAY0 1796428800LL

static void
test_hours_parse(void)
{
	struct sg_monitor_hours h;
	static const char *const bad[] = {
		"", "9-17", "09-09", "24-01", "10-00", "aa-bb", "09-17x",
		"09_17", "09-25", "-1-05", " 09-17",
	};
	size_t i;

	CHECK_EQ_INT(sg_monitor_hours_parse("09-17", &h), 0);
	CHECK(h.set && h.start == 9 && h.end == 17);
	CHECK_EQ_INT(sg_monitor_hours_parse("22-06", &h), 0);
	CHECK(h.start == 22 && h.end == 6);
	CHECK_EQ_INT(sg_monitor_hours_parse("00-24", &h), 0);
	CHECK_EQ_INT(sg_monitor_hours_parse("23-24", &h), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&h, 0, sizeof(h));
		if (sg_monitor_hours_parse(bad[i], &h) == 0) {
			fprintf(stderr, "  accepted --hours %s\n", bad[i]);
			CHECK(0);
		}
		CHECK(!h.set);
	}
}

static void
test_hours_contain(void)
{
	struct sg_monitor_hours h;

	memset(&h, 0, sizeof(h));
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 3 * HOUR)); /* not set */
	CHECK_EQ_INT(sg_monitor_hours_parse("09-17", &h), 0);
	CHECK(!sg_monitor_hours_contain(&h, DAY0 + 9 * HOUR - 1));
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 9 * HOUR));
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 17 * HOUR - 1));
	CHECK(!sg_monitor_hours_contain(&h, DAY0 + 17 * HOUR));
	CHECK(!sg_monitor_hours_contain(&h, -1));
	/* Wrapping midnight: 22:00 to 05:59:59. */
	CHECK_EQ_INT(sg_monitor_hours_parse("22-06", &h), 0);
	CHECK(!sg_monitor_hours_contain(&h, DAY0 + 22 * HOUR - 1));
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 22 * HOUR));
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 23 * HOUR + 59 * 60));
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 24 * HOUR));
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 30 * HOUR - 1));
	CHECK(!sg_monitor_hours_contain(&h, DAY0 + 30 * HOUR));
	CHECK(!sg_monitor_hours_contain(&h, DAY0 + 12 * HOUR));
	CHECK_EQ_INT(sg_monitor_hours_parse("23-24", &h), 0);
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 24 * HOUR - 1));
	CHECK(!sg_monitor_hours_contain(&h, DAY0 + 24 * HOUR));
	CHECK_EQ_INT(sg_monitor_hours_parse("00-24", &h), 0);
	CHECK(sg_monitor_hours_contain(&h, DAY0 + 13 * HOUR + 7));
}

static void
test_check(void)
{
	struct sg_monitor_rules r;
	int64_t noon = DAY0 + 12 * HOUR;

	memset(&r, 0, sizeof(r));
	CHECK_EQ_INT(sg_monitor_check(&r, NULL, noon), 0);
	CHECK_EQ_INT(sg_monitor_check(&r, "anything", noon), 0);
	r.patterns[0] = "*.bin";
	r.patterns[1] = "app-?.tar.gz";
	r.npatterns = 2;
	CHECK_EQ_INT(sg_monitor_check(&r, "x.bin", noon), 0);
	CHECK_EQ_INT(sg_monitor_check(&r, "app-1.tar.gz", noon), 0);
	CHECK_EQ_INT(sg_monitor_check(&r, "app-10.tar.gz", noon),
	    SG_MONITOR_BAD_NAME);
	CHECK_EQ_INT(sg_monitor_check(&r, "x.bin.exe", noon),
	    SG_MONITOR_BAD_NAME);
	/* A name that is not known cannot pass a pattern. */
	CHECK_EQ_INT(sg_monitor_check(&r, NULL, noon), SG_MONITOR_BAD_NAME);
	CHECK_EQ_INT(sg_monitor_hours_parse("22-06", &r.hours), 0);
	CHECK_EQ_INT(sg_monitor_check(&r, "x.bin", noon),
	    SG_MONITOR_BAD_HOURS);
	CHECK_EQ_INT(sg_monitor_check(&r, "x.exe", noon),
	    SG_MONITOR_BAD_NAME | SG_MONITOR_BAD_HOURS);
	CHECK_EQ_INT(sg_monitor_check(&r, "x.bin", DAY0 + 2 * HOUR), 0);
}

#define VKEY "signgate.dev/log+fa9694ff+" \
	"AV+RmlYv6asoAZkgwcdBbn5RLYcCuNAuMnLOP8Bqlwko"
#define ROOT "c2HmSsHL9GEHHJExPHQT0GE6wQ481jGKutmlpnPAKAk="
#define REQ1 "a2c05db6db2811fb32fb4318fc89cada"
#define REQ2 "c70283ce9e4702d44eceb67e2783bbe3"

static void
test_state(void)
{
	static const char v1[] = "signgate-log-monitor v1\nkey " VKEY
	    "\nsize 11\nroot " ROOT "\n";
	static const char v2[] = "signgate-log-monitor v2\nkey " VKEY
	    "\nsize 11\nroot " ROOT "\nnext 11\nsuccess 1796361176\n"
	    "violations 2\npending " REQ1 " 3 1796400000\npending " REQ2
	    " 7 1796400001\n";
	static const char *const bad[] = {
		"signgate-log-monitor v3\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\n",
		"signgate-log-monitor v1\nkey " VKEY "\nsize 011\nroot " ROOT
		    "\n",
		"signgate-log-monitor v1\nkey " VKEY "\nsize 11\nroot " ROOT,
		"signgate-log-monitor v1\r\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\n",
		/* v1 with v2 lines */
		"signgate-log-monitor v1\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext 11\n",
		/* v2 missing its counters */
		"signgate-log-monitor v2\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext 11\n",
		/* pending out of order, at or past next, malformed */
		"signgate-log-monitor v2\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext 11\nsuccess 0\nviolations 0\npending " REQ1
		    " 7 1\npending " REQ2 " 3 1\n",
		"signgate-log-monitor v2\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext 11\nsuccess 0\nviolations 0\npending " REQ1
		    " 11 1\n",
		"signgate-log-monitor v2\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext 11\nsuccess 0\nviolations 0\npending "
		    "A2C05DB6DB2811FB32FB4318FC89CADA 3 1\n",
		"signgate-log-monitor v2\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext 11\nsuccess 0\nviolations 0\npending " REQ1
		    " 3\n",
		"signgate-log-monitor v2\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext 11\nsuccess 0\nviolations 0\njunk\n",
		"signgate-log-monitor v2\nkey " VKEY "\nsize 11\nroot " ROOT
		    "\nnext x\nsuccess 0\nviolations 0\n",
	};
	struct sg_monitor_state s;
	char *text = NULL;
	size_t i, len = 0;

	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(sg_monitor_state_parse(v1, strlen(v1), &s), 0);
	CHECK_EQ_INT(s.version, 1);
	CHECK_EQ_INT(s.size, 11);
	CHECK_EQ_INT(s.next, 11);
	CHECK_EQ_INT(s.npending, 0);
	CHECK_STR(s.vkey, VKEY);
	/* Upgraded: written as v2. */
	CHECK_EQ_INT(sg_monitor_state_format(&s, &text, &len), 0);
	CHECK(text != NULL && strncmp(text, "signgate-log-monitor v2\n",
	    24) == 0);
	free(text);
	text = NULL;
	sg_monitor_state_clear(&s);

	CHECK_EQ_INT(sg_monitor_state_parse(v2, strlen(v2), &s), 0);
	CHECK_EQ_INT(s.version, 2);
	CHECK_EQ_INT(s.success, 1796361176);
	CHECK_EQ_INT(s.violations, 2);
	CHECK_EQ_INT(s.npending, 2);
	if (s.npending == 2) {
		CHECK_STR(s.pending[1].request, REQ2);
		CHECK_EQ_INT(s.pending[1].index, 7);
		CHECK_EQ_INT(s.pending[1].expires, 1796400001);
	}
	CHECK_EQ_INT(sg_monitor_state_format(&s, &text, &len), 0);
	CHECK(text != NULL && len == strlen(v2) && memcmp(text, v2, len) == 0);
	free(text);
	sg_monitor_state_clear(&s);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sg_monitor_state_parse(bad[i], strlen(bad[i]), &s) == 0) {
			fprintf(stderr, "  accepted state %zu\n", i);
			CHECK(0);
			sg_monitor_state_clear(&s);
		}
	}
}

/* --- witnesses --- */

#define LOG_ORIGIN "signgate.dev/log"
#define CP_TEXT LOG_ORIGIN "\n11\n" ROOT "\n"

static EVP_PKEY *
ed25519(uint8_t pub[SG_ED25519_PUB])
{
	EVP_PKEY *k;
	size_t len = SG_ED25519_PUB;

	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 ||
	    len != SG_ED25519_PUB)
		abort();
	return k;
}

static char *
cat3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);

	if (s == NULL)
		abort();
	snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

static void
test_cosigned(void)
{
	struct sg_cli_witnesses set;
	uint8_t lpub[SG_ED25519_PUB], pub[3][SG_ED25519_PUB], sig[64];
	EVP_PKEY *lk, *wk[3];
	EVP_MD_CTX *ctx;
	char *vk, *logline = NULL, *c0 = NULL, *c1 = NULL, *note, *n2;
	char names[64];
	size_t sl = 64, i, got;

	memset(&set, 0, sizeof(set));
	lk = ed25519(lpub);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, lk) != 1 ||
	    EVP_DigestSign(ctx, sig, &sl, (const uint8_t *)CP_TEXT,
	    strlen(CP_TEXT)) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	CHECK_EQ_INT(sg_note_signature_line(LOG_ORIGIN,
	    sg_note_key_id(LOG_ORIGIN, lpub), sig, &logline), 0);
	for (i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "w%zu", i);
		wk[i] = ed25519(pub[i]);
		vk = NULL;
		CHECK_EQ_INT(sg_cosig_vkey_format(name, pub[i], &vk), 0);
		CHECK_EQ_INT(sg_cli_witness_add(&set, vk), 0);
		/* The same witness twice is one witness. */
		CHECK_EQ_INT(sg_cli_witness_add(&set, vk), 0);
		free(vk);
	}
	CHECK_EQ_INT(set.n, 3);
	/* w0's key under another name is refused: its one cosignature,
	 * copied under that name's key id, would count twice. */
	vk = NULL;
	CHECK_EQ_INT(sg_cosig_vkey_format("w0-again", pub[0], &vk), 0);
	CHECK_EQ_INT(sg_cli_witness_add(&set, vk), SG_ERR_CONFLICT);
	free(vk);
	CHECK_EQ_INT(set.n, 3);
	/* A log key is not a witness key. */
	vk = NULL;
	CHECK_EQ_INT(sg_note_vkey_format(LOG_ORIGIN, lpub, &vk), 0);
	CHECK_EQ_INT(sg_cli_witness_add(&set, vk), SG_ERR_INVALID);
	free(vk);
	CHECK_EQ_INT(set.n, 3);
	CHECK_EQ_INT(sg_cosig_sign(wk[0], "w0", CP_TEXT, strlen(CP_TEXT),
	    1796361000, &c0), 0);
	CHECK_EQ_INT(sg_cosig_sign(wk[1], "w1", CP_TEXT, strlen(CP_TEXT),
	    1796361001, &c1), 0);
	if (logline == NULL || c0 == NULL || c1 == NULL)
		abort();
	note = cat3(CP_TEXT "\n", logline, c0);
	set.quorum = 2;
	CHECK_EQ_INT(sg_cli_witness_check(&set, note, strlen(note), &got,
	    names, sizeof(names)), SG_ERR_VERIFY);
	CHECK_EQ_INT(got, 1);
	CHECK_STR(names, "w0");
	n2 = cat3(note, c1, "");
	CHECK_EQ_INT(sg_cli_witness_check(&set, n2, strlen(n2), &got,
	    names, sizeof(names)), 0);
	CHECK_EQ_INT(got, 2);
	CHECK_STR(names, "w0, w1");
	/* Names are cut to the room given. */
	CHECK_EQ_INT(sg_cli_witness_check(&set, n2, strlen(n2), &got,
	    names, 5), 0);
	CHECK_STR(names, "w0, ");
	free(n2);
	/* w1's line over another tree's text does not count. */
	n2 = cat3(LOG_ORIGIN "\n12\n" ROOT "\n\n", logline, c1);
	set.quorum = 1;
	CHECK_EQ_INT(sg_cli_witness_check(&set, n2, strlen(n2), &got, NULL,
	    0), SG_ERR_VERIFY);
	CHECK_EQ_INT(got, 0);
	free(n2);
	/* The set is bounded. */
	for (i = 3; i <= SG_CLI_WITNESSES_MAX; i++) {
		uint8_t xpub[SG_ED25519_PUB];
		EVP_PKEY *xk = ed25519(xpub);
		char name[8];

		snprintf(name, sizeof(name), "x%zu", i);
		vk = NULL;
		CHECK_EQ_INT(sg_cosig_vkey_format(name, xpub, &vk), 0);
		CHECK_EQ_INT(sg_cli_witness_add(&set, vk),
		    i < SG_CLI_WITNESSES_MAX ? 0 : SG_ERR_TOO_LARGE);
		free(vk);
		EVP_PKEY_free(xk);
	}
	CHECK_EQ_INT(set.n, SG_CLI_WITNESSES_MAX);
	free(note);
	free(c0);
	free(c1);
	free(logline);
	for (i = 0; i < 3; i++)
		EVP_PKEY_free(wk[i]);
	EVP_PKEY_free(lk);
}

/* --- the walk --- */

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fake_log {
	char *entries[16];
	size_t lens[16];
	size_t n;
	unsigned gets;
};

static int
fake_get(void *ctx, uint64_t index, char **ret, size_t *ret_len)
{
	struct fake_log *l = ctx;

	l->gets++;
	if (index >= l->n)
		return 4;
	/* Entries are not NUL-terminated; what the walk is given is. */
	if ((*ret = malloc(l->lens[index] + 1)) == NULL)
		abort();
	memcpy(*ret, l->entries[index], l->lens[index]);
	(*ret)[l->lens[index]] = '\0';
	*ret_len = l->lens[index];
	return 0;
}

/* A walk of the fake log over [from, to) under the rules, reporting
 * key's signatures (key may be NULL); the findings, NUL-terminated, in
 * *out (malloc'd), and the walk's exit status. */
static int
walk(struct sg_monitor_run *run, struct fake_log *l,
    struct sg_monitor_state *st, const char *key,
    const struct sg_monitor_rules *rules, uint64_t from, uint64_t to,
    char **out)
{
	size_t olen = 0;
	int ex;

	memset(run, 0, sizeof(*run));
	run->key = key;
	run->rules = rules;
	run->get = fake_get;
	run->ctx = l;
	*out = NULL;
	if ((run->out = open_memstream(out, &olen)) == NULL)
		abort();
	ex = sg_monitor_scan(run, st, from, to);
	fclose(run->out);
	run->out = NULL;
	return ex;
}

static void
fake_add(struct fake_log *l, char *text, size_t len)
{
	if (l->n == 16)
		abort();
	l->entries[l->n] = text;
	l->lens[l->n++] = len;
}

static char *
statement_kind(enum sg_kind kind, const char *request, const char *key,
    int64_t expires)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len = 0;

	memset(&s, 0, sizeof(s));
	s.kind = kind;
	snprintf(s.request, sizeof(s.request), "%s", request);
	snprintf(s.key, sizeof(s.key), "%s", key);
	snprintf(s.spki_sha256, sizeof(s.spki_sha256), "%s", HEX64);
	if (kind == SG_KIND_RELEASE) {
		snprintf(s.manifest_root, sizeof(s.manifest_root), "%s",
		    HEX64);
		s.count = 2;
	} else {
		snprintf(s.digest_alg, sizeof(s.digest_alg), "sha256");
		snprintf(s.digest_hex, sizeof(s.digest_hex), "%s", HEX64);
	}
	snprintf(s.format, sizeof(s.format), "raw");
	snprintf(s.requester, sizeof(s.requester), "ci");
	snprintf(s.policy_name, sizeof(s.policy_name), "dev");
	s.policy_version = 1;
	snprintf(s.policy_sha256, sizeof(s.policy_sha256), "%s", HEX64);
	s.expires = expires;
	if (sg_statement_build(&s, &text, &len) != 0)
		abort();
	return text;
}

static char *
statement(const char *request, const char *key, int64_t expires)
{
	return statement_kind(SG_KIND_REQUEST, request, key, expires);
}

static void
add_created(struct fake_log *l, const char *request, const char *key,
    const char *artifact)
{
	struct sg_entry e;
	char *text = NULL;
	size_t len = 0;

	memset(&e, 0, sizeof(e));
	e.type = SG_ENTRY_CREATED;
	e.time = DAY0 + 12 * HOUR;
	snprintf(e.request, sizeof(e.request), "%s", request);
	e.statement = statement(request, key, DAY0 + 13 * HOUR);
	e.statement_len = strlen(e.statement);
	e.artifact_json = (char *)artifact;
	e.artifact_len = strlen(artifact);
	if (sg_entry_build(&e, &text, &len) != 0)
		abort();
	free(e.statement);
	fake_add(l, text, len);
}

static void
add_signature(struct fake_log *l, const char *request, const char *key,
    const char *officer, int64_t t)
{
	static const uint8_t blob[] = { 0x30, 0x01, 0x00 };
	struct sg_entry e;
	char *text = NULL, *env = NULL;
	size_t len = 0;

	memset(&e, 0, sizeof(e));
	e.type = SG_ENTRY_SIGNATURE;
	e.time = t;
	snprintf(e.request, sizeof(e.request), "%s", request);
	e.statement = statement(request, key, DAY0 + 13 * HOUR);
	e.statement_len = strlen(e.statement);
	if (officer != NULL) {
		if (sg_envelope_build(SG_DSSE_TYPE, (const uint8_t *)"x", 1,
		    officer, blob, sizeof(blob), &env) != 0)
			abort();
		e.approvals[0] = env;
		e.approval_lens[0] = strlen(env);
		e.napprovals = 1;
	}
	e.public_key = (uint8_t *)blob;
	e.public_key_len = sizeof(blob);
	snprintf(e.algorithm, sizeof(e.algorithm), "ecdsa-p256");
	e.signature = (uint8_t *)blob;
	e.signature_len = sizeof(blob);
	snprintf(e.hsm_serial, sizeof(e.hsm_serial), "0e44881140b3cfdc");
	snprintf(e.hsm_country, sizeof(e.hsm_country), "CH");
	if (sg_entry_build(&e, &text, &len) != 0)
		abort();
	free(e.statement);
	free(env);
	fake_add(l, text, len);
}

static char *
envelope(const char *officer)
{
	static const uint8_t sig[] = { 1, 2, 3 };
	char *env = NULL;

	if (sg_envelope_build(SG_DSSE_TYPE, (const uint8_t *)"x", 1, officer,
	    sig, sizeof(sig), &env) != 0)
		abort();
	return env;
}

/* A release's approved entry (two officers) and its artifacts' signature
 * entries at positions 0 and 1. */
static void
add_release(struct fake_log *l, const char *release, const char *key,
    const char *name0, const char *name1)
{
	static const uint8_t blob[] = { 0x30, 0x01, 0x00 };
	struct sg_entry e;
	char *text = NULL, line[128];
	uint64_t approved = l->n;
	size_t len = 0, i;

	memset(&e, 0, sizeof(e));
	e.type = SG_ENTRY_APPROVED;
	e.time = DAY0 + 12 * HOUR;
	snprintf(e.request, sizeof(e.request), "%s", release);
	e.statement = statement_kind(SG_KIND_RELEASE, release, key,
	    DAY0 + 13 * HOUR);
	e.statement_len = strlen(e.statement);
	e.approvals[0] = envelope("alice");
	e.approvals[1] = envelope("dave");
	e.approval_lens[0] = strlen(e.approvals[0]);
	e.approval_lens[1] = strlen(e.approvals[1]);
	e.napprovals = 2;
	if (sg_entry_build(&e, &text, &len) != 0)
		abort();
	fake_add(l, text, len);
	free(e.statement);
	free(e.approvals[0]);
	free(e.approvals[1]);
	for (i = 0; i < 2; i++) {
		memset(&e, 0, sizeof(e));
		e.type = SG_ENTRY_ARTIFACT_SIGNATURE;
		e.time = DAY0 + 12 * HOUR + 10 + (int64_t)i;
		snprintf(e.request, sizeof(e.request), "%s", release);
		e.approved_index = approved;
		e.position = i;
		snprintf(line, sizeof(line), "sha256:%s raw %s", HEX64,
		    i == 0 ? name0 : name1);
		e.line = line;
		e.line_len = strlen(line);
		e.public_key = (uint8_t *)blob;
		e.public_key_len = sizeof(blob);
		snprintf(e.algorithm, sizeof(e.algorithm), "ecdsa-p256");
		e.signature = (uint8_t *)blob;
		e.signature_len = sizeof(blob);
		snprintf(e.hsm_serial, sizeof(e.hsm_serial), "5e7");
		snprintf(e.hsm_country, sizeof(e.hsm_country), "DE");
		text = NULL;
		if (sg_entry_build(&e, &text, &len) != 0)
			abort();
		fake_add(l, text, len);
	}
}

static void
test_scan_release(void)
{
	struct sg_monitor_state st;
	struct sg_monitor_rules rules;
	struct sg_monitor_run run;
	struct fake_log l;
	char *out = NULL;
	size_t i;

	memset(&l, 0, sizeof(l));
	memset(&st, 0, sizeof(st));
	memset(&rules, 0, sizeof(rules));
	rules.patterns[0] = "*.tar.gz";
	rules.npatterns = 1;
	add_release(&l, REQ1, "key-a", "app-1.tar.gz", "evil.sh");
	add_release(&l, REQ2, "key-b", "b.tar.gz", "b.sh");
	/* From the first signature on: the approved entry is fetched by its
	 * index, once for both artifacts. */
	CHECK_EQ_INT(walk(&run, &l, &st, "key-a", &rules, 1, l.n, &out), 0);
	CHECK_EQ_INT(run.signatures, 2);
	CHECK_EQ_INT(run.violations, 1);
	CHECK(out != NULL && strstr(out, "signature: index 1 time "
	    "2026-12-05T12:00:10Z key key-a release " REQ1 " requester ci "
	    "approvers alice,dave hsm 5e7 DE artifact sha256:" HEX64
	    " name app-1.tar.gz\n") != NULL);
	CHECK(out != NULL && strstr(out, "signature: index 2 ") != NULL &&
	    strstr(out, " name evil.sh\n") != NULL);
	CHECK(out != NULL && strstr(out, "key-b") == NULL);
	CHECK_EQ_INT(run.ncounts, 2);
	free(out);
	sg_monitor_run_clear(&run);
	sg_monitor_state_clear(&st);
	for (i = 0; i < l.n; i++)
		free(l.entries[i]);
}

static void
add_text(struct fake_log *l, const char *text)
{
	char *s = strdup(text);

	if (s == NULL)
		abort();
	fake_add(l, s, strlen(s));
}

#define POLICY_ENTRY "signgate-log-entry v1\ntype policy\ntime 1796430000\n" \
	"request 0123456789abcdef0123456789abcdef\npolicy dev@2 sha256:" \
	HEX64 "\nprevious none\nstatus pending\ntext cG9saWN5Cg==\n"
#define EFFECTIVE_ENTRY "signgate-log-entry v1\ntype policy-effective\n" \
	"time 1796430001\nrequest 0123456789abcdef0123456789abcdef\n" \
	"policy dev@2 sha256:" HEX64 "\napproval-entry 7\n"

/* An officer's approval of policy dev@2, as a policy-decision entry. */
static void
add_policy_decision(struct fake_log *l, const char *officer)
{
	static const char body[] = "signgate policy approval v1\n"
	    "policy dev@2 sha256:" HEX64 "\nprevious dev@1 sha256:" HEX64
	    "\ndecision approve\n";
	static const uint8_t sig[] = { 1, 2, 3 };
	char *env = NULL, *b64, *text;
	size_t n;

	if (sg_envelope_build(SG_DSSE_TYPE, (const uint8_t *)body,
	    strlen(body), officer, sig, sizeof(sig), &env) != 0 ||
	    (b64 = sg_b64_encode((const uint8_t *)env, strlen(env))) == NULL)
		abort();
	n = strlen(b64) + 256;
	if ((text = malloc(n)) == NULL)
		abort();
	snprintf(text, n, "signgate-log-entry v1\ntype policy-decision\n"
	    "time 1796430000\nrequest 0123456789abcdef0123456789abcdef\n"
	    "officer %s\nenvelope %s\n", officer, b64);
	fake_add(l, text, strlen(text));
	free(b64);
	free(env);
}

static void
test_scan(void)
{
	struct sg_monitor_state st;
	struct sg_monitor_rules rules;
	struct sg_monitor_run run;
	struct sg_monitor_metrics mm;
	struct fake_log l;
	char *out = NULL, *prom = NULL, path[] = "/tmp/test_monitor.XXXXXX";
	size_t plen = 0, i;
	int fd;

	memset(&l, 0, sizeof(l));
	memset(&st, 0, sizeof(st));
	memset(&rules, 0, sizeof(rules));
	/* 0: created (A), read in a first walk; 1: created (B);
	 * 2: A's signature, 3: B's signature, 4: A's unknown request,
	 * 5: a policy, 6: a policy taking effect, 7: A's at 03:00,
	 * 8: an officer's approval of a pending policy. */
	add_created(&l, REQ1, "key-a", "{\"name\":\"app.bin\"}");
	add_created(&l, REQ2, "key-b", "{\"name\":\"other.bin\"}");
	add_signature(&l, REQ1, "key-a", "alice", DAY0 + 12 * HOUR + 5);
	add_signature(&l, REQ2, "key-b", NULL, DAY0 + 12 * HOUR + 6);
	add_signature(&l, "00000000000000000000000000000001", "key-a", NULL,
	    DAY0 + 12 * HOUR + 7);
	add_text(&l, POLICY_ENTRY);
	add_text(&l, EFFECTIVE_ENTRY);
	add_signature(&l, "00000000000000000000000000000002", "key-a", NULL,
	    DAY0 + 3 * HOUR);
	add_policy_decision(&l, "carol");

	/* The first walk reads the created entries only. */
	CHECK_EQ_INT(walk(&run, &l, &st, "key-a", &rules, 0, 2, &out), 0);
	CHECK_EQ_INT(st.npending, 2);
	CHECK_EQ_INT(run.signatures, 0);
	free(out);
	sg_monitor_run_clear(&run);

	/* The second, with rules. */
	rules.patterns[0] = "*.bin";
	rules.npatterns = 1;
	CHECK_EQ_INT(sg_monitor_hours_parse("08-18", &rules.hours), 0);
	rules.max_per_run = 2;
	CHECK_EQ_INT(walk(&run, &l, &st, "key-a", &rules, 2, l.n, &out), 0);
	CHECK_EQ_INT(run.entries, 7);
	CHECK_EQ_INT(run.signatures, 3);
	CHECK_EQ_INT(run.policy_changes, 3);
	/* 4 and 7: name unknown; 7: outside the hours; and 3 signatures,
	 * more than --max-per-run 2. */
	CHECK_EQ_INT(run.violations, 4);
	CHECK_EQ_INT(st.npending, 0);
	CHECK(out != NULL && strstr(out, "signature: index 2 time "
	    "2026-12-05T12:00:05Z key key-a request " REQ1 " requester ci "
	    "approvers alice hsm 0e44881140b3cfdc CH artifact sha256:" HEX64
	    " name app.bin\n") != NULL);
	CHECK(out != NULL && strstr(out, "signature: index 4 ") != NULL &&
	    strstr(out, "approvers - hsm") != NULL);
	CHECK(out != NULL && strstr(out, "signature: index 7 ") != NULL);
	CHECK(out != NULL && strstr(out, "index 3 ") == NULL);
	CHECK(out != NULL && strstr(out, "policy: dev@2 sha256:" HEX64
	    " pending index 5\n") != NULL);
	CHECK(out != NULL && strstr(out, "policy: dev@2 sha256:" HEX64
	    " effective index 6\n") != NULL);
	CHECK(out != NULL && strstr(out, "policy: dev@2 sha256:" HEX64
	    " pending index 8 approval by carol\n") != NULL);
	CHECK_EQ_INT(run.ncounts, 2);
	for (i = 0; i < run.ncounts; i++)
		CHECK_EQ_INT(run.counts[i].n,
		    strcmp(run.counts[i].key, "key-a") == 0 ? 3 : 1);

	/* The textfile. */
	if ((fd = mkstemp(path)) < 0)
		abort();
	close(fd);
	memset(&mm, 0, sizeof(mm));
	mm.now = 1796440000;
	mm.exit_status = SG_MONITOR_EXIT_RULE;
	mm.last_success = 1796440000;
	mm.log_size = l.n;
	mm.violations_total = 5;
	mm.run = &run;
	mm.key = "key-a";
	CHECK_EQ_INT(sg_monitor_prometheus_write(path, &mm), 0);
	CHECK_EQ_INT(sg_read_file(path, 65536, &prom, &plen), 0);
	CHECK(prom != NULL && strstr(prom,
	    "\nsigngate_log_monitor_signatures{key=\"key-a\"} 3\n") != NULL);
	CHECK(prom != NULL && strstr(prom,
	    "\nsigngate_log_monitor_signatures{key=\"key-b\"} 1\n") != NULL);
	CHECK(prom != NULL && strstr(prom,
	    "\nsigngate_log_monitor_violations 4\n") != NULL);
	CHECK(prom != NULL && strstr(prom,
	    "\nsigngate_log_monitor_violations_total 5\n") != NULL);
	CHECK(prom != NULL && strstr(prom,
	    "\nsigngate_log_monitor_up 1\n") != NULL);
	CHECK(prom != NULL && strstr(prom,
	    "\nsigngate_log_monitor_log_size 9\n") != NULL);
	free(prom);
	prom = NULL;
	/* A failed run: no per-run figures, up 0. */
	mm.exit_status = 4;
	mm.run = NULL;
	CHECK_EQ_INT(sg_monitor_prometheus_write(path, &mm), 0);
	CHECK_EQ_INT(sg_read_file(path, 65536, &prom, &plen), 0);
	CHECK(prom != NULL && strstr(prom, "\nsigngate_log_monitor_up 0\n") !=
	    NULL && strstr(prom, "signgate_log_monitor_signatures") == NULL &&
	    strstr(prom, "\nsigngate_log_monitor_exit_status 4\n") != NULL);
	free(prom);
	unlink(path);

	free(out);
	sg_monitor_run_clear(&run);

	/* --policy-changes-fail, without --key: each policy entry counts. */
	memset(&rules, 0, sizeof(rules));
	rules.policy_changes_fail = 1;
	CHECK_EQ_INT(walk(&run, &l, &st, NULL, &rules, 5, l.n, &out), 0);
	CHECK_EQ_INT(run.signatures, 0);
	CHECK_EQ_INT(run.policy_changes, 3);
	CHECK_EQ_INT(run.violations, 3);
	CHECK(out != NULL && strstr(out, "signature:") == NULL);
	free(out);
	sg_monitor_run_clear(&run);
	sg_monitor_state_clear(&st);
	for (i = 0; i < l.n; i++)
		free(l.entries[i]);
}

/* An entry the monitor cannot read stops the walk with exit 4. */
static void
test_scan_unreadable(void)
{
	struct sg_monitor_state st;
	struct sg_monitor_rules rules;
	struct sg_monitor_run run;
	struct fake_log l;
	char *out = NULL;
	size_t i;

	memset(&l, 0, sizeof(l));
	memset(&st, 0, sizeof(st));
	memset(&rules, 0, sizeof(rules));
	add_text(&l, "signgate-log-entry v1\ntype frobnicated\ntime 1\n");
	add_text(&l, "signgate-log-entry v1\ntype policy\ntime 1\n"
	    "policy dev@2 sha256:" HEX64 "\nstatus maybe\n");
	for (i = 0; i < l.n; i++) {
		CHECK_EQ_INT(walk(&run, &l, &st, NULL, &rules, i, i + 1,
		    &out), 4);
		CHECK_EQ_INT(run.entries, 0);
		free(out);
		sg_monitor_run_clear(&run);
	}
	for (i = 0; i < l.n; i++)
		free(l.entries[i]);
	sg_monitor_state_clear(&st);
}

SG_TEST_MAIN("monitor",
    T(test_hours_parse),
    T(test_hours_contain),
    T(test_check),
    T(test_state),
    T(test_cosigned),
    T(test_scan),
    T(test_scan_release),
    T(test_scan_unreadable))
