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
    another in a thread, niced, so that software emulation uses the CPU the host tests leave
    idle; each VM test then takes its result (``take``), and while one waits for it (the host
    tests are stopped then), the VMs run at nice 0. A VM test module provides
    ``vm_job(**params) -> (cmd, timeout, usual seconds) or None`` (None: the test skips)."""

    def __init__(self):
        import threading
        self._cond = threading.Condition()
        self._queue = []            # [(tuple(cmd), timeout)] in the order they run
        self._results = {}          # tuple(cmd) -> CompletedProcess or TimeoutExpired
        self._taken = set()
        self._names = {}            # tuple(cmd) -> the name it is reported under
        self.seconds = []           # [(name, seconds)] of the runs that ended, in order
        self._running = None        # the session id of the run under way
        self._stopping = False
        self._waiting = False       # a test waits: the runs are not niced
        self._thread = None

    def start(self, jobs):
        """Run ``jobs`` ([(name, cmd, timeout)]) in this order in the background."""
        import threading
        if not jobs:
            return
        self._names = {tuple(cmd): name for name, cmd, timeout in jobs}
        self._queue = [(tuple(cmd), timeout) for name, cmd, timeout in jobs]
        self._thread = threading.Thread(target=self._run, name="background VMs", daemon=True)
        self._thread.start()

    def _started(self, sid):
        with self._cond:
            self._running = sid
            if self._waiting:
                _renice_session(sid, 0)
            stopping = self._stopping
        if stopping:
            _end_session(sid)          # stop() came between the start and this call

    def _run(self):
        import time
        for cmd, timeout in self._queue:
            with self._cond:
                if self._stopping:
                    return
            began = time.monotonic()
            try:
                result = run_vm(cmd, timeout, nice=True, started=self._started)
            except Exception as e:      # TimeoutExpired
                result = e
            with self._cond:
                self.seconds.append((self._names[cmd], time.monotonic() - began))
                self._running = None
                self._results[cmd] = result
                self._cond.notify_all()

    def take(self, cmd, timeout):
        """The background run of ``cmd`` as run_vm(cmd, timeout) would give it, once the runs
        before it (each bounded by its own timeout) and it have ended; run_vm(cmd, timeout)
        now if none was queued or its result was taken."""
        import subprocess
        key = tuple(cmd)
        keys = [c for c, t in self._queue]
        if key not in keys or key in self._taken:
            return run_vm(cmd, timeout)
        bound = sum(t for c, t in self._queue[:keys.index(key) + 1]) + 60
        with self._cond:
            self._waiting = True
            if self._running is not None:
                _renice_session(self._running, 0)
            ended = self._cond.wait_for(lambda: key in self._results, bound)
            self._waiting = False
            if self._running is not None:
                _renice_session(self._running, 19)
            if not ended:
                pytest.fail("the background VM run did not end within %d s: %s"
                            % (bound, " ".join(cmd)))
            self._taken.add(key)
            result = self._results.pop(key)
        if isinstance(result, subprocess.TimeoutExpired):
            raise result
        return result

    def stop(self):
        """End the run under way, if any, start no more, and wait for the thread."""
        if self._thread is None:
            return
        with self._cond:
            self._stopping = True
            sid = self._running
        if sid is not None:
            _end_session(sid)
        self._thread.join(60)
        if self._thread.is_alive():
            raise RuntimeError("the background VM thread did not end")
        self._thread = None


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
