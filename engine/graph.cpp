#include "graph.h"

#include <algorithm>
#include <chrono>

#include "error.h"

namespace gapnet {

Graph::Graph(Shape input_shape, Limits limits) : input_shape_(std::move(input_shape)), limits_(limits) {
    for (int64_t d : input_shape_)
        if (d < 1) throw Error("input shape " + to_string(input_shape_) + " has a non-positive size");
    element_count(input_shape_, limits_.max_activation_elements);
}

const Node& Graph::add(std::string name, std::unique_ptr<Layer> layer, const std::string& input) {
    if (name.empty()) throw Error("must not be empty", "name");
    if (name == "input") throw Error("'input' names the graph input and cannot name a layer", "name");
    if (find(name) >= 0) throw Error("'" + name + "' is already used by another layer", "name");
    if (static_cast<int64_t>(nodes_.size()) >= limits_.max_layers)
        throw Error("more than " + std::to_string(limits_.max_layers) + " layers " +
                    limit_note("max_layers", limits_.max_layers));

    int from = static_cast<int>(nodes_.size()) - 1;
    if (input == "input") from = -1;
    else if (!input.empty() && (from = find(input)) < 0)
        throw Error("no earlier layer is named '" + input + "'", "input");

    const Shape& in = shape_of(from);
    Shape out = layer->output_shape(in);
    for (int64_t d : out)
        if (d < 1) throw Error("output shape " + to_string(out) + " has a non-positive size");
    try {
        element_count(out, limits_.max_activation_elements);
    } catch (const Error&) {
        throw Error("output shape " + to_string(out) + " exceeds " +
                    std::to_string(limits_.max_activation_elements) + " values " +
                    limit_note("max_activation_elements", limits_.max_activation_elements));
    }
    const int64_t macs = layer->macs(in), parameters = layer->parameter_count();
    // A few bytes of pooling attributes can ask for hours of work: bounded like memory.
    const int64_t work = layer->work(in) + layer->workspace_elements(in);
    if (work > limits_.max_operations - work_)
        throw Error("the model needs more than " + std::to_string(limits_.max_operations) +
                    " operations per image up to this layer " + limit_note("max_operations", limits_.max_operations));
    work_ += work;
    nodes_.push_back({std::move(name), std::move(layer), from, std::move(out), parameters, macs});
    unfuse();
    const int index = static_cast<int>(nodes_.size()) - 1;
    steps_.push_back({index, index, nodes_.back().layer.get()});
    return nodes_.back();
}

const Shape& Graph::output_shape() const {
    return nodes_.empty() ? input_shape_ : nodes_.back().output_shape;
}

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
    for (const Node& n : nodes_) total += n.layer->prepared_elements(shape_of(n.input));
    return total;
}

int64_t Graph::working_memory_bytes(int64_t batch) const {
    std::vector<size_t> last_use(nodes_.size(), 0);
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].input >= 0) last_use[nodes_[i].input] = i;
    // Activations scale with the batch (the caller's input batch stays alive throughout); a layer's
    // scratch space is reused from sample to sample.
    int64_t live = element_count(input_shape_), peak = 0;  // floats per sample
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node& node = nodes_[i];
        const Shape& in = shape_of(node.input);
        live += element_count(node.output_shape);
        peak = std::max(peak, batch * live + node.layer->workspace_elements(in));
        if (node.input >= 0 && last_use[node.input] == i) live -= element_count(nodes_[node.input].output_shape);
    }
    return 4 * peak;
}

int64_t Graph::peak_memory_bytes(int64_t batch) const {
    return 4 * (parameter_count() + prepared_elements()) + working_memory_bytes(batch);
}

int Graph::head_start() const {
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].output_shape.size() == 1) return static_cast<int>(i);
    return static_cast<int>(nodes_.size());
}

void Graph::unfuse() {
    if (fused_layers_.empty()) return;
    steps_.clear();
    for (size_t i = 0; i < nodes_.size(); ++i)
        steps_.push_back({static_cast<int>(i), static_cast<int>(i), nodes_[i].layer.get()});
    fused_layers_.clear();
}

void Graph::fuse() {
    unfuse();
    std::vector<int> readers(nodes_.size(), 0);
    for (const Node& node : nodes_)
        if (node.input >= 0) ++readers[node.input];
    std::vector<Step> steps;
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node& node = nodes_[i];
        if (!steps.empty() && node.input == steps.back().last && readers[node.input] == 1) {
            if (auto fused = steps.back().layer->fused_with(*node.layer)) {
                steps.back().layer = fused.get();
                steps.back().last = static_cast<int>(i);
                fused_layers_.push_back(std::move(fused));
                continue;
            }
        }
        steps.push_back({static_cast<int>(i), static_cast<int>(i), node.layer.get()});
    }
    steps_ = std::move(steps);
}

void Graph::check_batch(const Tensor& batch) const {
    if (batch.shape.size() != input_shape_.size() + 1 ||
        Shape(batch.shape.begin() + 1, batch.shape.end()) != input_shape_)
        throw Error("input batch " + to_string(batch.shape) + " does not match the model input [N," +
                    to_string(input_shape_).substr(1));
}

Tensor Graph::forward(const Tensor& batch, ThreadPool& pool, std::vector<double>* seconds) const {
    check_batch(batch);
    if (nodes_.empty()) return batch;
    if (seconds) seconds->resize(steps_.size(), 0.0);
    // Each intermediate output is freed once the last step reading it has run.
    std::vector<size_t> last_use(nodes_.size(), 0);
    for (size_t k = 0; k < steps_.size(); ++k) {
        const int in = nodes_[steps_[k].first].input;
        if (in >= 0) last_use[in] = k;
    }
    std::vector<Tensor> outputs(nodes_.size());
    for (size_t k = 0; k < steps_.size(); ++k) {
        const Step& step = steps_[k];
        const int in = nodes_[step.first].input;
        Tensor& out = outputs[step.last];
        out = Tensor(batched(batch.shape[0], nodes_[step.last].output_shape));
        if (seconds) {
            const auto start = std::chrono::steady_clock::now();
            step.layer->forward(in < 0 ? batch : outputs[in], out, pool);
            (*seconds)[k] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        } else {
            step.layer->forward(in < 0 ? batch : outputs[in], out, pool);
        }
        if (in >= 0 && last_use[in] == k) outputs[in] = Tensor();
    }
    return std::move(outputs.back());
}

Tensor Graph::forward(const Tensor& batch) const {
    ThreadPool serial(1);
    return forward(batch, serial);
}

std::vector<Tensor> Graph::forward_all(const Tensor& batch, ThreadPool& pool) const {
    check_batch(batch);
    std::vector<Tensor> outputs(nodes_.size());
    for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node& node = nodes_[i];
        outputs[i] = Tensor(batched(batch.shape[0], node.output_shape));
        node.layer->forward(node.input < 0 ? batch : outputs[node.input], outputs[i], pool);
    }
    return outputs;
}

std::vector<Tensor> Graph::forward_all(const Tensor& batch) const {
    ThreadPool serial(1);
    return forward_all(batch, serial);
}

}  // namespace gapnet
