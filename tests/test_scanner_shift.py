"""The synthetic cohort's scanner shift (docs/synthetic_cohort.md): contrast, noise and in-plane
resolution change as specified, and the identity shift changes nothing."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import polars as pl
import pytest
import yaml
from scipy.ndimage import binary_erosion, convolve

from cmrbias_dagster import cli
from cmrbias_dagster.lib.cohort.synthetic import CohortSpec, generate_subject, sample_demographics

TINY = {"matrix": 48, "pixel_mm": 3.0, "slices": 8, "slice_gap_mm": 10.0}
SUBJECTS = {"white": {"female": 1, "male": 1}}


def shifted_spec(scanner: dict | None, seed: int = 7) -> CohortSpec:
    mapping = {**TINY, "subjects": SUBJECTS}
    if scanner is not None:
        mapping["scanner"] = scanner
    return CohortSpec.from_mapping(mapping, seed=seed)


def first_subject(spec: CohortSpec):
    return generate_subject(sample_demographics(spec).row(0, named=True), spec)


def test_identity_shift_changes_no_voxel_and_no_summary():
    plain, identity = shifted_spec(None), shifted_spec({})
    assert "scanner" not in plain.summary() and plain.summary() == identity.summary()
    a, b = first_subject(plain), first_subject(identity)
    assert all(np.array_equal(a.images[p], b.images[p]) for p in a.images)


def test_contrast_gamma_darkens_myocardium_against_blood():
    plain, shifted = (
        first_subject(shifted_spec(None)),
        first_subject(shifted_spec({"contrast_gamma": 1.5})),
    )
    image, labels = plain.images["ED"].astype(float), plain.labels["ED"]
    after = shifted.images["ED"].astype(float)
    assert np.array_equal(labels, shifted.labels["ED"])  # the same person, another contrast
    # Label 1: LV blood pool, 2: myocardium, well inside (eroded) to skip partial volume.
    blood, muscle = (binary_erosion(labels == k, iterations=1) for k in (1, 2))
    before_ratio = image[muscle].mean() / image[blood].mean()
    after_ratio = after[muscle].mean() / after[blood].mean()
    assert after_ratio < before_ratio
    assert after_ratio == pytest.approx(before_ratio**1.5, rel=0.15)


def noise_sd(image: np.ndarray) -> float:
    """Immerkaer's estimate of the noise SD: the mean absolute response of a Laplacian
    difference kernel that cancels smooth signal, per slice, averaged over the slices."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=float)
    estimates = []
    for k in range(image.shape[2]):
        response = convolve(image[:, :, k].astype(float), kernel)[1:-1, 1:-1]
        estimates.append(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)
    return float(np.mean(estimates))


def test_noise_scale_multiplies_the_noise_estimate():
    plain = first_subject(shifted_spec(None))
    shifted = first_subject(shifted_spec({"noise_scale": 2.0}))
    ratio = noise_sd(shifted.images["ED"]) / noise_sd(plain.images["ED"])
    assert ratio == pytest.approx(2.0, rel=0.15)


def test_pixel_keeps_the_field_of_view():
    spec = shifted_spec({"pixel_mm": 3.6})
    assert spec.pixel_mm == 3.6 and spec.matrix == 40
    assert abs(spec.matrix * spec.pixel_mm - TINY["matrix"] * TINY["pixel_mm"]) <= spec.pixel_mm
    assert spec.summary()["scanner"] == {"contrast_gamma": 1.0, "noise_scale": 1.0, "pixel_mm": 3.6}
    assert first_subject(spec).images["ED"].shape == (40, 40, 8)


@pytest.mark.parametrize(
    ("scanner", "message"),
    [({"noise": 2.0}, "scanner must map"), ({"contrast_gamma": 0}, "contrast_gamma=0")],
)
def test_bad_scanner_values_raise(scanner, message):
    with pytest.raises(ValueError, match=message):
        shifted_spec(scanner)


def test_cli_writes_a_shifted_cohort_of_other_people(tmp_path):
    study = {"seed": 3, "profiles": {"tiny": {"synthetic_cohort": {**TINY, "subjects": SUBJECTS}}}}
    study_path = tmp_path / "study.yaml"
    study_path.write_text(yaml.safe_dump(study))
    common = ["generate-cohort", "--profile", "tiny", "--study", str(study_path), "--workers", "1"]
    assert cli.main([*common, "--out", str(tmp_path / "own")]) == 0
    shift = ["--seed", "4", "--scanner-gamma", "1.3", "--scanner-noise", "1.5"]
    shift += ["--scanner-pixel-mm", "3.6"]
    assert cli.main([*common, "--out", str(tmp_path / "shifted"), *shift]) == 0
    written = json.loads((tmp_path / "shifted" / "COHORT.json").read_text())
    assert written["seed"] == 4
    assert written["scanner"] == {"contrast_gamma": 1.3, "noise_scale": 1.5, "pixel_mm": 3.6}
    own, shifted = (pl.read_csv(tmp_path / f / "demographics.csv") for f in ("own", "shifted"))
    assert own["age"].to_list() != shifted["age"].to_list()
    subject = shifted["subject_id"][0]
    image = nib.load(tmp_path / "shifted" / subject / "sa_ED.nii.gz")
    assert image.header.get_zooms() == pytest.approx((3.6, 3.6, 10.0))
    assert image.shape == (40, 40, 8)
