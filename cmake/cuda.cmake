# cmake/cuda.cmake — finds what the GPU backends need: the CUDA toolkit (nvcc, cudart, cuBLAS)
# for backends/cuda and backends/cudnn, and cuDNN for backends/cudnn, which on a machine with
# only PyTorch installed may live inside its Python packages (site-packages/nvidia/cudnn).
# Also a C++ compiler for the cuda_emu test backend (backends/cuda/emu), which runs the same
# kernels on the CPU so that they are exercised on machines without a GPU.
#
# Sets CNB_HAVE_CUDA, CNB_HAVE_CUDNN, CNB_HAVE_CXX and, when something is missing,
# CNB_CUDA_REASON / CNB_CUDNN_REASON: one line each for cnb_skip_backend.
# Options: -DCNB_ENABLE_CUDA=OFF skips both GPU backends; -DCUDNN_ROOT=<dir> (or the environment
# variables CUDNN_ROOT / CUDNN_PATH) points at a cuDNN install; -DCMAKE_CUDA_ARCHITECTURES=...
# overrides the default "90-real;90-virtual" (sm_90 machine code + compute_90 PTX the driver can
# JIT for newer GPUs).

include(CheckLanguage)

option(CNB_ENABLE_CUDA "Build the cuda and cudnn backends when a CUDA toolkit is found" ON)
option(CNB_CUDA_EMU "Build the cuda_emu test backend (the CUDA kernels run on the CPU)" ON)

set(CNB_HAVE_CUDA OFF)
set(CNB_HAVE_CUDNN OFF)
set(CNB_HAVE_CXX OFF)
set(CNB_CUDA_REASON "")
set(CNB_CUDNN_REASON "")

# ---- C++ (the emulator backend compiles the .cu kernels as C++) ----
check_language(CXX)
if(CMAKE_CXX_COMPILER)
  enable_language(CXX)
  set(CMAKE_CXX_STANDARD 17)
  set(CMAKE_CXX_STANDARD_REQUIRED ON)
  set(CMAKE_CXX_EXTENSIONS OFF)
  set(CMAKE_CXX_VISIBILITY_PRESET hidden)
  set(CNB_HAVE_CXX ON)
endif()

# ---- CUDA toolkit ----
if(NOT CNB_ENABLE_CUDA)
  set(CNB_CUDA_REASON "disabled with -DCNB_ENABLE_CUDA=OFF")
else()
  # Sets the default before enable_language, which would otherwise pick nvcc's own default.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT DEFINED ENV{CUDAARCHS})
    set(CMAKE_CUDA_ARCHITECTURES "90-real;90-virtual" CACHE STRING
        "GPU architectures for the CUDA backends (sm_90 code + compute_90 PTX)")
  endif()
  check_language(CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    string(CONCAT CNB_CUDA_REASON "no CUDA compiler (nvcc) found: install the CUDA toolkit "
                  "or set -DCMAKE_CUDA_COMPILER=/path/to/nvcc")
  else()
    enable_language(CUDA)
    find_package(CUDAToolkit)
    if(NOT CUDAToolkit_FOUND OR NOT TARGET CUDA::cudart)
      set(CNB_CUDA_REASON "nvcc found (${CMAKE_CUDA_COMPILER}) but not the CUDA runtime library")
    else()
      set(CNB_HAVE_CUDA ON)
      set(CMAKE_CUDA_STANDARD 17)
      set(CMAKE_CUDA_STANDARD_REQUIRED ON)
      set(CMAKE_CUDA_EXTENSIONS OFF)
      set(CMAKE_CUDA_VISIBILITY_PRESET hidden)
      message(STATUS "cnnbench: CUDA ${CUDAToolkit_VERSION} (${CMAKE_CUDA_COMPILER}), "
                     "architectures ${CMAKE_CUDA_ARCHITECTURES}")
    endif()
  endif()
endif()

# ---- Python package directories (PyTorch's pip wheels ship cuDNN and cuBLAS there) ----
set(CNB_PY_NVIDIA_DIRS "")
if(CNB_HAVE_CUDA)
  find_program(CNB_PYTHON3 NAMES python3 python)
  set(_cnb_pythons ${CNB_PYTHON3})
  if(EXISTS /usr/bin/python3)
    list(APPEND _cnb_pythons /usr/bin/python3)
  endif()
  list(REMOVE_DUPLICATES _cnb_pythons)
  foreach(py ${_cnb_pythons})
    execute_process(
      COMMAND ${py} -c "import site, sys; print(';'.join(sys.path + site.getsitepackages() + [site.getusersitepackages()]))"
      OUTPUT_VARIABLE _cnb_sp OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE _cnb_rc)
    if(_cnb_rc EQUAL 0)
      foreach(dir ${_cnb_sp})
        if(IS_DIRECTORY "${dir}/nvidia")
          list(APPEND CNB_PY_NVIDIA_DIRS "${dir}/nvidia")
        endif()
      endforeach()
    endif()
  endforeach()
  if(CNB_PY_NVIDIA_DIRS)
    list(REMOVE_DUPLICATES CNB_PY_NVIDIA_DIRS)
  endif()
endif()

# ---- cuBLAS (the toolkit's, else a pip wheel's) ----
if(CNB_HAVE_CUDA AND NOT TARGET CUDA::cublas)
  set(_cnb_hints "")
  foreach(d ${CNB_PY_NVIDIA_DIRS})
    list(APPEND _cnb_hints "${d}/cublas")
  endforeach()
  find_path(CNB_CUBLAS_INCLUDE_DIR cublas_v2.h HINTS ${_cnb_hints} PATH_SUFFIXES include)
  find_library(CNB_CUBLAS_LIBRARY NAMES cublas libcublas.so.13 libcublas.so.12
               HINTS ${_cnb_hints} PATH_SUFFIXES lib lib64)
  if(CNB_CUBLAS_INCLUDE_DIR AND CNB_CUBLAS_LIBRARY)
    add_library(CUDA::cublas UNKNOWN IMPORTED)
    set_target_properties(CUDA::cublas PROPERTIES IMPORTED_LOCATION "${CNB_CUBLAS_LIBRARY}"
                          INTERFACE_INCLUDE_DIRECTORIES "${CNB_CUBLAS_INCLUDE_DIR}")
  endif()
endif()

# ---- cuDNN ----
if(NOT CNB_HAVE_CUDA)
  set(CNB_CUDNN_REASON "${CNB_CUDA_REASON}")
elseif(NOT TARGET CUDA::cublas)
  string(CONCAT CNB_CUDNN_REASON "cuBLAS not found (neither in the CUDA toolkit nor in a "
                "Python package nvidia/cublas)")
else()
  set(_cnb_hints ${CUDNN_ROOT} $ENV{CUDNN_ROOT} $ENV{CUDNN_PATH} ${CUDAToolkit_LIBRARY_ROOT}
                 ${CUDAToolkit_TARGET_DIR})
  foreach(d ${CNB_PY_NVIDIA_DIRS})
    list(APPEND _cnb_hints "${d}/cudnn")
  endforeach()
  find_path(CNB_CUDNN_INCLUDE_DIR cudnn.h
            HINTS ${_cnb_hints} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  # Python wheels ship only the versioned file (libcudnn.so.9), without the libcudnn.so link.
  find_library(CNB_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
               HINTS ${_cnb_hints} ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
  if(NOT CNB_CUDNN_INCLUDE_DIR OR NOT CNB_CUDNN_LIBRARY)
    string(CONCAT CNB_CUDNN_REASON "cuDNN not found (looked for cudnn.h and libcudnn in the "
                  "CUDA toolkit, CUDNN_ROOT and Python packages nvidia/cudnn): set "
                  "-DCUDNN_ROOT=<dir>")
  else()
    file(STRINGS "${CNB_CUDNN_INCLUDE_DIR}/cudnn_version.h" _cnb_v
         REGEX "^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) +[0-9]+")
    string(REGEX REPLACE ".*CUDNN_MAJOR +([0-9]+).*" "\\1" CNB_CUDNN_MAJOR "${_cnb_v}")
    string(REGEX REPLACE ".*CUDNN_MINOR +([0-9]+).*" "\\1" CNB_CUDNN_MINOR "${_cnb_v}")
    string(REGEX REPLACE ".*CUDNN_PATCHLEVEL +([0-9]+).*" "\\1" CNB_CUDNN_PATCH "${_cnb_v}")
    if(NOT CNB_CUDNN_MAJOR MATCHES "^[0-9]+$" OR CNB_CUDNN_MAJOR LESS 9)
      string(CONCAT CNB_CUDNN_REASON "cuDNN ${CNB_CUDNN_MAJOR} at ${CNB_CUDNN_INCLUDE_DIR} is "
                    "too old: the cudnn backend needs cuDNN 9")
    else()
      set(CNB_HAVE_CUDNN ON)
      add_library(cnb_cudnn_lib UNKNOWN IMPORTED)
      set_target_properties(cnb_cudnn_lib PROPERTIES IMPORTED_LOCATION "${CNB_CUDNN_LIBRARY}"
                            INTERFACE_INCLUDE_DIRECTORIES "${CNB_CUDNN_INCLUDE_DIR}")
      message(STATUS "cnnbench: cuDNN ${CNB_CUDNN_MAJOR}.${CNB_CUDNN_MINOR}.${CNB_CUDNN_PATCH} "
                     "(${CNB_CUDNN_LIBRARY})")
    endif()
  endif()
endif()

# nvcc does not understand the project's -Wall/-Wextra/-Werror (added with add_compile_options
# for every language): confine those to C and C++ on a target that has .cu sources, and give
# nvcc its own equivalents — warnings of the host compiler through --compiler-options and
# nvcc's own warnings as errors with -Werror all-warnings.
function(cnb_cuda_warning_options target)
  get_target_property(opts ${target} COMPILE_OPTIONS)
  if(opts)
    set(wrapped "")
    foreach(o ${opts})
      list(APPEND wrapped "$<$<COMPILE_LANGUAGE:C,CXX>:${o}>")
    endforeach()
    set_property(TARGET ${target} PROPERTY COMPILE_OPTIONS ${wrapped})
  endif()
  set(host "-Wall,-Wextra")
  if(CNB_WERROR)
    set(host "${host},-Werror")
    target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:-Werror all-warnings>")
  endif()
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CUDA>:SHELL:--compiler-options ${host}>")
endfunction()
