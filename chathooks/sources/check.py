"""The Check button and ``POST /api/v1/sources/{id}/check``: can this source send?

It makes the kind's cheapest authenticated read (``Sender.check_call``) through the guarded
sender transport and says in plain words what is wrong: missing sending secrets, an address
the operator does not allow, no connection, or what the sender answered (``read_check``).
Credentials never appear in the words.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

from chathooks.deliver.transport import Outcome
from chathooks.runtime import Runtime
from chathooks.security import UnsafeTarget, check_sender_url
from chathooks.sources import manage
from chathooks.sources.kinds import SENDERS
from chathooks.sources.protocol import Call, CheckAnswer, Kind, Sender
from chathooks.states import TIMED_OUT

HIDDEN = "••••••"


async def check(rt: Runtime, workspace_id: int, source_id: int) -> CheckAnswer:
    """``NotFound`` for another workspace's source, as for a missing one."""

    def prepare() -> tuple[Kind, dict[str, str], Sender | None]:
        with rt.transaction() as session:
            source = manage.get(session, workspace_id, source_id)
            return manage.kind_of(source), dict(source.secrets), SENDERS.get(source.kind)

    kind, secrets, sender = await asyncio.to_thread(prepare)
    if sender is None:
        words = f"{kind.LABEL} sources only receive: chathooks cannot send through this sender."
        return CheckAnswer(False, words)
    call = await asyncio.to_thread(_call, kind, sender, secrets, rt)
    if isinstance(call, CheckAnswer):
        return call
    outcome = await rt.sender_transport.request(
        call.method, call.url, dict(call.headers), call.body
    )
    if outcome.status is None:
        answer = CheckAnswer(False, _unreachable(kind, call.url, outcome))
    else:
        answer = sender.read_check(outcome.status, outcome.body)
    return CheckAnswer(answer.ok, _hidden(answer.words, kind, secrets))


def _call(
    kind: Kind, sender: Sender, secrets: Mapping[str, str], rt: Runtime
) -> Call | CheckAnswer:
    """The check call, or why there is none (run in a thread: checking the URL resolves
    its host)."""
    labels = {secret.name: secret.label for secret in kind.SECRETS}
    missing = [labels[name] for name in sender.SEND_SECRETS if not secrets.get(name)]
    if missing:
        return CheckAnswer(
            False,
            f"To send, this source needs its {_listed(missing)}: set "
            f"{'it' if len(missing) == 1 else 'them'} in the source's settings.",
        )
    call = sender.check_call(secrets)
    settings = rt.settings
    try:
        check_sender_url(call.url, settings.allow_private_targets, settings.sender_hosts)
    except UnsafeTarget as error:
        return CheckAnswer(False, f"chathooks may not call {_host(call.url)}: it {error}.")
    return call


def _unreachable(kind: Kind, url: str, outcome: Outcome) -> str:
    """No answer, in words: which host, and the likely cause."""
    host = _host(url)
    if outcome.error == TIMED_OUT:
        return f"{host} did not answer in time: is {kind.LABEL} running and reachable there?"
    if "non-public address" in outcome.error:
        return (
            f"chathooks may not call {host}: it is a loopback, private or link-local "
            "address (the operator can allow this host and port in CHATHOOKS_SENDER_HOSTS)."
        )
    if "refused" in outcome.error.lower() or "connect call failed" in outcome.error.lower():
        return f"Connection refused by {host}: is {kind.LABEL} running at this address?"
    return f"Could not reach {host}: {outcome.error}"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _listed(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def _hidden(words: str, kind: Kind, secrets: Mapping[str, str]) -> str:
    """The words without any credential, whatever the sender echoed back."""
    for secret in kind.SECRETS:
        value = secrets.get(secret.name, "")
        if secret.role == "credential" and len(value) >= 4:
            words = words.replace(value, HIDDEN)
    return words
