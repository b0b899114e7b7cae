#include "model_document.h"

#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>

#include "base64.h"
#include "json_number.h"

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

// A recursive-descent reader over the text, building what nlohmann's parser would, and refusing
// (throwing Refused) wherever nlohmann's parser, or the loader's rules on it, would refuse.
class Reader {
public:
    struct Refused {};

    explicit Reader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    ModelDocument document() {
        if (end_ - p_ >= 3 && p_[0] == '\xEF' && p_[1] == '\xBB' && p_[2] == '\xBF') p_ += 3;  // a byte order mark
        ModelDocument doc;
        doc.tree = value();
        skip_whitespace();
        if (p_ != end_ && *p_ != '\0') refuse();  // nlohmann's lexer reads a NUL as the end of the input
        doc.tensor_data = std::move(tensor_data_);
        return doc;
    }

private:
    [[noreturn]] static void refuse() { throw Refused{}; }

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
        if (level_ > kMaxJsonNesting) refuse();
    }
    void open_container() {
        if (level_ > kMaxJsonNesting) refuse();
        ++level_;
        ++p_;
    }
    void close_container(char bracket) {
        skip_whitespace();
        if (!consume(bracket)) refuse();
        --level_;
    }

    json value() {
        skip_whitespace();
        if (p_ == end_) refuse();
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
            default: return number();
        }
    }

    json literal(std::string_view word, json result) {
        scalar_or_key();
        if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) refuse();
        p_ += word.size();
        return result;
    }

    // As nlohmann stores it: an integer that fits uint64_t (no sign) or int64_t (a sign) stays one.
    json number() {
        scalar_or_key();
        const JsonNumberToken number = scan_json_number(p_, end_);
        if (number.length == 0) refuse();
        const char* first = p_;
        const char* last = p_ + number.length;
        p_ = last;
        if (number.integer) {
            if (*first == '-') {
                int64_t n;
                if (const auto r = std::from_chars(first, last, n); r.ec == std::errc() && r.ptr == last) return n;
            } else {
                uint64_t n;
                if (const auto r = std::from_chars(first, last, n); r.ec == std::errc() && r.ptr == last) return n;
            }
        }
        const std::optional<double> d = json_number_value({first, number.length}, number.integer);
        if (!d) refuse();
        return *d;
    }

    json array() {
        open_container();
        json array = json::array();
        skip_whitespace();
        if (!at(']')) {
            do array.push_back(value());
            while ((skip_whitespace(), consume(',')));
        }
        close_container(']');
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
                if (!at('"')) refuse();
                std::string buffer;
                std::string key(string(buffer));
                scalar_or_key();
                skip_whitespace();
                if (!consume(':')) refuse();
                json member = key == "data" ? tensor_data_or_value() : value();
                if (!members.emplace(std::move(key), std::move(member)).second) refuse();  // a key twice
                skip_whitespace();
            } while (consume(','));
        }
        close_container('}');
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
                if (const JsonNumberToken number = scan_json_number(p_, end_); number.length > 0) {
                    scalar_or_key();
                    const std::optional<double> d = json_number_value({p_, number.length}, number.integer);
                    if (!d) refuse();
                    if (!data.first_non_number) numbers_.push_back(static_cast<float>(*d));
                    p_ += number.length;
                } else {
                    // Its values are not used from here on: numbers_ is free for a "data" nested in the element.
                    note_non_number(data, value().type());
                }
                ++data.length;
                skip_whitespace();
            } while (consume(','));
        }
        close_container(']');
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
            if (p_ == end_) refuse();
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') break;
            if (c == '\\')
                escape(buffer);
            else if (c < 0x20)
                refuse();  // a control character must be escaped
            else if (c < 0x80)
                buffer += *p_++;
            else
                utf8_sequence(buffer);
        }
        ++p_;
        return buffer;
    }

    void escape(std::string& out) {
        if (++p_ == end_) refuse();
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
            default: refuse();
        }
        uint32_t code = hex4();
        if (code >= 0xDC00 && code <= 0xDFFF) refuse();  // a low surrogate first
        if (code >= 0xD800 && code <= 0xDBFF) {          // a high surrogate: a low one must follow
            if (!consume('\\') || !consume('u')) refuse();
            const uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) refuse();
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(out, code);
    }

    uint32_t hex4() {
        if (end_ - p_ < 4) refuse();
        uint32_t code = 0;
        for (int i = 0; i < 4; ++i, ++p_) {
            const char c = *p_;
            const int digit = c >= '0' && c <= '9'   ? c - '0'
                              : c >= 'a' && c <= 'f' ? c - 'a' + 10
                              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                     : -1;
            if (digit < 0) refuse();
            code = code << 4 | static_cast<uint32_t>(digit);
        }
        return code;
    }

    static void append_utf8(std::string& out, uint32_t code) {
        const auto byte = [&](uint32_t b) { out += static_cast<char>(b); };
        if (code < 0x80) {
            byte(code);
        } else if (code < 0x800) {
            byte(0xC0 | code >> 6), byte(0x80 | (code & 0x3F));
        } else if (code < 0x10000) {
            byte(0xE0 | code >> 12), byte(0x80 | (code >> 6 & 0x3F)), byte(0x80 | (code & 0x3F));
        } else {
            byte(0xF0 | code >> 18), byte(0x80 | (code >> 12 & 0x3F)), byte(0x80 | (code >> 6 & 0x3F)),
                byte(0x80 | (code & 0x3F));
        }
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
            refuse();
        if (static_cast<size_t>(end_ - p_) < size) refuse();
        for (size_t i = 1; i < size; ++i) {
            const auto c = static_cast<unsigned char>(p_[i]);
            if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xBF)) refuse();
        }
        out.append(p_, size);
        p_ += size;
    }

    const char* p_;
    const char* end_;
    int level_ = 0;  // containers open around p_
    std::vector<TensorData> tensor_data_;
    std::vector<float> numbers_;  // number_array()'s
};

// model_document_from's walk: "data" arrays and strings become placeholders.
void set_aside_tensor_data(json& value, std::vector<TensorData>& tensor_data) {
    if (value.is_array()) {
        for (json& element : value) set_aside_tensor_data(element, tensor_data);
        return;
    }
    if (!value.is_object()) return;
    for (auto& [key, member] : value.items()) {
        if (key == "data" && member.is_string()) {
            member = placeholder(tensor_data, base64_data(member.get_ref<const std::string&>()));
        } else if (key == "data" && member.is_array()) {
            TensorData data;
            for (const json& element : member) {
                if (element.is_number())
                    data.values.push_back(static_cast<float>(element.get<double>()));
                else
                    note_non_number(data, element.type());
                ++data.length;
            }
            member = placeholder(tensor_data, std::move(data));
        } else {
            set_aside_tensor_data(member, tensor_data);
        }
    }
}

}  // namespace

TensorData* ModelDocument::tensor_data_of(const json& value) {
    if (!value.is_binary()) return nullptr;
    return &tensor_data.at(static_cast<size_t>(value.get_binary().subtype()));
}

std::optional<ModelDocument> read_model_document(std::string_view text) {
    try {
        return Reader(text).document();
    } catch (const Reader::Refused&) {
        return std::nullopt;
    }
}

ModelDocument model_document_from(json tree) {
    ModelDocument doc;
    doc.tree = std::move(tree);
    set_aside_tensor_data(doc.tree, doc.tensor_data);
    return doc;
}

}  // namespace gapnet
