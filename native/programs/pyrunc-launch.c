/*
 * pyrunc-launch: the installed `pyrunc` command. It runs the Python script `pyrunc-python` of
 * its own directory the way the kernel would run it (the interpreter named by the script's
 * "#!" line, argv = [interpreter, script, args...]), except that the interpreter is executed
 * from a file that nothing can write through:
 *
 *   1. a detached, read-only clone of the interpreter's mount: open_tree(OPEN_TREE_CLONE) on
 *      the interpreter, mount_setattr(MOUNT_ATTR_RDONLY), execveat(fd, "", AT_EMPTY_PATH).
 *      The clone is never attached to any mount tree (no mount events) and goes away with the
 *      last process running it;
 *   2. where that is not allowed (no CAP_SYS_ADMIN over the mount namespace, old kernels), a
 *      sealed memfd copy of the interpreter (F_SEAL_WRITE, _SHRINK, _GROW, _SEAL).
 *
 * Why: the processes pyrunc places in a container (create's stages, the init before its
 * execve, exec's process, the init's hook callers) are clones of the Python process, so
 * /proc/PID/exe of each is the interpreter. A container's root that opens it there and
 * reopens it for writing once it is no longer busy would replace the host's interpreter (the
 * runc CVE-2019-5736 class). Opened through either copy above, the open for writing fails
 * (EROFS, or EPERM on the sealed memfd).
 *
 * argv[0] of the interpreter stays the path of the "#!" line (a virtual environment's python),
 * so the interpreter finds its environment exactly as when the kernel runs the script.
 * It never falls back to an unprotected interpreter: if both ways fail, it exits with status 1
 * and one line on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SCRIPT_NAME "pyrunc-python"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

extern char **environ;

static void die(const char *what, const char *name, int err)
{
    if (err)
        fprintf(stderr, "pyrunc: %s %s: %s\n", what, name, strerror(err));
    else
        fprintf(stderr, "pyrunc: %s %s\n", what, name);
    exit(1);
}

/* The read-only detached clone of the mount holding `path` (a file bind mount of it). */
static int readonly_clone(const char *path)
{
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0)
        return -1;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* A sealed memfd copy of `path`. */
static int sealed_copy(const char *path)
{
    struct stat st;
    off_t off = 0;
    int src, fd, err;

    src = open(path, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return -1;
    fd = memfd_create("pyrunc-python", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL)      /* kernels before 6.3 know no MFD_EXEC */
        fd = memfd_create("pyrunc-python", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || fstat(src, &st) < 0)
        goto fail;
    while (off < st.st_size) {
        ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            goto fail;
        }
    }
    if (fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
        goto fail;
    close(src);
    return fd;
fail:
    err = errno;
    close(src);
    if (fd >= 0)
        close(fd);
    errno = err;
    return -1;
}

int main(int argc, char **argv)
{
    static char script[PATH_MAX + sizeof(SCRIPT_NAME)];
    static char line[PATH_MAX + 4];
    char *interp, *arg = NULL, *end, *slash, **args;
    ssize_t n;
    int fd, i, k, err;

    /* This program's own file (symlinks resolved), hence the script beside it. */
    n = readlink("/proc/self/exe", script, PATH_MAX);
    if (n < 0)
        die("read", "/proc/self/exe", errno);
    script[n] = '\0';
    slash = strrchr(script, '/');
    if (!slash)
        die("locate itself from", "/proc/self/exe", EINVAL);
    strcpy(slash + 1, SCRIPT_NAME);

    /* Its "#!" line, parsed as the kernel does: the interpreter and at most one argument. */
    fd = open(script, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open", script, errno);
    n = read(fd, line, sizeof(line) - 1);
    err = errno;
    close(fd);
    if (n < 0)
        die("read", script, err);
    line[n] = '\0';
    end = memchr(line, '\n', (size_t)n);
    if (strncmp(line, "#!", 2) != 0 || !end)
        die("no \"#!interpreter\" line in", script, 0);
    *end = '\0';
    for (interp = line + 2; *interp == ' ' || *interp == '\t'; interp++)
        ;
    for (end = interp; *end && *end != ' ' && *end != '\t'; end++)
        ;
    if (*end) {
        *end++ = '\0';
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end) {
            arg = end;
            for (end += strlen(end); end > arg && (end[-1] == ' ' || end[-1] == '\t'); end--)
                ;
            *end = '\0';
        }
    }
    if (interp[0] != '/')
        die("interpreter is not an absolute path in", script, 0);

    args = calloc((size_t)argc + 3, sizeof(char *));
    if (!args)
        die("allocate", "arguments", errno);
    k = 0;
    args[k++] = interp;
    if (arg)
        args[k++] = arg;
    args[k++] = script;
    for (i = 1; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;

    fd = readonly_clone(interp);
    if (fd >= 0) {
        syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
        err = errno;
        close(fd);
        die("execute the read-only clone of", interp, err);
    }
    err = errno;
    if (err != EPERM && err != ENOSYS && err != EINVAL && err != EACCES)
        die("clone the mount of", interp, err);
    fd = sealed_copy(interp);
    if (fd < 0)
        die("copy", interp, errno);
    syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
    die("execute the sealed copy of", interp, errno);
    return 1;
}
