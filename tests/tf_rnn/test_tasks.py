"""The task losses, sine generation on fed-back predictions and the test scores
(rnnlab.tf_rnn.losses, .tasks)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.pipeline.datasets import make_dataset
from rnnlab.pipeline.sequences import memory_task
from rnnlab.tf_rnn._tf import tf
from rnnlab.tf_rnn.losses import (
    ADDING_LOSS, MEMORY_LOSS, SINE_LOSS, adding_mse, memory_loss_per_step, memory_loss_summed,
    sine_mse)
from rnnlab.tf_rnn.model import make_model
from rnnlab.tf_rnn.tasks import evaluate_adding, evaluate_memory, evaluate_sine, generate_sine
from rnnlab.tf_rnn.train import train


def test_sine_loss_is_mse_over_batch_and_steps():
    pred = np.array([[[1.0], [2.0]], [[0.0], [-1.0]]], np.float32)   # (2, 2, 1)
    target = np.array([[0.0, 2.0], [1.0, 1.0]], np.float32)          # (2, 2)
    assert float(sine_mse(pred, target)) == pytest.approx((1 + 0 + 1 + 4) / 4)
    assert float(sine_mse(pred[..., 0], target)) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="does not match"):
        sine_mse(pred[:, :1], target)
    assert SINE_LOSS.fn is sine_mse and not SINE_LOSS.sums_over_batch


def test_memory_loss_sums_batch_of_per_step_means():
    # element 0: two steps with CE ln 2 and ln 2 (two equal logits); element 1: one step with
    # CE ln 3 (three equal logits) and one with log(1 + 2 e^-10) (confident and right)
    logits = np.array([[[0, 0, -1e9], [5, 5, -1e9]],
                       [[1, 1, 1], [10, 0, 0]]], np.float32)
    labels = np.array([[0, 1], [2, 0]])
    per_seq = [np.log(2.0), (np.log(3.0) + np.log1p(2 * np.exp(-10.0))) / 2]
    assert float(memory_loss_summed(logits, labels)) == pytest.approx(sum(per_seq), rel=1e-5)
    assert float(memory_loss_per_step(logits, labels)) == pytest.approx(np.mean(per_seq), rel=1e-5)
    assert MEMORY_LOSS.fn is memory_loss_summed and MEMORY_LOSS.sums_over_batch


def _affine_model(a=0.5, b=0.5):
    """y_t = a * ReLU(x_t) + b: a known model, so generation can be checked by hand."""
    model = make_model("rnn", 1, 1, lstm_hidden=1, rnn_hidden=1)
    model.set_weights({"cell/kernel": [[1.0]], "cell/recurrent_kernel": [[0.0]],
                       "cell/bias": [0.0], "output/kernel": [[a]], "output/bias": [b]})
    return model


def test_generate_sine_feeds_back_its_own_predictions():
    given = np.array([[0.2, 0.9, 0.3], [1.0, 0.1, 2.0]], np.float32)
    generated = generate_sine(_affine_model(), given, 4)
    expected = np.zeros((2, 4))
    value = given[:, -1]
    for j in range(4):          # first estimate from the last true sample, then its own output
        value = 0.5 * np.maximum(value, 0) + 0.5
        expected[:, j] = value
    np.testing.assert_allclose(generated, expected, atol=1e-6)


def test_evaluate_sine_alignment():
    """Curves that follow the model exactly after the given part give zero free-running error;
    off by one sample, it would not be zero."""
    model, n_given, n_gen = _affine_model(), 3, 5
    curves = np.zeros((2, n_given + n_gen), np.float32)
    curves[:, :n_given] = [[0.2, 0.9, 0.3], [1.0, 0.1, 2.0]]
    for t in range(n_given, n_given + n_gen):
        curves[:, t] = 0.5 * curves[:, t - 1] + 0.5
    result = evaluate_sine(model, curves, n_given, n_gen)
    assert result["generated"].shape == (2, n_gen)
    np.testing.assert_allclose(result["generated"], curves[:, n_given:], atol=1e-6)
    assert result["test_mse_free_running"] == pytest.approx(0.0, abs=1e-10)
    one_step = (0.5 * curves[:, :-1] + 0.5 - curves[:, 1:]) ** 2   # wrong only inside `given`
    assert result["test_mse_one_step"] == pytest.approx(one_step.mean(), rel=1e-5)
    with pytest.raises(ValueError, match="n_given \\+ n_generated"):
        evaluate_sine(model, curves[:, :-1], n_given, n_gen)


class _FixedLogits:
    """Stands in for a model: returns given logits, whatever the input."""

    n_in = n_out = 10

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, x):
        return tf.constant(self.logits[: len(x)])


def test_evaluate_memory_counts_only_recalled_positions():
    L, B = 3, 2
    inputs, targets = memory_task(4, L, B, 8, np.random.default_rng(9))
    T = targets.shape[1]
    logits = np.full((4, T, 10), -5.0, np.float32)
    logits[:, :, 0] = 5.0                                   # wrong on every blank step ...
    n, t = np.meshgrid(np.arange(4), np.arange(T - L, T), indexing="ij")
    logits[n, t, :] = -5.0
    logits[n, t, targets[:, T - L:]] = 5.0                  # ... right on the recalled ones
    logits[0, T - 1] = np.roll(logits[0, T - 1], 1)         # one recall error, last position
    result = evaluate_memory(_FixedLogits(logits), inputs, targets, L)
    assert result["test_accuracy"] == pytest.approx(11 / 12)
    assert result["accuracy_by_position"] == pytest.approx([1.0, 1.0, 0.75])
    assert result["test_loss"] == pytest.approx(float(memory_loss_per_step(logits, targets)))


def test_adding_loss_is_the_last_steps_squared_error():
    pred = np.array([[[9.0], [1.0]], [[9.0], [0.5]]], np.float32)   # (2, 2, 1): last step counts
    assert float(adding_mse(pred, np.array([1.5, 0.5], np.float32))) == pytest.approx(0.125)
    assert ADDING_LOSS.fn is adding_mse and not ADDING_LOSS.sums_over_batch
    with pytest.raises(ValueError, match=r"predictions \(batch, time, 1\) and targets \(batch,\)"):
        adding_mse(pred[..., 0], np.zeros(2, np.float32))


def test_adding_scores_the_memoryless_answer_at_the_baseline():
    data = make_dataset("adding", {"seed": 1, "seq_len": 8, "n_train": 10, "n_test": 2000})["test"]
    model = make_model("rnn", 2, 1, lstm_hidden=2, rnn_hidden=2, seed=0)
    for var in model.cell.weights.values():
        var.assign(tf.zeros_like(var))
    model.output_layer.kernel.assign(tf.zeros_like(model.output_layer.kernel))
    model.output_layer.bias.assign([1.0])  # always 1
    scores = evaluate_adding(model, data["inputs"], data["targets"])
    assert scores["test_mse"] == pytest.approx(scores["baseline_mse_measured"], rel=1e-5)
    assert scores["test_mse"] == pytest.approx(1 / 6, abs=0.01) and scores["baseline_mse"] == 1 / 6
    assert scores["solved_fraction"] < 0.1


def test_an_lstm_learns_the_adding_problem_to_a_tenth_of_the_baseline():
    data = make_dataset("adding", {"seed": 0, "seq_len": 10, "n_train": 2000, "n_test": 500})
    model = make_model("lstm", 2, 1, lstm_hidden=16, seed=0)
    train(model, ADDING_LOSS, data["train"]["inputs"], data["train"]["targets"], epochs=10,
          batch_size=50, learning_rate=0.01, seed=0, desc="adding")
    scores = evaluate_adding(model, data["test"]["inputs"], data["test"]["targets"])
    assert scores["test_mse"] < (1 / 6) / 10   # 0.0022 when written (0.0043, 0.0053: seeds 1, 2)
    assert scores["solved_fraction"] > 0.3
