"""sphinx-mix against mergekit's linear merge on two LLaMA-shaped bf16 checkpoints.

Both tools run as child processes (wall time and peak RSS of the child, measured by a
fresh wrapper process around each run), interleaved with a plain-copy I/O floor: read
both inputs (``cat``) and write one output of the same size (``cp``). The inputs sit in
the page cache after the first pass for every contender alike; before every run (untimed)
dirty pages are flushed and one output's worth of memory is touched and freed
(``warm_free_pages``). Data lives under /tmp and is deleted at the end.

    uv run python benchmarks/mix/bench_mix.py --mergekit /tmp/mkenv/bin/mergekit-yaml
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

RESULTS = Path(__file__).resolve().parents[1] / "results" / "mix.md"
MACHINE = "2-core CPU, no GPU"

# Runs one command and reports its wall time and the peak RSS of its process tree.
_WRAPPER = textwrap.dedent(
    """
    import json, resource, subprocess, sys, time
    start = time.perf_counter()
    done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stderr.decode()[-3000:])
        sys.exit(done.returncode)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"wall": wall, "rss": rss}))
    """
)


def llama_layout(layers: int, hidden: int, intermediate: int, vocab: int):
    """(name, shape) of a LLaMA causal LM in Hugging Face naming."""
    yield "model.embed_tokens.weight", (vocab, hidden)
    for layer in range(layers):
        prefix = f"model.layers.{layer}"
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield f"{prefix}.self_attn.{name}.weight", (hidden, hidden)
        yield f"{prefix}.mlp.gate_proj.weight", (intermediate, hidden)
        yield f"{prefix}.mlp.up_proj.weight", (intermediate, hidden)
        yield f"{prefix}.mlp.down_proj.weight", (hidden, intermediate)
        yield f"{prefix}.input_layernorm.weight", (hidden,)
        yield f"{prefix}.post_attention_layernorm.weight", (hidden,)
    yield "model.norm.weight", (hidden,)
    yield "lm_head.weight", (vocab, hidden)


def make_checkpoint(folder: Path, seed: int, args) -> int:
    """Write a sharded bf16 HF folder one shard at a time; returns its tensor bytes."""
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(seed)
    layout = list(llama_layout(args.layers, args.hidden, args.intermediate, args.vocab))
    groups, size = [[]], 0
    for name, shape in layout:
        nbytes = torch.Size(shape).numel() * 2
        if groups[-1] and size + nbytes > args.input_shard_bytes:
            groups.append([])
            size = 0
        groups[-1].append((name, shape))
        size += nbytes
    weight_map, total = {}, 0
    for number, group in enumerate(groups, start=1):
        file = f"model-{number:05d}-of-{len(groups):05d}.safetensors"
        shard = {
            name: (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)
            for name, shape in group
        }
        save_file(shard, str(folder / file), metadata={"format": "pt"})
        total += sum(t.numel() * 2 for t in shard.values())
        weight_map.update(dict.fromkeys(shard, file))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.hidden,
        "intermediate_size": args.intermediate,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.hidden // 128,
        "num_key_value_heads": args.hidden // 128,
        "vocab_size": args.vocab,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "torch_dtype": "bfloat16",
        "tie_word_embeddings": False,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return total


# The mix timed inside one process (imports done first), written to the file named last.
_IN_PROCESS = textwrap.dedent(
    """
    import sys, time
    from sphinx_mix import linear
    start = time.perf_counter()
    linear(sys.argv[1:3], [0.7, 0.3], out=sys.argv[3], progress=False)
    open(sys.argv[4], "w").write(str(time.perf_counter() - start))
    """
)


def warm_free_pages(nbytes: int) -> None:
    """Touch and free as much memory as one output, just before a run.

    On a virtual machine pages the hypervisor has reclaimed cost a host fault on first
    touch (here up to ten times the copy itself). Freed a moment before, they come back
    warm to whoever allocates next: the floor's ``cp`` at once, a Python contender only
    after its imports, so this favours the floor if anyone.
    """
    block = torch.ones(nbytes, dtype=torch.uint8)
    del block


def measure(command: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command], capture_output=True, text=True, env=env
    )
    if done.returncode:
        raise SystemExit(f"benchmark command failed: {' '.join(command)}\n{done.stderr}")
    return json.loads(done.stdout)


def read_tensors(folder: Path):
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not iterable
                yield key, handle.get_tensor(key)


def _ordered_bits(tensor: torch.Tensor) -> torch.Tensor:
    """bf16 bit patterns as integers that are ordered like the values (for ulp distances)."""
    bits = tensor.view(torch.int16).to(torch.int32)
    return torch.where(bits < 0, -(bits & 0x7FFF), bits)


def compare(ours: Path, theirs: Path) -> tuple[float, int, int]:
    """Largest absolute difference, largest distance in bf16 ulps, number of keys."""
    their_tensors: dict[str, Path] = {}
    for file in sorted(theirs.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as handle:
            their_tensors.update(dict.fromkeys(handle.keys(), file))
    max_abs, max_ulps, count = 0.0, 0, 0
    for key, mine in read_tensors(ours):
        with safe_open(str(their_tensors[key]), framework="pt") as handle:
            other = handle.get_tensor(key)
        assert mine.dtype == other.dtype == torch.bfloat16 and mine.shape == other.shape, key
        max_abs = max(max_abs, (mine.float() - other.float()).abs().max().item())
        max_ulps = max(max_ulps, (_ordered_bits(mine) - _ordered_bits(other)).abs().max().item())
        count += 1
    if count != len(their_tensors):
        raise SystemExit(f"outputs hold different key sets ({count} vs {len(their_tensors)})")
    return max_abs, max_ulps, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mergekit", default="/tmp/mkenv/bin/mergekit-yaml", help="mergekit-yaml executable"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/sphinx_mix_bench"),
        help="scratch folder, deleted afterwards",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="interleaved runs per contender (medians reported)"
    )
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5504)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--input-shard-bytes", type=int, default=400_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        run_benchmark(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run_benchmark(args, work: Path) -> None:
    first, second = work / "first", work / "second"
    size = make_checkpoint(first, 0, args)
    make_checkpoint(second, 1, args)
    config = work / "mergekit.yml"
    config.write_text(
        f"models:\n  - model: {first}\n    parameters: {{weight: 0.7}}\n"
        f"  - model: {second}\n    parameters: {{weight: 0.3}}\n"
        "merge_method: linear\nparameters: {normalize: true}\ndtype: bfloat16\n"
    )
    sphinx_mix = str(Path(sys.executable).with_name("sphinx-mix"))
    floor_out, floor_direct = work / "floor", work / "floor_direct"

    def ours(out: Path, *flags: str) -> list[str]:
        return [sphinx_mix, "linear", str(first), str(second), "--weights", "0.7", "0.3",
                "--out", str(out), "--no-progress", *flags]  # fmt: skip

    shards = lambda folder: " ".join(str(p) for p in sorted(folder.glob("*.safetensors")))  # noqa: E731
    contenders = {
        "I/O floor (cat + cp)": [
            "bash",
            "-c",
            f"mkdir -p {floor_out} && cat {shards(first)} > /dev/null && cp {shards(second)} {floor_out}/",
        ],
        "I/O floor, direct (cat + dd oflag=direct)": [
            "bash",
            "-c",
            f"mkdir -p {floor_direct} && cat {shards(first)} > /dev/null && for f in "
            f"{shards(second)}; do dd if=$f of={floor_direct}/$(basename $f) bs=4M "
            "oflag=direct status=none; done",
        ],
        "sphinx-mix": ours(work / "ours"),
        "sphinx-mix --no-hash": ours(work / "ours_no_hash", "--no-hash"),
        "sphinx-mix --digest sha256": ours(work / "ours_sha256", "--digest", "sha256"),
        "sphinx-mix in-process": [
            sys.executable,
            "-c",
            _IN_PROCESS,
            str(first),
            str(second),
            str(work / "ours_inner"),
            str(work / "inner_seconds"),
        ],
        "mergekit": [
            args.mergekit,
            str(config),
            str(work / "theirs"),
            "--no-copy-tokenizer",
            "--no-write-model-card",
            "--quiet",
        ],
        "python + torch start-up": [sys.executable, "-c", "import torch, sphinx_mix.ops"],
    }
    outputs = {
        "sphinx-mix": work / "ours",
        "sphinx-mix --no-hash": work / "ours_no_hash",
        "sphinx-mix --digest sha256": work / "ours_sha256",
        "sphinx-mix in-process": work / "ours_inner",
        "mergekit": work / "theirs",
        "I/O floor (cat + cp)": floor_out,
        "I/O floor, direct (cat + dd oflag=direct)": floor_direct,
    }
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    load_before = os.getloadavg()[0]
    for run in range(args.runs):
        for name, command in contenders.items():
            os.sync()  # so no contender pays for writing back an earlier one's output
            warm_free_pages(size)
            results[name].append(measure(command))
            if name == "sphinx-mix in-process":
                results[name][-1]["inner"] = float((work / "inner_seconds").read_text())
            print(f"run {run + 1} {name}: {results[name][-1]}", file=sys.stderr)
            # keep only the last run's outputs (for the comparison), so runs start alike
            if name in outputs and run + 1 < args.runs:
                shutil.rmtree(outputs[name])
    max_abs, max_ulps, keys = compare(work / "ours", work / "theirs")
    load = (load_before, os.getloadavg()[0])
    table = render(
        results, size, max_abs, max_ulps, keys, args, _mergekit_version(args.mergekit), load
    )
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)


def _paired(results, name: str, other: str, field: str) -> float:
    """Median over runs of the ratio within each run (runs are interleaved, so load is shared)."""
    return statistics.median(
        mine[field] / theirs[field]
        for mine, theirs in zip(results[name], results[other], strict=True)
    )


def _mergekit_version(executable: str) -> str:
    python = Path(executable).with_name("python")
    done = subprocess.run(
        [str(python), "-c", "from importlib.metadata import version; print(version('mergekit'))"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown version"


def render(results, size, max_abs, max_ulps, keys, args, mergekit_version: str, load) -> str:
    wall = {name: statistics.median(r["wall"] for r in runs) for name, runs in results.items()}
    rss = {name: statistics.median(r["rss"] for r in runs) for name, runs in results.items()}
    moved = 3 * size  # both inputs read, one output written
    startup = wall["python + torch start-up"]
    floor = "I/O floor (cat + cp)"
    direct_floor = "I/O floor, direct (cat + dd oflag=direct)"
    lines = [
        "# sphinx-mix benchmark: linear mix of two LLaMA-shaped bf16 checkpoints",
        "",
        f"Machine: {MACHINE}. Two checkpoints of {size / 1e9:.2f} GB each ({args.layers} layers, "
        f"hidden {args.hidden}, MLP {args.intermediate}, vocab {args.vocab}; {keys} tensors, sharded "
        f"at {args.input_shard_bytes / 1e6:.0f} MB), weights 0.7 / 0.3, output bf16, each tool run "
        f"as a child process (mergekit {mergekit_version}, `mergekit-yaml`, linear, dtype bfloat16). Medians of {args.runs} interleaved runs; ratios are medians of the "
        "per-run ratios. Inputs in the page cache; before each run dirty pages are flushed and "
        "one output's worth of memory is touched and freed (warm pages for the next "
        "allocation, see `warm_free_pages`). Throughput counts both inputs read plus one "
        f"output written. Load average (1 min) {load[0]:.1f} before the runs, {load[1]:.1f} "
        "after (2 cores).",
        "",
        "| contender | wall s | peak RSS MB | throughput GB/s | wall vs mergekit | RSS vs mergekit | throughput vs I/O floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in (
        "sphinx-mix",
        "sphinx-mix --no-hash",
        "sphinx-mix --digest sha256",
        "mergekit",
        floor,
        direct_floor,
    ):
        lines.append(
            f"| {name} | {wall[name]:.2f} | {rss[name] / 1e6:.0f} | {moved / wall[name] / 1e9:.2f} | "
            f"{_paired(results, name, 'mergekit', 'wall'):.2f}x | "
            f"{_paired(results, name, 'mergekit', 'rss'):.2f}x | "
            f"{1 / _paired(results, name, floor, 'wall'):.0%} |"
        )
    inner = [run["inner"] for run in results["sphinx-mix in-process"]]

    def inner_ratio(name: str) -> float:
        return statistics.median(
            floor_run["wall"] / seconds
            for floor_run, seconds in zip(results[name], inner, strict=True)
        )

    lines += [
        "",
        f"In-process (the same mix, BLAKE3 digests on, timed inside one process after its "
        f"imports): {statistics.median(inner):.2f} s, {moved / statistics.median(inner) / 1e9:.2f} GB/s "
        f"= **{inner_ratio(floor):.0%} of the cat + cp floor** and "
        f"**{inner_ratio(direct_floor):.0%} of the direct-write floor** (medians of per-run "
        "ratios; runs "
        + ", ".join(f"{seconds:.2f}" for seconds in inner)
        + " s). sphinx-mix writes its output with O_DIRECT (straight to disk, like the direct "
        "floor); `cp` writes into the page cache. Start-up alone (python + `import torch`, a child process doing nothing else): "
        f"{startup:.2f} s and {rss['python + torch start-up'] / 1e6:.0f} MB RSS.",
        "",
        f"Largest absolute difference between the sphinx-mix and mergekit outputs: {max_abs:.3g} "
        f"(largest distance: {max_ulps} bf16 ulp) over {keys} tensors.",
        "",
        "Each run (wall / peak RSS): "
        + "; ".join(
            f"{name} " + ", ".join(f"{r['wall']:.1f}s/{r['rss'] / 1e6:.0f}MB" for r in runs)
            for name, runs in results.items()
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
