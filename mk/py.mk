# Python bindings (py/): a venv inside the checkout, the extension built by
# maturin into it, pytest over the whole surface and every notebook.
#   make py-test     build + install the wheel (pip install ./py), lint, pytest
#   make notebooks   re-execute py/notebooks/*.ipynb in place (full parameters)
PY_VENV ?= py/.venv
PYTHON3 ?= python3
PY := $(PY_VENV)/bin/python
# What `make py-test` needs; the notebook test needs nbclient + ipykernel +
# matplotlib (about 15 s of pip on a cold cache).
PY_DEPS := maturin>=1.9.4,<2 pytest pandas tqdm matplotlib nbclient nbformat ipykernel

.PHONY: py-venv py-build py-lint py-test notebooks

$(PY):
	$(PYTHON3) -m venv $(PY_VENV)
	$(PY) -m pip install -q --upgrade pip

py-venv: $(PY)
	$(PY) -m pip install -q $(foreach d,$(PY_DEPS),"$(d)")

# `pip install ./py` is what users run; without build isolation it reuses the
# venv's maturin and the cargo target dir between runs.
# (maturin's build hook runs `maturin` from PATH: the venv's bin comes first.)
py-build: py-venv
	PATH="$(abspath $(PY_VENV))/bin:$$PATH" $(PY) -m pip install -q --no-build-isolation --force-reinstall --no-deps ./py

py-lint: py-venv
	$(CARGO) fmt --manifest-path py/Cargo.toml --check
	PYO3_PYTHON=$(abspath $(PY)) $(CARGO) clippy --manifest-path py/Cargo.toml --all-targets -- -D warnings

py-test: py-build py-lint
	cd py && PHASECAST_REQUIRE_NOTEBOOKS=1 $(abspath $(PY)) -m pytest -q tests

notebooks: py-build
	$(PY) -m pip install -q nbconvert
	cd py/notebooks && for nb in *.ipynb; do \
	  PHASECAST_PROGRESS=0 $(abspath $(PY_VENV))/bin/jupyter nbconvert --execute --to notebook --inplace "$$nb" || exit 1; \
	done
