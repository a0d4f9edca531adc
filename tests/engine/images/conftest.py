import pytest

from pyrunc.engine.images import ImageService, build_builtin


@pytest.fixture
def svc(tmp_path, private_mount_ns):
    return ImageService(str(tmp_path / "engine"))


@pytest.fixture
def busybox(svc):
    return build_builtin(svc, "busybox")
