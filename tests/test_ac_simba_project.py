"""simba_projects/ac_client_server.jsimba: deterministic build, nets by pin position, firmware code, engine."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import yaml
import pytest

from simbaflow.simulate import jsimba
from simbaflow.simulate.sil import PR_BLOCK_SOURCES, pr_block_code

pytest.importorskip("aesim.simba")

from test_simba_projects import _merged, _net_of, nets_by_position  # noqa: E402  (needs aesim.simba)

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "simba_projects" / "ac_client_server.jsimba"


def _load_builder():
    spec = importlib.util.spec_from_file_location("simba_projects_build_ac", ROOT / "simba_projects" / "build_ac.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def builder():
    return _load_builder()


@pytest.fixture(scope="module")
def sheets(builder):
    return builder.build_sheets()


@pytest.fixture(scope="module")
def design():
    return jsimba.get_design(jsimba.load_project(PROJECT), "client_server")


@pytest.fixture(scope="module")
def nets(design):
    found, problems = nets_by_position(design["Circuit"])
    assert problems == []
    return found


def _params(design, name):
    return jsimba.device_parameters(jsimba.device_by_name(design, name))


def test_rebuild_is_byte_identical(builder, sheets, tmp_path):
    out = tmp_path / "rebuilt.jsimba"
    assert builder.main(["build_ac.py", str(out)]) == 0
    assert out.read_bytes() == PROJECT.read_bytes()
    assert builder.project_text(sheets) == PROJECT.read_text(encoding="utf-8")


def test_every_pin_on_the_net_it_should(sheets, nets):
    # Pin positions from aesim's Circuit.Deserialize: the nets SIMBA will see.
    assert set(nets) == _merged(sheets[0].nets)


def test_power_topology(nets):
    # Both boards' leg-1 outputs (after each leg's loss resistor), the load, the leg-1
    # capacitors (ceramics; electrolytics behind their resistance) and the probe are one node.
    assert _net_of(nets, "Rs1.N") == {"Rs1.N", "Rc1.N", "R_load.P", "C1_low.P", "R1_esr.P", "V1_low.P"}
    assert _net_of(nets, "Rs2.N") == {"Rs2.N", "Rc2.N", "R_load.N", "C2_low.P", "R2_esr.P", "V2_low.P"}
    for index in (1, 2):
        assert _net_of(nets, f"R{index}_esr.N") == {f"R{index}_esr.N", f"C{index}_el.P"}
    for tag in ("S", "C"):
        t = tag.lower()
        assert _net_of(nets, f"T{tag}1H.Source") == {f"T{tag}1H.Source", f"T{tag}1L.Drain", f"i{tag}1.P"}
        assert _net_of(nets, f"i{tag}1.N") == {f"i{tag}1.N", f"L{t}1.P"}
        assert _net_of(nets, f"T{tag}2H.Source") == {f"T{tag}2H.Source", f"T{tag}2L.Drain", f"L{t}2.P"}
        for leg in (1, 2):
            assert _net_of(nets, f"L{t}{leg}.N") == {f"L{t}{leg}.N", f"R{t}{leg}.P"}
        # Leg 1 at d (d > carrier), leg 2 at 1 - d (carrier > d).
        assert _net_of(nets, f"duty_{tag}.Out") == {f"duty_{tag}.Out", f"COMP{tag}1.In1", f"COMP{tag}2.In2"}
        assert _net_of(nets, f"TRI{tag}.Out") == {f"TRI{tag}.Out", f"COMP{tag}1.In2", f"COMP{tag}2.In1"}
        assert _net_of(nets, f"COMP{tag}1.Out") == {f"COMP{tag}1.Out", f"T{tag}1H.Gate", f"NOT{tag}1.In"}
    # The commands reach the modulators one PWM update later.
    assert _net_of(nets, "pr_server.outputs[0]") == {"pr_server.outputs[0]", "pwm_S.In"}
    assert _net_of(nets, "pwm_S.Out") == {"pwm_S.Out", "half_S.In"}
    assert _net_of(nets, "pr_client.outputs[0]") == {"pr_client.outputs[0]", "pwm_C.In"}
    assert _net_of(nets, "pwm_C.Out") == {"pwm_C.Out", "half_C.In"}
    assert _net_of(nets, "link_vref.Out") == {"link_vref.Out", "pwm_ff_C.In"}
    assert _net_of(nets, "pwm_ff_C.Out") == {"pwm_ff_C.Out", "ff_C.In"}


def test_values_follow_the_study(design):
    """Every value from design/ac_client_server.yaml's ac.plant, by its cited parts."""
    plant = yaml.safe_load((ROOT / "design" / "ac_client_server.yaml").read_text())["ac"]["plant"]
    spec_ac = yaml.safe_load((ROOT / "design" / "ac_client_server.yaml").read_text())["ac"]
    for name in ("Ls1", "Ls2", "Lc1", "Lc2"):
        assert _params(design, name)["Value"] == "33u"
    for name in ("Rs1", "Rs2", "Rc1", "Rc2"):  # inductor DCR + MOSFET on-resistance, one leg
        assert float(_params(design, name)["Value"]) == pytest.approx(plant["l_dcr_ohm"] + plant["rds_on_ohm"])
    for index in (1, 2):  # two boards' capacitors of one output node in parallel
        ceramic, electrolytic = _params(design, f"C{index}_low"), _params(design, f"C{index}_el")
        assert float(ceramic["Value"]) == pytest.approx(2 * (plant["c_leg_f"] - plant["c_electrolytic_f"]))
        assert float(electrolytic["Value"]) == pytest.approx(2 * plant["c_electrolytic_f"])
        assert ceramic["Vinit"] == electrolytic["Vinit"] == "20"
        assert float(_params(design, f"R{index}_esr")["Value"]) == pytest.approx(plant["esr_electrolytic_ohm"] / 2)
    for tag in ("S", "C"):
        # The tick sits current_sample_offset_s after the valley (the on-pulse's middle).
        tri = _params(design, f"TRI{tag}")
        shift_s = float(tri["PhaseShift"]) / 360.0 / 200e3
        assert tri["Frequency"] == "200k"
        assert shift_s == pytest.approx(plant["current_sample_offset_s"], rel=1e-9)
    for name in ("pwm_S", "pwm_C", "pwm_ff_C"):
        assert _params(design, name) == {"Num": "[1]", "Den": "[1 0]", "SamplingTime": "5e-06"}
        assert float(_params(design, name)["SamplingTime"]) == spec_ac["pwm_update_delay_s"]
    assert _params(design, "R_load")["Value"] == "30"
    assert {_params(design, f"DC{t}")["Voltage"] for t in ("S1", "S2", "C1", "C2")} == {"40"}
    assert (_params(design, "Vref")["Amplitude"], _params(design, "Vref")["Frequency"]) == ("12", "50")
    assert design["TransientAnalysis"]["EndTime"] == "0.2"


def test_carriers_keep_the_sampling_instant():
    """The project's 200 kHz carriers carry the PhaseShift that puts each tick at the ADC's instant."""
    spec = yaml.safe_load((ROOT / "design" / "ac_client_server.yaml").read_text())
    offset_s = spec["ac"]["plant"]["current_sample_offset_s"]
    for cfg in spec["simulate"]["designs"].values():
        assert not any(k.startswith("TRI") for k in cfg.get("fixed", {})), "the sweep simulates TWIST's carriers"
    design = jsimba.get_design(jsimba.load_project(PROJECT), "client_server")
    for tag in ("S", "C"):
        carrier = _params(design, f"TRI{tag}")
        f_hz = float(str(carrier["Frequency"]).replace("k", "e3"))
        assert f_hz == 200e3
        assert float(carrier["PhaseShift"]) / 360.0 / f_hz == pytest.approx(offset_s, rel=1e-3)


def test_pwm_update_lands_one_update_period_after_each_tick():
    """A command written at a tick (C Code output) reaches the modulator 5 us later."""
    from simbaflow.simulate.engines.base import Overrides
    from simbaflow.simulate.engines.select import select_engine

    signals = ["duty_S - Out", "pwm_S - Out"]
    run = select_engine("embedded")[0].run(PROJECT, "client_server", Overrides(), signals, 1.0e-3)
    assert run.ok, run.message
    t = np.asarray(run.time_s)
    changes = t[1:][np.diff(np.asarray(run.signals["duty_S - Out"])) != 0]
    # The first command (tick 0, zero error) changes nothing; each later one lands 5 us late.
    assert np.allclose(changes[:9], (np.arange(1, 10) * 100e-6 + 5e-6), atol=1e-12)


def test_link_is_one_control_period_late(design, nets):
    for name in ("link_iref", "link_vref", "link_w0"):
        device = jsimba.device_by_name(design, name)
        assert device["LibraryName"] == "Discrete Transfer Function"
        assert _params(design, name) == {"Num": "[1]", "Den": "[1 0]", "SamplingTime": "100u"}
    assert _net_of(nets, "link_iref.In") == {"k_gain.Out", "link_iref.In"}
    assert _net_of(nets, "iS1.Out") == {"iS1.Out", "k_gain.In"}
    assert _net_of(nets, "link_iref.Out") == {"link_iref.Out", "err_client.inputs[0]"}
    assert _net_of(nets, "link_w0.Out") == {"link_w0.Out", "pr_client.inputs[4]"}
    assert _net_of(nets, "link_vref.Out") == {"link_vref.Out", "pwm_ff_C.In"}
    assert _net_of(nets, "Vref.Out") == {"Vref.Out", "err_server.inputs[0]", "link_vref.In"}
    assert _net_of(nets, "ZCD1.Out") == {"ZCD1.Out", "pr_server.inputs[0]", "pr_client.inputs[0]"}


def test_c_code_blocks_are_the_firmware_source_byte_for_byte(design, nets):
    expected = b"".join((ROOT / "firmware" / relative).read_bytes() for relative in PR_BLOCK_SOURCES)
    assert pr_block_code().encode("utf-8") == expected
    for role in ("server", "client"):
        block = jsimba.device_by_name(design, f"pr_{role}")
        assert block["LibraryName"] == "C Code"
        assert block["Parameters"]["Code"].encode("utf-8") == expected
        assert (block["Parameters"]["NumberOfInputs"], block["Parameters"]["NumberOfOutputs"]) == ("7", "1")
        for j, source in ((2, f"kp_{role}.Out"), (3, f"kr_{role}.Out"), (5, f"phi_{role}.Out"), (6, f"umax_{role}.Out")):
            assert _net_of(nets, f"pr_{role}.inputs[{j}]") == {source, f"pr_{role}.inputs[{j}]"}


def test_gains_are_the_committed_selection(design):
    header = (ROOT / "firmware/include/ac_gains.h").read_text()
    values = {k: float(v) for k, v in re.findall(r"#define AC_GAINS_(\w+) \(?([-0-9.e]+)f\)?", header)}
    for role in ("server", "client"):
        for key in ("kp", "kr"):
            assert np.float32(float(_params(design, f"{key}_{role}")["Value"])) == np.float32(
                values[f"{role.upper()}_{key.upper()}"])
        # The header holds float32 values, as the firmware runs them.
        assert np.float32(float(_params(design, f"phi_{role}")["Value"])) == np.float32(
            values[f"{role.upper()}_PHI_PRIME_RAD"])
    assert float(_params(design, "k_gain")["Value"]) == values["K_GAIN"]


def test_devices_are_simba_library_items_the_embedded_engine_supports(design):
    import aesim.simba

    from simbaflow.simulate.engines.embedded.model import SUPPORTED

    metadata = next(Path(aesim.simba.__file__).parent.rglob("device_metadata.json"))
    library = {item["LibraryItemName"] for item in json.loads(metadata.read_text())}
    used = {d["LibraryName"] for d in jsimba.devices(design)}
    assert used <= library
    assert used <= set(SUPPORTED)


def test_embedded_engine_runs_the_design_and_the_link_delays():
    from simbaflow.simulate.engines.base import Overrides
    from simbaflow.simulate.engines.select import select_engine

    signals = ["Vref - Out", "link_vref - Out"]
    run = select_engine("embedded")[0].run(PROJECT, "client_server", Overrides(), signals, 1.5e-3)
    assert run.ok, run.message
    t = np.asarray(run.time_s)
    sent, received = (np.asarray(run.signals[s]) for s in signals)
    # Between ticks the received Vref holds the sample of the tick before last:
    # 12 sin(w0 (k-1) Ts) on (k Ts, (k+1) Ts).
    inside = (t > 2e-4) & (np.abs(t / 1e-4 - np.round(t / 1e-4)) > 0.05)
    k = np.floor(t[inside] / 1e-4 + 1e-9)
    expected = 12.0 * np.sin(2 * math.pi * 50 * (k - 1) * 1e-4)
    assert np.max(np.abs(received[inside] - expected)) < 1e-9
    assert np.max(np.abs(sent)) > 0.5


#: 20 kHz carriers (short runs), shifted to keep each tick 0.41 us before the on-pulse's middle.
CARRIERS_20K = {"TRIS": {"Frequency": "20k", "PhaseShift": "-2.952"},
                "TRIC": {"Frequency": "20k", "PhaseShift": "-2.952"}}


def test_firmware_pr_in_the_embedded_engine_meets_the_phase_requirement():
    # Software in the loop: both firmware PRs switch the two bridges, k_gain = 1 as
    # selected. At the ticks the analysis predicts a 1.8° lag (one link period); on
    # the waveforms the hold model predicts its own figure (ac_design, all physics).
    from simbaflow.design.coupled_inverters import evaluate_ac_candidate
    from simbaflow.select.sine_waveforms import client_server_metrics
    from simbaflow.simulate.engines.base import Overrides
    from simbaflow.simulate.engines.select import select_engine
    from simbaflow.core.spec import load_spec

    signals = ["v_load - Out", "Ls1 - Current", "Lc1 - Current", "Vref - Out"]
    run = select_engine("embedded")[0].run(PROJECT, "client_server", Overrides(parameters=CARRIERS_20K), signals, 0.15)
    assert run.ok, run.message
    s = {k: np.asarray(v) for k, v in run.signals.items()}
    m = client_server_metrics(np.asarray(run.time_s), s["v_load - Out"], s["Ls1 - Current"], s["Lc1 - Current"],
                              s["Vref - Out"], 50.0, k_gain=1.0, ts_s=1e-4)
    assert m["phase_error_abs_deg"] < 2.0
    assert m["phase_error_deg"] == pytest.approx(-1.8, abs=0.05)
    assert abs(m["client_tracking_error_pct"]) < 0.5
    # The voltage PR regulates its samples; at these 20 kHz carriers the ripple (8 V pp:
    # 30 A pp through the electrolytics' resistance) biases the waveform's fundamental.
    from simbaflow.select.sine_waveforms import at_ticks, fundamental, last_periods

    t = np.asarray(run.time_s)
    c_v, c_ref = (fundamental(*last_periods(*at_ticks(t, s[n], 1e-4), 50.0, 5), 50.0)
                  for n in ("v_load - Out", "Vref - Out"))
    assert abs(c_v / c_ref) == pytest.approx(1.0, abs=5e-3)
    cand = {"candidate_id": "c", "discretisation": "control_library_pr", "server_kp": 0.04, "server_kr": 500.0,
            "server_phi_prime_rad": 0.0, "client_kp": 0.3, "client_kr": 250.0, "client_phi_prime_rad": 0.0,
            "k_gain": 1.0}
    row = evaluate_ac_candidate(load_spec(ROOT / "design" / "ac_client_server.yaml"), cand)
    assert m["phase_error_waveform_deg"] == pytest.approx(row["phase_error_waveform_deg"], abs=0.4)


def test_sampled_currents_match_the_analysis_for_any_k_gain():
    # What the firmware controls are the currents sampled at each tick (the
    # carrier valley). On those, the PRs in the switched circuit realise the
    # analytic prediction exactly: client = k_gain x server, 1.8° late.
    from simbaflow.simulate.engines.base import Overrides
    from simbaflow.simulate.engines.select import select_engine

    overrides = Overrides(parameters={**CARRIERS_20K, "k_gain": {"Value": "0.5"}})
    run = select_engine("embedded")[0].run(PROJECT, "client_server", overrides, ["Ls1 - Current", "Lc1 - Current"], 0.15)
    assert run.ok, run.message
    t = np.asarray(run.time_s)
    ticks = np.arange(1100, 1500) * 1e-4  # two whole periods of 50 Hz, after the 28 ms settling
    rotation = np.exp(-2j * math.pi * 50 * ticks)
    i_s, i_c = (np.interp(ticks, t, np.asarray(run.signals[n])) for n in ("Ls1 - Current", "Lc1 - Current"))
    ratio = np.sum(i_c * rotation) / np.sum(i_s * rotation)
    assert abs(ratio) == pytest.approx(0.5, abs=1e-3)
    assert math.degrees(np.angle(ratio)) == pytest.approx(-1.8, abs=0.02)


def test_kgain_step_design_is_client_server_with_the_keys(sheets, design):
    import aesim.simba

    from simbaflow.simulate.engines.embedded.model import SUPPORTED

    step = jsimba.get_design(jsimba.load_project(PROJECT), "client_server_kgain_step")
    found, problems = nets_by_position(step["Circuit"])
    assert problems == []
    assert set(found) == _merged(sheets[1].nets)
    # k_gain x factor x i_server goes into the link; the factor is key_m + key_l.
    assert _net_of(found, "iS1.Out") == {"iS1.Out", "kgain_step.In1"}
    assert _net_of(found, "kgain_step.In2") == {"kgain_step.In2", "kgain_factor.Out"}
    assert _net_of(found, "k_gain.In") == {"k_gain.In", "kgain_step.Out"}
    assert _net_of(found, "link_iref.In") == {"k_gain.Out", "link_iref.In"}
    keys = ("InitialValue", "FinalValue", "StepTime")
    assert [_params(step, "key_m")[k] for k in keys] == ["1", "0.5", "0.1"]
    assert [_params(step, "key_l")[k] for k in keys] == ["0", "1 - 0.5", "0.16"]
    assert step["TransientAnalysis"]["EndTime"] == "0.3"
    # Every device of client_server is there with the same parameters.
    names = jsimba.device_names(design)
    assert set(names) < set(jsimba.device_names(step))
    for name in names:
        assert _params(step, name) == _params(design, name)
    metadata = next(Path(aesim.simba.__file__).parent.rglob("device_metadata.json"))
    library = {item["LibraryItemName"] for item in json.loads(metadata.read_text())}
    used = {d["LibraryName"] for d in jsimba.devices(step)}
    assert used <= library and used <= set(SUPPORTED)
