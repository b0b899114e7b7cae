// gapnet's one error type. `where` is a location inside the input (e.g. "layers[3].weight.data"),
// empty when the problem is not tied to one; what() is the problem itself.
#pragma once

#include <stdexcept>
#include <string>

namespace gapnet {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what, std::string where = {})
        : std::runtime_error(what), where_(std::move(where)) {}

    const std::string& where() const { return where_; }

    // "where: what", or "what" when there is no location.
    std::string message() const { return where_.empty() ? what() : where_ + ": " + what(); }

private:
    std::string where_;
};

}  // namespace gapnet
