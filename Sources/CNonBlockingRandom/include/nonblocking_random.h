// Random bytes that never wait for the kernel's CRNG to be initialized.
#ifndef BTFGEN_NONBLOCKING_RANDOM_H
#define BTFGEN_NONBLOCKING_RANDOM_H

#include <stddef.h>
#include <sys/types.h>

/// getrandom(2) as its callers expect it, except that it never sleeps waiting for entropy: the
/// kernel is asked with GRND_NONBLOCK, and when the caller did not ask for GRND_NONBLOCK itself
/// and the kernel answers EAGAIN (its CRNG is not initialized yet) or ENOSYS (before 3.17), the
/// bytes come from /dev/urandom, which never blocks. Returns the number of bytes written (possibly
/// fewer than `length`, as getrandom may), or -1 with errno set (EINTR included).
ssize_t btfgen_getrandom(void *buffer, size_t length, unsigned int flags);

#endif
