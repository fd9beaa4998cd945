"""Writing converter output under the house rules: staged, renamed when complete, never over
an input, never over an existing file without ``overwrite``."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from .._house import staged_dir, staged_file
from .base import ConversionError, EmbeddedImage, Record, Skip, Summary

IMAGE_PATTERNS = ("*.jpg", "*.png", "*.gif", "*.webp", "*.bmp")
NOT_EXTRACTED = "embedded image not written (pass --images-out to write them)"


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
    items: Iterable[Record | Skip | EmbeddedImage],
    out: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    images_out: str | os.PathLike | None = None,
    progress: bool = False,
) -> Summary:
    """Write records as JSON lines to ``out``; skips are only counted.

    ``out`` (and ``images_out``, for embedded images) appear only when everything is done;
    a conversion that writes no record at all is an error, so a wrong file never passes for
    an empty one.
    """
    inputs = [Path(p) for p in inputs]
    summary = Summary()
    bar = _Progress(progress)
    with contextlib.ExitStack() as stack:
        stage = stack.enter_context(staged_file(out, inputs, overwrite=overwrite))
        images = None
        if images_out is not None:
            images = stack.enter_context(
                staged_dir(images_out, [*inputs, out], overwrite=overwrite, owns=IMAGE_PATTERNS)
            )
        stack.callback(bar.close)
        with stage.open("w", encoding="utf-8") as handle:
            for item in items:
                bar.step()
                if isinstance(item, Skip):
                    summary.skipped[item.reason] += 1
                elif isinstance(item, EmbeddedImage):
                    if images is None:
                        summary.skipped[NOT_EXTRACTED] += 1
                    else:
                        (images / item.name).write_bytes(item.data)
                else:
                    handle.write(json.dumps(item, ensure_ascii=False) + "\n")
                    summary.written += 1
        if not summary.written:
            source = ", ".join(str(p) for p in inputs[:1]) or "input"
            raise ConversionError(f"{source}: no records to write ({summary.describe()})")
    return summary
