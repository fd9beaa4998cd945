"""The demo's stages: scenes, stage 1 (real, then synthetic), weight mix, stage 2, evaluation,
applications. Each stage uses sphinx-train's and sphinx-apps' public calls only, and writes
into the run folder it is given; the report is drawn from what they return."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import evaltasks
from .recipe import Recipe, StageRecipe
from .scenes import HeldOutScene, baseline_accuracy, held_out_scenes, mask_iou, visible_mask

STAGES = ("scenes", "stage1-real", "stage1-syn", "mix", "mix-table", "stage2", "eval", "apps",
          "report")
DOMAINS = ("real", "syn")


@dataclass
class Run:
    """What the stages produce, in the order they produce it."""

    folder: Path
    recipe: Recipe
    seed: int
    announce: Callable[[str], None] = print
    seconds: dict[str, float] = field(default_factory=dict)
    scenes: list[HeldOutScene] = field(default_factory=list)
    models: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, list[dict]] = field(default_factory=dict)
    mix_losses: dict[str, dict[str, float]] = field(default_factory=dict)
    curve: list[dict] = field(default_factory=list)
    scores: dict = field(default_factory=dict)
    rec_answers: dict[str, list[float]] = field(default_factory=dict)
    apps: list[dict] = field(default_factory=list)

    @property
    def work(self) -> Path:
        """Scratch space (response caches, intermediate evaluations), removed at the end."""
        return self.folder / "work"

    @contextmanager
    def stage(self, name: str, what: str):
        self.announce(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name}: {what}")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _bar(items, label: str, unit: str):
    from tqdm import tqdm  # the [sphinx] extra

    return tqdm(items, desc=label, unit=unit, dynamic_ncols=True)


# -- training ---------------------------------------------------------------------------------


def train(recipe: StageRecipe, out: Path, seed: int, init: Path | None = None,
          max_steps: int | None = None) -> Path:
    """``sphinx-train fit`` through its Python API; returns the exported model folder."""
    from sphinx_train.training.config import load_config
    from sphinx_train.training.loop import fit

    overrides = [*recipe.overrides, f"seed={seed}", f"schedule.total_steps={recipe.steps}",
                 f"checkpoint.every={recipe.steps}", "logging.progress=true"]
    if init is not None:
        overrides.append(f"model.init={init}")
    config = load_config(recipe.config, overrides)
    fit(config, out, max_steps=max_steps or recipe.steps)
    return out / "final"


def read_metrics(run_folder: Path) -> list[dict]:
    with open(run_folder / "metrics.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def loss_ends(records: list[dict]) -> dict[str, dict[str, float]]:
    """First and last logged loss of every ``loss/<source>`` series."""
    ends: dict[str, dict[str, float]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith("loss/"):
                ends.setdefault(key[5:], {"first": value})["last"] = value
    return ends


def load(folder: Path):
    import torch

    from sphinx_train.checkpoint import load_model

    model = load_model(folder, dtype=torch.float32)
    model.eval()
    return model


def caption_loss(model, scenes: list[HeldOutScene], domain: str) -> float:
    """Token-mean NLL of held-out captions in one domain, encoded as stage 1 encodes them
    (raw text, BOS and EOS, every token supervised, the global view)."""
    import torch

    from sphinx_train import IGNORE_INDEX, SphinxSample
    from sphinx_train.training import synthetic

    caption = synthetic.real_caption if domain == "real" else synthetic.synthetic_caption
    tokenizer = model.require_tokenizer()
    total = count = 0.0
    with torch.no_grad():
        for start in range(0, len(scenes), 8):
            samples = []
            for scene in scenes[start:start + 8]:
                ids = tokenizer.encode(caption(scene.scene))
                samples.append(SphinxSample(
                    [tokenizer.bos_id, *ids, tokenizer.eos_id],
                    [IGNORE_INDEX, *ids, tokenizer.eos_id],
                    model.image_views(scene.image)[0],
                ))
            output = model.loss(samples)
            total += float((output.sample_loss * output.sample_tokens).sum())
            count += float(output.sample_tokens.sum())
    return total / count


# -- evaluation -------------------------------------------------------------------------------


def evaluate(model, task: str, data: Path, out: Path, cache: Path, limit: int | None = None,
             progress: bool = True) -> dict:
    """One demo task through ``sphinx-train eval``'s runner; its metrics on the held-out split."""
    from sphinx_train.evaluation import EvalOptions, run_eval

    options = EvalOptions(task=task, data=data, out=out, limit=limit, batch_size=16,
                          cache=cache, progress=progress, overwrite=True)
    return run_eval(model, options)[task][evaltasks.SPLIT]


def parsed_answers(eval_folder: Path) -> dict[str, object]:
    with open(eval_folder / "samples.jsonl", encoding="utf-8") as handle:
        return {row["id"]: row["parsed"] for row in map(json.loads, handle)}


# -- the stages -------------------------------------------------------------------------------


def make_scenes(run: Run) -> None:
    with run.stage("scenes", f"{run.recipe.eval_scenes} held-out scenes with 2-4 objects"):
        run.scenes = held_out_scenes(run.recipe.eval_scenes, run.seed)
        evaltasks.write_data(run.scenes, run.folder / "data")
        run.scores["baselines"] = baseline_accuracy(run.scenes)


def stage1(run: Run) -> None:
    recipe = run.recipe
    with run.stage("stage1-real", f"{recipe.stage1_real.config}, {recipe.stage1_real.steps} steps "
                   "on terse captions + text-only rows -> theta_real"):
        run.models["real"] = train(recipe.stage1_real, run.folder / "runs/stage1-real", run.seed)
    with run.stage("stage1-syn", f"theta_real continued {recipe.stage1_syn.steps} steps on "
                   "long templated captions -> theta_syn"):
        run.models["syn"] = train(recipe.stage1_syn, run.folder / "runs/stage1-syn", run.seed,
                                  init=run.models["real"])
    for name in ("real", "syn"):
        run.metrics[f"stage1-{name}"] = read_metrics(run.folder / f"runs/stage1-{name}")


def mix(run: Run) -> None:
    from sphinx_train.training.mixing import mix_models

    beta = run.recipe.beta
    with run.stage("mix", f"theta_mix = {beta} * theta_real + {1 - beta:g} * theta_syn"):
        run.models["mix"] = mix_models(run.models["real"], run.models["syn"],
                                       run.folder / "runs/mix", beta=beta)
    captions = run.scenes[: run.recipe.mix_captions]
    with run.stage("mix-table", f"caption loss of the three models on {len(captions)} held-out "
                   "captions per domain"):
        for name in _bar(("real", "syn", "mix"), "mix table", "model"):
            model = load(run.models[name])
            run.mix_losses[name] = {d: caption_loss(model, captions, d) for d in DOMAINS}


def stage2(run: Run) -> None:
    """Stage 2 from theta_mix in ``curve_points`` legs (each resumes the last one's checkpoint),
    with a REC evaluation after each leg for the accuracy-vs-time curve."""
    recipe, out = run.recipe.stage2, run.folder / "runs/stage2"
    points = run.recipe.curve_points
    trained = 0.0
    with run.stage("stage2", f"{recipe.config}, {recipe.steps} multi-task steps from theta_mix, "
                   f"REC checked {points} times"):
        for leg in range(1, points + 1):
            steps = round(recipe.steps * leg / points)
            started = time.perf_counter()
            final = train(recipe, out, run.seed, init=run.models["mix"], max_steps=steps)
            trained += time.perf_counter() - started
            scores = evaluate(load(final), evaltasks.REC, run.folder / "data",
                              run.work / f"curve-{steps}", run.work / f"curve-cache-{steps}",
                              limit=run.recipe.curve_scenes, progress=False)
            run.curve.append({"step": steps, "train_seconds": trained,
                              "rec_acc50": scores["acc@0.5"] / 100})
            run.announce(f"    step {steps}: REC Acc@0.5 {scores['acc@0.5'] / 100:.2f} on "
                         f"{run.recipe.curve_scenes} scenes after {trained:.0f} s of training")
        run.models["stage2"] = final
        run.metrics["stage2"] = read_metrics(out)


def evaluate_all(run: Run) -> None:
    data = run.folder / "data"
    with run.stage("eval", f"REC, counting VQA and detection on {len(run.scenes)} held-out "
                   "scenes through the evaluation runner"):
        model = load(run.models["stage2"])
        for task, limit in ((evaltasks.REC, None), (evaltasks.VQA, None),
                            (evaltasks.DETECTION, run.recipe.detection_scenes)):
            run.scores[task] = evaluate(model, task, data, run.folder / "eval" / task,
                                        run.work / f"cache-{task}", limit=limit)
        run.rec_answers = parsed_answers(run.folder / "eval" / evaltasks.REC)


def applications(run: Run) -> None:
    """"Remove the <phrase>": SPHINX grounds, GrabCut masks, Telea paints; mask IoU against the
    true shape, beside the same chain given the true box (the segmenter's own ceiling)."""
    from sphinx_apps import BoxesGrounder, SphinxGrounder, remove

    scenes = run.scenes[: run.recipe.app_scenes]
    with run.stage("apps", f"'remove the ...' on {len(scenes)} held-out scenes: ground -> "
                   "GrabCut -> Telea"):
        model = load(run.models["stage2"])
        grounder = SphinxGrounder(model)
        for scene in _bar(scenes, "apps", "scene"):
            truth = visible_mask(scene, scene.target)
            side = scene.image.size[0]
            true_box = scene.box(scene.target).scaled(side)
            entry = {"id": scene.id, "phrase": scene.phrase, "size": scene.image.size}
            for name, chosen in (("sphinx", grounder), ("true_box", BoxesGrounder([true_box]))):
                try:
                    result = remove(scene.image, scene.phrase, chosen)
                except ValueError:  # no box, or a box GrabCut finds no pixels in
                    entry[name] = None
                    entry[f"{name}_iou"] = 0.0
                    continue
                entry[name] = result
                entry[f"{name}_iou"] = mask_iou(result.mask, truth)
            run.apps.append(entry)
        run.scores["app"] = {
            "mask_iou": float(np.mean([e["sphinx_iou"] for e in run.apps])),
            "mask_iou_true_box": float(np.mean([e["true_box_iou"] for e in run.apps])),
        }


def run_stages(run: Run) -> None:
    make_scenes(run)
    evaltasks.register_demo_tasks()
    stage1(run)
    mix(run)
    stage2(run)
    evaluate_all(run)
    applications(run)


def tidy(run: Run, final: Path) -> None:
    """Drop the scratch space and the resumable checkpoints (the exported models stay), and
    point the recorded configs' ``model.init`` at ``final``, the name OUT will have."""
    shutil.rmtree(run.work, ignore_errors=True)
    for folder in (run.folder / "runs").glob("*/checkpoints"):
        shutil.rmtree(folder)
    for config in (run.folder / "runs").glob("*/config.yaml"):
        text = config.read_text(encoding="utf-8")
        for staged in dict.fromkeys((str(run.folder.absolute()), str(run.folder))):
            text = text.replace(staged, str(final))
        config.write_text(text, encoding="utf-8")
