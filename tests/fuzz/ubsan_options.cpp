// UndefinedBehaviorSanitizer's defaults for the fuzz harnesses, so that running one directly behaves
// as under run_fuzzers.sh: every report stops the run (halt_on_error; shift-exponent is compiled as
// recoverable only so that it can be suppressed), except the known third-party ones in ubsan.supp.
extern "C" const char* __ubsan_default_options() {
    return "halt_on_error=1:print_stacktrace=1:suppressions=" GAPNET_SOURCE_DIR "/tests/fuzz/ubsan.supp";
}
