/*
 * RFC 7512 PKCS#11 URIs, the subset that names a key.  Pure parsing, no
 * I/O and no PKCS#11: the policy module (which must stay I/O-free) and the
 * CLI's smart-card option both use it.
 */
#ifndef SG_P11_URI_H
#define SG_P11_URI_H

#include <stddef.h>
#include <stdint.h>

#include "sg_limits.h"

/*
 * Parses the subset of an RFC 7512 PKCS#11 URI that names a key:
 * "pkcs11:token=<label>;object=<label>;id=<pct-encoded bytes>" (any order,
 * each at most once, percent-decoding; attributes we do not use, such as
 * type= or manufacturer=, are accepted and ignored; pin-value= is refused).
 * Outputs are zeroed first; absent parts stay empty / *ret_id_len = 0.
 * Attributes RFC 7512 does not define (vendor x-... included) are refused,
 * as the RFC says they match nothing.  Errors: SG_ERR_INVALID (syntax, a
 * token label over 32 bytes, NUL in a label), SG_ERR_BUFFER (object or id
 * larger than its buffer), SG_ERR_TOO_LARGE (URI over 4096 bytes); on error
 * all outputs are left zeroed.
 */
int sg_p11_uri_parse(const char *uri, char ret_token[SG_TOKEN_LABEL_MAX + 1],
    char *ret_object, size_t object_cap, uint8_t *ret_id, size_t id_cap,
    size_t *ret_id_len);

#endif
