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
 *   to the pool only after an operation that ended cleanly; one that may
 *   still hold an active operation is closed instead.
 * - Recovery in sg_p11_sign, each at most once per call, so a call makes at
 *   most four attempts: a dead session (token reset) closes every idle
 *   session, which died with it, and retries on a fresh one;
 *   CKR_USER_NOT_LOGGED_IN logs in again with the PIN kept for that purpose
 *   in a locked, non-dumpable, wipe-on-fork page; an invalid key handle
 *   finds the key again by its label/id, logging in first if the session
 *   shows no login (a logout invalidates private-object handles, and an
 *   unauthenticated search cannot see private keys).  A removed or failing
 *   device is SG_ERR_UNAVAILABLE.  Every recovery is logged as a warning.
 * - Keys with CKA_ALWAYS_AUTHENTICATE (common on smart cards) get a
 *   context-specific login after each C_SignInit.
 * - This layer does not verify signatures: the signer does, against the
 *   public key built here from the token's own public-key (or certificate)
 *   object, with OpenSSL 3 APIs only.
 * - A C_Sign that never returns (a wedged device) cannot be interrupted from
 *   here; bounding it is the caller's business (a watchdog, or the signer
 *   moved to its own process).
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
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
#define P11_MAX_URI        4096
#define P11_TOKEN_LABEL    32           /* CK_TOKEN_INFO.label bytes */
#define P11_RSA_MIN_BITS   2048
#define P11_RSA_MAX_BITS   (SG_MAX_SIG * 8)
#define P11_ECDSA_RAW_MAX  (2 * 66)

struct sg_p11 {
	void *dl;
	CK_FUNCTION_LIST *f;
	struct sg_p11_token *tokens;
};

struct sg_p11_token {
	struct sg_p11_token *next;
	struct sg_p11 *p11;
	CK_SLOT_ID slot;
	struct sg_token_info info;

	pthread_mutex_t lock;           /* guards the pool below */
	pthread_cond_t cond;            /* a session came back or a slot freed */
	CK_SESSION_HANDLE idle[P11_POOL_MAX];
	size_t nidle;
	size_t nopen;                   /* idle + borrowed */
	size_t max_open;

	pthread_mutex_t login_lock;     /* one C_Login at a time */
	int has_pin;                    /* else protected path or no login */
	char *pin;                      /* an mlock()ed page, or NULL */
	size_t pin_len, pin_alloc;

	struct sg_p11_key *keys;
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

static int
rv_session_gone(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED;
}

static int
rv_device_gone(CK_RV rv)
{
	return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
	    rv == CKR_DEVICE_ERROR;
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

/* ---- loading ---- */

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
	if ((p = calloc(1, sizeof(*p))) == NULL)
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
	*ret = p;
	p = NULL;  /* transferred */
	r = 0;
out:
	if (p != NULL) {
		if (p->dl != NULL)
			dlclose(p->dl);
		free(p);
	}
	return r;
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
	size_t sz = pg > 0 ? (size_t)pg : 4096;
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

static int
deadline_in(struct timespec *ts, time_t sec)
{
	if (clock_gettime(CLOCK_MONOTONIC, ts) != 0)
		return SG_ERR_INTERNAL;
	ts->tv_sec += sec;
	return 0;
}

static int
session_get(struct sg_p11_token *t, CK_SESSION_HANDLE *ret)
{
	CK_FUNCTION_LIST *f = t->p11->f;
	struct timespec deadline;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int e;

	if (deadline_in(&deadline, P11_POOL_WAIT_SEC) != 0)
		return SG_ERR_INTERNAL;
	pthread_mutex_lock(&t->lock);
	for (;;) {
		if (t->nidle > 0) {
			*ret = t->idle[--t->nidle];
			pthread_mutex_unlock(&t->lock);
			return 0;
		}
		if (t->nopen < t->max_open) {
			t->nopen++;
			pthread_mutex_unlock(&t->lock);
			s = CK_INVALID_HANDLE;
			rv = f->C_OpenSession(t->slot, CKF_SERIAL_SESSION, NULL,
			    NULL, &s);
			if (rv == CKR_OK) {
				*ret = s;
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
			return rv_to_err(rv);
		}
		e = pthread_cond_timedwait(&t->cond, &t->lock, &deadline);
		if (e == ETIMEDOUT) {
			pthread_mutex_unlock(&t->lock);
			return SG_ERR_TIMEOUT;
		}
	}
}

static void
session_put(struct sg_p11_token *t, CK_SESSION_HANDLE s)
{
	pthread_mutex_lock(&t->lock);
	t->idle[t->nidle++] = s;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Closes a session that is dead or may hold an unfinished operation. */
static void
session_drop(struct sg_p11_token *t, CK_SESSION_HANDLE s)
{
	(void)t->p11->f->C_CloseSession(s);
	pthread_mutex_lock(&t->lock);
	t->nopen--;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* After a token reset every idle handle is dead too. */
static void
session_purge_idle(struct sg_p11_token *t)
{
	CK_SESSION_HANDLE dead[P11_POOL_MAX];
	size_t i, n;

	pthread_mutex_lock(&t->lock);
	n = t->nidle;
	memcpy(dead, t->idle, n * sizeof(dead[0]));
	t->nidle = 0;
	t->nopen -= n;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	for (i = 0; i < n; i++)
		(void)t->p11->f->C_CloseSession(dead[i]);
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

static int
session_logged_in(struct sg_p11_token *t, CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;

	memset(&si, 0, sizeof(si));
	if (note_rv(t->p11->f->C_GetSessionInfo(s, &si)) != CKR_OK)
		return 0;
	return si.state == CKS_RO_USER_FUNCTIONS ||
	    si.state == CKS_RW_USER_FUNCTIONS;
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
	if (t->nidle > 0)
		(void)f->C_Logout(t->idle[0]);
	for (i = 0; i < t->nidle; i++)
		(void)f->C_CloseSession(t->idle[i]);
	t->nidle = t->nopen = 0;
	pthread_mutex_unlock(&t->lock);
	for (k = t->keys; k != NULL; k = next) {
		next = k->next;
		key_free(k);
	}
	pin_wipe(t);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->login_lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

static struct sg_p11_token *
token_new(struct sg_p11 *p, CK_SLOT_ID slot, const CK_TOKEN_INFO *ti)
{
	struct sg_p11_token *t;
	pthread_condattr_t ca;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if (pthread_condattr_init(&ca) != 0) {
		free(t);
		return NULL;
	}
	/* Waits are bounded in monotonic time: wall-clock jumps must not
	 * cut them short or stretch them. */
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&t->cond, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		free(t);
		return NULL;
	}
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->login_lock, NULL);
	t->p11 = p;
	t->slot = slot;
	t->max_open = P11_POOL_MAX;
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

int
sg_p11_open_token(struct sg_p11 *p, const char *label,
    const char *pin, size_t pin_len, struct sg_p11_token **ret)
{
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID *slots = NULL, slot = 0;
	CK_ULONG nslots = 0, i;
	CK_TOKEN_INFO ti, found_ti;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	struct sg_p11_token *t = NULL, *o;
	char name[P11_TOKEN_LABEL + 1];
	size_t nfound = 0;
	CK_RV rv;
	int r = SG_ERR_INTERNAL;

	tl_last_rv = CKR_OK;
	memset(&found_ti, 0, sizeof(found_ti));
	if (p == NULL || label == NULL || ret == NULL ||
	    strnlen(label, P11_TOKEN_LABEL + 1) > P11_TOKEN_LABEL ||
	    (pin == NULL && pin_len != 0))
		return SG_ERR_INVALID;
	if (pin_len > SG_MAX_SECRET_SIZE)
		return SG_ERR_PIN;
	f = p->f;
	for (o = p->tokens; o != NULL; o = o->next)
		if (strcmp(o->info.label, label) == 0)
			return SG_ERR_CONFLICT;
	if ((r = slot_list(f, &slots, &nslots)) != 0)
		goto out;
	for (i = 0; i < nslots; i++) {
		/* A token may go away meanwhile; that is not our token. */
		if (note_rv(f->C_GetTokenInfo(slots[i], &ti)) != CKR_OK)
			continue;
		field_trim(ti.label, sizeof(ti.label), name);
		if (strcmp(name, label) != 0)
			continue;
		if (nfound++ == 0) {
			slot = slots[i];
			found_ti = ti;
		}
	}
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
	if ((t = token_new(p, slot, &found_ti)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if (pin != NULL && (r = pin_store(t, pin, pin_len)) != 0)
		goto out;
	if ((r = session_get(t, &s)) != 0)
		goto out;
	if (t->has_pin ||
	    (found_ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0) {
		if ((rv = token_login(t, s, CKU_USER)) != CKR_OK) {
			r = rv_to_err(rv);
			goto out;
		}
	} else if ((found_ti.flags & CKF_LOGIN_REQUIRED) != 0) {
		r = SG_ERR_PIN;
		goto out;
	}
	session_put(t, s);
	s = CK_INVALID_HANDLE;
	t->next = p->tokens;
	p->tokens = t;
	*ret = t;
	t = NULL;  /* transferred */
	r = 0;
out:
	if (s != CK_INVALID_HANDLE)
		session_drop(t, s);
	token_free(t);
	free(slots);
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
		field = 32;
	} else if (bytes_eq(params, plen, PARAMS_P384, sizeof(PARAMS_P384))) {
		group = "P-384";
		field = 48;
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
	if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 64) {
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

/* Finds the one private key matching the key's label and/or id. */
static int
find_private(struct sg_p11_key *k, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE *ret)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[3];
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0, nt = 0;
	CK_RV rv;

	tmpl[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if (k->by_label)
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, k->label,
		    k->label_len };
	if (k->id_len > 0)
		tmpl[nt++] = (CK_ATTRIBUTE){ CKA_ID, k->id, k->id_len };
	if ((rv = find_objects(k->token, s, tmpl, nt, h, 2, &n)) != CKR_OK)
		return rv_to_err(rv);
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
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG type = 0;
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

	if ((r = session_get(t, &s)) != 0)
		goto out;
	if ((r = find_private(k, s, &h)) != 0)
		goto out;
	if ((r = get_ulong(t, s, h, CKA_KEY_TYPE, &type)) != 0)
		goto out;
	k->ck_type = type;
	if (type != CKK_EC && type != CKK_RSA && type != CKK_EC_EDWARDS) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	if ((r = get_bool(t, s, h, CKA_SIGN, 1, &can_sign)) != 0 ||
	    (r = get_bool(t, s, h, CKA_ALWAYS_AUTHENTICATE, 0,
	    &k->always_auth)) != 0)
		goto out;
	if (!can_sign) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	/* The private key's own ID and label lead to its public half, even
	 * when it was asked for by only one of them. */
	r = get_attr(t, s, h, CKA_ID, P11_MAX_ID, &kid, &kid_len);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		goto out;
	r = get_attr(t, s, h, CKA_LABEL, P11_MAX_LABEL, &klabel, &klabel_len);
	if (r != 0 && r != SG_ERR_NOT_FOUND)
		goto out;
	if ((r = find_public(t, s, type, kid, kid_len, klabel, klabel_len,
	    &k->pub)) != 0)
		goto out;
	if ((k->alg = alg_of(k->pub, type)) == SG_ALG_NONE) {
		r = SG_ERR_MECHANISM;
		goto out;
	}
	switch (k->alg) {
	case SG_ALG_ECDSA_P256:
		k->sig_len = 64;
		break;
	case SG_ALG_ECDSA_P384:
		k->sig_len = 96;
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
	if (s != CK_INVALID_HANDLE) {
		/* Only a failing module (which may leave a search open) is a
		 * reason to distrust the session; not finding a key is not. */
		if (r == SG_ERR_HSM || r == SG_ERR_UNAVAILABLE)
			session_drop(t, s);
		else
			session_put(t, s);
	}
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

/* ---- signing ---- */

static int
scheme_fits(enum sg_key_alg alg, enum sg_sig_scheme scheme)
{
	switch (scheme) {
	case SG_SIG_ECDSA:
		return alg == SG_ALG_ECDSA_P256 || alg == SG_ALG_ECDSA_P384;
	case SG_SIG_RSA_PKCS1:
	case SG_SIG_RSA_PSS:
		return alg == SG_ALG_RSA;
	case SG_SIG_EDDSA:
		return alg == SG_ALG_ED25519;
	default:
		return 0;
	}
}

/*
 * One C_SignInit + C_Sign.  *ret_tainted is set when the session may still
 * hold the operation (PKCS#11 keeps it active after CKR_BUFFER_TOO_SMALL,
 * and after a failed context-specific login), so it must not be reused.
 */
static CK_RV
sign_once(struct sg_p11_key *k, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
    const uint8_t *in, size_t in_len, uint8_t *out, CK_ULONG *io_len,
    int *ret_tainted)
{
	CK_FUNCTION_LIST *f = k->token->p11->f;
	CK_RV rv;

	*ret_tainted = 0;
	rv = f->C_SignInit(s, mech, (CK_OBJECT_HANDLE)atomic_load(&k->handle));
	if (rv != CKR_OK)
		return note_rv(rv);
	if (k->always_auth &&
	    (rv = token_login(k->token, s, CKU_CONTEXT_SPECIFIC)) != CKR_OK) {
		*ret_tainted = 1;
		return rv;
	}
	rv = f->C_Sign(s, (CK_BYTE *)in, in_len, out, io_len);
	if (rv == CKR_BUFFER_TOO_SMALL)
		*ret_tainted = 1;
	return note_rv(rv);
}

int
sg_p11_sign(struct sg_p11_key *k, enum sg_sig_scheme scheme,
    enum sg_digest_alg digest_alg, const uint8_t *data, size_t data_len,
    uint8_t *sig, size_t cap, size_t *ret_sig_len)
{
	struct sg_p11_token *t;
	CK_MECHANISM mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE h;
	CK_ULONG out_len = 0;
	CK_RV rv = CKR_GENERAL_ERROR;
	uint8_t in[DIGESTINFO_PREFIX_LEN + SG_MAX_DIGEST];
	uint8_t raw[P11_ECDSA_RAW_MAX];
	const uint8_t *msg = data, *prefix = NULL;
	uint8_t *out;
	size_t msg_len = data_len, out_cap, dlen;
	int r = SG_ERR_INTERNAL, tries, tainted = 0, drop = 0;
	int renewed = 0, relogged = 0, refound = 0;

	tl_last_rv = CKR_OK;
	if (k == NULL || sig == NULL || ret_sig_len == NULL ||
	    (data == NULL && data_len != 0))
		return SG_ERR_INVALID;
	if (!scheme_fits(k->alg, scheme))
		return SG_ERR_MECHANISM;
	t = k->token;
	memset(&mech, 0, sizeof(mech));
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
	switch (scheme) {
	case SG_SIG_ECDSA:
		mech.mechanism = CKM_ECDSA;
		break;
	case SG_SIG_RSA_PKCS1:
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
		memcpy(in + DIGESTINFO_PREFIX_LEN, data, data_len);
		msg = in;
		msg_len = DIGESTINFO_PREFIX_LEN + data_len;
		mech.mechanism = CKM_RSA_PKCS;
		break;
	case SG_SIG_RSA_PSS:
		switch (digest_alg) {
		case SG_DIGEST_SHA256:
			pss.hashAlg = CKM_SHA256;
			pss.mgf = CKG_MGF1_SHA256;
			break;
		case SG_DIGEST_SHA384:
			pss.hashAlg = CKM_SHA384;
			pss.mgf = CKG_MGF1_SHA384;
			break;
		case SG_DIGEST_SHA512:
			pss.hashAlg = CKM_SHA512;
			pss.mgf = CKG_MGF1_SHA512;
			break;
		default:
			return SG_ERR_INVALID;
		}
		pss.sLen = data_len;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.pParameter = &pss;
		mech.ulParameterLen = sizeof(pss);
		break;
	case SG_SIG_EDDSA:
		mech.mechanism = CKM_EDDSA;
		break;
	default:
		return SG_ERR_MECHANISM;
	}
	if (msg == NULL)
		msg = in;	/* an empty EdDSA message; modules want a pointer */
	if (scheme == SG_SIG_ECDSA) {
		/* r||s here, DER into the caller's buffer below. */
		out = raw;
		out_cap = sizeof(raw);
	} else {
		if (cap < k->sig_len)
			return SG_ERR_BUFFER;
		out = sig;
		out_cap = cap;
	}

	if ((r = session_get(t, &s)) != 0)
		goto out;
	/* Each recovery at most once: at most four attempts. */
	for (tries = 0; tries < 4; tries++) {
		out_len = out_cap;
		rv = sign_once(k, s, &mech, msg, msg_len, out, &out_len,
		    &tainted);
		if (rv == CKR_OK)
			break;
		if ((rv_session_gone(rv) || rv == CKR_OPERATION_ACTIVE) &&
		    !renewed) {
			renewed = 1;
			sg_log_warn("token %s: %s, retrying on a new session",
			    t->info.label, sg_p11_rv_name(rv));
			session_drop(t, s);
			s = CK_INVALID_HANDLE;
			if (rv_session_gone(rv))
				session_purge_idle(t);
			if ((r = session_get(t, &s)) != 0)
				goto out;
			continue;
		}
		if (tainted)
			break;
		if (rv == CKR_USER_NOT_LOGGED_IN && !relogged) {
			relogged = 1;
			sg_log_warn("token %s: logged out, logging in again",
			    t->info.label);
			if ((rv = token_login(t, s, CKU_USER)) != CKR_OK)
				break;
			continue;
		}
		if ((rv == CKR_KEY_HANDLE_INVALID ||
		    rv == CKR_OBJECT_HANDLE_INVALID) && !refound) {
			refound = 1;
			/* A logout (SoftHSM: once the last session closed)
			 * invalidates private-object handles, and a search
			 * without login cannot see private keys. */
			sg_log_warn("token %s: %s, finding the key again",
			    t->info.label, sg_p11_rv_name(rv));
			if (!relogged && !session_logged_in(t, s)) {
				relogged = 1;
				sg_log_warn("token %s: logged out, logging in "
				    "again", t->info.label);
				if ((rv = token_login(t, s, CKU_USER)) !=
				    CKR_OK)
					break;
			}
			if ((r = find_private(k, s, &h)) != 0) {
				drop = r != SG_ERR_NO_KEY &&
				    r != SG_ERR_INVALID;
				goto out;
			}
			atomic_store(&k->handle, h);
			continue;
		}
		break;
	}
	if (rv != CKR_OK) {
		note_rv(rv);
		r = rv_to_err(rv);
		drop = tainted || rv_session_gone(rv) || rv_device_gone(rv) ||
		    rv == CKR_OPERATION_ACTIVE;
		if (rv_device_gone(rv)) {
			/* The other idle sessions went with the device. */
			session_purge_idle(t);
		}
		goto out;
	}
	if (out_len != k->sig_len) {
		r = SG_ERR_HSM;
		goto out;
	}
	if (scheme == SG_SIG_ECDSA) {
		if ((r = sg_ecdsa_raw_to_der(raw, out_len, sig, cap,
		    ret_sig_len)) != 0)
			goto out;
	} else
		*ret_sig_len = out_len;
	r = 0;
out:
	if (s != CK_INVALID_HANDLE) {
		if (drop)
			session_drop(t, s);
		else
			session_put(t, s);
	}
	explicit_bzero(in, sizeof(in));
	return r;
}

void
sg_p11_free(struct sg_p11 *p)
{
	struct sg_p11_token *t, *next;

	if (p == NULL)
		return;
	for (t = p->tokens; t != NULL; t = next) {
		next = t->next;
		token_free(t);
	}
	if (p->f != NULL)
		(void)p->f->C_Finalize(NULL);
	if (p->dl != NULL)
		dlclose(p->dl);
	free(p);
}

/* ---- RFC 7512 URIs ---- */

enum uri_attr_use { URI_TOKEN, URI_OBJECT, URI_ID, URI_IGNORE, URI_REFUSE };

struct uri_attr {
	const char *name;
	int query;              /* lives after '?' */
	enum uri_attr_use use;
};

/* Every attribute RFC 7512 defines; anything else is refused, because the
 * RFC says an unrecognised path attribute matches nothing. */
static const struct uri_attr uri_attrs[] = {
	{ "token", 0, URI_TOKEN },
	{ "object", 0, URI_OBJECT },
	{ "id", 0, URI_ID },
	{ "manufacturer", 0, URI_IGNORE },
	{ "serial", 0, URI_IGNORE },
	{ "model", 0, URI_IGNORE },
	{ "library-manufacturer", 0, URI_IGNORE },
	{ "library-description", 0, URI_IGNORE },
	{ "library-version", 0, URI_IGNORE },
	{ "type", 0, URI_IGNORE },
	{ "slot-description", 0, URI_IGNORE },
	{ "slot-manufacturer", 0, URI_IGNORE },
	{ "slot-id", 0, URI_IGNORE },
	{ "pin-source", 1, URI_IGNORE },
	{ "module-name", 1, URI_IGNORE },
	{ "module-path", 1, URI_IGNORE },
	/* A PIN in a URI ends up in shell history and process lists. */
	{ "pin-value", 1, URI_REFUSE },
};

static int
uri_char_ok(unsigned char c, int query)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	if (c != '\0' && strchr("-._~:[]@!$'()*+,=", c) != NULL)
		return 1;
	if (query)
		return c != '\0' && strchr("/?|", c) != NULL;
	return c == '&';
}

static int
uri_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes v (vlen bytes) into out (cap bytes; out may be NULL
 * when cap is 0).  With check_only, validates and counts only. */
static int
uri_decode(const char *v, size_t vlen, int query, uint8_t *out, size_t cap,
    int check_only, size_t *ret_len)
{
	size_t i, o = 0;
	int hi, lo;
	uint8_t c;

	for (i = 0; i < vlen; i++) {
		if (v[i] == '%') {
			if (vlen - i < 3)
				return SG_ERR_INVALID;
			if ((hi = uri_hexval((unsigned char)v[i + 1])) < 0 ||
			    (lo = uri_hexval((unsigned char)v[i + 2])) < 0)
				return SG_ERR_INVALID;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		} else if (uri_char_ok((unsigned char)v[i], query))
			c = (uint8_t)v[i];
		else
			return SG_ERR_INVALID;
		if (!check_only) {
			if (o >= cap)
				return SG_ERR_BUFFER;
			out[o] = c;
		}
		o++;
	}
	*ret_len = o;
	return 0;
}

int
sg_p11_uri_parse(const char *uri, char ret_token[33],
    char *ret_object, size_t object_cap, uint8_t *ret_id, size_t id_cap,
    size_t *ret_id_len)
{
	const size_t nattrs = sizeof(uri_attrs) / sizeof(uri_attrs[0]);
	const char *p, *end, *path_end, *seg, *seg_end, *eq;
	uint32_t seen = 0;
	size_t len, i, n, namelen;
	int query, r = SG_ERR_INVALID;

	if (ret_token != NULL)
		memset(ret_token, 0, P11_TOKEN_LABEL + 1);
	if (ret_object != NULL && object_cap > 0)
		memset(ret_object, 0, object_cap);
	if (ret_id != NULL && id_cap > 0)
		memset(ret_id, 0, id_cap);
	if (ret_id_len != NULL)
		*ret_id_len = 0;
	if (uri == NULL || ret_token == NULL || ret_id_len == NULL ||
	    (ret_object == NULL && object_cap > 0) ||
	    (ret_id == NULL && id_cap > 0))
		return SG_ERR_INVALID;
	if ((len = strnlen(uri, P11_MAX_URI + 1)) > P11_MAX_URI)
		return SG_ERR_TOO_LARGE;
	/* URI schemes are case-insensitive (RFC 3986, section 3.1). */
	if (len < 7 || strncasecmp(uri, "pkcs11:", 7) != 0)
		return SG_ERR_INVALID;
	end = uri + len;
	p = uri + 7;
	if ((path_end = memchr(p, '?', (size_t)(end - p))) == NULL)
		path_end = end;

	for (query = 0; query < 2; query++) {
		const char *comp = query ? path_end + 1 : p;
		const char *comp_end = query ? end : path_end;
		char sep = query ? '&' : ';';

		if (query && path_end == end)
			break;
		if (comp == comp_end)
			continue;	/* "pkcs11:" and "pkcs11:...?" are valid */
		for (seg = comp; seg <= comp_end; seg = seg_end + 1) {
			const struct uri_attr *a = NULL;
			const char *v;
			size_t vlen;

			if ((seg_end = memchr(seg, sep,
			    (size_t)(comp_end - seg))) == NULL)
				seg_end = comp_end;
			if ((eq = memchr(seg, '=', (size_t)(seg_end - seg))) ==
			    NULL)
				goto fail;	/* also empty segments */
			namelen = (size_t)(eq - seg);
			for (i = 0; i < nattrs; i++) {
				if (uri_attrs[i].query == query &&
				    strlen(uri_attrs[i].name) == namelen &&
				    memcmp(uri_attrs[i].name, seg,
				    namelen) == 0) {
					a = &uri_attrs[i];
					break;
				}
			}
			if (a == NULL || (seen & (1u << i)) != 0)
				goto fail;	/* unknown, or repeated */
			seen |= 1u << i;
			v = eq + 1;
			vlen = (size_t)(seg_end - v);
			switch (a->use) {
			case URI_TOKEN:
				r = uri_decode(v, vlen, query,
				    (uint8_t *)ret_token, P11_TOKEN_LABEL, 0,
				    &n);
				if (r == SG_ERR_BUFFER)
					r = SG_ERR_INVALID; /* no such label */
				if (r != 0)
					goto fail;
				if (memchr(ret_token, '\0', n) != NULL) {
					r = SG_ERR_INVALID;
					goto fail;
				}
				break;
			case URI_OBJECT:
				r = uri_decode(v, vlen, query,
				    (uint8_t *)ret_object,
				    object_cap > 0 ? object_cap - 1 : 0, 0, &n);
				if (r != 0)
					goto fail;
				if (n > 0 && memchr(ret_object, '\0', n) !=
				    NULL) {
					r = SG_ERR_INVALID;
					goto fail;
				}
				break;
			case URI_ID:
				r = uri_decode(v, vlen, query, ret_id, id_cap,
				    0, ret_id_len);
				if (r != 0)
					goto fail;
				break;
			case URI_IGNORE:
				/* Still checked, so junk is not accepted. */
				if ((r = uri_decode(v, vlen, query, NULL, 0,
				    1, &n)) != 0)
					goto fail;
				break;
			case URI_REFUSE:
				r = SG_ERR_INVALID;
				goto fail;
			}
			if (seg_end == comp_end)
				break;
		}
	}
	return 0;
fail:
	if (r == 0)
		r = SG_ERR_INVALID;
	memset(ret_token, 0, P11_TOKEN_LABEL + 1);
	if (object_cap > 0)
		memset(ret_object, 0, object_cap);
	if (id_cap > 0)
		memset(ret_id, 0, id_cap);
	*ret_id_len = 0;
	return r;
}
