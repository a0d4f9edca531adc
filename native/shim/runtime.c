/* Running the runtime ("<runtime> [--root R] ARGS...") and the files and sockets around it. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int devnull(int flags)
{
	return open("/dev/null", flags | O_CLOEXEC);
}

static __attribute__((noreturn)) void exec_runtime(const char **argv, int in, int out, int errfd)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	int nul = devnull(O_RDWR);
	dup2(in >= 0 ? in : nul, 0);
	dup2(out >= 0 ? out : nul, 1);
	dup2(errfd >= 0 ? errfd : nul, 2);
	execvp(argv[0], (char *const *)argv);
	dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int run_runtime(const char *const *args, int in, int out, int errfd, char *err, size_t errsize)
{
	const char *argv[32];
	int n = 0;
	argv[n++] = opt.runtime;
	if (opt.runtime_root) {
		argv[n++] = "--root";
		argv[n++] = opt.runtime_root;
	}
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	int capture = -1;
	if (errfd < 0) {
		capture = open("runtime.err", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		errfd = capture;
	}
	pid_t pid = fork();
	if (pid < 0) {
		if (capture >= 0)
			close(capture);
		snprintf(err, errsize, "fork: %s", strerror(errno));
		return 127;
	}
	if (pid == 0)
		exec_runtime(argv, in, out, errfd);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (err && errsize)
		err[0] = 0;
	if (capture >= 0) {
		ssize_t r = pread(capture, err, errsize - 1, 0);
		err[r > 0 ? r : 0] = 0;
		close(capture);
		unlink("runtime.err");
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

void drain_text(int fd, char *out, size_t size)
{
	size_t have = strlen(out);
	set_nonblock(fd);
	while (have + 1 < size) {
		ssize_t r = read(fd, out + have, size - 1 - have);
		if (r <= 0)
			break;
		have += r;
	}
	out[have] = 0;
}

pid_t read_pid_file(const char *path)
{
	char text[32] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (r <= 0)
		return -1;
	long v = strtol(text, NULL, 10);
	return v > 0 ? (pid_t)v : -1;
}

int listen_unix(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
	unlink(name);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int receive_console(int lfd)
{
	set_nonblock(lfd);
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return -1;
	char data[256];
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = control, .msg_controllen = sizeof(control)};
	int fd = -1;
	if (recvmsg(c, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) >= 0) {
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	}
	close(c);
	return fd;
}

int console_arg(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", state_dir_abs, name);
	if (strlen(out) < sizeof(((struct sockaddr_un *)0)->sun_path))
		return -1;
	/* Too long for a socket address. A relative name would not do: the runtime resolves it
	 * in its own working directory (runc's is the bundle). The directory is reached through
	 * a descriptor the runtime inherits instead; the runtime closes it in the container. */
	int dirfd = open(".", O_PATH | O_DIRECTORY);    /* the shim's cwd: the state directory */
	if (dirfd >= 0)
		snprintf(out, size, "/proc/self/fd/%d/%s", dirfd, name);
	return dirfd;
}
