"""The text side of SPHINX: conversation templates, task instructions, box formats, converters, metrics.

Public names are imported on first use (module ``__getattr__``), so ``sphinx-tasks --help`` and
``--version`` do not load the parsers, converters or metrics.
"""

from importlib import import_module
from importlib.metadata import version as _version

__version__ = _version("sphinx-tasks")

# public name -> module that defines it (a module itself when the name is a submodule)
_HOMES = {
    "instructions": ".instructions",
    "metrics": ".metrics",
    **dict.fromkeys(
        (
            "GROUNDING_FORMATS",
            "GroundingConversion",
            "GroundingFormat",
            "Mention",
            "convert_grounding",
            "convert_grounding_result",
            "find_mentions",
            "get_grounding_format",
            "list_grounding_formats",
            "register_grounding_format",
        ),
        ".foreign",
    ),
    **dict.fromkeys(
        ("COCO_KEYPOINT_NAMES", "Box", "Keypoints", "Point", "SquareFrame"), ".geometry"
    ),
    **dict.fromkeys(
        ("Instruction", "get_instruction", "list_instructions", "register_instruction"),
        ".instructions",
    ),
    "token_labels": ".labels",
    **dict.fromkeys(
        (
            "DetectionParseResult",
            "KeypointParseResult",
            "ParseResult",
            "parse_box_reference",
            "parse_boxes",
            "parse_detections",
            "parse_keypoints",
        ),
        ".parsing",
    ),
    **dict.fromkeys(
        (
            "Message",
            "Rendered",
            "Template",
            "get_template",
            "list_templates",
            "normalize_messages",
            "register_template",
        ),
        ".templates",
    ),
    **dict.fromkeys(
        (
            "Detection",
            "format_box",
            "format_boxes",
            "format_detections",
            "format_keypoints",
            "format_point",
        ),
        ".textformat",
    ),
    "UnknownNameError": "._house",
}

__all__ = sorted([*_HOMES, "__version__"])


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sphinx_tasks' has no attribute {name!r}")
    module = import_module(home, __name__)
    value = module if home.lstrip(".") == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
