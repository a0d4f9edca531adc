/* Internal declarations of the native core.
 *
 * The code here runs in children cloned from a (possibly multi-threaded) Python process: it
 * makes system calls only, never allocates on the heap, never calls back into Python. It uses
 * no libc function that takes a lock or reads the locale (no stdio, malloc, strerror, getpw*,
 * dlopen; glibc's setxid wrappers neither): another thread of the parent may have held any
 * such lock when the child was cloned, and the child would wait for it forever.
 */
#ifndef PYRUNC_CORE_H
#define PYRUNC_CORE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core_api.h"

/* The configuration being executed, set once in the first child. */
extern const struct core_config *core_cfg;

/* Report a failed step to the parent (errno err, printf-style step) and exit. */
void core_fail(int err, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* Report a failed step with a detail line and errno 0 (e.g. "hook exited with status 3"). */
void core_fail_detail(const char *detail, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

/* Send a message from the child; on failure exit (the parent is gone). */
void core_child_send(uint32_t type, int32_t value, const char *payload, uint32_t len, int fd);

/* Wait for CONTINUE from the parent; its payload (if any) is kept as the hook state. */
void core_child_wait_continue(void);

/* The state handed to the hooks run by the init. */
extern const char *core_state;
extern int core_state_len;

/* Set after READY: failures go to stderr as well, since the parent may be gone. */
extern int core_ready_sent;

/* rootfs.c */
void core_prepare_rootfs(void);
void core_use_current_root(void);
void core_setup_terminal(void);
void core_enter_rootfs(void);
void core_finish_rootfs(void);
int core_rootfd(void);

/* creds.c */
void core_set_rlimits(void);
void core_set_scheduling(void);
void core_set_user_and_caps(void);

/* hooks.c */
void core_run_hooks(const char *stage, const struct core_hook *hooks, int n);

/* util: the children's only formatting (core_fmt, in core_api.h) */
int core_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int core_vfmt(char *buf, size_t size, const char *fmt, va_list ap);
/* setresuid/setresgid/setgroups as plain system calls: glibc's wrappers run its multi-threaded
 * credential broadcast, which takes locks a thread of the parent may have held at clone time. */
int core_setresuid(uid_t uid);
int core_setresgid(gid_t gid);
int core_setgroups(int n, const gid_t *gids);
int core_openat2(int dirfd, const char *path, int flags, int mode, uint64_t resolve);
int core_write_file(const char *path, const char *data, size_t len);
/* fork-like clone; with parent_tid (CLONE_PARENT_SETTID in flags) the kernel stores the pid */
pid_t core_clone(unsigned long flags, int *parent_tid);
/* A fork-like clone3 whose child starts in the cgroup2 directory cgroup_fd; -1 and errno
 * ENOSYS or E2BIG where the kernel lacks CLONE_INTO_CGROUP (before 5.7). */
pid_t core_clone_into_cgroup(int cgroup_fd);

#endif
