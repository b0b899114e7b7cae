#include "limits.h"

namespace gapnet {

const std::vector<NamedLimit>& named_limits() {
    static const std::vector<NamedLimit> table = {
        {"max_file_bytes", &Limits::max_file_bytes},
        {"max_layers", &Limits::max_layers},
        {"max_tensor_elements", &Limits::max_tensor_elements},
        {"max_parameters", &Limits::max_parameters},
        {"max_activation_elements", &Limits::max_activation_elements},
        {"max_input_side", &Limits::max_input_side},
        {"max_operations", &Limits::max_operations},
    };
    return table;
}

std::string limit_note(const char* name, int64_t value) {
    return std::string("(Limits::") + name + " = " + std::to_string(value) + ")";
}

bool set_limit(Limits& limits, const std::string& name, int64_t value) {
    for (const NamedLimit& limit : named_limits()) {
        if (name == limit.name) {
            limits.*limit.value = value;
            return true;
        }
    }
    return false;
}

}  // namespace gapnet
