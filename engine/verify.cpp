#include "verify.h"

#include <algorithm>
#include <cmath>

namespace gapnet {

VerifyReport verify(const LoadedModel& model, double tolerance) {
    VerifyReport report;
    report.tolerance = tolerance;
    report.cases = static_cast<int64_t>(model.tests.size());
    if (model.tests.empty()) return report;

    std::vector<Tensor> inputs;
    for (const ModelTest& test : model.tests) inputs.push_back(Tensor(batched(1, test.input.shape), test.input.data));
    const Tensor out = model.graph.forward(concatenate(inputs));
    const int64_t out_size = element_count(model.graph.output_shape());
    for (int64_t c = 0; c < report.cases; ++c) {
        const std::vector<float>& expected = model.tests[c].output.data;
        for (int64_t i = 0; i < out_size; ++i) {
            const float v = out.data[c * out_size + i], r = expected[i];
            const double difference =
                std::abs(static_cast<double>(v) - r) / std::max(1.0, std::abs(static_cast<double>(r)));
            if (difference > report.largest_difference || std::isnan(difference)) {
                report.largest_difference = std::isnan(difference) ? INFINITY : difference;
                report.worst_case = c, report.worst_index = i, report.worst_value = v, report.worst_expected = r;
            }
        }
    }
    report.passed = report.largest_difference <= tolerance;
    return report;
}

}  // namespace gapnet
