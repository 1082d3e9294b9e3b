"""Stage train_sine: train the TF cell on next-sample prediction of sine curves, then let it
continue held-out curves from n_given true samples on its own predictions."""

import time

from rnnlab.cli import import_tensorflow, run_stage
from rnnlab.config import load_config, section_dict


def main() -> str:
    cfg = load_config(["sine_task", "tf_model", "tf_sine"])
    task, m, t = section_dict(cfg.sine_task), cfg.tf_model, cfg.tf_sine
    from rnnlab.datasets import read_dataset

    train, test = (read_dataset("sine", split, task)["curves"] for split in ("train", "test"))
    import_tensorflow()  # only after params and data are checked
    from rnnlab import plotting, tf_rnn, tf_train
    from rnnlab.io import write_png
    from rnnlab.runs import save_run

    tf_train.set_determinism(m.seed)
    model = tf_rnn.make_model(m.cell, 1, m.hidden, n_out=1, match_params=m.match_params,
                              init=m.init, seed=m.seed)
    start = time.perf_counter()
    history = tf_train.train(model, tf_rnn.get_loss_sin, *tf_train.sine_arrays(train),
                             epochs=t.epochs, batch_size=t.batch_size,
                             learning_rate=t.learning_rate, optimizer=m.optimizer,
                             clip_norm=m.clip_norm, seed=m.seed, desc=f"sine/{m.cell}",
                             input_noise=t.input_noise, decay_to=t.lr_decay_to)
    seconds = time.perf_counter() - start
    result = tf_train.evaluate_sine(model, test, task["n_given"], task["n_generated"])
    metrics = {"test_mse_one_step": result["test_mse_one_step"],
               "test_mse_free_running": result["test_mse_free_running"],
               "train_loss_final": history["loss"][-1], "n_params": model.n_params,
               "hidden": model.cell.output_size}
    k = task["n_plot"]
    label = "irnn" if (m.cell, m.init) == ("rnn", "identity") else m.cell
    title = (f"{plotting.CELL_NAMES[label]} ({model.n_params} params): {task['n_given']} given "
             f"samples, then {task['n_generated']} generated; test MSE "
             f"{metrics['test_mse_free_running']:.3f}")
    write_png("plots/sine_extrapolation.png", plotting.sine_extrapolation(
        test[:k], result["generated"][:k], task["n_given"], task["step"], title))
    save_run("sine", weights=model.get_weights(),
             params={"sine_task": task, "tf_model": section_dict(m), "tf_sine": section_dict(t)},
             history=history, metrics=metrics)
    return (f"{m.cell.upper()} free-running MSE {metrics['test_mse_free_running']:.4f} over "
            f"{task['n_generated']} generated steps, one-step MSE "
            f"{metrics['test_mse_one_step']:.2e} ({model.n_params} params, {seconds:.0f} s)")


if __name__ == "__main__":
    run_stage("train_sine", main)
