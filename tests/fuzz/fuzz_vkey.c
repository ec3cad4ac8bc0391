/*
 * Fuzzes the verifier-key parser (a C string: the input up to its first
 * NUL).  Property: a parsed key formats back to exactly that string.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_note.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[SG_NOTE_NAME_MAX + 1], *s, *again = NULL;
	uint8_t pub[SG_ED25519_PUB];
	uint32_t id = 0;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (sg_note_vkey_parse(s, name, &id, pub) == 0) {
		if (sg_note_key_id(name, pub) != id ||
		    sg_note_vkey_format(name, pub, &again) != 0 ||
		    strcmp(again, s) != 0)
			abort();
		free(again);
	}
	free(s);
	return 0;
}
