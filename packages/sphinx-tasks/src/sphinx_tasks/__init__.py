"""The text side of SPHINX: conversation templates, task instructions, box formats, converters, metrics."""

from importlib.metadata import version as _version

from . import instructions, metrics
from .foreign import GROUNDING_FORMATS, Mention, convert_grounding, find_mentions
from .geometry import COCO_KEYPOINT_NAMES, Box, Keypoints, Point, SquareFrame
from .labels import token_labels
from .parsing import (
    DetectionParseResult,
    KeypointParseResult,
    ParseResult,
    parse_box_reference,
    parse_boxes,
    parse_detections,
    parse_keypoints,
)
from .templates import (
    Message,
    Rendered,
    Template,
    get_template,
    list_templates,
    normalize_messages,
    register_template,
)
from .textformat import (
    Detection,
    format_box,
    format_boxes,
    format_detections,
    format_keypoints,
    format_point,
)

__version__ = _version("sphinx-tasks")

__all__ = [
    "COCO_KEYPOINT_NAMES",
    "GROUNDING_FORMATS",
    "Box",
    "Detection",
    "DetectionParseResult",
    "KeypointParseResult",
    "Keypoints",
    "Mention",
    "Message",
    "ParseResult",
    "Point",
    "Rendered",
    "SquareFrame",
    "Template",
    "__version__",
    "convert_grounding",
    "find_mentions",
    "format_box",
    "format_boxes",
    "format_detections",
    "format_keypoints",
    "format_point",
    "get_template",
    "instructions",
    "list_templates",
    "metrics",
    "normalize_messages",
    "parse_box_reference",
    "parse_boxes",
    "parse_detections",
    "parse_keypoints",
    "register_template",
    "token_labels",
]
