/*
 * pyrunc-shim: the per-container monitor (containerd's shim, conmon's role).
 *
 * One shim per container. It detaches (double fork, setsid), becomes the child subreaper, runs
 * "<runtime> create" so that the container's init reparents to it, holds the container's stdio
 * (json-file logs with rotation, attach streams, a pty received over the runtime's console
 * socket), records the exit status and OOM kills in the state directory, and answers the
 * lifecycle manager over "shim.sock" in the state directory.
 *
 *   pyrunc-shim --id ID --state-dir DIR --bundle DIR --runtime BIN [--runtime-root DIR]
 *               [--log PATH [--log-max-size BYTES] [--log-max-file N]] [--terminal] [--stdin]
 *               [--events PATH] [--ready-fd FD] [--adopt RC,OUT,ERR,IN,CONSOLE]
 *
 * --adopt is the warm create path's (pyrunc.containerd.shim.warm): the process executing the
 * shim already ran the runtime's create in itself, detached and as the subreaper, so the init
 * is its child. The shim then neither detaches nor runs the create: it takes the create's exit
 * code and the descriptors it left (the init's stdout and stderr read ends, its stdin write
 * end, the console socket's listener; -1 for none) and goes on as after its own create.
 *
 * The wire protocol on shim.sock, the files in the state directory and the events are
 * described in docs/containerd.md ("The shim protocol"). This file holds the options, the
 * detaching and main; the rest is in native/shim/ (shim.h lists the modules).
 */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

struct options opt = { .log_max_file = 1, .ready_fd = -1 };
char state_dir_abs[PATH_MAX];

void ready(const char *fmt, ...)
{
	if (opt.ready_fd < 0)
		return;
	char text[4200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text) - 1, fmt, ap);
	va_end(ap);
	one_line(text);
	strcat(text, "\n");
	write_all(opt.ready_fd, text, strlen(text));
	/* after an error the shim exits: the reader sees EOF only once it is gone */
	if (strncmp(text, "ok", 2) == 0) {
		close(opt.ready_fd);
		opt.ready_fd = -1;
	}
}

static __attribute__((noreturn)) void usage(void)
{
	fprintf(stderr, "usage: pyrunc-shim --id ID --state-dir DIR --bundle DIR --runtime BIN "
		"[--runtime-root DIR] [--log PATH] [--log-max-size BYTES] [--log-max-file N] "
		"[--terminal] [--stdin] [--events PATH] [--ready-fd FD] "
		"[--adopt RC,OUT,ERR,IN,CONSOLE]\n");
	exit(2);
}

/* An option with a value; 0 if a is not one. */
static int set_option(const char *a, const char *v)
{
	if (strcmp(a, "--id") == 0) opt.id = v;
	else if (strcmp(a, "--state-dir") == 0) opt.state_dir = v;
	else if (strcmp(a, "--bundle") == 0) opt.bundle = v;
	else if (strcmp(a, "--runtime") == 0) opt.runtime = v;
	else if (strcmp(a, "--runtime-root") == 0) opt.runtime_root = v;
	else if (strcmp(a, "--log") == 0) opt.log = v;
	else if (strcmp(a, "--log-max-size") == 0) opt.log_max_size = atoll(v);
	else if (strcmp(a, "--log-max-file") == 0) opt.log_max_file = atoi(v);
	else if (strcmp(a, "--events") == 0) opt.events = v;
	else if (strcmp(a, "--ready-fd") == 0) opt.ready_fd = atoi(v);
	else if (strcmp(a, "--adopt") == 0) {
		char end;
		opt.adopt = sscanf(v, "%d,%d,%d,%d,%d%c", &opt.adopt_rc, &opt.adopt_fds[0],
				   &opt.adopt_fds[1], &opt.adopt_fds[2], &opt.adopt_fds[3], &end) == 5;
		if (!opt.adopt)
			usage();
	}
	else return 0;
	return 1;
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--terminal") == 0) {
			opt.terminal = 1;
			continue;
		}
		if (strcmp(a, "--stdin") == 0) {
			opt.stdin_open = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!set_option(a, v))
			usage();
	}
	if (!opt.id || !opt.state_dir || !opt.bundle || !opt.runtime)
		usage();
}

static void daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		exit(1);
	if (pid > 0)
		_exit(0);
	setsid();
	pid = fork();
	if (pid < 0)
		exit(1);
	if (pid > 0)
		_exit(0);
}

/* stdin and stdout on /dev/null, stderr on shim.log (diagnostics) in the state directory. */
static void redirect_stdio(void)
{
	int nul = open("/dev/null", O_RDWR);
	int diag = open("shim.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(diag >= 0 ? diag : nul, 2);
	if (nul > 2)
		close(nul);
	if (diag > 2)
		close(diag);
}

/* SIGCHLD through a signalfd; SIGPIPE ignored (a client gone is a failed write). */
static int signals_fd(void)
{
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	if (!realpath(opt.state_dir, state_dir_abs)) {
		fprintf(stderr, "pyrunc-shim: %s: %s\n", opt.state_dir, strerror(errno));
		return 1;
	}
	if (opt.ready_fd >= 0)
		fcntl(opt.ready_fd, F_SETFD, FD_CLOEXEC);
	if (!opt.adopt)
		daemonize();
	if (chdir(state_dir_abs) < 0)
		_exit(1);
	umask(022);
	redirect_stdio();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int sfd = signals_fd();

	char pidtext[32];
	snprintf(pidtext, sizeof(pidtext), "%d\n", getpid());
	write_file("shim.pid", pidtext);
	int lfd = listen_unix("shim.sock");
	if (lfd < 0 || sfd < 0) {
		ready("err Unknown shim socket: %s", strerror(errno));
		unlink("shim.pid");
		return 1;
	}
	set_nonblock(lfd);
	if (opt.log) {
		log_open(&init_proc.log, opt.log, opt.log_max_size, opt.log_max_file);
		init_proc.has_log = 1;
	}
	create_container();
	ready("ok %d", init_proc.pid);
	reap();
	event_loop(lfd, sfd);
	deliver_last_replies();   /* the last replies, before going away */
	unlink("shim.sock");
	unlink("shim.pid");
	return 0;
}
