/*
 * A thin layer over the standard PKCS#11 C API.
 *
 * Why not libp11: Debian 12 ships libp11 0.4.12, which (1) fails to
 * enumerate any key at all when the token holds an Ed25519 key (EdDSA came
 * in 0.4.17) -- our transparency-log key is Ed25519 and a production HSM is
 * shared with keys we do not control; (2) enumerates, logs in and looks up
 * keys without locking; (3) keeps handing out dead session handles after a
 * token reset (fixed in 0.4.13); (4) can block a signing call forever when
 * the token is removed (fixed in 0.4.14).  So the module is dlopen()ed
 * here and driven through C_GetFunctionList.  Consequences: we own session
 * management, login state, attribute parsing and public-key construction
 * (below), and nothing else in the process may use the same module through
 * libp11 or the OpenSSL pkcs11 engine (see sg_p11_load).
 *
 * Design:
 * - Keys are found by attributes (CKA_CLASS + CKA_LABEL and/or CKA_ID), never
 *   by enumerating every object, so objects we cannot parse (other people's
 *   Ed448 or secret keys) are never even looked at.
 * - Login state in PKCS#11 belongs to the application and the token, not to a
 *   session, and lasts while at least one session is open.  Every token keeps
 *   a pool of read-only serial sessions (signing needs no R/W session); idle
 *   sessions are never closed, so the login outlives any single session.
 * - The pool is a mutex-protected stack bounded at P11_POOL_MAX sessions (or
 *   fewer if the token says CKR_SESSION_COUNT); callers beyond that wait on a
 *   condition variable for at most P11_POOL_WAIT_SEC.  A session goes back
 *   to the pool only after an operation that ended cleanly; after any error
 *   it is closed, since it may still hold an active operation.  Each session
 *   carries the pool's generation: a recovery starts a new generation, and
 *   sessions of an older one are closed when they come back, never reused.
 *
 * Recovery (sg_p11_sign).  After CKR_SESSION_HANDLE_INVALID,
 * CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED, CKR_DEVICE_ERROR,
 * CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED, CKR_USER_NOT_LOGGED_IN,
 * a stale key handle, or CKR_OPERATION_ACTIVE, the call closes its session
 * and every idle one (they died with the token, or soon will), opens a new
 * session (finding the slot again by label and serial if it moved), logs in
 * with the PIN kept for that purpose in a locked, non-dumpable, wipe-on-fork
 * page, finds every key of the token again by label/id (a token reset or a
 * logout changes object handles), and retries the operation once.  The
 * re-open itself is tried twice, except after a refused PIN: retrying a
 * wrong PIN would lock the token.  One token recovers one call at a time
 * (recover_lock); calls that failed meanwhile on the old generation only
 * take a new session.  If the retry fails too, the call returns
 * SG_ERR_UNAVAILABLE and the token is marked broken: the next call recovers
 * first, before it signs, so no restart is ever needed.  A call that starts
 * on a broken token and still cannot recover escalates once to
 * re-initialising the whole module (C_Finalize + C_Initialize): SoftHSM, for
 * one, never sees a token again that vanished under it until then.  That
 * needs every other call out of the module: each call passes a gate (a
 * counter under a mutex) and the re-initialisation shuts it, waits a
 * bounded time for the calls inside to leave, and gives up otherwise; it
 * happens at most once per P11_REINIT_MIN_SEC and never while a call is
 * stuck inside the module.  Failures and recoveries are logged as warnings,
 * at most one a second per token (a failing token fails every call), with
 * a count of those held back.
 *
 * Deadlines.  A wedged device can make any PKCS#11 call block forever, and
 * nothing can interrupt a thread inside a module.  So each sg_p11_sign
 * (its recovery included) runs on a worker thread from a small pool, and
 * the caller waits on a condition variable until the deadline (5 s unless
 * SG_P11_DEADLINE_MS or sg_p11_set_deadline say otherwise) and then returns
 * SG_ERR_TIMEOUT.  The trade-off: a timed-out worker is abandoned, not
 * killed.  It keeps its thread, its session and its place inside the gate
 * until the module returns, if ever; then it closes that session (never
 * reused: its state is unknown) and goes back to the pool.  The input is
 * copied to the worker so that an abandoned call never reads the caller's
 * memory.  At most P11_MAX_STUCK calls may be stuck at once; beyond that
 * calls fail at once with SG_ERR_UNAVAILABLE instead of piling up threads,
 * and while any is stuck the module cannot be re-initialised.  A timeout
 * marks the token broken, so the next call starts with a fresh session.
 * The hand-over costs two thread wake-ups per signature; deadline 0 signs
 * on the caller's thread without any bound, and so does a key that needs
 * a login on a PIN pad before each signature (a person is typing).  Start-up work (loading,
 * opening tokens, finding keys) runs on the caller's thread.  sg_p11_free
 * waits up to P11_FREE_WAIT_SEC for stuck calls; if one never returns, the
 * last worker to leave finalises the module and frees everything.
 *
 * - Keys with CKA_ALWAYS_AUTHENTICATE (common on smart cards) get a
 *   context-specific login after each C_SignInit.
 * - This layer does not verify signatures: the signer does, against the
 *   public key built here from the token's own public-key (or certificate)
 *   object, with OpenSSL 3 APIs only.  So a key found again after a token
 *   reset that is not the key we started with cannot release a signature.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_p11.h"
#include "sg_util.h"

#define P11_POOL_MAX       64           /* sessions per token */
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
#define P11_REINIT_MIN_SEC 1            /* between module re-initialisations */
#define P11_REINIT_WAIT_MS 2000         /* for calls to leave the module */
#define P11_FREE_WAIT_SEC  10           /* for stuck calls, at sg_p11_free */
#define P11_JOB_IN_MAX     P11_MAX_MESSAGE  /* the largest input: EdDSA's */
#define P11_RSA_MAX_EXP_BITS 64         /* public exponents we accept */
#define P11_WARN_MSG_MAX   512          /* one failure warning's text */
#define P11_PAGE_FALLBACK  4096         /* when sysconf cannot tell */
#define P11_WARN_EVERY_MS  1000         /* failure warnings per token */

struct p11_worker;

struct sg_p11 {
	void *dl;
	CK_FUNCTION_LIST *f;
	struct sg_p11_token *tokens;

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

static _Thread_local unsigned long tl_last_rv;

/* DER DigestInfo prefixes for PKCS#1 v1.5 (RFC 8017, section 9.2). */
static const uint8_t DIGESTINFO_SHA256[] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
};
static const uint8_t DIGESTINFO_SHA384[] = {
	0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30,
};
static const uint8_t DIGESTINFO_SHA512[] = {
	0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40,
};
#define DIGESTINFO_PREFIX_LEN sizeof(DIGESTINFO_SHA256)
/* A whole DigestInfo: the prefix and the longest digest. */
#define P11_DIGESTINFO_MAX (DIGESTINFO_PREFIX_LEN + SG_MAX_DIGEST)
_Static_assert(P11_DIGESTINFO_MAX <= P11_JOB_IN_MAX,
    "a worker's input buffer holds a DigestInfo");

/* CKA_EC_PARAMS values we accept: DER namedCurve OIDs, or (for Edwards
 * curves, PKCS#11 3.0) a PrintableString with the curve name. */
static const uint8_t PARAMS_P256[] = {	/* 1.2.840.10045.3.1.7 */
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
};
static const uint8_t PARAMS_P384[] = {	/* 1.3.132.0.34 */
	0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
};
static const uint8_t PARAMS_ED25519[] = {	/* 1.3.101.112 */
	0x06, 0x03, 0x2b, 0x65, 0x70,
};
static const uint8_t PARAMS_ED25519_GNU[] = {	/* 1.3.6.1.4.1.11591.15.1 */
	0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01,
};
static const uint8_t PARAMS_ED25519_NAME[] = {	/* "edwards25519" */
	0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's', '2', '5', '5', '1', '9',
};

#define ED25519_PUB_LEN 32
#define ED25519_SIG_LEN 64

static CK_RV
note_rv(CK_RV rv)
{
	if (rv != CKR_OK)
		tl_last_rv = rv;
	return rv;
}

unsigned long
sg_p11_last_rv(void)
{
	return tl_last_rv;
}

const char *
sg_p11_rv_name(unsigned long rv)
{
	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
	case CKR_SLOT_ID_INVALID: return "CKR_SLOT_ID_INVALID";
	case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
	case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
	case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
	case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
	case CKR_DATA_INVALID: return "CKR_DATA_INVALID";
	case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
	case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
	case CKR_DEVICE_MEMORY: return "CKR_DEVICE_MEMORY";
	case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
	case CKR_FUNCTION_CANCELED: return "CKR_FUNCTION_CANCELED";
	case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
	case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
	case CKR_KEY_SIZE_RANGE: return "CKR_KEY_SIZE_RANGE";
	case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		return "CKR_KEY_FUNCTION_NOT_PERMITTED";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
	case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
	case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
	case CKR_OPERATION_NOT_INITIALIZED:
		return "CKR_OPERATION_NOT_INITIALIZED";
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_PIN_INVALID: return "CKR_PIN_INVALID";
	case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
	case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
	case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
	case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
	case CKR_SESSION_COUNT: return "CKR_SESSION_COUNT";
	case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
	case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
	case CKR_TOKEN_NOT_RECOGNIZED: return "CKR_TOKEN_NOT_RECOGNIZED";
	case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
	case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
	case CKR_USER_PIN_NOT_INITIALIZED: return "CKR_USER_PIN_NOT_INITIALIZED";
	case CKR_USER_TYPE_INVALID: return "CKR_USER_TYPE_INVALID";
	case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
	case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
	case CKR_CRYPTOKI_ALREADY_INITIALIZED:
		return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
	}
	return "CKR_(other)";
}

static int
rv_to_err(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return 0;
	case CKR_HOST_MEMORY:
		return SG_ERR_NOMEM;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_USER_PIN_NOT_INITIALIZED:
	case CKR_USER_NOT_LOGGED_IN:
		return SG_ERR_PIN;
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_MEMORY:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_COUNT:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
		return SG_ERR_UNAVAILABLE;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_KEY_SIZE_RANGE:
	case CKR_FUNCTION_NOT_SUPPORTED:
		return SG_ERR_MECHANISM;
	case CKR_DATA_INVALID:
	case CKR_DATA_LEN_RANGE:
	case CKR_ARGUMENTS_BAD:
		return SG_ERR_INVALID;
	case CKR_BUFFER_TOO_SMALL:
		return SG_ERR_BUFFER;
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
		return SG_ERR_NO_KEY;
	}
	return SG_ERR_HSM;
}

/* What a new session, a new login and finding the keys again can cure. */
static int
rv_recoverable(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_DEVICE_REMOVED:
	case CKR_DEVICE_ERROR:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_OPERATION_ACTIVE:
	case CKR_SLOT_ID_INVALID:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return 1;
	}
	return 0;
}

/* The token refused the PIN: trying again could lock it. */
static int
rv_pin_refused(CK_RV rv)
{
	return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED ||
	    rv == CKR_PIN_LOCKED || rv == CKR_USER_PIN_NOT_INITIALIZED;
}

/* Copies a blank-padded CK_TOKEN_INFO field into a C string. */
static void
field_trim(const unsigned char *src, size_t n, char *dst)
{
	memcpy(dst, src, n);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
		n--;
	dst[n] = '\0';
}

/* ---- time: sg_mono_ms() and sg_mono_deadline() (sg_util.h) ---- */

static int
ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* A condition variable whose timed waits run on the monotonic clock, so
 * that wall-clock jumps neither cut them short nor stretch them. */
static int
cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;
	int e;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (e == 0)
		e = pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
	return e == 0 ? 0 : -1;
}

/* ---- the gate ---- */

/* Enters the module; waits while it is being re-initialised. */
static void
gate_enter(struct sg_p11 *p)
{
	pthread_mutex_lock(&p->gate_lock);
	while (p->reiniting)
		pthread_cond_wait(&p->gate_cond, &p->gate_lock);
	p->inside++;
	pthread_mutex_unlock(&p->gate_lock);
}

static void
gate_leave(struct sg_p11 *p)
{
	pthread_mutex_lock(&p->gate_lock);
	if (--p->inside == 0)
		pthread_cond_broadcast(&p->gate_cond);
	pthread_mutex_unlock(&p->gate_lock);
}

/*
 * Shuts the gate and waits until `until` for every call to leave.  0: the
 * caller alone may use the module until gate_open; SG_ERR_CONFLICT:
 * another re-initialisation was under way (it has been waited for);
 * SG_ERR_TIMEOUT: calls stayed inside, and the gate is open again.
 */
static int
gate_shut(struct sg_p11 *p, const struct timespec *until)
{
	int e = 0, r = 0;

	pthread_mutex_lock(&p->gate_lock);
	if (p->reiniting) {
		while (p->reiniting)
			pthread_cond_wait(&p->gate_cond, &p->gate_lock);
		pthread_mutex_unlock(&p->gate_lock);
		return SG_ERR_CONFLICT;
	}
	p->reiniting = 1;
	while (p->inside > 0 && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&p->gate_cond, &p->gate_lock,
		    until);
	if (p->inside > 0) {
		p->reiniting = 0;
		pthread_cond_broadcast(&p->gate_cond);
		r = SG_ERR_TIMEOUT;
	}
	pthread_mutex_unlock(&p->gate_lock);
	return r;
}

static void
gate_open(struct sg_p11 *p)
{
	pthread_mutex_lock(&p->gate_lock);
	p->reiniting = 0;
	pthread_cond_broadcast(&p->gate_cond);
	pthread_mutex_unlock(&p->gate_lock);
}

/* ---- loading ---- */

/* SG_P11_DEADLINE_MS: milliseconds, 0 for none. */
static unsigned int
deadline_from_env(void)
{
	const char *s = getenv("SG_P11_DEADLINE_MS");
	unsigned long v = 0;
	size_t i;

	if (s == NULL || *s == '\0')
		return P11_DEADLINE_MS;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 7) {
			sg_log_warn("SG_P11_DEADLINE_MS is not a number of "
			    "milliseconds up to %d; using %d", P11_DEADLINE_MAX_MS,
			    P11_DEADLINE_MS);
			return P11_DEADLINE_MS;
		}
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > P11_DEADLINE_MAX_MS) {
		sg_log_warn("SG_P11_DEADLINE_MS above %d; using %d",
		    P11_DEADLINE_MAX_MS, P11_DEADLINE_MS);
		return P11_DEADLINE_MS;
	}
	return (unsigned int)v;
}

static struct sg_p11 *
p11_new(void)
{
	struct sg_p11 *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if (cond_init_mono(&p->wcond) != 0) {
		free(p);
		return NULL;
	}
	if (cond_init_mono(&p->gate_cond) != 0) {
		pthread_cond_destroy(&p->wcond);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->wlock, NULL);
	pthread_mutex_init(&p->gate_lock, NULL);
	atomic_init(&p->reinit_ms, 0);
	atomic_init(&p->deadline_ms, deadline_from_env());
	return p;
}

static void
p11_release(struct sg_p11 *p)
{
	struct p11_worker *w, *next;

	for (w = p->workers; w != NULL; w = next) {
		next = w->next;
		pthread_cond_destroy(&w->cond);
		free(w->in);
		free(w);
	}
	pthread_mutex_destroy(&p->gate_lock);
	pthread_cond_destroy(&p->gate_cond);
	pthread_mutex_destroy(&p->wlock);
	pthread_cond_destroy(&p->wcond);
	free(p);
}

int
sg_p11_load(const char *module_path, struct sg_p11 **ret)
{
	struct sg_p11 *p = NULL;
	CK_C_GetFunctionList get_list;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	int r = SG_ERR_INTERNAL;

	tl_last_rv = CKR_OK;
	/* A bare name would be searched for along the library path. */
	if (module_path == NULL || strchr(module_path, '/') == NULL ||
	    strnlen(module_path, PATH_MAX) >= PATH_MAX || ret == NULL)
		return SG_ERR_INVALID;
	if ((p = p11_new()) == NULL)
		return SG_ERR_NOMEM;
	/*
	 * RTLD_NODELETE: modules register atexit handlers and thread-local
	 * destructors that must not outlive their code, so the module stays
	 * mapped after dlclose (and leak reports can still name it).
	 */
	if ((p->dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL |
	    RTLD_NODELETE)) == NULL) {
		sg_log_warn("PKCS#11 module: %s", dlerror());
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	get_list = (CK_C_GetFunctionList)dlsym(p->dl, "C_GetFunctionList");
	if (get_list == NULL) {
		sg_log_warn("PKCS#11 module has no C_GetFunctionList");
		r = SG_ERR_UNAVAILABLE;
		goto out;
	}
	if ((rv = note_rv(get_list(&p->f))) != CKR_OK || p->f == NULL) {
		r = SG_ERR_HSM;
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = note_rv(p->f->C_Initialize(&args));
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		/*
		 * Someone else in this process initialised the module, perhaps
		 * without CKF_OS_LOCKING_OK (SoftHSM then runs without any
		 * internal locking and our concurrent sessions would corrupt
		 * it), and our C_Finalize would later pull the module from
		 * under them.  Sharing a module is not safe; refuse.
		 */
		p->f = NULL;
		r = SG_ERR_CONFLICT;
		goto out;
	}
	if (rv != CKR_OK) {
		p->f = NULL;
		r = rv_to_err(rv);
		goto out;
	}
	p->initialized = 1;
	*ret = p;
	p = NULL;  /* transferred */
	r = 0;
out:
	if (p != NULL) {
		if (p->dl != NULL)
			dlclose(p->dl);
		p11_release(p);
	}
	return r;
}

int
sg_p11_set_deadline(struct sg_p11 *p, unsigned int ms)
{
	if (p == NULL || ms > P11_DEADLINE_MAX_MS)
		return SG_ERR_INVALID;
	atomic_store(&p->deadline_ms, ms);
	return 0;
}

unsigned int
sg_p11_deadline(const struct sg_p11 *p)
{
	return p == NULL ? 0 : atomic_load(&p->deadline_ms);
}

/* ---- the PIN, kept only for re-login ---- */

static void
pin_wipe(struct sg_p11_token *t)
{
	if (t->pin == NULL)
		return;
	explicit_bzero(t->pin, t->pin_alloc);
	(void)munlock(t->pin, t->pin_alloc);
	(void)munmap(t->pin, t->pin_alloc);
	t->pin = NULL;
	t->pin_len = t->pin_alloc = 0;
}

static int
pin_store(struct sg_p11_token *t, const char *pin, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t sz = pg > 0 ? (size_t)pg : P11_PAGE_FALLBACK;
	void *m;

	if (len > SG_MAX_SECRET_SIZE || len >= sz)
		return SG_ERR_TOO_LARGE;
	m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	if (m == MAP_FAILED)
		return SG_ERR_NOMEM;
	/*
	 * Without the privilege to lock memory the PIN could reach swap;
	 * refusing to start would be worse than that, so only warn.
	 */
	if (mlock(m, sz) != 0)
		sg_log_warn("cannot lock the token PIN in memory: %s",
		    strerror(errno));
	(void)madvise(m, sz, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
	(void)madvise(m, sz, MADV_WIPEONFORK);
#endif
	memcpy(m, pin, len);
	t->pin = m;
	t->pin_len = len;
	t->pin_alloc = sz;
	t->has_pin = 1;
	return 0;
}


/* ---- the session pool ---- */

static CK_SLOT_ID
token_slot(struct sg_p11_token *t)
{
	return (CK_SLOT_ID)atomic_load(&t->slot);
}

/*
 * Borrows a session: an idle one, else a new one.  On failure *ret_rv is
 * what the module said (CKR_OK when the pool stayed full too long:
 * SG_ERR_TIMEOUT).
 */
static int
session_get(struct sg_p11_token *t, struct p11_sess *ret, CK_RV *ret_rv)
{
	CK_FUNCTION_LIST *f = t->p11->f;
	struct timespec deadline;
	CK_SESSION_HANDLE s;
	unsigned long gen;
	CK_RV rv;
	int e;

	*ret_rv = CKR_OK;
	sg_mono_deadline(&deadline, P11_POOL_WAIT_SEC * 1000LL);
	pthread_mutex_lock(&t->lock);
	for (;;) {
		if (t->nidle > 0) {
			*ret = t->idle[--t->nidle];
			pthread_mutex_unlock(&t->lock);
			return 0;
		}
		if (t->nopen < t->max_open) {
			t->nopen++;
			gen = t->gen;
			pthread_mutex_unlock(&t->lock);
			s = CK_INVALID_HANDLE;
			rv = f->C_OpenSession(token_slot(t), CKF_SERIAL_SESSION,
			    NULL, NULL, &s);
			if (rv == CKR_OK) {
				ret->h = s;
				ret->gen = gen;
				return 0;
			}
			note_rv(rv);
			pthread_mutex_lock(&t->lock);
			t->nopen--;
			if (rv == CKR_SESSION_COUNT && t->nopen > 0) {
				/* The token allows fewer than we would
				 * open: share the ones we have. */
				t->max_open = t->nopen;
				continue;
			}
			pthread_cond_signal(&t->cond);
			pthread_mutex_unlock(&t->lock);
			*ret_rv = rv;
			return rv_recoverable(rv) ? SG_ERR_UNAVAILABLE :
			    rv_to_err(rv);
		}
		e = pthread_cond_timedwait(&t->cond, &t->lock, &deadline);
		if (e == ETIMEDOUT) {
			pthread_mutex_unlock(&t->lock);
			return SG_ERR_TIMEOUT;
		}
	}
}

/* Closes a session that is dead or may hold an unfinished operation. */
static void
session_drop(struct sg_p11_token *t, struct p11_sess s)
{
	(void)t->p11->f->C_CloseSession(s.h);
	pthread_mutex_lock(&t->lock);
	t->nopen--;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Returns a clean session; one from before the last recovery is closed. */
static void
session_put(struct sg_p11_token *t, struct p11_sess s)
{
	pthread_mutex_lock(&t->lock);
	if (s.gen != t->gen) {
		pthread_mutex_unlock(&t->lock);
		session_drop(t, s);
		return;
	}
	t->idle[t->nidle++] = s;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* After a token reset every idle handle is dead too: close them all and
 * start a new generation, so that borrowed ones are closed on return. */
static void
session_purge_idle(struct sg_p11_token *t)
{
	struct p11_sess dead[P11_POOL_MAX];
	size_t i, n;

	pthread_mutex_lock(&t->lock);
	n = t->nidle;
	memcpy(dead, t->idle, n * sizeof(dead[0]));
	t->nidle = 0;
	t->nopen -= n;
	t->gen++;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	for (i = 0; i < n; i++)
		(void)t->p11->f->C_CloseSession(dead[i].h);
}

static unsigned long
token_gen(struct sg_p11_token *t)
{
	unsigned long gen;

	pthread_mutex_lock(&t->lock);
	gen = t->gen;
	pthread_mutex_unlock(&t->lock);
	return gen;
}

/*
 * A warning about a failing token.  A token that fails fails for every
 * call, many times a second: one warning per P11_WARN_EVERY_MS is kept,
 * and says how many were held back since the last.
 */
static void token_warn(struct sg_p11_token *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
token_warn(struct sg_p11_token *t, const char *fmt, ...)
{
	char msg[P11_WARN_MSG_MAX];
	long long now = sg_mono_ms(), last = atomic_load(&t->warned_ms);
	unsigned long held;
	va_list ap;

	if (last != 0 && now - last < P11_WARN_EVERY_MS) {
		atomic_fetch_add(&t->unwarned, 1);
		return;
	}
	if (!atomic_compare_exchange_strong(&t->warned_ms, &last, now)) {
		atomic_fetch_add(&t->unwarned, 1);
		return;
	}
	held = atomic_exchange(&t->unwarned, 0);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (held > 0)
		sg_log_warn("token %s: %s (and %lu more failure messages "
		    "since the last)", t->info.label, msg, held);
	else
		sg_log_warn("token %s: %s", t->info.label, msg);
}

static CK_RV
token_login(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_USER_TYPE who)
{
	CK_RV rv;

	pthread_mutex_lock(&t->login_lock);
	rv = t->p11->f->C_Login(s, who,
	    t->has_pin ? (unsigned char *)t->pin : NULL,
	    t->has_pin ? t->pin_len : 0);
	pthread_mutex_unlock(&t->login_lock);
	if (rv == CKR_USER_ALREADY_LOGGED_IN && who == CKU_USER)
		rv = CKR_OK;
	return note_rv(rv);
}

/* ---- tokens ---- */

static void
key_free(struct sg_p11_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	explicit_bzero(k, sizeof(*k));
	free(k);
}

static void
token_free(struct sg_p11_token *t)
{
	CK_FUNCTION_LIST *f;
	struct sg_p11_key *k, *next;
	size_t i;

	if (t == NULL)
		return;
	f = t->p11->f;
	pthread_mutex_lock(&t->lock);
	if (t->nopen != t->nidle)
		sg_log_warn("PKCS#11 token freed with %zu sessions in use",
		    t->nopen - t->nidle);
	/* Logging out needs a session; the login dies with the last one
	 * anyway, this only makes it explicit. */
	if (t->nidle > 0 && f != NULL)
		(void)f->C_Logout(t->idle[0].h);
	for (i = 0; i < t->nidle && f != NULL; i++)
		(void)f->C_CloseSession(t->idle[i].h);
	t->nidle = t->nopen = 0;
	pthread_mutex_unlock(&t->lock);
	for (k = t->keys; k != NULL; k = next) {
		next = k->next;
		key_free(k);
	}
	pin_wipe(t);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->login_lock);
	pthread_mutex_destroy(&t->recover_lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

static struct sg_p11_token *
token_new(struct sg_p11 *p, CK_SLOT_ID slot, const CK_TOKEN_INFO *ti)
{
	struct sg_p11_token *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (cond_init_mono(&t->cond) != 0) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->login_lock, NULL);
	pthread_mutex_init(&t->recover_lock, NULL);
	t->p11 = p;
	atomic_init(&t->slot, slot);
	atomic_init(&t->broken, 0);
	atomic_init(&t->warned_ms, 0);
	atomic_init(&t->unwarned, 0);
	t->max_open = P11_POOL_MAX;
	t->gen = 1;
	field_trim(ti->label, sizeof(ti->label), t->info.label);
	field_trim(ti->serialNumber, sizeof(ti->serialNumber),
	    t->info.serial);
	field_trim(ti->manufacturerID, sizeof(ti->manufacturerID),
	    t->info.manufacturer);
	field_trim(ti->model, sizeof(ti->model), t->info.model);
	return t;
}

static int
slot_list(CK_FUNCTION_LIST *f, CK_SLOT_ID **ret, CK_ULONG *ret_n)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	CK_RV rv;
	int tries;

	/* Tokens can appear between the two calls: retry a few times. */
	for (tries = 0; tries < 3; tries++) {
		if ((rv = note_rv(f->C_GetSlotList(CK_TRUE, NULL, &n))) !=
		    CKR_OK)
			return rv_to_err(rv);
		if (n > P11_MAX_SLOTS)
			return SG_ERR_TOO_LARGE;
		free(slots);
		if ((slots = calloc(n + 1, sizeof(*slots))) == NULL)
			return SG_ERR_NOMEM;
		rv = note_rv(f->C_GetSlotList(CK_TRUE, slots, &n));
		if (rv == CKR_OK) {
			*ret = slots;
			*ret_n = n;
			return 0;
		}
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	free(slots);
	return rv_to_err(rv);
}

/*
 * Finds the slot of the token with this label and, if serial is given,
 * this serial number.  *ret_n counts the matches (more than one is
 * ambiguous); *ret_ti is the first one's info.
 */
static int
slot_by_label(CK_FUNCTION_LIST *f, const char *label, const char *serial,
    CK_SLOT_ID *ret, CK_TOKEN_INFO *ret_ti, size_t *ret_n)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG nslots = 0, i;
	CK_TOKEN_INFO ti;
	char name[P11_TOKEN_LABEL + 1], sn[sizeof(ti.serialNumber) + 1];
	size_t nfound = 0;
	int r;

	if ((r = slot_list(f, &slots, &nslots)) != 0)
		return r;
	for (i = 0; i < nslots; i++) {
		/* A token may go away meanwhile; that is not our token. */
		if (note_rv(f->C_GetTokenInfo(slots[i], &ti)) != CKR_OK)
			continue;
		field_trim(ti.label, sizeof(ti.label), name);
		if (strcmp(name, label) != 0)
			continue;
		field_trim(ti.serialNumber, sizeof(ti.serialNumber), sn);
		if (serial != NULL && strcmp(sn, serial) != 0)
			continue;
		if (nfound++ == 0) {
			*ret = slots[i];
			*ret_ti = ti;
		}
	}
	free(slots);
	*ret_n = nfound;
	return 0;
}

/*
 * After a reset the token may sit in another slot.  Only a token with the
 * same label and serial number is ours: another one with our label is
 * another HSM (perhaps one the inventory does not allow).
 */
static int
token_find_slot(struct sg_p11_token *t)
{
	CK_TOKEN_INFO ti;
	CK_SLOT_ID slot = 0;
	size_t n = 0;
	int r;

	if ((r = slot_by_label(t->p11->f, t->info.label, t->info.serial, &slot,
	    &ti, &n)) != 0)
		return r;
	if (n != 1)
		return n == 0 ? SG_ERR_NOT_FOUND : SG_ERR_INVALID;
	if (slot != token_slot(t)) {
		sg_log_warn("token %s (serial %s) moved to another slot",
		    t->info.label, t->info.serial);
		atomic_store(&t->slot, slot);
	}
	return 0;
}

int
sg_p11_open_token(struct sg_p11 *p, const char *label,
    const char *pin, size_t pin_len, struct sg_p11_token **ret)
{
	CK_SLOT_ID slot = 0;
	CK_TOKEN_INFO ti;
	struct p11_sess s = { CK_INVALID_HANDLE, 0 };
	struct sg_p11_token *t = NULL, *o;
	size_t nfound = 0;
	CK_RV rv;
	int r = SG_ERR_INTERNAL;

	tl_last_rv = CKR_OK;
	memset(&ti, 0, sizeof(ti));
	if (p == NULL || label == NULL || ret == NULL ||
	    strnlen(label, P11_TOKEN_LABEL + 1) > P11_TOKEN_LABEL ||
	    (pin == NULL && pin_len != 0))
		return SG_ERR_INVALID;
	if (pin_len > SG_MAX_SECRET_SIZE)
		return SG_ERR_PIN;
	for (o = p->tokens; o != NULL; o = o->next)
		if (strcmp(o->info.label, label) == 0)
			return SG_ERR_CONFLICT;
	gate_enter(p);
	if ((r = slot_by_label(p->f, label, NULL, &slot, &ti, &nfound)) != 0)
		goto out;
	if (nfound == 0) {
		r = SG_ERR_NOT_FOUND;
		goto out;
	}
	if (nfound > 1) {
		/* Picking one of two tokens with one label could sign with
		 * the wrong HSM. */
		r = SG_ERR_INVALID;
		goto out;
	}
	if ((t = token_new(p, slot, &ti)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if (pin != NULL && (r = pin_store(t, pin, pin_len)) != 0)
		goto out;
	if ((r = session_get(t, &s, &rv)) != 0)
		goto out;
	if (t->has_pin ||
	    (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0) {
		t->login = 1;
		if ((rv = token_login(t, s.h, CKU_USER)) != CKR_OK) {
			r = rv_to_err(rv);
			goto out;
		}
	} else if ((ti.flags & CKF_LOGIN_REQUIRED) != 0) {
		r = SG_ERR_PIN;
		goto out;
	}
	session_put(t, s);
	s.h = CK_INVALID_HANDLE;
	t->next = p->tokens;
	p->tokens = t;
	*ret = t;
	t = NULL;  /* transferred */
	r = 0;
out:
	if (s.h != CK_INVALID_HANDLE)
		session_drop(t, s);
	token_free(t);
	gate_leave(p);
	return r;
}

void
sg_p11_token_info(const struct sg_p11_token *t, struct sg_token_info *ret)
{
	if (t == NULL)
		memset(ret, 0, sizeof(*ret));
	else
		*ret = t->info;
}

int
sg_p11_token_healthy(const struct sg_p11_token *t)
{
	return t != NULL && !atomic_load(&t->broken);
}

struct sg_p11_token *
sg_p11_key_token(const struct sg_p11_key *k)
{
	return k == NULL ? NULL : k->token;
}

/* ---- objects and attributes ---- */

/* Finds up to `max` objects; *ret_n says how many (so max = 2 tells
 * "exactly one" from "more than one"). */
static CK_RV
find_objects(struct sg_p11_token *t, CK_SESSION_HANDLE s,
    CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl, CK_OBJECT_HANDLE *out, CK_ULONG max,
    CK_ULONG *ret_n)
{
	CK_FUNCTION_LIST *f = t->p11->f;
	CK_ULONG n = 0;
	CK_RV rv, rv2;

	if ((rv = note_rv(f->C_FindObjectsInit(s, tmpl, ntmpl))) != CKR_OK)
		return rv;
	rv = note_rv(f->C_FindObjects(s, out, max, &n));
	rv2 = note_rv(f->C_FindObjectsFinal(s));
	if (rv == CKR_OK)
		rv = rv2;
	if (rv == CKR_OK && n > max)
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		*ret_n = n;
	return rv;
}

/* Reads a variable-length attribute.  SG_ERR_NOT_FOUND if the object has
 * no such attribute or will not show it. */
static int
get_attr(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, size_t max, uint8_t **ret, size_t *ret_len)
{
	CK_FUNCTION_LIST *f = t->p11->f;
	CK_ATTRIBUTE a = { type, NULL, 0 };
	uint8_t *buf = NULL;
	size_t want;
	CK_RV rv;

	rv = note_rv(f->C_GetAttributeValue(s, o, &a, 1));
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION))
		return SG_ERR_NOT_FOUND;
	if (rv != CKR_OK)
		return rv_to_err(rv);
	if (a.ulValueLen > max)
		return SG_ERR_TOO_LARGE;
	want = a.ulValueLen;
	if ((buf = malloc(want + 1)) == NULL)
		return SG_ERR_NOMEM;
	a.pValue = buf;
	rv = note_rv(f->C_GetAttributeValue(s, o, &a, 1));
	if (rv != CKR_OK || a.ulValueLen > want) {
		free(buf);
		return rv == CKR_OK ? SG_ERR_HSM : rv_to_err(rv);
	}
	*ret = buf;
	*ret_len = a.ulValueLen;
	return 0;
}

static int
get_ulong(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, CK_ULONG *ret)
{
	CK_ULONG v = 0;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };
	CK_RV rv;

	rv = note_rv(t->p11->f->C_GetAttributeValue(s, o, &a, 1));
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE)
		return SG_ERR_NOT_FOUND;
	if (rv != CKR_OK)
		return rv_to_err(rv);
	if (a.ulValueLen != sizeof(v))
		return SG_ERR_HSM;
	*ret = v;
	return 0;
}

/* A CK_BBOOL attribute; `dflt` when the object does not have it. */
static int
get_bool(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, int dflt, int *ret)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };
	CK_RV rv;

	rv = note_rv(t->p11->f->C_GetAttributeValue(s, o, &a, 1));
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    (rv == CKR_OK && a.ulValueLen != sizeof(v))) {
		*ret = dflt;
		return 0;
	}
	if (rv != CKR_OK)
		return rv_to_err(rv);
	*ret = v != CK_FALSE;
	return 0;
}

/* ---- public keys ---- */

static int
bytes_eq(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

/*
 * CKA_EC_POINT should be a DER OCTET STRING around the encoded point, but
 * some modules store the bare point.  `ok` lists the bare lengths valid for
 * the curve; no wrapped length equals a bare one, so the two cannot be
 * confused.
 */
static int
point_unwrap(const uint8_t *b, size_t len, const size_t *ok, size_t nok,
    const uint8_t **ret, size_t *ret_len)
{
	size_t i, hdr, inner;

	for (i = 0; i < nok; i++) {
		if (len == ok[i]) {
			*ret = b;
			*ret_len = len;
			return 0;
		}
	}
	if (len < 2 || b[0] != 0x04)
		return SG_ERR_INVALID;
	if (b[1] < 0x80) {
		hdr = 2;
		inner = b[1];
	} else if (b[1] == 0x81 && len >= 3 && b[2] >= 0x80) {
		hdr = 3;
		inner = b[2];
	} else
		return SG_ERR_INVALID;
	if (hdr + inner != len)
		return SG_ERR_INVALID;
	for (i = 0; i < nok; i++) {
		if (inner == ok[i]) {
			*ret = b + hdr;
			*ret_len = inner;
			return 0;
		}
	}
	return SG_ERR_INVALID;
}

static int
pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	int r = SG_ERR_CRYPTO;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	/* Fails for a point that is not on the curve. */
	if (EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		r = SG_ERR_INVALID;
		goto out;
	}
	*ret = pk;
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return r;
}

static int
pub_from_ec(const uint8_t *params, size_t plen, const uint8_t *pt,
    size_t ptlen, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = NULL;
	const char *group;
	const uint8_t *raw;
	size_t rawlen, field, ok[2];
	int r;

	if (bytes_eq(params, plen, PARAMS_P256, sizeof(PARAMS_P256))) {
		group = "P-256";
		field = SG_EC_P256_FIELD_LEN;
	} else if (bytes_eq(params, plen, PARAMS_P384, sizeof(PARAMS_P384))) {
		group = "P-384";
		field = SG_EC_P384_FIELD_LEN;
	} else
		return SG_ERR_MECHANISM;
	ok[0] = 1 + 2 * field;	/* uncompressed */
	ok[1] = 1 + field;	/* compressed */
	if ((r = point_unwrap(pt, ptlen, ok, 2, &raw, &rawlen)) != 0)
		return r;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return SG_ERR_NOMEM;
	if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    raw, rawlen))
		r = SG_ERR_CRYPTO;
	else
		r = pkey_fromdata("EC", bld, ret);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

static int
pub_from_ed(const uint8_t *params, size_t plen, const uint8_t *pt,
    size_t ptlen, EVP_PKEY **ret)
{
	static const size_t ok[1] = { ED25519_PUB_LEN };
	const uint8_t *raw;
	size_t rawlen;
	EVP_PKEY *pk;
	int r;

	if (!bytes_eq(params, plen, PARAMS_ED25519, sizeof(PARAMS_ED25519)) &&
	    !bytes_eq(params, plen, PARAMS_ED25519_GNU,
	    sizeof(PARAMS_ED25519_GNU)) &&
	    !bytes_eq(params, plen, PARAMS_ED25519_NAME,
	    sizeof(PARAMS_ED25519_NAME)))
		return SG_ERR_MECHANISM;	/* Ed448, or unknown */
	if ((r = point_unwrap(pt, ptlen, ok, 1, &raw, &rawlen)) != 0)
		return r;
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, rawlen);
	if (pk == NULL)
		return SG_ERR_INVALID;
	*ret = pk;
	return 0;
}

static int
pub_from_rsa(const uint8_t *mod, size_t modlen, const uint8_t *exp,
    size_t explen, EVP_PKEY **ret)
{
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *n = NULL, *e = NULL;
	int r = SG_ERR_NOMEM;

	if ((n = BN_bin2bn(mod, (int)modlen, NULL)) == NULL ||
	    (e = BN_bin2bn(exp, (int)explen, NULL)) == NULL)
		goto out;
	if (BN_num_bits(n) < P11_RSA_MIN_BITS ||
	    BN_num_bits(n) > P11_RSA_MAX_BITS) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	if (!BN_is_odd(e) || BN_is_one(e) ||
	    BN_num_bits(e) > P11_RSA_MAX_EXP_BITS) {
		r = SG_ERR_INVALID;
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)) {
		r = SG_ERR_CRYPTO;
		goto out;
	}
	r = pkey_fromdata("RSA", bld, ret);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return r;
}

/* Builds the public key from a CKO_PUBLIC_KEY object. */
static int
pub_from_object(struct sg_p11_token *t, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE o, CK_KEY_TYPE type, EVP_PKEY **ret)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	int r;

	switch (type) {
	case CKK_EC:
	case CKK_EC_EDWARDS:
		if ((r = get_attr(t, s, o, CKA_EC_PARAMS, P11_MAX_ATTR, &a,
		    &alen)) != 0 ||
		    (r = get_attr(t, s, o, CKA_EC_POINT, P11_MAX_ATTR, &b,
		    &blen)) != 0)
			break;
		r = type == CKK_EC ? pub_from_ec(a, alen, b, blen, ret) :
		    pub_from_ed(a, alen, b, blen, ret);
		break;
	case CKK_RSA:
		if ((r = get_attr(t, s, o, CKA_MODULUS, P11_MAX_ATTR, &a,
		    &alen)) != 0 ||
		    (r = get_attr(t, s, o, CKA_PUBLIC_EXPONENT, P11_MAX_ATTR,
		    &b, &blen)) != 0)
			break;
		r = pub_from_rsa(a, alen, b, blen, ret);
		break;
	default:
		r = SG_ERR_MECHANISM;
	}
	if (r == SG_ERR_NOT_FOUND)
		r = SG_ERR_INVALID;	/* a public key without its value */
	free(a);
	free(b);
	return r;
}

static int
pub_from_cert(struct sg_p11_token *t, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE o, EVP_PKEY **ret)
{
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	X509 *x = NULL;
	EVP_PKEY *pk;
	int r;

	if ((r = get_attr(t, s, o, CKA_VALUE, P11_MAX_CERT, &der, &len)) != 0)
		return r == SG_ERR_NOT_FOUND ? SG_ERR_INVALID : r;
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len) {
		r = SG_ERR_INVALID;
		goto out;
	}
	if ((pk = X509_get_pubkey(x)) == NULL) {
		r = SG_ERR_INVALID;
		goto out;
	}
	*ret = pk;
	r = 0;
out:
	X509_free(x);
	free(der);
	return r;
}

static enum sg_key_alg
alg_of(EVP_PKEY *pub, CK_KEY_TYPE type)
{
	enum sg_key_alg alg = sg_pubkey_alg(pub);

	switch (alg) {
	case SG_ALG_ECDSA_P256:
	case SG_ALG_ECDSA_P384:
		return type == CKK_EC ? alg : SG_ALG_NONE;
	case SG_ALG_RSA:
		if (EVP_PKEY_get_bits(pub) > P11_RSA_MAX_BITS)
			return SG_ALG_NONE;
		return type == CKK_RSA ? alg : SG_ALG_NONE;
	case SG_ALG_ED25519:
		return type == CKK_EC_EDWARDS ? alg : SG_ALG_NONE;
	default:
		return SG_ALG_NONE;
	}
}

/*
 * The public half of a private key: the CKO_PUBLIC_KEY with its CKA_ID (and
 * label, if the ID alone is ambiguous), else with its label, else the X.509
 * certificate with its CKA_ID.  SG_ERR_NOT_FOUND when there is none.
 */
static int
find_public(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_KEY_TYPE type,
    const uint8_t *id, size_t id_len, const uint8_t *label, size_t label_len,
    EVP_PKEY **ret)
{
	CK_OBJECT_CLASS pubcls = CKO_PUBLIC_KEY, certcls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ctype = CKC_X_509;
	CK_ATTRIBUTE tmpl[4];
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n, nt;
	CK_RV rv;
	int step;

	for (step = 0; step < 4; step++) {
		nt = 0;
		if (step < 3) {
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &pubcls,
			    sizeof(pubcls) };
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &type,
			    sizeof(type) };
		} else {
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &certcls,
			    sizeof(certcls) };
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CERTIFICATE_TYPE,
			    &ctype, sizeof(ctype) };
		}
		if (step == 0 || step == 1 || step == 3) {
			if (id_len == 0)
				continue;
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id,
			    id_len };
		}
		if (step == 1 || step == 2) {
			if (label_len == 0)
				continue;
			tmpl[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label,
			    label_len };
		}
		if ((rv = find_objects(t, s, tmpl, nt, h, 2, &n)) != CKR_OK)
			return rv_to_err(rv);
		if (n != 1)
			continue;
		return step < 3 ? pub_from_object(t, s, h[0], type, ret) :
		    pub_from_cert(t, s, h[0], ret);
	}
	return SG_ERR_NOT_FOUND;
}

/*
 * Finds the one private key matching the key's label and/or id.  On a
 * module error *ret_rv says which (else CKR_OK).
 */
static int
find_private(struct sg_p11_key *k, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE *ret, CK_RV *ret_rv)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[3];
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0, nt = 0;
	CK_RV rv;

	*ret_rv = CKR_OK;
	tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if (k->by_label)
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, k->label,
		    k->label_len };
	if (k->id_len > 0)
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_ID, k->id, k->id_len };
	if ((rv = find_objects(k->token, s, tmpl, nt, h, 2, &n)) != CKR_OK) {
		*ret_rv = rv;
		return rv_to_err(rv);
	}
	if (n == 0)
		return SG_ERR_NO_KEY;
	if (n > 1)
		return SG_ERR_INVALID;
	*ret = h[0];
	return 0;
}

int
sg_p11_find_key(struct sg_p11_token *t, const char *label,
    const uint8_t *id, size_t id_len, struct sg_p11_key **ret)
{
	struct sg_p11_key *k = NULL;
	struct p11_sess s = { CK_INVALID_HANDLE, 0 };
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG type = 0;
	CK_RV rv;
	uint8_t *kid = NULL, *klabel = NULL;
	size_t kid_len = 0, klabel_len = 0;
	int can_sign = 0, r = SG_ERR_INTERNAL;

	tl_last_rv = CKR_OK;
	if (t == NULL || ret == NULL || (label == NULL && id_len == 0) ||
	    (id == NULL && id_len != 0) || id_len > P11_MAX_ID ||
	    (label != NULL &&
	    strnlen(label, P11_MAX_LABEL + 1) > P11_MAX_LABEL))
		return SG_ERR_INVALID;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return SG_ERR_NOMEM;
	k->token = t;
	if (label != NULL) {
		k->by_label = 1;
		k->label_len = strlen(label);
		memcpy(k->label, label, k->label_len);
	}
	if (id_len > 0)
		memcpy(k->id, id, id_len);
	k->id_len = id_len;

	gate_enter(t->p11);
	if ((r = session_get(t, &s, &rv)) != 0)
		goto out;
	if ((r = find_private(k, s.h, &h, &rv)) != 0)
		goto out;
	if ((r = get_ulong(t, s.h, h, CKA_KEY_TYPE, &type)) != 0)
		goto out;
	k->ck_type = type;
	if (type != CKK_EC && type != CKK_RSA && type != CKK_EC_EDWARDS) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	if ((r = get_bool(t, s.h, h, CKA_SIGN, 1, &can_sign)) != 0 ||
	    (r = get_bool(t, s.h, h, CKA_ALWAYS_AUTHENTICATE, 0,
	    &k->always_auth)) != 0)
		goto out;
	if (!can_sign) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	/* The private key's own ID and label lead to its public half, even
	 * when it was asked for by only one of them. */
	r = get_attr(t, s.h, h, CKA_ID, P11_MAX_ID, &kid, &kid_len);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		goto out;
	r = get_attr(t, s.h, h, CKA_LABEL, P11_MAX_LABEL, &klabel,
	    &klabel_len);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		goto out;
	if ((r = find_public(t, s.h, type, kid, kid_len, klabel, klabel_len,
	    &k->pub)) != 0)
		goto out;
	if (kid_len > 0)
		memcpy(k->own_id, kid, kid_len);
	k->own_id_len = kid_len;
	if (klabel_len > 0)
		memcpy(k->own_label, klabel, klabel_len);
	k->own_label_len = klabel_len;
	if ((k->alg = alg_of(k->pub, type)) == SG_ALG_NONE) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	switch (k->alg) {
	case SG_ALG_ECDSA_P256:
		k->sig_len = 2 * SG_EC_P256_FIELD_LEN;	/* r||s */
		break;
	case SG_ALG_ECDSA_P384:
		k->sig_len = 2 * SG_EC_P384_FIELD_LEN;
		break;
	case SG_ALG_ED25519:
		k->sig_len = ED25519_SIG_LEN;
		break;
	default:
		k->sig_len = (size_t)EVP_PKEY_get_size(k->pub);
		break;
	}
	atomic_store(&k->handle, h);
	pthread_mutex_lock(&t->lock);
	k->next = t->keys;
	t->keys = k;
	pthread_mutex_unlock(&t->lock);
	*ret = k;
	k = NULL;  /* transferred */
	r = 0;
out:
	if (s.h != CK_INVALID_HANDLE) {
		/* Only a failing module (which may leave a search open) is a
		 * reason to distrust the session; not finding a key is not. */
		if (r == SG_ERR_HSM || r == SG_ERR_UNAVAILABLE)
			session_drop(t, s);
		else
			session_put(t, s);
	}
	gate_leave(t->p11);
	free(kid);
	free(klabel);
	key_free(k);
	return r;
}

enum sg_key_alg
sg_p11_key_alg(const struct sg_p11_key *k)
{
	return k == NULL ? SG_ALG_NONE : k->alg;
}

EVP_PKEY *
sg_p11_key_public(const struct sg_p11_key *k)
{
	return k == NULL ? NULL : k->pub;
}

int
sg_p11_key_same_object(const struct sg_p11_key *a,
    const struct sg_p11_key *b)
{
	return a != NULL && b != NULL && a->token == b->token &&
	    atomic_load(&a->handle) == atomic_load(&b->handle);
}

int
sg_p11_key_names(const struct sg_p11_key *k, const char *label,
    const uint8_t *id, size_t id_len)
{
	if (k == NULL)
		return 0;
	if (label != NULL && label[0] != '\0' && k->own_label_len > 0 &&
	    strlen(label) == k->own_label_len &&
	    memcmp(label, k->own_label, k->own_label_len) == 0)
		return 1;
	return id_len > 0 && id_len == k->own_id_len &&
	    memcmp(id, k->own_id, id_len) == 0;
}

/* ---- recovery ---- */

#define P11_NEED_REINIT 1	/* internal: token_recover asks for it */

static int
job_abandoned(const struct p11_job *j)
{
	return j->abandoned != NULL && atomic_load(j->abandoned);
}

/*
 * Finds every key of the token again: handles change when a token is
 * reset, and a logout invalidates private-object handles.  A module error
 * on any key fails the whole re-open (it is tried again, and no key is
 * left with a stale handle by a passing fault); another key that is simply
 * gone keeps its old handle and fails on its own use.
 */
static int
refind_keys(struct sg_p11_token *t, struct sg_p11_key *want,
    CK_SESSION_HANDLE s, CK_RV *ret_rv)
{
	struct sg_p11_key *k, *head;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r;

	*ret_rv = CKR_OK;
	pthread_mutex_lock(&t->lock);
	head = t->keys;
	pthread_mutex_unlock(&t->lock);
	/* Keys are only ever prepended: the list from head is stable. */
	for (k = head; k != NULL; k = k->next) {
		h = CK_INVALID_HANDLE;
		if ((r = find_private(k, s, &h, &rv)) == 0) {
			atomic_store(&k->handle, h);
			continue;
		}
		if (k == want || rv != CKR_OK) {
			*ret_rv = rv;
			return r;
		}
		token_warn(t, "a key (%.*s) was not found again: %s",
		    (int)(k->by_label ? k->label_len : 0),
		    (const char *)k->label, sg_strerror(r));
	}
	return 0;
}

/*
 * One re-open: closes every idle session, opens a new one (finding the
 * slot again if the token moved), logs in, finds the keys again.  On
 * failure *ret_rv is the module's answer, if it gave one.
 */
static int
token_reopen(struct sg_p11_token *t, struct sg_p11_key *k,
    struct p11_sess *s, CK_RV *ret_rv)
{
	CK_RV rv = CKR_OK;
	int r;

	*ret_rv = CKR_OK;
	session_purge_idle(t);
	if ((r = session_get(t, s, &rv)) != 0) {
		if (rv == CKR_OK || !rv_recoverable(rv) ||
		    token_find_slot(t) != 0 ||
		    (r = session_get(t, s, &rv)) != 0) {
			*ret_rv = rv;
			return r == SG_ERR_TIMEOUT ? r : SG_ERR_UNAVAILABLE;
		}
	}
	if (t->login && (rv = token_login(t, s->h, CKU_USER)) != CKR_OK) {
		r = rv_pin_refused(rv) ? SG_ERR_PIN : SG_ERR_UNAVAILABLE;
		goto fail;
	}
	if ((r = refind_keys(t, k, s->h, &rv)) != 0) {
		token_warn(t, "the key was not found again: %s (%s)",
		    sg_strerror(r), sg_p11_rv_name(rv));
		r = SG_ERR_UNAVAILABLE;
		goto fail;
	}
	return 0;
fail:
	session_drop(t, *s);
	s->h = CK_INVALID_HANDLE;
	*ret_rv = rv;
	return r;
}

static int
reinit_allowed(struct sg_p11 *p)
{
	long long last = atomic_load(&p->reinit_ms);

	return last == 0 || sg_mono_ms() - last >= P11_REINIT_MIN_SEC * 1000LL;
}

/*
 * Drops *s, then brings the token back: a new session, a login, the keys
 * found again.  seen_gen is the generation of the session that failed
 * (0: none); if another call recovered since, a new session is enough.
 * Returns P11_NEED_REINIT when may_reinit is set and re-opening failed in
 * a way a re-initialised module might cure.
 */
static int
token_recover(struct sg_p11_token *t, struct sg_p11_key *k,
    const struct p11_job *j, struct p11_sess *s, unsigned long seen_gen,
    int may_reinit)
{
	CK_RV rv = CKR_OK;
	int r = SG_ERR_UNAVAILABLE, tries;

	if (s->h != CK_INVALID_HANDLE) {
		session_drop(t, *s);
		s->h = CK_INVALID_HANDLE;
	}
	pthread_mutex_lock(&t->recover_lock);
	if (job_abandoned(j)) {
		r = SG_ERR_TIMEOUT;
		goto out;
	}
	if (seen_gen != 0 && seen_gen != token_gen(t) &&
	    !atomic_load(&t->broken) && session_get(t, s, &rv) == 0) {
		r = 0;
		goto out;
	}
	for (tries = 0; tries < 2; tries++) {
		if (tries > 0 && job_abandoned(j)) {
			r = SG_ERR_TIMEOUT;
			break;
		}
		if ((r = token_reopen(t, k, s, &rv)) == 0) {
			if (atomic_exchange(&t->broken, 0))
				sg_log_info("token %s: recovered",
				    t->info.label);
			goto out;
		}
		token_warn(t, "re-opening failed: %s (%s)", sg_strerror(r),
		    sg_p11_rv_name(rv));
		if (r == SG_ERR_PIN || r == SG_ERR_TIMEOUT)
			break;
		if (may_reinit && reinit_allowed(t->p11)) {
			r = P11_NEED_REINIT;
			goto out;
		}
	}
	atomic_store(&t->broken, 1);
out:
	pthread_mutex_unlock(&t->recover_lock);
	return r;
}

/*
 * Finalises and initialises the module again; the caller holds no lock.
 * Every token starts a new generation with an empty pool (their sessions
 * died with the module) and is marked broken, so that its next call logs
 * in and finds its keys again.
 */
static int
module_reinit(struct sg_p11 *p, const struct p11_job *j)
{
	struct sg_p11_token *t;
	struct timespec until;
	CK_C_INITIALIZE_ARGS args;
	size_t stuck;
	CK_RV rv;
	int r;

	pthread_mutex_lock(&p->wlock);
	stuck = p->nstuck;
	pthread_mutex_unlock(&p->wlock);
	if (stuck > 0) {
		/* Finalising under a call still inside the module would pull
		 * its session out from under it. */
		sg_log_warn("PKCS#11 module: not re-initialised: %zu calls "
		    "still inside it", stuck);
		return SG_ERR_UNAVAILABLE;
	}
	sg_mono_deadline(&until, P11_REINIT_WAIT_MS);
	if (j->deadline.tv_sec != 0 && ts_before(&j->deadline, &until))
		until = j->deadline;
	if ((r = gate_shut(p, &until)) == SG_ERR_CONFLICT)
		return 0;	/* another call just did it */
	if (r != 0) {
		sg_log_warn("PKCS#11 module: not re-initialised: calls did "
		    "not leave it in time");
		return SG_ERR_UNAVAILABLE;
	}
	if (!reinit_allowed(p)) {
		gate_open(p);
		return 0;
	}
	sg_log_warn("PKCS#11 module: finalising and initialising it again");
	if (p->initialized)
		(void)p->f->C_Finalize(NULL);
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = note_rv(p->f->C_Initialize(&args));
	p->initialized = rv == CKR_OK;
	atomic_store(&p->reinit_ms, sg_mono_ms());
	for (t = p->tokens; t != NULL; t = t->next) {
		pthread_mutex_lock(&t->lock);
		t->nopen -= t->nidle;
		t->nidle = 0;
		t->gen++;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		atomic_store(&t->broken, 1);
		if (rv == CKR_OK && token_find_slot(t) != 0)
			sg_log_warn("token %s (serial %s) is not there after "
			    "re-initialising the module", t->info.label,
			    t->info.serial);
	}
	gate_open(p);
	if (rv != CKR_OK) {
		sg_log_warn("PKCS#11 module: C_Initialize: %s",
		    sg_p11_rv_name(rv));
		return SG_ERR_UNAVAILABLE;
	}
	return 0;
}

/* token_recover, escalating to module_reinit when it asks; the caller is
 * inside the gate, and is inside it again on return. */
static int
recover(struct sg_p11_token *t, struct sg_p11_key *k,
    const struct p11_job *j, struct p11_sess *s, unsigned long seen_gen,
    int may_reinit)
{
	struct sg_p11 *p = t->p11;
	int r;

	r = token_recover(t, k, j, s, seen_gen, may_reinit);
	if (r != P11_NEED_REINIT)
		return r;
	gate_leave(p);
	r = module_reinit(p, j);
	gate_enter(p);
	if (r != 0) {
		atomic_store(&t->broken, 1);
		return r;
	}
	return token_recover(t, k, j, s, 0, 0);
}

/* ---- signing ---- */

/* One C_SignInit + C_Sign. */
static CK_RV
sign_once(struct sg_p11_key *k, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
    const uint8_t *in, size_t in_len, uint8_t *out, CK_ULONG *io_len)
{
	CK_FUNCTION_LIST *f = k->token->p11->f;
	CK_RV rv;

	rv = f->C_SignInit(s, mech, (CK_OBJECT_HANDLE)atomic_load(&k->handle));
	if (rv != CKR_OK)
		return note_rv(rv);
	if (k->always_auth &&
	    (rv = token_login(k->token, s, CKU_CONTEXT_SPECIFIC)) != CKR_OK)
		return rv;
	return note_rv(f->C_Sign(s, (CK_BYTE *)in, in_len, out, io_len));
}

/*
 * The whole signing call, recovery included; runs on a worker (or on the
 * caller's thread without a deadline).  The operation is retried at most
 * once, after a recovery; a call that starts on a broken token (or cannot
 * get a session) recovers first.
 */
static void
job_run(struct p11_job *j)
{
	struct sg_p11_key *k = j->k;
	struct sg_p11_token *t = k->token;
	struct sg_p11 *p = t->p11;
	struct p11_sess s = { CK_INVALID_HANDLE, 0 };
	CK_RV rv = CKR_GENERAL_ERROR;
	int r, recovered = 0;

	tl_last_rv = CKR_OK;
	gate_enter(p);
	/* Recovering before the first attempt does not use up its retry. */
	if (atomic_load(&t->broken)) {
		token_warn(t, "recovering before signing");
		r = recover(t, k, j, &s, 0, 1);
	} else if ((r = session_get(t, &s, &rv)) != 0 && rv_recoverable(rv)) {
		token_warn(t, "%s, opening a new session",
		    sg_p11_rv_name(rv));
		r = recover(t, k, j, &s, 0, 0);
	}
	if (r != 0)
		goto out;
	for (;;) {
		if (job_abandoned(j)) {
			r = SG_ERR_TIMEOUT;
			goto out;
		}
		j->out_len = j->out_cap;
		rv = sign_once(k, s.h, &j->mech, j->in, j->in_len, j->out,
		    &j->out_len);
		if (rv == CKR_OK)
			break;
		if (!rv_recoverable(rv)) {
			r = rv_to_err(rv);
			goto out;
		}
		if (recovered) {
			token_warn(t, "%s again after recovering",
			    sg_p11_rv_name(rv));
			atomic_store(&t->broken, 1);
			r = SG_ERR_UNAVAILABLE;
			goto out;
		}
		recovered = 1;
		token_warn(t, "%s, opening a new session and logging in "
		    "again", sg_p11_rv_name(rv));
		if ((r = recover(t, k, j, &s, s.gen, 0)) != 0)
			goto out;
	}
	r = j->out_len == k->sig_len ? 0 : SG_ERR_HSM;
out:
	if (s.h != CK_INVALID_HANDLE) {
		/* An abandoned call's session is in an unknown state. */
		if (r == 0 && !job_abandoned(j))
			session_put(t, s);
		else
			session_drop(t, s);
	}
	gate_leave(p);
	j->r = r;
	j->last_rv = tl_last_rv;
}

static void
worker_to_idle(struct sg_p11 *p, struct p11_worker *w)
{
	explicit_bzero(w->in, P11_JOB_IN_MAX);
	explicit_bzero(&w->job, sizeof(w->job));
	w->state = W_IDLE;
	w->next_idle = p->idle;
	p->idle = w;
	pthread_cond_broadcast(&p->wcond);
}

static void p11_destroy(struct sg_p11 *p);

static void *
worker_main(void *arg)
{
	struct p11_worker *w = arg;
	struct sg_p11 *p = w->p;
	int last;

	pthread_mutex_lock(&p->wlock);
	for (;;) {
		while (w->state != W_ASSIGNED && !p->closing)
			pthread_cond_wait(&w->cond, &p->wlock);
		if (w->state != W_ASSIGNED)
			break;
		pthread_mutex_unlock(&p->wlock);
		job_run(&w->job);
		pthread_mutex_lock(&p->wlock);
		if (atomic_load(&w->abandoned)) {
			/* Its caller gave up long ago; the worker is free. */
			atomic_store(&w->abandoned, 0);
			p->nstuck--;
			sg_log_warn("a PKCS#11 call returned after its deadline "
			    "(%zu still stuck)", p->nstuck);
			worker_to_idle(p, w);
		} else {
			w->state = W_DONE;
			pthread_cond_broadcast(&w->cond);
		}
	}
	p->nworkers--;
	pthread_cond_broadcast(&p->wcond);
	last = p->orphaned && p->nworkers == 0;
	pthread_mutex_unlock(&p->wlock);
	if (last)
		p11_destroy(p);
	return NULL;
}

/*
 * A new worker thread, not on the idle list.  Called with p->wlock held
 * and a place reserved in p->nworkers; drops the lock while the thread
 * starts, so that callers arriving together start theirs together.
 */
static int
worker_new(struct sg_p11 *p, struct p11_worker **ret)
{
	struct p11_worker *w;
	pthread_attr_t attr;
	pthread_t th;
	int e = ENOMEM;

	pthread_mutex_unlock(&p->wlock);
	if ((w = calloc(1, sizeof(*w))) != NULL &&
	    (w->in = malloc(P11_JOB_IN_MAX)) != NULL &&
	    cond_init_mono(&w->cond) == 0) {
		w->p = p;
		w->state = W_IDLE;
		atomic_init(&w->abandoned, 0);
		e = EAGAIN;
		if (pthread_attr_init(&attr) == 0) {
			(void)pthread_attr_setdetachstate(&attr,
			    PTHREAD_CREATE_DETACHED);
			e = pthread_create(&th, &attr, worker_main, w);
			pthread_attr_destroy(&attr);
		}
		if (e != 0)
			pthread_cond_destroy(&w->cond);
	}
	pthread_mutex_lock(&p->wlock);
	if (e != 0) {
		p->nworkers--;
		pthread_cond_broadcast(&p->wcond);
		sg_log_warn("cannot start a PKCS#11 worker thread: %s",
		    strerror(e));
		if (w != NULL)
			free(w->in);
		free(w);
		return SG_ERR_UNAVAILABLE;
	}
	w->next = p->workers;
	p->workers = w;
	*ret = w;
	return 0;
}

/*
 * Runs j on a worker and waits for it until the deadline.  On
 * SG_ERR_TIMEOUT the worker is left to finish alone; its outputs are never
 * read, and j's are untouched.
 */
static int
job_submit(struct sg_p11 *p, struct p11_job *j, unsigned int ms)
{
	struct p11_worker *w = NULL;
	struct timespec deadline;
	int e, r;

	sg_mono_deadline(&deadline, ms);
	if (j->in_len > P11_JOB_IN_MAX)
		return SG_ERR_TOO_LARGE;
	pthread_mutex_lock(&p->wlock);
	if (p->nstuck >= P11_MAX_STUCK) {
		pthread_mutex_unlock(&p->wlock);
		return SG_ERR_UNAVAILABLE;
	}
	while ((w = p->idle) == NULL) {
		if (p->nworkers < P11_MAX_WORKERS) {
			p->nworkers++;
			if ((r = worker_new(p, &w)) != 0) {
				pthread_mutex_unlock(&p->wlock);
				return r;
			}
			break;
		}
		e = pthread_cond_timedwait(&p->wcond, &p->wlock, &deadline);
		if (e == ETIMEDOUT && p->idle == NULL) {
			pthread_mutex_unlock(&p->wlock);
			return SG_ERR_TIMEOUT;
		}
	}
	if (w == p->idle)
		p->idle = w->next_idle;
	w->next_idle = NULL;
	/* The worker gets its own copy: an abandoned call must never read
	 * the caller's memory. */
	w->job = *j;
	if (j->in_len > 0)
		memcpy(w->in, j->in, j->in_len);
	w->job.in = w->in;
	if (j->mech.pParameter == &j->pss)
		w->job.mech.pParameter = &w->job.pss;
	w->job.deadline = deadline;
	w->job.abandoned = &w->abandoned;
	w->state = W_ASSIGNED;
	pthread_cond_broadcast(&w->cond);
	while (w->state != W_DONE) {
		e = pthread_cond_timedwait(&w->cond, &p->wlock, &deadline);
		if (e == ETIMEDOUT && w->state != W_DONE) {
			atomic_store(&w->abandoned, 1);
			p->nstuck++;
			pthread_mutex_unlock(&p->wlock);
			return SG_ERR_TIMEOUT;
		}
	}
	j->r = w->job.r;
	j->last_rv = w->job.last_rv;
	j->out_len = w->job.out_len;
	if (j->r == 0)
		memcpy(j->out, w->job.out, w->job.out_len);
	worker_to_idle(p, w);
	pthread_mutex_unlock(&p->wlock);
	return 0;
}

/* sg_p11_sign's arguments, as far as they can be judged without the
 * token. */
static int
sign_args_check(const struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    const uint8_t *sig, size_t cap, const size_t *ret_sig_len)
{
	size_t dlen;

	if (k == NULL || sig == NULL || ret_sig_len == NULL ||
	    (data == NULL && data_len != 0))
		return SG_ERR_INVALID;
	if (!sg_scheme_fits(k->alg, scheme))
		return SG_ERR_MECHANISM;
	if (scheme == SG_SIG_EDDSA) {
		if (digest_alg != SG_DIGEST_NONE)
			return SG_ERR_INVALID;
		if (data_len > P11_MAX_MESSAGE)
			return SG_ERR_TOO_LARGE;
	} else {
		dlen = sg_digest_len(digest_alg);
		if (dlen == 0 || dlen > SG_MAX_DIGEST || data_len != dlen)
			return SG_ERR_INVALID;
	}
	if (scheme != SG_SIG_ECDSA && cap < k->sig_len)
		return SG_ERR_BUFFER;
	return 0;
}

/* CKM_RSA_PKCS signs a DER DigestInfo: j's digest behind its prefix, in
 * `in` (P11_DIGESTINFO_MAX bytes). */
static int
job_rsa_pkcs1(struct p11_job *j, enum sg_digest_alg digest_alg, uint8_t *in)
{
	const uint8_t *prefix;

	switch (digest_alg) {
	case SG_DIGEST_SHA256:
		prefix = DIGESTINFO_SHA256;
		break;
	case SG_DIGEST_SHA384:
		prefix = DIGESTINFO_SHA384;
		break;
	case SG_DIGEST_SHA512:
		prefix = DIGESTINFO_SHA512;
		break;
	default:
		return SG_ERR_INVALID;
	}
	memcpy(in, prefix, DIGESTINFO_PREFIX_LEN);
	memcpy(in + DIGESTINFO_PREFIX_LEN, j->in, j->in_len);
	j->in = in;
	j->in_len += DIGESTINFO_PREFIX_LEN;
	j->mech.mechanism = CKM_RSA_PKCS;
	return 0;
}

/* CKM_RSA_PKCS_PSS over j's digest: MGF1 with the same hash, and a salt
 * as long as the digest. */
static int
job_rsa_pss(struct p11_job *j, enum sg_digest_alg digest_alg)
{
	switch (digest_alg) {
	case SG_DIGEST_SHA256:
		j->pss.hashAlg = CKM_SHA256;
		j->pss.mgf = CKG_MGF1_SHA256;
		break;
	case SG_DIGEST_SHA384:
		j->pss.hashAlg = CKM_SHA384;
		j->pss.mgf = CKG_MGF1_SHA384;
		break;
	case SG_DIGEST_SHA512:
		j->pss.hashAlg = CKM_SHA512;
		j->pss.mgf = CKG_MGF1_SHA512;
		break;
	default:
		return SG_ERR_INVALID;
	}
	j->pss.sLen = j->in_len;
	j->mech.mechanism = CKM_RSA_PKCS_PSS;
	j->mech.pParameter = &j->pss;
	j->mech.ulParameterLen = sizeof(j->pss);
	return 0;
}

/* The signing job for data with k: mechanism, its parameters, the input
 * (built in `in`, P11_DIGESTINFO_MAX bytes, where it is not data). */
static int
job_prepare(struct p11_job *j, struct sg_p11_key *k,
    enum sg_sig_scheme scheme, enum sg_digest_alg digest_alg,
    const uint8_t *data, size_t data_len, uint8_t *in)
{
	int r = 0;

	memset(j, 0, sizeof(*j));
	j->k = k;
	j->in = data;
	j->in_len = data_len;
	switch (scheme) {
	case SG_SIG_ECDSA:
		j->mech.mechanism = CKM_ECDSA;
		break;
	case SG_SIG_RSA_PKCS1:
		r = job_rsa_pkcs1(j, digest_alg, in);
		break;
	case SG_SIG_RSA_PSS:
		r = job_rsa_pss(j, digest_alg);
		break;
	case SG_SIG_EDDSA:
		j->mech.mechanism = CKM_EDDSA;
		break;
	default:
		r = SG_ERR_MECHANISM;
		break;
	}
	if (r != 0)
		return r;
	if (j->in == NULL)
		j->in = in;	/* an empty EdDSA message; modules want a pointer */
	/* ECDSA comes back as r||s, and becomes DER in sig_output. */
	j->out_cap = scheme == SG_SIG_ECDSA ? SG_ECDSA_RAW_MAX :
	    sizeof(j->out);
	return 0;
}

/*
 * Runs j on a worker, bounded by the deadline; on this thread when there
 * is none, or when the key wants a login on a PIN pad before each
 * signature: that waits for a person, and no deadline fits.
 */
static int
job_dispatch(struct sg_p11_token *t, struct p11_job *j)
{
	unsigned int ms = atomic_load(&t->p11->deadline_ms);
	int r;

	if (ms == 0 || (j->k->always_auth && !t->has_pin)) {
		job_run(j);
		return 0;
	}
	if ((r = job_submit(t->p11, j, ms)) == SG_ERR_TIMEOUT) {
		/* The next call starts on a fresh session. */
		atomic_store(&t->broken, 1);
		token_warn(t, "no answer within %u ms", ms);
	}
	return r;
}

/* The signature j brought back, into sig (cap bytes): DER for ECDSA, as
 * the module gave it for the others. */
static int
sig_output(enum sg_sig_scheme scheme, const struct p11_job *j, uint8_t *sig,
    size_t cap, size_t *ret_sig_len)
{
	if (scheme == SG_SIG_ECDSA)
		return sg_ecdsa_raw_to_der(j->out, j->out_len, sig, cap,
		    ret_sig_len);
	if (j->out_len > cap)
		return SG_ERR_BUFFER;
	memcpy(sig, j->out, j->out_len);
	*ret_sig_len = j->out_len;
	return 0;
}

int
sg_p11_sign(struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    uint8_t *sig, size_t cap, size_t *ret_sig_len)
{
	struct p11_job job;
	uint8_t in[P11_DIGESTINFO_MAX];
	int r;

	tl_last_rv = CKR_OK;
	if ((r = sign_args_check(k, scheme, digest_alg, data, data_len, sig,
	    cap, ret_sig_len)) != 0)
		return r;
	if ((r = job_prepare(&job, k, scheme, digest_alg, data, data_len,
	    in)) != 0 ||
	    (r = job_dispatch(k->token, &job)) != 0)
		goto out;
	tl_last_rv = job.last_rv;
	if ((r = job.r) == 0)
		r = sig_output(scheme, &job, sig, cap, ret_sig_len);
out:
	explicit_bzero(in, sizeof(in));
	explicit_bzero(&job, sizeof(job));
	return r;
}

/* Frees everything; no call may be inside the module any more. */
static void
p11_destroy(struct sg_p11 *p)
{
	struct sg_p11_token *t, *next;

	for (t = p->tokens; t != NULL; t = next) {
		next = t->next;
		token_free(t);
	}
	if (p->f != NULL && p->initialized)
		(void)p->f->C_Finalize(NULL);
	if (p->dl != NULL)
		dlclose(p->dl);
	p11_release(p);
}

void
sg_p11_free(struct sg_p11 *p)
{
	struct p11_worker *w;
	struct timespec deadline;
	int e = 0;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->wlock);
	p->closing = 1;
	for (w = p->workers; w != NULL; w = w->next)
		pthread_cond_broadcast(&w->cond);
	sg_mono_deadline(&deadline, P11_FREE_WAIT_SEC * 1000LL);
	while (p->nworkers > 0 && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&p->wcond, &p->wlock, &deadline);
	if (p->nworkers > 0) {
		/* A call that never returned: finalising the module under it
		 * is undefined, so the last worker out cleans up. */
		sg_log_warn("PKCS#11: %zu calls still stuck in the module; "
		    "it stays loaded until they return", p->nstuck);
		p->orphaned = 1;
		pthread_mutex_unlock(&p->wlock);
		return;
	}
	pthread_mutex_unlock(&p->wlock);
	p11_destroy(p);
}
