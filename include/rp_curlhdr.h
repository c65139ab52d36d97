/* rp_curlhdr.h - the request headers of a JSON-RPC call made with libcurl
 * (the prober's and the head follower's): the JSON content type, no
 * "Expect: 100-continue" wait, and the endpoint's configured headers.
 */
#ifndef RP_CURLHDR_H
#define RP_CURLHDR_H

#include <curl/curl.h>

/* The header list for a call with the endpoint's COUNT configured HEADERS
 * ("Name: value" each) after the fixed two. Returns NULL when out of memory
 * (nothing is left allocated); the caller frees it with curl_slist_free_all. */
struct curl_slist *rp_curl_json_headers(char *const *headers, int count);

#endif
