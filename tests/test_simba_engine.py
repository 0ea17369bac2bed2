"""The SIMBA engine's license-free parts: licence checks, slots, resampling, engine choice, run files."""

from __future__ import annotations

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


def test_job_process_reports_simba_refusing_to_open_a_project_without_licence(tmp_path):
    """The job process itself, with real aesim.simba: no licence, so SIMBA refuses and it exits 3."""
    pytest.importorskip("aesim.simba")
    request = tmp_path / "request.json"
    request.write_text(
        '{"project": "%s", "design": "continuous_pi", "parameters": {}, "transient": {}, "signals": ["L1 - Current"]}'
        % PROJECT
    )
    env = {k: v for k, v in os.environ.items() if k not in LICENCE_VARIABLES}
    env["SIMBA_OFFLINE_MODE"] = "1"
    job = subprocess.run(
        [sys.executable, "-m", "simbaflow.simulate.engines.simba", str(request), str(tmp_path / "result.npz")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert job.returncode == 3
    assert "Invalid License" in job.stderr
    assert not (tmp_path / "result.npz").exists()


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
