"""An HTTP/2 server (Python's h2, Debian's python3-h2) that misbehaves on purpose, for
uring-load's tests (tests/tests/load_http2.rs).

    h2_scripted_server.py PORT MODE LOG

MODE picks what each connection does with its n-th request (below); every outcome is one
line in LOG ("200", "refused", "rst", ...), so a test can check uring-load's counts
against what the server really did. Prior knowledge (h2c) on 127.0.0.1:PORT.
"""

import socket
import sys

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

from scripted_server import Log, serve_forever

port, mode, log = int(sys.argv[1]), sys.argv[2], Log(sys.argv[3])

# Response headers larger than uring-load's SETTINGS_MAX_HEADER_LIST_SIZE (256 KiB): 320
# KiB sent without Huffman coding (hpack's coder takes a second for them), 20 frames.
HUGE = [("x-huge-%d" % i, "x" * 8192) for i in range(40)]


class Served(Exception):
    """The connection is done (the mode closed it on purpose)."""


def answer(conn, sid, extra=()):
    conn.send_headers(sid, [(":status", "200"), ("content-length", "2"), *extra])
    conn.send_data(sid, b"ok", end_stream=True)


def going_away(conn, sock, **goaway):
    """GOAWAY, then wait (bounded) for the client to close."""
    conn.close_connection(**goaway)
    sock.sendall(conn.data_to_send())
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(5)
    while sock.recv(65536):
        pass
    raise Served()


def on_request(state, conn, sock, sid):
    """One request of the connection (state["n"] counts them from 1, state["batch"] in
    the current read)."""
    n = state["n"]
    if mode == "refuse" and n % 3 == 0:
        conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
        log.write("refused")
    elif mode == "rst" and n % 5 == 0:
        conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        log.write("rst")
    elif mode == "goaway" and n == 20:
        # Streams up to the one before were answered; this one and any later are the
        # client's to send elsewhere.
        log.write("goaway")
        going_away(conn, sock, last_stream_id=sid - 2)
    elif mode == "goaway-error" and n == 20:
        # This stream counts as processed, and is never answered.
        log.write("goaway-error")
        going_away(
            conn,
            sock,
            error_code=h2.errors.ErrorCodes.INTERNAL_ERROR,
            last_stream_id=sid,
            additional_data=b"going down",
        )
    elif mode == "one-stream":
        # SETTINGS_MAX_CONCURRENT_STREAMS 1, answered at once: a client that waits for
        # each answer never has two requests in one read (h2 refuses a second open
        # stream too).
        if state["batch"] > 1:
            log.write("over")
        answer(conn, sid)
        log.write("200")
    elif mode == "zero-window":
        # Never a WINDOW_UPDATE, never an answer: the body stalls at the first window.
        log.write("request")
    elif mode == "huge-headers" and n % 4 == 0:
        answer(conn, sid, HUGE)
        log.write("huge")
    elif mode == "protocol" and n % 10 == 0:
        # DATA on stream 0: a connection error (RFC 9113 6.1).
        sock.sendall(conn.data_to_send() + b"\x00\x00\x02\x00\x00\x00\x00\x00\x00ok")
        log.write("broken")
        sock.settimeout(5)
        while sock.recv(65536):
            pass
        raise Served()
    else:
        answer(conn, sid)
        log.write("200")


def serve(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    if mode == "one-stream":
        conn.local_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
        )
    if mode == "huge-headers":
        encode = conn.encoder.encode
        conn.encoder.encode = lambda headers, huffman=True: encode(headers, huffman=False)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    state = {"n": 0}
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            state["batch"] = 0
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    state["n"] += 1
                    state["batch"] += 1
                    on_request(state, conn, sock, ev.stream_id)
            sock.sendall(conn.data_to_send())
    except (Served, OSError):
        pass
    except Exception as e:  # h2 refused what the client sent: the test sees it
        log.write("exception " + type(e).__name__)
    finally:
        sock.close()


serve_forever(port, serve)
