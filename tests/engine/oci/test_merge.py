"""merge_image_config: docker's rules for the image's config under the request's (the same
cases are compared with dockerd in test_vs_dockerd.py), as properties over random configs,
and hostile input."""
import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.errors import InvalidArgument
from pyrunc.engine.oci import merge_image_config

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["image-cmd"], "Env": ["PATH=/bin", "A=1"],
         "WorkingDir": "/srv", "User": "daemon", "Labels": {"a": "image", "b": "image"},
         "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "StopSignal": "SIGQUIT",
         "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5, "Retries": 3}}


@pytest.mark.parametrize("request_, entrypoint, cmd", [
    ({}, ["/entry"], ["image-cmd"]),
    ({"Cmd": ["mine"]}, ["/entry"], ["mine"]),
    ({"Entrypoint": ["/other"]}, ["/other"], None),                 # the image's Cmd is dropped
    ({"Entrypoint": ["/other"], "Cmd": ["x"]}, ["/other"], ["x"]),
    ({"Entrypoint": []}, [], ["image-cmd"]),                        # --entrypoint ""
    ({"Entrypoint": [], "Cmd": ["x"]}, [], ["x"]),
    ({"Cmd": []}, ["/entry"], ["image-cmd"]),
    ({"Entrypoint": "/s", "Cmd": "c"}, ["/s"], ["c"]),              # strings, as StrSlice
])
def test_entrypoint_and_cmd(request_, entrypoint, cmd):
    out = merge_image_config(IMAGE, request_)
    assert out["Entrypoint"] == entrypoint and out["Cmd"] == cmd


def test_fields():
    req = {"Env": ["A=2", "B=3"], "Labels": {"b": "request", "c": "request"},
           "ExposedPorts": {"443/tcp": {}}, "Volumes": {"/logs": {}}, "Hostname": "h",
           "Healthcheck": {"Interval": 7}, "Tty": True}
    out = merge_image_config(IMAGE, req)
    assert out["Env"] == ["A=2", "B=3", "PATH=/bin"]
    assert out["Labels"] == {"a": "image", "b": "request", "c": "request"}
    assert out["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert out["Volumes"] == {"/data": {}, "/logs": {}}
    assert (out["WorkingDir"], out["User"], out["StopSignal"]) == ("/srv", "daemon", "SIGQUIT")
    assert out["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 7, "Retries": 3}
    assert out["Hostname"] == "h" and out["Tty"] is True
    out = merge_image_config(IMAGE, {"User": "1:2", "WorkingDir": "/w", "StopSignal": "9",
                                     "StopTimeout": 3})
    assert (out["User"], out["WorkingDir"], out["StopSignal"], out["StopTimeout"]) == \
        ("1:2", "/w", "9", 3)


@pytest.mark.parametrize("image, request_, message", [
    ({}, {"Env": "A=1"}, "Config.Env: must be an array of strings"),
    ({"Env": [1]}, {}, "image config.Env: must be an array of strings"),
    ({}, {"Cmd": {"a": 1}}, "Config.Cmd"),
    ({}, {"Labels": {"a": 1}}, "Config.Labels"),
    ({}, {"Labels": []}, "Config.Labels: must be an object"),
    ({}, {"User": 0}, "Config.User: must be a string"),
    ({}, {"StopTimeout": "10"}, "Config.StopTimeout"),
    ({"Healthcheck": "x"}, {}, "image config.Healthcheck"),
    ([], {}, "image config: must be an object"),
    ({}, "x", "Config: must be an object"),
])
def test_hostile_input(image, request_, message):
    with pytest.raises(InvalidArgument) as e:
        merge_image_config(image, request_)
    assert message in str(e.value)


ENV_NAMES = st.sampled_from(["PATH", "A", "B", "HOME", "X_1"])
ENV = st.lists(st.builds(lambda k, v: "%s=%s" % (k, v), ENV_NAMES, st.text("abc=", max_size=3)),
               max_size=5)
ARGS = st.none() | st.lists(st.text("abc /", max_size=4), max_size=3)
LABELS = st.none() | st.dictionaries(st.sampled_from("abcd"), st.text("xy", max_size=2),
                                     max_size=3)
CONFIG = st.fixed_dictionaries({}, optional={
    "Entrypoint": ARGS, "Cmd": ARGS, "Env": ENV, "Labels": LABELS,
    "User": st.sampled_from(["", "a", "1:2"]), "WorkingDir": st.sampled_from(["", "/x"]),
    "ExposedPorts": st.none() | st.dictionaries(st.sampled_from(["80/tcp", "53/udp"]),
                                                st.just({}), max_size=2),
    "Volumes": st.none() | st.dictionaries(st.sampled_from(["/a", "/b"]), st.just({}),
                                           max_size=2)})


def name(entry):
    return entry.split("=", 1)[0]


@settings(max_examples=500, deadline=None)
@given(image=CONFIG, req=CONFIG)
def test_properties(image, req):
    before = copy.deepcopy((image, req))
    out = merge_image_config(image, req)
    assert (image, req) == before                       # neither argument is changed
    req_env, img_env = req.get("Env") or [], image.get("Env") or []
    # the request's entries come first, in order; then the image's whose names it does not set
    assert out["Env"][:len(req_env)] == req_env
    assert out["Env"][len(req_env):] == [e for e in img_env
                                          if name(e) not in {name(r) for r in req_env}]
    # Entrypoint: the request's when given, even empty; Cmd per docker's rule
    if req.get("Entrypoint") is not None:
        assert out["Entrypoint"] == req["Entrypoint"]
    else:
        assert out["Entrypoint"] == image.get("Entrypoint")
    if req.get("Cmd"):
        assert out["Cmd"] == req["Cmd"]
    elif req.get("Entrypoint"):
        assert out["Cmd"] == req.get("Cmd")
    else:
        assert out["Cmd"] == image.get("Cmd")
    labels = dict(image.get("Labels") or {})
    labels.update(req.get("Labels") or {})
    assert out["Labels"] == labels
    for key in ("ExposedPorts", "Volumes"):
        union = set(image.get(key) or {}) | set(req.get(key) or {})
        assert set(out.get(key) or {}) == union
    for key in ("User", "WorkingDir"):
        assert out.get(key) == (req.get(key) or image.get(key) or req.get(key))
