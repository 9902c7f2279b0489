#define _GNU_SOURCE
#include "cspawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t btfgen_spawn(const char *path, char *const argv[], int out_fd, int err_fd) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -errno;
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        return -e;
    }
    pid_t parent = getpid();
    // The nice value the process was started with (its main thread's, whose id is the pid): the
    // child gets at least that, whatever the spawning thread's (libdispatch raises its workers').
    errno = 0;
    int process_nice = getpriority(PRIO_PROCESS, (id_t)parent);
    int have_nice = errno == 0;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(report[0]);
        close(report[1]);
        close(null_fd);
        return -e;
    }
    if (pid == 0) {
        // Only async-signal-safe calls from here to execv: the parent has other threads.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int e = 0;
        if (have_nice && getpriority(PRIO_PROCESS, 0) < process_nice) setpriority(PRIO_PROCESS, 0, process_nice);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) e = errno;
        else if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
        if (e == 0 && (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)) e = errno;
        if (e == 0) {
            execv(path, argv);
            e = errno;
        }
        ssize_t unused = write(report[1], &e, sizeof e);
        (void)unused;
        _exit(127);
    }
    close(report[1]);
    close(null_fd);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(report[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof child_errno) {
        // The child could not exec: reap it and report why.
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        return -child_errno;
    }
    return pid;
}

int btfgen_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno; }
