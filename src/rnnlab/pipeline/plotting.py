"""The PNG figures of the pipeline (matplotlib, headless). Each function returns a Figure;
stages save it with `rnnlab.pipeline.files.write_png` so the file appears atomically."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers, CI or inside DVC

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

def exploding_gradients(seq_len, grad_no_clip, grad_clip, clip_norm: float):
    """Log-log plot of the mean |gradient| against sequence length, with and without clipping."""
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.loglog(seq_len, grad_no_clip, label="no clipping")
    ax.loglog(seq_len, grad_clip, label=f"global-norm clipping at {clip_norm:g}")
    ax.set_xlabel("sequence length (time steps backpropagated)")
    ax.set_ylabel("mean |gradient| over all parameters")
    ax.set_title("Exploding gradients in a ReLU RNN (numpy BPTT)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def sine_extrapolation(curves, generated, n_given: int, x_spacing: float, title: str):
    """Truth vs the given part vs the generated part of a few test curves.

    curves: (K, n_given + n_generated) true samples; generated: (K, n_generated) the model's
    free-running predictions, where generated[:, j] estimates curves[:, n_given + j].
    """
    k, length = curves.shape
    x = x_spacing * np.arange(length)
    fig, axes = plt.subplots(k, 1, figsize=(8, 1.8 * k + 0.6), sharex=True, layout="constrained")
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.plot(x, curves[i], color="0.7", lw=3, label="truth")
        ax.plot(x[:n_given], curves[i, :n_given], color="tab:blue", lw=1.5,
                label="given to the model")
        ax.plot(x[n_given:], generated[i], color="tab:red", lw=1.5, ls="--",
                label="generated (own predictions fed back)")
        ax.axvline(x[n_given] - x_spacing / 2, color="0.4", lw=0.8, ls=":")
        ax.set_ylabel("sin(x/f)")
        ax.set_ylim(-1.4, 1.4)
    axes = np.atleast_1d(axes)
    axes[0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1].set_xlabel(f"x (samples {x_spacing:g} apart)")
    fig.suptitle(title)
    return fig


def _mark_failures(ax, delays, counts, color) -> None:
    """An x at the bottom of the panel for each delay where some seed's run failed."""
    where = [d for d, n in zip(delays, counts, strict=True) if n]
    if where:
        ax.plot(where, [0.02] * len(where), ls="none", marker="x", ms=9, mew=2, color=color,
                label="failed (diverged) run")


def memory_capacity(delays, series, chance: float, loss_series, baselines, failed,
                    dashed=()):
    """Recall accuracy and final training loss against blank separation, one line per cell.

    series / loss_series: {cell label: (mean array, min array, max array)} over the seeds
        that finished (NaN where none did).
    baselines: memoryless per-step cross-entropy for each delay.
    failed: {cell label: number of failed (e.g. diverged) seeds at each delay}.
    dashed: labels drawn dashed (e.g. the LSTM's variants, to tell them from the cells).
    """
    many = len(series) > 5
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(14 if many else 12, 5.5 if many else 4.5),
                                          layout="constrained")
    colors = plt.get_cmap("tab10" if len(series) <= 10 else "tab20").colors
    for k, (label, (mean, low, high)) in enumerate(series.items()):
        line, = acc_ax.plot(delays, mean, marker="o", label=label, color=colors[k % len(colors)],
                            ls="--" if label in dashed else "-")
        acc_ax.fill_between(delays, low, high, color=line.get_color(), alpha=0.2)
        _mark_failures(acc_ax, delays, failed[label], line.get_color())
    acc_ax.axhline(chance, color="0.3", ls=":", label=f"chance ({chance:.3f})")
    acc_ax.set_xlabel("blank separation B (time steps between the symbols and the delimiter)")
    acc_ax.set_ylabel("recall accuracy (test)")
    acc_ax.set_ylim(0, 1.05)
    acc_ax.set_title("Which cell remembers longer?")
    # keyed by label: one "failed" legend entry however many cells had failed runs
    by_label = dict(zip(*reversed(acc_ax.get_legend_handles_labels()), strict=True))
    acc_ax.legend(by_label.values(), by_label.keys(), fontsize=7 if many else None)
    for k, (label, (mean, low, high)) in enumerate(loss_series.items()):
        line, = loss_ax.plot(delays, mean, marker="o", label=label, color=colors[k % len(colors)],
                             ls="--" if label in dashed else "-")
        loss_ax.fill_between(delays, low, high, color=line.get_color(), alpha=0.2)
    loss_ax.plot(delays, baselines, color="0.3", ls=":",
                 label="memoryless baseline K·ln(A)/(2K+B+1)")
    loss_ax.set_xlabel("blank separation B")
    loss_ax.set_ylabel("final training loss (cross-entropy per step)")
    loss_ax.set_title("Training loss against the memoryless baseline")
    loss_ax.legend(fontsize=7 if many else None)
    for ax in (acc_ax, loss_ax):
        ax.grid(True, alpha=0.3)
    return fig


def memory_states(tokens, trace, n_symbols: int, title: str):
    """A cell's state along one memory-task sequence: the LSTM's mean gate values (top) and the
    norms of its cell state and output (bottom); for the RNN only ||h_t||.

    tokens: (T,) input ids (symbols 0..n_symbols-1, blank n_symbols, delimiter n_symbols+1);
    trace: {"input_gate", "forget_gate", "output_gate", "cell", "hidden"}: (T, H) arrays,
    the gates and the cell state only for the LSTM.
    """
    tokens = np.asarray(tokens)
    steps = np.arange(len(tokens))
    labels = [str(t) if t < n_symbols else ("·" if t == n_symbols else "#") for t in tokens]
    delimiter = int(np.flatnonzero(tokens == n_symbols + 1)[0])
    has_gates = "forget_gate" in trace
    fig, axes = plt.subplots(2 if has_gates else 1, 1, figsize=(9, 6 if has_gates else 3.4),
                             sharex=True, layout="constrained")
    axes = np.atleast_1d(axes)
    if has_gates:
        for gate, color in (("input_gate", "tab:green"), ("forget_gate", "tab:blue"),
                            ("output_gate", "tab:orange")):
            axes[0].plot(steps, trace[gate].mean(axis=-1), marker="o", ms=3, color=color,
                         label=f"{gate.replace('_', ' ')} (mean over units)")
        axes[0].set_ylim(0, 1)
        axes[0].set_ylabel("gate value")
    norms = axes[-1]
    if "cell" in trace:
        norms.plot(steps, np.linalg.norm(trace["cell"], axis=-1), marker="o", ms=3,
                   color="tab:purple", label="||c_t|| (cell state)")
    norms.plot(steps, np.linalg.norm(trace["hidden"], axis=-1), marker="o", ms=3, color="0.3",
               label="||h_t|| (output)")
    norms.set_ylabel("norm")
    for ax in axes:
        ax.axvspan(delimiter + 0.5, len(tokens) - 0.5, color="tab:red", alpha=0.08,
                   label="recall (after the delimiter #)")
        ax.axvline(delimiter, color="tab:red", lw=0.8, ls=":")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    norms.set_xticks(steps, labels)
    norms.set_xlabel("input at each step: symbols 0-7, · blank, # delimiter")
    fig.suptitle(title)
    return fig


def gradient_flow(panels: dict[str, dict[str, dict[str, np.ndarray]]]):
    """||dL/dh_t|| against the distance back from the first recalled position, one panel per
    task: dashed at initialisation, solid after training, one colour per model.

    panels: {panel title: {model label: {"distance": (T,), "init": (T,), "trained": (T,)}}}.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5),
                             layout="constrained", squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items(), strict=True):
        for label, curve in curves.items():
            line, = ax.semilogy(curve["distance"], curve["trained"], marker="o", ms=3,
                                label=f"{label}, trained")
            ax.semilogy(curve["distance"], curve["init"], ls="--", color=line.get_color(),
                        label=f"{label}, at init")
        ax.invert_xaxis()  # time runs left to right; the gradient flows right to left
        ax.set_xlabel("distance back from the first recalled position (time steps)")
        ax.set_ylabel("mean ||dL/dh_t|| (recall loss)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return fig
