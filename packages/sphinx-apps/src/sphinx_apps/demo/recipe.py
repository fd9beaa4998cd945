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


def _recipe(stage1_steps: int, stage2_steps: int, **sizes) -> Recipe:
    """The demo's configs (sphinx-demo model; demo-stage2 holds the SPHINX-1k caption views)."""
    return Recipe(
        stage1_real=StageRecipe("demo-stage1", stage1_steps),
        stage1_syn=StageRecipe("demo-stage1", stage1_steps, _SYNTHETIC_CAPTIONS),
        stage2=StageRecipe("demo-stage2", stage2_steps),
        **sizes,
    )


FULL = _recipe(60, 1000, eval_scenes=64, detection_scenes=16, mix_captions=24, app_scenes=4,
               curve_points=3, curve_scenes=32)
QUICK = _recipe(12, 240, eval_scenes=24, detection_scenes=6, mix_captions=8, app_scenes=2,
                curve_points=2, curve_scenes=12)
