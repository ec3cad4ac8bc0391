/*
 * A throwaway log for the witness's tests (tests/integration/78-witness.sh):
 *
 *   witness_log keygen KEY ORIGIN        writes an Ed25519 log key (PEM,
 *                                        0600) and prints its vkey
 *   witness_log body KEY ORIGIN OLD SIZE [FORK_AT]
 *                                        prints the add-checkpoint body:
 *                                        the proof OLD -> SIZE and the
 *                                        signed checkpoint of SIZE leaves
 *   witness_log note KEY ORIGIN SIZE [FORK_AT]
 *                                        prints the signed checkpoint
 *   witness_log verify VKEY FILE         checks that the note in FILE
 *                                        carries a valid cosignature by
 *                                        the witness VKEY; prints its time
 *
 * Leaf i is "leaf <i>", or "fork <i>" from FORK_AT on (tests/unit/
 * witness_fixture.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sg_cosig.h"
#include "sg_err.h"
#include "sg_fixture.h"
#include "sg_util.h"
#include "witness_fixture.h"

static int
usage(void)
{
	fprintf(stderr, "usage: witness_log keygen KEY ORIGIN\n"
	    "       witness_log body KEY ORIGIN OLD SIZE [FORK_AT]\n"
	    "       witness_log note KEY ORIGIN SIZE [FORK_AT]\n"
	    "       witness_log verify VKEY FILE\n");
	return 2;
}

static EVP_PKEY *
read_key(const char *path)
{
	EVP_PKEY *k = NULL;
	FILE *f;

	if ((f = fopen(path, "r")) != NULL) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (k == NULL)
		fprintf(stderr, "witness_log: %s: cannot read the key\n", path);
	return k;
}

static int
keygen(const char *path, const char *origin)
{
	EVP_PKEY *k;
	struct wf_log l;
	char *vkey = NULL;

	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    wf_log_init(&l, k, origin) != 0 ||
	    sg_fx_write_key(path, k) != 0 ||
	    sg_note_vkey_format(origin, l.pub, &vkey) != 0) {
		fprintf(stderr, "witness_log: cannot make the key %s\n", path);
		return 1;
	}
	printf("%s\n", vkey);
	free(vkey);
	EVP_PKEY_free(k);
	return 0;
}

static int
make(int argc, char **argv, int body)
{
	struct wf_log l;
	uint64_t old = 0, size, fork_at = UINT64_MAX;
	EVP_PKEY *k;
	char *out;
	int i = 4;

	if (argc < (body ? 6 : 5) || argc > (body ? 7 : 6))
		return usage();
	if ((body && sg_parse_u64(argv[i++], 0, INT64_MAX, &old) != 0) ||
	    sg_parse_u64(argv[i++], 0, INT64_MAX, &size) != 0 ||
	    (i < argc && sg_parse_u64(argv[i], 0, INT64_MAX, &fork_at) != 0))
		return usage();
	if ((k = read_key(argv[2])) == NULL || wf_log_init(&l, k,
	    argv[3]) != 0)
		return 1;
	l.fork_at = fork_at;
	out = body ? wf_body(&l, old, size) : wf_note(&l, size);
	if (out == NULL) {
		fprintf(stderr, "witness_log: cannot make it\n");
		return 1;
	}
	fputs(out, stdout);
	free(out);
	EVP_PKEY_free(k);
	return 0;
}

static int
verify(const char *vkey, const char *path)
{
	char name[SG_NOTE_NAME_MAX + 1], *buf = NULL;
	uint8_t pub[SG_ED25519_PUB];
	uint32_t id;
	uint64_t t = 0;
	size_t len = 0;
	int r;

	if (sg_cosig_vkey_parse(vkey, name, &id, pub) != 0) {
		fprintf(stderr, "witness_log: not a cosigner vkey\n");
		return 2;
	}
	if (sg_read_file(path, SG_NOTE_MAX, &buf, &len) != 0) {
		fprintf(stderr, "witness_log: %s: cannot read\n", path);
		return 2;
	}
	r = sg_cosig_verify(buf, len, name, id, pub, &t);
	free(buf);
	if (r != 0) {
		printf("no valid cosignature: %s\n", sg_strerror(r));
		return 1;
	}
	printf("cosigned at %llu\n", (unsigned long long)t);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "keygen") == 0 && argc == 4)
		return keygen(argv[2], argv[3]);
	if (strcmp(argv[1], "body") == 0)
		return make(argc, argv, 1);
	if (strcmp(argv[1], "note") == 0)
		return make(argc, argv, 0);
	if (strcmp(argv[1], "verify") == 0 && argc == 4)
		return verify(argv[2], argv[3]);
	return usage();
}
