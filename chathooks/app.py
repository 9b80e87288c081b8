"""The ASGI application, assembled above both HTTP layers: the JSON API, the pages, and
(for ``serve``) the delivery worker in the same process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from chathooks import __version__
from chathooks.api.mount import install_api
from chathooks.deliver.worker import DeliveryWorker
from chathooks.runtime import Runtime
from chathooks.store import deliveries
from chathooks.web.mount import install_pages


def create_app(rt: Runtime, *, run_worker: bool) -> FastAPI:
    """``run_worker`` makes this process also deliver (``serve``); ``api`` leaves it out."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = None
        if run_worker:
            if rt.settings.is_sqlite:
                with rt.transaction() as session:
                    deliveries.release_all_leases(session)
            task = asyncio.create_task(DeliveryWorker(rt).run(stop))
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await rt.transport.close()

    app = FastAPI(
        title="chathooks", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.runtime = rt
    install_api(app)
    install_pages(app, rt)
    return app
