# Select: the spec's constraints and objective applied to the candidate table and,
# when the study simulates, to the simulated metrics (`<design>.<metric>`).


rule select:
    localrule: True
    input:
        spec=SPEC_PATH,
        candidates=f"{RESULTS}/candidates.csv",
        metrics=[f"{RESULTS}/metrics.csv"] if SIMULATE else [],
    output:
        selection=f"{RESULTS}/selection.json",
        summary=report(f"{RESULTS}/selection.html", caption="../report/selection.rst", category="Selection"),
    run:
        from simbaflow.review.summary import selection_html
        from simbaflow.workflow.steps import select_to_json

        select_to_json(input.spec, input.candidates, output.selection, input.metrics[0] if input.metrics else None)
        selection_html(output.selection, output.summary)
