/* handoff.c - one client fd plus its pending input bytes per SEQPACKET
 * message (see rp_handoff.h). */
#include "rp_handoff.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int rp_handoff_send(int ch, int fd, const char *data, size_t len)
{
    char one = 0;
    struct iovec iov = {.iov_base = len ? (void *)data : &one, .iov_len = len ? len : 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof(int));
    /* the first byte says whether data follows (a zero-length message
     * cannot carry an fd on every kernel) */
    char hdr = len ? 1 : 0;
    struct iovec iov2[2] = {{.iov_base = &hdr, .iov_len = 1}, iov};
    msg.msg_iov = iov2;
    msg.msg_iovlen = len ? 2 : 1;
    for (;;) {
        ssize_t n = sendmsg(ch, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return 1;
        return -1;
    }
}

int rp_handoff_recv(int ch, char *buf, size_t *len)
{
    char hdr;
    struct iovec iov[2] = {{.iov_base = &hdr, .iov_len = 1},
                           {.iov_base = buf, .iov_len = RP_HANDOFF_MAX_BYTES}};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr msg = {
        .msg_iov = iov, .msg_iovlen = 2, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t n;
    do {
        n = recvmsg(ch, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? RP_HANDOFF_AGAIN : RP_HANDOFF_CLOSED;
    if (n == 0)
        return RP_HANDOFF_CLOSED;
    int fd = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
            cm->cmsg_len >= CMSG_LEN(sizeof(int)))
            memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    if (fd < 0)
        return RP_HANDOFF_DROPPED;
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        close(fd);
        return RP_HANDOFF_DROPPED;
    }
    *len = hdr ? (size_t)(n - 1) : 0;
    return fd;
}
