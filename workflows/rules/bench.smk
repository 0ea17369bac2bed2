# Bench: measured records next to the simulation (from `simbaflow records compare`).

if BENCH:

    rule bench_summary:
        input:
            BENCH,
        output:
            report(f"{RESULTS}/bench.html", caption="../report/bench.rst", category="Bench"),
        run:
            from simbaflow.review import bench_html

            bench_html(input, output[0])
