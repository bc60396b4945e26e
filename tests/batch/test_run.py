"""run_batch with a fake runner: job folders, failures, resume, index pages, bad arguments."""

from __future__ import annotations

import json

import pytest

import aisec_lab as al
from aisec_lab.batch import ERROR_JSON, Job, load_grid, run_batch, write_index

from . import fakes

HOSTILE = '<script>alert("x")</script> | **bold**'


def make_grid(tmp_path, grid, **base):
    return load_grid({"name": "test <b>batch</b>", "base": {"marker_dir": str(tmp_path / "markers"), **base},
                      "grid": grid}, validate=False)


def n_markers(tmp_path, job: Job) -> int:
    return len(fakes.markers(tmp_path / "markers", job.job_id))


def test_jobs_run_into_their_folders_and_the_index_ranks_them(tmp_path):
    ra = {"m-low": 0.3, "m-high": 0.9, HOSTILE: 0.6}
    grid = make_grid(tmp_path, {"model": list(ra)}, ra=ra)
    out = tmp_path / "out"
    res = run_batch(grid, out, workers=2, runner=fakes.fake_runner, timeout_s=123)
    assert res.ok and len(res.finished) == 3 and not res.failed and not res.skipped
    assert res.index_path == out.resolve() / "index.html" and res.index_md_path.name == "index.md"
    assert "3 finished, 0 failed" in res.summary()
    for job in grid.jobs():
        folder = out / job.job_id
        sc = al.Scorecard.load(folder)
        assert sc.model["name"] == job.params["model"]
        done = json.loads((folder / "done.json").read_text())
        assert done["job_id"] == job.job_id and done["params"] == job.params
        assert done["summary"]["robust_accuracy"] == pytest.approx(ra[job.params["model"]])
        assert done["summary"]["headline_eps"] == 0.1 and done["report"] == "scorecard.html"
        assert json.loads((folder / "job.json").read_text())["params"] == job.params
        assert not (folder / ERROR_JSON).exists()
        assert n_markers(tmp_path, job) == 1
        marker = json.loads(fakes.markers(tmp_path / "markers", job.job_id)[0].read_text())
        assert marker["timeout_s"] == 123 and marker["notebook"] == "01_scorecard"
    manifest = json.loads((out / "batch.json").read_text())
    assert [j["job_id"] for j in manifest["jobs"]] == [j.job_id for j in grid.jobs()]

    md = (out / "index.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and "robust" not in line]
    escaped = '&lt;script&gt;alert("x")&lt;/script&gt; \\| \\*\\*bold\\*\\*'
    assert rows[0].startswith("| 1 | m-high |") and rows[1].startswith(f"| 2 | {escaped} |")
    assert rows[2].startswith("| 3 | m-low |") and len(rows) == 3
    assert "90.0%" in rows[0] and "60.0%" in rows[1] and "30.0%" in rows[2]
    status = al.Scorecard.load(out / grid.jobs()[0].job_id).status.upper()
    assert "100.0%" in rows[0] and "L∞" in rows[0] and "fgsm, pgd, square" in rows[0] and status in rows[0]
    assert "<script>" not in md
    html = (out / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "test &lt;b&gt;batch&lt;/b&gt;" in html
    body = html[html.index("<tbody>"):]
    assert body.index("m-high") < body.index("&lt;script&gt;") < body.index("m-low")
    for job in grid.jobs():
        assert f'href="{job.job_id}/scorecard.html"' in html
        assert f"]({job.job_id}/scorecard.html)" in md


def test_a_failing_job_is_recorded_and_the_others_finish(tmp_path):
    grid = load_grid({"base": {"marker_dir": str(tmp_path / "markers")},
                      "grid": {"model": ["a", "b", "c", "d"], "fail": [None, True, "notebook"]}}, validate=False)
    out = tmp_path / "out"
    res = run_batch(grid, out, workers=2, runner=fakes.fake_runner)
    assert len(res.jobs) == 12 and len(res.finished) == 4 and len(res.failed) == 8 and not res.ok
    for job in res.failed:
        err = json.loads((out / job.job_id / "error.json").read_text())
        assert not (out / job.job_id / "done.json").exists()
        assert err["job_id"] == job.job_id and err["params"] == job.params
        assert "Traceback (most recent call last)" in err["traceback"]
        if job.params["fail"] is True:
            assert err["type"] == "ValueError" and "boom from the fake runner" in err["message"]
            assert err["cell"] is None
        else:
            assert err["type"] == "NotebookExecutionError" and "cell 4" in err["message"]
            assert err["cell"]["cell_index"] == 4 and err["cell"]["ename"] == "ZeroDivisionError"
            assert err["cell"]["executed_notebook"].endswith("01_scorecard.ipynb")
        assert job.job_id in res.errors and job.job_id in res.summary()
    for job in res.finished:
        assert al.Scorecard.load(out / job.job_id).model["name"] == job.params["model"]
    md = (out / "index.md").read_text()
    html = (out / "index.html").read_text()
    assert "## Failed" in md and "boom from the fake runner" in md and "cell 4" in md
    assert "ValueError" in html and "NotebookExecutionError" in html and "error.json" in html


def test_rerun_skips_finished_jobs_and_retries_failed_ones(tmp_path):
    grid = load_grid({"base": {"marker_dir": str(tmp_path / "markers")},
                      "grid": {"model": ["a", "b", "c"], "fail": [False, True]}}, validate=False)
    out = tmp_path / "out"
    first = run_batch(grid, out, workers=2, runner=fakes.fake_runner)
    assert len(first.finished) == 3 and len(first.failed) == 3
    second = run_batch(grid, out, workers=2, runner=fakes.fake_runner)
    assert {j.job_id for j in second.skipped} == {j.job_id for j in first.finished}
    assert not second.finished and {j.job_id for j in second.failed} == {j.job_id for j in first.failed}
    for job in grid.jobs():
        assert n_markers(tmp_path, job) == (2 if job.params["fail"] else 1)
    # a grid with one more value runs only the new jobs
    bigger = load_grid({"base": {"marker_dir": str(tmp_path / "markers")},
                        "grid": {"model": ["a", "b", "c", "d"], "fail": [False]}}, validate=False)
    third = run_batch(bigger, out, workers=2, runner=fakes.fake_runner)
    assert len(third.skipped) == 3 and [j.params["model"] for j in third.finished] == ["d"]
    # a finished job whose scorecard went missing runs again: nothing lost
    victim = third.skipped[0]
    (out / victim.job_id / "scorecard.json").unlink()
    fourth = run_batch(bigger, out, workers=1, runner=fakes.fake_runner)
    assert [j.job_id for j in fourth.finished] == [victim.job_id] and len(fourth.skipped) == 3
    assert al.Scorecard.load(out / victim.job_id)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_dies_fails_its_job_only(tmp_path, workers):
    both = load_grid({"base": {"marker_dir": str(tmp_path / "markers"), "sleep": 0.2},
                      "grid": {"model": ["a", "b"], "crash": [False, True]}}, validate=False)
    out = tmp_path / "out"
    res = run_batch(both, out, workers=workers, runner=fakes.fake_runner)
    assert {j.params["model"] for j in res.failed} == {"a", "b"} and all(j.params["crash"] for j in res.failed)
    assert len(res.finished) == 2 and not any(j.params["crash"] for j in res.finished)
    for job in res.failed:
        err = json.loads((out / job.job_id / "error.json").read_text())
        assert "worker process running this job died" in err["message"]
        assert not (out / job.job_id / "done.json").exists()
    for job in res.finished:
        assert al.Scorecard.load(out / job.job_id)


def test_runners_without_or_with_an_invalid_scorecard(tmp_path):
    grid = load_grid({"grid": {"model": ["a"]}}, validate=False)
    res = run_batch(grid, tmp_path / "none", workers=1, runner=fakes.runner_without_scorecard)
    assert len(res.finished) == 1
    done = json.loads((tmp_path / "none" / grid.jobs()[0].job_id / "done.json").read_text())
    assert done["scorecard"] is None and done["summary"] is None
    assert "n/a" in (tmp_path / "none" / "index.md").read_text()
    res = run_batch(grid, tmp_path / "bad", workers=1, runner=fakes.runner_invalid_scorecard)
    assert len(res.failed) == 1
    err = json.loads((tmp_path / "bad" / grid.jobs()[0].job_id / "error.json").read_text())
    assert err["type"] == "ScorecardFormatError"


def test_write_index_rebuilds_from_disk(tmp_path):
    grid = load_grid({"name": "again", "grid": {"model": ["a", "b"], "fail": [False, True]}}, validate=False)
    out = tmp_path / "out"
    run_batch(grid, out, workers=2, runner=fakes.fake_runner)
    (out / "index.md").unlink()
    (out / "index.html").unlink()
    path = write_index(out)
    assert path == out.resolve() / "index.html"
    md = (out / "index.md").read_text()
    assert "# Batch: again" in md and "2 finished, 2 failed, 0 not finished" in md


def test_bad_arguments(tmp_path):
    grid = load_grid({"grid": {"model": ["a"]}}, validate=False)
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(al.ConfigError, match="out_dir exists and is not a directory"):
        run_batch(grid, afile, runner=fakes.fake_runner)
    with pytest.raises(al.ConfigError, match="out_dir must be a directory path"):
        run_batch(grid, "", runner=fakes.fake_runner)
    for workers in (0, -1, 1.5, True):
        with pytest.raises(al.ConfigError, match="workers"):
            run_batch(grid, tmp_path / "o", workers=workers, runner=fakes.fake_runner)
    with pytest.raises(al.ConfigError, match="timeout_s"):
        run_batch(grid, tmp_path / "o", runner=fakes.fake_runner, timeout_s=-1)
    with pytest.raises(al.ConfigError, match="top-level"):
        run_batch(grid, tmp_path / "o", runner=lambda nb, p, o, **kw: None)
    with pytest.raises(al.ConfigError, match="runner must be a function"):
        run_batch(grid, tmp_path / "o", runner="run_notebook")
    with pytest.raises(al.ConfigError, match="scheduler"):
        run_batch(grid, tmp_path / "o", runner=fakes.fake_runner, scheduler=42)
    assert not list((tmp_path / "o").glob("*/done.json"))


def test_a_second_batch_into_the_same_folder_is_refused(tmp_path):
    from aisec_lab.batch import _Lock

    grid = load_grid({"grid": {"model": ["a"]}}, validate=False)
    out = tmp_path / "out"
    out.mkdir()
    with _Lock(out.resolve()):
        with pytest.raises(al.ConfigError, match="another batch is running"):
            run_batch(grid, out, runner=fakes.fake_runner)
    assert len(run_batch(grid, out, workers=1, runner=fakes.fake_runner).finished) == 1
