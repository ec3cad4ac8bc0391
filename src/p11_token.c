/*
 * PKCS#11 tokens: finding a token's slot by label (and serial, when two
 * tokens share a label) among the slots with a token present, opening it
 * (a first session, the login with its PIN, kept for re-login in a locked
 * page), its information, and freeing it with its keys.  A token whose
 * slot moved after a reset is found again by the same label and serial
 * (p11_token_find_slot, for recovery in p11_sign.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_p11.h"
#include "sg_util.h"
#include "p11_int.h"

/* ---- tokens ---- */

void
p11_key_free(struct sg_p11_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	explicit_bzero(k, sizeof(*k));
	free(k);
}

void
p11_token_free(struct sg_p11_token *t)
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
		p11_key_free(k);
	}
	p11_pin_wipe(t);
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
	if (p11_cond_init_mono(&t->cond) != 0) {
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
	t->max_open = atomic_load(&p->sessions);
	t->gen = 1;
	p11_field_trim(ti->label, sizeof(ti->label), t->info.label);
	p11_field_trim(ti->serialNumber, sizeof(ti->serialNumber),
	    t->info.serial);
	p11_field_trim(ti->manufacturerID, sizeof(ti->manufacturerID),
	    t->info.manufacturer);
	p11_field_trim(ti->model, sizeof(ti->model), t->info.model);
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
		if ((rv = p11_note_rv(f->C_GetSlotList(CK_TRUE, NULL, &n))) !=
		    CKR_OK)
			return p11_rv_to_err(rv);
		if (n > P11_MAX_SLOTS)
			return SG_ERR_TOO_LARGE;
		free(slots);
		if ((slots = calloc(n + 1, sizeof(*slots))) == NULL)
			return SG_ERR_NOMEM;
		rv = p11_note_rv(f->C_GetSlotList(CK_TRUE, slots, &n));
		if (rv == CKR_OK) {
			*ret = slots;
			*ret_n = n;
			return 0;
		}
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	free(slots);
	return p11_rv_to_err(rv);
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
		if (p11_note_rv(f->C_GetTokenInfo(slots[i], &ti)) != CKR_OK)
			continue;
		p11_field_trim(ti.label, sizeof(ti.label), name);
		if (strcmp(name, label) != 0)
			continue;
		p11_field_trim(ti.serialNumber, sizeof(ti.serialNumber), sn);
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
int
p11_token_find_slot(struct sg_p11_token *t)
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
	if (slot != p11_token_slot(t)) {
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

	p11_tl_last_rv = CKR_OK;
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
	p11_gate_enter(p);
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
	if (pin != NULL && (r = p11_pin_store(t, pin, pin_len)) != 0)
		goto out;
	if ((r = p11_session_get(t, &s, &rv)) != 0)
		goto out;
	if (t->has_pin ||
	    (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0) {
		t->login = 1;
		if ((rv = p11_token_login(t, s.h, CKU_USER)) != CKR_OK) {
			r = p11_rv_to_err(rv);
			goto out;
		}
	} else if ((ti.flags & CKF_LOGIN_REQUIRED) != 0) {
		r = SG_ERR_PIN;
		goto out;
	}
	p11_session_put(t, s);
	s.h = CK_INVALID_HANDLE;
	t->next = p->tokens;
	p->tokens = t;
	*ret = t;
	t = NULL;  /* transferred */
	r = 0;
out:
	if (s.h != CK_INVALID_HANDLE)
		p11_session_drop(t, s);
	p11_token_free(t);
	p11_gate_leave(p);
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
