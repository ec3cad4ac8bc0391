/*
 * Key views: what the service knows of each policy key, from the signer's
 * facts (public key, token) and the policy's rules (inventory, countries,
 * certificate chain), and the read-only accessors the API uses.
 *
 * A view is built at start and again for every key by a reload, never
 * changed afterwards: reload swaps the whole table under the write lock
 * and keeps the old one until shutdown, so a pointer handed out stays
 * valid.  No policy key may reach the log key (svc_log_key_clash).
 *
 * Locks: the accessors take plock for reading; svc_key_locked expects it
 * held.  Building a view takes no lock (the table is not yet published).
 * Calls: the signer interface (key_public), policy, crypto, util.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_util.h"
#include "service_int.h"

/*
 * Checks the certificate and the inventory for one key under policy p.
 * SG_ERR_VERIFY when the certificate is what makes the key unusable;
 * 0 otherwise, kv->usable and kv->reason saying whether it may be used.
 */
static int
check_key(const struct sg_policy *p, struct sg_key_view *kv,
    const char *policy_dir)
{
	const struct sg_policy_key *pk = kv->pk;
	const struct sg_hsm *hsm;
	EVP_PKEY *certkey = NULL;
	char *path = NULL;
	size_t len;
	uint8_t spki[32];
	int der_len, r;

	kv->usable = 0;
	if (sg_pubkey_spki_sha256(kv->pub, spki) != 0 ||
	    sg_pubkey_to_pem(kv->pub, &kv->public_key_pem) != 0 ||
	    (der_len = i2d_PUBKEY(kv->pub, &kv->spki_der)) <= 0) {
		snprintf(kv->reason, sizeof(kv->reason),
		    "cannot encode the public key");
		return 0;
	}
	kv->spki_der_len = (size_t)der_len;
	sg_hex_encode(spki, sizeof(spki), kv->spki_sha256);
	if (pk->certificate[0] != '\0') {
		if ((path = sg_path_join(policy_dir, pk->certificate)) == NULL)
			return SG_ERR_NOMEM;
		r = sg_read_file(path, SG_PEM_FILE_MAX, &kv->certificate_pem,
		    &len);
		if (r != 0) {
			snprintf(kv->reason, sizeof(kv->reason),
			    "certificate %s: %s", path, sg_strerror(r));
			free(path);
			return SG_ERR_VERIFY;
		}
		if (sg_pubkey_from_pem(kv->certificate_pem, len,
		    &certkey) != 0 || EVP_PKEY_eq(certkey, kv->pub) != 1) {
			EVP_PKEY_free(certkey);
			snprintf(kv->reason, sizeof(kv->reason),
			    "certificate %s: the certificate's public key is "
			    "not the HSM key's", path);
			free(path);
			return SG_ERR_VERIFY;
		}
		free(path);
		EVP_PKEY_free(certkey);
	}
	/* Where the token stands is shown even when the key may not be
	 * used there; whether it may is the policy's one rule. */
	kv->hsm = sg_policy_hsm(p, kv->token.serial);
	if (sg_policy_token_allowed(p, pk, kv->token.label,
	    kv->token.serial, kv->token.manufacturer, kv->token.model, &hsm,
	    kv->reason, sizeof(kv->reason)) != 0)
		return 0;
	kv->usable = 1;
	kv->reason[0] = '\0';
	return 0;
}

/* Loads the certificates of a key's retired predecessors, for listing. */
static void
load_retired(struct sg_key_view *kv, const char *policy_dir)
{
	size_t i, len;
	uint8_t spki[32];
	EVP_PKEY *pub;
	char *path;
	int r;

	for (i = 0; i < kv->pk->nretired; i++) {
		struct sg_retired_view *rv = &kv->retired[i];
		rv->rk = &kv->pk->retired[i];
		kv->nretired++;
		if ((path = sg_path_join(policy_dir,
		    rv->rk->certificate)) == NULL)
			continue;
		r = sg_read_file(path, SG_PEM_FILE_MAX, &rv->certificate_pem,
		    &len);
		pub = NULL;
		if (r == 0 && (r = sg_pubkey_from_pem(rv->certificate_pem, len,
		    &pub)) == 0 &&
		    (r = sg_pubkey_spki_sha256(pub, spki)) == 0 &&
		    (r = sg_pubkey_to_pem(pub, &rv->public_key_pem)) == 0)
			sg_hex_encode(spki, sizeof(spki), rv->spki_sha256);
		else {
			snprintf(rv->reason, sizeof(rv->reason), "%s: %s",
			    path, sg_strerror(r));
			sg_log_warn("key '%s': retired certificate %s",
			    kv->pk->name, rv->reason);
		}
		EVP_PKEY_free(pub);
		free(path);
	}
}

/*
 * No policy key may reach the log key, which signs checkpoints: a raw
 * Ed25519 signature over checkpoint text is a checkpoint.  Refused when a
 * key names the log key's token and label, and, once the signer has found
 * the keys, when its public key is the log key's (an ID, a URI or another
 * label for the same key pair).  The signer process checks the HSM
 * objects themselves on its own; this is the front's half.
 */
int
svc_log_key_clash(const struct sg_config *cfg, const struct sg_policy_key *pk,
    EVP_PKEY *pub, EVP_PKEY *logpub, char *errbuf, size_t errlen)
{
	if (strcmp(pk->token, cfg->log_token) == 0 &&
	    strcmp(pk->object, cfg->log_key) == 0) {
		snprintf(errbuf, errlen, "key '%s': token '%s' object '%s' "
		    "is the transparency log's key (log.key); no policy key "
		    "may use it", pk->name, pk->token, pk->object);
		return SG_ERR_FORBIDDEN;
	}
	if (pub != NULL && logpub != NULL && EVP_PKEY_eq(pub, logpub) == 1) {
		snprintf(errbuf, errlen, "key '%s': its public key is the "
		    "transparency log's key; no policy key may use it",
		    pk->name);
		return SG_ERR_FORBIDDEN;
	}
	return 0;
}

/*
 * Fills view kv of key kv->pk under policy p (certificates relative to
 * dir) from the signer's facts.  The HSM key must have the policy's
 * algorithm and, when logpub is given, must not be the log key.  A key
 * that may not be used is kept with the reason, unless strict: then a
 * certificate that cannot be used fails the call, rather than have the
 * front show one chain and the signer embed another.
 */
int
svc_key_view_fill(struct sg_service *s, const struct sg_policy *p,
    struct sg_key_view *kv, const char *dir, EVP_PKEY *logpub, int strict,
    char *errbuf, size_t errlen)
{
	enum sg_key_alg alg;
	int r;

	if ((r = s->signer.key_public(s->signer.ctx, kv->pk->name, &kv->pub,
	    &alg, &kv->token)) != 0) {
		snprintf(errbuf, errlen, "key '%s': %s", kv->pk->name,
		    sg_strerror(r));
		return r;
	}
	if (alg != kv->pk->alg) {
		snprintf(errbuf, errlen, "key '%s': the HSM key is not %s",
		    kv->pk->name, sg_scheme_name(kv->pk->alg, kv->pk->scheme));
		return SG_ERR_INVALID;
	}
	if (logpub != NULL && (r = svc_log_key_clash(s->cfg, kv->pk, kv->pub,
	    logpub, errbuf, errlen)) != 0)
		return r;
	if (check_key(p, kv, dir) != 0 && strict) {
		snprintf(errbuf, errlen, "key '%s': %s", kv->pk->name,
		    kv->reason);
		return SG_ERR_INVALID;
	}
	load_retired(kv, dir);
	return 0;
}

void
svc_keys_free(struct sg_key_view *keys, size_t n)
{
	size_t i, j;

	for (i = 0; keys != NULL && i < n; i++) {
		free(keys[i].public_key_pem);
		free(keys[i].certificate_pem);
		OPENSSL_free(keys[i].spki_der);
		for (j = 0; j < keys[i].nretired; j++) {
			free(keys[i].retired[j].certificate_pem);
			free(keys[i].retired[j].public_key_pem);
		}
	}
	free(keys);
}

const struct sg_key_view *
svc_key_locked(const struct sg_service *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].pk->name, name) == 0)
			return &s->keys[i];
	return NULL;
}

/* --- the accessors, each under the read lock --- */

const struct sg_policy *
sg_service_policy(const struct sg_service *s)
{
	struct sg_service *m = (struct sg_service *)s;
	const struct sg_policy *p;

	pthread_rwlock_rdlock(&m->plock);
	p = s->policy;
	pthread_rwlock_unlock(&m->plock);
	return p;
}

size_t
sg_service_nkeys(const struct sg_service *s)
{
	struct sg_service *m = (struct sg_service *)s;
	size_t n;

	pthread_rwlock_rdlock(&m->plock);
	n = s->nkeys;
	pthread_rwlock_unlock(&m->plock);
	return n;
}

const struct sg_key_view *
sg_service_key_at(const struct sg_service *s, size_t i)
{
	struct sg_service *m = (struct sg_service *)s;
	const struct sg_key_view *kv;

	pthread_rwlock_rdlock(&m->plock);
	kv = i < s->nkeys ? &s->keys[i] : NULL;
	pthread_rwlock_unlock(&m->plock);
	return kv;
}

const struct sg_key_view *
sg_service_key(const struct sg_service *s, const char *name)
{
	struct sg_service *m = (struct sg_service *)s;
	const struct sg_key_view *kv;

	pthread_rwlock_rdlock(&m->plock);
	kv = svc_key_locked(s, name);
	pthread_rwlock_unlock(&m->plock);
	return kv;
}
