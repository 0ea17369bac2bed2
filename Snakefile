# simbaflow workflow: design -> (simulate) -> select -> report.
# Run through `simbaflow sweep SPEC` (or `snakemake --config spec=SPEC --cores N`).
from snakemake.utils import min_version

min_version("9.0")


report: "workflows/report/workflow.rst"


include: "workflows/rules/common.smk"
include: "workflows/rules/design.smk"
include: "workflows/rules/simulate.smk"
include: "workflows/rules/select.smk"
include: "workflows/rules/figures.smk"
include: "workflows/rules/bench.smk"


rule all:
    input:
        f"{RESULTS}/candidates.csv",
        f"{RESULTS}/selection.json",
        FIGURES,
        SIM_FIGURES,
        [f"{RESULTS}/pages/{cid}.html" for cid in CANDIDATES] if SIMULATE else [],
        [f"{RESULTS}/bench.html"] if BENCH else [],
    default_target: True
