/*
 * Tests for notifications' pure part (src/notify.c): HMAC-SHA256 against
 * RFC 4231, the Signgate-Signature header, the retry schedule's bounds,
 * filters, the event's JSON and its Slack line; and the secret file's
 * rules when the webhooks are opened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_notify.h"
#include "sg_test.h"
#include "sg_util.h"

static char tmpdir[64];

static void
test_setup(void)
{
	CHECK_EQ_INT(sg_fx_tmpdir("notify", tmpdir, sizeof(tmpdir)), 0);
}

static void
test_teardown(void)
{
	CHECK_EQ_INT(sg_fx_rm_tree(tmpdir), 0);
}

/* RFC 4231, section 4: the test cases of HMAC-SHA-256 (case 5's output
 * is truncated to 128 bits there). */
static void
test_hmac_rfc4231(void)
{
	static const struct {
		int keybyte;           /* -1: the bytes 0x01..0x19 */
		size_t keylen;
		const char *key;       /* if not NULL: this text */
		int databyte;
		size_t datalen;
		const char *data;
		const char *mac;
	} v[] = {
		{ 0x0b, 20, NULL, 0, 0, "Hi There",
		  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
		{ 0, 4, "Jefe", 0, 0, "what do ya want for nothing?",
		  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
		{ 0xaa, 20, NULL, 0xdd, 50, NULL,
		  "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
		{ -1, 25, NULL, 0xcd, 50, NULL,
		  "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
		{ 0x0c, 20, NULL, 0, 0, "Test With Truncation",
		  "a3b6167473100ee06e0c796c2955552b" },
		{ 0xaa, 131, NULL, 0, 0,
		  "Test Using Larger Than Block-Size Key - Hash Key First",
		  "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
		{ 0xaa, 131, NULL, 0, 0,
		  "This is a test using a larger than block-size key and a "
		  "larger than block-size data. The key needs to be hashed "
		  "before being used by the HMAC algorithm.",
		  "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
	};
	uint8_t key[131], data[64], mac[SG_HMAC_SHA256_LEN];
	char hex[2 * SG_HMAC_SHA256_LEN + 1];
	const uint8_t *d;
	size_t i, j, dlen;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (v[i].key != NULL)
			memcpy(key, v[i].key, v[i].keylen);
		else
			for (j = 0; j < v[i].keylen; j++)
				key[j] = v[i].keybyte < 0 ? (uint8_t)(j + 1) :
				    (uint8_t)v[i].keybyte;
		if (v[i].data != NULL) {
			d = (const uint8_t *)v[i].data;
			dlen = strlen(v[i].data);
		} else {
			memset(data, v[i].databyte, v[i].datalen);
			d = data;
			dlen = v[i].datalen;
		}
		CHECK_EQ_INT(sg_hmac_sha256(key, v[i].keylen, d, dlen, mac),
		    0);
		sg_hex_encode(mac, sizeof(mac), hex);
		if (strncmp(hex, v[i].mac, strlen(v[i].mac)) != 0)
			fprintf(stderr, "  case %zu: %s\n", i + 1, hex);
		CHECK(strncmp(hex, v[i].mac, strlen(v[i].mac)) == 0);
	}
}

/* The header is "v1=" and the HMAC of "<timestamp>." + body: the value
 * here was computed with another implementation (Python's hmac). */
static void
test_signature_header(void)
{
	static const char secret[] = "0123456789abcdef-secret";
	char sig[SG_NOTIFY_SIG_SIZE], other[SG_NOTIFY_SIG_SIZE];

	CHECK_EQ_INT(sg_notify_signature((const uint8_t *)secret,
	    strlen(secret), 1700000000, "{\"a\":1}", 7, sig), 0);
	CHECK_STR(sig, "v1=6948a2dc6985c92d09b9edade5c97dce2ba201452d91a72e"
	    "4a20d35abe4d3420");
	/* The timestamp and every byte of the body count. */
	CHECK_EQ_INT(sg_notify_signature((const uint8_t *)secret,
	    strlen(secret), 1700000001, "{\"a\":1}", 7, other), 0);
	CHECK(strcmp(sig, other) != 0);
	CHECK_EQ_INT(sg_notify_signature((const uint8_t *)secret,
	    strlen(secret), 1700000000, "{\"a\":2}", 7, other), 0);
	CHECK(strcmp(sig, other) != 0);
}

/* 1 s doubling, capped, less up to half of it; never 0. */
static void
test_backoff_bounds(void)
{
	unsigned a, d, full, lo, hi;
	uint32_t rnd;

	CHECK_EQ_INT(sg_notify_backoff(1, 300, 0), 1);
	CHECK_EQ_INT(sg_notify_backoff(2, 300, 0), 2);
	CHECK_EQ_INT(sg_notify_backoff(9, 300, 0), 256);
	CHECK_EQ_INT(sg_notify_backoff(10, 300, 0), 300);
	CHECK_EQ_INT(sg_notify_backoff(1000, 300, 0), 300);
	CHECK_EQ_INT(sg_notify_backoff(5, 2, 0), 2);
	for (a = 1; a <= 40; a++) {
		full = a >= 10 ? 300 : 1u << (a - 1);
		if (full > 300)
			full = 300;
		lo = full - full / 2;
		hi = full;
		for (rnd = 0; rnd < 2000; rnd += 7) {
			d = sg_notify_backoff(a, 300, rnd * 2654435761u);
			if (d < lo || d > hi || d < 1) {
				fprintf(stderr, "  attempt %u: %u outside "
				    "%u..%u\n", a, d, lo, hi);
				CHECK(0);
				return;
			}
		}
	}
	/* The jitter does move it. */
	CHECK(sg_notify_backoff(12, 300, 17) != sg_notify_backoff(12, 300, 0));
}

static void
test_filters(void)
{
	struct sg_webhook_config w;

	memset(&w, 0, sizeof(w));
	CHECK(sg_notify_wants(&w, "grant.revoked"));
	snprintf(w.events[0], sizeof(w.events[0]), "request.*");
	snprintf(w.events[1], sizeof(w.events[1]), "release.signed");
	snprintf(w.events[2], sizeof(w.events[2]), "*.cancelled");
	w.nevents = 3;
	CHECK(sg_notify_wants(&w, "request.created"));
	CHECK(sg_notify_wants(&w, "request.approval"));
	CHECK(sg_notify_wants(&w, "release.signed"));
	CHECK(sg_notify_wants(&w, "grant.cancelled"));
	CHECK(!sg_notify_wants(&w, "release.created"));
	CHECK(!sg_notify_wants(&w, "requests.created"));
	CHECK(!sg_notify_wants(&w, "grant.active"));
}

/* A pending request with one decision, as the change hook sees it. */
static void
sample(struct sg_request *q, char *artifact)
{
	memset(q, 0, sizeof(*q));
	snprintf(q->id, sizeof(q->id), "c70283ce9e4702d44eceb67e2783bbe3");
	snprintf(q->key, sizeof(q->key), "release");
	snprintf(q->digest_alg, sizeof(q->digest_alg), "sha256");
	memset(q->digest_hex, 'a', 64);
	q->format = SG_FORMAT_RAW;
	q->artifact_json = artifact;
	snprintf(q->requester, sizeof(q->requester), "ci");
	q->created_at = 1796361173;
	q->expires_at = 1796447573;
	q->state = SG_REQ_PENDING;
	q->kind = SG_KIND_REQUEST;
	q->napprovals = 1;
}

static void
test_event_json(void)
{
	char artifact[] = "{\"name\":\"app<1>.tar.gz\",\"version\":\"1.4.2\"}";
	struct sg_notify_term terms[2] = {
		{ "security-officers", 2, 1 }, { "release-managers", 1, 1 },
	};
	struct sg_store_change c;
	struct sg_notify_event ev;
	struct sg_request q;
	json_t *j, *o, *m;
	char *body = NULL, *slack = NULL, id2[SG_OUTBOX_ID_SIZE];

	sample(&q, artifact);
	memset(&ev, 0, sizeof(ev));
	memset(&c, 0, sizeof(c));
	c.what = SG_CHANGE_DECISION;
	CHECK_EQ_INT(sg_notify_event_type(q.kind, &c, ev.type), 0);
	CHECK_STR(ev.type, "request.approval");
	c.what = SG_CHANGE_STATE;
	c.state = SG_REQ_REVOKED;
	CHECK_EQ_INT(sg_notify_event_type(SG_KIND_GRANT, &c, id2), 0);
	CHECK_STR(id2, "grant.revoked");
	c.state = SG_REQ_PENDING;
	CHECK_EQ_INT(sg_notify_event_type(SG_KIND_GRANT, &c, id2),
	    SG_ERR_INVALID);

	CHECK_EQ_INT(sg_notify_event_id(ev.id), 0);
	CHECK_EQ_INT(sg_notify_event_id(id2), 0);
	CHECK_EQ_INT(strlen(ev.id), 32);
	CHECK(strcmp(ev.id, id2) != 0);
	ev.at = 1796361200;
	ev.gateway = "gw-a";
	ev.object = &q;
	ev.terms = terms;
	ev.nterms = 2;
	ev.officer = "alice";
	ev.decision = 1;
	CHECK_EQ_INT(sg_notify_event_json(&ev, &body), 0);
	j = body != NULL ? json_loads(body, JSON_REJECT_DUPLICATES, NULL) :
	    NULL;
	CHECK(j != NULL);
	if (j != NULL) {
		CHECK_STR(json_string_value(json_object_get(j, "id")), ev.id);
		CHECK_STR(json_string_value(json_object_get(j, "type")),
		    "request.approval");
		CHECK_STR(json_string_value(json_object_get(j, "at")),
		    "2026-12-04T05:13:20Z");
		CHECK_STR(json_string_value(json_object_get(j, "officer")),
		    "alice");
		CHECK_STR(json_string_value(json_object_get(j, "decision")),
		    "approve");
		CHECK_STR(json_string_value(json_object_get(j, "gateway")),
		    "gw-a");
		CHECK(json_object_get(j, "release") == NULL);
		o = json_object_get(j, "request");
		CHECK_STR(json_string_value(json_object_get(o, "state")),
		    "pending");
		CHECK_STR(json_string_value(json_object_get(o, "requester")),
		    "ci");
		CHECK_STR(json_string_value(json_object_get(json_object_get(o,
		    "artifact"), "version")), "1.4.2");
		m = json_object_get(o, "missing");
		CHECK_EQ_INT(json_array_size(m), 2);
		CHECK_STR(json_string_value(json_object_get(json_array_get(m,
		    1), "group")), "release-managers");
		CHECK_EQ_INT(json_integer_value(json_object_get(
		    json_array_get(m, 0), "missing")), 1);
		json_decref(j);
	}

	/* Slack: one line, the officer, what is missing, and <>& escaped. */
	CHECK_EQ_INT(sg_notify_slack_body(body, &slack), 0);
	j = slack != NULL ? json_loads(slack, 0, NULL) : NULL;
	CHECK(j != NULL && json_object_size(j) == 1);
	if (j != NULL) {
		const char *t = json_string_value(json_object_get(j, "text"));

		CHECK(t != NULL && strchr(t, '\n') == NULL);
		CHECK(t != NULL && strstr(t, "request "
		    "c70283ce9e4702d44eceb67e2783bbe3") != NULL);
		CHECK(t != NULL && strstr(t, "app&lt;1&gt;.tar.gz 1.4.2") !=
		    NULL);
		CHECK(t != NULL && strstr(t, "approved by alice; still needs "
		    "1 of security-officers, 1 of release-managers") != NULL);
		json_decref(j);
	}
	free(slack);
	free(body);
	CHECK_EQ_INT(sg_notify_slack_body("{\"type\": \"x\"}", &slack),
	    SG_ERR_INVALID);
}

/* The secret file must exist, be ours, mode 0600 and hold 16 bytes. */
static void
test_secret_file(void)
{
	struct sg_notify_config c;
	struct sg_notify *n = NULL;
	char path[128], err[512];
	FILE *f;

	memset(&c, 0, sizeof(c));
	snprintf(path, sizeof(path), "%s/hook.hmac", tmpdir);
	c.nwebhooks = 1;
	snprintf(c.webhooks[0].name, sizeof(c.webhooks[0].name), "ops");
	c.webhooks[0].url = "https://127.0.0.1:1/";
	c.webhooks[0].secret_file = path;
	c.webhooks[0].format = SG_WEBHOOK_JSON;
	c.retry_max_seconds = 300;

	err[0] = '\0';
	CHECK(sg_notify_open(&c, NULL, "gw", &n, err, sizeof(err)) != 0);
	CHECK(n == NULL && strstr(err, "ops") != NULL &&
	    strstr(err, path) != NULL);

	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs("s3cr3t-0123456789abcdef\n", f);
	fclose(f);
	CHECK_EQ_INT(chmod(path, 0644), 0);
	err[0] = '\0';
	CHECK_EQ_INT(sg_notify_open(&c, NULL, "gw", &n, err, sizeof(err)),
	    SG_ERR_PERMISSIONS);
	CHECK(n == NULL && strstr(err, "s3cr3t") == NULL);

	CHECK_EQ_INT(chmod(path, 0600), 0);
	CHECK_EQ_INT(sg_notify_open(&c, NULL, "gw", &n, err, sizeof(err)), 0);
	sg_notify_free(n);

	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	fputs("short\n", f);
	fclose(f);
	n = NULL;
	CHECK_EQ_INT(sg_notify_open(&c, NULL, "gw", &n, err, sizeof(err)),
	    SG_ERR_INVALID);
	CHECK(n == NULL && strstr(err, "16 bytes") != NULL);
}

SG_TEST_MAIN("notify",
    T(test_setup),
    T(test_hmac_rfc4231),
    T(test_signature_header),
    T(test_backoff_bounds),
    T(test_filters),
    T(test_event_json),
    T(test_secret_file),
    T(test_teardown))
