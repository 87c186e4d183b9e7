#!/usr/bin/env bash
# Install what the lab needs and fetch its kernels into the cache.
#
# Idempotent: installs only missing Debian packages (running apt-get update
# only when the lists are missing or stale), installs virtme-ng only when
# $PYTHON cannot import it, and re-fetches nothing already cached.
#
#   PYTHON=/path/to/python bash .ci/lab.sh      # default python3
#   LAB_KERNELS="6.12 7" bash .ci/lab.sh        # default: all (6.1 6.12 7)
#   LAB_BUILD=0 bash .ci/lab.sh                  # skip building the iommufd kernel
set -euo pipefail

PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

say() { echo "lab.sh: $*" >&2; }

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

# qemu-system-x86: the emulator. kmod: depmod on the host, and modprobe in the
# guest (the guest runs the host's userspace). busybox-static: virtme-ng's
# initramfs, which loads 9p/virtio modules of modular kernels. file: virtme-ng
# reads the kernel release with it. debian-archive-keyring: verifies the
# Debian suites the kernels come from (also on Ubuntu hosts).
missing=()
have qemu-system-x86_64 || missing+=(qemu-system-x86)
have depmod || missing+=(kmod)
have busybox || missing+=(busybox-static)
have file || missing+=(file)
have dpkg-deb || missing+=(dpkg)
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
# Building the lab's own kernel (vfio-hil lab build): the compiler and
# kbuild's tools, libelf for objtool, xz for the source tarball, ccache so a
# rebuild from scratch is quick.
for tool in gcc make flex bison bc xz ccache; do
  pkg=$tool; [ "$tool" = xz ] && pkg=xz-utils
  have "$tool" || missing+=("$pkg")
done
[ -f /usr/include/gelf.h ] || missing+=(libelf-dev)
[ -d /usr/include/openssl ] || missing+=(libssl-dev)
[ -f /usr/include/uuid/uuid.h ] || missing+=(uuid-dev)  # the VFIO selftests link -luuid

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing ${missing[*]} and no apt-get: install them by hand"
    exit 1
  fi
  # Update only when no list is younger than a day (a fresh container has none).
  if ! find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | grep -q .; then
    say "apt-get update"
    $SUDO apt-get update -q
  fi
  say "apt-get install ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"; then
    # Lists younger than a day can still name files the mirror has dropped.
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# virtme-ng links the guest kernel's modules at /lib/modules/<release>; it can
# only do so when the directory exists on the host (containers lack it). The
# lab loads vfio modules by path either way, but the kernel's own
# request_module() needs the link.
[ -d /lib/modules ] || $SUDO mkdir -p /lib/modules

if ! "$PYTHON" -c 'import virtme.commands.run' 2>/dev/null; then
  say "pip install virtme-ng into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
  "$PYTHON" -m pip install -q 'virtme-ng>=1.30'
fi

# shellcheck disable=SC2086  # LAB_KERNELS is a space-separated list on purpose
set -- ${LAB_KERNELS:-all}
args=()
for k in "$@"; do args+=(--kernel "$k"); done
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m vfio_hil lab fetch "${args[@]}"

# The lab's own kernel with every VFIO open path (cached: a second run only
# checks that nothing changed).
if [ "${LAB_BUILD:-1}" != 0 ]; then
  PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m vfio_hil lab build
fi

# The kernel's own VFIO selftests, from the same tree (cached: seconds when built).
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m vfio_hil selftests build
