"""The demo's recipe in one place: which trainer configs each stage runs, and for how long.

Swapping in a better recipe is an edit of ``FULL`` (or ``QUICK``) only: the pipeline reads
nothing else. The configs are sphinx-train built-ins (``sphinx-train fit --list``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageRecipe:
    """A built-in training config, ``--set``-style overrides, and the number of steps."""

    config: str
    steps: int
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recipe:
    stage1_real: StageRecipe
    stage1_syn: StageRecipe  # continued from theta_real
    stage2: StageRecipe  # started from theta_mix
    eval_scenes: int  # held-out REC / VQA questions
    detection_scenes: int
    mix_captions: int  # held-out captions per domain for the mix table
    app_scenes: int
    curve_points: int  # REC accuracy measured this many times during stage 2
    curve_scenes: int
    beta: float = 0.5  # theta_mix = beta * theta_real + (1 - beta) * theta_syn


# Stage 1 on synthetic captions: the same config with the caption source's style switched.
_SYNTHETIC_CAPTIONS = (
    "data.streams.0.sources.0.name=scenes-syn",
    "data.streams.0.sources.0.style=synthetic",
)
# Part of stage 2 (a small caption source) through SPHINX-1k views (global + 2x2 crops), so the
# high-resolution path runs; five views of 291 tokens need a longer max_length.
_ONE_K_VIEWS = (
    "data.streams.0.sources.1.tiling=sphinx-1k",
    "data.streams.0.sources.1.size=64",
    "data.max_length=2048",
)

FULL = Recipe(
    stage1_real=StageRecipe("nano-stage1", 60),
    stage1_syn=StageRecipe("nano-stage1", 60, _SYNTHETIC_CAPTIONS),
    stage2=StageRecipe("nano-stage2", 300, _ONE_K_VIEWS),
    eval_scenes=48,
    detection_scenes=16,
    mix_captions=24,
    app_scenes=4,
    curve_points=3,
    curve_scenes=24,
)

QUICK = Recipe(
    stage1_real=StageRecipe("nano-stage1", 12),
    stage1_syn=StageRecipe("nano-stage1", 12, _SYNTHETIC_CAPTIONS),
    stage2=StageRecipe("nano-stage2", 60, _ONE_K_VIEWS),
    eval_scenes=24,
    detection_scenes=6,
    mix_captions=8,
    app_scenes=2,
    curve_points=2,
    curve_scenes=12,
)
