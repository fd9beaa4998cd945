"""Benchmark scores: REC, VQA, GQA, POPE, MME, multiple choice."""

from .choice import choice_accuracy, extract_choice
from .rec import RecScore, predicted_box, rec_score
from .vqa import (
    gqa_accuracy,
    gqa_exact_match,
    mean_vqa_accuracy,
    normalize_vqa_answer,
    vqa_accuracy,
)
from .yesno import (
    MME_COGNITION,
    MME_PERCEPTION,
    MmeItem,
    MmeScore,
    PopeScore,
    mme_answer,
    mme_score,
    pope_answer,
    pope_score,
)

__all__ = [
    "MME_COGNITION",
    "MME_PERCEPTION",
    "MmeItem",
    "MmeScore",
    "PopeScore",
    "RecScore",
    "choice_accuracy",
    "extract_choice",
    "gqa_accuracy",
    "gqa_exact_match",
    "mean_vqa_accuracy",
    "mme_answer",
    "mme_score",
    "normalize_vqa_answer",
    "pope_answer",
    "pope_score",
    "predicted_box",
    "rec_score",
    "vqa_accuracy",
]
