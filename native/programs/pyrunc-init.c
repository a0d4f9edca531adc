/*
 * pyrunc-init: a small init for containers (what `docker run --init` places as PID 1).
 *
 *   pyrunc-init [--] CMD [ARGS...]
 *
 * It runs CMD as its only direct child and then, until that child exits:
 *
 *  - forwards every signal it can catch to the child (SIGTERM, SIGINT, SIGHUP, SIGQUIT,
 *    SIGUSR1/2, SIGWINCH, SIGCONT, SIGTSTP, the real-time signals...). The synchronous signals
 *    (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT) stay the init's own, and
 *    SIGTTIN/SIGTTOU are ignored: a background init must not stop on its terminal;
 *  - reaps every process that exits under it: as PID 1 every orphan of the container is
 *    reparented to it (outside a PID namespace it makes itself the child subreaper, so it
 *    does the same for its own descendants);
 *  - exits with the child's status: its exit code, or 128+N when signal N killed it (as a
 *    shell reports it). A CMD that cannot be executed exits 127 (not found) or 126.
 *
 * When its standard input is a terminal, the init is the session leader holding it as the
 * controlling terminal, and the child runs in its own process group made the terminal's
 * foreground group, so ^C and job control reach the command, not the init.
 *
 * Signals are collected with sigwaitinfo on a blocked set, never in a handler, so nothing
 * runs asynchronously. The program is static: it is bind-mounted into images that may have
 * no C library at all.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const int own_signals[] = {
	SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT, SIGTTIN, SIGTTOU,
};

static void fail(const char *what)
{
	fprintf(stderr, "pyrunc-init: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The set of signals the main loop collects (and forwards): all but the init's own. */
static void collected_signals(sigset_t *set)
{
	sigfillset(set);
	for (size_t i = 0; i < sizeof(own_signals) / sizeof(own_signals[0]); i++)
		sigdelset(set, own_signals[i]);
	sigdelset(set, SIGKILL);
	sigdelset(set, SIGSTOP);
}

/* A signal ignored when we were executed would be discarded, not collected: give every
 * collected signal its default disposition (blocked, the default never runs). */
static void reset_dispositions(const sigset_t *set)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(set, sig) == 1)
			sigaction(sig, &sa, NULL);     /* EINVAL for the C library's own: fine */
}

/* With a terminal on stdin: be the session leader holding it as controlling terminal
 * (a runtime that allocated it usually did this already). */
static void take_terminal(void)
{
	if (!isatty(STDIN_FILENO))
		return;
	if (tcgetsid(STDIN_FILENO) == getsid(0))
		return;
	if (setsid() < 0 && errno != EPERM)
		return;
	ioctl(STDIN_FILENO, TIOCSCTTY, 0);    /* fails if another session holds it: then no job control */
}

static __attribute__((noreturn)) void run_child(char **argv, const sigset_t *saved_mask)
{
	struct sigaction sa;

	setpgid(0, 0);
	/* SIGTTOU is still blocked here, so a background group may take the terminal */
	if (isatty(STDIN_FILENO))
		tcsetpgrp(STDIN_FILENO, getpgrp());
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTTIN, &sa, NULL);
	sigaction(SIGTTOU, &sa, NULL);
	sigprocmask(SIG_SETMASK, saved_mask, NULL);
	execvp(argv[0], argv);
	int err = errno;
	fprintf(stderr, "pyrunc-init: exec %s: %s\n", argv[0], strerror(err));
	_exit(err == ENOENT || err == ENOTDIR ? 127 : 126);
}

/* Reap every exited process; returns 1 and sets *status once `child` is among them. */
static int reap(pid_t child, int *status)
{
	int found = 0;

	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid > 0) {
			if (pid == child) {
				*status = st;
				found = 1;
			}
			continue;
		}
		if (pid < 0 && errno == EINTR)
			continue;
		return found;   /* 0: none left exited; ECHILD: no child at all */
	}
}

int main(int argc, char **argv)
{
	sigset_t collected, saved_mask;
	struct sigaction ign;
	int status = 0;

	argv++;
	argc--;
	if (argc > 0 && strcmp(argv[0], "--") == 0) {
		argv++;
		argc--;
	}
	if (argc < 1) {
		fprintf(stderr, "usage: pyrunc-init [--] CMD [ARGS...]\n");
		return 2;
	}

	collected_signals(&collected);
	if (sigprocmask(SIG_BLOCK, &collected, &saved_mask) < 0)
		fail("block signals");
	reset_dispositions(&collected);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGTTIN, &ign, NULL);
	sigaction(SIGTTOU, &ign, NULL);

	if (getpid() != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		fail("become the child subreaper");
	take_terminal();

	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child == 0)
		run_child(argv, &saved_mask);
	setpgid(child, child);  /* also in the parent: no signal may reach a group not yet made */

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&collected, &info);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			fail("wait for signals");
		}
		if (sig == SIGCHLD) {
			if (reap(child, &status))
				break;
			continue;
		}
		if (kill(child, sig) < 0 && errno != ESRCH)
			fail("forward a signal");
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
