"""The sheet's network [BasicRNNCell(V, H), LinearLayer(H, V)]: per-step logits over V classes."""

from __future__ import annotations

import numpy as np

from rnnlab.numpy_rnn._arrays import as_generator
from rnnlab.numpy_rnn.cell import BasicRNNCell
from rnnlab.numpy_rnn.linear import LinearLayer


class RNNClassifier:
    """[BasicRNNCell(V, H), LinearLayer(H, V)]: per time step logits over V classes.

    Args:
        vocab_size: V, size of the one-hot input and of the output.
        hidden: H.
        init: W_hh init, one of rnnlab.choices.RNN_INITS (see BasicRNNCell).
        rng: numpy Generator (or int seed) for the initial weights.
        dtype: float32 for training speed, float64 for gradient checks.
    """

    def __init__(self, vocab_size: int, hidden: int, init: str = "permutation", rng=None,
                 dtype=np.float32):
        rng = as_generator(rng)  # one generator for both layers: a seed gives one model
        self.cell = BasicRNNCell(vocab_size, hidden, init=init, rng=rng, dtype=dtype)
        self.out = LinearLayer(hidden, vocab_size, rng=rng, dtype=dtype)
        self.vocab_size, self.hidden = self.cell.n_in, self.cell.n_hidden
        self.dtype = self.cell.dtype
        self._share_storage()

    def _share_storage(self) -> None:
        """Put the layers' parameters and gradients into the flat buffers (see flat_params())
        and list them for params()."""
        self._flat = _share_flat_storage((self.cell, self.out))
        # Parameters and gradients are updated in place, never rebound, so one list serves.
        self._params = [(p, g, f"{prefix}.{name}")
                        for prefix, layer in (("cell", self.cell), ("out", self.out))
                        for p, g, name in layer.get_params()]

    def __getstate__(self) -> dict:
        """Pickled and deep-copied without the flat buffers and their list of views: a copy of
        a view is not a view of the copied buffer (training the copy through flat_params()
        would leave its layers as they were), so __setstate__ builds them anew."""
        state = self.__dict__.copy()
        del state["_flat"], state["_params"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._share_storage()

    def __copy__(self) -> "RNNClassifier":
        """A shallow copy shares the layers and the buffers with the original (__setstate__
        would move the shared layers' arrays into new buffers, away from the original's)."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        return clone

    def forward(self, x_onehot: np.ndarray) -> np.ndarray:
        """x_onehot: (B, T, V) -> logits: (B, T, V)."""
        return self.out.fprop(self.cell.fprop(x_onehot))

    def backward(self, dlogits: np.ndarray) -> None:
        """dlogits: (B, T, V); fills the gradients of all parameters (see params())."""
        # The inputs are data, so their gradient would be wasted work.
        self.cell.bprop(self.out.bprop(dlogits), compute_dx=False)

    def params(self) -> list:
        """[(param, grad, name)]: names cell.W_hh, cell.W_hx, cell.b_h, out.W, out.b."""
        return list(self._params)

    def flat_params(self) -> list:
        """[(all parameters, all gradients, "all")]: one flat array each, which the arrays of
        params() are views of. An element-wise optimiser (SGD, Adam) given this list updates
        every entry exactly as when given params(), with one numpy call per operation instead
        of one per array and operation. Give an optimiser one of the two lists, not both in
        turn: its state is kept by name (Adam would start new moments for "all").

        Raises:
            RuntimeError: a layer's array was rebound (e.g. `model.cell.W_hh = ...`) and is no
                longer a view of the buffers, so an update through them would miss it.
        """
        params, grads = self._flat
        if not all(p.base is params and g.base is grads
                   for layer in (self.cell, self.out) for p, g, _ in layer.get_params()):
            raise RuntimeError("a parameter or gradient of the model is no longer a view of its "
                               "flat buffers (rebound instead of written in place); write into "
                               "it (p[...] = value, load_state_dict) instead")
        return [(params, grads, "all")]

    def grads(self) -> list[np.ndarray]:
        """The gradient arrays of params(), in the same order (filled by backward())."""
        return [g for _, g, _ in self._params]

    @property
    def n_params(self) -> int:
        return sum(p.size for p, _, _ in self._params)

    def state_dict(self) -> dict:
        """{name: copy of the parameter}; np.savez(path, **model.state_dict()) saves it."""
        return {name: p.copy() for p, _, name in self._params}

    def load_state_dict(self, state) -> None:
        """Copy parameters from `state` (a dict or an opened npz) into this model, in place."""
        expected = {name: p for p, _, name in self._params}
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"state dict does not match the model: missing {missing}, "
                             f"unexpected {unexpected}")
        for name, p in expected.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"state dict entry {name!r} has shape {value.shape}, "
                                 f"the model expects {p.shape}")
            np.copyto(p, value, casting="same_kind")

    @classmethod
    def from_state_dict(cls, state, dtype=np.float32) -> "RNNClassifier":
        """Build a model whose sizes are read off `state`, then load it."""
        if "cell.W_hx" not in state:
            raise ValueError("state dict has no 'cell.W_hx' entry: not an RNNClassifier")
        hidden, vocab_size = np.asarray(state["cell.W_hx"]).shape
        model = cls(vocab_size, hidden, init="identity", rng=0, dtype=dtype)
        model.load_state_dict(state)
        return model


def _share_flat_storage(layers) -> tuple[np.ndarray, np.ndarray]:
    """Move the layers' parameters and gradients into one flat array each, in get_params()
    order; the layers' attributes become views of them (a gradient is the attribute "d" + the
    parameter's name, as in both layers). Returns (params, grads)."""
    entries = [(layer, name, p, g) for layer in layers for p, g, name in layer.get_params()]
    n = sum(p.size for _, _, p, _ in entries)
    params = np.empty(n, dtype=entries[0][2].dtype)
    grads = np.empty_like(params)
    offset = 0
    for layer, name, p, g in entries:
        if getattr(layer, "d" + name) is not g:
            raise TypeError(f"{type(layer).__name__}.d{name} is not the gradient of {name}")
        if p.dtype != params.dtype or g.dtype != params.dtype:
            raise TypeError(f"{type(layer).__name__}.{name} is {p.dtype}, the model "
                            f"{params.dtype}: the layers must share one dtype")
        span = slice(offset, offset + p.size)
        params[span], grads[span] = p.ravel(), g.ravel()
        setattr(layer, name, params[span].reshape(p.shape))
        setattr(layer, "d" + name, grads[span].reshape(g.shape))
        offset += p.size
    return params, grads
