"""`gather_views` on arbitrary view-to-image assignments (no model involved)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sphinx_encoders import gather_views


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.integers(0, 2))
def test_rows_are_each_images_views_in_order(image_index, extra_images):
    per_view, dim = 3, 2
    tokens = torch.arange(len(image_index) * per_view * dim, dtype=torch.float32)
    tokens = tokens.view(len(image_index), per_view, dim)
    n_images = max(image_index) + 1 + extra_images
    out = gather_views(tokens, torch.tensor(image_index), n_images=n_images)
    longest = max(image_index.count(i) for i in range(n_images)) * per_view
    assert out.embeds.shape == (n_images, longest, dim)
    for image in range(n_images):
        views = [v for v, owner in enumerate(image_index) if owner == image]
        length = len(views) * per_view
        assert out.lengths[image] == length
        expected = tokens[views].reshape(length, dim)
        assert torch.equal(out.embeds[image, :length], expected)
        assert out.mask[image, :length].all() and not out.mask[image, length:].any()
