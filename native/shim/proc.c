/* The container's processes (the init and the execs): output streams into the log and the
 * attached clients, exits, and the exit records. */
#include "shim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct proc init_proc = {.stdin_fd = -1, .pty_fd = -1};
struct proc *execs[MAX_EXECS];
const char *const status_names[] = {"created", "running", "paused", "stopped"};
int status = ST_CREATED;

void stream_init(struct stream *s, int fd, int id)
{
	s->fd = fd;
	s->id = id;
	s->len = 0;
}

static void emit_log_line(struct proc *p, struct stream *s, const char *data, size_t n)
{
	if (!p->has_log)
		return;
	char when[64];
	rfc3339nano_now(when, sizeof(when));
	struct buf b = {0};
	buf_add(&b, "{\"log\":\"", 8);
	json_escape(&b, (const unsigned char *)data, n);
	buf_addf(&b, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n",
		 s->id == 2 ? "stderr" : "stdout", when);
	log_write(&p->log, b.p, b.len);
	buf_free(&b);
}

static void stream_feed(struct proc *p, struct stream *s, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		s->line[s->len++] = data[i];
		if (data[i] == '\n' || s->len == LINE_CAP) {
			emit_log_line(p, s, s->line, s->len);
			s->len = 0;
		}
	}
}

static void stream_close(struct proc *p, struct stream *s)
{
	if (s->len) {
		emit_log_line(p, s, s->line, s->len);
		s->len = 0;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void stream_read(struct proc *p, struct stream *s)
{
	static char data[READ_CAP];
	ssize_t r = read(s->fd, data, sizeof(data));
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {           /* EOF, or EIO from a pty whose other side is gone */
		stream_close(p, s);
		return;
	}
	stream_feed(p, s, data, r);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] && clients[i]->mode == C_ATTACH && clients[i]->target == p)
			send_frame(clients[i], s->id, data, r);
}

struct proc *stream_owner(struct stream *s)
{
	struct proc *p = &init_proc;
	for (int k = 0; k < MAX_EXECS; k++)
		if (execs[k] && (&execs[k]->out == s || &execs[k]->err == s))
			p = execs[k];
	return p;
}

void exit_json(struct buf *b, struct proc *p)
{
	char when[64];
	rfc3339nano(&p->exited_at, when, sizeof(when));
	buf_addf(b, "{\"id\":\"");
	json_escape(b, (const unsigned char *)p->id, strlen(p->id));
	buf_addf(b, "\",\"pid\":%d,\"exit_status\":%d,\"exited_at\":\"%s\"", p->pid, p->status, when);
	if (p->is_init)   /* log_dropped too: once collected, the exit file is all that is left */
		buf_addf(b, ",\"oom_killed\":%s,\"log_dropped\":%llu", oom_kills ? "true" : "false",
			 p->has_log ? p->log.dropped : 0ULL);
	buf_add(b, "}", 1);
}

struct proc *find_exec(const char *id)
{
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i] && strcmp(execs[i]->id, id) == 0)
			return execs[i];
	return NULL;
}

void free_exec(struct proc *p)
{
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i] == p)
			execs[i] = NULL;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] && clients[i]->target == p)
			clients[i]->target = NULL, clients[i]->close_after_flush = 1;
	if (p->out.fd >= 0)
		close(p->out.fd);
	if (p->err.fd >= 0)
		close(p->err.fd);
	if (p->stdin_fd >= 0 && p->stdin_fd != p->out.fd)
		close(p->stdin_fd);
	if (p->has_log && p->log.fd >= 0)
		close(p->log.fd);
	free(p);
}

/* The exit record into the exit file (exit, or exec-ID.exit) and the event log. */
static void record_exit(struct proc *p, struct buf *b)
{
	char path[PATH_MAX];
	if (p->is_init)
		snprintf(path, sizeof(path), "exit");
	else
		snprintf(path, sizeof(path), "exec-%s.exit", p->id);
	buf_add(b, "\n", 1);
	write_file(path, b->p);
	b->len--;
	b->p[b->len] = 0;

	char extra[256];
	if (p->is_init)
		snprintf(extra, sizeof(extra), "\"pid\":%d,\"exit_status\":%d,\"oom_killed\":%s",
			 p->pid, p->status, oom_kills ? "true" : "false");
	else
		snprintf(extra, sizeof(extra), "\"exec_id\":\"%s\",\"pid\":%d,\"exit_status\":%d",
			 p->id, p->pid, p->status);
	emit_event(p->is_init ? "exit" : "exec-exit", extra);
}

/* Answer the clients waiting for p (wait, wait-exec) and end its attach streams. */
static void notify_waiters(struct proc *p, const char *record)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = clients[i];
		if (!c)
			continue;
		if (p->is_init && c->mode == C_WAIT) {
			reply(c, "ok %s", record);
			c->mode = C_CMD;
		} else if (!p->is_init && c->mode == C_WAIT_EXEC && strcmp(c->exec_id, p->id) == 0) {
			reply(c, "ok %s", record);
			c->mode = C_CMD;
			p->collected = 1;
		} else if (c->mode == C_ATTACH && c->target == p) {
			char text[16];
			int n = snprintf(text, sizeof(text), "%d", p->status);
			send_frame(c, 3, text, n);
			c->close_after_flush = 1;
			c->target = NULL;
		}
	}
}

void finalize(struct proc *p)
{
	if (p->out.fd >= 0)
		stream_close(p, &p->out);
	if (p->err.fd >= 0)
		stream_close(p, &p->err);
	p->finalized = 1;
	struct buf b = {0};
	if (p->is_init) {
		oom_check();
		status = ST_STOPPED;
	}
	if (p->stdin_fd >= 0 && p->stdin_fd != p->pty_fd)
		close(p->stdin_fd);
	p->stdin_fd = p->pty_fd = -1;
	exit_json(&b, p);
	record_exit(p, &b);
	notify_waiters(p, b.p);
	buf_free(&b);
	if (!p->is_init && p->collected)
		free_exec(p);
}

void reap(void)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0)
			return;
		struct proc *p = NULL;
		if (pid == init_proc.pid)
			p = &init_proc;
		for (int i = 0; !p && i < MAX_EXECS; i++)
			if (execs[i] && execs[i]->pid == pid)
				p = execs[i];
		if (!p || p->exited)
			continue;
		p->exited = 1;
		p->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		clock_gettime(CLOCK_REALTIME, &p->exited_at);
		p->exit_seen_ms = now_ms();
	}
}

static int output_open(struct proc *p)
{
	return p->out.fd >= 0 || p->err.fd >= 0;
}

int check_exits(void)
{
	int timeout = -1;
	struct proc *all[MAX_EXECS + 1];
	int n = 0;
	all[n++] = &init_proc;
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i])
			all[n++] = execs[i];
	for (int i = 0; i < n; i++) {
		struct proc *p = all[i];
		if (!p->exited || p->finalized)
			continue;
		long long left = p->exit_seen_ms + DRAIN_GRACE_MS - now_ms();
		if (!output_open(p) || left <= 0)
			finalize(p);
		else if (timeout < 0 || left < timeout)
			timeout = (int)left;
	}
	return timeout;
}
