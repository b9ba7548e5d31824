"""Every parameter of the build, in one place.

Both ``ser/`` and ``dodo.py`` read :data:`CONFIG`. ``dodo.py`` passes the
sections a task reads (``CONFIG.params("mel", ...)``) to doit's
``config_changed`` so that a changed value re-runs exactly the tasks that use it.

The defaults below can be overridden without editing code: point the
``SER_CONFIG`` environment variable at a TOML file whose tables are named like
the fields of :class:`Config`::

    seed = 1
    [cnn1d]
    max_epochs = 2
    seeds = [0]            # TOML arrays become tuples

An unknown table or key is a :class:`~ser.errors.ConfigError` naming the file.
A value that is ``None`` by default can be given a number, but ``None`` itself
cannot be written in TOML.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ser.errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent
BUILD_DIR = PROJECT_DIR / "build"
CACHE_DIR = BUILD_DIR / "cache"
RESULTS_DIR = BUILD_DIR / "results"
MODELS_DIR = BUILD_DIR / "models"
IMAGES_DIR = BUILD_DIR / "images"
FIGURES_DIR = PROJECT_DIR / "figures"
REPORT_DIR = PROJECT_DIR / "report"


@dataclass(frozen=True)
class MelConfig:
    """Mel power spectrogram exactly as the spec asks (section 1)."""

    n_mels: int = 3401
    n_fft: int = 16384
    hop_s: float = 0.015  # hop length in seconds; hop = int(sr * hop_s) samples
    power: float = 2.0
    n_frames: int = 200  # frames kept (zero-padded when the clip is shorter)
    fmin_hz: float = 0.0
    fmax_hz: float | None = None  # None: sr / 2, librosa's default


@dataclass(frozen=True)
class FeatureConfig:
    """Spectral features per band (section 1)."""

    bands_hz: tuple[tuple[float, float], ...] = (
        (300.0, 627.0),
        (628.0, 1060.0),
        (1061.0, 1633.0),
        (1634.0, 2393.0),
        (2394.0, 3400.0),
    )
    kinds: tuple[str, ...] = ("SC", "SBW", "SBE")
    # "hz": a band holds mel bins whose centre frequency (Hz) lies in it, f_k in Hz.
    # "index": a band is the range of mel-bin indices, f_k = k (the other reading).
    readings: tuple[str, ...] = ("hz", "index")


@dataclass(frozen=True)
class SvmConfig:
    """SVMs on the spectral features (section 2)."""

    spec_C: float = 10.0
    spec_kernel: str = "rbf"
    # Grid searched by leave-one-training-actor-out cross-validation.
    grid_C: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
    grid_gamma: tuple[str | float, ...] = ("scale", 1e-4, 1e-3, 1e-2)
    grid_kernel: tuple[str, ...] = ("rbf", "linear")
    grid_transform: tuple[str, ...] = ("none", "log")
    # "speaker": each speaker's features z-scored by that speaker's own clips
    # (ser.data.speakers), validated as a candidate like the rest of the grid
    grid_norm: tuple[str, ...] = ("none", "speaker")


@dataclass(frozen=True)
class DataConfig:
    """How `doit data` turns a RAVDESS copy into the EmotionSpeech layout.

    (The classes of a build are the data set's class folders, alphabetical.)
    """

    # RAVDESS emotion code -> class folder, for `doit data`.
    ravdess_emotions: tuple[tuple[str, str], ...] = (
        ("02", "Calm"),
        ("03", "Happy"),
        ("04", "Sad"),
        ("05", "Angry"),
    )
    # EmoDB emotion letter (6th character of 03a01Fa.wav) -> class folder, for `doit data --corpus emodb`
    emodb_emotions: tuple[tuple[str, str], ...] = (
        ("W", "Angry"),
        ("F", "Happy"),
        ("T", "Sad"),
        ("N", "Neutral"),
        ("A", "Fear"),
        ("E", "Disgust"),
        ("L", "Boredom"),
    )
    # CREMA-D emotion (third field of 1001_DFA_ANG_XX.wav) -> class folder, for `doit data --corpus cremad`
    cremad_emotions: tuple[tuple[str, str], ...] = (
        ("ANG", "Angry"),
        ("HAP", "Happy"),
        ("SAD", "Sad"),
        ("NEU", "Neutral"),
        ("FEA", "Fear"),
        ("DIS", "Disgust"),
    )
    train_actors: tuple[int, ...] = (1, 2, 3, 4)
    test_actors: tuple[int, ...] = (5, 6, 7, 8)
    confirm_actors: tuple[int, ...] = ()  # `doit data --confirm 9-16` adds a Confirm split
    # Who speaks in each clip (ser.data.speakers): a speakers.csv at the data root wins; else this regular
    # expression with a group (?P<speaker>...) matched against the file name; "" tries the RAVDESS,
    # CREMA-D and EmoDB names; "none" opts in to clip-level folds that are not speaker-independent.
    speaker_pattern: str = ""
    # validation folds (SVM grid search and networks alike): leave one speaker out up to this many
    # training speakers, StratifiedGroupKFold with k_folds folds above it
    max_loso_speakers: int = 8
    k_folds: int = 5


@dataclass(frozen=True)
class OnsetConfig:
    """Where a network's fixed-length window starts when it is placed at the
    speech onset (ser.data.audio.speech_onset_s): the first frame louder than the
    clip's loudest frame by ``rel_db``, minus a margin. The same rule on every
    split; chosen by the design study on the training actors
    (bench/design_study.py)."""

    rel_db: float = -30.0
    margin_s: float = 0.1
    frame_s: float = 0.02
    hop_s: float = 0.01


@dataclass(frozen=True)
class Cnn2dConfig:
    """2D CNN on mel-spectrogram images (section 3.2); see ser/features/images.py and ser/models/cnn2d.py.

    The augmentation settings are compared by leave-one-actor-out validation
    inside the training actors. The window at the speech onset, the head that
    keeps frequency and the coordinate channel come from the design study on
    the training actors (bench/design_study.py); Test and Confirm were never
    used for a choice.
    """

    # image export (mel as MelConfig, but power=1)
    n_frames: int | None = 200  # 200 frames (3 s), one time scale; None: whole clip
    window: str = "onset"  # the frames begin at the speech onset ("onset") or the file's start ("start")
    fix_floor: bool = True  # min-max over X > 0 only (empty mel filters are all zero)
    dynamic_range: float | None = None  # natural-log units kept below the max; None: all
    low_at_bottom: bool = True  # lowest mel band is the image's bottom row
    size_hw: tuple[int, int] = (150, 50)  # network input, (height=mel, width=time)
    interpolation: str = "area"  # cv2.INTER_AREA for the shrink
    # network
    widths: tuple[int, ...] = (8, 16, 32, 32)  # conv channels; 2x2 max-pool between blocks
    head: str = "freq"  # "freq": average over time only, keep frequency; "gap": average over both axes
    coord: bool = True  # a second input channel holding each row's frequency position (+1 top .. -1 bottom)
    dropout: float = 0.5
    # training (Adam, cross-entropy)
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-3
    label_smoothing: float = 0.1
    max_epochs: int = 60  # validation curves run this long; epochs are picked from them
    smooth_epochs: int = 5  # moving-average window over the mean validation curve
    val_seeds: tuple[int, ...] = (0, 1)  # every fold trained once per seed; scores are their mean
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    # augmentation settings compared: (name, ((AugmentSpec field, value), ...))
    augmentations: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = (
        ("none", ()),
        ("image", (("hflip_p", 0.5), ("vflip_p", 0.5), ("rotate_deg", 10.0), ("crop_pad", 4))),
        ("spectrogram", (("shift_cols", 5), ("time_mask_cols", 6), ("freq_mask_rows", 15),
                         ("mixup_alpha", 0.4))),
    )
    # augmentation settings also validated (and trained to the end) on speaker-normalised images,
    # as "<name>, speaker-normalised": each speaker's per-row mean and spread of the log-mel, from
    # that speaker's own clips of its split, taken off before the image mapping. (): none, no such images
    speaker_norm: tuple[str, ...] = ("spectrogram",)


@dataclass(frozen=True)
class Cnn1dConfig:
    """1D CNN on the raw waveform (section 3.1); see ser/models/cnn1d.py.

    ``grid_window`` x ``grid_norm`` x ``grid_shift_s`` (and, at the windows
    of ``speaker_norm_windows``, ``norm="speaker_rms"`` with each shift) are
    compared by leave-one-actor-out validation inside the training actors. The shortlist
    (clip standardisation, +-0.25 s shift; window at the start or at the
    speech onset) and the rest come from the design study on the training
    actors (bench/design_study.py, bench/design_study_results/); Test and
    Confirm were never used for a choice.
    """

    # input: (n_frames + 1) * int(sr * hop_s) samples, as the spec's data set
    n_frames: int = 200
    hop_s: float = 0.015
    sr_hz: int = 16000  # every clip resampled to this rate (files are 48 kHz)
    # network (WaveCNN, M5-like)
    n_channels: int = 32
    first_kernel_ms: float = 5.0  # first (strided) convolution's span
    first_stride_ms: float = 1.0
    n_blocks: int = 4  # Conv1d-BatchNorm-ReLU-MaxPool(4) blocks
    n_hidden: int = 64  # hidden fully connected units
    dropout: float = 0.5
    # training (Adam, cross-entropy)
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-3  # Adam's L2 penalty
    label_smoothing: float = 0.1
    gain_db: float = 0.0  # random gain augmentation, +-dB
    max_epochs: int = 80  # validation curves run this long; epochs are picked from them (design study: 50 cut the 1D curves while still rising)
    smooth_epochs: int = 5  # moving-average window over the mean validation curve
    # candidates compared by validation
    grid_window: tuple[str, ...] = ("start", "onset")  # window at the file's start or the speech onset
    grid_norm: tuple[str, ...] = ("clip_std",)  # also "spec", "train_rms", "speaker_rms" (ser.models.cnn1d.normalise)
    grid_shift_s: tuple[float, ...] = (0.25,)  # random time shift, +-seconds
    # windows (of grid_window) at which a norm="speaker_rms" candidate (each shift) is validated too: each clip
    # divided by its speaker's RMS level, from that speaker's own clips in the same split; () for none
    speaker_norm_windows: tuple[str, ...] = ("onset",)
    val_seeds: tuple[int, ...] = (0, 1)  # every fold trained once per seed; scores are their mean
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class AnchorsConfig:
    """The field's anchors (report section "Beyond the task"), each through the SVMs' protocol ([svm]).

    ``egemaps``: the eGeMAPSv02 functionals (88 values per clip) of the
    ``opensmile`` package; ``ge2e``: the 256-value GE2E speaker-encoder
    embedding of the ``resemblyzer`` package (weights inside its wheel). ():
    no anchors, no combined model with them.
    """

    kinds: tuple[str, ...] = ("egemaps", "ge2e")


@dataclass(frozen=True)
class FusionConfig:
    """Combined models (ser.models.fusion): a weighted mean of the members' class
    probabilities, the weights chosen on out-of-fold probabilities of the
    training actors (highest accuracy; ties: lower log loss, then grid order).

    ``task``: the tuned SVM of the feature type ranked first by
    cross-validation, the 1D CNN and the 2D CNN, weights on a grid of
    ``step_task``; ``all``: those and the anchors, on a grid of ``step_all``.
    """

    step_task: float = 0.1
    step_all: float = 0.2
    calibration: str = "sigmoid"  # SVM decision values -> probabilities (CalibratedClassifierCV)


@dataclass(frozen=True)
class RunsConfig:
    """How the networks' training runs are executed (ser/models/runs.py).

    The protocol's runs (candidate x fold x validation seed, then the final
    seeds) are independent: ``n_jobs`` of them train side by side, each in its
    own process with ``threads`` torch threads, and each is kept in the run
    cache (build/cache/runs/) and read back when the same run recurs. A run's
    numbers do not depend on ``n_jobs`` or on the cache; they do depend on
    ``threads`` (the 2D CNN's do), so ``threads`` is part of a run's key.
    """

    n_jobs: int = 1  # runs side by side; 0: the usable cores over threads; always 1 on a GPU
    threads: int = 2  # torch threads per run and per network step (the anchors' too); 0: torch's default
    cache: bool = True  # keep and reuse every run's output in build/cache/runs/


@dataclass(frozen=True)
class Config:
    mel: MelConfig = field(default_factory=MelConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    svm: SvmConfig = field(default_factory=SvmConfig)
    data: DataConfig = field(default_factory=DataConfig)
    cnn2d: Cnn2dConfig = field(default_factory=Cnn2dConfig)
    cnn1d: Cnn1dConfig = field(default_factory=Cnn1dConfig)
    onset: OnsetConfig = field(default_factory=OnsetConfig)
    anchors: AnchorsConfig = field(default_factory=AnchorsConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    runs: RunsConfig = field(default_factory=RunsConfig)
    seed: int = 0

    def section(self, name: str) -> str:
        """A stable text of one section."""
        return repr(dataclasses.asdict(getattr(self, name)))

    def params(self, *names: str) -> dict:
        """``{name: value}`` of some sections (or top-level values) as plain
        JSON data, for doit's ``config_changed``."""
        out = {}
        for name in names:
            value = getattr(self, name)
            out[name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return out


CONFIG_ENV = "SER_CONFIG"


def _coerce(value, default, where: str):
    """A TOML value as the type of the field's default (arrays -> tuples)."""
    if isinstance(value, list):
        if default is not None and not isinstance(default, tuple):
            raise ConfigError(f"{where}: expected {type(default).__name__}, got an array")
        return tuple(_coerce(v, None, where) for v in value)
    if isinstance(value, dict):
        raise ConfigError(f"{where}: expected a value, got a table")
    if default is None:  # a None default takes any value
        return value
    if isinstance(value, bool) or isinstance(default, bool):
        ok = type(value) is type(default)
    elif isinstance(default, float):  # 1 is fine where 1.0 is expected
        ok, value = isinstance(value, (int, float)), float(value) if isinstance(value, (int, float)) else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")
    return value


def _replace(obj, changes: dict, path: Path, prefix: str = ""):
    """``obj`` (a frozen dataclass) with ``changes`` from a TOML table applied."""
    fields = {f.name for f in dataclasses.fields(obj)}
    new = {}
    for key, value in changes.items():
        where = f"{path}: [{prefix}] {key}" if prefix else f"{path}: {key}"
        if key not in fields:
            raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(fields))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a table [{key}], got {value!r}")
            new[key] = _replace(current, value, path, key)
        else:
            new[key] = _coerce(value, current, where)
    return dataclasses.replace(obj, **new)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """The defaults, with the overrides of the TOML file ``path`` (if any) applied."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        with open(path, "rb") as f:
            changes = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return _replace(Config(), changes, path)


CONFIG_FILE = os.environ.get(CONFIG_ENV) or None  # the override file in use, if any
CONFIG = load_config(CONFIG_FILE)
