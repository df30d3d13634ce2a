#pragma once
// A small wrapper over the sentencepiece library for loading a tokenizer model from its serialized
// ModelProto bytes: refusals become moelab::Error naming the source, so callers see one error type.
#include <memory>
#include <string>
#include <string_view>

#include <sentencepiece_processor.h>

namespace moelab::fuzz {

std::unique_ptr<sentencepiece::SentencePieceProcessor> load_sentencepiece_model(std::string_view bytes,
                                                                                 const std::string& source);

}  // namespace moelab::fuzz
