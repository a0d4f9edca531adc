"""The layers' imports follow docs/architecture.md, and every libc call goes through the native
core: read from the source itself (every import statement of src/, top level or in a function,
parsed with ast), so an import added anywhere is seen."""
import ast
import os

import pyrunc

SRC = os.path.dirname(os.path.abspath(pyrunc.__file__))

# docs/architecture.md, "Import rules": what each layer may import of pyrunc, besides itself.
# "pyrunc" is the top package (its __version__); "_native" stands for the pyrunc._* modules.
# "patternmatcher" (.dockerignore rules, used by the engine's builder and the CLI) is a leaf
# like "errors": every layer may import it, and it imports only "errors".
ALLOWED = {
    "libcontainer": {"pyrunc", "_native", "errors", "patternmatcher"},
    "containerd": {"pyrunc", "libcontainer", "errors", "patternmatcher"},
    "engine": {"pyrunc", "containerd", "libcontainer", "errors", "patternmatcher"},
    "cli": {"errors", "patternmatcher"},
    "errors": set(),
    "patternmatcher": {"errors"},
}

# modules that reach libc, or dlopen anything, without the native core's cffi modules
FOREIGN_CALLS = {"ctypes", "_ctypes", "_cffi_backend", "cffi"}


def _modules():
    """(path relative to src/, its package as a list of names, parsed tree) of every module."""
    for top, dirs, files in os.walk(SRC):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(top, name)
                rel = os.path.relpath(path, SRC)
                package = os.path.dirname(rel).split(os.sep) if os.path.dirname(rel) else []
                with open(path, encoding="utf-8") as f:
                    yield rel, package, ast.parse(f.read(), path)


def _is_submodule(name):
    base = os.path.join(SRC, name)
    return os.path.isdir(base) or os.path.exists(base + ".py") or any(
        f.startswith(name + ".") and f.endswith(".so") for f in os.listdir(SRC))


def imports(package, tree):
    """(line, absolute module name) of every import statement of a module in ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["pyrunc"] + package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            if module == "pyrunc":
                for alias in node.names:
                    yield node.lineno, ("pyrunc." + alias.name if _is_submodule(alias.name)
                                        else "pyrunc")
            else:
                yield node.lineno, module


def layer_of(rel):
    """The layer a file of src/ belongs to: its top folder, or errors/pyrunc for the top."""
    first = rel.split(os.sep)[0]
    if first.endswith(".py"):
        return first[:-3] if first != "__init__.py" else "pyrunc"
    return first


def target_of(module):
    """What a pyrunc import reaches: a layer, "errors", "_native" or "pyrunc"; None if foreign."""
    parts = module.split(".")
    if parts[0] != "pyrunc":
        return None
    if len(parts) == 1:
        return "pyrunc"
    return "_native" if parts[1].startswith("_") else parts[1]


def test_the_source_is_read():
    found = {rel: [m for _, m in imports(package, tree)] for rel, package, tree in _modules()}
    assert "pyrunc.errors" in found[os.path.join("libcontainer", "specconv", "mounts.py")]
    assert {"libcontainer", "containerd", "engine", "cli", "errors"} <= {
        layer_of(rel) for rel in found}


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for rel, package, tree in _modules():
        layer = layer_of(rel)
        if layer == "pyrunc":
            allowed = set(ALLOWED)   # the top package may name any of them (it imports none)
        else:
            allowed = ALLOWED[layer] | {layer}
        for line, module in imports(package, tree):
            target = target_of(module)
            if target is not None and target not in allowed:
                wrong.append("%s:%d imports %s (%s may import %s)"
                             % (rel, line, module, layer, ", ".join(sorted(allowed))))
    assert wrong == []


def test_no_libc_call_outside_the_native_core():
    """No ctypes and no raw cffi backend anywhere in src/: libc is reached through the
    pyrunc._* modules built from native/."""
    wrong = []
    for rel, package, tree in _modules():
        for line, module in imports(package, tree):
            if module.split(".")[0] in FOREIGN_CALLS:
                wrong.append("%s:%d imports %s" % (rel, line, module))
    assert wrong == []


def test_the_rules_can_fail():
    """The reading sees an import wherever it is written, relative ones included."""
    def targets(package, code):
        return [target_of(m) for _, m in imports(package, ast.parse(code))]

    assert targets(["libcontainer"], "def f():\n    from pyrunc.engine import images\n") == [
        "engine"]
    assert targets(["containerd", "runtime"], "from ...cli import x\n") == ["cli"]
    assert targets(["engine"], "from .. import _core, __version__\n") == ["_native", "pyrunc"]
    assert [m for _, m in imports([], ast.parse("import ctypes.util\n"))] == ["ctypes.util"]
    assert "engine" not in ALLOWED["libcontainer"] and "cli" not in ALLOWED["containerd"]
