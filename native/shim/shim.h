/* Internal declarations of pyrunc-shim, the per-container monitor.
 *
 * The program is native/programs/pyrunc-shim.c (options, detaching, main) plus the modules
 * here, one concern each:
 *
 *   util.c      growable buffers, whole writes, atomic small files, RFC 3339 times
 *   json.c      JSON string escaping (invalid UTF-8 becomes U+FFFD)
 *   logfile.c   the json-file log: appending whole lines, rotation
 *   request.c   the wire protocol's request side: splitting lines, parsing requests
 *   events.c    the event log (json lines appended to --events)
 *   oom.c       OOM kill watch on the init's memory cgroup (v1 eventfd, v2 memory.events)
 *   runtime.c   running "<runtime> ...", pid files, unix sockets, the console socket
 *   proc.c      the container's processes: output streams, exits, exit records
 *   client.c    connections on shim.sock: replies, attach frames, reading requests
 *   commands.c  one handler per request
 *   exec.c      the exec request ("<runtime> exec --detach")
 *   create.c    the container's create at start-up
 *   loop.c      the poll loop
 *
 * util.c, json.c, logfile.c and request.c use no global state, so tests build them alone.
 * The wire protocol on shim.sock is described in one place: docs/containerd.md, section
 * "The shim protocol".
 */
#ifndef PYRUNC_SHIM_H
#define PYRUNC_SHIM_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define MAX_CLIENTS 64
#define MAX_EXECS 32
#define LINE_CAP 16384          /* longest log line before it is split (docker: 16K) */
#define READ_CAP 65536
#define CLIENT_OUT_LIMIT (1 << 20)   /* output queued for one client */
#define ATTACH_FRAME_MAX (1 << 20)   /* longest attach frame payload a client may announce */
#define DRAIN_GRACE_MS 2000     /* after the init exits, wait this long for its output */

/* ---------------------------------------------------------------- util.c */

struct buf { char *p; size_t len, cap; };

void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t n);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n);
void buf_free(struct buf *b);

long long now_ms(void);
/* RFC 3339 with nanoseconds, trailing zeros trimmed, UTC (Go's time.RFC3339Nano). */
void rfc3339nano(const struct timespec *ts, char *out, size_t size);
void rfc3339nano_now(char *out, size_t size);
int write_all(int fd, const void *data, size_t n);
/* Write a small file atomically (tmp + rename). */
void write_file(const char *path, const char *text);
void set_nonblock(int fd);
/* Trailing white space removed, newlines turned into spaces. */
void one_line(char *s);

/* ---------------------------------------------------------------- json.c */

/* Append the body of a JSON string (no quotes): escapes, invalid UTF-8 as U+FFFD. */
void json_escape(struct buf *b, const unsigned char *s, size_t n);

/* ---------------------------------------------------------------- logfile.c */

struct logfile {
	char path[PATH_MAX];
	int fd;
	off_t size;
	long long max_size;
	int max_file;
	unsigned long long dropped;    /* lines not written (disk full, open failure) */
};

void log_open(struct logfile *l, const char *path, long long max_size, int max_file);
/* Append one complete line; a short write (ENOSPC) is undone so the file stays whole lines. */
void log_write(struct logfile *l, const char *data, size_t n);

/* ---------------------------------------------------------------- request.c */

#define REQUEST_LINE_MAX 4096   /* a request line, its newline excluded, is shorter */
#define REQUEST_PENDING_MAX 8192 /* more unanswered input than this is refused */

enum request_kind {
	REQ_STATE, REQ_START, REQ_KILL, REQ_PAUSE, REQ_RESUME, REQ_WAIT, REQ_WAIT_EXEC,
	REQ_RESIZE, REQ_ATTACH, REQ_EXEC, REQ_DELETE, REQ_COLLECT,
};

struct request {
	enum request_kind kind;
	const char *name;       /* the request word */
	const char *arg;        /* wait-exec, attach, start: the rest of the line, NULL if none */
	const char *signal;     /* kill: the signal as sent (passed on to "runtime kill --all") */
	int signo, all;         /* kill */
	int cols, rows;         /* resize */
	const char *exec_id;    /* resize (NULL: the init), exec */
	const char *process;    /* exec: the process JSON path */
	int tty, want_stdin, attach;    /* exec options */
	const char *error;      /* after a failed parse: the InvalidArgument message ... */
	const char *error_word; /* ... and the word it names ("" if none) */
};

/* Take the next complete line out of in into line (NUL-terminated, the newline dropped).
 * 1: a line; 0: no complete line yet; -1: the line is REQUEST_LINE_MAX bytes or longer. */
int request_next_line(struct buf *in, char line[REQUEST_LINE_MAX]);
/* Parse a request line in place. 0, or -1 with r->error and r->error_word set. */
int request_parse(char *line, struct request *r);

/* ---------------------------------------------------------------- the program's state */

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

enum { C_CMD, C_WAIT, C_WAIT_EXEC, C_ATTACH };

struct client {
	int fd;
	int mode;
	char exec_id[128];
	struct proc *target;        /* C_ATTACH: the process whose stdio this client holds */
	struct buf in, out;
	size_t frame_left;          /* attach input: payload bytes of the current frame to come */
	struct buf pending_stdin;   /* attach input not yet accepted by the container */
	int close_stdin;            /* close stdin once pending_stdin is written */
	int close_after_flush;
};

enum { ST_CREATED, ST_RUNNING, ST_PAUSED, ST_STOPPED };

/* pyrunc-shim.c */
extern struct options {
	const char *id, *state_dir, *bundle, *runtime, *runtime_root, *log, *events;
	long long log_max_size;
	int log_max_file, terminal, stdin_open, ready_fd;
	/* --adopt RC,OUT,ERR,IN,CONSOLE: the create ran before (the warm path); its exit code and
	 * the descriptors it left: stdout and stderr read ends, stdin write end, console socket
	 * listener (-1 for none) */
	int adopt, adopt_rc, adopt_fds[4];
} opt;
extern char state_dir_abs[PATH_MAX];
/* Report "ok ..." or "err CATEGORY MESSAGE" on --ready-fd (closed after ok). */
void ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* events.c */
void emit_event(const char *type, const char *extra);

/* oom.c */
extern long oom_kills;
extern int oom_ctl_fd, oom_poll_fd;
extern short oom_poll_events;
void oom_watch(pid_t pid);
void oom_check(void);

/* runtime.c */
/* Run "<runtime> [--root R] ARGS..." with the given stdio (-1: /dev/null; stderr -1: a capture
 * file whose text is returned in err). Returns the exit code (or 128 + signal). */
int run_runtime(const char *const *args, int in, int out, int errfd, char *err, size_t errsize);
/* Text left in a pipe by a failed runtime command (the container's stderr pipe). */
void drain_text(int fd, char *out, size_t size);
pid_t read_pid_file(const char *path);
int listen_unix(const char *name);
/* Receive the pty master the runtime sends over the console socket (SCM_RIGHTS). */
int receive_console(int lfd);
/* The --console-socket argument for a socket bound as NAME in the state directory. Returns a
 * descriptor the runtime must inherit to reach it (its path longer than a socket address
 * allows), to be closed once the runtime has run; -1 when none is needed. */
int console_arg(const char *name, char *out, size_t size);

/* proc.c */
extern struct proc init_proc;
extern struct proc *execs[MAX_EXECS];
extern const char *const status_names[];
extern int status;
void stream_init(struct stream *s, int fd, int id);
void stream_read(struct proc *p, struct stream *s);
/* The process that owns stream s (the init unless an exec's). */
struct proc *stream_owner(struct stream *s);
void exit_json(struct buf *b, struct proc *p);
struct proc *find_exec(const char *id);
void free_exec(struct proc *p);
void finalize(struct proc *p);
void reap(void);
/* Finalize exited processes once their output is drained; the poll timeout until the next. */
int check_exits(void);

/* client.c */
extern struct client *clients[MAX_CLIENTS];
int client_live(const struct client *c);
void client_accept(int lfd);
void client_close(struct client *c);
void client_flush(struct client *c);
void reply(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error_reply(struct client *c, const char *category, const char *what, char *text);
void send_frame(struct client *c, int stream, const char *data, size_t n);
void flush_stdin(struct client *c);
void client_read(struct client *c);

/* commands.c */
extern int quit;
void handle_command(struct client *c, char *line);
int is_live(void);

/* exec.c */
void cmd_exec(struct client *c, const struct request *r);

/* create.c */
/* The runtime's create (or, with --adopt, what follows the create that already ran). */
void create_container(void);

/* loop.c */
void event_loop(int lfd, int sfd);
void deliver_last_replies(void);

#endif
