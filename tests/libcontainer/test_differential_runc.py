"""Which configs runc and pyrunc accept: the same mutated config through both, compared.

The config loader and the JSON Schema come from the same declarations, so their agreement proves
little; runc is the oracle from outside. The base is runc's own example (``runc spec``, running
``true``); each case changes one thing in it: a value deleted, replaced by a value of another
type or an out-of-range number or a bad string, or an unknown field added. Both runtimes run
``create`` on it (each in its own mount namespace, with its own state root), then ``delete
--force``. Accepted means ``create`` exited 0.

Every difference must fall in a class of ``CLASSES``, each explained in docs/unsupported.md
("Differences from runc in what configs are accepted"); a new, unexplained difference fails the
test. Classes of kind "defect" are pyrunc bugs not fixed yet: they pass, with a warning naming
them. The counts are printed (``-s``) and written to ``differential-counts.json`` in the test's
tmp dir.

crun is a second oracle where it runs (it refuses hybrid cgroup hosts like this one:
tests/vm/test_v2_vm.py runs it in the cgroup v2 VM): each case goes through crun, runc and
pyrunc, and pyrunc's and runc's differences from crun must fall in ``CRUN_CLASSES``
(docs/unsupported.md, "Differences from crun"); the counts go to
``differential-counts-crun.json``.

Hypothesis draws ``PYRUNC_DIFF_EXAMPLES`` cases (100 by default: about 30 s),
derandomized so CI sees the same ones; ``PYRUNC_DIFF_ALL=1`` runs every case instead (about
1500, a quarter of an hour).
"""
import copy
import json
import os
import re
import subprocess
import tempfile
import uuid
import warnings

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from support import need

pytestmark = [pytest.mark.peer, pytest.mark.usefixtures("private_mount_ns")]

EXAMPLES = int(os.environ.get("PYRUNC_DIFF_EXAMPLES", "100"))
WRONG_TYPES = [None, True, 0, -1, 1.5, "x", "", [], {}, 2 ** 64]
OUT_OF_RANGE = [-1, 2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, -2 ** 63 - 1]
BAD_STRINGS = ["nonsense", "/"]
TIMEOUT = 30


class Case:
    """One change to the base config: ``delete`` the value at ``path``, ``replace`` it with
    ``value``, or ``add`` the unknown field at ``path``."""

    def __init__(self, path: tuple, action: str, value: object = None) -> None:
        self.path, self.action, self.value = path, action, value

    def apply(self, base: dict) -> dict:
        doc = copy.deepcopy(base)
        parent = doc
        for p in self.path[:-1]:
            parent = parent[p]
        if self.action == "delete":
            del parent[self.path[-1]]
        else:
            parent[self.path[-1]] = self.value
        return doc

    def __repr__(self) -> str:
        where = "".join("[%d]" % p if isinstance(p, int) else "." + p for p in self.path)
        return "%s %s%s" % (self.action, where[1:] if where.startswith(".") else where,
                            "" if self.action == "delete" else " = " + json.dumps(self.value))


def _locations(doc, path=()):
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _locations(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _locations(v, path + (i,))


def cases(base: dict) -> list:
    """Every single change this test makes to ``base``, in a fixed order."""
    out = [Case(("unknownField",), "add", 1)]
    for path in _locations(base):
        if not path:
            continue
        value = base
        for p in path:
            value = value[p]
        out.append(Case(path, "delete"))
        out.extend(Case(path, "replace", w) for w in WRONG_TYPES if type(w) is not type(value))
        if type(value) is int:
            out.extend(Case(path, "replace", w) for w in OUT_OF_RANGE)
        if type(value) is str:
            out.extend(Case(path, "replace", w) for w in BAD_STRINGS)
        if isinstance(value, dict):
            out.append(Case(path + ("unknownField",), "add", 1))
    return out


class Outcome:
    def __init__(self, accepted: bool | None, message: str) -> None:
        self.accepted, self.message = accepted, message

    def __repr__(self) -> str:
        word = {True: "accepts", False: "refuses", None: "hangs"}[self.accepted]
        return word + (": " + self.message[-200:] if self.message else "")


def create(binary: str, root: str, bundle: str, cid: str) -> Outcome:
    """``create`` then ``delete --force``, in a mount namespace of its own (a config without a
    mount namespace sets up in the runtime's). stderr goes to a file: the container inherits it."""
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(["unshare", "--mount", "--propagation", "private", binary,
                                   "--root", root, "create", "--bundle", bundle, cid],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, timeout=TIMEOUT)
            accepted = proc.returncode == 0
        except subprocess.TimeoutExpired:
            accepted = None
        err.seek(0)
        message = err.read().decode(errors="replace").strip()
    subprocess.run([binary, "--root", root, "delete", "--force", cid], capture_output=True,
                   timeout=TIMEOUT)
    return Outcome(accepted, message)


# -- the explained classes of differences (docs/unsupported.md has one row per key) ------------

def _get(doc, *keys):
    """The value at ``keys`` of a mutated doc, or None where it is missing or mistyped."""
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


def _path(case, *prefix):
    return case.path[:len(prefix)] == prefix


def _null(case, doc, runc, ours):
    return (case.action == "replace" and case.value is None and runc.accepted
            and not ours.accepted and ": must be " in ours.message)


def _required(case, doc, runc, ours):
    return case.action == "delete" and runc.accepted and ours.message.endswith(": is required")


def _capability(case, doc, runc, ours):
    return (_path(case, "process", "capabilities") and isinstance(case.value, str)
            and runc.accepted and "unknown capability" in ours.message)


def _id_range(case, doc, runc, ours):
    return (case.path in (("process", "user", "uid"), ("process", "user", "gid"))
            and case.value == 2 ** 31 and ours.accepted
            and "uids and gids must be in range 0-2147483647" in runc.message)


def _device_access(case, doc, runc, ours):
    if not (_path(case, "linux", "resources", "devices") and case.path[-1] == "access"):
        return False
    if case.action == "delete":
        return ours.accepted and "access at 0 field cannot be empty" in runc.message
    return runc.accepted and "does not match ^[rwm]*$" in ours.message


def _path_lookup(case, doc, runc, ours):
    env = _get(doc, "process", "env")
    no_path = not isinstance(env, list) or not any(str(e).startswith("PATH=") for e in env)
    return no_path and ours.accepted and "executable file not found in $PATH" in runc.message


def _no_mount_ns(case, doc, runc, ours):
    namespaces = _get(doc, "linux", "namespaces")
    return (isinstance(namespaces, list)
            and not any(isinstance(n, dict) and n.get("type") == "mount" for n in namespaces)
            and ours.accepted and "without a private MNT namespace" in runc.message)


CLASSES = [
    # (key, kind, predicate(case, mutated doc, runc's outcome, pyrunc's outcome))
    ("null", "explained", _null),
    ("required", "explained", _required),
    ("unknown-capability", "explained", _capability),
    ("id-range", "explained", _id_range),
    ("device-access", "explained", _device_access),
    ("path-lookup", "explained", _path_lookup),
    ("no-mount-namespace", "explained", _no_mount_ns),
]


def classify(case: Case, doc: dict, runc: Outcome, ours: Outcome) -> str | None:
    for key, _kind, predicate in CLASSES:
        if predicate(case, doc, runc, ours):
            return key
    return None


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """runc's example config, running ``true`` without a terminal."""
    work = tmp_path_factory.mktemp("runc-spec")
    subprocess.run([need("runc"), "spec"], cwd=str(work), check=True)
    spec = json.loads((work / "config.json").read_text())
    spec["process"]["args"] = ["true"]
    spec["process"]["terminal"] = False
    return spec


def test_cases_cover_every_kind_of_change(base):
    """The case list itself: every location of the base is deleted, retyped and, for objects,
    given an unknown field."""
    all_cases = cases(base)
    assert len(all_cases) > 1000
    kinds = {(c.action, type(c.value).__name__) for c in all_cases}
    assert {("delete", "NoneType"), ("add", "int"), ("replace", "NoneType"),
            ("replace", "dict"), ("replace", "list"), ("replace", "float")} <= kinds
    uid = [json.dumps(c.value) for c in all_cases if c.path == ("process", "user", "uid")]
    assert {json.dumps(v) for v in (2 ** 31, 2 ** 63, 2 ** 64, -1, None)} <= set(uid)


def _bundle(tmp_path, busybox_rootfs):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    subprocess.run(["cp", "-al", busybox_rootfs, str(bundle / "rootfs")], check=True)
    return bundle


def _pyrunc_create(pyrunc_bin, root, bundle, cid, case):
    """pyrunc's ``create``, checked for what it must do whatever the oracle says: leave no state
    behind when it refuses, and say why in one line (and maybe a hint)."""
    ours = create(pyrunc_bin, root, bundle, cid)
    left = os.listdir(root) if os.path.isdir(root) else []
    assert cid not in left, "%r: pyrunc left its state behind" % case
    if ours.accepted is False:
        first, *hints = ours.message.splitlines()
        assert first.startswith("pyrunc: ") and all(
            h.startswith("pyrunc: hint: ") for h in hints) and len(hints) <= 1, (
            "%r: not a one-line error: %r" % (case, ours.message))
    return ours


def _drive(base, check):
    """``check`` every case (``PYRUNC_DIFF_ALL``) or those hypothesis draws, derandomized."""
    if os.environ.get("PYRUNC_DIFF_ALL"):
        for case in cases(base):
            check(case)
        return

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(cases(base)))
    def generated(case):
        check(case)
    generated()


def _tally(results, classes):
    """The counts of ``results`` [(case, oracle's outcome, subject's outcome, class key or
    None)], and the unexplained differences; known defects are warned about."""
    differences = [r for r in results if r[1].accepted != r[2].accepted or r[1].accepted is None]
    unexplained = [r for r in differences if r[3] is None]
    by_class = {}
    for r in differences:
        if r[3]:
            by_class[r[3]] = by_class.get(r[3], 0) + 1
    counts = {"configs": len(results), "agreements": len(results) - len(differences),
              "explained differences": len(differences) - len(unexplained),
              "unexplained differences": len(unexplained), "by class": by_class}
    kinds = dict((c[0], c[1]) for c in classes)
    defects = sorted(k for k in by_class if kinds[k] == "defect")
    if defects:
        warnings.warn("known defects seen beside the oracle (docs/unsupported.md): %s"
                      % ", ".join(defects))
    return counts, differences, unexplained


def _report(title, oracle, subject, results, classes):
    counts, differences, unexplained = _tally(results, classes)
    print("\n%s: %s" % (title, json.dumps(counts)))
    for case, theirs, ours, key in differences:
        print("  %s [%s]: %s %r; %s %r" % (case, key or "UNEXPLAINED", oracle, theirs, subject,
                                          ours))
    return counts, unexplained


def test_runc_and_pyrunc_accept_the_same_configs(base, tmp_path, pyrunc_bin, busybox_rootfs):
    runc = need("runc")
    bundle = _bundle(tmp_path, busybox_rootfs)
    roots = {"runc": str(tmp_path / "state-runc"), "pyrunc": str(tmp_path / "state-pyrunc")}
    results = []

    def check(case):
        doc = case.apply(base)
        (bundle / "config.json").write_text(json.dumps(doc))
        cid = "diff-" + uuid.uuid4().hex[:10]
        theirs = create(runc, roots["runc"], str(bundle), cid)
        ours = _pyrunc_create(pyrunc_bin, roots["pyrunc"], str(bundle), cid, case)
        same = theirs.accepted == ours.accepted and theirs.accepted is not None
        results.append((case, theirs, ours, None if same else classify(case, doc, theirs, ours)))

    _drive(base, check)
    counts, unexplained = _report("runc vs pyrunc", "runc", "pyrunc", results, CLASSES)
    (tmp_path / "differential-counts.json").write_text(json.dumps(counts, indent=1) + "\n")
    assert not unexplained, "differences from runc in no explained class:\n" + "\n".join(
        "%r: runc %r; pyrunc %r" % r[:3] for r in unexplained)
    assert counts["agreements"] > 0


# -- crun as the oracle (it refuses hybrid cgroup hosts: tests/vm runs this in the cgroup v2 VM) --

def _json_kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


TYPE_ERROR = re.compile(r": must be an? (boolean|integer|string|array|non-empty array|object)$")
GO_TYPE_ERROR = re.compile(r"json: cannot unmarshal (\w+) into Go ")


def _crun_mistyped(case, doc, crun, other):
    """crun reads a value of a JSON type it does not expect as absent; the others refuse it."""
    if case.action != "replace" or not crun.accepted or other.accepted is not False:
        return False
    ours = TYPE_ERROR.search(other.message.splitlines()[0] if other.message else "")
    if ours:
        named = {"integer": "number", "non-empty array": "array"}.get(ours.group(1),
                                                                       ours.group(1))
        return named != _json_kind(case.value)
    theirs = GO_TYPE_ERROR.search(other.message)
    return bool(theirs) and {"bool": "boolean"}.get(theirs.group(1), theirs.group(1)) == (
        _json_kind(case.value))


def _crun_required(case, doc, crun, other):
    return crun.accepted and other.accepted is False and (
        (case.action == "delete" and other.message.endswith(": is required"))
        or (case.path == ("process", "args") and "args must not be empty" in other.message))


def _crun_oci_version(case, doc, crun, other):
    return (case.path == ("ociVersion",) and crun.accepted is False and other.accepted
            and ("unknown version specified" in crun.message
                 or "error loading config.json" in crun.message))


def _crun_capability(case, doc, crun, other):
    return (_path(case, "process", "capabilities") and isinstance(case.value, str)
            and crun.accepted and "unknown capability" in other.message)


def _crun_path_lookup(case, doc, crun, other):
    env = _get(doc, "process", "env")
    no_path = not isinstance(env, list) or not any(str(e).startswith("PATH=") for e in env)
    return (no_path and other.accepted and crun.accepted is False
            and re.search(r"executable file .* not found in \$PATH", crun.message) is not None)


def _crun_env(case, doc, crun, other):
    return (_path(case, "process", "env") and len(case.path) == 3 and crun.accepted
            and "invalid environment variable" in other.message)


def _crun_no_proc(case, doc, crun, other):
    mounts = doc.get("mounts")
    proc = isinstance(mounts, list) and any(
        isinstance(m, dict) and m.get("destination") == "/proc" and m.get("type") == "proc"
        for m in mounts)
    return _path(case, "mounts") and not proc and crun.accepted and other.accepted is False


def _crun_cwd(case, doc, crun, other):
    return (case.path == ("process", "cwd") and isinstance(case.value, str)
            and not case.value.startswith("/") and crun.accepted and other.accepted is False)


def _crun_device_access(case, doc, crun, other):
    return (_path(case, "linux", "resources", "devices") and crun.accepted
            and ("does not match ^[rwm]*$" in other.message
                 or "access at 0 field cannot be empty" in other.message))


def _crun_id_range(case, doc, crun, other):
    return (case.path in (("process", "user", "uid"), ("process", "user", "gid"))
            and case.value == 2 ** 31 and crun.accepted
            and "uids and gids must be in range 0-2147483647" in other.message)


def _crun_no_mount_ns(case, doc, crun, other):
    namespaces = _get(doc, "linux", "namespaces")
    return (isinstance(namespaces, list)
            and not any(isinstance(n, dict) and n.get("type") == "mount" for n in namespaces)
            and crun.accepted and "without a private MNT namespace" in other.message)


CRUN_CLASSES = [
    # (key, kind, the runtimes it is about, predicate(case, mutated doc, crun's, theirs));
    # docs/unsupported.md has one row per key
    ("mistyped", "explained", ("pyrunc", "runc"), _crun_mistyped),
    ("required", "explained", ("pyrunc", "runc"), _crun_required),
    ("oci-version", "explained", ("pyrunc", "runc"), _crun_oci_version),
    ("unknown-capability", "explained", ("pyrunc",), _crun_capability),
    ("path-lookup", "explained", ("pyrunc",), _crun_path_lookup),
    ("env-format", "explained", ("pyrunc", "runc"), _crun_env),
    ("no-proc", "explained", ("pyrunc", "runc"), _crun_no_proc),
    ("relative-cwd", "explained", ("pyrunc", "runc"), _crun_cwd),
    ("device-access", "explained", ("pyrunc", "runc"), _crun_device_access),
    ("id-range", "explained", ("runc",), _crun_id_range),
    ("no-mount-namespace", "explained", ("runc",), _crun_no_mount_ns),
]


def classify_crun(case: Case, doc: dict, crun: Outcome, other: Outcome, name: str) -> str | None:
    """The class of a difference between crun and ``name`` (pyrunc or runc), or None."""
    for key, _kind, names, predicate in CRUN_CLASSES:
        if name in names and predicate(case, doc, crun, other):
            return key
    return None


def test_crun_runc_and_pyrunc_accept_the_same_configs(base, tmp_path, pyrunc_bin,
                                                      busybox_rootfs):
    """crun as a second oracle: pyrunc against crun, and runc against crun, each difference in
    a class of ``CRUN_CLASSES`` (docs/unsupported.md, "Differences from crun")."""
    crun, runc = need("crun"), need("runc")
    bundle = _bundle(tmp_path, busybox_rootfs)
    roots = dict((name, str(tmp_path / ("state-" + name))) for name in ("crun", "runc", "pyrunc"))
    (bundle / "config.json").write_text(json.dumps(base))
    probe = create(crun, roots["crun"], str(bundle), "diff-" + uuid.uuid4().hex[:10])
    if not probe.accepted and "hybrid mode not supported" in probe.message:
        pytest.skip("crun refuses this hybrid cgroup host (tests/vm runs this test in the "
                    "cgroup v2 VM): " + probe.message)
    assert probe.accepted, "crun refuses runc's example config: %r" % probe
    results = {"pyrunc": [], "runc": []}

    def check(case):
        doc = case.apply(base)
        (bundle / "config.json").write_text(json.dumps(doc))
        cid = "diff-" + uuid.uuid4().hex[:10]
        theirs = create(crun, roots["crun"], str(bundle), cid)
        for name, outcome in (("runc", create(runc, roots["runc"], str(bundle), cid)),
                              ("pyrunc", _pyrunc_create(pyrunc_bin, roots["pyrunc"],
                                                        str(bundle), cid, case))):
            same = theirs.accepted == outcome.accepted and theirs.accepted is not None
            results[name].append((case, theirs, outcome, None if same else classify_crun(
                case, doc, theirs, outcome, name)))

    _drive(base, check)
    counts, unexplained = {}, []
    for name in ("pyrunc", "runc"):
        counts[name], left = _report("crun vs " + name, "crun", name, results[name],
                                     CRUN_CLASSES)
        unexplained += [(name,) + r[:3] for r in left]
    (tmp_path / "differential-counts-crun.json").write_text(json.dumps(counts, indent=1) + "\n")
    assert not unexplained, "differences from crun in no explained class:\n" + "\n".join(
        "%s: %r: crun %r; %s %r" % (r[0], r[1], r[2], r[0], r[3]) for r in unexplained)
    assert counts["pyrunc"]["agreements"] > 0 and counts["runc"]["agreements"] > 0


def test_a_difference_outside_the_classes_is_unexplained(base):
    """The classes are narrow: the same outcomes on an unrelated change, or the other way
    round, fall in none of them (so the comparison can fail)."""
    hostname = Case(("hostname",), "replace", "x" * 300)
    refused = Outcome(False, "pyrunc: config.json: hostname: too long")
    assert classify(hostname, hostname.apply(base), Outcome(True, ""), refused) is None
    uid = Case(("process", "user", "uid"), "replace", 2 ** 31)
    assert classify(uid, uid.apply(base), Outcome(True, ""), Outcome(False, "pyrunc: x")) is None
    null = Case(("hostname",), "replace", None)
    assert classify(null, null.apply(base), Outcome(False, "runc: x"), Outcome(True, "")) is None
    # the fixed defects are no longer allowed: no proc mount, a mount over /, no deny-all rule
    no_proc = Case(("mounts", 0), "delete")
    assert classify(no_proc, no_proc.apply(base), Outcome(False, "runc: x"),
                    Outcome(True, "")) is None
    over_root = Case(("mounts", 0, "destination"), "replace", "/")
    assert classify(over_root, over_root.apply(base), Outcome(False, "runc: x"),
                    Outcome(True, "")) is None
    no_rules = Case(("linux", "resources", "devices"), "replace", [])
    assert classify(no_rules, no_rules.apply(base), Outcome(True, ""), Outcome(
        False, "pyrunc: create device /dev/null: operation not permitted")) is None
    # and the ones the classes are for are recognised
    assert classify(null, null.apply(base), Outcome(True, ""), Outcome(
        False, "pyrunc: config.json: hostname: must be a string")) == "null"


def test_a_difference_from_crun_outside_the_classes_is_unexplained(base):
    """crun's classes are as narrow: each needs its own field, direction and message, and is
    about the runtimes it names."""
    hostname = Case(("hostname",), "replace", "x" * 300)
    refused = Outcome(False, "pyrunc: config.json: hostname: too long")
    assert classify_crun(hostname, hostname.apply(base), Outcome(True, ""), refused,
                         "pyrunc") is None
    # a type error for a value of the type named is no mistyped value
    retyped = Case(("hostname",), "replace", 0)
    same = Case(("hostname",), "replace", "x")
    message = Outcome(False, "pyrunc: config.json: hostname: must be a string")
    assert classify_crun(retyped, retyped.apply(base), Outcome(True, ""), message,
                         "pyrunc") == "mistyped"
    assert classify_crun(same, same.apply(base), Outcome(True, ""), message, "pyrunc") is None
    assert classify_crun(retyped, retyped.apply(base), Outcome(False, "crun: x"), message,
                         "pyrunc") is None
    go = Outcome(False, "json: cannot unmarshal number into Go struct field Spec.hostname")
    assert classify_crun(retyped, retyped.apply(base), Outcome(True, ""), go,
                         "runc") == "mistyped"
    assert classify_crun(same, same.apply(base), Outcome(True, ""), go, "runc") is None
    # a class is about the runtimes it names
    uid = Case(("process", "user", "uid"), "replace", 2 ** 31)
    range_error = Outcome(False, "uids and gids must be in range 0-2147483647")
    assert classify_crun(uid, uid.apply(base), Outcome(True, ""), range_error,
                         "runc") == "id-range"
    assert classify_crun(uid, uid.apply(base), Outcome(True, ""), range_error, "pyrunc") is None
    # proc still mounted at /proc: refusing another mount is no "no-proc"
    sysfs = Case(("mounts", 3), "delete")
    assert classify_crun(sysfs, sysfs.apply(base), Outcome(True, ""), Outcome(
        False, "pyrunc: x"), "pyrunc") is None
    no_proc = Case(("mounts", 0), "delete")
    assert classify_crun(no_proc, no_proc.apply(base), Outcome(True, ""), Outcome(
        False, "pyrunc: x"), "pyrunc") == "no-proc"
