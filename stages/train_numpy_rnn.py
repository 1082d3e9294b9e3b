"""Stage train_numpy_rnn: train the from-scratch numpy RNN on the copy task and evaluate it."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.params import as_dict, load_params
from rnnlab.pipeline.stage import phase, run_stage


def main() -> str:
    task, p = load_params("copy_task", "numpy_rnn")
    from rnnlab.numpy_rnn.model import RNNClassifier
    from rnnlab.numpy_rnn.train import evaluate_recall, train_classifier
    from rnnlab.pipeline.datasets import read_dataset
    from rnnlab.pipeline.runs import LiveLog, checkpoint_every, save_run

    with phase("data"):
        train, test = (read_dataset("copy_task", split, as_dict(task))
                       for split in ("train", "test"))
    # only the L positions after the delimiter count
    recall_start = task.to_remember_len + task.blank_separation_len + 1
    model = RNNClassifier(task.vocab_size, p.hidden, p.init, rng=p.seed)
    with LiveLog("numpy_rnn_copy") as live:
        with phase("train"):  # periodic test metrics included
            history = train_classifier(
                model, train["inputs"], train["targets"], optimizer=p.optimizer,
                learning_rate=p.learning_rate, batch_size=p.batch_size, steps=p.steps,
                clip_norm=p.clip_norm, seed=p.seed, on_window=live.log_train_loss,
                checkpoint_every=checkpoint_every(p.steps), on_checkpoint=live.checkpoint_hook(
                    lambda: {"test_accuracy": evaluate_recall(
                        model, test["inputs"], test["targets"], recall_start)["test_accuracy"]}))
        with phase("evaluate"):
            result = evaluate_recall(model, test["inputs"], test["targets"], recall_start)
        results = {"test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"],
                   "train_loss_final": history["loss"][-1], "n_params": model.n_params}
        with phase("write"):
            save_run("numpy_rnn_copy", weights=model.state_dict(),
                     meta={"params": {"copy_task": as_dict(task), "numpy_rnn": as_dict(p)}},
                     results=results, accuracy_by_position=result["accuracy_by_position"])
    return (f"numpy RNN ({p.init} init) test accuracy {results['test_accuracy']:.3f} on the copy "
            f"task, L={task.to_remember_len}, B={task.blank_separation_len} "
            f"({model.n_params} params)")


if __name__ == "__main__":
    run_stage("train_numpy_rnn", main)
