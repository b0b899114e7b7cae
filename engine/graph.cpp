#include "graph.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "error.h"
#include "kernels/blocked.h"

namespace gapnet {

Graph::Graph(Shape input_shape, Limits limits) : input_shape_(std::move(input_shape)), limits_(limits) {
    for (int64_t d : input_shape_)
        if (d < 1) throw Error("input shape " + to_string(input_shape_) + " has a non-positive size");
    element_count(input_shape_, limits_.max_activation_elements);
}

const Node& Graph::add(std::string name, std::unique_ptr<Layer> layer, const std::vector<std::string>& inputs) {
    if (name.empty()) throw Error("must not be empty", "name");
    if (name == "input") throw Error("'input' names the graph input and cannot name a layer", "name");
    if (find(name) >= 0) throw Error("'" + name + "' is already used by another layer", "name");
    if (static_cast<int64_t>(nodes_.size()) >= limits_.max_layers)
        throw Error("more than " + std::to_string(limits_.max_layers) + " layers " +
                    limit_note("max_layers", limits_.max_layers));
    if (static_cast<int>(inputs.size()) > kMaxInputs)
        throw Error(std::to_string(inputs.size()) + " inputs, more than " + std::to_string(kMaxInputs), "inputs");

    std::vector<int> from;
    if (inputs.empty()) from.push_back(static_cast<int>(nodes_.size()) - 1);
    for (size_t i = 0; i < inputs.size(); ++i) {
        const std::string where = "inputs[" + std::to_string(i) + "]";
        if (inputs[i] == "input")
            from.push_back(-1);
        else if (const int node = find(inputs[i]); node >= 0)
            from.push_back(node);
        else if (inputs[i] == name)
            throw Error("'" + name + "' cannot read its own output", where);
        else
            throw Error("no earlier layer is named '" + inputs[i] + "'", where);
    }
    if (auto* conv = dynamic_cast<Conv2d*>(layer.get())) conv->prefer(conv_algorithm_);
    const int count = static_cast<int>(from.size());
    if (count < layer->min_inputs() || count > layer->max_inputs())
        throw Error(
            std::string(layer->type()) + " reads " +
                (layer->min_inputs() == layer->max_inputs() ? std::to_string(layer->min_inputs())
                                                            : std::to_string(layer->min_inputs()) + " or more") +
                (layer->max_inputs() == 1 ? " input" : " inputs") + ", got " + std::to_string(count),
            "inputs");

    Shapes in;
    for (int node : from) in.push_back(shape_of(node));
    Shape out = layer->output_shape(in);
    for (int64_t d : out)
        if (d < 1) throw Error("output shape " + to_string(out) + " has a non-positive size");
    try {
        element_count(out, limits_.max_activation_elements);
    } catch (const Error&) {
        throw Error("output shape " + to_string(out) + " exceeds " + std::to_string(limits_.max_activation_elements) +
                    " values " + limit_note("max_activation_elements", limits_.max_activation_elements));
    }
    const int64_t macs = layer->macs(in), parameters = layer->parameter_count();
    work_ += checked_work(*layer, in, work_);
    nodes_.push_back({std::move(name), std::move(layer), from, std::move(out), parameters, macs});
    unfuse();
    const int index = static_cast<int>(nodes_.size()) - 1;
    steps_.push_back({index, index, nodes_.back().layer.get(), std::move(from)});
    return nodes_.back();
}

int64_t Graph::checked_work(const Layer& layer, const Shapes& in, int64_t work_before) const {
    // A few bytes of pooling attributes can ask for hours of work: bounded like memory.
    const int64_t scratch = layer.workspace_elements(in);
    const int64_t work = layer.work(in) + scratch;
    if (work > limits_.max_operations - work_before)
        throw Error("the model needs more than " + std::to_string(limits_.max_operations) +
                    " operations per image up to this layer " + limit_note("max_operations", limits_.max_operations));
    // A convolution's im2col buffer is allocated when it runs; a tiny file (a 64x64 kernel on a
    // 1024x1024 input) could make it 16 GiB, so it is bounded like an activation.
    if (scratch > limits_.max_activation_elements)
        throw Error("its scratch buffer (im2col) for a " + join(in.at(0), "x") + " input would hold " +
                    std::to_string(scratch) + " values, more than " + std::to_string(limits_.max_activation_elements) +
                    " " + limit_note("max_activation_elements", limits_.max_activation_elements));
    return work;
}

void Graph::set_conv_algorithm(std::optional<Conv2d::Algorithm> algorithm) {
    const auto apply = [this](std::optional<Conv2d::Algorithm> a) {
        for (Node& node : nodes_)
            if (auto* conv = dynamic_cast<Conv2d*>(node.layer.get())) conv->prefer(a);
    };
    apply(algorithm);
    int64_t work = 0;
    for (const Node& node : nodes_) {
        try {
            work += checked_work(*node.layer, input_shapes(node), work);
        } catch (const Error& e) {
            apply(conv_algorithm_);
            throw Error(e.what(), node.name);
        }
    }
    conv_algorithm_ = algorithm;
    work_ = work;
    if (fused_) fuse();  // the fused layers are copies, made with the old setting
}

Shapes Graph::input_shapes(const Node& node) const {
    Shapes shapes;
    for (int input : node.inputs) shapes.push_back(shape_of(input));
    return shapes;
}

const Shape& Graph::output_shape() const { return nodes_.empty() ? input_shape_ : nodes_.back().output_shape; }

int Graph::find(const std::string& name) const {
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].name == name) return static_cast<int>(i);
    return -1;
}

int64_t Graph::parameter_count() const {
    int64_t total = 0;
    for (const Node& n : nodes_) total += n.parameters;
    return total;
}

int64_t Graph::macs() const {
    int64_t total = 0;
    for (const Node& n : nodes_) total += n.macs;
    return total;
}

int64_t Graph::prepared_elements() const {
    int64_t total = 0;
    for (const Node& n : nodes_) total += n.layer->prepared_elements(input_shapes(n));
    return total;
}

int64_t Graph::working_memory_bytes(int64_t batch) const {
    std::vector<size_t> last_use(nodes_.size(), 0);
    for (size_t i = 0; i < nodes_.size(); ++i)
        for (int input : nodes_[i].inputs)
            if (input >= 0) last_use[input] = i;
    // Activations scale with the batch (the caller's input batch stays alive throughout); a layer's
    // scratch space is reused from sample to sample.
    // A blocked map takes whole blocks of 16 channels.
    const auto stored = [&](size_t i) {
        const Shape& s = nodes_[i].output_shape;
        return stored_blocked(static_cast<int>(i)) ? channel_blocks(s[0]) * kBlock * s[1] * s[2] : element_count(s);
    };
    int64_t live = element_count(input_shape_), peak = 0;  // floats per sample
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node& node = nodes_[i];
        live += stored(i);
        peak = std::max(peak, batch * live + node.layer->workspace_elements(input_shapes(node)));
        for (size_t k = 0; k < node.inputs.size(); ++k) {
            const int input = node.inputs[k];
            const bool repeated =
                std::find(node.inputs.begin(), node.inputs.begin() + k, input) != node.inputs.begin() + k;
            if (input >= 0 && last_use[input] == i && !repeated) live -= stored(static_cast<size_t>(input));
        }
    }
    return 4 * peak;
}

int64_t Graph::peak_memory_bytes(int64_t batch) const {
    return 4 * (parameter_count() + prepared_elements()) + working_memory_bytes(batch);
}

std::vector<int> Graph::readers(const std::vector<bool>& counted) const {
    std::vector<int> readers(nodes_.size(), 0);
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (counted[i])
            for (int input : nodes_[i].inputs)
                if (input >= 0) ++readers[input];
    if (!nodes_.empty()) ++readers.back();
    return readers;
}

int Graph::head_start() const {
    for (size_t i = nodes_.size(); i > 0; --i)
        if (nodes_[i - 1].output_shape.size() != 1) return static_cast<int>(i);
    return 0;
}

void Graph::unfuse() {
    if (!fused_) return;
    fused_ = false;
    memory_plan_.reset();
    steps_.clear();
    blocked_output_.clear();
    for (size_t i = 0; i < nodes_.size(); ++i)
        steps_.push_back({static_cast<int>(i), static_cast<int>(i), nodes_[i].layer.get(), nodes_[i].inputs});
    fused_layers_.clear();
}

// A node joins the step before it when it reads that step's output once, nothing else reads that
// output, and its other inputs were computed before the step began (so the fused step can read them).
void Graph::fuse() {
    unfuse();
    // The nodes the output depends on: the last, and, backwards, every node a needed node reads.
    std::vector<bool> needed(nodes_.size(), false);
    if (!nodes_.empty()) needed.back() = true;
    for (size_t i = nodes_.size(); i-- > 0;)
        if (needed[i])
            for (int input : nodes_[i].inputs)
                if (input >= 0) needed[input] = true;
    const std::vector<int> count = readers(needed);
    std::vector<Step> steps;
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node& node = nodes_[i];
        if (!needed[i]) continue;
        if (!steps.empty()) {
            Step& step = steps.back();
            const auto reads = std::find(node.inputs.begin(), node.inputs.end(), step.last);
            const bool others_ready = std::all_of(node.inputs.begin(), node.inputs.end(),
                                                  [&](int input) { return input == step.last || input < step.first; });
            if (reads != node.inputs.end() && count[step.last] == 1 && others_ready) {
                const int position = static_cast<int>(reads - node.inputs.begin());
                if (auto fused = step.layer->fused_with(*node.layer, position, static_cast<int>(node.inputs.size()))) {
                    step.layer = fused.get();
                    step.last = static_cast<int>(i);
                    for (int input : node.inputs)
                        if (input != node.inputs[position]) step.inputs.push_back(input);
                    fused_layers_.push_back(std::move(fused));
                    continue;
                }
            }
        }
        steps.push_back({static_cast<int>(i), static_cast<int>(i), node.layer.get(), node.inputs});
    }
    steps_ = std::move(steps);
    fused_ = true;
    plan_layouts();
    memory_plan_ = plan_memory();
}

void Graph::set_blocking(bool on) {
    blocking_ = on;
    if (fused_) fuse();
}

bool Graph::stored_blocked(int node) const { return node >= 0 && !blocked_output_.empty() && blocked_output_[node]; }

// A step runs blocked when its layer leads to it, or follows and its first map input is stored
// blocked (Layer::blocking); its maps then come blocked, each input
// stored plain reordered first unless the layer reads it as it is (Layer::reads_plain), and a
// plain step's blocked inputs are reordered back. Vectors are never blocked. The graph's output,
// and any output forward() returns, is plain (run_steps reorders it).
void Graph::plan_layouts() {
    blocked_output_.assign(nodes_.size(), false);
    for (Step& step : steps_) {
        const Shapes in = [&] {
            Shapes shapes;
            for (int input : step.inputs) shapes.push_back(shape_of(input));
            return shapes;
        }();
        bool blocked_input = false;  // the first map input is stored blocked
        for (size_t i = 0; i < step.inputs.size(); ++i)
            if (in[i].size() == 3) {
                blocked_input = stored_blocked(step.inputs[i]);
                break;
            }
        const Layer::Blocking blocking = step.layer->blocking(in);
        step.blocked = blocking_ &&
                       (blocking == Layer::Blocking::leads || (blocking == Layer::Blocking::follows && blocked_input));
        step.reorder.assign(step.inputs.size(), false);
        for (size_t i = 0; i < step.inputs.size(); ++i) {
            if (in[i].size() != 3) continue;  // a vector
            const bool stored = stored_blocked(step.inputs[i]);
            step.reorder[i] = step.blocked ? !stored && !step.layer->reads_plain(in, static_cast<int>(i)) : stored;
        }
        blocked_output_[step.last] = step.blocked && nodes_[step.last].output_shape.size() == 3;
    }
}

void Graph::check_batch(const Tensor& batch) const {
    if (batch.shape.size() != input_shape_.size() + 1 ||
        Shape(batch.shape.begin() + 1, batch.shape.end()) != input_shape_)
        throw Error("input batch " + to_string(batch.shape) + " does not match the model input [N," +
                    to_string(input_shape_).substr(1));
}

// A batch runs in groups of images small enough for a group's activations to stay in a core's cache
// from one layer to the next (kGroupBytes), so that a batch of 32 does not stream every layer's
// whole output through memory; with several threads the groups are spread over them, each group
// run on one thread (a small feature map gives a thread little to do inside one layer, a group a
// whole pass). A group holds at most kMaxGroupImages, and a batch is cut into a power of two of
// equal groups, so that 2 or 4 threads get equal shares. The groups depend on the model and the
// batch size alone, never on the thread count, and a group is computed by the same code on any
// thread: results are the same bit for bit for any thread count. A batch of one group runs as
// before, each layer's loops spread over the threads.
// The head's steps on per-image vectors (after flatten or global pooling: dense, softmax) run once
// over the whole batch, the threads sharing each layer: a dense layer's weights (M2's 3136 -> 500:
// 6.3 MB) are then read once per batch rather than once per group.
constexpr int64_t kGroupBytes = int64_t{1} << 20;
constexpr int64_t kMaxGroupImages = 16;

size_t Graph::vector_head() const {
    size_t first = steps_.size();
    while (first > 1) {
        const Step& step = steps_[first - 1];
        if (step.inputs.size() != 1 || step.inputs[0] != steps_[first - 2].last) break;
        if (nodes_[step.inputs[0]].output_shape.size() != 1) break;
        --first;
    }
    return first;
}

int64_t Graph::images_per_group() const {
    const int64_t per_image = std::max<int64_t>(working_memory_bytes(2) - working_memory_bytes(1), 1);
    return std::clamp<int64_t>(kGroupBytes / per_image, 1, kMaxGroupImages);
}

Tensor Graph::forward(const Tensor& batch, ThreadPool& pool, std::vector<double>* seconds) const {
    check_batch(batch);
    if (nodes_.empty()) return batch;
    if (seconds) seconds->resize(steps_.size(), 0.0);
    // A single image is one group: the latency path does not walk the graph for the group size.
    const int64_t n = batch.shape[0];
    if (n == 1) return run_steps(batch, -1, 0, steps_.size(), pool, seconds);
    int64_t groups = 1;
    for (const int64_t most = images_per_group(); groups * most < n;) groups *= 2;
    if (groups == 1) return run_steps(batch, -1, 0, steps_.size(), pool, seconds);
    const int64_t group = (n + groups - 1) / groups;
    groups = (n + group - 1) / group;

    // Groups run the steps before the vector head, whose input they fill for the whole batch.
    const size_t head = vector_head();
    const int boundary = head < steps_.size() ? steps_[head].inputs[0] : static_cast<int>(nodes_.size()) - 1;
    Tensor output(batched(n, nodes_[boundary].output_shape));
    std::vector<std::vector<double>> group_seconds(static_cast<size_t>(groups));
    auto run_group = [&](int64_t g, ThreadPool& group_pool) {
        const int64_t first = g * group, count = std::min(group, n - first);
        const Tensor part = batch_rows(batch, first, count);
        std::vector<double>* timing = seconds ? &group_seconds[static_cast<size_t>(g)] : nullptr;
        if (timing) timing->resize(steps_.size(), 0.0);
        const Tensor result = run_steps(part, -1, 0, head, group_pool, timing);
        set_batch_rows(output, first, result);
    };
    if (pool.size() == 1) {
        for (int64_t g = 0; g < groups; ++g) run_group(g, pool);
    } else {
        pool.parallel_for(groups, [&](int64_t g) {
            ThreadPool serial(1);
            run_group(g, serial);
        });
    }
    if (seconds)  // thread time: with several threads, more than the wall time
        for (const std::vector<double>& t : group_seconds)
            for (size_t k = 0; k < t.size(); ++k) (*seconds)[k] += t[k];
    if (head == steps_.size()) return output;
    return run_steps(output, boundary, head, steps_.size(), pool, seconds);
}

// Each step's output lives from its step to the last step that reads it; a reordered input, through
// its step. A map stored blocked takes whole blocks of 16 channels.
Graph::MemoryPlan Graph::plan_memory() const {
    std::vector<size_t> last_use(nodes_.size(), 0);
    for (size_t k = 0; k < steps_.size(); ++k)
        for (int in : steps_[k].inputs)
            if (in >= 0) last_use[in] = k;
    const auto floats = [&](int node, bool blocked) {
        const Shape& s = shape_of(node);
        return blocked ? channel_blocks(s[0]) * kBlock * s[1] * s[2] : element_count(s);
    };
    MemoryPlan plan;
    plan.output_slot.assign(nodes_.size(), -1);
    std::vector<Lifetime> values;
    for (size_t k = 0; k < steps_.size(); ++k) {
        const Step& step = steps_[k];
        const bool blocked = step.blocked && nodes_[step.last].output_shape.size() == 3;
        plan.output_slot[step.last] = static_cast<int>(values.size());
        values.push_back({floats(step.last, blocked), k, std::max(k, last_use[step.last])});
        plan.reorder_slot.emplace_back(step.inputs.size(), -1);
        for (size_t i = 0; i < step.inputs.size(); ++i)
            if (step.reorder[i]) {
                plan.reorder_slot[k][i] = static_cast<int>(values.size());
                values.push_back({floats(step.inputs[i], !stored_blocked(step.inputs[i])), k, k});
            }
    }
    const ArenaPlan arena = plan_arena(values);
    const auto to_slot = [&](int& value) {
        if (value >= 0) value = arena.slot_of[static_cast<size_t>(value)];
    };
    std::for_each(plan.output_slot.begin(), plan.output_slot.end(), to_slot);
    for (std::vector<int>& slots : plan.reorder_slot) std::for_each(slots.begin(), slots.end(), to_slot);
    plan.slot_floats = arena.slot_floats;
    return plan;
}

int64_t Graph::arena_bytes(int64_t batch) const {
    const MemoryPlan plan = memory_plan_ ? *memory_plan_ : plan_memory();
    return 4 * batch * std::accumulate(plan.slot_floats.begin(), plan.slot_floats.end(), int64_t{0});
}

namespace {

// `map` [N, C, H, W] or blocked, in the other layout, in slot `slot` of `pass`.
Tensor reordered(const Tensor& map, int64_t channels, Arena::Pass& pass, int slot, ThreadPool& pool) {
    if (is_blocked(map)) {
        Tensor plain = pass.take(slot, {map.shape[0], channels, map.shape[2], map.shape[3]});
        from_blocked(map, plain, pool);
        return plain;
    }
    Tensor blocked = pass.take(slot, blocked_shape(map.shape[0], channels, map.shape[2], map.shape[3]));
    to_blocked(map, blocked, pool);
    return blocked;
}

}  // namespace

Tensor Graph::run_steps(const Tensor& input, int input_node, size_t first, size_t end, ThreadPool& pool,
                        std::vector<double>* seconds) const {
    // Each intermediate output goes back to its slot once the last step reading it has run.
    std::vector<size_t> last_use(nodes_.size(), 0);
    for (size_t k = first; k < end; ++k)
        for (int in : steps_[k].inputs)
            if (in >= 0) last_use[in] = k;
    std::optional<MemoryPlan> unfused_plan;
    if (!memory_plan_) unfused_plan = plan_memory();
    const MemoryPlan& plan = memory_plan_ ? *memory_plan_ : *unfused_plan;
    Arena::Pass pass = arena_->begin_pass(plan.slot_floats.size());
    std::vector<Tensor> outputs(nodes_.size());
    Inputs inputs;
    std::vector<std::pair<int, Tensor>> reorders;  // this step's inputs in the other layout, by slot
    const int64_t n = input.shape[0];
    for (size_t k = first; k < end; ++k) {
        const Step& step = steps_[k];
        const auto start = std::chrono::steady_clock::now();
        inputs.clear();
        reorders.clear();
        reorders.reserve(step.inputs.size());
        for (size_t i = 0; i < step.inputs.size(); ++i) {
            const int in = step.inputs[i];
            const Tensor* x = in == input_node ? &input : &outputs[in];
            if (step.reorder[i]) {
                const int slot = plan.reorder_slot[k][i];
                x = &reorders.emplace_back(slot, reordered(*x, shape_of(in)[0], pass, slot, pool)).second;
            }
            inputs.push_back(x);
        }
        const Shape& shape = nodes_[step.last].output_shape;
        const bool blocked = step.blocked && shape.size() == 3;
        Tensor& out = outputs[step.last];
        // The returned output is the caller's (plain); the others' memory is the arena's.
        if (k + 1 == end && !blocked)
            out = Tensor(batched(n, shape));
        else
            out = pass.take(plan.output_slot[step.last],
                            blocked ? blocked_shape(n, shape[0], shape[1], shape[2]) : batched(n, shape));
        step.layer->forward(inputs, out, pool);
        for (auto& [slot, t] : reorders) pass.give(slot, std::move(t));
        for (int in : step.inputs)
            if (in >= 0 && in != input_node && last_use[in] == k)
                pass.give(plan.output_slot[in], std::move(outputs[in]));
        if (seconds) (*seconds)[k] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    Tensor& last = outputs[steps_[end - 1].last];
    if (!is_blocked(last)) return std::move(last);
    Tensor result(batched(n, nodes_[steps_[end - 1].last].output_shape));
    from_blocked(last, result, pool);
    pass.give(plan.output_slot[steps_[end - 1].last], std::move(last));
    return result;
}

Tensor Graph::forward(const Tensor& batch) const {
    ThreadPool serial(1);
    return forward(batch, serial);
}

std::vector<Tensor> Graph::forward_all(const Tensor& batch, ThreadPool& pool) const {
    check_batch(batch);
    std::vector<Tensor> outputs(nodes_.size());
    Inputs inputs;
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node& node = nodes_[i];
        inputs.clear();
        for (int input : node.inputs) inputs.push_back(input < 0 ? &batch : &outputs[input]);
        outputs[i] = Tensor(batched(batch.shape[0], node.output_shape));
        node.layer->forward(inputs, outputs[i], pool);
    }
    return outputs;
}

std::vector<Tensor> Graph::forward_all(const Tensor& batch) const {
    ThreadPool serial(1);
    return forward_all(batch, serial);
}

}  // namespace gapnet
