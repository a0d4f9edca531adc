"""The example runtime config: what ``pyrunc spec`` writes, the same as ``runc spec`` (and its
``--rootless``), and what the demo, the tests and the benchmarks start their bundles from."""
import os

from pyrunc.libcontainer import jsoncodec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def example_spec(args: "tuple | list" = ("sh",), terminal: bool = True,
                 rootless: bool = False) -> dict:
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


def _make_rootless(spec: dict) -> None:
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


def write_spec(bundle: str, spec: dict) -> None:
    """Write ``bundle/config.json`` (tab-indented, as runc writes it), replacing any."""
    path = os.path.join(bundle, "config.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(jsoncodec.dumps(spec, indent="\t"))
    os.rename(tmp, path)
