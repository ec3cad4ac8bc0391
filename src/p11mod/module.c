/*
 * The PKCS#11 entry points of libsigngate-pkcs11.so.
 *
 * One slot (ID 1) with one token once the module is configured; the
 * token's objects come from the gateway's key list, fetched at the first
 * C_FindObjectsInit and kept for the process.  Opening a session never
 * asks the gateway: libp11 0.4.12 (the OpenSSL engine that osslsigncode
 * and openssl use) waits forever for a pooled session when C_OpenSession
 * fails, while a failed search makes it give up at once.  No login is needed (the client
 * certificate is the credential): C_Login accepts and ignores any PIN.
 *
 * Locking: one mutex guards every table (the state, sessions, the token),
 * and it is never held across network I/O.  C_Sign copies what it needs
 * into a job, marks the session's operation busy, lets go of the lock,
 * talks to the gateway, and takes the lock again to end the operation,
 * looking the session up by its handle: a session closed or a module
 * finalized meanwhile is noticed, never touched through a stale pointer.
 * No thread is created, so C_Finalize leaves none behind.
 *
 * fork(): a child sees the module as not initialized until it calls
 * C_Initialize again.  Its copy of the parent's state is set aside, never
 * used or freed there (another thread of the parent may have been inside
 * OpenSSL or libcurl when it forked), only kept reachable.
 *
 * Every entry point checks its arguments and returns an error rather than
 * crash or exit: the module lives in the caller's process.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_util.h"
#include "p11mod_int.h"

#define SLOT_ID 1
#define MAX_SESSIONS 1024
/* Data of a mechanism that does not hash, gathered by C_SignUpdate: the
 * longest is a SHA-512 DigestInfo (83 bytes). */
#define RAW_DATA_MAX 512
#define LIB_VERSION_MAJOR 0
#define LIB_VERSION_MINOR 1

struct sign_op {
	const struct p11m_mech *mech;
	enum sg_digest_alg hash;          /* from the parameter */
	size_t key;                       /* index into the token's keys */
	struct p11m_sign_env env;
	EVP_MD_CTX *md;                   /* the *_SHA* mechanisms */
	uint8_t data[RAW_DATA_MAX];       /* the others, multi-part */
	size_t len;
	int updated;                      /* C_SignUpdate was called */
	int busy;                         /* a thread is at the gateway */
};

/* The digest whose request the gateway last refused in a session. */
struct refusal {
	int set;
	size_t key;
	enum sg_digest_alg dalg;
	uint8_t digest[SG_MAX_DIGEST];
};

struct session {
	CK_SESSION_HANDLE handle;
	CK_FLAGS flags;
	int finding;
	CK_OBJECT_HANDLE *found;
	size_t nfound;
	size_t pos;
	struct sign_op *op;
	struct refusal refused;
};

struct state {
	struct p11m_conf conf;
	int configured;
	char why[1024];                   /* why not, when not */
	int told;                         /* why was said once */
	struct p11m_token *token;
	struct session *sessions[MAX_SESSIONS];
	size_t nsessions;
	CK_SESSION_HANDLE next_handle;
	int logged_in;
	struct state *abandoned;          /* set aside by fork() */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static struct state *st;
/* Bumped by C_Finalize and fork(): a job that started under another
 * generation finds its session gone. */
static uint64_t generation;
/* States a fork() left in the child, kept reachable (see the top). */
static struct state *abandoned;

static void
op_free(struct sign_op *op)
{
	if (op == NULL)
		return;
	EVP_MD_CTX_free(op->md);
	p11m_sign_env_clear(&op->env);
	explicit_bzero(op, sizeof(*op));
	free(op);
}

static void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	op_free(s->op);
	free(s->found);
	free(s);
}

static void
state_free(struct state *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < MAX_SESSIONS; i++)
		session_free(s->sessions[i]);
	p11m_token_free(s->token);
	p11m_conf_clear(&s->conf);
	free(s);
}

static void
atfork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void
atfork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void
atfork_child(void)
{
	if (st != NULL) {
		st->abandoned = abandoned;
		abandoned = st;
		st = NULL;
	}
	generation++;
	pthread_mutex_unlock(&lock);
}

static void
register_atfork(void)
{
	(void)pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Space-padded copy into a fixed PKCS#11 text field. */
static void
pad(unsigned char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', cap);
	memcpy(dst, src, n < cap ? n : cap);
}

static struct session *
session_get(CK_SESSION_HANDLE h)
{
	size_t i;

	if (st == NULL)
		return NULL;
	for (i = 0; i < MAX_SESSIONS; i++)
		if (st->sessions[i] != NULL && st->sessions[i]->handle == h)
			return st->sessions[i];
	return NULL;
}

/* Locks and finds the session: CKR_OK with the lock held, else an error
 * with the lock released. */
static CK_RV
enter_session(CK_SESSION_HANDLE h, struct session **ret)
{
	pthread_mutex_lock(&lock);
	if (st == NULL) {
		pthread_mutex_unlock(&lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	if ((*ret = session_get(h)) == NULL) {
		pthread_mutex_unlock(&lock);
		return CKR_SESSION_HANDLE_INVALID;
	}
	return CKR_OK;
}

static CK_RV
enter(void)
{
	pthread_mutex_lock(&lock);
	if (st == NULL) {
		pthread_mutex_unlock(&lock);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	return CKR_OK;
}

static CK_RV
leave(CK_RV rv)
{
	pthread_mutex_unlock(&lock);
	return rv;
}

/* With the lock held: CKR_TOKEN_NOT_PRESENT (said once) when there is
 * no configuration. */
static CK_RV
token_present(void)
{
	if (st->configured)
		return CKR_OK;
	if (!st->told) {
		p11m_msg("%s", st->why);
		st->told = 1;
	}
	return CKR_TOKEN_NOT_PRESENT;
}

CK_RV
C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_C_INITIALIZE_ARGS *a = pInitArgs;
	struct state *s = NULL;
	char err[1024];
	int r, set;

	if (a != NULL) {
		if (a->pReserved != NULL)
			return CKR_ARGUMENTS_BAD;
		set = (a->CreateMutex != NULL) + (a->DestroyMutex != NULL) +
		    (a->LockMutex != NULL) + (a->UnlockMutex != NULL);
		if (set != 0 && set != 4)
			return CKR_ARGUMENTS_BAD;
		/* The module locks with pthreads; it cannot use the
		 * caller's mutexes instead. */
		if (set == 4 && !(a->flags & CKF_OS_LOCKING_OK))
			return CKR_CANT_LOCK;
	}
	if (pthread_once(&atfork_once, register_atfork) != 0)
		return CKR_GENERAL_ERROR;
	pthread_mutex_lock(&lock);
	if (st != NULL)
		return leave(CKR_CRYPTOKI_ALREADY_INITIALIZED);
	pthread_mutex_unlock(&lock);

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return CKR_HOST_MEMORY;
	s->next_handle = 1;
	err[0] = '\0';
	r = p11m_conf_load(&s->conf, err, sizeof(err));
	if (r == P11M_CONF_OK)
		s->configured = 1;
	else if (r == P11M_CONF_NONE)
		snprintf(s->why, sizeof(s->why), "%s", err);
	else {
		p11m_msg("%s", err[0] ? err : sg_strerror(r));
		free(s);
		return r == SG_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
	}
	pthread_mutex_lock(&lock);
	if (st != NULL) {
		pthread_mutex_unlock(&lock);
		state_free(s);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	st = s;
	return leave(CKR_OK);
}

CK_RV
C_Finalize(CK_VOID_PTR pReserved)
{
	CK_RV rv;

	if (pReserved != NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	state_free(st);
	st = NULL;
	generation++;
	return leave(CKR_OK);
}

CK_RV
C_GetInfo(CK_INFO_PTR pInfo)
{
	CK_RV rv;

	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = 2;
	pInfo->cryptokiVersion.minor = 40;
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "signgate");
	pad(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
	    "signgate PKCS#11 module");
	pInfo->libraryVersion.major = LIB_VERSION_MAJOR;
	pInfo->libraryVersion.minor = LIB_VERSION_MINOR;
	return leave(CKR_OK);
}

CK_RV
C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
    CK_ULONG_PTR pulCount)
{
	CK_ULONG n;
	CK_RV rv;

	if (pulCount == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	n = tokenPresent && !st->configured ? 0 : 1;
	if (pSlotList == NULL) {
		*pulCount = n;
		return leave(CKR_OK);
	}
	if (*pulCount < n) {
		*pulCount = n;
		return leave(CKR_BUFFER_TOO_SMALL);
	}
	if (n > 0)
		pSlotList[0] = SLOT_ID;
	*pulCount = n;
	return leave(CKR_OK);
}

CK_RV
C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	CK_RV rv;

	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	if (slotID != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	memset(pInfo, 0, sizeof(*pInfo));
	pad(pInfo->slotDescription, sizeof(pInfo->slotDescription),
	    "signgate gateway");
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "signgate");
	pInfo->flags = st->configured ? CKF_TOKEN_PRESENT : 0;
	pInfo->hardwareVersion.major = LIB_VERSION_MAJOR;
	pInfo->hardwareVersion.minor = LIB_VERSION_MINOR;
	pInfo->firmwareVersion = pInfo->hardwareVersion;
	return leave(CKR_OK);
}

CK_RV
C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	uint8_t d[32];
	char serial[2 * sizeof(d) + 1];
	size_t i, rw = 0;
	CK_RV rv;

	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	if (slotID != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if ((rv = token_present()) != CKR_OK)
		return leave(rv);
	memset(pInfo, 0, sizeof(*pInfo));
	pad(pInfo->label, sizeof(pInfo->label), st->conf.token_label);
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "signgate");
	pad(pInfo->model, sizeof(pInfo->model), "gateway");
	/* The serial names the gateway: the same URL, the same token. */
	sg_sha256(st->conf.url, strlen(st->conf.url), d);
	sg_hex_encode(d, 8, serial);
	pad(pInfo->serialNumber, sizeof(pInfo->serialNumber), serial);
	pInfo->flags = CKF_TOKEN_INITIALIZED;
	for (i = 0; i < MAX_SESSIONS; i++)
		if (st->sessions[i] != NULL &&
		    (st->sessions[i]->flags & CKF_RW_SESSION))
			rw++;
	pInfo->ulMaxSessionCount = MAX_SESSIONS;
	pInfo->ulSessionCount = st->nsessions;
	pInfo->ulMaxRwSessionCount = MAX_SESSIONS;
	pInfo->ulRwSessionCount = rw;
	pInfo->ulMaxPinLen = SG_MAX_SECRET_SIZE;
	pInfo->ulMinPinLen = 0;
	pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->hardwareVersion.major = LIB_VERSION_MAJOR;
	pInfo->hardwareVersion.minor = LIB_VERSION_MINOR;
	pInfo->firmwareVersion = pInfo->hardwareVersion;
	memset(pInfo->utcTime, ' ', sizeof(pInfo->utcTime));
	return leave(CKR_OK);
}

CK_RV
C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pList,
    CK_ULONG_PTR pulCount)
{
	const struct p11m_mech *m;
	size_t n, i;
	CK_RV rv;

	if (pulCount == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	if (slotID != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if ((rv = token_present()) != CKR_OK)
		return leave(rv);
	m = p11m_mech_all(&n);
	if (pList == NULL) {
		*pulCount = n;
		return leave(CKR_OK);
	}
	if (*pulCount < n) {
		*pulCount = n;
		return leave(CKR_BUFFER_TOO_SMALL);
	}
	for (i = 0; i < n; i++)
		pList[i] = m[i].type;
	*pulCount = n;
	return leave(CKR_OK);
}

CK_RV
C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
    CK_MECHANISM_INFO_PTR pInfo)
{
	const struct p11m_mech *m;
	CK_RV rv;

	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	if (slotID != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if ((rv = token_present()) != CKR_OK)
		return leave(rv);
	if ((m = p11m_mech_find(type)) == NULL)
		return leave(CKR_MECHANISM_INVALID);
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->flags = CKF_SIGN;
	if (m->scheme == SG_SIG_ECDSA) {
		pInfo->ulMinKeySize = 256;
		pInfo->ulMaxKeySize = 384;
		pInfo->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE |
		    CKF_EC_UNCOMPRESS;
	} else {
		pInfo->ulMinKeySize = 2048;
		pInfo->ulMaxKeySize = 16384;
	}
	return leave(CKR_OK);
}

/*
 * The token's objects, fetched from the gateway the first time.  Called
 * with the lock held; it is released during the fetch, so the state may
 * have changed when this returns (generation says).
 */
static CK_RV
load_token(void)
{
	struct p11m_conf c;
	struct p11m_token *t = NULL;
	uint64_t gen = generation;
	char *body = NULL, err[512];
	size_t len = 0;
	CK_RV rv;

	if (st->token != NULL)
		return CKR_OK;
	if (p11m_conf_dup(&st->conf, &c) != 0)
		return CKR_HOST_MEMORY;
	pthread_mutex_unlock(&lock);
	rv = p11m_gw_keys(&c, &body, &len);
	if (rv == CKR_OK && p11m_token_from_keys(body, len, &t, err,
	    sizeof(err)) != 0) {
		p11m_msg("%s: %s", c.url, err);
		rv = CKR_DEVICE_ERROR;
	}
	free(body);
	p11m_conf_clear(&c);
	pthread_mutex_lock(&lock);
	if (st == NULL || generation != gen) {
		p11m_token_free(t);
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	if (rv != CKR_OK)
		return rv;
	if (st->token == NULL)
		st->token = t;
	else
		p11m_token_free(t);      /* another thread was first */
	return CKR_OK;
}

CK_RV
C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
    CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
	struct session *s;
	size_t i;
	CK_RV rv;

	if (phSession == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter()) != CKR_OK)
		return rv;
	if (slotID != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	if (!(flags & CKF_SERIAL_SESSION))
		return leave(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	if ((rv = token_present()) != CKR_OK)
		return leave(rv);
	if (st->nsessions >= MAX_SESSIONS)
		return leave(CKR_SESSION_COUNT);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return leave(CKR_HOST_MEMORY);
	s->handle = st->next_handle++;
	s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
	for (i = 0; i < MAX_SESSIONS; i++)
		if (st->sessions[i] == NULL)
			break;
	st->sessions[i] = s;
	st->nsessions++;
	*phSession = s->handle;
	return leave(CKR_OK);
}

static void
session_close(struct session *s)
{
	size_t i;

	for (i = 0; i < MAX_SESSIONS; i++) {
		if (st->sessions[i] == s) {
			st->sessions[i] = NULL;
			st->nsessions--;
			break;
		}
	}
	session_free(s);
	if (st->nsessions == 0)
		st->logged_in = 0;
}

CK_RV
C_CloseSession(CK_SESSION_HANDLE hSession)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	session_close(s);
	return leave(CKR_OK);
}

CK_RV
C_CloseAllSessions(CK_SLOT_ID slotID)
{
	size_t i;
	CK_RV rv;

	if ((rv = enter()) != CKR_OK)
		return rv;
	if (slotID != SLOT_ID)
		return leave(CKR_SLOT_ID_INVALID);
	for (i = 0; i < MAX_SESSIONS; i++)
		if (st->sessions[i] != NULL)
			session_close(st->sessions[i]);
	return leave(CKR_OK);
}

CK_RV
C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	struct session *s;
	int rw;
	CK_RV rv;

	if (pInfo == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	rw = (s->flags & CKF_RW_SESSION) != 0;
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->slotID = SLOT_ID;
	if (st->logged_in)
		pInfo->state = rw ? CKS_RW_USER_FUNCTIONS :
		    CKS_RO_USER_FUNCTIONS;
	else
		pInfo->state = rw ? CKS_RW_PUBLIC_SESSION :
		    CKS_RO_PUBLIC_SESSION;
	pInfo->flags = s->flags;
	return leave(CKR_OK);
}

CK_RV
C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
    CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	struct session *s;
	CK_RV rv;

	/* The PIN is never looked at: the client certificate is what
	 * authenticates the caller to the gateway. */
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if (userType == CKU_CONTEXT_SPECIFIC)
		return leave(CKR_OK);
	if (userType != CKU_USER && userType != CKU_SO)
		return leave(CKR_USER_TYPE_INVALID);
	if (st->logged_in)
		return leave(CKR_USER_ALREADY_LOGGED_IN);
	st->logged_in = 1;
	return leave(CKR_OK);
}

CK_RV
C_Logout(CK_SESSION_HANDLE hSession)
{
	struct session *s;
	CK_RV rv;

	/* Always fine: there is nothing to log out of, and callers that
	 * log out on every close must not see an error for it. */
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	st->logged_in = 0;
	return leave(CKR_OK);
}

CK_RV
C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
    CK_ULONG_PTR pulSize)
{
	const struct p11m_obj *o;
	struct session *s;
	CK_ULONG n = 0;
	size_t i;
	CK_RV rv;

	if (pulSize == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if ((o = p11m_obj_get(st->token, hObject)) == NULL)
		return leave(CKR_OBJECT_HANDLE_INVALID);
	for (i = 0; i < o->nattrs; i++)
		n += o->attrs[i].len;
	*pulSize = n;
	return leave(CKR_OK);
}

CK_RV
C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	const struct p11m_obj *o;
	struct session *s;
	CK_RV rv;

	if (pTemplate == NULL && ulCount > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if ((o = p11m_obj_get(st->token, hObject)) == NULL)
		return leave(CKR_OBJECT_HANDLE_INVALID);
	return leave(p11m_obj_get_attrs(o, pTemplate, ulCount));
}

CK_RV
C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
    CK_ULONG ulCount)
{
	struct session *s;
	const struct p11m_token *t;
	size_t i;
	CK_RV rv;

	if (pTemplate == NULL && ulCount > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if (s->finding)
		return leave(CKR_OPERATION_ACTIVE);
	/* The lock is let go during the fetch: find the session again. */
	if ((rv = load_token()) != CKR_OK)
		return leave(rv);
	if ((s = session_get(hSession)) == NULL)
		return leave(CKR_SESSION_HANDLE_INVALID);
	if (s->finding)
		return leave(CKR_OPERATION_ACTIVE);
	t = st->token;
	free(s->found);
	s->found = NULL;
	s->nfound = s->pos = 0;
	if (t->nobjs > 0 &&
	    (s->found = calloc(t->nobjs, sizeof(*s->found))) == NULL)
		return leave(CKR_HOST_MEMORY);
	for (i = 0; i < t->nobjs; i++)
		if (p11m_obj_match(&t->objs[i], pTemplate, ulCount))
			s->found[s->nfound++] = t->objs[i].handle;
	s->finding = 1;
	return leave(CKR_OK);
}

CK_RV
C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	struct session *s;
	CK_ULONG n = 0;
	CK_RV rv;

	if ((phObject == NULL && ulMaxObjectCount > 0) ||
	    pulObjectCount == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if (!s->finding)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	while (n < ulMaxObjectCount && s->pos < s->nfound)
		phObject[n++] = s->found[s->pos++];
	*pulObjectCount = n;
	return leave(CKR_OK);
}

CK_RV
C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	struct session *s;
	CK_RV rv;

	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if (!s->finding)
		return leave(CKR_OPERATION_NOT_INITIALIZED);
	free(s->found);
	s->found = NULL;
	s->nfound = s->pos = 0;
	s->finding = 0;
	return leave(CKR_OK);
}

/* ---- signing ---- */

static void
op_end(struct session *s)
{
	op_free(s->op);
	s->op = NULL;
}

CK_RV
C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
    CK_OBJECT_HANDLE hKey)
{
	const struct p11m_mech *m;
	const struct p11m_obj *o;
	const struct p11m_key *k;
	struct sign_op *op = NULL;
	struct session *s;
	char err[1024];
	CK_RV rv;

	if (pMechanism == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if (s->op != NULL)
		return leave(CKR_OPERATION_ACTIVE);
	if ((m = p11m_mech_find(pMechanism->mechanism)) == NULL)
		return leave(CKR_MECHANISM_INVALID);
	if ((o = p11m_obj_get(st->token, hKey)) == NULL)
		return leave(CKR_KEY_HANDLE_INVALID);
	if (o->cls == CKO_PUBLIC_KEY)
		return leave(CKR_KEY_FUNCTION_NOT_PERMITTED);
	if (o->cls != CKO_PRIVATE_KEY)
		return leave(CKR_KEY_HANDLE_INVALID);
	k = &st->token->keys[o->key];
	if ((rv = p11m_mech_key_check(m, k->scheme)) != CKR_OK)
		return leave(rv);
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return leave(CKR_HOST_MEMORY);
	op->mech = m;
	op->key = o->key;
	if ((rv = p11m_mech_params(m, pMechanism->pParameter,
	    pMechanism->ulParameterLen, &op->hash)) != CKR_OK)
		goto fail;
	err[0] = '\0';
	if (p11m_sign_env_load(&st->conf, &op->env, err, sizeof(err)) != 0) {
		p11m_msg("%s", err[0] ? err : "cannot read the environment");
		rv = CKR_FUNCTION_FAILED;
		goto fail;
	}
	if (m->hash != SG_DIGEST_NONE &&
	    ((op->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(op->md, sg_digest_md(m->hash), NULL) != 1)) {
		rv = CKR_HOST_MEMORY;
		goto fail;
	}
	s->op = op;
	return leave(CKR_OK);
fail:
	op_free(op);
	return leave(rv);
}

/*
 * With the lock held: the job for the operation's signature over the
 * digest.  The job owns copies of everything, so that the lock can be
 * released while it runs.
 */
static CK_RV
job_make(const struct sign_op *op, enum sg_digest_alg dalg,
    const uint8_t *digest, size_t dlen, struct p11m_job *ret)
{
	const struct p11m_key *k = &st->token->keys[op->key];
	struct p11m_job j;

	memset(&j, 0, sizeof(j));
	if (p11m_conf_dup(&st->conf, &j.conf) != 0)
		return CKR_HOST_MEMORY;
	j.env = op->env;
	j.env.evidence_dir = NULL;
	if (op->env.evidence_dir != NULL &&
	    (j.env.evidence_dir = strdup(op->env.evidence_dir)) == NULL) {
		p11m_job_clear(&j);
		return CKR_HOST_MEMORY;
	}
	snprintf(j.key, sizeof(j.key), "%s", k->name);
	j.algorithm = k->algorithm;
	j.scheme = k->scheme;
	j.mechanism = op->mech->name;
	j.dalg = dalg;
	memcpy(j.digest, digest, dlen);
	j.dlen = dlen;
	if (EVP_PKEY_up_ref(k->pub) != 1) {
		p11m_job_clear(&j);
		return CKR_GENERAL_ERROR;
	}
	j.pub = k->pub;
	j.sig_len = k->sig_len;
	j.field_len = k->field_len;
	*ret = j;
	return CKR_OK;
}

/*
 * The common end of C_Sign and C_SignFinal, entered with the lock held
 * and the size already checked: takes the digest, runs the job without
 * the lock, ends the operation.  Returns with the lock released.
 *
 * A digest whose request was just refused (vetoed, expired, cancelled,
 * timed out, or refused outright) is not asked for again in the same
 * session: callers such as pkcs11-tool answer a failed C_Sign by trying
 * the same data again through C_SignUpdate and C_SignFinal, which would
 * put a second request before the officers who have just said no, and
 * keep the caller waiting for it.  A new session asks again.
 */
static CK_RV
sign_digest(CK_SESSION_HANDLE h, struct session *s, enum sg_digest_alg dalg,
    const uint8_t *digest, size_t dlen, CK_BYTE_PTR pSignature,
    CK_ULONG_PTR pulSignatureLen)
{
	struct sign_op *op = s->op;
	struct p11m_job job;
	uint8_t sig[SG_MAX_SIG];
	size_t siglen = 0;
	uint64_t gen = generation;
	CK_RV rv;

	if (s->refused.set && s->refused.key == op->key &&
	    s->refused.dalg == dalg &&
	    memcmp(s->refused.digest, digest, dlen) == 0) {
		p11m_msg("key '%s': the gateway refused this digest earlier in "
		    "this session; not asking again (a new session asks "
		    "again)", st->token->keys[op->key].name);
		op_end(s);
		return leave(CKR_FUNCTION_REJECTED);
	}
	if ((rv = job_make(op, dalg, digest, dlen, &job)) != CKR_OK) {
		op_end(s);
		return leave(rv);
	}
	op->busy = 1;
	pthread_mutex_unlock(&lock);

	rv = p11m_gw_sign(&job, sig, sizeof(sig), &siglen);
	if (rv == CKR_OK && siglen != job.sig_len)
		rv = CKR_GENERAL_ERROR;
	p11m_job_clear(&job);

	pthread_mutex_lock(&lock);
	if (st == NULL || generation != gen)
		return leave(CKR_CRYPTOKI_NOT_INITIALIZED);
	if ((s = session_get(h)) == NULL || s->op != op)
		return leave(CKR_SESSION_CLOSED);
	memset(&s->refused, 0, sizeof(s->refused));
	if (rv == CKR_FUNCTION_REJECTED) {
		s->refused.set = 1;
		s->refused.key = op->key;
		s->refused.dalg = dalg;
		memcpy(s->refused.digest, digest, dlen);
	}
	op_end(s);
	if (rv == CKR_OK) {
		memcpy(pSignature, sig, siglen);
		*pulSignatureLen = siglen;
	}
	explicit_bzero(sig, sizeof(sig));
	return leave(rv);
}

/*
 * The length rules of C_Sign and C_SignFinal (with the lock held):
 * CKR_OK and *done = 0 when the buffer is large enough to go on;
 * otherwise the answer, with the operation left active.
 */
static CK_RV
sign_size(const struct sign_op *op, CK_BYTE_PTR pSignature,
    CK_ULONG_PTR pulSignatureLen, int *done)
{
	size_t need = st->token->keys[op->key].sig_len;

	*done = 1;
	if (pSignature == NULL) {
		*pulSignatureLen = need;
		return CKR_OK;
	}
	if (*pulSignatureLen < need) {
		*pulSignatureLen = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	*done = 0;
	return CKR_OK;
}

/* An operation a thread is already signing with, or none at all. */
static CK_RV
op_usable(const struct session *s)
{
	if (s->op == NULL)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (s->op->busy)
		return CKR_OPERATION_ACTIVE;
	return CKR_OK;
}

CK_RV
C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
    CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	struct session *s;
	struct sign_op *op;
	enum sg_digest_alg dalg;
	uint8_t digest[SG_MAX_DIGEST];
	unsigned int mdlen = 0;
	size_t dlen = 0;
	int done;
	CK_RV rv;

	if (pulSignatureLen == NULL || (pData == NULL && ulDataLen > 0))
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if ((rv = op_usable(s)) != CKR_OK)
		return leave(rv);
	op = s->op;
	if (op->updated)
		return leave(CKR_OPERATION_ACTIVE);
	if ((rv = sign_size(op, pSignature, pulSignatureLen, &done)) != CKR_OK
	    || done)
		return leave(rv);
	if (op->md != NULL) {
		dalg = op->mech->hash;
		if (EVP_DigestUpdate(op->md, pData, ulDataLen) != 1 ||
		    EVP_DigestFinal_ex(op->md, digest, &mdlen) != 1) {
			op_end(s);
			return leave(CKR_GENERAL_ERROR);
		}
		dlen = mdlen;
	} else if ((rv = p11m_raw_digest(op->mech, op->hash, pData, ulDataLen,
	    &dalg, digest, &dlen)) != CKR_OK) {
		op_end(s);
		return leave(rv);
	}
	return sign_digest(hSession, s, dalg, digest, dlen, pSignature,
	    pulSignatureLen);
}

CK_RV
C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
    CK_ULONG ulPartLen)
{
	struct session *s;
	struct sign_op *op;
	CK_RV rv;

	if (pPart == NULL && ulPartLen > 0)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if ((rv = op_usable(s)) != CKR_OK)
		return leave(rv);
	op = s->op;
	op->updated = 1;
	if (op->md != NULL) {
		if (EVP_DigestUpdate(op->md, pPart, ulPartLen) != 1) {
			op_end(s);
			return leave(CKR_GENERAL_ERROR);
		}
		return leave(CKR_OK);
	}
	if (ulPartLen > sizeof(op->data) - op->len) {
		op_end(s);
		return leave(CKR_DATA_LEN_RANGE);
	}
	if (ulPartLen > 0)
		memcpy(op->data + op->len, pPart, ulPartLen);
	op->len += ulPartLen;
	return leave(CKR_OK);
}

CK_RV
C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
    CK_ULONG_PTR pulSignatureLen)
{
	struct session *s;
	struct sign_op *op;
	enum sg_digest_alg dalg;
	uint8_t digest[SG_MAX_DIGEST];
	unsigned int mdlen = 0;
	size_t dlen = 0;
	int done;
	CK_RV rv;

	if (pulSignatureLen == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((rv = enter_session(hSession, &s)) != CKR_OK)
		return rv;
	if ((rv = op_usable(s)) != CKR_OK)
		return leave(rv);
	op = s->op;
	if ((rv = sign_size(op, pSignature, pulSignatureLen, &done)) != CKR_OK
	    || done)
		return leave(rv);
	if (op->md != NULL) {
		dalg = op->mech->hash;
		if (EVP_DigestFinal_ex(op->md, digest, &mdlen) != 1) {
			op_end(s);
			return leave(CKR_GENERAL_ERROR);
		}
		dlen = mdlen;
	} else if ((rv = p11m_raw_digest(op->mech, op->hash, op->data,
	    op->len, &dalg, digest, &dlen)) != CKR_OK) {
		op_end(s);
		return leave(rv);
	}
	return sign_digest(hSession, s, dalg, digest, dlen, pSignature,
	    pulSignatureLen);
}

/* ---- what the module does not do ---- */

CK_RV
C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
    CK_UTF8CHAR_PTR pLabel)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin,
    CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState,
    CK_ULONG_PTR pulLen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pState,
    CK_ULONG ulLen, CK_OBJECT_HANDLE hEncKey, CK_OBJECT_HANDLE hAuthKey)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
    CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
    CK_OBJECT_HANDLE_PTR phNewObject)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

#define UNSUPPORTED_INIT(name)						\
CK_RV									\
name(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,		\
    CK_OBJECT_HANDLE hKey)						\
{									\
	return CKR_FUNCTION_NOT_SUPPORTED;				\
}
#define UNSUPPORTED_INOUT(name)						\
CK_RV									\
name(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pIn, CK_ULONG ulInLen,	\
    CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen)				\
{									\
	return CKR_FUNCTION_NOT_SUPPORTED;				\
}
#define UNSUPPORTED_FINAL(name)						\
CK_RV									\
name(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOut, CK_ULONG_PTR pulOutLen) \
{									\
	return CKR_FUNCTION_NOT_SUPPORTED;				\
}
#define UNSUPPORTED_PART(name)						\
CK_RV									\
name(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)	\
{									\
	return CKR_FUNCTION_NOT_SUPPORTED;				\
}

UNSUPPORTED_INIT(C_EncryptInit)
UNSUPPORTED_INOUT(C_Encrypt)
UNSUPPORTED_INOUT(C_EncryptUpdate)
UNSUPPORTED_FINAL(C_EncryptFinal)
UNSUPPORTED_INIT(C_DecryptInit)
UNSUPPORTED_INOUT(C_Decrypt)
UNSUPPORTED_INOUT(C_DecryptUpdate)
UNSUPPORTED_FINAL(C_DecryptFinal)
UNSUPPORTED_INOUT(C_Digest)
UNSUPPORTED_PART(C_DigestUpdate)
UNSUPPORTED_FINAL(C_DigestFinal)
UNSUPPORTED_INIT(C_SignRecoverInit)
UNSUPPORTED_INOUT(C_SignRecover)
UNSUPPORTED_INIT(C_VerifyInit)
UNSUPPORTED_PART(C_VerifyUpdate)
UNSUPPORTED_INIT(C_VerifyRecoverInit)
UNSUPPORTED_INOUT(C_VerifyRecover)
UNSUPPORTED_INOUT(C_DigestEncryptUpdate)
UNSUPPORTED_INOUT(C_DecryptDigestUpdate)
UNSUPPORTED_INOUT(C_SignEncryptUpdate)
UNSUPPORTED_INOUT(C_DecryptVerifyUpdate)
UNSUPPORTED_PART(C_SeedRandom)
UNSUPPORTED_PART(C_GenerateRandom)

CK_RV
C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
    CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
    CK_ULONG ulSignatureLen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
    CK_ATTRIBUTE_PTR pPubTemplate, CK_ULONG ulPubCount,
    CK_ATTRIBUTE_PTR pPrivTemplate, CK_ULONG ulPrivCount,
    CK_OBJECT_HANDLE_PTR phPubKey, CK_OBJECT_HANDLE_PTR phPrivKey)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
    CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
    CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
    CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
    CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
    CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
    CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,
    CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
	return CKR_FUNCTION_NOT_PARALLEL;
}

CK_RV
C_CancelFunction(CK_SESSION_HANDLE hSession)
{
	return CKR_FUNCTION_NOT_PARALLEL;
}

CK_RV
C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pRserved)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_FUNCTION_LIST function_list = {
	.version = { 2, 40 },
	.C_Initialize = C_Initialize,
	.C_Finalize = C_Finalize,
	.C_GetInfo = C_GetInfo,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = C_GetSlotList,
	.C_GetSlotInfo = C_GetSlotInfo,
	.C_GetTokenInfo = C_GetTokenInfo,
	.C_GetMechanismList = C_GetMechanismList,
	.C_GetMechanismInfo = C_GetMechanismInfo,
	.C_InitToken = C_InitToken,
	.C_InitPIN = C_InitPIN,
	.C_SetPIN = C_SetPIN,
	.C_OpenSession = C_OpenSession,
	.C_CloseSession = C_CloseSession,
	.C_CloseAllSessions = C_CloseAllSessions,
	.C_GetSessionInfo = C_GetSessionInfo,
	.C_GetOperationState = C_GetOperationState,
	.C_SetOperationState = C_SetOperationState,
	.C_Login = C_Login,
	.C_Logout = C_Logout,
	.C_CreateObject = C_CreateObject,
	.C_CopyObject = C_CopyObject,
	.C_DestroyObject = C_DestroyObject,
	.C_GetObjectSize = C_GetObjectSize,
	.C_GetAttributeValue = C_GetAttributeValue,
	.C_SetAttributeValue = C_SetAttributeValue,
	.C_FindObjectsInit = C_FindObjectsInit,
	.C_FindObjects = C_FindObjects,
	.C_FindObjectsFinal = C_FindObjectsFinal,
	.C_EncryptInit = C_EncryptInit,
	.C_Encrypt = C_Encrypt,
	.C_EncryptUpdate = C_EncryptUpdate,
	.C_EncryptFinal = C_EncryptFinal,
	.C_DecryptInit = C_DecryptInit,
	.C_Decrypt = C_Decrypt,
	.C_DecryptUpdate = C_DecryptUpdate,
	.C_DecryptFinal = C_DecryptFinal,
	.C_DigestInit = C_DigestInit,
	.C_Digest = C_Digest,
	.C_DigestUpdate = C_DigestUpdate,
	.C_DigestKey = C_DigestKey,
	.C_DigestFinal = C_DigestFinal,
	.C_SignInit = C_SignInit,
	.C_Sign = C_Sign,
	.C_SignUpdate = C_SignUpdate,
	.C_SignFinal = C_SignFinal,
	.C_SignRecoverInit = C_SignRecoverInit,
	.C_SignRecover = C_SignRecover,
	.C_VerifyInit = C_VerifyInit,
	.C_Verify = C_Verify,
	.C_VerifyUpdate = C_VerifyUpdate,
	.C_VerifyFinal = C_VerifyFinal,
	.C_VerifyRecoverInit = C_VerifyRecoverInit,
	.C_VerifyRecover = C_VerifyRecover,
	.C_DigestEncryptUpdate = C_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = C_DecryptDigestUpdate,
	.C_SignEncryptUpdate = C_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = C_DecryptVerifyUpdate,
	.C_GenerateKey = C_GenerateKey,
	.C_GenerateKeyPair = C_GenerateKeyPair,
	.C_WrapKey = C_WrapKey,
	.C_UnwrapKey = C_UnwrapKey,
	.C_DeriveKey = C_DeriveKey,
	.C_SeedRandom = C_SeedRandom,
	.C_GenerateRandom = C_GenerateRandom,
	.C_GetFunctionStatus = C_GetFunctionStatus,
	.C_CancelFunction = C_CancelFunction,
	.C_WaitForSlotEvent = C_WaitForSlotEvent,
};

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (ppFunctionList == NULL)
		return CKR_ARGUMENTS_BAD;
	*ppFunctionList = &function_list;
	return CKR_OK;
}
