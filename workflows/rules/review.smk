# Review: the decision page, the kind's analytic figures, the simulated figures, one page per
# candidate, bench comparisons; each output carries its caption from workflows/report/.


rule review_page:
    input:
        spec=SPEC_PATH,
        candidates=f"{RESULTS}/candidates.csv",
        metrics=[f"{RESULTS}/metrics.csv"] if SIMULATE else [],
        selection=f"{RESULTS}/selection.json",
        # The header diff is against the firmware as it is now: a promotion redoes the page.
        headers=glob.glob("firmware/include/*gains.h"),
    output:
        page=report(f"{RESULTS}/review.html", caption="../report/review.rst", category="Decision"),
        # The decision section alone: workflow.rst puts it on the report's front page.
        section=f"{RESULTS}/review_decision.html",
    run:
        from simbaflow.workflow.steps import review_page

        review_page(input.spec, input.candidates, input.metrics[0] if input.metrics else None, input.selection,
                    output.page, output.section)


rule design_figures:
    localrule: True
    input:
        spec=SPEC_PATH,
        batches=evaluated_batches,
        table=f"{RESULTS}/candidates.csv",
        selection=f"{RESULTS}/selection.json",
    output:
        [
            report(figure(name), caption=f"../report/{KIND.name}/{name}.rst", category="Design",
                   subcategory=name.replace("_", " "))
            for name in KIND.figures
        ],
    run:
        from simbaflow.workflow.steps import design_figures

        design_figures(input.spec, input.batches, input.table, input.selection, output)


rule simulated_figures:
    localrule: True
    input:
        spec=SPEC_PATH,
        metrics=f"{RESULTS}/metrics.csv",
        selection=f"{RESULTS}/selection.json",
    output:
        report(f"{RESULTS}/figures/waveforms.html", caption="../report/waveforms.rst", category="Simulation", subcategory="Waveforms"),
        report(figure("sim_metrics_heatmap"), caption="../report/sim_metrics_heatmap.rst", category="Simulation", subcategory="Metrics"),
        report(figure("analytic_vs_simulated"), caption="../report/analytic_vs_simulated.rst", category="Simulation", subcategory="Agreement"),
    run:
        from simbaflow.workflow.steps import simulated_figures

        simulated_figures(input.spec, input.metrics, input.selection, output)


rule candidate_pages:
    localrule: True
    input:
        spec=SPEC_PATH,
        metrics=f"{RESULTS}/metrics.csv",
        candidates=f"{RESULTS}/candidates.csv",
        selection=f"{RESULTS}/selection.json",
    output:
        [
            report(f"{RESULTS}/pages/{cid}.html", caption="../report/candidate_page.rst", category="Candidates", labels={"candidate": cid})
            for cid in CANDIDATES
        ],
    run:
        from simbaflow.workflow.steps import candidate_pages

        candidate_pages(input.spec, input.candidates, input.metrics, input.selection, output)


rule bench_summary:
    localrule: True
    input:
        BENCH,
    output:
        report(f"{RESULTS}/bench.html", caption="../report/bench.rst", category="Bench"),
    run:
        from simbaflow.review.summary import bench_html

        bench_html(input, output[0])
