"""The evaluation protocol every trained network follows, in one place.

1. **Validation inside the training speakers.** For every candidate setting,
   leave-one-speaker-out over the training speakers (scikit-learn's
   ``LeaveOneGroupOut``, as the SVMs use), once per validation seed. The fold
   runs' validation curves are averaged (each fold weighted by its clips, so
   the mean is the accuracy over all held-out clips), smoothed by a centred
   moving average, and the candidate with the highest smoothed peak wins; the
   epoch of that peak is the training length of its final models.
2. **Final models.** One model per seed on all training clips.
3. **One evaluation pass** per final model on each evaluation split (Test,
   and Confirm where the data set has it), loaded only after every choice is
   made. The seed ensemble averages the seeds' class probabilities.

A network plugs in through a :class:`Learner`: how to train one model on a
set of clips (fitting any statistic, such as a normalisation scale, on those
clips alone) and how to turn a trained model and inputs into class
probabilities. The protocol never sees a network's internals, and validation
never sees an evaluation split: it receives the training arrays only.

Every training run (candidate x fold x validation seed, then final candidate
x seed) is an independent unit, handed to :class:`ser.models.runs.Runner`: runs
train side by side (``n_jobs``) and are cached by content, and neither
changes a number (see :mod:`ser.models.runs`).

Every function returns plain data (lists, dicts, floats) ready for JSON; the
trained models are returned beside it, for the caller to save.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ser.metrics import scores, seed_summary
from ser.models.runs import Runner, RunOptions, RunSpec, current
from ser.data.speakers import FOLD_DEFAULTS, fold_options, per_speaker  # noqa: F401  (the protocol's folds and scores)


@dataclass
class Trained:
    """One trained model and the JSON-able state it needs at prediction time
    (e.g. a normalisation scale fitted on its training clips)."""

    model: Any
    state: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Learner:
    """How one network trains and predicts.

    ``fit(params, x, y, *, seed, epochs, x_val=None, y_val=None, log=None)``
    returns ``(Trained, history)`` with the history of :func:`ser.models.training.fit`
    (per-epoch ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
    ``seconds``). ``predict(trained, params, x)`` returns class probabilities
    [shape=(n_clips, n_classes)]. ``x`` is an array indexed by clip on axis 0.

    The other fields let :mod:`ser.models.runs` cache a run by content: ``key``,
    JSON data of everything besides the inputs, params, seed, epochs and
    threads that a fit depends on (None: runs are never cached); ``code``,
    the modules whose source text a fit runs; ``view(x, params)``, the part
    of ``x`` a candidate's fit reads (default: all of it); ``export(trained)``
    and ``restore(arrays, state)``, a final model as ``{name: array}`` and
    back (without them, final runs are not cached).
    """

    fit: Callable[..., tuple[Trained, dict]]
    predict: Callable[[Trained, dict, Any], np.ndarray]
    key: Any = None
    code: tuple[str, ...] = ()
    view: Callable[[Any, dict], Any] | None = None
    export: Callable[[Trained], dict] | None = None
    restore: Callable[[dict, dict], Trained] | None = None


@dataclass(frozen=True)
class EvalSplit:
    """The clips of one evaluation split, as the network reads them."""

    name: str
    x: Any
    y: np.ndarray
    keys: list[str]
    speakers: list[int | None]


@dataclass(frozen=True)
class ProtocolConfig:
    max_epochs: int
    smooth_epochs: int
    val_seeds: tuple[int, ...]
    seeds: tuple[int, ...]


def moving_average(values: Sequence[float], width: int) -> np.ndarray:
    """Centred moving average over ``width`` epochs (the window shrinks at the
    ends), the same length as ``values``."""
    v = np.asarray(values, float)
    h = max(0, int(width) // 2)
    return np.array([v[max(0, i - h): i + h + 1].mean() for i in range(len(v))])


def choose_epochs(mean_val_acc: Sequence[float], smooth_epochs: int) -> tuple[int, float]:
    """The epoch count (1-based) at the peak of the smoothed validation
    accuracy, and the smoothed accuracy there; the first peak on ties."""
    sm = moving_average(mean_val_acc, smooth_epochs)
    best = int(np.argmax(sm))
    return best + 1, float(sm[best])


def ensemble_curve(runs: list[dict]) -> np.ndarray | None:
    """Validation accuracy per epoch of the validation seeds' ensemble: in
    each fold, the seeds' class probabilities averaged; pooled over folds.
    None without several seeds per fold (or without recorded probabilities)."""
    folds: dict[int, list[dict]] = {}
    for r in runs:
        folds.setdefault(r["speaker"], []).append(r)
    if any(len(f) < 2 or any("val_proba" not in r for r in f) for f in folds.values()):
        return None
    correct = sum((np.mean([r["val_proba"] for r in f], axis=0).argmax(-1) == f[0]["y_val"]).sum(axis=-1)
                  for f in folds.values())
    return correct / sum(len(f[0]["y_val"]) for f in folds.values())


def out_of_fold_proba(runs: list[dict], n_clips: int, epochs: int) -> np.ndarray | None:
    """Out-of-fold class probabilities [shape=(n_clips, n_classes)]: each
    training clip's probabilities after ``epochs`` epochs from the runs that
    held it out (the validation seeds' mean). None without recorded
    probabilities or when some clip was never held out."""
    if not runs or any("val_proba" not in r for r in runs):
        return None
    total = np.zeros((n_clips, np.asarray(runs[0]["val_proba"]).shape[-1]))
    count = np.zeros(n_clips)
    for r in runs:
        total[r["val_idx"]] += np.asarray(r["val_proba"])[epochs - 1]
        count[r["val_idx"]] += 1
    if np.any(count == 0):
        return None
    return total / count[:, None]


def declare(row: dict) -> dict:
    """The model the report judges, chosen on the training speakers: the seed
    ensemble when the validation seeds' ensemble is at least as accurate as
    a single seed at the chosen epoch (both smoothed), else a single model
    (reported as the mean over seeds)."""
    ens = row.get("ensemble_score")
    model = "single" if ens is None or ens < row["score"] else "ensemble"
    return {"model": model, "val_single": row["score"], "val_ensemble": ens}


def _candidate_row(params: dict, runs: list[dict], y, pcfg: ProtocolConfig) -> dict:
    """One candidate's row of the validation table from its fold runs."""
    w = np.array([r["n_val"] for r in runs], float)
    mean_acc = np.average([r["val_acc"] for r in runs], axis=0, weights=w)
    mean_loss = np.average([r["val_loss"] for r in runs], axis=0, weights=w)
    epochs, score = choose_epochs(mean_acc, pcfg.smooth_epochs)
    ens_acc = ensemble_curve(runs)
    oof = out_of_fold_proba(runs, len(y), epochs)
    for r in runs:  # arrays stay out of the results
        r.pop("val_proba", None)
        r.pop("y_val")
        r.pop("val_idx")
    return {
        "params": params,
        "score": score,
        "epochs": epochs,
        "ensemble_val_acc": None if ens_acc is None else ens_acc.tolist(),
        "ensemble_score": None if ens_acc is None else float(moving_average(ens_acc, pcfg.smooth_epochs)[epochs - 1]),
        "val_acc_at_epochs": float(mean_acc[epochs - 1]),
        "val_acc_last": float(mean_acc[-1]),
        "min_val_loss": float(mean_loss.min()),
        "mean_val_acc": mean_acc.tolist(),
        "mean_val_loss": mean_loss.tolist(),
        "smoothed_val_acc": moving_average(mean_acc, pcfg.smooth_epochs).tolist(),
        "per_speaker_at_epochs": {str(a): float(np.mean([r["val_acc"][epochs - 1] for r in runs if r["speaker"] == a]))
                                for a in dict.fromkeys(r["speaker"] for r in runs)},
        "per_fold": [{"speaker": r["speaker"], "seed": r["seed"], "n_val": r["n_val"],
                      "val_acc_at_epochs": float(r["val_acc"][epochs - 1]),
                      "best_val_acc": float(max(r["val_acc"])), "last_val_acc": float(r["val_acc"][-1])}
                     for r in runs],
        "histories": runs,
        "seconds": float(sum(r["seconds"] for r in runs)),
        # every training clip's class probabilities from the fold that held its speaker out
        # (validation seeds averaged, at the chosen epoch): what a combined model is fitted on
        "oof_proba": None if oof is None else np.round(oof, 6).tolist(),
    }


def _fold_runs(runner: Runner, candidates: dict[str, dict], folds, pcfg: ProtocolConfig, *,
               log: Callable[[str], None], name: str = "") -> dict[str, list[dict]]:
    """Every candidate x fold x validation seed, as independent runs
    (:class:`ser.models.runs.Runner`); per candidate its runs, in fold and seed order."""
    y = runner.y
    specs = [RunSpec("validation", cname, params, int(vs), pcfg.max_epochs, tr, va, fold=speaker)
             for cname, params in candidates.items() for speaker, tr, va in folds for vs in pcfg.val_seeds]
    out: dict[str, list[dict]] = {c: [] for c in candidates}
    for spec, _, h, cached in runner.run(specs):
        log(f"{name} val {spec.candidate} speaker {spec.fold} seed {spec.seed}: val acc last {h['val_acc'][-1]:.3f}, "
            f"best {max(h['val_acc']):.3f} ({h['seconds']:.0f} s{', cached' if cached else ''})")
        va = spec.val_idx
        out[spec.candidate].append({"speaker": spec.fold, "seed": spec.seed, "n_val": int(len(va)), "y_val": y[va],
                                    "val_idx": va, **h})
    return out


def validate_candidate(learner: Learner, params: dict, x, y, folds, pcfg: ProtocolConfig,
                       *, log: Callable[[str], None], label: str = "", runner: Runner | None = None) -> dict:
    """The validation folds (``[(name, train_idx, val_idx)]``, from
    :func:`ser.data.speakers.speaker_folds`) for one candidate, every validation
    seed; its row of the validation table (score, epochs, mean curves,
    per-fold numbers; a fold's ``speaker`` is its name)."""
    runner = runner or Runner(learner, x, y, current())
    runs = _fold_runs(runner, {label: params}, folds, pcfg, log=log)[label]
    return _candidate_row(params, runs, runner.y, pcfg)


def validate(learner: Learner, candidates: dict[str, dict], x, y, groups, pcfg: ProtocolConfig,
             *, log: Callable[[str], None], name: str = "", fold_options: dict | None = None,
             runner: Runner | None = None) -> dict:
    """The validation table over ``candidates`` ({name: params}) and the winner.

    ``groups``: each training clip's speaker (None: a data set without
    speakers); the folds are :func:`ser.data.speakers.speaker_folds` with
    ``fold_options`` (``max_loso``, ``k``, ``seed``; default: leave one
    speaker out up to 8 speakers, else 5 folds). Only the training arrays
    come in: no evaluation split can reach a fit. Every candidate's runs are
    independent, and run side by side (``runner``; default: the
    :func:`ser.models.runs.current` options).
    """
    from ser.data.speakers import speaker_folds

    runner = runner or Runner(learner, x, y, current())
    folds, scheme = speaker_folds(groups, y, **{**FOLD_DEFAULTS, **(fold_options or {})})
    runs = _fold_runs(runner, candidates, folds, pcfg, log=log, name=name)
    rows = {}
    for i, (cname, params) in enumerate(candidates.items()):
        rows[cname] = r = _candidate_row(params, runs[cname], runner.y, pcfg)
        log(f"{name} val {i + 1}/{len(candidates)} '{cname}': smoothed val acc {r['score']:.3f} "
            f"at epoch {r['epochs']} (last {r['val_acc_last']:.3f})")
    order = sorted(rows, key=lambda k: -rows[k]["score"])  # stable: the first listed wins ties
    chosen = order[0]
    margin = rows[chosen]["score"] - rows[order[1]]["score"] if len(order) > 1 else None
    return {**scheme,
            "seeds": list(pcfg.val_seeds), "max_epochs": pcfg.max_epochs, "smooth_epochs": pcfg.smooth_epochs,
            "candidates": rows, "chosen": chosen, "runner_up": order[1] if len(order) > 1 else None,
            "margin": margin}


def _final_runs(runner: Runner, finals: dict[str, tuple[dict, int]], pcfg: ProtocolConfig, *,
                log: Callable[[str], None], name: str = "") -> dict[str, tuple[list[Trained], list[dict]]]:
    """Per final candidate (``{name: (params, epochs)}``), one model per seed
    on all training clips, as independent runs; their models and histories."""
    everything = np.arange(len(runner.y))
    specs = [RunSpec("final", cname, params, int(seed), int(epochs), everything)
             for cname, (params, epochs) in finals.items() for seed in pcfg.seeds]
    label = (lambda s: f"{name} '{s.candidate}'") if name else (lambda s: s.candidate)
    out: dict[str, tuple[list, list]] = {c: ([], []) for c in finals}
    for spec, t, h, cached in runner.run(specs, epoch_log=lambda s: (lambda m, p=f"{label(s)} seed {s.seed}": log(p + m))):
        log(f"{label(spec)} seed {spec.seed}: trained {spec.epochs} epochs ({h['seconds']:.0f} s"
            f"{', cached' if cached else ''})")
        out[spec.candidate][0].append(t)
        out[spec.candidate][1].append({"seed": spec.seed, **h})
    return out


def train_finals(learner: Learner, params: dict, x, y, pcfg: ProtocolConfig, *, epochs: int,
                 log: Callable[[str], None], label: str = "", runner: Runner | None = None
                 ) -> tuple[list[Trained], list[dict]]:
    """One model per seed on all training clips; their histories."""
    runner = runner or Runner(learner, x, y, current())
    return _final_runs(runner, {label: (params, epochs)}, pcfg, log=log)[label]


def evaluate_split(probs: Sequence[np.ndarray], split: EvalSplit, seeds: Sequence[int], classes) -> dict:
    """Scores of each seed's probabilities on one split, the seed summary,
    all seeds' predictions pooled, the seed ensemble and per-speaker accuracy."""
    y = np.asarray(split.y)
    preds = [p.argmax(1) for p in probs]
    ens = np.mean(probs, axis=0)
    per_seed = [{"seed": int(s), **scores(y, p, classes)} for s, p in zip(seeds, preds)]
    seed_speakers = [per_speaker(y, p, split.speakers) for p in preds]
    return {
        "n": int(len(y)),
        "per_seed": per_seed,
        "summary": seed_summary([r["accuracy"] for r in per_seed]),
        "pooled": scores(np.tile(y, len(preds)), np.concatenate(preds), classes),
        "ensemble": scores(y, ens.argmax(1), classes),
        "per_speaker": {"seed_mean": {a: float(np.mean([pa[a] for pa in seed_speakers])) for a in seed_speakers[0]},
                      "ensemble": per_speaker(y, ens.argmax(1), split.speakers)},
    }


def predictions(probs: Sequence[np.ndarray], split: EvalSplit, seeds: Sequence[int]) -> dict:
    """Per-clip predictions of one model on one split: every seed's class
    probabilities (rounded to 4 decimals) and the ensemble's class and
    probabilities (the argmax is taken before rounding)."""
    ens = np.mean(probs, axis=0)
    return {"keys": list(split.keys), "speakers": list(split.speakers), "y_true": np.asarray(split.y).tolist(),
            "pred_per_seed": {str(s): p.argmax(1).tolist() for s, p in zip(seeds, probs)},
            "proba_per_seed": {str(s): np.round(p, 4).tolist() for s, p in zip(seeds, probs)},
            "ensemble_pred": ens.argmax(1).tolist(), "ensemble_proba": np.round(ens, 6).tolist()}


def run_protocol(learner: Learner, candidates: dict[str, dict], x, y, groups, *, classes,
                 load_eval: Callable[[], list[EvalSplit]], pcfg: ProtocolConfig,
                 final: str = "chosen", log: Callable[[str], None] = print, name: str = "",
                 train_keys: Sequence[str] | None = None, fold_options: dict | None = None,
                 run_options: RunOptions | None = None) -> tuple[dict, dict]:
    """Validation, final models, one evaluation pass: the whole protocol.

    The training runs (candidate x fold x validation seed, then final
    candidate x seed) are independent: they run side by side and are cached
    by content as ``run_options`` say (:mod:`ser.models.runs`; default: the
    :func:`ser.models.runs.current` options, one after another without a cache).

    Parameters
    ----------
    learner : Learner
    candidates : dict
        ``{name: params}`` compared by validation, in order (the first wins ties).
    x, y, groups
        Training inputs (indexed on axis 0), labels and speakers (None: no speakers).
    classes : list of str
        Class names in label order.
    load_eval : callable() -> list of EvalSplit
        Reads the evaluation splits; called once, after the final models are trained.
    pcfg : ProtocolConfig
    final : {"chosen", "all"}
        Train final models for the chosen candidate only, or for every
        candidate (an experiment that compares them, such as augmentation).
    train_keys : list of str, optional
        The training clips' keys, in the order of ``x``: recorded with the
        out-of-fold probabilities of each candidate's validation row.
    run_options : :class:`ser.models.runs.RunOptions`, optional

    Returns
    -------
    results : dict
        ``validation`` (see :func:`validate`), ``chosen``, ``models``: per final
        candidate its ``params``, ``epochs``, ``seeds``, ``train_histories`` and
        ``splits`` (per evaluation split, :func:`evaluate_split`),
        ``predictions`` (per candidate and split, :func:`predictions`),
        ``timings_s``, ``runs`` (:meth:`ser.models.runs.Runner.record`: processes,
        threads, and per kind of run how many ran, were trained and were read
        from the cache).
    trained : dict
        ``{candidate: [Trained, ...]}`` in seed order, for the caller to save.
    """
    if final not in ("chosen", "all"):  # before any training: a typo must not quietly train the chosen one only
        raise ValueError(f"final must be 'chosen' or 'all', got {final!r}")
    t_start = time.perf_counter()
    timings = {}
    y = np.asarray(y)
    runner = Runner(learner, x, y, run_options if run_options is not None else current())
    val = validate(learner, candidates, x, y, groups, pcfg, log=log, name=name, fold_options=fold_options,
                   runner=runner)
    timings["validation"] = time.perf_counter() - t_start
    log(f"{name} chose '{val['chosen']}', {val['candidates'][val['chosen']]['epochs']} epochs")

    t0 = time.perf_counter()
    finals = list(candidates) if final == "all" else [val["chosen"]]
    done = _final_runs(runner, {c: (candidates[c], val["candidates"][c]["epochs"]) for c in finals}, pcfg,
                       log=log, name=name)
    trained, models = {}, {}
    for cname in finals:
        trained[cname], hists = done[cname]
        models[cname] = {"params": candidates[cname], "epochs": val["candidates"][cname]["epochs"],
                         "seeds": list(pcfg.seeds), "states": [t.state for t in trained[cname]],
                         "train_histories": hists, "splits": {}}
    timings["final_training"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    preds: dict[str, dict] = {c: {} for c in finals}
    for split in load_eval():
        for cname in finals:
            probs = [learner.predict(t, candidates[cname], split.x) for t in trained[cname]]
            models[cname]["splits"][split.name] = evaluate_split(probs, split, pcfg.seeds, classes)
            preds[cname][split.name] = predictions(probs, split, pcfg.seeds)
            s = models[cname]["splits"][split.name]
            log(f"{name} '{cname}' {split.name}: seed mean {s['summary']['mean']:.3f} "
                f"± {s['summary']['std']:.3f}, ensemble {s['ensemble']['accuracy']:.3f}")
    timings["evaluation"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    rec = runner.record()
    log(f"{name} runs: {rec['validation']['runs']} validation, {rec['final']['runs']} final; {rec['trained']} trained, "
        f"{rec['cached']} read from the run cache ({rec['n_jobs']} process(es), {rec['threads']} thread(s) each)")
    val["train_keys"] = None if train_keys is None else list(train_keys)
    return {"classes": list(classes), "validation": val, "chosen": val["chosen"],
            "declared": declare(val["candidates"][val["chosen"]]), "models": models,
            "predictions": preds, "timings_s": timings, "runs": rec}, trained
