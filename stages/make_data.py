"""Stage data@<kind>: generate the train and test splits of one dataset (copy_task, memory, sine)
from its section of params.yaml."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

import sys

from rnnlab.pipeline.params import as_dict, read_params, validate
from rnnlab.pipeline.stage import run_stage


def main() -> str:
    cfg = validate(read_params())  # before any heavy import or work
    from rnnlab.pipeline.datasets import DATASETS, write_dataset  # numpy only, never TensorFlow

    spec = DATASETS[sys.argv[1]]
    sizes = write_dataset(sys.argv[1], as_dict(cfg[spec.section]))
    return f"wrote {sizes['train']} train / {sizes['test']} test sequences to {spec.folder}/"


if __name__ == "__main__":
    run_stage(f"data@{sys.argv[1]}", main)
