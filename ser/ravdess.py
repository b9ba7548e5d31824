"""The RAVDESS recipe of `doit data`, as it was called before ser.corpus knew other corpora.

RAVDESS names its files ``MM-VV-EE-II-SS-RR-AA.wav``: modality (03 audio
only), vocal channel (01 speech), emotion, intensity, statement, repetition,
actor. The source is a folder holding ``Actor_NN`` folders (or the files
themselves, at any depth), the official ``Audio_Speech_Actors_01-24.zip``, or a
URL of that archive (downloaded when the network allows). Everything is done
by :mod:`ser.corpus`.
"""
from __future__ import annotations

from . import corpus as _corpus
from .corpus import parse_speakers as parse_actors  # noqa: F401  ('1-4' -> (1, 2, 3, 4))


def plan(names: list[str], emotions: dict[str, str], train: tuple[int, ...], test: tuple[int, ...],
         confirm: tuple[int, ...] = ()) -> list[tuple[str, str]]:
    """``[(source name, 'Split/Class/file.wav')]`` for the speech clips wanted
    (``confirm``: actors of the optional Confirm split)."""
    splits = {"Train": tuple(train), "Test": tuple(test)}
    if confirm:
        splits["Confirm"] = tuple(confirm)
    return [(name, rel) for name, rel, _ in _corpus.plan(names, "ravdess", emotions, splits).jobs]


def build_layout(source: str, out_dir, *, emotions: dict[str, str], train, test, confirm=()) -> dict:
    """:func:`ser.corpus.build_layout` for RAVDESS."""
    return _corpus.build_layout(source, out_dir, corpus="ravdess", emotions=emotions, train=train, test=test,
                                confirm=confirm)
