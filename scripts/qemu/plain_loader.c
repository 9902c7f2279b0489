// A libbpf program that knows nothing about btfgen and does no BTF selection. Without --btf,
// libbpf looks for kernel BTF by itself (/sys/kernel/btf/vmlinux, /boot/vmlinux-$(uname -r), …),
// so on a kernel without BTF it works only after `btfgen install`; with --btf FILE the file is
// libbpf's btf_custom_path, as a team's own loader uses `btfgen resolve --extract FILE`. It loads
// the objects, attaches every raw_tp program, prints each event as one JSON line (same fields as
// `btfgen attach --json`) and stops on SIGTERM/SIGINT.
// Usage: plain_loader [--btf FILE] OBJECT...
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/types.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "btfgen_event.h"

#define MAX_OBJECTS 8

static volatile sig_atomic_t stopping;

static void on_signal(int sig) { stopping = 1; }

static int warnings_only(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static void json_string(const char *key, const char *s, size_t max)
{
	printf(",\"%s\":\"", key);
	for (size_t i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	const struct btfgen_event *e = data;
	static const char *kinds[] = { "?", "rename", "unlinkat", "exec" };

	if (size < sizeof(*e))
		return;
	printf("{\"kind\":\"%s\",\"pid\":%u,\"tid\":%u,\"helper_pid\":%u,\"helper_tid\":%u,\"oom_score_adj\":%d,"
	       "\"syscall\":%lld",
	       e->kind <= 3 ? kinds[e->kind] : "?", e->pid, e->tid, e->helper_pid, e->helper_tid, e->oom_score_adj,
	       (long long)e->syscall_nr);
	json_string("comm", e->comm, sizeof(e->comm));
	json_string("new_comm", e->new_comm, sizeof(e->new_comm));
	json_string("path", e->path, sizeof(e->path));
	printf("}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct perf_buffer *buffers[MAX_OBJECTS];
	int count = 0, attached = 0, first = 1;
	LIBBPF_OPTS(bpf_object_open_opts, opts);

	if (argc > 2 && strcmp(argv[1], "--btf") == 0) {
		opts.btf_custom_path = argv[2];
		first = 3;
	}
	if (argc - first < 1 || argc - first > MAX_OBJECTS) {
		fprintf(stderr, "usage: %s [--btf FILE] OBJECT... (at most %d)\n", argv[0], MAX_OBJECTS);
		return 2;
	}
	libbpf_set_print(warnings_only);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	for (int i = first; i < argc; i++) {
		struct bpf_object *obj = bpf_object__open_file(argv[i], &opts);
		struct bpf_program *prog;

		if (!obj || bpf_object__load(obj)) {
			fprintf(stderr, "plain_loader: %s: load failed: %s\n", argv[i], strerror(errno));
			return 1;
		}
		bpf_object__for_each_program(prog, obj) {
			const char *sec = bpf_program__section_name(prog);
			const char *tp = strchr(sec, '/');

			if (!tp || !bpf_program__attach_raw_tracepoint(prog, tp + 1)) {
				fprintf(stderr, "plain_loader: %s: attach %s: %s\n", argv[i], sec, strerror(errno));
				return 1;
			}
			attached++;
		}
		int fd = bpf_object__find_map_fd_by_name(obj, "events");
		buffers[count] = fd < 0 ? NULL : perf_buffer__new(fd, 64, on_sample, NULL, NULL, NULL);
		if (!buffers[count]) {
			fprintf(stderr, "plain_loader: %s: perf buffer: %s\n", argv[i], strerror(errno));
			return 1;
		}
		count++;
	}
	fprintf(stderr, "plain_loader: attached %d programs\n", attached);
	while (!stopping)
		for (int i = 0; i < count; i++)
			perf_buffer__poll(buffers[i], 50);
	for (int i = 0; i < count; i++)
		perf_buffer__consume(buffers[i]);
	fprintf(stderr, "plain_loader: stopped\n");
	return 0;
}
