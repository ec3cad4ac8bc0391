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
#include "sg_util.h"

#define URI_SCHEME "pkcs11:"
#define URI_SCHEME_LEN (sizeof(URI_SCHEME) - 1)
#define URI_PCT_LEN 3           /* '%' and two hex digits */

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
#define URI_NATTRS (sizeof(uri_attrs) / sizeof(uri_attrs[0]))
/* A parse marks the attributes it met in a 32-bit mask. */
_Static_assert(URI_NATTRS <= 32, "too many URI attributes for the mask");

/* Where a parse puts what it finds; see sg_p11_uri_parse. */
struct uri_out {
	char *token;            /* SG_TOKEN_LABEL_MAX + 1 bytes */
	char *object;           /* object_cap bytes, or NULL when 0 */
	size_t object_cap;
	uint8_t *id;            /* id_cap bytes, or NULL when 0 */
	size_t id_cap;
	size_t *id_len;
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
			if (vlen - i < URI_PCT_LEN)
				return SG_ERR_INVALID;
			if ((hi = sg_hex_digit((unsigned char)v[i + 1])) < 0 ||
			    (lo = sg_hex_digit((unsigned char)v[i + 2])) < 0)
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

/* Zeroes every output there is. */
static void
uri_out_clear(const struct uri_out *o)
{
	if (o->token != NULL)
		memset(o->token, 0, SG_TOKEN_LABEL_MAX + 1);
	if (o->object != NULL && o->object_cap > 0)
		memset(o->object, 0, o->object_cap);
	if (o->id != NULL && o->id_cap > 0)
		memset(o->id, 0, o->id_cap);
	if (o->id_len != NULL)
		*o->id_len = 0;
}

/* The index in uri_attrs of the attribute called name (namelen bytes) in
 * the path (query 0) or the query (1), or -1. */
static int
uri_attr_find(const char *name, size_t namelen, int query)
{
	size_t i;

	for (i = 0; i < URI_NATTRS; i++)
		if (uri_attrs[i].query == query &&
		    strlen(uri_attrs[i].name) == namelen &&
		    memcmp(uri_attrs[i].name, name, namelen) == 0)
			return (int)i;
	return -1;
}

/* Decodes the value v (vlen bytes) of an attribute into its output.  Only
 * an object or id too large for its buffer gives SG_ERR_BUFFER; a token
 * label that long names no token. */
static int
uri_attr_take(enum uri_attr_use use, const char *v, size_t vlen, int query,
    const struct uri_out *o)
{
	size_t n;
	int r;

	switch (use) {
	case URI_TOKEN:
		r = uri_decode(v, vlen, query, (uint8_t *)o->token,
		    SG_TOKEN_LABEL_MAX, 0, &n);
		if (r != 0 || memchr(o->token, '\0', n) != NULL)
			return SG_ERR_INVALID;
		return 0;
	case URI_OBJECT:
		r = uri_decode(v, vlen, query, (uint8_t *)o->object,
		    o->object_cap > 0 ? o->object_cap - 1 : 0, 0, &n);
		if (r != 0)
			return r;
		if (n > 0 && memchr(o->object, '\0', n) != NULL)
			return SG_ERR_INVALID;
		return 0;
	case URI_ID:
		return uri_decode(v, vlen, query, o->id, o->id_cap, 0,
		    o->id_len);
	case URI_IGNORE:
		/* Still checked, so junk is not accepted. */
		return uri_decode(v, vlen, query, NULL, 0, 1, &n);
	case URI_REFUSE:
		break;
	}
	return SG_ERR_INVALID;
}

/*
 * One component, [comp, comp_end): the path, attributes split by ';', or
 * the query (query 1), split by '&'.  Each attribute is known, met once
 * (seen marks those met so far) and of the form name=value.
 */
static int
uri_component(const char *comp, const char *comp_end, int query,
    uint32_t *seen, const struct uri_out *o)
{
	const char sep = query ? '&' : ';';
	const char *seg, *seg_end, *eq;
	int i, r;

	if (comp == comp_end)
		return 0;	/* "pkcs11:" and "pkcs11:...?" are valid */
	for (seg = comp; seg <= comp_end; seg = seg_end + 1) {
		if ((seg_end = memchr(seg, sep,
		    (size_t)(comp_end - seg))) == NULL)
			seg_end = comp_end;
		if ((eq = memchr(seg, '=', (size_t)(seg_end - seg))) == NULL)
			return SG_ERR_INVALID;	/* also empty segments */
		i = uri_attr_find(seg, (size_t)(eq - seg), query);
		if (i < 0 || (*seen & (1u << i)) != 0)
			return SG_ERR_INVALID;	/* unknown, or repeated */
		*seen |= 1u << i;
		if ((r = uri_attr_take(uri_attrs[i].use, eq + 1,
		    (size_t)(seg_end - eq - 1), query, o)) != 0)
			return r;
		if (seg_end == comp_end)
			break;
	}
	return 0;
}

int
sg_p11_uri_parse(const char *uri, char ret_token[SG_TOKEN_LABEL_MAX + 1],
    char *ret_object, size_t object_cap, uint8_t *ret_id, size_t id_cap,
    size_t *ret_id_len)
{
	const struct uri_out o = {
		ret_token, ret_object, object_cap, ret_id, id_cap, ret_id_len
	};
	const char *p, *end, *path_end;
	uint32_t seen = 0;
	size_t len;
	int r;

	uri_out_clear(&o);
	if (uri == NULL || ret_token == NULL || ret_id_len == NULL ||
	    (ret_object == NULL && object_cap > 0) ||
	    (ret_id == NULL && id_cap > 0))
		return SG_ERR_INVALID;
	if ((len = strnlen(uri, SG_P11_URI_MAX + 1)) > SG_P11_URI_MAX)
		return SG_ERR_TOO_LARGE;
	/* URI schemes are case-insensitive (RFC 3986, section 3.1). */
	if (len < URI_SCHEME_LEN ||
	    strncasecmp(uri, URI_SCHEME, URI_SCHEME_LEN) != 0)
		return SG_ERR_INVALID;
	end = uri + len;
	p = uri + URI_SCHEME_LEN;
	if ((path_end = memchr(p, '?', (size_t)(end - p))) == NULL)
		path_end = end;
	r = uri_component(p, path_end, 0, &seen, &o);
	if (r == 0 && path_end != end)
		r = uri_component(path_end + 1, end, 1, &seen, &o);
	if (r != 0)
		uri_out_clear(&o);
	return r;
}
