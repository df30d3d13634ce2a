#include "sentencepiece_model.h"

#include <exception>

#include "core/util/check.h"

namespace moelab::fuzz {

std::unique_ptr<sentencepiece::SentencePieceProcessor> load_sentencepiece_model(std::string_view bytes,
                                                                                 const std::string& source) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  sentencepiece::util::Status status;
  try {
    status = sp->LoadFromSerializedProto(bytes);
  } catch (const std::exception& e) {
    // The library's trie builder throws (instead of returning a status) for pieces such as a NUL byte.
    throw Error(source + ": not a usable SentencePiece model: " + e.what());
  }
  if (!status.ok()) throw Error(source + ": not a usable SentencePiece model: " + status.ToString());
  return sp;
}

}  // namespace moelab::fuzz
