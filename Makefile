# Two commands do all the set-up (see README):
#   make pbx    create the venv if needed, then run the PBX on its embedded default config
#   make test   install what the tests need (system tools too when root), then run every test and notebook
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.labkit-installed
EXTRAS ?= lab,test,bench,fast
PYTEST_ARGS ?=

.PHONY: pbx test lab venv sysdeps bench notebooks clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@scripts/make_venv.sh "$(PYTHON)" "$(VENV)" "$(EXTRAS)"
	@touch $@

pbx: venv
	$(PY) -m labkit.pbx $(ARGS)

sysdeps:
	@scripts/sysdeps.sh

test: venv sysdeps
	$(PY) -m pytest $(PYTEST_ARGS)

lab: venv
	$(VENV)/bin/jupyter lab notebooks

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Re-run every notebook in place so the stored outputs are what the code produces today.
notebooks: venv
	$(PY) scripts/run_notebooks.py notebooks/*.ipynb

clean:
	rm -rf $(VENV) .pytest_cache
