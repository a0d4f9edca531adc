"""OCI bundles: the example config (what ``pyrunc spec`` writes) and a busybox-static rootfs.

The busybox bundle is the built-in default the main job and the tests run: it needs nothing but
Debian's ``busybox-static`` package, no registry and no network.

    python -m pyrunc.libcontainer.bundle DIR [--terminal] [-- ARGS...]
"""
import json
import os
import shutil

from pyrunc.errors import FailedPrecondition

BUSYBOX = "/bin/busybox"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def example_spec(args=("sh",), terminal=True, rootless=False):
    """The default runtime config, the same as ``runc spec`` writes (and its ``--rootless``)."""
    spec = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=" + DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS)
                             for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }
    if rootless:
        _make_rootless(spec)
    return spec


def _make_rootless(spec):
    """Adjust the example the way ``runc spec --rootless`` does."""
    linux = spec["linux"]
    linux.pop("resources", None)
    linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "network"]
    linux["namespaces"].append({"type": "user"})
    uid, gid = os.geteuid(), os.getegid()
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    mounts = []
    for m in spec["mounts"]:
        if m["destination"] == "/sys":
            m = {"destination": "/sys", "type": "none", "source": "/sys",
                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        elif m["destination"] == "/sys/fs/cgroup":
            continue
        elif m["type"] == "devpts":
            m = dict(m, options=[o for o in m["options"] if o != "gid=5"])
        mounts.append(m)
    spec["mounts"] = mounts


def make_busybox_rootfs(rootfs):
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


def make_bundle(bundle, args=("sh",), terminal=False, spec=None):
    """Create ``bundle/rootfs`` (busybox) and ``bundle/config.json``; returns the spec."""
    os.makedirs(bundle, exist_ok=True)
    make_busybox_rootfs(os.path.join(bundle, "rootfs"))
    if spec is None:
        spec = example_spec(args=args, terminal=terminal)
    write_spec(bundle, spec)
    return spec


def write_spec(bundle, spec):
    path = os.path.join(bundle, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent="\t")
    os.rename(tmp, path)


def main(argv=None):
    import argparse
    import sys
    argv = sys.argv[1:] if argv is None else argv
    args = []
    if "--" in argv:
        i = argv.index("--")
        argv, args = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m pyrunc.libcontainer.bundle",
                                description="Create a busybox-static OCI bundle.")
    p.add_argument("bundle")
    p.add_argument("--terminal", action="store_true")
    ns = p.parse_args(argv)
    make_bundle(ns.bundle, args=args or ["sh"], terminal=ns.terminal)


if __name__ == "__main__":
    main()
