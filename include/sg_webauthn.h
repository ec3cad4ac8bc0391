/*
 * WebAuthn assertions as approval signatures (docs/API.md, "Approvals made
 * with a security key").
 *
 * An officer may register WebAuthn credentials (a FIDO2 security key) in
 * the policy, next to or instead of its PEM approval key.  An approval
 * made with one is a DSSE envelope whose signature is a WebAuthn
 * assertion: the challenge is SHA-256(PAE(type, body)), and the envelope's
 * signature object carries, beside "keyid" and "sig", a "webauthn" object
 * with the credential id, the authenticator data and the client data JSON.
 *
 * This module checks one assertion against one registered credential; it
 * does no I/O and knows nothing of requests.  The same function serves
 * approvals (gateway, signer, offline verification) and the console's
 * sign-in and actions, each with its own challenge.
 */
#ifndef SG_WEBAUTHN_H
#define SG_WEBAUTHN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sg_limits.h"

#define SG_WEBAUTHN_CRED_ID_MAX 1023      /* bytes, decoded (WebAuthn's) */
#define SG_WEBAUTHN_RP_ID_SIZE 256        /* a domain name, NUL included */
#define SG_WEBAUTHN_ORIGIN_SIZE 320       /* "https://" host [":" port] */
#define SG_WEBAUTHN_AUTHDATA_MAX 1024     /* bytes, decoded */
#define SG_WEBAUTHN_CLIENT_DATA_MAX 2048  /* bytes, decoded */

/* Flags of the authenticator data (WebAuthn Level 2, 6.1). */
#define SG_WEBAUTHN_FLAG_UP 0x01          /* user present */
#define SG_WEBAUTHN_FLAG_UV 0x04          /* user verified */

/* A credential registered in the policy. */
struct sg_webauthn_cred {
	uint8_t id[SG_WEBAUTHN_CRED_ID_MAX];
	size_t id_len;
	char rp_id[SG_WEBAUTHN_RP_ID_SIZE];   /* the RP ID it was made for */
	char origin[SG_WEBAUTHN_ORIGIN_SIZE]; /* the origin it is used from */
	int require_uv;                       /* user verification required */
	EVP_PKEY *pub;                        /* ES256 (P-256) or RS256 */
};

/* One assertion, as the browser returns it (all decoded). */
struct sg_webauthn_assertion {
	const uint8_t *cred_id;
	size_t cred_id_len;
	const uint8_t *authdata;
	size_t authdata_len;
	const uint8_t *client_data;           /* the client data JSON */
	size_t client_data_len;
	const uint8_t *sig;                   /* DER ECDSA or PKCS#1 v1.5 */
	size_t sig_len;
};

/*
 * Checks an assertion made by `cred` over `challenge` (the bytes the
 * client data's "challenge" must hold, base64url without padding):
 * the credential id is cred's; the client data JSON parses (an object,
 * no duplicate members) with "type" "webauthn.get", "challenge" exactly
 * base64url(challenge), "origin" exactly cred->origin, "crossOrigin"
 * absent or false; the authenticator data is at least 37 bytes, its RP ID
 * hash is SHA-256(cred->rp_id), the user-present flag is set, and the
 * user-verified flag too when cred->require_uv; the signature verifies
 * under cred->pub over authdata || SHA-256(client data), with ES256
 * (ECDSA P-256, SHA-256) or RS256 (RSASSA-PKCS1-v1_5, SHA-256).
 *
 * 0 if all hold; otherwise SG_ERR_VERIFY, and why (if not NULL) names the
 * part that failed ("clientDataJSON.origin: ...", "authenticatorData:
 * ...", "sig: ...").  The signature counter is not checked: a policy
 * credential may be used from several gateways, and cloned-key detection
 * is the authenticator vendor's matter (documented).
 */
int sg_webauthn_verify(const struct sg_webauthn_cred *cred,
    const uint8_t *challenge, size_t challenge_len,
    const struct sg_webauthn_assertion *a, char *why, size_t whylen);

/* base64url without padding, as WebAuthn and the policy write ids:
 * encode into a malloc'd NUL-terminated string; decode strictly (no
 * padding, no other alphabet, canonical trailing bits). */
int sg_b64url_encode(const uint8_t *in, size_t len, char **ret);
int sg_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap,
    size_t *ret_len);

#endif
