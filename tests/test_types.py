"""Type hints: every public function of src/ is annotated, and mypy finds no error in src/.

mypy runs with pyproject.toml's ``[tool.mypy]`` (``check_untyped_defs``,
``disallow_incomplete_defs``) over ``-p pyrunc``: src/ is the package ``pyrunc``, so a directory
holding the link ``pyrunc -> src`` goes on MYPYPATH. A missing mypy is a broken install (it is
in the test extras), so it fails rather than skips.
"""
import ast
import os
import subprocess
import sys

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(TOP, "src")


def _mypy(tmp_path, package_dir):
    try:
        import mypy  # noqa: F401
    except ImportError:
        pytest.fail("mypy is not installed: run scripts/install.sh (it is a test extra)")
    path = tmp_path / "path"
    path.mkdir()
    (path / "pyrunc").symlink_to(package_dir)
    env = dict(os.environ, MYPYPATH=str(path))
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                           os.path.join(TOP, "pyproject.toml"), "--cache-dir",
                           str(tmp_path / "cache"), "--no-error-summary", "--hide-error-context",
                           "-p", "pyrunc"],
                          cwd=TOP, env=env, capture_output=True, text=True)


def test_mypy_finds_no_error_in_src(tmp_path):
    r = _mypy(tmp_path, SRC)
    errors = [line for line in r.stdout.splitlines() if ": error:" in line]
    assert r.returncode == 0 and not errors, "\n".join(errors[:60]) or r.stdout + r.stderr


def test_mypy_check_can_fail(tmp_path):
    """The same check on a package with a type error reports it: the check above is live."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f(x: int) -> str:\n    return x\n")
    (pkg / "half.py").write_text("def g(x: int, y):\n    return 1\n")
    (pkg / "body.py").write_text("def h():\n    return 'a' + 1\n")
    r = _mypy(tmp_path, pkg)
    assert r.returncode == 1
    assert "errors.py:2: error: Incompatible return value type" in r.stdout
    assert "half.py:1: error: Function is missing a type annotation" in r.stdout  # incomplete
    assert "body.py:2: error: Unsupported operand types" in r.stdout   # untyped bodies checked


def _public_functions(tree):
    """(qualified name, node) of every public function, method and public class __init__:
    the module's own and those of its public classes (nested ones included), not functions
    defined inside functions."""
    def visit(body, prefix, in_class):
        for node in body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from visit(node.body, prefix + node.name + ".", True)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not node.name.startswith("_") or (in_class and node.name == "__init__"):
                    yield prefix + node.name, node, in_class
            elif isinstance(node, (ast.If, ast.Try)):
                # definitions under `if TYPE_CHECKING:` / `try: ... except ImportError:`
                for part in (node.body, getattr(node, "orelse", []),
                             *[h.body for h in getattr(node, "handlers", [])]):
                    yield from visit(part, prefix, in_class)
    yield from visit(tree.body, "", False)


def _missing(node, method):
    args = node.args
    positional = args.posonlyargs + args.args
    decorators = {getattr(d, "id", getattr(d, "attr", None)) for d in node.decorator_list}
    if method and "staticmethod" not in decorators and positional:
        positional = positional[1:]        # self / cls
    missing = [a.arg for a in positional + args.kwonlyargs if a.annotation is None]
    missing += ["*" + a.arg for a in (args.vararg,) if a is not None and a.annotation is None]
    missing += ["**" + a.arg for a in (args.kwarg,) if a is not None and a.annotation is None]
    if node.returns is None:
        missing.append("return")
    return missing


def unannotated(root):
    out = []
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for qualname, node, method in _public_functions(tree):
                missing = _missing(node, method)
                if missing:
                    out.append("%s:%d %s: %s" % (os.path.relpath(path, TOP), node.lineno,
                                                 qualname, ", ".join(missing)))
    return out


def test_every_public_function_is_annotated():
    missing = unannotated(SRC)
    assert not missing, "%d unannotated:\n%s" % (len(missing), "\n".join(missing))


def test_annotation_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text(
        "class A:\n"
        "    def __init__(self, x):\n        pass\n"
        "    def ok(self, x: int) -> int:\n        return x\n"
        "    @staticmethod\n    def s(x: int):\n        return x\n"
        "    def _private(self, x):\n        pass\n"
        "def f(*args: int, **kw) -> None:\n    def inner(y):\n        pass\n"
        "class _Hidden:\n    def g(self, y):\n        pass\n")
    assert unannotated(str(tmp_path)) == [
        "%s:2 A.__init__: x, return" % os.path.relpath(tmp_path / "m.py", TOP),
        "%s:7 A.s: return" % os.path.relpath(tmp_path / "m.py", TOP),
        "%s:11 f: **kw" % os.path.relpath(tmp_path / "m.py", TOP)]
