// VmmBackend: the vmm sandbox kind. A pod is a microVM made by a Hypervisor driver (QEMU,
// Cloud Hypervisor, Firecracker, StratoVirt, libvirt, or the fake VMM speaking one of
// their APIs); its containers are run by the guest agent vmm-task, which serves the Task
// API. With a hybrid-vsock VMM containerd dials the agent itself (ttrpc+hvsock://); with a
// virtio-serial one the sandboxer's TaskBridge multiplexes containerd's connections onto
// the single stream. Config: [vmm] here, [hypervisor] for the driver.
// Thread-safe (see SandboxBackend): one io thread for VMM events and bridges.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "runtime/core/sandbox_backend.h"
#include "runtime/sandboxers/vmm/hypervisor.h"

namespace kuasar {

struct VmmConfig {
  int64_t agent_timeout_ms = 60000;  // VMM start to agent answering (TCG boots take ~5 s)
  // The guest sees host paths (the fake VMM shares the host's filesystem): rootfs and stdio
  // FIFOs are used as containerd gives them. Otherwise they go through the shared dir and
  // agent streams.
  bool guest_sees_host_paths = false;
  // Mirror the pod's CNI interface into the VM through a tap (not needed when the guest
  // sees the host: the fake VMM's agent sits in the pod's network namespace).
  bool mirror_network = true;
};

absl::StatusOr<VmmConfig> ParseVmmConfig(const Config& config);

using HypervisorFactoryMaker = std::function<absl::StatusOr<std::unique_ptr<vmm::HypervisorFactory>>(
    const Config& config, boost::asio::io_context& io)>;

class VmmBackend final : public SandboxBackend {
 public:
  explicit VmmBackend(HypervisorFactoryMaker maker);
  ~VmmBackend() override;

  std::string_view Kind() const override { return "vmm"; }
  absl::Status Init(const BackendContext& context) override;
  absl::Status Create(SandboxRecord& record) override;
  absl::Status Start(SandboxRecord& record) override;
  absl::Status Stop(SandboxRecord& record, absl::Duration timeout) override;
  absl::Status Cleanup(SandboxRecord& record) override;
  absl::Status Recover(SandboxRecord& record) override;
  absl::StatusOr<MetricSample> Metrics(const SandboxRecord& record) override;
  void DescribeStatus(const SandboxRecord& record, bool verbose,
                      std::map<std::string, std::string>* info) const override;

 private:
  struct Pod;
  absl::Status Connect(const std::shared_ptr<Pod>& pod, SandboxRecord& rec, absl::Time deadline);
  void OnVmExit(const std::string& id, const vmm::VmExit& exit);
  std::shared_ptr<Pod> FindPod(const std::string& id) const;
  // Reattaches to the VM `rec` recorded, if it still runs, and kills it.
  void KillDetachedVm(const SandboxRecord& rec);
  std::string SandboxDir(const std::string& id) const;

  HypervisorFactoryMaker maker_;
  BackendContext ctx_;
  VmmConfig cfg_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
  std::unique_ptr<vmm::HypervisorFactory> factory_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Pod>> pods_;
};

}  // namespace kuasar
