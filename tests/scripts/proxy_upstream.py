# An HTTP/1.1 keep-alive upstream for the proxy tests (tests/tests/proxy.rs).
# argv[1]: a TCP port on 127.0.0.1, or unix:/path.
#   /echo, /json, /api/*: 200, body: "METHOD TARGET\n" + the header lines received + "\n" + body
#   /conn        200, body: the number of this connection (1, 2, ...)
#   /count       200, body: requests seen so far (this one excluded)
#   /chunked     chunked "hello world"
#   /close       HTTP/1.0-style: no length, body until close
#   /reset       head with Content-Length 100, 10 bytes, then a reset
#   /slow?s=N    waits N seconds, then 200 "slow"
#   /big?n=N     N bytes of a repeating pattern
#   /then-die    200, then the next request on this connection is read and dropped
import os, socket, socketserver, struct, sys, threading, time, http.server

lock = threading.Lock()
state = {"conns": 0, "requests": 0}

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def address_string(self): return "upstream-test"
    def setup(self):
        super().setup()
        with lock:
            state["conns"] += 1
            self.conn_no = state["conns"]
        self.die_next = False
    def reply(self, code, body, extra=()):
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def handle_one_request(self):
        if self.die_next:
            self.rfile.readline()
            self.close_connection = True
            return
        super().handle_one_request()
    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""
    def route(self):
        with lock:
            seen = state["requests"]
            state["requests"] += 1
        path, _, query = self.path.partition("?")
        body = self.body()
        if path in ("/echo", "/json") or path.startswith("/api/"):
            text = ("%s %s\n" % (self.command, self.path)).encode() + bytes(self.headers) + body
            self.reply(200, text, [("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5")])
        elif path == "/conn":
            self.reply(200, str(self.conn_no).encode())
        elif path == "/count":
            self.reply(200, str(seen).encode())
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello", b" ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/close":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"closing body")
            self.close_connection = True
        elif path == "/reset":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif path == "/slow":
            time.sleep(float(query.split("=")[1]))
            self.reply(200, b"slow")
        elif path == "/big":
            n = int(query.split("=")[1])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            pattern = bytes(range(256)) * 256
            while n > 0:
                part = pattern[: min(n, len(pattern))]
                self.wfile.write(part)
                n -= len(part)
        elif path == "/then-die":
            self.reply(200, b"ok")
            self.die_next = True
        else:
            self.reply(404, b"no such path")
    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = route

where = sys.argv[1]
if where.startswith("unix:"):
    path = where[5:]
    if os.path.exists(path):
        os.unlink(path)
    class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True
    S(path, H).serve_forever()
else:
    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True
    S(("127.0.0.1", int(where)), H).serve_forever()
