/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one record every btfgen program sends through the `events` perf event array.
 *
 * The layout is a wire format shared with the Swift loader (Sources/Loader/TraceEvent.swift),
 * which decodes it by these offsets; the static asserts keep both sides honest.
 *
 *   0        4        8        12       16       20       24
 *   +--------+--------+--------+--------+--------+--------+
 *   | kind   | pid    | tid    | hpid   | htid   | oom    |      u32 u32 u32 u32 u32 s32
 *   +--------+--------+--------+--------+--------+--------+
 *   24: s64 syscall (or -1)   32: comm[16]   48: new_comm[16]   64: path[256]   320: end
 *
 * pid/tid come from task_struct through CO-RE (they are only right with the right BTF);
 * hpid/htid come from bpf_get_current_pid_tgid(), which needs no BTF at all. For events about
 * the current task the two must agree, which lets the loader catch a mismatched BTF at run time.
 */
#ifndef BTFGEN_EVENT_H
#define BTFGEN_EVENT_H

#define BTFGEN_PATH_LEN 256
#define BTFGEN_COMM_LEN 16

enum btfgen_event_kind {
	BTFGEN_EVENT_RENAME = 1, /* raw_tp/task_rename */
	BTFGEN_EVENT_UNLINKAT = 2, /* raw_tp/sys_enter, unlinkat only */
	BTFGEN_EVENT_EXEC = 3, /* raw_tp/sched_process_exec */
};

struct btfgen_event {
	__u32 kind;
	__u32 pid; /* task->tgid, read through CO-RE */
	__u32 tid; /* task->pid, read through CO-RE */
	__u32 helper_pid; /* bpf_get_current_pid_tgid() >> 32 */
	__u32 helper_tid; /* bpf_get_current_pid_tgid() & 0xffffffff */
	__s32 oom_score_adj; /* task->signal->oom_score_adj (rename only) */
	__s64 syscall_nr; /* args[1] of sys_enter, else -1 */
	char comm[BTFGEN_COMM_LEN]; /* task->comm: the old name for a rename */
	char new_comm[BTFGEN_COMM_LEN]; /* rename: the new name */
	char path[BTFGEN_PATH_LEN]; /* unlinkat: pathname; exec: bprm->filename */
};

_Static_assert(__builtin_offsetof(struct btfgen_event, syscall_nr) == 24, "event layout");
_Static_assert(__builtin_offsetof(struct btfgen_event, comm) == 32, "event layout");
_Static_assert(__builtin_offsetof(struct btfgen_event, new_comm) == 48, "event layout");
_Static_assert(__builtin_offsetof(struct btfgen_event, path) == 64, "event layout");
_Static_assert(sizeof(struct btfgen_event) == 320, "event layout");

#endif /* BTFGEN_EVENT_H */
