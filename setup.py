"""Build and install pyrunc.

The importable package is ``pyrunc``; its subpackages live in the design card's folders:

    pyrunc               <- src/
    pyrunc.libcontainer  <- src/libcontainer/
    pyrunc.containerd    <- src/containerd/
    pyrunc.engine        <- src/engine/
    pyrunc.cli           <- src/cli/

Native code lives in native/:

* every ``native/build_<name>.py`` defines a cffi ``ffibuilder`` (API mode) and becomes the
  extension module ``pyrunc._<name>``;
* every ``native/programs/<name>.c`` is compiled into a small static executable installed as
  ``pyrunc/_libexec/<name>`` (helpers such as the per-container shim, which must not carry a
  Python interpreter).
"""
import glob
import os
import subprocess

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext
from distutils.command.build_scripts import build_scripts  # setuptools' own copy, once imported

HERE = os.path.dirname(os.path.abspath(__file__))


def cffi_modules():
    return sorted("%s:ffibuilder" % os.path.relpath(p, HERE)
                  for p in glob.glob(os.path.join(HERE, "native", "build_*.py")))


class BuildExtWithPrograms(build_ext):
    """build_ext that also compiles native/programs/*.c into pyrunc/_libexec/.

    A program is its one file, plus every ``native/<folder>/*.c`` of the folders that
    ``program_parts`` lists for it."""

    program_parts = {"pyrunc-shim": ["shim"]}

    def run(self):
        super().run()
        if self.inplace:
            out_dir = os.path.join(HERE, "src", "_libexec")
        else:
            out_dir = os.path.join(self.build_lib, "pyrunc", "_libexec")
        os.makedirs(out_dir, exist_ok=True)
        cc = os.environ.get("CC", "gcc")
        for source in sorted(glob.glob(os.path.join(HERE, "native", "programs", "*.c"))):
            name = os.path.splitext(os.path.basename(source))[0]
            target = os.path.join(out_dir, name)
            cmd = [cc, "-O2", "-Wall", "-Werror", "-static", "-s",
                   "-I", os.path.join(HERE, "native"), "-o", target, source]
            for folder in self.program_parts.get(name, ()):
                cmd += sorted(glob.glob(os.path.join(HERE, "native", folder, "*.c")))
            self.announce("compiling program %s" % name, level=2)
            subprocess.check_call(cmd)


class BuildScriptsWithLauncher(build_scripts):
    """build_scripts that also makes the ``pyrunc`` command: the static launcher
    native/programs/pyrunc-launch.c, which runs ``pyrunc-python`` (bin/pyrunc-python, whose
    ``#!python`` line the installer rewrites) with its interpreter executed from a read-only
    copy, so that no process pyrunc places in a container can write the host's interpreter."""

    def run(self) -> None:
        super().run()
        os.makedirs(self.build_dir, exist_ok=True)
        source = os.path.join(HERE, "native", "programs", "pyrunc-launch.c")
        self.announce("compiling the pyrunc command", level=2)
        subprocess.check_call([os.environ.get("CC", "gcc"), "-O2", "-Wall", "-Werror", "-static",
                               "-s", "-o", os.path.join(self.build_dir, "pyrunc"), source])


packages = ["pyrunc"] + ["pyrunc." + p for p in find_packages("src")]

setup(
    name="pyrunc",
    version="0.1.0",
    description="A layered container system: libcontainer, a runc-compatible runtime, "
                "an image engine and a docker-style CLI",
    python_requires=">=3.11",
    package_dir={"pyrunc": "src"},
    packages=packages,
    package_data={"pyrunc": ["_libexec/*"], "pyrunc.libcontainer": ["schema/*.json"],
                  "pyrunc.engine.imagespec": ["schema/*.json"]},
    setup_requires=["cffi>=1.15"],
    cffi_modules=cffi_modules(),
    install_requires=["cffi>=1.15", "pyroute2", "jsonschema", "requests", "zstandard"],
    extras_require={"test": ["pytest", "hypothesis", "mypy", "docker", "grpcio", "grpcio-tools"]},
    cmdclass={"build_ext": BuildExtWithPrograms, "build_scripts": BuildScriptsWithLauncher},
    # bin/pyrunc-python is run by the pyrunc command; bin/pydocker is a plain script (it starts
    # faster than a console_scripts wrapper)
    scripts=["bin/pyrunc-python", "bin/pydocker"],
    entry_points={"console_scripts": ["pydockerd = pyrunc.engine.dockerd:main"]},
    zip_safe=False,
)
