# Thin wrapper around Meson so the README's commands stay short.
#   make demo         install deps, build, run the demo (scripts/demo.sh)
#   make check        install deps, build, run the test suite
#   make check-slow   the long tests too (full crash sweeps, long fault runs)
#   make check-valgrind
#   make bench        run the benchmarks (bench/README.md)
# Variables: BUILDDIR (default build), SANITIZE=1 (ASan+UBSan),
# WERROR=1 (-Werror), MESONFLAGS (extra meson setup options).
BUILDDIR ?= build
SANITIZE ?= 0
WERROR ?= 0
MESONFLAGS ?=

setup_flags := $(MESONFLAGS)
ifeq ($(SANITIZE),1)
setup_flags += -Db_sanitize=address,undefined -Db_lundef=false
endif
ifeq ($(WERROR),1)
setup_flags += -Dwerror=true
endif

.PHONY: all deps deps-build build demo check check-slow check-valgrind bench clean

all: build

deps:
	@./scripts/install-deps.sh test

deps-build:
	@./scripts/install-deps.sh build

$(BUILDDIR)/build.ninja:
	meson setup $(BUILDDIR) $(setup_flags)

build: deps-build $(BUILDDIR)/build.ninja
	ninja -C $(BUILDDIR)

demo: deps build
	./scripts/demo.sh $(BUILDDIR)

check: deps build
	meson test -C $(BUILDDIR) --no-suite slow --print-errorlogs --num-processes 2

check-slow: deps build
	meson test -C $(BUILDDIR) --print-errorlogs --num-processes 2

check-valgrind: deps build
	meson test -C $(BUILDDIR) --setup valgrind --no-suite slow --no-suite vm --print-errorlogs

bench: deps build
	./bench/run-all.sh $(BUILDDIR)

clean:
	rm -rf $(BUILDDIR)
