/*
 * Test logs for the witness: a throwaway Ed25519 log key, a tree whose
 * leaf i is "leaf <i>" (or "fork <i>" from a chosen index on, to make a
 * fork), signed checkpoints of it and C2SP tlog-witness add-checkpoint
 * bodies, all made with the project's own log code (sg_merkle.h,
 * sg_note.h).  Header only: included by tests/unit/test_witnessd.c and
 * tests/tools/witness_log.c.
 */
#ifndef WITNESS_FIXTURE_H
#define WITNESS_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_util.h"

struct wf_log {
	EVP_PKEY *key;
	uint8_t pub[SG_ED25519_PUB];
	char origin[SG_NOTE_NAME_MAX + 1];
	uint32_t id;
	uint64_t fork_at;              /* leaves from here differ; UINT64_MAX: none */
};

static int
wf_log_init(struct wf_log *l, EVP_PKEY *key, const char *origin)
{
	size_t len = SG_ED25519_PUB;

	memset(l, 0, sizeof(*l));
	if (key == NULL || EVP_PKEY_get_raw_public_key(key, l->pub,
	    &len) != 1 || len != SG_ED25519_PUB)
		return -1;
	l->key = key;
	snprintf(l->origin, sizeof(l->origin), "%s", origin);
	l->id = sg_note_key_id(origin, l->pub);
	l->fork_at = UINT64_MAX;
	return 0;
}

/* The hash of the complete subtree (level, index), recomputed. */
static int
wf_subtree(void *ctx, unsigned level, uint64_t index,
    uint8_t out[SG_HASH_LEN])
{
	const struct wf_log *l = ctx;
	uint8_t a[SG_HASH_LEN], b[SG_HASH_LEN];
	char leaf[64];
	int n;

	if (level == 0) {
		n = snprintf(leaf, sizeof(leaf), "%s %llu",
		    index >= l->fork_at ? "fork" : "leaf",
		    (unsigned long long)index);
		sg_merkle_leaf_hash((const uint8_t *)leaf, (size_t)n, out);
		return 0;
	}
	if (wf_subtree(ctx, level - 1, index * 2, a) != 0 ||
	    wf_subtree(ctx, level - 1, index * 2 + 1, b) != 0)
		return -1;
	sg_merkle_node_hash(a, b, out);
	return 0;
}

/* The checkpoint of the first size leaves, signed: malloc'd. */
static char *
wf_note(struct wf_log *l, uint64_t size)
{
	struct sg_checkpoint cp;
	EVP_MD_CTX *ctx;
	uint8_t sig[SG_ED25519_SIG];
	size_t sl = sizeof(sig), n;
	char *text = NULL, *line = NULL, *note = NULL;

	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", l->origin);
	cp.size = size;
	if (sg_merkle_root(wf_subtree, l, size, cp.root) != 0 ||
	    sg_checkpoint_format(&cp, &text) != 0)
		return NULL;
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, NULL, NULL, l->key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sl, (const uint8_t *)text,
	    strlen(text)) != 1 ||
	    sg_note_signature_line(l->origin, l->id, sig, &line) != 0)
		goto out;
	n = strlen(text) + 1 + strlen(line) + 1;
	if ((note = malloc(n)) != NULL)
		snprintf(note, n, "%s\n%s", text, line);
out:
	EVP_MD_CTX_free(ctx);
	free(text);
	free(line);
	return note;
}

/* "old <old>\n", the consistency proof old -> size, "\n", the signed
 * checkpoint of size: malloc'd. */
static char *
wf_body(struct wf_log *l, uint64_t old, uint64_t size)
{
	uint8_t proof[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	size_t np = 0, i, cap, off;
	char *note, *body, *b64;

	if (old > 0 && old <= size && sg_merkle_consistency_proof(wf_subtree,
	    l, old, size, proof, SG_MERKLE_MAX_PROOF, &np) != 0)
		return NULL;
	if ((note = wf_note(l, size)) == NULL)
		return NULL;
	cap = 32 + np * 46 + strlen(note) + 1;
	if ((body = malloc(cap)) == NULL) {
		free(note);
		return NULL;
	}
	off = (size_t)snprintf(body, cap, "old %llu\n",
	    (unsigned long long)old);
	for (i = 0; i < np; i++) {
		if ((b64 = sg_b64_encode(proof[i], SG_HASH_LEN)) == NULL)
			abort();
		off += (size_t)snprintf(body + off, cap - off, "%s\n", b64);
		free(b64);
	}
	snprintf(body + off, cap - off, "\n%s", note);
	free(note);
	return body;
}

#endif
