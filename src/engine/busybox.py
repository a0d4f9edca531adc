"""A busybox-static root filesystem, and a bundle of it with the example config.

The rootfs is the engine's built-in ``busybox`` image (``images.builtin``), the demo's and the
tests' container: it needs nothing but Debian's ``busybox-static`` package, no registry and no
network. A bundle of it (``make_bundle``) takes the runtime's example config, the one
``pyrunc spec`` writes:

    python -m pyrunc.engine.busybox DIR [--terminal] [-- ARGS...]
"""
import os
import shutil

from pyrunc.errors import FailedPrecondition

BUSYBOX = "/bin/busybox"


def make_rootfs(rootfs: str) -> str:
    """Lay out a minimal rootfs: busybox-static with every applet linked, /etc basics."""
    if not os.path.exists(BUSYBOX):
        raise FailedPrecondition("%s: not found (install Debian's busybox-static)" % BUSYBOX)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
              "root", "var", "run"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    import subprocess
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, applet)
        if applet == "bin/busybox" or os.path.lexists(link):
            continue
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("/bin/busybox", link)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "etc/group": "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
        "etc/hostname": "busybox\n",
    }
    for name, text in files.items():
        with open(os.path.join(rootfs, name), "w") as f:
            f.write(text)
    return rootfs


def make_bundle(bundle: str, args: "tuple | list" = ("sh",), terminal: bool = False,
                spec: "dict | None" = None) -> dict:
    """Create ``bundle/rootfs`` (busybox) and ``bundle/config.json`` (``spec``, or the example
    config running ``args``); returns the spec."""
    # the runtime's example config, imported here: the built-in image needs only the rootfs
    from pyrunc.containerd.runtime.spec import example_spec, write_spec
    os.makedirs(bundle, exist_ok=True)
    make_rootfs(os.path.join(bundle, "rootfs"))
    if spec is None:
        spec = example_spec(args=args, terminal=terminal)
    write_spec(bundle, spec)
    return spec


def main(argv: "list | None" = None) -> None:
    """``python -m pyrunc.engine.busybox DIR [--terminal] [-- ARGS...]``."""
    import argparse
    import sys
    argv = sys.argv[1:] if argv is None else argv
    args: list = []
    if "--" in argv:
        i = argv.index("--")
        argv, args = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m pyrunc.engine.busybox",
                                description="Create a busybox-static OCI bundle.")
    p.add_argument("bundle")
    p.add_argument("--terminal", action="store_true")
    ns = p.parse_args(argv)
    make_bundle(ns.bundle, args=args or ["sh"], terminal=ns.terminal)


if __name__ == "__main__":
    main()
