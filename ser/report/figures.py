"""The report's figures, one function each, and the table of their files.

:data:`FIGURES` is read by both ``dodo.py`` (the targets of the figure tasks)
and the report task (its inputs), so a figure is named in one place.
Axes-level drawing is in :mod:`ser.report.plots`.
"""
from __future__ import annotations

from ser.data.audio import hop_samples, read_mono
from ser.data.dataset import SPLITS, Clip
from ser.report.plots import (_mpl, plot_accuracy_bars, plot_confusion, plot_image_grid, plot_learning_curves, plot_mel_db,
                    save_figure)
from ser.features.spectro import mel_from_config

MAX_SPEAKERS_AS_LINES = 16
"""Up to this many speakers in a split the per-speaker figure draws one line per
approach across the speakers; above it, each approach's spread over them."""

# figure group (a doit sub-task of `figures`) -> {role: file name in figures/}
FIGURES = {
    "mel_examples": {"mel": "mel_examples.png"},
    "svm": {"accuracy": "svm_accuracy.svg", "confusion_hz": "svm_confusion_hz.svg",
            "confusion_index": "svm_confusion_index.svg"},
    "cnn1d": {"curves": "cnn1d_curves.svg", "confusion": "cnn1d_confusion.svg"},
    "cnn2d": {"images": "cnn2d_images.png", "curves": "cnn2d_curves.svg", "confusion": "cnn2d_confusion.svg",
              "augmentation": "cnn2d_augmentation.svg"},
    "summary": {"forest": "summary_forest.svg", "per_speaker": "per_speaker.svg"},
}


def example_clips(clips: list[Clip], class_names: list[str]) -> dict[tuple[str, str], Clip]:
    """The first clip (by file name) of every class in every split."""
    out = {}
    for c in clips:
        out.setdefault((c.split, c.class_name), c)
    return {(s, k): out[(s, k)] for s in SPLITS for k in class_names}


def mel_examples_figure(clips: list[Clip], class_names: list[str], mel_cfg, path) -> list[str]:
    """Item a: mel spectrograms (dB) of one training and one test clip per class.

    The whole clip is drawn; a dashed line marks the end of the first
    ``n_frames`` frames, the part the spectral features read. Returns the keys
    of the clips shown.
    """
    plt = _mpl()
    chosen = example_clips(clips, class_names)
    many = len(class_names) > 4
    fig, axes = plt.subplots(len(SPLITS), len(class_names), figsize=(7.2, 4.6), sharey=True,
                             constrained_layout=True)
    img = None
    for i, split in enumerate(SPLITS):
        for j, name in enumerate(class_names):
            clip = chosen[(split, name)]
            y, sr = read_mono(clip.path)
            S = mel_from_config(y, sr, mel_cfg, n_frames=None)
            ax = axes[i, j]
            _, img = plot_mel_db(S, sr_hz=sr, hop_length=hop_samples(sr, mel_cfg.hop_s), ax=ax,
                                 title=f"{split}\n{name}" if many else f"{split} / {name}", mark_frame=mel_cfg.n_frames)
            if many:  # narrow panels: fewer, smaller time ticks
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(2))
                ax.tick_params(labelsize=6.5)
            if j:
                ax.set_ylabel("")
            if i == 0:
                ax.set_xlabel("")
    fig.colorbar(img, ax=axes, format="%+.0f dB", shrink=0.6, label="power re. clip maximum")
    save_figure(fig, path, dpi=200)
    return [chosen[k].key for k in chosen]


def majority_rate(keys) -> float:
    """The largest class's share of the clips ``keys`` (``Split/Class/file``):
    the accuracy of always answering that class, the chance level of a split
    (1/n_classes when the classes are balanced)."""
    from collections import Counter

    counts = Counter(str(k).split("/")[1] for k in keys)
    return max(counts.values()) / sum(counts.values()) if counts else 0.0


def chance_label(rate: float, n_classes: int) -> str:
    """The legend entry of a chance line: which rate it is when the classes are unbalanced."""
    return "chance" if abs(rate - 1 / max(n_classes, 1)) <= 0.01 else "chance (majority class)"


def compact_per_speaker(svm: dict) -> bool:
    """Whether :func:`per_speaker_figure` draws distributions: some evaluation
    split has more than :data:`MAX_SPEAKERS_AS_LINES` speakers."""
    kinds = svm["readings"]["hz"]["kinds"]
    first = next(iter(kinds.values()))
    return any(len(t["per_speaker"]) > MAX_SPEAKERS_AS_LINES for t in first["spec"]["splits"].values())


def svm_accuracy_figure(svm: dict, path) -> None:
    """Test accuracy with 95% intervals per feature kind: spec and tuned SVMs, both readings."""
    plt = _mpl()
    readings = list(svm["readings"])
    fig, axes = plt.subplots(1, len(readings), figsize=(7.2, 2.4), sharey=True, constrained_layout=True)
    axes = [axes] if len(readings) == 1 else axes
    for ax, reading in zip(axes, readings):
        kinds = svm["readings"][reading]["kinds"]
        groups = {}
        for model, label in (("spec", "C=10, RBF (spec)"), ("tuned", "tuned by speaker CV")):
            groups[label] = [(k[model]["splits"]["Test"]["accuracy"], k[model]["splits"]["Test"]["accuracy_ci95"])
                             for k in kinds.values()]
        rate = majority_rate(svm["keys"]["Test"])
        plot_accuracy_bars(list(kinds), groups, ax=ax, chance=rate,
                           chance_label=chance_label(rate, len(svm["classes"])), legend=False)
        ax.set_title(f"bands read as {'Hz' if reading == 'hz' else 'mel-bin indices'}")
    handles, names = axes[0].get_legend_handles_labels()  # one legend under both panels
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), fontsize=7, frameon=False)
    save_figure(fig, path)


def confusion_grid_figure(svm: dict, reading: str, path) -> None:
    """Confusion matrices of the spec and tuned SVMs for every feature kind."""
    plt = _mpl()
    kinds = svm["readings"][reading]["kinds"]
    many = len(svm["classes"]) > 4  # class names once per row and column, in taller panels
    fig, axes = plt.subplots(2, len(kinds), figsize=(7.2, 5.8 if many else 4.8), constrained_layout=True,
                             squeeze=False)
    for j, (kind, r) in enumerate(kinds.items()):
        for i, (model, label) in enumerate((("spec", "spec SVM"), ("tuned", "tuned SVM"))):
            t = r[model]["splits"]["Test"]
            plot_confusion(t["confusion"], svm["classes"], ax=axes[i, j],
                           title=f"{kind}, {label}: {100 * t['accuracy']:.1f}%",
                           xticklabels=not many or i == 1, yticklabels=not many or j == 0)
    save_figure(fig, path)


def network_curves_figure(res: dict, path) -> None:
    """Learning curves of a network's chosen setting: the validation folds
    (train and validation loss/accuracy per epoch, mean with a ±1 std band,
    the chosen epoch marked) above the final models' training curves over seeds."""
    plt = _mpl()
    val = res["validation"]["candidates"][res["chosen"]]
    finals = res["models"][res["chosen"]]["train_histories"]
    fig, axes = plt.subplots(2, 2, figsize=(7.2, 4.6), constrained_layout=True)
    plot_learning_curves(val["histories"], axes=axes[0], mark_epoch=val["epochs"],
                         title=f"validation folds ({len(val['histories'])} runs):")
    plot_learning_curves(finals, axes=axes[1], title=f"final models ({len(finals)} seeds):")
    save_figure(fig, path)


def network_confusion_figure(res: dict, path, split: str = "Test") -> None:
    """Confusion matrices of a network's chosen setting on ``split``: all
    seeds' predictions pooled, and the seed ensemble."""
    plt = _mpl()
    ev = res["models"][res["chosen"]]["splits"][split]
    many = len(res["classes"]) > 4
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.6) if many else (5.2, 2.5), constrained_layout=True)
    plot_confusion(ev["pooled"]["confusion"], res["classes"], ax=axes[0],
                   title=f"single models, seeds pooled: {100 * ev['pooled']['accuracy']:.1f}%")
    plot_confusion(ev["ensemble"]["confusion"], res["classes"], ax=axes[1],
                   title=f"seed ensemble: {100 * ev['ensemble']['accuracy']:.1f}%", yticklabels=not many)
    save_figure(fig, path)


def image_grid_figure(records, path, *, low_at_bottom: bool = True) -> None:
    """Item e: one exported image per class from the training and the test split."""
    save_figure(plot_image_grid(records, low_at_bottom=low_at_bottom), path, dpi=200)


def augmentation_figure(res: dict, path, split: str = "Test") -> None:
    """Per augmentation setting: validation accuracy, and the accuracy of every
    seed on ``split`` (dots) with the mean ± std (bar and whisker)."""
    import numpy as np

    plt = _mpl()
    names = list(res["models"])
    summ = {n: res["models"][n]["splits"][split]["summary"] for n in names}
    fig, ax = plt.subplots(figsize=(5.2, 2.5), constrained_layout=True)
    x = np.arange(len(names))
    val = [100 * res["validation"]["candidates"][n]["score"] for n in names]
    ax.bar(x - 0.2, val, 0.38, label="validation (training speakers)", color="C1")
    ax.bar(x + 0.2, [100 * summ[n]["mean"] for n in names], 0.38, yerr=[100 * summ[n]["std"] for n in names],
           capsize=3, label=f"{split.lower()}, mean ± std over seeds", color="C0")
    for i, n in enumerate(names):
        accs = summ[n]["per_seed"]
        ax.plot(np.full(len(accs), x[i] + 0.2), [100 * a for a in accs], "k.", ms=3)
    support = [sum(row) for row in res["models"][names[0]]["splits"][split]["ensemble"]["confusion"]]
    rate = max(support) / sum(support)
    ax.axhline(100 * rate, color="gray", ls=":", lw=0.8, label=chance_label(rate, len(res["classes"])))
    ax.set_xticks(x, names)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=6.5, frameon=False, loc="upper right")
    save_figure(fig, path)


def approaches(svm: dict, nets: dict[str, dict | None], split: str, anchors: dict | None = None,
               fusion: dict | None = None) -> list[dict]:
    """Every approach's accuracy and 95% interval on ``split``, in report order:
    the spec and tuned SVMs (bands in Hz), then each network's reported
    setting as the mean over seeds (t interval) and as the seed ensemble
    (Wilson interval), then the anchors' tuned SVMs without and with speaker
    normalisation, and the combined models (Wilson intervals)."""
    rows = []
    for m, label in (("spec", "spec SVM"), ("tuned", "tuned SVM")):
        for kind, k in svm["readings"]["hz"]["kinds"].items():
            t = k[m]["splits"][split]
            rows.append({"label": f"{label}, {kind}", "acc": t["accuracy"], "ci": t["accuracy_ci95"],
                         "per_speaker": t["per_speaker"], "group": "svm"})
    for name, net in nets.items():
        if net is None:
            continue
        ev = net["models"][net["chosen"]]["splits"][split]
        rows.append({"label": f"{name}, mean of {len(ev['per_seed'])} seeds", "acc": ev["summary"]["mean"],
                     "ci": ev["summary"]["mean_ci95"], "per_speaker": ev["per_speaker"]["seed_mean"], "group": name})
        rows.append({"label": f"{name}, seed ensemble", "acc": ev["ensemble"]["accuracy"],
                     "ci": ev["ensemble"]["accuracy_ci95"], "per_speaker": ev["per_speaker"]["ensemble"], "group": name})
    if anchors is not None:
        for kind, k in anchors["kinds"].items():
            for norm, r in k["tuned_by_norm"].items():
                t = r["splits"][split]
                how = "speaker-normalised" if norm == "speaker" else "as is"
                rows.append({"label": f"{anchors['meta'][kind]['label']} SVM, {how}", "acc": t["accuracy"],
                             "ci": t["accuracy_ci95"], "per_speaker": t["per_speaker"], "group": "anchors"})
    if fusion is not None:
        for name, r in fusion["models"].items():
            t = r["splits"][split]
            label = "combined: SVM + 1D + 2D" if name == "task" else "combined: all, with anchors"
            rows.append({"label": label, "acc": t["accuracy"], "ci": t["accuracy_ci95"],
                         "per_speaker": t["per_speaker"], "group": "combined"})
    return rows


def forest_figure(svm: dict, nets: dict[str, dict | None], path, anchors: dict | None = None,
                  fusion: dict | None = None) -> None:
    """Summary picture: every approach's accuracy with its 95% interval, one
    panel per evaluation split, chance marked."""
    import numpy as np

    plt = _mpl()
    splits = list(svm["keys"])
    per = {s: approaches(svm, nets, s, anchors, fusion) for s in splits}
    labels = [r["label"] for r in per[splits[0]]]
    fig, axes = plt.subplots(1, len(splits), figsize=(7.2, 0.22 * len(labels) + 0.9), sharey=True,
                             constrained_layout=True, squeeze=False)
    y = np.arange(len(labels))[::-1]
    colours = {"svm": "C7", **{name: f"C{i}" for i, name in enumerate(nets)}, "anchors": "C4", "combined": "C3"}
    for ax, s in zip(axes[0], splits):
        for yi, r in zip(y, per[s]):
            ax.errorbar(100 * r["acc"], yi, xerr=[[100 * (r["acc"] - r["ci"][0])], [100 * (r["ci"][1] - r["acc"])]],
                        fmt="o", ms=3.5, color=colours[r["group"]], ecolor=colours[r["group"]], lw=1, capsize=2)
        ax.axvline(100 * majority_rate(svm["keys"][s]), color="gray", ls=":", lw=0.8)
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"{s} accuracy (%)")
        ax.set_title(f"{s} ({len(svm['keys'][s])} clips)")
        ax.grid(axis="x", lw=0.3, alpha=0.5)
    axes[0][0].set_yticks(y, labels)
    save_figure(fig, path)


def speaker_word(svm: dict) -> str:
    """What the axes call a speaker when the caller does not say: "actor" when
    every evaluation clip has a RAVDESS file name, "speaker" otherwise (the
    data-set card's ``speaker_source.word`` is the reference; pass it on)."""
    from ser.data.speakers import RECOGNISERS

    names = [str(k).rsplit("/", 1)[-1] for ks in svm["keys"].values() for k in ks]
    return "actor" if names and all(RECOGNISERS["RAVDESS"].match(n) for n in names) else "speaker"


def per_speaker_figure(svm: dict, nets: dict[str, dict | None], path, fusion: dict | None = None, *,
                       word: str | None = None) -> None:
    """Accuracy per evaluation speaker: the spec SVM of the best feature type, the
    tuned SVM of the best feature type by cross-validation, each network's
    seed ensemble and the combined models; the speaker shift.

    Up to :data:`MAX_SPEAKERS_AS_LINES` speakers per split, one line per
    approach across the speakers; above, one box per approach (quartiles,
    median) with every speaker as a dot, approaches one below the other.
    The dotted line is the split's chance level (:func:`majority_rate`).
    ``word`` names a speaker on the axes (default: :func:`speaker_word`).
    """
    import numpy as np

    plt = _mpl()
    word = word or speaker_word(svm)
    splits = list(svm["keys"])
    hz = svm["readings"]["hz"]
    keep = {f"spec SVM, {hz['best']}", f"tuned SVM, {hz['best_by_cv']}"}
    per = {s: [r for r in approaches(svm, nets, s, None, fusion)
               if r["label"] in keep or (r["group"] != "svm" and "mean of" not in r["label"])] for s in splits}
    compact = compact_per_speaker(svm)
    if compact:
        n_rows = len(per[splits[0]])
        fig, axes = plt.subplots(1, len(splits), figsize=(7.2, 0.32 * n_rows + 1.0), sharey=True,
                                 constrained_layout=True, squeeze=False)
    else:
        fig, axes = plt.subplots(1, len(splits), figsize=(7.2, 2.8), sharey=True, constrained_layout=True,
                                 squeeze=False, gridspec_kw={"width_ratios": [max(2, len(per[s][0]["per_speaker"]))
                                                                              for s in splits]})
    for ax, s in zip(axes[0], splits):
        rows = per[s]
        speakers = list(rows[0]["per_speaker"])
        chance = 100 * majority_rate(svm["keys"][s])
        if compact:
            y = np.arange(len(rows))[::-1]
            data = [[100 * r["per_speaker"][a] for a in speakers] for r in rows]
            import matplotlib

            # matplotlib 3.10 names the orientation; "vert" is deprecated from 3.11
            horizontal = ({"orientation": "horizontal"} if tuple(int(p) for p in matplotlib.__version__.split(".")[:2])
                          >= (3, 10) else {"vert": False})
            ax.boxplot(data, positions=y, widths=0.55, showfliers=False, whis=1.5, **horizontal,
                       medianprops={"color": "k", "lw": 1}, boxprops={"lw": 0.7}, whiskerprops={"lw": 0.7},
                       capprops={"lw": 0.7})
            rng = np.random.default_rng(0)  # fixed jitter: the same figure every build
            for i, (yi, vals) in enumerate(zip(y, data)):
                ax.plot(vals, yi + rng.uniform(-0.18, 0.18, len(vals)), ".", ms=2.5, alpha=0.6, clip_on=False,
                        color=f"C{i}" if rows[i]["group"] != "svm" else "0.45")
            ax.axvline(chance, color="gray", ls=":", lw=0.8)
            ax.set_yticks(y, [r["label"] for r in rows])
            ax.set_xlim(0, 100)
            ax.set_xlabel(f"accuracy per {s} {word} (%)")
            ax.set_title(f"{s} ({len(speakers)} {word}s)")
            ax.grid(axis="x", lw=0.3, alpha=0.5)
        elif not speakers:  # a data set without speakers (speaker_pattern = "none")
            ax.text(0.5, 0.5, f"the {word}s of {s} are not known", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_ylim(0, 100)
            ax.set_title(s)
        else:
            x = np.arange(len(speakers))
            for i, r in enumerate(rows):
                style = (dict(marker="o", ms=3, lw=0.8) if r["group"] != "svm"
                         else dict(marker=".", ms=3, lw=0.5, ls="--"))
                ax.plot(x, [100 * r["per_speaker"][a] for a in speakers], label=r["label"],
                        color=f"C{i}", **style)
            ax.axhline(chance, color="gray", ls=":", lw=0.8)
            ax.set_xticks(x, speakers, rotation=90 if len(speakers) > 8 else 0)
            ax.set_xlabel(f"{s} {word}")
            ax.set_ylim(0, 100)
            ax.set_title(s)
    if not compact:
        axes[0][0].set_ylabel("accuracy (%)")
        axes[0][-1].legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_figure(fig, path)
