/* The exec request: "<runtime> exec --detach" a process into the running container; the
 * process reparents to the shim, which then holds its stdio like the init's. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The descriptors of one exec's start: pipes (or a console socket for a tty). */
struct exec_fds {
	int out[2], errp[2], in[2], console_lfd, master;
};

static void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The request can be served: the container runs, the id is new, a slot is free. */
static int exec_slot(struct client *c, const char *id)
{
	if (!is_live() || status == ST_CREATED) {
		reply(c, "err FailedPrecondition container %s is not running", opt.id);
		return -1;
	}
	if (find_exec(id)) {
		reply(c, "err AlreadyExists exec %s already exists", id);
		return -1;
	}
	for (int i = 0; i < MAX_EXECS; i++)
		if (!execs[i])
			return i;
	reply(c, "err Unavailable too many exec processes");
	return -1;
}

/* Run the runtime's exec; the process's pid, or -1 with the reason in err. */
static pid_t exec_run(const struct request *r, struct exec_fds *f, char *err, size_t errsize)
{
	char pidfile[PATH_MAX + 96], console_name[128], console[PATH_MAX + 160];
	snprintf(pidfile, sizeof(pidfile), "%s/exec-%s.pid", state_dir_abs, r->exec_id);
	snprintf(console_name, sizeof(console_name), "exec-%s.console", r->exec_id);
	const char *args[] = {"exec", "--detach", "--pid-file", pidfile, "--process", r->process,
			      NULL, NULL, NULL, NULL};
	int n = 6, console_dir = -1;
	if (r->tty) {
		f->console_lfd = listen_unix(console_name);
		console_dir = console_arg(console_name, console, sizeof(console));
		args[n++] = "--console-socket";
		args[n++] = console;
	}
	args[n++] = opt.id;
	if ((r->tty && f->console_lfd < 0) || pipe2(f->errp, O_CLOEXEC) < 0 ||
	    (!r->tty && pipe2(f->out, O_CLOEXEC) < 0) ||
	    (r->want_stdin && !r->tty && pipe2(f->in, O_CLOEXEC) < 0)) {
		snprintf(err, errsize, "exec %s: %s", r->exec_id, strerror(errno));
		if (console_dir >= 0)
			close(console_dir);
		return -1;
	}
	int rc = run_runtime(args, f->in[0], r->tty ? -1 : f->out[1], f->errp[1], NULL, 0);
	if (console_dir >= 0)
		close(console_dir);
	pid_t pid = rc == 0 ? read_pid_file(pidfile) : -1;
	if (pid > 0 && r->tty && (f->master = receive_console(f->console_lfd)) < 0) {
		snprintf(err, errsize, "no terminal received on the console socket");
		kill(pid, SIGKILL);
		pid = -1;
	}
	if (pid <= 0 && !err[0]) {
		close(f->errp[1]);
		f->errp[1] = -1;
		drain_text(f->errp[0], err, errsize);
	}
	if (pid <= 0 && !err[0])
		snprintf(err, errsize, "exited with %d", rc);
	return pid;
}

/* The process record of a started exec, holding the parent's ends of its stdio. */
static struct proc *exec_proc(const struct request *r, pid_t pid, struct exec_fds *f)
{
	struct proc *p = calloc(1, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", r->exec_id);
	p->pid = pid;
	p->stdin_fd = p->pty_fd = -1;
	if (r->tty) {
		set_nonblock(f->master);
		p->pty_fd = p->stdin_fd = f->master;
		stream_init(&p->out, f->master, 1);
		stream_init(&p->err, -1, 2);
		close(f->errp[0]);
	} else {
		set_nonblock(f->out[0]);
		set_nonblock(f->errp[0]);
		stream_init(&p->out, f->out[0], 1);
		stream_init(&p->err, f->errp[0], 2);
		if (f->in[1] >= 0) {
			set_nonblock(f->in[1]);
			p->stdin_fd = f->in[1];
		}
	}
	close_fds((int[]){f->out[1], f->errp[1], f->in[0], f->console_lfd}, 4);
	char logpath[PATH_MAX];
	snprintf(logpath, sizeof(logpath), "exec-%s.log", r->exec_id);
	log_open(&p->log, logpath, opt.log_max_size, 1);
	p->has_log = 1;
	return p;
}

static void unlink_console(const struct request *r)
{
	char console_name[128];
	snprintf(console_name, sizeof(console_name), "exec-%s.console", r->exec_id);
	unlink(console_name);
}

void cmd_exec(struct client *c, const struct request *r)
{
	char err[4096] = "";
	int slot = exec_slot(c, r->exec_id);
	if (slot < 0)
		return;
	struct exec_fds f = {{-1, -1}, {-1, -1}, {-1, -1}, -1, -1};
	pid_t pid = exec_run(r, &f, err, sizeof(err));
	if (pid <= 0) {
		close_fds((int[]){f.out[0], f.out[1], f.errp[0], f.errp[1], f.in[0], f.in[1],
				  f.console_lfd}, 7);
		if (r->tty)
			unlink_console(r);
		error_reply(c, "Unknown", "runtime exec failed", err);
		return;
	}
	struct proc *p = exec_proc(r, pid, &f);
	if (r->tty)
		unlink_console(r);
	execs[slot] = p;
	char extra[256];
	snprintf(extra, sizeof(extra), "\"exec_id\":\"%s\",\"pid\":%d", r->exec_id, pid);
	emit_event("exec-start", extra);
	reply(c, "ok %d", pid);
	if (r->attach) {
		c->mode = C_ATTACH;
		c->target = p;
	}
	reap();
}
