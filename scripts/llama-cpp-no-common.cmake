# Given to llama-cpp-python's build as CMAKE_PROJECT_INCLUDE (scripts/setup.sh): CMake runs it
# after every project() call. llama-cpp-python forces llama.cpp's `common` library on
# (LLAMA_BUILD_COMMON ... FORCE) though its Python package loads only libllama and libggml*;
# common is about half the compile (measured on 2 cores: the wheel in 271 s with it, 131 s
# without). A normal variable in llama.cpp's own scope hides the forced cache entry (option()
# leaves a normal variable alone: policy CMP0077), so common is neither built nor installed.
if(PROJECT_NAME STREQUAL "llama.cpp")
  set(LLAMA_BUILD_COMMON OFF)
endif()
