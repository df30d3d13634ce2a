// libFuzzer target: TensorBoard event file parsing (record framing, CRCs, Event protobufs).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/io/tfevents.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moelab::io;
  if (size == 0) return 0;
  const bool allow_truncated_tail = data[0] & 1;  // both reading modes
  try {
    EventFileContents c =
        parse_event_file(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), "fuzz", allow_truncated_tail);
    size_t n = 0;
    for (const auto& e : c.events) n += e.scalars.size();
    (void)n;
  } catch (const EventFileError&) {
  }
  return 0;
}
