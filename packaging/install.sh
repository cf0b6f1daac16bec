#!/bin/sh
# Installs cogbox from an unpacked release archive, as root:
#   the binary in /usr/local/bin, a `cogbox` system user, the systemd unit, and
#   /etc/cogbox/config.toml from the example (an existing config is never overwritten).
# DESTDIR=/some/root installs into that folder instead, creating no user and touching no
# running system (for packagers and the tests).
set -eu
cd "$(dirname "$0")"
DESTDIR=${DESTDIR:-}

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run it as root: sudo $0" >&2
    exit 1
fi
for file in cogbox cogbox.service config.example.toml; do
    [ -f "$file" ] || { echo "install.sh: $file is missing beside install.sh" >&2; exit 1; }
done

if [ -z "$DESTDIR" ] && ! getent passwd cogbox >/dev/null; then
    useradd --system --home-dir /var/lib/cogbox --no-create-home \
        --shell /usr/sbin/nologin cogbox
    echo "created the system user cogbox"
fi

install -d "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system"
install -m 0755 cogbox "$DESTDIR/usr/local/bin/cogbox"
install -m 0644 cogbox.service "$DESTDIR/etc/systemd/system/cogbox.service"
# Root owns the config; the service reads it through its group. Tokens go in separate
# files given to the service with LoadCredential= (see cogbox.service), never in here.
install -d -m 0750 "$DESTDIR/etc/cogbox"
config="$DESTDIR/etc/cogbox/config.toml"
if [ -e "$config" ]; then
    echo "kept the existing $config"
else
    sed 's|^data_dir = "data"$|data_dir = "/var/lib/cogbox"|' config.example.toml > "$config.new"
    chmod 0640 "$config.new"
    mv "$config.new" "$config"
    echo "wrote $config"
fi
if [ -z "$DESTDIR" ]; then
    chgrp cogbox /etc/cogbox /etc/cogbox/config.toml
    systemctl daemon-reload
fi

cat <<'NEXT'
Next:
  1. Put each token in a root-only file:  sudo install -m 600 /dev/stdin /etc/cogbox/telegram.token
  2. Uncomment its LoadCredential= line:  sudo systemctl edit --full cogbox
  3. Check, then start:                   sudo -u cogbox cogbox check --config /etc/cogbox/config.toml
                                          sudo systemctl enable --now cogbox
NEXT
