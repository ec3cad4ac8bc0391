/*
 * Tests for the RFC 6962 Merkle tree: the published vectors (roots,
 * inclusion and consistency proofs), proofs compared with a recursive
 * reference written straight from RFC 6962's definitions for every index
 * and size pair up to 64 leaves, verification
 * against every kind of tampering, the frontier, and the number of storage
 * look-ups a proof costs at ten million leaves.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_test.h"
#include "sg_fixture.h"

#define MAXN 64
#define H SG_HASH_LEN

/* ---- an in-memory store of every complete subtree hash ---- */

struct store {
	uint8_t (*lv[64])[H];
	uint64_t count[64];
	uint64_t cap[64];
	unsigned long gets;
	int fail_get;          /* get returns this when non-zero */
	int order_ok;          /* every emit came in append order */
};

static void
store_init(struct store *s)
{
	memset(s, 0, sizeof(*s));
	s->order_ok = 1;
}

static void
store_free(struct store *s)
{
	int i;

	for (i = 0; i < 64; i++)
		free(s->lv[i]);
	memset(s, 0, sizeof(*s));
}

static int
store_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[H])
{
	struct store *s = ctx;

	if (level >= 64)
		return SG_ERR_INTERNAL;
	/* Hashes of one level are completed left to right, once each. */
	if (index != s->count[level]) {
		s->order_ok = 0;
		return SG_ERR_INTERNAL;
	}
	if (s->count[level] == s->cap[level]) {
		uint64_t nc = s->cap[level] ? s->cap[level] * 2 : 16;
		void *p = realloc(s->lv[level], nc * H);
		if (p == NULL)
			return SG_ERR_NOMEM;
		s->lv[level] = p;
		s->cap[level] = nc;
	}
	memcpy(s->lv[level][index], hash, H);
	s->count[level]++;
	return 0;
}

static int
store_get(void *ctx, unsigned level, uint64_t index, uint8_t out[H])
{
	struct store *s = ctx;

	s->gets++;
	if (s->fail_get != 0)
		return s->fail_get;
	if (level >= 64 || index >= s->count[level])
		return SG_ERR_NOT_FOUND;
	memcpy(out, s->lv[level][index], H);
	return 0;
}

/* ---- leaves ---- */

static void
test_leaf(unsigned i, uint8_t out[H])
{
	uint8_t data[8];

	/* Distinct, and of varying length. */
	memset(data, (int)(i * 37 + 1), sizeof(data));
	data[0] = (uint8_t)i;
	sg_merkle_leaf_hash(data, 1 + i % 8, out);
}

static uint8_t leaves[MAXN][H];
static struct store big;          /* all complete subtrees of MAXN leaves */

static void
build_big(void)
{
	struct sg_merkle_frontier f;
	unsigned i;

	if (big.count[0] == MAXN)
		return;
	store_init(&big);
	sg_merkle_frontier_init(&f);
	for (i = 0; i < MAXN; i++) {
		test_leaf(i, leaves[i]);
		if (sg_merkle_frontier_append(&f, leaves[i], store_emit,
		    &big) != 0)
			abort();
	}
}

/* ---- the reference, straight from RFC 6962 2.1 ---- */

static uint64_t
ref_k(uint64_t n)
{
	uint64_t k = 1;

	while (k * 2 < n)
		k *= 2;
	return k;
}

static void
ref_mth(uint64_t lo, uint64_t hi, uint8_t out[H])
{
	uint8_t l[H], r[H];
	uint64_t k;

	if (hi - lo == 1) {
		memcpy(out, leaves[lo], H);
		return;
	}
	k = ref_k(hi - lo);
	ref_mth(lo, lo + k, l);
	ref_mth(lo + k, hi, r);
	sg_merkle_node_hash(l, r, out);
}

/* PATH(m, D[lo:hi]), m relative to lo. */
static void
ref_path(uint64_t m, uint64_t lo, uint64_t hi, uint8_t (*out)[H], size_t *n)
{
	uint64_t k;

	if (hi - lo == 1)
		return;
	k = ref_k(hi - lo);
	if (m < k) {
		ref_path(m, lo, lo + k, out, n);
		ref_mth(lo + k, hi, out[(*n)++]);
	} else {
		ref_path(m - k, lo + k, hi, out, n);
		ref_mth(lo, lo + k, out[(*n)++]);
	}
}

/* SUBPROOF(m, D[lo:hi], b), m relative to lo. */
static void
ref_subproof(uint64_t m, uint64_t lo, uint64_t hi, int b, uint8_t (*out)[H],
    size_t *n)
{
	uint64_t k;

	if (m == hi - lo) {
		if (!b)
			ref_mth(lo, hi, out[(*n)++]);
		return;
	}
	k = ref_k(hi - lo);
	if (m <= k) {
		ref_subproof(m, lo, lo + k, b, out, n);
		ref_mth(lo + k, hi, out[(*n)++]);
	} else {
		ref_subproof(m - k, lo + k, hi, 0, out, n);
		ref_mth(lo, lo + k, out[(*n)++]);
	}
}

/* ---- RFC 6962 vectors (sg_fixture.h) ---- */

static void
test_rfc6962_vectors(void)
{
	struct store s;
	struct sg_merkle_frontier f;
	uint8_t leaf[H], want[H], got[H];
	size_t i;

	store_init(&s);
	sg_merkle_frontier_init(&f);
	sg_fx_hexdec(sg_fx_rfc6962_roots[0], want, H);
	CHECK_EQ_INT(sg_merkle_root(store_get, &s, 0, got), 0);
	CHECK(memcmp(got, want, H) == 0);
	sg_merkle_frontier_root(&f, got);
	CHECK(memcmp(got, want, H) == 0);
	for (i = 0; i < 8; i++) {
		sg_fx_rfc6962_leaf_hash(i, leaf);
		CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaf, store_emit,
		    &s), 0);
		sg_fx_hexdec(sg_fx_rfc6962_roots[i + 1], want, H);
		memset(got, 0, H);
		CHECK_EQ_INT(sg_merkle_root(store_get, &s, i + 1, got), 0);
		CHECK(memcmp(got, want, H) == 0);
		sg_merkle_frontier_root(&f, got);
		CHECK(memcmp(got, want, H) == 0);
	}
	/* Earlier roots are still answered from the same store. */
	for (i = 0; i <= 8; i++) {
		sg_fx_hexdec(sg_fx_rfc6962_roots[i], want, H);
		CHECK_EQ_INT(sg_merkle_root(store_get, &s, i, got), 0);
		CHECK(memcmp(got, want, H) == 0);
	}
	CHECK(s.order_ok);
	/* 8 leaves: 8 + 4 + 2 + 1 complete subtrees. */
	CHECK_EQ_INT(s.count[0], 8);
	CHECK_EQ_INT(s.count[1], 4);
	CHECK_EQ_INT(s.count[2], 2);
	CHECK_EQ_INT(s.count[3], 1);
	CHECK_EQ_INT(s.count[4], 0);
	store_free(&s);
}

/*
 * The verifiers accept exactly the published proofs (and the generators
 * produce them), and refuse them corrupted the ways the reference tests
 * corrupt them: other sizes, other roots, a hash added, removed or with a
 * bit flipped, roots swapped.
 */
static void
test_rfc6962_proof_vectors(void)
{
	struct store s;
	struct sg_merkle_frontier f;
	const struct sg_fx_incl_vec *vi;
	const struct sg_fx_cons_vec *vc;
	uint8_t leaves8[8][H], roots[9][H], p[SG_MERKLE_MAX_PROOF][H];
	uint8_t got[SG_MERKLE_MAX_PROOF][H], other[H];
	size_t i, k, len, n;
	uint64_t m, sz, idx;

	store_init(&s);
	sg_merkle_frontier_init(&f);
	for (i = 0; i < 8; i++) {
		sg_fx_rfc6962_leaf_hash(i, leaves8[i]);
		CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaves8[i],
		    store_emit, &s), 0);
	}
	for (i = 0; i <= 8; i++)
		sg_fx_hexdec(sg_fx_rfc6962_roots[i], roots[i], H);
	memset(other, 0xab, H);

	for (i = 0; i < SG_FX_RFC6962_NINCL; i++) {
		vi = &sg_fx_rfc6962_incl[i];
		idx = vi->leaf - 1;
		sz = vi->size;
		n = vi->n;
		for (k = 0; k < n; k++)
			sg_fx_hexdec(vi->proof[k], p[k], H);
		CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &s, idx, sz,
		    got, SG_MERKLE_MAX_PROOF, &len), 0);
		CHECK_EQ_INT(len, n);
		CHECK(n == 0 || memcmp(got, p, n * H) == 0);
		CHECK_EQ_INT(sg_merkle_verify_inclusion(leaves8[idx], idx, sz,
		    (const uint8_t (*)[H])p, n, roots[sz]), 0);
		CHECK(sg_merkle_verify_inclusion(leaves8[idx], idx + 1, sz,
		    (const uint8_t (*)[H])p, n, roots[sz]) != 0);
		CHECK(sg_merkle_verify_inclusion(leaves8[idx], idx, sz * 2,
		    (const uint8_t (*)[H])p, n, roots[sz]) != 0);
		CHECK(sg_merkle_verify_inclusion(leaves8[idx], idx, sz,
		    (const uint8_t (*)[H])p, n, other) != 0);
		CHECK(sg_merkle_verify_inclusion(other, idx, sz,
		    (const uint8_t (*)[H])p, n, roots[sz]) != 0);
		memcpy(p[n], roots[sz], H);
		CHECK(sg_merkle_verify_inclusion(leaves8[idx], idx, sz,
		    (const uint8_t (*)[H])p, n + 1, roots[sz]) != 0);
		for (k = 0; k < n; k++) {
			p[k][0] ^= 8;
			CHECK(sg_merkle_verify_inclusion(leaves8[idx], idx, sz,
			    (const uint8_t (*)[H])p, n, roots[sz]) != 0);
			p[k][0] ^= 8;
		}
		if (n > 0)
			CHECK(sg_merkle_verify_inclusion(leaves8[idx], idx, sz,
			    (const uint8_t (*)[H])p, n - 1, roots[sz]) != 0);
	}

	for (i = 0; i < SG_FX_RFC6962_NCONS; i++) {
		vc = &sg_fx_rfc6962_cons[i];
		m = vc->m;
		sz = vc->n;
		n = vc->np;
		for (k = 0; k < n; k++)
			sg_fx_hexdec(vc->proof[k], p[k], H);
		CHECK_EQ_INT(sg_merkle_consistency_proof(store_get, &s, m, sz,
		    got, SG_MERKLE_MAX_PROOF, &len), 0);
		CHECK_EQ_INT(len, n);
		CHECK(n == 0 || memcmp(got, p, n * H) == 0);
		CHECK_EQ_INT(sg_merkle_verify_consistency(m, sz, roots[m],
		    roots[sz], (const uint8_t (*)[H])p, n), 0);
		if (n == 0)
			continue;
		CHECK(sg_merkle_verify_consistency(m - 1, sz, roots[m],
		    roots[sz], (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m + 1, sz, roots[m],
		    roots[sz], (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m ^ 2, sz, roots[m],
		    roots[sz], (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m, sz * 2, roots[m],
		    roots[sz], (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m, sz / 2, roots[m],
		    roots[sz], (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m, sz, other, roots[sz],
		    (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m, sz, roots[m], other,
		    (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m, sz, roots[sz], roots[m],
		    (const uint8_t (*)[H])p, n) != 0);
		CHECK(sg_merkle_verify_consistency(m, sz, roots[m], roots[sz],
		    (const uint8_t (*)[H])p, 0) != 0);
		CHECK(sg_merkle_verify_consistency(m, sz, roots[m], roots[sz],
		    (const uint8_t (*)[H])p, n - 1) != 0);
		memcpy(p[n], roots[m], H);
		CHECK(sg_merkle_verify_consistency(m, sz, roots[m], roots[sz],
		    (const uint8_t (*)[H])p, n + 1) != 0);
		memmove(p[1], p[0], n * H);
		memcpy(p[0], roots[sz], H);
		CHECK(sg_merkle_verify_consistency(m, sz, roots[m], roots[sz],
		    (const uint8_t (*)[H])p, n + 1) != 0);
		for (k = 0; k < n; k++)
			sg_fx_hexdec(vc->proof[k], p[k], H);
		for (k = 0; k < n; k++) {
			p[k][0] ^= 16;
			CHECK(sg_merkle_verify_consistency(m, sz, roots[m],
			    roots[sz], (const uint8_t (*)[H])p, n) != 0);
			p[k][0] ^= 16;
		}
	}
	store_free(&s);
}

static void
test_roots_match_reference(void)
{
	uint8_t want[H], got[H];
	uint64_t n;

	build_big();
	for (n = 1; n <= MAXN; n++) {
		ref_mth(0, n, want);
		CHECK_EQ_INT(sg_merkle_root(store_get, &big, n, got), 0);
		CHECK(memcmp(got, want, H) == 0);
	}
}

/*
 * Which bits the flip loops try: every one, or under valgrind and the
 * sanitizers (`make valgrind` sets 61, `make test-san` 7: there the
 * exhaustive loops take from minutes to most of an hour) every
 * SG_TEST_BIT_STRIDE-th, which still reaches every byte position across
 * the proofs.
 */
static size_t
bit_stride(void)
{
	static size_t stride;
	const char *e;

	if (stride == 0) {
		e = getenv("SG_TEST_BIT_STRIDE");
		stride = e != NULL && atoi(e) > 0 ? (size_t)atoi(e) : 1;
	}
	return stride;
}

/* Flips each bit of each proof hash in turn; every one must fail. */
static int
inclusion_flips_all_fail(const uint8_t leaf[H], uint64_t i, uint64_t n,
    uint8_t (*p)[H], size_t np, const uint8_t root[H])
{
	size_t j, bit;

	for (j = 0; j < np; j++) {
		for (bit = j % bit_stride(); bit < 8 * H;
		    bit += bit_stride()) {
			int r;
			p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			r = sg_merkle_verify_inclusion(leaf, i, n,
			    (const uint8_t (*)[H])p, np, root);
			p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (r != SG_ERR_VERIFY)
				return 0;
		}
	}
	return 1;
}

static void
test_inclusion_all(void)
{
	uint8_t want[SG_MERKLE_MAX_PROOF][H], got[SG_MERKLE_MAX_PROOF + 1][H];
	uint8_t roots[MAXN + 1][H], bad[H];
	size_t nw, ng;
	uint64_t n, i, j, n2;
	int ok_proofs = 1, ok_verify = 1, ok_flips = 1, ok_index = 1;
	int ok_size = 1, ok_trunc = 1, ok_ext = 1, ok_root = 1, ok_leaf = 1;

	build_big();
	for (n = 1; n <= MAXN; n++)
		ref_mth(0, n, roots[n]);
	for (n = 1; n <= MAXN; n++) {
		for (i = 0; i < n; i++) {
			const uint8_t (*cg)[H] = (const uint8_t (*)[H])got;

			nw = 0;
			ref_path(i, 0, n, want, &nw);
			ng = 12345;
			if (sg_merkle_inclusion_proof(store_get, &big, i, n, got,
			    SG_MERKLE_MAX_PROOF, &ng) != 0 || ng != nw ||
			    memcmp(got, want, nw * H) != 0) {
				ok_proofs = 0;
				continue;
			}
			if (sg_merkle_verify_inclusion(leaves[i], i, n, cg, ng,
			    roots[n]) != 0)
				ok_verify = 0;
			if (!inclusion_flips_all_fail(leaves[i], i, n, got, ng,
			    roots[n]))
				ok_flips = 0;
			for (j = 0; j < n + 2; j++)
				if (j != i && sg_merkle_verify_inclusion(leaves[i],
				    j, n, cg, ng, roots[n]) != SG_ERR_VERIFY)
					ok_index = 0;
			/* A size comes with its own root (one checkpoint). */
			for (n2 = 1; n2 <= MAXN; n2++)
				if (n2 != n && sg_merkle_verify_inclusion(
				    leaves[i], i, n2, cg, ng, roots[n2]) !=
				    SG_ERR_VERIFY)
					ok_size = 0;
			if (ng > 0 && (sg_merkle_verify_inclusion(leaves[i], i,
			    n, cg, ng - 1, roots[n]) != SG_ERR_VERIFY ||
			    sg_merkle_verify_inclusion(leaves[i], i, n, cg + 1,
			    ng - 1, roots[n]) != SG_ERR_VERIFY))
				ok_trunc = 0;
			memcpy(got[ng], roots[n], H);
			if (sg_merkle_verify_inclusion(leaves[i], i, n, cg,
			    ng + 1, roots[n]) != SG_ERR_VERIFY)
				ok_ext = 0;
			memset(got[ng], 0, H);
			if (sg_merkle_verify_inclusion(leaves[i], i, n, cg,
			    ng + 1, roots[n]) != SG_ERR_VERIFY)
				ok_ext = 0;
			memcpy(bad, roots[n], H);
			bad[i % H] ^= 0x80;
			if (sg_merkle_verify_inclusion(leaves[i], i, n, cg, ng,
			    bad) != SG_ERR_VERIFY)
				ok_root = 0;
			if (sg_merkle_verify_inclusion(leaves[(i + 1) % MAXN],
			    i, n, cg, ng, roots[n]) != SG_ERR_VERIFY)
				ok_leaf = 0;
		}
	}
	CHECK(ok_proofs);
	CHECK(ok_verify);
	CHECK(ok_flips);
	CHECK(ok_index);
	CHECK(ok_size);
	CHECK(ok_trunc);
	CHECK(ok_ext);
	CHECK(ok_root);
	CHECK(ok_leaf);
}

static int
consistency_flips_all_fail(uint64_t m, uint64_t n, const uint8_t r1[H],
    const uint8_t r2[H], uint8_t (*p)[H], size_t np)
{
	size_t j, bit;

	for (j = 0; j < np; j++) {
		for (bit = j % bit_stride(); bit < 8 * H;
		    bit += bit_stride()) {
			int r;
			p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			r = sg_merkle_verify_consistency(m, n, r1, r2,
			    (const uint8_t (*)[H])p, np);
			p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (r != SG_ERR_VERIFY)
				return 0;
		}
	}
	return 1;
}

static void
test_consistency_all(void)
{
	uint8_t want[SG_MERKLE_MAX_PROOF][H], got[SG_MERKLE_MAX_PROOF + 1][H];
	uint8_t roots[MAXN + 1][H], bad[H];
	size_t nw, ng;
	uint64_t m, n, x;
	int ok_proofs = 1, ok_verify = 1, ok_flips = 1, ok_sizes = 1;
	int ok_trunc = 1, ok_ext = 1, ok_roots = 1;

	build_big();
	for (n = 1; n <= MAXN; n++)
		ref_mth(0, n, roots[n]);
	for (n = 1; n <= MAXN; n++) {
		for (m = 1; m <= n; m++) {
			const uint8_t (*cg)[H] = (const uint8_t (*)[H])got;

			nw = 0;
			ref_subproof(m, 0, n, 1, want, &nw);
			ng = 12345;
			if (sg_merkle_consistency_proof(store_get, &big, m, n,
			    got, SG_MERKLE_MAX_PROOF, &ng) != 0 || ng != nw ||
			    memcmp(got, want, nw * H) != 0) {
				ok_proofs = 0;
				continue;
			}
			if (sg_merkle_verify_consistency(m, n, roots[m],
			    roots[n], cg, ng) != 0)
				ok_verify = 0;
			if (!consistency_flips_all_fail(m, n, roots[m], roots[n],
			    got, ng))
				ok_flips = 0;
			/* Other sizes, each with its own root. */
			for (x = 1; x <= MAXN; x++) {
				if (x != m && x <= n &&
				    sg_merkle_verify_consistency(x, n, roots[x],
				    roots[n], cg, ng) != SG_ERR_VERIFY)
					ok_sizes = 0;
				if (x != n && x >= m &&
				    sg_merkle_verify_consistency(m, x, roots[m],
				    roots[x], cg, ng) != SG_ERR_VERIFY)
					ok_sizes = 0;
			}
			if (ng > 0 && (sg_merkle_verify_consistency(m, n,
			    roots[m], roots[n], cg, ng - 1) != SG_ERR_VERIFY ||
			    sg_merkle_verify_consistency(m, n, roots[m],
			    roots[n], cg + 1, ng - 1) != SG_ERR_VERIFY))
				ok_trunc = 0;
			memcpy(got[ng], roots[m], H);
			if (sg_merkle_verify_consistency(m, n, roots[m],
			    roots[n], cg, ng + 1) != SG_ERR_VERIFY)
				ok_ext = 0;
			memcpy(bad, roots[m], H);
			bad[(m + n) % H] ^= 1;
			if (sg_merkle_verify_consistency(m, n, bad, roots[n], cg,
			    ng) != SG_ERR_VERIFY)
				ok_roots = 0;
			memcpy(bad, roots[n], H);
			bad[(m * n) % H] ^= 2;
			if (sg_merkle_verify_consistency(m, n, roots[m], bad, cg,
			    ng) != SG_ERR_VERIFY)
				ok_roots = 0;
			/* Swapped roots. */
			if (m != n && sg_merkle_verify_consistency(m, n,
			    roots[n], roots[m], cg, ng) != SG_ERR_VERIFY)
				ok_roots = 0;
		}
	}
	CHECK(ok_proofs);
	CHECK(ok_verify);
	CHECK(ok_flips);
	CHECK(ok_sizes);
	CHECK(ok_trunc);
	CHECK(ok_ext);
	CHECK(ok_roots);
}

static void
test_proof_arguments(void)
{
	uint8_t p[SG_MERKLE_MAX_PROOF + 1][H], root[H];
	const uint8_t (*cp)[H] = (const uint8_t (*)[H])p;
	size_t n = 777;

	build_big();
	memset(p, 0, sizeof(p));
	CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &big, 5, 5, p, 64,
	    &n), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &big, 0, 0, p, 64,
	    &n), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &big, 0,
	    (uint64_t)1 << 63, p, 64, &n), SG_ERR_TOO_LARGE);
	CHECK_EQ_INT(sg_merkle_consistency_proof(store_get, &big, 0, 5, p, 64,
	    &n), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_merkle_consistency_proof(store_get, &big, 6, 5, p, 64,
	    &n), SG_ERR_INVALID);
	CHECK_EQ_INT(sg_merkle_root(store_get, &big, (uint64_t)1 << 63, root),
	    SG_ERR_TOO_LARGE);
	/* Too small an output: nothing written, count untouched. */
	CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &big, 0, 64, p, 5,
	    &n), SG_ERR_BUFFER);
	CHECK_EQ_INT(n, 777);
	CHECK_EQ_INT(sg_merkle_consistency_proof(store_get, &big, 3, 64, p, 2,
	    &n), SG_ERR_BUFFER);
	CHECK_EQ_INT(n, 777);
	/* Single leaf: empty proof; same sizes: empty proof. */
	CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &big, 0, 1, p, 0,
	    &n), 0);
	CHECK_EQ_INT(n, 0);
	n = 777;
	CHECK_EQ_INT(sg_merkle_consistency_proof(store_get, &big, 9, 9, p, 0,
	    &n), 0);
	CHECK_EQ_INT(n, 0);
	/* Storage errors come through as they are. */
	big.fail_get = SG_ERR_IO;
	n = 777;
	CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &big, 3, 10, p, 64,
	    &n), SG_ERR_IO);
	CHECK_EQ_INT(sg_merkle_consistency_proof(store_get, &big, 3, 10, p,
	    64, &n), SG_ERR_IO);
	CHECK_EQ_INT(sg_merkle_root(store_get, &big, 10, root), SG_ERR_IO);
	big.fail_get = 0;
	CHECK_EQ_INT(n, 777);
	/* Beyond what was stored. */
	CHECK_EQ_INT(sg_merkle_inclusion_proof(store_get, &big, 3, 65, p, 64,
	    &n), SG_ERR_NOT_FOUND);

	/* Verification refuses impossible shapes outright. */
	ref_mth(0, 1, root);
	CHECK_EQ_INT(sg_merkle_verify_inclusion(leaves[0], 0, 1, cp, 0, root),
	    0);
	CHECK_EQ_INT(sg_merkle_verify_inclusion(leaves[0], 1, 1, cp, 0, root),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_merkle_verify_inclusion(leaves[0], 0, 0, cp, 0, root),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_merkle_verify_inclusion(leaves[0], 0,
	    (uint64_t)1 << 63, cp, 63, root), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_merkle_verify_inclusion(leaves[0], 0, 1, cp,
	    SG_MERKLE_MAX_PROOF + 1, root), SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_merkle_verify_consistency(0, 1, root, root, cp, 0),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_merkle_verify_consistency(0, 0, root, root, cp, 0),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_merkle_verify_consistency(2, 1, root, root, cp, 1),
	    SG_ERR_VERIFY);
	CHECK_EQ_INT(sg_merkle_verify_consistency(1, 1, root, root, cp, 0), 0);
	CHECK_EQ_INT(sg_merkle_verify_consistency(1, 1, root, root, cp, 1),
	    SG_ERR_VERIFY);
	memcpy(p[0], root, H);
	p[0][0] ^= 1;
	CHECK_EQ_INT(sg_merkle_verify_consistency(1, 1, root, p[0], cp, 0),
	    SG_ERR_VERIFY);
	/* m < n with an empty proof never holds. */
	CHECK_EQ_INT(sg_merkle_verify_consistency(1, 2, root, root, cp, 0),
	    SG_ERR_VERIFY);
}

/* ---- the frontier ---- */

struct emit_log {
	unsigned level[80];
	uint64_t index[80];
	int n;
	int fail_at;           /* fail the call with this number (1-based) */
};

static int
log_emit(void *ctx, unsigned level, uint64_t index, const uint8_t hash[H])
{
	struct emit_log *l = ctx;

	if (l->n + 1 == l->fail_at)
		return SG_ERR_IO;
	if (l->n < 80) {
		l->level[l->n] = level;
		l->index[l->n] = index;
	}
	l->n++;
	return 0;
}

static void
test_frontier_emit(void)
{
	struct sg_merkle_frontier f, saved;
	struct emit_log l;
	uint8_t root[H], want[H];
	int i, at;

	build_big();
	sg_merkle_frontier_init(&f);
	for (i = 0; i < 7; i++)
		CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaves[i], NULL,
		    NULL), 0);
	CHECK_EQ_INT(f.size, 7);
	CHECK_EQ_INT(f.n, 3);
	/* Leaf 7 completes (1,3), (2,1) and (3,0), bottom-up. */
	for (at = 1; at <= 4; at++) {
		memset(&l, 0, sizeof(l));
		l.fail_at = at;
		saved = f;
		CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaves[7], log_emit,
		    &l), SG_ERR_IO);
		CHECK(memcmp(&saved, &f, sizeof(f)) == 0);
	}
	memset(&l, 0, sizeof(l));
	CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaves[7], log_emit, &l),
	    0);
	CHECK_EQ_INT(l.n, 4);
	CHECK(l.level[0] == 0 && l.index[0] == 7);
	CHECK(l.level[1] == 1 && l.index[1] == 3);
	CHECK(l.level[2] == 2 && l.index[2] == 1);
	CHECK(l.level[3] == 3 && l.index[3] == 0);
	CHECK_EQ_INT(f.size, 8);
	CHECK_EQ_INT(f.n, 1);
	sg_merkle_frontier_root(&f, root);
	ref_mth(0, 8, want);
	CHECK(memcmp(root, want, H) == 0);
	CHECK(memcmp(f.hashes[0], want, H) == 0);
	/* Leaf 8 completes nothing but itself. */
	memset(&l, 0, sizeof(l));
	CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaves[8], log_emit, &l),
	    0);
	CHECK_EQ_INT(l.n, 1);
	CHECK(l.level[0] == 0 && l.index[0] == 8);

	/* A corrupt frontier and a full one are refused. */
	saved = f;
	f.n = 5;
	CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaves[0], NULL, NULL),
	    SG_ERR_INTERNAL);
	f = saved;
	f.size = (uint64_t)INT64_MAX;
	f.n = 63;
	CHECK_EQ_INT(sg_merkle_frontier_append(&f, leaves[0], NULL, NULL),
	    SG_ERR_TOO_LARGE);
	CHECK_EQ_INT(f.size, (uint64_t)INT64_MAX);
}

static void
test_frontier_load(void)
{
	struct sg_merkle_frontier f, g;
	struct store s;
	uint8_t leaf[H], r1[H], r2[H], r3[H];
	unsigned i;
	int ok = 1;

	store_init(&s);
	sg_merkle_frontier_init(&f);
	for (i = 0; i <= 200; i++) {
		memset(&g, 0xa5, sizeof(g));
		if (sg_merkle_frontier_load(&g, i, store_get, &s) != 0 ||
		    g.size != f.size || g.n != f.n ||
		    memcmp(g.hashes, f.hashes, f.n * H) != 0)
			ok = 0;
		sg_merkle_frontier_root(&f, r1);
		sg_merkle_frontier_root(&g, r2);
		if (sg_merkle_root(store_get, &s, i, r3) != 0 ||
		    memcmp(r1, r2, H) != 0 || memcmp(r1, r3, H) != 0)
			ok = 0;
		if (i == 200)
			break;
		test_leaf(i, leaf);
		if (sg_merkle_frontier_append(&f, leaf, store_emit, &s) != 0)
			ok = 0;
	}
	CHECK(ok);
	CHECK(s.order_ok);
	/* Appending to a loaded frontier continues the same tree. */
	CHECK_EQ_INT(sg_merkle_frontier_load(&g, 137, store_get, &s), 0);
	for (i = 137; i < 200; i++) {
		test_leaf(i, leaf);
		CHECK_EQ_INT(sg_merkle_frontier_append(&g, leaf, NULL, NULL),
		    0);
	}
	sg_merkle_frontier_root(&g, r2);
	CHECK(memcmp(r1, r2, H) == 0);
	/* A failed look-up leaves the frontier alone. */
	memcpy(&f, &g, sizeof(f));
	CHECK_EQ_INT(sg_merkle_frontier_load(&g, 201, store_get, &s),
	    SG_ERR_NOT_FOUND);
	CHECK(memcmp(&f, &g, sizeof(f)) == 0);
	CHECK_EQ_INT(sg_merkle_frontier_load(&g, (uint64_t)1 << 63, store_get,
	    &s), SG_ERR_TOO_LARGE);
	store_free(&s);
}

/* A larger tree, spot-checked: proofs from the store verify. */
static void
test_larger_tree(void)
{
	struct sg_merkle_frontier f;
	struct store s;
	uint8_t leaf[H], root[H], old_root[H], p[SG_MERKLE_MAX_PROOF][H];
	const uint8_t (*cp)[H] = (const uint8_t (*)[H])p;
	const uint64_t n = 5000;
	uint64_t i, m;
	size_t np;
	int ok = 1;

	store_init(&s);
	sg_merkle_frontier_init(&f);
	for (i = 0; i < n; i++) {
		test_leaf((unsigned)i, leaf);
		if (sg_merkle_frontier_append(&f, leaf, store_emit, &s) != 0)
			ok = 0;
	}
	sg_merkle_frontier_root(&f, root);
	for (i = 0; i < n; i += 7) {
		test_leaf((unsigned)i, leaf);
		if (sg_merkle_inclusion_proof(store_get, &s, i, n, p,
		    SG_MERKLE_MAX_PROOF, &np) != 0 ||
		    sg_merkle_verify_inclusion(leaf, i, n, cp, np, root) != 0)
			ok = 0;
	}
	for (m = 1; m <= n; m += 13) {
		if (sg_merkle_root(store_get, &s, m, old_root) != 0 ||
		    sg_merkle_consistency_proof(store_get, &s, m, n, p,
		    SG_MERKLE_MAX_PROOF, &np) != 0 ||
		    sg_merkle_verify_consistency(m, n, old_root, root, cp,
		    np) != 0)
			ok = 0;
	}
	CHECK(ok);
	store_free(&s);
}

/* ---- look-ups per proof at large sizes ---- */

static int
count_get(void *ctx, unsigned level, uint64_t index, uint8_t out[H])
{
	unsigned long *calls = ctx;

	(*calls)++;
	memset(out, 0, H);
	memcpy(out, &index, sizeof(index));
	out[H - 1] = (uint8_t)level;
	return 0;
}

static unsigned
bit_length(uint64_t x)
{
	unsigned b = 0;

	while (x != 0) {
		b++;
		x >>= 1;
	}
	return b;
}

static void
measure(uint64_t n)
{
	uint8_t p[SG_MERKLE_MAX_PROOF][H];
	unsigned long calls, max_inc = 0, max_con = 0, sum_inc = 0;
	unsigned long sum_con = 0, root_calls = 0, samples = 0;
	uint64_t i, step = n / 997;
	unsigned bound = 2 * bit_length(n - 1);
	size_t np;
	int ok = 1;

	/* Every 997th index (and its neighbours), plus both ends. */
	for (i = 0; i < n; i = (i + step < n && i + step > i) ? i + step : n) {
		uint64_t c[3] = { i, i + 1 < n ? i + 1 : i, n - 1 - i };
		int k;

		for (k = 0; k < 3; k++) {
			calls = 0;
			if (sg_merkle_inclusion_proof(count_get, &calls, c[k],
			    n, p, SG_MERKLE_MAX_PROOF, &np) != 0)
				ok = 0;
			sum_inc += calls;
			if (calls > max_inc)
				max_inc = calls;
			calls = 0;
			if (sg_merkle_consistency_proof(count_get, &calls,
			    c[k] + 1, n, p, SG_MERKLE_MAX_PROOF, &np) != 0)
				ok = 0;
			sum_con += calls;
			if (calls > max_con)
				max_con = calls;
			samples++;
		}
	}
	calls = 0;
	if (sg_merkle_root(count_get, &calls, n, p[0]) != 0)
		ok = 0;
	root_calls = calls;
	printf("# size %llu: inclusion proof %lu look-ups max, %.1f mean; "
	    "consistency proof %lu max, %.1f mean; root %lu (%lu samples)\n",
	    (unsigned long long)n, max_inc, (double)sum_inc / samples,
	    max_con, (double)sum_con / samples, root_calls, samples);
	CHECK(ok);
	/* O(log n): depth plus one partial range at most. */
	CHECK(max_inc <= bound);
	CHECK(max_con <= bound + 1);
	CHECK_EQ_INT(root_calls, __builtin_popcountll(n));
}

static void
test_lookups_per_proof(void)
{
	measure(1000000);
	measure(10000000);
	measure(((uint64_t)1 << 63) - 1);
}

SG_TEST_MAIN("merkle",
    T(test_rfc6962_vectors),
    T(test_rfc6962_proof_vectors),
    T(test_roots_match_reference),
    T(test_inclusion_all),
    T(test_consistency_all),
    T(test_proof_arguments),
    T(test_frontier_emit),
    T(test_frontier_load),
    T(test_larger_tree),
    T(test_lookups_per_proof))
