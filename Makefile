# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: demo serve test lab voila bench bench-smoke lint catalogs messages translations clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the packaging changes: a second run with nothing changed installs nothing.
$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

install: $(STAMP_RUN)

demo: $(STAMP_RUN)
	$(BIN)/selfcare-ops demo

# The invitee's pages on the demo database (after `make demo`), links based on this address.
SERVE_PORT ?= 8000
serve: $(STAMP_RUN)
	SELFCARE_OPS_PORTAL_URL=http://127.0.0.1:$(SERVE_PORT) $(BIN)/selfcare-ops serve --port $(SERVE_PORT)

test: $(STAMP_TEST)
	$(BIN)/ruff check selfcare_ops tests bench
	$(BIN)/ruff format --check selfcare_ops tests bench
	$(BIN)/python -m pytest

# The gettext catalogs (Babel): `make messages` extracts the marked messages and updates fr and
# en (then fill their msgstr), `make translations` compiles them, `make catalogs` does both.
messages: $(STAMP_TEST)
	$(BIN)/pybabel extract -F babel.cfg -k _ -k N_ -k ngettext:1,2 -k NN_:1,2 --no-location --omit-header --sort-output -o selfcare_ops/locale/selfcare_ops.pot .
	$(BIN)/pybabel update -D selfcare_ops -i selfcare_ops/locale/selfcare_ops.pot -d selfcare_ops/locale --no-fuzzy-matching --ignore-obsolete
	# No extraction date in the catalogs: running this twice changes nothing (and merges stay clean).
	sed -i '/^"POT-Creation-Date: /d' selfcare_ops/locale/*/LC_MESSAGES/selfcare_ops.po

translations: $(STAMP_TEST)
	$(BIN)/pybabel compile -D selfcare_ops -d selfcare_ops/locale --statistics

catalogs: messages
	$(MAKE) translations

# JupyterLab refuses to start as root without --allow-root (containers, CI machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP_RUN)
	$(BIN)/selfcare-ops demo --quiet --no-jobs
	$(BIN)/jupyter lab $(ROOT_FLAG) notebooks/dashboard.ipynb

# voila.json (read from here) culls a closed tab's kernel after 10 idle minutes; the selfcare
# template (share/jupyter) is Voila's lab template without the icon font fetched from a CDN.
VOILA := JUPYTER_PATH=$(CURDIR)/share/jupyter $(BIN)/voila --template=selfcare

voila: $(STAMP_TEST)
	$(BIN)/selfcare-ops demo --quiet --no-jobs
	$(VOILA) notebooks/dashboard.ipynb

bench: $(STAMP_TEST)
	set -e; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script; done

# Every benchmark at a tiny size: proves each still runs (CI), measures nothing.
bench-smoke: $(STAMP_TEST)
	set -e; for script in bench/*.py; do echo "== $$script --smoke"; $(BIN)/python $$script --smoke; done

lint: $(STAMP_TEST)
	$(BIN)/ruff check selfcare_ops tests bench
	$(BIN)/ruff format --check selfcare_ops tests bench

clean:
	rm -rf $(VENV) data/selfcare.db* data/outbox runs
