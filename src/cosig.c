/*
 * Witness cosignatures (see include/sg_cosig.h).
 *
 * Built on the signed-note code (sg_note.h): the key ID and vkey are the
 * signed-note ones with type byte 0x04, a cosignature line is a signature
 * line whose bytes carry a time before the signature, and verification
 * walks the note's signature lines with the same strict parser as
 * sg_note_verify().  Only the signed message differs: it is not the note
 * text but "cosignature/v1\ntime <t>\n" before it, so that a cosignature
 * can never be mistaken for a log's signature and says when the witness
 * made it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_cosig.h"
#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_note.h"

static const char header[] = "cosignature/v1\ntime ";

uint32_t
sg_cosig_key_id(const char *name, const uint8_t pub[SG_ED25519_PUB])
{
	return sg_note_key_id_typed(name, SG_COSIG_TYPE, pub);
}

int
sg_cosig_vkey_format(const char *name, const uint8_t pub[SG_ED25519_PUB],
    char **ret)
{
	return sg_note_vkey_format_typed(name, SG_COSIG_TYPE, pub, ret);
}

int
sg_cosig_vkey_parse(const char *vkey, char ret_name[SG_NOTE_NAME_MAX + 1],
    uint32_t *ret_id, uint8_t ret_pub[SG_ED25519_PUB])
{
	return sg_note_vkey_parse_typed(vkey, SG_COSIG_TYPE, ret_name, ret_id,
	    ret_pub);
}

int
sg_cosig_message(const char *text, size_t len, uint64_t t, char **ret,
    size_t *ret_len)
{
	char *buf;
	size_t cap;
	int n;

	if (text == NULL || ret == NULL || ret_len == NULL ||
	    t > SG_COSIG_TIME_MAX || len == 0 || len > SG_NOTE_MAX ||
	    text[len - 1] != '\n')
		return SG_ERR_INVALID;
	cap = sizeof(header) + 20 + 1 + len + 1;
	if ((buf = malloc(cap)) == NULL)
		return SG_ERR_NOMEM;
	n = snprintf(buf, cap, "%s%llu\n", header, (unsigned long long)t);
	if (n < 0 || (size_t)n + len + 1 > cap) {
		free(buf);
		return SG_ERR_INTERNAL;
	}
	memcpy(buf + n, text, len);
	buf[n + len] = '\0';
	*ret = buf;
	*ret_len = (size_t)n + len;
	return 0;
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

int
sg_cosig_line(const char *name, uint32_t id, uint64_t t,
    const uint8_t sig[SG_ED25519_SIG], char **ret)
{
	uint8_t raw[SG_COSIG_RAW_LEN];

	if (sig == NULL || t > SG_COSIG_TIME_MAX)
		return SG_ERR_INVALID;
	put_be32(raw, id);
	put_be32(raw + 4, (uint32_t)(t >> 32));
	put_be32(raw + 8, (uint32_t)t);
	memcpy(raw + 12, sig, SG_ED25519_SIG);
	return sg_note_signature_line_raw(name, raw, sizeof(raw), ret);
}

int
sg_cosig_sign(EVP_PKEY *key, const char *name, const char *text, size_t len,
    uint64_t t, char **ret)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t pub[SG_ED25519_PUB], sig[SG_ED25519_SIG];
	size_t plen = sizeof(pub), slen = sizeof(sig), mlen = 0;
	char *msg = NULL;
	int r;

	if (key == NULL || name == NULL || ret == NULL)
		return SG_ERR_INVALID;
	if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(key, pub, &plen) != 1 ||
	    plen != sizeof(pub))
		return SG_ERR_MECHANISM;
	if ((r = sg_cosig_message(text, len, t, &msg, &mlen)) != 0)
		return r;
	r = SG_ERR_CRYPTO;
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		r = SG_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(ctx, sig, &slen, (const uint8_t *)msg, mlen) != 1 ||
	    slen != sizeof(sig))
		goto out;
	r = sg_cosig_line(name, sg_cosig_key_id(name, pub), t, sig, ret);
out:
	EVP_MD_CTX_free(ctx);
	free(msg);
	return r;
}

struct verify_ctx {
	const char *note;
	const char *name;
	uint32_t id;
	EVP_PKEY *pub;
	int found;
	uint64_t latest;
};

static int
verify_line(void *arg, const char *name, size_t nlen, const uint8_t *raw,
    size_t rawlen, size_t text_len)
{
	struct verify_ctx *c = arg;
	char *msg = NULL;
	size_t mlen = 0;
	uint64_t t;
	int r;

	if (!sg_note_sig_by(name, nlen, raw, c->name, c->id))
		return 0;
	/* Our name and key ID: it must be a good cosignature, or the note
	 * carries a forgery in our name. */
	if (rawlen != SG_COSIG_RAW_LEN)
		return SG_ERR_VERIFY;
	t = (uint64_t)get_be32(raw + 4) << 32 | get_be32(raw + 8);
	if (t > SG_COSIG_TIME_MAX)
		return SG_ERR_VERIFY;
	if ((r = sg_cosig_message(c->note, text_len, t, &msg, &mlen)) != 0)
		return r;
	r = sg_verify(c->pub, SG_SIG_EDDSA, SG_DIGEST_NONE,
	    (const uint8_t *)msg, mlen, raw + 12, SG_ED25519_SIG);
	free(msg);
	if (r != 0)
		return SG_ERR_VERIFY;
	if (!c->found || t > c->latest)
		c->latest = t;
	c->found = 1;
	return 0;
}

int
sg_cosig_verify(const char *note, size_t len, const char *name, uint32_t id,
    const uint8_t pub[SG_ED25519_PUB], uint64_t *ret_t)
{
	struct verify_ctx c;
	size_t text_len = 0;
	int r;

	if (note == NULL || name == NULL || pub == NULL || ret_t == NULL)
		return SG_ERR_INVALID;
	memset(&c, 0, sizeof(c));
	c.note = note;
	c.name = name;
	c.id = id;
	if ((c.pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
	    SG_ED25519_PUB)) == NULL)
		return SG_ERR_VERIFY;  /* not a point: nothing verifies */
	r = sg_note_signatures(note, len, verify_line, &c, &text_len);
	EVP_PKEY_free(c.pub);
	if (r != 0)
		return r;
	if (!c.found)
		return SG_ERR_VERIFY;
	*ret_t = c.latest;
	return 0;
}
