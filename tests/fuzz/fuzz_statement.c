/*
 * Fuzzes the approval statement parser.  Property (sg_dsse.h): a statement
 * has one rendering, so whatever parses builds back to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_dsse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_statement s;
	char *text = NULL;
	size_t len = 0;

	if (sg_statement_parse((const char *)data, size, &s) != 0)
		return 0;
	if (sg_statement_build(&s, &text, &len) != 0 || len != size ||
	    memcmp(text, data, size) != 0)
		abort();
	free(text);
	return 0;
}
