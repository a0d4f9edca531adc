"""The OCI runtime configuration: a typed model of ``config.json`` (runtime-spec 1.0 to 1.2).

    from pyrunc.libcontainer import configs
    spec = configs.load(bundle_dir)                     # bundle/config.json -> Spec
    spec = configs.from_dict(doc, source="config.json")
    errors = configs.validate_schema(doc)               # JSON Schema validation (jsonschema)

Every JSON key is an attribute in snake_case (``spec.process.user.additional_gids``,
``spec.linux.uid_mappings[0].container_id``, ``spec.hooks.create_runtime[0].path``). Absent
objects are None, absent arrays [], absent maps {}, absent booleans False, other absent scalars
None. ``linux.resources``, ``linux.seccomp``, ``linux.intel_rdt`` and ``linux.personality`` are
checked but kept as dicts; ``spec.raw`` is the whole document.

Bad input raises ``pyrunc.errors.InvalidArgument`` (``ConfigError``) with one line naming the file,
the JSON path and the reason: ``config.json: process.args: must be a non-empty array``.
"""
from pyrunc.libcontainer.configs.fields import ConfigError, snake_case
from pyrunc.libcontainer.configs.load import from_dict, from_json, load
from pyrunc.libcontainer.configs.spec import (
    Capabilities, ConsoleSize, CPUAffinity, Device, Hook, Hooks, IDMapping, IOPriority, Linux,
    Mount, Namespace, NetDevice, Process, Rlimit, Root, Scheduler, Spec, TimeOffset, User)


def validate_schema(doc):
    """Validate ``doc`` against the project's JSON Schema; a list of ``path: reason`` lines.

    Imports jsonschema (slow), so it is for tools and tests, not for ``pyrunc create``.
    """
    from pyrunc.libcontainer.configs.schema import validate
    return validate(doc)


__all__ = ["load", "from_dict", "from_json", "validate_schema", "ConfigError", "snake_case",
           "Spec", "Root", "Mount", "Process", "User", "Capabilities", "Rlimit", "ConsoleSize",
           "Scheduler", "IOPriority", "CPUAffinity", "Hooks", "Hook", "Linux", "IDMapping",
           "Namespace", "Device", "TimeOffset", "NetDevice"]
