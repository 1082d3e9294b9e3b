"""Stage train_adding: train the TF cell (tf_model.cell) on the adding problem, MSE at the last
step, scored beside the memoryless baseline 1/6 and Hochreiter's criterion |error| < 0.04."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.params import as_dict, load_params
from rnnlab.pipeline.stage import add_phase, phase, run_stage


def main() -> str:
    task, m, t = load_params("adding_task", "tf_model", "tf_adding")
    with phase("data"):  # params and data are checked before TensorFlow's slow import
        from rnnlab.pipeline.datasets import read_dataset

        train, test = (read_dataset("adding", split, as_dict(task)) for split in ("train", "test"))
    with phase("import"):
        from rnnlab.pipeline.runs import LiveLog, save_run
        from rnnlab.tf_rnn._tf import set_determinism
        from rnnlab.tf_rnn.losses import ADDING_LOSS
        from rnnlab.tf_rnn.model import make_model, model_description
        from rnnlab.tf_rnn.tasks import CRITERION_MSE, CRITERION_SEQUENCES, evaluate_adding
        from rnnlab.tf_rnn.train import train as train_model

    set_determinism(m.seed)
    model = make_model(m.cell, 2, 1, **m.model_options())
    # Test metrics every CRITERION_SEQUENCES training sequences: when the test MSE first goes
    # below CRITERION_MSE is Hochreiter & Schmidhuber's count, to that resolution.
    every = max(1, CRITERION_SEQUENCES // t.batch_size)
    reached = {}
    with LiveLog("adding") as live:
        def checkpoint(step: int) -> bool:
            result = evaluate_adding(model, test["inputs"], test["targets"])
            if result["test_mse"] < CRITERION_MSE:
                reached.setdefault("sequences", step * t.batch_size)
            live.log(step, test_mse=result["test_mse"], solved_fraction=result["solved_fraction"])
            return False

        with phase("train"):  # periodic test metrics included
            history = train_model(
                model, ADDING_LOSS, train["inputs"], train["targets"], epochs=t.epochs,
                batch_size=t.batch_size, learning_rate=t.learning_rate, optimizer=m.optimizer,
                clip_norm=m.clip_norm, seed=m.seed, desc=f"adding/{m.cell}",
                on_window=live.log_train_loss, checkpoint_every=every, on_checkpoint=checkpoint)
        add_phase("of which first step (compile)", history["first_step_seconds"])
        with phase("evaluate"):
            result = evaluate_adding(model, test["inputs"], test["targets"])
        results = {**result, "criterion_mse": CRITERION_MSE,
                   "sequences_to_criterion": reached.get("sequences"),
                   "train_loss_final": history["loss"][-1],
                   "n_params": model.n_params, "hidden": model.cell.n_hidden}
        with phase("write"):
            save_run("adding", weights=model.get_weights(),
                     meta={"params": {"adding_task": as_dict(task), "tf_model": as_dict(m),
                                      "tf_adding": as_dict(t)}, "model": model_description(model)},
                     results=results)
    return (f"{m.label} test MSE {results['test_mse']:.4f} on the adding problem, T = "
            f"{task.seq_len} (always 1: {results['baseline_mse']:.4f}); "
            f"{results['solved_fraction']:.1%} of sequences within 0.04 ({model.n_params} params)")


if __name__ == "__main__":
    run_stage("train_adding", main)
