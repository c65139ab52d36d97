/* rp_privs.h - server.user / server.group: resolve them, hand the files the
 * daemon created to them, and drop root for good. */
#ifndef RP_PRIVS_H
#define RP_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

/* Look up USER and GROUP (either may be NULL). *UID / *GID are -1 when not
 * set; a user without a group takes the user's primary group. Returns 0, or
 * -1 with ERR. */
int rp_privs_resolve(const char *user, const char *group, uid_t *uid, gid_t *gid, char *err,
                     size_t errlen);

/* When running as root, become UID/GID (supplementary groups reset). No
 * effect otherwise. Returns 0, or -1 with ERR. */
int rp_privs_drop(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen);

#endif
