# Two entry points for a fresh machine:
#   make demo   install into .venv, then compress + verify a folder of images (default: Kodak)
#   make test   install into .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
IMAGES ?= $(firstword $(wildcard ../shared/datasets/kodak))
OUT ?= out/demo

.PHONY: install demo test bench clean docker docker-bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The local CPU wheel; never let a dependency pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.lock -e '.[test,ray]'
	# Build the arithmetic coder's native code into the venv now; runs only ever load it.
	$(BIN)/python -c "from lossless_bpg.residual.coder import warm_up; warm_up()"
	# The sequential coder was compiled by the install above; check that it loads and codes.
	$(BIN)/python -c "from lossless_bpg.sequential import warm_up; warm_up()"
	touch $@

demo: install
	@if [ -z "$(IMAGES)" ]; then echo "no image folder: run 'make demo IMAGES=path/to/folder'"; exit 2; fi
	$(BIN)/python -m lossless_bpg compress "$(IMAGES)" -o "$(OUT)" --verify --force

test: install
	$(BIN)/ruff check lossless_bpg tests scripts
	$(BIN)/mypy lossless_bpg
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m lossless_bpg bench ../shared/datasets/kodak --workers 2 --out benchmarks/kodak

clean:
	rm -rf $(VENV) out results build

# The benchmark image, built with no network inside the build (docker/build_image.sh: engine,
# base image made with debootstrap when absent, wheelhouse, staged context); docker-bench runs it
# with --network none on IMAGES (default Kodak), results in results/docker/.
DOCKER_IMAGE ?= lossless-bpg
DOCKER_BASE ?= lossless-bpg-base:bookworm
docker:
	docker/build_image.sh --image $(DOCKER_IMAGE) --base $(DOCKER_BASE)

docker-bench:
	@if [ -z "$(IMAGES)" ]; then echo "no image folder: run 'make docker-bench IMAGES=path/to/folder'"; exit 2; fi
	docker/run_bench.sh "$(IMAGES)" results/docker $(DOCKER_IMAGE)

# libbpg (bpgenc, bpgdec) and FLIF (flif) from their pinned sources into third_party/local/bin,
# where lossless_bpg finds them; a second run does nothing. THIRD_PARTY_SOURCES: a folder holding
# the release tarballs, or leave empty for the scripts' default (../shared/third_party).
.PHONY: third-party
THIRD_PARTY_SOURCES ?=
third-party:
	third_party/flif/build.sh $(if $(THIRD_PARTY_SOURCES),--source "$(THIRD_PARTY_SOURCES)")
	third_party/libbpg/build.sh $(if $(THIRD_PARTY_SOURCES),--source "$(THIRD_PARTY_SOURCES)")
