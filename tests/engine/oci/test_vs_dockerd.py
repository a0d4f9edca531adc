"""build_spec and merge_image_config against Debian's dockerd: the same requests (made by the
docker SDK's helpers) go to dockerd, which writes its runtime config for runc, and to our
functions; the parts that express docker's rules must agree.

dockerd here is 20.10; where docker 28 (the target) changed a default since, the difference
is listed below and checked to be exactly that. No privileged case: dockerd 20.10 gives a
privileged container every capability the kernel knows, and on a host whose own bounding set
lacks one (this one lacks CAP_SYS_RESOURCE) runc refuses to start it; we give those the engine
holds (test_inside.py checks that from inside).
"""
import glob
import json
import os
import shutil

import pytest

from dockerd_peer import DOCKERD, Dockerd
from pyrunc.engine.oci import build_spec, merge_image_config, seccomp

docker = pytest.importorskip("docker", reason="the docker SDK (pip package docker) is not "
                                              "installed")

pytestmark = pytest.mark.peer

# docker 28's masked paths that 20.10 did not have
MASKED_SINCE_20 = {"/proc/interrupts", "/sys/devices/virtual/powercap"}
# calls docker's default profile allowed in 20.10 and blocks now (io_uring, since 25.0;
# socketcall, whose socket family a filter cannot see), and socket, which we allow for every
# family but AF_ALG and AF_VSOCK
ALLOWED_ONLY_BY_20 = {"io_uring_enter", "io_uring_register", "io_uring_setup", "socket",
                      "socketcall"}
# calls added to docker's profile after 20.10 (new kernels' calls; the ptrace family on >= 4.8)
ALLOWED_SINCE_20 = {"cachestat", "fchmodat2", "futex_requeue", "futex_wait", "futex_wake",
                    "map_shadow_stack", "pkey_alloc", "pkey_free", "pkey_mprotect", "kcmp",
                    "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
                    "clock_settime64"}


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory, private_mount_ns):
    if not os.path.exists(DOCKERD) or not shutil.which("unshare"):
        pytest.skip("Debian's dockerd (package docker.io) is not installed")
    with Dockerd(str(tmp_path_factory.mktemp("dockerd"))) as d:
        d.load_builtin("busybox")
        client = docker.DockerClient(base_url=d.host)
        # an image with an entrypoint, env, labels, ports, volumes, workdir, user
        c = client.api.create_container("busybox", ["true"])
        client.api.commit(c["Id"], "shaped", "latest", changes=[
            'ENTRYPOINT ["/bin/echo", "entry"]', 'CMD ["image-cmd"]', "ENV A=image B=image",
            "LABEL one=image two=image", "EXPOSE 80", "VOLUME /data", "WORKDIR /srv",
            "USER nobody"])
        client.api.remove_container(c["Id"])
        d.client = client
        yield d


def start_and_read_spec(d, image, command, host_config, **config):
    """Create and start the container in dockerd; (request Config, dockerd's Config, the
    runtime config dockerd wrote)."""
    client = d.client
    request = client.api.create_container_config(image, command, host_config=host_config,
                                                 **config)
    request.pop("HostConfig")
    cid = client.api.create_container(image, command, host_config=host_config, **config)["Id"]
    try:
        client.api.start(cid)
        found = glob.glob(os.path.join(d.workdir, "exec", "**", cid, "config.json"),
                          recursive=True)
        assert found, "dockerd wrote no config.json for %s" % cid
        with open(found[0]) as f:
            spec = json.load(f)
        merged = client.api.inspect_container(cid)["Config"]
    finally:
        client.api.remove_container(cid, force=True)
    return request, merged, spec


def our_spec(d, busybox_rootfs, tmp_path, image, request, host_config, hostname):
    image_config = d.client.api.inspect_image(image)["Config"]
    merged = merge_image_config(image_config, request)
    return merged, build_spec(config=merged, host_config=host_config, rootfs=busybox_rootfs,
                              container_dir=str(tmp_path), mounts=[], cgroups_path="/x/y",
                              hostname=hostname, init_path="/usr/bin/docker-init")


def mount_set(spec):
    return {(m["destination"], m.get("type"), tuple(m.get("options", []))) for m in
            spec["mounts"]}


def allowed(section):
    out = set()
    for e in section.get("syscalls", []):
        if e["action"] == "SCMP_ACT_ALLOW" and not e.get("args"):
            out.update(e["names"])
    return out


def _user(process):
    user = dict(process.get("user") or {})
    user["additionalGids"] = sorted(user.get("additionalGids") or [])
    return user


def compare(ours, theirs, volumes=()):
    """Differences in what expresses docker's rules. ``volumes``: destinations of the image's
    volumes, whose mounts come from the volume service, not from build_spec."""
    diffs = []
    theirs = json.loads(json.dumps(theirs))
    theirs["mounts"] = [m for m in theirs["mounts"] if m["destination"] not in volumes]
    # "host" networking: dockerd joins its own namespace by path; we stay in the engine's
    theirs["linux"]["namespaces"] = [
        n for n in theirs["linux"]["namespaces"]
        if not (n["type"] == "network" and n.get("path", "").endswith("/netns/default"))]

    def same(what, a, b):
        if a != b:
            diffs.append("%s: ours %r, dockerd %r" % (what, a, b))
    p, q = ours["process"], theirs["process"]
    for key in ("args", "env", "cwd"):
        same("process." + key, p.get(key), q.get(key))
    # dockerd 20.10 lists the additional groups out of a Go map (runc's user package of its
    # time), in any order from one run to the next: compared as sets
    same("process.user", _user(p), _user(q))
    same("process.terminal", p.get("terminal", False), q.get("terminal", False))
    same("process.capabilities.bounding", p["capabilities"]["bounding"],
         q["capabilities"]["bounding"])
    same("process.rlimits", sorted(json.dumps(r, sort_keys=True) for r in p.get("rlimits", [])),
         sorted(json.dumps(r, sort_keys=True) for r in q.get("rlimits", [])))
    same("process.noNewPrivileges", p.get("noNewPrivileges", False),
         q.get("noNewPrivileges", False))
    same("process.oomScoreAdj", p.get("oomScoreAdj", 0), q.get("oomScoreAdj", 0))
    same("root.readonly", ours["root"].get("readonly", False),
         theirs["root"].get("readonly", False))
    same("hostname", ours.get("hostname"), theirs.get("hostname"))
    same("mounts only ours", mount_set(ours) - mount_set(theirs), set())
    same("mounts only dockerd's", mount_set(theirs) - mount_set(ours), set())
    defaults = [m["destination"] for m in theirs["mounts"][:7]]
    same("default mounts' order", [m["destination"] for m in ours["mounts"][:7]], defaults)
    lo, lt = ours["linux"], theirs["linux"]
    same("linux.sysctl", lo.get("sysctl", {}), lt.get("sysctl", {}))
    same("linux.devices", lo.get("devices", []), lt.get("devices", []))
    same("linux.namespaces", sorted((n["type"], n.get("path")) for n in lo["namespaces"]),
         sorted((n["type"], n.get("path")) for n in lt["namespaces"]))
    same("linux.readonlyPaths", lo.get("readonlyPaths"), lt.get("readonlyPaths"))
    ours_masked, theirs_masked = set(lo.get("maskedPaths", [])), set(lt.get("maskedPaths", []))
    if theirs_masked:
        extra = {m for m in ours_masked - theirs_masked if not m.endswith("/thermal_throttle")}
        same("linux.maskedPaths beyond 20.10's", extra, MASKED_SINCE_20)
        same("linux.maskedPaths missing", theirs_masked - ours_masked, set())
    else:
        same("linux.maskedPaths", ours_masked, set())
    ro, rt = lo["resources"], lt["resources"]
    for section, keys in (("memory", ("limit", "swap", "reservation")),
                          ("cpu", ("shares", "quota", "period", "cpus", "mems")),
                          ("pids", ("limit",))):
        for key in keys:
            a = ro.get(section, {}).get(key) or None
            b = rt.get(section, {}).get(key) or None
            same("resources.%s.%s" % (section, key), a, b)
    missing = [r for r in ro["devices"] if r not in rt["devices"]]
    same("device rules dockerd lacks", missing, [])
    same("seccomp present", "seccomp" in lo, "seccomp" in lt)
    if "seccomp" in lo and "seccomp" in lt:
        a, b = allowed(lo["seccomp"]), allowed(lt["seccomp"])
        same("calls only dockerd 20.10 allows", b - a - ALLOWED_ONLY_BY_20, set())
        same("calls only we allow", a - b - ALLOWED_SINCE_20, set())
    return diffs


CASES = {
    "defaults": ("busybox", ["sleep", "30"], {}, {}),
    "options": ("busybox", ["sleep", "30"],
                dict(cap_add=["NET_ADMIN", "sys_time"], cap_drop=["CHOWN"], mem_limit="64m",
                     pids_limit=42, sysctls={"net.ipv4.ip_forward": "1",
                                             "kernel.shmmax": "1000000"},
                     devices=["/dev/null:/dev/mynull:rw"], init=True, group_add=["tty", "4242"],
                     tmpfs={"/scratch": "size=1m,exec"}, oom_score_adj=100,
                     security_opt=["no-new-privileges"],
                     ulimits=[docker.types.Ulimit(name="nofile", soft=100, hard=200)]),
                dict(user="nobody", environment=["A=1", "PATH=/bin"])),
    "resources": ("busybox", ["sleep", "30"],
                  dict(read_only=True, shm_size="16m", nano_cpus=500_000_000, cpu_shares=512,
                       cpuset_cpus="0", mem_limit="32m", mem_reservation="16m",
                       memswap_limit="64m"),
                  dict(working_dir="/tmp/x", tty=True, hostname="myhost")),
    "host network": ("busybox", ["sleep", "30"], dict(network_mode="host"), {}),
    "drop all": ("busybox", ["sleep", "30"], dict(cap_drop=["ALL"], cap_add=["KILL"]), {}),
    "unconfined": ("busybox", ["sleep", "30"], dict(security_opt=["seccomp=unconfined"]), {}),
    "image shape": ("shaped", None, {}, dict(user="root", entrypoint=["sleep"],
                                             command=["30"])),
}


@pytest.mark.parametrize("case", list(CASES))
def test_runtime_config_agrees_with_dockerd(dockerd, busybox_rootfs, tmp_path, case):
    image, command, hc_args, config = CASES[case]
    config = dict(config)
    if "command" in config:
        command = config.pop("command")
    host_config = dockerd.client.api.create_host_config(**hc_args)
    request, their_merged, theirs = start_and_read_spec(dockerd, image, command, host_config,
                                                        **config)
    merged, ours = our_spec(dockerd, busybox_rootfs, tmp_path, image, request, host_config,
                            theirs["hostname"])
    for key in ("Entrypoint", "Cmd", "Env", "Labels", "ExposedPorts", "Volumes", "WorkingDir",
                "User", "StopSignal"):
        assert (merged.get(key) or None) == (their_merged.get(key) or None), key
    diffs = compare(ours, theirs, volumes=merged.get("Volumes") or {})
    assert not diffs, "\n".join(diffs)


def test_default_profile_against_dockerd(dockerd, tmp_path, busybox_rootfs):
    """The calls each profile allows a container with CAP_SYS_ADMIN added, beyond the
    allowances above (the capability-conditional entries must agree)."""
    host_config = dockerd.client.api.create_host_config(cap_add=["SYS_ADMIN", "SYS_PTRACE"])
    _, _, theirs = start_and_read_spec(dockerd, "busybox", ["sleep", "30"], host_config)
    ours = seccomp.to_oci(seccomp.default_profile(),
                          theirs["process"]["capabilities"]["bounding"])
    a, b = allowed(ours), allowed(theirs["linux"]["seccomp"])
    assert b - a - ALLOWED_ONLY_BY_20 == set()
    assert a - b - ALLOWED_SINCE_20 == set()
