// UndefinedBehaviorSanitizer's defaults for the fuzz harnesses, so that running one directly behaves
// as under run_fuzzers.sh: every report stops the run, with a stack trace.
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
