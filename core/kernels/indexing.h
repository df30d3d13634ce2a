#pragma once
// Index validation shared by the host backends: the first position whose index is outside [0, limit).
#include <cstdint>

#include "core/kernels/hd.h"

namespace moelab::kern {

template <typename I>
MOELAB_HD int64_t first_bad_index(const I* index, int64_t count, int64_t limit) {
  for (int64_t i = 0; i < count; ++i)
    if (index[i] < 0 || static_cast<int64_t>(index[i]) >= limit) return i;
  return -1;
}

}  // namespace moelab::kern
