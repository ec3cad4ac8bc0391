/*
 * Fuzzes the log entry parser.  Property (sg_entry.h): build(parse(x)) == x
 * for every accepted x, since the leaf hash must commit to one meaning;
 * except that build refuses (SG_ERR_TOO_LARGE, and nothing else) an entry
 * older builds could write beyond what this one writes, whose one
 * rendering the parser itself checks.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_entry.h"
#include "sg_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_entry e;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (sg_entry_parse((const char *)data, size, &e) != 0)
		return 0;
	r = sg_entry_build(&e, &text, &len);
	if (r == SG_ERR_TOO_LARGE) {
		sg_entry_clear(&e);
		return 0;
	}
	if (r != 0 || len != size || memcmp(text, data, size) != 0)
		abort();
	free(text);
	sg_entry_clear(&e);
	return 0;
}
