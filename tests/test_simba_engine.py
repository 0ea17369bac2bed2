"""The SIMBA engine's license-free parts: licence checks, slots, resampling, engine choice, run files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simbaflow.simulate.engines import simba
from simbaflow.simulate.engines.base import Overrides, RunResult
from simbaflow.simulate.engines.select import select_engine
from simbaflow.core.errors import LicenseError, SimbaflowError, SpecError
from simbaflow.simulate.runio import read_run_parquet, write_run_parquet

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "dc_current_loop.jsimba"
LICENCE_VARIABLES = (simba.DEPLOYMENT_KEY, simba.COMPUTE_KEY_ID, simba.COMPUTE_SECRET, simba.COMPUTE_SLOTS)


@pytest.fixture
def no_licence(monkeypatch):
    for name in LICENCE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({}, None),
        ({"SIMBA_DEPLOYMENT_KEY": ""}, None),
        ({"SIMBA_DEPLOYMENT_KEY": "k"}, "deployment"),
        ({"SIMBA_COMPUTE_KEY_ID": "id"}, None),
        ({"SIMBA_COMPUTE_KEY_ID": "id", "SIMBA_COMPUTE_SECRET": "s"}, "compute"),
    ],
)
def test_licence_source(env, source):
    assert simba.licence_source(env) == source


def test_missing_licence_is_one_sentence_with_exit_code_3():
    with pytest.raises(LicenseError) as info:
        simba.require_licence({})
    message = str(info.value)
    assert info.value.exit_code == 3
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")
    assert "--engine embedded" in message


@pytest.mark.parametrize(
    ("env", "slots"),
    [
        ({}, 0),
        ({"SIMBA_COMPUTE_KEY_ID": "id", "SIMBA_COMPUTE_SECRET": "s"}, 1),
        ({"SIMBA_COMPUTE_KEY_ID": "id", "SIMBA_COMPUTE_SECRET": "s", "SIMBA_COMPUTE_SLOTS": "6"}, 6),
    ],
)
def test_simba_slots_from_compute_licence(env, slots):
    assert simba.simba_slots(env) == slots


@pytest.mark.parametrize("text", ["0", "-2", "four", ""])
def test_bad_slot_count_is_a_clear_error(text):
    env = {"SIMBA_COMPUTE_KEY_ID": "id", "SIMBA_COMPUTE_SECRET": "s", "SIMBA_COMPUTE_SLOTS": text}
    with pytest.raises(SpecError, match=f"SIMBA_COMPUTE_SLOTS={text!r}: expected a positive integer"):
        simba.simba_slots(env)


def test_run_without_licence_fails_before_any_work(no_licence, tmp_path):
    # The project does not even exist: the licence is checked first.
    with pytest.raises(LicenseError):
        simba.SimbaEngine().run(tmp_path / "missing.jsimba", "continuous_pi", Overrides(), [])


@pytest.mark.parametrize("sampled", [False, True])
def test_resample_keeps_values_on_identical_time_points(sampled):
    t = np.array([0.0, 1e-6, 1e-6, 2e-6])  # a repeated time point, as at a switching event
    y = np.array([5.0, 6.0, 7.0, 8.0])
    np.testing.assert_array_equal(simba.resample_signal(t, t.copy(), y, sampled=sampled), y)


def test_resample_continuous_signal_is_linear():
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0])
    own_t = np.array([0.0, 1.0, 2.0])
    got = simba.resample_signal(t, own_t, np.array([0.0, 10.0, 30.0]), sampled=False)
    np.testing.assert_allclose(got, [0.0, 5.0, 10.0, 20.0, 30.0])


def test_resample_sampled_signal_holds_each_value():
    t = np.array([0.0, 0.4, 1.0, 1.7, 2.5])
    own_t = np.array([0.0, 1.0, 2.0])
    got = simba.resample_signal(t, own_t, np.array([1.0, 2.0, 3.0]), sampled=True)
    np.testing.assert_array_equal(got, [1.0, 1.0, 2.0, 2.0, 3.0])


def test_resample_crops_to_the_shorter_of_time_and_data():
    t = np.array([0.0, 1.0, 2.0])
    got = simba.resample_signal(t, np.array([0.0, 1.0, 2.0, 3.0]), np.array([4.0, 8.0]), sampled=False)
    np.testing.assert_array_equal(got, [4.0, 8.0, 8.0])


def test_engine_choice(no_licence, monkeypatch):
    with pytest.raises(LicenseError):
        select_engine("simba")
    monkeypatch.setenv(simba.DEPLOYMENT_KEY, "a-key")
    engine, message = select_engine("auto")
    assert isinstance(engine, simba.SimbaEngine)
    assert message == "engine auto: picked SIMBA (deployment licence configured)"
    with pytest.raises(SimbaflowError, match="unknown engine 'spice'; valid engines: simba, embedded, auto"):
        select_engine("spice")


def test_auto_without_licence_takes_the_embedded_engine(no_licence):
    engine, message = select_engine("auto")
    assert engine.name == "embedded"
    assert message == "engine auto: picked the embedded engine (no SIMBA licence configured)"


def _batch_file(tmp_path, jobs):
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"project": str(PROJECT), "jobs": jobs}))
    return batch


def _request(index, kp):
    return {"index": index, "design": "continuous_pi", "parameters": {"PI": {"Kp": kp}},
            "transient": {"EndTime": "0.01"}, "signals": ["L1 - Current"]}


def test_job_process_reports_simba_refusing_to_open_a_project_without_licence(tmp_path):
    """The batch's job process itself, with real aesim.simba: no licence, so SIMBA refuses and it exits 3.

    It refuses when opening the project, once for the batch, before starting any job.
    """
    pytest.importorskip("aesim.simba")
    batch = _batch_file(tmp_path, [_request(0, "0.2"), _request(1, "0.3")])
    env = {k: v for k, v in os.environ.items() if k not in LICENCE_VARIABLES}
    env["SIMBA_OFFLINE_MODE"] = "1"
    job = subprocess.run(
        [sys.executable, "-m", "simbaflow.simulate.engines.simba", str(batch), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert job.returncode == 3
    assert "Invalid License" in job.stderr
    assert "simbaflow-job start" not in job.stdout  # no job began
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.json"]


def test_a_refused_key_stops_the_batch_with_exit_3(monkeypatch):
    """A configured but invalid deployment key: SIMBA refuses it and the batch raises LicenseError (exit 3)."""
    pytest.importorskip("aesim.simba")
    for name in LICENCE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(simba.DEPLOYMENT_KEY, "not-a-simba-key")
    monkeypatch.setenv("SIMBA_OFFLINE_MODE", "1")
    jobs = [simba.BatchJob("continuous_pi", Overrides(parameters={"PI": {"Kp": kp}}), ["L1 - Current"], 0.01)
            for kp in (0.2, 0.3)]
    with pytest.raises(LicenseError, match=r"^SIMBA refused the licence: Invalid License") as info:
        list(simba.SimbaEngine().run_batch(PROJECT, jobs))
    assert info.value.exit_code == 3


def test_job_requests_are_checked_against_the_project_before_any_process(no_licence, monkeypatch):
    job = simba.BatchJob("continuous_pi", Overrides(parameters={"PI": {"Kp": 0.2, "Ki": 250.0}}),
                         ["L1 - Current", "iRef - Out"], end_time_s=0.005)
    request = simba.job_request(PROJECT, job)
    # SIMBA's parameter values are strings that read back as the numbers given; names as in the project file.
    assert {k: float(v) for k, v in request.pop("parameters")["PI"].items()} == {"Kp": 0.2, "Ki": 250.0}
    assert float(request["transient"].pop("EndTime")) == 0.005
    assert request == {"design": "continuous_pi", "transient": {}, "signals": ["L1 - Current", "iRef - Out"]}
    with pytest.raises(SpecError, match="PI2"):
        simba.job_request(PROJECT, simba.BatchJob("continuous_pi", Overrides(parameters={"PI2": {"Kp": 1}}), []))
    with pytest.raises(SpecError, match="R9 - Voltage"):
        simba.job_request(PROJECT, simba.BatchJob("continuous_pi", Overrides(), ["R9 - Voltage"]))
    # The licence is checked before the project: nothing runs without one.
    with pytest.raises(LicenseError):
        list(simba.SimbaEngine().run_batch(PROJECT, [job]))


def test_each_job_process_leases_one_compute_slot():
    compute = {"SIMBA_COMPUTE_KEY_ID": "id", "SIMBA_COMPUTE_SECRET": "s", "SIMBA_COMPUTE_SLOTS": "6", "HOME": "/h"}
    assert simba.job_environment(compute) == {**compute, "SIMBA_COMPUTE_SLOTS": "1"}
    deployment = {"SIMBA_DEPLOYMENT_KEY": "k", "HOME": "/h"}
    assert simba.job_environment(deployment) == deployment


@pytest.mark.parametrize(
    ("exc", "text", "licence"),
    [
        (Exception("Invalid License (InvalidLicence).\n   at Simba.Data.Repository..ctor(String path)"),
         "Invalid License (InvalidLicence).", True),
        (Exception("Solver diverged at t=0.0012\n   at Simba.Solver.Run()"), "Solver diverged at t=0.0012", False),
        (RuntimeError(), "RuntimeError", False),
    ],
)
def test_job_process_errors_are_one_line(exc, text, licence):
    assert simba.error_text(exc) == (text, licence)


def test_result_files_carry_each_runs_own_status(tmp_path):
    t = np.array([0.0, 1e-6, 2e-6])
    simba.write_result(tmp_path / "result-0.npz", {"status": "ok", "message": "", "summary": {"run_time_s": 0.5},
                                                   "signals": ["L1 - Current"]}, {"time_s": t, "signal_0": 3 * t})
    simba.write_result(tmp_path / "result-1.npz", {"status": "failed", "message": "SIMBA job ended with status Failed",
                                                   "summary": {}, "signals": ["L1 - Current"]}, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result-0.npz", "result-1.npz"]  # no temporary left
    ok = simba.read_result(tmp_path / "result-0.npz", 1.5)
    assert ok.status == "ok" and ok.wall_time_s == 1.5 and ok.summary == {"run_time_s": 0.5}
    np.testing.assert_array_equal(ok.signals["L1 - Current"], 3 * t)
    failed = simba.read_result(tmp_path / "result-1.npz", 0.25)
    assert (failed.status, failed.message, failed.signals) == ("failed", "SIMBA job ended with status Failed", {})


def test_simulate_stage_batch_with_simba_and_no_licence_is_exit_3(tmp_path):
    """The workflow's batch job refuses too, writing no manifest and no run."""
    results = tmp_path / "results" / "nolicence"
    results.mkdir(parents=True)
    plan = {"project": str(PROJECT), "feasible": None,
            "designs": {"continuous_pi": {"signals": ["L1 - Current"], "end_time_s": 0.01, "timeout_s": 60}},
            "batches": {"continuous_pi-b000": [{"run_id": "c1", "design": "continuous_pi",
                                                "overrides": {"PI": {"Kp": 0.2, "Ki": 250.0}}, "candidates": ["c1"]}]}}
    (results / "plan.json").write_text(json.dumps(plan))
    env = {k: v for k, v in os.environ.items() if k not in LICENCE_VARIABLES}
    job = subprocess.run([sys.executable, "-m", "simbaflow.simulate.batch", str(results / "plan.json"),
                          "continuous_pi-b000", "m.json", "simba"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert job.returncode == 3
    assert job.stderr.startswith("simbaflow: SIMBA needs a licence and none is configured")
    assert not (tmp_path / "m.json").exists() and not (results / "runs").exists()


def test_sweep_with_simba_and_no_licence_is_exit_3_before_any_work(tmp_path):
    from test_simulate_stage import make_spec, workdir

    work = workdir(tmp_path, make_spec("nolicence"))
    env = {k: v for k, v in os.environ.items() if k not in LICENCE_VARIABLES}
    job = subprocess.run([sys.executable, "-m", "simbaflow", "sweep", "s.yaml", "--engine", "simba"],
                         cwd=work, capture_output=True, text=True, env=env)
    assert job.returncode == 3
    lines = job.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("simbaflow: SIMBA needs a licence and none is configured")
    assert "Traceback" not in job.stderr
    assert sorted(p.name for p in work.iterdir()) == ["s.yaml", "simba_projects"]


# --- run files ------------------------------------------------------------------


def _result():
    t = np.linspace(0.0, 1e-3, 5)
    return RunResult(
        time_s=t,
        signals={"L1 - Current": 2.0 * t, "duty_cycle - Out": np.full(5, 0.5)},
        status="ok",
        engine="simba",
        engine_version="2026.10.26",
        wall_time_s=1.25,
        summary={"run_time_s": 1.0},
    )


def test_run_parquet_round_trip(tmp_path):
    path = tmp_path / "run.parquet"
    write_run_parquet(path, _result(), {"design": "continuous_pi", "overrides": {"parameters": {"PI": {"Kp": "0.2"}}}})
    frame, metadata = read_run_parquet(path)
    assert list(frame.columns) == ["time_s", "L1 - Current", "duty_cycle - Out"]
    np.testing.assert_array_equal(frame["L1 - Current"].to_numpy(), 2.0 * np.linspace(0.0, 1e-3, 5))
    assert metadata["status"] == "ok"
    assert metadata["engine"] == "simba" and metadata["engine_version"] == "2026.10.26"
    assert metadata["wall_time_s"] == 1.25
    assert metadata["design"] == "continuous_pi"
    assert metadata["overrides"] == {"parameters": {"PI": {"Kp": "0.2"}}}
    assert [p.name for p in tmp_path.iterdir()] == ["run.parquet"]


def test_run_parquet_refuses_ragged_signals_and_writes_nothing(tmp_path):
    result = _result()
    result.signals["L1 - Current"] = result.signals["L1 - Current"][:3]
    path = tmp_path / "run.parquet"
    with pytest.raises(SimbaflowError, match="signal 'L1 - Current' has 3 points but the time vector has 5"):
        write_run_parquet(path, result, {})
    assert list(tmp_path.iterdir()) == []


def test_reading_a_non_run_file_is_a_clear_error(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_text("not parquet")
    with pytest.raises(SimbaflowError, match="not a Parquet run file"):
        read_run_parquet(path)
    with pytest.raises(SimbaflowError, match="no such run file"):
        read_run_parquet(tmp_path / "missing.parquet")
