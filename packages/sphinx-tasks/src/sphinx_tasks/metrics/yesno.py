"""Yes/no benchmarks: POPE and MME, each with its official answer reading."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ._variants import check_variant

MME_PERCEPTION = (
    "existence",
    "count",
    "position",
    "color",
    "posters",
    "celebrity",
    "scene",
    "landmark",
    "artwork",
    "OCR",
)
MME_COGNITION = (
    "commonsense_reasoning",
    "numerical_calculation",
    "text_translation",
    "code_reasoning",
)


def pope_answer(text: str) -> str:
    """POPE's reading (RUCAIBox/POPE): first sentence, commas dropped, split on spaces; 'no' if
    a word is No, no or not, else 'yes'."""
    first_sentence = text.split(".")[0] if "." in text else text
    words = first_sentence.replace(",", "").split(" ")
    return "no" if {"No", "no", "not"} & set(words) else "yes"


@dataclass(frozen=True)
class PopeScore:
    accuracy: float
    precision: float
    recall: float
    f1: float
    yes_ratio: float
    count: int


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def pope_score(predictions: Sequence[str], labels: Sequence[str]) -> PopeScore:
    """Labels are 'yes'/'no'; 'yes' is the positive class. The yes-ratio is the share of
    *predictions* read as yes (lmms-eval reports the labels' share instead)."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels")
    said_yes = [pope_answer(p) == "yes" for p in predictions]
    is_yes = []
    for index, label in enumerate(labels):
        if label.strip().lower() not in ("yes", "no"):
            raise ValueError(f"label {index}: expected 'yes' or 'no', got {label!r}")
        is_yes.append(label.strip().lower() == "yes")
    tp = sum(p and t for p, t in zip(said_yes, is_yes, strict=True))
    fp = sum(p and not t for p, t in zip(said_yes, is_yes, strict=True))
    fn = sum(t and not p for p, t in zip(said_yes, is_yes, strict=True))
    tn = len(labels) - tp - fp - fn
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return PopeScore(
        accuracy=_ratio(tp + tn, len(labels)),
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
        yes_ratio=_ratio(sum(said_yes), len(labels)),
        count=len(labels),
    )


MME_VARIANTS = ("official", "lmms-eval")


def mme_answer(text: str, variant: str = "official") -> str:
    """MME's reading: 'yes'/'no' if that is the whole (lower-cased) answer, else whichever of
    them appears in its first 4 characters, else 'other'.

    The official tool (and the reference) read the text as generated; ``"lmms-eval"`` first
    strips it and deletes every ".", and reads a lone "y" / "n" as yes / no.
    """
    check_variant(variant, MME_VARIANTS)
    answer = text.lower()
    if variant == "lmms-eval":
        answer = answer.strip().replace(".", "")
        if len(answer) == 1:
            return {"y": "yes", "n": "no"}.get(answer, "other")
    if answer in ("yes", "no"):
        return answer
    prefix = answer[:4]
    if "yes" in prefix:
        return "yes"
    if "no" in prefix:
        return "no"
    return "other"


@dataclass(frozen=True)
class MmeScore:
    subtasks: dict[str, float]
    perception: float
    cognition: float


@dataclass(frozen=True)
class MmeItem:
    subtask: str
    image: str
    prediction: str
    label: str


def mme_score(items: Sequence[MmeItem], variant: str = "official") -> MmeScore:
    """Per subtask 100*acc + 100*acc+ (acc+: share of images with both questions right).

    Questions are paired by image, not by their position in a list as the reference does.
    """
    per_task: dict[str, list[bool]] = defaultdict(list)
    per_image: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for item in items:
        correct = mme_answer(item.prediction, variant) == item.label.strip().lower()
        per_task[item.subtask].append(correct)
        per_image[(item.subtask, item.image)].append(correct)
    subtasks = {}
    for task, results in per_task.items():
        images = [all(r) for (t, _), r in per_image.items() if t == task]
        subtasks[task] = 100 * sum(results) / len(results) + 100 * sum(images) / len(images)
    return MmeScore(
        subtasks=subtasks,
        perception=sum(subtasks.get(t, 0.0) for t in MME_PERCEPTION),
        cognition=sum(subtasks.get(t, 0.0) for t in MME_COGNITION),
    )
