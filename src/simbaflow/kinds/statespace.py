"""A state-space plant discretised for the FPGA (seed 003): no candidates, one export."""

from __future__ import annotations

from simbaflow.kinds.base import StudyKind


def _export(spec_path, firmware_dir, target, dry_run):
    from simbaflow.promote.pipeline import promote_statespace

    return promote_statespace(spec_path, firmware_dir=firmware_dir, target=target, dry_run=dry_run)


KIND = StudyKind(name="statespace", section="statespace", sweeps=False, export=_export, default_target="fpga",
                 control_period_s=lambda spec: float(spec["statespace"]["ts_s"]))
