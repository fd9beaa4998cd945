"""Each runner end to end on tiny fixtures in the official layouts, with sphinx-nano."""

from __future__ import annotations

import json
import pickle
import re
import struct

import pytest

from sphinx_train.evaluation import EvalOptions, run_eval


def run(nano, task, data, tmp_path, images=None, **options):
    out = tmp_path / f"out-{task}"
    results = run_eval(nano, EvalOptions(task=task, data=data, images=images, out=out,
                                         progress=False, **options))  # fmt: skip
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert json.loads((out / "results.json").read_text()) == results
    assert (out / "results.md").read_text().startswith(f"# {task}")
    return results[task], samples


def official_pope(text):
    # RUCAIBox/POPE evaluate.py
    if text.find(".") != -1:
        text = text.split(".")[0]
    words = text.replace(",", "").split(" ")
    return "no" if "No" in words or "not" in words or "no" in words else "yes"


def test_pope(nano, pope_data, tmp_path):
    data, images = pope_data
    results, samples = run(nano, "pope", data, tmp_path, images, splits=["random"])
    labels = {str(i + 1): "yes" if i % 2 else "no" for i in range(6)}
    read = [official_pope(s["answer"]) for s in samples]
    truth = [labels[s["id"]] for s in samples]
    tp = sum(r == t == "yes" for r, t in zip(read, truth, strict=True))
    tn = sum(r == t == "no" for r, t in zip(read, truth, strict=True))
    split = results["random"]
    assert split["n"] == 6
    assert split["accuracy"] == pytest.approx(100 * (tp + tn) / 6)
    assert split["yes_ratio"] == pytest.approx(100 * read.count("yes") / 6)
    assert [s["id"] for s in samples] == [str(i) for i in range(1, 7)]
    assert samples[0]["prompt"].count("Answer the question using a single word or phrase.") == 1


def test_unknown_split_and_variant(nano, pope_data, tmp_path):
    data, _ = pope_data
    with pytest.raises(ValueError, match="no split 'val'"):
        run_eval(nano, EvalOptions(task="pope", data=data, out=tmp_path / "o", splits=["val"]))
    with pytest.raises(ValueError, match="variant"):
        run_eval(nano, EvalOptions(task="pope", data=data, out=tmp_path / "o", variant="x"))


def reference_rec_hit(answer, gt, width, height):
    """accessory/eval_mm/evaluate.py 'miou0.5' for one answer, float32 steps as torch."""

    def f32(x):
        return struct.unpack("f", struct.pack("f", x))[0]

    found = re.findall(r"\[(.*?)\]", answer) or [answer.split("]")[0]]
    try:
        parts = found[0].split(",")
        box = [float(p) for p in parts] if len(parts) == 4 else [0.0] * 4
    except ValueError:
        box = [0.0] * 4
    side = max(width, height)
    x1, y1, x2, y2 = gt
    if width > height:
        y1, y2 = y1 + (width - height) // 2, y2 + (width - height) // 2
    elif height > width:
        x1, x2 = x1 + (height - width) // 2, x2 + (height - width) // 2
    p = [f32(f32(v) * side) for v in box]
    t = [f32(v) for v in (x1, y1, x2, y2)]
    area = [f32(f32(b[2] - b[0]) * f32(b[3] - b[1])) for b in (p, t)]
    w = max(f32(min(p[2], t[2]) - max(p[0], t[0])), 0.0)
    h = max(f32(min(p[3], t[3]) - max(p[1], t[1])), 0.0)
    inter = f32(w * h)
    union = f32(f32(area[0] + area[1]) - inter)
    return union != 0 and f32(inter / union) >= 0.5


def test_refcoco(nano, refcoco_data, tmp_path):
    data, images = refcoco_data
    results, samples = run(nano, "refcoco", data, tmp_path, images, splits=["val"])
    assert [s["id"] for s in samples] == ["0-0", "0-1", "1-0", "1-1"]  # testA left out
    sizes = {"0": (96, 64), "1": (64, 96)}
    gt = [4.5, 6.25, 34.5, 26.25]
    hits = [reference_rec_hit(s["answer"], gt, *sizes[s["id"][0]]) for s in samples]
    assert results["val"]["acc@0.5"] == pytest.approx(100 * sum(hits) / 4)
    assert results["val"]["n"] == 4
    assert "acc@0.5_pixels" in results["val"] and "miou" in results["val"]
    assert (
        samples[0]["prompt"].endswith(
            "Please provide the bounding box coordinate of the region this sentence describes: "
            "the left thing.\n### Assistant:"
        )
        or "describes: the left thing." in samples[0]["prompt"]
    )


def test_refcoco_scores_a_right_box_in_both_frames(refcoco_data):
    from sphinx_train.evaluation.registry import get_task
    from sphinx_train.evaluation.runner import score_split

    data, images = refcoco_data
    task = get_task("refcoco")
    samples = task.loader(data, images, "val")[:1]  # 96 x 64: square side 96, dy = 16
    # gt (4.5, 6.25, 34.5, 26.25) -> square (4.5, 22.25, 34.5, 42.25) / 96
    answer = "[" + ",".join(f"{v / 96:.4f}" for v in (4.5, 22.25, 34.5, 42.25)) + "]"
    result, _, scores = score_split("refcoco", samples, [answer], [("", "")], "official",
                                         "sphinx")  # fmt: skip
    assert result["acc@0.5"] == 100.0 and result["acc@0.5_pixels"] == 100.0
    assert scores[0] == pytest.approx(1.0, abs=1e-3)


def test_refcocog_reads_the_umd_refs_and_its_own_splits(refcoco_data):
    import shutil

    from sphinx_train.evaluation.registry import get_task

    data, images = refcoco_data
    shutil.move(data / "refs(unc).p", data / "refs(umd).p")  # RefCOCOg's Google/UMD split file
    task = get_task("refcocog")
    assert task.splits == ("val", "test")
    assert [s.id for s in task.loader(data, images, "val")] == ["0-0", "0-1", "1-0", "1-1"]
    with pytest.raises(FileNotFoundError, match=r"refs\(umd\)"):
        get_task("refcocog").loader(data.parent, images, "val")


def test_refs_pickle_with_code_is_refused(refcoco_data, tmp_path):
    from sphinx_train.evaluation.registry import get_task

    data, images = refcoco_data

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    with open(data / "refs(unc).p", "wb") as handle:
        pickle.dump([Evil()], handle)
    with pytest.raises(ValueError, match="only plain data"):
        get_task("refcoco").loader(data, images, "val")


def test_vqav2(nano, vqav2_data, tmp_path):
    from sphinx_tasks.metrics import vqa_accuracy

    data, images = vqav2_data
    results, samples = run(nano, "vqav2", data, tmp_path, images)
    humans = {str(10 * i): ["yes"] * (i + 1) + ["no"] * (9 - i) for i in range(5)}
    expected = [vqa_accuracy(s["answer"], humans[s["id"]]) for s in samples]
    assert [s["score"] for s in samples] == pytest.approx(expected)
    assert results["val"]["accuracy"] == pytest.approx(100 * sum(expected) / 5)
    assert samples[0]["prompt"].count("What 0?\nAnswer the question using a single word") == 1


def test_mme(nano, mme_data, tmp_path):
    results, samples = run(nano, "mme", mme_data, tmp_path)
    assert len(samples) == 6
    assert {s["parsed"] for s in samples} <= {"yes", "no", "other"}
    truth = {"count/0/0": "yes", "count/0/1": "no", "count/1/0": "yes", "count/1/1": "no",
             "artwork/37077/0": "yes", "artwork/37077/1": "no"}  # fmt: skip
    right = {s["id"]: s["parsed"] == truth[s["id"]] for s in samples}
    count_acc = sum(right[k] for k in truth if k.startswith("count")) / 4
    count_plus = sum(right[f"count/{i}/0"] and right[f"count/{i}/1"] for i in range(2)) / 2
    assert results["test"]["mme/count"] == pytest.approx(100 * count_acc + 100 * count_plus)


def test_mmbench_circular(nano, mmbench_data, tmp_path):
    results, samples = run(nano, "mmbench", mmbench_data, tmp_path)
    # 3 options -> 3 rotations, 2 options -> 2 rotations
    assert [s["id"] for s in samples] == ["0-r0", "0-r1", "0-r2", "1-r0", "1-r1"]
    assert "A. blue\nB. green\nC. red" in samples[1]["prompt"]
    assert "A hint.\nWhich shape?" in samples[3]["prompt"]
    by_question = {"0": [], "1": []}
    for s in samples:
        by_question[s["id"][0]].append(s["score"] == 1.0)
    expected = sum(all(v) for v in by_question.values()) / 2
    assert results["dev"]["circular_accuracy"] == pytest.approx(100 * expected)


def test_mmbench_paper_prompt(mmbench_data):
    from sphinx_train.evaluation.registry import get_task

    task = get_task("mmbench")
    samples = task.loader(mmbench_data, None, "dev")
    # SPHINX paper, Table 1: "There are several options: {options}"
    assert task.prompt("paper").build(samples[3])[0] == (
        "A hint.\nWhich shape?\nThere are several options: A. circle\nB. square"
    )
    assert task.prompt().name == "llava"


def test_scienceqa_reference_prompt(nano, scienceqa_data, tmp_path):
    results, samples = run(nano, "scienceqa", scienceqa_data, tmp_path)
    assert [s["id"] for s in samples] == ["5", "7"]  # only questions with an image
    assert (
        "Context:\nLook.\nQuestion:\nWhich one 5?\nChoices:\nA. x\nB. y\nC. z\n"
        in (samples[0]["prompt"])
    )
    assert samples[0]["prompt"].endswith(" The answer is")
    assert results["test"]["n"] == 2


def test_other_loaders_read_the_official_layouts(tmp_path):
    from sphinx_train.evaluation.registry import get_task

    (tmp_path / "train_images").mkdir()
    (tmp_path / "TextVQA_0.5.1_val.json").write_text(
        json.dumps(
            {
                "data": [
                    {
                        "question_id": 3,
                        "question": "brand?",
                        "image_id": "ab12",
                        "answers": ["sony"] * 10,
                    }
                ]
            }
        )
    )
    text = get_task("textvqa").loader(tmp_path, None, "val")
    assert (text[0].id, text[0].image.endswith("train_images/ab12.jpg")) == ("3", True)
    (tmp_path / "val.json").write_text(json.dumps([{"image": "VizWiz_val_00000001.jpg",
        "question": "What is this?", "answers": [{"answer": "tea"}] * 10}]))  # fmt: skip
    wiz = get_task("vizwiz").loader(tmp_path, None, "val")
    assert wiz[0].target == ["tea"] * 10
    assert (
        "What is this? When the provided information is insufficient"
        in (get_task("vizwiz").prompt().build(wiz[0])[0])
    )
    (tmp_path / "testdev_balanced_questions.json").write_text(json.dumps(
        {"201": {"imageId": "n1", "question": "Is it?", "answer": "no"}}))  # fmt: skip
    gqa = get_task("gqa").loader(tmp_path, None, "testdev")
    assert (gqa[0].id, gqa[0].target, gqa[0].image.endswith("images/n1.jpg")) == ("201", "no", True)
    with pytest.raises(ValueError, match="relative path"):
        (tmp_path / "val.json").write_text(json.dumps([{"image": "../x.jpg", "question": "q",
                                                        "answers": []}]))  # fmt: skip
        get_task("vizwiz").loader(tmp_path, None, "val")
