# Fallback for building lifeboat.spec where cmake-rpm-macros is not installed (Debian's rpm,
# used by the tests). scripts/rpm loads this file only when %cmake is undefined; on Amazon
# Linux 2023 and Fedora the distribution's own macros.cmake is used instead.
#
# The definitions follow Fedora's macros.cmake (out-of-source build in %__cmake_builddir,
# distribution flags from %set_build_flags, nothing stripped at install time).

%__cmake /usr/bin/cmake
%__ctest /usr/bin/ctest
%_vpath_srcdir .
%_vpath_builddir %{_vendor}-%{_target_os}-build
%__cmake_builddir %{_vpath_builddir}

%cmake \
  %{?set_build_flags} \
  %__cmake \\\
        -S "%{_vpath_srcdir}" \\\
        -B "%{__cmake_builddir}" \\\
        -DCMAKE_C_FLAGS_RELEASE:STRING="-DNDEBUG" \\\
        -DCMAKE_CXX_FLAGS_RELEASE:STRING="-DNDEBUG" \\\
        -DCMAKE_VERBOSE_MAKEFILE:BOOL=ON \\\
        -DCMAKE_INSTALL_DO_STRIP:BOOL=OFF \\\
        -DCMAKE_INSTALL_PREFIX:PATH=%{_prefix} \\\
        -DINCLUDE_INSTALL_DIR:PATH=%{_includedir} \\\
        -DLIB_INSTALL_DIR:PATH=%{_libdir} \\\
        -DSYSCONF_INSTALL_DIR:PATH=%{_sysconfdir} \\\
        -DSHARE_INSTALL_PREFIX:PATH=%{_datadir} \\\
        -DBUILD_SHARED_LIBS:BOOL=ON

%cmake_build \
  %__cmake --build "%{__cmake_builddir}" %{?_smp_mflags} --verbose

%cmake_install \
  DESTDIR="%{buildroot}" %__cmake --install "%{__cmake_builddir}"

%ctest(:-:) \
  cd "%{__cmake_builddir}" \
  %__ctest --output-on-failure --force-new-ctest-process %{?_smp_mflags} %{**} \
  cd -
