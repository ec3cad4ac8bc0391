/*
 * One error space for the whole project.  Functions return 0 on success or a
 * negative SG_ERR_* code; libc's -1/errno and the OpenSSL error queue are
 * converted at the boundary.  The HTTP status for an error is chosen in one
 * place, sg_err_http_status().
 */
#ifndef SG_ERR_H
#define SG_ERR_H

enum {
	SG_OK = 0,
	SG_ERR_INTERNAL = -1,      /* a bug or an unexpected library failure */
	SG_ERR_NOMEM = -2,
	SG_ERR_INVALID = -3,       /* malformed input */
	SG_ERR_NOT_FOUND = -4,
	SG_ERR_FORBIDDEN = -5,     /* role or policy forbids */
	SG_ERR_UNAUTHENTICATED = -6,
	SG_ERR_CONFLICT = -7,      /* wrong state, duplicate */
	SG_ERR_TOO_LARGE = -8,
	SG_ERR_VERIFY = -9,        /* a signature or statement does not verify */
	SG_ERR_RATE_LIMITED = -10,
	SG_ERR_UNAVAILABLE = -11,  /* HSM or log cannot be used now */
	SG_ERR_IO = -12,           /* file or database I/O failed */
	SG_ERR_HSM = -13,          /* the PKCS#11 module returned an error */
	SG_ERR_CRYPTO = -14,       /* libcrypto failed */
	SG_ERR_PIN = -15,          /* PIN missing, unreadable, or refused */
	SG_ERR_NO_KEY = -16,       /* key object not found on the token */
	SG_ERR_MECHANISM = -17,    /* mechanism/algorithm not supported */
	SG_ERR_BUFFER = -18,       /* an output buffer is too small */
	SG_ERR_PERMISSIONS = -19,  /* a secret file is readable by others */
	SG_ERR_TIMEOUT = -20,
};
#define SG_ERR_MIN SG_ERR_TIMEOUT

/* A short English message for an error code; never NULL. */
const char *sg_strerror(int r);

/* The HTTP status an API error maps to (500 for unknown codes). */
int sg_err_http_status(int r);

#endif
