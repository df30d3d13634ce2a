#include "core/helpers_compare.h"

#include <cmath>
#include <sstream>
#include <vector>

namespace moelab::test {

double nmse(const Tensor& got, const Tensor& ref) {
  std::vector<double> a = got.to_vector<double>(), b = ref.to_vector<double>();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) continue;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? num / den : num;
}

std::string compare_tensors(const Tensor& got, const Tensor& ref, double max_nmse) {
  std::ostringstream os;
  if (got.defined() != ref.defined()) {
    os << "one result is undefined (got " << (got.defined() ? "defined" : "undefined") << ", ref "
       << (ref.defined() ? "defined" : "undefined") << ")";
    return os.str();
  }
  if (!got.defined()) return "";
  if (got.shape() != ref.shape() || got.dtype() != ref.dtype()) {
    os << "got " << got.shape().str() << " " << dtype_name(got.dtype()) << ", ref " << ref.shape().str()
       << " " << dtype_name(ref.dtype());
    return os.str();
  }
  if (!is_floating(ref.dtype())) {
    std::vector<int64_t> a = got.to_vector<int64_t>(), b = ref.to_vector<int64_t>();
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) {
        os << "integer results differ at element " << i << ": got " << a[i] << ", ref " << b[i];
        return os.str();
      }
    return "";
  }
  std::vector<double> a = got.to_vector<double>(), b = ref.to_vector<double>();
  for (size_t i = 0; i < a.size(); ++i) {
    bool same = (std::isnan(a[i]) && std::isnan(b[i])) || (std::isinf(a[i]) && a[i] == b[i]) ||
                (std::isfinite(a[i]) && std::isfinite(b[i]));
    if (!same) {
      os << "non-finite values disagree at element " << i << ": got " << a[i] << ", ref " << b[i];
      return os.str();
    }
  }
  double e = nmse(got, ref);
  if (!(e <= max_nmse)) {
    size_t worst = 0;
    double worst_diff = -1;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::isfinite(a[i]) && std::isfinite(b[i]) && std::abs(a[i] - b[i]) > worst_diff) {
        worst = i;
        worst_diff = std::abs(a[i] - b[i]);
      }
    os << "NMSE " << e << " > " << max_nmse << " (largest difference at element " << worst << ": got "
       << a[worst] << ", ref " << b[worst] << ")";
    return os.str();
  }
  return "";
}

}  // namespace moelab::test
