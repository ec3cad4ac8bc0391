/*
 * Fuzzes the checkpoint parser.  Property (sg_note.h): parsers accept only
 * what the formatter writes, so a parsed checkpoint formats to the input.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_checkpoint c;
	char *text = NULL;

	if (sg_checkpoint_parse((const char *)data, size, &c) != 0)
		return 0;
	if (sg_checkpoint_format(&c, &text) != 0 || strlen(text) != size ||
	    memcmp(text, data, size) != 0)
		abort();
	free(text);
	return 0;
}
