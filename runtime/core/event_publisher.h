// EventPublisher: how task events (TaskCreate, TaskStart, TaskExit, TaskOOM, ...) reach
// containerd. The production implementation forwards them over ttrpc to containerd's
// events service, in order, retrying while containerd is away; tests record them.
// Thread-safe; Publish never blocks on the network.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

namespace kuasar {

// Topics as containerd names them (containerd runtime/events.go).
inline constexpr std::string_view kTopicTaskCreate = "/tasks/create";
inline constexpr std::string_view kTopicTaskStart = "/tasks/start";
inline constexpr std::string_view kTopicTaskExit = "/tasks/exit";
inline constexpr std::string_view kTopicTaskDelete = "/tasks/delete";
inline constexpr std::string_view kTopicTaskOOM = "/tasks/oom";
inline constexpr std::string_view kTopicTaskExecAdded = "/tasks/exec-added";
inline constexpr std::string_view kTopicTaskExecStarted = "/tasks/exec-started";
inline constexpr std::string_view kTopicTaskPaused = "/tasks/paused";
inline constexpr std::string_view kTopicTaskResumed = "/tasks/resumed";

class EventPublisher {
 public:
  virtual ~EventPublisher() = default;
  // `ns` is the containerd namespace the task belongs to (e.g. "k8s.io").
  virtual void Publish(std::string_view ns, std::string_view topic,
                       const google::protobuf::Message& event) = 0;
};

}  // namespace kuasar
