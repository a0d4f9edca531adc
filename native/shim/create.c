/* The container's create, run once at start-up: "<runtime> create" with the shim as the
 * subreaper, so that the init reparents to it; on failure, report and clean up.
 *
 * In adopt mode (--adopt, the warm create path of pyrunc.containerd.shim.warm) the runtime's
 * create already ran in this very process before it executed the shim: the init is already
 * its child, and the options hand over the create's exit code and the descriptors it left
 * (the init's stdio pipes, or the console socket's listener). What follows is the same as
 * after a create run here. */
#include "shim.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ERR_SIZE 4096   /* the reason text of a failed create */

/* Kill and reap every child: after a failed create, what reparented to us is debris of the
 * runtime (e.g. its init process when the runtime itself was killed). */
static void kill_children(void)
{
	pid_t self = getpid();
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], text[512];
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t r = read(fd, text, sizeof(text) - 1);
		close(fd);
		char *end = r > 0 ? (text[r] = 0, strrchr(text, ')')) : NULL;
		int ppid;
		char st;
		if (end && sscanf(end + 1, " %c %d", &st, &ppid) == 2 && ppid == self)
			kill(atoi(e->d_name), SIGKILL);
	}
	if (d)
		closedir(d);
	while (waitpid(-1, NULL, __WALL) > 0 || errno == EINTR)
		;
}

static __attribute__((noreturn)) void create_failed(int rc, char *err)
{
	char ignored[512];
	const char *del[] = {"delete", "--force", opt.id, NULL};
	run_runtime(del, -1, -1, -1, ignored, sizeof(ignored));
	kill_children();
	if (!err[0])
		snprintf(err, ERR_SIZE, "runtime create exited with %d", rc);
	ready("err Unknown runtime create failed: %s", err);
	unlink("shim.sock");
	unlink("shim.pid");
	exit(1);
}

/* Run the runtime's create with pipes for the init's stdio; the pipes' parent ends stay. */
static int create_with_pipes(const char **args, int out[2], int errp[2], int in[2], char *err)
{
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    (opt.stdin_open && pipe2(in, O_CLOEXEC) < 0)) {
		ready("err Unknown pipe: %s", strerror(errno));
		exit(1);
	}
	int rc = run_runtime(args, in[0], out[1], errp[1], NULL, 0);
	close(out[1]);
	close(errp[1]);
	if (in[0] >= 0)
		close(in[0]);
	if (rc != 0)
		drain_text(errp[0], err, ERR_SIZE);
	return rc;
}

/* The init's stdio: the pty master, or the pipes. */
static void hold_init_stdio(int master, int out[2], int errp[2], int in[2])
{
	if (opt.terminal) {
		set_nonblock(master);
		init_proc.pty_fd = init_proc.stdin_fd = master;
		stream_init(&init_proc.out, master, 1);
		stream_init(&init_proc.err, -1, 2);
		return;
	}
	set_nonblock(out[0]);
	set_nonblock(errp[0]);
	stream_init(&init_proc.out, out[0], 1);
	stream_init(&init_proc.err, errp[0], 2);
	if (in[1] >= 0) {
		set_nonblock(in[1]);
		init_proc.stdin_fd = in[1];
	}
}

/* After the runtime's create: take the init (its pid, its terminal, its stdio), or report the
 * failure and clean up. */
static void take_init(int rc, char *err, const char *pidfile, int console_lfd, int out[2],
		      int errp[2], int in[2])
{
	pid_t pid = rc == 0 ? read_pid_file(pidfile) : -1;
	int master = -1;
	if (pid > 0 && opt.terminal) {
		master = receive_console(console_lfd);
		if (master < 0) {
			snprintf(err, ERR_SIZE, "no terminal received on the console socket");
			pid = -1;
		}
	}
	if (console_lfd >= 0) {
		close(console_lfd);
		unlink("console.sock");
	}
	if (pid <= 0)
		create_failed(rc, err);
	snprintf(init_proc.id, sizeof(init_proc.id), "%s", opt.id);
	init_proc.is_init = 1;
	init_proc.pid = pid;
	hold_init_stdio(master, out, errp, in);
	oom_watch(pid);
	emit_event("create", NULL);
}

/* The descriptors handed over in adopt mode: close-on-exec from now on, as the shim's own. */
static int adopted_fd(int fd)
{
	if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -1;
	return fd;
}

/* Adopt mode: the create ran before this program; its stderr is in the stderr pipe (or in
 * runtime.err for a terminal), where the shim's own run would have captured it. */
static void adopt_container(const char *pidfile)
{
	char err[ERR_SIZE] = "";
	int out[2] = {adopted_fd(opt.adopt_fds[0]), -1}, errp[2] = {adopted_fd(opt.adopt_fds[1]), -1};
	int in[2] = {-1, adopted_fd(opt.adopt_fds[2])};
	int console_lfd = adopted_fd(opt.adopt_fds[3]);
	if (opt.terminal) {
		int fd = open("runtime.err", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			drain_text(fd, err, sizeof(err));
			close(fd);
		}
		unlink("runtime.err");
	} else if (opt.adopt_rc != 0 && errp[0] >= 0) {
		drain_text(errp[0], err, sizeof(err));
	}
	take_init(opt.adopt_rc, err, pidfile, console_lfd, out, errp, in);
}

void create_container(void)
{
	char err[ERR_SIZE] = "", pidfile[PATH_MAX + 32], console[PATH_MAX + 32];
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, in[2] = {-1, -1}, console_lfd = -1;
	int console_dir = -1;
	snprintf(pidfile, sizeof(pidfile), "%s/init.pid", state_dir_abs);
	if (opt.adopt) {
		adopt_container(pidfile);
		return;
	}
	const char *args[12] = {"create", "--bundle", opt.bundle, "--pid-file", pidfile};
	int n = 5;
	if (opt.terminal) {
		console_lfd = listen_unix("console.sock");
		if (console_lfd < 0) {
			ready("err Unknown console socket: %s", strerror(errno));
			exit(1);
		}
		console_dir = console_arg("console.sock", console, sizeof(console));
		args[n++] = "--console-socket";
		args[n++] = console;
	}
	args[n++] = opt.id;
	args[n] = NULL;

	int rc = opt.terminal ? run_runtime(args, -1, -1, -1, err, sizeof(err))
			      : create_with_pipes(args, out, errp, in, err);
	if (console_dir >= 0)
		close(console_dir);
	take_init(rc, err, pidfile, console_lfd, out, errp, in);
}
