"""Parameter overrides from a TOML file (SER_CONFIG)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ser.config import CONFIG_ENV, Config, load_config
from ser.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def toml(tmp_path, text: str) -> Path:
    path = tmp_path / "overrides.toml"
    path.write_text(text)
    return path


def test_overrides_apply_with_tuples_and_floats(tmp_path):
    cfg = load_config(toml(tmp_path, """
        seed = 3
        [cnn1d]
        max_epochs = 2
        seeds = [0]
        lr = 1          # an int where a float is expected
        [features]
        bands_hz = [[300.0, 627.0], [628.0, 1060.0]]
    """))
    assert cfg.seed == 3
    assert cfg.cnn1d.max_epochs == 2 and cfg.cnn1d.seeds == (0,)
    assert cfg.cnn1d.lr == 1.0 and isinstance(cfg.cnn1d.lr, float)
    assert cfg.features.bands_hz == ((300.0, 627.0), (628.0, 1060.0))
    # everything else keeps its default
    assert cfg.cnn1d.batch_size == Config().cnn1d.batch_size and cfg.mel == Config().mel


def test_no_file_is_the_defaults():
    assert load_config(None) == Config()


@pytest.mark.parametrize("text, message", [
    ("[cnn3d]\nlr = 1.0\n", "cnn3d: unknown key"),
    ("[cnn1d]\nmax_epoch = 2\n", "[cnn1d] max_epoch: unknown key"),
    ("[cnn1d]\nmax_epochs = 'two'\n", "[cnn1d] max_epochs: expected int, got 'two'"),
    ("[cnn2d]\nfix_floor = 1\n", "[cnn2d] fix_floor: expected bool, got 1"),
    ("[cnn1d]\nseeds = 0\n", "[cnn1d] seeds: expected tuple, got 0"),
    ("svm = 1\n", "svm: expected a table [svm]"),
    ("[svm\n", "not valid TOML"),
])
def test_bad_overrides_name_the_file_and_key(tmp_path, text, message):
    path = toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.toml: cannot read"):
        load_config(tmp_path / "nowhere.toml")


def test_the_environment_variable_sets_config_at_import(tmp_path):
    path = toml(tmp_path, "[svm]\ngrid_C = [1.0, 2.0]\n")
    code = "import json; from ser.config import CONFIG; print(json.dumps(CONFIG.params('svm')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, CONFIG_ENV: str(path)}, check=True)
    assert json.loads(out.stdout)["svm"]["grid_C"] == [1.0, 2.0]


def test_params_is_plain_json_data():
    params = Config().params("mel", "seed")
    assert set(params) == {"mel", "seed"}
    assert json.loads(json.dumps(params))["mel"]["n_mels"] == Config().mel.n_mels
