// crng-not-ready SECONDS PROGRAM [ARG...]   (cc -O2 -o crng-not-ready crng-not-ready.c; the
// tests in Tests/LoaderTests/EntropyTests.swift build it so)
//
// Runs PROGRAM the way a kernel before 5.4 runs it at early boot, before its CRNG is initialized
// (a fresh VM without virtio-rng): getrandom(2) with GRND_NONBLOCK fails with EAGAIN, and
// getrandom without it sleeps. Such a kernel sleeps until enough entropy arrived (minutes); this
// one until PROGRAM is killed after SECONDS. /dev/urandom is read as usual, as on those kernels.
//
// A seccomp filter does the sorting, since only it can look at getrandom's flags before the call
// runs: non-blocking calls get EAGAIN from the filter, the others are handed to this process
// through a seccomp user-notification listener, which never answers them. Each held call is
// reported on stderr as `crng-not-ready: blocked getrandom(len, flags) in pid N (EXE)`.
//
// Exit status: PROGRAM's own (128+signal when a signal ended it), or 124 when it was still
// running after SECONDS and was killed with its whole process group, like timeout(1).
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "crng-not-ready knows x86_64 and aarch64"
#endif

static int install_filter(void) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getrandom, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        // flags is an unsigned int: the low half of args[2] (both architectures are little-endian).
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, GRND_NONBLOCK, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAGAIN),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void report(int listener) {
    struct seccomp_notif_sizes sizes;
    if (syscall(__NR_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return;
    struct seccomp_notif *notification = calloc(1, sizes.seccomp_notif);
    if (notification == NULL) return;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, notification) == 0) {
        char link[64], exe[PATH_MAX] = "?";
        snprintf(link, sizeof link, "/proc/%u/exe", notification->pid);
        ssize_t n = readlink(link, exe, sizeof exe - 1);
        if (n > 0) exe[n] = 0;
        // Never answered: the call stays asleep, as it would on the old kernel.
        fprintf(stderr, "crng-not-ready: blocked getrandom(%llu, 0x%llx) in pid %u (%s)\n",
                (unsigned long long)notification->data.args[1],
                (unsigned long long)notification->data.args[2], notification->pid, exe);
    }
    free(notification);
}

int main(int argc, char **argv) {
    char *end = NULL;
    double seconds = argc > 2 ? strtod(argv[1], &end) : 0;
    if (argc < 3 || end == argv[1] || *end != 0 || seconds <= 0) {
        fprintf(stderr, "usage: crng-not-ready SECONDS PROGRAM [ARG...]\n");
        return 2;
    }
    // The filter is inherited across fork and exec; this process itself calls no getrandom.
    int listener = install_filter();
    if (listener < 0) {
        fprintf(stderr, "crng-not-ready: cannot install the seccomp filter: %s\n", strerror(errno));
        return 125;
    }
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "crng-not-ready: fork: %s\n", strerror(errno));
        return 125;
    }
    if (child == 0) {
        close(listener);
        setpgid(0, 0);  // so a timeout can end PROGRAM and everything it started
        execvp(argv[2], argv + 2);
        fprintf(stderr, "crng-not-ready: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    setpgid(child, child);
    double deadline = now() + seconds;
    for (;;) {
        int status;
        pid_t done = waitpid(child, &status, WNOHANG);
        if (done == child) {
            if (WIFEXITED(status)) return WEXITSTATUS(status);
            return 128 + WTERMSIG(status);
        }
        if (now() >= deadline) {
            fprintf(stderr, "crng-not-ready: %s still running after %g s: killed\n", argv[2], seconds);
            kill(-child, SIGKILL);
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            return 124;
        }
        struct pollfd p = {.fd = listener, .events = POLLIN};
        if (poll(&p, 1, 50) > 0 && (p.revents & POLLIN)) report(listener);
    }
}
