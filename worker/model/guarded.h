// Runs code that may throw (LibTorch reports errors as c10::Error) and returns a status naming
// what was being done instead (internal: the model and eval libraries' public calls use it).
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace shrink::worker {

// Runs `body`, turning exceptions (c10::Error included) into a status that names `what`.
template <typename Body>
auto Guarded(const std::string& what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

}  // namespace shrink::worker
