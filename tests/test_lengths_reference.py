"""X and Bluesky lengths against the reference implementations themselves.

A seeded corpus of several thousand texts (tests/reference/corpus.py, made here, never
committed) is counted by tminus and by the npm packages ``twitter-text@3.1.0``
(``parseTweet``) and ``@atproto/api`` (``RichText.graphemeLength``), run once by Node
for the whole session.  Any difference fails, listed.  Node and the packages are
installed by ``scripts/test-prereqs`` (the first step of ``make test``); when they are
missing the tests fail with what to run, they are never skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from content.rules import bluesky_length, x_data, x_is_valid, x_weighted_length
from tests.reference import regen
from tests.reference.corpus import corpus
from tests.reference.node import Reference, ReferenceMissing, reference_data, reference_lengths

# Every emoji of the committed data on its own, and the text-default ones before U+FE0E
# (where they are no emoji): that the reference gives each the weight of one emoji is
# what shows the data, matched longest first, is twemoji-parser's own matching.
EMOJI_TEXTS = sorted(x_data.EMOJI | x_data.EMOJI_UNLESS_FE0E)
EMOJI_FE0E_TEXTS = [emoji + "\ufe0e" for emoji in sorted(x_data.EMOJI_UNLESS_FE0E)]


@pytest.fixture(scope="session")
def answers() -> dict[str, Reference]:
    texts = list(dict.fromkeys(corpus() + EMOJI_TEXTS + EMOJI_FE0E_TEXTS))
    try:
        return dict(zip(texts, reference_lengths(texts), strict=True))
    except ReferenceMissing as e:
        pytest.fail(str(e))


def _report(mismatches: list[tuple[str, object, object]]) -> str:
    lines = [f"{len(mismatches)} texts differ (text, reference, tminus):"]
    lines += [f"  {ascii(text)[:160]}  {ref}  {ours}" for text, ref, ours in mismatches[:25]]
    return "\n".join(lines)


def test_the_corpus_is_large_and_repeatable() -> None:
    texts = corpus()
    assert len(texts) >= 5000
    assert len(set(texts)) > 4500  # the shapes really vary
    assert corpus() == texts  # seeded: a failure can be reproduced
    assert corpus(seed=12) != texts


def test_x_weighted_length_and_validity_equal_twitter_text(answers: dict[str, Reference]) -> None:
    mismatches: list[tuple[str, object, object]] = []
    for text, ref in answers.items():
        ours = (x_weighted_length(text), x_is_valid(text))
        if ours != (ref.x_length, ref.x_valid):
            mismatches.append((text, (ref.x_length, ref.x_valid), ours))
    assert not mismatches, _report(mismatches)


def test_bluesky_length_equals_atproto(answers: dict[str, Reference]) -> None:
    mismatches: list[tuple[str, object, object]] = [
        (text, ref.bluesky_length, bluesky_length(text))
        for text, ref in answers.items()
        if bluesky_length(text) != ref.bluesky_length
    ]
    assert not mismatches, _report(mismatches)


def test_each_emoji_of_the_data_is_one_emoji_for_twitter_text(answers: dict[str, Reference]) -> None:
    assert len(EMOJI_TEXTS) > 3000
    not_one = [(text, answers[text].x_length, 2) for text in EMOJI_TEXTS if answers[text].x_length != 2]
    assert not not_one, _report(not_one)


def test_the_corpus_covers_what_went_wrong(answers: dict[str, Reference]) -> None:
    # The corpus is only worth its zero if it holds the hard cases: URLs the reference
    # links, texts at and over the limits, invalid ones, emoji, Indic clusters.
    refs = [answers[text] for text in corpus()]
    assert sum(ref.x_valid for ref in refs) > 3000
    assert sum(not ref.x_valid for ref in refs) > 200
    assert sum(ref.x_length in (279, 280, 281) for ref in refs) > 20
    assert sum(ref.bluesky_length in (299, 300, 301) for ref in refs) > 10
    assert answers["a.io"].x_length == 23 and answers["act.org?src=tw"].x_length == 30
    assert answers["\u094d\u0915"].bluesky_length == 2


def test_committed_data_equals_the_installed_reference() -> None:
    try:
        files = regen.generate()
        reference_data()
    except ReferenceMissing as e:
        pytest.fail(str(e))
    for path, text in files.items():
        assert Path(path).read_text(encoding="utf-8") == text, (
            f"{path.name} differs from what the installed packages hold: "
            "run python -m tests.reference.regen"
        )
    assert len(x_data.GTLDS) == 1259 and len(x_data.CCTLDS) == 315
    assert "music" not in x_data.GTLDS and "google" in x_data.GTLDS
