/* A tiny stand-in for a debuginfo vmlinux: an ELF with DWARF (gcc -g), a GNU build-id, a
 * `Linux version …` banner in .rodata, and a task_struct for BTF validation to find.
 * BuildTests compile it with -DRELEASE='"…"', optionally -DUTS_VERSION='"…"', and -DVARIANT=n to
 * get distinct build-ids. */
#ifndef RELEASE
#define RELEASE "4.18.0-test"
#endif
#ifndef VARIANT
#define VARIANT 0
#endif

struct signal_struct {
    int nr_threads;
    short oom_score_adj;
};

struct list_head {
    struct list_head *next, *prev;
};

struct task_struct {
    volatile long state;
    unsigned int flags : 8;
    unsigned int in_execve : 1;
    int prio;
    struct list_head tasks;
    int pid;
    int tgid;
    struct task_struct *parent;
    struct signal_struct *signal;
    char comm[16];
    unsigned long variant[VARIANT + 1];
};

enum pid_type { PIDTYPE_PID, PIDTYPE_TGID, PIDTYPE_PGID, PIDTYPE_SID, PIDTYPE_MAX };

#ifndef UTS_VERSION
#define UTS_VERSION "#1 SMP PREEMPT_DYNAMIC Mon Nov 23 11:00:00 UTC 2026"
#endif
const char linux_banner[] =
    "Linux version " RELEASE " (builder@example) (gcc (GCC) 12.2.0, GNU ld 2.40) " UTS_VERSION "\n";

struct task_struct init_task = { .pid = 0, .comm = "swapper" };

int task_pid(struct task_struct *t, enum pid_type type)
{
    return type == PIDTYPE_PID ? t->pid : t->tgid + t->signal->oom_score_adj;
}

int main(void)
{
    return task_pid(&init_task, PIDTYPE_PID) + (int)sizeof(linux_banner);
}
