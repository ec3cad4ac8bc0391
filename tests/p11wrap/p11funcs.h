/*
 * The PKCS#11 functions the test modules forward, as X-macros: name,
 * parameters, arguments.  P11_FUNCS is every function of the table but
 * C_GetFunctionList and the two that finish a signature, which
 * P11_SIGN_FUNCS lists (a module that changes how signing behaves
 * writes those two itself).
 */
#ifndef P11FUNCS_H
#define P11FUNCS_H

#define P11_FUNCS(X) \
	X(C_Initialize, (void *a), (a)) \
	X(C_Finalize, (void *a), (a)) \
	X(C_GetInfo, (CK_INFO *a), (a)) \
	X(C_GetSlotList, (CK_BYTE a, CK_SLOT_ID *b, CK_ULONG *c), (a, b, c)) \
	X(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO *b), (a, b)) \
	X(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO *b), (a, b)) \
	X(C_WaitForSlotEvent, (CK_FLAGS a, CK_SLOT_ID *b, void *c), (a, b, c)) \
	X(C_GetMechanismList, (CK_SLOT_ID a, CK_MECHANISM_TYPE *b, CK_ULONG *c), (a, b, c)) \
	X(C_GetMechanismInfo, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO *c), (a, b, c)) \
	X(C_InitToken, (CK_SLOT_ID a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d), (a, b, c, d)) \
	X(C_InitPIN, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c), (a, b, c)) \
	X(C_SetPIN, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG e), (a, b, c, d, e)) \
	X(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, void *c, CK_NOTIFY d, CK_SESSION_HANDLE *e), (a, b, c, d, e)) \
	X(C_CloseSession, (CK_SESSION_HANDLE a), (a)) \
	X(C_CloseAllSessions, (CK_SLOT_ID a), (a)) \
	X(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO *b), (a, b)) \
	X(C_GetOperationState, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG *c), (a, b, c)) \
	X(C_SetOperationState, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e), (a, b, c, d, e)) \
	X(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_BYTE *c, CK_ULONG d), (a, b, c, d)) \
	X(C_Logout, (CK_SESSION_HANDLE a), (a)) \
	X(C_CreateObject, (CK_SESSION_HANDLE a, CK_ATTRIBUTE *b, CK_ULONG c, CK_OBJECT_HANDLE *d), (a, b, c, d)) \
	X(C_CopyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE *c, CK_ULONG d, CK_OBJECT_HANDLE *e), (a, b, c, d, e)) \
	X(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
	X(C_GetObjectSize, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ULONG *c), (a, b, c)) \
	X(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE *c, CK_ULONG d), (a, b, c, d)) \
	X(C_SetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b, CK_ATTRIBUTE *c, CK_ULONG d), (a, b, c, d)) \
	X(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE *b, CK_ULONG c), (a, b, c)) \
	X(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE *b, CK_ULONG c, CK_ULONG *d), (a, b, c, d)) \
	X(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a)) \
	X(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_EncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_EncryptFinal, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG *c), (a, b, c)) \
	X(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Decrypt, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_DecryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_DecryptFinal, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG *c), (a, b, c)) \
	X(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM *b), (a, b)) \
	X(C_Digest, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_DigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c), (a, b, c)) \
	X(C_DigestKey, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
	X(C_DigestFinal, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG *c), (a, b, c)) \
	X(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_SignUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c), (a, b, c)) \
	X(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_Verify, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG e), (a, b, c, d, e)) \
	X(C_VerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c), (a, b, c)) \
	X(C_VerifyFinal, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c), (a, b, c)) \
	X(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_ATTRIBUTE *c, CK_ULONG d, CK_OBJECT_HANDLE *e), (a, b, c, d, e)) \
	X(C_GenerateKeyPair, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_ATTRIBUTE *c, CK_ULONG d, CK_ATTRIBUTE *e, CK_ULONG f, CK_OBJECT_HANDLE *g, CK_OBJECT_HANDLE *h), (a, b, c, d, e, f, g, h)) \
	X(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE *e, CK_ULONG *f), (a, b, c, d, e, f)) \
	X(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c, CK_BYTE *d, CK_ULONG e, CK_ATTRIBUTE *f, CK_ULONG g, CK_OBJECT_HANDLE *h), (a, b, c, d, e, f, g, h)) \
	X(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM *b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE *d, CK_ULONG e, CK_OBJECT_HANDLE *f), (a, b, c, d, e, f)) \
	X(C_SeedRandom, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c), (a, b, c)) \
	X(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c), (a, b, c)) \
	X(C_GetFunctionStatus, (CK_SESSION_HANDLE a), (a)) \
	X(C_CancelFunction, (CK_SESSION_HANDLE a), (a))

#define P11_SIGN_FUNCS(X) \
	X(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG c, CK_BYTE *d, CK_ULONG *e), (a, b, c, d, e)) \
	X(C_SignFinal, (CK_SESSION_HANDLE a, CK_BYTE *b, CK_ULONG *c), (a, b, c))

#endif
