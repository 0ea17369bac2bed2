# simbaflow — the two commands users run are `make sweep` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STUDY ?= design/dc_current_loop.yaml
CORES ?= 2
# Debian packages the checks use: ngspice (engine validation), the Cortex-M4F
# cross compiler (firmware check), chromium (report opens in a browser).
APT_PACKAGES := ngspice gcc-arm-none-eabi libnewlib-arm-none-eabi chromium

.PHONY: setup system-deps sweep test firmware-check bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Installs only what is missing; a no-op on a machine that has everything.
system-deps:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

sweep: setup
	$(BIN)/simbaflow sweep $(STUDY) --cores $(CORES)

test: setup system-deps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# Host build + bit-exact replay of the promoted controller, Cortex-M4F cross-compile.
firmware-check: setup system-deps
	$(BIN)/simbaflow firmware-check --firmware-dir firmware

bench: setup
	$(BIN)/python benchmarks/bench_sweep.py

# Rebuild simba_projects/*.jsimba (after a firmware controller change).
.PHONY: simba-projects
simba-projects: setup
	$(BIN)/python simba_projects/build.py
	$(BIN)/python simba_projects/build_ac.py

clean:
	rm -rf results .snakemake

# A private one-node SLURM cluster (Debian's slurm-wlm and munge, files under $${TMPDIR:-/tmp}/simbaflow-slurm,
# as root): then `eval "$$(workflows/cluster/slurm.sh env)"` and sweep with --profile workflows/profiles/slurm.
.PHONY: slurm-up slurm-down
slurm-up:
	workflows/cluster/slurm.sh up

slurm-down:
	workflows/cluster/slurm.sh down

# Local versus SLURM-profile wall time of a small study on this machine's cluster (root).
.PHONY: bench-slurm
bench-slurm: setup slurm-up
	$(BIN)/python benchmarks/bench_slurm.py

# Peak memory of `records import` on a 200 MB console capture (streamed line by line).
.PHONY: bench-records
bench-records: setup
	$(BIN)/python benchmarks/bench_records.py --mb 200

# Embedded engine: warm/cold timings, memory and the ngspice comparison.
.PHONY: bench-embedded
bench-embedded: setup system-deps
	$(BIN)/python benchmarks/bench_embedded.py

# AC client/server study (issue 7): analytic table and selection, gains header,
# SIMBA project, then the PR / RS485 frame host and Cortex-M4F checks.
.PHONY: ac-study
# The AC client/server study end to end, then its gains promoted into firmware/include/ac_gains.h.
ac-study: setup system-deps
	$(BIN)/simbaflow sweep design/ac_client_server.yaml --cores $(CORES)
	$(BIN)/simbaflow promote results/ac_client_server/selection.json
