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
