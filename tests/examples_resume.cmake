# A true resume: an example run for N epochs with --save, then resumed for M more, writes the same
# checkpoint, byte for byte (model, optimizer, scheduler, generator state, epoch), as one run of
# N + M epochs. EXAMPLE is the program, ARGS its other arguments (a ;-list), N and M the epochs.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)
math(EXPR total "${N} + ${M}")
run(${EXAMPLE} ${ARGS} --epochs ${total} --save ${WORK_DIR}/straight.safetensors)
run(${EXAMPLE} ${ARGS} --epochs ${N} --save ${WORK_DIR}/resumed.safetensors)
run(${EXAMPLE} ${ARGS} --epochs ${total} --resume ${WORK_DIR}/resumed.safetensors --save ${WORK_DIR}/resumed.safetensors)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK_DIR}/straight.safetensors ${WORK_DIR}/resumed.safetensors
                RESULT_VARIABLE same)
if(NOT same EQUAL 0)
  message(FATAL_ERROR "${EXAMPLE}: ${N} epochs then ${M} resumed differ from ${total} straight")
endif()
message(STATUS "${EXAMPLE}: ${N} + ${M} resumed epochs give the same checkpoint as ${total} straight")
