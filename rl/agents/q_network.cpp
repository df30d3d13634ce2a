// The Q-network: construction in the order the initialization stream is drawn, tokenizations, forward.
#include "rl/agents/q_network.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "core/ops/ops.h"

namespace moelab::rl {

namespace {
constexpr const char* kPenultimateNames[] = {"dense", "moe", "scaled_expert", "wide_dense"};
constexpr const char* kTokenizationNames[] = {"per_conv", "per_feat", "per_samp"};
}  // namespace

Penultimate parse_penultimate(std::string_view name) {
  for (int i = 0; i < 4; ++i)
    if (name == kPenultimateNames[i]) return static_cast<Penultimate>(i);
  throw std::invalid_argument("unknown penultimate layer '" + std::string(name) +
                              "' (dense, moe, scaled_expert, wide_dense)");
}
Tokenization parse_tokenization(std::string_view name) {
  for (int i = 0; i < 3; ++i)
    if (name == kTokenizationNames[i]) return static_cast<Tokenization>(i);
  throw std::invalid_argument("unknown tokenization '" + std::string(name) + "' (per_conv, per_feat, per_samp)");
}
const char* penultimate_name(Penultimate p) { return kPenultimateNames[static_cast<int>(p)]; }
const char* tokenization_name(Tokenization t) { return kTokenizationNames[static_cast<int>(t)]; }

int64_t num_tokens(Tokenization t, int64_t positions, int64_t channels) {
  switch (t) {
    case Tokenization::per_conv: return positions;
    case Tokenization::per_feat: return channels;
    case Tokenization::per_samp: return 1;
  }
  return 0;
}
int64_t token_dim(Tokenization t, int64_t positions, int64_t channels) {
  return positions * channels / num_tokens(t, positions, channels);
}

Tensor tokenize(const Tensor& h, Tokenization t) {
  const int64_t B = h.size(0), P = h.size(1), C = h.size(2);
  switch (t) {
    case Tokenization::per_conv: return h;
    case Tokenization::per_feat: return contiguous(transpose(h, 1, 2));
    case Tokenization::per_samp: return reshape(h, Shape{B, 1, P * C});
  }
  return h;
}

namespace {
bool uses_tokens(Penultimate p) { return p == Penultimate::moe || p == Penultimate::scaled_expert; }
int64_t expert_width(const QNetworkOptions& o) { return o.moe.expert_d_ff > 0 ? o.moe.expert_d_ff : o.hidden; }
}  // namespace

QNetwork::QNetwork(const QNetworkOptions& o, RngStream& rng) : Module("QNetwork"), options_(o) {
  if (o.board < 3) throw std::invalid_argument("QNetwork: board must be at least 3");
  const int64_t P = feature_positions(), C = o.conv_channels, F = P * C;
  hidden_width_ = o.hidden;
  if (o.penultimate == Penultimate::wide_dense) {
    // The width that gives the moe network's parameter count (nearest integer).
    QNetworkOptions as_moe = o;
    as_moe.penultimate = Penultimate::moe;
    const double target = static_cast<double>(q_network_parameters(as_moe));
    const double fixed = static_cast<double>(o.in_channels * C * 9 + C + (o.layer_norm ? 2 * C : 0) + o.num_actions);
    const double per_unit = static_cast<double>(F + 1 + o.num_actions + (o.layer_norm ? 2 : 0));
    hidden_width_ = std::max<int64_t>(1, std::llround((target - fixed) / per_unit));
  }
  conv = register_module("conv", std::make_shared<nn::Conv2d>(o.in_channels, C, 3, 1, 0, true, rng));
  if (o.layer_norm) conv_norm = register_module("conv_norm", std::make_shared<nn::LayerNorm>(C));
  int64_t head_in = hidden_width_;
  if (!uses_tokens(o.penultimate)) {
    fc = register_module("fc", std::make_shared<nn::Linear>(F, hidden_width_, true, rng));
    if (o.layer_norm) fc_norm = register_module("fc_norm", std::make_shared<nn::LayerNorm>(hidden_width_));
  } else {
    const int64_t N = num_tokens(o.tokenization, P, C), d = token_dim(o.tokenization, P, C);
    if (o.penultimate == Penultimate::moe) {
      moe_layer = register_module(
          "moe", std::make_shared<moe::MoELayer>(o.moe, moe::MoELayerOptions{.d_model = d, .d_ff = o.hidden, .seq_len = N}, rng));
    } else {
      expert = register_module("expert", std::make_shared<nn::MLP>(
                                             nn::MlpOptions{.dim = d, .hidden = o.moe.num_experts * expert_width(o),
                                                            .activation = nn::Activation::relu},
                                             rng));
    }
    if (o.layer_norm) fc_norm = register_module("fc_norm", std::make_shared<nn::LayerNorm>(d));
    head_in = N * d;
  }
  head = register_module("head", std::make_shared<nn::Linear>(head_in, o.num_actions, true, rng));
}

Tensor QNetwork::forward(const Tensor& x, nn::ForwardContext& ctx) {
  const int64_t B = x.size(0), P = feature_positions(), C = options_.conv_channels;
  // (B, C', 8, 8) -> (B, 64, C'): position-major, so LayerNorm and PerConv tokens see channel vectors.
  Tensor h = reshape(contiguous(permute(conv->forward(x), {0, 2, 3, 1})), Shape{B, P, C});
  if (conv_norm) h = conv_norm->forward(h);
  h = relu(h);
  Tensor f;
  if (fc) {
    f = fc->forward(reshape(h, Shape{B, P * C}));
  } else {
    const Tensor tokens = tokenize(h, options_.tokenization);
    f = moe_layer ? moe_layer->forward(tokens, ctx) : expert->forward(tokens);
  }
  if (fc_norm) f = fc_norm->forward(f);
  f = relu(f);
  return head->forward(reshape(f, Shape{B, f.numel() / B}));
}

std::string QNetwork::describe() const {
  std::ostringstream os;
  const int64_t P = feature_positions(), C = options_.conv_channels;
  os << "conv " << options_.in_channels << "->" << C << " 3x3" << (conv_norm ? " +LN" : "") << ", ";
  switch (options_.penultimate) {
    case Penultimate::dense: os << "dense " << P * C << "->" << hidden_width_; break;
    case Penultimate::wide_dense: os << "wide dense " << P * C << "->" << hidden_width_ << " (moe's parameters)"; break;
    case Penultimate::moe:
      os << "moe (" << options_.moe.router << ", " << options_.moe.num_experts << " experts of width "
         << moe_layer->expert_d_ff() << ") over " << tokenization_name(options_.tokenization) << " tokens "
         << num_tokens(options_.tokenization, P, C) << "x" << token_dim(options_.tokenization, P, C);
      break;
    case Penultimate::scaled_expert:
      os << "one scaled expert of width " << expert->options.hidden << " over "
         << tokenization_name(options_.tokenization) << " tokens";
      break;
  }
  os << (fc_norm ? " +LN" : "") << ", head ->" << options_.num_actions << "; " << num_parameters() << " parameters";
  return os.str();
}

int64_t q_network_parameters(const QNetworkOptions& o) {
  RngStream scratch(0, "q_network_parameters");
  return QNetwork(o, scratch).num_parameters();
}

}  // namespace moelab::rl
