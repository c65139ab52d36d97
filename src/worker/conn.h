/* conn.h - what the client connection (conn.c) and the HTTP front
 * (httpd.c) share, private to src/worker/: the protocol of a connection,
 * the HTTP state hung on it, and the calls each makes into the other.
 */
#ifndef RP_WORKER_CONN_H
#define RP_WORKER_CONN_H

#include <stddef.h>

#include "rp_buf.h"
#include "rp_http.h"
#include "worker.h"

/* c->proto */
#define CONN_PROTO_UNKNOWN 0
#define CONN_PROTO_IPC     1
#define CONN_PROTO_HTTP    2

/* After an answer that closes an HTTP connection: the write side is shut
 * and what the client still sends is read and dropped for this long, so it
 * reads the answer rather than a reset (nginx's lingering close). */
#define HTTP_LINGER_MS 2000

/* One HTTP request's place in its connection's answer order. */
struct http_slot {
    struct rp_conn sub; /* first: the stand-in request.c answers through */
    struct http_slot *next;
    struct rp_buf resp; /* the whole response once filled */
    int filled;
    int interim;       /* "100 Continue" to send when this slot reaches the head */
    int close;         /* the connection closes after this answer */
    int head_only;     /* HEAD: headers only */
    int keep_alive_10; /* an HTTP/1.0 client that asked for keep-alive */
    int in_queue;
    int counted; /* its request counts in the client's pending */
    size_t held; /* bytes of resp counted in rp_conn_hold() */
};

/* HTTP state of a client connection. */
struct rp_http_conn {
    struct rp_http_parser hp;
    struct http_slot *head, *tail;
    struct http_slot *cur; /* the request being received (head complete) */
    unsigned nslots;
    int closing;   /* an answer that closes the connection is queued: parse no more */
    int lingering; /* everything answered, write side shut: drop input until EOF */
};

/* conn.c, for httpd.c */
/* Back-pressure: C holds so many answers that none of its further
 * requests is framed (nor read) until it reads some. */
int rp_conn_backlogged(const struct rp_conn *c);
/* Queue LEN bytes of DATA (and a newline when NEWLINE) for C. Returns 0,
 * or -1 out of memory. */
int rp_conn_out_append(struct rp_conn *c, const char *data, size_t len, int newline);
/* Put C on the worker's flush list (written at the end of the turn). */
void rp_conn_queue_flush(struct rp_conn *c);
/* Register the epoll events C needs now. */
void rp_conn_update_events(struct rp_conn *c);
/* A request of C ended: take up buffered input, or close when done. */
void rp_conn_after_request(struct rp_conn *c);
/* The event handler of a client (and of an HTTP request's stand-in). */
void rp_conn_on_event(struct rp_ev *ev, uint32_t events);

/* httpd.c, for conn.c */
int rp_httpd_setup(struct rp_conn *c);        /* C speaks HTTP: its state; -1 out of memory */
int rp_httpd_paused(const struct rp_conn *c); /* HTTP back-pressure holds C's input */
int rp_httpd_finish_request(const struct rp_conn *c); /* retiring: finish the request being read */
void rp_httpd_process_input(struct rp_conn *c);       /* parse and dispatch what C sent */
void rp_httpd_on_error(struct rp_conn *c);    /* a malformed or timed-out request: answer, close */
void rp_httpd_linger_read(struct rp_conn *c); /* lingering close: read and drop */
void rp_httpd_drop_slots(struct rp_conn *c);  /* C closes: its slots leave the queue */
void rp_httpd_slot_free(struct http_slot *s); /* the last reference to S's stand-in went */
void rp_httpd_sub_answer(struct rp_conn *sub, const char *data, size_t len); /* fill SUB's slot */
void rp_httpd_sub_done(struct rp_conn *sub); /* SUB's request is over */

#endif
