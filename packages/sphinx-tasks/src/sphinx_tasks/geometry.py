"""Boxes, points and keypoints, and the map between image pixels and SPHINX's padded square."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


@dataclass(frozen=True)
class Box:
    """Axis-aligned box (x1, y1) top-left, (x2, y2) bottom-right, in any one frame."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Box:
        return cls(x, y, x + w, y + h)

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)

    def ordered(self) -> Box:
        """The same box with corners swapped where x1 > x2 or y1 > y2."""
        return Box(
            min(self.x1, self.x2),
            min(self.y1, self.y2),
            max(self.x1, self.x2),
            max(self.y1, self.y2),
        )

    def clipped(self, low: float = 0.0, high: float = 1.0) -> Box:
        return Box(*(min(high, max(low, v)) for v in self.as_tuple()))

    def scaled(self, sx: float, sy: float | None = None) -> Box:
        sy = sx if sy is None else sy
        return Box(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def iou(self, other: Box) -> float:
        inter_w = min(self.x2, other.x2) - max(self.x1, other.x1)
        inter_h = min(self.y2, other.y2) - max(self.y1, other.y1)
        if inter_w <= 0 or inter_h <= 0:
            return 0.0
        inter = inter_w * inter_h
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Point:
    x: float
    y: float

    def as_tuple(self) -> tuple[float, float]:
        return (self.x, self.y)


@dataclass(frozen=True)
class Keypoints:
    """Named keypoints of one person; names are COCO's 17, missing ones are simply absent."""

    points: Mapping[str, Point] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [name for name in self.points if name not in COCO_KEYPOINT_NAMES]
        if unknown:
            raise ValueError(f"unknown keypoint names {unknown}; expected COCO names")
        ordered = {name: self.points[name] for name in COCO_KEYPOINT_NAMES if name in self.points}
        object.__setattr__(self, "points", ordered)

    @classmethod
    def from_coco(cls, flat: Sequence[float], min_visibility: int = 1) -> Keypoints:
        """From COCO's flat [x, y, v] * 17 list; points with v < min_visibility are dropped."""
        if len(flat) != 3 * len(COCO_KEYPOINT_NAMES):
            raise ValueError(f"COCO keypoints need 51 numbers, got {len(flat)}")
        points = {}
        for index, name in enumerate(COCO_KEYPOINT_NAMES):
            x, y, visibility = flat[3 * index : 3 * index + 3]
            if visibility >= min_visibility:
                points[name] = Point(float(x), float(y))
        return cls(points)

    def __len__(self) -> int:
        return len(self.points)

    def items(self) -> Iterable[tuple[str, Point]]:
        return self.points.items()


@dataclass(frozen=True)
class SquareFrame:
    """Pixels of a W x H image <-> [0, 1] coordinates of its centred, padded square.

    The square side is max(W, H); the image sits at offset ((S - W) // 2, (S - H) // 2), the
    integer offsets the reference padding uses.
    """

    width: int
    height: int

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def side(self) -> int:
        return max(self.width, self.height)

    @property
    def offset(self) -> tuple[int, int]:
        return ((self.side - self.width) // 2, (self.side - self.height) // 2)

    def point_to_square(self, point: Point) -> Point:
        dx, dy = self.offset
        return Point((point.x + dx) / self.side, (point.y + dy) / self.side)

    def point_from_square(self, point: Point) -> Point:
        dx, dy = self.offset
        return Point(point.x * self.side - dx, point.y * self.side - dy)

    def box_to_square(self, box: Box) -> Box:
        a = self.point_to_square(Point(box.x1, box.y1))
        b = self.point_to_square(Point(box.x2, box.y2))
        return Box(a.x, a.y, b.x, b.y)

    def box_from_square(self, box: Box) -> Box:
        a = self.point_from_square(Point(box.x1, box.y1))
        b = self.point_from_square(Point(box.x2, box.y2))
        return Box(a.x, a.y, b.x, b.y)

    def box_to_image(self, box: Box) -> Box:
        """Square-frame [0, 1] box -> [0, 1] relative to the unpadded image (other models' frame)."""
        pixels = self.box_from_square(box)
        return pixels.scaled(1 / self.width, 1 / self.height)

    def box_from_image(self, box: Box) -> Box:
        """[0, 1] box relative to the unpadded image -> square-frame [0, 1] box."""
        return self.box_to_square(box.scaled(self.width, self.height))

    def keypoints_to_square(self, keypoints: Keypoints) -> Keypoints:
        return Keypoints({name: self.point_to_square(p) for name, p in keypoints.items()})
