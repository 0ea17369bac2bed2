# Figures of the analytic sweep, each with its caption in workflows/report/.


if KIND == "ac":

    rule ac_figures:
        input:
            table=f"{RESULTS}/candidates.csv",
        output:
            report(f"{RESULTS}/figures/metrics_vs_parameters.png", caption="../report/ac_metrics_vs_parameters.rst", category="Design", subcategory="Metrics"),
        run:
            from simbaflow.review import ac_figures

            ac_figures(input.table, output[0])


else:

    rule figures:
        # DC studies: the seed's analytic figures.
        input:
            candidates=[candidate_json(cid) for cid in CANDIDATES],
            table=f"{RESULTS}/candidates.csv",
            selection=f"{RESULTS}/selection.json",
        output:
            report(f"{RESULTS}/figures/step_responses.png", caption="../report/step_responses.rst", category="Design", subcategory="Step responses"),
            report(f"{RESULTS}/figures/pole_zero.png", caption="../report/pole_zero.rst", category="Design", subcategory="Poles and zeros"),
            report(f"{RESULTS}/figures/metrics_vs_parameters.png", caption="../report/metrics_vs_parameters.rst", category="Design", subcategory="Metrics"),
            report(f"{RESULTS}/figures/continuous_vs_discrete.png", caption="../report/continuous_vs_discrete.rst", category="Discretisation"),
        run:
            from simbaflow.review import analytic_figures

            analytic_figures(input.candidates, input.table, input.selection, output)
