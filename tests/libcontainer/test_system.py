"""pyrunc.libcontainer.system: settings of the calling process, checked by their effect."""
import subprocess
import sys

ORPHAN = r"""
import os, sys, time
from pyrunc.libcontainer.system import set_child_subreaper
if sys.argv[1] == "set":
    set_child_subreaper()
r, w = os.pipe()
child = os.fork()
if child == 0:
    me = os.getpid()                 # in the child, fork returned 0, not this pid
    if os.fork() == 0:
        while os.getppid() == me:      # until its parent has exited
            time.sleep(0.01)
        os.write(w, b"%d" % os.getppid())
        os._exit(0)
    os._exit(0)
os.close(w)
os.waitpid(child, 0)
adopter = int(os.read(r, 32))
print("adopted" if adopter == os.getpid() else "not adopted")
"""


def _orphan(mode):
    return subprocess.run([sys.executable, "-c", ORPHAN, mode], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def test_child_subreaper_adopts_orphans():
    """The kernel reparents an orphaned grandchild to a subreaper, and only to one."""
    assert _orphan("unset") == "not adopted"
    assert _orphan("set") == "adopted"
