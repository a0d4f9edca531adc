/* The native core's interface: the configuration Python hands over and the handshake messages.
 *
 * This file is the one definition shared by C and Python: native/build_core.py feeds it to
 * cffi's cdef, so it holds only what cdef understands (integer #defines, structs, prototypes;
 * no other preprocessor directives). core.h includes it for the C side.
 */

/* Message types of the parent/child handshake (struct core_msg.type). */
#define CORE_MSG_CONTINUE      1   /* parent -> child: go on (payload: optional hook state) */
#define CORE_MSG_USERNS_READY  2   /* child -> parent: write uid_map/gid_map of value (pid) */
#define CORE_MSG_INIT_STARTED  3   /* init -> parent, its first act: the init's pid is in
                                      core_config.init_pid_slot (stored by the kernel as
                                      stage 1 cloned it); stage 1 has exited or is dying */
#define CORE_MSG_HOOKS         4   /* child -> parent: run prestart/createRuntime hooks */
#define CORE_MSG_SECCOMP_FD    5   /* child -> parent: the listener fd rides as SCM_RIGHTS */
#define CORE_MSG_READY         6   /* child -> parent: init waits on the exec fifo */
#define CORE_MSG_ERROR         7   /* child -> parent: err, payload "step\0detail\0" */

#define CORE_MSG_MAX_PAYLOAD   65536

/* Mount step kinds (struct core_mount.kind). */
#define CORE_MOUNT_MOUNT    1
#define CORE_MOUNT_MKDIR    2
#define CORE_MOUNT_SYMLINK  3

#define CORE_MAX_JOIN 8

/* Every message starts with this header; len bytes of payload follow in the same datagram. */
struct core_msg {
    uint32_t type;
    int32_t err;       /* errno for CORE_MSG_ERROR */
    int32_t value;     /* a pid for USERNS_READY */
    uint32_t len;      /* payload length */
};

struct core_mount {
    int kind;
    const char *destination;
    const char *source;
    const char *fstype;
    unsigned long flags;
    const char *data;
    unsigned long propagation;
    uint64_t attr_set;
    uint64_t attr_clr;
    int source_is_dir;
    unsigned int mode;
};

struct core_device {
    const char *path;
    unsigned int type;     /* S_IFCHR, S_IFBLK or S_IFIFO */
    unsigned int major;
    unsigned int minor;
    unsigned int mode;
    unsigned int uid;
    unsigned int gid;
    int bind;
};

struct core_rlimit {
    int resource;
    uint64_t soft;
    uint64_t hard;
};

struct core_hook {
    const char *path;
    char **argv;
    char **envp;
    int timeout;           /* seconds, 0: none */
};

struct core_config {
    int exec_mode;             /* 1: a process joining a running container (no rootfs setup,
                                  no hooks, no fifo); 0: the container's init */
    int sync_fd;               /* the child's end of the socketpair */
    int parent_fd;             /* the parent's end, closed in the child */

    int join_fds[8];           /* namespaces to setns into, user first */
    int join_types[8];         /* their CLONE_NEW* flags */
    int n_join;
    int root_fd;               /* exec: the container's root (/proc/PID/root) to chroot to,
                                  or -1 */
    int new_userns;
    int unshare_flags;         /* the other CLONE_NEW* to create */
    const char *time_offsets;  /* for /proc/self/timens_offsets, or NULL */

    const char *rootfs;
    unsigned long rootfs_propagation;   /* 0: MS_SLAVE|MS_REC, not applied after pivot */
    int readonly_root;
    int no_pivot;
    int shared_mount_ns;       /* no new or joined mount namespace (runc allows it): the mounts
                                  are made in the caller's, "/" keeps its propagation and the
                                  init chroots into the rootfs */
    const struct core_mount *mounts;
    int n_mounts;
    const struct core_device *devices;
    int n_devices;
    int dev_symlinks;
    int kcore;                 /* the host has /proc/kcore: add /dev/core */
    char **masked_paths;
    int n_masked;
    char **readonly_paths;
    int n_readonly;

    const char *hostname;
    const char *domainname;
    char **sysctl_paths;       /* /proc/sys/... */
    char **sysctl_values;
    int n_sysctl;
    const struct core_rlimit *rlimits;
    int n_rlimits;
    int has_oom_score_adj;
    int oom_score_adj;

    int has_personality;
    unsigned long personality;
    int has_io_priority;
    int io_priority;           /* ioprio_set value: class << 13 | level */
    int has_scheduler;         /* sched_setattr with these */
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;

    int has_caps;
    uint64_t cap_bounding;
    uint64_t cap_effective;
    uint64_t cap_permitted;
    uint64_t cap_inheritable;
    uint64_t cap_ambient;
    int cap_last;
    int no_new_privileges;
    unsigned int uid;
    unsigned int gid;
    const unsigned int *gids;
    int n_gids;
    int set_groups;            /* call setgroups (not when the user namespace denies it) */
    int umask;                 /* -1: keep */
    const char *cwd;
    char **env;
    char **args;

    int terminal;
    unsigned short console_height;   /* 0: leave the pty's size alone */
    unsigned short console_width;
    int console_fd;
    int exec_fifo_fd;          /* -1: exec at once after READY */
    int preserve_fds;
    int stdio[3];

    const unsigned char *seccomp_bpf;
    int seccomp_len;           /* number of struct sock_filter */
    unsigned int seccomp_flags;
    int seccomp_notify;

    const struct core_hook *create_hooks;
    int n_create_hooks;
    const struct core_hook *start_hooks;
    int n_start_hooks;
    int *init_pid_slot;        /* memory shared with the parent (MAP_SHARED): the kernel
                                  stores the init's pid there as it clones it
                                  (CLONE_PARENT_SETTID), so the parent knows the init as soon
                                  as it exists, whichever child is killed when */
    const char *state;
    int state_len;

    int cgroup2_fd;            /* the first child is cloned straight into this cgroup2
                                  directory (CLONE_INTO_CGROUP), or -1 */
    char **cgroup_tasks;       /* cgroup v1 "tasks" files the first child writes "0" into as
                                  its first act: it joins each hierarchy itself (one thread) */
    int n_cgroup_tasks;

    const char *session_keyring;   /* join (or create) this session keyring; NULL: keep */
    uint32_t keyring_perm_add;     /* KEY_*_SEARCH bits added to its permissions (0: none) */

    int test_pause;            /* tests only, 0 otherwise: the child named "pyrunc:paused"
                                  waits for a signal at step 1 (stage 1 after cloning the
                                  init), 2 (init before INIT_STARTED) or 3 (init after it) */
};

/* Clone the first child, which runs the configuration; returns its pid or -errno. */
int core_spawn(const struct core_config *config);

/* A SOCK_SEQPACKET socketpair with close-on-exec; returns 0 or -errno. */
int core_socketpair(int fds[2]);

/* Send one message (and optionally a file descriptor); returns 0 or -errno. */
int core_send(int fd, uint32_t type, int32_t value, const char *payload, uint32_t len);

/* Shut down the writing side of a socket (the children then read EOF); returns 0 or -errno. */
int core_shutdown(int fd);

/* The children's snprintf (no heap, no locale, no locks): %s, %.*s, %d, %u, %x with the l
 * and # modifiers, %%. Returns the length of the whole text; writes at most size - 1 bytes
 * and a NUL. Exposed for the tests. */
int core_fmt(char *buf, size_t size, const char *fmt, ...);

/* Receive one message into buf (size >= sizeof(struct core_msg) + CORE_MSG_MAX_PAYLOAD);
 * *fd_out gets a passed descriptor or -1. Returns the bytes received, 0 at EOF, or -errno. */
int core_recv(int fd, char *buf, int size, int *fd_out);

/* The parent's own system calls (host.c), each returning 0 or -errno: mount(2) and umount2(2)
 * (source, fstype and data may be NULL), prctl(PR_SET_CHILD_SUBREAPER, on). The MS_*,
 * MOUNT_ATTR_* and MNT_* values come from <sys/mount.h> (native/build_core.py declares them). */
int core_mount(const char *source, const char *target, const char *fstype,
               unsigned long flags, const char *data);
int core_umount(const char *target, int flags);
int core_set_child_subreaper(int on);
