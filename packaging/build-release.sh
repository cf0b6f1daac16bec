#!/usr/bin/env bash
# Builds fully static cogbox binaries and packs each as
#   dist/cogbox-<version>-<target>.tar.gz
# holding the binary, README.md, config.example.toml, cogbox.service and install.sh, signed
# in place with zipsign (ed25519) when a signing key is given.
#
# Toolchain: rustup's musl targets, linked by `cargo zigbuild` with zig from the `ziglang`
# Python package. zig is one download that cross-compiles C for every target (SQLite and ring
# are C), so no cross gcc per target is needed:
#   rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
#   pip install ziglang cargo-zigbuild
#   cargo install zipsign            # only to sign
#
# Environment:
#   TARGETS       targets to build (default: x86_64 and aarch64 musl)
#   PROFILE       cargo profile (default: release; the tests use static-test, which is faster)
#   SIGNING_KEY   a zipsign private key file; unset: the archives are not signed
#   DIST          output folder (default: dist)
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=${TARGETS:-"x86_64-unknown-linux-musl aarch64-unknown-linux-musl"}
PROFILE=${PROFILE:-release}
DIST=${DIST:-dist}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
mkdir -p "$DIST"

for target in $TARGETS; do
    cargo zigbuild --locked --profile "$PROFILE" --target "$target" --bin cogbox
    binary="target/$target/$PROFILE/cogbox"
    if ! file "$binary" | grep -q "statically linked"; then
        echo "error: $binary is not statically linked: $(file -b "$binary")" >&2
        exit 1
    fi
    name="cogbox-$version-$target"
    stage=$(mktemp -d)
    mkdir "$stage/$name"
    cp "$binary" README.md config.example.toml packaging/cogbox.service packaging/install.sh \
        "$stage/$name/"
    archive="$DIST/$name.tar.gz"
    tar -C "$stage" --owner=0 --group=0 -czf "$archive" "$name"
    rm -rf "$stage"
    if [[ -n ${SIGNING_KEY:-} ]]; then
        # The signature goes into the gzip header, with the file name as its context, so an
        # archive renamed to pass for another target fails verification. `cogbox update`
        # checks it against packaging/release.pub and takes <name>/cogbox out of the archive.
        zipsign sign tar "$archive" "$SIGNING_KEY"
    fi
    echo "$archive ($(stat -c %s "$binary") bytes binary)"
done
