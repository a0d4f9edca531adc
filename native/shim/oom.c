/* OOM kills of the container.
 *
 * cgroup v1: an eventfd registered on memory.oom_control through cgroup.event_control.
 * cgroup v2: memory.events itself, which polls POLLPRI when it changes.
 * Either way the count is the "oom_kill N" line of that file (v1 has it since Linux 4.13).
 */
#include "shim.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int oom_ctl_fd = -1;            /* the file with the oom_kill count */
int oom_poll_fd = -1;           /* v1: the eventfd; v2: memory.events */
short oom_poll_events;
long oom_kills;
static long oom_baseline;

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

/* "0::/path": the v2 directory, if it has memory.events (unified mount or pure v2). */
static void find_v2(const char *cg, char *v2, size_t size)
{
	const char *bases[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
	char path[PATH_MAX];
	for (int i = 0; i < 2 && !v2[0]; i++) {
		snprintf(path, sizeof(path), "%s%s/memory.events", bases[i], cg);
		if (access(path, R_OK) == 0)
			snprintf(v2, size, "%s%s", bases[i], cg);
	}
}

/* "N:ctrl,ctrl:/path": the v1 memory directory if memory is among the controllers. */
static void find_v1(char *ctrls, const char *cg, char *v1, size_t size)
{
	char *tok, *save;
	for (tok = strtok_r(ctrls, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (strcmp(tok, "memory") == 0)
			snprintf(v1, size, "/sys/fs/cgroup/memory%s", cg);
}

void oom_watch(pid_t pid)
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
		if (ctrl[1] == 0)
			find_v2(cg, v2, sizeof(v2));
		else
			find_v1(ctrl + 1, cg, v1, sizeof(v1));
	}
	fclose(f);
	if (v1[0])
		oom_watch_v1(v1);
	else if (v2[0])
		oom_watch_v2(v2);
	oom_baseline = oom_kill_count();
}

void oom_check(void)
{
	long count = oom_kill_count() - oom_baseline;
	if (count > oom_kills) {
		oom_kills = count;
		emit_event("oom", NULL);
	}
}
