#include "npy.h"

#include <cstring>

#include "gapnet/gapnet.h"
#include "output.h"

namespace gapnet {

std::string npy_bytes(const Tensor& tensor) {
    // Magic, version 1.0, a little-endian uint16 header length, then a Python dict literal padded with
    // spaces and ended by '\n' so that the data starts at a multiple of 64 bytes.
    std::string shape;
    for (int64_t d : tensor.shape) shape += std::to_string(d) + ", ";
    if (tensor.shape.size() > 1) shape.resize(shape.size() - 1);  // (3,) but (3, 28, 28)
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
    const size_t unpadded = 10 + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xFF);
    out += static_cast<char>(header.size() >> 8);
    out += header;
    const size_t data_at = out.size();
    out.resize(data_at + tensor.data.size() * 4);
    for (size_t i = 0; i < tensor.data.size(); ++i) {  // little-endian regardless of the host
        uint32_t u;
        std::memcpy(&u, &tensor.data[i], 4);
        for (int b = 0; b < 4; ++b) out[data_at + 4 * i + b] = static_cast<char>(u >> (8 * b));
    }
    return out;
}

void write_npy(const std::string& path, const Tensor& tensor) {
    const std::string bytes = npy_bytes(tensor);
    cli::OutputFile file(path);
    file.write(bytes.data(), bytes.size());
    file.commit();
}

}  // namespace gapnet
