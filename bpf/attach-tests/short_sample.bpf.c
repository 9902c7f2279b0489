// SPDX-License-Identifier: GPL-2.0
/*
 * Sends, on every syscall, an 8-byte sample into `events` that is not a btfgen event (too short,
 * and of no known kind): attach must drop it and say how many it dropped, not print garbage.
 */
#include "btfgen_common.h"

SEC("raw_tp/sys_enter")
int short_sample(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 sample = 0x5eed;

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &sample, sizeof(sample));
	return 0;
}
