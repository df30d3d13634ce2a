// Parameter broadcast and bucketed gradient all-reduce (grad_sync.h).
#include "core/dist/grad_sync.h"

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"
#include "core/util/check.h"

namespace moelab::dist {

void broadcast_parameters(Communicator& comm, const std::vector<Tensor>& params, int root) {
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor t = p.detach();
    comm.broadcast(t, root);
  }
}

namespace {
// One bucket: all-reduce the concatenation of the grads, scale, write back.
void reduce_bucket(Communicator& comm, const std::vector<Tensor>& grads, double scale) {
  if (grads.empty()) return;
  int64_t n = 0;
  for (const Tensor& g : grads) n += g.numel();
  Tensor flat = Tensor::empty({n}, grads[0].dtype(), grads[0].device());
  int64_t at = 0;
  for (const Tensor& g : grads) {
    flat.slice(0, at, at + g.numel()).view(g.shape()).copy_(g);
    at += g.numel();
  }
  comm.all_reduce_sum(flat);
  if (scale != 1.0) flat = moelab::mul(flat, scale);
  at = 0;
  for (const Tensor& g : grads) {
    Tensor dst = g;
    dst.copy_(flat.slice(0, at, at + g.numel()).view(g.shape()));
    at += g.numel();
  }
}
}  // namespace

int64_t all_reduce_gradients(Communicator& comm, const std::vector<Tensor>& params, double scale,
                             int64_t bucket_bytes) {
  NoGradGuard no_grad;
  int64_t handed = 0;
  std::vector<Tensor> bucket;
  int64_t bucket_size = 0;
  auto flush = [&] {
    reduce_bucket(comm, bucket, scale);
    handed += bucket_size;
    bucket.clear();
    bucket_size = 0;
  };
  for (const Tensor& p : params) {
    MOELAB_CHECK(is_floating(p.dtype()), "all_reduce_gradients: parameter of dtype " << dtype_name(p.dtype()));
    Tensor param = p;
    if (!param.grad().defined()) param.set_grad(Tensor::zeros(p.shape(), p.dtype(), p.device()));
    Tensor g = param.grad();
    const int64_t bytes = static_cast<int64_t>(g.nbytes());
    if (!bucket.empty() && (bucket_size + bytes > bucket_bytes || g.dtype() != bucket[0].dtype() ||
                            g.device() != bucket[0].device()))
      flush();
    bucket.push_back(g);
    bucket_size += bytes;
  }
  flush();
  return handed;
}

}  // namespace moelab::dist
