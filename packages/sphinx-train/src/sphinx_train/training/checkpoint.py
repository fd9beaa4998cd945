"""Training checkpoints (DCP) and resume.

``OUT/checkpoints/step-N/`` holds the sharded model and optimizer state written by
``torch.distributed.checkpoint``, ``trainer.json`` (step, sampler states) and
``manifest.json`` (every file and its size). It is written to ``step-N.tmp/`` and renamed
when complete; a folder without a manifest, or whose files disagree with it, is refused
with one error before anything is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch.distributed as dist

MANIFEST = "manifest.json"
TRAINER_STATE = "trainer.json"


def _step_of(path: Path) -> int | None:
    name = path.name
    if not name.startswith("step-") or not name[5:].isdigit():
        return None
    return int(name[5:])


def complete_checkpoints(folder: Path) -> list[Path]:
    """Renamed (complete) checkpoint folders, oldest first."""
    if not folder.is_dir():
        return []
    found = [(step, path) for path in folder.iterdir()
             if path.is_dir() and (step := _step_of(path)) is not None]
    return [path for _, path in sorted(found)]


def verify(path: Path) -> dict:
    """The trainer state of a complete checkpoint; a truncated or partial one is refused."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{path}: not a complete checkpoint (no {MANIFEST}); remove it to "
                         "resume from an earlier one")
    manifest = json.loads(manifest_path.read_text())
    for name, size in manifest.items():
        file = path / name
        actual = file.stat().st_size if file.is_file() else None
        if actual != size:
            state = "missing" if actual is None else f"{actual} bytes"
            raise ValueError(
                f"{path}: {name} is {state}, expected {size} bytes (truncated or damaged "
                "checkpoint); remove the folder to resume from an earlier one"
            )
    return json.loads((path / TRAINER_STATE).read_text())


def _state(model, optimizer):
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    model_state, optim_state = get_state_dict(
        model, optimizer, options=StateDictOptions(ignore_frozen_params=True)
    )
    return {"model": model_state, "optim": optim_state}


class CheckpointWriter:
    """Writes ``step-N`` checkpoints, in the training thread or (``async_save``) in DCP's
    background thread: the state is copied to CPU memory at the save, training goes on
    while the files are written, and the folder is completed (trainer state, manifest,
    rename, pruning) at the next save or at ``finish``. Until then it stays ``step-N.tmp``,
    so a kill at any moment leaves the previous complete checkpoint to resume from.
    Every rank calls ``save`` and ``finish`` at the same points (both hold barriers)."""

    def __init__(self, folder: Path, keep_latest_k: int, async_save: bool = False):
        self.folder, self.keep_latest_k = folder, keep_latest_k
        # The background writes gather across ranks: on a group of their own, so that they
        # never interleave with the training step's collectives.
        self.group = dist.new_group(backend="gloo") if async_save else None
        self.pending = None

    def save(self, step: int, model, optimizer, trainer_state: dict) -> Path:
        import torch.distributed.checkpoint as dcp

        self.finish()
        target = self.folder / f"step-{step}"
        staging = self.folder / f"step-{step}.tmp"
        if dist.get_rank() == 0:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        dist.barrier()
        state = _state(model, optimizer)
        if self.group is None:
            dcp.save(state, checkpoint_id=str(staging))
            self._complete(staging, target, trainer_state)
        else:
            future = dcp.async_save(state, checkpoint_id=str(staging), process_group=self.group)
            self.pending = (future, staging, target, dict(trainer_state))
        return target

    def finish(self) -> None:
        """Wait for a background save and complete its folder (no-op without one)."""
        if self.pending is not None:
            future, staging, target, trainer_state = self.pending
            self.pending = None
            future.result()
            self._complete(staging, target, trainer_state)

    def _complete(self, staging: Path, target: Path, trainer_state: dict) -> None:
        dist.barrier()  # every rank's files are written
        if dist.get_rank() == 0:
            (staging / TRAINER_STATE).write_text(json.dumps(trainer_state, indent=1))
            manifest = {path.name: path.stat().st_size for path in sorted(staging.iterdir())}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
            for old in complete_checkpoints(self.folder)[:-self.keep_latest_k]:
                shutil.rmtree(old)
        dist.barrier()


def load_checkpoint(path: Path, model, optimizer) -> None:
    """Restore model and optimizer in place (any number of ranks: DCP reshards)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    state = _state(model, optimizer)
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(
        model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"],
        options=StateDictOptions(ignore_frozen_params=True, strict=False),
    )


def clean_staging(folder: Path) -> None:
    """A killed save leaves ``step-N.tmp``; the next run removes it (rank 0)."""
    if folder.is_dir():
        for path in folder.glob("step-*.tmp"):
            shutil.rmtree(path, ignore_errors=True)


def gather_full_model(model, build_fresh):
    """The trained weights gathered into a fresh unsharded model on rank 0 (None on the
    others); every rank calls it (the gather is collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )
    if dist.get_rank() != 0:
        return None
    fresh = build_fresh()
    missing, unexpected = fresh.load_state_dict(full, strict=False)
    if unexpected or [name for name in missing if not name.startswith("encoder.")]:
        raise RuntimeError(f"gathering the model: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    return fresh


def export_final(model, build_fresh, target: Path, dtype) -> None:
    """Gather the full weights and save a ``save_pretrained`` folder (rank 0), in ``dtype``."""
    fresh = gather_full_model(model, build_fresh)
    if fresh is not None:
        fresh.to(dtype)
        fresh.save_pretrained(target, overwrite=True)
    dist.barrier()
