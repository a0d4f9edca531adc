"""Image operations over a real content store and snapshotter."""
import io
import json
import os
import subprocess
import tarfile
import time

import pytest

from engine.layers.tarbuild import entry, make_tar
from pyrunc.engine.images import ImageService, build_builtin, import_image, load, save
from pyrunc.engine.images.builtin import HELLO
from pyrunc.engine.snapshots.mount import mount_all, unmount
from pyrunc.errors import Conflict, InvalidArgument, NotFound, SystemFailure
from support import need


def rootfs_tar(files, compression=None):
    return make_tar([entry(name, data=data) for name, data in files.items()], compression)


def test_builtin_images_are_deterministic_and_unpacked(svc, busybox, tmp_path):
    assert build_builtin(svc, "busybox") == busybox
    img = svc.get("busybox")
    assert img.repo_tags == ["busybox:latest"]
    assert img.config["config"]["Cmd"] == ["sh"]
    target = tmp_path / "mnt"
    target.mkdir()
    mount_all(svc.snapshotter.view("v", img.top_chain), str(target))
    try:
        out = subprocess.run(["chroot", str(target), "/bin/sh", "-c", "echo $((6*7))"],
                             capture_output=True, text=True, check=True).stdout
        assert out == "42\n"
    finally:
        unmount(str(target))
    with pytest.raises(InvalidArgument, match="no built-in image 'nosuch'"):
        build_builtin(svc, "nosuch")


def test_hello_world(svc, tmp_path):
    assert os.path.exists(HELLO), "the native programs are not built (%s)" % HELLO
    image_id = build_builtin(svc, "hello-world")
    assert svc.get("hello-world:latest").id == image_id
    assert svc.inspect("hello-world")["Config"]["Cmd"] == ["/hello"]
    target = tmp_path / "mnt"
    target.mkdir()
    mount_all(svc.snapshotter.view("v", svc.get("hello-world").top_chain), str(target))
    try:
        out = subprocess.run(["chroot", str(target), "/hello"], capture_output=True, text=True,
                             check=True).stdout
    finally:
        unmount(str(target))
    assert "Hello from Docker!" in out


def test_import_with_changes(svc):
    data = rootfs_tar({"app/run": b"#!/bin/sh\n"}, "gzip")
    image_id = import_image(svc, io.BytesIO(data), "example.com/me/app:1.0", changes=[
        'CMD ["run", "--fast"]', "ENTRYPOINT /app/run", "ENV A=1 B=\"two words\"",
        "ENV C 3 4", "WORKDIR /app", "WORKDIR sub", "EXPOSE 80 53/udp", "LABEL team=core",
        "USER nobody", 'VOLUME ["/data"]', "STOPSIGNAL SIGTERM"])
    info = svc.inspect(image_id[7:19])
    c = info["Config"]
    assert c["Cmd"] == ["run", "--fast"]
    assert c["Entrypoint"] == ["/bin/sh", "-c", "/app/run"]
    assert c["Env"] == ["A=1", "B=two words", "C=3 4"]
    assert c["WorkingDir"] == "/app/sub"
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert c["Labels"] == {"team": "core"} and c["User"] == "nobody"
    assert c["Volumes"] == {"/data": {}} and c["StopSignal"] == "SIGTERM"
    assert info["RepoTags"] == ["example.com/me/app:1.0"]
    assert info["Comment"] == "Imported from -"
    assert svc.history(image_id)[0]["Comment"] == "Imported from -"
    with pytest.raises(InvalidArgument, match="FROM is not a valid change command"):
        import_image(svc, io.BytesIO(data), changes=["FROM scratch"])
    with pytest.raises(InvalidArgument, match="import: the archive is empty"):
        import_image(svc, io.BytesIO(b""))


def test_import_from_stdin_of_a_process(svc, tmp_path):
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc/motd").write_text("hi")
    p = subprocess.Popen(["tar", "-C", str(src), "-c", "."], stdout=subprocess.PIPE)
    image_id = import_image(svc, p.stdout, "piped")
    p.wait()
    assert svc.get("piped:latest").id == image_id


def test_save_load_round_trip(svc, busybox, tmp_path):
    import_image(svc, io.BytesIO(rootfs_tar({"x": b"1"})), "other:v1", changes=["LABEL a=b"])
    buf = io.BytesIO()
    save(svc, ["busybox", "other:v1"], buf)
    names = tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= set(names)
    manifest = json.loads(tarfile.open(fileobj=io.BytesIO(buf.getvalue()))
                          .extractfile("manifest.json").read())
    assert [m["RepoTags"] for m in manifest] == [["busybox:latest"], ["other:v1"]]
    other = ImageService(str(tmp_path / "other-engine"))
    buf.seek(0)
    assert load(other, buf) == ["Loaded image: busybox:latest", "Loaded image: other:v1"]
    assert other.get("busybox").id == busybox
    assert other.get("other:v1").labels == {"a": "b"}
    assert other.inspect("busybox")["RootFS"] == svc.inspect("busybox")["RootFS"]


def test_save_by_id_has_no_tags(svc, busybox):
    buf = io.BytesIO()
    save(svc, [busybox[7:19]], buf)
    manifest = json.loads(tarfile.open(fileobj=io.BytesIO(buf.getvalue()))
                          .extractfile("manifest.json").read())
    assert manifest[0]["RepoTags"] is None


def test_load_rejects_tampered_blob(svc, busybox, tmp_path):
    buf = io.BytesIO()
    save(svc, ["busybox"], buf)
    src = tarfile.open(fileobj=io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as dst:
        for m in src:
            data = src.extractfile(m).read() if m.isreg() else None
            if m.name.startswith("blobs/sha256/") and m.size > 100000:
                data = data[:-1] + b"X"
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    other = ImageService(str(tmp_path / "other-engine"))
    out.seek(0)
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        load(other, out)
    assert list(other.content.walk()) == [] and other.list() == []


@pytest.mark.peer
def test_load_umoci_layout(svc, tmp_path):
    need("umoci")
    layout = str(tmp_path / "layout")
    bundle = str(tmp_path / "bundle")
    run = lambda *a: subprocess.run(["umoci", *a], check=True, capture_output=True)  # noqa
    run("init", "--layout", layout)
    run("new", "--image", layout + ":v1")
    run("unpack", "--image", layout + ":v1", bundle)
    os.makedirs(bundle + "/rootfs/etc")
    with open(bundle + "/rootfs/etc/hello", "w") as f:
        f.write("from umoci\n")
    run("repack", "--image", layout + ":v1", bundle)
    run("config", "--image", layout + ":v1", "--config.cmd", "cat",
        "--config.cmd", "/etc/hello")
    # as a directory: umoci names the tag only, so the image is loaded untagged
    out = load(svc, layout)
    assert out[0].startswith("Loaded image ID: sha256:")
    img = svc.get(out[0].split(": ")[1])
    assert img.config["config"]["Cmd"] == ["cat", "/etc/hello"]
    target = tmp_path / "mnt"
    target.mkdir()
    mount_all(svc.snapshotter.view("v", img.top_chain), str(target))
    try:
        assert (target / "etc/hello").read_text() == "from umoci\n"
    finally:
        unmount(str(target))
    # as a tar archive with a full name annotation
    index = json.load(open(layout + "/index.json"))
    index["manifests"][0]["annotations"]["io.containerd.image.name"] = "umoci/test:v1"
    json.dump(index, open(layout + "/index.json", "w"))
    tar = tmp_path / "layout.tar"
    subprocess.run(["tar", "-C", layout, "-cf", str(tar), "."], check=True)
    with open(tar, "rb") as f:
        assert load(svc, f) == ["Loaded image: umoci/test:v1"]
    assert svc.get("umoci/test:v1").id == img.id


def test_list_filters(svc, busybox):
    a = import_image(svc, io.BytesIO(rootfs_tar({"a": b"a"})), "repo/a:1", changes=["LABEL x=1"])
    time.sleep(0.01)
    b = import_image(svc, io.BytesIO(rootfs_tar({"b": b"b"})), "repo/b:2", changes=["LABEL y="])
    time.sleep(0.01)
    c = import_image(svc, io.BytesIO(rootfs_tar({"c": b"c"})))
    ids = lambda f: [s["Id"] for s in svc.list(f)]  # noqa
    assert ids(None) == [c, b, a, busybox]
    assert ids({"dangling": ["true"]}) == [c]
    assert ids({"dangling": "false"}) == [b, a, busybox]
    assert ids({"reference": ["repo/*"]}) == [b, a]
    assert ids({"reference": ["repo/a:1"]}) == [a]
    assert ids({"reference": ["*"]}) == [busybox]          # * does not cross /
    assert ids({"label": ["x=1"]}) == [a]
    assert ids({"label": ["y"]}) == [b]
    assert ids({"before": ["repo/b:2"]}) == [a, busybox]
    assert ids({"since": ["repo/a:1"]}) == [c, b]
    assert ids(["dangling=false", "label=x"]) == [a]
    with pytest.raises(InvalidArgument, match="invalid filter 'color'"):
        svc.list({"color": ["red"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        svc.list({"dangling": ["maybe"]})


def test_tag_and_resolve(svc, busybox):
    assert str(svc.tag("busybox", "127.0.0.1:5000/library/busybox:multiarch")) == \
        "127.0.0.1:5000/library/busybox:multiarch"
    assert svc.get("127.0.0.1:5000/library/busybox:multiarch").id == busybox
    assert svc.get(busybox).id == busybox
    assert svc.get(busybox[7:]).id == busybox
    assert svc.get(busybox[7:11]).id == busybox
    with pytest.raises(NotFound, match="No such image: nosuch:latest"):
        svc.get("nosuch:latest")
    with pytest.raises(InvalidArgument, match="refusing to create a tag with a digest"):
        svc.tag("busybox", "x@sha256:" + "a" * 64)
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        svc.tag("busybox", "UPPER")


def users_of(table):
    return lambda image_id: table.get(image_id, [])


def test_remove_untag_then_delete(svc, busybox):
    svc.tag("busybox", "mine:1")
    assert svc.remove("busybox") == [{"Untagged": "busybox:latest"}]
    assert svc.get("mine:1").id == busybox
    chain = svc.get("mine:1").top_chain
    assert svc.remove("mine:1") == [{"Untagged": "mine:1"}, {"Deleted": busybox}]
    assert svc.list() == []
    assert list(svc.content.walk()) == []
    with pytest.raises(NotFound):
        svc.snapshotter.stat(chain)


def test_remove_conflicts_are_worded_like_docker(svc, busybox):
    svc.tag("busybox", "127.0.0.1:5000/library/busybox:multiarch")
    svc.containers = users_of({busybox: [("d44797230934" + "a" * 52, True)]})
    # more than one tag: the untag goes through even with a running container
    assert svc.remove("127.0.0.1:5000/library/busybox:multiarch") == \
        [{"Untagged": "127.0.0.1:5000/library/busybox:multiarch"}]
    with pytest.raises(Conflict) as e:
        svc.remove("busybox:latest")
    assert str(e.value) == ('conflict: unable to remove repository reference "busybox:latest" '
                            '(must force) - container d44797230934 is using its referenced '
                            'image %s' % busybox[7:19])
    with pytest.raises(Conflict, match=r"unable to delete %s \(cannot be forced\) - image is "
                       "being used by running container d44797230934" % busybox[7:19]):
        svc.remove(busybox[7:19], force=True)
    svc.containers = users_of({busybox: [("cf1f709ac4c6" + "b" * 52, False)]})
    with pytest.raises(Conflict) as e:
        svc.remove(busybox[7:19])
    assert str(e.value) == ("conflict: unable to delete %s (must be forced) - image is being "
                            "used by stopped container cf1f709ac4c6" % busybox[7:19])
    svc.containers = users_of({})
    svc.tag("busybox", "other/repo:x")
    with pytest.raises(Conflict) as e:
        svc.remove(busybox[7:19])
    assert str(e.value) == ("conflict: unable to delete %s (must be forced) - image is "
                            "referenced in multiple repositories" % busybox[7:19])
    assert svc.remove(busybox[7:19], force=True) == [
        {"Untagged": "busybox:latest"}, {"Untagged": "other/repo:x"}, {"Deleted": busybox}]
    with pytest.raises(NotFound, match="No such image: 127.0.0.1:5000/library/nosuch:latest"):
        svc.remove("127.0.0.1:5000/library/nosuch:latest")


def test_remove_by_id(svc, busybox):
    digest = svc.get("busybox").record["manifest"]["digest"]
    svc.store.add_ref(svc.get("busybox").tags[0].repository().with_digest(digest), busybox)
    svc.tag("busybox", "busybox:other")
    with pytest.raises(Conflict, match="referenced in multiple repositories"):
        svc.remove(busybox[7:19])       # two tags, as docker says even for one repository
    svc.remove("busybox:other")
    assert svc.get("busybox").repo_digests == ["busybox@" + digest]
    assert svc.remove(busybox[7:19]) == [
        {"Untagged": "busybox:latest"}, {"Untagged": "busybox@" + digest}, {"Deleted": busybox}]


def test_prune(svc, busybox):
    import_image(svc, io.BytesIO(rootfs_tar({"a": b"a"})), "keep:1")
    dangling = import_image(svc, io.BytesIO(rootfs_tar({"d": b"d" * 1000})))
    used = import_image(svc, io.BytesIO(rootfs_tar({"u": b"u"})))
    svc.containers = users_of({used: [("c" * 64, False)]})
    report = svc.prune()
    assert report["ImagesDeleted"] == [{"Deleted": dangling}]
    assert report["SpaceReclaimed"] > 1000
    keep = svc.get("keep:1").id
    report = svc.prune(all_images=True)
    assert {d.get("Deleted") for d in report["ImagesDeleted"]} - {None} == {busybox, keep}
    assert [s["Id"] for s in svc.list()] == [used]


def test_history_of_multi_layer_image(svc):
    l1 = make_tar([entry("a", data=b"a" * 10)])
    l2 = make_tar([entry("b", data=b"b" * 20)])
    descs, diffs = [], []
    for layer in (l1, l2):
        d = svc.content.put(layer)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                      "size": len(layer)})
        diffs.append(d)
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
              "rootfs": {"type": "layers", "diff_ids": diffs},
              "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD a"},
                          {"created": "2024-01-01T00:00:00Z", "created_by": "ENV x=1",
                           "empty_layer": True},
                          {"created": "2024-01-01T00:00:00Z", "created_by": "ADD b"}]}
    image_id = svc.put_image(config, descs, ["multi:1"])
    h = svc.history("multi:1")
    assert [(x["Id"], x["CreatedBy"], x["Size"]) for x in h] == [
        (image_id, "ADD b", 20), ("<missing>", "ENV x=1", 0), ("<missing>", "ADD a", 10)]
    assert h[0]["Tags"] == ["multi:1"] and h[0]["Created"] == 1704067200


HOSTILE = {
    "dotdot": ([entry("../../outside/pwned", data=b"x")], "path escapes the root"),
    "absolute-symlink": ([entry("evil", "symlink", linkname="{outside}"),
                          entry("evil/pwned", data=b"x")], "write through symlink evil"),
    "relative-symlink": ([entry("d", "dir"),
                          entry("d/evil", "symlink", linkname="../../../outside"),
                          entry("d/evil/pwned", data=b"x")], "write through symlink d/evil"),
    "hardlink-out": ([entry("h", "link", linkname="../outside/secret")], "path escapes the root"),
    "truncated": (None, "truncated"),
}


@pytest.mark.parametrize("backend", ["overlayfs", "native"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_bad_layer_leaves_nothing_behind(tmp_path, private_mount_ns, backend, case):
    svc = ImageService(str(tmp_path / "engine"), snapshotter=backend)
    build_builtin(svc, "busybox")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    entries, match = HOSTILE[case]
    if entries is None:
        whole = make_tar([entry("ok", data=b"fine"), entry("big", data=os.urandom(50_000))],
                         "gzip")
        bad = whole[:len(whole) // 2]
    else:
        for ti, _ in entries:
            ti.linkname = ti.linkname.replace("{outside}", str(outside))
        bad = make_tar(entries)
    d = svc.content.put(bad)
    before = {i.name for i in svc.snapshotter.walk()}
    top = svc.get("busybox")
    config = dict(top.config, rootfs={"type": "layers",
                                      "diff_ids": top.diff_ids + ["sha256:" + "0" * 64]})
    with pytest.raises(InvalidArgument, match=match):
        svc.put_image(config, top.manifest["layers"] + [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
             "size": len(bad)}], ["bad:1"])
    assert os.listdir(outside) == ["secret"] and (outside / "secret").read_text() == "keep"
    assert {i.name for i in svc.snapshotter.walk()} == before
    snapshot_dirs = os.listdir(os.path.join(svc.snapshotter.root, "snapshots"))
    assert len(snapshot_dirs) == len(before)
    with pytest.raises(NotFound):
        svc.get("bad:1")
    assert {i.digest for i in svc.content.walk()} == svc.store.roots() | {
        layer["digest"] for layer in top.manifest["layers"]}


def test_store_survives_reopen(svc, busybox):
    again = ImageService(svc.root)
    assert again.get("busybox").id == busybox
    assert again.list() == svc.list()


def test_load_legacy_docker_archive_with_linked_layer(svc):
    layer = make_tar([entry("etc/legacy", data=b"old format\n")])
    diff_id = "sha256:" + __import__("hashlib").sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "created": "2020-01-01T00:00:00Z", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id, diff_id]}}).encode()
    config_hex = __import__("hashlib").sha256(config).hexdigest()
    files = {"aaaa/layer.tar": layer, "aaaa/VERSION": b"1.0", "aaaa/json": b"{}",
             config_hex + ".json": config,
             "manifest.json": json.dumps([{"Config": config_hex + ".json",
                                           "RepoTags": ["legacy:1"],
                                           "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"]}]
                                         ).encode(),
             "repositories": json.dumps({"legacy": {"1": "bbbb"}}).encode()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo("bbbb/layer.tar")
        ti.type, ti.linkname = tarfile.SYMTYPE, "../aaaa/layer.tar"
        tf.addfile(ti)
    buf.seek(0)
    assert load(svc, buf) == ["Loaded image: legacy:1"]
    img = svc.get("legacy:1")
    assert img.id == "sha256:" + config_hex
    assert img.diff_ids == [diff_id, diff_id]


def test_load_garbage(svc):
    with pytest.raises(InvalidArgument, match="load: not a docker or OCI image archive"):
        load(svc, io.BytesIO(make_tar([entry("hello", data=b"x")])))
    with pytest.raises(InvalidArgument, match="load: not a valid archive"):
        load(svc, io.BytesIO(b"\x00garbage" * 200))
    assert list(svc.content.walk()) == []


@pytest.mark.peer
def test_saved_archive_is_read_by_skopeo_and_skopeo_archives_load(svc, busybox, tmp_path):
    need("skopeo")
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        save(svc, ["busybox"], f)
    for transport in ("docker-archive", "oci-archive"):
        info = json.loads(subprocess.run(["skopeo", "inspect", "%s:%s" % (transport, ours)],
                                         check=True, capture_output=True).stdout)
        assert info["Layers"] == svc.get("busybox").diff_ids
    theirs = tmp_path / "theirs.tar"
    subprocess.run(["skopeo", "copy", "docker-archive:%s" % ours,
                    "docker-archive:%s:copied/busybox:v2" % theirs], check=True,
                   capture_output=True)
    other = ImageService(str(tmp_path / "other-engine"))
    with open(theirs, "rb") as f:
        assert load(other, f) == ["Loaded image: copied/busybox:v2"]
    assert other.get("copied/busybox:v2").id == busybox


def test_prepare_rootfs_for_a_container(svc, busybox, tmp_path):
    mounts = svc.prepare_rootfs("ctr-1", "busybox")
    info = svc.snapshotter.stat("ctr-1")
    assert info.parent == svc.get("busybox").top_chain
    assert info.labels["pyrunc.io/image"] == busybox
    target = tmp_path / "rootfs"
    target.mkdir()
    mount_all(mounts, str(target))
    try:
        (target / "tmp/scratch").write_text("container data")
        assert (target / "bin/busybox").exists()
    finally:
        unmount(str(target))
    # the image's layers stay while a container snapshot sits on them
    svc.containers = users_of({busybox: [("ctr-1", False)]})
    svc.remove("busybox", force=True)
    svc.gc()
    assert svc.snapshotter.stat(info.parent).kind == "committed"
    svc.snapshotter.remove("ctr-1")
    svc.gc()
    with pytest.raises(NotFound):
        svc.snapshotter.stat(info.parent)


def test_import_from_path(svc, tmp_path):
    path = tmp_path / "rootfs.tar"
    path.write_bytes(rootfs_tar({"f": b"1"}))
    image_id = import_image(svc, str(path), "fromfile")
    assert svc.get("fromfile").id == image_id
    with pytest.raises(NotFound, match="import: .*nosuch.tar: no such file"):
        import_image(svc, str(tmp_path / "nosuch.tar"))


def test_full_disk_leaves_nothing_behind(tmp_path):
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], check=True)
    try:
        small = ImageService(str(root), snapshotter="native")
        plain = make_tar([entry("f%03d" % i, data=b"\0" * 100_000) for i in range(15)])
        layer = make_tar([entry("f%03d" % i, data=b"\0" * 100_000) for i in range(15)], "gzip")
        d = "sha256:" + __import__("hashlib").sha256(plain).hexdigest()
        blob = small.content.put(layer)
        config = {"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": [d]}}
        with pytest.raises(SystemFailure, match=r"^layer: f\d+: no space left on device$"):
            small.put_image(config, [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                      "digest": blob, "size": len(layer)}], ["full:1"])
        assert list(small.snapshotter.walk()) == []
        assert os.listdir(os.path.join(small.snapshotter.root, "snapshots")) == []
        assert list(small.content.walk()) == []
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_load_moves_a_tag_and_says_so(svc, busybox, tmp_path):
    buf = io.BytesIO()
    save(svc, ["busybox"], buf)
    other = ImageService(str(tmp_path / "other-engine"))
    old = import_image(other, io.BytesIO(rootfs_tar({"x": b"1"})), "busybox:latest")
    buf.seek(0)
    assert load(other, buf) == [
        "The image busybox:latest already exists, renaming the old one with ID %s to empty "
        "string" % old, "Loaded image: busybox:latest"]
    assert other.get("busybox").id == busybox
    assert [s["Id"] for s in other.list({"dangling": ["true"]})] == [old]
    buf.seek(0)
    assert load(other, buf) == ["Loaded image: busybox:latest"]


@pytest.mark.parametrize("doc", [b"{}", b"[1]", b'[{"Layers": []}]', b"not json"])
def test_load_bad_manifest_json(svc, doc):
    with pytest.raises(InvalidArgument, match="load: manifest.json: not"):
        load(svc, io.BytesIO(make_tar([entry("manifest.json", data=doc)])))


def test_failed_import_cleans_up_without_deadlock(svc, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    bad = make_tar([entry("evil", "symlink", linkname=str(outside)),
                    entry("evil/pwned", data=b"x")])
    with pytest.raises(InvalidArgument, match="write through symlink evil"):
        import_image(svc, io.BytesIO(bad), "bad:1")
    assert list(svc.content.walk()) == [] and list(svc.snapshotter.walk()) == []
    assert os.listdir(outside) == []


def test_gc_waits_for_a_hold_in_another_thread(svc, busybox):
    import threading
    orphan = svc.content.put(b"not referenced yet")
    done = threading.Event()
    with svc.holding_gc():
        t = threading.Thread(target=lambda: (svc.gc(), done.set()))
        t.start()
        assert not done.wait(0.3)            # blocked by the hold
        assert svc.content.exists(orphan)
    t.join(5)
    assert done.is_set() and not svc.content.exists(orphan)


def test_an_image_known_only_by_digest_is_not_dangling(svc, busybox):
    from pyrunc.engine.images import parse_name
    digest = svc.get("busybox").record["manifest"]["digest"]
    svc.store.add_ref(parse_name("pulled/by-digest@" + digest), busybox)
    assert svc.remove("busybox:latest") == [{"Untagged": "busybox:latest"}]
    assert svc.list({"dangling": ["true"]}) == []
    summary, = svc.list()
    assert summary["RepoTags"] == [] and summary["RepoDigests"] == ["pulled/by-digest@" + digest]
    assert svc.prune()["ImagesDeleted"] is None
    # untagging the last tag of a repository drops that repository's digest references too
    svc.tag(busybox, "pulled/by-digest:v1")
    assert svc.remove("pulled/by-digest:v1") == [
        {"Untagged": "pulled/by-digest:v1"}, {"Untagged": "pulled/by-digest@" + digest},
        {"Deleted": busybox}]
