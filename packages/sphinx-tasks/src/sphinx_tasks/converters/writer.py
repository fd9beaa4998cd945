"""Writing converter output: JSON lines to a temporary file, renamed when complete."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from .base import Record, Skip, Summary


class _Progress:
    """tqdm when it is installed, else a counter on stderr every few thousand items."""

    def __init__(self, enabled: bool, every: int = 5000) -> None:
        self.bar = None
        self.count = 0
        self.every = every
        self.enabled = enabled
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(unit=" items", file=sys.stderr)

    def step(self) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update()
        elif self.enabled and self.count % self.every == 0:
            print(f"\r{self.count} items", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.count >= self.every:
            print(file=sys.stderr)


def write_records(
    items: Iterable[Record | Skip], out: str | os.PathLike, progress: bool = False
) -> Summary:
    """Write records as JSON lines; skips are only counted. ``out`` appears only when all is done."""
    target = Path(out)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    summary = Summary()
    bar = _Progress(progress)
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            for item in items:
                bar.step()
                if isinstance(item, Skip):
                    summary.skipped[item.reason] += 1
                    continue
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
                summary.written += 1
        os.replace(temporary, target)
    finally:
        bar.close()
        temporary.unlink(missing_ok=True)
    return summary
