"""cpu/node lists and hugepage sizes are checked without regular expressions (the module is on
the hot path); these properties hold the checks to the grammar they replace."""
import re

from hypothesis import given, strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.libcontainer.cgroups import resources as R

CPU_LIST = re.compile(r"^\s*([0-9]+(-[0-9]+)?)(\s*,\s*[0-9]+(-[0-9]+)?)*\s*\Z")
PAGE_SIZE = re.compile(r"^[0-9]+[KMG]B\Z")

list_text = st.text(alphabet="0123456789-, \t\n5\u0663\u00a0", max_size=12)


@given(list_text)
def test_cpu_list_grammar(value):
    assert R._is_cpu_list(value) == bool(CPU_LIST.match(value))


@given(st.lists(st.tuples(st.integers(0, 64), st.integers(0, 64)), min_size=1, max_size=4),
       st.sampled_from([",", " , ", ",\t"]))
def test_cpu_list_ranges_are_accepted_or_backwards(ranges, sep):
    value = sep.join("%d-%d" % r for r in ranges)
    if all(a <= b for a, b in ranges):
        assert R.cpu_list({"cpus": value}, "cpus", "cpu.cpus") == value
    else:
        try:
            R.cpu_list({"cpus": value}, "cpus", "cpu.cpus")
        except InvalidArgument as e:
            assert "backwards" in str(e)
        else:
            raise AssertionError("a backwards range was accepted")


@given(st.text(alphabet="0123456789KMGB\u0663 \n", max_size=6))
def test_hugepage_size_grammar(size):
    res = {"hugepageLimits": [{"pageSize": size, "limit": 1}]}
    try:
        ok = R.hugepage_limits(res) == [(size, 1)]
    except InvalidArgument:
        ok = False
    assert ok == bool(PAGE_SIZE.match(size))
