#include "text/tokenizer/token_stats.h"

namespace moelab::text {

std::vector<std::array<TokenCounts, 3>> count_corpus_tokens(const Corpus& corpus, const Tokenizer& tokenizer) {
  std::vector<std::array<TokenCounts, 3>> counts(static_cast<size_t>(corpus.num_domains()));
  const std::vector<int32_t>& piece_bytes = tokenizer.piece_bytes();
  for (Split split : kAllSplits) {
    const int s = static_cast<int>(split);
    const std::vector<Document>& docs = corpus.split(split);
    std::vector<TokenCounts> per_doc(docs.size());
#pragma omp parallel for schedule(dynamic, 64)
    for (size_t i = 0; i < docs.size(); ++i) {
      const std::vector<int32_t> ids = tokenizer.encode(docs[i].text);
      TokenCounts& c = per_doc[i];
      c.documents = 1;
      c.bytes = docs[i].text.size();
      c.tokens = ids.size();
      for (int32_t id : ids) c.decoded_bytes += static_cast<uint64_t>(piece_bytes[static_cast<size_t>(id)]);
      c.mismatched_documents = tokenizer.decode(ids) == docs[i].text ? 0 : 1;
    }
    for (size_t i = 0; i < docs.size(); ++i) {
      TokenCounts& total = counts[static_cast<size_t>(docs[i].domain)][s];
      total.documents += per_doc[i].documents;
      total.bytes += per_doc[i].bytes;
      total.tokens += per_doc[i].tokens;
      total.decoded_bytes += per_doc[i].decoded_bytes;
      total.mismatched_documents += per_doc[i].mismatched_documents;
    }
  }
  return counts;
}

}  // namespace moelab::text
