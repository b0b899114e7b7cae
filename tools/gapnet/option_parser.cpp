#include "option_parser.h"

#include <cerrno>
#include <cstdlib>
#include <iostream>

namespace gapnet::cli {

int64_t parse_integer(const std::string& option, const std::string& text, int64_t min, int64_t max) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end || errno || v < min || v > max)
        throw UsageError(option + " '" + text + "': expected an integer from " + std::to_string(min) + " to " +
                         std::to_string(max));
    return v;
}

void OptionParser::flag(const std::string& name, bool& target) {
    options_.push_back({name, false, [&target](const std::string&) { target = true; }});
}

void OptionParser::text(const std::string& name, std::string& target) {
    option(name, [&target](const std::string& value) { target = value; });
}

void OptionParser::integer(const std::string& name, int64_t& target, int64_t min, int64_t max) {
    option(name,
           [&target, name, min, max](const std::string& value) { target = parse_integer(name, value, min, max); });
}

void OptionParser::number(const std::string& name, double& target, double min, double max) {
    option(name, [&target, name, min, max](const std::string& value) {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || *end || errno || !(v >= min && v <= max))
            throw UsageError(name + " '" + value + "': expected a number from " + std::to_string(min) + " to " +
                             std::to_string(max));
        target = v;
    });
}

void OptionParser::option(const std::string& name, std::function<void(const std::string& value)> apply) {
    options_.push_back({name, true, std::move(apply)});
}

void OptionParser::positional(std::string& target) { positional_ = &target; }

void OptionParser::positionals(std::vector<std::string>& target) { positionals_ = &target; }

void OptionParser::append_help(const std::string& text) { help_ += text; }

const OptionParser::Option* OptionParser::find(const std::string& name) const {
    for (const Option& option : options_)
        if (option.name == name) return &option;
    return nullptr;
}

void OptionParser::take_positional(const std::string& argument) {
    if (positionals_) {
        positionals_->push_back(argument);
    } else if (positional_ && positional_->empty()) {
        *positional_ = argument;
    } else {
        throw UsageError("unexpected argument '" + argument + "'");
    }
}

bool OptionParser::parse(const std::vector<std::string>& args) {
    bool options_ended = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& argument = args[i];
        if (options_ended || argument.size() < 2 || argument[0] != '-') {
            take_positional(argument);
            continue;
        }
        if (argument == "--") {
            options_ended = true;
            continue;
        }
        if (argument == "--help" || argument == "-h") {
            std::cout << help_;
            return false;
        }
        const size_t eq = argument.find('=');
        const std::string name = argument.substr(0, eq);
        const Option* option = find(name);
        if (!option) throw UsageError("unknown option '" + name + "'");
        if (!option->takes_value) {
            if (eq != std::string::npos) throw UsageError(name + " takes no value");
            option->apply("");
        } else if (eq != std::string::npos) {
            option->apply(argument.substr(eq + 1));
        } else if (i + 1 < args.size()) {
            option->apply(args[++i]);
        } else {
            throw UsageError(name + " needs a value");
        }
    }
    return true;
}

}  // namespace gapnet::cli
