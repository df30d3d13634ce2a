// Bits per byte per domain.
#include "text/model/bits_per_byte.h"

#include <cmath>
#include <limits>
#include <numeric>

#include "core/util/check.h"

namespace moelab::text {

ByteLossTally::ByteLossTally(int64_t n)
    : nats_(static_cast<size_t>(n), 0.0), bytes_(static_cast<size_t>(n), 0), tokens_(static_cast<size_t>(n), 0) {}

void ByteLossTally::add(int64_t domain, double nats, int64_t bytes) {
  MOELAB_CHECK(domain >= 0 && domain < num_domains(),
               "bits per byte: domain " << domain << " is outside 0.." << num_domains() - 1);
  nats_[static_cast<size_t>(domain)] += nats;
  bytes_[static_cast<size_t>(domain)] += bytes;
  tokens_[static_cast<size_t>(domain)] += 1;
}

void ByteLossTally::add_tokens(std::span<const double> nats, std::span<const int64_t> targets,
                               std::span<const int64_t> domains, const std::vector<int32_t>& piece_bytes) {
  MOELAB_CHECK(nats.size() == targets.size() && targets.size() == domains.size(),
               "bits per byte: " << nats.size() << " losses, " << targets.size() << " targets and " << domains.size()
                                 << " domains differ in number");
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i] < 0) continue;
    MOELAB_CHECK(targets[i] < static_cast<int64_t>(piece_bytes.size()),
                 "bits per byte: token id " << targets[i] << " is outside the vocabulary of " << piece_bytes.size());
    add(domains[i], nats[i], piece_bytes[static_cast<size_t>(targets[i])]);
  }
}

void ByteLossTally::merge(const ByteLossTally& o) {
  MOELAB_CHECK(o.num_domains() == num_domains(), "bits per byte: merging tallies of " << o.num_domains() << " and "
                                                                                       << num_domains() << " domains");
  for (size_t d = 0; d < nats_.size(); ++d) {
    nats_[d] += o.nats_[d];
    bytes_[d] += o.bytes_[d];
    tokens_[d] += o.tokens_[d];
  }
}

double ByteLossTally::total_nats() const { return std::accumulate(nats_.begin(), nats_.end(), 0.0); }
int64_t ByteLossTally::total_bytes() const { return std::accumulate(bytes_.begin(), bytes_.end(), int64_t{0}); }
int64_t ByteLossTally::total_tokens() const { return std::accumulate(tokens_.begin(), tokens_.end(), int64_t{0}); }

namespace {
double bpb(double nats, int64_t bytes) {
  return bytes > 0 ? nats / std::log(2.0) / double(bytes) : std::numeric_limits<double>::quiet_NaN();
}
}  // namespace

double ByteLossTally::bits_per_byte() const { return bpb(total_nats(), total_bytes()); }
double ByteLossTally::bits_per_byte(int64_t d) const { return bpb(nats(d), bytes(d)); }
double ByteLossTally::nats_per_token() const {
  const int64_t n = total_tokens();
  return n > 0 ? total_nats() / double(n) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace moelab::text
