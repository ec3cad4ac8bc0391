/*
 * The front's TLS material and its clients' identity.
 *
 * The server certificate, its private key and the client CA are read whole
 * (at most SG_PEM_FILE_MAX bytes each) and handed to libmicrohttpd
 * (HTTPS_MEM_CERT, _KEY, _TRUST); sg_http_check_tls() loads them the same
 * way without listening, for the configuration check.
 *
 * Identity.  libmicrohttpd (with HTTPS_MEM_TRUST) requests a client
 * certificate but completes the handshake without one.  The first request
 * of a connection verifies the peer's chain against the client CA with the
 * TLS-client key purpose (gnutls_certificate_verify_peers) and caches the
 * result, subject CN and SHA-256 in the slot, with a copy of the
 * certificate.  Later requests on that connection compare the peer's
 * certificate with the copy (a memcmp) and verify again only if it
 * differs.  There is no TLS session resumption (libmicrohttpd sets up
 * neither a session cache nor tickets), and renegotiation closes the
 * connection (GNUTLS_E_REHANDSHAKE is a hard error there); verification
 * is per connection in any case, so a resumed session could not bypass it.
 * A request without a verified certificate is passed to the handler as
 * unauthenticated; the API refuses it (401) except for the public
 * endpoints.  One that carries a body is refused at once (401), as no
 * public endpoint takes one (request_start() in http.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/x509.h>

#include "sg_crypto.h"
#include "sg_err.h"
#include "sg_util.h"
#include "http_int.h"

/* ---- identity ----------------------------------------------------------- */

/* Verifies the peer's certificate into the slot's cache. */
static void
verify_peer(gnutls_session_t sess, const gnutls_datum_t *cert,
    struct slot *s)
{
	gnutls_typed_vdata_st purpose;
	gnutls_x509_crt_t crt = NULL;
	unsigned int status = 0;
	char cn[256], extra[8], esc[512];
	size_t cnlen = sizeof(cn), elen = sizeof(extra);

	atomic_fetch_add(&http_st.verifications, 1);
	free(s->der);
	s->der = NULL;
	s->der_len = 0;
	s->id_state = -1;
	s->cn[0] = '\0';
	memset(s->sha256, 0, sizeof(s->sha256));
	if ((s->der = malloc(cert->size)) == NULL)
		return;
	memcpy(s->der, cert->data, cert->size);
	s->der_len = cert->size;

	memset(&purpose, 0, sizeof(purpose));
	purpose.type = GNUTLS_DT_KEY_PURPOSE_OID;
	purpose.data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT;
	if (gnutls_certificate_verify_peers(sess, &purpose, 1, &status) < 0 ||
	    status != 0) {
		sg_log_debug("http: client certificate refused (status 0x%x)",
		    status);
		return;
	}
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, cert, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	/* Exactly one CN, so that "CN=alice,CN=bob" maps to no one. */
	if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    0, cn, &cnlen) < 0 || strlen(cn) != cnlen ||
	    gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1,
	    0, extra, &elen) != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
		cn[0] = '\0';
	snprintf(s->cn, sizeof(s->cn), "%s", cn);
	sg_sha256(cert->data, cert->size, s->sha256);
	s->id_state = 1;
	sg_escape(s->cn, strlen(s->cn), esc, sizeof(esc));
	sg_log_debug("http: client certificate verified (CN \"%s\")", esc);
out:
	gnutls_x509_crt_deinit(crt);
}

/*
 * 1 if the connection's peer has a verified client certificate.  Verifies
 * only when the certificate differs from the one already checked on this
 * connection (normally: on its first request only).
 */
int
http_identify(struct MHD_Connection *conn, struct slot *s)
{
	const union MHD_ConnectionInfo *ci;
	const gnutls_datum_t *certs;
	gnutls_session_t sess;
	unsigned int ncerts = 0;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci == NULL || (sess = ci->tls_session) == NULL)
		return 0;
	certs = gnutls_certificate_get_peers(sess, &ncerts);
	if (certs == NULL || ncerts == 0)
		return 0;
	if (s->der == NULL || s->der_len != certs[0].size ||
	    memcmp(s->der, certs[0].data, s->der_len) != 0)
		verify_peer(sess, &certs[0], s);
	return s->id_state == 1;
}

/* ---- TLS material ------------------------------------------------------- */

int
http_read_tls_files(struct sg_http *h, const struct sg_http_config *cfg,
    char *errbuf, size_t errlen)
{
	size_t len;
	int r;

	if ((r = sg_read_file(cfg->cert_file, SG_PEM_FILE_MAX, &h->cert_pem,
	    &len)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", cfg->cert_file,
		    sg_strerror(r));
		return r;
	}
	if ((r = sg_read_file(cfg->key_file, SG_PEM_FILE_MAX, &h->key_pem,
	    &h->key_len)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", cfg->key_file,
		    sg_strerror(r));
		return r;
	}
	if (cfg->no_client_cert)
		return 0;
	if ((r = sg_read_file(cfg->client_ca_file, SG_PEM_FILE_MAX, &h->ca_pem,
	    &len)) != 0) {
		snprintf(errbuf, errlen, "%s: %s", cfg->client_ca_file,
		    sg_strerror(r));
		return r;
	}
	return 0;
}

/* Reads one TLS file for sg_http_check_tls(); a problem is reported. */
static int
check_read(const char *what, const char *path, char **ret, size_t *ret_len,
    sg_http_report_fn report, void *arg)
{
	char msg[1024];
	int r, e;

	errno = 0;
	if ((r = sg_read_file(path, SG_PEM_FILE_MAX, ret, ret_len)) == 0)
		return 0;
	e = errno;
	snprintf(msg, sizeof(msg), "%s %s: %s", what, path,
	    r == SG_ERR_IO && e != 0 ? strerror(e) : sg_strerror(r));
	report(arg, msg);
	return r;
}

unsigned
sg_http_check_tls(const struct sg_http_config *cfg, sg_http_report_fn report,
    void *arg)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_datum_t cd, kd, ad;
	char *cert = NULL, *key = NULL, *ca = NULL, msg[1024];
	size_t cert_len = 0, key_len = 0, ca_len = 0;
	unsigned n = 0;
	int r;

	n += check_read("certificate", cfg->cert_file, &cert, &cert_len,
	    report, arg) != 0;
	n += check_read("private key", cfg->key_file, &key, &key_len, report,
	    arg) != 0;
	n += check_read("client CA", cfg->client_ca_file, &ca, &ca_len,
	    report, arg) != 0;
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		report(arg, "out of memory");
		n++;
		goto out;
	}
	/* What libmicrohttpd does with HTTPS_MEM_CERT, _KEY and _TRUST;
	 * GnuTLS refuses a key that is not the certificate's. */
	if (cert != NULL && key != NULL) {
		cd.data = (unsigned char *)cert;
		cd.size = (unsigned)cert_len;
		kd.data = (unsigned char *)key;
		kd.size = (unsigned)key_len;
		if ((r = gnutls_certificate_set_x509_key_mem(cred, &cd, &kd,
		    GNUTLS_X509_FMT_PEM)) < 0) {
			snprintf(msg, sizeof(msg), "certificate %s with private "
			    "key %s: %s", cfg->cert_file, cfg->key_file,
			    gnutls_strerror(r));
			report(arg, msg);
			n++;
		}
	}
	if (ca != NULL) {
		ad.data = (unsigned char *)ca;
		ad.size = (unsigned)ca_len;
		if ((r = gnutls_certificate_set_x509_trust_mem(cred, &ad,
		    GNUTLS_X509_FMT_PEM)) <= 0) {
			snprintf(msg, sizeof(msg), "client CA %s: %s",
			    cfg->client_ca_file, r < 0 ? gnutls_strerror(r) :
			    "no certificate in it");
			report(arg, msg);
			n++;
		}
	}
out:
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	free(cert);
	sg_freezero(key, key_len);
	free(ca);
	return n;
}
