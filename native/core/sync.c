/* The parent/child handshake over a SOCK_SEQPACKET socketpair, and failure reporting.
 *
 * One datagram is one message: struct core_msg, then msg.len bytes of payload. A descriptor
 * (the seccomp listener) rides along as SCM_RIGHTS.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <unistd.h>

const struct core_config *core_cfg;
const char *core_state;
int core_state_len;
int core_ready_sent;

/* The payload of the last CONTINUE; static so that no heap is needed in the child. */
static char continue_buf[sizeof(struct core_msg) + CORE_MSG_MAX_PAYLOAD];

static int send_msg(int fd, uint32_t type, int32_t err, int32_t value, const char *payload,
                    uint32_t len, int pass_fd)
{
    struct core_msg hdr = {.type = type, .err = err, .value = value, .len = len};
    struct iovec iov[2] = {{&hdr, sizeof(hdr)}, {(void *)payload, len}};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};

    if (len > CORE_MSG_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (pass_fd >= 0) {
        memset(control, 0, sizeof(control));
        msg.msg_control = control;
        msg.msg_controllen = sizeof(control);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &pass_fd, sizeof(int));
    }
    while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int core_socketpair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
        return -errno;
    return 0;
}

int core_send(int fd, uint32_t type, int32_t value, const char *payload, uint32_t len)
{
    return send_msg(fd, type, 0, value, payload, len, -1);
}

int core_shutdown(int fd)
{
    return shutdown(fd, SHUT_WR) < 0 ? -errno : 0;
}

int core_recv(int fd, char *buf, int size, int *fd_out)
{
    struct iovec iov = {buf, (size_t)size};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = control, .msg_controllen = sizeof(control)};
    ssize_t n;

    *fd_out = -1;
    do
        n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd_out, CMSG_DATA(c), sizeof(int));
    }
    if (n > 0 && (size_t)n < sizeof(struct core_msg))
        return -EPROTO;
    return (int)n;
}

void core_child_send(uint32_t type, int32_t value, const char *payload, uint32_t len, int fd)
{
    int r = send_msg(core_cfg->sync_fd, type, 0, value, payload, len, fd);
    if (r < 0)
        core_fail(-r, "send message %u to the parent", type);
}

void core_child_wait_continue(void)
{
    int fd;
    int n = core_recv(core_cfg->sync_fd, continue_buf, sizeof(continue_buf), &fd);
    struct core_msg *hdr = (struct core_msg *)continue_buf;

    if (n == 0)
        _exit(1);  /* the parent went away: nobody to report to */
    if (n < 0)
        core_fail(-n, "receive from the parent");
    if (fd >= 0)
        close(fd);
    if (hdr->type != CORE_MSG_CONTINUE)
        core_fail(EPROTO, "expected CONTINUE from the parent, got message %u", hdr->type);
    if (hdr->len) {
        core_state = continue_buf + sizeof(struct core_msg);
        core_state_len = (int)hdr->len;
    }
}

/* A small vsnprintf for the children: glibc's may allocate, and strerror reads the locale.
 * Knows %s, %.*s, %d, %u, %x with the l and # modifiers and %%; returns the length the whole
 * text needs (like snprintf), writing at most size - 1 bytes and a NUL. */
static size_t put(char *buf, size_t size, size_t at, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, at++)
        if (at + 1 < size)
            buf[at] = s[i];
    return at;
}

int core_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t at = 0;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            at = put(buf, size, at, f, 1);
            continue;
        }
        f++;
        int alt = 0, is_long = 0, precision = -1;
        if (*f == '#') {
            alt = 1;
            f++;
        }
        if (f[0] == '.' && f[1] == '*') {
            precision = va_arg(ap, int);
            f += 2;
        }
        if (*f == 'l') {
            is_long = 1;
            f++;
        }
        char num[24], *p = num + sizeof(num);
        unsigned long v;
        int neg = 0;
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = strlen(s);
            if (precision >= 0 && (size_t)precision < n)
                n = (size_t)precision;
            at = put(buf, size, at, s, n);
            continue;
        }
        case 'd': {
            long d = is_long ? va_arg(ap, long) : va_arg(ap, int);
            neg = d < 0;
            v = neg ? 0UL - (unsigned long)d : (unsigned long)d;
            do
                *--p = (char)('0' + v % 10);
            while (v /= 10);
            break;
        }
        case 'u':
        case 'x': {
            unsigned base = *f == 'x' ? 16 : 10;
            v = is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            do
                *--p = "0123456789abcdef"[v % base];
            while (v /= base);
            if (alt && base == 16) {
                *--p = 'x';
                *--p = '0';
            }
            break;
        }
        case '%':
            at = put(buf, size, at, "%", 1);
            continue;
        default:  /* not used by the core */
            at = put(buf, size, at, "?", 1);
            if (!*f)
                f--;
            continue;
        }
        if (neg)
            *--p = '-';
        at = put(buf, size, at, p, (size_t)(num + sizeof(num) - p));
    }
    if (size)
        buf[at < size ? at : size - 1] = '\0';
    return (int)at;
}

int core_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = core_vfmt(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

static void __attribute__((noreturn)) report(int err, const char *detail, const char *fmt,
                                             va_list ap)
{
    char payload[4096];
    int n = core_vfmt(payload, 2048, fmt, ap);
    if (n < 0)
        n = 0;
    if (n > 2047)
        n = 2047;
    payload[n++] = '\0';
    size_t dl = detail ? strlen(detail) : 0;
    if (dl > sizeof(payload) - n - 1)
        dl = sizeof(payload) - n - 1;
    memcpy(payload + n, detail ? detail : "", dl);
    payload[n + dl] = '\0';
    int total = n + (int)dl + 1;

    send_msg(core_cfg->sync_fd, CORE_MSG_ERROR, err, 0, payload, total, -1);
    if (core_ready_sent) {
        /* The creating parent may be gone: say it on the container's stderr too. */
        char line[4200];
        int m;
        if (err)
            m = core_fmt(line, sizeof(line), "pyrunc: %s: %s%s%s\n", payload, strerrordesc_np(err),
                         dl ? ": " : "", payload + n);
        else
            m = core_fmt(line, sizeof(line), "pyrunc: %s: %s\n", payload, payload + n);
        if (m > 0 && write(2, line, m < (int)sizeof(line) ? m : (int)sizeof(line) - 1) < 0)
            m = 0;
    }
    _exit(1);
}

void core_fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(err, NULL, fmt, ap);
    va_end(ap);
}

void core_fail_detail(const char *detail, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(0, detail, fmt, ap);
    va_end(ap);
}

int core_openat2(int dirfd, const char *path, int flags, int mode, uint64_t resolve)
{
    struct open_how how = {.flags = (uint64_t)flags, .mode = (uint64_t)mode,
                           .resolve = resolve};
    int fd;
    do
        fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
    while (fd < 0 && errno == EINTR);
    return fd;
}

int core_write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, data, len);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return -1;
    }
    if ((size_t)n != len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int core_setresuid(uid_t uid)
{
    return (int)syscall(SYS_setresuid, uid, uid, uid);
}

int core_setresgid(gid_t gid)
{
    return (int)syscall(SYS_setresgid, gid, gid, gid);
}

int core_setgroups(int n, const gid_t *gids)
{
    return (int)syscall(SYS_setgroups, n, gids);
}

pid_t core_clone(unsigned long flags, int *parent_tid)
{
    /* fork-like clone (no new stack): the child continues here with a copy of memory.
     * x86_64 argument order: flags, stack, parent_tid, child_tid, tls. */
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, parent_tid, 0, 0);
}

/* struct clone_args up to its cgroup field (the kernel's CLONE_ARGS_SIZE_VER2), declared here
 * because <linux/sched.h> clashes with <sched.h>. */
struct core_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
    uint64_t set_tid, set_tid_size, cgroup;
};

#define CORE_CLONE_INTO_CGROUP 0x200000000ULL

pid_t core_clone_into_cgroup(int cgroup_fd)
{
#ifdef SYS_clone3
    struct core_clone_args args;

    memset(&args, 0, sizeof(args));
    args.flags = CORE_CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = (uint64_t)cgroup_fd;
    return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
#else
    (void)cgroup_fd;
    errno = ENOSYS;
    return -1;
#endif
}
