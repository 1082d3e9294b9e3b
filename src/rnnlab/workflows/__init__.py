"""Workflows over the pipeline, each a `python -m rnnlab.workflows.<name>` (or a make target):

    dvc_commands   running dvc from Python: argument lists, this environment first on PATH
    queue          queued DVC experiments: queue, run with N workers, wait, read results
    compare        `make compare`: the named experiments over seeds, summarised in
                   reports/compare.json
    capacity       `make capacity`: recall against delay, sharded over machines if wanted
    plots_template the offline plots page template DVC's own `dvc plots show` uses
"""
