# Shared state of every rule: the validated study spec and its result paths.
# Only light imports here: every job parses this file again.
from simbaflow.spec import load_spec
from simbaflow.sweepspace import batches, candidate_ids, study_kind

SPEC_PATH = config.get("spec", "design/dc_current_loop.yaml")
SPEC = load_spec(SPEC_PATH)
RESULTS = f"results/{SPEC['study']}"
CANDIDATES = candidate_ids(SPEC)
# Candidates are evaluated in batches of `batch_size` (config) so per-job start-up can be amortised;
# one job per candidate by default; cluster profiles raise batch_size.
BATCHES = batches(CANDIDATES, int(config.get("batch_size", 1)))
KIND = study_kind(SPEC)  # "dc" (sweep section) or "ac" (client/server study)
FIGURE_NAMES = (
    ["step_responses", "pole_zero", "metrics_vs_parameters", "continuous_vs_discrete"]
    if KIND == "dc"
    else ["metrics_vs_parameters"]
)
FIGURES = [f"{RESULTS}/figures/{name}.png" for name in FIGURE_NAMES]


def candidate_json(cid):
    return f"{RESULTS}/candidates/{cid}.json"


# Simulate stage (when the spec has a `simulate` section).
from simbaflow.simulate import batch_runs, plan_runs, simulate_settings

SIMULATE = simulate_settings(SPEC)
ENGINE = config.get("engine") or SIMULATE.get("engine", "auto")
RUN_BATCHES = batch_runs(plan_runs(SPEC), int(SIMULATE.get("batch_size", 8))) if SIMULATE else {}
MANIFESTS = [f"{RESULTS}/batches/{batch}.json" for batch in RUN_BATCHES]
SIM_FIGURES = (
    [f"{RESULTS}/figures/waveforms.html", f"{RESULTS}/figures/sim_metrics_heatmap.png",
     f"{RESULTS}/figures/analytic_vs_simulated.png"]
    if SIMULATE
    else []
)

# Bench comparisons written by `simbaflow records compare` (shown in the report when present).
import glob

BENCH = sorted(glob.glob(f"{RESULTS}/bench/*_compare.json"))
