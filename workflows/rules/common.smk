# Shared by every rule: the validated config and spec, the study's kind, input functions.
# Light at parse time: the spec is read and its candidate ids listed, nothing is evaluated.
import glob
import json
import sys
from pathlib import Path

from snakemake.utils import validate

from simbaflow.core.spec import load_spec
from simbaflow.kinds import candidate_ids, kind_of
from simbaflow.simulate.plan import Plan, batch_runtime_min
from simbaflow.workflow.steps import candidate_batches


validate(config, "../schemas/config.schema.yaml")

SPEC_PATH = config["spec"]
SPEC = load_spec(SPEC_PATH)
KIND = kind_of(SPEC)
RESULTS = f"results/{SPEC['study']}"
# Candidates are evaluated in batches of `batch_size` so per-job start-up can be amortised.
BATCHES = candidate_batches(candidate_ids(SPEC), config["batch_size"])
CANDIDATES = [cid for ids in BATCHES.values() for cid in ids]
SIMULATE = bool(SPEC.get("simulate"))
ENGINE = config["engine"] or (SPEC["simulate"]["engine"] if SIMULATE else "auto")
# Bench comparisons written by `simbaflow records compare` (shown in the report when present).
BENCH = sorted(glob.glob(f"{RESULTS}/bench/*_compare.json"))


wildcard_constraints:
    batch=r"b\d+",


def batch_ids(wildcards):
    return BATCHES[wildcards.batch]


def evaluated_batches(wildcards=None):
    return [f"{RESULTS}/candidates/{batch}.json" for batch in BATCHES]


def simulation_manifests(wildcards):
    """Every batch of the plan, known once the analytic stage has written it."""
    plan = checkpoints.plan_simulations.get().output[0]
    batches = json.loads(Path(plan).read_text())["batches"]
    return [f"{RESULTS}/batches/{batch}.json" for batch in batches]


def figure(name):
    return f"{RESULTS}/figures/{name}.png"


def final_outputs():
    outputs = [*evaluated_batches(), f"{RESULTS}/candidates.csv", f"{RESULTS}/selection.json", f"{RESULTS}/selection.html",
               f"{RESULTS}/review.html"]
    outputs += [figure(name) for name in KIND.figures]
    if SIMULATE:
        outputs += [f"{RESULTS}/metrics.csv", f"{RESULTS}/figures/waveforms.html", figure("sim_metrics_heatmap"),
                    figure("analytic_vs_simulated")]
        outputs += [f"{RESULTS}/pages/{cid}.html" for cid in CANDIDATES]
    if BENCH:
        outputs.append(f"{RESULTS}/bench.html")
    return outputs
