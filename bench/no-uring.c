// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * no-uring: run a command in which io_uring is unavailable, the way a
 * container runtime's seccomp profile makes it: io_uring_setup,
 * io_uring_enter and io_uring_register fail with ENOSYS (default) or EPERM.
 * Only this process and its children are affected, unlike the global
 * kernel.io_uring_disabled sysctl, so tests can run side by side.
 *
 *   no-uring [--eperm] COMMAND [ARG...]
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define SK_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SK_AUDIT_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define SK_AUDIT_ARCH AUDIT_ARCH_I386
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

int main(int argc, char **argv)
{
	int err = ENOSYS, argi = 1;

	if (argc > 1 && strcmp(argv[1], "--eperm") == 0) {
		err = EPERM;
		argi++;
	}
	if (argi >= argc) {
		fputs("Usage: no-uring [--eperm] COMMAND [ARG...]\n", stderr);
		return 2;
	}
#ifdef SK_AUDIT_ARCH
	{
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
				 offsetof(struct seccomp_data, arch)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SK_AUDIT_ARCH, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
				 offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup,
				 3, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter,
				 2, 0),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
				 __NR_io_uring_register, 1, 0),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
			BPF_STMT(BPF_RET | BPF_K,
				 SECCOMP_RET_ERRNO | (unsigned)(err & 0xffff)),
		};
		struct sock_fprog prog = {
			.len = (unsigned short)(sizeof(f) / sizeof(f[0])),
			.filter = f,
		};

		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
			fprintf(stderr, "no-uring: Failed to install the seccomp filter: %s\n",
				strerror(errno));
			return 1;
		}
	}
#else
	fputs("no-uring: Failed to filter io_uring: unknown architecture\n",
	      stderr);
	return 1;
#endif
	execvp(argv[argi], argv + argi);
	fprintf(stderr, "no-uring: Failed to run '%s': %s\n", argv[argi],
		strerror(errno));
	return 127;
}
