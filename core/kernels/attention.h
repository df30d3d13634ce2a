#pragma once
// Masking rules of the fused attention kernels, shared by the ref, cpu and cuda backends: which keys a
// query sees under the causal mask (bottom-right aligned) and the key-padding mask.
#include <cstdint>

#include "core/kernels/hd.h"

namespace moelab::kern {

// One past the last key query i may see: i + (tk - tq) + 1 under the causal mask, clamped to [0, tk];
// tk without it.
MOELAB_HD int64_t attention_key_end(int64_t i, int64_t tq, int64_t tk, bool causal) {
  if (!causal) return tk;
  int64_t end = i + (tk - tq) + 1;
  return end < 0 ? 0 : (end < tk ? end : tk);
}

// Whether query i sees key j; `valid` is the row of key_valid for this batch item, or null.
MOELAB_HD bool attention_sees(int64_t i, int64_t j, int64_t tq, int64_t tk, bool causal,
                              const int32_t* valid) {
  return j < attention_key_end(i, tq, tk, causal) && (valid == nullptr || valid[j] != 0);
}

// Strides of one (B, H, T, D) operand with a unit last-dim stride: item (b, h) starts at b * batch + h * head
// elements from the data pointer, and its rows are `row` elements apart.
struct HeadStrides {
  int64_t batch, head, row;
};

}  // namespace moelab::kern
