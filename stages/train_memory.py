"""Stage train_memory: train the TF cell (tf_model.cell) on the blank-separated memory task."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.params import as_dict, load_params
from rnnlab.pipeline.stage import add_phase, phase, run_stage


def main() -> str:
    task, m, t = load_params("memory_task", "tf_model", "tf_memory")
    with phase("data"):  # params and data are checked before TensorFlow's slow import
        from rnnlab.pipeline.datasets import read_dataset

        train, test = (read_dataset("memory", split, as_dict(task)) for split in ("train", "test"))
    with phase("import"):
        from rnnlab.pipeline.runs import LiveLog, checkpoint_every, save_run
        from rnnlab.tf_rnn._tf import set_determinism
        from rnnlab.tf_rnn.losses import MEMORY_LOSS
        from rnnlab.tf_rnn.model import make_model, model_description
        from rnnlab.tf_rnn.tasks import evaluate_memory, memory_arrays
        from rnnlab.tf_rnn.train import train as train_model

    set_determinism(m.seed)
    V, L = task.vocab_size, task.to_remember_len
    model = make_model(m.cell, V, V, **m.model_options())
    test_x, test_y = memory_arrays(test["inputs"], test["targets"], V)
    with LiveLog("memory") as live:
        with phase("train"):  # periodic test metrics included
            history = train_model(
                model, MEMORY_LOSS, *memory_arrays(train["inputs"], train["targets"], V),
                epochs=t.epochs, batch_size=t.batch_size, learning_rate=t.learning_rate,
                optimizer=m.optimizer, clip_norm=m.clip_norm, seed=m.seed,
                desc=f"memory/{m.cell}", on_window=live.log_train_loss,
                checkpoint_every=checkpoint_every(t.epochs * (task.n_train // t.batch_size)),
                on_checkpoint=live.checkpoint_hook(lambda: {
                    "test_accuracy": evaluate_memory(model, test_x, test_y, L)["test_accuracy"]}))
        add_phase("of which first step (compile)", history["first_step_seconds"])
        with phase("evaluate"):
            result = evaluate_memory(model, test_x, test_y, L)
        results = {"test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"],
                   "train_loss_final": history["loss"][-1], "n_params": model.n_params,
                   "hidden": model.cell.n_hidden}
        with phase("write"):
            save_run("memory", weights=model.get_weights(),
                     meta={"params": {"memory_task": as_dict(task), "tf_model": as_dict(m),
                                      "tf_memory": as_dict(t)}, "model": model_description(model)},
                     results=results, accuracy_by_position=result["accuracy_by_position"])
    return (f"{m.label} test accuracy {results['test_accuracy']:.3f} on the memory task, "
            f"L={L}, B={task.blank_separation_len} ({model.n_params} params)")


if __name__ == "__main__":
    run_stage("train_memory", main)
