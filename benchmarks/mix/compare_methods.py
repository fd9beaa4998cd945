"""sphinx-mix against mergekit's own slerp, ties, dare_linear, dare_ties and model_stock.

The same mergekit YAML config is given to ``mergekit-yaml`` (in its own environment) and
to ``sphinx_mix.load_recipe(...).run(...)`` here, on four small LLaMA-shaped bf16
checkpoints (a base and three others), and the outputs are compared tensor by tensor in
bf16 ulps. DARE's drop masks come from different generators (mergekit: torch's global
generator in its visiting order; sphinx-mix: one generator per seed, key and source), so
DARE is compared bit for bit at density 1, where nothing is random, and by the fraction
of entries kept at density 0.5.

    uv run python benchmarks/mix/compare_methods.py --mergekit /tmp/mkenv/bin/mergekit-yaml
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mix import _mergekit_version, compare, make_checkpoint, read_tensors

from sphinx_mix import load_recipe

RESULTS = Path(__file__).resolve().parents[1] / "results" / "mix_methods.md"
SHAPE = SimpleNamespace(
    layers=4, hidden=256, intermediate=688, vocab=1024, input_shard_bytes=4_000_000
)


def configs(base: Path, a: Path, b: Path, c: Path) -> dict[str, str]:
    """Name -> mergekit YAML, written the way mergekit's README examples are."""
    return {
        "slerp (t gradients per filter, one slice)": f"""
slices:
  - sources:
      - model: {base}
        layer_range: [0, {SHAPE.layers}]
      - model: {a}
        layer_range: [0, {SHAPE.layers}]
merge_method: slerp
base_model: {base}
parameters:
  t:
    - filter: self_attn
      value: [0, 0.5, 0.3, 0.7, 1]
    - filter: mlp
      value: [1, 0.5, 0.7, 0.3, 0]
    - value: 0.5
dtype: bfloat16
""",
        "ties (density 0.5 / 0.7 / 0.3)": f"""
models:
  - model: {base}
  - model: {a}
    parameters: {{density: 0.5, weight: 0.5}}
  - model: {b}
    parameters: {{density: 0.7, weight: 3e-1}}
  - model: {c}
    parameters: {{density: 0.3, weight: [0.1, 0.4]}}
merge_method: ties
base_model: {base}
parameters: {{normalize: true}}
dtype: bfloat16
""",
        "dare_linear (density 1)": f"""
models:
  - model: {a}
    parameters: {{density: 1.0, weight: 0.6}}
  - model: {b}
    parameters: {{density: 1.0, weight: 0.4}}
merge_method: dare_linear
base_model: {base}
dtype: bfloat16
""",
        "dare_ties (density 1, lambda 0.8)": f"""
models:
  - model: {a}
    parameters: {{density: 1.0, weight: 0.6}}
  - model: {b}
    parameters: {{density: 1.0, weight: 0.4}}
merge_method: dare_ties
base_model: {base}
parameters: {{lambda: 0.8}}
dtype: bfloat16
""",
        "model_stock (three models)": f"""
models:
  - model: {a}
  - model: {b}
  - model: {c}
merge_method: model_stock
base_model: {base}
dtype: bfloat16
""",
        "dare_linear (density 0.5, random)": f"""
models:
  - model: {a}
    parameters: {{density: 0.5, weight: 1.0}}
merge_method: dare_linear
base_model: {base}
dtype: bfloat16
""",
    }


def kept_fraction(out: Path, base: Path) -> float:
    """Fraction of entries that differ from the base (DARE keeps about ``density``)."""
    base_tensors = dict(read_tensors(base))
    changed = total = 0
    for key, tensor in read_tensors(out):
        changed += int((tensor != base_tensors[key]).sum())
        total += tensor.numel()
    return changed / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mergekit", default="/tmp/mkenv/bin/mergekit-yaml")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sphinx_mix_methods"))
    args = parser.parse_args()
    # bf16 reductions (model_stock's norms, ties' sums) depend on torch's thread count, so
    # sphinx-mix runs with the threads mergekit's torch picks here; one row repeats
    # model_stock on one thread to show the size of that effect.
    threads = torch.get_num_threads()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        models = [work / name for name in ("base", "a", "b", "c")]
        for seed, folder in enumerate(models):
            make_checkpoint(folder, seed, SHAPE)
        rows = []
        for number, (name, text) in enumerate(configs(*models).items()):
            config = work / f"config{number}.yml"
            config.write_text(text)
            theirs, ours = work / f"theirs{number}", work / f"ours{number}"
            subprocess.run(
                [args.mergekit, str(config), str(theirs), "--no-copy-tokenizer",
                 "--no-write-model-card", "--quiet", "--random-seed", "0"],
                check=True, capture_output=True,
            )  # fmt: skip
            load_recipe(config).run(ours, progress=False, threads=threads)
            if name.startswith("model_stock"):
                load_recipe(config).run(work / "ours_one_thread", progress=False, threads=1)
                max_abs, max_ulps, keys = compare(work / "ours_one_thread", theirs)
                rows.append(
                    f"| {name}, sphinx-mix on 1 thread | {keys} | {max_abs:.3g} | {max_ulps} | - |"
                )
            if "random" in name:
                kept = f"kept {kept_fraction(ours, models[0]):.3f} vs {kept_fraction(theirs, models[0]):.3f}"
                rows.append(f"| {name} | - | - | - | {kept} |")
                continue
            max_abs, max_ulps, keys = compare(ours, theirs)
            rows.append(f"| {name} | {keys} | {max_abs:.3g} | {max_ulps} | - |")
            print(rows[-1], file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = "\n".join(
        [
            "# sphinx-mix against mergekit: the other merge methods",
            "",
            f"mergekit {_mergekit_version(args.mergekit)} (`mergekit-yaml`, its own venv) and "
            f"sphinx-mix (`load_recipe(config).run(out)`) on the same YAML; four bf16 "
            f"LLaMA-shaped checkpoints ({SHAPE.layers} layers, hidden {SHAPE.hidden}, MLP "
            f"{SHAPE.intermediate}, vocab {SHAPE.vocab}), independent random weights; both on "
            f"{threads} torch threads unless said. Ulp distances count bf16 steps between the "
            "two values (a sign change near 0 counts every step through 0).",
            "",
            "| config | tensors | largest abs difference | largest distance (bf16 ulp) | "
            "random drop: fraction kept, sphinx-mix vs mergekit |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)


if __name__ == "__main__":
    main()
