/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cleanup attributes and small helpers shared by libshift and the tools
 * (the systemd/LXC idiom: -EBADF means "no fd", TAKE_FD hands ownership out).
 */
#ifndef SHIFTKIT_MACROS_H
#define SHIFTKIT_MACROS_H

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <dirent.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Close an fd and return -EBADF, so "fd = safe_close(fd);" resets it. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -EBADF;
}

static inline void closep(int *fd)
{
	safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Take ownership of an fd or pointer out of a _cleanup_ variable. */
#define TAKE_FD(fd)                                                            \
	({                                                                     \
		int _fd_ = (fd);                                               \
		(fd) = -EBADF;                                                 \
		_fd_;                                                          \
	})

#define TAKE_PTR(ptr)                                                          \
	({                                                                     \
		__typeof__(ptr) _p_ = (ptr);                                   \
		(ptr) = NULL;                                                  \
		_p_;                                                           \
	})

/* errno as a negative value, never 0 (some libc paths forget to set it). */
static inline int negative_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

#endif
