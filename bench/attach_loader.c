// The anchor for bench/attach.sh: the least a C program must do to match `btfgen attach --count 0`.
// Open each object with libbpf (btf_custom_path when given), load it, attach every raw_tp
// program, open the `events` perf buffer, then exit. No BTF selection, no output formatting.
// Usage: attach_loader [--btf FILE] OBJECT...
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static void on_sample(void *ctx, int cpu, void *data, __u32 size) {}

int main(int argc, char **argv)
{
	const char *btf = NULL;
	int first = 1, attached = 0;

	if (argc > 2 && strcmp(argv[1], "--btf") == 0) {
		btf = argv[2];
		first = 3;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: %s [--btf FILE] OBJECT...\n", argv[0]);
		return 2;
	}
	libbpf_set_print(quiet);
	for (int i = first; i < argc; i++) {
		LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = btf);
		struct bpf_object *obj = bpf_object__open_file(argv[i], &opts);
		struct bpf_program *prog;

		if (!obj || bpf_object__load(obj)) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		bpf_object__for_each_program(prog, obj) {
			const char *sec = bpf_program__section_name(prog);
			const char *tp = strchr(sec, '/');

			if (!tp || !bpf_program__attach_raw_tracepoint(prog, tp + 1)) {
				fprintf(stderr, "%s: attach %s: %s\n", argv[i], sec, strerror(errno));
				return 1;
			}
			attached++;
		}
		int fd = bpf_object__find_map_fd_by_name(obj, "events");
		if (fd < 0 || !perf_buffer__new(fd, 64, on_sample, NULL, NULL, NULL)) {
			fprintf(stderr, "%s: perf buffer: %s\n", argv[i], strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "attached %d programs\n", attached);
	return 0;
}
