#pragma once
// The machinery of test_backend_ops (ggml's test-backend-ops style): input generators with contiguous,
// transposed and sliced layouts, running one op on a chosen backend (with backward), and guarded kernel
// outputs whose surroundings must stay untouched.
#include <functional>
#include <string>
#include <vector>

#include "core/backend/backend.h"
#include "core/util/rng.h"

namespace moelab::test {

enum class Layout { contiguous, transposed, sliced };
const char* layout_name(Layout l);

// Makes the inputs of one table row for one dtype and layout; the same seed gives the same values.
class InputGen {
 public:
  InputGen(DType dtype, Layout layout, uint64_t seed)
      : dtype_(dtype), layout_(layout), rng_(seed, "op-inputs") {}
  DType dtype() const { return dtype_; }
  // Values uniform in [lo, hi) of the row's dtype (integers in [lo, hi] for integer dtypes), laid out.
  Tensor real(const Shape& s, double lo = -2, double hi = 2);
  Tensor positive(const Shape& s) { return real(s, 0.5, 2.0); }
  // Uniform in [-2, 2) with |x - kink| >= gap for each kink (keeps derivatives away from kinks).
  Tensor away_from(const Shape& s, std::vector<double> kinks, double gap = 0.05);
  // Multiples of 0.5 in [-2, 2] (ties on purpose: eq, max).
  Tensor grid(const Shape& s);
  // Contiguous integer tensor with entries in [0, limit).
  Tensor index(const Shape& s, int64_t limit, DType t = DType::i64);
  // values (a contiguous host tensor of the row's dtype) copied into the row's layout
  Tensor laid_out(const Tensor& values);

 private:
  std::vector<double> draw(int64_t n, double lo, double hi);
  DType dtype_;
  Layout layout_;
  RngStream rng_;
};

using OpFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

struct OpRun {
  std::vector<Tensor> outputs;  // on the host
  std::vector<Tensor> grads;    // one per input (undefined where not differentiated), on the host
};

// Runs fn on `backend` (ref or cpu through a BackendScope; cuda by moving inputs to the device). With
// `upstream` (one per output; undefined entries skipped), float inputs become leaves and
// sum_i sum(out_i * upstream_i) is backpropagated.
OpRun run_on_backend(const OpFn& fn, const std::vector<Tensor>& inputs, BackendKind backend,
                     const std::vector<Tensor>* upstream);

// Writes NaN, +Inf and -Inf into three positions of x (any layout) in place.
void plant_nonfinite(Tensor& x);

// Kernel-level inputs and outputs placed inside larger buffers: `guard` sentinel elements before and after
// every output (and a non-zero offset for every input), so out-of-bounds writes and ignored offsets show.
class GuardedGen {
 public:
  GuardedGen(DType dtype, Device device, uint64_t seed)
      : dtype_(dtype), device_(device), rng_(seed, "kernel") {}
  DType dtype() const { return dtype_; }
  Tensor in(const Shape& s, double lo = -2, double hi = 2);  // float of the row's dtype
  Tensor in_values(const Tensor& host_values);               // any dtype, copied to the device
  Tensor in_index(const Shape& s, int64_t limit, DType t = DType::i64);
  Tensor out(const Shape& s, DType t);        // sentinel-filled
  Tensor out_zeros(const Shape& s, DType t);  // zeros, guarded
  Tensor undefined() const { return Tensor(); }
  // "" when every guard still holds the sentinel, else which output and where it was overwritten.
  std::string check_guards() const;

  static constexpr int64_t kGuard = 37;
  static constexpr double kSentinel = -7777.25;

 private:
  Tensor place(const Tensor& host_values, bool guarded);
  DType dtype_;
  Device device_;
  RngStream rng_;
  struct Guarded {
    Tensor buffer;
    int64_t numel;
    double sentinel;  // kSentinel as the buffer's dtype stores it
  };
  std::vector<Guarded> outputs_;
};

}  // namespace moelab::test
