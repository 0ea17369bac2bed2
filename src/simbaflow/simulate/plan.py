"""Plan the simulate stage: every distinct (design, overrides) of a study as one run, in batches.

Candidates that give a design the same parameter values share one run (the
continuous design depends on Kp and Ki only, not on the discretisation). A run
is stored as ``runs/<run_id>/<design>.parquet`` plus ``<design>.json``, where
``run_id`` is the first candidate using it. The plan is written once, after the
analytic stage, to ``results/<study>/plan.json``: the batch jobs and the gather
step read it instead of evaluating the sweep again.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from simbaflow.core import atomic
from simbaflow.core.errors import SpecError


@dataclass(frozen=True)
class PlannedRun:
    """One transient job: a design with the overrides one or more candidates give it."""

    run_id: str
    design: str
    overrides: dict[str, dict[str, float]]
    candidates: tuple[str, ...]
    #: The plant corner simulated (``c0``: nominal); a corner run's id ends in ``--<corner>``.
    corner: str = "c0"


@dataclass(frozen=True)
class Plan:
    """The simulate stage of a study: its project, per-design settings, runs and their batches."""

    project: str
    designs: dict[str, dict[str, Any]]
    batches: dict[str, list[PlannedRun]]
    feasible: list[str] | None = None

    @property
    def runs(self) -> list[PlannedRun]:
        return [run for runs in self.batches.values() for run in runs]

    def write(self, path: str | Path) -> None:
        data = {"project": self.project, "designs": self.designs, "feasible": self.feasible,
                "batches": {b: [asdict(r) for r in runs] for b, runs in self.batches.items()}}
        atomic.write_text(path, json.dumps(data, indent=1))

    @classmethod
    def read(cls, path: str | Path) -> "Plan":
        data = json.loads(Path(path).read_text())
        batches = {b: [PlannedRun(r["run_id"], r["design"], r["overrides"], tuple(r["candidates"]),
                                  r.get("corner", "c0")) for r in runs]
                   for b, runs in data["batches"].items()}
        return cls(data["project"], data["designs"], batches, data.get("feasible"))


def simulate_settings(spec: dict, candidate_fields: Iterable[str] = (), filter_fields: Iterable[str] = (),
                      design_signals: Mapping[str, tuple[str, ...]] | None = None) -> dict:
    """The spec's ``simulate`` section, checked against what the study kind offers.

    Parameters
    ----------
    candidate_fields
        Candidate fields a design's ``set`` mapping may name.
    filter_fields
        Further fields a design's ``where`` filter may name.
    design_signals
        For each design ``kind`` the study supports, the keys naming the signals its measure needs.
    """
    sim = spec.get("simulate")
    if not sim:
        return {}
    source = spec.get("_path", "<spec>")
    candidate_fields, filter_fields = tuple(candidate_fields), tuple(filter_fields)
    design_signals = design_signals or {}
    if not Path(sim["project"]).is_file():
        raise SpecError(f"{source}: simulate.project: {sim['project']} is not a file (paths are relative to the working directory)")
    for design, cfg in sim["designs"].items():
        for field in cfg.get("where", {}):
            if field not in candidate_fields + filter_fields:
                raise SpecError(
                    f"{source}: simulate.designs.{design}.where.{field}: unknown candidate field; "
                    f"expected one of {', '.join(candidate_fields + filter_fields)}"
                )
        delays = set(spec.get("sweep", {}).get("delay_samples", [0]))
        if "delay_samples" in cfg.get("set", {}).values() and delays - {0, 1}:
            allowed = set(cfg.get("where", {}).get("delay_samples", delays))
            if allowed - {0, 1}:
                raise SpecError(
                    f"{source}: simulate.designs.{design}: the C Code block models a delay of 0 or 1 sample; "
                    f"sweep.delay_samples has {sorted(delays - {0, 1})} (add where: {{delay_samples: [0, 1]}})"
                )
        kind = cfg.get("kind", "current")
        if kind not in design_signals:
            raise SpecError(f"{source}: simulate.designs.{design}.kind: {kind!r} is not measured by this kind of "
                            f"study; expected one of {', '.join(design_signals)}")
        for key in design_signals[kind]:
            if key not in cfg:
                raise SpecError(f"{source}: simulate.designs.{design}.{key}: is required for kind {kind}")
        for key in design_signals[kind] + ("duty",):
            if key in cfg and cfg[key] not in cfg["signals"]:
                raise SpecError(f"{source}: simulate.designs.{design}.{key}: {cfg[key]!r} must be one of its signals")
        for target, field in cfg.get("set", {}).items():
            if target.count(".") < 1 or not all(target.split(".", 1)):
                raise SpecError(f"{source}: simulate.designs.{design}.set.{target}: expected DEVICE.PARAMETER")
            if field not in candidate_fields:
                raise SpecError(
                    f"{source}: simulate.designs.{design}.set.{target}: unknown candidate field {field!r}; "
                    f"expected one of {', '.join(candidate_fields)}"
                )
    return sim


def check_project(sim: dict, source: str) -> None:
    """Every design, device, parameter and signal the ``simulate`` section names exists in its project.

    Raises
    ------
    SpecError
        Naming the spec file and key, with the valid names.
    """
    from simbaflow.simulate.engines.base import Overrides
    from simbaflow.simulate.jsimba import apply_overrides, get_design, load_project, resolve_signals

    try:
        project = load_project(sim["project"])
    except SpecError as exc:
        raise SpecError(f"{source}: simulate.project: {exc}") from None
    for name, cfg in sim["designs"].items():
        key = f"simulate.designs.{name}"
        try:
            design = get_design(project, name, sim["project"])
            targets = {**cfg.get("fixed", {}), **dict.fromkeys(cfg.get("set", {}), 1.0)}
            parameters: dict[str, dict[str, Any]] = {}
            for target, value in targets.items():
                device, parameter = target.split(".", 1)
                parameters.setdefault(device, {})[parameter] = value
            apply_overrides(design, Overrides(parameters=parameters))
            resolve_signals(design, list(cfg["signals"]))
        except SpecError as exc:
            raise SpecError(f"{source}: {key}: {exc}") from None


def plant_map_targets(target: str | list) -> list[tuple[str, str, bool]]:
    """``(device, parameter, reciprocal)`` of a plant-map entry: ``DEV.PARAM``, ``1/DEV.PARAM`` or a list of them.

    A ``1/`` target receives the reciprocal of the plant value (a gain that divides
    by it, such as the output-voltage compensation Vs/E).
    """
    out = []
    for item in target if isinstance(target, list) else [target]:
        reciprocal = item.replace(" ", "").startswith("1/")
        device, _, parameter = item.replace(" ", "")[2 if reciprocal else 0:].partition(".")
        out.append((device, parameter, reciprocal))
    return out


def design_plant_map(sim: dict, design: str) -> dict:
    """The plant map of one design (its own ``plant_map``, else ``simulate.plant_map``)."""
    cfg = sim["designs"][design]
    return cfg.get("plant_map", sim.get("plant_map", {}))


def check_plant_map(sim: dict, varied: Iterable[str], plant_names: Iterable[str], source: str) -> None:
    """Every varied plant parameter mapped to an existing device parameter of every design.

    Checked against the project as ``simbaflow simulate --set`` checks its
    overrides: an unknown device or parameter is named with the valid ones.

    Raises
    ------
    SpecError
        A plant-map key that is not a plant parameter, a target that the design
        does not have, or a varied parameter a design does not map (unless
        ``simulate.corners: none``).
    """
    from simbaflow.simulate import jsimba

    varied, plant_names = list(varied), list(plant_names)
    if not varied or sim.get("corners", "all") == "none":
        return
    project = jsimba.load_project(sim["project"])
    for design in sim["designs"]:
        pmap = design_plant_map(sim, design)
        key = f"simulate.designs.{design}.plant_map" if "plant_map" in sim["designs"][design] else "simulate.plant_map"
        for name, target in pmap.items():
            if name not in plant_names:
                raise SpecError(f"{source}: {key}.{name}: not a plant parameter; expected one of {', '.join(plant_names)}")
            for device, parameter, _ in plant_map_targets(target):
                if not device or not parameter:
                    raise SpecError(f"{source}: {key}.{name}: {target!r}: expected DEVICE.PARAMETER or 1/DEVICE.PARAMETER")
                try:
                    jsimba.apply_overrides(jsimba.get_design(project, design, sim["project"]),
                                           jsimba.Overrides(parameters={device: {parameter: 1.0}}))
                except SpecError as exc:
                    raise SpecError(f"{source}: {key}.{name}: {exc}") from None
        missing = [v for v in varied if v not in pmap]
        if missing:
            raise SpecError(f"{source}: {key}: does not map the varied plant parameter(s) {', '.join(missing)} of "
                            f"design {design}; map them to device parameters or set simulate.corners: none")


def runs_design(cfg: dict, candidate: dict) -> bool:
    """Whether a design's ``where`` filter lets ``candidate`` run it."""
    return all(candidate.get(field) in allowed for field, allowed in cfg.get("where", {}).items())


def plan_runs(sim: dict, values: list[dict[str, Any]], feasible: set[str] | None = None,
              corners: list[tuple[str, dict[str, float]]] | None = None) -> list[PlannedRun]:
    """Every distinct (design, corner, overrides), in sweep order, nominal runs first.

    Parameters
    ----------
    sim
        The checked ``simulate`` section (:func:`simulate_settings`).
    values
        Each candidate's fields (its analytic row), in sweep order.
    feasible
        When given, only these candidates are simulated.
    corners
        ``(corner id, {plant parameter: value})`` of the plant corners other than
        the nominal one; each design runs them too, through its plant map.
    """
    runs: list[PlannedRun] = []
    for design, cfg in sim["designs"].items():
        pmap = design_plant_map(sim, design)
        design_corners = [("c0", {})] + [c for c in (corners or []) if pmap]
        for corner, plant in design_corners:
            groups: dict[str, tuple[str, dict, list[str]]] = {}
            for v in values:
                if not runs_design(cfg, v) or (feasible is not None and v["candidate_id"] not in feasible):
                    continue
                overrides: dict[str, dict[str, float]] = {}
                for target, value in cfg.get("fixed", {}).items():
                    device, parameter = target.split(".", 1)
                    overrides.setdefault(device, {})[parameter] = value
                for target, field in cfg.get("set", {}).items():
                    device, parameter = target.split(".", 1)
                    overrides.setdefault(device, {})[parameter] = float(v[field])
                for name, target in pmap.items() if corner != "c0" else ():
                    for device, parameter, reciprocal in plant_map_targets(target):
                        value = float(plant[name])
                        overrides.setdefault(device, {})[parameter] = 1.0 / value if reciprocal else value
                key = json.dumps(overrides, sort_keys=True)
                groups.setdefault(key, (v["candidate_id"], overrides, []))[2].append(v["candidate_id"])
            suffix = "" if corner == "c0" else f"--{corner}"
            runs += [PlannedRun(rid + suffix, design, ov, tuple(ids), corner) for rid, ov, ids in groups.values()]
    return runs


def batch_runs(runs: list[PlannedRun], batch_size: int) -> dict[str, list[PlannedRun]]:
    """Runs of the same design, in batches of at most ``batch_size`` named ``<design>-bNNN``."""
    batches: dict[str, list[PlannedRun]] = {}
    by_design: dict[str, list[PlannedRun]] = {}
    for run in runs:
        by_design.setdefault(run.design, []).append(run)
    for design, items in by_design.items():
        for i in range(0, len(items), batch_size):
            batches[f"{design}-b{i // batch_size:03d}"] = items[i : i + batch_size]
    return batches


def make_plan(sim: dict, values: list[dict[str, Any]], feasible: set[str] | None = None,
              corners: list[tuple[str, dict[str, float]]] | None = None) -> Plan:
    """The study's :class:`Plan` (runs batched by ``simulate.batch_size``); ``corners`` as :func:`plan_runs`."""
    designs = {}
    for name, cfg in sim["designs"].items():
        designs[name] = {"signals": list(cfg["signals"]),
                         "end_time_s": cfg.get("end_time_s", sim.get("end_time_s")),
                         "timeout_s": cfg.get("timeout_s", sim.get("timeout_s"))}
    if sim.get("corners", "all") == "none":
        corners = None
    batches = batch_runs(plan_runs(sim, values, feasible, corners), int(sim.get("batch_size", 8)))
    return Plan(str(sim["project"]), designs, batches, sorted(feasible) if feasible is not None else None)


#: Seconds a batch job needs beyond its runs: Snakemake and Python start-up, C Code compilation.
BATCH_STARTUP_S = 45
#: A run's time limit when neither its design nor ``simulate`` sets one (the schema's default).
DEFAULT_TIMEOUT_S = 300


def batch_runtime_min(plan: Plan, batch: str) -> int:
    """Wall-time request of one batch job, in whole minutes (SLURM's unit).

    Every run of the batch at its own time limit (``timeout_s`` of its design,
    else of ``simulate``, else :data:`DEFAULT_TIMEOUT_S`), plus
    :data:`BATCH_STARTUP_S`. A run past its limit is stopped and recorded by the
    batch itself; the scheduler only kills a batch whose run cannot be
    interrupted (a hang in native code).

    Raises
    ------
    SpecError
        When ``batch`` is not one of the plan's.
    """
    if batch not in plan.batches:
        raise SpecError(f"no simulation batch {batch!r} in this study's plan")
    total_s = BATCH_STARTUP_S
    for run in plan.batches[batch]:
        timeout_s = plan.designs[run.design].get("timeout_s")
        total_s += float(DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s)
    return max(1, math.ceil(total_s / 60.0))


def run_paths(results: Path, run: PlannedRun) -> tuple[Path, Path]:
    """``runs/<run_id>/<design>.parquet`` and its ``.json`` record."""
    base = Path(results) / "runs" / run.run_id / run.design
    return base.with_suffix(".parquet"), base.with_suffix(".json")
