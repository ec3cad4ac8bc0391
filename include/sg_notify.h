/*
 * Notifications: the events of requests, releases and grants, written to
 * the store's outbox with the change they report, and delivered to
 * webhooks by one thread per gateway (docs/OPERATIONS.md,
 * "Notifications"; the event's format in docs/API.md, "Events").
 *
 * The pure part (HMAC, the signature header, the retry schedule, the
 * event's JSON, the Slack line, filters) is here for tests; the thread
 * reads the outbox and never holds up a writer: writers only insert
 * rows.
 */
#ifndef SG_NOTIFY_H
#define SG_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "sg_config.h"
#include "sg_store.h"

#define SG_HMAC_SHA256_LEN 32
/* "v1=" and 64 hex digits, with the NUL. */
#define SG_NOTIFY_SIG_SIZE 68
/* Each delivery: connect within 5 s, done within 10 s. */
#define SG_NOTIFY_CONNECT_MS 5000
#define SG_NOTIFY_TOTAL_MS 10000
/* Delivered rows are kept this long, undelivered ones at most this. */
#define SG_NOTIFY_KEEP_DELIVERED (24 * 3600)
#define SG_NOTIFY_KEEP_UNDELIVERED (7 * 24 * 3600)

/* HMAC-SHA256 (RFC 2104) of msg under key. */
int sg_hmac_sha256(const uint8_t *key, size_t keylen, const uint8_t *msg,
    size_t len, uint8_t out[SG_HMAC_SHA256_LEN]);
/* Signgate-Signature: "v1=" + hex HMAC-SHA256(secret, "<ts>." + body). */
int sg_notify_signature(const uint8_t *secret, size_t secret_len,
    int64_t timestamp, const char *body, size_t body_len,
    char out[SG_NOTIFY_SIG_SIZE]);
/* The wait in seconds before try number `attempt` + 1 (attempt >= 1
 * tries failed): 2^(attempt-1) s capped at max_seconds, less a jitter
 * of up to half of it taken from rnd; at least 1. */
unsigned sg_notify_backoff(unsigned attempt, unsigned max_seconds,
    uint32_t rnd);
/* Whether a webhook's filters let an event type through (none: all). */
int sg_notify_wants(const struct sg_webhook_config *w, const char *type);

/* What an event says; the object is read in the change's transaction. */
struct sg_notify_term {
	const char *group;
	unsigned count, missing;
};
struct sg_notify_event {
	char id[SG_OUTBOX_ID_SIZE];    /* random, 128 bits in hex */
	char type[SG_OUTBOX_TYPE_SIZE]; /* "<kind>.<what>" */
	int64_t at;
	const char *gateway;
	const struct sg_request *object;
	const struct sg_notify_term *terms; /* still missing, pending only */
	size_t nterms;
	const char *officer;           /* a decision's; who cancelled */
	int decision;                  /* -1 none, 0 reject, 1 approve */
	const char *reason;            /* may be NULL */
};
/* A fresh event id. */
int sg_notify_event_id(char out[SG_OUTBOX_ID_SIZE]);
/* The type of a change of an object of kind k, into out. */
int sg_notify_event_type(enum sg_kind k, const struct sg_store_change *c,
    char out[SG_OUTBOX_TYPE_SIZE]);
/* The event as JSON (compact, keys in a fixed order); free() it. */
int sg_notify_event_json(const struct sg_notify_event *ev, char **ret);
/* The Slack body of an event's JSON: {"text": "<one line>"}; free() it. */
int sg_notify_slack_body(const char *event_json, char **ret);

/* ---- the delivery thread ---- */

struct sg_notify;
/* Reads every webhook's secret file (owned by this user or root, mode
 * 0600); errbuf names the webhook and the file. */
int sg_notify_open(const struct sg_notify_config *c, struct sg_store *st,
    const char *gateway, struct sg_notify **ret, char *errbuf, size_t errlen);
int sg_notify_start(struct sg_notify *n);
/* Stops the thread within a fraction of a second, deliveries in flight
 * abandoned (their leases run out, or the next start gives them up). */
void sg_notify_stop(struct sg_notify *n);
void sg_notify_free(struct sg_notify *n);
/* Inside a write job: the event for each webhook whose filters let it
 * through.  The store's change hook calls it. */
int sg_notify_queue(struct sg_notify *n, struct sg_txn *t,
    const struct sg_notify_event *ev, const char *body);
/* Deliveries waiting (read now), made, and failed tries. */
void sg_notify_stats(struct sg_notify *n, uint64_t *ret_pending,
    uint64_t *ret_delivered, uint64_t *ret_failures);

#endif
