/* The poll loop: the listening socket, SIGCHLD (signalfd), the OOM watch, the processes'
 * output, the clients and the containers' stdin. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

enum { K_LISTEN, K_SIGNAL, K_OOM, K_STREAM, K_CLIENT, K_STDIN };
#define POLL_MAX (4 + 2 + 2 * MAX_EXECS + 2 * MAX_CLIENTS)

struct pollset {
	struct pollfd pfd[POLL_MAX];
	int kind[POLL_MAX];
	void *what[POLL_MAX];
	int n;
	int pty_pending;        /* attach input waits for a pty master (polled for output) */
};

static void add(struct pollset *ps, int fd, short events, int kind, void *what)
{
	ps->pfd[ps->n] = (struct pollfd){.fd = fd, .events = events};
	ps->kind[ps->n] = kind;
	ps->what[ps->n] = what;
	ps->n++;
}

static void add_streams(struct pollset *ps)
{
	struct proc *procs[MAX_EXECS + 1];
	int np = 0;
	procs[np++] = &init_proc;
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i])
			procs[np++] = execs[i];
	for (int i = 0; i < np; i++) {
		if (procs[i]->out.fd >= 0)
			add(ps, procs[i]->out.fd, POLLIN, K_STREAM, &procs[i]->out);
		if (procs[i]->err.fd >= 0)
			add(ps, procs[i]->err.fd, POLLIN, K_STREAM, &procs[i]->err);
	}
}

/* Clients (closing those done), and the stdin pipes their attach input waits for. */
static void add_clients(struct pollset *ps)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = clients[i];
		if (!c)
			continue;
		if (c->close_after_flush && !c->out.len) {
			client_close(c);
			continue;
		}
		/* Its input is read only while none of its stdin waits for the container, and
		 * not at all once it is being closed: the input held stays within one read. A
		 * client with only stdin waiting is not polled (its hang-up is read after). */
		short ev = c->out.len ? POLLOUT : 0;
		if (!c->pending_stdin.len && !c->close_after_flush)
			ev |= POLLIN;
		if (ev)
			add(ps, c->fd, ev, K_CLIENT, c);
		struct proc *t = c->target;
		if (c->pending_stdin.len && t && t->stdin_fd >= 0 && t->stdin_fd != t->pty_fd)
			add(ps, t->stdin_fd, POLLOUT, K_STDIN, NULL);
		else if (c->pending_stdin.len)
			ps->pty_pending = 1;
	}
}

static void flush_all_stdin(void)
{
	for (int k = 0; k < MAX_CLIENTS; k++)
		if (clients[k])
			flush_stdin(clients[k]);
}

static void on_signal(int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof(si)) > 0)
		;
	reap();
}

static void on_oom(void)
{
	uint64_t v;
	if (oom_poll_fd != oom_ctl_fd && read(oom_poll_fd, &v, sizeof(v)) < 0)
		return;
	oom_check();   /* re-reading memory.events also re-arms its poll */
}

static void on_client(struct client *c, short revents)
{
	if (!client_live(c))   /* closed by an earlier event of this round */
		return;
	if (revents & POLLOUT)
		client_flush(c);
	if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->pending_stdin.len)
		client_read(c);
}

static void dispatch(struct pollset *ps, int lfd, int sfd)
{
	for (int i = 0; i < ps->n; i++) {
		short revents = ps->pfd[i].revents;
		if (!revents)
			continue;
		switch (ps->kind[i]) {
		case K_LISTEN:
			client_accept(lfd);
			break;
		case K_SIGNAL:
			on_signal(sfd);
			break;
		case K_OOM:
			on_oom();
			break;
		case K_STREAM: {
			struct stream *s = ps->what[i];
			if (s->fd >= 0)
				stream_read(stream_owner(s), s);
			break;
		}
		case K_CLIENT:
			on_client(ps->what[i], revents);
			break;
		case K_STDIN:
			flush_all_stdin();
			break;
		}
	}
}

void event_loop(int lfd, int sfd)
{
	struct pollset ps;
	while (!quit) {
		int timeout = check_exits();
		ps.n = 0;
		ps.pty_pending = 0;
		add(&ps, lfd, POLLIN, K_LISTEN, NULL);
		add(&ps, sfd, POLLIN, K_SIGNAL, NULL);
		if (oom_poll_fd >= 0 && !init_proc.exited)   /* a removed cgroup polls forever */
			add(&ps, oom_poll_fd, oom_poll_events, K_OOM, NULL);
		add_streams(&ps);
		add_clients(&ps);
		if (ps.pty_pending)   /* a pty master also carries output: retry its input soon */
			timeout = timeout < 0 || timeout > 20 ? 20 : timeout;
		if (poll(ps.pfd, ps.n, timeout) < 0 && errno != EINTR)
			break;
		dispatch(&ps, lfd, sfd);
		if (ps.pty_pending)
			flush_all_stdin();
	}
}

void deliver_last_replies(void)
{
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (!clients[i])
			continue;
		fcntl(clients[i]->fd, F_SETFL, 0);
		struct timeval tv = {.tv_sec = 1};
		setsockopt(clients[i]->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		client_flush(clients[i]);
		client_close(clients[i]);
	}
}
