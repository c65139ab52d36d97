/* privs.c - dropping root privileges after the sockets and the segment are
 * created (server.user / server.group). */
#include "rp_privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rp_privs_resolve(const char *user, const char *group, uid_t *uid, gid_t *gid, char *err,
                     size_t errlen)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (user) {
        struct passwd *pw = getpwnam(user);
        if (!pw) {
            snprintf(err, errlen, "server.user: no such user: %s", user);
            return -1;
        }
        *uid = pw->pw_uid;
        *gid = pw->pw_gid;
    }
    if (group) {
        struct group *gr = getgrnam(group);
        if (!gr) {
            snprintf(err, errlen, "server.group: no such group: %s", group);
            return -1;
        }
        *gid = gr->gr_gid;
    }
    return 0;
}

int rp_privs_drop(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (geteuid() != 0 || (uid == (uid_t)-1 && gid == (gid_t)-1))
        return 0;
    if (gid != (gid_t)-1) {
        if (user ? initgroups(user, gid) != 0 : setgroups(1, &gid) != 0) {
            snprintf(err, errlen, "setgroups: %s", strerror(errno));
            return -1;
        }
        if (setresgid(gid, gid, gid) != 0) {
            snprintf(err, errlen, "setgid %d: %s", (int)gid, strerror(errno));
            return -1;
        }
    }
    if (uid != (uid_t)-1 && setresuid(uid, uid, uid) != 0) {
        snprintf(err, errlen, "setuid %d: %s", (int)uid, strerror(errno));
        return -1;
    }
    if (uid != (uid_t)-1 && uid != 0 && setuid(0) == 0) {
        snprintf(err, errlen, "privileges could be regained after dropping them");
        return -1;
    }
    return 0;
}
