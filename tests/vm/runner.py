"""The background VM runs of a test session (support.BackgroundVMs), in a process of their own so
that the test process's descriptors and children never change under a test that counts them:
``runner.py JOBS OUT`` runs each job of the JSON list ``[[name, cmd, timeout], ...]`` in turn
(support.run_vm, niced), keeps the session id of the run under way in ``OUT/running`` and writes
each result to ``OUT/N.json`` (written whole, then renamed). SIGTERM ends the run under way
(every process of its session) and the runner."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import support  # noqa: E402


def _write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main(jobs_path, out):
    with open(jobs_path) as f:
        jobs = json.load(f)
    running = [None]

    def terminate(signo, frame):
        if running[0] is not None:      # not reaped yet: its pid names only the run's session
            support._end_session(running[0])
        os._exit(128 + signo)
    signal.signal(signal.SIGTERM, terminate)

    def started(pid):
        running[0] = pid
        _write(os.path.join(out, "running"), str(pid))

    for i, (name, cmd, timeout) in enumerate(jobs):
        began = time.monotonic()
        try:
            r = support.run_vm(cmd, timeout, nice=True, started=started)
            result = {"returncode": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
        except subprocess.TimeoutExpired as e:
            result = {"timed_out": timeout, "stdout": e.stdout, "stderr": e.stderr}
        running[0] = None
        try:
            os.unlink(os.path.join(out, "running"))
        except FileNotFoundError:
            pass
        result["seconds"] = time.monotonic() - began
        _write(os.path.join(out, "%d.json" % i), json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
