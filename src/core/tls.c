/* tls.c - the shared TLS client set-up (rp_tls.h). */
#include "rp_tls.h"

#include <openssl/x509v3.h>

SSL_CTX *rp_tls_client_ctx(const char *ca_file, const char **why)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *why = "cannot create a TLS context";
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        SSL_CTX_free(ctx);
        *why = ca_file ? "cannot load tls_ca_file" : "cannot load the system CA store";
        return NULL;
    }
    return ctx;
}

int rp_tls_set_peer(SSL *ssl, const char *host, int numeric)
{
    int ok = numeric ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
                     : SSL_set1_host(ssl, host) && SSL_set_tlsext_host_name(ssl, host);
    return ok == 1 ? 0 : -1;
}
