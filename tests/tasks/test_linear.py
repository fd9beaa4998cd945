"""Every parser is linear in its text: time at 100k characters over time at 25k stays near 4.

A quadratic scan gives 16 and an exponential one never finishes; each time is the best of
three runs, so that a busy machine does not make the ratio up.
"""

import time

import pytest

from sphinx_tasks import (
    GROUNDING_FORMATS,
    convert_grounding,
    find_mentions,
    parse_box_reference,
    parse_boxes,
    parse_detections,
    parse_keypoints,
)

# Unclosed tags (the old lazy `(.*?)` rescanned the rest of the text from each of them), near
# misses of every format, and dense valid output.
PATTERNS = [
    "<p>",
    "<ref>",
    "<phrase>",
    "<p>a",
    "</p>",
    "<p>a</p> ",
    "[0.1,",
    "[0.1 ",
    "<loc_1>",
    "<box>(1,1),(2,2)</box>",
    "{<1><1><1><1>}<delim>",
    "<object><patch_index_0001><patch_index_0002>",
    "<p>x</p> [0.10,0.20,0.30,0.40] ",
]


def _all_parsers(text):
    parse_boxes(text)
    parse_detections(text)
    parse_keypoints(text)
    parse_box_reference(text)
    for fmt in GROUNDING_FORMATS:
        find_mentions(text, fmt)
    convert_grounding(text, "sphinx", "kosmos2", (64, 48))
    convert_grounding(text, "qwen_vl", "sphinx", (64, 48))


def _best_time(text):
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        _all_parsers(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("pattern", PATTERNS)
def test_growth_is_linear(pattern):
    small = pattern * (25_000 // len(pattern))
    large = pattern * (100_000 // len(pattern))
    ratio = _best_time(large) / max(_best_time(small), 1e-4)
    assert ratio < 8, f"{pattern!r}: 4x the text took {ratio:.1f}x the time"
