# Source this before running ctest in a -DSHRINK_SANITIZE=... build folder:
#   source scripts/sanitizer-env.sh && cd build-asan && ctest -j2 --timeout 3000
# Any report fails the test (halt_on_error); the suppression files hold only
# reports inside uninstrumented third-party code (LibTorch, OpenMP, gRPC,
# protobuf), each with the reason.
_shrink_supp="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sanitizers"
# ODR checks off: Debian's libtorch and abseil export symbols our build also
# instantiates (inline variables), which is not an error of ours.
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_odr_violation=0:suppressions=${_shrink_supp}/asan.supp"
export LSAN_OPTIONS="suppressions=${_shrink_supp}/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=${_shrink_supp}/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=${_shrink_supp}/tsan.supp"
unset _shrink_supp
