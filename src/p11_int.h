/*
 * The PKCS#11 layer's private declarations, shared by its files:
 *  - p11.c       loading the module, errors, the gate, the PIN kept for
 *                re-login, the session pool, and freeing everything;
 *  - p11_token.c tokens: slots, opening one by label and serial, its
 *                information;
 *  - p11_key.c   key lookup: objects, attributes and public keys;
 *  - p11_sign.c  signing on worker threads under a deadline, and recovery.
 * The design is described atop each of them (atop p11.c: why not libp11).
 * Nothing here is part of the layer's interface (sg_p11.h).
 */
#ifndef SG_P11_INT_H
#define SG_P11_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include "sg_crypto.h"
#include "sg_limits.h"
#include "sg_p11.h"

/* Sessions per token: one for each of the signer's workers at its most
 * (SG_SIGNER_CONCURRENCY_MAX), for calls stuck in the module
 * (P11_MAX_STUCK) and for the checkpoint, which is signed beside them.
 * They are opened when needed, not at start. */
#define P11_POOL_MAX       (SG_SIGNER_CONCURRENCY_MAX + 32)
#define P11_POOL_DEFAULT   64           /* unless sg_p11_set_concurrency */
#define P11_POOL_WAIT_SEC  10           /* longest wait for a free session */
#define P11_MAX_SLOTS      1024
#define P11_MAX_LABEL      255          /* CKA_LABEL bytes */
#define P11_MAX_ID         255          /* CKA_ID bytes */
#define P11_MAX_ATTR       2048         /* modulus, point, parameters */
#define P11_MAX_CERT       (64 * 1024)
#define P11_MAX_MESSAGE    (64 * 1024)  /* EdDSA input */
#define P11_TOKEN_LABEL    SG_TOKEN_LABEL_MAX
#define P11_RSA_MIN_BITS   2048
#define P11_RSA_MAX_BITS   (SG_MAX_SIG * 8)
#define P11_DEADLINE_MS    5000         /* default bound on a signing call */
#define P11_DEADLINE_MAX_MS (10 * 60 * 1000)
#define P11_MAX_WORKERS    (2 * P11_POOL_MAX)
#define P11_MAX_STUCK      16           /* abandoned calls still running */
_Static_assert(P11_POOL_MAX >= SG_SIGNER_CONCURRENCY_MAX + P11_MAX_STUCK + 1,
    "a session for every worker, stuck call and the checkpoint");
#define P11_REINIT_MIN_SEC 1            /* between module re-initialisations */
#define P11_REINIT_WAIT_MS 2000         /* for calls to leave the module */
#define P11_FREE_WAIT_SEC  10           /* for stuck calls, at sg_p11_free */
#define P11_JOB_IN_MAX     P11_MAX_MESSAGE  /* the largest input: EdDSA's */
#define P11_MANY_ITEM_MS   250          /* a batch's deadline, per extra item */
#define P11_RSA_MAX_EXP_BITS 64         /* public exponents we accept */
#define P11_WARN_MSG_MAX   512          /* one failure warning's text */
#define P11_PAGE_FALLBACK  4096         /* when sysconf cannot tell */
#define P11_WARN_EVERY_MS  1000         /* failure warnings per token */

struct p11_worker;
struct p11_many;	/* a batch's inputs and results (p11_sign.c) */

struct sg_p11 {
	void *dl;
	CK_FUNCTION_LIST *f;
	struct sg_p11_token *tokens;
	atomic_uint sessions;           /* each token's pool at its most */

	/*
	 * The gate: every call into the module counts itself in `inside`;
	 * a re-initialisation closes the gate (new calls wait), waits a
	 * bounded time for `inside` to drop to 0, and opens it again.
	 */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	size_t inside;
	int reiniting;
	int initialized;                /* changed only with the gate shut */
	atomic_llong reinit_ms;         /* monotonic time of the last one */
	atomic_uint deadline_ms;

	pthread_mutex_t wlock;          /* guards the workers below */
	pthread_cond_t wcond;           /* a worker became idle or exited */
	struct p11_worker *workers;     /* all of them */
	struct p11_worker *idle;
	size_t nworkers;                /* threads alive */
	size_t nstuck;                  /* abandoned and still running */
	int closing;
	int orphaned;                   /* the last worker frees everything */
};

/* A session and the pool generation it was opened in. */
struct p11_sess {
	CK_SESSION_HANDLE h;
	unsigned long gen;
};

struct sg_p11_token {
	struct sg_p11_token *next;
	struct sg_p11 *p11;
	atomic_ulong slot;              /* CK_SLOT_ID; may move on recovery */
	struct sg_token_info info;

	pthread_mutex_t lock;           /* guards the pool and the key list */
	pthread_cond_t cond;            /* a session came back or a slot freed */
	struct p11_sess idle[P11_POOL_MAX];
	size_t nidle;
	size_t nopen;                   /* idle + borrowed */
	size_t max_open;
	unsigned long gen;              /* bumped by each recovery */

	pthread_mutex_t recover_lock;   /* one recovery at a time */
	atomic_int broken;              /* the next call recovers first */
	atomic_llong warned_ms;         /* last failure warning logged */
	atomic_ulong unwarned;          /* warnings held back since */

	pthread_mutex_t login_lock;     /* one C_Login at a time */
	int login;                      /* log in on recovery */
	int has_pin;                    /* else protected path or no login */
	char *pin;                      /* an mlock()ed page, or NULL */
	size_t pin_len, pin_alloc;

	struct sg_p11_key *keys;        /* prepended only, under lock */
};

struct sg_p11_key {
	struct sg_p11_key *next;
	struct sg_p11_token *token;
	atomic_ulong handle;            /* CK_OBJECT_HANDLE; refreshed on reset */
	CK_KEY_TYPE ck_type;
	enum sg_key_alg alg;
	size_t sig_len;                 /* bytes C_Sign returns */
	int always_auth;
	EVP_PKEY *pub;
	/* What the key was asked for by, to find it again. */
	uint8_t label[P11_MAX_LABEL];
	size_t label_len;
	int by_label;
	uint8_t id[P11_MAX_ID];
	size_t id_len;
	/* The private key object's own CKA_LABEL and CKA_ID, as found. */
	uint8_t own_label[P11_MAX_LABEL];
	size_t own_label_len;
	uint8_t own_id[P11_MAX_ID];
	size_t own_id_len;
};

/* One signing call, as handed to a worker. */
struct p11_job {
	struct sg_p11_key *k;
	CK_MECHANISM mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	const uint8_t *in;
	size_t in_len;
	uint8_t out[SG_MAX_SIG];
	size_t out_cap;
	CK_ULONG out_len;
	struct timespec deadline;       /* monotonic; tv_sec 0: none */
	atomic_int *abandoned;          /* NULL on the caller's thread */
	struct p11_many *many;          /* a batch (in, out unused), or NULL;
	                                 * an abandoned worker frees it */
	int r;
	unsigned long last_rv;
};

enum worker_state { W_IDLE, W_ASSIGNED, W_DONE };

struct p11_worker {
	struct p11_worker *next;        /* on p->workers */
	struct p11_worker *next_idle;
	struct sg_p11 *p;
	pthread_cond_t cond;            /* state changes, under p->wlock */
	enum worker_state state;
	atomic_int abandoned;
	struct p11_job job;
	uint8_t *in;                    /* P11_JOB_IN_MAX bytes */
};

/* The CK_RV of this thread's last failed call (sg_p11_last_rv). */
extern _Thread_local unsigned long p11_tl_last_rv;

/* p11.c: errors, time, the gate, the PIN, the session pool. */
CK_RV p11_note_rv(CK_RV rv);
int p11_rv_to_err(CK_RV rv);
int p11_rv_recoverable(CK_RV rv);
int p11_rv_pin_refused(CK_RV rv);
void p11_field_trim(const unsigned char *src, size_t n, char *dst);
int p11_ts_before(const struct timespec *a, const struct timespec *b);
int p11_cond_init_mono(pthread_cond_t *c);
void p11_gate_enter(struct sg_p11 *p);
void p11_gate_leave(struct sg_p11 *p);
int p11_gate_shut(struct sg_p11 *p, const struct timespec *until);
void p11_gate_open(struct sg_p11 *p);
void p11_pin_wipe(struct sg_p11_token *t);
int p11_pin_store(struct sg_p11_token *t, const char *pin, size_t len);
CK_SLOT_ID p11_token_slot(struct sg_p11_token *t);
int p11_session_get(struct sg_p11_token *t, struct p11_sess *ret,
    CK_RV *ret_rv);
void p11_session_drop(struct sg_p11_token *t, struct p11_sess s);
void p11_session_put(struct sg_p11_token *t, struct p11_sess s);
void p11_session_purge_idle(struct sg_p11_token *t);
unsigned long p11_token_gen(struct sg_p11_token *t);
void p11_token_warn(struct sg_p11_token *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
CK_RV p11_token_login(struct sg_p11_token *t, CK_SESSION_HANDLE s,
    CK_USER_TYPE who);
void p11_destroy(struct sg_p11 *p);

/* p11_token.c: tokens. */
void p11_key_free(struct sg_p11_key *k);
void p11_token_free(struct sg_p11_token *t);
int p11_token_find_slot(struct sg_p11_token *t);

/* p11_key.c: key lookup. */
int p11_find_private(struct sg_p11_key *k, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE *ret, CK_RV *ret_rv);

/* p11_sign.c has no function the others call. */

#endif
