#include "model_document.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <system_error>

#include "../error.h"
#include "base64.h"

namespace gapnet {
namespace {

using json = nlohmann::json;

// The placeholder for tensor_data[index]: a binary value, which no JSON text can produce.
json placeholder(std::vector<TensorData>& tensor_data, TensorData data) {
    tensor_data.push_back(std::move(data));
    return json::binary({}, static_cast<std::uint64_t>(tensor_data.size() - 1));
}

TensorData base64_data(std::string_view text) {
    TensorData data;
    data.source = TensorData::Source::base64_string;
    data.length = text.size();
    data.bytes = base64_decoded_size(text);
    data.values.resize((data.bytes + 3) / 4);
    const size_t bad = decode_base64(text, reinterpret_cast<unsigned char*>(data.values.data()));
    if (bad != std::string::npos) {
        data.invalid_character = bad;
        data.values = {};
    } else if constexpr (std::endian::native == std::endian::big) {
        for (float& v : data.values) {
            const auto u = std::bit_cast<uint32_t>(v);
            v = std::bit_cast<float>(u >> 24 | (u >> 8 & 0xFF00) | (u << 8 & 0xFF0000) | u << 24);
        }
    }
    return data;
}

void note_non_number(TensorData& data, json::value_t type) {
    if (data.first_non_number) return;
    data.first_non_number = data.length;
    data.non_number_type = type;
}

// Whether [first, last) holds only printable ASCII characters other than '\\': a JSON string's
// text as it stands, with no escape to undo and no UTF-8 to check. Eight bytes at a time: a byte's
// top bit is set, or is borrowed from by subtracting 0x20 (a byte below 0x20) or 1 from the byte
// xor '\\' (a backslash).
bool plain_ascii(const char* first, const char* last) {
    constexpr uint64_t ones = 0x0101010101010101, tops = 0x8080808080808080;
    for (; last - first >= 8; first += 8) {
        uint64_t w;
        std::memcpy(&w, first, 8);
        const uint64_t x = w ^ ones * '\\';
        if ((w | ((w - ones * 0x20) & ~w) | ((x - ones) & ~x)) & tops) return false;
    }
    for (; first < last; ++first) {
        const auto c = static_cast<unsigned char>(*first);
        if (c < 0x20 || c >= 0x80 || c == '\\') return false;
    }
    return true;
}

// A key repeated in one object, on its way out of the reader: each container it passes adds its
// step to the path (".layers", "[3]"), innermost first, so that the path costs nothing until then.
struct RepeatedKey {
    std::string key;
    std::vector<std::string> steps;
};

// How the byte at `p` (or the end of the text, at `end`) reads in a message: printable ASCII as
// itself, anything else as a byte value.
std::string describe_byte(const char* p, const char* end) {
    if (p == end) return "the end of the text (is the file truncated?)";
    const auto c = static_cast<unsigned char>(*p);
    if (c > 0x20 && c < 0x7F) return std::string("'") + *p + "'";
    char hex[16];
    std::snprintf(hex, sizeof hex, "byte 0x%02x", c);
    return hex;
}

constexpr const char* kValue = "a value (an object, array, string, number, true, false or null)";

// A recursive-descent reader over the text, building what nlohmann's parser would, and refusing
// (throwing gapnet::Error) wherever nlohmann's parser, or the loader's rules on it, would refuse.
class Reader {
public:
    explicit Reader(std::string_view text) : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

    ModelDocument document() {
        if (end_ - p_ >= 3 && p_[0] == '\xEF' && p_[1] == '\xBB' && p_[2] == '\xBF') p_ += 3;  // a byte order mark
        ModelDocument doc;
        try {
            doc.tree = value();
        } catch (const RepeatedKey& repeated) {
            std::string where;
            for (auto step = repeated.steps.rbegin(); step != repeated.steps.rend(); ++step) where += *step;
            if (!where.empty() && where.front() == '.') where.erase(0, 1);
            throw Error("key \"" + repeated.key + "\" appears twice in " +
                            (repeated.steps.empty() ? "the top-level object" : "this object") +
                            " (JSON keys must be unique)",
                        where);
        }
        skip_whitespace();
        // nlohmann's lexer reads a NUL as the end of the input
        if (p_ != end_ && *p_ != '\0') expected(p_, "the end of the text after the top-level value");
        doc.tensor_data = std::move(tensor_data_);
        return doc;
    }

private:
    // "at line L, column C (byte B)" for the byte at `at`: lines and columns count from 1, in bytes,
    // as an editor's status line shows them; the offset from 0, as a hex dump shows it.
    std::string location(const char* at) const {
        const auto line_start =
            std::find(std::make_reverse_iterator(at), std::make_reverse_iterator(begin_), '\n').base();
        return "at line " + std::to_string(std::count(begin_, at, '\n') + 1) + ", column " +
               std::to_string(at - line_start + 1) + " (byte " + std::to_string(at - begin_) + ")";
    }
    [[noreturn]] void refuse(const char* at, const std::string& problem) const {
        throw Error("not valid JSON " + location(at) + ": " + problem);
    }
    [[noreturn]] void expected(const char* at, const std::string& what) const {
        refuse(at, "expected " + what + ", got " + describe_byte(at, end_));
    }

    bool at(char c) const { return p_ < end_ && *p_ == c; }
    bool consume(char c) {
        if (!at(c)) return false;
        ++p_;
        return true;
    }
    void skip_whitespace() {
        while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
    }

    // Nesting, as nlohmann's parse callback sees it (its depth: the containers open around an event).
    void scalar_or_key() const {
        if (level_ > kMaxJsonNesting) too_deep();
    }
    void open_container() {
        if (level_ > kMaxJsonNesting) too_deep();
        ++level_;
        ++p_;
    }
    void close_container(char bracket, const char* expectation) {
        skip_whitespace();
        if (!consume(bracket)) expected(p_, expectation);
        --level_;
    }
    [[noreturn]] void too_deep() const {
        throw Error("JSON nested deeper than " + std::to_string(kMaxJsonNesting) + " levels, " + location(p_));
    }

    json value() {
        skip_whitespace();
        if (p_ == end_) expected(p_, kValue);
        switch (*p_) {
            case '{': return object();
            case '[': return array();
            case '"': {
                scalar_or_key();
                std::string buffer;
                return std::string(string(buffer));
            }
            case 't': return literal("true", true);
            case 'f': return literal("false", false);
            case 'n': return literal("null", nullptr);
            case '-': return number();
            default:
                if (*p_ >= '0' && *p_ <= '9') return number();
                expected(p_, kValue);
        }
    }

    json literal(std::string_view word, json result) {
        scalar_or_key();
        for (size_t i = 0; i < word.size(); ++i)
            if (p_ + i == end_ || p_[i] != word[i]) expected(p_ + i, std::string(word));
        p_ += word.size();
        return result;
    }

    // The length of the number at p_ (a '-' or a digit), -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    // as RFC 8259 writes it, and whether it is an integer (neither fraction nor exponent); refused
    // where it breaks that grammar, or where a digit follows it (a leading zero: "01").
    size_t scan_number(bool& integer) const {
        const char* p = p_;
        const auto digits = [&](const char* where) {
            if (p == end_ || *p < '0' || *p > '9') expected(p, std::string("a digit ") + where);
            while (p < end_ && *p >= '0' && *p <= '9') ++p;
        };
        if (*p == '-') ++p;
        if (p < end_ && *p == '0')
            ++p;
        else
            digits("after '-'");
        integer = true;
        if (p < end_ && *p == '.') ++p, digits("after the decimal point"), integer = false;
        if (p < end_ && (*p == 'e' || *p == 'E')) {
            if (++p < end_ && (*p == '+' || *p == '-')) ++p;
            digits("in the exponent"), integer = false;
        }
        if (p < end_ && *p >= '0' && *p <= '9')
            refuse(p_, "a number may not start with the digit 0 followed by another digit");
        return static_cast<size_t>(p - p_);
    }

    // The number at `first` as a double, as nlohmann's get<double>() returns it: the nearest double (for an
    // integer too, nlohmann converting its int64/uint64 exactly like that), except that the integer -0
    // is +0. Refused past the double range, as nlohmann refuses it ("number overflow"); a number too
    // small for a double is 0 or a denormal, as std::strtod (nlohmann's reader) makes it.
    double number_value(const char* first, size_t length, bool integer) const {
        // std::from_chars rounds to nearest, as std::strtod does, and is several times faster. Beyond
        // the double range either way, it leaves `value` alone; strtod gives 0 or infinity (with the
        // "C" locale's '.', which gapnet never changes).
        double value = 0;
        if (std::from_chars(first, first + length, value).ec == std::errc::result_out_of_range)
            value = std::strtod(std::string(first, length).c_str(), nullptr);
        if (!std::isfinite(value)) {
            const std::string_view text(first, std::min<size_t>(length, 40));
            refuse(first, "the number " + std::string(text) + (length > text.size() ? "..." : "") +
                              " is beyond the range of a double");
        }
        return integer && value == 0 ? 0.0 : value;  // "-0" is nlohmann's integer 0, which converts to +0
    }

    // As nlohmann stores it: an integer that fits uint64_t (no sign) or int64_t (a sign) stays one.
    json number() {
        scalar_or_key();
        bool integer;
        const size_t length = scan_number(integer);
        const char* first = p_;
        p_ += length;
        if (integer && *first == '-') {
            if (int64_t n; std::from_chars(first, p_, n).ec == std::errc()) return n;  // the whole token, or too large
        } else if (integer) {
            if (uint64_t n; std::from_chars(first, p_, n).ec == std::errc()) return n;
        }
        return number_value(first, length, integer);
    }

    // read(), with step() (".layers", "[3]") added to the path of a key repeated inside what it reads.
    template <typename Read, typename Step>
    static json within(Read&& read, Step&& step) {
        try {
            return read();
        } catch (RepeatedKey& repeated) {
            repeated.steps.push_back(step());
            throw;
        }
    }

    json array() {
        open_container();
        json array = json::array();
        skip_whitespace();
        if (!at(']')) {
            do {
                array.push_back(
                    within([&] { return value(); }, [&] { return "[" + std::to_string(array.size()) + "]"; }));
            } while ((skip_whitespace(), consume(',')));
        }
        close_container(']', "',' or ']'");
        return array;
    }

    json object() {
        open_container();
        json object = json::object();
        auto& members = object.get_ref<json::object_t&>();
        skip_whitespace();
        if (!at('}')) {
            do {
                skip_whitespace();
                if (!at('"'))
                    expected(p_, members.empty() ? "a key (a string in double quotes) or '}'"
                                                 : "a key (a string in double quotes)");
                std::string buffer;
                std::string key(string(buffer));
                scalar_or_key();
                skip_whitespace();
                if (!consume(':')) expected(p_, "':' after the key");
                json member =
                    within([&] { return key == "data" ? tensor_data_or_value() : value(); }, [&] { return "." + key; });
                if (const auto [it, added] = members.try_emplace(std::move(key), std::move(member)); !added)
                    throw RepeatedKey{it->first, {}};
                skip_whitespace();
            } while (consume(','));
        }
        close_container('}', "',' or '}'");
        return object;
    }

    // A "data" value: an array or a string is decoded into tensor_data_, anything else is a value.
    json tensor_data_or_value() {
        skip_whitespace();
        if (at('[')) return number_array();
        if (at('"')) {
            scalar_or_key();
            std::string buffer;
            return placeholder(tensor_data_, base64_data(string(buffer)));
        }
        return value();
    }

    // Numbers are collected in numbers_, reused from array to array, and copied out at their exact
    // count: a vector grown in place would keep up to twice the memory it needs.
    json number_array() {
        open_container();
        TensorData data;
        numbers_.clear();
        skip_whitespace();
        if (!at(']')) {
            do {
                skip_whitespace();
                if (p_ < end_ && (*p_ == '-' || (*p_ >= '0' && *p_ <= '9'))) {
                    scalar_or_key();
                    bool integer;
                    const size_t length = scan_number(integer);
                    const double d = number_value(p_, length, integer);
                    if (!data.first_non_number) numbers_.push_back(static_cast<float>(d));
                    p_ += length;
                } else {
                    // Its values are not used from here on: numbers_ is free for a "data" nested in the element.
                    note_non_number(
                        data, within([&] { return value(); }, [&] { return "[" + std::to_string(data.length) + "]"; })
                                  .type());
                }
                ++data.length;
                skip_whitespace();
            } while (consume(','));
        }
        close_container(']', "',' or ']'");
        if (!data.first_non_number) data.values.assign(numbers_.begin(), numbers_.end());
        return placeholder(tensor_data_, std::move(data));
    }

    // The string at p_ (its opening quote), unescaped: a view of the text itself when it has neither
    // escapes nor non-ASCII characters, else of `buffer`.
    std::string_view string(std::string& buffer) {
        const char* first = ++p_;
        if (const auto* quote = static_cast<const char*>(std::memchr(p_, '"', static_cast<size_t>(end_ - p_)));
            quote && plain_ascii(first, quote)) {
            p_ = quote + 1;
            return {first, static_cast<size_t>(quote - first)};
        }
        buffer.clear();
        while (true) {
            if (p_ == end_) expected(p_, "'\"' to end the string");
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') break;
            if (c == '\\')
                escape(buffer);
            else if (c < 0x20)
                refuse(p_, "a control character (" + describe_byte(p_, end_) + ") must be escaped in a string");
            else if (c < 0x80)
                buffer += *p_++;
            else
                utf8_sequence(buffer);
        }
        ++p_;
        return buffer;
    }

    void escape(std::string& out) {
        const char* backslash = p_++;
        if (p_ == end_) expected(p_, "an escape after '\\'");
        switch (*p_++) {
            case '"': out += '"'; return;
            case '\\': out += '\\'; return;
            case '/': out += '/'; return;
            case 'b': out += '\b'; return;
            case 'f': out += '\f'; return;
            case 'n': out += '\n'; return;
            case 'r': out += '\r'; return;
            case 't': out += '\t'; return;
            case 'u': break;
            default: expected(p_ - 1, "an escape after '\\' (one of \" \\ / b f n r t u)");
        }
        uint32_t code = hex4();
        if (code >= 0xDC00 && code <= 0xDFFF)
            refuse(backslash, escaped(code) + " is a low surrogate with no high surrogate before it");
        if (code >= 0xD800 && code <= 0xDBFF) {  // a high surrogate: a low one must follow
            const std::string after = "a low surrogate (\\uDC00 to \\uDFFF) after the high surrogate " + escaped(code);
            const char* second = p_;
            if (!consume('\\') || !consume('u')) expected(p_, after);
            const uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) refuse(second, "expected " + after + ", got " + escaped(low));
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, code);
    }

    static std::string escaped(uint32_t code) {
        char text[8];
        std::snprintf(text, sizeof text, "\\u%04X", code);
        return text;
    }

    uint32_t hex4() {
        uint32_t code = 0;
        for (int i = 0; i < 4; ++i, ++p_) {
            const char c = p_ < end_ ? *p_ : '\0';
            const int digit = c >= '0' && c <= '9'   ? c - '0'
                              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
            if (digit < 0) expected(p_, "4 hexadecimal digits after \\u");
            code = code << 4 | static_cast<uint32_t>(digit);
        }
        return code;
    }

    // A lead byte holding the top bits after its length mark, then 6 bits per continuation byte.
    static void append_utf8(std::string& out, uint32_t code) {
        const int more = code < 0x80 ? 0 : code < 0x800 ? 1 : code < 0x10000 ? 2 : 3;  // continuation bytes
        constexpr uint32_t mark[] = {0x00, 0xC0, 0xE0, 0xF0};
        out += static_cast<char>(mark[more] | code >> (6 * more));
        for (int i = more - 1; i >= 0; --i) out += static_cast<char>(0x80 | (code >> (6 * i) & 0x3F));
    }

    // One character of 2 to 4 bytes, well-formed as RFC 3629 says (no overlong form, no surrogate,
    // nothing past U+10FFFF): the first byte sets the range of the second, the others are 80..BF.
    void utf8_sequence(std::string& out) {
        const auto lead = static_cast<unsigned char>(*p_);
        size_t size = 0;
        unsigned char low = 0x80, high = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF)
            size = 2;
        else if (lead == 0xE0)
            size = 3, low = 0xA0;
        else if (lead == 0xED)
            size = 3, high = 0x9F;
        else if (lead >= 0xE1 && lead <= 0xEF)
            size = 3;
        else if (lead == 0xF0)
            size = 4, low = 0x90;
        else if (lead == 0xF4)
            size = 4, high = 0x8F;
        else if (lead >= 0xF1 && lead <= 0xF3)
            size = 4;
        else
            refuse(p_, "ill-formed UTF-8 in a string: " + describe_byte(p_, end_) + " cannot start a character");
        for (size_t i = 1; i < size; ++i) {
            if (p_ + i == end_) expected(p_ + i, "the rest of a UTF-8 character");
            const auto c = static_cast<unsigned char>(p_[i]);
            if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xBF))
                refuse(p_ + i, "ill-formed UTF-8 in a string: " + describe_byte(p_ + i, end_) + " cannot follow " +
                                   describe_byte(p_ + i - 1, end_));
        }
        out.append(p_, size);
        p_ += size;
    }

    const char* begin_;
    const char* p_;
    const char* end_;
    int level_ = 0;  // containers open around p_
    std::vector<TensorData> tensor_data_;
    std::vector<float> numbers_;  // number_array()'s
};

}  // namespace

TensorData* ModelDocument::tensor_data_of(const json& value) {
    if (!value.is_binary()) return nullptr;
    return &tensor_data.at(static_cast<size_t>(value.get_binary().subtype()));
}

ModelDocument read_model_document(std::string_view text) { return Reader(text).document(); }

}  // namespace gapnet
