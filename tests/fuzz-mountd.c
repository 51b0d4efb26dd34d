/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target for shift-mountd's request parser, the only code that
 * reads what a client sends: each input is a message as received, tried
 * with 0, 1 and 2 fds.  It must not crash or leak, and a request it
 * accepts must survive a round trip through the formatter unchanged.
 *
 *   make fuzz && build/fuzz/fuzz-mountd -max_total_time=60 CORPUS_DIR
 *
 * Built only by "make fuzz" (clang -fsanitize=fuzzer,address,undefined).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (unsigned nfds = 0; nfds < 3; nfds++) {
		struct shift_mountd_request r, again;
		struct shift_error err = { 0 };
		char *s;

		if (shift_mountd_request_parse(data, size, nfds, &r, &err) < 0) {
			shift_error_clear(&err);
			continue;
		}
		s = shift_mountd_request_format(&r);
		if (!s)
			abort();
		if (shift_mountd_request_parse(s, strlen(s), nfds, &again,
					       &err) < 0 ||
		    again.userns != r.userns || again.flags != r.flags ||
		    !again.map != !r.map || (r.map && strcmp(again.map, r.map)))
			abort();
		shift_mountd_request_done(&again);
		shift_mountd_request_done(&r);
		free(s);
	}
	{
		struct shift_error msg = { 0 };

		(void)shift_mountd_answer_parse(data, size, &msg);
		shift_error_clear(&msg);
	}
	return 0;
}
