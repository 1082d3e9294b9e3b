"""The names a user can choose in params.yaml, in one place.

`rnnlab.pipeline.params` validates against these tuples and the libraries dispatch on them, so a
new choice is added here once and both sides see it.
"""

# Initial recurrent matrix W_hh of a ReLU RNN (numpy and TensorFlow alike), see rnnlab.initializers:
#   gaussian     W_hh ~ N(0, sqrt(2 / (H + H))), std sqrt(1/H): the sheet framework's random init
#   identity     W_hh = I: the IRNN of Le, Jaitly & Hinton (2015), the sheet's question 1f
#   orthogonal   a Haar-random orthogonal matrix (Keras's default for recurrent kernels)
#   permutation  a random permutation matrix: orthogonal with entries >= 0
RNN_INITS = ("gaussian", "identity", "orthogonal", "permutation")

NUMPY_OPTIMIZERS = ("adam", "sgd")       # rnnlab.numpy_rnn.optimizers
TF_OPTIMIZERS = ("adam", "momentum")     # Keras's Adam, or SGD with momentum 0.9
# MyLSTMCell, the ReLU BasicRNNCell or MyGRUCell (rnnlab.tf_rnn.model.CELL_KINDS builds them)
TF_CELLS = ("lstm", "rnn", "gru")

# MyLSTMCell's parts as switches (rnnlab.tf_rnn.lstm.VARIANTS): the standard cell, one gate fixed
# at 1, the input gate coupled to the forget gate (CIFG: i = 1 - f), or h = o * c.
LSTM_VARIANTS = ("vanilla", "no_forget_gate", "no_input_gate", "no_output_gate", "coupled",
                 "no_output_activation")

# tf_model.rnn_hidden and gru_hidden may name a size or this: as many parameters as the LSTM
# model of tf_model.lstm_hidden units (question 2d's fair comparison; rnnlab.tf_rnn.model).
MATCHED = "matched"
