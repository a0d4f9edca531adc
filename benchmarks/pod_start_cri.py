"""Pod start through containerd's CRI plugin: the pyrunc runtime handler against runc's.

One pod start is what a kubelet waits for before the pod's first container runs:
RunPodSandbox (the pause image's sandbox, its network namespace and CNI bridge networking)
then CreateContainer and StartContainer of one busybox container (``sleep``), timed until
StartContainer returns (the container is running). Both handlers are containerd's runc shim
(``io.containerd.runc.v2``), one with ``BinaryName`` the pyrunc command, the other runc.
Rounds alternate which handler goes first; the pods are stopped and removed between starts,
outside the timing. Prints each handler's median and the ratio pyrunc/runc.

The node is the CRI tests' (tests/cri/crinode.py): containerd, its registry mirror and the
pods' network live in namespaces of the script's own, removed at the end. Run as root:

    .venv/bin/python benchmarks/pod_start_cri.py -n 15

``--pyrunc PATH`` times another pyrunc command (e.g. one from a non-editable install, whose
processes start faster than an editable install's); by default the one beside the interpreter.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MARK = "PYRUNC_POD_START_CRI_INSIDE"
SLEEPER = ["sleep", "3600"]


def start_pod(node, handler, index):
    begin = time.perf_counter()
    sid, _, _ = node.run_pod("bench-%s-%d" % (handler, index), handler,
                             [("main", SLEEPER)])
    elapsed = time.perf_counter() - begin
    node.remove_pod(sid)
    return elapsed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", "--rounds", type=int, default=15)
    p.add_argument("--pyrunc", help="the pyrunc command to time (default: the one beside "
                                    "this interpreter)")
    args = p.parse_args()
    if os.environ.get(MARK) != "1":
        env = dict(os.environ, **{MARK: "1"})
        os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private",
                               sys.executable] + sys.argv, env)
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    from cri.crinode import CriNode
    pyrunc = os.path.abspath(args.pyrunc) if args.pyrunc else \
        os.path.join(os.path.dirname(sys.executable), "pyrunc")
    runc = shutil.which("runc")
    work = tempfile.mkdtemp(prefix="pod-start-cri-")
    node = CriNode(work, pyrunc, runc)
    try:
        node.start()
        node.pull("busybox")
        for handler in ("pyrunc", "runc"):          # warm up: first pods, images unpacked
            start_pod(node, handler, -1)
        times = {"pyrunc": [], "runc": []}
        for i in range(args.rounds):
            order = ("pyrunc", "runc") if i % 2 == 0 else ("runc", "pyrunc")
            for handler in order:
                times[handler].append(start_pod(node, handler, i))
        medians = {h: statistics.median(t) * 1000 for h, t in times.items()}
        for handler in ("pyrunc", "runc"):
            print("%-7s pod start (sandbox + 1 container running): median %7.1f ms  "
                  "min %7.1f ms  (%d runs)" % (handler, medians[handler],
                                              min(times[handler]) * 1000, args.rounds))
        print("ratio pyrunc/runc: %.2f" % (medians["pyrunc"] / medians["runc"]))
    finally:
        node.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
