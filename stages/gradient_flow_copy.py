"""Stage gradient_flow_copy: how far back the copy task's recall loss reaches in the numpy RNN,
at initialisation and after training (||dL/dh_t|| per step, from the cell's own BPTT)."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.stage import run_stage

MODEL = "models/numpy_rnn_copy.npz"


def main() -> str:
    from rnnlab.pipeline.trained_models import read_model_file, rebuild

    arrays, meta = read_model_file(MODEL)  # its params: the training run's, recorded in it
    task, p = meta["params"]["copy_task"], meta["params"]["numpy_rnn"]
    from rnnlab.numpy_rnn.gradient_flow import gradient_norms
    from rnnlab.numpy_rnn.model import RNNClassifier
    from rnnlab.pipeline.datasets import read_dataset
    from rnnlab.pipeline.analysis import save_gradient_flow

    test = read_dataset("copy_task", "test", task)
    trained = rebuild(MODEL, arrays, meta, lambda a, m: RNNClassifier.from_state_dict(a))
    initial = RNNClassifier(task["vocab_size"], p["hidden"], p["init"], rng=p["seed"])
    L, B = task["to_remember_len"], task.get("blank_separation_len", 0)  # older models: B = 0
    delimiter = L + B
    recall = slice(delimiter + 1, delimiter + 1 + L)  # the positions after the delimiter
    mask = [recall.start <= t < recall.stop for t in range(2 * L + B + 1)]
    norms = {name: gradient_norms(model, test["inputs"], test["targets"], mask)
             for name, model in (("init", initial), ("trained", trained))}
    shrink = save_gradient_flow("copy", norms, first_recall=recall.start, delimiter=delimiter,
                                last_symbol=L - 1)
    return (f"||dL/dh_t|| shrinks {shrink['trained']['shrink_to_first_symbol']:.3g}x from the "
            f"delimiter back to the first symbol after training "
            f"({shrink['init']['shrink_to_first_symbol']:.3g}x at initialisation)")


if __name__ == "__main__":
    run_stage("gradient_flow_copy", main)
