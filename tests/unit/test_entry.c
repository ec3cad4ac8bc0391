/*
 * Tests for transparency log entries: exact renderings, round trips for
 * every type (parse(build(e)) gives e back, build(parse(x)) gives x), one
 * refusal for each kind of malformed text and invalid field, and a
 * mutation loop over a valid entry of every type.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_crypto.h"
#include "sg_dsse.h"
#include "sg_entry.h"
#include "sg_err.h"
#include "sg_test.h"

#define REQ "0123456789abcdef0123456789abcdef"

static const char stmt[] = "signgate approval v1\nrequest " REQ "\n";
static const char art[] = "{\"sha256\":\"ab\"}";
static const char env1[] = "{\"payload\":\"1\",\"signatures\":[]}";
static const char env2[] = "{\"payload\":\"2\",\"signatures\":[]}";
static const uint8_t spki[] = { 0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b,
    0x65, 0x70, 0x03, 0x21, 0x00, 0xff };
static const char policy_file[] = "policy corp\nversion 7\n";
static const uint8_t sig[] = { 0x01, 0x00, 0xfe, 0x7f };
static const char line1[] = "sha256:"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    " raw app.tar.gz 1.2.3";

static char *
dup_mem(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Entries own their buffers, as after a parse, so that clear frees them. */
/* public-key .. hsm of a signature or an artifact-signature. */
static void
fill_signed(struct sg_entry *e)
{
	size_t i;

	e->public_key = (uint8_t *)dup_mem(spki, sizeof(spki));
	e->public_key_len = sizeof(spki);
	strcpy(e->algorithm, "ed25519");
	e->signature = (uint8_t *)dup_mem(sig, sizeof(sig));
	e->signature_len = sizeof(sig);
	e->has_cms = 1;
	for (i = 0; i < 32; i++)
		e->cms_sha256[i] = (uint8_t)(0xa0 + i);
	strcpy(e->hsm_serial, "5c1f2e4a9d0b");
	strcpy(e->hsm_country, "DE");
}

static void
fill_approvals(struct sg_entry *e)
{
	size_t i;

	e->statement = dup_mem(stmt, strlen(stmt));
	e->statement_len = strlen(stmt);
	for (i = 0; i < 2; i++) {
		const char *v = i == 0 ? env1 : env2;
		e->approvals[i] = dup_mem(v, strlen(v));
		e->approval_lens[i] = strlen(v);
	}
	e->napprovals = 2;
}

static void
fill(struct sg_entry *e, enum sg_entry_type t)
{
	size_t i;

	memset(e, 0, sizeof(*e));
	e->type = t;
	e->time = 1764417600;
	strcpy(e->request, REQ);
	switch (t) {
	case SG_ENTRY_CREATED:
		e->statement = dup_mem(stmt, strlen(stmt));
		e->statement_len = strlen(stmt);
		e->artifact_json = dup_mem(art, strlen(art));
		e->artifact_len = strlen(art);
		break;
	case SG_ENTRY_DECISION:
		strcpy(e->officer, "alice.smith_2-b");
		e->approve = 1;
		e->envelope = dup_mem(env1, strlen(env1));
		e->envelope_len = strlen(env1);
		break;
	case SG_ENTRY_SIGNATURE:
		fill_approvals(e);
		fill_signed(e);
		break;
	case SG_ENTRY_APPROVED:
		fill_approvals(e);
		break;
	case SG_ENTRY_ARTIFACT_SIGNATURE:
		e->approved_index = 41;
		e->position = 3;
		e->line = dup_mem(line1, strlen(line1));
		e->line_len = strlen(line1);
		e->npath = 3;
		for (i = 0; i < 3 * SG_HASH_LEN; i++)
			e->path[i / SG_HASH_LEN][i % SG_HASH_LEN] =
			    (uint8_t)(i * 7);
		fill_signed(e);
		break;
	case SG_ENTRY_REVOKED:
		strcpy(e->by, "bob");
		e->reason = dup_mem("key compromised", 15);
		e->reason_len = 15;
		break;
	case SG_ENTRY_EXPIRED:
		break;
	case SG_ENTRY_FAILED:
		e->reason = dup_mem("HSM unavailable", 15);
		e->reason_len = 15;
		break;
	case SG_ENTRY_CANCELLED:
		strcpy(e->by, "alice");
		e->reason = dup_mem("wrong build", 11);
		e->reason_len = 11;
		break;
	case SG_ENTRY_POLICY:
		strcpy(e->policy_name, "corp");
		e->policy_version = 7;
		strcpy(e->policy_sha256, REQ REQ);
		e->has_previous = 1;
		memset(e->previous_sha256, 'e', SG_SHA256_HEX_LEN);
		e->pending = 1;
		e->text = dup_mem(policy_file, strlen(policy_file));
		e->text_len = strlen(policy_file);
		break;
	case SG_ENTRY_POLICY_DECISION:
		strcpy(e->officer, "carol");
		e->envelope = dup_mem(env2, strlen(env2));
		e->envelope_len = strlen(env2);
		break;
	case SG_ENTRY_POLICY_EFFECTIVE:
		strcpy(e->policy_name, "corp");
		e->policy_version = 7;
		strcpy(e->policy_sha256, REQ REQ);
		e->approval_entries[0] = 12;
		e->approval_entries[1] = 15;
		e->napproval_entries = 2;
		break;
	}
}

static int
same_blob(const void *a, size_t al, const void *b, size_t bl)
{
	if (al != bl)
		return 0;
	if (al == 0)
		return 1;
	return a != NULL && b != NULL && memcmp(a, b, al) == 0;
}

static int
same_entry(const struct sg_entry *a, const struct sg_entry *b)
{
	size_t i;

	if (a->type != b->type || a->time != b->time ||
	    strcmp(a->request, b->request) != 0 ||
	    strcmp(a->officer, b->officer) != 0 || a->approve != b->approve ||
	    strcmp(a->algorithm, b->algorithm) != 0 ||
	    a->has_cms != b->has_cms ||
	    (a->has_cms && memcmp(a->cms_sha256, b->cms_sha256, 32) != 0) ||
	    strcmp(a->hsm_serial, b->hsm_serial) != 0 ||
	    strcmp(a->hsm_country, b->hsm_country) != 0 ||
	    strcmp(a->by, b->by) != 0 ||
	    a->napprovals != b->napprovals ||
	    a->approved_index != b->approved_index ||
	    a->position != b->position || a->npath != b->npath ||
	    (a->npath > 0 && a->npath <= SG_MANIFEST_PATH_MAX &&
	    memcmp(a->path, b->path, a->npath * SG_HASH_LEN) != 0) ||
	    !same_blob(a->line, a->line_len, b->line, b->line_len) ||
	    strcmp(a->policy_name, b->policy_name) != 0 ||
	    a->policy_version != b->policy_version ||
	    strcmp(a->policy_sha256, b->policy_sha256) != 0 ||
	    a->has_previous != b->has_previous ||
	    strcmp(a->previous_sha256, b->previous_sha256) != 0 ||
	    a->pending != b->pending ||
	    !same_blob(a->text, a->text_len, b->text, b->text_len) ||
	    a->napproval_entries != b->napproval_entries ||
	    memcmp(a->approval_entries, b->approval_entries,
	    sizeof(a->approval_entries)) != 0)
		return 0;
	for (i = 0; i < a->napprovals; i++)
		if (!same_blob(a->approvals[i], a->approval_lens[i],
		    b->approvals[i], b->approval_lens[i]))
			return 0;
	return same_blob(a->statement, a->statement_len, b->statement,
	    b->statement_len) &&
	    same_blob(a->artifact_json, a->artifact_len, b->artifact_json,
	    b->artifact_len) &&
	    same_blob(a->envelope, a->envelope_len, b->envelope,
	    b->envelope_len) &&
	    same_blob(a->public_key, a->public_key_len, b->public_key,
	    b->public_key_len) &&
	    same_blob(a->signature, a->signature_len, b->signature,
	    b->signature_len) &&
	    same_blob(a->reason, a->reason_len, b->reason, b->reason_len);
}

static const char expired_text[] =
    "signgate-log-entry v1\n"
    "type expired\n"
    "time 1764417600\n"
    "request " REQ "\n";

/* "wrong build" */
static const char cancelled_text[] =
    "signgate-log-entry v1\n"
    "type cancelled\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "by alice\n"
    "reason d3JvbmcgYnVpbGQ=\n";

static const char decision_text[] =
    "signgate-log-entry v1\n"
    "type decision\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "officer alice.smith_2-b\n"
    "decision approve\n"
    "envelope eyJwYXlsb2FkIjoiMSIsInNpZ25hdHVyZXMiOltdfQ==\n";

static const char signature_text[] =
    "signgate-log-entry v1\n"
    "type signature\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "statement c2lnbmdhdGUgYXBwcm92YWwgdjEKcmVxdWVzdCAwMTIzNDU2Nzg5YWJjZGVmMDEy"
    "MzQ1Njc4OWFiY2RlZgo=\n"
    "approval eyJwYXlsb2FkIjoiMSIsInNpZ25hdHVyZXMiOltdfQ==\n"
    "approval eyJwYXlsb2FkIjoiMiIsInNpZ25hdHVyZXMiOltdfQ==\n"
    "public-key MCowBQYDK2VwAyEA/w==\n"
    "algorithm ed25519\n"
    "signature AQD+fw==\n"
    "cms-sha256 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n"
    "hsm 5c1f2e4a9d0b DE\n";

static const char approved_text[] =
    "signgate-log-entry v1\n"
    "type approved\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "statement c2lnbmdhdGUgYXBwcm92YWwgdjEKcmVxdWVzdCAwMTIzNDU2Nzg5YWJjZGVmMDEy"
    "MzQ1Njc4OWFiY2RlZgo=\n"
    "approval eyJwYXlsb2FkIjoiMSIsInNpZ25hdHVyZXMiOltdfQ==\n"
    "approval eyJwYXlsb2FkIjoiMiIsInNpZ25hdHVyZXMiOltdfQ==\n";

static const char artifact_text[] =
    "signgate-log-entry v1\n"
    "type artifact-signature\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "approved 41\n"
    "position 3\n"
    "line c2hhMjU2OjAwMTEyMjMzNDQ1NTY2Nzc4ODk5YWFiYmNjZGRlZWZmMDAxMTIyMzM0NDU1"
    "NjY3Nzg4OTlhYWJiY2NkZGVlZmYgcmF3IGFwcC50YXIuZ3ogMS4yLjM=\n"
    "path AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n"
    "path 4Ofu9fwDChEYHyYtNDtCSVBXXmVsc3qBiI+WnaSrsrk=\n"
    "path wMfO1dzj6vH4/wYNFBsiKTA3PkVMU1phaG92fYSLkpk=\n"
    "public-key MCowBQYDK2VwAyEA/w==\n"
    "algorithm ed25519\n"
    "signature AQD+fw==\n"
    "cms-sha256 a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n"
    "hsm 5c1f2e4a9d0b DE\n";

static const char revoked_text[] =
    "signgate-log-entry v1\n"
    "type revoked\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "by bob\n"
    "reason a2V5IGNvbXByb21pc2Vk\n";

static void
test_build_exact(void)
{
	struct sg_entry e;
	char *s = NULL;
	size_t n = 0;

	fill(&e, SG_ENTRY_EXPIRED);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK_EQ_INT(n, strlen(expired_text));
	CHECK(s != NULL && n == strlen(expired_text) &&
	    memcmp(s, expired_text, n) == 0);
	free(s);
	sg_entry_clear(&e);

	fill(&e, SG_ENTRY_DECISION);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n == strlen(decision_text) &&
	    memcmp(s, decision_text, n) == 0);
	free(s);
	e.approve = 0;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && strstr(s, "\ndecision reject\n") != NULL);
	free(s);
	sg_entry_clear(&e);

	fill(&e, SG_ENTRY_SIGNATURE);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n == strlen(signature_text) &&
	    memcmp(s, signature_text, n) == 0);
	free(s);
	sg_entry_clear(&e);
	CHECK(e.statement == NULL && e.napprovals == 0 && e.type == 0);

	fill(&e, SG_ENTRY_APPROVED);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n == strlen(approved_text) &&
	    memcmp(s, approved_text, n) == 0);
	free(s);
	sg_entry_clear(&e);
	fill(&e, SG_ENTRY_ARTIFACT_SIGNATURE);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n == strlen(artifact_text) &&
	    memcmp(s, artifact_text, n) == 0);
	free(s);
	/* A grant's signature: no path, no CMS. */
	e.npath = 0;
	e.has_cms = 0;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && memmem(s, n, "\npath ", 6) == NULL &&
	    memmem(s, n, "cms-sha256", 10) == NULL &&
	    memmem(s, n, "=\npublic-key ", 13) != NULL);
	free(s);
	sg_entry_clear(&e);
	CHECK(e.line == NULL);
	fill(&e, SG_ENTRY_REVOKED);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n == strlen(revoked_text) &&
	    memcmp(s, revoked_text, n) == 0);
	free(s);
	sg_entry_clear(&e);
}

static void round_trip(const struct sg_entry *);
static int parses_edited(const char *, const char *, const char *);

static const char policy_text[] =
    "signgate-log-entry v1\n"
    "type policy\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "policy corp@7 sha256:" REQ REQ "\n"
    "previous sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\n"
    "status pending\n"
    "text cG9saWN5IGNvcnAKdmVyc2lvbiA3Cg==\n";

static const char effective_text[] =
    "signgate-log-entry v1\n"
    "type policy-effective\n"
    "time 1764417600\n"
    "request " REQ "\n"
    "policy corp@7 sha256:" REQ REQ "\n"
    "approval-entry 12\n"
    "approval-entry 15\n";

/* The policy entries: exact renderings, variants, refusals. */
static void
test_policy_entries(void)
{
	struct sg_entry e, p;
	char *s = NULL, *big, *saved;
	size_t i, n = 0, saved_len;
	int r;

	fill(&e, SG_ENTRY_POLICY);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n == strlen(policy_text) &&
	    memcmp(s, policy_text, n) == 0);
	free(s);
	e.has_previous = 0;
	memset(e.previous_sha256, 0, sizeof(e.previous_sha256));
	e.pending = 0;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && strstr(s, "\nprevious none\nstatus effective\n") !=
	    NULL);
	free(s);
	round_trip(&e);
	/* The request is the policy's SHA-256's first half. */
	e.request[0] = '1';
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	e.request[0] = '0';
	e.policy_sha256[40] = 'A';
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	e.policy_sha256[40] = 'a';
	e.policy_version = 0;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	e.policy_version = ((uint64_t)1 << 53) + 1;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	e.policy_version = 7;
	strcpy(e.policy_name, "a b");
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	strcpy(e.policy_name, "corp");
	e.text[3] = '\0';
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	e.text_len = 0;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	/* A policy file longer than a policy may be is not written. */
	saved = e.text;
	saved_len = e.text_len;
	if ((big = malloc(SG_POLICY_FILE_MAX + 2)) != NULL) {
		memset(big, 'a', SG_POLICY_FILE_MAX + 1);
		big[SG_POLICY_FILE_MAX + 1] = '\0';
		e.text = big;
		e.text_len = SG_POLICY_FILE_MAX + 1;
		CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_TOO_LARGE);
		e.text_len = SG_POLICY_FILE_MAX;
		r = sg_entry_build(&e, &s, &n);
		CHECK_EQ_INT(r, 0);
		if (r == 0) {
			CHECK(n <= SG_ENTRY_MAX);
			free(s);
		}
		free(big);
	}
	e.text = saved;
	e.text_len = saved_len;
	sg_entry_clear(&e);

	fill(&e, SG_ENTRY_POLICY_EFFECTIVE);
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n == strlen(effective_text) &&
	    memcmp(s, effective_text, n) == 0);
	free(s);
	/* In increasing order, at least one. */
	e.approval_entries[1] = 12;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	e.napproval_entries = 0;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	/* At most SG_QUORUM_MAX (the approvals that count), and that many
	 * parse back. */
	for (i = 0; i < SG_QUORUM_MAX + 1; i++)
		e.approval_entries[i] = 20 + i;
	e.napproval_entries = SG_QUORUM_MAX;
	r = sg_entry_build(&e, &s, &n);
	CHECK_EQ_INT(r, 0);
	if (r == 0) {
		memset(&p, 0, sizeof(p));
		CHECK_EQ_INT(sg_entry_parse(s, n, &p), 0);
		CHECK_EQ_INT(p.napproval_entries, SG_QUORUM_MAX);
		sg_entry_clear(&p);
		/* One more line than a build writes: refused. */
		big = malloc(n + 32);
		if (big != NULL) {
			memcpy(big, s, n);
			n += (size_t)snprintf(big + n, 32,
			    "approval-entry %d\n", 20 + SG_QUORUM_MAX);
			CHECK(sg_entry_parse(big, n, &p) != 0);
			free(big);
		}
		free(s);
	}
	e.napproval_entries = SG_QUORUM_MAX + 1;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);
	sg_entry_clear(&e);

	/* Parse refusals: what the rendering would never write. */
	CHECK(parses_edited(policy_text, "status pending",
	    "status Pending") != 0);
	CHECK(parses_edited(policy_text, "previous sha256:eee",
	    "previous sha512:eee") != 0);
	CHECK(parses_edited(policy_text, "corp@7", "corp@07") != 0);
	CHECK(parses_edited(policy_text, "corp@7 ", "corp@7  ") != 0);
	CHECK(parses_edited(policy_text, "text cG9s", "text  cG9s") != 0);
	CHECK(parses_edited(effective_text, "approval-entry 12",
	    "approval-entry 012") != 0);
	CHECK(parses_edited(effective_text, "policy corp@7",
	    "policy corp7") != 0);
	memset(&p, 0, sizeof(p));
	CHECK_EQ_INT(sg_entry_parse(policy_text, strlen(policy_text), &p), 0);
	CHECK(p.type == SG_ENTRY_POLICY && p.pending == 1 &&
	    p.has_previous == 1 && p.text_len == strlen(policy_file) &&
	    strcmp(p.text, policy_file) == 0);
	sg_entry_clear(&p);
}

/* The new types' fields, each refused out of its rule. */
static void
test_kind_refuses(void)
{
	struct sg_entry e;
	char *s = NULL;
	size_t n = 12345;

#define REFUSE(t, stmt_) do {						\
	fill(&e, t);							\
	stmt_;								\
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_INVALID);	\
	sg_entry_clear(&e);						\
} while (0)
#define LINE(text) (free(e.line), e.line = dup_mem(text, strlen(text)), \
	e.line_len = strlen(text))
	/* approved: a statement and at least one approval. */
	REFUSE(SG_ENTRY_APPROVED, (free(e.approvals[0]), free(e.approvals[1]),
	    e.napprovals = 0));
	REFUSE(SG_ENTRY_APPROVED, e.napprovals = SG_ENVELOPES_MAX + 1);
	REFUSE(SG_ENTRY_APPROVED, e.approval_lens[0] = 0);
	REFUSE(SG_ENTRY_APPROVED, e.statement_len = 0);
	REFUSE(SG_ENTRY_APPROVED, e.approvals[1][2] = '\0');
	/* artifact-signature: the line canonical, the path bounded. */
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.line_len = 0);
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.line[0] = 'S');
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.line[10] = 'A');
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.line_len = 20);
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, LINE("sha256:00 raw a"));
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, LINE(
	    "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    " raw  app"));
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, LINE(
	    "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	    " raw app\n"));
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.npath = SG_MANIFEST_PATH_MAX + 1);
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.position = SG_GRANT_MAX + 1);
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE,
	    e.approved_index = (uint64_t)INT64_MAX + 1);
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.public_key_len = 0);
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.signature_len = 0);
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, strcpy(e.algorithm, "rsa"));
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, strcpy(e.hsm_country, "de"));
	REFUSE(SG_ENTRY_ARTIFACT_SIGNATURE, e.has_cms = 2);
	/* revoked: by a principal, with a reason. */
	REFUSE(SG_ENTRY_REVOKED, e.by[0] = '\0');
	REFUSE(SG_ENTRY_REVOKED, e.by[1] = ' ');
	REFUSE(SG_ENTRY_REVOKED, e.reason_len = 0);
#undef LINE
#undef REFUSE
	CHECK(s == NULL);
	CHECK_EQ_INT(n, 12345);

	/* The bounds themselves are fine. */
	fill(&e, SG_ENTRY_ARTIFACT_SIGNATURE);
	e.npath = SG_MANIFEST_PATH_MAX;
	e.position = SG_GRANT_MAX;
	e.approved_index = (uint64_t)INT64_MAX;
	round_trip(&e);
	e.npath = 0;
	e.position = 0;
	e.approved_index = 0;
	round_trip(&e);
	sg_entry_clear(&e);
	fill(&e, SG_ENTRY_APPROVED);
	while (e.napprovals > 1)
		free(e.approvals[--e.napprovals]);
	round_trip(&e);
	sg_entry_clear(&e);
}

static void
test_kind_parse_refuses(void)
{
	const char *A = artifact_text, *P = approved_text, *R = revoked_text;
	struct sg_entry e;

	CHECK_EQ_INT(sg_entry_parse(A, strlen(A), &e), 0);
	CHECK_EQ_INT(e.type, SG_ENTRY_ARTIFACT_SIGNATURE);
	CHECK_EQ_INT(e.approved_index, 41);
	CHECK_EQ_INT(e.position, 3);
	CHECK_EQ_INT(e.npath, 3);
	CHECK(e.line != NULL && e.line_len == strlen(line1) &&
	    memcmp(e.line, line1, e.line_len) == 0 &&
	    e.line[e.line_len] == '\0');
	CHECK_EQ_INT(e.path[2][31], (uint8_t)((2 * 32 + 31) * 7));
	sg_entry_clear(&e);
	CHECK_EQ_INT(sg_entry_parse(P, strlen(P), &e), 0);
	CHECK_EQ_INT(e.napprovals, 2);
	sg_entry_clear(&e);
	CHECK_EQ_INT(sg_entry_parse(R, strlen(R), &e), 0);
	CHECK_STR(e.by, "bob");
	sg_entry_clear(&e);

	/* approved without approvals, or with one after the statement
	 * missing. */
	CHECK(parses_edited(P, "approval eyJwYXlsb2FkIjoiMSIsInNpZ25hdHVyZXMi"
	    "OltdfQ==\napproval eyJwYXlsb2FkIjoiMiIsInNpZ25hdHVyZXMiOltdfQ=="
	    "\n", "") != 0);
	CHECK(parses_edited(P, "statement ", "statment ") != 0);
	CHECK(parses_edited(P, "type approved", "type signature") != 0);
	/* Numbers: leading zeros, signs, spaces, over the bounds. */
	CHECK(parses_edited(A, "approved 41\n", "approved 041\n") != 0);
	CHECK(parses_edited(A, "approved 41\n", "approved +41\n") != 0);
	CHECK(parses_edited(A, "approved 41\n", "approved  41\n") != 0);
	CHECK(parses_edited(A, "approved 41\n", "approved\n") != 0);
	CHECK(parses_edited(A, "approved 41\n",
	    "approved 9223372036854775808\n") != 0);
	CHECK(parses_edited(A, "position 3\n", "position 03\n") != 0);
	CHECK(parses_edited(A, "position 3\n", "position 100001\n") != 0);
	CHECK(parses_edited(A, "position 3\n", "position -1\n") != 0);
	/* Order: position before approved, path before line. */
	CHECK(parses_edited(A, "approved 41\nposition 3\n",
	    "position 3\napproved 41\n") != 0);
	CHECK(parses_edited(A, "path AAcO", "pathx AAcO") != 0);
	/* A path hash of 31 or 33 bytes, not canonical base64. */
	CHECK(parses_edited(A, "path AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=",
	    "path AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0g==") != 0);
	CHECK(parses_edited(A, "path AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=",
	    "path AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tkA") != 0);
	CHECK(parses_edited(A, "path AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=",
	    "path AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tl=") != 0);
	/* The line: not base64, not a canonical artifact line. */
	CHECK(parses_edited(A, "line c2hh", "line c2hh!") != 0);
	CHECK(parses_edited(A, "line c2hh", "line U2hh") != 0);
	/* artifact-signature lines in a signature entry, and the reverse. */
	CHECK(parses_edited(A, "type artifact-signature", "type signature")
	    != 0);
	CHECK(parses_edited(signature_text, "type signature",
	    "type artifact-signature") != 0);
	/* revoked: by missing, reason missing. */
	CHECK(parses_edited(R, "by bob\n", "") != 0);
	CHECK(parses_edited(R, "reason a2V5IGNvbXByb21pc2Vk\n", "") != 0);
	CHECK(parses_edited(R, "type revoked", "type revokd") != 0);
}

/* build -> parse -> same struct -> build gives the same bytes. */
static void
round_trip(const struct sg_entry *e)
{
	struct sg_entry p;
	char *s = NULL, *s2 = NULL;
	size_t n = 0, n2 = 0;

	CHECK_EQ_INT(sg_entry_build(e, &s, &n), 0);
	if (s == NULL)
		return;
	memset(&p, 0x77, sizeof(p));
	CHECK_EQ_INT(sg_entry_parse(s, n, &p), 0);
	CHECK(same_entry(e, &p));
	CHECK_EQ_INT(sg_entry_build(&p, &s2, &n2), 0);
	CHECK(s2 != NULL && n2 == n && memcmp(s, s2, n) == 0);
	/* Text fields come back NUL-terminated. */
	if (p.statement != NULL)
		CHECK(p.statement[p.statement_len] == '\0');
	free(s);
	free(s2);
	sg_entry_clear(&p);
}

static void
test_round_trips(void)
{
	struct sg_entry e;
	size_t i;
	int t;

	for (t = SG_ENTRY_CREATED; t <= SG_ENTRY_POLICY_EFFECTIVE; t++) {
		fill(&e, (enum sg_entry_type)t);
		round_trip(&e);
		sg_entry_clear(&e);
	}
	/* Signature variants: no approvals, no CMS, the maximum count,
	 * every algorithm, the time bounds. */
	fill(&e, SG_ENTRY_SIGNATURE);
	for (i = 0; i < e.napprovals; i++)
		free(e.approvals[i]);
	e.napprovals = 0;
	e.has_cms = 0;
	round_trip(&e);
	for (i = 0; i < SG_QUORUM_MAX; i++) {
		e.approvals[i] = dup_mem(env1, strlen(env1));
		e.approval_lens[i] = strlen(env1);
	}
	e.napprovals = SG_QUORUM_MAX;
	round_trip(&e);
	{
		static const char *const algs[] = { "ecdsa-p256",
		    "ecdsa-p384", "rsa-pkcs1", "rsa-pss", "ed25519" };
		for (i = 0; i < 5; i++) {
			strcpy(e.algorithm, algs[i]);
			round_trip(&e);
		}
	}
	e.time = 0;
	round_trip(&e);
	e.time = (int64_t)1 << 62;
	round_trip(&e);
	strcpy(e.hsm_serial, "!~0123456789ABCD");   /* 16 printable */
	strcpy(e.hsm_country, "ZZ");
	round_trip(&e);
	sg_entry_clear(&e);
	fill(&e, SG_ENTRY_DECISION);
	e.approve = 0;
	memset(e.officer, 'o', 63);
	e.officer[63] = '\0';
	round_trip(&e);
	sg_entry_clear(&e);
	/* Binary and UTF-8 content inside base64 fields is opaque. */
	fill(&e, SG_ENTRY_FAILED);
	free(e.reason);
	e.reason = dup_mem("caf\xc3\xa9\n\r\t\xff", 9);
	e.reason_len = 9;
	round_trip(&e);
	sg_entry_clear(&e);
}

static void
test_build_refuses(void)
{
	struct sg_entry e;
	char *s = NULL, *big;
	size_t n = 12345, i;

#define REFUSE(t, stmt_, want) do {					\
	fill(&e, t);							\
	stmt_;								\
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), want);			\
	sg_entry_clear(&e);						\
} while (0)
	REFUSE(SG_ENTRY_EXPIRED, e.type = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_EXPIRED, e.type = SG_ENTRY_REVOKED + 1,
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_EXPIRED, e.time = -1, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_EXPIRED, e.time = ((int64_t)1 << 62) + 1,
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_EXPIRED, e.request[5] = 'A', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_EXPIRED, e.request[31] = '\0', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_EXPIRED, e.request[32] = 'a', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_EXPIRED, e.request[0] = 'g', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_CREATED, e.statement_len = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_CREATED, e.statement[3] = '\0', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_CREATED, (free(e.artifact_json),
	    e.artifact_json = NULL), SG_ERR_INVALID);
	REFUSE(SG_ENTRY_DECISION, e.officer[0] = '\0', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_DECISION, e.officer[2] = ' ', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_DECISION, e.officer[2] = '/', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_DECISION, memset(e.officer, 'o', 64),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_DECISION, e.approve = 2, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_DECISION, e.envelope_len = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, e.napprovals = SG_ENVELOPES_MAX + 1,
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, e.approval_lens[1] = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, e.public_key_len = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, e.signature_len = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, strcpy(e.algorithm, "ecdsa-p521"),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, strcpy(e.algorithm, "ED25519"),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, memset(e.algorithm, 'a', 16),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, e.has_cms = 2, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, strcpy(e.hsm_serial, ""), SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, strcpy(e.hsm_serial, "a b"),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, strcpy(e.hsm_serial, "caf\xc3\xa9"),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, memset(e.hsm_serial, 's', 17),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, strcpy(e.hsm_country, "de"),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, strcpy(e.hsm_country, "D"),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_SIGNATURE, memset(e.hsm_country, 'D', 3),
	    SG_ERR_INVALID);
	REFUSE(SG_ENTRY_FAILED, e.reason_len = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_CANCELLED, e.reason_len = 0, SG_ERR_INVALID);
	REFUSE(SG_ENTRY_CANCELLED, e.by[0] = '\0', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_CANCELLED, e.by[1] = ' ', SG_ERR_INVALID);
	REFUSE(SG_ENTRY_CANCELLED, memset(e.by, 'b', 64), SG_ERR_INVALID);
	CHECK(s == NULL);
	CHECK_EQ_INT(n, 12345);
	/* Each field one byte over its limit: too large for this build to
	 * write (the parser still reads what older builds wrote). */
	big = calloc(1, SG_ENTRY_MAX + 1);
	memset(big, 'x', SG_ENTRY_MAX);
#define OVER(t, field, lenfield, limit) do {				\
	fill(&e, t);							\
	free(e.field);							\
	e.field = (void *)dup_mem(big, (limit) + 1);			\
	e.lenfield = (limit) + 1;					\
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_TOO_LARGE);	\
	e.lenfield = (limit);						\
	round_trip(&e);							\
	sg_entry_clear(&e);						\
} while (0)
	OVER(SG_ENTRY_CREATED, statement, statement_len, SG_STATEMENT_MAX);
	OVER(SG_ENTRY_CREATED, artifact_json, artifact_len,
	    SG_ARTIFACT_JSON_MAX);
	OVER(SG_ENTRY_DECISION, envelope, envelope_len, SG_ENVELOPE_MAX);
	OVER(SG_ENTRY_SIGNATURE, public_key, public_key_len,
	    SG_ENTRY_SPKI_MAX);
	OVER(SG_ENTRY_SIGNATURE, signature, signature_len, SG_MAX_SIG);
	OVER(SG_ENTRY_FAILED, reason, reason_len, SG_ENTRY_REASON_MAX);
	OVER(SG_ENTRY_REVOKED, reason, reason_len, SG_ENTRY_REASON_MAX);
#undef OVER
	/* One approval more than a quorum can have, or one too long. */
	fill(&e, SG_ENTRY_APPROVED);
	for (i = e.napprovals; i <= SG_QUORUM_MAX; i++) {
		e.approvals[i] = dup_mem(env1, strlen(env1));
		e.approval_lens[i] = strlen(env1);
	}
	e.napprovals = SG_QUORUM_MAX + 1;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_TOO_LARGE);
	sg_entry_clear(&e);
	fill(&e, SG_ENTRY_SIGNATURE);
	free(e.approvals[1]);
	e.approvals[1] = dup_mem(big, SG_ENVELOPE_MAX + 1);
	e.approval_lens[1] = SG_ENVELOPE_MAX + 1;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), SG_ERR_TOO_LARGE);
	sg_entry_clear(&e);
	CHECK(s == NULL);
	/* The worst signature entry: every field at its limit still fits
	 * an entry bundle. */
	fill(&e, SG_ENTRY_SIGNATURE);
	for (i = 0; i < e.napprovals; i++)
		free(e.approvals[i]);
	for (i = 0; i < SG_QUORUM_MAX; i++) {
		e.approvals[i] = dup_mem(big, SG_ENVELOPE_MAX);
		e.approval_lens[i] = SG_ENVELOPE_MAX;
	}
	e.napprovals = SG_QUORUM_MAX;
	free(e.statement);
	e.statement = dup_mem(big, SG_STATEMENT_MAX);
	e.statement_len = SG_STATEMENT_MAX;
	free(e.public_key);
	e.public_key = (uint8_t *)dup_mem(big, SG_ENTRY_SPKI_MAX);
	e.public_key_len = SG_ENTRY_SPKI_MAX;
	free(e.signature);
	e.signature = (uint8_t *)dup_mem(big, SG_MAX_SIG);
	e.signature_len = SG_MAX_SIG;
	CHECK_EQ_INT(sg_entry_build(&e, &s, &n), 0);
	CHECK(s != NULL && n <= SG_ENTRY_MAX);
	free(s);
	s = NULL;
	sg_entry_clear(&e);
	free(big);
#undef REFUSE
}

/* Replaces the first `from` in base by `to` and parses. */
static int
parses_edited(const char *base, const char *from, const char *to)
{
	struct sg_entry e;
	char buf[8192];
	const char *at = strstr(base, from);
	size_t pre;
	int r;

	if (at == NULL) {
		fprintf(stderr, "  no \"%s\" in the base text\n", from);
		return 0;
	}
	pre = (size_t)(at - base);
	if (strlen(base) - strlen(from) + strlen(to) >= sizeof(buf))
		abort();
	memcpy(buf, base, pre);
	strcpy(buf + pre, to);
	strcat(buf, at + strlen(from));
	memset(&e, 0x33, sizeof(e));
	r = sg_entry_parse(buf, strlen(buf), &e);
	if (r == 0) {
		fprintf(stderr, "  accepted \"%s\" -> \"%s\"\n", from, to);
		sg_entry_clear(&e);
	} else if (e.statement != (char *)0x3333333333333333ULL) {
		fprintf(stderr, "  output written on failure\n");
		r = 0;
	}
	return r;
}

static void
test_parse_refuses(void)
{
	struct sg_entry e;
	char *big;
	const char *S = signature_text, *D = decision_text, *X = expired_text;

	/* The base texts themselves parse. */
	CHECK_EQ_INT(sg_entry_parse(S, strlen(S), &e), 0);
	sg_entry_clear(&e);
	CHECK_EQ_INT(sg_entry_parse(D, strlen(D), &e), 0);
	sg_entry_clear(&e);
	CHECK_EQ_INT(sg_entry_parse(X, strlen(X), &e), 0);
	sg_entry_clear(&e);

	/* Header, type, time, request. */
	CHECK(parses_edited(X, "signgate-log-entry v1\n", ""));
	CHECK(parses_edited(X, "v1", "v2"));
	CHECK(parses_edited(X, "v1\n", "v1 \n"));
	CHECK(parses_edited(X, "expired", "Expired"));
	CHECK(parses_edited(X, "expired", "expiry"));
	CHECK(parses_edited(X, "type ", "type  "));
	CHECK(parses_edited(X, "time 1764417600", "time 01764417600"));
	CHECK(parses_edited(X, "time 1764417600", "time -1"));
	CHECK(parses_edited(X, "time 1764417600", "time +1"));
	CHECK(parses_edited(X, "time 1764417600", "time 4611686018427387905"));
	CHECK(parses_edited(X, "time 1764417600", "time 18446744073709551616"));
	CHECK(parses_edited(X, "time 1764417600", "time "));
	CHECK(parses_edited(X, "time 1764417600", "time 1.5"));
	CHECK(parses_edited(X, "request " REQ, "request " REQ "0"));
	CHECK(parses_edited(X, "request " REQ, "request 0123456789abcdef"));
	CHECK(parses_edited(X, "request 0123", "request 0A23"));
	CHECK(parses_edited(X, "request 0123", "request x123"));
	/* Order, unknown, duplicate, misplaced lines. */
	CHECK(parses_edited(X, "type expired\ntime 1764417600\n",
	    "time 1764417600\ntype expired\n"));
	CHECK(parses_edited(X, "time 1764417600\n",
	    "time 1764417600\ntime 1764417600\n"));
	CHECK(parses_edited(X, "request", "note hello\nrequest"));
	CHECK(parses_edited(X, REQ "\n", REQ "\nnote hello\n"));
	CHECK(parses_edited(X, REQ "\n", REQ "\nreason aGk=\n"));
	CHECK(parses_edited(D, "officer alice.smith_2-b\ndecision approve\n",
	    "decision approve\nofficer alice.smith_2-b\n"));
	CHECK(parses_edited(D, "decision approve\n",
	    "decision approve\ndecision approve\n"));
	CHECK(parses_edited(D, "decision approve", "decision approved"));
	CHECK(parses_edited(D, "decision approve", "decision yes"));
	CHECK(parses_edited(D, "officer alice", "officer al ice"));
	CHECK(parses_edited(D, "officer alice", "officer al/ice"));
	CHECK(parses_edited(D, "officer alice.smith_2-b",
	    "officer oooooooooooooooooooooooooooooooooooooooooooooooooooooo"
	    "oooooooooo"));
	CHECK(parses_edited(D, "officer alice.smith_2-b\n", ""));
	CHECK(parses_edited(S, "public-key MCowBQYDK2VwAyEA/w==\n", ""));
	CHECK(parses_edited(S, "approval eyJwYXlsb2FkIjoiMiIsInNpZ25hdHVyZXMi"
	    "OltdfQ==\npublic-key MCowBQYDK2VwAyEA/w==\n",
	    "public-key MCowBQYDK2VwAyEA/w==\napproval eyJwYXlsb2FkIjoiMiIsIn"
	    "NpZ25hdHVyZXMiOltdfQ==\n"));
	CHECK(parses_edited(S, "algorithm ed25519\nsignature AQD+fw==\n",
	    "signature AQD+fw==\nalgorithm ed25519\n"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE\n",
	    "hsm 5c1f2e4a9d0b DE\nhsm 5c1f2e4a9d0b DE\n"));
	CHECK(parses_edited(S, "cms-sha256", "cms-sha384"));
	CHECK(parses_edited(S, "a0a1a2", "A0A1A2"));
	CHECK(parses_edited(S, "a0a1a2", "a0a1a"));
	CHECK(parses_edited(S, "a0a1a2", "a0a1a2a3"));
	CHECK(parses_edited(S, "a0a1a2", "g0a1a2"));
	CHECK(parses_edited(S, "cms-sha256 a0", "cms-sha256  a0"));
	CHECK(parses_edited(S, "algorithm ed25519", "algorithm ed448"));
	CHECK(parses_edited(S, "algorithm ed25519", "algorithm Ed25519"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b de"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b dE"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b De"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b 1E"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b D["));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b D"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b DEU"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f 2e4a9d0b DE"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b  DE"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f2e4a9d0b"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm  DE"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE",
	    "hsm 0123456789abcdefX DE"));
	CHECK(parses_edited(S, "hsm 5c1f2e4a9d0b DE", "hsm 5c1f\x7f DE"));
	/* Base64. */
	CHECK(parses_edited(S, "signature AQD+fw==", "signature AQD+fw="));
	CHECK(parses_edited(S, "signature AQD+fw==", "signature AQD+fx=="));
	CHECK(parses_edited(S, "signature AQD+fw==", "signature AQD-fw=="));
	CHECK(parses_edited(S, "signature AQD+fw==", "signature AQD+ fw=="));
	CHECK(parses_edited(S, "signature AQD+fw==", "signature "));
	CHECK(parses_edited(S, "public-key MCow", "public-key  MCow"));
	CHECK(parses_edited(D, "envelope eyJ", "envelope =eyJ"));
	/* A NUL inside a text field. */
	CHECK(parses_edited(D, "envelope eyJwYXlsb2FkIjoiMSIsInNpZ25hdHVyZXMi"
	    "OltdfQ==", "envelope AHsi"));
	/* Line ends and trailing bytes. */
	CHECK(parses_edited(X, "expired\n", "expired\r\n"));
	CHECK(parses_edited(X, REQ "\n", REQ "\n\n"));
	CHECK(parses_edited(X, REQ "\n", REQ "\nx"));
	CHECK(parses_edited(X, REQ "\n", REQ));
	CHECK(parses_edited(X, REQ "\n", REQ " \n"));

	/* cancelled: who and why, in this order, nothing else. */
	{
		const char *C = cancelled_text;
		CHECK_EQ_INT(sg_entry_parse(C, strlen(C), &e), 0);
		CHECK_STR(e.by, "alice");
		CHECK(e.reason_len == 11 && memcmp(e.reason, "wrong build",
		    11) == 0);
		sg_entry_clear(&e);
		CHECK(parses_edited(C, "by alice\n", ""));
		CHECK(parses_edited(C, "by alice", "by al ice"));
		CHECK(parses_edited(C, "by alice", "by "));
		CHECK(parses_edited(C, "by alice\nreason d3JvbmcgYnVpbGQ=\n",
		    "reason d3JvbmcgYnVpbGQ=\nby alice\n"));
		CHECK(parses_edited(C, "reason d3JvbmcgYnVpbGQ=\n", ""));
		CHECK(parses_edited(C, "reason d3JvbmcgYnVpbGQ=\n",
		    "reason \n"));
		CHECK(parses_edited(C, "d3JvbmcgYnVpbGQ=", "d3JvbmcgYnVpbGQ"));
		CHECK(parses_edited(C, "type cancelled", "type canceled"));
	}
	CHECK(sg_entry_parse(X, strlen(X) - 1, &e) != 0);
	CHECK(sg_entry_parse("", 0, &e) != 0);
	/* An embedded NUL. */
	{
		char buf[256];
		size_t n = strlen(X);
		memcpy(buf, X, n);
		buf[20] = '\0';
		CHECK(sg_entry_parse(buf, n, &e) != 0);
	}
	/* 65 approvals. */
	{
		const char *ins = "approval eyJwYXlsb2FkIjoiMSIsInNpZ25hdHVyZXMi"
		    "OltdfQ==\n";
		const char *at = strstr(S, "public-key");
		size_t pre = (size_t)(at - S), il = strlen(ins), o, i;
		char *buf = malloc(strlen(S) + 70 * il);
		struct sg_entry p;

		/* S already holds 2: add 62 for 64, then one more. */
		memcpy(buf, S, pre);
		o = pre;
		for (i = 0; i < 62; i++, o += il)
			memcpy(buf + o, ins, il);
		strcpy(buf + o, at);
		CHECK_EQ_INT(sg_entry_parse(buf, strlen(buf), &p), 0);
		CHECK_EQ_INT(p.napprovals, 64);
		sg_entry_clear(&p);
		memcpy(buf + o, ins, il);
		o += il;
		strcpy(buf + o, at);
		CHECK_EQ_INT(sg_entry_parse(buf, strlen(buf), &p),
		    SG_ERR_INVALID);
		free(buf);
	}
	/* Oversize: longer than any build ever wrote (256 KiB). */
	big = malloc(256 * 1024 + 1);
	memset(big, 'a', 256 * 1024 + 1);
	CHECK_EQ_INT(sg_entry_parse(big, 256 * 1024 + 1, &e),
	    SG_ERR_TOO_LARGE);
	free(big);
}

static void
test_mutations(void)
{
	static const uint8_t vals[] = { 0x00, '\n', ' ', '0', 'A', 'a', '=',
	    '+', '/', 0x7f, 0x80, 0xff };
	struct sg_entry e;
	char *text = NULL, *buf, *again = NULL;
	size_t n = 0, n2, i, k, accepted = 0, bad = 0, tried = 0;
	int t;

	for (t = SG_ENTRY_CREATED; t <= SG_ENTRY_POLICY_EFFECTIVE; t++) {
		fill(&e, (enum sg_entry_type)t);
		if (sg_entry_build(&e, &text, &n) != 0)
			abort();
		sg_entry_clear(&e);
		/* Exactly n bytes: ASan sees any read past the end. */
		buf = malloc(n);
		for (i = 0; i < n; i++) {
			for (k = 0; k < sizeof(vals); k++) {
				struct sg_entry p;
				if ((uint8_t)text[i] == vals[k])
					continue;
				memcpy(buf, text, n);
				buf[i] = (char)vals[k];
				tried++;
				if (sg_entry_parse(buf, n, &p) != 0)
					continue;
				accepted++;
				if (sg_entry_build(&p, &again, &n2) != 0 ||
				    n2 != n || memcmp(again, buf, n) != 0)
					bad++;
				free(again);
				again = NULL;
				sg_entry_clear(&p);
			}
			/* And every truncation. */
			memcpy(buf, text, n);
			{
				struct sg_entry p;
				char *cut = malloc(i > 0 ? i : 1);
				memcpy(cut, text, i);
				/* Only an approved entry cut after one of
				 * its approval lines is still an entry (a
				 * shorter one: the leaf hash tells). */
				if (sg_entry_parse(cut, i, &p) == 0) {
					if (!((t == SG_ENTRY_APPROVED &&
					    p.napprovals == 1) ||
					    (t == SG_ENTRY_POLICY_EFFECTIVE &&
					    p.napproval_entries == 1)) ||
					    cut[i - 1] != '\n')
						bad++;
					sg_entry_clear(&p);
				}
				free(cut);
			}
		}
		free(buf);
		free(text);
		text = NULL;
	}
	printf("# %zu mutated entries, %zu accepted and rebuilt\n", tried,
	    accepted);
	/* Digits of the time, hex of the request: changes that stay valid. */
	CHECK(accepted > 0);
	CHECK_EQ_INT(bad, 0);
}

SG_TEST_MAIN("entry",
    T(test_build_exact),
    T(test_policy_entries),
    T(test_kind_refuses),
    T(test_kind_parse_refuses),
    T(test_round_trips),
    T(test_build_refuses),
    T(test_parse_refuses),
    T(test_mutations))
