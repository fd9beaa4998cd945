"""Synthetic scenes, webdataset shards, length grouping."""

from __future__ import annotations

from sphinx_train.training.data.sources import ShardSource
from sphinx_train.training.synthetic import (
    COLOURS,
    make_scene,
    synthetic_caption,
    task_conversation,
)

from .conftest import scene_members, write_shard


def test_scene_boxes_hold_their_shapes():
    for seed in range(20):
        scene = make_scene(seed, side=112)
        last = scene.objects[-1]  # drawn last, so nothing covers it
        x1, y1, x2, y2 = (value * 111 for value in last.box)
        y = (y1 + 3 * y2) / 4 if last.kind == "triangle" else (y1 + y2) / 2
        pixel = scene.image.getpixel((round((x1 + x2) / 2), round(y)))
        assert pixel == COLOURS[last.colour], (seed, last)
        assert 1 <= len(scene.objects) <= 4


def test_tasks_use_the_sphinx_instructions_and_box_format():
    scene = make_scene(5)
    question, answer = (turn["content"] for turn in task_conversation(scene, "rec", seed=1))
    assert question.startswith("Please provide the bounding box coordinate of the region")
    x1, y1, x2, y2 = (float(v) for v in answer.strip("[]").split(","))
    assert any((x1, y1, x2, y2) == o.box for o in scene.objects)
    assert synthetic_caption(scene).startswith("The image shows ")


def test_shards_skip_and_count_corrupt_members(tmp_path):
    members = scene_members(0, 3)
    members[2] = ("00001.png", b"not a png", "")  # corrupt image
    members.append(("00009.txt", b"caption without image", ""))  # incomplete pair
    write_shard(tmp_path / "a.tar", members)
    (tmp_path / "b.tar").write_bytes(b"truncated tar")  # unreadable shard
    source = ShardSource(type("C", (), {"name": "s", "tiling": None, "path": str(tmp_path)}))
    assert len(source) == 3 and source.shards.corrupt == 1
    assert source.shards.missing_shards == [str(tmp_path / "b.tar")]
    records = [source.record(i) for i in range(3)]
    assert records[1] is None and source.shards.corrupt == 2
    assert records[0].image.size == (224, 224)
    assert records[2].text == members[5][1].decode()


def test_length_groups_balance_true_token_counts():
    from sphinx_train.training.data.encode import EncodedSample, length_groups

    items = [EncodedSample(None, "s", tokens, 1) for tokens in (300, 5, 290, 7, 6, 310)]
    groups = length_groups(items, 2)
    assert [sorted(i.tokens for i in g) for g in groups] == [[5, 6, 7], [290, 300, 310]]
