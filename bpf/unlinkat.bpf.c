// SPDX-License-Identifier: GPL-2.0
/*
 * raw_tp/sys_enter filtered to unlinkat(int dfd, const char *pathname, int flag): args[0] is the
 * caller's struct pt_regs *, args[1] the syscall number, on x86_64 and arm64 alike. The pt_regs
 * pointer is not a context pointer, so its registers are read with bpf_probe_read through CO-RE
 * (PT_REGS_PARM2_CORE_SYSCALL: pt_regs.si on x86_64, user_pt_regs.regs[1] on arm64); a plain
 * PT_REGS_PARM2 dereference fails the verifier.
 *
 * The syscall number is the target architecture's own (263 on x86_64, 35 on arm64's
 * asm-generic table): <asm/unistd.h> comes from that architecture's uapi headers, which the
 * Makefile puts first on the include path.
 */
#include "btfgen_common.h"
#include <asm/unistd.h>

SEC("raw_tp/sys_enter")
int sys_enter_unlinkat(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = (long)ctx->args[1];
	struct btfgen_event e = {};
	const char *pathname;

	if (nr != __NR_unlinkat)
		return 0;
	e.kind = BTFGEN_EVENT_UNLINKAT;
	fill_task(&e, (struct task_struct *)bpf_get_current_task());
	e.syscall_nr = nr;
	pathname = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
	bpf_probe_read_user_str(&e.path, sizeof(e.path), pathname);
	send(ctx, &e);
	return 0;
}
