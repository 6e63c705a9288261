# Two commands set everything up on a fresh machine:
#   make demo   # installs into .venv, then runs the offline end-to-end demo
#   make test   # installs into .venv, then runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint site site-instructor kit serve lessons browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/python -m solutions demo

test: $(STAMP)
	$(BIN)/python -m pytest

# The edit-test loop (57 s on the 2-core CPU machine): everything but the tests marked slow
# (notebook execution, end-to-end grading, real training) and the browser tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not browser" -q --durations=5

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

# The student site (./site): lessons, exercise, student guide, results, `course` API.
site: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The instructor site (./site-instructor): the above plus the instructor guide and API.
site-instructor: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -f mkdocs-instructor.yml

# The zip an instructor hands to students (dist/transfer-course-student-kit.zip), with both
# exercises; `python -m autograder --assignment NAME student-kit dist` picks one.
kit: $(STAMP)
	$(BIN)/python -m autograder --assignment all student-kit dist

serve: $(STAMP)
	$(BIN)/mkdocs serve

lessons: $(STAMP)
	$(BIN)/python scripts/execute_lessons.py

browser:
	bash scripts/install_browser.sh

clean:
	rm -rf $(VENV) site site-instructor build dist *.egg-info
