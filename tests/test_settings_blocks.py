"""Profile blocks of data/study.yaml become typed settings; typos and bad values are refused."""

import pytest

from cmrbias_dagster.lib.design.settings import PredictionSettings, TrainingSettings


def test_paper_defaults_and_fingerprint() -> None:
    paper = TrainingSettings.from_mapping({"epochs": 500, "iterations_per_epoch": 250})
    assert paper == TrainingSettings()
    quick = TrainingSettings.from_mapping({"epochs": 10, "augmentation_workers": 0, "threads": 1})
    assert quick.fingerprint() != paper.fingerprint()
    # How augmentation and torch's threads run does not change what is trained: no retrain.
    assert quick.fingerprint() == TrainingSettings(epochs=10).fingerprint()
    assert PredictionSettings.from_mapping(None) == PredictionSettings(mirroring=True)
    # bf16 and the optimizer change what is trained: a new stamp, a retrain.
    for changed in ({"cpu_bf16": True}, {"optimizer": "adamw"}, {"initial_lr": 0.003}):
        assert TrainingSettings(epochs=10, **changed).fingerprint() != quick.fingerprint()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: TrainingSettings.from_mapping({"epoch": 5}),
            "unknown training setting(s) ['epoch']",
        ),
        (lambda: PredictionSettings.from_mapping({"mirror": False}), "unknown prediction setting"),
        (lambda: TrainingSettings.from_mapping({"epochs": 0}), "'epochs' must be a positive"),
        (lambda: TrainingSettings.from_mapping({"save_every": True}), "'save_every' must be"),
        (lambda: TrainingSettings.from_mapping({"augmentation_workers": -1}), "must be >= 0"),
        (lambda: TrainingSettings.from_mapping({"threads": 0}), "'threads' must be >= 1, got 0"),
        (lambda: PredictionSettings.from_mapping({"threads": "2"}), "'threads' must be >= 1"),
        (lambda: TrainingSettings.from_mapping({"cpu_bf16": "yes"}), "'cpu_bf16' must be true or"),
        (lambda: TrainingSettings.from_mapping({"optimizer": "adam"}), "one of ('sgd', 'adamw')"),
        (lambda: TrainingSettings.from_mapping({"initial_lr": 2}), "'initial_lr' must lie in"),
        (lambda: TrainingSettings.from_mapping({"initial_lr": 0}), "'initial_lr' must lie in"),
    ],
)
def test_bad_blocks_are_refused(build, message: str) -> None:
    with pytest.raises(ValueError) as error:
        build()
    assert message in str(error.value)
