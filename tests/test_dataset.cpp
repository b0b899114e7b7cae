// Dataset readers: IDX files (raw and gzip) and class folders give the same images as the PNG files
// they were made from (tools/make_test_images.py); broken gzip data is refused.
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "engine/io/dataset.h"
#include "engine/io/file.h"
#include "engine/io/gzip.h"
#include "helpers.h"

using namespace gapnet;
using gapnet::test::source_path;

namespace {

InputSpec gray28() {
    InputSpec spec;
    spec.channels = 1, spec.height = 28, spec.width = 28;
    spec.mean = {0.5f};
    spec.std = {0.25f};
    return spec;
}

const char* kClasses[] = {"t-shirt_top", "trouser", "pullover", "dress", "coat",
                          "sandal",      "shirt",   "sneaker",  "bag",   "ankle_boot"};

}  // namespace

TEST_CASE("IDX files, raw and gzipped, hold the sample images with their labels") {
    for (const char* path : {"data/test-datasets/idx/samples-images-idx3-ubyte",
                             "data/test-datasets/idx-gz/samples-images-idx3-ubyte.gz"}) {
        INFO(path);
        const auto dataset = open_dataset(source_path(path));
        REQUIRE(dataset->size() == 10);
        REQUIRE(dataset->labels_are_indices());
        for (int64_t i = 0; i < 10; ++i) {
            REQUIRE(dataset->label(i) == i);
            const Tensor expected =
                load_image(source_path(std::string("data/samples/") + kClasses[i] + ".png"), gray28());
            REQUIRE(dataset->load(i, gray28()).data == expected.data);
        }
    }
}

TEST_CASE("class folders: sorted class names, every file listed") {
    const auto dataset = open_dataset(source_path("data/test-datasets/folders"));
    REQUIRE_FALSE(dataset->labels_are_indices());
    REQUIRE(dataset->class_names().size() == 10);
    REQUIRE(dataset->class_names().front() == "ankle_boot");
    REQUIRE(dataset->size() == 11);  // bag/ also holds broken.png
    REQUIRE(dataset->describe(1) == source_path("data/test-datasets/folders/bag/0.png"));
    REQUIRE_THROWS_AS(dataset->load(2, gray28()), Error);  // bag/broken.png
}

TEST_CASE("gzip: corrupt and truncated data is refused") {
    const std::string good =
        read_file(source_path("data/test-datasets/idx-gz/samples-labels-idx1-ubyte.gz"), 1 << 20, "");
    REQUIRE(gunzip(good, 1 << 20).size() == 18);  // 4 + 4 header bytes + 10 labels
    std::string flipped = good;
    flipped[flipped.size() - 12] ^= 0x40;  // inside the deflate data
    REQUIRE_THROWS_AS(gunzip(flipped, 1 << 20), Error);
    std::string bad_crc = good;
    bad_crc[bad_crc.size() - 8] ^= 1;
    REQUIRE_THROWS_WITH(gunzip(bad_crc, 1 << 20), "gzip CRC-32 mismatch: the file is corrupt");
    REQUIRE_THROWS_AS(gunzip(good.substr(0, good.size() / 2), 1 << 20), Error);
    REQUIRE_THROWS_WITH(gunzip(good, 10), "decompresses to 18 bytes, more than the 10 allowed");
}
