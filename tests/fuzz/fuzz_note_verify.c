/*
 * Fuzzes signed-note verification with the development log's verifier key
 * (the seeds are checkpoints that key signed).  Property: a note that
 * verifies splits into text, one blank line, and signature lines.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_note.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char vkey[] =
    "signgate.dev/log+c055c490+ASbkEnOhaqxBcKBkuui1jju/caaChcI26Gyqo9o7ADg+";
static char name[SG_NOTE_NAME_MAX + 1];
static uint32_t id;
static uint8_t pub[SG_ED25519_PUB];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (sg_note_vkey_parse(vkey, name, &id, pub) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t text_len = 0;

	if (sg_note_verify((const char *)data, size, name, id, pub,
	    &text_len) != 0)
		return 0;
	if (text_len == 0 || text_len + 2 > size || data[text_len - 1] != '\n' ||
	    data[text_len] != '\n' || data[size - 1] != '\n')
		abort();
	return 0;
}
