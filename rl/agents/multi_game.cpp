#include "rl/agents/multi_game.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>


namespace moelab::rl {

namespace {
struct CommonTable {
  std::vector<std::string_view> names;
  std::array<std::vector<int>, kNumGames> maps;
};

const CommonTable& common_table() {
  static const CommonTable table = [] {
    CommonTable t;
    for (GameId game : all_games()) {
      std::vector<int>& map = t.maps[static_cast<int>(game)];
      for (std::string_view name : game_info(game).channels) {
        auto it = std::find(t.names.begin(), t.names.end(), name);
        if (it == t.names.end()) {
          map.push_back(static_cast<int>(t.names.size()));
          t.names.push_back(name);
        } else {
          map.push_back(static_cast<int>(it - t.names.begin()));
        }
      }
    }
    return t;
  }();
  return table;
}
}  // namespace

const std::vector<std::string_view>& common_channels() { return common_table().names; }
int num_common_channels() { return static_cast<int>(common_table().names.size()); }
const std::vector<int>& common_channel_map(GameId game) { return common_table().maps.at(static_cast<int>(game)); }

void embed_observations(GameId game, const uint8_t* src, int batch, const MultiGameLayout& layout, uint8_t* dst) {
  const std::vector<int>& map = common_channel_map(game);
  const int cg = static_cast<int>(map.size()), cu = layout.channels();
  const int id_plane = num_common_channels() + static_cast<int>(game);
  const int64_t cells = static_cast<int64_t>(batch) * kGridSize * kGridSize;
  std::memset(dst, 0, static_cast<size_t>(cells) * cu);
  for (int64_t cell = 0; cell < cells; ++cell) {
    const uint8_t* in = src + cell * cg;
    uint8_t* out = dst + cell * cu;
    for (int c = 0; c < cg; ++c) out[map[c]] = in[c];
    if (layout.game_id_one_hot) out[id_plane] = 1;
  }
}

void extract_observations(GameId game, const uint8_t* src, int batch, const MultiGameLayout& layout, uint8_t* dst) {
  const std::vector<int>& map = common_channel_map(game);
  const int cg = static_cast<int>(map.size()), cu = layout.channels();
  const int64_t cells = static_cast<int64_t>(batch) * kGridSize * kGridSize;
  for (int64_t cell = 0; cell < cells; ++cell)
    for (int c = 0; c < cg; ++c) dst[cell * cg + c] = src[cell * cu + map[c]];
}

std::array<float, kNumGames> game_one_hot(GameId game) {
  std::array<float, kNumGames> v{};
  v.at(static_cast<int>(game)) = 1.f;
  return v;
}

std::array<uint8_t, kNumActions> legal_actions(GameId game, bool minimal_action_set) {
  std::array<uint8_t, kNumActions> legal{};
  if (!minimal_action_set) {
    legal.fill(1);
    return legal;
  }
  for (int a : game_info(game).minimal_actions) legal[a] = 1;
  return legal;
}

int env_action(GameId game, int common_action, bool minimal_action_set) {
  if (common_action < 0 || common_action >= kNumActions)
    throw std::invalid_argument("env_action: action " + std::to_string(common_action) + " is outside 0.." +
                                std::to_string(kNumActions - 1));
  if (!minimal_action_set) return common_action;
  const std::vector<int>& minimal = game_info(game).minimal_actions;
  auto it = std::find(minimal.begin(), minimal.end(), common_action);
  return it == minimal.end() ? -1 : static_cast<int>(it - minimal.begin());
}

Tensor observations_to_tensor(const uint8_t* obs, int batch, int channels, TensorLayout layout, float scale,
                              Device device) {
  if (batch < 0 || channels < 1)
    throw std::invalid_argument("observations_to_tensor: batch must be >= 0 and channels >= 1");
  constexpr int kCells = kGridSize * kGridSize;
  const Shape shape = layout == TensorLayout::nchw ? Shape{batch, channels, kGridSize, kGridSize}
                                                   : Shape{batch, kGridSize, kGridSize, channels};
  Tensor out = Tensor::empty(shape, DType::f32);
  float* dst = out.data<float>();
  for (int b = 0; b < batch; ++b) {
    const uint8_t* in = obs + static_cast<int64_t>(b) * kCells * channels;
    float* o = dst + static_cast<int64_t>(b) * kCells * channels;
    if (layout == TensorLayout::nhwc) {
      for (int i = 0; i < kCells * channels; ++i) o[i] = in[i] * scale;
    } else {
      for (int cell = 0; cell < kCells; ++cell)
        for (int c = 0; c < channels; ++c) o[c * kCells + cell] = in[cell * channels + c] * scale;
    }
  }
  return device == Device::cpu() ? out : out.to(device);
}

}  // namespace moelab::rl
