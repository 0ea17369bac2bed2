# Simulate: every distinct (design, candidate overrides) as one transient job,
# batched per design so one process compiles a design once for several runs.
# Each batch job is its own process (SIMBA's .NET runtime never enters Snakemake);
# `simba_slots` bounds concurrent SIMBA jobs to the licence's parallel slots.
import sys

for batch in RUN_BATCHES:

    rule:
        name:
            "simulate_" + batch.replace("-", "_")
        input:
            spec=SPEC_PATH,
            project=SIMULATE["project"],
        output:
            f"{RESULTS}/batches/{batch}.json",
        log:
            f"{RESULTS}/logs/simulate/{batch}.log",
        params:
            batch=batch,
            engine=ENGINE,
            python=sys.executable,
        resources:
            simba_slots=1,
            runtime=30,
            mem_mb=1000,
        shell:
            "{params.python} -m simbaflow.simulate {input.spec} {params.batch} {output} {params.engine} > {log} 2>&1"


rule gather_metrics:
    input:
        MANIFESTS,
        candidates=f"{RESULTS}/candidates.csv",
        spec=SPEC_PATH,
    output:
        report(f"{RESULTS}/metrics.csv", caption="../report/metrics.rst", category="Tables"),
    run:
        from simbaflow.simulated import gather_metrics

        gather_metrics(input.spec, input.candidates, output[0])


rule simulated_figures:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        selection=f"{RESULTS}/selection.json",
        spec=SPEC_PATH,
    output:
        report(f"{RESULTS}/figures/waveforms.html", caption="../report/waveforms.rst", category="Simulation", subcategory="Waveforms"),
        report(f"{RESULTS}/figures/sim_metrics_heatmap.png", caption="../report/sim_metrics_heatmap.rst", category="Simulation", subcategory="Metrics"),
        report(f"{RESULTS}/figures/analytic_vs_simulated.png", caption="../report/analytic_vs_simulated.rst", category="Simulation", subcategory="Agreement"),
    run:
        from simbaflow.review_sim import simulated_figures

        simulated_figures(input.spec, input.metrics, input.selection, output)


rule candidate_pages:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        candidates=f"{RESULTS}/candidates.csv",
        selection=f"{RESULTS}/selection.json",
        spec=SPEC_PATH,
    output:
        [
            report(f"{RESULTS}/pages/{cid}.html", caption="../report/candidate_page.rst", category="Candidates", labels={"candidate": cid})
            for cid in CANDIDATES
        ],
    run:
        from simbaflow.review_sim import candidate_pages

        candidate_pages(input.spec, input.candidates, input.metrics, input.selection, output)
