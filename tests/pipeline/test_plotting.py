"""The figures draw what they are given (rnnlab.pipeline.plotting)."""

from __future__ import annotations

import numpy as np

from rnnlab.pipeline import plotting


def test_gradient_flow_draws_init_and_trained_per_model_on_a_log_axis():
    curve = {"distance": np.array([2, 1, 0]), "init": np.array([1.0, 10, 100]),
             "trained": np.array([3.0, 3, 3])}
    fig = plotting.gradient_flow({"task a": {"m1": curve, "m2": curve}, "task b": {"m3": curve}})
    left, right = fig.axes
    assert left.get_yscale() == "log" and left.xaxis_inverted()
    lines = {line.get_label(): line for line in left.get_lines()}
    assert set(lines) == {"m1, trained", "m1, at init", "m2, trained", "m2, at init"}
    np.testing.assert_allclose(lines["m1, at init"].get_ydata(), [1, 10, 100])
    assert lines["m1, at init"].get_linestyle() == "--"
    assert lines["m2, trained"].get_color() == lines["m2, at init"].get_color()
    assert len(right.get_lines()) == 2
