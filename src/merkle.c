/*
 * RFC 6962 Merkle trees over SHA-256 (see include/sg_merkle.h).
 *
 * Design: the module owns no storage.  Every hash a proof needs is the root
 * of some range of leaves [lo, hi) reached by RFC 6962's recursion, and such
 * a range always starts at a multiple of the largest power of two not above
 * its length.  It is therefore the fold, right to left, of at most 63
 * complete subtrees, one per set bit of hi - lo, and those are exactly what
 * the storage callback returns.  Proofs are generated top-down from the
 * recursive definitions (the order of RFC 6962 2.1.1 and 2.1.2 is then the
 * reverse of the walk) and cost O(log n) look-ups: only one range per proof
 * can be partial, every other sibling is a single complete subtree.
 *
 * Verification is the iterative algorithm of RFC 9162 2.1.3.2 and 2.1.4.2,
 * which binds the proof length to the tree shape, so truncated, extended
 * or re-indexed proofs fail.  All sizes are below 2^63, which bounds every
 * proof by SG_MERKLE_MAX_PROOF hashes.
 *
 * Hashing fails only when libcrypto cannot allocate.  Functions with an
 * error channel return SG_ERR_NOMEM or SG_ERR_CRYPTO then (a verifier must
 * not report a fork because memory ran out); the void ones abort rather
 * than return a digest that could end up signed in a checkpoint.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sg_err.h"
#include "sg_merkle.h"

const uint8_t sg_merkle_empty_root[SG_HASH_LEN] = {
	0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
	0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
	0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
};

/*
 * One digest context and one fetched SHA-256 per operation: a proof or a
 * verification hashes up to a hundred nodes, and fetching the algorithm
 * for every node would triple the cost.
 */
struct hasher {
	EVP_MD_CTX *ctx;
	EVP_MD *md;
};

static int
hasher_init(struct hasher *h)
{
	h->md = NULL;
	if ((h->ctx = EVP_MD_CTX_new()) == NULL)
		return SG_ERR_NOMEM;
	if ((h->md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		EVP_MD_CTX_free(h->ctx);
		h->ctx = NULL;
		return SG_ERR_CRYPTO;
	}
	return 0;
}

static void
hasher_free(struct hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	h->ctx = NULL;
	h->md = NULL;
}

static int
hash_parts(struct hasher *h, uint8_t prefix, const uint8_t *a, size_t alen,
    const uint8_t *b, size_t blen, uint8_t out[SG_HASH_LEN])
{
	unsigned int olen = 0;

	if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1 ||
	    EVP_DigestUpdate(h->ctx, &prefix, 1) != 1 ||
	    (alen > 0 && EVP_DigestUpdate(h->ctx, a, alen) != 1) ||
	    (blen > 0 && EVP_DigestUpdate(h->ctx, b, blen) != 1) ||
	    EVP_DigestFinal_ex(h->ctx, out, &olen) != 1 || olen != SG_HASH_LEN)
		return SG_ERR_CRYPTO;
	return 0;
}

static int
node(struct hasher *h, const uint8_t left[SG_HASH_LEN],
    const uint8_t right[SG_HASH_LEN], uint8_t out[SG_HASH_LEN])
{
	return hash_parts(h, 0x01, left, SG_HASH_LEN, right, SG_HASH_LEN, out);
}

/* For the functions without an error channel. */
static void
hash_or_abort(uint8_t prefix, const uint8_t *a, size_t alen,
    const uint8_t *b, size_t blen, uint8_t out[SG_HASH_LEN])
{
	struct hasher h;

	if (hasher_init(&h) != 0 || hash_parts(&h, prefix, a, alen, b, blen,
	    out) != 0)
		abort();
	hasher_free(&h);
}

void
sg_merkle_leaf_hash(const uint8_t *entry, size_t len, uint8_t out[SG_HASH_LEN])
{
	hash_or_abort(0x00, entry, entry == NULL ? 0 : len, NULL, 0, out);
}

void
sg_merkle_node_hash(const uint8_t left[SG_HASH_LEN],
    const uint8_t right[SG_HASH_LEN], uint8_t out[SG_HASH_LEN])
{
	hash_or_abort(0x01, left, SG_HASH_LEN, right, SG_HASH_LEN, out);
}

/* The largest power of two strictly below n (n >= 2): RFC 6962's k. */
static uint64_t
split_point(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

static int
fetch(sg_merkle_get_fn get, void *ctx, unsigned level, uint64_t index,
    uint8_t out[SG_HASH_LEN])
{
	int r;

	if ((r = get(ctx, level, index, out)) == 0)
		return 0;
	return r < 0 ? r : SG_ERR_INTERNAL;
}

/*
 * MTH(D[lo:hi]) from complete subtrees.  The smallest subtree is the
 * rightmost, so walking the bits of hi - lo upwards folds right to left
 * without a stack.
 */
static int
range_hash(struct hasher *hs, sg_merkle_get_fn get, void *ctx, uint64_t lo,
    uint64_t hi, uint8_t out[SG_HASH_LEN])
{
	uint8_t acc[SG_HASH_LEN], h[SG_HASH_LEN];
	uint64_t n, end, start;
	unsigned level;
	int r, have = 0;

	if (lo >= hi || hi > SG_MERKLE_MAX_SIZE)
		return SG_ERR_INTERNAL;
	n = hi - lo;
	end = hi;
	for (level = 0; level < 63; level++) {
		if ((n & ((uint64_t)1 << level)) == 0)
			continue;
		start = end - ((uint64_t)1 << level);
		/* Only ranges the recursion produces are aligned like this. */
		if ((start & (((uint64_t)1 << level) - 1)) != 0)
			return SG_ERR_INTERNAL;
		if ((r = fetch(get, ctx, level, start >> level, h)) != 0)
			return r;
		if (have) {
			if ((r = node(hs, h, acc, acc)) != 0)
				return r;
		} else
			memcpy(acc, h, SG_HASH_LEN);
		have = 1;
		end = start;
	}
	memcpy(out, acc, SG_HASH_LEN);
	return 0;
}

int
sg_merkle_root(sg_merkle_get_fn get, void *ctx, uint64_t size,
    uint8_t out[SG_HASH_LEN])
{
	struct hasher hs;
	int r;

	if (get == NULL || out == NULL)
		return SG_ERR_INVALID;
	if (size > SG_MERKLE_MAX_SIZE)
		return SG_ERR_TOO_LARGE;
	if (size == 0) {
		memcpy(out, sg_merkle_empty_root, SG_HASH_LEN);
		return 0;
	}
	if ((r = hasher_init(&hs)) != 0)
		return r;
	r = range_hash(&hs, get, ctx, 0, size, out);
	hasher_free(&hs);
	return r;
}

/* Copies n hashes to out in reverse order (the walk is top-down, the
 * proofs list the deepest hash first), after `first` if there is one. */
static int
emit_reversed(uint8_t (*walk)[SG_HASH_LEN], size_t n,
    const uint8_t *first, uint8_t (*out)[SG_HASH_LEN], size_t cap,
    size_t *ret_n)
{
	size_t i, total = n + (first != NULL);

	if (total > cap)
		return SG_ERR_BUFFER;
	i = 0;
	if (first != NULL)
		memcpy(out[i++], first, SG_HASH_LEN);
	while (n > 0)
		memcpy(out[i++], walk[--n], SG_HASH_LEN);
	*ret_n = total;
	return 0;
}

int
sg_merkle_inclusion_proof(sg_merkle_get_fn get, void *ctx, uint64_t index,
    uint64_t size, uint8_t (*out)[SG_HASH_LEN], size_t cap, size_t *ret_n)
{
	uint8_t walk[SG_MERKLE_MAX_PROOF][SG_HASH_LEN];
	uint64_t lo = 0, hi = size, k;
	struct hasher hs;
	size_t n = 0;
	int r;

	if (get == NULL || (out == NULL && cap > 0) || ret_n == NULL)
		return SG_ERR_INVALID;
	if (size > SG_MERKLE_MAX_SIZE)
		return SG_ERR_TOO_LARGE;
	if (index >= size)
		return SG_ERR_INVALID;
	if ((r = hasher_init(&hs)) != 0)
		return r;
	/* PATH(m, D[lo:hi]): descend towards the leaf, keeping the sibling. */
	while (hi - lo > 1) {
		if (n == SG_MERKLE_MAX_PROOF) {
			r = SG_ERR_INTERNAL;
			goto out;
		}
		k = split_point(hi - lo);
		if (index < lo + k) {
			r = range_hash(&hs, get, ctx, lo + k, hi, walk[n]);
			hi = lo + k;
		} else {
			r = range_hash(&hs, get, ctx, lo, lo + k, walk[n]);
			lo += k;
		}
		if (r != 0)
			goto out;
		n++;
	}
	r = emit_reversed(walk, n, NULL, out, cap, ret_n);
out:
	hasher_free(&hs);
	return r;
}

int
sg_merkle_consistency_proof(sg_merkle_get_fn get, void *ctx,
    uint64_t old_size, uint64_t new_size, uint8_t (*out)[SG_HASH_LEN],
    size_t cap, size_t *ret_n)
{
	uint8_t walk[SG_MERKLE_MAX_PROOF][SG_HASH_LEN], last[SG_HASH_LEN];
	uint64_t lo = 0, hi = new_size, k;
	struct hasher hs;
	size_t n = 0;
	int r, whole = 1;

	if (get == NULL || (out == NULL && cap > 0) || ret_n == NULL)
		return SG_ERR_INVALID;
	if (new_size > SG_MERKLE_MAX_SIZE)
		return SG_ERR_TOO_LARGE;
	if (old_size == 0 || old_size > new_size)
		return SG_ERR_INVALID;
	if ((r = hasher_init(&hs)) != 0)
		return r;
	/*
	 * SUBPROOF(m, D[lo:hi], whole) with lo < m <= hi throughout; it ends
	 * when the old tree's boundary is the range's, adding that range's
	 * root unless it is the old tree itself (the verifier has that).
	 */
	while (hi != old_size) {
		if (n == SG_MERKLE_MAX_PROOF) {
			r = SG_ERR_INTERNAL;
			goto out;
		}
		k = split_point(hi - lo);
		if (old_size - lo <= k) {
			r = range_hash(&hs, get, ctx, lo + k, hi, walk[n]);
			hi = lo + k;
		} else {
			r = range_hash(&hs, get, ctx, lo, lo + k, walk[n]);
			lo += k;
			whole = 0;
		}
		if (r != 0)
			goto out;
		n++;
	}
	if (!whole && (r = range_hash(&hs, get, ctx, lo, hi, last)) != 0)
		goto out;
	r = emit_reversed(walk, n, whole ? NULL : last, out, cap, ret_n);
out:
	hasher_free(&hs);
	return r;
}

/*
 * One proof node p of RFC 9162 2.1.3.2 and 2.1.4.2, for node fn of a tree
 * whose last node is sn.  A left sibling is hashed in front of `acc` (and
 * of `first` when given: the old root of a consistency proof), a right
 * sibling after `acc`; then fn and sn climb a level, past the levels where
 * fn has no right sibling.  0 or SG_ERR_CRYPTO.
 */
static int
fold(struct hasher *hs, const uint8_t p[SG_HASH_LEN], uint64_t *fn,
    uint64_t *sn, uint8_t first[SG_HASH_LEN], uint8_t acc[SG_HASH_LEN])
{
	if ((*fn & 1) != 0 || *fn == *sn) {
		if ((first != NULL && node(hs, p, first, first) != 0) ||
		    node(hs, p, acc, acc) != 0)
			return SG_ERR_CRYPTO;
		while ((*fn & 1) == 0 && *fn != 0) {
			*fn >>= 1;
			*sn >>= 1;
		}
	} else if (node(hs, acc, p, acc) != 0)
		return SG_ERR_CRYPTO;
	*fn >>= 1;
	*sn >>= 1;
	return 0;
}

int
sg_merkle_verify_inclusion(const uint8_t leaf[SG_HASH_LEN], uint64_t index,
    uint64_t size, const uint8_t (*proof)[SG_HASH_LEN], size_t n,
    const uint8_t root[SG_HASH_LEN])
{
	uint8_t h[SG_HASH_LEN];
	struct hasher hs;
	uint64_t fn, sn;
	size_t i;
	int r;

	if (leaf == NULL || root == NULL || (proof == NULL && n > 0))
		return SG_ERR_VERIFY;
	if (size > SG_MERKLE_MAX_SIZE || index >= size ||
	    n > SG_MERKLE_MAX_PROOF)
		return SG_ERR_VERIFY;
	if ((r = hasher_init(&hs)) != 0)
		return r;
	fn = index;
	sn = size - 1;
	memcpy(h, leaf, SG_HASH_LEN);
	/* A proof longer than the path to the root is refused (i < n). */
	for (i = 0; i < n && sn != 0; i++)
		if ((r = fold(&hs, proof[i], &fn, &sn, NULL, h)) != 0)
			goto out;
	r = SG_ERR_VERIFY;
	if (i < n || sn != 0 || memcmp(h, root, SG_HASH_LEN) != 0)
		goto out;
	r = 0;
out:
	hasher_free(&hs);
	return r;
}

int
sg_merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
    const uint8_t old_root[SG_HASH_LEN], const uint8_t new_root[SG_HASH_LEN],
    const uint8_t (*proof)[SG_HASH_LEN], size_t n)
{
	uint8_t fr[SG_HASH_LEN], sr[SG_HASH_LEN];
	struct hasher hs;
	uint64_t fn, sn;
	size_t i;
	int r;

	if (old_root == NULL || new_root == NULL || (proof == NULL && n > 0))
		return SG_ERR_VERIFY;
	if (old_size == 0 || old_size > new_size ||
	    new_size > SG_MERKLE_MAX_SIZE || n > SG_MERKLE_MAX_PROOF)
		return SG_ERR_VERIFY;
	if (old_size == new_size) {
		if (n != 0 || memcmp(old_root, new_root, SG_HASH_LEN) != 0)
			return SG_ERR_VERIFY;
		return 0;
	}
	if (n == 0)
		return SG_ERR_VERIFY;
	if ((r = hasher_init(&hs)) != 0)
		return r;
	fn = old_size - 1;
	sn = new_size - 1;
	/* The old tree, when complete, is a node of the new one and the
	 * proof leaves it out: it is the starting point itself. */
	if ((old_size & (old_size - 1)) == 0) {
		memcpy(fr, old_root, SG_HASH_LEN);
		i = 0;
	} else {
		memcpy(fr, proof[0], SG_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, SG_HASH_LEN);
	while ((fn & 1) != 0) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < n && sn != 0; i++)
		if ((r = fold(&hs, proof[i], &fn, &sn, fr, sr)) != 0)
			goto out;
	r = SG_ERR_VERIFY;
	if (i < n || sn != 0 || memcmp(fr, old_root, SG_HASH_LEN) != 0 ||
	    memcmp(sr, new_root, SG_HASH_LEN) != 0)
		goto out;
	r = 0;
out:
	hasher_free(&hs);
	return r;
}

void
sg_merkle_frontier_init(struct sg_merkle_frontier *f)
{
	memset(f, 0, sizeof(*f));
}

/* The frontier holds one hash per set bit of its size, or it is corrupt. */
static int
frontier_ok(const struct sg_merkle_frontier *f)
{
	return f->size <= SG_MERKLE_MAX_SIZE &&
	    f->n == (size_t)__builtin_popcountll(f->size);
}

int
sg_merkle_frontier_append(struct sg_merkle_frontier *f,
    const uint8_t leaf[SG_HASH_LEN],
    int (*emit)(void *ctx, unsigned level, uint64_t index,
    const uint8_t hash[SG_HASH_LEN]), void *ctx)
{
	uint8_t carry[SG_HASH_LEN];
	struct hasher hs;
	uint64_t size;
	unsigned level;
	size_t top;
	int r;

	if (f == NULL || leaf == NULL)
		return SG_ERR_INVALID;
	if (!frontier_ok(f))
		return SG_ERR_INTERNAL;
	if (f->size == SG_MERKLE_MAX_SIZE)
		return SG_ERR_TOO_LARGE;
	if ((r = hasher_init(&hs)) != 0)
		return r;
	size = f->size;
	memcpy(carry, leaf, SG_HASH_LEN);
	/*
	 * Every trailing one bit of the size is a complete subtree that the
	 * new leaf's subtree now completes.  Nothing in f changes until every
	 * emit succeeded, so a failed store leaves the frontier as it was.
	 */
	top = f->n;
	for (level = 0;; level++) {
		if (emit != NULL &&
		    (r = emit(ctx, level, size >> level, carry)) != 0) {
			if (r > 0)
				r = SG_ERR_INTERNAL;
			goto out;
		}
		if ((size & ((uint64_t)1 << level)) == 0)
			break;
		if ((r = node(&hs, f->hashes[--top], carry, carry)) != 0)
			goto out;
	}
	memcpy(f->hashes[top], carry, SG_HASH_LEN);
	f->n = top + 1;
	f->size = size + 1;
	r = 0;
out:
	hasher_free(&hs);
	return r;
}

void
sg_merkle_frontier_root(const struct sg_merkle_frontier *f,
    uint8_t out[SG_HASH_LEN])
{
	struct hasher hs;
	size_t i;

	if (f->n == 0) {
		memcpy(out, sg_merkle_empty_root, SG_HASH_LEN);
		return;
	}
	if (hasher_init(&hs) != 0)
		abort();
	i = f->n - 1;
	memcpy(out, f->hashes[i], SG_HASH_LEN);
	while (i-- > 0)
		if (node(&hs, f->hashes[i], out, out) != 0)
			abort();
	hasher_free(&hs);
}

int
sg_merkle_frontier_load(struct sg_merkle_frontier *f, uint64_t size,
    sg_merkle_get_fn get, void *ctx)
{
	struct sg_merkle_frontier t;
	uint64_t start = 0;
	int level, r;

	if (f == NULL || get == NULL)
		return SG_ERR_INVALID;
	if (size > SG_MERKLE_MAX_SIZE)
		return SG_ERR_TOO_LARGE;
	memset(&t, 0, sizeof(t));
	for (level = 62; level >= 0; level--) {
		if ((size & ((uint64_t)1 << level)) == 0)
			continue;
		if ((r = fetch(get, ctx, (unsigned)level, start >> level,
		    t.hashes[t.n])) != 0)
			return r;
		t.n++;
		start += (uint64_t)1 << level;
	}
	t.size = size;
	*f = t;
	return 0;
}
