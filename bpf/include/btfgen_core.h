/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A hand-written stand-in for vmlinux.h: only the kernel types btfgen's programs touch.
 *
 * Every struct carries preserve_access_index, so clang records a CO-RE relocation for each
 * field access and libbpf rewrites the offsets against the target kernel's BTF at load time.
 * The layouts below therefore need not match any real kernel: only the member names and kinds
 * matter. Defining __VMLINUX_H__ tells <bpf/bpf_tracing.h> to use the kernel's pt_regs member
 * names (di, si, …) rather than the user-space ones (rdi, rsi, …) on x86.
 */
#ifndef BTFGEN_CORE_H
#define BTFGEN_CORE_H

#define __VMLINUX_H__ 1

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef int pid_t;
typedef _Bool bool;

enum {
	false = 0,
	true = 1,
};

/* UAPI values (include/uapi/linux/bpf.h); stable ABI, so plain constants. */
enum bpf_map_type {
	BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
};

#define BPF_F_CURRENT_CPU 0xffffffffULL

/* The context of every raw tracepoint program: the tracepoint's arguments as u64s. */
struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#define TASK_COMM_LEN 16

/*
 * The caller's registers as raw_tp/sys_enter sees them (args[0]), one layout per architecture;
 * the Makefile passes -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64, which also picks
 * <bpf/bpf_tracing.h>'s register names. Programs read syscall arguments only through its
 * PT_REGS_PARMn_CORE_SYSCALL macros, never by member name, so one source serves both.
 */
#if defined(__TARGET_ARCH_x86)

/* x86_64 struct pt_regs (arch/x86/include/asm/ptrace.h). */
struct pt_regs {
	unsigned long r15;
	unsigned long r14;
	unsigned long r13;
	unsigned long r12;
	unsigned long bp;
	unsigned long bx;
	unsigned long r11;
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long ax;
	unsigned long cx;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
	unsigned long ip;
	unsigned long cs;
	unsigned long flags;
	unsigned long sp;
	unsigned long ss;
} __attribute__((preserve_access_index));

#elif defined(__TARGET_ARCH_arm64)

/*
 * arm64 (arch/arm64/include/uapi/asm/ptrace.h, asm/ptrace.h). bpf_tracing.h reads argument
 * registers 2..5 as user_pt_regs.regs[n-1] and the first syscall argument as pt_regs.orig_x0:
 * the syscall's return value overwrites x0, orig_x0 keeps the argument.
 */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));

struct pt_regs {
	union {
		struct user_pt_regs user_regs;
		struct {
			__u64 regs[31];
			__u64 sp;
			__u64 pc;
			__u64 pstate;
		};
	};
	__u64 orig_x0;
} __attribute__((preserve_access_index));

#else
#error "btfgen_core.h: build with -D__TARGET_ARCH_x86 or -D__TARGET_ARCH_arm64 (see the Makefile)"
#endif

struct signal_struct {
	short oom_score_adj;
} __attribute__((preserve_access_index));

struct task_struct {
	pid_t pid;
	pid_t tgid;
	char comm[TASK_COMM_LEN];
	struct signal_struct *signal;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

#endif /* BTFGEN_CORE_H */
