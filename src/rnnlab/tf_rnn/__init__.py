"""The TensorFlow half: RNN and LSTM cells written from their equations (question 2).

Modules, equations first:
    cores     the recurrences over whole sequences with hand-written BPTT (tf.custom_gradient)
    cells     RNNCell interface, BasicRNNCell (ReLU), MyLSTMCell and MyLSTMState
    model     SequenceModel = cell + linear output layer; make_model (parameter-matched sizes)
    losses    the sine MSE and the memory cross-entropy (summed over the batch, as the sheet asks)
    train     one training loop for both tasks: compiled step, Keras optimisers, clipping
    tasks     data layouts, sine extrapolation on fed-back predictions, test scores
    _tf       TensorFlow imported once, quietly; determinism switch

Import what you use from its module (this file imports nothing, not even TensorFlow).
"""
