# Source this before running ctest in a -DSHRINK_SANITIZE=... build folder:
#   source scripts/sanitizer-env.sh && cd build-asan && ctest -j2
# (scripts/sanitize-suite.sh does all of it.) Any report fails the process that
# makes it (halt_on_error); the suppression files hold only reports inside
# uninstrumented third-party code (LibTorch, OpenMP, gRPC, protobuf), each with
# the reason.
# With SHRINK_SANITIZER_LOG_DIR set, every instrumented process writes its
# reports to files there (<tool>.<exe>.<pid>) instead of stderr: the
# coordinators and workers that integration tests start (and kill) report too,
# and a fault-tolerant job that survives a worker's sanitizer abort still
# leaves the report behind for the caller to check.
_shrink_supp="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sanitizers"
_shrink_log() {
  if [[ -n "${SHRINK_SANITIZER_LOG_DIR:-}" ]]; then
    mkdir -p "$SHRINK_SANITIZER_LOG_DIR"
    echo ":log_path=${SHRINK_SANITIZER_LOG_DIR}/$1:log_exe_name=1"
  fi
}
# ODR checks off: Debian's libtorch and abseil export symbols our build also
# instantiates (inline variables), which is not an error of ours.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_odr_violation=0:suppressions=${_shrink_supp}/asan.supp$(_shrink_log asan)"
export LSAN_OPTIONS="suppressions=${_shrink_supp}/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=${_shrink_supp}/ubsan.supp$(_shrink_log ubsan)"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=${_shrink_supp}/tsan.supp$(_shrink_log tsan)"
unset _shrink_supp
unset -f _shrink_log
