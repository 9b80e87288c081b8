"""Logins are limited per e-mail and per client address (429 with Retry-After), across
every API process; refused attempts cost no password work; password work runs one at a
time on its own thread; and an unknown e-mail takes the same password work as a known one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from argon2 import PasswordHasher

from chathooks import logins
from tests.conftest import Service
from tests.pages import browser, is_logged_in, log_in, set_password

OWNER = "owner@acme.test"


class CountingHasher:
    """The real argon2 hasher, counting verifications, the most at once, and their threads."""

    def __init__(self) -> None:
        self.real = PasswordHasher()
        self.verified = 0
        self.running = 0
        self.most_at_once = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self.real.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.verified += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            return self.real.verify(password_hash, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingHasher]:
    counting = CountingHasher()
    monkeypatch.setattr(logins, "_hasher", counting)
    yield counting


def _owner_with_password(service: Service) -> None:
    team = service.workspace()
    with browser(service) as client:
        set_password(service, team, client)


def test_sixty_wrong_passwords_then_the_right_one_is_refused_until_the_window_ends(
    service: Service, hasher: CountingHasher
) -> None:
    _owner_with_password(service)
    client = browser(service)
    answers = [log_in(client, OWNER, f"wrong {i}").status_code for i in range(60)]
    assert answers[:10] == [401] * 10
    assert set(answers[10:]) == {429}
    assert hasher.verified == 10, "refused attempts cost no password work"

    refused = log_in(client, OWNER)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 15 * 60
    assert "Too many login attempts" in refused.text
    assert not is_logged_in(client)

    service.clock.advance(int(refused.headers["Retry-After"]))
    assert log_in(client, OWNER).status_code == 303
    assert is_logged_in(client)


def test_the_limit_holds_across_api_processes(
    start_service: Callable[..., Service], hasher: CountingHasher
) -> None:
    first = start_service(run_worker=False)
    second = start_service(run_worker=False)
    _owner_with_password(first)
    clients = [browser(first), browser(second)]
    answers = [log_in(clients[i % 2], OWNER, "wrong").status_code for i in range(14)]
    assert answers == [401] * 10 + [429] * 4
    assert log_in(clients[1], OWNER).status_code == 429


def test_one_address_is_limited_across_e_mails_and_others_are_not(
    start_service: Callable[..., Service], hasher: CountingHasher
) -> None:
    service = start_service(login_attempts_per_address=5)
    _owner_with_password(service)
    client = browser(service)
    attacker = "203.0.113.7"
    answers = [
        log_in(client, f"guess{i}@acme.test", "x", address=attacker).status_code for i in range(7)
    ]
    assert answers == [401] * 5 + [429] * 2
    assert log_in(client, OWNER, address=attacker).status_code == 429
    assert log_in(client, OWNER, address="198.51.100.9").status_code == 303


def test_a_successful_login_starts_the_account_count_again(
    service: Service, hasher: CountingHasher
) -> None:
    _owner_with_password(service)
    client = browser(service)
    assert {log_in(client, OWNER, "wrong").status_code for _ in range(9)} == {401}
    assert log_in(client, OWNER).status_code == 303
    assert {log_in(client, OWNER, "wrong").status_code for _ in range(9)} == {401}


def test_unknown_e_mails_and_e_mails_without_password_take_the_same_password_work(
    service: Service, hasher: CountingHasher
) -> None:
    _owner_with_password(service)
    team = service.workspace("Other", "other@acme.test")
    team.post("/teammates", {"full_name": "No Password", "email": "nopass@acme.test"})
    client = browser(service)
    for email in (OWNER, "nobody@acme.test", "nopass@acme.test"):
        before = hasher.verified
        assert log_in(client, email, "wrong password").status_code == 401
        assert hasher.verified - before == 1, email


def test_password_work_runs_one_at_a_time_on_its_own_thread(
    start_service: Callable[..., Service], hasher: CountingHasher
) -> None:
    service = start_service(login_attempts_per_account=100, login_attempts_per_address=100)
    _owner_with_password(service)

    def attempt(i: int) -> Any:
        with browser(service) as client:
            return log_in(client, OWNER, f"wrong {i}").status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(attempt, range(16))) == {401}
    assert hasher.most_at_once == 1
    assert all(name.startswith("chathooks-argon2") for name in hasher.threads), hasher.threads
