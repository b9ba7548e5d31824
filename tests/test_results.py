"""ser.results: one definition of the build's results files, checked where they are written and read."""
import json

import pytest

from results_fixtures import complete, empty
from ser import results
from ser.results import FILES, ResultsError


def test_every_results_file_has_a_schema_its_smallest_value_meets():
    for key, f in FILES.items():
        assert f.name == f"{key}.json" and f.stamp == f"{key}/{f.version}"
        assert results.problems(empty(f.schema), f.schema) == [], key


def test_save_stamps_the_version_and_load_gives_back_what_was_saved(tmp_path):
    obj = complete("mel_examples", {"clips": ["Test/Angry/a.wav"]})
    results.save("mel_examples", tmp_path / "mel_examples.json", obj)
    on_disk = json.loads((tmp_path / "mel_examples.json").read_text())
    assert on_disk == {"schema": "mel_examples/1", "clips": ["Test/Angry/a.wav"]}
    assert results.load("mel_examples", tmp_path / "mel_examples.json") == on_disk


def test_a_missing_field_stops_the_writer_with_the_file_and_the_field_and_writes_nothing(tmp_path):
    card = complete("data", {})
    del card["splits"]
    with pytest.raises(ResultsError, match=r"data\.json: .*field splits: missing"):
        results.save("data", tmp_path / "data.json", card)
    assert list(tmp_path.iterdir()) == []


def test_a_field_deep_inside_mappings_is_named_by_its_whole_path(tmp_path):
    svm = complete("svm", {"readings": {"hz": {"kinds": {"SBE": {"spec": {"cv_mean": 0.5}}}}}})
    assert results.problems(svm, FILES["svm"].schema) == []
    svm["readings"]["hz"]["kinds"]["SBE"]["spec"]["cv_mean"] = "0.5"
    del svm["readings"]["hz"]["kinds"]["SBE"]["tuned"]["splits"]
    found = results.problems(svm, FILES["svm"].schema)
    assert found == ["field readings.hz.kinds.SBE.spec.cv_mean: expected a number, got str '0.5'",
                     "field readings.hz.kinds.SBE.tuned.splits: missing"]


@pytest.mark.parametrize("value, ok", [(1, True), (1.5, True), (True, False), (None, False), ("1", False)])
def test_numbers_are_numbers_and_not_booleans(value, ok):
    assert (results.problems(value, float) == []) is ok


def test_whole_numbers_optional_fields_and_unions():
    assert results.problems(2, int) == [] and results.problems(2.0, int) != []
    verdicts = complete("summary", {"splits": {"Test": {}}})["splits"]["Test"]
    assert "cnn1d" not in verdicts  # NotRequired: a build without the 1D CNN
    assert results.problems(verdicts, results.SplitVerdicts) == []
    assert results.problems({**verdicts, "cnn1d": 3}, results.SplitVerdicts) == [
        "field cnn1d: expected a mapping, got int 3"]
    assert results.problems(None, results.Validation.__annotations__["runner_up"]) == []
    assert results.problems(3, results.Validation.__annotations__["runner_up"]) != []


def test_fields_the_schema_does_not_list_are_kept_unchecked(tmp_path):
    obj = {**complete("design", {}), "extra": {"anything": [1, "x"]}}
    results.save("design", tmp_path / "design.json", obj)
    assert results.load("design", tmp_path / "design.json")["extra"] == {"anything": [1, "x"]}


@pytest.mark.parametrize("stamp", [None, "design/0", "svm/1"])
def test_a_file_of_another_version_stops_the_reader(tmp_path, stamp):
    obj = complete("design", {})
    if stamp:
        obj["schema"] = stamp
    (tmp_path / "design.json").write_text(json.dumps(obj))
    with pytest.raises(ResultsError, match=r"design\.json: field schema: expected 'design/1'"):
        results.load("design", tmp_path / "design.json")


def test_a_file_changed_after_writing_is_caught_on_reading(tmp_path):
    results.save("mel_examples", tmp_path / "mel_examples.json", {"clips": ["a"]})
    (tmp_path / "mel_examples.json").write_text(json.dumps({"schema": "mel_examples/1", "clips": "a"}))
    with pytest.raises(ResultsError, match=r"mel_examples\.json: .*field clips: expected a list"):
        results.load("mel_examples", tmp_path / "mel_examples.json")


def test_load_dir_checks_the_builds_files_and_reads_a_users_own_as_plain_json(tmp_path):
    results.save("mel_examples", tmp_path / "mel_examples.json", {"clips": []})
    (tmp_path / "mine.json").write_text('{"x": 1}')
    assert results.load_dir(tmp_path) == {"mel_examples": {"schema": "mel_examples/1", "clips": []},
                                          "mine": {"x": 1}}
    (tmp_path / "design.json").write_text('{"tables": {}}')
    with pytest.raises(ResultsError, match="design.json"):
        results.load_dir(tmp_path)


def test_the_build_and_the_report_read_one_table_of_results_files():
    import dodo
    from ser.report.render import STEP_TASKS

    assert set(dodo.RESULTS) == set(FILES)
    assert all(dodo.RESULTS[k].name == f.name for k, f in FILES.items())
    assert STEP_TASKS == {k: f.task for k, f in FILES.items()}
    tasks = {name.removeprefix("task_") for name in dir(dodo) if name.startswith("task_")}
    for key, f in FILES.items():  # each file is written by the task the table names
        assert f.task.split(":")[0] in tasks, key
