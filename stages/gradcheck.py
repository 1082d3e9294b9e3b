"""Stage gradcheck: the numpy RNN's BPTT against central finite differences, every entry."""

from rnnlab.pipeline.params import load_params
from rnnlab.pipeline.stage import run_stage


def main() -> str:
    (p,) = load_params("gradcheck")
    from rnnlab.numpy_rnn.gradcheck import gradient_check
    from rnnlab.pipeline.files import write_json

    result = gradient_check(seed=p.seed, batch_size=p.batch_size, seq_len=p.seq_len,
                            vocab_size=p.vocab_size, hidden=p.hidden)
    write_json("metrics/gradcheck.json", result)
    return f"max relative error {result['max_rel_error']:.2e} over every parameter entry"


if __name__ == "__main__":
    run_stage("gradcheck", main)
