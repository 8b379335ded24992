#include "core/autograd.hpp"
#include "core/xtensor.hpp"

#include <algorithm>

#include "core/creation.hpp"
#include "core/ops/elementwise.hpp"
#include "core/ops/kernels.hpp"
#include "core/ops/reduce.hpp"

namespace tg {

namespace {
thread_local bool grad_mode_enabled = true;
thread_local bool in_backward = false;
thread_local std::vector<std::function<void()>> queued_callbacks;
std::atomic<std::uint64_t> tape_position{0};
std::atomic<std::uint64_t> backward_pass{0};
}  // namespace

bool GradMode::is_enabled() { return grad_mode_enabled; }
void GradMode::set_enabled(bool enabled) { grad_mode_enabled = enabled; }

Node::Node(const char* name) : name_(name), sequence_(detail::next_sequence()) {}

// Destroying the output of a 100,000-op chain would otherwise destroy node after node recursively
// and overflow the stack. Instead each dying node takes its inputs' nodes into a local list and
// lets them die one at a time: a node whose last owner is this list hands its own inputs to the
// list first, so no destructor ever recurses more than one level.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> dying;
  for (Edge& edge : inputs_)
    if (edge.node) dying.push_back(std::move(edge.node));
  while (!dying.empty()) {
    std::shared_ptr<Node> node = std::move(dying.back());
    dying.pop_back();
    if (node.use_count() == 1)
      for (Edge& edge : node->inputs_)
        if (edge.node) dying.push_back(std::move(edge.node));
  }
}

void Node::check_saved_versions() const {
  for (std::size_t k = 0; k < saved_count_; ++k) {
    const SavedVersion& saved = saved_[k];
    const std::uint64_t now = saved.impl->storage == saved.storage ? saved.storage->version : saved.version + 1;
    if (now == saved.version) continue;
    const Tensor tensor(std::make_shared<TensorImpl>(*saved.impl));  // a handle for the message only
    const std::string label = saved.input >= 0 ? "input " + std::to_string(saved.input)
                              : saved.input == -1 ? std::string("its output") : std::string("a saved tensor");
    TG_CHECK(now == saved.version, "backward of ", name_, ": ", label, " (", dtype_name(tensor.dtype()), " ",
             shape_str(tensor.shape()), ") was modified in place after ",
             name_, " saved it (version ", saved.version, ", now ", now,
             "); change a clone() instead, or run the forward again after the change");
  }
}

namespace detail {

std::uint64_t next_sequence() { return tape_position.fetch_add(1, std::memory_order_relaxed); }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  for (const Tensor& input : inputs)
    if (input.defined() && input.requires_grad()) return true;
  return false;
}

void connect(Node& node, const std::vector<Tensor>& inputs) {
  node.inputs_.resize(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    if (!input.defined()) continue;
    Edge& edge = node.inputs_[i];
    edge.shape = input.shape();
    if (!input.requires_grad()) continue;
    if (input.grad_fn())
      edge.node = input.grad_fn();
    else
      edge.leaf = input.impl();
  }
}

void save(Node& node, const Tensor& output, const std::vector<Tensor>& inputs, Saved saved) {
  TG_CHECK(saved.size() <= Node::kMaxSaved, "record of ", node.name(), ": saves ", saved.size(), " tensors, at most ",
           Node::kMaxSaved);
  for (const Tensor& tensor : saved) {
    if (!tensor.defined()) continue;
    int input = tensor.impl()->storage == output.impl()->storage ? -1 : -2;
    for (std::size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].defined() && inputs[i].same(tensor)) {
        input = int(i);
        break;
      }
    node.saved_[node.saved_count_++] = {tensor.impl().get(), tensor.impl()->storage, tensor.version(), input};
  }
}

void attach(Tensor& output, std::shared_ptr<Node> node) {
  // A fresh result that only this handle holds (every op's usual case) takes its place in the
  // graph as it is. Anything else (an op returning one of its inputs unchanged) gets a fresh impl,
  // so that the input's own place in the graph is not rewritten.
  TensorImpl& own = *output.impl();
  if (output.impl().use_count() == 1 && !own.requires_grad && !own.grad_fn) {
    own.requires_grad = true;
    own.grad_fn = std::move(node);
    return;
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = output.impl()->storage;
  impl->shape = output.impl()->shape;
  impl->requires_grad = true;
  impl->grad_fn = std::move(node);
  output = Tensor(std::move(impl));
}

}  // namespace detail

namespace {

// A gradient that only the engine holds (one handle, one storage owner): it may be added to in place.
bool engine_owned(const Tensor& t) {
  return t.defined() && t.impl().use_count() == 1 && t.impl()->storage.use_count() == 1 && is_floating(t.dtype());
}

// into += grad. A buffer that only the engine holds is added to in place, in one pass and without
// a new allocation; anything shared gets a new sum.
void add_into(Tensor& into, const Tensor& grad) {
  const bool owned = engine_owned(into) && into.shape() == grad.shape() && into.dtype() == grad.dtype();
  if (!owned) {
    into = add(into, grad);
    return;
  }
  dispatch_floating(into.dtype(), "backward", [&]<class T>() {
    T* sum = into.mutable_data<T>();  // bumps the version
    kernels::apply_parallel(into.numel(), sum, [](auto a, auto b) { return a + b; }, static_cast<const T*>(sum),
                            grad.data<T>());
  });
}

void accumulate(Tensor& into, const Tensor& grad) {
  if (into.defined()) add_into(into, grad);
  else into = grad;
}

// A leaf's gradient must never share values with another tensor: clip_grad_norm_ and optimizers
// update it in place. A gradient that nothing else holds is taken as it is; any other is copied.
void accumulate_leaf(TensorImpl& leaf, Tensor grad) {
  if (leaf.grad) {
    Tensor sum(std::move(leaf.grad));  // moved, so that an unshared gradient stays unshared
    add_into(sum, grad);
    leaf.grad = sum.impl();
    return;
  }
  const bool sole_owner = grad.impl().use_count() == 1 && grad.impl()->storage.use_count() == 1;
  leaf.grad = sole_owner ? grad.impl() : grad.clone().impl();
}

// The leaves with post-accumulate hooks that one backward reaches: each counts, in its GradHooks,
// the edges of this backward still to run into it, and its hooks fire when that reaches zero.
// Nothing is done for leaves without hooks.
class LeafHooks {
 public:
  explicit LeafHooks(std::uint64_t pass) : pass_(pass) {}
  void count(const Edge& edge) {
    GradHooks* hooks = hooked(edge);
    if (!hooks) return;
    if (hooks->pass != pass_) {
      hooks->pass = pass_;
      hooks->pending_edges = 0;
    }
    ++hooks->pending_edges;
  }
  // One edge into the leaf has run (it may have carried no gradient).
  void done(const Edge& edge) {
    GradHooks* hooks = hooked(edge);
    if (hooks && hooks->pass == pass_ && --hooks->pending_edges == 0) fire(edge.leaf);
  }
  static void fire(const std::shared_ptr<TensorImpl>& leaf) {
    if (!leaf->grad) return;  // no path carried a gradient here
    Tensor tensor(leaf);
    const auto hooks = leaf->grad_hooks->hooks;  // a hook may remove hooks
    for (const auto& [id, hook] : hooks) hook(tensor);
  }

 private:
  static GradHooks* hooked(const Edge& edge) {
    if (!edge.leaf || !edge.leaf->grad_hooks || edge.leaf->grad_hooks->hooks.empty()) return nullptr;
    return edge.leaf->grad_hooks.get();
  }
  std::uint64_t pass_;
};

// Marks the thread as inside a backward and runs the queued callbacks at its end (drops them
// if the backward throws).
class BackwardScope {
 public:
  BackwardScope() : outer_(in_backward) { in_backward = true; }
  ~BackwardScope() {
    in_backward = outer_;
    if (!outer_) queued_callbacks.clear();
  }
  void finish() {
    if (outer_) return;
    // A callback may queue another; each runs once.
    for (std::size_t k = 0; k < queued_callbacks.size(); ++k) {
      std::function<void()> callback = std::move(queued_callbacks[k]);
      callback();
    }
    queued_callbacks.clear();
  }

 private:
  bool outer_;
};

}  // namespace

void Engine::queue_callback(std::function<void()> callback) {
  TG_CHECK(in_backward, "queue_callback: only during a backward (from a hook or a node's backward)");
  queued_callbacks.push_back(std::move(callback));
}

void Engine::backward(const Tensor& root, const Tensor& seed_in, bool retain_graph) {
  TG_CHECK(root.defined(), "backward: called on an undefined tensor");
  TG_CHECK(root.requires_grad(), "backward: the tensor does not require grad and has no grad_fn");
  Tensor seed = seed_in;
  if (!seed.defined()) {
    TG_CHECK(root.numel() == 1, "backward: grad can be implicitly created only for scalar outputs, got shape ",
             shape_str(root.shape()), "; pass a gradient of that shape");
    seed = full_like(root, 1.0);
  }
  TG_CHECK(seed.shape() == root.shape(), "backward: gradient shape ", shape_str(seed.shape()),
           " does not match the output shape ", shape_str(root.shape()));
  TG_CHECK(seed.dtype() == root.dtype(), "backward: gradient dtype ", dtype_name(seed.dtype()),
           " does not match the output dtype ", dtype_name(root.dtype()));

  NoGradGuard no_grad;  // the backward pass itself is never recorded
  BackwardScope scope;
  const std::shared_ptr<Node>& root_node = root.grad_fn();
  if (!root_node) {  // a leaf: its gradient is the seed
    accumulate_leaf(*root.impl(), seed);
    if (root.impl()->grad_hooks) LeafHooks::fire(root.impl());
    scope.finish();
    return;
  }

  // Gather the nodes that lead to the root (iteratively), then order them by tape position:
  // inputs are always recorded before their outputs, so reverse tape order visits every node
  // after all the nodes that consume it.
  const std::uint64_t mark = backward_pass.fetch_add(1) + 1;
  std::vector<Node*> order;
  std::vector<Node*> pending{root_node.get()};
  LeafHooks leaf_hooks(mark);
  root_node->visit_mark_ = mark;
  while (!pending.empty()) {
    Node* node = pending.back();
    pending.pop_back();
    TG_CHECK(!node->released_, "backward of ", node->name(),
             ": trying to backward through the graph a second time (its saved values were freed); "
             "pass retain_graph=true to the first backward");
    order.push_back(node);
    for (const Edge& edge : node->inputs_) {
      leaf_hooks.count(edge);
      if (edge.node && edge.node->visit_mark_ != mark) {
        edge.node->visit_mark_ = mark;
        pending.push_back(edge.node.get());
      }
    }
  }
  std::sort(order.begin(), order.end(),
            [](const Node* a, const Node* b) { return a->sequence_ > b->sequence_; });

  root_node->grad_buffer_ = seed;
  for (Node* node : order) {
    Tensor grad_output = std::move(node->grad_buffer_);
    node->grad_buffer_ = Tensor();
    if (!grad_output.defined()) {  // no path from the root carried a gradient here
      for (const Edge& edge : node->inputs_) leaf_hooks.done(edge);
      continue;
    }
    if (auto retained = node->retained_output_.lock()) accumulate_leaf(*retained, grad_output);

    node->check_saved_versions();
    // A node of one input whose input already has a gradient the engine alone holds may add into
    // it in place (add_into_input_gradient); the others, and the first contribution, go by apply.
    bool added = false;
    if (node->inputs_.size() == 1) {
      Edge& edge = node->inputs_[0];
      if (edge.node && engine_owned(edge.node->grad_buffer_) && edge.node->grad_buffer_.dtype() == grad_output.dtype()) {
        added = node->add_into_input_gradient(edge.node->grad_buffer_, grad_output);
      } else if (edge.leaf && edge.leaf->grad) {
        Tensor gradient(std::move(edge.leaf->grad));  // moved, so that an unshared gradient stays unshared
        if (engine_owned(gradient) && gradient.dtype() == grad_output.dtype())
          added = node->add_into_input_gradient(gradient, grad_output);
        edge.leaf->grad = gradient.impl();
      }
    }
    Grads grads = added ? Grads(1) : node->apply(grad_output);
    // Dropped now, so that a gradient that shares its values (a reshape's, which is a view of this
    // one) is owned by its receiver alone and can be taken or added to in place.
    grad_output = Tensor();
    TG_CHECK(grads.size() == node->inputs_.size(), "backward of ", node->name(), ": returned ",
             grads.size(), " gradients for ", node->inputs_.size(), " inputs");
    for (std::size_t i = 0; i < grads.size(); ++i) {
      Edge& edge = node->inputs_[i];
      if (edge.needed() && grads[i].defined()) {
        // Broadcasting is undone here, once for every op.
        Tensor grad = std::move(grads[i]);
        if (grad.shape() != edge.shape) grad = sum_to(grad, edge.shape);
        // The same leaf again among this node's inputs (x + x): the contributions are summed first
        // (in place when the first one is the engine's alone, else into a new tensor), and the
        // leaf takes the sum, instead of copying a shared gradient and adding into the copy.
        if (edge.leaf)
          for (std::size_t j = i + 1; j < grads.size(); ++j)
            if (node->inputs_[j].leaf == edge.leaf && grads[j].defined()) {
              Tensor more = std::move(grads[j]);
              grads[j] = Tensor();
              add_into(grad, more.shape() != edge.shape ? sum_to(more, edge.shape) : more);
            }
        if (edge.node)
          accumulate(edge.node->grad_buffer_, grad);
        else
          accumulate_leaf(*edge.leaf, std::move(grad));
      }
      leaf_hooks.done(edge);
    }
    if (!retain_graph) {
      node->release();
      for (std::size_t k = 0; k < node->saved_count_; ++k) node->saved_[k] = SavedVersion();
      node->saved_count_ = 0;
      node->released_ = true;
    }
  }
  scope.finish();
}

}  // namespace tg
