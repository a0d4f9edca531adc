/* The event log: one json line per event, appended to the --events file in one write. */
#include "shim.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void emit_event(const char *type, const char *extra)
{
	if (!opt.events)
		return;
	char when[64];
	rfc3339nano_now(when, sizeof(when));
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
