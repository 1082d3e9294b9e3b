"""The numpy half: the sheet's ReLU RNN with hand-written BPTT (question 1). No TensorFlow here.

Modules, equations first:
    cell         BasicRNNCell: h_t = ReLU(W_hh h_{t-1} + W_hx x_t + b_h), fprop and bprop (BPTT)
    linear       LinearLayer: y_t = W h_t + b, fprop and bprop
    loss         softmax cross-entropy summed over time, with its gradient
    clipping     global-norm gradient clipping (question 1d)
    optimizers   SGD and Adam, in place
    model        RNNClassifier = [BasicRNNCell, LinearLayer]
    train        training loop and recall evaluation (the copy task, question 1e)
    gradcheck    bprop against central finite differences (question 1b)
    exploding    mean |gradient| against sequence length (questions 1c/1d)
    _threads     one BLAS thread (threadpoolctl), large products split over the cores
    _arrays      dtype, generator and layout helpers

Import what you use from its module (this file imports nothing, so a DVC stage depends only on
the modules it really runs).
"""
