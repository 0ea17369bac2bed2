"""The AC client/server study through the whole pipeline on the embedded engine."""

import json
import shutil

import pandas as pd
import pytest
import yaml

from cli_helpers import REPO, run_cli


@pytest.fixture(scope="module")
def ac_swept(tmp_path_factory):
    work = tmp_path_factory.mktemp("ac")
    spec = yaml.safe_load((REPO / "design" / "ac_client_server.yaml").read_text())
    spec["study"] = "ac_small"
    spec["ac"]["sweep"] = {"server": {"kp": [0.02], "kr": [500], "phi_prime_rad": [0.0]},
                           "client": {"kp": [0.3], "kr": [250, 3000], "phi_prime_rad": [0.0]},
                           "k_gain": [1.0], "discretisation": ["control_library_pr"]}
    (work / "simba_projects").mkdir()
    shutil.copy(REPO / "simba_projects" / "ac_client_server.jsimba", work / "simba_projects")
    (work / "s.yaml").write_text(yaml.safe_dump(spec))
    res = run_cli("sweep", "s.yaml", cwd=work, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return work


def test_phase_error_simulated_and_selected(ac_swept):
    out = ac_swept / "results" / "ac_small"
    table = pd.read_csv(out / "candidates.csv").set_index("candidate_id")
    # Client Kr = 3000 breaks an analytic constraint (its margins): it is not simulated.
    kr3000 = table.loc["v0p02-500-0_i0p3-3000-0_k1_clpr"]
    assert not kr3000.stable or min(kr3000.client_phase_margin_deg, kr3000.server_phase_margin_deg) < 30 \
        or min(kr3000.client_gain_margin_db, kr3000.server_gain_margin_db) < 6
    m = pd.read_csv(out / "metrics.csv")
    run = m[m.status == "ok"].iloc[0]
    assert run.candidate_id == "v0p02-500-0_i0p3-250-0_k1_clpr"
    assert (m[m.candidate_id != run.candidate_id].status == "not simulated").all()
    # Analytic: the link's one-period delay, −ω0·Ts = −1.8°; the switched simulation agrees within 0.4°.
    assert run.analytic_phase_error_deg == pytest.approx(-1.8, abs=1e-6)
    assert run.phase_error_deg == pytest.approx(-1.8, abs=0.4)
    assert abs(run.phase_error_deg) < 2
    # At the sweep's 20 kHz carriers the 8 V pp ripple (30 A pp through the electrolytics' resistance)
    # biases the voltage waveform's fundamental by about -2.7 % (0.002 % at 200 kHz, see the README).
    assert abs(run.voltage_amplitude_error_pct) < 3.5
    sel = json.loads((out / "selection.json").read_text())
    assert sel["candidate_id"] == run.candidate_id and sel["engine"] == "embedded"
    assert sel["candidate"]["client_server.phase_error_abs_deg"] == pytest.approx(abs(run.phase_error_deg))


def test_report_shows_voltage_currents_and_phase_error(ac_swept):
    out = ac_swept / "results" / "ac_small"
    waveforms = (out / "figures" / "waveforms.html").read_text()
    for signal in ("v_load - Out", "Vref - Out", "Ls1 - Current", "Lc1 - Current"):
        assert signal in waveforms
    page = (out / "pages" / "v0p02-500-0_i0p3-250-0_k1_clpr.html").read_text()
    assert "phase_error_deg" in page and "<svg" in page
    report = (out / "report.html").read_text()
    assert "waveforms.html" in report and "metrics.csv" in report


def test_kgain_step_and_startup_measured(ac_swept):
    # Design client_server_kgain_step: the server's k_gain x 0.5 at 0.1 s (`m`), back at 0.16 s (`l`).
    import math

    import numpy as np

    from simbaflow.simulate.runio import read_run_parquet

    out = ac_swept / "results" / "ac_small"
    cid = "v0p02-500-0_i0p3-250-0_k1_clpr"
    m = pd.read_csv(out / "metrics.csv").set_index(["candidate_id", "design"])
    base, step = m.loc[(cid, "client_server")], m.loc[(cid, "client_server_kgain_step")]
    assert base.status == "ok" and step.status == "ok"
    # The client current as the firmware samples it (every 100 µs tick), one period before
    # each key and at the end: k_gain × the server's, then 0.5 × that, then again k_gain ×.
    df, _ = read_run_parquet(ac_swept / step.run_file)  # relative to the study's directory
    t = df["time_s"].to_numpy()
    assert t[-1] == pytest.approx(0.3)  # the design's own end time
    for end_s, expected in ((0.1, 1.0), (0.16, 0.5), (0.3, 1.0)):
        ticks = np.arange(round((end_s - 0.02) / 1e-4), round(end_s / 1e-4)) * 1e-4
        rotation = np.exp(-2j * math.pi * 50 * ticks)
        i_s, i_c = (np.interp(ticks, t, df[name].to_numpy()) for name in ("Ls1 - Current", "Lc1 - Current"))
        assert abs(np.sum(i_c * rotation) / np.sum(i_s * rotation)) == pytest.approx(expected, rel=0.02)
    # Settling after the step: finite and within twice the analytic 2 % settling time of the coupled loops.
    analytic = pd.read_csv(out / "candidates.csv").set_index("candidate_id").loc[cid, "settling_time_s"]
    assert 0 < step.kgain_step_settling_s < 2 * analytic
    assert math.isnan(base.kgain_step_settling_s)
    # Start-up: both designs are the same circuit until 0.1 s.
    for row in (base, step):
        assert 0 < row.startup_settling_s < 0.1 and 0 < row.client_startup_settling_s < 0.1
    assert step.startup_settling_s == pytest.approx(base.startup_settling_s, abs=2e-4)
    assert step.client_startup_settling_s == pytest.approx(base.client_startup_settling_s, abs=2e-4)
