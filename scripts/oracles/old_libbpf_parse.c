// An old libbpf as an oracle: dlopen a libbpf.so.0.x given on the command line, parse each BTF
// file with its btf__parse and print what it saw, one line per file:
//   <file> types=<n> task_struct=<id>      (id -2 when there is no such struct; libbpf's -ENOENT)
//   <file> error=<negative errno>
// Exit status 1 when any file failed to parse. Built by the tests with `cc -o … -ldl`; it runs in
// its own process so the libbpf 1.x the tests link cannot stand in for the old one.
#include <dlfcn.h>
#include <stdio.h>

typedef void *(*parse_fn)(const char *, void **);
typedef long (*error_fn)(const void *);
typedef unsigned (*count_fn)(const void *);
typedef int (*find_fn)(const void *, const char *, unsigned);
typedef void (*free_fn)(void *);

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s LIBBPF_SO BTF...\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!lib) {
        fprintf(stderr, "%s\n", dlerror());
        return 2;
    }
    parse_fn parse = (parse_fn)dlsym(lib, "btf__parse");
    error_fn error = (error_fn)dlsym(lib, "libbpf_get_error");
    count_fn count = (count_fn)dlsym(lib, "btf__get_nr_types");
    find_fn find = (find_fn)dlsym(lib, "btf__find_by_name_kind");
    free_fn release = (free_fn)dlsym(lib, "btf__free");
    if (!parse || !error || !count || !find || !release) {
        fprintf(stderr, "%s lacks the libbpf 0.x BTF API\n", argv[1]);
        return 2;
    }
    int failed = 0;
    for (int i = 2; i < argc; i++) {
        void *btf = parse(argv[i], NULL);
        long err = error(btf);
        if (err) {
            printf("%s error=%ld\n", argv[i], err);
            failed = 1;
            continue;
        }
        printf("%s types=%u task_struct=%d\n", argv[i], count(btf), find(btf, "task_struct", 4 /* BTF_KIND_STRUCT */));
        release(btf);
    }
    return failed;
}
