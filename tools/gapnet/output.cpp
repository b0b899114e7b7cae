#include "output.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gapnet::cli {
namespace {

const char* kStdout = "standard output";

}  // namespace

bool OutputError::pipe_closed() const noexcept { return error_ == EPIPE; }

void flush_stdout() {
    static bool thrown = false;  // one failure, one line
    errno = 0;
    if (thrown || (std::fflush(stdout) == 0 && !std::ferror(stdout))) return;
    thrown = true;
    // A failed fflush sets errno. The error flag alone means an earlier write failed and stdio dropped
    // its data; glibc retries the pending data on the next fflush, so errno is known in practice.
    const int error = errno;
    throw OutputError(kStdout, error, error ? std::strerror(error) : "a write failed");
}

void close_stdout() {
    flush_stdout();
    if (std::ferror(stdout)) return;  // reported
    // EBADF: standard output was closed when the program started and nothing was written to it (a
    // write would have failed above).
    if (close(STDOUT_FILENO) != 0 && errno != EBADF) throw OutputError(kStdout, errno, std::strerror(errno));
}

OutputFile::OutputFile(std::string path) : path_(std::move(path)), target_(path_) {
    struct stat st {};
    const bool exists = stat(path_.c_str(), &st) == 0;
    if (exists && !S_ISREG(st.st_mode)) {
        fd_ = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd_ < 0) fail("cannot open", errno);
        return;
    }
    if (exists) {  // replace the file a symbolic link points to, not the link
        if (char* resolved = realpath(path_.c_str(), nullptr)) {
            target_ = resolved;
            std::free(resolved);
        }
    }
    const size_t slash = target_.rfind('/');
    const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : target_.substr(0, slash);
    const std::string name = slash == std::string::npos ? target_ : target_.substr(slash + 1);
    std::string pattern = folder + "/." + name + ".XXXXXX";
    fd_ = mkstemp(pattern.data());
    if (fd_ < 0) fail("cannot create a temporary file in " + folder, errno);
    temporary_ = pattern;
    // mkstemp makes the file 0600; give it the mode the target has, or the one a new file would get.
    // (umask can only be read by setting it; no other thread creates files while a command writes.)
    mode_t mode = st.st_mode & 07777;
    if (!exists) {
        const mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    if (fchmod(fd_, mode) != 0) fail("cannot set the mode of " + temporary_, errno);
}

OutputFile::~OutputFile() {
    if (fd_ >= 0) close(fd_);
    if (!temporary_.empty()) unlink(temporary_.c_str());
}

void OutputFile::write(const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd_, bytes, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("", n < 0 ? errno : EIO);
        bytes += n;
        size -= static_cast<size_t>(n);
    }
}

void OutputFile::commit() {
    const int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) fail("", errno);
    if (temporary_.empty()) return;
    if (std::rename(temporary_.c_str(), target_.c_str()) != 0) fail("cannot rename " + temporary_ + " to it", errno);
    temporary_.clear();
}

void OutputFile::fail(const std::string& doing, int error) const {
    throw OutputError(path_, error, doing.empty() ? std::strerror(error) : doing + ": " + std::strerror(error));
}

}  // namespace gapnet::cli
