// Running a model over a labelled dataset: shared by `gapnet eval` and `gapnet compare`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gapnet/gapnet.h"

namespace gapnet::cli {

struct Evaluation {
    int64_t images = 0;      // evaluated
    int64_t unreadable = 0;  // skipped, with a warning
    int64_t top1 = 0, top5 = 0;
    std::vector<std::vector<int64_t>> confusion;  // [true class][predicted class], the model's classes
    std::vector<int64_t> predicted;               // per dataset image in order: its top-1 class; -1 skipped
    double seconds = 0;
};

// Classifies up to `limit` images (0: all) of `dataset` in batches. The dataset's labels are mapped to
// the model's outputs (by index for IDX files, by name for class folders: case-insensitive, any
// punctuation or space as '_'). Throws gapnet::Error if the labels cannot be mapped; an unreadable
// image is reported as a warning and counted. `progress` draws a bar on stderr.
Evaluation evaluate(const Model& model, const Dataset& dataset, const std::string& dataset_path, int64_t limit,
                    bool progress);

}  // namespace gapnet::cli
