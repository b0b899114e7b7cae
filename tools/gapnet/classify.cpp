// gapnet classify: the top-K labels of each image, as a table or as JSON lines; the images are given as
// arguments or listed in a file (--files-from) that is streamed through the model batch by batch.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "output.h"

namespace gapnet::cli {
namespace {

const char* kHelp = R"(Usage: gapnet classify [--model FILE] [--top K] [--json] [--verify] [options] IMAGE...
       gapnet classify [--model FILE] [--top K] [--json] [--verify] [options] --files-from LIST

Classifies each IMAGE (PNG, JPEG, BMP, GIF, TGA, PSD, PNM) with the model and prints its K most
probable labels. Images are converted, resized and normalized as the model file says. An IMAGE of
"-" is read from standard input.

Options:
  --model FILE       the model (default: the bundled models/fashion_gap.json, or $GAPNET_MODEL)
  --top K            labels per image (default 5, at most the number of classes)
  --batch N          images run through the model together (default 32; fewer when one image's
                     activations are large, so that a batch stays within 256 MB)
  --verify           first re-run the test cases recorded in the model file (see gapnet verify)
  --json             one JSON object per image per line (JSON Lines):
                     {"file":"...","top":[{"label":"...","index":3,"probability":0.91},...]}
                     an image that cannot be read gives {"file":"...","error":"..."}
  --files-from LIST  the images listed in the file LIST ("-": standard input), one path per line,
                     instead of IMAGE arguments. Empty lines are skipped; every other line is a path
                     exactly as written (a path that holds a newline cannot be listed: give it as
                     an IMAGE argument). The list is read as the images are classified, so memory
                     stays the same for any length, and each batch's results are written as soon as
                     it is done. On a terminal, standard error shows how many images are done.

Results are printed in the order the images are given. An unreadable image is reported (in the
output too with --json) and the others are still classified; the exit status is then 1.
)";

void print_table(const std::string& file, const std::vector<Prediction>& top) {
    size_t width = 0;
    for (const Prediction& p : top) width = std::max(width, p.label.size());
    std::printf("%s\n", file.c_str());
    for (size_t i = 0; i < top.size(); ++i)
        std::printf("  %2zu  %-*s  %.4f\n", i + 1, static_cast<int>(width), top[i].label.c_str(),
                    static_cast<double>(top[i].probability));
}

void print_json(const std::string& file, const std::vector<Prediction>& top) {
    nlohmann::ordered_json ranked = nlohmann::ordered_json::array();
    for (const Prediction& p : top)
        ranked.push_back({{"label", p.label}, {"index", p.index}, {"probability", shortest_double(p.probability)}});
    print_json_line({{"file", file}, {"top", ranked}});
}

// The images to classify, in order, one at a time: the IMAGE arguments, or the lines of a
// --files-from list read as they are needed, so that a list of any length is never held in memory.
class ImageNames {
public:
    explicit ImageNames(const std::vector<std::string>& arguments) : arguments_(&arguments) {}
    explicit ImageNames(std::istream& list) : list_(&list) {}

    // The next image's name; false after the last.
    bool next(std::string& name) {
        if (!list_) {
            if (next_argument_ == arguments_->size()) return false;
            name = (*arguments_)[next_argument_++];
            return true;
        }
        while (std::getline(*list_, name))
            if (!name.empty()) return true;
        return false;
    }

    // The file to read for `name`. An IMAGE argument "-" is standard input; a listed line is a path as
    // written (with --files-from -, standard input is the list itself).
    std::string path(const std::string& name) const { return list_ ? name : image_path(name); }

private:
    const std::vector<std::string>* arguments_ = nullptr;
    size_t next_argument_ = 0;
    std::istream* list_ = nullptr;
};

// "12,345 images, 2 unreadable" on stderr, redrawn in place after each batch: only on a terminal,
// where it shows a long run's progress; in a file or a pipe it would be noise among the errors.
class ProgressLine {
public:
    explicit ProgressLine(bool shown) : shown_(shown) {}
    void draw(int64_t images, int64_t unreadable) {
        if (!shown_) return;
        std::string text = with_commas(images);  // (built piece by piece: GCC 12 warns falsely, -Wrestrict)
        text += " images, ";
        text += with_commas(unreadable);
        text += " unreadable";
        std::fprintf(stderr, "\r%s", text.c_str());
        std::fflush(stderr);
        width_ = text.size();
    }
    // Erases the line, before another line is written to stderr and at the end.
    void clear() {
        if (width_ == 0) return;
        std::fprintf(stderr, "\r%s\r", std::string(width_, ' ').c_str());
        width_ = 0;
    }

private:
    bool shown_;
    size_t width_ = 0;
};

}  // namespace

int classify_command(const std::vector<std::string>& arguments) {
    std::string model_path, files_from;
    int64_t k = 5, batch_size = 32;
    bool json = false, check = false;
    std::vector<std::string> images;
    InputOptions options;
    OptionParser parser(kHelp);
    parser.text("--model", model_path);
    parser.integer("--top", k, 1, INT32_MAX);
    parser.integer("--batch", batch_size, 1, 4096);
    parser.flag("--verify", check);
    parser.flag("--json", json);
    parser.text("--files-from", files_from);
    parser.positionals(images);
    declare_input_options(parser, options);
    if (!parser.parse(arguments)) return kExitOk;
    if (images.empty() && files_from.empty()) throw UsageError("no image given");
    if (!images.empty() && !files_from.empty()) throw UsageError("IMAGE arguments and --files-from exclude each other");

    std::ifstream list_file;
    if (!files_from.empty() && files_from != "-") {
        if (std::filesystem::is_directory(files_from)) {
            print_error(files_from, "is a directory, not a file");
            return kExitInputFailed;
        }
        list_file.open(files_from);
        if (!list_file) {
            print_error(files_from, std::string("cannot open: ") + std::strerror(errno));
            return kExitInputFailed;
        }
    }
    ImageNames names = files_from.empty() ? ImageNames(images) : ImageNames(files_from == "-" ? std::cin : list_file);

    if (model_path.empty()) model_path = default_model_path();
    std::optional<Model> loaded = load_model_or_report(model_path, options.api());
    if (!loaded) return kExitInputFailed;
    const Model& model = *loaded;
    if (check) {
        const VerifyReport report = model.verify();
        if (report.cases == 0 || !report.passed) {
            print_error(model_path, report.cases == 0 ? "has no \"tests\" to verify"
                                                      : describe_failure(model, report, report.tolerance));
            return kExitInputFailed;
        }
    }

    // Images go through the model in batches; each batch's results are printed, in the order the
    // images were given, and flushed as soon as it is done; a write that fails ends the run.
    const int64_t per_image = std::max<int64_t>(1, model.summary().working_bytes_per_image);
    batch_size = std::clamp<int64_t>((int64_t{256} << 20) / per_image, 1, batch_size);
    ProgressLine progress(!files_from.empty() && isatty(STDERR_FILENO));
    int64_t done = 0, failed = 0;
    std::vector<std::string> batch_names;
    std::string name;
    const auto flush_results = [&progress] {  // a failed write stops the run, its line below no progress
        try {
            flush_stdout();
        } catch (const OutputError&) {
            progress.clear();
            throw;
        }
    };
    while (true) {
        batch_names.clear();
        while (static_cast<int64_t>(batch_names.size()) < batch_size && names.next(name)) batch_names.push_back(name);
        if (batch_names.empty()) break;
        const size_t count = batch_names.size();
        std::vector<std::string> paths;
        for (const std::string& file : batch_names) paths.push_back(names.path(file));
        const InputBatch read = model.inputs_from_files(paths);
        const std::vector<std::vector<Prediction>> predictions = read.batch.shape[0]
                                                                     ? model.classify(read.batch, static_cast<int>(k))
                                                                     : std::vector<std::vector<Prediction>>();
        size_t n = 0;
        for (size_t i = 0; i < count; ++i) {
            const std::string& file = batch_names[i];
            if (read.errors[i]) {
                const std::string error = problem(*read.errors[i]);
                ++failed;
                flush_results();
                progress.clear();
                print_error(file, error);
                if (json) print_json_line({{"file", file}, {"error", error}});
                continue;
            }
            json ? print_json(file, predictions[n]) : print_table(file, predictions[n]);
            ++n;
        }
        flush_results();
        done += static_cast<int64_t>(count);
        progress.draw(done, failed);
    }
    progress.clear();
    return failed ? kExitInputFailed : kExitOk;
}

}  // namespace gapnet::cli
