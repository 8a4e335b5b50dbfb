"""The named wait conditions hold exactly when what they name holds."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from immich_conformance.conditions import (
    all_of,
    connection_opens,
    files_gone,
    port_answers,
    ports_answer,
    url_answers_ok,
)
from immich_conformance.procs import LOOPBACK, WaitTimeout, free_port, wait_until


def test_a_port_answers_only_while_something_listens() -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_answers(port)()
        assert not ports_answer(port, free_port())()
    assert not port_answers(port)()


def test_files_are_gone_only_when_none_is_left(tmp_path: Path) -> None:
    kept, removed = tmp_path / "kept", tmp_path / "removed"
    kept.write_text("x")
    condition = files_gone([kept, removed])
    assert not condition()
    kept.unlink()
    assert condition()


def test_all_of_holds_only_when_each_holds() -> None:
    assert all_of(lambda: True, lambda: 1)()
    assert not all_of(lambda: True, lambda: False)()


def test_a_url_that_refuses_counts_as_not_yet_and_the_timeout_names_it() -> None:
    url = f"http://{LOOPBACK}:{free_port()}/ready"
    with pytest.raises(httpx.ConnectError):
        url_answers_ok(url)()
    with pytest.raises(WaitTimeout, match="ConnectError"):
        wait_until(url_answers_ok(url), timeout=0.3, what="the refusing url")


class ProbingKube:
    """A Kube whose ``exec`` of the connection probe answers what the cluster would: open or shut."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.calls: list[tuple[str, ...]] = []

    def run(self, *args: str, **_: object) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        return subprocess.CompletedProcess(args, 0, f"{self.word} immich-redis 6379\n", "")


@pytest.mark.parametrize(("word", "opens"), [("open", True), ("shut", False)])
def test_a_connection_opens_or_not_as_the_probe_from_the_source_pod_says(word: str, opens: bool) -> None:
    kube = ProbingKube(word)
    assert connection_opens(kube, "immich-server", "immich-redis", 6379, opens=opens)()  # type: ignore[arg-type]
    assert not connection_opens(kube, "immich-server", "immich-redis", 6379, opens=not opens)()  # type: ignore[arg-type]
    assert kube.calls[0][:2] == ("exec", "deployment/immich-server")
