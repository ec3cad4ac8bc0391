/*
 * The daemon's signer behind the service's signer interface
 * (sg_service_signer.h): the signer process, forked here or started on
 * its own (signer_socket), reached through sg_signer_client_*.  Each
 * function of the interface is the client call of the same name.
 *
 * Locks: none of its own (the client is thread-safe).
 * Calls: sg_signer_proc.h only.
 */
#include <stdlib.h>

#include "sg_err.h"
#include "sg_signer_proc.h"
#include "service_int.h"

static int
client_sign(void *ctx, const struct sg_sign_msg *msg,
    const struct sg_sign_evidence *ev, struct sg_sign_reply *reply,
    uint8_t **ret_cms, size_t *ret_cms_len, char *errbuf, size_t errlen)
{
	return sg_signer_client_sign(ctx, msg, ev, reply, ret_cms,
	    ret_cms_len, errbuf, errlen);
}

static int
client_sign_async(void *ctx, const struct sg_sign_msg *msg,
    const struct sg_sign_evidence *ev, sg_signer_sign_done done, void *arg)
{
	return sg_signer_client_sign_async(ctx, msg, ev, done, arg);
}

static int
client_sign_batch(void *ctx, const char *key,
    const struct sg_sign_evidence *ev, const struct sg_batch_item *items,
    size_t n, struct sg_batch_result *res, char *errbuf, size_t errlen)
{
	return sg_signer_client_sign_batch(ctx, key, ev, items, n, res,
	    errbuf, errlen);
}

static int
client_checkpoint(void *ctx, const struct sg_witness_request *req,
    struct sg_witness_reply *ret)
{
	return sg_signer_client_checkpoint(ctx, req, ret);
}

static int
client_probe(void *ctx, const char *key)
{
	return sg_signer_client_probe(ctx, key);
}

static int
client_key_public(void *ctx, const char *name, EVP_PKEY **ret_pub,
    enum sg_key_alg *ret_alg, struct sg_token_info *ret_token)
{
	return sg_signer_client_key_public(ctx, name, ret_pub, ret_alg,
	    ret_token);
}

static int
client_reload(void *ctx, const char *expect_sha256_hex, char *errbuf,
    size_t errlen)
{
	return sg_signer_client_reload(ctx, expect_sha256_hex, errbuf,
	    errlen);
}

static void
client_free(void *ctx)
{
	sg_signer_client_free(ctx);
}

/*
 * Starts (or connects to) the signer process for every key of policy p
 * plus the log key, with a channel per HTTP thread and a few for the
 * housekeeping thread and readiness probes (each channel carries many
 * requests at once), and a signer answering pkcs11.concurrency
 * requests at once.  Call before any thread.
 */
int
svc_signer_start(const struct sg_config *cfg, const struct sg_policy *p,
    struct sg_service_signer *ret, char *errbuf, size_t errlen)
{
	struct sg_signer_key_spec *specs = NULL;
	struct sg_signer_client *c = NULL;
	size_t n;
	int r;

	if ((r = sg_signer_key_specs(p, cfg->log_token, cfg->log_key, &specs,
	    &n)) != 0)
		return r;
	if (cfg->signer_socket != NULL)
		r = sg_signer_connect(cfg->signer_socket,
		    sg_policy_sha256_hex(p), specs, n, cfg->threads + 4, &c,
		    errbuf, errlen);
	else
		r = sg_signer_spawn(cfg->pkcs11_module, cfg->tokens,
		    cfg->ntokens, specs, n, cfg->policy_path, cfg->log_origin,
		    cfg->signer_state_dir, cfg->threads + 4,
		    cfg->pkcs11_concurrency, &c, errbuf, errlen);
	free(specs);
	if (r != 0)
		return r;
	ret->ctx = c;
	ret->sign = client_sign;
	ret->sign_async = client_sign_async;
	ret->sign_batch = client_sign_batch;
	ret->checkpoint = client_checkpoint;
	ret->probe = client_probe;
	ret->key_public = client_key_public;
	ret->reload = client_reload;
	ret->free = client_free;
	return 0;
}
