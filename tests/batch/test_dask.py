"""Dask distributed: the same batch on a LocalCluster (by object and by scheduler address)."""

from __future__ import annotations

import pytest

import aisec_lab as al
from aisec_lab.batch import load_grid, run_batch

from . import fakes

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  scheduler_port=0, silence_logs=40) as c:
        yield c


def test_local_cluster_runs_the_jobs_and_resumes(cluster, tmp_path):
    markers = tmp_path / "markers"
    grid = load_grid({"base": {"marker_dir": str(markers)}, "grid": {"model": ["a", "b"]}}, validate=False)
    out = tmp_path / "out"
    res = run_batch(grid, out, scheduler=cluster, runner=fakes.fake_runner)
    assert len(res.finished) == 2 and not res.failed
    for job in grid.jobs():
        assert al.Scorecard.load(out / job.job_id).model["name"] == job.params["model"]
    # by address, with one more job: the finished ones are skipped
    again = load_grid({"base": {"marker_dir": str(markers)}, "grid": {"model": ["a", "b", "c"]}}, validate=False)
    res2 = run_batch(again, out, scheduler=cluster.scheduler_address, runner=fakes.fake_runner)
    assert len(res2.skipped) == 2 and [j.params["model"] for j in res2.finished] == ["c"]
    for job in again.jobs():
        assert len(fakes.markers(markers, job.job_id)) == 1
    assert "3 finished, 0 failed" in (out / "index.md").read_text()


def test_a_failing_job_on_dask_is_recorded(cluster, tmp_path):
    grid = load_grid({"grid": {"model": ["a"], "fail": [False, True]}}, validate=False)
    with distributed.Client(cluster) as client:
        res = run_batch(grid, tmp_path / "out", scheduler=client, runner=fakes.fake_runner)
        assert client.status == "running"  # a client passed in stays open
    assert len(res.finished) == 1 and len(res.failed) == 1
    assert (tmp_path / "out" / res.failed[0].job_id / "error.json").is_file()
