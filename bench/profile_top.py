"""Summarise a py-spy ``--format raw`` (collapsed stacks) file: where the time goes.

    .venv/bin/python -m bench.profile_top bench/results/profile-none-sqlite.txt [N]

Prints the top functions by self samples and by inclusive samples (each function counted
once per stack), idle frames (waiting on a selector, a lock or a queue) shown apart.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

IDLE = re.compile(r"\b(select|poll|epoll|_worker|wait|acquire|get)\b \(")
FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:]+)(?::\d+)?\)$")


def short(frame: str) -> str:
    """``func (path/to/module.py:12)`` → ``func (module.py)``, keeping the chathooks path."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    if "chathooks/" in path:
        path = "chathooks/" + path.split("chathooks/", 1)[1]
    else:
        path = Path(path).name
    return f"{match['func']} ({path})"


def summarise(lines: list[str]) -> tuple[Counter[str], Counter[str], int]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [short(f) for f in stack.split(";")[1:]]  # first item is the thread
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return own, inclusive, total


def main() -> None:
    path = Path(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    own, inclusive, total = summarise(path.read_text().splitlines())
    print(f"{path.name}: {total} samples")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"\n-- top {top} by {title} --")
        for frame, count in counter.most_common(top):
            print(f"{100 * count / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
