"""``simbaflow inspect`` and ``simbaflow simulate`` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simbaflow.simulate import jsimba
from simbaflow.cli import main

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "dc_current_loop.jsimba"
REFERENCE = ROOT.parent / "shared" / "reference" / "direct_current_power_flow_control.jsimba"
LICENCE_VARIABLES = ("SIMBA_DEPLOYMENT_KEY", "SIMBA_COMPUTE_KEY_ID", "SIMBA_COMPUTE_SECRET", "SIMBA_COMPUTE_SLOTS")


def run_cli(args, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference is not available")
def test_inspect_reference_lists_every_device_and_scoped_signal(capsys):
    code, out, _ = run_cli(["inspect", str(REFERENCE), "--design", "1-direct_current_continuous_controller"], capsys)
    assert code == 0
    design = jsimba.get_design(jsimba.load_project(REFERENCE), "1-direct_current_continuous_controller")
    assert f"devices ({len(design['Circuit']['Devices'])}):" in out
    for device in design["Circuit"]["Devices"]:
        assert device["LibraryName"] in out
    assert "    PI                 PID                              Kp=0.1414 Kd=0 Ki=250 SamplingTime=none" in out
    assert "Value=' 1 / 600'" in out
    assert out.rstrip().endswith("scoped signals (2):\n    L1 - Current\n    duty_cycle - Out")
    assert "EndTime=0.02" in out


def test_inspect_json_of_our_project_matches_the_file(capsys):
    code, out, _ = run_cli(["inspect", str(PROJECT), "--format", "json"], capsys)
    assert code == 0
    listing = json.loads(out)
    project = jsimba.load_project(PROJECT)
    assert [d["name"] for d in listing["designs"]] == ["continuous_pi", "discrete_pi", "power_flow"]
    for summary, design in zip(listing["designs"], project["Designs"]):
        assert [d["name"] for d in summary["devices"]] == [d["Name"] for d in design["Circuit"]["Devices"]]
        assert summary["scoped_signals"] == jsimba.scoped_signals(design)
        assert summary["transient"]["EndTime"] == "0.02"
    flow = listing["designs"][2]
    assert "PowerEstimated - Out" in flow["scoped_signals"] and "PowerRef - Out" in flow["scoped_signals"]
    block = next(d for d in flow["devices"] if d["name"] == "pi_controller")
    assert block["parameters"]["Code"] == jsimba.device_by_name(project["Designs"][2], "pi_controller")["Parameters"]["Code"]


def test_inspect_text_summarises_code(capsys):
    code, out, _ = run_cli(["inspect", str(PROJECT), "--design", "discrete_pi"], capsys)
    assert code == 0
    length = len(jsimba.device_by_name(jsimba.get_design(jsimba.load_project(PROJECT), "discrete_pi"), "pi_controller")["Parameters"]["Code"])
    assert f"Code=<{length} characters>" in out
    assert "    a0                 Constant                         SamplingTime=none Value=-0.1321875" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "missing.jsimba"], "simbaflow: missing.jsimba: no such SIMBA project file (expected a .jsimba file)\n"),
        (
            ["inspect", str(PROJECT), "--design", "nope"],
            f"simbaflow: {PROJECT}: no design named 'nope'; valid designs: continuous_pi, discrete_pi, power_flow\n",
        ),
        (
            ["simulate", str(PROJECT), "--design", "continuous_pi", "--set", "PI.Kp", "--out", "x.parquet"],
            "simbaflow: --set 'PI.Kp': expected DEVICE.PARAM=VALUE, e.g. PI.Kp=0.2\n",
        ),
        (
            ["simulate", str(PROJECT), "--design", "continuous_pi", "--end-time", "-1", "--out", "x.parquet"],
            "simbaflow: --end-time -1.0: expected a positive number of seconds\n",
        ),
    ],
)
def test_bad_input_is_one_line_without_traceback(capsys, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert err == message
    assert list(tmp_path.iterdir()) == []


def test_simulate_with_simba_and_no_licence_is_exit_3_and_writes_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in LICENCE_VARIABLES}
    out = tmp_path / "run.parquet"
    job = subprocess.run(
        [
            str(Path(sys.executable).parent / "simbaflow"),
            "simulate",
            str(PROJECT),
            "--design",
            "continuous_pi",
            "--set",
            "PI.Kp=0.2",
            "--engine",
            "simba",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert job.returncode == 3
    lines = job.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("simbaflow: SIMBA needs a licence and none is configured")
    assert "--engine embedded" in lines[0]
    assert "Traceback" not in job.stderr
    assert list(tmp_path.iterdir()) == []
