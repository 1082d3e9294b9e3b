"""Stage code_fingerprints: one fingerprint per stage script, data/code/<script>.txt, the md5 of
the script and of every rnnlab module it imports. Each stage depends on its own, so a code
change re-runs exactly the stages that run the changed file."""

import _venv  # noqa: F401  (first: one clear line when run outside rnnlab's environment)

from pathlib import Path

import yaml

from rnnlab.pipeline.code_deps import write_fingerprints
from rnnlab.pipeline.stage import run_stage


def main() -> str:
    written = write_fingerprints(yaml.safe_load(Path("dvc.yaml").read_text()))
    return f"{len(written)} stage scripts fingerprinted in data/code/"


if __name__ == "__main__":
    run_stage("code_fingerprints", main)
