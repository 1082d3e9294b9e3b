"""The LSTM's recurrence for the generic driver (rnnlab.tf_rnn.recurrence): one forward step,
its BPTT step and what passes between them, for the standard cell and its ablated variants.

    [z_i, z_f, z_c, z_o] = x_t @ kernel + h_tm1 @ recurrent_kernel + bias     (B, 4H)
    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_c)
    c_t = f * c_tm1 + i * g;  h_t = o * tanh(c_t)

One matmul per step computes all gates (Keras's fused kernels, column blocks i, f, c, o) and one
tanh activates them: sigmoid(z) = (1 + tanh(z/2)) / 2, the 1/2 folded into the weights' gate
columns (`prepare_weights`), so the forward step's activations are
a = tanh(scaled z) = [2i - 1, 2f - 1, g, 2o - 1].

The variants (Greff et al. 2017 take the LSTM apart the same way) are switches of this one core,
`VARIANTS`: a variant without a gate has no columns for it (its kernels hold only the blocks in
`Variant.blocks`, so `n_params` counts only weights that are used) and the gate is the constant
1; `coupled` (CIFG) has no input-gate columns and i = 1 - f; `no_output_activation` has all
four blocks and h_t = o * c_t.

BPTT of one step (s' = s (1 - s) for a sigmoid s, tanh'(z) = 1 - g^2; act = tanh, or the
identity without the output activation):
    dh_t = dh_out_t + dz_{t+1} @ rk^T                  gradient reaching h_t (the driver's)
    dc_t = dc_{t+1} f_{t+1} + dh_t o act'(c_t)
    dz_t = [dc_t g i', dc_t c_{t-1} f', dc_t i (1 - g^2), dh_t act(c_t) o']
(coupled: the f block's factor is c_{t-1} - g, since i = 1 - f) and since i' = (1 - a_i^2) / 4
etc.: dz_t = [dc g, dc c_{t-1}, dc i, dh act(c_t)] * (1 - a^2) * [1/4, 1/4, 1, 1/4], over the
variant's blocks at once. The state is (h, c); the cache of a step is its activations a
(B, kH) and, with the output activation, tanh(c_t) (B, H); the carry is dc.

tanh(c_t) is cached, not recomputed in BPTT: one op fewer per step and chain for XLA to lower
and run. The same values either way (XLA's tanh of the same c_t): the pipeline's outputs kept
their bits. The tanh is rnnlab.tf_rnn.activations.tanh: tf.tanh's values and HLO, lowered to
XLA without the MLIR pipeline TensorFlow sets up for each Tanh op (see there).
"""

from __future__ import annotations

import dataclasses

from rnnlab.choices import LSTM_VARIANTS
from rnnlab.tf_rnn._tf import DTYPE, tf
from rnnlab.tf_rnn.activations import tanh
from rnnlab.tf_rnn.recurrence import (Layout, Recurrence, carry_barrier_constants,
                                      hidden_gradients, through_barrier)


@dataclasses.dataclass(frozen=True)
class Variant:
    """Which parts an LSTM has. blocks: its gate blocks with weights, in Keras's order (a
    subset of "ifco"; "c" always); coupled: i = 1 - f; output_activation: h = o * tanh(c)
    (else o * c)."""

    name: str
    blocks: str = "ifco"
    coupled: bool = False
    output_activation: bool = True


VARIANTS = {v.name: v for v in (
    Variant("vanilla"),
    Variant("no_forget_gate", blocks="ico"),          # f = 1
    Variant("no_input_gate", blocks="fco"),           # i = 1
    Variant("no_output_gate", blocks="ifc"),          # o = 1
    Variant("coupled", blocks="fco", coupled=True),   # CIFG: i = 1 - f
    Variant("no_output_activation", output_activation=False),  # h = o * c
)}
assert tuple(VARIANTS) == LSTM_VARIANTS, "rnnlab.choices.LSTM_VARIANTS names these"


def _block_columns(blocks: str, n_hidden, gate_value, candidate_value):
    """A (kH,) vector: `gate_value` on the gate blocks' columns, `candidate_value` on c's."""
    def fill(value):
        return tf.fill([n_hidden], tf.constant(value, DTYPE))
    return tf.concat([fill(candidate_value if b == "c" else gate_value) for b in blocks], axis=0)


def project_inputs(x, fw):
    """x (T, b, n_in) -> x_t @ kernel + bias of all steps (T, b, kH), one matmul."""
    n_gates = fw["recurrent_kernel"].shape[1]
    n_steps = x.shape[0] if x.shape[0] is not None else tf.shape(x)[0]
    return tf.reshape(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), fw["kernel"]) + fw["bias"],
                      [n_steps, -1, n_gates])


def _gates(a, variant: Variant):
    """i, f, g, o (B, H) from the activations a (B, kH) = [2i - 1, 2f - 1, g, 2o - 1] of the
    variant's blocks; None for a gate the variant fixes at 1."""
    parts = dict(zip(variant.blocks, tf.split(a, len(variant.blocks), axis=1), strict=True))
    gate = {b: 0.5 * (1.0 + parts[b]) for b in "ifo" if b in parts}
    if variant.coupled:
        gate["i"] = 1.0 - gate["f"]
    return gate.get("i"), gate.get("f"), parts["c"], gate.get("o")


def _times(gate, value):
    """gate * value, where a missing gate (None) is the constant 1."""
    return value if gate is None else gate * value


def _recurrence(variant: Variant) -> Recurrence:
    """The driver's Recurrence of one variant: its steps close over the variant's switches."""

    def prepare_weights(w):
        """The weights with the sigmoid's 1/2 folded into the gate columns."""
        scale = _block_columns(variant.blocks, w["recurrent_kernel"].shape[0], 0.5, 1.0)
        return {name: value * scale for name, value in w.items()}

    def forward_step(xw_t, state_tm1, fw):
        """One step. xw_t (B, kH): x_t @ kernel + bias (scaled); state_tm1 = (h_tm1, c_tm1),
        each (B, H). Returns the state (h_t, c_t) and the cache BPTT needs: (a_t,) (B, kH),
        and tanh(c_t) (B, H) after it with the output activation."""
        h_tm1, c_tm1 = state_tm1
        a = tanh(xw_t + tf.matmul(h_tm1, fw["recurrent_kernel"]))
        i, f, g, o = _gates(a, variant)
        c = _times(f, c_tm1) + _times(i, g)
        if not variant.output_activation:
            return (_times(o, c), c), (a,)
        act_c = tanh(c)
        return (_times(o, act_c), c), (a, act_c)

    def backward_constants(rk):
        """The gates' derivative factors [1/4, 1/4, 1, 1/4] per column (kH,), then
        recurrence.carry_barrier_constants for the dc recurrence (rk: (H, kH))."""
        return (_block_columns(variant.blocks, rk.shape[0], 0.25, 1.0),
                *carry_barrier_constants(*rk.shape))

    def backward_step(dh, carry, cache, state_tm1, state_t, consts):
        """BPTT through one step (module docstring). dh (B, H): the total gradient of h_t;
        carry (dc,): the gradient of c_t arriving from step t+1 (already times f_{t+1});
        cache (a_t,) or (a_t, tanh(c_t)). Returns ((dz_t,), (dc_t * f_t,)): dz_t (B, kH) the
        gradient of the gate pre-activations (shared by both projections), and dc_{t-1}'s
        share."""
        (dc,), (derivative_scale, *barrier), a = carry, consts, cache[0]
        c_tm1, c_t = state_tm1[1], state_t[1]
        i, f, g, o = _gates(a, variant)
        if variant.output_activation:
            act_c = cache[1]  # tanh(c_t), from forward_step
            r = _times(o, 1.0 - act_c * act_c)
        else:
            act_c, r = c_t, (1.0 if o is None else o)
        factor = {"i": g, "f": c_tm1 - g if variant.coupled else c_tm1,
                  "c": tf.ones_like(g) if i is None else i, "o": act_c}
        # Written as "factors times [dc, dc, dc, dh]" on purpose: with the products inside the
        # concat instead (dz = [dc g, dc c_{t-1}, dc i, dh tanh(c_t)] * ...), XLA fuses the
        # purely element-wise dc recurrence of the unrolled loop across steps and recomputes it
        # for every step (O(T^2) work): slower to run and to compile.
        p = tf.concat([factor[b] for b in variant.blocks], axis=1) * (1.0 - a * a) \
            * derivative_scale
        # the concatenation below (kH columns: dc per gate block, dh for o) keeps XLA from
        # fusing the dc recurrence across steps from 128 columns; below that, a matmul with
        # the identity does
        dc = through_barrier(dc + dh * r, barrier)
        dz = tf.concat([dh if b == "o" else dc for b in variant.blocks], axis=1) * p
        return (dz,), (_times(f, dc),)

    return Recurrence(
        name=f"lstm/{variant.name}", n_cached=2 if variant.output_activation else 1,
        shares_pre_activation=True,
        prepare_weights=prepare_weights, project_inputs=project_inputs,
        forward_step=forward_step, backward_constants=backward_constants,
        backward_step=backward_step,
        initial_carry=lambda d_final_extras, dh_last: (d_final_extras[0],),  # dc_T
        state0_gradients=lambda dh_rec, carry: (dh_rec, carry[0]),          # dh0, dc0
    )


RECURRENCES = {name: _recurrence(v) for name, v in VARIANTS.items()}
LSTM = RECURRENCES["vanilla"]


def lstm_hidden_gradients(x, h0, c0, weights, dhs, layout: Layout | None = None,
                          variant: str = "vanilla"):
    """dL/dh_t (T, B, H) at every step from the LSTM's own loops (recurrence.hidden_gradients);
    weights by name, x (T, B, n_in), h0, c0 (B, H), dhs (T, B, H)."""
    return hidden_gradients(RECURRENCES[variant], x, (h0, c0), weights, dhs, layout or Layout())
