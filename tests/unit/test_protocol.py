"""The node <-> manager TCP frames (SPEC §5): encode, decode, incremental and stream reading."""
from __future__ import annotations

import asyncio
import binascii
import json
import socket

import pytest
from tornado.iostream import IOStream, StreamClosedError

from litepipeline.common.protocol import (
    FRAME_END,
    JSON_END,
    ProtocolError,
    decode,
    encode,
    read_frame,
    read_message,
    reply,
)

KNOWN = (b'{"command":"HEARTBEAT","data":{"node_id":"n1","action_slots":2}}'
         b"\r\n\r\n1F5F85DD\r\n\r\n\r\n")


def frame(body: bytes, crc: bytes | None = None) -> bytes:
    """A frame around arbitrary JSON bytes (CRC computed independently of the module)."""
    if crc is None:
        crc = b"%08X" % (binascii.crc32(body) & 0xFFFFFFFF)
    return body + b"\r\n\r\n" + crc + b"\r\n\r\n\r\n"


def split(raw: bytes) -> tuple[bytes, bytes]:
    end = raw.index(b"\r\n\r\n")
    return raw[:end], raw[end + 4:]


def decode_error(raw: bytes) -> str:
    with pytest.raises(ProtocolError) as e:
        decode(*split(raw))
    return str(e.value)


# -- encode / decode ---------------------------------------------------------------------

def test_known_frame_bytes():
    assert encode("HEARTBEAT", {"node_id": "n1", "action_slots": 2}) == KNOWN
    assert frame(b'{"command":"HEARTBEAT","data":{"node_id":"n1","action_slots":2}}') == KNOWN


def test_crc_is_eight_upper_case_hex_digits():
    for data in ({}, {"x": 1}, {"node_id": None}, {"k": "v" * 100}):
        raw = encode("REGISTER", data)
        body, trailer = split(raw)
        assert trailer.endswith(b"\r\n\r\n\r\n") and len(trailer) == 8 + 6
        crc = trailer[:8]
        assert crc == crc.upper() and int(crc, 16) == binascii.crc32(body)
    # a small CRC keeps its leading zeros
    assert b"%08X" % 0xAB == b"000000AB"


@pytest.mark.parametrize("command", ["REGISTER", "HEARTBEAT", "ERROR"])
@pytest.mark.parametrize("data", [{}, {"node_id": None, "http_port": 8001, "nested": {"a": [1, 2.5, True]}},
                                  {"text": "héllo \u2603 \r\n\r\n inside a string"}])
def test_round_trip(command, data):
    raw = encode(command, data)
    assert raw.endswith(FRAME_END)
    assert decode(*split(raw)) == {"command": command, "data": data}


def test_reply_frame():
    message = decode(*split(reply("REGISTER", "SUCCESS", node_id="abc")))
    assert message == {"command": "REGISTER", "data": {"status": "SUCCESS", "message": "SUCCESS", "node_id": "abc"}}
    message = decode(*split(reply("HEARTBEAT", "FAILURE", "unregistered node")))
    assert message["data"] == {"status": "FAILURE", "message": "unregistered node"}


def test_crc_mismatch():
    body = b'{"command":"HEARTBEAT","data":{}}'
    good = b"%08X" % binascii.crc32(body)
    assert decode_error(frame(body, b"00000000")) == f"frame CRC mismatch: got 00000000, computed {good.decode()}"
    # one flipped byte of the body is caught too
    tampered = frame(body, good).replace(b"HEARTBEAT", b"HEARTBEAU")
    assert decode_error(tampered).startswith("frame CRC mismatch: got " + good.decode())


@pytest.mark.parametrize("crc", [b"ZZZZZZZZ", b"1234567G", b"--------", b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"])
def test_crc_not_hex(crc):
    assert decode_error(frame(b'{"command":"HEARTBEAT","data":{}}', crc)) == f"frame CRC is not hex: {crc!r}"


@pytest.mark.parametrize("trailer", [b"", b"1F5F85DD", b"1F5F85DD\r\n\r\n", b"1F5F85DD\r\n\r\n\r\n\r\n",
                                     b"1F5F85D\r\n\r\n\r\n", b"1F5F85DDxxxxxx", b"1F5F85DD\n\n\n\n\n\n"])
def test_malformed_trailer(trailer):
    with pytest.raises(ProtocolError) as e:
        decode(b'{"command":"HEARTBEAT","data":{"node_id":"n1","action_slots":2}}', trailer)
    assert str(e.value) == "malformed frame trailer"


@pytest.mark.parametrize("body, message", [
    (b"{not json", ("frame is not valid JSON: Expecting property name enclosed in double quotes: "
                   "line 1 column 2 (char 1)")),
    (b"", "frame is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    (b"\xff{}", "frame is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    (b"[1, 2]", "frame is not a JSON object"),
    (b'"REGISTER"', "frame is not a JSON object"),
    (b"null", "frame is not a JSON object"),
    (b'{"command":"HELLO","data":{}}', "unknown command 'HELLO'"),
    (b'{"command":"register","data":{}}', "unknown command 'register'"),
    (b'{"data":{}}', "unknown command None"),
    (b'{"command":["REGISTER"],"data":{}}', "unknown command ['REGISTER']"),
    (b'{"command":"HEARTBEAT","data":[1]}', "HEARTBEAT data is not a JSON object"),
    (b'{"command":"REGISTER","data":"x"}', "REGISTER data is not a JSON object"),
    (b'{"command":"ERROR","data":0}', "ERROR data is not a JSON object"),
])
def test_bad_messages(body, message):
    assert decode_error(frame(body)) == message


def test_missing_or_null_data_is_empty():
    assert decode(*split(frame(b'{"command":"HEARTBEAT"}'))) == {"command": "HEARTBEAT", "data": {}}
    assert decode(*split(frame(b'{"command":"ERROR","data":null}'))) == {"command": "ERROR", "data": {}}


def _max_body(size: int) -> bytes:
    head, tail = b'{"command":"ERROR","data":{"p":"', b'"}}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


# -- read_message on a real IOStream -------------------------------------------------------

def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def _pair() -> tuple[IOStream, IOStream]:
    a, b = socket.socketpair()
    return IOStream(a), IOStream(b)


def test_read_message_one_and_two_frames():
    async def go():
        reader, writer = await _pair()
        await writer.write(encode("REGISTER", {"node_id": None}))
        first = await read_message(reader)
        await writer.write(encode("HEARTBEAT", {"n": 1}) + encode("HEARTBEAT", {"n": 2}))
        second, third = await read_message(reader), await read_message(reader)
        reader.close()
        writer.close()
        return first, second, third

    assert run(go()) == ({"command": "REGISTER", "data": {"node_id": None}},
                         {"command": "HEARTBEAT", "data": {"n": 1}}, {"command": "HEARTBEAT", "data": {"n": 2}})


def test_read_frame_gives_the_json_bytes_the_message_was_decoded_from():
    body = b'{"command":"REPORT","data":{"result":{"v":"\\ud800"}}}'

    async def go():
        reader, writer = await _pair()
        await writer.write(frame(body) + encode("HEARTBEAT", {"n": 1}))
        first, second = await read_frame(reader), await read_frame(reader)
        reader.close()
        writer.close()
        return first, second

    (message, raw), (_, raw2) = run(go())
    assert raw == body and message["data"] == {"result": {"v": "\ud800"}}
    assert raw2 == b'{"command":"HEARTBEAT","data":{"n":1}}'


def test_read_message_trickled_bytes():
    async def go():
        reader, writer = await _pair()
        raw = encode("HEARTBEAT", {"slow": True})

        async def trickle():
            for i in range(0, len(raw), 3):
                await writer.write(raw[i:i + 3])
                await asyncio.sleep(0.001)

        task = asyncio.ensure_future(trickle())
        message = await read_message(reader)
        await task
        reader.close()
        writer.close()
        return message

    assert run(go()) == {"command": "HEARTBEAT", "data": {"slow": True}}


def test_read_message_bad_crc_is_protocol_error():
    async def go():
        reader, writer = await _pair()
        await writer.write(frame(b'{"command":"HEARTBEAT","data":{}}', b"DEADBEEF"))
        try:
            with pytest.raises(ProtocolError, match="^frame CRC mismatch: got DEADBEEF, computed "):
                await read_message(reader)
        finally:
            reader.close()
            writer.close()

    run(go())


def test_read_message_exactly_max_size_accepted():
    async def go():
        reader, writer = await _pair()
        await writer.write(frame(_max_body(100)))
        message = await read_message(reader, max_size=100)
        reader.close()
        writer.close()
        return message

    assert run(go())["command"] == "ERROR"


def test_read_message_closed_mid_frame_propagates_stream_closed():
    async def go():
        reader, writer = await _pair()
        await writer.write(encode("HEARTBEAT", {})[:-5])
        writer.close()
        with pytest.raises(StreamClosedError):
            await read_message(reader)
        reader.close()

    run(go())


@pytest.mark.parametrize("delimited", [False, True])
def test_read_message_oversized_frame_is_protocol_error(delimited):
    async def go():
        reader, writer = await _pair()
        data = b"x" * 5000 + (JSON_END + b"00000000" + FRAME_END if delimited else b"")
        await writer.write(data)
        try:
            with pytest.raises(ProtocolError) as e:
                await read_message(reader, max_size=1000)
            assert str(e.value) == "frame larger than 1000 bytes"
        finally:
            reader.close()
            writer.close()

    run(go())


def test_read_message_oversized_frame_does_not_hang_or_return():
    # whatever the exception type, an oversized frame must end the read, not return a message
    async def go():
        reader, writer = await _pair()
        await writer.write(b"x" * 5000)
        try:
            with pytest.raises((ProtocolError, StreamClosedError)):
                await read_message(reader, max_size=1000)
        finally:
            reader.close()
            writer.close()

    run(go())


def test_frame_json_is_compact():
    body, _ = split(encode("HEARTBEAT", {"a": [1, 2], "b": {"c": None}}))
    assert body == json.dumps({"command": "HEARTBEAT", "data": {"a": [1, 2], "b": {"c": None}}},
                              separators=(",", ":")).encode()
