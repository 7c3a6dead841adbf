// kuasar._native: the C++ side of the Python package `kuasar` (see docs/python.md). The
// Python modules around it hold the orchestration (processes, bundles, fixtures).
#include <pybind11/pybind11.h>

#include "pybind/src/status_error.h"
#include "runtime/version.h"

namespace kuasar::python {
void BindClients(pybind11::module_& m);
void BindHarness(pybind11::module_& m);
}  // namespace kuasar::python

PYBIND11_MODULE(_native, m) {
  m.doc() = "kuasar-cpp's clients (sandbox API, Task API, CRI) and harness, from C++.";
  m.attr("__version__") = kuasar::kVersion;
  kuasar::python::RegisterStatusErrors();
  kuasar::python::BindClients(m);
  kuasar::python::BindHarness(m);
}
