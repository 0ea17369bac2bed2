"""Running the Snakemake workflow from the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simbaflow.errors import SimbaflowError
from simbaflow.spec import load_spec


def snakefile() -> Path:
    """The workflow's Snakefile: ``$SIMBAFLOW_SNAKEFILE`` or the one beside ``src/``."""
    env = os.environ.get("SIMBAFLOW_SNAKEFILE")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "Snakefile"
    if not path.is_file():
        raise SimbaflowError(f"{path}: workflow Snakefile not found; set SIMBAFLOW_SNAKEFILE to the repository's Snakefile")
    return path


def resolve_spec(study: str) -> Path:
    """A spec path, or a study name looked up as ``design/<name>.yaml``."""
    path = Path(study)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = Path("design") / f"{study}.yaml"
    if candidate.exists():
        return candidate
    raise SimbaflowError(f"{study}: neither a spec file nor a study name with a design/{study}.yaml")


def default_profile() -> Path:
    """``workflows/profiles/local`` beside the Snakefile."""
    return snakefile().parent / "workflows" / "profiles" / "local"


def snakemake_command(spec_path: Path, cores: int, extra: list[str] | None = None,
                      profile: Path | None = None) -> list[str]:
    """The Snakemake invocation for a study: its spec as config, the local profile by default."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(snakefile()),
        "--workflow-profile", str(profile or default_profile()),
        "--directory", os.getcwd(),
        "--cores", str(cores),
        "--config", f"spec={spec_path}",
        *(extra or []),
    ]


def run_sweep(spec_path: Path, cores: int, report: bool = True, profile: Path | None = None) -> int:
    """Validate the spec, run the workflow, then build its HTML report.

    Returns the exit code; a failed run that leaves the candidate table but no
    selection is re-explained in one sentence (e.g. no feasible candidate).
    """
    spec = load_spec(spec_path)
    results = Path("results") / spec["study"]
    code = subprocess.call(snakemake_command(spec_path, cores, profile=profile))
    if code != 0:
        table, selection = results / "candidates.csv", results / "selection.json"
        if table.exists() and not selection.exists():
            from simbaflow.study import select_to_json

            select_to_json(spec_path, table, selection)  # raises the selection's own clear error
        raise SimbaflowError(f"the workflow for {spec_path} failed (snakemake exit {code}); see its log above", exit_code=code)
    if report:
        return build_report(spec_path, cores)
    return 0


def build_report(spec_path: Path, cores: int = 1) -> int:
    """``snakemake --report results/<study>/report.html``."""
    spec = load_spec(spec_path)
    out = Path("results") / spec["study"] / "report.html"
    code = subprocess.call(snakemake_command(spec_path, cores, ["--report", str(out)]))
    if code != 0:
        raise SimbaflowError(f"building the report {out} failed (snakemake exit {code})", exit_code=code)
    print(f"report: {out}")
    return 0
