// SPDX-License-Identifier: GPL-2.0
// ___flavor types and fields that moved between kernels: task_struct->state became __state in 5.14.
#include "core_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	unsigned int __state;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

struct mm_struct___flavored {
	unsigned long total_vm;
	unsigned long start_stack;
} __attribute__((preserve_access_index));

__u64 out[8];

SEC("raw_tracepoint/sched_switch")
int core_flavors(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct mm_struct___flavored *mm;

	if (bpf_core_field_exists(t->__state))
		out[0] = BPF_CORE_READ(t, __state);
	else
		out[0] = BPF_CORE_READ((struct task_struct___pre514 *)t, state);
	mm = (void *)BPF_CORE_READ(t, mm);
	out[1] = BPF_CORE_READ(mm, total_vm);
	out[2] = bpf_core_type_size(struct mm_struct___flavored);
	out[3] = bpf_core_field_offset(mm->start_stack);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
