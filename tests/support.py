"""Helpers importable by every test module (``from support import need``)."""
import os
import shutil

import pytest


# The external tools pyrunc is compared with or tested against: a test that needs one carries
# the ``peer`` marker (``-m "not peer"`` leaves them out); need() fails a test that does not.
PEER_TOOLS = frozenset({"runc", "crun", "ctr", "containerd", "containerd-shim-runc-v2", "skopeo",
                        "umoci", "docker-registry", "criu", "dbus-daemon", "dbus-send"})

# The test being set up or run (set by tests/conftest.py), so that need() can check its marker.
current_item = None


def need(binary):
    """Skip unless an external tool is installed (what the machine lacks); a peer tool needs
    the test to be marked ``peer``."""
    item = current_item
    if binary in PEER_TOOLS and item is not None and item.get_closest_marker("peer") is None:
        pytest.fail("%s is a peer tool: mark %s with @pytest.mark.peer" % (binary, item.nodeid))
    path = shutil.which(binary)
    if not path:
        pytest.skip("%s is not installed" % binary)
    return path


def unique_id(prefix="t"):
    """A container id no other test (or a parallel run) uses."""
    import uuid
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def wait_for_status(runtime, cid, status, timeout=10):
    """Poll ``runtime state`` until the container reaches ``status``."""
    import json
    import time
    deadline = time.monotonic() + timeout
    while True:
        r = runtime("state", cid, check=False)
        got = json.loads(r.stdout)["status"] if r.returncode == 0 else r.stderr.strip()
        if got == status:
            return
        if time.monotonic() > deadline:
            raise AssertionError("%s: status %r, wanted %r" % (cid, got, status))
        time.sleep(0.02)


VM_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vm", "run-v2-vm.sh")


def vm_unavailable():
    """Why the pure cgroup v2 VM cannot boot here (what the machine lacks, or being inside
    it), or None."""
    if os.environ.get("PYRUNC_VM"):
        return "already inside the VM"
    for tool in ("qemu-system-x86_64", "cpio", "modprobe"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    if not os.path.exists("/usr/lib/qemu/virtiofsd"):
        return "virtiofsd is not installed"
    return None


def need_vm():
    """Skip unless the pure cgroup v2 VM can boot here (qemu, virtiofsd; not inside it); fail
    when not root."""
    if os.geteuid() != 0:
        pytest.fail("the VM tests need root: run them with scripts/test.sh as root")
    why = vm_unavailable()
    if why:
        pytest.skip(why)
    return VM_RUNNER


def _session_pids(sid):
    """The live processes of session ``sid`` (from /proc/PID/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def _end_session(sid):
    """End every process of session ``sid``, one a VM run leads (qemu runs in a process group
    of its own under timeout(1)): SIGTERM first, so that run-v2-vm.sh's EXIT trap removes the
    VM's files, SIGKILL to what is left 20 s later. The caller has not reaped the leader yet,
    so its PID, the session's id, cannot name anyone else's processes."""
    import signal
    import time
    for sig, seconds in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        for pid in _session_pids(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + seconds
        while _session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _renice_session(sid, nice):
    """Every thread of session ``sid`` to ``nice`` (nice is a thread's, not a process's)."""
    for pid in _session_pids(sid):
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except (FileNotFoundError, ProcessLookupError):
            pass


def run_vm(cmd, timeout, nice=False, started=None):
    """Run a run-v2-vm.sh command line in a session of its own (under ``nice -n 19`` if
    ``nice``): its CompletedProcess (text), or TimeoutExpired after ``timeout`` seconds. However
    it ends (a timeout, an interrupt), no process of the run is left. ``started(pid)`` is
    called once the run's leader is started."""
    import subprocess
    argv = (["nice", "-n", "19"] if nice else []) + list(cmd)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        if started is not None:
            started(proc.pid)
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        _end_session(proc.pid)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


class BackgroundVMs:
    """The selected VM tests' runs, started at collection's end (tests/conftest.py) one after
    another, niced, so that software emulation uses the CPU the host tests leave idle; each VM
    test then takes its result (``take``), and while one waits for it (the host tests are
    stopped then), the VMs run at nice 0. The runs are made by a process of their own
    (tests/vm/runner.py): the test process opens no descriptor and starts no child under a test
    that counts them. A VM test module provides ``vm_job(**params) -> (cmd, timeout, usual
    seconds) or None`` (None: the test skips)."""

    def __init__(self):
        self._queue = []            # [(tuple(cmd), timeout, name)] in the order they run
        self._taken = set()
        self._dir = None            # the runner's files
        self._runner = None
        self._ended = None          # seconds, kept once stopped

    def start(self, jobs):
        """Run ``jobs`` ([(name, cmd, timeout)]) in this order in the background."""
        import json
        import subprocess
        import sys
        import tempfile
        if not jobs:
            return
        self._queue = [(tuple(cmd), timeout, name) for name, cmd, timeout in jobs]
        self._dir = tempfile.mkdtemp(prefix="pyrunc-background-vms-")
        jobs_path = os.path.join(self._dir, "jobs.json")
        with open(jobs_path, "w") as f:
            json.dump([[name, list(cmd), timeout] for cmd, timeout, name in self._queue], f)
        with open(os.path.join(self._dir, "runner.log"), "wb") as log:
            self._runner = subprocess.Popen(
                [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vm",
                                              "runner.py"), jobs_path, self._dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    @property
    def _running(self):
        """The session id of the run under way, None between runs."""
        try:
            with open(os.path.join(self._dir, "running")) as f:
                return int(f.read())
        except (TypeError, FileNotFoundError, ValueError):
            return None

    def _result(self, index):
        import json
        try:
            with open(os.path.join(self._dir, "%d.json" % index)) as f:
                return json.load(f)
        except (TypeError, FileNotFoundError):
            return None

    @property
    def seconds(self):
        """[(name, seconds)] of the runs that ended, in order."""
        if self._ended is not None:
            return self._ended
        out = []
        for i, (cmd, timeout, name) in enumerate(self._queue):
            result = self._result(i)
            if result is None:
                break
            out.append((name, result["seconds"]))
        return out

    def take(self, cmd, timeout):
        """The background run of ``cmd`` as run_vm(cmd, timeout) would give it, once the runs
        before it (each bounded by its own timeout) and it have ended; run_vm(cmd, timeout)
        now if none was queued or its result was taken."""
        import subprocess
        import time
        key = tuple(cmd)
        keys = [c for c, t, n in self._queue]
        if key not in keys or key in self._taken:
            return run_vm(cmd, timeout)
        index = keys.index(key)
        deadline = time.monotonic() + sum(t for c, t, n in self._queue[:index + 1]) + 60
        result = None
        try:
            while result is None:
                sid = self._running
                if sid is not None:
                    _renice_session(sid, 0)
                result = self._result(index)
                if result is None:
                    if time.monotonic() > deadline or self._runner.poll() is not None:
                        pytest.fail("the background VM run did not end (runner %s): %s"
                                    % (self._runner.poll(), " ".join(cmd)))
                    time.sleep(0.2)
        finally:
            sid = self._running
            if sid is not None:
                _renice_session(sid, 19)
        self._taken.add(key)
        if "timed_out" in result:
            raise subprocess.TimeoutExpired(list(cmd), result["timed_out"], result["stdout"],
                                            result["stderr"])
        return subprocess.CompletedProcess(list(cmd), result["returncode"], result["stdout"],
                                           result["stderr"])

    def stop(self):
        """End the run under way, if any, and the runner (start no more)."""
        import shutil
        import signal
        if self._runner is None:
            return
        if self._runner.poll() is None:
            self._runner.send_signal(signal.SIGTERM)
        try:
            self._runner.wait(60)
        except Exception:
            raise RuntimeError("the background VM runner did not end")
        self._runner = None
        self._ended = self.seconds
        shutil.rmtree(self._dir, ignore_errors=True)


background_vms = BackgroundVMs()


def go_json_text(data: bytes) -> str:
    """Go's encoding/json on a byte string (what Docker's json-file keeps of output bytes): valid
    UTF-8 kept, each other byte U+FFFD."""
    out, i = [], 0
    while i < len(data):
        for n in (1, 2, 3, 4):
            try:
                ch = data[i:i + n].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(ch) == 1:
                out.append(ch)
                i += n
                break
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def exe_mount_id(pid):
    """The mount id of ``pid``'s executable, as the kernel reports it for an open file (a
    clone of the interpreter's mount has an id of its own)."""
    fd = os.open("/proc/%d/exe" % pid, os.O_RDONLY)
    try:
        with open("/proc/self/fdinfo/%d" % fd) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("mnt_id:"))
    finally:
        os.close(fd)


def exited(pid):
    """Whether ``pid`` has exited: no such process, or a zombie nobody has reaped yet (its
    parent may be slow to, or be this machine's slow pid 1)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def child_pids():
    """The PIDs of this process's children (zombies too), from every thread's
    /proc/self/task/TID/children: a test compares the set before and after it, so children of
    longer-lived fixtures (a registry kept for the session) do not count against it."""
    pids = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % tid) as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:       # the thread ended meanwhile
            pass
    return pids


def pids_by_argv(match):
    """The PIDs of the live processes whose argument list (bytes) ``match`` accepts."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and match(argv):
            found.append(int(entry))
    return found


def unix_request(sock_path, method, path, body=None, headers=None, timeout=30):
    """(status, headers with lower-case names, body bytes) of one HTTP request to the server on
    the unix socket ``sock_path``, over a new connection."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(conn):
            conn.sock = socket.socket(socket.AF_UNIX)
            conn.sock.settimeout(timeout)
            conn.sock.connect(sock_path)

    c = Conn("localhost", timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def http_get(port, seconds=10):
    """The answer to GET / on 127.0.0.1:PORT (b"" if none), trying for ``seconds`` while the
    server starts."""
    import socket
    import time
    body = b""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                body = s.makefile("rb").read()
            if body:
                return body
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return body
        time.sleep(0.2)


def link_names():
    """The link names of the calling thread's network namespace, from netlink (/sys/class/net
    shows the namespace sysfs was mounted in, not the one a test moved its thread into)."""
    from pyroute2 import IPRoute
    with IPRoute() as ip:
        return sorted(link.get_attr("IFLA_IFNAME") for link in ip.get_links())


def wait_links_gone(prefix, timeout=5.0):
    """Wait until the calling thread's network namespace has no link whose name starts with
    ``prefix``, polling for up to ``timeout`` seconds: a stopped container's veths go with its
    network namespace, which the kernel destroys asynchronously once the engine let go of it.
    The names still there at the deadline ([] when all went)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        left = [name for name in link_names() if name.startswith(prefix)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)
