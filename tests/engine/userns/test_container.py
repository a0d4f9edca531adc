"""Real containers under --userns-remap's mapping: the ranges come from test-written
/etc/subuid and /etc/subgid ("default": the dockremap user), the rootfs is the busybox image
unpacked by a remapped image store (owners shifted) under the mapping's ROOT/UID.GID tree, and
the container gets a user namespace with the OCI uidMappings/gidMappings. Inside, the kernel
says who we are (id, /proc/self/uid_map); outside, lstat says who owns what was written."""
import os
import subprocess

import pytest

from pyrunc.containerd.runtime.spec import example_spec, write_spec
from pyrunc.engine.idmap import parse_remap
from pyrunc.engine.images import ImageService, build_builtin
from pyrunc.engine.snapshots.mount import mount_all, unmount
from support import need

HOST_UID, HOST_GID = 231072, 300000


@pytest.fixture(params=["pyrunc", "runc"])
def runtime(request, pyrunc_bin):
    return pyrunc_bin if request.param == "pyrunc" else need("runc")


@pytest.fixture(params=["overlayfs", "native"])
def remapped(request, host_ids, shared_tmp):
    """(idmap, image service) of an engine rooted at shared_tmp with --userns-remap=default."""
    host_ids("dockremap:%d:65536\n" % HOST_UID, "dockremap:%d:65536\n" % HOST_GID)
    m = parse_remap("default")
    tree = m.make_root_dir(os.path.join(shared_tmp, "engine"))
    svc = ImageService(os.path.join(tree, "image"), request.param, idmap=m)
    build_builtin(svc, "busybox")
    return m, svc


@pytest.fixture
def run_remapped(remapped, runtime, shared_tmp):
    m, svc = remapped
    state = os.path.join(shared_tmp, "state")
    made = []

    def run(script, mutate=None):
        cid = "userns%d" % len(made)
        bundle = os.path.join(m.root_dir(os.path.join(shared_tmp, "engine")), "containers", cid)
        os.makedirs(os.path.join(bundle, "rootfs"))
        os.chmod(os.path.dirname(bundle), 0o711)
        os.chmod(bundle, 0o711)
        mount_all(svc.prepare_rootfs(cid, "busybox:latest"), os.path.join(bundle, "rootfs"))
        made.append((cid, bundle))
        spec = example_spec(args=["sh", "-c", script], terminal=False)
        spec["root"]["readonly"] = False
        for caps in spec["process"]["capabilities"].values():
            caps += ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"]   # docker's has them
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"]["uidMappings"] = m.uid_mappings
        spec["linux"]["gidMappings"] = m.gid_mappings
        if mutate:
            mutate(spec)
        write_spec(bundle, spec)
        r = subprocess.run([runtime, "--root", state, "run", "-b", bundle, cid],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        return r, svc.snapshotter.writable_dir(cid)

    yield run
    for cid, bundle in made:
        subprocess.run([runtime, "--root", state, "delete", "--force", cid],
                       capture_output=True, timeout=30)
        unmount(os.path.join(bundle, "rootfs"))


def test_root_inside_is_the_range_outside(run_remapped):
    r, upper = run_remapped(
        "id; cat /proc/self/uid_map /proc/self/gid_map; "
        "touch /made; mkdir /home; mkdir /home/u; chown 1000:1001 /home/u; "
        "touch /home/u/f; chown 65534:65534 /home/u/f; ls -ln /bin/busybox")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("uid=0(root) gid=0(root)"), r.stdout + r.stderr
    assert out[1].split() == ["0", str(HOST_UID), "65536"]
    assert out[2].split() == ["0", str(HOST_GID), "65536"]
    # the image's files, shifted on disk, are root's inside
    assert out[3].split()[2:4] == ["0", "0"], r.stdout + r.stderr

    def owner(path):
        st = os.lstat(os.path.join(upper, path))
        return st.st_uid, st.st_gid

    assert owner("made") == (HOST_UID, HOST_GID)
    assert owner("home/u") == (HOST_UID + 1000, HOST_GID + 1001)
    assert owner("home/u/f") == (HOST_UID + 65534, HOST_GID + 65534)


def test_an_id_past_the_range_does_not_exist_inside(run_remapped):
    r, upper = run_remapped("touch /f; chown 65536 /f 2>&1; echo rc=$?")
    assert "rc=0" not in r.stdout
    assert os.lstat(os.path.join(upper, "f")).st_uid == HOST_UID


def test_root_inside_cannot_write_what_host_root_owns(run_remapped, shared_tmp):
    # a host directory (root's, 0755) bound in: the container's root is not its owner
    host_dir = os.path.join(shared_tmp, "hostdir")
    os.mkdir(host_dir, 0o755)

    def bind(spec):
        spec["mounts"].append({"destination": "/host", "type": "bind", "source": host_dir,
                               "options": ["rbind", "rw"]})

    r, _ = run_remapped("ls -lnd /host; touch /host/x 2>&1; echo rc=$?", mutate=bind)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[2:4] == ["65534", "65534"]      # host root: the overflow id
    assert "Permission denied" in lines[1]
    assert lines[-1] != "rc=0"
    assert os.listdir(host_dir) == []
