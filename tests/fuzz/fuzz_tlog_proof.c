/*
 * Fuzzes the c2sp.org/tlog-proof@v1 parser.  Property: a parsed proof
 * formats back to exactly the input (one rendering only).
 */
#include <stdlib.h>
#include <string.h>

#include "sg_note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_tlog_proof p;
	char *text = NULL;

	if (sg_tlog_proof_parse((const char *)data, size, &p) != 0)
		return 0;
	if (sg_tlog_proof_format(&p, &text) != 0 || strlen(text) != size ||
	    memcmp(text, data, size) != 0)
		abort();
	free(text);
	sg_tlog_proof_clear(&p);
	return 0;
}
