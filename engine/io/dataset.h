// Labelled images for evaluation: an MNIST-style IDX image file (its labels file beside it), or a
// folder with one sub-folder of images per class.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../model.h"
#include "../tensor.h"
#include "image.h"

namespace gapnet {

class DatasetReader {
public:
    virtual ~DatasetReader() = default;

    virtual int64_t size() const = 0;
    // The class of image i: an index into class_names().
    virtual int64_t label(int64_t i) const = 0;
    // Class names: the sub-folder names of a folder dataset; "0", "1", ... for IDX files, whose
    // labels are the model's output indices.
    virtual const std::vector<std::string>& class_names() const = 0;
    // True when labels are output indices (IDX), false when they are names to match to the model's labels.
    virtual bool labels_are_indices() const = 0;
    // Image i as the model's input tensor [C, H, W]; throws gapnet::Error if it cannot be read.
    virtual Tensor load(int64_t i, const InputSpec& spec) const = 0;
    // What to call image i in messages: its file, or "FILE[i]".
    virtual std::string describe(int64_t i) const = 0;
};

// Opens PATH: a directory is a folder dataset; a file is an IDX image file (gzip or not), whose
// labels file is found beside it ("...-images-idx3-ubyte[.gz]" -> "...-labels-idx1-ubyte[.gz]").
// Throws gapnet::Error naming what is wrong.
std::unique_ptr<DatasetReader> open_dataset(const std::string& path, const ImageLimits& limits = {});

}  // namespace gapnet
