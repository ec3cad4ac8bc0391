/*
 * The officers' console: a browser front on a listener of its own
 * (docs/CONSOLE.md).  It serves the page (console/, embedded at build
 * time) and a small JSON API; officers sign in with a security key
 * (WebAuthn) registered for them in the policy, and every decision they
 * make there is itself an assertion of that key over the exact
 * statement.  The console holds no key of its own and cannot act for an
 * officer: approvals go to the service exactly as POST
 * /v1/requests/{id}/approvals would hand them, cancellations are checked
 * against an assertion over the cancel text first.
 *
 * Sessions live in memory only (a restart signs everyone out): a random
 * 256-bit token in a __Host- cookie, kept hashed, idle expiry 30 minutes,
 * absolute 8 hours.  Every state-changing request needs Content-Type
 * application/json and an Origin header equal to the configured origin.
 */
#ifndef SG_CONSOLE_H
#define SG_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "sg_http.h"
#include "sg_webauthn.h"

#define SG_CONSOLE_COOKIE "__Host-signgate-console"
#define SG_CONSOLE_IDLE_MS (30 * 60 * 1000LL)
#define SG_CONSOLE_ABSOLUTE_MS (8 * 60 * 60 * 1000LL)
#define SG_CONSOLE_CHALLENGE_MS (2 * 60 * 1000LL)
#define SG_CONSOLE_MAX_SESSIONS 1024
#define SG_CONSOLE_MAX_CHALLENGES 256

struct sg_console;
struct sg_service;
struct sg_api;

/* The headers of every console answer (name, value, ..., NULL): the
 * front adds them (sg_http_config.headers), its own errors included. */
extern const char *const sg_console_headers[];

/* The credential `officer` registered with this id, in the policy in
 * force, or NULL (also when officer is not an officer). */
typedef const struct sg_webauthn_cred *(*sg_console_cred_fn)(void *arg,
    const char *officer, const uint8_t *id, size_t id_len);
/* The ids of the credentials officer registered (for allowCredentials):
 * at most max, *ret_n set. */
typedef void (*sg_console_creds_fn)(void *arg, const char *officer,
    const struct sg_webauthn_cred **ret, size_t max, size_t *ret_n);

struct sg_console_conf {
	const char *rp_id;
	const char *origin;
	struct sg_service *svc;         /* NULL in tests of the front alone */
	struct sg_api *api;             /* the same */
	/* Requests without a session (the page, sign-in): one budget,
	 * per second and burst; 0 = no limit. */
	unsigned anon_per_second, anon_burst;
};

int sg_console_new(const struct sg_console_conf *conf,
    struct sg_console **ret);
void sg_console_free(struct sg_console *c);
/* An sg_http_handler; ctx is the struct sg_console. */
void sg_console_handle(void *ctx, const struct sg_http_request *req,
    struct sg_http_response *resp);
/* A request changed (the service's notification): wakes the console's
 * long-polls through its front (set with sg_console_set_front). */
void sg_console_changed(struct sg_console *c, const char *id);
void sg_console_set_front(struct sg_console *c, struct sg_http *front);

/* For tests: the monotonic clock in milliseconds (NULL: sg_mono_ms), and
 * where credentials come from (NULL: the policy in force). */
void sg_console_set_clock(struct sg_console *c, int64_t (*now_ms)(void));
void sg_console_set_creds(struct sg_console *c, sg_console_cred_fn one,
    sg_console_creds_fn all, void *arg);

/* The embedded page (console/, generated at build time). */
struct sg_console_asset {
	const char *path;               /* "/", "/console.js", ... */
	const char *content_type;
	const unsigned char *data;
	size_t len;
};
extern const struct sg_console_asset sg_console_assets[];
extern const size_t sg_console_nassets;

#endif
