/*
 * The API's shared state and the functions its files share; not for
 * anyone else (callers see include/sg_api.h only).
 *
 * Files, by job, and what each may call (arrows point to callees):
 *
 *   api.c           the routing table and dispatch, identity to
 *                   principal, rate limits, JSON bodies, problem
 *                   documents and statuses        -> the handlers, ops
 *                                                    (counters)
 *   api_requests.c  the request handlers (create, list, get, signature,
 *                   approvals, cancel), their input and rendering
 *                                                 -> api.c (problems)
 *   api_log.c       the public log: checkpoint, key, entries, proofs
 *                                                 -> api.c (problems)
 *   api_tiles.c     the same log as static tiles (c2sp.org/tlog-tiles)
 *                                                 -> api.c (problems)
 *   api_ops.c       keys, health, readiness, metrics, and the counters
 *                   of requests by endpoint and status
 *                                                 -> api.c (problems)
 *
 * Every handler calls the service (sg_service.h) and answers through
 * api_problem, api_service_problem and api_set_json; none touches
 * another's state.
 */
#ifndef SG_API_INT_H
#define SG_API_INT_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "sg_api.h"
#include "sg_limits.h"

/* What a request is counted under in signgate_http_requests_total. */
enum endpoint {
	EP_KEYS, EP_REQUESTS_POST, EP_REQUESTS_LIST, EP_REQUEST, EP_SIGNATURE,
	EP_APPROVALS, EP_CANCEL, EP_RELEASES, EP_GRANTS, EP_LOG, EP_OPS,
	EP_OTHER, EP_COUNT
};
/* The statuses counted one by one (api_ops.c's statuses[]). */
#define NSTATUS ((size_t)14)

/* A token bucket per principal. */
struct bucket {
	char name[SG_POLICY_NAME_MAX];
	double tokens;
	int64_t last_ms;
};

struct sg_api {
	struct sg_service *svc;
	int plain_http;
	unsigned rate_per_second;
	unsigned rate_burst;
	pthread_mutex_t rate_lock;
	struct bucket *buckets;
	size_t nbuckets;
	unsigned anon_per_second;
	unsigned anon_burst;
	struct bucket anon;             /* requests without a certificate */
	pthread_mutex_t count_lock;
	uint64_t counts[EP_COUNT][NSTATUS + 1];  /* the last: other statuses */
	int64_t (*now_ms)(void);        /* monotonic; sg_mono_ms */
};

/* One request on its way through the router to its handler. */
struct call {
	struct sg_api *a;
	const struct sg_http_request *req;
	struct sg_http_response *resp;
	unsigned method;                /* M_* */
	const char *principal;          /* policy principal, NULL if none */
	const char *as;                 /* sg_api_dispatch_as(): who */
	char id[SG_REQUEST_ID_SIZE];    /* {id} */
	char sha[SG_SHA256_HEX_SIZE];   /* {sha} */
	uint64_t index;                 /* {index} */
	const char *missing;            /* * rows: what the 404 says */
	json_t *body;                   /* BODY_OBJECT rows: the parsed body */
};

typedef void handler_fn(struct call *);

/* api_ops.c */
handler_fn api_get_healthz, api_get_readyz, api_get_metrics, api_get_keys;
void api_count(struct sg_api *a, enum endpoint ep, int status);
/* api_log.c */
handler_fn api_get_log_checkpoint, api_get_log_key, api_get_log_entry;
handler_fn api_get_log_inclusion, api_get_log_consistency;
/* api_tiles.c */
handler_fn api_get_log_tiles;
/* api_requests.c */
handler_fn api_list_requests, api_post_request, api_get_request;
handler_fn api_get_signature, api_post_approval, api_post_cancel;
struct sg_new_request;
struct sg_request;
void api_respond_request(struct sg_api *a, struct sg_http_response *resp,
    int status, const struct sg_request *q);
int api_only_fields(struct sg_http_response *resp, json_t *obj,
    const char *prefix, const char *const *allowed);
int api_parse_idempotency(const struct sg_http_request *req,
    struct sg_http_response *resp, struct sg_new_request *nr,
    char body_sha[SG_SHA256_HEX_SIZE]);
/* An artifact object (or a release's, named by what), canonical JSON in
 * *ret; `name` required when name_required. */
int api_parse_artifact(struct sg_http_response *resp, json_t *art,
    const char *what, int name_required, char **ret);
int api_parse_digest(struct sg_http_response *resp, json_t *digest,
    const char *prefix, struct sg_new_request *nr);
struct sg_request *api_fetch_request(struct call *c);
/* A change that takes a reason ({"reason": text}, as officers read it):
 * cancel, revoke; answered with the request object. */
typedef int api_reason_fn(struct sg_service *, const char *id,
    const char *principal, const char *reason, struct sg_request **ret,
    struct sg_fault *f);
void api_with_reason(struct call *c, api_reason_fn *fn);
/* The signature object of a signature under a release or grant: the
 * object o it was made under, its entry's index, the signature.  NULL
 * without its proof; f then holds the service's fault, if any, naming
 * the signature as `what` (sg_service_log_bundle). */
json_t *api_artifact_signature_json(struct sg_api *a,
    const struct sg_request *o, const char *digest_alg, enum sg_format fmt,
    int64_t log_index, const uint8_t *sig, size_t sig_len,
    const uint8_t *cms, size_t cms_len, const char *what,
    struct sg_fault *f);
/* api_policy.c */
handler_fn api_get_policy, api_get_policy_pending, api_post_policy_approval;
/* api_release.c */
handler_fn api_post_release, api_get_manifest, api_get_artifacts;
handler_fn api_post_grant, api_post_revoke;

/* api.c */
void api_set_json(struct sg_http_response *resp, int status, json_t *j);
void api_utf8_cut(char *s);
void api_problem(struct sg_http_response *resp, int status,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void api_service_problem(struct sg_http_response *resp, int r,
    const struct sg_fault *f);
const char *api_query(const struct call *c, const char *name);
const char *api_header(const struct sg_http_request *req, const char *name);

#endif
