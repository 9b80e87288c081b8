"""The ASGI applications, assembled above both HTTP layers: the JSON API and the pages
(``serve``, ``api``), with the delivery and send workers in the same process (``serve``),
and the workers alone behind their probes and metrics (``worker``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from chathooks import __version__
from chathooks.api import lean, ops
from chathooks.api.methods import install_allow_header
from chathooks.api.mount import install_api
from chathooks.deliver.wakeups import wake_on_notices
from chathooks.deliver.worker import DeliveryWorker
from chathooks.group_commit import GroupCommit
from chathooks.retention import run_retention
from chathooks.runtime import Runtime
from chathooks.send.worker import SendWorker
from chathooks.sources.receive import Inbound
from chathooks.store import deliveries, outgoing
from chathooks.web.mount import install_pages

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def _lifespan(rt: Runtime, *, deliver: bool) -> Lifespan:
    """Makes the group commit that stores single messages and source requests; runs the
    worker, retention and (on PostgreSQL) the wake-up listener while the app runs; on
    shutdown stops claiming and waits for what is in flight."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.group_commit = GroupCommit(rt)
        app.state.inbound = Inbound(rt, app.state.group_commit)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []
        listener = None
        if deliver:
            if rt.settings.is_sqlite:
                with rt.transaction() as session:
                    deliveries.release_all_leases(session)
                    outgoing.release_all_leases(session)
            worker = DeliveryWorker(rt)
            app.state.heartbeat = worker.heartbeat
            tasks = [
                asyncio.create_task(worker.run(stop)),
                asyncio.create_task(SendWorker(rt).run(stop)),
                asyncio.create_task(run_retention(rt, stop)),
            ]
            if not rt.settings.is_sqlite:
                listener = asyncio.create_task(wake_on_notices(rt, stop))
        try:
            yield
        finally:
            stop.set()
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
            await asyncio.gather(*tasks)
            await rt.transport.close()
            await rt.own_transport.close()
            await rt.sender_transport.close()

    return lifespan


class _Chathooks(FastAPI):
    """FastAPI, with a message's two doors answered before its stack (``api.lean``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await lean.answer(self.state, super().__call__, scope, receive, send)


def create_app(rt: Runtime, *, run_worker: bool) -> FastAPI:
    """``run_worker`` makes this process also deliver (``serve``); ``api`` leaves it out."""
    app = _Chathooks(
        title="chathooks",
        version=__version__,
        lifespan=_lifespan(rt, deliver=run_worker),
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = rt
    install_api(app)
    install_pages(app, rt)
    install_allow_header(app)
    return app


def create_worker_app(rt: Runtime) -> FastAPI:
    """``chathooks worker``: delivery, retention and wake-ups, with only the probes and
    metrics over HTTP (on ``CHATHOOKS_METRICS_PORT``)."""
    app = FastAPI(title="chathooks worker", lifespan=_lifespan(rt, deliver=True))
    app.state.runtime = rt
    app.include_router(ops.router)
    return app
