"""Directories of the store that only root may enter.

A layer may hold a setuid-root program or a device node; the store keeps them, unpacked, in
its snapshots. Were any directory on the way to them open to other users, anyone on the
host could run that program or open that device through the store, so every directory the
store makes is 0700 (docker keeps its trees 0700 or 0710), and opening an existing store
closes the directories an older version left open.
"""
import os
import stat

from pyrunc.errors import InvalidArgument

MODE = 0o700
# what the store itself makes at the top of its directories
_STORE_NAMES = {"content", "images", "snapshots", "blobs", "ingest", "leases", "gc.lock",
                "overlayfs", "native", "metadata.json", "metadata.json.tmp", "images.json",
                "images.json.tmp", "lock", "extracting", "lost+found"}


def private_dir(path: str) -> str:
    """Make ``path`` (and missing parents) if needed, and make sure it is 0700; returns it.
    A directory this user does not own, or a sticky one holding anything the store does not
    make (``/tmp``; a freshly mounted tmpfs is sticky too, but empty), is not the store's own:
    it is refused rather than closed to everyone else."""
    os.makedirs(path, MODE, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument("store directory %s: not a directory" % path)
    if st.st_uid != os.geteuid() or (st.st_mode & stat.S_ISVTX
                                     and not set(os.listdir(path)) <= _STORE_NAMES):
        raise InvalidArgument("store directory %s: a shared directory (%s): give the store "
                              "a directory of its own" % (
                                  path, "sticky" if st.st_mode & stat.S_ISVTX
                                  else "owned by uid %d" % st.st_uid))
    if stat.S_IMODE(st.st_mode) != MODE:
        os.chmod(path, MODE)
    return path
