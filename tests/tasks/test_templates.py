import dataclasses
import json

import pytest

from sphinx_tasks import (
    Template,
    UnknownNameError,
    get_template,
    list_templates,
    register_template,
)

SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


def test_sphinx_matches_reference_layout():
    messages = [
        {"from": "human", "value": "<image>\nWhat is this?"},
        {"from": "gpt", "value": "A cat."},
        {"from": "human", "value": "Where?"},
        {"from": "gpt", "value": "On a mat."},
    ]
    rendered = get_template("sphinx").render(messages)
    expected = (
        SYSTEM
        + "\n\n###"
        + " Human: What is this?\n###"
        + " Assistant: A cat.\n###"
        + " Human: Where?\n###"
        + " Assistant: On a mat.\n###"
    )
    assert rendered.text == expected
    # the reference supervises the tokens of encode(message + "\n###"), whose first piece
    # carries the space that ends " Assistant: ": the span starts at that space
    assert rendered.supervised_text() == [" A cat.\n###", " On a mat.\n###"]


def test_sphinx_prompt_keeps_the_question_as_given():
    # the reference's inference builds " " + role + ": " + message + "\n###" from the raw text
    question = "<image>\n  What is this? "
    rendered = get_template("sphinx").render(
        [{"role": "user", "content": question}], add_generation_prompt=True
    )
    assert rendered.text == SYSTEM + "\n\n###" + " Human: " + question + "\n###" + " Assistant:"
    history = get_template("sphinx").render(
        [
            {"role": "user", "content": " <image> Hi "},
            {"role": "assistant", "content": " Yo "},
            {"role": "user", "content": "More? "},
            {"role": "assistant", "content": None},
        ]
    )
    assert history.text.endswith(
        "### Human:  <image> Hi \n### Assistant:  Yo \n### Human: More? \n### Assistant:"
    )


def test_sphinx_training_render_strips_every_message():
    # reference trainer: value.replace("<image>", "").strip() for every message
    rendered = get_template("sphinx").render(
        [
            {"from": "human", "value": "  What <image>is it?\n"},
            {"from": "gpt", "value": "\t42 \n"},
        ]
    )
    assert rendered.text == SYSTEM + "\n\n### Human: What is it?\n### Assistant: 42\n###"
    assert rendered.supervised_text() == [" 42\n###"]


def test_overlap_rules_keep_the_project_behaviour():
    overlap = dataclasses.replace(get_template("sphinx"), label_rules="overlap")
    rendered = overlap.render(
        [{"role": "user", "content": " a "}, {"role": "assistant", "content": "b"}]
    )
    assert rendered.text.endswith("### Human:  a \n### Assistant: b\n###")
    assert rendered.supervised_text() == ["b\n###"]
    with pytest.raises(ValueError, match="label_rules='nope'"):
        dataclasses.replace(overlap, label_rules="nope")


def test_sphinx_generation_prompt_and_stop_string():
    template = get_template("sphinx")
    rendered = template.render([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert rendered.text == SYSTEM + "\n\n### Human: Hi\n### Assistant:"
    assert rendered.supervised_spans == []
    assert template.stop_strings == ("###",)


def test_open_assistant_turn_given_as_none():
    rendered = get_template("sphinx").render(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]
    )
    assert rendered.text.endswith("### Human: Hi\n### Assistant:")


def test_image_marker_removed_and_stripped_like_reference():
    rendered = get_template("sphinx").render([{"role": "user", "content": "  Look <image>\n"}])
    assert " Human: Look\n###" in rendered.text
    llava = get_template("llava_v1").render(
        [{"role": "user", "content": "<image>\nQ?"}], add_generation_prompt=True
    )
    assert llava.text == SYSTEM + " USER: Q? ASSISTANT:"


def test_system_message_overrides_default():
    rendered = get_template("sphinx").render(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert rendered.text == "Be brief.\n\n### Human: Hi\n###"


def test_llava_v1_layout():
    rendered = get_template("llava_v1").render(
        [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]
    )
    assert rendered.text == SYSTEM + " USER: Q? ASSISTANT: A.</s>"
    assert rendered.supervised_text() == ["A.</s>"]


def test_plain_keeps_only_caption():
    rendered = get_template("plain").render(
        [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "a dog"}]
    )
    assert rendered.text == "a dog\n"
    assert rendered.supervised_spans == [(0, 6)]


def test_register_custom_template_from_json():
    data = json.loads(
        '{"name": "test-chatml-like", "user_prefix": "<u>", "user_end": "</u>",'
        ' "assistant_prefix": "<a>", "assistant_end": "</a>", "generation_prompt": "<a>",'
        ' "stop_strings": ["</a>"]}'
    )
    register_template("test-chatml-like", Template.from_dict(data))
    assert "test-chatml-like" in list_templates()
    rendered = get_template("test-chatml-like").render(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    )
    assert rendered.text == "<u>x</u><a>y</a>"
    assert rendered.supervised_spans == [(11, 16)]  # "<u>x</u><a>" is 11 characters
    with pytest.raises(ValueError, match="already registered"):
        register_template(Template.from_dict(data))


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([{"speaker": "x"}], "'role' or 'from'"),
        ([{"role": "robot", "content": "x"}], "unknown role 'robot'"),
        ([{"role": "user", "content": None}], "only the last assistant"),
        ([{"role": "user", "content": 3}], "must be a string"),
    ],
)
def test_bad_messages_are_named(messages, match):
    with pytest.raises(ValueError, match=match):
        get_template("sphinx").render(messages)


def test_unknown_template_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match=r"unknown template 'nope'; known: .*llava_v1"):
        get_template("nope")
    with pytest.raises(KeyError):  # still a KeyError (and a ValueError) for older callers
        get_template("nope")


def test_registry_idiom():
    assert list_templates("llava*") == ["llava_v1"]
    assert {"sphinx", "plain", "llava_v1"} <= set(list_templates())
    copy = register_template("test-sphinx-copy", get_template("sphinx"))
    assert copy.name == "test-sphinx-copy" and get_template("test-sphinx-copy") is copy
    with pytest.raises(ValueError, match="already registered"):
        register_template("test-sphinx-copy", get_template("plain"))
    replaced = register_template("test-sphinx-copy", get_template("plain"), overwrite=True)
    assert get_template("test-sphinx-copy") is replaced
    assert replaced.assistant_end == "\n"
