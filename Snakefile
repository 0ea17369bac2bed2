# simbaflow workflow: design -> simulate -> select -> review.
# Run through `simbaflow sweep SPEC` (or `snakemake --config spec=SPEC --cores N`).
from snakemake.utils import min_version

min_version("9.0")


report: "workflows/report/workflow.rst"


include: "workflows/rules/common.smk"
include: "workflows/rules/design.smk"
include: "workflows/rules/simulate.smk"
include: "workflows/rules/select.smk"
include: "workflows/rules/review.smk"


rule all:
    input:
        final_outputs(),
        # Every run batch and the table gathered from them are targets too, so a rerun redoes
        # whatever a sweep left failed, missing or unreadable even when the report is up to date.
        simulation_manifests if SIMULATE else [],
    default_target: True
