/* The event log: one json line per event, appended to the --events file in one write.
 *
 * Bounded as pyrunc.containerd.tasks.events describes: an append holds PATH.lock shared; the
 * writer that leaves the file past EVENT_LOG_MAX bytes takes the lock exclusively and, if the
 * file is still past it, renames it to PATH.1 and starts PATH with
 * {"type":"continued","base":N}, N being the log's offset where the new file continues. */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define EVENT_LOG_MAX (1 << 20)

static const char continued[] = "{\"type\":\"continued\",\"base\":";

static int lock_file(int fd, int how)
{
	int r;
	do
		r = flock(fd, how);
	while (r < 0 && errno == EINTR);
	return r;
}

/* The offset where the file open at fd continues the log (0 for the first file). */
static unsigned long long log_base(int fd)
{
	char head[65];
	ssize_t n = pread(fd, head, sizeof(head) - 1, 0);
	if (n <= 0)
		return 0;
	head[n] = 0;
	if (strncmp(head, continued, sizeof(continued) - 1) != 0 || !strchr(head, '\n'))
		return 0;
	return strtoull(head + sizeof(continued) - 1, NULL, 10);
}

/* With the lock held exclusively: start a new file if the current one is still too large. */
static void rotate(const char *path)
{
	char old[PATH_MAX + 8], line[80];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || st.st_size <= EVENT_LOG_MAX) {
		close(fd);
		return;
	}
	unsigned long long base = log_base(fd) + (unsigned long long)st.st_size;
	close(fd);
	snprintf(old, sizeof(old), "%s.1", path);
	if (rename(path, old) != 0)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	int len = snprintf(line, sizeof(line), "%s%llu}\n", continued, base);
	write_all(fd, line, (size_t)len);
	close(fd);
}

void emit_event(const char *type, const char *extra)
{
	if (!opt.events)
		return;
	char when[64], lockpath[PATH_MAX + 8];
	rfc3339nano_now(when, sizeof(when));
	struct buf b = {0};
	buf_add(&b, "{\"time\":\"", 9);
	buf_add(&b, when, strlen(when));
	buf_add(&b, "\",\"id\":\"", 8);
	json_escape(&b, (const unsigned char *)opt.id, strlen(opt.id));
	buf_addf(&b, "\",\"type\":\"%s\"%s%s}\n", type, extra ? "," : "", extra ? extra : "");
	snprintf(lockpath, sizeof(lockpath), "%s.lock", opt.events);
	int lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock >= 0)
		lock_file(lock, LOCK_SH);
	int full = 0;
	int fd = open(opt.events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd >= 0) {
		struct stat st;
		write_all(fd, b.p, b.len);
		full = fstat(fd, &st) == 0 && st.st_size > EVENT_LOG_MAX;
		close(fd);
	}
	if (lock >= 0) {
		if (full && lock_file(lock, LOCK_EX) == 0)
			rotate(opt.events);
		close(lock);
	}
	buf_free(&b);
}
