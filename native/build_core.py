"""cffi builder of ``pyrunc._core``, the native core that executes a Plan in the child.

``native/core/core_api.h`` is the single definition of the structures and message types: it
is both the cdef here and the header the C sources include.
"""
import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join(HERE, "core")

ffibuilder = FFI()
with open(os.path.join(CORE, "core_api.h")) as f:
    ffibuilder.cdef(f.read())

ffibuilder.set_source(
    "pyrunc._core",
    '#include "core.h"\n',
    sources=sorted(os.path.relpath(p, os.path.dirname(HERE))
                   for p in glob.glob(os.path.join(CORE, "*.c"))),
    include_dirs=[CORE],
    extra_compile_args=["-O2", "-Wall", "-Wno-unused-function"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
