/*
 * The signer's policy and keys: the policy file the signer reads itself,
 * each key's certificate chain, the keys it takes from its core, and the
 * child context that holds them (sg_signer_child_new/free).
 *
 * Run by: the signer process, at set-up (src/signer_serve.c) and on a
 * RELOAD request (src/signer_proc.c); sg_signer_key_specs() also by the
 * front and the configuration check, to list what the signer must open.
 * It may call: the policy parser, the core's key_public operation, the
 * records' open and close (sg_sigrec.h, sg_witness.h).  It decides no
 * request.
 *
 * Reload: the front sends the SHA-256 it expects; the signer re-reads the
 * file and every key's certificate chain (each checked against the HSM
 * key) and installs both together or neither.  CMS signatures embed the
 * chain of the newest policy.  A cancelled request is the front's notion
 * (the signer has no store): the front never asks for one.
 *
 * Keys: the signer refuses to start when a policy key reaches the log key
 * (sg_signer_open), or when the key list the front handed over does not
 * match the policy file it read itself; a reload may not add keys, move
 * one, or name the log key's object.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_policy.h"
#include "sg_signer_child.h"
#include "sg_signer_proc.h"
#include "sg_sigrec.h"
#include "sg_util.h"
#include "sg_witness.h"
#include "signer_proc_int.h"

int
sp_key_public(struct sg_signer_child *c, const char *name,
    EVP_PKEY **ret_pub, enum sg_key_alg *ret_alg,
    struct sg_token_info *ret_token)
{
	return c->ops->key_public(c->core, name, ret_pub, ret_alg, ret_token);
}

const struct child_key *
sp_child_key(const struct sg_signer_child *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nkeys; i++)
		if (strcmp(c->keys[i].name, name) == 0)
			return &c->keys[i];
	return NULL;
}

/*
 * Reads key ck's certificate chain as policy p names it (relative to the
 * policy file's directory) and checks that it certifies the HSM key.
 * *ret is NULL when p gives the key no certificate.
 */
static int
child_read_chain(struct sg_signer_child *c, const struct sg_policy *p,
    const struct child_key *ck, char **ret, size_t *ret_len, char *err,
    size_t errlen)
{
	const struct sg_policy_key *pk = sg_policy_key(p, ck->name);
	EVP_PKEY *pub = NULL, *certkey = NULL;
	char *dir = NULL, *path = NULL, *pem = NULL;
	size_t len = 0;
	int r;

	*ret = NULL;
	*ret_len = 0;
	if (pk == NULL || pk->certificate[0] == '\0')
		return 0;
	if ((dir = sg_dirname(c->policy_path)) == NULL ||
	    (path = sg_path_join(dir, pk->certificate)) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if ((r = sg_read_file(path, SG_PEM_FILE_MAX, &pem, &len)) != 0) {
		snprintf(err, errlen, "key '%s': certificate %s: %s",
		    ck->name, path, sg_strerror(r));
		goto out;
	}
	if (sp_key_public(c, ck->name, &pub, NULL, NULL) != 0 ||
	    sg_pubkey_from_pem(pem, len, &certkey) != 0 ||
	    EVP_PKEY_eq(certkey, pub) != 1) {
		snprintf(err, errlen, "key '%s': certificate %s: its public "
		    "key is not the HSM key's", ck->name, path);
		r = SG_ERR_VERIFY;
		goto out;
	}
	*ret = pem;
	*ret_len = len;
	pem = NULL;
	r = 0;
out:
	EVP_PKEY_free(certkey);
	free(pem);
	free(path);
	free(dir);
	return r;
}

static void
spec_of(const struct sg_policy_key *pk, struct sg_signer_key_spec *ks)
{
	memset(ks, 0, sizeof(*ks));
	snprintf(ks->name, sizeof(ks->name), "%s", pk->name);
	snprintf(ks->token, sizeof(ks->token), "%s", pk->token);
	snprintf(ks->label, sizeof(ks->label), "%s", pk->object);
	memcpy(ks->id, pk->id, pk->id_len);
	ks->id_len = pk->id_len;
	ks->scheme = pk->scheme;
}

static int
same_spec(const struct sg_signer_key_spec *a,
    const struct sg_signer_key_spec *b)
{
	return strcmp(a->token, b->token) == 0 &&
	    strcmp(a->label, b->label) == 0 && a->id_len == b->id_len &&
	    memcmp(a->id, b->id, a->id_len) == 0 && a->scheme == b->scheme;
}

/*
 * A reloaded policy keeps the keys opened at start where they were: no
 * key may be added or moved (that needs a restart, which checks keys in
 * full), and none may name the log key's object.
 */
static int
child_check_reload(struct sg_signer_child *c, const struct sg_policy *p,
    char *err, size_t errlen)
{
	const struct sg_policy_key *pk;
	struct sg_signer_key_spec ks;
	const struct child_key *ck;
	size_t i;
	int r;

	for (i = 0; i < sg_policy_nkeys(p); i++) {
		pk = sg_policy_key_at(p, i);
		spec_of(pk, &ks);
		if ((r = c->ops->spec_reserved(c->core, &ks, err,
		    errlen)) != 0)
			return r;
		if ((ck = sp_child_key(c, pk->name)) == NULL) {
			snprintf(err, errlen, "key '%s' was not opened at "
			    "start: adding a key needs a restart", pk->name);
			return SG_ERR_INVALID;
		}
		if (!same_spec(&ck->spec, &ks)) {
			snprintf(err, errlen, "key '%s': its HSM location "
			    "changed: that needs a restart", pk->name);
			return SG_ERR_INVALID;
		}
	}
	return 0;
}

/* Reads and parses the policy file; with expect, only a file with that
 * SHA-256 (SG_ERR_CONFLICT otherwise). */
static int
child_read_policy(struct sg_signer_child *c, const char *expect,
    struct sg_policy **ret, char *err, size_t errlen)
{
	struct sg_policy *p = NULL;
	char *text = NULL;
	size_t len;
	int r;

	*ret = NULL;
	if ((r = sg_read_file(c->policy_path, SG_POLICY_MAX_SIZE, &text,
	    &len)) != 0) {
		snprintf(err, errlen, "%s: %s", c->policy_path, sg_strerror(r));
		return r;
	}
	r = sg_policy_parse(c->policy_path, text, len, &p, err, errlen);
	free(text);
	if (r != 0)
		return r;
	if (expect != NULL && strcmp(sg_policy_sha256_hex(p), expect) != 0) {
		snprintf(err, errlen, "the policy file now has sha256:%s",
		    sg_policy_sha256_hex(p));
		sg_policy_free(p);
		return SG_ERR_CONFLICT;
	}
	*ret = p;
	return 0;
}

/*
 * Makes p the newest policy and chains[] the keys' chains (the old chains
 * come back in chains[]); *p is taken unless it is already the newest.
 */
static int
child_install_policy(struct sg_signer_child *c, const char *expect,
    struct sg_policy **p, char **chains, size_t *lens, char *err,
    size_t errlen)
{
	char *old;
	size_t i;

	pthread_mutex_lock(&c->lock);
	/* A front (re)connecting to a listening signer asks for the file it
	 * read; if that is the newest one here, nothing changes. */
	if (expect != NULL && c->npolicies > 0 &&
	    strcmp(sg_policy_sha256_hex(c->policies[0]), expect) == 0) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	/* Policies are never freed while signing threads may use them. */
	if (c->npolicies == MAX_POLICIES) {
		pthread_mutex_unlock(&c->lock);
		snprintf(err, errlen, "%d policies loaded since start: restart "
		    "the daemon", MAX_POLICIES);
		return SG_ERR_TOO_LARGE;
	}
	for (i = c->npolicies; i > 0; i--)
		c->policies[i] = c->policies[i - 1];
	c->policies[0] = *p;
	c->npolicies++;
	*p = NULL;
	/* Signing threads copy a chain under the lock. */
	for (i = 0; i < c->nkeys; i++) {
		old = c->keys[i].chain_pem;
		c->keys[i].chain_pem = chains[i];
		c->keys[i].chain_len = lens[i];
		chains[i] = old;
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Loads (or reloads) the policy file; the newest is first.  With
 * expect, only a file with that SHA-256 is installed.  Once the keys are
 * open (a reload), every key's certificate chain is read again from the
 * new policy and checked: the new policy and the new chains are installed
 * together, or nothing is. */
int
sp_load_policy(struct sg_signer_child *c, const char *expect, char *err,
    size_t errlen)
{
	struct sg_policy *p = NULL;
	char **chains = NULL;
	size_t i, *lens = NULL;
	int r;

	if ((r = child_read_policy(c, expect, &p, err, errlen)) != 0)
		return r;
	if (expect != NULL && (r = child_check_reload(c, p, err,
	    errlen)) != 0)
		goto out;
	if (c->nkeys > 0 && ((chains = calloc(c->nkeys,
	    sizeof(*chains))) == NULL || (lens = calloc(c->nkeys,
	    sizeof(*lens))) == NULL)) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < c->nkeys; i++)
		if ((r = child_read_chain(c, p, &c->keys[i], &chains[i],
		    &lens[i], err, errlen)) != 0)
			goto out;
	r = child_install_policy(c, expect, &p, chains, lens, err, errlen);
out:
	for (i = 0; chains != NULL && i < c->nkeys; i++)
		free(chains[i]);
	free(chains);
	free(lens);
	sg_policy_free(p);
	return r;
}

int
sp_open_keys(struct sg_signer_child *c,
    const struct sg_signer_key_spec *keys, size_t nkeys, char *err,
    size_t errlen)
{
	size_t i;

	if ((c->keys = calloc(nkeys ? nkeys : 1, sizeof(*c->keys))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < nkeys; i++) {
		struct child_key *ck = &c->keys[c->nkeys++];
		const struct sg_policy_key *pk;
		EVP_PKEY *pub;
		uint8_t spki[32];

		snprintf(ck->name, sizeof(ck->name), "%s", keys[i].name);
		ck->spec = keys[i];
		if (sp_key_public(c, ck->name, &pub, NULL, NULL) == 0 &&
		    sg_pubkey_spki_sha256(pub, spki) == 0)
			sg_hex_encode(spki, sizeof(spki), ck->spki_hex);
		pk = sg_policy_key(c->policies[0], ck->name);
		if (ck->name[0] != '@') {
			/* The front's key list must be the policy's. */
			struct sg_signer_key_spec ks;
			if (pk != NULL)
				spec_of(pk, &ks);
			if (pk == NULL || !same_spec(&ks, &keys[i])) {
				snprintf(err, errlen, "key '%s': not where the "
				    "policy file %s puts it", ck->name,
				    c->policy_path);
				return SG_ERR_INVALID;
			}
		}
		/* At start a bad chain only disables CMS for the key (the
		 * front marks it unusable); a reload refuses one. */
		if (child_read_chain(c, c->policies[0], ck, &ck->chain_pem,
		    &ck->chain_len, err, errlen) != 0)
			sg_log_warn("signer: %s", err);
	}
	err[0] = '\0';
	return 0;
}

/* The policy and the records, before the core is open: they belong to
 * the signer's user, and the policy decides which keys to open. */
int
sp_child_init(struct sg_signer_child *c, const char *policy_path,
    const char *log_origin, const char *state_dir, char *err,
    size_t errlen)
{
	int r;

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	if ((c->policy_path = strdup(policy_path)) == NULL ||
	    (c->log_origin = strdup(log_origin)) == NULL)
		return SG_ERR_NOMEM;
	if ((r = sp_load_policy(c, NULL, err, errlen)) != 0 ||
	    (r = sg_sigrec_open(state_dir, &c->rec, err, errlen)) != 0 ||
	    (r = sg_witness_open(state_dir, log_origin, &c->witness, err,
	    errlen)) != 0)
		return r;
	return 0;
}

int
sg_signer_child_new(const struct sg_signer_ops *ops, void *core,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    const char *policy_path, const char *log_origin, const char *state_dir,
    struct sg_signer_child **ret, char *errbuf, size_t errlen)
{
	struct sg_signer_child *c;
	int r;

	*ret = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = sp_child_init(c, policy_path, log_origin, state_dir, errbuf,
	    errlen)) == 0) {
		c->ops = ops;
		c->core = core;
		r = sp_open_keys(c, keys, nkeys, errbuf, errlen);
	}
	if (r != 0) {
		sg_signer_child_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

void
sg_signer_child_free(struct sg_signer_child *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->npolicies; i++)
		sg_policy_free(c->policies[i]);
	for (i = 0; i < c->nkeys; i++)
		free(c->keys[i].chain_pem);
	free(c->keys);
	sg_sigrec_close(c->rec);
	sg_witness_free(c->witness);
	free(c->policy_path);
	free(c->log_origin);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int
sg_signer_key_specs(const struct sg_policy *p, const char *log_token,
    const char *log_key, struct sg_signer_key_spec **ret, size_t *ret_n)
{
	struct sg_signer_key_spec *specs;
	size_t i, n = sg_policy_nkeys(p);

	if ((specs = calloc(n + 1, sizeof(*specs))) == NULL)
		return SG_ERR_NOMEM;
	for (i = 0; i < n; i++) {
		const struct sg_policy_key *pk = sg_policy_key_at(p, i);
		snprintf(specs[i].name, sizeof(specs[i].name), "%s", pk->name);
		snprintf(specs[i].token, sizeof(specs[i].token), "%s",
		    pk->token);
		snprintf(specs[i].label, sizeof(specs[i].label), "%s",
		    pk->object);
		memcpy(specs[i].id, pk->id, pk->id_len);
		specs[i].id_len = pk->id_len;
		specs[i].scheme = pk->scheme;
	}
	snprintf(specs[n].name, sizeof(specs[n].name), "%s",
	    SG_SIGNER_LOG_KEY);
	snprintf(specs[n].token, sizeof(specs[n].token), "%s", log_token);
	snprintf(specs[n].label, sizeof(specs[n].label), "%s", log_key);
	specs[n].scheme = SG_SIG_EDDSA;
	*ret = specs;
	*ret_n = n + 1;
	return 0;
}
