/* bpf(2) for cgroup v2 device programs: load, attach, query, detach.
 * Every function returns a file descriptor or 0 on success, -errno on failure. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

static int bpf_call(int cmd, union bpf_attr *attr)
{
    long r = syscall(__NR_bpf, cmd, attr, sizeof(*attr));
    return r < 0 ? -errno : (int)r;
}

int pyrunc_bpf_load_device_program(const void *insns, unsigned int count,
                                   char *log, unsigned int log_size)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (unsigned long)insns;
    attr.insn_cnt = count;
    attr.license = (unsigned long)"Apache";
    if (log && log_size) {
        log[0] = 0;
        attr.log_buf = (unsigned long)log;
        attr.log_size = log_size;
        attr.log_level = 1;
    }
    attr.prog_flags = 0;
    return bpf_call(BPF_PROG_LOAD, &attr);
}

int pyrunc_bpf_attach_device_program(int prog_fd, int cgroup_fd, unsigned int flags)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = cgroup_fd;
    attr.attach_bpf_fd = prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = flags;
    return bpf_call(BPF_PROG_ATTACH, &attr);
}

int pyrunc_bpf_detach_device_program(int prog_fd, int cgroup_fd)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.target_fd = cgroup_fd;
    attr.attach_bpf_fd = prog_fd;
    attr.attach_type = BPF_CGROUP_DEVICE;
    return bpf_call(BPF_PROG_DETACH, &attr);
}

/* ids of the device programs attached to the cgroup itself; *count in: room, out: found */
int pyrunc_bpf_query_device_programs(int cgroup_fd, unsigned int *ids, unsigned int *count)
{
    union bpf_attr attr;
    int r;
    memset(&attr, 0, sizeof(attr));
    attr.query.target_fd = cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = (unsigned long)ids;
    attr.query.prog_cnt = *count;
    r = bpf_call(BPF_PROG_QUERY, &attr);
    *count = attr.query.prog_cnt;
    return r;
}

int pyrunc_bpf_program_fd(unsigned int id)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_id = id;
    return bpf_call(BPF_PROG_GET_FD_BY_ID, &attr);
}
