"""The TensorFlow half: RNN and LSTM cells written from their equations (question 2).

Modules, equations first:
    recurrence  the driver of every cell's recurrence over whole sequences, with hand-written
              BPTT (tf.custom_gradient): batch chains, unrolled or while loop (its Layout)
    lstm, relu, gru  each cell's forward step and backward step, side by side
    activations  tanh and sigmoid with tf's values and HLO, quicker for XLA to build
    cells     RNNCell interface, BasicRNNCell (ReLU), MyLSTMCell and MyLSTMState, MyGRUCell
    model     SequenceModel = cell + linear output layer; make_model (parameter-matched sizes)
    losses    the sine MSE and the memory cross-entropy (summed over the batch, as the sheet asks)
    train     one training loop for both tasks: compiled step, Keras optimisers, clipping
    tasks     data layouts, sine extrapolation on fed-back predictions, test scores
    _tf       TensorFlow imported once, quietly; determinism switch

Import what you use from its module (this file imports nothing, not even TensorFlow).
"""
