# Two entry points for newcomers (see README.md):
#   make demo   installs everything, writes "hello world" with the shipped model, builds the embedded
#               font dataset, trains a short run of the cpu preset, generates with it
#   make test   installs everything and runs the test suite
PY := .venv/bin/python
FONT_PKGS := fonts-dkg-handwriting fonts-breip fonts-femkeklaver fonts-dancingscript fonts-kristi \
  fonts-kaushanscript fonts-sjfonts fonts-ecolier-court fonts-comic-neue wamerican wfrench wngerman
WORKDIR ?= runs/demo
DATA_DIR ?= $(HOME)/tensorflow_datasets
# Test processes (pytest-xdist, one test file per process at a time): 2 runs the suite in 519 s
# instead of 829 s on a 2-core machine; each process holds TensorFlow (~1-3 GB).
TEST_JOBS ?= 2

.PHONY: install fonts venv demo test bench
install: fonts venv

fonts:
	@if ! dpkg -s $(FONT_PKGS) >/dev/null 2>&1; then \
	  echo "Installing handwriting fonts and word lists (apt)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(FONT_PKGS); \
	fi

venv: .venv/.installed
.venv/.installed: constraints.txt pyproject.toml
	python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

# Iterations of the demo training run (the cpu preset; its first 1,000 train R alone).
DEMO_STEPS ?= 4000

demo: install
	@mkdir -p $(WORKDIR)
	$(PY) -m scrabblegan_tf.generate --text="hello world" --num_styles=8 --out=$(WORKDIR)/hello_world_shipped.png
	$(PY) train_main.py --dataset=handwriting_fonts --config=cpu --steps=$(DEMO_STEPS) --workdir=$(WORKDIR) --data_dir=$(DATA_DIR)
	$(PY) -m scrabblegan_tf.generate --workdir=$(WORKDIR) --text="hello world" --num_styles=8 --out=$(WORKDIR)/hello_world.png
	@echo "Shipped model: $(WORKDIR)/hello_world_shipped.png  This run: $(WORKDIR)/hello_world.png, $(WORKDIR)/samples/"

test: install
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile tests

bench: install
	$(PY) bench/speed.py
