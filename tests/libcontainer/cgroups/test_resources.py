"""linux.resources read into cgroup file writes (no host access): every field's file and value,
unit conversions, and any random input either planned or refused with a one-line error."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.errors import InvalidArgument, PyruncError
from pyrunc.libcontainer.cgroups import resources as R, v1, v2

FULL = {
    "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "swappiness": 10,
               "disableOOMKiller": True, "kernelTCP": 1 << 20},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0-1",
            "mems": "0", "idle": 0},
    "pids": {"limit": 100},
    "blockIO": {"weight": 500, "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
    "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
}


def _files(writes):
    return {(w[1] if isinstance(w[1], str) else w[1][-1]): w[2] for w in writes}


def test_v1_files_for_every_field():
    files = _files(v1.planned_writes(dict(FULL, network={"classID": 7,
                                                        "priorities": [{"name": "eth0", "priority": 5}]})))
    assert files["memory.limit_in_bytes"] == 64 << 20
    assert files["memory.memsw.limit_in_bytes"] == 128 << 20
    assert files["memory.soft_limit_in_bytes"] == 32 << 20
    assert files["memory.swappiness"] == 10 and files["memory.oom_control"] == 1
    assert files["memory.kmem.tcp.limit_in_bytes"] == 1 << 20
    assert files["cpu.shares"] == 512 and files["cpu.cfs_quota_us"] == 50000
    assert files["cpu.cfs_period_us"] == 100000 and files["cpu.cfs_burst_us"] == 1000
    assert files["cpuset.cpus"] == "0-1" and files["cpuset.mems"] == "0"
    assert files["pids.max"] == 100
    assert files["blkio.weight"] == 500 and files["blkio.leaf_weight"] == 300
    assert files["blkio.weight_device"] == "8:0 200"
    assert files["blkio.throttle.read_bps_device"] == "8:0 1048576"
    assert files["blkio.throttle.write_iops_device"] == "8:0 100"
    assert files["hugetlb.2MB.limit_in_bytes"] == 4 << 20
    assert files["rdma.max"] == "mlx5_1 hca_handle=3 hca_object=10000"
    assert files["net_cls.classid"] == 7 and files["net_prio.ifpriomap"] == "eth0 5"
    devices = [w[2] for w in v1.planned_writes(FULL) if w[0] == "devices"]
    assert devices == ["a", "a", "c 1:3 rw"]


def test_v2_files_and_conversions():
    res = json.loads(json.dumps(FULL))
    del res["memory"]["disableOOMKiller"], res["memory"]["kernelTCP"], res["blockIO"]["leafWeight"]
    res["unified"] = {"memory.high": "50M"}
    writes = v2.planned_writes(res)
    files = {w[1] if isinstance(w[1], str) else w[1]: w[2] for w in writes}
    assert files["memory.max"] == str(64 << 20)
    assert files["memory.swap.max"] == str(64 << 20)          # memory+swap minus memory
    assert files["memory.low"] == str(32 << 20)
    assert files["cpu.weight"] == 1 + (510 * 9999) // 262142
    assert files["cpu.max"] == "50000 100000" and files["cpu.max.burst"] == 1000
    assert [w[2] for w in writes if w[1] == ("io.bfq.weight", "io.weight")] == [
        ("500", "default %d" % (1 + 490 * 9999 // 990)), ("8:0 200", "8:0 %d" % (1 + 190 * 9999 // 990))]
    assert files["io.max"] == "8:0 wiops=100"
    assert [w[2] for w in writes if w[1] == "io.max"] == ["8:0 rbps=1048576", "8:0 wiops=100"]
    assert files["hugetlb.2MB.max"] == 4 << 20
    assert files["memory.high"] == "50M"
    assert files["pids.max"] == "100"


@pytest.mark.parametrize("res, message", [
    ({"memory": {"limit": "1g"}}, "linux.resources.memory.limit: must be an integer, not a string"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness: 101 is out of range [0, 100]"),
    ({"cpu": {"cpus": "0-a"}}, "linux.resources.cpu.cpus: '0-a' is not a cpu/node list like \"0-3,5\""),
    ({"cpu": {"cpus": "3-1"}}, "linux.resources.cpu.cpus: '3-1': range 3-1 is backwards"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight: 5 is out of range [10, 1000]"),
    ({"devices": [{"allow": True, "access": "rwx"}]},
     "linux.resources.devices[0].access: 'rwx' is not a combination of r, w and m"),
    ({"devices": [{"type": "c"}]}, "linux.resources.devices[0].allow: is required"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]},
     "linux.resources.hugepageLimits[0].pageSize: '2M' is not a page size like \"2MB\""),
    ({"memory": {"limit": 100, "swap": 50}},
     "linux.resources.memory.swap: 50 is below memory.limit 100 (swap is memory+swap)"),
])
def test_bad_values_name_the_field(res, message):
    for planner in (v1.planned_writes, v2.planned_writes):
        with pytest.raises(InvalidArgument) as err:
            planner(res)
        assert str(err.value) == message


def test_unified_keys_need_cgroup_v2_and_a_file_name():
    with pytest.raises(InvalidArgument, match="^linux.resources.unified: needs cgroup v2"):
        v1.planned_writes({"unified": {"memory.high": "1"}})
    with pytest.raises(InvalidArgument, match=r"^linux.resources.unified.\.\./x: "):
        v2.planned_writes({"unified": {"../x": "1"}})


@given(st.integers(min_value=2, max_value=262144), st.integers(min_value=2, max_value=262144))
def test_shares_to_weight_is_monotonic_and_in_range(a, b):
    wa, wb = R.shares_to_weight(a), R.shares_to_weight(b)
    assert 1 <= wa <= 10000 and 1 <= wb <= 10000
    assert (a <= b) <= (wa <= wb)


@given(st.lists(st.tuples(st.integers(0, 64), st.integers(0, 8)), min_size=1, max_size=5))
def test_cpu_lists_round_trip(ranges):
    text = ",".join("%d-%d" % (lo, lo + n) if n else "%d" % lo for lo, n in ranges)
    assert R.cpu_list({"cpus": text}, "cpus", "cpu.cpus") == text
    expected = [c for lo, n in ranges for c in range(lo, lo + n + 1)]
    assert R.parse_cpu_list(text) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 64), 1 << 64) | st.text(max_size=6)
    | st.sampled_from(["0-1", "max", "2MB", "rwm", "c", "a"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["limit", "swap", "shares", "quota", "period", "cpus", "weight", "major",
                         "minor", "rate", "allow", "type", "access", "pageSize", "hcaHandles",
                         "memory.high", "weightDevice", "throttleReadBpsDevice", "classID"]),
        inner, max_size=4),
    max_leaves=12)
sections = st.dictionaries(
    st.sampled_from(["memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma",
                     "unified", "devices"]), json_values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(sections)
def test_any_input_is_planned_or_refused_in_one_line(res):
    for planner in (v1.planned_writes, v2.planned_writes):
        try:
            writes = planner(res)
        except PyruncError as e:
            assert "\n" not in str(e) and str(e).startswith(("linux.resources", "cgroup controller"))
            continue
        for controller, file, value, what in writes:
            assert (isinstance(controller, str) or file == v2.DEVICE_PROGRAM) and file and what
