/*
 * The witness's cosigning key (see include/sg_witnessd.h): an Ed25519
 * private key from a PEM file, or one on a PKCS#11 token through the
 * project's PKCS#11 layer (sg_p11.h), which signs with CKM_EDDSA.
 *
 * A file key must be mode 0600 and owned by the witness's user or root
 * (sg_read_secret_file_max); its bytes are wiped once parsed.  A token's
 * PIN file obeys the same rule and is wiped once the token is open; the
 * private key never leaves the token.  Both give the same cosignature: the
 * message (sg_cosig_message) signed with pure Ed25519, in a line whose key
 * ID comes from the public key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sg_cosig.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_p11.h"
#include "sg_util.h"
#include "sg_witnessd.h"

#define KEY_FILE_MAX (16 * 1024)

struct sg_wd_key {
	EVP_PKEY *pkey;                /* a file's key, or NULL */
	struct sg_p11 *p11;            /* a token's, or NULL */
	struct sg_p11_key *p11key;
	uint8_t pub[SG_ED25519_PUB];
};

int
sg_wd_load_key(const char *path, EVP_PKEY **ret, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	BIO *bio = NULL;
	char *pem = NULL;
	size_t len = 0;
	int r;

	r = sg_read_secret_file_max(path, KEY_FILE_MAX, &pem, &len);
	if (r == SG_ERR_PERMISSIONS)
		return sg_err_set(err, errlen, r, "%s: group or others may "
		    "read it, or it is not ours: it must be mode 0600, owned "
		    "by the witness's user", path);
	if (r != 0)
		return sg_err_set(err, errlen, r, "%s: cannot read: %s", path,
		    sg_strerror(r));
	if ((bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	/* No passphrase: the file's mode and owner protect it. */
	key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	if (key == NULL) {
		r = sg_err_set(err, errlen, SG_ERR_INVALID, "%s: not a PEM "
		    "private key without a passphrase", path);
		goto out;
	}
	if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
		r = sg_err_set(err, errlen, SG_ERR_MECHANISM, "%s: not an "
		    "Ed25519 key (make one with `openssl genpkey -algorithm "
		    "ed25519`)", path);
		goto out;
	}
	*ret = key;
	key = NULL;
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(key);
	sg_freezero(pem, len);
	return r;
}

int
sg_wd_key_from_pkey(EVP_PKEY *pkey, struct sg_wd_key **ret)
{
	struct sg_wd_key *k;
	size_t plen = SG_ED25519_PUB;

	if (pkey == NULL || EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
		return SG_ERR_MECHANISM;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return SG_ERR_NOMEM;
	if (EVP_PKEY_get_raw_public_key(pkey, k->pub, &plen) != 1 ||
	    plen != SG_ED25519_PUB) {
		free(k);
		return SG_ERR_CRYPTO;
	}
	if (EVP_PKEY_up_ref(pkey) != 1) {
		free(k);
		return SG_ERR_CRYPTO;
	}
	k->pkey = pkey;
	*ret = k;
	return 0;
}

static int
open_token(const struct sg_wd_config *cfg, struct sg_wd_key *k, char *err,
    size_t errlen)
{
	struct sg_p11_token *tok = NULL;
	EVP_PKEY *pub;
	char *pin = NULL;
	size_t pin_len = 0, plen = SG_ED25519_PUB;
	unsigned long rv;
	int r;

	if ((r = sg_p11_load(cfg->p11_module, &k->p11)) != 0)
		return sg_err_set(err, errlen, r, "pkcs11.module %s: cannot "
		    "load it: %s", cfg->p11_module, sg_strerror(r));
	r = sg_read_secret_file(cfg->p11_pin_file, &pin, &pin_len);
	if (r == SG_ERR_PERMISSIONS)
		return sg_err_set(err, errlen, r, "pkcs11.pin_file %s: must be "
		    "mode 0600 and owned by the witness's user or root",
		    cfg->p11_pin_file);
	if (r != 0)
		return sg_err_set(err, errlen, r, "pkcs11.pin_file %s: %s",
		    cfg->p11_pin_file, sg_strerror(r));
	r = sg_p11_open_token(k->p11, cfg->p11_token, pin, pin_len, &tok);
	rv = sg_p11_last_rv();
	sg_freezero(pin, pin_len + 1);
	if (r == SG_ERR_NOT_FOUND)
		return sg_err_set(err, errlen, r, "pkcs11.token '%s': not "
		    "found", cfg->p11_token);
	if (r == SG_ERR_PIN)
		return sg_err_set(err, errlen, r, "pkcs11.token '%s' refused "
		    "the PIN from %s (%s)", cfg->p11_token, cfg->p11_pin_file,
		    sg_p11_rv_name(rv));
	if (r != 0)
		return sg_err_set(err, errlen, r, "pkcs11.token '%s': %s (%s)",
		    cfg->p11_token, sg_strerror(r), sg_p11_rv_name(rv));
	if ((r = sg_p11_find_key(tok, cfg->p11_key, NULL, 0,
	    &k->p11key)) != 0)
		return sg_err_set(err, errlen, r, "pkcs11.key '%s' on token "
		    "'%s': %s", cfg->p11_key, cfg->p11_token, sg_strerror(r));
	if (sg_p11_key_alg(k->p11key) != SG_ALG_ED25519 ||
	    (pub = sg_p11_key_public(k->p11key)) == NULL ||
	    EVP_PKEY_get_raw_public_key(pub, k->pub, &plen) != 1 ||
	    plen != SG_ED25519_PUB)
		return sg_err_set(err, errlen, SG_ERR_MECHANISM, "pkcs11.key "
		    "'%s' on token '%s': not an Ed25519 key", cfg->p11_key,
		    cfg->p11_token);
	return 0;
}

int
sg_wd_key_open(const struct sg_wd_config *cfg, struct sg_wd_key **ret,
    char *err, size_t errlen)
{
	struct sg_wd_key *k;
	EVP_PKEY *pkey = NULL;
	int r;

	if (cfg->key_file != NULL) {
		if ((r = sg_wd_load_key(cfg->key_file, &pkey, err,
		    errlen)) != 0)
			return r;
		r = sg_wd_key_from_pkey(pkey, ret);
		EVP_PKEY_free(pkey);
		return r;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = open_token(cfg, k, err, errlen)) != 0) {
		sg_wd_key_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

void
sg_wd_key_public(const struct sg_wd_key *k, uint8_t pub[SG_ED25519_PUB])
{
	memcpy(pub, k->pub, SG_ED25519_PUB);
}

int
sg_wd_key_cosign(struct sg_wd_key *k, const char *name, const char *text,
    size_t len, uint64_t t, char **ret)
{
	uint8_t sig[SG_ED25519_SIG];
	size_t mlen = 0, slen = 0;
	char *msg = NULL;
	int r;

	if (k->pkey != NULL)
		return sg_cosig_sign(k->pkey, name, text, len, t, ret);
	if ((r = sg_cosig_message(text, len, t, &msg, &mlen)) != 0)
		return r;
	r = sg_p11_sign(k->p11key, SG_SIG_EDDSA, SG_DIGEST_NONE,
	    (const uint8_t *)msg, mlen, sig, sizeof(sig), &slen);
	free(msg);
	if (r != 0)
		return r;
	if (slen != SG_ED25519_SIG)
		return SG_ERR_HSM;
	return sg_cosig_line(name, sg_cosig_key_id(name, k->pub), t, sig, ret);
}

void
sg_wd_key_free(struct sg_wd_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	/* The token's objects are the module's: freed with it. */
	sg_p11_free(k->p11);
	free(k);
}
