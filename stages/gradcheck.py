"""Stage gradcheck: the numpy RNN's BPTT against central finite differences, every entry."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from rnnlab.pipeline.params import load_params
from rnnlab.pipeline.stage import run_stage


def main() -> str:
    (p,) = load_params("gradcheck")
    from rnnlab.numpy_rnn.gradcheck import gradient_check
    from rnnlab.pipeline.runs import save_results

    result = gradient_check(seed=p.seed, batch_size=p.batch_size, seq_len=p.seq_len,
                            vocab_size=p.vocab_size, hidden=p.hidden)
    save_results("gradcheck", result)
    return f"max relative error {result['max_rel_error']:.2e} over every parameter entry"


if __name__ == "__main__":
    run_stage("gradcheck", main)
