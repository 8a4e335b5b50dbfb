"""The load test's parts, without locust: sizes, the upload records, the gate, the nothing-lost check, early answers.

(Importing locust would patch this whole pytest process with gevent; these modules do not import it.)
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest

from immich_conformance.limits import MAX_BODY_BYTES
from immich_conformance.tls import write_server_files
from immich_conformance.upload_bodies import MultipartUpload, PhotoSpec
from loadtests.backoff import ERROR_STREAK, FIRST_WAIT, MAX_WAIT, Backoff, path_is_down
from loadtests.early_answer import post_lazily
from loadtests.gate import Measurements, PathFigures, Thresholds, evaluate
from loadtests.ledger import LedgerBook, UploadLedger, UploadRecord
from loadtests.options import parse_upload_sizes
from loadtests.target_settings import ConfiguredTarget, SettingsError, TargetSettings
from loadtests.verification import LossReport, check_nothing_lost

# --- sizes ---------------------------------------------------------------------------------------------------------


def test_upload_sizes_are_parsed_with_units() -> None:
    assert parse_upload_sizes("64KiB,1MiB, 8MiB") == [65536, 1048576, 8388608]
    assert parse_upload_sizes("5MB,4096") == [5_000_000, 4096]


@pytest.mark.parametrize("text", ["", "abc", "10", "1TB", "64KiB,101MiB"])
def test_unusable_upload_sizes_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_upload_sizes(text)


# --- records -------------------------------------------------------------------------------------------------------


def record(asset_id: str | None, path: str = "lan", size: int = 4096, at: float = 100.0) -> UploadRecord:
    return UploadRecord.for_photo(path, PhotoSpec.unique(size), size + 300, asset_id, at)


def test_a_record_recreates_the_exact_bytes_sent() -> None:
    image = PhotoSpec.unique(70_000)
    rec = UploadRecord.for_photo("lan", image, 70_300, "id", 1.0)
    assert rec.image.sha1() == image.sha1()


def test_the_book_notices_a_worker_whose_final_batch_did_not_arrive() -> None:
    worker, book = UploadLedger(), LedgerBook()
    worker.add(record("a"))
    book.absorb("w1", worker.ship(final=False))
    assert book.incomplete_sources() == ["w1"]
    worker.add(record(None))
    book.absorb("w1", worker.ship(final=True))
    assert book.incomplete_sources() == []
    assert [r.asset_id for r in book.created()] == ["a"] and len(book.unconfirmed()) == 1
    book.absorb("w2", {"records": [], "total": 3, "final": True})  # announced 3, none arrived
    assert book.incomplete_sources() == ["w2"]


def test_bytes_count_only_created_uploads_of_the_path_inside_the_window() -> None:
    book = LedgerBook()
    book.absorb("local", {"records": [], "total": 0, "final": True})
    book.records += [record("a", at=10), record("b", "external", at=10), record(None, at=10), record("c", at=50)]
    assert book.bytes_created("lan", 5, 20) == 4396


# --- gate ----------------------------------------------------------------------------------------------------------

THRESHOLDS = Thresholds(max_failure_ratio=0.01, max_upload_p95_ms=5000, min_uploads_per_s=5, min_upload_mb_per_s=15)


def figures(**changes: Any) -> Measurements:
    lan = PathFigures(uploads=600, failures=0, p95_ms=300, uploads_per_s=20, mb=2000, mb_per_s=66)
    m = Measurements(window_s=30, requests=1000, failures=0, paths={"lan": lan},
                     loss=LossReport(checked=600, nas_checked=True))
    for key, value in changes.items():
        setattr(m if hasattr(m, key) else lan, key, value)
    return m


def test_a_run_within_every_threshold_passes() -> None:
    assert evaluate(figures(), THRESHOLDS) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"failures": 11}, "failure ratio 0.0110"),
    ({"p95_ms": 5001}, "p95 upload time on lan 5001 ms > 5000 ms"),
    ({"uploads_per_s": 4.9}, "uploads/s on lan 4.90 < 5"),
    ({"mb_per_s": 14}, "MB/s on lan 14.00 < 15"),
    ({"loss": LossReport(checked=600, lost=["x: no file"])}, "1 lost and 0 corrupt of 600"),
    ({"loss": None}, "the nothing-lost check did not run"),
    ({"incomplete_sources": ["w1"]}, "never reached the master"),
    ({"oversize": {"sent": 20, "answered_413": 19}}, "1 of 20 over-limit bodies were not answered 413"),
    ({"problems": ["3 errors raised inside users"]}, "3 errors raised inside users"),
    ({"loss": LossReport(checked=598, unverified=2, unreachable="ConnectError")},
     "2 accepted uploads could not be verified (target unreachable: ConnectError)"),
])
def test_each_broken_threshold_is_named(change: dict[str, Any], expected: str) -> None:
    broken = evaluate(figures(**change), THRESHOLDS)
    assert len(broken) == 1 and expected in broken[0], broken


# --- nothing lost --------------------------------------------------------------------------------------------------


class FakeImmich:
    """Answers GET /api/assets/{id} from a dict: id -> (status, body)."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers

    def asset(self, asset_id: str) -> httpx.Response:
        status, body = self.answers[asset_id]
        return httpx.Response(status, json=body)


def test_lost_and_corrupt_assets_are_told_apart(tmp_path: Path) -> None:
    target = ConfiguredTarget(lan_url="http://127.0.0.1:1", external_url=None, public_hostname="", api_key="k",
                              token_id="", token_secret="", nas_path=tmp_path, media_location=PurePosixPath("/data"))
    good, gone, no_file, wrong_bytes, wrong_sum = (record(i) for i in ("good", "gone", "nofile", "bytes", "sum"))
    answers = {}
    for rec in (good, no_file, wrong_bytes, wrong_sum):
        checksum = base64.b64encode(rec.image.sha1()).decode()
        answers[rec.asset_id] = (200, {"id": rec.asset_id, "checksum": checksum,
                                       "originalPath": f"/data/upload/u/{rec.asset_id}.jpg"})
    answers["gone"] = (400, {"message": "Not found or no asset.read access"})
    answers["sum"][1]["checksum"] = base64.b64encode(b"\0" * 20).decode()
    (tmp_path / "upload" / "u").mkdir(parents=True)
    (tmp_path / "upload" / "u" / "good.jpg").write_bytes(good.image.content())
    (tmp_path / "upload" / "u" / "bytes.jpg").write_bytes(record("x").image.content())
    (tmp_path / "upload" / "u" / "sum.jpg").write_bytes(wrong_sum.image.content())

    report, present = check_nothing_lost(FakeImmich(answers), target, [good, gone, no_file, wrong_bytes, wrong_sum],
                                         progress=lambda m: None)  # type: ignore[arg-type]
    assert report.nas_checked and report.checked == 5
    assert sorted(line.split(":")[0] for line in report.lost) == ["gone", "nofile"]
    assert sorted(line.split(":")[0] for line in report.corrupt) == ["bytes", "sum"]
    assert sorted(present) == ["bytes", "good", "nofile", "sum"]


def test_without_a_nas_path_the_check_says_it_uses_the_api_only() -> None:
    target = ConfiguredTarget(lan_url="http://127.0.0.1:1", external_url=None, public_hostname="", api_key="k",
                              token_id="", token_secret="", nas_path=None, media_location=PurePosixPath("/data"))
    rec = record("a")
    answers = {"a": (200, {"checksum": base64.b64encode(rec.image.sha1()).decode(), "originalPath": "/data/x"})}
    report, _ = check_nothing_lost(FakeImmich(answers), target, [rec], progress=lambda m: None)  # type: ignore[arg-type]
    assert not report.nas_checked and report.lost_or_corrupt == 0 and "API only" in report.method


class DyingImmich(FakeImmich):
    """Answers ``alive`` lookups, then refuses connections."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, Any]]], alive: int) -> None:
        super().__init__(answers)
        self.alive = alive

    def asset(self, asset_id: str) -> httpx.Response:
        if self.alive <= 0:
            raise httpx.ConnectError("[Errno 111] Connection refused")
        self.alive -= 1
        return super().asset(asset_id)


def test_a_target_that_stops_answering_ends_the_check_and_counts_what_could_not_be_verified() -> None:
    target = ConfiguredTarget(lan_url="http://127.0.0.1:1", external_url=None, public_hostname="", api_key="k",
                              token_id="", token_secret="", nas_path=None, media_location=PurePosixPath("/data"))
    records = [record(str(n)) for n in range(5)]
    answers = {r.asset_id: (200, {"checksum": base64.b64encode(r.image.sha1()).decode()}) for r in records}
    report, present = check_nothing_lost(DyingImmich(answers, alive=2), target, records,  # type: ignore[arg-type]
                                         progress=lambda m: None)
    assert (report.checked, report.unverified, report.lost_or_corrupt) == (2, 3, 0)
    assert "ConnectError" in report.unreachable and present == ["0", "1"]


# --- target settings -----------------------------------------------------------------------------------------------


def test_target_settings_come_from_the_environment_and_travel_to_workers() -> None:
    environ = {"IMMICH_API_KEY": "key", "IMMICH_CONFORMANCE_EXTERNAL_URL": "https://photos.example.org",
               "CF_ACCESS_CLIENT_ID": "id.access", "CF_ACCESS_CLIENT_SECRET": "s"}
    target = ConfiguredTarget.from_environment("http://192.0.2.10:30283/", environ)
    settings = TargetSettings.from_target(target)
    assert settings.lan.url == "http://192.0.2.10:30283"
    assert settings.external is not None and settings.external.headers == {"Host": "photos.example.org"}
    assert TargetSettings.from_message(settings.to_message()) == settings
    assert not target.has_nas


def test_incomplete_target_settings_list_every_problem() -> None:
    with pytest.raises(SettingsError) as caught:
        ConfiguredTarget.from_environment("ftp://x", {"IMMICH_CONFORMANCE_NAS_PATH": "/no/such/folder"})
    text = str(caught.value)
    for part in ("--host must be an http://", "IMMICH_API_KEY", "IMMICH_CONFORMANCE_EXTERNAL_URL",
                 "CF_ACCESS_CLIENT_ID", "/no/such/folder"):
        assert part in text


def test_the_secrets_names_of_earlier_versions_still_work_saying_they_are_deprecated(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from immich_conformance.targets import credentials

    monkeypatch.setattr(credentials, "_warned", set())  # said once per process
    environ = {"IMMICH_CONFORMANCE_API_KEY": "old-key", "IMMICH_CONFORMANCE_EXTERNAL_URL": "https://photos.example.org",
               "IMMICH_CONFORMANCE_SERVICE_TOKEN_ID": "id.access", "IMMICH_CONFORMANCE_SERVICE_TOKEN_SECRET": "s"}
    settings = TargetSettings.from_target(ConfiguredTarget.from_environment("http://192.0.2.10:30283", environ))
    assert settings.api_key == "old-key"
    assert settings.service_token_headers and "s" in settings.service_token_headers.values()
    said = capsys.readouterr().err
    assert "IMMICH_CONFORMANCE_API_KEY is deprecated, set IMMICH_API_KEY instead" in said
    new_first = {**environ, "IMMICH_API_KEY": "new-key"}
    assert TargetSettings.from_target(ConfiguredTarget.from_environment("http://192.0.2.10:30283", new_first)) \
        .api_key == "new-key"


# --- early answers -------------------------------------------------------------------------------------------------


class OneShotServer:
    """Accepts one connection, reads the request head, then answers 413 at once or after reading the whole body."""

    def __init__(self, *, read_body: bool, tls: ssl.SSLContext | None = None) -> None:
        self.read_body = read_body
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.body_read = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            self.body_read = len(rest)
            if self.read_body:
                while self.body_read < length:
                    self.body_read += len(conn.recv(1 << 20))
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            else:
                conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                with contextlib.suppress(OSError):  # drain, as a lingering close does, so the client sees no reset
                    while conn.recv(1 << 20):
                        pass

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


@pytest.fixture
def refusing_server() -> Iterator[OneShotServer]:
    server = OneShotServer(read_body=False)
    yield server
    server.close()


def test_an_early_413_stops_the_body_long_before_its_end(refusing_server: OneShotServer) -> None:
    upload = MultipartUpload.with_total_size(MAX_BODY_BYTES + 1)
    answer = post_lazily(f"http://127.0.0.1:{refusing_server.port}", "/api/assets", upload.headers(), upload.chunks(),
                         timeout=10)
    assert answer.status == 413, answer
    assert answer.body_bytes_sent < MAX_BODY_BYTES // 4, f"sent {answer.body_bytes_sent} bytes of a refused body"


def test_a_body_the_server_wants_is_sent_whole() -> None:
    server = OneShotServer(read_body=True)
    try:
        upload = MultipartUpload.with_total_size(3 * 1024 * 1024)
        answer = post_lazily(f"http://127.0.0.1:{server.port}", "/api/assets", upload.headers(), upload.chunks(),
                             timeout=10)
    finally:
        server.close()
    assert answer.status == 201 and answer.body_bytes_sent == upload.content_length == server.body_read


def test_early_answers_work_over_tls(tmp_path: Path) -> None:
    files = write_server_files(tmp_path, ["localhost"], ip_addresses=["127.0.0.1"])
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(files.cert_file, files.key_file)
    client_side = ssl.create_default_context(cafile=str(files.ca_file))
    for read_body, size, status in ((False, MAX_BODY_BYTES + 1, 413), (True, 2 * 1024 * 1024, 201)):
        server = OneShotServer(read_body=read_body, tls=server_side)
        try:
            upload = MultipartUpload.with_total_size(size)
            answer = post_lazily(f"https://127.0.0.1:{server.port}", "/api/assets", upload.headers(), upload.chunks(),
                                 timeout=10, context=client_side)
        finally:
            server.close()
        assert answer.status == status, answer
        if read_body:
            assert answer.body_bytes_sent == upload.content_length
        else:
            assert answer.body_bytes_sent < MAX_BODY_BYTES // 4


# --- backoff -------------------------------------------------------------------------------------------------------


def test_a_path_that_keeps_failing_without_an_answer_is_tried_less_and_less_often() -> None:
    backoff = Backoff()
    assert backoff.wait == 0
    starts = [backoff.record(ok=False, down=True) for _ in range(12)]
    assert starts == [True] + [False] * 11, "only the first failure of a streak says the path went down"
    waits = []
    fresh = Backoff()
    for _ in range(10):
        fresh.record(ok=False, down=True)
        waits.append(fresh.wait)
    assert waits[:4] == [0.25, 0.5, 1.0, 2.0] and waits[-1] == MAX_WAIT and max(waits) == MAX_WAIT
    fresh.record(ok=True)
    assert fresh.wait == 0, "one success ends the backoff"


def test_errors_that_are_answers_back_off_only_after_a_streak() -> None:
    backoff = Backoff()
    starts = [backoff.record(ok=False) for _ in range(ERROR_STREAK - 1)]
    assert not any(starts) and backoff.wait == 0, "a few 500s are measured, not avoided"
    assert backoff.record(ok=False) is True and backoff.wait == FIRST_WAIT
    backoff.record(ok=True)
    assert backoff.record(ok=False) is False and backoff.wait == 0


@pytest.mark.parametrize(("status", "down"), [(None, True), (0, True), (502, True), (503, True), (530, True),
                                              (201, False), (401, False), (413, False), (500, False)])
def test_only_no_answer_or_a_gateway_without_its_server_counts_as_down(status: int | None, down: bool) -> None:
    assert path_is_down(status) is down
