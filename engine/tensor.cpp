#include "tensor.h"

#include <algorithm>

#include "error.h"

namespace gapnet {

Tensor::Tensor(Shape s) : shape(std::move(s)), data(static_cast<size_t>(element_count(shape))) {}

Tensor::Tensor(Shape s, std::vector<float> values) : shape(std::move(s)), data(std::move(values)) {
    if (element_count(shape) != size())
        throw Error(std::to_string(size()) + " values do not fill shape " + to_string(shape));
}

Tensor concatenate(const std::vector<Tensor>& batches) {
    if (batches.empty()) return Tensor();
    if (batches[0].shape.empty()) throw Error("concatenate(): batch 0 has no batch dimension");
    Shape shape = batches[0].shape;
    shape[0] = 0;
    for (const Tensor& b : batches) {
        if (b.shape.empty() || !std::equal(b.shape.begin() + 1, b.shape.end(), shape.begin() + 1, shape.end()))
            throw Error("concatenate(): batch " + to_string(b.shape) + " does not hold samples of batch 0's shape, " +
                        to_string(batches[0].shape));
        shape[0] += b.shape[0];
    }
    Tensor joined(shape);
    auto at = joined.data.begin();
    for (const Tensor& b : batches) at = std::copy(b.data.begin(), b.data.end(), at);
    return joined;
}

// The values of one row of a batch [N, ...].
static int64_t row_size(const Tensor& batch) { return batch.shape[0] > 0 ? batch.size() / batch.shape[0] : 0; }

Tensor batch_rows(const Tensor& batch, int64_t first, int64_t count) {
    const int64_t row = row_size(batch);
    Shape shape = batch.shape;
    shape[0] = count;
    return Tensor(shape,
                  std::vector<float>(batch.data.begin() + first * row, batch.data.begin() + (first + count) * row));
}

void set_batch_rows(Tensor& batch, int64_t first, const Tensor& rows) {
    const int64_t row = row_size(batch);
    std::copy(rows.data.begin(), rows.data.end(), batch.data.begin() + first * row);
}

}  // namespace gapnet
