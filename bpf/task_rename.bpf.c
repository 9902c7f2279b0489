// SPDX-License-Identifier: GPL-2.0
/*
 * raw_tp/task_rename — void __set_task_comm(struct task_struct *tsk, const char *buf, bool exec):
 * args[0] is the task being renamed, args[1] its new name (a kernel buffer).
 */
#include "btfgen_common.h"

SEC("raw_tp/task_rename")
int task_rename(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct btfgen_event e = {};

	e.kind = BTFGEN_EVENT_RENAME;
	fill_task(&e, task);
	e.oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
	bpf_probe_read_kernel_str(&e.new_comm, sizeof(e.new_comm), (const void *)ctx->args[1]);
	send(ctx, &e);
	return 0;
}
