/*
 * Policy reload (SIGHUP).  The new file is validated first: it must
 * parse, differ from the running one, raise the version, keep every key
 * away from the log key, and keep the set of keys and their HSM locations
 * (the signer opened them at start: those need a restart).  Then new key
 * views are built, the text is stored (requests made under it are judged
 * by it later), and the signer process switches to it while the front
 * holds the write lock, so that no request is counted by one policy in
 * the front and signed under another.  Any failure leaves the running
 * policy in force, with the reason in errbuf.
 *
 * The new version is logged (a `policy` entry, src/service_policy.c) in
 * the switch, after the signer took it and before the front does; when
 * the running policy asks for approval of its successor, it is logged
 * pending instead and nothing switches (service_policy.c).
 *
 * Locks: pclock for the whole reload (one policy change at a time, with
 * the approvals of a pending one); plock for reading while comparing
 * with the running policy, for writing only for the switch; lock to
 * reset the ready cache.
 * Calls: keys (views, log key clash), the signer interface (key_public,
 * reload), policy, store.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_limits.h"
#include "sg_util.h"
#include "service_int.h"

/* Whether key b of the new policy is still where key a was. */
static int
key_moved(const struct sg_policy_key *a, const struct sg_policy_key *b,
    char *errbuf, size_t errlen)
{
	char ha[2 * SG_P11_ID_MAX + 1], hb[2 * SG_P11_ID_MAX + 1];

	if (strcmp(a->token, b->token) != 0) {
		snprintf(errbuf, errlen, "key '%s': token changed ('%s' to "
		    "'%s'): an HSM location changed; that needs a restart",
		    b->name, a->token, b->token);
		return SG_ERR_INVALID;
	}
	if (strcmp(a->object, b->object) != 0) {
		snprintf(errbuf, errlen, "key '%s': object changed ('%s' to "
		    "'%s'): an HSM location changed; that needs a restart",
		    b->name, a->object, b->object);
		return SG_ERR_INVALID;
	}
	if (a->id_len != b->id_len || memcmp(a->id, b->id, a->id_len) != 0) {
		sg_hex_encode(a->id, a->id_len, ha);
		sg_hex_encode(b->id, b->id_len, hb);
		snprintf(errbuf, errlen, "key '%s': id changed ('%s' to '%s'): "
		    "an HSM location changed; that needs a restart", b->name,
		    ha, hb);
		return SG_ERR_INVALID;
	}
	if (a->alg != b->alg || a->scheme != b->scheme) {
		snprintf(errbuf, errlen, "key '%s': algorithm changed (%s to "
		    "%s); that needs a restart", b->name,
		    sg_scheme_name(a->alg, a->scheme),
		    sg_scheme_name(b->alg, b->scheme));
		return SG_ERR_INVALID;
	}
	return 0;
}

/*
 * What a reload cannot apply: the signer opened every key at start, by its
 * name, token, object, id and scheme.  Says which key and which field,
 * and 0 when nothing of that kind changed.  With plock held.
 */
static int
needs_restart(const struct sg_service *s, const struct sg_policy *np,
    char *errbuf, size_t errlen)
{
	const struct sg_policy_key *a, *b;
	const struct sg_key_view *kv;
	size_t i;
	int r;

	for (i = 0; i < s->nkeys; i++) {
		a = s->keys[i].pk;
		if (sg_policy_key(np, a->name) == NULL) {
			snprintf(errbuf, errlen, "key '%s' was removed; "
			    "removing a key needs a restart", a->name);
			return SG_ERR_INVALID;
		}
	}
	for (i = 0; i < sg_policy_nkeys(np); i++) {
		b = sg_policy_key_at(np, i);
		if ((kv = svc_key_locked(s, b->name)) == NULL) {
			snprintf(errbuf, errlen, "key '%s' is new; adding a "
			    "key needs a restart", b->name);
			return SG_ERR_INVALID;
		}
		if ((r = key_moved(kv->pk, b, errbuf, errlen)) != 0)
			return r;
	}
	return 0;
}

/* Never the log key, whatever else changed: by name, or (as the signer
 * found them) by public key. */
static int
reaches_log_key(struct sg_service *s, const struct sg_policy *np,
    char *errbuf, size_t errlen)
{
	const struct sg_service_signer *sg = &s->signer;
	EVP_PKEY *logpub = NULL, *pub;
	size_t i;
	int r;

	if (sg->key_public(sg->ctx, SG_SIGNER_LOG_KEY, &logpub, NULL,
	    NULL) != 0)
		logpub = NULL;
	for (i = 0; i < sg_policy_nkeys(np); i++) {
		const struct sg_policy_key *k = sg_policy_key_at(np, i);
		if (sg->key_public(sg->ctx, k->name, &pub, NULL, NULL) != 0)
			pub = NULL;
		if ((r = svc_log_key_clash(s->cfg, k, pub, logpub, errbuf,
		    errlen)) != 0)
			return r;
	}
	return 0;
}

/* Whether new policy np may replace the running one. */
static int
validate(struct sg_service *s, const struct sg_policy *np, char *errbuf,
    size_t errlen)
{
	const char *path = s->cfg->policy_path;
	char why[SG_SIGNER_ERR_MAX + 256];
	int r;

	pthread_rwlock_rdlock(&s->plock);
	if (strcmp(sg_policy_sha256_hex(np),
	    sg_policy_sha256_hex(s->policy)) == 0) {
		snprintf(errbuf, errlen, "the policy file has not changed");
		r = SG_ERR_CONFLICT;
	} else if ((r = reaches_log_key(s, np, errbuf, errlen)) == 0 &&
	    (r = needs_restart(s, np, why, sizeof(why))) != 0)
		snprintf(errbuf, errlen, "%s: %s", path, why);
	pthread_rwlock_unlock(&s->plock);
	if (r != 0)
		return r;
	if (sg_policy_version(np) <= sg_policy_version(s->policy)) {
		snprintf(errbuf, errlen, "%s: version %llu is not above the "
		    "running version %llu", path,
		    (unsigned long long)sg_policy_version(np),
		    (unsigned long long)sg_policy_version(s->policy));
		return SG_ERR_INVALID;
	}
	return 0;
}

/* New key views (*ret, n of them), from the signer's facts and the new
 * rules; a certificate that cannot be used is refused. */
static int
new_views(struct sg_service *s, const struct sg_policy *np,
    struct sg_key_view **ret, char *errbuf, size_t errlen)
{
	struct sg_key_view *keys;
	size_t i, n = sg_policy_nkeys(np);
	char *dir = NULL;
	int r = 0;

	if ((keys = calloc(n ? n : 1, sizeof(*keys))) == NULL ||
	    (dir = sg_dirname(s->cfg->policy_path)) == NULL) {
		free(keys);
		return SG_ERR_NOMEM;
	}
	for (i = 0; i < n && r == 0; i++) {
		keys[i].pk = sg_policy_key_at(np, i);
		r = svc_key_view_fill(s, np, &keys[i], dir, NULL, 1, errbuf,
		    errlen);
	}
	free(dir);
	if (r != 0) {
		svc_keys_free(keys, n);
		return r;
	}
	*ret = keys;
	return 0;
}

/*
 * The signer takes the new policy, then `logged` records it (its log
 * entries committed, under a signed checkpoint when one can be had),
 * then the front takes it, all under the write lock: no request is
 * counted under it before the log holds it.  Takes over np, text, keys
 * and rt on success.
 */
static int
switch_to(struct sg_service *s, struct sg_policy *np, char *text,
    struct sg_key_view *keys, struct svc_retained *rt,
    int (*logged)(struct sg_service *, void *), void *arg, char *errbuf,
    size_t errlen)
{
	char why[SG_SIGNER_ERR_MAX];
	int r;

	why[0] = '\0';
	svc_async_pause(s);
	pthread_rwlock_wrlock(&s->plock);
	if ((r = s->signer.reload(s->signer.ctx, sg_policy_sha256_hex(np),
	    why, sizeof(why))) != 0) {
		pthread_rwlock_unlock(&s->plock);
		svc_async_unpause(s);
		snprintf(errbuf, errlen, "the signer process refused it: %s",
		    why[0] != '\0' ? why : sg_strerror(r));
		return r;
	}
	if ((r = logged(s, arg)) != 0) {
		/* The signer has it as its newest policy; it still judges
		 * every request by the policy its statement names. */
		pthread_rwlock_unlock(&s->plock);
		svc_async_unpause(s);
		snprintf(errbuf, errlen, "the policy could not be logged (%s); "
		    "the signer process has it, the front does not: restart "
		    "the gateway", sg_strerror(r));
		return r;
	}
	rt->policy = s->policy;
	rt->text = s->policy_text;
	rt->keys = s->keys;
	rt->nkeys = s->nkeys;
	rt->next = s->retained;
	s->retained = rt;
	s->policy = np;
	s->policy_text = text;
	s->keys = keys;
	s->nkeys = sg_policy_nkeys(np);
	pthread_mutex_lock(&s->lock);
	s->ready_at = 0;
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_unlock(&s->plock);
	svc_async_unpause(s);
	return 0;
}

/*
 * Puts np (its file's text) in force: validated against the running
 * policy, new key views, then switch_to() with `logged`.  Takes over np
 * and text on success (*np and *text set to NULL).  With pclock held.
 */
int
svc_policy_apply(struct sg_service *s, struct sg_policy **np, char **text,
    int (*logged)(struct sg_service *, void *), void *arg, char *errbuf,
    size_t errlen)
{
	struct sg_key_view *keys = NULL;
	struct svc_retained *rt = NULL;
	size_t i, n = sg_policy_nkeys(*np);
	int r;

	if ((r = validate(s, *np, errbuf, errlen)) != 0)
		return r;
	if ((rt = calloc(1, sizeof(*rt))) == NULL)
		return SG_ERR_NOMEM;
	if ((r = new_views(s, *np, &keys, errbuf, errlen)) != 0)
		goto out;
	if ((r = svc_policy_store(s, *np, *text)) != 0) {
		snprintf(errbuf, errlen, "the new policy could not be stored");
		goto out;
	}
	if ((r = switch_to(s, *np, *text, keys, rt, logged, arg, errbuf,
	    errlen)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (!keys[i].usable)
			sg_log_warn("key '%s' will not be used: %s",
			    keys[i].pk->name, keys[i].reason);
	*np = NULL;
	*text = NULL;
	keys = NULL;
	rt = NULL;
out:
	svc_keys_free(keys, n);
	free(rt);
	return r;
}

/* Whether new policy np may replace the running one (svc_policy_apply()
 * checks it again when it takes effect). */
int
svc_policy_validate(struct sg_service *s, const struct sg_policy *np,
    char *errbuf, size_t errlen)
{
	return validate(s, np, errbuf, errlen);
}

int
sg_service_reload(struct sg_service *s, char *errbuf, size_t errlen)
{
	struct sg_policy *np = NULL;
	char *text = NULL;
	int r;

	if ((r = svc_policy_read(s->cfg->policy_path, &text, &np, errbuf,
	    errlen)) != 0)
		goto out;
	pthread_mutex_lock(&s->pclock);
	r = svc_policy_reload(s, &np, &text, errbuf, errlen);
	pthread_mutex_unlock(&s->pclock);
out:
	sg_policy_free(np);
	free(text);
	return r;
}
