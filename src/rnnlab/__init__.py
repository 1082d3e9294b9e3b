"""rnnlab: recurrent networks from first principles, trained in a reproducible DVC pipeline.

Layers, each importing only from those above it in this list:
    errors, choices     user-facing errors and argument checks; the names params may choose
    initializers        initial weights (numpy), shared by both halves
    training            what both training loops share: batch order, loss log, progress
    numpy_rnn/          the numpy RNN with hand-written BPTT (never imports TensorFlow)
    tf_rnn/             the TensorFlow cells with hand-written BPTT
    pipeline/           params, files, datasets, run outputs, figures, the stage wrapper
    workflows/          compare, capacity, the queue and dvc helpers they run on
    cli                 the `rnnlab` command: one subcommand per workflow
Stage scripts (stages/) sit on top: they read params once and call the library.

Importing the package is cheap on purpose: nothing is imported here, so a stage can validate
its params before numpy or TensorFlow load.
"""

__version__ = "0.2.0"
