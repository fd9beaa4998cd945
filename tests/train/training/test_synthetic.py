"""Scene generator options: object counts, unique phrases, task weights, side."""

from __future__ import annotations

import pytest

from sphinx_train.training.config import SourceConfig
from sphinx_train.training.synthetic import SyntheticSource, make_scene, task_cycle


def test_object_count_stays_in_the_asked_range():
    counts = {len(make_scene(seed, min_objects=2, max_objects=3).objects) for seed in range(60)}
    assert counts == {2, 3}


def test_unique_phrases_removes_repeats_that_the_default_allows():
    def repeats(scene):
        phrases = [o.phrase for o in scene.objects]
        return len(phrases) - len(set(phrases))

    # 36 phrases, 4 objects: some of 300 default scenes repeat a phrase (birthday odds ~16%).
    assert sum(repeats(make_scene(seed, min_objects=4)) for seed in range(300)) > 0
    assert all(
        repeats(make_scene(seed, min_objects=4, unique_phrases=True)) == 0 for seed in range(300)
    )


def test_default_options_keep_the_earlier_scenes():
    # The options only change the draws when asked for: explicit defaults give the same scene.
    for seed in range(20):
        assert make_scene(seed).objects == make_scene(
            seed, min_objects=1, max_objects=4, unique_phrases=False
        ).objects


def test_side_sets_the_image_size():
    assert make_scene(1, side=96).image.size == (96, 96)


@pytest.mark.parametrize("low,high", [(0, 2), (3, 2), (1, 5)])
def test_bad_object_counts_are_refused(low, high):
    with pytest.raises(ValueError, match="object counts"):
        make_scene(0, min_objects=low, max_objects=high)


def test_task_cycle_repeats_each_task_by_its_weight():
    assert task_cycle({"rec": 2, "detection": 1, "vqa": 0}) == ("rec", "rec", "detection")
    with pytest.raises(ValueError, match="unknown task 'pose'"):
        task_cycle({"pose": 1})
    with pytest.raises(ValueError, match=r"task_weights.rec: 1.5"):
        task_cycle({"rec": 1.5})
    with pytest.raises(ValueError, match="at least one"):
        task_cycle({"rec": 0})


def _source(**options):
    config = SourceConfig(name="t", kind="synthetic-tasks", size=8, options=options)
    return SyntheticSource(config, seed=3)


def test_source_follows_the_weighted_cycle_and_scene_options():
    source = _source(task_weights={"rec": 1, "detection": 1}, min_objects=2, max_objects=2)
    questions = [source.record(i).text[0]["content"] for i in range(4)]
    rec, detection = "bounding box coordinate of the region", "Detect all objects"
    assert [rec in q for q in questions] == [True, False, True, False]
    assert [detection in q for q in questions] == [False, True, False, True]
    answer = source.record(1).text[1]["content"]
    assert answer.count("0.") >= 8  # two objects, four coordinates each


def test_any_instance_rebuilds_the_same_sample():
    first, second = _source(min_objects=3), _source(min_objects=3)
    assert first.record(5).text == second.record(5).text
    assert first.record(5).image.tobytes() == second.record(5).image.tobytes()


def test_unknown_option_names_the_source_and_the_key():
    with pytest.raises(ValueError, match="source 't' options: unknown colours"):
        _source(colours=3)


def test_rec_all_asks_about_every_object_once_with_its_box():
    from sphinx_train.training.synthetic import task_conversation

    scene = make_scene(5, min_objects=4, max_objects=4, unique_phrases=True)
    turns = task_conversation(scene, "rec-all", seed=3)
    assert [t["role"] for t in turns] == ["user", "assistant"] * 4
    asked = {}
    for question, answer in zip(turns[::2], turns[1::2], strict=True):
        prefix = "Please provide the bounding box coordinate of the region this sentence describes: "
        assert question["content"].startswith(prefix) and question["content"].endswith(".")
        asked[question["content"][len(prefix):-1]] = answer["content"]
    # Each phrase once, answered with that object's box written as SPHINX does.
    assert asked == {
        o.phrase: "[" + ",".join(f"{v:.2f}" for v in o.box) + "]" for o in scene.objects
    }
