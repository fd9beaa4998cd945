"""Writing past the page cache: the bytes on disk are exactly the bytes written, whether the
file system takes O_DIRECT, refuses it at open, or refuses it at the first write."""

import errno
import os

import pytest
import torch
from safetensors.torch import load_file

from sphinx_mix import direct_file, linear
from sphinx_mix.direct_file import SequentialFile

BLOCK = 8192  # a multiple of every common logical block size, small enough for a test


def _write_pieces(path, direct=True):
    """Pieces of odd sizes crossing block edges, then a patch inside the first block."""
    sizes = [8, 100, 9000, 7000, 1, 20000]
    pieces = [bytes([index + 1]) * size for index, size in enumerate(sizes)]
    target = SequentialFile(path, direct)
    for piece in pieces:
        target.write(piece)
    target.patch(8, b"PATCHED")
    target.close()
    expected = bytearray(b"".join(pieces))
    expected[8:15] = b"PATCHED"
    return bytes(expected), target


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(direct_file, "BLOCK_BYTES", BLOCK)


def test_direct_writes_give_the_same_bytes(tmp_path):
    expected, _ = _write_pieces(tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == expected


def test_patch_after_the_block_went_to_disk(tmp_path):
    target = SequentialFile(tmp_path / "f")
    target.write(b"a" * (3 * BLOCK + 5))
    target.patch(BLOCK + 1, b"xyz")
    target.close()
    data = (tmp_path / "f").read_bytes()
    assert data == b"a" * (BLOCK + 1) + b"xyz" + b"a" * (2 * BLOCK + 1)


def test_file_systems_without_o_direct_get_buffered_writes(tmp_path, monkeypatch):
    def refuse(path, flags, *mode):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *mode)

    real_open = os.open
    monkeypatch.setattr(direct_file.os, "open", refuse)
    expected, target = _write_pieces(tmp_path / "f")
    assert not target.direct
    assert (tmp_path / "f").read_bytes() == expected


def test_direct_write_refused_midway_falls_back_without_losing_bytes(tmp_path, monkeypatch):
    direct_fds = set()
    real_open, real_pwrite = os.open, os.pwrite

    def tracking_open(path, flags, *mode):
        fd = real_open(path, flags, *mode)
        if flags & getattr(os, "O_DIRECT", 0):
            direct_fds.add(fd)
        return fd

    def refusing_pwrite(fd, data, offset):
        if fd in direct_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(direct_file.os, "open", tracking_open)
    monkeypatch.setattr(direct_file.os, "pwrite", refusing_pwrite)
    expected, _ = _write_pieces(tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == expected


def test_other_write_errors_are_not_swallowed(tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = SequentialFile(tmp_path / "f")
    monkeypatch.setattr(direct_file.os, "pwrite", full)
    with pytest.raises(OSError, match="No space left"):
        target.write(b"a" * (BLOCK + 1))
    with pytest.raises(OSError, match="No space left"):
        target.close()  # the tail cannot be written either; the descriptors close anyway
    target.close()  # a second close is a no-op


def test_mixed_checkpoint_larger_than_a_block_reads_back(tmp_path, kit):
    generator = torch.Generator().manual_seed(0)
    states = [
        {"w": torch.randn(3000, generator=generator), "b": torch.randn(7, generator=generator)}
        for _ in range(2)
    ]
    sources = [kit.save_single(tmp_path / f"{i}.safetensors", s) for i, s in enumerate(states)]
    out = linear(sources, [0.25, 0.75], out=tmp_path / "out", progress=False)
    mixed = load_file(out / "model.safetensors")
    for key in ("w", "b"):
        torch.testing.assert_close(
            mixed[key].double(), 0.25 * states[0][key].double() + 0.75 * states[1][key].double()
        )


def test_direct_and_buffered_outputs_are_byte_identical(tmp_path, kit):
    sources = [kit.save_single(tmp_path / f"{i}.safetensors", kit.tiny_state_dict(i)) for i in (0, 1)]
    outputs = [
        linear(sources, out=tmp_path / f"out_{direct}", progress=False, direct_io=direct)
        for direct in (True, False)
    ]
    files = [sorted(path.name for path in out.iterdir()) for out in outputs]
    assert files[0] == files[1]
    for name in files[0]:
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name


def test_a_sharded_output_keeps_one_file_open_at_a_time(tmp_path, kit, monkeypatch):
    """Many small shards must not hold a block and two descriptors each until the end."""
    from sphinx_mix import safetensors_io

    open_now, most = set(), [0]

    class Tracked(SequentialFile):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            open_now.add(id(self))
            most[0] = max(most[0], len(open_now))

        def close(self):
            super().close()
            open_now.discard(id(self))

    monkeypatch.setattr(safetensors_io, "SequentialFile", Tracked)
    sources = [kit.save_single(tmp_path / f"{i}.safetensors", kit.tiny_state_dict(i)) for i in (0, 1)]
    out = linear(sources, out=tmp_path / "out", shard_size=1, progress=False)
    shards = sorted(out.glob("model-*.safetensors"))
    assert len(shards) == len(kit.tiny_state_dict(0)) > 3
    assert most[0] == 1
    mixed = {}
    for shard in shards:
        mixed.update(load_file(shard))  # headers patched after their files were closed
    states = [kit.tiny_state_dict(i) for i in (0, 1)]
    key = "model.norm.weight"
    torch.testing.assert_close(mixed[key], (states[0][key] + states[1][key]) / 2)
