"""Memory and CPU of chathooks' processes and of every child they start.

``serve`` may run its worker (or anything else) as a child process, so each figure
covers a process tree, found through ``/proc/<pid>/task/*/children``. A :class:`Watch`
samples the trees once a second while a phase runs: resident set, peak resident set
(``VmHWM``) and CPU (user + system, ``/proc/<pid>/stat``) of each process it has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants that are alive now (any thread may have started them)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one live process (all its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of one live process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line[:5]] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of all cores since boot, from ``/proc/stat``: the share of
    the machine a phase kept busy, whoever was using it."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


@dataclass
class Seen:
    root: int
    """The process the bench started that this one is (or descends from)."""
    cpu_at_start: float
    cpu: float = 0.0
    peak_rss_mib: float = 0.0


@dataclass
class Watch:
    """CPU and memory of the process trees under ``roots`` from ``__aenter__`` on.

    A process that appears later counts from its start; one that ends keeps its last
    sample (up to one ``interval`` of its CPU may be missed). Call :meth:`sample` (or
    leave the ``async with``) before stopping the processes.
    """

    roots: Sequence[int]
    interval: float = 1.0
    others: Callable[[], list[int]] | None = None
    """Processes the bench did not start whose CPU counts apart (:meth:`others_cpu`), e.g.
    the PostgreSQL backends serving the phase's database; asked for at each sample."""
    others_seen: dict[int, tuple[float, float]] = field(default_factory=dict)
    seen: dict[int, Seen] = field(default_factory=dict)
    rss_series: list[tuple[float, float]] = field(default_factory=list)
    """(monotonic time, total VmRSS of the trees in MiB), one per sample."""
    _task: asyncio.Task[None] | None = None

    def sample(self) -> float:
        """Read every live process now; returns their total resident set in MiB."""
        total = 0.0
        for pid, root in {p: r for r in self.roots for p in tree(r)}.items():
            try:
                cpu = cpu_seconds(pid)
                rss, peak = memory_mib(pid)
            except (OSError, KeyError):
                continue
            seen = self.seen.setdefault(pid, Seen(root, 0.0 if self._task else cpu))
            seen.cpu, seen.peak_rss_mib = cpu, peak
            total += rss
        self.rss_series.append((time.monotonic(), total))
        for pid in self.others() if self.others else []:
            with contextlib.suppress(OSError):
                cpu = cpu_seconds(pid)
                start = self.others_seen.get(pid, (0.0 if self._task else cpu, 0.0))[0]
                self.others_seen[pid] = (start, cpu)
        return total

    def cpu(self, root: int | None = None) -> float:
        """CPU seconds used by the trees (or the one of ``root``) since the watch began (as
        of the last sample)."""
        seen = [s for s in self.seen.values() if root in (None, s.root)]
        return sum(s.cpu - s.cpu_at_start for s in seen)

    def others_cpu(self) -> float:
        """CPU seconds used by :attr:`others` since the watch began (as of the last sample)."""
        return sum(last - start for start, last in self.others_seen.values())

    @property
    def peak_rss_mib(self) -> float:
        """The largest service: per root, the sum of its processes' own peaks (the most
        that ``serve`` and, say, a worker child of it can have held at once)."""
        per_root: dict[int, float] = {}
        for seen in self.seen.values():
            per_root[seen.root] = per_root.get(seen.root, 0.0) + seen.peak_rss_mib
        return max(per_root.values(), default=0.0)

    @property
    def peak_rss_all_mib(self) -> float:
        """Every process's own peak, summed over all the roots."""
        return sum(s.peak_rss_mib for s in self.seen.values())

    @property
    def processes(self) -> int:
        return len(self.seen)

    def rss_between(self, start: float, end: float) -> list[float]:
        return [rss for at, rss in self.rss_series if start <= at <= end]

    def figures(self, messages: int) -> dict[str, float | int | None]:
        cpu = self.cpu()
        return {
            "cpu_seconds": cpu,
            "cpu_ms_per_message": cpu * 1000 / messages if messages else None,
            "peak_rss_mib": self.peak_rss_mib,
            "peak_rss_all_processes_mib": self.peak_rss_all_mib,
            "peak_sampled_rss_mib": max((r for _, r in self.rss_series), default=None),
            "processes": self.processes,
        }

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.sample()

    async def __aenter__(self) -> Watch:
        self.sample()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()
