"""Coordinate maps between original pixels, the padded square and each view.

Three frames:

* pixels: the original image, x right, y down, (0, 0) its top-left corner;
* square: the image padded (centred) to a square of side max(W, H), normalised to [0, 1].
  SPHINX writes its boxes in this frame;
* view i: the region view i shows, normalised to [0, 1].

All maps are per-axis affine, computed in float64. Boxes are (x1, y1, x2, y2), points (x, y);
a tuple in gives a tuple of floats out, an array of shape (..., 4) or (..., 2) an array.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .plan import CanvasPlan

VIEW_KINDS = ("global", "crop")


class ClippedBox(tuple):
    """A box in a view's frame, clipped to [0, 1].

    `clipped` is True when the box reached outside the view; `visible` is False when it was
    clipped to nothing (it lay outside the view and is squashed onto the border).
    """

    clipped: bool
    visible: bool

    def __new__(cls, coords, clipped: bool, visible: bool) -> ClippedBox:
        box = super().__new__(cls, (float(v) for v in coords))
        box.clipped = clipped
        box.visible = visible
        return box


@dataclass(frozen=True)
class ViewGeometry:
    """Where one view sits: `box` is the region it shows, in the padded-square frame."""

    index: int
    kind: str
    row: int
    col: int
    box: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "box": list(self.box)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViewGeometry:
        kind = data["kind"]
        if kind not in VIEW_KINDS:
            raise ValueError(f"view kind {kind!r}: expected one of {VIEW_KINDS}")
        box = tuple(float(v) for v in data["box"])
        if len(box) != 4:
            raise ValueError(f"view box {data['box']!r}: expected 4 numbers")
        return cls(int(data["index"]), kind, int(data["row"]), int(data["col"]), box)


@dataclass(frozen=True)
class Layout:
    """The geometry of one tiled image; JSON-friendly via `to_dict` / `from_dict`."""

    width: int
    height: int
    preset: str
    side: int
    rows: int
    cols: int
    views: tuple[ViewGeometry, ...] = field(default_factory=tuple)

    @property
    def square_side(self) -> int:
        return max(self.width, self.height)

    @property
    def offset(self) -> tuple[int, int]:
        """Where the image's top-left corner sits in the padded square, in pixels."""
        side = self.square_side
        return (side - self.width) // 2, (side - self.height) // 2

    @property
    def n_views(self) -> int:
        return len(self.views)

    @classmethod
    def from_plan(cls, plan: CanvasPlan, preset_name: str) -> Layout:
        side = max(plan.width, plan.height)
        dx, dy = (side - plan.width) // 2, (side - plan.height) // 2
        canvas_w, canvas_h = plan.canvas_size

        def square_box(x1: int, y1: int, x2: int, y2: int) -> tuple[float, ...]:
            px1, py1 = plan.canvas_to_pixels(x1, y1)
            px2, py2 = plan.canvas_to_pixels(x2, y2)
            return ((px1 + dx) / side, (py1 + dy) / side, (px2 + dx) / side, (py2 + dy) / side)

        views = []
        if plan.rows * plan.cols == 1 or plan.has_global_view:
            views.append(ViewGeometry(0, "global", 0, 0, square_box(0, 0, canvas_w, canvas_h)))
        if plan.rows * plan.cols > 1:
            tile = plan.side
            for row in range(plan.rows):
                for col in range(plan.cols):
                    box = square_box(col * tile, row * tile, (col + 1) * tile, (row + 1) * tile)
                    views.append(ViewGeometry(len(views), "crop", row, col, box))
        return cls(plan.width, plan.height, preset_name, plan.side, plan.rows, plan.cols,
                   tuple(views))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "preset": self.preset,
            "side": self.side,
            "rows": self.rows,
            "cols": self.cols,
            "square_side": self.square_side,
            "offset": list(self.offset),
            "n_views": self.n_views,
            "views": [view.to_dict() for view in self.views],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        try:
            layout = cls(
                int(data["width"]),
                int(data["height"]),
                str(data["preset"]),
                int(data["side"]),
                int(data["rows"]),
                int(data["cols"]),
                tuple(ViewGeometry.from_dict(v) for v in data["views"]),
            )
        except KeyError as err:
            raise ValueError(f"layout is missing key {err.args[0]!r}") from None
        for key in ("square_side", "offset", "n_views"):
            if key in data and _plain(data[key]) != _plain(getattr(layout, key)):
                raise ValueError(
                    f"layout key {key!r} is {data[key]!r} but the geometry gives "
                    f"{getattr(layout, key)!r}"
                )
        return layout

    # -- pixels <-> padded square -------------------------------------------------------

    def box_to_square(self, box_px):
        """Pixels -> [0, 1] padded-square frame."""
        return self._affine(box_px, 4, self._pixel_origin(), self.square_side, inverse=True)

    def box_from_square(self, box_sq):
        """[0, 1] padded-square frame -> pixels."""
        return self._affine(box_sq, 4, self._pixel_origin(), self.square_side, inverse=False)

    def point_to_square(self, point_px):
        return self._affine(point_px, 2, self._pixel_origin(), self.square_side, inverse=True)

    def point_from_square(self, point_sq):
        return self._affine(point_sq, 2, self._pixel_origin(), self.square_side, inverse=False)

    # -- padded square <-> views --------------------------------------------------------

    def box_to_view(self, box_sq, view_idx: int) -> ClippedBox:
        """Square frame -> view `view_idx`'s [0, 1] frame, clipped to the view."""
        coords = self._affine(tuple(box_sq), 4, *self._view_frame(view_idx), inverse=True)
        inside = tuple(min(max(v, 0.0), 1.0) for v in coords)
        clipped = inside != coords
        x1, y1, x2, y2 = inside
        visible = not clipped or (x1 != x2 and y1 != y2)
        return ClippedBox(inside, clipped, visible)

    def box_from_view(self, box_view, view_idx: int):
        """View `view_idx`'s [0, 1] frame -> square frame."""
        return self._affine(box_view, 4, *self._view_frame(view_idx), inverse=False)

    def point_to_view(self, point_sq, view_idx: int):
        """Square frame -> view frame (not clipped: points outside the view fall outside [0, 1])."""
        return self._affine(point_sq, 2, *self._view_frame(view_idx), inverse=True)

    def point_from_view(self, point_view, view_idx: int):
        return self._affine(point_view, 2, *self._view_frame(view_idx), inverse=False)

    # -- helpers ------------------------------------------------------------------------

    def _pixel_origin(self) -> tuple[float, float]:
        dx, dy = self.offset
        return -dx, -dy

    def _view_frame(self, view_idx: int) -> tuple[tuple[float, float], tuple[float, float]]:
        if not 0 <= view_idx < self.n_views:
            raise IndexError(f"view index {view_idx} out of range for {self.n_views} views")
        x1, y1, x2, y2 = self.views[view_idx].box
        return (x1, y1), (x2 - x1, y2 - y1)

    @staticmethod
    def _affine(coords, size: int, origin, scale, *, inverse: bool):
        """outer = origin + inner * scale, per axis; `inverse` maps outer -> inner."""
        is_array = isinstance(coords, np.ndarray)
        values = np.asarray(coords, dtype=np.float64)
        if values.shape[-1:] != (size,):
            what = "box (x1, y1, x2, y2)" if size == 4 else "point (x, y)"
            raise ValueError(f"expected a {what}, got {coords!r}")
        scale_xy = np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,))
        origin_xy = np.asarray(origin, dtype=np.float64)
        reps = size // 2
        offset = np.tile(origin_xy, reps)
        factor = np.tile(scale_xy, reps)
        result = (values - offset) / factor if inverse else values * factor + offset
        if is_array:
            return result
        return tuple(float(v) for v in result)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value
