// The command line of one gapnet command: each option and the positional arguments are declared
// with the variable they set, then parse() reads the arguments into them. Every command spells and
// checks its options the same way, and a wrong argument is one UsageError naming it.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gapnet::cli {

// A wrong command line: main() prints it with a pointer to --help and exits with kExitUsage.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Options are --name VALUE or --name=VALUE; "--" ends the options (all that follows is positional);
// "-" alone is positional (standard input). --help and -h print the help text.
class OptionParser {
public:
    explicit OptionParser(std::string help) : help_(std::move(help)) {}

    void flag(const std::string& name, bool& target);  // present: true
    void text(const std::string& name, std::string& target);
    // An integer from min to max, else "--top '0': expected an integer from 1 to 2147483647".
    void integer(const std::string& name, int64_t& target, int64_t min, int64_t max);
    void number(const std::string& name, double& target, double min, double max);
    // An option whose value the command checks itself: `apply` throws UsageError for a bad one.
    void option(const std::string& name, std::function<void(const std::string& value)> apply);

    // Positional arguments: at most one (a second is "unexpected argument"), or any number.
    void positional(std::string& target);
    void positionals(std::vector<std::string>& target);

    void append_help(const std::string& text);

    // Reads `args` into the declared variables, in order. Returns false if --help was given: the help
    // has then been printed and the command ends with success. Throws UsageError.
    [[nodiscard]] bool parse(const std::vector<std::string>& args);

private:
    struct Option {
        std::string name;
        bool takes_value;
        std::function<void(const std::string& value)> apply;
    };
    const Option* find(const std::string& name) const;
    void take_positional(const std::string& argument);

    std::string help_;
    std::vector<Option> options_;
    std::string* positional_ = nullptr;
    std::vector<std::string>* positionals_ = nullptr;
};

// `text` as an integer from min to max, else UsageError "OPTION 'TEXT': expected an integer from MIN to MAX".
int64_t parse_integer(const std::string& option, const std::string& text, int64_t min, int64_t max);

}  // namespace gapnet::cli
