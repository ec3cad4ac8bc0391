/*
 * The signer: the only module that holds PKCS#11 sessions and PINs.
 *
 * It is deliberately narrow (like OpenSSH's monitor answering a signature
 * request): a caller names a key and hands over a digest of a stated
 * algorithm and length; nothing else can be asked of it.  Its interface is
 * fixed-size messages: it runs in the signer process, as the signer's own
 * user, behind the socket pairs of src/signer_proc.c.
 *
 * Invariants:
 * - A PIN lives in this module only between reading its file and the login;
 *   the PKCS#11 layer keeps its own locked copy for re-login.
 * - Every signature is verified with the key's public key (built from the
 *   token's public-key or certificate object) before it is returned: a
 *   faulty HSM, or a public-key object that belongs to another private key,
 *   must never produce a signature that leaves this module.  The same check
 *   runs once per key at start-up, so such a key is refused there.
 * - Keys are looked up by name in a small immutable array, so signing needs
 *   no lock here; the PKCS#11 layer serialises what must be serialised.
 * - sg_signer_sign_many (a release's or grant's items) hands runs of
 *   messages for one key to the PKCS#11 layer together
 *   (sg_p11_sign_many: one worker hand-over per run), and then checks
 *   every signature exactly as sg_signer_sign does; each message passes
 *   the same checks (reserved keys refused) before any is signed, and the
 *   first failure ends the batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_note.h"
#include "sg_signer.h"
#include "sg_util.h"

#define SIGNER_MAX_TOKENS 64
#define SIGNER_MAX_KEYS   1024

struct signer_key {
	char name[SG_NAME_SIZE];
	enum sg_sig_scheme scheme;
	enum sg_key_alg alg;
	struct sg_p11_key *key;         /* owned by the p11 layer */
	struct sg_token_info token;
};

struct sg_signer {
	struct sg_p11 *p11;
	struct signer_key *keys;
	size_t nkeys;
};

/* A bounded string field of a spec: non-empty when `need`, NUL-terminated. */
static int
field_ok(const char *s, size_t cap, int need)
{
	size_t n = strnlen(s, cap);

	return n < cap && (!need || n > 0);
}

static const char *
alg_words(enum sg_key_alg alg)
{
	switch (alg) {
	case SG_ALG_ECDSA_P256: return "an ECDSA P-256 key";
	case SG_ALG_ECDSA_P384: return "an ECDSA P-384 key";
	case SG_ALG_RSA: return "an RSA key";
	case SG_ALG_ED25519: return "an Ed25519 key";
	default: return "a key of an unsupported type";
	}
}

static const char *
scheme_words(enum sg_sig_scheme scheme)
{
	switch (scheme) {
	case SG_SIG_ECDSA: return "ECDSA signatures";
	case SG_SIG_RSA_PKCS1: return "RSA PKCS#1 v1.5 signatures";
	case SG_SIG_RSA_PSS: return "RSA-PSS signatures";
	case SG_SIG_EDDSA: return "Ed25519 signatures";
	default: return "signatures of no known scheme";
	}
}

/* Describes where a key was looked for, for error messages. */
static void
key_where(const struct sg_signer_key_spec *ks, char *out, size_t outlen)
{
	char hex[2 * sizeof(ks->id) + 1], esc[2 * SG_NAME_SIZE];

	sg_hex_encode(ks->id, ks->id_len, hex);
	sg_escape(ks->label, strlen(ks->label), esc, sizeof(esc));
	if (ks->label[0] != '\0' && ks->id_len > 0)
		snprintf(out, outlen, "labelled '%s' with id %s", esc, hex);
	else if (ks->label[0] != '\0')
		snprintf(out, outlen, "labelled '%s'", esc);
	else
		snprintf(out, outlen, "with id %s", hex);
}

/* The request's shape for the key: a digest of its stated algorithm, or
 * a message for EdDSA. */
static int
sign_shape(const struct signer_key *sk, enum sg_digest_alg digest_alg,
    size_t data_len)
{
	if (sk->scheme == SG_SIG_EDDSA) {
		if (digest_alg != SG_DIGEST_NONE || data_len == 0)
			return SG_ERR_INVALID;
	} else if (sg_digest_len(digest_alg) == 0 ||
	    data_len != sg_digest_len(digest_alg))
		return SG_ERR_INVALID;
	return 0;
}

/* The HSM's signature checked with the key's public key; wiped if bad. */
static int
sign_check(const struct signer_key *sk, enum sg_digest_alg digest_alg,
    const uint8_t *data, size_t data_len, uint8_t *sig, size_t cap,
    size_t len)
{
	if (sg_verify(sg_p11_key_public(sk->key), sk->scheme, digest_alg,
	    data, data_len, sig, len) != 0) {
		explicit_bzero(sig, cap);
		sg_log_error("key '%s': the HSM returned a signature that does "
		    "not verify with the key's public key", sk->name);
		return SG_ERR_HSM;
	}
	return 0;
}

/* Checks the request shape, signs, and verifies before answering. */
static int
sign_verified(const struct signer_key *sk, enum sg_digest_alg digest_alg,
    const uint8_t *data, size_t data_len, uint8_t *sig, size_t cap,
    size_t *ret_len)
{
	size_t len = 0;
	int r;

	if ((r = sign_shape(sk, digest_alg, data_len)) != 0 ||
	    (r = sg_p11_sign(sk->key, sk->scheme, digest_alg, data, data_len,
	    sig, cap, &len)) != 0 ||
	    (r = sign_check(sk, digest_alg, data, data_len, sig, cap,
	    len)) != 0)
		return r;
	*ret_len = len;
	return 0;
}

/* One signature at start-up proves the private and public halves match. */
static int
self_test(const struct signer_key *sk)
{
	static const char probe[] = "signgate signer self-test";
	uint8_t digest[32], sig[SG_MAX_SIG];
	size_t len;

	sg_sha256(probe, sizeof(probe) - 1, digest);
	return sign_verified(sk, sk->scheme == SG_SIG_EDDSA ? SG_DIGEST_NONE :
	    SG_DIGEST_SHA256, digest, sizeof(digest), sig, sizeof(sig), &len);
}

static int
open_tokens(struct sg_signer *s, const struct sg_signer_token_spec *tokens,
    size_t ntokens, struct sg_p11_token **opened, char *errbuf,
    size_t errlen)
{
	char *pin = NULL;
	size_t i, j, pin_len = 0;
	unsigned long rv;
	int r;

	for (i = 0; i < ntokens; i++) {
		const struct sg_signer_token_spec *ts = &tokens[i];

		if (!field_ok(ts->label, sizeof(ts->label), 1) ||
		    !field_ok(ts->pin_file, sizeof(ts->pin_file), 1)) {
			return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
			    "token %zu: label and PIN file must be set", i + 1);
		}
		for (j = 0; j < i; j++) {
			if (strcmp(tokens[j].label, ts->label) == 0) {
				return sg_err_set(errbuf, errlen,
				    SG_ERR_INVALID, "token '%s' is listed "
				    "twice", ts->label);
			}
		}
		r = sg_read_secret_file(ts->pin_file, &pin, &pin_len);
		if (r == SG_ERR_PERMISSIONS) {
			return sg_err_set(errbuf, errlen, r, "PIN file %s for "
			    "token '%s' must be mode 0600 and owned by us or "
			    "root", ts->pin_file, ts->label);
		}
		if (r != 0) {
			return sg_err_set(errbuf, errlen, r, "PIN file %s for "
			    "token '%s': %s", ts->pin_file, ts->label,
			    sg_strerror(r));
		}
		r = sg_p11_open_token(s->p11, ts->label, pin, pin_len,
		    &opened[i]);
		rv = sg_p11_last_rv();
		sg_freezero(pin, pin_len + 1);
		pin = NULL;
		if (r == SG_ERR_NOT_FOUND) {
			return sg_err_set(errbuf, errlen, r, "token '%s' not "
			    "found", ts->label);
		}
		if (r == SG_ERR_PIN) {
			return sg_err_set(errbuf, errlen, r, "token '%s' "
			    "refused the PIN from %s (%s)", ts->label,
			    ts->pin_file, sg_p11_rv_name(rv));
		}
		if (r != 0) {
			return sg_err_set(errbuf, errlen, r, "token '%s': %s "
			    "(%s)", ts->label, sg_strerror(r),
			    sg_p11_rv_name(rv));
		}
	}
	return 0;
}

/* Key spec i must name a key, a token and a label or id, and a name not
 * listed before it. */
static int
key_spec_check(const struct sg_signer_key_spec *keys, size_t i, char *errbuf,
    size_t errlen)
{
	const struct sg_signer_key_spec *ks = &keys[i];
	size_t j;

	if (!field_ok(ks->name, sizeof(ks->name), 1) ||
	    !field_ok(ks->token, sizeof(ks->token), 1) ||
	    !field_ok(ks->label, sizeof(ks->label), 0) ||
	    ks->id_len > sizeof(ks->id) ||
	    (ks->label[0] == '\0' && ks->id_len == 0)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "key "
		    "%zu: name, token and a label or id must be set", i + 1);
	}
	for (j = 0; j < i; j++) {
		if (strcmp(keys[j].name, ks->name) == 0) {
			return sg_err_set(errbuf, errlen, SG_ERR_INVALID,
			    "key '%s' is listed twice", ks->name);
		}
	}
	return 0;
}

/* What sg_p11_find_key's failure r means for key spec ks. */
static int
find_key_error(const struct sg_signer_key_spec *ks, const char *where, int r,
    unsigned long rv, char *errbuf, size_t errlen)
{
	switch (r) {
	case SG_ERR_NO_KEY:
		return sg_err_set(errbuf, errlen, r, "key '%s': token '%s' has "
		    "no private key %s", ks->name, ks->token, where);
	case SG_ERR_INVALID:
		return sg_err_set(errbuf, errlen, r, "key '%s': token '%s' has "
		    "more than one private key %s", ks->name, ks->token,
		    where);
	case SG_ERR_NOT_FOUND:
		return sg_err_set(errbuf, errlen, r, "key '%s': token '%s' has "
		    "no public key or certificate for the private key %s",
		    ks->name, ks->token, where);
	case SG_ERR_MECHANISM:
		return sg_err_set(errbuf, errlen, r, "key '%s': the private "
		    "key %s is of a type signgate does not support, or may "
		    "not sign", ks->name, where);
	default:
		return sg_err_set(errbuf, errlen, r, "key '%s': %s (%s)",
		    ks->name, sg_strerror(r), sg_p11_rv_name(rv));
	}
}

/* The key found for ks must fit its scheme and pass the self-test. */
static int
key_accept(struct signer_key *sk, const struct sg_signer_key_spec *ks,
    struct sg_p11_token *tok, const char *where, char *errbuf,
    size_t errlen)
{
	int r;

	snprintf(sk->name, sizeof(sk->name), "%s", ks->name);
	sk->scheme = ks->scheme;
	sk->alg = sg_p11_key_alg(sk->key);
	sg_p11_token_info(tok, &sk->token);
	if (!sg_scheme_fits(sk->alg, sk->scheme)) {
		return sg_err_set(errbuf, errlen, SG_ERR_MECHANISM,
		    "key '%s': the private key %s on token '%s' is %s, "
		    "which cannot make %s", ks->name, where, ks->token,
		    alg_words(sk->alg), scheme_words(sk->scheme));
	}
	if ((r = self_test(sk)) == 0)
		return 0;
	if (r == SG_ERR_HSM)
		sg_err_set(errbuf, errlen, r, "key '%s': a test signature "
		    "does not verify with the public key found on token '%s' "
		    "(does it belong to another key?)", ks->name, ks->token);
	else
		sg_err_set(errbuf, errlen, r, "key '%s': test signature "
		    "failed: %s (%s)", ks->name, sg_strerror(r),
		    sg_p11_rv_name(sg_p11_last_rv()));
	return r;
}

static int
find_keys(struct sg_signer *s, const struct sg_signer_token_spec *tokens,
    size_t ntokens, struct sg_p11_token **opened,
    const struct sg_signer_key_spec *keys, size_t nkeys, char *errbuf,
    size_t errlen)
{
	char where[3 * SG_NAME_SIZE + 2 * SG_P11_ID_MAX];
	size_t i, j;
	int r;

	for (i = 0; i < nkeys; i++) {
		const struct sg_signer_key_spec *ks = &keys[i];
		struct signer_key *sk = &s->keys[i];
		struct sg_p11_token *tok = NULL;

		if ((r = key_spec_check(keys, i, errbuf, errlen)) != 0)
			return r;
		for (j = 0; j < ntokens; j++)
			if (strcmp(tokens[j].label, ks->token) == 0)
				tok = opened[j];
		if (tok == NULL) {
			return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "key "
			    "'%s': token '%s' is not configured", ks->name,
			    ks->token);
		}
		key_where(ks, where, sizeof(where));
		r = sg_p11_find_key(tok, ks->label[0] != '\0' ? ks->label :
		    NULL, ks->id, ks->id_len, &sk->key);
		if (r != 0)
			return find_key_error(ks, where, r, sg_p11_last_rv(),
			    errbuf, errlen);
		if ((r = key_accept(sk, ks, tok, where, errbuf, errlen)) != 0)
			return r;
	}
	return 0;
}

static int
reserved(const char *name)
{
	return name[0] == '@';
}

static const char *
reserved_words(const char *name)
{
	return strcmp(name, SG_SIGNER_LOG_KEY) == 0 ?
	    "the transparency log's key" : "a reserved key";
}

/*
 * No key a policy names may reach a reserved key (the log key signs
 * checkpoints only): not the same private key object, however it was
 * asked for (label, CKA_ID, URI), nor another object holding the same key
 * pair (a copy under another label), which the public keys give away.
 */
static int
check_reserved(const struct sg_signer *s,
    const struct sg_signer_key_spec *keys, char *errbuf, size_t errlen)
{
	const struct signer_key *a, *b;
	char where[3 * SG_NAME_SIZE + 2 * SG_P11_ID_MAX];
	size_t i, j;

	for (i = 0; i < s->nkeys; i++) {
		a = &s->keys[i];
		if (!reserved(a->name))
			continue;
		for (j = 0; j < s->nkeys; j++) {
			b = &s->keys[j];
			if (reserved(b->name))
				continue;
			if (sg_p11_key_same_object(a->key, b->key)) {
				key_where(&keys[j], where, sizeof(where));
				return sg_err_set(errbuf, errlen,
				    SG_ERR_FORBIDDEN, "key '%s' is %s: the "
				    "private key %s on token '%s' is its HSM "
				    "object; no policy key may use it", b->name,
				    reserved_words(a->name), where,
				    keys[j].token);
			}
			if (EVP_PKEY_eq(sg_p11_key_public(a->key),
			    sg_p11_key_public(b->key)) == 1) {
				return sg_err_set(errbuf, errlen,
				    SG_ERR_FORBIDDEN, "key '%s' is %s: its "
				    "public key is the same (another object "
				    "holding the same key pair); no policy key "
				    "may use it", b->name,
				    reserved_words(a->name));
			}
		}
	}
	return 0;
}

int
sg_signer_spec_reserved(const struct sg_signer *s,
    const struct sg_signer_key_spec *ks, char *errbuf, size_t errlen)
{
	const struct signer_key *a;
	char where[3 * SG_NAME_SIZE + 2 * SG_P11_ID_MAX];
	size_t i;

	if (s == NULL || ks == NULL || !field_ok(ks->name, sizeof(ks->name),
	    1) || !field_ok(ks->token, sizeof(ks->token), 1) ||
	    !field_ok(ks->label, sizeof(ks->label), 0) ||
	    ks->id_len > sizeof(ks->id))
		return SG_ERR_INVALID;
	for (i = 0; i < s->nkeys; i++) {
		a = &s->keys[i];
		if (!reserved(a->name) || strcmp(a->token.label,
		    ks->token) != 0)
			continue;
		if (sg_p11_key_names(a->key, ks->label, ks->id,
		    ks->id_len)) {
			key_where(ks, where, sizeof(where));
			return sg_err_set(errbuf, errlen, SG_ERR_FORBIDDEN,
			    "key '%s' is %s: the private key %s on token '%s' "
			    "is its HSM object; no policy key may use it",
			    ks->name, reserved_words(a->name), where,
			    ks->token);
		}
	}
	return 0;
}

int
sg_signer_open(const char *module_path,
    const struct sg_signer_token_spec *tokens, size_t ntokens,
    const struct sg_signer_key_spec *keys, size_t nkeys,
    struct sg_signer **ret, char *errbuf, size_t errlen)
{
	struct sg_signer *s = NULL;
	struct sg_p11_token **opened = NULL;
	unsigned long rv;
	int r = SG_ERR_INTERNAL;

	sg_err_set(errbuf, errlen, 0, "%s", "");
	if (module_path == NULL || ret == NULL ||
	    (tokens == NULL && ntokens > 0) || (keys == NULL && nkeys > 0)) {
		return sg_err_set(errbuf, errlen, SG_ERR_INVALID, "invalid "
		    "arguments");
	}
	if (ntokens > SIGNER_MAX_TOKENS || nkeys > SIGNER_MAX_KEYS) {
		return sg_err_set(errbuf, errlen, SG_ERR_TOO_LARGE, "too many "
		    "tokens or keys");
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->keys = calloc(nkeys + 1, sizeof(*s->keys))) == NULL ||
	    (opened = calloc(ntokens + 1, sizeof(*opened))) == NULL) {
		r = sg_err_set(errbuf, errlen, SG_ERR_NOMEM, "out of memory");
		goto out;
	}
	s->nkeys = nkeys;
	if ((r = sg_p11_load(module_path, &s->p11)) != 0) {
		rv = sg_p11_last_rv();
		sg_err_set(errbuf, errlen, r, "cannot load PKCS#11 module %s: "
		    "%s (%s)", module_path, sg_strerror(r), sg_p11_rv_name(rv));
		goto out;
	}
	if ((r = open_tokens(s, tokens, ntokens, opened, errbuf,
	    errlen)) != 0)
		goto out;
	if ((r = find_keys(s, tokens, ntokens, opened, keys, nkeys, errbuf,
	    errlen)) != 0)
		goto out;
	if ((r = check_reserved(s, keys, errbuf, errlen)) != 0)
		goto out;
	*ret = s;
	s = NULL;  /* transferred */
	r = 0;
out:
	free(opened);
	sg_signer_free(s);
	return r;
}

void
sg_signer_set_concurrency(struct sg_signer *s, unsigned int n)
{
	sg_p11_set_concurrency(s->p11, n);
}

void
sg_signer_free(struct sg_signer *s)
{
	if (s == NULL)
		return;
	/* Frees the tokens and keys the entries point to. */
	sg_p11_free(s->p11);
	free(s->keys);
	free(s);
}

static const struct signer_key *
key_by_name(const struct sg_signer *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->nkeys; i++)
		if (strcmp(s->keys[i].name, name) == 0)
			return &s->keys[i];
	return NULL;
}

/* The key a message may be signed with (reserved keys sign only their
 * own message type), or the status that refuses it. */
static int
msg_key(const struct sg_signer *s, const struct sg_sign_msg *msg,
    const struct signer_key **ret)
{
	if (s == NULL || msg == NULL ||
	    !field_ok(msg->key, sizeof(msg->key), 1) ||
	    msg->data_len > sizeof(msg->data))
		return SG_ERR_INVALID;
	if (msg->key[0] == '@' || (*ret = key_by_name(s, msg->key)) == NULL)
		return SG_ERR_NOT_FOUND;
	return 0;
}

void
sg_signer_sign(struct sg_signer *s, const struct sg_sign_msg *msg,
    struct sg_sign_reply *reply)
{
	const struct signer_key *sk = NULL;
	size_t len = 0;
	int r;

	memset(reply, 0, sizeof(*reply));
	if ((r = msg_key(s, msg, &sk)) != 0) {
		reply->status = r;
		return;
	}
	r = sign_verified(sk, msg->digest_alg, msg->data, msg->data_len,
	    reply->sig, sizeof(reply->sig), &len);
	if (r != 0) {
		reply->status = r;
		return;
	}
	reply->sig_len = len;
}

/*
 * msgs[from..] that go to the HSM together with msgs[from]: the same key
 * and digest algorithm, each of the right shape, at most
 * SG_P11_MANY_MAX.  0 when msgs[from] itself is refused (*ret_r says why).
 */
static size_t
many_run(const struct sg_signer *s, const struct sg_sign_msg *msgs,
    size_t from, size_t n, const struct signer_key **ret_sk, int *ret_r)
{
	const struct signer_key *sk = NULL, *k2;
	size_t i;

	if ((*ret_r = msg_key(s, &msgs[from], &sk)) != 0 ||
	    (*ret_r = sign_shape(sk, msgs[from].digest_alg,
	    msgs[from].data_len)) != 0)
		return 0;
	*ret_sk = sk;
	for (i = from + 1; i < n && i - from < SG_P11_MANY_MAX; i++)
		if (msg_key(s, &msgs[i], &k2) != 0 || k2 != sk ||
		    msgs[i].digest_alg != msgs[from].digest_alg ||
		    sign_shape(sk, msgs[i].digest_alg, msgs[i].data_len) != 0)
			break;
	return i - from;
}

/* msgs[from..from+m) signed with sk in one hand-over to the HSM, each
 * signature verified; the first failure's status, or 0. */
static int
many_sign(const struct signer_key *sk, const struct sg_sign_msg *msgs,
    struct sg_sign_reply *replies, size_t from, size_t m)
{
	struct sg_p11_item items[SG_P11_MANY_MAX];
	struct sg_sign_reply *rep;
	size_t i;
	int r;

	memset(items, 0, sizeof(items));
	for (i = 0; i < m; i++) {
		items[i].data = msgs[from + i].data;
		items[i].data_len = msgs[from + i].data_len;
		items[i].sig = replies[from + i].sig;
		items[i].cap = sizeof(replies[from + i].sig);
	}
	(void)sg_p11_sign_many(sk->key, sk->scheme, msgs[from].digest_alg,
	    items, m);
	for (i = 0, r = 0; i < m; i++) {
		rep = &replies[from + i];
		if (r != 0) {
			/* After the first failure: not attempted. */
			explicit_bzero(rep->sig, sizeof(rep->sig));
			rep->status = SG_ERR_BUFFER;
			continue;
		}
		if ((r = items[i].status) == 0)
			r = sign_check(sk, msgs[from].digest_alg, items[i].data,
			    items[i].data_len, rep->sig, sizeof(rep->sig),
			    items[i].sig_len);
		if (r != 0) {
			explicit_bzero(rep->sig, sizeof(rep->sig));
			rep->status = r;
			continue;
		}
		rep->status = 0;
		rep->sig_len = items[i].sig_len;
	}
	explicit_bzero(items, sizeof(items));
	return r;
}

void
sg_signer_sign_many(struct sg_signer *s, const struct sg_sign_msg *msgs,
    size_t n, struct sg_sign_reply *replies)
{
	const struct signer_key *sk = NULL;
	size_t i, m;
	int r = 0;

	if (replies == NULL)
		return;
	memset(replies, 0, n * sizeof(*replies));
	for (i = 0; i < n; i++)
		replies[i].status = SG_ERR_BUFFER;	/* not attempted */
	if (msgs == NULL)
		return;
	for (i = 0; i < n && r == 0; i += m) {
		if ((m = many_run(s, msgs, i, n, &sk, &r)) == 0) {
			replies[i].status = r;
			break;
		}
		r = many_sign(sk, msgs, replies, i, m);
	}
}

int
sg_signer_key_public(struct sg_signer *s, const char *name,
    EVP_PKEY **ret_pub, enum sg_key_alg *ret_alg,
    struct sg_token_info *ret_token)
{
	const struct signer_key *sk;

	if (s == NULL || name == NULL)
		return SG_ERR_INVALID;
	if ((sk = key_by_name(s, name)) == NULL)
		return SG_ERR_NOT_FOUND;
	if (ret_pub != NULL)
		*ret_pub = sg_p11_key_public(sk->key);
	if (ret_alg != NULL)
		*ret_alg = sk->alg;
	if (ret_token != NULL)
		*ret_token = sk->token;
	return 0;
}

int
sg_signer_sign_checkpoint(struct sg_signer *s, const char *origin,
    uint64_t size, const uint8_t root[SG_HASH_LEN],
    uint8_t sig[SG_ED25519_SIG])
{
	const struct signer_key *sk;
	struct sg_checkpoint cp;
	uint8_t buf[SG_MAX_SIG];
	char *text = NULL;
	size_t n = 0;
	int r;

	if (s == NULL || origin == NULL || root == NULL ||
	    strlen(origin) >= sizeof(cp.origin))
		return SG_ERR_INVALID;
	/* The log key signs checkpoints and nothing else, and only text
	 * formatted here: no caller hands in bytes to be signed. */
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
	cp.size = size;
	memcpy(cp.root, root, SG_HASH_LEN);
	if ((r = sg_checkpoint_format(&cp, &text)) != 0)
		return r;
	if ((sk = key_by_name(s, SG_SIGNER_LOG_KEY)) == NULL)
		r = SG_ERR_NOT_FOUND;
	else if (sk->scheme != SG_SIG_EDDSA)
		r = SG_ERR_MECHANISM;
	else
		r = sign_verified(sk, SG_DIGEST_NONE, (const uint8_t *)text,
		    strlen(text), buf, sizeof(buf), &n);
	free(text);
	if (r != 0)
		return r;
	if (n != SG_ED25519_SIG) {
		explicit_bzero(buf, sizeof(buf));
		return SG_ERR_HSM;
	}
	memcpy(sig, buf, SG_ED25519_SIG);
	return 0;
}
