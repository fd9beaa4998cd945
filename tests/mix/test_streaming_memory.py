"""Reference consolidated.*.pth shards stream: a mix of shards much larger than a memory
budget stays within it (peak RSS of a child process, measured by the kernel)."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

TENSORS, ELEMENTS = 8, 6_250_000  # 8 float32 tensors of 25 MB: 200 MB per shard
MB = 1 << 20

_CHILD = textwrap.dedent(
    """
    import sys
    import sphinx_mix
    if sys.argv[1] == "mix":
        sphinx_mix.linear([sys.argv[2], sys.argv[3]], [0.5, 0.5], sys.argv[4], progress=False)
    else:
        import torch  # the baseline: the same imports, no mix
        sphinx_mix.linear  # noqa: B018 - imports the operations too
    """
)


def peak_rss(*arguments: str) -> int:
    """Peak RSS in bytes of a fresh child running ``_CHILD`` (Linux reports KiB)."""
    script = (
        "import resource, subprocess, sys\n"
        f"subprocess.run([sys.executable, '-c', {_CHILD!r}, *sys.argv[1:]], check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1])


def save_reference(folder, offset: float):
    folder.mkdir()
    shard = {
        f"llma.layers.{i}.w": torch.full((ELEMENTS,), offset + i, dtype=torch.float32)
        for i in range(TENSORS)
    }
    torch.save({"model": shard}, folder / "consolidated.00-of-01.model.pth")
    (folder / "params.json").write_text(json.dumps({"dim": 8}))
    return folder


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss units and madvise are Linux's")
def test_reference_shards_mix_within_a_budget_below_one_shard(tmp_path):
    first = save_reference(tmp_path / "a", 0.0)
    second = save_reference(tmp_path / "b", 100.0)
    out = tmp_path / "mixed"
    baseline = peak_rss("imports")
    peak = peak_rss("mix", str(first), str(second), str(out))
    # Held whole, one rank would cost 2 x 200 MB of inputs plus 200 MB of output. The
    # stream holds two 25 MB buffers per source and three 25 MB output buffers: 175 MB.
    budget = 300 * MB
    print(f"peak over imports: {(peak - baseline) / MB:.0f} MB")
    assert peak - baseline < budget, f"mix used {(peak - baseline) / MB:.0f} MB over its imports"
    mixed = torch.load(out / "consolidated.00-of-01.model.pth", weights_only=True, mmap=True)
    for i in (0, TENSORS - 1):
        tensor = mixed["model"][f"llma.layers.{i}.w"]
        assert tensor.shape == (ELEMENTS,)
        assert bool((tensor == (i + (100.0 + i)) / 2).all())
