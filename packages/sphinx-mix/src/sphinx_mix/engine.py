"""The streaming loop shared by every operation.

Keys are visited one at a time: a reader thread reads the next key's tensors into reusable
buffers, the main thread mixes the current one in slices into a reusable output buffer, and
a writer thread writes the previous one; input files are hashed (BLAKE3 by default) in another thread. Peak
memory is a couple of tensors per source plus three output slices, never a whole model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .arithmetic import Combiner
from .checkpoint import Checkpoint, ShardedReference, Source, open_checkpoint
from .digests import InputHasher
from .errors import MixError
from .options import MixOptions
from .output import (
    BackgroundSink,
    MemorySink,
    ReferenceShardSink,
    ShardedSafetensorsSink,
    copy_extra_files,
    output_folder,
)
from .pipeline import BufferRing, ReadAhead
from .plan import KeyPlan, plan_keys

# Output buffers: one being filled, the others queued for or inside the writer thread.
_OUTPUT_BUFFERS = 3
# Weighted sums are computed and written in slices of this size, so the output buffers
# stay small and hot in the cache (the writer copies them while they are) instead of being
# fresh tensor-sized allocations.
SLICE_BYTES = 4 << 20


@dataclass(frozen=True)
class Formula:
    """What to compute per key: a weighted sum, base plus scaled differences, or a rule.

    For ``kind="task"`` the first source is the base and each coefficient scales one of the
    other sources; ``kind="tensor"`` hands whole tensors to ``merge``. ``coefficients_for`` returns None for keys copied from the first source.
    """

    kind: str
    coefficients_for: Callable[[str], tuple[float, ...] | None]
    description: dict = field(default_factory=dict)
    # Whole-tensor rules (``kind="tensor"``): ``merge(key, tensors, coefficients)`` gets every
    # source's tensor in the compute dtype, the first one being the base.
    merge: Callable[[str, list[torch.Tensor], tuple[float, ...]], torch.Tensor] | None = None


def run_mix(
    sources: Sequence[Source],
    formula: Formula,
    out: str | Path | None,
    options: MixOptions,
) -> dict[str, torch.Tensor] | Path:
    """Mix ``sources`` into ``out`` (a folder) or, when ``out`` is None, into a state dict."""
    opened: list = []
    try:
        for index, source in enumerate(sources):
            opened.append(open_checkpoint(source))
            if isinstance(source, Mapping):
                opened[-1].label = f"<state dict {index}>"
        return _mix_opened(opened, formula, out, options)
    finally:
        for checkpoint in opened:
            checkpoint.close()


def _mix_opened(opened: list, formula: Formula, out, options: MixOptions):
    references = [isinstance(checkpoint, ShardedReference) for checkpoint in opened]
    if any(references):
        if not all(references) or out is None:
            raise MixError(
                "reference consolidated.*.model.pth checkpoints can only be mixed with each "
                "other and into an output folder; convert the others first"
            )
        return _mix_reference(opened, formula, Path(out), options)
    plans = plan_keys(opened, formula.coefficients_for, options)
    if out is None:
        sink = MemorySink(plans)
        _stream(opened, plans, formula, options, sink)
        return sink.state_dict
    with _output(opened, Path(out), options) as staging:
        hasher = _hasher(opened, options)
        sink = ShardedSafetensorsSink(
            staging,
            plans,
            options.shard_bytes,
            _metadata(formula, opened, options, hasher.placeholder()),
            direct=options.direct_io,
        )
        try:
            _stream(opened, plans, formula, options, sink)
            sink.finish(_metadata(formula, opened, options, hasher.result()))
        finally:
            hasher.stop()
            sink.close()
        copy_extra_files(opened[0].extra_files(), staging, options.out_torch_dtype)
    return Path(out)


def _output(opened: Sequence, out: Path, options: MixOptions):
    """The staged output folder; the sources are the inputs it must never touch."""
    inputs = [
        path
        for checkpoint in opened
        for path in [*checkpoint.weight_files, *([checkpoint.folder] if checkpoint.folder else [])]
    ]
    copied = [path.name for path in opened[0].extra_files()]
    return output_folder(out, inputs, options.overwrite, copied)


def _mix_reference(
    opened: list[ShardedReference], formula: Formula, out: Path, options: MixOptions
) -> Path:
    layouts = {len(reference.ranks) for reference in opened}
    if len(layouts) != 1:
        listing = ", ".join(f"{ref.label}: {len(ref.ranks)}" for ref in opened)
        raise MixError(f"model-parallel layouts differ ({listing} shards); convert them first")
    count = layouts.pop()
    with _output(opened, out, options) as staging:
        hasher = _hasher(opened, options)
        try:
            for rank in range(count):
                shards = [reference.ranks[rank] for reference in opened]
                plans = plan_keys(shards, formula.coefficients_for, options)
                name = f"consolidated.{rank:02d}-of-{count:02d}.model.pth"
                sink = ReferenceShardSink(staging / name, plans)
                try:
                    _stream(shards, plans, formula, options, sink)
                finally:
                    sink.close()
            metadata = _metadata(formula, opened, options, hasher.result())
        finally:
            hasher.stop()
        (staging / "sphinx_mix.json").write_text(json.dumps(json.loads(metadata), indent=2) + "\n")
        copy_extra_files(opened[0].extra_files(), staging, options.out_torch_dtype)
    return out


def _stream(
    checkpoints: Sequence[Checkpoint],
    plans: Sequence[KeyPlan],
    formula: Formula,
    options: MixOptions,
    sink,
) -> None:
    # Chunked sums split each tensor over Python workers; whole-tensor rules use torch's own.
    chunked = formula.merge is None
    combiner = Combiner(
        options.compute_torch_dtype,
        options.torch_device,
        workers=options.threads if chunked else 1,
    )
    largest = max(plan.nbytes for plan in plans)
    outputs = BufferRing(_OUTPUT_BUFFERS, min(largest, SLICE_BYTES) if chunked else largest)
    reader = ReadAhead(checkpoints, plans)
    writer = BackgroundSink(sink, depth=_OUTPUT_BUFFERS - 1)
    never = threading.Event()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1 if chunked else options.threads)
    total = sum(plan.nbytes for plan in plans)
    with tqdm(
        total=total, unit="B", unit_scale=True, desc="mixing", disable=not options.progress
    ) as progress:
        try:
            for plan, tensors, release_inputs in reader:
                if plan.coefficients is None:
                    result = tensors[0].to(plan.dtype)
                    if options.check_finite:
                        _check_finite(checkpoints, plan, result)
                    writer.add(plan.key, result, release_inputs)
                    progress.update(plan.nbytes)
                    continue
                for offset, pieces in _slices(plan, tensors, outputs.nbytes):
                    buffer, release = outputs.acquire(never)
                    result = buffer[: pieces[0].numel() * plan.dtype.itemsize].view(plan.dtype)
                    result = result.reshape(pieces[0].shape)
                    _combine(pieces, plan, formula, combiner, result)
                    if options.check_finite:
                        _check_finite(checkpoints, plan, result)
                    writer.add(plan.key, result, release, offset=offset)
                    progress.update(result.numel() * plan.dtype.itemsize)
                release_inputs()
        finally:
            torch.set_num_threads(threads_before)
            reader.close()
            writer.join()
            combiner.close()


def _slices(plan: KeyPlan, tensors: Sequence[torch.Tensor], nbytes: int):
    """``(byte offset, pieces)``: the whole tensors when they fit ``nbytes``, else flat slices."""
    if plan.nbytes <= nbytes:
        yield 0, list(tensors)
        return
    step = nbytes // plan.dtype.itemsize
    flats = [tensor.reshape(-1) for tensor in tensors]
    for start in range(0, flats[0].numel(), step):
        yield start * plan.dtype.itemsize, [flat[start : start + step] for flat in flats]


def _combine(
    tensors: Sequence[torch.Tensor],
    plan: KeyPlan,
    formula: Formula,
    combiner: Combiner,
    out: torch.Tensor,
) -> None:
    assert plan.coefficients is not None
    if formula.merge is not None:
        widened = [
            tensor.to(device=combiner.device, dtype=combiner.compute_dtype) for tensor in tensors
        ]
        out.copy_(formula.merge(plan.key, widened, plan.coefficients))
    elif formula.kind == "task":
        combiner.task_sum(tensors[0], tensors[1:], plan.coefficients, out)
    else:
        combiner.weighted_sum(tensors, plan.coefficients, out)


def _check_finite(checkpoints: Sequence[Checkpoint], plan: KeyPlan, tensor: torch.Tensor) -> None:
    if not tensor.dtype.is_floating_point or bool(torch.isfinite(tensor).all()):
        return
    culprits = [
        checkpoint.label
        for checkpoint in checkpoints
        if not bool(torch.isfinite(checkpoint.get(plan.key)).all())
    ]
    origin = f"already in {', '.join(culprits)}" if culprits else "produced by the arithmetic"
    raise MixError(f"{plan.key}: the result holds NaN or Inf values ({origin})")


def _hasher(opened: Sequence[Checkpoint | ShardedReference], options: MixOptions) -> InputHasher:
    files = [str(path) for checkpoint in opened for path in checkpoint.weight_files]
    return InputHasher(files, options.digest if options.hash_inputs else None)


def _metadata(
    formula: Formula,
    opened: Sequence[Checkpoint | ShardedReference],
    options: MixOptions,
    hashes: dict[str, str] | None,
) -> str:
    record = {
        "tool": f"sphinx-mix {version('sphinx-mix')}",
        **formula.description,
        "sources": [checkpoint.label for checkpoint in opened],
        "compute_dtype": str(options.compute_torch_dtype).removeprefix("torch."),
    }
    if hashes is not None:
        record[options.digest] = hashes
    return json.dumps(record, separators=(",", ":"))
