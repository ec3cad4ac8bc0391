/*
 * Fuzzes release manifests and grant patterns (sg_manifest.h).
 *
 * The whole input is an artifact line: whatever parses builds back to the
 * same bytes (one rendering), and is the only line of a manifest of one
 * (its leaf is the root, the path empty).
 *
 * The input split at its first LF is a pattern and a name: the matcher's
 * answer must equal a reference written straight from the definition (a
 * table over every pair of suffixes), and libFuzzer's per-input timeout
 * catches a matcher that backtracks exponentially.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sg_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REF_MAX 300

/* m[i][j]: pattern[i..] matches name[j..]. */
static int
ref_match(const char *p, size_t pl, const char *n, size_t nl)
{
	static uint8_t m[REF_MAX + 1][REF_MAX + 1];
	size_t i, j;

	for (i = pl + 1; i-- > 0;) {
		for (j = nl + 1; j-- > 0;) {
			if (i == pl)
				m[i][j] = j == nl;
			else if (p[i] == '*')
				m[i][j] = m[i + 1][j] || (j < nl && m[i][j + 1]);
			else
				m[i][j] = j < nl && (p[i] == '?' ||
				    p[i] == n[j]) && m[i + 1][j + 1];
		}
	}
	return m[0][0];
}

static void
check_line(const uint8_t *data, size_t size)
{
	struct sg_artifact_line a;
	char again[SG_ARTIFACT_LINE_MAX + 1];
	uint8_t leaf[SG_HASH_LEN];
	size_t n = 0;

	if (sg_artifact_line_parse((const char *)data, size, &a) != 0)
		return;
	if (sg_artifact_line_build(&a, again, sizeof(again), &n) != 0 ||
	    n != size || memcmp(again, data, size) != 0)
		abort();
	sg_manifest_leaf((const char *)data, size, leaf);
	if (sg_manifest_verify((const char *)data, size, 0, 1, leaf, NULL,
	    0) != 0)
		abort();
}

static void
check_pattern(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char *pat, *name;
	size_t pl, ml;
	int got, want;

	if (nl == NULL)
		return;
	pl = (size_t)(nl - data);
	ml = size - pl - 1;
	if (pl > REF_MAX || ml > REF_MAX)
		return;
	if ((pat = malloc(pl + 1)) == NULL || (name = malloc(ml + 1)) == NULL)
		abort();
	memcpy(pat, data, pl);
	pat[pl] = '\0';
	memcpy(name, nl + 1, ml);
	name[ml] = '\0';
	got = sg_pattern_match(pat, name);
	if (!sg_pattern_valid(pat)) {
		if (got != 0)
			abort();
	} else {
		/* A NUL ends the pattern or the name, as for the
		 * matcher. */
		want = ref_match(pat, strlen(pat), name, strlen(name));
		if (got != want)
			abort();
	}
	free(pat);
	free(name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_line(data, size);
	check_pattern(data, size);
	return 0;
}
