"""The named wait conditions hold exactly when what they name holds."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from immich_conformance.conditions import all_of, files_gone, port_answers, ports_answer, url_answers_ok
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
