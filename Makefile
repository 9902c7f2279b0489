# btfgen — top-level tasks. `make setup` installs what a fresh Debian 12 machine needs,
# `make demo` builds Debian's real debuginfo kernel into kernels/, `make test` runs every test.
SWIFT       ?= swift
CLANG       ?= $(firstword $(wildcard /usr/bin/clang-14) clang)
CONFIG      ?= release
BPF_CFLAGS  ?= -target bpf -g -O2 -Wall -Werror -D__TARGET_ARCH_x86 -Ibpf/include
BPF_SRCS    := $(wildcard bpf/*.bpf.c bpf/tests/*.bpf.c bpf/attach-tests/*.bpf.c)
BPF_OBJS    := $(BPF_SRCS:.bpf.c=.bpf.o)
BPF_HDRS    := $(wildcard bpf/include/*.h bpf/tests/*.h)
BTFGEN      := .build/$(CONFIG)/btfgen

.PHONY: all setup build bpf demo test lint clean install
PREFIX      ?= /usr/local
all: build bpf

setup:
	bash scripts/setup.sh

build:
	$(SWIFT) build -c $(CONFIG) --product btfgen

bpf: $(BPF_OBJS)

%.bpf.o: %.bpf.c $(BPF_HDRS)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# Both scripts install what they need first (scripts/setup.sh), so they work on a fresh machine.
demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# The binary and the default BPF objects where `btfgen attach` looks (<bindir>/../share/btfgen/bpf).
install: build bpf
	install -D -m 755 $(BTFGEN) $(DESTDIR)$(PREFIX)/bin/btfgen
	install -d $(DESTDIR)$(PREFIX)/share/btfgen/bpf
	install -m 644 bpf/*.bpf.o $(DESTDIR)$(PREFIX)/share/btfgen/bpf/

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

clean:
	rm -f $(BPF_OBJS)
	rm -rf .build
