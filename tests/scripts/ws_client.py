"""A WebSocket client (Python's websockets) for tests/tests/proxy_websocket.rs; prints one
JSON object with what it saw.

ws_client.py echo URL     text and binary echo, a ping answered, a close handshake (4001)
ws_client.py many URL N   N sockets open at once, each echoing, all closed cleanly
ws_client.py refused URL  the handshake's answer when the upgrade is refused
ws_client.py idle URL     connect, send nothing, wait for the proxy to close the tunnel
"""
import asyncio
import json
import resource
import sys
import time

import websockets


async def echo(url):
    out = {}
    # No permessage-deflate: the bytes each way are the frames' own, for the metrics.
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send("héllo, tunnel")
        out["text"] = await ws.recv()
        blob = bytes(range(256)) * 400  # 100 KiB: more than one read each way
        await ws.send(blob)
        got = await ws.recv()
        out["binary_ok"] = got == blob
        out["binary_len"] = len(got)
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        out["pong"] = True
        await ws.close(code=4001, reason="bye")
        out["close_code"] = ws.close_code
        out["close_reason"] = ws.close_reason
    return out


async def many(url, n):
    opened = asyncio.Event()
    count = 0

    async def one(i):
        nonlocal count
        async with websockets.connect(url, open_timeout=30) as ws:
            count += 1
            if count == n:
                opened.set()
            await ws.send(f"socket {i}")
            assert await ws.recv() == f"socket {i}"
            # Every socket stays open until all are: n tunnels at once.
            await asyncio.wait_for(opened.wait(), 60)
            await ws.send(b"again %d" % i)
            assert await ws.recv() == b"again %d" % i
            await ws.close(code=1000)
            return ws.close_code

    codes = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    errors = [repr(c) for c in codes if not isinstance(c, int)]
    return {"ok": sum(1 for c in codes if c == 1000), "errors": errors[:5]}


async def refused(url):
    try:
        async with websockets.connect(url):
            return {"status": 101}
    except websockets.InvalidStatusCode as e:
        return {"status": e.status_code}


async def idle(url):
    start = time.monotonic()
    async with websockets.connect(url, ping_interval=None) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 30)
        except websockets.ConnectionClosed:
            pass
        return {"closed_after": time.monotonic() - start, "close_code": ws.close_code}


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    mode, url = sys.argv[1], sys.argv[2]
    # Bounded whatever happens on the way: a broken tunnel fails the test, never hangs it.
    if mode == "echo":
        run = echo(url)
    elif mode == "many":
        run = many(url, int(sys.argv[3]))
    elif mode == "refused":
        run = refused(url)
    else:
        run = idle(url)
    out = asyncio.run(asyncio.wait_for(run, 120))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
