"""A saved sphinx-nano model (random weights) and tiny benchmark folders in the real layouts."""

from __future__ import annotations

import base64
import io
import json
import pickle

import numpy as np
import pytest
from PIL import Image

from sphinx_train.evaluation import EvalOptions, run_eval


@pytest.fixture(scope="session")
def nano_folder(tmp_path_factory):
    import torch

    from sphinx_train import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("nano") / "model"
    create_model("sphinx-nano").save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def nano(nano_folder):
    import torch

    from sphinx_train.checkpoint import load_model

    torch.set_num_threads(1)
    return load_model(nano_folder)


def picture(seed: int, size=(96, 64)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    picture(seed).save(buffer, format="PNG")
    return buffer.getvalue()


def folders(root, *names):
    """Create and return the benchmark's folders (annotations, images) under ``root``."""
    paths = [root / name for name in names]
    for path in paths:
        path.mkdir(parents=True)
    return paths


@pytest.fixture
def pope_data(tmp_path):
    data, images = folders(tmp_path, "pope", "val2014")
    lines = []
    for i in range(6):
        name = f"COCO_val2014_{i:012d}.jpg"
        picture(i).save(images / name)
        lines.append(json.dumps({"question_id": i + 1, "image": name,
                                 "text": f"Is there a cat number {i} in the image?",
                                 "label": "yes" if i % 2 else "no"}))  # fmt: skip
    (data / "coco_pope_random.json").write_text("\n".join(lines) + "\n")
    return data, images


@pytest.fixture
def refcoco_data(tmp_path):
    data, images = folders(tmp_path, "refcoco", "train2014")
    pictures, annotations, refs = [], [], []
    for i, (w, h) in enumerate([(96, 64), (64, 96), (80, 80)]):
        name = f"COCO_train2014_{i:012d}.jpg"
        picture(i, (w, h)).save(images / name)
        pictures.append({"id": i, "file_name": name, "width": w, "height": h})
        annotations.append({"id": 100 + i, "bbox": [4.5, 6.25, 30.0, 20.0], "image_id": i})
        refs.append({"ref_id": i, "ann_id": 100 + i, "image_id": i,
                     "split": "val" if i < 2 else "testA",
                     "sentences": [{"sent": "the left thing"}, {"sent": "red blob"}]})  # fmt: skip
    (data / "instances.json").write_text(json.dumps({"images": pictures,
                                                     "annotations": annotations}))  # fmt: skip
    with open(data / "refs(unc).p", "wb") as handle:
        pickle.dump(refs, handle, protocol=2)
    return data, images


@pytest.fixture
def vqav2_data(tmp_path):
    data, images = folders(tmp_path, "vqav2", "val2014")
    questions, annotations = [], []
    for i in range(5):
        picture(i).save(images / f"COCO_val2014_{i + 7:012d}.jpg")
        questions.append({"question_id": 10 * i, "image_id": i + 7, "question": f"What {i}?"})
        humans = ["yes"] * (i + 1) + ["no"] * (9 - i)
        annotations.append({"question_id": 10 * i, "image_id": i + 7,
                            "answers": [{"answer": a, "answer_id": k + 1}
                                        for k, a in enumerate(humans)]})  # fmt: skip
    (data / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(
        json.dumps({"questions": questions}))  # fmt: skip
    (data / "v2_mscoco_val2014_annotations.json").write_text(
        json.dumps({"annotations": annotations}))  # fmt: skip
    return data, images


@pytest.fixture
def mme_data(tmp_path):
    data = tmp_path / "MME_Benchmark_release_version"
    (data / "count").mkdir(parents=True)
    (data / "artwork" / "images").mkdir(parents=True)
    (data / "artwork" / "questions_answers_YN").mkdir()
    for i in range(2):
        picture(i).save(data / "count" / f"{i}.jpg")
        (data / "count" / f"{i}.txt").write_text(
            f"Are there {i} dogs? Please answer yes or no.\tYes\n"
            f"Are there {i + 5} dogs? Please answer yes or no.\tNo\n")  # fmt: skip
    picture(9).save(data / "artwork" / "images" / "37077.jpg")
    (data / "artwork" / "questions_answers_YN" / "37077.txt").write_text(
        "Is it religious? Please answer yes or no.\tYes\nIs it a still-life?\tNo\n")  # fmt: skip
    return data


@pytest.fixture
def mmbench_data(tmp_path):
    (tmp_path / "mmbench").mkdir()
    path = tmp_path / "mmbench" / "mmbench_dev_20230712.tsv"
    header = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image"]
    rows = ["\t".join(header)]
    rows.append("\t".join(["0", "What color?", "nan", "red", "blue", "green", "nan", "B", "c",
                           base64.b64encode(png_bytes(1)).decode()]))  # fmt: skip
    rows.append("\t".join(["1", "Which shape?", "A hint.", "circle", "square", "nan", "nan", "A",
                           "c", base64.b64encode(png_bytes(2)).decode()]))  # fmt: skip
    path.write_text("\n".join(rows) + "\n")
    return path.parent


@pytest.fixture
def scienceqa_data(tmp_path):
    data = tmp_path / "scienceqa"
    problems = {}
    for pid, image in (("5", "image.png"), ("6", None), ("7", "image.png")):
        problems[pid] = {"question": f"Which one {pid}?", "choices": ["x", "y", "z"],
                         "answer": 1, "hint": "Look." if pid == "5" else "", "image": image,
                         "split": "test"}  # fmt: skip
        if image:
            (data / "images" / "test" / pid).mkdir(parents=True)
            picture(int(pid)).save(data / "images" / "test" / pid / image)
    (data / "problems.json").write_text(json.dumps(problems))
    (data / "pid_splits.json").write_text(json.dumps({"test": ["5", "6", "7"]}))
    return data


def run_with_answers(nano, task, split, data, images, tmp_path, answers: dict[str, str]):
    """Generate once, swap the cached answers for ``answers`` (by sample id), score again;
    returns the split's metrics and the samples by id."""
    out = tmp_path / f"out-{task}"

    def options(**extra):
        return EvalOptions(task=task, data=data, images=images, out=out, progress=False,
                           batch_size=4, **extra)  # fmt: skip

    run_eval(nano, options())
    cache = out.with_name(out.name + ".cache") / "responses-rank0.jsonl"
    entries = [json.loads(line) for line in cache.read_text().splitlines()]
    assert sorted(e["id"] for e in entries) == sorted(answers)
    cache.write_text("".join(json.dumps({**e, "answer": answers[e["id"]]}) + "\n"
                             for e in entries))  # fmt: skip
    generated: list[str] = []
    results = run_eval(nano, options(overwrite=True), on_batch=generated.extend)
    assert generated == []  # every answer came from the cache
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert json.loads((out / "results.json").read_text()) == results
    return results[task][split], {s["id"]: s for s in samples}
