/*
 * Fuzzes the DSSE envelope parser, the first thing an approval POST meets.
 * Properties: whatever parses can be built again, the rebuilt envelope is
 * the same JSON document as the input (the parser drops nothing it
 * accepted, a security key's "webauthn" member included), and it parses
 * to the same fields.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sg_dsse.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	json_object_seed(1);	/* same hash order on every run */
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sg_envelope e, again;
	json_t *in, *out;
	char err[256], *json = NULL;

	if (sg_envelope_parse((const char *)data, size, &e, err,
	    sizeof(err)) != 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return 0;
	}
	if (sg_envelope_build_webauthn(e.payload_type, e.payload,
	    e.payload_len, e.keyid, e.sig, e.sig_len,
	    e.has_webauthn ? &e.webauthn : NULL, &json) != 0 ||
	    sg_envelope_parse(json, strlen(json), &again, err,
	    sizeof(err)) != 0)
		abort();
	in = json_loadb((const char *)data, size, 0, NULL);
	out = json_loads(json, 0, NULL);
	if (in == NULL || out == NULL || !json_equal(in, out))
		abort();
	if (strcmp(e.payload_type, again.payload_type) != 0 ||
	    strcmp(e.keyid, again.keyid) != 0 ||
	    e.payload_len != again.payload_len ||
	    memcmp(e.payload, again.payload, e.payload_len) != 0 ||
	    e.sig_len != again.sig_len ||
	    memcmp(e.sig, again.sig, e.sig_len) != 0 ||
	    e.has_webauthn != again.has_webauthn)
		abort();
	if (e.has_webauthn && (e.webauthn.cred_id_len !=
	    again.webauthn.cred_id_len || memcmp(e.webauthn.cred_id,
	    again.webauthn.cred_id, e.webauthn.cred_id_len) != 0 ||
	    e.webauthn.authdata_len != again.webauthn.authdata_len ||
	    memcmp(e.webauthn.authdata, again.webauthn.authdata,
	    e.webauthn.authdata_len) != 0 ||
	    e.webauthn.client_data_len != again.webauthn.client_data_len ||
	    memcmp(e.webauthn.client_data, again.webauthn.client_data,
	    e.webauthn.client_data_len) != 0))
		abort();
	json_decref(in);
	json_decref(out);
	free(json);
	sg_envelope_clear(&again);
	sg_envelope_clear(&e);
	return 0;
}
