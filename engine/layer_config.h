// How a layer reads its attributes while being built, without knowing where they come from.
//
// The JSON loader implements this over one object of the file's "layers" array; tests and programs
// can implement it over anything else. Every getter validates what it returns (types, ranges, tensor
// shapes, finite values) and fail() throws gapnet::Error located at the attribute, so a layer's
// factory only states what it needs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "precision.h"
#include "shape.h"

namespace gapnet {

class LayerConfig {
public:
    virtual ~LayerConfig() = default;

    // An integer >= `min`; absent: `fallback`, or an error when there is none.
    virtual int64_t integer(const std::string& key, int64_t min, std::optional<int64_t> fallback = std::nullopt) = 0;
    // A list of integers, each >= `min`; a single integer is read as a list of one. Absent: `fallback`.
    virtual std::vector<int64_t> integers(const std::string& key, int64_t min, std::vector<int64_t> fallback) = 0;
    // A finite number > 0; absent: `fallback`.
    virtual double positive_number(const std::string& key, double fallback) = 0;
    // A finite number; std::nullopt when absent.
    virtual std::optional<double> number(const std::string& key) = 0;
    virtual bool boolean(const std::string& key, bool fallback) = 0;
    // A tensor of exactly `shape`, every value finite; std::nullopt when absent and not required.
    // Stored in float32; where `precision` is given (a layer's weights), also in a reduced precision
    // the source declares (bfloat16), widened to float32 exactly, the precision set there.
    virtual std::optional<std::vector<float>> tensor(const std::string& key, const Shape& shape, bool required,
                                                     Precision* precision = nullptr) = 0;

    // Reports a problem with attribute `key`: never returns.
    [[noreturn]] virtual void fail(const std::string& key, const std::string& problem) = 0;
};

}  // namespace gapnet
