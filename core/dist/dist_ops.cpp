// Differentiable collectives (dist_ops.h): the forward is the communicator's collective, the backward
// its adjoint, recorded on the autograd tape like any op.
#include "core/dist/dist_ops.h"

#include "core/autograd/autograd.h"
#include "core/util/check.h"

namespace moelab::dist {

Tensor all_reduce_sum(Communicator& comm, const Tensor& x, GradOfReplicated grad) {
  Tensor y = x.detach().clone();
  comm.all_reduce_sum(y);
  if (needs_grad({&x})) {
    Communicator* c = &comm;
    record(y, "dist::all_reduce_sum", {x}, [c, grad](const Tensor& g) -> std::vector<Tensor> {
      if (grad == GradOfReplicated::replicated) return {g};
      Tensor total = g.clone();
      c->all_reduce_sum(total);
      return {total};
    });
  }
  return y;
}

Tensor all_gather(Communicator& comm, const Tensor& x, GradOfReplicated grad) {
  std::vector<int64_t> rows;
  Tensor y = comm.all_gather(x.detach(), &rows);
  if (needs_grad({&x})) {
    Communicator* c = &comm;
    int64_t start = 0;
    for (int p = 0; p < comm.rank(); ++p) start += rows[p];
    const int64_t mine = rows[comm.rank()];
    record(y, "dist::all_gather", {x}, [c, grad, rows, start, mine](const Tensor& g) -> std::vector<Tensor> {
      if (grad == GradOfReplicated::replicated) return {g.slice(0, start, start + mine).contiguous()};
      return {c->reduce_scatter_sum(g, rows)};
    });
  }
  return y;
}

Tensor all_to_all_v(Communicator& comm, const Tensor& x, const std::vector<int64_t>& send_rows,
                    const std::vector<int64_t>& recv_rows) {
  Tensor y = comm.all_to_all_v(x.detach(), send_rows, recv_rows);
  if (needs_grad({&x})) {
    Communicator* c = &comm;
    record(y, "dist::all_to_all_v", {x}, [c, send_rows, recv_rows](const Tensor& g) -> std::vector<Tensor> {
      return {c->all_to_all_v(g, recv_rows, send_rows)};
    });
  }
  return y;
}

}  // namespace moelab::dist
