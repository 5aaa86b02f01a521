"""What the scripted servers of uring-load's tests share (h2_scripted_server.py,
h1_pipeline_counter.py): a log of what they did, one line per outcome, and an accept
loop on 127.0.0.1 with a thread per connection."""

import socket
import threading

_lock = threading.Lock()


class Log:
    """Lines appended to a file as they happen, whole lines only (threads share it)."""

    def __init__(self, path):
        self._file = open(path, "a", buffering=1)

    def write(self, *lines):
        with _lock:
            self._file.write("".join(line + "\n" for line in lines))


def serve_forever(port, serve):
    """Accept on 127.0.0.1:PORT; each connection's socket goes to serve() in its thread."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    while True:
        s, _ = srv.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()
