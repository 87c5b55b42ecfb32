"""Sampling the operator with py-spy while it works, and saying where the time went."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType

PY_SPY = Path(sys.executable).parent / "py-spy"
SAMPLES_PER_SECOND = 50
TOP = 30
# py-spy's raw frames look like "reconcile (modeldeploy/controller/reconcile.py:92)".
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:]*)(?::\d+)?\)$")
# Where a thread waits rather than works, though py-spy does not always see it as idle: the
# event loop in select(), and a thread-pool worker blocked on its queue (its own frame on top).
WAITING = re.compile(r"^(\w*Selector\.select|_worker) ")


class Profiler:
    """py-spy attached to `pid` for the duration of a `with`; writes the collapsed stacks to
    `<out>.collapsed` (input for flame graph tools) and a summary to `<out>.txt`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        self.process = subprocess.Popen(
            [
                str(PY_SPY),
                "record",
                f"--pid={self.pid}",
                f"--rate={SAMPLES_PER_SECOND}",
                # Sample without stopping the process, so the profile does not slow what it measures.
                "--nonblocking",
                "--format=raw",
                f"--output={self.out.with_suffix('.collapsed')}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self.process is not None
        # py-spy writes its output when interrupted (or when the process it samples exits).
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        collapsed = self.out.with_suffix(".collapsed")
        if collapsed.exists():
            self.out.with_suffix(".txt").write_text(summarize(collapsed.read_text()))


def summarize(collapsed: str) -> str:
    """Samples by function where the CPU was (self), by function on the stack (inclusive),
    and by the package of the function that was running; waiting is left out."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = waiting = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        if WAITING.match(stack.rsplit(";", 1)[-1]):
            waiting += count
            continue
        total += count
        frames = [_frame(text) for text in stack.split(";")]
        own[frames[-1][0]] += count
        packages[frames[-1][1]] += count
        for name in {name for name, _ in frames}:
            inclusive[name] += count
    lines = [
        f"{total} samples of work at {SAMPLES_PER_SECOND}/s ({total / SAMPLES_PER_SECOND:.0f} s of CPU); "
        f"{waiting} more of threads waiting in select() or for thread-pool work, left out",
        "",
    ]
    for title, counter in (
        ("by package of the running function", packages),
        ("self time by function", own),
        ("inclusive time by function", inclusive),
    ):
        lines.append(f"## {title}")
        lines += [f"{100 * count / total:6.1f}%  {name}" for name, count in counter.most_common(TOP)]
        lines.append("")
    return "\n".join(lines)


def _frame(text: str) -> tuple[str, str]:
    """(function with its file, package) of one raw frame."""
    match = FRAME.match(text)
    if not match:
        return text, text
    file = match["file"]
    path = file.split("site-packages/")[-1]
    package = path.split("/")[0] if "/" in path else Path(path).stem
    if "python3" in file and "site-packages" not in file:
        package = f"stdlib:{Path(file).stem}"
    return f"{match['function']} ({path})", package
