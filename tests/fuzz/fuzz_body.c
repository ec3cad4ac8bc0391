/*
 * Fuzzes the split of an approval body into statement and decision.
 * Property: a body that splits is exactly sg_body_build_reason() of its
 * parts (a reject's reason included).
 */
#include <stdlib.h>
#include <string.h>

#include "sg_dsse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *body = NULL;
	size_t stmt_len = 0, len = 0;
	int approve = -1;
	char reason[SG_REJECT_REASON_MAX + 1];

	if (sg_body_split_reason(data, size, &stmt_len, &approve, reason,
	    sizeof(reason)) != 0)
		return 0;
	if (stmt_len == 0 || stmt_len >= size ||
	    (approve != 0 && approve != 1))
		abort();
	if (sg_body_build_reason((const char *)data, stmt_len, approve,
	    reason[0] != '\0' ? reason : NULL, &body, &len) != 0 ||
	    len != size || memcmp(body, data, size) != 0)
		abort();
	free(body);
	return 0;
}
