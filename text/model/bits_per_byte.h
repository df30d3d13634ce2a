#pragma once
// Bits per byte of a language model: summed next-token losses (nats) / ln 2 / UTF-8 bytes of the predicted
// tokens, overall and per domain. Comparable across tokenizers because the denominator is bytes of text.
#include <cstdint>
#include <span>
#include <vector>

namespace moelab::text {

class ByteLossTally {
 public:
  explicit ByteLossTally(int64_t num_domains = 0);
  // One predicted token: its loss -log p (nats), the bytes it decodes to, its domain.
  void add(int64_t domain, double nats, int64_t bytes);
  // Many: target ids < 0 are skipped (padding); piece_bytes[id] gives each token's bytes.
  void add_tokens(std::span<const double> nats, std::span<const int64_t> targets, std::span<const int64_t> domains,
                  const std::vector<int32_t>& piece_bytes);
  void merge(const ByteLossTally& other);

  int64_t num_domains() const { return static_cast<int64_t>(nats_.size()); }
  double total_nats() const;
  int64_t total_bytes() const;
  int64_t total_tokens() const;
  double nats(int64_t domain) const { return nats_.at(static_cast<size_t>(domain)); }
  int64_t bytes(int64_t domain) const { return bytes_.at(static_cast<size_t>(domain)); }
  int64_t tokens(int64_t domain) const { return tokens_.at(static_cast<size_t>(domain)); }
  // NaN when there are no bytes.
  double bits_per_byte() const;
  double bits_per_byte(int64_t domain) const;
  double nats_per_token() const;  // the mean cross-entropy (NaN without tokens)

 private:
  std::vector<double> nats_;
  std::vector<int64_t> bytes_, tokens_;
};

}  // namespace moelab::text
