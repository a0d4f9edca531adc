/* System calls the Python side (the parent, never a cloned child) makes on its own behalf:
 * mounts outside a container's setup (checkpoint/restore, the engine's snapshots),
 * becoming a child subreaper, and moving the calling thread to a new or another namespace
 * (unshare(2), setns(2): the engine's network namespaces, made and entered by a thread of its
 * own, never by a forked process). They live here so that every libc call of pyrunc goes through
 * this one native boundary. Each returns 0 or -errno, as the rest of the core does.
 */
#include "core.h"

#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>

int core_mount(const char *source, const char *target, const char *fstype,
               unsigned long flags, const char *data)
{
    return mount(source, target, fstype, flags, data) == 0 ? 0 : -errno;
}

int core_umount(const char *target, int flags)
{
    return umount2(target, flags) == 0 ? 0 : -errno;
}

int core_set_child_subreaper(int on)
{
    return prctl(PR_SET_CHILD_SUBREAPER, (unsigned long)on, 0UL, 0UL, 0UL) == 0 ? 0 : -errno;
}

int core_unshare(int flags)
{
    return unshare(flags) == 0 ? 0 : -errno;
}

int core_setns(int fd, int nstype)
{
    return setns(fd, nstype) == 0 ? 0 : -errno;
}
