/* Helpers around libseccomp for pyrunc._seccomp: the actions that carry data, exporting a
 * filter into memory, and loading a program (used by tests; the native core loads its own). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>

static uint32_t pyrunc_scmp_act_errno(uint16_t errno_ret) { return SCMP_ACT_ERRNO(errno_ret); }
static uint32_t pyrunc_scmp_act_trace(uint16_t msg) { return SCMP_ACT_TRACE(msg); }

/* Export the filter as struct sock_filter[]: returns the byte length and sets *out (free()
 * it), or -errno. */
static long pyrunc_seccomp_export(scmp_filter_ctx ctx, unsigned char **out)
{
    *out = NULL;
    int fd = memfd_create("pyrunc-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    unsigned char *buf = malloc(st.st_size ? st.st_size : 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    ssize_t got = 0;
    while (got < st.st_size) {
        ssize_t n = pread(fd, buf + got, st.st_size - got, got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            free(buf);
            close(fd);
            return rc;
        }
        got += n;
    }
    close(fd);
    *out = buf;
    return (long)got;
}

/* seccomp(SECCOMP_SET_MODE_FILTER) for the calling thread: the listener fd (with
 * SECCOMP_FILTER_FLAG_NEW_LISTENER), 0, or -errno. */
static int pyrunc_seccomp_load(const void *insns, unsigned int count, unsigned int flags)
{
    struct sock_fprog prog = {.len = (unsigned short)count,
                              .filter = (struct sock_filter *)insns};
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    return rc < 0 ? -errno : (int)rc;
}

/* Whether the kernel accepts SECCOMP_SET_MODE_FILTER ``flag``: with no program it fails with
 * EFAULT once the flags are valid, with EINVAL before. */
static int pyrunc_seccomp_flag_supported(unsigned int flag)
{
    long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL);
    return rc < 0 && errno == EFAULT;
}
