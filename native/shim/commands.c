/* One handler per request of the wire protocol (docs/containerd.md, "The shim protocol"). */
#include "shim.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

int quit;

int is_live(void)
{
	return !init_proc.exited;
}

static void reply_exit(struct client *c, struct proc *p)
{
	struct buf b = {0};
	exit_json(&b, p);
	reply(c, "ok %s", b.p);
	buf_free(&b);
}

static void cmd_state(struct client *c)
{
	struct buf b = {0};
	buf_add(&b, "{\"id\":\"", 7);
	json_escape(&b, (const unsigned char *)opt.id, strlen(opt.id));
	buf_addf(&b, "\",\"status\":\"%s\",\"pid\":%d,\"shim_pid\":%d,\"terminal\":%s,"
		 "\"oom_killed\":%s,\"log_dropped\":%llu",
		 status_names[status], init_proc.pid, getpid(), opt.terminal ? "true" : "false",
		 oom_kills ? "true" : "false", init_proc.has_log ? init_proc.log.dropped : 0ULL);
	if (init_proc.finalized) {
		char when[64];
		rfc3339nano(&init_proc.exited_at, when, sizeof(when));
		buf_addf(&b, ",\"exit_status\":%d,\"exited_at\":\"%s\"", init_proc.status, when);
	}
	buf_add(&b, "}", 1);
	reply(c, "ok %s", b.p);
	buf_free(&b);
}

/* "start by-client": the client releases the init itself right after the reply (an in-process
 * runtime start); the shim records the start first, so the events stay in order however soon
 * the process exits. */
static void cmd_start(struct client *c, int by_client)
{
	char err[4096];
	if (status != ST_CREATED) {
		reply(c, "err FailedPrecondition container %s is %s, not created", opt.id,
		      status_names[status]);
		return;
	}
	const char *args[] = {"start", opt.id, NULL};
	if (!by_client && run_runtime(args, -1, -1, -1, err, sizeof(err)) != 0) {
		error_reply(c, "Unknown", "runtime start failed", err);
		return;
	}
	if (status == ST_CREATED)
		status = ST_RUNNING;
	emit_event("start", NULL);
	reply(c, "ok");
}

static void cmd_kill(struct client *c, const struct request *r)
{
	char err[4096];
	if (!is_live()) {
		reply(c, "err FailedPrecondition container %s is not running", opt.id);
	} else if (r->all) {
		const char *args[] = {"kill", "--all", opt.id, r->signal, NULL};
		if (run_runtime(args, -1, -1, -1, err, sizeof(err)) != 0)
			error_reply(c, "Unknown", "runtime kill failed", err);
		else
			reply(c, "ok");
	} else if (kill(init_proc.pid, r->signo) < 0) {
		reply(c, "err Unknown kill %d: %s", init_proc.pid, strerror(errno));
	} else {
		reply(c, "ok");
	}
}

static void cmd_pause_resume(struct client *c, int pausing)
{
	char err[4096];
	if (status != (pausing ? ST_RUNNING : ST_PAUSED) || !is_live()) {
		reply(c, "err FailedPrecondition container %s is %s", opt.id, status_names[status]);
		return;
	}
	const char *args[] = {pausing ? "pause" : "resume", opt.id, NULL};
	if (run_runtime(args, -1, -1, -1, err, sizeof(err)) != 0) {
		error_reply(c, "Unknown", pausing ? "runtime pause failed" : "runtime resume failed",
			    err);
		return;
	}
	status = pausing ? ST_PAUSED : ST_RUNNING;
	emit_event(pausing ? "pause" : "resume", NULL);
	reply(c, "ok");
}

static void cmd_wait(struct client *c)
{
	if (init_proc.finalized)
		reply_exit(c, &init_proc);
	else
		c->mode = C_WAIT;
}

static void cmd_wait_exec(struct client *c, const char *id)
{
	struct proc *p = id ? find_exec(id) : NULL;
	if (!p) {
		reply(c, "err NotFound exec %s: not found", id ? id : "");
	} else if (p->finalized) {
		reply_exit(c, p);
		free_exec(p);
	} else {
		snprintf(c->exec_id, sizeof(c->exec_id), "%s", p->id);
		c->mode = C_WAIT_EXEC;
	}
}

static void cmd_resize(struct client *c, const struct request *r)
{
	struct winsize ws = {0};
	struct proc *p = r->exec_id ? find_exec(r->exec_id) : &init_proc;
	if (!p) {
		reply(c, "err NotFound exec %s: not found", r->exec_id);
	} else if (p->pty_fd < 0) {
		reply(c, "err FailedPrecondition %s %s has no terminal",
		      r->exec_id ? "exec" : "container", r->exec_id ? r->exec_id : opt.id);
	} else {
		ws.ws_col = r->cols;
		ws.ws_row = r->rows;
		if (ioctl(p->pty_fd, TIOCSWINSZ, &ws) < 0)
			reply(c, "err Unknown resize: %s", strerror(errno));
		else
			reply(c, "ok");
	}
}

static void cmd_attach(struct client *c, const char *id)
{
	struct proc *p = id ? find_exec(id) : &init_proc;
	if (!p) {
		reply(c, "err NotFound exec %s: not found", id);
		return;
	}
	if (p->exited) {
		reply(c, "err FailedPrecondition %s %s is not running",
		      id ? "exec" : "container", id ? id : opt.id);
		return;
	}
	reply(c, "ok");
	c->mode = C_ATTACH;
	c->target = p;
}

static void cmd_delete(struct client *c)
{
	char err[4096];
	if (is_live() && status != ST_CREATED) {
		reply(c, "err FailedPrecondition container %s is %s: stop it first", opt.id,
		      status_names[status]);
		return;
	}
	const char *args[] = {"delete", "--force", opt.id, NULL};
	if (run_runtime(args, -1, -1, -1, err, sizeof(err)) != 0) {
		error_reply(c, "Unknown", "runtime delete failed", err);
		return;
	}
	if (!init_proc.exited) {       /* a created container: delete killed its init */
		int st;
		if (waitpid(init_proc.pid, &st, 0) == init_proc.pid) {
			init_proc.exited = 1;
			init_proc.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			clock_gettime(CLOCK_REALTIME, &init_proc.exited_at);
		}
	}
	if (!init_proc.finalized)
		finalize(&init_proc);
	char extra[64];
	snprintf(extra, sizeof(extra), "\"exit_status\":%d", init_proc.status);
	emit_event("delete", extra);
	reply_exit(c, &init_proc);
	quit = 1;
}

static void cmd_collect(struct client *c)
{
	if (!init_proc.finalized) {
		reply(c, "err FailedPrecondition container %s has not exited", opt.id);
		return;
	}
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i] && !execs[i]->finalized) {
			reply(c, "err FailedPrecondition exec %s has not exited", execs[i]->id);
			return;
		}
	/* Gone from the state directory before the reply: whoever reads it next finds no shim. */
	unlink("shim.sock");
	unlink("shim.pid");
	reply_exit(c, &init_proc);
	quit = 1;
}

void handle_command(struct client *c, char *line)
{
	struct request r;
	if (request_parse(line, &r) < 0) {
		reply(c, "err InvalidArgument %s%s", r.error, r.error_word);
		return;
	}
	switch (r.kind) {
	case REQ_STATE: cmd_state(c); break;
	case REQ_START: cmd_start(c, r.arg != NULL); break;
	case REQ_KILL: cmd_kill(c, &r); break;
	case REQ_PAUSE: cmd_pause_resume(c, 1); break;
	case REQ_RESUME: cmd_pause_resume(c, 0); break;
	case REQ_WAIT: cmd_wait(c); break;
	case REQ_WAIT_EXEC: cmd_wait_exec(c, r.arg); break;
	case REQ_RESIZE: cmd_resize(c, &r); break;
	case REQ_ATTACH: cmd_attach(c, r.arg); break;
	case REQ_EXEC: cmd_exec(c, &r); break;
	case REQ_DELETE: cmd_delete(c); break;
	case REQ_COLLECT: cmd_collect(c); break;
	}
}
