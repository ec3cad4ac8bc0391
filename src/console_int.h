/*
 * The console's private declarations, shared by its files:
 *  - console.c          the front's handler: the page, the headers, the
 *                       rules every request passes (rate, session, Origin,
 *                       Content-Type) and the routing table;
 *  - console_session.c  sessions and single-use challenges, in memory;
 *  - console_api.c      the JSON endpoints (sign-in, queue, request,
 *                       approve, reject, cancel), over the API and the
 *                       service.
 * Nothing here is part of the console's interface (sg_console.h).
 */
#ifndef SG_CONSOLE_INT_H
#define SG_CONSOLE_INT_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "sg_console.h"
#include "sg_limits.h"

#define CONSOLE_TOKEN_LEN 32            /* session tokens: 256 bits */
#define CONSOLE_CHALLENGE_LEN 32
#define CONSOLE_OFFICER_SIZE SG_NAME_SIZE
#define CONSOLE_MAX_CREDS 16            /* listed for allowCredentials */

/* What a challenge may be used for, once. */
enum console_purpose {
	PURPOSE_SIGNIN = 1,             /* any officer's sign-in */
	PURPOSE_CANCEL,                 /* one session's cancel of one request */
};

struct console_challenge {
	int used;
	enum console_purpose purpose;
	uint8_t value[CONSOLE_CHALLENGE_LEN];
	int64_t expires_ms;
	uint8_t session[32];            /* PURPOSE_CANCEL: the session's hash */
	char request[SG_REQUEST_ID_SIZE];
};

struct console_session {
	int used;
	uint8_t token_hash[32];         /* SHA-256 of the token */
	char officer[CONSOLE_OFFICER_SIZE];
	int64_t created_ms, last_ms;
};

struct sg_console {
	char rp_id[SG_WEBAUTHN_RP_ID_SIZE];
	char origin[SG_WEBAUTHN_ORIGIN_SIZE];
	struct sg_service *svc;
	struct sg_api *api;
	struct sg_http *front;
	int64_t (*now_ms)(void);
	sg_console_cred_fn cred_one;
	sg_console_creds_fn cred_all;
	void *cred_arg;

	pthread_mutex_t lock;           /* everything below */
	struct console_session sessions[SG_CONSOLE_MAX_SESSIONS];
	struct console_challenge challenges[SG_CONSOLE_MAX_CHALLENGES];
	unsigned anon_per_second, anon_burst;
	double anon_tokens;
	int64_t anon_last_ms;
};

/* One request on its way through the console. */
struct console_call {
	struct sg_console *c;
	const struct sg_http_request *req;
	struct sg_http_response *resp;
	char officer[CONSOLE_OFFICER_SIZE]; /* the session's, "" if none */
	uint8_t session[32];            /* its token's hash */
	char id[SG_REQUEST_ID_SIZE];    /* {id} */
	json_t *body;                   /* a parsed JSON object, or NULL */
};

/* console_session.c (each takes c->lock itself) */
int console_challenge_new(struct sg_console *c, enum console_purpose p,
    const uint8_t session[32], const char *request,
    uint8_t out[CONSOLE_CHALLENGE_LEN]);
int console_challenge_take(struct sg_console *c, enum console_purpose p,
    const uint8_t session[32], const char *request,
    const uint8_t *value, size_t len);
int console_session_new(struct sg_console *c, const char *officer,
    char *cookie, size_t cookie_len);
int console_session_find(struct sg_console *c, const char *cookie_header,
    char officer[CONSOLE_OFFICER_SIZE], uint8_t ret_hash[32]);
void console_session_end(struct sg_console *c, const uint8_t hash[32]);

/* console.c */
void console_problem(struct sg_http_response *resp, int status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void console_json(struct sg_http_response *resp, int status, json_t *j);
const char *console_header(const struct sg_http_request *req,
    const char *name);
const char *console_query(const struct sg_http_request *req,
    const char *name);

/* console_api.c: the handlers of the routing table. */
typedef void console_fn(struct console_call *);
console_fn console_get_config, console_signin_begin, console_signin;
console_fn console_signout, console_get_session, console_get_queue;
console_fn console_get_request, console_post_approval;
console_fn console_cancel_begin, console_post_cancel;

#endif
