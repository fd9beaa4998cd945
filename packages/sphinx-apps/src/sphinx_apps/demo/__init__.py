"""``sphinx-demo``: the whole SPHINX recipe at toy scale on synthetic scenes, ending in a report.

Needs the ``[sphinx]`` extra (sphinx-train). ``run_demo`` is imported on first use, so
``sphinx-demo --help`` starts without torch.
"""

from __future__ import annotations

__all__ = ["run_demo"]


def __getattr__(name: str):
    if name != "run_demo":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .run import run_demo

    return run_demo
