# Analytic design: every candidate of the sweep (in batches), then one table.

for batch, ids in BATCHES.items():

    rule:
        name:
            f"evaluate_candidates_{batch}"
        input:
            SPEC_PATH,
        output:
            [candidate_json(cid) for cid in ids],
        params:
            ids=ids,
        run:
            from simbaflow.study import evaluate_to_json

            evaluate_to_json(input[0], params.ids, output)


rule gather_candidates:
    input:
        [candidate_json(cid) for cid in CANDIDATES],
    output:
        report(
            f"{RESULTS}/candidates.csv",
            caption="../report/candidates.rst",
            category="Tables",
        ),
    params:
        spec=SPEC_PATH,
    run:
        from simbaflow.spec import load_spec
        from simbaflow.study import gather, table_columns

        gather(input, output[0], table_columns(load_spec(params.spec)))
