/*
 * The witnesses a client trusts (include/sg_cli_witness.h).
 */
#include <stdio.h>
#include <string.h>

#include "sg_cli_witness.h"
#include "sg_cosig.h"
#include "sg_err.h"

int
sg_cli_witness_add(struct sg_cli_witnesses *set, const char *vkey)
{
	struct sg_cli_witness w;
	size_t i;

	memset(&w, 0, sizeof(w));
	if (sg_cosig_vkey_parse(vkey, w.name, &w.id, w.pub) != 0)
		return SG_ERR_INVALID;
	/* A cosignature signs the checkpoint and a time, not the name: one
	 * key under two names would count one signature twice. */
	for (i = 0; i < set->n; i++)
		if (memcmp(set->w[i].pub, w.pub, sizeof(w.pub)) == 0)
			return strcmp(set->w[i].name, w.name) == 0 ? 0 :
			    SG_ERR_CONFLICT;
	if (set->n == SG_CLI_WITNESSES_MAX)
		return SG_ERR_TOO_LARGE;
	set->w[set->n++] = w;
	return 0;
}

int
sg_cli_witness_check(const struct sg_cli_witnesses *set,
    const char *note, size_t len, size_t *ret_got, char *names, size_t cap)
{
	const struct sg_cli_witness *w;
	size_t i, got = 0, used;
	uint64_t t;

	if (names != NULL && cap > 0)
		names[0] = '\0';
	for (i = 0; i < set->n; i++) {
		w = &set->w[i];
		if (sg_cosig_verify(note, len, w->name, w->id, w->pub,
		    &t) != 0)
			continue;
		if (names != NULL && cap > 0) {
			used = strlen(names);
			snprintf(names + used, cap - used, "%s%s",
			    got > 0 ? ", " : "", w->name);
		}
		got++;
	}
	*ret_got = got;
	return got >= set->quorum ? 0 : SG_ERR_VERIFY;
}
