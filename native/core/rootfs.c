/* The container's root filesystem: mounts, devices, the terminal, pivot_root, masks.
 *
 * Before pivot_root every container path is resolved under the rootfs with openat2's
 * RESOLVE_IN_ROOT, so a symlink in the image cannot point a mount outside of it; the mount
 * then targets the resolved directory through /proc/self/fd/N.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>
#include <linux/openat2.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

#define PROPAGATION (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)

static int rootfd = -1;

int core_rootfd(void)
{
    return rootfd;
}

static const char *rel(const char *path)
{
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

static int open_in_root(const char *path, int flags)
{
    return core_openat2(rootfd, rel(path), flags | O_CLOEXEC, 0,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

/* Open a container path as O_PATH, creating missing directories and, if last_is_file, the
 * last component as an empty file. A dangling symlink on the way is followed (still under the
 * root) and its target created. Returns the fd or fails the step. */
static int resolve_create(const char *path, int last_is_file, mode_t mode, const char *step)
{
    char buf[PATH_MAX], next[PATH_MAX], link[PATH_MAX];
    int fd = open_in_root(path, O_PATH);
    int links = 0;

    if (fd >= 0 || errno != ENOENT)
        goto out;
    if (core_fmt(buf, sizeof(buf), "%s", rel(path)) >= (int)sizeof(buf))
        core_fail(ENAMETOOLONG, "%s", step);
    char *comp = buf;
    while (1) {
        char *slash = strchr(comp, '/');
        int last = slash == NULL;
        if (slash)
            *slash = '\0';
        fd = open_in_root(buf, O_PATH);
        if (fd < 0 && errno == ENOENT) {
            int parent;
            if (comp == buf) {
                parent = open_in_root(".", O_PATH);
            } else {
                comp[-1] = '\0';
                parent = open_in_root(buf, O_PATH | O_DIRECTORY);
            }
            if (parent < 0)
                core_fail(errno, "%s", step);
            ssize_t n = readlinkat(parent, comp, link, sizeof(link) - 1);
            if (n >= 0) {
                /* Start again from the link's target, kept under the root by openat2. */
                if (++links > 40)
                    core_fail(ELOOP, "%s", step);
                link[n] = '\0';
                const char *rest = last ? "" : slash + 1;
                const char *prefix = link[0] == '/' || comp == buf ? "" : buf;
                if (core_fmt(next, sizeof(next), "%s/%s/%s", prefix, link, rest) >=
                    (int)sizeof(next))
                    core_fail(ENAMETOOLONG, "%s", step);
                size_t len = strlen(next);
                while (len > 1 && next[len - 1] == '/')
                    next[--len] = '\0';
                core_fmt(buf, sizeof(buf), "%s", rel(next));
                close(parent);
                comp = buf;
                continue;
            }
            if (comp != buf)
                comp[-1] = '/';
            int r;
            if (last && last_is_file) {
                r = openat(parent, comp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                           0644);
                if (r >= 0)
                    close(r);
            } else {
                r = mkdirat(parent, comp, last ? mode : 0755);
            }
            if (r < 0 && errno != EEXIST)
                core_fail(errno, "%s", step);
            close(parent);
            fd = open_in_root(buf, O_PATH);
        }
        if (fd < 0)
            core_fail(errno, "%s", step);
        if (last)
            return fd;
        close(fd);
        *slash = '/';
        comp = slash + 1;
    }
out:
    if (fd < 0)
        core_fail(errno, "%s", step);
    return fd;
}

static void fd_path(char *buf, size_t size, int fd)
{
    core_fmt(buf, size, "/proc/self/fd/%d", fd);
}

/* Flags a mount in a user namespace cannot lose on remount (they are locked). */
static unsigned long locked_flags(const char *target)
{
    struct statfs st;
    unsigned long f = 0;
    if (statfs(target, &st) < 0)  /* not statvfs: older glibc reads /proc/mounts with stdio */
        return 0;
    if (st.f_flags & ST_NOSUID)
        f |= MS_NOSUID;
    if (st.f_flags & ST_NODEV)
        f |= MS_NODEV;
    if (st.f_flags & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (st.f_flags & ST_RDONLY)
        f |= MS_RDONLY;
    if (st.f_flags & ST_NOATIME)
        f |= MS_NOATIME;
    if (st.f_flags & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (st.f_flags & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

static int bind_remount(const char *target, unsigned long flags)
{
    unsigned long f = MS_BIND | MS_REMOUNT | (flags & ~(MS_BIND | MS_REC | PROPAGATION));
    if (mount(NULL, target, NULL, f, NULL) == 0)
        return 0;
    if (errno != EPERM)
        return -1;
    return mount(NULL, target, NULL, f | locked_flags(target), NULL);
}

/* A step with MS_REMOUNT changes the flags of the mount already at its destination. */
static void do_remount(const struct core_mount *m)
{
    char target[64];
    int fd = open_in_root(m->destination, O_PATH);
    if (fd < 0)
        core_fail(errno, "remount %s", m->destination);
    fd_path(target, sizeof(target), fd);
    unsigned long flags = m->flags & ~PROPAGATION;
    if (mount(NULL, target, NULL, flags, m->data && *m->data ? m->data : NULL) < 0) {
        if (errno != EPERM || !(flags & MS_BIND) ||
            mount(NULL, target, NULL, flags | locked_flags(target), NULL) < 0)
            core_fail(errno, "remount %s", m->destination);
    }
    close(fd);
}

static void do_mount(const struct core_mount *m)
{
    char step[PATH_MAX + 64], target[64];
    const char *what = m->source && *m->source ? m->source : (m->fstype ? m->fstype : "none");
    int is_bind = (m->flags & MS_BIND) != 0;
    int fd;

    core_fmt(step, sizeof(step), "%s %s on %s", is_bind ? "bind mount" : "mount", what,
             m->destination);
    if (is_bind) {
        /* A bind of a file needs a file to mount on; the source decides. */
        struct stat st;
        int src_is_dir = m->source_is_dir;
        if (stat(m->source, &st) == 0)
            src_is_dir = S_ISDIR(st.st_mode);
        else
            core_fail(errno, "%s", step);
        fd = resolve_create(m->destination, !src_is_dir, 0755, step);
    } else {
        fd = resolve_create(m->destination, 0, 0755, step);
    }
    fd_path(target, sizeof(target), fd);
    if (is_bind) {
        if (mount(m->source, target, NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
            core_fail(errno, "%s", step);
    } else {
        if (mount(m->source, target, m->fstype, m->flags & ~PROPAGATION,
                  m->data && *m->data ? m->data : NULL) < 0)
            core_fail(errno, "%s", step);
    }
    close(fd);
    if (!((is_bind && (m->flags & ~(MS_BIND | MS_REC | PROPAGATION))) || m->propagation ||
          m->attr_set || m->attr_clr))
        return;
    /* Reopen: the new fd names the mount just made, not the directory under it. */
    fd = open_in_root(m->destination, O_PATH);
    if (fd < 0)
        core_fail(errno, "%s", step);
    fd_path(target, sizeof(target), fd);
    if (is_bind && (m->flags & ~(MS_BIND | MS_REC | PROPAGATION))) {
        if (bind_remount(target, m->flags) < 0)
            core_fail(errno, "remount %s with its options", m->destination);
    }
    if (m->propagation && mount(NULL, target, NULL, m->propagation, NULL) < 0)
        core_fail(errno, "set propagation of %s", m->destination);
    if (m->attr_set || m->attr_clr) {
        struct mount_attr attr = {.attr_set = m->attr_set, .attr_clr = m->attr_clr};
        if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
            core_fail(errno, "set recursive attributes of %s", m->destination);
    }
    close(fd);
}

static void split(const char *path, char *dir, size_t size, const char **name)
{
    core_fmt(dir, size, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        core_fmt(dir, size, "/");
        *name = path;
    } else {
        *slash = '\0';
        *name = path + (slash - dir) + 1;
        if (!*dir)
            core_fmt(dir, size, "/");
    }
}

static void do_symlink(const char *target, const char *linkpath, int tolerate_exists)
{
    char dir[PATH_MAX], step[PATH_MAX * 2 + 32];
    const char *name;

    core_fmt(step, sizeof(step), "symlink %s -> %s", linkpath, target);
    split(linkpath, dir, sizeof(dir), &name);
    int dfd = resolve_create(dir, 0, 0755, step);
    if (symlinkat(target, dfd, name) < 0 && !(tolerate_exists && errno == EEXIST))
        core_fail(errno, "%s", step);
    close(dfd);
}

static void do_device(const struct core_device *d)
{
    char dir[PATH_MAX], step[PATH_MAX + 32], target[64];
    const char *name;

    core_fmt(step, sizeof(step), "create device %s", d->path);
    if (d->bind) {
        int fd = resolve_create(d->path, 1, 0755, step);
        fd_path(target, sizeof(target), fd);
        if (mount(d->path, target, NULL, MS_BIND, NULL) < 0)
            core_fail(errno, "bind mount device %s", d->path);
        close(fd);
        return;
    }
    split(d->path, dir, sizeof(dir), &name);
    int dfd = resolve_create(dir, 0, 0755, step);
    dev_t dev = makedev(d->major, d->minor);
    if (mknodat(dfd, name, d->type | (d->mode & 07777), dev) < 0) {
        if (errno != EEXIST || unlinkat(dfd, name, 0) < 0 ||
            mknodat(dfd, name, d->type | (d->mode & 07777), dev) < 0)
            core_fail(errno, "%s", step);
    }
    if (fchownat(dfd, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
        core_fail(errno, "chown device %s", d->path);
    close(dfd);
}

static void dev_symlinks(void)
{
    static const char *links[][2] = {
        {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
        do_symlink(links[i][0], links[i][1], 1);
    if (core_cfg->kcore)
        do_symlink("/proc/kcore", "/dev/core", 1);
    /* /dev/ptmx is the devpts instance's ptmx, unless a device node was asked for. */
    int fd = open_in_root("/dev/pts/ptmx", O_PATH);
    if (fd >= 0) {
        close(fd);
        fd = open_in_root("/dev/ptmx", O_PATH);
        if (fd < 0)
            do_symlink("pts/ptmx", "/dev/ptmx", 1);
        else
            close(fd);
    }
}

/* A process joining a container resolves paths (/dev/pts/ptmx) under its current root. */
void core_use_current_root(void)
{
    rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        core_fail(errno, "open the container's root");
}

static void unescape(char *s)
{
    char *out = s;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 4;
        } else {
            *out++ = *s++;
        }
    }
    *out = '\0';
}

/* pivot_root refuses a new root whose parent mount is shared, and an unbindable mount cannot
 * be bound: with a shared or unbindable rootfs propagation, make the mount that holds the
 * rootfs private (runc does it always). */
static void make_parent_mount_private(const char *rootfs)
{
    static char info[1 << 18];
    char best[PATH_MAX] = "";
    int best_special = 0;
    ssize_t len = 0, n;
    int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        core_fail(errno, "open /proc/self/mountinfo");
    while (len < (ssize_t)sizeof(info) - 1 &&
           (n = read(fd, info + len, sizeof(info) - 1 - len)) > 0)
        len += n;
    close(fd);
    info[len] = '\0';
    for (char *line = info, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        /* id parent major:minor root mountpoint options [optional...] - ... */
        char *field[6];
        char *p = line;
        int i;
        for (i = 0; i < 6 && p; i++) {
            field[i] = p;
            p = strchr(p, ' ');
            if (p)
                *p++ = '\0';
        }
        if (i < 6 || !p)
            continue;
        char *mp = field[4];
        unescape(mp);
        size_t ml = strlen(mp);
        int prefix = strcmp(mp, "/") == 0 ||
                     (strncmp(rootfs, mp, ml) == 0 && (rootfs[ml] == '/' || !rootfs[ml]));
        if (!prefix || ml < strlen(best))
            continue;
        core_fmt(best, sizeof(best), "%s", mp);
        char *dash = strstr(p, " - ");
        if (dash)
            *dash = '\0';
        best_special = strstr(p, "shared:") != NULL || strstr(p, "unbindable") != NULL;
    }
    if (best_special && mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0)
        core_fail(errno, "make the mount %s holding the rootfs private", best);
}

void core_prepare_rootfs(void)
{
    const struct core_config *c = core_cfg;

    unsigned long propagation = c->rootfs_propagation ? c->rootfs_propagation
                                                      : MS_SLAVE | MS_REC;
    if (!c->shared_mount_ns && mount(NULL, "/", NULL, propagation, NULL) < 0)
        core_fail(errno, "set rootfs propagation");
    if (!c->shared_mount_ns && (c->rootfs_propagation & (MS_SHARED | MS_UNBINDABLE)))
        make_parent_mount_private(c->rootfs);
    if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        core_fail(errno, "bind mount rootfs %s", c->rootfs);
    rootfd = open(c->rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (rootfd < 0)
        core_fail(errno, "open rootfs %s", c->rootfs);
    for (int i = 0; i < c->n_mounts; i++) {
        const struct core_mount *m = &c->mounts[i];
        char step[PATH_MAX + 16];
        switch (m->kind) {
        case CORE_MOUNT_MOUNT:
            if (m->flags & MS_REMOUNT)
                do_remount(m);
            else
                do_mount(m);
            break;
        case CORE_MOUNT_MKDIR:
            core_fmt(step, sizeof(step), "mkdir %s", m->destination);
            close(resolve_create(m->destination, 0, m->mode, step));
            break;
        case CORE_MOUNT_SYMLINK:
            do_symlink(m->source, m->destination, 0);
            break;
        default:
            core_fail(EINVAL, "mount step %d: unknown kind %d", i, m->kind);
        }
    }
    for (int i = 0; i < c->n_devices; i++)
        do_device(&c->devices[i]);
    if (c->dev_symlinks)
        dev_symlinks();
}

void core_setup_terminal(void)
{
    const struct core_config *c = core_cfg;
    int zero = 0;
    int master = open_in_root("/dev/pts/ptmx", O_RDWR | O_NOCTTY);
    if (master < 0)
        master = open_in_root("/dev/ptmx", O_RDWR | O_NOCTTY);
    if (master < 0)
        core_fail(errno, "open /dev/ptmx in the container");
    if (ioctl(master, TIOCSPTLCK, &zero) < 0)
        core_fail(errno, "unlock the pty");
    if (c->console_height && c->console_width) {
        struct winsize ws = {.ws_row = c->console_height, .ws_col = c->console_width};
        if (ioctl(master, TIOCSWINSZ, &ws) < 0)
            core_fail(errno, "set the console size");
    }
    int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0)
        core_fail(errno, "open the pty slave");

    if (!c->exec_mode) {
        /* The runtime spec's /dev/console: the init's pty bound over it. */
        char source[64], target[64];
        int fd = resolve_create("/dev/console", 1, 0755, "create /dev/console");
        fd_path(source, sizeof(source), slave);
        fd_path(target, sizeof(target), fd);
        if (mount(source, target, NULL, MS_BIND, NULL) < 0)
            core_fail(errno, "bind mount the pty on /dev/console");
        close(fd);
    }

    static const char name[] = "/dev/ptmx";
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {(void *)name, sizeof(name) - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof(control)};
    memset(control, 0, sizeof(control));
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &master, sizeof(int));
    if (sendmsg(c->console_fd, &msg, MSG_NOSIGNAL) < 0)
        core_fail(errno, "send the pty master over the console socket");
    close(master);
    close(c->console_fd);
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            core_fail(errno, "make the pty stdio");
    if (slave > 2)
        close(slave);
    if (ioctl(0, TIOCSCTTY, 0) < 0)
        core_fail(errno, "make the pty the controlling terminal");
}

static void pivot(void)
{
    int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0)
        core_fail(errno, "open the old root");
    if (fchdir(rootfd) < 0)
        core_fail(errno, "chdir to rootfs");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        core_fail(errno, "pivot_root");
    if (fchdir(oldroot) < 0)
        core_fail(errno, "chdir to the old root");
    /* Do not let the unmount reach the host's mounts. */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        core_fail(errno, "make the old root a slave");
    if (umount2(".", MNT_DETACH) < 0)
        core_fail(errno, "unmount the old root");
    if (chdir("/") < 0)
        core_fail(errno, "chdir to /");
    close(oldroot);
}

static void move_root(void)
{
    if (fchdir(rootfd) < 0)
        core_fail(errno, "chdir to rootfs");
    if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
        core_fail(errno, "move rootfs to /");
    if (chroot(".") < 0)
        core_fail(errno, "chroot");
    if (chdir("/") < 0)
        core_fail(errno, "chdir to /");
}

static void chroot_root(void)
{
    if (fchdir(rootfd) < 0)
        core_fail(errno, "chdir to rootfs");
    if (chroot(".") < 0)
        core_fail(errno, "chroot");
    if (chdir("/") < 0)
        core_fail(errno, "chdir to /");
}

void core_enter_rootfs(void)
{
    if (core_cfg->shared_mount_ns) {
        /* The caller's mount namespace: no pivot_root or MS_MOVE of its "/". */
        chroot_root();
        close(rootfd);
        rootfd = -1;
        return;
    }
    if (core_cfg->no_pivot)
        move_root();
    else
        pivot();
    /* An explicit propagation is applied again on the new "/" (before, on "/" it reached the
     * host's mounts); the default leaves each mount's own propagation alone. */
    if (core_cfg->rootfs_propagation &&
        mount(NULL, "/", NULL, core_cfg->rootfs_propagation, NULL) < 0)
        core_fail(errno, "set propagation of /");
    close(rootfd);
    rootfd = -1;
}

static void readonly_path(const char *path)
{
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
        if (errno == ENOENT)
            return;
        core_fail(errno, "bind mount readonly path %s", path);
    }
    if (bind_remount(path, MS_RDONLY | locked_flags(path)) < 0)
        core_fail(errno, "remount readonly path %s", path);
}

static void masked_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return;
        core_fail(errno, "mask %s", path);
    }
    if (S_ISDIR(st.st_mode)) {
        if (mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL) < 0)
            core_fail(errno, "mask %s with a read-only tmpfs", path);
    } else if (mount("/dev/null", path, NULL, MS_BIND, NULL) < 0) {
        core_fail(errno, "mask %s with /dev/null", path);
    }
}

void core_finish_rootfs(void)
{
    const struct core_config *c = core_cfg;
    for (int i = 0; i < c->n_readonly; i++)
        readonly_path(c->readonly_paths[i]);
    for (int i = 0; i < c->n_masked; i++)
        masked_path(c->masked_paths[i]);
    if (c->readonly_root && bind_remount("/", MS_RDONLY | locked_flags("/")) < 0)
        core_fail(errno, "remount / read-only");
}
