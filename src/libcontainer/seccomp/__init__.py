"""Seccomp: ``linux.seccomp`` compiled to BPF with libseccomp, and the seccomp agent protocol.

    from pyrunc.libcontainer import seccomp
    program = seccomp.compile(spec.linux.seccomp)        # -> plan.Seccomp (or None)
    seccomp.send_to_listener(path, notify_fd, state, metadata)

Importing this package is cheap; libseccomp (``pyrunc._seccomp``) loads on the first compile.
Callers import the package only when a config has a seccomp section.
"""
from pyrunc.libcontainer.seccomp.filter import (
    compile, features, load_filter, syscall_names, version, version_string)
from pyrunc.libcontainer.seccomp.notify import process_state, send_to_listener

__all__ = ["compile", "features", "load_filter", "syscall_names", "version", "version_string",
           "process_state", "send_to_listener"]
