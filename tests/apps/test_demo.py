"""sphinx-demo: its pieces against hand-computed values, and one --quick run end to end."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sphinx_apps.demo import cli
from sphinx_apps.demo.scenes import (
    HeldOutScene,
    baseline_accuracy,
    detection_counts,
    f1,
    mask_iou,
)
from sphinx_tasks import Box

# -- pieces -----------------------------------------------------------------------------------


def _scene(boxes, target: int) -> HeldOutScene:
    objects = tuple(SimpleNamespace(box=box, kind="square", colour="red", size="small")
                    for box in boxes)
    picture = SimpleNamespace(image=Image.new("RGB", (100, 100)), objects=objects)
    return HeldOutScene("s", picture, target, "", "")


SMALL, LARGE = (0.1, 0.1, 0.3, 0.3), (0.5, 0.5, 0.9, 0.9)


def test_baselines_on_a_two_object_scene_by_hand():
    # Target the small box: the centre box (0.4..0.6, its size, centred) misses it, the largest
    # box is the other object, and a random pick is right half the time.
    assert baseline_accuracy([_scene([SMALL, LARGE], 0)]) == {
        "centre": 0.0, "largest": 0.0, "random_object": 0.5}
    # Target the large box: the centre box 0.3..0.7 overlaps it by 0.04 / 0.28 = 0.14 < 0.5.
    assert baseline_accuracy([_scene([SMALL, LARGE], 1)]) == {
        "centre": 0.0, "largest": 1.0, "random_object": 0.5}


def test_centre_baseline_hits_a_centred_target():
    # Target (0.3..0.7) is centred and sets the mean size: the centre box is exactly it.
    assert baseline_accuracy([_scene([(0.3, 0.3, 0.7, 0.7), SMALL], 0)])["centre"] == 1.0


def test_mask_iou_by_hand():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[:2, :2] = True  # 4 pixels
    b[:2, :3] = True  # 6 pixels, 4 shared
    assert mask_iou(a, b) == pytest.approx(4 / 6)
    assert mask_iou(a, np.zeros((4, 4), bool)) == 0.0
    assert mask_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0


def test_detection_f1_by_hand():
    truth = [("circle", Box(0.1, 0.1, 0.3, 0.3)), ("square", Box(0.5, 0.5, 0.9, 0.9))]
    predicted = [
        ("circle", Box(0.1, 0.1, 0.3, 0.3)),  # exact
        ("square", Box(0.5, 0.5, 0.9, 0.85)),  # IoU 0.875
        ("circle", Box(0.6, 0.6, 0.8, 0.8)),  # no circle there
        ("triangle", Box(0.1, 0.1, 0.3, 0.3)),  # right place, wrong name
    ]
    assert detection_counts(predicted, truth) == (2, 4, 2)
    # precision 2/4, recall 2/2 -> F1 = 2 * 0.5 * 1 / 1.5
    assert f1(2, 4, 2) == pytest.approx(2 / 3)
    assert f1(0, 3, 2) == 0.0
    # one prediction cannot match two truths
    assert detection_counts([truth[0]], [truth[0], truth[0]]) == (1, 1, 2)


def test_held_out_scenes_are_fixed_by_the_seed_and_fit_the_bar():
    pytest.importorskip("sphinx_train")
    from sphinx_apps.demo.scenes import held_out_scenes, shape_mask, visible_mask
    from sphinx_train.training.synthetic import COLOURS

    first, again, other = held_out_scenes(12, 0), held_out_scenes(12, 0), held_out_scenes(12, 1)
    assert [s.objects for s in first] == [s.objects for s in again]
    assert [s.objects for s in first] != [s.objects for s in other]
    for scene in first:
        assert 2 <= len(scene.objects) <= 4
        assert [o.phrase for o in scene.objects].count(scene.phrase) == 1
        # the true mask, checked against the picture: inside it every pixel has the object's
        # colour, and it keeps at least 70% of the drawn shape (the rest may be covered)
        mask = visible_mask(scene, scene.target)
        pixels = np.asarray(scene.image).astype(int)
        colour = np.array(COLOURS[scene.objects[scene.target].colour])
        assert (np.abs(pixels[mask] - colour).sum(axis=1) == 0).all()
        assert mask.sum() >= 0.7 * shape_mask(scene.objects[scene.target], 224).sum()
        assert scene.vqa_answer == str(sum(o.colour in scene.vqa_question for o in scene.objects))


# -- the command line -------------------------------------------------------------------------


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "examples:" in shown and "--quick" in shown and "--threads" in shown
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("sphinx-demo 0.")


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--seed", "-1"], ["--seed", "x"],
                                  ["--bogus"]])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2


def test_existing_out_is_refused_in_one_line(tmp_path, capsys):
    pytest.importorskip("sphinx_train")
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert cli.main(["--quick", "--out", str(taken)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("sphinx-demo: error:") and "\n" not in error and "taken" in error
    assert taken.read_text() == "mine"


def test_missing_sphinx_train_names_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "sphinx_train", None)  # import fails as when not installed
    assert cli.main(["--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err.strip()
    assert "pip install 'sphinx-apps[sphinx]'" in error and "\n" not in error
    assert not (tmp_path / "out").exists()


# -- one quick run ----------------------------------------------------------------------------

PICTURES = ("scene_views.png", "rec.png", "apps.png", "stage1_loss.png", "stage2_loss.png",
            "accuracy_time.png", "mix.png")
# results.json keys the issue asks for
ISSUE_KEYS = {"rec_acc50", "baselines", "vqa_accuracy", "mix", "stage1", "app", "seconds"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    pytest.importorskip("sphinx_train")
    out = tmp_path_factory.mktemp("demo") / "report"
    code = cli.main(["--quick", "--out", str(out), "--seed", "0"])
    assert code == 0
    return out, json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_quick_run_writes_every_report_file(quick_run):
    out, _ = quick_run
    markdown, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for name in PICTURES:
        picture = Image.open(out / "pictures" / name)
        assert min(picture.size) >= 100
        assert np.asarray(picture.convert("L")).std() > 5, f"{name} is blank"
        assert f"pictures/{name}" in markdown and f"pictures/{name}" in page
    assert "mechanics, not SPHINX's accuracy" in markdown
    for verdict in ("<= 600 s", ">= 0.6", ">= +0.3", "better parent"):
        assert verdict in markdown
    assert not list(out.parent.glob(".*"))  # no staging left beside OUT
    assert not (out / "work").exists() and not list(out.glob("runs/*/checkpoints"))
    assert (out / "runs/stage2/final/config.json").is_file()  # the trained model stays
    # The recorded stage-2 config starts from OUT's theta_mix, not from the staging folder.
    import yaml

    recorded = yaml.safe_load((out / "runs/stage2/config.yaml").read_text())
    assert recorded["model"]["init"] == str((out / "runs/mix").absolute())


@pytest.mark.slow
def test_quick_run_results_hold_the_issue_keys(quick_run):
    _, results = quick_run
    assert set(results) >= ISSUE_KEYS
    assert set(results["baselines"]) == {"centre", "largest", "random_object"}
    for model in ("real", "syn", "mix"):
        assert set(results["mix"][model]) == {"real", "syn"}
    assert set(results["stage1"]) == {"real", "syn"}
    for ends in (*results["stage1"]["real"].values(), *results["stage1"]["syn"].values()):
        assert set(ends) == {"first", "last"}
    assert {"mask_iou"} <= set(results["app"])
    assert {"total", "stage1-real", "stage1-syn", "mix", "stage2", "eval", "apps"} <= set(
        results["seconds"])
    assert 0 <= results["rec_acc50"] <= 1 and 0 <= results["vqa_accuracy"] <= 1


@pytest.mark.slow
def test_quick_run_stage2_loss_falls(quick_run):
    _, results = quick_run
    loss = results["stage2"]["loss"]
    assert loss["last"] < 0.8 * loss["first"]
    assert len(results["stage2"]["sources"]) >= 2  # the SPHINX-1k caption source trained too
    for ends in results["stage1"]["real"].values():
        assert ends["last"] < ends["first"]


@pytest.mark.slow
@pytest.mark.xfail(reason="demo-stage2 needs ~1000 steps to pass the largest-box baseline; "
                   "the quick run takes 240", strict=False)
def test_quick_run_grounding_beats_the_best_baseline(quick_run):
    _, results = quick_run
    assert results["rec_acc50"] > max(results["baselines"].values())


@pytest.mark.slow
def test_interrupt_exits_130_and_leaves_nothing(tmp_path):
    pytest.importorskip("sphinx_train")
    import signal
    import subprocess
    import time

    out = tmp_path / "report"
    process = subprocess.Popen(
        [sys.executable, "-m", "sphinx_apps.demo.cli", "--quick", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".report.staging-*")) and time.monotonic() < deadline:
        time.sleep(0.2)  # wait until the run has started writing
    assert list(tmp_path.glob(".report.staging-*")), "the run never started"
    time.sleep(2)  # into the first stages
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "interrupted" in error
    assert list(tmp_path.iterdir()) == []
