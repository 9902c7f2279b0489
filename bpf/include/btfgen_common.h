/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every btfgen program shares: the headers, the license, the `events` perf event array and
 * the fill-in of the task fields. Written for 4.18-class kernels: no global data (.bss/.data/
 * .rodata need 5.2), no ring buffer (5.8), no loops (5.3).
 */
#ifndef BTFGEN_COMMON_H
#define BTFGEN_COMMON_H

#include "btfgen_core.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "btfgen_event.h"

char LICENSE[] SEC("license") = "GPL";

/* max_entries 0: libbpf sizes a perf event array to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

/* pid/tid/comm of `task` through CO-RE, and the helper's view of the current task beside them. */
static __always_inline void fill_task(struct btfgen_event *e, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();

	e->helper_pid = id >> 32;
	e->helper_tid = (__u32)id;
	e->pid = BPF_CORE_READ(task, tgid);
	e->tid = BPF_CORE_READ(task, pid);
	e->syscall_nr = -1;
	bpf_core_read(&e->comm, sizeof(e->comm), &task->comm);
}

static __always_inline void send(void *ctx, struct btfgen_event *e)
{
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, sizeof(*e));
}

#endif /* BTFGEN_COMMON_H */
