// SPDX-License-Identifier: GPL-2.0
/*
 * A valid BPF object with no raw tracepoint program (a socket filter): attach and its dry run
 * must both refuse it with the same line.
 */
#include "btfgen_common.h"

SEC("socket")
int drop_all(struct __sk_buff *skb)
{
	return 0;
}
