"""The pipeline's plumbing between params.yaml, files and the two libraries.

Modules:
    params      params.yaml as typed, validated sections (one frozen dataclass per section)
    files       atomic, reproducible, checked files (npz with a format record, JSON, CSV, PNG)
    sequences   the sequences of the sheet's three tasks (copy, memory, sine)
    datasets    those sequences on disk: generated, written and checked on load
    runs        a training run's outputs (DVCLive progress, model, metrics) and load_model
    plotting    the pipeline's PNG figures
    stage       the wrapper every stage script runs in (one-line errors, Ctrl-C)
    code_deps   each stage script's rnnlab import closure, checked against dvc.yaml's deps
"""
