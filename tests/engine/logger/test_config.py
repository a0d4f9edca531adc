"""parse_log_config: docker's json-file/none drivers, options and messages (moby's
jsonfilelog.New/ValidateLogOpt, go-units' FromHumanSize, strconv's errors)."""
import pytest
from hypothesis import given, settings, strategies as st

from pyrunc.engine.logger import LogConfig, parse_human_size, parse_log_config
from pyrunc.errors import FailedPrecondition, InvalidArgument


def cfg(**options):
    return parse_log_config({"Type": "json-file", "Config": options})


def test_defaults_and_none():
    assert parse_log_config(None) == LogConfig("json-file", 0, 1)
    assert parse_log_config({}) == LogConfig("json-file", 0, 1)
    assert parse_log_config({"Type": "", "Config": {}}) == LogConfig("json-file", 0, 1)
    none = parse_log_config({"Type": "none", "Config": {}})
    assert none.type == "none" and not none.readable
    with pytest.raises(FailedPrecondition,
                       match="^configured logging driver does not support reading$"):
        none.check_readable()
    parse_log_config({"Type": "json-file"}).check_readable()


@pytest.mark.parametrize("text,size", [
    ("10m", 10_000_000), ("1k", 1000), ("1g", 10 ** 9), ("44kB", 44_000), ("2MiB", 2_000_000),
    ("1.5k", 1500), ("100", 100), ("5b", 5), ("3 m", 3_000_000), ("1e3", 1000),
    ("+7k", 7000), ("1T", 10 ** 12), ("0.0001k", 0),
])
def test_max_size_units(text, size):
    # go-units' FromHumanSize: SI (decimal) units, the fraction truncated
    assert parse_human_size(text) == size


@pytest.mark.parametrize("options,message", [
    ({"max-size": "0"}, "max-size must be a positive number"),
    ({"max-size": "0.1"}, "max-size must be a positive number"),
    ({"max-size": "abc"}, "invalid size: 'abc'"),
    ({"max-size": ""}, "invalid size: ''"),
    ({"max-size": "-5m"}, "invalid size: '-5m'"),
    ({"max-size": "10x"}, "invalid suffix: 'x'"),
    ({"max-size": "10mbb"}, "invalid suffix: 'mbb'"),
    ({"max-size": "10mx"}, "invalid suffix: 'mx'"),
    ({"max-size": "1.2.3k"}, 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
    ({"max-size": "1e999"}, 'strconv.ParseFloat: parsing "1e999": value out of range'),
    ({"max-size": "99999999999999999999"}, "max-size must be a positive number"),
    ({"max-file": "0"}, "max-file cannot be less than 1"),
    ({"max-file": "-2"}, "max-file cannot be less than 1"),
    ({"max-file": "x"}, 'strconv.Atoi: parsing "x": invalid syntax'),
    ({"max-file": "3 "}, 'strconv.Atoi: parsing "3 ": invalid syntax'),
    ({"max-file": "99999999999999999999"},
     'strconv.Atoi: parsing "99999999999999999999": value out of range'),
    ({"max-file": "1000000000"}, "max-file cannot be more than 10000"),
    ({"x": "1"}, "unknown log opt 'x' for json-file log driver"),
    ({"max-size": "1m", "compress": "maybe"}, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
    ({"max-size": "1m", "compress": "true"},
     "compress cannot be true when max-file is less than 2 or max-size is not set"),
    ({"max-size": "1m", "max-file": "3", "compress": "true"},
     "compress: compressed rotated log files are not supported by this json-file log driver"),
    ({"mode": "fast"}, "logger: logging mode not supported: fast"),
    ({"max-buffer-size": "4m"},
     "logger: max-buffer-size option is only supported with 'mode=non-blocking'"),
    ({"mode": "non-blocking", "max-buffer-size": "x"},
     "error parsing option max-buffer-size: invalid size: 'x'"),
])
def test_docker_messages(options, message):
    with pytest.raises(InvalidArgument) as e:
        cfg(**options)
    assert str(e.value) == message


def test_accepted_options():
    assert cfg(**{"max-size": "10m", "max-file": "3"}) == LogConfig("json-file", 10 ** 7, 3)
    # docker accepts max-file alone (it only takes effect with max-size): nothing rotates
    assert cfg(**{"max-file": "3"}) == LogConfig("json-file", 0, 3)
    assert cfg(**{"max-size": "1k", "compress": "false", "labels": "a", "env": "B",
                  "tag": "{{.Name}}", "mode": "non-blocking",
                  "max-buffer-size": "4m"}) == LogConfig("json-file", 1000, 1)


@pytest.mark.parametrize("config,message", [
    ({"Type": "syslog"}, 'error looking up logging plugin syslog: plugin "syslog" not found'),
    ({"Type": "../../x"}, 'error looking up logging plugin ../../x: plugin "../../x" not found'),
    ({"Type": 3}, "LogConfig.Type: must be a string"),
    ({"Config": {"max-size": 10}}, "LogConfig.Config: must map option names to strings"),
    ({"Config": ["max-size=1m"]}, "LogConfig.Config: must map option names to strings"),
    ("json-file", "LogConfig: must be an object with Type and Config"),
])
def test_bad_shapes_and_drivers(config, message):
    with pytest.raises(InvalidArgument) as e:
        parse_log_config(config)
    assert str(e.value) == message


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10 ** 6),
       st.sampled_from(["", "b", "k", "kb", "kib", "m", "mb", "mib", "g", "G", "GB", "GiB"]))
def test_size_property_integers(n, unit):
    mult = {"": 1, "b": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9}[unit[:1].lower()]
    assert parse_human_size("%d%s" % (n, unit)) == n * mult


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30), st.text(max_size=30), st.text(max_size=12))
def test_hostile_options_fail_with_one_line(size, count, key):
    for options in ({"max-size": size}, {"max-file": count}, {key: size},
                    {"max-size": size, "max-file": count}):
        try:
            result = cfg(**options)
        except InvalidArgument as e:
            assert "\n" not in str(e).strip("\n") or "\n" in size + count + key
            continue
        assert result.type == "json-file" and result.max_size >= 0
        assert 1 <= result.max_file <= 10000
