// The one translation unit that compiles stb's implementations (from the system's libstb-dev headers).
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_JPEG  // JPEG is libjpeg-turbo's (engine/io/jpeg.h)
#define STBI_NO_PNG   // PNG is libpng's (engine/io/png.h)
#define STBI_NO_GIF   // GIF is gapnet's own (engine/io/gif.h)
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

namespace gapnet {
// stb 2.27 fails silently on some paths (in its zlib decoder), leaving the reason of an earlier, unrelated
// failure in place: cleared before each decode, so that a reason is the decode's own (stb_decoder.cpp).
void clear_stb_failure_reason() { stbi__g_failure_reason = nullptr; }
}  // namespace gapnet
