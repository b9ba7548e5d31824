import shutil

from ser.card import build_card
from ser.dataset import class_names, list_clips


def test_card_counts_and_clean_splits(tiny_dataset):
    card = build_card(list_clips(tiny_dataset), class_names(tiny_dataset), str(tiny_dataset), 0.015)
    assert card["splits"]["Train"]["per_class"] == {"Angry": 2, "Calm": 2, "Happy": 2, "Sad": 2}
    assert card["splits"]["Test"]["actors"] == [5, 6]
    assert card["splits"]["Train"]["sample_rates_hz"] == [16000]
    assert card["leakage"]["clean"]


def test_card_finds_shared_actor_and_copied_audio(tiny_dataset, capsys):
    src = tiny_dataset / "Train" / "Sad" / "03-01-04-01-01-01-01.wav"
    # same audio under another name in Test, spoken by a training actor
    shutil.copy(src, tiny_dataset / "Test" / "Sad" / "03-01-04-01-01-02-01.wav")
    card = build_card(list_clips(tiny_dataset), class_names(tiny_dataset), str(tiny_dataset), 0.015)
    assert card["leakage"]["shared_actors"] == [1]
    assert card["leakage"]["duplicate_audio"] == [["Train/Sad/03-01-04-01-01-01-01.wav",
                                                   "Test/Sad/03-01-04-01-01-02-01.wav"]]
    assert not card["leakage"]["clean"]
    assert "WARNING: leakage" in capsys.readouterr().err
