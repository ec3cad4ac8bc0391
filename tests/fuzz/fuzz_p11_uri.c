/*
 * Fuzzes the RFC 7512 PKCS#11 URI parser (a C string: the input up to its
 * first NUL).  Outputs live in exactly sized heap buffers so that ASan sees
 * any write past a cap.  Properties (sg_p11.h): on every error all outputs
 * are zero; a URI that parses gives the same result with buffers just
 * large enough, and fails with SG_ERR_BUFFER when one is a byte short.
 */
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_p11.h"
#include "sg_p11_uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	char token[33];
	char *object;
	uint8_t *id;
	size_t id_len;
};

static int
parse(const char *uri, size_t ocap, size_t icap, struct result *res)
{
	size_t i;
	int r;

	res->object = ocap > 0 ? malloc(ocap) : NULL;
	res->id = icap > 0 ? malloc(icap) : NULL;
	r = sg_p11_uri_parse(uri, res->token, res->object, ocap, res->id, icap,
	    &res->id_len);
	for (i = 0; r != 0 && i < sizeof(res->token); i++)
		if (res->token[i] != 0)
			abort();
	for (i = 0; r != 0 && i < ocap; i++)
		if (res->object[i] != 0)
			abort();
	for (i = 0; r != 0 && i < icap; i++)
		if (res->id[i] != 0)
			abort();
	if ((r != 0 && res->id_len != 0) || (r == 0 && (res->token[32] != 0 ||
	    (ocap > 0 && res->object[ocap - 1] != 0) || res->id_len > icap)))
		abort();
	return r;
}

static void
clear(struct result *res)
{
	free(res->object);
	free(res->id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct result a, b;
	size_t olen;
	char *uri;

	if ((uri = malloc(size + 1)) == NULL)
		abort();
	memcpy(uri, data, size);
	uri[size] = '\0';
	if (parse(uri, 64, 64, &a) == 0) {
		olen = a.object != NULL ? strlen(a.object) : 0;
		if (parse(uri, olen + 1, a.id_len, &b) != 0 ||
		    strcmp(a.token, b.token) != 0 ||
		    strcmp(a.object, b.object) != 0 || a.id_len != b.id_len ||
		    (a.id_len > 0 && memcmp(a.id, b.id, a.id_len) != 0))
			abort();
		clear(&b);
		if (olen > 0) {
			if (parse(uri, olen, a.id_len, &b) != SG_ERR_BUFFER)
				abort();
			clear(&b);
		}
		if (a.id_len > 0) {
			if (parse(uri, olen + 1, a.id_len - 1, &b) !=
			    SG_ERR_BUFFER)
				abort();
			clear(&b);
		}
	}
	clear(&a);
	free(uri);
	return 0;
}
