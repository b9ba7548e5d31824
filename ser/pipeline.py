"""One function per build step, from input files to output files.

``dodo.py`` wraps each of these in a task; they hold the I/O, while the maths
lives in the modules they call. Every output is written atomically.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ser.data.dataset import EVAL_SPLITS, class_names, list_clips
from ser import results
from ser.io import load_json, load_npz, save_npz


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_card(data_dir, out_json, cfg) -> None:
    """Data-set card (clips, speakers, sample rates, durations, leakage)."""
    from ser.evaluate.card import build_card as _card

    say(f"data set: {data_dir}")
    t0 = time.perf_counter()
    from ser.data.dataset import list_clips_and_speakers

    clips, source = list_clips_and_speakers(data_dir, cfg.data.speaker_pattern)
    say(f"speakers: {source.describe()}")
    card = _card(clips, class_names(data_dir), str(data_dir), cfg.mel.hop_s, source)
    card["seconds"] = time.perf_counter() - t0
    results.save("data", out_json, card)


def build_features(data_dir, out_npz, out_json, cfg) -> None:
    """Spectral features of every clip (cache) and the facts the report states."""
    import dataclasses

    from ser.data.audio import audio_info
    from ser.features.extract import extract_features
    from ser.features.spectral import feature_facts

    say(f"data set: {data_dir}")
    clips = list_clips(data_dir)
    t0 = time.perf_counter()
    arrays = extract_features(clips, cfg)
    seconds = time.perf_counter() - t0
    save_npz(out_npz, **arrays)
    rates = sorted({audio_info(c.path).sr_hz for c in clips})
    results.save("features", out_json, {
        "mel": dataclasses.asdict(cfg.mel),
        "bands_hz": [list(b) for b in cfg.features.bands_hz],
        "kinds": list(cfg.features.kinds),
        "readings": list(cfg.features.readings),
        "n_clips": len(clips),
        "vector_length": int(arrays[f"X_{cfg.features.readings[0]}_{cfg.features.kinds[0]}"].shape[1]),
        "extract_seconds": seconds,
        "per_rate": [feature_facts(cfg, sr) for sr in rates],
        "zero_energy_fraction": {
            r: float((arrays[f"X_{r}_SBE"] == 0).mean()) for r in cfg.features.readings
        },
    })


def build_svm(features_npz, out_json, cfg) -> None:
    from ser.models.svm import run_svms

    t0 = time.perf_counter()
    from ser.data.speakers import fold_options

    res = run_svms(load_npz(features_npz), cfg, log=say, fold_options=fold_options(cfg))
    res["seconds"] = time.perf_counter() - t0
    results.save("svm", out_json, res)


ANCHOR_LABELS = {"egemaps": "eGeMAPSv02", "ge2e": "GE2E embedding"}


def build_anchors(data_dir, out_npz, out_json, cfg) -> None:
    """The field's anchors (ser.features.anchors) for every clip, cached, and each
    through the SVMs' protocol (ser.models.svm.evaluate_feature, with and without
    speaker normalisation)."""
    from ser.features.anchors import ANCHORS, anchor_features
    from ser.features.extract import clip_columns
    from ser.data.speakers import fold_options
    from ser.models.svm import eval_clips, evaluate_feature, groups_of, speakers_of

    _torch_threads()
    say(f"data set: {data_dir}")
    clips = list_clips(data_dir)
    arrays, seconds = {}, {}
    for kind in cfg.anchors.kinds:
        t0 = time.perf_counter()
        arrays[f"X_{kind}"] = anchor_features([c.path for c in clips], kind, desc=ANCHOR_LABELS[kind])
        seconds[kind] = time.perf_counter() - t0
    arrays.update(clip_columns(clips))
    save_npz(out_npz, **arrays)
    y, split, groups = arrays["label"], arrays["split"], groups_of(arrays)
    speakers = speakers_of(arrays)
    classes = [str(c) for c in arrays["classes"]]
    kinds = {}
    for kind in cfg.anchors.kinds:
        t0 = time.perf_counter()
        kinds[kind] = evaluate_feature(arrays[f"X_{kind}"], y, split, groups, classes, cfg.svm, seed=cfg.seed,
                                       speakers=speakers, fold_options=fold_options(cfg))
        by = kinds[kind]["tuned_by_norm"]
        say(f"anchor {kind}: tuned {kinds[kind]['tuned']['params']} cv {kinds[kind]['tuned']['cv_mean']:.3f}; "
            + ", ".join(f"{n}: cv {r['cv_mean']:.3f}" for n, r in by.items()))
        seconds[f"svm_{kind}"] = time.perf_counter() - t0
    meta = {k: {**ANCHORS[k], "label": ANCHOR_LABELS[k]} for k in cfg.anchors.kinds}
    results.save("anchors", out_json, {"classes": classes, **eval_clips(arrays), "kinds": kinds, "meta": meta,
                                       "timings_s": seconds})


def build_fusion(features_npz, anchors_npz, svm_json, anchors_json, cnn1d_json, cnn2d_json, out_json, cfg) -> None:
    """The combined models (ser.models.fusion): weights from the training speakers'
    out-of-fold probabilities, each evaluation split scored once."""
    from ser.models.fusion import run_fusion

    t0 = time.perf_counter()
    with_anchors = bool(cfg.anchors.kinds)
    res = run_fusion(load_npz(features_npz), load_npz(anchors_npz) if with_anchors else None, results.load("svm", svm_json),
                     results.load("anchors", anchors_json) if with_anchors else None,
                     {"cnn1d": results.load("cnn1d", cnn1d_json), "cnn2d": results.load("cnn2d", cnn2d_json)}, cfg, log=say)
    res["timings_s"] = {"total": time.perf_counter() - t0}
    results.save("fusion", out_json, res)


def figure_mel_examples(data_dir, out_png, out_json, cfg) -> None:
    from ser.report.figures import mel_examples_figure

    clips = list_clips(data_dir)
    keys = mel_examples_figure(clips, class_names(data_dir), cfg.mel, out_png)
    results.save("mel_examples", out_json, {"clips": keys})


def figure_svm(svm_json, out_bars, out_conf: dict) -> None:
    from ser.report.figures import confusion_grid_figure, svm_accuracy_figure

    svm = results.load("svm", svm_json)
    svm_accuracy_figure(svm, out_bars)
    for reading, path in out_conf.items():
        confusion_grid_figure(svm, reading, path)


def build_report(report_dir, results_dir, figures_dir, html_path, pdf_path, cfg=None) -> None:
    """The PDF and its self-contained HTML twin, with the build's facts for the appendix.

    The data set is named by its folder's name and fingerprint (``data.json``);
    the example clips of item a are read from the folder the card was made
    from, for the HTML's audio players.
    """
    from ser.config import CONFIG
    from ser.report.render import build_facts, write_report

    cfg = CONFIG if cfg is None else cfg
    card = results.load("data", Path(results_dir) / "data.json")
    examples = Path(results_dir) / "mel_examples.json"
    keys = results.load("mel_examples", examples)["clips"] if examples.is_file() else []
    meta = {
        "title": "Speech emotion recognition with spectral features and deep learning",
        "subtitle": "Spectral features and SVMs, a 1D CNN on the waveform, and a 2D CNN on mel-spectrogram images",
        "dataset_name": "EmotionSpeech (RAVDESS speech subset)",
        "n_clips": card["n_clips"],
        "classes": card["classes"],
        "data_name": card["data_name"],
        "fingerprint": card["fingerprint_sha256"],
        "split_clips": {name: s["n_clips"] for name, s in card["splits"].items()},
        "build": build_facts(results_dir, cfg, Path(report_dir).resolve().parent, card["data_dir"]),
    }
    audio = {k: Path(card["data_dir"]) / k for k in keys}
    write_report(report_dir, results_dir, html_path, pdf_path, figures_dir, meta, audio_clips=audio)
    say(f"report: {pdf_path}")


def _torch_threads(n: int | None = None) -> None:
    """torch's thread count for a step: ``n``, else ``[runs] threads`` of the
    configuration (0: torch's default, left as it is)."""
    from ser.config import CONFIG
    from ser.models.runs import set_threads

    set_threads(CONFIG.runs.threads if n is None else n)


def save_network(res: dict, trained: dict, models_dir, prefix: str, out_json) -> None:
    """Checkpoints (``<prefix>_<candidate>_seed<k>.pt`` state dicts) and the results file."""
    from ser.io import save_state_dict

    for cname, models in trained.items():
        slug = "".join(ch if ch.isalnum() else "_" for ch in cname).strip("_")
        paths = []
        for seed, t in zip(res["models"][cname]["seeds"], models):
            paths.append(Path(models_dir) / f"{prefix}_{slug}_seed{seed}.pt")
            save_state_dict(t.model, paths[-1])
        res["models"][cname]["checkpoints"] = [str(p) for p in paths]
    results.save(prefix, out_json, res)


def build_cnn1d(data_dir, models_dir, out_json, cfg) -> None:
    """Section 3.1 through the shared protocol; Test scored once at the end."""
    from ser.models.cnn1d import run_cnn1d

    say(f"data set: {data_dir}")
    from ser.data.dataset import eval_splits_of

    clips = list_clips(data_dir)
    from ser.config import CACHE_DIR
    from ser.data.speakers import fold_options
    from ser.models.runs import options, using

    runs = options(cfg, cache_dir=CACHE_DIR / "runs")
    _torch_threads(runs.threads)
    with using(runs):  # the protocol's runs side by side, cached by content (ser.models.runs)
        res, trained = run_cnn1d(clips, cfg.cnn1d, eval_splits=eval_splits_of(clips), onset=cfg.onset, log=say,
                                 fold_options=fold_options(cfg))
    save_network(res, trained, models_dir, "cnn1d", out_json)


def build_images(data_dir, out_root, manifest_json, cfg) -> None:
    """Item e's images: every clip's power-1 mel spectrogram through spectrogram2image.

    The tree is written beside ``out_root`` and swapped in whole, so images of
    an earlier data set never mix with the new ones.
    """
    import dataclasses

    from ser.features.images import export_images
    from ser.io import atomic_dir

    say(f"data set: {data_dir}")
    out_root = Path(out_root)
    c = cfg.cnn2d
    with atomic_dir(out_root) as tmp:
        t0 = time.perf_counter()
        records = export_images(data_dir, tmp, mel_cfg=cfg.mel, n_frames=c.n_frames, fix_floor=c.fix_floor,
                                dynamic_range=c.dynamic_range, low_at_bottom=c.low_at_bottom, window=c.window,
                                onset=cfg.onset, speaker_norm=bool(c.speaker_norm), log=say)
        seconds = time.perf_counter() - t0
    for r in records:
        for k in ("path", "path_speaker"):
            if k in r:
                r[k] = str(out_root / Path(r[k]).relative_to(tmp))
    results.save("images", manifest_json, {"root": str(out_root), "classes": class_names(data_dir),
                              "export": {**{k: getattr(c, k) for k in ("n_frames", "window", "fix_floor",
                                                                       "dynamic_range", "low_at_bottom", "size_hw",
                                                                       "interpolation")},
                                         "speaker_norm": bool(c.speaker_norm)},
                              "onset": dataclasses.asdict(cfg.onset), "seconds": seconds, "records": records})


def build_cnn2d(images_json, models_dir, out_json, cfg) -> None:
    """Section 3.2 through the shared protocol, every augmentation setting to the end."""
    from ser.models.cnn2d import run_cnn2d

    from ser.config import CACHE_DIR
    from ser.data.speakers import fold_options
    from ser.models.runs import options, using

    runs = options(cfg, cache_dir=CACHE_DIR / "runs")
    _torch_threads(runs.threads)
    manifest = results.load("images", images_json)
    splits = [s for s in EVAL_SPLITS if any(r["split"] == s for r in manifest["records"])]
    with using(runs):  # the protocol's runs side by side, cached by content (ser.models.runs)
        res, trained = run_cnn2d(manifest["records"], cfg.cnn2d, classes=manifest["classes"], eval_splits=splits,
                                 log=say, fold_options=fold_options(cfg))
    save_network(res, trained, models_dir, "cnn2d", out_json)


def figure_cnn1d(cnn1d_json, out: dict) -> None:
    """Learning curves (item c) and confusion matrices (item d) of the 1D CNN."""
    from ser.report.figures import network_curves_figure, network_confusion_figure

    res = results.load("cnn1d", cnn1d_json)
    network_curves_figure(res, out["curves"])
    network_confusion_figure(res, out["confusion"])


def figure_cnn2d(images_json, cnn2d_json, out: dict, cfg) -> None:
    """Image grid (item e), learning curves (f), confusion matrices (g), augmentation comparison (h)."""
    from ser.report.figures import augmentation_figure, image_grid_figure, network_confusion_figure, network_curves_figure

    res = results.load("cnn2d", cnn2d_json)
    image_grid_figure(results.load("images", images_json)["records"], out["images"], low_at_bottom=cfg.cnn2d.low_at_bottom)
    network_curves_figure(res, out["curves"])
    network_confusion_figure(res, out["confusion"])
    augmentation_figure(res, out["augmentation"])


def _optional(key: str, path) -> dict | None:
    """Results file ``key`` at ``path`` (checked), or None when the build has no such file."""
    return results.load(key, path) if path is not None and Path(path).is_file() else None


def build_summary(svm_json, cnn1d_json, cnn2d_json, out_json, predictions_csv, anchors_json=None,
                  fusion_json=None) -> None:
    """The comparisons the report states in words (ser.evaluate.summary), and every
    final model's per-clip predictions as one CSV (ser.evaluate.predictions)."""
    from ser.evaluate.predictions import hardest_clips, prediction_rows, write_csv
    from ser.evaluate.summary import build_summary as _summary
    from ser.evaluate.summary import evidence

    svm = results.load("svm", svm_json)
    nets = {"cnn1d": _optional("cnn1d", cnn1d_json), "cnn2d": _optional("cnn2d", cnn2d_json)}
    fusion = _optional("fusion", fusion_json)
    rows = prediction_rows(svm, nets, _optional("anchors", anchors_json), fusion)
    write_csv(rows, predictions_csv)
    summary = {**_summary(svm, nets, fusion), **evidence(svm, nets, fusion)}
    summary["hardest_clips"] = hardest_clips(rows, 10)
    summary["predictions"] = {"file": Path(predictions_csv).name, "n_rows": len(rows),
                              "n_models": len({r["model"] for r in rows})}
    results.save("summary", out_json, summary)


def figure_summary(svm_json, cnn1d_json, cnn2d_json, out: dict, anchors_json=None, fusion_json=None) -> None:
    """Every approach with its 95% interval per evaluation split (forest plot),
    and every approach's accuracy per evaluation speaker."""
    from ser.report.figures import forest_figure, per_speaker_figure

    svm = results.load("svm", svm_json)
    nets = {"1D CNN": _optional("cnn1d", cnn1d_json), "2D CNN": _optional("cnn2d", cnn2d_json)}
    anchors, fusion = _optional("anchors", anchors_json), _optional("fusion", fusion_json)
    forest_figure(svm, nets, out["forest"], anchors, fusion)
    per_speaker_figure(svm, nets, out["per_speaker"], fusion)


def build_design(study_json, out_json) -> None:
    """The design study's validation tables (bench/design_study.py, training
    speakers only), as rows for the report's appendix."""
    study = load_json(study_json)
    tables = {}
    for net in ("1d", "2d"):
        rows = []
        for name, views in study[net].items():
            s = views["single"]
            rows.append({"name": name, "description": study["descriptions"][net][name], "runs": s["n_runs"],
                         "n_seeds": len(s["seeds"]), "epochs": s["acc"]["epoch"], "acc": s["acc"]["acc"],
                         "std": s["acc"]["std"], "margin": s["acc"]["paired_margin"],
                         "paired_se": s["acc"]["paired_se"], "per_fold": s["acc"]["per_fold"],
                         "loss_rule_acc": s["loss"]["acc"], "loss_rule_margin": s["loss"]["paired_margin"]})
        tables[net] = rows
    results.save("design", out_json, {"tables": tables, "folds": study["1d"]["base"]["single"]["folds"],
                         "source": "bench/design_study_results/merged/summary.json"})
