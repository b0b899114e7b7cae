// What the commands write, checked: standard output is flushed and closed with its error tested
// before the exit status is decided, and a file given with -o is written whole or not at all.
// A failure is an OutputError, which main() reports as one line (or, for a closed pipe, quietly).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace gapnet::cli {

// An output that could not be written. name(): the file, or "standard output"; error(): the errno
// (0 when it is not known); what(): the problem without the name ("No space left on device").
class OutputError : public std::runtime_error {
public:
    OutputError(std::string name, int error, const std::string& what)
        : std::runtime_error(what), name_(std::move(name)), error_(error) {}
    const std::string& name() const noexcept { return name_; }
    int error() const noexcept { return error_; }
    // The reader of a pipe went away (`| head`): not a failure to report, as other Unix tools do.
    bool pipe_closed() const noexcept;

private:
    std::string name_;
    int error_;
};

// Flushes standard output; throws OutputError if this or any earlier write to it failed, once: later
// calls return, so that a failure is reported by one line. A command that streams its results calls it
// after each part, so that a failure stops the run.
void flush_stdout();

// flush_stdout(), then closes standard output's descriptor, which is when some file systems (NFS)
// report a failed write. main() calls it once, after the command, before the exit status is decided.
void close_stdout();

// A file written whole or not at all. A regular file (or a new name) is written to a temporary file
// beside it (mkstemp in the same folder, so the rename stays on one file system) and renamed over it
// by commit() only when every write and the close succeeded: a failure never leaves a truncated file
// under the real name, and the destructor removes the temporary. A symbolic link to a regular file
// is followed, the link kept. A target that is not a regular file (a device such as /dev/full, a pipe,
// /dev/stdout) is written in place, and nothing is created beside it. Every failure throws
// OutputError naming `path`.
class OutputFile {
public:
    explicit OutputFile(std::string path);
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    void write(const void* data, size_t size);
    // Closes the file and, if it was written to a temporary, renames it over the target.
    void commit();

private:
    // Throws OutputError(path_, error): "DOING: STRERROR", or "STRERROR" when `doing` is empty.
    [[noreturn]] void fail(const std::string& doing, int error) const;

    std::string path_;       // the target, as given (what messages name)
    std::string target_;     // where the temporary is renamed to: path_, or the file a link points to
    std::string temporary_;  // empty when written in place
    int fd_ = -1;
};

}  // namespace gapnet::cli
