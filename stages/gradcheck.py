"""Stage gradcheck: the numpy RNN's BPTT against central finite differences, every entry."""

from rnnlab.cli import run_stage
from rnnlab.config import load_config
from rnnlab.io import write_json


def main() -> str:
    p = load_config(["gradcheck"]).gradcheck
    from rnnlab.numpy_train import gradient_check

    result = gradient_check(seed=p.seed, batch_size=p.batch_size, seq_len=p.seq_len,
                            vocab_size=p.vocab_size, hidden=p.hidden)
    write_json("metrics/gradcheck.json", result)
    return f"max relative error {result['max_rel_error']:.2e} over every parameter entry"


if __name__ == "__main__":
    run_stage("gradcheck", main)
