"""Stage train_numpy_rnn: train the from-scratch numpy RNN on the copy task and evaluate it."""

import time

from rnnlab.cli import run_stage
from rnnlab.config import load_config, section_dict


def main() -> str:
    cfg = load_config(["copy_task", "numpy_rnn"])
    task, p = section_dict(cfg.copy_task), cfg.numpy_rnn
    import numpy as np

    from rnnlab.datasets import read_dataset
    from rnnlab.numpy_train import RNNClassifier, evaluate_recall, train_classifier
    from rnnlab.runs import save_run

    train, test = (read_dataset("copy_task", split, task) for split in ("train", "test"))
    model = RNNClassifier(task["vocab_size"], p.hidden, p.init, np.random.default_rng(p.seed))
    start = time.perf_counter()
    history = train_classifier(model, train["inputs"], train["targets"], optimizer=p.optimizer,
                               learning_rate=p.learning_rate, batch_size=p.batch_size,
                               steps=p.steps, clip_norm=p.clip_norm, seed=p.seed)
    seconds = time.perf_counter() - start
    # Only the L positions after the delimiter are recalled symbols.
    result = evaluate_recall(model, test["inputs"], test["targets"], task["to_remember_len"] + 1)
    metrics = {"test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"],
               "n_params": model.n_params}
    save_run("numpy_rnn_memory", weights=model.state_dict(), params=section_dict(p),
             history=history, metrics=metrics, accuracy_by_position=result["accuracy_by_position"])
    return (f"numpy RNN ({p.init} init) test accuracy {metrics['test_accuracy']:.3f} on the copy "
            f"task, L={task['to_remember_len']} ({model.n_params} params, {seconds:.0f} s)")


if __name__ == "__main__":
    run_stage("train_numpy_rnn", main)
