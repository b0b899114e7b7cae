# gapnet.pc, installed to <libdir>/pkgconfig. Relocatable: the prefix is found from the file's own
# place (${pcfiledir}), so `cmake --install --prefix DIR` works wherever DIR is.
#
# Static libraries need what they link in the program's own link line, so libjpeg, libpng, zlib and the
# threads are then public (Requires, Libs): `pkg-config --libs gapnet` then links, without --static.
# Shared libraries carry them themselves (Requires.private, Libs.private).
file(RELATIVE_PATH gapnet_pc_to_prefix "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
string(REGEX REPLACE "/$" "" gapnet_pc_to_prefix "${gapnet_pc_to_prefix}")
set(GAPNET_PC_PREFIX "\${pcfiledir}/${gapnet_pc_to_prefix}")
# An instrumented build (GAPNET_SANITIZE, GAPNET_TSAN) needs its sanitizer's runtime linked in either case.
list(JOIN gapnet_sanitizer_link_options " " gapnet_pc_sanitizer)
if(BUILD_SHARED_LIBS)
  set(GAPNET_PC_REQUIRES "Requires.private: libjpeg libpng zlib\nLibs.private: -pthread")
  set(GAPNET_PC_LIBS "${gapnet_pc_sanitizer}")
else()
  set(GAPNET_PC_REQUIRES "Requires: libjpeg libpng zlib")
  set(GAPNET_PC_LIBS "-pthread ${gapnet_pc_sanitizer}")
endif()
string(STRIP "${GAPNET_PC_LIBS}" GAPNET_PC_LIBS)
if(GAPNET_PC_LIBS)
  string(PREPEND GAPNET_PC_LIBS " ")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/gapnet.pc.in ${CMAKE_CURRENT_BINARY_DIR}/gapnet.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gapnet.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
