/*
 * Fuzzes the policy parser and, on every policy that parses, the quorum
 * evaluator: every principal the text declares approves (then the first
 * rejects), and the result must be self-consistent.  A refused policy must
 * say "file:line: reason".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NAMES 64

/* Names after "principal" at the start of a line (blanks allowed). */
static size_t
declared_names(const uint8_t *data, size_t size, char names[][64])
{
	size_t i = 0, n = 0, k;

	while (i < size && n < MAX_NAMES) {
		while (i < size && (data[i] == ' ' || data[i] == '\t'))
			i++;
		if (size - i > 10 && memcmp(data + i, "principal ", 10) == 0) {
			for (i += 10, k = 0; i < size && k < 63 &&
			    data[i] > ' ' && data[i] < 0x7f; i++)
				names[n][k++] = (char)data[i];
			names[n][k] = '\0';
			if (k > 0)
				n++;
		}
		while (i < size && data[i++] != '\n')
			;
	}
	return n;
}

static void
check_quorum(const struct sg_policy *p, const struct sg_policy_key *k,
    const struct sg_decision *d, size_t nd)
{
	struct sg_quorum_result q;
	size_t t, missing = 0;

	sg_policy_evaluate(p, k, "fuzz-requester", d, nd, &q);
	if (q.nterms != k->nterms)
		abort();
	for (t = 0; t < q.nterms; t++) {
		if (q.missing[t] > k->terms[t].count)
			abort();
		missing += q.missing[t];
	}
	if ((q.state == SG_QUORUM_MET && missing != 0 && q.nterms > 0) ||
	    (q.state == SG_QUORUM_PENDING && missing == 0) ||
	    (q.state == SG_QUORUM_VETOED && !k->veto))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char names[MAX_NAMES][64];
	struct sg_decision d[MAX_NAMES] = { 0 };
	struct sg_policy *p = NULL;
	char err[512];
	size_t i, nn;
	int r;

	r = sg_policy_parse("fuzz.policy", (const char *)data, size, &p, err,
	    sizeof(err));
	if (r != 0) {
		if (r == SG_ERR_INVALID && strncmp(err, "fuzz.policy:", 12) != 0)
			abort();
		return 0;
	}
	if (strlen(sg_policy_sha256_hex(p)) != 64)
		abort();
	nn = declared_names(data, size, names);
	for (i = 0; i < nn; i++) {
		d[i].officer = names[i];
		d[i].approve = 1;
	}
	for (i = 0; i < sg_policy_nkeys(p); i++) {
		const struct sg_policy_key *k = sg_policy_key_at(p, i);

		if (k == NULL || sg_policy_key(p, k->name) != k)
			abort();
		(void)sg_policy_may_request(p, k, nn > 0 ? names[0] : "x");
		check_quorum(p, k, d, nn);
		if (nn > 0) {
			d[0].approve = 0;
			check_quorum(p, k, d, nn);
			d[0].approve = 1;
		}
	}
	sg_policy_free(p);
	return 0;
}
