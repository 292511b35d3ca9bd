# crmsync_layer(<target> HEADERS <glob>... [EXCLUDE <header>...] [INTERNAL <header>...])
#
# Gives a library its own include tree under build/layers/<target>/:
#   public/   the headers matched by the globs (paths relative to the project
#             root), except *_internal.h and the EXCLUDEd ones — the PUBLIC
#             include directory, seen by the library and what links it;
#   internal/ its *_internal.h headers and the INTERNAL ones — a PRIVATE
#             include directory.
# The trees hold symbolic links to the sources, so includes keep their
# project-relative spelling ("mapping/config.h") while a target sees only
# the headers of the libraries it links: including another layer's header
# without linking that library, or another library's *_internal.h, does not
# compile. A new header is picked up when CMake re-runs (CONFIGURE_DEPENDS).
function(crmsync_layer target)
  cmake_parse_arguments(ARG "" "" "HEADERS;EXCLUDE;INTERNAL" ${ARGN})
  set(root ${CMAKE_BINARY_DIR}/layers/${target})
  file(REMOVE_RECURSE ${root})
  set(headers "")
  foreach(glob IN LISTS ARG_HEADERS)
    file(GLOB matched CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
         ${PROJECT_SOURCE_DIR}/${glob})
    list(APPEND headers ${matched})
  endforeach()
  if(ARG_EXCLUDE)
    list(REMOVE_ITEM headers ${ARG_EXCLUDE})
  endif()
  foreach(header IN LISTS headers)
    if(header MATCHES "_internal\\.h$" OR header IN_LIST ARG_INTERNAL)
      set(tree internal)
    else()
      set(tree public)
    endif()
    get_filename_component(dir ${root}/${tree}/${header} DIRECTORY)
    file(MAKE_DIRECTORY ${dir})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${header} ${root}/${tree}/${header} SYMBOLIC)
  endforeach()
  file(MAKE_DIRECTORY ${root}/public ${root}/internal)
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${root}/public>
                                       PRIVATE ${root}/internal)
endfunction()
