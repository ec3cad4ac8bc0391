/*
 * Fuzzes base64 decoding both ways.  sg_b64_decode is strict (canonical
 * padding and trailing bits), so text that decodes re-encodes to exactly
 * the same text, and any bytes encode and decode back to themselves.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *bin = NULL;
	char *text;
	size_t n = 0;

	if (sg_b64_decode((const char *)data, size, &bin, &n) == 0) {
		if ((text = sg_b64_encode(bin, n)) == NULL ||
		    strlen(text) != size || memcmp(text, data, size) != 0)
			abort();
		free(text);
		free(bin);
		bin = NULL;
	}
	if ((text = sg_b64_encode(data, size)) == NULL ||
	    sg_b64_decode(text, strlen(text), &bin, &n) != 0 || n != size ||
	    memcmp(bin, data, size) != 0)
		abort();
	free(text);
	free(bin);
	return 0;
}
