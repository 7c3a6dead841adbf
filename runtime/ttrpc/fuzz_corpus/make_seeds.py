#!/usr/bin/env python3
"""Writes the ttrpc_fuzzer seed corpus into ttrpc_corpus/ (run from anywhere).

Each seed is one mode byte (0 decoder, 1 server connection, 2 client connection; see
ttrpc_fuzzer.cc) followed by ttrpc frames built here by hand (PROTOCOL.md framing,
protobuf wire format for ttrpc.Request/Response and the well-known wrapper types).
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "ttrpc_corpus")
SVC = b"kuasar.test.v1.Interop"
REQ, RESP, DATA = 1, 2, 3
RC, RO, ND = 0x1, 0x2, 0x4


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def frame(sid, mtype, flags, payload=b""):
    return struct.pack(">IIBB", len(payload), sid, mtype, flags) + payload


def request(method, payload=b"", timeout=0, md=()):
    body = field(1, SVC) + field(2, method) + field(3, payload)
    if timeout:
        body += field(4, timeout)
    for k, v in md:
        body += field(5, field(1, k) + field(2, v))
    return body


def response(code=0, msg=b"", payload=b""):
    status = (field(1, code) if code else b"") + (field(2, msg) if msg else b"")
    return field(1, status) + (field(2, payload) if payload else b"")


def string_value(s):
    return field(1, s) if s else b""


SEEDS = {
    "decoder_frames": b"\x00" + frame(1, REQ, 0, b"abc") + frame(3, DATA, RC | ND)
    + frame(5, RESP, 0, b"x" * 40),
    "decoder_oversized": b"\x00" + struct.pack(">IIBB", (4 << 20) + 1, 1, REQ, 0) + b"o" * 64,
    "decoder_garbage": b"\x00GET / HTTP/1.1\r\n\r\n",
    "server_echo": b"\x01" + frame(1, REQ, 0, request(b"Echo", string_value(b"hi"))),
    "server_errors": b"\x01" + frame(1, REQ, 0, request(b"Fail", string_value(b"5:nope")))
    + frame(3, REQ, 0, request(b"Nope")) + frame(2, REQ, 0, request(b"Echo"))
    + frame(1, REQ, 0, request(b"Echo")) + frame(9, DATA, 0, b"d")
    + frame(11, 9, 0, b"future") + frame(13, REQ, 0, b"\xff\xff"),
    "server_metadata_timeout": b"\x01" + frame(1, REQ, 0, request(
        b"Metadata", b"", 10_000_000, [(b"foo", b"bar"), (b"foo", b"baz")]))
    + frame(3, REQ, 0, request(b"Sleep", field(1, 50), 1_000_000)),
    "server_streams": b"\x01"
    + frame(1, REQ, RC, request(b"ServerStream", field(1, 3)))
    + frame(3, REQ, RO, request(b"ClientStream"))
    + frame(3, DATA, 0, string_value(b"a")) + frame(3, DATA, 0, string_value(b"b"))
    + frame(3, DATA, RC | ND)
    + frame(5, REQ, RO, request(b"Bidi")) + frame(5, DATA, 0, string_value(b"x"))
    + frame(5, DATA, RC, string_value(b"bad")) + frame(5, DATA, 0, b"late"),
    "server_oversized": b"\x01" + struct.pack(">IIBB", (4 << 20) + 1, 1, REQ, 0) + b"o" * 100,
    "client_responses": b"\x02" + frame(1, RESP, 0, response(payload=b"ok"))
    + frame(3, RESP, 0, response(14, b"unavailable"))
    + frame(5, DATA, 0, string_value(b"m1")) + frame(5, DATA, RC | ND)
    + frame(7, DATA, 0, b"e") + frame(7, RESP, 0, response()),
    "client_bad": b"\x02" + frame(1, DATA, 0, b"x") + frame(3, RESP, 0, b"\xff")
    + frame(5, RESP, 0, response(99, b"weird")) + frame(9, RESP, 0, response()),
}

os.makedirs(OUT, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"wrote {len(SEEDS)} seeds to {OUT}")
