import pytest

from sphinx_tasks import Box
from sphinx_tasks.metrics import (
    MmeItem,
    choice_accuracy,
    extract_choice,
    gqa_accuracy,
    mean_vqa_accuracy,
    mme_answer,
    mme_score,
    normalize_vqa_answer,
    pope_score,
    rec_score,
    vqa_accuracy,
)


def test_rec_strict_and_robust():
    sizes = [(200, 100)] * 3
    targets = [Box(0, 0, 100, 50)] * 3  # in the 200-px square: (0, 50, 100, 100)
    answers = [
        "[0.00,0.25,0.50,0.50]",  # exact: IoU 1
        "[0.00,0.25,0.25,0.50]",  # half of it: IoU 0.5
        "<p>x</p> [0.00, 0.25, 0.50, 0.50",  # right box, but only the robust parse reads it
    ]
    strict = rec_score(answers, targets, sizes)
    assert strict.ious == pytest.approx([1.0, 0.5, 0.0])
    assert strict.accuracy == pytest.approx(2 / 3)
    assert strict.mean_iou == pytest.approx(0.5)
    robust = rec_score(answers, targets, sizes, parse="robust", threshold=0.75)
    assert robust.ious == pytest.approx([1.0, 0.5, 1.0])
    assert robust.accuracy == pytest.approx(2 / 3)


def test_vqa_accuracy_leave_one_out():
    assert vqa_accuracy("Yes.", ["yes"] * 10) == 1.0
    # 2 of 10 humans: two subsets see 1 match (1/3), eight see 2 (2/3) -> 0.6
    answers = ["cat", "cat"] + ["dog"] * 8
    assert vqa_accuracy("cat", answers) == pytest.approx(0.6)
    # 3 humans: the 3 subsets without one of them see 2 matches -> (3 * 2/3 + 7 * 1) / 10 = 0.9
    assert vqa_accuracy("two", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)
    assert vqa_accuracy("fish", answers) == 0.0


def test_vqa_normalisation_rules():
    assert normalize_vqa_answer("Two") == "2"
    assert normalize_vqa_answer("The dog") == "dog"
    assert normalize_vqa_answer("an apple.") == "apple"
    assert normalize_vqa_answer("3.5") == "3.5"
    assert normalize_vqa_answer("1,000") == "1000"
    assert normalize_vqa_answer("yes, sir") == "yes sir"
    assert normalize_vqa_answer("left/right") == "left right"
    assert normalize_vqa_answer("dont") == "don’t"
    assert normalize_vqa_answer("  red\n") == "red"


def test_vqa_unanimous_humans_are_not_normalised():
    # Official quirk: with one distinct human answer it is compared as written, while the
    # prediction "dog's" becomes "dog s" -> no match at all.
    assert vqa_accuracy("dog's", ["dog's"] * 10) == 0.0
    # When humans disagree, their answers are punctuation-normalised too.
    assert vqa_accuracy("dog's", ["dog's"] * 9 + ["dog"]) == pytest.approx(1.0)
    assert mean_vqa_accuracy(["yes", "no"], [["yes"] * 10, ["yes"] * 10]) == 0.5


def test_gqa_exact_match():
    assert gqa_accuracy(["Yes.", "left", "the table"], ["yes", "right", "table"]) == pytest.approx(
        1 / 3
    )


def test_pope_hand_computed():
    predictions = ["Yes, there is.", "No.", "There is not a dog.", "yes", "I think so", "no"]
    labels = ["yes", "yes", "no", "no", "yes", "no"]
    # read as: yes, no, no, yes, yes, no -> TP 2, FN 1, TN 2, FP 1
    score = pope_score(predictions, labels)
    assert score.accuracy == pytest.approx(4 / 6)
    assert score.precision == pytest.approx(2 / 3)
    assert score.recall == pytest.approx(2 / 3)
    assert score.f1 == pytest.approx(2 / 3)
    assert score.yes_ratio == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="label 0"):
        pope_score(["yes"], ["maybe"])


def test_pope_all_no_has_zero_precision():
    score = pope_score(["no", "no"], ["yes", "no"])
    assert (score.precision, score.recall, score.f1, score.accuracy) == (0.0, 0.0, 0.0, 0.5)


def test_mme_answer_reading():
    assert mme_answer("Yes.") == "yes"
    assert mme_answer("No, it is not") == "no"
    assert mme_answer("not sure") == "no"  # "no" in "not " (first 4 characters)
    assert mme_answer("The answer is yes") == "other"


def test_mme_scores():
    items = [
        MmeItem("existence", "a.jpg", "Yes", "Yes"),
        MmeItem("existence", "a.jpg", "No", "No"),
        MmeItem("existence", "b.jpg", "Yes", "Yes"),
        MmeItem("existence", "b.jpg", "Yes", "No"),
        MmeItem("code_reasoning", "c.png", "Maybe", "Yes"),
        MmeItem("code_reasoning", "c.png", "no", "No"),
    ]
    score = mme_score(items)
    # existence: acc 3/4 -> 75, acc+ 1/2 -> 50; code: acc 1/2 -> 50, acc+ 0
    assert score.subtasks == pytest.approx({"existence": 125.0, "code_reasoning": 50.0})
    assert score.perception == pytest.approx(125.0)
    assert score.cognition == pytest.approx(50.0)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", "B"),
        ("(C) a dog", "C"),
        ("D. The red one", "D"),
        ("The answer is A.", "A"),
        ("I pick option (B)", "B"),
        ("dog", "B"),
        ("none of them", None),
        ("E", None),
    ],
)
def test_extract_choice(answer, expected):
    assert extract_choice(answer, ["cat", "dog", "bird", "fish"]) == expected


def test_choice_accuracy():
    assert choice_accuracy(["A", "b) x", "C."], ["A", "B", "D"]) == pytest.approx(1 / 3)
