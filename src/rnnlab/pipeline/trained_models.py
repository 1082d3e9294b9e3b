"""Loading the pipeline's trained models back from models/*.npz (the DVC artifacts)."""

from __future__ import annotations

from pathlib import Path

from rnnlab.errors import DataError
from rnnlab.pipeline.files import load_arrays

# The model files the pipeline writes: run name -> the stage that writes it.
MODEL_STAGES = {"numpy_rnn_copy": "train_numpy_rnn", "sine": "train_sine",
                "memory": "train_memory"}


def load_model(path: str | Path):
    """A trained model of the pipeline, rebuilt from its file: an RNNClassifier (numpy) for
    models/numpy_rnn_copy.npz, a SequenceModel (TensorFlow) for models/sine.npz and
    models/memory.npz.

    The file is checked first (format record, kind, array names and shapes; loaded with
    allow_pickle=False); any problem is a DataError naming the file and the stage that remakes
    it. Returns (model, meta), meta holding the params it was trained with.
    """
    path = Path(path)
    kind = path.stem
    stage = MODEL_STAGES.get(kind)
    if stage is None:
        raise DataError(f"{path}: not a model of the pipeline (expected one of "
                        f"{', '.join(f'models/{k}.npz' for k in MODEL_STAGES)})")
    arrays, meta = load_arrays(path, stage)
    fix = f"rebuild it with `dvc repro -f {stage}`"
    if meta.get("kind") != kind:
        raise DataError(f"{path}: holds a {meta.get('kind')!r} model, expected {kind!r}; {fix}")
    try:
        if kind == "numpy_rnn_copy":
            from rnnlab.numpy_rnn.model import RNNClassifier

            return RNNClassifier.from_state_dict(arrays), meta
        from rnnlab.tf_rnn.model import rebuild_model

        model = rebuild_model(meta["model"])
        model.set_weights(arrays)
        return model, meta
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: weights do not match the recorded model ({exc}); {fix}") from None
