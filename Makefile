# The two-command quickstart: `make demo`, then `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint install install-test bench clean

# llama-cpp-python compiles llama.cpp with -march=native. On CPUs with AMX (Sapphire Rapids and
# later) that code takes a general protection fault (ldtilecfg in libggml-cpu) where the kernel
# or sandbox does not grant AMX tile state, as on our CI machines: every decode crashed. There
# the build leaves AMX out; elsewhere, and when CMAKE_ARGS is set already, nothing changes.
#
# llamafile's sgemm, which llama.cpp uses for matrix products of 2 rows or more (one row goes
# through ggml's own dot products), is left out: with it a token's logits depend on how many
# others share its batch, and a batched greedy answer can differ from the one-at-a-time one.
# Without it (ggml's tiled product and weight repacking are switched off at run time too) the
# answers are the same (tests/test_eval_batched.py); prompts decode slower (README, "Speed").
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
CMAKE_ARGS ?= -DGGML_LLAMAFILE=OFF $(if $(shell grep -qs amx_tile /proc/cpuinfo && echo y),-DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)')
export CMAKE_ARGS

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# torch is pinned to the CPU build; the other extras' wheels are cached by pip after the first install.
# pip reuses a llama-cpp-python wheel it built before, whatever CMAKE_ARGS said then: one built
# with llamafile (LLAMAFILE = 1 in its system info) is dropped from the cache and rebuilt.
define CHECK_LLAMA_BUILD
	@case "$$CMAKE_ARGS" in *GGML_LLAMAFILE=OFF*) \
	$(BIN)/python -c 'import llama_cpp, sys; sys.exit(b"LLAMAFILE = 1" in llama_cpp.llama_print_system_info())' || { \
		echo "llama-cpp-python was built with llamafile; rebuilding it with CMAKE_ARGS=$$CMAKE_ARGS"; \
		$(PIP) cache remove llama_cpp_python; \
		$(PIP) install --force-reinstall --no-deps "llama-cpp-python==$$($(BIN)/python -c 'import llama_cpp; print(llama_cpp.__version__)')"; }; \
	esac
endef

install: $(BIN)/python
	$(PIP) install -e '.[all]'
	$(CHECK_LLAMA_BUILD)

# The accessibility tests (tests/test_studio_a11y.py) inject axe-core, from npm, into the pages:
# installed into tests/js (git ignores it), never fetched from a CDN. npm comes from Debian's
# nodejs and npm packages where it is missing.
AXE := tests/js/node_modules/axe-core/axe.min.js

$(AXE):
	@command -v npm >/dev/null || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm; }
	npm install --no-save --no-audit --no-fund --prefix tests/js axe-core@4

# The browser tests drive Debian's Chromium (never `playwright install`); the speech tests
# synthesise their audio with Debian's espeak-ng.
install-test: $(BIN)/python $(AXE)
	$(PIP) install -e '.[all,dev]'
	$(CHECK_LLAMA_BUILD)
	@{ test -x /usr/bin/chromium && command -v espeak-ng >/dev/null && \
		test -x /usr/lib/postgresql/15/bin/initdb && command -v redis-server >/dev/null; } || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); $$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium espeak-ng postgresql redis-server; }

demo: install
	$(BIN)/modelatlas demo

# Two workers, each taking whole test files (their module fixtures stay in one process): the
# suite took 26.5 minutes in one process and 14.3 in two on this 2-core machine, same tree.
# The 25 slowest tests are listed at the end, so a slow CI run says where its time went.
test: install-test
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25

lint: install-test
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

bench: install-test
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .mypy_cache tests/js/node_modules
