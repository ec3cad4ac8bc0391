/*
 * The HTTP API of docs/API.md: routing, JSON in and out, identity to
 * principal, and the one place where errors become HTTP statuses and
 * problem documents.  Domain rules live in the service, not here.
 */
#ifndef SG_API_H
#define SG_API_H

#include "sg_http.h"
#include "sg_service.h"

struct sg_api;

/* rate_per_second: requests each principal may make per second on
 * average (0: unlimited), with bursts up to rate_burst. */
int sg_api_new(struct sg_service *svc, int plain_http,
    unsigned rate_per_second, unsigned rate_burst, struct sg_api **ret);
/* One shared budget for requests without a verified client certificate
 * (the public log, loopback operations): per_second on average (0:
 * unlimited) with bursts up to burst; over it, 429. */
void sg_api_set_anonymous_rate(struct sg_api *a, unsigned per_second,
    unsigned burst);
void sg_api_free(struct sg_api *a);
/* The monotonic clock, in milliseconds, the rate limits and long-poll
 * deadlines are read from: sg_mono_ms unless set (NULL: back to it).  For
 * tests; call before sg_api_set_anonymous_rate. */
void sg_api_set_clock(struct sg_api *a, int64_t (*now_ms)(void));
/*
 * Routes one request and answers it: fills resp (status, content type,
 * body, Retry-After, Location, or a wait to long-poll) and counts it for
 * /metrics.  No socket is involved: everything about the request is in
 * req, the principal is found from its certificate facts
 * (authenticated, client_cn, client_sha256).  resp->body is the
 * caller's to free.
 */
void sg_api_dispatch(struct sg_api *a, const struct sg_http_request *req,
    struct sg_http_response *resp);
/*
 * The same for a caller another front has identified (the console: an
 * officer signed in with a security key): the request is handled as if
 * `principal`'s client certificate had been verified, with its rate
 * limit, and the rest as for sg_api_dispatch().  A principal the policy
 * in force does not know gets a 401.
 */
void sg_api_dispatch_as(struct sg_api *a, const char *principal,
    const struct sg_http_request *req, struct sg_http_response *resp);
/* The title of a problem document with this status ("Not Found"). */
const char *sg_api_status_title(int status);
/* The same as an sg_http_handler; ctx is the struct sg_api. */
void sg_api_handle(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp);

#endif
