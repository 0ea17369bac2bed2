"""What ``make firmware-check`` runs: the check of every header that was promoted."""

from __future__ import annotations

from pathlib import Path

from simbaflow.promote.pi_check import run_check
from simbaflow.promote.pi_header import HEADER_PATH
from simbaflow.promote.pr_check import AC_HEADER_PATH, run_ac_check
from simbaflow.promote.toolchain import CheckReport, FirmwareCheckError


def run_all_checks(firmware_dir: str | Path, project_dir: str | Path = ".") -> CheckReport:
    """What ``make firmware-check`` runs: the DC check and the AC client/server check, for each promoted header.

    Raises
    ------
    FirmwareCheckError
        When neither ``controller_gains.h`` nor ``ac_gains.h`` was promoted, or a check fails.
    """
    firmware_dir = Path(firmware_dir)
    has_dc, has_ac = (firmware_dir / HEADER_PATH).exists(), (firmware_dir / AC_HEADER_PATH).exists()
    if not (has_dc or has_ac):
        raise FirmwareCheckError(f"{firmware_dir}: neither {HEADER_PATH} nor {AC_HEADER_PATH} exists; "
                                 "run `simbaflow promote results/<study>/selection.json`")
    report = run_check(firmware_dir, project_dir) if has_dc else CheckReport()
    if has_ac:
        run_ac_check(firmware_dir, project_dir, report=report)
    return report
