"""Engine roots side by side, the chains' names, the rules a start writes, pydockerd's default.

Each test runs in a network namespace of its own standing for the host (``host_ns``). Oracles
are the kernel's: ``iptables -S`` and the per-rule packet counters of ``iptables -L -v -x``,
the links of the namespace, plain sockets of the test connecting to published ports, and the
Engine API of a pydockerd subprocess started there.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from support import http_get, unix_request, wait_links_gone

from pyrunc.engine import Engine
from pyrunc.engine.network import default_bridge
from pyrunc.engine.network.firewall import Chains
from pyrunc.errors import Conflict, InvalidArgument

from engine.network.netstate import ns_state

HTTPD = "echo %s > /tmp/index.html && exec httpd -f -p 80 -h /tmp"
LOOPBACK = {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}}


def _chain(table, chain):
    """The rules of ``chain`` as ``iptables -S`` lists them (None: no such chain)."""
    r = subprocess.run(["iptables", "-w", "-t", table, "-S", chain], capture_output=True,
                       text=True)
    return r.stdout.splitlines()[1:] if r.returncode == 0 else None


def _links():
    """The link names of the test's namespace (the kernel's, through ``ip``: /sys shows the
    namespace it was mounted in)."""
    return ns_state()[1]


def _user_chains():
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return sorted(line.split()[0][1:] for line in out.splitlines()
                  if line.startswith(":") and line.split()[1] == "-")


def _packets(chain, port):
    """The packet counter of the DNAT rule of ``chain`` for host port ``port``."""
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-L", chain, "-v", "-x", "-n"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if re.search(r"dpt:%d\b" % port, line):
            return int(line.split()[0])
    raise AssertionError("no rule for port %d in %s:\n%s" % (port, chain, out))


class Roots:
    """Engines on roots of the test's own, all removed (containers, networks) at the end."""

    def __init__(self, tmp_path, exec_root):
        self.tmp = tmp_path
        self.exec_root = exec_root
        self.engines = []

    def engine(self, name, bridge):
        eng = Engine(str(self.tmp / name), exec_root=os.path.join(self.exec_root, name),
                     bridge=bridge)
        eng.load_builtin("busybox")
        self.engines.append(eng)
        return eng

    def close(self, eng, networks=True):
        for c in eng.containers.store.all():
            eng.containers.remove(c.id, force=True)
        if networks:
            eng.networks.sweep([])
        eng.networks.teardown()
        eng.close()
        self.engines.remove(eng)


@pytest.fixture
def roots(tmp_path, exec_root, host_ns):
    before = ns_state()
    r = Roots(tmp_path, exec_root)
    yield r
    for eng in list(r.engines):
        r.close(eng)
    wait_links_gone("veth")
    assert ns_state() == before


def _serve(eng, text, host_config=LOOPBACK):
    cid = eng.containers.create({"Image": "busybox", "Cmd": ["sh", "-c", HTTPD % text]},
                                dict(host_config))["Id"]
    eng.containers.start(cid)
    return cid, int(eng.containers.port(cid)["80/tcp"][0]["HostPort"])


def test_chain_names_and_default_bridges():
    assert Chains.for_bridge("pyr0").dnat == "PYRUNC"
    other = Chains.for_bridge("pyr1")
    assert re.fullmatch(r"PYRUNC-[0-9a-f]{6}", other.dnat)
    assert other.post == other.dnat + "-POSTROUTING" and len(other.post) <= 28
    assert Chains.for_bridge("pyr2").dnat not in (other.dnat, "PYRUNC")
    assert default_bridge("/var/lib/pyrunc", "/var/lib/pyrunc") == "pyr0"
    assert default_bridge("/var/lib/pyrunc/", "/var/lib/pyrunc") == "pyr0"
    a = default_bridge("/srv/a", "/var/lib/pyrunc")
    b = default_bridge("/srv/b", "/var/lib/pyrunc")
    assert a != b and re.fullmatch(r"pyr[0-9a-f]{6}", a) and len(a) <= 15
    assert default_bridge("/srv/a", "/var/lib/pyrunc") == a          # stable
    for bad in ("PYRUNC", "../x", "0123456789", "g"):
        with pytest.raises(InvalidArgument):
            Chains(bad)


def test_two_roots_in_one_namespace_keep_their_own_bridges_subnets_and_chains(roots):
    chains_before = _user_chains()
    a = roots.engine("a", "pyr0")
    b = roots.engine("b", default_bridge(str(roots.tmp / "b"), str(roots.tmp / "a")))
    ca, port_a = _serve(a, "from-a")
    cb, port_b = _serve(b, "from-b")
    assert b"from-a" in http_get(port_a) and b"from-b" in http_get(port_b)
    # bridges and subnets of their own (the kernel's links and the networks' records)
    ba, bb = a.networks.inspect("bridge"), b.networks.inspect("bridge")
    dev_a = ba["Options"]["com.docker.network.bridge.name"]
    dev_b = bb["Options"]["com.docker.network.bridge.name"]
    assert dev_a == "pyr0" and dev_b != dev_a
    assert {"pyr0", dev_b} <= set(_links())
    assert ba["IPAM"]["Config"][0]["Subnet"] != bb["IPAM"]["Config"][0]["Subnet"]
    # chains of their own: PYRUNC for pyr0, PYRUNC-<tag> for the other
    cha, chb = Chains.for_bridge(dev_a), Chains.for_bridge(dev_b)
    assert cha.dnat == "PYRUNC" and chb.dnat != "PYRUNC"
    assert any("--dport %d" % port_a in r for r in _chain("nat", "PYRUNC"))
    assert any("--dport %d" % port_b in r for r in _chain("nat", chb.dnat))
    assert not any("--dport %d" % port_b in r for r in _chain("nat", "PYRUNC"))
    b_rules = {(t, c): _chain(t, c) for t, names in chb.tables() for c in names}
    assert all(v is not None for v in b_rules.values())
    # a third root asking for a bridge another root holds is refused, and changes nothing
    c = roots.engine("c", "pyr0")
    with pytest.raises(Conflict, match="bridge name pyr0 is in use by a link"):
        c.containers.create({"Image": "busybox", "Cmd": ["true"]}, dict(LOOPBACK))
    assert list(c.containers.store.all()) == []
    roots.close(c, networks=False)        # it never had any: a sweep would ask for pyr0 again
    assert {(t, x): _chain(t, x) for t, x in b_rules} == b_rules
    assert b"from-a" in http_get(port_a)
    # a's container and networks gone: b's rules are untouched and b still answers
    a.containers.remove(ca, force=True)
    roots.close(a)
    assert _chain("nat", "PYRUNC") is None and "pyr0" not in _links()
    assert {(t, x): _chain(t, x) for t, x in b_rules} == b_rules
    assert b"from-b" in http_get(port_b)
    b.containers.remove(cb, force=True)
    roots.close(b)
    assert _user_chains() == chains_before


def test_a_start_adds_its_rules_and_leaves_the_others(roots):
    eng = roots.engine("a", "pyrt" + uuid.uuid4().hex[:8])
    chains = Chains.for_bridge(eng.networks.inspect("bridge")["Options"][
        "com.docker.network.bridge.name"])
    first, port1 = _serve(eng, "one")
    assert b"one" in http_get(port1)
    counted = _packets(chains.dnat, port1)
    assert counted >= 1
    # other containers starting and stopping leave the first one's rule as it was: the
    # kernel's counter of that rule goes on (a rewritten chain starts its rules at 0)
    second, port2 = _serve(eng, "two")
    bare = eng.containers.create({"Image": "busybox", "Cmd": ["sleep", "30"]}, {})["Id"]
    eng.containers.start(bare)
    assert _packets(chains.dnat, port1) >= counted
    assert b"two" in http_get(port2)
    eng.containers.remove(second, force=True)
    eng.containers.remove(bare, force=True)
    assert _packets(chains.dnat, port1) >= counted
    assert [r for r in _chain("nat", chains.dnat) if "--dport %d" % port2 in r] == []
    assert b"one" in http_get(port1)


def test_rules_that_differ_from_the_record_are_rewritten(roots):
    eng = roots.engine("a", "pyrt" + uuid.uuid4().hex[:8])
    chains = Chains.for_bridge(eng.networks.inspect("bridge")["Options"][
        "com.docker.network.bridge.name"])
    first, port1 = _serve(eng, "one")
    # somebody flushes the engine's DNAT chain behind its back: the stop's deletion fails,
    # the chain is rewritten from the record instead, and the next publish works
    subprocess.run(["iptables", "-w", "-t", "nat", "-F", chains.dnat], check=True)
    eng.containers.stop(first, timeout=1)
    assert _chain("nat", chains.dnat) == []
    second, port2 = _serve(eng, "two")
    assert b"two" in http_get(port2)
    assert len([r for r in _chain("nat", chains.dnat) if "DNAT" in r]) == 1


class Pydockerd:
    """A pydockerd subprocess in the test's network namespace (it inherits the thread's)."""

    def __init__(self, tmp, *flags, config=None):
        self.tmp = str(tmp)
        os.makedirs(self.tmp, exist_ok=True)
        self.root = os.path.join(self.tmp, "root")
        self.sock = os.path.join(self.tmp, "d.sock")
        self.exec_root = tempfile.mkdtemp(prefix="pd-", dir="/run")
        cfg = os.path.join(self.tmp, "daemon.json")
        with open(cfg, "w") as f:
            json.dump(config or {}, f)
        self.log = os.path.join(self.tmp, "log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pyrunc.engine.dockerd", "-H", "unix://" + self.sock,
                 "--data-root", self.root, "--exec-root", self.exec_root, "--pidfile",
                 os.path.join(self.tmp, "pid"), "--config-file", cfg] + list(flags),
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, open(self.log).read()
            try:
                if self.get("/_ping")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "pydockerd did not answer"
            time.sleep(0.05)

    def get(self, path):
        status, _, body = unix_request(self.sock, "GET", path)
        return status, body

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
        eng = Engine(self.root, exec_root=self.exec_root, bridge="unused0")
        if eng.containers.networking.in_use():
            eng.networks.sweep([])
            eng.networks.teardown()
        eng.close()
        shutil.rmtree(self.exec_root, ignore_errors=True)


@pytest.fixture
def daemons(host_ns):
    before = ns_state()
    started = []
    yield lambda *a, **k: started.append(Pydockerd(*a, **k)) or started[-1]
    for d in started:
        d.stop()
    wait_links_gone("veth")
    assert ns_state() == before


def test_pydockerd_has_the_default_bridge_on_unless_bridge_none(daemons, tmp_path):
    d = daemons(tmp_path / "on")
    status, body = d.get("/networks")
    assert status == 200
    nets = {n["Name"]: n for n in json.loads(body)}
    assert sorted(nets) == ["bridge", "host", "none"]
    device = nets["bridge"]["Options"]["com.docker.network.bridge.name"]
    assert device == default_bridge(d.root, "/var/lib/pyrunc")
    assert device in _links()
    # --bridge=none as dockerd has it (Debian's dockerd lists host and none): no default bridge
    off = [daemons(tmp_path / "flag", "--bridge=none"),
           daemons(tmp_path / "file", config={"bridge": "none"})]
    for d in off:
        status, body = d.get("/networks")
        assert status == 200
        assert sorted((n["Name"], n["Driver"]) for n in json.loads(body)) == [
            ("host", "host"), ("none", "null")]
    assert default_bridge(off[0].root, "/var/lib/pyrunc") not in _links()


def test_bridge_none_on_a_root_that_had_the_default_bridge_removes_it(daemons, tmp_path):
    """dockerd clears the default bridge network at every start: one started with
    --bridge=none on a root that had it lists host and none only, and its device is gone."""
    first = daemons(tmp_path / "root")
    device = default_bridge(first.root, "/var/lib/pyrunc")
    assert first.get("/networks")[0] == 200     # the networks are made on first use
    assert device in _links()
    first.proc.terminate()
    first.proc.wait(30)
    assert device in _links()           # a daemon's exit leaves its networks to the next one
    again = daemons(tmp_path / "root", "--bridge=none")
    status, body = again.get("/networks")
    assert status == 200
    assert sorted(n["Name"] for n in json.loads(body)) == ["host", "none"]
    assert device not in _links()
    again.proc.terminate()
    again.proc.wait(30)


def test_a_subnet_is_chosen_under_a_lock_of_the_namespace(svc):
    import errno
    import threading
    from pyrunc.engine.network import service
    svc.ensure_default()
    with service._host_lock():
        # the kernel's view: the lock's abstract socket name is taken in this namespace
        probe = socket.socket(socket.AF_UNIX)
        with pytest.raises(OSError) as e:
            probe.bind(service.POOL_LOCK)
        assert e.value.errno == errno.EADDRINUSE
        probe.close()
        made = threading.Thread(target=svc.create, args=("waits",))
        made.start()
        made.join(0.5)
        assert made.is_alive()                  # waiting for the lock: no pool taken yet
        with open(os.path.join(svc.root, "networks.json")) as f:   # (the service is busy)
            assert "waits" not in [n["Name"] for n in json.load(f)["networks"].values()]
    made.join(30)
    assert not made.is_alive() and svc.inspect("waits")["Name"] == "waits"
    probe = socket.socket(socket.AF_UNIX)
    probe.bind(service.POOL_LOCK)                # free again
    probe.close()
    svc.remove("waits")
