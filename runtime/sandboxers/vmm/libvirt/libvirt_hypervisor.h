// LibvirtHypervisor: the Hypervisor driver that runs the VM as a transient libvirt domain
// (the qemu driver's VM, described in domain XML) on a libvirt connection: created with
// virDomainCreateXML (not autodestroy: the domain outlives the sandboxer and its
// connection, so Recover can find it by UUID), stopped with the ACPI power button, then
// destroy. Exits come from libvirt's lifecycle events (VIR_DOMAIN_EVENT_STOPPED), with a
// poll of the domain's state as the fallback while waiting. The agent channel is the
// virtio-serial port agent.channel.0 on <socket_dir>/agent.sock; its readiness is the
// channel state libvirt keeps in the live XML. Threading as for Hypervisor: events arrive
// on libvirt's event thread and are handed to the io_context.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "runtime/sandboxers/vmm/hypervisor.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_config.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_connection.h"
#include "runtime/sandboxers/vmm/libvirt/libvirt_domain_xml.h"

namespace boost::asio {
class io_context;
}

namespace kuasar::vmm {

class LibvirtHypervisor : public Hypervisor {
 public:
  // `accel` is resolved (kKvm or kTcg).
  LibvirtHypervisor(const LibvirtConfig& config, Accel accel, boost::asio::io_context& io);
  ~LibvirtHypervisor() override;

  absl::Status Prepare(const VmConfig& config) override;
  absl::Status Launch() override;
  absl::StatusOr<AgentChannel> WaitReady(absl::Time deadline) override;
  AgentChannel agent_channel() const override;
  absl::Status Stop(absl::Duration timeout) override;
  absl::Status Kill() override;
  absl::Status Recover(const nlohmann::json& state) override;
  nlohmann::json PersistedState() const override;
  std::optional<ProcessIdentity> Identity() const override;
  void SetExitCallback(ExitCallback callback) override;
  void Describe(std::map<std::string, std::string>* info) const override;

  // libvirt's state of the domain: "running", "paused", "shutoff", ...; NOT_FOUND once
  // the transient domain is gone.
  absl::StatusOr<std::string> DomainState();
  const std::string& domain_name() const { return name_; }
  const std::string& domain_xml() const { return xml_; }

  // What libvirt's event thread shares with the driver (libvirt_shared_state.h).
  struct Shared;

 private:

  // Opens the connection and registers the lifecycle callback (before the domain exists,
  // so no event is missed; the callback filters by UUID).
  absl::Status Connect(const std::string& uri);
  // Until the exit is known (event, or the domain gone from libvirt), at most `wait`.
  absl::Status WaitGone(absl::Duration wait);
  // When libvirt no longer knows the domain: report the exit if no event did.
  void NoteGoneWithoutEvent();
  void RemoveFiles();
  std::string DiagnosticTail() const;
  virDomainPtr domain() const;

  const LibvirtConfig config_;
  const Accel accel_;
  boost::asio::io_context& io_;
  std::shared_ptr<Shared> shared_;

  VmConfig vm_;
  LibvirtPaths paths_;
  std::string name_;
  std::string uuid_;
  std::string xml_;
  mutable std::mutex mu_;  // guards the handles below
  std::unique_ptr<LibvirtConnection> conn_;
  int callback_id_ = -1;
  DomainHandle domain_;
  std::optional<ProcessIdentity> qemu_;
};

// QEMU's process for a domain: the one whose argv has "-uuid <uuid>" (libvirt passes the
// domain's UUID), found through /proc. NOT_FOUND if none.
absl::StatusOr<ProcessIdentity> FindQemuByUuid(std::string_view uuid);

}  // namespace kuasar::vmm
