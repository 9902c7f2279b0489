// SPDX-License-Identifier: GPL-2.0
/*
 * raw_tp/sys_enter filtered to unlinkat(int dfd, const char *pathname, int flag) on x86_64:
 * args[0] is the caller's struct pt_regs *, args[1] the syscall number. The pt_regs pointer is
 * not a context pointer, so its registers are read with bpf_probe_read (PT_REGS_PARM2_CORE);
 * a plain PT_REGS_PARM2 dereference fails the verifier.
 */
#include "btfgen_common.h"

#define NR_UNLINKAT_X86_64 263

SEC("raw_tp/sys_enter")
int sys_enter_unlinkat(struct bpf_raw_tracepoint_args *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = (long)ctx->args[1];
	struct btfgen_event e = {};
	const char *pathname;

	if (nr != NR_UNLINKAT_X86_64)
		return 0;
	e.kind = BTFGEN_EVENT_UNLINKAT;
	fill_task(&e, (struct task_struct *)bpf_get_current_task());
	e.syscall_nr = nr;
	pathname = (const char *)PT_REGS_PARM2_CORE(regs);
	bpf_probe_read_user_str(&e.path, sizeof(e.path), pathname);
	send(ctx, &e);
	return 0;
}
