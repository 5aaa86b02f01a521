"""A WebSocket echo server (Python's websockets) for tests/tests/proxy_websocket.rs.

Usage: ws_echo_server.py PORT. Echoes every text and binary message as it came; a
request for /refuse is answered 403 (the upgrade refused); each connection's close code
as this end saw it is printed, one line per connection ("closed CODE REASON"), flushed,
so the test can check both ends of a close handshake.
"""
import asyncio
import http
import resource
import sys

import websockets


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def refuse(path, _headers):
    if path == "/refuse":
        return http.HTTPStatus.FORBIDDEN, [("X-Refused", "yes")], b"no upgrade here\n"
    return None


async def echo(ws, _path=None):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    print(f"closed {ws.close_code} {ws.close_reason}", flush=True)


async def main(port):
    async with websockets.serve(
        echo, "127.0.0.1", port, process_request=refuse, max_size=None, backlog=2048
    ):
        await asyncio.Future()


if __name__ == "__main__":
    raise_fd_limit()
    asyncio.run(main(int(sys.argv[1])))
