"""The house idioms (`_house.py`): one copy per package, the same bytes, the same rules."""

from __future__ import annotations

import importlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["sphinx_tiling", "sphinx_tasks", "sphinx_mix", "sphinx_encoders", "sphinx_train", "sphinx_apps"]
COPIES = sorted(ROOT.glob("packages/*/src/*/_house.py"))


def test_every_package_carries_the_same_copy():
    assert len(COPIES) >= len(MODULES)
    first = COPIES[0].read_bytes()
    for copy in COPIES[1:]:
        assert copy.read_bytes() == first, f"{copy} differs from {COPIES[0]}"


@pytest.fixture(params=MODULES)
def house(request):
    return importlib.import_module(f"{request.param}._house")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_refuses_existing_output_unless_overwrite(house, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    with pytest.raises(house.OutputError, match="already exists"), house.staged_file(target):
        pytest.fail("must not be reached")
    assert target.read_text() == "keep me"
    with house.staged_file(target, overwrite=True) as stage:
        stage.write_text("new")
    assert target.read_text() == "new"


def test_refuses_output_equal_inside_or_containing_an_input(house, tmp_path):
    source = tmp_path / "models" / "SPHINX"
    source.mkdir(parents=True)
    (source / "shard.pth").write_bytes(b"weights")
    for target in (source, source / "converted", tmp_path / "models"):
        with pytest.raises(house.OutputError, match="input"):
            house.check_output(target, [source], overwrite=True)
    assert (source / "shard.pth").read_bytes() == b"weights"


def test_failed_write_leaves_target_and_no_staging(house, tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), house.staged_file(target, overwrite=True) as stage:
        stage.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_folder_overwrite_refuses_foreign_files(house, tmp_path):
    target = tmp_path / "views"
    target.mkdir()
    (target / "view_07.png").write_bytes(b"stale")
    (target / "notes.txt").write_text("mine")
    owns = ("view_*.png", "layout.json")
    with pytest.raises(house.OutputError, match=r"notes\.txt"), house.staged_dir(
        target, overwrite=True, owns=owns
    ):
        pytest.fail("must not be reached")
    assert (target / "notes.txt").read_text() == "mine"
    (target / "notes.txt").unlink()
    with house.staged_dir(target, overwrite=True, owns=owns) as stage:
        (stage / "view_00.png").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["view_00.png"]  # stale view gone


def test_outputs_get_normal_permissions(house, tmp_path):
    mask = _umask()
    with house.staged_dir(tmp_path / "model") as stage:
        (stage / "a.bin").write_bytes(b"x")
        os.chmod(stage, 0o700)
        os.chmod(stage / "a.bin", 0o600)
    assert stat.S_IMODE(os.stat(tmp_path / "model").st_mode) == 0o777 & ~mask
    assert stat.S_IMODE(os.stat(tmp_path / "model" / "a.bin").st_mode) == 0o666 & ~mask


def test_next_run_removes_a_killed_runs_staging(house, tmp_path):
    target = tmp_path / "out.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    leftover = tmp_path / f".out.json.staging-{dead.stdout.strip()}"
    leftover.write_text("partial")
    with house.staged_file(target) as stage:
        stage.write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_confined_path(house, tmp_path):
    assert house.confined_path(tmp_path, "a/b.jpg") == tmp_path / "a" / "b.jpg"
    for bad in ("/etc/passwd", "../x.jpg", "a/../../x", "C:\\x.jpg", ""):
        with pytest.raises(ValueError, match="relative path"):
            house.confined_path(tmp_path, bad, what="file_name")


def test_registry_idiom(house):
    registry = house.Registry("preset")
    registry.register("sphinx-1k", 1)
    registry.register("sphinx-2k", 2)
    registry.register("grid", 3)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("grid", 4)
    registry.register("grid", 4, overwrite=True)
    assert registry.get("grid") == 4
    assert registry.names("sphinx-*") == ["sphinx-1k", "sphinx-2k"]
    with pytest.raises(house.UnknownNameError) as caught:
        registry.get("sphinx-4k")
    assert str(caught.value) == "unknown preset 'sphinx-4k'; known: grid, sphinx-1k, sphinx-2k"
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)


def test_dtype_vocabulary(house):
    expected = {"float32": "float32", "FP32": "float32", "bf16": "bfloat16",
                "torch.bfloat16": "bfloat16", "half": "float16", "fp16": "float16"}
    for given, name in expected.items():
        assert house.dtype_name(given) == name
    with pytest.raises(ValueError, match=r"unknown dtype 'int8'; expected float32\|fp32"):
        house.dtype_name("int8")


def test_run_cli_sigterm_exits_130_and_leaves_nothing(house, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from {house.__name__} import run_cli, staged_file
        def body():
            with staged_file(sys.argv[1]) as stage:
                stage.write_text("partial")
                print("ready", flush=True)
                time.sleep(60)
            return 0
        sys.exit(run_cli("tool", body))
        """
    )
    target = tmp_path / "out.txt"
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.strip() == "tool: interrupted"
    assert list(tmp_path.iterdir()) == []


def test_run_cli_one_line_error(house, capsys):
    def body():
        raise ValueError("photo.jpg: not an image\n(cannot identify)")

    assert house.run_cli("tool", body) == 1
    assert capsys.readouterr().err == "tool: error: photo.jpg: not an image (cannot identify)\n"


class _Tensor:
    shape = (2,)
    dtype = "float32"


def test_unwrap_state_dict(house):
    weights = {"a.weight": _Tensor()}
    assert house.unwrap_state_dict(weights, "c.pth") is weights
    assert house.unwrap_state_dict({"model": weights, "epoch": 3}, "c.pth") is weights
    assert house.unwrap_state_dict({"state_dict": {"module": weights}}, "c.pth") is weights
    looped: dict = {}
    looped["state_dict"] = looped
    with pytest.raises(ValueError, match=r"^c\.pth: expected a state dict"):
        house.unwrap_state_dict(looped, "c.pth")
    with pytest.raises(ValueError, match=r"^c\.pth: entry 'epoch' is a int, expected a tensor"):
        house.unwrap_state_dict({"w": _Tensor(), "epoch": 3}, "c.pth")
    with pytest.raises(ValueError, match="holds no tensors"):
        house.unwrap_state_dict({}, "c.pth")
