#include "shape.h"

#include "error.h"

namespace gapnet {

Shape batched(int64_t n, const Shape& sample) {
    Shape s{n};
    s.insert(s.end(), sample.begin(), sample.end());
    return s;
}

std::string join(const Shape& shape, const char* separator) {
    std::string s;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += separator;
        s += std::to_string(shape[i]);
    }
    return s;
}

std::string to_string(const Shape& shape) {
    std::string s = "[";  // (not "[" + join(): GCC 12 warns falsely about that form, -Wrestrict)
    s += join(shape, ",");
    return s += "]";
}

int64_t checked_mul(int64_t a, int64_t b, int64_t limit) {
    if (a < 0 || b < 0) throw Error("negative size in " + std::to_string(a) + " x " + std::to_string(b));
    if (a != 0 && b > limit / a)
        throw Error(std::to_string(a) + " x " + std::to_string(b) + " exceeds the limit of " + std::to_string(limit));
    return a * b;
}

int64_t element_count(const Shape& shape, int64_t limit) {
    int64_t n = 1;
    for (int64_t d : shape) n = checked_mul(n, d, limit);
    return n;
}

}  // namespace gapnet
