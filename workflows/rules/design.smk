# Design: every candidate of the sweep evaluated analytically (in batches), then one table.


rule evaluate_candidates:
    input:
        SPEC_PATH,
    output:
        f"{RESULTS}/candidates/{{batch}}.json",
    params:
        ids=batch_ids,
    resources:
        mem_mb=1000,
        runtime=10,
        cpus_per_task=1,
    run:
        from simbaflow.workflow.steps import evaluate_batch

        evaluate_batch(input[0], params.ids, output[0])


rule gather_candidates:
    localrule: True
    input:
        spec=SPEC_PATH,
        batches=evaluated_batches,
    output:
        report(f"{RESULTS}/candidates.csv", caption="../report/candidates.rst", category="Tables"),
        report(f"{RESULTS}/corners.csv", caption="../report/corners.rst", category="Tables"),
    run:
        from simbaflow.workflow.steps import gather_candidates

        gather_candidates(input.spec, input.batches, output[0], output[1])
