// Starting a helper tool that cannot outlive btfgen.
#ifndef BTFGEN_CSPAWN_H
#define BTFGEN_CSPAWN_H

#include <sys/types.h>

/// fork + execv `path` with `argv` (NULL-terminated) and the current environment. The child's
/// stdin is /dev/null and its stdout and stderr are `out_fd` and `err_fd`; it gets SIGKILL when
/// the thread that started it dies (PR_SET_PDEATHSIG), so a killed btfgen leaves no pahole behind
/// still writing into the catalog's scratch or holding a gigabyte of memory. Returns the child's
/// pid, or -errno when it could not be started (execv's errno is reported back through a pipe).
pid_t btfgen_spawn(const char *path, char *const argv[], int out_fd, int err_fd);

/// pipe2(fds, O_CLOEXEC): a pipe no other child inherits. Returns 0 or -errno.
int btfgen_pipe(int fds[2]);

#endif
