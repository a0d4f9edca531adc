"""pause/resume, ps, events and update through the command line, side by side with runc."""
import json
import os

from support import unique_id, wait_for_status


def _running(runtime, make_bundle, args=("sleep", "100"), mutate=None):
    cid = unique_id()
    bundle = make_bundle(list(args), mutate=mutate)
    runtime("run", "-d", "--bundle", bundle, cid)
    return cid


def test_pause_resume(runtime, make_bundle):
    cid = _running(runtime, make_bundle)
    runtime("pause", cid)
    assert json.loads(runtime("state", cid).stdout)["status"] == "paused"
    r = runtime("pause", cid, check=False)
    assert r.returncode != 0
    runtime("resume", cid)
    assert json.loads(runtime("state", cid).stdout)["status"] == "running"
    r = runtime("resume", cid, check=False)
    assert r.returncode != 0
    runtime("delete", "-f", cid)


def test_delete_force_paused(runtime, make_bundle):
    cid = _running(runtime, make_bundle)
    runtime("pause", cid)
    runtime("delete", "--force", cid)
    assert runtime("list", "-q").stdout == ""


def test_ps(runtime, make_bundle):
    cid = _running(runtime, make_bundle, ["sh", "-c", "sleep 100 & wait"])
    pid = json.loads(runtime("state", cid).stdout)["pid"]
    pids = json.loads(runtime("ps", "--format", "json", cid).stdout)
    assert pid in pids and len(pids) == 2
    table = runtime("ps", cid, "-o", "pid,comm").stdout.splitlines()
    assert table[0].split() == ["PID", "COMMAND"]
    assert sorted(line.split()[1] for line in table[1:]) == ["sh", "sleep"]
    runtime("delete", "-f", cid)


def test_events_stats(runtime, make_bundle):
    cid = _running(runtime, make_bundle)
    ev = json.loads(runtime("events", "--stats", cid).stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    assert ev["data"]["pids"]["current"] == 1
    assert ev["data"]["memory"]["usage"]["usage"] > 0
    assert ev["data"]["cpu"]["usage"]["total"] > 0
    runtime("delete", "-f", cid)


def test_update_pids_and_memory(runtime, make_bundle, tmp_path):
    cid = _running(runtime, make_bundle)
    runtime("update", "--pids-limit", "7", "--memory", "64m", cid)
    ev = json.loads(runtime("events", "--stats", cid).stdout)
    assert ev["data"]["pids"]["limit"] == 7
    assert ev["data"]["memory"]["usage"]["limit"] == 64 << 20
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"pids": {"limit": 9}}))
    runtime("update", "-r", str(res), cid)
    assert json.loads(runtime("events", "--stats", cid).stdout)["data"]["pids"]["limit"] == 9
    r = runtime("update", "--memory", "lots", cid, check=False)
    assert r.returncode != 0
    runtime("delete", "-f", cid)


def test_pids_limit_stops_forks(runtime, make_bundle):
    def limit(spec):
        spec["linux"]["resources"]["pids"] = {"limit": 3}
    bundle = make_bundle(["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 5 & done; wait"],
                         mutate=limit)
    r = runtime("run", "--bundle", bundle, unique_id(), check=False)
    assert "can't fork" in r.stderr or "Resource temporarily unavailable" in r.stderr


def test_events_reports_oom(runtime, make_bundle):
    def limit(spec):
        spec["linux"]["resources"]["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    cid = unique_id()
    bundle = make_bundle(["sh", "-c", "read x < /go; tail /dev/zero"], mutate=limit)
    fifo = os.path.join(bundle, "rootfs", "go")
    os.mkfifo(fifo)
    runtime("create", "--bundle", bundle, cid)
    import subprocess
    ev = subprocess.Popen(runtime.cmd("events", "--interval", "1h", cid),
                          stdout=subprocess.PIPE, text=True)
    try:
        runtime("start", cid)
        wait_for_status(runtime, cid, "running")
        with open(os.path.join(bundle, "rootfs", "go"), "w") as f:
            f.write("go\n")
        import select
        ready, _, _ = select.select([ev.stdout], [], [], 30)
        assert ready, "no event within 30 s"
        assert json.loads(ev.stdout.readline()) == {"type": "oom", "id": cid}
    finally:
        ev.kill()
        ev.wait()
        runtime("delete", "-f", cid)
