"""CLI commands for bench records: ``records import`` and ``records compare``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from simbaflow.core.atomic import write_text
from simbaflow.core.errors import SimbaflowError
from simbaflow.core.paths import results_dir
from simbaflow.kinds import kind_of

def load_study_spec(spec_or_study: str) -> dict:
    """The validated spec of a study, from its path or its name."""
    from simbaflow.core.spec import find_spec, load_spec

    return load_spec(find_spec(spec_or_study))


@click.group(name="records")
def records_group() -> None:
    """Bench records: import ScopeMimicry captures, compare them with the simulation."""


@records_group.command(name="import")
@click.argument("capture", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Record Parquet file [default with --study: results/<study>/bench/<capture>.parquet].")
@click.option("--study", "study", default=None,
              help="Study spec or name: gives the control period and attaches the record.")
@click.option("--ts-s", "ts_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Sampling period in seconds (overrides the study's control period; a record "
                   "with its own time column must agree with it).")
@click.option("--record", "record_number", type=click.IntRange(min=1), default=None,
              help="Import only the N-th record of the capture.")
def import_command(capture: Path, out: Path | None, study: str | None, ts_s: float | None,
                   record_number: int | None) -> None:
    """Import the ScopeMimicry records of CAPTURE (console capture or decoded record file).

    One record goes to OUT; several go to OUT-<n>.parquet, n being the record's
    position in the capture. Records that cannot be read are reported and skipped.
    A record dumped with its time column (ScopeMimicry's dump_datas() since
    2025-11) is timed by it; the others by --ts-s, else the study's control period.
    """
    from simbaflow.bench.records import RecordError, read_capture, write_record

    study_name = None
    spec_ts_s = None
    if study is not None:
        spec = load_study_spec(study)
        study_name = spec["study"]
        if ts_s is None:
            spec_ts_s = kind_of(spec).control_period_s(spec)
    if out is None:
        if study_name is None:
            raise SimbaflowError(f"{capture}: give --out, or --study to import into its results")
        out = results_dir(study_name) / "bench" / f"{capture.stem}.parquet"

    result = read_capture(capture)
    if not result.records and len(result.problems) == 1:
        raise result.problems[0]
    for problem in result.problems:
        click.echo(f"simbaflow: warning: {problem}", err=True)
    records = result.records
    if record_number is not None:
        records = [r for r in records if r.record_number == record_number]
        if not records:
            raise RecordError(f"{capture}: expected a readable record number {record_number}, found none")
    if not records:
        raise RecordError(f"{capture}: no record could be imported (see the warnings above)")
    for record in records:
        _check_period(capture, record, ts_s, spec_ts_s)
    several = record_number is None and result.n_begun > 1
    for record in records:
        target = out.with_name(f"{out.stem}-{record.record_number}{out.suffix}") if several else out
        meta = write_record(target, record, ts_s or spec_ts_s, study=study_name)
        quirks = ", ".join(record.quirks) or "none"
        timing = "time column" if record.time_s is not None else f"ts_s={meta['ts_s']:g}"
        click.echo(
            f"{target}: record {record.record_number} (lines {record.first_line}-{record.last_line}), "
            f"{record.values.shape[0]} samples x {len(record.names)} channels, {record.layout} layout, "
            f"{timing}, quirks corrected: {quirks}"
        )
        for note in record.notes:
            click.echo(f"  note: {note}")


def _check_period(capture: Path, record, ts_s: float | None, spec_ts_s: float | None) -> None:
    """Refuse a record that cannot be timed, or whose time column contradicts --ts-s."""
    where = f"{capture}, record {record.record_number} (line {record.first_line})"
    if record.time_s is None:
        if ts_s is None and spec_ts_s is None:
            raise SimbaflowError(f"{where}: has no time column; give --ts-s or --study so it can be timed")
        return
    own = record.ts_s
    given, origin = (ts_s, "--ts-s") if ts_s is not None else (spec_ts_s, "the study's control period")
    # The column holds float32 words: agreement to 1e-5 is all they can show.
    if own is not None and given is not None and abs(own - given) > 1e-5 * given:
        message = f"{where}: its time column steps by {own:.6g} s, {origin} is {given:.6g} s"
        if ts_s is not None:
            raise SimbaflowError(message + " (drop --ts-s: the time column times the record)")
        click.echo(f"simbaflow: warning: {message}; the time column is used (a decimated scope?)", err=True)


def _parse_signal_map(items: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for item in items:
        rec, sep, sim = item.partition("=")
        if not sep or not rec.strip() or not sim.strip():
            raise SimbaflowError(f"--signal-map {item!r}: expected RECORD_CHANNEL=RUN_SIGNAL")
        mapping[rec.strip()] = sim.strip()
    return mapping


def resolve_run(study: str, candidate: str | None, design: str | None) -> tuple[Path, str]:
    """Run file of a study's candidate (the promoted one by default).

    Returns
    -------
    path : Path
        ``results/<study>/runs/<candidate>/<design>.parquet``.
    candidate : str
    """
    root = results_dir(study)
    if candidate is None:
        selection = root / "selection.json"
        try:
            candidate = json.loads(selection.read_text())["candidate_id"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SimbaflowError(
                f"{selection}: expected the study's selection with a 'candidate_id' "
                "(run the sweep, or pass --candidate or --run)"
            ) from None
    run_dir = root / "runs" / str(candidate)
    if design is not None:
        path = run_dir / f"{design}.parquet"
        if not path.is_file():
            raise SimbaflowError(f"{path}: expected the run of design {design!r}, found no such file")
        return path, str(candidate)
    runs = sorted(run_dir.glob("*.parquet"))
    if len(runs) != 1:
        found = ", ".join(p.stem for p in runs) or "none"
        raise SimbaflowError(
            f"{run_dir}: expected exactly one run file, found {found} (pass --design or --run)"
        )
    return runs[0], str(candidate)


@records_group.command(name="compare")
@click.argument("record_path", metavar="RECORD", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--study", default=None, help="Study spec or name [default: the one the record is attached to].")
@click.option("--candidate", default=None, help="Candidate id [default: the promoted one].")
@click.option("--design", default=None, help="Design of the candidate's run, when it has several.")
@click.option("--run", "run_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run Parquet file to compare with, instead of the candidate's.")
@click.option("--signal-map", "signal_map", multiple=True, metavar="REC=SIM",
              help="Record channel = run signal (repeat). [default: channels named alike]")
@click.option("--align", type=click.Choice(["xcorr", "trigger"]), default="xcorr", show_default=True)
@click.option("--phase", "phase", default=None, metavar="A:B",
              help="Two record channels (server:client current) whose phase error to report.")
def compare_command(record_path: Path, study: str | None, candidate: str | None, design: str | None,
                    run_path: Path | None, signal_map: tuple[str, ...], align: str, phase: str | None) -> None:
    """Compare RECORD with the simulated run; write results/<study>/bench/<record>_compare.json."""
    import pandas as pd

    from simbaflow.bench.compare import CompareError, compare
    from simbaflow.bench.records import read_record

    frame, meta = read_record(record_path)
    study = study or meta.get("study")
    if study is None:
        raise SimbaflowError(f"{record_path}: the record is attached to no study; pass --study")
    study_name = load_study_spec(study)["study"] if Path(study).is_file() else study
    if run_path is None:
        run_path, candidate = resolve_run(study_name, candidate, design)
    try:
        run = pd.read_parquet(run_path)
    except (OSError, ValueError) as exc:
        raise SimbaflowError(f"{run_path}: expected a run Parquet file ({exc})") from None
    if "time_s" not in run.columns:
        raise SimbaflowError(f"{run_path}: expected a 'time_s' column in the run")
    mapping = _parse_signal_map(signal_map) or {
        c: c for c in frame.columns if c != "time_s" and c in run.columns
    }
    if not mapping:
        raise CompareError(
            f"{record_path}: no record channel is named like a signal of {run_path}; "
            "pass --signal-map RECORD_CHANNEL=RUN_SIGNAL"
        )
    pair = None
    if phase is not None:
        a, sep, b = phase.partition(":")
        if not sep or not a or not b:
            raise SimbaflowError(f"--phase {phase!r}: expected two record channels as A:B")
        pair = (a, b)
    try:
        result = compare(frame, run, mapping, align=align, phase_pair=pair)
    except CompareError as exc:
        raise CompareError(f"{record_path} vs {run_path}: {exc}") from None
    result = {
        "study": study_name,
        "candidate_id": candidate,
        "record": str(record_path),
        "run": str(run_path),
        "record_quirks": meta.get("quirks", []),
        **result,
    }
    out = results_dir(study_name) / "bench" / f"{record_path.stem}_compare.json"
    write_text(out, json.dumps(_finite_or_none(result), indent=1, allow_nan=False) + "\n")
    click.echo(f"{out}: offset {result['offset_s']:.6g} s ({align})")
    for s in result["signals"]:
        click.echo(
            f"  {s['record']} vs {s['simulated_signal']}: rms error {s['rms_error']:.4g}, "
            f"overshoot {_pct(s['measured']['overshoot_pct'])} measured / "
            f"{_pct(s['simulated']['overshoot_pct'])} simulated, settling "
            f"{_secs(s['measured']['settling_time_s'])} / {_secs(s['simulated']['settling_time_s'])}"
        )
    if "phase" in result:
        p = result["phase"]
        click.echo(
            f"  phase {p['channels'][1]} - {p['channels'][0]}: {p['measured_deg']:.2f} deg measured, "
            f"{p['simulated_deg']:.2f} deg simulated, error {p['error_deg']:.2f} deg"
        )


def _finite_or_none(value):
    """JSON has no NaN: a figure that could not be computed becomes null."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g} s"


COMMANDS = [records_group]
