// SPDX-License-Identifier: GPL-2.0
// Deeper access paths: arrays of structs, members inside anonymous structs inside unions,
// typedef roots, enum and enumerator flavors, sizes of typedefs.
#include "core_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef unsigned long long u64;

struct rlimit {
	unsigned long rlim_cur;
	unsigned long rlim_max;
} __attribute__((preserve_access_index));

struct signal_struct {
	struct rlimit rlim[16];
} __attribute__((preserve_access_index));

struct qstr {
	union {
		struct {
			__u32 hash;
			__u32 len;
		};
		__u64 hash_len;
	};
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct path {
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
} __attribute__((preserve_access_index));

struct task_struct {
	struct signal_struct *signal;
	int pid;
} __attribute__((preserve_access_index));

/* A typedef no kernel has: no candidates, so FIELD_EXISTS is 0. */
typedef struct task_struct btfgen_task_t;

enum pid_type___flavored { PIDTYPE_PGID___flavored = 2, PIDTYPE_MAX___flavored = 4 };

__u64 nested[16];

SEC("raw_tracepoint/sys_exit")
int core_nested(void *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file *file = (void *)0;
	int i = 0;

	nested[i++] = BPF_CORE_READ(task, signal, rlim[7].rlim_cur);          /* array of structs */
	nested[i++] = bpf_core_field_offset(task->signal->rlim[7].rlim_max);
	nested[i++] = bpf_core_field_size(file->f_path.dentry->d_name.len);     /* anonymous struct in union */
	nested[i++] = bpf_core_field_offset(file->f_path.dentry->d_name.name);
	nested[i++] = bpf_core_field_offset(file->f_path.dentry->d_name.hash_len);
	nested[i++] = bpf_core_field_exists(((btfgen_task_t *)task)->pid);
	nested[i++] = bpf_core_type_size(u64);
	nested[i++] = bpf_core_type_exists(struct dentry);
	nested[i++] = bpf_core_enum_value_exists(enum pid_type___flavored, PIDTYPE_MAX___flavored);
	nested[i++] = bpf_core_enum_value(enum pid_type___flavored, PIDTYPE_PGID___flavored);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
