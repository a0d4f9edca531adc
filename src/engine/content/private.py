"""Directories of the store that only root may enter.

A layer may hold a setuid-root program or a device node; the store keeps them, unpacked, in
its snapshots. Were any directory on the way to them open to other users, anyone on the
host could run that program or open that device through the store, so every directory the
store makes is 0700 (docker keeps its trees 0700 or 0710), and opening an existing store
closes the directories an older version left open.
"""
import os
import stat

MODE = 0o700


def private_dir(path: str) -> str:
    """Make ``path`` (and missing parents) if needed, and make sure it is 0700; returns it."""
    os.makedirs(path, MODE, exist_ok=True)
    st = os.stat(path)
    if stat.S_IMODE(st.st_mode) != MODE:
        os.chmod(path, MODE)
    return path
