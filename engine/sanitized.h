// GAPNET_SANITIZED: 1 in a build under AddressSanitizer or ThreadSanitizer, else 0. Code and tests
// that cost minutes to compile or run with every access checked do less there. GCC says so with
// __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__; clang (the fuzzers' compiler) through __has_feature.
#pragma once

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GAPNET_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GAPNET_SANITIZED 1
#endif
#endif

#ifndef GAPNET_SANITIZED
#define GAPNET_SANITIZED 0
#endif
