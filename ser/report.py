"""Render the report: Jinja2 templates -> HTML -> PDF (WeasyPrint).

A section is one template ``report/sections/NN-key.html.j2`` and one results
file ``build/results/key.json``; the template sees that file as ``r`` (and
every results file of the folder as ``results[name]``). Sections appear in the order of NN. To add
a section, add both files: nothing else changes. A second section may read the
same results file: ``NN-key.name.html.j2`` (the appendix, ``90-data.appendix``,
reads ``data.json`` and the build facts in ``meta``).

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

from .errors import ConfigError, SerError
from .io import atomic_path, load_json

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


# -- filters: formatting only ------------------------------------------------

def pct(x, digits: int = 1) -> str:
    """0.5468 -> '54.7%'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        raise SerError("a percentage to print is missing (None or NaN)")
    return f"{100 * x:.{digits}f}%"


def pct_interval(pair, digits: int = 1) -> str:
    """(0.45, 0.63) -> '45.0–63.0%'."""
    lo, hi = pair
    return f"{100 * lo:.{digits}f}–{100 * hi:.{digits}f}%"


def num(x, digits: int = 2) -> str:
    return f"{x:.{digits}g}" if abs(x) < 1e-2 or abs(x) >= 1e4 else f"{x:.{digits}f}"


def pvalue(p: float) -> str:
    """A p-value as a reader wants it: '= 0.020', '= 0.31', '< 0.001'."""
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if p < 0.1 else f"= {p:.2f}"


def seconds(x) -> str:
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min"


def make_env(report_dir: str | Path):
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(report_dir)), undefined=StrictUndefined,
                      autoescape=True, lstrip_blocks=True)
    env.filters.update(pct=pct, pct_interval=pct_interval, num=num, seconds=seconds, pvalue=pvalue)
    return env


def render_html(report_dir, results_dir, figures_rel: str, meta: dict, *, screen: dict | None = None) -> str:
    """The whole report as one HTML string.

    Sections are rendered first; their ``<h2 id>``/``<h3 id>`` headings make
    the table of contents, so no title is written twice. ``screen`` is None
    for the PDF; for the HTML twin it holds what only the screen shows
    (``audio``: clip key -> ``data:`` URI; ``predictions_csv``: a link or None).
    """
    from markupsafe import Markup

    env = make_env(report_dir)
    sections = discover_sections(report_dir)
    results = {p.name[: -len(".json")]: load_json(p) for p in sorted(Path(results_dir).glob("*.json"))}
    for key, _ in sections:
        if key not in results:
            raise SerError(f"{Path(results_dir) / (key + '.json')}: results file of section '{key}' is missing "
                           "(run its doit task)")
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

    from .audio import read_mono

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
# results file -> the doit task that writes it, in build order
STEP_TASKS = {"data": "card", "features": "features", "svm": "svm", "anchors": "anchors", "images": "images",
              "cnn1d": "cnn1d", "cnn2d": "cnn2d", "fusion": "fusion", "summary": "summary"}
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

    from .dataset import find_data_dir
    from .errors import DataError

    results = {p.name[: -len(".json")]: load_json(p) for p in sorted(Path(results_dir).glob("*.json"))}
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
