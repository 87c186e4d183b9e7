#!/bin/sh
# Fetch a newer <linux/vfio.h> + <linux/iommufd.h> for tests/test_uapi_header.py.
#
# Downloads Debian trixie's linux-libc-dev .deb with apt-get, using a private
# sources list and private apt state/cache dirs (nothing is installed and the
# system's apt configuration is not touched), then unpacks it with `dpkg -x`.
#
#   tests/c/fetch-headers.sh            # -> ${XDG_CACHE_HOME:-~/.cache}/vfio-hil/uapi-headers
#   SUITE=trixie-backports tests/c/fetch-headers.sh
#
# Afterwards the test finds the headers there by itself; VFIO_HIL_UAPI_INCLUDE
# can point it at any other include dir.
set -eu

SUITE=${SUITE:-trixie}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
KEYRING=${KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
ARCH=$(dpkg --print-architecture)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/vfio-hil
# trixie goes to uapi-headers/ (the dir the test looks at first); other
# suites get their own dir, which the test also picks up.
if [ "$SUITE" = trixie ]; then DEST=$CACHE/uapi-headers; else DEST=$CACHE/uapi-headers-$SUITE; fi
WORK=$CACHE/apt-$SUITE

mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial" "$WORK/deb"
echo "deb [arch=$ARCH signed-by=$KEYRING] $MIRROR $SUITE main" > "$WORK/sources.list"

# Everything apt reads or writes lives under $WORK; the sandbox user is the
# caller so that a root run needs no _apt-writable directory.
set -- \
    -o "Dir::Etc::sourcelist=$WORK/sources.list" \
    -o "Dir::Etc::sourceparts=-" \
    -o "Dir::State=$WORK" \
    -o "Dir::State::lists=$WORK/lists" \
    -o "Dir::Cache=$WORK/cache" \
    -o "APT::Sandbox::User=$(id -un)" \
    -o "Acquire::Languages=none" \
    -o "Acquire::Retries=2" \
    -o "Acquire::http::Timeout=60"

apt-get -q "$@" update
version=$(apt-cache "$@" policy linux-libc-dev | awk '/Candidate:/ {print $2}')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    echo "fetch-headers: no linux-libc-dev in $SUITE" >&2
    exit 1
fi
(cd "$WORK/deb" && rm -f linux-libc-dev_*.deb && apt-get -q "$@" download "linux-libc-dev:$ARCH=$version")

# Unpack into a fresh dir and swap it in, so a half-extracted tree never
# looks like a valid include dir.
rm -rf "$DEST.new"
mkdir -p "$DEST.new"
dpkg -x "$WORK"/deb/linux-libc-dev_*.deb "$DEST.new/root"
mkdir -p "$DEST.new/include"
cp -r "$DEST.new/root/usr/include/linux" "$DEST.new/include/linux"
# asm/ is per-arch (usr/include/<triplet>/asm); the probe only needs linux/.
rm -rf "$DEST.new/root"
echo "$SUITE $version" > "$DEST.new/VERSION"
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
echo "fetch-headers: linux-libc-dev $version ($SUITE) -> $DEST/include"
