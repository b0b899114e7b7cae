#include "dataset.h"

#include <algorithm>
#include <filesystem>

#include "../error.h"
#include "byte_order.h"
#include "file.h"
#include "gzip.h"

namespace gapnet {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMaxIdxBytes = int64_t{1} << 31;  // 2 GiB decompressed

// An IDX file's content (http://yann.lecun.com/exdb/mnist/): magic 0x0000 | type | rank, then `rank`
// big-endian 32-bit sizes, then the values. Only unsigned bytes (type 0x08) are read.
struct Idx {
    std::vector<int64_t> dims;
    std::string bytes;  // the whole (decompressed) file
    size_t offset = 0;  // where the values start
};

Idx read_idx(const std::string& path) {
    std::string bytes;
    try {
        bytes = read_file(path, kMaxIdxBytes, "(IDX files are read up to 2 GiB)");
        if (is_gzip(bytes)) bytes = gunzip(bytes, kMaxIdxBytes);
    } catch (const Error& e) {
        throw Error(e.what(), path);
    }
    if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0) throw Error("not an IDX file (bad magic number)", path);
    if (byte_at(bytes, 2) != 0x08)
        throw Error("IDX value type " + std::to_string(byte_at(bytes, 2)) + " is not unsigned bytes (0x08)", path);
    Idx idx;
    const int rank = static_cast<int>(byte_at(bytes, 3));
    if (rank < 1 || rank > 4 || bytes.size() < 4 + 4 * static_cast<size_t>(rank))
        throw Error("IDX header with " + std::to_string(rank) + " dimensions is not valid or truncated", path);
    int64_t count = 1;
    for (int i = 0; i < rank; ++i) {
        idx.dims.push_back(big_endian32(bytes, 4 + 4 * i));
        count = checked_mul(count, idx.dims.back(), kMaxIdxBytes);
    }
    idx.offset = 4 + 4 * static_cast<size_t>(rank);
    if (static_cast<int64_t>(bytes.size() - idx.offset) != count)
        throw Error("IDX header declares " + std::to_string(count) + " values, the file holds " +
                        std::to_string(bytes.size() - idx.offset),
                    path);
    idx.bytes = std::move(bytes);
    return idx;
}

class IdxDataset : public DatasetReader {
public:
    IdxDataset(std::string images_path, Idx images, std::vector<int64_t> labels)
        : path_(std::move(images_path)), images_(std::move(images)), labels_(std::move(labels)) {
        const int64_t classes = labels_.empty() ? 0 : *std::max_element(labels_.begin(), labels_.end()) + 1;
        for (int64_t c = 0; c < classes; ++c) names_.push_back(std::to_string(c));
    }
    int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
    int64_t label(int64_t i) const override { return labels_[i]; }
    const std::vector<std::string>& class_names() const override { return names_; }
    bool labels_are_indices() const override { return true; }
    std::string describe(int64_t i) const override { return path_ + "[" + std::to_string(i) + "]"; }

    Tensor load(int64_t i, const InputSpec& spec) const override {
        const PixelFormat format{images_.dims[2], images_.dims[1], images_.dims.size() == 4 ? images_.dims[3] : 1};
        const int64_t n = format.height * format.width * format.channels;
        return preprocess_pixels(images_.bytes.data() + images_.offset + i * n, format, spec);
    }

private:
    std::string path_;
    Idx images_;
    std::vector<int64_t> labels_;
    std::vector<std::string> names_;
};

std::unique_ptr<DatasetReader> open_idx(const std::string& path) {
    Idx images = read_idx(path);
    if (images.dims.size() < 3 || (images.dims.size() == 4 && images.dims[3] != 1 && images.dims[3] != 3))
        throw Error("an IDX image file has 3 dimensions (N, H, W) or 4 (N, H, W, 1 or 3)", path);
    if (images.dims[1] < 1 || images.dims[2] < 1) throw Error("IDX images have no pixels", path);

    // The labels file beside it: "...-images-idx3-ubyte[.gz]" -> "...-labels-idx1-ubyte[.gz]".
    const fs::path p(path);
    std::string name = p.filename().string();
    const auto at = name.find("images-idx");
    if (at == std::string::npos)
        throw Error(
            "cannot find the labels file: the name does not contain 'images-idx' "
            "(expected e.g. t10k-images-idx3-ubyte.gz beside t10k-labels-idx1-ubyte.gz)",
            path);
    name.replace(at, 11, "labels-idx1");
    if (name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0) name.resize(name.size() - 3);
    std::string labels_path;
    for (const std::string& candidate : {name, name + ".gz"})
        if (fs::exists(p.parent_path() / candidate)) labels_path = (p.parent_path() / candidate).string();
    if (labels_path.empty())
        throw Error("no labels file beside it (looked for " + name + " and " + name + ".gz)", path);

    const Idx labels = read_idx(labels_path);
    if (labels.dims.size() != 1)
        throw Error("a labels file has 1 dimension, this one " + std::to_string(labels.dims.size()), labels_path);
    if (labels.dims[0] != images.dims[0])
        throw Error("has " + std::to_string(labels.dims[0]) + " labels for the " + std::to_string(images.dims[0]) +
                        " images of " + path,
                    labels_path);
    std::vector<int64_t> values(labels.bytes.begin() + static_cast<long>(labels.offset), labels.bytes.end());
    for (int64_t& v : values) v = static_cast<unsigned char>(v);
    return std::make_unique<IdxDataset>(path, std::move(images), std::move(values));
}

class FolderDataset : public DatasetReader {
public:
    FolderDataset(std::vector<std::string> classes, std::vector<std::pair<std::string, int64_t>> files,
                  ImageLimits limits)
        : classes_(std::move(classes)), files_(std::move(files)), limits_(limits) {}
    int64_t size() const override { return static_cast<int64_t>(files_.size()); }
    int64_t label(int64_t i) const override { return files_[i].second; }
    const std::vector<std::string>& class_names() const override { return classes_; }
    bool labels_are_indices() const override { return false; }
    std::string describe(int64_t i) const override { return files_[i].first; }
    Tensor load(int64_t i, const InputSpec& spec) const override { return load_image(files_[i].first, spec, limits_); }

private:
    std::vector<std::string> classes_;
    std::vector<std::pair<std::string, int64_t>> files_;
    ImageLimits limits_;
};

std::unique_ptr<DatasetReader> open_folder(const std::string& path, const ImageLimits& limits) {
    std::vector<fs::path> class_dirs;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(path, ec))
        if (entry.is_directory() && entry.path().filename().string()[0] != '.') class_dirs.push_back(entry.path());
    if (ec) throw Error("cannot list the folder: " + ec.message(), path);
    if (class_dirs.empty())
        throw Error("has no class sub-folders (a folder dataset holds one sub-folder of images per class)", path);
    std::sort(class_dirs.begin(), class_dirs.end());
    std::vector<std::string> classes;
    std::vector<std::pair<std::string, int64_t>> files;
    for (size_t c = 0; c < class_dirs.size(); ++c) {
        classes.push_back(class_dirs[c].filename().string());
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(class_dirs[c], ec))
            if (!entry.is_directory() && entry.path().filename().string()[0] != '.')
                names.push_back(entry.path().string());
        if (ec) throw Error("cannot list the folder: " + ec.message(), class_dirs[c].string());
        std::sort(names.begin(), names.end());
        for (auto& n : names) files.emplace_back(std::move(n), static_cast<int64_t>(c));
    }
    if (files.empty()) throw Error("its class sub-folders hold no files", path);
    return std::make_unique<FolderDataset>(std::move(classes), std::move(files), limits);
}

}  // namespace

std::unique_ptr<DatasetReader> open_dataset(const std::string& path, const ImageLimits& limits) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) throw Error("does not exist", path);
    return fs::is_directory(status) ? open_folder(path, limits) : open_idx(path);
}

}  // namespace gapnet
