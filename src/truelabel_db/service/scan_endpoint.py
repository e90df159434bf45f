"""``POST /scans``, the hottest request, answered on raw ASGI ahead of FastAPI's routing.

A consumer's scan is a tiny JSON body and a tiny answer; FastAPI's routing, dependency
resolution and middleware cost about a third of such a request on this machine (measured: a
raw ASGI handler served 1.4–1.5× the requests/s of the same handler as a FastAPI route, with
uvicorn and the client unchanged). ``ServiceApp`` answers ``POST /scans`` itself and hands every
other request, and the lifespan, to FastAPI. The FastAPI route of the same path (it documents
the endpoint in OpenAPI, and serves an app mounted without this wrapper) calls the same
``answer_scan``, so both give the same answers.

A body is never read further than it may be: a ``Content-Length`` past ``MAX_BODY`` is refused
before anything is read, the per-client rate limit (``admit``) answers before the body is read,
and reading stops as soon as the limit is passed (chunked bodies); both refusals are 413 with
``connection: close``, so the rest of the body is not waited for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson

from truelabel_db.hotpaths.base import Scan
from truelabel_db.hotpaths.shape import Record
from truelabel_db.service.limits import MAX_SCAN_BODY

MAX_BODY = MAX_SCAN_BODY
MAX_CODE, MAX_AGENT = 200, 500
UNKNOWN_ANSWER = orjson.dumps({"recorded": False, "detail": "no product carries this QR code"})
Submit = Callable[[Scan], Awaitable[Record | None]]
Answer = tuple[int, bytes, dict[str, str]]
CLOSE = {"Connection": "close"}     # after a refused body: the rest of it is never read
TOO_LARGE: Answer = (413, orjson.dumps({"detail": f"a scan's body is at most {MAX_BODY} bytes"}), CLOSE)
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


class ScanRefused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def parse_scan(body: bytes, agent_header: str | None, client_host: str | None) -> Scan:
    """The scan a request describes, stamped now; ``ScanRefused`` (422) for anything else."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ScanRefused(422, f"the body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ScanRefused(422, 'the body must be an object like {"qr_code": "TL-..."}')
    code, agent = document.get("qr_code"), document.get("user_agent")
    if not isinstance(code, str) or not 1 <= len(code) <= MAX_CODE:
        raise ScanRefused(422, f"qr_code must be a string of 1 to {MAX_CODE} characters")
    if agent is not None and (not isinstance(agent, str) or len(agent) > MAX_AGENT):
        raise ScanRefused(422, f"user_agent must be a string of at most {MAX_AGENT} characters")
    agent = agent or agent_header
    if "\x00" in code or (agent and "\x00" in agent):
        raise ScanRefused(422, "qr_code and user_agent cannot hold a NUL character")
    return Scan(code, _address(client_host), agent[:MAX_AGENT] if agent else None, datetime.now(timezone.utc))


@lru_cache(maxsize=4096)
def _address(host: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None  # a test client or a proxy's name: no address is better than a wrong one


async def answer_scan(submit: Submit, body: bytes, agent_header: str | None, client_host: str | None,
                      refusal: Callable[[BaseException], ScanRefused | None]) -> Answer:
    """Status, JSON body and headers for one scan; the answer leaves only after the commit."""
    try:
        if len(body) > MAX_BODY:
            raise ScanRefused(413, f"a scan's body is at most {MAX_BODY} bytes")
        found = await submit(parse_scan(body, agent_header, client_host))
    except ScanRefused as exc:
        return exc.status, orjson.dumps({"detail": str(exc)}), exc.headers
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        return refused.status, orjson.dumps({"detail": str(refused)}), refused.headers
    if found is None:   # not recorded: a code no product carries says nothing about a product
        return 404, UNKNOWN_ANSWER, {}
    return 200, orjson.dumps({"recorded": True, "product": found}), {}


class ServiceApp:
    """The service's ASGI application: ``POST /scans`` here, everything else to FastAPI.

    ``admit(client)`` is the rate limit (an answer to refuse with, or None), asked before the
    body is read; ``scan(body, agent, client)`` answers a scan.
    """

    def __init__(self, api: ASGIApp, admit: Callable[[str | None], Awaitable[Answer | None]],
                 scan: Callable[[bytes, str | None, str | None], Awaitable[Answer]]) -> None:
        self.api, self._admit, self._scan = api, admit, scan

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["path"] != "/scans" or scope["method"] != "POST":
            await self.api(scope, receive, send)
            return
        client = scope.get("client")
        host = client[0] if client else None
        too_large = declared_length(header(scope, b"content-length")) > MAX_BODY
        answer = TOO_LARGE if too_large else await self._admit(host)
        if answer is None:
            body = await read_body(receive, MAX_BODY)
            answer = TOO_LARGE if body is None else await self._scan(body, header(scope, b"user-agent"), host)
        status, payload, headers = answer
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                *((k.lower().encode(), v.encode()) for k, v in headers.items())]})
        await send({"type": "http.response.body", "body": payload})


def header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == name), None)


def declared_length(value: str | None) -> int:
    """The ``Content-Length`` a client declared; 0 when none (or none that is a number)."""
    if not value or not (value.isascii() and value.isdigit()):
        return 0
    return int(value) if len(value) <= 18 else 1 << 62   # int() refuses thousands of digits


async def read_body(receive: Callable[[], Awaitable[Any]], limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)
