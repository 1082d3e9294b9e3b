"""Loading the pipeline's trained models back from models/*.npz (the DVC artifacts).

    model, meta = load_model("models/memory.npz")   # a SequenceModel, and its training params

`read_model_file` checks a file and returns its arrays without building anything; the stages
that analyse a model use it with their own half's rebuild, so a numpy stage never depends on
the TensorFlow code (and the reverse). `load_model` builds either kind, for users and tests.
"""

from __future__ import annotations

from pathlib import Path

from rnnlab.errors import DataError
from rnnlab.pipeline.files import load_arrays

# The model files the pipeline writes: run name -> the stage that writes it.
MODEL_STAGES = {"numpy_rnn_copy": "train_numpy_rnn", "sine": "train_sine",
                "memory": "train_memory", "adding": "train_adding"}


def read_model_file(path: str | Path) -> tuple[dict, dict]:
    """(arrays, meta) of a model file of the pipeline, checked: format record, kind, loaded
    with allow_pickle=False. Any problem is a DataError naming the file and the stage that
    remakes it."""
    path = Path(path)
    kind = path.stem
    stage = MODEL_STAGES.get(kind)
    if stage is None:
        raise DataError(f"{path}: not a model of the pipeline (expected one of "
                        f"{', '.join(f'models/{k}.npz' for k in MODEL_STAGES)})")
    arrays, meta = load_arrays(path, stage)
    if meta.get("kind") != kind or "params" not in meta:
        raise DataError(f"{path}: holds a {meta.get('kind')!r} model, expected {kind!r}; "
                        f"rebuild it with `dvc repro -f {stage}`")
    return arrays, meta


def recorded_params(path: str | Path, meta: dict, section: str):
    """The typed params `section` a model file records of its training run; a DataError naming
    the file if they are not what today's code reads (e.g. a file from an older version)."""
    from rnnlab.pipeline.params import validate_section

    problems: list[str] = []
    typed = validate_section(section, meta["params"].get(section), problems)
    if typed is None:
        raise DataError(f"{path}: its recorded {section} params are not today's ("
                        f"{problems[0]}); rebuild it with `dvc repro -f "
                        f"{MODEL_STAGES[Path(path).stem]}`")
    return typed


def rebuild(path: str | Path, arrays: dict, meta: dict, build):
    """build(arrays, meta) -> model, with a mismatch between weights and the recorded
    architecture reported as a DataError naming the file."""
    try:
        return build(arrays, meta)
    except (KeyError, TypeError, ValueError) as exc:
        stage = MODEL_STAGES[Path(path).stem]
        raise DataError(f"{path}: weights do not match the recorded model ({exc}); rebuild it "
                        f"with `dvc repro -f {stage}`") from None


def load_model(path: str | Path):
    """A trained model of the pipeline, rebuilt from its checked file: an RNNClassifier (numpy)
    for models/numpy_rnn_copy.npz, a SequenceModel (TensorFlow) for models/sine.npz and
    models/memory.npz. Returns (model, meta), meta["params"] holding the params it was
    trained with."""
    arrays, meta = read_model_file(path)
    if Path(path).stem == "numpy_rnn_copy":
        from rnnlab.numpy_rnn.model import RNNClassifier

        return rebuild(path, arrays, meta, lambda a, m: RNNClassifier.from_state_dict(a)), meta
    from rnnlab.tf_rnn.model import SequenceModel, rebuild_model

    def build(a, m) -> SequenceModel:
        model = rebuild_model(m["model"])
        model.set_weights(a)
        return model

    return rebuild(path, arrays, meta, build), meta
