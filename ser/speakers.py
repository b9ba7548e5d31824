"""Speaker normalisation: each speaker's inputs standardised by that speaker's own clips.

Speaker shift dominates small emotional-speech corpora: the same model scores
from chance to 70 % across held-out speakers. Taking each speaker's own
average off their features removes much of that shift. The statistics are
computed from a speaker's clips alone, never from labels, and the same rule
applies to every speaker: a training speaker, the speaker held out in a
validation fold, and an evaluation speaker. Because a speaker's statistics
read only that speaker's clips, the normalised inputs can be computed once,
before any fold is made, without leaking anything across speakers.

It is transductive: an evaluation speaker's unlabelled audio is read before
their clips are classified. It assumes that each speaker's clips cover the
classes roughly evenly (as in RAVDESS); a speaker recorded in one emotion
only has that emotion taken off as if it were their voice.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .errors import DataError

STD_FLOOR = 1e-8
"""Smallest standard deviation divided by: a column constant within a speaker becomes 0."""


def speaker_keys(splits: Sequence[str], actors: Sequence[int | None], keys: Sequence[str] | None = None) -> np.ndarray:
    """One speaker identifier per clip: ``"<split>/<actor>"``.

    A speaker is taken per split, so that no statistic ever mixes splits.
    A clip without a speaker (actor ``None`` or negative) is a
    :class:`~ser.errors.DataError` naming the clip (``keys``) when known:
    speaker normalisation cannot guess a speaker.
    """
    out = []
    for i, (s, a) in enumerate(zip(splits, actors)):
        if a is None or int(a) < 0:
            who = keys[i] if keys is not None else f"clip {i} of split {s}"
            raise DataError(f"{who}: no speaker known for this clip; speaker normalisation needs one")
        out.append(f"{s}/{int(a)}")
    return np.array(out)


def speaker_zscore(X: np.ndarray, speakers: Sequence, *, rows: np.ndarray | None = None) -> np.ndarray:
    """Every clip's features minus its speaker's mean, over its speaker's
    standard deviation, per column.

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips, n_features)]
    speakers : sequence [shape=(n_clips,)]
        The speaker of each row (any hashable value).
    rows : np.ndarray of bool [shape=(n_clips,)], optional
        The rows a speaker's statistics are computed from (default: all of
        that speaker's rows). Every row of the speaker is normalised by them.
        Used to show what happens when a speaker's clips do not cover the
        classes.

    Returns
    -------
    np.ndarray [shape=(n_clips, n_features), dtype=float64]
    """
    X = np.asarray(X, dtype=np.float64)
    speakers = np.asarray(speakers)
    if X.ndim != 2 or len(speakers) != len(X):
        raise ValueError(f"X must be 2-D with one speaker per row, got {X.shape} and {len(speakers)} speakers")
    use = np.ones(len(X), bool) if rows is None else np.asarray(rows, bool)
    out = np.empty_like(X)
    for s in np.unique(speakers):
        mine = speakers == s
        ref = X[mine & use]
        if len(ref) == 0:
            raise ValueError(f"speaker {s}: no rows to compute the statistics from")
        mean, std = ref.mean(axis=0), ref.std(axis=0)
        out[mine] = (X[mine] - mean) / np.maximum(std, STD_FLOOR)
    return out
