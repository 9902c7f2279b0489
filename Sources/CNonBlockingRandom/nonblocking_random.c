// btfgen must start at once on a freshly booted VM, which is exactly when an agent runs it. On
// kernels before 5.4 the CRNG has no jitter fallback: getrandom(2) without GRND_NONBLOCK sleeps
// until enough entropy arrived, which without a virtio-rng device can take minutes. The Swift
// runtime seeds its hash tables before main with syscall(SYS_getrandom, buf, 8, 0), so every btfgen
// command, even --version, would wait with it.
//
// This file defines, in the executable, every entry point through which code in btfgen's process
// asks the kernel for random bytes, so all of them resolve here rather than to glibc:
//
//   syscall(SYS_getrandom, …)   the Swift runtime (swift_stdlib_random): its hash seed,
//                               SystemRandomNumberGenerator, FoundationEssentials
//   getrandom, getentropy       glibc's wrappers (getentropy also waits)
//   arc4random, _buf, _uniform  glibc ≥ 2.36; libarchive and libstdc++ import them
//
// Definitions in the executable win over libc's both when the Swift runtime is linked statically
// (the linker resolves libswiftCore.a's references to them) and when it is a shared library (the
// executable exports them because the libraries it links reference them, and the dynamic linker
// binds the libraries' PLT entries to the executable first). Every other syscall() is forwarded
// untouched to libc's.
//
// Bytes read from /dev/urandom before the CRNG is initialized are weaker than getrandom's later
// ones; btfgen uses randomness only for hash seeds and scratch names, never for secrets, so not
// waiting is the right trade.
#define _GNU_SOURCE
#include "nonblocking_random.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef long (*syscall_function)(long, ...);

/// libc's own syscall(), found once: ours shadows it for every caller, including this file.
static syscall_function libc_syscall(void) {
    static _Atomic(syscall_function) found = NULL;
    syscall_function f = atomic_load_explicit(&found, memory_order_acquire);
    if (f == NULL) {
        f = (syscall_function)dlsym(RTLD_NEXT, "syscall");
        if (f == NULL) {
            // Without libc's syscall() nothing in the process can talk to the kernel.
            static const char message[] = "btfgen: internal error: libc has no syscall()\n";
            (void)!write(STDERR_FILENO, message, sizeof message - 1);
            abort();
        }
        atomic_store_explicit(&found, f, memory_order_release);
    }
    return f;
}

/// One read of /dev/urandom, with getrandom's return convention.
static ssize_t read_urandom(void *buffer, size_t length) {
    int fd;
    do { fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) return -1;
    ssize_t n;
    do { n = read(fd, buffer, length); } while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    errno = saved;
    return n;
}

// GRND_RANDOM callers are treated alike: its pool can run dry and block even after boot.
ssize_t btfgen_getrandom(void *buffer, size_t length, unsigned int flags) {
    long n = libc_syscall()(SYS_getrandom, buffer, length, flags | GRND_NONBLOCK);
    if (n >= 0 || (flags & GRND_NONBLOCK) != 0) return (ssize_t)n;  // a non-blocking caller handles EAGAIN itself
    if (errno != EAGAIN && errno != ENOSYS) return -1;
    int why = errno;
    ssize_t r = read_urandom(buffer, length);
    if (r >= 0) return r;
    // No /dev/urandom (a bare chroot) and the CRNG not ready: waiting is the only way left to
    // give the caller what it asked for; failing would crash the Swift runtime before main.
    if (why == EAGAIN) return (ssize_t)libc_syscall()(SYS_getrandom, buffer, length, flags);
    errno = why;
    return -1;
}

/// Fill all of `buffer`, retrying short reads and EINTR; 0 or -1 with errno.
static int fill(void *buffer, size_t length) {
    unsigned char *p = buffer;
    while (length > 0) {
        ssize_t n = btfgen_getrandom(p, length, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) {  // neither source ever does this; do not spin on it
            errno = EIO;
            return -1;
        }
        p += n;
        length -= (size_t)n;
    }
    return 0;
}

long syscall(long number, ...) {
    // glibc's syscall() passes on six argument registers whatever the caller put there; so do we.
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_getrandom) return btfgen_getrandom((void *)a[0], (size_t)a[1], (unsigned int)a[2]);
    return libc_syscall()(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

ssize_t getrandom(void *buffer, size_t length, unsigned int flags) {
    return btfgen_getrandom(buffer, length, flags);
}

int getentropy(void *buffer, size_t length) {
    if (length > 256) {  // getentropy(3)'s limit
        errno = EIO;
        return -1;
    }
    return fill(buffer, length);
}

void arc4random_buf(void *buffer, size_t length) {
    // arc4random never fails; glibc aborts when the kernel gives no bytes at all, and so do we.
    if (fill(buffer, length) != 0) {
        static const char message[] = "btfgen: no random bytes from getrandom or /dev/urandom\n";
        (void)!write(STDERR_FILENO, message, sizeof message - 1);
        abort();
    }
}

uint32_t arc4random(void) {
    uint32_t value;
    arc4random_buf(&value, sizeof value);
    return value;
}

uint32_t arc4random_uniform(uint32_t upper_bound) {
    if (upper_bound < 2) return 0;
    // Reject the low values that would make some results likelier than others.
    uint32_t threshold = -upper_bound % upper_bound;
    for (;;) {
        uint32_t r = arc4random();
        if (r >= threshold) return r % upper_bound;
    }
}
