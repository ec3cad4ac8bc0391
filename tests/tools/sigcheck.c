/*
 * sigcheck: many detached signatures checked by one process, with
 * OpenSSL alone (not the project's code: only its file reading), for the
 * release tests.
 *
 *   sigcheck PUBKEY_PEM FILE...
 *
 * For each FILE, FILE.sig must be a signature over FILE's contents with
 * SHA-256 by PUBKEY_PEM's key, as `openssl dgst -sha256 -verify PUBKEY_PEM
 * -signature FILE.sig FILE` checks it (RSA PKCS#1 v1.5 or ECDSA, OpenSSL's
 * defaults for the key).  Prints how many verified, then one line
 * "bad: FILE" for each that did not.  Exits 0 when all verified, 1 when
 * one did not, 2 on a usage or key error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "sg_util.h"

/* Whether path.sig verifies over path with key. */
static int
verify_one(EVP_PKEY *key, const char *path)
{
	char *data = NULL, *sig = NULL;
	size_t data_len, sig_len;
	char sigpath[4096];
	EVP_MD_CTX *md = NULL;
	int ok = 0;

	if ((size_t)snprintf(sigpath, sizeof(sigpath), "%s.sig", path) >=
	    sizeof(sigpath))
		return 0;
	if (sg_read_file(path, SG_MAX_FILE_SIZE, &data, &data_len) != 0 ||
	    sg_read_file(sigpath, SG_MAX_FILE_SIZE, &sig, &sig_len) != 0)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	ok = EVP_DigestVerify(md, (const unsigned char *)sig, sig_len,
	    (const unsigned char *)data, data_len) == 1;
 out:
	EVP_MD_CTX_free(md);
	free(sig);
	free(data);
	return ok;
}

int
main(int argc, char **argv)
{
	EVP_PKEY *key;
	FILE *f;
	int i, good = 0, *bad;

	if (argc < 3) {
		fprintf(stderr, "usage: sigcheck PUBKEY_PEM FILE...\n");
		return 2;
	}
	if ((f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "sigcheck: %s: cannot open\n", argv[1]);
		return 2;
	}
	key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL) {
		fprintf(stderr, "sigcheck: %s: not a public key\n", argv[1]);
		return 2;
	}
	if ((bad = calloc((size_t)argc, sizeof(*bad))) == NULL) {
		EVP_PKEY_free(key);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (verify_one(key, argv[i]))
			good++;
		else
			bad[i] = 1;
	}
	printf("%d\n", good);
	for (i = 2; i < argc; i++)
		if (bad[i])
			printf("bad: %s\n", argv[i]);
	free(bad);
	EVP_PKEY_free(key);
	return good == argc - 2 ? 0 : 1;
}
