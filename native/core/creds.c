/* Process credentials: rlimits, groups, uid/gid and the five capability sets. */
#include "core.h"

#include <errno.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

struct sched_attr_v1 {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
};

void core_set_scheduling(void)
{
    const struct core_config *c = core_cfg;
    if (c->has_scheduler) {
        struct sched_attr_v1 attr = {
            .size = sizeof(attr), .sched_policy = c->sched_policy,
            .sched_flags = c->sched_flags, .sched_nice = c->sched_nice,
            .sched_priority = c->sched_priority, .sched_runtime = c->sched_runtime,
            .sched_deadline = c->sched_deadline, .sched_period = c->sched_period};
        if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0)
            core_fail(errno, "set scheduler policy %u", c->sched_policy);
    }
    if (c->has_io_priority && syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0,
                                      c->io_priority) < 0)
        core_fail(errno, "set I/O priority %#x", c->io_priority);
}

void core_set_rlimits(void)
{
    const struct core_config *c = core_cfg;
    for (int i = 0; i < c->n_rlimits; i++) {
        struct rlimit rl = {.rlim_cur = c->rlimits[i].soft, .rlim_max = c->rlimits[i].hard};
        if (setrlimit(c->rlimits[i].resource, &rl) < 0)
            core_fail(errno, "set rlimit %d", c->rlimits[i].resource);
    }
}

static void apply_caps(void)
{
    const struct core_config *c = core_cfg;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];

    for (int i = 0; i < 2; i++) {
        data[i].effective = (uint32_t)(c->cap_effective >> (32 * i));
        data[i].permitted = (uint32_t)(c->cap_permitted >> (32 * i));
        data[i].inheritable = (uint32_t)(c->cap_inheritable >> (32 * i));
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        core_fail(errno, "set capabilities");
    /* Like runc, an ambient capability the other sets do not allow is skipped. */
    for (int cap = 0; cap <= c->cap_last && cap < 64; cap++) {
        if (c->cap_ambient & (1ULL << cap))
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
    }
}

void core_set_user_and_caps(void)
{
    const struct core_config *c = core_cfg;

    if (c->has_caps) {
        for (int cap = 0; cap <= c->cap_last && cap < 64; cap++) {
            if (!(c->cap_bounding & (1ULL << cap)) &&
                prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                core_fail(errno, "drop capability %d from the bounding set", cap);
        }
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
            core_fail(errno, "set keepcaps");
    }
    if (c->set_groups && core_setgroups(c->n_gids, (const gid_t *)c->gids) < 0)
        core_fail(errno, "setgroups");
    if (core_setresgid(c->gid) < 0)
        core_fail(errno, "setgid %u", c->gid);
    if (core_setresuid(c->uid) < 0)
        core_fail(errno, "setuid %u", c->uid);
    if (c->has_caps) {
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
            core_fail(errno, "clear keepcaps");
        apply_caps();
    }
}
