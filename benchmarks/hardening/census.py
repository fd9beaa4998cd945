"""Hostile-input census: every CLI entry point and the main loaders of the six packages.

Each case runs in a forked child (the packages are imported once, in the parent) inside a
fresh folder, and is classified from what it leaves behind:

- clean: a non-zero exit (CLI) or an expected error (ValueError / OSError, loaders) whose
  message is one line, and nothing new on disk;
- traceback: a Python traceback, or an error type a caller cannot expect;
- hang: still running after the time limit (killed);
- partial: failed, but left an output or a staging entry behind;
- silent wrong: succeeded on a hostile input, changed a file it must not touch, or ran a
  pickle payload.

Run: ``uv run python benchmarks/hardening/census.py`` (about 2-4 minutes on 2 busy cores);
``--only sphinx-tile,load_image`` runs the named targets. Writes
``benchmarks/results/hardening_census.md``.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import pickle
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
RESULTS = Path(__file__).resolve().parents[1] / "results" / "hardening_census.md"
CLASSES = ("clean", "traceback", "hang", "partial", "silent wrong")
MARKER = "PAYLOAD_RAN"
UNNAMED = "input not named"


# --- running one case in a child ------------------------------------------------------------
@dataclass
class Outcome:
    status: str  # one of CLASSES
    detail: str = ""


def run_child(
    body: Callable[[], int],
    *,
    timeout: float,
    interrupt_after: float | None = None,
    interrupt: int = signal.SIGINT,
) -> tuple[int | None, str]:
    """Run ``body`` in a forked child; its exit code (None on timeout) and its stderr."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 - shared with the forked child
    pid = os.fork()
    if pid == 0:  # child
        code = 101
        try:
            os.setpgid(0, 0)
            os.dup2(log.fileno(), 2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            # Python-level streams too (pytest, for one, swaps them for buffers).
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
            code = body()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
        except BaseException:  # report whatever escaped
            traceback.print_exc()
            code = 101
        finally:
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)
    start, signalled = time.monotonic(), False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        elapsed = time.monotonic() - start
        if interrupt_after is not None and not signalled and elapsed >= interrupt_after:
            os.kill(pid, interrupt)
            signalled = True
        if elapsed > timeout:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            code = None
            break
        time.sleep(0.02)
    log.seek(0)
    return code, log.read().decode("utf-8", "replace")


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that report something: not progress bars, warnings, notices or
    argparse's usage block (``usage:`` and its indented continuation)."""
    noise = ("it/s]", "s/it]", "items/s]", "%|", "warning", "warn(", "random weights")
    return [
        line
        for line in stderr.splitlines()
        if line.strip()
        and not line.startswith(("usage:", " "))
        and not any(n in line.lower() for n in noise)
    ]


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder`` with its bytes (None for folders), symlinks as they are."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = b"->" + os.readlink(path).encode()
        elif path.is_file():
            found[key] = path.read_bytes() if path.stat().st_size < 50_000_000 else b"big"
        else:
            found[key] = None
    return found


def classify(
    code: int | None,
    stderr: str,
    before: dict,
    after: dict,
    *,
    should_fail: bool,
    protected: tuple[str, ...] = (),
    interrupted: bool = False,
) -> Outcome:
    lines = error_lines(stderr)
    first = lines[-1] if lines else ""
    if any(name.endswith(MARKER) for name in after):
        return Outcome("silent wrong", "pickle payload executed")
    changed = [name for name in protected if before.get(name) != after.get(name)]
    if changed:
        return Outcome("silent wrong", f"changed {changed[0]}")
    if code is None:
        return Outcome("hang", "killed at the time limit")
    if "Traceback (most recent call last)" in stderr:
        return Outcome("traceback", first)
    new = sorted(set(after) - set(before))
    if interrupted and code == 0:
        return Outcome("clean", "finished before the signal")
    if interrupted and code != 130:
        return Outcome("traceback", f"exit {code} on a signal: {first}")
    if code == 0:
        return Outcome("silent wrong", "succeeded") if should_fail else Outcome("clean", "ok")
    if new:
        return Outcome("partial", f"left {new[0]}")
    if len(lines) > 1:
        return Outcome("traceback", f"{len(lines)} error lines: {first}")
    return Outcome("clean", first)


# --- hostile inputs ---------------------------------------------------------------------------
def png_bytes(width=64, height=48) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` with one tiny data chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@functools.cache
def png_bomb() -> bytes:
    """A real 16000 x 16000 grey PNG of zeros: ~250 KB on disk, 256 MB decoded."""
    side = 16000
    rows = zlib.compressobj(9)
    data = b"".join(rows.compress(b"\0" * (side + 1)) for _ in range(side)) + rows.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def safetensors_bytes(tensors: dict[str, list[float]] | None = None) -> bytes:
    import torch
    from safetensors.torch import save

    tensors = tensors or {"a.weight": [1.0, 2.0, 3.0, 4.0], "b.weight": [0.5, 0.25]}
    return save({k: torch.tensor(v) for k, v in tensors.items()})


def safetensors_huge() -> bytes:
    header = json.dumps(
        {"a.weight": {"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 16]}}
    )
    header += " " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header.encode() + b"\0" * 16


@functools.cache
def zip_bomb() -> bytes:
    """A torch-style zip whose one member inflates to 1 GiB of zeros (about 1 MB on disk)."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("archive/data.pkl", "w", force_zip64=True) as member,
    ):
        block = b"\0" * (1 << 24)
        for _ in range(64):
            member.write(block)
    return buffer.getvalue()


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def pickle_payload() -> bytes:
    return pickle.dumps({"model": {"llma.tok_embeddings.weight": _Payload()}}, protocol=2)


def yaml_bomb() -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, (name, prev) in enumerate(zip("bcdefghi", "abcdefgh", strict=True)):
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
        del i
    return ("\n".join(lines) + "\noperation: linear\nsources: *i\n").encode()


def nested_json(depth: int = 200_000) -> bytes:
    return b"[" * depth + b"]" * depth


def coco_json() -> bytes:
    return json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 10, 100, 50],
                         "area": 5000, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "dog"}],
    }).encode()  # fmt: skip


# Hostile variants of each kind of input: name -> bytes (None: derive from the valid bytes).
def variants(kind: str, valid: bytes) -> dict[str, bytes]:
    common = {"empty": b"", "truncated": valid[: len(valid) // 2]}
    if kind == "image":
        return common | {"wrong type": b'{"not": "an image"}', "huge dimensions": png_header(100_000, 100_000),
                         "decompression bomb": png_bomb()}  # fmt: skip
    if kind == "json":
        return common | {"wrong type": png_bytes(), "huge numbers": valid.replace(b"200", b"1e400"),
                         "deep nesting": nested_json()}  # fmt: skip
    if kind == "tensors":
        return common | {"wrong type": b'{"a": 1}', "huge dimensions": safetensors_huge(),
                         "zip bomb": zip_bomb(), "pickle payload": pickle_payload()}  # fmt: skip
    if kind == "yaml":
        return common | {"wrong type": png_bytes(), "alias bomb": yaml_bomb()}
    raise ValueError(kind)


# --- targets --------------------------------------------------------------------------------
@dataclass
class Target:
    """One entry point: how to lay out a case folder and what to run in it."""

    name: str
    kind: str  # image | json | tensors | yaml
    run: Callable[[Path, Path], Callable[[], int]]  # (input, output) -> child body
    filename: str = "input"
    valid: Callable[[], bytes] | None = None
    setup: Callable[[Path], None] | None = None  # extra files beside the input
    output: str | None = "out"  # None: this target writes nothing
    loader: bool = False
    interrupt: Callable[[Path], Path] | None = None  # builds a long-running valid input
    cases: list[str] = field(default_factory=list)


def cli(module: str, *argv_parts: str) -> Callable[[Path, Path], Callable[[], int]]:
    """A CLI target: ``{in}``, ``{dir}`` (its folder) and ``{out}`` are the case's paths."""

    def make(inp: Path, out: Path) -> Callable[[], int]:
        def body() -> int:
            import importlib

            main = importlib.import_module(module).main
            paths = {"{in}": inp, "{dir}": inp.parent, "{out}": out}
            argv = list(argv_parts)
            for key, value in paths.items():
                argv = [part.replace(key, str(value)) for part in argv]
            return main(argv)

        return body

    return make


def loader(call: Callable[[Path, Path], object]) -> Callable[[Path, Path], Callable[[], int]]:
    """A Python target: an expected error class prints one line and exits 1."""

    def make(inp: Path, out: Path) -> Callable[[], int]:
        def body() -> int:
            try:
                call(inp, out)
            except Exception as error:
                # Expected: the built-in ValueError / OSError families or a package's own error.
                if not isinstance(error, (ValueError, OSError)) and not type(
                    error
                ).__module__.startswith("sphinx_"):
                    raise
                print(f"{type(error).__name__}: {error}", file=sys.stderr)
                return 1
            return 0

        return body

    return make


def _tokenizer_file(folder: Path) -> None:
    shutil.copyfile(tokenizer_model(), folder / "tokenizer.model")


def _accessory_folder(folder: Path) -> None:
    (folder / "config.json").write_text(json.dumps({"dim": 64, "n_layers": 2, "n_heads": 4}))
    (folder / "meta.json").write_text(json.dumps({"llama_type": "llama_ens"}))
    _tokenizer_file(folder)


def _second_source(folder: Path) -> None:
    (folder / "other.safetensors").write_bytes(safetensors_bytes())


def _recipe_sources(folder: Path) -> None:
    (folder / "a.safetensors").write_bytes(safetensors_bytes())
    (folder / "b.safetensors").write_bytes(safetensors_bytes())


def _valid_recipe() -> bytes:
    return b"operation: linear\nsources: [a.safetensors, b.safetensors]\nbeta: 0.5\n"


def _fit_config() -> bytes:
    return (
        b"name: census\nmodel: {preset: sphinx-nano}\nschedule: {total_steps: 1}\n"
        b"data: {streams: [{name: s, per_step: 1, sources: [{name: t, kind: synthetic-text}]}]}\n"
    )


@functools.cache
def nano_model_folder() -> Path:
    """A saved sphinx-nano model (random weights), built once per run."""
    from sphinx_train import create_model

    folder = Path(tempfile.mkdtemp(prefix="census-nano-")) / "model"
    create_model("sphinx-nano").save_pretrained(folder)
    return folder


def _nano_model(folder: Path) -> None:
    shutil.copytree(nano_model_folder(), folder / "model")


def _load_image(inp: Path, out: Path) -> None:
    from sphinx_tiling import load_image

    load_image(inp)


def _iter_records(inp: Path, out: Path) -> None:
    from sphinx_tasks.converters import ConvertOptions, iter_records

    list(iter_records(inp, "coco-detection", ConvertOptions()))


def _open_checkpoint(inp: Path, out: Path) -> None:
    from sphinx_mix import open_checkpoint

    checkpoint = open_checkpoint(inp)
    for name in checkpoint.keys():  # noqa: SIM118 - a checkpoint, not a dict
        checkpoint.get(name)


def _read_state_dict(inp: Path, out: Path) -> None:
    from sphinx_encoders import read_state_dict

    read_state_dict(inp)


def _model_folder(folder: Path) -> None:
    """A model folder around the hostile ``model/llm/model.safetensors``."""
    (folder / "model" / "llm").mkdir(parents=True)
    (folder / "model" / "config.json").write_text('{"tiling": "sphinx", "template": "sphinx"}')
    (folder / "model" / "llm" / "config.json").write_text(
        '{"model_type": "llama", "hidden_size": 8}'
    )
    _tokenizer_file(folder / "model")


def _load_model(inp: Path, out: Path) -> None:
    from sphinx_train import load_model

    load_model(inp.parents[1])


def _load_mask(inp: Path, out: Path) -> None:
    from sphinx_apps import load_mask

    load_mask(inp, (64, 48))


def _big_png(folder: Path) -> Path:
    from PIL import Image

    path = folder / "big.png"
    Image.effect_noise((4000, 4000), 60).convert("RGB").save(path, compress_level=1)
    return path


def _big_coco(folder: Path) -> Path:
    images = [
        {"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in range(60_000)
    ]
    annotations = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 2, 30, 40], "area": 1200,
                    "iscrowd": 0} for i in range(60_000)]  # fmt: skip
    path = folder / "big.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "dog"}]}))  # fmt: skip
    return path


APPS_ARGS = ("{in}", "the dog", "--box", "1,1,20,20", "--out", "{out}")
TARGETS = [
    Target("sphinx-tile", "image", cli("sphinx_tiling.cli", "{in}", "--preset", "sphinx-1k", "--out", "{out}"),
           "photo.png", png_bytes, interrupt=_big_png),
    Target("sphinx-tasks convert", "json",
           cli("sphinx_tasks.cli", "convert", "{in}", "--format", "coco-detection", "--out", "{out}", "--no-progress"),
           "instances.json", coco_json, interrupt=_big_coco),
    Target("sphinx-mix linear", "tensors",
           cli("sphinx_mix.cli", "linear", "{in}", "{dir}/other.safetensors", "--beta", "0.5", "--out", "{out}",
               "--no-progress"), "a.safetensors", safetensors_bytes, _second_source),
    Target("sphinx-mix uniform-soup", "tensors",
           cli("sphinx_mix.cli", "uniform-soup", "{in}", "{dir}/other.safetensors", "--out", "{out}", "--no-progress"),
           "a.safetensors", safetensors_bytes, _second_source),
    Target("sphinx-mix task-arithmetic", "tensors",
           cli("sphinx_mix.cli", "task-arithmetic", "{in}", "--base", "{dir}/other.safetensors", "--out", "{out}",
               "--no-progress"), "a.safetensors", safetensors_bytes, _second_source),
    Target("sphinx-mix run", "yaml", cli("sphinx_mix.cli", "run", "{in}", "--out", "{out}", "--no-progress"),
           "recipe.yml", _valid_recipe, _recipe_sources),
    Target("sphinx-encoders check", "tensors", cli("sphinx_encoders.cli", "check", "sphinx-tiny", "{in}"),
           "weights.safetensors", safetensors_bytes, output=None),
    Target("sphinx-train convert-accessory", "tensors", cli("sphinx_train.cli", "convert-accessory", "{dir}", "{out}"),
           "consolidated.00-of-01.model.pth", safetensors_bytes, _accessory_folder),
    Target("sphinx-train chat", "image",
           cli("sphinx_train.cli", "chat", "--model", "sphinx-nano", "--image", "{in}", "--max-new-tokens", "2",
               "--draw", "{out}", "Where?"), "photo.png", png_bytes),
    Target("sphinx-train fit", "yaml", cli("sphinx_train.cli", "fit", "{in}", "--out", "{out}", "--max-steps", "1"),
           "fit.yml", _fit_config),
    Target("sphinx-train mix", "tensors", cli("sphinx_train.cli", "mix", "{in}", "{dir}/other.safetensors",
                                              "--out", "{out}"), "real.safetensors", safetensors_bytes, _second_source),
    Target("sphinx-train eval", "json",
           cli("sphinx_train.cli", "eval", "--model", "{dir}/model", "--task", "pope", "--split", "random", "--data",
               "{dir}", "--limit", "2", "--out", "{out}"), "coco_pope_random.json", coco_json, _nano_model),
    *[Target(f"sphinx-apps {command}", "image", cli("sphinx_apps.cli", command, *APPS_ARGS), "photo.png", png_bytes)
      for command in ("segment", "remove", "dense-caption", "reason", "pose")],
    Target("sphinx-apps edit", "image", cli("sphinx_apps.cli", "edit", *APPS_ARGS, "--prompt", "a cat"),
           "photo.png", png_bytes),
    Target("sphinx_tiling.load_image", "image", loader(_load_image), "photo.png", png_bytes, output=None, loader=True),
    Target("sphinx_tasks.iter_records", "json", loader(_iter_records), "instances.json", coco_json, output=None,
           loader=True),
    Target("sphinx_mix.open_checkpoint", "tensors", loader(_open_checkpoint), "a.safetensors", safetensors_bytes,
           output=None, loader=True),
    Target("sphinx_encoders.read_state_dict", "tensors", loader(_read_state_dict), "w.safetensors",
           safetensors_bytes, output=None, loader=True),
    Target("sphinx_train.load_model", "tensors", loader(_load_model), "model/llm/model.safetensors",
           safetensors_bytes, _model_folder, output=None, loader=True),
    Target("sphinx_apps.load_mask", "image", loader(_load_mask), "mask.png", png_bytes, output=None, loader=True),
]  # fmt: skip
# Entry points without an input file: bad usage and an existing output only.
NO_INPUT = [
    ("sphinx-tasks formats", "sphinx_tasks.cli", ["formats", "--bogus"]),
    ("sphinx-encoders list", "sphinx_encoders.cli", ["list", "zzz*", "--bogus"]),
    ("sphinx-encoders config", "sphinx_encoders.cli", ["config", "no-such-preset"]),
    ("sphinx-demo", "sphinx_apps.demo.cli", ["--bogus"]),
]


@dataclass
class Row:
    target: str
    case: str
    outcome: Outcome
    seconds: float


def run_target(target: Target, root: Path, timeout: float) -> list[Row]:
    valid = target.valid()
    cases: dict[str, bytes | str] = dict(variants(target.kind, valid))
    if target.output is not None:
        cases |= {"output = input": "same", "output is a symlink to the input": "symlink",
                  "existing output": "existing"}  # fmt: skip
    rows = []
    for case, content in cases.items():
        folder = root / f"{target.name}-{case}".replace(" ", "_").replace("/", "_")
        folder.mkdir(parents=True)
        inputs = folder / "in"
        inputs.mkdir()
        if target.setup:
            target.setup(inputs)
        inp = inputs / target.filename
        torch_file = case in ("zip bomb", "pickle payload") and "load_model" not in target.name
        if torch_file and inp.suffix == ".safetensors":
            inp = inp.with_suffix(".pth")  # so that the torch.load path reads it
        inp.write_bytes(valid if isinstance(content, str) else content)
        out = folder / (target.output or "out")
        protected = [str(inp.relative_to(folder))]
        if content == "same":
            out = inp
        elif content == "symlink":
            out.symlink_to(inp)
            protected.append("out")
        elif content == "existing":
            out.write_text("the user's file\n")
            protected.append("out")
        before = listing(folder)
        start = time.monotonic()
        os.chdir(inputs)  # relative paths in recipes and configs are the input folder's
        code, stderr = run_child(target.run(inp, out), timeout=timeout)
        seconds = time.monotonic() - start
        outcome = classify(code, stderr, before, listing(folder), should_fail=True,
                           protected=tuple(protected))  # fmt: skip
        if (
            outcome.status == "clean"
            and isinstance(content, bytes)
            and inp.name not in outcome.detail
        ):
            outcome.detail = f"{UNNAMED}: {outcome.detail}"
        outcome.detail = outcome.detail.replace(f"{root}/", "")  # the table names cases, not /tmp
        rows.append(Row(target.name, case, outcome, seconds))
    if target.interrupt is not None:
        for number, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
            folder = root / f"{target.name}-{name}".replace(" ", "_")
            folder.mkdir(parents=True)
            inp = target.interrupt(folder)
            before = listing(folder)
            os.chdir(folder)
            start = time.monotonic()
            code, stderr = run_child(target.run(inp, folder / "out"), timeout=timeout, interrupt_after=0.25,
                                     interrupt=number)  # fmt: skip
            outcome = classify(
                code, stderr, before, listing(folder), should_fail=False, interrupted=True
            )
            rows.append(Row(target.name, name, outcome, time.monotonic() - start))
    return rows


def run_no_input(root: Path, timeout: float) -> list[Row]:
    rows = []
    for name, module, argv in NO_INPUT:
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True)
        os.chdir(folder)
        start = time.monotonic()
        code, stderr = run_child(cli(module, *argv)(folder, folder), timeout=timeout)
        outcome = classify(code, stderr, {}, listing(folder), should_fail=True)
        rows.append(Row(name, "bad usage", outcome, time.monotonic() - start))
    return rows


@functools.cache
def tokenizer_model() -> Path:
    """A small sentencepiece model, trained once per run (for the reference checkpoint)."""
    import sentencepiece

    root = Path(tempfile.mkdtemp(prefix="census-spm-"))
    corpus = root / "corpus.txt"
    corpus.write_text("A chat between a curious human and an assistant. ### Human: hi\n" * 50)
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(root / "spm"), vocab_size=320, model_type="bpe",
        byte_fallback=True, minloglevel=2,
    )  # fmt: skip
    return root / "spm.model"


def table(rows: list[Row], entry_points: int, seconds: float) -> str:
    by_target: dict[str, Counter] = {}
    for row in rows:
        counts = by_target.setdefault(row.target, Counter())
        counts[row.outcome.status] += 1
        counts[UNNAMED] += row.outcome.detail.startswith(UNNAMED)
    lines = [
        f"Hostile-input census: {len(rows)} cases over {entry_points} entry points "
        f"(the census knows {len(TARGETS) - sum(t.loader for t in TARGETS) + len(NO_INPUT)} CLI "
        f"commands and {sum(t.loader for t in TARGETS)} loaders), {seconds:.0f} s.",
        "",
        "| entry point | tried | " + " | ".join(CLASSES) + f" | clean, {UNNAMED} |",
        "|---|---:|" + "---:|" * (len(CLASSES) + 1),
    ]
    total = Counter()
    columns = (*CLASSES, UNNAMED)
    for name, counts in [*by_target.items(), ("**all**", total)]:
        if name != "**all**":
            total.update(counts)
        tried = sum(counts[c] for c in CLASSES)
        lines.append(f"| {name} | {tried} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    bad = [
        row
        for row in rows
        if row.outcome.status != "clean" or row.outcome.detail.startswith(UNNAMED)
    ]
    if bad:
        lines += ["", "| entry point | case | class | detail |", "|---|---|---|---|"]
        for row in bad:
            detail = row.outcome.detail[:150].replace("|", "\\|")
            lines.append(f"| {row.target} | {row.case} | {row.outcome.status} | {detail} |")
    return "\n".join(lines)


def warm(targets: list[Target]) -> None:
    """Import what the chosen targets use (and build the tiny models once) so each forked
    child starts warm: open_clip, timm and transformers take a minute to import on a busy
    machine."""
    names = " ".join(t.name for t in targets)
    for package, module in (("tile", "sphinx_tiling.cli"), ("tiling", "sphinx_tiling"),
                            ("tasks", "sphinx_tasks.cli"), ("mix", "sphinx_mix.cli"),
                            ("encoders", "sphinx_encoders.cli"), ("train", "sphinx_train.cli"),
                            ("apps", "sphinx_apps.cli"), ("demo", "sphinx_apps.demo.cli")):  # fmt: skip
        if package in names:
            __import__(module)
    if any(part in names for part in ("encoders", "train", "apps")):
        from sphinx_encoders import create_encoder
        from sphinx_train import create_model

        create_encoder("sphinx-tiny", llm_dim=8)
        create_model("sphinx-nano")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", help="comma-separated target names, e.g. 'sphinx-tile,load_image'"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case (default 30)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS, help=f"markdown table (default {RESULTS})"
    )
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--verbose", action="store_true", help="print every case's outcome")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    start = time.monotonic()
    chosen = [
        t for t in TARGETS if not args.only or any(part in t.name for part in args.only.split(","))
    ]
    warm(chosen if args.only else [*chosen, *(Target(n, "", None) for n, _, _ in NO_INPUT)])
    rows: list[Row] = []
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="census-") as tmp:
        root = Path(tmp)
        for target in chosen:
            found = run_target(target, root / "cases", args.timeout)
            rows += found
            for row in found if args.verbose else ():
                print(f"  {row.target} | {row.case} | {row.outcome.status} | {row.outcome.detail}"
                      f" | {row.seconds:.1f} s", file=sys.stderr)  # fmt: skip
            print(f"{target.name}: done", file=sys.stderr)
        if not args.only:
            rows += run_no_input(root / "no-input", args.timeout)
        os.chdir(here)
    entry_points = len({row.target for row in rows})
    text = table(rows, entry_points, time.monotonic() - start)
    text += (f"\n\nMeasured on {os.cpu_count()} cores shared with other jobs "
             f"(load average {os.getloadavg()[0]:.1f}); the time includes importing and building the tiny models once; limit {args.timeout:.0f} s per case.\n")  # fmt: skip
    print(text)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
