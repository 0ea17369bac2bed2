"""The workflow: the functions Snakemake rules call, and running Snakemake."""
