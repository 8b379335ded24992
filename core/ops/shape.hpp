// Shape ops: transpose, permute, reshape, flatten, squeeze, unsqueeze, expand, cat, stack, narrow,
// slice, select, index_select, gather, scatter/scatter_add/index_add, tril/triu, masked_select/masked_fill,
// pixel_shuffle/unshuffle. Every result is a new contiguous tensor
// (there are no strided views), so writing into one never changes another.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <vector>

#include "../tensor.hpp"

namespace tg {

Tensor transpose(const Tensor& a, std::int64_t dim0, std::int64_t dim1);
Tensor permute(const Tensor& a, const std::vector<std::int64_t>& dims);
// One entry may be -1 (inferred).
Tensor reshape(const Tensor& a, const std::vector<std::int64_t>& shape);
// reshape(x, y.shape()): a Shape works too (a template, so that a braced list means the above).
template <std::same_as<Shape> S>
Tensor reshape(const Tensor& a, const S& shape) { return reshape(a, std::vector<std::int64_t>(shape.begin(), shape.end())); }
Tensor flatten(const Tensor& a, std::int64_t start_dim = 0, std::int64_t end_dim = -1);
// Without a dim, removes every dim of size 1; with one, removes it only if its size is 1.
Tensor squeeze(const Tensor& a, std::optional<std::int64_t> dim = std::nullopt);
Tensor unsqueeze(const Tensor& a, std::int64_t dim);
// Repeats size-1 dims (and adds leading dims) to reach `shape`; -1 keeps a dim as it is.
Tensor expand(const Tensor& a, const std::vector<std::int64_t>& shape);
template <std::same_as<Shape> S>
Tensor expand(const Tensor& a, const S& shape) { return expand(a, std::vector<std::int64_t>(shape.begin(), shape.end())); }
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
// `length` entries of dim from `start` (a negative start counts from the end, as in PyTorch).
Tensor narrow(const Tensor& a, std::int64_t dim, std::int64_t start, std::int64_t length);
// Python's a[start:end:step] along dim; start and end are clamped like Python slices.
Tensor slice(const Tensor& a, std::int64_t dim, std::optional<std::int64_t> start,
             std::optional<std::int64_t> end, std::int64_t step = 1);
// a[index] along dim, removing that dim.
Tensor select(const Tensor& a, std::int64_t dim, std::int64_t index);
// Rows (entries along dim) picked by a 1-D int64 `index`; repeats accumulate in backward.
Tensor index_select(const Tensor& a, std::int64_t dim, const Tensor& index);
// torch.gather: out[i][j][k] = a[index[i][j][k]][j][k] for dim 0 (a[i][index[i][j][k]][k] for
// dim 1, ...), out shaped as the int64 `index`, which has a's rank and is no larger than a in any
// dim but dim; repeats accumulate in backward. (Picking a value a row: log_probs.gather(1, actions).)
Tensor gather(const Tensor& a, std::int64_t dim, const Tensor& index);
// gather's adjoints, out of place (torch.scatter, scatter_add): a copy of `a` with, for every
// entry of the int64 `index` (a's rank, no larger than src in any dim nor than a in any dim but
// dim), out[index[i][j][k]][j][k] = src[i][j][k] for dim 0 (src may be larger than index: its
// leading corner is read), or `value`; scatter_add adds instead. Entries that share a place are
// taken in index order (the last write wins, as in PyTorch's CPU loop; sums in that order at any
// thread count). Gradients: a's is grad with the written places zeroed (scatter) or grad
// (scatter_add); src's is grad.gather(dim, index), as PyTorch's.
Tensor scatter(const Tensor& a, std::int64_t dim, const Tensor& index, const Tensor& src);
Tensor scatter(const Tensor& a, std::int64_t dim, const Tensor& index, double value);
Tensor scatter_add(const Tensor& a, std::int64_t dim, const Tensor& index, const Tensor& src);
// torch.index_add: a copy of `a` with alpha · source's entry i along dim added to a's entry
// index[i], for a 1-D int64 index; source is a's shape with index.numel() entries along dim.
// Repeated entries add in index order (the same bits at any thread count). (Summing messages
// into nodes: index_add(zeros({N, F}), 0, targets, messages).)
Tensor index_add(const Tensor& a, std::int64_t dim, const Tensor& index, const Tensor& source, double alpha = 1.0);
// The lower (upper) triangle of each matrix in a's last two dims, the rest 0: tril keeps
// column j of row i where j - i <= diagonal, triu where j - i >= diagonal (torch.tril/triu; a
// causal mask is triu(full({T, T}, -inf), 1)).
Tensor tril(const Tensor& a, std::int64_t diagonal = 0);
Tensor triu(const Tensor& a, std::int64_t diagonal = 0);
// (*, C·r², H, W) → (*, C, H·r, W·r), the sub-pixel rearrangement of ESPCN super-resolution, and
// its inverse (*, C, H·r, W·r) → (*, C·r², H, W), as torch.nn.functional's.
Tensor pixel_shuffle(const Tensor& a, std::int64_t upscale_factor);
Tensor pixel_unshuffle(const Tensor& a, std::int64_t downscale_factor);
// Rows of `weight` (V, D) picked by int64 `indices` of any shape: (*indices.shape, D). The row
// padding_idx (in [-V, V), negative counting from the end) is looked up like the others but passes
// no gradient (PyTorch's).
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx = std::nullopt);
// The values of a where mask (any dtype) is non-zero, as a 1-D tensor in row-major order; a and
// mask broadcast against each other (as PyTorch's), and the gradient goes back to those positions.
Tensor masked_select(const Tensor& a, const Tensor& mask);
// a with `value` where mask (any dtype) is non-zero, a and mask broadcast against each other (as
// torch.masked_fill; an attention mask of (L, L) over scores of (N, heads, L, L)); the gradient
// passes where mask is zero. Floating-point a only.
Tensor masked_fill(const Tensor& a, const Tensor& mask, double value);
// Pieces of split_size along dim (the last may be smaller), and chunks pieces of equal size
// (ceil(size / chunks), the last smaller; an empty dim gives chunks empty pieces), as PyTorch's split
// and chunk. Neither takes a 0-d tensor.
std::vector<Tensor> split(const Tensor& a, std::int64_t split_size, std::int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& a, std::int64_t chunks, std::int64_t dim = 0);

// The non-negative form of a dim for a tensor of rank `rank`, or an error naming the op.
std::size_t wrap_dim(const char* op, std::int64_t dim, std::size_t rank, const Shape& shape);
// The same for ops that index a dim's size (narrow, select, slice, split, chunk, cat, size): a 0-d
// tensor has no dim to cut, and they refuse it, as PyTorch's do.
std::size_t wrap_sized_dim(const char* op, std::int64_t dim, const Shape& shape);

}  // namespace tg
