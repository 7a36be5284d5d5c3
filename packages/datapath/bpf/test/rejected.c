// SPDX-License-Identifier: GPL-2.0
/* A program the verifier must reject (it reads the packet without a bounds
 * check): the tests check that the load error carries the verifier's reason
 * and its log. */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

SEC("tc")
int mbr_fx_rejected(struct __sk_buff *skb) {
  void *data = (void *)(long)skb->data;
  return *(unsigned char *)(data + 100);
}

char _license[] SEC("license") = "GPL";
