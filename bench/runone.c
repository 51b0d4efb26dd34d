// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * runone: run a command, report its wall time, CPU time (user + system) and
 * peak RSS (of it and every descendant it waited for: getrusage
 * (RUSAGE_CHILDREN)) as one line
 *   "seconds=S maxrss_kb=K status=N cpu=C"
 * CPU time is the figure to trust on a busy machine: wall time then
 * depends on what else runs.
 * on stderr, or appended to FILE with -o FILE.  Exits with the command's
 * status.
 *
 *   runone [-o FILE] COMMAND [ARG...]
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	const char *out = NULL;
	int status, code, argi = 1;
	FILE *f = stderr;
	pid_t pid;

	if (argc > 2 && strcmp(argv[1], "-o") == 0) {
		out = argv[2];
		argi = 3;
	}
	if (argi >= argc) {
		fputs("Usage: runone [-o FILE] COMMAND [ARG...]\n", stderr);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("runone: fork");
		return 1;
	}
	if (pid == 0) {
		execvp(argv[argi], argv + argi);
		fprintf(stderr, "runone: Failed to run '%s': %s\n", argv[argi],
			strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0) {
		perror("runone: waitpid");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_CHILDREN, &ru);
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (out) {
		f = fopen(out, "ae");
		if (!f) {
			fprintf(stderr, "runone: Failed to open '%s': %s\n",
				out, strerror(errno));
			return 1;
		}
	}
	fprintf(f, "seconds=%.3f maxrss_kb=%ld status=%d cpu=%.3f\n",
		(double)(t1.tv_sec - t0.tv_sec) +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		ru.ru_maxrss, code,
		(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			(double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) /
				1e6);
	if (out)
		fclose(f);
	return code;
}
