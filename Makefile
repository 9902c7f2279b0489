# btfgen — top-level tasks. `make setup` installs what a fresh Debian 12 machine needs,
# `make demo` builds Debian's real debuginfo kernel into kernels/, `make test` runs every test.
SWIFT       ?= swift
CLANG       ?= $(firstword $(wildcard /usr/bin/clang-14) clang)
CONFIG      ?= release
BPF_CFLAGS  ?= -target bpf -g -O2 -Wall -Werror -Ibpf/include
BPF_PROGS   := $(wildcard bpf/*.bpf.c)
BPF_TESTS   := $(wildcard bpf/tests/*.bpf.c bpf/attach-tests/*.bpf.c)
BPF_HDRS    := $(wildcard bpf/include/*.h bpf/tests/*.h)
BTFGEN      := .build/$(CONFIG)/btfgen

# The programs are built once per architecture into bpf/<arch>/, <arch> spelled as btfgen records
# it (BTFHub's x86_64, arm64: Sources/Kernel/KernelIdentity.swift KernelArch is the Swift side of
# this table). Per architecture: bpf_tracing.h's __TARGET_ARCH_ name, and the uapi headers that
# hold its <asm/unistd.h> syscall numbers (linux-libc-dev for x86_64,
# linux-libc-dev-arm64-cross for arm64; scripts/setup.sh installs both).
BPF_ARCHS          := x86_64 arm64
BPF_TARGET_x86_64  := x86
BPF_ASM_x86_64     := /usr/include/x86_64-linux-gnu
BPF_TARGET_arm64   := arm64
BPF_ASM_arm64      := /usr/aarch64-linux-gnu/include
# This machine's architecture: bpf/*.bpf.o are its objects (what the tests and `make install` use).
HOST_ARCH   := $(patsubst aarch64,arm64,$(shell uname -m))
bpf_flags    = $(BPF_CFLAGS) -D__TARGET_ARCH_$(BPF_TARGET_$(1)) -isystem $(BPF_ASM_$(1))
BPF_ARCH_OBJS := $(foreach a,$(BPF_ARCHS),$(patsubst bpf/%.bpf.c,bpf/$(a)/%.bpf.o,$(BPF_PROGS)))
BPF_OBJS    := $(BPF_PROGS:.bpf.c=.bpf.o) $(BPF_TESTS:.bpf.c=.bpf.o) $(BPF_ARCH_OBJS)

.PHONY: all setup build bpf demo test lint format clean install
PREFIX      ?= /usr/local
all: build bpf

setup:
	bash scripts/setup.sh

build:
	$(SWIFT) build -c $(CONFIG) --product btfgen

bpf: $(BPF_OBJS)

define bpf_arch_rule
bpf/$(1)/%.bpf.o: bpf/%.bpf.c $$(BPF_HDRS)
	@mkdir -p $$(@D)
	$$(CLANG) $$(call bpf_flags,$(1)) -c $$< -o $$@
endef
$(foreach a,$(BPF_ARCHS),$(eval $(call bpf_arch_rule,$(a))))

# The host's objects at the top of bpf/ are copies, byte for byte, of bpf/$(HOST_ARCH)/.
$(BPF_PROGS:.bpf.c=.bpf.o): bpf/%.bpf.o: bpf/$(HOST_ARCH)/%.bpf.o
	cp $< $@

# The CO-RE engine's test objects read no registers: one build, for the host.
$(BPF_TESTS:.bpf.c=.bpf.o): %.bpf.o: %.bpf.c $(BPF_HDRS)
	$(CLANG) $(call bpf_flags,$(HOST_ARCH)) -c $< -o $@

# Both scripts install what they need first (scripts/setup.sh), so they work on a fresh machine.
demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# The binary and the default BPF objects where `btfgen attach` looks (<bindir>/../share/btfgen/bpf):
# those of the architecture this runs on.
install: build bpf
	install -D -m 755 $(BTFGEN) $(DESTDIR)$(PREFIX)/bin/btfgen
	install -d $(DESTDIR)$(PREFIX)/share/btfgen/bpf
	install -m 644 bpf/$(HOST_ARCH)/*.bpf.o $(DESTDIR)$(PREFIX)/share/btfgen/bpf/
# Every architecture's too, in <arch>/, which attach prefers on a machine of that architecture:
# one image tree can then serve x86_64 and arm64.
	for a in $(BPF_ARCHS); do \
	    install -d $(DESTDIR)$(PREFIX)/share/btfgen/bpf/$$a && \
	    install -m 644 bpf/$$a/*.bpf.o $(DESTDIR)$(PREFIX)/share/btfgen/bpf/$$a/ || exit 1; \
	done

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift bench/btf-bench

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Package.swift bench/btf-bench

clean:
	rm -f $(BPF_OBJS)
	rm -rf $(addprefix bpf/,$(BPF_ARCHS))
	rm -rf .build
