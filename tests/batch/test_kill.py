"""Done-when: SIGKILL a batch part-way; the re-run completes every job, and no finished job runs twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aisec_lab as al
from aisec_lab.batch import load_grid, run_batch

from . import fakes

REPO = Path(__file__).resolve().parents[2]
N_JOBS = 5


def test_sigkill_then_rerun_completes_and_runs_no_finished_job_twice(tmp_path):
    spec = {"name": "killed", "base": {"marker_dir": str(tmp_path / "markers"), "sleep": 1.0},
            "grid": {"model": [f"m{i}" for i in range(N_JOBS)]}}
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import json
        from aisec_lab.batch import load_grid, run_batch
        from tests.batch import fakes
        grid = load_grid(json.loads({json.dumps(json.dumps(spec))}), validate=False)
        run_batch(grid, {str(out)!r}, workers=1, runner=fakes.fake_runner)
        print("batch ended without being killed")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while len(list(out.glob("*/done.json"))) < 2:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the batch did not finish 2 jobs in 60 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the batch process and its pool workers
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    finished_before = {p.parent.name for p in out.glob("*/done.json")}
    assert 2 <= len(finished_before) < N_JOBS

    grid = load_grid(spec, validate=False)
    res = run_batch(grid, out, workers=1, runner=fakes.fake_runner)
    assert {j.job_id for j in res.skipped} == finished_before
    assert len(res.skipped) + len(res.finished) == N_JOBS and not res.failed
    for job in grid.jobs():
        assert al.Scorecard.load(out / job.job_id).model["name"] == job.params["model"]
        runs = len(fakes.markers(tmp_path / "markers", job.job_id))
        if job.job_id in finished_before:
            assert runs == 1, f"job {job.job_id} finished before the kill and ran again"
        else:  # the job running at the kill started twice; the ones still queued once
            assert runs in (1, 2)
    assert sum(len(fakes.markers(tmp_path / "markers", j.job_id)) for j in grid.jobs()) <= N_JOBS + 1
    md = (out / "index.md").read_text()
    assert f"{N_JOBS} jobs: {N_JOBS} finished, 0 failed, 0 not finished" in md
