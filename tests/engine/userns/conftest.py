"""Test-written /etc/subuid, /etc/subgid, /etc/passwd and /etc/group, bound over the host's in
the suite's private mount namespace (the host's files are never edited) and unmounted after."""
import os
import subprocess

import pytest

# users and groups the tests give ranges to: name -> (uid, gid) and name -> gid
USERS = {"dockremap": (901, 901), "alice": (1500, 1500), "bob": (1700, 1600)}
GROUPS = {"dockremap": 901, "alice": 1500, "staff2": 1600}


def _etc_text(path, extra, existing):
    with open(path) as f:
        lines = [line for line in f.read().splitlines()
                 if line and line.split(":", 1)[0] not in existing]
    return "\n".join(lines + extra) + "\n"


@pytest.fixture
def host_ids(tmp_path, private_mount_ns):
    """host_ids(subuid, subgid, users=USERS, groups=GROUPS): bind test files over the four
    files (again and again: later calls rewrite them in place)."""
    files = {}

    def write(subuid="", subgid="", users=USERS, groups=GROUPS):
        passwd = ["%s:x:%d:%d::/nonexistent:/bin/false" % (n, u, g)
                  for n, (u, g) in users.items()]
        group = ["%s:x:%d:" % (n, g) for n, g in groups.items()]
        texts = {"/etc/subuid": subuid, "/etc/subgid": subgid}
        for target, extra, names in (("/etc/passwd", passwd, users),
                                     ("/etc/group", group, groups)):
            # the host's entries (read before our bind) minus the names we define
            source = files.get(target, (None, target))[1]
            texts[target] = _etc_text(source, extra, set(names) | set(USERS) | set(GROUPS))
        for target, text in texts.items():
            if target not in files:
                copy = tmp_path / ("etc" + target.replace("/", "-"))
                original = tmp_path / ("host" + target.replace("/", "-"))
                with open(target) as f:
                    original.write_text(f.read())
                copy.write_text(text)
                subprocess.run(["mount", "--bind", str(copy), target], check=True)
                files[target] = (copy, str(original))
            else:
                files[target][0].write_text(text)

    yield write
    for target in files:
        subprocess.run(["umount", target], check=False)
    assert not any(" %s " % t in open("/proc/self/mountinfo").read() for t in files)


@pytest.fixture
def shared_tmp():
    """A directory under /tmp that the remapped root may pass through (pytest's are 0700)."""
    import shutil
    import tempfile
    path = tempfile.mkdtemp(prefix="pyrunc-userns-")
    os.chmod(path, 0o711)
    yield path
    subprocess.run(["sh", "-c", "grep -o ' %s[^ ]*' /proc/self/mountinfo | sort -r | "
                    "xargs -r -n1 umount -l" % path], check=False)
    shutil.rmtree(path, ignore_errors=True)
