/*
 * Fuzzes hex decoding both ways: text that decodes re-encodes to the same
 * text in lower case, and any bytes encode and decode back to themselves.
 * The output buffer is exactly as large as promised, so ASan sees overruns.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *bin = malloc(size / 2 + 1), *back = malloc(size + 1);
	char *hex = malloc(2 * size + 1);
	size_t n = 0, i;
	int r;

	if (bin == NULL || back == NULL || hex == NULL)
		abort();
	if ((r = sg_hex_decode((const char *)data, size, bin, size / 2,
	    &n)) == 0) {
		if (n != size / 2)
			abort();
		sg_hex_encode(bin, n, hex);
		for (i = 0; i < size; i++)
			if (hex[i] != tolower(data[i]))
				abort();
		if (n > 0 && sg_hex_decode((const char *)data, size, bin, n - 1,
		    &n) != SG_ERR_BUFFER)
			abort();
	} else if (r != SG_ERR_INVALID)
		abort();
	sg_hex_encode(data, size, hex);
	if (strlen(hex) != 2 * size ||
	    sg_hex_decode(hex, 2 * size, back, size, &n) != 0 || n != size ||
	    memcmp(back, data, size) != 0)
		abort();
	free(bin);
	free(back);
	free(hex);
	return 0;
}
