/* Messages and HTTP statuses for the SG_ERR_* codes. */
#include "sg_err.h"

const char *
sg_strerror(int r)
{
	switch (r) {
	case SG_OK: return "success";
	case SG_ERR_INTERNAL: return "internal error";
	case SG_ERR_NOMEM: return "out of memory";
	case SG_ERR_INVALID: return "invalid input";
	case SG_ERR_NOT_FOUND: return "not found";
	case SG_ERR_FORBIDDEN: return "forbidden";
	case SG_ERR_UNAUTHENTICATED: return "no valid client certificate";
	case SG_ERR_CONFLICT: return "conflict with the current state";
	case SG_ERR_TOO_LARGE: return "input too large";
	case SG_ERR_VERIFY: return "signature or statement does not verify";
	case SG_ERR_RATE_LIMITED: return "rate limited";
	case SG_ERR_UNAVAILABLE: return "service unavailable";
	case SG_ERR_IO: return "I/O error";
	case SG_ERR_HSM: return "HSM error";
	case SG_ERR_CRYPTO: return "cryptographic library error";
	case SG_ERR_PIN: return "PIN missing or refused";
	case SG_ERR_NO_KEY: return "key not found on the token";
	case SG_ERR_MECHANISM: return "mechanism not supported";
	case SG_ERR_BUFFER: return "buffer too small";
	case SG_ERR_PERMISSIONS: return "file permissions too open";
	case SG_ERR_TIMEOUT: return "timed out";
	}
	return "unknown error";
}

int
sg_err_http_status(int r)
{
	switch (r) {
	case SG_OK: return 200;
	case SG_ERR_INVALID: return 400;
	case SG_ERR_UNAUTHENTICATED: return 401;
	case SG_ERR_FORBIDDEN: return 403;
	case SG_ERR_NOT_FOUND: return 404;
	case SG_ERR_CONFLICT: return 409;
	case SG_ERR_TOO_LARGE: return 413;
	case SG_ERR_VERIFY: return 422;
	case SG_ERR_RATE_LIMITED: return 429;
	case SG_ERR_UNAVAILABLE:
	case SG_ERR_HSM:
	case SG_ERR_IO:
	case SG_ERR_NO_KEY:
	case SG_ERR_PIN:
	case SG_ERR_TIMEOUT:
		return 503;
	}
	return 500;
}
