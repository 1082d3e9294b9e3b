"""Two training steps of MyLSTMCell at train_memory's step shape (B = 100, T = 22, H = 96), as
the md5 of the weights: tests/tf_rnn/test_train.py runs it in its own process and in processes
that see a machine of another size, and the digests must agree.

    python tests/bits_probe.py [--idle-threads-sleep] [--intra-op-threads N]

--idle-threads-sleep: as a sweep's worker runs (rnnlab.tf_rnn._tf.idle_threads_sleep).
--intra-op-threads N: TensorFlow's intra-op pool at N threads instead of rnnlab's
  INTRA_OP_THREADS (benchmarks/RESULTS.md, "What decides the bits": other bits at 1).
"""

from __future__ import annotations

import hashlib

import numpy as np


def weights_md5() -> str:
    from rnnlab.tf_rnn._tf import keras, set_determinism
    from rnnlab.tf_rnn.losses import MEMORY_LOSS
    from rnnlab.tf_rnn.model import make_model
    from rnnlab.tf_rnn.train import get_train_step

    set_determinism(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 22, 10)).astype(np.float32)
    y = rng.integers(0, 10, size=(100, 22)).astype(np.int32)
    model = make_model("lstm", 10, 10, lstm_hidden=96, seed=0)
    step = get_train_step(model, MEMORY_LOSS.fn, keras.optimizers.Adam(1e-3))
    for _ in range(2):
        step(x, y)
    return hashlib.md5(b"".join(v.numpy().tobytes() for v in model.variables_list)).hexdigest()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle-threads-sleep", action="store_true")
    parser.add_argument("--intra-op-threads", type=int, metavar="N")
    args = parser.parse_args()
    from rnnlab.tf_rnn._tf import idle_threads_sleep, tf

    if args.intra_op_threads:  # after rnnlab's import, which pins the pool, before any op
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    if args.idle_threads_sleep:
        idle_threads_sleep()
    print(weights_md5())
