/* The stages of container creation (runc's nsexec, in C).
 *
 * core_spawn (called from Python) clones stage 1 and returns. Stage 1 waits for the parent to
 * place it in its cgroup, joins and creates namespaces, then clones the init with CLONE_PARENT,
 * so the init is a child of the Python caller, reports its pid and exits. The init sets up the
 * root filesystem, the process attributes, waits on the exec fifo and executes the program.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/seccomp.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *ns_name(int flag)
{
    switch (flag) {
    case CLONE_NEWUSER: return "user";
    case CLONE_NEWPID: return "pid";
    case CLONE_NEWNS: return "mount";
    case CLONE_NEWUTS: return "uts";
    case CLONE_NEWIPC: return "ipc";
    case CLONE_NEWNET: return "network";
    case CLONE_NEWCGROUP: return "cgroup";
    case CLONE_NEWTIME: return "time";
    }
    return "unknown";
}

static void become_root_in_userns(void)
{
    if (core_setresgid(0) < 0)
        core_fail(errno, "become root in the user namespace: setresgid");
    if (core_setresuid(0) < 0)
        core_fail(errno, "become root in the user namespace: setresuid");
}

static void load_seccomp(void)
{
    const struct core_config *c = core_cfg;
    struct sock_fprog prog = {.len = (unsigned short)c->seccomp_len,
                              .filter = (struct sock_filter *)c->seccomp_bpf};
    unsigned int flags = c->seccomp_flags;

    if (c->seccomp_notify)
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (fd < 0)
        core_fail(errno, "load seccomp filter");
    if (c->seccomp_notify) {
        core_child_send(CORE_MSG_SECCOMP_FD, 0, NULL, 0, fd);
        core_child_wait_continue();
        close(fd);
    }
}

static const char *env_path(void)
{
    for (char **e = core_cfg->env; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            return *e + 5;
    return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static int is_executable(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EACCES;
    /* The uids are all set by now, so the real-uid check is the effective one. Not glibc's
     * faccessat(AT_EACCESS): it is faccessat2, which older seccomp profiles answer EPERM. */
    if (syscall(SYS_faccessat, AT_FDCWD, path, X_OK) < 0)
        return -errno;
    return 0;
}

/* Find args[0] the way execvp does, with the container's PATH; fills buf. */
static const char *look_path(char *buf, size_t size)
{
    const char *name = core_cfg->args[0];
    int r;

    if (strchr(name, '/')) {
        r = is_executable(name);
        if (r < 0)
            core_fail(-r, "exec %s", name);
        return name;
    }
    const char *p = env_path();
    int denied = 0;
    while (1) {
        const char *end = strchr(p, ':');
        size_t dl = end ? (size_t)(end - p) : strlen(p);
        if (dl == 0)
            core_fmt(buf, size, "%s", name);
        else
            core_fmt(buf, size, "%.*s/%s", (int)dl, p, name);
        r = is_executable(buf);
        if (r == 0)
            return buf;
        if (r == -EACCES)
            denied = 1;
        if (!end)
            break;
        p = end + 1;
    }
    if (denied)
        core_fail(EACCES, "exec %s", name);
    core_fail_detail("executable file not found in $PATH", "exec %s", name);
}

/* The exec fifo's write end, kept open (close-on-exec) until execve: `start` reads the fifo
 * to EOF, so its return means the program has been executed. */
static int fifo_wfd = -1;

static void wait_exec_fifo(void)
{
    const struct core_config *c = core_cfg;
    char path[64];

    if (c->exec_fifo_fd < 0)
        return;
    core_fmt(path, sizeof(path), "/proc/self/fd/%d", c->exec_fifo_fd);
    do
        fifo_wfd = open(path, O_WRONLY | O_CLOEXEC);
    while (fifo_wfd < 0 && errno == EINTR);
    if (fifo_wfd < 0)
        core_fail(errno, "open exec fifo");
    if (write(fifo_wfd, "0", 1) != 1)
        core_fail(errno, "write exec fifo");
    close(c->exec_fifo_fd);
}

/* wait_exec_fifo reopens the fifo through /proc/self/fd after READY, when a failure can no
 * longer fail `create`. Check before READY that the path leads to the fifo: without a proc
 * file system at /proc the container would be created and stop at once. */
static void check_exec_fifo(void)
{
    const struct core_config *c = core_cfg;
    struct stat by_fd, by_path;
    char path[64];

    if (c->exec_fifo_fd < 0)
        return;
    core_fmt(path, sizeof(path), "/proc/self/fd/%d", c->exec_fifo_fd);
    if (fstat(c->exec_fifo_fd, &by_fd) < 0)
        core_fail(errno, "find the exec fifo");
    if (stat(path, &by_path) < 0)
        core_fail(errno, "find the exec fifo at %s", path);
    if (by_path.st_dev != by_fd.st_dev || by_path.st_ino != by_fd.st_ino)
        core_fail_detail("not the fifo: /proc is not the container's proc file system",
                         "find the exec fifo at %s", path);
}

/* Descriptors above 2 + preserve_fds do not reach the program: marked close-on-exec (so the
 * fifo's write end lives until execve), or closed on kernels without CLOSE_RANGE_CLOEXEC. */
static void close_fds(void)
{
    const struct core_config *c = core_cfg;
    int first = 3 + c->preserve_fds;

    for (int fd = 3; fd < first; fd++) {
        int fl = fcntl(fd, F_GETFD);
        if (fd != fifo_wfd && fl >= 0 && (fl & FD_CLOEXEC))
            fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
    }
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    for (int fd = first; fd < 4096; fd++)
        if (fd != fifo_wfd)
            close(fd);
}

static void set_stdio(void)
{
    const struct core_config *c = core_cfg;
    for (int i = 0; i < 3; i++) {
        if (c->stdio[i] != i && c->stdio[i] >= 0 && dup2(c->stdio[i], i) < 0)
            core_fail(errno, "set up stdio %d", i);
    }
}

static void sysctls(void)
{
    const struct core_config *c = core_cfg;
    for (int i = 0; i < c->n_sysctl; i++) {
        const char *v = c->sysctl_values[i];
        if (core_write_file(c->sysctl_paths[i], v, strlen(v)) < 0)
            core_fail(errno, "write sysctl %s", c->sysctl_paths[i]);
    }
}

static void uts(void)
{
    const struct core_config *c = core_cfg;
    if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
        core_fail(errno, "set hostname %s", c->hostname);
    if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
        core_fail(errno, "set domainname %s", c->domainname);
}

/* Written by stage 1 before it joins or creates any namespace, as runc writes it before its
 * children enter theirs: in the initial user namespace the runtime may set any value; inside
 * a new one the file is not the container root's to write. The init inherits it. */
static void oom_score_adj(void)
{
    const struct core_config *c = core_cfg;
    char buf[32];
    if (!c->has_oom_score_adj)
        return;
    int n = core_fmt(buf, sizeof(buf), "%d", c->oom_score_adj);
    if (core_write_file("/proc/self/oom_score_adj", buf, n) < 0)
        core_fail(errno, "write oom_score_adj %d", c->oom_score_adj);
}

/* Like runc, the init creates a missing cwd (inside the new root, before it turns read-only). */
static void make_cwd(const char *cwd)
{
    char buf[PATH_MAX];
    if (core_fmt(buf, sizeof(buf), "%s", cwd) >= (int)sizeof(buf))
        core_fail(ENAMETOOLONG, "create cwd %s", cwd);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                core_fail(errno, "create cwd %s", cwd);
            *p = saved;
            if (!saved)
                break;
        }
    }
}

/* Tests only (core_config.test_pause): stop at a named step until a signal ends us. */
static void test_pause(int step)
{
    if (core_cfg->test_pause != step)
        return;
    prctl(PR_SET_NAME, "pyrunc:paused", 0, 0, 0);
    for (;;)
        pause();
}

/* Like runc: the container gets its own session keyring (named after it), searchable by its
 * user, instead of the caller's. A kernel or seccomp profile without keyctl is no error. */
static void join_session_keyring(void)
{
    const struct core_config *c = core_cfg;
    char desc[512];

    if (!c->session_keyring)
        return;
    long id = syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c->session_keyring);
    if (id < 0) {
        if (errno == ENOSYS)
            return;
        core_fail(errno, "join session keyring %s", c->session_keyring);
    }
    if (!c->keyring_perm_add)
        return;
    /* "type;uid;gid;perm;description", perm in hex */
    long n = syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, sizeof(desc) - 1);
    if (n < 0)
        core_fail(errno, "describe session keyring %s", c->session_keyring);
    desc[n < (long)sizeof(desc) ? n : (long)sizeof(desc) - 1] = '\0';
    const char *p = desc;
    for (int semis = 0; *p && semis < 3; p++)
        if (*p == ';')
            semis++;
    uint32_t perm = 0;
    for (; *p && *p != ';'; p++)
        perm = perm * 16 + (uint32_t)(*p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10);
    if (syscall(SYS_keyctl, KEYCTL_SETPERM, id, perm | c->keyring_perm_add) < 0)
        core_fail(errno, "set permissions of session keyring %s", c->session_keyring);
}

static void __attribute__((noreturn)) init_main(void)
{
    const struct core_config *c = core_cfg;
    char pathbuf[PATH_MAX];

    prctl(PR_SET_NAME, c->exec_mode ? "pyrunc:[2:EXEC]" : "pyrunc:[2:INIT]", 0, 0, 0);
    test_pause(2);
    core_child_send(CORE_MSG_INIT_STARTED, 0, NULL, 0, -1);
    test_pause(3);
    core_child_wait_continue();  /* the parent knows our pid */
    if ((!c->exec_mode || c->terminal) && setsid() < 0)
        core_fail(errno, "setsid");
    set_stdio();
    umask(0);
    join_session_keyring();
    if (c->exec_mode) {
        if (c->terminal) {
            core_use_current_root();
            core_setup_terminal();
        }
    } else {
        if (c->rootfs) {
            core_prepare_rootfs();
            if (c->terminal)
                core_setup_terminal();
        }
        core_child_send(CORE_MSG_HOOKS, 0, NULL, 0, -1);
        core_child_wait_continue();
        if (!core_state) {
            core_state = c->state;
            core_state_len = c->state_len;
        }
        core_run_hooks("createContainer", c->create_hooks, c->n_create_hooks);
        if (c->rootfs) {
            core_enter_rootfs();
            if (c->cwd && c->cwd[0] == '/' && c->cwd[1])
                make_cwd(c->cwd);
        }
        uts();
        sysctls();
        if (c->rootfs)
            core_finish_rootfs();
    }
    check_exec_fifo();  /* before the user changes and seccomp applies */
    core_set_rlimits();
    core_set_scheduling();
    umask((mode_t)c->umask);
    if (c->seccomp_len && !c->no_new_privileges)
        load_seccomp();  /* needs CAP_SYS_ADMIN, so before the user changes */
    core_set_user_and_caps();
    if (c->no_new_privileges && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        core_fail(errno, "set no_new_privileges");
    if (c->cwd && chdir(c->cwd) < 0)
        core_fail(errno, "chdir to cwd %s", c->cwd);
    if (c->has_personality && personality(c->personality) < 0)
        core_fail(errno, "set personality %#lx", c->personality);
    const char *exe = look_path(pathbuf, sizeof(pathbuf));
    if (c->seccomp_len && c->no_new_privileges)
        load_seccomp();  /* as late as the handshake allows */
    core_child_send(CORE_MSG_READY, 0, NULL, 0, -1);
    core_ready_sent = 1;
    wait_exec_fifo();
    core_run_hooks("startContainer", c->start_hooks, c->n_start_hooks);
    close_fds();
    execve(exe, c->args, c->env);
    core_fail(errno, "exec %s", exe);
}

/* Close every descriptor the children do not need: the caller's other files (lock files,
 * sockets) must not live on in the container. */
static void close_unneeded_fds(void)
{
    const struct core_config *c = core_cfg;
    int keep[CORE_MAX_JOIN + 9], n = 0;

    keep[n++] = c->sync_fd;
    keep[n++] = c->exec_fifo_fd;
    keep[n++] = c->console_fd;
    keep[n++] = c->root_fd;
    for (int i = 0; i < 3; i++)
        keep[n++] = c->stdio[i];
    for (int i = 0; i < c->n_join; i++)
        keep[n++] = c->join_fds[i];
    for (int i = 1; i < n; i++)  /* insertion sort: a handful of numbers */
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned int next = 3 + (unsigned int)c->preserve_fds;
    for (int i = 0; i < n; i++) {
        if (keep[i] < 0 || (unsigned int)keep[i] < next)
            continue;
        if ((unsigned int)keep[i] > next)
            syscall(SYS_close_range, next, (unsigned int)keep[i] - 1, 0);
        next = (unsigned int)keep[i] + 1;
    }
    syscall(SYS_close_range, next, ~0U, 0);
}

/* The container starts with default signal dispositions and nothing blocked: Python ignores
 * SIGPIPE and may block signals in threads, and ignored signals survive execve. */
static void reset_signals(void)
{
    struct sigaction sa;
    sigset_t all;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    }
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

/* Set when the kernel could not clone stage 1 into its cgroup2 directory. */
static int cgroup2_by_write;

/* Stage 1's first act: join the container's cgroup. Writing "0" moves just the writer, and
 * a single-threaded move skips the kernel's global threadgroup lock, whose first taker after
 * a quiet spell waits for an RCU grace period (10+ ms); so do cloning into a cgroup2
 * directory and (v1) a write to "tasks". A process moved in by pid through cgroup.procs
 * pays that wait. */
static void join_cgroup(void)
{
    const struct core_config *c = core_cfg;

    if (cgroup2_by_write) {  /* an old kernel: cgroup.procs, lock and all */
        int fd = openat(c->cgroup2_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1)
            core_fail(errno, "join cgroup2 directory (cgroup.procs)");
        close(fd);
    }
    for (int i = 0; i < c->n_cgroup_tasks; i++) {
        if (core_write_file(c->cgroup_tasks[i], "0", 1) < 0)
            core_fail(errno, "join cgroup %s", c->cgroup_tasks[i]);
    }
}

static void __attribute__((noreturn)) stage1_main(void)
{
    const struct core_config *c = core_cfg;

    reset_signals();
    prctl(PR_SET_NAME, "pyrunc:[1:CHILD]", 0, 0, 0);
    close(c->parent_fd);
    core_child_wait_continue();  /* (a message sent with it unread would be lost) */
    join_cgroup();               /* or the parent has placed us */
    oom_score_adj();             /* still in the runtime's user namespace */
    close_unneeded_fds();
    for (int i = 0; i < c->n_join; i++) {
        if (setns(c->join_fds[i], c->join_types[i]) < 0)
            core_fail(errno, "join %s namespace", ns_name(c->join_types[i]));
        close(c->join_fds[i]);
        if (c->join_types[i] == CLONE_NEWUSER)
            become_root_in_userns();
    }
    if (c->root_fd >= 0) {
        /* The mount namespace's root is the host's "/" for a container made without
         * pivot_root: take the container's root itself, as nsenter --root does. */
        if (fchdir(c->root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
            core_fail(errno, "enter the container's root");
        close(c->root_fd);
    }
    if (c->new_userns) {
        if (unshare(CLONE_NEWUSER) < 0)
            core_fail(errno, "create user namespace");
        /* The maps are written by the parent; PR_SET_DUMPABLE lets it open our /proc files. */
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
        core_child_send(CORE_MSG_USERNS_READY, getpid(), NULL, 0, -1);
        core_child_wait_continue();
        become_root_in_userns();
    }
    if (c->unshare_flags) {
        if (unshare(c->unshare_flags) < 0) {
            int err = errno;
            /* Name the namespace that failed: retry one by one to find it. */
            for (int bit = 0; bit < 32; bit++) {
                int flag = c->unshare_flags & (1 << bit);
                if (flag && unshare(flag) < 0)
                    core_fail(errno, "create %s namespace", ns_name(flag));
            }
            core_fail(err, "create namespaces");
        }
    }
    if (c->time_offsets) {
        if (core_write_file("/proc/self/timens_offsets", c->time_offsets,
                            strlen(c->time_offsets)) < 0)
            core_fail(errno, "write time namespace offsets");
    }
    /* The init (or exec's process) and its hook callers are the first of us in the container's
     * pid namespace: non-dumpable until the container's execve resets it, as runc's, so that a
     * process there without CAP_SYS_PTRACE over us cannot open their /proc/PID/exe (the host's
     * interpreter), fd or mem. Not earlier: stage 1 still writes its own /proc files above. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    pid_t pid = core_clone(CLONE_PARENT | CLONE_PARENT_SETTID, c->init_pid_slot);
    if (pid < 0)
        core_fail(errno, "clone the container init");
    if (pid == 0)
        init_main();
    test_pause(1);
    _exit(0);  /* the kernel has put the init's pid in init_pid_slot */
}

int core_spawn(const struct core_config *config)
{
    pid_t pid;

    cgroup2_by_write = 0;
    if (config->cgroup2_fd >= 0) {
        pid = core_clone_into_cgroup(config->cgroup2_fd);
        if (pid < 0 && (errno == ENOSYS || errno == E2BIG)) {
            cgroup2_by_write = 1;
            pid = core_clone(0, NULL);
        }
    } else {
        pid = core_clone(0, NULL);
    }
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        core_cfg = config;
        stage1_main();
    }
    return pid;
}
