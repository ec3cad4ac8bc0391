/*
 * Fuzzes the shared text rules (sg_text.h): UTF-8 decoding round-trips
 * (every accepted sequence is the shortest encoding of a scalar value),
 * text the rule accepts is displayed unchanged, whatever is displayed is
 * accepted text no longer than promised, and every name is text.  The
 * output buffers are exactly as large as promised, so ASan sees overruns.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
encode(uint32_t cp, uint8_t *out)
{
	if (cp < 0x80) {
		out[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (uint8_t)(0xc0 | cp >> 6);
		out[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (uint8_t)(0xe0 | cp >> 12);
		out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (uint8_t)(0xf0 | cp >> 18);
	out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_text_fault f;
	uint8_t enc[4];
	uint32_t cp;
	size_t i, k, cap = 4 * size + 1, olen;
	char *out = malloc(cap);
	int ok;

	if (out == NULL)
		abort();
	for (i = 0; i < size; i += k ? k : 1) {
		if ((k = sg_utf8_decode(data + i, size - i, &cp)) == 0)
			continue;
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    encode(cp, enc) != k || memcmp(enc, data + i, k) != 0)
			abort();
	}
	ok = sg_text_ok((const char *)data, size, &f) == 0;
	if (!ok && (f.offset >= size || (!f.invalid &&
	    sg_text_cp_allowed(f.cp))))
		abort();
	sg_text_escape((const char *)data, size, out, cap);
	olen = strlen(out);
	if (olen > 4 * size || sg_text_ok(out, olen, NULL) != 0)
		abort();
	if (ok && (olen != size || memcmp(out, data, size) != 0) &&
	    memchr(data, '\\', size) == NULL)
		abort();
	if (sg_name_okn((const char *)data, size, size) && !ok)
		abort();
	free(out);
	return 0;
}
