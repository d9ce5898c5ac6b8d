# The sources of libevert, shared by lib/CMakeLists.txt and the clang fuzz build.
set(EVERT_LIB_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/bencode.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/hash.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/metainfo.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/merkle.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/file_list.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/piece_hasher.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/create.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/magnet.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/peer_wire.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/mse.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/mse_dh.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/mse_rc4.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/units.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/control_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/tracker_client.cpp
)
