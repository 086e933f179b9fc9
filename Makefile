# Set-up and everyday commands. `make run` sets everything up on a fresh machine and runs the main job.
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE ?= ../shared/archive-sample
ARCHIVE ?= archive
INDEX ?= models/default
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run install archive index test lint format bench clean

run: index  ## set up, index the default archive, and show related events for the seed page
	$(BIN)/recommender related SEED-EXAMPLE.md --index $(INDEX)

install: $(BIN)/.installed

# everything the tests and the eval need: serving (no extras), training ([train]), the eval ([eval]) and the dev
# tools. torch first, pinned: it comes from the CPU build on disk, never a several-GB CUDA build
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,train,eval]'
	touch $@

archive: $(ARCHIVE)/SEED-EXAMPLE.md

# fill archive/ from the sample when it holds no events (its files are git-ignored)
$(ARCHIVE)/SEED-EXAMPLE.md:
	@if find $(ARCHIVE) -name '*.md' ! -name README.md | grep -q .; then echo "archive/ already holds events"; \
	else test -d $(SAMPLE) || { echo "error: no events in $(ARCHIVE)/ and no sample at $(SAMPLE)"; exit 1; }; \
	cp -r $(SAMPLE)/news $(SAMPLE)/SEED-EXAMPLE.md $(ARCHIVE)/ && chmod -R u+w $(ARCHIVE); \
	echo "archive/ filled from $(SAMPLE)"; fi

index: install archive
	$(BIN)/recommender index --archive $(ARCHIVE) --out $(INDEX)

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check recommender tests eval
	$(BIN)/ruff format --check recommender tests eval
	$(BIN)/mypy recommender

format: install
	$(BIN)/ruff format recommender tests eval
	$(BIN)/ruff check --fix recommender tests eval

bench: install
	$(BIN)/python eval/bench_speed.py

clean:
	rm -rf $(VENV) models/default
