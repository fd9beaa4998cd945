"""The response cache: append-only JSON lines, one file per rank, read back from all files.

A line is keyed by task, split, sample id, prompt hash, decoding settings and the model's
fingerprint, so a resumed run (on any number of ranks) generates only what is missing. A
line cut short by a kill is ignored. No pickle: every line is plain JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def response_key(task: str, split: str, sample_id: str, prompt: str, settings: dict,
                 model: str) -> str:  # fmt: skip
    prompt_hash = hashlib.sha256(prompt.encode()).hexdigest()
    fields = [task, split, sample_id, prompt_hash, settings, model]
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def read_responses(folder: Path) -> dict[str, str]:
    """key -> answer over every ``*.jsonl`` in the folder."""
    found: dict[str, str] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    found[entry["key"]] = entry["answer"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a line cut short by a kill
    return found


class ResponseWriter:
    """Appends this rank's answers; each batch is flushed to disk before the next starts."""

    def __init__(self, folder: Path, rank: int):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"responses-rank{rank}.jsonl"
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        if self._handle.tell() and not self._ends_with_newline():
            self._handle.write("\n")  # a cut line stays on its own, unread

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def write(self, entries: list[dict]) -> None:
        for entry in entries:
            self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()
