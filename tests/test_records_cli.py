"""`simbaflow records import/compare` end to end, on captures synthesised from a known run."""

from __future__ import annotations

import json
import shutil
import math

import numpy as np
import pandas as pd
import pytest

from simbaflow.cli import main
from simbaflow.bench.records import FIRST_SLOT_UNWRITTEN, REPEATED_LAST_WORD, read_record
from scope_dumps import Scope2024
from test_records import acquire, dump

ZETA, WN_RAD_S, AMP_A = 0.5, 2500.0, 5.0
TS_S = 1.0 / 16000
LENGTH = 512


def second_order_step(t_s):
    """Unit-gain second-order step response, zero before t = 0."""
    t_s = np.asarray(t_s, dtype=float)
    wd = WN_RAD_S * math.sqrt(1 - ZETA**2)
    y = 1 - np.exp(-ZETA * WN_RAD_S * t_s) / math.sqrt(1 - ZETA**2) * np.sin(
        wd * t_s + math.acos(ZETA)
    )
    return AMP_A * np.where(t_s >= 0, y, 0.0)


@pytest.fixture()
def study(tmp_path, monkeypatch):
    """A DC study with a promoted candidate whose run is a second-order step."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "design").mkdir()
    (tmp_path / "design" / "dc_demo.yaml").write_text(
        "study: dc_demo\nplant: {model: voltage_compensated_inductor, l_h: 6.0e-3, r_ohm: 30, e_v: 600}\n"
        "sweep:\n  xi: [0.5]\n  wn_rad_s: [5000]\n  fs_hz: [16000]\n"
    )
    run_dir = tmp_path / "results" / "dc_demo" / "runs" / "xi0p5-fs16000"
    run_dir.mkdir(parents=True)
    # A variable-step solver's grid: fine during the transient, coarser later.
    time_s = np.unique(np.concatenate([np.linspace(0, 4e-3, 4001), np.linspace(4e-3, 20e-3, 801)]))
    pd.DataFrame({"time_s": time_s, "L1 - Current": second_order_step(time_s)}).to_parquet(
        run_dir / "discrete.parquet"
    )
    (tmp_path / "results" / "dc_demo" / "selection.json").write_text(
        json.dumps({"candidate_id": "xi0p5-fs16000"})
    )
    return tmp_path


def board_capture(offset_s, sigma_a, seed, newline="\r\n"):
    """What the board dumps: the step seen `offset_s` late, noisy, through a wrapped ring."""
    rng = np.random.default_rng(seed)
    n = np.arange(LENGTH)
    wanted = second_order_step(n * TS_S - offset_s) + rng.normal(0, sigma_a, LENGTH)
    duty = 0.5 + wanted / 40.0
    samples = np.column_stack([wanted, duty])
    junk = np.column_stack([rng.normal(0, sigma_a, 100), np.full(100, 0.5)])
    memory, final = acquire(np.vstack([junk, samples]), LENGTH)  # wraps: 612 into 512 slots
    return "power mode\r\nidle mode\r\n" + dump(("I1_low", "duty"), memory, final, newline=newline)


def test_import_then_compare_recovers_offset_and_noise_level(study, capsys):
    offset_s, sigma_a = 1.2345e-3, 0.05
    (study / "capture.txt").write_text(board_capture(offset_s, sigma_a, seed=3), newline="")
    main(["records", "import", "capture.txt", "--study", "dc_demo"])
    record_path = study / "results" / "dc_demo" / "bench" / "capture.parquet"
    frame, meta = read_record(record_path)
    assert meta["ts_s"] == TS_S
    assert meta["study"] == "dc_demo"
    assert meta["quirks"] == [REPEATED_LAST_WORD]
    assert len(frame) == LENGTH
    assert "quirks corrected: repeated_last_word" in capsys.readouterr().out

    main(["records", "compare", str(record_path), "--signal-map", "I1_low=L1 - Current"])
    out = json.loads((study / "results" / "dc_demo" / "bench" / "capture_compare.json").read_text())
    assert out["candidate_id"] == "xi0p5-fs16000"
    assert out["run"].endswith("runs/xi0p5-fs16000/discrete.parquet")
    assert abs(out["offset_s"] - offset_s) < 0.25 * TS_S
    (sig,) = out["signals"]
    assert 0.85 * sigma_a < sig["rms_error"] < 1.15 * sigma_a
    assert abs(sig["mean_error"]) < 4 * sigma_a / math.sqrt(sig["n_samples"])
    # The simulated step, sampled as the board samples, overshoots as theory says.
    overshoot_theory = 100 * math.exp(-math.pi * ZETA / math.sqrt(1 - ZETA**2))
    assert abs(sig["simulated"]["overshoot_pct"] - overshoot_theory) < 0.5
    assert abs(sig["measured"]["overshoot_pct"] - sig["simulated"]["overshoot_pct"]) < 2.0
    # Noise at the 2 % band edge moves settling by a few samples (up to 7 over 40 seeds).
    settling_s = sig["simulated"]["settling_time_s"]
    assert 2.5e-3 < settling_s < 4e-3  # 4 / (ζ ωn) = 3.2 ms
    assert abs(sig["measured"]["settling_time_s"] - settling_s) <= 0.2 * settling_s
    assert abs(sig["measured"]["final"] - AMP_A) < 3 * sigma_a


def test_trigger_alignment_agrees(study):
    offset_s, sigma_a = 4.0e-3, 0.02
    (study / "cap.txt").write_text(board_capture(offset_s, sigma_a, seed=5, newline="\n"))
    main(["records", "import", "cap.txt", "--out", "rec.parquet", "--ts-s", str(TS_S)])
    main(["records", "compare", "rec.parquet", "--study", "design/dc_demo.yaml",
          "--signal-map", "I1_low=L1 - Current", "--align", "trigger"])
    out = json.loads((study / "results" / "dc_demo" / "bench" / "rec_compare.json").read_text())
    assert out["align"] == "trigger"
    assert abs(out["offset_s"] - offset_s) < 0.5 * TS_S
    assert out["signals"][0]["rms_error"] < 2 * sigma_a


def test_ac_phase_error_between_server_and_client(tmp_path, monkeypatch, repo):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "design").mkdir()
    shutil.copy(repo / "design" / "ac_client_server.yaml", tmp_path / "design" / "ac.yaml")
    f_hz, ts_s = 50.0, 1.0e-4
    t_run = np.arange(0, 0.2, 1e-5)
    run = pd.DataFrame({
        "time_s": t_run,
        "I_server": 2.0 * np.cos(2 * np.pi * f_hz * t_run),
        "I_client": 1.9 * np.cos(2 * np.pi * f_hz * t_run - np.radians(10.0)),
    })
    run.to_parquet(tmp_path / "run.parquet")
    rng = np.random.default_rng(7)
    t = np.arange(1024) * ts_s + 0.0123  # the board started recording at some phase
    server = 2.0 * np.cos(2 * np.pi * f_hz * t) + rng.normal(0, 0.02, t.size)
    client = 1.8 * np.cos(2 * np.pi * f_hz * t - np.radians(13.0)) + rng.normal(0, 0.02, t.size)
    # OwnTech's library (6f49b72): 1023 samples into slots 1..1023, slot 0 never written.
    scope = Scope2024(1024, 2)
    for row in np.column_stack([server, client])[1:]:
        scope.acquire(row)
    (tmp_path / "ac.txt").write_text(scope.dump_datas(("I1", "I2")), newline="")
    main(["records", "import", "ac.txt", "--study", "ac", "--out", "ac.parquet"])
    _, meta = read_record("ac.parquet")
    assert meta["ts_s"] == ts_s
    assert meta["quirks"] == [FIRST_SLOT_UNWRITTEN, REPEATED_LAST_WORD]
    main(["records", "compare", "ac.parquet", "--study", "ac_client_server", "--run", "run.parquet",
          "--signal-map", "I1=I_server", "--signal-map", "I2=I_client", "--phase", "I1:I2"])
    out = json.loads((tmp_path / "results/ac_client_server/bench/ac_compare.json").read_text())
    phase = out["phase"]
    assert abs(phase["f_hz"] - f_hz) < 0.5
    assert abs(phase["measured_deg"] - (-13.0)) < 0.3
    assert abs(phase["simulated_deg"] - (-10.0)) < 0.05
    assert abs(phase["error_deg"] - (-3.0)) < 0.3
    # A sinusoid never settles: no step figures rather than meaningless ones.
    assert out["signals"][0]["simulated"]["settling_time_s"] is None


def test_several_records_and_a_bad_one(study, capsys):
    good = board_capture(1e-3, 0.01, seed=1)
    bad = good.replace("begin record\r\n", "").replace("3f", "zz", 1)  # no begin: console noise
    broken = good.replace("end record", "")  # truncated by the next begin
    text = good + bad + broken + good
    (study / "multi.txt").write_text(text, newline="")
    main(["records", "import", "multi.txt", "--out", "m.parquet", "--ts-s", "6.25e-5"])
    captured = capsys.readouterr()
    assert sorted(p.name for p in study.glob("m-*.parquet")) == ["m-1.parquet", "m-3.parquet"]
    assert "simbaflow: warning: multi.txt, line" in captured.err
    assert "expected 'end record' for the record begun at line" in captured.err
    a, _ = read_record("m-1.parquet")
    b, meta = read_record("m-3.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert meta["record_number"] == 3
    main(["records", "import", "multi.txt", "--out", "one.parquet", "--ts-s", "6.25e-5", "--record", "3"])
    assert (study / "one.parquet").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["records", "import", "empty.txt", "--out", "x.parquet", "--ts-s", "1e-4"],
         "simbaflow: empty.txt, line 1: expected 'begin record' (console capture)"),
        (["records", "import", "plain.txt", "--out", "x.parquet"],
         "simbaflow: plain.txt, record 1 (line 3): has no time column; give --ts-s or --study"),
        (["records", "import", "empty.txt", "--study", "nope"],
         "simbaflow: nope: expected a study spec file or a study name"),
        (["records", "import", "empty.txt", "--study", "design/bad.yaml"],
         "simbaflow: design/bad.yaml: sweep.fs_hz[0]: 0 must be > 0"),
        (["records", "compare", "missing.parquet", "--study", "dc_demo"],
         "simbaflow: missing.parquet: expected a record Parquet file"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(study, capsys, args, message):
    (study / "empty.txt").write_text("hello\n")
    (study / "plain.txt").write_text(board_capture(1e-3, 0.01, seed=4))
    (study / "design" / "bad.yaml").write_text(
        "study: bad\nplant: {model: voltage_compensated_inductor, l_h: 6.0e-3, r_ohm: 30, e_v: 600}\n"
        "sweep:\n  xi: [0.5]\n  wn_rad_s: [5000]\n  fs_hz: [0]\n")
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert "Traceback" not in err


def test_compare_without_a_matching_channel_says_how(study, capsys):
    (study / "cap.txt").write_text(board_capture(1e-3, 0.01, seed=2))
    main(["records", "import", "cap.txt", "--study", "dc_demo"])
    with pytest.raises(SystemExit):
        main(["records", "compare", "results/dc_demo/bench/cap.parquet"])
    err = capsys.readouterr().err
    assert "pass --signal-map RECORD_CHANNEL=RUN_SIGNAL" in err


@pytest.mark.parametrize(("spec", "period_s"), [
    ("dc_current_loop.yaml", 1 / 16000),   # seed 002: the current loop sampled at 16 kHz
    ("ac_client_server.yaml", 1.0e-4),     # seeds 000/001: the TWIST control task every 100 µs
    ("lcl_filter.yaml", 500e-9),           # seed 003: the FPGA model stepped every 500 ns
])
def test_records_are_timed_with_the_study_kinds_control_period(repo, spec, period_s):
    from simbaflow.cli.records import load_study_spec
    from simbaflow.kinds import kind_of

    loaded = load_study_spec(str(repo / "design" / spec))
    assert kind_of(loaded).control_period_s(loaded) == pytest.approx(period_s, rel=1e-12)
