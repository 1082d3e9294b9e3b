"""Stage gradient_flow_memory: why the LSTM remembers longer, on the trained TF model of the
memory task: ||dL/dh_t|| per step at initialisation and after training (from the cell's own
BPTT), and, for the LSTM, its gates and cell state along the test sequences."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.stage import run_stage

MODEL = "models/memory.npz"


def main() -> str:
    from rnnlab.pipeline.trained_models import read_model_file, rebuild, recorded_params

    arrays, meta = read_model_file(MODEL)  # its params: the training run's, recorded in it
    task = meta["params"]["memory_task"]
    m = recorded_params(MODEL, meta, "tf_model")
    from rnnlab.pipeline.datasets import read_dataset

    test = read_dataset("memory", "test", task)  # checked before TensorFlow's slow import
    from rnnlab.pipeline import plotting
    from rnnlab.pipeline.files import write_png
    from rnnlab.pipeline.analysis import save_gradient_flow, write_state_trace
    from rnnlab.tf_rnn.gradient_flow import gradient_norms, state_trace
    from rnnlab.tf_rnn.model import make_model, rebuild_model
    from rnnlab.tf_rnn.tasks import memory_arrays

    def build(a, meta):
        model = rebuild_model(meta["model"])
        model.set_weights(a)
        return model

    trained = rebuild(MODEL, arrays, meta, build)
    V, L, B = task["vocab_size"], task["to_remember_len"], task["blank_separation_len"]
    initial = make_model(m.cell, V, V, **m.model_options())
    x, y = memory_arrays(test["inputs"], test["targets"], V)
    T = x.shape[1]
    mask = [t >= T - L for t in range(T)]  # the recalled positions: the last L outputs
    norms = {name: gradient_norms(model, x, y, mask)
             for name, model in (("init", initial), ("trained", trained))}
    shrink = save_gradient_flow("memory", norms, first_recall=T - L, delimiter=L + B,
                                last_symbol=L - 1)
    trace = state_trace(trained.cell, x)
    write_state_trace("plots/memory_states.csv", trace)
    write_png("plots/memory_states.png", plotting.memory_states(
        test["inputs"][0], {name: values[0] for name, values in trace.items()}, n_symbols=V - 2,
        title=f"{m.label} on the first test sequence of the memory task (L={L}, B={B})"))
    across = shrink["trained"]["shrink_across_blanks"]
    return (f"{m.label}: ||dL/dh_t|| shrinks {across:.3g}x across the {B} blanks after "
            f"training ({shrink['init']['shrink_across_blanks']:.3g}x at initialisation)")


if __name__ == "__main__":
    run_stage("gradient_flow_memory", main)
