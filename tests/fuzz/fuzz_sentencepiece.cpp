// libFuzzer target: SentencePiece model loading from serialized bytes, then a round of encoding and
// decoding with whatever model was accepted.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/util/check.h"
#include "sentencepiece_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto sp = moelab::fuzz::load_sentencepiece_model(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.model");
    std::vector<int> ids;
    if (!sp->Encode("Hello world, a mixture of experts.", &ids).ok()) return 0;
    std::string text;
    (void)sp->Decode(ids, &text);
    for (int i = 0; i < sp->GetPieceSize() && i < 64; ++i) (void)sp->IdToPiece(i);
  } catch (const moelab::Error&) {
  }
  return 0;
}
