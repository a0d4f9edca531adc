"""cffi (API mode) binding ``pyrunc._cgroups``: bpf(2) for cgroup v2 device programs."""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
ffibuilder.cdef("""
    int pyrunc_bpf_load_device_program(const void *insns, unsigned int count,
                                       char *log, unsigned int log_size);
    int pyrunc_bpf_attach_device_program(int prog_fd, int cgroup_fd, unsigned int flags);
    int pyrunc_bpf_detach_device_program(int prog_fd, int cgroup_fd);
    int pyrunc_bpf_query_device_programs(int cgroup_fd, unsigned int *ids, unsigned int *count);
    int pyrunc_bpf_program_fd(unsigned int id);
    #define BPF_F_ALLOW_MULTI ...
""")
ffibuilder.set_source(
    "pyrunc._cgroups",
    '#include <linux/bpf.h>\n#include "cgroups/bpf_device.c"\n',
    include_dirs=[HERE],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
