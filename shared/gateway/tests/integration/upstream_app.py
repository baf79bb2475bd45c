"""A real test upstream (aiohttp), run as its own process: ``python upstream_app.py PORT``.

/echo            what arrived: method, path, query, headers, body size and sha256 (body streamed)
/stream?size=N   N bytes (a repeating pattern) sent chunked, piece by piece
/slow?s=S        answers after S seconds
/flaky           503 for the next `fail` calls set through /_control, then 200
/fail            always 503 while the instance is in "down" mode, else 200
/_control?...    set fail=N, down=0|1 ; /_stats returns call counters
/schema/openapi.json  a tiny OpenAPI document
Every answer carries x-instance: <port>.
"""

import asyncio
import hashlib
import json
import sys
from collections import Counter

from aiohttp import web

PORT = int(sys.argv[1])
STATE = {"fail": 0, "down": False}
CALLS: Counter[str] = Counter()
PATTERN = bytes(range(256)) * 256  # 64 KiB


def answer(data: dict, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"x-instance": str(PORT)})


async def echo(request: web.Request) -> web.Response:
    CALLS[request.path] += 1
    digest, size = hashlib.sha256(), 0
    async for chunk in request.content.iter_chunked(65536):
        digest.update(chunk)
        size += len(chunk)
    CALLS[request.path + ":complete"] += 1
    echoed = answer(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": [[k, v] for k, v in request.headers.items()],
            "size": size,
            "sha256": digest.hexdigest(),
            "chunked": "chunked" in request.headers.get("Transfer-Encoding", ""),
        }
    )
    if "X-Request-Id" in request.headers:  # as commons services do
        echoed.headers["X-Request-Id"] = request.headers["X-Request-Id"]
    return echoed  # fmt: skip


async def stream(request: web.Request) -> web.StreamResponse:
    CALLS[request.path] += 1
    size = int(request.query["size"])
    response = web.StreamResponse(
        headers={"x-instance": str(PORT), "content-type": "application/octet-stream"}
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    while sent < size:
        piece = PATTERN[: min(len(PATTERN), size - sent)]
        await response.write(piece)
        sent += len(piece)
    await response.write_eof()
    return response


async def drip(request: web.Request) -> web.StreamResponse:
    CALLS[request.path] += 1
    response = web.StreamResponse(headers={"x-instance": str(PORT)})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(int(request.query.get("n", "10"))):
        await response.write(b"drop\n")
        await asyncio.sleep(float(request.query.get("s", "0.2")))
    await response.write_eof()
    return response


async def slow(request: web.Request) -> web.Response:
    CALLS[request.path] += 1
    await asyncio.sleep(float(request.query.get("s", "1")))
    return answer(
        {"slept": request.query.get("s", "1"), "deadline": request.headers.get("X-Request-Timeout-Ms")}
    )


async def flaky(request: web.Request) -> web.Response:
    CALLS[request.path] += 1
    await request.read()
    if STATE["fail"] > 0:
        STATE["fail"] -= 1
        return answer({"status": 503}, 503)
    return answer({"ok": True})


async def fail(request: web.Request) -> web.Response:
    CALLS[request.path] += 1
    return answer({"down": STATE["down"]}, 503 if STATE["down"] else 200)


async def control(request: web.Request) -> web.Response:
    if "fail" in request.query:
        STATE["fail"] = int(request.query["fail"])
    if "down" in request.query:
        STATE["down"] = request.query["down"] == "1"
    if "reset" in request.query:
        CALLS.clear()
    return answer(dict(STATE))


async def stats(request: web.Request) -> web.Response:
    return answer(dict(CALLS))


async def openapi(request: web.Request) -> web.Response:
    return answer({
        "openapi": "3.1.0", "info": {"title": "probe", "version": "1"},
        "paths": {"/echo": {"get": {"responses": {"200": {"description": "ok",
                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Echo"}}}}}}}},
        "components": {"schemas": {"Echo": {"type": "object"}}},
    })  # fmt: skip


app = web.Application(client_max_size=1024**3)
app.router.add_route("*", "/echo", echo)
app.router.add_route("*", "/echo/{tail:.*}", echo)
app.router.add_get("/stream", stream)
app.router.add_get("/slow", slow)
app.router.add_get("/drip", drip)
app.router.add_route("*", "/flaky", flaky)
app.router.add_get("/fail", fail)
app.router.add_get("/_control", control)
app.router.add_get("/_stats", stats)
app.router.add_get("/schema/openapi.json", openapi)
app.router.add_get("/health/live", lambda r: answer({"status": "ok"}))

if __name__ == "__main__":
    print(json.dumps({"port": PORT}), flush=True)
    web.run_app(app, host="127.0.0.1", port=PORT, print=None, access_log=None)
