#include "pybind/src/status_error.h"

#include <pybind11/pybind11.h>

namespace kuasar::python {

namespace py = pybind11;

void RegisterStatusErrors() {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      // kuasar.errors.from_status builds the instance; raising it keeps its attributes.
      py::object exc = py::module_::import("kuasar.errors")
                           .attr("from_status")(static_cast<int>(e.status().code()),
                                                std::string(e.status().message()));
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
    }
  });
}

}  // namespace kuasar::python
