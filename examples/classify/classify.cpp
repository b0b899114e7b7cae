// Classifies an image with a gapnet model and prints the three most probable classes:
//     classify MODEL.json IMAGE
#include <cstdio>
#include <gapnet/gapnet.h>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s MODEL.json IMAGE\n", argv[0]);
        return 2;
    }
    try {
        const gapnet::Model model = gapnet::Model::load(argv[1]);
        for (const gapnet::Prediction& p : model.classify_file(argv[2], 3))
            std::printf("%-12s %.4f\n", p.label.c_str(), p.probability);
    } catch (const gapnet::Error& e) {
        std::fprintf(stderr, "classify: %s\n", e.message().c_str());
        return 1;
    }
}
