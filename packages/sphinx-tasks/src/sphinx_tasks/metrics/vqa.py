"""VQAv2 accuracy with the official answer normalisation, and GQA exact match."""

from __future__ import annotations

import re
from collections.abc import Sequence

# The official evaluator's table, written as "key=value" words.
_CONTRACTIONS = dict(
    pair.split("=")
    for pair in """
aint=ain't arent=aren't cant=can't couldve=could've couldnt=couldn't couldn'tve=couldn’t’ve
couldnt’ve=couldn’t’ve didnt=didn’t doesnt=doesn’t dont=don’t hadnt=hadn’t hadnt’ve=hadn’t’ve
hadn'tve=hadn’t’ve hasnt=hasn’t havent=haven’t hed=he’d hed’ve=he’d’ve he’dve=he’d’ve hes=he’s
howd=how’d howll=how’ll hows=how’s Id’ve=I’d’ve I’dve=I’d’ve Im=I’m Ive=I’ve isnt=isn’t itd=it’d
itd’ve=it’d’ve it’dve=it’d’ve itll=it’ll let’s=let’s maam=ma’am mightnt=mightn’t
mightnt’ve=mightn’t’ve mightn’tve=mightn’t’ve mightve=might’ve mustnt=mustn’t mustve=must’ve
neednt=needn’t notve=not’ve oclock=o’clock oughtnt=oughtn’t ow’s’at=’ow’s’at ’ows’at=’ow’s’at
’ow’sat=’ow’s’at shant=shan’t shed’ve=she’d’ve she’dve=she’d’ve she’s=she’s shouldve=should’ve
shouldnt=shouldn’t shouldnt’ve=shouldn’t’ve shouldn’tve=shouldn’t’ve somebody’d=somebodyd
somebodyd’ve=somebody’d’ve somebody’dve=somebody’d’ve somebodyll=somebody’ll somebodys=somebody’s
someoned=someone’d someoned’ve=someone’d’ve someone’dve=someone’d’ve someonell=someone’ll
someones=someone’s somethingd=something’d somethingd’ve=something’d’ve
something’dve=something’d’ve somethingll=something’ll thats=that’s thered=there’d
thered’ve=there’d’ve there’dve=there’d’ve therere=there’re theres=there’s theyd=they’d
theyd’ve=they’d’ve they’dve=they’d’ve theyll=they’ll theyre=they’re theyve=they’ve twas=’twas
wasnt=wasn’t wed’ve=we’d’ve we’dve=we’d’ve weve=we've werent=weren’t whatll=what’ll whatre=what’re
whats=what’s whatve=what’ve whens=when’s whered=where’d wheres=where's whereve=where’ve whod=who’d
whod’ve=who’d’ve who’dve=who’d’ve wholl=who’ll whos=who’s whove=who've whyll=why’ll whyre=why’re
whys=why’s wont=won’t wouldve=would’ve wouldnt=wouldn’t wouldnt’ve=wouldn’t’ve
wouldn’tve=wouldn’t’ve yall=y’all yall’ll=y’all’ll y’allll=y’all’ll yall’d’ve=y’all’d’ve
y’alld’ve=y’all’d’ve y’all’dve=y’all’d’ve youd=you’d youd’ve=you’d’ve you’dve=you’d’ve
youll=you’ll youre=you’re youve=you’ve
""".split()  # noqa: SIM905
)
_NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = {"a", "an", "the"}
_PUNCTUATION = [
    ";",
    ":",
    "/",
    "'",
    "[",
    "]",
    '"',
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
]
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")


def normalize_punctuation(text: str) -> str:
    """Official rule: a mark next to a space (or any text with 1,000-style numbers) is deleted,
    otherwise replaced by a space; periods not followed by a digit are deleted."""
    out = text
    has_digit_comma = _DIGIT_COMMA_DIGIT.search(text) is not None
    for mark in _PUNCTUATION:
        if mark + " " in text or " " + mark in text or has_digit_comma:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out)


def normalize_digits_articles(text: str) -> str:
    """Lower-case, number words to digits, drop articles, restore contractions."""
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word not in _ARTICLES:
            words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


def normalize_vqa_answer(text: str) -> str:
    """The normalisation the official VQA evaluator applies to a predicted answer."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return normalize_digits_articles(normalize_punctuation(text))


def vqa_accuracy(prediction: str, human_answers: Sequence[str]) -> float:
    """Official VQA accuracy of one answer: the mean, over each human answer left out, of
    min(1, matches among the other humans / 3).

    As in the official evaluator, human answers are only punctuation-normalised when they
    disagree among themselves.
    """
    if not human_answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    predicted = normalize_vqa_answer(prediction)
    answers = list(human_answers)
    if len(set(answers)) > 1:
        answers = [normalize_punctuation(answer) for answer in answers]
    scores = []
    for left_out in range(len(answers)):
        matches = sum(
            1 for i, answer in enumerate(answers) if i != left_out and answer == predicted
        )
        scores.append(min(1.0, matches / 3))
    return sum(scores) / len(scores)


def mean_vqa_accuracy(predictions: Sequence[str], human_answers: Sequence[Sequence[str]]) -> float:
    if len(predictions) != len(human_answers):
        raise ValueError(f"{len(predictions)} predictions but {len(human_answers)} answer lists")
    if not predictions:
        return 0.0
    return sum(map(vqa_accuracy, predictions, human_answers)) / len(predictions)


def gqa_exact_match(prediction: str, answer: str) -> bool:
    """GQA: exact match after lower-casing and dropping a trailing period (as LLaVA's eval does)."""
    return prediction.strip().rstrip(".").lower() == answer.strip().lower()


def gqa_accuracy(predictions: Sequence[str], answers: Sequence[str]) -> float:
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answers")
    if not predictions:
        return 0.0
    return sum(map(gqa_exact_match, predictions, answers)) / len(predictions)
