"""Benchmark scores by the official rules (``variant=`` names the alternatives): REC, VQA,
GQA, POPE, MME, multiple choice."""

from .choice import CHOICE_VARIANTS, choice_accuracy, circular_accuracy, extract_choice
from .rec import THRESHOLDS, RecScore, float32_iou, predicted_box, rec_score, reference_box
from .vqa import (
    VQA_VARIANTS,
    gqa_accuracy,
    gqa_exact_match,
    mean_vqa_accuracy,
    normalize_vqa_answer,
    vqa_accuracy,
)
from .yesno import (
    MME_COGNITION,
    MME_PERCEPTION,
    MME_VARIANTS,
    MmeItem,
    MmeScore,
    PopeScore,
    mme_answer,
    mme_score,
    pope_answer,
    pope_score,
)

__all__ = [
    "CHOICE_VARIANTS",
    "MME_COGNITION",
    "MME_PERCEPTION",
    "MME_VARIANTS",
    "THRESHOLDS",
    "VQA_VARIANTS",
    "MmeItem",
    "MmeScore",
    "PopeScore",
    "RecScore",
    "choice_accuracy",
    "circular_accuracy",
    "extract_choice",
    "float32_iou",
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
    "reference_box",
    "vqa_accuracy",
]
