/*
 * p11copy: gives a key pair a second name on its token, as an HSM
 * administrator could: C_CopyObject of the private key and of its public
 * key object, each copy with a new CKA_LABEL and CKA_ID.  The copies hold
 * the same key material under another label, which is what the signer
 * must recognise as the same key (by its public key) whatever it is called.
 *
 *   p11copy MODULE TOKEN PIN_FILE FROM_LABEL NEW_LABEL NEW_ID_HEX
 *
 * Test-only.  Exits 0 when both objects were copied, 1 with a message
 * naming the failing call otherwise (CKR_FUNCTION_NOT_SUPPORTED when the
 * module cannot copy objects).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "sg_err.h"
#include "sg_util.h"

static CK_FUNCTION_LIST *f;

static int
fail(const char *what, CK_RV rv)
{
	fprintf(stderr, "p11copy: %s: CK_RV 0x%lx\n", what,
	    (unsigned long)rv);
	return 1;
}

static CK_SLOT_ID
slot_of(const char *label, int *found)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO ti;
	char l[33];
	size_t len;

	*found = 0;
	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return 0;
	for (i = 0; i < n; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(l, ti.label, 32);
		for (len = 32; len > 0 && l[len - 1] == ' '; len--)
			;
		l[len] = '\0';
		if (strcmp(l, label) == 0) {
			*found = 1;
			return slots[i];
		}
	}
	return 0;
}

/* Copies the one object of class cls labelled from; 0 or a CK_RV. */
static CK_RV
copy_one(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *from,
    const char *label, const uint8_t *id, size_t id_len)
{
	CK_ATTRIBUTE find[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)from, strlen(from) },
	};
	CK_ATTRIBUTE set[2] = {
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, (void *)id, id_len },
	};
	CK_OBJECT_HANDLE h[2], copy;
	CK_ULONG n = 0;
	CK_RV rv;

	if ((rv = f->C_FindObjectsInit(s, find, 2)) != CKR_OK)
		return rv;
	rv = f->C_FindObjects(s, h, 2, &n);
	f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return rv;
	if (n != 1)
		return CKR_ARGUMENTS_BAD;
	return f->C_CopyObject(s, h[0], set, 2, &copy);
}

int
main(int argc, char **argv)
{
	CK_RV (*get)(CK_FUNCTION_LIST **);
	CK_C_INITIALIZE_ARGS ia;
	CK_SESSION_HANDLE s;
	CK_SLOT_ID slot;
	uint8_t id[64];
	size_t id_len = 0, pin_len = 0;
	char *pin = NULL;
	void *dl;
	CK_RV rv;
	int found, rc = 1;

	if (argc != 7) {
		fprintf(stderr, "usage: p11copy MODULE TOKEN PIN_FILE "
		    "FROM_LABEL NEW_LABEL NEW_ID_HEX\n");
		return 2;
	}
	if (sg_hex_decode(argv[6], strlen(argv[6]), id, sizeof(id),
	    &id_len) != 0 || id_len == 0) {
		fprintf(stderr, "p11copy: NEW_ID_HEX: not hex\n");
		return 2;
	}
	if (sg_read_secret_file(argv[3], &pin, &pin_len) != 0) {
		fprintf(stderr, "p11copy: %s: cannot read the PIN\n", argv[3]);
		return 1;
	}
	if ((dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    (get = (CK_RV (*)(CK_FUNCTION_LIST **))dlsym(dl,
	    "C_GetFunctionList")) == NULL || get(&f) != CKR_OK) {
		fprintf(stderr, "p11copy: %s: cannot load\n", argv[1]);
		goto out;
	}
	memset(&ia, 0, sizeof(ia));
	ia.flags = CKF_OS_LOCKING_OK;
	if ((rv = f->C_Initialize(&ia)) != CKR_OK) {
		fail("C_Initialize", rv);
		goto out;
	}
	slot = slot_of(argv[2], &found);
	if (!found) {
		fprintf(stderr, "p11copy: no token '%s'\n", argv[2]);
		goto fin;
	}
	if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &s)) != CKR_OK) {
		fail("C_OpenSession", rv);
		goto fin;
	}
	if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin,
	    pin_len)) != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		fail("C_Login", rv);
	else if ((rv = copy_one(s, CKO_PRIVATE_KEY, argv[4], argv[5], id,
	    id_len)) != CKR_OK)
		fail("C_CopyObject (private key)", rv);
	else if ((rv = copy_one(s, CKO_PUBLIC_KEY, argv[4], argv[5], id,
	    id_len)) != CKR_OK)
		fail("C_CopyObject (public key)", rv);
	else
		rc = 0;
	f->C_CloseSession(s);
fin:
	f->C_Finalize(NULL);
out:
	sg_freezero(pin, pin_len + 1);
	return rc;
}
