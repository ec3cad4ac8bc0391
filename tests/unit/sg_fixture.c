/*
 * Set-up shared by the unit tests and the test tools; see sg_fixture.h.
 *
 * Scratch directories are /tmp/sg-test-NAME.XXXXXX and are removed here,
 * in C (no `rm -rf` through a shell), and only below that prefix: a test
 * whose path went wrong removes nothing of anyone else's.  Programs (the
 * SoftHSM script) run with fork and exec, so no path is ever quoted for a
 * shell.  Everything that makes keys, certificates or RFC 3161 messages
 * uses OpenSSL directly, never the code under test, so that a test of that
 * code is judged by an independent maker.  This file must not include
 * sg_test.h: it checks nothing, its callers do.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_merkle.h"
#include "sg_note.h"
#include "sg_store.h"
#include "sg_tlog.h"
#include "sg_util.h"
#include "sg_witness.h"
#include "sg_fixture.h"

#define FX_PKI_DAYS 365
#define FX_P11_SLOTS 16
#define FX_PUB_PEM_MAGIC "-----"
#define FX_PG_NAME_MAX 63               /* PostgreSQL's NAMEDATALEN - 1 */
#define FX_PG_CONNECT_TIMEOUT "10"      /* seconds */

/* ---- scratch directories ---- */

int
sg_fx_tmpdir(const char *name, char *out, size_t cap)
{
	if ((size_t)snprintf(out, cap, "%s%s.XXXXXX", SG_FX_TMP_PREFIX,
	    name) >= cap) {
		fprintf(stderr, "scratch directory name too long: %s\n", name);
		out[0] = '\0';
		return -1;
	}
	if (mkdtemp(out) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", out, strerror(errno));
		out[0] = '\0';
		return -1;
	}
	return 0;
}

static void
rm_below(const char *dir)
{
	struct dirent *de;
	char path[PATH_MAX];
	struct stat sb;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir,
		    de->d_name) >= sizeof(path))
			continue;
		if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			rm_below(path);
			rmdir(path);
		} else
			unlink(path);
	}
	closedir(d);
}

int
sg_fx_rm_tree(const char *dir)
{
	struct stat sb;

	if (dir[0] == '\0')
		return 0;
	if (strncmp(dir, SG_FX_TMP_PREFIX, strlen(SG_FX_TMP_PREFIX)) != 0 ||
	    strstr(dir, "/..") != NULL) {
		fprintf(stderr, "not a scratch directory, kept: \"%s\"\n", dir);
		return -1;
	}
	rm_below(dir);
	rmdir(dir);
	if (lstat(dir, &sb) == 0 || errno != ENOENT) {
		fprintf(stderr, "cannot remove %s\n", dir);
		return -1;
	}
	return 0;
}

/* ---- files and programs ---- */

/* This binary's path with its last `levels` components cut off. */
static int
exe_up(int levels, char *out, size_t cap)
{
	char *slash;
	ssize_t n;
	int i;

	if (cap == 0 || (n = readlink("/proc/self/exe", out, cap - 1)) <= 0)
		return -1;
	out[n] = '\0';
	for (i = 0; i < levels; i++)
		if ((slash = strrchr(out, '/')) != NULL)
			*slash = '\0';
	return 0;
}

int
sg_fx_source_file(const char *rel, char *out, size_t cap)
{
	const char *src = getenv("SG_TEST_SRCDIR");
	char tree[PATH_MAX];

	if (src != NULL && (size_t)snprintf(out, cap, "%s/%s", src, rel) <
	    cap && access(out, R_OK) == 0)
		return 0;
	if (exe_up(3, tree, sizeof(tree)) == 0 &&
	    (size_t)snprintf(out, cap, "%s/%s", tree, rel) < cap &&
	    access(out, R_OK) == 0)
		return 0;
	if ((size_t)snprintf(out, cap, "%s", rel) < cap &&
	    access(out, R_OK) == 0)
		return 0;
	fprintf(stderr, "cannot find %s of the source tree\n", rel);
	return -1;
}

int
sg_fx_build_file(const char *rel, int amode, char *out, size_t cap)
{
	char build[PATH_MAX];

	if (exe_up(2, build, sizeof(build)) != 0 ||
	    (size_t)snprintf(out, cap, "%s/%s", build, rel) >= cap)
		return -1;
	return access(out, amode) == 0 ? 0 : -1;
}

int
sg_fx_write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

char *
sg_fx_file(const char *dir, const char *name, const char *text)
{
	char *path = NULL;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	if (sg_fx_write_bytes(path, text, strlen(text)) != 0) {
		free(path);
		return NULL;
	}
	return path;
}

int
sg_fx_run(const char *const argv[])
{
	pid_t pid;
	int st;

	fflush(NULL);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* ---- SoftHSM ---- */

int
sg_fx_p11_token(const char *dir, const char *label)
{
	char script[PATH_MAX], conf[PATH_MAX];
	const char *argv[] = { "sh", script, dir, label, NULL };

	if (sg_fx_source_file("tests/unit/p11_fixture.sh", script,
	    sizeof(script)) != 0)
		return -1;
	if (sg_fx_run(argv) != 0) {
		fprintf(stderr, "p11_fixture.sh %s %s failed\n", dir, label);
		return -1;
	}
	if ((size_t)snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir) >=
	    sizeof(conf))
		return -1;
	return setenv("SOFTHSM2_CONF", conf, 1) == 0 ? 0 : -1;
}

EVP_PKEY *
sg_fx_p11_exported(const char *dir, const char *label)
{
	char path[PATH_MAX], head[sizeof(FX_PUB_PEM_MAGIC) - 1];
	const size_t hlen = sizeof(head);
	EVP_PKEY *pk = NULL;
	BIO *b;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s.pub", dir, label) >=
	    sizeof(path) || (b = BIO_new_file(path, "rb")) == NULL)
		return NULL;
	/* pkcs11-tool writes Ed25519 keys as PEM, the others as DER. */
	if (BIO_read(b, head, (int)hlen) == (int)hlen &&
	    memcmp(head, FX_PUB_PEM_MAGIC, hlen) == 0) {
		(void)BIO_reset(b);
		pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	} else {
		(void)BIO_reset(b);
		pk = d2i_PUBKEY_bio(b, NULL);
	}
	BIO_free(b);
	return pk;
}

int
sg_fx_p11_slot(void *dl, const char *label, CK_FUNCTION_LIST **ret_f,
    CK_SLOT_ID *ret_slot)
{
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST *f = NULL;
	CK_SLOT_ID slots[FX_P11_SLOTS];
	CK_ULONG n = FX_P11_SLOTS, i;
	CK_TOKEN_INFO ti;
	size_t len = strlen(label);

	*ret_f = NULL;
	get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&f) != CKR_OK || f == NULL)
		return -1;
	*ret_f = f;
	if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return -1;
	/* CK_TOKEN_INFO.label is padded with spaces. */
	for (i = 0; i < n; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    len < sizeof(ti.label) &&
		    memcmp(ti.label, label, len) == 0 && ti.label[len] == ' ') {
			*ret_slot = slots[i];
			return 0;
		}
	}
	return -1;
}

/* ---- PostgreSQL ---- */

static atomic_uint fx_pg_dbs;

/* 1 when s is lower-case letters, digits and '_', starting with a letter. */
static int
pg_name_ok(const char *s)
{
	size_t i;

	if (s[0] < 'a' || s[0] > 'z')
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

/* Appends "key=value" to the conninfo in out, the value quoted when it
 * has to be; -1 when it does not fit. */
static int
pg_conninfo_add(char *out, size_t cap, const char *key, const char *val)
{
	size_t len = strlen(out);
	int quote = val[0] == '\0' || strpbrk(val, " \t\n\r\f\v'\\") != NULL;
	const char *p;
	int n;

	n = snprintf(out + len, cap - len, "%s%s=%s", len > 0 ? " " : "", key,
	    quote ? "'" : "");
	if (n < 0 || (size_t)n >= cap - len)
		return -1;
	len += (size_t)n;
	for (p = val; *p != '\0'; p++) {
		if (quote && (*p == '\'' || *p == '\\')) {
			if (len + 1 >= cap)
				return -1;
			out[len++] = '\\';
		}
		if (len + 1 >= cap)
			return -1;
		out[len++] = *p;
	}
	if (quote) {
		if (len + 1 >= cap)
			return -1;
		out[len++] = '\'';
	}
	out[len] = '\0';
	return 0;
}

int
sg_fx_pg_new_db(const char *prefix, char *conninfo, size_t cap,
    char *passfile, size_t pcap)
{
	const char *server = getenv("SG_TEST_PG");
	const char *superpass = getenv("SG_TEST_PG_PASSFILE");
	const char *keys[] = { "dbname", "password", "connect_timeout", NULL };
	const char *vals[] = { server, NULL, FX_PG_CONNECT_TIMEOUT, NULL };
	char name[FX_PG_NAME_MAX + 1], *dir = NULL, *ident = NULL;
	char *sql = NULL, *pw = NULL;
	PGresult *res = NULL;
	PGconn *conn = NULL;
	size_t pwlen = 0;
	int n, r = -1;

	if (cap == 0 || pcap == 0)
		return -1;
	conninfo[0] = passfile[0] = '\0';
	if (server == NULL || server[0] == '\0')
		return 0;
	if (superpass == NULL || superpass[0] == '\0') {
		fprintf(stderr, "SG_TEST_PG is set, SG_TEST_PG_PASSFILE is not\n");
		return -1;
	}
	n = snprintf(name, sizeof(name), "%s_%ld_%u", prefix, (long)getpid(),
	    atomic_fetch_add(&fx_pg_dbs, 1));
	if (!pg_name_ok(prefix) || n < 0 || (size_t)n >= sizeof(name)) {
		fprintf(stderr, "unsuitable database name prefix \"%s\"\n",
		    prefix);
		return -1;
	}
	if (sg_read_secret_file(superpass, &pw, &pwlen) != 0) {
		fprintf(stderr, "SG_TEST_PG_PASSFILE %s: cannot read the "
		    "password (a file of ours, mode 0600)\n", superpass);
		goto out;
	}
	/* The conninfo is expanded from dbname; the password comes after
	 * it, as a parameter of its own. */
	vals[1] = pw;
	conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect to SG_TEST_PG \"%s\": %s", server,
		    conn != NULL ? PQerrorMessage(conn) : "out of memory\n");
		goto out;
	}
	if (pg_conninfo_add(conninfo, cap, "host", PQhost(conn)) != 0 ||
	    pg_conninfo_add(conninfo, cap, "port", PQport(conn)) != 0 ||
	    pg_conninfo_add(conninfo, cap, "user", PQuser(conn)) != 0 ||
	    pg_conninfo_add(conninfo, cap, "dbname", name) != 0) {
		fprintf(stderr, "the conninfo of %s does not fit in %zu bytes\n",
		    name, cap);
		goto out;
	}
	/* Beside the superuser's: removed with the server's directory. */
	if ((dir = sg_dirname(superpass)) == NULL ||
	    (n = snprintf(passfile, pcap, "%s/%s.pass", dir, name)) < 0 ||
	    (size_t)n >= pcap) {
		fprintf(stderr, "the password file of %s does not fit in %zu "
		    "bytes\n", name, pcap);
		goto out;
	}
	if ((ident = PQescapeIdentifier(conn, name, strlen(name))) == NULL ||
	    asprintf(&sql, "CREATE DATABASE %s", ident) < 0) {
		sql = NULL;
		fprintf(stderr, "CREATE DATABASE %s: out of memory\n", name);
		goto out;
	}
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "CREATE DATABASE %s: %s", name,
		    PQerrorMessage(conn));
		goto out;
	}
	if ((n = sg_write_file(passfile, pw, pwlen, 0600)) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", passfile,
		    sg_strerror(n));
		goto out;
	}
	r = 1;
out:
	if (r != 1)
		conninfo[0] = passfile[0] = '\0';
	PQclear(res);
	PQfreemem(ident);
	free(sql);
	free(dir);
	PQfinish(conn);
	sg_freezero(pw, pwlen);
	return r;
}

/* ---- keys and certificates ---- */

EVP_PKEY *
sg_fx_public_only(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *pub = NULL;
	int n;

	if ((n = i2d_PUBKEY(k, &der)) > 0) {
		p = der;
		pub = d2i_PUBKEY(NULL, &p, n);
	}
	OPENSSL_free(der);
	return pub;
}

/* What a memory BIO holds, as a string (caller frees), or NULL. */
static char *
bio_string(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);

	return n >= 0 ? strndup(data, (size_t)n) : NULL;
}

char *
sg_fx_pubkey_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b != NULL && PEM_write_bio_PUBKEY(b, k) == 1)
		s = bio_string(b);
	BIO_free(b);
	return s;
}

char *
sg_fx_privkey_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (b != NULL &&
	    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
		s = bio_string(b);
	BIO_free(b);
	return s;
}

void
sg_fx_spki_hex(EVP_PKEY *k, char out[65])
{
	unsigned char *der = NULL;
	uint8_t md[32];
	int n = i2d_PUBKEY(k, &der);

	out[0] = '\0';
	if (n > 0) {
		sg_sha256(der, (size_t)n, md);
		sg_hex_encode(md, sizeof(md), out);
	}
	OPENSSL_free(der);
}

/* Named here, not taken from the code under test. */
static const EVP_MD *
md_of(enum sg_digest_alg a)
{
	switch (a) {
	case SG_DIGEST_SHA256: return EVP_sha256();
	case SG_DIGEST_SHA384: return EVP_sha384();
	case SG_DIGEST_SHA512: return EVP_sha512();
	default: return NULL;
	}
}

static int
verify_message(EVP_PKEY *pub, const uint8_t *data, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int ok;

	ok = mctx != NULL &&
	    EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pub) == 1 &&
	    EVP_DigestVerify(mctx, sig, siglen, data, len) == 1;
	EVP_MD_CTX_free(mctx);
	return ok;
}

int
sg_fx_verify(EVP_PKEY *pub, enum sg_sig_scheme scheme, enum sg_digest_alg da,
    const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen,
    int saltlen)
{
	EVP_PKEY_CTX *ctx = NULL;
	int ok = 0;

	if (pub == NULL)
		return 0;
	if (scheme == SG_SIG_EDDSA)
		return verify_message(pub, data, len, sig, siglen);
	if ((ctx = EVP_PKEY_CTX_new(pub, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, md_of(da)) != 1)
		goto out;
	if (scheme == SG_SIG_RSA_PKCS1 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1)
		goto out;
	if (scheme == SG_SIG_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md_of(da)) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, saltlen) != 1))
		goto out;
	ok = EVP_PKEY_verify(ctx, sig, siglen, data, len) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL) {
		fprintf(stderr, "cannot make extension %d\n", nid);
		return -1;
	}
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int
add_kind_exts(X509 *x, X509 *issuer, enum sg_fx_cert_kind kind)
{
	const char *bc = "critical,CA:FALSE";
	const char *ku = "critical,digitalSignature";
	const char *eku = NULL;

	switch (kind) {
	case SG_FX_CERT_PLAIN:
		return 0;
	case SG_FX_CERT_CA:
		bc = "critical,CA:TRUE";
		ku = "critical,keyCertSign,cRLSign";
		break;
	case SG_FX_CERT_CODESIGN:
		eku = "codeSigning";
		break;
	case SG_FX_CERT_TSA:
		eku = "critical,timeStamping";
		break;
	}
	if (add_ext(x, issuer, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(x, x, NID_basic_constraints, bc) != 0 ||
	    add_ext(x, x, NID_key_usage, ku) != 0)
		return -1;
	return eku != NULL ? add_ext(x, x, NID_ext_key_usage, eku) : 0;
}

X509 *
sg_fx_cert(const char *cn, EVP_PKEY *pub, X509 *issuer, EVP_PKEY *issuer_key,
    enum sg_fx_cert_kind kind, long days)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	int ok;

	ok = x != NULL && name != NULL &&
	    X509_set_version(x, X509_VERSION_3) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) &&
	    X509_set_subject_name(x, name) &&
	    X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * days) != NULL &&
	    X509_set_pubkey(x, pub) &&
	    add_kind_exts(x, issuer != NULL ? issuer : x, kind) == 0 &&
	    X509_sign(x, issuer_key, EVP_sha256()) > 0;
	X509_NAME_free(name);
	if (!ok) {
		fprintf(stderr, "cannot make certificate %s\n", cn);
		X509_free(x);
		return NULL;
	}
	return x;
}

char *
sg_fx_certs_pem(X509 *a, X509 *b)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio != NULL && PEM_write_bio_X509(bio, a) &&
	    (b == NULL || PEM_write_bio_X509(bio, b)))
		s = bio_string(bio);
	BIO_free(bio);
	return s;
}

char *
sg_fx_self_signed_pem(EVP_PKEY *k, const char *cn)
{
	X509 *x = sg_fx_cert(cn, k, NULL, k, SG_FX_CERT_PLAIN, 1);
	char *s = x != NULL ? sg_fx_certs_pem(x, NULL) : NULL;

	X509_free(x);
	return s;
}

int
sg_fx_write_cert(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = PEM_write_X509(f, x);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

int
sg_fx_write_key(const char *path, EVP_PKEY *k)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f;
	int ok;

	if (fd < 0)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

int
sg_fx_pki_make(struct sg_fx_pki *pki, const char *name)
{
	memset(pki, 0, sizeof(*pki));
	if (sg_fx_tmpdir(name, pki->dir, sizeof(pki->dir)) != 0)
		return -1;
	pki->root_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pki->inter_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pki->tsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pki->root_key != NULL)
		pki->root = sg_fx_cert("test root CA", pki->root_key, NULL,
		    pki->root_key, SG_FX_CERT_CA, FX_PKI_DAYS);
	if (pki->root != NULL && pki->inter_key != NULL)
		pki->inter = sg_fx_cert("test intermediate CA",
		    pki->inter_key, pki->root, pki->root_key, SG_FX_CERT_CA,
		    FX_PKI_DAYS);
	if (pki->root != NULL && pki->tsa_key != NULL) {
		pki->tsa = sg_fx_cert("test TSA", pki->tsa_key, pki->root,
		    pki->root_key, SG_FX_CERT_TSA, FX_PKI_DAYS);
		pki->root_pem = sg_fx_certs_pem(pki->root, NULL);
	}
	if (pki->inter == NULL || pki->tsa == NULL || pki->root_pem == NULL) {
		fprintf(stderr, "cannot make the test PKI\n");
		return -1;
	}
	return 0;
}

void
sg_fx_pki_free(struct sg_fx_pki *pki)
{
	(void)sg_fx_rm_tree(pki->dir);
	EVP_PKEY_free(pki->root_key);
	EVP_PKEY_free(pki->inter_key);
	EVP_PKEY_free(pki->tsa_key);
	X509_free(pki->root);
	X509_free(pki->inter);
	X509_free(pki->tsa);
	free(pki->root_pem);
	memset(pki, 0, sizeof(*pki));
}

/* ---- RFC 3161 ---- */

/* A malloc'd copy of n bytes of OpenSSL's DER (freed), or NULL. */
static uint8_t *
der_copy(unsigned char *der, int n, size_t *ret_len)
{
	uint8_t *out = NULL;

	if (n > 0 && (out = malloc((size_t)n)) != NULL) {
		memcpy(out, der, (size_t)n);
		*ret_len = (size_t)n;
	}
	OPENSSL_free(der);
	return out;
}

uint8_t *
sg_fx_ts_request(const void *data, size_t len, long nonce, size_t *ret_len)
{
	TS_REQ *req = TS_REQ_new();
	TS_MSG_IMPRINT *imp = TS_MSG_IMPRINT_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_INTEGER *n = ASN1_INTEGER_new();
	unsigned char *der = NULL;
	uint8_t h[32];
	int dlen = -1;

	if (req != NULL && imp != NULL && alg != NULL && n != NULL) {
		sg_sha256(data, len, h);
		X509_ALGOR_set_md(alg, EVP_sha256());
		TS_MSG_IMPRINT_set_algo(imp, alg);
		TS_MSG_IMPRINT_set_msg(imp, h, sizeof(h));
		TS_REQ_set_version(req, 1);
		TS_REQ_set_msg_imprint(req, imp);
		TS_REQ_set_cert_req(req, 1);
		if (nonce != 0) {
			ASN1_INTEGER_set(n, nonce);
			TS_REQ_set_nonce(req, n);
		}
		dlen = i2d_TS_REQ(req, &der);
	}
	ASN1_INTEGER_free(n);
	X509_ALGOR_free(alg);
	TS_MSG_IMPRINT_free(imp);
	TS_REQ_free(req);
	return der_copy(der, dlen, ret_len);
}

uint8_t *
sg_fx_ts_respond(X509 *cert, EVP_PKEY *key, const uint8_t *req, size_t len,
    size_t *ret_len)
{
	TS_RESP_CTX *ctx = TS_RESP_CTX_new();
	ASN1_OBJECT *policy = OBJ_txt2obj(SG_FX_TSA_POLICY, 1);
	BIO *bio = BIO_new_mem_buf(req, (int)len);
	TS_RESP *resp = NULL;
	unsigned char *der = NULL;
	int n = -1;

	if (ctx != NULL && policy != NULL && bio != NULL) {
		TS_RESP_CTX_set_signer_cert(ctx, cert);
		TS_RESP_CTX_set_signer_key(ctx, key);
		TS_RESP_CTX_set_def_policy(ctx, policy);
		TS_RESP_CTX_add_md(ctx, EVP_sha256());
		if ((resp = TS_RESP_create_response(ctx, bio)) != NULL)
			n = i2d_TS_RESP(resp, &der);
	}
	TS_RESP_free(resp);
	BIO_free(bio);
	ASN1_OBJECT_free(policy);
	TS_RESP_CTX_free(ctx);
	return der_copy(der, n, ret_len);
}

int
sg_fx_ts_token(X509 *cert, EVP_PKEY *key, const void *data, size_t len,
    uint8_t **ret, size_t *ret_len)
{
	uint8_t *req, *resp = NULL;
	size_t req_len = 0, resp_len = 0;
	const unsigned char *p;
	unsigned char *der = NULL;
	TS_RESP *r = NULL;
	int n = -1;

	*ret = NULL;
	if ((req = sg_fx_ts_request(data, len, 0, &req_len)) != NULL)
		resp = sg_fx_ts_respond(cert, key, req, req_len, &resp_len);
	p = resp;
	if (resp != NULL &&
	    (r = d2i_TS_RESP(NULL, &p, (long)resp_len)) != NULL &&
	    TS_RESP_get_token(r) != NULL)
		n = i2d_PKCS7(TS_RESP_get_token(r), &der);
	TS_RESP_free(r);
	free(resp);
	free(req);
	*ret = der_copy(der, n, ret_len);
	return *ret != NULL ? 0 : -1;
}

/* ---- small helpers ---- */

int
sg_fx_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
sg_fx_http_read(int fd, char *buf, size_t cap, size_t *ret_head,
    size_t *ret_len, const volatile int *stop, int idle_ms)
{
	size_t len = 0, head, need;
	struct pollfd p;
	char *end, *cl;
	int idle = 0;
	ssize_t n;

	for (;;) {
		buf[len] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL) {
			head = (size_t)(end - buf) + 4;
			cl = strcasestr(buf, "\r\nContent-Length: ");
			need = head + (cl != NULL && cl < end ?
			    (size_t)strtoul(cl + 18, NULL, 10) : 0);
			if (len >= need) {
				*ret_head = head;
				*ret_len = need;
				return 1;
			}
		}
		if (len + 1 >= cap)
			return -1;
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, 100) == 0) {
			idle += 100;
			if ((stop != NULL && *stop) ||
			    (idle_ms > 0 && idle >= idle_ms))
				return -1;
			continue;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return len == 0 ? 0 : -1;
		len += (size_t)n;
		idle = 0;
	}
}

char *
sg_fx_replace1(char *s, const char *from, const char *to)
{
	char *at = strstr(s, from), *out;
	size_t n;

	if (at == NULL)
		abort();
	n = strlen(s) - strlen(from) + strlen(to);
	if ((out = malloc(n + 1)) == NULL)
		abort();
	snprintf(out, n + 1, "%.*s%s%s", (int)(at - s), s, to,
	    at + strlen(from));
	free(s);
	return out;
}

/* The int at byte offset `at` of thread i's argument. */
static int *
thread_int(void *args, size_t stride, int i, size_t at)
{
	return (int *)((char *)args + (size_t)i * stride + at);
}

int
sg_fx_threads(int n, void *(*fn)(void *), void *args, size_t stride,
    size_t failures_at, int *ret_failures)
{
	pthread_t *th;
	int i, started = 0;

	if (ret_failures != NULL) {
		*ret_failures = 0;
		for (i = 0; i < n; i++)
			*thread_int(args, stride, i, failures_at) = 0;
	}
	if (n <= 0 || (th = calloc((size_t)n, sizeof(*th))) == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, fn,
		    (char *)args + (size_t)i * stride) != 0)
			break;
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		if (ret_failures != NULL)
			*ret_failures += *thread_int(args, stride, i,
			    failures_at);
	}
	free(th);
	return started;
}

void
sg_fx_hexdec(const char *hex, uint8_t *out, size_t n)
{
	size_t len;

	if (sg_hex_decode(hex, strlen(hex), out, n, &len) != 0 || len != n)
		abort();
}

/* ---- approval envelopes ---- */

#define FX_APPROVAL_TYPE "application/vnd.signgate.approval.v1+text"

/* 1 when sig (b64) is officer's SHA-256 signature over the DSSE PAE of
 * body. */
static int
pae_verifies(const char *body, size_t blen, const char *sig64,
    EVP_PKEY *officer)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	uint8_t *sig = NULL;
	size_t slen = 0;
	char *pae = NULL;
	int n, ok;

	n = asprintf(&pae, "DSSEv1 %zu %s %zu %.*s",
	    strlen(FX_APPROVAL_TYPE), FX_APPROVAL_TYPE, blen, (int)blen,
	    body);
	ok = m != NULL && n > 0 &&
	    sg_b64_decode(sig64, strlen(sig64), &sig, &slen) == 0 &&
	    EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, officer) == 1 &&
	    EVP_DigestVerify(m, sig, slen, (uint8_t *)pae, (size_t)n) == 1;
	EVP_MD_CTX_free(m);
	free(pae);
	free(sig);
	return ok;
}

int
sg_fx_envelope_ok(const char *json, const char *body, EVP_PKEY *officer,
    const char *keyid)
{
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	json_t *s0 = json_array_get(json_object_get(root, "signatures"), 0);
	const char *type = json_string_value(json_object_get(root,
	"payloadType"));
	const char *p64 = json_string_value(json_object_get(root, "payload"));
	const char *s64 = json_string_value(json_object_get(s0, "sig"));
	const char *kid = json_string_value(json_object_get(s0, "keyid"));
	uint8_t *got = NULL;
	size_t glen = 0;
	int ok;

	ok = type != NULL && strcmp(type, FX_APPROVAL_TYPE) == 0 &&
	    p64 != NULL && s64 != NULL &&
	    (keyid == NULL || (kid != NULL && strcmp(kid, keyid) == 0)) &&
	    sg_b64_decode(p64, strlen(p64), &got, &glen) == 0 &&
	    glen == strlen(body) && memcmp(got, body, glen) == 0 &&
	    pae_verifies(body, glen, s64, officer);
	free(got);
	json_decref(root);
	return ok;
}

/* ---- RFC 6962 test vectors ---- */

const char *const sg_fx_rfc6962_leaves[SG_FX_RFC6962_LEAVES] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

const char *const sg_fx_rfc6962_roots[SG_FX_RFC6962_LEAVES + 1] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

void
sg_fx_rfc6962_leaf_hash(size_t i, uint8_t out[SG_HASH_LEN])
{
	uint8_t data[16];
	size_t len = strlen(sg_fx_rfc6962_leaves[i]) / 2;

	sg_fx_hexdec(sg_fx_rfc6962_leaves[i], data, len);
	sg_merkle_leaf_hash(data, len, out);
}

/* transparency-dev/merkle proof/verify_test.go. */
const struct sg_fx_incl_vec sg_fx_rfc6962_incl[SG_FX_RFC6962_NINCL] = {
	{ 1, 1, 0, { NULL } },
	{ 1, 8, 3, {
	"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, {
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 3, 3, 1, {
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 2, 5, 3, {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

const struct sg_fx_cons_vec sg_fx_rfc6962_cons[SG_FX_RFC6962_NCONS] = {
	{ 1, 1, 0, { NULL } },
	{ 1, 8, 3, {
	"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, {
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	"ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 5, 2, {
	"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
	{ 6, 7, 3, {
	"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
	"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
};

/* ---- a software security key ---- */

char *
sg_fx_b64url(const uint8_t *in, size_t len)
{
	char *out;
	size_t i, n;

	if ((out = malloc(4 * (len / 3 + 1) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	n = strlen(out);
	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
	for (i = 0; i < n; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
}

int
sg_fx_wa_resign(EVP_PKEY *key, struct sg_fx_wa_assertion *a)
{
	EVP_MD_CTX *mctx = NULL;
	uint8_t *msg = NULL, *sig = NULL;
	size_t mlen = a->authdata_len + 32, slen = 0;
	int r = -1;

	if ((msg = malloc(mlen)) == NULL)
		goto out;
	memcpy(msg, a->authdata, a->authdata_len);
	SHA256((const unsigned char *)a->client_data, a->client_data_len,
	    msg + a->authdata_len);
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(mctx, NULL, &slen, msg, mlen) != 1 ||
	    (sig = malloc(slen)) == NULL ||
	    EVP_DigestSign(mctx, sig, &slen, msg, mlen) != 1)
		goto out;
	free(a->sig);
	a->sig = sig;
	a->sig_len = slen;
	sig = NULL;
	r = 0;
out:
	EVP_MD_CTX_free(mctx);
	free(msg);
	free(sig);
	return r;
}

int
sg_fx_wa_sign(EVP_PKEY *key, const struct sg_fx_wa_opts *o,
    const uint8_t *challenge, size_t clen, struct sg_fx_wa_assertion *ret)
{
	static const char *const cross[] =
	    { "", ",\"crossOrigin\":false", ",\"crossOrigin\":true" };
	char *ch = NULL;
	int n;

	memset(ret, 0, sizeof(*ret));
	if ((ch = sg_fx_b64url(challenge, clen)) == NULL)
		return -1;
	SHA256((const unsigned char *)o->rp_id, strlen(o->rp_id),
	    ret->authdata);
	ret->authdata[32] = o->flags;
	ret->authdata[36] = 7;          /* signCount 7, big-endian */
	ret->authdata_len = 37;
	n = asprintf(&ret->client_data, "{\"type\":\"%s\",\"challenge\":"
	    "\"%s\",\"origin\":\"%s\"%s%s}",
	    o->type != NULL ? o->type : "webauthn.get", ch, o->origin,
	    cross[o->cross_origin], o->extra != NULL ? o->extra : "");
	free(ch);
	if (n < 0) {
		ret->client_data = NULL;
		return -1;
	}
	ret->client_data_len = (size_t)n;
	if (sg_fx_wa_resign(key, ret) != 0) {
		sg_fx_wa_free(ret);
		return -1;
	}
	return 0;
}

void
sg_fx_wa_free(struct sg_fx_wa_assertion *a)
{
	if (a == NULL)
		return;
	free(a->client_data);
	free(a->sig);
	memset(a, 0, sizeof(*a));
}

/* ---- a log signed in process ---- */

int
sg_fx_log_sign(EVP_PKEY *key, const char *origin,
    const struct sg_witness_request *req, struct sg_witness_reply *ret)
{
	struct sg_checkpoint cp;
	EVP_MD_CTX *m;
	size_t siglen = SG_ED25519_SIG;
	char *text = NULL;
	int ok;

	memset(ret, 0, sizeof(*ret));
	memset(&cp, 0, sizeof(cp));
	snprintf(cp.origin, sizeof(cp.origin), "%s", origin);
	cp.size = req->size;
	memcpy(cp.root, req->root, SG_HASH_LEN);
	if (sg_checkpoint_format(&cp, &text) != 0)
		return SG_ERR_INVALID;
	m = EVP_MD_CTX_new();
	ok = m != NULL && EVP_DigestSignInit(m, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(m, ret->sig, &siglen, (const uint8_t *)text,
	    strlen(text)) == 1;
	EVP_MD_CTX_free(m);
	free(text);
	ret->rec.present = 1;
	ret->rec.size = req->size;
	memcpy(ret->rec.root, req->root, SG_HASH_LEN);
	return ok ? 0 : SG_ERR_CRYPTO;
}

static int
fx_log_sign_cb(void *ctx, const struct sg_witness_request *req,
    struct sg_witness_reply *ret)
{
	const struct sg_fx_log *l = ctx;

	return sg_fx_log_sign(l->key, l->origin, req, ret);
}

int
sg_fx_log_open(struct sg_fx_log *l, const char *dir, const char *origin)
{
	uint8_t pub[SG_ED25519_PUB];
	size_t publen = sizeof(pub);
	char err[256] = "";

	memset(l, 0, sizeof(*l));
	l->origin = origin;
	if ((l->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(l->key, pub, &publen) != 1) {
		fprintf(stderr, "sg_fx_log_open: no Ed25519 key\n");
		sg_fx_log_close(l);
		return -1;
	}
	if (sg_store_open(dir, &l->st) != 0 ||
	    sg_tlog_open(l->st, origin, pub, fx_log_sign_cb, l, &l->log, err,
	    sizeof(err)) != 0) {
		fprintf(stderr, "sg_fx_log_open: cannot open the store in %s%s"
		    "%s\n", dir, err[0] != '\0' ? ": " : "", err);
		sg_fx_log_close(l);
		return -1;
	}
	return 0;
}

struct fx_log_batch {
	struct sg_tlog *log;
	uint64_t from, to;
	int (*entry)(uint64_t, char *, size_t);
};

static int
fx_log_batch_job(struct sg_txn *t, void *arg)
{
	const struct fx_log_batch *b = arg;
	char buf[4096];
	uint64_t i, idx;
	int n, r;

	for (i = b->from; i < b->to; i++) {
		if ((n = b->entry(i, buf, sizeof(buf))) < 0 ||
		    (size_t)n >= sizeof(buf))
			return SG_ERR_INTERNAL;
		if ((r = sg_tlog_append(b->log, t, buf, (size_t)n,
		    &idx)) != 0)
			return r;
	}
	return 0;
}

int
sg_fx_log_append(struct sg_fx_log *l, uint64_t from, uint64_t to,
    int (*entry)(uint64_t i, char *buf, size_t cap))
{
	struct fx_log_batch b = { l->log, from, to, entry };

	return sg_store_write(l->st, fx_log_batch_job, &b);
}

void
sg_fx_log_close(struct sg_fx_log *l)
{
	/* The store's writer calls the log's hooks: the store closes first. */
	if (l->st != NULL)
		sg_store_close(l->st);
	sg_tlog_free(l->log);
	EVP_PKEY_free(l->key);
	memset(l, 0, sizeof(*l));
}

/* ---- small helpers, continued ---- */

size_t
sg_fx_body_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sg_fx_body *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (n > SG_FX_BODY_MAX - b->len)
		return 0;
	if ((p = realloc(b->p, b->len + n + 1)) == NULL)
		return 0;
	b->p = p;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

EVP_PKEY *
sg_fx_read_key(const char *path)
{
	EVP_PKEY *k;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}
