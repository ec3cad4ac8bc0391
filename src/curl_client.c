/*
 * The clients' libcurl easy handle (see include/sg_curl.h): a setting a
 * client must not do without is made here, for every client at once.
 */
#include <curl/curl.h>

#include "sg_curl.h"
#include "sg_err.h"

int
sg_curl_new(const char *cafile, long connect_timeout, char *errbuf,
    curl_write_callback write, void *arg, CURL **ret)
{
	CURL *curl;
	int r = SG_ERR_INTERNAL;

	*ret = NULL;
	if ((curl = curl_easy_init()) == NULL)
		return SG_ERR_NOMEM;
#define SET(opt, val) do {						\
	if (curl_easy_setopt(curl, (opt), (val)) != CURLE_OK)		\
		goto out;						\
} while (0)
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "https,http");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (cafile != NULL)
		SET(CURLOPT_CAINFO, cafile);
	SET(CURLOPT_CONNECTTIMEOUT, connect_timeout);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "signgate/1");
	SET(CURLOPT_WRITEFUNCTION, write);
	SET(CURLOPT_WRITEDATA, arg);
#undef SET
	*ret = curl;
	curl = NULL;
	r = 0;
out:
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return r;
}
