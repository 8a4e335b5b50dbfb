"""The ledger of created assets: what it counts as left over, what survives a torn line, its lock, its clean-up.

The clean-up is driven here against a scripted HTTP transport; against a real server (a run killed with SIGKILL, then
the next run) in tests/loadtests/test_faults.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from immich_conformance.immich_client import ImmichClient
from immich_conformance.ledger import Ledger, LedgerBusy, clean_leftovers

TARGET = "http://192.0.2.10:30283"


def ledger_at(tmp_path: Path, target: str = TARGET) -> Ledger:
    return Ledger(tmp_path / "ledgers" / "run.jsonl", target)


def test_an_intent_is_a_leftover_until_deleted_or_found_absent(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path)
    assert ledger.leftovers() == []
    ledger.intend("c1", path="lan")
    ledger.intend("c2", path="external")
    ledger.intend("c3", path="lan")
    ledger.created("c1", "id-1")
    ledger.created("c2", "id-2")
    assert [(e.checksum, e.asset_id, e.path) for e in ledger.leftovers()] == [
        ("c1", "id-1", "lan"), ("c2", "id-2", "external"), ("c3", None, "lan")]
    ledger.deleted(["id-1"])
    ledger.absent(["c3"])
    assert [e.checksum for e in ledger.leftovers()] == ["c2"]
    ledger.deleted(["id-9"], {"id-9": "c2"})  # found by checksum under an id the ledger never got
    assert ledger.leftovers() == []


def test_every_line_names_target_checksum_and_time(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path)
    ledger.intend("c1", path="lan")
    ledger.created("c1", "id-1")
    lines = [json.loads(line) for line in ledger.path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["intent", "created"]
    assert all(line["target"] == TARGET and line["checksum"] == "c1" and line["at"] > 0 for line in lines)
    assert lines[1]["id"] == "id-1"
    assert ledger.path.stat().st_mode & 0o077 == 0, "the ledger is its owner's alone"


def test_other_targets_entries_are_not_this_targets_leftovers(tmp_path: Path) -> None:
    mine, other = ledger_at(tmp_path), ledger_at(tmp_path, "http://192.0.2.11:30283")
    mine.intend("c1")
    other.intend("c2")
    assert [e.checksum for e in mine.leftovers()] == ["c1"]
    assert [e.checksum for e in other.leftovers()] == ["c2"]
    mine.deleted(["x"], {"x": "c1"})
    mine.compact()
    assert mine.leftovers() == [] and [e.checksum for e in other.leftovers()] == ["c2"]


def test_a_line_torn_by_a_kill_is_skipped_and_the_rest_still_read(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path)
    ledger.intend("c1")
    with ledger.path.open("a") as f:
        f.write('{"target": "' + TARGET + '", "event": "inte')  # the process died mid-line
    ledger.intend("c2")  # the next run appends after the torn piece, on a line of its own
    assert [e.checksum for e in ledger.leftovers()] == ["c1", "c2"]


def test_compaction_keeps_only_open_entries_and_removes_an_empty_ledger(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path)
    for n in range(5):
        ledger.intend(f"c{n}")
        ledger.created(f"c{n}", f"id-{n}")
    ledger.deleted(["id-0", "id-1", "id-2"])
    ledger.compact()
    assert [e.asset_id for e in ledger.leftovers()] == ["id-3", "id-4"]
    assert len(ledger.path.read_text().splitlines()) == 4
    ledger.deleted(["id-3", "id-4"])
    ledger.compact()
    assert not ledger.path.exists()


def test_a_second_holder_of_the_lock_is_refused(tmp_path: Path) -> None:
    first, second = ledger_at(tmp_path), ledger_at(tmp_path)
    first.lock()
    with pytest.raises(LedgerBusy, match="in use by process"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()
    assert list(ledger_at(tmp_path).path.parent.iterdir()) == [], "an empty ledger leaves no lock file behind"


def test_the_default_path_is_one_file_per_target_under_the_cache(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a, b = Ledger.default_path("http://192.0.2.10:30283"), Ledger.default_path("http://192.0.2.10:30284")
    assert a.parent == tmp_path / "immich-conformance" / "ledgers" == Ledger.default_dir()
    assert a != b and a.suffix == ".jsonl" and "192-0-2-10-30283" in a.name


# --- clean-up against a scripted server ------------------------------------------------------------------------------


class ScriptedServer:
    """Holds assets by checksum; answers bulk-upload-check and DELETE /api/assets like Immich (force)."""

    def __init__(self, assets: dict[str, str]) -> None:
        self.assets = dict(assets)  # checksum -> id
        self.deletes: list[list[str]] = []
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        body = json.loads(request.content)
        if request.url.path == "/api/assets/bulk-upload-check":
            results = []
            for item in body["assets"]:
                found = self.assets.get(item["checksum"])
                results.append({"id": item["id"], "action": "reject", "reason": "duplicate", "assetId": found}
                               if found else {"id": item["id"], "action": "accept"})
            return httpx.Response(200, json={"results": results})
        if request.method == "DELETE" and request.url.path == "/api/assets":
            known = set(self.assets.values())
            if not set(body["ids"]) <= known:
                return httpx.Response(400, json={"message": "Not found or no asset.delete access"})
            self.deletes.append(body["ids"])
            self.assets = {c: i for c, i in self.assets.items() if i not in body["ids"]}
            return httpx.Response(204)
        return httpx.Response(404)


def scripted_client(server: ScriptedServer) -> ImmichClient:
    client = ImmichClient("http://immich.test", api_key="key")
    client._http = httpx.Client(base_url="http://immich.test", transport=httpx.MockTransport(server))
    return client


def test_clean_up_finds_leftovers_by_checksum_deletes_them_and_settles_the_ledger(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path)
    for checksum in ("c1", "c2", "c3", "c4"):
        ledger.intend(checksum)
    ledger.created("c1", "id-1")
    ledger.created("c2", "id-2")  # deleted some other way since
    server = ScriptedServer({"c1": "id-1", "c3": "id-3"})  # c3: stored, but the answer never came back
    report = clean_leftovers(ledger, scripted_client(server))
    assert (report.found, report.with_id, report.deleted, report.already_gone) == (4, 2, 2, 2)
    assert report.failures == []
    assert sorted(server.deletes[0]) == ["id-1", "id-3"] and server.assets == {}
    assert ledger.leftovers() == []
    assert "4 uploads left by an earlier run" in report.describe(ledger)


def test_a_target_that_does_not_answer_leaves_the_ledger_as_it_was(tmp_path: Path) -> None:
    ledger = ledger_at(tmp_path)
    ledger.intend("c1")
    ledger.created("c1", "id-1")
    server = ScriptedServer({"c1": "id-1"})
    server.down = True
    report = clean_leftovers(ledger, scripted_client(server))
    assert report.deleted == 0 and report.failures and "stopped answering" in report.failures[0]
    assert [e.asset_id for e in ledger.leftovers()] == ["id-1"]
    assert "NOT cleaned up" in report.describe(ledger)
