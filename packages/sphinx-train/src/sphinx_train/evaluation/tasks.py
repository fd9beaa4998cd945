"""The built-in benchmarks: prompts (the reference's strings first), parsers and scorers."""

from __future__ import annotations

from sphinx_tasks import Box, instructions, metrics
from sphinx_train.evaluation import loaders
from sphinx_train.evaluation.registry import EvalSample, EvalTask, Prompt, register_task

# accessory/eval_mm/annotations/annotation_config.json
SHORT_ANSWER = "{}\nAnswer the question using a single word or phrase."
VIZWIZ = ("{} When the provided information is insufficient, respond with 'Unanswerable'.\n"
          "Answer the question using a single word or phrase.")  # fmt: skip
GROUNDING = "Please provide the bounding box coordinate of the region this sentence describes: {}."
CHOICE_SUFFIX = "Answer with the option's letter from the given choices directly."
SCIENCEQA_SUFFIX = 'Answer with the option"s letter from the given choices directly.'
SCIENCEQA_ANSWER_PREFIX = " The answer is"


def _formatted(name: str, template: str) -> Prompt:
    return Prompt(name, lambda sample: (template.format(sample.question), ""))


PLAIN = Prompt("plain", lambda sample: (sample.question, ""))


def _textvqa_ocr(sample: EvalSample) -> tuple[str, str]:
    """The paper's (and LLaVA-1.5's) TextVQA question, with the image's Rosetta OCR tokens."""
    if "ocr_tokens" not in sample.meta:
        raise ValueError("textvqa prompt 'ocr' needs TextVQA_Rosetta_OCR_v0.2_<split>.json "
                         "beside TextVQA_0.5.1_<split>.json")  # fmt: skip
    return instructions.textvqa_instruction(sample.question, sample.meta["ocr_tokens"]), ""


def _choice_lines(sample: EvalSample) -> str:
    options = sample.meta["options"]
    return "\n".join(f"{loaders.OPTION_LETTERS[i]}. {text}" for i, text in enumerate(options))


def _llava_choice(sample: EvalSample) -> tuple[str, str]:
    hint = sample.meta.get("hint")
    head = f"{hint}\n{sample.question}" if hint else sample.question
    return f"{head}\n{_choice_lines(sample)}\n{CHOICE_SUFFIX}", ""


def _paper_mmbench(sample: EvalSample) -> tuple[str, str]:
    """The paper's MMBench instruction (Table 1): the options after "There are several options:"."""
    hint = sample.meta.get("hint")
    head = f"{hint}\n{sample.question}" if hint else sample.question
    return instructions.mmbench_instruction(head, sample.meta["options"]), ""


def _reference_scienceqa(sample: EvalSample) -> tuple[str, str]:
    text = (f"Context:\n{sample.meta['hint']}\nQuestion:\n{sample.question}\nChoices:\n"
            f"{_choice_lines(sample)}\n{SCIENCEQA_SUFFIX}")  # fmt: skip
    return text, SCIENCEQA_ANSWER_PREFIX


def _percent(value: float) -> float:
    return 100.0 * value


# -- scorers ----------------------------------------------------------------------------------


def _vqa_parse(sample, answer, variant):
    return answer


def _vqa_score(samples, parsed, variant):
    scores = [
        metrics.vqa_accuracy(p, s.target, variant) for s, p in zip(samples, parsed, strict=True)
    ]
    return {"accuracy": _percent(sum(scores) / max(len(scores), 1))}, scores


def _gqa_score(samples, parsed, variant):
    scores = [
        float(metrics.gqa_exact_match(p, s.target)) for s, p in zip(samples, parsed, strict=True)
    ]
    return {"accuracy": _percent(sum(scores) / max(len(scores), 1))}, scores


def _pope_parse(sample, answer, variant):
    return metrics.pope_answer(answer)


def _pope_score(samples, parsed, variant):
    score = metrics.pope_score(list(parsed), [s.target for s in samples])
    scores = [float(p == s.target.strip().lower()) for s, p in zip(samples, parsed, strict=True)]
    keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
    return {key: _percent(getattr(score, key)) for key in keys}, scores


def _mme_parse(sample, answer, variant):
    return metrics.mme_answer(answer, variant)


def _mme_score(samples, parsed, variant):
    items = [metrics.MmeItem(s.meta["subtask"], s.meta["image"], p, s.target)
             for s, p in zip(samples, parsed, strict=True)]  # fmt: skip
    # The parsed answer is already a reading; "yes"/"no"/"other" read the same in both variants.
    score = metrics.mme_score(items, variant)
    scores = [float(p == s.target.strip().lower()) for s, p in zip(samples, parsed, strict=True)]
    result = {"perception": score.perception, "cognition": score.cognition}
    result.update({f"mme/{task}": value for task, value in sorted(score.subtasks.items())})
    return result, scores


def _rec_parse(sample, answer, variant):
    return list(metrics.reference_box(answer))


def _rec_score(samples, parsed, variant):
    from sphinx_tiling import Layout, plan_canvas

    answers = ["[" + ",".join(repr(v) for v in box) + "]" for box in parsed]
    targets = [Box(*s.target) for s in samples]
    sizes = [(s.meta["width"], s.meta["height"]) for s in samples]
    score = metrics.rec_score(answers, targets, sizes)
    result = {f"acc@{t}": _percent(v) for t, v in score.accuracy_at.items()}
    result["miou"] = _percent(score.mean_iou)
    pixel_hits = 0
    for sample, box in zip(samples, parsed, strict=True):
        tiling = sample.meta.get("tiling", "sphinx")
        plan = plan_canvas(sample.meta["width"], sample.meta["height"], tiling)
        pixels = Layout.from_plan(plan, tiling).box_from_square(tuple(box))
        pixel_hits += Box(*map(float, pixels)).iou(Box(*sample.target)) >= 0.5
    result["acc@0.5_pixels"] = _percent(pixel_hits / max(len(samples), 1))
    return result, list(score.ious)


def _choice_parse(sample, answer, variant):
    text = answer if variant == "accessory" else sample.meta.get("prefix", "") + answer
    return metrics.extract_choice(text, sample.meta["options"], variant)


def _choice_score(samples, parsed, variant):
    scores = [float(p == s.target) for s, p in zip(samples, parsed, strict=True)]
    result = {"accuracy": _percent(sum(scores) / max(len(scores), 1))}
    if any("-r" in s.id for s in samples) or any(s.id.isdigit() and int(s.id) >= 1_000_000
                                                 for s in samples):  # fmt: skip
        groups = [s.meta["group"] for s in samples]
        result["circular_accuracy"] = _percent(metrics.circular_accuracy(groups, scores))
    return result, scores


def _register_all() -> None:
    vqa = dict(parser=_vqa_parse, scorer=_vqa_score, variants=metrics.VQA_VARIANTS,
               max_new_tokens=10)  # fmt: skip
    short = [_formatted("reference", SHORT_ANSWER), PLAIN]
    register_task("vqav2", EvalTask(loaders.load_vqa_pair(
        "v2_OpenEnded_mscoco_{split}2014_questions.json", "v2_mscoco_{split}2014_annotations.json",
        "COCO_{split}2014_{image_id:012d}.jpg"), short, splits=("val",), **vqa))  # fmt: skip
    register_task("okvqa", EvalTask(loaders.load_vqa_pair(
        "OpenEnded_mscoco_{split}2014_questions.json", "mscoco_{split}2014_annotations.json",
        "COCO_{split}2014_{image_id:012d}.jpg"), short, splits=("val",), **vqa))  # fmt: skip
    register_task("textvqa", EvalTask(loaders.load_textvqa, [*short, Prompt("ocr", _textvqa_ocr)],
                                      splits=("val",), **vqa))  # fmt: skip
    register_task("vizwiz", EvalTask(loaders.load_vizwiz, [_formatted("reference", VIZWIZ), PLAIN],
                                     splits=("val",), **vqa))  # fmt: skip
    register_task("gqa", EvalTask(loaders.load_gqa, short, 10, _vqa_parse, _gqa_score,
                                  ("testdev",)))  # fmt: skip
    register_task("pope", EvalTask(loaders.load_pope, [_formatted("llava", SHORT_ANSWER), PLAIN],
                                   10, _pope_parse, _pope_score,
                                   ("random", "popular", "adversarial")))  # fmt: skip
    register_task("mme", EvalTask(loaders.load_mme, short, 10, _mme_parse, _mme_score, ("test",),
                                  metrics.MME_VARIANTS))  # fmt: skip
    grounding = [_formatted("reference", GROUNDING)]
    for name, splits in (
        ("refcoco", ("val", "testA", "testB")),
        ("refcoco+", ("val", "testA", "testB")),
        ("refcocog", ("val", "test")),
    ):
        register_task(name, EvalTask(loaders.load_refer(name), grounding, 30, _rec_parse,
                                     _rec_score, splits))  # fmt: skip
    choice = dict(parser=_choice_parse, scorer=_choice_score, variants=metrics.CHOICE_VARIANTS)
    llava_choice = [Prompt("llava", _llava_choice)]
    register_task("mmbench", EvalTask(loaders.load_choice_tsv(circular=True),
                                      [*llava_choice, Prompt("paper", _paper_mmbench)], 10,
                                      splits=("dev",), **choice))  # fmt: skip
    register_task("seed", EvalTask(loaders.load_choice_tsv(circular=False), llava_choice, 10,
                                   splits=("img",), **choice))  # fmt: skip
    register_task("scienceqa", EvalTask(loaders.load_scienceqa,
                                        [Prompt("reference", _reference_scienceqa),
                                         Prompt("llava", _llava_choice)], 10,
                                        splits=("test",), **choice))  # fmt: skip


_register_all()
