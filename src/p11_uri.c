/*
 * RFC 7512 PKCS#11 URIs: the subset that names a key (see
 * include/sg_p11_uri.h).  Every attribute the RFC defines is known; those
 * we do not use are accepted and ignored, anything else is refused, and a
 * PIN in a URI is refused outright.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_err.h"
#include "sg_limits.h"
#include "sg_p11_uri.h"

enum uri_attr_use { URI_TOKEN, URI_OBJECT, URI_ID, URI_IGNORE, URI_REFUSE };

struct uri_attr {
	const char *name;
	int query;              /* lives after '?' */
	enum uri_attr_use use;
};

/* Every attribute RFC 7512 defines; anything else is refused, because the
 * RFC says an unrecognised path attribute matches nothing. */
static const struct uri_attr uri_attrs[] = {
	{ "token", 0, URI_TOKEN },
	{ "object", 0, URI_OBJECT },
	{ "id", 0, URI_ID },
	{ "manufacturer", 0, URI_IGNORE },
	{ "serial", 0, URI_IGNORE },
	{ "model", 0, URI_IGNORE },
	{ "library-manufacturer", 0, URI_IGNORE },
	{ "library-description", 0, URI_IGNORE },
	{ "library-version", 0, URI_IGNORE },
	{ "type", 0, URI_IGNORE },
	{ "slot-description", 0, URI_IGNORE },
	{ "slot-manufacturer", 0, URI_IGNORE },
	{ "slot-id", 0, URI_IGNORE },
	{ "pin-source", 1, URI_IGNORE },
	{ "module-name", 1, URI_IGNORE },
	{ "module-path", 1, URI_IGNORE },
	/* A PIN in a URI ends up in shell history and process lists. */
	{ "pin-value", 1, URI_REFUSE },
};

static int
uri_char_ok(unsigned char c, int query)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	if (c != '\0' && strchr("-._~:[]@!$'()*+,=", c) != NULL)
		return 1;
	if (query)
		return c != '\0' && strchr("/?|", c) != NULL;
	return c == '&';
}

static int
uri_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes v (vlen bytes) into out (cap bytes; out may be NULL
 * when cap is 0).  With check_only, validates and counts only. */
static int
uri_decode(const char *v, size_t vlen, int query, uint8_t *out, size_t cap,
    int check_only, size_t *ret_len)
{
	size_t i, o = 0;
	int hi, lo;
	uint8_t c;

	for (i = 0; i < vlen; i++) {
		if (v[i] == '%') {
			if (vlen - i < 3)
				return SG_ERR_INVALID;
			if ((hi = uri_hexval((unsigned char)v[i + 1])) < 0 ||
			    (lo = uri_hexval((unsigned char)v[i + 2])) < 0)
				return SG_ERR_INVALID;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		} else if (uri_char_ok((unsigned char)v[i], query))
			c = (uint8_t)v[i];
		else
			return SG_ERR_INVALID;
		if (!check_only) {
			if (o >= cap)
				return SG_ERR_BUFFER;
			out[o] = c;
		}
		o++;
	}
	*ret_len = o;
	return 0;
}

int
sg_p11_uri_parse(const char *uri, char ret_token[33],
    char *ret_object, size_t object_cap, uint8_t *ret_id, size_t id_cap,
    size_t *ret_id_len)
{
	const size_t nattrs = sizeof(uri_attrs) / sizeof(uri_attrs[0]);
	const char *p, *end, *path_end, *seg, *seg_end, *eq;
	uint32_t seen = 0;
	size_t len, i, n, namelen;
	int query, r = SG_ERR_INVALID;

	if (ret_token != NULL)
		memset(ret_token, 0, SG_TOKEN_LABEL_MAX + 1);
	if (ret_object != NULL && object_cap > 0)
		memset(ret_object, 0, object_cap);
	if (ret_id != NULL && id_cap > 0)
		memset(ret_id, 0, id_cap);
	if (ret_id_len != NULL)
		*ret_id_len = 0;
	if (uri == NULL || ret_token == NULL || ret_id_len == NULL ||
	    (ret_object == NULL && object_cap > 0) ||
	    (ret_id == NULL && id_cap > 0))
		return SG_ERR_INVALID;
	if ((len = strnlen(uri, SG_P11_URI_MAX + 1)) > SG_P11_URI_MAX)
		return SG_ERR_TOO_LARGE;
	/* URI schemes are case-insensitive (RFC 3986, section 3.1). */
	if (len < 7 || strncasecmp(uri, "pkcs11:", 7) != 0)
		return SG_ERR_INVALID;
	end = uri + len;
	p = uri + 7;
	if ((path_end = memchr(p, '?', (size_t)(end - p))) == NULL)
		path_end = end;

	for (query = 0; query < 2; query++) {
		const char *comp = query ? path_end + 1 : p;
		const char *comp_end = query ? end : path_end;
		char sep = query ? '&' : ';';

		if (query && path_end == end)
			break;
		if (comp == comp_end)
			continue;	/* "pkcs11:" and "pkcs11:...?" are valid */
		for (seg = comp; seg <= comp_end; seg = seg_end + 1) {
			const struct uri_attr *a = NULL;
			const char *v;
			size_t vlen;

			if ((seg_end = memchr(seg, sep,
			    (size_t)(comp_end - seg))) == NULL)
				seg_end = comp_end;
			if ((eq = memchr(seg, '=', (size_t)(seg_end - seg))) ==
			    NULL)
				goto fail;	/* also empty segments */
			namelen = (size_t)(eq - seg);
			for (i = 0; i < nattrs; i++) {
				if (uri_attrs[i].query == query &&
				    strlen(uri_attrs[i].name) == namelen &&
				    memcmp(uri_attrs[i].name, seg,
				    namelen) == 0) {
					a = &uri_attrs[i];
					break;
				}
			}
			if (a == NULL || (seen & (1u << i)) != 0)
				goto fail;	/* unknown, or repeated */
			seen |= 1u << i;
			v = eq + 1;
			vlen = (size_t)(seg_end - v);
			switch (a->use) {
			case URI_TOKEN:
				r = uri_decode(v, vlen, query,
				    (uint8_t *)ret_token, SG_TOKEN_LABEL_MAX, 0,
				    &n);
				if (r == SG_ERR_BUFFER)
					r = SG_ERR_INVALID; /* no such label */
				if (r != 0)
					goto fail;
				if (memchr(ret_token, '\0', n) != NULL) {
					r = SG_ERR_INVALID;
					goto fail;
				}
				break;
			case URI_OBJECT:
				r = uri_decode(v, vlen, query,
				    (uint8_t *)ret_object,
				    object_cap > 0 ? object_cap - 1 : 0, 0, &n);
				if (r != 0)
					goto fail;
				if (n > 0 && memchr(ret_object, '\0', n) !=
				    NULL) {
					r = SG_ERR_INVALID;
					goto fail;
				}
				break;
			case URI_ID:
				r = uri_decode(v, vlen, query, ret_id, id_cap,
				    0, ret_id_len);
				if (r != 0)
					goto fail;
				break;
			case URI_IGNORE:
				/* Still checked, so junk is not accepted. */
				if ((r = uri_decode(v, vlen, query, NULL, 0,
				    1, &n)) != 0)
					goto fail;
				break;
			case URI_REFUSE:
				r = SG_ERR_INVALID;
				goto fail;
			}
			if (seg_end == comp_end)
				break;
		}
	}
	return 0;
fail:
	if (r == 0)
		r = SG_ERR_INVALID;
	memset(ret_token, 0, SG_TOKEN_LABEL_MAX + 1);
	if (object_cap > 0)
		memset(ret_object, 0, object_cap);
	if (id_cap > 0)
		memset(ret_id, 0, id_cap);
	*ret_id_len = 0;
	return r;
}
