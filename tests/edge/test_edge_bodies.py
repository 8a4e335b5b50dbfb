"""The 100 MB request-body limit: exactly the limit passes, one byte more is refused at the edge with 413."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.procs import wait_until

from .support import PUBLIC_HOST, SERVICE_HEADERS, EdgeHandle, MiB, RecordingOrigin, raw_request, zero_chunks


def test_body_of_exactly_the_limit_is_forwarded_whole(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client(headers=SERVICE_HEADERS) as client:
        resp = client.post("/api/assets", content=zero_chunks(MAX_BODY_BYTES),
                           headers={"Content-Length": str(MAX_BODY_BYTES)})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"bytes": MAX_BODY_BYTES}
    [seen] = origin.seen()
    assert seen.complete and seen.body_bytes == MAX_BODY_BYTES
    assert seen.headers["Content-Length"] == str(MAX_BODY_BYTES)


def test_content_length_one_byte_over_is_refused_before_any_body_byte(edge: EdgeHandle,
                                                                       origin: RecordingOrigin) -> None:
    for expect in ("", "Expect: 100-continue\r\n"):
        started = time.monotonic()
        answer = raw_request(edge.port, f"POST /api/assets HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n"
                             f"CF-Access-Client-Id: {SERVICE_HEADERS['CF-Access-Client-Id']}\r\n"
                             f"CF-Access-Client-Secret: {SERVICE_HEADERS['CF-Access-Client-Secret']}\r\n"
                             f"Content-Length: {MAX_BODY_BYTES + 1}\r\n{expect}\r\n")
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"100 Continue" not in answer
        assert time.monotonic() - started < 3, "the 413 must not wait for the body"
    assert origin.seen() == []


def test_chunked_body_one_byte_over_is_cut_and_never_completes_at_the_origin(edge: EdgeHandle,
                                                                             origin: RecordingOrigin) -> None:
    with edge.client(headers=SERVICE_HEADERS) as client:
        try:
            resp = client.post("/api/assets", content=zero_chunks(MAX_BODY_BYTES + 1))
            status = resp.status_code
        except httpx.TransportError as exc:  # the edge may close while the client is still sending
            status = f"connection closed: {exc!r}"
    assert status == 413
    [seen] = wait_until(lambda: [r for r in origin.seen() if r.finished] or None, timeout=15,
                        what="the origin to finish with the cut request")
    assert not seen.complete, "the origin must never see a complete over-limit request"
    assert seen.body_bytes <= MAX_BODY_BYTES
    assert seen.headers.get("Transfer-Encoding") == "chunked"


def test_chunked_body_of_exactly_the_limit_is_forwarded_whole(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client(headers=SERVICE_HEADERS) as client:
        resp = client.post("/api/assets", content=zero_chunks(MAX_BODY_BYTES, chunk=3 * 1024 * 1024 + 17))
    assert resp.status_code == 200 and resp.json() == {"bytes": MAX_BODY_BYTES}
    [seen] = origin.seen()
    assert seen.complete and seen.headers.get("Transfer-Encoding") == "chunked"


def test_an_upload_the_client_abandons_never_completes_at_the_origin(edge: EdgeHandle,
                                                                     origin: RecordingOrigin) -> None:
    head = (f"PUT /api/assets/1/original HTTP/1.1\r\nHost: {PUBLIC_HOST}\r\n"
            f"CF-Access-Client-Id: {SERVICE_HEADERS['CF-Access-Client-Id']}\r\n"
            f"CF-Access-Client-Secret: {SERVICE_HEADERS['CF-Access-Client-Secret']}\r\n"
            f"Content-Length: {10 * MiB}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(head.encode() + bytes(MiB))
        wait_until(lambda: [r for r in origin.seen() if r.body_bytes == MiB] or None, timeout=10,
                   what="the first MiB at the origin")
    [seen] = wait_until(lambda: [r for r in origin.seen() if r.finished] or None, timeout=10,
                        what="the origin to give up on the abandoned upload")
    assert not seen.complete and seen.body_bytes == MiB


def test_the_edge_streams_bodies_instead_of_holding_them(edge: EdgeHandle, origin: RecordingOrigin) -> None:
    with edge.client(headers=SERVICE_HEADERS) as client:
        assert client.put("/api/assets/2/original", content=zero_chunks(MAX_BODY_BYTES)).status_code == 200
    status = Path(f"/proc/{edge.process.pid}/status").read_text()
    peak_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    # the process starts at about 50 MiB; holding a 100 MiB body would take it well past 100 MiB
    assert peak_kib < 100 * 1024, f"the edge's peak memory was {peak_kib // 1024} MiB"
