/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cpukill: run a command and SIGKILL it once it has used a given amount of
 * CPU time (all its threads), so that a crash test kills a run at a point
 * of its work rather than at a wall-clock time that depends on how fast the
 * machine starts processes.  The shell can't do this: polling /proc from
 * bash is starved by the command's own threads on a small machine.
 *
 *   cpukill [-s SIGNUM] NS CMD [ARGS...]
 *
 * -s sends SIGNUM instead of SIGKILL (a signal the command handles).
 * Exit status: 0 the command was killed while running (a hit: it died of
 * the signal), 1 it ended first or survived (its own status is not
 * reported), 2 bad usage or a failure here.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec nap = { .tv_nsec = 20000 }, now;
	unsigned long long want;
	clockid_t clk;
	char *end;
	pid_t pid;
	int status, sig = SIGKILL;

	if (argc > 3 && !strcmp(argv[1], "-s")) {
		sig = atoi(argv[2]);
		argc -= 2;
		argv += 2;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: cpukill [-s SIGNUM] NS CMD [ARGS...]\n");
		return 2;
	}
	errno = 0;
	want = strtoull(argv[1], &end, 10);
	if (errno || *end || end == argv[1]) {
		fprintf(stderr, "cpukill: invalid NS '%s'\n", argv[1]);
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		perror("cpukill: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "cpukill: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	if (clock_getcpuclockid(pid, &clk) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fprintf(stderr, "cpukill: no CPU clock for the command\n");
		return 2;
	}
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return 1; /* ended first */
		if (r < 0) {
			perror("cpukill: waitpid");
			return 2;
		}
		if (clock_gettime(clk, &now) == 0 &&
		    (unsigned long long)now.tv_sec * 1000000000ull +
				    (unsigned long long)now.tv_nsec >=
			    want)
			break;
		nanosleep(&nap, NULL);
	}
	kill(pid, sig);
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == sig ? 0 : 1;
}
