"""Render the report: Jinja2 templates -> HTML -> PDF (WeasyPrint).

A section is one template ``report/sections/NN-key.html.j2`` and one results
file ``build/results/key.json``; the template sees that file as ``r`` (and
every results file of the folder as ``results[name]``). Sections appear in the order of NN. To add
a section, add both files: nothing else changes. A second section may read the
same results file: ``NN-key.name.html.j2`` (the appendix, ``90-data.appendix``,
reads ``data.json`` and the build facts in ``meta``).

Every template also sees the corpus' facts (:func:`corpus_facts`) as
``corpus``, the speaker words ``spk``/``spks``/``Spk``/``Spks`` ("actor" for
RAVDESS, "speaker" otherwise) and ``folds_of(v)``, a validation scheme in
words (:func:`describe_folds`), so no template assumes one corpus.

The same templates give two documents. The PDF is rendered with ``print.css``
(``screen`` is None in the templates). The HTML twin is rendered with
``screen`` set: ``screen.css`` in a ``<style>``, every figure and the example
clips embedded as ``data:`` URIs, so the one file works wherever it is moved.
"""
from __future__ import annotations

import base64
import html
import math
import os
import re
from pathlib import Path

from ser.errors import ConfigError, SerError
from ser.io import atomic_path
from ser.results import FILES, load_dir
from ser.report.filters import num, pct, pct_interval, pvalue, seconds

SECTION_NAME = re.compile(r"^(\d+)-([a-z0-9_]+)(?:\.[a-z0-9_]+)?\.html\.j2$")
IMG_SRC = re.compile(r'(<img[^>]*\ssrc=")([^"]+)(")')
MIME = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
HEADING = re.compile(r'<h([23]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)


def discover_sections(report_dir: str | Path) -> list[tuple[str, str]]:
    """``[(key, template name)]`` in the order of their number."""
    found = []
    for p in sorted((Path(report_dir) / "sections").glob("*.html.j2")):
        m = SECTION_NAME.match(p.name)
        if not m:
            raise ConfigError(f"{p}: a section template is named NN-key.html.j2 (e.g. 20-svm.html.j2) "
                              "or NN-key.name.html.j2")
        found.append((int(m.group(1)), m.group(2), f"sections/{p.name}"))
    return [(key, name) for _, key, name in sorted(found)]


def make_env(report_dir: str | Path):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(report_dir)), undefined=StrictUndefined,
                      autoescape=True, lstrip_blocks=True)
    env.filters.update(pct=pct, pct_interval=pct_interval, num=num, seconds=seconds, pvalue=pvalue)
    return env


# -- facts of the corpus the templates word themselves by ---------------------

BALANCE_TOLERANCE = 0.01
"""A split is balanced when its largest class's share is within this of 1/n_classes."""
MANY_SPEAKERS = 12
"""Above this many speakers in a split, the report gives counts and ranges instead of lists."""


def speaker_words(card: dict | None) -> dict[str, str]:
    """What the report calls a speaker: the card's ``speaker_source.word``
    ("actor" for RAVDESS, "speaker" otherwise; "speaker" without a card)."""
    word = card["speaker_source"]["word"] if card else "speaker"
    return {"spk": word, "spks": word + "s", "Spk": word.capitalize(), "Spks": word.capitalize() + "s"}


def class_balance(per_class: dict[str, int]) -> dict:
    """How the classes of one split are balanced (``per_class``: clips per class).

    ``chance`` is the majority class's share, the accuracy of always answering
    the largest class; it equals 1/n_classes when the classes are balanced.
    """
    n = sum(per_class.values())
    top = max(per_class.values()) if per_class else 0
    rate = top / n if n else 0.0
    uniform = 1 / len(per_class) if per_class else 0.0
    return {"n_clips": n, "n_classes": len(per_class), "per_class": dict(per_class), "majority_rate": rate,
            "majority_classes": [c for c, v in per_class.items() if v == top], "uniform_rate": uniform,
            "chance": rate, "balanced": abs(rate - uniform) <= BALANCE_TOLERANCE}


def chance_words(balance: dict, split: str) -> str:
    """'chance (25%)' for a balanced split; for an unbalanced one, which rate it is:
    "chance, the majority class's share of Test (Angry, 22.9%)"."""
    if balance["balanced"]:
        return f"chance ({pct(balance['chance'], 0)})"
    return (f"chance, the majority class's share of {split} "
            f"({', '.join(balance['majority_classes'])}, {pct(balance['chance'])})")


def _classes_of_keys(keys, classes) -> dict[str, int]:
    counts = {c: 0 for c in classes}
    for k in keys:
        c = str(k).split("/")[1]
        counts[c] = counts.get(c, 0) + 1
    return counts


def speaker_facts(split: dict) -> dict:
    """Speakers of one split of the card and their clips: the list, whether
    every speaker has as many clips, and the range."""
    per = split["clips_per_speaker"]
    speakers = [str(s) for s in split["speakers"]]
    counts = [per[s] for s in speakers if s in per] or [per[k] for k in per]
    out = {"n": len(speakers), "speakers": speakers, "known": split["speakers_known"],
           "per_speaker": {s: per[s] for s in speakers if s in per}, "many": len(speakers) > MANY_SPEAKERS}
    if counts:
        srt = sorted(counts)
        mid = len(srt) // 2
        out.update(equal=len(set(counts)) == 1, min=srt[0], max=srt[-1],
                   median=srt[mid] if len(srt) % 2 else (srt[mid - 1] + srt[mid]) / 2)
    else:
        out.update(equal=False, min=None, max=None, median=None)
    return out


def describe_folds(v: dict, words: dict[str, str], n_train_speakers: int | None = None) -> dict:
    """A validation scheme (``scheme``, ``n_folds``, ``speaker_independent``,
    ``folds`` as the networks' ``validation`` and the SVMs' ``folds`` record
    them) in the report's words.

    Returns
    -------
    dict with ``kind`` ("loso", "group" or "clips"), ``text`` (e.g.
    "leave-one-actor-out over the 4 training actors"), ``folds_phrase`` ("4
    leave-one-actor-out folds"), ``independent``, ``n_folds``, ``folds`` (names
    as text), ``labels`` (a column header per fold: "Actor 5 held out" or
    "fold 1"), ``short_labels`` (the names) and ``group_label`` (a header
    over the short labels).
    """
    spk, spks, Spk = words["spk"], words["spks"], words["Spk"]
    scheme, n, independent = v["scheme"], v["n_folds"], v["speaker_independent"]
    folds = [str(f) for f in v["folds"]]
    over = f"{n_train_speakers} training {spks}" if n_train_speakers else f"the training {spks}"
    if scheme.startswith("leave-one-"):
        kind = "loso"
        text = f"leave-one-{spk}-out over the {n} training {spks}"
        phrase = f"{n} leave-one-{spk}-out folds"
        labels, group = [f"{Spk} {f} held out" for f in folds], f"{Spk} held out"
    elif independent:
        kind = "group"
        text = f"{n}-fold stratified group cross-validation over {over}, all of a {spk}'s clips in one fold"
        phrase = f"{n} stratified group folds"
        labels, group = [f"fold {f}" for f in folds], "fold"
    else:
        kind = "clips"
        text = f"{n}-fold stratified cross-validation over the training clips"
        phrase = f"{n} stratified folds over clips"
        labels, group = [f"fold {f}" for f in folds], "fold"
    return {"kind": kind, "scheme": scheme, "text": text, "folds_phrase": phrase, "independent": independent,
            "n_folds": n, "folds": folds, "labels": labels, "short_labels": folds, "group_label": group}


def _recognised_corpus(results: dict) -> str | None:
    """The corpus whose file names every clip has (RAVDESS, CREMA-D, EmoDB), or None."""
    from ser.data.speakers import RECOGNISERS

    src = results["data"]["speaker_source"] if "data" in results else None
    if src is not None and src["kind"] == "recogniser":
        return src["detail"]
    keys = [k for ks in results["svm"]["keys"].values() for k in ks] if "svm" in results else []
    keys += results["mel_examples"]["clips"] if "mel_examples" in results else []
    names = [str(k).rsplit("/", 1)[-1] for k in keys]
    for corpus, rx in RECOGNISERS.items():
        if names and all(rx.match(n) for n in names):
            return corpus
    return None


def speaker_spread(svm: dict | None) -> dict | None:
    """The lowest and highest accuracy of any SVM (spec or tuned, bands in Hz)
    on a single speaker of any evaluation split: how far who speaks moves a
    score. None without SVM results or per-speaker scores."""
    if not svm:
        return None
    accs = [a for k in svm["readings"]["hz"]["kinds"].values() for m in ("spec", "tuned")
            for t in k[m]["splits"].values() for a in t["per_speaker"].values()]
    return {"min": min(accs), "max": max(accs)} if accs else None


def _per_speaker_compact(svm: dict | None) -> bool:
    """Whether the per-speaker figure shows distributions (:func:`ser.report.figures.per_speaker_figure`)."""
    from ser.report.figures import compact_per_speaker

    return bool(svm) and compact_per_speaker(svm)


def corpus_facts(results: dict[str, dict]) -> dict:
    """What the templates need to word the report for any corpus, from the
    results files present (the card ``data``, ``svm``, ``cnn1d``, ``cnn2d``).

    Returns
    -------
    dict with the speaker words (``spk`` ...), ``source_text`` (how the
    speakers were found, or None), ``corpus`` (a recognised corpus name or
    None), ``classes``, ``splits`` (per split: ``balance`` as
    :func:`class_balance`, ``chance_text``, ``speakers`` as
    :func:`speaker_facts`), ``chance_text`` (the chance line of a figure of
    every evaluation split, in words), ``eval_splits``, ``unbalanced_splits``,
    ``show_uar`` (an evaluation split is unbalanced: every accuracy table
    shows UAR beside it), ``speaker_spread`` (:func:`speaker_spread`),
    ``speakers_known`` (False for a data set without speakers),
    ``schemes`` (per model family present, :func:`describe_folds`) and
    ``protocol`` (the one scheme they share, or None when they differ or none
    is recorded).
    """
    card, svm = results.get("data"), results.get("svm")  # None: the build has no such file (yet)
    words = speaker_words(card)
    classes = card["classes"] if card else svm["classes"] if svm else []
    splits = {}
    for name, s in (card["splits"] if card else {}).items():
        splits[name] = {"balance": class_balance({c: s["per_class"].get(c, 0) for c in classes}),
                        "speakers": speaker_facts(s)}
    for name, keys in (svm["keys"] if svm else {}).items():
        if name not in splits:
            splits[name] = {"balance": class_balance(_classes_of_keys(keys, classes)), "speakers": None}
    for name, s in splits.items():
        s["chance_text"] = chance_words(s["balance"], name)
    eval_splits = [s for s in splits if s != "Train"]
    chances = list(dict.fromkeys(splits[s]["chance_text"] for s in eval_splits))
    if len(chances) > 1:  # say which split each balanced rate belongs to
        chances = [t if not splits[s]["balance"]["balanced"] else f"{t} on {s}"
                   for s, t in ((s, splits[s]["chance_text"]) for s in eval_splits)]
    train = splits["Train"]["speakers"] if "Train" in splits else None
    n_train = train["n"] if train and train["known"] and train["n"] else None
    schemes = {}
    if svm:  # every feature kind of every reading has the same folds
        first = next(iter(next(iter(svm["readings"].values()))["kinds"].values()))
        schemes["svm"] = describe_folds(first["folds"], words, n_train)
    for net in ("cnn1d", "cnn2d"):
        if net in results:
            schemes[net] = describe_folds(results[net]["validation"], words, n_train)
    texts = {(s["text"], s["independent"]) for s in schemes.values()}
    protocol = next(iter(schemes.values())) if len(texts) == 1 else None
    src = card["speaker_source"] if card else None
    speakers_known = train["known"] if train else True
    return {**words, "source_text": src and src["text"], "source_kind": src and src["kind"],
            "corpus": _recognised_corpus(results), "classes": classes, "n_classes": len(classes),
            "many_classes": len(classes) > 5, "splits": splits, "eval_splits": eval_splits,
            "chance_text": "; ".join(chances),
            "unbalanced_splits": [s for s in eval_splits if not splits[s]["balance"]["balanced"]],
            "show_uar": any(not splits[s]["balance"]["balanced"] for s in eval_splits),
            "speaker_spread": speaker_spread(svm),
            "per_speaker_compact": _per_speaker_compact(svm),
            "speakers_known": speakers_known, "schemes": schemes, "protocol": protocol,
            "independent": all(s["independent"] for s in schemes.values()) if schemes else speakers_known}


def report_env(report_dir, results: dict[str, dict]):
    """The templates' environment for one set of results: the filters, and as
    globals the corpus' facts (``corpus``), the speaker words (``spk``,
    ``spks``, ``Spk``, ``Spks``) and ``folds_of(v)`` (a validation scheme in
    words), which imported macros see too."""
    env = make_env(report_dir)
    facts = corpus_facts(results)
    train = facts["splits"]["Train"]["speakers"] if "Train" in facts["splits"] else None
    n_train = train["n"] if train and train["known"] and train["n"] else None
    words = speaker_words(results.get("data"))
    env.globals.update(corpus=facts, folds_of=lambda v: describe_folds(v, words, n_train), **words)
    return env


def render_html(report_dir, results_dir, figures_rel: str, meta: dict, *, screen: dict | None = None) -> str:
    """The whole report as one HTML string.

    Sections are rendered first; their ``<h2 id>``/``<h3 id>`` headings make
    the table of contents, so no title is written twice. ``screen`` is None
    for the PDF; for the HTML twin it holds what only the screen shows
    (``audio``: clip key -> ``data:`` URI; ``predictions_csv``: a link or None).
    """
    from markupsafe import Markup

    sections = discover_sections(report_dir)
    results = load_dir(results_dir)
    for key, _ in sections:
        if key not in results:
            raise SerError(f"{Path(results_dir) / (key + '.json')}: results file of section '{key}' is missing "
                           "(run its doit task)")
    env = report_env(report_dir, results)
    bodies = []
    for key, name in sections:
        bodies.append(env.get_template(name).render(r=results[key], results=results, fig=figures_rel, meta=meta,
                                                    screen=screen))
    body = "\n".join(bodies)
    toc = [{"level": int(lv), "id": i, "title": Markup(t).striptags()} for lv, i, t in HEADING.findall(body)]
    return env.get_template("base.html.j2").render(body=Markup(body), toc=toc, meta=meta, results=results,
                                                   screen=screen)


def check_images(html_text: str, base_dir: Path) -> None:
    """Every ``<img src>`` must exist: a missing figure fails the build."""
    missing = []
    for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', html_text):
        src = html.unescape(src)
        if "://" in src or src.startswith("data:"):
            continue
        if not (base_dir / src).is_file():
            missing.append(str((base_dir / src).resolve()))
    if missing:
        raise SerError("the report refers to missing figures: " + ", ".join(missing))


# -- the HTML twin: one file that works wherever it is moved -----------------

def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def inline_images(html_text: str, base_dir: Path) -> str:
    """Every local ``<img src>`` replaced by a ``data:`` URI of the file.

    SVG stays vector (``image/svg+xml``), PNG stays PNG. Call
    :func:`check_images` first: a missing file raises here too.
    """
    def embed(m: re.Match) -> str:
        src = html.unescape(m.group(2))
        if "://" in src or src.startswith("data:"):
            return m.group(0)
        path = base_dir / src
        mime = MIME.get(path.suffix.lower())
        if mime is None:
            raise SerError(f"{path}: a figure must be one of {', '.join(MIME)} to be embedded")
        return m.group(1) + data_uri(path.read_bytes(), mime) + m.group(3)

    return IMG_SRC.sub(embed, html_text)


def audio_data_uri(path, *, max_sr_hz: int = 16000) -> str:
    """A clip as ``data:audio/wav;base64,...``: mono, 16-bit PCM, at most ``max_sr_hz``.

    For listening in the HTML twin only (a 3.5 s clip is about 150 kB of text);
    the analysis never reads this copy.
    """
    import io

    import numpy as np
    import soundfile as sf
    from scipy.signal import resample_poly

    from ser.data.audio import read_mono

    y, sr_hz = read_mono(path)
    if sr_hz > max_sr_hz:
        g = math.gcd(int(sr_hz), int(max_sr_hz))
        y = resample_poly(y, max_sr_hz // g, sr_hz // g)
        sr_hz = max_sr_hz
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0), sr_hz, format="WAV", subtype="PCM_16")
    return data_uri(buf.getvalue(), "audio/wav")


# -- facts of the build for the reproducibility appendix ---------------------

PACKAGES = (
    ("numpy", ("numpy",)),
    ("scipy", ("scipy",)),
    ("librosa", ("librosa",)),
    ("soundfile", ("soundfile",)),
    ("scikit-learn", ("scikit-learn",)),
    ("torch", ("torch",)),
    ("opencv", ("opencv-python-headless", "opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless")),
    ("matplotlib", ("matplotlib",)),
    ("jinja2", ("jinja2",)),
    ("weasyprint", ("weasyprint",)),
    ("doit", ("doit",)),
)
# results file -> the doit task that writes it, in build order (one table: ser.results.FILES)
STEP_TASKS = {key: f.task for key, f in FILES.items()}
STEP_TIME_FIELDS = ("seconds", "timings_s", "extract_seconds")


def package_versions() -> dict[str, str]:
    """Installed version of each package the build uses (by distribution name)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for label, dists in PACKAGES:
        out[label] = "not installed"
        for d in dists:
            try:
                out[label] = version(d)
                break
            except PackageNotFoundError:
                continue
    return out


def cpu_facts() -> dict:
    """CPU model, physical cores and logical CPUs (from /proc/cpuinfo where there is one)."""
    import platform

    model, cores = None, set()
    try:
        for block in Path("/proc/cpuinfo").read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
            fields = {k.strip(): v.strip() for k, v in fields.items()}
            model = model or fields.get("model name") or fields.get("Model") or fields.get("cpu model")
            if "core id" in fields:
                cores.add((fields.get("physical id"), fields["core id"]))
    except OSError:
        pass
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model or platform.processor() or platform.machine() or "unknown",
        "physical_cores": len(cores) or None,
        "logical_cpus": os.cpu_count(),
        "available_cpus": available,
    }


def gpu_facts() -> list[str]:
    """Names of the CUDA devices torch sees (empty: CPU only)."""
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [f"{torch.cuda.get_device_name(i)} (CUDA {torch.version.cuda})" for i in range(torch.cuda.device_count())]


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def step_seconds(results: dict[str, dict]) -> list[dict]:
    """Wall time of each build step, read from its results file.

    Tolerant of the schema: a top-level ``seconds``, ``timings_s`` or
    ``extract_seconds`` that is a number is the step's time; a mapping gives
    its ``total`` (None when absent) and its other numbers as phases (keys
    naming threads are not times). A file without any of them is left out.

    Returns
    -------
    list of {"step": task name, "file": "key.json", "seconds": float or None,
    "phases": {name: seconds}}, in build order.
    """
    order = list(STEP_TASKS) + sorted(k for k in results if k not in STEP_TASKS)
    out = []
    for key in order:
        res = results.get(key)
        if not isinstance(res, dict):
            continue
        for field in STEP_TIME_FIELDS:
            v = res.get(field)
            if _is_number(v):
                out.append({"step": STEP_TASKS.get(key, key), "file": f"{key}.json", "seconds": float(v), "phases": {}})
                break
            if isinstance(v, dict):
                phases = {k: float(x) for k, x in v.items() if _is_number(x) and k != "total" and "thread" not in k}
                total = float(v["total"]) if _is_number(v.get("total")) else None
                if total is None and not phases:
                    continue
                out.append({"step": STEP_TASKS.get(key, key), "file": f"{key}.json", "seconds": total,
                            "phases": phases})
                break
    return out


def recorded_threads(results: dict[str, dict]) -> dict[str, int]:
    """torch threads a step recorded in its results (``threads``/``torch_threads``, up to one level down)."""
    names = ("torch_threads", "threads")
    out = {}
    for key, res in results.items():
        if not isinstance(res, dict):
            continue
        places = [res] + [v for v in res.values() if isinstance(v, dict)]
        for place in places:
            n = next((place[k] for k in names if _is_number(place.get(k))), None)
            if n is not None:
                out[STEP_TASKS.get(key, key)] = int(n)
                break
    return out


def _config_text(v) -> str:
    """A config value in a few characters: tuples as comma lists, nested ones in brackets."""
    if isinstance(v, (tuple, list)):
        if not v:
            return "()"
        return ", ".join(f"({_config_text(x)})" if isinstance(x, (tuple, list)) and x else _config_text(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def config_tables(cfg) -> list[dict]:
    """Every value of the build's config, one table per section.

    Returns
    -------
    list of {"section": name, "doc": first docstring line, "rows": [(field, text)]};
    top-level values (the global seed) come first as section "build".
    """
    import dataclasses

    top = {"section": "build", "doc": "Top-level values.", "rows": []}
    out = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            doc = (type(v).__doc__ or "").strip().splitlines()[0].replace("`", "") if type(v).__doc__ else ""
            out.append({"section": f.name, "doc": doc,
                        "rows": [(k, _config_text(x)) for k, x in dataclasses.asdict(v).items()]})
        else:
            top["rows"].append((f.name, _config_text(v)))
    return ([top] if top["rows"] else []) + out


def config_seeds(cfg) -> dict[str, str]:
    """Every config value whose name holds "seed", as ``section.field`` -> text."""
    import dataclasses

    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            out.update({f"{f.name}.{k}": _config_text(x) for k, x in dataclasses.asdict(v).items() if "seed" in k})
        elif "seed" in f.name:
            out[f.name] = _config_text(v)
    return out


def source_commit(project_dir) -> dict | None:
    """The git commit of the sources, and whether tracked files differ from it (None outside git)."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(project_dir), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=20, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(project_dir), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "modified": bool(dirty)}


def build_facts(results_dir, cfg, project_dir, data_dir) -> dict:
    """What the appendix states about the build: software, machine, config, times, how to rebuild.

    Parameters
    ----------
    data_dir : the data set's root as the build read it; only compared with
        the default location here (whether ``doit`` needs ``data_dir=``).
    """
    import platform

    from ser.data.dataset import find_data_dir
    from ser.errors import DataError

    results = load_dir(results_dir)
    saved = os.environ.pop("SER_DATA", None)  # where a fresh checkout would look, without the variable
    try:
        default = find_data_dir()
    except DataError:
        default = None
    finally:
        if saved is not None:
            os.environ["SER_DATA"] = saved
    return {
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "packages": package_versions(),
        "cpu": cpu_facts(),
        "gpus": gpu_facts(),
        "torch_threads": recorded_threads(results),
        "config": config_tables(cfg),
        "seeds": config_seeds(cfg),
        "steps": step_seconds(results),
        "source": source_commit(project_dir),
        "data_is_default": default is not None and Path(default).resolve() == Path(data_dir).resolve(),
    }


def write_report(report_dir, results_dir, html_path, pdf_path, figures_dir, meta: dict, *,
                 audio_clips: dict | None = None) -> None:
    """Render the PDF and its HTML twin atomically.

    The PDF uses ``print.css`` and the figures as files. The HTML
    (``html_path``) is one self-contained file: ``screen.css`` inlined, every
    figure and each clip of ``audio_clips`` (key -> WAV path) embedded as a
    ``data:`` URI; ``results/predictions.csv`` is linked when it exists. A
    missing figure fails both.
    """
    import logging

    from weasyprint import CSS, HTML

    report_dir, html_path, pdf_path = Path(report_dir), Path(html_path), Path(pdf_path)
    screen_css = report_dir / "screen.css"
    if not screen_css.is_file():
        raise SerError(f"{screen_css}: the HTML report's stylesheet is missing")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    figures_rel = Path(os.path.relpath(figures_dir, html_path.parent)).as_posix()
    # Both documents are made before either is written: a failure leaves the old pair.
    text = render_html(report_dir, results_dir, figures_rel, meta)
    check_images(text, html_path.parent)
    predictions = Path(results_dir) / "predictions.csv"
    screen = {
        "audio": {key: audio_data_uri(path) for key, path in (audio_clips or {}).items()},
        "predictions_csv": (Path(os.path.relpath(predictions, html_path.parent)).as_posix()
                            if predictions.is_file() else None),
    }
    page = render_html(report_dir, results_dir, figures_rel, meta, screen=screen)
    check_images(page, html_path.parent)
    page = inline_images(page, html_path.parent)
    style = screen_css.read_text(encoding="utf-8")
    page = page.replace("</head>", f"<style>\n{style}</style>\n</head>", 1)

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    # Font subsets carry a "modified" time; a fixed one makes equal inputs give
    # byte-identical PDFs (fontTools reads SOURCE_DATE_EPOCH).
    os.environ.setdefault("SOURCE_DATE_EPOCH", "946684800")
    css = CSS(filename=str(report_dir / "print.css"))
    with atomic_path(pdf_path) as tmp:
        HTML(string=text, base_url=str(html_path.parent) + "/").write_pdf(str(tmp), stylesheets=[css])
    with atomic_path(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
