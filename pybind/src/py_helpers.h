// Small helpers the bindings share: JSON text <-> Python objects, and waiting on a future
// with the GIL released while still letting Python handle signals (Ctrl-C). Call them
// with the GIL held.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <future>
#include <string>

#include "absl/time/time.h"

namespace kuasar::python {

namespace py = pybind11;

// json.loads(text)
inline py::object FromJson(const std::string& text) {
  return py::module_::import("json").attr("loads")(text);
}

// A str passes as is; anything else goes through json.dumps. None gives "".
inline std::string ToJson(const py::handle& value) {
  if (value.is_none()) return "";
  if (py::isinstance<py::str>(value)) return value.cast<std::string>();
  return py::module_::import("json").attr("dumps")(value).cast<std::string>();
}

// Seconds from Python (None = no limit) as a Duration.
inline absl::Duration Seconds(const py::handle& value) {
  if (value.is_none()) return absl::InfiniteDuration();
  return absl::Seconds(value.cast<double>());
}

// Waits for `future`, GIL released, waking every 100 ms to run Python's signal handlers;
// a KeyboardInterrupt propagates and the call left behind completes on its own.
template <typename T>
T AwaitInterruptibly(std::shared_future<T> future) {
  while (true) {
    {
      py::gil_scoped_release nogil;
      if (future.wait_for(std::chrono::milliseconds(100)) == std::future_status::ready) break;
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
  return future.get();
}

}  // namespace kuasar::python
