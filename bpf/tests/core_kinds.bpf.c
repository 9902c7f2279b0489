// SPDX-License-Identifier: GPL-2.0
// Exercises every CO-RE relocation kind clang-14 can emit (TYPE_MATCHES needs clang >= 15 and is
// covered by synthetic relocations in Tests/BTFTests). Local type definitions only: no vmlinux.h.
#include "core_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef int pid_t;

struct list_head {
	struct list_head *next, *prev;
} __attribute__((preserve_access_index));

struct task_struct {
	pid_t pid;
	pid_t tgid;
	char comm[16];
	struct task_struct *real_parent;
	struct list_head children;
	unsigned sched_reset_on_fork : 1;
	unsigned sched_contributes_to_load : 1;
} __attribute__((preserve_access_index));

/* A flavor: same kernel struct, a field no kernel has (FIELD_EXISTS must be 0). */
struct task_struct___nonexistent {
	int no_such_field_in_any_kernel;
	pid_t pid;
} __attribute__((preserve_access_index));

/* Members the kernel keeps inside anonymous unions and structs. */
struct sk_buff {
	struct sk_buff *next;
	unsigned int len;
	__u8 pkt_type : 3;
	__u16 protocol;
} __attribute__((preserve_access_index));

enum pid_type { PIDTYPE_PID, PIDTYPE_TGID, PIDTYPE_PGID, PIDTYPE_SID, PIDTYPE_MAX };

/* An ENUM64 in kernels since 6.0 BTF; clang-14 writes it as a 64-bit ENUM (ENUM == ENUM64). */
enum perf_callchain_context {
	PERF_CONTEXT_HV = (__u64)-32,
	PERF_CONTEXT_KERNEL = (__u64)-128,
	PERF_CONTEXT_USER = (__u64)-512,
};

struct no_such_type_in_any_kernel { int x; };

__u64 results[32];

SEC("raw_tracepoint/sys_enter")
int core_kinds(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct sk_buff *skb = (void *)0;
	int i = 0;

	results[i++] = BPF_CORE_READ(task, pid);                              /* byte_off */
	results[i++] = BPF_CORE_READ(task, real_parent, tgid);                /* byte_off, chained */
	results[i++] = bpf_core_field_size(task->comm);                       /* byte_sz */
	results[i++] = bpf_core_field_exists(task->children);                 /* field_exists */
	results[i++] = bpf_core_field_exists(((struct task_struct___nonexistent *)task)->no_such_field_in_any_kernel);
	results[i++] = __builtin_preserve_field_info(task->pid, BPF_FIELD_SIGNED);                      /* signed */
	results[i++] = BPF_CORE_READ_BITFIELD_PROBED(task, sched_reset_on_fork); /* lshift/rshift/byte_sz/off */
	results[i++] = (__u64)__builtin_preserve_access_index(&task->comm[3]); /* array index */
	results[i++] = bpf_core_type_id_local(struct task_struct);           /* local_type_id */
	results[i++] = bpf_core_type_id_kernel(struct task_struct);          /* target_type_id */
	results[i++] = bpf_core_type_exists(struct task_struct);             /* type_exists */
	results[i++] = bpf_core_type_exists(struct no_such_type_in_any_kernel);
	results[i++] = bpf_core_type_exists(pid_t);                          /* typedef candidate */
	results[i++] = bpf_core_type_size(struct task_struct);               /* type_size */
	results[i++] = bpf_core_type_size(struct list_head);
	results[i++] = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_TGID); /* enumval_exists */
	results[i++] = bpf_core_enum_value(enum pid_type, PIDTYPE_SID);      /* enumval_value */
	results[i++] = bpf_core_enum_value_exists(enum perf_callchain_context, PERF_CONTEXT_KERNEL);
	results[i++] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_USER);
	results[i++] = bpf_core_field_exists(skb->protocol);
	if (bpf_core_field_exists(skb->len)) {
		results[i++] = bpf_core_field_offset(skb->len);
		results[i++] = bpf_core_field_offset(skb->next);
	}
	results[i++] = bpf_core_field_size(skb->pkt_type);
	results[i++] = bpf_core_field_offset(skb->pkt_type);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
