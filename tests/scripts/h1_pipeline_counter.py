"""An HTTP/1.1 server that shows how deep a client pipelines, for uring-load's tests.

    h1_pipeline_counter.py PORT LOG

Each connection holds its answers until 8 requests are waiting or 100 ms passed with no
new bytes, then answers them all in one write. LOG gets one line per request ("GET
/path") and one per batch ("batch N"): the largest batch is the client's depth, as long
as it is at most 8. Requests without bodies only (GET); 127.0.0.1:PORT.
"""

import socket
import sys

from scripted_server import Log, serve_forever

port, log = int(sys.argv[1]), Log(sys.argv[2])
HOLD = 8


def serve(sock):
    sock.settimeout(0.1)
    buf, waiting = b"", []
    try:
        while True:
            try:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            except socket.timeout:
                data = None
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                waiting.append(head.split(b"\r\n", 1)[0].decode())
            if waiting and (len(waiting) >= HOLD or data is None):
                log.write(*[" ".join(w.split(" ")[:2]) for w in waiting], "batch %d" % len(waiting))
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * len(waiting)
                sock.sendall(answer)
                waiting = []
    except OSError:
        pass
    finally:
        sock.close()


serve_forever(port, serve)
