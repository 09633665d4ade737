"""benchmarks/stats.py and benchmarks/imageset.py: medians, spreads, paired ratios, the generated image set."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import imageset
from benchmarks.stats import Summary, paired_ratios, summarize, verdict

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_summary_of_odd_and_even_counts():
    assert summarize([3.0, 1.0, 2.0]) == Summary(2.0, 1.0, 3.0, (3.0, 1.0, 2.0))
    assert summarize([4, 1, 2, 3]).median == 2.5
    assert summarize([5]).runs == 1


def test_summary_needs_values():
    with pytest.raises(ValueError):
        summarize([])


@given(st.lists(positive, min_size=1, max_size=20))
def test_median_lies_within_the_spread(values):
    summary = summarize(values)
    assert summary.low <= summary.median <= summary.high
    assert summary.low == min(values) and summary.high == max(values)
    assert Summary.from_dict(summary.to_dict()) == summary


def test_ratios_are_paired_per_run():
    # The second run was slow on both sides: its ratio is still 2.
    assert paired_ratios([2.0, 20.0, 4.0], [1.0, 10.0, 2.0]) == [2.0, 2.0, 2.0]
    assert summarize(paired_ratios([2.0, 20.0, 4.0], [1.0, 10.0, 2.0])).high == 2.0


def test_paired_ratios_refuse_mismatched_or_zero():
    with pytest.raises(ValueError):
        paired_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_ratios([1.0], [0.0])


def test_verdict_judges_the_median():
    assert verdict(summarize([1.0, 1.05, 1.5]), 1.10) == "met"
    assert verdict(summarize([1.2, 1.3]), 1.10) == "missed"
    assert verdict(summarize([6.0]), 5.5, higher_is_better=True) == "met"
    assert verdict(summarize([1.0]), None) == ""


def test_image_set_has_the_addons_images_at_several_hundred_mib():
    images = imageset.image_set()
    assert [i.reference for i in images][:1] == ["quay.io/cilium/cilium:v1.20.0"]
    assert {i.host for i in images} == {"quay.io", "registry.k8s.io"}
    assert 300 * imageset.MiB < imageset.full_size_bytes() < 600 * imageset.MiB
    # No layer is shared between repositories (their bytes ratios would blur).
    names = [name for image in images for name, _ in image.layers]
    assert len(names) == len(set(names))


def test_image_set_scales_every_layer_with_a_floor():
    full = imageset.image_set(1.0)
    quarter = imageset.image_set(0.25)
    for a, b in zip(full, quarter):
        for (name_a, size_a), (name_b, size_b) in zip(a.layers, b.layers):
            assert name_a == name_b
            assert size_b == max(imageset.MIN_LAYER, int(size_a * 0.25))
    assert all(size >= imageset.MIN_LAYER for i in imageset.image_set(0.0001) for _, size in i.layers)


def test_image_set_subset_and_bad_arguments():
    subset = imageset.image_set(0.1, imageset.ONE_PER_ADDON)
    assert [i.repository for i in subset] == list(imageset.ONE_PER_ADDON)
    with pytest.raises(ValueError):
        imageset.image_set(0)
    with pytest.raises(ValueError):
        imageset.image_set(1, ("library/nope",))


def test_line_fit_finds_intercept_and_slope():
    from benchmarks.stats import line_fit

    assert line_fit([(0, 1.0), (10, 2.0), (20, 3.0)]) == pytest.approx((1.0, 0.1))
    with pytest.raises(ValueError):
        line_fit([(1, 1.0), (1, 2.0)])
