"""Fixtures of the CRI tests: ``cri_node`` (module), a containerd with its CRI plugin and the
runtime handlers ``pyrunc`` and ``runc``, in namespaces of its own (see crinode.py)."""
import os

import pytest

from support import need


@pytest.fixture(scope="module")
def cri_node(tmp_path_factory, private_mount_ns, pyrunc_bin):
    """A started CriNode; at the end every pod is removed and everything it made is gone."""
    from cri.crinode import CNI_BIN, CriNode
    need("containerd")
    need("containerd-shim-runc-v2")
    runc = need("runc")
    need("docker-registry")
    need("gcc")
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.path.exists(os.path.join(CNI_BIN, plugin)):
            pytest.skip("the CNI plugin %s is not installed (containernetworking-plugins)"
                        % plugin)
    netns_before = os.stat("/proc/thread-self/ns/net").st_ino
    node = CriNode(tmp_path_factory.mktemp("cri"), pyrunc_bin, runc).start()
    try:
        yield node
    finally:
        node.stop()
    # and nothing of the node is left on the machine
    assert node.shims() == []
    assert node.cgroup_dirs() == []
    assert not os.path.exists(node.netns_path)
    assert os.stat("/proc/thread-self/ns/net").st_ino == netns_before
