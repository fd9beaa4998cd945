"""Fixed 2-D sin-cos positions on the projected patch tokens (``patch_positions``)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sphinx_encoders import create_encoder, get_encoder_config
from sphinx_encoders.config import ConfigError, EncoderConfig
from sphinx_encoders.mixed import sincos_2d_positions

R = math.sqrt(0.5)


def test_two_by_two_grid_four_channels_by_hand():
    # One frequency (1): cell centres at pi/4 and 3pi/4; channels sin x, cos x, sin y, cos y.
    expected = torch.tensor(
        [
            [R, R, R, R],  # row 0, column 0
            [R, -R, R, R],  # row 0, column 1: x = 3pi/4
            [R, R, R, -R],  # row 1, column 0: y = 3pi/4
            [R, -R, R, -R],
        ]
    )
    torch.testing.assert_close(sincos_2d_positions(2, 4), expected)


def test_frequencies_fall_by_a_factor_100_across_a_quarter():
    table = sincos_2d_positions(3, 8)  # two frequencies: 1 and 100 ** -0.5 = 0.1
    x = 2.5 * math.pi / 2  # column 2 of row 0
    expected_row = [math.sin(x), math.sin(0.1 * x), math.cos(x), math.cos(0.1 * x)]
    y = 0.5 * math.pi / 2
    expected_row += [math.sin(y), math.sin(0.1 * y), math.cos(y), math.cos(0.1 * y)]
    torch.testing.assert_close(table[2], torch.tensor(expected_row))


def test_width_not_divisible_by_four_is_refused():
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_2d_positions(7, 30)


def _demo(positions: str) -> EncoderConfig:
    return dataclasses.replace(get_encoder_config("sphinx-demo"), patch_positions=positions)


def test_positions_are_added_to_grid_cells_only():
    torch.manual_seed(0)
    plain = create_encoder(_demo("none"), llm_dim=32)
    placed = create_encoder(_demo("sincos-2d"), llm_dim=32)
    placed.load_state_dict(plain.state_dict())  # same weights: the table is not a weight
    assert set(placed.state_dict()) == set(plain.state_dict())
    views = torch.randn(2, 3, 224, 224)
    difference = placed.encode_views(views) - plain.encode_views(views)
    # [start | CLS | 7 x 7 cells | end]: start, CLS and end unchanged, the cells get the table.
    assert difference[:, :2].abs().max() == 0 and difference[:, -1].abs().max() == 0
    torch.testing.assert_close(difference[:, 2:-1], sincos_2d_positions(7, 32).expand(2, -1, -1))


def test_config_round_trip_and_bad_value():
    config = _demo("sincos-2d")
    assert EncoderConfig.from_dict(config.to_dict()).patch_positions == "sincos-2d"
    with pytest.raises(ConfigError, match="patch_positions 'learned'; expected one of none"):
        _demo("learned")


def test_grid_without_cls_is_refused():
    # The Q-Former alone has no patch grid to place.
    config = dataclasses.replace(get_encoder_config("sphinx-tiny"), patch_encoders=[],
                                 patch_positions="sincos-2d")
    with pytest.raises(ValueError, match="square grid"):
        create_encoder(config, llm_dim=32)
