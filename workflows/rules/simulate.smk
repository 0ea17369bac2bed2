# Simulate: the plan (which candidates run which design, known after the analytic stage),
# then one job per batch of runs, each batch its own process (SIMBA's .NET runtime never
# enters Snakemake); `simba_slots` bounds concurrent SIMBA jobs to the licence's slots.


checkpoint plan_simulations:
    localrule: True
    input:
        spec=SPEC_PATH,
        project=SPEC.get("simulate", {}).get("project", []),
        batches=evaluated_batches,
    output:
        f"{RESULTS}/plan.json",
    run:
        from simbaflow.workflow.steps import plan_simulations

        plan_simulations(input.spec, input.batches, output[0])


rule simulate_batch:
    input:
        plan=f"{RESULTS}/plan.json",
        project=SPEC.get("simulate", {}).get("project", []),
    output:
        f"{RESULTS}/batches/{{run_batch}}.json",
    log:
        f"{RESULTS}/logs/simulate/{{run_batch}}.log",
    params:
        engine=ENGINE,
        python=sys.executable,
    resources:
        simba_slots=1,
        # Two Snakemake processes under SLURM (the job step and its srun, ~260 MB each) plus the batch's.
        mem_mb=2000,
        cpus_per_task=1,
        # Minutes: every run of the batch at its own time limit, plus start-up (see batch_runtime_min).
        runtime=lambda wildcards, input: batch_runtime_min(Plan.read(input.plan), wildcards.run_batch),
    shell:
        "{params.python} -m simbaflow.simulate.batch {input.plan} {wildcards.run_batch} {output} {params.engine}"
        " > {log} 2>&1"


rule gather_metrics:
    localrule: True
    input:
        manifests=simulation_manifests,
        plan=f"{RESULTS}/plan.json",
        candidates=f"{RESULTS}/candidates.csv",
        corners=f"{RESULTS}/corners.csv",
        spec=SPEC_PATH,
    output:
        report(f"{RESULTS}/metrics.csv", caption="../report/metrics.rst", category="Tables"),
    run:
        from simbaflow.workflow.steps import gather_metrics

        gather_metrics(input.spec, input.plan, input.candidates, output[0], input.corners)
