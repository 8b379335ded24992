# Installs the built library into a scratch prefix, then configures, builds and runs
# tests/consumer as an outside project would: find_package(tapegrad CONFIG REQUIRED). A sanitized
# library (the asan preset) needs a consumer linked with the same sanitizers: the build's
# CMAKE_CXX_FLAGS and linker flags are passed on (empty in the other presets).
# Each step's output is kept and printed whole only when the step fails, after the step's name, so
# a failure's cause is the last thing the test prints (not buried under the install's file list).
file(REMOVE_RECURSE ${WORK_DIR})
function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${step} failed (${status}): ${ARGN}\n${output}")
  endif()
  if(step MATCHES "^consumer")
    message(STATUS "${step}: ${output}")
  endif()
endfunction()
run(install ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_LINKER_FLAGS}")
run(build ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(consumer ${WORK_DIR}/build/consumer)
if(EXISTS ${WORK_DIR}/build/consumer_distributed)
  # A world of one without mpirun (OpenMPI's singleton), with the transports and binding the other
  # MPI tests use (tests/CMakeLists.txt's mpi_env): shared memory and self only, no core binding.
  set(ENV{OMPI_MCA_btl} self,vader)
  set(ENV{OMPI_MCA_hwloc_base_binding_policy} none)
  if(CONSUMER_CXX_FLAGS MATCHES "sanitize=address")
    set(ENV{ASAN_OPTIONS} detect_leaks=0)  # OpenMPI's own end-of-run allocations (see tests/CMakeLists.txt)
  endif()
  run(consumer_distributed ${WORK_DIR}/build/consumer_distributed)
endif()
