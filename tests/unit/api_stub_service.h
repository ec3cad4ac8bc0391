/*
 * A stand-in for the service, for the API's unit tests and fuzzer.
 *
 * api_stub_service.c defines the sg_service_* functions of sg_service.h
 * that the API calls, and is linked with api.o and the core library
 * instead of the daemon library: the router then runs against it with no
 * store, HSM or log.  Each operation records what it was asked (the
 * function and its arguments, copied) and answers what the test set up
 * in the struct sg_service below, which is opaque to the API.  It also
 * stands in for the few daemon functions the API needs from elsewhere:
 * the front's counters and the store's request destructors, and gives
 * a clock for sg_api_set_clock (stub_now_ms, reading stub_clock_ms).
 */
#ifndef API_STUB_SERVICE_H
#define API_STUB_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_service.h"

#define STUB_TEXT_MAX 2048
#define STUB_NKEYS 2

struct sg_service {
	/* Set up by stub_init() and the test. */
	struct sg_policy *policy;
	struct sg_key_view keys[STUB_NKEYS];
	size_t nkeys;
	int result;                    /* what operations return */
	struct sg_fault fault;         /* with result or bundle_result != 0 */
	int bundle_result;             /* what the log's bundles return */
	int existing;                  /* create: an idempotent retry */
	enum sg_req_state state;       /* state of the requests returned */
	int not_ready;                 /* sg_service_ready() fails */
	size_t nlist;                  /* requests sg_service_list returns */
	enum sg_kind kind;             /* kind of the requests returned */
	const char *const *items;      /* a release's lines (count: nitems) */
	size_t nitems;
	size_t nsigned;                /* items before this one are signed */

	/* Recorded by the operations. */
	unsigned calls;                /* operations since stub_reset() */
	unsigned mutations;            /* of which create, decide, cancel */
	char last[40];                 /* the last one's name, "" if none */
	char id[40];
	char principal[64];            /* "" for NULL */
	char text[STUB_TEXT_MAX + 1];  /* envelope or reason */
	char what[96];                 /* the signature a bundle is for */
	size_t text_len;
	char state_arg[16], key_arg[80];   /* list filters, "" for NULL */
	int64_t before;                /* list */
	size_t limit;                  /* list */
	uint64_t x, y;                 /* log index, size, old, new */
	/* create: the new request, its strings copied */
	struct sg_new_request nr;
	char nr_key[80], nr_format[8], nr_requester[64];
	char nr_artifact[STUB_TEXT_MAX + 1], nr_idem[160], nr_body_sha[80];
	int nr_has_idem;
	char nr_lines[4][600];         /* the first lines of a release */
	char nr_pattern[300], nr_grant[40];
	int nr_has_grant;
};

/* The clock stub_now_ms() returns. */
extern int64_t stub_clock_ms;
int64_t stub_now_ms(void);

/* Parses the stub's policy (principals "ci" by CN, "audit" by
 * certificate hash STUB_AUDIT_SHA256; keys "nightly" and "release") and
 * sets up its key views.  0 on success. */
int stub_init(struct sg_service *s);
/* Back to answering success with pending requests; clears the record. */
void stub_reset(struct sg_service *s);
void stub_free(struct sg_service *s);

/* The certificate hash the policy binds "audit" to (32 bytes). */
extern const uint8_t stub_audit_sha256[32];

#endif
