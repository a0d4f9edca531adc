/* Connections on shim.sock: queued replies, attach frames both ways, and reading requests.
 * The wire protocol is described in docs/containerd.md, "The shim protocol". */
#include "shim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct client *clients[MAX_CLIENTS];

int client_live(const struct client *c)
{
	int still = 0;
	for (int k = 0; k < MAX_CLIENTS; k++)
		still |= clients[k] == c;
	return still;
}

void client_accept(int lfd)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	int slot = -1;
	for (int k = 0; c >= 0 && k < MAX_CLIENTS && slot < 0; k++)
		if (!clients[k])
			slot = k;
	if (c >= 0 && slot < 0) {
		close(c);
	} else if (c >= 0) {
		clients[slot] = calloc(1, sizeof(struct client));
		clients[slot]->fd = c;
	}
}

void client_close(struct client *c)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] == c)
			clients[i] = NULL;
	close(c->fd);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->pending_stdin);
	free(c);
}

void client_flush(struct client *c)
{
	while (c->out.len) {
		ssize_t w = write(c->fd, c->out.p, c->out.len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->out.len = 0, c->close_after_flush = 1;
			break;
		}
		buf_consume(&c->out, w);
	}
}

static void client_send(struct client *c, const void *data, size_t n)
{
	if (c->close_after_flush)   /* being closed: what is queued is all it gets */
		return;
	if (c->out.len + n > CLIENT_OUT_LIMIT) {
		/* a client that does not read loses its stream; the log keeps the output */
		c->out.len = 0;
		c->close_after_flush = 1;
		return;
	}
	buf_add(&c->out, data, n);
	client_flush(c);
}

void reply(struct client *c, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(&b, n + 1);
	va_start(ap, fmt);
	vsnprintf(b.p, n + 1, fmt, ap);
	va_end(ap);
	b.len = n;
	buf_add(&b, "\n", 1);
	client_send(c, b.p, b.len);
	buf_free(&b);
}

void error_reply(struct client *c, const char *category, const char *what, char *text)
{
	one_line(text);
	reply(c, "err %s %s%s%s", category, what, text[0] ? ": " : "", text);
}

void send_frame(struct client *c, int stream, const char *data, size_t n)
{
	unsigned char h[8] = {(unsigned char)stream, 0, 0, 0,
			      (unsigned char)(n >> 24), (unsigned char)(n >> 16),
			      (unsigned char)(n >> 8), (unsigned char)n};
	if (c->close_after_flush)
		return;
	if (c->out.len + n + 8 > CLIENT_OUT_LIMIT) {
		c->out.len = 0;
		c->close_after_flush = 1;
		return;
	}
	buf_add(&c->out, h, 8);
	buf_add(&c->out, data, n);
	client_flush(c);
}

/* A client that broke the protocol: nothing more is read from it or sent to it, and it is
 * closed at the next round of the loop (its queued output dropped: it may never read it). */
static void drop_client(struct client *c)
{
	c->in.len = 0;
	c->out.len = 0;
	c->frame_left = 0;
	c->close_after_flush = 1;
}

/* Attach input: frames with stream 0, stdin; a zero-length frame closes stdin. A payload goes
 * to pending_stdin as it arrives, so a frame is never held whole: the input held stays within
 * one read (the loop reads no more while pending_stdin waits for the container). A header
 * with another stream, non-zero padding or a length over ATTACH_FRAME_MAX drops the client. */
static void attach_input(struct client *c)
{
	size_t used = 0;
	while (used < c->in.len) {
		size_t have = c->in.len - used;
		if (c->frame_left) {
			size_t n = have < c->frame_left ? have : c->frame_left;
			if (c->target && c->target->stdin_fd >= 0 && !c->close_stdin)
				buf_add(&c->pending_stdin, c->in.p + used, n);
			used += n;
			c->frame_left -= n;
			continue;
		}
		if (have < 8)
			break;
		const unsigned char *h = (const unsigned char *)c->in.p + used;
		size_t n = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
		if (h[0] != 0 || h[1] || h[2] || h[3] || n > ATTACH_FRAME_MAX) {
			drop_client(c);
			return;
		}
		used += 8;
		if (n == 0)
			c->close_stdin = 1;
		c->frame_left = n;
	}
	buf_consume(&c->in, used);
}

void flush_stdin(struct client *c)
{
	struct proc *p = c->target;
	while (c->pending_stdin.len) {
		if (!p || p->stdin_fd < 0) {
			c->pending_stdin.len = 0;
			return;
		}
		ssize_t w = write(p->stdin_fd, c->pending_stdin.p, c->pending_stdin.len);
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				c->pending_stdin.len = 0;
			return;
		}
		buf_consume(&c->pending_stdin, w);
	}
	if (c->close_stdin && p && p->stdin_fd >= 0 && p->stdin_fd != p->pty_fd) {
		close(p->stdin_fd);
		p->stdin_fd = -1;
	}
}

static void refuse_too_long(struct client *c)
{
	reply(c, "err InvalidArgument request too long");
	c->close_after_flush = 1;
	c->in.len = 0;
}

/* Serve the complete request lines in c's input, while it is in command mode. */
static void serve_requests(struct client *c)
{
	char line[REQUEST_LINE_MAX];
	while (c->mode == C_CMD && !quit && !c->close_after_flush) {
		int got = request_next_line(&c->in, line);
		if (got == 0)
			break;
		if (got < 0) {
			refuse_too_long(c);
			return;
		}
		handle_command(c, line);
		if (c->mode == C_ATTACH) {
			attach_input(c);
			flush_stdin(c);
		}
	}
	if (c->mode != C_ATTACH && !c->close_after_flush && c->in.len > REQUEST_PENDING_MAX)
		refuse_too_long(c);
}

void client_read(struct client *c)
{
	char data[4096];
	ssize_t r = read(c->fd, data, sizeof(data));
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		client_close(c);
		return;
	}
	if (c->close_after_flush)   /* answered for the last time: its input is not read */
		return;
	buf_add(&c->in, data, r);
	if (c->mode == C_ATTACH) {
		attach_input(c);
		flush_stdin(c);
		return;
	}
	serve_requests(c);
}
