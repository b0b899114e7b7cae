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

TEST_CASE("gzip: corrupt, truncated and oversized data is refused") {
    const std::string good =
        read_file(source_path("data/test-datasets/idx-gz/samples-labels-idx1-ubyte.gz"), 1 << 20, "");
    REQUIRE(good.size() == 64);                   // a 10-byte header, deflate data, the CRC-32 and size (4 + 4)
    REQUIRE(gunzip(good, 1 << 20).size() == 18);  // 4 + 4 header bytes + 10 labels
    std::string flipped = good;
    flipped[flipped.size() - 12] ^= 0x40;  // inside the deflate data
    REQUIRE_THROWS_WITH(
        gunzip(flipped, 1 << 20),
        "corrupt gzip file (zlib: invalid distance too far back, found after reading 56 of its 64 bytes)");
    std::string bad_crc = good;
    bad_crc[bad_crc.size() - 8] ^= 1;
    REQUIRE_THROWS_WITH(gunzip(bad_crc, 1 << 20),
                        "corrupt gzip file (zlib: incorrect data check, found after reading 60 of its 64 bytes)");
    std::string bad_method = good;
    bad_method[2] = 7;
    REQUIRE_THROWS_WITH(gunzip(bad_method, 1 << 20),
                        "corrupt gzip file (zlib: unknown compression method, found after reading 4 of its 64 bytes)");
    // Cut in half, its last 4 bytes are no trailer (they declare 1651846449 bytes, beyond what 32
    // bytes of deflate can make): the data are inflated until they end.
    REQUIRE_THROWS_WITH(gunzip(good.substr(0, 32), 1 << 20),
                        "truncated gzip file: it ends after 32 bytes, inside its compressed data");
    REQUIRE_THROWS_WITH(gunzip(good + std::string(4, '\0'), 1 << 20),
                        "4 bytes after the end of the gzip data (gapnet reads a single gzip member)");
    // Beyond the bound: refused from the trailer before inflating, or, when the trailer understates
    // the size (it holds the size modulo 2^32), while inflating.
    REQUIRE_THROWS_WITH(gunzip(good, 10), "decompresses to 18 bytes, more than the 10 allowed");
    std::string understated = good;
    understated[understated.size() - 4] = 5;
    REQUIRE_THROWS_WITH(gunzip(understated, 10), "decompresses to more than the 10 bytes allowed");
    REQUIRE_THROWS_WITH(gunzip(understated, 100),
                        "corrupt gzip file (zlib: incorrect length check, found after reading 64 of its 64 bytes)");
    REQUIRE(gunzip(good, 18).size() == 18);
}
