/*
 * Named sizes shared by more than one module.  A buffer that holds one of
 * these values is declared with the name (plus one for a terminating NUL
 * where it holds a string), never with a bare number.
 */
#ifndef SG_LIMITS_H
#define SG_LIMITS_H

/* PKCS#11: CK_TOKEN_INFO.label is 32 bytes, space-padded. */
#define SG_TOKEN_LABEL_MAX 32
/* The longest RFC 7512 URI we parse. */
#define SG_P11_URI_MAX 4096

#endif
