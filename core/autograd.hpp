// The tape-based autograd engine.
//
// Every differentiable op, when recording is on and one of its inputs requires grad, records one
// Node: its op name, one edge per input, the values its backward needs (evaluated tensors, never
// lazy expressions) and its backward function, written in the op's file right under its forward.
// Nodes are numbered in the order they run; that numbering is the tape. backward() gathers the
// nodes that lead to the output and replays them in reverse tape order with a plain loop, so a
// chain of any length works without recursion.
//
// The tape holds no global list: an output tensor owns its node, a node owns the nodes of its
// inputs, so a graph whose outputs are dropped is freed at once, without any backward.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tensor.hpp"

namespace tg {

// Whether ops record nodes. Thread-local; on by default.
class GradMode {
 public:
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

// RAII: no recording inside the scope (inference, optimizer updates). Mode (train/eval) is a
// separate thing that layers hold; this only stops the tape.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Where an input's gradient goes: the node that made it, or the leaf that accumulates it. Neither
// means the input needs no gradient. `shape` is the input's shape, to which the engine sums a
// broadcast gradient back.
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<TensorImpl> leaf;
  Shape shape;
  bool needed() const { return node || leaf; }
};

// Tells a backward function which inputs want a gradient, so it can skip the others.
class NeedsGrad {
 public:
  explicit NeedsGrad(const std::vector<Edge>& edges) : edges_(&edges) {}
  bool operator[](std::size_t input) const { return (*edges_)[input].needed(); }

 private:
  const std::vector<Edge>* edges_;
};

// One gradient per input, in input order; an undefined Tensor means "no gradient".
using Grads = std::vector<Tensor>;

// The tensors a backward reads (its inputs or its output), listed by the op when it records so
// that backward can check they were not changed in place since (see Storage::version).
using Saved = std::initializer_list<Tensor>;

// What a node remembers of one saved tensor: which values it saw and at which version.
struct SavedVersion {
  const TensorImpl* impl = nullptr;  // kept alive by the backward's own capture of the tensor
  std::shared_ptr<Storage> storage;  // owned, so a replaced storage's address cannot be reused
  std::uint64_t version = 0;
  int input = -1;  // which input it is; -1: the output, -2: another tensor (named only in errors)
};

namespace detail {
std::uint64_t next_sequence();
bool any_requires_grad(const std::vector<Tensor>& inputs);
void connect(Node& node, const std::vector<Tensor>& inputs);
void attach(Tensor& output, std::shared_ptr<Node> node);
void save(Node& node, const Tensor& output, const std::vector<Tensor>& inputs, Saved saved);
}  // namespace detail

class Node {
 public:
  explicit Node(const char* name);
  virtual ~Node();  // frees long chains iteratively (see autograd.cpp)
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const char* name() const { return name_; }
  std::uint64_t sequence() const { return sequence_; }
  const std::vector<Edge>& inputs() const { return inputs_; }

 protected:
  virtual Grads apply(const Tensor& grad_output) = 0;
  virtual void release() = 0;  // drops the saved values
  // A node of one input may add its input gradient straight into `gradient`, the input's gradient
  // gathered so far, which the engine alone holds (a row selection adds its rows: no tensor of the
  // input's whole shape per call). Returns false (the default) to be given apply() instead.
  virtual bool add_into_input_gradient(Tensor& /*gradient*/, const Tensor& /*grad_output*/) { return false; }
  std::vector<Edge> inputs_;

 private:
  friend class Engine;
  friend class Tensor;  // retain_grad()
  friend void detail::connect(Node& node, const std::vector<Tensor>& inputs);
  friend void detail::save(Node& node, const Tensor& output, const std::vector<Tensor>& inputs, Saved saved);
  void check_saved_versions() const;  // throws if a saved tensor was changed in place

  const char* name_;
  std::uint64_t sequence_;
  std::weak_ptr<TensorImpl> retained_output_;  // set by retain_grad()
  // Inline, not a vector: recording an op allocates nothing for them (no op saves more than 3).
  static constexpr std::size_t kMaxSaved = 3;
  std::array<SavedVersion, kMaxSaved> saved_;
  std::uint8_t saved_count_ = 0;
  Tensor grad_buffer_;          // the gradient gathered so far during one backward
  std::uint64_t visit_mark_ = 0;
  bool released_ = false;
};

// A node whose backward is a lambda; one allocation per node, no std::function.
template <class F>
class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, F&& backward) : Node(name), backward_(std::move(backward)) {}

 private:
  Grads apply(const Tensor& grad_output) override {
    if constexpr (std::is_invocable_v<F&, const Tensor&, NeedsGrad>)
      return (*backward_)(grad_output, NeedsGrad(inputs_));
    else
      return (*backward_)(grad_output);
  }
  void release() override { backward_.reset(); }
  std::optional<F> backward_;
};

// Records `output` as the result of `inputs` through a node of an op's own Node class (one that
// overrides add_into_input_gradient, as sum's), which make_node() returns as a shared_ptr; it is
// called only when recording is on and an input requires grad. `saved` as for record() below.
template <class MakeNode>
Tensor record_node(Tensor output, const std::vector<Tensor>& inputs, Saved saved, MakeNode&& make_node) {
  if (!GradMode::is_enabled() || !detail::any_requires_grad(inputs)) return output;
  auto node = make_node();
  detail::connect(*node, inputs);
  detail::save(*node, output, inputs, saved);
  detail::attach(output, std::move(node));
  return output;
}

// Records `output` as the result of `op` on `inputs` when recording is on and an input requires
// grad. `backward(grad_output)` or `backward(grad_output, needs)` returns one gradient per input (the same shape as the
// output where the op broadcast; the engine sums it back to the input's shape). `saved` lists the
// tensors the backward captured to read (inputs or the output): backward throws if one of them is
// changed in place in between. An op whose backward reads no tensor uses the form without it.
template <class F>
Tensor record(const char* op, Tensor output, const std::vector<Tensor>& inputs, Saved saved, F&& backward) {
  return record_node(std::move(output), inputs, saved, [&] {
    return std::make_shared<FunctionNode<std::decay_t<F>>>(op, std::forward<F>(backward));
  });
}
template <class F>
Tensor record(const char* op, Tensor output, const std::vector<Tensor>& inputs, F&& backward) {
  return record(op, std::move(output), inputs, Saved{}, std::forward<F>(backward));
}

// The replay of the tape; Tensor::backward() calls it.
class Engine {
 public:
  static void backward(const Tensor& root, const Tensor& seed, bool retain_graph);
  // During a backward (from a hook or a node's backward): runs `callback` once that backward has
  // finished, after every gradient is in place (PyTorch's queue_callback). Callbacks run in the
  // order queued; outside a backward this is an error.
  static void queue_callback(std::function<void()> callback);
};

}  // namespace tg
