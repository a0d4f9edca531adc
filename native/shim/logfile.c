/* The json-file log: whole lines appended, rotated like Docker's json-file driver. */
#include "shim.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

void log_open(struct logfile *l, const char *path, long long max_size, int max_file)
{
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->max_size = max_size;
	l->max_file = max_file < 1 ? 1 : max_file;
	l->dropped = 0;
	l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	struct stat st;
	l->size = (l->fd >= 0 && fstat(l->fd, &st) == 0) ? st.st_size : 0;
}

/* PATH becomes PATH.1, PATH.1 becomes PATH.2, ... up to max_file - 1; max_file 1 truncates. */
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

void log_write(struct logfile *l, const char *data, size_t n)
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
