"""Fitting the tiler's views to the side a backbone sees.

SPHINX-Tiny and SPHINX-MoE tile at 512 but run some backbones at 224: each view is resized
(the reference: bicubic in float16). Their 1k variants make those backbones' views from each
image's 1024 canvas instead: the global view is the canvas resized to the side, the crops are
the quarters of the canvas resized to twice the side (`llama_ens5_light`,
`mixtral_sparse_ens5`). The canvas is rebuilt from the image's four 2x2 crop views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import ViewRule


def fit_views(
    views: torch.Tensor, image_index: torch.Tensor | None, rule: ViewRule, dtype: torch.dtype
) -> torch.Tensor:
    """`views` (n, 3, S, S) at `rule.image_size`, in `dtype`. With `rule.views_from_canvas`
    and a grouping (view -> image), five-view images get views from their canvas and
    one-view images are their own canvas; without a grouping each view is resized."""
    side = rule.image_size
    if not rule.views_from_canvas or image_index is None:
        return _resized(views, side, rule, dtype)
    singles, fives = (i.to(views.device) for i in _views_by_count(image_index, len(views)))
    out = views.new_empty(len(views), views.shape[1], side, side, dtype=dtype)
    if len(singles):
        out[singles] = _resized(views[singles], side, rule, dtype)
    if len(fives):
        crops = views[fives[:, 1:]]  # (images, 4, 3, S, S), row-major
        top = torch.cat([crops[:, 0], crops[:, 1]], -1)
        bottom = torch.cat([crops[:, 2], crops[:, 3]], -1)
        canvas = torch.cat([top, bottom], -2)
        out[fives[:, 0]] = _resized(canvas, side, rule, dtype)
        double = _resized(canvas, 2 * side, rule, dtype)
        for k, (row, col) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[fives[:, k + 1]] = double[
                ..., row * side : (row + 1) * side, col * side : (col + 1) * side
            ]
    return out


def _resized(views: torch.Tensor, side: int, rule: ViewRule, dtype: torch.dtype) -> torch.Tensor:
    mode = rule.resize
    if mode is None or views.shape[-2:] == (side, side):
        return views.to(dtype)  # without a resize rule, views of any side go in as they are
    compute = getattr(torch, rule.resize_dtype) if rule.resize_dtype else dtype
    smooth = mode in ("bicubic", "bilinear")
    resized = F.interpolate(
        views.to(compute),
        size=(side, side),
        mode=mode,
        align_corners=False if smooth else None,
        antialias=False,
    )
    return resized.to(dtype)


def _views_by_count(image_index, n_views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The views of one-view images `(k,)` and of five-view images `(m, 5)`, in view order."""
    image_index = torch.as_tensor(image_index).cpu()
    if image_index.shape != (n_views,) or image_index.dtype.is_floating_point:
        raise ValueError(
            f"image_index must be an integer tensor of shape ({n_views},), "
            f"got {image_index.dtype} {tuple(image_index.shape)}"
        )
    order = torch.argsort(image_index, stable=True)
    images, counts = torch.unique_consecutive(image_index[order], return_counts=True)
    groups = torch.split(order, counts.tolist())
    for image, group in zip(images.tolist(), groups, strict=True):
        if len(group) not in (1, 5):
            raise ValueError(
                f"image {image} has {len(group)} views; views_from_canvas expects 1 or 5 "
                "(global + 2x2 crops)"
            )
    singles = [g for g in groups if len(g) == 1]
    fives = [g for g in groups if len(g) == 5]
    return (
        torch.cat(singles) if singles else order[:0],
        torch.stack(fives) if fives else order[:0].view(0, 5),
    )
