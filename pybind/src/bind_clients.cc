// Bindings of the three protocol clients: SandboxClient (the sandboxer's gRPC sandbox API),
// TaskClient (a pod's ttrpc Task API) and CriClient (containerd's CRI). Every blocking
// call runs with the GIL released; waits wake for Python's signal handlers. Requests and
// responses are plain dicts (protobuf JSON with proto field names).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "containerd/services/sandbox/v1/sandbox.pb.h"
#include "cri/v1/api.pb.h"
#include "pybind/src/cri_client.h"
#include "pybind/src/proto_json.h"
#include "pybind/src/py_helpers.h"
#include "pybind/src/status_error.h"
#include "pybind/src/task_client.h"
#include "runtime/client/sandbox_client.h"

namespace kuasar::python {
namespace {

using namespace pybind11::literals;  // NOLINT(build/namespaces): "name"_a
namespace sbapi = containerd::services::sandbox::v1;
namespace task = containerd::task::v3;

// Runs `f` with the GIL released and returns what it returns.
template <typename F>
auto NoGil(F&& f) {
  py::gil_scoped_release nogil;
  return f();
}

py::object ProtoDict(const google::protobuf::Message& m) {
  return FromJson(ValueOrThrow(ProtoToJson(m)));
}

template <typename T>
py::object ProtoDict(absl::StatusOr<T> m) {
  return ProtoDict(ValueOrThrow(std::move(m)));
}

std::vector<RootfsMount> Mounts(const py::list& rootfs) {
  std::vector<RootfsMount> out;
  for (const auto& item : rootfs) {
    py::dict d = py::reinterpret_borrow<py::dict>(item);
    RootfsMount m;
    m.type = d.contains("type") ? d["type"].cast<std::string>() : "";
    m.source = d.contains("source") ? d["source"].cast<std::string>() : "";
    m.target = d.contains("target") ? d["target"].cast<std::string>() : "";
    if (d.contains("options")) m.options = d["options"].cast<std::vector<std::string>>();
    out.push_back(std::move(m));
  }
  return out;
}

void BindSandboxClient(py::module_& m) {
  py::class_<SandboxClient>(m, "SandboxClient", R"doc(
Client of a sandboxer's gRPC sandbox API (containerd's sandbox Controller service), as
containerd calls it. ``socket`` is the sandboxer's listen path; ``sandboxer`` the proxy
plugin name sent with every request. Thread-safe; calls release the GIL.)doc")
      .def(py::init<const std::string&, std::string>(), "socket"_a, "sandboxer"_a = "kuasar")
      .def(
          "wait_ready",
          [](SandboxClient& c, double timeout) {
            return NoGil([&] { return c.WaitReady(absl::Seconds(timeout)); });
          },
          "timeout"_a = 10.0, "True once the sandboxer accepts connections (polls until timeout).")
      .def(
          "create",
          [](SandboxClient& c, const std::string& id, const std::string& netns_path,
             const py::object& pod_config, const std::map<std::string, std::string>& annotations,
             double timeout) {
            sbapi::ControllerCreateRequest req;
            req.set_sandbox_id(id);
            req.set_netns_path(netns_path);
            for (const auto& [k, v] : annotations) (*req.mutable_annotations())[k] = v;
            if (!pod_config.is_none()) {
              runtime::v1::PodSandboxConfig cfg;
              ThrowIfError(JsonToProto(ToJson(pod_config), &cfg));
              req.mutable_options()->PackFrom(cfg);
            }
            ThrowIfError(NoGil([&] { return c.Create(req, absl::Seconds(timeout)); }));
          },
          "sandbox_id"_a, "netns_path"_a = "", "pod_config"_a = py::none(),
          "annotations"_a = std::map<std::string, std::string>{}, "timeout"_a = 60.0,
          R"doc(Controller.Create. ``pod_config`` (a CRI PodSandboxConfig dict) travels as the
request's options, as containerd's CRI sends it; ``netns_path`` is the network namespace
the pod joins ("" keeps the sandboxer's).)doc")
      .def(
          "start",
          [](SandboxClient& c, const std::string& id, double timeout) {
            return ProtoDict(NoGil([&] { return c.Start(id, absl::Seconds(timeout)); }));
          },
          "sandbox_id"_a, "timeout"_a = 120.0,
          "Controller.Start: a dict with address (the Task API), pid, version, labels, ...")
      .def(
          "platform",
          [](SandboxClient& c, const std::string& id) {
            auto p = ValueOrThrow(NoGil([&] { return c.Platform(id); }));
            return py::dict("os"_a = p.os, "architecture"_a = p.architecture,
                            "variant"_a = p.variant);
          },
          "sandbox_id"_a = "")
      .def(
          "stop",
          [](SandboxClient& c, const std::string& id, uint32_t timeout_secs) {
            ThrowIfError(NoGil([&] { return c.Stop(id, timeout_secs); }));
          },
          "sandbox_id"_a, "timeout_secs"_a = 0)
      .def(
          "wait",
          [](SandboxClient& c, const std::string& id, const py::object& timeout) {
            absl::Duration limit = Seconds(timeout);
            absl::Time deadline =
                limit == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + limit;
            // Short slices so that Ctrl-C is seen; the sandboxer parks each Wait anew.
            while (true) {
              absl::Duration slice = std::min(absl::Milliseconds(500), deadline - absl::Now());
              auto r = NoGil([&] { return c.Wait(id, std::max(slice, absl::Milliseconds(1))); });
              if (r.ok()) return ProtoDict(*r);
              if (r.status().code() != absl::StatusCode::kDeadlineExceeded ||
                  absl::Now() >= deadline) {
                throw StatusError(r.status());
              }
              if (PyErr_CheckSignals() != 0) throw py::error_already_set();
            }
          },
          "sandbox_id"_a, "timeout"_a = py::none(),
          "Controller.Wait: blocks until the sandbox exits; a dict with exit_status, exited_at.")
      .def(
          "status",
          [](SandboxClient& c, const std::string& id, bool verbose) {
            return ProtoDict(NoGil([&] { return c.StatusProto(id, verbose); }));
          },
          "sandbox_id"_a, "verbose"_a = false)
      .def(
          "shutdown",
          [](SandboxClient& c, const std::string& id) {
            ThrowIfError(NoGil([&] { return c.Shutdown(id); }));
          },
          "sandbox_id"_a, "Controller.Shutdown: releases everything of the sandbox.")
      .def(
          "metrics",
          [](SandboxClient& c, const std::string& id) {
            return ProtoDict(NoGil([&] { return c.Metrics(id); }));
          },
          "sandbox_id"_a);
}

void BindTaskClient(py::module_& m) {
  py::class_<TaskClient>(m, "TaskClient", R"doc(
Client of a pod's containerd Task API (v3) over ttrpc, at the address the sandboxer's
Start returned: ``ttrpc+unix://PATH`` or ``ttrpc+hvsock://PATH:PORT`` (hybrid vsock).
Thread-safe; calls release the GIL. A context manager that closes the connection.)doc")
      .def_static(
          "connect",
          [](const std::string& address, double timeout) {
            return ValueOrThrow(
                NoGil([&] { return TaskClient::Connect(address, absl::Seconds(timeout)); }));
          },
          "address"_a, "timeout"_a = 10.0,
          "Dials the Task API, retrying a refused connection until timeout (seconds).")
      .def_property_readonly("address", &TaskClient::address)
      .def_property_readonly("connected", &TaskClient::IsConnected)
      .def(
          "set_call_timeout",
          [](TaskClient& c, double seconds) { c.set_call_timeout(absl::Seconds(seconds)); },
          "seconds"_a, "Deadline of every call but wait (default 60 s); set it before use.")
      .def(
          "create",
          [](TaskClient& c, const std::string& id, const std::string& bundle,
             const py::list& rootfs, const std::string& stdin, const std::string& stdout,
             const std::string& stderr, bool terminal) {
            std::vector<RootfsMount> mounts = Mounts(rootfs);
            TaskStdio io{stdin, stdout, stderr, terminal};
            return ValueOrThrow(NoGil([&] { return c.Create(id, bundle, mounts, io); }));
          },
          "id"_a, "bundle"_a, "rootfs"_a = py::list(), "stdin"_a = "", "stdout"_a = "",
          "stderr"_a = "", "terminal"_a = false,
          R"doc(Task.Create: the container from the OCI bundle dir; ``rootfs`` is a list of
mount dicts (type, source, target, options). stdio: "" (none), a FIFO path, or for
stdout/stderr "file:///abs/path". Returns the init pid.)doc")
      .def(
          "start",
          [](TaskClient& c, const std::string& id, const std::string& exec_id) {
            return ValueOrThrow(NoGil([&] { return c.Start(id, exec_id); }));
          },
          "id"_a, "exec_id"_a = "", "Task.Start: returns the pid.")
      .def(
          "wait",
          [](TaskClient& c, const std::string& id, const std::string& exec_id,
             const py::object& timeout) {
            using Result = absl::StatusOr<task::WaitResponse>;
            auto done = std::make_shared<std::promise<Result>>();
            std::shared_future<Result> f = done->get_future().share();
            c.WaitAsync(id, exec_id, Seconds(timeout),
                        [done](Result r) { done->set_value(std::move(r)); });
            return ProtoDict(AwaitInterruptibly(f));
          },
          "id"_a, "exec_id"_a = "", "timeout"_a = py::none(),
          "Task.Wait: until the process exits (DeadlineExceeded after timeout seconds); a dict "
          "with exit_status and exited_at.")
      .def(
          "kill",
          [](TaskClient& c, const std::string& id, uint32_t signal, const std::string& exec_id,
             bool all) { ThrowIfError(NoGil([&] { return c.Kill(id, exec_id, signal, all); })); },
          "id"_a, "signal"_a = 15, "exec_id"_a = "", "all"_a = false)
      .def(
          "delete",
          [](TaskClient& c, const std::string& id, const std::string& exec_id) {
            return ProtoDict(NoGil([&] { return c.Delete(id, exec_id); }));
          },
          "id"_a, "exec_id"_a = "", "Task.Delete: a dict with pid, exit_status, exited_at.")
      .def(
          "exec",
          [](TaskClient& c, const std::string& id, const std::string& exec_id,
             const py::object& process, const std::string& stdin, const std::string& stdout,
             const std::string& stderr, bool terminal) {
            std::string spec = ToJson(process);
            TaskStdio io{stdin, stdout, stderr, terminal};
            ThrowIfError(NoGil([&] { return c.Exec(id, exec_id, spec, io); }));
          },
          "id"_a, "exec_id"_a, "process"_a, "stdin"_a = "", "stdout"_a = "", "stderr"_a = "",
          "terminal"_a = false,
          "Task.Exec: adds process (an OCI Process dict) to container id; then start() it.")
      .def(
          "state",
          [](TaskClient& c, const std::string& id, const std::string& exec_id) {
            return ProtoDict(NoGil([&] { return c.State(id, exec_id); }));
          },
          "id"_a, "exec_id"_a = "")
      .def(
          "pids",
          [](TaskClient& c, const std::string& id) {
            return ValueOrThrow(NoGil([&] { return c.Pids(id); }));
          },
          "id"_a)
      .def(
          "stats",
          [](TaskClient& c, const std::string& id) {
            return FromJson(ValueOrThrow(NoGil([&] { return c.StatsJson(id); })));
          },
          "id"_a, "Task.Stats: {'type': 'io.containerd.cgroups.v1.Metrics', 'metrics': {...}}.")
      .def(
          "close_io",
          [](TaskClient& c, const std::string& id, const std::string& exec_id, bool stdin) {
            ThrowIfError(NoGil([&] { return c.CloseIo(id, exec_id, stdin); }));
          },
          "id"_a, "exec_id"_a = "", "stdin"_a = true)
      .def(
          "resize",
          [](TaskClient& c, const std::string& id, uint32_t width, uint32_t height,
             const std::string& exec_id) {
            ThrowIfError(NoGil([&] { return c.Resize(id, exec_id, width, height); }));
          },
          "id"_a, "width"_a, "height"_a, "exec_id"_a = "")
      .def(
          "connect_info",
          [](TaskClient& c, const std::string& id) {
            return ProtoDict(NoGil([&] { return c.ConnectInfo(id); }));
          },
          "id"_a = "", "Task.Connect: shim_pid, task_pid, version.")
      .def("close", [](TaskClient& c) { NoGil([&] { c.Close(); }); })
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](TaskClient& c, const py::args&) { NoGil([&] { c.Close(); }); });
}

void BindCriClient(py::module_& m) {
  py::class_<ExecSyncResult>(m, "ExecSyncResult", "What CRI ExecSync returns.")
      .def_property_readonly("exit_code", [](const ExecSyncResult& r) { return r.exit_code; })
      .def_property_readonly("stdout",
                             [](const ExecSyncResult& r) { return py::bytes(r.stdout_bytes); })
      .def_property_readonly("stderr",
                             [](const ExecSyncResult& r) { return py::bytes(r.stderr_bytes); })
      .def("__repr__", [](const ExecSyncResult& r) {
        return "ExecSyncResult(exit_code=" + std::to_string(r.exit_code) +
               ", stdout=" + std::to_string(r.stdout_bytes.size()) +
               " bytes, stderr=" + std::to_string(r.stderr_bytes.size()) + " bytes)";
      });

  py::class_<CriClient>(m, "CriClient", R"doc(
CRI v1 client (RuntimeService and ImageService), as a kubelet talks to containerd.
``endpoint`` is a gRPC target: "unix:///path/containerd.sock", "HOST:PORT".
``timeout`` (seconds) bounds each call. Configs are dicts in CRI's protobuf JSON form
(snake_case or camelCase keys). Thread-safe; calls release the GIL.)doc")
      .def(py::init([](const std::string& endpoint, double timeout) {
             return std::make_unique<CriClient>(endpoint, absl::Seconds(timeout));
           }),
           "endpoint"_a, "timeout"_a = 120.0)
      .def_property_readonly("endpoint", &CriClient::endpoint)
      .def(
          "wait_ready",
          [](CriClient& c, double timeout) {
            return NoGil([&] { return c.WaitReady(absl::Seconds(timeout)); });
          },
          "timeout"_a = 10.0)
      .def("version",
           [](CriClient& c) { return FromJson(ValueOrThrow(NoGil([&] { return c.Version(); }))); })
      .def(
          "run_pod_sandbox",
          [](CriClient& c, const py::object& config, const std::string& handler) {
            std::string cfg = ToJson(config);
            return ValueOrThrow(NoGil([&] { return c.RunPodSandbox(cfg, handler); }));
          },
          "config"_a, "runtime_handler"_a = "", "RunPodSandbox: returns the pod sandbox id.")
      .def(
          "stop_pod_sandbox",
          [](CriClient& c, const std::string& id) {
            ThrowIfError(NoGil([&] { return c.StopPodSandbox(id); }));
          },
          "pod_id"_a)
      .def(
          "remove_pod_sandbox",
          [](CriClient& c, const std::string& id) {
            ThrowIfError(NoGil([&] { return c.RemovePodSandbox(id); }));
          },
          "pod_id"_a)
      .def(
          "pod_sandbox_status",
          [](CriClient& c, const std::string& id, bool verbose) {
            return FromJson(ValueOrThrow(NoGil([&] { return c.PodSandboxStatus(id, verbose); })));
          },
          "pod_id"_a, "verbose"_a = false)
      .def(
          "list_pod_sandbox",
          [](CriClient& c, const py::object& filter) {
            std::string f = ToJson(filter);
            py::object r = FromJson(ValueOrThrow(NoGil([&] { return c.ListPodSandbox(f); })));
            return py::object(r["items"]);
          },
          "filter"_a = py::none(), "The pods (a list of dicts), optionally filtered.")
      .def(
          "create_container",
          [](CriClient& c, const std::string& pod_id, const py::object& config,
             const py::object& sandbox_config) {
            std::string cfg = ToJson(config), sb = ToJson(sandbox_config);
            return ValueOrThrow(NoGil([&] { return c.CreateContainer(pod_id, cfg, sb); }));
          },
          "pod_id"_a, "config"_a, "sandbox_config"_a, "CreateContainer: returns its id.")
      .def(
          "start_container",
          [](CriClient& c, const std::string& id) {
            ThrowIfError(NoGil([&] { return c.StartContainer(id); }));
          },
          "container_id"_a)
      .def(
          "stop_container",
          [](CriClient& c, const std::string& id, int64_t timeout) {
            ThrowIfError(NoGil([&] { return c.StopContainer(id, timeout); }));
          },
          "container_id"_a, "timeout"_a = 10)
      .def(
          "remove_container",
          [](CriClient& c, const std::string& id) {
            ThrowIfError(NoGil([&] { return c.RemoveContainer(id); }));
          },
          "container_id"_a)
      .def(
          "container_status",
          [](CriClient& c, const std::string& id, bool verbose) {
            return FromJson(ValueOrThrow(NoGil([&] { return c.ContainerStatus(id, verbose); })));
          },
          "container_id"_a, "verbose"_a = false)
      .def(
          "list_containers",
          [](CriClient& c, const py::object& filter) {
            std::string f = ToJson(filter);
            py::object r = FromJson(ValueOrThrow(NoGil([&] { return c.ListContainers(f); })));
            return py::object(r["containers"]);
          },
          "filter"_a = py::none())
      .def(
          "container_stats",
          [](CriClient& c, const std::string& id) {
            return FromJson(ValueOrThrow(NoGil([&] { return c.ContainerStats(id); })));
          },
          "container_id"_a)
      .def(
          "exec_sync",
          [](CriClient& c, const std::string& id, const std::vector<std::string>& cmd,
             const py::object& timeout) {
            absl::Duration t = Seconds(timeout);
            return ValueOrThrow(NoGil([&] { return c.ExecSync(id, cmd, t); }));
          },
          "container_id"_a, "cmd"_a, "timeout"_a = py::none(),
          "ExecSync: runs cmd in the container; an ExecSyncResult (exit_code, stdout, stderr).")
      .def(
          "pull_image",
          [](CriClient& c, const std::string& image) {
            return ValueOrThrow(NoGil([&] { return c.PullImage(image); }));
          },
          "image"_a)
      .def(
          "call",
          [](CriClient& c, const std::string& method, const py::object& request) {
            std::string req = ToJson(request);
            if (req.empty()) req = "{}";
            return FromJson(ValueOrThrow(NoGil([&] { return c.Call(method, req); })));
          },
          "method"_a, "request"_a = py::none(),
          "Any unary CRI method by name (e.g. 'ImageFsInfo'); request and response dicts.")
      .def_static("method_names", &CriClient::MethodNames);
}

}  // namespace

void BindClients(py::module_& m) {
  BindSandboxClient(m);
  BindTaskClient(m);
  BindCriClient(m);
}

}  // namespace kuasar::python
