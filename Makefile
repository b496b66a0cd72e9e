# devhub: `make up` runs the stack, `make test` installs what it needs, builds and runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
PY          := $(VENV)/bin/python
PYTEST      := $(VENV)/bin/pytest
# Build-time CA for TLS-intercepting proxies. Off unless given; follows the host pip's own CA setting
# (PIP_CERT, else `pip config` global.cert) when it has one, so image builds trust what the host's
# pip trusts.
ifeq ($(origin EXTRA_CA),undefined)
EXTRA_CA    := $(or $(PIP_CERT),$(shell python3 -m pip config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$$/\1/p"))
endif
export EXTRA_CA PIP_INDEX_URL DEBIAN_MIRROR DEBIAN_SECURITY_MIRROR

.PHONY: help up down status logs backup restore compose engine bases images image-dev-gpu image-nginx image-hub image-sshgw image-egress image-prometheus test test-unit test-image bench lock clean-venv

help:
	@echo "make up         build what is missing and start the stack (demo login unless .env sets a provider)"
	@echo "make down       stop the stack; hub data, user volumes and certificates are kept"
	@echo "make status     services and health; user servers with age, GPUs, CPU, memory, home, SSH sessions"
	@echo "make logs       follow the logs of every service"
	@echo "make backup     archive volumes, homes and .env into backups/ (live; BACKUP_DIR=...)"
	@echo "make restore BACKUP=file  put an archive back (stack down; FORCE=1 replaces volumes), then make up"
	@echo "make test       install what is missing, build the images, run every test"
	@echo "make test-unit  the Docker-free tests alone"
	@echo "make images     seed the Debian bases if needed and build the images"
	@echo "make bench      measure images, the stack, the gateway and operations (bench/results)"
	@echo "make lock       re-pin requirements.lock files (with hashes) from requirements.in"

$(VENV)/.installed: tests/requirements.lock
	@bash scripts/ensure-host-tools.sh
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r tests/requirements.lock
	touch $@

engine:
	@bash scripts/ensure-docker.sh

compose: engine
	@bash scripts/ensure-compose.sh

up: compose images
	@bash scripts/up.sh

down: compose
	@bash scripts/down.sh

status: compose
	@python3 scripts/status.py

logs: compose
	docker compose logs --follow --tail 100

backup: compose
	@bash scripts/backup.sh

restore: compose
	@bash scripts/restore.sh

bases: engine
	@bash scripts/seed-base-images.sh

images: image-dev-gpu image-nginx image-hub image-sshgw image-egress image-prometheus

image-dev-gpu: bases
	bash scripts/build-image.sh dev-gpu images/dev-gpu/Dockerfile

image-nginx: bases
	bash scripts/build-image.sh nginx nginx/Dockerfile

image-hub: bases
	bash scripts/build-image.sh hub hub/Dockerfile

image-sshgw: bases
	bash scripts/build-image.sh sshgw gateway/Dockerfile

image-egress: bases
	bash scripts/build-image.sh egress egress/Dockerfile

image-prometheus: bases
	bash scripts/build-image.sh prometheus monitoring/Dockerfile

test: $(VENV)/.installed compose images
	$(PYTEST) tests

test-unit: $(VENV)/.installed
	$(PYTEST) tests/unit

test-image: $(VENV)/.installed images
	$(PYTEST) tests/image

bench: $(VENV)/.installed images
	$(PY) bench/run.py

# Re-resolve every pinned requirements file (needs network access to PyPI): the user image's for its
# CPython 3.9, the hub's, the gateway's, the tests' and compose's for 3.11 (bookworm's). The user
# image leaves out rfc3987-syntax (and lark, which only it needs): jsonschema's optional "iri" format
# checker, which no Jupyter schema uses, builds ~35 Lark parsers on import, about 1 CPU-second of
# every notebook server's start (jsonschema skips the check when it is absent).
lock:
	python3 -m venv .lock-venv && .lock-venv/bin/pip install --quiet uv
	.lock-venv/bin/uv pip compile --quiet --generate-hashes --no-header --python-version 3.9 \
		--python-platform x86_64-manylinux_2_31 --no-emit-package rfc3987-syntax --no-emit-package lark \
		images/dev-gpu/requirements.in -o images/dev-gpu/requirements.lock
	for env in hub gateway tests; do \
		.lock-venv/bin/uv pip compile --quiet --generate-hashes --no-header --python-version 3.11 \
			$$env/requirements.in -o $$env/requirements.lock || exit 1; \
	done
	.lock-venv/bin/uv pip compile --quiet --generate-hashes --no-header --python-version 3.11 \
		scripts/compose.in -o scripts/compose.lock

clean-venv:
	rm -rf $(VENV)
