"""Stage train_memory: train the TF cell (tf_model.cell) on the blank-separated memory task."""

import time

from rnnlab.cli import import_tensorflow, run_stage
from rnnlab.config import load_config, section_dict


def main() -> str:
    cfg = load_config(["memory_task", "tf_model", "tf_memory"])
    task, m, t = section_dict(cfg.memory_task), cfg.tf_model, cfg.tf_memory
    from rnnlab.datasets import read_dataset

    train, test = (read_dataset("memory", split, task) for split in ("train", "test"))
    import_tensorflow()  # only after params and data are checked
    from rnnlab import tf_rnn, tf_train
    from rnnlab.runs import save_run

    tf_train.set_determinism(m.seed)
    vocab, remember = task["vocab_size"], task["to_remember_len"]
    model = tf_rnn.make_model(m.cell, vocab, m.hidden, n_out=vocab, match_params=m.match_params,
                              init=m.init, seed=m.seed)
    start = time.perf_counter()
    train_x, train_y = tf_train.memory_arrays(train["inputs"], train["targets"], vocab)
    history = tf_train.train(model, tf_rnn.get_loss_memory, train_x, train_y,
                             epochs=t.epochs, batch_size=t.batch_size,
                             learning_rate=t.learning_rate, optimizer=m.optimizer,
                             clip_norm=m.clip_norm, seed=m.seed, desc=f"memory/{m.cell}")
    seconds = time.perf_counter() - start
    result = tf_train.evaluate_memory(model, test["inputs"], test["targets"], remember)
    metrics = {"test_accuracy": result["test_accuracy"], "test_loss": result["test_loss"],
               "train_loss_final": history["loss"][-1], "n_params": model.n_params,
               "hidden": model.cell.output_size}
    save_run("memory", weights=model.get_weights(),
             params={"memory_task": task, "tf_model": section_dict(m), "tf_memory": section_dict(t)},
             history=history, metrics=metrics, accuracy_by_position=result["accuracy_by_position"])
    return (f"{m.cell.upper()} test accuracy {metrics['test_accuracy']:.3f} on the memory task, "
            f"L={remember}, B={task['blank_separation_len']} ({model.n_params} params, {seconds:.0f} s)")


if __name__ == "__main__":
    run_stage("train_memory", main)
