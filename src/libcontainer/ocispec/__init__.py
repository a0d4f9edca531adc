"""The OCI runtime configuration: a typed model of ``config.json`` (runtime-spec 1.0 to 1.2).

    from pyrunc.libcontainer import ocispec
    spec = ocispec.load(bundle_dir)                     # bundle/config.json -> Spec
    spec = ocispec.from_dict(doc, source="config.json")
    errors = ocispec.validate_schema(doc)               # JSON Schema validation (jsonschema)

Every JSON key is an attribute in snake_case (``spec.process.user.additional_gids``,
``spec.linux.uid_mappings[0].container_id``, ``spec.hooks.create_runtime[0].path``). Absent
objects are None, absent arrays [], absent maps {}, absent booleans False, other absent scalars
None. ``linux.resources``, ``linux.seccomp``, ``linux.intel_rdt`` and ``linux.personality`` are
checked but kept as dicts; ``spec.raw`` is the whole document.

Bad input raises ``pyrunc.errors.InvalidArgument`` (``ConfigError``) with one line naming the file,
the JSON path and the reason: ``config.json: process.args: must be a non-empty array``.

The loader and the JSON Schema accept the same documents (a hypothesis test checks it). Where
both differ from runc 1.1 (which decodes into Go structs and checks little), on purpose:

* ``ociVersion`` is any string, as in runc, but must be present (the spec requires it).
* ``null`` is not accepted for an absent value; Go would read it as absent.
* An integral float such as ``1.0`` counts as an integer (JSON Schema's rule); Go refuses it.
* Ranges and enums are checked up front (uid/gid are uint32, ``oomScoreAdj`` is -1000..1000,
  namespace types, seccomp actions, ...), where runc fails later or passes them on.
* NUL is refused in every string that reaches C (all but ``ociVersion`` and annotations), and
  lone surrogates everywhere (the schema cannot express that one); a document above 8 MiB or
  nested deeper than 100 levels is refused (``ocispec.load``).
* Unknown keys are ignored, as in runc.

    python -m pyrunc.libcontainer.ocispec BUNDLE     # load, then list every schema error
"""
from __future__ import annotations

from pyrunc.libcontainer.ocispec.fields import ConfigError, snake_case
from pyrunc.libcontainer.ocispec.load import CONFIG_FILE, from_dict, from_json, load
from pyrunc.libcontainer.ocispec.spec import (
    Capabilities, ConsoleSize, CPUAffinity, Device, Hook, Hooks, IDMapping, IOPriority, Linux,
    Mount, Namespace, NetDevice, Process, Rlimit, Root, Scheduler, Spec, TimeOffset, User)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def validate_schema(doc: Any) -> Any:
    """Validate ``doc`` against the project's JSON Schema; a list of ``path: reason`` lines.

    Imports jsonschema (slow), so it is for tools and tests, not for ``pyrunc create``.
    """
    from pyrunc.libcontainer.ocispec.schema import validate
    return validate(doc)


__all__ = ["CONFIG_FILE", "load", "from_dict", "from_json", "validate_schema", "ConfigError",
           "snake_case", "Spec", "Root", "Mount", "Process", "User", "Capabilities", "Rlimit", "ConsoleSize",
           "Scheduler", "IOPriority", "CPUAffinity", "Hooks", "Hook", "Linux", "IDMapping",
           "Namespace", "Device", "TimeOffset", "NetDevice"]
