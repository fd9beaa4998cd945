"""The demo's outputs: results.json, report.md, report.html and the pictures they show."""

from __future__ import annotations

import html
import json
import re

from PIL import Image, ImageDraw

from .pipeline import DOMAINS, Run, loss_ends
from .plots import bar_chart, line_chart

MECHANICS = ("The nano model (a tiny LLM over small random encoders, trained for minutes on "
             "CPU) shows the recipe's mechanics, not SPHINX's accuracy.")
PICTURES = {
    "scene_views.png": "A held-out scene and its SPHINX-1k views (global + 2x2 crops)",
    "rec.png": "REC on held-out scenes: true box green, predicted box red",
    "apps.png": "'Remove the ...': GrabCut mask in SPHINX's box and Telea's removal, then the "
                "same from the true box",
    "stage1_loss.png": "Stage 1 loss per source (theta_real, then theta_syn)",
    "stage2_loss.png": "Stage 2 loss per source and held-out loss",
    "accuracy_time.png": "REC Acc@0.5 against stage-2 training time",
    "mix.png": "Caption loss of theta_real, theta_syn and theta_mix per domain",
}
GREEN, RED = (40, 200, 70), (230, 30, 30)


# -- results ----------------------------------------------------------------------------------


def verdicts(results: dict) -> dict[str, dict]:
    """The issue's bar, each as measured / needed / pass."""
    best = max(results["baselines"].values())
    mix = results["mix"]
    better = {d: min(mix["real"][d], mix["syn"][d]) for d in DOMAINS}
    return {
        "wall_time": {"measured": results["seconds"]["total"], "needed": "<= 600 s",
                      "pass": results["seconds"]["total"] <= 600},
        "rec_acc50": {"measured": results["rec_acc50"], "needed": ">= 0.6",
                      "pass": results["rec_acc50"] >= 0.6},
        "over_best_baseline": {"measured": results["rec_acc50"] - best, "needed": ">= 0.3",
                               "pass": results["rec_acc50"] - best >= 0.3},
        "mix_within_better_parent": {
            "measured": {d: mix["mix"][d] - better[d] for d in DOMAINS},
            "needed": "theta_mix loss <= the better parent's on each domain",
            "pass": all(mix["mix"][d] <= better[d] for d in DOMAINS),
        },
    }


def build_results(run: Run, total_seconds: float, quick: bool, threads: int) -> dict:
    from . import evaltasks

    stage2 = run.metrics["stage2"]
    held = [r["held_out_loss"] for r in stage2 if "held_out_loss" in r]
    losses = [r["loss"] for r in stage2 if "loss" in r]
    results = {
        "seed": run.seed, "quick": quick, "threads": threads,
        "rec_acc50": run.scores[evaltasks.REC]["acc@0.5"] / 100,
        "baselines": run.scores["baselines"],
        "vqa_accuracy": run.scores[evaltasks.VQA]["accuracy"] / 100,
        "detection_f1": run.scores[evaltasks.DETECTION]["f1"] / 100,
        "mix": run.mix_losses,
        "stage1": {name: loss_ends(run.metrics[f"stage1-{name}"]) for name in DOMAINS},
        "stage2": {
            "sources": loss_ends(stage2),
            "loss": {"first": losses[0], "last": losses[-1]},
            "held_out_loss": {"first": held[0], "last": held[-1]} if held else None,
        },
        "app": run.scores["app"],
        "accuracy_curve": run.curve,
        "scenes": {"rec_vqa": len(run.scenes), "detection": run.recipe.detection_scenes,
                   "mix_captions": run.recipe.mix_captions, "apps": len(run.apps)},
        "seconds": {"total": total_seconds, **run.seconds},
    }
    results["verdicts"] = verdicts(results)
    return results


# -- pictures ---------------------------------------------------------------------------------


def _box_px(box, side: int) -> list[float]:
    return [value * side for value in box]


def _tile(images: list[Image.Image], columns: int, gap: int = 6) -> Image.Image:
    width = max(i.width for i in images)
    height = max(i.height for i in images)
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * (width + gap) - gap, rows * (height + gap) - gap), "white")
    for index, image in enumerate(images):
        sheet.paste(image, ((index % columns) * (width + gap), (index // columns) * (height + gap)))
    return sheet


def _captioned(image: Image.Image, text: str) -> Image.Image:
    framed = Image.new("RGB", (image.width, image.height + 18), "white")
    framed.paste(image.convert("RGB"), (0, 0))
    ImageDraw.Draw(framed).text((4, image.height + 3), text, fill="black")
    return framed


def scene_views(run: Run) -> Image.Image:
    from .pipeline import load

    scene = run.scenes[0]
    views = load(run.models["stage2"]).image_views(scene.image, "sphinx-1k")[0]
    pictures = [_captioned(scene.image.resize((160, 160)), "scene")]
    for index, view in enumerate(views):
        low, high = float(view.min()), float(view.max())
        array = ((view - low) / max(high - low, 1e-6) * 255).byte().permute(1, 2, 0).numpy()
        name = "global view" if index == 0 else f"crop {index}"
        pictures.append(_captioned(Image.fromarray(array).resize((160, 160)), name))
    return _tile(pictures, len(pictures))


def rec_picture(run: Run, count: int = 8) -> Image.Image:
    tiles = []
    for scene in run.scenes[:count]:
        picture = scene.image.copy()
        draw = ImageDraw.Draw(picture)
        side = picture.size[0]
        draw.rectangle(_box_px(scene.objects[scene.target].box, side), outline=GREEN, width=3)
        answer = run.rec_answers.get(scene.id)
        if answer and any(answer):
            x1, y1, x2, y2 = _box_px(answer, side)
            draw.rectangle([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)], outline=RED,
                           width=2)
        tiles.append(_captioned(picture, scene.phrase))
    return _tile(tiles, 4)


def apps_picture(run: Run) -> Image.Image:
    """Per scene: the chain from SPHINX's box (overlay, removal), then from the true box."""
    tiles = []
    for entry in run.apps:
        for name, label in (("sphinx", "SPHINX box"), ("true_box", "true box")):
            result = entry[name]
            if result is None:
                blank = Image.new("RGB", entry["size"], (235, 235, 235))
                tiles += [_captioned(blank, f"{label}: no mask"), _captioned(blank, "")]
                continue
            tiles += [_captioned(result.overlay(), f"{label}: IoU {entry[name + '_iou']:.2f}"),
                      _captioned(result.result, f"removed {entry['phrase'][4:]}")]
    return _tile(tiles, 4)


def _series(records: list[dict], prefix: str, offset: int = 0, label: str = ""):
    series: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(prefix):
                name = f"{label}{key[len(prefix):] or 'held-out'}"
                series.setdefault(name, []).append((record["step"] + offset, value))
    return series


def stage1_picture(run: Run) -> Image.Image:
    real, syn = run.metrics["stage1-real"], run.metrics["stage1-syn"]
    offset = max((r["step"] for r in real), default=0)
    series = {**_series(real, "loss/", 0, "real: "), **_series(syn, "loss/", offset, "syn: ")}
    return line_chart(series, "Stage 1: theta_real, then theta_syn", "step", "loss (nats/token)")


def stage2_picture(run: Run) -> Image.Image:
    records = run.metrics["stage2"]
    series = {**_series(records, "loss/"), **_series(records, "held_out_loss")}
    return line_chart(series, "Stage 2 from theta_mix", "step", "loss (nats/token)")


def accuracy_picture(run: Run) -> Image.Image:
    points = [(p["train_seconds"], p["rec_acc50"]) for p in run.curve]
    hlines = {f"{name} baseline": value for name, value in run.scores["baselines"].items()}
    hlines["bar 0.6"] = 0.6
    return line_chart({"REC Acc@0.5": points}, "Held-out REC accuracy during stage 2",
                      "stage-2 training seconds", "Acc@0.5", hlines)


def mix_picture(run: Run) -> Image.Image:
    groups = {f"{d} captions": {f"theta_{m}": run.mix_losses[m][d] for m in ("real", "syn", "mix")}
              for d in DOMAINS}
    return bar_chart(groups, "Held-out caption loss per domain", "loss (nats/token)")


def write_pictures(run: Run, folder) -> None:
    folder.mkdir()
    drawn = {
        "scene_views.png": scene_views, "rec.png": rec_picture, "apps.png": apps_picture,
        "stage1_loss.png": stage1_picture, "stage2_loss.png": stage2_picture,
        "accuracy_time.png": accuracy_picture, "mix.png": mix_picture,
    }
    for name, draw in drawn.items():
        draw(run).save(folder / name)


# -- text -------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def verdict_lines(results: dict) -> list[str]:
    v, best = results["verdicts"], max(results["baselines"].values())
    mix = v["mix_within_better_parent"]["measured"]
    return [
        f"{_mark(v['wall_time']['pass'])}: wall time {results['seconds']['total']:.0f} s "
        f"(bar: <= 600 s on 2 cores{'; this was a --quick run' if results['quick'] else ''})",
        f"{_mark(v['rec_acc50']['pass'])}: held-out REC Acc@0.5 {results['rec_acc50']:.2f} "
        "(bar: >= 0.6)",
        f"{_mark(v['over_best_baseline']['pass'])}: {results['rec_acc50'] - best:+.2f} over the "
        f"best baseline {best:.2f} (bar: >= +0.3)",
        f"{_mark(v['mix_within_better_parent']['pass'])}: theta_mix minus the better parent's "
        f"caption loss: real {mix['real']:+.3f}, syn {mix['syn']:+.3f} (bar: <= 0 on both)",
    ]


def summary(results: dict) -> str:
    b = results["baselines"]
    lines = [
        f"sphinx-demo ({'quick' if results['quick'] else 'full'} run, seed {results['seed']}, "
        f"{results['threads']} threads): {results['seconds']['total']:.0f} s",
        f"  REC Acc@0.5 {results['rec_acc50']:.2f}  (baselines: centre {b['centre']:.2f}, "
        f"largest {b['largest']:.2f}, random object {b['random_object']:.2f})",
        f"  VQA accuracy {results['vqa_accuracy']:.2f}   detection F1 "
        f"{results['detection_f1']:.2f}   removal mask IoU {results['app']['mask_iou']:.2f} "
        f"(true box: {results['app']['mask_iou_true_box']:.2f})",
        f"  stage-2 loss {results['stage2']['loss']['first']:.3f} -> "
        f"{results['stage2']['loss']['last']:.3f}",
        *[f"  {line}" for line in verdict_lines(results)],
    ]
    return "\n".join(lines)


def _tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    b = results["baselines"]
    scores = [["REC Acc@0.5", f"{results['rec_acc50']:.3f}"],
              *[[f"baseline: {k.replace('_', ' ')}", f"{v:.3f}"] for k, v in b.items()],
              ["VQA accuracy (counting)", f"{results['vqa_accuracy']:.3f}"],
              ["detection F1 (IoU 0.5)", f"{results['detection_f1']:.3f}"],
              ["removal mask IoU (SPHINX box)", f"{results['app']['mask_iou']:.3f}"],
              ["removal mask IoU (true box)", f"{results['app']['mask_iou_true_box']:.3f}"]]
    mix = [[f"theta_{m}", *[f"{results['mix'][m][d]:.3f}" for d in DOMAINS]]
           for m in ("real", "syn", "mix")]
    stage1 = [[run, source, f"{ends['first']:.3f}", f"{ends['last']:.3f}"]
              for run, sources in results["stage1"].items() for source, ends in sources.items()]
    stage1 += [["stage 2", source, f"{ends['first']:.3f}", f"{ends['last']:.3f}"]
               for source, ends in results["stage2"]["sources"].items()]
    curve = [[str(p["step"]), f"{p['train_seconds']:.0f}", f"{p['rec_acc50']:.3f}"]
             for p in results["accuracy_curve"]]
    seconds = [[name, f"{value:.1f}"] for name, value in results["seconds"].items()]
    return [
        ("Held-out scores", ["measure", "value"], scores),
        ("Weight mix: caption loss on held-out captions (nats/token)",
         ["model", "real captions", "synthetic captions"], mix),
        ("Loss per source, first and last logged step", ["run", "source", "first", "last"],
         stage1),
        ("REC accuracy against stage-2 training time", ["step", "training s", "Acc@0.5"], curve),
        ("Seconds per stage", ["stage", "seconds"], seconds),
    ]


def _intro(results: dict) -> list[str]:
    n = results["scenes"]
    return [
        "Everything here was produced by `sphinx-demo` on synthetic scenes drawn on the fly: "
        "stage 1 on terse captions (theta_real), continued on long templated captions "
        "(theta_syn), both with text-only rows in every step; `sphinx-train mix` "
        "(theta_mix); stage 2 multi-task training from theta_mix; evaluation through "
        f"sphinx-train's runner on {n['rec_vqa']} held-out scenes with 2-4 objects "
        f"({n['detection']} for detection); 'remove the ...' through sphinx-apps on "
        f"{n['apps']} of them.",
        MECHANICS,
    ]


def markdown(results: dict) -> str:
    lines = ["# sphinx-demo report", "", *_intro(results), "", "## The bar", ""]
    lines += [f"- {line}" for line in verdict_lines(results)] + [""]
    for title, header, rows in _tables(results):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    lines += ["## Pictures", ""]
    lines += [f"![{caption}](pictures/{name})\n\n*{caption}*\n" for name, caption in PICTURES.items()]
    return "\n".join(lines)


def html_page(results: dict) -> str:
    def e(text: str) -> str:  # escaped, with `code` spans
        return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>sphinx-demo report"
             "</title><style>body{font-family:sans-serif;max-width:900px;margin:2em auto}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:3px 8px;text-align:right}.PASS{color:#080}.FAIL{color:#b00}"
             "img{max-width:100%}</style></head><body><h1>sphinx-demo report</h1>"]
    parts += [f"<p>{e(text)}</p>" for text in _intro(results)]
    parts.append("<h2>The bar</h2><ul>")
    for line in verdict_lines(results):
        mark, rest = line.split(":", 1)
        parts.append(f"<li><b class='{mark}'>{mark}</b>:{e(rest)}</li>")
    parts.append("</ul>")
    for title, header, rows in _tables(results):
        parts.append(f"<h2>{e(title)}</h2><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>"
                  for row in rows]
        parts.append("</table>")
    parts.append("<h2>Pictures</h2>")
    parts += [f"<figure><img src='pictures/{name}' alt='{e(caption)}'><figcaption>{e(caption)}"
              "</figcaption></figure>" for name, caption in PICTURES.items()]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(run: Run, results: dict) -> None:
    """results.json, report.md and report.html (the pictures are written before)."""
    folder = run.folder
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "report.md").write_text(markdown(results))
    (folder / "report.html").write_text(html_page(results))
