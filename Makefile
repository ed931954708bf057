# Two commands do everything: `make demo` and `make test`. Both create or reuse .venv.
.PHONY: demo test lint venv clean package validate

INPUT ?=
HPO ?=
SCALE ?=
PREDICTOR ?=
VERBOSE ?=
PY := .venv/bin/python

venv:
	@bash scripts/bootstrap_venv.sh

## Run the whole workflow through Airflow on generated data (or INPUT=path/to/reviews.tsv.gz;
## HPO=1 for the tuning branch, SCALE=1.0 for full size, PREDICTOR=binary_classifier for likes,
## VERBOSE=1 to see Airflow's logs instead of .demo/airflow.log).
demo: venv
	@$(PY) scripts/run_demo.py $(if $(INPUT),--input "$(INPUT)") $(if $(HPO),--hpo) $(if $(SCALE),--scale $(SCALE)) $(if $(PREDICTOR),--predictor-type $(PREDICTOR)) $(if $(VERBOSE),--verbose)

## Lint, then the whole test suite.
test: venv
	@$(PY) -m ruff check .
	@$(PY) -m pytest

## Build dist/ for MWAA (dags/, plugins.zip, requirements.txt) and check it.
package: venv
	@$(PY) mwaa/recsys-mwaa package

validate: package
	@$(PY) mwaa/recsys-mwaa validate

lint: venv
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .

clean:
	rm -rf .demo output dist .pytest_cache .ruff_cache
