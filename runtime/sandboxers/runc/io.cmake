# Process stdio and consoles, OOM watching, cgroups and their metrics (included from
# CMakeLists.txt). Kept apart from kuasar_runc so the task service can link it alone.
add_library(kuasar_runc_io STATIC
  cgroup.cc
  oom_watcher.cc
  process_io.cc)
target_link_libraries(kuasar_runc_io PUBLIC kuasar_core kuasar_api Boost::system absl::time)

if(BUILD_TESTING)
  # FIFOs and ptys need no privileges.
  kuasar_test(runc_io_test SOURCES process_io_test.cc LIBS kuasar_runc_io)
  # Creating cgroups and OOM-killing in them needs root; the fake-hierarchy cases run anyway.
  kuasar_test(runc_cgroup_test SOURCES cgroup_test.cc oom_watcher_test.cc LIBS kuasar_runc_io
    LABELS root)
  target_compile_definitions(runc_cgroup_test PRIVATE
    KUASAR_TESTINIT_PATH="$<TARGET_FILE:kuasar-testinit>")
endif()
