/*
 * Fuzzes the tile path parser (a C string: the input up to its first NUL)
 * and the entry-bundle walk (the whole input).  Properties: a parsed path
 * formats back to exactly that string; a bundle walk stays inside the
 * input and ends exactly at its end or says it is truncated.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_tiles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_tile t;
	char *s, again[SG_TILE_PATH_SIZE];
	const uint8_t *e;
	size_t pos = 0, elen;
	int r;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (sg_tile_path_parse(s, &t) == 0 &&
	    (sg_tile_path(&t, again) != 0 || strcmp(again, s) != 0))
		abort();
	free(s);
	while ((r = sg_tile_bundle_next(data, size, &pos, &e, &elen)) == 1)
		if (e < data || elen > size || e + elen > data + size ||
		    pos > size)
			abort();
	if (r == 0 && pos != size)
		abort();
	return 0;
}
