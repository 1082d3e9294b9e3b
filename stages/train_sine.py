"""Stage train_sine: train the TF cell on next-sample prediction of sine curves, then let it
continue held-out curves from n_given true samples on its own predictions."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.params import as_dict, load_params
from rnnlab.pipeline.stage import add_phase, phase, run_stage


def main() -> str:
    task, m, t = load_params("sine_task", "tf_model", "tf_sine")
    with phase("data"):  # params and data are checked before TensorFlow's slow import
        from rnnlab.pipeline.datasets import read_dataset

        train, test = (read_dataset("sine", split, as_dict(task))["curves"]
                       for split in ("train", "test"))
    with phase("import"):
        from rnnlab.pipeline import plotting
        from rnnlab.pipeline.files import write_png
        from rnnlab.pipeline.runs import LiveLog, checkpoint_every, save_run
        from rnnlab.tf_rnn._tf import set_determinism
        from rnnlab.tf_rnn.losses import SINE_LOSS
        from rnnlab.tf_rnn.model import make_model, model_description
        from rnnlab.tf_rnn.tasks import evaluate_sine, sine_arrays, sine_one_step_mse
        from rnnlab.tf_rnn.train import train as train_model

    set_determinism(m.seed)
    model = make_model(m.cell, 1, 1, **m.model_options())
    with LiveLog("sine") as live:
        with phase("train"):  # periodic test metrics included
            history = train_model(
                model, SINE_LOSS, *sine_arrays(train), epochs=t.epochs, batch_size=t.batch_size,
                learning_rate=t.learning_rate, optimizer=m.optimizer, clip_norm=m.clip_norm,
                seed=m.seed, desc=f"sine/{m.cell}", input_noise=t.input_noise,
                decay_to=t.lr_decay_to, on_window=live.log_train_loss,
                checkpoint_every=checkpoint_every(t.epochs * (task.n_train // t.batch_size)),
                on_checkpoint=live.checkpoint_hook(
                    lambda: {"test_mse_one_step": sine_one_step_mse(model, test)}))
        add_phase("of which first step (compile)", history["first_step_seconds"])
        with phase("evaluate"):
            result = evaluate_sine(model, test, task.n_given, task.n_generated)
        results = {"test_mse_one_step": result["test_mse_one_step"],
                   "test_mse_free_running": result["test_mse_free_running"],
                   "train_loss_final": history["loss"][-1], "n_params": model.n_params,
                   "hidden": model.cell.n_hidden}
        title = (f"{m.label} ({model.n_params} params): {task.n_given} given "
                 f"samples, then {task.n_generated} generated; test MSE "
                 f"{results['test_mse_free_running']:.3f}")
        with phase("write"):
            write_png("plots/sine_extrapolation.png", plotting.sine_extrapolation(
                test[:task.n_plot], result["generated"][:task.n_plot], task.n_given,
                task.x_spacing, title))
            save_run("sine", weights=model.get_weights(),
                     meta={"params": {"sine_task": as_dict(task), "tf_model": as_dict(m),
                                      "tf_sine": as_dict(t)}, "model": model_description(model)},
                     results=results)
    return (f"{m.label} free-running MSE {results['test_mse_free_running']:.4f} over "
            f"{task.n_generated} generated steps, one-step MSE "
            f"{results['test_mse_one_step']:.2e} ({model.n_params} params)")


if __name__ == "__main__":
    run_stage("train_sine", main)
