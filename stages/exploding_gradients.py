"""Stage exploding_gradients: mean |gradient| against sequence length, with and without clipping."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.params import load_params
from rnnlab.pipeline.stage import run_stage


def main() -> str:
    (p,) = load_params("exploding_gradients")
    from rnnlab.numpy_rnn.exploding import exploding_gradients
    from rnnlab.pipeline import plotting
    from rnnlab.pipeline.files import write_csv, write_png

    curves = exploding_gradients(seed=p.seed, hidden=p.hidden, vocab_size=p.vocab_size,
                                 pretrain_steps=p.pretrain_steps, max_seq_len=p.max_seq_len,
                                 clip_norm=p.clip_norm, learning_rate=p.learning_rate)
    write_csv("plots/exploding_gradients.csv", curves)
    write_png("plots/exploding_gradients.png", plotting.exploding_gradients(
        curves["seq_len"], curves["grad_no_clip"], curves["grad_clip"], p.clip_norm))
    growth = curves["grad_no_clip"][-1] / curves["grad_no_clip"][0]
    return (f"mean |grad| grows {growth:.3g}x from length {curves['seq_len'][0]} to "
            f"{curves['seq_len'][-1]} without clipping; max {max(curves['grad_clip']):.3g} with")


if __name__ == "__main__":
    run_stage("exploding_gradients", main)
