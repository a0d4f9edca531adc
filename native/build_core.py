"""cffi builder of ``pyrunc._core``, the native core that executes a Plan in the child.

``native/core/core_api.h`` is the single definition of the structures and message types: it
is both the cdef here and the header the C sources include.
"""
import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join(HERE, "core")

# The kernel's mount(2), umount2(2) and mount_setattr(2) flags, their values taken from
# <sys/mount.h> at build time (pyrunc.libcontainer.mountflags is their one table in Python).
MOUNT_FLAGS = ["MS_RDONLY", "MS_NOSUID", "MS_NODEV", "MS_NOEXEC", "MS_SYNCHRONOUS",
               "MS_REMOUNT", "MS_MANDLOCK", "MS_DIRSYNC", "MS_NOSYMFOLLOW", "MS_NOATIME",
               "MS_NODIRATIME", "MS_BIND", "MS_MOVE", "MS_REC", "MS_SILENT", "MS_POSIXACL",
               "MS_UNBINDABLE", "MS_PRIVATE", "MS_SLAVE", "MS_SHARED", "MS_RELATIME",
               "MS_I_VERSION", "MS_STRICTATIME", "MS_LAZYTIME",
               "MOUNT_ATTR_RDONLY", "MOUNT_ATTR_NOSUID", "MOUNT_ATTR_NODEV", "MOUNT_ATTR_NOEXEC",
               "MOUNT_ATTR__ATIME", "MOUNT_ATTR_RELATIME", "MOUNT_ATTR_NOATIME",
               "MOUNT_ATTR_STRICTATIME", "MOUNT_ATTR_NODIRATIME", "MOUNT_ATTR_NOSYMFOLLOW",
               "MNT_FORCE", "MNT_DETACH"]

# The parent's namespace calls (host.c): unshare(2) and setns(2) of the calling thread, 0 or
# -errno; CLONE_NEWNET from <sched.h>.
HOST_NS_CALLS = "int core_unshare(int flags);\nint core_setns(int fd, int nstype);\n"

ffibuilder = FFI()
with open(os.path.join(CORE, "core_api.h")) as f:
    ffibuilder.cdef(f.read())
ffibuilder.cdef("".join("#define %s ...\n" % name for name in MOUNT_FLAGS))
ffibuilder.cdef(HOST_NS_CALLS + "#define CLONE_NEWNET ...\n")

ffibuilder.set_source(
    "pyrunc._core",
    '#include "core.h"\n#include <sched.h>\n#include <sys/mount.h>\n' + HOST_NS_CALLS,
    sources=sorted(os.path.relpath(p, os.path.dirname(HERE))
                   for p in glob.glob(os.path.join(CORE, "*.c"))),
    include_dirs=[CORE],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
