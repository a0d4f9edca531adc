"""Several processes on one engine root: names stay unique, an exit is collected once."""
import json
import subprocess
import sys
import time

import pytest

from pyrunc import errors

SCRIPT = r"""
import json, sys
from pyrunc import errors
from pyrunc.engine import Engine
root, action, arg = sys.argv[1:4]
cs = Engine(root).containers
sys.stdin.readline()                      # start together
try:
    if action == "create":
        out = cs.create({"Image": "busybox", "Cmd": ["true"]}, name=arg)["Id"]
    else:
        out = cs.inspect(arg)["State"]["ExitCode"]
    print(json.dumps({"ok": out}))
except errors.PyruncError as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
"""


def _race(root, action, arg, n):
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, root, action, arg],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    time.sleep(1.0)                       # let them all import and open the engine
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        results.append(json.loads(out))
    return results


def test_same_name_from_four_processes(engine):
    results = _race(engine.root, "create", "contested", 4)
    winners = [r["ok"] for r in results if "ok" in r]
    losers = [r for r in results if "error" in r]
    assert len(winners) == 1 and len(losers) == 3
    assert all(r["error"] == "Conflict" and winners[0] in r["message"] for r in losers)
    assert engine.containers.inspect("contested")["Id"] == winners[0]
    assert [c["Id"] for c in engine.containers.list(all=True, filters={"name": ["contested"]})
            ] == winners


def test_exit_collected_once_by_racing_readers(engine, runtime):
    cs = engine.containers
    since = time.time() - 1
    cid = cs.create({"Image": "busybox", "Cmd": ["sh", "-c", "sleep 0.3; exit 12"]},
                    {"Runtime": runtime})["Id"]
    cs.start(cid)
    results = _race(engine.root, "inspect", cid, 4)   # they read after the exit
    assert all(r == {"ok": 12} for r in results)
    dies = [e for e in engine.events.query(since=since, until=time.time() + 1)
            if e["Actor"]["ID"] == cid and e["Action"] == "die"]
    assert len(dies) == 1 and dies[0]["Actor"]["Attributes"]["exitCode"] == "12"
    with pytest.raises(errors.NotFound):
        cs.get(cid).task()
