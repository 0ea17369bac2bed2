# Selection: constraints and objective of the spec applied to the candidate table.


rule select:
    input:
        spec=SPEC_PATH,
        candidates=f"{RESULTS}/candidates.csv",
    output:
        selection=f"{RESULTS}/selection.json",
        summary=report(
            f"{RESULTS}/selection.html",
            caption="../report/selection.rst",
            category="Selection",
        ),
    run:
        from simbaflow.review import selection_html
        from simbaflow.study import select_to_json

        select_to_json(input.spec, input.candidates, output.selection)
        selection_html(output.selection, output.summary)
