"""The sphinx-mix command: results, exit codes and one-line errors."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from sphinx_mix.cli import main


def test_linear_command_writes_the_mix(tmp_path, kit):
    a, b = kit.tiny_state_dict(0), kit.tiny_state_dict(1)
    paths = [
        str(kit.save_single(tmp_path / f"{n}.safetensors", s)) for n, s in (("a", a), ("b", b))
    ]
    out = tmp_path / "out"
    code = main(
        [
            "linear",
            *paths,
            "--beta",
            "0.75",
            "--rule",
            "*.mlp.*=1,1",
            "--exclude",
            "vision.*",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    mixed = kit.read_folder(out)
    norm, mlp = "model.norm.weight", "model.layers.0.mlp.up_proj.weight"
    torch.testing.assert_close(mixed[norm], 0.75 * a[norm] + 0.25 * b[norm])
    torch.testing.assert_close(mixed[mlp], 0.5 * a[mlp] + 0.5 * b[mlp])
    assert torch.equal(mixed["vision.proj.weight"], a["vision.proj.weight"])


def test_task_arithmetic_and_soup_commands(tmp_path, kit):
    states = [kit.tiny_state_dict(seed) for seed in range(3)]
    paths = [str(kit.save_single(tmp_path / f"{i}.safetensors", s)) for i, s in enumerate(states)]
    assert (
        main(
            [
                "task-arithmetic",
                "--base",
                paths[0],
                paths[1],
                paths[2],
                "--scales",
                "0.5",
                "0.25",
                "--out",
                str(tmp_path / "task"),
                "--no-progress",
            ]
        )
        == 0
    )
    key = "model.norm.weight"
    expected = (
        states[0][key]
        + 0.5 * (states[1][key] - states[0][key])
        + 0.25 * (states[2][key] - states[0][key])
    )
    torch.testing.assert_close(kit.read_folder(tmp_path / "task")[key], expected)
    assert main(["uniform-soup", *paths, "--out", str(tmp_path / "soup"), "--no-progress"]) == 0
    torch.testing.assert_close(
        kit.read_folder(tmp_path / "soup")[key], sum(s[key] for s in states) / 3
    )


def test_run_command_with_recipe(tmp_path, kit):
    paths = [
        kit.save_single(tmp_path / f"{i}.safetensors", kit.tiny_state_dict(i)) for i in range(2)
    ]
    recipe = tmp_path / "r.yml"
    recipe.write_text(f"sources: [{paths[0]}, {paths[1]}]\nweights: [1, 3]\n")
    assert (
        main(["run", str(recipe), "--out", str(tmp_path / "out"), "--no-progress", "--no-hash"])
        == 0
    )
    assert "sha256" not in kit.output_metadata(tmp_path / "out")
    assert kit.output_metadata(tmp_path / "out")["weights"] == [0.25, 0.75]


def test_bad_input_exits_1_with_one_line(tmp_path, kit, capsys):
    path = str(kit.save_single(tmp_path / "a.safetensors", kit.tiny_state_dict(0)))
    code = main(["linear", path, str(tmp_path / "missing"), "--out", str(tmp_path / "out")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("sphinx-mix: error: ") and "missing: no such file or directory" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["linear", "a"],
        ["linear", "a", "b", "--out", "o", "--beta", "x"],
        ["linear", "a", "b", "--out", "o", "--on-missing", "ignore"],
        ["linear", "a", "b", "--out", "o", "--weights", "1", "1", "--beta", "0.5"],
        ["linear", "a", "b", "--out", "o", "--rule", "no-equals-sign"],
    ],
)
def test_bad_usage_exits_2(argv):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


def test_installed_script_runs_and_reports_exit_codes(tmp_path, kit):
    path = str(kit.save_single(tmp_path / "a.safetensors", kit.tiny_state_dict(0)))
    script = os.path.join(os.path.dirname(sys.executable), "sphinx-mix")
    done = subprocess.run(
        [script, "uniform-soup", path, path, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    again = subprocess.run(
        [script, "uniform-soup", path, path, "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_help_explains_options(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["linear", "--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    for option in ("--beta", "--on-missing", "--shard-size", "--include", "--rule", "--device"):
        assert option in text


@pytest.mark.slow
def test_sigterm_mid_run_exits_130_and_leaves_nothing(tmp_path, kit):
    big = {f"layer{i}.weight": torch.zeros(2_000_000) for i in range(40)}  # 320 MB per source
    paths = [str(kit.save_single(tmp_path / f"{n}.safetensors", big)) for n in "ab"]
    script = os.path.join(os.path.dirname(sys.executable), "sphinx-mix")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [script, "linear", *paths, "--out", str(out), "--no-progress", "--shard-size", "20MB"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.staging-*/model-*.safetensors")):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.safetensors", "b.safetensors"]


def test_help_and_version_do_not_import_torch():
    """--help and --version must stay instant: torch takes seconds to import."""
    probe = (
        "import sys, sphinx_mix.cli\n"
        "for flag in ('--help', '--version'):\n"
        "    try:\n"
        "        sphinx_mix.cli.main([flag])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
