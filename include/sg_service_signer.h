/*
 * What the service needs of a signer, as an interface: the daemon's one
 * implementation talks to the signer process (sg_signer_proc.h) and is
 * chosen by sg_service_open(); tests give sg_service_open_with_signer()
 * one of their own, with in-memory keys, that can be told to fail.
 *
 * Every function has the meaning of the sg_signer_client_* call of the
 * same name (sg_signer_proc.h), ctx first.  key_public's key stays owned
 * by the signer until its free.  They are called from any thread.
 */
#ifndef SG_SERVICE_SIGNER_H
#define SG_SERVICE_SIGNER_H

#include <stddef.h>
#include <stdint.h>

#include "sg_service.h"
#include "sg_signer_proc.h"

struct sg_service_signer {
	void *ctx;
	int (*sign)(void *ctx, const struct sg_sign_msg *msg,
	    const struct sg_sign_evidence *ev, struct sg_sign_reply *reply,
	    uint8_t **ret_cms, size_t *ret_cms_len, char *errbuf,
	    size_t errlen);
	/* NULL: the service signs with sign, on a thread of its own. */
	int (*sign_async)(void *ctx, const struct sg_sign_msg *msg,
	    const struct sg_sign_evidence *ev, sg_signer_sign_done done,
	    void *arg);
	/* NULL: releases and grants cannot be signed (refused with 503). */
	int (*sign_batch)(void *ctx, const char *key,
	    const struct sg_sign_evidence *ev,
	    const struct sg_batch_item *items, size_t n,
	    struct sg_batch_result *res, char *errbuf, size_t errlen);
	int (*checkpoint)(void *ctx, const struct sg_witness_request *req,
	    struct sg_witness_reply *ret);
	int (*probe)(void *ctx, const char *key);
	int (*key_public)(void *ctx, const char *name, EVP_PKEY **ret_pub,
	    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token);
	int (*reload)(void *ctx, const char *expect_sha256_hex,
	    char *errbuf, size_t errlen);
	void (*free)(void *ctx);
};

/* What sg_service_open_with_signer() is given instead of the signer
 * process. */
struct sg_service_parts {
	struct sg_service_signer signer;
	/* The clock the rules read (creation, expiry, decisions), in unix
	 * seconds; NULL: time(NULL). */
	int64_t (*now)(void *ctx);
	void *now_ctx;
};

/*
 * sg_service_open() with the given signer and clock in place of the
 * signer process, and without a change of user (there is no second
 * process to separate from).  The service owns the signer from the call
 * on, and frees it (signer.free) also when the call fails.
 */
int sg_service_open_with_signer(const struct sg_config *cfg,
    const struct sg_service_parts *parts, struct sg_service **ret,
    char *errbuf, size_t errlen);

#endif
