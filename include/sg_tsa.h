/*
 * An RFC 3161 time-stamping client: asks a TSA (HTTP POST,
 * application/timestamp-query) for a token over SHA-256 of some data (the
 * CMS signature value), checks the response (status granted, the message
 * imprint and nonce match, the token is a signed TSTInfo), and returns the
 * token (DER ContentInfo) for the CMS unsigned attribute.
 */
#ifndef SG_TSA_H
#define SG_TSA_H

#include <stddef.h>
#include <stdint.h>

/* timeout_ms bounds the whole exchange.  SG_ERR_UNAVAILABLE when the
 * authority cannot be reached or refuses; errbuf says why. */
int sg_tsa_timestamp(const char *url, const uint8_t *data, size_t len,
    unsigned timeout_ms, uint8_t **ret_token, size_t *ret_len,
    char *errbuf, size_t errlen);

/* Extracts the token's genTime (unix seconds), for display and tests. */
int sg_tsa_token_time(const uint8_t *token, size_t len, int64_t *ret);

#endif
