"""The parent/child handshake messages: one definition shared with C, lossless round trips."""
import os
import re

from hypothesis import given, strategies as st

from pyrunc.libcontainer import protocol

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "native", "core", "core_api.h")


def test_constants_are_the_c_headers():
    with open(HEADER) as f:
        defines = dict(re.findall(r"^#define (CORE_MSG_\w+)\s+(\d+)", f.read(), re.M))
    for name, value in defines.items():
        short = name[len("CORE_MSG_"):]
        if short == "MAX_PAYLOAD":
            assert protocol.MAX_PAYLOAD == int(value)
        else:
            assert getattr(protocol, short) == int(value), name
            assert protocol.NAMES[int(value)] == short
    assert len(protocol.NAMES) == len(defines) - 1
    assert protocol.HEADER_SIZE == 16


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
               max_size=200)


@given(step=text.filter(bool), detail=text)
def test_error_payload_round_trip(step, detail):
    assert protocol.decode_error(protocol.encode_error(step, detail)) == (step, detail)


@given(type_=st.sampled_from(sorted(protocol.NAMES)), value=st.integers(-2**31, 2**31 - 1),
       payload=st.binary(max_size=4096))
def test_messages_survive_the_socket(type_, value, payload):
    from pyrunc._core import ffi, lib
    pair = ffi.new("int[2]")
    assert lib.core_socketpair(pair) == 0
    try:
        protocol.send(pair[0], type_, value, payload)
        msg = protocol.Receiver(pair[1]).recv()
        assert (msg.type, msg.err, msg.value, msg.payload, msg.fd) == (type_, 0, value,
                                                                        payload, -1)
        os.close(pair[0])
        pair[0] = -1
        assert protocol.Receiver(pair[1]).recv() is None  # EOF once the peer is gone
    finally:
        for fd in pair:
            if fd >= 0:
                os.close(fd)


@given(datagram=st.binary(min_size=1, max_size=200))
def test_any_datagram_is_a_message_or_a_protocol_error(datagram):
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        a.send(datagram)
        try:
            msg = protocol.Receiver(b.fileno()).recv()
        except protocol.ProtocolError:
            return
        assert protocol.HEADER_SIZE + len(msg.payload) == len(datagram)
        assert msg.fd == -1
