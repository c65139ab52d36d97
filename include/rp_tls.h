/* rp_tls.h - the TLS client set-up every upstream connection shares (the
 * workers' HTTP/1.1 transport, the head follower's WebSocket feeds):
 * TLS 1.2 or later, the peer's chain always verified against tls_ca_file
 * or the system store, the host name (or IP address) always checked, SNI
 * always sent. There is no way to turn verification off. */
#ifndef RP_TLS_H
#define RP_TLS_H

#include <openssl/ssl.h>

/* A new client context verifying chains against CA_FILE (NULL: the system
 * store). NULL when it cannot be made: *WHY says why. */
SSL_CTX *rp_tls_client_ctx(const char *ca_file, const char **why);

/* Make SSL check that the certificate names HOST (an IP literal without
 * brackets when NUMERIC) and send HOST as SNI (names only). Returns 0, -1. */
int rp_tls_set_peer(SSL *ssl, const char *host, int numeric);

#endif
