/* Hooks run by the init (createContainer, startContainer): fork, exec with the state on stdin,
 * wait with the hook's timeout. */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_hook(const char *stage, int index, const struct core_hook *h)
{
    int pipefd[2];

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        core_fail(errno, "%s hook %d %s: pipe", stage, index, h->path);
    pid_t pid = core_clone(0, NULL);
    if (pid < 0)
        core_fail(errno, "%s hook %d %s: fork", stage, index, h->path);
    if (pid == 0) {
        /* dup2 clears close-on-exec on the copy; the init's setup umask (0) is not the
         * hook's business. */
        if (dup2(pipefd[0], 0) < 0)
            _exit(127);
        umask(022);
        static char *empty[] = {NULL};
        execve(h->path, h->argv ? h->argv : empty, h->envp ? h->envp : empty);
        _exit(127);
    }
    close(pipefd[0]);
    const char *p = core_state;
    int left = core_state_len;
    signal(SIGPIPE, SIG_IGN);
    while (left > 0) {
        ssize_t n = write(pipefd[1], p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;  /* the hook does not read its stdin: not an error */
        p += n;
        left -= n;
    }
    close(pipefd[1]);
    signal(SIGPIPE, SIG_DFL);

    int status;
    if (h->timeout > 0) {
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
            core_fail(errno, "%s hook %d %s: pidfd_open", stage, index, h->path);
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        int r;
        do
            r = poll(&pfd, 1, h->timeout * 1000);
        while (r < 0 && errno == EINTR);
        close(pidfd);
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            char detail[64];
            core_fmt(detail, sizeof(detail), "timed out after %ds", h->timeout);
            core_fail_detail(detail, "%s hook %d %s", stage, index, h->path);
        }
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            core_fail(errno, "%s hook %d %s: wait", stage, index, h->path);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    char detail[64];
    if (WIFEXITED(status))
        core_fmt(detail, sizeof(detail), "exited with status %d", WEXITSTATUS(status));
    else
        core_fmt(detail, sizeof(detail), "killed by signal %d", WTERMSIG(status));
    core_fail_detail(detail, "%s hook %d %s", stage, index, h->path);
}

void core_run_hooks(const char *stage, const struct core_hook *hooks, int n)
{
    for (int i = 0; i < n; i++)
        run_hook(stage, i, &hooks[i]);
}
