"""Two training steps of MyLSTMCell at train_memory's step shape (B = 100, T = 22, H = 96), as
the md5 of the weights: tests/tf_rnn/test_train.py runs it in its own process and in processes
that see a machine of another size, and the digests must agree.

    python tests/bits_probe.py [--idle-threads-sleep]

--idle-threads-sleep: as a sweep's worker runs (rnnlab.tf_rnn._tf.idle_threads_sleep).
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
    import sys

    if "--idle-threads-sleep" in sys.argv[1:]:
        from rnnlab.tf_rnn._tf import idle_threads_sleep
        idle_threads_sleep()
    print(weights_md5())
