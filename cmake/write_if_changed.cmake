# cmake/write_if_changed.cmake — included by the generator scripts (cmake -P): writes text to
# path only when it differs, so an unchanged output keeps its time stamp and nothing rebuilds.
function(cnb_write_if_changed path text)
  set(old "")
  if(EXISTS "${path}")
    file(READ "${path}" old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE "${path}" "${text}")
  endif()
endfunction()
