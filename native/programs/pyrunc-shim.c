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
 *               [--events PATH] [--ready-fd FD]
 *
 * Protocol on shim.sock: one request line, one reply line.
 *   reply "ok[ PAYLOAD]" or "err CATEGORY MESSAGE" (CATEGORY is a pyrunc.errors class name).
 *
 *   state                       ok {"id":..,"status":..,"pid":..,"exit_status":..,...}
 *   start                       ok
 *   kill SIGNAL [all]           ok
 *   pause | resume              ok
 *   wait                        (when the init has exited and its output is drained)
 *                               ok {"exit_status":N,"exited_at":"...","oom_killed":bool}
 *   resize COLUMNS ROWS [EXEC]  ok                      (terminal processes)
 *   exec EXEC_ID OPTS PROCESS   ok PID   (runs "<runtime> exec -d"; OPTS "-" or a comma list of
 *                               tty, stdin, attach: attach turns the connection into the
 *                               exec's attach stream, as below)
 *   wait-exec EXEC_ID           ok {"id":..,"exit_status":N,"exited_at":"..."}
 *   attach [EXEC_ID]            ok, then the connection carries frames both ways:
 *                               8-byte header [stream,0,0,0,len(be32)] + payload;
 *                               client->shim stream 0 = stdin (len 0 closes stdin),
 *                               shim->client 1 = stdout, 2 = stderr, 3 = exit status text.
 *   collect                     (the init has exited and its output is drained, every exec
 *                               too) ok {exit}; the shim removes shim.sock and shim.pid,
 *                               flushes its logs and exits WITHOUT running the runtime's
 *                               delete: the state directory and its exit file stay, and the
 *                               manager answers from them and runs "<runtime> delete" itself
 *                               when the engine deletes the container. Before the exit:
 *                               err FailedPrecondition.
 *   delete                      "<runtime> delete" (created or exited containers only), then
 *                               ok {exit}; the shim exits. The manager sends "collect" as soon
 *                               as it sees the exit, so a stopped container that the engine
 *                               keeps holds no shim; "delete" serves a shim still there.
 *
 * Files in the state directory: shim.pid, shim.sock, init.pid, exit (json, written once the
 * container has exited), exec-ID.pid / exec-ID.log / exec-ID.exit, shim.log (diagnostics).
 * Events are json lines appended to the --events file.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define MAX_EXECS 32
#define LINE_CAP 16384          /* longest log line before it is split (docker: 16K) */
#define READ_CAP 65536
#define CLIENT_OUT_LIMIT (1 << 20)
#define DRAIN_GRACE_MS 2000     /* after the init exits, wait this long for its output */

/* ---------------------------------------------------------------- small helpers */

struct buf { char *p; size_t len, cap; };

static void buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		abort();
	b->p = p;
	b->cap = cap;
}

static void buf_add(struct buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	buf_reserve(b, n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

static void buf_consume(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	if (b->p)
		b->p[b->len] = 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* RFC 3339 with nanoseconds, trailing zeros trimmed, UTC (Go's time.RFC3339Nano). */
static void rfc3339nano(const struct timespec *ts, char *out, size_t size)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts->tv_nsec) {
		char frac[16];
		snprintf(frac, sizeof(frac), ".%09ld", ts->tv_nsec);
		size_t k = strlen(frac);
		while (frac[k - 1] == '0')
			frac[--k] = 0;
		snprintf(out + n, size - n, "%sZ", frac);
	} else {
		snprintf(out + n, size - n, "Z");
	}
}

/* JSON string body: escapes, and invalid UTF-8 replaced by U+FFFD. */
static void json_escape(struct buf *b, const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c < 0x80) {
			if (c == '"' || c == '\\') {
				char e[2] = {'\\', (char)c};
				buf_add(b, e, 2);
			} else if (c == '\n') {
				buf_add(b, "\\n", 2);
			} else if (c == '\r') {
				buf_add(b, "\\r", 2);
			} else if (c == '\t') {
				buf_add(b, "\\t", 2);
			} else if (c < 0x20 || c == 0x7f) {
				buf_addf(b, "\\u%04x", c);
			} else {
				buf_add(b, &c, 1);
			}
			i++;
			continue;
		}
		size_t len = 0;
		unsigned char lo = 0x80, hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			if (c == 0xe0)
				lo = 0xa0;
			if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f;
		}
		int ok = len && i + len <= n && s[i + 1] >= lo && s[i + 1] <= hi;
		for (size_t k = 2; ok && k < len; k++)
			ok = (s[i + k] & 0xc0) == 0x80;
		if (ok) {
			buf_add(b, s + i, len);
			i += len;
		} else {
			buf_add(b, "\\ufffd", 6);
			i++;
		}
	}
}

static int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= w;
	}
	return 0;
}

/* Write a small file atomically (tmp + rename). */
static void write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	int bad = write_all(fd, text, strlen(text));
	close(fd);
	if (bad || rename(tmp, path) < 0)
		unlink(tmp);
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void one_line(char *s)
{
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* ---------------------------------------------------------------- configuration */

static struct {
	const char *id, *state_dir, *bundle, *runtime, *runtime_root, *log, *events;
	long long log_max_size;
	int log_max_file, terminal, stdin_open, ready_fd;
} opt = { .log_max_file = 1, .ready_fd = -1 };

static char state_dir_abs[PATH_MAX];

/* ---------------------------------------------------------------- json-file log */

struct logfile {
	char path[PATH_MAX];
	int fd;
	off_t size;
	long long max_size;
	int max_file;
	unsigned long long dropped;    /* lines not written (disk full, open failure) */
};

static void log_open(struct logfile *l, const char *path, long long max_size, int max_file)
{
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->max_size = max_size;
	l->max_file = max_file < 1 ? 1 : max_file;
	l->dropped = 0;
	l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	struct stat st;
	l->size = (l->fd >= 0 && fstat(l->fd, &st) == 0) ? st.st_size : 0;
}

static void log_rotate(struct logfile *l)
{
	if (l->max_file <= 1) {
		if (ftruncate(l->fd, 0) == 0)
			l->size = 0;
		return;
	}
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	for (int i = l->max_file - 1; i >= 2; i--) {
		snprintf(from, sizeof(from), "%s.%d", l->path, i - 1);
		snprintf(to, sizeof(to), "%s.%d", l->path, i);
		rename(from, to);
	}
	snprintf(to, sizeof(to), "%s.1", l->path);
	rename(l->path, to);
	close(l->fd);
	l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	l->size = 0;
}

/* Append one complete line; a short write (ENOSPC) is undone so the file stays whole lines. */
static void log_write(struct logfile *l, const char *data, size_t n)
{
	if (l->fd < 0) {
		l->dropped++;
		return;
	}
	if (l->max_size > 0 && l->size > 0 && l->size + (off_t)n > l->max_size)
		log_rotate(l);
	if (l->fd < 0 || write_all(l->fd, data, n) < 0) {
		if (l->fd >= 0 && ftruncate(l->fd, l->size) < 0)
			l->size = lseek(l->fd, 0, SEEK_END);
		l->dropped++;
		return;
	}
	l->size += n;
}

/* ---------------------------------------------------------------- processes and streams */

struct stream {
	int fd;                 /* read end, -1 once closed */
	int id;                 /* 1 stdout, 2 stderr */
	char line[LINE_CAP];
	size_t len;
};

struct proc {
	char id[128];
	int is_init;
	pid_t pid;
	struct stream out, err;
	struct logfile log;
	int has_log;
	int stdin_fd;           /* its stdin: pipe write end, or the pty master; -1 if none */
	int pty_fd;             /* the pty master of a terminal process, -1 otherwise */
	int exited, finalized, collected;
	int status;             /* shell convention: code, or 128 + signal */
	struct timespec exited_at;
	long long exit_seen_ms;
};

static struct proc init_proc = {.stdin_fd = -1, .pty_fd = -1};
static struct proc *execs[MAX_EXECS];

enum { ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED };
static const char *status_names[] = {"created", "running", "paused", "stopped"};
static int status = ST_CREATED;

static int oom_ctl_fd = -1;      /* the file with the oom_kill count */
static long oom_baseline, oom_kills;
static int quit;

static void stream_init(struct stream *s, int fd, int id)
{
	s->fd = fd;
	s->id = id;
	s->len = 0;
}

/* ---------------------------------------------------------------- events */

static void emit_event(const char *type, const char *extra)
{
	if (!opt.events)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char when[64];
	rfc3339nano(&ts, when, sizeof(when));
	struct buf b = {0};
	buf_add(&b, "{\"time\":\"", 9);
	buf_add(&b, when, strlen(when));
	buf_add(&b, "\",\"id\":\"", 8);
	json_escape(&b, (const unsigned char *)opt.id, strlen(opt.id));
	buf_addf(&b, "\",\"type\":\"%s\"%s%s}\n", type, extra ? "," : "", extra ? extra : "");
	int fd = open(opt.events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd >= 0) {
		write_all(fd, b.p, b.len);
		close(fd);
	}
	buf_free(&b);
}

/* ---------------------------------------------------------------- clients */

enum { C_CMD, C_WAIT, C_WAIT_EXEC, C_ATTACH };

struct client {
	int fd;
	int mode;
	char exec_id[128];
	struct proc *target;        /* C_ATTACH: the process whose stdio this client holds */
	struct buf in, out;
	struct buf pending_stdin;   /* attach input not yet accepted by the container */
	int close_stdin;            /* close stdin once pending_stdin is written */
	int close_after_flush;
};

static struct client *clients[MAX_CLIENTS];

static void client_close(struct client *c)
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

static void client_flush(struct client *c)
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
	if (c->out.len + n > CLIENT_OUT_LIMIT) {
		/* a client that does not read loses its stream; the log keeps the output */
		c->out.len = 0;
		c->close_after_flush = 1;
		return;
	}
	buf_add(&c->out, data, n);
	client_flush(c);
}

static void reply(struct client *c, const char *fmt, ...)
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

static void send_frame(struct client *c, int stream, const char *data, size_t n)
{
	unsigned char h[8] = {(unsigned char)stream, 0, 0, 0,
			      (unsigned char)(n >> 24), (unsigned char)(n >> 16),
			      (unsigned char)(n >> 8), (unsigned char)n};
	if (c->out.len + n + 8 > CLIENT_OUT_LIMIT) {
		c->out.len = 0;
		c->close_after_flush = 1;
		return;
	}
	buf_add(&c->out, h, 8);
	buf_add(&c->out, data, n);
	client_flush(c);
}

/* ---------------------------------------------------------------- running the runtime */

static int devnull(int flags)
{
	return open("/dev/null", flags | O_CLOEXEC);
}

/*
 * Run "<runtime> [--root R] ARGS..." with the given stdio (-1: /dev/null; stderr -1: a capture
 * file whose text is returned in err). Returns the exit code (or 128 + signal).
 */
static int run_runtime(const char *const *args, int in, int out, int errfd, char *err, size_t errsize)
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
	if (pid == 0) {
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

/* Text left in a pipe by a failed runtime command (the container's stderr pipe). */
static void drain_text(int fd, char *out, size_t size)
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

static pid_t read_pid_file(const char *path)
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

/* ---------------------------------------------------------------- OOM kills
 *
 * cgroup v1: an eventfd registered on memory.oom_control through cgroup.event_control.
 * cgroup v2: memory.events itself, which polls POLLPRI when it changes.
 * Either way the count is the "oom_kill N" line of that file (v1 has it since Linux 4.13).
 */

static int oom_poll_fd = -1;    /* v1: the eventfd; v2: memory.events */
static short oom_poll_events;

static long oom_kill_count(void)
{
	char text[1024];
	if (oom_ctl_fd < 0)
		return 0;
	ssize_t r = pread(oom_ctl_fd, text, sizeof(text) - 1, 0);
	if (r <= 0)
		return 0;
	text[r] = 0;
	char *p = strstr(text, "oom_kill ");
	return p ? strtol(p + 9, NULL, 10) : 0;
}

static void oom_watch_v1(const char *dir)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/memory.oom_control", dir);
	oom_ctl_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (oom_ctl_fd < 0)
		return;
	snprintf(path, sizeof(path), "%s/cgroup.event_control", dir);
	int ctl = open(path, O_WRONLY | O_CLOEXEC);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl >= 0 && efd >= 0 && dprintf(ctl, "%d %d", efd, oom_ctl_fd) > 0) {
		oom_poll_fd = efd;
		oom_poll_events = POLLIN;
	} else if (efd >= 0) {
		close(efd);
	}
	if (ctl >= 0)
		close(ctl);
}

static void oom_watch_v2(const char *dir)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/memory.events", dir);
	oom_ctl_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (oom_ctl_fd >= 0) {
		oom_poll_fd = oom_ctl_fd;
		oom_poll_events = POLLPRI;
	}
}

static void oom_watch(pid_t pid)
{
	char path[PATH_MAX], line[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char v1[PATH_MAX] = "", v2[PATH_MAX] = "";
	while (fgets(line, sizeof(line), f)) {
		char *ctrl = strchr(line, ':');
		char *cg = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (!cg)
			continue;
		*cg++ = 0;
		cg[strcspn(cg, "\n")] = 0;
		if (ctrl[1] == 0) {     /* "0::/path": the v2 hierarchy */
			const char *bases[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
			for (int i = 0; i < 2 && !v2[0]; i++) {
				snprintf(path, sizeof(path), "%s%s/memory.events", bases[i], cg);
				if (access(path, R_OK) == 0)
					snprintf(v2, sizeof(v2), "%s%s", bases[i], cg);
			}
			continue;
		}
		char *tok, *save;
		for (tok = strtok_r(ctrl + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (strcmp(tok, "memory") == 0)
				snprintf(v1, sizeof(v1), "/sys/fs/cgroup/memory%s", cg);
	}
	fclose(f);
	if (v1[0])
		oom_watch_v1(v1);
	else if (v2[0])
		oom_watch_v2(v2);
	oom_baseline = oom_kill_count();
}

static void oom_check(void)
{
	long count = oom_kill_count() - oom_baseline;
	if (count > oom_kills) {
		oom_kills = count;
		emit_event("oom", NULL);
	}
}

/* ---------------------------------------------------------------- output handling */

static void emit_log_line(struct proc *p, struct stream *s, const char *data, size_t n)
{
	if (!p->has_log)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	char when[64];
	rfc3339nano(&ts, when, sizeof(when));
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

static void stream_read(struct proc *p, struct stream *s)
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

/* ---------------------------------------------------------------- exit bookkeeping */

static void exit_json(struct buf *b, struct proc *p)
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

static struct proc *find_exec(const char *id)
{
	for (int i = 0; i < MAX_EXECS; i++)
		if (execs[i] && strcmp(execs[i]->id, id) == 0)
			return execs[i];
	return NULL;
}

static void free_exec(struct proc *p)
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

static void finalize(struct proc *p)
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
	char path[PATH_MAX];
	if (p->is_init)
		snprintf(path, sizeof(path), "exit");
	else
		snprintf(path, sizeof(path), "exec-%s.exit", p->id);
	buf_add(&b, "\n", 1);
	write_file(path, b.p);
	b.len--;
	b.p[b.len] = 0;

	char extra[256];
	if (p->is_init)
		snprintf(extra, sizeof(extra), "\"pid\":%d,\"exit_status\":%d,\"oom_killed\":%s",
			 p->pid, p->status, oom_kills ? "true" : "false");
	else
		snprintf(extra, sizeof(extra), "\"exec_id\":\"%s\",\"pid\":%d,\"exit_status\":%d",
			 p->id, p->pid, p->status);
	emit_event(p->is_init ? "exit" : "exec-exit", extra);

	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = clients[i];
		if (!c)
			continue;
		if (p->is_init && c->mode == C_WAIT) {
			reply(c, "ok %s", b.p);
			c->mode = C_CMD;
		} else if (!p->is_init && c->mode == C_WAIT_EXEC && strcmp(c->exec_id, p->id) == 0) {
			reply(c, "ok %s", b.p);
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
	buf_free(&b);
	if (!p->is_init && p->collected)
		free_exec(p);
}

static void reap(void)
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

/* Finalize exited processes once their output is drained (or the grace period is over). */
static int check_exits(void)
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

/* ---------------------------------------------------------------- commands */

static const char *exec_id_ok(const char *id)
{
	if (!*id || strlen(id) > 64)
		return NULL;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("_.-", *p))
			return NULL;
	return id;
}

static void state_json(struct buf *b)
{
	buf_add(b, "{\"id\":\"", 7);
	json_escape(b, (const unsigned char *)opt.id, strlen(opt.id));
	buf_addf(b, "\",\"status\":\"%s\",\"pid\":%d,\"shim_pid\":%d,\"terminal\":%s,"
		 "\"oom_killed\":%s,\"log_dropped\":%llu",
		 status_names[status], init_proc.pid, getpid(), opt.terminal ? "true" : "false",
		 oom_kills ? "true" : "false", init_proc.has_log ? init_proc.log.dropped : 0ULL);
	if (init_proc.finalized) {
		char when[64];
		rfc3339nano(&init_proc.exited_at, when, sizeof(when));
		buf_addf(b, ",\"exit_status\":%d,\"exited_at\":\"%s\"", init_proc.status, when);
	}
	buf_add(b, "}", 1);
}

static int is_live(void)
{
	return !init_proc.exited;
}

static void error_reply(struct client *c, const char *category, const char *what, char *text)
{
	one_line(text);
	reply(c, "err %s %s%s%s", category, what, text[0] ? ": " : "", text);
}

static int listen_unix(const char *name);
static int receive_console(int lfd);

/* The --console-socket argument for a socket bound as NAME in the state directory. */
static void console_arg(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", state_dir_abs, name);
	if (strlen(out) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		snprintf(out, size, "%s", name);   /* the runtime runs in the state directory */
}

/* exec EXEC_ID OPTIONS PROCESS_JSON_PATH; OPTIONS is "-" or a comma list of tty, stdin,
 * attach (the request's connection becomes the process's attach stream). */
static void cmd_exec(struct client *c, char *args)
{
	char *save = NULL;
	char *id = strtok_r(args, " ", &save);
	char *options = id ? strtok_r(NULL, " ", &save) : NULL;
	char *process = options ? strtok_r(NULL, "", &save) : NULL;
	char err[4096] = "";
	if (!id || !process || !exec_id_ok(id)) {
		reply(c, "err InvalidArgument usage: exec EXEC_ID OPTIONS PROCESS_JSON_PATH");
		return;
	}
	int tty = 0, want_stdin = 0, attach = 0;
	for (char *o = strtok_r(options, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (strcmp(o, "tty") == 0)
			tty = 1;
		else if (strcmp(o, "stdin") == 0)
			want_stdin = 1;
		else if (strcmp(o, "attach") == 0)
			attach = 1;
		else if (strcmp(o, "-") != 0) {
			reply(c, "err InvalidArgument exec: unknown option %s", o);
			return;
		}
	}
	if (!is_live() || status == ST_CREATED) {
		reply(c, "err FailedPrecondition container %s is not running", opt.id);
		return;
	}
	if (find_exec(id)) {
		reply(c, "err AlreadyExists exec %s already exists", id);
		return;
	}
	int slot = -1;
	for (int i = 0; i < MAX_EXECS && slot < 0; i++)
		if (!execs[i])
			slot = i;
	if (slot < 0) {
		reply(c, "err Unavailable too many exec processes");
		return;
	}
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, in[2] = {-1, -1}, console_lfd = -1, master = -1;
	char pidfile[PATH_MAX + 96], console_name[128], console[PATH_MAX + 160];
	snprintf(pidfile, sizeof(pidfile), "%s/exec-%s.pid", state_dir_abs, id);
	snprintf(console_name, sizeof(console_name), "exec-%s.console", id);
	const char *args_[] = {"exec", "--detach", "--pid-file", pidfile, "--process", process,
			       NULL, NULL, NULL, NULL};
	int n = 6;
	if (tty) {
		console_lfd = listen_unix(console_name);
		console_arg(console_name, console, sizeof(console));
		args_[n++] = "--console-socket";
		args_[n++] = console;
	}
	args_[n++] = opt.id;
	if ((tty && console_lfd < 0) || pipe2(errp, O_CLOEXEC) < 0 ||
	    (!tty && pipe2(out, O_CLOEXEC) < 0) || (want_stdin && !tty && pipe2(in, O_CLOEXEC) < 0)) {
		snprintf(err, sizeof(err), "exec %s: %s", id, strerror(errno));
		goto fail;
	}
	int rc = run_runtime(args_, in[0], tty ? -1 : out[1], errp[1], NULL, 0);
	pid_t pid = rc == 0 ? read_pid_file(pidfile) : -1;
	if (pid > 0 && tty && (master = receive_console(console_lfd)) < 0) {
		snprintf(err, sizeof(err), "no terminal received on the console socket");
		kill(pid, SIGKILL);
		pid = -1;
	}
	if (pid <= 0) {
		if (!err[0]) {
			close(errp[1]);
			errp[1] = -1;
			drain_text(errp[0], err, sizeof(err));
		}
		if (!err[0])
			snprintf(err, sizeof(err), "exited with %d", rc);
		goto fail;
	}
	struct proc *p = calloc(1, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->pid = pid;
	p->stdin_fd = p->pty_fd = -1;
	if (tty) {
		set_nonblock(master);
		p->pty_fd = p->stdin_fd = master;
		stream_init(&p->out, master, 1);
		stream_init(&p->err, -1, 2);
		close(errp[0]);
	} else {
		set_nonblock(out[0]);
		set_nonblock(errp[0]);
		stream_init(&p->out, out[0], 1);
		stream_init(&p->err, errp[0], 2);
		if (in[1] >= 0) {
			set_nonblock(in[1]);
			p->stdin_fd = in[1];
		}
	}
	for (int *fd = (int[]){out[1], errp[1], in[0], console_lfd, -2}; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	if (tty)
		unlink(console_name);
	char logpath[PATH_MAX];
	snprintf(logpath, sizeof(logpath), "exec-%s.log", id);
	log_open(&p->log, logpath, opt.log_max_size, 1);
	p->has_log = 1;
	execs[slot] = p;
	char extra[256];
	snprintf(extra, sizeof(extra), "\"exec_id\":\"%s\",\"pid\":%d", id, pid);
	emit_event("exec-start", extra);
	reply(c, "ok %d", pid);
	if (attach) {
		c->mode = C_ATTACH;
		c->target = p;
	}
	reap();
	return;
fail:
	for (int *fd = (int[]){out[0], out[1], errp[0], errp[1], in[0], in[1], console_lfd, -2};
	     *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	if (tty)
		unlink(console_name);
	error_reply(c, "Unknown", "runtime exec failed", err);
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
	struct buf b = {0};
	exit_json(&b, &init_proc);
	char extra[64];
	snprintf(extra, sizeof(extra), "\"exit_status\":%d", init_proc.status);
	emit_event("delete", extra);
	reply(c, "ok %s", b.p);
	buf_free(&b);
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
	struct buf b = {0};
	exit_json(&b, &init_proc);
	reply(c, "ok %s", b.p);
	buf_free(&b);
	quit = 1;
}

static void handle_command(struct client *c, char *line)
{
	char err[4096];
	char *cmd = strtok(line, " ");
	char *rest = cmd ? strtok(NULL, "") : NULL;
	if (!cmd) {
		reply(c, "err InvalidArgument empty request");
	} else if (strcmp(cmd, "state") == 0) {
		struct buf b = {0};
		state_json(&b);
		reply(c, "ok %s", b.p);
		buf_free(&b);
	} else if (strcmp(cmd, "start") == 0) {
		if (status != ST_CREATED) {
			reply(c, "err FailedPrecondition container %s is %s, not created", opt.id,
			      status_names[status]);
			return;
		}
		const char *args[] = {"start", opt.id, NULL};
		if (run_runtime(args, -1, -1, -1, err, sizeof(err)) != 0) {
			error_reply(c, "Unknown", "runtime start failed", err);
			return;
		}
		if (status == ST_CREATED)
			status = ST_RUNNING;
		emit_event("start", NULL);
		reply(c, "ok");
	} else if (strcmp(cmd, "kill") == 0) {
		char *sig = rest ? strtok(rest, " ") : NULL;
		char *all = sig ? strtok(NULL, " ") : NULL;
		int signo = sig ? atoi(sig) : 0;
		if (signo <= 0 || signo >= 65) {
			reply(c, "err InvalidArgument kill: bad signal number");
		} else if (!is_live()) {
			reply(c, "err FailedPrecondition container %s is not running", opt.id);
		} else if (all && strcmp(all, "all") == 0) {
			const char *args[] = {"kill", "--all", opt.id, sig, NULL};
			if (run_runtime(args, -1, -1, -1, err, sizeof(err)) != 0)
				error_reply(c, "Unknown", "runtime kill failed", err);
			else
				reply(c, "ok");
		} else if (kill(init_proc.pid, signo) < 0) {
			reply(c, "err Unknown kill %d: %s", init_proc.pid, strerror(errno));
		} else {
			reply(c, "ok");
		}
	} else if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0) {
		int pausing = cmd[0] == 'p';
		if (status != (pausing ? ST_RUNNING : ST_PAUSED) || !is_live()) {
			reply(c, "err FailedPrecondition container %s is %s", opt.id,
			      status_names[status]);
			return;
		}
		const char *args[] = {cmd, opt.id, NULL};
		if (run_runtime(args, -1, -1, -1, err, sizeof(err)) != 0) {
			error_reply(c, "Unknown", pausing ? "runtime pause failed" :
				    "runtime resume failed", err);
			return;
		}
		status = pausing ? ST_PAUSED : ST_RUNNING;
		emit_event(pausing ? "pause" : "resume", NULL);
		reply(c, "ok");
	} else if (strcmp(cmd, "wait") == 0) {
		if (init_proc.finalized) {
			struct buf b = {0};
			exit_json(&b, &init_proc);
			reply(c, "ok %s", b.p);
			buf_free(&b);
		} else {
			c->mode = C_WAIT;
		}
	} else if (strcmp(cmd, "wait-exec") == 0) {
		struct proc *p = rest ? find_exec(rest) : NULL;
		if (!p) {
			reply(c, "err NotFound exec %s: not found", rest ? rest : "");
		} else if (p->finalized) {
			struct buf b = {0};
			exit_json(&b, p);
			reply(c, "ok %s", b.p);
			buf_free(&b);
			free_exec(p);
		} else {
			snprintf(c->exec_id, sizeof(c->exec_id), "%s", p->id);
			c->mode = C_WAIT_EXEC;
		}
	} else if (strcmp(cmd, "resize") == 0) {
		struct winsize ws = {0};
		char *w = rest ? strtok(rest, " ") : NULL;
		char *h = w ? strtok(NULL, " ") : NULL;
		char *exec_id = h ? strtok(NULL, " ") : NULL;
		struct proc *p = exec_id ? find_exec(exec_id) : &init_proc;
		if (!w || !h || atoi(w) <= 0 || atoi(h) <= 0) {
			reply(c, "err InvalidArgument usage: resize COLUMNS ROWS [EXEC_ID]");
		} else if (!p) {
			reply(c, "err NotFound exec %s: not found", exec_id);
		} else if (p->pty_fd < 0) {
			reply(c, "err FailedPrecondition %s %s has no terminal",
			      exec_id ? "exec" : "container", exec_id ? exec_id : opt.id);
		} else {
			ws.ws_col = atoi(w);
			ws.ws_row = atoi(h);
			if (ioctl(p->pty_fd, TIOCSWINSZ, &ws) < 0)
				reply(c, "err Unknown resize: %s", strerror(errno));
			else
				reply(c, "ok");
		}
	} else if (strcmp(cmd, "attach") == 0) {
		struct proc *p = rest ? find_exec(rest) : &init_proc;
		if (!p) {
			reply(c, "err NotFound exec %s: not found", rest);
			return;
		}
		if (p->exited) {
			reply(c, "err FailedPrecondition %s %s is not running",
			      rest ? "exec" : "container", rest ? rest : opt.id);
			return;
		}
		reply(c, "ok");
		c->mode = C_ATTACH;
		c->target = p;
	} else if (strcmp(cmd, "exec") == 0) {
		cmd_exec(c, rest ? rest : "");
	} else if (strcmp(cmd, "delete") == 0) {
		cmd_delete(c);
	} else if (strcmp(cmd, "collect") == 0) {
		cmd_collect(c);
	} else {
		reply(c, "err InvalidArgument unknown request %s", cmd);
	}
}

/* Attach input: frames with stream 0 are stdin; a zero-length frame closes stdin. */
static void attach_input(struct client *c)
{
	while (c->in.len >= 8) {
		unsigned char *h = (unsigned char *)c->in.p;
		size_t n = ((size_t)h[4] << 24) | (h[5] << 16) | (h[6] << 8) | h[7];
		if (c->in.len < 8 + n)
			return;
		if (h[0] == 0 && n == 0) {
			c->close_stdin = 1;
		} else if (h[0] == 0 && c->target && c->target->stdin_fd >= 0 && !c->close_stdin) {
			buf_add(&c->pending_stdin, c->in.p + 8, n);
		}
		buf_consume(&c->in, 8 + n);
	}
}

static void flush_stdin(struct client *c)
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

static void client_read(struct client *c)
{
	char data[4096];
	ssize_t r = read(c->fd, data, sizeof(data));
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		client_close(c);
		return;
	}
	buf_add(&c->in, data, r);
	if (c->mode == C_ATTACH) {
		attach_input(c);
		flush_stdin(c);
		return;
	}
	char *nl;
	while (c->mode == C_CMD && !quit && (nl = memchr(c->in.p, '\n', c->in.len))) {
		size_t n = nl - c->in.p;
		char line[4096];
		if (n >= sizeof(line)) {
			reply(c, "err InvalidArgument request too long");
			c->close_after_flush = 1;
			c->in.len = 0;
			return;
		}
		memcpy(line, c->in.p, n);
		line[n] = 0;
		buf_consume(&c->in, n + 1);
		handle_command(c, line);
		if (c->mode == C_ATTACH) {
			attach_input(c);
			flush_stdin(c);
		}
	}
	if (c->in.len > 8192) {
		reply(c, "err InvalidArgument request too long");
		c->close_after_flush = 1;
		c->in.len = 0;
	}
}

/* ---------------------------------------------------------------- setup */

static int listen_unix(const char *name)
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

/* Receive the pty master the runtime sends over the console socket (SCM_RIGHTS). */
static int receive_console(int lfd)
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

static void ready(const char *fmt, ...)
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

static void usage(void)
{
	fprintf(stderr, "usage: pyrunc-shim --id ID --state-dir DIR --bundle DIR --runtime BIN "
		"[--runtime-root DIR] [--log PATH] [--log-max-size BYTES] [--log-max-file N] "
		"[--terminal] [--stdin] [--events PATH] [--ready-fd FD]\n");
	exit(2);
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
		else usage();
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

/* Create the container; on failure report it and clean up what the runtime left. */
static void create_container(void)
{
	char err[4096] = "", pidfile[PATH_MAX + 32], console[PATH_MAX + 32];
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, in[2] = {-1, -1}, console_lfd = -1;
	snprintf(pidfile, sizeof(pidfile), "%s/init.pid", state_dir_abs);
	const char *args[12];
	int n = 0;
	args[n++] = "create";
	args[n++] = "--bundle";
	args[n++] = opt.bundle;
	args[n++] = "--pid-file";
	args[n++] = pidfile;
	if (opt.terminal) {
		console_lfd = listen_unix("console.sock");
		if (console_lfd < 0) {
			ready("err Unknown console socket: %s", strerror(errno));
			exit(1);
		}
		console_arg("console.sock", console, sizeof(console));
		args[n++] = "--console-socket";
		args[n++] = console;
	}
	args[n++] = opt.id;
	args[n] = NULL;

	int rc;
	if (opt.terminal) {
		rc = run_runtime(args, -1, -1, -1, err, sizeof(err));
	} else {
		if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
		    (opt.stdin_open && pipe2(in, O_CLOEXEC) < 0)) {
			ready("err Unknown pipe: %s", strerror(errno));
			exit(1);
		}
		rc = run_runtime(args, in[0], out[1], errp[1], NULL, 0);
		close(out[1]);
		close(errp[1]);
		if (in[0] >= 0)
			close(in[0]);
		if (rc != 0)
			drain_text(errp[0], err, sizeof(err));
	}
	pid_t pid = rc == 0 ? read_pid_file(pidfile) : -1;
	int master = -1;
	if (pid > 0 && opt.terminal) {
		master = receive_console(console_lfd);
		if (master < 0) {
			snprintf(err, sizeof(err), "no terminal received on the console socket");
			pid = -1;
		}
	}
	if (console_lfd >= 0) {
		close(console_lfd);
		unlink("console.sock");
	}
	if (pid <= 0) {
		char ignored[512];
		const char *del[] = {"delete", "--force", opt.id, NULL};
		run_runtime(del, -1, -1, -1, ignored, sizeof(ignored));
		kill_children();
		if (!err[0])
			snprintf(err, sizeof(err), "runtime create exited with %d", rc);
		ready("err Unknown runtime create failed: %s", err);
		unlink("shim.sock");
		unlink("shim.pid");
		exit(1);
	}
	snprintf(init_proc.id, sizeof(init_proc.id), "%s", opt.id);
	init_proc.is_init = 1;
	init_proc.pid = pid;
	if (opt.terminal) {
		set_nonblock(master);
		init_proc.pty_fd = init_proc.stdin_fd = master;
		stream_init(&init_proc.out, master, 1);
		stream_init(&init_proc.err, -1, 2);
	} else {
		set_nonblock(out[0]);
		set_nonblock(errp[0]);
		stream_init(&init_proc.out, out[0], 1);
		stream_init(&init_proc.err, errp[0], 2);
		if (in[1] >= 0) {
			set_nonblock(in[1]);
			init_proc.stdin_fd = in[1];
		}
	}
	oom_watch(pid);
	emit_event("create", NULL);
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
	daemonize();
	if (chdir(state_dir_abs) < 0)
		_exit(1);
	umask(022);
	int nul = open("/dev/null", O_RDWR);
	int diag = open("shim.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(diag >= 0 ? diag : nul, 2);
	if (nul > 2)
		close(nul);
	if (diag > 2)
		close(diag);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

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

	enum { K_LISTEN, K_SIGNAL, K_OOM, K_STREAM, K_CLIENT, K_STDIN };
	struct pollfd pfd[4 + 2 + 2 * MAX_EXECS + 2 * MAX_CLIENTS];
	int kind[sizeof(pfd) / sizeof(pfd[0])];
	void *what[sizeof(pfd) / sizeof(pfd[0])];
	while (!quit) {
		int timeout = check_exits();
		int n = 0;
#define ADD(fd_, ev_, k_, w_) (pfd[n].fd = (fd_), pfd[n].events = (ev_), pfd[n].revents = 0, \
			       kind[n] = (k_), what[n] = (w_), n++)
		ADD(lfd, POLLIN, K_LISTEN, NULL);
		ADD(sfd, POLLIN, K_SIGNAL, NULL);
		if (oom_poll_fd >= 0 && !init_proc.exited)   /* a removed cgroup polls forever */
			ADD(oom_poll_fd, oom_poll_events, K_OOM, NULL);
		struct proc *procs[MAX_EXECS + 1];
		int np = 0;
		procs[np++] = &init_proc;
		for (int i = 0; i < MAX_EXECS; i++)
			if (execs[i])
				procs[np++] = execs[i];
		for (int i = 0; i < np; i++) {
			if (procs[i]->out.fd >= 0)
				ADD(procs[i]->out.fd, POLLIN, K_STREAM, &procs[i]->out);
			if (procs[i]->err.fd >= 0)
				ADD(procs[i]->err.fd, POLLIN, K_STREAM, &procs[i]->err);
		}
		int pty_pending = 0;
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = clients[i];
			if (!c)
				continue;
			if (c->close_after_flush && !c->out.len) {
				client_close(c);
				continue;
			}
			short ev = c->out.len ? POLLOUT : 0;
			if (!c->pending_stdin.len)
				ev |= POLLIN;
			ADD(c->fd, ev, K_CLIENT, c);
			struct proc *t = c->target;
			if (c->pending_stdin.len && t && t->stdin_fd >= 0 && t->stdin_fd != t->pty_fd)
				ADD(t->stdin_fd, POLLOUT, K_STDIN, NULL);
			else if (c->pending_stdin.len)
				pty_pending = 1;
		}
		if (pty_pending)   /* a pty master also carries output: retry its input soon */
			timeout = timeout < 0 || timeout > 20 ? 20 : timeout;
#undef ADD
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			switch (kind[i]) {
			case K_LISTEN: {
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
				break;
			}
			case K_SIGNAL: {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) > 0)
					;
				reap();
				break;
			}
			case K_OOM: {
				uint64_t v;
				if (oom_poll_fd != oom_ctl_fd && read(oom_poll_fd, &v, sizeof(v)) < 0)
					break;
				oom_check();   /* re-reading memory.events also re-arms its poll */
				break;
			}
			case K_STREAM: {
				struct stream *s = what[i];
				struct proc *p = &init_proc;
				for (int k = 0; k < MAX_EXECS; k++)
					if (execs[k] && (&execs[k]->out == s || &execs[k]->err == s))
						p = execs[k];
				if (s->fd >= 0)
					stream_read(p, s);
				break;
			}
			case K_CLIENT: {
				struct client *c = what[i];
				int still = 0;
				for (int k = 0; k < MAX_CLIENTS; k++)
					still |= clients[k] == c;
				if (!still)
					break;
				if (pfd[i].revents & POLLOUT)
					client_flush(c);
				if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
					client_read(c);
				break;
			}
			case K_STDIN:
				for (int k = 0; k < MAX_CLIENTS; k++)
					if (clients[k])
						flush_stdin(clients[k]);
				break;
			}
		}
		if (pty_pending)
			for (int k = 0; k < MAX_CLIENTS; k++)
				if (clients[k])
					flush_stdin(clients[k]);
	}
	/* Deliver the last replies before going away. */
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (!clients[i])
			continue;
		fcntl(clients[i]->fd, F_SETFL, 0);
		struct timeval tv = {.tv_sec = 1};
		setsockopt(clients[i]->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		client_flush(clients[i]);
		client_close(clients[i]);
	}
	unlink("shim.sock");
	unlink("shim.pid");
	return 0;
}
