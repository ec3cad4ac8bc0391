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
 * (p11_key.c), and nothing else in the process may use the same module
 * through libp11 or the OpenSSL pkcs11 engine (see sg_p11_load).
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
 * Recovery and deadlines: see p11_sign.c.  Tokens: p11_token.c.  Keys,
 * their attributes and public keys: p11_key.c.  Shared declarations:
 * p11_int.h.
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
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_p11.h"
#include "sg_util.h"
#include "p11_int.h"

_Thread_local unsigned long p11_tl_last_rv;

CK_RV
p11_note_rv(CK_RV rv)
{
	if (rv != CKR_OK)
		p11_tl_last_rv = rv;
	return rv;
}

unsigned long
sg_p11_last_rv(void)
{
	return p11_tl_last_rv;
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

int
p11_rv_to_err(CK_RV rv)
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
int
p11_rv_recoverable(CK_RV rv)
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
int
p11_rv_pin_refused(CK_RV rv)
{
	return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED ||
	    rv == CKR_PIN_LOCKED || rv == CKR_USER_PIN_NOT_INITIALIZED;
}

/* Copies a blank-padded CK_TOKEN_INFO field into a C string. */
void
p11_field_trim(const unsigned char *src, size_t n, char *dst)
{
	memcpy(dst, src, n);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
		n--;
	dst[n] = '\0';
}

/* ---- time: sg_mono_ms() and sg_mono_deadline() (sg_util.h) ---- */

int
p11_ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	    (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* A condition variable whose timed waits run on the monotonic clock, so
 * that wall-clock jumps neither cut them short nor stretch them. */
int
p11_cond_init_mono(pthread_cond_t *c)
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
void
p11_gate_enter(struct sg_p11 *p)
{
	pthread_mutex_lock(&p->gate_lock);
	while (p->reiniting)
		pthread_cond_wait(&p->gate_cond, &p->gate_lock);
	p->inside++;
	pthread_mutex_unlock(&p->gate_lock);
}

void
p11_gate_leave(struct sg_p11 *p)
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
int
p11_gate_shut(struct sg_p11 *p, const struct timespec *until)
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

void
p11_gate_open(struct sg_p11 *p)
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
	if (p11_cond_init_mono(&p->wcond) != 0) {
		free(p);
		return NULL;
	}
	if (p11_cond_init_mono(&p->gate_cond) != 0) {
		pthread_cond_destroy(&p->wcond);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->wlock, NULL);
	pthread_mutex_init(&p->gate_lock, NULL);
	atomic_init(&p->reinit_ms, 0);
	atomic_init(&p->deadline_ms, deadline_from_env());
	atomic_init(&p->sessions, P11_POOL_DEFAULT);
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

	p11_tl_last_rv = CKR_OK;
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
	if ((rv = p11_note_rv(get_list(&p->f))) != CKR_OK || p->f == NULL) {
		r = SG_ERR_HSM;
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = p11_note_rv(p->f->C_Initialize(&args));
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
		r = p11_rv_to_err(rv);
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

/* Enough sessions per token for n signatures at once, beside the calls
 * stuck in the module and a checkpoint: never fewer than the default,
 * never more than P11_POOL_MAX.  For tokens open already too. */
void
sg_p11_set_concurrency(struct sg_p11 *p, unsigned int n)
{
	struct sg_p11_token *t;
	unsigned int want = n + P11_MAX_STUCK + 1;

	if (want < P11_POOL_DEFAULT)
		want = P11_POOL_DEFAULT;
	if (want > P11_POOL_MAX)
		want = P11_POOL_MAX;
	atomic_store(&p->sessions, want);
	for (t = p->tokens; t != NULL; t = t->next) {
		pthread_mutex_lock(&t->lock);
		if (t->max_open < want)
			t->max_open = want;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
	}
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

void
p11_pin_wipe(struct sg_p11_token *t)
{
	if (t->pin == NULL)
		return;
	explicit_bzero(t->pin, t->pin_alloc);
	(void)munlock(t->pin, t->pin_alloc);
	(void)munmap(t->pin, t->pin_alloc);
	t->pin = NULL;
	t->pin_len = t->pin_alloc = 0;
}

int
p11_pin_store(struct sg_p11_token *t, const char *pin, size_t len)
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

CK_SLOT_ID
p11_token_slot(struct sg_p11_token *t)
{
	return (CK_SLOT_ID)atomic_load(&t->slot);
}

/*
 * Borrows a session: an idle one, else a new one.  On failure *ret_rv is
 * what the module said (CKR_OK when the pool stayed full too long:
 * SG_ERR_TIMEOUT).
 */
int
p11_session_get(struct sg_p11_token *t, struct p11_sess *ret, CK_RV *ret_rv)
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
			rv = f->C_OpenSession(p11_token_slot(t),
			    CKF_SERIAL_SESSION, NULL, NULL, &s);
			if (rv == CKR_OK) {
				ret->h = s;
				ret->gen = gen;
				return 0;
			}
			p11_note_rv(rv);
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
			return p11_rv_recoverable(rv) ? SG_ERR_UNAVAILABLE :
			    p11_rv_to_err(rv);
		}
		e = pthread_cond_timedwait(&t->cond, &t->lock, &deadline);
		if (e == ETIMEDOUT) {
			pthread_mutex_unlock(&t->lock);
			return SG_ERR_TIMEOUT;
		}
	}
}

/* Closes a session that is dead or may hold an unfinished operation. */
void
p11_session_drop(struct sg_p11_token *t, struct p11_sess s)
{
	(void)t->p11->f->C_CloseSession(s.h);
	pthread_mutex_lock(&t->lock);
	t->nopen--;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Returns a clean session; one from before the last recovery is closed. */
void
p11_session_put(struct sg_p11_token *t, struct p11_sess s)
{
	pthread_mutex_lock(&t->lock);
	if (s.gen != t->gen) {
		pthread_mutex_unlock(&t->lock);
		p11_session_drop(t, s);
		return;
	}
	t->idle[t->nidle++] = s;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* After a token reset every idle handle is dead too: close them all and
 * start a new generation, so that borrowed ones are closed on return. */
void
p11_session_purge_idle(struct sg_p11_token *t)
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

unsigned long
p11_token_gen(struct sg_p11_token *t)
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
void
p11_token_warn(struct sg_p11_token *t, const char *fmt, ...)
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

CK_RV
p11_token_login(struct sg_p11_token *t, CK_SESSION_HANDLE s, CK_USER_TYPE who)
{
	CK_RV rv;

	pthread_mutex_lock(&t->login_lock);
	rv = t->p11->f->C_Login(s, who,
	    t->has_pin ? (unsigned char *)t->pin : NULL,
	    t->has_pin ? t->pin_len : 0);
	pthread_mutex_unlock(&t->login_lock);
	if (rv == CKR_USER_ALREADY_LOGGED_IN && who == CKU_USER)
		rv = CKR_OK;
	return p11_note_rv(rv);
}

/* Frees everything; no call may be inside the module any more. */
void
p11_destroy(struct sg_p11 *p)
{
	struct sg_p11_token *t, *next;

	for (t = p->tokens; t != NULL; t = next) {
		next = t->next;
		p11_token_free(t);
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
