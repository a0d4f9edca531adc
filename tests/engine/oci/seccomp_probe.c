/* Calls a syscall by name for the seccomp tests and prints NAME=ERRNO (0: it succeeded).
 * Arguments are chosen so that the kernel, when it runs the call, answers something other
 * than EPERM (a bad pointer: EFAULT; a bad command: EINVAL), so EPERM means the filter. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define BAD ((void *)1)

static long try_clone(unsigned long flags)
{
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid < 0 ? -1 : 0;
}

static long call(const char *name)
{
	if (!strcmp(name, "getpid")) return syscall(SYS_getpid) > 0 ? 0 : -1;
	if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0, -3, 0) < 0 ? -1 : 0;
	if (!strcmp(name, "add_key")) return syscall(SYS_add_key, BAD, BAD, NULL, 0, -3);
	if (!strcmp(name, "request_key")) return syscall(SYS_request_key, BAD, BAD, NULL, 0);
	if (!strcmp(name, "unshare_user")) return syscall(SYS_unshare, CLONE_NEWUSER);
	if (!strcmp(name, "unshare_mnt")) return syscall(SYS_unshare, CLONE_NEWNS);
	if (!strcmp(name, "clone_user")) return try_clone(CLONE_NEWUSER);
	if (!strcmp(name, "clone")) return try_clone(0);
	if (!strcmp(name, "clone3")) {
		unsigned long args[11] = {0};
		long pid;
		args[4] = SIGCHLD;  /* exit_signal */
		pid = syscall(SYS_clone3, args, sizeof(args));
		if (pid == 0) _exit(0);
		if (pid > 0) waitpid(pid, NULL, 0);
		return pid < 0 ? -1 : 0;
	}
	if (!strcmp(name, "mount")) return syscall(SYS_mount, BAD, BAD, BAD, 0, NULL);
	if (!strcmp(name, "umount2")) return syscall(SYS_umount2, BAD, 0);
	if (!strcmp(name, "bpf")) return syscall(SYS_bpf, 9999, NULL, 0);
	if (!strcmp(name, "perf_event_open")) return syscall(SYS_perf_event_open, BAD, 0, -1, -1, 0);
	if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0, 1000, NULL, 0);
	if (!strcmp(name, "swapon")) return syscall(SYS_swapon, BAD, 0);
	if (!strcmp(name, "setns")) return syscall(SYS_setns, -1, 0);
	if (!strcmp(name, "socket_vsock")) { long fd = socket(40, SOCK_STREAM, 0); return fd < 0 ? -1 : 0; }
	if (!strcmp(name, "socket_alg")) { long fd = socket(38, SOCK_SEQPACKET, 0); return fd < 0 ? -1 : 0; }
	if (!strcmp(name, "socket_inet")) { long fd = socket(AF_INET, SOCK_STREAM, 0); return fd < 0 ? -1 : 0; }
	if (!strcmp(name, "personality_bad")) return syscall(SYS_personality, 0x0400000UL) == -1 ? -1 : 0;
	if (!strcmp(name, "mkdir")) return syscall(SYS_mkdirat, AT_FDCWD, "/tmp/probe-dir", 0700);
	errno = 1000;
	return -1;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		errno = 0;
		long r = call(argv[i]);
		printf("%s=%d\n", argv[i], r < 0 ? errno : 0);
		fflush(stdout);
	}
	return 0;
}
