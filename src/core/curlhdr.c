/* curlhdr.c - request headers of a libcurl JSON-RPC call (rp_curlhdr.h). */
#include "rp_curlhdr.h"

struct curl_slist *rp_curl_json_headers(char *const *headers, int count)
{
    struct curl_slist *list = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *next = list ? curl_slist_append(list, "Expect:") : NULL;
    for (int k = 0; next && k < count; k++)
        next = curl_slist_append(next, headers[k]);
    if (!next) {
        curl_slist_free_all(list);
        return NULL;
    }
    return next;
}
