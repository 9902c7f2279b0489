// SPDX-License-Identifier: GPL-2.0
/*
 * raw_tp/sched_process_exec — trace_sched_process_exec(struct task_struct *p, pid_t old_pid,
 * struct linux_binprm *bprm): args[0] the task, args[2] the binprm whose filename was exec'd.
 */
#include "btfgen_common.h"

SEC("raw_tp/sched_process_exec")
int sched_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct btfgen_event e = {};

	e.kind = BTFGEN_EVENT_EXEC;
	fill_task(&e, task);
	bpf_probe_read_kernel_str(&e.path, sizeof(e.path), BPF_CORE_READ(bprm, filename));
	send(ctx, &e);
	return 0;
}
