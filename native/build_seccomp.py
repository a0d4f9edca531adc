"""cffi (API mode) binding ``pyrunc._seccomp``: libseccomp, to compile linux.seccomp into BPF."""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
ffibuilder.cdef("""
    typedef void *scmp_filter_ctx;
    typedef uint64_t scmp_datum_t;
    enum scmp_compare { SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE,
                        SCMP_CMP_GT, SCMP_CMP_MASKED_EQ, ... };
    enum scmp_filter_attr { SCMP_FLTATR_CTL_NNP, ... };
    struct scmp_arg_cmp {
        unsigned int arg;
        enum scmp_compare op;
        scmp_datum_t datum_a;
        scmp_datum_t datum_b;
    };
    struct scmp_version { unsigned int major; unsigned int minor; unsigned int micro; };

    #define SCMP_ACT_KILL_PROCESS ...
    #define SCMP_ACT_KILL_THREAD ...
    #define SCMP_ACT_TRAP ...
    #define SCMP_ACT_NOTIFY ...
    #define SCMP_ACT_LOG ...
    #define SCMP_ACT_ALLOW ...
    #define __NR_SCMP_ERROR ...
    #define SCMP_ARCH_X86_64 ...
    #define SCMP_ARCH_X32 ...
    #define SCMP_ARCH_S390 ...
    #define SCMP_ARCH_S390X ...

    #define SECCOMP_FILTER_FLAG_TSYNC ...
    #define SECCOMP_FILTER_FLAG_LOG ...
    #define SECCOMP_FILTER_FLAG_SPEC_ALLOW ...
    #define SECCOMP_FILTER_FLAG_NEW_LISTENER ...
    #define SECCOMP_FILTER_FLAG_TSYNC_ESRCH ...
    #define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ...
    #define SECCOMP_IOCTL_NOTIF_RECV ...
    #define SECCOMP_IOCTL_NOTIF_SEND ...
    #define SECCOMP_USER_NOTIF_FLAG_CONTINUE ...

    scmp_filter_ctx seccomp_init(uint32_t def_action);
    void seccomp_release(scmp_filter_ctx ctx);
    int seccomp_attr_set(scmp_filter_ctx ctx, enum scmp_filter_attr attr, uint32_t value);
    uint32_t seccomp_arch_resolve_name(const char *arch_name);
    uint32_t seccomp_arch_native(void);
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token);
    int seccomp_syscall_resolve_name(const char *name);
    int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name);
    char *seccomp_syscall_resolve_num_arch(uint32_t arch_token, int num);
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                               unsigned int arg_cnt, const struct scmp_arg_cmp *arg_array);
    const struct scmp_version *seccomp_version(void);
    unsigned int seccomp_api_get(void);

    uint32_t pyrunc_scmp_act_errno(uint16_t errno_ret);
    uint32_t pyrunc_scmp_act_trace(uint16_t msg);
    long pyrunc_seccomp_export(scmp_filter_ctx ctx, unsigned char **out);
    int pyrunc_seccomp_load(const void *insns, unsigned int count, unsigned int flags);
    int pyrunc_seccomp_flag_supported(unsigned int flag);
    void free(void *ptr);
""")
ffibuilder.set_source(
    "pyrunc._seccomp",
    '#include "seccomp/filter.c"\n',
    include_dirs=[HERE],
    libraries=["seccomp"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
