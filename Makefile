# VirtStudio: `make run` starts the app, `make test` runs the whole suite.
# Both install what they need first (Debian packages as root, then .venv).

SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
# The kernel lab boots Debian's kernel (it has device-mapper and 802.1Q, this host's lacks them).
KERNEL ?= $(lastword $(sort $(wildcard /boot/vmlinuz-*)))

.PHONY: run test test-kernel-lab deb test-package dist setup lint bench bench-inventory bench-sandbox bench-console bench-storage screenshot demo clean

setup:
	@packaging/dev/setup-host

run: setup
	@packaging/dev/start-libvirtd
	@if [ -z "$${DISPLAY:-}$${WAYLAND_DISPLAY:-}" ]; then \
	  echo "No graphical display (DISPLAY is not set): running VirtStudio on a virtual X display."; \
	  echo "Set DISPLAY to see the window, or use 'make screenshot' to get a picture of it."; \
	  xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m virtstudio $(ARGS); \
	else \
	  $(PY) -m virtstudio $(ARGS); \
	fi

demo: setup
	$(PY) -m virtstudio --demo

lint: setup
	.venv/bin/ruff check virtstudio tests bench

# Lint, host tests and kernel lab all run even when an earlier one failed, so one failure
# never hides the other results; the target fails if any of them did.
test: setup
	@packaging/dev/start-libvirtd
	@packaging/dev/fetch-network-manager
	@lint=0; host=0; lab=0; \
	.venv/bin/ruff check virtstudio tests bench || lint=$$?; \
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -ra $(PYTEST_ARGS) || host=$$?; \
	if [ $$host -eq 5 ]; then echo "pytest collected no tests: failing"; fi; \
	$(MAKE) --no-print-directory test-kernel-lab || lab=$$?; \
	word() { if [ "$$1" -eq 0 ]; then echo passed; else echo "FAILED ($$1)"; fi; }; \
	echo "make test: lint $$(word $$lint), host tests $$(word $$host)," \
	  "kernel lab $$(word $$lab)"; \
	[ $$lint -eq 0 ] && [ $$host -eq 0 ] && [ $$lab -eq 0 ]

# Tests marked kernel_lab, inside a VM booted from this machine's own filesystem.
test-kernel-lab: setup
	@if [ -z "$(KERNEL)" ]; then echo "No kernel in /boot: install linux-image-amd64."; exit 1; fi
	@echo "Kernel lab: booting $(KERNEL) under QEMU (TCG) for the kernel_lab tests"
	@# QEMU reopens the output files and would truncate a redirected log: pass it a pipe.
	@set -o pipefail; PATH=$(CURDIR)/.venv/bin:$$PATH vng --run $(KERNEL) --disable-kvm \
	  --memory 2G --cpus 2 --rw -- "cd $(CURDIR) && QT_QPA_PLATFORM=offscreen \
	  .venv/bin/python -m pytest -m kernel_lab -p no:cacheprovider -ra tests" 2>&1 | cat; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "kernel lab collected no tests: failing"; exit 1; fi; \
	exit $$rc

# The Debian package, built with debhelper and checked with lintian: dist/virtstudio_*.deb
deb:
	@packaging/deb/build-deb

# Builds the package, installs it with apt into a clean Debian 12 root (cached in
# .cache/test-package) and runs it there as an ordinary user; then purges it.
test-package:
	@packaging/test-package/run

# sdist and wheel in dist/, checked with twine and installed with pipx (tools in .cache/).
dist:
	@packaging/pypi/check-dist

bench: bench-inventory bench-sandbox bench-console bench-storage

bench-inventory: setup
	QT_QPA_PLATFORM=offscreen $(PY) -m bench.inventory

bench-sandbox: setup
	$(PY) -m bench.sandbox

bench-storage: setup
	$(PY) -m bench.storage

bench-console: setup
	@packaging/dev/start-libvirtd
	QT_QPA_PLATFORM=offscreen $(PY) -m bench.console

screenshot: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m virtstudio --demo --screenshot docs/screenshot.png

clean:
	rm -rf .venv .pytest_cache build dist *.egg-info
