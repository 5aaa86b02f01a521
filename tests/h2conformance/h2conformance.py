#!/usr/bin/python3
"""An HTTP/2 conformance suite for any server: RFC 9113 sections 3-8 and RFC 7541 sections
2-6, one case per MUST or MUST NOT a client can provoke, plus the ordinary exchanges a
server must accept.

It is independent of the server under test and of our own codec: frames are built by
hyperframe or by hand (the malformed ones), field blocks by hpack's encoder or by hand
(the malformed ones), and responses are read with hpack's decoder. Each case opens its own
TCP connection (or TLS with ALPN h2, `--tls`), sends its frames and checks the reaction:

- a connection error must end in GOAWAY with the RFC's code; a bare close also passes
  unless `--strict` (RFC 9113 5.4.1 says SHOULD send GOAWAY);
- a stream error must be RST_STREAM with the RFC's code; a connection error with that
  code (RFC 9113 5.4: an endpoint MAY treat a stream error as a connection error) or a
  bare close also passes unless `--strict`;
- what the RFC says must be accepted or ignored must get its response, or a PING answered
  after it;
- with `--strict`, a stream opened within the limit just after another was reset must not
  be refused (the RFC allows REFUSED_STREAM there; we hold ourselves to more).

Run: /usr/bin/python3 tests/h2conformance/h2conformance.py --port 8080 [--tls] [--path /x]
[--strict] [--only 6.5] [--list]. One line per case (PASS or FAIL, id, title, what was
seen), then `summary: cases=N passed=P failed=F`; the exit status is 1 when a case failed.
Debian's python3-hyperframe and python3-hpack (pulled in by python3-h2) are all it needs.
"""

import argparse
import socket
import ssl
import struct
import sys
import time

import hpack
from hpack import huffman_constants
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
TYPE_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE",
              "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]

END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
SETTINGS_TIMEOUT, STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM = 4, 5, 6, 7
CANCEL, COMPRESSION_ERROR = 8, 9
CODE_NAMES = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
              "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
              "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
              "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]

HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 1, 2, 3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 4, 5, 6


def code_name(code):
    return CODE_NAMES[code] if code < len(CODE_NAMES) else f"0x{code:x}"


class Fail(Exception):
    """The case failed; the message says what was seen instead."""


class Skip(Exception):
    """The server's settings make the case inapplicable (e.g. no stream limit)."""


# -- hand-built frames and field blocks ------------------------------------------------

def frame(kind, flags, stream, payload):
    """Any frame, valid or not: the 9-byte header of RFC 9113 4.1 and the payload."""
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, kind, flags, stream) + payload


def hint(value, prefix_bits, first=0):
    """An RFC 7541 5.1 integer with an N-bit prefix; `first` holds the bits above it."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hstr(s, huffman=False):
    """An RFC 7541 5.2 string literal."""
    if isinstance(s, str):
        s = s.encode()
    if huffman:
        s = huffman_encode(s)
        return hint(len(s), 7, 0x80) + s
    return hint(len(s), 7) + s


def huffman_bits(s):
    """The Appendix B codes of `s`, as (value, bit count), without padding."""
    acc, bits = 0, 0
    for b in s:
        acc = (acc << huffman_constants.REQUEST_CODES_LENGTH[b]) | huffman_constants.REQUEST_CODES[b]
        bits += huffman_constants.REQUEST_CODES_LENGTH[b]
    return acc, bits


def huffman_encode(s, pad_bit=1, extra_pad_bytes=0, eos=False):
    """Huffman-coded `s`, padded to a byte with `pad_bit`s (RFC 7541 5.2 says ones, the
    most significant bits of EOS); optionally followed by more padding or by EOS itself."""
    acc, bits = huffman_bits(s)
    if eos:
        acc, bits = (acc << 30) | 0x3FFFFFFF, bits + 30
    pad = (8 - bits % 8) % 8
    acc = (acc << pad) | (((1 << pad) - 1) if pad_bit else 0)
    bits += pad
    out = acc.to_bytes(bits // 8, "big") if bits else b""
    return out + b"\xff" * extra_pad_bytes


def lit(name, value, huff_name=False, huff_value=False):
    """A literal field without indexing and with a literal name (RFC 7541 6.2.2)."""
    return b"\x00" + hstr(name, huff_name) + hstr(value, huff_value)


def lit_idx(index, value, kind="without", huffman=False):
    """A literal field whose name is table entry `index` (RFC 7541 6.2.1-6.2.3)."""
    head = {"incremental": hint(index, 6, 0x40), "without": hint(index, 4, 0x00),
            "never": hint(index, 4, 0x10)}[kind]
    return head + hstr(value, huffman)


def lit_new(name, value, kind="without", huffman=False):
    """A literal field with a new name (RFC 7541 6.2.1-6.2.3)."""
    head = {"incremental": b"\x40", "without": b"\x00", "never": b"\x10"}[kind]
    return head + hstr(name, huffman) + hstr(value, huffman)


def size_update(n):
    """A dynamic table size update (RFC 7541 6.3)."""
    return hint(n, 5, 0x20)


# -- one connection ---------------------------------------------------------------------

class Peer:
    def __init__(self, args):
        self.args = args
        self.timeout = args.timeout
        sock = socket.create_connection((args.host, args.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if args.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            sock = ctx.wrap_socket(sock, server_hostname=args.authority.split(":")[0])
            if sock.selected_alpn_protocol() != "h2":
                raise Fail(f"TLS: the server chose ALPN {sock.selected_alpn_protocol()!r}, not h2")
        self.sock = sock
        self.buf = b""
        self.closed = False
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.server_settings = {}
        self.block = None  # (stream, fragments) of a response field block in progress
        self.seen = []  # short descriptions of every frame read, for failure messages

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- sending

    def send(self, *frames):
        out = b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames)
        try:
            self.sock.sendall(out)
        except OSError:
            # The server may have closed already; what it sent before says why.
            pass

    def preface(self, settings=None):
        s = SettingsFrame(0)
        for k, v in (settings or {}).items():
            s.settings[k] = v
        self.send(PREFACE, s)

    def handshake(self, settings=None):
        """Our preface and SETTINGS; waits for the server's SETTINGS (ACKed) and for the
        ACK of ours, as a client does before it relies on either."""
        self.preface(settings)
        got_settings = got_ack = False
        first = True
        while not (got_settings and got_ack):
            f = self.next_frame()
            if f is None:
                raise Fail(f"closed during the handshake ({self.trace()})")
            kind, flags, stream, payload = f[:4]
            if first and kind != SETTINGS:
                raise Fail(f"the server's first frame is {type_name(kind)}, not SETTINGS "
                           "(RFC 9113 3.4)")
            first = False
            if kind == SETTINGS and not flags & ACK:
                for i in range(0, len(payload) - len(payload) % 6, 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    self.server_settings[k] = v
                self.send(SettingsFrame(0, flags=["ACK"]))
                got_settings = True
            elif kind == SETTINGS:
                got_ack = True
            elif kind == GOAWAY:
                raise Fail(f"GOAWAY during the handshake ({self.trace()})")
        return self

    def headers(self, stream, block, end_stream=True, end_headers=True, **kw):
        flags = ["END_STREAM"] if end_stream else []
        if end_headers:
            flags.append("END_HEADERS")
        return HeadersFrame(stream, data=block, flags=flags, **kw)

    def request(self, method="GET", path=None, extra=(), scheme=None, authority=None):
        """An ordinary request's field list."""
        return [(":method", method), (":scheme", scheme or self.args.scheme),
                (":authority", authority or self.args.authority),
                (":path", path or self.args.path)] + list(extra)

    def encode(self, fields):
        return self.encoder.encode(fields)

    def get(self, stream, end_stream=True, extra=(), **kw):
        """HEADERS carrying an ordinary request, encoded by hpack."""
        return self.headers(stream, self.encode(self.request(extra=extra, **kw)), end_stream)

    def raw_request(self, extra=b"", method=b"GET", path=None):
        """An ordinary request's field block, every field a literal without indexing, so
        hand-made fields can go anywhere in it without touching any table."""
        return (lit(":method", method) + lit(":scheme", self.args.scheme)
                + lit(":authority", self.args.authority)
                + lit(":path", path or self.args.path) + extra)

    def post(self, stream, extra=()):
        return self.get(stream, end_stream=False, method="POST", extra=extra)

    # -- receiving

    def fill(self, deadline):
        """More bytes; False when the connection ended or the deadline passed."""
        if self.closed:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return False
        except (ConnectionError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def next_frame(self, timeout=None):
        """(type, flags, stream, payload, decoded fields or None); None when the
        connection ended; raises Fail on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    kind, flags = self.buf[3], self.buf[4]
                    stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload = self.buf[9:9 + n]
                    self.buf = self.buf[9 + n:]
                    fields = self.fields_of(kind, flags, stream, payload)
                    self.seen.append(describe(kind, flags, stream, payload))
                    return kind, flags, stream, payload, fields
            if not self.fill(deadline):
                if self.closed:
                    return None
                raise Fail(f"no answer within {timeout or self.timeout} s ({self.trace()})")

    def fields_of(self, kind, flags, stream, payload):
        """The response's decoded field block once END_HEADERS arrives (the decoder sees
        every block, so its dynamic table stays in step)."""
        if kind == HEADERS:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if flags & PRIORITY_FLAG:
                payload = payload[5:]
            self.block = (stream, [payload])
        elif kind == PUSH_PROMISE:
            self.block = (stream, [payload[4:]])  # never sent to a client without push
        elif kind == CONTINUATION and self.block:
            self.block[1].append(payload)
        else:
            return None
        if not flags & END_HEADERS:
            return None
        block = b"".join(self.block[1])
        self.block = None
        try:
            return self.decoder.decode(block, raw=True)
        except Exception as e:  # noqa: BLE001 - any decoding failure is the server's
            raise Fail(f"the server's field block does not decode: {e}")

    def trace(self):
        tail = self.seen[-6:]
        return "saw: " + (", ".join(tail) if tail else "nothing") + (
            "; connection closed" if self.closed else "")

    # -- verdicts

    def expect_connection_error(self, *codes):
        """GOAWAY with one of `codes` (a bare close passes unless --strict)."""
        want = "/".join(code_name(c) for c in codes)
        while True:
            f = self.next_frame()
            if f is None:
                if self.args.strict:
                    raise Fail(f"closed without GOAWAY({want}) ({self.trace()})")
                return "closed"
            kind, _, _, payload, _ = f
            if kind == GOAWAY:
                code = struct.unpack(">I", payload[4:8])[0] if len(payload) >= 8 else None
                if code in codes:
                    return f"GOAWAY({code_name(code)})"
                raise Fail(f"GOAWAY({code_name(code)}), want GOAWAY({want}) ({self.trace()})")

    def expect_stream_error(self, stream, *codes, connection_ok=False):
        """RST_STREAM on `stream` with one of `codes`; GOAWAY with one of them or a bare
        close pass too unless --strict (or `connection_ok`: the RFC allows either)."""
        want = "/".join(code_name(c) for c in codes)
        while True:
            f = self.next_frame()
            if f is None:
                if self.args.strict:
                    raise Fail(f"closed without RST_STREAM({want}) ({self.trace()})")
                return "closed"
            kind, _, sid, payload, _ = f
            if kind == RST_STREAM and sid == stream:
                code = struct.unpack(">I", payload[:4])[0] if len(payload) == 4 else None
                if code in codes:
                    return f"RST_STREAM({code_name(code)})"
                raise Fail(f"RST_STREAM({code_name(code)}), want {want} ({self.trace()})")
            if kind == GOAWAY:
                code = struct.unpack(">I", payload[4:8])[0] if len(payload) >= 8 else None
                if code not in codes:
                    raise Fail(f"GOAWAY({code_name(code)}), want {want} ({self.trace()})")
                if self.args.strict and not connection_ok:
                    raise Fail(f"a connection error where a stream error is due ({self.trace()})")
                return f"GOAWAY({code_name(code)})"

    def expect_either_error(self, stream, *codes):
        """The RFC allows a stream or a connection error here."""
        return self.expect_stream_error(stream, *codes, connection_ok=True)

    def expect_alive(self, payload=b"h2conf!!"):
        """The connection still works: a PING is answered with the same payload."""
        self.send(PingFrame(0, opaque_data=payload))
        while True:
            f = self.next_frame()
            if f is None:
                raise Fail(f"closed, want the PING answered ({self.trace()})")
            kind, flags, sid, data, _ = f
            if kind == PING and flags & ACK and data == payload:
                return "PING answered"
            if kind == GOAWAY:
                raise Fail(f"GOAWAY, want the PING answered ({self.trace()})")

    def expect_response(self, stream, whole=False):
        """The response's HEADERS on `stream` (and with `whole`, everything to its
        END_STREAM); returns its fields."""
        got = None
        while True:
            f = self.next_frame()
            if f is None:
                raise Fail(f"closed, want a response on stream {stream} ({self.trace()})")
            kind, flags, sid, payload, fields = f
            if sid == stream and kind == RST_STREAM:
                raise Fail(f"RST_STREAM, want a response on stream {stream} ({self.trace()})")
            if kind == GOAWAY:
                raise Fail(f"GOAWAY, want a response on stream {stream} ({self.trace()})")
            if sid == stream and fields is not None and got is None:
                got = dict((k.decode(), v.decode(errors="replace")) for k, v in fields)
                if ":status" not in got:
                    raise Fail(f"a response without :status: {got}")
                if got[":status"].startswith("1"):
                    got = None  # informational; the final response follows
                    continue
            if got is not None and (not whole or (sid == stream and flags & END_STREAM
                                                  and kind in (HEADERS, DATA))):
                return got

    def expect_data(self, stream, length):
        """The next DATA frame on `stream` carries exactly `length` bytes."""
        while True:
            f = self.next_frame()
            if f is None:
                raise Fail(f"closed, want {length} bytes of DATA ({self.trace()})")
            kind, flags, sid, payload, _ = f
            if kind in (GOAWAY,) or (kind == RST_STREAM and sid == stream):
                raise Fail(f"want {length} bytes of DATA ({self.trace()})")
            if kind == DATA and sid == stream:
                got = len(payload) - ((payload[0] + 1) if flags & PADDED else 0)
                if got != length:
                    raise Fail(f"DATA of {got} bytes, want {length} ({self.trace()})")
                return f"DATA of {length} bytes"

    def expect_close_after_goaway(self, *codes):
        """GOAWAY with the code and then the end of the connection (RFC 9113 5.4.1)."""
        seen = self.expect_connection_error(*codes)
        while True:
            f = self.next_frame()
            if f is None:
                return seen + " and closed"


def type_name(kind):
    return TYPE_NAMES[kind] if kind < len(TYPE_NAMES) else f"type 0x{kind:x}"


def describe(kind, flags, stream, payload):
    extra = ""
    if kind in (RST_STREAM,) and len(payload) == 4:
        extra = "(" + code_name(struct.unpack(">I", payload)[0]) + ")"
    if kind == GOAWAY and len(payload) >= 8:
        last, code = struct.unpack(">II", payload[:8])
        extra = f"(last={last & 0x7FFFFFFF}, {code_name(code)})"
    return f"{type_name(kind)}{extra}[s{stream} f{flags:#x} {len(payload)}B]"


# -- the cases ----------------------------------------------------------------------------

CASES = []


def case(cid, title, rule, handshake=True, settings=None):
    """Register a case: `cid` the RFC section and a number, `rule` the sentence checked."""
    def wrap(fn):
        CASES.append((cid, title, rule, handshake, settings, fn))
        return fn
    return wrap


def max_frame(p):
    return p.server_settings.get(MAX_FRAME_SIZE, 16384)


def oversize(p):
    """One octet past the server's SETTINGS_MAX_FRAME_SIZE (none past 2^24-1 exists)."""
    n = max_frame(p) + 1
    if n >= 1 << 24:
        raise Skip("the server accepts frames up to 2^24-1 octets: none can be larger")
    return n


# Section 3.4: the preface

@case("9113/3.4/1", "sends the client preface and SETTINGS; the server's first frame is SETTINGS",
      "That is, the server connection preface consists of a potentially empty SETTINGS frame "
      "(Section 6.5) that MUST be the first frame the server sends in the HTTP/2 connection.")
def _(p):
    return p.expect_alive()


@case("9113/3.4/2", "sends an invalid connection preface",
      "Clients and servers MUST treat an invalid connection preface as a connection error "
      "(Section 5.4.1) of type PROTOCOL_ERROR. A GOAWAY frame MAY be omitted.",
      handshake=False)
def _(p):
    p.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
    # The server may answer this as HTTP/1.1 or with frames; only the end counts, and a
    # GOAWAY must say PROTOCOL_ERROR.
    deadline = time.monotonic() + p.timeout
    while p.fill(deadline):
        pass
    if not p.closed:
        raise Fail("the connection stays open after an invalid preface")
    # If it answered in frames (a SETTINGS first), a GOAWAY among them says PROTOCOL_ERROR.
    at = 0
    while p.buf[3:4] == b"\x04" and at + 9 <= len(p.buf):
        n = int.from_bytes(p.buf[at:at + 3], "big")
        if p.buf[at + 3] == GOAWAY and p.buf[at + 13:at + 17] != struct.pack(">I", PROTOCOL_ERROR):
            raise Fail(f"GOAWAY with {p.buf[at + 13:at + 17].hex()}, want PROTOCOL_ERROR")
        at += 9 + n
    return "closed"


@case("9113/3.4/3", "sends the preface followed by a PING instead of SETTINGS",
      "This sequence MUST be followed by a SETTINGS frame (Section 6.5)... Clients and servers "
      "MUST treat an invalid connection preface as a connection error of type PROTOCOL_ERROR.",
      handshake=False)
def _(p):
    p.send(PREFACE, PingFrame(0, opaque_data=b"12345678"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/3.4/4", "sends the preface in single bytes",
      "The client connection preface starts with a sequence of 24 octets; a server reads "
      "them as a byte stream (Section 4: frames and prefaces carry no message boundaries).",
      handshake=False)
def _(p):
    for b in PREFACE:
        p.send(bytes([b]))
    p.send(SettingsFrame(0))
    return p.expect_alive()


# Section 4.1: frame format

@case("9113/4.1/1", "sends a frame of an unknown type",
      "Implementations MUST ignore and discard frames of unknown types.")
def _(p):
    p.send(frame(0x20, 0, 0, b"hello"))
    return p.expect_alive()


@case("9113/4.1/2", "sends a PING with undefined flags",
      "Flags are assigned semantics specific to the indicated frame type. Unused flags are those "
      "that have no defined semantics for a particular frame type. Unused flags MUST be ignored.")
def _(p):
    p.send(frame(PING, 0x16, 0, b"flags!!!"))
    f = p.next_frame()
    while f is not None and not (f[0] == PING and f[1] & ACK):
        f = p.next_frame()
    if f is None or f[3] != b"flags!!!":
        raise Fail(f"want the PING answered ({p.trace()})")
    return "PING answered"


@case("9113/4.1/3", "sends HEADERS with the reserved stream-id bit set",
      "Reserved: A reserved 1-bit field... MUST remain unset (0x00) when sending and MUST be "
      "ignored when receiving.")
def _(p):
    block = p.encode(p.request())
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 0x80000001, block))
    p.expect_response(1)
    return "response on stream 1"


@case("9113/4.1/4", "sends DATA with undefined flags",
      "Unused flags MUST be ignored on receipt and MUST be left unset (0x00) when sending.")
def _(p):
    p.send(p.post(1))
    p.send(frame(DATA, END_STREAM | 0xF6 & ~PADDED, 1, b"body"))
    p.expect_response(1)
    return "response"


# Section 4.2: frame size

@case("9113/4.2/1", "sends a DATA frame of 2^14 octets",
      "All implementations MUST be capable of receiving and minimally processing frames up to "
      "2^14 octets in length, plus the 9-octet frame header.")
def _(p):
    p.send(p.post(1, extra=[("content-length", "16384")]))
    p.send(frame(DATA, END_STREAM, 1, b"x" * 16384))
    p.expect_response(1)
    return "response"


@case("9113/4.2/2", "sends a DATA frame larger than SETTINGS_MAX_FRAME_SIZE",
      "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size "
      "defined in SETTINGS_MAX_FRAME_SIZE.")
def _(p):
    p.send(p.post(1))
    p.send(frame(DATA, END_STREAM, 1, b"x" * oversize(p)))
    return p.expect_either_error(1, FRAME_SIZE_ERROR)


@case("9113/4.2/3", "sends a HEADERS frame larger than SETTINGS_MAX_FRAME_SIZE",
      "A frame size error in a frame that could alter the state of the entire connection MUST "
      "be treated as a connection error; this includes any frame carrying a field block.")
def _(p):
    pad = oversize(p) - len(p.raw_request())
    block = p.raw_request(lit("x-pad", "a" * (pad - 8)))
    block += b"\x00" * (max_frame(p) + 1 - len(block)) if len(block) <= max_frame(p) else b""
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/4.2/4", "sends a SETTINGS frame larger than SETTINGS_MAX_FRAME_SIZE",
      "A frame size error in a frame that could alter the state of the entire connection MUST "
      "be treated as a connection error (Section 5.4.1).")
def _(p):
    n = (oversize(p) // 6 + 1) * 6
    if n >= 1 << 24:
        raise Skip("no multiple of 6 fits between the server's limit and 2^24")
    p.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 0x99, 0) * (n // 6)))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/4.2/5", "sends a PING frame (stream 0) larger than SETTINGS_MAX_FRAME_SIZE",
      "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size "
      "defined in SETTINGS_MAX_FRAME_SIZE.")
def _(p):
    p.send(frame(PING, 0, 0, b"\x00" * oversize(p)))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


# Section 4.3: field section compression

@case("9113/4.3/1", "sends an invalid field block fragment",
      "A decoding error in a field block MUST be treated as a connection error (Section 5.4.1) "
      "of type COMPRESSION_ERROR.")
def _(p):
    # A literal whose value length runs past the end of the block.
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, p.raw_request() + b"\x00\x01a\x7f"))
    return p.expect_connection_error(COMPRESSION_ERROR)


@case("9113/4.3/2", "sends a PRIORITY frame in the middle of a field block",
      "Each field block is processed as a discrete unit. Field blocks MUST be transmitted as a "
      "contiguous sequence of frames, with no interleaved frames of any other type or from any "
      "other stream.")
def _(p):
    block = p.encode(p.request())
    p.send(p.headers(1, block[:3], end_headers=False),
           PriorityFrame(1, depends_on=0, stream_weight=15),
           ContinuationFrame(1, data=block[3:], flags=["END_HEADERS"]))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/4.3/3", "sends HEADERS on another stream in the middle of a field block",
      "Field blocks MUST be transmitted as a contiguous sequence of frames, with no interleaved "
      "frames of any other type or from any other stream.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:3], end_headers=False), p.headers(3, block))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/4.3/4", "sends DATA on the same stream in the middle of a field block",
      "Field blocks MUST be transmitted as a contiguous sequence of frames, with no interleaved "
      "frames of any other type.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:3], end_stream=False, end_headers=False),
           frame(DATA, 0, 1, b"data"))
    return p.expect_connection_error(PROTOCOL_ERROR)


# Section 5.1: stream states

def closed_stream(p, stream=1):
    """A stream both sides ended: the request with END_STREAM, its whole response read."""
    p.send(p.get(stream))
    p.expect_response(stream, whole=True)


def reset_stream(p, stream=1):
    """A stream the client opened and reset."""
    p.send(p.post(stream), RstStreamFrame(stream, error_code=CANCEL))


@case("9113/5.1/1", "idle: sends a DATA frame",
      "idle: Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST "
      "be treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(DATA, END_STREAM, 1, b"data"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/5.1/2", "idle: sends a RST_STREAM frame",
      "idle: Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST "
      "be treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(RstStreamFrame(1, error_code=CANCEL))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/5.1/3", "idle: sends a WINDOW_UPDATE frame",
      "idle: Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST "
      "be treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(WindowUpdateFrame(1, window_increment=100))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/5.1/4", "idle: sends a CONTINUATION frame",
      "idle: Receiving any frame other than HEADERS or PRIORITY on a stream in this state MUST "
      "be treated as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(ContinuationFrame(1, data=p.raw_request(), flags=["END_HEADERS"]))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/5.1/5", "idle: sends a PRIORITY frame",
      "idle: ... PRIORITY frames can be received in this state (they do not open the stream).")
def _(p):
    p.send(PriorityFrame(3, depends_on=0, stream_weight=100))
    p.send(p.get(1))  # a lower id than the PRIORITY's is still usable
    p.expect_response(1)
    return "response on stream 1"


@case("9113/5.1/6", "half-closed (remote): sends a DATA frame",
      "half-closed (remote): If an endpoint receives additional frames, other than "
      "WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this state, it MUST "
      "respond with a stream error (Section 5.4.2) of type STREAM_CLOSED.")
def _(p):
    p.send(p.get(1), frame(DATA, END_STREAM, 1, b"data"))
    return p.expect_either_error(1, STREAM_CLOSED)


@case("9113/5.1/7", "half-closed (remote): sends a HEADERS frame",
      "half-closed (remote): ... it MUST respond with a stream error (Section 5.4.2) of type "
      "STREAM_CLOSED.")
def _(p):
    p.send(p.get(1), p.get(1))
    return p.expect_either_error(1, STREAM_CLOSED)


@case("9113/5.1/8", "half-closed (remote): sends a CONTINUATION frame",
      "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame "
      "without the END_HEADERS flag set. A recipient that observes violation of this rule MUST "
      "respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.get(1), ContinuationFrame(1, data=p.raw_request(), flags=["END_HEADERS"]))
    return p.expect_connection_error(PROTOCOL_ERROR, STREAM_CLOSED)


@case("9113/5.1/9", "half-closed (remote): sends WINDOW_UPDATE, PRIORITY and RST_STREAM",
      "half-closed (remote): ... frames other than WINDOW_UPDATE, PRIORITY, or RST_STREAM "
      "(so those three are allowed in this state).")
def _(p):
    p.send(p.get(1), WindowUpdateFrame(1, window_increment=1),
           PriorityFrame(1, depends_on=0, stream_weight=20), RstStreamFrame(1, error_code=CANCEL))
    return p.expect_alive()


@case("9113/5.1/10", "closed (by RST_STREAM): sends a DATA frame",
      "closed: An endpoint that receives any frame other than PRIORITY after receiving a "
      "RST_STREAM MUST treat that as a stream error (Section 5.4.2) of type STREAM_CLOSED.")
def _(p):
    reset_stream(p)
    p.send(frame(DATA, 0, 1, b"data"))
    return p.expect_either_error(1, STREAM_CLOSED)


@case("9113/5.1/11", "closed (by RST_STREAM): sends a HEADERS frame",
      "closed: An endpoint that receives any frame other than PRIORITY after receiving a "
      "RST_STREAM MUST treat that as a stream error (Section 5.4.2) of type STREAM_CLOSED.")
def _(p):
    reset_stream(p)
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, p.raw_request()))
    return p.expect_either_error(1, STREAM_CLOSED, PROTOCOL_ERROR)


@case("9113/5.1/12", "closed (by RST_STREAM): sends a CONTINUATION frame",
      "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame "
      "without the END_HEADERS flag set... connection error of type PROTOCOL_ERROR.")
def _(p):
    reset_stream(p)
    p.send(ContinuationFrame(1, data=p.raw_request(), flags=["END_HEADERS"]))
    return p.expect_connection_error(PROTOCOL_ERROR, STREAM_CLOSED)


@case("9113/5.1/13", "closed (by RST_STREAM): sends a PRIORITY frame",
      "closed: An endpoint MUST NOT send frames other than PRIORITY on a closed stream "
      "(PRIORITY is allowed, so it must be accepted).")
def _(p):
    reset_stream(p)
    p.send(PriorityFrame(1, depends_on=0, stream_weight=1))
    return p.expect_alive()


@case("9113/5.1/14", "closed (both ended): sends a DATA frame",
      "closed: An endpoint that receives any frames after receiving a frame with the END_STREAM "
      "flag set MUST treat that as a connection error (Section 5.4.1) of type STREAM_CLOSED.")
def _(p):
    closed_stream(p)
    p.send(frame(DATA, END_STREAM, 1, b"data"))
    return p.expect_either_error(1, STREAM_CLOSED)


@case("9113/5.1/15", "closed (both ended): sends a HEADERS frame",
      "closed: ... connection error of type STREAM_CLOSED; 5.1.1: an unexpected stream "
      "identifier MUST get a connection error of type PROTOCOL_ERROR.")
def _(p):
    closed_stream(p)
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, p.raw_request()))
    return p.expect_connection_error(STREAM_CLOSED, PROTOCOL_ERROR)


@case("9113/5.1/16", "closed (both ended): sends a CONTINUATION frame",
      "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame "
      "without the END_HEADERS flag set... connection error of type PROTOCOL_ERROR.")
def _(p):
    closed_stream(p)
    p.send(ContinuationFrame(1, data=p.raw_request(), flags=["END_HEADERS"]))
    return p.expect_connection_error(PROTOCOL_ERROR, STREAM_CLOSED)


@case("9113/5.1/17", "closed (both ended): sends WINDOW_UPDATE and RST_STREAM",
      "closed: ... Endpoints MUST ignore WINDOW_UPDATE or RST_STREAM frames received in this "
      "state, though endpoints MAY choose to treat frames that arrive a significant time after "
      "sending END_STREAM as a connection error.")
def _(p):
    closed_stream(p)
    p.send(WindowUpdateFrame(1, window_increment=1), RstStreamFrame(1, error_code=CANCEL))
    return p.expect_alive()


@case("9113/5.1/18", "closed (both ended): sends a PRIORITY frame",
      "closed: ... PRIORITY frames can be received on closed streams and MUST NOT be treated as "
      "errors (the endpoint MUST NOT send frames other than PRIORITY on a closed stream).")
def _(p):
    closed_stream(p)
    p.send(PriorityFrame(1, depends_on=0, stream_weight=1))
    return p.expect_alive()


@case("9113/5.1/19", "open: sends RST_STREAM, then opens the next stream",
      "open: Either endpoint can send a RST_STREAM frame from this state, causing it to "
      "transition immediately to closed.")
def _(p):
    reset_stream(p)
    p.send(p.get(3))
    p.expect_response(3)
    return "response on stream 3"


# Section 5.1.1: stream identifiers

@case("9113/5.1.1/1", "sends an even-numbered stream identifier",
      "Streams initiated by a client MUST use odd-numbered stream identifiers... An endpoint "
      "that receives an unexpected stream identifier MUST respond with a connection error of "
      "type PROTOCOL_ERROR.")
def _(p):
    p.send(p.get(2))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/5.1.1/2", "sends a stream identifier smaller than a previous one",
      "The identifier of a newly established stream MUST be numerically greater than all "
      "streams that the initiating endpoint has opened or reserved... connection error of "
      "type PROTOCOL_ERROR.")
def _(p):
    p.send(p.get(5))
    p.expect_response(5)
    p.send(p.get(3))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/5.1.1/3", "reuses the identifier of a stream it already opened",
      "Stream identifiers cannot be reused... An endpoint that receives an unexpected stream "
      "identifier MUST respond with a connection error of type PROTOCOL_ERROR.")
def _(p):
    closed_stream(p, 3)
    p.send(p.get(3))
    return p.expect_connection_error(PROTOCOL_ERROR, STREAM_CLOSED)


@case("9113/5.1.1/4", "skips identifiers: streams 1 then 7",
      "The first use of a new stream identifier implicitly closes all streams in the idle "
      "state that might have been initiated by that peer with a lower-valued stream "
      "identifier (skipping is allowed).")
def _(p):
    p.send(p.get(1))
    p.expect_response(1)
    p.send(p.get(7))
    p.expect_response(7)
    return "responses on 1 and 7"


@case("9113/5.1.1/5", "sends HEADERS on stream 0",
      "HEADERS frames MUST be associated with a stream. If a HEADERS frame is received whose "
      "Stream Identifier field is 0x00, the recipient MUST respond with a connection error of "
      "type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 0, p.raw_request()))
    return p.expect_connection_error(PROTOCOL_ERROR)


# Section 5.1.2: concurrency

@case("9113/5.1.2/1", "opens more streams than SETTINGS_MAX_CONCURRENT_STREAMS",
      "An endpoint that receives a HEADERS frame that causes its advertised concurrent stream "
      "limit to be exceeded MUST treat this as a stream error (Section 5.4.2) of type "
      "PROTOCOL_ERROR or REFUSED_STREAM.")
def _(p):
    limit = p.server_settings.get(MAX_CONCURRENT_STREAMS)
    if limit is None or limit > 1000:
        raise Skip("the server sets no limit (or above 1000)")
    p.send(*[p.post(1 + 2 * i) for i in range(limit + 1)])
    return p.expect_either_error(1 + 2 * limit, PROTOCOL_ERROR, REFUSED_STREAM)


@case("9113/5.1.2/2", "with the limit's streams open, resets one and opens another",
      "Streams that are in the open state or in either of the half-closed states count toward "
      "the maximum number of streams (a reset stream is closed: the new one does not exceed the "
      "limit, so no PROTOCOL_ERROR; REFUSED_STREAM stays allowed, RFC 9113 8.7, except with "
      "--strict).")
def _(p):
    limit = p.server_settings.get(MAX_CONCURRENT_STREAMS)
    if limit is None or limit > 1000:
        raise Skip("the server sets no limit (or above 1000)")
    p.send(*[p.post(1 + 2 * i) for i in range(limit)])
    p.send(RstStreamFrame(1, error_code=CANCEL))
    last = 1 + 2 * limit
    p.send(p.get(last))
    while True:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY:
            raise Fail(f"want a response or REFUSED_STREAM on stream {last} ({p.trace()})")
        if f[0] == RST_STREAM and f[2] == last:
            if f[3] != struct.pack(">I", REFUSED_STREAM):
                raise Fail(f"want a response or REFUSED_STREAM on stream {last} ({p.trace()})")
            if p.args.strict:
                raise Fail(f"REFUSED_STREAM: the reset stream (its request unfinished) still "
                           f"counts ({p.trace()})")
            return "RST_STREAM(REFUSED_STREAM): the reset stream's slot is still held"
        if f[2] == last and f[4] is not None:
            return "response on the new stream"


# Section 5.3: priority

@case("9113/5.3.1/1", "sends HEADERS that depend on their own stream",
      "A stream cannot depend on itself. An endpoint MUST treat this as a stream error "
      "(Section 5.4.2) of type PROTOCOL_ERROR.")
def _(p):
    p.send(HeadersFrame(1, data=p.raw_request(), flags=["END_STREAM", "END_HEADERS", "PRIORITY"],
                        depends_on=1, stream_weight=15))
    return p.expect_stream_error(1, PROTOCOL_ERROR)


@case("9113/5.3.1/2", "sends PRIORITY that depends on its own stream",
      "A stream cannot depend on itself. An endpoint MUST treat this as a stream error "
      "(Section 5.4.2) of type PROTOCOL_ERROR.")
def _(p):
    p.send(PriorityFrame(1, depends_on=1, stream_weight=15))
    return p.expect_stream_error(1, PROTOCOL_ERROR)


@case("9113/5.3.2/1", "sends a PRIORITY frame with an exclusive dependency on stream 0",
      "Priority signals (PRIORITY frames) MUST be accepted and may be ignored (Section 5.3.2).")
def _(p):
    p.send(PriorityFrame(1, depends_on=0, stream_weight=255, exclusive=True), p.get(1))
    p.expect_response(1)
    return "response"


@case("9113/5.3.2/2", "sends PRIORITY frames forming a dependency on an idle stream",
      "A dependency on a stream that is not currently in the tree results in that stream "
      "being given a default priority; it is not an error.")
def _(p):
    p.send(PriorityFrame(3, depends_on=5, stream_weight=1),
           PriorityFrame(5, depends_on=7, stream_weight=200), p.get(1))
    p.expect_response(1)
    return "response"


# Section 5.4: error handling

@case("9113/5.4.1/1", "sends an invalid PING: GOAWAY, then the connection closes",
      "After sending the GOAWAY frame for an error condition, the endpoint MUST close the TCP "
      "connection.")
def _(p):
    p.send(frame(PING, 0, 0, b"123456"))
    return p.expect_close_after_goaway(FRAME_SIZE_ERROR)


@case("9113/5.4.1/2", "a connection error after a request: GOAWAY names that stream",
      "The GOAWAY frame... last stream identifier... the highest-numbered stream identifier for "
      "which the sender of the GOAWAY frame might have taken some action on.")
def _(p):
    closed_stream(p, 1)
    p.send(frame(DATA, 0, 0, b"x"))
    while True:
        f = p.next_frame()
        if f is None:
            if p.args.strict:
                raise Fail(f"closed without GOAWAY ({p.trace()})")
            return "closed"
        if f[0] == GOAWAY:
            last, code = struct.unpack(">II", f[3][:8])
            if code != PROTOCOL_ERROR or last & 0x7FFFFFFF < 1:
                raise Fail(f"want GOAWAY(last>=1, PROTOCOL_ERROR) ({p.trace()})")
            return f"GOAWAY(last={last}, PROTOCOL_ERROR)"


@case("9113/5.4.2/1", "a stream error leaves the connection usable",
      "A RST_STREAM is the last frame that an endpoint can send on a stream (a stream error "
      "ends that stream only; the connection and other streams go on).")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, p.raw_request(lit("X-Upper", "v"))))
    seen = p.expect_stream_error(1, PROTOCOL_ERROR)
    if not seen.startswith("RST_STREAM"):
        return seen  # a connection error instead (allowed unless --strict): nothing to reuse
    p.send(p.get(3))
    p.expect_response(3)
    return seen + ", then a response on stream 3"


# Section 5.5: extensions

@case("9113/5.5/1", "sends an unknown extension frame on a stream",
      "Implementations MUST ignore unknown or unsupported values in all extensible protocol "
      "elements... MUST discard frames that have unknown or unsupported types.")
def _(p):
    p.send(frame(0xFF, 0xFF, 1, b"extension"))
    p.send(p.get(1))
    p.expect_response(1)
    return "response"


@case("9113/5.5/2", "sends an unknown extension frame in the middle of a field block",
      "Extension frames that appear in the middle of a field block (Section 4.3) are not "
      "permitted; these MUST be treated as a connection error of type PROTOCOL_ERROR.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:3], end_headers=False), frame(0x22, 0, 0, b"ext"),
           ContinuationFrame(1, data=block[3:], flags=["END_HEADERS"]))
    return p.expect_connection_error(PROTOCOL_ERROR)


# Section 6.1: DATA

@case("9113/6.1/1", "sends DATA on stream 0",
      "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient MUST "
      "respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(DATA, 0, 0, b"data"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.1/2", "sends DATA on a stream not open or half-closed (local)",
      "If a DATA frame is received whose stream is not in the open or half-closed (local) "
      "state, the recipient MUST respond with a stream error of type STREAM_CLOSED.")
def _(p):
    p.send(p.get(1), frame(DATA, END_STREAM, 1, b"data"))
    return p.expect_either_error(1, STREAM_CLOSED)


@case("9113/6.1/3", "sends DATA whose pad length is the whole payload",
      "If the length of the padding is the length of the frame payload or greater, the "
      "recipient MUST treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.post(1), frame(DATA, PADDED | END_STREAM, 1, b"\x06abcde"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.1/4", "sends DATA whose pad length exceeds the payload",
      "If the length of the padding is the length of the frame payload or greater, the "
      "recipient MUST treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.post(1), frame(DATA, PADDED | END_STREAM, 1, b"\xffabc"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.1/5", "sends a padded DATA frame",
      "Padding: Padding octets that contain no application semantic value... the Pad Length "
      "field is present (a well-formed padded DATA frame must be accepted).")
def _(p):
    p.send(p.post(1), frame(DATA, PADDED | END_STREAM, 1, b"\x03body\x00\x00\x00"))
    p.expect_response(1)
    return "response"


@case("9113/6.1/6", "sends DATA with zero-length padding field only",
      "Pad Length: An 8-bit field containing the length of the frame padding (a frame of one "
      "octet, pad length 0, carries empty data).")
def _(p):
    p.send(p.post(1), frame(DATA, PADDED | END_STREAM, 1, b"\x00"))
    p.expect_response(1)
    return "response"


@case("9113/6.1/7", "sends a PADDED DATA frame of length 0",
      "A frame too short to hold its Pad Length field is malformed: the padding then covers "
      "the whole payload or more (connection error of type PROTOCOL_ERROR or FRAME_SIZE_ERROR).")
def _(p):
    p.send(p.post(1), frame(DATA, PADDED | END_STREAM, 1, b""))
    return p.expect_connection_error(PROTOCOL_ERROR, FRAME_SIZE_ERROR)


@case("9113/6.1/8", "sends the request body in several DATA frames",
      "DATA frames (type=0x00) convey arbitrary, variable-length sequences of octets "
      "associated with a stream. One or more DATA frames are used to carry request bodies.")
def _(p):
    p.send(p.post(1), frame(DATA, 0, 1, b"one "), frame(DATA, 0, 1, b""),
           frame(DATA, END_STREAM, 1, b"two"))
    p.expect_response(1)
    return "response"


# Section 6.2: HEADERS

@case("9113/6.2/1", "sends HEADERS without END_HEADERS, then a PRIORITY frame",
      "A HEADERS frame without the END_HEADERS flag set MUST be followed by a CONTINUATION "
      "frame for the same stream. A receiver MUST treat the receipt of any other type of frame "
      "or a frame on a different stream as a connection error of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.headers(1, p.raw_request(), end_headers=False),
           PriorityFrame(1, depends_on=0, stream_weight=15))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.2/2", "sends HEADERS without END_HEADERS, then HEADERS on another stream",
      "A receiver MUST treat the receipt of any other type of frame or a frame on a different "
      "stream as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.headers(1, p.raw_request(), end_headers=False), p.headers(3, p.raw_request()))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.2/3", "sends HEADERS on stream 0 (with the HEADERS frame type checks)",
      "If a HEADERS frame is received whose Stream Identifier field is 0x00, the recipient "
      "MUST respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(HEADERS, END_HEADERS, 0, p.raw_request()))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.2/4", "sends HEADERS whose pad length exceeds the payload",
      "Padding that exceeds the size remaining for the field block fragment MUST be treated "
      "as a PROTOCOL_ERROR.")
def _(p):
    block = p.raw_request()
    p.send(frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1,
                 bytes([len(block) + 1]) + block))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.2/5", "sends padded HEADERS",
      "Pad Length / Padding: the HEADERS frame can include padding (a well-formed padded "
      "HEADERS must be accepted).")
def _(p):
    block = p.raw_request()
    p.send(frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1, b"\x06" + block + b"\x00" * 6))
    p.expect_response(1)
    return "response"


@case("9113/6.2/6", "sends HEADERS with the PRIORITY flag",
      "PRIORITY: When set, the Exclusive, Stream Dependency, and Weight fields are present "
      "(and must be skipped to reach the field block).")
def _(p):
    block = p.raw_request()
    p.send(frame(HEADERS, END_STREAM | END_HEADERS | PRIORITY_FLAG, 1,
                 b"\x80\x00\x00\x00\x20" + block))
    p.expect_response(1)
    return "response"


@case("9113/6.2/7", "sends HEADERS with PRIORITY and PADDED",
      "The Pad Length field precedes the priority fields; the padding follows the fragment.")
def _(p):
    block = p.raw_request()
    p.send(frame(HEADERS, END_STREAM | END_HEADERS | PRIORITY_FLAG | PADDED, 1,
                 b"\x02" + b"\x00\x00\x00\x00\x10" + block + b"\x00\x00"))
    p.expect_response(1)
    return "response"


@case("9113/6.2/8", "sends HEADERS with PRIORITY too short to hold its fields",
      "A frame whose length is too small for its mandatory fields is malformed: "
      "FRAME_SIZE_ERROR (or PROTOCOL_ERROR), a connection error for a frame with a field block.")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS | PRIORITY_FLAG, 1, b"\x00\x00\x00"))
    return p.expect_connection_error(FRAME_SIZE_ERROR, PROTOCOL_ERROR)


# Section 6.3: PRIORITY

@case("9113/6.3/1", "sends PRIORITY on stream 0",
      "If a PRIORITY frame is received with a stream identifier of 0x00, the recipient MUST "
      "respond with a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(PRIORITY, 0, 0, b"\x00\x00\x00\x01\x10"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.3/2", "sends PRIORITY of 4 octets",
      "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream error "
      "(Section 5.4.2) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(p.post(1), frame(PRIORITY, 0, 1, b"\x00\x00\x00\x03"))
    return p.expect_stream_error(1, FRAME_SIZE_ERROR)


@case("9113/6.3/3", "sends PRIORITY of 6 octets on an idle stream",
      "A PRIORITY frame with a length other than 5 octets MUST be treated as a stream error "
      "(Section 5.4.2) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(frame(PRIORITY, 0, 3, b"\x00\x00\x00\x01\x10\x00"))
    return p.expect_stream_error(3, FRAME_SIZE_ERROR)


@case("9113/6.3/4", "sends PRIORITY on an open stream",
      "The PRIORITY frame can be sent for a stream in any state.")
def _(p):
    p.send(p.post(1), PriorityFrame(1, depends_on=0, stream_weight=1),
           frame(DATA, END_STREAM, 1, b"x"))
    p.expect_response(1)
    return "response"


# Section 6.4: RST_STREAM

@case("9113/6.4/1", "sends RST_STREAM on stream 0",
      "If a RST_STREAM frame is received with a stream identifier of 0x00, the recipient MUST "
      "treat this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(RST_STREAM, 0, 0, struct.pack(">I", CANCEL)))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.4/2", "sends RST_STREAM on an idle stream",
      "If a RST_STREAM frame identifying an idle stream is received, the recipient MUST treat "
      "this as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(RST_STREAM, 0, 5, struct.pack(">I", CANCEL)))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.4/3", "sends RST_STREAM of 3 octets",
      "A RST_STREAM frame with a length other than 4 octets MUST be treated as a connection "
      "error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(p.post(1), frame(RST_STREAM, 0, 1, b"\x00\x00\x08"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.4/4", "sends RST_STREAM of 5 octets",
      "A RST_STREAM frame with a length other than 4 octets MUST be treated as a connection "
      "error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(p.post(1), frame(RST_STREAM, 0, 1, b"\x00\x00\x00\x08\x00"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.4/5", "sends RST_STREAM on an open stream",
      "The RST_STREAM frame fully terminates the referenced stream (the connection goes on).")
def _(p):
    reset_stream(p)
    return p.expect_alive()


# Section 6.5: SETTINGS

@case("9113/6.5/1", "sends a SETTINGS ACK with a payload",
      "Receipt of a SETTINGS frame with the ACK flag set and a length field value other than 0 "
      "MUST be treated as a connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(frame(SETTINGS, ACK, 0, struct.pack(">HI", INITIAL_WINDOW_SIZE, 100)))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.5/2", "sends SETTINGS on stream 1",
      "If an endpoint receives a SETTINGS frame whose Stream Identifier field is anything other "
      "than 0x00, the endpoint MUST respond with a connection error of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(SETTINGS, 0, 1, b""))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.5/3", "sends SETTINGS of 3 octets",
      "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as a "
      "connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(frame(SETTINGS, 0, 0, b"\x00\x03\x00"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.5/4", "sends SETTINGS of 8 octets",
      "A SETTINGS frame with a length other than a multiple of 6 octets MUST be treated as a "
      "connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(frame(SETTINGS, 0, 0, struct.pack(">HI", MAX_CONCURRENT_STREAMS, 10) + b"\x00\x00"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.5/5", "sends an empty SETTINGS frame",
      "The SETTINGS frame... An empty SETTINGS frame is valid; it MUST be acknowledged: "
      "the recipient MUST immediately emit a SETTINGS frame with the ACK flag set.")
def _(p):
    p.send(SettingsFrame(0))
    while True:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY:
            raise Fail(f"want a SETTINGS ACK ({p.trace()})")
        if f[0] == SETTINGS and f[1] & ACK:
            return "SETTINGS ACK"


def setting_case(cid, title, rule, ident, value, code):
    @case(cid, title, rule)
    def _(p):
        p.send(frame(SETTINGS, 0, 0, struct.pack(">HI", ident, value)))
        return p.expect_connection_error(code)


def setting_accepted(cid, title, rule, ident, value):
    @case(cid, title, rule)
    def _(p):
        p.send(frame(SETTINGS, 0, 0, struct.pack(">HI", ident, value)))
        while True:
            f = p.next_frame()
            if f is None or f[0] == GOAWAY:
                raise Fail(f"want a SETTINGS ACK ({p.trace()})")
            if f[0] == SETTINGS and f[1] & ACK:
                break
        p.send(p.get(1))
        p.expect_response(1)
        return "ACKed, then a response"


setting_case("9113/6.5.2/1", "SETTINGS_ENABLE_PUSH 2",
             "Any value other than 0 or 1 MUST be treated as a connection error (Section 5.4.1) "
             "of type PROTOCOL_ERROR.", ENABLE_PUSH, 2, PROTOCOL_ERROR)
setting_case("9113/6.5.2/2", "SETTINGS_ENABLE_PUSH 2^32-1",
             "Any value other than 0 or 1 MUST be treated as a connection error (Section 5.4.1) "
             "of type PROTOCOL_ERROR.", ENABLE_PUSH, 0xFFFFFFFF, PROTOCOL_ERROR)
setting_case("9113/6.5.2/3", "SETTINGS_INITIAL_WINDOW_SIZE 2^31",
             "Values above the maximum flow-control window size of 2^31-1 MUST be treated as a "
             "connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR.",
             INITIAL_WINDOW_SIZE, 1 << 31, FLOW_CONTROL_ERROR)
setting_case("9113/6.5.2/4", "SETTINGS_INITIAL_WINDOW_SIZE 2^32-1",
             "Values above the maximum flow-control window size of 2^31-1 MUST be treated as a "
             "connection error (Section 5.4.1) of type FLOW_CONTROL_ERROR.",
             INITIAL_WINDOW_SIZE, 0xFFFFFFFF, FLOW_CONTROL_ERROR)
setting_case("9113/6.5.2/5", "SETTINGS_MAX_FRAME_SIZE 16383",
             "The initial value is 2^14 (16,384) octets. The value advertised by an endpoint MUST "
             "be between this initial value and the maximum allowed frame size (2^24-1), "
             "inclusive. Values outside this range MUST be treated as a connection error of type "
             "PROTOCOL_ERROR.", MAX_FRAME_SIZE, 16383, PROTOCOL_ERROR)
setting_case("9113/6.5.2/6", "SETTINGS_MAX_FRAME_SIZE 2^24",
             "Values outside this range MUST be treated as a connection error (Section 5.4.1) of "
             "type PROTOCOL_ERROR.", MAX_FRAME_SIZE, 1 << 24, PROTOCOL_ERROR)
setting_case("9113/6.5.2/7", "SETTINGS_MAX_FRAME_SIZE 0",
             "Values outside this range MUST be treated as a connection error (Section 5.4.1) of "
             "type PROTOCOL_ERROR.", MAX_FRAME_SIZE, 0, PROTOCOL_ERROR)
setting_accepted("9113/6.5.2/8", "an unknown setting identifier",
                 "An endpoint that receives a SETTINGS frame with any unknown or unsupported "
                 "identifier MUST ignore that setting.", 0xF0F0, 12345)
setting_accepted("9113/6.5.2/9", "SETTINGS_MAX_FRAME_SIZE 2^24-1",
                 "The value advertised by an endpoint MUST be between this initial value and the "
                 "maximum allowed frame size (2^24-1 octets), inclusive.", MAX_FRAME_SIZE,
                 (1 << 24) - 1)
setting_accepted("9113/6.5.2/10", "SETTINGS_INITIAL_WINDOW_SIZE 2^31-1",
                 "Values above the maximum flow-control window size of 2^31-1 MUST be treated as "
                 "a connection error (2^31-1 itself is valid).", INITIAL_WINDOW_SIZE, (1 << 31) - 1)
setting_accepted("9113/6.5.2/11", "SETTINGS_ENABLE_PUSH 1 from a client",
                 "The initial value is 1... Any value other than 0 or 1 MUST be treated as a "
                 "connection error (1 is valid; the server need not push).", ENABLE_PUSH, 1)
setting_accepted("9113/6.5.2/12", "SETTINGS_HEADER_TABLE_SIZE 0",
                 "SETTINGS_HEADER_TABLE_SIZE: ... The initial value is 4,096 octets (any value is "
                 "valid; the server's encoder must then use no dynamic table).",
                 HEADER_TABLE_SIZE, 0)
setting_accepted("9113/6.5.2/13", "SETTINGS_MAX_CONCURRENT_STREAMS 0",
                 "A value of 0 for SETTINGS_MAX_CONCURRENT_STREAMS SHOULD NOT be treated as "
                 "special by endpoints (it limits the streams the server may push: none).",
                 MAX_CONCURRENT_STREAMS, 0)
setting_accepted("9113/6.5.2/14", "SETTINGS_MAX_HEADER_LIST_SIZE 100000",
                 "SETTINGS_MAX_HEADER_LIST_SIZE: This advisory setting informs a peer of the "
                 "maximum field section size that the sender is prepared to accept.",
                 MAX_HEADER_LIST_SIZE, 100000)
setting_accepted("9113/6.5.2/15", "SETTINGS_NO_RFC7540_PRIORITIES 1 (RFC 9218)",
                 "Implementations MUST ignore unknown or unsupported values in all extensible "
                 "protocol elements (Section 5.5).", 0x9, 1)


@case("9113/6.5.3/1", "sends several SETTINGS_INITIAL_WINDOW_SIZE values in one frame",
      "The values in the SETTINGS frame MUST be processed in the order they appear, with no "
      "other frame processing between values.")
def _(p):
    p.send(frame(SETTINGS, 0, 0, struct.pack(">HI", INITIAL_WINDOW_SIZE, 100)
                 + struct.pack(">HI", INITIAL_WINDOW_SIZE, 1)))
    p.send(p.get(1))
    return p.expect_data(1, 1)


@case("9113/6.5.3/2", "sends SETTINGS and waits for its acknowledgement",
      "Upon receiving a SETTINGS frame ... the recipient MUST immediately emit a SETTINGS frame "
      "with the ACK flag set.")
def _(p):
    p.send(SettingsFrame(0, settings={MAX_CONCURRENT_STREAMS: 10}))
    while True:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY:
            raise Fail(f"want a SETTINGS ACK ({p.trace()})")
        if f[0] == SETTINGS and f[1] & ACK:
            return "SETTINGS ACK"


@case("9113/6.5.3/3", "sends SETTINGS in the same write as the preface, before reading",
      "The SETTINGS frames received from a peer as part of the connection preface MUST be "
      "acknowledged after sending the connection preface.", handshake=False)
def _(p):
    p.send(PREFACE + SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 1000}).serialize()
           + SettingsFrame(0, settings={ENABLE_PUSH: 0}).serialize())
    acks = 0
    first = True
    while acks < 2:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY:
            raise Fail(f"want two SETTINGS ACKs ({p.trace()})")
        if first and f[0] != SETTINGS:
            raise Fail(f"the server's first frame is {type_name(f[0])} ({p.trace()})")
        first = False
        if f[0] == SETTINGS and f[1] & ACK:
            acks += 1
    return "SETTINGS first, two ACKs"


# Section 6.6: PUSH_PROMISE

@case("9113/6.6/1", "a client sends PUSH_PROMISE",
      "PUSH_PROMISE MUST NOT be sent if the SETTINGS_ENABLE_PUSH setting of the peer endpoint is "
      "set to 0... A client cannot push. Thus, servers MUST treat the receipt of a PUSH_PROMISE "
      "frame as a connection error of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.post(1))
    p.send(frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + p.raw_request()))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.6/2", "a client sends PUSH_PROMISE on stream 0",
      "If the Stream Identifier field specifies the value 0x00, a recipient MUST respond with a "
      "connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(PUSH_PROMISE, END_HEADERS, 0, struct.pack(">I", 2) + p.raw_request()))
    return p.expect_connection_error(PROTOCOL_ERROR)


# Section 6.7: PING

@case("9113/6.7/1", "sends a PING",
      "Receivers of a PING frame that does not include an ACK flag MUST send a PING frame with "
      "the ACK flag set in response, with an identical frame payload.")
def _(p):
    return p.expect_alive(b"\x00\xff\x01\xfe\x02\xfd\x03\xfc")


@case("9113/6.7/2", "sends a PING with the ACK flag",
      "A PING response... An endpoint MUST NOT respond to PING frames containing this flag.")
def _(p):
    p.send(PingFrame(0, opaque_data=b"ack-only", flags=["ACK"]))
    p.send(PingFrame(0, opaque_data=b"answerme"))
    while True:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY:
            raise Fail(f"want the second PING answered ({p.trace()})")
        if f[0] == PING and f[1] & ACK:
            if f[3] == b"ack-only":
                raise Fail("answered a PING that had the ACK flag")
            return "only the PING without ACK answered"


@case("9113/6.7/3", "sends PING on stream 1",
      "If a PING frame is received with a Stream Identifier field value other than 0x00, the "
      "recipient MUST respond with a connection error of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(PING, 0, 1, b"12345678"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.7/4", "sends PING of 6 octets",
      "Receipt of a PING frame with a length field value other than 8 MUST be treated as a "
      "connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(frame(PING, 0, 0, b"123456"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.7/5", "sends PING of 9 octets with the ACK flag",
      "Receipt of a PING frame with a length field value other than 8 MUST be treated as a "
      "connection error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(frame(PING, ACK, 0, b"123456789"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


# Section 6.8: GOAWAY

@case("9113/6.8/1", "sends GOAWAY on stream 1",
      "An endpoint MUST treat a GOAWAY frame with a stream identifier other than 0x00 as a "
      "connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    p.send(frame(GOAWAY, 0, 1, struct.pack(">II", 0, NO_ERROR)))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.8/2", "sends GOAWAY of 4 octets",
      "GOAWAY frames carry a Last-Stream-ID and an Error Code (8 octets at least): a shorter "
      "frame is a connection error of type FRAME_SIZE_ERROR (Section 4.2).")
def _(p):
    p.send(frame(GOAWAY, 0, 0, struct.pack(">I", 0)))
    return p.expect_connection_error(FRAME_SIZE_ERROR, PROTOCOL_ERROR)


@case("9113/6.8/3", "sends GOAWAY, then finishes a stream it had opened",
      "Activity on streams numbered lower than or equal to the last stream identifier might "
      "still complete successfully (the GOAWAY of a client stops only server-initiated streams).")
def _(p):
    p.send(p.post(1), GoAwayFrame(0, last_stream_id=0, error_code=NO_ERROR),
           frame(DATA, END_STREAM, 1, b"x"))
    p.expect_response(1)
    return "response"


# Section 6.9: WINDOW_UPDATE

@case("9113/6.9/1", "sends WINDOW_UPDATE with increment 0 on the connection",
      "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window "
      "increment of 0 as a stream error of type PROTOCOL_ERROR; errors on the connection "
      "flow-control window MUST be treated as a connection error.")
def _(p):
    p.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.9/2", "sends WINDOW_UPDATE with increment 0 on a stream",
      "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window "
      "increment of 0 as a stream error (Section 5.4.2) of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.post(1), frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0)))
    return p.expect_stream_error(1, PROTOCOL_ERROR)


@case("9113/6.9/3", "sends WINDOW_UPDATE of 3 octets",
      "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a connection "
      "error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.9/4", "sends WINDOW_UPDATE of 5 octets on a stream",
      "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated as a connection "
      "error (Section 5.4.1) of type FRAME_SIZE_ERROR.")
def _(p):
    p.send(p.post(1), frame(WINDOW_UPDATE, 0, 1, b"\x00\x00\x00\x01\x00"))
    return p.expect_connection_error(FRAME_SIZE_ERROR)


@case("9113/6.9/5", "sends WINDOW_UPDATE with the reserved bit set",
      "Reserved: A reserved 1-bit field. The semantics of this bit are undefined (it must be "
      "ignored: an increment of 2^31 | 1 adds 1).")
def _(p):
    p.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x80000001)))
    return p.expect_alive()


@case("9113/6.9.1/1", "SETTINGS_INITIAL_WINDOW_SIZE 1, then a request",
      "The sender MUST NOT send a flow-controlled frame with a length that exceeds the space "
      "available in either of the flow-control windows advertised by the receiver.",
      settings={INITIAL_WINDOW_SIZE: 1})
def _(p):
    p.send(p.get(1))
    return p.expect_data(1, 1)


@case("9113/6.9.1/2", "raises the connection window above 2^31-1",
      "A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets. If a sender "
      "receives a WINDOW_UPDATE that causes a flow-control window to exceed this maximum, it "
      "MUST terminate... the connection, it sends a GOAWAY frame with FLOW_CONTROL_ERROR.")
def _(p):
    p.send(WindowUpdateFrame(0, window_increment=0x7FFFFFFF),
           WindowUpdateFrame(0, window_increment=0x7FFFFFFF))
    return p.expect_connection_error(FLOW_CONTROL_ERROR)


@case("9113/6.9.1/3", "raises a stream's window above 2^31-1",
      "If a sender receives a WINDOW_UPDATE that causes a flow-control window to exceed this "
      "maximum, it MUST terminate either the stream or the connection, as appropriate... "
      "for streams, the sender sends a RST_STREAM with an error code of FLOW_CONTROL_ERROR.")
def _(p):
    p.send(p.post(1), WindowUpdateFrame(1, window_increment=0x7FFFFFFF),
           WindowUpdateFrame(1, window_increment=0x7FFFFFFF))
    return p.expect_stream_error(1, FLOW_CONTROL_ERROR)


@case("9113/6.9.1/4", "a zero window, then a WINDOW_UPDATE releases the body",
      "Flow control ... the receiver advertises how many octets it is prepared to accept; the "
      "sender waits for a WINDOW_UPDATE before it sends more.", settings={INITIAL_WINDOW_SIZE: 0})
def _(p):
    p.send(p.get(1))
    p.expect_response(1)
    p.send(WindowUpdateFrame(1, window_increment=1))
    return p.expect_data(1, 1)


@case("9113/6.9.2/1", "changes SETTINGS_INITIAL_WINDOW_SIZE after sending HEADERS",
      "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver MUST adjust the size "
      "of all stream flow-control windows that it maintains by the difference between the new "
      "value and the old value.", settings={INITIAL_WINDOW_SIZE: 0})
def _(p):
    p.send(p.get(1))
    p.expect_response(1)
    p.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 1}))
    return p.expect_data(1, 1)


@case("9113/6.9.2/2", "a SETTINGS change makes a stream's window negative",
      "A change to SETTINGS_INITIAL_WINDOW_SIZE can cause the available space in a flow-control "
      "window to become negative. A sender MUST track the negative flow-control window and "
      "MUST NOT send new flow-controlled frames until it receives WINDOW_UPDATE frames that "
      "cause the flow-control window to become positive.", settings={INITIAL_WINDOW_SIZE: 1})
def _(p):
    p.send(p.get(1))
    p.expect_data(1, 1)
    # Window 1 - 1 = 0; the new initial value 0 makes it -1; +2 leaves room for 1 octet.
    p.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 0}))
    while True:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY:
            raise Fail(f"want a SETTINGS ACK ({p.trace()})")
        if f[0] == DATA and f[2] == 1 and len(f[3]):
            raise Fail(f"DATA sent with a zero window ({p.trace()})")
        if f[0] == SETTINGS and f[1] & ACK:
            break
    p.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 1}))
    # Now -1 + 1 = 0: still nothing may be sent; +1 makes room for exactly 1 octet.
    p.send(WindowUpdateFrame(1, window_increment=1))
    return p.expect_data(1, 1)


@case("9113/6.9.2/3", "SETTINGS_INITIAL_WINDOW_SIZE that makes an open stream's window overflow",
      "An endpoint MUST treat a change to SETTINGS_INITIAL_WINDOW_SIZE that causes any "
      "flow-control window to exceed the maximum size as a connection error (Section 5.4.1) of "
      "type FLOW_CONTROL_ERROR.", settings={INITIAL_WINDOW_SIZE: 0})
def _(p):
    p.send(p.post(1), WindowUpdateFrame(1, window_increment=0x7FFFFFFF))
    p.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 1}))
    return p.expect_connection_error(FLOW_CONTROL_ERROR)


@case("9113/6.9.2/4", "the connection window is not changed by SETTINGS_INITIAL_WINDOW_SIZE",
      "The connection flow-control window can only be changed using WINDOW_UPDATE frames.",
      settings={INITIAL_WINDOW_SIZE: 0})
def _(p):
    p.send(p.get(1))
    p.expect_response(1)
    # A larger stream window, but the connection's stays at 65,535: one octet flows.
    p.send(SettingsFrame(0, settings={INITIAL_WINDOW_SIZE: 1}))
    return p.expect_data(1, 1)


# Section 6.10: CONTINUATION

@case("9113/6.10/1", "sends several CONTINUATION frames after HEADERS",
      "Any number of CONTINUATION frames can be sent, as long as the preceding frame is on the "
      "same stream and is a HEADERS, PUSH_PROMISE, or CONTINUATION frame without END_HEADERS.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:5], end_headers=False),
           ContinuationFrame(1, data=block[5:10]), ContinuationFrame(1, data=block[10:20]),
           ContinuationFrame(1, data=block[20:], flags=["END_HEADERS"]))
    p.expect_response(1)
    return "response"


@case("9113/6.10/2", "sends CONTINUATION followed by a frame other than CONTINUATION",
      "If the END_HEADERS flag is not set, this frame MUST be followed by another CONTINUATION "
      "frame. A receiver MUST treat the receipt of any other type of frame or a frame on a "
      "different stream as a connection error of type PROTOCOL_ERROR.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:5], end_headers=False), ContinuationFrame(1, data=block[5:10]),
           frame(DATA, 0, 1, b"x"))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.10/3", "sends CONTINUATION on stream 0",
      "If a CONTINUATION frame is received with a Stream Identifier field of 0x00, the "
      "recipient MUST respond with a connection error of type PROTOCOL_ERROR.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:5], end_headers=False),
           frame(CONTINUATION, END_HEADERS, 0, block[5:]))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.10/4", "sends CONTINUATION after HEADERS with END_HEADERS",
      "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame "
      "without the END_HEADERS flag set. A recipient that observes violation of this rule MUST "
      "respond with a connection error of type PROTOCOL_ERROR.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block, end_stream=False),
           frame(CONTINUATION, END_HEADERS, 1, lit("x-late", "1")))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.10/5", "sends CONTINUATION after a CONTINUATION with END_HEADERS",
      "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame "
      "without the END_HEADERS flag set... connection error of type PROTOCOL_ERROR.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:5], end_stream=False, end_headers=False),
           frame(CONTINUATION, END_HEADERS, 1, block[5:]),
           frame(CONTINUATION, END_HEADERS, 1, lit("x-late", "1")))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.10/6", "sends CONTINUATION after DATA",
      "A CONTINUATION frame MUST be preceded by a HEADERS, PUSH_PROMISE or CONTINUATION frame "
      "without the END_HEADERS flag set... connection error of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.post(1), frame(DATA, 0, 1, b"x"), frame(CONTINUATION, END_HEADERS, 1, lit("a", "b")))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.10/7", "sends CONTINUATION on another stream during a field block",
      "A receiver MUST treat the receipt of any other type of frame or a frame on a different "
      "stream as a connection error (Section 5.4.1) of type PROTOCOL_ERROR.")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:5], end_headers=False),
           frame(CONTINUATION, END_HEADERS, 3, block[5:]))
    return p.expect_connection_error(PROTOCOL_ERROR)


@case("9113/6.10/8", "sends an empty CONTINUATION, then the rest",
      "CONTINUATION frames carry a field block fragment of any length (empty included).")
def _(p):
    block = p.raw_request()
    p.send(p.headers(1, block[:5], end_headers=False), ContinuationFrame(1, data=b""),
           ContinuationFrame(1, data=block[5:], flags=["END_HEADERS"]))
    p.expect_response(1)
    return "response"


@case("9113/6.10/9", "splits a field block inside an HPACK integer and string",
      "A field block is the concatenation of the fragments; it is decoded as one unit "
      "(Section 4.3), whatever the frame boundaries.")
def _(p):
    block = p.raw_request(lit("x-long", "v" * 300))
    parts = [block[i:i + 1] for i in range(len(block) - 300, len(block) - 296)]
    head = block[:len(block) - 300]
    p.send(p.headers(1, head, end_headers=False), *[ContinuationFrame(1, data=x) for x in parts],
           ContinuationFrame(1, data=block[len(block) - 296:], flags=["END_HEADERS"]))
    p.expect_response(1)
    return "response"


# Section 7: error codes

@case("9113/7/1", "sends GOAWAY with an unknown error code",
      "Unknown or unsupported error codes MUST NOT trigger any special behavior. These MAY be "
      "treated by an implementation as being equivalent to INTERNAL_ERROR.")
def _(p):
    # A client's GOAWAY tells the server it may close once nothing is in flight; so a
    # clean end (no GOAWAY of its own with an error code) passes as well as a PING answer.
    p.send(GoAwayFrame(0, last_stream_id=0, error_code=0xFF), PingFrame(0, opaque_data=b"unknown!"))
    while True:
        f = p.next_frame()
        if f is None:
            return "closed without an error"
        if f[0] == PING and f[1] & ACK and f[3] == b"unknown!":
            return "PING answered"
        if f[0] == GOAWAY and f[3][4:8] != struct.pack(">I", NO_ERROR):
            raise Fail(f"an error of its own after a GOAWAY with an unknown code ({p.trace()})")


@case("9113/7/2", "sends RST_STREAM with an unknown error code",
      "Unknown or unsupported error codes MUST NOT trigger any special behavior.")
def _(p):
    p.send(p.post(1), RstStreamFrame(1, error_code=0xFF))
    return p.expect_alive()


@case("9113/7/3", "sends RST_STREAM with each defined error code on open streams",
      "Error codes ... NO_ERROR through HTTP_1_1_REQUIRED: each ends only its stream.")
def _(p):
    for code in range(14):
        p.send(p.post(1 + 2 * code), RstStreamFrame(1 + 2 * code, error_code=code))
    p.send(p.get(29))
    p.expect_response(29)
    return "response on stream 29"


# Section 8.1: message framing

@case("9113/8.1/1", "sends a second HEADERS without END_STREAM",
      "An endpoint that receives a HEADERS frame without the END_STREAM flag set after "
      "receiving the HEADERS frame that opens a request or after receiving a final (non-"
      "informational) status code MUST treat the corresponding request or response as "
      "malformed (Section 8.1.1).")
def _(p):
    p.send(p.post(1), frame(DATA, 0, 1, b"x"),
           frame(HEADERS, END_HEADERS, 1, lit("x-trailer", "v")))
    return p.expect_stream_error(1, PROTOCOL_ERROR)


@case("9113/8.1/2", "sends trailers after the body",
      "A trailer section... in a HEADERS frame that carries the END_STREAM flag (must be "
      "accepted).")
def _(p):
    p.send(p.post(1, extra=[("te", "trailers")]), frame(DATA, 0, 1, b"body"),
           frame(HEADERS, END_STREAM | END_HEADERS, 1, lit("x-trailer", "v")))
    p.expect_response(1)
    return "response"


@case("9113/8.1/3", "sends trailers split over CONTINUATION",
      "A trailer section is sent as a field block after all DATA frames (HEADERS with "
      "END_STREAM, CONTINUATION frames possible).")
def _(p):
    p.send(p.post(1), frame(DATA, 0, 1, b"body"),
           frame(HEADERS, END_STREAM, 1, lit("x-trailer", "v")),
           frame(CONTINUATION, END_HEADERS, 1, lit("x-other", "w")))
    p.expect_response(1)
    return "response"


@case("9113/8.1/4", "sends trailers without a body",
      "A request... one HEADERS frame... followed by zero or more DATA frames... optionally, "
      "one HEADERS frame containing the trailer section.")
def _(p):
    p.send(p.post(1), frame(HEADERS, END_STREAM | END_HEADERS, 1, lit("x-trailer", "v")))
    p.expect_response(1)
    return "response"


@case("9113/8.1/5", "sends trailers with a pseudo-header",
      "Pseudo-header fields MUST NOT appear in a trailer section. Endpoints MUST treat a "
      "request or response that contains such as malformed.")
def _(p):
    p.send(p.post(1), frame(DATA, 0, 1, b"body"),
           frame(HEADERS, END_STREAM | END_HEADERS, 1, lit(":path", "/x")))
    return p.expect_stream_error(1, PROTOCOL_ERROR)


def body_case(cid, title, rule, content_length, chunks, end_on_headers=False):
    @case(cid, title, rule)
    def _(p):
        extra = [("content-length", str(content_length))]
        if end_on_headers:
            p.send(p.get(1, method="POST", extra=extra))
        else:
            p.send(p.post(1, extra=extra))
            for i, c in enumerate(chunks):
                p.send(frame(DATA, END_STREAM if i == len(chunks) - 1 else 0, 1, c))
        return p.expect_stream_error(1, PROTOCOL_ERROR)


CL_RULE = ("A request or response is also malformed if the value of a content-length header "
           "field does not equal the sum of the DATA frame payload lengths that form the "
           "content. Malformed requests MUST be treated as a stream error of type "
           "PROTOCOL_ERROR.")
body_case("9113/8.1.1/1", "content-length larger than the one DATA frame", CL_RULE, 8, [b"abcd"])
body_case("9113/8.1.1/2", "content-length larger than the sum of several DATA frames", CL_RULE,
          10, [b"abcd", b"efgh"])
body_case("9113/8.1.1/3", "content-length smaller than the body", CL_RULE, 2, [b"abcd"])
body_case("9113/8.1.1/4", "content-length smaller than the body, past it mid-stream", CL_RULE,
          5, [b"abcd", b"efgh", b"ijkl"])
body_case("9113/8.1.1/5", "content-length 4 and END_STREAM on HEADERS", CL_RULE, 4, [],
          end_on_headers=True)


@case("9113/8.1.1/6", "content-length matching the body across frames",
      "A content-length equal to the sum of the DATA frame payload lengths is well-formed.")
def _(p):
    p.send(p.post(1, extra=[("content-length", "8")]), frame(DATA, 0, 1, b"abcd"),
           frame(DATA, END_STREAM, 1, b"efgh"))
    p.expect_response(1)
    return "response"


@case("9113/8.1.1/7", "two different content-length fields",
      "A request or response is malformed if the value of a content-length header field does "
      "not equal the sum of the DATA frame payload lengths (two values cannot both equal it).")
def _(p):
    p.send(p.post(1, extra=[("content-length", "4"), ("content-length", "5")]),
           frame(DATA, END_STREAM, 1, b"abcd"))
    return p.expect_stream_error(1, PROTOCOL_ERROR)


@case("9113/8.1.1/8", "content-length that is not a number",
      "Content-Length = 1*DIGIT (RFC 9110 8.6); a request with an invalid content-length is "
      "malformed: stream error of type PROTOCOL_ERROR.")
def _(p):
    p.send(p.post(1, extra=[("content-length", "4x")]), frame(DATA, END_STREAM, 1, b"abcd"))
    return p.expect_stream_error(1, PROTOCOL_ERROR)


# Section 8.2: fields

def malformed(cid, title, rule, block_of):
    """A request whose field block (built by `block_of(p)`) is malformed: RST_STREAM."""
    @case(cid, title, rule)
    def _(p):
        p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block_of(p)))
        return p.expect_stream_error(1, PROTOCOL_ERROR)


NAME_RULE = ("A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or "
             "0x7f-0xff (all ranges inclusive)... a request that contains a field that violates "
             "any of these conditions MUST be treated as malformed (Section 8.1.1).")
VALUE_RULE = ("A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line feed (ASCII "
              "LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position. A field value "
              "MUST NOT start or end with an ASCII whitespace character (ASCII SP or HTAB)... "
              "MUST be treated as malformed.")
malformed("9113/8.2/1", "a field name in uppercase",
          "Field names MUST be converted to lowercase when constructing an HTTP/2 message... " +
          NAME_RULE, lambda p: p.raw_request(lit("X-Upper", "v")))
malformed("9113/8.2.1/1", "a field name with a space", NAME_RULE,
          lambda p: p.raw_request(lit("x bad", "v")))
malformed("9113/8.2.1/2", "a field name with a colon inside", NAME_RULE + " With the exception "
          "of pseudo-header fields, field names MUST NOT include a colon.",
          lambda p: p.raw_request(lit("x:bad", "v")))
malformed("9113/8.2.1/3", "a field name with a non-ASCII octet", NAME_RULE,
          lambda p: p.raw_request(lit(b"x-\xe9", "v")))
malformed("9113/8.2.1/4", "a field name with DEL (0x7f)", NAME_RULE,
          lambda p: p.raw_request(lit(b"x-\x7f", "v")))
malformed("9113/8.2.1/5", "an empty field name", "A field name MUST NOT be empty (the field-name "
          "token of RFC 9110 5.1 has at least one character); " + NAME_RULE,
          lambda p: p.raw_request(lit("", "v")))
malformed("9113/8.2.1/6", "a field value with NUL", VALUE_RULE,
          lambda p: p.raw_request(lit("x-v", b"a\x00b")))
malformed("9113/8.2.1/7", "a field value with CR", VALUE_RULE,
          lambda p: p.raw_request(lit("x-v", b"a\rb")))
malformed("9113/8.2.1/8", "a field value with LF", VALUE_RULE,
          lambda p: p.raw_request(lit("x-v", b"a\nb")))
malformed("9113/8.2.1/9", "a field value with a leading space", VALUE_RULE,
          lambda p: p.raw_request(lit("x-v", b" ab")))
malformed("9113/8.2.1/10", "a field value with a trailing tab", VALUE_RULE,
          lambda p: p.raw_request(lit("x-v", b"ab\t")))
malformed("9113/8.2.1/11", "a pseudo-header value with CRLF inside (request smuggling)",
          VALUE_RULE, lambda p: lit(":method", "GET") + lit(":scheme", p.args.scheme)
          + lit(":authority", p.args.authority) + lit(":path", b"/ HTTP/1.1\r\nx: y"))


@case("9113/8.2.1/12", "a field value with a space and a tab inside",
      "Field values... may contain SP and HTAB between other characters (a valid field).")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, p.raw_request(lit("x-v", b"a b\tc"))))
    p.expect_response(1)
    return "response"


@case("9113/8.2.1/13", "an empty field value",
      "A field value MUST NOT start or end with whitespace... (an empty value does neither: "
      "valid).")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, p.raw_request(lit("x-empty", b""))))
    p.expect_response(1)
    return "response"


CONN_RULE = ("An endpoint MUST NOT generate an HTTP/2 message containing connection-specific "
             "header fields... Any message containing connection-specific header fields MUST be "
             "treated as malformed (Section 8.1.1).")
for i, (name, value) in enumerate([("connection", "keep-alive"), ("keep-alive", "timeout=5"),
                                   ("proxy-connection", "keep-alive"),
                                   ("transfer-encoding", "chunked"), ("upgrade", "h2c")]):
    malformed(f"9113/8.2.2/{i + 1}", f"a {name} field", CONN_RULE,
              lambda p, n=name, v=value: p.raw_request(lit(n, v)))
malformed("9113/8.2.2/6", "TE with a value other than trailers",
          "The only exception to this is the TE header field, which MAY be present in an HTTP/2 "
          "request; when it is, it MUST NOT contain any value other than \"trailers\".",
          lambda p: p.raw_request(lit("te", "trailers, deflate")))


@case("9113/8.2.2/7", "TE: trailers",
      "The only exception to this is the TE header field, which MAY be present in an HTTP/2 "
      "request; when it is, it MUST NOT contain any value other than \"trailers\".")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, p.raw_request(lit("te", "trailers"))))
    p.expect_response(1)
    return "response"


@case("9113/8.2.3/1", "a cookie split into several fields",
      "The Cookie header field MAY be split into separate header fields, each with one or more "
      "cookie-pairs (must be accepted).")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                 p.raw_request(lit("cookie", "a=b") + lit("cookie", "c=d") + lit("cookie", "e=f"))))
    p.expect_response(1)
    return "response"


# Section 8.3: pseudo-header fields

PSEUDO_RULE = ("Endpoints MUST treat a request or response that contains undefined or invalid "
               "pseudo-header fields as malformed (Section 8.1.1).")
REQUIRED_RULE = ("All HTTP/2 requests MUST include exactly one valid value for the :method, "
                 ":scheme, and :path pseudo-header fields, unless they are CONNECT requests. An "
                 "HTTP request that omits mandatory pseudo-header fields is malformed.")


def fields(p, drop=(), add=(), order=None):
    """The ordinary request's fields as literals, without `drop`, with `add` after."""
    items = [(":method", "GET"), (":scheme", p.args.scheme), (":authority", p.args.authority),
             (":path", p.args.path)]
    items = [(n, v) for n, v in items if n not in drop] + list(add)
    return b"".join(lit(n, v) for n, v in (order(items) if order else items))


malformed("9113/8.3/1", "an unknown pseudo-header", PSEUDO_RULE,
          lambda p: fields(p, add=[(":unknown", "x")]))
malformed("9113/8.3/2", "a response pseudo-header (:status) in a request",
          "Pseudo-header fields defined for responses MUST NOT appear in requests. " + PSEUDO_RULE,
          lambda p: fields(p, add=[(":status", "200")]))
malformed("9113/8.3/3", "a pseudo-header after a regular field",
          "All pseudo-header fields MUST appear in a field block before all regular field lines. "
          "Any request or response that contains a pseudo-header field that appears in a field "
          "block after a regular field line MUST be treated as malformed.",
          lambda p: fields(p, drop=[":path"], add=[("x-a", "b"), (":path", p.args.path)]))
malformed("9113/8.3.1/1", "an empty :path",
          "This pseudo-header field MUST NOT be empty for http or https URIs.",
          lambda p: fields(p, drop=[":path"], add=[(":path", "")]))
malformed("9113/8.3.1/2", "no :method", REQUIRED_RULE, lambda p: fields(p, drop=[":method"]))
malformed("9113/8.3.1/3", "no :scheme", REQUIRED_RULE, lambda p: fields(p, drop=[":scheme"]))
malformed("9113/8.3.1/4", "no :path", REQUIRED_RULE, lambda p: fields(p, drop=[":path"]))
malformed("9113/8.3.1/5", "two :method fields", REQUIRED_RULE,
          lambda p: fields(p, order=lambda i: [(":method", "GET")] + i))
malformed("9113/8.3.1/6", "two :scheme fields", REQUIRED_RULE,
          lambda p: fields(p, order=lambda i: [(":scheme", p.args.scheme)] + i))
malformed("9113/8.3.1/7", "two :path fields", REQUIRED_RULE,
          lambda p: fields(p, order=lambda i: [(":path", p.args.path)] + i))
malformed("9113/8.3.1/8", "two :authority fields",
          "The same pseudo-header field name MUST NOT appear more than once in a field block. A "
          "field block for an HTTP request or response that contains a repeated pseudo-header "
          "field name MUST be treated as malformed.",
          lambda p: fields(p, order=lambda i: [(":authority", p.args.authority)] + i))
malformed("9113/8.3.1/9", "an empty :method",
          "All HTTP/2 requests MUST include exactly one valid value for the :method... "
          "(the method token has at least one character).",
          lambda p: fields(p, drop=[":method"], add=[(":method", "")]))
malformed("9113/8.3.1/10", "a :path of a relative form for an http URI",
          "... http or https URIs that do not contain a path component MUST include a value of "
          "'/' (the path is origin-form, starting with '/', or '*' for OPTIONS).",
          lambda p: fields(p, drop=[":path"], add=[(":path", "index.html")]))
malformed("9113/8.3.1/11", "a :status field only (a response in a request)",
          "Pseudo-header fields defined for responses MUST NOT appear in requests.",
          lambda p: lit(":status", "200") + lit("x-a", "b"))
malformed("9113/8.5/1", "CONNECT with :scheme and :path",
          "CONNECT: The :scheme and :path pseudo-header fields MUST be omitted.",
          lambda p: fields(p, drop=[":method"], order=lambda i: [(":method", "CONNECT")] + i))
malformed("9113/8.5/2", "CONNECT without :authority",
          "CONNECT: The :authority pseudo-header field contains the host and port to connect "
          "to... a CONNECT request that does not conform to these restrictions is malformed.",
          lambda p: lit(":method", "CONNECT"))


@case("9113/8.3.1/12", "OPTIONS with :path *",
      "The :path pseudo-header field ... '*' for OPTIONS requests (a valid request).")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, fields(p, drop=[":method", ":path"],
           add=[(":method", "OPTIONS"), (":path", "*")])))
    p.expect_response(1)
    return "response"


@case("9113/8.3.1/13", "no :authority but a host field",
      "Clients that generate HTTP/2 requests directly MUST use the :authority pseudo-header "
      "field... (a request with Host instead is still well-formed for the server).")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, fields(p, drop=[":authority"],
           add=[("host", p.args.authority)])))
    p.expect_response(1)
    return "response"


# Section 8.4: server push

@case("9113/8.4/1", "a client's SETTINGS_ENABLE_PUSH 0 is honoured while a request is answered",
      "A server MUST NOT send PUSH_PROMISE... when SETTINGS_ENABLE_PUSH is 0.",
      settings={ENABLE_PUSH: 0})
def _(p):
    p.send(p.get(1))
    while True:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY:
            raise Fail(f"want the response ({p.trace()})")
        if f[0] == PUSH_PROMISE:
            raise Fail("PUSH_PROMISE with push disabled")
        if f[2] == 1 and f[1] & END_STREAM and f[0] in (HEADERS, DATA):
            return "response, no PUSH_PROMISE"


# RFC 7541 (HPACK)

def hpack_error(cid, title, rule, block_of):
    @case(cid, title, rule)
    def _(p):
        p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block_of(p)))
        return p.expect_connection_error(COMPRESSION_ERROR)


def hpack_ok(cid, title, rule, block_of, requests=1):
    @case(cid, title, rule)
    def _(p):
        for i in range(requests):
            p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, block_of(p, i)))
            p.expect_response(1 + 2 * i)
        return "response" if requests == 1 else f"{requests} responses"


DECODE_RULE = ("A decoding error in a field block MUST be treated as a connection error of "
               "type COMPRESSION_ERROR (RFC 9113 4.3).")
hpack_error("7541/2.3.3/1", "an indexed field with an index past both tables",
            "Indices strictly greater than the sum of the lengths of both tables MUST be treated "
            "as a decoding error. " + DECODE_RULE,
            lambda p: p.raw_request(hint(70, 7, 0x80)))
hpack_error("7541/2.3.3/2", "a literal field whose name index is past both tables",
            "Indices strictly greater than the sum of the lengths of both tables MUST be treated "
            "as a decoding error.", lambda p: p.raw_request(lit_idx(70, "v", "incremental")))
hpack_error("7541/2.3.3/3", "an index one past the static table with an empty dynamic table",
            "Indices strictly greater than the sum of the lengths of both tables MUST be treated "
            "as a decoding error.", lambda p: p.raw_request(hint(62, 7, 0x80)))
hpack_error("7541/2.3.3/4", "a never-indexed literal whose name index is past both tables",
            "Indices strictly greater than the sum of the lengths of both tables MUST be treated "
            "as a decoding error.", lambda p: p.raw_request(lit_idx(100, "v", "never")))
hpack_error("7541/4.2/1", "a dynamic table size update at the end of a field block",
            "This dynamic table size update MUST occur at the beginning of the first field block "
            "following the change to the dynamic table size... a dynamic table size update "
            "after the first field representation MUST be treated as a decoding error.",
            lambda p: p.raw_request(size_update(0)))
hpack_error("7541/4.2/2", "a dynamic table size update between two fields",
            "A dynamic table size update MUST occur at the beginning of a field block (RFC 7541 "
            "4.2); elsewhere it is a decoding error.",
            lambda p: lit(":method", "GET") + size_update(100) + fields(p, drop=[":method"]))
hpack_error("7541/5.1/1", "an integer that overflows (index with 10 continuation octets)",
            "Integer encodings that exceed implementation limits MUST be treated as decoding "
            "errors (RFC 7541 5.1 and 7.4).",
            lambda p: p.raw_request(b"\xff" + b"\xff" * 10 + b"\x01"))
hpack_error("7541/5.1/2", "a string length that overflows",
            "Integer encodings that exceed implementation limits MUST be treated as decoding "
            "errors.", lambda p: p.raw_request(b"\x00\x7f" + b"\xff" * 10 + b"\x01"))
hpack_error("7541/5.2/1", "a string whose length runs past the block",
            "String Length: The number of octets used to encode the string literal (the block "
            "ends before: a decoding error).", lambda p: p.raw_request(b"\x00\x05x-abc\x0aabc"))
hpack_error("7541/5.2/2", "Huffman padding longer than 7 bits",
            "A padding strictly longer than 7 bits MUST be treated as a decoding error.",
            lambda p: p.raw_request(b"\x00" + hstr("x-h") + hint(2, 7, 0x80)
                                    + huffman_encode(b"a", extra_pad_bytes=1)))
hpack_error("7541/5.2/3", "Huffman padding of zeros",
            "A padding not corresponding to the most significant bits of the code for the EOS "
            "symbol MUST be treated as a decoding error.",
            lambda p: p.raw_request(b"\x00" + hstr("x-h") + hint(1, 7, 0x80)
                                    + huffman_encode(b"a", pad_bit=0)))
hpack_error("7541/5.2/4", "a Huffman string containing EOS",
            "A Huffman-encoded string literal containing the EOS symbol MUST be treated as a "
            "decoding error.",
            lambda p: p.raw_request(b"\x00" + hstr("x-h") + hint(len(huffman_encode(b"ab", eos=True)), 7, 0x80)
                                    + huffman_encode(b"ab", eos=True)))
hpack_error("7541/5.2/5", "a Huffman field name with zero padding",
            "A padding not corresponding to the most significant bits of the code for the EOS "
            "symbol MUST be treated as a decoding error.",
            lambda p: p.raw_request(b"\x00" + hint(1, 7, 0x80) + huffman_encode(b"a", pad_bit=0)
                                    + hstr("v")))
hpack_error("7541/6.1/1", "an indexed field with index 0",
            "The index value of 0 is not used. It MUST be treated as a decoding error if found "
            "in an indexed header field representation.", lambda p: p.raw_request(b"\x80"))
hpack_error("7541/6.3/1", "a table size update above SETTINGS_HEADER_TABLE_SIZE",
            "The new maximum size MUST be lower than or equal to the limit determined by the "
            "protocol using HPACK. A value that exceeds this limit MUST be treated as a decoding "
            "error.", lambda p: size_update(p.server_settings.get(HEADER_TABLE_SIZE, 4096) + 1)
            + p.raw_request())
hpack_error("7541/6.3/2", "a table size update of 2^32",
            "A value that exceeds this limit MUST be treated as a decoding error.",
            lambda p: size_update(1 << 32) + p.raw_request())


@case("7541/6.3/3", "an entry evicted by a size update is referenced",
      "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a "
      "decoding error (a table emptied by a size update has no entry 62).")
def _(p):
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 1,
                 p.raw_request(lit_new("x-kept", "one", "incremental"))))
    p.expect_response(1)
    p.send(frame(HEADERS, END_STREAM | END_HEADERS, 3,
                 size_update(0) + p.raw_request(hint(62, 7, 0x80))))
    return p.expect_connection_error(COMPRESSION_ERROR)


HPACK_OK = "A decoder MUST accept every representation of RFC 7541 section 6"
hpack_ok("7541/6.1/2", "indexed fields from the static table",
         HPACK_OK + " (6.1 Indexed Header Field: index into the static table).",
         lambda p, i: b"\x82" + (b"\x86" if p.args.scheme == "http" else b"\x87")
         + lit_idx(1, p.args.authority) + lit_idx(4, p.args.path))
hpack_ok("7541/6.2.1/1", "literal with incremental indexing, indexed name",
         HPACK_OK + " (6.2.1).", lambda p, i: p.raw_request(lit_idx(58, "h2conf", "incremental")))
hpack_ok("7541/6.2.1/2", "literal with incremental indexing, indexed name, Huffman",
         HPACK_OK + " (6.2.1, 5.2 Huffman).",
         lambda p, i: p.raw_request(lit_idx(58, "h2conf", "incremental", huffman=True)))
hpack_ok("7541/6.2.1/3", "literal with incremental indexing, new name",
         HPACK_OK + " (6.2.1).", lambda p, i: p.raw_request(lit_new("x-new", "v", "incremental")))
hpack_ok("7541/6.2.1/4", "literal with incremental indexing, new name, Huffman",
         HPACK_OK + " (6.2.1, 5.2 Huffman).",
         lambda p, i: p.raw_request(lit_new("x-new", "value", "incremental", huffman=True)))
hpack_ok("7541/6.2.2/1", "literal without indexing, indexed name",
         HPACK_OK + " (6.2.2).", lambda p, i: p.raw_request(lit_idx(58, "h2conf")))
hpack_ok("7541/6.2.2/2", "literal without indexing, indexed name, Huffman",
         HPACK_OK + " (6.2.2).", lambda p, i: p.raw_request(lit_idx(58, "h2conf", huffman=True)))
hpack_ok("7541/6.2.2/3", "literal without indexing, new name",
         HPACK_OK + " (6.2.2).", lambda p, i: p.raw_request(lit_new("x-new", "v")))
hpack_ok("7541/6.2.2/4", "literal without indexing, new name, Huffman",
         HPACK_OK + " (6.2.2).", lambda p, i: p.raw_request(lit_new("x-new", "v", huffman=True)))
hpack_ok("7541/6.2.3/1", "literal never indexed, indexed name",
         HPACK_OK + " (6.2.3).", lambda p, i: p.raw_request(lit_idx(58, "h2conf", "never")))
hpack_ok("7541/6.2.3/2", "literal never indexed, indexed name, Huffman",
         HPACK_OK + " (6.2.3).",
         lambda p, i: p.raw_request(lit_idx(58, "h2conf", "never", huffman=True)))
hpack_ok("7541/6.2.3/3", "literal never indexed, new name",
         HPACK_OK + " (6.2.3).", lambda p, i: p.raw_request(lit_new("x-new", "v", "never")))
hpack_ok("7541/6.2.3/4", "literal never indexed, new name, Huffman",
         HPACK_OK + " (6.2.3).",
         lambda p, i: p.raw_request(lit_new("x-new", "v", "never", huffman=True)))
hpack_ok("7541/6.3/4", "a dynamic table size update to 0 first in a block",
         HPACK_OK + " (6.3 Dynamic Table Size Update, at the start of a block).",
         lambda p, i: size_update(0) + p.raw_request())
hpack_ok("7541/6.3/5", "two dynamic table size updates first in a block",
         "Multiple updates to the maximum table size can occur between the transmission of two "
         "field blocks... the smallest maximum table size that occurs in that interval MUST be "
         "signaled (two updates at the start of a block are valid).",
         lambda p, i: size_update(0) + size_update(4096) + p.raw_request())
hpack_ok("7541/2.3.2/1", "a dynamic table entry referenced by a later request",
         "The dynamic table... entries added by literal representations with incremental "
         "indexing are referenced by index 62 onwards in later blocks.",
         lambda p, i: p.raw_request(lit_new("x-dyn", "entry", "incremental") if i == 0
                                    else hint(62, 7, 0x80)), requests=2)
hpack_ok("7541/4.4/1", "entries evicted as the table fills",
         "Before a new entry is added to the dynamic table, entries are evicted from the end of "
         "the dynamic table until the size of the dynamic table is less than or equal to "
         "(maximum size - new entry size) or until the table is empty.",
         lambda p, i: p.raw_request(b"".join(lit_new(f"x-fill-{i}-{k}", "v" * 900, "incremental")
                                             for k in range(5)) + hint(62, 7, 0x80)), requests=3)
hpack_ok("7541/4.4/2", "an entry larger than the whole table empties it",
         "If the size of the new entry is less than or equal to the maximum size, that entry is "
         "added to the table. It is not an error to attempt to add an entry that is larger than "
         "the maximum size; an attempt to add an entry larger than the maximum size causes the "
         "table to be emptied of all existing entries and results in an empty table.",
         lambda p, i: p.raw_request(lit_new("x-huge", "v" * 5000, "incremental")))
hpack_ok("7541/5.2/6", "a Huffman string of 7 bits of padding and one of none",
         "As the Huffman-encoded data doesn't always end at an octet boundary, some padding is "
         "inserted after it, up to the next octet boundary (up to 7 bits, or none).",
         lambda p, i: p.raw_request(lit_new("x-h", "aaaaaaaa", huffman=True)
                                    + lit_new("x-g", "0", huffman=True)))


# Ordinary exchanges a server must serve

@case("9113/8.1/6", "GET", "A request consists of a HEADERS frame... (an ordinary GET is "
      "answered with a final response).")
def _(p):
    p.send(p.get(1))
    got = p.expect_response(1, whole=True)
    return f"status {got[':status']}"


@case("9113/8.1/7", "HEAD", "A response to HEAD... has no content (the response has no DATA "
      "with payload, its END_STREAM ends it).")
def _(p):
    p.send(p.get(1, method="HEAD"))
    got = None
    while True:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY or (f[2] == 1 and f[0] == RST_STREAM):
            raise Fail(f"want the whole response ({p.trace()})")
        if f[2] == 1 and f[4] is not None:
            got = f[4]
        if f[2] == 1 and f[0] == DATA and len(f[3]):
            raise Fail(f"DATA with content in a HEAD response ({p.trace()})")
        if f[2] == 1 and f[0] in (DATA, HEADERS) and f[1] & END_STREAM:
            if got is None:
                raise Fail(f"END_STREAM before any response ({p.trace()})")
            return "response without content"


@case("9113/8.1/8", "POST with a body",
      "A request consists of one HEADERS frame, zero or more DATA frames (a POST with a body is "
      "answered).")
def _(p):
    p.send(p.post(1, extra=[("content-length", "4")]), frame(DATA, END_STREAM, 1, b"body"))
    got = p.expect_response(1, whole=True)
    return f"status {got[':status']}"


@case("9113/8.1/9", "many concurrent streams in one write",
      "Multiplexing: streams are independent; a request on each of 10 streams gets its "
      "response.")
def _(p):
    p.send(*[p.get(1 + 2 * i) for i in range(10)])
    done = set()
    while len(done) < 10:
        f = p.next_frame()
        if f is None or f[0] == GOAWAY or f[0] == RST_STREAM:
            raise Fail(f"want 10 responses, got {len(done)} ({p.trace()})")
        if f[1] & END_STREAM and f[0] in (HEADERS, DATA):
            done.add(f[2])
    return "10 responses"


@case("9113/8.1/10", "a 100-continue request",
      "A client that sends expect: 100-continue... the server sends 100 (Continue) or the final "
      "response; a 1xx response is a HEADERS frame without END_STREAM.")
def _(p):
    p.send(p.post(1, extra=[("expect", "100-continue"), ("content-length", "4")]))
    p.send(frame(DATA, END_STREAM, 1, b"body"))
    got = p.expect_response(1, whole=True)
    return f"status {got[':status']}"


@case("9113/8.1/11", "a field block encoded with hpack's own encoder and dynamic table",
      "Field blocks are decoded with the table state the previous blocks left (RFC 7541 2.2).")
def _(p):
    for i in range(5):
        p.send(p.get(1 + 2 * i, extra=[("user-agent", "h2conformance"), ("x-i", str(i))]))
        p.expect_response(1 + 2 * i, whole=True)
    return "5 responses"


# -- running ------------------------------------------------------------------------------

def run_case(args, entry):
    cid, title, rule, handshake, settings, fn = entry
    p = None
    try:
        p = Peer(args)
        if handshake:
            p.handshake(settings)
        how = fn(p) or "ok"
        return "PASS", how
    except Skip as e:
        return "SKIP", str(e)
    except Fail as e:
        return "FAIL", str(e)
    except OSError as e:
        return "FAIL", f"socket: {e}"
    except Exception as e:  # noqa: BLE001 - a fault of the suite shows as a failure
        return "FAIL", f"suite error: {type(e).__name__}: {e}"
    finally:
        if p:
            p.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=False, default=0)
    ap.add_argument("--tls", action="store_true", help="TLS with ALPN h2 (certificate not checked)")
    ap.add_argument("--path", default="/", help="a path that answers GET with a body of 2 octets "
                    "or more")
    ap.add_argument("--authority", default=None)
    ap.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for a reaction")
    ap.add_argument("--strict", action="store_true", help="a connection error must send GOAWAY, "
                    "a stream error must be RST_STREAM (not a connection error), and a stream "
                    "within the limit must not be refused")
    ap.add_argument("--only", default=None, help="run the cases whose id starts with this")
    ap.add_argument("--list", action="store_true", help="list the cases and their RFC sentences")
    args = ap.parse_args()
    args.scheme = "https" if args.tls else "http"
    args.authority = args.authority or f"{args.host}:{args.port}"
    chosen = [c for c in CASES if not args.only or c[0].startswith(args.only)]
    if args.list:
        for cid, title, rule, *_ in chosen:
            print(f"{cid} {title}\n    {rule}")
        print(f"{len(chosen)} cases")
        return 0
    if not args.port:
        ap.error("--port is required")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    for entry in chosen:
        verdict, how = run_case(args, entry)
        counts[verdict] += 1
        print(f"{verdict} {entry[0]} {entry[1]} -- {how}", flush=True)
    print(f"summary: cases={len(chosen)} passed={counts['PASS']} failed={counts['FAIL']} "
          f"skipped={counts['SKIP']}", flush=True)
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
