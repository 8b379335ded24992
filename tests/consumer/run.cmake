# Installs the built library into a scratch prefix, then configures, builds and runs
# tests/consumer as an outside project would: find_package(tapegrad CONFIG REQUIRED). A sanitized
# library (the asan preset) needs a consumer linked with the same sanitizers: the build's
# CMAKE_CXX_FLAGS and linker flags are passed on (empty in the other presets).
file(REMOVE_RECURSE ${WORK_DIR})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_LINKER_FLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)
if(EXISTS ${WORK_DIR}/build/consumer_distributed)
  if(CONSUMER_CXX_FLAGS MATCHES "sanitize=address")
    set(ENV{ASAN_OPTIONS} detect_leaks=0)  # OpenMPI's own end-of-run allocations (see tests/CMakeLists.txt)
  endif()
  run(${WORK_DIR}/build/consumer_distributed)
endif()
