"""``chathooks listen`` as a user runs it: a real process on 127.0.0.1, real requests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import wait_for

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Running:
    """A command in its own process, its output collected as it comes."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        wait_for(lambda: text in self.output, timeout, what=f"{text!r} in {self.output!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
        self.process.wait(20)


@pytest.fixture
def listener() -> Iterator[tuple[Running, str]]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    running = Running(
        [sys.executable, "-m", "chathooks", "listen", "--port", str(port), "--secret", SECRET],
        env=env,
    )
    running.wait_for_output("Listening on")
    yield running, f"http://127.0.0.1:{port}"
    running.stop()


def _signed(body: str, secret: str = SECRET, msg_id: str = "msg_1") -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "Content-Type": "application/json",
    }


def test_listen_prints_each_request_and_says_whether_its_signature_is_valid(
    listener: tuple[Running, str],
) -> None:
    running, url = listener
    assert "checking signatures" in running.output
    body = '{"message": {"text": "héllo 🙂"}}'
    answer = httpx.post(url + "/hooks/whatsapp", content=body, headers=_signed(body))
    assert answer.status_code == 200
    running.wait_for_output("héllo 🙂")
    assert "POST /hooks/whatsapp" in running.output
    assert "webhook-id: msg_1" in running.output
    assert "signature valid" in running.output
    assert '"text": "héllo 🙂"' in running.output  # indented JSON, emoji as they are

    forged = _signed(body, secret="whsec_" + "A" * 32, msg_id="msg_forged")
    assert httpx.post(url + "/x", content=body, headers=forged).status_code == 200
    running.wait_for_output("webhook-id: msg_forged")
    running.wait_for_output("signature INVALID: No matching signature found")

    # What a stranger sends never stops it: a broken header and a body that is not JSON.
    broken = {"webhook-id": "msg_broken", "webhook-timestamp": "soon", "webhook-signature": "x"}
    assert httpx.post(url + "/y", content=b"\xff not json", headers=broken).status_code == 200
    running.wait_for_output("webhook-id: msg_broken")
    running.wait_for_output("not json")
    assert httpx.get(url + "/z?q=1").status_code == 200
    running.wait_for_output("GET /z?q=1")
    assert running.process.poll() is None


def test_listen_answers_the_status_asked_for_and_checks_nothing_without_a_secret() -> None:
    port = free_port()
    running = Running(
        [sys.executable, "-m", "chathooks", "listen", "--port", str(port), "--status", "503"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        running.wait_for_output("answering 503, not checking signatures")
        answer = httpx.post(f"http://127.0.0.1:{port}/hook", json={"a": 1})
        assert answer.status_code == 503
        running.wait_for_output("signature not checked")
    finally:
        running.stop()


def test_listen_refuses_a_bad_secret_or_a_busy_port_naming_the_problem() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "chathooks", "listen", "--secret", "hunter2"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "--secret" in bad.stderr and "whsec_" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [sys.executable, "-m", "chathooks", "listen", "--port", str(port)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
